#!/usr/bin/env bash
# usage: bench/lock_waits.sh LTVPIPE MODELS_DIR DATA_DIR [RUN ARGS...]
#
# Where a run's threads wait off a CPU, and behind what: `LTVPIPE run RUN
# ARGS` (default `--to features`) on a `cp -a` copy of MODELS_DIR (e.g. a
# registry after `run --only ingest`, copied with its mtimes so that its run
# lock's stamp still matches and no PRAGMA quick_check runs first) over
# DATA_DIR, under `perf record -e sched:sched_switch --call-graph dwarf`.
# Each switch-out is paired with the thread's next switch-in; prints the
# milliseconds off CPU by thread, why (rwsem = the mmap_lock, futex =
# e.g. malloc's arena lock; "preempted" = runnable) and the first user-space
# frames of its stack (FRAMES, default 8), the TOP (default 25) largest.
# Used for issue 13's populate work (README "Threads and performance"): with
# MADV_POPULATE_WRITE the users' readers waited 150-250 ms a run in
# keep_text's MADV_HUGEPAGE and on arena locks behind populate's mmap_lock.
# PRIO="chrt -f 1" as in bench/run_timeline.sh. Needs root and perf.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 3 ] || bench_usage "LTVPIPE MODELS_DIR DATA_DIR [RUN ARGS...]"
bin=$(bench_binary "$1") models=$(realpath "$2") data=$(realpath "$3")
shift 3
[ $# -gt 0 ] || set -- --to features
command -v perf >/dev/null || bench_fail "needs perf"
read -r -a prio <<<"${PRIO:-}"
bench_scratch lock-waits
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
ln -s "$data" "$scratch/data"
cp -a "$models" "$scratch/models"
(cd "$scratch" && "${prio[@]}" perf record -q -e sched:sched_switch --call-graph dwarf,8192 \
	-o perf.data "$bin" run --config "$root/config/ltvpipe.yaml" "$@" >out 2>err) ||
	{ tail -5 "$scratch/err" >&2; exit 1; }
perf script -i "$scratch/perf.data" -F tid,time,event,trace,ip,sym 2>/dev/null |
	python3 -c '
import collections, re, sys
frames, top = int(sys.argv[1]), int(sys.argv[2])
kernel = ("[", "__schedule", "schedule", "entry_", "do_syscall", "__x64", "rwsem", "down_",
          "madvise_lock", "futex", "__futex", "do_futex", "x64_sys", "syscall", "asm_", "exc_",
          "preempt", "irqentry", "__raw", "pvm", "trace")
waits = {}
total = collections.defaultdict(float)
count = collections.Counter()
def sample(lines):
    m = re.match(r"\s*(\d+)\s+([\d.]+):\s+\S+:\s+(.*)", lines[0]) if lines else None
    if not m:
        return
    tid, t, trace = int(m.group(1)), float(m.group(2)), m.group(3)
    nxt = int(re.search(r"next_pid=(\d+)", trace).group(1))
    if nxt in waits:
        key, since = waits.pop(nxt)
        total[key] += t - since
        count[key] += 1
    syms = [l.split()[1] for l in lines[1:] if len(l.split()) > 1]
    why = [s for s in syms if s.startswith(("rwsem", "futex_wait", "do_madvise", "__do_sys_brk",
                                              "vm_mmap", "do_mprotect", "io_schedule"))][:1]
    if "R" in re.search(r"prev_state=(\S+)", trace).group(1):
        why = ["preempted"]
    user = [s for s in syms if not s.startswith(kernel)][:frames]
    waits[tid] = ((tid, " ".join(why), " < ".join(user)), t)
lines = []
for line in sys.stdin:
    if line.strip():
        lines.append(line.rstrip("\n"))
    else:
        sample(lines)
        lines = []
sample(lines)
for key, secs in sorted(total.items(), key=lambda kv: -kv[1])[:top]:
    print("%8.1f ms %4d  tid %d  %-22s %s" % (secs * 1000, count[key], key[0], key[1], key[2]))
' "${FRAMES:-8}" "${TOP:-25}"

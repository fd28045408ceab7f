#!/usr/bin/env bash
# usage: bench/ingest_hash_timeline.sh BIN_BEFORE BIN_AFTER DATA_DIR
#
# Where ingest's input hashing runs, base against new: one `run --only
# ingest` each into a fresh registry on DATA_DIR's users.csv and events.csv
# under perf (-F 500 -g), then per 0.1 s of the process: cores busy (samples
# / 50) and the cores hashing file bytes (XXH3_64bits_update, which the
# 128-bit update is; the id maps use the one-shot XXH3_64bits), and when the
# stage began reading (the first sample in the CSV reader: refill,
# read_chunk, read_ahead_main, csv_reader_*). The base hashes every file
# on the runner's thread before the stage starts; a registry without an
# ingest artefact now hashes on the reader's read-ahead thread as it reads
# (pipeline/runner.c resolve_files). PRIO="chrt -f 1" as in bench/ingest_ab.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 3 ] || bench_usage "BIN_BEFORE BIN_AFTER DATA_DIR"
before=$(bench_binary "$1") after=$(bench_binary "$2") data=$(realpath "$3")
bench_scratch ingest-hash-timeline
read -r -a prio <<<"${PRIO:-}"
for side in before after; do
	bin=$before
	[ $side = after ] && bin=$after
	d=$scratch/$side
	mkdir -p "$d" && cp -r "$root/config" "$d/"
	(cd "$d" && "${prio[@]}" perf record -q -F 500 -g -o perf.data "$bin" run --only ingest \
		--set "input.users=$data/users.csv" --set "input.events=$data/events.csv" >out 2>err)
	echo "== $side: $(grep 'ingest: done' "$d/out")"
	perf script -i "$d/perf.data" -F time,ip,sym 2>/dev/null | python3 -c '
import sys, re
buckets = {}
t0 = None
cur = None
def flush(c):
    if c is None: return
    t, stack = c
    global first_read
    b = buckets.setdefault(int((t - t0) * 10), [0, 0])
    b[0] += 1
    b[1] += any("XXH3_64bits_update" in s for s in stack)
    if first_read is None and any(re.search(r" (refill|read_chunk|read_ahead_main|csv_reader_\w+)(\+|$)", s) for s in stack):
        first_read = t - t0
first_read = None
for line in sys.stdin:
    m = re.match(r"\s*(\d+\.\d+):\s*$", line)
    if m:
        flush(cur)
        t = float(m.group(1))
        if t0 is None: t0 = t
        cur = (t, [])
    elif cur is not None and line.strip():
        cur[1].append(line.strip())
flush(cur)
print("  t s   cores  hashing file bytes")
for k in sorted(buckets):
    n, x = buckets[k]
    if k <= 6 or k % 5 == 0:
        print("  %4.1f  %4.2f   %4.2f" % (k / 10, n / 50, x / 50))
tot = [sum(v[i] for v in buckets.values()) / 500 for i in range(2)]
print("  CPU s %.2f (hashing file bytes %.2f); the CSV reader first sampled at %s s, the last sample at %.2f s"
      % (tot[0], tot[1], "-" if first_read is None else "%.2f" % first_read, max(buckets) / 10 + 0.1))
'
done

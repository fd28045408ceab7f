#!/usr/bin/env bash
# usage: bench/stage_quiet_wall.sh BIN_BEFORE BIN_AFTER TRAINED_MODELS_DIR RUNS STAGES [RUN ARGS...]
#
# `run --only STAGES --force` of two binaries, RUNS times each, alternating
# which goes first, each on its own copy of a trained registry
# (TRAINED_MODELS_DIR, e.g. a cold run's models/ at 1,000,000 users; only
# read), under system-wide scheduler tracing (perf record -a -e sched:*; needs
# root or perf_event_paranoid <= -1). Prints each run's CPU seconds, peak
# RSS and wall (GNU time), and the wall the run would take on an idle machine
# with CORES cores (default 2), estimated from the trace: the integral of
# running / min(wanting, CORES) over time, where running counts the
# process's threads on a CPU and wanting those on a CPU or waiting for one
# (a thread asleep, an idle OpenMP worker under OMP_WAIT_POLICY=PASSIVE or
# one blocked on I/O, counts in neither). On a shared machine the real wall
# is the neighbours' load; this figure is not, as long as the CPUs' speed
# holds. "serial" is the time one thread alone wanted a CPU. Ends with the
# medians and whether each stage's content hash is the same on both sides
# (exit 1 if not).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 5 ] || bench_usage "BIN_BEFORE BIN_AFTER TRAINED_MODELS_DIR RUNS STAGES [RUN ARGS...]"
before=$(bench_binary "$1") after=$(bench_binary "$2") trained=$3 runs=$4 stages=$5
shift 5
bench_need_time
command -v perf >/dev/null || bench_fail "needs perf (Debian package linux-perf)"
bench_scratch quietwall
# Unique command names: the trace is system-wide and told apart by them.
cp "$before" "$scratch/ltvq_before"
cp "$after" "$scratch/ltvq_after"
declare -A quiet cpus hashes

# quiet_wall COMM CORES: perf script's sched events on stdin -> "QUIET SERIAL"
quiet_wall() {
	awk -v comm="$1" -v cores="$2" '
	function val(s, key,   i, r) { # the value of "key=value" in s (values hold no space here)
		if (index(s, key "=") == 1)
			i = 1
		else if ((i = index(s, " " key "=")) > 0)
			i++
		else
			return ""
		r = substr(s, i + length(key) + 1)
		sub(/ .*/, "", r)
		return r
	}
	function set(tid, st) { changed[tid] = st; n_changed++ }
	{
		cpu = ""; t = ""; ev = ""
		for (f = 2; f <= NF; f++)
			if ($f ~ /^\[[0-9]+\]$/) { cpu = $f; t = $(f + 1); ev = $(f + 2); break }
		if (cpu == "") next
		sub(/:$/, "", t); sub(/:$/, "", ev)
		body = $0; sub(/.*sched:sched_[a-z_]+: /, "", body)
		n_changed = 0; split("", changed)
		if (ev == "sched:sched_switch") {
			split(body, half, " ==> ")
			prev = val(half[1], "prev_pid"); pcomm = val(half[1], "prev_comm")
			pstate = val(half[1], "prev_state")
			next_tid = val(half[2], "next_pid"); ncomm = val(half[2], "next_comm")
			if ((cpu in on) && on[cpu] != prev) { set(on[cpu], "sleep"); delete on[cpu] }
			if (pcomm == comm) {
				set(prev, pstate ~ /^R/ ? "ready" : pstate ~ /^[XZ]/ ? "dead" : "sleep")
				delete on[cpu]
			}
			if (ncomm == comm) {
				for (c in on) if (on[c] == next_tid) delete on[c]
				set(next_tid, "run"); on[cpu] = next_tid
			}
		} else if (ev ~ /^sched:sched_wakeup/) {
			if (val(body, "comm") == comm) {
				tid = val(body, "pid")
				if (state[tid] != "run" && state[tid] != "dead") set(tid, "ready")
			}
		}
		if (n_changed == 0) next
		if (last != "") {
			r = 0; w = 0
			for (k in state) { r += state[k] == "run"; w += state[k] == "run" || state[k] == "ready" }
			if (r > 0) {
				quiet += (t - last) * r / (w < cores ? w : cores)
				if (w == 1) serial += t - last
			}
		}
		for (k in changed) state[k] = changed[k]
		last = t
	}
	END { printf "%.3f %.3f\n", quiet, serial }'
}

one() { # side
	local dir=$scratch/$1 u s m e q sr
	bench_run_dir "$dir" "$trained"
	# The environment `run` would re-execute itself with (cli/main.c ensure_runtime_env),
	# given here: a re-executed run is named "exe", which the trace would not know.
	(cd "$dir" && OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
		perf record -q -a -m 2048 -o sched.data \
		-e sched:sched_switch -e sched:sched_wakeup -e sched:sched_wakeup_new -- \
		/usr/bin/time -f '%U %S %M %e' -o time "$scratch/ltvq_$1" run \
		--config "$root/config/ltvpipe.yaml" --only "$stages" --force --quiet "${run_args[@]}" >/dev/null 2>&1)
	read -r q sr < <(perf script -i "$dir/sched.data" -F comm,tid,cpu,time,event,trace 2>/dev/null |
		quiet_wall "ltvq_$1" "${CORES:-2}")
	read -r u s m e <"$dir/time"
	printf 'bench: %-6s %6.2f s CPU, %6.1f MB peak RSS, %6.2f s wall, idle-machine wall %6.3f s (serial %5.3f s)\n' \
		"$1" "$(echo "$u + $s" | bc)" "$((m / 1024))" "$e" "$q" "$sr"
	cpus[$1]+=" $(echo "$u + $s" | bc)"
	quiet[$1]+=" $q"
	hashes[$1]=$(bench_artefact_hashes "$dir/models/registry.sqlite" ", ")
	rm -f "$dir/sched.data"
}
run_args=("$@")
bench_alternate "$runs" one
echo "bench: median CPU s: before $(bench_med "${cpus[before]}" %.3f), after $(bench_med "${cpus[after]}" %.3f)"
echo "bench: median idle-machine wall s: before $(bench_med "${quiet[before]}" %.3f)," \
	"after $(bench_med "${quiet[after]}" %.3f)"
bench_hashes_verdict "${hashes[before]}" "${hashes[after]}" "${hashes[after]}"

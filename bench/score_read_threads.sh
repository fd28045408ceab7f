#!/usr/bin/env bash
# usage: bench/score_read_threads.sh BIN_BEFORE BIN_AFTER DIR RUNS
#
# How `ltvpipe score --users DIR/data/users.csv --events DIR/data/events.csv`
# (DIR as for bench/score_cpu.sh: a trained models/ registry) spends the
# reading of its two files on its threads, where a shared machine's walls
# say nothing: RUNS alternating pairs under `perf record` (CPU clock, 999
# Hz, so a sample is about a ms of CPU), each run split in two phases by its
# events worker (the thread running resolve_batch): the users file (before
# the worker's first sample) and the events file (to its last). Per phase the
# main thread's samples, the busiest other thread's, all threads' sum and
# the phase's bound on 2 cores, the larger of its busiest thread and half the
# sum (the wall a quiet machine would give, give or take the hand-overs);
# then the whole run's samples, each phase's wall (ms, from the samples'
# times) and the medians of each binary and of the pairs' differences.
# PRIO="chrt -f 1" runs each score at a real-time priority, so that it has
# both cores whenever it wants them and the phases' walls are its own (the
# neighbours wait meanwhile). Used for issue 13 (helper "scoreread", session 15).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 4 ] && [[ $4 =~ ^[1-9][0-9]*$ ]] || bench_usage "BIN_BEFORE BIN_AFTER DIR RUNS"
before=$(bench_binary "$1") after=$(bench_binary "$2") dir=$(realpath "$3") runs=$4
command -v perf >/dev/null || bench_fail "needs perf"
[ -f "$dir/data/users.csv" ] && [ -f "$dir/data/events.csv" ] || bench_fail "no data/users.csv and data/events.csv in $dir"
bench_scratch score-read-threads
read -r -a prio <<<"${PRIO:-}"
export OMP_WAIT_POLICY=PASSIVE
echo "score_read_threads: load $(cut -d' ' -f1-3 /proc/loadavg)"

# One run's line: side run, then per phase main/busiest other/sum/bound, then all samples.
phases() {
	perf script -i "$1" -F pid,tid,time,ip,sym 2>/dev/null | awk -v side="$2" -v run="$3" '
		{ pid = $1; sub("/.*", "", pid); tid = $1; sub(".*/", "", tid); t = $2; sub(":", "", t)
		  n++; T[n] = t; D[n] = tid; main = pid
		  if (n == 1) start = t
		  if ($4 == "resolve_batch") { if (!first) first = t; last = t } }
		END {
			for (i = 1; i <= n; i++) {
				p = T[i] < first ? 1 : T[i] <= last ? 2 : 0
				if (p) { s[p, D[i]]++; sum[p]++; seen[p, D[i]] = 1 }
			}
			printf "%s %d", side, run
			for (p = 1; p <= 2; p++) {
				busy = 0
				for (k in seen) {
					split(k, a, SUBSEP)
					if (a[1] == p && a[2] != main && s[p, a[2]] > busy) busy = s[p, a[2]]
				}
				m = s[p, main] + 0
				bound = m > busy ? m : busy
				if (sum[p] / 2 > bound) bound = sum[p] / 2
				printf " %d %d %d %d", m, busy, sum[p], bound
			}
			printf " %d %d %d\n", n, 1000 * (first - start), 1000 * (last - first)
		}'
}

for i in $(seq "$runs"); do
	for side in before after; do
		bin=$before
		[ $side = after ] && bin=$after
		(cd "$dir" && "${prio[@]}" perf record -q -F 999 -o "$scratch/perf.data" "$bin" score \
			--config "$root/config/ltvpipe.yaml" --users data/users.csv \
			--events data/events.csv --output "$scratch/scores.csv" >"$scratch/out" 2>"$scratch/err") ||
			{ cat "$scratch/err" >&2; exit 1; }
		phases "$scratch/perf.data" $side "$i" | tee -a "$scratch/runs" | awk '{
			printf "%s %s: users main %d, other %d, sum %d, bound %d | events main %d, other %d, sum %d, bound %d | all %d samples | walls %d + %d ms\n",
				$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 }'
		rm -f "$scratch/perf.data"
	done
done
echo "score_read_threads: medians (samples, about ms of CPU; load $(cut -d' ' -f1-3 /proc/loadavg)):"
for side in before after; do
	awk -v side=$side "$bench_awk_median"'
		$1 == side { n++; for (k = 3; k <= 13; k++) v[k, n] = $k }
		END {
			for (k = 3; k <= 13; k++) { for (i = 1; i <= n; i++) a[i] = v[k, i]; m[k] = median(a, n) }
			printf "  %s: users main %d, other %d, sum %d, bound %d | events main %d, other %d, sum %d, bound %d | read bound %d | all %d | walls %d + %d ms\n",
				side, m[3], m[4], m[5], m[6], m[7], m[8], m[9], m[10], m[6] + m[10], m[11], m[12], m[13]
		}' "$scratch/runs"
done
# Pairs, as the load moves between them: the median of each pair's after minus before.
awk "$bench_awk_median"'
	$1 == "before" { for (k = 3; k <= 13; k++) b[$2, k] = $k }
	$1 == "after" { n++; for (k = 3; k <= 13; k++) d[k, n] = $k - b[$2, k]; r[n] = $6 + $10 - b[$2, 6] - b[$2, 10] }
	END {
		for (k = 3; k <= 13; k++) { for (i = 1; i <= n; i++) a[i] = d[k, i]; m[k] = median(a, n) }
		printf "  paired (after - before): users main %+d, bound %+d | events main %+d, other %+d, sum %+d, bound %+d | read bound %+d | all %+d | walls %+d, %+d ms\n",
			m[3], m[6], m[7], m[8], m[9], m[10], median(r, n), m[11], m[12], m[13]
	}' "$scratch/runs"

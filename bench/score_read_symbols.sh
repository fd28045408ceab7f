#!/usr/bin/env bash
# usage: bench/score_read_symbols.sh LTVPIPE DIR [MIN_SAMPLES]
#
# Where each thread of `ltvpipe score --users DIR/data/users.csv --events
# DIR/data/events.csv` (DIR as for bench/score_cpu.sh: a trained models/
# registry) spends the reading of the two files: one run under `perf
# record` (CPU clock, 999 Hz, about a ms of CPU a sample), split in the
# phases of bench/score_read_threads.sh (users: before the events worker's
# first resolve_batch sample; events: to its last), then per phase its
# samples, each thread's, and each thread's symbols of at least MIN_SAMPLES
# (default 8). score_read_threads.sh says whether a phase is bound by one
# thread or by both cores; this says what fills them. PRIO="chrt -f 1" as
# there. Used for issue 13 (session 18, helper "score-read": the events
# phase's three threads each busy, its bound half its samples; the workers
# splitting their own batches moved the split's ~170 samples from the
# read-ahead thread to them and saved none).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] && [ $# -le 3 ] || bench_usage "LTVPIPE DIR [MIN_SAMPLES]"
bin=$(bench_binary "$1") dir=$(realpath "$2") min=${3:-8}
command -v perf >/dev/null || bench_fail "needs perf"
[ -f "$dir/data/users.csv" ] && [ -f "$dir/data/events.csv" ] || bench_fail "no data/users.csv and data/events.csv in $dir"
bench_scratch score-read-symbols
read -r -a prio <<<"${PRIO:-}"
export OMP_WAIT_POLICY=PASSIVE
echo "score_read_symbols: load $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$dir" && "${prio[@]}" perf record -q -F 999 -o "$scratch/perf.data" "$bin" score \
	--config "$root/config/ltvpipe.yaml" --users data/users.csv \
	--events data/events.csv --output "$scratch/scores.csv" >"$scratch/out" 2>"$scratch/err") ||
	{ cat "$scratch/err" >&2; exit 1; }
perf script -i "$scratch/perf.data" -F tid,time,ip,sym 2>/dev/null | awk -v min="$min" '
	{ t = $2; sub(":", "", t); n++; T[n] = t; D[n] = $1; S[n] = $4
	  if (n == 1) main = $1
	  if ($4 == "resolve_batch") { if (!first) first = t; last = t } }
	END {
		for (i = 1; i <= n; i++) {
			p = T[i] < first ? "users" : T[i] <= last ? "events" : ""
			if (p == "") continue
			ph[p]++; th[p, D[i]]++; sy[p, D[i], S[i]]++
		}
		for (k in ph) printf "%s|0||0|phase %s: %d samples\n", k, k, ph[k]
		for (k in th) { split(k, a, SUBSEP); printf "%s|1||%d|  thread %s%s: %d\n", a[1], th[k], a[2], a[2] == main ? " (main)" : "", th[k] }
		for (k in sy) if (sy[k] >= min) { split(k, a, SUBSEP); printf "%s|2|%s|%d|    thread %s: %s %d\n", a[1], a[2], sy[k], a[2], a[3], sy[k] } }' |
	sort -t'|' -k1,1r -k2,2n -k3,3 -k4,4nr | cut -d'|' -f5

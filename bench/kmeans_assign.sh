#!/usr/bin/env bash
# usage: bench/kmeans_assign.sh OLD_COMMIT [ROWS|FILE [ITERATIONS [RUNS]]]
#
# bench/kmeans_bench.c (k-means as the lookalike stage runs it: k = 16, 8
# features, one thread) built twice, against src/models/kmeans.c and
# kmeans_assign.c (with kmeans_internal.h) of
# OLD_COMMIT and of the working tree, run alternately RUNS times (default 5)
# on ROWS generated rows (default 700000, the lookalike's training rows at
# 1,000,000 users) for ITERATIONS Lloyd updates (default 30). Prints each
# run's fit and predict CPU seconds and the results hash, which must be the
# same for both builds when a change keeps results identical, then medians.
#   nice bench/kmeans_assign.sh 9281a86
# 68 updates are what the lookalike stage's fit makes at 1,000,000 users; the
# pruning of kmeans_param.prune pays most in late updates:
#   bench/kmeans_assign.sh 6307460 1000000 68 3   (fit 4.15 -> 3.27 s CPU, session 13)
#   bench/kmeans_assign.sh b6510bd 1000000 68 3   (fit 3.63 -> 3.36 s CPU, session 16, load 8-9)
# (OLD_COMMIT needs kmeans_assign.c: session 17 on.) The stage's own rows, the
# matrix lookalike_build_matrix writes (604,242 rows at 1,000,000 users), as
# FILE: session 19, b46c858 -> wave-ml, 7 pairs at load 10: fit 1.234 -> 1.142
# s CPU (medians), paired -0.094 s, the same results hash.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || bench_usage "OLD_COMMIT [ROWS|FILE [ITERATIONS [RUNS]]]"
old=$1 rows=${2:-700000} iters=${3:-30} runs=${4:-5}
bench_scratch kmeans
bench_build_ab "$old" "src/models/kmeans.c src/models/kmeans_assign.c" kmeans_bench.c
for ((i = 1; i <= runs; i++)); do
	for b in old new; do
		line=$("$scratch/$b" "$rows" "$iters")
		echo "$b: $line"
		echo "$b $line" >>"$scratch/all"
	done
done
awk "$bench_awk_median"'
	{ b = $1; n[b]++; fit[b, n[b]] = $7; pred[b, n[b]] = $11; hash[b] = $NF }
	END {
		for (b in n) {
			delete f; delete p
			for (i = 1; i <= n[b]; i++) { f[i] = fit[b, i]; p[i] = pred[b, i] }
			printf "%s: median of %d: fit %.3f s CPU, predict %.3f s CPU, results %s\n", b, n[b], median(f, n[b]), median(p, n[b]), hash[b]
		}
		delete f
		for (i = 1; i <= n["new"]; i++) { f[i] = fit["new", i] - fit["old", i]; less += f[i] < 0 }
		printf "fit new - old, paired: median %+.3f s CPU, new less in %d of %d\n", median(f, n["new"]), less, n["new"]
	}' "$scratch/all"

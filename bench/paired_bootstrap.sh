#!/usr/bin/env bash
# usage: bench/paired_bootstrap.sh OLD_COMMIT [SEEDS [THREADS [RUNS]]]
#
# bench/paired_bootstrap_bench.c (select's paired bootstraps at the sizes of
# a select at 1,000,000 users) built twice, against
# src/models/paired_bootstrap.c of OLD_COMMIT and of the working tree, run
# alternately RUNS times (default 5). Prints each run's CPU seconds per
# size and the verdicts, which must be the same for both builds when a
# change keeps results identical, then the medians of the whole run's CPU.
#   nice bench/paired_bootstrap.sh 6307460
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || bench_usage "OLD_COMMIT [SEEDS [THREADS [RUNS]]]"
old=$1 seeds=${2:-4} threads=${3:-2} runs=${4:-5}
bench_scratch pboot
bench_build_ab "$old" src/models/paired_bootstrap.c paired_bootstrap_bench.c
for ((i = 1; i <= runs; i++)); do
	for b in old new; do
		OMP_WAIT_POLICY=PASSIVE "$scratch/$b" "$seeds" "$threads" >"$scratch/out"
		sed "s/^/$b: /" "$scratch/out"
		awk -v b="$b" '{ cpu += $4; v = v $6 } END { print b, cpu, v }' "$scratch/out" >>"$scratch/all"
	done
done
awk "$bench_awk_median"'
	{ b = $1; n[b]++; cpu[b, n[b]] = $2; v[b] = v[b] == "" || v[b] == $3 ? $3 : "DIFFER" }
	END {
		for (b in n) {
			delete c
			for (i = 1; i <= n[b]; i++) c[i] = cpu[b, i]
			printf "%s: median of %d: %.3f s CPU\n", b, n[b], median(c, n[b])
		}
		print (v["old"] == v["new"] && v["old"] != "DIFFER") ? "verdicts identical" : "VERDICTS DIFFER"
		exit !(v["old"] == v["new"] && v["old"] != "DIFFER")
	}' "$scratch/all"

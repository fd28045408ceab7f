#!/usr/bin/env bash
# usage: bench/strmap_ids.sh OLD_COMMIT [USERS [LOOKUPS [RUNS]]]
#
# bench/strmap_bench.c (the user-id map as ingest and score build it, then
# the events parse's batched lookups) built twice, against src/strmap.c of
# OLD_COMMIT and of the working tree, run alternately RUNS times (default 5)
# at USERS ids (default 1,000,000) and LOOKUPS lookups (default 8,000,000).
# Prints each run's build CPU seconds and page faults and the lookups' ns
# each, then medians; the sums must agree. Used for issue 13 (idtable: 24-byte
# slots without the hash): README "Threads and performance".
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || bench_usage "OLD_COMMIT [USERS [LOOKUPS [RUNS]]]"
old=$1 users=${2:-1000000} lookups=${3:-8000000} runs=${4:-5}
bench_scratch strmap
bench_build_ab "$old" src/strmap.c strmap_bench.c
for ((i = 1; i <= runs; i++)); do
	for b in old new; do
		line=$("$scratch/$b" "$users" "$lookups")
		echo "$b: $line"
		echo "$b $line" >>"$scratch/all"
	done
done
awk "$bench_awk_median"'
	{ b = $1; n[b]++; bld[b, n[b]] = $3; flt[b, n[b]] = $6; ns[b, n[b]] = $9; sum[b] = $NF }
	END {
		for (b in n) {
			delete x; delete y; delete z
			for (i = 1; i <= n[b]; i++) { x[i] = bld[b, i]; y[i] = flt[b, i]; z[i] = ns[b, i] }
			printf "%s: median of %d: build %.3f s CPU, %d faults, lookups %.1f ns each, sum %s\n", b, n[b], median(x, n[b]), median(y, n[b]), median(z, n[b]), sum[b]
		}
	}' "$scratch/all"

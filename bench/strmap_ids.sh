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
make -s -C "$root" build/libltv.a >/dev/null
cflags="-std=c11 -D_GNU_SOURCE -O2 -g -I$root/include"
git -C "$root" show "$old:src/strmap.c" >"$scratch/strmap_old.c"
cc $cflags -c -o "$scratch/strmap_old.o" "$scratch/strmap_old.c"
cc $cflags -o "$scratch/old" "$root/bench/strmap_bench.c" "$scratch/strmap_old.o" "$root/build/libltv.a" -lxxhash
cc $cflags -o "$scratch/new" "$root/bench/strmap_bench.c" "$root/build/libltv.a" -lxxhash
for ((i = 1; i <= runs; i++)); do
	for b in old new; do
		line=$("$scratch/$b" "$users" "$lookups")
		echo "$b: $line"
		echo "$b $line" >>"$scratch/all"
	done
done
awk '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ b = $1; n[b]++; bld[b, n[b]] = $3; flt[b, n[b]] = $6; ns[b, n[b]] = $9; sum[b] = $NF }
	END {
		for (b in n) {
			delete x; delete y; delete z
			for (i = 1; i <= n[b]; i++) { x[i] = bld[b, i]; y[i] = flt[b, i]; z[i] = ns[b, i] }
			printf "%s: median of %d: build %.3f s CPU, %d faults, lookups %.1f ns each, sum %s\n", b, n[b], median(x, n[b]), median(y, n[b]), median(z, n[b]), sum[b]
		}
	}' "$scratch/all"

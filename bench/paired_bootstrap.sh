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
make -s -C "$root" DEVELOPER=1 build/libltv.a >/dev/null
cflags="-std=c11 -D_GNU_SOURCE -O2 -g -fopenmp -I$root/include"
libs="-lsqlite3 -lyaml -lxgboost -lxxhash -lcjson -lmicrohttpd -lcsv -lz -lgsl -llapacke -lopenblas -lm -lpthread"
git -C "$root" show "$old:src/models/paired_bootstrap.c" >"$scratch/pb_old.c"
# shellcheck disable=SC2086
cc $cflags -c -o "$scratch/pb_old.o" "$scratch/pb_old.c"
# shellcheck disable=SC2086
cc $cflags -o "$scratch/old" "$root/bench/paired_bootstrap_bench.c" "$scratch/pb_old.o" "$root/build/libltv.a" $libs
# shellcheck disable=SC2086
cc $cflags -o "$scratch/new" "$root/bench/paired_bootstrap_bench.c" "$root/build/libltv.a" $libs
for ((i = 1; i <= runs; i++)); do
	for b in old new; do
		OMP_WAIT_POLICY=PASSIVE "$scratch/$b" "$seeds" "$threads" >"$scratch/out"
		sed "s/^/$b: /" "$scratch/out"
		awk -v b="$b" '{ cpu += $4; v = v $6 } END { print b, cpu, v }' "$scratch/out" >>"$scratch/all"
	done
done
awk '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
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

#!/usr/bin/env bash
# usage: bench/run_memory_ab.sh DATA RUNS BIN_A BIN_B [RUN ARGS...]
#
# Whole cold runs of two binaries on the same input files, alternating
# (A, B, A, B, ...), RUNS each: each in a fresh registry through
# bench/run_memory.sh, printing per run the user + system CPU seconds of the
# whole run (GNU time) and its peak RSS with the stages running then, and
# at the end each binary's medians. How the huge-page hint was decided
# (README "The huge-page hint, ingest only"): CPU and peak are what a loaded
# machine does not blur much; the walls it does.
#   nice bench/run_memory_ab.sh /work/tmp-s9/d1m 3 /tmp/main-ltvpipe ./ltvpipe
# DATA holds users.csv and events.csv (`ltvpipe generate --users 1000000
# --order time`); the registries (about 1 GB each at 1M users) are removed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 4 ] || bench_usage "DATA RUNS BIN_A BIN_B [RUN ARGS...]"
bench_need_time
data=$(realpath "$1")
runs=$2
bins=("$(bench_binary "$3")" "$(bench_binary "$4")")
shift 4
bench_scratch memab
for ((i = 1; i <= runs; i++)); do
	for k in 0 1; do
		dir=$scratch/run
		rm -rf "$dir"
		mkdir "$dir"
		ln -s "$data" "$dir/data"
		LTVPIPE=${bins[$k]} /usr/bin/time -f '%U %S %M' -o "$scratch/time" \
			"$root/bench/run_memory.sh" "$dir" --config "$root/config/ltvpipe.yaml" "$@" \
			>"$scratch/out"
		cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$scratch/time")
		maxrss=$(awk '{ printf "%.1f", $3 / 1024 }' "$scratch/time")
		peak=$(sed -n 's/^bench: run peak *\([0-9.]*\) MB, running then: \(.*\)/\1 MB (\2)/p' "$scratch/out")
		echo "${bins[$k]} run $i: CPU $cpu s, max RSS $maxrss MB (GNU time), sampled peak $peak"
		grep '^bench: .* peak .*sampled while it ran' "$scratch/out" | sed 's/^bench:/    /'
		echo "$k $cpu ${peak%% *} $maxrss" >>"$scratch/all"
	done
done
for k in 0 1; do
	awk -v k="$k" -v bin="${bins[$k]}" '
		$1 == k { cpu[++n] = $2; peak[n] = $3; rss[n] = $4 }
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		END { printf "%s: median of %d: CPU %.1f s, max RSS %.1f MB, sampled peak %.1f MB\n", bin, n, median(cpu, n), median(rss, n), median(peak, n) }
	' "$scratch/all"
done

#!/usr/bin/env bash
# usage: bench/features_ab.sh RUNS TRAINED DATA BINARY_A BINARY_B [RUN ARGS...]
#
# The features stage alone, two binaries in turn (A B A B ..., RUNS pairs):
# each run gets a fresh copy of the registry directory TRAINED (`cp -a` of a
# trained models/, so every run writes into the same file), DATA linked as
# data/, and runs `run --only features --force` with the tree's config (plus
# RUN ARGS, e.g. --set run.jobs=1). Prints each run's user + system CPU
# seconds, wall, peak RSS, the stage's own seconds, its page faults (`perf
# stat`: fresh pages, the kernel's zeroing of which a loaded machine does not
# move) and its content hash, then each binary's medians. The hashes must be
# one. Used for issue 13's
# features work (README "Threads and performance"):
#   bench/features_ab.sh 3 /work/trained/models /work/d1m/data /tmp/ltvpipe.old ./ltvpipe
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 5 ] || bench_usage "RUNS TRAINED DATA BINARY_A BINARY_B [RUN ARGS...]"
runs=$1 trained=$(realpath "$2") data=$(realpath "$3")
bins=("$(bench_binary "$4")" "$(bench_binary "$5")")
shift 5
bench_need_time
bench_scratch features-ab
export OMP_WAIT_POLICY=PASSIVE
ln -s "$data" "$scratch/data"
echo "features_ab: $runs pairs; load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= runs; r++)); do
	for k in 0 1; do
		rm -rf "$scratch/models"
		cp -a "$trained" "$scratch/models"
		chmod -R u+w "$scratch/models"
		(cd "$scratch" && perf stat -x, -o "$scratch/stat" -e page-faults -- \
			/usr/bin/time -o "$scratch/time" -f '%U %S %e %M' "${bins[$k]}" run \
			--config "$root/config/ltvpipe.yaml" --only features --force "$@" >"$scratch/log" 2>&1) ||
			{ tail -20 "$scratch/log" >&2; exit 1; }
		stage=$(sed -n 's/^features: done.* in \([0-9.]*\) s$/\1/p' "$scratch/log")
		hash=$(sqlite3 "$scratch/models/registry.sqlite" \
			"SELECT content_hash FROM artefacts WHERE name = 'features' ORDER BY id DESC LIMIT 1")
		read -r u s e m <"$scratch/time"
		pf=$(awk -F, '$3 ~ /^page-faults/ { print $1 }' "$scratch/stat")
		echo "$k $r $(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') $e $((m / 1024)) $stage $hash $pf"
	done
done | tee "$scratch/runs" | awk -v a="${bins[0]}" -v b="${bins[1]}" \
	'{ printf "features_ab: %s run %d: cpu %s s, wall %s s, peak %s MB, stage %s s, %s faults, hash %s\n", $1 ? b : a, $2, $3, $4, $5, $6, $8, $7 }'
for k in 0 1; do
	awk -v k="$k" -v bin="${bins[$k]}" "$bench_awk_median"'
		$1 == k { n++; c[n] = $3; w[n] = $4; p[n] = $5; s[n] = $6; f[n] = $8 }
		END { printf "features_ab: median %s: cpu %.2f s, wall %.2f s, peak %d MB, stage %.2f s, %d faults\n",
			bin, median(c, n), median(w, n), median(p, n), median(s, n), median(f, n) }' "$scratch/runs"
done
[ "$(awk '{ print $7 }' "$scratch/runs" | sort -u | wc -l)" = 1 ] ||
	{ echo "features_ab: the content hashes differ" >&2; exit 1; }

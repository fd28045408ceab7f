#!/usr/bin/env bash
# usage: bench/train_stages.sh USERS BINARY...
#
# The cold pipeline of each binary on one generated sample (USERS users,
# `generate --order time`), one after the other: `run --only ingest`, then
# `run` (features ... calibrate, timed with GNU time) on a fresh registry.
# Prints per binary the CPU seconds (user + system) and wall of the `run`
# after ingest, then each stage's own seconds (artefact timings) side by
# side, the waves the runner ran (its "in parallel" lines), and whether every
# artefact's content hash equals the first binary's (exit 1 if not).
#
# Stage seconds are wall seconds of stages that share two cores with their
# neighbours in a wave, so on a loaded machine read the CPU column and the
# serial stages (features, tiers, select, calibrate) first. Works in a
# scratch directory; touches nothing in the tree.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bench/train_stages.sh USERS BINARY..." >&2; exit 2; }
users=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x /usr/bin/time ] || { echo "bench: needs GNU /usr/bin/time (Debian package time)" >&2; exit 2; }
bins=()
for b in "$@"; do bins+=("$(realpath "$b")"); done
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvpipe-train-stages.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
"${bins[0]}" generate --users "$users" --order time --out "$scratch/data" >/dev/null
echo "bench: $users users; load $(cut -d' ' -f1-3 /proc/loadavg)"
for k in "${!bins[@]}"; do
	dir=$scratch/$k
	mkdir "$dir" && ln -s ../data "$dir/data"
	(cd "$dir" && "${bins[$k]}" run --config "$root/config/ltvpipe.yaml" --only ingest >ingest.log 2>&1 &&
		/usr/bin/time -f '%U %S %e %M' -o time "${bins[$k]}" run \
			--config "$root/config/ltvpipe.yaml" >run.log 2>&1) ||
		{ echo "${bins[$k]}: run failed" >&2; tail -20 "$dir/run.log" >&2; exit 1; }
	sqlite3 -separator ' ' "$dir/models/registry.sqlite" \
		"select name, json_extract(timings, '\$.seconds'), content_hash from artefacts
		 where name != 'ingest' order by id" >"$dir/stages"
	read -r u s e m <"$dir/time"
	printf '%-40s run after ingest: %7.2f CPU s, %7.2f s wall, %5.0f MB peak; load %s\n' \
		"$(basename "${bins[$k]}")" "$(echo "$u + $s" | bc)" "$e" "$(echo "$m / 1024" | bc)" \
		"$(cut -d' ' -f1-3 /proc/loadavg)"
	grep -o 'stages [0-9]*-[0-9]* of [0-9]*, in parallel: .*' "$dir/run.log" | sed 's/^/    wave: /'
done
printf '\n%-11s' stage
for b in "${bins[@]}"; do printf ' %14.14s' "$(basename "$b")"; done
printf '   (stage seconds)\n'
bad=0
while read -r name _ hash; do
	printf '%-11s' "$name"
	for k in "${!bins[@]}"; do
		read -r sec h < <(awk -v n="$name" '$1 == n { print $2, $3 }' "$scratch/$k/stages")
		printf ' %14.2f' "$sec"
		[ "$h" = "$hash" ] || { bad=1; printf '*'; }
	done
	printf '\n'
done <"$scratch/0/stages"
[ $bad = 0 ] && echo "content hashes: every stage identical to the first binary's" ||
	echo "content hashes: * marks a stage whose hash differs from the first binary's"
exit $bad

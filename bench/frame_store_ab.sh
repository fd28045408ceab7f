#!/usr/bin/env bash
# usage: bench/frame_store_ab.sh BIN_BEFORE BIN_AFTER USERS RUNS [READER]
#
# What storing the features frame costs its writer and its next reader:
# on one ingested registry (USERS generated users, `generate --order time`,
# ingested once by BIN_AFTER), RUNS rounds, alternating which binary goes
# first; each side copies the ingested registry, then runs
# `run --only features` (build, save, commit and its WAL checkpoint) and
# `run --only READER` (default tiers: loads the whole frame from the
# registry, as any stage of a run that does not start at features does).
# Prints per side the CPU seconds (user + system, GNU time) and peak RSS of
# each and the registry's bytes after them (database + WAL), then the
# medians; exits 1 when the two sides' features or READER content hashes
# differ (sqlite3 CLI).
# INGESTED=DIR (a models/ directory holding only an ingest) and DATA=DIR
# (its data/) skip the generate and ingest: e.g. at 1,000,000 users
#   INGESTED=/path/models.ingested DATA=/path/data bench/frame_store_ab.sh OLD ./ltvpipe 1000000 3
# The copies keep the database's mtime (cp -a): the stamp the last run left in
# registry.sqlite.lock then matches and `run` skips its PRAGMA quick_check, as
# a run after `run --only ingest` does (about 0.3 CPU s at 1,000,000 users). An
# INGESTED directory copied without -a has lost it: copy it with cp -a.
# CPU seconds, not wall: on a shared machine the wall measures the neighbours.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 4 ] || bench_usage "BIN_BEFORE BIN_AFTER USERS RUNS [READER]"
before=$(bench_binary "$1") after=$(bench_binary "$2") users=$3 runs=$4 reader=${5:-tiers}
bench_need_time
bench_scratch frame-store
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
config=$root/config/ltvpipe.yaml
if [ -n "${INGESTED:-}" ]; then
	ln -s "$(realpath "${DATA:?DATA=DIR with INGESTED}")" "$scratch/data"
	cp -a "$INGESTED" "$scratch/ingested"
else
	"$after" generate --users "$users" --order time --out "$scratch/data" >/dev/null
	mkdir "$scratch/ing" && ln -s ../data "$scratch/ing/data"
	(cd "$scratch/ing" && "$after" run --config "$config" --only ingest >/dev/null 2>&1)
	mv "$scratch/ing/models" "$scratch/ingested"
fi
echo "bench: $users users, $runs rounds, reader $reader; load $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A val
side() { # side NAME BIN ROUND: features then the reader on a fresh copy of the ingest
	local name=$1 bin=$2 dir=$scratch/$1.$3 feat rd bytes hashes
	mkdir "$dir" && ln -s ../data "$dir/data" && cp -a "$scratch/ingested" "$dir/models"
	(cd "$dir" && /usr/bin/time -f '%U %S %M' -o time.features "$bin" run --config "$config" \
		--only features >features.log 2>&1 &&
		/usr/bin/time -f '%U %S %M' -o time.reader "$bin" run --config "$config" \
		--only "$reader" >reader.log 2>&1) || { tail -5 "$dir"/*.log; exit 1; }
	feat=$(bench_cpu_seconds "$dir/time.features") rd=$(bench_cpu_seconds "$dir/time.reader")
	bytes=$(find "$dir/models" -name 'registry.sqlite*' -printf '%s\n' | awk '{ s += $1 } END { print s }')
	printf '%-6s features %6.2f s %4d MB  %-10s %6.2f s %4d MB  registry %5d MB\n' "$name" \
		"$feat" $(($(cut -d' ' -f3 "$dir/time.features") / 1024)) "$reader" "$rd" \
		$(($(cut -d' ' -f3 "$dir/time.reader") / 1024)) $((bytes / 1048576))
	hashes=$(sqlite3 "$dir/models/registry.sqlite" "SELECT group_concat(name || ' ' || content_hash, ', ')
		FROM artefacts WHERE name IN ('features', '$reader')")
	[ -z "${val[hashes]:-}" ] && val[hashes]=$hashes
	[ "${val[hashes]}" = "$hashes" ] || { echo "bench: content hashes differ: $hashes"; exit 1; }
	val[$name.f]+="$feat " val[$name.r]+="$rd " val[$name.b]+="$((bytes / 1048576)) "
	[ -n "${KEEP:-}" ] || rm -rf "$dir"
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for r in $(seq "$runs"); do
	if [ $((r % 2)) -eq 1 ]; then side before "$before" "$r"; side after "$after" "$r"
	else side after "$after" "$r"; side before "$before" "$r"; fi
done
echo "content hashes identical on both sides: ${val[hashes]}"
for s in before after; do
	printf 'median %-6s features %s s, %s %s s, registry %s MB\n' "$s" "$(median "${val[$s.f]}")" \
		"$reader" "$(median "${val[$s.r]}")" "$(median "${val[$s.b]}")"
done

#!/usr/bin/env bash
# usage: bench/same_results.sh BIN_BEFORE BIN_AFTER USERS [ORDER]
#
# Runs the cold pipeline (`ltvpipe run`) with two binaries on the same
# generated sample (USERS users, events in ORDER, default time) and prints
# each stage's artefact content hash side by side: the check that a speed
# change left every result as it was. Exits 1 when a hash differs.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: bench/same_results.sh BIN_BEFORE BIN_AFTER USERS [ORDER]" >&2; exit 2; }
before=$(realpath "$1") after=$(realpath "$2") users=$3 order=${4:-time}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvpipe-same.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
"$after" generate --users "$users" --order "$order" --out "$scratch/data" >/dev/null
for side in before after; do
	bin=$before
	[ $side = after ] && bin=$after
	mkdir "$scratch/$side"
	ln -s ../data "$scratch/$side/data"
	(cd "$scratch/$side" && "$bin" run --config "$root/config/ltvpipe.yaml" >run.log 2>&1) ||
		{ echo "$side: ltvpipe run failed:" >&2; tail -20 "$scratch/$side/run.log" >&2; exit 1; }
	sqlite3 -separator ' ' "$scratch/$side/models/registry.sqlite" \
		"select name, content_hash from artefacts order by name" >"$scratch/$side.hashes"
done
join "$scratch/before.hashes" "$scratch/after.hashes" |
	awk '{ same = $2 == $3 ? "identical" : "DIFFERENT"; bad += $2 != $3
	       printf "%-11s %s %s %s\n", $1, $2, $3, same } END { exit bad > 0 }'

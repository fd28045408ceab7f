#!/usr/bin/env bash
# usage: bench/same_results.sh BIN_BEFORE BIN_AFTER USERS [ORDER]
#
# Runs the cold pipeline (`ltvpipe run`) with two binaries on the same
# generated sample (USERS users, events in ORDER, default time) and prints
# each stage's artefact content hash side by side: the check that a speed
# change left every result as it was. Exits 1 when a hash differs.
# A change that adds config keys: BENCH_BEFORE_CONFIG=OLD.yaml (and
# BENCH_AFTER_SET="KEY=OLDVALUE" where a default changed); bench/lib.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 3 ] || bench_usage "BIN_BEFORE BIN_AFTER USERS [ORDER]"
bench_scratch same
bench_sides "$(bench_binary "$1")" "$(bench_binary "$2")" "$3" "${4:-time}"
for side in before after; do
	sqlite3 -separator ' ' "$scratch/$side/models/registry.sqlite" \
		"select name, content_hash from artefacts order by name" >"$scratch/$side.hashes"
done
join "$scratch/before.hashes" "$scratch/after.hashes" |
	awk '{ same = $2 == $3 ? "identical" : "DIFFERENT"; bad += $2 != $3
	       printf "%-11s %s %s %s\n", $1, $2, $3, same } END { exit bad > 0 }'

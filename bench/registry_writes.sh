#!/usr/bin/env bash
# usage: bench/registry_writes.sh BIN_BEFORE BIN_AFTER INGESTED_MODELS_DIR DATA_DIR
#
# What a cold training run writes into the page cache, by file: one `run`
# (features … calibrate) of each binary on a fresh copy of a registry that
# holds only an ingest of DATA_DIR's files (e.g. /work/tmp-s20/models.ingested
# and the 1,000,000-user files), under `strace -f -e pwrite64,write`; prints
# per side the bytes and calls into the database file, its WAL and SQLite's
# temporary files (statement journals, sorters: /var/tmp/etilqs_*), and
# whether every artefact's content hash is the same on both sides (exit 1
# if not). Counts, not times: they do not depend on the machine's load.
# Used for issue 13 (session 20, helper "wave-cpu"): INSERT OR REPLACE's
# statement journals wrote 71 MB of temporary files, the upsert 2 MB.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 4 ] || bench_usage "BIN_BEFORE BIN_AFTER INGESTED_MODELS_DIR DATA_DIR"
declare -A bin=([before]=$(bench_binary "$1") [after]=$(bench_binary "$2"))
ingested=$(realpath "$3") data=$(realpath "$4")
command -v strace >/dev/null || bench_fail "needs strace (Debian package strace)"
bench_scratch regwrites
for side in before after; do
	dir=$scratch/$side
	mkdir "$dir" && ln -s "$data" "$dir/data" && cp -r "$ingested" "$dir/models"
	(cd "$dir" && OMP_WAIT_POLICY=PASSIVE strace -f -y -e trace=pwrite64,write -o trace \
		"${bin[$side]}" run --config "$root/config/ltvpipe.yaml" --quiet >run.log 2>&1) ||
		{ tail -20 "$dir/run.log" >&2; exit 1; }
	awk -v side="$side" '/^[0-9]+ +p?write(64)?\(/ && $NF ~ /^[0-9]+$/ {
		kind = "other"
		if ($0 ~ /registry\.sqlite-wal>/) kind = "wal"
		else if ($0 ~ /registry\.sqlite>/) kind = "database"
		else if ($0 ~ /etilqs_/) kind = "sqlite temporary"
		b[kind] += $NF; c[kind]++
	} END { for (k in b) printf "bench: %-6s %-16s %12d bytes %7d calls\n", side, k, b[k], c[k] }' \
		"$dir/trace" | sort
	sqlite3 -separator ' ' "$dir/models/registry.sqlite" \
		"select name, content_hash from artefacts order by name" >"$scratch/$side.hashes"
done
cmp -s "$scratch/before.hashes" "$scratch/after.hashes" &&
	echo "bench: every content hash identical" ||
	{ echo "bench: content hashes DIFFER" >&2; exit 1; }

#!/usr/bin/env bash
# usage: bench/ingest_same.sh BIN_BEFORE BIN_AFTER USERS [ORDER] [--set KEY=VALUE ...]
#
# The check for ingest speed work, quicker than bench/same_results.sh (which
# runs every stage): runs `ltvpipe run --only ingest` with both binaries on
# one generated sample and compares what ingest wrote, row for row: the users
# table, every user-day block (its bytes), max_event_time, the rejects file
# and the stage's fingerprint, config text, content hash and metrics. Exits 1 when anything differs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 3 ] || bench_usage "BIN_BEFORE BIN_AFTER USERS [ORDER] [--set K=V ...]"
before=$(bench_binary "$1") after=$(bench_binary "$2") users=$3 order=${4:-time}
shift 3
[ $# -gt 0 ] && shift
bench_scratch ingest-same
bench_sides "$before" "$after" "$users" "$order" --only ingest "$@"
for side in before after; do
	reg=$scratch/$side/models/registry.sqlite
	{
		sqlite3 "$reg" "select uid, user_id, app_id, campaign, install_time, quote(cost), attributes from users order by uid"
		sqlite3 "$reg" "select uid_min, uid_max, n_rows, hex(data) from user_day_blocks order by uid_min"
		sqlite3 "$reg" "select value from meta where key = 'max_event_time'"
		sqlite3 "$reg" "select fingerprint, config, content_hash, metrics from artefacts where name = 'ingest'" | sed 's/"rejects_file":"[^"]*"//'
		cat "$scratch/$side"/rejects/*.csv 2>/dev/null || true
	} | md5sum | cut -d' ' -f1 >"$scratch/$side.sum"
done
if cmp -s "$scratch/before.sum" "$scratch/after.sum"; then
	echo "ingest output identical ($users users, events by $order): $(cat "$scratch/after.sum")"
else
	echo "ingest output DIFFERENT ($users users, events by $order)" >&2
	exit 1
fi

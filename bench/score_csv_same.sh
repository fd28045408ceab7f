#!/usr/bin/env bash
# usage: bench/score_csv_same.sh LTVPIPE REGISTRY REGISTRY_WITH_EXPERIMENT DATA_TIME DATA_USER OUT_DIR
#
# Runs `ltvpipe score` from CSV the ways the product promises to keep, and
# keeps every output in OUT_DIR, so two binaries (before and after a change to
# scoring from CSV) can be compared with `diff -r DIR_A DIR_B`:
#   time, user     --users U --events E on DATA_TIME (generate --order time)
#                  and DATA_USER (the default order)
#   users_only     --users U alone (users without events)
#   gz             both files gzip-compressed
#   shardA, shardB --shard 0/2 and 1/2 (the shard part files too)
#   experiment     with REGISTRY_WITH_EXPERIMENT, which runs an A/B
#                  experiment: the candidate's share and the logged predictions
#   bad_*          bad inputs: the exit code, stderr's error lines and any
#                  output left behind
# and each registry's `scores` records (scored_at masked). scored_at is fixed
# with SOURCE_DATE_EPOCH; stderr keeps only the "ltvpipe score: error" line, since the
# progress lines name scratch directories and times. REGISTRY and
# REGISTRY_WITH_EXPERIMENT are copied, never written.
set -euo pipefail
[ $# -eq 6 ] || { sed -n 2p "$0" >&2; exit 2; }
bin=$(realpath "$1") reg=$(realpath "$2") regx=$(realpath "$3")
dt=$(realpath "$4") du=$(realpath "$5") out=$6
mkdir -p "$out"
out=$(realpath "$out")
export SOURCE_DATE_EPOCH=1767225600
work=$(mktemp -d "${TMPDIR:-/tmp}/score-same.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
cp "$reg" r.sqlite
cp "$regx" rx.sqlite
R=(--set registry.path=r.sqlite)

case_run() { # name, then score's arguments
	local name=$1
	shift
	set +e
	"$bin" score "$@" --output "$name.csv" >"$name.stdout" 2>"$name.stderr"
	echo "exit $?" >"$out/$name.exit"
	set -e
	grep "^ltvpipe score: error" "$name.stderr" >"$out/$name.errors" || true
	for f in "$name".csv*; do
		[ -e "$f" ] && cp "$f" "$out/"
	done
	return 0
}

case_run time "${R[@]}" --users "$dt/users.csv" --events "$dt/events.csv"
case_run user "${R[@]}" --users "$du/users.csv" --events "$du/events.csv"
case_run users_only "${R[@]}" --users "$dt/users.csv"
gzip -c "$dt/users.csv" >u.csv.gz
gzip -c "$dt/events.csv" >e.csv.gz
case_run gz "${R[@]}" --users u.csv.gz --events e.csv.gz
case_run shardA "${R[@]}" --users "$dt/users.csv" --events "$dt/events.csv" --shard 0/2
case_run shardB "${R[@]}" --users "$dt/users.csv" --events "$dt/events.csv" --shard 1/2
case_run experiment --set registry.path=rx.sqlite --users "$dt/users.csv" --events "$dt/events.csv"
sqlite3 rx.sqlite "select experiment, user_id, arm, model_version, as_of, age_days, ltv, predictions from experiment_predictions order by experiment, user_id" >"$out/experiment.log"

# bad inputs
sed '1s/install_time/installed/' "$dt/users.csv" >nocol_users.csv
case_run bad_users_column "${R[@]}" --users nocol_users.csv --events "$dt/events.csv"
sed '1s/revenue/amount/' "$dt/events.csv" >nocol_events.csv
case_run bad_events_column "${R[@]}" --users "$dt/users.csv" --events nocol_events.csv
: >empty.csv
case_run bad_empty_users "${R[@]}" --users empty.csv --events "$dt/events.csv"
case_run bad_empty_events "${R[@]}" --users "$dt/users.csv" --events empty.csv
case_run bad_missing "${R[@]}" --users no_such.csv --events "$dt/events.csv"
# bad rows: rejected with their reasons, every users row still in the output
awk -F, -v OFS=, 'NR == 3 { $4 = "not-a-time" } NR == 5 { $5 = "-3" } NR == 7 { $1 = "" } { print }' \
	"$dt/users.csv" >badrows_users.csv
awk -F, -v OFS=, 'NR == 3 { $2 = "yesterday" } NR == 4 { $3 = "abc" } NR == 6 { $1 = "nobody" } { print }' \
	"$dt/events.csv" >badrows_events.csv
case_run bad_rows "${R[@]}" --users badrows_users.csv --events badrows_events.csv
printf 'user_id;app_id\n' >semi.csv
case_run bad_delimiter "${R[@]}" --users semi.csv --events "$dt/events.csv"

for r in r rx; do
	sqlite3 $r.sqlite "select id, model_version, as_of, users, input, output, content_hash from scores order by id" \
		>"$out/$r.scores"
done
ls "$out" | wc -l

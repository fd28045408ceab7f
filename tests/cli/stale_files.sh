# Why ingest is stale names the input files: a new file by path and content,
# a file read before that the patterns no longer match, never "the n-th hash
# of one list against the n-th of the other".
set -u
"$LTVPIPE" generate --users 200 --out data >/dev/null || exit 1
mv data/events.csv data/events_1.csv
G="--set input.events=data/events*.csv"
# shellcheck disable=SC2086
"$LTVPIPE" run $G --only ingest >/dev/null 2>&1
echo "ingest exit $?"
{ head -1 data/events_1.csv; sed -n 2,3p data/events_1.csv; } >data/events_2.csv
# shellcheck disable=SC2086
"$LTVPIPE" run $G --dry-run --only ingest
# shellcheck disable=SC2086
"$LTVPIPE" status $G 2>&1 | grep '^ingest' | sed 's/made .* by run [0-9a-f-]*/made TIME by run RUN/'
mv data/events_1.csv data/old.csv
# shellcheck disable=SC2086
"$LTVPIPE" run $G --dry-run --only ingest
# a config change is still named as such
mv data/old.csv data/events_1.csv && rm data/events_2.csv
# shellcheck disable=SC2086
"$LTVPIPE" run $G --dry-run --only ingest --set ingest.max_reject_rate=0.02

# The users writer (pipeline/ingest.c) inserts users on a thread of its own
# from the first 1,024 on, and keeps inserting while the next users file and
# the events files are read; the stage waits for it only before it writes
# the user-days. Users split over two files, with batches across the files'
# boundary, must load exactly what one file loads (same uids, users,
# user-day blocks). A failure after the writer has started (a users file
# with too many rejects, an events file that ends in an open quote) fails
# the stage and leaves no user behind, and the next run loads everything.
set -u
"$LTVPIPE" generate --users 6000 --order time --out data >/dev/null || exit 1
mkdir in
head -n 2501 data/users.csv >in/users_1.csv
{ head -n 1 data/users.csv; tail -n +2502 data/users.csv; } >in/users_2.csv

# ingest in DIR with the users pattern and events given; prints the exit
# code, the error line and the users the registry holds
ingest() {
	local d=$1 users=$2 events=$3
	mkdir -p "$d" && ln -sfn ../in "$d/in" && ln -sfn ../data "$d/data"
	(cd "$d" && "$LTVPIPE" run --only ingest --set "input.users=$users" \
		--set "input.events=$events" --set ingest.rejects_dir=rej >out 2>err)
	echo "$d: exit $?, $(sqlite3 "$d/models/registry.sqlite" "select count(*) from users") users$(grep '^ltvpipe' "$d/err" | sed 's/: [0-9]* of [0-9]* rows/: N rows/; s/ *(.*//; s/^/, /')"
}
dump() {
	sqlite3 "$1/models/registry.sqlite" "select uid, user_id, app_id, campaign, install_time, quote(cost), attributes from users order by uid"
	sqlite3 "$1/models/registry.sqlite" "select uid_min, uid_max, n_rows, hex(data) from user_day_blocks order by uid_min"
	sqlite3 "$1/models/registry.sqlite" "select value from meta where key = 'max_event_time'"
}

ingest one data/users.csv data/events.csv
ingest two 'in/users_*.csv' data/events.csv
dump one >one.all && dump two >two.all
cmp -s one.all two.all && echo "two users files load what one loads" || diff one.all two.all | head

# The second users file fails ingest.max_reject_rate while the writer inserts the first's.
awk -F, -v OFS=, 'NR > 1 { $4 = "not a time" } { print }' in/users_2.csv >bad_users.csv
cp in/users_1.csv in/bad_1.csv && cp bad_users.csv in/bad_2.csv
ingest bad_users 'in/bad_*.csv' data/events.csv

# The events file fails at its end, after every user was queued.
cp data/events.csv events_open_quote.csv
printf '%s,2025-01-02T00:00:00Z,"7,purchase\n' "$(sed -n 2p data/users.csv | cut -d, -f1)" >>events_open_quote.csv
ln -s ../events_open_quote.csv in/events_open_quote.csv
ingest bad_events data/users.csv in/events_open_quote.csv

# The same registry then loads the good files as a fresh one does.
ingest bad_events data/users.csv data/events.csv
dump bad_events >again.all
cmp -s one.all again.all && echo "after the failure the registry loads what a fresh one loads" || diff one.all again.all | head
exit 0

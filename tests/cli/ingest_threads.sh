# Events files of 1 MB or more are parsed on two threads (run.jobs >= 2): the
# read-ahead's buffers are resolved alternately by a worker and the stage's
# thread and applied in file order. Everything ingest writes must be what
# one thread writes: the same rejects in the same order with the same lines
# and reasons, the same first reject in the max_reject_rate message, the same
# user-day blocks, users, max_event_time and metrics. Bad rows of every kind
# are spread over the ~40 buffers of a 2.4 MB file (quoted fields with
# newlines shift the line numbers), and a file that ends in an unterminated
# quote must fail with the same message after the same rejects.
set -u
"$LTVPIPE" generate --users 6000 --order time --out data >/dev/null || exit 1
u1=$(sed -n 2p data/users.csv | cut -d, -f1)
awk -v u1="$u1" 'NR > 1 && NR % 613 == 0 {
	k = (NR / 613) % 7
	if (k == 0) { print u1 ",2025-13-45T00:00:00Z,1,purchase"; next }
	if (k == 1) { print "nosuchuser" NR ",2025-01-02T00:00:00Z,1,purchase"; next }
	if (k == 2) { print u1 ",2025-01-02T00:00:00Z,-3,purchase"; next }
	if (k == 3) { print u1 ",2025-01-02T00:00:00Z,1"; next }
	if (k == 4) { print u1 ",2025-01-02T00:00:00Z,\"4\n2\",purchase"; next }
	if (k == 5) { printf "%s,2025-01-02T00:00:00Z,5%c5,purchase\n", u1, 0; next }
	if (k == 6) { print u1 ",1999-01-02T00:00:00Z,6,\"pur\nchase\""; next }
}
{ print }' data/events.csv >events.bad
[ "$(wc -c <events.bad)" -gt 1100000 ] || echo "events.bad is under 1 MB: one thread only"
mv events.bad data/events.csv

# ingest in DIR with run.jobs JOBS; prints what it wrote, one digest
ingest_with() {
	mkdir "$1" && ln -s ../data "$1/data"
	(cd "$1" && "$LTVPIPE" run --to ingest --set run.jobs="$2" --set ingest.rejects_dir=rej \
		--set ingest.max_reject_rate="$3" >out 2>err; echo "exit $?" >exit)
	reg=$1/models/registry.sqlite
	{
		cat "$1/exit"
		grep -v 'rows/s\|2 threads' "$1/err" | grep -o 'data/events.csv:.*' | sed 's/ in rej.*//'
		cat "$1"/rej/*.rejects.csv 2>/dev/null
		[ -f "$reg" ] || exit 0
		sqlite3 "$reg" "select uid, user_id, install_time, quote(cost) from users order by uid"
		sqlite3 "$reg" "select uid_min, uid_max, n_rows, hex(data) from user_day_blocks order by uid_min"
		sqlite3 "$reg" "select value from meta where key = 'max_event_time'"
		sqlite3 "$reg" "select metrics from artefacts where name = 'ingest'" |
			sed 's/"rejects_file":"[^"]*"//'
	} >"$1.all"
}
ingest_with one 1 0.05
ingest_with two 2 0.05
head -1 one.all
echo "rejects: $(grep -c '^data/events.csv,' one.all)"
echo "threads: $(grep -c 'rows on 2 threads' one/err) and $(grep -c 'rows on 2 threads' two/err)"
cmp -s one.all two.all && echo "two threads write what one writes" || diff one.all two.all | head

# Too many rejects: the message quotes the first one, whichever thread found it.
rm -rf one two
ingest_with one 1 0.0005
ingest_with two 2 0.0005
cat one/exit
grep -c 'first: data/events.csv:613: user_id: unknown user' one/err
cmp -s one.all two.all && echo "same failure and first reject on two threads" || diff one.all two.all | head

# A quote left open near the end: the rows before it, then the same error.
rm -rf one two
printf '%s,2025-01-02T00:00:00Z,"7,purchase\n' "$u1" >>data/events.csv
tail -n 300 data/events.csv | grep -v '"' >>data/events.csv
ingest_with one 1 0.05
ingest_with two 2 0.05
cat one/exit
grep -c 'unterminated quoted field' one/err
cmp -s one.all two.all && echo "same error after the same rejects on two threads" || diff one.all two.all | head

# Inputs as people have them: gzip files, ';' and tab delimiters, epoch times,
# times without a zone and refunds. Every accepted variant must load exactly
# what the plain ISO 8601 CSV loads (same users, install times and user-days);
# every rejected one fails with a message naming the file, the field and the fix.
set -u
"$LTVPIPE" generate --users 200 --out data >/dev/null || exit 1

# One ingest in a fresh directory d with the inputs given; prints the exit
# code and what was loaded (users, sum of install times, user-days, revenue).
# user-days are stored as columnar blocks: contrib/user_days.py reads them with SQL
user_days() { python3 "$LTV_ROOT/contrib/user_days.py" "$@"; }

ingest() {
	local d=$1 users=$2 events=$3; shift 3
	mkdir -p "$d" && cp "$users" "$events" "$d/" &&
		(cd "$d" && "$LTVPIPE" run --only ingest --set "input.users=$(basename "$users")" \
			--set "input.events=$(basename "$events")" "$@" >out 2>err)
	local rc=$?
	if [ -f "$d/models/registry.sqlite" ] && [ $rc = 0 ]; then
		echo "$d: exit $rc, loaded $(user_days "$d/models/registry.sqlite" \
			"select (select count(*) || ' users ' || sum(install_time) from users),
			        count(*) || ' user-days', printf('%.2f', sum(revenue)) from user_days" | tr '|' ' ')"
	else
		echo "$d: exit $rc: $(grep '^ltvpipe' "$d/err" | sed 's|logs/[0-9a-f-]*\.rejects|logs/RUN.rejects|')"
	fi
}

ingest plain data/users.csv data/events.csv

echo "--- gzip"
gzip -c data/users.csv >users.csv.gz && gzip -c data/events.csv >events.csv.gz
ingest gz users.csv.gz events.csv.gz
cp events.csv.gz events.noext && ingest gz_noext data/users.csv events.noext
head -c 2000 events.csv.gz >cut.csv.gz
ingest gz_truncated data/users.csv cut.csv.gz

echo "--- delimiters"
sed 's/,/;/g' data/users.csv >users_semi.csv && sed 's/,/;/g' data/events.csv >events_semi.csv
ingest semicolon users_semi.csv events_semi.csv --set 'input.delimiter=;'
ingest semicolon_unset users_semi.csv events_semi.csv
tr ',' '\t' <data/users.csv >users_tab.csv && tr ',' '\t' <data/events.csv >events_tab.csv
ingest tab users_tab.csv events_tab.csv --set input.delimiter=tab
ingest tab_unset users_tab.csv events_tab.csv
ingest comma_as_semicolon data/users.csv data/events.csv --set 'input.delimiter=;'
ingest pipe data/users.csv data/events.csv --set 'input.delimiter=|'

echo "--- time formats"
python3 - <<'PY'
import csv, datetime, zoneinfo
def conv(src, dst, col, fmt):
    with open(src) as f, open(dst, "w", newline="") as g:
        r = csv.DictReader(f); w = csv.DictWriter(g, r.fieldnames, lineterminator="\n"); w.writeheader()
        for row in r:
            t = datetime.datetime.strptime(row[col], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
            row[col] = fmt(t)
            w.writerow(row)
for name, fmt in [("s", lambda t: str(int(t.timestamp()))), ("ms", lambda t: str(int(t.timestamp()) * 1000 + 250)),
                  ("nozone", lambda t: t.strftime("%Y-%m-%dT%H:%M:%S")),
                  ("paris", lambda t: t.astimezone(zoneinfo.ZoneInfo("Europe/Paris")).strftime("%Y-%m-%d %H:%M:%S")),
                  ("plus0530", lambda t: t.astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30))).strftime("%Y-%m-%dT%H:%M:%S"))]:
    conv("data/users.csv", "users_%s.csv" % name, "install_time", fmt)
    conv("data/events.csv", "events_%s.csv" % name, "event_time", fmt)
PY
ingest unix_s users_s.csv events_s.csv --set columns.time_format=unix_s
ingest unix_ms users_ms.csv events_ms.csv --set columns.time_format=unix_ms
ingest unix_s_given_iso data/users.csv data/events.csv --set columns.time_format=unix_s
ingest iso_given_unix users_s.csv events_s.csv
ingest bad_format data/users.csv data/events.csv --set columns.time_format=epoch

echo "--- times without a zone"
ingest nozone users_nozone.csv events_nozone.csv
ingest nozone_utc users_nozone.csv events_nozone.csv --set ingest.timezone=UTC
ingest nozone_paris users_paris.csv events_paris.csv --set ingest.timezone=Europe/Paris
ingest nozone_offset users_plus0530.csv events_plus0530.csv --set ingest.timezone=+05:30
ingest nozone_wrong_offset users_plus0530.csv events_plus0530.csv --set ingest.timezone=+05:00
ingest unknown_zone users_nozone.csv events_nozone.csv --set ingest.timezone=Mars/Olympus
ingest path_zone users_nozone.csv events_nozone.csv --set ingest.timezone=../../etc/passwd

echo "--- refunds"
u=$(awk -F, 'NR > 1 && $3 > 0 { print $1; exit }' data/events.csv)
paid=$(awk -F, -v u="$u" '$1 == u && $3 > 0 { print $2; exit }' data/events.csv)
cp data/events.csv events_refund.csv
# a partial refund on the purchase's day, and one larger than the day's revenue a day later
day=${paid%%T*}
next=$(python3 -c "import datetime,sys; print((datetime.date.fromisoformat('$day') + datetime.timedelta(days=1)).isoformat())")
echo "$u,${day}T23:59:59Z,-0.01,refund" >>events_refund.csv
echo "$u,${next}T23:59:59Z,-1000,refund" >>events_refund.csv
ingest refund_reject data/users.csv events_refund.csv --set ingest.max_reject_rate=0
ingest refund_subtract data/users.csv events_refund.csv --set ingest.negative_revenue=subtract
sqlite3 refund_subtract/models/registry.sqlite "select json_extract(metrics, '$.refunds_subtracted'),
	json_extract(metrics, '$.refunded_revenue'), json_extract(metrics, '$.user_days_floored_at_0')
	from artefacts where name = 'ingest'" | sed 's/^/refund_subtract: refunds, amount, days floored: /'
user_revenue="select printf('%.17g', sum(revenue)) from user_days d join users x using (uid) where x.user_id = '$u'"
echo "refund_subtract: revenue of that user's days differs from plain by $(awk -v a="$(user_days refund_subtract/models/registry.sqlite "$user_revenue")" \
	-v b="$(user_days plain/models/registry.sqlite "$user_revenue")" 'BEGIN { printf "%.2f", a - b }')"
echo "refund_subtract: negative days $(user_days refund_subtract/models/registry.sqlite 'select count(*) from user_days where revenue < 0')"
ingest refund_bad_value data/users.csv events_refund.csv --set ingest.negative_revenue=keep

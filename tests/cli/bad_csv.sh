# Bad CSV rows: each goes to the rejects file with file, line, field and reason;
# over ingest.max_reject_rate the run fails (exit 1) naming the first one and
# the registry gets no ingest artefact and no data.
# Runs stop after features (--to features): the model stages are not what is tested here.
set -u
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
u1=$(sed -n 2p data/users.csv | cut -d, -f1)
dup=$(sed -n 2p data/users.csv)
n_users=$(wc -l <data/users.csv)   # 3001 with the header
n_events=$(wc -l <data/events.csv)

# users: five bad rows and one good row whose quoted campaign spans two lines
cat >>data/users.csv <<CSV
bad_time,app_x,camp_x,not-a-date,1,us,ios
$dup
short_row,app_x
neg_cost,app_x,camp_x,2025-01-05T00:00:00Z,-3,us,ios
multi,app_x,"camp
line2",2025-01-05T00:00:00Z,1,us,ios
neg_cost2,app_x,camp_x,2025-01-05T00:00:00Z,-1,us,ios
CSV
# events: two rows corrupted in place, then appended rows
awk -F, -v OFS=, 'NR == 10 { $3 = "-1.5" } NR == 20 { $2 = "2025-02-30T00:00:00Z" } { print }' \
	data/events.csv >events.tmp && mv events.tmp data/events.csv
cat >>data/events.csv <<CSV
$u1,2025-01-02T00:00:00Z,-5,purchase
nobody,2025-01-02T00:00:00Z,1,purchase
$u1,2000-01-01T00:00:00Z,0,session
$u1,2025-01-02
$u1,yesterday,1,purchase
multi,2025-01-06T00:00:00Z,2,purchase
bad_time,2025-01-06T00:00:00Z,2,purchase
CSV

e=$n_events
cat >expected.rejects <<EXP
file,line,field
data/users.csv,$((n_users + 1)),install_time
data/users.csv,$((n_users + 2)),user_id
data/users.csv,$((n_users + 3)),(row)
data/users.csv,$((n_users + 4)),cost
data/users.csv,$((n_users + 7)),cost
data/events.csv,10,revenue
data/events.csv,20,event_time
data/events.csv,$((e + 1)),revenue
data/events.csv,$((e + 2)),user_id
data/events.csv,$((e + 3)),event_time
data/events.csv,$((e + 4)),(row)
data/events.csv,$((e + 5)),event_time
data/events.csv,$((e + 7)),user_id
EXP

# 1. no rejects allowed: fails on users.csv, nothing is kept
"$LTVPIPE" run --to features --set ingest.max_reject_rate=0 --set ingest.rejects_dir=rejects_strict >out 2>err
echo "strict run exit $?"
grep -qF "data/users.csv: 5 of 3006 rows rejected" err && echo "strict: names the file and the count"
grep -qF "first: data/users.csv:$((n_users + 1)): install_time: 'not-a-date' is not an ISO 8601" err \
	&& echo "strict: names the first bad line and field"
grep -qF "rejects_strict/" err && echo "strict: points at the rejects file"
echo "strict: artefacts $(sqlite3 models/registry.sqlite 'select count(*) from artefacts')"
echo "strict: users $(sqlite3 models/registry.sqlite 'select count(*) from users')"
echo "strict: user_days $(python3 "$LTV_ROOT/contrib/user_days.py" models/registry.sqlite 'select count(*) from user_days')"
echo "strict: ingested files $(sqlite3 models/registry.sqlite 'select count(*) from ingested_files')"
echo "strict: run status $(sqlite3 models/registry.sqlite 'select status from runs')"

# 2. a tolerant limit: the run succeeds and every bad row is listed
"$LTVPIPE" run --to features --set ingest.max_reject_rate=0.05 --set ingest.rejects_dir=rejects_ok >out 2>err
echo "tolerant run exit $?"
n_files=$(ls rejects_ok | wc -l)
echo "tolerant: rejects files $n_files"
rej=$(ls rejects_ok/*.rejects.csv)
cut -d, -f1-3 "$rej" >actual.rejects
if diff expected.rejects actual.rejects >rejects.diff; then
	echo "tolerant: rejects file lists file, line and field of each bad row"
else
	cat rejects.diff
fi
check_reason() {
	grep -qF "$1" "$rej" && echo "reason: $2" || echo "missing reason: $2"
}
check_reason "data/users.csv,$((n_users + 1)),install_time,'not-a-date' is not an ISO 8601 date or date-time" "unparsable install_time"
check_reason "data/users.csv,$((n_users + 2)),user_id,duplicate user id '$u1'" "duplicate user_id"
check_reason "data/users.csv,$((n_users + 3)),(row),\"row has 2 fields, the header has 7\"" "wrong column count"
check_reason "data/users.csv,$((n_users + 4)),cost,'-3' is not a number >= 0" "negative cost"
check_reason "data/events.csv,$((e + 1)),revenue,'-5' is not a number >= 0" "negative revenue"
check_reason "data/events.csv,$((e + 2)),user_id,unknown user 'nobody'" "unknown user"
check_reason "data/events.csv,$((e + 3)),event_time,event at 2000-01-01T00:00:00Z is before the user's install" "event before install"
check_reason "data/events.csv,20,event_time,'2025-02-30T00:00:00Z' is not an ISO 8601" "impossible date"
q="select json_extract(metrics, '\$.users_rejected') || ' ' || json_extract(metrics, '\$.events_rejected')"
q="$q || ' ' || json_extract(metrics, '\$.users_loaded') from artefacts where name = 'ingest'"
echo "tolerant: users/events rejected, users loaded: $(sqlite3 models/registry.sqlite "$q")"
echo "tolerant: multi-line campaign kept: $(sqlite3 models/registry.sqlite "select count(*) from users where user_id = 'multi' and campaign = 'camp
line2'")"
echo "tolerant: events of multi loaded: $(python3 "$LTV_ROOT/contrib/user_days.py" models/registry.sqlite "select sum(d.revenue) from user_days d join users u on u.uid = d.uid where u.user_id = 'multi'")"
echo "tolerant: integrity $(sqlite3 models/registry.sqlite 'pragma integrity_check')"
exit 0

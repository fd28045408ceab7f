# Bytes and numbers ingest must reject, never load altered: a NUL byte inside a
# field (it used to truncate "9\0.99" to 9 and "u00000006\0EXTRA" to
# u00000006), invalid UTF-8, a field over the 65536-byte limit, and revenue or
# cost above 1e9 (1e308 passed and made later sums infinite). Each goes to the
# rejects file with file, line and field. And when one file exceeds
# ingest.max_reject_rate, the message quotes that file's first reject, not
# another file's.
set -u
"$LTVPIPE" generate --users 300 --out data >/dev/null || exit 1
u1=$(sed -n 2p data/users.csv | cut -d, -f1)
u6=$(sed -n 7p data/users.csv | cut -d, -f1)
n_users=$(wc -l <data/users.csv)
n_events=$(wc -l <data/events.csv)
cp data/users.csv users.orig
cp data/events.csv events.orig

{
	printf 'nulcost,app_x,camp_x,2025-01-05T00:00:00Z,9\0.99,us,ios\n'
	printf '%s\0EXTRA,app_x,camp_x,2025-01-05T00:00:00Z,1,us,ios\n' "$u6"
	printf 'badutf,app_x,camp\377,2025-01-05T00:00:00Z,1,us,ios\n'
	printf 'longcamp,app_x,%s,2025-01-05T00:00:00Z,1,us,ios\n' "$(head -c 70000 /dev/zero | tr '\0' x)"
	printf 'hugecost,app_x,camp_x,2025-01-05T00:00:00Z,1e308,us,ios\n'
	printf 'bigcost,app_x,camp_x,2025-01-05T00:00:00Z,2000000000,us,ios\n'
	printf 'okcost,app_x,camp_x,2025-01-05T00:00:00Z,999999999.99,us,ios\n'
} >>data/users.csv
{
	printf '%s,2025-01-02T00:00:00Z,1e308,purchase\n' "$u1"
	printf '%s,2025-01-02T00:00:00Z,9\0.99,purchase\n' "$u1"
	printf '%s,2025-01-02T00:00:00Z,1000000000.01,purchase\n' "$u1"
	printf '%s,2025-01-02T00:00:00Z,1,purch\303\251\n' "$u1"
	printf 'nulcost,2025-01-06T00:00:00Z,2,purchase\n'
	printf 'okcost,2025-01-06T00:00:00Z,2.5,purchase\n'
} >>data/events.csv
u=$n_users e=$n_events
cat >expected.rejects <<EXP
file,line,field
data/users.csv,$((u + 1)),cost
data/users.csv,$((u + 2)),user_id
data/users.csv,$((u + 3)),campaign
data/users.csv,$((u + 4)),campaign
data/users.csv,$((u + 5)),cost
data/users.csv,$((u + 6)),cost
data/events.csv,$((e + 1)),revenue
data/events.csv,$((e + 2)),revenue
data/events.csv,$((e + 3)),revenue
data/events.csv,$((e + 5)),user_id
EXP
"$LTVPIPE" run --to ingest --set ingest.max_reject_rate=0.05 --set ingest.rejects_dir=rej >out 2>err
echo "run exit $?"
rej=$(ls rej/*.rejects.csv)
cut -d, -f1-3 "$rej" >actual.rejects
if diff expected.rejects actual.rejects >rejects.diff; then
	echo "rejects file lists file, line and field of each bad row"
else
	cat rejects.diff
fi
check_reason() {
	grep -qaF "$1" "$rej" && echo "reason: $2" || echo "missing reason: $2"
}
check_reason "data/users.csv,$((u + 1)),cost,the field contains a NUL byte at byte 2" "NUL in cost"
check_reason "data/users.csv,$((u + 2)),user_id,the field contains a NUL byte at byte 10" "NUL in user_id"
check_reason "data/users.csv,$((u + 3)),campaign,the field is not valid UTF-8 (byte 0xff at byte 5)" "invalid UTF-8"
check_reason "data/users.csv,$((u + 4)),campaign,\"the field is 70000 bytes long, over the limit of 65536" "overlong field"
check_reason "data/users.csv,$((u + 5)),cost,\"'1e308' is above 1e+09, the largest cost" "cost 1e308"
check_reason "data/users.csv,$((u + 6)),cost,\"'2000000000' is above 1e+09" "cost 2e9"
check_reason "data/events.csv,$((e + 1)),revenue,\"'1e308' is above 1e+09, the largest revenue" "revenue 1e308"
check_reason "data/events.csv,$((e + 2)),revenue,the field contains a NUL byte at byte 2" "NUL in revenue"
check_reason "data/events.csv,$((e + 3)),revenue,\"'1000000000.01' is above 1e+09" "revenue just above 1e9"
check_reason "data/events.csv,$((e + 5)),user_id,user 'nulcost' was rejected in the users file" "events of a NUL-rejected user"
db=models/registry.sqlite
echo "users loaded: $(sqlite3 $db 'select count(*) from users')"
echo "truncated ids stored: $(sqlite3 $db "select count(*) from users where user_id in ('nulcost', '$u6' || '') and cost = 9")"
echo "$u6 kept its own row: $(sqlite3 $db "select count(*) from users where user_id = '$u6'")"
echo "largest cost: $(sqlite3 $db 'select max(cost) from users')"
echo "largest day revenue under 1e9: $(python3 "$LTV_ROOT/contrib/user_days.py" $db 'select max(revenue) < 1e9 from user_days')"
echo "UTF-8 event name accepted: $(python3 "$LTV_ROOT/contrib/user_days.py" $db "select sum(d.events) from user_days d join users u using (uid) where u.user_id = 'okcost'")"

# one file over the limit: the message quotes its own first reject
mkdir -p two && cd two || exit 1
mkdir data && cp ../users.orig data/users.csv && cp ../events.orig data/events.csv
printf 'bad_time,app_x,camp_x,not-a-date,1,us,ios\n' >>data/users.csv
for i in $(seq 1 40); do printf 'ghost%s,2025-01-02T00:00:00Z,1,purchase\n' "$i"; done >>data/events.csv
"$LTVPIPE" run --to ingest --set ingest.max_reject_rate=0.005 --set ingest.rejects_dir=rej >out 2>err
echo "over the limit: exit $?"
grep -qF "data/events.csv: 40 of $((n_events + 39)) rows rejected" err && echo "over the limit: names events.csv"
grep -qF "first: data/events.csv:$((n_events + 1)): user_id: unknown user 'ghost1'" err \
	&& echo "over the limit: quotes events.csv's first reject"
grep -qF "first: data/users.csv" err && echo "over the limit: quotes users.csv instead"
exit 0

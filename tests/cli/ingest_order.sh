# Ingesting the same sample exported per user (generate's default) and by time
# across users (--order time) stores identical users and user_days (revenue to
# the last bit), and so do events shuffled at random (revenue summed in another
# order, so compared to 1e-6); the ingest metrics agree too.
set -u
for order in user time; do
	mkdir -p "$order" && (cd "$order" && "$LTVPIPE" generate --users 2000 --seed 5 --order "$order" --out data >/dev/null) || exit 1
done
mkdir -p shuffled/data && cp user/data/users.csv shuffled/data/
(head -1 user/data/events.csv; tail -n +2 user/data/events.csv | shuf --random-source=user/data/users.csv) >shuffled/data/events.csv
cmp -s user/data/events.csv time/data/events.csv || echo "the two exports differ in row order"
for dir in user time shuffled; do
	(cd "$dir" && "$LTVPIPE" run --to ingest >out 2>err) || { echo "$dir: ingest failed"; cat "$dir/err"; }
	sqlite3 "$dir/models/registry.sqlite" "select * from users order by uid" >"$dir.users"
	python3 "$LTV_ROOT/contrib/user_days.py" "$dir/models/registry.sqlite" "select uid, day, printf('%.17g', revenue), events, purchases from user_days order by uid, day" >"$dir.days"
	python3 "$LTV_ROOT/contrib/user_days.py" "$dir/models/registry.sqlite" "select uid, day, printf('%.6f', revenue), events, purchases from user_days order by uid, day" >"$dir.days6"
	sqlite3 "$dir/models/registry.sqlite" "select json_extract(metrics, '\$.events_loaded') || ' ' || json_extract(metrics, '\$.user_days_added') || ' ' || json_extract(metrics, '\$.max_event_time') from artefacts where name = 'ingest'" >"$dir.metrics"
done
echo "users rows: $(wc -l <user.users), user_days rows: $(wc -l <user.days)"
for dir in time shuffled; do
	cmp -s user.users "$dir.users" && echo "$dir: users identical"
	if [ "$dir" = time ]; then
		cmp -s user.days "$dir.days" && echo "$dir: user_days identical"
	else
		cmp -s user.days6 "$dir.days6" && echo "$dir: user_days identical"
	fi
	cmp -s user.metrics "$dir.metrics" && echo "$dir: ingest metrics identical"
done
exit 0

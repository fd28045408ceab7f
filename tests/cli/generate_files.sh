# generate and its files: a run killed with -9 leaves its temporary files, the
# next run removes them (and says so) and leaves only users.csv and events.csv;
# --order time writes the same rows as the default order; bad --order and a
# --start whose data would pass 9999-12-31 are usage errors that write nothing.
set -u
. "$LTV_ROOT/tests/lib/wait.bash"
"$LTVPIPE" generate --users 3000000 --order time --out d >/dev/null 2>&1 &
pid=$!
# Killed once both temporaries exist and users are being written (the users
# file has data: its buffer was flushed, so the event spool, opened and
# unlinked before the first user, is gone): not after a fixed sleep, which
# on a loaded machine could land before the second file was created.
writing() {
	[ -n "$(find d -maxdepth 1 -name '.users.csv.tmp.*' -size +0 2>/dev/null)" ] &&
		[ -n "$(find d -maxdepth 1 -name '.events.csv.tmp.*' 2>/dev/null)" ]
}
wait_until writing || echo "generate did not start writing"
kill -9 "$pid"
wait "$pid" 2>/dev/null
echo "after kill -9: $(ls -A d | grep -c '\.tmp\.') temporary files, $(ls d | wc -l) others"
"$LTVPIPE" generate --users 300 --out d >out 2>err
echo "next run exit $?"
grep -o "removed 2 temporary files left by killed runs in d" out
echo "left in d: $(ls -A d | tr '\n' ' ')"

"$LTVPIPE" generate --users 300 --order time --out t >/dev/null 2>&1
echo "--order time exit $?"
cmp -s d/users.csv t/users.csv && echo "users.csv identical in both orders"
cmp -s d/events.csv t/events.csv || echo "events.csv rows in another order"
[ "$(LC_ALL=C sort d/events.csv | md5sum)" = "$(LC_ALL=C sort t/events.csv | md5sum)" ] && echo "events.csv same rows in both orders"
tail -n +2 t/events.csv | cut -d, -f2 | LC_ALL=C sort -c && echo "--order time: event_time ascending"

"$LTVPIPE" generate --users 10 --order random --out r >/dev/null 2>err
echo "--order random exit $?"
grep -q "'random' must be 'user' or 'time'" err && echo "--order random is named"
"$LTVPIPE" generate --users 10 --start 9999-12-31 --out r >/dev/null 2>err
echo "--start 9999-12-31 exit $?"
grep -q "past 9999-12-31" err && echo "--start 9999-12-31 says why"
[ -e r ] && echo "a usage error created r"
exit 0

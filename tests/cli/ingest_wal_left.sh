# `run --only ingest` leaves its commit in the WAL, synced, for the next run
# to copy into the database file (pipeline/runner.c only_ingest_ran): the
# copy at close was up to a second of ingest's wall at 1,000,000 users.
# Readers find the users there; the next writer's close copies it and
# removes the WAL, as does a run that finds ingest up to date.
set -u
"$LTVPIPE" generate --users 2000 --order time --out data >/dev/null || exit 1
set -- --set input.users=data/users.csv --set input.events=data/events.csv
wal() {
	if [ -s models/registry.sqlite-wal ]; then
		echo "$1: the WAL holds $(sqlite3 'file:models/registry.sqlite?mode=ro' 'select count(*) from users') users"
	else
		echo "$1: no WAL, $(sqlite3 models/registry.sqlite 'select count(*) from users') users"
	fi
}

"$LTVPIPE" run --only ingest "$@" >/dev/null 2>&1 || echo "ingest failed"
wal "after ingest"
"$LTVPIPE" status >/dev/null 2>&1 && echo "status reads the registry"
wal "after status"
"$LTVPIPE" run --only ingest "$@" >/dev/null 2>&1 || echo "the no-op ingest failed"
wal "after a no-op ingest"

rm -rf models
"$LTVPIPE" run --only ingest "$@" >/dev/null 2>&1 || echo "ingest failed"
"$LTVPIPE" run "$@" >/dev/null 2>&1 || echo "run failed"
wal "after ingest, then run"
"$LTVPIPE" run "$@" 2>&1 | grep -c 'up to date' | sed 's/^/stages up to date on a rerun: /'
exit 0

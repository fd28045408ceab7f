# A score --users/--events killed while it reads its files (LTVPIPE_FAULT=
# ingest:kill fires once they are read; the scratch directory in $TMPDIR
# holds their rejects) leaves the scratch directory behind; its name carries the pid, so the next score
# removes it once that process is dead, and leaves alone the directory of a
# process still running (issue 15, item 7).
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 2000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"
mkdir tmp
export TMPDIR=$PWD/tmp
LTVPIPE_FAULT=ingest:kill "$LTVPIPE" score --users data/users.csv --events data/events.csv --output a.csv >out 2>err
echo "score killed in its scratch ingest: exit $?"
echo "scratch directories left: $(ls tmp | grep -c '^ltvscore-')"
dead=$(sh -c 'echo $$')
mkdir "tmp/ltvscore-$dead-abcdef" "tmp/ltvscore-$$-live00"
touch "tmp/ltvscore-$dead-abcdef/registry.sqlite"
"$LTVPIPE" score --users data/users.csv --events data/events.csv --output a.csv >out 2>err
echo "next score exit $?"
echo "left in \$TMPDIR: $(ls tmp | sed "s/-$$-/-LIVEPID-/" | tr '\n' ' ')"
exit 0

# A run killed with SIGKILL inside the model wave (LTVPIPE_FAULT=hurdle:kill
# fires after hurdle's output is written, before its commit), with two jobs:
# the serial stages before the wave (ingest, features, tiers) committed
# without copying the WAL into the database file (the runner defers that
# checkpoint to the wave's commits), so their versions survive in the WAL.
# The registry reopens sound with them current and the next run redoes only
# what the kill lost.
set -u
reg=models/registry.sqlite
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
LTVPIPE_FAULT=hurdle:kill "$LTVPIPE" run --set run.jobs=2 >out 2>err
echo "killed run exit $?"
echo "integrity $(sqlite3 $reg 'pragma integrity_check')"
for s in ingest features tiers hurdle; do
	echo "current $s: $(sqlite3 $reg "select coalesce(max(a.version), 'none') from current_artefacts c join artefacts a on a.id = c.artefact_id where c.name = '$s'")"
done
fp1=$(sqlite3 $reg "select content_hash from artefacts where name = 'features' and version = 1")

"$LTVPIPE" run --set run.jobs=2 >out 2>err
echo "next run exit $?"
for s in ingest features tiers; do
	grep -q "^$s: up to date (v1)$" out && echo "$s up to date (v1)"
done
grep -q '^hurdle: done (v1)' out && echo "hurdle done (v1)"
grep -q '^calibrate: done (v1)' out && echo "calibrate done (v1)"
"$LTVPIPE" run --force --only features >out 2>err
echo "forced features exit $?"
fp2=$(sqlite3 $reg "select content_hash from artefacts where name = 'features' and version = 2")
[ -n "$fp1" ] && [ "$fp1" = "$fp2" ] && echo "same content as v1"
echo "integrity $(sqlite3 $reg 'pragma integrity_check')"
exit 0

# A run killed with SIGKILL in the middle of the features stage's transaction
# (LTVPIPE_FAULT=features:kill fires after the output is written, before the
# commit) leaves a sound registry whose current features are the previous ones.
# Runs stop after features (--to features): the model stages are not what is tested here.
set -u
reg=models/registry.sqlite
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
"$LTVPIPE" run --to features >out 2>err
echo "first run exit $?"
fp1=$(sqlite3 $reg "select content_hash from artefacts where name = 'features' and version = 1")

LTVPIPE_FAULT=features:kill "$LTVPIPE" run --to features --force >out 2>err
echo "killed run exit $?"
# stdout is a file here, so its buffered lines died with the process: ask the registry
echo "ingest versions: $(sqlite3 $reg "select group_concat(version) from (select version from artefacts where name = 'ingest' order by version)")"
grep -q '^features: done' out && echo "features claimed to finish"

echo "integrity $(sqlite3 $reg 'pragma integrity_check')"
echo "features versions: $(sqlite3 $reg "select group_concat(version) from (select version from artefacts where name = 'features' order by version)")"
echo "current features version: $(sqlite3 $reg "select a.version from current_artefacts c join artefacts a on a.id = c.artefact_id where c.name = 'features'")"
echo "features blobs of missing artefacts: $(sqlite3 $reg 'select count(*) from artefact_blobs b left join artefacts a on a.id = b.artefact_id where a.id is null')"
"$LTVPIPE" status >status.out 2>status.err
echo "status exit $?"
grep -E '^features +v1 ' status.out | grep -q ' fresh$' && echo "status: features v1 fresh"
grep -E '^ingest +v2 ' status.out | grep -q ' fresh$' && echo "status: ingest v2 fresh"

# the next run has nothing to redo, and a forced one gets the next version number
"$LTVPIPE" run --to features >out 2>err
echo "next run exit $?"
grep -q '^features: up to date (v1)$' out && echo "features up to date (v1)"
"$LTVPIPE" run --force --only features >out 2>err
echo "forced features exit $?"
grep -q '^features: done (v2)' out && echo "features done (v2)"
fp2=$(sqlite3 $reg "select content_hash from artefacts where name = 'features' and version = 2")
[ -n "$fp1" ] && [ "$fp1" = "$fp2" ] && echo "same content as v1"
echo "integrity $(sqlite3 $reg 'pragma integrity_check')"
exit 0

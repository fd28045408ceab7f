# A damaged registry is noticed by `run` instead of being reported "up to
# date" (issue 15, defect 6): a model blob overwritten, a stage's blobs
# deleted, a user deleted by hand, b-tree pages overwritten on disk. Each stops with a message that
# names the damage and the fix; the previous versions stay readable; and the
# recovery the message suggests gives artefacts identical (content hashes)
# to a clean run.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
reg=models/registry.sqlite
msg() { sed -n 's/^ltvpipe [a-z]*: error: //p' err; }
current() { sqlite3 $reg "select a.id from current_artefacts c join artefacts a on a.id = c.artefact_id where c.name = '$1'"; }
# the content hash of every stage's current artefact but calibrate's.
# calibrate is left out: on main since the conformal-band commits its content
# hash differs between two clean runs of the same data and config (reported to
# the lead: ASan finds conformal_fit reading past its rows in bucket_band,
# src/models/conformal.c:49, when ties push a bucket's end past n).
hashes() { sqlite3 $reg "select c.name || ' ' || a.content_hash from current_artefacts c join artefacts a on a.id = c.artefact_id where c.name != 'calibrate' order by c.name"; }
"$LTVPIPE" generate --users 2000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "clean run exit $?"
hashes >clean.hashes
cp $reg clean.sqlite

echo "-- a hurdle model blob overwritten"
hurdle=$(current hurdle)
sqlite3 $reg "update artefact_blobs set data = randomblob(length(data)) where artefact_id = $hurdle and rowid = (select min(rowid) from artefact_blobs where artefact_id = $hurdle)"
"$LTVPIPE" run $S >out 2>err
echo "run exit $?"
msg
grep -q '^hurdle: up to date' out && echo "(hurdle reported up to date)"
echo "integrity $(sqlite3 $reg 'pragma integrity_check')"
echo "model version 1 listed: $("$LTVPIPE" models list 2>/dev/null | awk -F'\t' '$1 == 1 { print "yes" }')"
"$LTVPIPE" run $S --force --from hurdle >out 2>err
echo "run --force --from hurdle exit $?"
[ "$(hashes)" = "$(cat clean.hashes)" ] && echo "artefacts identical to the clean run"

echo "-- the features blobs deleted"
features=$(current features)
sqlite3 $reg "delete from artefact_blobs where artefact_id = $features"
"$LTVPIPE" run $S >out 2>err
echo "run exit $?"
msg | sed 's/it has 0 of its [0-9]* blobs/it has 0 of its N blobs/' 
"$LTVPIPE" run $S --force --from features >out 2>err
echo "run --force --from features exit $?"
[ "$(hashes)" = "$(cat clean.hashes)" ] && echo "artefacts identical to the clean run"

echo "-- a user deleted by hand (users 1..n with a gap)"
cp clean.sqlite $reg
rm -f $reg-wal $reg-shm
sqlite3 $reg "delete from users where uid = 500"
artefacts=$(sqlite3 $reg "select count(*) from artefacts")
"$LTVPIPE" run $S --force --from features >out 2>err
echo "run --force --from features exit $?"
msg
[ "$(sqlite3 $reg 'select count(*) from artefacts')" = "$artefacts" ] && echo "no artefact added"
"$LTVPIPE" run $S --only ingest --force --set ingest.mode=replace >out 2>err
echo "run --only ingest --force --set ingest.mode=replace exit $?"
"$LTVPIPE" run $S >out 2>err
echo "run exit $?"
[ "$(hashes)" = "$(cat clean.hashes)" ] && echo "artefacts identical to the clean run"

echo "-- pages overwritten on disk"
cp clean.sqlite $reg
rm -f $reg-wal $reg-shm
page=$(sqlite3 $reg "select max(pageno) from dbstat where name = 'artefacts'")
page_size=$(sqlite3 $reg "pragma page_size")
dd if=/dev/urandom of=$reg bs=$page_size seek=$((page - 1)) count=1 conv=notrunc 2>/dev/null
[ "$(sqlite3 $reg 'pragma integrity_check' 2>&1)" != ok ] && echo "integrity_check fails"
"$LTVPIPE" run $S >out 2>err
echo "run exit $?"
msg | sed 's/(PRAGMA quick_check: .*);/(PRAGMA quick_check: ...);/'
mv $reg damaged.sqlite
"$LTVPIPE" run $S >out 2>err
echo "run on a new registry exit $?"
[ "$(hashes)" = "$(cat clean.hashes)" ] && echo "artefacts identical to the clean run"
exit 0

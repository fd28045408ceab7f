# How the runner groups stages on two cores, and that what it shares between
# stages in memory gives the results reading the registry gives. Look-alike
# and semantic read only features, but nothing in hurdle's wave reads them:
# they wait for that wave instead of holding tiers' wave (and hurdle) back.
# features hands its frame to the model stages in memory; a rerun from tiers
# reads the stored frame instead, and every content hash is the same.
set -u
hashes() {
	sqlite3 models/registry.sqlite "select a.name, a.content_hash from current_artefacts c
		join artefacts a on a.id = c.artefact_id order by a.name"
}
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
"$LTVPIPE" run --set run.jobs=2 >out 2>err
echo "cold run exit $?"
grep -o 'in parallel: .*' err
grep -q 'in parallel: tiers' err && echo "tiers shared a wave" || echo "tiers ran alone"
hashes >first
"$LTVPIPE" run --set run.jobs=2 --from tiers --force >out 2>err
echo "rerun from tiers exit $?"
grep -cE '^[a-z_]+: done' out
hashes >second
cmp -s first second && echo "every content hash the same" || diff first second
exit 0

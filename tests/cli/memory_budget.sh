# run.memory_mb also holds back the runner's waves: with a budget no stage
# fits beside another, so each wave's stages run one after another in the
# wave's order (hurdle first, and lookalike and semantic, which nothing in
# tiers' wave reads, deferred to hurdle's wave: tests/cli/waves.sh; their
# "done" lines come in that order, which two
# stages side by side would not keep: curves and bgnbd finish long before
# hurdle), the lone stage takes both cores (timings' max_threads), and every
# artefact is the same as a run without the budget.
set -u
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
mkdir free budget
ln -s ../data free/data
ln -s ../data budget/data
(cd free && "$LTVPIPE" run --set run.jobs=2 >out 2>err)
echo "run without a budget exit $?"
(cd budget && "$LTVPIPE" run --set run.jobs=2 --set run.memory_mb=1 >out 2>err)
echo "run with run.memory_mb=1 exit $?"
sed -n 's/^\([a-z_]*\): done .*/\1/p' budget/out | tr '\n' ' '
echo
hashes() {
	sqlite3 "$1/models/registry.sqlite" "select name, content_hash from artefacts order by name"
}
[ "$(hashes free)" = "$(hashes budget)" ] && echo "every artefact identical" ||
	{ echo "artefacts differ:"; diff <(hashes free) <(hashes budget); }
sqlite3 budget/models/registry.sqlite "select name, json_extract(timings, '$.max_threads')
	from artefacts where name in ('hurdle', 'multiplier', 'lookalike') order by name"

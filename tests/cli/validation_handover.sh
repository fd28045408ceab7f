# hurdle and multiplier predict their validation rows at the target horizon
# for their own metrics; in one run they hand those predictions to select
# (stage_ctx.saved_validation), keyed by the features, tiers and their own
# artefact, and select predicts only what was not handed over. Run alone,
# select predicts everything itself. Either way the select artefact is the same.
set -u
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
select_hash() {
	sqlite3 models/registry.sqlite "select content_hash from artefacts where name = 'select'
		order by id desc limit 1"
}
said() {
	sed -n "s/.* \([a-z_]*\)'s validation predictions at \(h[0-9]*\): \(.*\)/\1 \2 \3/p" err | tr '\n' ';'
	echo
}
"$LTVPIPE" run --set run.log_level=debug >out 2>err
echo "cold run exit $?"
said
first=$(select_hash)
"$LTVPIPE" run --only select --force --set run.log_level=debug >out 2>err
echo "select alone exit $?"
said
[ "$(select_hash)" = "$first" ] && echo "same select artefact" || echo "select differs"
"$LTVPIPE" run --only hurdle,select --force --set run.log_level=debug >out 2>err
echo "hurdle and select exit $?"
said
[ "$(select_hash)" = "$first" ] && echo "same select artefact" || echo "select differs"

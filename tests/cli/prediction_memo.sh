# Calibrate judges the served mix from each method's predictions of the
# validation rows, each predicted once per horizon (include/ltv/
# prediction_memo.h). In one run select hands its own over (the same
# features, tiers and method artefacts), and the served mix of those rows
# with them (include/ltv/mix_memo.h); calibrate run alone predicts them
# itself. Either way the calibrate artefact is the same (a memo under another
# key is never handed out: tests/unit/test_prediction_memo.c).
set -u
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
calibrate_hash() {
	sqlite3 models/registry.sqlite "select content_hash from artefacts where name = 'calibrate'
		order by id desc limit 1"
}
said() {
	sed -n "s/.*methods' predictions at \([0-9]*\) days: \(.*\)/\1 \2/p" err | tr '\n' ';'
	echo
}
"$LTVPIPE" run --set run.log_level=debug >out 2>err
echo "cold run exit $?"
said
first=$(calibrate_hash)
"$LTVPIPE" run --only calibrate --force --set run.log_level=debug >out 2>err
echo "calibrate alone exit $?"
said
[ "$(calibrate_hash)" = "$first" ] && echo "same calibrate artefact" || echo "calibrate differs"
"$LTVPIPE" run --only select,calibrate --force --set run.log_level=debug >out 2>err
echo "select and calibrate exit $?"
said
[ "$(calibrate_hash)" = "$first" ] && echo "same calibrate artefact" || echo "calibrate differs"

# models.auto_promote=1: a new model version whose validation error
# (campaign WAPE at the target horizon) is lower than production's becomes
# production; one whose error is higher stays candidate. A deliberately bad
# model (one boosting round of depth 1, one k-means cluster, top-1 semantic
# neighbour) is trained first, as production; then the normal model with
# auto_promote=1 must replace it; then the bad one again with auto_promote=1
# must not replace the good one.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
BAD="--set hurdle.n_rounds=1 --set hurdle.max_depth=1 --set multiplier.n_rounds=1 --set multiplier.max_depth=1 --set lookalike.k=1 --set semantic.top_k=1"
reg=models/registry.sqlite
aliases() { sqlite3 $reg "select group_concat(alias || '=' || model_version, ' ') from (select * from aliases order by alias)"; }
wape() { sqlite3 $reg "select validation_error from model_versions where version = $1"; }
lower() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 < b + 0) }'; }
list() { "$LTVPIPE" models list | awk -F'\t' 'NR > 1 { print "  " $1 " " ($6 == "" ? "-" : $6) }'; }
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1

"$LTVPIPE" run $S $BAD >run1.out 2>run1.err
echo "bad model run exit $?"
echo "aliases: $(aliases)"

"$LTVPIPE" run $S --set models.auto_promote=1 >run2.out 2>run2.err
echo "good model run with auto_promote=1 exit $?"
lower "$(wape 2)" "$(wape 1)" && echo "v2 WAPE is lower than v1's" || echo "v2 WAPE $(wape 2) is not lower than v1's $(wape 1)"
echo "aliases: $(aliases)"
list
sqlite3 $reg "select 'last move: ' || alias || ' ' || from_version || ' -> ' || to_version || ' by ' || who from alias_history order by id desc limit 1"
sqlite3 $reg "select reason from alias_history order by id desc limit 1" | grep -qE '^auto-promoted: validation campaign WAPE [0-9.]+ beats production v1' \
	&& echo "reason gives both errors"
echo "calibrate says: $(sqlite3 $reg "select json_extract(metrics, '\$.auto_promote') from artefacts where name = 'calibrate' and version = 2")"

"$LTVPIPE" run $S $BAD --set models.auto_promote=1 >run3.out 2>run3.err
echo "bad model run with auto_promote=1 exit $?"
echo "model versions: $(sqlite3 $reg 'select count(*) from model_versions')"
lower "$(wape 2)" "$(wape 3)" && echo "v3 WAPE is higher than v2's" || echo "v3 WAPE $(wape 3) is not higher than v2's $(wape 2)"
echo "aliases: $(aliases)"
list
echo "calibrate says: $(sqlite3 $reg "select json_extract(metrics, '\$.auto_promote') from artefacts where name = 'calibrate' and version = 3")"
echo "production moves: $(sqlite3 $reg "select count(*) from alias_history where alias = 'production'")"

"$LTVPIPE" models history >history.out 2>&1
echo "history (alias, from, to, who):"
awk -F'\t' 'NR > 1 { print "  " $2 " " $3 " -> " $4 " by " $5 }' history.out
exit 0

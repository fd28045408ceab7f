# models.auto_promote=1: a new model version replaces production when, on the
# same users (installed after both versions' as_of, their ltv_30 known), its
# campaign WAPE is lower with p < 0.05 (ltvpipe models compare); the decision
# and its numbers are in alias_history. When no such users exist yet (a
# version trained on all the data), it says so and falls back to comparing
# each version's own validation WAPE. A version auto-promoted is no longer the
# candidate (as with 'models promote').
# v1 is deliberately worse: trained on every revenue times 10 (a currency
# mix-up), as of 2025-06-01; its own validation WAPE does not show it.
# (x3 until select let BTYD methods serve on ties: they lean on each user's own
# spend, and a x3 version was worse but no longer significantly so.)
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set run.jobs=1 --set models.compare_min_campaign_users=20"
reg=models/registry.sqlite
aliases() { sqlite3 $reg "select group_concat(alias || '=' || model_version, ' ') from (select * from aliases order by alias)"; }
reason() { sqlite3 $reg "select reason from alias_history where alias = '$1' order by id desc limit 1"; }
"$LTVPIPE" generate --users 20000 --seed 5 --out data >/dev/null || exit 1
mkdir -p wrong && awk -F, 'BEGIN { OFS = "," } NR == 1 { print; next } { $3 = $3 * 10; print }' data/events.csv >wrong/events.csv

"$LTVPIPE" run $S --set input.events=wrong/events.csv --as-of 2025-06-01 >run1.out 2>run1.err
echo "revenue x10 model run exit $?"
echo "aliases: $(aliases)"

"$LTVPIPE" run $S --set ingest.mode=replace --set models.auto_promote=1 --as-of 2025-06-01 >run2.out 2>run2.err
echo "true-revenue model run with auto_promote=1 exit $?"
echo "aliases: $(aliases)"
reason production | grep -qE '^auto-promoted: paired comparison on [0-9]+ users installed after both versions.* \(v2\) vs [0-9.]+ \(v1\), difference -[0-9.]+ \[95% -[0-9.]+, -[0-9.]+\], p 0\.0[0-4]' \
	&& echo "production reason: auto-promoted by the paired comparison, numbers given"
reason production | grep -q "; it was the candidate, so candidate is now unset$" && echo "production reason: candidate unset (a version is never both)"
grep -q "^model version 2 is production: auto-promoted: paired comparison" run2.out && echo "run says: model version 2 is production, and why"
echo "calibrate says: $(sqlite3 $reg "select json_extract(metrics, '\$.auto_promote') || ' by ' || json_extract(metrics, '\$.auto_promote_rule') from artefacts where name = 'calibrate' and version = 2")"

"$LTVPIPE" models compare 1 2 $S >compare.out 2>compare.err
echo "models compare 1 2 exit $?"
grep -q "B is better: lower campaign WAPE with p < 0.05" compare.out && echo "compare: B is better"

"$LTVPIPE" run $S --set models.auto_promote=1 --set lookalike.seed=7 >run3.out 2>run3.err
echo "run on all the data with auto_promote=1 exit $?"
echo "aliases: $(aliases)"
echo "calibrate says: $(sqlite3 $reg "select json_extract(metrics, '\$.auto_promote_rule') from artefacts where name = 'calibrate' and version = 3")"
reason candidate | grep -q "(no paired comparison yet: compare: horizon 30 is not complete yet for any user installed after both versions' as_of" \
	&& echo "candidate reason: no paired comparison yet, validation WAPE decided"

"$LTVPIPE" models history >history.out 2>&1
echo "history (alias, from, to, who):"
awk -F'\t' 'NR > 1 { print "  " $2 " " $3 " -> " $4 " by " $5 }' history.out

# One place owns alias moves (registry_alias_move): promoting the candidate by
# hand must leave the same alias_history shape as the auto-promotion of v2.
shape() {
	sqlite3 $reg "select 'production ' || h.from_version || ' -> ' || h.to_version || ': ' ||
		(select count(*) from alias_history c where c.alias = 'candidate' and
		 c.to_version = h.to_version and c.id < h.id) || ' candidate move before it, reason ' ||
		(case when h.reason like '%; it was the candidate, so candidate is now unset'
		 then 'says candidate unset' else 'silent on the candidate' end) ||
		', who ' || (case when h.who = '' then 'missing' else 'recorded' end)
		from alias_history h where h.alias = 'production' and h.to_version = $1"
}
"$LTVPIPE" models promote 3 --reason "checked by hand" >promote.out 2>&1
echo "models promote 3 exit $?"
echo "aliases: $(aliases)"
echo "auto-promotion: $(shape 2)"
echo "models promote: $(shape 3)"
[ "$(shape 2 | sed 's/^production [0-9]* -> [0-9]*//')" = "$(shape 3 | sed 's/^production [0-9]* -> [0-9]*//')" ] \
	&& echo "same alias_history shape"
exit 0

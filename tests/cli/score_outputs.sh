# `ltvpipe score` with the production model: the users CSV has the documented
# columns (observed_up_to before ltv_raw_30), one row per user installed by
# as_of and not yet 90 days old (the longest horizon; counted from the
# registry's users), ltv >= 0 and monotone across horizons in every row, and
# observed_up_to the longest horizon the user's age has reached (empty below 7);
# the campaigns CSV accounts for every user; the report names the model
# version, as_of and horizons. Scoring twice gives byte-identical files (the
# report has no wall-clock line, so all three files are compared), and so
# does a model retrained from scratch in another registry with another
# thread count.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"
mkdir -p out
"$LTVPIPE" score --output out/a.csv >score.out 2>score.err
echo "score exit $?"
ls out
grep -q '^scored [0-9]* users in [0-9]* campaigns with model version 1 at as_of ' score.out \
	&& echo "score says what it scored with which version"

echo "header: $(head -1 out/a.csv)"
rows=$(($(wc -l <out/a.csv) - 1))
# users installed by as_of (the latest event) and younger than 90 whole days
expect=$(sqlite3 models/registry.sqlite "select count(*) from users, meta where meta.key = 'max_event_time'
	and install_time <= cast(meta.value as integer) and cast(meta.value as integer) - install_time < 90 * 86400")
[ "$rows" -gt 0 ] && [ "$rows" = "$expect" ] && echo "one row per user younger than the longest horizon" \
	|| echo "rows $rows, users younger than 90 days $expect"
# columns: 5 age_days, 6 tier, 7 method, 8 p_payer, 9-11 ltv_7/30/90, 12 observed_up_to, 14 segment
awk -F, 'NR > 1 {
	if (NF != 24) bad_nf++
	if (!($9 >= 0 && $9 <= $10 && $10 <= $11)) bad_ltv++
	if ($5 >= 90 || $5 < 0) bad_age++
	if ($5 >= 30) old++
	if ($5 < 7) young++
	up_to = $5 >= 30 ? "30" : $5 >= 7 ? "7" : ""
	if ($12 != up_to) bad_up_to++
	if ($6 < 1 || $6 > 3) bad_tier++
	if ($8 != "" && ($8 < 0 || $8 > 1)) bad_p++
	if ($14 !~ /^(Low|Medium|High|VIP)$/) bad_seg++
	if (!($6 in tiers)) n_tiers++
	tiers[$6] = 1
} END {
	printf "rows with 24 fields: %s\n", bad_nf ? "no, " bad_nf " bad" : "all"
	printf "ltv_7 <= ltv_30 <= ltv_90 and >= 0: %s\n", bad_ltv ? "no, " bad_ltv " rows" : "every row"
	printf "age_days below 90: %s\n", bad_age ? "no, " bad_age " rows" : "every row"
	printf "users 30+ days old scored: %s, under 7 days: %s\n", old ? "yes" : "no", young ? "yes" : "no"
	printf "observed_up_to matches age_days: %s\n", bad_up_to ? "no, " bad_up_to " rows" : "every row"
	printf "tier in 1..3: %s, p_payer in [0,1]: %s, segment named: %s\n", bad_tier ? "no" : "yes", bad_p ? "no" : "yes", bad_seg ? "no" : "yes"
	printf "tiers scored: %d\n", n_tiers
}' out/a.csv
echo "campaigns header: $(head -1 out/a.csv.campaigns.csv)"
camp_users=$(awk -F, 'NR > 1 { s += $5 } END { print s }' out/a.csv.campaigns.csv)
[ "$camp_users" = "$rows" ] && echo "campaign users sum to the users rows" || echo "campaign users $camp_users, rows $rows"
dups=$(awk -F, 'NR > 1 { print $1 "," $2 }' out/a.csv.campaigns.csv | sort | uniq -d | wc -l)
echo "campaigns listed twice: $dups"
as_of=$(sqlite3 models/registry.sqlite "select json_extract(metrics, '\$.as_of') from artefacts where name = 'features'")
head -1 out/a.csv.report.txt | grep -qF "model version 1, as_of $as_of" && echo "report names model version 1 and as_of"
grep -qF "Horizons in days: 7 30 90 (target 30)" out/a.csv.report.txt && echo "report names the horizons"
grep -qF "Users scored (not yet 90 days old, the longest horizon): $rows in " out/a.csv.report.txt && echo "report counts the users scored"

"$LTVPIPE" score --model 1 --output out/b.csv >/dev/null 2>&1
echo "second score exit $?"
for f in "" .campaigns.csv .report.txt; do
	cmp -s out/a.csv$f out/b.csv$f && echo "identical: scores.csv$f" || echo "DIFFERENT: scores.csv$f"
done

"$LTVPIPE" run $S --set registry.path=models/again.sqlite --set run.jobs=1 >/dev/null 2>&1
echo "retrain in a second registry exit $?"
"$LTVPIPE" score --set registry.path=models/again.sqlite --output out/c.csv >/dev/null 2>&1
echo "score with the retrained model exit $?"
for f in "" .campaigns.csv .report.txt; do
	cmp -s out/a.csv$f out/c.csv$f && echo "retrained, identical: scores.csv$f" || echo "retrained, DIFFERENT: scores.csv$f"
done
exit 0

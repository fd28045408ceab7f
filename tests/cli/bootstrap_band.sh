# calibrate.bootstrap_band: the campaign 80% band with its users' noise from
# a bootstrap of the validation rows (include/ltv/conformal.h). Off by
# default: calibrate reports no bootstrap figures and the band is the k F
# one. On, calibrate reports its between-group term and q for each horizon
# with held-out groups, score writes every campaign's p10/p90 around its
# revenue, and they differ from the default band's somewhere (the band
# changed, the predictions did not). The second run makes a candidate
# version beside production (nothing to compare them on yet): score it.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set run.jobs=1 --set features.horizons=7,30 --set hurdle.n_rounds=20 --set multiplier.n_rounds=20"
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
m() { sqlite3 models/registry.sqlite "select json_extract(metrics, '\$.$2') from artefacts where name = '$1' order by version desc limit 1"; }
"$LTVPIPE" run $S >run.out 2>run.err
echo "default run exit $?"
echo "default boot q at D30: [$(m calibrate interval_bands.h30.campaign_boot_q)]"
"$LTVPIPE" score $S --output scored0.csv >score0.out 2>score0.err
echo "default score exit $?"
"$LTVPIPE" run $S --set calibrate.bootstrap_band=1 >boot.out 2>boot.err
echo "bootstrap run exit $?"
q=$(m calibrate interval_bands.h30.campaign_boot_q)
t=$(m calibrate interval_bands.h30.campaign_boot_tau2)
awk -v q="$q" -v t="$t" 'BEGIN { if (q + 0 > 0 && t + 0 >= 0) print "boot q and tau2 at D30 reported" }'
"$LTVPIPE" score $S --model candidate --output scored1.csv >score1.out 2>score1.err
echo "bootstrap score exit $?"
# p10 <= revenue <= p90 for every campaign at D30; same revenue as the default, other bands
check() {
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		{ r = $c["revenue_30"]; lo = $c["revenue_30_p10"]; hi = $c["revenue_30_p90"];
		  n++; if (lo + 0 <= r + 0 && r + 0 <= hi + 0) ok++ }
		END { print (n > 0 && ok == n) ? "every campaign inside its band" : "band misses " (n - ok) " of " n }' "$1"
}
cols() { # the named columns of a campaigns CSV, in that order
	awk -F, -v want="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; n = split(want, w, " "); next }
		{ line = ""; for (k = 1; k <= n; k++) line = line $c[w[k]] " "; print line }' "$1"
}
f0=scored0.csv.campaigns.csv
f1=scored1.csv.campaigns.csv
check "$f1"
cols "$f0" "app_id campaign users revenue_7 revenue_30" >rev0
cols "$f1" "app_id campaign users revenue_7 revenue_30" >rev1
[ -s rev0 ] && cmp -s rev0 rev1 && echo "same campaign revenue"
cols "$f0" "revenue_30_p10 revenue_30_p90" >band0
cols "$f1" "revenue_30_p10 revenue_30_p90" >band1
cmp -s band0 band1 || echo "bands differ"

# select.held_out_ages and calibrate.held_out_ages: select judges methods,
# and calibrate fits its calibration and interval bands, on held-out rows at
# served ages (include/ltv/held_out.h) instead of validation rows on snapshot
# ages. Off by default: a default run builds no held-out rows. On, both stages
# say how many they used, every horizon still gets a band, and the version
# scores; training is deterministic, so a second run on the same data is
# reused stage for stage.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set run.jobs=1 --set features.horizons=7,30 --set hurdle.n_rounds=20 --set multiplier.n_rounds=20"
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "default run exit $?"
m() { sqlite3 models/registry.sqlite "select json_extract(metrics, '\$.$2') from artefacts where name = '$1' order by version desc limit 1"; }
echo "default select held_out_rows: [$(m select held_out_rows)]"
"$LTVPIPE" run $S --set select.held_out_ages=1 --set calibrate.held_out_ages=1 >ho.out 2>ho.err
echo "held-out run exit $?"
rows=$(m select held_out_rows)
[ -n "$rows" ] && [ "$rows" -gt 0 ] && echo "select judged on held-out rows"
[ "$(m calibrate held_out_rows)" = "$rows" ] && echo "calibrate used the same held-out rows"
[ "$(m select held_out_pseudo_as_of)" -ge 2 ] && echo "at least two pseudo as_of dates"
for h in 7 30; do
	[ "$(m calibrate "interval_bands.h$h.buckets")" -gt 0 ] && echo "band at D$h"
done
"$LTVPIPE" score $S --set select.held_out_ages=1 --set calibrate.held_out_ages=1 --output scored >score.out 2>score.err
echo "score exit $?"
"$LTVPIPE" run $S --set select.held_out_ages=1 --set calibrate.held_out_ages=1 >again.out 2>again.err
echo "second held-out run exit $?"
grep -q "select: up to date" again.out && echo "select reused"

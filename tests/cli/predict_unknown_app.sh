# predict with an app the model version never saw answers, but says so: a
# "warnings" array in the JSON and the same line on stderr, naming the apps it
# knows. A known app gets no warnings key.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
# shellcheck disable=SC2086
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"
"$LTVPIPE" predict --app no_such_app --campaign fb_us_ios_broad_v2 >out.json 2>err
echo "predict unknown app exit $?"
jq -r '.warnings[]' out.json
cat err
jq -r '"model_version \(.model_version), app \(.app), ltv_30 is a number: \(.ltv["30"] | type == "number")"' out.json
"$LTVPIPE" predict --app puzzle_blast --campaign fb_us_ios_broad_v2 >known.json 2>err
echo "predict known app exit $?, warnings key: $(jq 'has("warnings")' known.json), stderr lines: $(wc -l <err)"

# The page at / in a real browser: headless Chromium (Debian's, driven over
# the DevTools protocol by tests/browser/page_test.py) fills the prediction
# form, submits it and reads the answer; the numbers it shows must be those
# of `ltvpipe predict` for the same user. The Models tab must list the
# versions with their out-of-sample metric and the alias history, draw the
# latest evaluation's charts (campaign WAPE and Gini per horizon, one bar per
# predictor of the stored evaluation) and the latest drift report (PSI chart,
# calibration table at as_of, and the new cohorts' calibration table with
# the very figures of `ltvpipe monitor --json`, which GET /v1/monitor returns
# too) as inline SVG, and offer promote and rollback only when the server has
# a token. Screenshots go to tests/browser/out/.
set -u
. "$LTV_ROOT/tests/lib/serve.bash"
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
# trained as of May, so that its 90-day outcomes are complete for evaluate --model
"$LTVPIPE" run $S --as-of 2025-05-01 >run.out 2>run.err || exit 1
"$LTVPIPE" evaluate --model production --output eval >eval.out 2>eval.err || { cat eval.err; exit 1; }
# three weeks after the version's as_of: two new-cohort weeks complete at D7, none at D30
"$LTVPIPE" monitor --as-of 2025-05-22 --json >monitor.json 2>monitor.err
echo "monitor exit $? (0 ok, 3 warn, 4 alert)" | sed 's/exit [034] /exit 0|3|4 /'
LTVPIPE_SERVE_TOKEN=page-token serve_start srv || exit 1
app=$(sed -n 2p data/users.csv | cut -d, -f2)
campaign=$(sed -n 2p data/users.csv | cut -d, -f3)
shots="$LTV_ROOT/tests/browser/out"
mkdir -p "$shots"
python3 "$LTV_ROOT/tests/browser/page_test.py" --url "$srv_url/" --screenshot "$shots/page.png" \
	--set app="$app" --set campaign="$campaign" --set age_days=3 --set rev_window=4.99 \
	--set purchases_window=1 --set cost=1.5 >page.json 2>page.err
echo "browser exit $?"
"$LTVPIPE" predict --app "$app" --campaign "$campaign" --feature age_days=3 --feature rev_window=4.99 \
	--feature purchases_window=1 --feature cost=1.5 >cli.json
echo "page error text: '$(jq -r .error page.json)'"
for k in segment tier method model_version; do
	[ "$(jq -r ".$k" page.json)" = "$(jq -r ".$k" cli.json)" ] && echo "$k as ltvpipe predict" || echo "$k differs: $(jq -r ".$k" page.json) vs $(jq -r ".$k" cli.json)"
done
[ "$(jq -r .p_payer page.json)" = "$(jq -r .p_payer cli.json | awk '{ printf "%.4f", $1 }')" ] && echo "p_payer as ltvpipe predict"
for h in $(jq -r '.ltv | keys[]' cli.json | sort -n); do
	want=$(jq -r ".ltv[\"$h\"]" cli.json | awk '{ printf "%.4f", $1 }')
	roas=$(jq -r ".ltv[\"$h\"]" cli.json | awk '{ printf "%.3f", $1 / 1.5 }')
	got=$(jq -r ".ltv[\"$h\"]" page.json)
	[ "$got" = "$want" ] && [ "$(jq -r ".roas[\"$h\"]" page.json)" = "$roas" ] && echo "ltv and ROAS at $h days as ltvpipe predict" || echo "at $h days: page $got, predict $want"
done
echo "models tab: $(jq .model_rows page.json) version row(s), $(jq .history_rows page.json) alias move(s), '$(jq -r .served page.json)'"
echo "  columns: $(jq -r '.version_columns | join(", ")' page.json); error text: '$(jq -r .models_error page.json)'"
echo "  with a token: $(jq .promote_buttons page.json) promote button(s), rollback shown: $(jq .rollback_shown page.json)"
want=$(jq -c '[.horizons[] | ([.predictors[] | select(.campaign_wape != null)] | length), ([.predictors[] | select(.normalized_gini != null)] | length)]' eval/evaluation.json)
[ "$(jq -c .evaluation_charts page.json)" = "$want" ] &&
	echo "  evaluation: 2 charts per horizon, one bar per predictor with a value in the stored evaluation"
echo "  chart titles: $(jq -r '.evaluation_titles | join("; ")' page.json)"
status=$(jq -r .status monitor.json)
jq -e --arg s "$status" '.drift_status | startswith("Status " + $s + " at as_of 2025-05-22")' page.json >/dev/null && echo "  drift: the stored report's status and as_of"
jq -e --argjson n "$(jq '[.psi[]] | length | if . > 12 then 12 else . end' monitor.json)" '.drift_charts == [$n]' page.json >/dev/null && echo "  drift: one PSI bar per feature (at most 12)"
echo "  calibration rows as the report's horizons: $([ "$(jq .calibration_rows page.json)" = "$(jq '.calibration | length' monitor.json)" ] && echo yes)"
echo "  new cohorts columns: $(jq -r '.calibration_new_columns | join(", ")' page.json)"
# each row as `ltvpipe monitor` prints it (4 decimals, z with 2), from monitor --json
python3 - page.json monitor.json <<'PY'
import json, sys
page, mon = (json.load(open(f)) for f in sys.argv[1:3])
fix = lambda v, n: "n/a" if v is None else "%.*f" % (n, v)
for c, got in zip(mon["calibration"], page["calibration_new"]):
    n = c["new_cohorts"]
    if n["users"]:
        want = ["D%d" % n["horizon"], str(len(n["weeks"])), str(n["users"]), fix(n["mean_predicted"], 4),
                fix(n["mean_actual"], 4), fix(n["bias"], 4), fix(n["z"], 2),
                n["level"] if n["judged"] else "too few users to judge"]
        what = "%d install weeks" % len(n["weeks"])
    else:
        want = ["D%d" % n["horizon"], "0", "0", "no install week after as_of complete yet", "", "", "", ""]
        what = "no install week complete yet"
    print("  new cohorts D%d: %s, %s" % (n["horizon"], what,
          "as ltvpipe monitor --json" if got == want else "page %s, monitor %s" % (got, want)))
if len(page["calibration_new"]) != len(mon["calibration"]):
    print("  new cohorts: %d rows for %d horizons" % (len(page["calibration_new"]), len(mon["calibration"])))
PY
curl -s -m 20 "$srv_url/v1/monitor" >api_monitor.json
jq -e --slurpfile m monitor.json '.monitor.report.calibration | map(.new_cohorts) == ($m[0].calibration | map(.new_cohorts))' \
	api_monitor.json >/dev/null && echo "  GET /v1/monitor: the new cohorts of ltvpipe monitor --json"
echo "  external resources: $(jq .external page.json)"
serve_stop "$srv_pid"
unset LTVPIPE_SERVE_TOKEN
serve_start plain || exit 1
python3 "$LTV_ROOT/tests/browser/page_test.py" --url "$plain_url/" --screenshot "$shots/page-notoken.png" >plain.json 2>plain.err
echo "without a token: browser exit $?, $(jq .promote_buttons plain.json) promote button(s), rollback shown: $(jq .rollback_shown plain.json)"
for f in page page-models; do
	[ -s "$shots/$f.png" ] && [ "$(head -c 8 "$shots/$f.png" | od -An -c | tr -d ' ')" = '211PNG\r\n032\n' ] && echo "screenshot $f saved (PNG)"
done
exit 0

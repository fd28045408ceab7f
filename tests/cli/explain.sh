# "Why this number" (issue 10): `predict --explain` and POST
# /v1/predict?explain=1 add the method chain that served and the tree
# models' TreeSHAP contributions. Checked here against the prediction
# itself: bias + listed contributions + rest = margin for every model; the
# hurdle payer's margins, weighted over the snapshot ages, give back the
# p_payer the answer states; the chain ends at the method named as serving.
# The HTTP explanation equals the CLI one. `models show` and GET
# /v1/models/{V} list each tree model's feature importance (shares of gain
# summing to at most 1). GET /v1/monitor and /v1/models/{V} carry the latest
# drift report once `ltvpipe monitor` has stored one.
set -u
. "$LTV_ROOT/tests/lib/serve.bash"
unset LTVPIPE_SERVE_TOKEN
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 2000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S --as-of 2025-08-01 >run.out 2>run.err || exit 1
app=$(sed -n '2p' data/users.csv | cut -d, -f2)
camp=$(sed -n '2p' data/users.csv | cut -d, -f3)
F="--feature rev_window=3.5 --feature purchases_window=2 --feature age_days=10"

"$LTVPIPE" predict --app "$app" --campaign "$camp" $F >plain.json || exit 1
"$LTVPIPE" predict --app "$app" --campaign "$camp" $F --explain >cli.json
echo "predict --explain exit $?"
jq -e 'del(.explain)' cli.json >cli_plain.json && cmp -s <(jq -S . plain.json) <(jq -S . cli_plain.json) &&
	echo "the answer is unchanged beside explain"
jq -r '"explained at D\(.explain.horizon); models explained: \(.explain.contributions | length > 0)"' cli.json

check() { # FILE: the invariants of an explanation
	jq -e '[.explain.contributions[] | (.bias + ([.top[].contribution] | add) + .rest - .margin) | fabs < 1e-4] | all' "$1" >/dev/null &&
		echo "  $1: bias + contributions + rest = margin for every model"
	jq -e '[.explain.contributions[] | (.top | length) <= 5 and (.top | length) > 0] | all' "$1" >/dev/null &&
		echo "  $1: at most 5 features listed per model"
	jq -e '[.explain.contributions[] | [.top[].contribution | fabs] | . == (sort | reverse)] | all' "$1" >/dev/null &&
		echo "  $1: listed by absolute contribution"
	jq -e '([.explain.contributions[] | select(.model == "payer") | .weight / (1 + (-.margin | exp))] | add) as $p |
		($p - .p_payer | fabs) < 1e-5' "$1" >/dev/null &&
		echo "  $1: the payer margins give back p_payer"
	jq -e '[.explain.contributions[] | select(.model == "payer") | .weight] | add | (. - 1 | fabs) < 1e-9' "$1" >/dev/null &&
		echo "  $1: snapshot weights sum to 1"
	jq -e '.explain.method_chain | (map(select(.served)) | length == 1) and (last.served)' "$1" >/dev/null &&
		echo "  $1: the chain ends at the one method that served"
	jq -e '(.explain.method_chain | last | .method) == .method and (.explain.method_chain | last | .ltv_raw) != null' "$1" >/dev/null &&
		echo "  $1: it is the method the answer names"
	jq -e '.explain.method_chain | .[:-1] | all(.ltv_raw == null)' "$1" >/dev/null &&
		echo "  $1: every method before it had nothing"
}
check cli.json

# a campaign the model never saw: its tier's default, then whatever serves
"$LTVPIPE" predict --app "$app" --campaign never_seen_campaign $F --explain >new.json || exit 1
jq -r '"new campaign: first step role: \(.explain.method_chain[0].role)"' new.json
check new.json

serve_start srv --threads 2 || exit 1
u=$srv_url
J='Content-Type: application/json'
body=$(jq -c -n --arg a "$app" --arg c "$camp" '{app:$a, campaign:$c, rev_window:3.5, purchases_window:2, age_days:10}')
echo "predict?explain=1 $(http POST "$u/v1/predict?explain=1" -H "$J" -d "$body")"
cp body http.json
cmp -s <(jq -S '.explain' cli.json) <(jq -S '.explain' http.json) && echo "  the same explanation as the CLI"
echo "predict?explain=0 $(http POST "$u/v1/predict?explain=0" -H "$J" -d "$body") explain: $(jq 'has("explain")' body)"
echo "predict?explain=yes $(http POST "$u/v1/predict?explain=yes" -H "$J" -d "$body") $(err_of)"
echo "predict?explain=1 bad user $(http POST "$u/v1/predict?explain=1" -H "$J" -d '{"campaign":"x"}') $(err_of)"

"$LTVPIPE" models show 1 >show.txt || exit 1
grep -c "^  hurdle payer pooled D30 .*%" show.txt | sed 's/^/models show: hurdle payer D30 lines: /'
echo "model 1 $(http GET "$u/v1/models/1") models with importance: $(jq '.feature_importance | length > 2' body)"
jq -e '[.feature_importance[] | ([.top[].share] | add) <= 1.000001 and all(.top[]; .gain > 0)] | all' body >/dev/null &&
	echo "  shares of gain sum to at most 1, every gain positive"
jq -e '.feature_importance[] | select(.method == "hurdle" and .model == "payer" and .horizon == 30 and .tier == 0) | .top[0].feature' body >/dev/null &&
	echo "  hurdle payer D30 names its top feature"
echo "monitor before any report $(http GET "$u/v1/monitor") monitor: $(jq -c .monitor body)"
"$LTVPIPE" monitor --as-of 2025-08-08 >mon.out 2>mon.err
echo "monitor exit $? (0 ok, 3 warn, 4 alert)" | sed 's/exit [034] /exit 0|3|4 /' 
echo "monitor after $(http GET "$u/v1/monitor") version $(jq .model_version body) status stored: $(jq -r --arg s "$(sqlite3 models/registry.sqlite 'select status from monitor_reports order by id desc limit 1')" '.monitor.status == $s' body) psi rows $(jq '.monitor.report.psi | length > 5' body)"
echo "model 1 $(http GET "$u/v1/models/1") monitor status $(jq -r '.monitor.status | IN("ok", "warn", "alert")' body)"
exit 0

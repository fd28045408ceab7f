# The page at / in a real browser: headless Chromium (Debian's, driven over
# the DevTools protocol by tests/browser/page_test.py) fills the prediction
# form, submits it and reads the answer; the numbers it shows must be those
# of `ltvpipe predict` for the same user. The Models tab must list the
# versions and the alias history. Screenshots go to tests/browser/out/.
set -u
. "$LTV_ROOT/tests/lib/serve.bash"
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err || exit 1
serve_start srv || exit 1
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
[ -s "$shots/page.png" ] && [ "$(head -c 8 "$shots/page.png" | od -An -c | tr -d ' ')" = '211PNG\r\n032\n' ] && echo "screenshot saved (PNG)"
exit 0

# A/B experiments in `ltvpipe serve` (issue 11): while an experiment runs
# against the served version, a prediction that names its user_id goes to
# the arm `score` gives the same user (the salted hash), the answer names the
# experiment, the arm and the version that served (body and X-Model-Version;
# in a JSON or CSV batch per user, in order; CSV answers get experiment,
# arm and logged columns),
# and the users in the log_rate sample are logged into experiment_predictions
# by a background writer. A registry locked by another process delays no
# request and fails none: the lost batch is counted in /metrics. Stopping the
# experiment sends everyone back to production. One experiment at a time: a
# second start is refused.
set -u
. "$LTV_ROOT/tests/lib/serve.bash"
unset LTVPIPE_SERVE_TOKEN
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set hurdle.n_rounds=30 --set multiplier.n_rounds=30"
"$LTVPIPE" generate --users 2000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err || exit 1
"$LTVPIPE" run $S --set lookalike.k=12 >run2.out 2>run2.err || exit 1
R=models/registry.sqlite
prod=$(sqlite3 $R "select model_version from aliases where alias = 'production'")
cand=$((3 - prod))
"$LTVPIPE" models experiment start ab --candidate $cand --share 0.5 --log-rate 0.5 >start.out 2>start.err
echo "experiment start exit $?"
"$LTVPIPE" models experiment start ab2 --candidate $cand >start2.out 2>start2.err
echo "a second experiment while ab runs: exit $?"
grep -o "experiment 'ab' is running; stop it first" start2.err
echo "experiments stored: $(sqlite3 $R "select count(*) from experiments")"

# score logs its sample of users with their arms
"$LTVPIPE" score --output scores.csv >score.out 2>score.err || exit 1
sqlite3 -separator , $R "select user_id, arm, model_version from experiment_predictions order by user_id" >score_arms.csv
echo "score logged users: $([ "$(wc -l <score_arms.csv)" -gt 100 ] && echo 'more than 100')"

# busy timeout 10 s: a request that waited for the registry would take that long
serve_start srv --set serve.watch_ms=100 --set registry.busy_timeout_s=10 --threads 2 || exit 1
u=$srv_url
J='Content-Type: application/json'
app=$(sed -n '2p' data/users.csv | cut -d, -f2)
ask() { # USER_ID: "id,status,arm,version,header version,logged,seconds" of the answer
	local w
	w=$(curl -s -m "$LTV_WAIT_S" -D headers -o body -w '%{http_code},%{time_total}' -X POST -H "$J" \
		-d "{\"app\":\"$app\",\"user_id\":\"$1\",\"rev_window\":1}" "$u/v1/predict")
	printf '%s,%s,%s,%s,%s,%s\n' "$1" "${w%,*}" "$(jq -r '"\(.experiment.arm),\(.model_version)"' body)" \
		"$(sed -n 's/^X-Model-Version: \([0-9]*\).*/\1/p' headers)" "$(jq -r '.experiment.logged' body)" "${w#*,}"
}

# the users score logged: the same arm over HTTP
head -40 score_arms.csv | while IFS=, read -r id want version; do
	ask "$id" >>served.csv
	a=$(tail -1 served.csv)
	[ "$(cut -d, -f3 <<<"$a")" = "$want" ] && [ "$(cut -d, -f4 <<<"$a")" = "$version" ] || echo "MISMATCH $id: score $want v$version, served $a"
done
echo "40 users score logged: $(cut -d, -f2 served.csv | sort -u | tr '\n' ' ')answers, arms as score's"
awk -F, -v c=$cand -v p=$prod '($3 == "candidate" && $4 == c && $5 == c) || ($3 == "control" && $4 == p && $5 == p) { ok++ } END { print "  version in body and header matches the arm: " ok "/" NR }' served.csv

# new users: arms by hash, the sample logged in the background
for i in $(seq 1 200); do ask "web-$i"; done >web.csv
awk -F, '$3 == "candidate" { c++ } $6 == "true" { l++ } END { printf "200 new users: candidate share in [0.4, 0.6]: %s, logged share in [0.4, 0.6]: %s\n", (c / NR >= 0.4 && c / NR <= 0.6) ? "yes" : "no " c, (l / NR >= 0.4 && l / NR <= 0.6) ? "yes" : "no " l }' web.csv
web_logged() { [ "$(sqlite3 $R "select count(*) from experiment_predictions where user_id like 'web-%'")" = "$(grep -c ',true,' web.csv)" ]; }
wait_until web_logged
sqlite3 -separator , $R "select user_id, arm, model_version from experiment_predictions where user_id like 'web-%'" | LC_ALL=C sort >web_logged.csv
awk -F, '$6 == "true" { print $1 "," $3 "," $4 }' web.csv | LC_ALL=C sort >web_expected.csv
cmp -s web_logged.csv web_expected.csv && echo "  logged: exactly the sampled users, with their arm and version"
echo "  ages and predictions logged: $(sqlite3 $R "select count(*) = sum(age_days is not null and predictions like '{\"7\":%') from experiment_predictions where user_id like 'web-%'")"
# a JSON batch: each user to its arm, in the order given
jq -c -n --arg a "$app" '[range(1; 21) | {app: $a, user_id: "web-\(.)", rev_window: 1}] + [{app: $a, rev_window: 1}]' >batch.json
echo "batch $(http POST "$u/v1/predict/batch" -H "$J" --data-binary @batch.json) n $(jq .n body)"
jq -r '.predictions[:20][] | "\(.experiment.arm),\(.model_version)"' body >batch_arms.txt
head -20 web.csv | cut -d, -f3,4 >single_arms.txt
cmp -s batch_arms.txt single_arms.txt && echo "  arms and versions as single requests, in order ($(sort -u batch_arms.txt | wc -l) distinct)"
echo "  the user without user_id: $(jq -c '.predictions[20] | {experiment, model_version}' body | sed "s/:$prod}/:PRODUCTION}/")"
# a CSV batch: the same routing, with experiment, arm and logged columns
{ echo "user_id,app,rev_window"; for i in $(seq 1 20); do echo "web-$i,$app,1"; done; echo ",$app,1"; } >batch.csv
echo "CSV batch $(http POST "$u/v1/predict/batch" -H 'Content-Type: text/csv' --data-binary @batch.csv) lines $(wc -l <body)"
tr -d '\r' <body >batch_out.csv
echo "  header ends with: $(head -1 batch_out.csv | awk -F, '{ print $(NF-2) "," $(NF-1) "," $NF }')"
awk -F, 'NR == 1 { for (c = 1; c <= NF; c++) col[$c] = c; next } NR <= 21 { print $col["arm"] "," $col["model_version"] "," ($col["logged"] ? "true" : "false") "," $col["experiment"] }' batch_out.csv >csv_arms.txt
head -20 web.csv | awk -F, '{ print $3 "," $4 "," $6 ",ab" }' >single_arms_logged.txt
cmp -s csv_arms.txt single_arms_logged.txt && echo "  arms, versions and logged as single requests, in order ($(cut -d, -f1 csv_arms.txt | sort -u | wc -l) arms)"
echo "  the line without user_id: $(awk -F, 'NR == 1 { for (c = 1; c <= NF; c++) col[$c] = c; next } NR == 22 { print "experiment \"" $col["experiment"] "\", arm \"" $col["arm"] "\", version " $col["model_version"] }' batch_out.csv | sed "s/version $prod$/version PRODUCTION/")"
echo "no user_id: $(curl -s -m "$LTV_WAIT_S" -X POST -H "$J" -d "{\"app\":\"$app\"}" "$u/v1/predict" | jq -c '{experiment, model_version}' | sed "s/:$prod}/:PRODUCTION}/")"
echo "user_id too long: $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"user_id\":\"$(printf 'x%.0s' $(seq 1 200))\"}") $(err_of)"
echo "user_id a number: $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"user_id\":7}") $(err_of)"

# a registry locked by another writer: no request fails or waits for it. The
# lock is held until the background writer has failed on it (not for a fixed
# time, which a loaded machine could spend before the requests even began).
mkfifo lock.fifo
sqlite3 $R <lock.fifo >lock.out 2>&1 &
lock=$!
exec 3>lock.fifo
echo "BEGIN EXCLUSIVE; SELECT 'locked';" >&3
locked() { grep -q '^locked$' lock.out; }
wait_until locked || echo "the registry was not locked"
for i in $(seq 301 320); do ask "web-$i"; done >locked.csv
echo "20 requests while the registry is locked (busy timeout 10 s): $(cut -d, -f2 locked.csv | sort -u | tr '\n' ' ')answers"
awk -F, '{ if ($7 > max) max = $7 } END { print "  slowest under the 10 s busy timeout: " (max < 10 ? "yes" : "no, " max " s") }' locked.csv
write_failed() {
	curl -s -m "$LTV_WAIT_S" -o metrics "$srv_url/metrics" &&
		grep -q '^ltvpipe_experiment_log_write_failures_total [1-9]' metrics
}
wait_until write_failed && echo "  the failed write is counted"
echo "COMMIT;" >&3
exec 3>&-
wait $lock
grep -q '^ltvpipe_experiment_log_total{outcome="lost"} [1-9]' metrics && echo "  its predictions are counted lost"
grep -q "experiment log: .* not written (requests are unaffected)" srv.err && echo "  and logged once as a warning"
echo "  candidate version gauge is the candidate: $(grep -c "^ltvpipe_experiment_candidate_version $cand$" metrics)"
ask web-999 >after.csv
after_logged() { [ "$(sqlite3 $R "select count(*) from experiment_predictions where user_id = 'web-999'")" = "$(grep -c ',true,' after.csv)" ]; }
echo "after the lock: logging resumes: $(wait_until after_logged && echo yes)"

"$LTVPIPE" models experiment stop ab >stop.out 2>stop.err || exit 1
back_to_production() { [ "$(ask web-1 | cut -d, -f3)" = null ]; }
wait_until back_to_production
a=$(ask web-1)
echo "after stop: arm $(cut -d, -f3 <<<"$a"), version is production: $([ "$(cut -d, -f4 <<<"$a")" = "$prod" ] && echo yes)"
exit 0

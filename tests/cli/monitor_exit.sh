# ltvpipe monitor from the command line, as cron runs it: a version trained
# as of 2025-08-01 is monitored on the week after. The users installed in that
# week cost three times as much (a network's prices tripling): the PSI of cost
# alerts and the exit status is 4; --json says the same; the report is stored.
# Bad input exits 2 with the fix named, and stores nothing.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set run.jobs=1 --set hurdle.n_rounds=30 --set multiplier.n_rounds=30"
"$LTVPIPE" generate --users 10000 --seed 1 --out data >/dev/null || exit 1
awk -F, 'BEGIN { OFS = "," } NR > 1 && $4 >= "2025-08-01" && $4 < "2025-08-08" && $5 != "" { $5 = $5 * 3 } { print }' \
	data/users.csv >data/users3.csv && mv data/users3.csv data/users.csv
"$LTVPIPE" run $S --as-of 2025-08-01 >run.out 2>run.err
echo "run exit $?"

"$LTVPIPE" monitor $S --as-of 2025-08-08 >monitor.out 2>monitor.err
echo "monitor exit $?"
head -1 monitor.out | sed 's/trained as of [^)]*/trained as of T/'
grep -E '^  drift alert: max PSI [0-9.]+ \(cost\); warn at 0.1, alert at 0.25$' monitor.out >/dev/null && echo "drift alert names cost"
grep -qE '^    cost +[0-9.]+ +[0-9]+  alert$' monitor.out && echo "cost row: alert"

"$LTVPIPE" monitor $S --as-of 2025-08-08 --json >monitor.json 2>/dev/null
echo "monitor --json exit $?"
python3 -c 'import json, sys; r = json.load(open("monitor.json")); print("json: status %s, drift %s, worst %s, model_version %d, window_days %d" % (r["status"], r["drift"], r["max_psi_of"], r["model_version"], r["window_days"]))'
echo "reports stored: $(sqlite3 models/registry.sqlite "select count(*) || ', last ' || status from monitor_reports order by id desc limit 1")"

"$LTVPIPE" monitor $S --as-of 2025-07-01 >bad.out 2>bad.err
echo "monitor before the version's as_of exit $?"
grep -q "is before model version 1's as_of" bad.err && echo "says the as_of is before the version's"
"$LTVPIPE" monitor $S --model 9 >bad.out 2>bad.err
echo "monitor --model 9 exit $?"
grep -q "no model version 9" bad.err && echo "names version 9"
"$LTVPIPE" monitor $S --set monitor.psi_warn=0.5 --set monitor.psi_alert=0.25 >bad.out 2>bad.err
echo "warn above alert exit $?"
grep -q "monitor.psi_warn" bad.err && echo "names monitor.psi_warn"
echo "reports stored: $(sqlite3 models/registry.sqlite "select count(*) from monitor_reports")"
exit 0

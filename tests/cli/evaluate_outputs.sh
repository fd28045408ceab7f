# `ltvpipe evaluate`: a backtest on a small generated sample writes the three
# reports (HTML with its four charts per horizon, text, valid JSON), stores one
# evaluations row under its own run (it evaluated the scratch model it trained,
# not production version 1, so `models show 1` does not list it), and
# refuses (exit 2, naming the latest usable date) an --as-of whose actuals
# would be incomplete. The main registry's model versions are untouched: the
# training happened in a scratch registry.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set run.jobs=1"
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"
LTVPIPE_PROGRESS_EVERY=0 "$LTVPIPE" evaluate $S --horizons 7,30 --output out >eval.out 2>eval.err
echo "evaluate exit $?"
# the training inside evaluate says each stage's own progress, as run does
for st in features hurdle multiplier select calibrate; do
	grep -q "stage=$st progress: \[stage [0-9]* of [0-9]*\] $st: [0-9]* of [0-9]*" eval.err ||
		echo "evaluate's training said no progress of $st"
done
ls out
grep -q '^evaluated as of 2025-08-0[0-9]T[0-9:]*Z in ' eval.out && echo "says the as_of (latest event minus 30 days)"
grep -q '^  horizon 30 days: [0-9]* users acquired in the 30 days before as_of' eval.out && echo "says the users per horizon"
grep -q 'stored as evaluation 1 of run [0-9a-f-]*: the scratch model it trained at as_of T, not a model version of the registry' eval.out && echo "says where it was stored"
run_id=$(sed -n 's/.*stored as evaluation 1 of run \([0-9a-f-]*\):.*/\1/p' eval.out)
echo "evaluations row filed under that run: $(sqlite3 models/registry.sqlite "select count(*) from evaluations where run_id = '$run_id' and model_version is null")"
grep -q "^Stored as evaluation 1 of run $run_id: the scratch model it trained" out/evaluation.txt && echo "the text report says the same"
echo "JSON valid: $(sqlite3 :memory: "select json_valid(readfile('out/evaluation.json'))")"
echo "JSON horizons: $(sqlite3 :memory: "select group_concat(json_extract(value, '\$.horizon')) from json_each(json_extract(readfile('out/evaluation.json'), '\$.horizons'))")"
echo "JSON predictors at 30: $(sqlite3 :memory: "select group_concat(json_extract(value, '\$.name')) from json_each(json_extract(readfile('out/evaluation.json'), '\$.horizons[1].predictors'))")"
echo "SVG charts in the HTML: $(grep -c '<svg ' out/evaluation.html)"
grep -qiE '(src|href)=.?https?:' out/evaluation.html || echo "HTML loads nothing from the network"
grep -q '^== Horizon 30 days ==' out/evaluation.txt && echo "text report has horizon 30"
echo "evaluations rows: $(sqlite3 models/registry.sqlite 'select count(*), model_version, horizons from evaluations')"
echo "model versions after evaluate: $(sqlite3 models/registry.sqlite 'select count(*) from model_versions')"
"$LTVPIPE" models show 1 >show.out 2>&1
echo "models show exit $?"
grep -q '^evaluation 1 (.*): backtest as of 2025-08-0' show.out && echo "models show 1 lists the scratch model's evaluation (it must not)"
grep -c '^  30 ' show.out | sed 's/^/predictor rows at 30 days: /'
"$LTVPIPE" evaluate $S --horizons 7,30 --as-of 2025-09-01 --output late >late.out 2>late.err
echo "evaluate too late exit $?"
grep -q "actual ltv_30 would be incomplete; pass --as-of 2025-08-0" late.err && echo "too late names the latest usable as_of"
[ -e late ] && echo "a refused evaluation wrote reports"
# --json: stdout is the document of DIR/evaluation.json; what it says goes to stderr
"$LTVPIPE" evaluate $S --horizons 7 --output j --json >j.out 2>j.err
echo "evaluate --json exit $?"
jq -S . j.out | cmp -s - <(jq -S . j/evaluation.json) && echo "evaluate --json prints evaluation.json"
grep -q '^evaluated as of' j.err && echo "evaluate --json says the rest on stderr"
exit 0

# `ltvpipe evaluate --model V`: a model version already in the registry is
# evaluated as it is stored, at the as_of it was trained at, with no training.
# Its metrics must equal, number for number, those of a backtest trained afresh
# at the same T with the same config (training is deterministic), and they are
# stored with V. A version whose longest horizon is not yet complete in the
# data, --model with --as-of, and an unknown version are refused with a
# message saying what to do.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set run.jobs=1 --set features.horizons=7,30"
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S --only ingest >/dev/null 2>&1 || exit 1
latest=$(sqlite3 models/registry.sqlite "select value from meta where key = 'max_event_time'")
T=$(date -u -d "@$((latest - 30 * 86400))" +%Y-%m-%dT%H:%M:%SZ)
"$LTVPIPE" run $S --as-of "$T" >run.out 2>run.err
echo "run as of latest - 30 days exit $?"
"$LTVPIPE" evaluate $S --model production --output by_model >model.out 2>model.err
echo "evaluate --model production exit $?"
grep -q "^evaluated model version 1, trained as of $T, in " model.out && echo "says the version and its as_of"
grep -q 'stored as evaluation 1 of model version 1' model.out && echo "says where it was stored"
"$LTVPIPE" evaluate $S --as-of "$T" --output fresh >fresh.out 2>fresh.err
echo "evaluate afresh at the same as_of exit $?"
strip="json_remove(readfile('%s'), '\$.run_id', '\$.evaluation_id', '\$.command', '\$.production_version', '\$.model_version')"
same=$(sqlite3 :memory: "select $(printf "$strip" by_model/evaluation.json) = $(printf "$strip" fresh/evaluation.json)")
echo "metrics identical to the fresh backtest: $same"
echo "stored JSON says model_version: $(sqlite3 :memory: "select json_extract(readfile('by_model/evaluation.json'), '\$.model_version')")"
echo "evaluations rows (id, model_version): $(sqlite3 models/registry.sqlite "select group_concat(e, ' ') from (select id || ':' || coalesce(model_version, 'scratch run') as e from evaluations order by id)")"
echo "model versions after both: $(sqlite3 models/registry.sqlite 'select count(*) from model_versions')"
grep -q '^Model version 1, as stored in the registry, was trained as of' by_model/evaluation.txt && echo "text report names the version"

# Version 2, trained on everything: its 30-day outcomes are in the future.
"$LTVPIPE" run $S >run2.out 2>run2.err
echo "run on all data exit $?"
"$LTVPIPE" evaluate $S --model 2 --output young >young.out 2>young.err
echo "evaluate --model 2 exit $?"
grep -q "model version 2 was trained as of .*; its 30-day outcomes need events through .*, and the registry's latest is" young.err && echo "says which outcomes are missing"
[ -e young ] && echo "a refused evaluation wrote reports"
"$LTVPIPE" evaluate $S --model 1 --as-of "$T" >both.out 2>both.err
echo "evaluate --model with --as-of exit $?"
grep -q "drop --as-of, or drop --model to train afresh" both.err && echo "says which option to drop"
"$LTVPIPE" evaluate $S --model 9 >nine.out 2>nine.err
echo "evaluate --model 9 exit $?"
head -c 300 nine.err | sed 's/^/  /'
exit 0

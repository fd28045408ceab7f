# A/B experiments with sharded scoring (issue 11): while an experiment runs,
# `score --shard i/N` serves each shard's users by their arm, as an unsharded
# score does, and every shard logs its sample of users into the main
# registry's experiment_predictions, the shards running at the same time.
# From two copies of one registry: the merged sharded scores are
# byte-identical to the unsharded ones, and both logs hold the same users,
# arms, versions, ages and predictions (only the logging time differs);
# `models experiment report` says the same of both. Scoring again logs nobody
# twice.
set -u
L=$LTVPIPE
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set hurdle.n_rounds=30 --set multiplier.n_rounds=30 --set run.jobs=1"
"$L" generate --users 4000 --seed 5 --out data >/dev/null || exit 1
"$L" run $S --as-of 2025-06-01 >run.out 2>run.err || { echo "run 1 failed"; cat run.err; exit 1; }
"$L" run $S --as-of 2025-06-01 --set lookalike.k=12 >run2.out 2>run2.err || { echo "run 2 failed"; exit 1; }
R=models/registry.sqlite
"$L" models experiment start ab --candidate candidate --share 0.3 --log-rate 0.5 --min-users 20 >start.out 2>start.err
echo "experiment start exit $?"
sqlite3 $R ".backup full.sqlite" && sqlite3 $R ".backup sharded.sqlite" || exit 1

"$L" score $S --set registry.path=full.sqlite --as-of 2025-07-01 --output full.csv >full.out 2>full.err
echo "unsharded score exit $?: $(grep -o 'experiment ab: [0-9]* of [0-9]* users scored by candidate model version 2' full.out | sed 's/[0-9]* of [0-9]*/K of N/')"
# three scorers log into one registry at once: each may wait for the others' writes, longer on a loaded machine
pids=()
for i in 0 1 2; do
	"$L" score $S --set registry.path=sharded.sqlite --set registry.busy_timeout_s=120 --as-of 2025-07-01 \
		--shard $i/3 --output part$i.csv >part$i.out 2>part$i.err &
	pids+=($!)
done
ok=0
for i in 0 1 2; do wait "${pids[$i]}" && ok=$((ok + 1)); done
echo "score shards at the same time: $ok of 3 exit 0"
cand_sum=0
for i in 0 1 2; do
	n=$(sed -n 's/^experiment ab: \([0-9]*\) of .*/\1/p' part$i.out)
	cand_sum=$((cand_sum + ${n:-0}))
done
full_cand=$(sed -n 's/^experiment ab: \([0-9]*\) of .*/\1/p' full.out)
echo "candidate users: the shards' add up to the unsharded: $([ "$cand_sum" = "$full_cand" ] && [ "$cand_sum" -gt 100 ] && echo yes || echo "no ($cand_sum, $full_cand)")"
"$L" merge-scores --output merged.csv part0.csv part1.csv part2.csv >merge.out 2>merge.err
echo "merge-scores exit $?"
cmp -s merged.csv full.csv && echo "merged scores byte-identical to the unsharded scores" || echo "merged scores DIFFER"
cmp -s merged.csv.campaigns.csv full.csv.campaigns.csv && echo "campaign summaries byte-identical"

LOG="select experiment, user_id, arm, model_version, as_of, age_days, ltv, predictions from experiment_predictions order by user_id"
sqlite3 full.sqlite "$LOG" >full.log
sqlite3 sharded.sqlite "$LOG" >sharded.log
echo "logged users: $([ "$(wc -l <full.log)" -gt 500 ] && echo 'more than 500'), candidate arm: $(awk -F'|' '$3 == "candidate"' full.log | wc -l | awk '{ print ($1 > 100) ? "more than 100" : "too few" }')"
cmp -s full.log sharded.log && echo "experiment_predictions: the same rows sharded and unsharded" || { echo "experiment_predictions DIFFER"; diff full.log sharded.log | head -5; }
# every logged user is in the arm the salted hash gives and was served by that arm's version
awk -F'|' '($3 == "candidate") != ($4 == 2) { bad++ } END { print "arm and version agree on every row: " (bad ? "no" : "yes") }' sharded.log

# a second sharded score logs nobody twice
before=$(sqlite3 sharded.sqlite "select count(*) from experiment_predictions")
for i in 0 1 2; do
	"$L" score $S --set registry.path=sharded.sqlite --as-of 2025-07-01 --shard $i/3 --output again$i.csv >again.out 2>again.err || echo "shard $i failed again"
done
echo "rescored: $([ "$(sqlite3 sharded.sqlite "select count(*) from experiment_predictions")" = "$before" ] && echo 'no user logged twice')"

for r in full sharded; do
	"$L" models experiment $S --set registry.path=$r.sqlite report ab >report.$r 2>report.$r.err
	echo "report on $r exit $?"
done
cmp -s report.full report.sharded && echo "reports identical" || { echo "reports DIFFER"; diff report.full report.sharded | head -6; }
exit 0

# The real stdout and stderr of the commands a data engineer scripts against,
# compared whole (zstd's golden style), with what changes from run to run
# masked: run ids, today's timestamps, durations, sizes in memory. Covers
# --json on run, status, score, models list/show/history and diff; score
# --output -; dag; diff of two versions and of two runs; models export;
# what runs records; --quiet; and the usage errors (exit 2, one line naming
# the option or argument).
set -u
# today's timestamps, and tomorrow's for a test that runs over midnight (UTC)
today=$(date -u +%Y-%m-%d)
tomorrow=$(date -u -d "$today + 1 day" +%Y-%m-%d)
mask() {
	sed -E -e 's/[0-9]{8}-[0-9]{6}-[0-9a-f]{4,}/RUN/g' \
		-e "s/(${today}|${tomorrow})T[0-9:]{8}Z/NOW/g" \
		-e 's/in [0-9]+\.[0-9]+ s/in S s/g' \
		-e 's/(about [0-9]+ s|under 1 s) left/T left/g' \
		-e 's/"(seconds|peak_rss_mb)":[[:space:]]*[0-9.e+-]+/"\1": X/g'
}
say() { echo "\$ ltvpipe $*" | mask; }
# runs ltvpipe, printing its stdout, then its stderr prefixed "stderr: ", then the exit code
show() {
	say "$@"
	"$LTVPIPE" "$@" >o 2>e
	local rc=$?
	mask <o
	mask <e | sed 's/^/stderr: /'
	echo "exit $rc"
}
S="--set run.jobs=1 --set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3"
# before any registry exists: a usage error is said as such, before the missing registry
show status --bogus
show models list
show models list --bogus
show monitor extra
[ -e models ] && echo "a command created a registry directory"
"$LTVPIPE" generate --users 2000 --seed 7 --start 2025-01-01 --out data >/dev/null || exit 1

show dag
"$LTVPIPE" dag --dot >dag.dot; echo "dag --dot exit $?: $(grep -c -- '->' dag.dot) edges, $(grep -c 'tooltip' dag.dot) stages"
# the same edges as --json's inputs
"$LTVPIPE" dag --json | jq -r '.stages[] | .name as $n | .inputs[] | "\t\"\(.)\" -> \"\($n)\";"' >edges.json.txt
grep -- '->' dag.dot | cmp -s - edges.json.txt && echo "dag --dot and --json have the same edges"

# the first run: each stage once on stdout, progress on stderr, --quiet silences it
# (LTVPIPE_PROGRESS_EVERY=0: a progress log line at every step, not every 30 s)
export LTVPIPE_PROGRESS_EVERY=0
show run $S --quiet
"$LTVPIPE" run $S --dry-run --set hurdle.max_depth=3 --json 2>dry.err |
	jq -c '{dry_run, as_of, stages: [.stages[] | [.stage, .state, .reason // .version]]}'
echo "run --dry-run --json stderr: $(mask <dry.err | tr '\n' '|')"
"$LTVPIPE" run $S --set hurdle.max_depth=3 --json >run2.json 2>run2.err; echo "run --json exit $?"
jq -c '{run_id, dry_run, as_of, registry, stages: [.stages[] | [.stage, .state, .version, .made_by_run]]}' run2.json | mask
jq -c '[.stages[] | select(.state == "ran") | {stage, campaign_wape: .metrics.campaign_wape}]' run2.json
# stderr: the progress of the stages that ran, each once, with each stage's own steps
mask <run2.err | grep -v 'stage=hurdle tier'
unset LTVPIPE_PROGRESS_EVERY
"$LTVPIPE" status $S --json >status.json 2>status.err; echo "status --json exit $?, stderr $(wc -c <status.err) bytes"
jq -c '{registry, as_of, stages: [.stages[] | [.stage, .state, .version]]}' status.json
"$LTVPIPE" status --json | jq -c '[.stages[] | select(.state != "fresh") | {stage, state, reason}]'

# what runs records: the whole command line and the as_of used
sqlite3 models/registry.sqlite "select command || ' | as_of ' || datetime(as_of, 'unixepoch') from runs order by started_at" | mask

show models list
show models list --json
"$LTVPIPE" models show 2 --json | jq -c '{version, trained_as_of, campaign_wape_out_of_sample, artefacts: [.artefacts[] | .name]}'
# models show: each metric on a line of its own, named with its horizon and what it measures
"$LTVPIPE" models show 2 >show.txt 2>&1; echo "models show 2 exit $?"
mask <show.txt | sed -n '1,4p;/^hurdle v/,/^$/p;/^select v/,/^$/p;/^calibrate v/,/^$/p'
grep -c '[{}]' show.txt | sed 's/^/models show lines with JSON braces: /'
show models history --json
show diff 1 2
# the subcommands that write get the registry for writing from the dispatcher
show models experiment list
show models experiment start ab --candidate 2 --share 0.5
"$LTVPIPE" models experiment list | cut -f1-4
show models experiment stop ab
show models experiment nosuch
show models promote 2
show models rollback
show models compare 1 2 --horizon 7
runs=$(sqlite3 models/registry.sqlite "select run_id from runs order by started_at" | tr '\n' ' ')
set -- $runs
show diff "$1" "$2"
"$LTVPIPE" diff "$1" "$2" --json | jq -c '.config'

# export: XGBoost's own JSON for each booster, a manifest of every artefact
show models export 2 exp --json
ls exp | grep -c '\.json$' | sed 's/^/json files: /'
jq -r '.artefacts[] | "\(.stage) v\(.version): \(.files | length) files"' exp/manifest.json
for f in exp/hurdle.*.json; do
	jq -e '.learner.gradient_booster.model.trees | length > 0' "$f" >/dev/null ||
		echo "$f is not an XGBoost JSON model"
done
jq -r '[.artefacts[].files[] | select(.format == "xgboost-json") | .file] | length' exp/manifest.json |
	sed 's/^/manifest lists xgboost-json files: /'
# each booster's columns are named, as many as XGBoost's own num_feature
jq -r '.artefacts[] | select(.feature_names) | "\(.stage): \(.feature_names | length) feature names, first \(.feature_names[0])"' exp/manifest.json
for f in exp/hurdle.*.json exp/multiplier.*.json; do
	stage=${f#exp/}; stage=${stage%%.*}
	[ "$(jq -r .learner.learner_model_param.num_feature "$f")" = \
	  "$(jq -r --arg s "$stage" '.artefacts[] | select(.stage == $s) | .feature_names | length' exp/manifest.json)" ] ||
		echo "$f: num_feature differs from the manifest's feature names"
done

# score: --json, and --output - for a pipe
show score --output scores.csv --json
"$LTVPIPE" score --output - >stdout.csv 2>score.err; echo "score --output - exit $?"
head -3 stdout.csv | cut -d, -f1-8
cmp -s stdout.csv scores.csv && echo "score --output - wrote the same CSV as --output scores.csv"
echo "score --output - stderr: $(mask <score.err | head -1)"
[ -e ./- ] && echo "score --output - wrote a file named -"
# --shard writes F.shard.csv beside F: it needs a file, not -
show score --shard 0/2 --output -
# merge-scores --output -: the merged per-user CSV on stdout alone, what it says on stderr
"$LTVPIPE" score --shard 0/2 --output sh0.csv >/dev/null 2>&1 && "$LTVPIPE" score --shard 1/2 --output sh1.csv >/dev/null 2>&1 ||
	echo "score --shard failed"
"$LTVPIPE" merge-scores --output - sh0.csv sh1.csv >merged.out 2>merged.err; echo "merge-scores --output - exit $?"
head -2 merged.out | cut -d, -f1-8
echo "merge-scores --output - stdout: $(wc -l <merged.out) lines; stderr: $(mask <merged.err | tr '\n' '|')"
cmp -s merged.out scores.csv && echo "merge-scores --output - wrote the unsharded score's CSV, byte for byte"
ls ./- ./-.* 2>/dev/null | sed 's/^/merge-scores --output - also wrote: /'
show merge-scores --output - sh0.csv

# usage errors: exit 2, one line that names what is wrong
show models list --bogus
show models list extra
show models show
show models nosuch
show run --only
show dag --dot extra
show diff 1
show diff 1 "$1"
show score --output
show evaluate extra
show status --as-of
# on a terminal, one line redrawn in place (\r, erase to the end) instead of log lines
script -qec "'$LTVPIPE' run $S --only calibrate --force" /dev/null </dev/null >tty.out 2>&1
tr '\r' '\n' <tty.out | grep -c '\[stage 1 of 1\] calibrate: [0-9] of 9 fits' |
	sed 's/^[1-9][0-9]*$/some/; s/^/terminal progress lines of calibrate: /'
grep -c 'progress:' tty.out | sed 's/^/progress log lines on a terminal: /'
exit 0

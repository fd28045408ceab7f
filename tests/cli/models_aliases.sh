# Model versions and aliases: the first training run is version 1 and
# production; a run with a changed parameter makes version 2, candidate, and
# production stays 1; `models promote 2` and `models rollback` move
# production, each move kept in alias_history with who and why; `score`
# follows production; a version that does not exist is refused.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
reg=models/registry.sqlite
aliases() { sqlite3 $reg "select group_concat(alias || '=' || model_version, ' ') from (select * from aliases order by alias)"; }
# "version aliases" per row of `models list` (tab-separated, header first)
list() { "$LTVPIPE" models list | awk -F'\t' 'NR == 1 { print "  " $1 " " $6; next } { print "  " $1 " " ($6 == "" ? "-" : $6) }'; }
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1

"$LTVPIPE" models list >out 2>err
echo "models list before any run exit $?"
"$LTVPIPE" run $S >run.out 2>run.err
echo "first run exit $?"
echo "models list:"
list
"$LTVPIPE" models list | awk -F'\t' 'NR == 2 && $4 ~ /^[0-9]+\.[0-9][0-9][0-9][0-9]$/ && $4 + 0 > 0 { print "version 1 has a validation WAPE" }'
echo "aliases: $(aliases)"

"$LTVPIPE" run $S >run.out 2>run.err
echo "rerun, nothing changed, exit $?"
echo "model versions: $(sqlite3 $reg 'select count(*) from model_versions')"

"$LTVPIPE" run $S --set lookalike.k=12 >run2.out 2>run2.err
echo "run with lookalike.k=12 exit $?"
grep -E '^(ingest|features|hurdle|lookalike|calibrate): ' run2.out | sed 's/ in [0-9.]* s$//'
echo "models list:"
list
echo "aliases: $(aliases)"
mkdir -p scores
"$LTVPIPE" score --output scores/prod.csv >score.out 2>&1
grep -q 'with model version 1 ' score.out && echo "score uses production: version 1"
"$LTVPIPE" score --model candidate --output scores/cand.csv >score.out 2>&1
grep -q 'with model version 2 ' score.out && echo "score --model candidate uses version 2"

"$LTVPIPE" models promote 2 >promote.out 2>promote.err
echo "promote 2 exit $?"
cat promote.out
echo "aliases: $(aliases)"
"$LTVPIPE" models promote 2
echo "promote 2 again exit $?"
"$LTVPIPE" score --output scores/prod2.csv >score.out 2>&1
grep -q 'with model version 2 ' score.out && echo "score uses production: version 2"
"$LTVPIPE" models history >history.out 2>&1
echo "models history exit $?"
echo "history (alias, from, to, reason):"
awk -F'\t' 'NR > 1 { print "  " $2 " " $3 " -> " $4 ": " $6 }' history.out
awk -F'\t' 'NR > 1 && ($1 !~ /^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T/ || $5 == "") { bad++ } END { print "every move has a time and who: " (bad ? "no" : "yes") }' history.out

"$LTVPIPE" models rollback >rollback.out 2>rollback.err
echo "rollback exit $?"
cat rollback.out
echo "aliases: $(aliases)"
echo "models list:"
list
sqlite3 $reg "select 'last move: ' || alias || ' ' || from_version || ' -> ' || to_version || ', ' || reason from alias_history order by id desc limit 1"

"$LTVPIPE" models promote 7 >out 2>err
echo "promote 7 exit $?"
grep -qF "no model version 7" err && echo "names version 7"
"$LTVPIPE" models promote >out 2>err
echo "promote without a version exit $?"
"$LTVPIPE" models demote 1 >out 2>err
echo "models demote exit $?"
echo "aliases: $(aliases)"
echo "alias moves: $(sqlite3 $reg 'select count(*) from alias_history')"
# --reason is kept; who is the OS user running the command, even without $USER (cron)
env -u USER "$LTVPIPE" models promote 2 --reason "better campaign WAPE on March" >/dev/null 2>&1
echo "promote 2 --reason exit $?"
sqlite3 models/registry.sqlite "select reason from alias_history order by id desc limit 1"
[ "$(sqlite3 models/registry.sqlite 'select who from alias_history order by id desc limit 1')" = "$(id -un)" ] &&
	echo "who is the OS user"
"$LTVPIPE" models promote 1 --why x >/dev/null 2>err
echo "promote 1 --why exit $?: $(cat err)"
exit 0

# score's usage and model errors: exit 2 for a usage error, 1 for a model
# version that does not exist, each message naming what is wrong, and no
# output file written by a failed score.
set -u
"$LTVPIPE" score --output none.csv >out 2>err
echo "score before any training exit $?"
grep -qF "no registry at 'models/registry.sqlite'" err && echo "names the missing registry"

S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"

"$LTVPIPE" score >out 2>err
echo "score without --output exit $?"
grep -qF "ltvpipe score: error: --output F is required" err && echo "says --output F is required"

"$LTVPIPE" score --model 99 --output v99.csv >out 2>err
echo "score --model 99 exit $?"
grep -qF "no model version 99 in registry 'models/registry.sqlite'" err && echo "names version 99"
grep -qF "ltvpipe models list" err && echo "points at ltvpipe models list"

"$LTVPIPE" score --model candidate --output cand.csv >out 2>err
echo "score --model candidate (none yet) exit $?"
grep -qF "no model is 'candidate' yet" err && echo "says there is no candidate"

"$LTVPIPE" score --model champion --output champ.csv >out 2>err
echo "score --model champion exit $?"
grep -qF -- "--model 'champion': give a version number, production or candidate" err && echo "names the bad --model"

# --users alone scores users without events (tests/cli/score_user_file.sh); --events alone is refused
"$LTVPIPE" score --events data/events.csv --output e.csv >out 2>err
echo "score --events without --users exit $?"
grep -qF -- "--events F needs --users F" err && echo "says --events needs --users"

"$LTVPIPE" score --as-of yesterday --output y.csv >out 2>err
echo "score --as-of yesterday exit $?"
grep -qF "'yesterday' is not an ISO 8601" err && echo "names the bad --as-of"

"$LTVPIPE" score --output out.csv extra >out 2>err
echo "score with an extra argument exit $?"

"$LTVPIPE" score --output no/such/dir/s.csv >out 2>err
echo "score into a missing directory exit $?"
grep -qF "cannot write 'no/such/dir/s.csv" err && echo "names the file it cannot write"

ls *.csv* 2>/dev/null | sed 's/^/left behind: /'
exit 0

# Scoring never reads events after as_of. input.events is a glob from the
# start, so new event files can be dropped beside the first. Score with
# --as-of T; add a file of events after T (a second after T and days later,
# large revenue) for every user scored, ingest it, score at T again: the
# users CSV, campaigns CSV and report are byte-identical. Then add a file of
# events before T (day 0 of five users scored, 50.00 each): now the scores
# differ and those users are worth at least what they spent.
set -u
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
mv data/events.csv data/events_2025.csv
cat >ltv.yaml <<'YAML'
input:
  users: data/users.csv
  events: data/events*.csv
tiers:
  tier1_min_users: 100
  tier1_min_payers: 3
select:
  min_validation_users: 20
calibrate:
  min_users: 50
YAML
C="--config ltv.yaml"
T=2025-08-20T12:00:00Z
"$LTVPIPE" run $C >run.out 2>run.err
echo "run exit $?"
mkdir -p out
# The model was trained on all the data: scoring before its as_of is look-ahead,
# refused unless asked for (as this test does, to check what scoring reads).
"$LTVPIPE" score $C --as-of $T --output out/refused.csv >/dev/null 2>score.err
echo "score at T without --allow-lookahead: exit $?, $(ls out | wc -l) files written"
sed 's/trained at [0-9TZ:-]*/trained at TRAINED_AS_OF/g; s/score at [0-9TZ:-]* or later/score at TRAINED_AS_OF or later/' score.err
"$LTVPIPE" score $C --allow-lookahead --as-of $T --output out/before.csv >score.out 2>score.err
echo "score at T exit $?"
grep -qF "at as_of $T" score.out && echo "scored at as_of T"
grep -qF "as_of $T" out/before.csv.report.txt && echo "report says as_of T"
n=$(($(wc -l <out/before.csv) - 1))
[ "$n" -ge 100 ] && echo "at least 100 users scored at T" || echo "only $n users scored at T"
# every user scored installed by T and is younger than 90 days (the longest horizon) at T
awk -F, -v t=2025-08-20 'NR > 1 && ($4 > t || $5 >= 90) { bad++ } END { print "users installed after T or 90+ days old: " bad + 0 }' out/before.csv
# the report counts the users younger than the first snapshot age (1 day) at T
young=$(awk -F, 'NR > 1 && $5 < 1 { n++ } END { print n + 0 }' out/before.csv)
[ "$young" -gt 0 ] && echo "some users scored at T are under 1 day old"
grep -q "^  of which $young (.*%) are under 1 days old, the youngest age the models were trained at" out/before.csv.report.txt && echo "report counts them"

# events after T for every user scored, in a new file matched by the glob
{
	echo "user_id,event_time,revenue,event"
	awk -F, 'NR > 1 { print $1 ",2025-08-20T12:00:01Z,25.00,purchase"; print $1 ",2025-08-25T10:00:00Z,99.00,purchase" }' out/before.csv
} >data/events_late.csv
"$LTVPIPE" run $C --only ingest >ingest.out 2>ingest.err
echo "ingest of the late events exit $?"
loaded=$(sqlite3 models/registry.sqlite "select json_extract(metrics, '\$.events_loaded') from artefacts where name = 'ingest' and version = 2")
[ "$loaded" = $((2 * n)) ] && echo "ingest v2 loaded the 2 late events of each user scored" || echo "ingest v2 loaded $loaded events"
"$LTVPIPE" score $C --allow-lookahead --as-of $T --output out/late.csv >/dev/null 2>&1
echo "score at T after the late events exit $?"
for f in "" .campaigns.csv .report.txt; do
	cmp -s out/before.csv$f out/late.csv$f && echo "identical: scores.csv$f" || echo "DIFFERENT: scores.csv$f"
done
# the late events are really there: scored at a later as_of, every user
# scored both times (younger than 90 days then) is worth at least the 25.00
# spent a second after T by the longest horizon (ltv_30 of a user already past
# day 30 at T is observed and rightly leaves it out)
"$LTVPIPE" score $C --allow-lookahead --as-of 2025-08-26T00:00:00Z --output out/later.csv >/dev/null 2>&1
echo "score at T + 5.5 days exit $?"
awk -F, 'NR == FNR { if (FNR > 1) at_t[$1] = 1; next }
	FNR > 1 && ($1 in at_t) { both++; if ($11 >= 25) seen++ }
	END { print (both > 0 && seen == both ? "at a later as_of the late revenue counts for every user" : "late revenue missing: " seen + 0 " of " both + 0) }' \
	out/before.csv out/later.csv

# events before T: day 0 of five users at least 3 days old at T
awk -F, 'NR > 1 && $5 >= 3 { print $1 }' out/before.csv | head -5 >early.ids
{
	echo "user_id,event_time,revenue,event"
	awk -F, 'NR == FNR { want[$1] = 1; next } ($1 in want) { print $1 "," $4 ",50.00,purchase" }' early.ids data/users.csv
} >data/events_early.csv
echo "early events: $(($(wc -l <data/events_early.csv) - 1))"
"$LTVPIPE" run $C --only ingest >/dev/null 2>&1
echo "ingest of the early events exit $?"
"$LTVPIPE" score $C --allow-lookahead --as-of $T --output out/early.csv >/dev/null 2>&1
echo "score at T after the early events exit $?"
cmp -s out/before.csv out/early.csv && echo "users CSV unchanged by events before T" || echo "users CSV changed by events before T"
changed=$(awk -F, 'NR == FNR { if (FNR > 1) old[$1] = $0; next } FNR > 1 && old[$1] != $0 { c++ } END { print c + 0 }' out/before.csv out/early.csv)
[ "$changed" -ge 5 ] && echo "at least the 5 users changed"
awk -F, 'NR == FNR { want[$1] = 1; next } ($1 in want) && $9 >= 50 && $10 >= 50 && $11 >= 50 { c++ } END { print "users with ltv_7, ltv_30, ltv_90 >= 50.00: " c + 0 }' early.ids out/early.csv
exit 0

# calibrate.floor_share (pipeline/calibrate.c fit_floor_shares): the share of
# the floor between horizons is fitted on validation users younger than the
# shorter horizon, from what the model says before as_of. Leakage: a purchase
# after as_of for every user changes no share (nor any other artefact's
# prediction); the same purchase two days before as_of changes them. 0: no
# share is fitted and none is stored, so the version serves the plain floor
# (the larger of the two horizons' values); 1 is the default.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set run.jobs=1 --set features.horizons=7,30 --set hurdle.n_rounds=20 --set multiplier.n_rounds=20"
T=2025-06-01
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
m() { sqlite3 "$1" "select json_extract(metrics, '\$.floor_shares.h30') from artefacts where name = 'calibrate' order by version desc limit 1"; }
blob() { sqlite3 "$1" "select count(*) from artefact_blobs where key = 'floor_shares'"; }
# one purchase of 80.00 at the given time per user installed a day before it
extra() { awk -F, -v t="$1" -v d="$2" 'NR > 1 && $4 < d { print $1 "," t ",80.00,purchase" }' data/users.csv; }
run() { # registry, events file, extra --set
	"$LTVPIPE" run $S --set registry.path="$1" --set input.events="$2" --as-of "$T" $3 >"$1.out" 2>"$1.err"
	echo "run exit $?"
}
run off.sqlite data/events.csv "--set calibrate.floor_share=0"
echo "off: shares [$(m off.sqlite)], $(blob off.sqlite) stored"
run on.sqlite data/events.csv "--set calibrate.floor_share=1"
on=$(m on.sqlite)
awk -v s="$on" 'BEGIN { print (s ~ /"share":/ && s ~ /"rows":[1-9]/) ? "on: shares fitted" : "on: no shares: " s }'
echo "on: $(blob on.sqlite) stored"
{ cat data/events.csv; extra 2025-06-01T01:00:00Z 2025-05-31; } >after.csv
run after.sqlite after.csv "--set calibrate.floor_share=1"
[ "$(m after.sqlite)" = "$on" ] && echo "a purchase after as_of: same shares"
{ cat data/events.csv; extra 2025-05-30T12:00:00Z 2025-05-29; } >before.csv
run before.sqlite before.csv "--set calibrate.floor_share=1"
[ "$(m before.sqlite)" != "$on" ] && echo "a purchase before as_of: other shares"
# 2: fitted to the validation users' actuals at the longer horizon (labels that
# end before as_of): a purchase after as_of changes nothing either
run on2.sqlite data/events.csv "--set calibrate.floor_share=2"
run after2.sqlite after.csv "--set calibrate.floor_share=2"
[ -n "$(m on2.sqlite)" ] && [ "$(m after2.sqlite)" = "$(m on2.sqlite)" ] && echo "2: a purchase after as_of: same shares"
# score applies the version's shares: against the version without them, ltv_7
# and every user who has lived 7 days are the same, users younger than 7 days
# are served at 30 days at most what the plain floor serves and some less, and
# never below their own ltv_7
for v in off on; do
	"$LTVPIPE" score $S --set registry.path=$v.sqlite --as-of "$T" --output $v.csv >score-$v.out 2>score-$v.err
	echo "score $v exit $?"
done
paste -d, off.csv on.csv | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if (!c[$i]) c[$i] = i; else c2[$i] = i; next }
	{ a7 = $c["ltv_7"]; b7 = $c2["ltv_7"]; a = $c["ltv_30"]; b = $c2["ltv_30"]; young = $c["age_days"] < 7
	  if (a7 != b7 || b + 0 < b7 + 0 || (!young && a != b) || b + 0 > a + 0) bad++
	  less += young && b + 0 < a + 0; n++ }
	END { print (n > 100 && !bad && less > 0) ? "score: the shares served, monotone" : "score: " bad + 0 " bad rows, " less + 0 " lower, of " n }'

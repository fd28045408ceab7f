# A campaign never seen in training is valued by its users' own behaviour
# through the best method of tier 3 (the tier an unknown campaign is in), and
# an empty campaign name gets the global fallback (global_median) without
# failing: through `predict` and through `score --users F --events F`.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"
app=$(sed -n 2p data/users.csv | cut -d, -f2)
known=$(sed -n 2p data/users.csv | cut -d, -f3)
grep -q ",some_new_name_2026," data/users.csv && echo "the new name is in the training data"
json_field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2- | tr -d '"'; }

"$LTVPIPE" predict --app "$app" --campaign some_new_name_2026 >new.json 2>new.err
echo "predict new campaign exit $?"
tier3=$(sqlite3 models/registry.sqlite "select method from method_selection where app_id = '*' and tier = 3 and artefact_id = (select max(id) from artefacts where name = 'select')")
[ "$(json_field method <new.json)" = "$tier3" ] && echo "  method: tier 3's default"
echo "  tier $(json_field tier <new.json), fallback $(json_field fallback <new.json), model_version $(json_field model_version <new.json)"
[ "$(json_field campaign <new.json)" = some_new_name_2026 ] && echo "  campaign echoed"
l7=$(grep -o '"ltv":{[^}]*}' new.json | json_field 7)
l30=$(grep -o '"ltv":{[^}]*}' new.json | json_field 30)
l90=$(grep -o '"ltv":{[^}]*}' new.json | json_field 90)
awk -v a="$l7" -v b="$l30" -v c="$l90" 'BEGIN { print "  ltv monotone, >= 0 and > 0 at 90 days: " (a != "" && a + 0 >= 0 && a + 0 <= b + 0 && b + 0 <= c + 0 && c + 0 > 0 ? "yes" : "no " a " " b " " c) }'

"$LTVPIPE" predict --app "$app" --campaign "" >empty.json 2>empty.err
echo "predict empty campaign exit $?"
echo "  method $(json_field method <empty.json), tier $(json_field tier <empty.json)"
"$LTVPIPE" predict --app "$app" >none.json 2>none.err
echo "predict without --campaign exit $?"
echo "  method $(json_field method <none.json)"
"$LTVPIPE" predict --app "$app" --campaign "$known" >known.json 2>known.err
echo "predict a known campaign exit $?"
m=$(json_field method <known.json)
chosen=$(sqlite3 models/registry.sqlite "select method from method_selection where app_id = '$app' and campaign = '$known'")
[ -n "$chosen" ] && [ "$m" = "$chosen" ] && echo "  method is the campaign's selection" || echo "  method $m, selection '$chosen'"

# score files: a new name, a name sharing words with known ones, an empty
# name and a known campaign, all installed on 2025-09-01
mkdir -p f out
cat >f/users.csv <<CSV
user_id,app_id,campaign,install_time,cost,country,platform
new1,$app,some_new_name_2026,2025-09-01T10:00:00Z,1.50,us,ios
new2,$app,fb_us_ios_summer_2026_new,2025-09-01T11:00:00Z,2.00,us,ios
empty1,$app,,2025-09-01T12:00:00Z,1.00,us,ios
known1,$app,$known,2025-09-01T12:00:00Z,1.00,us,ios
CSV
cat >f/events.csv <<CSV
user_id,event_time,revenue,event
new1,2025-09-01T10:00:00Z,0,session
new2,2025-09-01T11:00:00Z,0,session
empty1,2025-09-01T12:00:00Z,0,session
empty1,2025-09-02T12:30:00Z,1.99,purchase
known1,2025-09-01T12:00:00Z,0,session
known1,2025-09-03T13:00:00Z,0,session
CSV
"$LTVPIPE" score --users f/users.csv --events f/events.csv --output out/f.csv >score.out 2>score.err
echo "score files exit $?"
echo "rows: $(($(wc -l <out/f.csv) - 1))"
# the output is the users file's own columns, then the predictions: read them by name
awk -F, -v t3="$tier3" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } $1 == "new1" || $1 == "new2" || $1 == "empty1" { print "  " $1 ": tier " $c["tier"] ", method " ($c["method"] == t3 ? "tier 3 default" : $c["method"]) }' out/f.csv
awk -F, -v t3="$tier3" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } $1 == "new1" || $1 == "new2" { if ($c["method"] == t3) ok++ } END { print "new campaigns valued by tier 3 default: " ok + 0 " of 2" }' out/f.csv
awk -F, -v chosen="$chosen" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } $1 == "known1" { print "known campaign: " ($c["method"] == chosen ? "its selection" : $c["method"] " instead of " chosen) }' out/f.csv
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } $1 == "empty1" { print "empty campaign: campaign field \"" $3 "\", ltv_30 " ($c["ltv_30"] >= 1.99 ? ">= its 1.99 spent" : $c["ltv_30"]) }' out/f.csv
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } $c["ltv_7"] != "" && !($c["ltv_7"] >= 0 && $c["ltv_7"] <= $c["ltv_30"] && $c["ltv_30"] <= $c["ltv_90"]) { bad++ } END { print "ltv monotone in every row: " (bad ? "no" : "yes") }' out/f.csv
exit 0

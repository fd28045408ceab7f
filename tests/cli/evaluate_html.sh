# The evaluate page for a manager (issue 14): it opens with one sentence
# (#headline) giving, at the target horizon, how far predicted campaign
# revenue was off (campaign WAPE), the bias and whether ltvpipe beat each
# baseline; every number in it is checked here against evaluation.json. Its
# tables name the campaigns behind the campaign metrics, and a campaign
# metric resting on fewer than 5 campaigns is flagged (starred cells and a
# note) exactly where evaluation.json says so. Read in headless Chromium
# (tests/browser/report_test.py; screenshot tests/browser/out/evaluate.png).
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set hurdle.n_rounds=30 --set multiplier.n_rounds=30"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S --as-of 2025-05-01 >run.out 2>run.err || exit 1
"$LTVPIPE" evaluate --model production --output ev >ev.out 2>ev.err
echo "evaluate exit $?"
shots="$LTV_ROOT/tests/browser/out"
mkdir -p "$shots"
python3 "$LTV_ROOT/tests/browser/report_test.py" ev/evaluation.html --screenshot "$shots/evaluate.png" >page.json 2>page.err
echo "browser exit $?"
python3 - <<'PY'
import csv, json, re
page = json.load(open("page.json"))
ev = json.load(open("ev/evaluation.json"))
target = 30
h = next(x for x in ev["horizons"] if x["horizon"] == target)
mix = next(p for p in h["predictors"] if p["name"] == "mix")
bases = [p for p in h["predictors"] if p["kind"] == "baseline"]
headline = page["headline"]
print("headline:", re.sub(r"[0-9]+", "N", headline))
m = re.match(r"At D(\d+), predicted campaign revenue was off by (\d+)% \(campaign WAPE over (\d+) campaigns?\), bias ([+-]\d+)%; (.*)\.$", headline)
print("  parsed:", bool(m))
if m:
    print("  horizon, WAPE, campaigns, bias as evaluation.json:",
          int(m.group(1)) == target and int(m.group(2)) == round(100 * mix["campaign_wape"]) and
          int(m.group(3)) == mix["campaigns"] and int(m.group(4)) == round(100 * mix["campaign_bias"]))
    known = [b for b in bases if b["campaign_wape"] is not None]
    beaten = [b for b in known if mix["campaign_wape"] < b["campaign_wape"]]
    verdict = m.group(5)
    if len(beaten) == len(bases):
        want = "beats every baseline"
    elif len(beaten) == len(known):
        want = "beats every baseline that could be computed (%d of %d)" % (len(beaten), len(bases))
    else:
        want = "does not beat"
    print("  verdict as evaluation.json:", verdict.startswith(want))
    print("  says too few campaigns exactly when under 5:", ("too few to trust" in verdict) == (mix["campaigns"] < 5))
users = {}
for r in csv.DictReader(open("data/users.csv")):
    users.setdefault((r["app_id"], r["campaign"]), 0)
rows = page["campaign_rows"]
print("campaign table rows:", len(rows) > 0, "| every row names a campaign of the data:",
      all((r[0], r[1]) in users for r in rows), "| each with at least 50 users:", all(int(r[2]) >= 50 for r in rows))
thin_rows = sum(1 for x in ev["horizons"] for part in ("",) for p in x["predictors"] if 0 < p["campaigns"] < 5)
print("rows with 1 to 4 campaigns in evaluation.json: %s; page notes: %s" % (thin_rows > 0, len(page["few_campaign_notes"]) > 0))
print("  note text:", re.sub(r"[0-9]+", "N", page["few_campaign_notes"][0]) if page["few_campaign_notes"] else "none")
print("network requests:", len(page["requests"]))
PY
exit 0

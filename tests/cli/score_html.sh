# The score report as a page (issue 14): `score --output F` also writes
# F.report.html, self-contained (no script, no external resource), opened
# here in headless Chromium (tests/browser/report_test.py; screenshot in
# tests/browser/out/score-report.png). What it draws is checked against
# F.campaigns.csv: each campaign chart's ROAS per horizon and payback day,
# a curve from day 0 through every horizon, the 80% band where the CSV has
# an interval, the cost line, a payback marker exactly when the campaign pays
# back; the top charts are ranked by target ROAS and the bottom ones repeat
# none of them; the segment bars add up to the users scored.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set hurdle.n_rounds=30 --set multiplier.n_rounds=30"
"$LTVPIPE" generate --users 2000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err || exit 1
"$LTVPIPE" score --output s.csv >score.out 2>score.err
echo "score exit $?"
grep -o "report: .*" score.out
[ -s s.csv.report.html ] && echo "s.csv.report.html written"
echo "script tags: $(grep -c '<script' s.csv.report.html), URLs: $(grep -c 'https\?://' s.csv.report.html)"
shots="$LTV_ROOT/tests/browser/out"
mkdir -p "$shots"
python3 "$LTV_ROOT/tests/browser/report_test.py" s.csv.report.html --screenshot "$shots/score-report.png" >page.json 2>page.err
echo "browser exit $?"
[ "$(head -c 8 "$shots/score-report.png" | od -An -c | tr -d ' ')" = '211PNG\r\n032\n' ] && echo "screenshot saved (PNG)"
users=$(sed -n 's/^scored \([0-9]*\) users.*/\1/p' score.out)
python3 - "$users" <<'EOF'
import csv, json, sys
page = json.load(open("page.json"))
users = int(sys.argv[1])
rows = {(r["app_id"], r["campaign"]): r for r in csv.DictReader(open("s.csv.campaigns.csv"))}
horizons = sorted(int(k[len("roas_"):]) for k in next(iter(rows.values())) if k.startswith("roas_") and k.count("_") == 1)
print("title:", page["title"])
print("network requests:", len(page["requests"]))
charts = page["charts"]
top = [c for c in charts if c["section"] == "top"]
bottom = [c for c in charts if c["section"] == "bottom"]
print("charts: %d top, %d bottom" % (len(top), len(bottom)))
bad = []
for c in charts:
    r = rows[(c["app"], c["campaign"])]
    for h in horizons:
        if c["roas-%d" % h] != r["roas_%d" % h]:
            bad.append("%s roas_%d %s vs %s" % (c["campaign"], h, c["roas-%d" % h], r["roas_%d" % h]))
    pays = r["payback_day"] if r["payback_day"].isdigit() else ""
    if c["paybackDay"] != pays or c["payback_marker"] != (pays != ""):
        bad.append("%s payback %r vs %r" % (c["campaign"], c["paybackDay"], r["payback_day"]))
    if c["curve_points"] != len(horizons) + 1 or not c["cost_line"]:
        bad.append("%s curve or cost line" % c["campaign"])
    if c["band"] != (r["roas_%d_p10" % horizons[-1]] != ""):
        bad.append("%s band" % c["campaign"])
print("charts as F.campaigns.csv (ROAS per horizon, payback day and marker, curve, band, cost):",
      "yes" if not bad else bad[:5])
target = 30
roas = [float(c["roas-%d" % target]) for c in top]
print("top ranked by D%d ROAS:" % target, roas == sorted(roas, reverse=True))
print("bottom repeats no top campaign:", not ({c["campaign"] for c in top} & {c["campaign"] for c in bottom}))
print("bottom below top:", not bottom or max(float(c["roas-%d" % target]) for c in bottom) <= min(roas))
print("tables name the charted campaigns:",
      [r[1] for r in page["top_table"]] == [c["campaign"] for c in top] and
      [r[1] for r in page["bottom_table"]] == [c["campaign"] for c in bottom])
print("segments:", [s[0] for s in page["segments"]], "adding up to the users scored:",
      sum(s[1] for s in page["segments"]) == users)
print("totals rows, one per horizon:", len(page["totals"]) == len(horizons))
EOF
exit 0

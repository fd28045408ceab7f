# score --users F: the predictions are added to the user's own file. Without
# --events the users are valued from their campaign and cost; the output has
# F's rows in F's order with F's columns under F's names (CustomerID, Country,
# Notes), then the prediction columns (a name F already uses gets "ltvpipe_"),
# model_version, as_of, scored_at and a reason for every row not scored. The
# same rules hold for a ';'-separated, gzip-compressed F.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
# shellcheck disable=SC2086
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"

cat >mine.csv <<'CSV'
CustomerID,app_id,campaign,install_time,cost,Country,Notes
c1,kingdom_tactics,applovin_gb_android_broad,2025-03-01T10:00:00Z,0.92,gb,"likes, commas"
c2,kingdom_tactics,a_campaign_never_seen,2025-03-02T10:00:00Z,,fr,
c3,puzzle_blast,fb_us_ios_broad_v2,2025-03-02T11:00:00Z,1,de,
c1,kingdom_tactics,applovin_gb_android_broad,2025-03-01T10:00:00Z,0.92,gb,second c1
c4,kingdom_tactics,x,not-a-time,1,de,bad time
c5,puzzle_blast,fb_us_ios_broad_v2,2024-01-01T00:00:00Z,2,us,installed long before
c6,puzzle_blast
CSV
"$LTVPIPE" score --users mine.csv --set columns.user_id=CustomerID --output out.csv >score.out 2>score.err
echo "score --users without --events: exit $?"
sed 's/ in [0-9.]* s$/ in N s/' score.out
head -1 out.csv
# the volatile scored_at masked; the numbers are the model's, so only their presence is shown
mask() {
	python3 -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head = rows[0]
for r in rows[1:]:
    for i, name in enumerate(head):
        if i >= 7 and name not in ("model_version", "as_of", "reason", "risk_segment") and r[i]:
            r[i] = "SCORED_AT" if name == "scored_at" else "#"
    print(",".join(r))' "$1"
}
mask out.csv
echo "rows in: $(($(wc -l <mine.csv) - 1)), rows out: $(($(wc -l <out.csv) - 1))"
scored_at=$(awk -F, 'NR == 3 { print $(NF - 1) }' out.csv)
[[ $scored_at =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] && echo "scored_at is an ISO 8601 UTC time"
echo "campaigns file header ends: $(head -1 out.csv.campaigns.csv | awk -F, '{ print $(NF-2) "," $(NF-1) "," $NF }')"
echo "users in the registry named c*: $(sqlite3 models/registry.sqlite "select count(*) from users where user_id like 'c_'")"

# the same file ';'-separated and compressed: the same rows and predictions
sed 's/"likes, commas"/likes and commas/; s/,/;/g' mine.csv | gzip -c >mine_semi.csv.gz
"$LTVPIPE" score --users mine_semi.csv.gz --set columns.user_id=CustomerID --set 'input.delimiter=;' \
	--output semi.csv >/dev/null 2>&1
echo "score ';' gzip file: exit $?"
mask out.csv | cut -d, -f1 >a.txt
mask semi.csv | cut -d, -f1 >b.txt
cmp -s a.txt b.txt && echo "same rows, in the same order" || diff a.txt b.txt
python3 -c '
import csv, sys
a = list(csv.reader(open("out.csv"))); b = list(csv.reader(open("semi.csv")))
same = all(x[7:-2] == y[7:-2] for x, y in zip(a, b)) and len(a) == len(b)
print("same predictions:", same)'

# each score is recorded in the registry: version, as_of, users, input, output, content hash
sqlite3 models/registry.sqlite "select id, model_version, datetime(as_of, 'unixepoch'), users, input, output,
	length(content_hash), scored_at from scores order by id"
[ "$(sqlite3 models/registry.sqlite 'select count(distinct content_hash) from scores')" = 2 ] &&
	echo "the two outputs have different content hashes"
# --events alone is a usage error
"$LTVPIPE" score --events data/events.csv --output x.csv >/dev/null 2>err
echo "--events without --users: exit $?: $(cat err)"

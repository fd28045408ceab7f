# `score --users F --events F` reads the files into a scratch registry that
# is removed afterwards, never into the training data: the registry's users,
# user_days, ingested files, artefacts and runs are unchanged, and no ingest
# artefact is added. Scoring the very files the model was trained on gives
# the same three files as scoring the registry's data.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
reg=models/registry.sqlite
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"
snapshot() {
	sqlite3 $reg "select 'users ' || count(*) from users"
	python3 "$LTV_ROOT/contrib/user_days.py" $reg \
		"select 'user_days ' || count(*) || ' revenue ' || printf('%.2f', sum(revenue)) from user_days"
	sqlite3 $reg "select 'ingested_files ' || count(*) from ingested_files;
		select 'artefacts ' || count(*) || ' max id ' || max(id) from artefacts;
		select 'ingest artefacts ' || count(*) from artefacts where name = 'ingest';
		select 'runs ' || count(*) from runs;
		select 'model versions ' || count(*) from model_versions"
}
snapshot >before.txt
ls models >models_before.txt
echo "users in the registry: $(sqlite3 $reg 'select count(*) from users')"

# 300 new users, ids not in the training data, and their events
mkdir -p f out tmp
awk -F, 'NR == 1 { print; next } NR <= 301 { $1 = "x" $1; print }' OFS=, data/users.csv >f/users.csv
awk -F, -v OFS=, 'NR == FNR { if (FNR > 1) keep[substr($1, 2)] = 1; next }
	FNR == 1 { print; next } ($1 in keep) { $1 = "x" $1; print }' f/users.csv data/events.csv >f/events.csv
echo "file users: $(($(wc -l <f/users.csv) - 1)), file events: $(($(wc -l <f/events.csv) - 1))"
TMPDIR=$PWD/tmp "$LTVPIPE" score --users f/users.csv --events f/events.csv --allow-lookahead --as-of 2025-02-01T00:00:00Z \
	--output out/files.csv >score.out 2>score.err
echo "score files exit $?"
grep -q '^scored [1-9][0-9]* users' score.out && echo "scored some of the file's users"
awk -F, 'NR > 1 && substr($1, 1, 1) != "x" { bad++ } END { print "rows not from the file: " bad + 0 }' out/files.csv
snapshot >after.txt
diff before.txt after.txt >/dev/null && echo "registry unchanged: users, user_days, files, artefacts, runs, versions" || diff before.txt after.txt
echo "users in the registry: $(sqlite3 $reg 'select count(*) from users')"
ls models | cmp -s - models_before.txt && echo "no new file in models/"
echo "x users in the registry: $(sqlite3 $reg "select count(*) from users where user_id like 'x%'")"
echo "scratch files left in TMPDIR: $(find tmp -mindepth 1 | wc -l)"

# the training files themselves: same scores as from the registry
"$LTVPIPE" score --output out/reg.csv >/dev/null 2>&1
echo "score registry exit $?"
TMPDIR=$PWD/tmp "$LTVPIPE" score --users data/users.csv --events data/events.csv --output out/same.csv >/dev/null 2>&1
echo "score the training files exit $?"
# the users file comes back as the file's own rows, then the predictions: compare those by user
python3 -c '
import csv
reg = {r["user_id"]: r for r in csv.DictReader(open("out/reg.csv"))}
own = [r for r in csv.DictReader(open("out/same.csv")) if not r["reason"]]
cols = [c for c in next(csv.reader(open("out/reg.csv")))[3:] if c != "cost"]
same = len(own) == len(reg) and all(reg[r["user_id"]][c] == r[c] for r in own for c in cols)
print("identical: scores.csv predictions" if same else "DIFFERENT: scores.csv predictions")'
for f in .campaigns.csv .report.txt; do
	cmp -s out/reg.csv$f out/same.csv$f && echo "identical: scores.csv$f" || echo "DIFFERENT: scores.csv$f"
done
snapshot >after2.txt
diff before.txt after2.txt >/dev/null && echo "registry still unchanged" || diff before.txt after2.txt
echo "scratch files left in TMPDIR: $(find tmp -mindepth 1 | wc -l)"

# Score skips old users' events from the start, with the latest time read
# from the events file's last lines (ingest_parse_young_only). Here those
# lines are inside a quoted field of a real row (the first user's, at its
# install: too old to score, so the scores stay those of out/same.csv): the
# guess is later than any row, so the files are read again without it.
first=$(awk -F, 'NR == 2 { print $1 "," $4 }' data/users.csv)
{ cat data/events.csv; printf '%s,0,"note\n%s,2030-01-01T00:00:00Z,0,session\nend"\n' \
	"$first" "${first%%,*}"; } >f/events_quoted.csv
TMPDIR=$PWD/tmp "$LTVPIPE" score --users data/users.csv --events f/events_quoted.csv \
	--output out/quoted.csv >score_quoted.out 2>score_quoted.err
echo "score with a quoted tail exit $?"
grep -q 'reading the files again' score_quoted.err && echo "read again: the tail's time was not a row's"
for f in "" .campaigns.csv .report.txt; do
	cmp -s out/same.csv$f out/quoted.csv$f && echo "identical: quoted tail scores.csv$f" ||
		echo "DIFFERENT: quoted tail scores.csv$f"
done
exit 0

# Into a registry without an ingest artefact, ingest takes each input file's
# content hash from the bytes it reads instead of the runner reading every
# file first (pipeline/runner.c resolve_files, complete_fingerprint). The
# hashes, the fingerprint and the stat-keyed hash cache must be exactly what
# hashing the files first gives (hash_file_hex): for a gzip file and a glob
# of two files, a dry run that hashes them again finds the output up to date.
set -u
"$LTVPIPE" generate --users 300 --out data >/dev/null || exit 1
mkdir in
gzip -c data/users.csv >in/users.csv.gz
n=$(wc -l <data/events.csv)
head -n $((n / 2)) data/events.csv >in/events_1.csv
{ head -n 1 data/events.csv; tail -n +$((n / 2 + 1)) data/events.csv; } >in/events_2.csv
# older than the racy-mtime window, so the cache records them
touch -d '2020-01-01' in/*
run() {
	"$LTVPIPE" run --only ingest --set input.users=in/users.csv.gz \
		--set 'input.events=in/events_*.csv' "$@" 2>/dev/null | sed -n 's/ in [0-9.]* s$//; /^ingest:/p'
}
q() { sqlite3 models/registry.sqlite "$1"; }
run
echo "files: $(q "select count(*) from ingested_files")," \
	"cached as ingested: $(q "select count(*) from meta m join ingested_files f
		on m.key = 'input_file_hash:' || f.path and m.value like '% ' || f.content_hash")," \
	"in the config text: $(q "select count(*) from ingested_files f join artefacts a
		on a.name = 'ingest' and instr(a.config, f.content_hash) > 0")"
q "delete from meta where key like 'input_file_hash:%'"
run --dry-run
run
echo "--- a third file: only it is read"
{ head -n 1 data/events.csv; tail -n 3 data/events.csv; } >in/events_3.csv
run
echo "ingested files: $(q "select count(*) from ingested_files")"
exit 0

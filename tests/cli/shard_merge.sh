# Shards without Dask: `run --to features --shard i/N` into shard registries,
# `merge` into the main registry. The merged ingest and features equal an
# unsharded run's (same fingerprints, same features content hash, same users,
# user-days, file records and rejects) for N = 2 and N = 3; bad requests are
# refused with exit 2; a merge killed before its commit leaves the main
# registry as it was; merging the same shards again is a no-op.
set -u
L=$LTVPIPE
"$L" generate --users 3000 --out data >/dev/null || exit 1
u1=$(sed -n 2p data/users.csv | cut -d, -f1)
dup=$(sed -n 3p data/users.csv)
cat >>data/users.csv <<CSV
bad_time,app_x,camp_x,not-a-date,1,us,ios
$dup
short_row,app_x
CSV
cat >>data/events.csv <<CSV
$u1,2025-01-02T00:00:00Z,-5,purchase
nobody,2025-01-02T00:00:00Z,1,purchase
bad_time,2025-01-06T00:00:00Z,2,purchase
CSV

q() { sqlite3 "$@"; }
"$L" run --to features --set registry.path=full.sqlite >out 2>err || { echo "unsharded run failed"; cat err; }
full_rejects=$(q full.sqlite "select json_extract(metrics, '$.rejects_file') from artefacts where name = 'ingest'")

shards() { # N: ingest and features of every shard of N into sN-i.sqlite
	local n=$1 i t as_of latest=0
	for ((i = 0; i < n; i++)); do
		"$L" run --only ingest --shard $i/$n --set registry.path=s$n-$i.sqlite >out 2>err ||
			{ echo "shard $i/$n ingest failed"; cat err; }
		t=$(q s$n-$i.sqlite "select value from meta where key = 'max_event_time'")
		[ "$t" -gt "$latest" ] && latest=$t
	done
	as_of=$(date -u -d @"$latest" +%Y-%m-%dT%H:%M:%SZ)
	for ((i = 0; i < n; i++)); do
		"$L" run --only features --shard $i/$n --as-of "$as_of" --set registry.path=s$n-$i.sqlite \
			>out 2>err || { echo "shard $i/$n features failed"; cat err; }
	done
}
shards 2
shards 3
echo "shard users 3: $(for i in 0 1 2; do q s3-$i.sqlite 'select count(*) from users'; done | awk '{ s += $1 } END { print s }') of $(q full.sqlite 'select count(*) from users')"

refused() { # WHAT CMD...: prints the exit status and the part of stderr that says why ($LABEL)
	local what=$1
	shift
	"$@" >out 2>err
	echo "$what: exit $? — $(grep -o "$LABEL" err | head -1)"
}
LABEL='runs only ingest and features' refused 'shard of tiers' "$L" run --only tiers --shard 0/3 --set registry.path=s3-0.sqlite
LABEL='features needs --as-of' refused 'shard without --as-of' "$L" run --to features --shard 0/3 --set registry.path=x.sqlite
LABEL='must be i/N' refused 'shard 3/3' "$L" run --to features --shard 3/3 --set registry.path=x.sqlite
LABEL='give all 3' refused 'merge of 2 shards of 3' "$L" merge --set registry.path=main.sqlite s3-0.sqlite s3-1.sqlite
LABEL='are both shard 1/3' refused 'merge with a shard twice' "$L" merge --set registry.path=main.sqlite s3-0.sqlite s3-1.sqlite s3-1.sqlite
LABEL='but they are shards of 2' refused 'merge of shards of 2 and 3' "$L" merge --set registry.path=main.sqlite s2-0.sqlite s3-1.sqlite s3-2.sqlite
LABEL='is not a shard registry' refused 'merge of an unsharded registry' "$L" merge --set registry.path=main.sqlite full.sqlite s3-1.sqlite s3-2.sqlite
before=$(q full.sqlite 'select id, name, content_hash from artefacts' | md5sum)
LABEL='holds data ingested without shards' refused 'merge into unsharded data' "$L" merge --set registry.path=full.sqlite s2-0.sqlite s2-1.sqlite
[ "$(q full.sqlite 'select id, name, content_hash from artefacts' | md5sum)" = "$before" ] && echo "full.sqlite unchanged"
[ -e main.sqlite ] && q main.sqlite 'select count(*) from artefacts' | grep -qv '^0$' && echo "main.sqlite got artefacts"

same() { # WHAT SQL: the same rows in main.sqlite and full.sqlite
	[ "$(q main.sqlite "$2" | md5sum)" = "$(q full.sqlite "$2" | md5sum)" ] && echo "same $1" || echo "DIFFERENT $1"
}
compare() {
	same "artefacts (name, fingerprint, content hash, as_of, config)" \
		"select a.name, fingerprint, content_hash, as_of, config from artefacts a join current_artefacts c on c.artefact_id = a.id order by a.name"
	same users "select uid, user_id, app_id, campaign, install_time, cost, attributes from users order by uid"
	same user_days "select * from user_days order by uid, day"
	same "file records" "select content_hash, kind, path, rows, rejects from ingested_files order by rowid"
	same max_event_time "select value from meta where key = 'max_event_time'"
	merged_rejects=$(q main.sqlite "select json_extract(metrics, '$.rejects_file') from current_artefacts c join artefacts a on a.id = c.artefact_id where c.name = 'ingest'")
	cmp -s "$merged_rejects" "$full_rejects" && echo "same rejects ($(($(wc -l <"$merged_rejects") - 1)) rows)"
}
"$L" merge --set registry.path=main.sqlite s2-1.sqlite s2-0.sqlite >out 2>err
echo "merge N=2: exit $? — $(grep -c '^merge .* finished' out) finished"
compare
echo "shards in lineage: $(q main.sqlite "select json_extract(metrics, '$.shards[0].shard') || ',' || json_extract(metrics, '$.shards[1].shard') from artefacts where name = 'features'")"

before=$(q main.sqlite 'select * from artefacts; select * from current_artefacts; select count(*) from users' | md5sum)
LTVPIPE_FAULT=merge:kill "$L" merge --set registry.path=main.sqlite s3-0.sqlite s3-1.sqlite s3-2.sqlite >out 2>err
echo "killed merge N=3: exit $?"
[ "$(q main.sqlite 'select * from artefacts; select * from current_artefacts; select count(*) from users' | md5sum)" = "$before" ] && echo "main.sqlite unchanged"
echo "integrity $(q main.sqlite 'pragma integrity_check')"

"$L" merge --set registry.path=main.sqlite s3-0.sqlite s3-1.sqlite s3-2.sqlite >out 2>err
echo "merge N=3: exit $? — features v$(q main.sqlite "select a.version from current_artefacts c join artefacts a on a.id = c.artefact_id where c.name = 'features'")"
compare
"$L" merge --set registry.path=main.sqlite s3-0.sqlite s3-1.sqlite s3-2.sqlite >out 2>err
echo "merge again: exit $? — $(cat out)"
"$L" run --to features --set registry.path=main.sqlite >out 2>err
echo "run after merge: exit $? — $(paste -sd' ' out | grep -o 'ingest: up to date (v[0-9]*) features: up to date (v[0-9]*)')"
exit 0

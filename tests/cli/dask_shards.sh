# The Dask driver (contrib/dask/ltvpipe_dask.py) on a real cluster: a
# dask-scheduler and two dask-worker processes on 127.0.0.1, 4 shards of a
# generated sample. A worker killed with SIGKILL while it runs a features
# shard makes the driver fail before the merge (no main registry is made);
# the rerun retries only the shards that did not finish, merges and trains,
# and every current artefact (features included) has the content hash of an
# unsharded run. Sharded scores merged with merge-scores are byte-identical to
# an unsharded score. (ltvpipe_dask.py score runs the same score phase alone.) The cluster is stopped by the EXIT trap (tests/lib/dask.bash).
set -u
. "$LTV_ROOT/tests/lib/dask.bash"
L=$LTVPIPE
driver=(/usr/bin/python3 "$LTV_ROOT/contrib/dask/ltvpipe_dask.py")
# The cluster starts while the unsharded reference runs.
dask_start_scheduler
dask_start_worker w1
dask_start_worker w2
"$L" generate --users 2000 --out data >/dev/null || exit 1

# The unsharded reference.
"$L" run --set registry.path=full.sqlite >full.out 2>&1 || { echo "unsharded run failed"; tail full.out; }
"$L" score --set registry.path=full.sqlite --output full.csv >/dev/null 2>&1 || echo "unsharded score failed"

dask_wait_scheduler || exit 1
dask_wait_workers 2 || exit 1
echo "cluster: scheduler and 2 workers"

# Run 1: features shard 2 waits (test hook), its worker is killed.
touch hold
LTVPIPE_DASK_TEST_HOLD=$PWD/hold:features:2 "${driver[@]}" features --scheduler "$dask_address" \
	--shards 4 --ltvpipe "$L" --set registry.path=main.sqlite --train --output merged.csv >run1.out 2>&1 &
drv=$!
held() { [ -s hold.pid ]; }
LTV_WAIT_S=$DASK_WAIT_S wait_until held || echo "no features shard was held"
# Let the other three features shards finish on the other worker first.
three_done() { [ "$(jq '.done.features | length' shards/dask-state.json 2>/dev/null)" = 3 ]; }
LTV_WAIT_S=$DASK_WAIT_S wait_until three_done || echo "the other three features shards did not finish"
victim=$(cat hold.pid)
[ "$victim" = "$w1_pid" ] || [ "$victim" = "$w2_pid" ] && echo "shard 2/4 features held on a worker"
kill -9 "$victim"
wait $drv
echo "run 1: exit $?"
grep -q 'features: shard 2/4 FAILED: KilledWorker' run1.out && echo "run 1: shard 2/4 failed (KilledWorker)"
grep -q 'The main registry was not changed' run1.out && echo "run 1: says the main registry was not changed"
[ -e main.sqlite ] && echo "run 1: main.sqlite EXISTS" || echo "run 1: no main registry"
echo "run 1: features shards done: $(jq -c '.done.features | keys' shards/dask-state.json)"

# Run 2, the same command: only shard 2 runs again, then merge and training,
# then the scores: 4 shards on the cluster, merged.
"${driver[@]}" features --scheduler "$dask_address" --shards 4 --ltvpipe "$L" \
	--set registry.path=main.sqlite --train --output merged.csv >run2.out 2>&1
echo "run 2: exit $?"
grep -q 'ingest: shards \[0, 1, 2, 3\] done earlier, skipped; running \[\]' run2.out && echo "run 2: ingest not rerun"
grep -q 'features: shards \[0, 1, 3\] done earlier, skipped; running \[2\]' run2.out && echo "run 2: features of shard 2 only"
grep -q '^ingest: up to date' run2.out && grep -q '^features: up to date' run2.out && echo "run 2: training found ingest and features up to date"
[ -e shards/dask-state.json ] && echo "run 2: state file left" || echo "run 2: state file removed"

current="select a.name, a.content_hash from current_artefacts c join artefacts a on a.id = c.artefact_id order by a.name"
if [ "$(sqlite3 main.sqlite "$current")" = "$(sqlite3 full.sqlite "$current")" ]; then
	echo "same content hashes as unsharded: $(sqlite3 main.sqlite "$current" | cut -d'|' -f1 | paste -sd' ')"
else
	echo "DIFFERENT artefacts:"; diff <(sqlite3 full.sqlite "$current") <(sqlite3 main.sqlite "$current")
fi

grep -q 'score: shard 3/4 done' run2.out && grep -q '^merged 4 score shards' run2.out && echo "run 2: scored 4 shards and merged them"
for f in "" .campaigns.csv .report.txt; do
	cmp -s "full.csv$f" "merged.csv$f" && echo "merged.csv$f byte-identical to unsharded" || echo "merged.csv$f DIFFERS"
done
echo "scored users: $(($(wc -l <merged.csv) - 1)), in shards: $(cat shards/scores/scores-*-of-4.csv | grep -vc '^user_id,')"
exit 0

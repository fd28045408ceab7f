# Idempotence from the command line: a second run skips every stage quickly;
# changing one features parameter reruns features (and what reads it) but not
# ingest; changing it back reuses the earlier features version. Every
# parameter the features artefact carries (blob "params") is in its
# fingerprint: validation_days, snapshots and horizons each rerun features and
# every stage after it, and the new artefact's params blob holds the value.
set -u
# The params blob of features vN (serving/feature_params.c's layout).
params() {
	sqlite3 models/registry.sqlite "select hex(b.data) from artefact_blobs b join artefacts a
		on a.id = b.artefact_id where a.name = 'features' and a.version = $1 and b.key = 'params'" |
		python3 -c '
import struct, sys
b = bytes.fromhex(sys.stdin.read().strip())
assert b[:8] == b"LTVFPRM1", b[:8]
o = 12 + 8  # magic, format version, as_of
def u32():
    global o; o += 4; return struct.unpack_from("<I", b, o - 4)[0]
def u64():
    global o; o += 8; return struct.unpack_from("<Q", b, o - 8)[0]
snapshots = [u64() for _ in range(u32())]
horizons = [u64() for _ in range(u32())]
target = u64()
validation = u64()
print("snapshots=%s horizons=%s target_horizon=%d validation_days=%d" % (",".join(map(str, snapshots)),
      ",".join(map(str, horizons)), target, validation))'
}
# Whether every stage after ingest says $1 in out.
after_ingest() {
	local n m
	n=$(grep -E '^[a-z_]+: ' out | grep -cv '^ingest: ')
	m=$(grep -E '^[a-z_]+: ' out | grep -v '^ingest: ' | grep -c ": $1")
	[ "$n" -ge 10 ] && [ "$n" = "$m" ] && echo "every stage after ingest: $1" || echo "only $m of $n stages after ingest: $1"
}
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
"$LTVPIPE" run >out 2>err
echo "first run exit $?"
sed -n 's/^\(ingest: done (v[0-9]*)\).*/\1/p; s/^\(features: done (v[0-9]*)\).*/\1/p' out

# CPU time, not wall time: a loaded machine stretches the latter (a second
# run took 1.7 s there), while a run that redid a stage would still cost
# seconds of CPU
TIMEFORMAT='%3U %3S'
{ time "$LTVPIPE" run >out 2>err; } 2>cpu.txt
rc=$?
ms=$(awk '{ printf "%d", ($1 + $2) * 1000 }' cpu.txt)
echo "second run exit $rc"
grep -E '^(ingest|features): ' out
n_stages=$(grep -cE '^[a-z_]+: ' out)
n_fresh=$(grep -cE '^[a-z_]+: up to date \(v1\)$' out)
[ "$n_stages" -ge 2 ] && [ "$n_stages" = "$n_fresh" ] && echo "every stage up to date"
[ "$ms" -lt 1000 ] && echo "second run under 1 s of CPU" || echo "second run took $ms ms of CPU"

"$LTVPIPE" run --dry-run --set features.validation_days=21 >out 2>err
echo "dry run exit $?"
grep -E '^(ingest|features): ' out
"$LTVPIPE" run --set features.validation_days=21 >out 2>err
echo "validation_days=21 run exit $?"
grep -E '^ingest: ' out
sed -n 's/^\(features: done (v[0-9]*)\).*/\1/p' out
after_ingest done
echo "features v2 params: $(params 2)"
"$LTVPIPE" status --set features.validation_days=21 >out 2>err
grep -E '^(ingest|features) ' out | sed 's/ made .* by run [^ ]* / /' | tr -s ' '
"$LTVPIPE" status >out 2>err
grep -E '^(ingest|features) ' out | sed 's/ made .* by run [^ ]* / /' | tr -s ' '

"$LTVPIPE" run >out 2>err
echo "back to validation_days=28 exit $?"
grep -E '^(ingest|features): ' out
echo "features versions: $(sqlite3 models/registry.sqlite "select count(*) from artefacts where name = 'features'")"
echo "ingest versions: $(sqlite3 models/registry.sqlite "select count(*) from artefacts where name = 'ingest'")"
echo "features v1 params: $(params 1)"

# snapshots and horizons: the plan reruns everything after ingest; features alone shows the blob
for set in features.snapshots=1,7,30 features.horizons=7,30,60; do
	"$LTVPIPE" run --dry-run --set $set >out 2>err
	echo "$set dry run exit $?"
	after_ingest "would run"
	"$LTVPIPE" run --only features --set $set >out 2>err
	echo "$set features exit $?: $(sed -n 's/^\(features: done (v[0-9]*)\).*/\1/p' out)"
	v=$(sqlite3 models/registry.sqlite "select max(version) from artefacts where name = 'features'")
	echo "features v$v params: $(params $v)"
done
exit 0

# Idempotence from the command line: a second run skips every stage quickly;
# changing one features parameter reruns features (and what reads it) but not
# ingest; changing it back reuses the earlier features version.
set -u
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
"$LTVPIPE" run >out 2>err
echo "first run exit $?"
sed -n 's/^\(ingest: done (v[0-9]*)\).*/\1/p; s/^\(features: done (v[0-9]*)\).*/\1/p' out

start=$(date +%s%N)
"$LTVPIPE" run >out 2>err
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
echo "second run exit $rc"
grep -E '^(ingest|features): ' out
n_stages=$(grep -cE '^[a-z_]+: ' out)
n_fresh=$(grep -cE '^[a-z_]+: up to date \(v1\)$' out)
[ "$n_stages" -ge 2 ] && [ "$n_stages" = "$n_fresh" ] && echo "every stage up to date"
[ "$ms" -lt 1000 ] && echo "second run under 1 s" || echo "second run took $ms ms"

"$LTVPIPE" run --dry-run --set features.validation_days=21 >out 2>err
echo "dry run exit $?"
grep -E '^(ingest|features): ' out
"$LTVPIPE" run --set features.validation_days=21 >out 2>err
echo "validation_days=21 run exit $?"
grep -E '^ingest: ' out
sed -n 's/^\(features: done (v[0-9]*)\).*/\1/p' out
"$LTVPIPE" status --set features.validation_days=21 >out 2>err
grep -E '^(ingest|features) ' out | sed 's/ made .* by run [^ ]* / /' | tr -s ' '
"$LTVPIPE" status >out 2>err
grep -E '^(ingest|features) ' out | sed 's/ made .* by run [^ ]* / /' | tr -s ' '

"$LTVPIPE" run >out 2>err
echo "back to validation_days=28 exit $?"
grep -E '^(ingest|features): ' out
echo "features versions: $(sqlite3 models/registry.sqlite "select count(*) from artefacts where name = 'features'")"
echo "ingest versions: $(sqlite3 models/registry.sqlite "select count(*) from artefacts where name = 'ingest'")"
exit 0

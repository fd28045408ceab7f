# --set key=[a,b] means what `key: [a, b]` means in the config file; a list
# that does not close, brackets inside a list and unknown feature names are
# configuration errors (exit 2) naming the key, before anything runs.
set -u
"$LTVPIPE" generate --users 200 --out data >/dev/null || exit 1
for v in "features.horizons=[7, 30, 90]" "hurdle.features=[rev_window, cost]" "lookalike.features=[]" \
	"features.horizons=[7,30" "features.horizons=7,[30]" "hurdle.features=[rev_windw, cost]" \
	"multiplier.features=rev_to_date"; do
	"$LTVPIPE" run --dry-run --set "$v" >out 2>err
	echo "--set $v: exit $?"
	cat err
done
# the list form and the comma form give the same fingerprints
"$LTVPIPE" run --only ingest,features --set 'features.horizons=[7, 30, 90]' >/dev/null 2>&1
echo "run with [7, 30, 90] exit $?"
"$LTVPIPE" run --only ingest,features --dry-run --set features.horizons=7,30,90

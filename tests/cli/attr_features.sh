# Users-file attributes as model features (issue 9, item 2): with
# columns.attributes and hurdle.attribute_features=1 the GBT models read
# attr_<a>_ltv_te and attr_<a>_payer_te; predict takes them as --attr (a
# name the model does not know is refused naming the ones it does; an unseen
# value is served its app's encoding), serve as user fields; with
# hurdle.attribute_features=0 (the default) no model reads them; and an
# attribute feature listed by hand without its attribute is a config error.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
A="--set columns.attributes=country,platform"
"$LTVPIPE" generate --users 2000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S $A --set hurdle.attribute_features=1 --set multiplier.attribute_features=1 >run.out 2>run.err
echo "run with attribute features: exit $?"
msg() { sed -n 's/^ltvpipe [a-z]*: error: //p' err; }
app=$(sed -n '2p' data/users.csv | cut -d, -f2)
# The hurdle artefact's feature list, from its manifest (models show prints only the top 5).
features() { sqlite3 models/registry.sqlite "select count(*) from artefacts a join artefact_blobs b on b.artefact_id = a.id where a.name = '$1' and a.version = $2 and b.key = 'manifest' and instr(b.data, cast('attr_country_ltv_te' as blob)) > 0 and instr(b.data, cast('attr_platform_payer_te' as blob)) > 0"; }
echo "hurdle v1 reads the attribute encodings: $(features hurdle 1)"
echo "multiplier v1 reads the attribute encodings: $(features multiplier 1)"

U="--app $app --feature rev_window=5 --feature rev_d0=5 --feature purchase_days=1 --feature age_days=3 --explain"
"$LTVPIPE" predict $A $U --attr country=us --attr platform=ios >us 2>err
echo "predict --attr country=us --attr platform=ios: exit $?"
"$LTVPIPE" predict $A $U --attr country=zz >zz 2>err
echo "predict --attr country=zz (no training user): exit $?"
"$LTVPIPE" predict $A $U >none 2>err
echo "predict without --attr: exit $?"
# the tree models' margins (explain) with a known country against none given
margins() { python3 -c "
import json
print([round(c['margin'], 6) for c in json.load(open('$1'))['explain']['contributions']])"; }
[ "$(margins us)" != "$(margins none)" ] && echo "country=us moves the tree models' margins"
# unseen and missing values both get the app's encoding: the same answer
cmp -s zz none && echo "unseen country answers as no country"
"$LTVPIPE" predict $A --app "$app" --attr planet=mars >out 2>err
echo "predict --attr planet=mars: exit $?"
msg
"$LTVPIPE" predict $A --app "$app" --attr country >out 2>err
echo "predict --attr country: exit $?"
msg

"$LTVPIPE" run $S $A >run2.out 2>run2.err
echo "run with hurdle.attribute_features=0: exit $?"
echo "hurdle v2 reads the attribute encodings: $(features hurdle 2)"
"$LTVPIPE" run $S --set hurdle.features=rev_window,attr_country_ltv_te >out 2>err
echo "attr_country_ltv_te without columns.attributes: exit $?"
msg

# Sharded features (ingest and features per shard, then merge) join the
# attributes' dictionaries: the same features artefact as one run.
L="--quiet --set columns.attributes=country,platform"
as_of=$(sqlite3 models/registry.sqlite "select json_extract(metrics, '$.as_of') from artefacts where name = 'features' and version = 1")
for i in 0 1; do
	"$LTVPIPE" run $L --only ingest --shard $i/2 --set registry.path=s$i.sqlite >/dev/null 2>&1 &&
		"$LTVPIPE" run $L --only features --shard $i/2 --as-of "$as_of" --set registry.path=s$i.sqlite \
			>/dev/null 2>&1 || echo "shard $i failed"
done
"$LTVPIPE" merge $L --set registry.path=merged.sqlite s0.sqlite s1.sqlite >/dev/null 2>&1
echo "merge: exit $?"
"$LTVPIPE" run $L --to features --as-of "$as_of" --set registry.path=whole.sqlite >/dev/null 2>&1
hash() { sqlite3 "$1" "select content_hash from artefacts where name = 'features'"; }
[ "$(hash merged.sqlite)" = "$(hash whole.sqlite)" ] && echo "merged features = unsharded features"
exit 0

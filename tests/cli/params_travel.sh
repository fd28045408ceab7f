# A model version is served with its own parameters (include/ltv/feature_params.h):
# train with target 30 and horizons 7, 30, 90, then change the config to target
# 90, horizons 30, 90, 180, other snapshot ages and validation_days. score,
# predict and `models show` of version 1 still use 30 and 7, 30, 90, give the
# very same numbers, retrain nothing, and score says that the config differs.
# A registry written before the parameters were stored (no "params" blob)
# serves the same, from the features artefact's config text; a damaged blob
# is refused naming it.
set -u
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
write_config() {
	cat >ltv.yaml <<YAML
input:
  users: data/users.csv
  events: data/events.csv
tiers:
  tier1_min_users: 100
  tier1_min_payers: 3
select:
  min_validation_users: 20
calibrate:
  min_users: 50
$1
YAML
}
write_config ""
C="--config ltv.yaml"
"$LTVPIPE" run $C >run.out 2>run.err
echo "run exit $?"
mkdir -p out
"$LTVPIPE" score $C --output out/a.csv >score_a.out 2>&1
echo "score with the training config exit $?"
grep -c 'keeps the parameters' score_a.out | sed 's/^/lines saying the config differs: /'
artefacts() { sqlite3 models/registry.sqlite "select count(*) || ' artefacts, ' || (select count(*) from runs) || ' runs' from artefacts"; }
before=$(artefacts)

write_config "features:
  target_horizon: 90
  horizons: [30, 90, 180]
  snapshots: [1, 7, 30]
  validation_days: 14"
"$LTVPIPE" score $C --output out/b.csv >score_b.out 2>&1
echo "score with the changed config exit $?"
echo "header: $(head -1 out/b.csv)"
# every column but scored_at (the last) is the same
same() { cmp -s <(rev "$1" | cut -d, -f2- | rev) <(rev "$2" | cut -d, -f2- | rev); }
same out/a.csv out/b.csv && echo "users CSV: the same scores" || echo "users CSV: DIFFERENT"
same out/a.csv.campaigns.csv out/b.csv.campaigns.csv && echo "campaigns CSV: the same" || echo "campaigns CSV: DIFFERENT"
grep -o 'model version 1 keeps the parameters.*' score_b.out
[ "$(artefacts)" = "$before" ] && echo "nothing retrained ($before)" || echo "artefacts changed: $before -> $(artefacts)"
"$LTVPIPE" score $C --output out/j.csv --json 2>/dev/null | jq -c '{target_horizon, config_differs_from_model}'

app=$(awk -F, 'NR == 2 { print $2 }' out/a.csv)
camp=$(awk -F, 'NR == 2 { print $3 }' out/a.csv)
"$LTVPIPE" predict $C --app "$app" --campaign "$camp" 2>/dev/null |
	jq -c '{target_horizon_days, horizons: (.ltv | keys | map(tonumber) | sort)}'
"$LTVPIPE" models show 1 $C | sed -n '1,2p' | sed '1s/ [0-9.]*$/ WAPE/; s/as_of [0-9TZ:-]*/as_of AS_OF/'
"$LTVPIPE" models show 1 $C --json | jq -c '.parameters | del(.as_of)'

# a registry from before the params blob: the same, from the artefact's config text
sqlite3 models/registry.sqlite "delete from artefact_blobs where key = 'params'"
"$LTVPIPE" score $C --output out/legacy.csv >/dev/null 2>&1
echo "score without a params blob exit $?"
same out/a.csv out/legacy.csv && echo "users CSV without a params blob: the same scores" || echo "users CSV without a params blob: DIFFERENT"
"$LTVPIPE" models show 1 $C --json | jq -c '.parameters | del(.as_of)'

# a damaged blob (its checksum dropped, so the parser itself must refuse it)
sqlite3 models/registry.sqlite "insert into artefact_blobs (artefact_id, key, data, checksum)
	select id, 'params', x'4c5456465052', NULL from artefacts where name = 'features'"
"$LTVPIPE" score $C --output out/bad.csv >/dev/null 2>bad.err
echo "score with a damaged params blob exit $?"
sed 's/^/  /' bad.err
exit 0

# Configuration errors exit 2, name FILE:LINE:COL and the key, and touch nothing.
set -u
cat >unknown.yaml <<'YAML'
features:
  validation_days: 28
  validation_dayz: 21
YAML
"$LTVPIPE" run --config unknown.yaml >out 2>err
echo "unknown key exit $?"
grep -qF "unknown.yaml:3:20: unknown key 'features.validation_dayz'" err && echo "unknown key: file:line:col and key named"

cat >type.yaml <<'YAML'
# a comment line
features:
  horizons: [7, 30, 90]
  validation_days: two
YAML
"$LTVPIPE" run --config type.yaml >out 2>err
echo "wrong type exit $?"
grep -qF "type.yaml:4:20: features.validation_days: expected an integer, got 'two'" err && echo "wrong type: file:line:col and key named"

cat >range.yaml <<'YAML'
ingest:
  max_reject_rate: 7
YAML
"$LTVPIPE" run --config range.yaml >out 2>err
echo "out of range exit $?"
grep -qF "range.yaml:2:20: ingest.max_reject_rate: 7 is out of range" err && echo "out of range: file:line:col and key named"

cat >cross.yaml <<'YAML'
features:
  target_horizon: 60
YAML
"$LTVPIPE" run --config cross.yaml >out 2>err
echo "target not among horizons exit $?"
grep -qF "cross.yaml:2:19: features.target_horizon: 60 is not one of features.horizons" err && echo "cross-key error: file:line:col and key named"

cat >dup.yaml <<'YAML'
features:
  validation_days: 20
  validation_days: 30
YAML
"$LTVPIPE" run --config dup.yaml >out 2>err
echo "duplicate key exit $?"
grep -qF "dup.yaml:3:3: duplicate key 'features.validation_days' (first at line 2)" err && echo "duplicate key: file:line:col and key named"

cat >snapshots.yaml <<'YAML'
features:
  snapshots: [7, 14, 30]
YAML
"$LTVPIPE" run --config snapshots.yaml >out 2>err
echo "first snapshot at the first horizon exit $?"
grep -qF "snapshots.yaml:2:14: features.snapshots: the first age (7 days) must be shorter than the first horizon (7 days)" err && echo "snapshots error names the key"

printf 'features: [oops\n' >syntax.yaml
"$LTVPIPE" run --config syntax.yaml >out 2>err
echo "YAML syntax error exit $?"
grep -qE "syntax.yaml:[0-9]+:[0-9]+: YAML syntax error" err && echo "syntax error located"

"$LTVPIPE" run --config missing.yaml >out 2>err
echo "missing config exit $?"
grep -qF "missing.yaml" err && echo "missing config named"

"$LTVPIPE" run --set features.validation_days=0 >out 2>err
echo "bad --set exit $?"
grep -qF -- "--set features.validation_days: 0 is out of range" err && echo "bad --set names the key"
"$LTVPIPE" run --set features.horizons=7,,30 >out 2>err
echo "--set list with an empty item exit $?"
grep -qF -- "--set features.horizons: empty item 2 in '7,,30'" err && echo "empty item named"
"$LTVPIPE" status --set nosuch.key=1 >out 2>err
echo "unknown --set exit $?"
grep -qF "unknown key 'nosuch.key'" err && echo "unknown --set names the key"

# none of this read data or created a registry, log or rejects file
[ -e models ] && echo "a config error created models/"
[ -e logs ] && echo "a config error created logs/"
exit 0

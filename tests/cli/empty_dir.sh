# Run from a directory without a config, inputs or registry, every command
# fails with a message that says where to run it from, and leaves the
# directory as it was: no registry, no logs/. A dry run describes what would
# run. With a config whose inputs are missing, the message names the key.
# (serve is the exception: it may start before the first model and wait for it.)
set -u
for c in "run" "run --only ingest" "status" "score --output x.csv" "monitor" "models list" \
	"models show 1" "evaluate" "evaluate --model 1" "predict --app a"; do
	# shellcheck disable=SC2086
	"$LTVPIPE" $c >out 2>err
	echo "$c: exit $?"
	cat err
	left=$(find . -mindepth 1 -not -name out -not -name err -not -name stdout -not -name stderr)
	[ -z "$left" ] || echo "$c: left behind: $left"
done
"$LTVPIPE" run --dry-run >out 2>err
echo "run --dry-run: exit $?, $(wc -l <out) lines, $(head -1 out)"
find . -mindepth 1 -not -name out -not -name err -not -name stdout -not -name stderr

mkdir cfg
printf 'input:\n  users: exports/users_*.csv\n  events: exports/events_*.csv\n' >cfg/my.yaml
"$LTVPIPE" run --config cfg/my.yaml >out 2>err
echo "run --config cfg/my.yaml: exit $?"
cat err
find . -mindepth 1 -not -name out -not -name err -not -name stdout -not -name stderr -not -path './cfg*'

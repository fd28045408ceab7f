#!/usr/bin/env bash
# usage: bench/serve_callgrind.sh [USERS]
#
# Instructions the server spends, under callgrind, on fixed inputs: a model
# trained on USERS generated users (default 20000), then
#  1. 5 JSON batches of the same 1,000 users as bench/serve_bench.sh's;
#  2. 200 single predictions of bench/serve_bench.sh's user, one at a time.
# Only the request callbacks are counted (--toggle-collect), so model loading
# is left out. Prints instructions per user and per request, and a hash of
# the answers (the same before and after a change that keeps the bytes).
# A loaded machine changes wall time, not these counts.
set -uo pipefail
users=${1:-20000}
root=$(cd "$(dirname "$0")/.." && pwd)
ltvpipe="${LTVPIPE:-$root/ltvpipe}"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvserve-cg-XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$scratch"' EXIT
cd "$scratch" || exit 1
"$ltvpipe" generate --users "$users" --out data >/dev/null || exit 1
"$ltvpipe" run >run.out 2>run.err || { tail -5 run.err; exit 1; }
awk -F, -v n=1000 'NR > 1 && NR <= n + 1 { printf "%s{\"app\":\"%s\",\"campaign\":\"%s\",\"age_days\":%d,\"rev_window\":%.2f,\"events_window\":%d}", (NR > 2 ? "," : "["), $2, $3, NR % 30 + 1, (NR % 7) * 0.99, NR % 40 } END { print "]" }' data/users.csv >batch.json
printf '{"app":"%s","campaign":"%s","rev_window":2.5,"age_days":4,"events_window":9,"cost":1.2}' \
	"$(sed -n 2p data/users.csv | cut -d, -f2)" "$(sed -n 2p data/users.csv | cut -d, -f3)" >one.json

# profile NAME URL_PATH BODY COUNT: Ir of the request callbacks over COUNT requests
profile() {
	local name=$1 path=$2 body=$3 count=$4 url="" args=()
	# OMP_WAIT_POLICY set: ltvpipe would re-exec itself to set it, which valgrind refuses
	OMP_WAIT_POLICY=PASSIVE valgrind --tool=callgrind --callgrind-out-file="$name.cg" \
		--toggle-collect=on_request --toggle-collect=on_completed --toggle-collect=on_connection \
		"$ltvpipe" serve --port 0 --threads 2 --set serve.log_sample=0 --set serve.watch_ms=0 \
		>"$name.out" 2>"$name.err" &
	pid=$!
	for _ in $(seq 1 600); do
		url=$(sed -n 's|^listening on \(http://[^ ]*\)/ .*|\1|p' "$name.out")
		[ -n "$url" ] && break
		sleep 0.2
	done
	[ -n "$url" ] || { echo "server did not start" >&2; tail -3 "$name.err" >&2; exit 1; }
	for i in $(seq 1 "$count"); do
		args+=(-H 'Content-Type: application/json' --data-binary "@$body" "$url$path")
		[ "$i" -lt "$count" ] && args+=(--next)
	done
	curl -s "${args[@]}" >"$name.answers"
	kill -TERM "$pid"
	wait "$pid"
	pid=""
	callgrind_annotate "$name.cg" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
batch_ir=$(profile batch /v1/predict/batch batch.json 5)
single_ir=$(profile single /v1/predict one.json 200)
echo "JSON batch, 1,000 users: $((batch_ir / 5000)) instructions a user; answers $(sha256sum <batch.answers | cut -c1-16)"
echo "single prediction: $((single_ir / 200)) instructions a request; answers $(sha256sum <single.answers | cut -c1-16)"

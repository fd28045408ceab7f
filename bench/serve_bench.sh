#!/usr/bin/env bash
# usage: bench/serve_bench.sh [USERS] [SECONDS]   (make bench-serve)
#
# Benchmarks `ltvpipe serve` on loopback with wrk, bounded in time: trains a
# model on USERS generated users (default 20000), starts the server
# (serve.threads, or SERVE_THREADS; no request log), then
#  1. single predictions: POST /v1/predict over 32 keep-alive connections for
#     SECONDS (default 10): requests/s, p50, p99, and how many users each
#     batch of single predictions served together held on average;
#  2. batch predictions: POST /v1/predict/batch with 1,000 users a request
#     (JSON, then CSV) over 2 connections: users/s;
#  3. the server's RSS after the load against the model's size (its
#     artefacts' blobs in the registry, without the training feature
#     columns the server never loads); target RSS <= 2 x model + 50 MB.
# SERVE_THREADS (default: serve.threads' own, one per core and at least 2)
# and SERVE_CONNECTIONS (default 32) change the server's threads and the
# single-prediction load's connections.
# Prints one markdown table. Every process it starts is stopped by PID.
set -uo pipefail
users=${1:-20000}
seconds=${2:-10}
threads=${SERVE_THREADS:-}
thread_args=()
[ -n "$threads" ] && thread_args=(--threads "$threads")
connections=${SERVE_CONNECTIONS:-32}
root=$(cd "$(dirname "$0")/.." && pwd)
export LTVPIPE="${LTVPIPE:-$root/ltvpipe}"
export LTV_ROOT="$root"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvserve-bench-XXXXXX")
cd "$scratch" || exit 1
. "$root/tests/lib/serve.bash"
trap 'procs_stop_all; rm -rf "$scratch"' EXIT
"$LTVPIPE" generate --users "$users" --out data >/dev/null || exit 1
"$LTVPIPE" run >run.out 2>run.err || { tail -5 run.err; exit 1; }
serve_start srv "${thread_args[@]}" --set serve.log_sample=0 --set serve.watch_ms=0 || exit 1
app=$(sed -n 2p data/users.csv | cut -d, -f2)
export LTV_USER="{\"app\":\"$app\",\"campaign\":\"$(sed -n 2p data/users.csv | cut -d, -f3)\",\"rev_window\":2.5,\"age_days\":4,\"events_window\":9,\"cost\":1.2}"

wrk -t2 -c"$connections" -d"${seconds}s" --timeout 5s --latency -s "$root/tests/lib/swap.lua" "$srv_url/v1/predict" >single.out 2>&1
rps=$(awk '/^Requests\/sec/ { print $2 }' single.out)
p50=$(awk '$1 == "50%" { print $2 }' single.out)
p99=$(awk '$1 == "99%" { print $2 }' single.out)
bad=$(awk '/^responses/ { print $4 }' single.out)
http GET "$srv_url/metrics" >/dev/null
per_batch=$(awk '/^ltvpipe_predict_batches_total/ { b = $2 } /^ltvpipe_predict_batched_users_total/ { u = $2 } END { printf "%.2f", b ? u / b : 0 }' body)

# 1,000 users a request, each a little different
awk -F, -v n=1000 'NR > 1 && NR <= n + 1 { printf "%s{\"app\":\"%s\",\"campaign\":\"%s\",\"age_days\":%d,\"rev_window\":%.2f,\"events_window\":%d}", (NR > 2 ? "," : "["), $2, $3, NR % 30 + 1, (NR % 7) * 0.99, NR % 40 } END { print "]" }' data/users.csv >batch.json
awk -F, -v n=1000 'BEGIN { print "app,campaign,age_days,rev_window,events_window" } NR > 1 && NR <= n + 1 { printf "%s,%s,%d,%.2f,%d\n", $2, $3, NR % 30 + 1, (NR % 7) * 0.99, NR % 40 }' data/users.csv >batch.csv
cat >batch.lua <<'LUA'
local f = io.open(os.getenv("BODY_FILE"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = os.getenv("BODY_TYPE")
LUA
BODY_FILE=batch.json BODY_TYPE=application/json wrk -t1 -c2 -d"${seconds}s" --timeout 20s -s batch.lua "$srv_url/v1/predict/batch" >batch_json.out 2>&1
BODY_FILE=batch.csv BODY_TYPE=text/csv wrk -t1 -c2 -d"${seconds}s" --timeout 20s -s batch.lua "$srv_url/v1/predict/batch" >batch_csv.out 2>&1
json_ups=$(awk '/^Requests\/sec/ { printf "%.0f", $2 * 1000 }' batch_json.out)
csv_ups=$(awk '/^Requests\/sec/ { printf "%.0f", $2 * 1000 }' batch_csv.out)
non2xx=$(cat batch_json.out batch_csv.out | awk '/Non-2xx/ { n += $NF } END { print n + 0 }')

rss_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$srv_pid/status")
model_bytes=$(sqlite3 models/registry.sqlite "select coalesce(sum(length(b.data)), 0) from artefact_blobs b
	join model_version_artefacts m on m.artefact_id = b.artefact_id
	where m.model_version = (select model_version from aliases where alias = 'production')
	and b.key not like 'col:%' and b.key <> 'frame'")
limit_mb=$(awk -v m="$model_bytes" 'BEGIN { printf "%.1f", 2 * m / 1048576 + 50 }')

echo "| ltvpipe serve, $users users trained, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg) | figure | target |"
echo "|---|---|---|"
echo "| single predictions ($connections connections, keep-alive, ${threads:-default} server threads) | $rps requests/s | >= 5,000 |"
echo "| single p50 / p99 | $p50 / $p99 | p99 <= 10 ms |"
echo "| single predictions failed | $bad | 0 |"
echo "| users per batch of single predictions served together | $per_batch | |"
echo "| batch, JSON, 1,000 users a request | $json_ups users/s | >= 100,000 |"
echo "| batch, CSV, 1,000 users a request | $csv_ups users/s | >= 100,000 |"
echo "| batch requests not 200 | $non2xx | 0 |"
echo "| peak RSS / model size | $((rss_kb / 1024)) MB / $(awk -v m="$model_bytes" 'BEGIN { printf "%.1f", m / 1048576 }') MB | <= $limit_mb MB |"

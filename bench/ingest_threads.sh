#!/usr/bin/env bash
# usage: bench/ingest_threads.sh USERS [LTVPIPE]
#
# How ingest's CPU splits between its threads: the stage thread (validation,
# user lookups, aggregation, user-day blocks), the users writer (SQLite
# inserts while users.csv is parsed) and each file's read-ahead thread
# (read, gunzip, split into records). On a quiet machine ingest's wall time
# is about the stage thread's share of the CPU, so this is the figure that
# says what the threads buy when the shared machine's walls say nothing.
# Generates USERS users with events ordered by time, runs `run --only ingest`
# once under `perf record` (CPU clock samples) and prints each thread's share
# of the samples and its CPU seconds (1,000 samples a second), with the
# run's CPU seconds (GNU /usr/bin/time). DATA=DIR ingests DIR's files instead
# of generated ones (the shared 1M sample: DATA=/work/tmp-s9/d1m).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] && [[ $1 =~ ^[1-9][0-9]*$ ]] || bench_usage "USERS [LTVPIPE]"
users=$1
bin=$(bench_binary "${2:-}")
command -v perf >/dev/null || bench_fail "needs perf"
bench_need_time
bench_scratch ingest-threads
cd "$scratch"
# DATA=DIR: ingest DIR's users.csv and events.csv instead (USERS then only names them).
if [ -n "${DATA:-}" ]; then
	ln -s "$(realpath "$DATA")" data
else
	"$bin" generate --users "$users" --order time --out data >/dev/null
fi
mb=$(du -cb data/users.csv data/events.csv | awk 'END { printf "%.1f", $1 / 1e6 }')
/usr/bin/time -f '%e %U %S' -o time.out perf record -q -F 1000 -s -o perf.data \
	"$bin" run --config "$root/config/ltvpipe.yaml" --only ingest >/dev/null 2>run.err ||
	{ cat run.err >&2; exit 1; }
read -r wall usr sys <time.out
echo "ingest of $users users ($mb MB of CSV, events by time): wall ${wall} s, CPU $(awk -v u="$usr" -v s="$sys" 'BEGIN { print u + s }') s, load $(cut -d' ' -f1 /proc/loadavg)"
# The first exe thread is the stage thread (the others are the users
# writer and the two files' read-ahead threads).
perf report -i perf.data --sort pid -F overhead,sample,pid --stdio 2>/dev/null |
	awk '/%/ && !/^#/ { printf "  thread %-8s %s of the CPU samples (%.2f CPU s)\n", $3, $1, $2 / 1000 }'

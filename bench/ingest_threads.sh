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
# of generated ones (the shared 1M sample: DATA=/work/tmp-s11/d1m).
#
# Then the stage by phase, each thread named by what it runs: hashing the
# input files (before the stage), the users file, the events file and the
# tail (grouping user-days, the blocks, the commit: after the events worker's
# last sample), with the stage thread's CPU seconds in each and each helper's
# (the files' hash readers, read-aheads, users writer, events worker, the
# tail's page prefault). On 2 cores a phase's wall is about the larger of its
# busiest thread and half its threads' sum: the figure to compare binaries
# by when walls are the load's.
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
perf script -i perf.data -F tid,time,ip,sym 2>/dev/null | awk '
{
	t = $2; sub(":", "", t); if (!s) s = t; t -= s
	tid[NR] = $1; tm[NR] = t; n[$1]++
	if (!($1 in first)) first[$1] = t
	last[$1] = t
	if ($4 ~ /^(refill|fast_field|queue_record)$/) role[$1] = "read-ahead"
	else if ($4 ~ /^(sqlite3VdbeExec|insert_batch|bind_user)$/ && !role[$1]) role[$1] = "users writer"
	else if ($4 ~ /^(ingest_event_resolve|resolve_batch)$/ && !role[$1]) role[$1] = "events worker"
}
END {
	main = tid[1]; users = 1e9; events = 1e9; tail = 0
	for (k in n) {
		if (role[k] == "users writer" && first[k] < users) users = first[k]
		if (role[k] == "events worker") { events = first[k]; tail = last[k] }
	}
	for (i = 1; i <= NR; i++)
		if (tid[i] == main)
			ph[tm[i] < users ? "hash" : tm[i] < events ? "users" : tm[i] <= tail ? "events" : "tail"]++
	printf "  stage thread by phase (CPU s): hashing %.2f, users %.2f, events %.2f, tail %.2f\n",
		ph["hash"] / 1000, ph["users"] / 1000, ph["events"] / 1000, ph["tail"] / 1000
	for (k in n) {
		if (k != main && !role[k] && last[k] < users)
			role[k] = "hash reader" # the input files are hashed before the stage
		if (k != main && !role[k] && first[k] > tail)
			role[k] = "prefault" # the user-day rows faulted in beside the grouping
		if (k != main)
			by[role[k] ? role[k] : "other"] += n[k]
	}
	for (r in by)
		printf "  %s threads: %.2f CPU s\n", r, by[r] / 1000
}'

#!/usr/bin/env bash
# usage: bench/ingest.sh USERS RUNS   (make bench-ingest: 200000 users, 3 runs)
#
# The ingest benchmark: generates USERS users twice, per user (generate's
# default) and ordered by time across users (--order time, as an events-table
# export is), then reports medians over RUNS runs of
#  1. the CSV tokenizer alone on events.csv (build/bench/csvread_bench): the
#     fast path for quote-free lines against libcsv for every byte, MB/s;
#  2. `ltvpipe run --only ingest` on a fresh registry for each order: wall
#     seconds, MB/s of CSV input, CPU seconds (user + system), MB of CSV per
#     CPU second (the figure to compare on a loaded machine) and peak RSS
#     (GNU /usr/bin/time).
# bench/ingest_same.sh checks that a change left ingest's output identical.
# Prints a markdown table to paste into bench/results.md. The machine may be
# shared: compare the rows of one table, not tables of different days.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] && [[ $1 =~ ^[1-9][0-9]*$ && $2 =~ ^[1-9][0-9]*$ ]] || bench_usage "USERS RUNS"
users=$1 runs=$2
bin=$(bench_binary)
tok=${CSVREAD_BENCH:-$root/build/bench/csvread_bench}
[ -x "$tok" ] || bench_fail "no '$tok'; run 'make bench-tools'"
bench_need_time
config_args=()
[ -f "$root/config/ltvpipe.yaml" ] && config_args=(--config "$root/config/ltvpipe.yaml")
bench_scratch ingest-bench

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for order in user time; do
	mkdir -p "$scratch/$order"
	(cd "$scratch/$order" && "$bin" generate --users "$users" --order "$order" --out data >/dev/null)
done
mb=$(du -cb "$scratch/user/data/users.csv" "$scratch/user/data/events.csv" | awk 'END { printf "%.1f", $1 / 1e6 }')
events=$(($(wc -l <"$scratch/user/data/events.csv") - 1))

echo "| $users users, $events events, $mb MB of CSV, medians of $runs | wall s | MB/s | CPU s | MB/CPU-s | peak RSS MB |"
echo "|---|---|---|---|---|---|"
for mode in fast libcsv; do
	for _ in $(seq "$runs"); do
		/usr/bin/time -f '%e %M' -o "$scratch/t" "$tok" "$scratch/time/data/events.csv" "$mode" >/dev/null
		cat "$scratch/t"
	done >"$scratch/tok.$mode"
	wall=$(cut -d' ' -f1 "$scratch/tok.$mode" | median)
	rss=$(cut -d' ' -f2 "$scratch/tok.$mode" | median)
	size=$(du -b "$scratch/time/data/events.csv" | cut -f1)
	awk -v w="$wall" -v r="$rss" -v s="$size" -v m="$mode" 'BEGIN {
		printf "| tokenizer only (%s), events.csv by time | %.2f | %.0f | | | %.0f |\n", m, w, s / 1e6 / w, r / 1024 }'
done
for order in user time; do
	for _ in $(seq "$runs"); do
		rm -rf "$scratch/$order/models" "$scratch/$order/logs" "$scratch/$order/rejects"
		(cd "$scratch/$order" && /usr/bin/time -f '%e %M %U %S' -o "$scratch/t" \
			"$bin" run "${config_args[@]}" --only ingest >/dev/null 2>"$scratch/err") ||
			{ cat "$scratch/err" >&2; exit 1; }
		cat "$scratch/t"
	done >"$scratch/ing.$order"
	wall=$(cut -d' ' -f1 "$scratch/ing.$order" | median)
	rss=$(cut -d' ' -f2 "$scratch/ing.$order" | median)
	cpu=$(awk '{ print $3 + $4 }' "$scratch/ing.$order" | median)
	awk -v w="$wall" -v r="$rss" -v mb="$mb" -v o="$order" -v c="$cpu" 'BEGIN {
		printf "| ingest, events %s order | %.2f | %.0f | %.2f | %.0f | %.0f |\n", (o == "time" ? "in time" : "in per-user"), w, mb / w, c, mb / c, r / 1024 }'
done

#!/usr/bin/env bash
# usage: bench/select_calibrate.sh REGISTRY_DIR RUNS BIN_A BIN_B
#
# select and calibrate run alone after the model wave, so their seconds are
# the cold run's. This reruns each (`run --only STAGE --force --quiet`, the
# stage's default threads), and both in one run (`--only select,calibrate`:
# calibrate then takes select's predictions from the run's shelf, as in a
# cold run), RUNS times per binary, A and B in turn (A B A B:
# a drift of the machine's load falls on both), in REGISTRY_DIR, a
# directory holding config/ and a registry a cold run has filled (say at
# 1,000,000 users: cp -r config DIR; cd DIR; ltvpipe run --set
# input.users=... --set input.events=...). Prints per stage and binary the
# medians of: CPU seconds (all threads), the main thread's CPU seconds, and
# wall seconds; and whether each stage's artefact content hash was the same
# on every run of both binaries (exit 1 when not). Each run adds a version
# of its stages to that registry.
#
# The main thread's seconds stand for the wall time of a quiet machine: the
# main thread does every serial step and its share of each parallel one,
# so work moved onto the other threads leaves it. On a machine shared by
# busy processes wall seconds are mostly the others'. Both CPU figures come
# from perf sampling the task clock every millisecond, per thread.
#   nice bench/select_calibrate.sh /tmp/reg1m 3 /tmp/ltvpipe-before ./ltvpipe
# STAGES (default "select calibrate select,calibrate") picks the runs;
# RUN_SET="k=v ..." adds --set k=v to each (RUN_SET=run.jobs=1: one thread).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 4 ] || bench_usage "REGISTRY_DIR RUNS BIN_A BIN_B"
bench_need_time
command -v perf >/dev/null || bench_fail "needs perf (Debian package linux-perf)"
dir=$(realpath "$1")
runs=$2
bins=("$(bench_binary "$3")" "$(bench_binary "$4")")
[ -f "$dir/models/registry.sqlite" ] || bench_fail "no registry at $dir/models/registry.sqlite"
bench_scratch selcal
cd "$dir"

# median FILE: the median of the numbers in FILE, one a line.
median() {
	sort -g "$1" | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

run_set=()
for kv in ${RUN_SET:-}; do run_set+=(--set "$kv"); done
bad=0
printf '%-16s %-22s %8s %8s %8s   (medians of %s runs)\n' stage binary 'CPU s' 'main s' 'wall s' "$runs"
for stage in ${STAGES:-select calibrate select,calibrate}; do
	: >"$scratch/hashes"
	for r in $(seq "$runs"); do
		for k in 0 1; do
			/usr/bin/time -o "$scratch/time" -f '%e' perf record -q -e task-clock -c 1000000 \
				-o "$scratch/perf.data" -- "${bins[$k]}" run --only "$stage" --force --quiet \
				${run_set[@]+"${run_set[@]}"} >"$scratch/log" 2>&1 || { tail -20 "$scratch/log" >&2; exit 1; }
			cat "$scratch/time" >>"$scratch/wall.$stage.$k"
			# samples of 1 ms per thread: the main thread's tid is the process's pid
			perf script -i "$scratch/perf.data" -F pid,tid 2>/dev/null | tr / " " |
				awk '{ n++; main += $1 == $2 } END { printf "%.2f %.2f\n", n / 1000, main / 1000 }' \
				>"$scratch/cpu"
			awk '{ print $1 }' "$scratch/cpu" >>"$scratch/cpu.$stage.$k"
			awk '{ print $2 }' "$scratch/cpu" >>"$scratch/main.$stage.$k"
			for name in ${stage//,/ }; do
				sqlite3 models/registry.sqlite "select name, content_hash from artefacts
					where name = '$name' order by version desc limit 1"
			done | paste -sd ' ' >>"$scratch/hashes"
		done
	done
	for k in 0 1; do
		printf '%-16s %-22s %8s %8s %8s\n' "$stage" "$(basename "${bins[$k]}")" \
			"$(median "$scratch/cpu.$stage.$k")" "$(median "$scratch/main.$stage.$k")" \
			"$(median "$scratch/wall.$stage.$k")"
	done
	if [ "$(sort -u "$scratch/hashes" | wc -l)" = 1 ]; then
		echo "$stage: content hashes $(head -1 "$scratch/hashes") on every run"
	else
		echo "$stage: content hashes DIFFER: $(sort -u "$scratch/hashes" | tr '\n' ' ')"
		bad=1
	fi
done
exit "$bad"

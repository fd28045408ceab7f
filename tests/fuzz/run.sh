#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD for SECONDS each on its seed corpus
# (tests/fuzz/<target without fuzz_>/). New inputs go to a scratch corpus
# first in the list, so the seeds in the repository never change; a crash
# leaves its input in the scratch directory, which is kept and named.
# Prints one line per target and exits non-zero when any target failed.
# SEED (default 0: libFuzzer picks one) fixes the mutations: make test gives
# 1, so its short runs try the same inputs on every machine (a slower one
# tries fewer of them), and a failure there is not the luck of a new seed.
# An input may take 60 s before it counts as a hang (-timeout): a loaded
# machine with ASan is slow, and a real hang still fails.
set -uo pipefail
build=${1:?usage: run.sh BUILD SECONDS [SEED]}
seconds=${2:?usage: run.sh BUILD SECONDS [SEED]}
seed=${3:-0}
root=$(cd "$(dirname "$0")/../.." && pwd)
failed=0
for bin in "$root/$build"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	seeds="$root/tests/fuzz/${name#fuzz_}"
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvfuzz-$name-XXXXXX")
	mkdir "$scratch/corpus"
	(cd "$scratch" && TMPDIR="$scratch" "$bin" -max_total_time="$seconds" -timeout=60 -seed="$seed" \
		-rss_limit_mb=2048 -print_final_stats=1 corpus "$seeds" >log 2>&1)
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/log" | tail -1)
	if [ $rc -eq 0 ]; then
		printf 'fuzz %-26s ok (%s executions in %s s)\n' "$name" "${execs:-?}" "$seconds"
		rm -rf "$scratch"
	else
		failed=$((failed + 1))
		printf 'fuzz %-26s FAILED (exit %d) — input and log kept in %s\n' "$name" $rc "$scratch"
		grep -E 'ERROR|SUMMARY|crash-|deadly signal' "$scratch/log" | head -10 | sed 's/^/  /'
	fi
done
[ $failed -eq 0 ]

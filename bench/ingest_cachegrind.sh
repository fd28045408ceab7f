#!/usr/bin/env bash
# usage: bench/ingest_cachegrind.sh USERS BINARY...
#
# Ingest's cost in counts that a loaded machine does not blur: generates
# USERS users with events ordered by time (`generate --order time`, the hard
# case: each event is another user's), then runs `ltvpipe run --only ingest`
# under valgrind's cachegrind for each BINARY (say the binary before a change
# and after it) and prints instructions, data reads and last-level data
# cache misses. Ingest on a file ordered by time is bound by cache misses on
# the per-user state, so the misses column is the one a change to that state
# has to move. The simulated last-level cache is LL_CACHE (size,assoc,line;
# default 8 MiB, 16-way): valgrind takes the host's, which on a VM can be
# reported as 512 MiB and hides every miss. 300000 users against 8 MiB has
# the ratio of 1,000,000 users to a 32 MiB L3 shared with other work.
# About three minutes per binary at 300000 users.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] && [[ $1 =~ ^[1-9][0-9]*$ ]] || bench_usage "USERS BINARY..."
users=$1
shift
command -v valgrind >/dev/null || bench_fail "needs valgrind"
bench_scratch ingest-cg
"$1" generate --users "$users" --order time --out "$scratch/data" >/dev/null
mb=$(du -cb "$scratch/data/users.csv" "$scratch/data/events.csv" | awk 'END { printf "%.1f", $1 / 1e6 }')
echo "| ingest, $users users by time ($mb MB of CSV) | instructions | data reads | LL data misses (read + write) |"
echo "|---|---:|---:|---:|"
for bin in "$@"; do
	abs=$(realpath "$bin")
	rm -rf "$scratch/run"
	mkdir "$scratch/run"
	ln -s ../data "$scratch/run/data"
	# PASSIVE: ltvpipe would otherwise re-execute itself to set it (README "Threads").
	(cd "$scratch/run" && OMP_WAIT_POLICY=PASSIVE valgrind --tool=cachegrind --cache-sim=yes --LL="${LL_CACHE:-8388608,16,64}" \
		--cachegrind-out-file="$scratch/cg.out" "$abs" run \
		--config "$root/config/ltvpipe.yaml" --only ingest >/dev/null 2>"$scratch/err") ||
		{ tail -20 "$scratch/err" >&2; exit 1; }
	awk -v b="$bin" '/^events:/ { for (i = 2; i <= NF; i++) ev[$i] = i - 1 }
		/^summary:/ { printf "| %s | %.4g G | %.4g G | %.4g M |\n", b, $(ev["Ir"] + 1) / 1e9,
			$(ev["Dr"] + 1) / 1e9, ($(ev["DLmr"] + 1) + $(ev["DLmw"] + 1)) / 1e6 }' "$scratch/cg.out"
done

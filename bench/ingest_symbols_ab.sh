#!/usr/bin/env bash
# usage: bench/ingest_symbols_ab.sh BIN_BEFORE BIN_AFTER DATA_DIR RUNS SYMBOL...
#
# Where a change inside ingest's parse went, when the whole run's CPU is too
# noisy to show it on a shared machine: RUNS alternating pairs of `run --only
# ingest` on DATA_DIR's users.csv and events.csv (each in a fresh registry)
# under `perf record` at 999 Hz, and per run the samples (about ms of CPU) of
# each SYMBOL and their sum, then the whole run's samples. Used for issue 13
# (helper "parse"): the user id lookup (find_slot __memcmp_evex_movbe
# hash_and_load) and the tokenizer (refill fast_field queue_record).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 5 ] && [[ $4 =~ ^[1-9][0-9]*$ ]] || bench_usage "BIN_BEFORE BIN_AFTER DATA_DIR RUNS SYMBOL..."
before=$(bench_binary "$1") after=$(bench_binary "$2") data=$(realpath "$3") runs=$4
shift 4
command -v perf >/dev/null || bench_fail "needs perf"
[ -f "$data/users.csv" ] && [ -f "$data/events.csv" ] || bench_fail "no users.csv and events.csv in $data"
bench_scratch ingest-symbols
export OMP_WAIT_POLICY=PASSIVE

for i in $(seq "$runs"); do
	for side in before after; do
		bin=$before
		[ $side = after ] && bin=$after
		d=$scratch/$side.$i
		mkdir -p "$d" && cp -r "$root/config" "$d/"
		(cd "$d" && perf record -q -F 999 -o perf.data "$bin" run --only ingest \
			--set "input.users=$data/users.csv" --set "input.events=$data/events.csv" >out 2>err) ||
			{ cat "$d/err" >&2; exit 1; }
		bench_symbol_samples "$d/perf.data" $side "$i" "$@"
		rm -rf "$d"
	done
done

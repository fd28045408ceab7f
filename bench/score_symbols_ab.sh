#!/usr/bin/env bash
# usage: bench/score_symbols_ab.sh BIN_BEFORE BIN_AFTER DIR RUNS SYMBOL...
#
# Where a change inside score's prediction went, when the whole run's CPU is
# too noisy to show it on a shared machine: RUNS alternating pairs of
# `ltvpipe score --users DIR/data/users.csv --events DIR/data/events.csv`
# (DIR as for bench/score_cpu.sh: a trained models/ registry) under `perf
# record` at 999 Hz, and per run the samples (about ms of CPU) of each SYMBOL
# and their sum, then the whole run's samples. Used for issue 13 (helper
# "scorepredict"): the trees' walk (predict_rows), the matrices
# (model_data_matrix, model_data_matrix_into) and the kernel zeroing fresh
# pages (clear_page_erms). Session 16 (helper "scorepost"): the output's
# numbers, `... 3 numfmt_fixed scaled_round digits_of __scalbn frexp@plt
# ldexp@plt __frexp jbuf_fixed` (a double's bits read directly, src/numfmt.c).
# PRIO="chrt -f 1" runs each score at a real-time priority, so that its
# threads have both cores whenever they want them, as on a quiet machine:
# what one thread's writes cost another's reads shows only then (session
# 17, helper "score-read": the CSV reader's lines shared by its read-ahead
# thread and its caller, `... queue_record refill csv_reader_next
# csv_reader_fault`).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 5 ] && [[ $4 =~ ^[1-9][0-9]*$ ]] || bench_usage "BIN_BEFORE BIN_AFTER DIR RUNS SYMBOL..."
before=$(bench_binary "$1") after=$(bench_binary "$2") dir=$(realpath "$3") runs=$4
shift 4
command -v perf >/dev/null || bench_fail "needs perf"
[ -f "$dir/data/users.csv" ] && [ -f "$dir/data/events.csv" ] || bench_fail "no data/users.csv and data/events.csv in $dir"
bench_scratch score-symbols
read -r -a prio <<<"${PRIO:-}"
export OMP_WAIT_POLICY=PASSIVE
echo "score_symbols: load $(cut -d' ' -f1-3 /proc/loadavg)"

for i in $(seq "$runs"); do
	for side in before after; do
		bin=$before
		[ $side = after ] && bin=$after
		(cd "$dir" && "${prio[@]}" perf record -q -F 999 -o "$scratch/perf.data" "$bin" score \
			--config "$root/config/ltvpipe.yaml" --users data/users.csv \
			--events data/events.csv --output "$scratch/scores.csv" >"$scratch/out" 2>"$scratch/err") ||
			{ cat "$scratch/err" >&2; exit 1; }
		bench_symbol_samples "$scratch/perf.data" $side "$i" "$@"
		rm -f "$scratch/perf.data"
	done
done

#!/usr/bin/env bash
# usage: bench/stage_symbols_ab.sh BIN_BEFORE BIN_AFTER TRAINED_MODELS_DIR RUNS STAGES SYMBOL...
#
# Where a change inside a stage went, when the stage's whole CPU is too noisy
# to show it on a shared machine: RUNS alternating pairs of `run --only
# STAGES --force` (each on a fresh copy of a trained registry,
# TRAINED_MODELS_DIR, only read) under `perf record` at 999 Hz, and per run
# the samples (about ms of CPU) of each SYMBOL, their sum and the whole
# run's; then whether each stage's content hash is the trained registry's
# on every run (exit 1 if not). CHILDREN=1 records call graphs (dwarf) and
# counts a symbol's samples with its callees'. SET="run.jobs=1 ..." passes
# each as --set (one thread: a stage's share of the cold run's model wave,
# and one call stack for CHILDREN=1 to count). Used for issue 13 (helper
# "selcal2", session 16):
#   bench/stage_symbols_ab.sh BASE NEW TRAINED 3 select metrics_gini_groups \
#       global_medians._omp_fn.0 select_kth model_data_expand_by_weight median_counted
#   CHILDREN=1 bench/stage_symbols_ab.sh BASE NEW TRAINED 2 calibrate compare_versions
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 6 ] && [[ $4 =~ ^[1-9][0-9]*$ ]] ||
	bench_usage "BIN_BEFORE BIN_AFTER TRAINED_MODELS_DIR RUNS STAGES SYMBOL..."
before=$(bench_binary "$1") after=$(bench_binary "$2") trained=$3 runs=$4 stages=$5
shift 5
command -v perf >/dev/null || bench_fail "needs perf"
bench_scratch stage-symbols
export OMP_WAIT_POLICY=PASSIVE
echo "stage_symbols: load $(cut -d' ' -f1-3 /proc/loadavg)"
graph=()
[ "${CHILDREN:-0}" = 1 ] && graph=(--call-graph dwarf,16384)
sets=()
for kv in ${SET:-}; do sets+=(--set "$kv"); done
want=$(bench_artefact_hashes "$trained/registry.sqlite" ", ")
bad=0

# children_samples DATA SIDE RUN SYMBOL...: bench_symbol_samples' line, each symbol with its callees
children_samples() {
	local data=$1 side=$2 run=$3 all

	shift 3
	all=$(perf report -i "$data" --no-children --sort sym --stdio -n -g none 2>/dev/null |
		awk '/^ +[0-9.]+%/ { all += $2 } END { print all + 0 }')
	perf report -i "$data" --children --sort sym --stdio -g none 2>/dev/null |
		awk -v side="$side" -v run="$run" -v want="$*" -v all="$all" '
			BEGIN { n = split(want, w, " "); for (k = 1; k <= n; k++) keep[w[k]] = 1 }
			/^ +[0-9.]+%/ { p = $1; sub(/%/, "", p); if ($NF in keep && !($NF in got)) got[$NF] = p * all / 100 }
			END {
				printf "%s %d:", side, run
				for (k = 1; k <= n; k++) { printf " %s=%d", w[k], got[w[k]]; sum += got[w[k]] }
				printf "  sum=%d  all=%d samples (with callees)\n", sum, all
			}'
}

for i in $(seq "$runs"); do
	for side in before after; do
		bin=$before
		[ $side = after ] && bin=$after
		rm -rf "$scratch/run" && mkdir -p "$scratch/run" && cp -r "$trained" "$scratch/run/models" &&
			chmod -R u+w "$scratch/run/models"
		(cd "$scratch/run" && perf record -q -F 999 "${graph[@]}" -o "$scratch/perf.data" "$bin" run \
			--config "$root/config/ltvpipe.yaml" --only "$stages" --force --quiet "${sets[@]}" \
			>out 2>err) ||
			{ cat "$scratch/run/err" >&2; exit 1; }
		if [ ${#graph[@]} -gt 0 ]; then
			children_samples "$scratch/perf.data" $side "$i" "$@"
		else
			bench_symbol_samples "$scratch/perf.data" $side "$i" "$@"
		fi
		[ "$(bench_artefact_hashes "$scratch/run/models/registry.sqlite" ", ")" = "$want" ] || bad=1
		rm -f "$scratch/perf.data"
	done
done
if ((bad)); then echo "content hashes DIFFER from the trained registry's"; exit 1; fi
echo "content hashes identical to the trained registry's ($stages)"

#!/usr/bin/env bash
# usage: bench/tail_cpu_ab.sh BIN_BEFORE BIN_AFTER INGESTED_MODELS DATA_DIR RUNS
#
# The cold run's tail, select and calibrate, as they run in a cold run (after
# the model wave, the frame and the methods' predictions shared in memory),
# not alone: RUNS alternating pairs of the cold `run` (features ... calibrate)
# of two binaries, each on a fresh copy of INGESTED_MODELS (a models/
# directory holding only an ingest of DATA_DIR's users.csv and events.csv;
# only read), under `perf record -e cpu-clock -F 999` with uprobes on
# stage_select_run and stage_calibrate_run (entry and return). Per run and
# stage: the CPU samples taken between the stage's entry and return (about
# ms of CPU of the whole process: the stage runs alone) and its wall; then
# the medians and the medians of the pairs' differences (after - before),
# and whether every artefact's content hash is the same on both sides (exit
# 1 if not). PRIO="chrt -f 1" runs each run at a real-time priority, so its
# walls are about a quiet machine's. Needs root (uprobes) and perf.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 5 ] && [[ $5 =~ ^[1-9][0-9]*$ ]] || bench_usage "BIN_BEFORE BIN_AFTER INGESTED_MODELS DATA_DIR RUNS"
before=$(bench_binary "$1") after=$(bench_binary "$2") ingested=$(realpath "$3") data=$(realpath "$4") runs=$5
command -v perf >/dev/null || bench_fail "needs perf (Debian package linux-perf)"
[ -f "$ingested/registry.sqlite" ] || bench_fail "no registry.sqlite in '$ingested'"
bench_scratch tail-cpu
probes=tailab$$
bench_probes_ab "$before" "$after" "$probes" sel_in=stage_select_run sel_out=stage_select_run%return \
	cal_in=stage_calibrate_run cal_out=stage_calibrate_run%return
export OMP_WAIT_POLICY=PASSIVE
declare -A sel_cpu cal_cpu sel_wall cal_wall hashes
echo "tail_cpu: load $(cut -d' ' -f1-3 /proc/loadavg)"

one() { # side run
	local dir=$scratch/$1 line
	bench_run_dir "$dir" "$ingested" "$data"
	# shellcheck disable=SC2086
	(cd "$dir" && ${PRIO:-} perf record -q -F 999 -e cpu-clock -e "probe_ltvpipe:${probes}_${1}_*" -o perf.data -- \
		"$scratch/ltv_$1" run --config "$root/config/ltvpipe.yaml" --quiet >run.log 2>&1) ||
		{ echo "$1: run failed" >&2; tail -5 "$dir/run.log" >&2; exit 1; }
	line=$(perf script -i "$dir/perf.data" -F event,time 2>/dev/null | awk '
		{ t = $1; sub(":", "", t); ev = $2; sub(":$", "", ev) }
		ev ~ /_sel_in$/ { s0 = t } ev ~ /_sel_out__return$/ { s1 = t } ev ~ /_cal_in$/ { c0 = t }
		ev ~ /_cal_out__return$/ { c1 = t }
		ev == "cpu-clock" { ts[n++] = t }
		END { for (i = 0; i < n; i++) { if (ts[i] >= s0 && ts[i] <= s1) s++; if (ts[i] >= c0 && ts[i] <= c1) c++ }
		      printf "%d %d %.3f %.3f", s, c, s1 - s0, c1 - c0 }')
	read -r s c sw cw <<<"$line"
	printf 'bench: %-6s run %d: select %5d samples %6.3f s wall, calibrate %5d samples %6.3f s wall\n' \
		"$1" "$2" "$s" "$sw" "$c" "$cw"
	sel_cpu[$1]+=" $s" cal_cpu[$1]+=" $c" sel_wall[$1]+=" $sw" cal_wall[$1]+=" $cw"
	hashes[$1]=$(bench_artefact_hashes "$dir/models/registry.sqlite")
	rm -rf "$dir"
}
bench_alternate "$runs" one
bench_ab_medians %.3f sel_cpu cal_cpu sel_wall cal_wall
echo "tail_cpu: load $(cut -d' ' -f1-3 /proc/loadavg) at end"
bench_hashes_verdict "${hashes[before]}" "${hashes[after]}" "${hashes[after]}"

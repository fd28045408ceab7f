#!/usr/bin/env bash
# usage: bench/registry_close_ab.sh BIN_BEFORE BIN_AFTER INGESTED_MODELS DATA_DIR RUNS
#
# The end of a cold run: RUNS alternating pairs of the cold `run` (features
# ... calibrate) of two binaries, each on a fresh copy of INGESTED_MODELS (a
# models/ directory after `run --only ingest` of DATA_DIR; only read), under
# `perf record` of uprobes on registry_close (entry and return) and the
# process's exit (sched:sched_process_exit of the main thread). Per run: the
# milliseconds from the last registry_close's entry to its return (SQLite's
# checkpoint of the WAL into the database and the WAL's unlink) and to the
# process's exit; then the medians and the medians of the pairs' differences
# (after - before), and whether every artefact's content hash is the same on
# both sides (exit 1 if not). PRIO="chrt -f 1" runs each run at a real-time
# priority. Needs root (uprobes) and perf.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 5 ] && [[ $5 =~ ^[1-9][0-9]*$ ]] || bench_usage "BIN_BEFORE BIN_AFTER INGESTED_MODELS DATA_DIR RUNS"
before=$(bench_binary "$1") after=$(bench_binary "$2") ingested=$(realpath "$3") data=$(realpath "$4") runs=$5
command -v perf >/dev/null || bench_fail "needs perf (Debian package linux-perf)"
[ -f "$ingested/registry.sqlite" ] || bench_fail "no registry.sqlite in '$ingested'"
bench_scratch close-ab
probes=closeab$$
bench_probes_ab "$before" "$after" "$probes" close_in=registry_close close_out=registry_close%return
export OMP_WAIT_POLICY=PASSIVE
declare -A close_ms exit_ms hashes
echo "registry_close: load $(cut -d' ' -f1-3 /proc/loadavg)"

one() { # side run
	local dir=$scratch/$1 line
	bench_run_dir "$dir" "$ingested" "$data"
	# shellcheck disable=SC2086
	(cd "$dir" && ${PRIO:-} perf record -q -e "probe_ltvpipe:${probes}_${1}_*" -e sched:sched_process_exit -o perf.data -- \
		"$scratch/ltv_$1" run --config "$root/config/ltvpipe.yaml" --quiet >run.log 2>&1) ||
		{ echo "$1: run failed" >&2; tail -5 "$dir/run.log" >&2; exit 1; }
	# the main thread's last close (the run's registry) and its exit
	line=$(perf script -i "$dir/perf.data" -F pid,tid,time,event 2>/dev/null | awk '
		{ split($1, id, "/"); main = id[1] == id[2]; t = $2; sub(":", "", t); ev = $3; sub(":$", "", ev) }
		ev ~ /_close_in$/ && main { c0 = t } ev ~ /_close_out__return$/ && main { c1 = t }
		ev == "sched:sched_process_exit" && main { x = t }
		END { printf "%.1f %.1f", (c1 - c0) * 1000, (x - c0) * 1000 }')
	read -r c x <<<"$line"
	printf 'bench: %-6s run %d: registry_close %6.1f ms, to exit %6.1f ms\n' "$1" "$2" "$c" "$x"
	close_ms[$1]+=" $c" exit_ms[$1]+=" $x"
	hashes[$1]=$(bench_artefact_hashes "$dir/models/registry.sqlite")
	rm -rf "$dir"
}
bench_alternate "$runs" one
bench_ab_medians %.1f close_ms exit_ms
echo "registry_close: load $(cut -d' ' -f1-3 /proc/loadavg) at end"
bench_hashes_verdict "${hashes[before]}" "${hashes[after]}"

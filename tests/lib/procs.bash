# What serve.bash and dask.bash share (sourced, not run): every background
# process a test starts is tracked, and one EXIT trap stops them all by PID,
# even when the test fails. One trap for both, so a test sourcing both
# libraries stops servers and cluster alike (a second `trap ... EXIT` would
# replace the first).
[ -n "${LTV_PROCS_LOADED:-}" ] && return 0
LTV_PROCS_LOADED=1
started_pids=()

proc_stop() { # PID: SIGTERM, a bounded wait, then SIGKILL
	local pid=$1
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

proc_track() { # PID: stopped at exit
	started_pids+=("$1")
}

procs_stop_all() {
	for pid in "${started_pids[@]}"; do proc_stop "$pid"; done
}
trap procs_stop_all EXIT

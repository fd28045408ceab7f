# Helpers for tests that start a Dask cluster (sourced, not run), in the way
# serve.bash manages servers: a scheduler and workers on 127.0.0.1 with free
# ports (--port 0, the address read from the scheduler file), readiness
# waited for with a deadline (DASK_WAIT_S, 180 s: a Python process importing
# distributed on a loaded machine is slow to start), and every process
# started stopped by PID in an EXIT trap, even when the test fails. Needs
# Debian's python3-distributed.
source "$(dirname "${BASH_SOURCE[0]}")/procs.bash"
source "$(dirname "${BASH_SOURCE[0]}")/wait.bash"
DASK_WAIT_S=${DASK_WAIT_S:-180}
dask_stop() { proc_stop "$1"; }

# dask_start_scheduler: starts it in the background (dask_wait_scheduler reads
# its address); logs in scheduler.log. A task whose worker dies fails at once
# (allowed-failures 0) instead of being retried elsewhere, so a test sees the
# driver's own failure and retry.
dask_start_scheduler() {
	rm -f scheduler.json
	DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 \
		dask-scheduler --host 127.0.0.1 --port 0 --no-dashboard --scheduler-file scheduler.json \
		>scheduler.log 2>&1 &
	dask_scheduler_pid=$!
	proc_track "$!"
}

# dask_wait_scheduler: sets dask_address once the scheduler file is written (bounded).
dask_scheduler_up() { # 0 when up (dask_address set), 2 when it died, else 1
	[ -s scheduler.json ] && dask_address=$(jq -r .address scheduler.json 2>/dev/null) &&
		[ -n "$dask_address" ] && [ "$dask_address" != null ] && return 0
	kill -0 "$dask_scheduler_pid" 2>/dev/null || return 2
	return 1
}
dask_scheduler_up_or_dead() { dask_scheduler_up; [ $? != 1 ]; }
dask_wait_scheduler() {
	LTV_WAIT_S=$DASK_WAIT_S wait_until dask_scheduler_up_or_dead
	dask_scheduler_up && return 0
	echo "dask-scheduler did not start" >&2
	tail -5 scheduler.log >&2
	return 1
}

# dask_start_worker NAME: one worker process (no nanny: the task runs in the
# process started here, whose PID is NAME_pid), one thread; log in NAME.log.
# It may start before the scheduler is up: it waits for the scheduler file.
dask_start_worker() {
	local name=$1
	dask-worker --scheduler-file scheduler.json --no-nanny --nthreads 1 --host 127.0.0.1 \
		--no-dashboard --name "$name" >"$name.log" 2>&1 &
	proc_track "$!"
	printf -v "${name}_pid" '%s' "$!"
}

# dask_wait_workers N: until the scheduler has N workers (bounded).
dask_workers_registered() { # N
	[ "$(grep -c 'Registered to' ./*.log 2>/dev/null | awk -F: '{ s += $2 } END { print s }')" -ge "$1" ]
}
dask_wait_workers() {
	local want=$1
	LTV_WAIT_S=$DASK_WAIT_S wait_until dask_workers_registered "$want" && return 0
	echo "only $(grep -l 'Registered to' ./*.log | wc -l) of $want dask workers registered" >&2
	return 1
}

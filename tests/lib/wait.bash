# Waiting for a condition instead of sleeping (sourced, not run). A test that
# sleeps a fixed time for another process to get somewhere fails on a loaded
# machine (CI: 2 cores shared with other jobs), where that can take many
# times longer than on a quiet one. So tests poll the condition itself, with a
# deadline generous enough for the worst load (LTV_WAIT_S, default 60 s) and
# only reached when something is really wrong.
[ -n "${LTV_WAIT_LOADED:-}" ] && return 0
LTV_WAIT_LOADED=1
LTV_WAIT_S=${LTV_WAIT_S:-60}

# wait_until CMD [ARGS...]: runs CMD every 0.1 s until it succeeds (returns 0)
# or LTV_WAIT_S seconds have passed (returns 1, CMD having failed last).
wait_until() {
	local end=$((SECONDS + LTV_WAIT_S))
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1
	done
	return 0
}

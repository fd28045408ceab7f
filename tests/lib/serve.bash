# Helpers for tests that start `ltvpipe serve` (sourced, not run): each
# server binds 127.0.0.1 on a free port (--port 0; the port is read from the
# "listening on" line), readiness is waited for with a deadline (LTV_WAIT_S,
# tests/lib/wait.bash), and every server started is stopped by PID in an EXIT
# trap, even when the test fails.
source "$(dirname "${BASH_SOURCE[0]}")/procs.bash"
source "$(dirname "${BASH_SOURCE[0]}")/wait.bash"
serve_stop() { proc_stop "$1"; }

# serve_start NAME [serve args...]: sets NAME_url and NAME_pid; logs in NAME.out / NAME.err.
serve_start() {
	local name=$1 pid url="" end=$((SECONDS + LTV_WAIT_S))
	shift
	"$LTVPIPE" serve --port 0 "$@" >"$name.out" 2>"$name.err" &
	pid=$!
	proc_track "$pid"
	while [ "$SECONDS" -lt "$end" ]; do
		url=$(sed -n 's|^listening on \(http://[^ ]*\)/ .*|\1|p' "$name.out")
		[ -n "$url" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$url" ]; then
		echo "server $name did not start" >&2
		tail -5 "$name.err" >&2
		return 1
	fi
	printf -v "${name}_url" '%s' "$url"
	printf -v "${name}_pid" '%s' "$pid"
}

# http METHOD URL [curl args...]: prints the status; the body is left in ./body.
# Requests may take LTV_WAIT_S: a loaded machine answers late, not wrongly.
http() {
	local method=$1 url=$2
	shift 2
	curl -s -m "$LTV_WAIT_S" -o body -w '%{http_code}' -X "$method" "$@" "$url"
}

# serving VERSION URL: the server at URL has swapped to model VERSION (/ready
# says so; ./body is overwritten). For wait_until after an alias move.
serving() {
	[ "$(http GET "$2/ready")" = 200 ] && [ "$(jq .model_version body)" = "$1" ]
}

# The error of ./body as "code field=F".
err_of() {
	jq -r '"\(.error.code) field=\(.error.field)"' body 2>/dev/null || echo "not a JSON error: $(head -c 200 body)"
}

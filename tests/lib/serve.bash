# Helpers for tests that start `ltvpipe serve` (sourced, not run): each
# server binds 127.0.0.1 on a free port (--port 0; the port is read from the
# "listening on" line), readiness is waited for in a bounded loop, and every
# server started is stopped by PID in an EXIT trap, even when the test fails.
source "$(dirname "${BASH_SOURCE[0]}")/procs.bash"
serve_stop() { proc_stop "$1"; }

# serve_start NAME [serve args...]: sets NAME_url and NAME_pid; logs in NAME.out / NAME.err.
serve_start() {
	local name=$1 pid url=""
	shift
	"$LTVPIPE" serve --port 0 "$@" >"$name.out" 2>"$name.err" &
	pid=$!
	proc_track "$pid"
	for _ in $(seq 1 150); do
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
http() {
	local method=$1 url=$2
	shift 2
	curl -s -m 20 -o body -w '%{http_code}' -X "$method" "$@" "$url"
}

# The error of ./body as "code field=F".
err_of() {
	jq -r '"\(.error.code) field=\(.error.field)"' body 2>/dev/null || echo "not a JSON error: $(head -c 200 body)"
}

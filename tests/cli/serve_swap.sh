# Hot swap under load: while wrk posts predictions (8 keep-alive
# connections), the production alias moves between versions 1 and 2 fifty
# times with `ltvpipe models promote`. After each move the test waits (with a
# deadline: tests/lib/wait.bash) until the server has swapped and served the
# new version to at least 5 of wrk's requests, then moves again: moves on a
# timer could be seen as one by a server the load delays, and a count of
# requests in a fixed time says how fast the machine is, not whether the
# server is right. No request may fail, every answer names the version that
# served it (header and body agree), both versions answer, and the server
# swaps exactly once per move.
set -u
. "$LTV_ROOT/tests/lib/serve.bash"
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err || exit 1
"$LTVPIPE" run $S --set lookalike.k=12 >run2.out 2>run2.err || exit 1
serve_start srv --set serve.watch_ms=20 --set serve.log_sample=0 --threads 2 || exit 1
app=$(sed -n 2p data/users.csv | cut -d, -f2)
export LTV_USER="{\"app\":\"$app\",\"rev_window\":2.5,\"age_days\":4,\"events_window\":9}"

# /metrics into ./metrics; then swaps_since_start and served_by VERSION (users predicted by it)
metrics() { curl -s -m "$LTV_WAIT_S" -o metrics "$srv_url/metrics"; }
swaps() { sed -n 's/^ltvpipe_model_swaps_total //p' metrics; }
served_by() {
	awk -v v="model_version=\"$1\"}" 'index($1, "ltvpipe_predictions_total{") == 1 && index($1, v) { n += $2 }
		END { print n + 0 }' metrics
}
# moved_to VERSION SWAPS SERVED: the server made SWAPS swaps and version VERSION served SERVED users
moved_to() { metrics && [ "$(swaps)" -ge "$2" ] && [ "$(served_by "$1")" -ge "$3" ]; }

# wrk runs until it is stopped below; -d bounds it only if the test dies (the EXIT
# trap stops it too). niced: it would take every core from the promotes.
nice -n 19 wrk -t2 -c8 -d900s --timeout "${LTV_WAIT_S}s" -s "$LTV_ROOT/tests/lib/swap.lua" "$srv_url/v1/predict" >wrk.out 2>&1 &
wrk_pid=$!
proc_track "$wrk_pid"
wait_until moved_to 1 0 5 || echo "wrk's requests did not reach the server"
moves=0; seen=0
for i in $(seq 1 50); do
	v=$(( i % 2 == 1 ? 2 : 1 ))
	metrics
	before=$(served_by "$v")
	"$LTVPIPE" models promote "$v" >promote.out 2>&1 && moves=$((moves + 1))
	wait_until moved_to "$v" "$i" $((before + 5)) || break # the counts below say where it stopped
	seen=$((seen + 1))
done
kill -INT "$wrk_pid" # wrk stops on SIGINT and reports what it saw
wait "$wrk_pid"
echo "wrk stopped after the moves"
echo "alias moves: $moves of 50"
echo "moves the server swapped at and served to wrk's requests: $seen of 50"
line=$(grep '^responses ' wrk.out)
set -- $line
echo "failed or without a version: $4"
echo "socket errors: ${12}"
echo "answered by version 1: $([ "$6" -gt 0 ] && echo yes || echo no), by version 2: $([ "$8" -gt 0 ] && echo yes || echo no), by another: ${10}"
metrics
echo "swaps seen by the server: $(swaps)"
echo "versions loaded (first + swaps): $(grep -c 'serving model version' srv.err)"
sed 's/^/  /' wrk.out >&2
exit 0

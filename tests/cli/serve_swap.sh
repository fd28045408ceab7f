# Hot swap under load: while wrk posts predictions (8 keep-alive
# connections), the production alias moves between versions 1 and 2 fifty
# times with `ltvpipe models promote`, 0.3 s apart (about 20 s on an idle
# machine; the loop is bounded at 50 moves and 90 s, then wrk is stopped). No request may fail, every
# answer names the version that served it (header and body agree), both
# versions answer, and the server swaps at each move.
set -u
. "$LTV_ROOT/tests/lib/serve.bash"
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err || exit 1
"$LTVPIPE" run $S --set lookalike.k=12 >run2.out 2>run2.err || exit 1
serve_start srv --set serve.watch_ms=20 --set serve.log_sample=0 --threads 2 || exit 1
app=$(sed -n 2p data/users.csv | cut -d, -f2)
export LTV_USER="{\"app\":\"$app\",\"rev_window\":2.5,\"age_days\":4,\"events_window\":9}"

wrk -t2 -c8 -d100s --timeout 5s -s "$LTV_ROOT/tests/lib/swap.lua" "$srv_url/v1/predict" >wrk.out 2>&1 &
wrk_pid=$!
sleep 1
started=$(date +%s)
moves=0
for i in $(seq 1 50); do
	v=$(( i % 2 == 1 ? 2 : 1 ))
	"$LTVPIPE" models promote "$v" >promote.out 2>&1 && moves=$((moves + 1))
	sleep 0.3
	[ $(( $(date +%s) - started )) -ge 90 ] && break
done
sleep 1
kill -INT "$wrk_pid" # wrk stops on SIGINT and reports what it saw
wait "$wrk_pid"
echo "wrk stopped after the moves"
echo "alias moves: $moves of 50"
line=$(grep '^responses ' wrk.out)
set -- $line
echo "requests > 1000: $([ "$2" -gt 1000 ] && echo yes || echo "no ($2)")"
echo "failed or without a version: $4"
echo "socket errors: ${12}"
echo "answered by version 1: $([ "$6" -gt 0 ] && echo yes || echo no), by version 2: $([ "$8" -gt 0 ] && echo yes || echo no), by another: ${10}"
http GET "$srv_url/metrics" >/dev/null
swaps=$(sed -n 's/^ltvpipe_model_swaps_total //p' body)
echo "swaps seen by the server: $([ "$swaps" -ge 45 ] && echo "at least 45" || echo "only $swaps")"
grep -c 'serving model version' srv.err | sed 's/^/versions loaded (first + swaps) >= 46: /' | awk '{ n = $NF; sub(/[0-9]+$/, n >= 46 ? "yes" : "no (" n ")") } 1'
sed 's/^/  /' wrk.out >&2
exit 0

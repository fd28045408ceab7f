# Hostile bodies (tests/fuzz/serve_fuzz.py) against ltvpipe serve: every
# answer a 4xx JSON error or a valid prediction, no 5xx, no hang, and the
# server alive afterwards with no sanitizer report. make test sends 1,500
# bodies; `make fuzz-serve` sends 10,000 to the SANITIZE=address,undefined
# build. SERVE_FUZZ_COUNT, SERVE_FUZZ_SECONDS and SERVE_FUZZ_SEED override.
# The time bound (900 s) and the wait for an answer (60 s) are far beyond what
# a loaded machine needs: the count of bodies sent is in the expected output.
set -u
. "$LTV_ROOT/tests/lib/serve.bash"
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err || exit 1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
serve_start srv --set serve.log_sample=0 --set serve.max_body_bytes=200000 --set serve.max_batch=50 || exit 1
app=$(sed -n 2p data/users.csv | cut -d, -f2)
count=${SERVE_FUZZ_COUNT:-1500}
python3 "$LTV_ROOT/tests/fuzz/serve_fuzz.py" --url "$srv_url" --app "$app" --count "$count" \
	--seconds "${SERVE_FUZZ_SECONDS:-900}" --timeout 60 --seed "${SERVE_FUZZ_SEED:-1}" >fuzz.out 2>fuzz.err
echo "fuzz exit $?"
sed -E 's/ in [0-9]+ s: [0-9]+ answered 200, [0-9]+ answered 4xx,/: answered,/' fuzz.out
head -5 fuzz.err >&2
kill -0 "$srv_pid" 2>/dev/null && echo "server alive after the bodies"
serve_stop "$srv_pid"
grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' srv.err && echo "sanitizer report in srv.err" || echo "no sanitizer report"
exit 0

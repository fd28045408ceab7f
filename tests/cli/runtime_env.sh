# The settings ltvpipe re-executes itself with (cli/main.c, ensure_runtime_env):
# OpenBLAS starts no spinning thread unless the user chose a number of threads,
# also when OMP_WAIT_POLICY, the other setting, was chosen already.
set -u
unset OPENBLAS_NUM_THREADS OMP_WAIT_POLICY
threads() { "$LTVPIPE" --version | sed -n 's/^  OpenBLAS .*(\([0-9]*\) threads\{0,1\})$/\1/p'; }
echo "default: $(threads) OpenBLAS thread"
echo "OMP_WAIT_POLICY set: $(OMP_WAIT_POLICY=PASSIVE threads) OpenBLAS thread"
n=$(OPENBLAS_NUM_THREADS=2 threads)
{ [ "$n" = 2 ] || { [ "$(nproc)" = 1 ] && [ "$n" = 1 ]; }; } && echo "OPENBLAS_NUM_THREADS=2 stays the user's"

# run, score and evaluate fill hundreds of MB once: glibc is asked for
# transparent huge pages under its heap (glibc.malloc.hugetlb=1), unless the
# user set that tunable; other tunables of the user's stay beside it.
unset GLIBC_TUNABLES
"$LTVPIPE" generate --users 200 --out data >/dev/null || exit 1
tunables() { "$LTVPIPE" run --only ingest --force --set run.log_level=debug 2>&1 |
	sed -n 's/.* runtime: GLIBC_TUNABLES=\([^ ]*\) .*/\1/p'; }
echo "run: $(tunables)"
echo "run, hugetlb=0 of the user's: $(GLIBC_TUNABLES=glibc.malloc.hugetlb=0 tunables)"
echo "run, another tunable of the user's: $(GLIBC_TUNABLES=glibc.malloc.arena_max=2 tunables)"

# Without run.memory_mb a run keeps every block it frees in malloc's heap for
# its next allocations (pipeline/runner.c, run_heap_setup); under a budget,
# whose checks read resident memory, big blocks are mapped apart and freed
# memory is handed back.
heap() { "$LTVPIPE" run --only ingest --force --set run.log_level=debug "$@" 2>&1 |
	sed -n 's/.* heap: //p'; }
echo "run heap: $(heap)"
echo "run heap, run.memory_mb=100000: $(heap --set run.memory_mb=100000)"

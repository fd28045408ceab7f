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

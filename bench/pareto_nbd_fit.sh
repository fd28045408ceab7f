#!/usr/bin/env bash
# usage: bench/pareto_nbd_fit.sh [USERS [REPS [PARETO_NBD_SOURCE [SETS]]]]
#
# Times pareto_nbd_fit on simulated weekly data (bench/pareto_nbd_fit.c):
# USERS customers (default 15750) per parameter set, REPS fits each
# (default 1); SETS picks parameter sets by digit (default all, "0123"). PARETO_NBD_SOURCE (default src/models/pareto_nbd.c) lets an
# older copy of the model be timed with the same harness, e.g.
#   git show HEAD:src/models/pareto_nbd.c > /tmp/old.c
#   bench/pareto_nbd_fit.sh 15750 1 /tmp/old.c
# Session 16 (value-only quadrature, tail memo): set 3 0.715 -> 0.471 s with
#   git show b6510bd:src/models/pareto_nbd.c > /tmp/old.c; bench/pareto_nbd_fit.sh 15750 1 /tmp/old.c
#   against bench/pareto_nbd_fit.sh 15750 1 (the same fitted parameters printed).
# Builds into a scratch directory; touches nothing in the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-15750}
reps=${2:-1}
src=${3:-src/models/pareto_nbd.c}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Iinclude -o "$out/pnbd_bench" bench/pareto_nbd_fit.c \
	"$src" src/models/mle.c src/blob.c src/common.c -lgsl -lopenblas -lm -lpthread
"$out/pnbd_bench" "$users" "$reps" "${4:-0123}"

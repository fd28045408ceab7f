#!/usr/bin/env bash
# usage: bench/gbt_forest.sh [USERS] [ROWS]   (make bench-forest)
#
# Trains a model on USERS generated users (default 20000) in a scratch
# directory and runs bench/gbt_forest_bench.c on its hurdle and multiplier
# trees: whether each predicts natively, how many of ROWS predictions
# (default 5000) differ from XGBoost's (must be 0; exit 1 otherwise), and
# the time a call of one row and a row of a large call take both ways.
# REGISTRY=PATH benches that registry's models instead of training (e.g. a
# 1,000,000-user run's models/registry.sqlite); BENCH=PATH another build's
# gbt_forest_bench, for before/after.
set -uo pipefail
users=${1:-20000}
rows=${2:-5000}
root=$(cd "$(dirname "$0")/.." && pwd)
ltvpipe="${LTVPIPE:-$root/ltvpipe}"
bench="${BENCH:-$root/${BUILD:-build}/bench/gbt_forest_bench}"
if [ -n "${REGISTRY:-}" ]; then
	echo "native trees against XGBoost, $REGISTRY, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
	exec "$bench" "$REGISTRY" "$rows" 1
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvforest-bench-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cd "$scratch" || exit 1
"$ltvpipe" generate --users "$users" --out data >/dev/null || exit 1
"$ltvpipe" run >run.out 2>run.err || { tail -5 run.err; exit 1; }
echo "native trees against XGBoost $("$ltvpipe" --version | sed -n 's/^ *XGBoost //p'), $users users trained, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo
"$bench" models/registry.sqlite "$rows" 1

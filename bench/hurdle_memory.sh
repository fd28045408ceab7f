#!/usr/bin/env bash
# usage: bench/hurdle_memory.sh USERS LIMIT_MB [RUNS]
#
# What run.memory_mb trades: hurdle on its own (`run --only hurdle`) on one
# generated sample (USERS users, `generate --order time`), with no memory
# limit (its horizons side by side, one core each) and with
# run.memory_mb=LIMIT_MB (a horizon starts beside another only while the
# resident memory plus hurdle's estimate fits), RUNS times each (default 1),
# alternating which goes first. Prints, per run, CPU seconds (user + system),
# wall seconds and peak RSS (GNU time), then whether hurdle's content hash is
# the same both ways (exit 1 if not).
#
# Ingest, features and tiers run once, with the same binary (./ltvpipe or
# LTVPIPE); each hurdle run starts from a copy of that registry. Read the CPU
# and RSS columns on a shared machine: the wall mostly measures neighbours.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || bench_usage "USERS LIMIT_MB [RUNS]"
users=$1 limit=$2 runs=${3:-1}
bin=$(bench_binary)
config=$root/config/ltvpipe.yaml
bench_need_time
bench_scratch hurdle-memory
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

cd "$scratch"
"$bin" generate --users "$users" --order time --out data >/dev/null
"$bin" run --config "$config" --to tiers --quiet >prepare.log 2>&1 ||
	{ echo "bench: ingest .. tiers failed:" >&2; tail -20 prepare.log >&2; exit 1; }
cp models/registry.sqlite prepared.sqlite
echo "bench: $users users, hurdle alone, run.memory_mb 0 against $limit; load $(cut -d' ' -f1-3 /proc/loadavg)"

hurdle() { # hurdle LIMIT RUN: one hurdle run from the prepared registry
	rm -f models/registry.sqlite-wal models/registry.sqlite-shm
	cp prepared.sqlite models/registry.sqlite
	/usr/bin/time -f '%e %U %S %M' -o time "$bin" run --config "$config" --only hurdle \
		--set "run.memory_mb=$1" --quiet >hurdle.log 2>&1 ||
		{ echo "bench: hurdle (run.memory_mb=$1) failed:" >&2; tail -20 hurdle.log >&2; exit 1; }
	read -r e u s m <time
	printf 'bench: run.memory_mb=%-6s run %d: %7.2f s CPU, %8.2f s wall, %7.1f MB peak RSS\n' \
		"$1" "$2" "$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')" "$e" \
		"$(awk -v m="$m" 'BEGIN { print m / 1024 }')"
	sqlite3 models/registry.sqlite "select content_hash from artefacts where name = 'hurdle'" >"hash.$1"
}
bench_alternate "$runs" hurdle 0 "$limit"
if cmp -s hash.0 "hash.$limit"; then
	echo "bench: hurdle content hash identical ($(cat hash.0))"
else
	echo "bench: hurdle content hash DIFFERENT: $(cat hash.0) against $(cat "hash.$limit")"
	exit 1
fi

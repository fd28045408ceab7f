#!/usr/bin/env bash
# usage: bench/stage_only_ab.sh STAGE BIN_BEFORE BIN_AFTER TRAINED_MODELS_DIR RUNS
#
# `run --only STAGE --force` (default run.jobs: the machine's cores) of two
# binaries, RUNS times each, alternating which goes first, each on a fresh
# copy of a trained registry (TRAINED_MODELS_DIR, e.g. a cold run's models/
# at 1,000,000 users; only read). Prints each run's CPU seconds (user +
# system), peak RSS and wall, the medians, and STAGE's content hash on each
# side against the trained registry's (exit 1 if any differs). On a shared
# machine read the CPU seconds, not the walls:
#   bench/stage_only_ab.sh hurdle /tmp/ltvpipe.base ./ltvpipe /work/r1m/models 3
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 4 ] || bench_usage "STAGE BIN_BEFORE BIN_AFTER TRAINED_MODELS_DIR [RUNS]"
stage=$1 trained=$4 runs=${5:-3}
declare -A bin=([before]=$(bench_binary "$2") [after]=$(bench_binary "$3"))
bench_need_time
bench_scratch stageab
query="select content_hash from artefacts where name = '$stage' order by id desc limit 1"
want=$(sqlite3 "$trained/registry.sqlite" "$query")
bad=0
one() { # side
	local dir=$scratch/$1 cpu hash
	rm -rf "$dir" && mkdir -p "$dir" && cp -r "$trained" "$dir/models" && chmod -R u+w "$dir/models"
	(cd "$dir" && OMP_WAIT_POLICY=PASSIVE /usr/bin/time -f '%U %S %M %e' -o time \
		"${bin[$1]}" run --config "$root/config/ltvpipe.yaml" --only "$stage" --force --quiet \
		>run.log 2>&1) || { tail -20 "$dir/run.log" >&2; exit 1; }
	cpu=$(bench_cpu_seconds "$dir/time")
	hash=$(sqlite3 "$dir/models/registry.sqlite" "$query")
	[ "$hash" = "$want" ] || bad=1
	awk -v side="$1" -v cpu="$cpu" -v hash="$hash" '{ printf "bench: %-6s %6.2f s CPU, %7.1f MB peak RSS, %6.2f s wall, %s\n",
		side, cpu, $3 / 1024, $4, hash }' "$dir/time"
	echo "$1 $cpu $(awk '{ print $3 / 1024, $4 }' "$dir/time")" >>"$scratch/all"
}
bench_alternate "$runs" one
awk "$bench_awk_median"'
	{ n[$1]++; c[$1, n[$1]] = $2; m[$1, n[$1]] = $3; w[$1, n[$1]] = $4 }
	END {
		for (s in n) {
			for (i = 1; i <= n[s]; i++) { a[i] = c[s, i]; b[i] = m[s, i]; d[i] = w[s, i] }
			printf "bench: %-6s median %.2f s CPU, %.1f MB peak RSS, %.2f s wall\n",
				s, median(a, n[s]), median(b, n[s]), median(d, n[s])
		}
	}' "$scratch/all" | sort
if ((bad)); then echo "$stage hash DIFFERS from the trained registry's ($want)"; exit 1; fi
echo "$stage hash identical to the trained registry's on every run ($want)"

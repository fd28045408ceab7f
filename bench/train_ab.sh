#!/usr/bin/env bash
# usage: bench/train_ab.sh BIN_BEFORE BIN_AFTER USERS RUNS [ENV_AFTER...]
#
# The cold training pipeline of two binaries on one generated sample (USERS
# users, `generate --order time`), RUNS times each, alternating which goes
# first: `run --only ingest`, then `run` (features … calibrate) on a fresh
# registry, as bench/sidebyside.sh times ltvpipe. Prints, per side, the CPU
# seconds (user + system, GNU time) and peak RSS of the `run` after ingest,
# its minor page faults, its wall and hurdle's own seconds (the model wave's
# critical path: read them only on a quiet machine), and the medians; then
# whether every artefact's content hash is the same on both sides (exit 1 if
# not).
#
# PRIO="chrt -f 1" runs each `run` at a real-time priority, so that on a
# shared machine its wall is about a quiet machine's; then the median of the
# pairs' differences (after - before, each pair run back to back) of wall
# and CPU is printed too (and always those of system CPU, minor faults and
# peak RSS).
# CPU seconds, not wall: on a shared machine the wall mostly measures the
# neighbours. CONFIG_BEFORE (default: the repository's config/ltvpipe.yaml)
# is the before side's configuration, for a binary older than keys the
# shipped file now has (e.g. `git show OLD:config/ltvpipe.yaml`).
# INGESTED=DIR (a models/ directory holding only an ingest of DATA=DIR's
# files) skips the generate and each run's ingest: each run starts from a
# copy of it (USERS is then only a label). The system seconds are printed
# too (writes into the page cache show there).
# STAGES="features tiers calibrate" also collects those stages' own seconds
# (the run's "STAGE: done (v1) in S s" lines, timed inside the process, so
# no sampler or stamper can come late) and prints each one's medians and
# paired differences.
# ENV_AFTER (NAME=VALUE ...) is set for the after side only, to
# try an environment setting (e.g. MALLOC_MMAP_THRESHOLD_=33554432) with one
# binary: pass the same binary twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 4 ] || bench_usage "BIN_BEFORE BIN_AFTER USERS RUNS [ENV_AFTER...]"
before=$(realpath "$1") after=$(realpath "$2") users=$3 runs=$4
shift 4
env_after=("$@")
bench_need_time
bench_scratch train-ab
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
read -r -a prio <<<"${PRIO:-}"
if [ -n "${INGESTED:-}" ]; then
	ln -s "$(realpath "${DATA:?DATA=DIR with INGESTED}")" "$scratch/data"
else
	"$after" generate --users "$users" --order time --out "$scratch/data" >/dev/null
fi
echo "bench: $users users, $runs runs each; load $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A val
cold() { # cold SIDE RUN: one cold pipeline; appends cpu, rss, faults under SIDE
	local side=$1 bin=$before dir=$scratch/$1.$2
	local -a envs=()
	local config=${CONFIG_BEFORE:-$root/config/ltvpipe.yaml}
	[ "$side" = after ] && { bin=$after; envs=("${env_after[@]}"); config=$root/config/ltvpipe.yaml; }
	mkdir "$dir" && ln -s ../data "$dir/data"
	[ -z "${INGESTED:-}" ] || cp -r "$INGESTED" "$dir/models"
	(cd "$dir" && { [ -n "${INGESTED:-}" ] ||
		env "${envs[@]}" "$bin" run --config "$config" --only ingest >ingest.log 2>&1; } &&
		env "${envs[@]}" "${prio[@]}" /usr/bin/time -f '%U %S %M %R %e' -o time "$bin" run \
			--config "$config" >run.log 2>&1) ||
		{ echo "bench: $side run $2 failed:" >&2; tail -20 "$dir/run.log" >&2; exit 1; }
	read -r u s m f wall <"$dir/time"
	local cpu rss hurdle
	cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
	rss=$(awk -v m="$m" 'BEGIN { printf "%.1f", m / 1024 }')
	hurdle=$(awk '/^hurdle: done/ { print $(NF - 1) }' "$dir/run.log")
	printf 'bench: %-6s run %d: %6.2f s CPU (%5.2f system), %7.1f MB peak RSS, %7d minor faults, %6.2f s wall, hurdle %s s\n' \
		"$side" "$2" "$cpu" "$s" "$rss" "$f" "$wall" "${hurdle:-?}"
	val[cpu:$side]+=" $cpu" val[sys:$side]+=" $s" val[rss:$side]+=" $rss" val[flt:$side]+=" $f"
	val[wall:$side]+=" $wall" val[hurdle:$side]+=" ${hurdle:-0}"
	for stage in ${STAGES:-}; do
		val[$stage:$side]+=" $(awk -v s="$stage:" '$1 == s && $2 == "done" { print $(NF - 1) }' \
			"$dir/run.log")"
	done
	sqlite3 -separator ' ' "$dir/models/registry.sqlite" \
		"select name, content_hash from artefacts order by name" >"$scratch/$side.hashes"
}
med() { bench_med "${val[$1]}" %.2f; } # med KEY
bench_alternate "$runs" cold
for side in before after; do
	printf 'bench: %-6s median %6s s CPU (%5s system), %7s MB peak RSS, %9s minor faults, %6s s wall, hurdle %s s\n' \
		"$side" "$(med "cpu:$side")" "$(med "sys:$side")" "$(med "rss:$side")" "$(med "flt:$side")" \
		"$(med "wall:$side")" "$(med "hurdle:$side")"
done
paired() { bench_paired "${val[$1:before]}" "${val[$1:after]}" %+.2f; } # paired KEY: run r of each side ran back to back
echo "bench: paired differences (after - before), medians: $(paired cpu) s CPU, $(paired wall) s wall${PRIO:+ ($PRIO)}"
echo "bench: paired differences (after - before), medians: $(paired sys) s system, $(paired flt) minor faults, $(paired rss) MB peak RSS"
for stage in ${STAGES:-}; do
	printf 'bench: %-10s own seconds, median before %s, after %s, paired %s (%s -> %s)\n' "$stage" \
		"$(med "$stage:before")" "$(med "$stage:after")" "$(paired "$stage")" \
		"$(echo ${val[$stage:before]})" "$(echo ${val[$stage:after]})"
done
echo "bench: load $(cut -d' ' -f1-3 /proc/loadavg) at end"
join "$scratch/before.hashes" "$scratch/after.hashes" |
	awk '{ same = $2 == $3 ? "identical" : "DIFFERENT"; bad += $2 != $3
	       printf "%-11s %s %s %s\n", $1, $2, $3, same } END { exit bad > 0 }'

#!/usr/bin/env bash
# usage: bench/bench.sh USERS RUNS
#
# Benchmarks the pipeline stage by stage on a synthetic sample of USERS users
# (`make bench` runs 1000000 users, 3 runs). In a scratch directory under
# ${TMPDIR:-/tmp}: `ltvpipe generate` once, then RUNS times, each on a fresh
# registry, `ltvpipe run --only S` for every stage S in STAGES, in order, and
# finally a no-op `ltvpipe run` (every stage must be up to date). Prints the
# median over runs of each stage's wall time, throughput and peak RSS, and
# appends the same table to bench/results.md under a heading naming the date
# and commit, so figures accumulate for comparison.
#
# STAGES defaults to the stages `ltvpipe --help` lists under "stages (ltvpipe
# run):", so a stage added to the stage table is benchmarked with no change
# here. Set STAGES="ingest features" to time a subset (in pipeline order).
# Throughput is users/s for every stage, plus events/s for ingest (event
# rows = lines of events.csv minus the header); a stage needing another rate
# gets a line in stage_rates().
#
# Environment: LTVPIPE (binary, default ./ltvpipe of this repo), STAGES,
# BENCH_RESULTS (default bench/results.md), KEEP_SCRATCH=1 to keep the
# scratch directory. Exits non-zero if any step fails, after printing the
# failing command's output.
set -euo pipefail

usage() {
	echo "usage: bench/bench.sh USERS RUNS   (e.g. bench/bench.sh 1000000 3)" >&2
	exit 2
}
[ $# -eq 2 ] || usage
users=$1 runs=$2
[[ $users =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ ]] || usage

root=$(cd "$(dirname "$0")/.." && pwd)
src_bin=${LTVPIPE:-$root/ltvpipe}
results=${BENCH_RESULTS:-$root/bench/results.md}
[ -x "$src_bin" ] || { echo "bench: no ltvpipe binary at '$src_bin'; run 'make' first" >&2; exit 2; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvpipe-bench.XXXXXX")
cleanup() {
	if [ "${KEEP_SCRATCH:-0}" = 1 ]; then
		echo "bench: scratch directory kept: $scratch" >&2
	else
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT

# A private copy, so a rebuild of ./ltvpipe during a long bench cannot change
# the binary half way through.
bin=$scratch/ltvpipe
cp "$src_bin" "$bin"
config_args=()
[ -f "$root/config/ltvpipe.yaml" ] && config_args=(--config "$root/config/ltvpipe.yaml")

if [ -z "${STAGES:-}" ]; then
	STAGES=$("$bin" --help | awk '/^stages \(ltvpipe run\):/ { on = 1; next }
				      on && NF == 0 { exit }
				      on { print $1 }' | tr '\n' ' ')
fi
read -r -a stages <<<"$STAGES"
[ ${#stages[@]} -gt 0 ] || { echo "bench: no stages found in 'ltvpipe --help'" >&2; exit 1; }

have_gnu_time=0
[ -x /usr/bin/time ] && /usr/bin/time -f '%e' true 2>/dev/null && have_gnu_time=1

now() { date +%s.%N; }

# Runs "$@" in the scratch dir; sets step_wall (s) and step_rss_mb ("" when
# unknown). On failure prints the command and its output, and exits 1.
step_wall= step_rss_mb=
timed() {
	local label=$1; shift
	local log=$scratch/step.log tfile=$scratch/step.time t0 t1 rc=0

	t0=$(now)
	if [ $have_gnu_time = 1 ]; then
		/usr/bin/time -f '%M' -o "$tfile" "$@" >"$log" 2>&1 || rc=$?
	else
		"$@" >"$log" 2>&1 || rc=$?
	fi
	t1=$(now)
	if [ $rc -ne 0 ]; then
		echo "bench: $label failed (exit $rc): $*" >&2
		sed 's/^/  | /' "$log" >&2
		exit 1
	fi
	step_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	step_rss_mb=
	if [ $have_gnu_time = 1 ]; then
		step_rss_mb=$(awk 'END { if ($1 ~ /^[0-9]+$/) printf "%.1f", $1 / 1024 }' "$tfile")
	fi
}

# The stage's own record of peak RSS, when GNU time is missing.
registry_rss_mb() {
	sqlite3 models/registry.sqlite \
		"select printf('%.1f', json_extract(timings, '\$.peak_rss_mb')) from artefacts
		 where name = '$1' order by id desc limit 1" 2>/dev/null || true
}

# Seconds the stage body itself took (from its timings JSON): wall minus this
# is process start, config, registry open and fingerprinting.
registry_seconds() {
	sqlite3 models/registry.sqlite \
		"select printf('%.3f', json_extract(timings, '\$.seconds')) from artefacts
		 where name = '$1' order by id desc limit 1" 2>/dev/null || true
}

# Throughput columns of a stage: "users/s events/s" ("-" where not measured).
stage_rates() {
	local stage=$1 wall=$2
	case $stage in
	ingest) awk -v u="$users" -v e="$events" -v w="$wall" 'BEGIN { printf "%.0f %.0f", u / w, e / w }' ;;
	*) awk -v u="$users" -v w="$wall" 'BEGIN { printf "%.0f -", u / w }' ;;
	esac
}

median() {
	printf '%s\n' "$@" | awk '$1 != "" && $1 != "-"' | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "-"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			print m }'
}

fmt() { # number with a fixed precision, "-" passes through
	[ "$2" = - ] && { echo -; return; }
	awk -v x="$2" -v p="$1" 'BEGIN { printf "%.*f", p, x }'
}

cd "$scratch"
model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
machine="$(nproc) CPUs, ${model:-unknown CPU}, $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "bench: $users users, $runs runs, stages: ${stages[*]}"
echo "bench: $machine; scratch $scratch"

timed generate "$bin" generate --users "$users" --out data
gen_wall=$step_wall
events=$(($(wc -l <data/events.csv) - 1))
echo "bench: generated $users users, $events events in ${gen_wall} s"

declare -A wall rate_u rate_e rss inner
for ((r = 1; r <= runs; r++)); do
	rm -rf models logs
	for s in "${stages[@]}"; do
		timed "run $r: stage $s" "$bin" run "${config_args[@]}" --only "$s"
		if ! grep -q "^$s: done" "$scratch/step.log"; then
			echo "bench: run $r: stage $s did not run on a fresh registry:" >&2
			sed 's/^/  | /' "$scratch/step.log" >&2
			exit 1
		fi
		[ -n "$step_rss_mb" ] || step_rss_mb=$(registry_rss_mb "$s")
		read -r ru re <<<"$(stage_rates "$s" "$step_wall")"
		wall[$s]+=" $step_wall" rate_u[$s]+=" $ru" rate_e[$s]+=" $re"
		rss[$s]+=" ${step_rss_mb:--}" inner[$s]+=" $(registry_seconds "$s")"
		printf 'bench: run %d/%d %-10s %8.2f s  %s MB\n' "$r" "$runs" "$s" "$step_wall" "${step_rss_mb:--}"
	done
	timed "run $r: no-op rerun" "$bin" run "${config_args[@]}"
	if grep -v ': up to date' "$scratch/step.log" | grep -q '^[a-z_]*: \(done\|would run\)'; then
		echo "bench: run $r: the no-op rerun ran a stage; it should find every stage up to date:" >&2
		sed 's/^/  | /' "$scratch/step.log" >&2
		exit 1
	fi
	wall[noop]+=" $step_wall" rss[noop]+=" ${step_rss_mb:--}"
	printf 'bench: run %d/%d %-10s %8.2f s  %s MB\n' "$r" "$runs" "no-op run" "$step_wall" "${step_rss_mb:--}"
done

# Commit of the tree benchmarked, read from .git without running git.
commit=unknown
if [ -f "$root/.git/HEAD" ]; then
	head=$(cat "$root/.git/HEAD")
	if [[ $head == ref:* ]]; then
		ref=${head#ref: }
		if [ -f "$root/.git/$ref" ]; then
			head=$(cat "$root/.git/$ref")
		else
			head=$(awk -v r="$ref" '$2 == r { print $1 }' "$root/.git/packed-refs" 2>/dev/null || true)
		fi
	fi
	[[ $head =~ ^[0-9a-f]{7,} ]] && commit=${head:0:7}
fi

table=$scratch/table.md
{
	echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — commit $commit — $users users, $runs runs"
	echo
	echo "Machine: $machine. Data: $users users, $events events (generate: $gen_wall s)."
	echo "Median over $runs runs, each on a fresh registry; wall = whole \`ltvpipe run --only STAGE\`"
	echo "process, in-stage = the stage body's own time from its timings record."
	echo
	echo "| stage | wall s | in-stage s | users/s | events/s | peak RSS MB |"
	echo "|---|---:|---:|---:|---:|---:|"
	for s in "${stages[@]}"; do
		read -r -a w <<<"${wall[$s]}"
		read -r -a u <<<"${rate_u[$s]}"
		read -r -a e <<<"${rate_e[$s]}"
		read -r -a m <<<"${rss[$s]}"
		read -r -a i <<<"${inner[$s]}"
		printf '| %s | %s | %s | %s | %s | %s |\n' "$s" "$(fmt 2 "$(median "${w[@]}")")" \
			"$(fmt 2 "$(median "${i[@]}")")" "$(fmt 0 "$(median "${u[@]}")")" \
			"$(fmt 0 "$(median "${e[@]}")")" "$(fmt 0 "$(median "${m[@]}")")"
	done
	read -r -a w <<<"${wall[noop]}"
	read -r -a m <<<"${rss[noop]}"
	printf '| no-op `run` (all up to date) | %s | - | - | - | %s |\n' \
		"$(fmt 2 "$(median "${w[@]}")")" "$(fmt 0 "$(median "${m[@]}")")"
	echo
} >"$table"

echo
cat "$table"
mkdir -p "$(dirname "$results")"
[ -s "$results" ] || printf '# ltvpipe benchmark results\n\nAppended by bench/bench.sh (make bench); newest last.\n\n' >"$results"
cat "$table" >>"$results"
echo "bench: appended to $results"

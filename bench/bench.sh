#!/usr/bin/env bash
# usage: bench/bench.sh USERS RUNS
#
# Benchmarks ltvpipe on a synthetic sample of USERS users (`make bench` runs
# 1000000 users, 3 runs) and reports the median over RUNS runs of:
#
#  1. every stage on its own: wall seconds, the stage body's own seconds (its
#     timings record), throughput (users/s; events/s too for ingest) and peak
#     RSS. Each stage is timed as `ltvpipe run --only S --force` once the full
#     pipeline exists, so each number is that one stage. Ingest is the
#     exception: on a loaded registry a forced ingest skips files it has
#     already loaded (by design), so it is timed as `run --only ingest` on the
#     run's fresh registry, before the rest of the pipeline is built.
#  2. the training run (stages TRAIN_FROM..TRAIN_TO, default hurdle to the
#     last stage) forced with `--set run.jobs=1` and with the default jobs
#     (0 = all cores), from the same features; the jobs=1 / all-cores wall
#     ratio is taken within each run (the two runs back to back, their order
#     alternating between runs) and its median reported, which holds up better
#     than a ratio of medians on a shared, noisy machine. The newest
#     artefact's content_hash of every training stage is compared between the
#     two settings: "identical", or the differing stages, loudly (a difference
#     does not fail the bench).
#  3. scoring: `ltvpipe score --output F` from the registry, and `ltvpipe
#     score --users U --events E --output F` from the full generated CSV files
#     (they are ingested into score's scratch registry): wall, users scored
#     (data rows of F) per second, input users per second, peak RSS.
#  4. a no-op `ltvpipe run` right after the full pipeline (every stage must be
#     up to date), and the cold full pipeline after ingest.
#
# Each run starts from a fresh registry. Prints one table and appends it to
# bench/results.md with the date, commit (read from .git, no git command) and
# machine. Peak RSS comes from GNU /usr/bin/time when present, else from the
# stage's timings record in the registry (stages only).
#
# STAGES defaults to the stages `ltvpipe --help` lists under "stages (ltvpipe
# run):", so a new stage is benchmarked with no change here; STAGES="ingest
# features" times a subset (pipeline order). A stage needing another rate than
# users/s gets a line in stage_rates().
#
# The sample is generated with `--order time` (events ordered by time across
# users, as an export of an events table is, the harder case for ingest);
# ORDER=user benchmarks generate's per-user order instead.
#
# Environment: LTVPIPE (binary, default ./ltvpipe of this repo), ORDER, STAGES,
# TRAIN_FROM/TRAIN_TO (training range for item 2), STEP_TIMEOUT (seconds per
# command, default 3600), BENCH_RESULTS (default bench/results.md),
# KEEP_SCRATCH=1 to keep the scratch directory. If generating the data or
# building the pipeline fails, the bench stops at once. Any other failing
# step (a forced stage, a training run, scoring) is printed with its output,
# shown as FAILED in the table, and makes the bench exit 1 after the table is
# written.
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
step_timeout=${STEP_TIMEOUT:-3600}
[ -x "$src_bin" ] || { echo "bench: no ltvpipe binary at '$src_bin'; run 'make' first" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "bench: needs the sqlite3 command-line tool" >&2; exit 2; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvpipe-bench.XXXXXX")
cleanup() {
	if [ "${KEEP_SCRATCH:-0}" = 1 ]; then
		echo "bench: scratch directory kept: $scratch" >&2
	else
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT

# Commit of the tree, read from .git without running git: at the start (when
# the binary is copied) and again at the end, to flag a commit made meanwhile.
read_commit() {
	local head ref
	[ -f "$root/.git/HEAD" ] || { echo unknown; return; }
	head=$(cat "$root/.git/HEAD")
	if [[ $head == ref:* ]]; then
		ref=${head#ref: }
		if [ -f "$root/.git/$ref" ]; then
			head=$(cat "$root/.git/$ref")
		else
			head=$(awk -v r="$ref" '$2 == r { print $1 }' "$root/.git/packed-refs" 2>/dev/null || true)
		fi
	fi
	if [[ $head =~ ^[0-9a-f]{7,} ]]; then echo "${head:0:7}"; else echo unknown; fi
}
commit=$(read_commit)
bin_built=$(date -u -r "$src_bin" '+%Y-%m-%d %H:%M UTC')

# A private copy, so a rebuild of ./ltvpipe during a long bench cannot change
# the binary half way through.
bin=$scratch/ltvpipe
cp "$src_bin" "$bin"
config_args=()
[ -f "$root/config/ltvpipe.yaml" ] && config_args=(--config "$root/config/ltvpipe.yaml")

all_stages=$("$bin" --help | awk '/^stages \(ltvpipe run\):/ { on = 1; next }
				  on && NF == 0 { exit }
				  on { print $1 }' | tr '\n' ' ')
read -r -a all <<<"$all_stages"
[ ${#all[@]} -gt 0 ] || { echo "bench: no stages found in 'ltvpipe --help'" >&2; exit 1; }
read -r -a stages <<<"${STAGES:-$all_stages}"
for s in "${stages[@]}"; do
	[[ " $all_stages " == *" $s "* ]] || { echo "bench: STAGES: unknown stage '$s'" >&2; exit 2; }
done
train_from=${TRAIN_FROM:-hurdle}
train_to=${TRAIN_TO:-${all[${#all[@]} - 1]}}
train=()
on=0
for s in "${all[@]}"; do
	[ "$s" = "$train_from" ] && on=1
	[ $on = 1 ] && train+=("$s")
	[ "$s" = "$train_to" ] && [ $on = 1 ] && { on=2; break; }
done
[ $on = 2 ] || { echo "bench: no stage range '$train_from'..'$train_to' in: $all_stages" >&2; exit 2; }
train_sql=$(printf "'%s'," "${train[@]}")
train_sql=${train_sql%,}

have_gnu_time=0
[ -x /usr/bin/time ] && /usr/bin/time -f '%e %M' -o /dev/null true 2>/dev/null && have_gnu_time=1

now() { date +%s.%N; }
failures=()

# timed LABEL CMD...: runs CMD in the scratch dir (with a timeout) and sets
# step_wall (s) and step_rss_mb ("" when unknown). Returns CMD's exit status;
# on failure prints the command and its output and records the failure.
step_wall= step_rss_mb=
timed() {
	local label=$1; shift
	local log=$scratch/step.log tfile=$scratch/step.time t0 t1 rc=0

	: >"$tfile"
	t0=$(now)
	if [ $have_gnu_time = 1 ]; then
		/usr/bin/time -f '%e %M' -o "$tfile" timeout "$step_timeout" "$@" >"$log" 2>&1 || rc=$?
	else
		timeout "$step_timeout" "$@" >"$log" 2>&1 || rc=$?
	fi
	t1=$(now)
	step_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	step_rss_mb=
	if [ $have_gnu_time = 1 ]; then
		step_rss_mb=$(awk '$1 ~ /^[0-9.]+$/ && $2 ~ /^[0-9]+$/ { printf "%.1f", $2 / 1024 }' "$tfile")
	fi
	if [ $rc -ne 0 ]; then
		local why="exit $rc"
		[ $rc -eq 124 ] && why="timed out after ${step_timeout} s"
		echo "bench: !!! $label FAILED ($why after ${step_wall} s): ${*/#$scratch\//}" >&2
		grep -v '^Command exited with non-zero status' "$log" | tail -n 40 | sed 's/^/  | /' >&2
		failures+=("$label: $why")
		return 1
	fi
	return 0
}

# As timed, but the bench cannot go on without this step.
must() {
	timed "$@" || { echo "bench: cannot continue without this step" >&2; exit 1; }
}

# The newest artefact's timings field F (seconds, peak_rss_mb) of stage $1.
registry_timing() {
	sqlite3 models/registry.sqlite \
		"select printf('%.3f', json_extract(timings, '\$.$2')) from artefacts
		 where name = '$1' order by id desc limit 1" 2>/dev/null || true
}

# "name hash" of the newest artefact of each training stage.
train_hashes() {
	sqlite3 -separator ' ' models/registry.sqlite \
		"select name, content_hash from artefacts where id in
		 (select max(id) from artefacts where name in ($train_sql) group by name) order by name"
}

# Throughput of a stage: "users/s events/s" ("-" where not measured).
stage_rates() {
	local stage=$1 wall=$2
	case $stage in
	ingest) awk -v u="$users" -v e="$events" -v w="$wall" 'BEGIN { printf "%.0f %.0f", u / w, e / w }' ;;
	*) awk -v u="$users" -v w="$wall" 'BEGIN { printf "%.0f -", u / w }' ;;
	esac
}

median() {
	printf '%s\n' "$@" | awk '$1 ~ /^[0-9.eE+-]+$/ && $1 != "-"' | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "-"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			print m }'
}

fmt() { # number with a fixed precision, "-" passes through
	[ "$2" = - ] && { echo -; return; }
	awk -v x="$2" -v p="$1" 'BEGIN { printf "%.*f", p, x }'
}

# med KEY PRECISION: median of the values collected under KEY, formatted.
declare -A val
add() { val[$1]+=" $2"; }
med() {
	local -a v
	read -r -a v <<<"${val[$1]:-}"
	[ ${#v[@]} -gt 0 ] || { echo -; return; }
	fmt "$2" "$(median "${v[@]}")"
}
rate() { # users / wall
	[ "$2" = - ] && { echo -; return; }
	awk -v n="$1" -v w="$2" 'BEGIN { if (w > 0) printf "%.0f", n / w; else print "-" }'
}
data_rows() { # lines of a CSV minus its header
	if [ -f "$1" ]; then awk 'END { print (NR > 0 ? NR - 1 : 0) }' "$1"; else echo -; fi
}

run_cmd=("$bin" run "${config_args[@]}")

cd "$scratch"
model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
ncpu=$(nproc)
machine="$ncpu CPUs (nproc), ${model:-unknown CPU}, $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: $users users, $runs runs, stages: ${stages[*]}; training range: ${train[*]}"
echo "bench: $machine; load average $load_start; scratch $scratch"
echo "bench: binary $src_bin built $bin_built; HEAD $commit"
[ $have_gnu_time = 1 ] || echo "bench: no GNU /usr/bin/time: peak RSS from the stages' timings records only"

event_order=${ORDER:-time}
[[ $event_order == time || $event_order == user ]] || { echo "bench: ORDER must be 'time' or 'user'" >&2; exit 2; }
must generate "$bin" generate --users "$users" --order "$event_order" --out data
gen_wall=$step_wall
events=$(($(wc -l <data/events.csv) - 1))
echo "bench: generated $users users, $events events (events in $event_order order) in ${gen_wall} s"

rss_or_registry() { # peak RSS of the last step, or the stage's own record
	if [ -n "$step_rss_mb" ]; then echo "$step_rss_mb"; else
		local r; r=$(registry_timing "$1" peak_rss_mb); echo "${r:--}"; fi
}

hash_diffs=()   # "run R: stage (jobs=1 HASH vs all HASH)"
identical_runs=0
stale_after=()
note() { printf 'bench: run %d/%d %-34s %9.2f s  %s MB\n' "$r" "$runs" "$1" "$2" "${3:--}"; }

for ((r = 1; r <= runs; r++)); do
	rm -rf models logs score
	mkdir -p score

	# Ingest, on a fresh registry (see the header).
	if [[ " ${stages[*]} " == *" ingest "* ]]; then
		must "run $r: stage ingest" "${run_cmd[@]}" --only ingest --force
		grep -q '^ingest: done' step.log || { echo "bench: run $r: ingest did not run:" >&2; sed 's/^/  | /' step.log >&2; exit 1; }
		add wall:ingest "$step_wall"; add rss:ingest "$(rss_or_registry ingest)"
		add inner:ingest "$(registry_timing ingest seconds)"
		note "stage ingest (fresh registry)" "$step_wall" "$(rss_or_registry ingest)"
	fi

	# The rest of the pipeline, cold, then a no-op rerun.
	must "run $r: full pipeline" "${run_cmd[@]}"
	add wall:pipeline "$step_wall"; add rss:pipeline "${step_rss_mb:--}"
	note "full pipeline (cold, after ingest)" "$step_wall" "$step_rss_mb"
	must "run $r: no-op rerun" "${run_cmd[@]}"
	if grep -q '^[a-z_]*: \(done\|would run\)' step.log; then
		echo "bench: run $r: the no-op rerun ran a stage; it should find every stage up to date:" >&2
		sed 's/^/  | /' step.log >&2
		exit 1
	fi
	add wall:noop "$step_wall"; add rss:noop "${step_rss_mb:--}"
	note "no-op run (all up to date)" "$step_wall" "$step_rss_mb"

	# Every other stage on its own, forced.
	for s in "${stages[@]}"; do
		[ "$s" = ingest ] && continue
		if ! timed "run $r: stage $s" "${run_cmd[@]}" --only "$s" --force; then
			add wall:$s FAIL
			continue
		fi
		if ! grep -q "^$s: done" step.log; then
			echo "bench: !!! run $r: stage $s did not run with --force:" >&2
			sed 's/^/  | /' step.log >&2
			failures+=("run $r: stage $s did not run with --force")
			add wall:$s FAIL
			continue
		fi
		add wall:$s "$step_wall"; add rss:$s "$(rss_or_registry "$s")"
		add inner:$s "$(registry_timing "$s" seconds)"
		note "stage $s" "$step_wall" "$(rss_or_registry "$s")"
	done

	# Training with run.jobs=1 and with the default, back to back, order alternating.
	declare -A tw=() th=()
	order=(1 all)
	((r % 2 == 0)) && order=(all 1)
	for j in "${order[@]}"; do
		jobs_args=()
		[ "$j" = 1 ] && jobs_args=(--set run.jobs=1)
		if timed "run $r: training run.jobs=$j" "${run_cmd[@]}" "${jobs_args[@]}" --from "$train_from" --to "$train_to" --force; then
			tw[$j]=$step_wall
			th[$j]=$(train_hashes)
			for s in "${train[@]}"; do add "tin$j:$s" "$(registry_timing "$s" seconds)"; done
			add wall:train$j "$step_wall"; add rss:train$j "${step_rss_mb:--}"
			note "training ${train_from}..${train_to}, jobs=$j" "$step_wall" "$step_rss_mb"
		fi
	done
	if [ -n "${tw[1]:-}" ] && [ -n "${tw[all]:-}" ]; then
		add ratio "$(awk -v a="${tw[1]}" -v b="${tw[all]}" 'BEGIN { printf "%.3f", a / b }')"
		if [ "${th[1]}" = "${th[all]}" ] && [ "$(wc -l <<<"${th[1]}")" -eq ${#train[@]} ]; then
			identical_runs=$((identical_runs + 1))
		else
			while read -r name h1 h2; do
				[ "$h1" = "$h2" ] || hash_diffs+=("run $r: $name (jobs=1 ${h1:0:12} vs all cores ${h2:0:12})")
			done < <(join -a1 -a2 -e MISSING -o 0,1.2,2.2 <(sort <<<"${th[1]}") <(sort <<<"${th[all]}"))
			echo "bench: !!! run $r: artefacts DIFFER between run.jobs=1 and all cores:" >&2
			printf '  | %s\n' "${hash_diffs[@]}" >&2
		fi
	fi

	# Scoring: from the registry, then from the generated CSV files.
	if timed "run $r: score (registry)" "$bin" score "${config_args[@]}" --output score/reg.csv; then
		n=$(data_rows score/reg.csv)
		add wall:score_reg "$step_wall"; add rss:score_reg "${step_rss_mb:--}"; add n:score_reg "$n"
		note "score from registry ($n users)" "$step_wall" "$step_rss_mb"
	fi
	if timed "run $r: score (CSV files)" "$bin" score "${config_args[@]}" \
		--users data/users.csv --events data/events.csv --output score/csv.csv; then
		n=$(data_rows score/csv.csv)
		add wall:score_csv "$step_wall"; add rss:score_csv "${step_rss_mb:--}"; add n:score_csv "$n"
		note "score from CSV files ($n users)" "$step_wall" "$step_rss_mb"
	fi

	# Forced reruns of deterministic stages leave everything up to date.
	if "${run_cmd[@]}" --dry-run >step.log 2>&1; then
		stale=$(awk -F: '/: would run/ { printf "%s ", $1 }' step.log)
		[ -z "$stale" ] || stale_after+=("run $r: $stale")
	fi
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
commit_end=$(read_commit)

failed() { [[ " ${val[wall:$1]:-} " == *" FAIL "* ]]; }
wall_cell() { # median wall, marked when some run failed
	local m; m=$(med "wall:$1" 2)
	if failed "$1"; then echo "**FAILED** (median of the others: $m)"; else echo "$m"; fi
}

if [ ${#hash_diffs[@]} -eq 0 ] && [ $identical_runs -eq $runs ]; then
	identity="identical (all ${#train[@]} training stages, every run)"
elif [ ${#hash_diffs[@]} -eq 0 ]; then
	identity="not compared in every run (a training run failed; identical in $identical_runs of $runs)"
else
	identity="**DIFFERENT**: $(printf '%s; ' "${hash_diffs[@]}")"
	identity=${identity%; }
fi

table=$scratch/table.md
{
	echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — commit $commit — $users users, $runs runs"
	echo
	echo "Binary: $src_bin, built $bin_built; HEAD $commit when the bench started$([ "$commit_end" = "$commit" ] || echo " (HEAD moved to $commit_end during the bench; the binary benched is the one copied at the start)")."
	echo "Machine: $machine; load average $load_start at start, $load_end at end."
	echo "Data: $users users, $events events (\`ltvpipe generate --order $event_order\`: $gen_wall s)."
	echo "Medians over $runs runs, each on a fresh registry. wall = the whole \`ltvpipe\` process;"
	echo "in-stage = the stage body's own time from its timings record. Stages: \`run --only S --force\`"
	echo "on the built pipeline (ingest: \`run --only ingest\` on the fresh registry, since a forced"
	echo "ingest skips files already loaded); a lone stage gets all run.jobs threads. Training runs:"
	echo "\`run --from $train_from --to $train_to --force\` on the same features, jobs=1 and all cores back to back"
	echo "(with all cores, independent stages run side by side, each with a share of the threads); the last two"
	echo "columns are each stage's in-stage seconds inside those runs. Peak RSS: $([ $have_gnu_time = 1 ] && echo 'GNU time (max RSS of the process)' || echo "the stage's timings record")."
	echo
	echo "| measurement | wall s | in-stage s | throughput | peak RSS MB | in-stage s in training run, jobs=1 | same, all cores |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for s in "${stages[@]}"; do
		w=$(med "wall:$s" 3)
		tp=$(stage_rates "$s" "$w" 2>/dev/null || echo "- -")
		[ "$w" = - ] && tp="- -"
		read -r ru re <<<"$tp"
		tp="$ru users/s"
		[ "$re" != - ] && tp="$tp, $re events/s"
		[ "$ru" = - ] && tp=-
		printf '| stage %s | %s | %s | %s | %s | %s | %s |\n' "$s" "$(wall_cell "$s")" "$(med "inner:$s" 3)" \
			"$tp" "$(med "rss:$s" 0)" "$(med "tin1:$s" 3)" "$(med "tinall:$s" 3)"
	done
	jall="all cores = $ncpu"
	printf '| full pipeline after ingest, cold (`run`) | %s | - | %s users/s | %s | - | - |\n' \
		"$(med wall:pipeline 2)" "$(rate "$users" "$(med wall:pipeline 3)")" "$(med rss:pipeline 0)"
	printf '| training %s..%s, `--set run.jobs=1` | %s | - | %s users/s | %s | - | - |\n' "$train_from" "$train_to" \
		"$(med wall:train1 2)" "$(rate "$users" "$(med wall:train1 3)")" "$(med rss:train1 0)"
	printf '| training %s..%s, run.jobs=0 (%s) | %s | - | %s users/s | %s | - | - |\n' "$train_from" "$train_to" \
		"$jall" "$(med wall:trainall 2)" "$(rate "$users" "$(med wall:trainall 3)")" "$(med rss:trainall 0)"
	printf '| **speed-up** = jobs=1 wall ÷ all-cores wall, >1 means all cores faster (per-run ratios:%s) | **%s×** | - | - | - | - | - |\n' \
		"${val[ratio]:- none}" "$(med ratio 2)"
	n_reg=$(med n:score_reg 0) n_csv=$(med n:score_csv 0)
	printf '| score from registry (%s users scored) | %s | - | %s scored users/s | %s | - | - |\n' "$n_reg" \
		"$(med wall:score_reg 2)" "$(rate "$n_reg" "$(med wall:score_reg 3)")" "$(med rss:score_reg 0)"
	printf '| score from CSV (all %s users, %s events read; %s scored) | %s | - | %s scored users/s (%s input users/s) | %s | - | - |\n' \
		"$users" "$events" "$n_csv" "$(med wall:score_csv 2)" "$(rate "$n_csv" "$(med wall:score_csv 3)")" \
		"$(rate "$users" "$(med wall:score_csv 3)")" "$(med rss:score_csv 0)"
	printf '| no-op `run` (all stages up to date) | %s | - | - | %s | - | - |\n' "$(med wall:noop 3)" "$(med rss:noop 0)"
	echo
	echo "Artefacts, run.jobs=1 vs all cores (content_hash of each training stage's newest artefact): $identity."
	if [ ${#stale_after[@]} -gt 0 ]; then
		echo "**After the forced reruns some stages were stale** (a forced stage changed its content): $(printf '%s; ' "${stale_after[@]}")"
	fi
	if [ ${#failures[@]} -gt 0 ]; then
		echo "**FAILURES**: $(printf '%s; ' "${failures[@]}")"
	fi
	echo
} >"$table"

echo
cat "$table"
mkdir -p "$(dirname "$results")"
[ -s "$results" ] || printf '# ltvpipe benchmark results\n\nAppended by bench/bench.sh (make bench); newest last.\n\n' >"$results"
cat "$table" >>"$results"
echo "bench: appended to $results"
if [ ${#hash_diffs[@]} -gt 0 ]; then
	echo "bench: !!! ARTEFACTS DIFFER between run.jobs=1 and all cores: ${hash_diffs[*]}" >&2
fi
if [ ${#failures[@]} -gt 0 ]; then
	echo "bench: !!! ${#failures[@]} step(s) failed: ${failures[*]}" >&2
	exit 1
fi

#!/usr/bin/env bash
# usage: bench/sidebyside.sh USERS RUNS   (make bench: 1000000 users, 3 runs)
#
# ltvpipe side by side with the Python stack it replaces (pyref: pandas,
# scikit-learn, XGBoost, scipy; see its README), on the same generated files
# in the same run. USERS users are generated once with `--order time`
# (events ordered by time across users, as an export of an events table is).
# Each of RUNS runs then times, as whole processes (GNU /usr/bin/time: wall
# seconds and peak RSS, the largest process):
#
#   ltvpipe train   `ltvpipe run --only ingest` then `ltvpipe run`, on a fresh
#                   registry: the cold pipeline,
#                   ingest through calibrate (a model version)
#   ltvpipe no-op   `ltvpipe run` again (every stage up to date)
#   ltvpipe score   `ltvpipe score --users U --events E --output F` (from CSV)
#   pyref train     `pyref.py train --data D --models M`
#   pyref score     `pyref.py score --data D --models M --out F`
#
# The two sides alternate which goes first from run to run. The table gives
# each side's median wall and peak RSS, and the medians of the per-run ratios
# (pyref wall / ltvpipe wall: the speed-up; ltvpipe RSS / pyref RSS: the
# share of memory), which hold up better than ratios of medians on a shared
# machine. Ingest's speed is the CSV bytes over the ingest stage's own seconds
# (its timings record) inside the cold run; each stage's seconds are listed
# too, so the table says where the time goes.
#
# Then scoring's scaling: for each N of SCALE_USERS (default "100000
# 3000000"), N users are generated (--order time, the same seed) and scored
# from CSV with the last run's model version: wall, peak RSS and time per
# user. SCALE_USERS=100000 skips the 3,000,000 (about 1.6 GB of CSV and
# several minutes); SCALE_USERS= skips the scaling.
#
# Both sides run with OMP_WAIT_POLICY=PASSIVE (unless set): OpenMP threads
# that spin while waiting made XGBoost many times slower on a loaded machine
# (ltvpipe sets it for itself; pyref's XGBoost gets the same).
#
# Environment: LTVPIPE (binary, default ./ltvpipe), PYREF (default
# ../shared/peers/pyref/pyref.py beside the repository), PYTHON (default
# /usr/bin/python3, so Debian's packages are the ones used), SCALE_USERS,
# STEP_TIMEOUT (seconds per command, default 3600), BENCH_RESULTS (default
# bench/results.md; the table is appended), KEEP_SCRATCH=1.
set -euo pipefail

usage() {
	echo "usage: bench/sidebyside.sh USERS RUNS   (e.g. bench/sidebyside.sh 1000000 3)" >&2
	exit 2
}
[ $# -eq 2 ] || usage
users=$1 runs=$2
[[ $users =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ ]] || usage

root=$(cd "$(dirname "$0")/.." && pwd)
src_bin=${LTVPIPE:-$root/ltvpipe}
pyref=${PYREF:-$root/../shared/peers/pyref/pyref.py}
python=${PYTHON:-/usr/bin/python3}
results=${BENCH_RESULTS:-$root/bench/results.md}
step_timeout=${STEP_TIMEOUT:-3600}
scale_users=${SCALE_USERS-100000 3000000}
[ -x "$src_bin" ] || { echo "bench: no ltvpipe binary at '$src_bin'; run 'make' first" >&2; exit 2; }
[ -f "$pyref" ] || { echo "bench: no pyref at '$pyref'; set PYREF to its pyref.py" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench: needs GNU /usr/bin/time (Debian package time)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "bench: needs the sqlite3 command-line tool" >&2; exit 2; }
"$python" -c 'import pandas, sklearn, xgboost, scipy, joblib' 2>/dev/null ||
	{ echo "bench: $python cannot import pyref's packages; install: apt-get install -y python3-pandas python3-sklearn python3-xgboost python3-scipy python3-joblib" >&2; exit 2; }
for n in $scale_users; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench: SCALE_USERS: '$n' is not a number of users" >&2; exit 2; }
done

export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvpipe-sidebyside.XXXXXX")
cleanup() {
	if [ "${KEEP_SCRATCH:-0}" = 1 ]; then echo "bench: scratch kept: $scratch" >&2; else rm -rf "$scratch"; fi
}
trap cleanup EXIT

# Rows of a `score --users F` output that carry a prediction. The output has
# every row of F; a row without a prediction says why in its last column,
# reason (older than the longest horizon: its value is observed, not
# predicted; rejected; ...), and a predicted row leaves it empty, so the line
# ends in a comma. pyref scores the users not yet mature at its 30-day
# horizon; ltvpipe scores every user younger than its longest horizon (90
# days), so their counts differ and the table gives time per scored user.
predicted() {
	awk 'NR > 1 && /,$/ { n++ } END { print n + 0 }' "$1"
}

# A private copy, so a rebuild during a long bench cannot change the binary.
bin=$scratch/ltvpipe
cp "$src_bin" "$bin"
config_args=()
[ -f "$root/config/ltvpipe.yaml" ] && config_args=(--config "$root/config/ltvpipe.yaml")
commit=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)

# timed LABEL CMD...: runs CMD in the scratch dir; sets wall (s), rss (MB) and cpu (user + system s).
wall= rss= cpu=
timed() {
	local label=$1 rc=0; shift
	/usr/bin/time -f '%e %M %U %S' -o "$scratch/time" timeout "$step_timeout" "$@" >"$scratch/step.log" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		echo "bench: !!! $label failed (exit $rc): $*" >&2
		tail -n 30 "$scratch/step.log" | sed 's/^/  | /' >&2
		exit 1
	fi
	read -r wall rss cpu < <(awk '$1 ~ /^[0-9.]+$/ && $2 ~ /^[0-9]+$/ { printf "%.2f %.1f %.2f\n", $1, $2 / 1024, $3 + $4 }' "$scratch/time")
	printf 'bench: run %s %-28s %8.2f s %9.1f MB %8.2f s CPU\n' "$r" "$label" "$wall" "$rss" "$cpu"
}

declare -A val
add() { val[$1]+=" $2"; }
med() { # med KEY PRECISION: median of the values collected under KEY
	local -a v
	read -r -a v <<<"${val[$1]:-}"
	[ ${#v[@]} -gt 0 ] || { echo -; return; }
	printf '%s\n' "${v[@]}" | sort -g | awk -v p="$2" '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.*f", p, m }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }'; }

cd "$scratch"
machine="$(nproc) CPUs, $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
r=0
echo "bench: $users users, $runs runs; $machine; load $load_start; scratch $scratch"
timed "generate" "$bin" generate --users "$users" --order time --out data
events=$(($(wc -l <data/events.csv) - 1))
csv_bytes=$(du -cb data/users.csv data/events.csv | awk 'END { print $1 }')
csv_mb=$(awk -v b="$csv_bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "bench: $users users, $events events, $csv_mb MB of CSV"

run_ltvpipe() {
	rm -rf models logs rejects ltv.csv
	# The cold pipeline as two processes, so ingest gets its own CPU time:
	# `run --only ingest`, then `run` (features … calibrate); walls and CPU add up.
	timed "ltvpipe ingest (cold)" "$bin" run "${config_args[@]}" --only ingest
	local i_wall=$wall i_rss=$rss i_cpu=$cpu
	add ingest_mbs "$(awk -v b="$csv_bytes" -v s="$i_wall" 'BEGIN { printf "%.1f", b / 1e6 / s }')"
	add ingest_cpu_mbs "$(awk -v b="$csv_bytes" -v s="$i_cpu" 'BEGIN { printf "%.1f", b / 1e6 / s }')"
	timed "ltvpipe features..calibrate" "$bin" run "${config_args[@]}"
	lt_wall=$(awk -v a="$i_wall" -v b="$wall" 'BEGIN { printf "%.2f", a + b }')
	lt_rss=$(awk -v a="$i_rss" -v b="$rss" 'BEGIN { printf "%.1f", (a > b ? a : b) }')
	add wall:ltv_train "$lt_wall"; add rss:ltv_train "$lt_rss"
	add cpu:ltv_train "$(awk -v a="$i_cpu" -v b="$cpu" 'BEGIN { printf "%.2f", a + b }')"
	local s secs
	while read -r s secs; do
		add "stage:$s" "$secs"
	done < <(sqlite3 -separator ' ' models/registry.sqlite \
		"select name, printf('%.3f', json_extract(timings, '\$.seconds')) from artefacts order by id")
	timed "ltvpipe no-op rerun" "$bin" run "${config_args[@]}"
	if grep -q '^[a-z_]*: done' step.log; then
		echo "bench: the no-op rerun ran a stage; every stage should be up to date:" >&2
		sed 's/^/  | /' step.log >&2
		exit 1
	fi
	add wall:ltv_noop "$wall"; add cpu:ltv_noop "$cpu"
	timed "ltvpipe score (CSV)" "$bin" score "${config_args[@]}" --users data/users.csv \
		--events data/events.csv --output ltv.csv
	add wall:ltv_score "$wall"; add rss:ltv_score "$rss"; add cpu:ltv_score "$cpu"; ls_wall=$wall ls_rss=$rss
	add n:ltv_score "$(predicted ltv.csv)"
}

run_pyref() {
	rm -rf pymodels py.csv
	timed "pyref train" "$python" "$pyref" train --data data --models pymodels
	add wall:py_train "$wall"; add rss:py_train "$rss"; add cpu:py_train "$cpu"; pt_wall=$wall pt_rss=$rss
	timed "pyref score" "$python" "$pyref" score --data data --models pymodels --out py.csv
	add wall:py_score "$wall"; add rss:py_score "$rss"; add cpu:py_score "$cpu"; ps_wall=$wall ps_rss=$rss
	add n:py_score "$(($(wc -l <py.csv) - 1))"
}

for ((r = 1; r <= runs; r++)); do
	if ((r % 2)); then run_ltvpipe; run_pyref; else run_pyref; run_ltvpipe; fi
	add x:train "$(ratio "$pt_wall" "$lt_wall")"
	add xc:train "$(ratio "${val[cpu:py_train]##* }" "${val[cpu:ltv_train]##* }")"
	add xc:score "$(ratio "${val[cpu:py_score]##* }" "${val[cpu:ltv_score]##* }")"
	add m:train "$(ratio "$lt_rss" "$pt_rss")"
	add x:score "$(ratio "$ps_wall" "$ls_wall")"
	add m:score "$(ratio "$ls_rss" "$ps_rss")"
done

# Scoring's scaling, with the last run's model version.
scale_rows=()
r=scale
for n in $scale_users; do
	rm -rf "scale" && mkdir scale
	timed "generate $n" "$bin" generate --users "$n" --order time --out scale
	timed "ltvpipe score $n" "$bin" score "${config_args[@]}" --users scale/users.csv \
		--events scale/events.csv --output scale.csv
	scored=$(predicted scale.csv)
	mb=$(du -cb scale/users.csv scale/events.csv | awk 'END { printf "%.0f", $1 / 1e6 }')
	scale_rows+=("$(awk -v n="$n" -v s="$scored" -v w="$wall" -v m="$rss" -v mb="$mb" 'BEGIN {
		printf "| %d users (%s MB of CSV; %d scored) | %.2f | %.1f | %.2f | %.0f |", n, mb, s, w, 1e6 * w / n, 1e6 * w / s, m }')")
	rm -rf scale scale.csv
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

table=$scratch/table.md
{
	echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — commit $commit — side by side with pyref, $users users, $runs runs"
	echo
	echo "Machine: $machine; load average $load_start at start, $load_end at end."
	echo "Data: \`ltvpipe generate --users $users --order time\`: $events events, $csv_mb MB of CSV."
	echo "Whole processes (GNU time), medians of $runs runs; ratios taken within each run, then their median."
	echo
	echo "| | ltvpipe wall s | ltvpipe CPU s | ltvpipe peak RSS MB | pyref wall s | pyref CPU s | pyref peak RSS MB | speed-up, wall (pyref ÷ ltvpipe) | speed-up, CPU | memory (ltvpipe ÷ pyref RSS) |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '| train: `ltvpipe run` cold (ingest … calibrate) vs `pyref.py train` | %s | %s | %s | %s | %s | %s | **%s×** | %s× | **%s** |\n' \
		"$(med wall:ltv_train 2)" "$(med cpu:ltv_train 2)" "$(med rss:ltv_train 0)" \
		"$(med wall:py_train 2)" "$(med cpu:py_train 2)" "$(med rss:py_train 0)" \
		"$(med x:train 2)" "$(med xc:train 2)" "$(med m:train 2)"
	printf '| score from CSV: `ltvpipe score --users --events` (%s scored) vs `pyref.py score` (%s scored) | %s | %s | %s | %s | %s | %s | **%s×** | %s× | **%s** |\n' \
		"$(med n:ltv_score 0)" "$(med n:py_score 0)" \
		"$(med wall:ltv_score 2)" "$(med cpu:ltv_score 2)" "$(med rss:ltv_score 0)" \
		"$(med wall:py_score 2)" "$(med cpu:py_score 2)" "$(med rss:py_score 0)" \
		"$(med x:score 2)" "$(med xc:score 2)" "$(med m:score 2)"
	printf '| no-op `ltvpipe run` (every stage up to date) | %s | %s | | | | | | | |\n' "$(med wall:ltv_noop 3)" "$(med cpu:ltv_noop 3)"
	echo
	# the two sides score different users (predicted() above): CPU per scored user too
	awk -v lc="$(med cpu:ltv_score 2)" -v ln="$(med n:ltv_score 0)" -v pc="$(med cpu:py_score 2)" \
		-v pn="$(med n:py_score 0)" 'BEGIN { if (ln > 0 && pn > 0) printf "Scoring CPU per scored user: ltvpipe %.2f µs (%d users younger than its longest horizon), pyref %.2f µs (%d users younger than its 30-day horizon): %.1f× per scored user.\n\n", 1e6 * lc / ln, ln, 1e6 * pc / pn, pn, (pc / pn) / (lc / ln) }'
	echo "Ingest (\`ltvpipe run --only ingest\` on a fresh registry): $(med ingest_mbs 0) MB/s of CSV by wall time, $(med ingest_cpu_mbs 0) MB/s by CPU time."
	printf 'ltvpipe stages in the cold run, own seconds (medians):'
	for s in ingest features tiers hurdle multiplier curves bgnbd pareto_nbd lookalike semantic select calibrate; do
		[ -n "${val[stage:$s]:-}" ] && printf ' %s %s;' "$s" "$(med "stage:$s" 2)"
	done
	echo " (stages run side by side, so they add up to more than the wall)."
	if [ ${#scale_rows[@]} -gt 0 ]; then
		echo
		echo "Scoring from CSV at other sizes (\`ltvpipe score --users --events\`, the model version of the last run):"
		echo
		echo "| users | wall s | µs per input user | µs per scored user | peak RSS MB |"
		echo "|---|---:|---:|---:|---:|"
		printf '%s\n' "${scale_rows[@]}"
	fi
	echo
} >"$table"
echo
cat "$table"
mkdir -p "$(dirname "$results")"
[ -s "$results" ] || printf '# ltvpipe benchmark results\n\nAppended by the benches; newest last.\n\n' >"$results"
cat "$table" >>"$results"
echo "bench: appended to $results"

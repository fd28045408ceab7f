#!/usr/bin/env bash
# usage: bench/hurdle_cpu.sh DIR RUNS VARIANT...
#
# Hurdle's CPU, variant against variant, on a registry that already holds a
# run up to tiers: DIR is the directory a cold run was made in (it has
# config/ and models/registry.sqlite; at 1,000,000 users, a cold `ltvpipe run`
# of the generated users from a copy of config/). Each VARIANT reruns hurdle
# alone (`run --only hurdle --force`, run.jobs 1, so CPU is the stage's own
# and no neighbour takes a share), RUNS times, the variants alternating round
# by round (on a shared machine the load drifts: alternating spreads it over
# all). Per variant it prints the median user + system CPU seconds, the
# median peak RSS, the boosting rounds each model kept (payer and revenue best
# rounds per tier and horizon, from the artefact's metrics: a fit trains its
# best round + hurdle.early_stopping_rounds more), and hurdle's own
# validation figures at the target horizon (payer AUC, campaign WAPE, bias).
#
# A VARIANT is a label, then comma-separated options: bin=PATH (the binary,
# default ./ltvpipe or $LTVPIPE) and KEY=VALUE settings:
#   bench/hurdle_cpu.sh /work/tmp/r1m 3 old,bin=/tmp/ltvpipe-old new \
#       bins64,hurdle.max_bin=64
# Reruns replace DIR's hurdle artefact (a new version each); nothing else.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 3 ] || bench_usage "DIR RUNS VARIANT..."
dir=$(realpath "$1")
runs=$2
shift 2
if [ ! -f "$dir/models/registry.sqlite" ] || [ ! -d "$dir/config" ]; then
	bench_fail "'$dir' holds no registry (models/registry.sqlite) and config/"
fi
bench_need_time
command -v sqlite3 >/dev/null || bench_fail "needs the sqlite3 command"
export OMP_WAIT_POLICY=PASSIVE # no re-exec: the counts are the stage's own
labels=()
declare -A bins sets cpu rss rounds figures
for variant in "$@"; do
	IFS=, read -r -a parts <<<"$variant"
	label=${parts[0]}
	labels+=("$label")
	bins[$label]=$(bench_binary)
	sets[$label]=""
	for kv in "${parts[@]:1}"; do
		case $kv in
		bin=*) bins[$label]=$(bench_binary "${kv#bin=}") ;;
		*) sets[$label]+=" --set $kv" ;;
		esac
	done
done
cd "$dir"
echo "bench: hurdle alone in $dir, $runs runs a variant; load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 0; r < runs; r++)); do
	for label in "${labels[@]}"; do
		# shellcheck disable=SC2086 # the settings split into words on purpose
		/usr/bin/time -o hurdle_cpu.time -f '%U %S %M' "${bins[$label]}" run --only hurdle \
			--force --quiet --set run.jobs=1 ${sets[$label]} >hurdle_cpu.log 2>&1 ||
			{ echo "bench: $label failed:" >&2; tail -5 hurdle_cpu.log >&2; exit 1; }
		cpu[$label]+=" $(bench_cpu_seconds hurdle_cpu.time)"
		rss[$label]+=" $(awk '{ printf "%.0f", $3 / 1024 }' hurdle_cpu.time)"
		rounds[$label]=$(sqlite3 models/registry.sqlite "select group_concat(key || ' ' ||
			json_extract(value, '\$.payer_iter') || '/' ||
			ifnull(json_extract(value, '\$.revenue_iter'), '-'), ', ')
			from (select metrics from artefacts where name = 'hurdle' order by id desc limit 1),
			json_each(json_extract(metrics, '\$.models'))")
		figures[$label]=$(sqlite3 -separator ' ' models/registry.sqlite "select
			printf('%.4f', json_extract(metrics, '\$.payer_auc')),
			printf('%.4f', json_extract(metrics, '\$.campaign_wape')),
			printf('%.4f', json_extract(metrics, '\$.bias'))
			from artefacts where name = 'hurdle' order by id desc limit 1")
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
	print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-12s %9s %7s %-22s  %s\n' variant "CPU s" "RSS MB" "auc cwape bias" \
	"best rounds payer/revenue per model"
for label in "${labels[@]}"; do
	printf '%-12s %9s %7s %-22s  %s\n' "$label" "$(median <<<"${cpu[$label]}")" \
		"$(median <<<"${rss[$label]}")" "${figures[$label]}" "${rounds[$label]}"
	printf '%-12s (runs:%s)\n' "" "${cpu[$label]}"
done
echo "bench: load $(cut -d' ' -f1-3 /proc/loadavg) at end"

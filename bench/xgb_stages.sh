#!/usr/bin/env bash
# usage: bench/xgb_stages.sh USERS VARIANT...
#
# The CPU of the XGBoost stages (hurdle, multiplier) under settings to try,
# and what each setting does to their own validation figures. USERS users are
# generated (`generate --order time`) and run once through the pipeline
# (ingest, then features ... calibrate); then, for each VARIANT, hurdle and
# multiplier are rerun alone (`run --only hurdle,multiplier --force`) with the
# variant's settings and the run's CPU seconds (user + system, GNU time) and
# peak RSS (of the one run of both stages, so the same on both lines) are
# printed with, per stage, the metrics it stores: payer AUC
# (hurdle), RMSLE and WAPE of ltv per user, campaign WAPE and bias, at
# features.target_horizon on the validation rows.
#
# A VARIANT is a label, then optional KEY=VALUE settings, comma-separated:
#   bench/xgb_stages.sh 100000 defaults es20,hurdle.early_stopping_rounds=20 \
#       cap20k,hurdle.max_train_rows=20000 bins64,hurdle.max_bin=64
# CPU seconds, not wall: on a shared machine the wall mostly measures the
# neighbours. Environment: LTVPIPE (binary, default ./ltvpipe).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || bench_usage "USERS VARIANT..."
users=$1
shift
bin=$(bench_binary)
config=$root/config/ltvpipe.yaml
bench_need_time
bench_scratch xgb-stages
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
cd "$scratch"
"$bin" generate --users "$users" --order time --out data >/dev/null
"$bin" run --config "$config" --quiet >prepare.log 2>&1 ||
	{ echo "bench: the first run failed:" >&2; tail -20 prepare.log >&2; exit 1; }
echo "bench: $users users; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %-10s %7s %7s %8s %7s %7s %9s %7s\n' variant stage "CPU s" "RSS MB" \
	payer_auc rmsle wape camp_wape bias
for variant in "$@"; do
	IFS=, read -r -a parts <<<"$variant"
	label=${parts[0]}
	sets=()
	for kv in "${parts[@]:1}"; do sets+=(--set "$kv"); done
	/usr/bin/time -f '%U %S %M' -o time "$bin" run --config "$config" --only hurdle,multiplier \
		--force --quiet "${sets[@]}" >run.log 2>&1 ||
		{ echo "bench: $label failed:" >&2; tail -5 run.log >&2; exit 1; }
	read -r u s m <time
	for stage in hurdle multiplier; do
		sqlite3 -separator ' ' models/registry.sqlite "select
			case when json_extract(metrics, '\$.payer_auc') is null then '-'
			     else printf('%.4f', json_extract(metrics, '\$.payer_auc')) end,
			printf('%.4f', json_extract(metrics, '\$.rmsle')),
			printf('%.4f', json_extract(metrics, '\$.wape')),
			printf('%.4f', json_extract(metrics, '\$.campaign_wape')),
			printf('%.4f', json_extract(metrics, '\$.bias'))
			from artefacts where name = '$stage' order by id desc limit 1" |
		while read -r auc rmsle wape cw bias; do
			printf '%-14s %-10s %7.2f %7.1f %8s %7s %7s %9s %7s\n' "$label" "$stage" \
				"$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')" \
				"$(awk -v m="$m" 'BEGIN { print m / 1024 }')" "$auc" "$rmsle" "$wape" "$cw" "$bias"
		done
	done
done
echo "bench: load $(cut -d' ' -f1-3 /proc/loadavg) at end"

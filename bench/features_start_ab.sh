#!/usr/bin/env bash
# usage: bench/features_start_ab.sh BIN_BEFORE BIN_AFTER INGESTED DATA RUNS
#
# The serial start of a cold `run` after `run --only ingest`, base against new:
# RUNS alternating pairs of `run --to features` (features is the first stage a
# cold run runs, alone, before the model wave) on a fresh `cp -a` copy of
# INGESTED (a models/ directory holding only an ingest, whose WAL ingest left
# to the next run) with DATA as data/. Uprobes (perf probe; needs root and the
# binaries' -g symbols) on main and stage_features_run give, per run, the wall
# seconds from main to the stage's entry ("before": opening the registry, its
# WAL recovery, the run's record and whatever that commit does), the stage's
# own ("features"), and main to the stage's return ("to features' end": what
# the model wave waits for). Then each binary's medians and the paired
# differences (after - before). PRIO="chrt -f 1" as in bench/ingest_ab.sh, so
# that on a shared machine the walls are about a quiet machine's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 5 ] && [[ $5 =~ ^[1-9][0-9]*$ ]] || bench_usage "BIN_BEFORE BIN_AFTER INGESTED DATA RUNS"
before=$(bench_binary "$1") after=$(bench_binary "$2") ingested=$(realpath "$3") data=$(realpath "$4")
runs=$5
[ -f "$ingested/registry.sqlite" ] || bench_fail "no registry.sqlite in $ingested"
command -v perf >/dev/null || bench_fail "needs perf"
read -r -a prio <<<"${PRIO:-}"
bench_scratch features-start
bench_probes_add "fs$$_0" "$before" m=main f=stage_features_run fr=stage_features_run%return
bench_probes_add "fs$$_1" "$after" m=main f=stage_features_run fr=stage_features_run%return
ln -s "$data" "$scratch/data"
export OMP_WAIT_POLICY=PASSIVE
echo "features_start: $runs pairs; load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$runs"); do
	for k in 0 1; do
		bin=$before
		[ $k = 1 ] && bin=$after
		rm -rf "$scratch/models"
		cp -a "$ingested" "$scratch/models"
		(cd "$scratch" && "${prio[@]}" perf record -q -e "probe_ltvpipe:fs$$_${k}_*" -o p.data \
			"$bin" run --config "$root/config/ltvpipe.yaml" --to features >out 2>err) ||
			{ cat "$scratch/err" >&2; exit 1; }
		perf script -i "$scratch/p.data" -F time,event 2>/dev/null | awk -v k=$k -v i="$i" \
			-v load="$(cut -d' ' -f1 /proc/loadavg)" '
			{ t = $1; sub(":", "", t); e = $2; sub(/.*_/, "", e); sub(":$", "", e); if (!(e in T)) T[e] = t }
			END { printf "%s %s %.3f %.3f %.3f %s\n", i, k, T["f"] - T["m"], T["return"] - T["f"],
				T["return"] - T["m"], load }' >>"$scratch/runs"
	done
done
echo "| run --to features, $runs pairs${PRIO:+ ($PRIO)} | before s | features s | to features' end s | load |"
echo "|---|---|---|---|---|"
for k in 0 1; do
	awk -v k=$k -v name="$([ $k = 0 ] && echo before || echo after)" "$bench_awk_median"'
		$2 == k { n++; a[n] = $3; b[n] = $4; c[n] = $5; l[n] = $6 }
		END { printf "| %s (medians) | %.3f | %.3f | %.3f | %s |\n", name, median(a, n), median(b, n),
			median(c, n), median(l, n) }' "$scratch/runs"
done
awk "$bench_awk_median"'
	$2 == 0 { a0[$1] = $3; b0[$1] = $4; c0[$1] = $5 }
	$2 == 1 { n++; da[n] = $3 - a0[$1]; db[n] = $4 - b0[$1]; dc[n] = $5 - c0[$1] }
	END { printf "| after - before (median of pairs) | %+.3f | %+.3f | %+.3f | |\n", median(da, n),
		median(db, n), median(dc, n) }' "$scratch/runs"
echo
echo "per run (pair, 0 = before / 1 = after, before s, features s, to end s, load):"
cat "$scratch/runs"

#!/usr/bin/env bash
# usage: bench/features_phases.sh RUNS TRAINED DATA LTVPIPE [LTVPIPE...]
#
# Wall seconds of the features stage's two compute phases, timed by uprobes
# (perf probe; needs root and the binaries' -g symbols), the binaries taking
# turns, RUNS times, then each one's medians:
#   build     feature_build_base_from, entry to return (the users and
#             user-days read, the rows filled and packed)
#   read      registry_users_and_days, entry to return (the users and the
#             user-days read, the first part of build)
#   complete  features_complete (or features_complete_beside, which also
#             stores the base columns), entry to return (split, encodings, hash)
# Each run is `run --only features --force` on a fresh copy of the trained
# registry directory TRAINED with DATA as data/ (as bench/features_ab.sh).
# The phases leave out the commit's disk writes, which other processes'
# I/O moves by seconds; runs go in a session of their own given nice -15 (as
# bench/score_phases.sh), so that on a busy machine the phases' wall still
# shows how much of it the stage's threads overlap. Used for issue 13's
# features work (README "Threads and performance").
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 4 ] || bench_usage "RUNS TRAINED DATA LTVPIPE [LTVPIPE...]"
runs=$1 trained=$(realpath "$2") data=$(realpath "$3")
shift 3
bench_scratch features-phases
k=0
for b in "$@"; do
	# the stage calls features_complete_beside since session 16 (it stores the base columns meanwhile)
	complete=features_complete
	perf probe -x "$(bench_binary "$b")" -F 2>/dev/null | grep -qx features_complete_beside &&
		complete=features_complete_beside
	bench_probes_add "fp$$_$k" "$(bench_binary "$b")" fb=feature_build_base_from \
		fbr=feature_build_base_from%return fc=$complete fcr=$complete%return \
		ru=registry_users_and_days rur=registry_users_and_days%return
	k=$((k + 1))
done
ln -s "$data" "$scratch/data"
echo "features_phases: $runs runs of $# binaries; load $(cut -d' ' -f1-3 /proc/loadavg)"
export SCRATCH=$scratch ROOT=$root TRAINED=$trained RUNS=$runs OMP_WAIT_POLICY=PASSIVE
setsid bash -c 'echo -15 >/proc/self/autogroup
for ((r = 1; r <= RUNS; r++)); do
	while read -r n b; do
		rm -rf "$SCRATCH/models"
		cp -a "$TRAINED" "$SCRATCH/models"
		chmod -R u+w "$SCRATCH/models"
		(cd "$SCRATCH" && nice -n -15 perf record -q -e "probe_ltvpipe:${n}_*" -o "$SCRATCH/p.data" "$b" run \
			--config "$ROOT/config/ltvpipe.yaml" --only features --force >/dev/null 2>"$SCRATCH/stderr") ||
			{ echo "features_phases: $b failed" >&2; cat "$SCRATCH/stderr" >&2; exit 1; }
		perf script -i "$SCRATCH/p.data" -F time,event 2>/dev/null | awk -v n="$n" -v b="$b" '"'"'
			{ t = $1; sub(":", "", t); e = $2; sub("probe_ltvpipe:", "", e); sub(":$", "", e); T[e] = t }
			END { printf "%s %.3f %.3f %.3f\n", b, T[n "_fbr__return"] - T[n "_fb"], T[n "_fcr__return"] - T[n "_fc"],
				T[n "_rur__return"] - T[n "_ru"] }'"'"'
	done <"$SCRATCH/bins"
done' | tee "$scratch/runs" | awk '{ printf "features_phases: %s: build %.3f s (read %.3f s), complete %.3f s\n", $1, $2, $4, $3 }'
echo "features_phases: medians:"
while read -r n b; do
	awk -v b="$b" "$bench_awk_median"'
		$1 == b { k++; x[k] = $2; y[k] = $3; z[k] = $4 }
		END { printf "  %s: build %.3f s (read %.3f s), complete %.3f s\n", b, median(x, k), median(z, k),
			median(y, k) }' "$scratch/runs"
done <"$scratch/bins"

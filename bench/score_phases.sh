#!/usr/bin/env bash
# usage: bench/score_phases.sh RUNS DIR LTVPIPE [LTVPIPE...]
#
# Wall seconds of two phases of `ltvpipe score --users --events` from DIR (as
# bench/score_cpu.sh: a registry trained by `ltvpipe run` on DIR/data), timed
# by uprobes (perf probe; needs root and the binaries' -g symbols), the
# binaries taking turns, RUNS times, then each one's medians:
#   frame    feature_build_base_from, entry to return (one thread: the
#            frame of the users to score, after the files are read)
#   predict  serving_predict_with, entry to return (every horizon's
#            predictions on two threads, then calibration)
#   outputs  score_write_outputs to output_set_commit (the users file's
#            scored rows, the campaigns file and the reports)
#   commit   output_set_commit, entry to return (fsyncs, renames over the
#            previous files: the old users file's blocks freed there before
#            the replaced files were set aside, src/output_set.c)
# Phases are shorter than a whole run, so a change to one shows through the
# machine's load better than the whole run's wall; runs go in a session of
# their own given nice -15, as bench/score_wall.sh's. Used for issue 13
# (text_ahead, the frame's dictionary cache; scorepredict, session 15: the
# prediction's jobs taken by whichever thread is free: README "Threads and performance").
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2p "$0" >&2; exit 2; }
runs=$1 dir=$(realpath "$2")
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/score-phases.XXXXXX")
names=()
cleanup() {
	for n in "${names[@]}"; do perf probe -q -d "probe_ltvpipe:${n}_*" 2>/dev/null || true; done
	rm -rf "$out"
}
trap cleanup EXIT
k=0
for b in "$@"; do
	n=sp$$_$k
	names+=("$n")
	b=$(realpath "$b")
	perf probe -q -x "$b" --add "${n}_fb=feature_build_base_from" --add "${n}_fbr=feature_build_base_from%return" \
		--add "${n}_swo=score_write_outputs" --add "${n}_osc=output_set_commit" \
		--add "${n}_oscr=output_set_commit%return" \
		--add "${n}_swp=serving_predict_with" --add "${n}_swpr=serving_predict_with%return"
	echo "$n $b" >>"$out/bins"
	k=$((k + 1))
done
echo "score_phases: $runs runs of $# binaries on $dir; load $(cut -d' ' -f1-3 /proc/loadavg)"
export OUT_DIR=$out ROOT=$root DIR=$dir RUNS=$runs
setsid bash -c 'echo -15 >/proc/self/autogroup
for ((r = 1; r <= RUNS; r++)); do
	while read -r n b; do
		(cd "$DIR" && nice -n -15 perf record -q -e "probe_ltvpipe:${n}_*" -o "$OUT_DIR/p.data" "$b" score \
			--config "$ROOT/config/ltvpipe.yaml" --users data/users.csv --events data/events.csv \
			--output "$OUT_DIR/scores.csv" >/dev/null 2>"$OUT_DIR/stderr") ||
			{ echo "score_phases: $b failed" >&2; cat "$OUT_DIR/stderr" >&2; exit 1; }
		perf script -i "$OUT_DIR/p.data" -F time,event 2>/dev/null | awk -v n="$n" -v b="$b" '"'"'
			{ t = $1; sub(":", "", t); e = $2; sub("probe_ltvpipe:", "", e); sub(":$", "", e); T[e] = t }
			END { printf "%s %.3f %.3f %.3f %.3f\n", b, T[n "_fbr__return"] - T[n "_fb"], T[n "_osc"] - T[n "_swo"],
				T[n "_oscr__return"] - T[n "_osc"], T[n "_swpr__return"] - T[n "_swp"] }'"'"'
	done <"$OUT_DIR/bins"
done' | tee "$out/runs" | awk '{ printf "score_phases: %s: frame %.3f s, predict %.3f s, outputs %.3f s, commit %.3f s\n", $1, $2, $5, $3, $4 }'
echo "score_phases: medians:"
while read -r n b; do
	printf '  %s: frame %s s, predict %s s, outputs %s s, commit %s s\n' "$b" \
		"$(awk -v b="$b" '$1 == b { print $2 }' "$out/runs" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" \
		"$(awk -v b="$b" '$1 == b { print $5 }' "$out/runs" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" \
		"$(awk -v b="$b" '$1 == b { print $3 }' "$out/runs" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" \
		"$(awk -v b="$b" '$1 == b { print $4 }' "$out/runs" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
done <"$out/bins"

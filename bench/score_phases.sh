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
#   read     parse_input_files, entry to return (users.csv and events.csv
#            read, validated and grouped into user-days; the models load
#            beside it)
#   to frame main's entry (after the huge-page re-execution) to
#            feature_build_base_from's: everything before the frame
# Phases are shorter than a whole run, so a change to one shows through the
# machine's load better than the whole run's wall; runs go in a session of
# their own given nice -15, as bench/score_wall.sh's. Used for issue 13
# (text_ahead, the frame's dictionary cache; scorepredict, session 15: the
# prediction's jobs taken by whichever thread is free; session 16, scorepost:
# the frame without the user-id hashes and with its room reserved: README
# "Threads and performance").
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 3 ] || bench_usage "RUNS DIR LTVPIPE [LTVPIPE...]"
runs=$1 dir=$(realpath "$2")
shift 2
bench_scratch score-phases
k=0
for b in "$@"; do
	bench_probes_add "sp$$_$k" "$(bench_binary "$b")" fb=feature_build_base_from \
		fbr=feature_build_base_from%return swo=score_write_outputs osc=output_set_commit \
		oscr=output_set_commit%return swp=serving_predict_with swpr=serving_predict_with%return \
		mn=main pif=parse_input_files pifr=parse_input_files%return
	k=$((k + 1))
done
echo "score_phases: $runs runs of $# binaries on $dir; load $(cut -d' ' -f1-3 /proc/loadavg)"
export OUT_DIR=$scratch ROOT=$root DIR=$dir RUNS=$runs
setsid bash -c 'echo -15 >/proc/self/autogroup
for ((r = 1; r <= RUNS; r++)); do
	while read -r n b; do
		(cd "$DIR" && nice -n -15 perf record -q -e "probe_ltvpipe:${n}_*" -o "$OUT_DIR/p.data" "$b" score \
			--config "$ROOT/config/ltvpipe.yaml" --users data/users.csv --events data/events.csv \
			--output "$OUT_DIR/scores.csv" >/dev/null 2>"$OUT_DIR/stderr") ||
			{ echo "score_phases: $b failed" >&2; cat "$OUT_DIR/stderr" >&2; exit 1; }
		perf script -i "$OUT_DIR/p.data" -F time,event 2>/dev/null | awk -v n="$n" -v b="$b" '"'"'
			{ t = $1; sub(":", "", t); e = $2; sub("probe_ltvpipe:", "", e); sub(":$", "", e); T[e] = t }
			END { printf "%s %.3f %.3f %.3f %.3f %.3f %.3f\n", b, T[n "_fbr__return"] - T[n "_fb"], T[n "_osc"] - T[n "_swo"],
				T[n "_oscr__return"] - T[n "_osc"], T[n "_swpr__return"] - T[n "_swp"],
				T[n "_pifr__return"] - T[n "_pif"], T[n "_fb"] - T[n "_mn"] }'"'"'
	done <"$OUT_DIR/bins"
done' | tee "$scratch/runs" | awk '{ printf "score_phases: %s: read %.3f s, to frame %.3f s, frame %.3f s, predict %.3f s, outputs %.3f s, commit %.3f s\n", $1, $6, $7, $2, $5, $3, $4 }'
echo "score_phases: medians:"
while read -r n b; do
	awk -v b="$b" "$bench_awk_median"'
		$1 == b { k++; f[k] = $2; o[k] = $3; c[k] = $4; p[k] = $5; r[k] = $6; s[k] = $7 }
		END { printf "  %s: read %.3f s, to frame %.3f s, frame %.3f s, predict %.3f s, outputs %.3f s, commit %.3f s\n", b,
			median(r, k), median(s, k), median(f, k), median(p, k), median(o, k), median(c, k) }' "$scratch/runs"
done <"$scratch/bins"

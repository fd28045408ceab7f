#!/usr/bin/env bash
# usage: bench/score_cpu.sh RUNS DIR LTVPIPE [LTVPIPE...]
#
# Wall and CPU seconds (user + system), peak RSS, page faults and thread switches of
# `ltvpipe score --users DIR/data/users.csv --events DIR/data/events.csv`
# for each binary, RUNS times, the binaries taking turns so a change in the
# machine's load falls on all of them alike; prints every run and then each
# binary's medians and its CPU per scored user. Wall is kept for a quiet
# machine (issue 13's target is wall); under load, read CPU. DIR is a directory where
# `ltvpipe run` has trained a model version on DIR/data (its models/ registry;
# config/ltvpipe.yaml of this tree). CPU, not wall: the machine is shared;
# page faults (perf stat, when perf is there) count what the kernel did for
# the memory touched, which load does not change; context switches count the
# handovers between threads (futex waits and wake-ups: dear on this VM). Outputs go to a scratch
# directory; bench/score_csv_same.sh checks that they are the same.
#
# Used for issue 13 (scorecsv): hurdle only where needed at the non-target
# horizons, huge pages under the heap, freed blocks kept in the heap.
# PRIO="chrt -f 1" runs each score at a real-time priority (as
# score_read_threads.sh), so that its wall is about a quiet machine's
# (session 17, helper "score-read": the CSV reader's lines).
# Each run writes over the previous run's output, as a daily score does (a
# replaced users file is set aside and removed by another process,
# src/output_set.c); FRESH_OUTPUT=1 removes it first, as bench/sidebyside.sh
# does before its score (session 19, helper "score-lean").
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2p "$0" >&2; exit 2; }
runs=$1 dir=$(realpath "$2")
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
bins=()
for b in "$@"; do bins+=("$(realpath "$b")"); done
out=$(mktemp -d "${TMPDIR:-/tmp}/score-cpu.XXXXXX")
trap 'rm -rf "$out"' EXIT
have_perf=0
read -r -a prio <<<"${PRIO:-}"
perf stat -e page-faults,context-switches true >/dev/null 2>&1 && have_perf=1
echo "score_cpu: $runs runs of ${#bins[@]} binaries on $dir; load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A cpu rss flt csw wall
for ((r = 1; r <= runs; r++)); do
	for b in "${bins[@]}"; do
		wrap=()
		[ "${FRESH_OUTPUT:-0}" = 1 ] && rm -f "$out/scores.csv" "$out"/scores.csv.*
		[ $have_perf = 1 ] && wrap=(perf stat -x, -e page-faults,context-switches -o "$out/perf")
		(cd "$dir" && "${prio[@]}" /usr/bin/time -f '%U %S %M %e' -o "$out/time" "${wrap[@]}" "$b" score \
			--config "$root/config/ltvpipe.yaml" --users data/users.csv \
			--events data/events.csv --output "$out/scores.csv" >/dev/null 2>"$out/stderr") ||
			{ echo "score_cpu: $b failed:" >&2; cat "$out/stderr" >&2; exit 1; }
		read -r u s m e <"$out/time"
		c=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
		f=$([ $have_perf = 1 ] && awk -F, '/page-faults/ { print $1 }' "$out/perf" || echo n/a)
		w=$([ $have_perf = 1 ] && awk -F, '/context-switches/ { print $1 }' "$out/perf" || echo n/a)
		cpu[$b]+="$c " wall[$b]+="$e " rss[$b]+="$((m / 1024)) " flt[$b]+="$f " csw[$b]+="$w "
		printf 'score_cpu: run %d %s: %s s wall, %s CPU s (%s user, %s sys), %d MB, %s page faults, %s context switches\n' \
			"$r" "$b" "$e" "$c" "$u" "$s" $((m / 1024)) "$f" "$w"
	done
done
scored=$(awk -F, 'NR > 1 && !/older than the longest horizon/ { n++ } END { print n + 0 }' "$out/scores.csv")
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "score_cpu: medians ($scored users scored; load $(cut -d' ' -f1-3 /proc/loadavg)):"
for b in "${bins[@]}"; do
	c=$(median <<<"${cpu[$b]}")
	printf '  %s: %s s wall, %s CPU s (%.2f us per scored user), %s MB, %s page faults, %s context switches\n' "$b" \
		"$(median <<<"${wall[$b]}")" "$c" \
		"$(awk -v c="$c" -v n="$scored" 'BEGIN { print n ? 1e6 * c / n : 0 }')" \
		"$(median <<<"${rss[$b]}")" "$(median <<<"${flt[$b]}")" "$(median <<<"${csw[$b]}")"
done

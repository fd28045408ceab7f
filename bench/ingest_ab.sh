#!/usr/bin/env bash
# usage: bench/ingest_ab.sh BIN_BEFORE BIN_AFTER DATA_DIR RUNS
#
# Ingest's wall time, base against new, on a machine others share: RUNS
# alternating pairs of `run --only ingest` on DATA_DIR's users.csv and
# events.csv (the 1M sample: /work/tmp-s11/d1m), each in a fresh registry,
# then each binary's medians: wall s, MB of CSV per wall second, CPU s (user
# + system), MB per CPU second, peak RSS, and the load average seen. The
# walls of a shared machine are the others' load; PRIO="chrt -f 1" runs
# each ingest at a real-time priority (as root), so it has both cores
# whenever it wants them and the wall is about a quiet machine's (what the
# users writer running beside the events parse needs to show; the other
# processes wait meanwhile). CPU seconds compare with or without it.
# THEN_RUN=1 also times the `run` (features … calibrate) that follows each
# ingest in its registry, as bench/sidebyside.sh's cold training does: what
# ingest leaves to the next process (its WAL) shows there, and a second table
# gives that run's medians and the two processes' sum.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 4 ] && [[ $4 =~ ^[1-9][0-9]*$ ]] || bench_usage "BIN_BEFORE BIN_AFTER DATA_DIR RUNS"
before=$(bench_binary "$1") after=$(bench_binary "$2") data=$(realpath "$3") runs=$4
[ -f "$data/users.csv" ] && [ -f "$data/events.csv" ] || bench_fail "no users.csv and events.csv in $data"
bench_need_time
bench_scratch ingest-ab
mb=$(du -cb "$data/users.csv" "$data/events.csv" | awk 'END { printf "%.1f", $1 / 1e6 }')
read -r -a prio <<<"${PRIO:-}"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for i in $(seq "$runs"); do
	for side in before after; do
		bin=$before
		[ $side = after ] && bin=$after
		d=$scratch/$side.$i
		mkdir -p "$d" && cp -r "$root/config" "$d/"
		(cd "$d" && "${prio[@]}" /usr/bin/time -f '%e %U %S %M' -o t "$bin" run --only ingest \
			--set "input.users=$data/users.csv" --set "input.events=$data/events.csv" >out 2>err) ||
			{ cat "$d/err" >&2; exit 1; }
		echo "$(cat "$d/t") $(cut -d' ' -f1 /proc/loadavg)" >>"$scratch/$side"
		if [ "${THEN_RUN:-0}" = 1 ]; then
			(cd "$d" && "${prio[@]}" /usr/bin/time -f '%e %U %S %M' -o r "$bin" run \
				--set "input.users=$data/users.csv" --set "input.events=$data/events.csv" >out 2>err) ||
				{ cat "$d/err" >&2; exit 1; }
			paste -d' ' "$d/t" "$d/r" >>"$scratch/$side.run"
		fi
		rm -rf "$d"
	done
done
echo "| $mb MB of CSV, medians of $runs alternating${PRIO:+ ($PRIO)} | wall s | MB/s | CPU s | MB/CPU-s | peak RSS MB | load |"
echo "|---|---|---|---|---|---|---|"
for side in before after; do
	f=$scratch/$side
	wall=$(cut -d' ' -f1 "$f" | median)
	cpu=$(awk '{ print $2 + $3 }' "$f" | median)
	rss=$(cut -d' ' -f4 "$f" | median)
	load=$(cut -d' ' -f5 "$f" | sort -g | sed -n '1p;$p' | paste -sd-)
	awk -v s="$side" -v w="$wall" -v c="$cpu" -v r="$rss" -v mb="$mb" -v l="$load" 'BEGIN {
		printf "| %s | %.2f | %.0f | %.2f | %.0f | %.0f | %s |\n", s, w, mb / w, c, mb / c, r / 1024, l }'
done
[ "${THEN_RUN:-0}" = 1 ] || exit 0
echo
echo "| then \`run\`, medians of $runs | run wall s | run CPU s | run peak RSS MB | ingest + run wall s | ingest + run CPU s |"
echo "|---|---|---|---|---|---|"
for side in before after; do
	f=$scratch/$side.run
	awk -v s="$side" '{ rw[NR] = $5; rc[NR] = $6 + $7; rr[NR] = $8; tw[NR] = $1 + $5; tc[NR] = $2 + $3 + $6 + $7 }
		function med(a, n,  i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
		END { printf "| %s | %.2f | %.2f | %.0f | %.2f | %.2f |\n", s, med(rw, NR), med(rc, NR), med(rr, NR) / 1024, med(tw, NR), med(tc, NR) }' "$f"
done

#!/usr/bin/env bash
# usage: bench/ingest_tail.sh BIN_BEFORE BIN_AFTER DATA_DIR RUNS
#
# Ingest's serial tail after the events parse, base against new, from a perf
# timeline of each run (RUNS alternating pairs of `run --only ingest` on
# DATA_DIR's users.csv and events.csv, each in a fresh registry): for each
# run the seconds between the first and the last sample whose stack holds
# ingest_parse_user_days (grouping the user-days; count_half and
# scatter_half, its halves on the second thread), registry_user_days_add
# before user_day_block_encode (its checks; check_half), and
# user_day_block_encode (measure_half, write_half), and the whole tail:
# from the grouping's first sample to the process's last; and the users
# writer's CPU seconds (the samples of the thread with the most
# sqlite3VdbeExec samples, at 999 a second). A
# phase of 0.02-0.05 s is lost in the process wall's noise on a shared
# machine; its own span is not. Needs perf; PRIO="chrt -f 1" as in
# bench/ingest_ab.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -eq 4 ] && [[ $4 =~ ^[1-9][0-9]*$ ]] || bench_usage "BIN_BEFORE BIN_AFTER DATA_DIR RUNS"
before=$(bench_binary "$1") after=$(bench_binary "$2") data=$(realpath "$3") runs=$4
command -v perf >/dev/null || bench_fail "perf is not installed"
bench_scratch ingest-tail
read -r -a prio <<<"${PRIO:-}"

# perf script's samples (a "tid time:" line, then one frame a line) -> the four spans, the writer's CPU.
spans() {
	awk '/^[^\t]/ { t = $2 + 0; if (t > last) last = t; tid = $1; n[tid]++; leaf = 1; next }
	     /^\t/ && leaf { if ($2 == "sqlite3VdbeExec") vdbe[tid]++; leaf = 0 }
	     /ingest_parse_user_days|count_half|scatter_half/ { if (!g0 || t < g0) g0 = t; if (t > g1) g1 = t }
	     /registry_user_days_add|check_half/ { if (!a0 || t < a0) a0 = t }
	     /user_day_block_encode|measure_half|write_half/ { if (!e0 || t < e0) e0 = t; if (t > e1) e1 = t }
	     END { for (k in vdbe) if (vdbe[k] > vdbe[w]) w = k
		   printf "%.3f %.3f %.3f %.3f %.2f\n", g1 - g0, e0 - a0, e1 - e0, last - g0, n[w] / 999 }'
}

echo "| run | binary | grouping s | checks s | encode s | tail s | writer CPU s |"
echo "|---|---|---|---|---|---|---|"
for i in $(seq "$runs"); do
	for side in before after; do
		bin=$before
		[ $side = after ] && bin=$after
		d=$scratch/$side.$i
		mkdir -p "$d" && cp -r "$root/config" "$d/"
		(cd "$d" && "${prio[@]}" perf record -q -F 999 -g -o perf.data "$bin" run --only ingest \
			--set "input.users=$data/users.csv" --set "input.events=$data/events.csv" >out 2>err) ||
			{ cat "$d/err" >&2; exit 1; }
		echo "| $i | $side | $(perf script -F tid,time,ip,sym -i "$d/perf.data" 2>/dev/null | spans | sed 's/ / | /g') |"
		rm -rf "$d"
	done
done

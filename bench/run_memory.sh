#!/usr/bin/env bash
# usage: bench/run_memory.sh DIR [RUN ARGS...]
#
# Where the peak memory of a run is: runs `ltvpipe run RUN ARGS` in DIR (which
# holds data/ and, for a warm start, models/), samples the process's resident
# memory every 0.1 s and notes which stages were running at each sample
# (from the run's "stage N of M: NAME" log lines and "NAME: done" lines).
# Prints, per stage, the highest RSS sampled while it ran (with whatever ran
# beside it) and the run's peak with the stages running at that moment; the
# samples stay in DIR/rss.samples and the timestamped output in DIR/run.events.
#
# Example (a cold run on 1,000,000 generated users):
#   ltvpipe generate --users 1000000 --order time --out /tmp/m/data
#   nice bench/run_memory.sh /tmp/m --config config/ltvpipe.yaml
# Uses ./ltvpipe of the repository, or LTVPIPE. RSS is the kernel's VmRSS:
# neighbours on a shared machine change the time, not the memory.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/run_memory.sh DIR [RUN ARGS...]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${LTVPIPE:-$root/ltvpipe}")
dir=$1
shift
cd "$dir"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

stamp() { # prefixes each line with the time it was read
	local line
	while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}

rm -f rss.samples run.events
mkfifo run.fifo.out run.fifo.err run.fifo.nap
trap 'rm -f run.fifo.out run.fifo.err run.fifo.nap' EXIT
exec {nap}<>run.fifo.nap # never written: read -t on it sleeps without starting a process
stamp <run.fifo.out >run.events.out &
s1=$!
stamp <run.fifo.err >run.events.err &
s2=$!
stdbuf -oL "$bin" run "$@" >run.fifo.out 2>run.fifo.err &
pid=$!
while [ -r "/proc/$pid/status" ]; do
	while read -r k v _; do
		if [ "$k" = VmRSS: ]; then printf '%s %s\n' "$EPOCHREALTIME" "$v" >>rss.samples; break; fi
	done <"/proc/$pid/status" 2>/dev/null || true
	read -r -t 0.1 -u "$nap" _ || true
done
rc=0
wait "$pid" || rc=$?
wait "$s1" "$s2"
sort -n -s -k1,1 run.events.out run.events.err >run.events
rm -f run.events.out run.events.err
[ "$rc" -eq 0 ] || { echo "bench: run failed (exit $rc):" >&2; tail -20 run.events >&2; exit 1; }

# Merge: a stage runs from its "stage N of M: NAME" line to its "NAME: done" line.
awk '
FNR == NR {
	if (match($0, /stage [0-9]+ of [0-9]+: [a-z_]+/)) {
		split(substr($0, RSTART, RLENGTH), w, " ")
		ev[++n] = $1; what[n] = "+" w[5]
	} else if ($2 ~ /^[a-z_]+:$/ && $3 == "done") {
		ev[++n] = $1; what[n] = "-" substr($2, 1, length($2) - 1)
	}
	next
}
{
	while (k < n && ev[k + 1] <= $1) {
		k++
		s = substr(what[k], 2)
		if (substr(what[k], 1, 1) == "+") { running[s] = 1; if (!(s in order)) order[s] = ++ns; names[ns] = s }
		else delete running[s]
	}
	mb = $2 / 1024
	now = ""
	for (s in running) { now = now (now == "" ? "" : ",") s; if (mb > peak[s]) peak[s] = mb }
	if (mb > top) { top = mb; topnow = now }
}
END {
	for (i = 1; i <= ns; i++) printf "bench: %-11s peak %7.1f MB (sampled while it ran)\n", names[i], peak[names[i]]
	printf "bench: run peak %7.1f MB, running then: %s\n", top, topnow == "" ? "(between stages)" : topnow
}' run.events rss.samples

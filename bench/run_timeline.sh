#!/usr/bin/env bash
# usage: bench/run_timeline.sh LTVPIPE MODELS_DIR DATA_DIR [RUN ARGS...]
#
# Where a run leaves a core idle: `LTVPIPE run RUN ARGS` on a copy of
# MODELS_DIR (e.g. the ingested registry, for the cold run after ingest, or
# a trained one with `--only select,calibrate --force`) over DATA_DIR, with
# `--set run.log_level=debug` (each stage logs "running" when a worker takes
# it and "done" when it has committed), while every thread's CPU clock and
# state (utime + stime and R/S/D of /proc/PID/task/*/stat) are read every
# SAMPLE_MS (default 25) ms. Prints:
#   - per BUCKET_MS (default 250) ms: the cores the process used, the threads
#     wanting a CPU (running or runnable, mean over the sweeps, at most CORES,
#     default 2), the busiest thread's share, the threads that used CPU, and
#     the stages running then;
#   - per wave: wall, CPU seconds, the mean of "want", and "<=1 s": the
#     seconds in which at most one thread wanted a CPU (a core idle on a
#     quiet machine, whatever the neighbours' load); then each stage's times.
# Threads wanting a CPU do not depend on the neighbours the way CPU used
# does; the CPU and wall figures do: PRIO="chrt -f 1" runs the run at a
# real-time priority (the sampler and the line stamper then at 2, above it).
# The sampler costs the run a little CPU: its wall is longer than
# bench/train_ab.sh's. KEEP=DIR keeps the raw samples and lines there;
# REPLAY=DIR prints the figures of a kept run again without running.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 3 ] || bench_usage "LTVPIPE MODELS_DIR DATA_DIR [RUN ARGS...]"
# realpath: a MODELS_DIR that is a symlink (the shared /work/tmp-s19/models.*) is
# copied as its target, never as a link into the shared registry
bin=$(bench_binary "$1") models=$(realpath "$2") data=$(realpath "$3")
shift 3
sample_ms=${SAMPLE_MS:-25} bucket_ms=${BUCKET_MS:-250} cores=${CORES:-2}
read -r -a prio <<<"${PRIO:-}"
bench_scratch timeline
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
hz=$(getconf CLK_TCK)

# sample PID: "S time tid comm ticks" lines every sample_ms until PID exits;
# bash builtins only, so the sampler forks nothing between samples.
sample() {
	local pid=$1 f line rest nap tid
	local -a fields
	exec {nap}<> <(:)
	while [ -d "/proc/$pid" ]; do
		printf 'P %s\n' "$EPOCHREALTIME"
		for f in /proc/"$pid"/task/*/stat; do
			{ read -r line <"$f"; } 2>/dev/null || continue # a thread just gone
			rest=${line##*) }     # the fields after "(comm) "
			read -r -a fields <<<"$rest"
			line=${line#*(}
			line=${line%%)*}
			tid=${f#/proc/*/task/}
			printf 'S %s %s %s %d %s\n' "$EPOCHREALTIME" "${tid%/stat}" "${line// /_}" \
				$((fields[11] + fields[12])) "${fields[0]}"
		done
		read -r -t "$(printf '0.%03d' "$sample_ms")" -u "$nap" || true
	done
}

# Under PRIO the sampler and the stamper must outrank the run, or they wait
# for its cores and the samples and the lines' times come late.
outrank_the_run() {
	[ -z "${PRIO:-}" ] || chrt -f -p 2 "$BASHPID" >/dev/null
}

# stamp: the run's output lines, each prefixed by the time it arrived
stamp() {
	local line
	while IFS= read -r line; do printf 'L %s %s\n' "$EPOCHREALTIME" "$line"; done
}

# REPLAY=DIR: analyse what KEEP=DIR kept instead of running
if [ -n "${REPLAY:-}" ]; then
	cp "$REPLAY"/{samples,lines,time} "$scratch/"
	cp "$REPLAY/start" "$scratch/" 2>/dev/null ||
		awk '$1 == "S" { print $2; exit }' "$scratch/samples" >"$scratch/start"
else
mkdir "$scratch/run"
ln -s "$data" "$scratch/run/data"
cp -a "$models" "$scratch/run/models"
start=$EPOCHREALTIME
# run.log_level=debug: each stage logs "running" when a worker takes it
(cd "$scratch/run" && echo "$BASHPID" >"$scratch/timer.pid" &&
	exec "${prio[@]}" /usr/bin/time -f '%U %S %M %e' -o "$scratch/time" \
	"$bin" run --config "$root/config/ltvpipe.yaml" --set run.log_level=debug "$@" 2>&1) |
	(outrank_the_run; stamp) >"$scratch/lines" &
runner=$!
# The run is /usr/bin/time's child: found from its children with builtins
# only, above the run's priority. A pgrep loop took up to 1.3 s to find it
# at load 25, and the features stage went unsampled.
find_run() {
	local timer='' pid='' nap
	exec {nap}<> <(:)
	for _ in $(seq 5000); do
		[ -n "$timer" ] || { read -r timer <"$scratch/timer.pid"; } 2>/dev/null || true
		[ -z "$timer" ] || { read -r pid _ <"/proc/$timer/task/$timer/children"; } 2>/dev/null || true
		[ -z "$pid" ] || break
		read -r -t 0.001 -u "$nap" || true
	done
	echo "$pid"
}
pid=$(outrank_the_run; find_run)
[ -n "$pid" ] || bench_fail "the run did not start"
(outrank_the_run; sample "$pid") >"$scratch/samples"
wait "$runner" || { tail -20 "$scratch/lines" >&2; bench_fail "the run failed"; }
echo "$start" >"$scratch/start"
fi
start=$(cat "$scratch/start" 2>/dev/null || echo "$start")
read -r u s m wall <"$scratch/time"
echo "run: ${*:-(cold)}; $(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') s CPU, $wall s wall, $((m / 1024)) MB peak RSS; load $(cut -d' ' -f1-3 /proc/loadavg)${PRIO:+ ($PRIO)}"
[ -z "${KEEP:-}" ] || { mkdir -p "$KEEP"; cp "$scratch"/{samples,lines,time,start} "$KEEP/"; }

sort -s -k2,2n "$scratch/samples" "$scratch/lines" | awk -v hz="$hz" -v start="$start" \
	-v bucket="$bucket_ms" -v cores="$cores" '
	function running_now(   s, out) {
		out = ""
		for (s in running) out = out (out == "" ? "" : ",") s
		return out == "" ? "-" : out
	}
	function end_sweep() { # the threads wanting a CPU (state R) at the last sweep
		if (sweep_b < 0) return
		sweeps[sweep_b]++
		want[sweep_b] += n_r < cores ? n_r : cores
		if (n_r <= 1) lone[sweep_b]++
	}
	BEGIN { sweep_b = -1 }
	$1 == "L" && / in parallel: / {
		line = $0; sub(/.* in parallel: */, "", line)
		n_waves++; wave_label[n_waves] = line; wave_from[n_waves] = $2 - start
		gsub(/ /, "", line); wave_left[n_waves] = split(line, names, ",")
		for (i in names) wave_of[names[i]] = n_waves
		next
	}
	$1 == "L" && / stage=[a-z_]+ running \(/ {
		st = $0; sub(/.* stage=/, "", st); sub(/ .*/, "", st)
		running[st] = 1; st_from[st] = $2 - start
		if (!(st in wave_of)) {
			n_waves++; wave_label[n_waves] = st; wave_from[n_waves] = $2 - start
			wave_left[n_waves] = 1; wave_of[st] = n_waves
		}
		next
	}
	$1 == "L" && / stage=[a-z_]+ done: v/ {
		st = $0; sub(/.* stage=/, "", st); sub(/ .*/, "", st)
		if (!(st in running)) next
		delete running[st]; st_to[st] = $2 - start; order[++n_st] = st
		w = wave_of[st]
		if (--wave_left[w] == 0) wave_to[w] = $2 - start
		next
	}
	$1 == "P" {
		end_sweep()
		t = $2 - start; sweep_b = b = int(t * 1000 / bucket); n_r = 0
		if (b > b_max) b_max = b
		at[b] = running_now()
		next
	}
	$1 == "S" {
		tid = $3
		n_r += $6 == "R"
		if ((tid in last) && $5 > last[tid]) {
			d = ($5 - last[tid]) / hz
			cpu[b] += d; thr[b, tid] += d
			if (thr[b, tid] > top[b]) top[b] = thr[b, tid]
			if (!((b, tid) in seen)) { seen[b, tid] = 1; n_thr[b]++ }
		}
		last[tid] = $5
	}
	# per bucket: cores used, threads wanting a CPU (mean over sweeps, at most
	# CORES), and the share of sweeps with at most one wanting one
	function lone_s(b) { return sweeps[b] ? lone[b] / sweeps[b] * sec : 0 }
	END {
		end_sweep()
		sec = bucket / 1000
		printf "%7s %6s %6s %6s %4s  %s\n", "t s", "cores", "want", "top", "thr", "stages running"
		for (b = 0; b <= b_max; b++) {
			printf "%7.2f %6.2f %6.2f %6.2f %4d  %s\n", b * sec, cpu[b] / sec,
				sweeps[b] ? want[b] / sweeps[b] : 0, top[b] / sec, n_thr[b], at[b]
			single += lone_s(b)
			all += cpu[b]
		}
		printf "\n%-40s %6s %6s %6s %6s %7s\n", "wave", "from s", "wall s", "CPU s", "want", "<=1 s"
		for (w = 1; w <= n_waves; w++) {
			c = 0; one = 0; ws = 0; nb = 0
			for (b = int(wave_from[w] / sec); b < int(wave_to[w] / sec); b++) {
				c += cpu[b]; one += lone_s(b); ws += sweeps[b] ? want[b] / sweeps[b] : 0; nb++
			}
			printf "%-40s %6.2f %6.2f %6.2f %6.2f %7.2f\n", substr(wave_label[w], 1, 40), wave_from[w],
				wave_to[w] - wave_from[w], c, nb ? ws / nb : 0, one
		}
		printf "\n%-20s %6s %6s %6s\n", "stage", "from s", "to s", "wall s"
		for (i = 1; i <= n_st; i++)
			printf "%-20s %6.2f %6.2f %6.2f\n", order[i], st_from[order[i]], st_to[order[i]], st_to[order[i]] - st_from[order[i]]
		printf "\nsampled CPU %.2f s over %.2f s; at most one thread wanting a CPU for %.2f s (\"<=1 s\": sweeps with at most one thread running or runnable, in seconds)\n", all, (b_max + 1) * sec, single
	}'

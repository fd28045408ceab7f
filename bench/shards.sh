#!/usr/bin/env bash
# usage: bench/shards.sh USERS
#
# Sharded features and scoring (README "Scale out") on USERS generated users
# (`make bench-shards`, also run by `make bench`: 200000 users), at N = 1, 2
# and 4 shards, each shard's commands run one after another on this machine
# so each figure is one shard's own cost (on a cluster they run side by side):
#
#  - unsharded reference: `run --to features`, training (`run`), `score`;
#  - per N: each shard's `run --only ingest --shard i/N` and `run --only
#    features --shard i/N --as-of T` (wall s and peak RSS), `merge` (wall,
#    RSS), the merged features' content hash against the reference; each
#    shard's `score --shard i/N`, `merge-scores`, and whether the merged
#    outputs are byte-identical to the reference's.
#
# Then an estimate for 100,000,000 users on 50 workers, from a least-squares
# fit of each per-shard cost as a + b / N (a: the part every shard pays for
# the whole data, e.g. reading every input row to find its own users; b: the
# part proportional to the shard's users) and of merge and merge-scores as
# proportional to the users. Prints one table and appends it to
# bench/results.md (BENCH_RESULTS). Peak RSS from GNU /usr/bin/time.
set -euo pipefail

[ $# -eq 1 ] && [[ $1 =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/shards.sh USERS" >&2; exit 2; }
users=$1
root=$(cd "$(dirname "$0")/.." && pwd)
src_bin=${LTVPIPE:-$root/ltvpipe}
results=${BENCH_RESULTS:-$root/bench/results.md}
[ -x "$src_bin" ] || { echo "bench-shards: no ltvpipe binary at '$src_bin'; run 'make' first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-shards: needs GNU time (/usr/bin/time, Debian package 'time')" >&2; exit 2; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvpipe-bench-shards.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
bin=$scratch/ltvpipe
cp "$src_bin" "$bin"
cd "$scratch"

# timed CMD...: sets wall (s) and rss (MB); fails loudly with the output.
wall= rss=
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	if ! /usr/bin/time -f '%M' -o time.out "$@" >step.log 2>&1; then
		echo "bench-shards: FAILED: $*" >&2
		tail -20 step.log | sed 's/^/  | /' >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rss=$(awk '$1 ~ /^[0-9]+$/ { printf "%.1f", $1 / 1024 }' time.out)
}
features_hash() {
	sqlite3 "$1" "select a.content_hash from current_artefacts c join artefacts a on a.id = c.artefact_id where c.name = 'features'"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench-shards: $users users; $(nproc) CPUs; load average $load_start; scratch $scratch"
timed "$bin" generate --users "$users" --out data
events=$(($(wc -l <data/events.csv) - 1))
timed "$bin" run --to features --set registry.path=full.sqlite
ref_features=$wall ref_features_rss=$rss
ref_hash=$(features_hash full.sqlite)
timed "$bin" run --set registry.path=full.sqlite
ref_train=$wall
timed "$bin" score --set registry.path=full.sqlite --output full.csv
ref_score=$wall ref_score_rss=$rss
echo "bench-shards: unsharded features ${ref_features} s, training ${ref_train} s, score ${ref_score} s"

rows=()     # table rows
fit=()      # "N ingest features score" mean per-shard seconds, for the fit
merge_fit=() # "merge_s merge_scores_s"
declare -A peaks
merge_rss1=0
for n in 1 2 4; do
	latest=0 sum_i=0 sum_f=0 sum_s=0 max_i=0 max_f=0 max_s=0 rss_i=0 rss_f=0 rss_s=0
	for ((i = 0; i < n; i++)); do
		timed "$bin" run --only ingest --shard $i/$n --set registry.path=s$n-$i.sqlite
		sum_i=$(awk -v a="$sum_i" -v b="$wall" 'BEGIN { print a + b }')
		max_i=$(awk -v a="$max_i" -v b="$wall" 'BEGIN { print (b > a ? b : a) }')
		rss_i=$(awk -v a="$rss_i" -v b="$rss" 'BEGIN { print (b > a ? b : a) }')
		t=$(sqlite3 s$n-$i.sqlite "select value from meta where key = 'max_event_time'")
		[ "$t" -gt "$latest" ] && latest=$t
	done
	as_of=$(date -u -d @"$latest" +%Y-%m-%dT%H:%M:%SZ)
	for ((i = 0; i < n; i++)); do
		timed "$bin" run --only features --shard $i/$n --as-of "$as_of" --set registry.path=s$n-$i.sqlite
		sum_f=$(awk -v a="$sum_f" -v b="$wall" 'BEGIN { print a + b }')
		max_f=$(awk -v a="$max_f" -v b="$wall" 'BEGIN { print (b > a ? b : a) }')
		rss_f=$(awk -v a="$rss_f" -v b="$rss" 'BEGIN { print (b > a ? b : a) }')
	done
	shards=()
	for ((i = 0; i < n; i++)); do shards+=(s$n-$i.sqlite); done
	timed "$bin" merge --set registry.path=m$n.sqlite "${shards[@]}"
	merge_s=$wall merge_rss=$rss
	same_features=different
	[ "$(features_hash m$n.sqlite)" = "$ref_hash" ] && same_features=identical
	parts=()
	for ((i = 0; i < n; i++)); do
		timed "$bin" score --set registry.path=full.sqlite --shard $i/$n --output p$n-$i.csv
		sum_s=$(awk -v a="$sum_s" -v b="$wall" 'BEGIN { print a + b }')
		max_s=$(awk -v a="$max_s" -v b="$wall" 'BEGIN { print (b > a ? b : a) }')
		rss_s=$(awk -v a="$rss_s" -v b="$rss" 'BEGIN { print (b > a ? b : a) }')
		parts+=(p$n-$i.csv)
	done
	timed "$bin" merge-scores --set registry.path=full.sqlite --output merged$n.csv "${parts[@]}"
	ms_s=$wall ms_rss=$rss
	same_scores=byte-identical
	for f in "" .campaigns.csv .report.txt; do cmp -s "full.csv$f" "merged$n.csv$f" || same_scores=DIFFERENT; done
	mean() { awk -v s="$1" -v n="$n" 'BEGIN { printf "%.3f", s / n }'; }
	rows+=("| $n | $(mean "$sum_i") / $max_i / $rss_i | $(mean "$sum_f") / $max_f / $rss_f | $merge_s / $merge_rss | $same_features | $(mean "$sum_s") / $max_s / $rss_s | $ms_s / $ms_rss | $same_scores |")
	fit+=("$n $(mean "$sum_i") $(mean "$sum_f") $(mean "$sum_s")")
	peaks[$n]="$rss_i $rss_f $rss_s"
	[ $n = 1 ] && merge_rss1=$merge_rss
	merge_fit+=("$merge_s $ms_s")
	echo "bench-shards: N=$n done (features $same_features, scores $same_scores)"
done

# Least squares of t = a + b / N over the three N for column k of fit[].
fit_ab() {
	printf '%s\n' "${fit[@]}" | awk -v k="$1" '{ x = 1 / $1; y = $k; n++; sx += x; sy += y; sxx += x * x; sxy += x * y }
		END { b = (n * sxy - sx * sy) / (n * sxx - sx * sx); a = (sy - b * sx) / n; printf "%.6g %.6g", a, b }'
}
read -r ai bi <<<"$(fit_ab 2)"
read -r af bf <<<"$(fit_ab 3)"
read -r as bs <<<"$(fit_ab 4)"
# Merge costs per user: the mean over N of seconds / users.
merge_per_user=$(printf '%s\n' "${merge_fit[@]}" | awk -v u="$users" '{ s += $1 } END { printf "%.6g", s / NR / u }')
ms_per_user=$(printf '%s\n' "${merge_fit[@]}" | awk -v u="$users" '{ s += $2 } END { printf "%.6g", s / NR / u }')
scored=$(($(wc -l <full.csv) - 1))
# Memory per million users of a shard: the growth of each command's peak from the shard of
# N = 4 to the shard of N = 1 (so without the fixed part), the largest of ingest, features, score.
read -r rss_per_m rss_fixed <<<"$(awk -v a="${peaks[1]}" -v b="${peaks[4]}" -v u="$users" 'BEGIN {
	split(a, x, " "); split(b, y, " "); best = 0
	for (k = 1; k <= 3; k++) { s = (x[k] - y[k]) / (0.75 * u / 1e6); if (s > best) { best = s; f = x[k] - s * u / 1e6 } }
	printf "%.0f %.0f", best, f }')"
merge_per_m=$(awk -v r="$merge_rss1" -v u="$users" 'BEGIN { printf "%.0f", r / (u / 1e6) }')

estimate=$(awk -v U="$users" -v ai="$ai" -v bi="$bi" -v af="$af" -v bf="$bf" -v as="$as" -v bs="$bs" \
	-v mu="$merge_per_user" -v msu="$ms_per_user" -v sc="$scored" -v rpm="$rss_per_m" -v rfix="$rss_fixed" -v mpm="$merge_per_m" 'BEGIN {
	T = 1e8; W = 50; N = 50; k = T / U            # 50 shards of 2 million users, one per worker
	# a scales with the whole data (every shard reads it all), b with the shard.
	# b was fitted as the cost of N shards of U users together: one shard of T/N users costs b*k/N.
	ing = ai * k + bi * k / N; fea = af * k + bf * k / N; sco = as * k + bs * k / N
	mer = mu * T; msc = msu * sc * k
	printf "| ingest, per shard (every shard reads all input rows) | %.0f s (%.1f h) |\n", ing, ing / 3600
	printf "| features, per shard | %.0f s |\n", fea
	printf "| merge (one machine) | %.0f s (%.1f h) |\n", mer, mer / 3600
	printf "| score, per shard (reads every user'"'"'s id and days; builds and predicts its own cohorts) | %.0f s (%.1f h) |\n", sco, sco / 3600
	printf "| merge-scores (one machine, %.0f M scored users) | %.0f s |\n", sc * k / 1e6, msc
	printf "| **features + merge** | **%.1f h** |\n", (ing + fea + mer) / 3600
	printf "| **scoring + merge-scores** | **%.1f h** |\n", (sco + msc) / 3600
	printf "| memory per shard of 2 M users (%.0f MB per million users + %.0f MB) | %.1f GB |\n", rpm, rfix, (2 * rpm + rfix) / 1024
	printf "| memory of the merge, one machine (%.0f MB per million users, all users) | %.0f GB |\n", mpm, 100 * mpm / 1024
}')

table=$scratch/table.md
{
	echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — sharded features and scoring (bench/shards.sh), $users users"
	echo
	echo "Machine: $(nproc) CPUs, load average $load_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at end. Data:"
	echo "$users users, $events events (\`ltvpipe generate\`). Shards run one after another, so each figure is"
	echo "one shard alone. Unsharded reference: features (ingest + features) $ref_features s, peak $ref_features_rss MB;"
	echo "training $ref_train s; score $ref_score s, peak $ref_score_rss MB ($scored users scored)."
	echo
	echo "| N | ingest per shard: mean s / max s / peak MB | features per shard | merge s / MB | merged features vs unsharded (content hash) | score per shard | merge-scores s / MB | merged scores vs unsharded |"
	echo "|---:|---|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "Fit per shard, t = a + b/N (s): ingest a=$ai b=$bi; features a=$af b=$bf; score a=$as b=$bs."
	echo "Merge $merge_per_user s per user; merge-scores $ms_per_user s per scored user."
	echo
	echo "Estimate, 100,000,000 users on 50 workers (50 shards of 2 M users, one per worker; the costs"
	echo "above scaled by users, a with the whole data, b with the shard's users; training not included)."
	echo "An upper bound: a also holds what does not grow with the data (process start, loading the"
	echo "model), scaled here as if it did. Memory per million users: each command's peak growth from"
	echo "the shard of N = 4 to that of N = 1, the largest of ingest, features and score, plus its fixed part."
	echo
	echo "| step | estimate |"
	echo "|---|---:|"
	echo "$estimate"
	echo
} >"$table"
cat "$table"
mkdir -p "$(dirname "$results")"
cat "$table" >>"$results"
echo "bench-shards: appended to $results"

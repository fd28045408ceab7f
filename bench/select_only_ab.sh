#!/usr/bin/env bash
# usage: bench/select_only_ab.sh BIN_BEFORE BIN_AFTER TRAINED_MODELS_DIR RUNS
#
# `run --only select --force` of two binaries, RUNS times each, alternating
# which goes first, each on its own copy of a trained registry
# (TRAINED_MODELS_DIR, e.g. a cold run's models/ at 1,000,000 users; it is
# only read). Prints each run's CPU seconds (user + system), peak RSS and
# wall, the medians, and whether select's content hash is the same on both
# sides (exit 1 if not). Read CPU seconds on a shared machine, not walls.
set -euo pipefail
before=$1 after=$2 trained=$3 runs=${4:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvpipe-selab.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
declare -A cpus hashes
one() { # side bin
	local dir=$scratch/$1
	rm -rf "$dir" && mkdir -p "$dir" && cp -r "$trained" "$dir/models"
	(cd "$dir" && OMP_WAIT_POLICY=PASSIVE /usr/bin/time -f '%U %S %M %e' -o time \
		"$2" run --config "$root/config/ltvpipe.yaml" --only select --force --quiet >/dev/null)
	read -r u s m e <"$dir/time"
	local cpu; cpu=$(echo "$u + $s" | bc)
	printf 'bench: %-6s %6.2f s CPU, %7.1f MB peak RSS, %6.2f s wall\n' "$1" "$cpu" "$((m / 1024))" "$e"
	cpus[$1]+=" $cpu"
	hashes[$1]=$(sqlite3 "$dir/models/registry.sqlite" \
		"select content_hash from artefacts where name = 'select' order by id desc limit 1")
}
for ((r = 1; r <= runs; r++)); do
	if ((r % 2)); then one before "$before"; one after "$after"; else one after "$after"; one before "$before"; fi
done
med() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "bench: median CPU s: before $(med "${cpus[before]}"), after $(med "${cpus[after]}")"
if [ "${hashes[before]}" = "${hashes[after]}" ]; then echo "select hash identical (${hashes[after]})"; else
	echo "select hash DIFFERS: ${hashes[before]} vs ${hashes[after]}"; exit 1; fi

#!/usr/bin/env bash
# usage: bench/ingest_syscalls.sh DIR BIN...
#
# What ingest asks of the kernel, per binary: `BIN run --only ingest` on a
# fresh registry in DIR (DIR/data/users.csv and events.csv, e.g. a link to
# /work/tmp-s8/d1m), once under perf stat (page faults, context switches,
# task-clock) and once under strace -f -c (system calls by name). Counts do
# not depend on the machine's load, unlike seconds: on the 2-core VMs this
# project runs on a 4 KB page fault costs about 17 us of CPU and a system
# call about 1 us before it does anything (bench/page_faults.c measures the
# first), so the counts say where ingest's system time goes. The seconds
# (user, system, wall: GNU time, from the perf run) are printed beside them
# and mean something only on a quiet machine. Needs perf and strace.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bench/ingest_syscalls.sh DIR BIN..." >&2; exit 2; }
dir=$(realpath "$1")
shift
[ -f "$dir/data/events.csv" ] || { echo "bench/ingest_syscalls.sh: no $dir/data/events.csv" >&2; exit 2; }
command -v perf >/dev/null && command -v strace >/dev/null ||
	{ echo "bench/ingest_syscalls.sh: needs perf and strace" >&2; exit 2; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvpipe-ingest-sys.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mb=$(du -cbL "$dir/data/users.csv" "$dir/data/events.csv" | awk 'END { printf "%.1f", $1 / 1e6 }')

fresh() { rm -rf "$dir/models" "$dir/logs" "$dir/rejects"; }
calls() { awk -v s="$2" '$NF == s { print $4 }' "$1" | head -1; }

echo "| binary ($mb MB of CSV) | page faults | context switches | futex | pwrite64 | pread64 | read | mmap + munmap | user s | sys s | wall s | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for bin in "$@"; do
	bin=$(realpath "$bin")
	fresh
	(cd "$dir" && perf stat -x, -e page-faults,context-switches -o "$scratch/stat" \
		/usr/bin/time -f '%U %S %e %M' -o "$scratch/time" "$bin" run --only ingest --quiet >/dev/null)
	fresh
	(cd "$dir" && strace -f -c -o "$scratch/strace" "$bin" run --only ingest --quiet >/dev/null 2>&1)
	fresh
	faults=$(awk -F, '$3 == "page-faults" { print $1 }' "$scratch/stat")
	switches=$(awk -F, '$3 == "context-switches" { print $1 }' "$scratch/stat")
	maps=$(( $(calls "$scratch/strace" mmap || echo 0) + $(calls "$scratch/strace" munmap || echo 0) ))
	read -r user sys wall rss <"$scratch/time"
	echo "| $(basename "$bin") | $faults | $switches | $(calls "$scratch/strace" futex) |" \
		"$(calls "$scratch/strace" pwrite64) | $(calls "$scratch/strace" pread64) |" \
		"$(calls "$scratch/strace" read) | $maps | $user | $sys | $wall | $((rss / 1024)) |"
done

#!/usr/bin/env bash
# usage: bench/stage_cpu.sh USERS [STAGES [BINARY...]]
#
# CPU of single training stages: generates USERS users (events ordered by
# time), runs the cold pipeline once with the first binary, then for each
# binary and each stage of STAGES (comma-separated, default
# features,tiers,lookalike,curves,bgnbd,pareto_nbd) reruns that stage alone
# (`run --only STAGE --force`, run.jobs 1) and prints its user + system CPU
# seconds. With CALLGRIND=1 it prints instructions executed instead
# (valgrind --tool=callgrind; about 50 times slower, but the one measure that
# holds on a loaded machine). BINARY defaults to ./ltvpipe; give the old and
# the new binary to compare a change:
#   git stash; make; cp ltvpipe /tmp/old; git stash pop; make
#   CALLGRIND=1 nice bench/stage_cpu.sh 100000 bgnbd,pareto_nbd /tmp/old ./ltvpipe
# With PER_BINARY=1 each binary runs the cold pipeline on a registry of its
# own (up to stage $TO when set, `run --to`), so what a binary changes in a
# new registry's layout (its page size) is measured too:
#   PER_BINARY=1 TO=lookalike nice bench/stage_cpu.sh 1000000 features,lookalike /tmp/old ./ltvpipe
# Works in a scratch directory; touches nothing in the tree.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || bench_usage "USERS [STAGES [BINARY...]]"
users=$1
stages=${2:-features,tiers,lookalike,curves,bgnbd,pareto_nbd}
shift $(( $# >= 2 ? 2 : 1 ))
bins=()
for b in "${@:-$root/ltvpipe}"; do bins+=("$(bench_binary "$b")"); done
bench_scratch stagecpu
cd "$scratch"
"${bins[0]}" generate --users "$users" --order time --out data >/dev/null
# ltvpipe re-execs itself unless these are set and the hugetlb tunable is
# given (cli/main.c ensure_runtime_env); under valgrind that exec runs
# valgrind's tool binary and fails, so set them all: no re-exec, the counts
# are the stage's own (valgrind's malloc ignores the tunable).
export OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1
run=(run --config "$root/config/ltvpipe.yaml" --set run.jobs=1 --quiet)
cold=("${run[@]}")
[ -n "${TO:-}" ] && cold+=(--to "$TO")
for k in "${!bins[@]}"; do
	[ "${PER_BINARY:-0}" = 1 ] || [ "$k" = 0 ] || break
	mkdir "$scratch/$k"
	ln -s ../data "$scratch/$k/data"
	(cd "$scratch/$k" && "${bins[$k]}" "${cold[@]}" >cold.log 2>&1) ||
		{ tail -20 "$scratch/$k/cold.log" >&2; exit 1; }
done
printf '%-11s' stage
for b in "${bins[@]}"; do printf ' %22s' "$(basename "$b")"; done
printf '   (%s, %s users)\n' "$([ "${CALLGRIND:-0}" = 1 ] && echo instructions || echo 'CPU s')" "$users"
for s in ${stages//,/ }; do
	printf '%-11s' "$s"
	for k in "${!bins[@]}"; do
		b=${bins[$k]}
		cd "$scratch/$([ "${PER_BINARY:-0}" = 1 ] && echo "$k" || echo 0)"
		if [ "${CALLGRIND:-0}" = 1 ]; then
			v=$(GLIBC_TUNABLES=glibc.malloc.hugetlb=1 valgrind --tool=callgrind \
				--callgrind-out-file=/dev/null "$b" "${run[@]}" \
				--only "$s" --force 2>&1 | sed -n 's/.*Collected : //p')
		else
			/usr/bin/time -o time.txt -f '%U %S' "$b" "${run[@]}" --only "$s" --force \
				>/dev/null 2>&1
			v=$(bench_cpu_seconds time.txt)
		fi
		printf ' %22s' "$v"
	done
	printf '\n'
done

#!/usr/bin/env bash
# Runs the unit tests (cmocka binaries in BUILD/tests), the CLI golden tests
# (tests/cli/NAME.sh with NAME.exit.exp and optional NAME.stdout.exp /
# NAME.stderr.exp), each CLI test in its own scratch directory, and the libFuzzer
# targets for a few seconds each when LTV_FUZZ_BUILD names their build (make
# test sets it). ONLY=GLOB runs just the tests whose name matches (for example
# ONLY='serve*' make cli-test). Each test's line ends with its wall time and
# the CPU time of its processes (the slow ones to look at first; the CPU time
# is the one to compare between machines and loads). Ends with one line "tests: N passed, N failed" and exits
# non-zero when anything failed.
set -uo pipefail
build=${1:?usage: run-tests.sh BUILD [unit|cli|fuzz]}
which=${2:-all} # all, unit, cli or fuzz
root=$(cd "$(dirname "$0")/.." && pwd)
export LTVPIPE="${LTVPIPE:-$root/ltvpipe}"
export LTV_ROOT="$root"
# The expected outputs were made in C.UTF-8: sort and ls order, and what
# tools print, would otherwise follow the caller's locale (en_US sorts "a_b"
# before "a-c"). A time zone of the caller's could change `date` output.
if locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then export LC_ALL=C.UTF-8; else export LC_ALL=C; fi
export TZ=UTC
# score writes scored_at from it, so two scores of the same data compare equal byte for byte
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1767225600}"
export LTV_BUILD="$root/$build" # the objects, for tests that read them (layers.sh)
export LTV_SHARED_DATA="${LTV_SHARED_DATA:-$root/../shared/data}"
passed=0; failed=0; failures=()
# CPU milliseconds (user + system) of this shell's finished children so far:
# what a test costs, unlike its wall time, hardly depends on the machine's load
child_cpu_ms() { # cutime + cstime of this shell ($$, read from /proc: `times` would run in a subshell)
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%d\n", ($14 + $15) * 1000 / hz }' "/proc/$$/stat"
}

if [ "$which" = all ] || [ "$which" = unit ]; then
	for t in "$root/$build"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		[[ $name == ${ONLY:-*} ]] || continue
		t0=$SECONDS; c0=$(child_cpu_ms)
		out=$(cd "$root" && "$t" 2>&1); rc=$?
		secs=$((SECONDS - t0)); cpu=$(($(child_cpu_ms) - c0))
		p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
		f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
		p=${p:-0}; f=${f:-0}
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
		passed=$((passed + p)); failed=$((failed + f))
		if [ "$f" -ne 0 ]; then
			failures+=("unit/$name")
			printf '%s\n' "$out" | grep -v '^\[ \(RUN\|       OK\) ' | sed "s|^|  $name: |"
		fi
		printf 'unit %-28s %3d passed, %d failed (%d s, %d.%d s CPU)\n' "$name" "$p" "$f" "$secs" \
			$((cpu / 1000)) $((cpu % 1000 / 100))
	done
fi

if [ "$which" = all ] || [ "$which" = cli ]; then
	for script in "$root"/tests/cli/*.sh; do
		[ -f "$script" ] || continue
		name=$(basename "$script" .sh)
		[[ $name == ${ONLY:-*} ]] || continue
		scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvcli-XXXXXX")
		t0=$SECONDS; c0=$(child_cpu_ms)
		(cd "$scratch" && bash "$script" >stdout 2>stderr); rc=$?
		secs=$((SECONDS - t0)); cpu=$(($(child_cpu_ms) - c0))
		ok=1; why=""
		exp_rc=$(cat "$root/tests/cli/$name.exit.exp" 2>/dev/null || echo 0)
		[ "$rc" = "$exp_rc" ] || { ok=0; why="exit $rc, expected $exp_rc"; }
		for stream in stdout stderr; do
			exp="$root/tests/cli/$name.$stream.exp"
			if [ -f "$exp" ] && ! diff -u "$exp" "$scratch/$stream" >"$scratch/$stream.diff"; then
				ok=0; why="$why $stream differs"
			fi
		done
		if [ $ok = 1 ]; then
			passed=$((passed + 1)); printf 'cli  %-28s ok (%d s, %d.%d s CPU)\n' "$name" "$secs" $((cpu / 1000)) $((cpu % 1000 / 100))
			rm -rf "$scratch"
		else
			failed=$((failed + 1)); failures+=("cli/$name")
			printf 'cli  %-28s FAILED (%s; %d s) — scratch kept in %s\n' "$name" "$why" "$secs" "$scratch"
			cat "$scratch"/*.diff 2>/dev/null | head -40
			tail -20 "$scratch/stderr" | sed 's/^/  stderr: /'
		fi
	done
fi

# libFuzzer targets, briefly, when make test built them (LTV_FUZZ_BUILD); each is one test.
if [ "$which" = all ] || [ "$which" = fuzz ]; then
	if [ -z "${LTV_FUZZ_BUILD:-}" ]; then
		echo "fuzz: not run (LTV_FUZZ_BUILD unset; 'make test' builds and runs the targets)"
	else
		while IFS= read -r line; do
			printf '%s\n' "$line"
			case $line in
			"fuzz "*" ok "*) passed=$((passed + 1)) ;;
			"fuzz "*" FAILED "*) failed=$((failed + 1)); failures+=("fuzz/$(echo "$line" | awk '{print $2}')") ;;
			esac
		done < <("$root/tests/fuzz/run.sh" "$LTV_FUZZ_BUILD" "${LTV_FUZZ_SECONDS:-5}" "${LTV_FUZZ_SEED:-1}")
	fi
fi

[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Runs the unit tests (cmocka binaries in BUILD/tests) and the CLI golden tests
# (tests/cli/NAME.sh with NAME.exit.exp and optional NAME.stdout.exp /
# NAME.stderr.exp), each CLI test in its own scratch directory. Ends with one
# line "tests: N passed, N failed" and exits non-zero when anything failed.
set -uo pipefail
build=${1:?usage: run-tests.sh BUILD [unit|cli]}
which=${2:-all}
root=$(cd "$(dirname "$0")/.." && pwd)
export LTVPIPE="${LTVPIPE:-$root/ltvpipe}"
export LTV_ROOT="$root"
export LTV_SHARED_DATA="${LTV_SHARED_DATA:-$root/../shared/data}"
passed=0; failed=0; failures=()

if [ "$which" != cli ]; then
	for t in "$root/$build"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		out=$(cd "$root" && "$t" 2>&1); rc=$?
		p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
		f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
		p=${p:-0}; f=${f:-0}
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
		passed=$((passed + p)); failed=$((failed + f))
		if [ "$f" -ne 0 ]; then
			failures+=("unit/$name")
			printf '%s\n' "$out" | grep -v '^\[ \(RUN\|       OK\) ' | sed "s|^|  $name: |"
		fi
		printf 'unit %-28s %3d passed, %d failed\n' "$name" "$p" "$f"
	done
fi

if [ "$which" != unit ]; then
	for script in "$root"/tests/cli/*.sh; do
		[ -f "$script" ] || continue
		name=$(basename "$script" .sh)
		scratch=$(mktemp -d "${TMPDIR:-/tmp}/ltvcli-XXXXXX")
		(cd "$scratch" && bash "$script" >stdout 2>stderr); rc=$?
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
			passed=$((passed + 1)); printf 'cli  %-28s ok\n' "$name"
			rm -rf "$scratch"
		else
			failed=$((failed + 1)); failures+=("cli/$name")
			printf 'cli  %-28s FAILED (%s) — scratch kept in %s\n' "$name" "$why" "$scratch"
			cat "$scratch"/*.diff 2>/dev/null | head -40
			tail -20 "$scratch/stderr" | sed 's/^/  stderr: /'
		fi
	done
fi

[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

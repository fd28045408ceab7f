# Bad input to the monitoring commands (issue 11) gives a clear error naming
# what is wrong and what to pass, a usage or not-found exit status, and leaves
# the registry unchanged: the SHA-256 of its full SQL dump is the same before
# and after every refused command. Covered: an unknown version or experiment,
# a share or log rate outside (0, 1), a horizon the versions do not predict, a
# horizon not yet complete, an as_of before the version's; for models
# experiment start, stop and report, models compare and monitor.
set -u
L=$LTVPIPE
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20 --set hurdle.n_rounds=20 --set multiplier.n_rounds=20 --set run.jobs=1"
"$L" generate --users 3000 --seed 4 --out data >/dev/null || exit 1
"$L" run $S --as-of 2025-06-01 >run.out 2>run.err || { echo "run 1 failed"; exit 1; }
"$L" run $S --as-of 2025-06-01 --set lookalike.k=12 >run2.out 2>run2.err || { echo "run 2 failed"; exit 1; }
R=models/registry.sqlite
dump() { sqlite3 "$R" .dump | sha256sum | cut -d' ' -f1; }

refused() { # EXPECT CMD...: exit status (must be EXPECT), the first stderr line, registry unchanged?
	local expect=$1 before rc
	shift
	before=$(dump)
	"$L" "$@" >out 2>err
	rc=$?
	printf '%s: exit %s%s\n  %s\n  registry %s\n' "$*" "$rc" "$([ "$rc" = "$expect" ] || echo " (expected $expect)")" \
		"$(head -1 err | sed -e "s/^ltvpipe [a-z]*: error: //" -e 's/[0-9]\{4\}-[0-9-]*T[0-9:]*Z/DATE/g')" \
		"$([ "$(dump)" = "$before" ] && echo unchanged || echo CHANGED)"
}

refused 1 models experiment start ab --candidate 9
refused 2 models experiment start ab --candidate 2 --share 0
refused 2 models experiment start ab --candidate 2 --share 1
refused 2 models experiment start ab --candidate 2 --share 1.5
refused 2 models experiment start ab --candidate 2 --share -0.1
refused 2 models experiment start ab --candidate 2 --share abc
refused 2 models experiment start ab --candidate 2 --log-rate 0
refused 2 models experiment start ab --candidate 2 --horizon 45
refused 2 models experiment start ab --candidate production
refused 1 models experiment report nope
refused 1 models experiment stop nope
refused 1 models compare 1 9
refused 2 models compare 1 2 --horizon 45
refused 2 models compare 1 2 --as-of 2025-06-20
refused 1 monitor --model 9
refused 2 monitor --as-of 2025-05-01
"$L" models experiment start ab --candidate 2 --share 0.5 --min-users 20 >start.out 2>start.err
echo "a good start: exit $?"
refused 2 models experiment start ab2 --candidate 2
refused 2 models experiment report ab --as-of 2025-06-20
echo "experiments stored: $(sqlite3 $R 'select name from experiments')"
exit 0

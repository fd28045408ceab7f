# --help and usage errors: exit codes 0 and 2, and what the help lists.
set -u
"$LTVPIPE" --help >help.out 2>help.err
echo "--help exit $?"
for word in run status generate ingest features "Exit codes"; do
	grep -q "$word" help.out && echo "--help mentions $word"
done
[ -s help.err ] && echo "--help wrote to stderr"

"$LTVPIPE" run --help >run.out 2>run.err
echo "run --help exit $?"
grep -q '^usage: ltvpipe run' run.out && echo "run --help shows its usage"
for opt in --as-of --only --from --to --force --dry-run --config --set; do
	grep -q -- "$opt" run.out || echo "run --help lacks $opt"
done

"$LTVPIPE" status --help >status.out 2>&1
echo "status --help exit $?"

"$LTVPIPE" nosuch >nosuch.out 2>nosuch.err
echo "nosuch exit $?"
grep -q "'nosuch' is not a command" nosuch.err && echo "nosuch names the bad command"
[ -s nosuch.out ] && echo "nosuch wrote to stdout"

"$LTVPIPE" >none.out 2>none.err
echo "no arguments exit $?"
grep -q '^usage: ltvpipe <command>' none.err && echo "no arguments prints usage to stderr"

"$LTVPIPE" run --no-such-option >opt.out 2>opt.err
echo "run --no-such-option exit $?"
grep -q "see 'ltvpipe run --help'" opt.err && echo "bad option points at run --help"

"$LTVPIPE" run --as-of yesterday >asof.out 2>asof.err
echo "run --as-of yesterday exit $?"
grep -q "'yesterday' is not an ISO 8601" asof.err && echo "bad --as-of is named"

"$LTVPIPE" generate --users 0 --out d >gen.out 2>gen.err
echo "generate --users 0 exit $?"
[ -e d ] && echo "generate --users 0 wrote files"
[ -e models ] && echo "a usage error created a registry"
exit 0

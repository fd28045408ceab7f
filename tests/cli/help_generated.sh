# The man page and the bash completion are generated from the command table
# that --help prints: every command and every option --help lists must be in
# both, the completion must complete them in bash, and 'make install' must
# install exactly what 'ltvpipe help --man/--completion' print.
set -u
"$LTVPIPE" help --man >ltvpipe.1; echo "help --man exit $?"
"$LTVPIPE" help --completion >ltvpipe.bash; echo "help --completion exit $?"
bash -n ltvpipe.bash && echo "completion parses as bash"
grep -q '^\.TH LTVPIPE 1' ltvpipe.1 && echo "man page has its title"
man -l ltvpipe.1 >man.txt 2>man.err || echo "man could not render the page"
[ -s man.err ] && { echo "man warned:"; cat man.err; }

# commands listed by --help (between "commands:" and the blank line)
"$LTVPIPE" --help | awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }' >commands.txt
missing=0
while read -r cmd; do
	grep -q "^\.SS \"ltvpipe $cmd\"" ltvpipe.1 || { echo "man lacks command $cmd"; missing=1; }
	grep -q "^	$cmd)" ltvpipe.bash || { echo "completion lacks command $cmd"; missing=1; }
	# options listed by 'CMD --help' (lines "  --name ...")
	"$LTVPIPE" "$cmd" --help | sed -n 's/^  \(--[a-z-]*\).*/\1/p' | sort -u >opts.txt
	while read -r opt; do
		roff=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
		# the option must appear in this command's section of the man page
		awk -v c="ltvpipe $cmd" '/^\.SS / { on = index($0, "\"" c) == 5 } on' ltvpipe.1 |
			grep -q -- "$roff" || { echo "man: $cmd lacks $opt"; missing=1; }
		grep "^	$cmd) " ltvpipe.bash | grep -q -- " $opt[ \"]" ||
			{ [ "$cmd" = models ] || { echo "completion: $cmd lacks $opt"; missing=1; }; }
	done <opts.txt
done <commands.txt
# models' subcommands and theirs
for sub in list show history promote rollback compare experiment export; do
	grep -q "^\.SS \"ltvpipe models $sub\"" ltvpipe.1 || { echo "man lacks models $sub"; missing=1; }
	grep -q "^		$sub) " ltvpipe.bash || { echo "completion lacks models $sub"; missing=1; }
done
[ $missing = 0 ] && echo "every command and option of --help is in the man page and the completion"

# the completion completes, in bash
complete_words() { # words... ; prints COMPREPLY
	bash -c 'source ./ltvpipe.bash; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ltvpipe; printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$@"
}
echo "ltvpipe ru<TAB>: $(complete_words ltvpipe ru)"
echo "ltvpipe run --dr<TAB>: $(complete_words ltvpipe run --dr)"
echo "ltvpipe models e<TAB>: $(complete_words ltvpipe models e)"
echo "ltvpipe models list --<TAB>: $(complete_words ltvpipe models list --)"
echo "ltvpipe score --mo<TAB>: $(complete_words ltvpipe score --mo)"

# make install, when the build in the tree is the one tested (make cli-test, make test)
if [ "$LTVPIPE" = "$LTV_ROOT/ltvpipe" ] && make -s -q -C "$LTV_ROOT" ltvpipe 2>/dev/null; then
	make -s -C "$LTV_ROOT" --no-print-directory install DESTDIR="$PWD/dest" PREFIX=/usr >install.out 2>&1 ||
		{ echo "make install failed:"; cat install.out; }
	cmp -s dest/usr/share/man/man1/ltvpipe.1 ltvpipe.1 || echo "installed man page differs from help --man"
	cmp -s dest/usr/share/bash-completion/completions/ltvpipe ltvpipe.bash ||
		echo "installed completion differs from help --completion"
	[ -x dest/usr/bin/ltvpipe ] || echo "make install did not install the binary"
fi

# help COMMAND is COMMAND --help
"$LTVPIPE" help run >hr.out 2>&1; echo "help run exit $?"
"$LTVPIPE" run --help >rh.out 2>&1
cmp -s hr.out rh.out && echo "help run prints what run --help prints"
"$LTVPIPE" help nosuch >hn.out 2>&1; echo "help nosuch exit $?: $(cat hn.out)"

# --set is not described as part of a fingerprint where there is none
for cmd in score predict models; do
	"$LTVPIPE" $cmd --help | grep -q fingerprint && echo "$cmd --help speaks of a fingerprint"
done
exit 0

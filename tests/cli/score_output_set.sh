# score replaces its four outputs (F, F.campaigns.csv, F.report.txt, .html) as a
# set (issue 15, defect 4): all are written to temporaries and synced before
# any is renamed, so a kill before the renames (LTVPIPE_FAULT=output:kill)
# leaves the previous set whole, and kills at random moments leave every file
# either wholly the previous version or wholly the new one, never a part.
# Temporaries a killed score left are removed by the next score. --output is
# never replaced when it is a device (/dev/full) or a directory, and a symlink
# is written through (the link stays, the file it points at is replaced).
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 3000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"
set_hash() { for f in "$1" "$1.campaigns.csv" "$1.report.txt" "$1.report.html"; do sha1sum <"$f" 2>/dev/null | cut -c1-40 || echo missing; done | tr '\n' ' '; }
file_hash() { [ -f "$1" ] && sha1sum <"$1" | cut -c1-40 || echo missing; }
tmps() { ls "$@" 2>/dev/null | grep -c '\.tmp' ; }

# the previous set (scored at an earlier as_of) and what a clean score writes now
"$LTVPIPE" score --allow-lookahead --as-of 2025-03-01 --output old.csv >/dev/null 2>err || { echo "old score failed"; cat err; }
"$LTVPIPE" score --output new.csv >/dev/null 2>err || { echo "new score failed"; cat err; }
[ "$(set_hash old.csv)" != "$(set_hash new.csv)" ] && echo "old and new sets differ"

mkdir out
for f in "" .campaigns.csv .report.txt .report.html; do cp old.csv$f out/s.csv$f; done
LTVPIPE_FAULT=output:kill "$LTVPIPE" score --output out/s.csv >/dev/null 2>err
echo "score killed before its renames: exit $?"
[ "$(set_hash out/s.csv)" = "$(set_hash old.csv)" ] && echo "previous set intact"
echo "temporaries left by the kill: $(tmps out)"
LTVPIPE_FAULT=output:fail "$LTVPIPE" score --output out/s.csv >/dev/null 2>err
echo "score failing before its renames: exit $?"
grep -qF "injected fault (LTVPIPE_FAULT=output:fail)" err && echo "says why"
[ "$(set_hash out/s.csv)" = "$(set_hash old.csv)" ] && echo "previous set intact"
echo "temporaries after the failure: $(tmps out) (the killed one is cleaned)"
"$LTVPIPE" score --output out/s.csv >/dev/null 2>err
echo "next score exit $?"
[ "$(set_hash out/s.csv)" = "$(set_hash new.csv)" ] && echo "new set identical to a clean score"
echo "temporaries: $(tmps out)"

# random kills while score runs: each file whole, old or new; bounded in count and time
t0=$(date +%s%N); "$LTVPIPE" score --output timing.csv >/dev/null 2>&1; t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 )); [ "$ms" -lt 20 ] && ms=20
kills=0; whole=0; new=0
for i in $(seq 1 12); do
	for f in "" .campaigns.csv .report.txt .report.html; do cp old.csv$f out/s.csv$f; done
	"$LTVPIPE" score --output out/s.csv >/dev/null 2>&1 &
	pid=$!
	sleep "$(awk -v ms="$ms" -v i="$i" 'BEGIN { srand(1000 + i); printf "%.3f", rand() * ms * 1.1 / 1000 }')"
	kill -9 $pid 2>/dev/null && kills=$((kills + 1))
	wait $pid 2>/dev/null
	ok=1
	for f in "" .campaigns.csv .report.txt .report.html; do
		h=$(file_hash out/s.csv$f)
		[ "$h" = "$(file_hash old.csv$f)" ] || [ "$h" = "$(file_hash new.csv$f)" ] || ok=0
		[ "$h" = "$(file_hash new.csv$f)" ] && new=$((new + 1))
	done
	whole=$((whole + ok))
done
echo "random kills: 12 tries, every file whole old or new after $whole"
echo "kills that landed: $kills, files already new: $new" >&2
"$LTVPIPE" score --output out/s.csv >/dev/null 2>err
echo "score after the kills exit $?"
[ "$(set_hash out/s.csv)" = "$(set_hash new.csv)" ] && echo "new set identical to a clean score"
echo "temporaries: $(tmps out)"

# devices and directories are refused, never replaced. As root a scorer that
# replaced devices would replace the machine's /dev/full (an older ltvpipe
# did), so root tests a device node of its own with /dev/full's numbers.
dev=/dev/full
[ "$(id -u)" = 0 ] && mknod full c 1 7 && dev=full
"$LTVPIPE" score --output $dev >out.txt 2>err
echo "score --output /dev/full exit $?"
sed -n 's/^ltvpipe score: error: //p' err | sed "s|'$dev'|'/dev/full'|"
[ -c $dev ] && echo "/dev/full is still a character device"
mkdir adir
"$LTVPIPE" score --output adir >out.txt 2>err
echo "score --output adir exit $?"
sed -n 's/^ltvpipe score: error: //p' err
[ -d adir ] && [ -z "$(ls adir)" ] && echo "adir is still an empty directory"

# a symlink is written through
mkdir real
echo stale >real/target.csv
ln -s real/target.csv link.csv
"$LTVPIPE" score --output link.csv >/dev/null 2>err
echo "score --output link.csv exit $?"
[ -L link.csv ] && echo "link.csv is still a symlink to $(readlink link.csv)"
[ "$(file_hash real/target.csv)" = "$(file_hash new.csv)" ] && echo "real/target.csv holds the scores"
echo "temporaries: $(tmps . real)"
exit 0

# predict refuses what it cannot turn into valid JSON or a meaningful row
# (issue 15, item 7): an --app or --campaign that is not valid UTF-8 (it was
# copied into the JSON as is), and a negative or non-finite feature value
# (rev_window=-5 was accepted). Valid UTF-8 still goes through unchanged.
set -u
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 2000 --out data >/dev/null || exit 1
"$LTVPIPE" run $S >run.out 2>run.err
echo "run exit $?"
msg() { sed -n 's/^ltvpipe [a-z]*: error: //p' err; }
app=$(sed -n '2p' data/users.csv | cut -d, -f2)

"$LTVPIPE" predict --app "$(printf 'bad\377\376app')" >out 2>err
echo "predict --app with bytes ff fe: exit $?"
msg
"$LTVPIPE" predict --app "$app" --campaign "$(printf 'x\300\257y')" >out 2>err
echo "predict --campaign with an overlong encoding: exit $?"
msg
"$LTVPIPE" predict --app "$app" --feature rev_window=-5 >out 2>err
echo "predict rev_window=-5: exit $?"
msg
"$LTVPIPE" predict --app "$app" --feature cost=inf >out 2>err
echo "predict cost=inf: exit $?"
msg
"$LTVPIPE" predict --app "$app" --campaign "Café ☕" --feature rev_window=1.5 >out 2>err
echo "predict with a UTF-8 campaign: exit $?"
grep -qF '"campaign":"Café ☕"' out && echo "campaign kept as given"
exit 0

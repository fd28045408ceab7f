# A registry that cannot be opened for writing is an error with SQLite's own
# reason and a fix, never a crash (issue 15, defects 1 and 2): `models
# promote` on a registry with a newer schema, a corrupt file or a path under a
# regular file; a negative PRAGMA user_version (once used as "unreadable");
# a truncated file; and `models promote` where there is no registry at all,
# which must not create one.
set -u
reg=models/registry.sqlite
# the schema this ltvpipe writes changes with releases: print it as N
msg() { sed -n 's/^ltvpipe [a-z]*: error: //p' err | head -1 | sed 's/this ltvpipe ([0-9]*)/this ltvpipe (N)/'; }

mkdir models
sqlite3 $reg 'pragma user_version=999'
"$LTVPIPE" models promote 1 >out 2>err
echo "promote, schema 999: exit $?"
msg

sqlite3 $reg 'pragma user_version=-1'
"$LTVPIPE" run >out 2>err
echo "run, schema -1: exit $?"
msg
"$LTVPIPE" status >out 2>err
echo "status, schema -1: exit $?"
msg
sqlite3 $reg 'pragma user_version=-2147483648'
"$LTVPIPE" run >out 2>err
echo "run, schema -2147483648: exit $?"
msg
"$LTVPIPE" models promote 1 >out 2>err
echo "promote, schema -2147483648: exit $?"
msg

rm -f $reg*
head -c 4096 /dev/zero | tr '\0' 'x' >$reg
"$LTVPIPE" models promote 1 >out 2>err
echo "promote, corrupt file: exit $?"
msg
"$LTVPIPE" status >out 2>err
echo "status, corrupt file: exit $?"
msg

# a real registry cut in the middle of its pages
rm -f $reg*
sqlite3 $reg 'pragma page_size=1024; create table t(x); insert into t select randomblob(900) from generate_series(1,50);' 2>/dev/null ||
	sqlite3 $reg 'pragma page_size=1024; create table t(x); with recursive c(i) as (select 1 union all select i+1 from c where i<50) insert into t select randomblob(900) from c;'
truncate -s 10000 $reg
"$LTVPIPE" status >out 2>err
echo "status, truncated file: exit $?"
msg

touch afile
"$LTVPIPE" models promote 1 --set registry.path=afile/registry.sqlite >out 2>err
echo "promote, registry under a regular file: exit $?"
msg

rm -rf models
"$LTVPIPE" models promote 1 >out 2>err
echo "promote, no registry: exit $?"
msg
[ -e models ] && echo "models/ was created" || echo "nothing created"
"$LTVPIPE" models rollback >out 2>err
echo "rollback, no registry: exit $?"
msg
[ -e models ] && echo "models/ was created" || echo "nothing created"
exit 0

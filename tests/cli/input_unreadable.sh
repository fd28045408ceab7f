# Before a first run creates anything, the input files must match and read
# (cli/main.c check_working_directory, pipeline/input_files.c
# input_files_check_readable): a pattern that matches a directory, or
# nothing, fails with the reason hashing the files gave, and leaves no
# registry behind. The files are hashed once, by the runner.
set -u
"$LTVPIPE" generate --users 100 --out data >/dev/null || exit 1
mkdir d
try() {
	"$LTVPIPE" run --only ingest --set "input.users=$1" --set "input.events=$2" >/dev/null 2>err
	local rc=$?
	echo "exit $rc$( [ $rc -ne 0 ] && sed 's/.*pass --config F: /: /' err)"
	[ -e models ] && echo "models/ was created"
}
try d data/events.csv
try data/users.csv nothere.csv
try data/users.csv data/events.csv
exit 0

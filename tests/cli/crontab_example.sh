# contrib/crontab.example works as written (issue 11): each job's command
# line, taken from the file itself, runs in a directory laid out as LTV_HOME
# (the repository's config, ./ltvpipe, data/, logs/, out/) on a generated
# sample: the monthly retrain, the daily ingest and score, then the daily
# monitor, whose exit status is one the file documents (0, 3 or 4) and whose
# report cron would mail. A job that fails prints its message, as cron mails it.
set -u
mkdir -p config logs out && cp "$LTV_ROOT/config/ltvpipe.yaml" config/ && ln -s "$LTVPIPE" ltvpipe
"$LTVPIPE" generate --users 3000 --seed 9 --out data >/dev/null || exit 1
# A live feed has installs up to its last event; the generator's installs stop
# a week before its events do, which monitor rightly refuses (exit 2: no user
# installed in the window). Keep the events up to the last install.
last=$(tail -n +2 data/users.csv | cut -d, -f4 | sort | tail -1)
awk -F, -v last="$last" 'NR == 1 || $2 <= last' data/events.csv >data/e.csv && mv data/e.csv data/events.csv
export LTV_HOME=$PWD
# each job: the command after the five time fields, cron's \% turned back into %
jobs=$(grep -E '^[0-9*]' "$LTV_ROOT/contrib/crontab.example" | sed -E 's/^([^ ]+ +){5}//; s/\\%/%/g')
echo "jobs in the example: $(printf '%s\n' "$jobs" | wc -l)"
n=0
while IFS= read -r job; do
	n=$((n + 1))
	mail=$(sh -c "$job" 2>&1)
	what=$(printf '%s' "$job" | grep -oE '\./ltvpipe [a-z]+( --only [a-z]+)?' | head -1)
	case $what in
	*monitor*)
		rc=$(printf '%s\n' "$mail" | sed -n 's/^ltvpipe monitor exit \([0-9]*\) .*/\1/p')
		echo "job $n ($what): mails $([ -z "$mail" ] && echo nothing || echo "the report, exit ${rc:-?}") — a documented status: $(case ${rc:-0} in 0 | 3 | 4) echo yes ;; *) echo no ;; esac)"
		[ -n "$mail" ] && ! grep -q '^monitor: model version 1 ' logs/cron-monitor.txt && echo "  but no report in logs/cron-monitor.txt"
		;;
	*) echo "job $n ($what): $([ -z "$mail" ] && echo "ok, nothing to mail" || echo "MAILS: $mail")" ;;
	esac
done <<<"$jobs"
echo "scores written: $(ls out | grep -c '^scores-[0-9]\{8\}\.csv$')"
echo "monitor reports stored: $(sqlite3 models/registry.sqlite 'select count(*) from monitor_reports')"
exit 0

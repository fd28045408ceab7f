#!/usr/bin/env bash
# usage: scripts/demo.sh [N]      (make demo runs it with N = 20000)
#
# The end-to-end demo, in the repository's own layout: data/ for inputs,
# models/ for the registry, logs/ for logs, config/ltvpipe.yaml as the
# configuration. Generates a synthetic sample of N users into data/ unless
# data/users.csv is already there, runs the pipeline (stages already up to
# date are skipped, so a second demo is quick), shows `ltvpipe status`,
# scores the users still to be valued with the production model into
# models/scores.csv (+ .campaigns.csv, .report.txt), and ends by saying where
# the outputs are and what they hold, then shows the top of the score report.
#
# Needs ./ltvpipe (run `make`, or `make demo` which builds it first) and the
# sqlite3 command-line tool (one of the Makefile's packages).
set -euo pipefail

n=${1:-20000}
if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: scripts/demo.sh [N]   (N users to generate, default 20000)" >&2
	exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -x ./ltvpipe ]; then
	echo "demo: no ./ltvpipe in $root; run 'make' first" >&2
	exit 2
fi
run_out=$(mktemp "${TMPDIR:-/tmp}/ltvpipe-demo.XXXXXX")
trap 'rm -f "$run_out"' EXIT

echo "== 1. data"
if [ -f data/users.csv ] && [ -f data/events.csv ]; then
	echo "using the existing data/users.csv and data/events.csv" \
	     "(delete them to generate a fresh sample of $n users)"
else
	./ltvpipe generate --users "$n" --out data
fi

echo
echo "== 2. ltvpipe run"
./ltvpipe run | tee "$run_out"

echo
echo "== 3. ltvpipe status"
./ltvpipe status

# ---- scoring step --------------------------------------------------------
# Score the users still to be valued (not yet features.target_horizon days
# old at as_of) with the production model version. models/ is ignored by git,
# like the registry beside it.
scores=models/scores.csv
echo
echo "== 4. ltvpipe score --output $scores"
./ltvpipe score --output "$scores"
# ---- end of scoring step -------------------------------------------------

# Where things are, read from this run's own records: the run id and
# registry path from the run's "run ... finished in" line (a line on the model
# version may follow it), the log and rejects locations from the
# configuration the registry stored for the run.
last=$(grep '^run [^ ]* finished in ' "$run_out" | tail -n 1)
run_id=$(sed -n 's/^run \([^ ]*\) finished in .*/\1/p' <<<"$last")
registry=$(sed -n 's/.*(registry \(.*\))$/\1/p' <<<"$last")
if [ -z "$run_id" ] || [ -z "$registry" ]; then
	echo "demo: could not read the run id and registry from ltvpipe run's output (no 'run ... finished in' line): $(tail -n 1 "$run_out")" >&2
	exit 1
fi
q() { sqlite3 -batch -noheader "$registry" "$1"; }
config_value() {
	q "select config from runs where run_id = '$run_id'" | sed -n "s/^$1: //p"
}
# One metric of a stage's current artefact; empty when absent.
metric() {
	q "select json_extract(a.metrics, '\$.$2') from current_artefacts c
	   join artefacts a on a.id = c.artefact_id where c.name = '$1'"
}
version() {
	q "select a.version from current_artefacts c join artefacts a on a.id = c.artefact_id
	   where c.name = '$1'"
}
log_file="$(config_value run.log_dir)/$run_id.log"
rejects=$(metric ingest rejects_file)

echo
echo "== outputs (paths relative to $root)"
echo "registry:  $registry   (query it: sqlite3 $registry 'select name, version, metrics from artefacts')"
echo "log:       $log_file"
echo "scores:    $scores   (one row per user: ltv per horizon, p_payer, method, segment, ROAS)"
echo "           $scores.campaigns.csv   (per campaign: users, spend, predicted revenue and ROAS)"
echo "           $scores.report.txt   (totals, distributions, top and bottom campaigns, methods)"
if [ -n "$rejects" ]; then
	echo "rejects:   $rejects   (file, line, field and reason of every rejected row)"
else
	echo "rejects:   none (no row was rejected)"
fi

echo
echo "== summary"
printf 'ingest v%s: %s users in the registry; this version loaded %s users and %s events, rejected %s and %s\n' \
	"$(version ingest)" "$(metric ingest users_total)" "$(metric ingest users_loaded)" \
	"$(metric ingest events_loaded)" "$(metric ingest users_rejected)" \
	"$(metric ingest events_rejected)"
target=$(config_value features.target_horizon)
printf 'features v%s: as_of %s; %s users: %s to train on, %s for validation, %s to score\n' \
	"$(version features)" "$(metric features as_of)" "$(metric features users)" \
	"$(metric features train_users)" "$(metric features validation_users)" \
	"$(metric features users_to_score)"
printf '  training cohorts: mean LTV at day %s %.4f, payer rate after the window %.2f%%\n' \
	"$target" "$(metric features "train_mean_ltv_$target")" \
	"$(q "select 100 * json_extract(a.metrics, '\$.train_payer_rate_after_window')
	      from current_artefacts c join artefacts a on a.id = c.artefact_id
	      where c.name = 'features'")"
printf 'model: version %s is production (validation campaign WAPE at day %s: %s)\n' \
	"$(q "select model_version from aliases where alias = 'production'")" "$target" \
	"$(q "select case when validation_error is null then 'n/a' else printf('%.4f', validation_error)
	      end from model_versions v join aliases a
	      on a.model_version = v.version where a.alias = 'production'")"

echo
echo "== $scores.report.txt (first 40 lines)"
head -n 40 "$scores.report.txt"

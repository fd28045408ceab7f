/*
 * A/B experiments between model versions (`ltvpipe models experiment`).
 *
 * An experiment has a control (the production version when it starts) and a
 * candidate version; a user goes to the candidate when a salted hash of their
 * user_id falls below the share (include/ltv/ab_assign.h; the salt is the
 * experiment's name), so the same user is in the same arm on every run.
 * `score` (without --model) serves candidate users with the candidate while
 * the experiment runs, and logs the predictions of a log_rate sample of the
 * users (chosen by an independent hash) in the registry table
 * experiment_predictions — each user once, at the first scoring, so the
 * report judges every user at the age they were first served. `serve` calls
 * experiment_serving_arm() for the same decision per request.
 *
 * The report, once outcomes mature: per arm, the logged users who were
 * younger than H when first scored (older ones were served their observed
 * ltv_H) and whose ltv_H is complete at as_of, their campaign WAPE, bias and mean absolute error, and
 * the difference in mean absolute error (candidate - control) with a Welch
 * z-test. Peeking guard: a fixed-horizon test. The p-value and interval are
 * reported only once both arms have min_users users with a complete outcome
 * (the planned sample size, set at start); before that the report shows
 * progress and no significance, so looking every day cannot inflate the
 * false-positive rate.
 */
#ifndef LTV_EXPERIMENT_H
#define LTV_EXPERIMENT_H

#include <stdint.h>
#include <stdio.h>

#include "ltv/config.h"
#include "ltv/model_loader.h"
#include "ltv/registry.h"
#include "ltv/serving.h"

/*
 * `ltvpipe models experiment start|stop|list|report ...`; argv[0] is
 * "experiment". reg is open for writing when experiment_verb_writes says the
 * verb writes, else at least for reading (the dispatcher opens it).
 */
int experiment_command(const struct config *cfg, struct registry *reg, int argc, char **argv,
		       FILE *out, struct ltv_err *err);
/* 1 when the verb (argv[1]) changes the registry, 0 when it only reads it, -1 when unknown. */
int experiment_verb_writes(int argc, char **argv);

/*
 * For `score` and `serve`: the arm of user_id in experiment e — 1 candidate,
 * 0 control (the same answer on every run).
 */
int experiment_serving_arm(const struct experiment_row *e, const char *user_id);

/*
 * For `score`: 1 with the running experiment in *out when it has m as its
 * control, 0 when none does; <0 when cfg's registry cannot be read. Asked
 * once, before the models predict: the score then keeps the data the
 * candidate's frame is built from only when an experiment runs.
 */
int experiment_for_scores(const struct config *cfg, const struct loaded_model *m,
			  struct experiment_row *out, struct ltv_err *err);

/*
 * For `score`, after production (m) served rows[0..n) of d into sv, with
 * experiment_for_scores' running experiment e (m its control): re-serves its
 * candidate users with the candidate (its own frame of data at as_of),
 * replaces their rows of sv, and logs the sampled users' predictions into
 * cfg's registry. Prints one line to out.
 */
struct data_source;
int experiment_apply_to_scores(const struct config *cfg, const struct loaded_model *m,
			       const struct experiment_row *e, const struct data_source *data,
			       const struct model_data *d, const struct user_table *users,
			       const size_t *rows, size_t n, int64_t as_of, struct served *sv,
			       FILE *out, struct ltv_err *err);

#endif

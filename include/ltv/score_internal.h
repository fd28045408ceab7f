/*
 * What `ltvpipe score` (cli/score.c) shares with `ltvpipe merge-scores`
 * (cli/score_merge.c): the scored users and the one function that
 * writes the three outputs from them, so merged shard scores are written by
 * the very code that writes unsharded ones.
 */
#ifndef LTV_SCORE_INTERNAL_H
#define LTV_SCORE_INTERNAL_H

#include "ltv/model_data.h"
#include "ltv/model_loader.h"
#include "ltv/registry.h"
#include "ltv/serving.h"
#include "ltv/shard.h"

struct scored {
	size_t n;
	size_t *rows;                          /* rows of d scored */
	struct served sv;                      /* what the model version serves for them */
};

void scored_release(struct scored *s);

/*
 * Writes OUTPUT (one row per scored user, in s's order), OUTPUT.campaigns.csv
 * and OUTPUT.report.txt, all or none; OUTPUT "-": the users CSV to stdout and
 * nothing beside it. d needs the columns uid (1-based index
 * into users), app_code, campaign_code, cost, rev_to_date, age_days,
 * install_time, and tier.
 */
int score_write_outputs(const struct loaded_model *m, const struct model_data *d,
			const struct user_table *users, const struct scored *s, int64_t as_of,
			const char *output, size_t *out_n_campaigns, struct ltv_err *err);

/*
 * `score --shard`: OUTPUT.shard.csv, every value the outputs are made from,
 * per scored user and exact (doubles in C99 hex), with the user's place in
 * the unsharded order, for merge-scores.
 */
int score_shard_write(const struct loaded_model *m, const struct model_data *d,
		      const struct user_table *users, const struct scored *s, int64_t as_of,
		      const struct shard_spec *shard, const char *output, struct ltv_err *err);

#endif

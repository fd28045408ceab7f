/*
 * What `ltvpipe score` (cli/score.c) shares with `ltvpipe merge-scores`
 * (cli/score_merge.c): the scored users and the one function that
 * writes the outputs from them, so merged shard scores are written by
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
 * v ascending, in the very order qsort with a (x < y, x > y) comparison gave
 * (the report sums the sorted LTVs in that order): glibc's qsort is a stable
 * merge sort, and so is this LSD radix sort (ties, -0 with +0, keep their
 * places), without qsort's 6 M indirect comparisons at 345,834 scored users
 * (perf: msort_with_tmp and compare_double, on one core after the
 * prediction). With a NaN, which has no order, the qsort itself.
 */
void score_sort_ltvs(double *v, size_t n);

struct jbuf;

/*
 * fields[0..n) as csv_write_field writes each, with a comma between them
 * (score --users F's own columns of a row); in one copy when they lie one
 * after another in a reader's text, each ended by its NUL, and none needs
 * quotes, as a reader's plain line leaves them.
 */
void score_put_row_fields(struct jbuf *b, char *const *fields, size_t n);

/* What produced a file, written on every row so a file detached from its name still says. */
struct provenance {
	int64_t version;
	char as_of[32];     /* ISO 8601 */
	char scored_at[32]; /* ISO 8601 */
};

/* How score_write_outputs writes the users file. */
struct score_write {
	const struct provenance *pv;
	const char *own_file;    /* score --users F: F's own rows and columns in F's order, then
				  * the predictions and a reason; NULL: the standard users CSV */
	const char *scratch_dir; /* with own_file: the folder of the rejects of reading it */
	char *users_hash;        /* not NULL: gets the users file's content hash (hash_file_hex's,
				  * taken as it is written), "" for --output - */
	struct own_writer *own;  /* score_run: own_file already being written (cli/score.c), or NULL */
};

/*
 * The time written as scored_at: now, or SOURCE_DATE_EPOCH when set (the
 * reproducible-builds convention), so two scores of the same data can be
 * compared byte for byte.
 */
int64_t score_scored_at_now(void);

/*
 * Writes OUTPUT (one row per scored user, in s's order, or w->own_file's rows),
 * OUTPUT.campaigns.csv, OUTPUT.report.txt and OUTPUT.report.html, all or none; OUTPUT "-": the users CSV to stdout and
 * nothing beside it. d needs the columns uid (1-based index
 * into users), app_code, campaign_code, cost, rev_to_date, age_days,
 * install_time, and tier.
 */
int score_write_outputs(const struct loaded_model *m, const struct model_data *d,
			const struct user_table *users, const struct scored *s, int64_t as_of,
			const struct score_write *w, const char *output, size_t *out_n_campaigns,
			struct ltv_err *err);

/*
 * `score --shard`: OUTPUT.shard.csv, every value the outputs are made from,
 * per scored user and exact (doubles in C99 hex), with the user's place in
 * the unsharded order, for merge-scores.
 */
int score_shard_write(const struct loaded_model *m, const struct model_data *d,
		      const struct user_table *users, const struct scored *s, int64_t as_of,
		      const struct shard_spec *shard, const char *output, struct ltv_err *err);

#endif

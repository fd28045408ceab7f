/*
 * Each method's predictions for one horizon's validation rows, kept so that
 * a row is predicted by a method at most once however many times it is
 * asked for: calibrate asks the served mix for the same rows 13 times (per
 * tier, per band, for its WAPE), and select has predicted every method on
 * those rows already. Only row-by-row methods are kept (method.batch_level
 * 0): a row's value is then the same in any call (include/ltv/method.h), so
 * reusing it changes no number.
 *
 * A memo is made for a set of frame rows (a row_split's validation rows,
 * repeats allowed) of one model_data at one horizon, and filled as
 * predictions are made (predictor_predict_raw_memo). Memos can be left on a
 * shelf, under a key naming what the predictions were made from (the
 * features, tiers and method artefacts: pipeline/stage_io.c builds it), so
 * that a later stage takes them instead of predicting again; a memo whose
 * key differs is never handed out. The shelf is an object, not process
 * state: the runner makes one per run and hands it to every stage of that
 * run (stage_ctx.predictions), so select leaves its memos for calibrate of
 * the same run, and nothing outlives the run.
 */
#ifndef LTV_PREDICTION_MEMO_H
#define LTV_PREDICTION_MEMO_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/method.h"
#include "ltv/mix_memo.h"
#include "ltv/model_data.h"

struct prediction_memo;

/* A memo for rows[0..n) of d's frame at horizon, empty. Free with prediction_memo_free. */
struct prediction_memo *prediction_memo_new(const struct model_data *d, int64_t horizon,
					    const size_t *rows, size_t n);
void prediction_memo_free(struct prediction_memo *m);
/*
 * Whether m holds rows of a frame of d's size at horizon (the caller keeps
 * it to one model_data; this guards against a memo used with other rows).
 */
int prediction_memo_fits(const struct prediction_memo *m, const struct model_data *d,
			 int64_t horizon);
/* Whether method index `method` is kept at all (row-by-row methods only). */
int prediction_memo_keeps(int method);
/*
 * For each i < n with want[i] set and done[i] not: when m has method's
 * prediction for rows[i], pred[i] = it and done[i] = 1.
 */
void prediction_memo_get(const struct prediction_memo *m, int method, const size_t *rows,
			 size_t n, const unsigned char *want, unsigned char *done, double *pred);
/* Keeps method's predictions ltv[i] of rows[i] (rows outside m's set are ignored). */
void prediction_memo_put(struct prediction_memo *m, int method, const size_t *rows, size_t n,
			 const double *ltv);

/*
 * The shelf: prediction_shelf_offer leaves m on it under key (taking it; the
 * memos there under another key are freed first, so the shelf holds one
 * key's memos at most, and a memo of the same horizon replaces the older
 * one); prediction_shelf_take hands back the memo left under key at
 * horizon, and removes it from the shelf, or NULL (also for a NULL shelf:
 * a stage outside a run predicts for itself). Both may be called from any
 * thread. prediction_shelf_free frees the shelf and every memo left on it.
 */
struct prediction_shelf;

struct prediction_shelf *prediction_shelf_new(void);
void prediction_shelf_free(struct prediction_shelf *s);
void prediction_shelf_offer(struct prediction_shelf *s, const char *key, struct prediction_memo *m);
struct prediction_memo *prediction_shelf_take(struct prediction_shelf *s, const char *key,
					      int64_t horizon);
/*
 * The served mix of the same rows as well (select's, include/ltv/mix_memo.h),
 * left with the memo of horizon under key, taking mix (freed when there is
 * no such memo). The key names the methods' artefacts, not the selection:
 * it serves the calibrate of the same run, which reads the selection this
 * select made, and mix_memo_get refuses rows it was not made for.
 */
void prediction_shelf_offer_mix(struct prediction_shelf *s, const char *key, int64_t horizon,
				struct mix_memo *mix);
/* The mix left with m (prediction_shelf_offer_mix), handed to the caller; NULL if none. */
struct mix_memo *prediction_memo_take_mix(struct prediction_memo *m);

/*
 * The methods select loaded (states[m], method_table order, each taken and
 * its slot set to NULL), left under key for the calibrate of the same run,
 * whose key names the very same artefacts: loading hurdle's and
 * multiplier's trees again was half of calibrate's CPU at 1,000,000 users.
 * A method's state is read only once loaded (method.h: predict takes it
 * const), so it predicts the same in either stage. The states go with the
 * shelf's memos: freed with them, or when another key's memo comes.
 * prediction_shelf_take_states fills states[0..METHOD_COUNT) and returns 1
 * when every method's state was left under key (removing them from the
 * shelf), else 0 and leaves states untouched.
 */
void prediction_shelf_offer_states(struct prediction_shelf *s, const char *key,
				   void *states[METHOD_COUNT]);
int prediction_shelf_take_states(struct prediction_shelf *s, const char *key,
				 void *states[METHOD_COUNT]);

#endif

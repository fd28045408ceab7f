/*
 * The buy-till-you-die models as they are stored and predicted with
 * (DESIGN.md "btyd"): a count model of paying days (BG/NBD or Pareto/NBD)
 * with Gamma-Gamma spend per paying day, one fit per app with the pooled fit
 * as fallback. Each count model plugs in through struct btyd_count_model
 * (serving/btyd_bgnbd.c, serving/btyd_pareto.c); serving/btyd_model.c loads
 * and predicts, pipeline/btyd_stage.c fits and stores (include/ltv/btyd_stage.h).
 *
 * Prediction for a row of age s with history (x, t_x, T = s) at horizon H:
 * rev_window + E[paying days in (s, H] | x, t_x, T] x E[spend | x, m_x]; its
 * p_payer is P(at least one paying day in (s, H]). Such a method models time
 * itself, so a row is predicted at its own age (struct method.any_age).
 */
#ifndef LTV_BTYD_MODEL_H
#define LTV_BTYD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ltv/btyd_history.h"
#include "ltv/gamma_gamma.h"
#include "ltv/method.h"
#include "ltv/registry.h"
#include "ltv/strmap.h"

/* The app name of the pooled fit, and the magic of the index blob. */
#define BTYD_POOLED "*"
#define BTYD_INDEX_MAGIC "LTVBTYDI"
/* The prefix of the serving refit's blobs ("serve.<name>:index:", "serve.gg:<app>", ...). */
#define BTYD_SERVE_PREFIX "serve."

struct btyd_count_model {
	const char *name; /* the stage and method name, and the prefix of its blobs */
	/* Fits on collapsed histories; *out_model freed with free_model. */
	int (*fit)(const struct btyd_triples *t, void **out_model, struct ltv_err *err);
	/*
	 * For history h and the next `weeks`: expected paying days, P(alive) and
	 * P(at least one paying day).
	 */
	int (*outlook)(const void *model, const struct btyd_history *h, double weeks,
		       double *out_expected, double *out_p_alive, double *out_p_any,
		       struct ltv_err *err);
	int (*save)(const void *model, uint8_t **out_data, size_t *out_len, struct ltv_err *err);
	int (*load)(const void *data, size_t len, void **out_model, struct ltv_err *err);
	void (*free_model)(void *model);
	/* Adds the fitted parameters to a metrics object. */
	void (*add_metrics)(cJSON *o, const void *model);
	/* The log-likelihood at the fitted parameters, summed over the users fitted on. */
	double (*log_lik)(const void *model);
};

/* One fit: the pooled one or an app's. */
struct btyd_fit {
	char *app;
	void *count;                  /* the count model */
	struct gamma_gamma_model *gg; /* NULL: the pooled spend model serves */
};

struct btyd_state {
	uint64_t id;           /* unique per state made: keys its cached outlooks */
	const struct btyd_count_model *kind;
	struct btyd_fit *fits; /* [0] is the pooled fit */
	size_t n_fits;
	struct strmap index;   /* app → fit */
	/*
	 * NULL, or the refit on every user's history before as_of
	 * (btyd.serve_fit): the fits above are those select and calibrate
	 * judge; btyd_method_for_serving puts these in their place.
	 */
	struct btyd_state *serve;
	int serving;           /* 1: btyd_method_for_serving swapped the two */
};

/* An empty state of that kind (no fits); free with btyd_method_free. */
struct btyd_state *btyd_state_new(const struct btyd_count_model *kind);

/* struct method's load / predict / free_state for a count model. */
int btyd_method_load(const struct btyd_count_model *kind, struct registry *reg,
		     const struct artefact_info *artefact, void **out_state, struct ltv_err *err);
int btyd_method_predict(const void *state, const struct model_data *d, const size_t *rows,
			size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
			struct ltv_err *err);
void btyd_method_free(void *state);
/* struct method's fit_log_lik: the pooled fit's (NaN when not fitted). */
double btyd_method_log_lik(const void *state);
/*
 * struct method's for_serving: the refit on every user (state->serve), when
 * the artefact has one, takes the place of the judged fits. Once: a second
 * call changes nothing.
 */
void btyd_method_for_serving(void *state);

/*
 * P(alive) and P(at least one paying day in the next `days` days) of rows of
 * d at their age, from a loaded state (btyd_method_load).
 */
int btyd_method_outlook(const void *state, const struct model_data *d, const size_t *rows,
			size_t n, double days, double *out_p_alive, double *out_p_any,
			struct ltv_err *err);

/* The count models, and their methods. */
extern const struct btyd_count_model btyd_bgnbd_kind;
extern const struct btyd_count_model btyd_pareto_nbd_kind;
extern const struct method method_bgnbd;
extern const struct method method_pareto_nbd;

#endif

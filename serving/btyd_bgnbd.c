/*
 * The count model bgnbd: BG/NBD for paying days (Fader, Hardie & Lee 2005)
 * with Gamma-Gamma spend, through the BTYD model module
 * (include/ltv/btyd_model.h; pipeline/btyd_stage.c fits it as a stage).
 */
#include "ltv/bgnbd.h"
#include "ltv/btyd_model.h"

static int fit(const struct btyd_triples *t, void **out_model, struct ltv_err *err)
{
	struct bgnbd_param p;

	bgnbd_param_init(&p);
	/* Day resolution leaves the optimum flat; 1e-5 moves predictions far less than noise. */
	p.grad_tol = 1e-5;
	return bgnbd_fit(&p, &(struct bgnbd_data){ .n = t->n, .x = t->x, .t_x = t->t_x, .T = t->T,
						   .weight = t->weight },
			 (struct bgnbd_model **)out_model, err);
}

static int outlook(const void *model, const struct btyd_history *h, double weeks,
		   double *out_expected, double *out_p_alive, double *out_p_any, struct ltv_err *err)
{
	const struct bgnbd_model *m = model;

	*out_p_alive = bgnbd_p_alive(m, h->x, h->t_x, h->T);
	*out_p_any = bgnbd_p_any_purchase(m, h->x, h->t_x, h->T, weeks);
	*out_expected = 0;
	return weeks > 0 ? bgnbd_expected(m, h->x, h->t_x, h->T, weeks, out_expected, err) : 0;
}

static int save(const void *model, uint8_t **out_data, size_t *out_len, struct ltv_err *err)
{
	return bgnbd_save(model, out_data, out_len, err);
}

static int load(const void *data, size_t len, void **out_model, struct ltv_err *err)
{
	return bgnbd_load(data, len, (struct bgnbd_model **)out_model, err);
}

static void free_model(void *model)
{
	bgnbd_free(model);
}

static void add_metrics(cJSON *o, const void *model)
{
	const struct bgnbd_model *m = model;

	cJSON_AddNumberToObject(o, "r", m->r);
	cJSON_AddNumberToObject(o, "alpha", m->alpha);
	cJSON_AddNumberToObject(o, "a", m->a);
	cJSON_AddNumberToObject(o, "b", m->b);
	cJSON_AddNumberToObject(o, "log_lik", m->log_lik);
}

static double log_lik(const void *model)
{
	return ((const struct bgnbd_model *)model)->log_lik;
}

const struct btyd_count_model btyd_bgnbd_kind = {
	.name = "bgnbd", .fit = fit, .outlook = outlook, .save = save, .load = load,
	.free_model = free_model, .add_metrics = add_metrics,
	.log_lik = log_lik,
};

static int method_load(struct registry *reg, const struct artefact_info *artefact,
		       const struct config *cfg, void **out_state, struct ltv_err *err)
{
	(void)cfg;
	return btyd_method_load(&btyd_bgnbd_kind, reg, artefact, out_state, err);
}

const struct method method_bgnbd = {
	.name = "bgnbd",
	.any_age = 1,
	.user_at_age = 1,
	.load = method_load,
	.predict = btyd_method_predict,
	.free_state = btyd_method_free,
	.fit_log_lik = btyd_method_log_lik,
	.for_serving = btyd_method_for_serving,
};

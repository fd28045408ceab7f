/*
 * The count model pareto_nbd: Pareto/NBD for paying days (Schmittlein,
 * Morrison & Colombo 1987, with the expressions of Fader, Hardie & Lee 2005)
 * with Gamma-Gamma spend, through the BTYD model module
 * (include/ltv/btyd_model.h; pipeline/btyd_stage.c fits it as a stage).
 * Unlike BG/NBD, a customer may drop out at any time, not only right after
 * a purchase.
 */
#include "ltv/btyd_model.h"
#include "ltv/pareto_nbd.h"

static int fit(const struct btyd_triples *t, void **out_model, struct ltv_err *err)
{
	struct pareto_nbd_param p;

	pareto_nbd_param_init(&p);
	/* Day resolution leaves the optimum flat; 1e-5 moves predictions far less than noise. */
	p.grad_tol = 1e-5;
	return pareto_nbd_fit(&p, &(struct pareto_nbd_data){ .n = t->n, .x = t->x, .t_x = t->t_x,
							     .T = t->T, .weight = t->weight },
			      (struct pareto_nbd_model **)out_model, err);
}

static int outlook(const void *model, const struct btyd_history *h, double weeks,
		   double *out_expected, double *out_p_alive, double *out_p_any, struct ltv_err *err)
{
	const struct pareto_nbd_model *m = model;
	int ret = pareto_nbd_p_alive(m, h->x, h->t_x, h->T, out_p_alive, err);

	*out_expected = 0;
	*out_p_any = 0;
	if (ret == 0 && weeks > 0)
		ret = pareto_nbd_p_any_purchase(m, h->x, h->t_x, h->T, weeks, out_p_any, err);
	if (ret == 0 && weeks > 0)
		ret = pareto_nbd_conditional_expected(m, h->x, h->t_x, h->T, weeks, out_expected, err);
	return ret;
}

static int save(const void *model, uint8_t **out_data, size_t *out_len, struct ltv_err *err)
{
	return pareto_nbd_save(model, out_data, out_len, err);
}

static int load(const void *data, size_t len, void **out_model, struct ltv_err *err)
{
	return pareto_nbd_load(data, len, (struct pareto_nbd_model **)out_model, err);
}

static void free_model(void *model)
{
	pareto_nbd_free(model);
}

static void add_metrics(cJSON *o, const void *model)
{
	const struct pareto_nbd_model *m = model;

	cJSON_AddNumberToObject(o, "r", m->r);
	cJSON_AddNumberToObject(o, "alpha", m->alpha);
	cJSON_AddNumberToObject(o, "s", m->s);
	cJSON_AddNumberToObject(o, "beta", m->beta);
	cJSON_AddNumberToObject(o, "log_lik", m->log_lik);
}

static double log_lik(const void *model)
{
	return ((const struct pareto_nbd_model *)model)->log_lik;
}

const struct btyd_count_model btyd_pareto_nbd_kind = {
	.name = "pareto_nbd", .fit = fit, .outlook = outlook, .save = save, .load = load,
	.free_model = free_model, .add_metrics = add_metrics,
	.log_lik = log_lik,
};

static int method_load(struct registry *reg, const struct artefact_info *artefact,
		       const struct config *cfg, void **out_state, struct ltv_err *err)
{
	(void)cfg;
	return btyd_method_load(&btyd_pareto_nbd_kind, reg, artefact, out_state, err);
}

const struct method method_pareto_nbd = {
	.name = "pareto_nbd",
	.any_age = 1,
	.user_at_age = 1,
	.load = method_load,
	.predict = btyd_method_predict,
	.free_state = btyd_method_free,
	.fit_log_lik = btyd_method_log_lik,
	.for_serving = btyd_method_for_serving,
};

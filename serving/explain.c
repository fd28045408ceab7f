/*
 * "Why this number" (contract in include/ltv/explain.h): the method chain
 * that served a user and the TreeSHAP contributions of the tree models its
 * row goes through; the feature importance of a version's tree models.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/explain.h"
#include "ltv/gbt_artefact.h"
#include "ltv/hurdle_model.h"
#include "ltv/multiplier_model.h"

/* ---- the method chain ---- */

static void put_value(struct jbuf *out, double v)
{
	if (isfinite(v))
		jbuf_json_num(out, v);
	else
		jbuf_puts(out, "null");
}

/* Whether (app, campaign) of row has its own selection entry at horizon index h (else its tier's default served). */
static int campaign_selected(const struct predictor *p, const struct model_data *d, size_t row,
			     int h)
{
	const double *app = frame_column(&d->frame, "app_code");
	const double *campaign = frame_column(&d->frame, "campaign_code");
	char key[1024];
	int64_t ignored;

	snprintf(key, sizeof(key), "%s\x1f%s", d->apps[(size_t)app[row]],
		 d->campaigns[(size_t)campaign[row]]);
	return strmap_get(&predictor_choices_at(p, h)->cohort_method, key, &ignored);
}

static void chain_step(struct jbuf *out, int *n_steps, const char *method, const char *role,
		       double ltv, int served)
{
	jbuf_puts(out, (*n_steps)++ ? ",{\"method\":" : "{\"method\":");
	jbuf_json_str(out, method);
	jbuf_puts(out, ",\"role\":");
	jbuf_json_str(out, role);
	jbuf_puts(out, ",\"ltv_raw\":");
	put_value(out, ltv);
	jbuf_addf(out, ",\"served\":%s}", served ? "true" : "false");
}

static int chain_json(struct jbuf *out, const struct loaded_model *m, const struct model_data *d,
		      size_t row, int64_t horizon, int served, struct ltv_err *err)
{
	const struct predictor *p = &m->pred;
	const int h = feature_params_horizon_index(&p->params, horizon);
	const int chosen = predictor_chosen_method(p, d, row, h);
	const int tier = d->tier ? (int)d->tier[row] : 3;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const char *const *order;
	const size_t n_order = predictor_fallback_order(&order);
	double by_method[METHOD_COUNT];
	int n_steps = 0, done;
	char role[64];
	int ret = 0;

	/* Each method's own prediction for this user: what the chain saw at each step. */
	for (int k = 0; k < METHOD_COUNT && ret == 0; k++)
		ret = predictor_predict_method(p, k, d, &row, 1, horizon, &by_method[k], NULL, err);
	if (ret < 0)
		return err_prefix(err, "explain");
	jbuf_puts(out, "\"method_chain\":[");
	if (chosen >= 0) {
		snprintf(role, sizeof(role), campaign_selected(p, d, row, h) ? "selected for the campaign"
			 : "tier %d default (campaign not in the selection)", tier);
		chain_step(out, &n_steps, method_name(chosen), role, by_method[chosen],
			   served == chosen);
	} else if (chosen == METHOD_BLEND) {
		double blend = predictor_blend(p, h, tier, by_method, rev_window[row]);

		chain_step(out, &n_steps, "blend", "selected for the campaign", blend,
			   served == METHOD_BLEND);
	}
	done = served == chosen;
	for (size_t f = 0; f < n_order && !done && chosen != METHOD_GLOBAL_MEDIAN; f++) {
		const int k = method_index(order[f]);

		if (k == chosen)
			continue;
		chain_step(out, &n_steps, order[f], "fallback", by_method[k], served == k);
		done = served == k;
	}
	if (served == METHOD_GLOBAL_MEDIAN) {
		chain_step(out, &n_steps, "global_median",
			   chosen == METHOD_GLOBAL_MEDIAN ? "no campaign given" : "last fallback",
			   rev_window[row] + p->global_median[h], 1);
	}
	jbuf_puts(out, "]");
	if (chosen == METHOD_BLEND) {
		const struct predictor_choices *c = predictor_choices_at(p, h);
		const int slot = tier >= 1 && tier <= 3 && c->has_blend[tier] ? tier : 0;
		const double *w = c->has_blend[slot] ? c->blend_weight[slot] : NULL;

		jbuf_puts(out, ",\"blend_weights\":{");
		for (int k = 0, n = 0; w && k < METHOD_COUNT; k++)
			if (w[k] > 0) {
				jbuf_puts(out, n++ ? "," : "");
				jbuf_json_str(out, method_name(k));
				jbuf_puts(out, ":");
				jbuf_json_num(out, w[k]);
			}
		jbuf_puts(out, "}");
	}
	return 0;
}

/* ---- contributions ---- */

struct tree_model {
	const char *method, *part, *scale;
	int tier;
	int64_t horizon;
	const struct gbt_model *model;
};

/* Indices of the EXPLAIN_TOP largest |c[j]|, j < k, into top; returns how many. */
static size_t top_features(const double *c, size_t k, size_t *top)
{
	size_t n = 0;

	for (size_t j = 0; j < k; j++) {
		size_t at = n < EXPLAIN_TOP ? n++ : EXPLAIN_TOP;

		if (at == EXPLAIN_TOP && fabs(c[j]) <= fabs(c[top[EXPLAIN_TOP - 1]]))
			continue;
		if (at == EXPLAIN_TOP)
			at = EXPLAIN_TOP - 1;
		while (at > 0 && fabs(c[top[at - 1]]) < fabs(c[j])) {
			top[at] = top[at - 1];
			at--;
		}
		top[at] = j;
	}
	return n;
}

/* One model's contributions for the matrix row x (k features, the age already set). */
static int contrib_json(struct jbuf *out, int *n_out, const struct tree_model *t,
			const struct str_list *features, const float *x, double age, double weight,
			struct ltv_err *err)
{
	const size_t k = features->n;
	double *c = xmalloc((k + 1) * sizeof(double)), margin, rest = 0;
	size_t top[EXPLAIN_TOP], n_top;
	int ret = gbt_predict_contribs(t->model, x, 1, k, c, err);

	if (ret == 0)
		ret = gbt_predict_margin(t->model, x, 1, k, &margin, err);
	if (ret < 0) {
		free(c);
		return err_prefix(err, "explain %s %s", t->method, t->part);
	}
	n_top = top_features(c, k, top);
	for (size_t j = 0; j < k; j++)
		rest += c[j];
	jbuf_puts(out, (*n_out)++ ? ",{\"method\":" : "{\"method\":");
	jbuf_json_str(out, t->method);
	jbuf_puts(out, ",\"model\":");
	jbuf_json_str(out, t->part);
	jbuf_addf(out, ",\"tier\":%d,\"horizon\":%lld,\"snapshot_age\":", t->tier,
		  (long long)t->horizon);
	jbuf_json_num(out, age);
	jbuf_puts(out, ",\"weight\":");
	jbuf_json_num(out, weight);
	jbuf_puts(out, ",\"scale\":");
	jbuf_json_str(out, t->scale);
	jbuf_puts(out, ",\"margin\":");
	jbuf_json_num(out, margin);
	jbuf_puts(out, ",\"bias\":");
	jbuf_json_num(out, c[k]);
	jbuf_puts(out, ",\"top\":[");
	for (size_t i = 0; i < n_top; i++) {
		rest -= c[top[i]];
		jbuf_puts(out, i ? ",{\"feature\":" : "{\"feature\":");
		jbuf_json_str(out, features->v[top[i]]);
		jbuf_puts(out, ",\"value\":");
		put_value(out, x[top[i]]);
		jbuf_puts(out, ",\"contribution\":");
		jbuf_json_num(out, c[top[i]]);
		jbuf_puts(out, "}");
	}
	jbuf_puts(out, "],\"rest\":");
	jbuf_json_num(out, rest);
	jbuf_puts(out, "}");
	free(c);
	return 0;
}

/* The tree models row goes through at horizon: up to 3 (payer, revenue, multiplier). */
static size_t row_models(const struct loaded_model *m, const struct model_data *d, size_t row,
			 int64_t horizon, struct tree_model *out, const struct str_list **out_features)
{
	const int slot = gbt_artefact_row_tier(d, row);
	const struct hurdle_state *hs = m->pred.states[method_index("hurdle")];
	const struct multiplier_state *ms = m->pred.states[method_index("multiplier")];
	const double *rev_window = frame_column(&d->frame, "rev_window");
	size_t n = 0;

	if (hs) {
		const struct hurdle_model *h = hurdle_state_find(hs, slot, horizon);

		if (!h)
			h = hurdle_state_find(hs, 0, horizon);
		if (h && h->payer) {
			out[n] = (struct tree_model){ "hurdle", "payer",
				"log-odds of paying between the age and the horizon", h->tier,
				horizon, h->payer };
			out_features[n++] = &hs->features;
		}
		if (h && h->revenue) {
			out[n] = (struct tree_model){ "hurdle", "revenue",
				h->kind == HURDLE_REVENUE_GAMMA
					? "log of a payer's revenue to come, before the label scale"
					: "log1p of a payer's revenue to come, less the label shift",
				h->tier, horizon, h->revenue };
			out_features[n++] = &hs->features;
		}
	}
	if (ms && rev_window && rev_window[row] > 0) {
		const struct multiplier_model *mm = multiplier_state_find(ms, slot, horizon);

		if (!mm || !mm->model)
			mm = multiplier_state_find(ms, 0, horizon);
		if (mm && mm->model) {
			out[n] = (struct tree_model){ "multiplier", "multiplier",
				"log of ltv over revenue so far, less the label shift", mm->tier,
				horizon, mm->model };
			out_features[n++] = &ms->features;
		}
	}
	return n;
}

static int contributions_json(struct jbuf *out, const struct loaded_model *m,
			      const struct model_data *d, size_t row, int64_t horizon,
			      struct ltv_err *err)
{
	const double *window = frame_column(&d->frame, "window_days");
	struct tree_model models[3];
	const struct str_list *features[3];
	const size_t n = row_models(m, d, row, horizon, models, features);
	double lo, hi, t, scale;
	int n_out = 0, ret = 0;

	predictor_age_blend(&m->pred.params.snapshots, horizon, window ? window[row] : 0,
			    &lo, &hi, &t, &scale);
	jbuf_puts(out, ",\"contributions\":[");
	for (size_t i = 0; i < n && ret == 0; i++) {
		float *x = NULL;
		long age_col = -1;

		ret = model_data_matrix(d, features[i], &row, 1, &x, err);
		for (size_t j = 0; ret == 0 && j < features[i]->n; j++)
			if (strcmp(features[i]->v[j], "window_days") == 0)
				age_col = (long)j;
		/* The row at each snapshot age its prediction interpolates between, as served. */
		for (int side = 0; side < 2 && ret == 0; side++) {
			const double age = side ? hi : lo, w = side ? t : 1 - t;

			if (side && !(t > 0))
				break;
			if (age_col >= 0)
				x[age_col] = (float)age;
			ret = contrib_json(out, &n_out, &models[i], features[i], x, age, w, err);
		}
		free(x);
	}
	jbuf_puts(out, "]");
	return ret;
}

int explain_row_json(struct jbuf *out, const struct loaded_model *m, const struct model_data *d,
		     size_t row, int served_method, struct ltv_err *err)
{
	const int64_t horizon = m->params.target_horizon;
	int ret;

	jbuf_addf(out, "\"explain\":{\"horizon\":%lld,", (long long)horizon);
	ret = chain_json(out, m, d, row, horizon, served_method, err);
	if (ret == 0)
		ret = contributions_json(out, m, d, row, horizon, err);
	jbuf_puts(out, "}");
	return ret;
}

/* ---- feature importance ---- */

typedef int (*importance_fn)(void *ctx, const struct tree_model *t,
			     const struct str_list *features, const double *gain,
			     const size_t *top, size_t n_top, double total);

/* Calls fn for every tree model of m with its gains ranked. */
static int each_model_importance(const struct loaded_model *m, importance_fn fn, void *ctx,
				 struct ltv_err *err)
{
	const struct hurdle_state *hs = m->pred.states[method_index("hurdle")];
	const struct multiplier_state *ms = m->pred.states[method_index("multiplier")];
	const size_t n_h = hs ? hs->n_models : 0, n_m = ms ? ms->n_models : 0;
	int ret = 0;

	for (size_t i = 0; i < n_h + n_m && ret == 0; i++) {
		for (int part = 0; part < 2 && ret == 0; part++) {
			struct tree_model t = { 0 };
			const struct str_list *features;
			double *gain, total = 0;
			size_t top[EXPLAIN_TOP], n_top;

			if (i < n_h) {
				const struct hurdle_model *h = &hs->models[i];

				t = (struct tree_model){ "hurdle", part ? "revenue" : "payer", NULL,
							 h->tier, h->horizon,
							 part ? h->revenue : h->payer };
				features = &hs->features;
			} else {
				const struct multiplier_model *mm = &ms->models[i - n_h];

				if (part)
					break;
				t = (struct tree_model){ "multiplier", "multiplier", NULL, mm->tier,
							 mm->horizon, mm->model };
				features = &ms->features;
			}
			if (!t.model)
				continue;
			gain = xmalloc((features->n ? features->n : 1) * sizeof(double));
			ret = gbt_feature_importance(t.model, gain, err);
			for (size_t j = 0; ret == 0 && j < features->n; j++)
				total += gain[j];
			n_top = top_features(gain, features->n, top);
			if (ret == 0)
				ret = fn(ctx, &t, features, gain, top, n_top, total);
			free(gain);
		}
	}
	return ret;
}

struct importance_json {
	struct jbuf *out;
	int n;
};

static int importance_json_one(void *ctx, const struct tree_model *t,
			       const struct str_list *features, const double *gain,
			       const size_t *top, size_t n_top, double total)
{
	struct importance_json *ij = ctx;

	jbuf_puts(ij->out, ij->n++ ? ",{\"method\":" : "{\"method\":");
	jbuf_json_str(ij->out, t->method);
	jbuf_puts(ij->out, ",\"model\":");
	jbuf_json_str(ij->out, t->part);
	jbuf_addf(ij->out, ",\"tier\":%d,\"horizon\":%lld,\"total_gain\":", t->tier,
		  (long long)t->horizon);
	jbuf_json_num(ij->out, total);
	jbuf_puts(ij->out, ",\"top\":[");
	for (size_t i = 0, k = 0; i < n_top; i++) {
		if (!(gain[top[i]] > 0))
			continue;
		jbuf_puts(ij->out, k++ ? ",{\"feature\":" : "{\"feature\":");
		jbuf_json_str(ij->out, features->v[top[i]]);
		jbuf_puts(ij->out, ",\"gain\":");
		jbuf_json_num(ij->out, gain[top[i]]);
		jbuf_puts(ij->out, ",\"share\":");
		jbuf_json_num(ij->out, gain[top[i]] / total);
		jbuf_puts(ij->out, "}");
	}
	jbuf_puts(ij->out, "]}");
	return 0;
}

int explain_importance_json(struct jbuf *out, const struct loaded_model *m, struct ltv_err *err)
{
	struct importance_json ij = { out, 0 };
	int ret;

	jbuf_puts(out, "\"feature_importance\":[");
	ret = each_model_importance(m, importance_json_one, &ij, err);
	jbuf_puts(out, "]");
	return ret;
}

static int importance_print_one(void *ctx, const struct tree_model *t,
				const struct str_list *features, const double *gain,
				const size_t *top, size_t n_top, double total)
{
	FILE *out = ctx;
	char where[48];

	snprintf(where, sizeof(where), "%s %s %s D%lld", t->method, t->part,
		 t->tier ? (const char *[]){ "", "tier 1", "tier 2", "tier 3" }[t->tier] : "pooled",
		 (long long)t->horizon);
	fprintf(out, "  %-36s", where);
	for (size_t i = 0; i < n_top; i++)
		if (gain[top[i]] > 0)
			fprintf(out, " %s %.0f%%", features->v[top[i]], 100.0 * gain[top[i]] / total);
	if (!(total > 0))
		fprintf(out, " (no splits)");
	fputc('\n', out);
	return 0;
}

int explain_importance_print(FILE *out, const struct loaded_model *m, struct ltv_err *err)
{
	fprintf(out, "\nfeature importance (share of each tree model's total split gain, top %d):\n",
		EXPLAIN_TOP);
	return each_model_importance(m, importance_print_one, out, err);
}

/*
 * Users described by their features, served by a model version (contract in
 * include/ltv/predict_user.h); `ltvpipe predict` (cli/predict.c) and the
 * server build on them. Unset features are those of a user with no activity
 * yet, at the first snapshot age.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/explain.h"
#include "ltv/predict_user.h"
#include "ltv/model_data.h"
#include "ltv/strmap.h"

/* The base columns a features frame has, with what an unknown value defaults to. */
static const struct { const char *name; double def; } base_columns[] = {
	{ "uid", 0 }, { "install_time", 0 }, { "rev_window", 0 }, { "rev_d0", 0 },
	{ "rev_max_day", 0 }, { "purchases_window", 0 }, { "events_window", 0 }, { "events_d0", 0 },
	{ "active_days_window", 0 }, { "engagement", 0 }, { "first_purchase_day", NAN },
	{ "cost", NAN }, { "app_code", 0 }, { "campaign_code", 0 }, { "purchase_days", 0 },
	{ "days_since_purchase", NAN }, { "days_since_active", NAN }, { "rev_per_purchase_day", NAN },
	{ "rev_last7", 0 }, { "events_last7_share", NAN }, { "weight", 1 }, { "user_rep", 1 },
};
#define N_BASE (sizeof(base_columns) / sizeof(base_columns[0]))

const char *const predict_input_names[] = {
	"rev_window", "rev_d0", "rev_max_day", "purchases_window", "events_window", "events_d0",
	"active_days_window", "engagement", "first_purchase_day", "cost", "purchase_days",
	"days_since_purchase", "days_since_active", "rev_per_purchase_day", "rev_last7",
	"events_last7_share", "age_days", "window_days", "rev_to_date", NULL,
};

const char predict_input_list[] =
	"rev_window, rev_d0, rev_max_day, purchases_window, events_window, events_d0, "
	"active_days_window, engagement, first_purchase_day, cost, purchase_days, "
	"days_since_purchase, days_since_active, rev_per_purchase_day, rev_last7, "
	"events_last7_share, age_days, window_days, rev_to_date";

/* Counts of purchases, events or days: the models read them as whole numbers (BG/NBD's x). */
static const char *const whole_inputs[] = {
	"purchases_window", "events_window", "events_d0", "active_days_window", "purchase_days",
	"first_purchase_day", "days_since_purchase", "days_since_active", "age_days", "window_days",
	NULL,
};

/* Ages and counts beyond this are not a user's: a bound that keeps arithmetic finite. */
#define INPUT_MAX 1e12

void user_batch_init(struct user_batch *b, const struct loaded_model *m, size_t n)
{
	const struct feature_params *fp = &m->params;
	const size_t alloc = n ? n : 1;
	double *col;

	memset(b, 0, sizeof(*b));
	b->n = n;
	frame_init(&b->d.frame, n);
	for (size_t k = 0; k < N_BASE; k++) {
		col = frame_add_column(&b->d.frame, base_columns[k].name);
		for (size_t i = 0; i < n; i++)
			col[i] = base_columns[k].def;
	}
	col = frame_add_column(&b->d.frame, "age_days");
	for (size_t i = 0; i < n; i++)
		col[i] = (double)fp->snapshots.v[0];
	for (size_t k = 0; k < 2; k++) {
		col = frame_add_column(&b->d.frame, k ? "rev_to_date" : "window_days");
		for (size_t i = 0; i < n; i++)
			col[i] = NAN;
	}
	for (size_t h = 0; h < fp->horizons.n; h++) {
		char name[32];

		label_name(fp->horizons.v[h], name, sizeof(name));
		col = frame_add_column(&b->d.frame, name);
		for (size_t i = 0; i < n; i++)
			col[i] = NAN;
	}
	b->app = xcalloc(alloc, sizeof(char *));
	b->campaign = xcalloc(alloc, sizeof(char *));
	feature_params_copy(&b->d.params, fp);
	b->attr_defs = m->enc.attrs;
	b->n_attrs = m->enc.n_attrs;
	b->attr = xcalloc(b->n_attrs + 1, sizeof(char **));
	for (size_t k = 0; k < b->n_attrs; k++)
		b->attr[k] = xcalloc(alloc, sizeof(char *));
}

void user_batch_release(struct user_batch *b)
{
	for (size_t i = 0; i < b->n && b->app; i++) {
		free(b->app[i]);
		free(b->campaign[i]);
	}
	free(b->app);
	free(b->campaign);
	for (size_t k = 0; k < b->n_attrs && b->attr; k++) {
		for (size_t i = 0; i < b->n; i++)
			free(b->attr[k][i]);
		free(b->attr[k]);
	}
	free(b->attr);
	model_data_release(&b->d);
	memset(b, 0, sizeof(*b));
}

int user_batch_set_names(struct user_batch *b, size_t row, const char *app, const char *campaign,
			 struct ltv_err *err)
{
	assert(row < b->n);
	if (!app || !*app)
		return err_set(err, LTV_EINVAL, "app: required; give the app id the model was trained on");
	if (strlen(app) > PREDICT_NAME_MAX)
		return err_set(err, LTV_EINVAL, "app: %zu bytes; at most %d", strlen(app), PREDICT_NAME_MAX);
	if (campaign && strlen(campaign) > PREDICT_NAME_MAX)
		return err_set(err, LTV_EINVAL, "campaign: %zu bytes; at most %d", strlen(campaign),
			       PREDICT_NAME_MAX);
	free(b->app[row]);
	free(b->campaign[row]);
	b->app[row] = xstrdup(app);
	b->campaign[row] = xstrdup(campaign ? campaign : "");
	return 0;
}

int user_batch_attr_index(const struct user_batch *b, const char *name)
{
	for (size_t k = 0; k < b->n_attrs; k++)
		if (strcmp(b->attr_defs[k].name, name) == 0)
			return (int)k;
	return -1;
}

int user_batch_set_attr(struct user_batch *b, size_t row, const char *name, const char *value,
			struct ltv_err *err)
{
	int k = user_batch_attr_index(b, name);
	char known[512] = "";
	size_t len = 0;

	assert(row < b->n);
	if (k < 0) {
		for (size_t j = 0; j < b->n_attrs && len < sizeof(known); j++)
			len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s", j ? ", " : "",
						b->attr_defs[j].name);
		return err_set(err, LTV_EINVAL, "%.64s: not an attribute of this model version; %s%s",
			       name, b->n_attrs ? "its attributes (columns.attributes): " :
			       "it was trained with no columns.attributes", known);
	}
	if (strlen(value) > PREDICT_NAME_MAX)
		return err_set(err, LTV_EINVAL, "%s: %zu bytes; at most %d", name, strlen(value),
			       PREDICT_NAME_MAX);
	free(b->attr[k][row]);
	b->attr[k][row] = xstrdup(value);
	return 0;
}

int predict_input_index(const char *name)
{
	for (int k = 0; predict_input_names[k]; k++)
		if (strcmp(predict_input_names[k], name) == 0)
			return k;
	return -1;
}

int user_batch_set(struct user_batch *b, size_t row, const char *name, double value,
		   struct ltv_err *err)
{
	const int k = predict_input_index(name);

	if (k < 0)
		return err_set(err, LTV_EINVAL, "%.64s: not a feature; use one of %s", name,
			       predict_input_list);
	return user_batch_set_input(b, row, k, value, err);
}

int user_batch_set_input(struct user_batch *b, size_t row, int input, double value,
			 struct ltv_err *err)
{
	/* the table's own string: frame_column's per-thread hint is keyed by its address */
	const char *name = predict_input_names[input];

	assert(row < b->n);
	if (!isfinite(value))
		return err_set(err, LTV_EINVAL, "%s: not a finite number; give a number >= 0", name);
	if (value < 0)
		return err_set(err, LTV_EINVAL, "%s: %g is negative; features are counts, days or money, "
			       "so give a value >= 0", name, value);
	if (value > INPUT_MAX)
		return err_set(err, LTV_EINVAL, "%s: %g is too large; give a number <= %g", name, value,
			       INPUT_MAX);
	/* the cheap test first: most values are whole, few above 1 (a row sets ~5 per request) */
	if (value > 1 && strcmp(name, "events_last7_share") == 0)
		return err_set(err, LTV_EINVAL, "%s: %g is not a share; give a number from 0 to 1", name,
			       value);
	for (size_t k = 0; value != floor(value) && whole_inputs[k]; k++)
		if (strcmp(whole_inputs[k], name) == 0)
			return err_set(err, LTV_EINVAL, "%s: %g is not a whole number; give a count", name,
				       value);
	frame_column(&b->d.frame, name)[row] = value;
	return 0;
}

void user_batch_copy_row(struct user_batch *dst, size_t dst_row, const struct user_batch *src,
			 size_t src_row)
{
	assert(dst_row < dst->n && src_row < src->n && src->app[src_row]);
	for (size_t k = 0; predict_input_names[k]; k++)
		frame_column(&dst->d.frame, predict_input_names[k])[dst_row] =
			frame_column(&src->d.frame, predict_input_names[k])[src_row];
	free(dst->app[dst_row]);
	free(dst->campaign[dst_row]);
	dst->app[dst_row] = xstrdup(src->app[src_row]);
	dst->campaign[dst_row] = xstrdup(src->campaign[src_row]);
	assert(dst->n_attrs == src->n_attrs);
	for (size_t k = 0; k < dst->n_attrs; k++) {
		free(dst->attr[k][dst_row]);
		dst->attr[k][dst_row] = src->attr[k][src_row] ? xstrdup(src->attr[k][src_row]) : NULL;
	}
}

/*
 * The rows' attribute values as base attributes (values in first-seen order)
 * and code columns attr_<name>_code; a row without a value gets a code past
 * the values, which feature_apply_attr_encodings reads as unknown.
 */
static struct attr_encoding *batch_attrs(struct user_batch *b)
{
	struct attr_encoding *base = xcalloc(b->n_attrs + 1, sizeof(*base));

	for (size_t k = 0; k < b->n_attrs; k++) {
		struct strmap ix;
		char col[ATTR_COLUMN_MAX];
		double *code;

		attr_column_name(b->attr_defs[k].name, "code", col, sizeof(col));
		code = frame_add_column(&b->d.frame, col);
		base[k].name = xstrdup(b->attr_defs[k].name);
		base[k].values = xcalloc(b->n + 1, sizeof(char *));
		strmap_init(&ix);
		for (size_t i = 0; i < b->n; i++) {
			int64_t c;

			code[i] = (double)b->n; /* not given */
			if (!b->attr[k][i])
				continue;
			if (!strmap_get(&ix, b->attr[k][i], &c)) {
				c = (int64_t)base[k].n_values;
				base[k].values[base[k].n_values++] = xstrdup(b->attr[k][i]);
				strmap_put(&ix, b->attr[k][i], c);
			}
			code[i] = (double)c;
		}
		strmap_release(&ix);
	}
	return base;
}

int user_batch_finish(struct user_batch *b, const struct loaded_model *m, struct ltv_err *err)
{
	struct frame *f = &b->d.frame;
	struct strmap app_ix, campaign_ix;
	char **apps = xcalloc(b->n + 1, sizeof(char *)), **campaigns = xcalloc(b->n + 1, sizeof(char *));
	size_t n_apps = 0, n_campaigns = 0;
	double *rev_to_date = frame_column(f, "rev_to_date"), *rev_window = frame_column(f, "rev_window");
	double *window = frame_column(f, "window_days"), *age = frame_column(f, "age_days");
	double *since_active = frame_column(f, "days_since_active");
	double *app_code = frame_column(f, "app_code"), *campaign_code = frame_column(f, "campaign_code");
	int ret = 0;

	strmap_init(&app_ix);
	strmap_init(&campaign_ix);
	for (size_t i = 0; i < b->n; i++) {
		int64_t code;

		if (!b->app[i]) {
			ret = err_set(err, LTV_EINVAL, "app: required; give the app id the model was trained on");
			goto out;
		}
		if (isnan(rev_to_date[i]))
			rev_to_date[i] = rev_window[i];
		if (isnan(window[i]))
			window[i] = age[i];
		if (isnan(since_active[i]))
			since_active[i] = window[i];
		if (!strmap_get(&app_ix, b->app[i], &code)) {
			code = (int64_t)n_apps;
			strmap_put(&app_ix, b->app[i], code);
			apps[n_apps++] = b->app[i];
		}
		app_code[i] = (double)code;
		if (!strmap_get(&campaign_ix, b->campaign[i], &code)) {
			code = (int64_t)n_campaigns;
			strmap_put(&campaign_ix, b->campaign[i], code);
			campaigns[n_campaigns++] = b->campaign[i];
		}
		campaign_code[i] = (double)code;
	}
	ret = feature_apply_encodings(&m->enc, f, apps, n_apps, campaigns, n_campaigns, &b->d.apps,
				      &b->d.n_apps, &b->d.campaigns, &b->d.n_campaigns);
	if (ret < 0)
		goto out;
	if (b->n_attrs) {
		struct attr_encoding *base = batch_attrs(b);

		feature_apply_attr_encodings(&m->enc, f, base, b->n_attrs);
		attr_encodings_release(base, b->n_attrs);
	}
	b->d.tier = xmalloc((b->n ? b->n : 1) * sizeof(double));
	for (size_t i = 0; i < b->n; i++)
		b->d.tier[i] = model_tier(m, b->app[i], b->campaign[i]);
out:
	strmap_release(&app_ix);
	strmap_release(&campaign_ix);
	free(apps);
	free(campaigns);
	return ret;
}

void predict_user_json(struct jbuf *out, const struct loaded_model *m, const struct user_batch *b,
		       const struct served *s, size_t i)
{
	const struct feature_params *fp = &m->params;
	int target = feature_params_horizon_index(fp, fp->target_horizon);

	jbuf_puts(out, "{\"segment\":");
	jbuf_json_str(out, predictor_segment(&m->pred, s->ltv[target][i]));
	jbuf_puts(out, ",\"model_version\":");
	jbuf_int(out, (long long)m->version);
	jbuf_puts(out, ",\"app\":");
	jbuf_json_str(out, b->app[i]);
	jbuf_puts(out, ",\"campaign\":");
	jbuf_json_str(out, b->campaign[i]);
	jbuf_puts(out, ",\"tier\":");
	jbuf_json_num(out, b->d.tier[i]);
	jbuf_puts(out, ",\"method\":");
	jbuf_json_str(out, method_name(s->method[i]));
	jbuf_puts(out, s->fallback[i] ? ",\"fallback\":true,\"p_payer\":" : ",\"fallback\":false,\"p_payer\":");
	jbuf_json_num(out, s->p_payer[i]);
	jbuf_puts(out, ",\"target_horizon_days\":");
	jbuf_int(out, (long long)fp->target_horizon);
	for (int part = 0; part < 4; part++) {
		static const char *const keys[] = { ",\"ltv\":{", "},\"ltv_raw\":{", "},\"ltv_lo\":{",
						     "},\"ltv_hi\":{" };
		double *const *values = part == 0 ? s->ltv : part == 1 ? s->raw_h : part == 2 ? s->ltv_lo : s->ltv_hi;

		jbuf_puts(out, keys[part]);
		for (size_t h = 0; h < s->n_horizons; h++) {
			jbuf_puts(out, h ? ",\"" : "\"");
			jbuf_int(out, (long long)fp->horizons.v[h]);
			jbuf_puts(out, "\":");
			jbuf_json_num(out, values[h][i]);
		}
	}
	jbuf_puts(out, "},\"p_alive\":");
	jbuf_json_num(out, s->p_alive[i]);
	jbuf_puts(out, ",\"p_purchase_30d\":");
	jbuf_json_num(out, s->p_purchase_30d[i]);
	jbuf_puts(out, ",\"risk_segment\":");
	jbuf_json_str(out, serving_risk_segment(s->p_alive[i]));
	jbuf_puts(out, "}");
}

/*
 * An app the model version never saw gets the pooled models and the global
 * encodings: a number, but not one learnt from that app.
 */
int predict_user_warnings(struct jbuf *out, const struct loaded_model *m, const struct user_batch *b,
			  size_t i, char *buf, size_t size)
{
	const char *app = b->app[i];
	size_t len;

	for (size_t k = 0; k < m->enc.n_apps; k++)
		if (strcmp(m->enc.apps[k], app) == 0)
			return 0;
	len = (size_t)snprintf(buf, size, "app '%s' is not one model version %lld was trained on, so "
			       "this prediction comes from the pooled models of all apps; the apps it "
			       "knows:", app, (long long)m->version);
	for (size_t k = 0; k < m->enc.n_apps && len < size; k++)
		len += (size_t)snprintf(buf + len, size - len, "%s %s", k ? "," : "", m->enc.apps[k]);
	assert(out->len > 0 && out->p[out->len - 1] == '}');
	out->p[--out->len] = '\0'; /* reopen the object: the warnings go in as its last member */
	jbuf_puts(out, ",\"warnings\":[");
	jbuf_json_str(out, buf);
	jbuf_puts(out, "]}");
	return 1;
}

void predict_user_csv_header(struct jbuf *out, const struct loaded_model *m)
{
	const struct feature_params *fp = &m->params;

	static const char *const parts[] = { "", "raw_", "lo_", "hi_" };

	jbuf_puts(out, "app,campaign,model_version,tier,method,fallback,p_payer,segment");
	for (int part = 0; part < 4; part++) {
		for (size_t h = 0; h < fp->horizons.n; h++)
			jbuf_addf(out, ",ltv_%s%lld", parts[part], (long long)fp->horizons.v[h]);
		if (part == 1)
			jbuf_puts(out, ",p_alive,p_purchase_30d,risk_segment");
	}
	jbuf_puts(out, "\r\n");
}

void predict_user_csv(struct jbuf *out, const struct loaded_model *m, const struct user_batch *b,
		      const struct served *s, size_t i)
{
	const struct feature_params *fp = &m->params;
	int target = feature_params_horizon_index(fp, fp->target_horizon);

	jbuf_csv_field(out, b->app[i]);
	jbuf_puts(out, ",");
	jbuf_csv_field(out, b->campaign[i]);
	jbuf_puts(out, ",");
	jbuf_int(out, (long long)m->version);
	jbuf_puts(out, ",");
	jbuf_num(out, b->d.tier[i]);
	jbuf_puts(out, ",");
	jbuf_puts(out, method_name(s->method[i]));
	jbuf_puts(out, s->fallback[i] ? ",1," : ",0,");
	jbuf_num(out, s->p_payer[i]);
	jbuf_puts(out, ",");
	jbuf_puts(out, predictor_segment(&m->pred, s->ltv[target][i]));
	for (int part = 0; part < 4; part++) {
		double *const *values = part == 0 ? s->ltv : part == 1 ? s->raw_h : part == 2 ? s->ltv_lo : s->ltv_hi;

		for (size_t h = 0; h < s->n_horizons; h++) {
			jbuf_puts(out, ",");
			jbuf_num(out, values[h][i]);
		}
		if (part == 1) {
			jbuf_puts(out, ",");
			jbuf_num(out, s->p_alive[i]);
			jbuf_puts(out, ",");
			jbuf_num(out, s->p_purchase_30d[i]);
			jbuf_puts(out, ",");
			jbuf_puts(out, serving_risk_segment(s->p_alive[i]));
		}
	}
	jbuf_puts(out, "\r\n");
}

int predict_user_explain(struct jbuf *out, const struct loaded_model *m, const struct user_batch *b,
			 const struct served *s, size_t i, struct ltv_err *err)
{
	assert(out->len > 0 && out->p[out->len - 1] == '}');
	out->p[--out->len] = '\0'; /* reopen the object */
	jbuf_puts(out, ",");
	if (explain_row_json(out, m, &b->d, i, s->method[i], err) < 0)
		return err_prefix(err, "explaining user %zu", i);
	jbuf_puts(out, "}");
	return 0;
}

/*
 * The model-version predictor (contract in include/ltv/predictor.h). The
 * fallback chain is one array, fallback_order: change the order there.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/prediction_memo.h"
#include "ltv/predictor.h"
#include "ltv/u64map.h"

/*
 * DESIGN.md: hurdle → multiplier → bgnbd → lookalike → semantic → global
 * median. bgnbd follows the tree models because it extrapolates in time: it
 * serves a horizon no training user has lived to yet (CDNOW at 365 days).
 */
static const char *const fallback_order[] = { "hurdle", "multiplier", "bgnbd", "pareto_nbd",
					      "lookalike", "semantic" };

#define GLOBAL_MEDIAN_MAGIC "LTVGMED1"
#define CALIBRATION_KEY "cal:t%d:h%lld"

#define BLEND_MAGIC "LTVBLND1"
#define CHOICES_MAGIC "LTVCHOI1"

size_t predictor_fallback_order(const char *const **out_names)
{
	*out_names = fallback_order;
	return sizeof(fallback_order) / sizeof(*fallback_order);
}

/*
 * Blend weights, per horizon (v2; v1 had the target horizon's only, which
 * then serves every horizon): u32 number of horizons, then per horizon its
 * days, u32 own, and per tier u32 has_blend and the weights by method name.
 */
uint8_t *predictor_save_blend(const struct predictor *p, size_t *out_len)
{
	const struct int_list *hz = &p->params.horizons;
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, BLEND_MAGIC, 2);
	blob_put_u32(&w, (uint32_t)hz->n);
	for (size_t h = 0; h < hz->n; h++) {
		const struct predictor_choices *c = &p->choice[h];

		blob_put_u64(&w, (uint64_t)hz->v[h]);
		blob_put_u32(&w, (uint32_t)c->own);
		for (int t = 0; t < 4; t++) {
			blob_put_u32(&w, (uint32_t)c->has_blend[t]);
			/* By name, so a method table that grows cannot shift the weights. */
			for (int m = 0; m < METHOD_COUNT; m++) {
				blob_put_str(&w, method_table[m]->name);
				blob_put_f64(&w, c->blend_weight[t][m]);
			}
		}
	}
	return blob_writer_detach(&w, out_len);
}

static int load_tier_weights(struct predictor_choices *c, struct blob_reader *r,
			     struct ltv_err *err)
{
	int ret = 0;

	for (int t = 0; t < 4 && ret == 0; t++) {
		c->has_blend[t] = blob_get_u32(r) != 0;
		for (int k = 0; k < METHOD_COUNT && ret == 0; k++) {
			char *name = blob_get_str(r);
			double w = blob_get_f64(r);
			int m = name ? method_index(name) : -1;

			if (r->failed || m < 0 || !(w >= 0 && w <= 1))
				ret = err_set(err, LTV_EINVAL, "blend weights blob: truncated or corrupt");
			else
				c->blend_weight[t][m] = w;
			free(name);
		}
	}
	return ret;
}

static int load_blend(struct predictor *p, const void *data, size_t len, struct ltv_err *err)
{
	struct blob_reader r;
	uint32_t version, n;
	int ret;

	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, BLEND_MAGIC, 2, &version, err);
	if (ret < 0 || version == 1)
		return ret < 0 ? ret : load_tier_weights(&p->choice[p->target_h], &r, err);
	n = blob_get_u32(&r);
	for (uint32_t k = 0; k < n && ret == 0; k++) {
		const int h = feature_params_horizon_index(&p->params, (int64_t)blob_get_u64(&r));
		const int own = blob_get_u32(&r) != 0;
		struct predictor_choices scratch = { 0 };
		struct predictor_choices *c = h >= 0 ? &p->choice[h] : &scratch;

		if (r.failed)
			return err_set(err, LTV_EINVAL, "blend weights blob: truncated or corrupt");
		ret = load_tier_weights(c, &r, err);
		if (own && h >= 0)
			c->own = 1;
	}
	return ret;
}

const struct predictor_choices *predictor_choices_at(const struct predictor *p, int h)
{
	return &p->choice[h >= 0 && h < PREDICTOR_MAX_HORIZONS && p->choice[h].own ? h : p->target_h];
}

/* The weights a row of this tier's blend uses. */
static const double *blend_weights_of(const struct predictor_choices *c, int tier)
{
	return c->blend_weight[tier >= 1 && tier <= 3 && c->has_blend[tier] ? tier : 0];
}

double predictor_blend(const struct predictor *p, int h, int tier, const double *by_method,
		       double rev_window)
{
	const struct predictor_choices *c = predictor_choices_at(p, h);
	const double *w = blend_weights_of(c, tier);
	double sum = 0;

	if (!c->has_blend[0])
		return NAN;
	/*
	 * A weighted method with nothing for this row makes it another blend than
	 * the one fitted (say, a horizon the tree models have no labels for): the
	 * fallback chain serves instead.
	 */
	for (int m = 0; m < METHOD_COUNT; m++) {
		if (!(w[m] > 0))
			continue;
		if (isnan(by_method[m]))
			return NAN;
		sum += w[m] * (by_method[m] - rev_window);
	}
	return rev_window + sum;
}

void predictor_init(struct predictor *p, const struct config *cfg,
		    const struct feature_params *params)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	feature_params_copy(&p->params, params);
	for (int h = 0; h < PREDICTOR_MAX_HORIZONS; h++) {
		strmap_init(&p->choice[h].cohort_method);
		rank_share_init(&p->share[h]);
		for (int t = 0; t < 4; t++)
			p->floor_share[t][h] = 1;
	}
	p->target_h = feature_params_horizon_index(params, params->target_horizon);
	if (p->target_h < 0)
		p->target_h = 0;
	p->choice[p->target_h].own = 1;
}

void predictor_release(struct predictor *p)
{
	for (int m = 0; m < METHOD_COUNT; m++)
		if (p->states[m])
			method_table[m]->free_state(p->states[m]);
	for (int t = 0; t < 4; t++)
		for (int h = 0; h < PREDICTOR_MAX_HORIZONS; h++)
			calibration_free(p->cal[t][h]);
	for (int h = 0; h < PREDICTOR_MAX_HORIZONS; h++) {
		predictor_choices_reset(p, h);
		strmap_release(&p->choice[h].cohort_method);
		rank_share_release(&p->share[h]);
	}
	feature_params_release(&p->params);
	memset(p, 0, sizeof(*p));
}

int predictor_load_methods(struct predictor *p, struct registry *reg,
			   const struct artefact_info *const *artefacts, struct ltv_err *err)
{
	for (int m = 0; m < METHOD_COUNT; m++) {
		int ret = method_table[m]->load(reg, artefacts[m], p->cfg, &p->states[m], err);

		if (ret < 0)
			return err_prefix(err, "loading %s v%lld", method_table[m]->name,
					  (long long)artefacts[m]->version);
	}
	return 0;
}

static void cohort_key(const char *app, const char *campaign, char *buf, size_t size)
{
	snprintf(buf, size, "%s\x1f%s", app, campaign);
}

void predictor_choose(struct predictor *p, int h, const char *app, const char *campaign,
		      int method)
{
	char key[1024];
	int64_t old;

	struct predictor_choices *c = &p->choice[h];
	size_t n = c->n_cohorts;

	cohort_key(app, campaign, key, sizeof(key));
	if (strmap_get(&c->cohort_method, key, &old))
		return; /* first choice wins; the selection never names a cohort twice */
	strmap_put(&c->cohort_method, key, method);
	c->cohort_app = xrealloc(c->cohort_app, (n + 1) * sizeof(char *));
	c->cohort_campaign = xrealloc(c->cohort_campaign, (n + 1) * sizeof(char *));
	c->cohort_choice = xrealloc(c->cohort_choice, (n + 1) * sizeof(int));
	c->cohort_app[n] = xstrdup(app);
	c->cohort_campaign[n] = xstrdup(campaign);
	c->cohort_choice[n] = method;
	c->n_cohorts = n + 1;
}

void predictor_choices_reset(struct predictor *p, int h)
{
	struct predictor_choices *c = &p->choice[h];

	strmap_release(&c->cohort_method);
	for (size_t k = 0; k < c->n_cohorts; k++) {
		free(c->cohort_app[k]);
		free(c->cohort_campaign[k]);
	}
	free(c->cohort_app);
	free(c->cohort_campaign);
	free(c->cohort_choice);
	memset(c, 0, sizeof(*c));
	strmap_init(&c->cohort_method);
}

/* Reads predictor_save_choices' blob: those horizons then serve with their own choices. */
static int load_choices(struct predictor *p, const void *data, size_t len, struct ltv_err *err)
{
	struct blob_reader r;
	uint32_t version, n;
	int ret;

	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, CHOICES_MAGIC, 1, &version, err);
	n = ret == 0 ? blob_get_u32(&r) : 0;
	for (uint32_t k = 0; k < n && ret == 0; k++) {
		const int h = feature_params_horizon_index(&p->params, (int64_t)blob_get_u64(&r));
		uint64_t n_cohorts;

		if (h < 0 || h == p->target_h)
			return err_set(err, LTV_EINVAL, "choices blob: a horizon that is not configured");
		p->choice[h].own = 1;
		for (int t = 1; t <= 3 && ret == 0; t++) {
			char *name = blob_get_str(&r);

			p->choice[h].tier_default[t] = name ? method_index(name) : -1;
			free(name);
		}
		n_cohorts = blob_get_u64(&r);
		if (r.failed || n_cohorts > len)
			return err_set(err, LTV_EINVAL, "choices blob: truncated or corrupt");
		for (uint64_t c = 0; c < n_cohorts && ret == 0; c++) {
			char *app = blob_get_str(&r), *campaign = blob_get_str(&r), *name = blob_get_str(&r);
			int m = name ? method_index(name) : -1;

			if (r.failed || !app || !campaign || (m < 0 && m != METHOD_BLEND))
				ret = err_set(err, LTV_EINVAL, "choices blob: truncated or corrupt");
			else
				predictor_choose(p, h, app, campaign, m);
			free(app);
			free(campaign);
			free(name);
		}
	}
	return ret < 0 ? ret : blob_reader_status(&r, "choices blob", err);
}

/*
 * Every non-target horizon with choices of its own: u32 count, then per
 * horizon its days, the tier defaults of tiers 1..3 by name, u64 cohorts and
 * per cohort app, campaign and method name. (The target horizon's choices
 * are the method_selection table, with every candidate's error.)
 */
uint8_t *predictor_save_choices(const struct predictor *p, size_t *out_len)
{
	const struct int_list *hz = &p->params.horizons;
	struct blob_writer w;
	uint32_t n_own = 0;

	for (size_t h = 0; h < hz->n; h++)
		n_own += (int)h != p->target_h && p->choice[h].own;
	blob_writer_init(&w);
	blob_put_header(&w, CHOICES_MAGIC, 1);
	blob_put_u32(&w, n_own);
	for (size_t h = 0; h < hz->n; h++) {
		const struct predictor_choices *c = &p->choice[h];

		if ((int)h == p->target_h || !c->own)
			continue;
		blob_put_u64(&w, (uint64_t)hz->v[h]);
		for (int t = 1; t <= 3; t++)
			blob_put_str(&w, method_name(c->tier_default[t]));
		blob_put_u64(&w, c->n_cohorts);
		for (size_t k = 0; k < c->n_cohorts; k++) {
			blob_put_str(&w, c->cohort_app[k]);
			blob_put_str(&w, c->cohort_campaign[k]);
			blob_put_str(&w, method_name(c->cohort_choice[k]));
		}
	}
	return blob_writer_detach(&w, out_len);
}

#define SHARES_MAGIC "LTVSHAR1"

/* u32 count, then per horizon with a ranker its days and its share (rank_share_put). */
uint8_t *predictor_save_shares(const struct predictor *p, size_t *out_len)
{
	const struct int_list *hz = &p->params.horizons;
	struct blob_writer w;
	uint32_t n = 0;

	for (size_t h = 0; h < hz->n; h++)
		n += p->share[h].ranker[0] >= 0;
	blob_writer_init(&w);
	blob_put_header(&w, SHARES_MAGIC, 1);
	blob_put_u32(&w, n);
	for (size_t h = 0; h < hz->n; h++)
		if (p->share[h].ranker[0] >= 0) {
			blob_put_u64(&w, (uint64_t)hz->v[h]);
			rank_share_put(&w, &p->share[h]);
		}
	return blob_writer_detach(&w, out_len);
}

static int load_shares(struct predictor *p, const void *data, size_t len, struct ltv_err *err)
{
	struct blob_reader r;
	uint32_t version, n;
	int ret;

	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, SHARES_MAGIC, 1, &version, err);
	n = ret == 0 ? blob_get_u32(&r) : 0;
	for (uint32_t k = 0; k < n && ret == 0; k++) {
		const int h = feature_params_horizon_index(&p->params, (int64_t)blob_get_u64(&r));

		if (h < 0)
			return err_set(err, LTV_EINVAL, "rank_share blob: a horizon that is not configured");
		ret = rank_share_get(&r, &p->share[h], err);
	}
	return ret < 0 ? ret : blob_reader_status(&r, "rank_share blob", err);
}

/* The rank share's age cells at horizon: the snapshots below it (at least one cell). */
static int share_cells(const struct predictor *p, int64_t horizon)
{
	int n = 0;

	for (size_t k = 0; k < p->params.snapshots.n && p->params.snapshots.v[k] < horizon; k++)
		n++;
	return n < 1 ? 1 : n > RANK_SHARE_MAX_CELLS ? RANK_SHARE_MAX_CELLS : n;
}

/* Where a row of this age sits among the cells: as predictor_age_blend serves it. */
static struct rank_cell share_cell(const struct predictor *p, int64_t horizon, struct frame_col window,
				   size_t row)
{
	const int n_cells = share_cells(p, horizon);
	struct rank_cell cell = { 0, 0, 0 };
	double lo, hi, t, scale;

	if (!frame_col_found(window))
		return cell;
	predictor_age_blend(&p->params.snapshots, horizon, frame_col_at(window, row), &lo, &hi, &t,
			    &scale);
	for (int k = 0; k < n_cells; k++) {
		if ((double)p->params.snapshots.v[k] == lo)
			cell.lo = k;
		if ((double)p->params.snapshots.v[k] == hi)
			cell.hi = k;
	}
	cell.t = t;
	return cell;
}

void predictor_fit_share(struct predictor *p, const struct model_data *d, int64_t horizon,
			 const size_t *rows, size_t n, double *const *pred, size_t min_users,
			 int n_threads)
{
	const int h = feature_params_horizon_index(&p->params, horizon);
	const struct frame_col window = frame_col(&d->frame, "window_days");
	int *chosen = xmalloc((n ? n : 1) * sizeof(int));
	struct rank_cell *cell = xmalloc((n ? n : 1) * sizeof(*cell));

	if (h >= 0) {
		predictor_chosen_methods(p, d, rows, n, h, chosen);
		for (size_t i = 0; i < n; i++)
			cell[i] = share_cell(p, horizon, window, rows[i]);
		rank_share_fit(&p->share[h], d, horizon, rows, n, pred, chosen, cell,
			       share_cells(p, horizon), min_users, n_threads);
	}
	free(chosen);
	free(cell);
}

/* Each horizon's global median: the fallback's value (predictor_fallback). */
uint8_t *predictor_save_medians(const struct predictor *p, size_t *out_len)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, GLOBAL_MEDIAN_MAGIC, 1);
	blob_put_f64_array(&w, p->global_median, p->params.horizons.n);
	return blob_writer_detach(&w, out_len);
}

static int load_medians(struct predictor *p, const void *data, size_t len, struct ltv_err *err)
{
	struct blob_reader r;
	double *medians = NULL;
	size_t n = 0;
	uint32_t version;
	int ret;

	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, GLOBAL_MEDIAN_MAGIC, 1, &version, err);
	if (ret == 0 && (blob_get_f64_array(&r, &medians, &n) < 0 || n != p->params.horizons.n))
		ret = err_set(err, LTV_EINVAL, "global medians do not match the %zu configured "
			      "horizons", p->params.horizons.n);
	for (size_t h = 0; ret == 0 && h < n; h++)
		p->global_median[h] = medians[h];
	free(medians);
	return ret;
}

/*
 * Blob `name` of the select artefact read by load (predictor_save_*'s
 * reader); an optional one that is not there leaves p as it is.
 */
static int load_select_blob(struct predictor *p, struct registry *reg,
			    const struct artefact_info *select, const char *name, int optional,
			    int (*load)(struct predictor *, const void *, size_t, struct ltv_err *),
			    struct ltv_err *err)
{
	void *data = NULL;
	size_t len;
	int ret = registry_blob_get(reg, select->id, name, &data, &len, err);

	if (ret == 0)
		ret = load(p, data, len, err);
	else if (ret == LTV_ENOTFOUND && optional)
		ret = 0;
	free(data);
	return ret;
}

int predictor_load_selection(struct predictor *p, struct registry *reg,
			     const struct artefact_info *select, struct ltv_err *err)
{
	struct selection_row *rows = NULL;
	size_t n = 0;
	int ret = registry_selection_load(reg, select->id, &rows, &n, err);

	for (size_t i = 0; i < n && ret == 0; i++) {
		int m = method_index(rows[i].method);

		if (m < 0 && m != METHOD_BLEND) {
			ret = err_set(err, LTV_EINVAL, "select v%lld names unknown method '%s'",
				      (long long)select->version, rows[i].method);
			break;
		}
		if (strcmp(rows[i].app_id, "*") == 0 && rows[i].tier >= 1 && rows[i].tier <= 3)
			p->choice[p->target_h].tier_default[rows[i].tier] = m;
		else if (rows[i].selected)
			predictor_choose(p, p->target_h, rows[i].app_id, rows[i].campaign, m);
	}
	selection_rows_free(rows, n);
	if (ret == 0)
		ret = load_select_blob(p, reg, select, "global_median", 0, load_medians, err);
	if (ret == 0)
		ret = load_select_blob(p, reg, select, "blend", 0, load_blend, err);
	/* Older select artefacts have no choices of their own for other horizons, */
	if (ret == 0)
		ret = load_select_blob(p, reg, select, "choices", 1, load_choices, err);
	/* nor (older still) a rank share: the chosen methods serve alone. */
	if (ret == 0)
		ret = load_select_blob(p, reg, select, "rank_share", 1, load_shares, err);
	if (ret < 0)
		err_prefix(err, "select v%lld", (long long)select->version);
	return ret;
}

int predictor_load_calibration(struct predictor *p, struct registry *reg,
			       const struct artefact_info *calibrate, struct ltv_err *err)
{
	const struct int_list *hz = &p->params.horizons;

	for (int t = 1; t <= 3; t++) {
		for (size_t h = 0; h < hz->n; h++) {
			char key[64];
			void *data = NULL;
			size_t len;
			int ret;

			snprintf(key, sizeof(key), CALIBRATION_KEY, t, (long long)hz->v[h]);
			ret = registry_blob_get(reg, calibrate->id, key, &data, &len, err);
			if (ret == LTV_ENOTFOUND)
				continue; /* identity for this tier and horizon */
			if (ret == 0)
				ret = calibration_load(data, len, &p->cal[t][h], err);
			free(data);
			if (ret < 0)
				return err_prefix(err, "calibrate v%lld %s", (long long)calibrate->version, key);
		}
	}
	return 0;
}

/* The selection's choice for a campaign, or NO_CHOICE when it never named it. */
#define NO_CHOICE (-100)

static int64_t cohort_choice(const struct predictor_choices *c, const struct model_data *d,
			     size_t app, size_t campaign)
{
	char key[1024];
	int64_t m;

	cohort_key(d->apps[app], d->campaigns[campaign], key, sizeof(key));
	return strmap_get(&c->cohort_method, key, &m) ? m : NO_CHOICE;
}

/* Row's method from its campaign's choice (NO_CHOICE: none) and its tier. */
static int chosen_of(const struct predictor_choices *c, const struct model_data *d, size_t row,
		     const char *campaign_name, int64_t choice)
{
	int tier = d->tier ? (int)d->tier[row] : 3;

	/* No campaign name: nothing to go on but the global fallback. */
	if (!*campaign_name)
		return METHOD_GLOBAL_MEDIAN;
	if (choice != NO_CHOICE)
		return (int)choice;
	/*
	 * A campaign the selection never saw: its users' own behaviour is known, so
	 * its tier's best method serves them (tier 3 when the model has never seen
	 * the campaign); semantic, which knows only the name, stays in the chain.
	 */
	return c->tier_default[tier >= 1 && tier <= 3 ? tier : 3];
}

int predictor_chosen_method(const struct predictor *p, const struct model_data *d, size_t row,
			    int h)
{
	const struct predictor_choices *c = predictor_choices_at(p, h);
	const size_t app = (size_t)frame_col_at(frame_col(&d->frame, "app_code"), row);
	const size_t campaign = (size_t)frame_col_at(frame_col(&d->frame, "campaign_code"), row);
	const char *name = d->campaigns[campaign];

	return chosen_of(c, d, row, name, *name ? cohort_choice(c, d, app, campaign) : NO_CHOICE);
}

/* Cohorts a per-call table of choices covers; beyond, each row looks its own up. */
#define CHOICE_TABLE_MAX ((size_t)1 << 16)

void predictor_chosen_methods(const struct predictor *p, const struct model_data *d,
			      const size_t *rows, size_t n, int h, int *out_method)
{
	const struct predictor_choices *c = predictor_choices_at(p, h);
	const struct frame_col app = frame_col(&d->frame, "app_code");
	const struct frame_col campaign = frame_col(&d->frame, "campaign_code");
	const size_t n_cohorts = d->n_apps * d->n_campaigns;
	/* One lookup (a key built, a hash) per cohort rather than per row. */
	int64_t *table = n_cohorts <= CHOICE_TABLE_MAX && n > 1 ? xmalloc((n_cohorts ? n_cohorts : 1) *
									  sizeof(int64_t)) : NULL;

	for (size_t k = 0; table && k < n_cohorts; k++)
		table[k] = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		const size_t r = rows[i], a = (size_t)frame_col_at(app, r);
		const size_t k = (size_t)frame_col_at(campaign, r);
		const char *name = d->campaigns[k];
		int64_t choice = NO_CHOICE;

		if (*name && table) {
			int64_t *slot = &table[a * d->n_campaigns + k];

			if (*slot == INT64_MIN)
				*slot = cohort_choice(c, d, a, k);
			choice = *slot;
		} else if (*name) {
			choice = cohort_choice(c, d, a, k);
		}
		out_method[i] = chosen_of(c, d, r, name, choice);
	}
	free(table);
}

/*
 * Where a row of age a is served from, for a method trained on snapshot ages
 * S below horizon H (DESIGN.md "Time, windows and labels"): between the two
 * snapshots around a, linearly in a (lo, hi, share of hi); below the first
 * or above the last, that snapshot with its future revenue scaled by the days
 * left, (H - a) / (H - s), since the days to come are what it predicts.
 */
void predictor_age_blend(const struct int_list *snapshots, int64_t horizon, double age,
			 double *out_lo, double *out_hi, double *out_t, double *out_scale)
{
	const double h = (double)horizon;
	double first = NAN, last = NAN;
	size_t n = 0;

	for (size_t k = 0; k < snapshots->n && snapshots->v[k] < horizon; k++, n++) {
		if (k == 0)
			first = (double)snapshots->v[k];
		last = (double)snapshots->v[k];
	}
	*out_t = 0;
	*out_scale = 1;
	if (n == 0 || age >= h) {
		*out_lo = *out_hi = n ? last : age;
		*out_scale = 0;
		return;
	}
	if (age <= first || age >= last) {
		double s = age <= first ? first : last;

		*out_lo = *out_hi = s;
		*out_scale = (h - age) / (h - s);
		return;
	}
	for (size_t k = 0; k + 1 < n; k++) {
		double lo = (double)snapshots->v[k], hi = (double)snapshots->v[k + 1];

		if (age >= lo && age < hi) {
			*out_lo = lo;
			*out_hi = hi;
			*out_t = (age - lo) / (hi - lo);
			return;
		}
	}
	*out_lo = *out_hi = last; /* not reached: age < last was checked */
}

/*
 * method->predict of rows (view: their window_days the snapshot each is
 * served at), through method->predict_past when it has one and a row is
 * past the horizon (scale 0: only whether its value is NaN counts).
 */
static int predict_past_apart(const struct method *method, const void *state,
			      const struct model_data *view, const size_t *rows, size_t n,
			      int64_t horizon, const double *scale, double *out_ltv,
			      double *out_p_payer, struct ltv_err *err)
{
	unsigned char *past = NULL;
	int ret;

	for (size_t i = 0; method->predict_past && !method->batch_level && i < n; i++)
		if (scale[i] == 0) {
			if (!past)
				past = xcalloc(n, 1);
			past[i] = 1;
		}
	ret = past ? method->predict_past(state, view, rows, n, horizon, past, out_ltv, out_p_payer,
					  err)
		   : method->predict(state, view, rows, n, horizon, out_ltv, out_p_payer, err);
	free(past);
	return ret;
}

int predictor_predict_method(const struct predictor *p, int m, const struct model_data *d,
			  const size_t *rows, size_t n, int64_t horizon, double *out_ltv,
			  double *out_p_payer, struct ltv_err *err)
{
	const struct method *method = method_table[m];
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const double *rev_window = frame_column(&d->frame, "rev_window");
	struct model_data view = *d;
	double *age_col = NULL, *hi_ltv = NULL, *hi_pp = NULL, *t = NULL, *scale = NULL;
	size_t *hi_rows = NULL, *hi_at = NULL, n_hi = 0, w_col = SIZE_MAX;
	int ret;

	if (method->any_age || !frame_col_found(window))
		return method->predict(p->states[m], d, rows, n, horizon, out_ltv, out_p_payer, err);
	for (size_t j = 0; j < d->frame.n_cols; j++)
		if (strcmp(d->frame.names[j], "window_days") == 0)
			w_col = j;
	/* A view of d whose window_days is the snapshot age each row is served at. */
	view.frame.cols = xmalloc(d->frame.n_cols * sizeof(double *));
	memcpy(view.frame.cols, d->frame.cols, d->frame.n_cols * sizeof(double *));
	age_col = xmalloc((d->frame.n_rows ? d->frame.n_rows : 1) * sizeof(double));
	for (size_t i = 0; i < d->frame.n_rows; i++)
		age_col[i] = frame_col_at(window, i);
	view.frame.cols[w_col] = age_col;
	t = xmalloc((n ? n : 1) * sizeof(double));
	scale = xmalloc((n ? n : 1) * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		double lo, hi;

		predictor_age_blend(&p->params.snapshots, horizon, frame_col_at(window, rows[i]), &lo, &hi,
				    &t[i], &scale[i]);
		age_col[rows[i]] = lo;
		n_hi += t[i] > 0;
	}
	/*
	 * Sized for the rows between two snapshots, not for all n: this call's
	 * blocks are live on both of score's prediction threads at once, so their
	 * sum is peak memory, and fresh pages are CPU on these VMs (README
	 * "Threads and performance").
	 */
	hi_rows = xmalloc((n_hi ? n_hi : 1) * sizeof(size_t));
	hi_at = xmalloc((n_hi ? n_hi : 1) * sizeof(size_t));
	for (size_t i = 0, j = 0; i < n; i++)
		if (t[i] > 0) {
			hi_at[j] = i;
			hi_rows[j++] = rows[i];
		}
	ret = predict_past_apart(method, p->states[m], &view, rows, n, horizon, scale, out_ltv,
				 out_p_payer, err);
	if (ret == 0 && n_hi > 0) {
		hi_ltv = xmalloc(n_hi * sizeof(double));
		hi_pp = out_p_payer ? xmalloc(n_hi * sizeof(double)) : NULL;
		for (size_t i = 0; i < n; i++) {
			double lo, hi, tt, sc;

			predictor_age_blend(&p->params.snapshots, horizon, frame_col_at(window, rows[i]), &lo,
					    &hi, &tt, &sc);
			age_col[rows[i]] = hi;
		}
		ret = method->predict(p->states[m], &view, hi_rows, n_hi, horizon, hi_ltv, hi_pp, err);
	}
	for (size_t j = 0; ret == 0 && j < n_hi; j++) {
		size_t i = hi_at[j];

		out_ltv[i] = (1 - t[i]) * out_ltv[i] + t[i] * hi_ltv[j];
		if (out_p_payer)
			out_p_payer[i] = (1 - t[i]) * out_p_payer[i] + t[i] * hi_pp[j];
	}
	/* The row's own rev_window stands; what is interpolated and scaled is what is to come. */
	for (size_t i = 0; ret == 0 && i < n; i++)
		if (!isnan(out_ltv[i]))
			out_ltv[i] = rev_window[rows[i]] +
				     scale[i] * fmax(out_ltv[i] - rev_window[rows[i]], 0.0);
	free(view.frame.cols);
	free(age_col);
	free(hi_ltv);
	free(hi_pp);
	free(t);
	free(scale);
	free(hi_rows);
	free(hi_at);
	return ret;
}

/*
 * Method m's predictions for the rows i < n with want[i] set and not yet
 * done[m][i], into pred[m][i] (NaN until computed), in one call; p_payer too
 * when m is hurdle and p_payer is not NULL. unmemoized: hurdle's own pass,
 * which the memo neither answers nor keeps (it keeps no p_payer).
 */
static int predict_wanted(const struct predictor *p, int m, const struct model_data *d,
			  const size_t *rows, size_t n, int64_t horizon, const unsigned char *want,
			  unsigned char *done, double *pred, double *p_payer, int unmemoized,
			  struct prediction_memo *memo, struct ltv_err *err)
{
	size_t *sub, *at;
	double *out, *pp = NULL;
	size_t k = 0;
	int ret = 0;

	if (memo && !unmemoized)
		prediction_memo_get(memo, m, rows, n, want, done, pred);
	else
		memo = NULL;
	for (size_t i = 0; i < n; i++)
		k += want[i] && !done[i];
	if (k == 0)
		return 0;
	sub = xmalloc(k * sizeof(size_t));
	at = xmalloc(k * sizeof(size_t));
	out = xmalloc(k * sizeof(double));
	if (p_payer)
		pp = xmalloc(k * sizeof(double));
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (want[i] && !done[i]) {
			at[k] = i;
			sub[k++] = rows[i];
		}
	ret = predictor_predict_method(p, m, d, sub, k, horizon, out, pp, err);
	if (ret == 0 && memo)
		prediction_memo_put(memo, m, sub, k, out);
	for (size_t j = 0; j < k && ret == 0; j++) {
		pred[at[j]] = out[j];
		done[at[j]] = 1;
		if (p_payer)
			p_payer[at[j]] = pp[j];
	}
	if (ret < 0)
		err_prefix(err, "%s", method_table[m]->name);
	free(sub);
	free(at);
	free(out);
	free(pp);
	return ret;
}

/*
 * Whether a row served by chosen is to be ordered within its cohort-age cell
 * by ranker (select.rank_cells; rank_within_cells): chosen gives every user
 * of the cell the same revenue to come (method.same_to_come: curves), so
 * its order carries nothing, and the ranker is another method.
 */
static int ranks_within_cells(const struct predictor *p, int chosen, int ranker)
{
	return p->cfg && p->cfg->select.rank_cells && chosen >= 0 && chosen < METHOD_COUNT &&
	       method_table[chosen]->same_to_come && ranker >= 0 && ranker != chosen;
}

/*
 * Per row, the rank share of horizon index h for its chosen method: the
 * ranking method (ranker[i]) and the ratio (NaN: none, the method serves alone).
 */
static void share_ratios(const struct predictor *p, const struct model_data *d, const size_t *rows,
			 size_t n, int h, const int *chosen, int *ranker, double *ratio)
{
	const struct rank_share *s = &p->share[h];
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const int64_t horizon = p->params.horizons.v[h];
	const size_t n_cohorts = d->n_apps * d->n_campaigns;
	/* each campaign's own ratios, looked up by name once per call, not once per row */
	const double **cohort = NULL;
	unsigned char *looked = NULL;

	for (size_t i = 0; i < n; i++) {
		const int tier = d->tier ? (int)d->tier[rows[i]] : 3;
		size_t c;

		ratio[i] = NAN;
		ranker[i] = rank_share_ranker(s, tier);
		if (ranker[i] < 0 || chosen[i] < 0)
			continue;
		if (!looked) {
			cohort = xcalloc(n_cohorts ? n_cohorts : 1, sizeof(*cohort));
			looked = xcalloc(n_cohorts ? n_cohorts : 1, 1);
		}
		c = model_data_cohort(d, rows[i]);
		if (!looked[c]) {
			cohort[c] = rank_share_cohort(s, d->apps[c / d->n_campaigns],
						      d->campaigns[c % d->n_campaigns]);
			looked[c] = 1;
		}
		ratio[i] = rank_share_ratio_of(s, cohort[c], tier, chosen[i],
					       share_cell(p, horizon, window, rows[i]));
	}
	free(cohort);
	free(looked);
}

/*
 * select.rank_cells: *out_factor (allocated here, n values, when a row
 * gets one; NULL otherwise) holds for the rows ranks_within_cells picks
 * (NaN for the others) the factor that orders a row's revenue to come
 * within its cohort-age cell by its ranker, each cell's total kept
 * (rank_share_within_cells: the cell's revenue to come after / before).
 * The caller applies it to the calibrated revenue to come (serving.c): a
 * cell's rows share one curves value, so they share one calibrated value
 * too, and the factors, which sum to the cell's rows, keep the calibrated
 * total (up to the ages within a cell; calibrating the spread values would
 * not, since an isotonic map of spread values does not sum as the map of
 * their mean). A cell is a cohort's rows of this call with one ranker, one
 * request group apart (model_data.group): like the chosen method (curves
 * levels a cohort from the rows it is given, method.batch_level), a single
 * prediction never depends on another request's rows.
 */
static void rank_within_cells(const struct predictor *p, const struct model_data *d,
			      const size_t *rows, size_t n, int h, const int *chosen,
			      const int *ranker, const double *ratio, double *const *pred,
			      const double *ltv, double **out_factor)
{
	const struct frame_col rev = frame_col(&d->frame, "rev_window");
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const int64_t horizon = p->params.horizons.v[h];
	size_t *group = NULL;
	struct rank_cell *cell = NULL;
	double *to_come = NULL, *ranker_to_come = NULL;
	struct u64map map;

	*out_factor = NULL;
	if (!frame_col_found(rev))
		return;
	u64map_init(&map);
	for (size_t i = 0; i < n; i++) {
		const int r = ranker[i];
		uint64_t key;
		int is_new;

		if (!ranks_within_cells(p, chosen[i], r) || !isnan(ratio[i]) || !isfinite(ltv[i]) ||
		    !pred[r] || !isfinite(pred[r][i]))
			continue;
		if (!group) {
			group = xmalloc(n * sizeof(*group));
			cell = xcalloc(n, sizeof(*cell));
			to_come = xcalloc(n, sizeof(*to_come));
			ranker_to_come = xcalloc(n, sizeof(*ranker_to_come));
			*out_factor = xmalloc(n * sizeof(**out_factor));
			for (size_t j = 0; j < n; j++) {
				group[j] = SIZE_MAX;
				(*out_factor)[j] = NAN;
			}
		}
		key = ((uint64_t)(model_data_cohort(d, rows[i]) * METHOD_COUNT + (size_t)r) << 32) |
		      (d->group ? d->group[rows[i]] : 0);
		group[i] = u64map_index(&map, key, &is_new);
		cell[i] = share_cell(p, horizon, window, rows[i]);
		to_come[i] = fmax(ltv[i] - frame_col_at(rev, rows[i]), 0.0);
		ranker_to_come[i] = fmax(pred[r][i] - frame_col_at(rev, rows[i]), 0.0);
	}
	if (group) {
		rank_share_within_cells(group, map.n, cell, ranker_to_come, to_come, n);
		for (size_t i = 0; i < n; i++) {
			const double before = fmax(ltv[i] - frame_col_at(rev, rows[i]), 0.0);

			if (group[i] != SIZE_MAX)
				(*out_factor)[i] = before > 0 ? to_come[i] / before : 1;
		}
	}
	u64map_release(&map);
	free(group);
	free(cell);
	free(to_come);
	free(ranker_to_come);
}

static int predict_raw(const struct predictor *p, const struct model_data *d, const size_t *rows,
		       size_t n, int64_t horizon, int64_t at_horizon, const double *const *given,
		       struct prediction_memo *memo, const unsigned char *unread, double *out_ltv,
		       int *out_method, double *out_p_payer, double **out_factor,
		       struct ltv_err *err);

int predictor_predict_raw_cells(const struct predictor *p, const struct model_data *d,
				const size_t *rows, size_t n, int64_t horizon,
				const unsigned char *unread, double *out_ltv, int *out_method,
				double *out_p_payer, double **out_factor, struct ltv_err *err)
{
	return predict_raw(p, d, rows, n, horizon, horizon, NULL, NULL, unread, out_ltv, out_method,
			   out_p_payer, out_factor, err);
}

int predictor_predict_raw(const struct predictor *p, const struct model_data *d,
			  const size_t *rows, size_t n, int64_t horizon, double *out_ltv,
			  int *out_method, double *out_p_payer, struct ltv_err *err)
{
	return predictor_predict_raw_given(p, d, rows, n, horizon, NULL, out_ltv, out_method,
					   out_p_payer, err);
}

int predictor_predict_raw_given(const struct predictor *p, const struct model_data *d,
				const size_t *rows, size_t n, int64_t horizon,
				const double *const *given, double *out_ltv, int *out_method,
				double *out_p_payer, struct ltv_err *err)
{
	return predict_raw(p, d, rows, n, horizon, horizon, given, NULL, NULL, out_ltv, out_method,
			   out_p_payer, NULL, err);
}

int predictor_predict_raw_memo(const struct predictor *p, const struct model_data *d,
			       const size_t *rows, size_t n, int64_t horizon,
			       struct prediction_memo *memo, double *out_ltv, struct ltv_err *err)
{
	if (memo && !prediction_memo_fits(memo, d, horizon))
		return err_set(err, LTV_EINTERNAL, "predictions kept for other rows or another "
			       "horizon than %lld days", (long long)horizon);
	return predict_raw(p, d, rows, n, horizon, horizon, NULL, memo, NULL, out_ltv, NULL, NULL, NULL,
			   err);
}

int predictor_predict_raw_at(const struct predictor *p, const struct model_data *d,
			     const size_t *rows, size_t n, int64_t horizon, int64_t at_horizon,
			     double *out_ltv, struct ltv_err *err)
{
	return predict_raw(p, d, rows, n, horizon, at_horizon, NULL, NULL, NULL, out_ltv, NULL, NULL,
			   NULL, err);
}

/*
 * pred[m], NaN for every row, made when a row wants method m (NULL until
 * then: most calls want two or three of the seven methods, and filling
 * every column was much of a call's time).
 */
static double *pred_column(double **pred, int m, const unsigned char *want, size_t n)
{
	size_t i = 0;

	while (!pred[m] && i < n && !want[i])
		i++;
	if (!pred[m] && i < n) {
		pred[m] = xmalloc(n * sizeof(double));
		for (i = 0; i < n; i++)
			pred[m][i] = NAN;
	}
	return pred[m];
}

/* A row's group of cells in rank_within_cells: its cohort, its ranker and its request group. */
static uint64_t cell_group_key(const struct model_data *d, size_t row, int ranker)
{
	return ((uint64_t)(model_data_cohort(d, row) * METHOD_COUNT + (size_t)ranker) << 32) |
	       (d->group ? d->group[row] : 0);
}

/* The cells of its group a row adds to and reads (rank_share_within_cells): lo, and hi if t > 0. */
static uint32_t cell_bits(struct rank_cell c)
{
	return (UINT32_C(1) << c.lo) | (c.t > 0 ? UINT32_C(1) << c.hi : 0);
}

/*
 * Of the rows the caller does not read (unread; NULL: none), those left
 * unpredicted: all but the rows of a ranked cell (rank_within_cells) that a
 * read row of the same group ranks in too, since that row's factor sums the
 * cell (an observed row sits in its group's last cell, beside the rows
 * younger than the horizon but older than the last snapshot). NULL when none.
 */
static unsigned char *rows_to_skip(const struct predictor *p, const struct model_data *d,
				   const size_t *rows, size_t n, int h, const unsigned char *unread,
				   const int *chosen, const int *ranker, const double *ratio,
				   int cells)
{
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const int64_t horizon = p->params.horizons.v[h];
	unsigned char *skip;
	uint32_t *read = NULL; /* per group: the cells read rows read */
	struct u64map map;

	if (!unread)
		return NULL;
	skip = xmalloc(n ? n : 1);
	u64map_init(&map);
	/* pass 0: the cells each group's read rows read; pass 1: the unread rows adding to one */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			size_t g;
			int is_new;

			if (pass == 1)
				skip[i] = unread[i];
			/* pass 1 without a read row in pass 0 (h7 at scoring: every row observed) keeps every skip */
			if ((pass == 1 && !read) || !unread[i] != (pass == 0) ||
			    !(cells && ranks_within_cells(p, chosen[i], ranker[i]) && isnan(ratio[i])))
				continue;
			g = u64map_index(&map, cell_group_key(d, rows[i], ranker[i]), &is_new);
			if (!read)
				read = xcalloc(n, sizeof(*read));
			/* a group first met in pass 1 has no read row: nothing to read its cells */
			if (pass == 0)
				read[g] |= cell_bits(share_cell(p, horizon, window, rows[i]));
			else if (!is_new && (read[g] & cell_bits(share_cell(p, horizon, window, rows[i]))))
				skip[i] = 0;
		}
	u64map_release(&map);
	free(read);
	return skip;
}

/*
 * Whether method m predicts a row that is skipped: when it levels a cohort
 * from the rows it is given (curves), since the cohort's other rows read
 * that level, and hurdle when p_payer is asked for.
 */
static int predicts_skipped(int m, int payer)
{
	return method_table[m]->batch_level || (m == 0 && payer);
}

static int predict_raw(const struct predictor *p, const struct model_data *d, const size_t *rows,
		       size_t n, int64_t horizon, int64_t at_horizon, const double *const *given,
		       struct prediction_memo *memo, const unsigned char *unread, double *out_ltv,
		       int *out_method, double *out_p_payer, double **out_factor,
		       struct ltv_err *err)
{
	const size_t alloc = n ? n : 1;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	/* h: whose choices serve; the methods predict at_horizon (index ha) */
	const int h = feature_params_horizon_index(&p->params, horizon);
	const int ha = feature_params_horizon_index(&p->params, at_horizon);
	const struct predictor_choices *choices = predictor_choices_at(p, h);
	/* only when asked for (the target horizon's): one more array live on each thread otherwise */
	double *pred[METHOD_COUNT] = { 0 }, *p_payer = out_p_payer ? xmalloc(alloc * sizeof(double)) : NULL;
	double *ratio = xmalloc(alloc * sizeof(double));
	unsigned char *want[METHOD_COUNT] = { 0 }, *done[METHOD_COUNT] = { 0 };
	int *chosen = xmalloc(alloc * sizeof(int)), *ranker = xmalloc(alloc * sizeof(int)), ret = 0;
	int is_given[METHOD_COUNT] = { 0 };
	unsigned char *skip = NULL; /* rows_to_skip */

	if (h < 0 || ha < 0) {
		free(p_payer);
		free(ratio);
		free(ranker);
		free(chosen);
		return err_set(err, LTV_EUSAGE, "%lld days is not a configured horizon",
			       (long long)(h < 0 ? horizon : at_horizon));
	}
	/*
	 * Each method predicts only the rows that need it: those that chose it,
	 * those whose blend weighs it, all of them for hurdle when p_payer is asked
	 * for, then the rows the chain falls back to it for. A cohort's rows share
	 * their choice, so cohort-level methods (curves) still see whole cohorts.
	 */
	for (int m = 0; m < METHOD_COUNT; m++) {
		want[m] = xcalloc(alloc, 1);
		done[m] = xcalloc(alloc, 1);
		/* a method the caller has predicted already: nothing left to predict (read, never written) */
		if (given && given[m] && !(m == 0 && out_p_payer)) {
			pred[m] = (double *)(uintptr_t)given[m];
			is_given[m] = 1;
			memset(done[m], 1, n);
		}
	}
	predictor_chosen_methods(p, d, rows, n, h, chosen);
	share_ratios(p, d, rows, n, h, chosen, ranker, ratio);
	skip = rows_to_skip(p, d, rows, n, h, unread, chosen, ranker, ratio, out_factor != NULL);
	for (size_t i = 0; i < n; i++) {
		if (p_payer)
			p_payer[i] = NAN;
		if (chosen[i] >= 0)
			want[chosen[i]][i] = 1;
		/*
		 * A ranker that levels a cohort from the rows it is given (curves)
		 * predicts every row that has one, so its level is the whole
		 * cohort's whichever of its cells have a ratio (one row can carry
		 * a cell and leave it without: rank_share.c), as when select
		 * predicted every row (predictor_predict_raw_given).
		 */
		if (!isnan(ratio[i]) || (out_factor && ranks_within_cells(p, chosen[i], ranker[i])) ||
		    (ranker[i] >= 0 && method_table[ranker[i]]->batch_level))
			want[ranker[i]][i] = 1;
		else if (chosen[i] == METHOD_BLEND && choices->has_blend[0]) {
			const double *w = blend_weights_of(choices, d->tier ? (int)d->tier[rows[i]] : 3);

			for (int m = 0; m < METHOD_COUNT; m++)
				want[m][i] |= w[m] > 0;
		}
		want[0][i] |= out_p_payer != NULL;
		for (int m = 0; skip && skip[i] && m < METHOD_COUNT; m++)
			want[m][i] &= (unsigned char)predicts_skipped(m, out_p_payer != NULL);
	}
	/*
	 * hurdle's p_payer only when the caller asks for it: predict_wanted
	 * predicts hurdle again rather than read a memo when given p_payer, and
	 * calibrate (which asks for none) predicted hurdle's rows in each of its
	 * 18 calls of the mix again although select had left them.
	 */
	for (int m = 0; m < METHOD_COUNT && ret == 0; m++)
		ret = predict_wanted(p, m, d, rows, n, at_horizon, want[m], done[m],
				     pred_column(pred, m, want[m], n), m == 0 ? p_payer : NULL,
				     m == 0 && out_p_payer, memo, err);
	for (size_t i = 0; i < n && ret == 0; i++) {
		int m = chosen[i];

		if (skip && skip[i]) {
			out_ltv[i] = NAN; /* the global median's, below */
			continue;
		}
		out_ltv[i] = m >= 0 ? pred[m][i] : NAN;
		/* The chosen method's level, the ranking method's order (row by row: no batch-mate counts). */
		if (!isnan(out_ltv[i]) && !isnan(ratio[i]) && !isnan(pred[ranker[i]][i]))
			out_ltv[i] = rank_share_apply(ratio[i], pred[ranker[i]][i], rev_window[rows[i]]);
		if (m == METHOD_BLEND) {
			double by_method[METHOD_COUNT];

			for (int k = 0; k < METHOD_COUNT; k++)
				by_method[k] = pred[k] ? pred[k][i] : NAN;
			out_ltv[i] = predictor_blend(p, h, d->tier ? (int)d->tier[rows[i]] : 3, by_method,
						     rev_window[rows[i]]);
		}
		if (m == METHOD_GLOBAL_MEDIAN)
			out_ltv[i] = rev_window[rows[i]] + p->global_median[ha];
		if (out_method)
			out_method[i] = m;
	}
	if (ret == 0 && out_factor)
		rank_within_cells(p, d, rows, n, h, chosen, ranker, ratio, pred, out_ltv, out_factor);
	/* The fallback chain, one method at a time over the rows still without a value. */
	for (size_t f = 0; ret == 0 && f < sizeof(fallback_order) / sizeof(*fallback_order); f++) {
		const int m = method_index(fallback_order[f]);
		size_t missing = 0;

		memset(want[m], 0, alloc);
		for (size_t i = 0; i < n; i++)
			if (isnan(out_ltv[i]) && chosen[i] != METHOD_GLOBAL_MEDIAN &&
			    (!skip || !skip[i] || predicts_skipped(m, 0)))
				missing += want[m][i] = 1;
		if (missing == 0)
			break;
		ret = predict_wanted(p, m, d, rows, n, at_horizon, want[m], done[m],
				     pred_column(pred, m, want[m], n), NULL, 0, memo, err);
		for (size_t i = 0; i < n && ret == 0; i++)
			if (want[m][i] && !isnan(pred[m][i])) {
				out_ltv[i] = pred[m][i];
				if (out_method)
					out_method[i] = m;
			}
	}
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (isnan(out_ltv[i])) {
			out_ltv[i] = rev_window[rows[i]] + p->global_median[ha];
			if (out_method)
				out_method[i] = METHOD_GLOBAL_MEDIAN;
		}
		if (out_p_payer)
			out_p_payer[i] = p_payer[i];
	}
	for (int m = 0; m < METHOD_COUNT; m++) {
		if (!is_given[m])
			free(pred[m]);
		free(want[m]);
		free(done[m]);
	}
	free(p_payer);
	free(ratio);
	free(ranker);
	free(chosen);
	free(skip);
	return ret;
}

void predictor_calibrate(const struct predictor *p, const struct model_data *d,
			 const size_t *rows, size_t n, int64_t horizon, const double *rev_floor,
			 double *ltv)
{
	int h = feature_params_horizon_index(&p->params, horizon);
	struct calibration_last last = { 0 };

	for (size_t i = 0; i < n && h >= 0; i++) {
		int tier = d->tier ? (int)d->tier[rows[i]] : 3;
		const struct calibration *cal = p->cal[tier >= 1 && tier <= 3 ? tier : 3][h];
		const double seen = rev_floor ? rev_floor[i] : 0;
		double future = fmax(ltv[i] - seen, 0.0), v = future;

		if (cal)
			v = calibration_apply_repeated(cal, future, &last);
		ltv[i] = seen + fmax(v, 0.0);
	}
}

int predictor_load_bands(struct predictor *p, struct registry *reg,
			 const struct artefact_info *calibrate, struct ltv_err *err)
{
	const struct int_list *hz = &p->params.horizons;

	for (size_t h = 0; h < hz->n; h++) {
		char key[48];
		void *data = NULL;
		size_t len = 0;
		int ret;

		snprintf(key, sizeof(key), "band:h%lld", (long long)hz->v[h]);
		ret = registry_blob_get(reg, calibrate->id, key, &data, &len, err);
		if (ret == LTV_ENOTFOUND)
			continue;
		if (ret == 0)
			ret = conformal_load(data, len, &p->band[h], err);
		free(data);
		if (ret < 0)
			return err_prefix(err, "calibrate v%lld %s", (long long)calibrate->version, key);
	}
	return 0;
}

#define SEGMENTS_MAGIC "LTVSEGM1"

uint8_t *predictor_save_segments(const struct predictor *p, size_t *out_len)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, SEGMENTS_MAGIC, 1);
	blob_put_f64_array(&w, p->segment_cut, SEGMENT_CUTS);
	return blob_writer_detach(&w, out_len);
}

/*
 * The array of doubles in calibrate's blob key (format magic, version 1), which
 * must hold want values, into *out (malloc'd; NULL on error). Returns
 * LTV_ENOTFOUND when the version has no such blob; what names the values in
 * the error of a corrupt one.
 */
static int load_calibrate_f64s(struct registry *reg, const struct artefact_info *calibrate,
			       const char *key, const char *magic, size_t want, const char *what,
			       double **out, struct ltv_err *err)
{
	struct blob_reader r;
	void *data = NULL;
	size_t len, n = 0;
	uint32_t version;
	int ret = registry_blob_get(reg, calibrate->id, key, &data, &len, err);

	*out = NULL;
	if (ret < 0)
		return ret;
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, magic, 1, &version, err);
	if (ret == 0 && (blob_get_f64_array(&r, out, &n) < 0 || n != want))
		ret = err_set(err, LTV_EINVAL, "calibrate v%lld: %s are corrupt", (long long)calibrate->version,
			      what);
	free(data);
	if (ret != 0) {
		free(*out);
		*out = NULL;
	}
	return ret;
}

int predictor_load_segments(struct predictor *p, struct registry *reg,
			    const struct artefact_info *calibrate, struct ltv_err *err)
{
	double *cuts;
	int ret = load_calibrate_f64s(reg, calibrate, "segments", SEGMENTS_MAGIC, SEGMENT_CUTS,
				      "segment thresholds", &cuts, err);

	for (size_t k = 0; ret == 0 && k < SEGMENT_CUTS; k++)
		p->segment_cut[k] = cuts[k];
	free(cuts);
	return ret;
}

double predictor_floor_share_fit(const double *shorter, const double *longer, const double *target,
				 size_t n)
{
	double up = 0, gap = 0;

	for (size_t i = 0; i < n; i++) {
		up += (target ? target[i] : longer[i]) - shorter[i];
		gap += fmax(longer[i] - shorter[i], 0.0);
	}
	return gap > 0 ? fmin(fmax(up / gap, 0.0), 1.0) : NAN;
}

#define FLOOR_SHARES_MAGIC "LTVFLOR1"

/* Per horizon index, the shares of tiers 0..3 (4 × n_horizons values). */
uint8_t *predictor_save_floor_shares(const struct predictor *p, size_t *out_len)
{
	const size_t n = p->params.horizons.n;
	double *v = xmalloc((4 * n + 1) * sizeof(double));
	struct blob_writer w;

	for (size_t h = 0; h < n; h++)
		for (int t = 0; t < 4; t++)
			v[4 * h + (size_t)t] = p->floor_share[t][h];
	blob_writer_init(&w);
	blob_put_header(&w, FLOOR_SHARES_MAGIC, 1);
	blob_put_f64_array(&w, v, 4 * n);
	free(v);
	return blob_writer_detach(&w, out_len);
}

int predictor_load_floor_shares(struct predictor *p, struct registry *reg,
				const struct artefact_info *calibrate, struct ltv_err *err)
{
	const size_t n_h = p->params.horizons.n;
	double *v;
	int ret = load_calibrate_f64s(reg, calibrate, "floor_shares", FLOOR_SHARES_MAGIC, 4 * n_h,
				      "floor shares", &v, err);

	if (ret == LTV_ENOTFOUND)
		return 0; /* trained without calibrate.floor_share: the plain floor */
	for (size_t k = 0; ret == 0 && k < 4 * n_h; k++)
		if (!(v[k] >= 0 && v[k] <= 1))
			ret = err_set(err, LTV_EINVAL, "calibrate v%lld: floor share %g is outside [0, 1]",
				      (long long)calibrate->version, v[k]);
	for (size_t h = 0; ret == 0 && h < n_h && h < PREDICTOR_MAX_HORIZONS; h++)
		for (int t = 0; t < 4; t++)
			p->floor_share[t][h] = v[4 * h + (size_t)t];
	free(v);
	return ret;
}

const char *predictor_segment(const struct predictor *p, double ltv_target)
{
	static const char *const names[SEGMENT_CUTS + 1] = { "Low", "Medium", "High", "VIP" };
	int k = 0;

	while (k < SEGMENT_CUTS && ltv_target >= p->segment_cut[k] && p->segment_cut[k] > 0)
		k++;
	return names[k];
}

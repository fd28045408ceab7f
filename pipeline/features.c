/*
 * Stage features: the base features of every user installed by as_of
 * (serving/feature_build.c holds the leakage rules), the install-date split,
 * and the app and campaign encodings learnt on training cohorts. The
 * encodings are stored with the artefact so the scorer applies the very same
 * values; a training user's own encoding comes from the other install-date
 * folds, so no row ever sees its own label.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/feature_build.h"
#include "ltv/features.h"
#include "ltv/model_data.h"
#include "ltv/stage.h"
#include "ltv/timeutil.h"


#define ENCODING_FOLDS 5

/*
 * Columns the base frame holds packed (fill_packed_rows: weight, age_days,
 * user_rep, the code columns) are read as stored, through frame_col: a
 * widened copy (frame_column) was 9 MB of fresh pages each at 1,000,000 users.
 */
struct encoding_input {
	const double *split;
	struct frame_col weight; /* per row: sampling weight (sums over rows are user sums) */
	const int *fold;     /* training rows: 0..ENCODING_FOLDS-1 */
	size_t n_rows;
	double smoothing;
};

/*
 * Smoothed target mean of y per code over training rows:
 * table[c] = (S_c + m * prior_table[c]) / (N_c + m) with the full training
 * data; a training row gets the same formula without its own fold (and with
 * its own out-of-fold prior), every other row gets table[code].
 */
static void target_encode(const struct encoding_input *in, struct frame_col code, size_t n_codes,
			  const double *y, const double *prior_rows, const double *prior_table,
			  double *out_rows, double *out_table)
{
	size_t k = ENCODING_FOLDS + 1, total = ENCODING_FOLDS;
	double *sum = xcalloc(k * (n_codes ? n_codes : 1), sizeof(double));
	double *cnt = xcalloc(k * (n_codes ? n_codes : 1), sizeof(double));
	const double m = in->smoothing;

	for (size_t i = 0; i < in->n_rows; i++) {
		size_t c = (size_t)frame_col_at(code, i), f = (size_t)in->fold[i];
		const double w = frame_col_at(in->weight, i);

		if (in->split[i] != SPLIT_TRAIN || isnan(y[i]))
			continue;
		sum[f * n_codes + c] += w * y[i];
		cnt[f * n_codes + c] += w;
		sum[total * n_codes + c] += w * y[i];
		cnt[total * n_codes + c] += w;
	}
	for (size_t c = 0; c < n_codes; c++)
		out_table[c] = (sum[total * n_codes + c] + m * prior_table[c]) /
			       (cnt[total * n_codes + c] + m);
	for (size_t i = 0; i < in->n_rows; i++) {
		size_t c = (size_t)frame_col_at(code, i), f = (size_t)in->fold[i];

		if (in->split[i] != SPLIT_TRAIN) {
			out_rows[i] = out_table[c];
			continue;
		}
		out_rows[i] = (sum[total * n_codes + c] - sum[f * n_codes + c] + m * prior_rows[i]) /
			      (cnt[total * n_codes + c] - cnt[f * n_codes + c] + m);
	}
	free(sum);
	free(cnt);
}

/* Training mean of y overall (*out_global) and per row out of its own fold. */
static void global_mean(const struct encoding_input *in, const double *y, double *out_rows,
			double *out_global)
{
	double sum[ENCODING_FOLDS] = { 0 }, cnt[ENCODING_FOLDS] = { 0 }, s = 0, n = 0;

	for (size_t i = 0; i < in->n_rows; i++) {
		const double w = frame_col_at(in->weight, i);

		if (in->split[i] != SPLIT_TRAIN || isnan(y[i]))
			continue;
		sum[in->fold[i]] += w * y[i];
		cnt[in->fold[i]] += w;
		s += w * y[i];
		n += w;
	}
	*out_global = n > 0 ? s / n : 0;
	for (size_t i = 0; i < in->n_rows; i++) {
		double ns = in->split[i] == SPLIT_TRAIN ? n - cnt[in->fold[i]] : n;
		double ss = in->split[i] == SPLIT_TRAIN ? s - sum[in->fold[i]] : s;

		out_rows[i] = ns > 0 ? ss / ns : *out_global;
	}
}

static void assign_split(const struct feature_params *p, struct frame *f, double *split, int *fold)
{
	const double *install = frame_column(f, "install_time");
	const struct frame_col age = frame_col(f, "age_days");
	double first = INFINITY, last = -INFINITY;

	for (size_t i = 0; i < f->n_rows; i++) {
		split[i] = feature_params_split(p, p->as_of, p->target_horizon, frame_col_at(age, i),
					  install[i]);
		if (split[i] == SPLIT_TRAIN) {
			first = fmin(first, install[i]);
			last = fmax(last, install[i]);
		}
	}
	/* Folds are contiguous install-date ranges of the training cohorts. */
	for (size_t i = 0; i < f->n_rows; i++) {
		double span = last - first;
		int k = span > 0 ? (int)((install[i] - first) / span * ENCODING_FOLDS) : 0;

		fold[i] = k >= ENCODING_FOLDS ? ENCODING_FOLDS - 1 : k < 0 ? 0 : k;
	}
}

/*
 * One target (ltv or payer) encoded per app, then per (app, sub) shrunk to its
 * app, a sub being a campaign or an attribute's value (cohort = app * n_sub + sub).
 */
static void encode_target(const struct encoding_input *in, size_t n_apps, size_t n_sub,
			  struct frame_col app, const double *cohort, const double *y, double *app_rows,
			  double *app_table, double *cohort_rows, double *cohort_table, double *out_global)
{
	size_t n_cohorts = n_apps * n_sub;
	double *prior_rows = xcalloc(in->n_rows ? in->n_rows : 1, sizeof(double));
	double *prior_table = xcalloc((n_cohorts > n_apps ? n_cohorts : n_apps) + 1, sizeof(double));
	double global;

	global_mean(in, y, prior_rows, &global);
	for (size_t a = 0; a < n_apps; a++)
		prior_table[a] = global;
	target_encode(in, app, n_apps, y, prior_rows, prior_table, app_rows, app_table);
	for (size_t c = 0; c < n_cohorts; c++)
		prior_table[c] = app_table[c / n_sub];
	target_encode(in, (struct frame_col){ .d = cohort }, n_cohorts, y, app_rows, prior_table,
		      cohort_rows, cohort_table);
	*out_global = global;
	free(prior_rows);
	free(prior_table);
}

/*
 * Each attribute's values encoded like campaigns: the training mean of the
 * target (and of the payer flag) per (app, value), shrunk to the app, out of
 * fold for training rows. Target encoding rather than one column per value:
 * the model feature lists stay fixed whatever the values (a country has
 * dozens), and a value's worth is learnt where its users are, per app.
 */
static void learn_attr_encodings(const struct encoding_input *in, struct frame *f,
				 struct encodings *e, const double *y, const double *payer)
{
	const size_t n = f->n_rows;
	const struct frame_col app = frame_col(f, "app_code");
	double *cohort = xcalloc(n ? n : 1, sizeof(double));
	double *app_rows = xcalloc(n ? n : 1, sizeof(double));
	double *app_table = xcalloc(e->n_apps + 1, sizeof(double));
	double global;

	for (size_t k = 0; k < e->n_attrs; k++) {
		struct attr_encoding *a = &e->attrs[k];
		const size_t n_sub = a->n_values ? a->n_values : 1;
		char col[ATTR_COLUMN_MAX];
		struct frame_col code;
		double *rows;

		attr_column_name(a->name, "code", col, sizeof(col));
		code = frame_col(f, col);
		for (size_t i = 0; i < n; i++)
			cohort[i] = frame_col_at(app, i) * (double)n_sub + frame_col_at(code, i);
		a->ltv = xcalloc(e->n_apps * n_sub + 1, sizeof(double));
		a->payer = xcalloc(e->n_apps * n_sub + 1, sizeof(double));
		attr_column_name(a->name, "ltv_te", col, sizeof(col));
		rows = frame_add_column(f, col);
		encode_target(in, e->n_apps, n_sub, app, cohort, y, app_rows, app_table, rows, a->ltv,
			      &global);
		attr_column_name(a->name, "payer_te", col, sizeof(col));
		rows = frame_add_column(f, col);
		encode_target(in, e->n_apps, n_sub, app, cohort, payer, app_rows, app_table, rows,
			      a->payer, &global);
	}
	free(cohort);
	free(app_rows);
	free(app_table);
}

static void learn_encodings(const struct config *cfg, const struct feature_params *p, struct frame *f,
			    const double *split, const int *fold, struct encodings *e)
{
	const size_t n = f->n_rows, n_cohorts = e->n_apps * e->n_campaigns;
	const struct encoding_input in = { split, frame_col(f, "weight"), fold, n,
					   cfg->features.encoding_smoothing };
	const struct frame_col app = frame_col(f, "app_code"), campaign = frame_col(f, "campaign_code");
	const double *rev_window = frame_column(f, "rev_window");
	const struct frame_col user_rep = frame_col(f, "user_rep");
	double *cohort = xcalloc(n ? n : 1, sizeof(double));
	double *payer = xcalloc(n ? n : 1, sizeof(double));
	double *scratch = xcalloc(n ? n : 1, sizeof(double));
	double *counts = xcalloc(n_cohorts + 1, sizeof(double));
	char name[32];
	const double *y;
	double *app_ltv_rows, *campaign_ltv_rows, *campaign_payer_rows, *log_n_rows;

	label_name(p->target_horizon, name, sizeof(name));
	y = frame_column(f, name);
	for (size_t i = 0; i < n; i++) {
		cohort[i] = frame_col_at(app, i) * (double)e->n_campaigns + frame_col_at(campaign, i);
		/* Payer means revenue still to come after the window (DESIGN.md). */
		payer[i] = isnan(y[i]) ? NAN : (double)(y[i] - rev_window[i] > 0);
	}
	e->app_ltv = xcalloc(e->n_apps + 1, sizeof(double));
	e->app_payer = xcalloc(e->n_apps + 1, sizeof(double));
	e->cohort_ltv = xcalloc(n_cohorts + 1, sizeof(double));
	e->cohort_payer = xcalloc(n_cohorts + 1, sizeof(double));
	e->cohort_log_n = xcalloc(n_cohorts + 1, sizeof(double));

	app_ltv_rows = frame_add_column(f, "app_ltv_te");
	campaign_ltv_rows = frame_add_column(f, "campaign_ltv_te");
	campaign_payer_rows = frame_add_column(f, "campaign_payer_te");
	/*
	 * The two targets' encodings share only what they read: the payer's is
	 * a task, which the other thread of features_complete_beside's sections
	 * takes once it has hashed and stored the base columns. A parallel
	 * region here was nested in those sections, so it ran on this thread
	 * alone, both encodings in turn while the other thread waited (perf
	 * timeline of `run --only features` at 1,000,000 users: 0.1 s). Outside
	 * a parallel region the task runs at once: the same values either way.
	 */
#pragma omp task default(shared) if (config_jobs(cfg) > 1)
	encode_target(&in, e->n_apps, e->n_campaigns, app, cohort, payer, scratch, e->app_payer,
		      campaign_payer_rows, e->cohort_payer, &e->global_payer);
	encode_target(&in, e->n_apps, e->n_campaigns, app, cohort, y, app_ltv_rows, e->app_ltv,
		      campaign_ltv_rows, e->cohort_ltv, &e->global_ltv);
#pragma omp taskwait
	learn_attr_encodings(&in, f, e, y, payer);

	/* How established a campaign is: log of its training users (a count, not a label). */
	log_n_rows = frame_add_column(f, "campaign_train_users_log");
	for (size_t i = 0; i < n; i++)
		if (split[i] == SPLIT_TRAIN)
			counts[(size_t)cohort[i]] += frame_col_at(user_rep, i);
	for (size_t c = 0; c < n_cohorts; c++)
		e->cohort_log_n[c] = log1p(counts[c]);
	for (size_t i = 0; i < n; i++)
		log_n_rows[i] = e->cohort_log_n[(size_t)cohort[i]];
	free(counts);
	free(scratch);
	free(cohort);
	free(payer);
}

static void add_int_list(cJSON *m, const char *name, const struct int_list *l)
{
	cJSON *a = cJSON_AddArrayToObject(m, name);

	for (size_t i = 0; i < l->n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)l->v[i]));
}

/* Counts are of users (user_rep rows); means are weighted over rows, so they are user means too. */
static void add_metrics(const struct feature_params *p, cJSON *m, const struct frame *f,
			const struct feature_base_stats *st)
{
	const double *split = frame_column(f, "split");
	const double *rev_window = frame_column(f, "rev_window");
	const struct frame_col weight = frame_col(f, "weight"), user_rep = frame_col(f, "user_rep");
	double n_split[3] = { 0 }, sum = 0, payers = 0, w_train = 0;
	char name[48], iso[32];
	const double *y;

	label_name(p->target_horizon, name, sizeof(name));
	y = frame_column(f, name);
	for (size_t i = 0; i < f->n_rows; i++) {
		const double w = frame_col_at(weight, i);

		n_split[(int)split[i]] += frame_col_at(user_rep, i);
		if (split[i] == SPLIT_TRAIN) {
			sum += w * y[i];
			payers += w * (y[i] - rev_window[i] > 0);
			w_train += w;
		}
	}
	cJSON_AddStringToObject(m, "as_of", time_format_iso8601(p->as_of, iso, sizeof(iso)));
	add_int_list(m, "snapshots", &p->snapshots);
	add_int_list(m, "horizons", &p->horizons);
	cJSON_AddNumberToObject(m, "target_horizon", (double)p->target_horizon);
	cJSON_AddStringToObject(m, "validation_installs_after",
				time_format_iso8601((int64_t)feature_params_valid_after(p, p->as_of,
											  p->target_horizon),
						    iso, sizeof(iso)));
	cJSON_AddNumberToObject(m, "users", (double)st->users);
	cJSON_AddNumberToObject(m, "rows", (double)f->n_rows);
	cJSON_AddNumberToObject(m, "train_users", n_split[SPLIT_TRAIN]);
	cJSON_AddNumberToObject(m, "validation_users", n_split[SPLIT_VALID]);
	cJSON_AddNumberToObject(m, "users_not_mature_at_target", n_split[SPLIT_SCORE]);
	snprintf(name, sizeof(name), "train_mean_ltv_%lld", (long long)p->target_horizon);
	cJSON_AddNumberToObject(m, name, w_train > 0 ? sum / w_train : 0);
	cJSON_AddNumberToObject(m, "train_payer_rate_after_snapshot", w_train > 0 ? payers / w_train : 0);
	cJSON_AddNumberToObject(m, "user_days_read", (double)st->user_days_read);
	cJSON_AddNumberToObject(m, "user_days_after_as_of_ignored", (double)st->user_days_after_as_of);
	cJSON_AddNumberToObject(m, "users_installed_after_as_of_ignored", (double)st->users_after_as_of);
}

void features_complete(const struct config *cfg, int64_t as_of, struct frame *f,
		       struct encodings *enc, const struct feature_base_stats *stats,
		       struct cJSON *metrics, struct hasher *content)
{
	features_complete_beside(cfg, as_of, f, enc, stats, metrics, content, NULL, NULL);
}

void features_complete_beside(const struct config *cfg, int64_t as_of, struct frame *f,
			      struct encodings *enc, const struct feature_base_stats *stats,
			      struct cJSON *metrics, struct hasher *content,
			      void (*beside)(const struct frame *base, void *ctx), void *beside_ctx)
{
	int *fold = xcalloc(f->n_rows ? f->n_rows : 1, sizeof(int));
	struct frame base = frame_view_first(f, f->n_cols);
	struct feature_params p;

	feature_params_from_config(cfg, as_of, &p);
	/*
	 * The base columns are hashed (0.07 s at 1,000,000 users) while the
	 * split and the encodings are worked out beside them: the hash reads
	 * them through a view of its own, as columns are added to f meanwhile.
	 */
#pragma omp parallel sections num_threads(config_jobs(cfg) > 1 ? 2 : 1)
	{
#pragma omp section
		{
			frame_hash_part(&base, 0, base.n_cols, content);
			if (beside)
				beside(&base, beside_ctx);
		}
#pragma omp section
		{
			assign_split(&p, f, frame_add_column(f, "split"), fold);
			learn_encodings(cfg, &p, f, frame_column(f, "split"), fold, enc);
			add_metrics(&p, metrics, f, stats);
		}
	}
	frame_hash_part(f, base.n_cols, f->n_cols, content);
	frame_view_release(&base);
	encodings_hash(enc, content);
	feature_params_release(&p);
	free(fold);
}

int features_save_params(const struct config *cfg, int64_t as_of, struct registry *reg,
			 int64_t artefact_id, struct ltv_err *err)
{
	struct feature_params p;
	int ret;

	feature_params_from_config(cfg, as_of, &p);
	ret = feature_params_save(&p, reg, artefact_id, err);
	feature_params_release(&p);
	return ret;
}

/*
 * A shard's features (--shard): the base frame of its users and their app
 * and campaign dictionaries, nothing learnt across users; `merge` joins the
 * shards' frames and calls features_complete on the whole. The counts of
 * feature_base_stats go into the metrics, which merge adds up.
 */
static int shard_features_save(struct stage_ctx *ctx, struct frame *f, struct encodings *enc,
			       const struct feature_base_stats *st)
{
	cJSON *m = ctx->metrics;
	char iso[32], spec[32];
	int64_t out_id;
	int ret;

	cJSON_AddStringToObject(m, "shard", shard_format(&ctx->shard, spec, sizeof(spec)));
	cJSON_AddStringToObject(m, "as_of", time_format_iso8601(ctx->as_of, iso, sizeof(iso)));
	cJSON_AddNumberToObject(m, "users", (double)st->users);
	cJSON_AddNumberToObject(m, "rows", (double)f->n_rows);
	cJSON_AddNumberToObject(m, "user_days_read", (double)st->user_days_read);
	cJSON_AddNumberToObject(m, "user_days_after_as_of_ignored", (double)st->user_days_after_as_of);
	cJSON_AddNumberToObject(m, "users_installed_after_as_of_ignored", (double)st->users_after_as_of);
	frame_hash(f, &ctx->content);
	frame_compact(f); /* stored packed, a quarter of the bytes (stage_features_run) */
	for (size_t i = 0; i < enc->n_apps; i++)
		hasher_add_str(&ctx->content, enc->apps[i]);
	for (size_t i = 0; i < enc->n_campaigns; i++)
		hasher_add_str(&ctx->content, enc->campaigns[i]);
	for (size_t k = 0; k < enc->n_attrs; k++)
		for (size_t i = 0; i < enc->attrs[k].n_values; i++)
			hasher_add_str(&ctx->content, enc->attrs[k].values[i]);
	ret = stage_output_id(ctx, &out_id);
	if (ret == 0)
		ret = frame_save(f, ctx->reg, out_id, &ctx->err);
	if (ret == 0)
		ret = frame_save_dict(ctx->reg, out_id, "app", enc->apps, enc->n_apps, &ctx->err);
	if (ret == 0)
		ret = frame_save_dict(ctx->reg, out_id, "campaign", enc->campaigns, enc->n_campaigns,
				      &ctx->err);
	for (size_t k = 0; k < enc->n_attrs && ret == 0; k++) {
		char key[ATTR_COLUMN_MAX];

		snprintf(key, sizeof(key), "attr:%s", enc->attrs[k].name);
		ret = frame_save_dict(ctx->reg, out_id, key, enc->attrs[k].values, enc->attrs[k].n_values,
				      &ctx->err);
	}
	return ret;
}

/*
 * The base frame's columns stored on the thread that hashed them, while the
 * encodings are worked out (features_complete_beside): they came packed and
 * final, and storing them was 0.1 s of one core after the encodings at
 * 1,000,000 users. Only this thread uses the registry meanwhile.
 */
struct base_save {
	struct registry *reg;
	int64_t id;
	struct ltv_err err;
	int ret;
};

static void save_base_columns(const struct frame *base, void *ctx)
{
	struct base_save *s = ctx;

	s->ret = frame_save_columns(base, 0, base->n_cols, s->reg, s->id, &s->err);
}

int stage_features_run(struct stage_ctx *ctx)
{
	struct encodings enc = { 0 };
	struct feature_base_stats stats;
	struct frame f;
	int64_t out_id;
	int ret;

	ret = feature_build_base_attrs(ctx->reg, ctx->cfg, ctx->as_of, FEATURE_ROWS_SNAPSHOTS, NULL, &f,
				       &enc.apps, &enc.n_apps, &enc.campaigns, &enc.n_campaigns,
				       &enc.attrs, &enc.n_attrs, &stats, &ctx->err);
	if (ret < 0)
		return ret;
	/* steps: the rows built from the user-days, then the frame saved */
	stage_progress(ctx, "steps", 1, 2);
	if (ctx->shard.count) {
		ret = shard_features_save(ctx, &f, &enc, &stats);
	} else {
		struct base_save save = { ctx->reg, 0, { 0 }, 0 };
		const size_t n_base = f.n_cols;

		ret = stage_output_id(ctx, &save.id);
		out_id = save.id;
		if (ret == 0)
			features_complete_beside(ctx->cfg, ctx->as_of, &f, &enc, &stats, ctx->metrics,
						 &ctx->content, save_base_columns, &save);
		if (ret == 0 && save.ret < 0) {
			ctx->err = save.err;
			ret = save.ret;
		}
		/*
		 * Packed before it is stored (frame_save writes a column as held):
		 * 317 → 88 MB to write at 1,000,000 users, and the model stages
		 * take it packed (model_data_offer_frame) either way. The base
		 * columns came packed (fill_packed_rows) and are stored already.
		 */
		if (ret == 0) {
			frame_compact_threads(&f, config_jobs(ctx->cfg));
			frame_drop_widened(&f);
			ret = frame_save_head(&f, ctx->reg, out_id, &ctx->err);
		}
		if (ret == 0)
			ret = frame_save_columns(&f, n_base, f.n_cols, ctx->reg, out_id, &ctx->err);
		if (ret == 0)
			ret = encodings_save(&enc, ctx->reg, out_id, &ctx->err);
		if (ret == 0)
			ret = features_save_params(ctx->cfg, ctx->as_of, ctx->reg, out_id, &ctx->err);
	}
	if (ret == 0)
		stage_progress(ctx, "steps", 2, 2);
	if (ret == 0 && !ctx->shard.count) {
		/* For the model stages, once committed (stage_ctx.saved_frame). */
		ctx->saved_frame = xmalloc(sizeof(f));
		*ctx->saved_frame = f;
		memset(&f, 0, sizeof(f));
	}
	encodings_release(&enc);
	frame_release(&f);
	return ret;
}

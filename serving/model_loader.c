/*
 * Loading a model version for scoring (contract in include/ltv/model_loader.h).
 * The configuration a model is used with is rebuilt from the canonical config
 * text stored in each of its artefacts, so editing config/ltvpipe.yaml after
 * training cannot silently change how production scores.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/model_loader.h"
#include "ltv/data_source.h"

/* The stages whose artefacts make a model version: the non-method ones, then method_table's. */
static const char *const fixed_stages[] = { "features", "tiers", "select", "calibrate" };

static const char *stage_name(size_t k)
{
	const size_t n_fixed = sizeof(fixed_stages) / sizeof(fixed_stages[0]);

	return k < n_fixed ? fixed_stages[k] : method_table[k - n_fixed]->name;
}

const struct artefact_info *model_artefact(const struct loaded_model *m, const char *stage)
{
	for (size_t k = 0; k < MODEL_STAGES; k++)
		if (strcmp(m->art[k].name, stage) == 0)
			return &m->art[k];
	return NULL;
}

int model_resolve(struct registry *reg, const char *ref, int64_t *out_version,
		  struct ltv_err *err)
{
	int64_t v;
	double ignored;

	if (!ref)
		ref = "production";
	if (parse_int64(ref, &v) == 0) {
		int ret = registry_model_version_error(reg, v, &ignored, err);

		if (ret == 0)
			*out_version = v;
		return ret;
	}
	if (strcmp(ref, "production") != 0 && strcmp(ref, "candidate") != 0)
		return err_set(err, LTV_EUSAGE, "--model '%s': give a version number, production or candidate",
			       ref);
	return registry_alias_get(reg, ref, out_version, err);
}

static void cohort_key(const char *app, const char *campaign, char *buf, size_t size)
{
	snprintf(buf, size, "%s\x1f%s", app, campaign);
}

static int load_tiers(struct loaded_model *m, struct registry *reg, struct ltv_err *err)
{
	struct campaign_tier_row *rows = NULL;
	size_t n = 0;
	int ret = registry_campaign_tiers_load(reg, model_artefact(m, "tiers")->id, &rows, &n, err);

	for (size_t i = 0; i < n; i++) {
		char key[1024];

		cohort_key(rows[i].app_id, rows[i].campaign, key, sizeof(key));
		strmap_put(&m->tier_of, key, rows[i].tier);
	}
	campaign_tiers_free(rows, n);
	return ret;
}

int model_load_config(struct registry *reg, const struct config *cfg, int64_t version,
		      struct loaded_model *out, struct ltv_err *err)
{
	int ret = 0;
	size_t loaded = 0;

	memset(out, 0, sizeof(*out));
	out->version = version;
	config_copy(&out->cfg, cfg);
	strmap_init(&out->tier_of);
	for (; loaded < MODEL_STAGES && ret == 0; loaded++) {
		ret = registry_model_version_artefact(reg, version, stage_name(loaded), &out->art[loaded], err);
		if (ret == 0)
			ret = config_apply_canonical(&out->cfg, out->art[loaded].config, err);
	}
	if (ret < 0) {
		loaded--;
		goto out;
	}
	ret = feature_params_load(reg, model_artefact(out, "features"), &out->params, err);
	if (ret < 0)
		goto out;
	feature_params_apply(&out->params, &out->cfg);
	predictor_init(&out->pred, &out->cfg, &out->params);
out:
	if (ret < 0) {
		for (size_t i = 0; i < loaded; i++)
			artefact_info_release(&out->art[i]);
		memset(out->art, 0, sizeof(out->art));
		model_release(out);
		return err_prefix(err, "model version %lld", (long long)version);
	}
	return 0;
}

int model_load_models(struct registry *reg, struct loaded_model *out, struct ltv_err *err)
{
	const struct artefact_info *methods[METHOD_COUNT];
	int ret;

	for (int k = 0; k < METHOD_COUNT; k++)
		methods[k] = model_artefact(out, method_table[k]->name);
	ret = encodings_load(reg, model_artefact(out, "features")->id, &out->enc, err);
	if (ret == 0)
		ret = predictor_load_methods(&out->pred, reg, methods, err);
	/* What serves users, not what select judged (struct method.for_serving). */
	for (int k = 0; k < METHOD_COUNT && ret == 0; k++)
		if (method_table[k]->for_serving)
			method_table[k]->for_serving(out->pred.states[k]);
	if (ret == 0)
		ret = predictor_load_selection(&out->pred, reg, model_artefact(out, "select"), err);
	if (ret == 0)
		ret = predictor_load_calibration(&out->pred, reg, model_artefact(out, "calibrate"), err);
	if (ret == 0)
		ret = predictor_load_segments(&out->pred, reg, model_artefact(out, "calibrate"), err);
	if (ret == 0)
		ret = predictor_load_bands(&out->pred, reg, model_artefact(out, "calibrate"), err);
	if (ret == 0)
		ret = predictor_load_floor_shares(&out->pred, reg, model_artefact(out, "calibrate"), err);
	if (ret == 0)
		ret = load_tiers(out, reg, err);
	if (ret < 0)
		return err_prefix(err, "model version %lld", (long long)out->version);
	return 0;
}

int model_load(struct registry *reg, const struct config *cfg, int64_t version,
	       struct loaded_model *out, struct ltv_err *err)
{
	int ret = model_load_config(reg, cfg, version, out, err);

	if (ret == 0 && (ret = model_load_models(reg, out, err)) < 0)
		model_release(out);
	return ret;
}

void model_release(struct loaded_model *m)
{
	for (size_t i = 0; i < MODEL_STAGES; i++)
		artefact_info_release(&m->art[i]);
	encodings_release(&m->enc);
	if (m->pred.cfg)
		predictor_release(&m->pred);
	strmap_release(&m->tier_of);
	feature_params_release(&m->params);
	config_release(&m->cfg);
	memset(m, 0, sizeof(*m));
}

int model_tier(const struct loaded_model *m, const char *app, const char *campaign)
{
	char key[1024];
	int64_t tier;

	cohort_key(app, campaign, key, sizeof(key));
	return strmap_get(&m->tier_of, key, &tier) ? (int)tier : 3;
}

int model_data_for_scoring(const struct loaded_model *m, struct registry *data_reg, int64_t as_of,
			   struct model_data *out, struct ltv_err *err)
{
	return model_data_for_scoring_cohorts(m, data_reg, as_of, NULL, out, err);
}

/* The frame of src's users in rows of the given mode, with the given encodings and params. */
int model_data_build(const struct data_source *src, const struct config *cfg,
		     const struct encodings *enc, const struct feature_params *params,
		     int64_t as_of, enum feature_rows mode, const struct shard_spec *cohorts,
		     int64_t younger_than, struct model_data *out, struct ltv_err *err)
{
	char **apps = NULL, **campaigns = NULL;
	struct attr_encoding *attrs = NULL;
	size_t n_apps = 0, n_campaigns = 0, n_attrs = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = feature_build_base_from(src, cfg, as_of, mode, cohorts, younger_than, &out->frame,
				      &apps, &n_apps, &campaigns, &n_campaigns, &attrs, &n_attrs,
				      NULL, err);
	if (ret < 0)
		return ret;
	feature_apply_encodings(enc, &out->frame, apps, n_apps, campaigns, n_campaigns,
				&out->apps, &out->n_apps, &out->campaigns, &out->n_campaigns);
	feature_apply_attr_encodings(enc, &out->frame, attrs, n_attrs);
	frame_free_dict(apps, n_apps);
	frame_free_dict(campaigns, n_campaigns);
	attr_encodings_release(attrs, n_attrs);
	out->as_of = as_of;
	feature_params_copy(&out->params, params);
	out->app_code = frame_col(&out->frame, "app_code");
	out->campaign_code = frame_col(&out->frame, "campaign_code");
	out->weight = frame_col(&out->frame, "weight");
	return 0;
}

/* The scoring frame of src's users (with tiers). */
int model_data_for_scoring_from(const struct loaded_model *m, const struct data_source *src,
				int64_t as_of, const struct shard_spec *cohorts, int64_t younger_than,
				struct model_data *out, struct ltv_err *err)
{
	const double *app, *campaign;
	int ret;

	ret = model_data_build(src, &m->cfg, &m->enc, &m->params, as_of, FEATURE_ROWS_AT_AGE,
			       cohorts, younger_than, out, err);
	if (ret < 0)
		return ret;
	out->tier = xmalloc((out->frame.n_rows ? out->frame.n_rows : 1) * sizeof(double));
	app = frame_column(&out->frame, "app_code");
	campaign = frame_column(&out->frame, "campaign_code");
	{
		/* one lookup per cohort, not per user: a key and a hash per row cost more than a million rows' features */
		const size_t n_cohorts = out->n_apps * out->n_campaigns;
		int *tier = xmalloc((n_cohorts ? n_cohorts : 1) * sizeof(int));

		for (size_t k = 0; k < n_cohorts; k++)
			tier[k] = -1;
		for (size_t i = 0; i < out->frame.n_rows; i++) {
			const size_t a = (size_t)app[i], c = (size_t)campaign[i], k = a * out->n_campaigns + c;

			if (tier[k] < 0)
				tier[k] = model_tier(m, out->apps[a], out->campaigns[c]);
			out->tier[i] = tier[k];
		}
		free(tier);
	}
	return 0;
}

int model_data_for_scoring_cohorts(const struct loaded_model *m, struct registry *data_reg,
				   int64_t as_of, const struct shard_spec *cohorts,
				   struct model_data *out, struct ltv_err *err)
{
	const struct data_source src = data_source_registry(data_reg);

	return model_data_for_scoring_from(m, &src, as_of, cohorts, INT64_MAX, out, err);
}

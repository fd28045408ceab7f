/*
 * The parameters that travel with a features artefact (contract in
 * include/ltv/feature_params.h). Stored as a small versioned blob; an
 * artefact from before the blob existed gives the same values from the
 * canonical config text and as_of the registry kept with it, so old
 * registries load unchanged.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/feature_params.h"
#include "ltv/timeutil.h"

static void int_list_copy(struct int_list *dst, const struct int_list *src)
{
	dst->n = src->n;
	dst->v = xmalloc((src->n ? src->n : 1) * sizeof(int64_t));
	if (src->n)
		memcpy(dst->v, src->v, src->n * sizeof(int64_t));
}

void feature_params_from_config(const struct config *cfg, int64_t as_of,
				struct feature_params *out)
{
	memset(out, 0, sizeof(*out));
	out->as_of = as_of;
	int_list_copy(&out->snapshots, &cfg->features.snapshots);
	int_list_copy(&out->horizons, &cfg->features.horizons);
	out->target_horizon = cfg->features.target_horizon;
	out->validation_days = cfg->features.validation_days;
}

void feature_params_copy(struct feature_params *dst, const struct feature_params *src)
{
	*dst = *src;
	int_list_copy(&dst->snapshots, &src->snapshots);
	int_list_copy(&dst->horizons, &src->horizons);
}

void feature_params_release(struct feature_params *p)
{
	free(p->snapshots.v);
	free(p->horizons.v);
	memset(p, 0, sizeof(*p));
}

static void put_list(struct blob_writer *w, const struct int_list *l)
{
	blob_put_u32(w, (uint32_t)l->n);
	for (size_t i = 0; i < l->n; i++)
		blob_put_u64(w, (uint64_t)l->v[i]);
}

/* -1 on a count no list of days can have (a corrupt blob must not allocate gigabytes). */
static int get_list(struct blob_reader *r, struct int_list *l)
{
	uint32_t n = blob_get_u32(r);

	l->n = 0;
	l->v = xmalloc(sizeof(int64_t) * (n && n <= 1024 ? n : 1));
	if (n > 1024)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		l->v[l->n++] = (int64_t)blob_get_u64(r);
	return 0;
}

int feature_params_save(const struct feature_params *p, struct registry *reg, int64_t artefact_id,
			struct ltv_err *err)
{
	struct blob_writer w;
	uint8_t *data;
	size_t len;
	int ret;

	blob_writer_init(&w);
	blob_put_header(&w, FEATURE_PARAMS_MAGIC, FEATURE_PARAMS_VERSION);
	blob_put_u64(&w, (uint64_t)p->as_of);
	put_list(&w, &p->snapshots);
	put_list(&w, &p->horizons);
	blob_put_u64(&w, (uint64_t)p->target_horizon);
	blob_put_u64(&w, (uint64_t)p->validation_days);
	data = blob_writer_detach(&w, &len);
	ret = registry_blob_put(reg, artefact_id, FEATURE_PARAMS_BLOB, data, len, err);
	free(data);
	return ret;
}

/* The same checks config_validate makes, on what an artefact says. */
static int check(const struct feature_params *p, const struct artefact_info *a, struct ltv_err *err)
{
	const char *why = NULL;

	if (p->horizons.n == 0 || p->snapshots.n == 0)
		why = "no horizons or no snapshot ages";
	else if (feature_params_horizon_index(p, p->target_horizon) < 0)
		why = "the target horizon is not one of its horizons";
	else if (p->validation_days < 1)
		why = "validation_days is below 1";
	for (size_t i = 1; !why && i < p->horizons.n; i++)
		if (p->horizons.v[i] <= p->horizons.v[i - 1])
			why = "its horizons do not increase";
	for (size_t i = 1; !why && i < p->snapshots.n; i++)
		if (p->snapshots.v[i] <= p->snapshots.v[i - 1])
			why = "its snapshot ages do not increase";
	if (!why)
		return 0;
	return err_set(err, LTV_EINVAL,
		       "features v%lld (artefact %lld): parameters are inconsistent: %s; rerun "
		       "'ltvpipe run --from features --force'",
		       (long long)a->version, (long long)a->id, why);
}

static int load_blob(const void *data, size_t len, const struct artefact_info *a,
		     struct feature_params *out, struct ltv_err *err)
{
	struct blob_reader r;
	uint32_t version;
	int ret;

	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, FEATURE_PARAMS_MAGIC, FEATURE_PARAMS_VERSION, &version, err);
	if (ret < 0)
		return err_prefix(err, "features v%lld parameters", (long long)a->version);
	out->as_of = (int64_t)blob_get_u64(&r);
	if (get_list(&r, &out->snapshots) < 0 || get_list(&r, &out->horizons) < 0)
		return err_set(err, LTV_EINVAL, "features v%lld parameters are corrupt (a list of %s)",
			       (long long)a->version, "more than 1024 days");
	out->target_horizon = (int64_t)blob_get_u64(&r);
	out->validation_days = (int64_t)blob_get_u64(&r);
	return blob_reader_status(&r, "features parameters", err);
}

/* An artefact from before the params blob: the features section it was fingerprinted with. */
static int load_legacy(const struct artefact_info *a, struct feature_params *out,
		       struct ltv_err *err)
{
	struct config cfg;
	int ret;

	config_init_defaults(&cfg);
	ret = config_apply_canonical(&cfg, a->config ? a->config : "", err);
	if (ret == 0)
		feature_params_from_config(&cfg, a->as_of, out);
	config_release(&cfg);
	return ret;
}

int feature_params_load(struct registry *reg, const struct artefact_info *features,
			struct feature_params *out, struct ltv_err *err)
{
	void *data = NULL;
	size_t len = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = registry_blob_get(reg, features->id, FEATURE_PARAMS_BLOB, &data, &len, err);
	if (ret == LTV_ENOTFOUND) {
		err_clear(err);
		ret = load_legacy(features, out, err);
	} else if (ret == 0) {
		ret = load_blob(data, len, features, out, err);
	}
	free(data);
	if (ret == 0)
		ret = check(out, features, err);
	if (ret < 0)
		feature_params_release(out);
	return ret;
}

int feature_params_horizon_index(const struct feature_params *p, int64_t horizon)
{
	for (size_t h = 0; h < p->horizons.n; h++)
		if (p->horizons.v[h] == horizon)
			return (int)h;
	return -1;
}

int64_t feature_params_max_horizon(const struct feature_params *p)
{
	return p->horizons.n ? p->horizons.v[p->horizons.n - 1] : 0;
}

double feature_params_valid_after(const struct feature_params *p, int64_t as_of, int64_t horizon)
{
	return (double)(as_of - (horizon + p->validation_days) * SECONDS_PER_DAY);
}

enum feature_split feature_params_split(const struct feature_params *p, int64_t as_of,
					int64_t horizon, double age_days, double install_time)
{
	return feature_split_at(feature_params_valid_after(p, as_of, horizon), horizon, age_days,
				install_time);
}

static void format_list(const struct int_list *l, char *buf, size_t size)
{
	size_t at = 0;

	buf[0] = '\0';
	at += (size_t)snprintf(buf, size, "[");
	for (size_t i = 0; i < l->n && at < size; i++)
		at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? ", " : "", (long long)l->v[i]);
	if (at < size)
		snprintf(buf + at, size - at, "]");
}

static int list_equal(const struct int_list *a, const struct int_list *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(int64_t)) == 0);
}

static void append_diff(char *buf, size_t size, size_t *at, int *n, const char *key,
			const char *mine, const char *config)
{
	if (*at < size)
		*at += (size_t)snprintf(buf + *at, size - *at, "%s%s %s (config: %s)", *n ? ", " : "",
					key, mine, config);
	(*n)++;
}

int feature_params_config_diff(const struct feature_params *p, const struct config *cfg, char *buf,
			       size_t size)
{
	char mine[256], theirs[256];
	size_t at = 0;
	int n = 0;

	assert(size > 0);
	buf[0] = '\0';
	if (p->target_horizon != cfg->features.target_horizon) {
		snprintf(mine, sizeof(mine), "%lld", (long long)p->target_horizon);
		snprintf(theirs, sizeof(theirs), "%lld", (long long)cfg->features.target_horizon);
		append_diff(buf, size, &at, &n, "target_horizon", mine, theirs);
	}
	if (!list_equal(&p->horizons, &cfg->features.horizons)) {
		format_list(&p->horizons, mine, sizeof(mine));
		format_list(&cfg->features.horizons, theirs, sizeof(theirs));
		append_diff(buf, size, &at, &n, "horizons", mine, theirs);
	}
	if (!list_equal(&p->snapshots, &cfg->features.snapshots)) {
		format_list(&p->snapshots, mine, sizeof(mine));
		format_list(&cfg->features.snapshots, theirs, sizeof(theirs));
		append_diff(buf, size, &at, &n, "snapshots", mine, theirs);
	}
	if (p->validation_days != cfg->features.validation_days) {
		snprintf(mine, sizeof(mine), "%lld", (long long)p->validation_days);
		snprintf(theirs, sizeof(theirs), "%lld", (long long)cfg->features.validation_days);
		append_diff(buf, size, &at, &n, "validation_days", mine, theirs);
	}
	return n;
}

void feature_params_apply(const struct feature_params *p, struct config *cfg)
{
	free(cfg->features.snapshots.v);
	free(cfg->features.horizons.v);
	int_list_copy(&cfg->features.snapshots, &p->snapshots);
	int_list_copy(&cfg->features.horizons, &p->horizons);
	cfg->features.target_horizon = p->target_horizon;
	cfg->features.validation_days = p->validation_days;
}

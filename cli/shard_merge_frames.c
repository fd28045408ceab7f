/*
 * `ltvpipe merge`'s features frame (see shard_merge_internal.h): the shards'
 * base frames joined in global uid order, with the app, campaign and
 * attribute dictionaries of the whole and every code renumbered into them,
 * so features_complete sees what an unsharded features stage builds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/shard_merge_internal.h"
#include "ltv/strmap.h"

/* ---- features ---- */

static int compare_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted union of the shards' dictionaries, as feature_build_base makes it from every user. */
static char **union_dict(char ***dicts, const size_t *ns, size_t n_shards, size_t *out_n)
{
	struct strmap seen;
	char **all = NULL;
	size_t n = 0, cap = 0;

	strmap_init(&seen);
	for (size_t i = 0; i < n_shards; i++)
		for (size_t k = 0; k < ns[i]; k++)
			if (strmap_put(&seen, dicts[i][k], 0) == 0) {
				ARRAY_GROW(all, n + 1, cap);
				all[n++] = xstrdup(dicts[i][k]);
			}
	strmap_release(&seen);
	if (n)
		qsort(all, n, sizeof(char *), compare_str);
	*out_n = n;
	return all;
}

static double code_in(char **dict, size_t n, const char *name)
{
	char *const *hit = bsearch(&name, dict, n, sizeof(char *), compare_str);

	return hit ? (double)(hit - dict) : NAN;
}

/*
 * The attributes' dictionaries (columns.attributes) joined like app and
 * campaign: each shard's attr_<name>_code re-coded into the sorted union.
 */
static int join_attr_dicts(struct shard_merge *mg, struct frame *fr, struct encodings *enc,
			   struct ltv_err *err)
{
	const struct str_list *names = &mg->cfg->columns.attributes;
	char ***dicts = xcalloc(mg->n, sizeof(char **));
	size_t *ns = xcalloc(mg->n, sizeof(size_t));
	int ret = 0;

	enc->attrs = xcalloc(names->n + 1, sizeof(*enc->attrs));
	enc->n_attrs = names->n;
	for (size_t k = 0; k < names->n && ret == 0; k++) {
		struct attr_encoding *a = &enc->attrs[k];
		char key[ATTR_COLUMN_MAX], col[ATTR_COLUMN_MAX];

		a->name = xstrdup(names->v[k]);
		snprintf(key, sizeof(key), "attr:%s", a->name);
		attr_column_name(a->name, "code", col, sizeof(col));
		for (size_t i = 0; i < mg->n && ret == 0; i++)
			ret = frame_load_dict(mg->sh[i].reg, mg->sh[i].features.id, key, &dicts[i], &ns[i], err);
		if (ret == 0)
			a->values = union_dict(dicts, ns, mg->n, &a->n_values);
		for (size_t i = 0; i < mg->n && ret == 0; i++) {
			double *code = frame_column(&fr[i], col);

			if (!code) {
				ret = err_set(err, LTV_EUSAGE, "%s: its features have no attribute '%s'; "
					      "rebuild the shards with this columns.attributes",
					      mg->sh[i].path, a->name);
				break;
			}
			for (size_t r = 0; r < fr[i].n_rows; r++)
				code[r] = code_in(a->values, a->n_values, dicts[i][(size_t)code[r]]);
		}
		for (size_t i = 0; i < mg->n; i++) {
			frame_free_dict(dicts[i], ns[i]);
			dicts[i] = NULL;
			ns[i] = 0;
		}
	}
	free(dicts);
	free(ns);
	return ret;
}

struct row_ref {
	int64_t uid;
	uint32_t shard;
	size_t row;
};

static int compare_row_ref(const void *a, const void *b)
{
	const struct row_ref *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

/*
 * The shards' base frames joined into the frame an unsharded features stage
 * builds: users in global uid order (each user's rows in their own order),
 * uids and app / campaign codes renumbered into the whole's dictionaries.
 */
int shard_merge_join_frames(struct shard_merge *mg, struct frame *out, struct encodings *enc,
			    struct feature_base_stats *st, struct ltv_err *err)
{
	struct frame *fr = xcalloc(mg->n, sizeof(*fr));
	char ***apps = xcalloc(mg->n, sizeof(char **)), ***camps = xcalloc(mg->n, sizeof(char **));
	size_t *n_apps = xcalloc(mg->n, sizeof(size_t)), *n_camps = xcalloc(mg->n, sizeof(size_t));
	struct row_ref *refs = NULL;
	size_t total = 0, k = 0;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < mg->n && ret == 0; i++) {
		const struct shard_in *s = &mg->sh[i];

		ret = frame_load(s->reg, s->features.id, NULL, &fr[i], err);
		if (ret == 0)
			ret = frame_load_dict(s->reg, s->features.id, "app", &apps[i], &n_apps[i], err);
		if (ret == 0)
			ret = frame_load_dict(s->reg, s->features.id, "campaign", &camps[i], &n_camps[i], err);
		if (ret == 0 && (fr[i].n_cols != fr[0].n_cols))
			ret = err_set(err, LTV_EUSAGE, "%s: its features have other columns than %s's; "
				      "rebuild the shards with one ltvpipe version", s->path, mg->sh[0].path);
		for (size_t j = 0; ret == 0 && j < fr[i].n_cols; j++)
			if (strcmp(fr[i].names[j], fr[0].names[j]) != 0)
				ret = err_set(err, LTV_EUSAGE, "%s: its features have other columns than "
					      "%s's; rebuild the shards with one ltvpipe version", s->path,
					      mg->sh[0].path);
		total += fr[i].n_rows;
		st->users += (int64_t)shard_merge_metric(s->features_m, "users");
		st->user_days_read += (int64_t)shard_merge_metric(s->features_m, "user_days_read");
		st->user_days_after_as_of += (int64_t)shard_merge_metric(s->features_m, "user_days_after_as_of_ignored");
		st->users_after_as_of += (int64_t)shard_merge_metric(s->features_m, "users_installed_after_as_of_ignored");
	}
	if (ret < 0)
		goto out;
	enc->apps = union_dict(apps, n_apps, mg->n, &enc->n_apps);
	enc->campaigns = union_dict(camps, n_camps, mg->n, &enc->n_campaigns);
	ret = join_attr_dicts(mg, fr, enc, err);
	if (ret < 0)
		goto out;
	refs = xmalloc((total ? total : 1) * sizeof(*refs));
	for (size_t i = 0; i < mg->n; i++) {
		double *uid = frame_column(&fr[i], "uid");
		double *app = frame_column(&fr[i], "app_code"), *camp = frame_column(&fr[i], "campaign_code");

		for (size_t r = 0; r < fr[i].n_rows; r++) {
			int64_t local = (int64_t)uid[r];

			if (local < 1 || (size_t)local > mg->sh[i].n_users) {
				ret = err_set(err, LTV_EREGISTRY, "%s: a features row of unknown uid %lld",
					      mg->sh[i].path, (long long)local);
				goto out;
			}
			uid[r] = (double)mg->sh[i].global_uid[local - 1];
			app[r] = code_in(enc->apps, enc->n_apps, apps[i][(size_t)app[r]]);
			camp[r] = code_in(enc->campaigns, enc->n_campaigns, camps[i][(size_t)camp[r]]);
			refs[k++] = (struct row_ref){ (int64_t)uid[r], (uint32_t)i, r };
		}
	}
	qsort(refs, total, sizeof(*refs), compare_row_ref);
	frame_init(out, total);
	for (size_t j = 0; j < fr[0].n_cols; j++) {
		double *col = frame_add_column(out, fr[0].names[j]);

		for (size_t r = 0; r < total; r++)
			col[r] = fr[refs[r].shard].cols[j][refs[r].row];
	}
out:
	for (size_t i = 0; i < mg->n; i++) {
		frame_release(&fr[i]);
		frame_free_dict(apps[i], n_apps[i]);
		frame_free_dict(camps[i], n_camps[i]);
	}
	free(fr);
	free(apps);
	free(camps);
	free(n_apps);
	free(n_camps);
	free(refs);
	return ret;
}

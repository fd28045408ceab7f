/*
 * Sharded scoring: `score --shard i/N` writes, beside its own outputs,
 * OUTPUT.shard.csv with every value the outputs are made from; `ltvpipe
 * merge-scores` reads the shards' files, puts the users back in the order an
 * unsharded score serves them (their uid in the data scored), and writes the
 * users CSV, the campaign summary and the report with score's own writers
 * (score_write_outputs). Campaign sums and counts, the LTV distribution and
 * the segment counts are therefore recomputed from the users themselves,
 * never averaged from shard summaries, and the merged files are
 * byte-identical to an unsharded score's.
 *
 * OUTPUT.shard.csv (RFC 4180; doubles in C99 hex so they round-trip exactly):
 *   ltvpipe_score_shard,1,VERSION,AS_OF,I,N,HORIZONS
 *   app,NAME          one per app code of the shard, in code order
 *   campaign,NAME     one per campaign code, in code order
 *   u,ORDER,USER_ID,APP_CODE,CAMPAIGN_CODE,TIER,INSTALL,AGE,COST,REV_TO_DATE,
 *     RAW,P_PAYER,METHOD,FALLBACK,P_ALIVE,P_PURCHASE_30D, then per horizon
 *     LTV,OBSERVED,LO,HI
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ltv/csvread.h"
#include "ltv/score_internal.h"
#include "ltv/shard_merge.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

#define SHARD_MAGIC "ltvpipe_score_shard"
#define USER_FIXED 16 /* fields of a "u" row before the per-horizon ones */

static void put_double(FILE *f, double v)
{
	if (isnan(v))
		fputs(",nan", f);
	else
		fprintf(f, ",%a", v);
}

int score_shard_write(const struct loaded_model *m, const struct model_data *d,
		      const struct user_table *users, const struct scored *s, int64_t as_of,
		      const struct shard_spec *shard, const char *output, struct ltv_err *err)
{
	const double *uid = frame_column(&d->frame, "uid"), *app = frame_column(&d->frame, "app_code");
	const double *camp = frame_column(&d->frame, "campaign_code"), *cost = frame_column(&d->frame, "cost");
	const double *rtd = frame_column(&d->frame, "rev_to_date"), *age = frame_column(&d->frame, "age_days");
	const double *install = frame_column(&d->frame, "install_time");
	char *path = xasprintf("%s.shard.csv", output), *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int ret = 0;

	if (!f) {
		ret = err_set(err, LTV_EIO, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fprintf(f, "%s,1,%lld,%lld,%lld,%lld,%zu\n", SHARD_MAGIC, (long long)m->version,
		(long long)as_of, (long long)shard->index, (long long)shard->count,
		m->params.horizons.n);
	for (size_t k = 0; k < d->n_apps; k++) {
		fputs("app,", f);
		csv_write_field(f, d->apps[k]);
		fputc('\n', f);
	}
	for (size_t k = 0; k < d->n_campaigns; k++) {
		fputs("campaign,", f);
		csv_write_field(f, d->campaigns[k]);
		fputc('\n', f);
	}
	for (size_t i = 0; i < s->n; i++) {
		size_t r = s->rows[i];

		fprintf(f, "u,%.0f,", uid[r]);
		csv_write_field(f, users->user_id[(size_t)uid[r] - 1]);
		fprintf(f, ",%.0f,%.0f,%.0f", app[r], camp[r], d->tier[r]);
		put_double(f, install[r]);
		put_double(f, age[r]);
		put_double(f, cost[r]);
		put_double(f, rtd[r]);
		put_double(f, s->sv.raw[i]);
		put_double(f, s->sv.p_payer[i]);
		fprintf(f, ",%d,%d", s->sv.method[i], s->sv.fallback[i]);
		put_double(f, s->sv.p_alive[i]);
		put_double(f, s->sv.p_purchase_30d[i]);
		for (size_t h = 0; h < m->params.horizons.n; h++) {
			put_double(f, s->sv.ltv[h][i]);
			fprintf(f, ",%d", s->sv.observed[h][i]);
			put_double(f, s->sv.ltv_lo[h][i]);
			put_double(f, s->sv.ltv_hi[h][i]);
		}
		fputc('\n', f);
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		ret = err_set(err, LTV_EIO, "cannot write %s: %s", path, strerror(errno));
out:
	if (ret < 0)
		unlink(tmp);
	free(path);
	free(tmp);
	return ret;
}

/* ---- merge-scores ---- */

struct user_rec {
	int64_t order;
	char *user_id;
	char *app, *campaign;   /* borrowed from the shard's dictionaries */
	double tier, install, age, cost, rev_to_date, raw, p_payer, p_alive, p_purchase_30d;
	int method, fallback;
	double ltv[PREDICTOR_MAX_HORIZONS], lo[PREDICTOR_MAX_HORIZONS], hi[PREDICTOR_MAX_HORIZONS];
	unsigned char observed[PREDICTOR_MAX_HORIZONS];
};

struct shard_scores {
	const char *path;
	int64_t version, as_of, index, count;
	size_t n_horizons;
	char **apps, **campaigns;
	size_t n_apps, n_campaigns, cap_apps, cap_campaigns;
};

struct merged {
	struct user_rec *u;
	size_t n, cap;
	struct shard_scores *sh;
	size_t n_shards;
};

static int num(const char *text, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(text, &end);
	return *text && !*end && errno != ERANGE ? 0 : -1;
}

static int read_header(struct shard_scores *sh, char **f, size_t n)
{
	int64_t v[6];

	if (n != 7 || strcmp(f[0], SHARD_MAGIC) != 0 || strcmp(f[1], "1") != 0)
		return -1;
	for (int k = 0; k < 5; k++)
		if (parse_int64(f[2 + k], &v[k]) < 0)
			return -1;
	sh->version = v[0];
	sh->as_of = v[1];
	sh->index = v[2];
	sh->count = v[3];
	sh->n_horizons = (size_t)v[4];
	return sh->n_horizons >= 1 && sh->n_horizons <= PREDICTOR_MAX_HORIZONS ? 0 : -1;
}

static int read_user(struct merged *mg, struct shard_scores *sh, char **f, size_t n)
{
	struct user_rec u = { 0 };
	double v[USER_FIXED];
	size_t app, camp;

	if (n != USER_FIXED + 4 * sh->n_horizons)
		return -1;
	for (size_t k = 1; k < USER_FIXED; k++)
		if (k != 2 && num(f[k], &v[k]) < 0)
			return -1;
	app = (size_t)v[3];
	camp = (size_t)v[4];
	if (v[3] < 0 || app >= sh->n_apps || v[4] < 0 || camp >= sh->n_campaigns)
		return -1;
	u.order = (int64_t)v[1];
	u.user_id = xstrdup(f[2]);
	u.app = sh->apps[app];
	u.campaign = sh->campaigns[camp];
	u.tier = v[5];
	u.install = v[6];
	u.age = v[7];
	u.cost = v[8];
	u.rev_to_date = v[9];
	u.raw = v[10];
	u.p_payer = v[11];
	u.method = (int)v[12];
	u.fallback = (int)v[13];
	u.p_alive = v[14];
	u.p_purchase_30d = v[15];
	for (size_t h = 0; h < sh->n_horizons; h++) {
		double obs;

		if (num(f[USER_FIXED + 4 * h], &u.ltv[h]) < 0 || num(f[USER_FIXED + 4 * h + 1], &obs) < 0 ||
		    num(f[USER_FIXED + 4 * h + 2], &u.lo[h]) < 0 || num(f[USER_FIXED + 4 * h + 3], &u.hi[h]) < 0) {
			free(u.user_id);
			return -1;
		}
		u.observed[h] = obs != 0;
	}
	ARRAY_GROW(mg->u, mg->n + 1, mg->cap);
	mg->u[mg->n++] = u;
	return 0;
}

static int read_shard(struct merged *mg, struct shard_scores *sh, struct ltv_err *err)
{
	char *path = xasprintf("%s.shard.csv", sh->path);
	struct csv_reader *r = csv_reader_open(path, err);
	char **f;
	size_t n, line;
	int ret;

	if (!r) {
		ret = err_set(err, LTV_EUSAGE, "%s: %s; give each shard's --output of 'ltvpipe score "
			      "--shard i/N' (its .shard.csv is read)", sh->path, err->msg);
		free(path);
		return ret;
	}
	while ((ret = csv_reader_next(r, &f, &n, &line, err)) == 1) {
		int bad;

		if (line == 1)
			bad = read_header(sh, f, n);
		else if (n == 2 && strcmp(f[0], "app") == 0) {
			ARRAY_GROW(sh->apps, sh->n_apps + 1, sh->cap_apps);
			sh->apps[sh->n_apps++] = xstrdup(f[1]);
			bad = 0;
		} else if (n == 2 && strcmp(f[0], "campaign") == 0) {
			ARRAY_GROW(sh->campaigns, sh->n_campaigns + 1, sh->cap_campaigns);
			sh->campaigns[sh->n_campaigns++] = xstrdup(f[1]);
			bad = 0;
		} else {
			bad = n < 1 || strcmp(f[0], "u") != 0 || read_user(mg, sh, f, n) < 0;
		}
		if (bad) {
			ret = err_set(err, LTV_EINVAL, "%s:%zu: not a line of a score shard file (written "
				      "by 'ltvpipe score --shard'); was it edited or cut short?", path, line);
			break;
		}
	}
	csv_reader_free(r);
	free(path);
	return ret;
}

static int compare_user_rec(const void *a, const void *b)
{
	const struct user_rec *x = a, *y = b;

	return x->order < y->order ? -1 : x->order > y->order;
}

static int compare_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One model version, one as_of, every shard 0..N-1 once. */
static int check_scores(const struct merged *mg, struct ltv_err *err)
{
	const struct shard_scores *a = &mg->sh[0];

	if ((int64_t)mg->n_shards != a->count)
		return err_set(err, LTV_EUSAGE, "%zu score shards given, but they are shards of %lld; "
			       "give all of them", mg->n_shards, (long long)a->count);
	for (size_t i = 1; i < mg->n_shards; i++) {
		const struct shard_scores *b = &mg->sh[i];

		if (b->version != a->version || b->as_of != a->as_of || b->count != a->count ||
		    b->n_horizons != a->n_horizons)
			return err_set(err, LTV_EUSAGE, "%s and %s were scored with other model versions "
				       "(%lld, %lld), as_of or shard counts; score every shard with one "
				       "--model and --as-of", a->path, b->path, (long long)a->version,
				       (long long)b->version);
		for (size_t j = 0; j < i; j++)
			if (mg->sh[j].index == b->index)
				return err_set(err, LTV_EUSAGE, "%s and %s are both shard %lld/%lld",
					       mg->sh[j].path, b->path, (long long)b->index,
					       (long long)b->count);
	}
	return 0;
}

/*
 * The dictionary an unsharded score has: the model's own names (the prefix
 * every shard shares) and then the names the model never saw, sorted, as
 * feature_apply_encodings appends them.
 */
static char **merged_dict(char *const *known, size_t n_known, struct shard_scores *sh, size_t n_sh,
			  int apps, size_t *out_n, struct ltv_err *err)
{
	struct strmap seen;
	char **all = xcalloc(n_known + 1, sizeof(char *));
	size_t n = n_known, cap = n_known + 1, start;

	strmap_init(&seen);
	for (size_t k = 0; k < n_known; k++) {
		all[k] = xstrdup(known[k]);
		strmap_put(&seen, all[k], 0);
	}
	start = n;
	for (size_t i = 0; i < n_sh; i++) {
		char **d = apps ? sh[i].apps : sh[i].campaigns;
		size_t nd = apps ? sh[i].n_apps : sh[i].n_campaigns;

		for (size_t k = 0; k < nd; k++) {
			if (k < n_known && strcmp(d[k], known[k]) != 0) {
				err_set(err, LTV_EUSAGE, "%s was scored with other %s names than the "
					"model version's; rescore it", sh[i].path, apps ? "app" : "campaign");
				frame_free_dict(all, n);
				strmap_release(&seen);
				return NULL;
			}
			if (strmap_put(&seen, d[k], 0) == 0) {
				ARRAY_GROW(all, n + 1, cap);
				all[n++] = xstrdup(d[k]);
			}
		}
	}
	if (n > start)
		qsort(all + start, n - start, sizeof(char *), compare_str);
	strmap_release(&seen);
	*out_n = n;
	return all;
}

/* The model data and scores score_write_outputs reads, rebuilt from the merged users. */
static int rebuild(const struct loaded_model *m, struct merged *mg, struct model_data *d,
		   struct user_table *users, struct scored *s, struct ltv_err *err)
{
	const size_t n = mg->n, nh = mg->sh[0].n_horizons;
	double *uid, *app, *camp, *cost, *rtd, *age, *install;
	struct strmap app_ix, camp_ix;

	d->apps = merged_dict(m->enc.apps, m->enc.n_apps, mg->sh, mg->n_shards, 1, &d->n_apps, err);
	if (!d->apps)
		return err->code;
	d->campaigns = merged_dict(m->enc.campaigns, m->enc.n_campaigns, mg->sh, mg->n_shards, 0,
				   &d->n_campaigns, err);
	if (!d->campaigns)
		return err->code;
	strmap_init(&app_ix);
	strmap_init(&camp_ix);
	for (size_t k = 0; k < d->n_apps; k++)
		strmap_put(&app_ix, d->apps[k], (int64_t)k);
	for (size_t k = 0; k < d->n_campaigns; k++)
		strmap_put(&camp_ix, d->campaigns[k], (int64_t)k);
	frame_init(&d->frame, n);
	uid = frame_add_column(&d->frame, "uid");
	app = frame_add_column(&d->frame, "app_code");
	camp = frame_add_column(&d->frame, "campaign_code");
	cost = frame_add_column(&d->frame, "cost");
	rtd = frame_add_column(&d->frame, "rev_to_date");
	age = frame_add_column(&d->frame, "age_days");
	install = frame_add_column(&d->frame, "install_time");
	d->tier = xcalloc(n ? n : 1, sizeof(double));
	users->n = n;
	users->user_id = xcalloc(n ? n : 1, sizeof(char *));
	s->n = n;
	s->rows = xcalloc(n ? n : 1, sizeof(size_t));
	s->sv.n = n;
	s->sv.n_horizons = nh;
	for (size_t h = 0; h < nh; h++) {
		s->sv.ltv[h] = xcalloc(n ? n : 1, sizeof(double));
		s->sv.observed[h] = xcalloc(n ? n : 1, 1);
		s->sv.ltv_lo[h] = xcalloc(n ? n : 1, sizeof(double));
		s->sv.ltv_hi[h] = xcalloc(n ? n : 1, sizeof(double));
	}
	s->sv.raw = xcalloc(n ? n : 1, sizeof(double));
	s->sv.p_payer = xcalloc(n ? n : 1, sizeof(double));
	s->sv.p_alive = xcalloc(n ? n : 1, sizeof(double));
	s->sv.p_purchase_30d = xcalloc(n ? n : 1, sizeof(double));
	s->sv.method = xcalloc(n ? n : 1, sizeof(int));
	s->sv.fallback = xcalloc(n ? n : 1, sizeof(int));
	for (size_t i = 0; i < n; i++) {
		const struct user_rec *u = &mg->u[i];
		int64_t a = 0, c = 0;

		strmap_get(&app_ix, u->app, &a);
		strmap_get(&camp_ix, u->campaign, &c);
		uid[i] = (double)(i + 1);
		users->user_id[i] = u->user_id;
		app[i] = (double)a;
		camp[i] = (double)c;
		cost[i] = u->cost;
		rtd[i] = u->rev_to_date;
		age[i] = u->age;
		install[i] = u->install;
		d->tier[i] = u->tier;
		s->rows[i] = i;
		for (size_t h = 0; h < nh; h++) {
			s->sv.ltv[h][i] = u->ltv[h];
			s->sv.observed[h][i] = u->observed[h];
			s->sv.ltv_lo[h][i] = u->lo[h];
			s->sv.ltv_hi[h][i] = u->hi[h];
		}
		s->sv.raw[i] = u->raw;
		s->sv.p_payer[i] = u->p_payer;
		s->sv.p_alive[i] = u->p_alive;
		s->sv.p_purchase_30d[i] = u->p_purchase_30d;
		s->sv.method[i] = u->method;
		s->sv.fallback[i] = u->fallback;
	}
	strmap_release(&app_ix);
	strmap_release(&camp_ix);
	return 0;
}

int shard_merge_scores_run(const struct config *cfg, struct registry *reg, const char *output,
			   int argc, char **argv, FILE *out, struct ltv_err *err)
{
	struct merged mg = { 0 };
	struct loaded_model m = { 0 };
	struct model_data d = { 0 };
	struct user_table users = { 0 };
	struct scored s = { 0 };
	size_t n_cs = 0;
	int have_model = 0, ret = 0;
	double started = now_seconds();
	char iso[32];

	mg.n_shards = (size_t)argc;
	mg.sh = xcalloc(mg.n_shards, sizeof(*mg.sh));
	for (size_t i = 0; i < mg.n_shards && ret == 0; i++) {
		mg.sh[i].path = argv[i];
		ret = read_shard(&mg, &mg.sh[i], err);
	}
	if (ret == 0)
		ret = check_scores(&mg, err);
	if (ret == 0) {
		qsort(mg.u, mg.n, sizeof(*mg.u), compare_user_rec);
		for (size_t i = 1; i < mg.n && ret == 0; i++)
			if (mg.u[i].order == mg.u[i - 1].order)
				ret = err_set(err, LTV_EUSAGE, "user '%s' is in two score shards; the shards "
					      "overlap (scored from other data?)", mg.u[i].user_id);
	}
	if (ret == 0)
		ret = model_load(reg, cfg, mg.sh[0].version, &m, err);
	if (ret == 0) {
		have_model = 1;
		ret = rebuild(&m, &mg, &d, &users, &s, err);
	}
	if (ret == 0) {
		/* scored_at is the merge's: the shards' own times are not kept */
		struct provenance pv = { .version = m.version };
		const struct score_write w = { .pv = &pv };

		time_format_iso8601(mg.sh[0].as_of, pv.as_of, sizeof(pv.as_of));
		time_format_iso8601(score_scored_at_now(), pv.scored_at, sizeof(pv.scored_at));
		ret = score_write_outputs(&m, &d, &users, &s, mg.sh[0].as_of, &w, output, &n_cs, err);
	}
	if (ret == 0 && strcmp(output, "-") == 0)
		fprintf(out, "merged %zu score shards: %zu users in %zu campaigns with model version %lld "
			"at as_of %s in %.2f s\n  users:     (stdout)\n", mg.n_shards, mg.n, n_cs,
			(long long)m.version, time_format_iso8601(mg.sh[0].as_of, iso, sizeof(iso)),
			now_seconds() - started);
	else if (ret == 0)
		fprintf(out, "merged %zu score shards: %zu users in %zu campaigns with model version %lld "
			"at as_of %s in %.2f s\n  users:     %s\n  campaigns: %s.campaigns.csv\n"
			"  report:    %s.report.txt\n", mg.n_shards, mg.n, n_cs, (long long)m.version,
			time_format_iso8601(mg.sh[0].as_of, iso, sizeof(iso)), now_seconds() - started,
			output, output, output);
	free(users.user_id); /* the strings are the records' */
	scored_release(&s);
	model_data_release(&d);
	if (have_model)
		model_release(&m);
	for (size_t i = 0; i < mg.n; i++)
		free(mg.u[i].user_id);
	free(mg.u);
	for (size_t i = 0; i < mg.n_shards; i++) {
		frame_free_dict(mg.sh[i].apps, mg.sh[i].n_apps);
		frame_free_dict(mg.sh[i].campaigns, mg.sh[i].n_campaigns);
	}
	free(mg.sh);
	return ret;
}

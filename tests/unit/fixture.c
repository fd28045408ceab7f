/*
 * The scaffolding the pipeline's unit tests share (see fixture.h): written
 * once here so that each test file holds only what it checks. Helpers fail
 * the running test on any error, naming the call that failed.
 */
#include "testutil.h"

#include "fixture.h"

#include "ltv/feature_build.h"
#include "ltv/frame.h"
#include "ltv/generate.h"
#include "ltv/model_loader.h"
#include "ltv/stage.h"
#include "ltv/stage_io.h"

void test_set(struct config *cfg, const char *fmt, ...)
{
	struct ltv_err err = { 0 };
	char assignment[4096];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(assignment, sizeof(assignment), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(assignment))
		fail_msg("--set %s: longer than %zu bytes", fmt, sizeof(assignment) - 1);
	if (config_apply_override(cfg, assignment, &err) != 0)
		fail_msg("--set %s: %s", assignment, err.msg);
}

void test_config_init(struct config *cfg, const char *dir, const char *users, const char *events,
		      const char *jobs)
{
	config_init_defaults(cfg);
	test_set(cfg, "input.users=%s/%s", dir, users);
	test_set(cfg, "input.events=%s/%s", dir, events);
	test_set(cfg, "registry.path=%s/models/registry.sqlite", dir);
	test_set(cfg, "run.log_dir=%s/logs", dir);
	test_set(cfg, "ingest.rejects_dir=%s/logs", dir);
	if (jobs)
		test_set(cfg, "run.jobs=%s", jobs);
}

void test_config_small_sample(struct config *cfg)
{
	test_set(cfg, "tiers.tier1_min_users=%s", "100");
	test_set(cfg, "tiers.tier1_min_payers=%s", "3");
	test_set(cfg, "calibrate.min_users=%s", "50");
	test_set(cfg, "select.min_validation_users=%s", "20");
}

struct test_pipeline *test_pipeline_new_param(const struct generate_param *gp, const char *jobs)
{
	struct test_pipeline *p = xcalloc(1, sizeof(*p));
	struct ltv_err err = { 0 };

	p->dir = test_scratch_dir();
	if (!p->dir)
		fail_msg("cannot make a scratch directory");
	p->data = xasprintf("%s/data", p->dir);
	if (generate_sample(gp, p->data, NULL, &err) != 0)
		fail_msg("generate_sample: %s", err.msg);
	test_config_init(&p->cfg, p->dir, "data/users.csv", "data/events.csv", jobs);
	return p;
}

struct test_pipeline *test_pipeline_new(uint64_t n_users, uint64_t seed, const char *jobs)
{
	struct generate_param gp;

	generate_param_init(&gp);
	gp.n_users = n_users;
	gp.seed = seed;
	return test_pipeline_new_param(&gp, jobs);
}

void test_pipeline_free(struct test_pipeline *p)
{
	if (!p)
		return;
	config_release(&p->cfg);
	test_scratch_free(p->dir);
	free(p->data);
	free(p);
}

void test_put_file(const char *dir, const char *name, const char *text)
{
	char *path = test_write_file(dir, name, text);

	if (!path)
		fail_msg("cannot write %s/%s", dir, name);
	free(path);
}

struct test_hand *test_hand_new(const char *users_csv, const char *events_csv,
				const char *users_glob, const char *events_glob)
{
	struct test_hand *h = xcalloc(1, sizeof(*h));

	h->dir = test_scratch_dir();
	if (!h->dir)
		fail_msg("cannot make a scratch directory");
	test_put_file(h->dir, "users.csv", users_csv);
	test_put_file(h->dir, "events.csv", events_csv);
	test_config_init(&h->cfg, h->dir, users_glob, events_glob, "1");
	return h;
}

void test_hand_free(struct test_hand *h)
{
	if (!h)
		return;
	config_release(&h->cfg);
	test_scratch_free(h->dir);
	free(h);
}

char *test_registry_path(const char *dir)
{
	return xasprintf("%s/models/registry.sqlite", dir);
}

void test_features_load(const struct config *cfg, struct frame *out_frame,
			struct artefact_info *out_info, struct encodings *out_enc)
{
	struct registry *reg = NULL;
	struct artefact_info info;
	struct ltv_err err = { 0 };

	if (registry_open_readonly(cfg->registry.path, &reg, &err) != 0)
		fail_msg("open %s: %s", cfg->registry.path, err.msg);
	if (registry_artefact_current(reg, "features", &info, &err) != 0)
		fail_msg("features: %s", err.msg);
	if (frame_load(reg, info.id, NULL, out_frame, &err) != 0)
		fail_msg("frame_load: %s", err.msg);
	if (out_enc && encodings_load(reg, info.id, out_enc, &err) != 0)
		fail_msg("encodings_load: %s", err.msg);
	if (out_info)
		*out_info = info;
	else
		artefact_info_release(&info);
	registry_close(reg);
}

const double *test_column(const struct frame *f, const char *name)
{
	const double *c = frame_column(f, name);

	if (!c)
		fail_msg("frame has no column '%s'", name);
	return c;
}

/* Each row of in to fn; written to out (when not NULL) as fn left it. Rows changed. */
static size_t csv_rows(FILE *in, FILE *out, const char *path, test_csv_row_fn fn, void *ctx)
{
	char line[8192];
	size_t changed = 0;

	for (size_t row = 0; fgets(line, sizeof(line), in); row++) {
		char *f[TEST_CSV_MAX_FIELDS], *p = line;
		size_t n = 0, len = strlen(line);

		if (len && line[len - 1] != '\n' && !feof(in))
			fail_msg("%s:%zu: a line longer than %zu bytes", path, row + 1, sizeof(line) - 1);
		line[strcspn(line, "\r\n")] = '\0';
		f[n++] = p;
		while ((p = strchr(p, ',')) != NULL) {
			if (n == TEST_CSV_MAX_FIELDS)
				fail_msg("%s:%zu: more than %d fields", path, row + 1, TEST_CSV_MAX_FIELDS);
			*p++ = '\0';
			f[n++] = p;
		}
		changed += fn(ctx, row, f, n) != 0;
		for (size_t k = 0; out && k < n; k++)
			fprintf(out, "%s%s", k ? "," : "", f[k]);
		if (out)
			fputc('\n', out);
	}
	return changed;
}

size_t test_csv_rewrite(const char *in_path, const char *out_path, test_csv_row_fn fn, void *ctx)
{
	char *tmp = out_path ? NULL : xasprintf("%s.tmp", in_path);
	FILE *in = fopen(in_path, "r"), *out = fopen(out_path ? out_path : tmp, "w");
	size_t changed;

	if (!in || !out)
		fail_msg("cannot open %s or %s", in_path, out_path ? out_path : tmp);
	changed = csv_rows(in, out, in_path, fn, ctx);
	fclose(in);
	if (fclose(out) != 0)
		fail_msg("cannot write %s", out_path ? out_path : tmp);
	if (tmp && rename(tmp, in_path) != 0)
		fail_msg("cannot replace %s", in_path);
	free(tmp);
	return changed;
}

void test_csv_each(const char *path, test_csv_row_fn fn, void *ctx)
{
	FILE *in = fopen(path, "r");

	if (!in)
		fail_msg("cannot open %s", path);
	csv_rows(in, NULL, path, fn, ctx);
	fclose(in);
}

void test_run(const struct config *cfg, const struct run_options *opts)
{
	struct ltv_err err = { 0 };
	FILE *out = fopen("/dev/null", "w");
	int ret;

	assert_non_null(out);
	ret = runner_run(cfg, opts, out, &err);
	fclose(out);
	if (ret != 0)
		fail_msg("run (only %s, from %s, to %s%s): %s", opts->only ? opts->only : "-",
			 opts->from ? opts->from : "-", opts->to ? opts->to : "-",
			 opts->force ? ", --force" : "", err.msg);
}

void test_run_to(const struct config *cfg, const char *to)
{
	const struct run_options opts = { .as_of = INT64_MIN, .to = to, .command = "test" };

	test_run(cfg, &opts);
}

void test_model_load(const struct config *cfg, const struct method *method, int with_tiers,
		     struct test_model *out)
{
	struct stage_ctx ctx = { 0 };
	struct ltv_err err = { 0 };

	memset(out, 0, sizeof(*out));
	out->method = method;
	if (registry_open(cfg->registry.path, 5, &out->reg, &err) != 0 ||
	    registry_artefact_current(out->reg, "features", &out->features, &err) != 0 ||
	    (with_tiers && registry_artefact_current(out->reg, "tiers", &out->tiers, &err) != 0) ||
	    registry_artefact_current(out->reg, method->name, &out->artefact, &err) != 0)
		fail_msg("registry: %s", err.msg);
	ctx.reg = out->reg;
	ctx.cfg = cfg;
	ctx.as_of = out->artefact.as_of;
	ctx.inputs[ctx.n_inputs++] = &out->features;
	if (with_tiers)
		ctx.inputs[ctx.n_inputs++] = &out->tiers;
	if (model_data_load(&ctx, with_tiers, &out->d) != 0)
		fail_msg("model_data_load: %s", ctx.err.msg);
	if (method->load(out->reg, &out->artefact, cfg, &out->state, &err) != 0)
		fail_msg("method_%s.load: %s", method->name, err.msg);
	out->metrics = cJSON_Parse(out->artefact.metrics);
}

void test_model_release(struct test_model *m)
{
	m->method->free_state(m->state);
	model_data_release(&m->d);
	artefact_info_release(&m->features);
	artefact_info_release(&m->tiers);
	artefact_info_release(&m->artefact);
	registry_close(m->reg);
	cJSON_Delete(m->metrics);
}

void test_model_predict(const struct test_model *m, const size_t *rows, size_t n, int64_t horizon,
			double *out_ltv, double *out_p)
{
	struct ltv_err err = { 0 };

	if (m->method->predict(m->state, &m->d, rows, n, horizon, out_ltv, out_p, &err) != 0)
		fail_msg("method_%s.predict: %s", m->method->name, err.msg);
}

void test_future_at_age(struct test_model *m, int64_t horizon_lo, int64_t horizon, double age,
			void (*hide)(void *state, int on), double sums[3], size_t *out_n)
{
	const double *rev_window = frame_column(&m->d.frame, "rev_window");
	const double *window = frame_column(&m->d.frame, "window_days");
	const double *ltv = model_data_label(&m->d, horizon);
	struct row_split split;
	double *lo, *hi, *pooled;

	model_data_split(&m->d, horizon, 0, &split);
	lo = xmalloc((split.n_train ? split.n_train : 1) * sizeof(double));
	hi = xmalloc((split.n_train ? split.n_train : 1) * sizeof(double));
	pooled = xmalloc((split.n_train ? split.n_train : 1) * sizeof(double));
	test_model_predict(m, split.train, split.n_train, horizon_lo, lo, NULL);
	test_model_predict(m, split.train, split.n_train, horizon, hi, NULL);
	hide(m->state, 1);
	test_model_predict(m, split.train, split.n_train, horizon, pooled, NULL);
	hide(m->state, 0);
	sums[0] = sums[1] = sums[2] = 0;
	*out_n = 0;
	for (size_t i = 0; i < split.n_train; i++) {
		const size_t r = split.train[i];

		if (window[r] < (double)horizon_lo && !(lo[i] <= hi[i]))
			fail_msg("row %zu at age %g: %g at %lld days above %g at %lld", r, window[r],
				 lo[i], (long long)horizon_lo, hi[i], (long long)horizon);
		if (window[r] != age)
			continue;
		sums[0] += ltv[r] - rev_window[r];
		sums[1] += hi[i] - rev_window[r];
		sums[2] += pooled[i] - rev_window[r];
		(*out_n)++;
	}
	row_split_release(&split);
	free(lo);
	free(hi);
	free(pooled);
}

double test_metric(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(item))
		fail_msg("metric '%s' missing or not a number", name);
	return item->valuedouble;
}

int test_same_number(double a, double b)
{
	return fabs(a - b) <= 1e-14 * fmax(fabs(a), fabs(b));
}

size_t *test_all_rows(size_t n)
{
	size_t *rows = xmalloc(n * sizeof(size_t));

	for (size_t i = 0; i < n; i++)
		rows[i] = i;
	return rows;
}

void test_production_load(const struct test_pipeline *fx, struct registry **reg,
			  struct loaded_model *m)
{
	struct ltv_err err = { 0 };
	int64_t version = 0;

	if (registry_open(fx->cfg.registry.path, 5, reg, &err) != 0 ||
	    model_resolve(*reg, "production", &version, &err) != 0 ||
	    model_load(*reg, &fx->cfg, version, m, &err) != 0)
		fail_msg("model: %s", err.msg);
}

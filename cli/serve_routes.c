/*
 * `ltvpipe serve`'s routes: the static table the dispatcher (serve.c) reads,
 * the prediction handlers (one user, a JSON or CSV batch, split by
 * experiment arm) and the service's own (page, health, ready, metrics).
 * Bodies and users are read and checked by serve_users.c, so hostile input
 * gets a 400 that names the field; the routes over the registry's models and
 * aliases are in serve_models.c. Predictions go through serving_predict and
 * predict_user_json like the CLI's.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <csv.h>
#include <microhttpd.h>

#include "ltv/explain.h"
#include "ltv/log.h"
#include "ltv/predict_user.h"
#include "ltv/registry.h"
#include "ltv/serve_internal.h"
#include "ltv/timeutil.h"

/* ---- predictions ---- */

/* About what one user's answer takes (3 horizons), so a batch answer is allocated once. */
#define BATCH_JSON_USER_BYTES 600
#define BATCH_CSV_USER_BYTES 320

/* Serves every row of b with model m; 0, or the error answered in out. */
static int serve_batch(struct serve *s, const struct loaded_model *m, struct user_batch *b,
		       struct served *sv, struct serve_reply *out)
{
	struct ltv_err err = { 0 };
	size_t *rows = xmalloc((b->n ? b->n : 1) * sizeof(size_t));
	int ret;

	for (size_t i = 0; i < b->n; i++)
		rows[i] = i;
	ret = user_batch_finish(b, m, &err);
	if (ret == 0)
		ret = serving_predict(m, &b->d, rows, b->n, sv, &err);
	free(rows);
	if (ret == LTV_EINVAL) { /* a user the model's methods cannot describe */
		serve_reply_error(out, 400, "unservable", NULL, "the model cannot serve these users: %s",
				  err.msg);
		return -1;
	}
	if (ret < 0) {
		serve_reply_error(out, 500, "internal", NULL, "prediction failed: %s", err.msg);
		return -1;
	}
	serve_metrics_predictions(&s->metrics, m->version, sv->method, sv->n);
	return 0;
}

/*
 * Appends row i's answer: the object `ltvpipe predict` prints (with its
 * warnings), then the experiment arm that served it.
 */
static void answer_user(struct serve *s, const struct serve_arm *arm, const struct loaded_model *m,
			const struct user_batch *b, const struct served *sv, size_t i, struct jbuf *out)
{
	char warning[1024];

	predict_user_json(out, m, b, sv, i);
	predict_user_warnings(out, m, b, i, warning, sizeof(warning));
	serve_experiment_answer(s, arm, m, b, sv, i, out);
}

void serve_predict_jobs(struct serve *s, struct predict_job *const *jobs, size_t n)
{
	const struct loaded_model *m = &jobs[0]->model->m;
	struct user_batch own, *b = jobs[0]->user;
	struct serve_reply failed = { 0 };
	struct served sv;
	uint32_t *group = NULL;

	atomic_fetch_add(&s->metrics.batches, 1);
	atomic_fetch_add(&s->metrics.batched_users, n);
	if (n > 1) { /* one alone is served from its own rows: no copy */
		b = &own;
		group = xmalloc(n * sizeof(*group));
		user_batch_init(b, m, n);
		for (size_t i = 0; i < n; i++) {
			user_batch_copy_row(b, i, jobs[i]->user, 0);
			group[i] = (uint32_t)i;
		}
		/* Each request its own: an answer never depends on the requests served with it. */
		b->d.group = group;
	}
	if (serve_batch(s, m, b, &sv, n == 1 ? jobs[0]->out : &failed) == 0) {
		for (size_t i = 0; i < n; i++) {
			struct jbuf text;

			jbuf_init(&text);
			answer_user(s, jobs[i]->arm, m, b, &sv, i, &text);
			jobs[i]->out->version = m->version;
			serve_reply_json(jobs[i]->out, 200, &text);
		}
		served_release(&sv);
	} else if (n > 1) {
		for (size_t i = 0; i < n; i++)
			serve_predict_jobs(s, jobs + i, 1);
	}
	free(failed.body);
	if (n > 1)
		user_batch_release(b);
	free(group);
}

/*
 * The version the user of a single prediction is served with (a reference
 * taken): the request's, or its experiment arm's when the body names a
 * user_id (its type and length are checked with the other fields).
 */
static struct serve_model *route_user(struct serve *s, struct serve_request *rq, const cJSON *root,
				      struct serve_arm *out_arm)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "user_id");
	const cJSON *as_of_item = cJSON_GetObjectItemCaseSensitive(root, "as_of");
	int64_t as_of = (int64_t)time(NULL);
	const char *user_id = cJSON_IsString(id) && *id->valuestring &&
			      strlen(id->valuestring) <= SERVE_USER_ID_MAX ? id->valuestring : NULL;

	if (cJSON_IsString(as_of_item) && time_parse_iso8601(as_of_item->valuestring, &as_of) < 0)
		as_of = (int64_t)time(NULL); /* refused with its field by serve_user_from_json */
	return serve_experiment_route(s, rq->model, user_id, as_of, out_arm);
}

/*
 * POST /v1/predict?explain=1: the same answer with "explain" added, served
 * on its own (never through the batcher): an explanation builds an XGBoost
 * DMatrix per tree model and predicts the user once per method.
 */
static void predict_explained(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	cJSON *root = serve_parse_json(s, rq, out);
	struct ltv_err err = { 0 };
	struct serve_arm arm;
	struct serve_model *use;
	const struct loaded_model *m;
	struct user_batch b;
	struct served sv;
	struct jbuf text;

	if (!root)
		return;
	use = route_user(s, rq, root, &arm);
	m = &use->m;
	user_batch_init(&b, m, 1);
	if (serve_user_from_json(&b, 0, root, "", out) == 0 && serve_batch(s, m, &b, &sv, out) == 0) {
		jbuf_init(&text);
		answer_user(s, &arm, m, &b, &sv, 0, &text);
		out->version = m->version;
		if (predict_user_explain(&text, m, &b, &sv, 0, &err) == 0) {
			serve_reply_json(out, 200, &text);
		} else {
			jbuf_release(&text);
			serve_reply_error(out, 500, "internal", NULL, "%s", err.msg);
		}
		served_release(&sv);
	}
	user_batch_release(&b);
	serve_model_put(use);
	cJSON_Delete(root);
}

static void on_predict(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	const char *explain = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "explain");
	cJSON *root;
	struct user_batch b;
	struct serve_arm arm;
	struct serve_model *use;

	if (explain && strcmp(explain, "0") != 0 && strcmp(explain, "false") != 0) {
		if (strcmp(explain, "1") != 0 && strcmp(explain, "true") != 0) {
			serve_reply_error(out, 400, "invalid_field", "explain",
					  "explain takes 1 or 0 (true or false)");
			return;
		}
		predict_explained(s, rq, out);
		return;
	}
	serve_batcher_arriving(s, 1);
	root = serve_parse_json(s, rq, out);
	if (!root) {
		serve_batcher_arriving(s, -1);
		return;
	}
	use = route_user(s, rq, root, &arm);
	user_batch_init(&b, &use->m, 1);
	if (serve_user_from_json(&b, 0, root, "", out) == 0) {
		struct predict_job job = { .user = &b, .model = use, .out = out,
					   .arm = arm.experiment[0] ? &arm : NULL };

		serve_batcher_predict(s, &job);
	} else {
		serve_batcher_arriving(s, -1);
	}
	user_batch_release(&b);
	serve_model_put(use);
	cJSON_Delete(root);
}

static int batch_size_ok(struct serve *s, size_t n, struct serve_reply *out)
{
	if (n == 0) {
		serve_reply_error(out, 400, "empty_batch", NULL, "the batch has no users; send at least one");
		return 0;
	}
	if (n > (size_t)s->max_batch) {
		serve_reply_error(out, 413, "batch_too_large", NULL,
				  "%zu users; serve.max_batch is %lld: split the batch", n,
				  (long long)s->max_batch);
		return 0;
	}
	return 1;
}

/*
 * A batch request's users split by experiment arm: each user that names a
 * user_id goes to its arm (serve_experiment_route, the salted hash `score`
 * uses), so the batch is served as up to two batches, the served version's
 * (control) and the candidate's, and answered in the order given.
 */
struct arm_split {
	struct serve_model *model[2]; /* control (the served version), candidate */
	struct user_batch b[2];
	struct served sv[2];
	int have[2], served[2];
	size_t n_arm[2];
	struct serve_arm *arms;       /* per user */
	size_t *row_of;               /* per user: its row in b[arms[i].candidate] */
	size_t n;
};

static void split_init(struct arm_split *x, size_t n)
{
	memset(x, 0, sizeof(*x));
	x->n = n;
	x->arms = xcalloc(n ? n : 1, sizeof(*x->arms));
	x->row_of = xcalloc(n ? n : 1, sizeof(*x->row_of));
}

/* User i goes to use (a reference taken), the model of its arm x->arms[i]. */
static void split_take(struct arm_split *x, size_t i, struct serve_model *use)
{
	const int k = x->arms[i].candidate;

	if (!x->model[k])
		x->model[k] = use;
	else
		serve_model_put(use);
	x->row_of[i] = x->n_arm[k]++;
}

/* Routes user i (user_id NULL: none, so the served version). */
static void split_route(struct serve *s, struct serve_request *rq, struct arm_split *x, size_t i,
			const char *user_id, int64_t as_of)
{
	split_take(x, i, serve_experiment_route(s, rq->model, user_id, as_of, &x->arms[i]));
}

/* After every user is routed: the batch of each arm, to fill with split_batch. */
static void split_batches(struct arm_split *x)
{
	for (int k = 0; k < 2; k++)
		if (x->n_arm[k]) {
			user_batch_init(&x->b[k], &x->model[k]->m, x->n_arm[k]);
			x->have[k] = 1;
		}
}

static struct user_batch *split_batch(struct arm_split *x, size_t i)
{
	return &x->b[x->arms[i].candidate];
}

/* Serves both arms; 0, or the error answered in out. */
static int split_serve(struct serve *s, struct arm_split *x, struct serve_reply *out)
{
	for (int k = 0; k < 2; k++)
		if (x->have[k]) {
			if (serve_batch(s, &x->model[k]->m, &x->b[k], &x->sv[k], out) < 0)
				return -1;
			x->served[k] = 1;
		}
	return 0;
}

/* The experiment arm of user i, or NULL when none applies. */
static const struct serve_arm *split_arm(const struct arm_split *x, size_t i)
{
	return x->arms[i].experiment[0] ? &x->arms[i] : NULL;
}

static void split_release(struct arm_split *x)
{
	for (int k = 0; k < 2; k++) {
		if (x->served[k])
			served_release(&x->sv[k]);
		if (x->have[k])
			user_batch_release(&x->b[k]);
		serve_model_put(x->model[k]);
	}
	free(x->arms);
	free(x->row_of);
}

static void batch_json(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	cJSON *root = serve_parse_json(s, rq, out);
	const cJSON *item;
	struct arm_split x;
	size_t n, i = 0;
	int ok = 1;
	struct jbuf text;

	if (!root)
		return;
	if (!cJSON_IsArray(root)) {
		serve_reply_error(out, 400, "invalid_json", NULL,
				  "the body must be a JSON array of users (or CSV with Content-Type text/csv)");
		cJSON_Delete(root);
		return;
	}
	n = (size_t)cJSON_GetArraySize(root);
	if (!batch_size_ok(s, n, out)) {
		cJSON_Delete(root);
		return;
	}
	split_init(&x, n);
	cJSON_ArrayForEach(item, root) {
		if (cJSON_IsObject(item))
			split_take(&x, i, route_user(s, rq, item, &x.arms[i]));
		else
			split_route(s, rq, &x, i, NULL, 0);
		i++;
	}
	split_batches(&x);
	i = 0;
	cJSON_ArrayForEach(item, root) {
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "[%zu].", i);
		if (serve_user_from_json(split_batch(&x, i), x.row_of[i], item, prefix, out) < 0) {
			ok = 0;
			break;
		}
		i++;
	}
	if (ok && split_serve(s, &x, out) == 0) {
		jbuf_init(&text);
		jbuf_reserve(&text, n * BATCH_JSON_USER_BYTES);
		jbuf_addf(&text, "{\"model_version\":%lld,\"n\":%zu,\"predictions\":[",
			  (long long)rq->model->m.version, n);
		for (i = 0; i < n; i++) {
			const int k = x.arms[i].candidate;

			if (i)
				jbuf_puts(&text, ",");
			answer_user(s, split_arm(&x, i), &x.model[k]->m, &x.b[k], &x.sv[k], x.row_of[i],
				    &text);
		}
		jbuf_puts(&text, "]}");
		serve_reply_json(out, 200, &text);
	}
	split_release(&x);
	cJSON_Delete(root);
}

/* CSV records as they are parsed (libcsv callbacks). */
struct csv_rows {
	char ***rows;       /* rows[r][c], owned */
	size_t *n_fields;
	size_t n, cap;
	char **cur;
	size_t n_cur, cap_cur;
	size_t limit;       /* rows beyond this are counted, not kept */
	size_t total;
};

static void csv_on_field(void *data, size_t len, void *ctx)
{
	struct csv_rows *c = ctx;

	if (c->total > c->limit)
		return;
	ARRAY_GROW(c->cur, c->n_cur + 1, c->cap_cur);
	c->cur[c->n_cur++] = xstrndup(data ? data : "", len);
}

static void csv_on_record(int term, void *ctx)
{
	struct csv_rows *c = ctx;

	(void)term;
	if (c->total++ > c->limit)
		return;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->rows = xrealloc(c->rows, c->cap * sizeof(char **));
		c->n_fields = xrealloc(c->n_fields, c->cap * sizeof(size_t));
	}
	c->rows[c->n] = c->cur;
	c->n_fields[c->n++] = c->n_cur;
	c->cur = NULL;
	c->n_cur = c->cap_cur = 0;
}

static void csv_rows_release(struct csv_rows *c)
{
	for (size_t r = 0; r < c->n; r++) {
		for (size_t k = 0; k < c->n_fields[r]; k++)
			free(c->rows[r][k]);
		free(c->rows[r]);
	}
	for (size_t k = 0; k < c->n_cur; k++)
		free(c->cur[k]);
	free(c->cur);
	free(c->rows);
	free(c->n_fields);
}

/*
 * The user_id of CSV line r (column id_col; SIZE_MAX: none) for routing, or
 * NULL when it has none (its length is checked with the other fields), and
 * the time its age is counted at (column as_of_col, else now).
 */
static const char *csv_user_id(const struct csv_rows *c, size_t r, size_t id_col, size_t as_of_col,
			       int64_t *out_as_of)
{
	const char *id = id_col != SIZE_MAX ? c->rows[r][id_col] : NULL;

	*out_as_of = (int64_t)time(NULL);
	if (as_of_col != SIZE_MAX && c->n_fields[r] > as_of_col &&
	    time_parse_iso8601(c->rows[r][as_of_col], out_as_of) < 0)
		*out_as_of = (int64_t)time(NULL); /* refused with its field by serve_user_finish */
	if (!id || c->n_fields[r] <= id_col || !*id || strlen(id) > SERVE_USER_ID_MAX)
		return NULL;
	return id;
}

/*
 * A CSV batch: routed user by user as a JSON batch is (a user_id column);
 * while an experiment applies, the answer has the columns experiment, arm
 * and logged after the prediction's, and model_version is the arm's.
 */
static void batch_csv(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct csv_rows c = { 0 };
	struct csv_parser p;
	struct arm_split x;
	struct jbuf text;
	size_t n = 0, id_col = SIZE_MAX, as_of_col = SIZE_MAX;
	int have_split = 0, ok = 1, any_arm = 0;

	if (serve_body_check(rq->body, rq->len, 0, 0, out) < 0)
		return;
	c.limit = (size_t)s->max_batch + 1;
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0) {
		serve_reply_error(out, 500, "internal", NULL, "cannot start the CSV parser");
		return;
	}
	if (csv_parse(&p, rq->body, rq->len, csv_on_field, csv_on_record, &c) != rq->len ||
	    csv_fini(&p, csv_on_field, csv_on_record, &c) != 0) {
		serve_reply_error(out, 400, "invalid_csv", NULL,
				  "the body is not CSV: %s near record %zu (RFC 4180: quote fields "
				  "holding commas, quotes or newlines)", csv_strerror(csv_error(&p)), c.total + 1);
		goto out;
	}
	if (c.n == 0) {
		serve_reply_error(out, 400, "invalid_csv", NULL,
				  "the body has no header line; send app,campaign,<feature>,... then one line per user");
		goto out;
	}
	n = c.total - 1;
	if (!batch_size_ok(s, n, out))
		goto out;
	if (serve_csv_header(&rq->model->m, c.rows[0], c.n_fields[0], &id_col, &as_of_col, out) < 0)
		goto out;
	split_init(&x, n);
	have_split = 1;
	for (size_t r = 1; r < c.n; r++) {
		int64_t as_of;
		const char *id = csv_user_id(&c, r, id_col, as_of_col, &as_of);

		split_route(s, rq, &x, r - 1, id, as_of);
		any_arm |= split_arm(&x, r - 1) != NULL;
	}
	split_batches(&x);
	for (size_t r = 1; r < c.n && ok; r++) {
		struct serve_user_text ut = { 0 };
		char prefix[40];

		snprintf(prefix, sizeof(prefix), "line %zu: ", r + 1);
		if (c.n_fields[r] != c.n_fields[0]) {
			serve_reply_error(out, 400, "invalid_csv", NULL, "line %zu has %zu fields, the header %zu",
					  r + 1, c.n_fields[r], c.n_fields[0]);
			ok = 0;
			break;
		}
		for (size_t k = 0; k < c.n_fields[0] && ok; k++)
			ok = serve_user_field(split_batch(&x, r - 1), x.row_of[r - 1], c.rows[0][k], c.rows[r][k],
					NULL, &ut, prefix, out) == 0;
		if (ok)
			ok = serve_user_finish(split_batch(&x, r - 1), x.row_of[r - 1], &ut, prefix, out) == 0;
	}
	if (ok && split_serve(s, &x, out) == 0) {
		size_t len;
		char *body;

		jbuf_init(&text);
		jbuf_reserve(&text, n * BATCH_CSV_USER_BYTES);
		predict_user_csv_header(&text, &rq->model->m);
		if (any_arm) { /* the header's CRLF after the experiment's columns */
			text.len -= 2;
			jbuf_puts(&text, ",experiment,arm,logged\r\n");
		}
		for (size_t i = 0; i < n; i++) {
			const int k = x.arms[i].candidate;

			predict_user_csv(&text, &x.model[k]->m, &x.b[k], &x.sv[k], x.row_of[i]);
			if (any_arm)
				serve_experiment_csv(s, split_arm(&x, i), &x.model[k]->m, &x.b[k], &x.sv[k],
						     x.row_of[i], &text);
		}
		body = jbuf_take(&text, &len);
		serve_reply_text(out, 200, "text/csv; charset=utf-8", body, len);
	}
out:
	if (have_split)
		split_release(&x);
	csv_rows_release(&c);
	csv_free(&p);
}

static void on_predict_batch(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	const char *type = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_TYPE);

	if (type && strncasecmp(type, "text/csv", 8) == 0)
		batch_csv(s, rq, out);
	else
		batch_json(s, rq, out);
}

/* ---- service ---- */

static void on_health(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct jbuf b;

	(void)s;
	(void)rq;
	jbuf_init(&b);
	jbuf_puts(&b, "{\"status\":\"ok\"}");
	serve_reply_json(out, 200, &b);
}

static void on_ready(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct serve_model *sm = serve_model_get(s);
	struct jbuf b;

	(void)rq;
	if (!sm) {
		serve_reply_error(out, 503, "not_ready", NULL, "no model version loaded yet ('%s' is not set)",
				  s->model_ref);
		return;
	}
	jbuf_init(&b);
	jbuf_addf(&b, "{\"status\":\"ready\",\"model_version\":%lld,\"model\":", (long long)sm->m.version);
	jbuf_json_str(&b, s->model_ref);
	jbuf_puts(&b, "}");
	out->version = sm->m.version;
	serve_model_put(sm);
	serve_reply_json(out, 200, &b);
}

static void on_metrics(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct jbuf b;
	size_t len;
	char *text;

	(void)rq;
	jbuf_init(&b);
	serve_metrics_write(&s->metrics, &b);
	serve_experiment_metrics(s, &b);
	text = jbuf_take(&b, &len);
	serve_reply_text(out, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static void on_page(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct jbuf b;
	size_t len;
	char *text;

	(void)s;
	(void)rq;
	jbuf_init(&b);
	for (size_t i = 0; serve_page_lines[i]; i++)
		jbuf_puts(&b, serve_page_lines[i]);
	text = jbuf_take(&b, &len);
	serve_reply_text(out, 200, "text/html; charset=utf-8", text, len);
}

const struct route serve_routes[] = {
	{ "GET", "/", on_page, 0, "page" },
	{ "GET", "/health", on_health, 0, "health" },
	{ "GET", "/ready", on_ready, 0, "ready" },
	{ "GET", "/metrics", on_metrics, 0, "metrics" },
	{ "GET", "/v1/models", serve_on_models, 0, "models" },
	{ "GET", "/v1/models/", serve_on_model_show, ROUTE_PARAM, "model" },
	{ "GET", "/v1/monitor", serve_on_monitor, ROUTE_MODEL, "monitor" },
	{ "POST", "/v1/predict", on_predict, ROUTE_BODY | ROUTE_MODEL, "predict" },
	{ "POST", "/v1/predict/batch", on_predict_batch, ROUTE_BODY | ROUTE_CSV | ROUTE_MODEL,
	  "predict_batch" },
	{ "GET", "/v1/aliases/history", serve_on_alias_history, 0, "alias_history" },
	{ "POST", "/v1/aliases/", serve_on_alias_move, ROUTE_BODY | ROUTE_TOKEN | ROUTE_PARAM, "alias_move" },
};
const size_t serve_route_count = sizeof(serve_routes) / sizeof(serve_routes[0]);

/*
 * A/B experiments in `ltvpipe serve` (contract in include/ltv/serve_internal.h,
 * "A/B experiments in serving"): the candidate version loaded beside the
 * served one, routing by the salted hash `score` uses, and the prediction log
 * written by one background thread so that a request never waits for, or
 * fails with, the registry.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ltv/ab_assign.h"
#include "ltv/experiment.h"
#include "ltv/log.h"
#include "ltv/serve_internal.h"

/* ---- the experiment and its candidate ---- */

/* Replaces the candidate (NULL: none) and the experiment it serves, under the lock. */
static void set_candidate(struct serve_experiment *x, const struct experiment_row *row,
			  struct serve_model *candidate)
{
	struct serve_model *old;

	pthread_mutex_lock(&x->lock);
	old = x->candidate;
	x->candidate = candidate;
	x->active = candidate != NULL;
	if (row)
		x->row = *row;
	pthread_mutex_unlock(&x->lock);
	serve_model_put(old);
}

int serve_experiment_refresh(struct serve *s, struct registry *reg, struct ltv_err *err)
{
	struct serve_experiment *x = &s->exp;
	struct serve_model *served = serve_model_get(s), *sm;
	struct experiment_row row;
	struct ltv_err none = { 0 };
	int64_t have = 0;
	int ret = 0;

	if (registry_experiment_active(reg, &row, &none) < 0 || !served ||
	    row.control != served->m.version) {
		/* none runs, or not against what is served: every user gets the served version */
		pthread_mutex_lock(&x->lock);
		have = x->active;
		pthread_mutex_unlock(&x->lock);
		if (have) {
			LOG(LOG_INFO, "experiment '%s' no longer applies: serving every user with model "
			    "version %lld", x->row.name, served ? (long long)served->m.version : 0LL);
			set_candidate(x, NULL, NULL);
		}
		serve_model_put(served);
		return 0;
	}
	serve_model_put(served);
	pthread_mutex_lock(&x->lock);
	if (x->active && strcmp(x->row.name, row.name) == 0 && x->candidate &&
	    x->candidate->m.version == row.candidate)
		have = 1;
	pthread_mutex_unlock(&x->lock);
	if (have)
		return 0;
	sm = xcalloc(1, sizeof(*sm));
	ret = model_load(reg, &s->model_cfg, row.candidate, &sm->m, err);
	if (ret < 0) {
		free(sm);
		return err_prefix(err, "experiment '%s': loading candidate model version %lld",
				  row.name, (long long)row.candidate);
	}
	atomic_init(&sm->refs, 1);
	set_candidate(x, &row, sm);
	LOG(LOG_INFO, "experiment '%s': %.4g of users (by user_id) to candidate model version %lld, "
	    "the others to %lld; %.4g of users logged", row.name, row.share,
	    (long long)row.candidate, (long long)row.control, row.log_rate);
	return 0;
}

struct serve_model *serve_experiment_route(struct serve *s, struct serve_model *served,
					   const char *user_id, int64_t as_of,
					   struct serve_arm *out_arm)
{
	struct serve_experiment *x = &s->exp;
	struct serve_model *use = served;

	memset(out_arm, 0, sizeof(*out_arm));
	pthread_mutex_lock(&x->lock);
	if (user_id && x->active && x->row.control == served->m.version) {
		snprintf(out_arm->experiment, sizeof(out_arm->experiment), "%s", x->row.name);
		snprintf(out_arm->user_id, sizeof(out_arm->user_id), "%s", user_id);
		out_arm->candidate = experiment_serving_arm(&x->row, user_id);
		out_arm->logged = ab_is_logged(x->row.salt, user_id, x->row.log_rate);
		out_arm->as_of = as_of;
		if (out_arm->candidate)
			use = x->candidate;
	}
	atomic_fetch_add(&use->refs, 1);
	pthread_mutex_unlock(&x->lock);
	return use;
}

/* ---- the log ---- */

/* Queues e, or counts it dropped when the queue is full. */
static void log_push(struct serve_experiment *x, const struct serve_log_entry *e)
{
	pthread_mutex_lock(&x->qlock);
	if (x->n_queue < SERVE_LOG_QUEUE_MAX) {
		x->queue[x->n_queue++] = *e;
		atomic_fetch_add(&x->queued, 1);
		if (x->n_queue >= SERVE_LOG_FLUSH_ROWS)
			pthread_cond_signal(&x->qcond);
	} else {
		atomic_fetch_add(&x->dropped, 1);
	}
	pthread_mutex_unlock(&x->qlock);
}

/* Queues row i's prediction for the log when its user is in the sample. */
static void log_prediction(struct serve *s, const struct serve_arm *arm,
			   const struct loaded_model *m, const struct user_batch *b,
			   const struct served *sv, size_t i)
{
	const double *age = frame_column(&b->d.frame, "age_days");
	struct serve_experiment *x = &s->exp;
	struct serve_log_entry e;
	size_t len = 1;
	int64_t horizon;
	int hi;

	if (!arm->logged)
		return;
	memset(&e, 0, sizeof(e));
	snprintf(e.experiment, sizeof(e.experiment), "%s", arm->experiment);
	snprintf(e.p.user_id, sizeof(e.p.user_id), "%s", arm->user_id);
	e.p.is_candidate = arm->candidate;
	e.p.model_version = m->version;
	e.p.as_of = arm->as_of;
	e.p.age_days = age ? age[i] : NAN;
	pthread_mutex_lock(&x->lock);
	horizon = x->row.horizon;
	pthread_mutex_unlock(&x->lock);
	hi = feature_params_horizon_index(&m->params, horizon);
	e.p.ltv = hi >= 0 ? sv->ltv[hi][i] : NAN;
	/* the same text `score` logs: {"H": ltv_H, ...} */
	e.predictions[0] = '{';
	for (size_t h = 0; h < sv->n_horizons && len < sizeof(e.predictions); h++)
		len += (size_t)snprintf(e.predictions + len, sizeof(e.predictions) - len,
					"%s\"%lld\":%.17g", h ? "," : "",
					(long long)m->params.horizons.v[h], sv->ltv[h][i]);
	if (len < sizeof(e.predictions) - 1)
		snprintf(e.predictions + len, sizeof(e.predictions) - len, "}");
	log_push(x, &e);
}

void serve_experiment_answer(struct serve *s, const struct serve_arm *arm,
			     const struct loaded_model *m, const struct user_batch *b,
			     const struct served *sv, size_t i, struct jbuf *out)
{
	if (!arm || !arm->experiment[0])
		return;
	if (out->len > 0 && out->p[out->len - 1] == '}') {
		out->p[--out->len] = '\0'; /* reopen the object */
		jbuf_puts(out, ",\"experiment\":{\"name\":");
		jbuf_json_str(out, arm->experiment);
		jbuf_addf(out, ",\"arm\":\"%s\",\"model_version\":%lld,\"logged\":%s}}",
			  arm->candidate ? "candidate" : "control", (long long)m->version,
			  arm->logged ? "true" : "false");
	}
	log_prediction(s, arm, m, b, sv, i);
}

void serve_experiment_csv(struct serve *s, const struct serve_arm *arm,
			  const struct loaded_model *m, const struct user_batch *b,
			  const struct served *sv, size_t i, struct jbuf *out)
{
	assert(out->len >= 2 && out->p[out->len - 2] == '\r' && out->p[out->len - 1] == '\n');
	out->len -= 2; /* reopen the line */
	out->p[out->len] = '\0';
	if (arm && arm->experiment[0]) {
		jbuf_puts(out, ",");
		jbuf_csv_field(out, arm->experiment);
		jbuf_puts(out, arm->candidate ? ",candidate," : ",control,");
		jbuf_puts(out, arm->logged ? "1\r\n" : "0\r\n");
		log_prediction(s, arm, m, b, sv, i);
	} else {
		jbuf_puts(out, ",,,\r\n");
	}
}

/* Writes entries in one transaction; on failure nothing of them is kept. */
static int write_entries(const struct serve *s, const struct serve_log_entry *entries, size_t n,
		     struct ltv_err *err)
{
	struct registry *reg = NULL;
	int ret = registry_open_existing(s->cfg->registry.path, (int)s->cfg->registry.busy_timeout_s,
					 &reg, err);

	if (ret == 0)
		ret = registry_begin(reg, err);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = registry_experiment_log(reg, entries[i].experiment, &entries[i].p,
					      entries[i].predictions, err);
	if (ret == 0)
		ret = registry_commit(reg, err);
	registry_close(reg); /* rolls back what was not committed */
	return ret;
}

static void *writer_main(void *arg)
{
	struct serve *s = arg;
	struct serve_experiment *x = &s->exp;
	struct serve_log_entry *batch = xmalloc(SERVE_LOG_QUEUE_MAX * sizeof(*batch));
	char last[LTV_ERR_MAX] = "";

	log_set_stage("serve");
	pthread_mutex_lock(&x->qlock);
	for (;;) {
		struct ltv_err err = { 0 };
		struct timespec until;
		size_t n;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += SERVE_LOG_FLUSH_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!x->stopping && x->n_queue < SERVE_LOG_FLUSH_ROWS &&
		       pthread_cond_timedwait(&x->qcond, &x->qlock, &until) != ETIMEDOUT)
			;
		n = x->n_queue;
		memcpy(batch, x->queue, n * sizeof(*batch));
		x->n_queue = 0;
		if (n == 0 && x->stopping)
			break;
		pthread_mutex_unlock(&x->qlock);
		if (n > 0 && write_entries(s, batch, n, &err) < 0) {
			atomic_fetch_add(&x->write_failures, 1);
			atomic_fetch_add(&x->lost, n);
			if (strcmp(err.msg, last) != 0)
				LOG(LOG_WARN, "experiment log: %zu predictions not written (requests are "
				    "unaffected): %s", n, err.msg);
			snprintf(last, sizeof(last), "%s", err.msg);
		} else if (n > 0) {
			atomic_fetch_add(&x->written, n);
			last[0] = '\0';
		}
		pthread_mutex_lock(&x->qlock);
	}
	pthread_mutex_unlock(&x->qlock);
	free(batch);
	return NULL;
}

int serve_experiment_init(struct serve *s, struct ltv_err *err)
{
	struct serve_experiment *x = &s->exp;

	pthread_mutex_init(&x->lock, NULL);
	pthread_mutex_init(&x->qlock, NULL);
	pthread_cond_init(&x->qcond, NULL);
	x->queue = xmalloc(SERVE_LOG_QUEUE_MAX * sizeof(*x->queue));
	if (pthread_create(&x->writer, NULL, writer_main, s) != 0)
		return err_set(err, LTV_EINTERNAL, "cannot start the experiment log thread");
	x->have_writer = 1;
	return 0;
}

void serve_experiment_release(struct serve *s)
{
	struct serve_experiment *x = &s->exp;

	if (x->have_writer) {
		pthread_mutex_lock(&x->qlock);
		x->stopping = 1;
		pthread_cond_signal(&x->qcond);
		pthread_mutex_unlock(&x->qlock);
		pthread_join(x->writer, NULL);
	}
	set_candidate(x, NULL, NULL);
	free(x->queue);
	pthread_mutex_destroy(&x->lock);
	pthread_mutex_destroy(&x->qlock);
	pthread_cond_destroy(&x->qcond);
}

void serve_experiment_metrics(struct serve *s, struct jbuf *out)
{
	struct serve_experiment *x = &s->exp;
	int64_t candidate = 0;
	int active;

	pthread_mutex_lock(&x->lock);
	active = x->active;
	if (active)
		candidate = x->candidate->m.version;
	pthread_mutex_unlock(&x->lock);
	jbuf_puts(out, "# HELP ltvpipe_experiment_candidate_version The candidate version of the "
		  "experiment served (0: none applies).\n# TYPE ltvpipe_experiment_candidate_version "
		  "gauge\n");
	jbuf_addf(out, "ltvpipe_experiment_candidate_version %lld\n", (long long)candidate);
	jbuf_puts(out, "# HELP ltvpipe_experiment_log_total Experiment predictions by what became "
		  "of them: queued, written, dropped (queue full), lost (registry write failed).\n"
		  "# TYPE ltvpipe_experiment_log_total counter\n");
	jbuf_addf(out, "ltvpipe_experiment_log_total{outcome=\"queued\"} %llu\n",
		  (unsigned long long)atomic_load(&x->queued));
	jbuf_addf(out, "ltvpipe_experiment_log_total{outcome=\"written\"} %llu\n",
		  (unsigned long long)atomic_load(&x->written));
	jbuf_addf(out, "ltvpipe_experiment_log_total{outcome=\"dropped\"} %llu\n",
		  (unsigned long long)atomic_load(&x->dropped));
	jbuf_addf(out, "ltvpipe_experiment_log_total{outcome=\"lost\"} %llu\n",
		  (unsigned long long)atomic_load(&x->lost));
	jbuf_puts(out, "# HELP ltvpipe_experiment_log_write_failures_total Registry writes of the "
		  "experiment log that failed.\n# TYPE ltvpipe_experiment_log_write_failures_total "
		  "counter\n");
	jbuf_addf(out, "ltvpipe_experiment_log_write_failures_total %llu\n",
		  (unsigned long long)atomic_load(&x->write_failures));
}

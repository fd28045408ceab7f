/*
 * What the files of `ltvpipe serve` share (serve.c: the HTTP core, the
 * dispatcher and the served model; serve_routes.c: the route table and the
 * prediction and service handlers; serve_models.c: the handlers over the
 * registry's models and aliases; serve_users.c: checking bodies and reading
 * users from them; serve_metrics.c; serve_page.c). Not for other modules.
 */
#ifndef LTV_SERVE_INTERNAL_H
#define LTV_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ltv/jbuf.h"
#include "ltv/model_loader.h"
#include "ltv/predict_user.h"
#include "ltv/registry.h"
#include "ltv/serve.h"

/* One loaded model version, immutable once published; freed by its last user. */
struct serve_model {
	struct loaded_model m;
	atomic_int refs;
	double load_seconds;
};

enum route_flags {
	ROUTE_BODY = 1 << 0,       /* reads a request body (JSON, or CSV with ROUTE_CSV) */
	ROUTE_CSV = 1 << 1,        /* text/csv accepted beside application/json */
	ROUTE_MODEL = 1 << 2,      /* needs the served model: 503 until one is loaded */
	ROUTE_TOKEN = 1 << 3,      /* needs the bearer token */
	ROUTE_PARAM = 1 << 4,      /* path ends in one {param} segment */
};

struct serve_request;
struct serve_reply;
struct serve;

struct route {
	const char *method;
	const char *path;   /* with ROUTE_PARAM, the prefix before the parameter */
	void (*fn)(struct serve *s, struct serve_request *rq, struct serve_reply *out);
	unsigned flags;
	const char *name;   /* metrics label */
};

extern const struct route serve_routes[];
extern const size_t serve_route_count;

/* HTTP statuses the server answers with, in metrics order. */
#define SERVE_STATUS_COUNT 13
extern const int serve_statuses[SERVE_STATUS_COUNT];

#define SERVE_LATENCY_BUCKETS 14
struct serve_metrics {
	/* per route (plus one row for unmatched paths) and status */
	atomic_ullong requests[32][SERVE_STATUS_COUNT];
	atomic_ullong latency_bucket[32][SERVE_LATENCY_BUCKETS + 1]; /* last: +Inf */
	atomic_ullong latency_sum_us[32];
	pthread_mutex_t lock;  /* guards the prediction counts */
	struct { int64_t version; unsigned long long by_method[METHOD_COUNT + 1]; } predictions[16];
	size_t n_versions;
	_Atomic double load_seconds;
	atomic_llong served_version;
	atomic_ullong swaps;
	atomic_ullong batches, batched_users; /* single predictions served together */
};

/*
 * Single predictions that arrive together are served together: one
 * serving_predict for all of them costs the XGBoost calls of one (18 per
 * user with the default horizons, most of it per-call overhead). A request
 * queues its user; the first thread to find no batch running leads: it takes
 * every queued user, predicts them and wakes their threads, which meanwhile
 * wait. A leader that knows of requests still being read (arriving) waits
 * for them up to SERVE_BATCH_WAIT_US; under light load a batch is one user
 * and nothing waits.
 */
/*
 * A/B experiments in serving (cli/serve_experiment.c; include/ltv/experiment.h
 * for the assignment). The watcher reads the active experiment beside the
 * alias; while one runs with the served version as its control, a request
 * that names its user_id goes to the arm the salted hash of that id gives
 * (the same as `score`), the answer names the experiment, the arm and the
 * version, and a log_rate sample of users is logged into the registry table
 * experiment_predictions. Logging never slows or fails a request: entries go
 * to a bounded queue that one writer thread empties in batches, one
 * transaction each; a full queue or a failed write drops entries and counts
 * them in /metrics. One experiment at a time (`models experiment start`
 * refuses a second while one runs).
 */
struct serve_arm {
	char experiment[64];          /* "" when no experiment applies */
	int candidate;                /* 1: the candidate arm */
	int logged;                   /* 1: this user is in the logging sample */
	char user_id[128];
	int64_t as_of;                /* when the user was served (their age is counted at it) */
};

struct serve_log_entry {
	char experiment[64];
	struct experiment_prediction p;
	char predictions[40 * PREDICTOR_MAX_HORIZONS]; /* {"H": ltv, ...} */
};

/* Entries queued at most; beyond, new ones are dropped (counted). */
#define SERVE_LOG_QUEUE_MAX 20000
/* The writer flushes at least this often, and as soon as this many are queued. */
#define SERVE_LOG_FLUSH_MS 200
#define SERVE_LOG_FLUSH_ROWS 512

struct serve_experiment {
	pthread_mutex_t lock;         /* guards row, active and candidate */
	struct experiment_row row;
	int active;                   /* row applies: running, with the served version as control */
	struct serve_model *candidate;

	pthread_mutex_t qlock;        /* guards the queue and stopping */
	pthread_cond_t qcond;
	struct serve_log_entry *queue;
	size_t n_queue;
	int stopping, have_writer;
	pthread_t writer;
	atomic_ullong queued, written, dropped, lost, write_failures;
};

struct predict_job {
	struct user_batch *user;      /* one validated row (served in place when alone) */
	struct serve_model *model;
	const struct serve_arm *arm;  /* NULL: no experiment applies */
	struct serve_reply *out;      /* filled by the thread that predicts */
	int done;
	struct predict_job *next;
};

#define SERVE_BATCH_WAIT_US 300

struct serve_batcher {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct predict_job *head, **tail;
	int leading;
	size_t max;                   /* users per batch at most */
	atomic_int arriving;          /* requests being read that will queue a user */
};

struct serve {
	const struct config *cfg;     /* the command's: serve.*, registry.path */
	struct config model_cfg;      /* what models are loaded with: one thread per request */
	const char *model_ref;        /* version number or alias */
	int follows_alias;
	const char *token;            /* "" when alias moves are refused */
	int64_t max_batch, max_body, max_depth;
	double request_timeout;
	long log_sample;

	pthread_mutex_t lock;         /* guards cur (the pointer swap only) */
	struct serve_model *cur;

	pthread_mutex_t watch_lock;
	pthread_cond_t watch_cond;
	int stopping, poke;

	atomic_ullong n_answered;
	struct serve_metrics metrics;
	struct serve_batcher batcher;
	struct serve_experiment exp;
};

struct serve_request {
	double started;
	const struct route *route;   /* NULL: no route for the path and method */
	int path_known;              /* a route has the path, with another method (405) */
	int route_index;
	char method[16];
	char path[160];              /* printable copy for the log */
	char param[128];             /* the {param} segment */
	struct MHD_Connection *conn;
	char *body;
	size_t len, cap;
	int too_large, timed_out;
	int status;
	int64_t version;             /* the model version that answered, 0 when none */
	struct serve_model *model;   /* ROUTE_MODEL: the version this request is served with */
};

struct serve_reply {
	int status;
	char *body;                  /* owned */
	size_t len;
	const char *content_type;
	int64_t version;             /* 0: no model involved */
	const char *allow;           /* 405: the methods the path takes */
	int www_authenticate;
};

/* The served model with a reference taken, or NULL; give it back with serve_model_put. */
struct serve_model *serve_model_get(struct serve *s);
void serve_model_put(struct serve_model *sm);
/* Wakes the watcher to read the alias now (after an alias move). */
void serve_watch_poke(struct serve *s);

/* The reply is a JSON text taken from b (200 unless status says otherwise). */
void serve_reply_json(struct serve_reply *out, int status, struct jbuf *b);
void serve_reply_text(struct serve_reply *out, int status, const char *content_type, char *body,
		      size_t len);
/*
 * {"error":{"code":code,"message":message,"field":field|null}}. message is
 * formatted; user text inside it should be cut with serve_clip first.
 */
void serve_reply_error(struct serve_reply *out, int status, const char *code, const char *field,
		       const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 5, 6)))
#endif
	;
/* s cut to at most max bytes on a UTF-8 character boundary, into buf (size > max). */
const char *serve_clip(const char *s, size_t max, char *buf, size_t size);

/* The routes over the registry (serve_models.c), named in serve_routes[]. */
void serve_on_models(struct serve *s, struct serve_request *rq, struct serve_reply *out);
void serve_on_alias_history(struct serve *s, struct serve_request *rq, struct serve_reply *out);
void serve_on_monitor(struct serve *s, struct serve_request *rq, struct serve_reply *out);
void serve_on_model_show(struct serve *s, struct serve_request *rq, struct serve_reply *out);
void serve_on_alias_move(struct serve *s, struct serve_request *rq, struct serve_reply *out);

/*
 * Reading users from a body (serve_users.c). Each returns 0, or -1 with a 400
 * answered in out that names the offending byte, field or column.
 */
/* One user's text fields before they are checked together (serve_user_finish). */
struct serve_user_text {
	const char *app, *campaign, *install_time, *as_of, *user_id;
	int has_age;
};

/* Longest user_id accepted, in bytes (the experiment log keeps 127). */
#define SERVE_USER_ID_MAX 127

struct cJSON;
/*
 * 0 when body is text a parser may see: UTF-8, no NUL byte and, for JSON, no
 * escaped NUL (\u0000 would cut a C string short) and nesting at most
 * max_depth.
 */
int serve_body_check(const char *body, size_t len, int json, int64_t max_depth,
		     struct serve_reply *out);
/* The request's parsed JSON body, or NULL with a 400 answered. Caller deletes. */
struct cJSON *serve_parse_json(struct serve *s, struct serve_request *rq, struct serve_reply *out);
/*
 * Sets one named value of user row of b, given as text (CSV) or as the JSON
 * item (text NULL); the text fields are kept in ut for serve_user_finish.
 * prefix starts the field's name in a message ("users[3].", "line 4: ").
 */
int serve_user_field(struct user_batch *b, size_t row, const char *name, const char *text,
		     const struct cJSON *item, struct serve_user_text *ut, const char *prefix,
		     struct serve_reply *out);
/* Checks a user's text fields together: names, and install_time (with as_of) as its age. */
int serve_user_finish(struct user_batch *b, size_t row, const struct serve_user_text *ut,
		      const char *prefix, struct serve_reply *out);
/* Sets user row of b from the JSON object obj (serve_user_field, then serve_user_finish). */
int serve_user_from_json(struct user_batch *b, size_t row, const struct cJSON *obj,
			 const char *prefix, struct serve_reply *out);
/*
 * Checks the n column names of a CSV batch's header against the fields a
 * user of model m may carry, and sets the user_id and as_of columns
 * (untouched when there are none).
 */
int serve_csv_header(const struct loaded_model *m, char *const *names, size_t n,
		     size_t *out_id_col, size_t *out_as_of_col, struct serve_reply *out);

void serve_batcher_init(struct serve_batcher *b, size_t max);
void serve_batcher_release(struct serve_batcher *b);
/* +1 when a single prediction starts being read, -1 when it will not queue after all. */
void serve_batcher_arriving(struct serve *s, int delta);
/*
 * Answers job (job->out) with the users queued beside it; returns once it is
 * answered. Counts the job as arrived (the caller said +1 before reading it).
 */
void serve_batcher_predict(struct serve *s, struct predict_job *job);
/*
 * Serves the n single users of jobs, all of one model version, in one
 * serving_predict, answering each job; a batch a model refuses is retried
 * user by user, so one user's 400 is not another's.
 */
void serve_predict_jobs(struct serve *s, struct predict_job *const *jobs, size_t n);

/* Starts the log writer thread; 0 or LTV_EINTERNAL. */
int serve_experiment_init(struct serve *s, struct ltv_err *err);
/* Writes what is queued, stops the writer, lets the candidate go. */
void serve_experiment_release(struct serve *s);
/*
 * Called by the watcher with its registry snapshot: reads the active
 * experiment and loads, keeps or drops its candidate version. A failure
 * leaves what was there and is the caller's to log.
 */
int serve_experiment_refresh(struct serve *s, struct registry *reg, struct ltv_err *err);
/*
 * The version a request for user_id (NULL: none given) is served with:
 * served itself or the experiment's candidate, with a reference taken (give
 * it back with serve_model_put). *out_arm says which arm, if any.
 */
struct serve_model *serve_experiment_route(struct serve *s, struct serve_model *served,
					   const char *user_id, int64_t as_of,
					   struct serve_arm *out_arm);
/*
 * After row i of b was served by m into sv: appends the experiment and arm
 * to the JSON object just written to out (reopened), and queues the
 * prediction for the log when the user is in the sample. Never blocks on
 * the registry.
 */
void serve_experiment_answer(struct serve *s, const struct serve_arm *arm,
			     const struct loaded_model *m, const struct user_batch *b,
			     const struct served *sv, size_t i, struct jbuf *out);
/*
 * The same for a CSV answer: the line of row i just written to out (ending
 * in CRLF) gets the columns experiment, arm (control or candidate) and
 * logged (1 or 0), empty when no experiment applies to the user (arm NULL
 * or without experiment).
 */
void serve_experiment_csv(struct serve *s, const struct serve_arm *arm,
			  const struct loaded_model *m, const struct user_batch *b,
			  const struct served *sv, size_t i, struct jbuf *out);
/* The experiment's counters for /metrics. */
void serve_experiment_metrics(struct serve *s, struct jbuf *out);

void serve_metrics_init(struct serve_metrics *mt);
void serve_metrics_release(struct serve_metrics *mt);
void serve_metrics_request(struct serve_metrics *mt, int route_index, int status, double seconds);
void serve_metrics_predictions(struct serve_metrics *mt, int64_t version, const int *method,
			       size_t n);
/* Prometheus text exposition format 0.0.4. */
void serve_metrics_write(struct serve_metrics *mt, struct jbuf *out);

/* The page at / (HTML with its script and style inline), line by line, NULL-terminated. */
extern const char *const serve_page_lines[];

#endif

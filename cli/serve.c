/*
 * `ltvpipe serve`'s core (contract in include/ltv/serve.h): libmicrohttpd
 * with its own thread pool, one dispatcher that reads and limits bodies,
 * finds the route, checks content type, model and token, and answers every
 * error as JSON; and the served model version, one pointer swapped by a
 * watcher thread that follows the alias. A request takes a reference on the
 * version it starts with and gives it back when answered, so a swap never
 * frees a model in use and no request sees half of one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "ltv/log.h"
#include "ltv/serve_internal.h"

/* ---- the served model ---- */

struct serve_model *serve_model_get(struct serve *s)
{
	struct serve_model *sm;

	pthread_mutex_lock(&s->lock);
	sm = s->cur;
	if (sm)
		atomic_fetch_add(&sm->refs, 1);
	pthread_mutex_unlock(&s->lock);
	return sm;
}

void serve_model_put(struct serve_model *sm)
{
	if (sm && atomic_fetch_sub(&sm->refs, 1) == 1) {
		model_release(&sm->m);
		free(sm);
	}
}

/* Publishes sm (its reference passes to the server); the old version goes when its last request ends. */
static void publish(struct serve *s, struct serve_model *sm)
{
	struct serve_model *old;

	/*
	 * The gauges change under the same lock as the served version: a request
	 * answered by the new version must never be followed by /metrics naming
	 * the old one (the watcher thread could be preempted in between).
	 */
	pthread_mutex_lock(&s->lock);
	old = s->cur;
	atomic_store(&s->metrics.load_seconds, sm->load_seconds);
	atomic_store(&s->metrics.served_version, sm->m.version);
	if (old)
		atomic_fetch_add(&s->metrics.swaps, 1);
	s->cur = sm;
	pthread_mutex_unlock(&s->lock);
	serve_model_put(old);
}

/*
 * Resolves the served reference and, when it names another version than the
 * one served, loads that version aside and publishes it. LTV_ENOTFOUND when
 * the registry or the alias does not exist yet.
 */
static int refresh(struct serve *s, struct ltv_err *err)
{
	struct registry *reg = NULL;
	struct serve_model *cur, *sm;
	struct ltv_err exp_err = { 0 };
	int64_t version = 0;
	double started = now_seconds();
	int ret = registry_open_readonly(s->cfg->registry.path, &reg, err);

	/* One snapshot: a run committing meanwhile is seen whole or not at all. */
	if (ret == 0)
		ret = registry_read_begin(reg, err);
	if (ret == 0)
		ret = model_resolve(reg, s->model_ref, &version, err);
	if (ret < 0)
		goto out;
	cur = serve_model_get(s);
	if (cur && cur->m.version == version) {
		serve_model_put(cur);
		goto out;
	}
	serve_model_put(cur);
	sm = xcalloc(1, sizeof(*sm));
	ret = model_load(reg, &s->model_cfg, version, &sm->m, err);
	if (ret < 0) {
		free(sm);
		goto out;
	}
	atomic_init(&sm->refs, 1);
	sm->load_seconds = now_seconds() - started;
	publish(s, sm);
	LOG(LOG_INFO, "serving model version %lld (%s), loaded in %.3f s", (long long)version,
	    s->model_ref, sm->load_seconds);
out:
	/* The experiment follows the same snapshot; its failure never stops what is served. */
	if (ret == 0 && serve_experiment_refresh(s, reg, &exp_err) < 0)
		LOG(LOG_WARN, "%s", exp_err.msg);
	registry_close(reg);
	return ret;
}

static void *watch_main(void *arg)
{
	struct serve *s = arg;
	struct ltv_err err = { 0 };
	char last[LTV_ERR_MAX] = "";

	log_set_stage("serve");
	pthread_mutex_lock(&s->watch_lock);
	while (!s->stopping) {
		struct timespec until;
		int64_t ms = s->cfg->serve.watch_ms ? s->cfg->serve.watch_ms : 1000;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ms / 1000;
		until.tv_nsec += (ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!s->stopping && !s->poke &&
		       pthread_cond_timedwait(&s->watch_cond, &s->watch_lock, &until) != ETIMEDOUT)
			;
		if (s->stopping)
			break;
		s->poke = 0;
		pthread_mutex_unlock(&s->watch_lock);
		/* Only one message per distinct failure, not one per poll. */
		if (refresh(s, &err) < 0 && strcmp(err.msg, last) != 0) {
			LOG(LOG_WARN, "still serving what was loaded before: %s", err.msg);
			snprintf(last, sizeof(last), "%s", err.msg);
		} else if (err.code == 0) {
			last[0] = '\0';
		}
		err_clear(&err);
		pthread_mutex_lock(&s->watch_lock);
	}
	pthread_mutex_unlock(&s->watch_lock);
	return NULL;
}

void serve_watch_poke(struct serve *s)
{
	pthread_mutex_lock(&s->watch_lock);
	s->poke = 1;
	pthread_cond_signal(&s->watch_cond);
	pthread_mutex_unlock(&s->watch_lock);
}

/* ---- replies ---- */

void serve_reply_text(struct serve_reply *out, int status, const char *content_type, char *body,
		      size_t len)
{
	free(out->body);
	out->status = status;
	out->content_type = content_type;
	out->body = body;
	out->len = len;
}

void serve_reply_json(struct serve_reply *out, int status, struct jbuf *b)
{
	size_t len;
	char *text;

	jbuf_puts(b, "\n");
	text = jbuf_take(b, &len);
	serve_reply_text(out, status, "application/json", text, len);
}

const char *serve_clip(const char *s, size_t max, char *buf, size_t size)
{
	size_t n = strlen(s);

	if (n > max)
		n = max;
	if (n >= size)
		n = size - 1;
	/* back off continuation bytes so a character is never cut in two */
	if (n < strlen(s))
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

void serve_reply_error(struct serve_reply *out, int status, const char *code, const char *field,
		       const char *fmt, ...)
{
	char msg[1024];
	struct jbuf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jbuf_init(&b);
	jbuf_puts(&b, "{\"error\":{\"code\":");
	jbuf_json_str(&b, code);
	jbuf_puts(&b, ",\"message\":");
	jbuf_json_str(&b, msg);
	jbuf_puts(&b, ",\"field\":");
	if (field)
		jbuf_json_str(&b, field);
	else
		jbuf_puts(&b, "null");
	jbuf_puts(&b, "}}");
	serve_reply_json(out, status, &b);
}

/* ---- the dispatcher ---- */

/* A printable copy of untrusted text for the log: bytes outside ' '..'~' become '?'. */
static void printable(const char *s, char *buf, size_t size)
{
	size_t i = 0;

	for (; s[i] && i + 1 < size; i++)
		buf[i] = (s[i] >= ' ' && s[i] <= '~') ? s[i] : '?';
	buf[i] = '\0';
}

static void find_route(struct serve_request *rq, const char *method, const char *url)
{
	rq->route_index = (int)serve_route_count;
	for (size_t i = 0; i < serve_route_count; i++) {
		const struct route *r = &serve_routes[i];
		size_t plen = strlen(r->path);
		int match;

		if (r->flags & ROUTE_PARAM)
			match = strncmp(url, r->path, plen) == 0 && url[plen] && !strchr(url + plen, '/') &&
				strlen(url + plen) < sizeof(rq->param);
		else
			match = strcmp(url, r->path) == 0;
		if (!match)
			continue;
		rq->path_known = 1;
		if (strcmp(method, r->method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
			rq->route = r;
			rq->route_index = (int)i;
			if (r->flags & ROUTE_PARAM)
				snprintf(rq->param, sizeof(rq->param), "%s", url + plen);
			return;
		}
	}
}

/* The methods routes take for url, for a 405's Allow header. */
static const char *allowed(const char *url)
{
	for (size_t i = 0; i < serve_route_count; i++) {
		const struct route *r = &serve_routes[i];
		size_t plen = strlen(r->path);

		if ((r->flags & ROUTE_PARAM) ? strncmp(url, r->path, plen) == 0 && url[plen]
					     : strcmp(url, r->path) == 0)
			return r->method;
	}
	return "GET";
}

static int media_type_is(const char *header, const char *type)
{
	size_t n = strlen(type);

	return header && strncasecmp(header, type, n) == 0 &&
	       (header[n] == '\0' || header[n] == ';' || header[n] == ' ');
}

/* Compares without stopping at the first difference, so timing says nothing of the token. */
static int token_equal(const char *given, const char *want)
{
	size_t n = strlen(given), m = strlen(want);
	unsigned char diff = (unsigned char)(n != m);

	for (size_t i = 0; i < m; i++)
		diff |= (unsigned char)(want[i] ^ (i < n ? given[i] : 0));
	return diff == 0;
}

static void dispatch(struct serve *s, struct serve_request *rq, const char *url,
		     struct serve_reply *out)
{
	const struct route *r = rq->route;
	char shown[96];

	if (rq->too_large) {
		serve_reply_error(out, 413, "body_too_large", NULL,
				  "the request body is larger than serve.max_body_bytes (%lld bytes); "
				  "send fewer users per request", (long long)s->max_body);
		return;
	}
	if (!r && rq->path_known) {
		out->allow = allowed(url);
		serve_reply_error(out, 405, "method_not_allowed", NULL, "%s %s: use %s", rq->method,
				  serve_clip(rq->path, 64, shown, sizeof(shown)), out->allow);
		return;
	}
	if (!r) {
		serve_reply_error(out, 404, "not_found", NULL,
				  "no route %s %s; see GET / or the README for the API",
				  serve_clip(rq->method, 16, shown, sizeof(shown)),
				  serve_clip(rq->path, 64, shown + 20, sizeof(shown) - 20));
		return;
	}
	if (r->flags & ROUTE_BODY) {
		const char *type = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_CONTENT_TYPE);

		if (!media_type_is(type, "application/json") &&
		    !((r->flags & ROUTE_CSV) && media_type_is(type, "text/csv"))) {
			serve_reply_error(out, 415, "unsupported_media_type", "Content-Type",
					  "Content-Type %s%s%s: send application/json%s",
					  type ? "'" : "", type ? serve_clip(type, 48, shown, sizeof(shown)) : "missing",
					  type ? "'" : "", (r->flags & ROUTE_CSV) ? " or text/csv" : "");
			return;
		}
	}
	if (r->flags & ROUTE_TOKEN) {
		const char *auth = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_AUTHORIZATION);

		if (!*s->token) {
			serve_reply_error(out, 403, "forbidden", NULL,
					  "alias moves over HTTP are off: set serve.token or "
					  "LTVPIPE_SERVE_TOKEN, or use 'ltvpipe models promote'");
			return;
		}
		if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !token_equal(auth + 7, s->token)) {
			out->www_authenticate = 1;
			serve_reply_error(out, 401, "unauthorized", "Authorization",
					  "send 'Authorization: Bearer <serve.token>'");
			return;
		}
	}
	if (r->flags & ROUTE_MODEL) {
		rq->model = serve_model_get(s);
		if (!rq->model) {
			serve_reply_error(out, 503, "not_ready", NULL,
					  "no model version loaded yet: '%s' is not set in the registry; "
					  "train one with 'ltvpipe run'", s->model_ref);
			return;
		}
		out->version = rq->model->m.version;
	}
	if (!rq->body)
		rq->body = xcalloc(1, 1);
	r->fn(s, rq, out);
	serve_model_put(rq->model);
	rq->model = NULL;
}

static enum MHD_Result send_reply(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	int is_head = strcmp(rq->method, "HEAD") == 0;

	(void)s;
	if (!out->body)
		serve_reply_error(out, 500, "internal", NULL, "the handler gave no answer");
	resp = MHD_create_response_from_buffer(is_head ? 0 : out->len, out->body,
					       is_head ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	if (is_head)
		free(out->body);
	out->body = NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, out->content_type);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (out->version) {
		char v[24];

		snprintf(v, sizeof(v), "%lld", (long long)out->version);
		MHD_add_response_header(resp, "X-Model-Version", v);
	}
	if (out->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, out->allow);
	if (out->www_authenticate)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	rq->status = out->status;
	rq->version = out->version;
	ok = MHD_queue_response(rq->conn, (unsigned)out->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result answer(struct serve *s, struct serve_request *rq, const char *url)
{
	struct serve_reply out = { 0 };

	out.content_type = "application/json";
	dispatch(s, rq, url, &out);
	return send_reply(s, rq, &out);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct serve *s = cls;
	struct serve_request *rq = *con_cls;

	(void)version;
	if (!rq) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		int64_t declared;

		rq = xcalloc(1, sizeof(*rq));
		rq->started = now_seconds();
		rq->conn = conn;
		printable(method, rq->method, sizeof(rq->method));
		printable(url, rq->path, sizeof(rq->path));
		find_route(rq, method, url);
		*con_cls = rq;
		/* Refused before the body is read when its declared length is already too much. */
		if (cl && parse_int64(cl, &declared) == 0 && declared > s->max_body) {
			rq->too_large = 1;
			return answer(s, rq, url);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (rq->status)
			return MHD_YES; /* answered already; the rest is discarded */
		if (now_seconds() - rq->started > s->request_timeout) {
			rq->status = 408;
			return MHD_NO; /* a body this slow is not waited for: close */
		}
		if (rq->len + n > (size_t)s->max_body) {
			rq->too_large = 1;
			free(rq->body);
			rq->body = NULL;
			rq->len = 0;
			return answer(s, rq, url);
		}
		if (rq->len + n + 1 > rq->cap) {
			rq->cap = rq->cap ? rq->cap : 4096;
			while (rq->cap < rq->len + n + 1)
				rq->cap *= 2;
			rq->body = xrealloc(rq->body, rq->cap);
		}
		memcpy(rq->body + rq->len, upload_data, n);
		rq->len += n;
		rq->body[rq->len] = '\0';
		return MHD_YES;
	}
	if (rq->status)
		return MHD_YES;
	return answer(s, rq, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode why)
{
	struct serve *s = cls;
	struct serve_request *rq = *con_cls;
	double seconds;
	unsigned long long n;

	(void)conn;
	if (!rq)
		return;
	seconds = now_seconds() - rq->started;
	if (!rq->status)
		rq->status = why == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499;
	serve_metrics_request(&s->metrics, rq->route_index, rq->status, seconds);
	n = atomic_fetch_add(&s->n_answered, 1);
	if (rq->status >= 400 || (s->log_sample > 0 && n % (unsigned long long)s->log_sample == 0)) {
		char v[24] = "-";

		if (rq->version)
			snprintf(v, sizeof(v), "%lld", (long long)rq->version);
		log_set_stage("serve");
		LOG(rq->status >= 500 ? LOG_WARN : LOG_INFO, "%s %s %d %.3f ms model=%s", rq->method,
		    rq->path, rq->status, seconds * 1e3, v);
	}
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

/*
 * Answers go out as headers then body; with Nagle's algorithm on, the body
 * waits for the client's delayed ACK (40 ms on Linux) on a keep-alive
 * connection: measured 300 predictions/s with p99 42 ms before, see README.
 */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode why)
{
	const union MHD_ConnectionInfo *info;
	int one = 1;

	(void)cls;
	(void)socket_context;
	if (why != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info)
		setsockopt(info->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	LOG(LOG_DEBUG, "libmicrohttpd: %s", msg);
}

static int hex_value(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * Decodes %XX in the path in place, except %00: a NUL would cut the path
 * short ("/%00" answered as "/"), so it stays as text and matches no route.
 */
static size_t unescape_path(void *cls, struct MHD_Connection *conn, char *s)
{
	char *w = s;

	(void)cls;
	(void)conn;
	for (const char *r = s; *r; r++) {
		int hi, lo;

		if (*r == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0 && (hi | lo)) {
			*w++ = (char)(hi * 16 + lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* ---- start and stop ---- */

static int loopback_address(const char *bind, struct sockaddr_storage *out, socklen_t *out_len,
			    int *out_v6, struct ltv_err *err)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, bind, &in4->sin_addr) == 1) {
		if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127)
			goto refuse;
		in4->sin_family = AF_INET;
		*out_len = sizeof(*in4);
		*out_v6 = 0;
		return 0;
	}
	if (inet_pton(AF_INET6, bind, &in6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			goto refuse;
		in6->sin6_family = AF_INET6;
		*out_len = sizeof(*in6);
		*out_v6 = 1;
		return 0;
	}
	return err_set(err, LTV_EUSAGE, "serve.bind '%s' is not an IP address; use 127.0.0.1 or ::1", bind);
refuse:
	return err_set(err, LTV_EUSAGE,
		       "serve.bind '%s' is not a loopback address: ltvpipe serve listens on 127.0.0.1 or "
		       "::1 only; put a reverse proxy in front of it to serve other hosts (README \"Serving\")",
		       bind);
}

static void set_port(struct sockaddr_storage *addr, int v6, uint16_t port)
{
	if (v6)
		((struct sockaddr_in6 *)addr)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)addr)->sin_port = htons(port);
}

/* serve.threads, 0 meaning one per core but at least 2: a long batch request holds its thread. */
static int64_t serve_threads(const struct config *cfg)
{
	long cores;

	if (cfg->serve.threads > 0)
		return cfg->serve.threads;
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	return cores > 2 ? cores : 2;
}

int serve_run(const struct config *cfg, const struct serve_options *opts, struct ltv_err *err)
{
	struct serve *s = xcalloc(1, sizeof(*s));
	struct MHD_Daemon *d = NULL;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	pthread_t watcher;
	sigset_t stop_signals;
	const union MHD_DaemonInfo *info;
	const char *bind = opts->bind ? opts->bind : cfg->serve.bind;
	const char *env_token = getenv("LTVPIPE_SERVE_TOKEN");
	int64_t port = opts->port >= 0 ? opts->port : cfg->serve.port;
	int64_t threads = opts->threads > 0 ? opts->threads : serve_threads(cfg);
	char run_id[64], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	int v6 = 0, have_watcher = 0, sig, ret;

	s->cfg = cfg;
	config_copy(&s->model_cfg, cfg);
	s->model_cfg.run.jobs = 1;
	s->model_ref = opts->model ? opts->model : cfg->serve.model;
	s->follows_alias = strcmp(s->model_ref, "production") == 0 || strcmp(s->model_ref, "candidate") == 0;
	s->token = env_token && *env_token ? env_token : cfg->serve.token;
	s->max_batch = cfg->serve.max_batch;
	s->max_body = cfg->serve.max_body_bytes;
	s->max_depth = cfg->serve.json_max_depth;
	s->request_timeout = (double)cfg->serve.request_timeout_s;
	s->log_sample = (long)cfg->serve.log_sample;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->watch_lock, NULL);
	pthread_cond_init(&s->watch_cond, NULL);
	serve_metrics_init(&s->metrics);
	serve_batcher_init(&s->batcher, 256);
	ret = serve_experiment_init(s, err);
	if (ret < 0)
		goto out;

	ret = loopback_address(bind, &addr, &addr_len, &v6, err);
	if (ret < 0)
		goto out;
	if (port < 0 || port > 65535) {
		ret = err_set(err, LTV_EUSAGE, "--port %lld: give 1..65535, or 0 for a free port", (long long)port);
		goto out;
	}
	if (threads < 1 || threads > 256) {
		ret = err_set(err, LTV_EUSAGE, "--threads %lld: give 1..256", (long long)threads);
		goto out;
	}
	set_port(&addr, v6, (uint16_t)port);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	snprintf(run_id, sizeof(run_id), "serve-%s-%ld", stamp, (long)getpid());
	if (log_open_run(cfg->run.log_dir, run_id, err) < 0) {
		LOG(LOG_WARN, "%s; logging to the console only", err->msg);
		err_clear(err);
	}
	log_set_stage("serve");
	ret = refresh(s, err);
	if (ret == LTV_ENOTFOUND && s->follows_alias) {
		LOG(LOG_WARN, "no model to serve yet (%s); /ready answers 503 until '%s' is set",
		    err->msg, s->model_ref);
		err_clear(err);
		ret = 0;
	}
	if (ret < 0)
		goto out;

	/* The signals that stop the server are taken by this thread alone (sigwait). */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	sigdelset(&stop_signals, SIGPIPE);

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
				     (v6 ? MHD_USE_IPv6 : 0),
			     (uint16_t)port, NULL, NULL, on_request, s,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
			     MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->serve.max_connections,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->serve.connection_timeout_s,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
			     MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
			     MHD_OPTION_UNESCAPE_CALLBACK, unescape_path, NULL,
			     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			     MHD_OPTION_END);
	if (!d) {
		ret = err_set(err, LTV_EIO, "cannot listen on %s port %lld: %s (is another server on it?)",
			      bind, (long long)port, strerror(errno));
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (info)
		port = info->port;
	/* A fixed version is watched too: an experiment may start against it. */
	if (cfg->serve.watch_ms > 0 && (s->follows_alias || s->cur)) {
		if (pthread_create(&watcher, NULL, watch_main, s) != 0) {
			ret = err_set(err, LTV_EINTERNAL, "cannot start the alias watcher thread");
			goto out;
		}
		have_watcher = 1;
	} else if (!s->cur) {
		ret = err_set(err, LTV_ENOTFOUND, "no model to serve and serve.watch_ms is 0");
		goto out;
	}
	printf("listening on http://%s%s%s:%lld/ (model %s, %lld threads)\n", v6 ? "[" : "", bind,
	       v6 ? "]" : "", (long long)port, s->model_ref, (long long)threads);
	fflush(stdout);
	LOG(LOG_INFO, "listening on %s port %lld with %lld threads, model %s", bind, (long long)port,
	    (long long)threads, s->model_ref);
	sigwait(&stop_signals, &sig);
	LOG(LOG_INFO, "stopping on signal %d: finishing the requests in flight", sig);
out:
	if (d) {
		MHD_quiesce_daemon(d);
		MHD_stop_daemon(d);
	}
	if (have_watcher) {
		pthread_mutex_lock(&s->watch_lock);
		s->stopping = 1;
		pthread_cond_signal(&s->watch_cond);
		pthread_mutex_unlock(&s->watch_lock);
		pthread_join(watcher, NULL);
	}
	serve_experiment_release(s);
	serve_model_put(s->cur);
	serve_metrics_release(&s->metrics);
	serve_batcher_release(&s->batcher);
	config_release(&s->model_cfg);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->watch_lock);
	pthread_cond_destroy(&s->watch_cond);
	free(s);
	log_close_run();
	return ret;
}

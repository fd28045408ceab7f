/*
 * `ltvpipe serve`'s counters and their Prometheus text exposition (format
 * 0.0.4): requests by route and status, a latency histogram per route,
 * predictions by method and model version, the served version, its load
 * time and the number of swaps. Counters are atomics, so a request adds to
 * them without a lock; only the per-version prediction table takes one.
 */
#include <stdio.h>
#include <string.h>

#include "ltv/serve_internal.h"

const int serve_statuses[SERVE_STATUS_COUNT] = {
	200, 400, 401, 403, 404, 405, 408, 409, 413, 415, 499, 500, 503,
};

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double latency_bounds[SERVE_LATENCY_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};

void serve_metrics_init(struct serve_metrics *mt)
{
	memset(mt, 0, sizeof(*mt));
	pthread_mutex_init(&mt->lock, NULL);
}

void serve_metrics_release(struct serve_metrics *mt)
{
	pthread_mutex_destroy(&mt->lock);
}

static int status_index(int status)
{
	for (int k = 0; k < SERVE_STATUS_COUNT; k++)
		if (serve_statuses[k] == status)
			return k;
	return SERVE_STATUS_COUNT - 2; /* counted as 500: a status not in the list is a bug */
}

void serve_metrics_request(struct serve_metrics *mt, int route_index, int status, double seconds)
{
	int k = 0;

	while (k < SERVE_LATENCY_BUCKETS && seconds > latency_bounds[k])
		k++;
	atomic_fetch_add(&mt->requests[route_index][status_index(status)], 1);
	atomic_fetch_add(&mt->latency_bucket[route_index][k], 1);
	atomic_fetch_add(&mt->latency_sum_us[route_index], (unsigned long long)(seconds * 1e6));
}

void serve_metrics_predictions(struct serve_metrics *mt, int64_t version, const int *method,
			       size_t n)
{
	size_t v;

	pthread_mutex_lock(&mt->lock);
	for (v = 0; v < mt->n_versions && mt->predictions[v].version != version; v++)
		;
	if (v == mt->n_versions) {
		const size_t cap = sizeof(mt->predictions) / sizeof(mt->predictions[0]);

		if (mt->n_versions == cap) { /* forget the oldest: a server sees few versions */
			memmove(&mt->predictions[0], &mt->predictions[1], (cap - 1) * sizeof(mt->predictions[0]));
			mt->n_versions--;
		}
		v = mt->n_versions++;
		memset(&mt->predictions[v], 0, sizeof(mt->predictions[v]));
		mt->predictions[v].version = version;
	}
	for (size_t i = 0; i < n; i++)
		mt->predictions[v].by_method[method[i] < 0 ? METHOD_COUNT : method[i]]++;
	pthread_mutex_unlock(&mt->lock);
}

void serve_metrics_write(struct serve_metrics *mt, struct jbuf *out)
{
	const size_t n_rows = serve_route_count + 1;

	jbuf_puts(out, "# HELP ltvpipe_http_requests_total Requests answered, by route and status.\n"
		       "# TYPE ltvpipe_http_requests_total counter\n");
	for (size_t r = 0; r < n_rows; r++)
		for (int k = 0; k < SERVE_STATUS_COUNT; k++) {
			unsigned long long c = atomic_load(&mt->requests[r][k]);

			if (c)
				jbuf_addf(out, "ltvpipe_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
					  r < serve_route_count ? serve_routes[r].name : "unmatched",
					  serve_statuses[k], c);
		}
	jbuf_puts(out, "# HELP ltvpipe_http_request_duration_seconds Time from the request line to the "
		       "answer sent, by route.\n"
		       "# TYPE ltvpipe_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r < n_rows; r++) {
		const char *name = r < serve_route_count ? serve_routes[r].name : "unmatched";
		unsigned long long cum = 0;

		for (int k = 0; k <= SERVE_LATENCY_BUCKETS; k++) {
			cum += atomic_load(&mt->latency_bucket[r][k]);
			if (k < SERVE_LATENCY_BUCKETS)
				jbuf_addf(out, "ltvpipe_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
					  name, latency_bounds[k], cum);
			else
				jbuf_addf(out, "ltvpipe_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
					  name, cum);
		}
		jbuf_addf(out, "ltvpipe_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", name,
			  (double)atomic_load(&mt->latency_sum_us[r]) / 1e6);
		jbuf_addf(out, "ltvpipe_http_request_duration_seconds_count{route=\"%s\"} %llu\n", name, cum);
	}
	jbuf_puts(out, "# HELP ltvpipe_predictions_total Users predicted, by the method that served "
		       "the target horizon and the model version.\n"
		       "# TYPE ltvpipe_predictions_total counter\n");
	pthread_mutex_lock(&mt->lock);
	for (size_t v = 0; v < mt->n_versions; v++)
		for (int m = 0; m <= METHOD_COUNT; m++)
			if (mt->predictions[v].by_method[m])
				jbuf_addf(out, "ltvpipe_predictions_total{method=\"%s\",model_version=\"%lld\"} %llu\n",
					  method_name(m == METHOD_COUNT ? METHOD_GLOBAL_MEDIAN : m),
					  (long long)mt->predictions[v].version, mt->predictions[v].by_method[m]);
	pthread_mutex_unlock(&mt->lock);
	jbuf_addf(out, "# HELP ltvpipe_model_version The model version served (0: none yet).\n"
		       "# TYPE ltvpipe_model_version gauge\nltvpipe_model_version %lld\n",
		  (long long)atomic_load(&mt->served_version));
	jbuf_addf(out, "# HELP ltvpipe_model_load_seconds Time the served version took to load.\n"
		       "# TYPE ltvpipe_model_load_seconds gauge\nltvpipe_model_load_seconds %.6f\n",
		  atomic_load(&mt->load_seconds));
	jbuf_addf(out, "# HELP ltvpipe_model_swaps_total Versions swapped in after the first.\n"
		       "# TYPE ltvpipe_model_swaps_total counter\nltvpipe_model_swaps_total %llu\n",
		  atomic_load(&mt->swaps));
	jbuf_addf(out, "# HELP ltvpipe_predict_batches_total Batches the single predictions that arrived "
		       "together were served in (users in them: ltvpipe_predict_batched_users_total).\n"
		       "# TYPE ltvpipe_predict_batches_total counter\nltvpipe_predict_batches_total %llu\n"
		       "# TYPE ltvpipe_predict_batched_users_total counter\nltvpipe_predict_batched_users_total %llu\n",
		  atomic_load(&mt->batches), atomic_load(&mt->batched_users));
}

/*
 * `ltvpipe serve`: the registry's model versions over HTTP on a loopback
 * address — a JSON API under /v1, Prometheus metrics, a page at / — with
 * the served alias followed without a restart (hot swap). Reads the
 * registry; writes to it only to move an alias (POST /v1/aliases/{alias}).
 */
#ifndef LTV_SERVE_H
#define LTV_SERVE_H

#include <stdint.h>

#include "ltv/common.h"
#include "ltv/config.h"

struct serve_options {
	const char *model;   /* NULL: serve.model */
	const char *bind;    /* NULL: serve.bind */
	int64_t port;        /* -1: serve.port; 0: a free port, printed at start */
	int64_t threads;     /* 0: serve.threads */
};

/*
 * Serves until SIGINT or SIGTERM, then finishes the requests in flight and
 * returns 0. Prints "listening on http://ADDR:PORT/" to stdout once it
 * accepts connections. Fails before listening (LTV_EUSAGE) on a non-loopback
 * address and (LTV_ENOTFOUND, ...) when the model cannot be loaded, except
 * that a registry without the alias yet is waited for (/ready answers 503).
 */
int serve_run(const struct config *cfg, const struct serve_options *opts, struct ltv_err *err);

#endif

/*
 * `ltvpipe score`: predicts ltv per horizon for every user not yet mature at
 * the target horizon, with the model version it is asked for (contract in
 * include/ltv/score.h). The model is used with the configuration its
 * artefacts were built with and the encodings its features stage learnt;
 * data come from the registry, or from files read into memory by ingest's
 * parser (include/ltv/ingest_parse.h), never into any registry.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "ltv/experiment.h"
#include "ltv/jbuf.h"
#include "ltv/block_writer.h"
#include "ltv/hash.h"
#include "ltv/csvread.h"
#include "ltv/data_source.h"
#include "ltv/model_loader.h"
#include "ltv/output_set.h"
#include "ltv/ingest_parse.h"
#include "ltv/input_files.h"
#include "ltv/log.h"
#include "ltv/scratch_dir.h"
#include "ltv/score.h"
#include "ltv/score_internal.h"
#include "ltv/score_html.h"
#include "ltv/serving.h"
#include "ltv/strmap.h"
#include "ltv/text_ahead.h"
#include "ltv/timeutil.h"
#include "ltv/user_lookup.h"

void scored_release(struct scored *s)
{
	free(s->rows);
	served_release(&s->sv);
	memset(s, 0, sizeof(*s));
}

/* The longest horizon at which row i's value is observed rather than predicted, or -1. */
static int64_t observed_up_to(const struct feature_params *fp, const struct scored *s, size_t i)
{
	int64_t up_to = -1;

	for (size_t h = 0; h < s->sv.n_horizons; h++)
		if (s->sv.observed[h][i])
			up_to = fp->horizons.v[h];
	return up_to;
}

/* ",v" with 4 decimals, or "," alone for NaN (an empty field). */
static void write_number(FILE *f, double v)
{
	if (isnan(v))
		fputc(',', f);
	else
		fprintf(f, ",%.4f", v);
}

/* As write_number, into a line being built. */
static void put_number(struct jbuf *b, double v)
{
	jbuf_add(b, ",", 1);
	if (!isnan(v))
		jbuf_fixed(b, v, 4);
}

/* The length of s, or (size_t)-1 when it needs quotes (csv_field_needs_quotes), in one pass. */
static size_t plain_field_len(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (s[n] == ',' || s[n] == '"' || s[n] == '\r' || s[n] == '\n')
			return (size_t)-1;
	if (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		return (size_t)-1;
	return n;
}

/* A field as csv_write_field writes it. */
static void put_field(struct jbuf *b, const char *s)
{
	const size_t n = plain_field_len(s);

	if (n != (size_t)-1) {
		jbuf_add(b, s, n);
		return;
	}
	jbuf_add(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"')
			jbuf_add(b, "\"", 1);
		jbuf_add(b, s, 1);
	}
	jbuf_add(b, "\"", 1);
}

/*
 * In [s, s + n): whether a byte needs quotes in a field (',', '"', CR, LF),
 * and the count of NULs, 16 bytes a step.
 */
static int span_plain(const char *s, size_t n, size_t *out_nuls)
{
	size_t i = 0, nuls = 0;
	unsigned bad = 0;

#if defined(__SSE2__) && defined(__x86_64__)
	/* NULs summed by lane (psadbw), not by a popcount: the build's x86-64 has none but libgcc's */
	__m128i nul_sum = _mm_setzero_si128();

	for (; i + 16 <= n; i += 16) {
		const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		const __m128i q = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')),
							     _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))),
					       _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
							    _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));

		bad |= (unsigned)_mm_movemask_epi8(q);
		nul_sum = _mm_add_epi64(nul_sum, _mm_sad_epu8(_mm_and_si128(_mm_cmpeq_epi8(v, _mm_setzero_si128()),
									     _mm_set1_epi8(1)),
							     _mm_setzero_si128()));
	}
	nuls = (size_t)_mm_cvtsi128_si64(nul_sum) + (size_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(nul_sum, nul_sum));
#endif
	for (; i < n; i++) {
		bad |= s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
		nuls += s[i] == '\0';
	}
	*out_nuls = nuls;
	return !bad;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * The n fields put_field by put_field with a comma between them. A reader's
 * plain line leaves its fields one after another, each ended by a NUL where
 * its delimiter was, and none needing quotes: the row is then that text in
 * one copy, its NULs made commas. In --users F's file (1,000,000 rows of 7
 * fields) the field by field scan was 1.2% of score's CPU samples and
 * put_field's copies 0.5% (perf); the writer's samples went from 58-70 to
 * 25-43 a run (bench/score_symbols_ab.sh, 6 pairs).
 */
void score_put_row_fields(struct jbuf *b, char *const *fields, size_t n)
{
	const char *from;
	size_t len, nuls, at;

	if (n == 0)
		return;
	from = fields[0];
	/* one after another: field k - 1 ends where a NUL stands just before field k */
	for (size_t k = 1; k < n; k++)
		if ((uintptr_t)fields[k] <= (uintptr_t)fields[k - 1] || fields[k][-1] != '\0')
			goto by_field;
	len = (size_t)((uintptr_t)fields[n - 1] - (uintptr_t)from) + strlen(fields[n - 1]);
	/* ... with no NUL but those n - 1 between them (a gap would hold one) */
	if (!span_plain(from, len, &nuls) || nuls != n - 1)
		goto by_field;
	for (size_t k = 0; k < n; k++) {
		const char *f = fields[k];
		const size_t fl = k + 1 < n ? (size_t)((uintptr_t)fields[k + 1] - (uintptr_t)f) - 1
					    : (size_t)((uintptr_t)from + len - (uintptr_t)f);

		if (fl && (is_blank(f[0]) || is_blank(f[fl - 1])))
			goto by_field;
	}
	at = b->len;
	jbuf_add(b, from, len);
	for (size_t k = 1; k < n; k++)
		b->p[at + (size_t)((uintptr_t)fields[k] - (uintptr_t)from) - 1] = ',';
	return;
by_field:
	for (size_t k = 0; k < n; k++) {
		if (k)
			jbuf_add(b, ",", 1);
		put_field(b, fields[k]);
	}
}

/* YYYY-MM-DD of a time, as time_format_date writes it (cached: installs share days). */
static void put_date(struct jbuf *b, int64_t t, int64_t *day, char *text)
{
	int64_t d = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);

	if (d != *day) {
		time_format_date(t, text, 16);
		*day = d;
	}
	jbuf_puts(b, text);
}

/* The frame's columns a users line reads, looked up once. */
struct row_columns {
	const double *uid, *age, *install, *cost, *app, *campaign;
	int ti; /* the target horizon's index */
};

/* The frame's columns a row reads, and the target horizon's index. */
static struct row_columns row_columns_of(const struct loaded_model *m, const struct model_data *d)
{
	return (struct row_columns){
		frame_column(&d->frame, "uid"), frame_column(&d->frame, "age_days"),
		frame_column(&d->frame, "install_time"), frame_column(&d->frame, "cost"),
		frame_column(&d->frame, "app_code"), frame_column(&d->frame, "campaign_code"),
		feature_params_horizon_index(&m->params, m->params.target_horizon),
	};
}

/*
 * Scored user i's prediction fields, each after a comma, in the order of
 * prediction_names: the one row writer of both users files (the standard
 * one and --users F's own). day and date cache the install date's text.
 */
static void put_prediction_fields(struct jbuf *b, const struct loaded_model *m,
				  const struct model_data *d, const struct row_columns *c,
				  const struct scored *s, size_t i, const struct provenance *pv,
				  int64_t *day, char *date)
{
	const struct feature_params *fp = &m->params;
	const int ti = c->ti;
	const size_t r = s->rows[i];
	const double *age = c->age, *install = c->install, *cost = c->cost;
	const double target_ltv = s->sv.ltv[ti][i];
	const int64_t up_to = observed_up_to(fp, s, i);

	jbuf_add(b, ",", 1);
	put_date(b, (int64_t)install[r], day, date);
	jbuf_add(b, ",", 1);
	jbuf_fixed(b, age[r], 0);
	jbuf_add(b, ",", 1);
	jbuf_int(b, (int)d->tier[r]);
	jbuf_add(b, ",", 1);
	jbuf_puts(b, method_name(s->sv.method[i]));
	if (s->sv.fallback[i])
		jbuf_puts(b, " (fallback)");
	jbuf_add(b, ",", 1);
	if (!isnan(s->sv.p_payer[i]))
		jbuf_fixed(b, s->sv.p_payer[i], 4);
	for (size_t h = 0; h < fp->horizons.n; h++) {
		jbuf_add(b, ",", 1);
		jbuf_fixed(b, s->sv.ltv[h][i], 4);
	}
	jbuf_add(b, ",", 1);
	if (up_to >= 0)
		jbuf_int(b, (long long)up_to);
	put_number(b, s->sv.raw[i]);
	jbuf_add(b, ",", 1);
	jbuf_puts(b, predictor_segment(&m->pred, target_ltv));
	put_number(b, cost[r]);
	jbuf_add(b, ",", 1);
	if (!isnan(cost[r]) && cost[r] > 0)
		jbuf_fixed(b, target_ltv / cost[r], 4);
	put_number(b, s->sv.ltv_lo[ti][i]);
	put_number(b, s->sv.ltv_hi[ti][i]);
	put_number(b, s->sv.p_alive[i]);
	put_number(b, s->sv.p_purchase_30d[i]);
	jbuf_add(b, ",", 1);
	jbuf_puts(b, serving_risk_segment(s->sv.p_alive[i]));
	jbuf_add(b, ",", 1);
	jbuf_int(b, (long long)pv->version);
	jbuf_add(b, ",", 1);
	jbuf_puts(b, pv->as_of);
	jbuf_add(b, ",", 1);
	jbuf_puts(b, pv->scored_at);
}

/*
 * What scored user i's prediction fields need, and the install-date cache of
 * the thread that writes them: the fields are made on two threads
 * (include/ltv/text_ahead.h), each with a context of its own.
 */
struct fields_ctx {
	const struct loaded_model *m;
	const struct model_data *d;
	const struct row_columns *c;
	const struct scored *s;
	const struct provenance *pv;
	int64_t day;
	char date[16];
};

static struct fields_ctx fields_ctx_of(const struct loaded_model *m, const struct model_data *d,
				       const struct row_columns *c, const struct scored *s,
				       const struct provenance *pv)
{
	return (struct fields_ctx){ .m = m, .d = d, .c = c, .s = s, .pv = pv, .day = INT64_MIN };
}

/* put_prediction_fields as a text_ahead_fn. */
static void put_fields_of(void *arg, struct jbuf *b, size_t i)
{
	struct fields_ctx *f = arg;

	put_prediction_fields(b, f->m, f->d, f->c, f->s, i, f->pv, &f->day, f->date);
}

/* Scored user i's prediction fields: made ahead on the other thread, or here. */
static void put_fields_ahead(struct text_ahead *t, struct fields_ctx *mine, struct jbuf *b, size_t i)
{
	const char *p;
	size_t len;

	if (text_ahead_get(t, i, &p, &len))
		jbuf_add(b, p, len);
	else
		put_fields_of(mine, b, i);
}

/* A line of the standard users file: the user's ids, then the predictions. */
static void write_user_row(struct jbuf *b, const struct model_data *d, const struct row_columns *c,
			   const struct user_table *users, const struct scored *s, size_t i,
			   struct text_ahead *t, struct fields_ctx *mine)
{
	const size_t r = s->rows[i];

	put_field(b, users->user_id[(size_t)c->uid[r] - 1]);
	jbuf_add(b, ",", 1);
	put_field(b, d->apps[(size_t)c->app[r]]);
	jbuf_add(b, ",", 1);
	put_field(b, d->campaigns[(size_t)c->campaign[r]]);
	put_fields_ahead(t, mine, b, i);
	jbuf_add(b, "\n", 1);
}

/*
 * The names of the prediction columns, in the order write_prediction_fields
 * writes them; caller frees each and the array.
 */
static char **prediction_names(const struct feature_params *fp, size_t *out_n)
{
	const long long target = (long long)fp->target_horizon;
	static const char *const head[] = { "install_date", "age_days", "tier", "method", "p_payer" };
	size_t n = 0, cap = sizeof(head) / sizeof(head[0]) + fp->horizons.n + 13;
	char **v = xcalloc(cap, sizeof(char *));

	for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
		v[n++] = xstrdup(head[i]);
	for (size_t h = 0; h < fp->horizons.n; h++)
		v[n++] = xasprintf("ltv_%lld", (long long)fp->horizons.v[h]);
	v[n++] = xstrdup("observed_up_to");
	v[n++] = xasprintf("ltv_raw_%lld", target);
	v[n++] = xstrdup("segment");
	v[n++] = xstrdup("cost");
	v[n++] = xasprintf("roas_%lld", target);
	v[n++] = xasprintf("ltv_%lld_p10", target);
	v[n++] = xasprintf("ltv_%lld_p90", target);
	v[n++] = xstrdup("p_alive");
	v[n++] = xstrdup("p_purchase_30d");
	v[n++] = xstrdup("risk_segment");
	v[n++] = xstrdup("model_version");
	v[n++] = xstrdup("as_of");
	v[n++] = xstrdup("scored_at");
	assert(n == cap);
	*out_n = n;
	return v;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * The prediction columns' names, each after a comma. A name among the n_taken
 * taken (the input file's own columns) gets the prefix "ltvpipe_", so no two
 * columns share a name.
 */
static void put_prediction_header(struct jbuf *b, const struct feature_params *fp, char **taken,
				  size_t n_taken)
{
	size_t n;
	char **names = prediction_names(fp, &n);

	for (size_t i = 0; i < n; i++) {
		int clash = 0;

		for (size_t k = 0; k < n_taken && !clash; k++)
			clash = strcmp(names[i], taken[k]) == 0;
		jbuf_puts(b, clash ? ",ltvpipe_" : ",");
		jbuf_puts(b, names[i]);
	}
	free_names(names, n);
}

/*
 * Where a users file goes: its temporary in the set, or stdout for "-" (a
 * pipe: there is no previous file to keep whole, and nothing to hash). Its
 * text is written by a thread of its own (include/ltv/block_writer.h), which
 * hashes it on the way for the scores record.
 */
static int users_file_open(struct output_set *set, const char *path, struct block_writer *w,
			   struct ltv_err *err)
{
	FILE *f = stdout;
	int ret = strcmp(path, "-") == 0 ? 0 : output_set_add(set, path, &f, err);

	if (ret < 0)
		return ret;
	/* the writer writes to the descriptor: nothing may wait in the stream's buffer before it */
	if (fflush(f) != 0)
		return err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	block_writer_start(w, fileno(f));
	return 0;
}

/* Writes the rest and waits for the writer; the content hash into hash (when not NULL). */
static int users_file_close(struct block_writer *w, const char *path, char *hash, struct ltv_err *err)
{
	const int to_stdout = strcmp(path, "-") == 0;
	char hex[HASH_HEX_LEN];
	int ret = block_writer_finish(w, hex);

	if (ret < 0 && to_stdout)
		return err_set(err, LTV_EIO, "cannot write the users CSV to stdout: %s", strerror(-ret));
	if (ret < 0)
		return err_set(err, LTV_EIO, "cannot write '%s': %s; the previous file is unchanged",
			       path, strerror(-ret));
	if (hash)
		snprintf(hash, HASH_HEX_LEN, "%s", to_stdout ? "" : hex);
	return 0;
}

static int write_users_csv(const struct loaded_model *m, const struct model_data *d,
			   const struct user_table *users, const struct scored *s,
			   const struct provenance *pv, struct output_set *set, const char *path,
			   char *hash, struct ltv_err *err)
{
	const struct feature_params *fp = &m->params;
	const struct row_columns c = row_columns_of(m, d);
	struct fields_ctx mine = fields_ctx_of(m, d, &c, s, pv), theirs = mine;
	struct text_ahead ahead;
	struct block_writer w;
	struct jbuf *b;
	int ret = users_file_open(set, path, &w, err);

	if (ret < 0)
		return ret;
	b = block_writer_block(&w);
	jbuf_puts(b, "user_id,app_id,campaign");
	put_prediction_header(b, fp, NULL, 0);
	jbuf_add(b, "\n", 1);
	/* printf per field cost more than predicting: each line is built in memory (numfmt.h). */
	text_ahead_start(&ahead, s->n, 0, put_fields_of, &theirs, &mine, config_jobs(&m->cfg) > 1);
	for (size_t i = 0; i < s->n; i++) {
		write_user_row(b, d, &c, users, s, i, &ahead, &mine);
		if (b->len >= BLOCK_WRITER_BLOCK)
			b = block_writer_pass(&w);
	}
	text_ahead_stop(&ahead);
	return users_file_close(&w, path, hash, err);
}

/* ---- score --users F: the predictions added to the user's own file ---- */

/*
 * The end of an unscored row of write_own_file: the empty prediction fields,
 * the provenance and the quoted reason. Most rows share one reason (older
 * than the longest horizon), so the text is kept until the reason changes:
 * quoting it anew cost a tenth of writing 1M rows.
 */
struct unscored_tail {
	char *reason; /* the reason line was built for */
	struct jbuf line;
};

static void unscored_tail(struct unscored_tail *t, const char *reason, size_t n_pred,
			  const struct provenance *pv)
{
	if (t->reason && strcmp(t->reason, reason) == 0)
		return;
	free(t->reason);
	t->reason = xstrdup(reason);
	t->line.len = 0;
	for (size_t k = 0; k + 3 < n_pred; k++)
		jbuf_add(&t->line, ",", 1);
	jbuf_add(&t->line, ",", 1);
	jbuf_int(&t->line, (long long)pv->version);
	jbuf_add(&t->line, ",", 1);
	jbuf_puts(&t->line, pv->as_of);
	jbuf_add(&t->line, ",", 1);
	jbuf_puts(&t->line, pv->scored_at);
	jbuf_add(&t->line, ",", 1);
	put_field(&t->line, reason);
	jbuf_add(&t->line, "\n", 1);
}

/*
 * The output of `score --users F`: F's own rows, in F's order, every column
 * under its own name, then the prediction columns and a reason column that
 * says why a row has no prediction. A prediction column whose name F already
 * uses is prefixed with "ltvpipe_".
 */
/*
 * The predictions a thread writing the users file waits for (struct
 * own_writer): a row without one needs none, so those rows are written while
 * the predictions are made.
 */
struct predictions_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state; /* 0 not made yet, 1 made, -1 never (the score failed) */
};

/* 1 once the predictions are made, -1 when they never will be. */
static int gate_wait(struct predictions_gate *g)
{
	int state;

	pthread_mutex_lock(&g->lock);
	while (g->state == 0)
		pthread_cond_wait(&g->cond, &g->lock);
	state = g->state;
	pthread_mutex_unlock(&g->lock);
	return state;
}

static void gate_set(struct predictions_gate *g, int state)
{
	pthread_mutex_lock(&g->lock);
	g->state = state;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* What write_own_file writes: one user's file. */
struct own_file {
	const struct loaded_model *m;
	const struct model_data *d;
	const struct user_table *users;
	const struct scored *s;
	int64_t as_of;
	const struct provenance *pv;
	const char *users_path, *scratch_dir, *path;
	char *hash;                    /* the content hash, or NULL */
	struct block_writer *started;  /* the file already open (own_writer), or NULL: opened here in set */
	size_t set_index;              /* with started: the file's index in set */
	struct predictions_gate *gate; /* waited for before the first prediction is read, or NULL */
};

static int write_own_file(const struct own_file *o, struct output_set *set, struct ltv_err *err)
{
	const struct loaded_model *m = o->m;
	const struct model_data *d = o->d;
	const struct scored *s = o->s;
	const struct provenance *pv = o->pv;
	const char *users_path = o->users_path, *path = o->path;
	const int64_t as_of = o->as_of;
	const struct config *cfg = &m->cfg;
	const struct feature_params *fp = &m->params;
	const struct row_columns c = row_columns_of(m, d);
	struct csv_reader *r = NULL;
	struct user_lookup l;
	struct block_writer own_w, *w = o->started ? o->started : &own_w;
	struct jbuf *b = NULL;
	struct unscored_tail tail = { NULL, { NULL, 0, 0 } };
	struct fields_ctx mine = fields_ctx_of(m, d, &c, s, pv), theirs = mine;
	struct text_ahead ahead;
	int ahead_on = 0;
	char **fields, **header = NULL, why[256];
	size_t n, n_header = 0, n_pred = 0, line;
	int id_col = -1, reason_taken = 0, open = o->started != NULL, predicted = !o->gate, ret;

	jbuf_init(&tail.line);
	user_lookup_build(&l, o->users, d, s);
	user_lookup_load_rejects(&l, o->scratch_dir, users_path);
	r = csv_reader_open(users_path, err);
	if (!r) {
		ret = err->code;
		goto out;
	}
	csv_reader_set_delimiter(r, config_delimiter(cfg));
	ret = csv_reader_next(r, &fields, &n_header, &line, err);
	if (ret == 0)
		ret = err_set(err, LTV_EINVAL, "%s: the file is empty; it needs a header row", users_path);
	if (ret < 0)
		goto out;
	header = xcalloc(n_header + 1, sizeof(char *));
	for (size_t i = 0; i < n_header; i++) {
		header[i] = xstrdup(fields[i]);
		if (strcmp(fields[i], cfg->columns.user_id) == 0)
			id_col = (int)i;
		reason_taken |= strcmp(fields[i], "reason") == 0;
	}
	if (id_col < 0) {
		ret = err_set(err, LTV_EINVAL, "%s:1: no column '%s' in the header; set columns.user_id",
			      users_path, cfg->columns.user_id);
		goto out;
	}
	/* "-": straight to stdout, as write_users_csv does */
	if (!open && (ret = users_file_open(set, path, w, err)) < 0)
		goto out;
	open = 1;
	b = block_writer_block(w);
	for (size_t i = 0; i < n_header; i++) {
		if (i)
			jbuf_add(b, ",", 1);
		put_field(b, fields[i]);
	}
	put_prediction_header(b, fp, header, n_header);
	jbuf_puts(b, reason_taken ? ",ltvpipe_reason\n" : ",reason\n");
	{
		/* only their number is needed here; n_pred is set by the call, so not in one expression */
		char **names = prediction_names(fp, &n_pred);

		free_names(names, n_pred);
	}
	snprintf(why, sizeof(why), "older than the longest horizon (%lld days) at as_of: its value "
		 "is observed, not predicted", (long long)fp->horizons.v[fp->horizons.n - 1]);
	/* lines are built in memory and written in blocks, as write_users_csv does */
	while ((ret = csv_reader_next(r, &fields, &n, &line, err)) == 1) {
		const char *reason = NULL;
		size_t i = 0;

		if (n == n_header) {
			score_put_row_fields(b, fields, n);
		} else {
			for (size_t k = 0; k < n_header; k++) {
				if (k)
					jbuf_add(b, ",", 1);
				put_field(b, k < n ? fields[k] : "");
			}
		}
		if (n != n_header)
			reason = "rejected: the row's field count differs from the header's";
		else
			reason = user_lookup_reason(&l, fields[id_col], line, as_of, why, &i);
		if (!reason && !predicted && (predicted = gate_wait(o->gate)) < 0) {
			ret = err_set(err, LTV_EINTERNAL, "no predictions to write"); /* not reported */
			break;
		}
		if (!reason && !ahead_on) {
			/* from the first scored row on, the other core makes the fields ahead */
			text_ahead_start(&ahead, s->n, i, put_fields_of, &theirs, &mine,
					 config_jobs(cfg) > 1);
			ahead_on = 1;
		}
		if (!reason) {
			put_fields_ahead(&ahead, &mine, b, i);
			jbuf_add(b, ",\n", 2);
		} else {
			unscored_tail(&tail, reason, n_pred, pv);
			jbuf_add(b, tail.line.p, tail.line.len);
		}
		if (b->len >= BLOCK_WRITER_BLOCK)
			b = block_writer_pass(w);
	}
out:
	if (ahead_on)
		text_ahead_stop(&ahead);
	/* the writer is waited for even after an error (its temporary is then removed) */
	if (open) {
		struct ltv_err close_err;
		int closed = users_file_close(w, path, o->hash, ret == 0 ? err : &close_err);

		if (ret == 0)
			ret = closed;
		/*
		 * On its own thread (own_writer), fsynced here, beside the main
		 * thread's summary files, not after both in output_set_commit.
		 */
		if (ret == 0 && o->started && strcmp(path, "-") != 0)
			ret = output_set_sync_file(set, o->set_index, err);
	}
	jbuf_release(&tail.line);
	free(tail.reason);
	csv_reader_free(r);
	user_lookup_release(&l);
	for (size_t i = 0; header && i < n_header; i++)
		free(header[i]);
	free(header);
	return ret;
}

/*
 * score --users F --output FILE: F's file written on a thread of its own from
 * before the predictions are made. Its rows without a prediction (the users
 * older than the longest horizon: the first two thirds of a file in install
 * order) are written while the models predict; the thread waits at the
 * first row that needs a prediction (predictions_gate). The set holds the
 * users file first, as when it was written after the predictions.
 */
struct own_writer {
	struct own_file file;
	struct output_set set;
	struct block_writer w;
	struct predictions_gate gate;
	pthread_t thread;
	int threaded, ret;
	struct ltv_err err;
};

static void *own_writer_main(void *arg)
{
	struct own_writer *o = arg;

	o->ret = write_own_file(&o->file, &o->set, &o->err);
	return NULL;
}

/* Opens the users file into o->set and starts the thread (o->file set by the caller). */
static int own_writer_start(struct own_writer *o, struct ltv_err *err)
{
	int ret;

	output_set_init(&o->set);
	pthread_mutex_init(&o->gate.lock, NULL);
	pthread_cond_init(&o->gate.cond, NULL);
	o->gate.state = 0;
	o->threaded = 0;
	o->ret = 0;
	o->file.set_index = o->set.n;
	ret = users_file_open(&o->set, o->file.path, &o->w, err);
	if (ret < 0)
		return ret;
	o->file.started = &o->w;
	o->file.gate = &o->gate;
	o->threaded = pthread_create(&o->thread, NULL, own_writer_main, o) == 0;
	return 0;
}

/*
 * The predictions are made (made = 1) or never will be (-1): the file is
 * finished; its error, or 0. Without a thread it is written here.
 */
static int own_writer_join(struct own_writer *o, int made, struct ltv_err *err)
{
	gate_set(&o->gate, made);
	if (o->threaded)
		pthread_join(o->thread, NULL);
	else
		own_writer_main(o);
	o->threaded = 0;
	if (o->ret < 0 && made > 0)
		*err = o->err;
	return made > 0 ? o->ret : 0;
}

static void own_writer_release(struct own_writer *o)
{
	output_set_release(&o->set);
	pthread_mutex_destroy(&o->gate.lock);
	pthread_cond_destroy(&o->gate.cond);
}

/* ---- campaign summary and report ---- */

struct campaign_sum {
	const char *app, *campaign;
	int tier;
	size_t users, users_with_cost;
	double spend;
	double revenue[PREDICTOR_MAX_HORIZONS];
	double revenue_lo[PREDICTOR_MAX_HORIZONS], revenue_hi[PREDICTOR_MAX_HORIZONS]; /* 80% */
	double future[PREDICTOR_MAX_HORIZONS]; /* the predicted part of revenue */
	double p_alive_sum;
	size_t p_alive_n;
	size_t by_method[METHOD_SLOTS];
};

/*
 * The first day the campaign's predicted cumulative ROAS reaches 1, reading
 * its revenue as linear between day 0 (nothing) and each horizon; -1 when
 * not within the longest horizon or without spend.
 */
static int64_t payback_day(const struct feature_params *fp, const struct campaign_sum *c)
{
	double prev_day = 0, prev_rev = 0;

	if (!(c->spend > 0))
		return -1;
	for (size_t h = 0; h < fp->horizons.n; h++) {
		const double day = (double)fp->horizons.v[h], rev = c->revenue[h];

		if (rev >= c->spend) {
			double t = rev > prev_rev ? (c->spend - prev_rev) / (rev - prev_rev) : 1;

			return (int64_t)ceil(prev_day + t * (day - prev_day));
		}
		prev_day = day;
		prev_rev = rev;
	}
	return -1;
}

static double campaign_p_alive(const struct campaign_sum *c)
{
	return c->p_alive_n ? c->p_alive_sum / (double)c->p_alive_n : NAN;
}

static int campaign_method(const struct campaign_sum *c)
{
	int best = 0;

	for (int k = 1; k < METHOD_SLOTS; k++)
		if (c->by_method[k] > c->by_method[best])
			best = k;
	return method_of_slot(best);
}

static struct campaign_sum *summarise(const struct loaded_model *m, const struct model_data *d,
				      const struct scored *s,
				      size_t n_horizons, size_t *out_n)
{
	const double *app = frame_column(&d->frame, "app_code"), *campaign = frame_column(&d->frame, "campaign_code");
	const double *cost = frame_column(&d->frame, "cost");
	const double *rev_to_date = frame_column(&d->frame, "rev_to_date");
	size_t n_cohorts = d->n_apps * d->n_campaigns;
	struct campaign_sum *all = xcalloc(n_cohorts + 1, sizeof(*all)), *out;
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		size_t r = s->rows[i], c = (size_t)app[r] * d->n_campaigns + (size_t)campaign[r];
		struct campaign_sum *cs = &all[c];

		cs->app = d->apps[(size_t)app[r]];
		cs->campaign = d->campaigns[(size_t)campaign[r]];
		cs->tier = (int)d->tier[r];
		cs->users++;
		if (!isnan(cost[r])) {
			cs->spend += cost[r];
			cs->users_with_cost++;
		}
		for (size_t h = 0; h < n_horizons; h++) {
			cs->revenue[h] += s->sv.ltv[h][i];
			if (!s->sv.observed[h][i])
				cs->future[h] += s->sv.ltv[h][i] - rev_to_date[r];
		}
		if (!isnan(s->sv.p_alive[i])) {
			cs->p_alive_sum += s->sv.p_alive[i];
			cs->p_alive_n++;
		}
		cs->by_method[method_slot(s->sv.method[i])]++;
	}
	out = xcalloc(n_cohorts + 1, sizeof(*out));
	for (size_t c = 0; c < n_cohorts; c++) {
		if (!all[c].users)
			continue;
		for (size_t h = 0; h < n_horizons; h++)
			serving_campaign_interval(m, h, all[c].revenue[h], all[c].future[h],
						  &all[c].revenue_lo[h], &all[c].revenue_hi[h]);
		out[n++] = all[c];
	}
	free(all);
	*out_n = n;
	return out;
}

static int write_campaigns_csv(const struct feature_params *fp, const struct campaign_sum *cs, size_t n,
			       const struct provenance *pv, struct output_set *set, const char *path,
			       struct ltv_err *err)
{
	FILE *f = NULL;
	int ret = output_set_add(set, path, &f, err);

	if (ret < 0)
		return ret;
	fprintf(f, "app_id,campaign,tier,method,users,spend");
	for (size_t h = 0; h < fp->horizons.n; h++)
		fprintf(f, ",revenue_%lld", (long long)fp->horizons.v[h]);
	for (size_t h = 0; h < fp->horizons.n; h++)
		fprintf(f, ",roas_%lld", (long long)fp->horizons.v[h]);
	for (size_t h = 0; h < fp->horizons.n; h++)
		fprintf(f, ",revenue_%lld_p10,revenue_%lld_p90,roas_%lld_p10,roas_%lld_p90",
			(long long)fp->horizons.v[h], (long long)fp->horizons.v[h],
			(long long)fp->horizons.v[h], (long long)fp->horizons.v[h]);
	fprintf(f, ",payback_day,mean_p_alive,risk_segment,model_version,as_of,scored_at\n");
	for (size_t i = 0; i < n; i++) {
		csv_write_field(f, cs[i].app);
		fputc(',', f);
		csv_write_field(f, cs[i].campaign);
		fprintf(f, ",%d,%s,%zu,%.2f", cs[i].tier, method_name(campaign_method(&cs[i])), cs[i].users,
			cs[i].spend);
		for (size_t h = 0; h < fp->horizons.n; h++)
			fprintf(f, ",%.2f", cs[i].revenue[h]);
		for (size_t h = 0; h < fp->horizons.n; h++) {
			if (cs[i].spend > 0)
				fprintf(f, ",%.4f", cs[i].revenue[h] / cs[i].spend);
			else
				fputc(',', f);
		}
		for (size_t h = 0; h < fp->horizons.n; h++) {
			const double spend = cs[i].spend > 0 ? cs[i].spend : NAN;

			write_number(f, cs[i].revenue_lo[h]);
			write_number(f, cs[i].revenue_hi[h]);
			write_number(f, cs[i].revenue_lo[h] / spend);
			write_number(f, cs[i].revenue_hi[h] / spend);
		}
		if (payback_day(fp, &cs[i]) >= 0)
			fprintf(f, ",%lld", (long long)payback_day(fp, &cs[i]));
		else
			fprintf(f, ",not within %lld", (long long)fp->horizons.v[fp->horizons.n - 1]);
		write_number(f, campaign_p_alive(&cs[i]));
		fprintf(f, ",%s,%lld,%s,%s\n", serving_risk_segment(campaign_p_alive(&cs[i])),
			(long long)pv->version, pv->as_of, pv->scored_at);
	}
	return 0;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A double as an unsigned integer in the same order; -0 as +0, which compare_double calls equal. */
static uint64_t ascending_bits(double v)
{
	uint64_t b;

	if (v == 0)
		v = 0; /* -0.0 -> +0.0 */
	memcpy(&b, &v, sizeof(b));
	return b >> 63 ? ~b : b | (uint64_t)1 << 63;
}

/* 11-bit digits: six passes over the 64 bits, 2,048 counts that sit in cache. */
#define SORT_BITS 11
#define SORT_BUCKETS (1 << SORT_BITS)
#define SORT_DIGIT(v, shift) ((size_t)(ascending_bits(v) >> (shift)) & (SORT_BUCKETS - 1))

void score_sort_ltvs(double *v, size_t n)
{
	size_t count[SORT_BUCKETS]; /* 16 KB */
	double *buf, *from = v, *to, *t;

	for (size_t i = 0; i < n; i++)
		if (isnan(v[i])) {
			qsort(v, n, sizeof(double), compare_double);
			return;
		}
	if (n == 0)
		return;
	buf = xmalloc(n * sizeof(*buf));
	to = buf;
	for (int shift = 0; shift < 64; shift += SORT_BITS) {
		size_t at = 0;

		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[SORT_DIGIT(from[i], shift)]++;
		if (count[SORT_DIGIT(from[0], shift)] == n)
			continue; /* one digit for every value: the pass would move none */
		for (size_t d = 0; d < SORT_BUCKETS; d++) {
			const size_t c = count[d];

			count[d] = at;
			at += c;
		}
		for (size_t i = 0; i < n; i++)
			to[count[SORT_DIGIT(from[i], shift)]++] = from[i];
		t = from, from = to, to = t;
	}
	if (from != v)
		memcpy(v, from, n * sizeof(*v));
	free(buf);
}

static int target_index;

static int compare_roas_desc(const void *a, const void *b)
{
	const struct campaign_sum *x = a, *y = b;
	double rx = x->spend > 0 ? x->revenue[target_index] / x->spend : -1;
	double ry = y->spend > 0 ? y->revenue[target_index] / y->spend : -1;

	return rx < ry ? 1 : rx > ry ? -1 : strcmp(x->campaign, y->campaign);
}

static void report_campaign_line(FILE *f, const struct campaign_sum *c, int ti)
{
	fprintf(f, "  %-16.16s %-36.36s %6zu %10.2f %10.2f %6.2f  %-10s %d\n", c->app, c->campaign,
		c->users, c->spend, c->revenue[ti], c->revenue[ti] / c->spend,
		method_name(campaign_method(c)), c->tier);
}

static void report_campaigns(FILE *f, struct campaign_sum *cs, size_t n, int ti, long long target,
			     size_t min_users)
{
	struct campaign_sum *ranked = xmalloc((n ? n : 1) * sizeof(*ranked));
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (cs[i].users >= min_users && cs[i].spend > 0)
			ranked[k++] = cs[i];
	target_index = ti;
	qsort(ranked, k, sizeof(*ranked), compare_roas_desc);
	fprintf(f, "\nCampaigns by predicted D%lld ROAS (campaigns with at least %zu users scored and "
		"known cost; %zu of %zu):\n", target, min_users, k, n);
	fprintf(f, "  %-16s %-36s %6s %10s %10s %6s  %-10s %s\n", "app", "campaign", "users", "spend",
		"pred_rev", "ROAS", "method", "tier");
	fprintf(f, " top:\n");
	for (size_t i = 0; i < k && i < 10; i++)
		report_campaign_line(f, &ranked[i], ti);
	fprintf(f, " bottom:\n");
	/* Never repeat a campaign the top list already showed. */
	for (size_t i = k > 20 ? k - 10 : (k > 10 ? 10 : k); i < k; i++)
		report_campaign_line(f, &ranked[i], ti);
	free(ranked);
}


/*
 * Users younger than the first snapshot age at as_of have shown less than any
 * training row did: the models serve them from the first snapshot, scaled by
 * the days left (predictor_age_blend). Say how many, so a campaign full of
 * them is read as provisional.
 */
static void report_partial_windows(FILE *f, const struct feature_params *fp, const struct model_data *d,
				   const struct scored *s)
{
	const double *age = frame_column(&d->frame, "age_days");
	const int64_t first = fp->snapshots.v[0];
	size_t partial = 0;

	for (size_t i = 0; age && i < s->n; i++)
		partial += age[s->rows[i]] < (double)first;
	if (partial == 0)
		return;
	fprintf(f, "  of which %zu (%.1f%%) are under %lld days old, the youngest age the models "
		"were trained at:\n  their predictions extrapolate from that age; rescore them "
		"tomorrow (column age_days)\n", partial, 100.0 * (double)partial / (double)s->n,
		(long long)first);
}

static int write_report(const struct loaded_model *m, const struct model_data *d,
			const struct scored *s, struct campaign_sum *cs, size_t n_cs, int64_t as_of,
			struct output_set *set, const char *path, struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	const struct feature_params *fp = &m->params;
	const int ti = feature_params_horizon_index(fp, fp->target_horizon);
	const long long target = (long long)fp->target_horizon;
	const double *cost = frame_column(&d->frame, "cost");
	size_t segments[SEGMENT_CUTS + 1] = { 0 }, methods[METHOD_SLOTS] = { 0 }, fallbacks = 0;
	double spend = 0, *sorted = xmalloc((s->n ? s->n : 1) * sizeof(double));
	FILE *f = NULL;
	char iso[32];
	int ret = output_set_add(set, path, &f, err);

	if (ret < 0) {
		free(sorted);
		return ret;
	}
	for (size_t i = 0; i < s->n; i++) {
		const char *seg = predictor_segment(&m->pred, s->sv.ltv[ti][i]);

		segments[seg[0] == 'L' ? 0 : seg[0] == 'M' ? 1 : seg[0] == 'H' ? 2 : 3]++;
		methods[method_slot(s->sv.method[i])]++;
		fallbacks += (size_t)s->sv.fallback[i];
		spend += isnan(cost[s->rows[i]]) ? 0 : cost[s->rows[i]];
		sorted[i] = s->sv.ltv[ti][i];
	}
	score_sort_ltvs(sorted, s->n);
	fprintf(f, "ltvpipe score report — model version %lld, as_of %s\n", (long long)m->version,
		time_format_iso8601(as_of, iso, sizeof(iso)));
	fprintf(f, "Horizons in days:");
	for (size_t h = 0; h < fp->horizons.n; h++)
		fprintf(f, " %lld", (long long)fp->horizons.v[h]);
	fprintf(f, " (target %lld). Money is in the currency of the input revenue and cost columns.\n\n", target);
	fprintf(f, "Users scored (not yet %lld days old, the longest horizon): %zu in %zu campaigns\n",
		(long long)fp->horizons.v[fp->horizons.n - 1], s->n, n_cs);
	report_partial_windows(f, fp, d, s);
	fprintf(f, "Spend on them: %.2f\n", spend);
	for (size_t h = 0; h < fp->horizons.n; h++) {
		double rev = 0;

		for (size_t i = 0; i < s->n; i++)
			rev += s->sv.ltv[h][i];
		fprintf(f, "Predicted revenue by day %lld: %.2f (ROAS %s%.3f)\n",
			(long long)fp->horizons.v[h], rev, spend > 0 ? "" : "n/a ",
			spend > 0 ? rev / spend : 0);
	}
	if (s->n) {
		double total = 0;

		for (size_t i = 0; i < s->n; i++)
			total += sorted[i];
		fprintf(f, "\nPredicted D%lld LTV per user: mean %.4f, median %.4f, p90 %.4f, p99 %.4f, max %.4f\n",
			target, total / (double)s->n, sorted[s->n / 2], sorted[(size_t)(0.9 * (double)(s->n - 1))],
			sorted[(size_t)(0.99 * (double)(s->n - 1))], sorted[s->n - 1]);
	}
	report_campaigns(f, cs, n_cs, ti, target, (size_t)cfg->select.min_validation_users);
	fprintf(f, "\nValue segments at D%lld (cut at %.4f / %.4f / %.4f):\n", target,
		m->pred.segment_cut[0], m->pred.segment_cut[1], m->pred.segment_cut[2]);
	{
		static const char *const names[] = { "Low", "Medium", "High", "VIP" };

		for (int k = 0; k <= SEGMENT_CUTS; k++)
			fprintf(f, "  %-7s %8zu (%5.1f%%)\n", names[k], segments[k],
				s->n ? 100.0 * (double)segments[k] / (double)s->n : 0);
	}
	fprintf(f, "\nMethod that served at D%lld:\n", target);
	for (int k = 0; k < METHOD_SLOTS; k++)
		if (methods[k])
			fprintf(f, "  %-14s %8zu (%5.1f%%)\n", method_name(method_of_slot(k)),
				methods[k], 100.0 * (double)methods[k] / (double)s->n);
	fprintf(f, "  of which served by a fallback because the chosen method had nothing: %zu\n", fallbacks);
	free(sorted);
	return 0;
}

/* F.report.html: the report as a page (include/ltv/score_html.h). */
static int write_report_html(const struct loaded_model *m, const struct model_data *d,
			     const struct scored *s, const struct campaign_sum *cs, size_t n_cs,
			     int64_t as_of, struct output_set *set, const char *path,
			     struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	const struct feature_params *fp = &m->params;
	const int ti = feature_params_horizon_index(fp, fp->target_horizon);
	const double *cost = frame_column(&d->frame, "cost");
	struct score_html_campaign *camps = xcalloc(n_cs ? n_cs : 1, sizeof(*camps));
	struct score_html r = {
		.model_version = m->version, .as_of = as_of, .horizons = fp->horizons.v,
		.n_horizons = fp->horizons.n, .target_horizon = fp->target_horizon,
		.users = s->n, .campaigns = camps, .n_campaigns = n_cs,
		.min_users = (size_t)cfg->select.min_validation_users,
	};
	FILE *f = NULL;
	int ret = output_set_add(set, path, &f, err);

	for (size_t i = 0; ret == 0 && i < s->n; i++) {
		const char *seg = predictor_segment(&m->pred, s->sv.ltv[ti][i]);

		r.segments[seg[0] == 'L' ? 0 : seg[0] == 'M' ? 1 : seg[0] == 'H' ? 2 : 3]++;
		r.spend += isnan(cost[s->rows[i]]) ? 0 : cost[s->rows[i]];
		for (size_t h = 0; h < r.n_horizons; h++)
			r.revenue[h] += s->sv.ltv[h][i];
	}
	memcpy(r.segment_cut, m->pred.segment_cut, sizeof(r.segment_cut));
	for (size_t i = 0; i < n_cs; i++) {
		camps[i] = (struct score_html_campaign){ cs[i].app, cs[i].campaign, cs[i].tier,
			cs[i].users, cs[i].spend, { 0 }, { 0 }, { 0 }, payback_day(fp, &cs[i]),
			method_name(campaign_method(&cs[i])) };
		memcpy(camps[i].revenue, cs[i].revenue, sizeof(cs[i].revenue));
		memcpy(camps[i].revenue_lo, cs[i].revenue_lo, sizeof(cs[i].revenue_lo));
		memcpy(camps[i].revenue_hi, cs[i].revenue_hi, sizeof(cs[i].revenue_hi));
	}
	if (ret == 0)
		score_html_write(f, &r);
	free(camps);
	return ret;
}

/*
 * The campaign summary and the two reports beside a users file, into set;
 * with sync_now fsynced once written (output_set_sync_from), for a caller
 * whose users file is still being written on another thread.
 */
static int write_summary_files(const struct loaded_model *m, const struct model_data *d,
			       const struct scored *s, struct campaign_sum *cs, size_t n_cs,
			       int64_t as_of, const struct provenance *pv, struct output_set *set,
			       const char *output, int sync_now, struct ltv_err *err)
{
	char *campaigns_path = xasprintf("%s.campaigns.csv", output);
	char *report_path = xasprintf("%s.report.txt", output);
	char *html_path = xasprintf("%s.report.html", output);
	const size_t first = set->n;
	int ret = write_campaigns_csv(&m->params, cs, n_cs, pv, set, campaigns_path, err);

	if (ret == 0)
		ret = write_report(m, d, s, cs, n_cs, as_of, set, report_path, err);
	if (ret == 0)
		ret = write_report_html(m, d, s, cs, n_cs, as_of, set, html_path, err);
	/* while F's thread still writes: their fsyncs then wait in output_set_commit no more */
	if (ret == 0 && sync_now)
		ret = output_set_sync_from(set, first, err);
	free(campaigns_path);
	free(report_path);
	free(html_path);
	return ret;
}

int score_write_outputs(const struct loaded_model *m, const struct model_data *d,
			const struct user_table *users, const struct scored *s, int64_t as_of,
			const struct score_write *w, const char *output, size_t *out_n_campaigns,
			struct ltv_err *err)
{
	const int to_stdout = strcmp(output, "-") == 0;
	struct output_set own_set, *set = w->own ? &w->own->set : &own_set;
	struct campaign_sum *cs;
	size_t n_cs = 0;
	int ret;

	if (!w->own)
		output_set_init(&own_set);
	cs = summarise(m, d, s, m->params.horizons.n, &n_cs);
	if (w->own) {
		/*
		 * The summary files while F's thread writes the users file: after it,
		 * they (the report's sort of every LTV) were on the critical path. Its
		 * error comes first, as when they were written after it.
		 */
		struct ltv_err summary_err;
		int summary;

		gate_set(&w->own->gate, 1); /* F's thread goes on at once, not after them */
		summary = to_stdout ? 0
				    : write_summary_files(m, d, s, cs, n_cs, as_of, w->pv, set, output,
							  1, &summary_err);
		ret = own_writer_join(w->own, 1, err);
		if (ret == 0 && summary < 0) {
			*err = summary_err;
			ret = summary;
		}
	} else {
		if (w->own_file) {
			const struct own_file o = { m, d, users, s, as_of, w->pv, w->own_file,
						    w->scratch_dir, output, w->users_hash, NULL, 0, NULL };

			ret = write_own_file(&o, set, err);
		} else {
			ret = write_users_csv(m, d, users, s, w->pv, set, output, w->users_hash, err);
		}
		if (ret == 0 && !to_stdout)
			ret = write_summary_files(m, d, s, cs, n_cs, as_of, w->pv, set, output, 0, err);
	}
	if (ret == 0 && to_stdout && fflush(stdout) != 0)
		ret = err_set(err, LTV_EIO, "cannot write the users CSV to stdout");
	if (ret == 0)
		ret = output_set_commit(set, err);
	if (!w->own)
		output_set_release(&own_set); /* w->own's: its owner's (own_writer_release) */
	free(cs);
	*out_n_campaigns = n_cs;
	return ret;
}

/* ---- score_run ---- */

/*
 * Records the score in the registry (table scores): version, as_of, users,
 * input, output and the output's content hash, so a file found later can be
 * traced to what made it. The files are already written: a failure here says
 * so, and the score exits non-zero.
 */
static int record_score(const struct config *cfg, const struct score_options *opts,
			const struct provenance *pv, int64_t as_of, size_t n_users,
			const char *written_hash, int64_t *out_id, struct ltv_err *err)
{
	char hash[HASH_HEX_LEN] = "(stdout: not hashed)";
	struct registry *reg = NULL;
	/*
	 * --output -: the CSV went down a pipe; there is no file to hash. The
	 * writer hashed what it wrote (reading 236 MB back at 1M users took 0.2 s).
	 */
	int ret = strcmp(opts->output, "-") == 0 ? 0 :
		  *written_hash ? (snprintf(hash, sizeof(hash), "%s", written_hash), 0) :
		  hash_file_hex(opts->output, hash, err);

	if (ret == 0)
		ret = registry_open_existing(cfg->registry.path, (int)cfg->registry.busy_timeout_s, &reg, err);
	if (ret == 0)
		ret = registry_begin(reg, err);
	if (ret == 0) {
		const struct score_record rec = {
			.scored_at = pv->scored_at, .model_version = pv->version, .as_of = as_of,
			.users = (int64_t)n_users, .input = opts->users_path, .output = opts->output,
			.content_hash = hash,
		};

		ret = registry_score_insert(reg, &rec, out_id, err);
	}
	if (ret == 0)
		ret = registry_commit(reg, err);
	registry_close(reg); /* rolls back whatever was not committed */
	if (ret < 0)
		err_prefix(err, "the scores are written to %s, but recording the score in the registry "
			   "failed", opts->output);
	return ret;
}

/*
 * The time written as scored_at: now, or SOURCE_DATE_EPOCH when set (the
 * reproducible-builds convention), so two scores of the same data can be
 * compared byte for byte.
 */
int64_t score_scored_at_now(void)
{
	const char *fixed = getenv("SOURCE_DATE_EPOCH");
	int64_t t;

	if (fixed && parse_int64(fixed, &t) == 0)
		return t;
	return (int64_t)time(NULL);
}

/*
 * score --users F without --events: users with no events yet, valued from
 * their campaign and cost. Ingest reads an events file holding only the
 * header, in the model's column names and delimiter.
 */
static int write_no_events(const struct config *cfg, const char *path, struct ltv_err *err)
{
	const char d = config_delimiter(cfg);
	FILE *f = fopen(path, "w");

	if (!f)
		return err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	fprintf(f, "%s%c%s%c%s\n", cfg->columns.event_user_id, d, cfg->columns.event_time, d,
		cfg->columns.revenue);
	if (fclose(f) != 0)
		return err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}

/*
 * Test hook, as the runner's for its ingest stage: LTVPIPE_FAULT=ingest:kill
 * dies once the files are read (their scratch directory still there),
 * ingest:fail fails there.
 */
static int injected_fault(struct ltv_err *err)
{
	const char *fault = getenv("LTVPIPE_FAULT");

	if (!fault || strncmp(fault, "ingest:", 7) != 0)
		return 0;
	if (strcmp(fault + 7, "kill") == 0)
		raise(SIGKILL);
	return err_set(err, LTV_EINTERNAL, "injected fault (LTVPIPE_FAULT=%s)", fault);
}

/* Where keep_user keeps users, and the parser that says how many to expect. */
struct kept_users {
	struct user_data *out;
	const struct ingest_parse *p;
	struct populate fresh;
};

/*
 * The users table's columns, as sized for the first file's users, faulted in
 * on a thread of their own while keep_user fills them (populate_start: half
 * of the main thread's time in the users file was the kernel zeroing their
 * pages, with the other core idle). Should they grow past the estimate, the
 * old blocks' populating is wasted, never wrong: it writes nothing.
 */
static void populate_columns(struct kept_users *k)
{
	const struct user_table *t = &k->out->users;
	const size_t column = k->out->cap_users * sizeof(int64_t);

	populate_stop(&k->fresh);
	populate_add(&k->fresh, t->uid, column);
	populate_add(&k->fresh, t->user_id, column);
	populate_add(&k->fresh, t->app_id, column);
	populate_add(&k->fresh, t->campaign, column);
	populate_add(&k->fresh, t->install_time, column);
	populate_add(&k->fresh, t->cost, column);
	populate_add(&k->fresh, t->attributes_json, column);
	populate_start(&k->fresh);
}

/*
 * Keeps each user ingest's parser loads (its callback), in a table sized
 * once for the users the file is expected to hold (ingest_parse's
 * users_expected).
 */
static int keep_user(void *arg, const struct user_row *u, size_t line, struct ltv_err *err)
{
	struct kept_users *k = arg;

	(void)line;
	(void)err;
	if (k->out->users.n == k->out->cap_users)
		user_data_reserve(k->out, k->p->users_expected);
	if (k->out->users.n == 0)
		populate_columns(k);
	user_data_add_user(k->out, u);
	return 0;
}

/*
 * Parses the files into out (read_input_files). Only users younger than the
 * longest horizon at as_of get a row of the frame
 * (model_data_for_scoring_from), so only their events are aggregated and
 * their days kept (young: ingest_parse_young_only): a file's older users had
 * most of them (at 1,000,000 users 5.0 M of the rows, of which 1.0 M are
 * kept; two events in three). A day of margin: more is harmless. *redo is set
 * when young skipped events it should not have (ingest_parse_young_exact):
 * out is then to be thrown away and the files read again without it.
 */
static int parse_input_files(const struct config *cfg, const struct input_files *files,
			     const struct score_options *opts, int64_t longest_horizon, int young,
			     struct user_data *out, int *redo, struct ltv_err *err)
{
	const int64_t span = (longest_horizon + 1) * SECONDS_PER_DAY;
	struct ingest_parse p;
	struct kept_users kept = { .out = out, .p = &p };
	int ret;

	*redo = 0;
	populate_init(&kept.fresh);
	ingest_parse_init(&p, cfg, NULL, keep_user, &kept);
	/* The main thread only applies the events: a second worker resolves them on its core. */
	p.resolvers = p.parse_threads;
	if (young)
		ingest_parse_young_only(&p, opts->as_of, span);
	ret = ingest_parse_open(&p, "score", err);
	for (size_t i = 0; i < files->n && ret == 0; i++) {
		int64_t rows = 0, rejected = 0;

		ret = ingest_parse_file(&p, files->v[i].path, files->v[i].kind, &rows, &rejected, err);
	}
	populate_stop(&kept.fresh);
	if (ret == 0 && young && !ingest_parse_young_exact(&p)) {
		LOG(LOG_INFO, "score: an events file's last lines gave a later time than its rows; "
		    "reading the files again");
		*redo = 1;
	} else if (ret == 0) {
		const int64_t as_of = opts->as_of != INT64_MIN ? opts->as_of : p.max_event_time;
		const int64_t since = as_of == INT64_MIN ? INT64_MIN : as_of - span;

		ingest_parse_user_days(&p, since, &out->days, &out->n_days);
		out->max_event_time = p.max_event_time;
		ret = injected_fault(err);
	}
	/* the message the ingest stage gives, as `score` said it when it ran that stage */
	if (ret < 0)
		err_prefix(err, "stage ingest failed");
	ingest_parse_release(&p);
	return ret;
}

/*
 * Reads --users (and --events) into memory with ingest's own parser
 * (include/ltv/ingest_parse.h: the validation, rejects and error texts of the
 * ingest stage), its rejects file into dir. No registry is written: building
 * a scratch SQLite registry to read it back at once was half of scoring.
 */
static int read_input_files(const struct config *model_cfg, const struct score_options *opts,
			    int64_t longest_horizon, const char *dir, struct user_data *out,
			    struct ltv_err *err)
{
	char *no_events = xasprintf("%s/no-events.csv", dir);
	char *set_users = xasprintf("input.users=%s", opts->users_path);
	char *set_events = xasprintf("input.events=%s", opts->events_path ? opts->events_path : no_events);
	char *set_rejects = xasprintf("ingest.rejects_dir=%s", dir);
	struct input_files files = { 0 };
	struct config cfg;
	int redo = 0, ret;

	config_copy(&cfg, model_cfg);
	ret = opts->events_path ? 0 : write_no_events(&cfg, no_events, err);
	if (ret == 0)
		ret = config_apply_override(&cfg, set_users, err);
	if (ret == 0)
		ret = config_apply_override(&cfg, set_events, err);
	/* Every row comes back in the output, a rejected one with its reason, so none fails the score. */
	if (ret == 0)
		ret = config_apply_override(&cfg, "ingest.max_reject_rate=1", err);
	if (ret == 0)
		ret = config_apply_override(&cfg, set_rejects, err);
	if (ret == 0)
		ret = input_files_expand(&cfg, &files, err);
	if (ret == 0)
		ret = parse_input_files(&cfg, &files, opts, longest_horizon, 1, out, &redo, err);
	if (ret == 0 && redo) {
		user_data_release(out);
		user_data_init(out);
		ret = parse_input_files(&cfg, &files, opts, longest_horizon, 0, out, &redo, err);
	}
	input_files_release(&files);
	config_release(&cfg);
	free(no_events);
	free(set_users);
	free(set_events);
	free(set_rejects);
	return ret;
}

/* The models of a version loading in a thread of their own (model_load_models). */
struct model_job {
	struct registry *reg;
	struct loaded_model *m;
	struct ltv_err err;
	int ret;
};

static void *load_models_job(void *arg)
{
	struct model_job *j = arg;

	j->ret = model_load_models(j->reg, j->m, &j->err);
	return NULL;
}

/*
 * --users F: reads the files (read_input_files, into a new scratch
 * directory) while another thread loads the version's models, which the
 * reading does not need: their JSON bodies took 0.2 to 0.4 s of wall before
 * the reading started. The reading needs only m's configuration, which the
 * loading leaves alone (include/ltv/model_loader.h). A failed model load is
 * the error, as when it ran first; the reading's own error comes after it.
 */
static int read_while_loading(struct registry *reg, struct loaded_model *m,
			      const struct score_options *opts, char *scratch, size_t scratch_size,
			      struct user_data *mem, struct ltv_err *err)
{
	struct model_job job = { .reg = reg, .m = m };
	pthread_t thread;
	const int threaded = pthread_create(&thread, NULL, load_models_job, &job) == 0;
	int ret;

	if (!threaded)
		load_models_job(&job);
	ret = scratch_dir_create("ltvscore", scratch, scratch_size, err);
	if (ret == 0)
		ret = read_input_files(&m->cfg, opts,
				       m->params.horizons.v[m->params.horizons.n - 1], scratch, mem,
				       err);
	if (threaded)
		pthread_join(thread, NULL);
	if (job.ret < 0) {
		*err = job.err;
		return job.ret;
	}
	return ret;
}

/*
 * The latest event; for users without events (score --users F alone), the
 * latest install, so every user of the file is scored at the age it has then.
 */
static int default_as_of(const struct data_source *data, const struct user_table *users,
			 int64_t *out, struct ltv_err *err)
{
	int ret = data_source_max_event_time(data, out, err);

	if (ret == LTV_ENOTFOUND && users->n) {
		*out = users->install_time[0];
		for (size_t i = 1; i < users->n; i++)
			if (users->install_time[i] > *out)
				*out = users->install_time[i];
		return 0;
	}
	if (ret == LTV_ENOTFOUND)
		ret = err_set(err, LTV_EUSAGE, "the registry has no events yet, so there is no default "
			      "as_of; ingest events first (ltvpipe run) or pass --as-of DATE");
	if (ret < 0)
		err_prefix(err, "score");
	return ret;
}

/*
 * A model trained at as_of T has seen the data up to T. Scoring at an earlier
 * as_of then uses what it learnt from the days after: look-ahead, which makes
 * a backtest look better than the model can be. Refused unless asked for.
 */
static int refuse_lookahead(const struct loaded_model *m, int64_t as_of, struct ltv_err *err)
{
	const int64_t trained = model_artefact(m, "features")->as_of;
	char a[32], t[32];

	if (trained == INT64_MIN || as_of >= trained)
		return 0;
	return err_set(err, LTV_EUSAGE, "as_of %s is before %s, the as_of model version %lld was "
		       "trained at: it has seen the days in between, so its scores would be look-ahead; "
		       "score at %s or later, use a version trained before %s, or pass "
		       "--allow-lookahead to score anyway", time_format_iso8601(as_of, a, sizeof(a)),
		       time_format_iso8601(trained, t, sizeof(t)), (long long)m->version, t, a);
}

int score_run(const struct config *cfg, struct registry *reg, const struct score_options *opts,
	      FILE *out, struct ltv_err *err)
{
	struct loaded_model m = { 0 };
	struct model_data d = { 0 };
	struct scored s = { 0 };
	struct user_table owned_users = { 0 };
	const struct user_table *users = NULL;
	struct data_source data = data_source_registry(reg);
	struct provenance pv = { 0 };
	int64_t score_id = 0;
	struct user_data mem;
	char scratch[4096] = ""; /* --users F: the rejects of reading it */
	char *campaigns_path = NULL, *report_path = NULL, *html_path = NULL, iso[32], differs[512] = "";
	char users_hash[HASH_HEX_LEN] = "";
	size_t n_cs = 0;
	int64_t version, as_of = opts->as_of;
	struct own_writer own;
	struct experiment_row experiment;
	int have_model = 0, have_own = 0, to_stdout = 0, running = 0, ret;
	double started = now_seconds();

	user_data_init(&mem);
	memory_keep_freed(); /* one batch: reuse what each step frees (include/ltv/common.h) */
	/*
	 * One arena: the model loader's and the read-ahead's threads allocate from
	 * the main heap too, so what they free is reused there; an arena of their
	 * own kept its high-water mark and doubled the page faults (4,900 -> 1,450
	 * at 1M users, peak RSS 534 -> 514 MB).
	 */
	memory_limit_arenas(1);

	if (!opts->output)
		return err_set(err, LTV_EUSAGE, "score: --output F is required (the users CSV)");
	if (opts->events_path && !opts->users_path)
		return err_set(err, LTV_EUSAGE, "score: --events F needs --users F (the users the events "
			       "belong to)");
	ret = model_resolve(reg, opts->model, &version, err);
	if (ret == 0)
		ret = model_load_config(reg, cfg, version, &m, err);
	if (ret < 0)
		goto out;
	have_model = 1;
	if (opts->users_path)
		ret = read_while_loading(reg, &m, opts, scratch, sizeof(scratch), &mem, err);
	else
		ret = model_load_models(reg, &m, err);
	if (ret < 0)
		goto out;
	if (opts->users_path)
		data = data_source_memory(&mem);
	ret = data_source_users(&data, &owned_users, &users, err);
	if (ret == 0 && as_of == INT64_MIN)
		ret = default_as_of(&data, users, &as_of, err);
	/* Only a chosen as_of: the default is the data's latest time, a file's own state. */
	if (ret == 0 && opts->as_of != INT64_MIN && !opts->allow_lookahead)
		ret = refuse_lookahead(&m, as_of, err);
	if (ret == 0) {
		/*
		 * Score shards hold whole cohorts (include/ltv/shard.h): curves levels a
		 * cohort from all its scored users. Only their rows are built; a shard
		 * with no cohort writes empty outputs, which merge-scores takes.
		 */
		ret = model_data_for_scoring_from(&m, &data, as_of,
						  opts->shard.count ? &opts->shard : NULL,
						  m.params.horizons.v[m.params.horizons.n - 1], &d, err);
		if (ret == LTV_ENOTFOUND && opts->shard.count) {
			model_data_release(&d);
			memset(&d, 0, sizeof(d));
			ret = 0;
		}
	}
	if (ret < 0)
		goto out;
	{
		const double *age = frame_column(&d.frame, "age_days");
		size_t cap = 0;

		for (size_t i = 0; i < d.frame.n_rows; i++) {
			/* Every user younger than the longest horizon has something still to come. */
			if (age[i] >= (double)m.params.horizons.v[m.params.horizons.n - 1])
				continue;
			ARRAY_GROW(s.rows, s.n + 1, cap);
			s.rows[s.n++] = i;
		}
	}
	/* A/B: without --model, a running experiment's candidate serves its share of users. */
	if (!opts->model && (s.n > 0 || !opts->shard.count))
		ret = experiment_for_scores(cfg, &m, &experiment, err);
	if (ret < 0)
		goto out;
	running = ret;
	/*
	 * The frame now holds all that scoring reads of the files' user-days and
	 * of the users' app, campaign, cost and attributes; only a candidate's
	 * frame would read them again. Freed before the models predict, whose
	 * memory then reuses their pages instead of fresh ones (120 + 34 MB at
	 * 1,000,000 users; README "Threads and performance"). The output keeps
	 * reading the users' ids, uids and install times.
	 */
	if (opts->users_path && !running) {
		user_data_release_days(&mem);
		user_data_release_frame_columns(&mem);
	}
	ret = 0;
	to_stdout = strcmp(opts->output, "-") == 0;
	pv.version = version;
	time_format_iso8601(as_of, pv.as_of, sizeof(pv.as_of));
	time_format_iso8601(score_scored_at_now(), pv.scored_at, sizeof(pv.scored_at));
	/* --users F: its rows without a prediction are written while the models predict (own_writer) */
	if (opts->users_path && !to_stdout) {
		own.file = (struct own_file){ &m, &d, users, &s, as_of, &pv, opts->users_path, scratch,
					      opts->output, users_hash, NULL, 0, NULL };
		ret = own_writer_start(&own, err);
		have_own = 1;
		if (ret < 0)
			goto out;
	}
	if (s.n > 0 || !opts->shard.count)
		/* the users file prints the target's raw prediction only */
		ret = serving_predict_with(&m, &d, s.rows, s.n, SERVING_RAW_OBSERVED_UNREAD | SERVING_LEAN,
					   &s.sv, err);
	if (ret == 0 && running)
		ret = experiment_apply_to_scores(cfg, &m, &experiment, &data, &d, users, s.rows, s.n,
						 as_of, &s.sv, out, err);
	if (ret < 0)
		goto out;
	{
		const struct score_write w = { &pv, opts->users_path, scratch, users_hash,
					       have_own ? &own : NULL };

		ret = score_write_outputs(&m, &d, users, &s, as_of, &w, opts->output, &n_cs, err);
	}
	if (ret == 0 && opts->shard.count)
		ret = score_shard_write(&m, &d, users, &s, as_of, &opts->shard, opts->output, err);
	campaigns_path = to_stdout ? NULL : xasprintf("%s.campaigns.csv", opts->output);
	report_path = to_stdout ? NULL : xasprintf("%s.report.txt", opts->output);
	html_path = to_stdout ? NULL : xasprintf("%s.report.html", opts->output);
	if (ret == 0)
		ret = record_score(cfg, opts, &pv, as_of, s.n, users_hash, &score_id, err);
	if (ret == 0)
		fprintf(out, "scored %zu users in %zu campaigns with model version %lld at as_of %s in %.2f s\n"
			"  users:     %s\n  campaigns: %s\n  report:    %s (and %s)\n  recorded as score %lld in "
			"the registry (table scores)\n", s.n, n_cs,
			(long long)version, time_format_iso8601(as_of, iso, sizeof(iso)),
			now_seconds() - started, to_stdout ? "(stdout)" : opts->output,
			to_stdout ? "(not written with --output -)" : campaigns_path,
			to_stdout ? "(not written with --output -)" : report_path,
			to_stdout ? "not written either" : html_path, (long long)score_id);
	if (ret == 0 && feature_params_config_diff(&m.params, cfg, differs, sizeof(differs)) > 0)
		fprintf(out, "  model version %lld keeps the parameters its features were built with: %s; "
			"'ltvpipe run' trains a version with the config's\n", (long long)version, differs);
	if (ret == 0 && opts->json) {
		cJSON_AddNumberToObject(opts->json, "model_version", (double)version);
		cJSON_AddStringToObject(opts->json, "as_of", iso);
		cJSON_AddNumberToObject(opts->json, "users", (double)s.n);
		cJSON_AddNumberToObject(opts->json, "campaigns", (double)n_cs);
		cJSON_AddNumberToObject(opts->json, "target_horizon", (double)m.params.target_horizon);
		if (*differs)
			cJSON_AddStringToObject(opts->json, "config_differs_from_model", differs);
		cJSON_AddNumberToObject(opts->json, "score_id", (double)score_id);
		cJSON_AddStringToObject(opts->json, "users_csv", to_stdout ? "-" : opts->output);
		if (!to_stdout) {
			cJSON_AddStringToObject(opts->json, "campaigns_csv", campaigns_path);
			cJSON_AddStringToObject(opts->json, "report", report_path);
			cJSON_AddStringToObject(opts->json, "report_html", html_path);
		}
	}
out:
	if (have_own) {
		struct ltv_err ignored;

		if (own.threaded) /* the score failed before the file was finished: it is removed */
			own_writer_join(&own, -1, &ignored);
		own_writer_release(&own);
	}
	free(campaigns_path);
	free(report_path);
	free(html_path);
	scored_release(&s);
	user_table_release(&owned_users);
	model_data_release(&d);
	if (have_model)
		model_release(&m);
	user_data_release(&mem);
	if (scratch[0])
		scratch_dir_remove(scratch);
	return ret;
}

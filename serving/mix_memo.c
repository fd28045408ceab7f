/*
 * The served mix of a set of rows, kept per cohort (include/ltv/mix_memo.h).
 */
#include <stdint.h>
#include <string.h>

#include "ltv/mix_memo.h"

struct mix_memo {
	size_t n_frame_rows, n_cohorts;
	size_t *start;  /* cohort c's kept rows: row[start[c] .. start[c + 1]) */
	uint32_t *row;  /* the kept rows, by cohort, each cohort's in the given order */
	double *value;  /* value[k]: the mix of row[k] */
};

struct mix_memo *mix_memo_new(const struct model_data *d, const size_t *rows, size_t n,
			      const double *raw)
{
	struct mix_memo *m;
	size_t *at;

	/* (rows as 32 bits: the memo may wait from select to calibrate, 12 bytes a row) */
	if (d->group || d->frame.n_rows > UINT32_MAX)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	m->n_frame_rows = d->frame.n_rows;
	m->n_cohorts = d->n_apps * d->n_campaigns;
	m->start = xcalloc(m->n_cohorts + 2, sizeof(size_t));
	m->row = xmalloc((n ? n : 1) * sizeof(uint32_t));
	m->value = xmalloc((n ? n : 1) * sizeof(double));
	/* a counting sort by cohort, stable: each cohort's rows in their order */
	for (size_t i = 0; i < n; i++) {
		const size_t c = rows[i] < m->n_frame_rows ? model_data_cohort(d, rows[i]) : SIZE_MAX;

		if (c >= m->n_cohorts) { /* not a row of d, or of no dense cohort: nothing kept */
			mix_memo_free(m);
			return NULL;
		}
		m->start[c + 2]++;
	}
	for (size_t c = 0; c < m->n_cohorts; c++)
		m->start[c + 2] += m->start[c + 1];
	at = m->start + 1;
	for (size_t i = 0; i < n; i++) {
		const size_t k = at[model_data_cohort(d, rows[i])]++;

		m->row[k] = (uint32_t)rows[i];
		m->value[k] = raw[i];
	}
	return m;
}

void mix_memo_free(struct mix_memo *m)
{
	if (!m)
		return;
	free(m->start);
	free(m->row);
	free(m->value);
	free(m);
}

int mix_memo_get(const struct mix_memo *m, const struct model_data *d, const size_t *rows,
		 size_t n, double *out)
{
	size_t *seen; /* per cohort: its rows met so far in this call */
	int whole = 1;

	if (!m || d->group || d->frame.n_rows != m->n_frame_rows ||
	    d->n_apps * d->n_campaigns != m->n_cohorts)
		return 0;
	seen = xcalloc(m->n_cohorts + 1, sizeof(size_t));
	for (size_t i = 0; i < n && whole; i++) {
		const size_t c = rows[i] < m->n_frame_rows ? model_data_cohort(d, rows[i]) : SIZE_MAX;
		const size_t k = c < m->n_cohorts ? m->start[c] + seen[c]++ : 0;

		whole = c < m->n_cohorts && k < m->start[c + 1] && m->row[k] == rows[i];
		out[i] = whole ? m->value[k] : 0;
	}
	for (size_t c = 0; c < m->n_cohorts && whole; c++)
		whole = seen[c] == 0 || seen[c] == m->start[c + 1] - m->start[c];
	free(seen);
	return whole;
}

/*
 * Per-method predictions of one horizon's validation rows, predicted once
 * (include/ltv/prediction_memo.h).
 */
#include <pthread.h>
#include <string.h>

#include "ltv/prediction_memo.h"

struct prediction_memo {
	int64_t horizon;
	size_t n_frame_rows;   /* the frame's rows: slot_of's length */
	int32_t *slot_of;      /* per frame row: its slot, or -1 when not kept */
	size_t n_slots;        /* distinct rows kept */
	double *pred[METHOD_COUNT];        /* per slot; NULL until a prediction is kept */
	unsigned char *have[METHOD_COUNT]; /* per slot: pred holds it */
	struct prediction_memo *next;      /* on the shelf */
};

struct prediction_memo *prediction_memo_new(const struct model_data *d, int64_t horizon,
					    const size_t *rows, size_t n)
{
	struct prediction_memo *m = xcalloc(1, sizeof(*m));

	m->horizon = horizon;
	m->n_frame_rows = d->frame.n_rows;
	m->slot_of = xmalloc((m->n_frame_rows ? m->n_frame_rows : 1) * sizeof(int32_t));
	memset(m->slot_of, 0xff, m->n_frame_rows * sizeof(int32_t));
	for (size_t i = 0; i < n; i++)
		if (rows[i] < m->n_frame_rows && m->slot_of[rows[i]] < 0 && m->n_slots < INT32_MAX)
			m->slot_of[rows[i]] = (int32_t)m->n_slots++;
	return m;
}

void prediction_memo_free(struct prediction_memo *m)
{
	if (!m)
		return;
	for (int k = 0; k < METHOD_COUNT; k++) {
		free(m->pred[k]);
		free(m->have[k]);
	}
	free(m->slot_of);
	free(m);
}

int prediction_memo_fits(const struct prediction_memo *m, const struct model_data *d,
			 int64_t horizon)
{
	return m && m->horizon == horizon && m->n_frame_rows == d->frame.n_rows;
}

int prediction_memo_keeps(int method)
{
	return method >= 0 && method < METHOD_COUNT && !method_table[method]->batch_level;
}

void prediction_memo_get(const struct prediction_memo *m, int method, const size_t *rows,
			 size_t n, const unsigned char *want, unsigned char *done, double *pred)
{
	if (!prediction_memo_keeps(method) || !m->have[method])
		return;
	for (size_t i = 0; i < n; i++) {
		int32_t slot;

		if (!want[i] || done[i] || rows[i] >= m->n_frame_rows)
			continue;
		slot = m->slot_of[rows[i]];
		if (slot >= 0 && m->have[method][slot]) {
			pred[i] = m->pred[method][slot];
			done[i] = 1;
		}
	}
}

void prediction_memo_put(struct prediction_memo *m, int method, const size_t *rows, size_t n,
			 const double *ltv)
{
	if (!prediction_memo_keeps(method) || m->n_slots == 0)
		return;
	if (!m->pred[method]) {
		m->pred[method] = xmalloc(m->n_slots * sizeof(double));
		m->have[method] = xcalloc(m->n_slots, 1);
	}
	for (size_t i = 0; i < n; i++) {
		const int32_t slot = rows[i] < m->n_frame_rows ? m->slot_of[rows[i]] : -1;

		if (slot >= 0) {
			m->pred[method][slot] = ltv[i];
			m->have[method][slot] = 1;
		}
	}
}

/*
 * The shelf: the memos of one key (a run's select leaves one per horizon
 * for its calibrate). Stages of a run take turns with it, but a backtest
 * beside a run is another thread, hence the lock.
 */
static pthread_mutex_t shelf_lock = PTHREAD_MUTEX_INITIALIZER;
static char *shelf_key;
static struct prediction_memo *shelf;

static void shelf_clear_locked(void)
{
	while (shelf) {
		struct prediction_memo *next = shelf->next;

		prediction_memo_free(shelf);
		shelf = next;
	}
	free(shelf_key);
	shelf_key = NULL;
}

void prediction_memo_offer(const char *key, struct prediction_memo *m)
{
	pthread_mutex_lock(&shelf_lock);
	if (!shelf_key || strcmp(shelf_key, key) != 0) {
		shelf_clear_locked();
		shelf_key = xstrdup(key);
	}
	/* A memo of the same horizon already there is the older one: this replaces it. */
	for (struct prediction_memo **at = &shelf; *at; at = &(*at)->next)
		if ((*at)->horizon == m->horizon) {
			struct prediction_memo *old = *at;

			*at = old->next;
			prediction_memo_free(old);
			break;
		}
	m->next = shelf;
	shelf = m;
	pthread_mutex_unlock(&shelf_lock);
}

struct prediction_memo *prediction_memo_take(const char *key, int64_t horizon)
{
	struct prediction_memo *m = NULL;

	pthread_mutex_lock(&shelf_lock);
	if (shelf_key && strcmp(shelf_key, key) == 0)
		for (struct prediction_memo **at = &shelf; *at; at = &(*at)->next)
			if ((*at)->horizon == horizon) {
				m = *at;
				*at = m->next;
				m->next = NULL;
				break;
			}
	pthread_mutex_unlock(&shelf_lock);
	return m;
}

void prediction_memo_shelf_clear(void)
{
	pthread_mutex_lock(&shelf_lock);
	shelf_clear_locked();
	pthread_mutex_unlock(&shelf_lock);
}

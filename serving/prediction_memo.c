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
	struct mix_memo *mix;              /* prediction_shelf_offer_mix's, or NULL */
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
	mix_memo_free(m->mix);
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
 * The memos of one key (a run's select leaves one per horizon for its
 * calibrate). Stages of a run take turns with it, but stages of one wave
 * run side by side, hence the lock.
 */
struct prediction_shelf {
	pthread_mutex_t lock;
	char *key;
	struct prediction_memo *memos;
	void *states[METHOD_COUNT]; /* prediction_shelf_offer_states'; all NULL: none */
};

struct prediction_shelf *prediction_shelf_new(void)
{
	struct prediction_shelf *s = xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void states_free(void *states[METHOD_COUNT])
{
	for (int m = 0; m < METHOD_COUNT; m++) {
		if (states[m])
			method_table[m]->free_state(states[m]);
		states[m] = NULL;
	}
}

static void shelf_clear_locked(struct prediction_shelf *s)
{
	while (s->memos) {
		struct prediction_memo *next = s->memos->next;

		prediction_memo_free(s->memos);
		s->memos = next;
	}
	states_free(s->states);
	free(s->key);
	s->key = NULL;
}

/* What the shelf holds is for key's data: what it held for other data is dropped. */
static void shelf_key_locked(struct prediction_shelf *s, const char *key)
{
	if (s->key && strcmp(s->key, key) == 0)
		return;
	shelf_clear_locked(s);
	s->key = xstrdup(key);
}

void prediction_shelf_free(struct prediction_shelf *s)
{
	if (!s)
		return;
	shelf_clear_locked(s);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void prediction_shelf_offer(struct prediction_shelf *s, const char *key, struct prediction_memo *m)
{
	if (!s) {
		prediction_memo_free(m);
		return;
	}
	pthread_mutex_lock(&s->lock);
	shelf_key_locked(s, key);
	/* A memo of the same horizon already there is the older one: this replaces it. */
	for (struct prediction_memo **at = &s->memos; *at; at = &(*at)->next)
		if ((*at)->horizon == m->horizon) {
			struct prediction_memo *old = *at;

			*at = old->next;
			prediction_memo_free(old);
			break;
		}
	m->next = s->memos;
	s->memos = m;
	pthread_mutex_unlock(&s->lock);
}

struct prediction_memo *prediction_shelf_take(struct prediction_shelf *s, const char *key,
					      int64_t horizon)
{
	struct prediction_memo *m = NULL;

	if (!s)
		return NULL;
	pthread_mutex_lock(&s->lock);
	if (s->key && strcmp(s->key, key) == 0)
		for (struct prediction_memo **at = &s->memos; *at; at = &(*at)->next)
			if ((*at)->horizon == horizon) {
				m = *at;
				*at = m->next;
				m->next = NULL;
				break;
			}
	pthread_mutex_unlock(&s->lock);
	return m;
}

void prediction_shelf_offer_mix(struct prediction_shelf *s, const char *key, int64_t horizon,
				struct mix_memo *mix)
{
	struct prediction_memo *m = NULL;

	if (!s) {
		mix_memo_free(mix);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (s->key && strcmp(s->key, key) == 0)
		for (m = s->memos; m && m->horizon != horizon; m = m->next)
			;
	if (m) {
		mix_memo_free(m->mix);
		m->mix = mix;
	}
	pthread_mutex_unlock(&s->lock);
	if (!m)
		mix_memo_free(mix);
}

void prediction_shelf_offer_states(struct prediction_shelf *s, const char *key,
				   void *states[METHOD_COUNT])
{
	if (!s) {
		states_free(states);
		return;
	}
	pthread_mutex_lock(&s->lock);
	shelf_key_locked(s, key);
	states_free(s->states);
	for (int m = 0; m < METHOD_COUNT; m++) {
		s->states[m] = states[m];
		states[m] = NULL;
	}
	pthread_mutex_unlock(&s->lock);
}

int prediction_shelf_take_states(struct prediction_shelf *s, const char *key,
				 void *states[METHOD_COUNT])
{
	int all = 0;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (s->key && strcmp(s->key, key) == 0) {
		all = 1;
		for (int m = 0; m < METHOD_COUNT; m++)
			all &= s->states[m] != NULL;
	}
	for (int m = 0; all && m < METHOD_COUNT; m++) {
		states[m] = s->states[m];
		s->states[m] = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	return all;
}

struct mix_memo *prediction_memo_take_mix(struct prediction_memo *m)
{
	struct mix_memo *mix = m ? m->mix : NULL;

	if (m)
		m->mix = NULL;
	return mix;
}

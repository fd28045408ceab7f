/*
 * What `score --users F` knows of each row of F (contract in
 * include/ltv/user_lookup.h): moved from cli/score.c, which had grown past
 * 1,800 lines (session 19).
 */
#include <assert.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/common.h"
#include "ltv/csvread.h"
#include "ltv/user_lookup.h"

/*
 * Reads the reasons ingest's parser gave for the users file's rejected
 * rows (its rejects file in dir), by line, so the output can say them.
 */
void user_lookup_load_rejects(struct user_lookup *l, const char *dir, const char *users_path)
{
	char *pattern = xasprintf("%s/*.rejects.csv", dir);
	struct csv_reader *r = NULL;
	struct ltv_err err;
	glob_t g;
	char **f;
	size_t n, line;

	strmap_init(&l->rejected);
	if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc == 1 &&
	    (r = csv_reader_open(g.gl_pathv[0], &err)) != NULL) {
		while (csv_reader_next(r, &f, &n, &line, &err) == 1) {
			if (n != 4 || line == 1 || strcmp(f[0], users_path) != 0)
				continue;
			l->reasons = xrealloc(l->reasons, (l->n_reasons + 1) * sizeof(char *));
			l->reasons[l->n_reasons] = xasprintf("rejected: %s: %s", f[2], f[3]);
			strmap_put(&l->rejected, f[1], (int64_t)l->n_reasons++);
		}
	}
	csv_reader_free(r);
	if (g.gl_pathv)
		globfree(&g);
	free(pattern);
}

/*
 * The arrays by uid are built while the models predict, so they add to the
 * peak: one array from uid to scored index (there were two, by uid to the
 * frame row and by row to the index), of int32_t (ssize_t was 8 MB at
 * 1,000,000 users, now 4), and the install times read where the users
 * table has them when uid = index + 1, as in memory it always is (a copy by
 * uid was 8 MB at 1,000,000 users).
 */
void user_lookup_build(struct user_lookup *l, const struct user_table *users,
		       const struct model_data *d, const struct scored *s)
{
	const double *uid = frame_column(&d->frame, "uid");
	int by_index = 1;

	assert(s->n <= INT32_MAX);
	memset(l, 0, sizeof(*l)); /* reasons and n_reasons too: user_lookup_load_rejects only appends */
	l->users = users;
	l->next = 0;
	l->have_ids = 0;
	strmap_init(&l->ids);
	l->seen = xcalloc(users->n + 1, 1);
	l->scored = xmalloc((users->n + 1) * sizeof(*l->scored));
	for (size_t u = 0; u <= users->n; u++)
		l->scored[u] = -1;
	for (size_t i = 0; i < s->n; i++) {
		const double u = uid[s->rows[i]];

		if (u >= 1 && u <= (double)users->n)
			l->scored[(size_t)u] = (int32_t)i;
	}
	for (size_t u = 0; u < users->n && by_index; u++)
		by_index = users->uid[u] == (int64_t)u + 1;
	if (by_index)
		return;
	l->install = xcalloc(users->n + 1, sizeof(*l->install));
	for (size_t u = 0; u < users->n; u++) {
		if (users->uid[u] >= 1 && (size_t)users->uid[u] <= users->n)
			l->install[users->uid[u]] = users->install_time[u];
	}
}

/* The install time of user uid (1 to users->n). */
static int64_t lookup_install(const struct user_lookup *l, int64_t uid)
{
	return l->install ? l->install[uid] : l->users->install_time[uid - 1];
}

void user_lookup_release(struct user_lookup *l)
{
	strmap_release(&l->ids);
	free(l->scored);
	free(l->install);
	free(l->seen);
	strmap_release(&l->rejected);
	for (size_t i = 0; i < l->n_reasons; i++)
		free(l->reasons[i]);
	free(l->reasons);
}

/*
 * The uid of the user with this id; 0 when none was loaded. Users load in the
 * users file's order, so a row is nearly always the next user, found without
 * hashing; a duplicate or a row that was not loaded builds the map once.
 */
static int64_t lookup_uid(struct user_lookup *l, const char *id)
{
	const struct user_table *t = l->users;
	int64_t uid;

	if (l->next < t->n && strcmp(t->user_id[l->next], id) == 0)
		return t->uid[l->next++];
	if (!l->have_ids) {
		for (size_t u = 0; u < t->n; u++)
			strmap_put(&l->ids, t->user_id[u], t->uid[u]);
		l->have_ids = 1;
	}
	return strmap_get(&l->ids, id, &uid) ? uid : 0;
}

/*
 * Why the user with this id was not scored, or NULL when it was (its index
 * in *out_i); older is the reason of a user past the longest horizon, built
 * once by the caller (an snprintf per row was most of the printf left in
 * writing 1M rows). Every input row gets an answer: none is ever dropped.
 */
const char *user_lookup_reason(struct user_lookup *l, const char *id, size_t line, int64_t as_of,
			       const char *older, size_t *out_i)
{
	char key[32];
	int64_t uid, k;
	int32_t r;

	if (l->n_reasons) {
		snprintf(key, sizeof(key), "%zu", line);
		if (strmap_get(&l->rejected, key, &k))
			return l->reasons[k];
	}
	uid = lookup_uid(l, id);
	if (uid < 1)
		return "not loaded: the row was rejected when read (the rejects file has the reason)";
	if (l->seen[uid])
		return "duplicate user id: scored on its first row";
	l->seen[uid] = 1;
	if (lookup_install(l, uid) > as_of)
		return "installed after as_of: nothing about the user is known yet";
	r = l->scored[uid];
	if (r < 0)
		return older;
	*out_i = (size_t)r;
	return NULL;
}

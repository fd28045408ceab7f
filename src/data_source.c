/*
 * Users and user-days from a registry or from memory (contract in
 * include/ltv/data_source.h).
 */
#include <string.h>

#include <xxhash.h>

#include "ltv/data_source.h"

/* Text blocks hold this much at least; a longer string gets a block of its own size. */
#define TEXT_BLOCK (1 << 20)

void user_data_init(struct user_data *u)
{
	memset(u, 0, sizeof(*u));
	u->max_event_time = INT64_MIN;
}

/* A copy of s in the current text block; NULL stays NULL. */
static char *keep_text(struct user_data *ud, const char *s)
{
	size_t len;
	char *p;

	if (!s)
		return NULL;
	len = strlen(s) + 1;
	if (ud->n_blocks == 0 || ud->block_used + len > ud->block_size) {
		ud->block_size = len > TEXT_BLOCK ? len : TEXT_BLOCK;
		ud->blocks = xrealloc(ud->blocks, (ud->n_blocks + 1) * sizeof(char *));
		ud->blocks[ud->n_blocks++] = xmalloc(ud->block_size);
		ud->block_used = 0;
	}
	p = ud->blocks[ud->n_blocks - 1] + ud->block_used;
	memcpy(p, s, len);
	ud->block_used += len;
	return p;
}

/*
 * keep_text for a value many users share (app, campaign, attributes): a
 * string equal to the one last kept in its slot of a small cache is not
 * copied again. At 1,000,000 users those three were about 80 MB of copies
 * of a few hundred distinct strings, each page of it fresh (README "Threads
 * and performance"); a value unique to each user just misses and is copied.
 */
static char *keep_shared_text(struct user_data *ud, const char *s)
{
	char **slot;

	if (!s)
		return NULL;
	/*
	 * XXH3, not the byte-at-a-time FNV-1a it was: two values of each user
	 * went through that loop of dependent multiplies, 12-15% of the main
	 * thread's samples in score's users file (perf). Any hash is right: the
	 * slot's string is compared before it is shared.
	 */
	slot = &ud->shared[XXH3_64bits(s, strlen(s)) % USER_DATA_SHARED_SLOTS];
	if (!*slot || strcmp(*slot, s) != 0)
		*slot = keep_text(ud, s);
	return *slot;
}

/* Room for cap users in every column of ud->users. */
static void grow_users(struct user_data *ud, size_t cap)
{
	struct user_table *t = &ud->users;

	ud->cap_users = cap;
	t->uid = xrealloc(t->uid, ud->cap_users * sizeof(*t->uid));
		t->user_id = xrealloc(t->user_id, ud->cap_users * sizeof(*t->user_id));
		t->app_id = xrealloc(t->app_id, ud->cap_users * sizeof(*t->app_id));
		t->campaign = xrealloc(t->campaign, ud->cap_users * sizeof(*t->campaign));
		t->install_time = xrealloc(t->install_time, ud->cap_users * sizeof(*t->install_time));
		t->cost = xrealloc(t->cost, ud->cap_users * sizeof(*t->cost));
		t->attributes_json = xrealloc(t->attributes_json,
					      ud->cap_users * sizeof(*t->attributes_json));
}

void user_data_reserve(struct user_data *ud, size_t n)
{
	if (n > ud->cap_users)
		grow_users(ud, n);
}

void user_data_add_user(struct user_data *ud, const struct user_row *u)
{
	struct user_table *t = &ud->users;
	const size_t i = t->n;

	if (i == ud->cap_users)
		grow_users(ud, ud->cap_users ? 2 * ud->cap_users : 1024);
	t->uid[i] = u->uid;
	t->user_id[i] = keep_text(ud, u->user_id);
	t->app_id[i] = keep_shared_text(ud, u->app_id);
	t->campaign[i] = keep_shared_text(ud, u->campaign);
	t->install_time[i] = u->install_time;
	t->cost[i] = u->cost;
	t->attributes_json[i] = keep_shared_text(ud, u->attributes_json);
	t->n++;
}

void user_data_release(struct user_data *u)
{
	struct user_table *t = &u->users;

	/* the strings are in the blocks, not each its own allocation */
	user_table_free_arrays(t);
	for (size_t i = 0; i < u->n_blocks; i++)
		free(u->blocks[i]);
	free(u->blocks);
	free(u->days);
	user_data_init(u);
}

void user_data_release_days(struct user_data *u)
{
	free(u->days);
	u->days = NULL;
	u->n_days = 0;
}

void user_data_release_frame_columns(struct user_data *u)
{
	struct user_table *t = &u->users;

	free(t->app_id);
	free(t->campaign);
	free(t->cost);
	free(t->attributes_json);
	t->app_id = t->campaign = t->attributes_json = NULL;
	t->cost = NULL;
}

int data_source_users(const struct data_source *s, struct user_table *owned,
		      const struct user_table **out, struct ltv_err *err)
{
	int ret;

	memset(owned, 0, sizeof(*owned));
	if (s->mem) {
		*out = &s->mem->users;
		return 0;
	}
	ret = registry_users_load(s->reg, owned, err);
	*out = owned;
	return ret;
}

int data_source_user_days_each(const struct data_source *s, user_day_fn fn, void *ctx,
			       struct ltv_err *err)
{
	if (!s->mem)
		return registry_user_days_each(s->reg, fn, ctx, err);
	for (size_t i = 0; i < s->mem->n_days; i++) {
		const struct user_day_row *d = &s->mem->days[i];
		int ret = fn(ctx, d->uid, d->day, d->revenue, d->events, d->purchases);

		if (ret < 0)
			return ret;
	}
	return 0;
}

size_t data_source_user_days_bound(const struct data_source *s)
{
	struct ltv_err ignored = { 0 };
	size_t n = 0;

	if (s->mem)
		return s->mem->n_days;
	/* a failed count reserves nothing; the read itself then says what failed */
	return registry_user_days_bound(s->reg, &n, &ignored) == 0 ? n : 0;
}

int data_source_users_and_days(const struct data_source *s, int threads, struct user_table *owned,
				const struct user_table **out, user_day_fn fn, void *ctx,
				struct ltv_err *err)
{
	memset(owned, 0, sizeof(*owned));
	if (!s->mem) {
		*out = owned;
		return registry_users_and_days(s->reg, threads, owned, fn, ctx, err);
	}
	*out = &s->mem->users;
	for (size_t i = 0; i < s->mem->n_days; i++) {
		const struct user_day_row *d = &s->mem->days[i];
		int ret;

		/*
		 * ingest_parse keeps only the days of users it kept, and
		 * user_data_load refuses a registry's day of no user: a bug
		 */
		if (d->uid < 1 || (uint64_t)d->uid > s->mem->users.n)
			return err_set(err, LTV_EINTERNAL, "a user-day of uid %lld (day %lld) is not "
				       "one of the %zu users in memory", (long long)d->uid,
				       (long long)d->day, s->mem->users.n);
		ret = fn(ctx, d->uid, d->day, d->revenue, d->events, d->purchases);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int data_source_max_event_time(const struct data_source *s, int64_t *out, struct ltv_err *err)
{
	char *value = NULL;
	int ret;

	if (s->mem) {
		if (s->mem->max_event_time == INT64_MIN)
			return LTV_ENOTFOUND;
		*out = s->mem->max_event_time;
		return 0;
	}
	ret = registry_meta_get(s->reg, "max_event_time", &value, err);
	if (ret == 0 && parse_int64(value, out) < 0)
		ret = err_set(err, LTV_EREGISTRY, "registry meta max_event_time '%s' is not a time; "
			      "rerun ingest (ltvpipe run --only ingest --force)", value);
	free(value);
	return ret;
}

struct day_loader {
	struct registry *reg;
	struct user_data *ud;
	size_t cap;
	int64_t installed_since;
	struct ltv_err *err;
};

static int keep_user_day(void *ctx, int64_t uid, int64_t day, double revenue, int64_t events,
			 int64_t purchases)
{
	struct day_loader *l = ctx;
	struct user_data *ud = l->ud;

	/* uid = index + 1 (user_data_add_user) */
	if (uid < 1 || (size_t)uid > ud->users.n)
		return registry_day_of_no_user(l->reg, uid, day, ud->users.n, l->err);
	if (ud->users.install_time[uid - 1] < l->installed_since)
		return 0;
	if (ud->n_days == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4096;
		ud->days = xrealloc(ud->days, l->cap * sizeof(*ud->days));
	}
	ud->days[ud->n_days++] = (struct user_day_row){ uid, day, revenue, events, purchases };
	return 0;
}

int user_data_load(struct registry *reg, int64_t installed_since, struct user_data *out,
		   struct ltv_err *err)
{
	struct user_table t;
	int ret;

	user_data_init(out);
	ret = registry_users_load(reg, &t, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < t.n; i++) {
		const struct user_row u = { .uid = t.uid[i], .user_id = t.user_id[i],
					    .app_id = t.app_id[i], .campaign = t.campaign[i],
					    .install_time = t.install_time[i], .cost = t.cost[i],
					    .attributes_json = t.attributes_json[i] };

		user_data_add_user(out, &u);
	}
	user_table_release(&t);
	{
		struct day_loader l = { .reg = reg, .ud = out, .cap = 0,
					.installed_since = installed_since, .err = err };

		ret = registry_user_days_each(reg, keep_user_day, &l, err);
	}
	if (ret == 0) {
		const struct data_source src = data_source_registry(reg);

		ret = data_source_max_event_time(&src, &out->max_event_time, err);
		if (ret == LTV_ENOTFOUND) {
			out->max_event_time = INT64_MIN;
			ret = 0;
		}
	}
	if (ret < 0)
		user_data_release(out);
	return ret;
}

/*
 * Users and user-days from a registry or from memory (contract in
 * include/ltv/data_source.h).
 */
#include <string.h>

#include "ltv/data_source.h"

void user_data_release(struct user_data *u)
{
	user_table_release(&u->users);
	free(u->days);
	memset(u, 0, sizeof(*u));
	u->max_event_time = INT64_MIN;
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

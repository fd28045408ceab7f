/* One value per snapshot age (include/ltv/age_means.h). */
#include <math.h>
#include <stdio.h>

#include "ltv/age_means.h"

/* The index of the largest snapshot at or below age; -1 when none (or age is NaN). */
static int interval_of(const struct int_list *snapshots, double age)
{
	int k = -1;

	for (size_t j = 0; j < snapshots->n && (double)snapshots->v[j] <= age; j++)
		k = (int)j;
	return k;
}

/*
 * age_means_fit's pass, each row i added repeats[i] times in a row (repeats
 * NULL: once), as if it stood that many times in the rows.
 */
static void fit_rows(const struct int_list *snapshots, const double *age, const double *num,
		     const double *den, const double *w, const size_t *repeats, const int *group,
		     size_t n_groups, size_t n, const double *pooled, struct age_means *out)
{
	const size_t n_snap = snapshots->n < AGE_MEANS_MAX ? snapshots->n : AGE_MEANS_MAX;
	const size_t cells = (n_groups ? n_groups : 1) * AGE_MEANS_MAX;
	double *sum_num = xcalloc(cells, sizeof(double)), *sum_den = xcalloc(cells, sizeof(double));
	double *weight = xcalloc(cells, sizeof(double));
	unsigned char *seen = xcalloc(cells, 1);

	for (size_t i = 0; i < n; i++) {
		const int g = group ? group[i] : 0;
		const int k = interval_of(snapshots, age[i]);
		const double wi = w ? w[i] : 1.0;
		size_t cell;

		if (g < 0 || (size_t)g >= n_groups || k < 0 || (size_t)k >= n_snap)
			continue;
		cell = (size_t)g * AGE_MEANS_MAX + (size_t)k;
		for (size_t r = repeats ? repeats[i] : 1; r > 0; r--) {
			sum_num[cell] += wi * num[i];
			sum_den[cell] += wi * (den ? den[i] : 1.0);
			weight[cell] += wi;
			seen[cell] = 1;
		}
	}
	for (size_t g = 0; g < n_groups; g++) {
		struct age_means *m = &out[g];

		m->n = 0;
		for (size_t k = 0; k < n_snap; k++) {
			const size_t cell = g * AGE_MEANS_MAX + k;

			if (!seen[cell])
				continue;
			m->age[m->n] = (double)snapshots->v[k];
			m->value[m->n++] = weight[cell] >= AGE_MEANS_MIN_ROWS && sum_den[cell] != 0
						   ? sum_num[cell] / sum_den[cell]
						   : pooled[g];
		}
	}
	free(sum_num);
	free(sum_den);
	free(weight);
	free(seen);
}

void age_means_fit(const struct int_list *snapshots, const double *age, const double *num,
		   const double *den, const double *w, const int *group, size_t n_groups,
		   size_t n, const double *pooled, struct age_means *out)
{
	fit_rows(snapshots, age, num, den, w, NULL, group, n_groups, n, pooled, out);
}

void age_means_fit_repeated(const struct int_list *snapshots, const double *age,
			    const double *num, const size_t *repeats, const int *group,
			    size_t n_groups, size_t n, const double *pooled, struct age_means *out)
{
	fit_rows(snapshots, age, num, NULL, NULL, repeats, group, n_groups, n, pooled, out);
}

double age_means_at(const struct age_means *m, double age, double fallback)
{
	double v = fallback;

	for (size_t i = 0; i < m->n && m->age[i] <= age; i++)
		v = m->value[i];
	return v;
}

double age_means_monotone(const struct age_means_horizons *hs, int64_t horizon, double age,
			  unsigned flags)
{
	double best = NAN;

	for (size_t j = 0; j < hs->n; j++) {
		const int64_t hj = hs->horizon(hs->ctx, j);
		const int own = hj == horizon && (flags & AGE_MEANS_OWN_HORIZON_ALWAYS);
		double v;

		if (hj < 0 || hj > horizon || (!own && age >= (double)hj))
			continue;
		v = hs->value(hs->ctx, j, age);
		if (isnan(best) || v > best)
			best = v;
	}
	return best;
}

void age_means_put(struct blob_writer *w, const struct age_means *m)
{
	blob_put_u32(w, (uint32_t)m->n);
	for (size_t i = 0; i < m->n; i++) {
		blob_put_f64(w, m->age[i]);
		blob_put_f64(w, m->value[i]);
	}
}

int age_means_get(struct blob_reader *r, struct age_means *m)
{
	const uint32_t n = blob_get_u32(r);

	m->n = 0;
	if (r->failed || n > AGE_MEANS_MAX) {
		r->failed = 1;
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		m->age[i] = blob_get_f64(r);
		m->value[i] = blob_get_f64(r);
		if (r->failed || !isfinite(m->age[i]) || !isfinite(m->value[i]) ||
		    (i > 0 && !(m->age[i] > m->age[i - 1]))) {
			r->failed = 1;
			return -1;
		}
	}
	m->n = n;
	return 0;
}

void age_means_get_factors(struct blob_reader *r, uint32_t version, double *smear,
			   struct age_means *m)
{
	m->n = 0;
	if (version >= 2)
		age_means_get(r, m);
	for (size_t a = 0; a < m->n; a++)
		if (!(m->value[a] > 0))
			*smear = NAN;
}

void age_means_add_json(cJSON *obj, const char *name, const struct age_means *m)
{
	cJSON *by_age = cJSON_AddObjectToObject(obj, name);

	for (size_t i = 0; i < m->n; i++) {
		char key[32];

		snprintf(key, sizeof(key), "%g", m->age[i]);
		cJSON_AddNumberToObject(by_age, key, m->value[i]);
	}
}

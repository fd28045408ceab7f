/*
 * Reads the CDNOW purchase log once and summarises it per customer (see
 * cdnow.h), for the two models that the papers fit to it.
 */
#include "testutil.h"

#include "cdnow.h"

#include "ltv/common.h"

struct purchase {
	int64_t id;
	int64_t day; /* days since 1970-01-01 */
	double sales;
};

static struct cdnow_customers customers;
static int loaded; /* 0 not tried, 1 loaded, -1 file absent */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int cmp_purchase(const void *pa, const void *pb)
{
	const struct purchase *a = pa, *b = pb;

	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return (a->day > b->day) - (a->day < b->day);
}

/* Reads cdnowElog.csv (masterid,sampleid,date,cds,sales), sorted by customer then day. */
static struct purchase *read_elog(const char *path, size_t *out_n)
{
	FILE *f = fopen(path, "r");
	struct purchase *rows = NULL;
	size_t n = 0, cap = 0, line_no = 0;
	char line[256];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *field[5];
		int64_t date;
		int k = 0;

		line_no++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line_no == 1 || !*line)
			continue;
		for (char *tok = strtok_r(line, ",", &save); tok && k < 5;
		     tok = strtok_r(NULL, ",", &save))
			field[k++] = tok;
		assert_int_equal(k, 5);
		ARRAY_GROW(rows, n + 1, cap);
		assert_int_equal(parse_int64(field[0], &rows[n].id), 0);
		assert_int_equal(parse_int64(field[2], &date), 0);
		assert_int_equal(parse_double(field[4], &rows[n].sales), 0);
		rows[n].day = days_from_civil(date / 10000, date / 100 % 100, date % 100);
		n++;
	}
	fclose(f);
	qsort(rows, n, sizeof(*rows), cmp_purchase);
	*out_n = n;
	return rows;
}

const struct cdnow_customers *cdnow_customers(void)
{
	const int64_t cal_end = days_from_civil(1997, 9, 30);
	struct cdnow_customers *c = &customers;
	struct purchase *rows;
	const char *path;
	size_t n_rows;

	if (loaded)
		return loaded > 0 ? c : NULL;
	path = test_shared_path("cdnow/cdnowElog.csv");
	if (!path) {
		loaded = -1;
		return NULL;
	}
	rows = read_elog(path, &n_rows);
	c->x = xmalloc(n_rows * sizeof(double));
	c->t_x = xmalloc(n_rows * sizeof(double));
	c->T = xmalloc(n_rows * sizeof(double));
	c->m_x = xmalloc(n_rows * sizeof(double));
	for (size_t i = 0; i < n_rows;) {
		const int64_t first = rows[i].day;
		int64_t last = first;
		double x = 0, spend = 0;
		size_t j = i + 1;

		/* Rows are sorted by day, so a same-day purchase follows its twin. */
		for (; j < n_rows && rows[j].id == rows[i].id; j++) {
			if (rows[j].day > cal_end || rows[j].day == first)
				continue;
			if (rows[j].day != last)
				x++;
			last = rows[j].day;
			spend += rows[j].sales;
		}
		c->x[c->n] = x;
		c->t_x[c->n] = (double)(last - first) / 7.0;
		c->T[c->n] = (double)(cal_end - first) / 7.0;
		c->m_x[c->n] = x > 0 ? spend / x : 0;
		c->n++;
		i = j;
	}
	free(rows);
	loaded = 1;
	return c;
}

void cdnow_release(void)
{
	free(customers.x);
	free(customers.t_x);
	free(customers.T);
	free(customers.m_x);
	memset(&customers, 0, sizeof(customers));
	loaded = 0;
}

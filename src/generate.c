/*
 * Synthetic users.csv and events.csv with the structure the pipeline's models
 * are meant to find (include/ltv/generate.h has the contract). Campaign
 * quality is a product of name-token effects (network, country, platform,
 * theme) and a campaign random effect, so the semantic and tier models have
 * something real to learn; a user's latent engagement drives both early
 * activity and payer propensity, so D0-D1 features predict LTV; many payers
 * first pay after D1 and subscriptions charge after a 7-day trial, so
 * revenue-in-window is often 0 for eventual payers. Users are generated one
 * at a time from their own random stream and written straight out, so memory
 * does not grow with n_users and the bytes do not depend on anything but the
 * parameters. Times and money are formatted by hand: tens of millions of rows
 * go through these few lines, and integer cents keep totals exact.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "generate_io.h"
#include "ltv/generate.h"
#include "ltv/rng.h"
#include "ltv/timeutil.h"

#define DAY 86400
#define MAX_DAY_EVENTS 512
#define MAX_CHARGES 64
#define EMPTY_COST_SHARE 0.003
#define N_ANCHORS ((int)(sizeof(anchors) / sizeof(anchors[0])))

static inline double logistic(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

static inline double clampd(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

/* ---- the world: apps, networks, countries, themes ----------------------- */

enum monetisation { MON_IAP, MON_SUB, MON_SHOP };

struct app_def {
	const char *id;
	enum monetisation kind;
	int is_game;
	double campaign_weight; /* share of campaigns promoting it */
	double payer_base;      /* payer propensity before campaign effects */
	double amount_median;   /* dollars per purchase (IAP, shop) or monthly price (sub) */
	double user_sigma;      /* spread of users' typical purchase (log scale) */
	double repeat_rate;     /* purchase chance per active day after the first */
	double early_pay;       /* share of payers whose first purchase is on D0-D1 */
	double whale_share;     /* share of payers who are whales */
	double cpi_mult;
};

static const struct app_def apps[] = {
	{ "puzzle_blast", MON_IAP, 1, 0.35, 0.030, 3.5, 0.7, 0.30, 0.45, 0.015, 0.8 },
	{ "kingdom_tactics", MON_IAP, 1, 0.22, 0.022, 7.0, 0.8, 0.35, 0.40, 0.025, 1.1 },
	{ "fitpulse", MON_SUB, 0, 0.18, 0.040, 9.99, 0.0, 0.0, 0.0, 0.0, 1.3 },
	{ "shopmart", MON_SHOP, 0, 0.25, 0.050, 24.0, 0.6, 0.12, 0.55, 0.0, 1.0 },
};
#define N_APPS ((int)(sizeof(apps) / sizeof(apps[0])))

enum { NET_SOCIAL = 1, NET_ADNET = 2, NET_SEARCH = 4 };

struct network_def {
	const char *name;
	int kind;
	int ios_only;
	double weight, payer, spend, cpi;
};

static const struct network_def networks[] = {
	{ "fb", NET_SOCIAL, 0, 0.22, 1.10, 1.00, 1.10 },
	{ "google_uac", NET_SEARCH, 0, 0.20, 1.00, 1.00, 1.00 },
	{ "tiktok", NET_SOCIAL, 0, 0.14, 0.75, 0.90, 0.70 },
	{ "snap", NET_SOCIAL, 0, 0.06, 0.70, 0.90, 0.65 },
	{ "applovin", NET_ADNET, 0, 0.14, 0.95, 1.05, 0.90 },
	{ "unity", NET_ADNET, 0, 0.10, 0.65, 0.85, 0.60 },
	{ "ironsource", NET_ADNET, 0, 0.07, 0.70, 0.90, 0.65 },
	{ "asa", NET_SEARCH, 1, 0.07, 1.50, 1.20, 1.40 },
};
#define N_NETWORKS ((int)(sizeof(networks) / sizeof(networks[0])))

struct country_def {
	const char *code;
	double weight, payer, spend;
	double cpi_ios, cpi_android; /* dollars per install on an average network */
};

static const struct country_def countries[] = {
	{ "us", 0.22, 1.00, 1.00, 3.00, 1.80 },
	{ "gb", 0.07, 0.90, 0.90, 2.40, 1.40 },
	{ "de", 0.07, 0.85, 0.90, 2.20, 1.30 },
	{ "fr", 0.05, 0.75, 0.80, 1.80, 1.00 },
	{ "jp", 0.07, 0.90, 1.40, 3.20, 2.20 },
	{ "kr", 0.04, 0.85, 1.20, 2.60, 1.60 },
	{ "br", 0.12, 0.45, 0.35, 0.80, 0.50 },
	{ "mx", 0.07, 0.45, 0.40, 0.75, 0.45 },
	{ "in", 0.12, 0.25, 0.20, 0.45, 0.15 },
	{ "id", 0.07, 0.30, 0.25, 0.50, 0.20 },
	{ "tr", 0.05, 0.35, 0.30, 0.60, 0.30 },
};
#define N_COUNTRIES ((int)(sizeof(countries) / sizeof(countries[0])))

enum { PLAT_IOS, PLAT_ANDROID };
static const char *const platform_names[] = { "ios", "android" };
static const double platform_payer[] = { 1.40, 1.00 };
static const double platform_spend[] = { 1.20, 1.00 };

struct theme_def {
	const char *name;
	int networks;  /* NET_* kinds that run it */
	int game_only; /* rewarded and playable ads only sell games */
	double payer, spend, cpi;
};

static const struct theme_def themes[] = {
	{ "broad", NET_SOCIAL | NET_ADNET | NET_SEARCH, 0, 0.90, 1.00, 0.90 },
	{ "lookalike", NET_SOCIAL, 0, 1.25, 1.05, 1.15 },
	{ "interest", NET_SOCIAL, 0, 1.00, 1.00, 1.00 },
	{ "video", NET_SOCIAL | NET_ADNET, 0, 0.90, 1.00, 0.90 },
	{ "rewarded", NET_ADNET, 1, 0.55, 0.80, 0.60 },
	{ "playable", NET_ADNET, 1, 0.85, 0.95, 0.85 },
	{ "search", NET_SEARCH, 0, 1.20, 1.05, 1.20 },
	{ "brand", NET_SEARCH, 0, 1.35, 1.10, 1.30 },
	{ "value", NET_SOCIAL | NET_ADNET | NET_SEARCH, 0, 1.50, 1.30, 1.60 },
	{ "promo", NET_SOCIAL | NET_ADNET | NET_SEARCH, 0, 0.80, 0.85, 0.75 },
};
#define N_THEMES ((int)(sizeof(themes) / sizeof(themes[0])))

/*
 * Always-on campaigns every seed has: each app is on sale every day, and the
 * contrasts tests rely on (US iOS against BR Android) always exist.
 */
static const struct {
	int app;
	const char *net, *country;
	int platform;
	const char *theme;
} anchors[] = {
	{ 0, "fb", "us", PLAT_IOS, "broad" },
	{ 0, "google_uac", "br", PLAT_ANDROID, "broad" },
	{ 1, "applovin", "us", PLAT_ANDROID, "playable" },
	{ 1, "fb", "us", PLAT_IOS, "lookalike" },
	{ 2, "asa", "us", PLAT_IOS, "search" },
	{ 3, "tiktok", "br", PLAT_ANDROID, "promo" },
};

struct campaign {
	char name[64];
	int app, net, country, platform, theme;
	int launch_day, end_day; /* active on [launch_day, end_day) of the span */
	double weight;           /* relative install volume while active */
	double payer_mult;       /* applied to the app's payer_base */
	double spend_mult;       /* applied to purchase amounts and subscription retention */
	double cpi;              /* mean cost per install, dollars */
};

/* ---- dates and number formatting --------------------------------------- */

/* Strict "YYYY-MM-DD" (no time, no spaces, 1970 or later) to epoch seconds of its midnight UTC. */
static int parse_date(const char *s, int64_t *out_ts)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || s[0] == ' ' ||
	    time_parse_iso8601(s, out_ts) < 0 || *out_ts < 0)
		return -1;
	return 0;
}

/* ---- campaigns ---------------------------------------------------------- */

static int find_name(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

static int campaign_name_taken(const struct campaign *c, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return 1;
	return 0;
}

/*
 * The period token tells the truth about the launch date: the calendar
 * quarter or year it launched in, last year's for campaigns already running
 * when the data starts, or nothing at all.
 */
static void campaign_name(struct campaign *cs, int idx, int64_t start_ts, int legacy,
			  struct rng *r)
{
	struct campaign *c = &cs[idx];
	char period[16] = "";
	char base[48];
	int64_t y;
	unsigned m, d;
	double u = rng_unif(r);

	time_civil_from_days(start_ts / DAY + c->launch_day, &y, &m, &d);
	if (legacy && u < 0.6)
		snprintf(period, sizeof(period), "_%d", (int)y - 1);
	else if (u < 0.45)
		snprintf(period, sizeof(period), "_q%d", (int)(m - 1) / 3 + 1);
	else if (u < 0.7)
		snprintf(period, sizeof(period), "_%d", (int)y);
	snprintf(base, sizeof(base), "%s_%s_%s_%s%s", networks[c->net].name,
		 countries[c->country].code, platform_names[c->platform], themes[c->theme].name,
		 period);
	snprintf(c->name, sizeof(c->name), "%s", base);
	for (int v = 2; campaign_name_taken(cs, idx, c->name); v++)
		snprintf(c->name, sizeof(c->name), "%s_v%d", base, v);
}

static void campaign_effects(struct campaign *c, struct rng *r)
{
	const struct network_def *net = &networks[c->net];
	const struct country_def *co = &countries[c->country];
	const struct theme_def *th = &themes[c->theme];
	const double cpi_base = c->platform == PLAT_IOS ? co->cpi_ios : co->cpi_android;

	/* exp(N(0, s) - s^2/2) has mean 1, so the name effects are the means. */
	c->payer_mult = co->payer * platform_payer[c->platform] * net->payer * th->payer *
			exp(0.35 * rng_normal(r) - 0.06125);
	c->spend_mult = co->spend * platform_spend[c->platform] * net->spend * th->spend *
			exp(0.25 * rng_normal(r) - 0.03125);
	c->cpi = cpi_base * net->cpi * th->cpi * apps[c->app].cpi_mult *
		 exp(0.20 * rng_normal(r) - 0.02);
}

/* Fills cs[0..n) from the seed alone; n > N_ANCHORS. */
static void campaigns_make(struct campaign *cs, int n, uint64_t seed, int64_t start_ts,
			   int span_days)
{
	double app_w[N_APPS], net_w[N_NETWORKS], country_w[N_COUNTRIES], theme_w[N_THEMES];
	const char *net_names[N_NETWORKS], *country_names[N_COUNTRIES], *theme_names[N_THEMES];
	struct rng r;

	rng_seed(&r, seed, 0xCA3FA16E5ULL);
	for (int i = 0; i < N_APPS; i++)
		app_w[i] = apps[i].campaign_weight;
	for (int i = 0; i < N_NETWORKS; i++)
		net_names[i] = networks[i].name;
	for (int i = 0; i < N_COUNTRIES; i++) {
		country_w[i] = countries[i].weight;
		country_names[i] = countries[i].code;
	}
	for (int i = 0; i < N_THEMES; i++)
		theme_names[i] = themes[i].name;

	for (int i = 0; i < n; i++) {
		struct campaign *c = &cs[i];
		int legacy;

		memset(c, 0, sizeof(*c));
		if (i < N_ANCHORS) {
			c->app = anchors[i].app;
			c->net = find_name(net_names, N_NETWORKS, anchors[i].net);
			c->country = find_name(country_names, N_COUNTRIES, anchors[i].country);
			c->platform = anchors[i].platform;
			c->theme = find_name(theme_names, N_THEMES, anchors[i].theme);
			c->launch_day = 0;
			c->end_day = span_days;
			c->weight = 2.0;
			legacy = 1;
		} else {
			c->app = rng_pick(&r, app_w, N_APPS);
			c->platform = rng_unif(&r) < 0.45 ? PLAT_IOS : PLAT_ANDROID;
			for (int k = 0; k < N_NETWORKS; k++)
				net_w[k] = networks[k].ios_only && c->platform != PLAT_IOS
						   ? 0
						   : networks[k].weight;
			c->net = rng_pick(&r, net_w, N_NETWORKS);
			c->country = rng_pick(&r, country_w, N_COUNTRIES);
			for (int k = 0; k < N_THEMES; k++)
				theme_w[k] = (themes[k].networks & networks[c->net].kind) &&
							     !(themes[k].game_only && !apps[c->app].is_game)
						     ? 1
						     : 0;
			c->theme = rng_pick(&r, theme_w, N_THEMES);

			/* A third were running before the data starts; some launch late and stay young. */
			double u = rng_unif(&r);
			if (u < 0.3)
				c->launch_day = 0;
			else if (u < 0.4)
				c->launch_day = span_days - 1 - (int)rng_below(&r, (uint32_t)(span_days / 7 + 1));
			else
				c->launch_day = (int)rng_below(&r, (uint32_t)span_days);
			if (c->launch_day < 0)
				c->launch_day = 0;
			legacy = c->launch_day == 0 && rng_unif(&r) < 0.7;
			c->end_day = span_days;
			if (rng_unif(&r) < 0.2)
				c->end_day = c->launch_day + 30 + (int)rng_below(&r, 90);
			if (c->end_day > span_days)
				c->end_day = span_days;
			c->weight = exp(1.0 * rng_normal(&r) - 0.5);
			if (rng_unif(&r) < 0.12)
				c->weight *= 0.01; /* a test budget: a handful of users */
		}
		campaign_effects(c, &r);
		campaign_name(cs, i, start_ts, legacy, &r);
	}
}

/* ---- one user ----------------------------------------------------------- */

enum event_kind { EV_SESSION, EV_LEVEL_UP, EV_TUTORIAL, EV_PURCHASE, EV_RENEWAL };
static const char *const event_names[] = { "session", "level_up", "tutorial_complete",
					   "purchase", "subscription_renewal" };

struct event {
	int32_t off; /* seconds into the user's day */
	int32_t kind;
	int64_t cents;
};

/* Per-run constants shared by every user. */
struct world {
	const struct generate_param *p;
	int64_t start_ts, end_ts;
	struct campaign *cs;
	int n_campaigns;
	double *cum;        /* span_days x n_campaigns cumulative volume of active campaigns */
	double *act_decay;  /* d^-0.3: chance of coming back on day d */
	double *sess_decay; /* (d+1)^-0.25: sessions per active day */
	double *rep_decay;  /* (d+1)^-0.3: repeat purchases fade with age */
	int max_days;
};

static const int64_t price_points[] = { 99, 199, 299, 499, 999, 1999, 2999, 4999, 9999 };
#define N_PRICE_POINTS ((int)(sizeof(price_points) / sizeof(price_points[0])))

/* Store price point nearest to dollars in log space. */
static int64_t iap_price(double dollars)
{
	double best = 1e300;
	int64_t pick = price_points[0];
	const double lx = log(dollars * 100.0);

	for (int i = 0; i < N_PRICE_POINTS; i++) {
		double dist = fabs(lx - log((double)price_points[i]));
		if (dist < best) {
			best = dist;
			pick = price_points[i];
		}
	}
	return pick;
}

/* A subscription price ending in .99, lower where spend is lower. */
static int64_t sub_price(double base, double country_spend)
{
	int64_t dollars = (int64_t)floor(base * pow(country_spend, 0.6) + 0.5);

	if (dollars < 2)
		dollars = 2;
	return dollars * 100 - 1;
}

static void sort_events(struct event *ev, int n)
{
	for (int i = 1; i < n; i++) {
		struct event e = ev[i];
		int j = i - 1;

		while (j >= 0 && ev[j].off > e.off) {
			ev[j + 1] = ev[j];
			j--;
		}
		ev[j + 1] = e;
	}
}

static inline void push(struct event *ev, int *n, int32_t off, int kind, int64_t cents)
{
	if (*n >= MAX_DAY_EVENTS)
		return;
	if (off > DAY - 1)
		off = DAY - 1;
	ev[*n].off = off;
	ev[*n].kind = kind;
	ev[*n].cents = cents;
	(*n)++;
}

static int pick_campaign(const struct world *w, int day, double u)
{
	const double *cum = w->cum + (size_t)day * (size_t)w->n_campaigns;
	const double target = u * cum[w->n_campaigns - 1];
	int lo = 0, hi = w->n_campaigns - 1;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (cum[mid] > target)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

struct user_totals {
	int64_t revenue_cents;
	int64_t cost_cents;
	uint64_t n_events;
	int campaign;
};

/* Appends one users.csv row; returns the cost written in cents (0 when left empty). */
static int64_t write_user_row(struct gen_out *uo, struct time_fmt *tf, const char *id, size_t idlen,
			      const struct app_def *app, const struct campaign *c,
			      int64_t install, struct rng *r)
{
	char *q = gen_out_reserve(uo);
	int64_t cents = 0;

	memcpy(q, id, idlen);
	q += idlen;
	*q++ = ',';
	q = put_str(q, app->id);
	*q++ = ',';
	q = put_str(q, c->name);
	*q++ = ',';
	q = put_time(tf, q, install);
	*q++ = ',';
	if (rng_unif(r) >= EMPTY_COST_SHARE) {
		cents = (int64_t)floor(c->cpi * exp(0.25 * rng_normal(r) - 0.03125) * 100.0 + 0.5);
		if (cents < 1)
			cents = 1;
		q = put_money(q, cents);
	}
	*q++ = ',';
	q = put_str(q, countries[c->country].code);
	*q++ = ',';
	q = put_str(q, platform_names[c->platform]);
	*q++ = '\n';
	gen_out_commit(uo, q);
	return cents;
}

/*
 * Generates user i: its users.csv row goes to uo, its events to eo in the
 * user's own time order, or into spool (when not NULL) to be ordered by time
 * across users.
 */
static void gen_user(const struct world *w, uint64_t i, struct gen_out *uo, struct gen_out *eo,
		     struct event_spool *spool, struct time_fmt *tf, struct user_totals *out_tot)
{
	const struct generate_param *p = w->p;
	struct event ev[MAX_DAY_EVENTS];
	int charge_day[MAX_CHARGES];
	int32_t charge_off = 0;
	int n_charges = 0;
	int64_t charge_cents = 0;
	struct rng r;
	char idbuf[32];
	size_t idlen;

	rng_seed(&r, p->seed, i);
	const int day0 = (int)((i * (uint64_t)p->span_days) / p->n_users);
	const int64_t install = w->start_ts + (int64_t)day0 * DAY + rng_below(&r, DAY);
	const int ci = pick_campaign(w, day0, rng_unif(&r));
	const struct campaign *c = &w->cs[ci];
	const struct app_def *app = &apps[c->app];
	const double z = rng_normal(&r); /* latent engagement */
	const int last_day_data = (int)((w->end_ts - 1 - install) / DAY);

	idlen = (size_t)(put_user_id(idbuf, i + 1) - idbuf);
	out_tot->cost_cents = write_user_row(uo, tf, idbuf, idlen, app, c, install, &r);
	out_tot->campaign = ci;

	/* Latent value: engagement z raises payer odds, lifetime and sessions alike. */
	const double p_pay = clampd(app->payer_base * c->payer_mult * exp(0.7 * z - 0.245), 0, 0.6);
	const int payer = rng_unif(&r) < p_pay;
	const int whale = payer && rng_unif(&r) < app->whale_share * (z > 0.5 ? 2.0 : 0.5);
	const double user_mu = log(app->amount_median * c->spend_mult) + 0.25 * z +
			       app->user_sigma * rng_normal(&r) + (whale ? log(5.0) : 0);
	double act = logistic(-0.2 + 0.9 * z);
	double lambda_s = exp(0.1 + 0.45 * z);
	int lifetime = (int)fmin(exp(0.4 + 0.9 * z + 1.3 * rng_normal(&r)), w->max_days);
	int first_pay = -1;
	const int tutorial_day0 = rng_unif(&r) < logistic(0.5 + z);

	if (payer) {
		act = fmin(0.95, act + 0.25);
		lambda_s *= 1.35;
		if (app->kind == MON_SUB) {
			/* Trial on an early active day; the first charge comes 7 days later. */
			first_pay = rng_unif(&r) < 0.7 ? 0 : 1 + (int)rng_exp(&r, 5);
			charge_off = (int32_t)rng_below(&r, DAY);
			double plan = rng_unif(&r);
			int period = plan < 0.2 ? 365 : 30;
			charge_cents = sub_price(plan < 0.2 ? 59.99 : app->amount_median,
						 countries[c->country].spend);
			double keep_first = clampd(0.5 + 0.1 * z + 0.1 * log(c->spend_mult), 0.2, 0.9);
			double keep_later = clampd(0.85 + 0.03 * z, 0.6, 0.97);
			int day = first_pay + 7;
			while (n_charges < MAX_CHARGES && day <= last_day_data) {
				charge_day[n_charges++] = day;
				if (rng_unif(&r) >= (n_charges == 1 ? keep_first : keep_later))
					break;
				day += period;
			}
		} else {
			double early = clampd(app->early_pay + 0.1 * z + (whale ? 0.15 : 0), 0.15, 0.85);
			if (rng_unif(&r) < early)
				first_pay = rng_unif(&r) < 0.7 ? 0 : 1;
			else
				first_pay = 2 + (int)rng_exp(&r, 12);
		}
		if (lifetime < first_pay + 2)
			lifetime = first_pay + 2;
		lifetime += (int)rng_exp(&r, whale ? 180 : 60);
		if (lifetime > w->max_days)
			lifetime = w->max_days;
	}

	int last_day = lifetime;
	if (n_charges && charge_day[n_charges - 1] > last_day)
		last_day = charge_day[n_charges - 1];
	if (last_day > last_day_data)
		last_day = last_day_data;

	const double rate = whale ? 0.6 : app->repeat_rate;
	const double extra = whale ? 1.2 : 0.2;
	int tutorial_done = 0, ch = 0;
	uint64_t n_events = 0;
	int64_t revenue = 0;

	for (int d = 0; d <= last_day; d++) {
		int n = 0;
		int active = d == 0 || d == first_pay ||
			     (d <= lifetime && rng_unif(&r) < act * w->act_decay[d]);

		if (active) {
			int ns = 1 + rng_poisson(&r, lambda_s * w->sess_decay[d]);
			int32_t first_off = -1;

			for (int s = 0; s < ns; s++) {
				int32_t off = d == 0 && s == 0 ? 0 : (int32_t)rng_below(&r, DAY);
				if (first_off < 0 || off < first_off)
					first_off = off;
				push(ev, &n, off, EV_SESSION, 0);
				if (app->is_game && rng_unif(&r) < 0.5 * w->act_decay[d + 1])
					push(ev, &n, off + 60 + (int32_t)rng_below(&r, 1200), EV_LEVEL_UP, 0);
			}
			if (!tutorial_done && d <= 1 &&
			    (d == 0 ? tutorial_day0 : rng_unif(&r) < 0.3)) {
				push(ev, &n, first_off + 60 + (int32_t)rng_below(&r, 600), EV_TUTORIAL, 0);
				tutorial_done = 1;
			}
			if (payer && app->kind != MON_SUB && d >= first_pay) {
				int np = 0;
				if (d == first_pay)
					np = 1 + (whale ? rng_poisson(&r, 1.0) : 0);
				else if (rng_unif(&r) < rate * (whale ? 1.0 : w->rep_decay[d - first_pay]))
					np = 1 + rng_poisson(&r, extra);
				for (int k = 0; k < np; k++) {
					double dollars = exp(user_mu + 0.5 * rng_normal(&r));
					int64_t cents = app->kind == MON_IAP
								? iap_price(dollars)
								: (int64_t)floor(fmax(dollars, 1.0) * 100.0);
					int32_t off = ev[rng_below(&r, (uint32_t)n)].off;
					push(ev, &n, off + 30 + (int32_t)rng_below(&r, 1800), EV_PURCHASE, cents);
				}
			}
		}
		if (ch < n_charges && charge_day[ch] == d) {
			push(ev, &n, charge_off, ch == 0 ? EV_PURCHASE : EV_RENEWAL, charge_cents);
			ch++;
		}

		sort_events(ev, n);
		for (int k = 0; k < n; k++) {
			const int64_t ts = install + (int64_t)d * DAY + ev[k].off;
			if (ts >= w->end_ts)
				break;
			if (spool)
				event_spool_add(spool, i, ts, ev[k].cents, (unsigned)ev[k].kind);
			else
				gen_write_event(eo, tf, idbuf, idlen, ts, ev[k].cents,
						event_names[ev[k].kind]);
			revenue += ev[k].cents;
			n_events++;
		}
	}
	out_tot->revenue_cents = revenue;
	out_tot->n_events = n_events;
}

/* ---- driver ------------------------------------------------------------- */

void generate_param_init(struct generate_param *p)
{
	p->n_users = 20000;
	p->seed = 42;
	p->start_date = "2025-01-01";
	p->span_days = 240;
	p->follow_days = 7;
	p->n_campaigns = 0;
	p->order = GENERATE_ORDER_USER;
}

/* Midnight UTC of 9999-12-31: ISO 8601's four-digit years end that day. */
#define LAST_DAY_TS (INT64_C(253402214400))

const char *generate_param_check(const struct generate_param *p)
{
	int64_t ts;

	if (p->n_users < 1 || p->n_users > 1000000000ULL)
		return "n_users must be between 1 and 1000000000";
	if (!p->start_date || parse_date(p->start_date, &ts) < 0)
		return "start_date must be a date 'YYYY-MM-DD' from 1970 on";
	if (p->span_days < 1 || p->span_days > 3650)
		return "span_days must be between 1 and 3650";
	if (p->follow_days < 0 || p->follow_days > 3650)
		return "follow_days must be between 0 and 3650";
	if (ts + (int64_t)(p->span_days + p->follow_days) * DAY > LAST_DAY_TS)
		return "start_date is too late: the data would run past 9999-12-31, the last date "
		       "with a four-digit year; choose a start at least span_days + follow_days "
		       "(by default 247) days earlier";
	if (p->n_campaigns != 0 && (p->n_campaigns < 8 || p->n_campaigns > 1000))
		return "n_campaigns must be 0 (chosen by the seed) or between 8 and 1000";
	if (p->order != GENERATE_ORDER_USER && p->order != GENERATE_ORDER_TIME)
		return "order must be 'user' or 'time'";
	return NULL;
}

/*
 * The smallest the two files can be: a users.csv row is never under 60 bytes
 * and every user has at least its install session in events.csv (40 bytes,
 * 16 more while spooled for time order). Typical samples are about 480 bytes
 * a user, so this refuses only what cannot fit, before any work is done; a
 * disk that fills up later is still reported when a write fails.
 */
#define MIN_BYTES_PER_USER 100
#define MIN_SPOOL_BYTES_PER_USER 16

static int check_free_space(const struct generate_param *p, const char *out_dir,
			    struct ltv_err *err)
{
	const int64_t free_bytes = gen_free_bytes(out_dir);
	const uint64_t need = p->n_users * (MIN_BYTES_PER_USER +
		(p->order == GENERATE_ORDER_TIME ? MIN_SPOOL_BYTES_PER_USER : 0));

	if (free_bytes < 0 || (uint64_t)free_bytes >= need)
		return 0;
	return err_set(err, LTV_EIO, "generate: not enough space in '%s': %llu users need at "
		       "least %.1f MB (about %.0f MB is usual) and %.1f MB is free; free some space "
		       "or choose another --out", out_dir, (unsigned long long)p->n_users,
		       (double)need / 1e6, (double)p->n_users * 480 / 1e6, (double)free_bytes / 1e6);
}

/* A failed write names the file; a full disk also says what to do. */
static int write_failed(const struct gen_out *o, struct ltv_err *err)
{
	if (o->saved_errno == ENOSPC || o->saved_errno == EDQUOT)
		return err_set(err, LTV_EIO, "generate: cannot write '%s': the disk is full (%s); "
			       "the partial files were removed: free some space or choose another --out",
			       o->path, strerror(o->saved_errno));
	return err_set(err, LTV_EIO, "generate: cannot write '%s': %s", o->path,
		       strerror(o->saved_errno));
}

static void world_tables(struct world *w, int span_days)
{
	const int nc = w->n_campaigns;

	w->cum = xmalloc((size_t)span_days * (size_t)nc * sizeof(double));
	for (int d = 0; d < span_days; d++) {
		double acc = 0;
		for (int k = 0; k < nc; k++) {
			const struct campaign *c = &w->cs[k];
			if (d >= c->launch_day && d < c->end_day)
				acc += c->weight;
			w->cum[(size_t)d * (size_t)nc + (size_t)k] = acc;
		}
	}
	w->act_decay = xmalloc(((size_t)w->max_days + 2) * sizeof(double));
	w->sess_decay = xmalloc(((size_t)w->max_days + 2) * sizeof(double));
	w->rep_decay = xmalloc(((size_t)w->max_days + 2) * sizeof(double));
	for (int d = 0; d <= w->max_days + 1; d++) {
		w->act_decay[d] = d == 0 ? 1.0 : pow(d, -0.3);
		w->sess_decay[d] = pow(d + 1, -0.25);
		w->rep_decay[d] = pow(d + 1, -0.3);
	}
}

int generate_sample(const struct generate_param *p, const char *out_dir,
		    struct generate_stats *out_stats, struct ltv_err *err)
{
	struct world w;
	struct gen_out uo = { 0 }, eo = { 0 };
	struct event_spool *spool = NULL;
	struct time_fmt tf = { .day = INT64_MIN };
	struct generate_stats st;
	char *users_path = NULL, *events_path = NULL, *users_tmp = NULL, *events_tmp = NULL;
	unsigned char *used = NULL;
	int64_t revenue = 0, cost = 0;
	const char *why;
	int ret;

	assert(p && out_dir);
	memset(&w, 0, sizeof(w));
	memset(&st, 0, sizeof(st));
	why = generate_param_check(p);
	if (why)
		return err_set(err, LTV_EINVAL, "generate: %s", why);
	ret = gen_make_dirs(out_dir, err);
	if (ret < 0)
		return ret;
	st.stale_removed = gen_remove_stale_temps(out_dir);
	ret = check_free_space(p, out_dir, err);
	if (ret < 0)
		return ret;

	w.p = p;
	parse_date(p->start_date, &w.start_ts);
	w.end_ts = w.start_ts + (int64_t)(p->span_days + p->follow_days) * DAY;
	w.max_days = p->span_days + p->follow_days;
	w.n_campaigns = p->n_campaigns;
	if (!w.n_campaigns) {
		struct rng r;
		rng_seed(&r, p->seed, 0xC0C0A);
		w.n_campaigns = 48 + (int)rng_below(&r, 25);
	}
	w.cs = xcalloc((size_t)w.n_campaigns, sizeof(*w.cs));
	campaigns_make(w.cs, w.n_campaigns, p->seed, w.start_ts, p->span_days);
	world_tables(&w, p->span_days);
	used = xcalloc((size_t)w.n_campaigns, 1);

	users_path = xasprintf("%s/users.csv", out_dir);
	events_path = xasprintf("%s/events.csv", out_dir);
	users_tmp = xasprintf("%s/.users.csv.tmp.%ld", out_dir, (long)getpid());
	events_tmp = xasprintf("%s/.events.csv.tmp.%ld", out_dir, (long)getpid());
	if ((ret = gen_out_open(&uo, users_tmp, err)) < 0 ||
	    (ret = gen_out_open(&eo, events_tmp, err)) < 0)
		goto out;
	if (p->order == GENERATE_ORDER_TIME) {
		spool = event_spool_open(out_dir, w.start_ts, w.max_days, err);
		if (!spool) {
			ret = err->code;
			goto out;
		}
	}

	static const char users_header[] = "user_id,app_id,campaign,install_time,cost,country,platform\n";
	static const char events_header[] = "user_id,event_time,revenue,event\n";
	gen_out_commit(&uo, put_str(gen_out_reserve(&uo), users_header));
	gen_out_commit(&eo, put_str(gen_out_reserve(&eo), events_header));

	for (uint64_t i = 0; i < p->n_users; i++) {
		struct user_totals t;

		gen_user(&w, i, &uo, &eo, spool, &tf, &t);
		st.n_events += t.n_events;
		st.n_payers += t.revenue_cents > 0;
		revenue += t.revenue_cents;
		cost += t.cost_cents;
		used[t.campaign] = 1;
		if (uo.failed || eo.failed || (spool && event_spool_failed(spool)))
			break; /* reported below */
	}
	if (spool && !uo.failed && (ret = event_spool_write(spool, &eo, event_names, err)) < 0)
		goto out;
	gen_out_flush(&uo);
	gen_out_flush(&eo);
	if (uo.failed || eo.failed) {
		ret = write_failed(uo.failed ? &uo : &eo, err);
		goto out;
	}
	if ((ret = gen_out_close(&uo, err)) < 0 || (ret = gen_out_close(&eo, err)) < 0) {
		ret = write_failed(uo.failed ? &uo : &eo, err);
		goto out;
	}
	if (rename(events_tmp, events_path) != 0) {
		ret = err_set(err, LTV_EIO, "cannot rename '%s' to '%s': %s", events_tmp,
			      events_path, strerror(errno));
		goto out;
	}
	if (rename(users_tmp, users_path) != 0) {
		ret = err_set(err, LTV_EIO, "cannot rename '%s' to '%s': %s", users_tmp,
			      users_path, strerror(errno));
		goto out;
	}

	st.n_users = p->n_users;
	st.total_revenue = (double)revenue / 100.0;
	st.total_cost = (double)cost / 100.0;
	st.n_apps = N_APPS;
	for (int k = 0; k < w.n_campaigns; k++)
		st.n_campaigns += used[k];
	tf.day = INT64_MIN;
	*put_time(&tf, st.span_start, w.start_ts) = '\0';
	*put_time(&tf, st.data_end, w.end_ts) = '\0';
	if (out_stats)
		*out_stats = st;
	ret = 0;
out:
	if (ret < 0) {
		gen_out_close(&uo, NULL);
		gen_out_close(&eo, NULL);
		if (users_tmp)
			unlink(users_tmp);
		if (events_tmp)
			unlink(events_tmp);
	}
	event_spool_free(spool);
	free(users_path);
	free(events_path);
	free(users_tmp);
	free(events_tmp);
	free(used);
	free(w.cs);
	free(w.cum);
	free(w.act_decay);
	free(w.sess_decay);
	free(w.rep_decay);
	return ret;
}

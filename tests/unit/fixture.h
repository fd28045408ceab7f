/*
 * Pipeline scaffolding for the unit tests (tests/unit/fixture.c, linked into
 * every test binary): configs pointed at a scratch directory, generated
 * samples, pipeline runs, and a model stage's current artefact loaded back.
 * Every helper fails the running test (cmocka's fail_msg) instead of
 * returning an error, so a test reads as the steps it takes.
 */
#ifndef LTV_TEST_FIXTURE_H
#define LTV_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ltv/common.h"
#include "ltv/config.h"
#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/registry.h"
#include "ltv/runner.h"

/* Applies the --set override built from fmt to cfg; fails the test when it is refused. */
void test_set(struct config *cfg, const char *fmt, ...) LTV_PRINTF(2, 3);

/*
 * config_init_defaults, then inputs dir/users and dir/events (paths or
 * globs relative to dir), the registry at dir/models/registry.sqlite, run
 * logs and rejects in dir/logs and, unless jobs is NULL, run.jobs = jobs.
 * The caller releases cfg with config_release.
 */
void test_config_init(struct config *cfg, const char *dir, const char *users, const char *events,
		      const char *jobs);

/*
 * Lowers the tier, calibrate and select thresholds so that a sample of a few
 * thousand generated users fills every tier and trains every stage.
 */
void test_config_small_sample(struct config *cfg);

/* A generated sample in a scratch directory and a config pointed at it. */
struct test_pipeline {
	char *dir;         /* the scratch directory */
	char *data;        /* dir/data: the sample's users.csv and events.csv */
	struct config cfg; /* test_config_init(cfg, dir, "data/users.csv", "data/events.csv", jobs) */
};

/*
 * Generates n_users users from seed (generate_param_init's other defaults)
 * into a new scratch directory's data/ and sets up the config. Nothing runs
 * yet. Free with test_pipeline_free.
 */
struct test_pipeline *test_pipeline_new(uint64_t n_users, uint64_t seed, const char *jobs);
/* The same with every generator parameter given (gp->n_campaigns, span, ...). */
struct generate_param;
struct test_pipeline *test_pipeline_new_param(const struct generate_param *gp, const char *jobs);
/* Releases the config, removes the scratch directory and frees p; NULL is allowed. */
void test_pipeline_free(struct test_pipeline *p);

/*
 * Hand-written inputs in a scratch directory (the features tests' fixtures):
 * users_csv and events_csv written as dir/users.csv and dir/events.csv, and
 * the config test_config_init(cfg, dir, users_glob, events_glob, "1"). Free
 * with test_hand_free (NULL is allowed).
 */
struct test_hand {
	char *dir;
	struct config cfg;
};
struct test_hand *test_hand_new(const char *users_csv, const char *events_csv,
				const char *users_glob, const char *events_glob);
void test_hand_free(struct test_hand *h);
/* Writes text as dir/name (replacing it); fails the test when it cannot. */
void test_put_file(const char *dir, const char *name, const char *text);
/* dir/models/registry.sqlite, where test_config_init puts the registry (caller frees). */
char *test_registry_path(const char *dir);

/*
 * The current features artefact of cfg's registry, opened read-only: its
 * frame into *out_frame (caller releases), and when not NULL its artefact
 * (caller releases) and encodings (caller releases).
 */
struct frame;
struct encodings;
void test_features_load(const struct config *cfg, struct frame *out_frame,
			struct artefact_info *out_info, struct encodings *out_enc);
/* Column name of f; fails the test when f has none. */
const double *test_column(const struct frame *f, const char *name);

/*
 * Rewrites a CSV file without quoted fields (the generator's), row by row:
 * fn gets the row's number (0: the header), its fields (split at every
 * comma, the line end removed; at most TEST_CSV_MAX_FIELDS) and may point
 * any field at other text; it returns 1 when it changed the row. The rows go
 * to out_path, or back to in_path (through a temporary file) when out_path is
 * NULL. Returns the number of rows changed;
 * fails the test on an I/O error or a row with too many fields.
 * test_csv_each reads the rows the same way and writes nothing.
 */
#define TEST_CSV_MAX_FIELDS 16
typedef int (*test_csv_row_fn)(void *ctx, size_t row, char **fields, size_t n);
size_t test_csv_rewrite(const char *in_path, const char *out_path, test_csv_row_fn fn, void *ctx);
void test_csv_each(const char *path, test_csv_row_fn fn, void *ctx);

/* Runs the pipeline as opts say, its output discarded; fails the test when the run fails. */
void test_run(const struct config *cfg, const struct run_options *opts);
/* test_run of every stage up to and including `to` (NULL: all), as of the latest event. */
void test_run_to(const struct config *cfg, const char *to);

/*
 * The current artefact of the stage that trains method, loaded back: the
 * model data built from its inputs "features" and (with_tiers) "tiers", the
 * method's state, and its metrics parsed (NULL when they are not JSON).
 * Release with test_model_release.
 */
struct test_model {
	const struct method *method;
	struct registry *reg;
	struct artefact_info features, tiers, artefact;
	struct model_data d;
	void *state;
	cJSON *metrics;
};

struct loaded_model;
/* The fixture registry's production model version, loaded into *m; *reg stays open. */
void test_production_load(const struct test_pipeline *fx, struct registry **reg,
			  struct loaded_model *m);

void test_model_load(const struct config *cfg, const struct method *method, int with_tiers,
		     struct test_model *out);
void test_model_release(struct test_model *m);
/* method->predict on rows of m->d; fails the test when it fails. out_p may be NULL. */
void test_model_predict(const struct test_model *m, const size_t *rows, size_t n, int64_t horizon,
			double *out_ltv, double *out_p);

/* The number obj[name]; fails the test when it is missing or not a number. */
/*
 * The revenue still to come at horizon of m's training rows at age (their
 * window_days; model_data_split: rows repeated by weight, so user sums):
 * sums[0] what they went on to pay, sums[1] what m predicts, sums[2] what m
 * predicts while hide(m->state, 1) holds (the method's value pooled over
 * ages; hide(m->state, 0) restores it); the rows' count in *out_n. Also
 * fails unless m's prediction at horizon_lo is at most that at horizon for
 * every training row younger than horizon_lo (monotone across horizons).
 */
void test_future_at_age(struct test_model *m, int64_t horizon_lo, int64_t horizon, double age,
			void (*hide)(void *state, int on), double sums[3], size_t *out_n);

double test_metric(const cJSON *obj, const char *name);

/*
 * Equal up to the last digit or so: cJSON prints a double with 15 significant
 * digits whenever that reads back within an epsilon, so stored metrics lose an ulp.
 */
int test_same_number(double a, double b);

/* The rows 0 .. n-1 as a new array (caller frees). */
size_t *test_all_rows(size_t n);

#endif

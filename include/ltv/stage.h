/*
 * The contract between the runner and a stage. A stage is one file in
 * pipeline/ with one public function, stage_<name>_run(ctx), listed in the
 * stage table (pipeline/stages.c) with its declared inputs and config
 * sections. Stage bodies read their inputs through ctx, compute, and then call
 * stage_output_id() to get the artefact they write under: that first call
 * opens the output (one registry transaction) and everything written until the
 * stage returns commits together, or not at all. Stages never see
 * fingerprints, skipping or transactions.
 */
#ifndef LTV_STAGE_H
#define LTV_STAGE_H

#include <stdint.h>

#include "ltv/common.h"
#include "ltv/config.h"
#include "ltv/hash.h"
#include "ltv/registry.h"
#include "ltv/shard.h"

struct cJSON;

enum stage_flags {
	STAGE_USES_AS_OF = 1 << 0,     /* as_of is part of the fingerprint */
	STAGE_READS_INPUT_FILES = 1 << 1, /* the input CSV files' hashes are part of it */
	STAGE_HUGE_PAGES = 1 << 2,     /* its big arrays get the huge-page hint (memory_use_huge_pages) */
	/*
	 * Runs alone with many short-lived big arrays (one per method, tier and
	 * horizon): under run.memory_mb, blocks it frees stay in malloc's heap
	 * for its next ones (memory_keep_freed) instead of being mapped and
	 * faulted in again. Without run.memory_mb every stage's do
	 * (pipeline/run_heap.c).
	 */
	STAGE_KEEP_FREED = 1 << 3,
};

#define STAGE_MAX_INPUTS 12

struct frame;
struct prediction_shelf;

struct stage_ctx {
	struct registry *reg;
	const struct config *cfg;
	const char *run_id;
	int64_t as_of;                   /* INT64_MIN for stages without STAGE_USES_AS_OF */
	int n_threads;                   /* the share at the start; see stage_threads */
	struct shard_spec shard;         /* ingest and features of one shard (count 0: all users) */
	/* Current artefacts of the declared inputs, in declared order. */
	const struct artefact_info *inputs[STAGE_MAX_INPUTS];
	size_t n_inputs;
	/* The stage adds everything that defines its output here (content hash). */
	struct hasher content;
	/* The stage adds its metrics here; stored as the artefact's metrics JSON. */
	struct cJSON *metrics;
	struct ltv_err err;
	/* Runner-private: the output once opened. */
	struct stage_output_state *output;
	/* Runner-private: the stage's progress line (include/ltv/progress.h), or NULL. */
	struct progress *progress;
	/* Runner-private: the cores shared with the stages running beside this one (or NULL). */
	struct core_share *cores;
	/*
	 * A copy of the stage's ctx that one task of stage_run_tasks runs with
	 * sets its task here: stage_threads is then the task's share
	 * (stage_task_threads), which grows when the tasks beside it end.
	 */
	struct stage_task *task;
	int max_threads_used;
	/*
	 * The stage's estimate of the resident bytes one of its tasks adds while
	 * it runs (0: unknown), set before stage_run_tasks: under run.memory_mb a
	 * task starts beside running ones only while it fits.
	 */
	size_t task_bytes;
	/*
	 * A features frame the stage saved as its output, or NULL: once the
	 * output is committed the runner hands it to the model stages' shared
	 * frame (model_data_offer_frame) instead of their reading it back.
	 */
	struct frame *saved_frame;
	/*
	 * The run's shelf of predictions (include/ltv/prediction_memo.h), owned
	 * by the runner for one run and freed at its end: select leaves each
	 * method's predictions of its validation rows there, and calibrate of
	 * the same run takes them instead of predicting again. NULL outside a
	 * run: the stage then predicts for itself.
	 */
	struct prediction_shelf *predictions;
	/*
	 * Runner-private, ingest only: the input files with hash "" when the
	 * registry holds no ingest artefact (nothing a fingerprint could match):
	 * ingest takes each hash from the bytes it reads and writes it here; the
	 * runner fingerprints the output with them before its commit. NULL:
	 * ingest resolves and hashes the files itself, as it always did.
	 */
	struct input_files *unhashed_files;
};

/*
 * Threads the stage may use for its next parallel step (>= 1): run.jobs
 * divided among the stages of its wave that have not finished yet. A stage
 * with several long steps (one XGBoost fit after another) calls it before
 * each, so the cores a finished neighbour frees go to the stages still
 * running. Stage outputs must not depend on it: every parallel step here is
 * bit-identical for any thread count (XGBoost hist, k-means by blocks).
 */
int stage_threads(struct stage_ctx *ctx);

/*
 * Independent pieces of one stage's work (hurdle's horizons, say), run on
 * worker threads. A task is one call fn(arg, task); task->index says which.
 */
struct stage_task {
	size_t index;
	struct ltv_err err;        /* what fn fills when it fails */
	struct task_pool *pool;    /* private */
};

typedef int (*stage_task_fn)(void *arg, struct stage_task *task);

/*
 * Runs tasks 0..n-1, starting them in index order, at most stage_threads(ctx)
 * at a time (re-asked whenever one may start, so cores freed by neighbouring
 * stages are used), and with run.memory_mb set, a second or later one only
 * while resident memory plus ctx->task_bytes fits under it. Returns 0, or the error of the lowest-numbered failed
 * task, copied to ctx->err; tasks not yet started when one fails are skipped.
 * fn must write only to its own task's results: what it produces is then the
 * same for any number of threads.
 */
int stage_run_tasks(struct stage_ctx *ctx, size_t n, stage_task_fn fn, void *arg);

/*
 * The stage's own progress: done of total units ("horizons", "models"), said
 * by the progress module beside which stage of the run this is and the time
 * the run has left (a line on a terminal, an occasional log line elsewhere).
 * A stage calls it after each long step; it costs nothing when unseen.
 */
void stage_progress(struct stage_ctx *ctx, const char *unit, uint64_t done, uint64_t total);

/* Threads a running task may use for its next step: its share of stage_threads (>= 1). */
int stage_task_threads(struct stage_task *task);

/* Opens the output on first call (a write transaction) and returns its artefact id. */
int stage_output_id(struct stage_ctx *ctx, int64_t *out_id);

/* Looks up a declared input by stage name; NULL when not declared. */
const struct artefact_info *stage_input(const struct stage_ctx *ctx, const char *name);

typedef int (*stage_run_fn)(struct stage_ctx *ctx);

struct stage {
	const char *name;
	const char *code_version;   /* bump when the stage's logic changes its output */
	const char *config_sections; /* comma-separated top-level config sections it reads */
	const char *inputs[STAGE_MAX_INPUTS]; /* names of stages whose output it reads */
	unsigned flags;
	stage_run_fn run;
	const char *summary;        /* one line for --help and status */
};

extern const struct stage stage_table[];
extern const size_t stage_count;

/* Index of a stage by name, or -1. */
int stage_find(const char *name);

/*
 * Checks the table: unique names, every input names an earlier stage (so the
 * table order is a topological order), no cycles. 0 or LTV_EINTERNAL.
 */
int stage_table_check(struct ltv_err *err);

/* The stage functions, one per file in pipeline/. */
int stage_ingest_run(struct stage_ctx *ctx);
int stage_features_run(struct stage_ctx *ctx);
int stage_tiers_run(struct stage_ctx *ctx);
int stage_hurdle_run(struct stage_ctx *ctx);
int stage_multiplier_run(struct stage_ctx *ctx);
int stage_curves_run(struct stage_ctx *ctx);
int stage_lookalike_run(struct stage_ctx *ctx);
int stage_semantic_run(struct stage_ctx *ctx);
int stage_bgnbd_run(struct stage_ctx *ctx);
int stage_pareto_nbd_run(struct stage_ctx *ctx);
int stage_select_run(struct stage_ctx *ctx);
int stage_calibrate_run(struct stage_ctx *ctx);

#endif

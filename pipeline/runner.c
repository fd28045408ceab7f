/*
 * The runner (contract in include/ltv/runner.h). For each selected stage, in
 * table order (a topological order, checked by stage_table_check): resolve
 * the current artefacts of its inputs, compute its fingerprint, and either
 * reuse the artefact that already has that fingerprint or run the stage inside
 * one registry transaction. The artefact's stored config text is the exact
 * text that was fingerprinted, which is what lets `status` and `--dry-run`
 * say *why* a stage is stale.
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ltv/core_share.h"
#include "ltv/model_compare.h"
#include "ltv/model_data.h"
#include "ltv/input_files.h"
#include "ltv/log.h"
#include "ltv/metrics_text.h"
#include "ltv/model_data.h"
#include "ltv/prediction_memo.h"
#include "ltv/progress.h"
#include "ltv/run_heap.h"
#include "ltv/runner.h"
#include "ltv/stage.h"
#include "ltv/timeutil.h"
#include <assert.h>

struct stage_output_state {
	const struct stage *stage;
	const char *fingerprint;
	const char *config_text;
	const int64_t *input_ids;
	size_t n_inputs;
	int opened;
	int64_t id;
	int64_t version;
};

enum plan_state {
	PLAN_UNSELECTED, /* not in --only/--from/--to: downstream reads its current artefact */
	PLAN_PENDING,    /* selected, not yet planned */
	PLAN_SCHEDULED,  /* must run in the current wave */
	PLAN_REUSED,     /* an artefact with its fingerprint exists */
	PLAN_RAN,
	PLAN_WOULD_RUN,  /* --dry-run */
};

struct stage_plan {
	enum plan_state state;
	int have_current;
	struct artefact_info current;  /* what downstream stages read */
	char fingerprint[HASH_HEX_LEN];
	char *config_text;
	char reason[512];              /* why it runs, for --dry-run and status */
	const struct artefact_info *inputs[STAGE_MAX_INPUTS];
	size_t n_inputs;
	double expected_seconds;       /* its last run's time, for the ETA; NaN when unknown */
	int expected_known;            /* expected_seconds has been looked up */
	int ordinal, n_stages;         /* stage ordinal of n_stages, as announced, for its progress */
};

int stage_output_id(struct stage_ctx *ctx, int64_t *out_id)
{
	struct stage_output_state *o = ctx->output;
	struct artefact_new a;
	int ret;

	if (o->opened) {
		*out_id = o->id;
		return 0;
	}
	ret = registry_begin(ctx->reg, &ctx->err);
	if (ret < 0)
		return ret;
	a = (struct artefact_new){
		.name = o->stage->name,
		.run_id = ctx->run_id,
		.fingerprint = o->fingerprint,
		.code_version = o->stage->code_version,
		.config = o->config_text,
		.as_of = ctx->as_of,
		.inputs = o->input_ids,
		.n_inputs = o->n_inputs,
	};
	ret = registry_artefact_create(ctx->reg, &a, &o->id, &o->version, &ctx->err);
	if (ret < 0) {
		registry_rollback(ctx->reg);
		return ret;
	}
	o->opened = 1;
	*out_id = o->id;
	return 0;
}

int stage_threads(struct stage_ctx *ctx)
{
	int n = ctx->n_threads;

	if (ctx->task)
		n = stage_task_threads(ctx->task);
	else if (ctx->cores)
		n = core_share_threads(ctx->cores);
	if (n < 1)
		n = 1;
	if (n > ctx->max_threads_used)
		ctx->max_threads_used = n;
	return n;
}

const struct artefact_info *stage_input(const struct stage_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->n_inputs; i++)
		if (strcmp(ctx->inputs[i]->name, name) == 0)
			return ctx->inputs[i];
	return NULL;
}

void runner_make_run_id(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	/* 48 bits from pid, nanoseconds and a counter: two runs in one second never collide in practice. */
	static unsigned counter;
	uint64_t mix = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)++counter << 20);
	char hex[HASH_HEX_LEN];

	hash_buffer_hex(&mix, sizeof(mix), hex);
	snprintf(buf, size, "%s-%.12s", stamp, hex);
}

/* ---- selection ---- */

static int list_contains(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

static int check_stage_names(const char *list, const char *flag, struct ltv_err *err)
{
	char *copy = xstrdup(list), *save = NULL;
	int ret = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (stage_find(tok) < 0) {
			ret = err_set(err, LTV_EUSAGE, "%s: unknown stage '%s'; 'ltvpipe --help' "
				      "lists the stages", flag, tok);
			break;
		}
	}
	free(copy);
	return ret;
}

/*
 * A shard holds a part of the users, so only the per-user stages run on it
 * (ingest, features); what needs every user runs after `ltvpipe merge`. Its
 * as_of must be the one of the whole data, which one shard cannot know.
 */
static int check_shard_selection(const struct run_options *opts, const struct stage_plan *plans,
				 struct ltv_err *err)
{
	char spec[32];

	if (opts->shard.count == 0)
		return 0;
	shard_format(&opts->shard, spec, sizeof(spec));
	for (size_t i = 0; i < stage_count; i++) {
		const char *name = stage_table[i].name;

		if (plans[i].state != PLAN_PENDING)
			continue;
		if (strcmp(name, "ingest") != 0 && strcmp(name, "features") != 0)
			return err_set(err, LTV_EUSAGE, "--shard %s runs only ingest and features (add "
				       "--to features); %s needs every user: run it on the main registry "
				       "after 'ltvpipe merge'", spec, name);
		if (strcmp(name, "features") == 0 && opts->as_of == INT64_MIN)
			return err_set(err, LTV_EUSAGE, "--shard %s: features needs --as-of, the same "
				       "for every shard (one shard cannot know the latest event of the "
				       "others); e.g. the latest max_event_time of the shards' ingests",
				       spec);
	}
	return 0;
}

static int select_stages(const struct run_options *opts, struct stage_plan *plans,
			 struct ltv_err *err)
{
	int from = 0, to = (int)stage_count - 1;

	if (opts->only && check_stage_names(opts->only, "--only", err) < 0)
		return LTV_EUSAGE;
	if (opts->from && (from = stage_find(opts->from)) < 0)
		return err_set(err, LTV_EUSAGE, "--from: unknown stage '%s'", opts->from);
	if (opts->to && (to = stage_find(opts->to)) < 0)
		return err_set(err, LTV_EUSAGE, "--to: unknown stage '%s'", opts->to);
	if (from > to)
		return err_set(err, LTV_EUSAGE, "--from %s comes after --to %s in the pipeline",
			       opts->from, opts->to);
	for (int i = 0; i < (int)stage_count; i++) {
		int in_range = i >= from && i <= to;
		int in_only = !opts->only || list_contains(opts->only, stage_table[i].name);

		plans[i].state = in_range && in_only ? PLAN_PENDING : PLAN_UNSELECTED;
	}
	return check_shard_selection(opts, plans, err);
}

/* ---- fingerprints ---- */

static void append_text(char **buf, const char *text)
{
	char *joined = xasprintf("%s%s", *buf ? *buf : "", text);

	free(*buf);
	*buf = joined;
}

/*
 * The exact text a stage is fingerprinted by, besides its inputs' content
 * hashes: its config sections in canonical form, as_of if it reads by time,
 * and the input files' content hashes if it reads files.
 */
char *runner_stage_config_text(const struct stage *s, const struct config *cfg, int64_t as_of,
			       const struct input_files *files, const struct shard_spec *shard)
{
	char *text = NULL, *sections = xstrdup(s->config_sections), *save = NULL;

	append_text(&text, "");
	for (char *sec = strtok_r(sections, ",", &save); sec; sec = strtok_r(NULL, ",", &save)) {
		char *canon = config_section_canonical(cfg, sec);

		append_text(&text, canon);
		free(canon);
	}
	free(sections);
	if (s->flags & STAGE_USES_AS_OF) {
		char iso[32], line[64];

		time_format_iso8601(as_of, iso, sizeof(iso));
		snprintf(line, sizeof(line), "as_of=%s\n", iso);
		append_text(&text, line);
	}
	if ((s->flags & STAGE_READS_INPUT_FILES) && files) {
		for (size_t i = 0; i < files->n; i++) {
			char line[128];

			snprintf(line, sizeof(line), "input_file=%s:%s\n",
				 files->v[i].kind == INPUT_USERS ? "users" : "events", files->v[i].hash);
			append_text(&text, line);
		}
	}
	if (shard && shard->count > 0) {
		char line[64], spec[32];

		snprintf(line, sizeof(line), "shard=%s\n", shard_format(shard, spec, sizeof(spec)));
		append_text(&text, line);
	}
	return text;
}

void runner_stage_fingerprint(const struct stage *s, const char *config_text,
			      const struct artefact_info *const *inputs, size_t n_inputs,
			      char out[HASH_HEX_LEN])
{
	struct hasher h;

	hasher_init(&h);
	hasher_add_str(&h, s->name);
	hasher_add_str(&h, s->code_version);
	hasher_add_str(&h, config_text);
	for (size_t i = 0; i < n_inputs; i++)
		hasher_add_str(&h, inputs[i]->content_hash);
	hasher_hex(&h, out);
	hasher_release(&h);
}

/* Names the first line that differs between two config texts: "features.validation_days: 28 → 21". */
static void describe_config_change(const char *old_text, const char *new_text, char *buf,
				   size_t size)
{
	const char *a = old_text, *b = new_text;

	while (*a || *b) {
		const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
		size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);

		if (la != lb || strncmp(a, b, la) != 0) {
			const char *eq = memchr(b, '=', lb);

			if (eq && la > (size_t)(eq - b) && strncmp(a, b, (size_t)(eq - b) + 1) == 0)
				snprintf(buf, size, "%.*s changed: %.*s → %.*s", (int)(eq - b), b,
					 (int)(la - (size_t)(eq - b) - 1), a + (eq - b) + 1,
					 (int)(lb - (size_t)(eq - b) - 1), eq + 1);
			else
				snprintf(buf, size, "configuration changed: '%.*s'", (int)lb, b);
			return;
		}
		a = ea ? ea + 1 : a + la;
		b = eb ? eb + 1 : b + lb;
	}
	snprintf(buf, size, "configuration changed");
}

/* Whether the "input_file=KIND:HASH" line of file f is in a config text. */
static int text_has_file(const char *text, const struct input_file *f)
{
	char line[128];

	snprintf(line, sizeof(line), "input_file=%s:%s\n", f->kind == INPUT_USERS ? "users" : "events",
		 f->hash);
	return strstr(text, line) != NULL;
}

/*
 * When the input files differ from those the current version read, says
 * which by name ("new events file data/events_2025-09.csv"), rather than
 * comparing the n-th hash of one list with the n-th of the other. Returns 1
 * when it wrote a reason.
 */
static int describe_files_change(const char *old_text, const struct input_files *files, char *buf,
				 size_t size)
{
	size_t len = 0, n_new = 0, n_old_lines = 0, n_kept = 0;

	if (!files)
		return 0;
	buf[0] = '\0';
	for (size_t i = 0; i < files->n; i++) {
		if (text_has_file(old_text, &files->v[i])) {
			n_kept++;
			continue;
		}
		if (n_new++ < 3 && len < size)
			len += (size_t)snprintf(buf + len, size - len, "%snew %s file %s (content %.12s)",
						n_new > 1 ? ", " : "",
						files->v[i].kind == INPUT_USERS ? "users" : "events",
						files->v[i].path, files->v[i].hash);
	}
	if (n_new > 3 && len < size)
		len += (size_t)snprintf(buf + len, size - len, " and %zu more", n_new - 3);
	for (const char *p = strstr(old_text, "input_file="); p; p = strstr(p + 1, "input_file="))
		n_old_lines++;
	if (n_old_lines > n_kept && len < size)
		snprintf(buf + len, size - len, "%s%zu file%s read before %s no longer matched by "
			 "input.users / input.events", len ? "; " : "", n_old_lines - n_kept,
			 n_old_lines - n_kept == 1 ? "" : "s", n_old_lines - n_kept == 1 ? "is" : "are");
	return buf[0] != '\0';
}

/* Why the stage's current artefact is not the one this fingerprint asks for. */
static void explain_stale(struct registry *reg, const struct stage *s, const struct stage_plan *p,
			  const struct artefact_info *const *inputs, size_t n_inputs,
			  const struct input_files *files, char *buf, size_t size)
{
	int64_t *lineage = NULL;
	size_t n_lineage = 0;
	struct ltv_err ignored;

	if (!p->have_current) {
		snprintf(buf, size, "no previous version");
		return;
	}
	if (strcmp(p->current.code_version, s->code_version) != 0) {
		snprintf(buf, size, "code version %s → %s", p->current.code_version, s->code_version);
		return;
	}
	if ((s->flags & STAGE_READS_INPUT_FILES) && describe_files_change(p->current.config, files, buf, size))
		return;
	if (strcmp(p->current.config, p->config_text) != 0) {
		describe_config_change(p->current.config, p->config_text, buf, size);
		return;
	}
	if (registry_lineage(reg, p->current.id, &lineage, &n_lineage, &ignored) == 0) {
		for (size_t i = 0; i < n_inputs; i++) {
			int found = 0;

			for (size_t j = 0; j < n_lineage; j++)
				found |= lineage[j] == inputs[i]->id;
			if (!found) {
				snprintf(buf, size, "input %s is now v%lld", inputs[i]->name,
					 (long long)inputs[i]->version);
				free(lineage);
				return;
			}
		}
	}
	free(lineage);
	snprintf(buf, size, "inputs changed");
}

/* ---- running ---- */

struct run_state {
	const struct config *cfg;
	const struct run_options *opts;
	struct registry *reg;
	struct stage_plan plans[32];
	struct input_files files;
	int have_files;
	int files_unhashed;   /* files' hashes "": ingest takes them as it reads (resolve_files) */
	int64_t as_of;
	char run_id[64];
	FILE *out;
	struct prediction_shelf *predictions; /* stage_ctx.predictions: this run's, freed at its end */
};

static int resolve_as_of(struct run_state *rs, struct ltv_err *err)
{
	if (rs->as_of != INT64_MIN)
		return 0;
	if (rs->opts->as_of != INT64_MIN) {
		rs->as_of = rs->opts->as_of;
		return 0;
	}
	return registry_default_as_of(rs->reg, &rs->as_of, err);
}

/* Fills inputs[] with the artefacts a stage reads: this run's result or the registry's current. */
static int gather_inputs(struct run_state *rs, const struct stage *s,
			 const struct artefact_info **inputs, size_t *out_n, struct ltv_err *err)
{
	size_t n = 0;

	for (; n < STAGE_MAX_INPUTS && s->inputs[n]; n++) {
		int idx = stage_find(s->inputs[n]);
		struct stage_plan *up = &rs->plans[idx];

		if (up->state == PLAN_WOULD_RUN)
			return 1;
		assert(up->state != PLAN_PENDING && up->state != PLAN_SCHEDULED); /* dry run: upstream would change, so this one would run too */
		if (!up->have_current) {
			int ret = registry_artefact_current(rs->reg, s->inputs[n], &up->current, err);

			if (ret == LTV_ENOTFOUND)
				return err_set(err, LTV_EUSAGE,
					       "%s reads the output of %s, which has never run; run "
					       "'ltvpipe run --to %s' first", s->name, s->inputs[n], s->name);
			if (ret < 0)
				return ret;
			up->have_current = 1;
		}
		inputs[n] = &up->current;
	}
	*out_n = n;
	return 0;
}

static int build_metrics_json(struct stage_ctx *ctx, double seconds, char **out_metrics,
			      char **out_timings)
{
	cJSON *timings = cJSON_CreateObject();

	cJSON_AddNumberToObject(timings, "seconds", seconds);
	cJSON_AddNumberToObject(timings, "peak_rss_mb", (double)peak_rss_bytes() / 1048576.0);
	cJSON_AddNumberToObject(timings, "threads", ctx->n_threads);
	cJSON_AddNumberToObject(timings, "max_threads", ctx->max_threads_used > ctx->n_threads
						       ? ctx->max_threads_used : ctx->n_threads);
	*out_metrics = cJSON_PrintUnformatted(ctx->metrics);
	*out_timings = cJSON_PrintUnformatted(timings);
	cJSON_Delete(timings);
	return 0;
}

/*
 * Test hook: LTVPIPE_FAULT=<stage>:fail makes the stage fail after it has
 * written its output but before the commit; <stage>:kill sends this process
 * SIGKILL at that point. Tests use it to prove the registry survives both.
 */
static int injected_fault(const char *stage, struct ltv_err *err)
{
	const char *fault = getenv("LTVPIPE_FAULT");
	size_t n = strlen(stage);

	if (!fault || strncmp(fault, stage, n) != 0 || fault[n] != ':')
		return 0;
	if (strcmp(fault + n + 1, "kill") == 0)
		raise(SIGKILL);
	return err_set(err, LTV_EINTERNAL, "injected fault (LTVPIPE_FAULT=%s)", fault);
}

/*
 * The input files of a stage that reads them. Hashing them is the only use
 * of reading them before the stage, to fingerprint it against the artefacts
 * it could reuse: with no artefact of the stage in the registry there is none
 * to match, and the stage runs whatever the hashes are. It then takes them
 * from the bytes it reads anyway (0.17 s of a 1.9 s ingest at a million
 * users went to reading 478 MB first) and the fingerprint is completed before
 * the commit (complete_fingerprint): the same value, computed later.
 * A dry run runs no stage that could hash them: it hashes first, as before.
 */
static int resolve_files(struct run_state *rs, const struct stage *s, struct ltv_err *err)
{
	int64_t n = 1;
	int ret;

	if (!rs->opts->dry_run) {
		ret = registry_artefact_count(rs->reg, s->name, &n, err);
		if (ret < 0)
			return ret;
	}
	rs->files_unhashed = n == 0;
	ret = rs->files_unhashed ? input_files_resolve_unhashed(rs->cfg, &rs->files, err)
				 : input_files_resolve_in(rs->cfg, rs->reg, &rs->files, err);
	if (ret == 0)
		rs->have_files = 1;
	return ret;
}

/*
 * After a stage that hashed its input files as it read them: the fingerprint
 * and config text the plan would have given it with the hashes, stored on its
 * output, and each hash recorded for the file's stat as input_files_resolve_in
 * records it, so the next run plans by them without reading the files.
 */
static int complete_fingerprint(struct run_state *rs, const struct stage *s,
				struct stage_plan *p, struct registry *reg, int64_t id,
				struct ltv_err *err)
{
	for (size_t i = 0; i < rs->files.n; i++)
		if (!rs->files.v[i].hash[0])
			return err_set(err, LTV_EINTERNAL, "%s: %s was not hashed", s->name,
				       rs->files.v[i].path);
	free(p->config_text);
	p->config_text = runner_stage_config_text(s, rs->cfg, rs->as_of, &rs->files,
						  &rs->opts->shard);
	runner_stage_fingerprint(s, p->config_text, p->inputs, p->n_inputs, p->fingerprint);
	rs->files_unhashed = 0;
	for (size_t i = 0; i < rs->files.n; i++)
		input_files_record_hash(reg, &rs->files.v[i]);
	return registry_artefact_set_fingerprint(reg, id, p->fingerprint, p->config_text, err);
}

/* Runs one stage body and commits its output, or rolls everything back. */
static int execute_stage(struct run_state *rs, int idx, struct registry *reg, int n_threads,
			 struct core_share *cores, struct ltv_err *err)
{
	const struct stage *s = &stage_table[idx];
	struct stage_plan *p = &rs->plans[idx];
	const struct artefact_info *const *inputs = p->inputs;
	size_t n_inputs = p->n_inputs;
	int64_t input_ids[STAGE_MAX_INPUTS];
	struct stage_output_state out = { 0 };
	struct stage_ctx ctx = { 0 };
	struct progress progress;
	char content[HASH_HEX_LEN];
	char *metrics = NULL, *timings = NULL;
	double started = now_seconds();
	int ret;

	for (size_t i = 0; i < n_inputs; i++)
		input_ids[i] = inputs[i]->id;
	out = (struct stage_output_state){ .stage = s, .fingerprint = p->fingerprint,
					   .config_text = p->config_text, .input_ids = input_ids,
					   .n_inputs = n_inputs };
	ctx.reg = reg;
	ctx.cfg = rs->cfg;
	ctx.run_id = rs->run_id;
	ctx.as_of = (s->flags & STAGE_USES_AS_OF) ? rs->as_of : INT64_MIN;
	ctx.n_threads = n_threads;
	ctx.shard = rs->opts->shard;
	ctx.cores = cores;
	for (size_t i = 0; i < n_inputs; i++)
		ctx.inputs[i] = inputs[i];
	ctx.n_inputs = n_inputs;
	ctx.metrics = cJSON_CreateObject();
	ctx.output = &out;
	ctx.progress = &progress;
	ctx.predictions = rs->predictions;
	if (rs->files_unhashed && (s->flags & STAGE_READS_INPUT_FILES))
		ctx.unhashed_files = &rs->files;
	hasher_init(&ctx.content);

	log_set_stage(s->name);
	progress_run_stage(p->ordinal, p->n_stages);
	progress_start(&progress, s->name, "steps", 0);
	/* the main thread announced it with its reason (announce): said once on the console */
	LOG(LOG_DEBUG, "running (%s)", p->reason);
	/* Process-wide, and no stage runs beside ingest: every other stage reads it. */
	memory_use_huge_pages((s->flags & STAGE_HUGE_PAGES) != 0);
	/*
	 * Process-wide too: such a stage runs alone (calibrate, after every
	 * method). Only under run.memory_mb: otherwise the whole run keeps what
	 * it frees (pipeline/run_heap.c).
	 */
	if (run_heap_stage_keeps_freed(rs->cfg, s))
		memory_keep_freed();
	ret = s->run(&ctx);
	if (run_heap_stage_keeps_freed(rs->cfg, s))
		memory_map_big_blocks();
	progress_finish(&progress);
	progress_run_stage(0, 0);
	if (ret == 0)
		ret = injected_fault(s->name, &ctx.err);
	if (ret == 0 && !out.opened)
		ret = err_set(&ctx.err, LTV_EINTERNAL, "stage wrote no output");
	if (ret == 0 && ctx.unhashed_files)
		ret = complete_fingerprint(rs, s, p, reg, out.id, &ctx.err);
	if (ret == 0) {
		hasher_hex(&ctx.content, content);
		build_metrics_json(&ctx, now_seconds() - started, &metrics, &timings);
		ret = registry_artefact_finish(reg, out.id, content, metrics, timings, &ctx.err);
	}
	if (ret == 0)
		ret = registry_set_current(reg, s->name, out.id, &ctx.err);
	if (ret == 0) {
		/* its checkpoint may wait for the disk: a neighbour can use the core */
		core_share_lend(cores, 1);
		ret = registry_commit(reg, &ctx.err);
		core_share_lend(cores, -1);
	}
	if (ret < 0) {
		registry_rollback(reg);
		err_set(err, ret, "stage %s failed: %s", s->name, ctx.err.msg);
		LOG(LOG_ERROR, "%s; the registry keeps its previous versions", ctx.err.msg);
		goto out;
	}
	ret = registry_artefact_get(reg, out.id, &p->current, err);
	if (ret < 0)
		goto out;
	p->have_current = 1;
	if (ctx.saved_frame) {
		model_data_offer_frame(registry_path(reg), p->current.id, p->current.content_hash,
				       ctx.saved_frame);
		free(ctx.saved_frame);
		ctx.saved_frame = NULL;
	}
	p->state = PLAN_RAN;
	fprintf(rs->out, "%s: done (v%lld) in %.2f s\n", s->name, (long long)out.version,
		now_seconds() - started);
	metrics_say_brief(rs->out, metrics, rs->cfg->features.target_horizon);
	/* stdout has just said so: the console shows each stage once; the run's log file keeps it */
	LOG(LOG_DEBUG, "done: v%lld in %.2f s", (long long)out.version, now_seconds() - started);
out:
	if (ctx.saved_frame) {
		frame_release(ctx.saved_frame);
		free(ctx.saved_frame);
	}
	log_set_stage(NULL);
	hasher_release(&ctx.content);
	cJSON_Delete(ctx.metrics);
	cJSON_free(metrics);
	cJSON_free(timings);
	return ret;
}

/*
 * Decides whether a selected stage is up to date (PLAN_REUSED), would run
 * (dry run) or must run now (PLAN_SCHEDULED, with its inputs gathered).
 */
static int plan_stage(struct run_state *rs, int idx, struct ltv_err *err)
{
	const struct stage *s = &stage_table[idx];
	struct stage_plan *p = &rs->plans[idx];
	const struct artefact_info **inputs = p->inputs;
	struct artefact_info existing;
	size_t n_inputs = 0;
	int ret;

	if ((s->flags & STAGE_READS_INPUT_FILES) && !rs->have_files) {
		ret = resolve_files(rs, s, err);
		if (ret < 0)
			return ret;
	}
	ret = gather_inputs(rs, s, inputs, &n_inputs, err);
	p->n_inputs = n_inputs;
	if (ret < 0)
		return ret;
	if (ret == 1) {
		p->state = PLAN_WOULD_RUN;
		snprintf(p->reason, sizeof(p->reason), "an input would be rebuilt");
		fprintf(rs->out, "%s: would run (%s)\n", s->name, p->reason);
		return 0;
	}
	if (s->flags & STAGE_USES_AS_OF) {
		ret = resolve_as_of(rs, err);
		if (ret < 0)
			return ret;
	}
	if (!p->have_current) {
		ret = registry_artefact_current(rs->reg, s->name, &p->current, err);
		if (ret < 0 && ret != LTV_ENOTFOUND)
			return ret;
		p->have_current = ret == 0;
	}
	free(p->config_text);
	p->config_text = runner_stage_config_text(s, rs->cfg, rs->as_of, &rs->files,
						  &rs->opts->shard);
	runner_stage_fingerprint(s, p->config_text, inputs, n_inputs, p->fingerprint);

	if (p->have_current && strcmp(p->current.fingerprint, p->fingerprint) == 0 && !rs->opts->force) {
		/* Skipping trusts the stored output: check it is still whole (blob checksums). */
		ret = registry_artefact_verify(rs->reg, p->current.id, err);
		if (ret < 0)
			return ret;
		p->state = PLAN_REUSED;
		fprintf(rs->out, "%s: up to date (v%lld)\n", s->name, (long long)p->current.version);
		return 0;
	}
	if (!rs->opts->force &&
	    registry_artefact_by_fingerprint(rs->reg, s->name, p->fingerprint, &existing, err) == 0) {
		/* An older version was built from exactly these inputs: make it current again. */
		ret = registry_artefact_verify(rs->reg, existing.id, err);
		if (ret < 0) {
			artefact_info_release(&existing);
			return ret;
		}
		if (!rs->opts->dry_run) {
			ret = registry_begin(rs->reg, err);
			if (ret == 0)
				ret = registry_set_current(rs->reg, s->name, existing.id, err);
			if (ret == 0)
				ret = registry_commit(rs->reg, err);
			if (ret < 0) {
				registry_rollback(rs->reg);
				artefact_info_release(&existing);
				return ret;
			}
		}
		if (p->have_current)
			artefact_info_release(&p->current);
		p->current = existing;
		p->have_current = 1;
		p->state = PLAN_REUSED;
		fprintf(rs->out, "%s: up to date (v%lld, an earlier version with the same inputs)\n",
			s->name, (long long)existing.version);
		return 0;
	}
	if (rs->opts->force)
		snprintf(p->reason, sizeof(p->reason), "--force");
	else
		explain_stale(rs->reg, s, p, inputs, n_inputs, rs->have_files ? &rs->files : NULL,
			      p->reason, sizeof(p->reason));
	if (rs->opts->dry_run) {
		p->state = PLAN_WOULD_RUN;
		fprintf(rs->out, "%s: would run (%s)\n", s->name, p->reason);
		return 0;
	}
	if (p->have_current) {
		artefact_info_release(&p->current);
		p->have_current = 0;
	}
	p->state = PLAN_SCHEDULED;
	return 0;
}

/*
 * Progress of a run, logged before each stage (or each parallel wave): which
 * stages of how many still to do, and the time left by the last run's timings
 * of the stages still to run (stages never run before count as unknown).
 */
static double last_seconds(struct registry *reg, const char *stage)
{
	struct artefact_info a;
	struct ltv_err ignored;
	double seconds = NAN;
	cJSON *t;
	const cJSON *sec;

	if (registry_artefact_current(reg, stage, &a, &ignored) < 0)
		return NAN;
	t = cJSON_Parse(a.timings);
	sec = cJSON_GetObjectItemCaseSensitive(t, "seconds");
	if (cJSON_IsNumber(sec))
		seconds = sec->valuedouble;
	cJSON_Delete(t);
	artefact_info_release(&a);
	return seconds;
}

/*
 * Progress of a run, logged before each stage (or each parallel wave) from the
 * main thread: which stages of how many, and the time left by the last run's
 * timings of the stages still to do. Stages not yet planned are counted as if
 * they will run, so "of N" is at most N.
 */
static void announce(struct run_state *rs, const int *stages, size_t n)
{
	size_t done = 0, total = 0, unknown = 0;
	double left = 0;
	char names[256] = "";
	size_t len = 0;

	for (size_t i = 0; i < stage_count; i++) {
		struct stage_plan *p = &rs->plans[i];

		if (p->state == PLAN_RAN)
			done++;
		if (p->state != PLAN_RAN && p->state != PLAN_PENDING && p->state != PLAN_SCHEDULED)
			continue;
		total++;
		if (p->state == PLAN_RAN)
			continue;
		if (!p->expected_known) { /* the current artefact is the last run's until this one commits */
			p->expected_seconds = last_seconds(rs->reg, stage_table[i].name);
			p->expected_known = 1;
		}
		if (isnan(p->expected_seconds))
			unknown++;
		else
			left += p->expected_seconds;
	}
	if (unknown == total - done)
		left = NAN;
	if (n > 1) {
		for (size_t k = 0; k < n && len < sizeof(names); k++)
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", k ? ", " : "",
						stage_table[stages[k]].name);
		LOG(LOG_INFO, "stages %zu-%zu of %zu, in parallel: %s", done + 1, done + n, total, names);
	}
	for (size_t k = 0; k < n; k++) {
		rs->plans[stages[k]].ordinal = (int)(done + 1 + k);
		rs->plans[stages[k]].n_stages = (int)total;
		LOG(LOG_INFO, "stage %zu of %zu: %s (%s)", done + 1 + k, total, stage_table[stages[k]].name,
		    rs->plans[stages[k]].reason);
	}
	progress_run_left(left);
	if (!isnan(left) && left < 1)
		LOG(LOG_INFO, "under 1 s left, by the last run's timings%s",
		    unknown ? " of the stages timed before" : "");
	else if (!isnan(left))
		LOG(LOG_INFO, "about %.0f s left, by the last run's timings%s", left,
		    unknown ? " of the stages timed before" : "");
}

/* ---- waves: stages whose inputs are all resolved run together ---- */

/*
 * A wave runs on min(jobs, stages) worker threads that each take the next
 * stage as soon as they are free (no barrier between stages), each stage on
 * its own registry connection and transaction. Threads inside a stage
 * (XGBoost, k-means) are the jobs shared among the unfinished stages, asked
 * for again before each long step (stage_threads).
 */
struct wave {
	struct run_state *rs;
	const int *stages;
	size_t n;
	size_t next;            /* guarded by lock */
	size_t running;         /* stages running now; guarded by lock */
	int threads_per_stage;
	/*
	 * run.memory_mb is set: a worker counts as waiting (its core free for
	 * the running stages, stage_threads) from the moment it finishes a
	 * stage until it takes the next, not only once it sleeps on the budget.
	 * Counting it only while asleep left a window after each stage in which
	 * the next lone stage was given half the cores (tests/cli/memory_budget.sh
	 * saw lookalike with 1 thread under load).
	 */
	int budget;
	pthread_mutex_t lock;
	pthread_cond_t finished; /* a stage of the wave finished */
	struct core_share cores;
	int ret[32];
	struct ltv_err err[32];
};

/*
 * Under run.memory_mb, may one more stage start beside the running ones? A
 * model stage's own working set is counted as one shared features frame
 * (its matrices copy part of it; hurdle gates its horizons itself), so with
 * a budget the big stages of a wave run one after another, each then given
 * the cores its neighbour left (stage_threads). The first always starts.
 */
static int wave_memory_fits(const struct wave *w)
{
	const size_t limit = (size_t)w->rs->cfg->run.memory_mb * 1048576;

	return w->running == 0 || limit == 0 ||
	       current_rss_bytes() + model_data_shared_frame_bytes() <= limit;
}

static void *wave_worker(void *opaque)
{
	struct wave *w = opaque;

	for (;;) {
		struct registry *reg = NULL;
		size_t k;

		pthread_mutex_lock(&w->lock);
		while (w->next < w->n && !wave_memory_fits(w))
			pthread_cond_wait(&w->finished, &w->lock);
		k = w->next++;
		if (k < w->n)
			w->running++;
		if (w->budget)
			core_share_waiting(&w->cores, -1); /* busy from here, or gone */
		pthread_mutex_unlock(&w->lock);
		if (k >= w->n)
			return NULL;
		w->ret[k] = registry_open(w->rs->cfg->registry.path,
					  (int)w->rs->cfg->registry.busy_timeout_s, &reg, &w->err[k]);
		if (w->ret[k] == 0)
			w->ret[k] = execute_stage(w->rs, w->stages[k], reg, w->threads_per_stage,
						  &w->cores, &w->err[k]);
		registry_close(reg);
		/*
		 * What the stage freed stays in the run's one malloc arena for
		 * its neighbours and the next wave, except under run.memory_mb,
		 * whose test (wave_memory_fits) reads resident memory. A trim
		 * here and after every stage and stage task made the next
		 * allocations fault and zero the same memory again: at 1,000,000
		 * users (glibc.malloc.hugetlb=1), cold run after ingest, 5 pairs
		 * each, bench/train_ab.sh: 181k -> 52k page faults without the
		 * lone stages' and the tasks' trims, -2.5 CPU s; 52k -> 26k and
		 * -1.4 CPU s more without this one, peak RSS 384 -> 400 MB.
		 */
		if (w->budget)
			memory_return_free();
		pthread_mutex_lock(&w->cores.lock);
		w->cores.unfinished--;
		if (w->budget)
			w->cores.waiting++; /* idle until it takes the next stage */
		pthread_mutex_unlock(&w->cores.lock);
		pthread_mutex_lock(&w->lock);
		w->running--;
		pthread_cond_broadcast(&w->finished);
		pthread_mutex_unlock(&w->lock);
	}
}

/*
 * Whether ingest is the one stage this run ran (`run --only ingest`): its
 * WAL is then left to the next run (registry_leave_wal_at_close), whose
 * model wave copies it with features' on a core hurdle leaves idle, instead
 * of this process copying it (0.5 to 1 s of wall at 1,000,000 users, 131 MB)
 * between its last commit and its exit.
 */
static int only_ingest_ran(const struct run_state *rs)
{
	const int ingest = stage_find("ingest");

	for (size_t i = 0; i < stage_count; i++)
		if (rs->plans[i].state == PLAN_RAN && (int)i != ingest)
			return 0;
	return ingest >= 0 && rs->plans[ingest].state == PLAN_RAN;
}

static int run_wave(struct run_state *rs, const int *stages, size_t n, struct ltv_err *err)
{
	int jobs = config_jobs(rs->cfg);
	size_t n_workers = n < (size_t)jobs ? n : (size_t)jobs;
	struct wave w = { .rs = rs, .stages = stages, .n = n };
	pthread_t threads[32];
	size_t started = 0;
	int ret = 0;

	assert(n <= 32);
	if (n_workers <= 1) {
		for (size_t i = 0; i < n && ret == 0; i++) {
			announce(rs, &stages[i], 1);
			/* no trim: the next stage reuses what this one freed (wave_worker) */
			ret = execute_stage(rs, stages[i], rs->reg, jobs, NULL, err);
		}
		return ret;
	}
	announce(rs, stages, n);
	/* The checkpoint the serial stages put off is done now, by this wave's commits (runner_run_on). */
	registry_defer_checkpoints(rs->reg, 0);
	w.threads_per_stage = jobs / (int)n_workers > 0 ? jobs / (int)n_workers : 1;
	w.budget = rs->cfg->run.memory_mb != 0;
	w.cores = (struct core_share){ .jobs = jobs, .workers = n_workers, .unfinished = n,
				       .waiting = w.budget ? n_workers : 0 };
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.finished, NULL);
	pthread_mutex_init(&w.cores.lock, NULL);
	for (; started < n_workers; started++)
		if (pthread_create(&threads[started], NULL, wave_worker, &w) != 0)
			break;
	if (started == 0)
		ret = err_set(err, LTV_EINTERNAL, "cannot start worker threads for the model stages");
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.finished);
	pthread_mutex_destroy(&w.cores.lock);
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (w.ret[i] < 0) {
			ret = w.ret[i];
			*err = w.err[i];
		}
	}
	return ret;
}

static int input_resolved(const struct run_state *rs, const struct stage *s)
{
	for (size_t k = 0; k < STAGE_MAX_INPUTS && s->inputs[k]; k++) {
		enum plan_state st = rs->plans[stage_find(s->inputs[k])].state;

		if (st == PLAN_PENDING || st == PLAN_SCHEDULED)
			return 0;
	}
	return 1;
}

static int stage_reads(const struct stage *s, const char *name)
{
	for (size_t k = 0; k < STAGE_MAX_INPUTS && s->inputs[k]; k++)
		if (strcmp(s->inputs[k], name) == 0)
			return 1;
	return 0;
}

/*
 * Whether a scheduled stage can wait for the next wave without delaying it:
 * the next wave (the pending stages this wave's results make ready) exists,
 * and none of its stages reads this one. Look-alike and semantic read only
 * features, so they became ready beside tiers; run there, tiers' wave lasted
 * as long as look-alike (6.7 s at 1,000,000 users) and hurdle, which needs
 * only tiers, waited for it with a core idle. Deferred, they fill the cores
 * beside hurdle instead.
 */
static int can_defer(const struct run_state *rs, int idx)
{
	int next_wave = 0;

	for (size_t i = 0; i < stage_count; i++) {
		const struct stage *t = &stage_table[i];
		int ready_after = rs->plans[i].state == PLAN_PENDING;

		for (size_t k = 0; ready_after && k < STAGE_MAX_INPUTS && t->inputs[k]; k++) {
			enum plan_state st = rs->plans[stage_find(t->inputs[k])].state;

			ready_after = st != PLAN_PENDING;
		}
		if (!ready_after)
			continue;
		if (stage_reads(t, stage_table[idx].name))
			return 0;
		next_wave = 1;
	}
	return next_wave;
}

/*
 * Plans every stage whose inputs are resolved, runs the ones that must run
 * as one wave, and repeats. Independent model stages land in the same wave;
 * a stage nothing in the next wave reads waits for that wave (can_defer).
 */
static int run_waves(struct run_state *rs, struct ltv_err *err)
{
	int wave[32], deferred[32];
	size_t n_deferred = 0;
	int ret = 0;

	for (;;) {
		size_t n = 0, pending = 0, n_later = 0;
		int later[32];

		for (size_t k = 0; k < n_deferred; k++)
			wave[n++] = deferred[k];
		for (size_t i = 0; i < stage_count && ret == 0; i++) {
			struct stage_plan *p = &rs->plans[i];

			if (p->state != PLAN_PENDING)
				continue;
			pending++;
			if (!input_resolved(rs, &stage_table[i]))
				continue;
			ret = plan_stage(rs, (int)i, err);
			if (ret == 0 && p->state == PLAN_SCHEDULED)
				wave[n++] = (int)i;
		}
		if (ret < 0 || (pending == 0 && n == 0))
			return ret;
		if (n == 0)
			continue; /* everything planned this pass was reused; plan the next ones */
		/*
		 * Stages deferred once run now: deferring again could starve them.
		 * On one core there is no idle core to fill: the order stays the table's.
		 */
		for (size_t k = n_deferred; k < n && config_jobs(rs->cfg) > 1; k++)
			if (can_defer(rs, wave[k]))
				later[n_later++] = wave[k];
		if (n_later == n - n_deferred && n_deferred == 0)
			n_later = 0; /* never an empty wave */
		{
			size_t m = 0;

			for (size_t k = 0; k < n; k++) {
				int is_later = 0;

				for (size_t j = 0; j < n_later; j++)
					is_later |= later[j] == wave[k];
				if (!is_later)
					wave[m++] = wave[k];
			}
			n = m;
		}
		/* Table order within the wave: hurdle, the longest, first. */
		for (size_t k = 1; k < n; k++)
			for (size_t j = k; j > 0 && wave[j - 1] > wave[j]; j--) {
				int t = wave[j];

				wave[j] = wave[j - 1];
				wave[j - 1] = t;
			}
		memcpy(deferred, later, n_later * sizeof(int));
		n_deferred = n_later;
		ret = run_wave(rs, wave, n, err);
		if (ret < 0)
			return ret;
	}
}

static void run_state_release(struct run_state *rs)
{
	for (size_t i = 0; i < stage_count; i++) {
		if (rs->plans[i].have_current)
			artefact_info_release(&rs->plans[i].current);
		free(rs->plans[i].config_text);
	}
	if (rs->have_files)
		input_files_release(&rs->files);
	registry_close(rs->reg);
}

static const char *plan_state_name(enum plan_state st)
{
	switch (st) {
	case PLAN_RAN: return "ran";
	case PLAN_REUSED: return "up to date";
	case PLAN_WOULD_RUN: return "would run";
	default: return "not selected";
	}
}

/* --json: the run and each stage's outcome, from the plans once every stage is done. */
static void plans_to_json(const struct run_state *rs, cJSON *doc, double seconds)
{
	cJSON *stages = cJSON_CreateArray();
	char iso[32];

	if (!rs->opts->dry_run)
		cJSON_AddStringToObject(doc, "run_id", rs->run_id);
	cJSON_AddBoolToObject(doc, "dry_run", rs->opts->dry_run != 0);
	if (rs->as_of != INT64_MIN)
		cJSON_AddStringToObject(doc, "as_of", time_format_iso8601(rs->as_of, iso, sizeof(iso)));
	cJSON_AddStringToObject(doc, "registry", rs->cfg->registry.path);
	cJSON_AddNumberToObject(doc, "seconds", seconds);
	for (size_t i = 0; i < stage_count; i++) {
		const struct stage_plan *p = &rs->plans[i];
		cJSON *o;

		if (p->state == PLAN_PENDING || p->state == PLAN_UNSELECTED)
			continue;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "stage", stage_table[i].name);
		cJSON_AddStringToObject(o, "state", plan_state_name(p->state));
		if (p->state == PLAN_WOULD_RUN && p->reason[0])
			cJSON_AddStringToObject(o, "reason", p->reason);
		if (p->have_current && p->state != PLAN_WOULD_RUN) {
			cJSON *m = cJSON_Parse(p->current.metrics), *t = cJSON_Parse(p->current.timings);

			cJSON_AddNumberToObject(o, "version", (double)p->current.version);
			cJSON_AddStringToObject(o, "made_by_run", p->current.run_id);
			cJSON_AddItemToObject(o, "metrics", m ? m : cJSON_CreateObject());
			cJSON_AddItemToObject(o, "timings", t ? t : cJSON_CreateObject());
		}
		cJSON_AddItemToArray(stages, o);
	}
	cJSON_AddItemToObject(doc, "stages", stages);
}

int runner_run(const struct config *cfg, const struct run_options *opts, FILE *out,
	       struct ltv_err *err)
{
	struct registry *reg = NULL;
	int ret;

	if (opts->dry_run) {
		/* A dry run changes nothing: not even creating the registry file. */
		ret = registry_open_readonly(cfg->registry.path, &reg, err);
		if (ret == LTV_ENOTFOUND)
			ret = 0; /* no registry yet: every stage would run */
	} else {
		ret = registry_open(cfg->registry.path, (int)cfg->registry.busy_timeout_s, &reg, err);
		if (ret == 0)
			ret = registry_lock_run(reg, (int)cfg->registry.busy_timeout_s, err);
	}
	if (ret == 0)
		ret = runner_run_on(cfg, reg, opts, out, err);
	registry_close(reg); /* and the run lock with it */
	return ret;
}

int runner_run_on(const struct config *cfg, struct registry *reg, const struct run_options *opts,
		  FILE *out, struct ltv_err *err)
{
	struct run_state rs = { .cfg = cfg, .opts = opts, .as_of = INT64_MIN, .out = out, .reg = reg };
	char *config_text = NULL;
	int ret, run_recorded = 0;
	double started = now_seconds();

	assert(stage_count <= sizeof(rs.plans) / sizeof(rs.plans[0]));
	assert(reg || opts->dry_run);
	run_heap_setup(cfg); /* before any stage thread exists */
	ret = stage_table_check(err);
	if (ret == 0)
		ret = select_stages(opts, rs.plans, err);
	if (ret < 0)
		return ret;
	if (!reg) {
		for (size_t i = 0; i < stage_count; i++)
			if (rs.plans[i].state == PLAN_PENDING)
				fprintf(out, "%s: would run (no registry yet at %s)\n",
					stage_table[i].name, cfg->registry.path);
		return 0;
	}
	runner_make_run_id(rs.run_id, sizeof(rs.run_id));
	rs.predictions = prediction_shelf_new();
	/*
	 * The serial stages before the model wave (ingest, features, tiers)
	 * commit on this connection without copying the WAL into the database
	 * file: at 1,000,000 users that checkpoint moved the 317 MB features
	 * frame once more (a pread and a pwrite per page, about 0.5 CPU s) while
	 * every later stage waited. The first parallel wave's commits do it
	 * instead, on a core hurdle leaves idle (run_wave). With one job there is
	 * no such core, and nothing changes. Deferred before the run's own
	 * record is committed: that first commit found the 131 MB WAL ingest
	 * leaves (registry_leave_wal_at_close) and copied it there and then,
	 * three fdatasyncs included, before features could start (uprobes, main
	 * to stage_features_run at 1,000,000 users: 0.26-0.78 s, now 0.06 s;
	 * bench/features_start_ab.sh).
	 */
	registry_defer_checkpoints(rs.reg, !opts->dry_run && config_jobs(cfg) > 1);
	if (!opts->dry_run) {
		struct ltv_err log_err;

		if (log_open_run(cfg->run.log_dir, rs.run_id, &log_err) < 0)
			LOG(LOG_WARN, "%s; logging to the console only", log_err.msg);
		config_text = config_dump(cfg);
		ret = registry_run_start(rs.reg, rs.run_id, opts->command ? opts->command : "run",
					 opts->as_of, config_text, err);
		if (ret < 0)
			goto out;
		run_recorded = 1;
		LOG(LOG_INFO, "run started: registry %s, config %s, %d threads", cfg->registry.path,
		    cfg->source_path, config_jobs(cfg));
		/* what the process re-executed itself with (cli/main.c): it moves CPU, not results */
		LOG(LOG_DEBUG, "runtime: GLIBC_TUNABLES=%s OMP_WAIT_POLICY=%s",
		    getenv("GLIBC_TUNABLES") ? getenv("GLIBC_TUNABLES") : "(unset)",
		    getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(unset)");
		LOG(LOG_DEBUG, "heap: %s", run_heap_keeps_freed(cfg) ?
		    "freed blocks stay for the run (no run.memory_mb)" :
		    "big blocks mapped apart, freed memory handed back after each stage (run.memory_mb)");
	}
	ret = run_waves(&rs, err);
	if (ret == 0 && !opts->dry_run && config_jobs(cfg) > 1 && only_ingest_ran(&rs))
		registry_leave_wal_at_close(rs.reg);
	else
		registry_defer_checkpoints(rs.reg, 0);
	if (run_recorded && rs.as_of != INT64_MIN) {
		struct ltv_err as_of_err;

		/* the as_of the run used, also when it was the default (the latest event) */
		if (registry_run_set_as_of(rs.reg, rs.run_id, rs.as_of, &as_of_err) < 0)
			LOG(LOG_WARN, "%s", as_of_err.msg);
	}
	if (ret == 0 && opts->json)
		plans_to_json(&rs, opts->json, now_seconds() - started);
	if (ret == 0 && !opts->dry_run) {
		fprintf(out, "run %s finished in %.2f s (registry %s)\n", rs.run_id,
			now_seconds() - started, cfg->registry.path);
		models_say_after_run(rs.reg, cfg, rs.run_id, out);
	}
out:
	if (run_recorded) {
		struct ltv_err finish_err;

		registry_run_finish(rs.reg, rs.run_id, ret == 0 ? "ok" : "failed", &finish_err);
		log_close_run();
	}
	free(config_text);
	/* select's predictions left for calibrate are of no use after the run */
	prediction_shelf_free(rs.predictions);
	rs.reg = NULL; /* the caller's */
	run_state_release(&rs);
	return ret;
}

/* ---- status ---- */

/* --json: one object per stage, from the plan status filled in. */
static void status_to_json(const struct run_state *rs, cJSON *doc)
{
	cJSON *stages;
	char iso[32];

	cJSON_AddStringToObject(doc, "registry", rs->cfg->registry.path);
	if (rs->as_of != INT64_MIN)
		cJSON_AddStringToObject(doc, "as_of", time_format_iso8601(rs->as_of, iso, sizeof(iso)));
	stages = cJSON_AddArrayToObject(doc, "stages");
	for (size_t i = 0; i < stage_count; i++) {
		const struct stage_plan *p = &rs->plans[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "stage", stage_table[i].name);
		if (!p->have_current) {
			cJSON_AddStringToObject(o, "state", "never run");
		} else {
			cJSON *m = cJSON_Parse(p->current.metrics);

			cJSON_AddStringToObject(o, "state", p->state == PLAN_WOULD_RUN ? "stale" : "fresh");
			if (p->state == PLAN_WOULD_RUN)
				cJSON_AddStringToObject(o, "reason", p->reason[0] ? p->reason : "an input is stale");
			cJSON_AddNumberToObject(o, "version", (double)p->current.version);
			cJSON_AddStringToObject(o, "created_at", p->current.created_at);
			cJSON_AddStringToObject(o, "made_by_run", p->current.run_id);
			cJSON_AddItemToObject(o, "metrics", m ? m : cJSON_CreateObject());
		}
		cJSON_AddItemToArray(stages, o);
	}
}

int runner_status(const struct config *cfg, struct registry *reg, int64_t as_of, FILE *out,
		  struct cJSON *json, struct ltv_err *err)
{
	struct run_state rs = { .cfg = cfg, .as_of = INT64_MIN, .out = out, .reg = reg };
	struct run_options opts = { .as_of = as_of, .dry_run = 1 };
	int ret = 0;

	rs.opts = &opts;
	fprintf(out, "registry %s\n", cfg->registry.path);
	for (size_t i = 0; i < stage_count; i++) {
		const struct stage *s = &stage_table[i];
		struct stage_plan *p = &rs.plans[i];
		const struct artefact_info *inputs[STAGE_MAX_INPUTS];
		size_t n_inputs = 0;
		int r;

		r = registry_artefact_current(rs.reg, s->name, &p->current, err);
		if (r == LTV_ENOTFOUND) {
			fprintf(out, "%-10s never run\n", s->name);
			p->state = PLAN_WOULD_RUN;
			continue;
		}
		if (r < 0) {
			ret = r;
			break;
		}
		p->have_current = 1;
		fprintf(out, "%-10s v%-4lld made %s by run %s", s->name, (long long)p->current.version,
			p->current.created_at, p->current.run_id);
		if ((s->flags & STAGE_READS_INPUT_FILES) && !rs.have_files) {
			if (input_files_resolve(cfg, &rs.files, err) < 0) {
				fprintf(out, "  stale? (%s)\n", err->msg);
				p->state = PLAN_WOULD_RUN;
				continue;
			}
			rs.have_files = 1;
		}
		r = gather_inputs(&rs, s, inputs, &n_inputs, err);
		if (r != 0) {
			fprintf(out, "  stale (an input is stale)\n");
			p->state = PLAN_WOULD_RUN;
			continue;
		}
		if ((s->flags & STAGE_USES_AS_OF) && resolve_as_of(&rs, err) < 0) {
			fprintf(out, "  stale? (%s)\n", err->msg);
			continue;
		}
		p->config_text = runner_stage_config_text(s, cfg, rs.as_of, &rs.files, NULL);
		runner_stage_fingerprint(s, p->config_text, inputs, n_inputs, p->fingerprint);
		if (strcmp(p->fingerprint, p->current.fingerprint) == 0) {
			fprintf(out, "  fresh\n");
		} else {
			explain_stale(rs.reg, s, p, inputs, n_inputs, rs.have_files ? &rs.files : NULL,
				      p->reason, sizeof(p->reason));
			fprintf(out, "  stale (%s)\n", p->reason);
			p->state = PLAN_WOULD_RUN;
		}
		metrics_say_brief(out, p->current.metrics, cfg->features.target_horizon);
	}
	if (ret == 0)
		models_say_status(rs.reg, out);
	if (ret == 0 && json)
		status_to_json(&rs, json);
	rs.reg = NULL; /* the dispatcher's */
	run_state_release(&rs);
	return ret;
}

/*
 * `ltvpipe merge SHARD_REGISTRY...` (contract in include/ltv/shard_merge.h):
 * joins the shard registries that `run --to features --shard i/N` built into
 * the main registry, in one transaction. Users are numbered in the order an
 * unsharded ingest numbers them (their place in the input files, which each
 * shard keeps in the blob shard_user_pos), so users, user_days and the
 * features frame come out exactly as one unsharded run makes them; what
 * needs every user (the split, the app and campaign encodings) is then
 * computed on the whole by features_complete, the features stage's own code.
 * The merged ingest and features artefacts get the fingerprints an unsharded
 * run computes, so `ltvpipe run` afterwards finds them up to date and trains
 * from tiers on, exactly as today. This file opens and checks the shards and
 * writes the merged artefacts; the data is copied by shard_merge_data.c and
 * the features frame joined by shard_merge_frames.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ltv/log.h"
#include "ltv/runner.h"
#include "ltv/shard_merge_internal.h"
#include "ltv/stage.h"
#include "ltv/timeutil.h"

/* The config text without its "shard=i/N" line: what the shard shares with the others. */
static char *without_shard_line(const char *text)
{
	char *out = xstrdup(text), *line = strstr(out, "shard=");

	while (line && line != out && line[-1] != '\n')
		line = strstr(line + 1, "shard=");
	if (line) {
		char *end = strchr(line, '\n');

		memmove(line, end ? end + 1 : line + strlen(line), strlen(end ? end + 1 : "") + 1);
	}
	return out;
}

static int read_shard_spec(struct shard_in *s, struct ltv_err *err)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(s->ingest_m, "shard");
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(s->features_m, "shard");

	if (!cJSON_IsString(a) || !cJSON_IsString(b))
		return err_set(err, LTV_EUSAGE, "%s is not a shard registry (its ingest or features ran "
			       "without --shard); build shards with 'ltvpipe run --to features --shard "
			       "i/N --as-of T --set registry.path=%s'", s->path, s->path);
	if (strcmp(a->valuestring, b->valuestring) != 0)
		return err_set(err, LTV_EUSAGE, "%s: its ingest is shard %s but its features shard %s; "
			       "rebuild it with one --shard", s->path, a->valuestring, b->valuestring);
	if (shard_parse(a->valuestring, &s->spec, err) < 0)
		return err_set(err, LTV_EREGISTRY, "%s: shard '%s' recorded in its ingest is not i/N",
			       s->path, a->valuestring);
	return 0;
}

static int load_positions(struct shard_in *s, struct ltv_err *err)
{
	void *data = NULL;
	size_t len = 0;
	int ret = registry_blob_get(s->reg, s->ingest.id, "shard_user_pos", &data, &len, err);

	if (ret < 0)
		return ret;
	s->pos = data;
	s->n_users = len / sizeof(int64_t);
	return 0;
}

/* Opens one shard registry read-only and reads what merge checks before writing anything. */
static int open_shard(struct shard_in *s, struct ltv_err *err)
{
	int ret = registry_open_readonly(s->path, &s->reg, err);

	if (ret == LTV_ENOTFOUND)
		return err_set(err, LTV_EUSAGE, "shard registry %s does not exist", s->path);
	if (ret == 0)
		ret = registry_read_begin(s->reg, err);
	if (ret < 0)
		return ret;
	ret = registry_artefact_current(s->reg, "ingest", &s->ingest, err);
	s->have_ingest = ret == 0;
	if (ret == 0) {
		ret = registry_artefact_current(s->reg, "features", &s->features, err);
		s->have_features = ret == 0;
	}
	if (ret == LTV_ENOTFOUND)
		return err_set(err, LTV_EUSAGE, "%s has no %s yet; run 'ltvpipe run --to features "
			       "--shard i/N --as-of T --set registry.path=%s' first", s->path,
			       s->have_ingest ? "features" : "ingest", s->path);
	if (ret < 0)
		return ret;
	s->ingest_m = cJSON_Parse(s->ingest.metrics);
	s->features_m = cJSON_Parse(s->features.metrics);
	if (!s->ingest_m || !s->features_m)
		return err_set(err, LTV_EREGISTRY, "%s: unreadable artefact metrics", s->path);
	ret = read_shard_spec(s, err);
	if (ret == 0)
		ret = load_positions(s, err);
	return ret;
}

/* Every shard 0..N-1 exactly once, built from the same data, config and as_of. */
static int check_shards(struct shard_merge *mg, struct ltv_err *err)
{
	const struct shard_in *first = &mg->sh[0];
	char *ingest0 = without_shard_line(first->ingest.config);
	char *features0 = without_shard_line(first->features.config);
	int ret = 0;

	mg->count = first->spec.count;
	mg->as_of = first->features.as_of;
	if ((int64_t)mg->n != mg->count)
		ret = err_set(err, LTV_EUSAGE, "%zu shard registries given, but they are shards of %lld; "
			      "give all %lld (0/%lld to %lld/%lld)", mg->n, (long long)mg->count,
			      (long long)mg->count, (long long)mg->count, (long long)mg->count - 1,
			      (long long)mg->count);
	for (size_t i = 0; i < mg->n && ret == 0; i++) {
		const struct shard_in *s = &mg->sh[i];
		char *it = without_shard_line(s->ingest.config), *ft = without_shard_line(s->features.config);

		if (s->spec.count != mg->count)
			ret = err_set(err, LTV_EUSAGE, "%s is a shard of %lld, %s of %lld; shards of one "
				      "split only", s->path, (long long)s->spec.count, first->path,
				      (long long)mg->count);
		for (size_t j = 0; j < i && ret == 0; j++)
			if (mg->sh[j].spec.index == s->spec.index)
				ret = err_set(err, LTV_EUSAGE, "%s and %s are both shard %lld/%lld",
					      mg->sh[j].path, s->path, (long long)s->spec.index,
					      (long long)mg->count);
		if (ret == 0 && s->features.as_of != mg->as_of) {
			char a[32], b[32];

			ret = err_set(err, LTV_EUSAGE, "%s has features as of %s, %s as of %s; rebuild the "
				      "shards with one --as-of", s->path,
				      time_format_iso8601(s->features.as_of, a, sizeof(a)), first->path,
				      time_format_iso8601(mg->as_of, b, sizeof(b)));
		}
		if (ret == 0 && (strcmp(it, ingest0) != 0 || strcmp(s->ingest.content_hash,
								     first->ingest.content_hash) != 0))
			ret = err_set(err, LTV_EUSAGE, "%s and %s ingested other files or another input "
				      "configuration; rebuild the shards from the same files", s->path,
				      first->path);
		if (ret == 0 && strcmp(ft, features0) != 0)
			ret = err_set(err, LTV_EUSAGE, "%s and %s were built with another features "
				      "configuration; rebuild the shards with one", s->path, first->path);
		free(it);
		free(ft);
	}
	free(ingest0);
	free(features0);
	return ret;
}

/*
 * The fingerprints an unsharded run computes with this configuration; the
 * shards must have been built with the same texts, or the merged artefacts
 * would claim a configuration they were not made with.
 */
static int plan_fingerprints(struct shard_merge *mg, struct ltv_err *err)
{
	const struct stage *ingest = &stage_table[stage_find("ingest")];
	const struct stage *features = &stage_table[stage_find("features")];
	struct artefact_info merged_ingest = { 0 };
	const struct artefact_info *inputs[1] = { &merged_ingest };
	char *shard_ingest = without_shard_line(mg->sh[0].ingest.config);
	char *shard_features = without_shard_line(mg->sh[0].features.config);
	int ret = input_files_resolve(mg->cfg, &mg->files, err);

	if (ret == 0) {
		mg->ingest_text = runner_stage_config_text(ingest, mg->cfg, INT64_MIN, &mg->files, NULL);
		mg->features_text = runner_stage_config_text(features, mg->cfg, mg->as_of, NULL, NULL);
		if (strcmp(mg->ingest_text, shard_ingest) != 0)
			ret = err_set(err, LTV_EUSAGE, "the shards ingested other input files or another "
				      "input, columns or ingest configuration than this one (%s); merge "
				      "with the configuration the shards ran with", mg->cfg->source_path);
		else if (strcmp(mg->features_text, shard_features) != 0)
			ret = err_set(err, LTV_EUSAGE, "the shards' features configuration differs from "
				      "this one (%s); merge with the configuration the shards ran with",
				      mg->cfg->source_path);
	}
	if (ret == 0) {
		runner_stage_fingerprint(ingest, mg->ingest_text, NULL, 0, mg->ingest_fp);
		snprintf(merged_ingest.content_hash, sizeof(merged_ingest.content_hash), "%s",
			 mg->sh[0].ingest.content_hash);
		runner_stage_fingerprint(features, mg->features_text, inputs, 1, mg->features_fp);
	}
	free(shard_ingest);
	free(shard_features);
	return ret;
}

/* ---- the merged artefacts ---- */

/* Lineage outside this registry: which shard registry and artefact each part came from. */
static void add_shard_lineage(cJSON *m, const struct shard_merge *mg, int features)
{
	cJSON *a = cJSON_AddArrayToObject(m, "shards");

	for (size_t i = 0; i < mg->n; i++) {
		const struct shard_in *s = &mg->sh[i];
		const struct artefact_info *art = features ? &s->features : &s->ingest;
		cJSON *o = cJSON_CreateObject();
		char spec[32];

		cJSON_AddStringToObject(o, "shard", shard_format(&s->spec, spec, sizeof(spec)));
		cJSON_AddStringToObject(o, "registry", s->path);
		cJSON_AddNumberToObject(o, "version", (double)art->version);
		cJSON_AddStringToObject(o, "run_id", art->run_id);
		cJSON_AddStringToObject(o, "content_hash", art->content_hash);
		cJSON_AddItemToArray(a, o);
	}
}

static char *timings_json(double seconds)
{
	cJSON *t = cJSON_CreateObject();
	char *text;

	cJSON_AddNumberToObject(t, "seconds", seconds);
	cJSON_AddNumberToObject(t, "peak_rss_mb", (double)peak_rss_bytes() / 1048576.0);
	text = cJSON_PrintUnformatted(t);
	cJSON_Delete(t);
	return text;
}

static int write_ingest(struct shard_merge *mg, double started, struct ltv_err *err)
{
	static const char *const sums[] = { "users_loaded", "users_rejected", "events_loaded",
					    "events_rejected", "users_total", "user_days_added" };
	struct artefact_new a = { .name = "ingest", .run_id = mg->run_id, .fingerprint = mg->ingest_fp,
				  .code_version = stage_table[stage_find("ingest")].code_version,
				  .config = mg->ingest_text, .as_of = INT64_MIN };
	cJSON *m = cJSON_CreateObject();
	char *metrics, *timings;
	int ret = registry_artefact_create(mg->reg, &a, &mg->ingest_id, &mg->ingest_version, err);

	if (ret == 0)
		ret = registry_data_clear(mg->reg, err);
	if (ret == 0)
		ret = shard_merge_number_users(mg, &mg->n_users, err);
	if (ret == 0)
		ret = shard_merge_copy_users(mg, err);
	if (ret == 0)
		ret = shard_merge_copy_user_days(mg, &mg->n_days, err);
	if (ret == 0)
		ret = shard_merge_copy_file_records(mg, err);
	if (ret == 0)
		ret = shard_merge_max_event_time(mg, err);
	if (ret == 0)
		ret = registry_meta_set(mg->reg, "user_data_from", "merge", err);
	if (ret == 0)
		ret = shard_merge_rejects(mg, err);
	if (ret < 0) {
		cJSON_Delete(m);
		return ret;
	}
	cJSON_AddNumberToObject(m, "files_loaded", shard_merge_metric(mg->sh[0].ingest_m, "files_loaded"));
	cJSON_AddNumberToObject(m, "files_already_ingested",
				shard_merge_metric(mg->sh[0].ingest_m, "files_already_ingested"));
	for (size_t k = 0; k < sizeof(sums) / sizeof(sums[0]); k++) {
		double total = 0;

		for (size_t i = 0; i < mg->n; i++)
			total += shard_merge_metric(mg->sh[i].ingest_m, sums[k]);
		cJSON_AddNumberToObject(m, sums[k], total);
	}
	if (mg->rejects_path)
		cJSON_AddStringToObject(m, "rejects_file", mg->rejects_path);
	cJSON_AddNumberToObject(m, "users_merged", (double)mg->n_users);
	cJSON_AddNumberToObject(m, "user_days_merged", (double)mg->n_days);
	add_shard_lineage(m, mg, 0);
	metrics = cJSON_PrintUnformatted(m);
	timings = timings_json(now_seconds() - started);
	ret = registry_artefact_finish(mg->reg, mg->ingest_id, mg->sh[0].ingest.content_hash, metrics,
				       timings, err);
	if (ret == 0)
		ret = registry_set_current(mg->reg, "ingest", mg->ingest_id, err);
	cJSON_Delete(m);
	cJSON_free(metrics);
	cJSON_free(timings);
	return ret;
}

static int write_features(struct shard_merge *mg, double started, struct ltv_err *err)
{
	int64_t inputs[1] = { mg->ingest_id };
	struct artefact_new a = { .name = "features", .run_id = mg->run_id,
				  .fingerprint = mg->features_fp,
				  .code_version = stage_table[stage_find("features")].code_version,
				  .config = mg->features_text, .as_of = mg->as_of, .inputs = inputs,
				  .n_inputs = 1 };
	struct encodings enc = { 0 };
	struct feature_base_stats st;
	struct frame f = { 0 };
	struct hasher content;
	cJSON *m = cJSON_CreateObject();
	char hex[HASH_HEX_LEN], *metrics = NULL, *timings = NULL;
	int ret = shard_merge_join_frames(mg, &f, &enc, &st, err);

	hasher_init(&content);
	if (ret == 0) {
		features_complete(mg->cfg, mg->as_of, &f, &enc, &st, m, &content);
		frame_compact(&f); /* stored packed (as stage_features_run does) */
		add_shard_lineage(m, mg, 1);
		hasher_hex(&content, hex);
		ret = registry_artefact_create(mg->reg, &a, &mg->features_id, &mg->features_version, err);
	}
	if (ret == 0)
		ret = frame_save(&f, mg->reg, mg->features_id, err);
	if (ret == 0)
		ret = encodings_save(&enc, mg->reg, mg->features_id, err);
	if (ret == 0)
		ret = features_save_params(mg->cfg, mg->as_of, mg->reg, mg->features_id, err);
	if (ret == 0) {
		metrics = cJSON_PrintUnformatted(m);
		timings = timings_json(now_seconds() - started);
		ret = registry_artefact_finish(mg->reg, mg->features_id, hex, metrics, timings, err);
	}
	if (ret == 0)
		ret = registry_set_current(mg->reg, "features", mg->features_id, err);
	if (ret == 0) {
		mg->feature_rows = f.n_rows;
		snprintf(mg->features_hash, sizeof(mg->features_hash), "%s", hex);
	}
	hasher_release(&content);
	cJSON_Delete(m);
	cJSON_free(metrics);
	cJSON_free(timings);
	encodings_release(&enc);
	frame_release(&f);
	return ret;
}

/* 1 when the main registry already holds this very merge (same shards' content, same config). */
static int already_merged(struct shard_merge *mg)
{
	struct artefact_info cur;
	struct ltv_err ignored;
	cJSON *m, *shards, *o;
	int same = 0;

	if (registry_artefact_current(mg->reg, "features", &cur, &ignored) < 0)
		return 0;
	m = cJSON_Parse(cur.metrics);
	shards = m ? cJSON_GetObjectItemCaseSensitive(m, "shards") : NULL;
	if (strcmp(cur.fingerprint, mg->features_fp) == 0 && cJSON_GetArraySize(shards) == (int)mg->n) {
		same = 1;
		cJSON_ArrayForEach(o, shards) {
			const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "content_hash");
			int found = 0;

			for (size_t i = 0; i < mg->n; i++)
				found |= cJSON_IsString(h) &&
					 strcmp(h->valuestring, mg->sh[i].features.content_hash) == 0;
			same &= found;
		}
	}
	cJSON_Delete(m);
	artefact_info_release(&cur);
	return same;
}

/* Main's user data may be replaced only when a merge wrote it (or there is none). */
static int check_main_data(struct shard_merge *mg, struct ltv_err *err)
{
	char **hashes = NULL, *from = NULL;
	size_t n = 0;
	int ret = registry_ingested_hashes(mg->reg, &hashes, &n, err);

	for (size_t i = 0; i < n; i++)
		free(hashes[i]);
	free(hashes);
	if (ret < 0 || n == 0)
		return ret;
	ret = registry_meta_get(mg->reg, "user_data_from", &from, err);
	if (ret == LTV_ENOTFOUND)
		ret = err_set(err, LTV_EUSAGE, "%s holds data ingested without shards; merge would "
			      "replace it with the shards' users: merge into a new registry path "
			      "(--set registry.path=...), or keep ingesting this one unsharded",
			      mg->cfg->registry.path);
	free(from);
	return ret;
}

/* Test hook, as the runner's: LTVPIPE_FAULT=merge:kill dies before the commit, merge:fail fails. */
static int injected_fault(struct ltv_err *err)
{
	const char *fault = getenv("LTVPIPE_FAULT");

	if (!fault || strncmp(fault, "merge:", 6) != 0)
		return 0;
	if (strcmp(fault + 6, "kill") == 0)
		raise(SIGKILL);
	return err_set(err, LTV_EINTERNAL, "injected fault (LTVPIPE_FAULT=%s)", fault);
}

static int merge_into_main(struct shard_merge *mg, const char *command, double started, FILE *out,
			   struct ltv_err *err)
{
	char *config_text = NULL;
	int ret = registry_open(mg->cfg->registry.path, (int)mg->cfg->registry.busy_timeout_s,
				&mg->reg, err);

	if (ret == 0)
		ret = registry_lock_run(mg->reg, (int)mg->cfg->registry.busy_timeout_s, err);
	if (ret < 0)
		return ret;
	if (already_merged(mg)) {
		fprintf(out, "merge: up to date (these %zu shards are merged already)\n", mg->n);
		return 0;
	}
	ret = check_main_data(mg, err);
	if (ret < 0)
		return ret;
	runner_make_run_id(mg->run_id, sizeof(mg->run_id));
	{
		struct ltv_err log_err;

		if (log_open_run(mg->cfg->run.log_dir, mg->run_id, &log_err) < 0)
			LOG(LOG_WARN, "%s; logging to the console only", log_err.msg);
	}
	config_text = config_dump(mg->cfg);
	ret = registry_run_start(mg->reg, mg->run_id, command, mg->as_of, config_text, err);
	free(config_text);
	if (ret < 0)
		return ret;
	log_set_stage("merge");
	LOG(LOG_INFO, "merging %zu shards into %s", mg->n, mg->cfg->registry.path);
	ret = registry_begin(mg->reg, err);
	if (ret == 0)
		ret = write_ingest(mg, started, err);
	if (ret == 0)
		ret = write_features(mg, started, err);
	if (ret == 0)
		ret = injected_fault(err);
	if (ret == 0)
		ret = registry_commit(mg->reg, err);
	if (ret < 0) {
		registry_rollback(mg->reg);
		if (mg->rejects_path)
			unlink(mg->rejects_path);
		LOG(LOG_ERROR, "%s; the registry keeps its previous versions", err->msg);
	}
	{
		struct ltv_err finish_err;

		registry_run_finish(mg->reg, mg->run_id, ret == 0 ? "ok" : "failed", &finish_err);
	}
	log_set_stage(NULL);
	log_close_run();
	if (ret == 0) {
		fprintf(out, "ingest: merged %zu users and %lld user-days of %zu shards (v%lld)%s%s\n",
			mg->n_users, (long long)mg->n_days, mg->n, (long long)mg->ingest_version,
			mg->rejects_path ? "; rejects in " : "", mg->rejects_path ? mg->rejects_path : "");
		fprintf(out, "features: merged %zu rows (v%lld, content hash %s)\n", mg->feature_rows,
			(long long)mg->features_version, mg->features_hash);
		fprintf(out, "merge %s finished in %.2f s (registry %s); train with 'ltvpipe run'\n",
			mg->run_id, now_seconds() - started, mg->cfg->registry.path);
	}
	return ret;
}

int shard_merge_run(const struct config *cfg, int argc, char **argv, const char *command,
		    FILE *out, struct ltv_err *err)
{
	struct shard_merge mg = { .cfg = cfg, .n = (size_t)argc };
	double started = now_seconds();
	int ret = 0;

	if (argc < 1)
		return err_set(err, LTV_EUSAGE, "give the shard registries, e.g. 'ltvpipe merge "
			       "shards/shard-*-of-4.sqlite'");
	mg.sh = xcalloc(mg.n, sizeof(*mg.sh));
	for (size_t i = 0; i < mg.n && ret == 0; i++) {
		mg.sh[i].path = argv[i];
		if (strcmp(argv[i], cfg->registry.path) == 0)
			ret = err_set(err, LTV_EUSAGE, "%s is the main registry (registry.path), "
				      "not a shard", argv[i]);
		else
			ret = open_shard(&mg.sh[i], err);
	}
	if (ret == 0)
		ret = check_shards(&mg, err);
	if (ret == 0)
		ret = plan_fingerprints(&mg, err);
	if (ret == 0)
		ret = merge_into_main(&mg, command, started, out, err);
	for (size_t i = 0; i < mg.n; i++) {
		struct shard_in *s = &mg.sh[i];

		if (s->have_ingest)
			artefact_info_release(&s->ingest);
		if (s->have_features)
			artefact_info_release(&s->features);
		cJSON_Delete(s->ingest_m);
		cJSON_Delete(s->features_m);
		free(s->pos);
		free(s->global_uid);
		registry_close(s->reg);
	}
	free(mg.sh);
	free(mg.ingest_text);
	free(mg.features_text);
	free(mg.rejects_path);
	input_files_release(&mg.files);
	registry_close(mg.reg);
	return ret;
}

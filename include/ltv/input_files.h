/*
 * The CSV files a run ingests: input.users and input.events are paths or glob
 * patterns ("data/users_*.csv"), matched in sorted order so that dropping next
 * month's file beside last month's adds it. Each file is content-hashed; the
 * runner fingerprints ingest by these hashes and ingest skips any file whose
 * hash it has loaded before.
 */
#ifndef LTV_INPUT_FILES_H
#define LTV_INPUT_FILES_H

#include <stddef.h>

#include "ltv/common.h"
#include "ltv/config.h"
#include "ltv/hash.h"

enum input_kind { INPUT_USERS, INPUT_EVENTS };

#define INPUT_STAMP_LEN 128

struct input_file {
	char *path;
	enum input_kind kind;
	char hash[HASH_HEX_LEN];
	/* input_files_resolve_unhashed: the file's stat before it is read ("" when stat failed) */
	char stamp[INPUT_STAMP_LEN];
	int64_t mtime_sec;
};

struct input_files {
	struct input_file *v; /* users files first, then events files */
	size_t n;
};

/* Expands and hashes; a pattern matching nothing fails with LTV_EIO naming the key. */
int input_files_resolve(const struct config *cfg, struct input_files *out, struct ltv_err *err);
/*
 * The same, reusing a hash recorded in reg (may be NULL) while the file's
 * device, inode, size and mtime are unchanged, and recording new ones.
 */
struct registry;
int input_files_resolve_in(const struct config *cfg, struct registry *reg,
			   struct input_files *out, struct ltv_err *err);
/*
 * The same files, not hashed (hash ""): for reading them once, as `score
 * --users F --events F` does, where no fingerprint needs their content.
 */
int input_files_expand(const struct config *cfg, struct input_files *out, struct ltv_err *err);
/*
 * The same files, hash "" for now: the one who reads them fills in each
 * hash from the bytes it reads (exactly hash_file_hex's), then records it
 * with input_files_record_hash. Their stat is taken here, before the read,
 * so a file changed while it was read is not trusted by its new stat.
 */
int input_files_resolve_unhashed(const struct config *cfg, struct input_files *out,
				 struct ltv_err *err);
/* Records f->hash for f's stat as input_files_resolve_in would have (best effort). */
void input_files_record_hash(struct registry *reg, const struct input_file *f);
/*
 * Whether every file opens and reads, failing as hashing it would (LTV_EIO,
 * "cannot open" or "cannot read"): a check before anything is created that
 * costs a byte a file where the hash read them whole.
 */
int input_files_check_readable(const struct input_files *files, struct ltv_err *err);
void input_files_release(struct input_files *files);

#endif

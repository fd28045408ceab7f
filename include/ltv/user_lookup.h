/*
 * What `score --users F` knows of each row of F when it writes F back with
 * the predictions (cli/score.c write_own_file): the row's user among the
 * scored, or why the row has no prediction. Built from the users the files
 * loaded (the users table), the scored rows of the frame and the rejects
 * file ingest's parser wrote for F.
 */
#ifndef LTV_USER_LOOKUP_H
#define LTV_USER_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/model_data.h"
#include "ltv/registry.h"
#include "ltv/score_internal.h"
#include "ltv/strmap.h"

/* For each user read from --users F (by uid), its index among the scored, or -1 ... */
struct user_lookup {
	const struct user_table *users;
	size_t next;         /* the user the next row most likely is: they load in the file's order */
	int have_ids;
	struct strmap ids;   /* user_id → uid, built when a row is not the next user */
	int32_t *scored;     /* by uid: its index in s, -1 for none (no row in d, or not scored) */
	int64_t *install;    /* by uid, when users' uids are not their index + 1 (else NULL) */
	char *seen;          /* by uid: already written once */
	struct strmap rejected; /* line of the users file → index in reasons */
	char **reasons;
	size_t n_reasons;
};

/*
 * Sets up l for users (borrowed: they outlive l) and the scored rows s of d;
 * user_lookup_release frees what it holds.
 */
void user_lookup_build(struct user_lookup *l, const struct user_table *users,
		       const struct model_data *d, const struct scored *s);

/*
 * Reads the reasons ingest's parser gave for the users file's rejected
 * rows (its rejects file in dir), by line, so the output can say them.
 */
void user_lookup_load_rejects(struct user_lookup *l, const char *dir, const char *users_path);

/*
 * Why the user with this id (on this line of F) was not scored, or NULL
 * when it was (its index in *out_i). older is the reason of a user past the
 * longest horizon. The text is l's or static: it stays until
 * user_lookup_release, and one pointer is always one text.
 */
const char *user_lookup_reason(struct user_lookup *l, const char *id, size_t line, int64_t as_of,
			       const char *older, size_t *out_i);

void user_lookup_release(struct user_lookup *l);

#endif

/*
 * A frame: named columns of doubles with one row per user, the in-memory form
 * of the features artefact and of model inputs. In the registry each column
 * is one blob ("col:<name>", raw little-endian doubles behind a blob.h
 * header), plus an index blob ("frame") listing the columns and the row
 * count, so a reader can load only the columns it needs.
 */
#ifndef LTV_FRAME_H
#define LTV_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"
#include "ltv/hash.h"

struct registry;

struct frame {
	size_t n_rows;
	size_t n_cols;
	char **names;   /* owned */
	double **cols;  /* owned; cols[j][i] is row i of column j */
};

void frame_init(struct frame *f, size_t n_rows);
void frame_release(struct frame *f);
/* Adds a zero-filled column and returns it (owned by the frame). */
double *frame_add_column(struct frame *f, const char *name);
/* The named column, or NULL. */
double *frame_column(const struct frame *f, const char *name);
/* Adds every column's name and bytes to h (the artefact's content hash). */
void frame_hash(const struct frame *f, struct hasher *h);

/* Stores every column under artefact_id (inside the stage's transaction). */
int frame_save(const struct frame *f, struct registry *reg, int64_t artefact_id,
	       struct ltv_err *err);
/*
 * Loads the named columns (NULL-terminated list; NULL loads all) of an
 * artefact's frame into out (caller releases). LTV_ENOTFOUND names a missing column.
 */
int frame_load(struct registry *reg, int64_t artefact_id, const char *const *names,
	       struct frame *out, struct ltv_err *err);

/* String dictionaries (app and campaign names) stored beside a frame as "dict:<name>". */
int frame_save_dict(struct registry *reg, int64_t artefact_id, const char *name,
		    char *const *values, size_t n, struct ltv_err *err);
int frame_load_dict(struct registry *reg, int64_t artefact_id, const char *name,
		    char ***out_values, size_t *out_n, struct ltv_err *err);
void frame_free_dict(char **values, size_t n);

#endif

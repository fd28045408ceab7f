/*
 * Users described by their features rather than read from data — one from
 * `ltvpipe predict`'s command line, one or many from `ltvpipe serve`'s
 * request bodies — made into a frame a loaded model version serves
 * (serving_predict), and the JSON object that answers for one of them. The
 * CLI and the server both go through here, so the same user gets the same
 * object from both (the server's carries the same model_version field).
 */
#ifndef LTV_PREDICT_USER_H
#define LTV_PREDICT_USER_H

#include <stddef.h>

#include "ltv/jbuf.h"
#include "ltv/model_loader.h"
#include "ltv/serving.h"

/* Longest app or campaign name accepted, in bytes. */
#define PREDICT_NAME_MAX 256

/* The feature names a user may be given, NULL-terminated (for messages and the page). */
extern const char *const predict_input_names[];
/* The names as one comma-separated line, for error messages. */
extern const char predict_input_list[];
/* The index of name in predict_input_names, or -1 when it is not one. */
int predict_input_index(const char *name);

struct user_batch {
	struct model_data d;       /* the frame served; tiers filled by user_batch_finish */
	size_t n;
	/* while filling: each row's app and campaign (owned copies) */
	char **app, **campaign;
	/* the model's attributes (columns.attributes) and each row's value: attr[k][row], NULL = not given */
	const struct attr_encoding *attr_defs;
	size_t n_attrs;
	char ***attr;
};

/*
 * n users of a model version, each aged the first snapshot age with nothing
 * seen until its features are set. Caller releases with user_batch_release.
 */
void user_batch_init(struct user_batch *b, const struct loaded_model *m, size_t n);
void user_batch_release(struct user_batch *b);
/*
 * Sets row's app (required, non-empty) and campaign (NULL: ""). LTV_EINVAL
 * when a name is empty (app) or longer than PREDICT_NAME_MAX, naming which.
 */
int user_batch_set_names(struct user_batch *b, size_t row, const char *app, const char *campaign,
			 struct ltv_err *err);
/*
 * Sets one feature of row. LTV_EINVAL when name is not one of
 * predict_input_names or value is not a finite number >= 0 (a whole number
 * for counts of purchases, events and days); the message
 * starts with the name, says what is wrong and what would do.
 */
int user_batch_set(struct user_batch *b, size_t row, const char *name, double value,
		   struct ltv_err *err);
/* The same for input predict_input_names[input] (a request's fields, looked up once). */
int user_batch_set_input(struct user_batch *b, size_t row, int input, double value,
			 struct ltv_err *err);
/*
 * The index of attribute `name` among the model's attributes (columns.attributes
 * when it was trained), or -1.
 */
int user_batch_attr_index(const struct user_batch *b, const char *name);
/*
 * Sets row's value of an attribute (country, platform, ...). LTV_EINVAL when
 * name is not one of the model's attributes (the message lists them) or the
 * value is longer than PREDICT_NAME_MAX. An attribute not given, or a value
 * no training user had, is served its app's encoding.
 */
int user_batch_set_attr(struct user_batch *b, size_t row, const char *name, const char *value,
			struct ltv_err *err);
/*
 * Copies row src_row of src (names and every feature, set or not) into
 * dst_row of dst, both made for the same model version and not finished.
 */
void user_batch_copy_row(struct user_batch *dst, size_t dst_row, const struct user_batch *src,
			 size_t src_row);
/*
 * Fills what was not given from what was (rev_to_date from rev_window,
 * window_days from age_days, days_since_active from window_days), encodes
 * apps, campaigns and attributes as the model does and gives each row its tier.
 * Every row's app must have been set.
 */
int user_batch_finish(struct user_batch *b, const struct loaded_model *m, struct ltv_err *err);

/*
 * Appends row i's answer as one JSON object: segment, model_version, app,
 * campaign, tier, method, fallback, p_payer, target_horizon_days, ltv,
 * ltv_raw, ltv_lo and ltv_hi (per horizon: the 80% interval), p_alive,
 * p_purchase_30d and risk_segment. s must come from serving_predict over
 * rows 0..n of b.
 */
void predict_user_json(struct jbuf *out, const struct loaded_model *m, const struct user_batch *b,
		       const struct served *s, size_t i);
/*
 * Adds "warnings": [text] to the object predict_user_json has just appended
 * to out for row i when the row's app is not one the model version was
 * trained on (it is then served by the pooled models of all apps), and
 * returns 1 with the text in buf (size 1024 holds it with a few apps);
 * returns 0 and adds nothing otherwise. `ltvpipe predict` and the server's
 * JSON answers say the same.
 */
int predict_user_warnings(struct jbuf *out, const struct loaded_model *m, const struct user_batch *b,
			  size_t i, char *buf, size_t size);
/*
 * Adds "explain" (include/ltv/explain.h) to the object predict_user_json has
 * just appended to out for row i: the same user, explained. Slow (one
 * DMatrix per tree model): never in the serving fast path.
 */
int predict_user_explain(struct jbuf *out, const struct loaded_model *m, const struct user_batch *b,
			 const struct served *s, size_t i, struct ltv_err *err);
/*
 * The CSV header matching predict_user_csv: app,campaign,model_version,tier,
 * method,fallback,p_payer,segment, ltv_H..., ltv_raw_H..., p_alive,
 * p_purchase_30d, risk_segment, ltv_lo_H..., ltv_hi_H...
 */
void predict_user_csv_header(struct jbuf *out, const struct loaded_model *m);
void predict_user_csv(struct jbuf *out, const struct loaded_model *m, const struct user_batch *b,
		      const struct served *s, size_t i);

#endif

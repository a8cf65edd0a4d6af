/*
 * json.h - strict JSON reading on jsmn and a JSON writer.
 *
 * Reading: rw_json_parse() first validates the whole text against the JSON
 * grammar (RFC 8259: one value, commas, string escapes, no control characters,
 * number syntax, literals, nesting depth at most RW_JSON_MAX_DEPTH), then
 * tokenises it with jsmn into a token array that grows up to max_tokens.
 * Tokens are addressed by index; functions taking a token index accept -1
 * (meaning "absent") and fail gracefully.
 *
 * Writing: struct rw_jw appends to a bounded struct rw_buf, inserts commas
 * and escapes strings; the first error sticks and is returned by
 * rw_jw_finish().
 */
#ifndef RW_JSON_H
#define RW_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jsmn.h>

#include "rw/buf.h"

#define RW_JSON_MAX_DEPTH 64

enum rw_json_type {
	RW_JSON_NONE = 0,
	RW_JSON_OBJECT,
	RW_JSON_ARRAY,
	RW_JSON_STRING,
	RW_JSON_NUMBER,
	RW_JSON_TRUE,
	RW_JSON_FALSE,
	RW_JSON_NULL
};

struct rw_json {
	const char *js; /* the text (not owned; must outlive the parse) */
	size_t len;
	jsmntok_t *tok; /* owned */
	int ntok;	/* tokens in use; token 0 is the root */
	int cap;
	int max_tokens;
};

/*
 * Parse `len` bytes of `js`. Returns 0; -EINVAL for malformed input (with a
 * description and byte offset written to err when err is not NULL);
 * -EMSGSIZE when more than max_tokens tokens would be needed or len exceeds
 * INT_MAX; -ENOMEM. On failure the struct holds no allocation.
 */
int rw_json_parse(struct rw_json *j, const char *js, size_t len, int max_tokens, char *err,
		  size_t errlen);

/* Free the token array. Safe on a zeroed or failed struct. */
void rw_json_fini(struct rw_json *j);

/* The type of token t (RW_JSON_NONE when t is out of range). */
enum rw_json_type rw_json_type(const struct rw_json *j, int t);

/* Index of the first token after the subtree rooted at t. */
int rw_json_skip(const struct rw_json *j, int t);

/* Value token of `key` in object t, or -1 (also when t is not an object). */
int rw_json_get(const struct rw_json *j, int t, const char *key);

/* Follow a dotted path of object keys ("metadata.name"), or -1. */
int rw_json_path(const struct rw_json *j, int t, const char *path);

/* Number of elements (array) or keys (object), 0 otherwise. */
int rw_json_size(const struct rw_json *j, int t);

/* Element i of array t, or -1. */
int rw_json_at(const struct rw_json *j, int t, int i);

/*
 * Unescape string token t into out (always NUL-terminated when outlen > 0).
 * \uXXXX escapes and surrogate pairs become UTF-8; an escaped NUL (\u0000)
 * is refused. Returns the unescaped length, -EINVAL if t is not a string or
 * holds a bad escape, -EMSGSIZE if it does not fit.
 */
int rw_json_str(const struct rw_json *j, int t, char *out, size_t outlen);

/*
 * As rw_json_str, but a string that does not fit is cut at a UTF-8 boundary instead of refused
 * (free text: a message, a reason). Returns the length copied, -EINVAL as rw_json_str, or
 * -ENOMEM.
 */
int rw_json_str_cut(const struct rw_json *j, int t, char *out, size_t outlen);

/* Unescaped copy of string token t (malloc'd), or NULL. */
char *rw_json_strdup(const struct rw_json *j, int t);

/* Does string token t, unescaped, equal s? */
bool rw_json_streq(const struct rw_json *j, int t, const char *s);

/* Strict numbers: the whole token must convert, integers must fit. -EINVAL / -ERANGE. */
int rw_json_int(const struct rw_json *j, int t, int64_t *out);
int rw_json_double(const struct rw_json *j, int t, double *out);
int rw_json_bool(const struct rw_json *j, int t, bool *out);

/* Raw text of token t (strings without their quotes). */
const char *rw_json_raw(const struct rw_json *j, int t, size_t *len);

/* Raw text of the value at t including quotes for strings (for re-embedding). */
const char *rw_json_raw_value(const struct rw_json *j, int t, size_t *len);

/* Iterate array elements / object members. `c` is the element (value) token. */
#define RW_JSON_ARR_FOREACH(j, arr, i, c)                                                          \
	for ((i) = 0, (c) = (arr) + 1; (arr) >= 0 && (i) < rw_json_size((j), (arr));               \
	     (i)++, (c) = rw_json_skip((j), (c)))
#define RW_JSON_OBJ_FOREACH(j, obj, i, k, v)                                                       \
	for ((i) = 0, (k) = (obj) + 1, (v) = (k) + 1;                                              \
	     (obj) >= 0 && rw_json_type((j), (obj)) == RW_JSON_OBJECT &&                           \
	     (i) < rw_json_size((j), (obj));                                                       \
	     (i)++, (k) = rw_json_skip((j), (v)), (v) = (k) + 1)

/* ---- writer ---- */

struct rw_jw {
	struct rw_buf *b;
	int depth;
	int err;
	unsigned char first[RW_JSON_MAX_DEPTH + 1]; /* 1 until the first item at a depth */
	unsigned char after_key;
};

void rw_jw_init(struct rw_jw *w, struct rw_buf *b);
void rw_jw_obj_begin(struct rw_jw *w);
void rw_jw_obj_end(struct rw_jw *w);
void rw_jw_arr_begin(struct rw_jw *w);
void rw_jw_arr_end(struct rw_jw *w);
void rw_jw_key(struct rw_jw *w, const char *k);
void rw_jw_keyn(struct rw_jw *w, const char *k, size_t n); /* binary-safe key */
void rw_jw_str(struct rw_jw *w, const char *s);		   /* NULL writes null */
void rw_jw_strn(struct rw_jw *w, const char *s, size_t n); /* escapes, binary-safe */
void rw_jw_int(struct rw_jw *w, int64_t v);
void rw_jw_uint(struct rw_jw *w, uint64_t v);
void rw_jw_double(struct rw_jw *w, double v); /* non-finite -> null */
void rw_jw_bool(struct rw_jw *w, bool v);
void rw_jw_null(struct rw_jw *w);
/* Insert already-valid JSON text as one value. */
void rw_jw_raw(struct rw_jw *w, const char *json, size_t n);
/* Convenience: key + value. */
void rw_jw_kstr(struct rw_jw *w, const char *k, const char *v);
void rw_jw_kint(struct rw_jw *w, const char *k, int64_t v);
void rw_jw_kbool(struct rw_jw *w, const char *k, bool v);
/* 0, or the first error (-EMSGSIZE, -ENOMEM, -EINVAL for unbalanced nesting). */
int rw_jw_finish(struct rw_jw *w);

/* Append s to b as a quoted, escaped JSON string. */
int rw_json_quote(struct rw_buf *b, const char *s, size_t n);

#endif

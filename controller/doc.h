/*
 * doc.h - a small mutable JSON tree (a document) for the builders of every kind.
 *
 * The builders start from the user's pod template (arbitrary JSON they must
 * carry through unchanged) and add, replace and remove members, so they need a
 * tree they can edit rather than rw_json's read-only token array. Objects keep
 * their members in insertion order (duplicate keys collapse to the last one,
 * as Go's encoding/json does when decoding); numbers keep their source text.
 *
 * Failure model: constructors return NULL on allocation failure and every
 * function accepts NULL inputs, so builders can chain calls and check a
 * context's sticky error once (see struct b in build_internal.h).
 */
#ifndef RW_DOC_H
#define RW_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rw/buf.h"
#include "rw/json.h"

enum rw_doc_type { RW_DOC_NULL = 0, RW_DOC_BOOL, RW_DOC_NUM, RW_DOC_STR, RW_DOC_ARR, RW_DOC_OBJ };

struct rw_doc_node {
	enum rw_doc_type type;
	bool b;
	char *s;   /* string value (RW_DOC_STR) or number text (RW_DOC_NUM) */
	char *key; /* member name while inside an object, else NULL */
	struct rw_doc_node **kids;
	int n, cap;
};

/* Limits that keep any input bounded. */
#define RW_DOC_MAX_KIDS (1 << 20)
#define RW_DOC_MAX_TOKENS (1 << 20)
#define RW_DOC_MAX_OUT (32u << 20)

/* Constructors. NULL on allocation failure. */
struct rw_doc_node *rw_doc_new(enum rw_doc_type type);
struct rw_doc_node *rw_doc_new_str(const char *s);
struct rw_doc_node *rw_doc_new_int(int64_t v);
struct rw_doc_node *rw_doc_new_bool(bool v);

/* Free a node and its subtree (NULL-safe). */
void rw_doc_free(struct rw_doc_node *n);

/* Deep copy (NULL on failure or NULL input). The copy has no key. */
struct rw_doc_node *rw_doc_clone(const struct rw_doc_node *n);

/*
 * Build a tree from token t of a parsed document. Returns NULL on allocation
 * failure or a bad string escape.
 */
struct rw_doc_node *rw_doc_from_json(const struct rw_json *j, int t);

/* Parse text into a tree. Returns 0, -EINVAL (message in err), -EMSGSIZE, -ENOMEM. */
int rw_doc_parse(const char *text, size_t len, struct rw_doc_node **out, char *err, size_t errlen);

/*
 * The parts of a Kubernetes object every reconciler reads. The strings point
 * into root and are never NULL (name/uid "" and namespace "default" when
 * absent); labels, annotations and status are objects or NULL; spec is an
 * object, created empty when absent.
 */
struct rw_doc_object {
	struct rw_doc_node *root;
	const char *name, *ns, *uid;
	int64_t generation;
	struct rw_doc_node *labels, *annotations;
	struct rw_doc_node *spec;
	struct rw_doc_node *status;
};

/*
 * Parse a custom resource of the given kind (used in the error text): any
 * JSON object is accepted, missing fields read as absent. 0 (the caller owns
 * o->root), -EINVAL for non-JSON or a non-object, -ENOMEM, -EMSGSIZE.
 */
int rw_doc_object_parse(const char *json, size_t len, const char *kind, struct rw_doc_object *o,
			char *err, size_t errlen);

/*
 * rw_doc_object_parse into a new zeroed allocation of size bytes whose first
 * member is a struct rw_doc_object (a kind's parsed object), stored in *out
 * (NULL on failure). Free the tree with rw_doc_free(obj.root), then free().
 */
int rw_doc_object_alloc(const char *json, size_t len, const char *kind, size_t size, void **out,
			char *err, size_t errlen);

/* The index of finalizer in root's metadata.finalizers, or -1. */
int rw_doc_finalizer_index(const struct rw_doc_node *root, const char *finalizer);

/* Write the tree with w / append its text to b. Return 0 or a negative errno. */
void rw_doc_write(const struct rw_doc_node *n, struct rw_jw *w);
int rw_doc_dump(const struct rw_doc_node *n, struct rw_buf *b);

/* Append an indented rendering (2 spaces, one member per line) for golden files. */
int rw_doc_dump_pretty(const struct rw_doc_node *n, struct rw_buf *b);

/* Write with object members sorted by key at every level (canonical form). */
void rw_doc_write_sorted(const struct rw_doc_node *n, struct rw_jw *w);

/* Member `key` of object o (the last one if repeated), or NULL. */
struct rw_doc_node *rw_doc_get(const struct rw_doc_node *o, const char *key);

/* Follow dotted object keys ("spec.template.spec"), or NULL. */
struct rw_doc_node *rw_doc_path(const struct rw_doc_node *o, const char *path);

/* Element i of array a, or NULL. */
struct rw_doc_node *rw_doc_at(const struct rw_doc_node *a, int i);

/* String value when n is a string, else NULL. */
const char *rw_doc_str(const struct rw_doc_node *n);

/* The string member `key` of o, or NULL. */
const char *rw_doc_gets(const struct rw_doc_node *o, const char *key);

/* Is n a JSON true? */
bool rw_doc_true(const struct rw_doc_node *n);

/* The element of a metav1.Condition list with this type, or NULL. */
struct rw_doc_node *rw_doc_cond(const struct rw_doc_node *conds, const char *type);

/* meta.IsStatusConditionTrue: the condition of this type has status "True". */
bool rw_doc_cond_true(const struct rw_doc_node *conds, const char *type);

/* Strict integer value of a number node: 0, -EINVAL, -ERANGE. */
int rw_doc_int(const struct rw_doc_node *n, int64_t *out);

/* The integer member `key` of o, or def when it is absent, null or not an integer. */
int64_t rw_doc_int_or(const struct rw_doc_node *o, const char *key, int64_t def);

/*
 * Set member key of object o to v (taking ownership of v), replacing an
 * existing member in place. Returns 0, -EINVAL (o not an object or v NULL),
 * -ENOMEM. On failure v is freed.
 */
int rw_doc_set(struct rw_doc_node *o, const char *key, struct rw_doc_node *v);
int rw_doc_set_str(struct rw_doc_node *o, const char *key, const char *v);
int rw_doc_set_int(struct rw_doc_node *o, const char *key, int64_t v);
int rw_doc_set_bool(struct rw_doc_node *o, const char *key, bool v);

/* Remove member key of o (all occurrences). */
void rw_doc_del(struct rw_doc_node *o, const char *key);

/* Append v to array a (ownership taken; freed on failure). */
int rw_doc_push(struct rw_doc_node *a, struct rw_doc_node *v);

/* Insert v at index i of array a (0 <= i <= n). */
int rw_doc_insert(struct rw_doc_node *a, int i, struct rw_doc_node *v);

/*
 * Member key of o as an object/array, created (or replacing a member of
 * another type, e.g. null) when needed. NULL on failure.
 */
struct rw_doc_node *rw_doc_obj(struct rw_doc_node *o, const char *key);
struct rw_doc_node *rw_doc_arr(struct rw_doc_node *o, const char *key);

/* Deep equality; object member order does not matter. */
bool rw_doc_equal(const struct rw_doc_node *a, const struct rw_doc_node *b);

#endif

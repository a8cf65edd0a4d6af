/*
 * doc_builder.h - building a document (doc.h) with a sticky error: once a
 * call fails (out of memory, a missing parent) every later call is a no-op,
 * so a builder chains its calls and checks once, in finish(). The RayCluster
 * and RayService builders and status writers share it. Everything is static
 * inline so the short names (set, obj, push...) stay private to each file.
 */
#ifndef RW_DOC_BUILDER_H
#define RW_DOC_BUILDER_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "doc.h"
#include "rw/buf.h"

/* ---- the context: the first error sticks ---- */

struct b {
	int err;
};

typedef struct rw_doc_node node;

static inline void
fail(struct b *b, int err)
{
	if (!b->err)
		b->err = err;
}

/*
 * What a constructor returned: NULL (out of memory) makes the error sticky.
 * Callers skip the constructor once b has an error, so every later step
 * sees NULL and does nothing.
 */
static inline node *
made(struct b *b, node *n)
{
	if (!n)
		fail(b, -ENOMEM);
	return n;
}

/* Whether v may join parent; if not, v is freed, and a missing parent is an error. */
static inline bool
can_attach(struct b *b, node *parent, node *v)
{
	if (b->err || !parent) {
		rw_doc_free(v);
		if (!parent)
			fail(b, -ENOMEM);
		return false;
	}
	return true;
}

static inline node *
nnew(struct b *b, enum rw_doc_type t)
{
	return made(b, b->err ? NULL : rw_doc_new(t));
}

static inline node *
nstr(struct b *b, const char *s)
{
	return made(b, b->err ? NULL : rw_doc_new_str(s));
}

static inline node *
nclone(struct b *b, const node *src)
{
	node *n = b->err ? NULL : rw_doc_clone(src);
	if (!n && src)
		fail(b, -ENOMEM);
	return n;
}

static inline void
set(struct b *b, node *o, const char *key, node *v)
{
	int rv;
	if (!can_attach(b, o, v))
		return;
	rv = rw_doc_set(o, key, v);
	if (rv)
		fail(b, rv);
}

static inline void
sets(struct b *b, node *o, const char *key, const char *v)
{
	set(b, o, key, nstr(b, v));
}

static inline void
seti(struct b *b, node *o, const char *key, int64_t v)
{
	set(b, o, key, made(b, b->err ? NULL : rw_doc_new_int(v)));
}

static inline void
setb(struct b *b, node *o, const char *key, bool v)
{
	set(b, o, key, made(b, b->err ? NULL : rw_doc_new_bool(v)));
}

static inline void
push(struct b *b, node *a, node *v)
{
	int rv;
	if (!can_attach(b, a, v))
		return;
	rv = rw_doc_push(a, v);
	if (rv)
		fail(b, rv);
}

static inline node *
obj(struct b *b, node *o, const char *key)
{
	return made(b, b->err ? NULL : rw_doc_obj(o, key));
}

static inline node *
arr(struct b *b, node *o, const char *key)
{
	return made(b, b->err ? NULL : rw_doc_arr(o, key));
}

static inline bool
streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static inline int
finish(struct b *b, node *n, struct rw_buf *out)
{
	int rv = b->err;
	if (!rv)
		rv = rw_doc_dump(n, out);
	rw_doc_free(n);
	return rv;
}

/* metadata.ownerReferences naming the controlling owner (KubeRay sets both flags). */
static inline void
set_owner(struct b *b, node *meta, const char *api_version, const char *kind, const char *name,
	  const char *uid)
{
	node *refs = nnew(b, RW_DOC_ARR);
	node *r = nnew(b, RW_DOC_OBJ);
	sets(b, r, "apiVersion", api_version);
	sets(b, r, "kind", kind);
	sets(b, r, "name", name);
	sets(b, r, "uid", uid);
	setb(b, r, "controller", true);
	setb(b, r, "blockOwnerDeletion", true);
	push(b, refs, r);
	set(b, meta, "ownerReferences", refs);
}

/* ---- status conditions (metav1.Condition lists) ---- */

/*
 * meta.SetStatusCondition: lastTransitionTime moves only when the status
 * does; observedGeneration is gen, or absent when gen <= 0 (KubeRay's
 * RayCluster conditions carry none, its RayService conditions do).
 */
static inline void
set_condition(struct b *b, node *conds, const char *type, const char *status, const char *reason,
	      const char *message, int64_t gen, const char *now)
{
	node *c = rw_doc_cond(conds, type);
	if (!c) {
		c = nnew(b, RW_DOC_OBJ);
		push(b, conds, c);
		sets(b, c, "type", type);
		sets(b, c, "status", status);
		sets(b, c, "lastTransitionTime", now);
	} else if (!streq(rw_doc_gets(c, "status"), status)) {
		sets(b, c, "status", status);
		sets(b, c, "lastTransitionTime", now);
	} else if (!rw_doc_gets(c, "lastTransitionTime")) {
		sets(b, c, "lastTransitionTime", now);
	}
	sets(b, c, "reason", reason);
	sets(b, c, "message", message ? message : "");
	if (gen > 0)
		seti(b, c, "observedGeneration", gen);
	else if (!b->err)
		rw_doc_del(c, "observedGeneration");
}

#endif

/*
 * kmap.h - a string-keyed hash map for the controller's tables (work queue
 * items, informer stores, expectations, event aggregation, metric series).
 *
 * Keys are copied; values are opaque pointers owned by the caller. Deleting
 * the current entry while iterating with rw_kmap_next() is allowed.
 */
#ifndef RW_KMAP_H
#define RW_KMAP_H

#include <stddef.h>
#include <stdint.h>

struct rw_kmap_ent {
	struct rw_kmap_ent *next;
	uint32_t hash;
	void *val;
	char key[]; /* NUL-terminated copy */
};

struct rw_kmap {
	struct rw_kmap_ent **b;
	size_t nb; /* buckets, a power of two (0 before the first put) */
	size_t n;  /* entries */
};

struct rw_kmap_iter {
	size_t bucket;
	struct rw_kmap_ent *next;
};

/* FNV-1a of a NUL-terminated string. */
uint32_t rw_kmap_hash(const char *s);

/* Initialise an empty map (no allocation). */
void rw_kmap_init(struct rw_kmap *m);

/* Free every entry; free_val (may be NULL) is called on each value. */
void rw_kmap_fini(struct rw_kmap *m, void (*free_val)(void *));

/* The value stored under key, or NULL. */
void *rw_kmap_get(const struct rw_kmap *m, const char *key);

/* The entry of key, or NULL. */
struct rw_kmap_ent *rw_kmap_find(const struct rw_kmap *m, const char *key);

/*
 * Store val under key. Returns 0 (the previous value, if any, is written to
 * *old when old is not NULL, else it is simply replaced) or -ENOMEM.
 */
int rw_kmap_put(struct rw_kmap *m, const char *key, void *val, void **old);

/* Remove key; returns its value, or NULL when absent. */
void *rw_kmap_del(struct rw_kmap *m, const char *key);

/* Start an iteration; rw_kmap_next() returns entries until NULL. */
void rw_kmap_iter_init(const struct rw_kmap *m, struct rw_kmap_iter *it);
struct rw_kmap_ent *rw_kmap_next(const struct rw_kmap *m, struct rw_kmap_iter *it);

#endif

/*
 * kmap.h - the controller's hash map, in two layers:
 *
 * - rw_htab: an intrusive chained table. The caller embeds a struct rw_hlink
 *   in its object, computes the hash and compares keys itself while walking
 *   a chain; the table owns only its bucket array. No allocation per entry
 *   and no key copy: the hub's tables (10,000 pods, looked up per report,
 *   keyed by strings, u32 key ids or u64 sessions) use it directly.
 * - rw_kmap: a string-keyed map on top of it for everything else (work queue
 *   items, informer stores, expectations, event aggregation, metric series).
 *   Keys are copied; values are opaque pointers owned by the caller.
 *   Deleting the current entry while iterating with rw_kmap_next() is
 *   allowed.
 *
 * Buckets are a power of two and double when the table holds as many entries
 * as buckets (load factor <= 1), so a chain is short on average.
 */
#ifndef RW_KMAP_H
#define RW_KMAP_H

#include <stddef.h>
#include <stdint.h>

/* ---- intrusive layer ---- */

struct rw_hlink {
	struct rw_hlink *next; /* in the bucket's chain */
	uint64_t hash;	       /* set by rw_htab_insert */
};

struct rw_htab {
	struct rw_hlink **b;
	size_t nb; /* buckets, a power of two (0 before the first insert) */
	size_t n;  /* entries */
};

/* FNV-1a (64-bit) of a NUL-terminated string. */
uint64_t rw_hash_str(const char *s);

/* A 64-bit mix of an integer key (Fibonacci hashing). */
static inline uint64_t
rw_hash_u64(uint64_t v)
{
	uint64_t h = v * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

/* An empty table (no allocation). */
void rw_htab_init(struct rw_htab *t);

/*
 * Link l (not in any table) under hash. Returns 0, or -ENOMEM when the table
 * had to grow and could not (l is then not linked). Duplicates are the
 * caller's business: look the key up first.
 */
int rw_htab_insert(struct rw_htab *t, struct rw_hlink *l, uint64_t hash);

/* Unlink l; a link not in t is ignored. O(chain). */
void rw_htab_remove(struct rw_htab *t, struct rw_hlink *l);

/*
 * The chain that may hold hash: walk it with ->next, skip links whose ->hash
 * differs, compare the key in the containing object. NULL when empty.
 */
static inline struct rw_hlink *
rw_htab_chain(const struct rw_htab *t, uint64_t hash)
{
	return t->nb ? t->b[hash & (t->nb - 1)] : NULL;
}

/*
 * Every link of t. The body may remove (and free) the current link l: the
 * next one is read first. rw_htab_insert in the body may grow the table and
 * so is not allowed.
 */
#define RW_HTAB_FOREACH_SAFE(l, tmp, i, t)                                                         \
	for ((i) = 0; (i) < (t)->nb; (i)++)                                                        \
		for ((l) = (t)->b[i]; (l) && ((tmp) = (l)->next, 1); (l) = (tmp))

/* Free the bucket array (not the objects: free them first with the loop above). */
void rw_htab_fini(struct rw_htab *t);

/* ---- string-keyed map ---- */

struct rw_kmap_ent {
	struct rw_hlink link;
	void *val;
	char key[]; /* NUL-terminated copy */
};

struct rw_kmap {
	/* The table; callers read the entry count as .n (kept from when the map
	 * had its own buckets: informer and evcorr do). */
	union {
		struct rw_htab t;
		struct {
			struct rw_hlink **b_;
			size_t nb_;
			size_t n; /* entries (read-only) */
		};
	};
};

struct rw_kmap_iter {
	size_t bucket;
	struct rw_hlink *next;
};

/* The hash of a key: 32-bit FNV-1a. */
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

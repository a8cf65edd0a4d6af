/*
 * kmap.c - the intrusive chained table and the string-keyed map on it (see
 * kmap.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kmap.h"

_Static_assert(offsetof(struct rw_kmap, n) == offsetof(struct rw_htab, n),
	       "rw_kmap.n must alias rw_htab.n");

/* ---- intrusive layer ---- */

uint64_t
rw_hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

void
rw_htab_init(struct rw_htab *t)
{
	memset(t, 0, sizeof(*t));
}

/* Double the buckets (16 at first), relinking every entry. */
static int
grow(struct rw_htab *t)
{
	size_t nb = t->nb ? t->nb * 2 : 16;
	struct rw_hlink **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->nb; i++) {
		struct rw_hlink *l = t->b[i], *next;
		for (; l; l = next) {
			next = l->next;
			l->next = b[l->hash & (nb - 1)];
			b[l->hash & (nb - 1)] = l;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
	return 0;
}

int
rw_htab_insert(struct rw_htab *t, struct rw_hlink *l, uint64_t hash)
{
	if (t->n >= t->nb && grow(t) != 0)
		return -ENOMEM;
	l->hash = hash;
	l->next = t->b[hash & (t->nb - 1)];
	t->b[hash & (t->nb - 1)] = l;
	t->n++;
	return 0;
}

void
rw_htab_remove(struct rw_htab *t, struct rw_hlink *l)
{
	if (!t->nb)
		return;
	for (struct rw_hlink **pp = &t->b[l->hash & (t->nb - 1)]; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			t->n--;
			return;
		}
	}
}

void
rw_htab_fini(struct rw_htab *t)
{
	free(t->b);
	memset(t, 0, sizeof(*t));
}

/* ---- string-keyed map ---- */

/*
 * 32-bit FNV-1a, as before the map sat on rw_htab: the buckets, and so the
 * iteration order of every store, stay what they were.
 */
uint32_t
rw_kmap_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

void
rw_kmap_init(struct rw_kmap *m)
{
	rw_htab_init(&m->t);
}

void
rw_kmap_fini(struct rw_kmap *m, void (*free_val)(void *))
{
	struct rw_hlink *l, *tmp;
	size_t i;
	RW_HTAB_FOREACH_SAFE (l, tmp, i, &m->t) {
		struct rw_kmap_ent *e = (struct rw_kmap_ent *)(void *)l;
		if (free_val)
			free_val(e->val);
		free(e);
	}
	rw_htab_fini(&m->t);
}

struct rw_kmap_ent *
rw_kmap_find(const struct rw_kmap *m, const char *key)
{
	if (!m->t.nb)
		return NULL;
	uint64_t h = rw_kmap_hash(key);
	for (struct rw_hlink *l = rw_htab_chain(&m->t, h); l; l = l->next) {
		struct rw_kmap_ent *e = (struct rw_kmap_ent *)(void *)l; /* link is first */
		if (l->hash == h && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

void *
rw_kmap_get(const struct rw_kmap *m, const char *key)
{
	struct rw_kmap_ent *e = rw_kmap_find(m, key);
	return e ? e->val : NULL;
}

int
rw_kmap_put(struct rw_kmap *m, const char *key, void *val, void **old)
{
	struct rw_kmap_ent *e = rw_kmap_find(m, key);
	if (old)
		*old = e ? e->val : NULL;
	if (e) {
		e->val = val;
		return 0;
	}
	size_t kl = strlen(key);
	e = malloc(sizeof(*e) + kl + 1);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, kl + 1);
	e->val = val;
	if (rw_htab_insert(&m->t, &e->link, rw_kmap_hash(key)) != 0) {
		free(e);
		return -ENOMEM;
	}
	return 0;
}

void *
rw_kmap_del(struct rw_kmap *m, const char *key)
{
	struct rw_kmap_ent *e = rw_kmap_find(m, key);
	if (!e)
		return NULL;
	void *v = e->val;
	rw_htab_remove(&m->t, &e->link);
	free(e);
	return v;
}

void
rw_kmap_iter_init(const struct rw_kmap *m, struct rw_kmap_iter *it)
{
	it->bucket = 0;
	it->next = m->t.nb ? m->t.b[0] : NULL;
}

struct rw_kmap_ent *
rw_kmap_next(const struct rw_kmap *m, struct rw_kmap_iter *it)
{
	while (!it->next) {
		if (++it->bucket >= m->t.nb)
			return NULL;
		it->next = m->t.b[it->bucket];
	}
	struct rw_hlink *l = it->next;
	it->next = l->next;
	return (struct rw_kmap_ent *)(void *)l;
}

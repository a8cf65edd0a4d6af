/*
 * kmap.c - chained hash map with power-of-two buckets (see kmap.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kmap.h"

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
	memset(m, 0, sizeof(*m));
}

void
rw_kmap_fini(struct rw_kmap *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < m->nb; i++) {
		struct rw_kmap_ent *e = m->b[i];
		while (e) {
			struct rw_kmap_ent *n = e->next;
			if (free_val)
				free_val(e->val);
			free(e);
			e = n;
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

struct rw_kmap_ent *
rw_kmap_find(const struct rw_kmap *m, const char *key)
{
	if (!m->nb)
		return NULL;
	uint32_t h = rw_kmap_hash(key);
	for (struct rw_kmap_ent *e = m->b[h & (m->nb - 1)]; e; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

void *
rw_kmap_get(const struct rw_kmap *m, const char *key)
{
	struct rw_kmap_ent *e = rw_kmap_find(m, key);
	return e ? e->val : NULL;
}

static int
grow(struct rw_kmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 16;
	struct rw_kmap_ent **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		struct rw_kmap_ent *e = m->b[i];
		while (e) {
			struct rw_kmap_ent *n = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
			e = n;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
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
	if (m->n >= m->nb && grow(m) != 0)
		return -ENOMEM;
	size_t kl = strlen(key);
	e = malloc(sizeof(*e) + kl + 1);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, kl + 1);
	e->hash = rw_kmap_hash(key);
	e->val = val;
	e->next = m->b[e->hash & (m->nb - 1)];
	m->b[e->hash & (m->nb - 1)] = e;
	m->n++;
	return 0;
}

void *
rw_kmap_del(struct rw_kmap *m, const char *key)
{
	if (!m->nb)
		return NULL;
	uint32_t h = rw_kmap_hash(key);
	struct rw_kmap_ent **pp = &m->b[h & (m->nb - 1)];
	for (; *pp; pp = &(*pp)->next) {
		struct rw_kmap_ent *e = *pp;
		if (e->hash == h && strcmp(e->key, key) == 0) {
			void *v = e->val;
			*pp = e->next;
			free(e);
			m->n--;
			return v;
		}
	}
	return NULL;
}

void
rw_kmap_iter_init(const struct rw_kmap *m, struct rw_kmap_iter *it)
{
	it->bucket = 0;
	it->next = m->nb ? m->b[0] : NULL;
}

struct rw_kmap_ent *
rw_kmap_next(const struct rw_kmap *m, struct rw_kmap_iter *it)
{
	while (!it->next) {
		if (++it->bucket >= m->nb)
			return NULL;
		it->next = m->b[it->bucket];
	}
	struct rw_kmap_ent *e = it->next;
	it->next = e->next;
	return e;
}

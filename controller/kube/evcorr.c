/* evcorr.c - the Event recorder's decisions (see evcorr.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evcorr.h"
#include "kmap.h"
#include "rw/list.h"

/* ---- a bounded LRU of string keys ---- */

struct lent {
	struct rw_list link; /* in lru.order */
	const char *key;     /* the map entry's copy */
	void *val;
};

struct lru {
	struct rw_kmap map;   /* key -> struct lent */
	struct rw_list order; /* first = most recently used */
	size_t max;
	void (*free_val)(struct rw_evc *c, void *val);
};

struct arec { /* aggregator: the distinct notes seen for one aggregate key */
	unsigned n;
	uint64_t last_ms;
	uint64_t notes[]; /* agg_max hashes */
};

struct bucket {
	double tokens;
	uint64_t last_ms;
};

struct rw_evc {
	struct rw_evc_opts o;
	void (*free_ud)(void *ud);
	struct lru agg, spam, log;
};

/* The least (last) or most (first) recently used entry, or NULL. */
static struct lent *
lru_end(const struct lru *l, int least)
{
	struct rw_list *n = least ? rw_list_last(&l->order) : rw_list_first(&l->order);
	return n ? rw_list_entry(n, struct lent, link) : NULL;
}

static void
lru_del(struct rw_evc *c, struct lru *l, struct lent *e)
{
	rw_list_remove(&e->link);
	if (l->free_val)
		l->free_val(c, e->val);
	rw_kmap_del(&l->map, e->key);
	free(e);
}

/* The value of key (now the most recently used), or NULL. */
static void *
lru_get(struct lru *l, const char *key)
{
	struct lent *e = rw_kmap_get(&l->map, key);
	if (!e)
		return NULL;
	rw_list_remove(&e->link);
	rw_list_insert_head(&l->order, &e->link);
	return e->val;
}

/* Store val under a key not in l, evicting the least recently used beyond max. */
static int
lru_add(struct rw_evc *c, struct lru *l, const char *key, void *val)
{
	struct lent *e = calloc(1, sizeof(*e));
	struct rw_kmap_ent *me;
	if (!e)
		return -ENOMEM;
	while (l->map.n >= l->max && !rw_list_empty(&l->order))
		lru_del(c, l, lru_end(l, 1));
	if (rw_kmap_put(&l->map, key, e, NULL) != 0 || !(me = rw_kmap_find(&l->map, key))) {
		rw_kmap_del(&l->map, key);
		free(e);
		return -ENOMEM;
	}
	e->key = me->key;
	e->val = val;
	rw_list_insert_head(&l->order, &e->link);
	return 0;
}

static void
lru_fini(struct rw_evc *c, struct lru *l)
{
	struct rw_list *n, *tmp;
	RW_LIST_FOREACH_SAFE (n, tmp, &l->order)
		lru_del(c, l, rw_list_entry(n, struct lent, link));
	rw_kmap_fini(&l->map, NULL);
}

/* ---- the correlator ---- */

static void
free_plain(struct rw_evc *c, void *v)
{
	(void)c;
	free(v);
}

static void
free_obs(struct rw_evc *c, void *v)
{
	struct rw_evc_obs *o = v;
	if (o && o->ud && c->free_ud)
		c->free_ud(o->ud);
	free(o);
}

int
rw_evc_new(const struct rw_evc_opts *o, void (*free_ud)(void *ud), struct rw_evc **out)
{
	struct rw_evc *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c)
		return -ENOMEM;
	if (o)
		c->o = *o;
	if (!c->o.max_entries)
		c->o.max_entries = 4096;
	if (c->o.burst <= 0)
		c->o.burst = 25;
	if (c->o.refill_per_s <= 0)
		c->o.refill_per_s = 1.0 / 300;
	if (!c->o.agg_max)
		c->o.agg_max = 10;
	if (!c->o.agg_window_ms)
		c->o.agg_window_ms = 600000;
	if (!c->o.series_window_ms)
		c->o.series_window_ms = 360000;
	c->free_ud = free_ud;
	c->agg.max = c->spam.max = c->log.max = c->o.max_entries;
	c->agg.free_val = c->spam.free_val = free_plain;
	c->log.free_val = free_obs;
	rw_kmap_init(&c->agg.map);
	rw_kmap_init(&c->spam.map);
	rw_kmap_init(&c->log.map);
	rw_list_init(&c->agg.order);
	rw_list_init(&c->spam.order);
	rw_list_init(&c->log.order);
	*out = c;
	return 0;
}

void
rw_evc_free(struct rw_evc *c)
{
	if (!c)
		return;
	lru_fini(c, &c->agg);
	lru_fini(c, &c->spam);
	lru_fini(c, &c->log);
	free(c);
}

/* FNV-1a, 64 bits: notes are keyed by hash so that a key stays small. */
static uint64_t
hash64(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* EventAggregate: true when the occurrence counts on the aggregate Event. */
static int
aggregate(struct rw_evc *c, const char *akey, uint64_t note, uint64_t now, bool *combined)
{
	struct arec *r = lru_get(&c->agg, akey);
	unsigned i;
	*combined = false;
	if (r && now - r->last_ms > c->o.agg_window_ms)
		r->n = 0; /* too old: a fresh record */
	if (!r) {
		r = calloc(1, sizeof(*r) + c->o.agg_max * sizeof(r->notes[0]));
		if (!r || lru_add(c, &c->agg, akey, r) != 0) {
			free(r);
			return -ENOMEM;
		}
	}
	r->last_ms = now;
	for (i = 0; i < r->n && r->notes[i] != note; i++)
		;
	if (i == r->n)
		r->notes[r->n++] = note;
	if (r->n < c->o.agg_max)
		return 0;
	/* As client-go: aggregate, and keep the set below the threshold (drop the oldest). */
	memmove(r->notes, r->notes + 1, (r->n - 1) * sizeof(r->notes[0]));
	r->n--;
	*combined = true;
	return 0;
}

/* The spam filter's token bucket: true when the occurrence may pass. */
static int
spam_allow(struct rw_evc *c, const char *skey, uint64_t now, bool *ok)
{
	struct bucket *b = lru_get(&c->spam, skey);
	if (!b) {
		b = malloc(sizeof(*b));
		if (!b || lru_add(c, &c->spam, skey, b) != 0) {
			free(b);
			return -ENOMEM;
		}
		b->tokens = c->o.burst;
		b->last_ms = now;
	}
	b->tokens += (double)(now - b->last_ms) / 1000.0 * c->o.refill_per_s;
	if (b->tokens > c->o.burst)
		b->tokens = c->o.burst;
	b->last_ms = now;
	*ok = b->tokens >= 1;
	if (*ok)
		b->tokens -= 1;
	return 0;
}

int
rw_evc_correlate(struct rw_evc *c, const char *object, const char *type, const char *reason,
		 const char *action, const char *note, uint64_t now, struct rw_evc_res *res)
{
	char key[2048];
	size_t ol;
	bool ok;
	struct rw_evc_obs *o;
	int n;
	memset(res, 0, sizeof(*res));
	n = snprintf(key, sizeof(key), "%s\x1f%s", object, type);
	if (n < 0 || (size_t)n >= sizeof(key) - 256)
		return -ENOMEM; /* object names are at most a few hundred bytes */
	ol = (size_t)n;
	/* Aggregate key: object, type, reason, action. */
	snprintf(key + ol, sizeof(key) - ol, "\x1f%.100s\x1f%.100s", reason, action);
	if (aggregate(c, key, hash64(note), now, &res->combined) != 0)
		return -ENOMEM;
	if (res->combined)
		snprintf(res->note, sizeof(res->note), RW_EVC_COMBINED "%s", note);
	else
		snprintf(res->note, sizeof(res->note), "%s", note);
	/* Spam key: object and type. */
	key[ol] = '\0';
	if (spam_allow(c, key, now, &ok) != 0)
		return -ENOMEM;
	if (!ok) {
		res->drop = true;
		return 0;
	}
	/* Logger key: the aggregate key for an aggregate, else the full key. */
	n = snprintf(key + ol, sizeof(key) - ol, "\x1f%.100s\x1f%.100s\x1f", reason, action);
	ol += (size_t)n;
	if (res->combined)
		snprintf(key + ol, sizeof(key) - ol, "*");
	else
		snprintf(key + ol, sizeof(key) - ol, "%016llx", (unsigned long long)hash64(note));
	o = lru_get(&c->log, key);
	if (o && now - o->first_ms > c->o.series_window_ms) {
		lru_del(c, &c->log, rw_kmap_get(&c->log.map, key));
		o = NULL;
	}
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o || lru_add(c, &c->log, key, o) != 0) {
			free(o);
			return -ENOMEM;
		}
		o->first_ms = now;
		res->fresh = true;
	}
	o->count++;
	o->last_ms = now;
	res->obs = o;
	return 0;
}

void
rw_evc_uncount(struct rw_evc *c, const struct rw_evc_res *res)
{
	struct lent *e;
	if (!res->obs)
		return;
	res->obs->count--;
	if (!res->fresh || res->obs->count > 0)
		return;
	/* A record made for this occurrence alone: forget it (the head of the LRU). */
	e = lru_end(&c->log, 0);
	if (e && e->val == res->obs)
		lru_del(c, &c->log, e);
}

void
rw_evc_sizes(const struct rw_evc *c, size_t *agg, size_t *spam, size_t *log)
{
	*agg = c->agg.map.n;
	*spam = c->spam.map.n;
	*log = c->log.map.n;
}

/*
 * expect.c - pending creates/deletes per (scope, group) (see expect.h).
 *
 * One map from "scope\x1fgroup\x1f{c|d}\x1fpod" to the time the expectation
 * was recorded, plus a per-(scope, group) counter map so satisfied() is
 * O(pending of that group) in the common case of no expirations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "kmap.h"

struct pending {
	uint64_t at;
};

struct group {
	int n;	     /* pending entries */
	char **pods; /* keys of the pending entries */
	int cap;
};

struct rw_exp {
	uint64_t timeout_ms;
	struct rw_kmap entries; /* full key -> struct pending */
	struct rw_kmap groups;	/* "scope\x1fgroup" -> struct group */
};

int
rw_exp_new(uint64_t timeout_ms, struct rw_exp **out)
{
	struct rw_exp *e = calloc(1, sizeof(*e));
	*out = NULL;
	if (!e)
		return -ENOMEM;
	e->timeout_ms = timeout_ms ? timeout_ms : 30000;
	rw_kmap_init(&e->entries);
	rw_kmap_init(&e->groups);
	*out = e;
	return 0;
}

static void
group_free(void *p)
{
	struct group *g = p;
	if (!g)
		return;
	for (int i = 0; i < g->n; i++)
		free(g->pods[i]);
	free(g->pods);
	free(g);
}

void
rw_exp_free(struct rw_exp *e)
{
	if (!e)
		return;
	rw_kmap_fini(&e->entries, free);
	rw_kmap_fini(&e->groups, group_free);
	free(e);
}

static int
gkey(char *out, size_t n, const char *scope, const char *group)
{
	int r = snprintf(out, n, "%s\x1f%s", scope, group ? group : "");
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

static int
ekey(char *out, size_t n, const char *scope, const char *group, char kind, const char *pod)
{
	int r = snprintf(out, n, "%s\x1f%s\x1f%c\x1f%s", scope, group ? group : "", kind, pod);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

static int
expect(struct rw_exp *e, const char *scope, const char *group, char kind, const char *pod,
       uint64_t now)
{
	char gk[1024], ek[1300];
	struct group *g;
	struct pending *p;
	if (!e || !scope || !pod || gkey(gk, sizeof(gk), scope, group) ||
	    ekey(ek, sizeof(ek), scope, group, kind, pod))
		return -EINVAL;
	p = rw_kmap_get(&e->entries, ek);
	if (p) {
		p->at = now;
		return 0;
	}
	g = rw_kmap_get(&e->groups, gk);
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g || rw_kmap_put(&e->groups, gk, g, NULL) != 0) {
			free(g);
			return -ENOMEM;
		}
	}
	if (g->n == g->cap) {
		int nc = g->cap ? g->cap * 2 : 4;
		char **np = realloc(g->pods, (size_t)nc * sizeof(*np));
		if (!np)
			return -ENOMEM;
		g->pods = np;
		g->cap = nc;
	}
	p = malloc(sizeof(*p));
	char *copy = strdup(ek);
	if (!p || !copy || rw_kmap_put(&e->entries, ek, p, NULL) != 0) {
		free(p);
		free(copy);
		return -ENOMEM;
	}
	p->at = now;
	g->pods[g->n++] = copy;
	return 0;
}

int
rw_exp_expect_create(struct rw_exp *e, const char *scope, const char *group, const char *pod,
		     uint64_t now_ms)
{
	return expect(e, scope, group, 'c', pod, now_ms);
}

int
rw_exp_expect_delete(struct rw_exp *e, const char *scope, const char *group, const char *pod,
		     uint64_t now_ms)
{
	return expect(e, scope, group, 'd', pod, now_ms);
}

/* Remove entry ek of group gk. */
static void
lower(struct rw_exp *e, const char *gk, const char *ek)
{
	struct group *g;
	free(rw_kmap_del(&e->entries, ek));
	g = rw_kmap_get(&e->groups, gk);
	if (!g)
		return;
	for (int i = 0; i < g->n; i++) {
		if (strcmp(g->pods[i], ek) == 0) {
			free(g->pods[i]);
			g->pods[i] = g->pods[--g->n];
			break;
		}
	}
	if (g->n == 0)
		group_free(rw_kmap_del(&e->groups, gk));
}

static void
observe(struct rw_exp *e, const char *scope, const char *group, char kind, const char *pod)
{
	char gk[1024], ek[1300];
	if (!e || !scope || !pod || gkey(gk, sizeof(gk), scope, group) ||
	    ekey(ek, sizeof(ek), scope, group, kind, pod))
		return;
	if (rw_kmap_get(&e->entries, ek))
		lower(e, gk, ek);
}

void
rw_exp_observe_add(struct rw_exp *e, const char *scope, const char *group, const char *pod)
{
	observe(e, scope, group, 'c', pod);
}

void
rw_exp_observe_delete(struct rw_exp *e, const char *scope, const char *group, const char *pod)
{
	observe(e, scope, group, 'd', pod);
	/* A pod created and deleted before the informer saw it is gone either way. */
	observe(e, scope, group, 'c', pod);
}

void
rw_exp_forget(struct rw_exp *e, const char *scope, const char *group, const char *pod)
{
	observe(e, scope, group, 'c', pod);
	observe(e, scope, group, 'd', pod);
}

bool
rw_exp_satisfied(struct rw_exp *e, const char *scope, const char *group, uint64_t now_ms)
{
	char gk[1024];
	struct group *g;
	bool ok = true;
	if (!e || !scope || gkey(gk, sizeof(gk), scope, group))
		return true;
	g = rw_kmap_get(&e->groups, gk);
	if (!g)
		return true;
	uint64_t timeout = e->timeout_ms;
	if ((!group || !*group) && timeout < RW_EXP_HEAD_TIMEOUT_MS)
		timeout = RW_EXP_HEAD_TIMEOUT_MS;
	for (int i = g->n - 1; i >= 0; i--) {
		struct pending *p = rw_kmap_get(&e->entries, g->pods[i]);
		if (p && now_ms - p->at < timeout) {
			ok = false;
			continue;
		}
		char *ek = strdup(g->pods[i]);
		if (!ek)
			return false;
		lower(e, gk, ek); /* expired: trust the cache again */
		free(ek);
		g = rw_kmap_get(&e->groups, gk);
		if (!g)
			break;
	}
	return ok;
}

int
rw_exp_pending(const struct rw_exp *e, const char *scope, const char *group)
{
	char gk[1024];
	struct group *g;
	if (!e || !scope || gkey(gk, sizeof(gk), scope, group))
		return 0;
	g = rw_kmap_get(&e->groups, gk);
	return g ? g->n : 0;
}

void
rw_exp_clear(struct rw_exp *e, const char *scope)
{
	struct rw_kmap_iter it;
	struct rw_kmap_ent *ent;
	size_t sl;
	if (!e || !scope)
		return;
	sl = strlen(scope);
	rw_kmap_iter_init(&e->groups, &it);
	while ((ent = rw_kmap_next(&e->groups, &it)) != NULL) {
		if (strncmp(ent->key, scope, sl) != 0 || ent->key[sl] != '\x1f')
			continue;
		struct group *g = ent->val;
		for (int i = 0; i < g->n; i++)
			free(rw_kmap_del(&e->entries, g->pods[i]));
		group_free(rw_kmap_del(&e->groups, ent->key));
	}
}

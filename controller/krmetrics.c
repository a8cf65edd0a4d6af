/*
 * krmetrics.c - KubeRay metric facts of an object; /proc parsing for the
 * process_* metrics (see krmetrics.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "krmetrics.h"

static int
copy_field(char *out, size_t n, const char *v)
{
	if (!v || !*v || strlen(v) >= n)
		return -EINVAL;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int
rw_krm_parse(const char *json, size_t len, struct rw_krm_obj *o)
{
	struct rw_doc_node *root = NULL, *meta, *st, *conds;
	const char *v;
	int rv = -EINVAL;
	memset(o, 0, sizeof(*o));
	if (!json || rw_doc_parse(json, len, &root, NULL, 0) != 0)
		return -EINVAL;
	meta = rw_doc_get(root, "metadata");
	if (copy_field(o->name, sizeof(o->name), rw_doc_gets(meta, "name")) ||
	    copy_field(o->ns, sizeof(o->ns), rw_doc_gets(meta, "namespace")) ||
	    copy_field(o->uid, sizeof(o->uid), rw_doc_gets(meta, "uid")))
		goto out;
	v = rw_doc_gets(rw_doc_get(meta, "labels"), "ray.io/originated-from-crd");
	snprintf(o->owner_kind, sizeof(o->owner_kind), "%s", v ? v : "None");
	st = rw_doc_get(root, "status");
	conds = rw_doc_get(st, "conditions");
	o->provisioned = rw_doc_cond_true(conds, "RayClusterProvisioned");
	o->ready = rw_doc_cond_true(conds, "Ready");
	o->upgrading = rw_doc_cond_true(conds, "UpgradeInProgress");
	v = rw_doc_gets(st, "jobDeploymentStatus");
	snprintf(o->deployment_status, sizeof(o->deployment_status), "%s", v ? v : "");
	o->serve_endpoints = rw_doc_int_or(st, "numServeEndpoints", 0);
	rv = 0;
out:
	rw_doc_free(root);
	return rv;
}

struct rw_krm_entry {
	char rv[64];
	unsigned sweep;
	bool ok;
	struct rw_krm_obj obj;
};

void
rw_krm_cache_init(struct rw_krm_cache *c)
{
	rw_kmap_init(&c->map);
	c->sweep = 0;
}

void
rw_krm_cache_fini(struct rw_krm_cache *c)
{
	rw_kmap_fini(&c->map, free);
}

void
rw_krm_cache_begin(struct rw_krm_cache *c)
{
	c->sweep++;
}

const struct rw_krm_obj *
rw_krm_cache_get(struct rw_krm_cache *c, const char *ns, const char *name, const char *rv,
		 const char *json, size_t len)
{
	char key[512];
	struct rw_krm_entry *e;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	e = rw_kmap_get(&c->map, key);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || rw_kmap_put(&c->map, key, e, NULL) != 0) {
			free(e);
			return NULL;
		}
	}
	e->sweep = c->sweep;
	/* An empty or over-long resourceVersion is never trusted to mean "unchanged". */
	if (!rv || !*rv || strlen(rv) >= sizeof(e->rv) || strcmp(e->rv, rv) != 0) {
		e->ok = rw_krm_parse(json, len, &e->obj) == 0;
		snprintf(e->rv, sizeof(e->rv), "%s", rv && strlen(rv) < sizeof(e->rv) ? rv : "");
	}
	return e->ok ? &e->obj : NULL;
}

void
rw_krm_cache_end(struct rw_krm_cache *c)
{
	struct rw_kmap_iter it;
	struct rw_kmap_ent *ent;
	char *gone[64];
	int n;
	do {
		/* Deleting while iterating is not allowed: collect a batch, delete, repeat. */
		n = 0;
		rw_kmap_iter_init(&c->map, &it);
		while (n < 64 && (ent = rw_kmap_next(&c->map, &it)) != NULL) {
			struct rw_krm_entry *e = ent->val;
			if (e->sweep != c->sweep)
				gone[n++] = ent->key;
		}
		for (int i = 0; i < n; i++)
			free(rw_kmap_del(&c->map, gone[i]));
	} while (n == 64);
}

int
rw_proc_stat_parse(const char *text, size_t len, struct rw_proc_stat *out)
{
	char buf[1024];
	const char *p;
	unsigned long long f[21];
	int n = 0;
	memset(out, 0, sizeof(*out));
	if (!text || len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, len);
	buf[len] = '\0';
	/* comm may hold spaces and parentheses: the fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EINVAL;
	p += 2;
	/* field 3 (state) is a letter; fields 4.. are numbers. */
	if (!*p || p[1] != ' ')
		return -EINVAL;
	p += 2;
	while (n < 21 && *p) {
		char *end;
		errno = 0;
		/* strtoull: tpgid is -1 for most daemons (wraps, only rss and before are read). */
		f[n++] = strtoull(p, &end, 10);
		if (end == p || errno)
			return -EINVAL;
		p = end;
		while (*p == ' ' || *p == '\n')
			p++;
	}
	if (n < 21)
		return -EINVAL;
	/* f[0] is field 4 (ppid): utime 14, stime 15, starttime 22, vsize 23, rss 24. */
	out->utime = f[10];
	out->stime = f[11];
	out->starttime = f[18];
	out->vsize = f[19];
	out->rss = (long long)f[20];
	return 0;
}

int
rw_proc_btime_parse(const char *text, size_t len, long long *out)
{
	size_t i = 0;
	while (text && i < len) {
		const char *line = text + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - line) : len - i;
		if (ll > 6 && !strncmp(line, "btime ", 6)) {
			char num[32];
			char *end;
			if (ll - 6 >= sizeof(num))
				return -EINVAL;
			memcpy(num, line + 6, ll - 6);
			num[ll - 6] = '\0';
			*out = strtoll(num, &end, 10);
			return end == num || *out <= 0 ? -EINVAL : 0;
		}
		i += ll + 1;
	}
	return -EINVAL;
}

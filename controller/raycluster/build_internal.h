/*
 * build_internal.h - the helpers the RayCluster builders (build_*.c, scaling.c)
 * share; not an API. They are static inline so their short names (set, obj,
 * push...) stay private to each file instead of entering the link namespace.
 */
#ifndef RW_BUILD_INTERNAL_H
#define RW_BUILD_INTERNAL_H

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "doc_builder.h"
#include "rc_build.h"

static inline bool
lower_is(const char *v, const char *want)
{
	return v && strcasecmp(v, want) == 0;
}

static inline const char *
param_raw(const node *params, const char *key)
{
	node *v = rw_doc_get(params, key);
	if (!v)
		return NULL;
	if (v->type == RW_DOC_STR || v->type == RW_DOC_NUM)
		return v->s;
	if (v->type == RW_DOC_BOOL)
		return v->b ? "true" : "false";
	return NULL;
}

static inline node *
container0(const node *tmpl_spec)
{
	node *cs = rw_doc_get(tmpl_spec, "containers");
	node *c0 = rw_doc_at(cs, 0);
	return c0 && c0->type == RW_DOC_OBJ ? c0 : NULL;
}

static inline node *
env_find(const node *env, const char *name)
{
	for (int i = 0; env && env->type == RW_DOC_ARR && i < env->n; i++)
		if (streq(rw_doc_gets(env->kids[i], "name"), name))
			return env->kids[i];
	return NULL;
}

static inline bool
env_exists(const node *env, const char *name)
{
	return env_find(env, name) != NULL;
}

static inline int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted member keys of object o (malloc'd array of borrowed strings). */
static inline const char **
sorted_keys(const node *o, int *n)
{
	const char **k;
	*n = 0;
	if (!o || o->type != RW_DOC_OBJ || o->n == 0)
		return NULL;
	k = malloc((size_t)o->n * sizeof(*k));
	if (!k)
		return NULL;
	for (int i = 0; i < o->n; i++)
		k[i] = o->kids[i]->key;
	qsort(k, (size_t)o->n, sizeof(*k), cmp_str);
	*n = o->n;
	return k;
}

static inline void
env_push(struct b *b, node *env, const char *name, const char *value)
{
	node *e = nnew(b, RW_DOC_OBJ);
	sets(b, e, "name", name);
	sets(b, e, "value", value);
	push(b, env, e);
}

static inline void
env_push_field(struct b *b, node *env, const char *name, const char *path)
{
	node *e = nnew(b, RW_DOC_OBJ);
	sets(b, e, "name", name);
	node *vf = obj(b, e, "valueFrom");
	node *fr = obj(b, vf, "fieldRef");
	sets(b, fr, "fieldPath", path);
	push(b, env, e);
}

static inline node *
resources_obj(struct b *b, const char *cpu_req, const char *mem_req, const char *cpu_lim,
	      const char *mem_lim)
{
	node *r = nnew(b, RW_DOC_OBJ);
	node *l = obj(b, r, "limits");
	sets(b, l, "cpu", cpu_lim);
	sets(b, l, "memory", mem_lim);
	node *q = obj(b, r, "requests");
	sets(b, q, "cpu", cpu_req);
	sets(b, q, "memory", mem_req);
	return r;
}

static inline void
owner_ref(struct b *b, const struct rw_raycluster *c, node *meta)
{
	const char *api = rw_doc_gets(c->obj.root, "apiVersion");
	const char *kind = rw_doc_gets(c->obj.root, "kind");
	set_owner(b, meta, api ? api : "ray.io/v1", kind ? kind : "RayCluster", c->obj.name,
		  c->obj.uid);
}

static inline int
port_of(const node *params, const char *key, int def)
{
	/* strconv.ParseInt(s, 10, 32): optional sign, decimal digits, int32 range. */
	const char *s = param_raw(params, key);
	char *end;
	long v;
	if (!s || !*s)
		return def;
	if (!(isdigit((unsigned char)s[0]) || ((s[0] == '+' || s[0] == '-') && s[1])))
		return def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end || errno || v > 2147483647L || v < -2147483648L)
		return def;
	for (const char *p = s + (s[0] == '+' || s[0] == '-'); *p; p++)
		if (!isdigit((unsigned char)*p))
			return def;
	return (int)v;
}

static inline int
find_container_port(const node *container, const char *name, int def)
{
	node *ports = rw_doc_get(container, "ports");
	for (int i = 0; ports && ports->type == RW_DOC_ARR && i < ports->n; i++) {
		int64_t v;
		if (streq(rw_doc_gets(ports->kids[i], "name"), name) &&
		    rw_doc_int(rw_doc_get(ports->kids[i], "containerPort"), &v) == 0)
			return (int)v;
	}
	return def;
}

static inline node *
probe_obj(struct b *b, int initial, int timeout, int period, int success, int failure)
{
	node *p = nnew(b, RW_DOC_OBJ);
	if (initial)
		seti(b, p, "initialDelaySeconds", initial);
	seti(b, p, "timeoutSeconds", timeout);
	seti(b, p, "periodSeconds", period);
	seti(b, p, "successThreshold", success);
	seti(b, p, "failureThreshold", failure);
	return p;
}

static inline void
probe_http(struct b *b, node *p, const char *path, int port)
{
	node *h = obj(b, p, "httpGet");
	sets(b, h, "path", path);
	seti(b, h, "port", port);
}

static inline bool
present(const node *container, const char *key)
{
	node *v = rw_doc_get(container, key);
	return v && v->type != RW_DOC_NULL;
}

/* build_agent.c, called by build_pod.c while it assembles a Ray Pod. */
void rw_raycluster_agent_probes(struct b *b, const struct rw_raycluster_opts *o, node *ray);
void rw_raycluster_agent_sidecar(struct b *b, const struct rw_raycluster *c,
				 const struct rw_raycluster_opts *o, node *pod_spec,
				 const node *params, bool head, bool rayservice);
void rw_raycluster_drain_hooks(struct b *b, const struct rw_raycluster_opts *o, node *pod_spec);

#endif

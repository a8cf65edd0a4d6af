/* build_service.c - RayCluster -> head, serve and headless Services as KubeRay builds them. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_internal.h"

/* ---- services ---- */

/* getServicePorts: head container ports by name (or defaults) plus metrics. */
static node *
service_ports(struct b *b, const struct rw_raycluster *c)
{
	node *m = nnew(b, RW_DOC_OBJ);
	node *ray = container0(rw_doc_path(c->head, "template.spec"));
	node *ports = rw_doc_get(ray, "ports");
	for (int i = 0; ports && ports->type == RW_DOC_ARR && i < ports->n; i++) {
		int64_t cp = 0;
		char nm[300];
		const char *name = rw_doc_gets(ports->kids[i], "name");
		rw_doc_int(rw_doc_get(ports->kids[i], "containerPort"), &cp);
		if (!name || !*name) {
			snprintf(nm, sizeof(nm), "%lld-port", (long long)cp);
			name = nm;
		}
		seti(b, m, name, cp);
	}
	if (m && m->n == 0) {
		seti(b, m, "client", 10001);
		seti(b, m, "gcs-server", 6379);
		seti(b, m, "dashboard", 8265);
		seti(b, m, "metrics", 8080);
		seti(b, m, "serve", 8000);
	}
	if (!rw_doc_get(m, "metrics"))
		seti(b, m, "metrics", 8080);
	return m;
}

static void
svc_meta(struct b *b, const struct rw_raycluster *c, node *svc, const char *name)
{
	char nm[80];
	node *meta = obj(b, svc, "metadata");
	rw_raycluster_check_name(name, nm, sizeof(nm));
	sets(b, meta, "name", nm);
	sets(b, meta, "namespace", c->obj.ns);
	owner_ref(b, c, meta);
}

static node *
head_selector(struct b *b, const struct rw_raycluster *c)
{
	char id[320], idl[80];
	node *s = nnew(b, RW_DOC_OBJ);
	const char *app =
	    param_raw(rw_doc_path(c->head, "template.metadata.labels"), "app.kubernetes.io/name");
	snprintf(id, sizeof(id), "%s-head", c->obj.name);
	rw_raycluster_check_label(id, idl, sizeof(idl));
	sets(b, s, "ray.io/cluster", c->obj.name);
	sets(b, s, "ray.io/node-type", "head");
	sets(b, s, "ray.io/identifier", idl);
	sets(b, s, "app.kubernetes.io/name", app ? app : "kuberay");
	sets(b, s, "app.kubernetes.io/created-by", "kuberay-operator");
	return s;
}

/* BuildServiceForHeadPod with annotations hsa (NULL: none); c->head is set. */
static node *
head_service(struct b *b, const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
	     const node *hsa)
{
	char name[320];
	node *svc, *meta, *spec, *ports, *pm, *custom, *annos, *sel;
	const char *type = rw_doc_gets(c->head, "serviceType");
	int n;
	const char **keys;

	rw_raycluster_head_svc_name(c, name, sizeof(name));
	pm = service_ports(b, c);
	sel = head_selector(b, c);
	keys = sorted_keys(pm, &n);
	if (n > 0 && !keys)
		fail(b, -ENOMEM);
	ports = nnew(b, RW_DOC_ARR);
	for (int i = 0; i < n; i++) {
		node *p = nnew(b, RW_DOC_OBJ);
		int64_t v = 0;
		rw_doc_int(rw_doc_get(pm, keys[i]), &v);
		sets(b, p, "name", keys[i]);
		seti(b, p, "port", v);
		sets(b, p, "appProtocol", "tcp");
		push(b, ports, p);
	}
	free(keys);
	rw_doc_free(pm);
	custom = rw_doc_get(c->head, "headService");
	if (custom && custom->type == RW_DOC_OBJ) {
		svc = nclone(b, custom);
		sets(b, svc, "apiVersion", "v1");
		sets(b, svc, "kind", "Service");
		meta = obj(b, svc, "metadata");
		spec = obj(b, svc, "spec");
		set(b, spec, "selector", nclone(b, sel));
		annos = obj(b, meta, "annotations");
		for (int i = 0; hsa && hsa->type == RW_DOC_OBJ && i < hsa->n; i++)
			set(b, annos, hsa->kids[i]->key, nclone(b, hsa->kids[i]));
		if (annos && annos->n == 0)
			rw_doc_del(meta, "annotations");
		node *sp = arr(b, spec, "ports");
		for (int i = 0; ports && i < ports->n; i++)
			push(b, sp, nclone(b, ports->kids[i]));
		node *lab = obj(b, meta, "labels");
		for (int i = 0; sel && i < sel->n; i++)
			set(b, lab, sel->kids[i]->key, nclone(b, sel->kids[i]));
		const char *cn = rw_doc_gets(meta, "name");
		if (!cn || !*cn)
			sets(b, meta, "name", name);
		sets(b, meta, "namespace", c->obj.ns);
		const char *ct = rw_doc_gets(spec, "type");
		if ((!ct || !*ct) && type && *type)
			sets(b, spec, "type", type);
		char nm[80];
		rw_raycluster_check_name(
		    rw_doc_gets(meta, "name") ? rw_doc_gets(meta, "name") : name, nm, sizeof(nm));
		sets(b, meta, "name", nm);
		owner_ref(b, c, meta);
		rw_doc_free(ports);
		rw_doc_free(sel);
		return svc;
	}
	svc = nnew(b, RW_DOC_OBJ);
	sets(b, svc, "apiVersion", "v1");
	sets(b, svc, "kind", "Service");
	svc_meta(b, c, svc, name);
	meta = obj(b, svc, "metadata");
	set(b, meta, "labels", nclone(b, sel));
	if (hsa && hsa->type == RW_DOC_OBJ && hsa->n > 0)
		set(b, meta, "annotations", nclone(b, hsa));
	spec = obj(b, svc, "spec");
	set(b, spec, "selector", sel);
	set(b, spec, "ports", ports);
	if (type && *type)
		sets(b, spec, "type", type);
	if (!o->head_cluster_ip_service && (!type || !*type || streq(type, "ClusterIP"))) {
		sets(b, spec, "clusterIP", "None");
		setb(b, spec, "publishNotReadyAddresses", true);
	}
	return svc;
}

int
rw_raycluster_build_head_service(const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
				 struct rw_buf *out)
{
	struct b b = {0};
	node *svc;
	if (!c->head)
		return -EINVAL;
	svc = head_service(&b, c, o, rw_doc_get(c->obj.spec, "headServiceAnnotations"));
	return finish(&b, svc, out);
}

int
rw_raycluster_build_owned_head_service(const struct rw_raycluster *c,
				       const struct rw_raycluster_opts *o,
				       const struct rw_raycluster_owner *owner, const char *name,
				       struct rw_buf *out)
{
	struct b b = {0};
	node *svc, *meta, *labels;
	char id[320], idl[80];
	if (!c->head)
		return -EINVAL;
	/* KubeRay builds it with no annotations: headServiceAnnotations stay on the cluster's
	 * own head service (a custom headService's own annotations are kept). */
	svc = head_service(&b, c, o, NULL);
	meta = obj(&b, svc, "metadata");
	sets(&b, meta, "name", name);
	sets(&b, meta, "namespace", owner->ns);
	/* The labels are replaced, not merged: the cluster's ray.io/cluster label would make
	 * the owner's service look like the cluster's own to selectors and informers. */
	labels = nnew(&b, RW_DOC_OBJ);
	snprintf(id, sizeof(id), "%s-head", owner->name);
	rw_raycluster_check_label(id, idl, sizeof(idl));
	sets(&b, labels, "ray.io/originated-from-cr-name", owner->name);
	sets(&b, labels, "ray.io/originated-from-crd", owner->kind);
	sets(&b, labels, "ray.io/node-type", "head");
	sets(&b, labels, "ray.io/identifier", idl);
	set(&b, meta, "labels", labels);
	set_owner(&b, meta, owner->api_version ? owner->api_version : "ray.io/v1", owner->kind,
		  owner->name, owner->uid);
	return finish(&b, svc, out);
}

bool
rw_raycluster_wants_serve_service(const struct rw_raycluster *c)
{
	return streq(param_raw(c->obj.annotations, "ray.io/enable-serve-service"), "true");
}

int
rw_raycluster_build_serve_service(const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
				  struct rw_buf *out)
{
	struct b b = {0};
	char name[320], label[320];
	node *pm, *svc, *meta, *l, *spec, *p;
	int64_t port = 0;
	const char *type = rw_doc_gets(c->head, "serviceType");
	(void)o;

	if (!c->head)
		return -EINVAL;
	pm = service_ports(&b, c);
	if (rw_doc_int(rw_doc_get(pm, "serve"), &port) != 0) {
		rw_doc_free(pm);
		return b.err ? b.err : -ENOENT;
	}
	rw_doc_free(pm);
	snprintf(name, sizeof(name), "%s-serve-svc", c->obj.name);
	snprintf(label, sizeof(label), "%s-serve", c->obj.name);
	svc = nnew(&b, RW_DOC_OBJ);
	sets(&b, svc, "apiVersion", "v1");
	sets(&b, svc, "kind", "Service");
	svc_meta(&b, c, svc, name);
	meta = obj(&b, svc, "metadata");
	l = obj(&b, meta, "labels");
	sets(&b, l, "ray.io/originated-from-cr-name", c->obj.name);
	sets(&b, l, "ray.io/originated-from-crd", "RayCluster");
	sets(&b, l, "ray.io/serve", label);
	spec = obj(&b, svc, "spec");
	sets(&b, obj(&b, spec, "selector"), "ray.io/cluster", c->obj.name);
	p = nnew(&b, RW_DOC_OBJ);
	sets(&b, p, "name", "serve");
	seti(&b, p, "port", port);
	push(&b, arr(&b, spec, "ports"), p);
	if (type && *type)
		sets(&b, spec, "type", type);
	return finish(&b, svc, out);
}

bool
rw_raycluster_wants_headless_service(const struct rw_raycluster *c)
{
	for (int i = 0; i < c->ngroups; i++) {
		int64_t h = 1;
		if (rw_doc_int(rw_doc_get(rw_raycluster_group(c, i), "numOfHosts"), &h) == 0 &&
		    h > 1)
			return true;
	}
	return false;
}

int
rw_raycluster_build_headless_service(const struct rw_raycluster *c, struct rw_buf *out)
{
	struct b b = {0};
	char name[320];
	node *svc = nnew(&b, RW_DOC_OBJ), *meta, *spec, *sel;
	snprintf(name, sizeof(name), "%s-headless", c->obj.name);
	sets(&b, svc, "apiVersion", "v1");
	sets(&b, svc, "kind", "Service");
	svc_meta(&b, c, svc, name);
	meta = obj(&b, svc, "metadata");
	sets(&b, obj(&b, meta, "labels"), "ray.io/headless-worker-svc", c->obj.name);
	spec = obj(&b, svc, "spec");
	sets(&b, spec, "clusterIP", "None");
	sel = obj(&b, spec, "selector");
	sets(&b, sel, "ray.io/cluster", c->obj.name);
	sets(&b, sel, "ray.io/node-type", "worker");
	sets(&b, spec, "type", "ClusterIP");
	setb(&b, spec, "publishNotReadyAddresses", true);
	return finish(&b, svc, out);
}

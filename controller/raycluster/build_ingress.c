/* build_ingress.c - RayCluster -> the head Ingress or OpenShift Route (see build_ingress.h). */

#include "build_internal.h"

#define INGRESS_CLASS_ANNOTATION "kubernetes.io/ingress.class"

bool
rw_raycluster_route_probe_needed(const char *use_ingress_on_openshift)
{
	return !streq(use_ingress_on_openshift, "true");
}

bool
rw_raycluster_use_routes(const char *use_ingress_on_openshift, long route_list_status)
{
	return rw_raycluster_route_probe_needed(use_ingress_on_openshift) &&
	       route_list_status == 200;
}

bool
rw_raycluster_wants_ingress(const struct rw_raycluster *c)
{
	return rw_doc_true(rw_doc_get(c->head, "enableIngress"));
}

int
rw_raycluster_dashboard_port(const struct rw_raycluster *c)
{
	/* getServicePorts keeps the ports in a map by name, so the last "dashboard" wins. */
	node *ports = rw_doc_get(container0(rw_doc_path(c->head, "template.spec")), "ports");
	int port = 8265;
	for (int i = 0; ports && ports->type == RW_DOC_ARR && i < ports->n; i++) {
		int64_t v;
		if (streq(rw_doc_gets(ports->kids[i], "name"), "dashboard") &&
		    rw_doc_int(rw_doc_get(ports->kids[i], "containerPort"), &v) == 0)
			port = (int)v;
	}
	return port;
}

void
rw_raycluster_ingress_name(const struct rw_raycluster *c, char *out, size_t outlen)
{
	char tmp[320];
	snprintf(tmp, sizeof(tmp), "%s-head-ingress", c->obj.name);
	rw_raycluster_check_name(tmp, out, outlen);
}

void
rw_raycluster_route_name(const struct rw_raycluster *c, char *out, size_t outlen)
{
	char tmp[320];
	int max = 51 - (int)strlen(c->obj.ns);
	/* KubeRay slices with a negative bound (and panics) for namespaces over 50 characters;
	 * one character keeps the name valid. */
	if (max < 1)
		max = 1;
	snprintf(tmp, sizeof(tmp), "%.*s-head-route", 300, c->obj.name);
	if ((int)strlen(tmp) > max)
		tmp[max] = '\0';
	rw_raycluster_check_name(tmp, out, outlen);
}

/* metadata shared by the Ingress and the Route (BuildIngressForHeadService's labels). */
static node *
head_meta(struct b *b, const struct rw_raycluster *c, node *o, const char *name,
	  const char *skip_annotation)
{
	char id[320], idl[80];
	node *meta = obj(b, o, "metadata"), *labels, *annos;
	sets(b, meta, "name", name);
	sets(b, meta, "namespace", c->obj.ns);
	labels = obj(b, meta, "labels");
	snprintf(id, sizeof(id), "%s-head", c->obj.name);
	rw_raycluster_check_label(id, idl, sizeof(idl));
	sets(b, labels, "ray.io/cluster", c->obj.name);
	sets(b, labels, "ray.io/identifier", idl);
	sets(b, labels, "app.kubernetes.io/name", "kuberay");
	sets(b, labels, "app.kubernetes.io/created-by", "kuberay-operator");
	annos = nnew(b, RW_DOC_OBJ);
	for (int i = 0; c->obj.annotations && c->obj.annotations->type == RW_DOC_OBJ &&
			i < c->obj.annotations->n;
	     i++) {
		node *a = c->obj.annotations->kids[i];
		if (skip_annotation && streq(a->key, skip_annotation))
			continue;
		set(b, annos, a->key, nclone(b, a));
	}
	if (annos && annos->n > 0)
		set(b, meta, "annotations", annos);
	else
		rw_doc_free(annos);
	owner_ref(b, c, meta);
	return meta;
}

int
rw_raycluster_build_ingress(const struct rw_raycluster *c, struct rw_buf *out)
{
	struct b b = {0};
	char name[80], svc[320], path[320];
	node *ing, *spec, *rule, *p, *backend, *port;
	const char *cls = param_raw(c->obj.annotations, INGRESS_CLASS_ANNOTATION);
	if (!c->head)
		return -EINVAL;
	rw_raycluster_ingress_name(c, name, sizeof(name));
	rw_raycluster_head_svc_name(c, svc, sizeof(svc));
	snprintf(path, sizeof(path), "/%s/(.*)", c->obj.name);
	ing = nnew(&b, RW_DOC_OBJ);
	sets(&b, ing, "apiVersion", "networking.k8s.io/v1");
	sets(&b, ing, "kind", "Ingress");
	head_meta(&b, c, ing, name, INGRESS_CLASS_ANNOTATION);
	spec = obj(&b, ing, "spec");
	if (cls)
		sets(&b, spec, "ingressClassName", cls);
	rule = nnew(&b, RW_DOC_OBJ);
	p = nnew(&b, RW_DOC_OBJ);
	sets(&b, p, "path", path);
	sets(&b, p, "pathType", "Exact");
	backend = obj(&b, obj(&b, p, "backend"), "service");
	sets(&b, backend, "name", svc);
	port = obj(&b, backend, "port");
	seti(&b, port, "number", rw_raycluster_dashboard_port(c));
	push(&b, arr(&b, obj(&b, rule, "http"), "paths"), p);
	push(&b, arr(&b, spec, "rules"), rule);
	return finish(&b, ing, out);
}

int
rw_raycluster_build_route(const struct rw_raycluster *c, struct rw_buf *out)
{
	struct b b = {0};
	char name[80], svc[320];
	node *route, *spec, *to;
	if (!c->head)
		return -EINVAL;
	rw_raycluster_route_name(c, name, sizeof(name));
	rw_raycluster_head_svc_name(c, svc, sizeof(svc));
	route = nnew(&b, RW_DOC_OBJ);
	sets(&b, route, "apiVersion", "route.openshift.io/v1");
	sets(&b, route, "kind", "Route");
	head_meta(&b, c, route, name, NULL);
	spec = obj(&b, route, "spec");
	to = obj(&b, spec, "to");
	sets(&b, to, "kind", "Service");
	sets(&b, to, "name", svc);
	seti(&b, to, "weight", 100);
	seti(&b, obj(&b, spec, "port"), "targetPort", rw_raycluster_dashboard_port(c));
	sets(&b, spec, "wildcardPolicy", "None");
	return finish(&b, route, out);
}

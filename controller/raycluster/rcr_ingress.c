/*
 * rcr_ingress.c - the RayCluster reconciler's Ingress step (KubeRay's
 * reconcileIngress): with headGroupSpec.enableIngress the head Ingress, or on
 * OpenShift the head Route, is created when no object of that kind carries
 * the label ray.io/cluster=<cluster>; an existing one is never updated (a
 * later spec change leaves it as it is), and the cluster's ownerReference
 * lets garbage collection remove it.
 *
 * Route or Ingress is decided once at start, as KubeRay's GetClusterType:
 * USE_INGRESS_ON_OPENSHIFT=true means Ingress; otherwise Route when the API
 * server serves route.openshift.io/v1 routes (one list with limit=1; KubeRay
 * asks discovery for any *.openshift.io group). The informer of the chosen
 * kind starts on the first cluster that wants one, as controller-runtime's
 * cache starts one on the first List, so clusters without enableIngress cost
 * no list or watch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcr.h"
#include "rw/log.h"

#define LOGC "raycluster"

static const struct rw_inf_type ingress_type = {
    .api_path = "/apis/networking.k8s.io/v1",
    .resource = "ingresses",
    .decode = rw_inf_json_decode,
    .free_obj = free,
};

static const struct rw_inf_type route_type = {
    .api_path = "/apis/route.openshift.io/v1",
    .resource = "routes",
    .decode = rw_inf_json_decode,
    .free_obj = free,
};

/* Index key "namespace/<ray.io/cluster label>" of a stored Ingress or Route. */
static const char *
net_cluster_key(const void *obj, char *buf, size_t n)
{
	const struct rw_inf_json *o = obj;
	struct rw_json j;
	char cl[256];
	int rv;
	if (rw_json_parse(&j, o->json, o->len, 1 << 20, NULL, 0) != 0)
		return NULL;
	rv = rw_json_str(&j,
			 rw_json_get(&j, rw_json_path(&j, 0, "metadata.labels"), "ray.io/cluster"),
			 cl, sizeof(cl));
	rw_json_fini(&j);
	if (rv < 0)
		return NULL;
	rv = snprintf(buf, n, "%s/%s", o->meta.ns, cl);
	return rv < 0 || (size_t)rv >= n ? NULL : buf;
}

static void
route_probe_cb(const struct rw_kube_resp *resp, void *ud)
{
	struct rcr *r = ud;
	r->route_probe = NULL;
	if (rw_raycluster_use_routes(getenv("USE_INGRESS_ON_OPENSHIFT"), resp->status)) {
		r->net_mode = RCR_NET_ROUTE;
		rw_info(LOGC,
			"route.openshift.io/v1 is served: enableIngress makes OpenShift Routes "
			"(USE_INGRESS_ON_OPENSHIFT=true makes Ingresses instead)");
		return;
	}
	r->net_mode = RCR_NET_INGRESS;
	if (resp->status == 404)
		rw_debug(LOGC,
			 "route.openshift.io/v1 is not served: enableIngress makes Ingresses");
	else
		rw_warn(LOGC,
			"cannot tell whether route.openshift.io/v1 is served (HTTP %ld %s): "
			"enableIngress makes Ingresses",
			resp->status, resp->err ? strerror(-resp->err) : resp->message);
}

int
rw_raycluster_ctl_ingress_setup(struct rcr *r)
{
	const struct rw_mgr_config *cfg = rw_mgr_cfg(r->mgr);
	char path[512];
	if (!rw_raycluster_route_probe_needed(getenv("USE_INGRESS_ON_OPENSHIFT"))) {
		r->net_mode = RCR_NET_INGRESS;
		return 0;
	}
	/* The first watched namespace, so that a namespaced install's RBAC allows the list. */
	if (cfg->watch_ns && cfg->watch_ns[0])
		snprintf(path, sizeof(path), "/apis/route.openshift.io/v1/namespaces/%s/routes",
			 cfg->watch_ns[0]);
	else
		snprintf(path, sizeof(path), "/apis/route.openshift.io/v1/routes");
	struct rw_kube_req kr = {.method = "GET", .path = path, .query = "limit=1", .verb = "list"};
	r->net_mode = RCR_NET_PROBING;
	return rw_kube_request(rw_mgr_kube(r->mgr), &kr, route_probe_cb, r, &r->route_probe);
}

void
rw_raycluster_ctl_ingress_fini(struct rcr *r)
{
	if (r->route_probe)
		rw_kube_cancel(r->route_probe);
	r->route_probe = NULL;
}

static void
count_cb(const void *obj, void *ud)
{
	(void)obj;
	++*(int *)ud;
}

void
rw_raycluster_ctl_st_ingress(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr *r = rcr_of(j);
	bool route = r->net_mode == RCR_NET_ROUTE;
	struct rw_inf **inf = route ? &r->route_inf : &r->ingress_inf;
	char path[1024];
	struct rw_buf b;
	int n = 0, rv;
	if (!rw_raycluster_wants_ingress(j->c))
		return;
	if (r->net_mode == RCR_NET_PROBING) {
		rw_rec_requeue(&j->rec, 200); /* the Route probe has not answered yet */
		return;
	}
	if (!*inf) {
		const struct rw_inf_handlers h = rw_raycluster_ctl_owned_handlers(r);
		*inf = rw_mgr_informer(r->mgr, route ? &route_type : &ingress_type,
				       "ray.io/cluster", false, net_cluster_key, &h);
		if (!*inf) {
			rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot start the %s informer",
				    route ? "Route" : "Ingress");
			return;
		}
	}
	if (!rw_inf_synced(*inf)) {
		rw_rec_requeue(&j->rec, 200);
		return;
	}
	rw_inf_index_foreach(*inf, j->rec.key, count_cb, &n);
	if (n > 0)
		return; /* found (KubeRay leaves one, or several, alone) */
	rw_buf_init(&b, 4u << 20);
	rv = route ? rw_raycluster_build_route(j->c, &b) : rw_raycluster_build_ingress(j->c, &b);
	if (rv == 0) {
		snprintf(path, sizeof(path),
			 route ? "/apis/route.openshift.io/v1/namespaces/%s/routes"
			       : "/apis/networking.k8s.io/v1/namespaces/%s/ingresses",
			 j->rec.ns);
		rv = rw_raycluster_ctl_create(j, path, &b, route ? "Route" : "Ingress");
	}
	if (rv)
		rw_rec_fail(&j->rec, rv, NULL, "cannot create the head %s: %s",
			    route ? "Route" : "Ingress", strerror(-rv));
	rw_buf_fini(&b);
}

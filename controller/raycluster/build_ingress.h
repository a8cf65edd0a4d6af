/*
 * build_ingress.h - the head Ingress and, on OpenShift, the head Route that
 * expose a RayCluster's dashboard when headGroupSpec.enableIngress is true,
 * as KubeRay's common/ingress.go and common/route.go build them.
 * Implemented in build_ingress.c.
 */
#ifndef RW_BUILD_INGRESS_H
#define RW_BUILD_INGRESS_H

#include "build_common.h"

/*
 * Whether enableIngress makes OpenShift Routes (else Ingresses), decided once at start as
 * KubeRay's GetClusterType: USE_INGRESS_ON_OPENSHIFT exactly "true" means Ingresses, asked
 * nothing (rw_raycluster_route_probe_needed is false); otherwise Routes when the list of
 * route.openshift.io/v1 routes answered 200 (404: not served; any other answer, as KubeRay's
 * discovery error: Ingresses).
 */
bool rw_raycluster_route_probe_needed(const char *use_ingress_on_openshift);
bool rw_raycluster_use_routes(const char *use_ingress_on_openshift, long route_list_status);

/* headGroupSpec.enableIngress is true. */
bool rw_raycluster_wants_ingress(const struct rw_raycluster *c);

/* The dashboard port the Ingress and Route point at: the head container's port named
 * "dashboard", else 8265. */
int rw_raycluster_dashboard_port(const struct rw_raycluster *c);

/* CheckName(<cluster>-head-ingress). */
void rw_raycluster_ingress_name(const struct rw_raycluster *c, char *out, size_t outlen);

/* CheckRouteName(<cluster>-head-route, namespace): cut to 51 - len(namespace) so that the
 * router's host <route>-<namespace>.<domain> keeps its first label within 63, then CheckName. */
void rw_raycluster_route_name(const struct rw_raycluster *c, char *out, size_t outlen);

/*
 * networking.k8s.io/v1 Ingress <cluster>-head-ingress: labels ray.io/cluster,
 * ray.io/identifier, app.kubernetes.io/name and created-by; the cluster's
 * annotations except kubernetes.io/ingress.class, whose value becomes
 * spec.ingressClassName; one rule, path /<cluster>/(.*) (Exact) to the head
 * service's dashboard port; controlled by the cluster. -EINVAL without a head.
 */
int rw_raycluster_build_ingress(const struct rw_raycluster *c, struct rw_buf *out);

/*
 * route.openshift.io/v1 Route <cluster>-head-route: the same labels, all of
 * the cluster's annotations, to the head service (weight 100) on the
 * dashboard port, wildcardPolicy None; controlled by the cluster.
 */
int rw_raycluster_build_route(const struct rw_raycluster *c, struct rw_buf *out);

#endif

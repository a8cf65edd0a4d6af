/*
 * build_service.h - the head, serve and headless worker Services as KubeRay's
 * common/service.go builds them. Implemented in build_service.c.
 */
#ifndef RW_BUILD_SERVICE_H
#define RW_BUILD_SERVICE_H

#include "build_common.h"

int rw_raycluster_build_head_service(const struct rw_raycluster *c,
				     const struct rw_raycluster_opts *o, struct rw_buf *out);

/* The object that owns a head Service built for another kind (below). */
struct rw_raycluster_owner {
	const char *api_version; /* NULL: ray.io/v1 */
	const char *kind;	 /* "RayService", "RayJob" */
	const char *name, *uid, *ns;
};

/*
 * A head Service that points at cluster c's head for its owner, so the name
 * stays stable while the owner moves to another cluster (KubeRay's
 * BuildHeadServiceForRayService and BuildHeadServiceForRayJob): c's head
 * service as rw_raycluster_build_head_service makes it without
 * headServiceAnnotations (same selector, ports, type, headless by default,
 * a custom headService honoured), named name in owner->ns, its labels
 * replaced by ray.io/originated-from-cr-name=<owner>,
 * ray.io/originated-from-crd=<kind>, ray.io/node-type=head and
 * ray.io/identifier=CheckLabel(<owner>-head), controlled by owner.
 * -EINVAL when c has no headGroupSpec.
 */
int rw_raycluster_build_owned_head_service(const struct rw_raycluster *c,
					   const struct rw_raycluster_opts *o,
					   const struct rw_raycluster_owner *owner,
					   const char *name, struct rw_buf *out);
/* Serve service: -ENOENT when the head has no port named "serve". */
bool rw_raycluster_wants_serve_service(const struct rw_raycluster *c);
int rw_raycluster_build_serve_service(const struct rw_raycluster *c,
				      const struct rw_raycluster_opts *o, struct rw_buf *out);
/* Headless worker service, wanted when any group has numOfHosts > 1. */
bool rw_raycluster_wants_headless_service(const struct rw_raycluster *c);
int rw_raycluster_build_headless_service(const struct rw_raycluster *c, struct rw_buf *out);

#endif

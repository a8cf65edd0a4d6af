/*
 * build_service.h - the head, serve and headless worker Services as KubeRay's
 * common/service.go builds them. Implemented in build_service.c.
 */
#ifndef RW_BUILD_SERVICE_H
#define RW_BUILD_SERVICE_H

#include "build_common.h"

int rw_raycluster_build_head_service(const struct rw_raycluster *c,
				     const struct rw_raycluster_opts *o, struct rw_buf *out);
/* Serve service: -ENOENT when the head has no port named "serve". */
bool rw_raycluster_wants_serve_service(const struct rw_raycluster *c);
int rw_raycluster_build_serve_service(const struct rw_raycluster *c,
				      const struct rw_raycluster_opts *o, struct rw_buf *out);
/* Headless worker service, wanted when any group has numOfHosts > 1. */
bool rw_raycluster_wants_headless_service(const struct rw_raycluster *c);
int rw_raycluster_build_headless_service(const struct rw_raycluster *c, struct rw_buf *out);

#endif

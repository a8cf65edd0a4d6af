/*
 * build_rbac.h - the autoscaler's ServiceAccount, Role and RoleBinding as
 * KubeRay's common/rbac.go builds them. Implemented in build_rbac.c.
 */
#ifndef RW_BUILD_RBAC_H
#define RW_BUILD_RBAC_H

#include "build_common.h"

/* Autoscaler RBAC (wanted when enableInTreeAutoscaling). */
int rw_raycluster_build_service_account(const struct rw_raycluster *c, struct rw_buf *out);
int rw_raycluster_build_role(const struct rw_raycluster *c, struct rw_buf *out);
int rw_raycluster_build_role_binding(const struct rw_raycluster *c, struct rw_buf *out);

#endif

/*
 * rc_validate.h - RayCluster validation with KubeRay's messages
 * (utils/validation.go: ValidateRayClusterStatus, ValidateRayClusterMetadata,
 * ValidateRayClusterSpec, ValidateRayClusterUpgradeOptions) and feature gates
 * at KubeRay's defaults. An invalid cluster gets a Warning Event with the
 * reason below and is not reconciled further; nothing is created for it.
 */
#ifndef RW_RAYCLUSTER_VALIDATE_H
#define RW_RAYCLUSTER_VALIDATE_H

#include "rc_build.h"

#define RW_RAYCLUSTER_MAX_VERR 4

struct rw_raycluster_verr {
	const char *reason; /* InvalidRayClusterStatus / InvalidRayClusterMetadata /
			       InvalidRayClusterSpec */
	char msg[768];
};

/* At most one error per validator, in KubeRay's order (status, metadata, spec, upgrade). */
struct rw_raycluster_verrs {
	int n;
	struct rw_raycluster_verr e[RW_RAYCLUSTER_MAX_VERR];
};

/* Validate c; returns the number of errors (0 = valid). */
int rw_raycluster_validate(const struct rw_raycluster *c, struct rw_raycluster_verrs *out);

/*
 * The allocator validation uses (malloc). A test hook: tests point it at a
 * failing allocator to reach the out-of-memory error.
 */
extern void *(*rw_raycluster_validate_malloc)(size_t size);

/* k8s IsDNS1035Label; on failure writes Go's error list text ("[...]") to msg. */
bool rw_raycluster_dns1035(const char *s, char *msg, size_t msglen);

#endif

/*
 * rc_build.h - pure RayCluster builders: from a RayCluster (JSON as the API
 * server returns it) and options to the Kubernetes objects KubeRay would
 * create (head and worker Pods, head/headless/serve Services, autoscaler
 * ServiceAccount/Role/RoleBinding, head Ingress or Route), plus the raywarden agent sidecar, and
 * the scaling decisions of KubeRay's reconcilePods. No I/O anywhere: every function maps inputs to
 * JSON text or plain values, so all of it is table-tested (tests/unit/test_rc_*.c) and fuzzed
 * (tests/fuzz/fuzz_rc_build.c).
 *
 * The code lives one file per seam, as KubeRay's common/ package splits it:
 *   build_common.{h,c}   options, the parsed cluster, names, predicates, spec hash
 *   build_pod.{h,c}      head/worker Pods and `ray start` (common/pod.go)
 *   build_agent.c        the raywarden agent sidecar in those Pods
 *   build_service.{h,c}  head/serve/headless Services (common/service.go)
 *   build_rbac.{h,c}     autoscaler RBAC (common/rbac.go)
 *   build_ingress.{h,c}  head Ingress / OpenShift Route (common/ingress.go, route.go)
 *   scaling.{h,c}        reconcilePods' scaling decisions
 *   build_internal.h     helpers shared by these files only
 * This header declares all of it, for callers that want the whole set.
 *
 * Reference: KubeRay ray-operator controllers/ray/common/{pod,service,rbac}.go,
 * utils/util.go and raycluster_controller.go (see docs/kuberay-compatibility.md
 * for what matches byte for byte and what differs).
 */
#ifndef RW_RAYCLUSTER_BUILD_H
#define RW_RAYCLUSTER_BUILD_H

#include "build_common.h"
#include "build_ingress.h"
#include "build_pod.h"
#include "build_rbac.h"
#include "build_service.h"
#include "scaling.h"

#endif

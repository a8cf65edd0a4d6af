/*
 * raycluster.h - the RayCluster reconciler (rw_raycluster_ctl_*): wires the informers,
 * the work queue, the expectations, the pure builders (rc_build.h), status
 * (rc_status.h), validation (rc_validate.h), the agent hub (hub.h), the agent
 * keys (agentkey.h) and the Redis cleanup (redis_cleanup.h) into KubeRay's
 * RayCluster reconcile, all asynchronous on the controller's loop.
 *
 * One reconcile per cluster key ("namespace/name") at a time, many clusters
 * at once. A reconcile runs these steps and stops at the first failing one
 * (then still computes and writes the status, and is retried with the work
 * queue's back-off): validation, the GCS FT finalizer, the autoscaler RBAC
 * objects, the agent key Secret, the head/headless/serve Services, the pods
 * (head and worker groups, under expectations), and the status (written only
 * when it changed). Deletion with the GCS FT finalizer deletes the pods, waits
 * for the head pod to go, cleans Redis and releases the finalizer, at the
 * latest after the deadline (--gcs-ft-cleanup-deadline).
 *
 * The agent hub's reports (the manager's hub, agents.h) set each pod's
 * ray.io/agent-ready condition (the readiness gate) through pods/status. See docs/controller.md,
 * section "RayCluster reconciler".
 */
#ifndef RW_RAYCLUSTER_H
#define RW_RAYCLUSTER_H

#include "hub.h"
#include "manager.h"
#include "rw/wire.h"

/* The reconciler, for main.c's controller table. */
extern const struct rw_mgr_controller rw_raycluster_controller;

/* The finalizer guarding the Redis cleanup of GCS fault-tolerant clusters. */
#define RW_RAYCLUSTER_CTL_FT_FINALIZER "ray.io/gcs-ft-redis-cleanup-finalizer"

/* The readiness-gate condition reasons written on pods. */
#define RW_RAYCLUSTER_CTL_GATE_READY "AgentReady"
#define RW_RAYCLUSTER_CTL_GATE_NOT_READY "AgentNotReady"

/* The pod label (or namespace label) that asks for the agent in pods of another operator. */
#define RW_RAYCLUSTER_INJECT_LABEL "raywarden.io/inject-agent"

struct rw_raycluster_opts;

/*
 * The pod builder's options from the controller's configuration and KubeRay's
 * environment variables: agent image, resources, probes, and, when the agent
 * hub runs (--agent-key-file and --agent-listen), the address the agents
 * report to (advertise, advlen bytes) and the readiness gate; without a hub
 * the agents run standalone. Shared by the reconciler and the agent
 * injection webhook, so an injected agent is the one raywarden's own pods
 * get. 0, or -EINVAL with why.
 */
int rw_raycluster_opts_from_config(const struct rw_mgr_config *cfg, const char *ns,
				   struct rw_raycluster_opts *o, char *advertise, size_t advlen,
				   char *why, size_t whylen);

#endif

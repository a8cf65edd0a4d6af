/*
 * raycluster.h - the RayCluster reconciler (rw_rcr_*): wires the informers,
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
 * The agent hub's reports set each pod's ray.io/agent-ready condition (the
 * readiness gate) through pods/status. See docs/controller.md, section
 * "RayCluster reconciler".
 */
#ifndef RW_RAYCLUSTER_H
#define RW_RAYCLUSTER_H

#include "hub.h"
#include "manager.h"
#include "rw/wire.h"

/* The reconciler, for main.c's controller table. */
extern const struct rw_mgr_controller rw_rcr_controller;

/* The finalizer guarding the Redis cleanup of GCS fault-tolerant clusters. */
#define RW_RCR_FT_FINALIZER "ray.io/gcs-ft-redis-cleanup-finalizer"

/* The readiness-gate condition reasons written on pods. */
#define RW_RCR_GATE_READY "AgentReady"
#define RW_RCR_GATE_NOT_READY "AgentNotReady"

/*
 * Agent hooks. The hub lives in the RayCluster reconciler, which sets every
 * pod's readiness gate from its agent's reports. Another reconciler (the
 * RayService's, the RayJob's) registers hooks for the pods of RayClusters
 * whose controller owner is of kind `owner_kind` ("RayService", "RayJob"):
 * on_report and on_stale run after the gate handling, and reply fills the
 * pod's reply instead of "no change". Everything runs on the loop thread.
 * Any member may be NULL. At most RW_RCR_MAX_HOOKS kinds.
 */
struct rw_rcr_agent_hooks {
	void (*on_report)(const struct rw_report *now, const struct rw_report *old, void *ud);
	void (*on_stale)(const struct rw_report *last, void *ud);
	int (*reply)(const struct rw_report *r, struct rw_reply *out, void *ud);
	void *ud;
};

#define RW_RCR_MAX_HOOKS 4

/* Register (h not NULL) or remove (h NULL) the hooks of owner_kind. 0, -EINVAL or -ENOSPC. */
int rw_rcr_agent_hooks_set(const char *owner_kind, const struct rw_rcr_agent_hooks *h);

/* The agent hub (NULL when there is none: no master key, --agent-listen 0). */
struct rw_hub *rw_rcr_agent_hub(void);

#endif

/*
 * scaling.h - the scaling decisions of KubeRay's reconcilePods
 * (raycluster_controller.go): which head pod to create or delete, how many
 * workers per group, which pods are unhealthy. Pure, like the builders.
 * Implemented in scaling.c.
 */
#ifndef RW_RAYCLUSTER_SCALING_H
#define RW_RAYCLUSTER_SCALING_H

#include "build_common.h"

enum rw_raycluster_ntype {
	RW_RAYCLUSTER_NT_OTHER = 0,
	RW_RAYCLUSTER_NT_HEAD,
	RW_RAYCLUSTER_NT_WORKER
};

/* A compact view of one Pod (strings not owned; NULL = absent). */
struct rw_raycluster_pod {
	const char *name;
	const char *group; /* label ray.io/group */
	enum rw_raycluster_ntype type;
	const char *phase;	    /* status.phase */
	bool ready_cond;	    /* has a Ready condition */
	bool ready;		    /* Ready condition is True */
	const char *ready_reason;   /* Ready condition reason */
	const char *ready_message;  /* Ready condition message */
	const char *pod_ip;	    /* status.podIP */
	bool deleting;		    /* metadata.deletionTimestamp set */
	bool ray_terminated;	    /* the Ray container (index 0) is in state terminated */
	const char *restart_policy; /* spec.restartPolicy */
};

/* A pod summary that owns its strings (filled from Pod JSON). */
struct rw_raycluster_pod_buf {
	struct rw_raycluster_pod pod;
	char name[256], group[64], phase[32], reason[128], message[256], ip[64], restart[16];
};

/* Summarise Pod JSON. Returns 0 or -EINVAL. */
int rw_raycluster_pod_parse(const char *json, size_t len, struct rw_raycluster_pod_buf *out);

/* KubeRay's GetWorkerGroupDesiredReplicas: clamp(replicas,min,max) x numOfHosts, 0 if suspended. */
int32_t rw_raycluster_group_desired(const struct rw_raycluster *c, int group);
int32_t rw_raycluster_desired_workers(const struct rw_raycluster *c);
int32_t rw_raycluster_min_workers(const struct rw_raycluster *c);
int32_t rw_raycluster_max_workers(const struct rw_raycluster *c);

/* shouldDeletePod: reason (KubeRay's text) written when reason != NULL. */
bool rw_raycluster_should_delete_pod(const struct rw_raycluster_pod *p, bool head, char *reason,
				     size_t rlen);

enum rw_raycluster_head_action {
	RW_RAYCLUSTER_HEAD_OK = 0, /* one healthy head pod */
	RW_RAYCLUSTER_HEAD_CREATE, /* none: create one */
	RW_RAYCLUSTER_HEAD_DELETE, /* delete `name` (recreated on a later pass) */
	RW_RAYCLUSTER_HEAD_MANY	   /* more than one head pod: error, do nothing */
};

/*
 * Head pod decision from the cluster's pods (head pods are those of type
 * HEAD; pods being deleted still count, as in KubeRay's list).
 * `provisioned` is the RayClusterProvisioned condition; with the annotation
 * ray.io/disable-provisioned-head-restart=true a provisioned cluster's
 * failed head is left alone. *name points at the pod to delete.
 */
enum rw_raycluster_head_action rw_raycluster_plan_head(const struct rw_raycluster *c,
						       const struct rw_raycluster_pod *pods,
						       size_t npods, bool provisioned,
						       const char **name);

/* What to do with one worker group. Names point into pods[] or the spec. */
struct rw_raycluster_group_plan {
	const char **del; /* pods to delete, in order (malloc'd array) */
	size_t ndel;
	bool unhealthy; /* unhealthy pods deleted: KubeRay returns an error, no creates */
	int32_t create; /* pods to create */
	int32_t desired;
};

/*
 * KubeRay's per-group reconcilePods step: suspended group -> delete all;
 * unhealthy pods (shouldDeletePod) -> delete them and stop; otherwise delete
 * workersToDelete, then create the shortfall or delete the surplus (the
 * first pods in the given order) only when autoscaling is off or
 * ENABLE_RANDOM_POD_DELETE is set. A suspended cluster deletes every pod.
 */
int rw_raycluster_plan_group(const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
			     int group, const struct rw_raycluster_pod *pods, size_t npods,
			     struct rw_raycluster_group_plan *plan);
void rw_raycluster_group_plan_fini(struct rw_raycluster_group_plan *plan);

#endif

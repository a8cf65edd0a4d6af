/*
 * rc_status.h - RayCluster status calculation (KubeRay's calculateStatus with
 * the RayClusterStatusConditions gate on) from compact pod summaries, the
 * head service and the previous status, plus the "did it change" check the
 * reconciler uses to write the status only when needed.
 */
#ifndef RW_RAYCLUSTER_STATUS_H
#define RW_RAYCLUSTER_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quantity.h"
#include "rc_build.h"

struct rw_raycluster_svc_port {
	const char *name;
	int32_t node_port;	     /* 0 = none */
	int32_t target_port;	     /* 0 = none (or a named target port) */
	const char *target_port_str; /* named targetPort, or NULL */
};

/* The head service as listed (by label) from the API server. */
struct rw_raycluster_svc {
	const char *name;
	const char *cluster_ip; /* "None" for headless; "" while not allocated */
	const struct rw_raycluster_svc_port *ports;
	size_t nports;
};

#define RW_RAYCLUSTER_SVC_MAX_PORTS 64

/* A service summary that owns its strings (filled from Service JSON). */
struct rw_raycluster_svc_buf {
	struct rw_raycluster_svc svc;
	struct rw_raycluster_svc_port port[RW_RAYCLUSTER_SVC_MAX_PORTS];
	char name[256], ip[64];
	char pname[RW_RAYCLUSTER_SVC_MAX_PORTS][64], ptarget[RW_RAYCLUSTER_SVC_MAX_PORTS][64];
};

/* Summarise Service JSON (ports past RW_RAYCLUSTER_SVC_MAX_PORTS are ignored). 0 or -EINVAL. */
int rw_raycluster_svc_parse(const char *json, size_t len, struct rw_raycluster_svc_buf *out);

struct rw_raycluster_status_in {
	const struct rw_raycluster_pod *pods; /* every pod labelled ray.io/cluster=<name> */
	size_t npods;
	const struct rw_raycluster_svc *head_svc; /* NULL: not found */
	bool reconcile_failed;			  /* the reconcile pass returned an error */
	const char *failure_reason;  /* ReplicaFailure reason (FailedCreateHeadPod, ...) or NULL */
	const char *failure_message; /* the error text for the condition */
	const char *now;	     /* RFC 3339 UTC, e.g. "2026-01-02T03:04:05Z" */
};

/*
 * Compute the new status object of cluster c (its current status is the
 * previous one) and append it as JSON to out. Returns 0; -ENOENT when the
 * head service is missing or has no IP yet and -ENOTUNIQ for several head
 * pods (KubeRay skips the status update then; a message is written to err);
 * -ENOMEM.
 */
int rw_raycluster_status(const struct rw_raycluster *c, const struct rw_raycluster_status_in *in,
			 struct rw_buf *out, char *err, size_t errlen);

/*
 * Are two status objects (JSON text; empty/NULL = no status) equal ignoring
 * lastUpdateTime? Member order does not matter. Unparsable input is unequal.
 */
bool rw_raycluster_status_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Sum of the resources KubeRay reports as desiredCPU/Memory/GPU/TPU (canonical text). */
struct rw_raycluster_desired_res {
	char cpu[64], memory[64], gpu[64], tpu[64];
};
int rw_raycluster_desired_resources(const struct rw_raycluster *c,
				    struct rw_raycluster_desired_res *out);

/* A ResourceList summed with Quantity.Add, in first-seen order (the status and
   the batch schedulers' PodGroups and task groups). */
#define RW_RAYCLUSTER_RES_MAX 64
struct rw_raycluster_res {
	struct rw_qty q[RW_RAYCLUSTER_RES_MAX];
	char key[RW_RAYCLUSTER_RES_MAX][128];
	int n;
};

/* Add q under name (a name beyond RW_RAYCLUSTER_RES_MAX is dropped). 0 or -ERANGE. */
int rw_raycluster_res_add(struct rw_raycluster_res *s, const char *name, const struct rw_qty *q);

/* CalculatePodResource: each container's requests, its limits filling gaps, summed into out. */
void rw_raycluster_pod_res(const struct rw_doc_node *pod_spec, struct rw_raycluster_res *out);

#endif

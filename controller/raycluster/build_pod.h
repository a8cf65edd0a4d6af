/*
 * build_pod.h - head and worker Pods as KubeRay's common/pod.go builds them
 * (build_pod.c, which also renders `ray start`), with the raywarden agent
 * sidecar, its probes and the preStop drain hook (build_agent.c).
 */
#ifndef RW_BUILD_POD_H
#define RW_BUILD_POD_H

#include "build_common.h"

/* ---- ray start ---- */

/*
 * Render the `ray start` command KubeRay generates from rayStartParams (an
 * object of strings; copied, not modified) and the Ray container's
 * resources ({limits, requests}); both may be NULL. Appends to out.
 */
int rw_raycluster_ray_start(bool head, const struct rw_doc_node *params,
			    const struct rw_doc_node *resources, struct rw_buf *out);

/* ---- pods (JSON text appended to out; 0 or a negative errno) ---- */

/* Which worker replica slot a new worker Pod fills (MultiHostIndexing labels). */
struct rw_raycluster_slot {
	int replica_index;	  /* ray.io/worker-group-replica-index; < 0: no label */
	const char *replica_name; /* ray.io/worker-group-replica-name (numOfHosts > 1) */
	int host_index;		  /* ray.io/replica-host-index (numOfHosts > 1) */
};

int rw_raycluster_build_head_pod(const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
				 struct rw_buf *out);
int rw_raycluster_build_worker_pod(const struct rw_raycluster *c,
				   const struct rw_raycluster_opts *o, int group,
				   const struct rw_raycluster_slot *slot, struct rw_buf *out);

/* ---- the agent sidecar (build_agent.c) ---- */

/*
 * The RAYWARDEN_PROXY_READINESS value the agent of a pod gets: "ignore" for a
 * RayService worker whose cluster carries RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION
 * HeadOnly or Disabled while o->headonly_workers_ready is on and
 * o->proxy_readiness is "auto"; otherwise o->proxy_readiness ("auto" when unset).
 */
const char *rw_raycluster_agent_proxy_readiness(const struct rw_raycluster *c,
						const struct rw_raycluster_opts *o, bool head);

/*
 * The agent for a running head pod without one (KubeRay made it): a strategic
 * merge patch of the pod's ephemeralcontainers subresource, {"spec":
 * {"ephemeralContainers": [agent]}}. The agent is the sidecar's container
 * without what an ephemeral container may not have (ports, probes, resources,
 * lifecycle) and takes its key from the env (RAYWARDEN_KEY, secretKeyRef of
 * <cluster>-raywarden-key) since the pod has no key volume. Appended to out.
 * 0, or -EINVAL without a head template or a controller address, or -ENOMEM.
 */
int rw_raycluster_build_ephemeral_agent(const struct rw_raycluster *c,
					const struct rw_raycluster_opts *o, struct rw_buf *out);

/* What the decision below knows of a cluster's head pod (from the pod cache). */
struct rw_raycluster_head_agent {
	bool exists;		  /* the cluster has a head pod */
	bool deleting;		  /* it has a deletionTimestamp */
	bool phase_ended;	  /* Succeeded or Failed */
	bool has_agent;		  /* an agent container or agent ephemeral container */
	bool key_ready;		  /* the key Secret <cluster>-raywarden-key exists */
	const char *uid;	  /* its metadata.uid */
	const char *attached_uid; /* the pod uid the ephemeral agent was last sent for */
};

/*
 * Attach the ephemeral agent to this head now? Only with agents on and a
 * controller to report to, to a live head that has no agent of either kind,
 * and once per pod (an ephemeral container cannot be removed or changed).
 */
bool rw_raycluster_ephemeral_agent_wanted(const struct rw_raycluster_opts *o,
					  const struct rw_raycluster_head_agent *h);

#endif

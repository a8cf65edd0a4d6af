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

#endif

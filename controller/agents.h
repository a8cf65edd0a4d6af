/*
 * agents.h - the manager's side of the agent hub (hub.h): the hub's start
 * and stop, its metrics, the admission of reports against the shared Ray
 * pod informer, and the dispatch of reports to the kinds that own the pods.
 *
 * The manager creates it in rw_mgr_start, before the reconcilers' setup, when
 * agents are injected, a master key is configured and --agent-listen is not
 * "0" (rw_mgr_agents then returns it; NULL otherwise), and frees it after
 * their teardown. So no reconciler starts or owns the hub and their order in
 * main.c does not matter.
 *
 * A kind registers hooks for the reports of the pods it owns, by owner kind:
 *   "RayCluster"  every Ray pod the hub hears from (every pod is a
 *                 RayCluster's): the RayCluster reconciler's readiness gate;
 *   other kinds   the pods of RayClusters whose controller owner is of that
 *                 kind ("RayService", "RayJob"), read from the shared
 *                 RayCluster informer.
 * on_report and on_stale run for each match, "RayCluster" first; reply comes
 * from the most specific match (the owner kind's, else "RayCluster"'s, else
 * "no change"). Everything runs on the loop thread.
 */
#ifndef RW_AGENTS_H
#define RW_AGENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "hub.h"
#include "informer.h"
#include "rw/wire.h"

struct rw_mgr;
struct rw_agents;

/* Any member may be NULL. */
struct rw_agents_hooks {
	void (*on_report)(const struct rw_report *now, const struct rw_report *old, void *ud);
	void (*on_stale)(const struct rw_report *last, void *ud);
	int (*reply)(const struct rw_report *r, struct rw_reply *out, void *ud);
	void *ud;
	/*
	 * Also for the pods of clusters this kind does not own (a RayJob's
	 * clusterSelector names any cluster): on_report and on_stale run after
	 * the owner's, and reply runs after the owner's reply (or the every-pod
	 * one) on the same out, adding its own fields.
	 */
	bool every_cluster;
};

/* The owner kind that matches every Ray pod. */
#define RW_AGENTS_EVERY_POD "RayCluster"

/* Should the manager run the hub under this configuration? */
struct rw_mgr_config;
bool rw_agents_wanted(const struct rw_mgr_config *cfg);

/* Start the hub on cfg->agent_listen (with the manager's pod and RayCluster informers). */
int rw_agents_new(struct rw_mgr *m, struct rw_agents **out, char *err, size_t errlen);

/* Close the hub and its connections. NULL-safe. */
void rw_agents_free(struct rw_agents *a);

/* Start accepting agents' connections: the hub only binds its port until
 * this process leads (standby replicas refuse agents, who redial through the
 * Service until they reach the leader). 0, or a negative errno. */
int rw_agents_serve(struct rw_agents *a);

/* The hub (NULL when a is NULL): keys (rw_hub_key_add), per-pod and per-cluster state. */
struct rw_hub *rw_agents_hub(const struct rw_agents *a);

/* Register (h not NULL) or remove (h NULL) the hooks of owner_kind. 0, -EINVAL or -ENOSPC. */
int rw_agents_register(struct rw_agents *a, const char *owner_kind,
		       const struct rw_agents_hooks *h);

/* ---- pure parts (exported for tests) ---- */

#define RW_AGENTS_MAX_KINDS 6

/* The hooks registered per owner kind. Zero-initialised is empty. */
struct rw_agents_kinds {
	struct {
		char kind[32];
		struct rw_agents_hooks h;
	} k[RW_AGENTS_MAX_KINDS];
};

/*
 * The every_cluster hooks besides owner (the owner kind's hooks, or NULL)
 * and the every-pod kind's, in registration order: they run after those
 * for any cluster. Returns how many were written to out.
 */
int rw_agents_kinds_extra(const struct rw_agents_kinds *t, const struct rw_agents_hooks *owner,
			  const struct rw_agents_hooks *out[RW_AGENTS_MAX_KINDS]);

/* Register, replace (h) or remove (h NULL) kind's hooks. 0, -EINVAL or -ENOSPC. */
int rw_agents_kinds_set(struct rw_agents_kinds *t, const char *kind,
			const struct rw_agents_hooks *h);

/* The hooks of kind, or NULL. */
const struct rw_agents_hooks *rw_agents_kinds_get(const struct rw_agents_kinds *t,
						  const char *kind);

/* The kind of a RayCluster's controller ownerReference (its JSON text) into out ("" none). */
void rw_agents_owner_kind(const char *json, size_t len, char *out, size_t outlen);

/*
 * The hub's admission of a report for pod p (the pod cache's object, NULL
 * when absent) under the key of cluster: 0, -EAGAIN (not known yet, or
 * another UID: the agent resends, no penalty) or -EPERM (the pod belongs to
 * another cluster), with the reason in why.
 */
int rw_agents_admit_decide(const struct rw_inf_pod *p, bool synced, const char *cluster,
			   const char *uid, char *why, size_t whylen);

#endif

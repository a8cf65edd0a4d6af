/*
 * rcr_gate.c - the RayCluster reconciler's readiness gate. When a pod's
 * agent reports a readiness verdict that differs from the pod's
 * ray.io/agent-ready condition, the condition is patched through
 * pods/status (strategic merge on conditions by type, lastTransitionTime
 * only when the status flips; the request skips the client's QPS queue,
 * like leader election, so a burst of pod creations cannot delay it).
 *
 * The patches go through the bounded per-pod writer (podpatch.h): one per
 * pod in flight, at most GATE_INFLIGHT in all, the others waiting in a FIFO
 * and synced from the newest report when their turn comes. So 10,000 agents
 * starting at once cost a queue, not 10,000 concurrent requests that swamp
 * the API server and starve the Lease renewal (which also skips the queue).
 *
 * The hub belongs to the manager (agents.h); the gate registers for the
 * reports of every Ray pod (RW_AGENTS_EVERY_POD).
 *
 * Staleness: an agent that stops reporting does not flip the gate. A
 * controller-agent network problem must not take healthy pods out of
 * service; the kubelet's own readiness probe (served by the agent from its
 * local probes) still removes a pod whose Ray node fails. A stale agent gets
 * a Warning Event on its pod and is counted in the metrics.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcr.h"
#include "rw/clock.h"
#include "rw/log.h"

#define LOGC "agent-gate"

#define GATE_INFLIGHT 32

void
rw_raycluster_ctl_gate_metrics(struct rcr *r)
{
	struct rw_met *m = r->met;
	static const double lat_b[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
				       0.1,   0.25,  0.5,   1,	  2.5};
	r->m_gate = rw_met_counter(m, "raywarden_agent_gate_patches_total",
				   "ray.io/agent-ready condition patches, by result.",
				   (const char *const[]){"status", "result", NULL});
	r->m_gate_lat =
	    rw_met_histogram(m, "raywarden_agent_gate_patch_seconds",
			     "Time from an agent report to its pods/status patch answered.", NULL,
			     lat_b, (int)(sizeof(lat_b) / sizeof(lat_b[0])));
	static const double gate_b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					0.5,   1,    2.5,   5,	  10,  30};
	r->m_report_gate = rw_met_histogram(
	    m, "raywarden_agent_report_to_gate_seconds",
	    "Time from an agent report that changes what a pod's ray.io/agent-ready condition "
	    "should say to that condition's patch answered.",
	    NULL, gate_b, (int)(sizeof(gate_b) / sizeof(gate_b[0])));
}

/* ---- the gate's side of the per-pod writer ---- */

static bool
gate_want(void *ud, const struct rw_inf_pod *p, struct rw_pp_val *want, struct rw_pp_val *cached)
{
	struct rcr *r = ud;
	const struct rw_report *rep;
	int stale = 0;
	if (!r->hub || r->closing || !r->opts.readiness_gate || !rw_mgr_is_leader(r->mgr))
		return false; /* only the leader writes */
	if (p->meta.deleted || (strcmp(p->node_type, "head") && strcmp(p->node_type, "worker")))
		return false;
	rep = rw_hub_pod(r->hub, p->meta.ns, p->meta.name, &stale);
	if (!rep || strcmp(rep->uid, p->meta.uid) != 0)
		return false;
	want->state = rep->ready ? RW_COND_TRUE : RW_COND_FALSE;
	snprintf(want->msg, sizeof(want->msg), "%s", rep->ready ? "" : rep->ready_reason);
	cached->state = p->agent_ready;
	snprintf(cached->msg, sizeof(cached->msg), "%s", p->agent_message);
	return true;
}

static int
gate_build(void *ud, const struct rw_inf_pod *p, const struct rw_pp_val *v, bool flip,
	   struct rw_kube_req *kr, struct rw_buf *body)
{
	struct rw_jw w;
	char now[32];
	(void)ud;
	(void)p;
	(void)kr;
	rw_jw_init(&w, body);
	rw_jw_obj_begin(&w);
	rw_jw_key(&w, "status");
	rw_jw_obj_begin(&w);
	rw_jw_key(&w, "conditions");
	rw_jw_arr_begin(&w);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "type", RW_RAYCLUSTER_AGENT_GATE);
	rw_jw_kstr(&w, "status", v->state == RW_COND_TRUE ? "True" : "False");
	rw_jw_kstr(&w, "reason",
		   v->state == RW_COND_TRUE ? RW_RAYCLUSTER_CTL_GATE_READY
					    : RW_RAYCLUSTER_CTL_GATE_NOT_READY);
	rw_jw_kstr(&w, "message", v->msg);
	if (flip) {
		rw_time_now_rfc3339(now);
		rw_jw_kstr(&w, "lastTransitionTime", now);
	}
	rw_jw_obj_end(&w);
	rw_jw_arr_end(&w);
	rw_jw_obj_end(&w);
	rw_jw_obj_end(&w);
	return rw_jw_finish(&w) != 0 ? -ENOMEM : 0;
}

static void
gate_answered(void *ud, const char *key, const struct rw_pp_val *v, const struct rw_kube_resp *resp,
	      bool ok, uint64_t t_want, uint64_t t_sent)
{
	struct rcr *r = ud;
	const char *st = v->state == RW_COND_TRUE ? "True" : "False";
	uint64_t now = uv_hrtime();
	(void)resp;
	rw_met_add(r->m_gate, (const char *const[]){st, ok ? "ok" : "error"}, 1);
	rw_met_observe(r->m_gate_lat, NULL, (double)(now - t_sent) / 1e9);
	if (ok && t_want)
		rw_met_observe(r->m_report_gate, NULL, (double)(now - t_want) / 1e9);
	if (ok)
		/* The two parts of report -> gate the controller owns, for tracing a tail
		 * (tests/bench/controller-aggregation parses this line). */
		rw_debug(LOGC, "%s: ray.io/agent-ready=%s (waited %.1f ms, patch %.1f ms)", key, st,
			 t_want ? (double)(t_sent - t_want) / 1e6 : 0.0,
			 (double)(now - t_sent) / 1e6);
}

/* A failed patch: the owning cluster's reconcile syncs every gate again. */
static void
gate_retry(void *ud, const struct rw_inf_pod *p)
{
	struct rcr *r = ud;
	char key[512];
	if (!p->cluster[0] || !r->wq)
		return;
	snprintf(key, sizeof(key), "%s/%s", p->meta.ns, p->cluster);
	rw_wq_add_after(r->wq, key, 1000);
}

/*
 * Make the pod's ray.io/agent-ready condition match its agent's latest
 * report. Called on every pod event, on every changed report, and for each
 * pod at the end of its cluster's reconcile. Only the leader writes.
 */
void
rw_raycluster_ctl_gate_sync(struct rcr *r, const struct rw_inf_pod *p)
{
	rw_pp_sync(r->gate_pp, p);
}

void
rw_raycluster_ctl_gate_forget(struct rcr *r, const struct rw_inf_pod *p)
{
	rw_pp_forget(r->gate_pp, p);
}

/* ---- hub hooks (every Ray pod's reports) ---- */

static void
hk_report(const struct rw_report *now, const struct rw_report *old, void *ud)
{
	struct rcr *r = ud;
	const struct rw_inf_pod *p = rw_inf_get(r->pod_inf, now->ns, now->pod);
	(void)old;
	if (p)
		rw_raycluster_ctl_gate_sync(r, p);
}

static void
hk_stale(const struct rw_report *last, void *ud)
{
	struct rcr *r = ud;
	/* At most 10 lines a second (a mass disconnect is thousands of pods;
	 * the hub logs the count). */
	uint64_t sec = uv_now(r->loop) / 1000;
	if (sec != r->stale_log_sec) {
		r->stale_log_sec = sec;
		r->stale_log_n = 0;
	}
	if (r->stale_log_n++ < 10)
		rw_warn(LOGC, "%s/%s: agent silent; readiness gate left as it is", last->ns,
			last->pod);
	if (!rw_mgr_is_leader(r->mgr) || !rw_inf_get(r->pod_inf, last->ns, last->pod))
		return;
	struct rw_ev_ref ref = {"v1", "Pod", last->ns, last->pod, last->uid};
	rw_ev_emit(r->ev, &ref, 1, "AgentStale", "Monitor",
		   "The raywarden agent has stopped reporting to the controller; the %s "
		   "condition keeps its last value (%s) and the kubelet's readiness probe "
		   "still applies",
		   RW_RAYCLUSTER_AGENT_GATE, last->ready ? "True" : "False");
}

int
rw_raycluster_ctl_gate_setup(struct rcr *r)
{
	struct rw_pp_ops ops = {gate_want,  gate_build, gate_answered,
				gate_retry, "status",	"application/strategic-merge-patch+json"};
	struct rw_agents_hooks hk = {hk_report, hk_stale, NULL, r, false};
	int rv;
	if (!r->agents)
		return 0;
	rv = rw_pp_new(rw_mgr_kube(r->mgr), r->pod_inf, "ray.io/agent-ready", GATE_INFLIGHT, &ops,
		       r, &r->gate_pp);
	if (rv == 0)
		rv = rw_agents_register(r->agents, RW_AGENTS_EVERY_POD, &hk);
	return rv;
}

void
rw_raycluster_ctl_gate_fini(struct rcr *r)
{
	if (r->agents)
		rw_agents_register(r->agents, RW_AGENTS_EVERY_POD, NULL);
	rw_pp_free(r->gate_pp);
	r->gate_pp = NULL;
	r->hub = NULL;
}

/*
 * rcr_gate.c - the RayCluster reconciler's side of the agent hub: the
 * readiness gate. When a pod's agent reports a readiness verdict that differs
 * from the pod's ray.io/agent-ready condition, the condition is patched
 * through pods/status at once (strategic merge on conditions by type; the
 * request skips the client's QPS queue, like leader election, so a burst of
 * pod creations cannot delay it). One patch per pod is in flight at a time;
 * a newer verdict that arrives meanwhile is sent when it completes.
 *
 * At most GATE_INFLIGHT gate patches are in flight in all: when every slot
 * is taken, the pod's gate waits in a FIFO (once, however many reports
 * arrive meanwhile) and, when a slot frees, is synced from the newest report
 * then (newest state wins; a pod that flipped and flipped back costs
 * nothing). So 10,000 agents starting at once cost a queue, not 10,000
 * concurrent requests that swamp the API server and starve the Lease
 * renewal (which also skips the QPS queue).
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
#include "rw/log.h"

#define LOGC "agent-gate"

#define GATE_INFLIGHT 32

struct rcr_gate {
	struct rcr_gate *qprev, *qnext; /* in r->gq_* while queued */
	bool queued;
	char uid[64];
	int sent; /* last value written by us (enum rw_inf_cond), 0 unknown */
	char sent_msg[256];
	int pend;
	char pend_msg[256];
	bool inflight, again, dead;
	/* uv_hrtime() when the pod first differed from its report (0: it does not), and when a
	 * report arrived while a patch was in flight; both only for the debug trace. */
	uint64_t t_want, t_again;
	char key[512];
};

void
rw_rcr_gate_metrics(struct rcr *r)
{
	struct rw_met *m = r->met;
	static const double lat_b[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
				       0.1,   0.25,  0.5,   1,	  2.5};
	r->m_agents = rw_met_gauge(m, "raywarden_agents_connected",
				   "Agents that reported within the staleness period.", NULL);
	r->m_agent_pods = rw_met_gauge(m, "raywarden_agent_pods",
				       "Pods known to the agent hub (stale ones included).", NULL);
	r->m_reports = rw_met_counter(m, "raywarden_agent_reports_total",
				      "Fresh agent reports accepted.", NULL);
	r->m_changes = rw_met_counter(m, "raywarden_agent_report_changes_total",
				      "Agent reports that changed a pod's state.", NULL);
	r->m_refused = rw_met_counter(m, "raywarden_agent_refusals_total",
				      "Agent messages refused, by reason.",
				      (const char *const[]){"reason", NULL});
	r->m_hub_closed = rw_met_counter(m, "raywarden_agent_connections_closed_total",
					 "Agent hub connections closed by the hub, by reason.",
					 (const char *const[]){"reason", NULL});
	r->m_hub_conns =
	    rw_met_gauge(m, "raywarden_agent_connections", "Open agent hub connections.", NULL);
	r->m_hub_partial = rw_met_gauge(m, "raywarden_agent_partial_bytes",
					"Bytes held for partially received agent frames.", NULL);
	r->m_hub_pod_bytes = rw_met_gauge(m, "raywarden_agent_pod_record_bytes",
					  "Memory of the agent hub's pod records.", NULL);
	r->m_stale = rw_met_counter(m, "raywarden_agent_stale_total",
				    "Times an agent went silent for the staleness period.", NULL);
	r->m_gate = rw_met_counter(m, "raywarden_agent_gate_patches_total",
				   "ray.io/agent-ready condition patches, by result.",
				   (const char *const[]){"status", "result", NULL});
	r->m_gate_lat =
	    rw_met_histogram(m, "raywarden_agent_gate_patch_seconds",
			     "Time from an agent report to its pods/status patch answered.", NULL,
			     lat_b, (int)(sizeof(lat_b) / sizeof(lat_b[0])));
}

static void gate_send(struct rcr *r, struct rcr_gate *g, const struct rw_inf_pod *p, int want,
		      const char *msg, bool flip);

static void
gate_free(void *p)
{
	free(p);
}

static void
gq_push(struct rcr *r, struct rcr_gate *g)
{
	if (g->queued)
		return;
	g->queued = true;
	g->qnext = NULL;
	g->qprev = r->gq_tail;
	if (r->gq_tail)
		r->gq_tail->qnext = g;
	else
		r->gq_head = g;
	r->gq_tail = g;
}

static void
gq_unlink(struct rcr *r, struct rcr_gate *g)
{
	if (!g->queued)
		return;
	if (g->qprev)
		g->qprev->qnext = g->qnext;
	else
		r->gq_head = g->qnext;
	if (g->qnext)
		g->qnext->qprev = g->qprev;
	else
		r->gq_tail = g->qprev;
	g->qprev = g->qnext = NULL;
	g->queued = false;
}

/* Sync the gate of pod "ns/name" from the informer's copy. */
static void
resync(struct rcr *r, const char *key)
{
	char ns[256], name[256];
	const char *sl = strchr(key, '/');
	const struct rw_inf_pod *p;
	if (!sl)
		return;
	snprintf(ns, sizeof(ns), "%.*s", (int)(sl - key), key);
	snprintf(name, sizeof(name), "%s", sl + 1);
	p = rw_inf_get(r->pod_inf, ns, name);
	if (p)
		rw_rcr_gate_sync(r, p);
}

static void
gate_done(struct rcr *r, struct rcr_gate *g, struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	bool ok = rw_rec_ok(resp->status);
	const char *st = g->pend == RW_COND_TRUE ? "True" : "False";
	g->inflight = false;
	rw_met_add(r->m_gate, (const char *const[]){st, ok ? "ok" : "error"}, 1);
	rw_met_observe(r->m_gate_lat, NULL, (double)(uv_hrtime() - q->t0) / 1e9);
	if (g->dead) {
		/* The pod was deleted meanwhile; a new pod of that name may want a sync. */
		char key[512];
		bool again = g->again;
		snprintf(key, sizeof(key), "%s", g->key);
		gq_unlink(r, g);
		rw_kmap_del(&r->gates, key);
		free(g);
		if (again)
			resync(r, key);
		return;
	}
	if (ok) {
		g->sent = g->pend;
		snprintf(g->sent_msg, sizeof(g->sent_msg), "%s", g->pend_msg);
		/* The two parts of report -> gate the controller owns, for tracing a tail. */
		rw_debug(LOGC, "%s: ray.io/agent-ready=%s (waited %.1f ms, patch %.1f ms)", g->key,
			 st, g->t_want ? (double)(q->t0 - g->t_want) / 1e6 : 0.0,
			 (double)(uv_hrtime() - q->t0) / 1e6);
		g->t_want = g->t_again;
		g->t_again = 0;
	} else {
		g->sent = 0; /* compare with the cached pod again */
		if (resp->status == 404) {
			rw_kmap_del(&r->gates, g->key);
			free(g);
			return;
		}
		rw_warn(LOGC, "%s: patching ray.io/agent-ready failed: HTTP %ld %s", g->key,
			resp->status, resp->message);
		/* Retry through the owning cluster's reconcile, which syncs every gate. */
		const struct rw_inf_pod *p = NULL;
		char ns[256], name[256];
		const char *sl = strchr(g->key, '/');
		if (sl) {
			snprintf(ns, sizeof(ns), "%.*s", (int)(sl - g->key), g->key);
			snprintf(name, sizeof(name), "%s", sl + 1);
			p = rw_inf_get(r->pod_inf, ns, name);
		}
		if (p && p->cluster[0] && r->wq) {
			char key[512];
			snprintf(key, sizeof(key), "%s/%s", p->meta.ns, p->cluster);
			rw_wq_add_after(r->wq, key, 1000);
		}
		g->again = false;
		return;
	}
	if (g->again) {
		g->again = false;
		resync(r, g->key);
	}
}

static void
gate_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr *r = q->r;
	if (r->gate_inflight > 0)
		r->gate_inflight--;
	gate_done(r, q->ptr, q, resp);
	/* Hand the free slots to the waiting gates, oldest first. */
	while (r->gq_head && r->gate_inflight < GATE_INFLIGHT && !r->closing) {
		struct rcr_gate *g = r->gq_head;
		char key[512];
		gq_unlink(r, g);
		snprintf(key, sizeof(key), "%s", g->key);
		resync(r, key);
	}
}

static void
gate_send(struct rcr *r, struct rcr_gate *g, const struct rw_inf_pod *p, int want, const char *msg,
	  bool flip)
{
	struct rw_buf body;
	struct rw_jw w;
	char path[1024], now[32];
	rw_buf_init(&body, 16 * 1024);
	rw_jw_init(&w, &body);
	rw_jw_obj_begin(&w);
	rw_jw_key(&w, "status");
	rw_jw_obj_begin(&w);
	rw_jw_key(&w, "conditions");
	rw_jw_arr_begin(&w);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "type", RW_RC_AGENT_GATE);
	rw_jw_kstr(&w, "status", want == RW_COND_TRUE ? "True" : "False");
	rw_jw_kstr(&w, "reason", want == RW_COND_TRUE ? RW_RCR_GATE_READY : RW_RCR_GATE_NOT_READY);
	rw_jw_kstr(&w, "message", msg);
	if (flip) {
		rw_rcr_now_rfc3339(now);
		rw_jw_kstr(&w, "lastTransitionTime", now);
	}
	rw_jw_obj_end(&w);
	rw_jw_arr_end(&w);
	rw_jw_obj_end(&w);
	rw_jw_obj_end(&w);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s/status", p->meta.ns,
		 p->meta.name);
	if (rw_jw_finish(&w) == 0) {
		struct rw_kube_req kr = {.method = "PATCH",
					 .path = path,
					 .body = rw_buf_cstr(&body),
					 .body_len = body.len,
					 .content_type = "application/strategic-merge-patch+json",
					 .verb = "patch",
					 .priority = 1};
		g->pend = want;
		snprintf(g->pend_msg, sizeof(g->pend_msg), "%s", msg);
		if (rw_rcr_request(r, NULL, &kr, gate_cb, NULL, NULL, g) == 0) {
			g->inflight = true;
			r->gate_inflight++;
		}
	}
	rw_buf_fini(&body);
}

/*
 * Make the pod's ray.io/agent-ready condition match its agent's latest
 * report. Called on every pod event, on every changed report, and for each
 * pod at the end of its cluster's reconcile. Only the leader writes.
 */
void
rw_rcr_gate_sync(struct rcr *r, const struct rw_inf_pod *p)
{
	const struct rw_report *rep;
	struct rcr_gate *g;
	char key[512];
	int stale = 0, want, cur;
	const char *msg, *cur_msg;
	if (!r->hub || r->closing || !r->opts.readiness_gate || !rw_mgr_is_leader(r->mgr))
		return;
	if (p->meta.deleted || (strcmp(p->node_type, "head") && strcmp(p->node_type, "worker")))
		return;
	rep = rw_hub_pod(r->hub, p->meta.ns, p->meta.name, &stale);
	if (!rep || strcmp(rep->uid, p->meta.uid) != 0)
		return;
	want = rep->ready ? RW_COND_TRUE : RW_COND_FALSE;
	msg = rep->ready ? "" : rep->ready_reason;
	snprintf(key, sizeof(key), "%s/%s", p->meta.ns, p->meta.name);
	g = rw_kmap_get(&r->gates, key);
	if (g && strcmp(g->uid, p->meta.uid) != 0 && !g->inflight) {
		g->sent = 0;
		snprintf(g->uid, sizeof(g->uid), "%s", p->meta.uid);
	}
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return;
		snprintf(g->uid, sizeof(g->uid), "%s", p->meta.uid);
		snprintf(g->key, sizeof(g->key), "%s", key);
		if (rw_kmap_put(&r->gates, key, g, NULL) != 0) {
			free(g);
			return;
		}
	}
	if (g->inflight) {
		g->again = true;
		if (!g->t_again)
			g->t_again = uv_hrtime();
		return;
	}
	if (g->queued)
		return; /* synced from the newest report when its turn comes */
	/* What the pod holds: what we last wrote, else what the cache says. */
	if (g->sent) {
		cur = g->sent;
		cur_msg = g->sent_msg;
	} else {
		cur = p->agent_ready;
		cur_msg = p->agent_message;
	}
	if (cur == want && strncmp(cur_msg, msg, sizeof(g->sent_msg) - 1) == 0) {
		g->t_want = 0;
		return;
	}
	if (!g->t_want)
		g->t_want = uv_hrtime();
	if (r->gate_inflight >= GATE_INFLIGHT) {
		gq_push(r, g);
		return;
	}
	gate_send(r, g, p, want, msg, cur != want);
}

void
rw_rcr_gate_forget(struct rcr *r, const struct rw_inf_pod *p)
{
	char key[512];
	struct rcr_gate *g;
	snprintf(key, sizeof(key), "%s/%s", p->meta.ns, p->meta.name);
	g = rw_kmap_get(&r->gates, key);
	if (!g)
		return;
	if (g->inflight) {
		g->dead = true; /* removed by its callback (or with the table at teardown) */
	} else {
		gq_unlink(r, g);
		rw_kmap_del(&r->gates, key);
		free(g);
	}
}

/* ---- agent hooks of other reconcilers (keyed by the cluster's owner kind) ---- */

static struct {
	char kind[32];
	struct rw_rcr_agent_hooks h;
} hooks[RW_RCR_MAX_HOOKS];
static struct rcr *hub_owner; /* the reconciler whose hub is running */

int
rw_rcr_agent_hooks_set(const char *owner_kind, const struct rw_rcr_agent_hooks *h)
{
	int free_slot = -1;
	if (!owner_kind || !*owner_kind || strlen(owner_kind) >= sizeof(hooks[0].kind))
		return -EINVAL;
	for (int i = 0; i < RW_RCR_MAX_HOOKS; i++) {
		if (hooks[i].kind[0] && strcmp(hooks[i].kind, owner_kind) == 0) {
			if (h)
				hooks[i].h = *h;
			else
				memset(&hooks[i], 0, sizeof(hooks[i]));
			return 0;
		}
		if (!hooks[i].kind[0] && free_slot < 0)
			free_slot = i;
	}
	if (!h)
		return 0;
	if (free_slot < 0)
		return -ENOSPC;
	snprintf(hooks[free_slot].kind, sizeof(hooks[free_slot].kind), "%s", owner_kind);
	hooks[free_slot].h = *h;
	return 0;
}

struct rw_hub *
rw_rcr_agent_hub(void)
{
	return hub_owner ? hub_owner->hub : NULL;
}

/* The hooks for the pods of cluster ns/name, from its controller owner's kind, or NULL. */
static const struct rw_rcr_agent_hooks *
hooks_for(struct rcr *r, const char *ns, const char *cluster)
{
	char key[512], kind[64] = "";
	struct rcr_cl *cl;
	bool any = false;
	for (int i = 0; i < RW_RCR_MAX_HOOKS; i++)
		any = any || hooks[i].kind[0];
	if (!any || !cluster || !*cluster)
		return NULL;
	snprintf(key, sizeof(key), "%s/%s", ns, cluster);
	cl = rw_kmap_get(&r->clusters, key);
	if (cl && cl->metrics) {
		snprintf(kind, sizeof(kind), "%s", cl->owner_kind);
	} else {
		/* Not reconciled yet in this process: read the owner from the cache. */
		const struct rw_inf_json *o = rw_inf_get(r->rc_inf, ns, cluster);
		struct rw_json j;
		int owners, i, c;
		if (!o || rw_json_parse(&j, o->json, o->len, 1 << 20, NULL, 0) != 0)
			return NULL;
		owners = rw_json_path(&j, 0, "metadata.ownerReferences");
		RW_JSON_ARR_FOREACH (&j, owners, i, c) {
			if (rw_json_type(&j, rw_json_get(&j, c, "controller")) == RW_JSON_TRUE)
				rw_json_str(&j, rw_json_get(&j, c, "kind"), kind, sizeof(kind));
		}
		rw_json_fini(&j);
	}
	for (int i = 0; kind[0] && i < RW_RCR_MAX_HOOKS; i++)
		if (hooks[i].kind[0] && strcmp(hooks[i].kind, kind) == 0)
			return &hooks[i].h;
	return NULL;
}

/* ---- hub callbacks ---- */

static void
on_report(struct rw_hub *hub, const struct rw_report *now, const struct rw_report *old, void *ud)
{
	struct rcr *r = ud;
	const struct rw_inf_pod *p;
	(void)hub;
	if (old == now)
		rw_info(LOGC, "%s/%s: agent reporting again", now->ns, now->pod);
	const struct rw_rcr_agent_hooks *h;
	p = rw_inf_get(r->pod_inf, now->ns, now->pod);
	if (p)
		rw_rcr_gate_sync(r, p);
	h = hooks_for(r, now->ns, now->cluster);
	if (h && h->on_report)
		h->on_report(now, old, h->ud);
}

static uint64_t stale_log_sec;
static unsigned stale_log_n;

static void
on_stale(struct rw_hub *hub, const struct rw_report *last, void *ud)
{
	struct rcr *r = ud;
	const struct rw_rcr_agent_hooks *h = hooks_for(r, last->ns, last->cluster);
	(void)hub;
	if (h && h->on_stale)
		h->on_stale(last, h->ud);
	rw_met_add(r->m_stale, NULL, 1);
	/* At most 10 lines a second (a mass disconnect is thousands of pods;
	 * the hub logs the count). */
	uint64_t sec = uv_now(r->loop) / 1000;
	if (sec != stale_log_sec) {
		stale_log_sec = sec;
		stale_log_n = 0;
	}
	if (stale_log_n++ < 10)
		rw_warn(LOGC, "%s/%s: agent silent; readiness gate left as it is", last->ns,
			last->pod);
	if (!rw_mgr_is_leader(r->mgr) || !rw_inf_get(r->pod_inf, last->ns, last->pod))
		return;
	struct rw_ev_ref ref = {"v1", "Pod", last->ns, last->pod, last->uid};
	rw_ev_emit(r->ev, &ref, 1, "AgentStale", "Monitor",
		   "The raywarden agent has stopped reporting to the controller; the %s "
		   "condition keeps its last value (%s) and the kubelet's readiness probe "
		   "still applies",
		   RW_RC_AGENT_GATE, last->ready ? "True" : "False");
}

/*
 * A report authenticated with the key of (ns, cluster) speaks for a pod
 * only when the pod cache holds that pod with that cluster's label and the
 * report's UID. Before the cache has synced, or while it lags behind a new
 * pod, the report is refused without penalty (-EAGAIN): the agent resends
 * and is admitted once the pod is known.
 */
int
rw_rcr_admit_decide(const struct rw_inf_pod *p, bool synced, const char *cluster, const char *uid,
		    char *why, size_t whylen)
{
	if (!p) {
		snprintf(why, whylen, "%s",
			 synced ? "no such pod in the pod cache (yet)"
				: "pod cache not synced yet");
		return -EAGAIN;
	}
	if (strcmp(p->cluster, cluster) != 0) {
		snprintf(why, whylen, "the pod belongs to cluster \"%.63s\", not to the key's",
			 p->cluster);
		return -EPERM;
	}
	if (strcmp(p->meta.uid, uid) != 0) {
		snprintf(why, whylen, "the pod's UID is %.63s (another incarnation)", p->meta.uid);
		return -EAGAIN;
	}
	return 0;
}

static int
admit(struct rw_hub *hub, const char *ns, const char *cluster, const struct rw_report *rep,
      char *why, size_t whylen, void *ud)
{
	struct rcr *r = ud;
	(void)hub;
	if (!r->pod_inf)
		return rw_rcr_admit_decide(NULL, false, cluster, rep->uid, why, whylen);
	return rw_rcr_admit_decide(rw_inf_get(r->pod_inf, ns, rep->pod), rw_inf_synced(r->pod_inf),
				   cluster, rep->uid, why, whylen);
}

static int
reply(struct rw_hub *hub, const struct rw_report *rep, struct rw_reply *out, void *ud)
{
	struct rcr *r = ud;
	const struct rw_rcr_agent_hooks *h = hooks_for(r, rep->ns, rep->cluster);
	(void)hub;
	if (h && h->reply)
		return h->reply(rep, out, h->ud);
	return 0; /* RayCluster pods: nothing to ask */
}

static void
hub_tick(uv_timer_t *t)
{
	struct rcr *r = t->data;
	struct rw_hub_stats s;
	if (!r->hub)
		return;
	rw_hub_stats(r->hub, &s);
	rw_met_set(r->m_agents, NULL, (double)s.agents_connected);
	rw_met_set(r->m_agent_pods, NULL, (double)s.pods);
	if (s.reports > r->last_stats.reports)
		rw_met_add(r->m_reports, NULL, (double)(s.reports - r->last_stats.reports));
	if (s.changes > r->last_stats.changes)
		rw_met_add(r->m_changes, NULL, (double)(s.changes - r->last_stats.changes));
	for (int i = 0; i < RW_HUB_REFUSED_NREASONS; i++)
		if (s.refused[i] > r->last_stats.refused[i])
			rw_met_add(
			    r->m_refused,
			    (const char *const[]){rw_hub_refusal_name((enum rw_hub_refusal)i)},
			    (double)(s.refused[i] - r->last_stats.refused[i]));
	for (int i = 0; i < RW_HUB_CLOSE_NREASONS; i++)
		if (s.closed[i] > r->last_stats.closed[i])
			rw_met_add(r->m_hub_closed,
				   (const char *const[]){rw_hub_close_name((enum rw_hub_close)i)},
				   (double)(s.closed[i] - r->last_stats.closed[i]));
	rw_met_set(r->m_hub_conns, NULL, (double)s.conns);
	rw_met_set(r->m_hub_partial, NULL, (double)s.partial_bytes);
	rw_met_set(r->m_hub_pod_bytes, NULL, (double)s.pod_bytes);
	r->last_stats = s;
}

static uint64_t
dur_ms(double s)
{
	if (!(s > 0))
		return 0;
	if (s > 86400)
		s = 86400;
	return s < 0.1 ? 100 : (uint64_t)(s * 1000.0 + 0.5);
}

int
rw_rcr_gate_hub_start(struct rcr *r, const char *listen_url)
{
	struct rw_hub_opts o;
	struct rw_hub_callbacks cb = {on_report, on_stale, reply, admit};
	char err[512], url[256];
	int rv;
	const struct rw_mgr_config *cfg = rw_mgr_cfg(r->mgr);
	memset(&o, 0, sizeof(o));
	o.listen_url = listen_url;
	if (cfg) {
		/* A zero duration keeps the hub's default; at least 100 ms each. */
		o.stale_after_ms = dur_ms(cfg->agent_stale_after_s);
		o.head_heartbeat_ms = (uint32_t)dur_ms(cfg->agent_head_heartbeat_s);
		o.head_stale_after_ms = dur_ms(cfg->agent_head_stale_after_s);
		o.disconnect_grace_ms = dur_ms(cfg->agent_disconnect_grace_s);
		o.handshake_timeout_ms = dur_ms(cfg->agent_handshake_timeout_s);
		o.frame_timeout_ms = dur_ms(cfg->agent_frame_timeout_s);
		o.key_overlap_ms = dur_ms(cfg->agent_key_overlap_s);
		if (cfg->agent_partial_budget_mib > 0)
			o.partial_budget = (size_t)cfg->agent_partial_budget_mib << 20;
		/* The flag's 0 is "unlimited", the option's 0 the default. */
		o.max_conns_per_peer =
		    cfg->agent_max_conns_per_peer > 0 ? cfg->agent_max_conns_per_peer : -1;
		if (cfg->agent_max_pods_per_cluster > 0)
			o.max_pods_per_key = (size_t)cfg->agent_max_pods_per_cluster;
		if (o.head_heartbeat_ms && o.head_stale_after_ms &&
		    o.head_stale_after_ms < 2 * (uint64_t)o.head_heartbeat_ms)
			rw_warn(LOGC,
				"--agent-head-stale-after (%" PRIu64
				" ms) is under two head heartbeats (%u ms): heads will flap",
				o.head_stale_after_ms, (unsigned)o.head_heartbeat_ms);
	}
	rv = rw_hub_new(r->loop, &o, &cb, r, &r->hub, err, sizeof(err));
	if (rv) {
		rw_error(LOGC, "agent hub on %s: %s", listen_url, err);
		return rv;
	}
	hub_owner = r;
	if (rw_hub_listen_url(r->hub, url, sizeof(url)) == 0)
		rw_info(LOGC, "agent hub listening on %s", url);
	r->hub_timer = calloc(1, sizeof(*r->hub_timer));
	if (!r->hub_timer)
		return -ENOMEM;
	uv_timer_init(r->loop, r->hub_timer);
	r->hub_timer->data = r;
	uv_timer_start(r->hub_timer, hub_tick, 1000, 1000);
	return 0;
}

static void
timer_closed(uv_handle_t *h)
{
	free(h);
}

void
rw_rcr_gate_fini(struct rcr *r)
{
	if (r->hub_timer) {
		uv_timer_stop(r->hub_timer);
		uv_close((uv_handle_t *)r->hub_timer, timer_closed);
		r->hub_timer = NULL;
	}
	if (hub_owner == r)
		hub_owner = NULL;
	rw_hub_free(r->hub);
	r->hub = NULL;
	r->gq_head = r->gq_tail = NULL;
	rw_kmap_fini(&r->gates, gate_free);
}

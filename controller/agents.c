/*
 * agents.c - the agent hub under the manager (agents.h): start, metrics,
 * admission, and the reports handed to the kinds that own the pods.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "kmap.h"
#include "manager.h"
#include "rw/json.h"
#include "rw/log.h"

#define LOGC "agent-hub"

struct rw_agents {
	struct rw_mgr *mgr;
	uv_loop_t *loop;
	struct rw_hub *hub;
	struct rw_inf *pod_inf, *rc_inf;
	struct rw_agents_kinds kinds;
	/* "ns/cluster" -> the RayCluster's controller owner kind (char *), from rc_inf */
	struct rw_kmap owner;
	uv_timer_t *timer;
	struct rw_hub_stats last;
	struct rw_met_family *m_agents, *m_pods, *m_reports, *m_changes, *m_refused, *m_stale,
	    *m_closed, *m_conns, *m_partial, *m_pod_bytes;
};

/* ---- pure parts ---- */

int
rw_agents_kinds_set(struct rw_agents_kinds *t, const char *kind, const struct rw_agents_hooks *h)
{
	int free_slot = -1;
	if (!t || !kind || !*kind || strlen(kind) >= sizeof(t->k[0].kind))
		return -EINVAL;
	for (int i = 0; i < RW_AGENTS_MAX_KINDS; i++) {
		if (t->k[i].kind[0] && strcmp(t->k[i].kind, kind) == 0) {
			if (h)
				t->k[i].h = *h;
			else
				memset(&t->k[i], 0, sizeof(t->k[i]));
			return 0;
		}
		if (!t->k[i].kind[0] && free_slot < 0)
			free_slot = i;
	}
	if (!h)
		return 0;
	if (free_slot < 0)
		return -ENOSPC;
	snprintf(t->k[free_slot].kind, sizeof(t->k[free_slot].kind), "%s", kind);
	t->k[free_slot].h = *h;
	return 0;
}

const struct rw_agents_hooks *
rw_agents_kinds_get(const struct rw_agents_kinds *t, const char *kind)
{
	for (int i = 0; t && kind && *kind && i < RW_AGENTS_MAX_KINDS; i++)
		if (t->k[i].kind[0] && strcmp(t->k[i].kind, kind) == 0)
			return &t->k[i].h;
	return NULL;
}

void
rw_agents_owner_kind(const char *json, size_t len, char *out, size_t outlen)
{
	struct rw_json j;
	int owners, i, c;
	if (outlen)
		out[0] = '\0';
	if (!json || rw_json_parse(&j, json, len, 1 << 20, NULL, 0) != 0)
		return;
	owners = rw_json_path(&j, 0, "metadata.ownerReferences");
	RW_JSON_ARR_FOREACH (&j, owners, i, c) {
		if (rw_json_type(&j, rw_json_get(&j, c, "controller")) == RW_JSON_TRUE &&
		    rw_json_str(&j, rw_json_get(&j, c, "kind"), out, outlen) < 0 && outlen)
			out[0] = '\0';
	}
	rw_json_fini(&j);
}

/*
 * A report authenticated with the key of (ns, cluster) speaks for a pod
 * only when the pod cache holds that pod with that cluster's label and the
 * report's UID. Before the cache has synced, or while it lags behind a new
 * pod, the report is refused without penalty (-EAGAIN): the agent resends
 * and is admitted once the pod is known.
 */
int
rw_agents_admit_decide(const struct rw_inf_pod *p, bool synced, const char *cluster,
		       const char *uid, char *why, size_t whylen)
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

/* ---- owner kinds of RayClusters (handlers on the shared RayCluster informer) ---- */

static void
rc_set(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rw_agents *a = ud;
	const struct rw_inf_json *o = obj;
	char key[512], kind[64];
	char *old, *v;
	(void)inf;
	snprintf(key, sizeof(key), "%s/%s", o->meta.ns, o->meta.name);
	rw_agents_owner_kind(o->json, o->len, kind, sizeof(kind));
	old = rw_kmap_get(&a->owner, key);
	if (!kind[0]) {
		free(rw_kmap_del(&a->owner, key));
		return;
	}
	if (old && strcmp(old, kind) == 0)
		return;
	v = strdup(kind);
	if (!v)
		return;
	if (rw_kmap_put(&a->owner, key, v, (void **)&old) != 0) {
		free(v);
		return;
	}
	free(old);
}

static void
rc_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	(void)o;
	rc_set(inf, n, ud);
}

static void
rc_delete(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rw_agents *a = ud;
	const struct rw_inf_json *o = obj;
	char key[512];
	(void)inf;
	snprintf(key, sizeof(key), "%s/%s", o->meta.ns, o->meta.name);
	free(rw_kmap_del(&a->owner, key));
}

/* The hooks of the kind owning cluster ns/cluster (not the every-pod ones), or NULL. */
static const struct rw_agents_hooks *
owner_hooks(struct rw_agents *a, const char *ns, const char *cluster)
{
	char key[512];
	const char *kind;
	if (!cluster || !*cluster)
		return NULL;
	snprintf(key, sizeof(key), "%s/%s", ns, cluster);
	kind = rw_kmap_get(&a->owner, key);
	if (!kind || strcmp(kind, RW_AGENTS_EVERY_POD) == 0)
		return NULL;
	return rw_agents_kinds_get(&a->kinds, kind);
}

int
rw_agents_kinds_extra(const struct rw_agents_kinds *t, const struct rw_agents_hooks *owner,
		      const struct rw_agents_hooks *out[RW_AGENTS_MAX_KINDS])
{
	int n = 0;
	for (int i = 0; i < RW_AGENTS_MAX_KINDS; i++) {
		const struct rw_agents_hooks *h = &t->k[i].h;
		if (!t->k[i].kind[0] || !h->every_cluster || h == owner ||
		    strcmp(t->k[i].kind, RW_AGENTS_EVERY_POD) == 0)
			continue;
		out[n++] = h;
	}
	return n;
}

/* ---- hub callbacks ---- */

static void
on_report(struct rw_hub *hub, const struct rw_report *now, const struct rw_report *old, void *ud)
{
	struct rw_agents *a = ud;
	const struct rw_agents_hooks *every = rw_agents_kinds_get(&a->kinds, RW_AGENTS_EVERY_POD);
	const struct rw_agents_hooks *h = owner_hooks(a, now->ns, now->cluster);
	(void)hub;
	if (old == now)
		rw_info(LOGC, "%s/%s: agent reporting again", now->ns, now->pod);
	const struct rw_agents_hooks *extra[RW_AGENTS_MAX_KINDS];
	int n = rw_agents_kinds_extra(&a->kinds, h, extra);
	if (every && every->on_report)
		every->on_report(now, old, every->ud);
	if (h && h->on_report)
		h->on_report(now, old, h->ud);
	for (int i = 0; i < n; i++)
		if (extra[i]->on_report)
			extra[i]->on_report(now, old, extra[i]->ud);
}

static void
on_stale(struct rw_hub *hub, const struct rw_report *last, void *ud)
{
	struct rw_agents *a = ud;
	const struct rw_agents_hooks *every = rw_agents_kinds_get(&a->kinds, RW_AGENTS_EVERY_POD);
	const struct rw_agents_hooks *h = owner_hooks(a, last->ns, last->cluster);
	(void)hub;
	rw_met_add(a->m_stale, NULL, 1);
	const struct rw_agents_hooks *extra[RW_AGENTS_MAX_KINDS];
	int n = rw_agents_kinds_extra(&a->kinds, h, extra);
	if (h && h->on_stale)
		h->on_stale(last, h->ud);
	if (every && every->on_stale)
		every->on_stale(last, every->ud);
	for (int i = 0; i < n; i++)
		if (extra[i]->on_stale)
			extra[i]->on_stale(last, extra[i]->ud);
}

static int
reply(struct rw_hub *hub, const struct rw_report *rep, struct rw_reply *out, void *ud)
{
	struct rw_agents *a = ud;
	const struct rw_agents_hooks *owner = owner_hooks(a, rep->ns, rep->cluster), *h = owner;
	const struct rw_agents_hooks *extra[RW_AGENTS_MAX_KINDS];
	int n = rw_agents_kinds_extra(&a->kinds, owner, extra), rv = 0;
	(void)hub;
	if (!h || !h->reply)
		h = rw_agents_kinds_get(&a->kinds, RW_AGENTS_EVERY_POD);
	if (h && h->reply)
		rv = h->reply(rep, out, h->ud);
	for (int i = 0; i < n && rv == 0; i++)
		if (extra[i] != h && extra[i]->reply)
			rv = extra[i]->reply(rep, out, extra[i]->ud);
	return rv; /* 0 with nothing set: nothing to ask */
}

static int
admit(struct rw_hub *hub, const char *ns, const char *cluster, const struct rw_report *rep,
      char *why, size_t whylen, void *ud)
{
	struct rw_agents *a = ud;
	(void)hub;
	if (!a->pod_inf)
		return rw_agents_admit_decide(NULL, false, cluster, rep->uid, why, whylen);
	return rw_agents_admit_decide(rw_inf_get(a->pod_inf, ns, rep->pod),
				      rw_inf_synced(a->pod_inf), cluster, rep->uid, why, whylen);
}

/* ---- metrics ---- */

static void
register_metrics(struct rw_agents *a, struct rw_met *m)
{
	a->m_agents = rw_met_gauge(m, "raywarden_agents_connected",
				   "Agents that reported within the staleness period.", NULL);
	a->m_pods = rw_met_gauge(m, "raywarden_agent_pods",
				 "Pods known to the agent hub (stale ones included).", NULL);
	a->m_reports = rw_met_counter(m, "raywarden_agent_reports_total",
				      "Fresh agent reports accepted.", NULL);
	a->m_changes = rw_met_counter(m, "raywarden_agent_report_changes_total",
				      "Agent reports that changed a pod's state.", NULL);
	a->m_refused = rw_met_counter(m, "raywarden_agent_refusals_total",
				      "Agent messages refused, by reason.",
				      (const char *const[]){"reason", NULL});
	a->m_closed = rw_met_counter(m, "raywarden_agent_connections_closed_total",
				     "Agent hub connections closed by the hub, by reason.",
				     (const char *const[]){"reason", NULL});
	a->m_conns =
	    rw_met_gauge(m, "raywarden_agent_connections", "Open agent hub connections.", NULL);
	a->m_partial = rw_met_gauge(m, "raywarden_agent_partial_bytes",
				    "Bytes held for partially received agent frames.", NULL);
	a->m_pod_bytes = rw_met_gauge(m, "raywarden_agent_pod_record_bytes",
				      "Memory of the agent hub's pod records.", NULL);
	a->m_stale = rw_met_counter(m, "raywarden_agent_stale_total",
				    "Times an agent went silent for the staleness period.", NULL);
}

static void
tick(uv_timer_t *t)
{
	struct rw_agents *a = t->data;
	struct rw_hub_stats s;
	if (!a->hub)
		return;
	rw_hub_stats(a->hub, &s);
	rw_met_set(a->m_agents, NULL, (double)s.agents_connected);
	rw_met_set(a->m_pods, NULL, (double)s.pods);
	if (s.reports > a->last.reports)
		rw_met_add(a->m_reports, NULL, (double)(s.reports - a->last.reports));
	if (s.changes > a->last.changes)
		rw_met_add(a->m_changes, NULL, (double)(s.changes - a->last.changes));
	for (int i = 0; i < RW_HUB_REFUSED_NREASONS; i++)
		if (s.refused[i] > a->last.refused[i])
			rw_met_add(
			    a->m_refused,
			    (const char *const[]){rw_hub_refusal_name((enum rw_hub_refusal)i)},
			    (double)(s.refused[i] - a->last.refused[i]));
	for (int i = 0; i < RW_HUB_CLOSE_NREASONS; i++)
		if (s.closed[i] > a->last.closed[i])
			rw_met_add(a->m_closed,
				   (const char *const[]){rw_hub_close_name((enum rw_hub_close)i)},
				   (double)(s.closed[i] - a->last.closed[i]));
	rw_met_set(a->m_conns, NULL, (double)s.conns);
	rw_met_set(a->m_partial, NULL, (double)s.partial_bytes);
	rw_met_set(a->m_pod_bytes, NULL, (double)s.pod_bytes);
	a->last = s;
}

/* ---- start / stop ---- */

static uint64_t
dur_ms(double s)
{
	if (!(s > 0))
		return 0;
	if (s > 86400)
		s = 86400;
	return s < 0.1 ? 100 : (uint64_t)(s * 1000.0 + 0.5);
}

static void
hub_opts(const struct rw_mgr_config *cfg, struct rw_hub_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->listen_url = cfg->agent_listen;
	/* A zero duration keeps the hub's default; at least 100 ms each. */
	o->stale_after_ms = dur_ms(cfg->agent_stale_after_s);
	o->head_heartbeat_ms = (uint32_t)dur_ms(cfg->agent_head_heartbeat_s);
	o->head_stale_after_ms = dur_ms(cfg->agent_head_stale_after_s);
	o->disconnect_grace_ms = dur_ms(cfg->agent_disconnect_grace_s);
	o->handshake_timeout_ms = dur_ms(cfg->agent_handshake_timeout_s);
	o->frame_timeout_ms = dur_ms(cfg->agent_frame_timeout_s);
	o->key_overlap_ms = dur_ms(cfg->agent_key_overlap_s);
	if (cfg->agent_partial_budget_mib > 0)
		o->partial_budget = (size_t)cfg->agent_partial_budget_mib << 20;
	/* The flag's 0 is "unlimited", the option's 0 the default. */
	o->max_conns_per_peer =
	    cfg->agent_max_conns_per_peer > 0 ? cfg->agent_max_conns_per_peer : -1;
	if (cfg->agent_max_pods_per_cluster > 0)
		o->max_pods_per_key = (size_t)cfg->agent_max_pods_per_cluster;
	if (o->head_heartbeat_ms && o->head_stale_after_ms &&
	    o->head_stale_after_ms < 2 * (uint64_t)o->head_heartbeat_ms)
		rw_warn(LOGC,
			"--agent-head-stale-after (%" PRIu64
			" ms) is under two head heartbeats (%u ms): heads will flap",
			o->head_stale_after_ms, (unsigned)o->head_heartbeat_ms);
}

bool
rw_agents_wanted(const struct rw_mgr_config *cfg)
{
	/* Without a master key there are no agent keys, so nobody could report. */
	return !cfg->no_agent_injection && cfg->agent_key_file && *cfg->agent_key_file &&
	       cfg->agent_listen && *cfg->agent_listen && strcmp(cfg->agent_listen, "0") != 0;
}

int
rw_agents_new(struct rw_mgr *m, struct rw_agents **out, char *err, size_t errlen)
{
	const struct rw_mgr_config *cfg = rw_mgr_cfg(m);
	struct rw_hub_callbacks cb = {on_report, on_stale, reply, admit};
	struct rw_inf_handlers rh;
	struct rw_hub_opts o;
	struct rw_agents *a;
	char herr[512], url[256];
	int rv;
	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "agent hub: out of memory");
		return -ENOMEM;
	}
	a->mgr = m;
	a->loop = rw_mgr_loop(m);
	rw_kmap_init(&a->owner);
	register_metrics(a, rw_mgr_metrics(m));
	/* The same informers as the reconcilers' (shared by the manager). */
	memset(&rh, 0, sizeof(rh));
	rh.on_add = rc_set;
	rh.on_update = rc_update;
	rh.on_delete = rc_delete;
	rh.ud = a;
	a->pod_inf = rw_mgr_informer(m, &rw_inf_pod_type, RW_MGR_RAY_POD_SELECTOR, false,
				     rw_inf_pod_cluster_key, NULL);
	a->rc_inf = rw_mgr_informer(m, &rw_inf_raycluster_type, NULL, false, NULL, &rh);
	if (!a->pod_inf || !a->rc_inf) {
		snprintf(err, errlen, "agent hub: cannot create the informers");
		rw_agents_free(a);
		return -ENOMEM;
	}
	hub_opts(cfg, &o);
	o.serve_later = true;
	rv = rw_hub_new(a->loop, &o, &cb, a, &a->hub, herr, sizeof(herr));
	if (rv) {
		rw_error(LOGC, "agent hub on %s: %s", cfg->agent_listen, herr);
		snprintf(err, errlen, "agent hub on %s: %s", cfg->agent_listen, herr);
		rw_agents_free(a);
		return rv;
	}
	if (rw_hub_listen_url(a->hub, url, sizeof(url)) == 0)
		rw_info(LOGC, "agent hub bound to %s; accepting agents once leading", url);
	a->timer = calloc(1, sizeof(*a->timer));
	if (!a->timer) {
		snprintf(err, errlen, "agent hub: out of memory");
		rw_agents_free(a);
		return -ENOMEM;
	}
	uv_timer_init(a->loop, a->timer);
	a->timer->data = a;
	uv_timer_start(a->timer, tick, 1000, 1000);
	*out = a;
	return 0;
}

int
rw_agents_serve(struct rw_agents *a)
{
	char url[256];
	int rv;
	if (!a || !a->hub)
		return -EINVAL;
	if (rw_hub_serving(a->hub))
		return 0;
	rv = rw_hub_serve(a->hub);
	if (rv == 0 && rw_hub_listen_url(a->hub, url, sizeof(url)) == 0)
		rw_info(LOGC, "agent hub accepting agents on %s", url);
	return rv;
}

static void
timer_closed(uv_handle_t *h)
{
	free(h);
}

void
rw_agents_free(struct rw_agents *a)
{
	if (!a)
		return;
	if (a->timer) {
		uv_timer_stop(a->timer);
		uv_close((uv_handle_t *)a->timer, timer_closed);
	}
	rw_hub_free(a->hub);
	/* The informers are the manager's; their handler set pointing here stays
	 * unused: the manager frees them without running the loop in between. */
	rw_kmap_fini(&a->owner, free);
	free(a);
}

struct rw_hub *
rw_agents_hub(const struct rw_agents *a)
{
	return a ? a->hub : NULL;
}

int
rw_agents_register(struct rw_agents *a, const char *owner_kind, const struct rw_agents_hooks *h)
{
	if (!a)
		return -EINVAL;
	return rw_agents_kinds_set(&a->kinds, owner_kind, h);
}

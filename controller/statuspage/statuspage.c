/*
 * statuspage.c - the status page's state and its HTTP answers (statuspage.h).
 * Everything runs on the loop thread; the JSON itself is sp_json.c's.
 */
#include "statuspage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "events.h"
#include "hub.h"
#include "informer.h"
#include "kmap.h"
#include "rw/clock.h"
#include "rw/json.h"
#include "rw/log.h"
#include "rw/text.h"
#include "rw/wire.h"
#include "sp_json.h"
#include "sp_page.h"

#define MAX_APPS 16
/* Tokens of one custom resource's JSON: generous for any real manifest. */
#define MAX_TOKENS (1 << 17)

struct rw_statuspage {
	struct rw_mgr *m;
	struct rw_inf *rc, *rs, *rj, *pod;
	struct rw_agents *agents;
	uint64_t generation;
	int64_t started_ms; /* part of the ETag: a restarted controller never matches an old one */
	struct rw_kmap rings; /* "ns/pod" -> struct rw_sp_ring */
	struct rw_sp_event ev[RW_SP_EVENTS];
	int ev_next, ev_n;
	/* The last answer, kept while the generation stays: a peer polling without
	 * If-None-Match costs a copy, and a build happens at most once per change. */
	struct rw_buf cache;
	uint64_t cache_gen;
	bool cache_ok, leader;
	double build_ms; /* of the cached answer */
};

/* Cut s to fit n bytes without splitting a UTF-8 sequence. */
static void
copy_utf8(char *dst, size_t n, const char *s)
{
	size_t len = strlen(s ? s : "");
	if (!n)
		return;
	len = rw_utf8_cut(s, len, n - 1);
	if (len)
		memcpy(dst, s, len);
	dst[len] = '\0';
}

static void
changed(struct rw_statuspage *sp)
{
	sp->generation++;
}

/* ---- informers: any change is a new generation ---- */

static void
inf_add(struct rw_inf *inf, const void *obj, void *ud)
{
	(void)inf;
	(void)obj;
	changed(ud);
}

static void
inf_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	(void)inf;
	(void)o;
	(void)n;
	changed(ud);
}

static void
pod_delete(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rw_statuspage *sp = ud;
	const struct rw_inf_meta *meta = obj;
	char key[320];
	(void)inf;
	snprintf(key, sizeof(key), "%s/%s", meta->ns, meta->name);
	free(rw_kmap_del(&sp->rings, key));
	changed(sp);
}

/* ---- agent reports: readiness transitions ---- */

static void
transition(struct rw_statuspage *sp, const struct rw_report *r, bool ready, const char *reason)
{
	char key[320];
	struct rw_sp_ring *ring;
	snprintf(key, sizeof(key), "%s/%s", r->ns, r->pod);
	ring = rw_kmap_get(&sp->rings, key);
	if (!ring) {
		/* Only pods the informer knows: a report cannot grow the table past the pods. */
		if (!sp->pod || !rw_inf_get(sp->pod, r->ns, r->pod))
			return;
		ring = calloc(1, sizeof(*ring));
		if (!ring || rw_kmap_put(&sp->rings, key, ring, NULL) != 0) {
			free(ring);
			return;
		}
	}
	rw_sp_ring_push(ring, rw_clock_wall_ms(), ready, reason);
}

static void
on_report(const struct rw_report *now, const struct rw_report *old, void *ud)
{
	struct rw_statuspage *sp = ud;
	/* old == now: a stale pod is back; it was marked not ready when it went stale. */
	if (!old || old == now || !old->ready != !now->ready)
		transition(sp, now, now->ready, now->ready_reason);
	changed(sp);
}

static void
on_stale(const struct rw_report *last, void *ud)
{
	struct rw_statuspage *sp = ud;
	transition(sp, last, false, "agent stopped reporting");
	changed(sp);
}

/* ---- Events ---- */

static void
on_event(const struct rw_ev_ref *ref, int warning, const char *reason, const char *note, void *ud)
{
	struct rw_statuspage *sp = ud;
	struct rw_sp_event *e = &sp->ev[sp->ev_next];
	sp->ev_next = (sp->ev_next + 1) % RW_SP_EVENTS;
	if (sp->ev_n < RW_SP_EVENTS)
		sp->ev_n++;
	e->at_ms = rw_clock_wall_ms();
	e->warning = warning != 0;
	copy_utf8(e->kind, sizeof(e->kind), ref->kind);
	copy_utf8(e->ns, sizeof(e->ns), ref->ns);
	copy_utf8(e->name, sizeof(e->name), ref->name);
	copy_utf8(e->reason, sizeof(e->reason), reason);
	copy_utf8(e->note, sizeof(e->note), note);
	changed(sp);
}

/* ---- the snapshot: plain rows with the strings they need ---- */

struct cluster_row {
	struct rw_sp_cluster c;
	char state[32], owner_kind[32], owner_name[254];
};

struct service_row {
	struct rw_sp_service s;
	char status[32], active[254], pending[254];
	struct rw_sp_app apps[MAX_APPS];
	char app_name[MAX_APPS][64], app_status[MAX_APPS][24], app_msg[MAX_APPS][160];
};

struct job_row {
	struct rw_sp_job j;
	char deployment[32], status[32], cluster[254], job_id[128], message[256];
};

struct pod_row {
	struct rw_sp_pod p;
	const char *uid;
	char reason[RW_REASON_MAX];
	char comp_reason[RW_SP_MAX_COMPONENTS][RW_REASON_MAX];
	char replicas[16];
};

struct snap {
	struct rw_statuspage *sp;
	struct cluster_row *cl;
	struct service_row *sv;
	struct job_row *jb;
	struct pod_row *pd;
	int ncl, nsv, njb, npd, cap;
	struct rw_kmap cl_by_key;  /* "ns/name" -> cluster index + 1 */
	struct rw_kmap pod_by_key; /* "ns/pod" -> pod index + 1 */
	struct rw_kmap replicas;   /* "ns/ip" -> replicas + 1 (from head reports) */
	int64_t wall_ms;
	uint64_t loop_ms;
	int err;
};

/* A string field, cut at a UTF-8 boundary when it does not fit; "" when absent or bad. */
static void
jstr(const struct rw_json *j, int t, char *out, size_t n)
{
	(void)rw_json_str_cut(j, t, out, n);
}

static int64_t
jint(const struct rw_json *j, int t)
{
	int64_t v = 0;
	if (t < 0 || rw_json_int(j, t, &v) != 0)
		return 0;
	return v;
}

static int
cond_true(const struct rw_json *j, int status, const char *type)
{
	int conds = rw_json_get(j, status, "conditions"), i, c;
	RW_JSON_ARR_FOREACH (j, conds, i, c) {
		if (rw_json_streq(j, rw_json_get(j, c, "type"), type))
			return rw_json_streq(j, rw_json_get(j, c, "status"), "True");
	}
	return 0;
}

static int
parse(const struct rw_inf_json *o, struct rw_json *j)
{
	return rw_json_parse(j, o->json, o->len, MAX_TOKENS, NULL, 0);
}

static void
collect_cluster(const void *obj, void *ud)
{
	struct snap *s = ud;
	const struct rw_inf_json *o = obj;
	struct cluster_row *r = &s->cl[s->ncl];
	struct rw_json j;
	char key[320];
	int st, owners, i, c;
	memset(r, 0, sizeof(*r));
	r->c.ns = o->meta.ns;
	r->c.name = o->meta.name;
	r->c.state = r->state;
	r->c.owner_kind = r->owner_kind;
	r->c.owner_name = r->owner_name;
	if (parse(o, &j) == 0) {
		st = rw_json_get(&j, 0, "status");
		jstr(&j, rw_json_get(&j, st, "state"), r->state, sizeof(r->state));
		r->c.desired_workers = jint(&j, rw_json_get(&j, st, "desiredWorkerReplicas"));
		r->c.ready_workers = jint(&j, rw_json_get(&j, st, "readyWorkerReplicas"));
		owners = rw_json_path(&j, 0, "metadata.ownerReferences");
		RW_JSON_ARR_FOREACH (&j, owners, i, c) {
			bool ctl = false;
			rw_json_bool(&j, rw_json_get(&j, c, "controller"), &ctl);
			if (ctl || i == 0) {
				jstr(&j, rw_json_get(&j, c, "kind"), r->owner_kind,
				     sizeof(r->owner_kind));
				jstr(&j, rw_json_get(&j, c, "name"), r->owner_name,
				     sizeof(r->owner_name));
			}
		}
		rw_json_fini(&j);
	}
	snprintf(key, sizeof(key), "%s/%s", o->meta.ns, o->meta.name);
	if (rw_kmap_put(&s->cl_by_key, key, (void *)(intptr_t)(s->ncl + 1), NULL) != 0)
		s->err = -ENOMEM;
	s->ncl++;
}

static void
collect_service(const void *obj, void *ud)
{
	struct snap *s = ud;
	const struct rw_inf_json *o = obj;
	struct service_row *r = &s->sv[s->nsv++];
	struct rw_json j;
	int st, apps, i, k, v;
	memset(r, 0, sizeof(*r));
	r->s.ns = o->meta.ns;
	r->s.name = o->meta.name;
	r->s.status = r->status;
	r->s.active_cluster = r->active;
	r->s.pending_cluster = r->pending;
	r->s.apps = r->apps;
	if (parse(o, &j) != 0)
		return;
	st = rw_json_get(&j, 0, "status");
	jstr(&j, rw_json_get(&j, st, "serviceStatus"), r->status, sizeof(r->status));
	jstr(&j, rw_json_path(&j, st, "activeServiceStatus.rayClusterName"), r->active,
	     sizeof(r->active));
	jstr(&j, rw_json_path(&j, st, "pendingServiceStatus.rayClusterName"), r->pending,
	     sizeof(r->pending));
	r->s.serve_endpoints = jint(&j, rw_json_get(&j, st, "numServeEndpoints"));
	r->s.ready = cond_true(&j, st, "Ready");
	r->s.upgrading = cond_true(&j, st, "UpgradeInProgress");
	apps = rw_json_path(&j, st, "activeServiceStatus.applicationStatuses");
	RW_JSON_OBJ_FOREACH (&j, apps, i, k, v) {
		if (r->s.napps >= MAX_APPS)
			break;
		int n = r->s.napps++;
		jstr(&j, k, r->app_name[n], sizeof(r->app_name[n]));
		jstr(&j, rw_json_get(&j, v, "status"), r->app_status[n], sizeof(r->app_status[n]));
		jstr(&j, rw_json_get(&j, v, "message"), r->app_msg[n], sizeof(r->app_msg[n]));
		r->apps[n].name = r->app_name[n];
		r->apps[n].status = r->app_status[n];
		r->apps[n].message = r->app_msg[n];
	}
	rw_json_fini(&j);
}

static void
collect_job(const void *obj, void *ud)
{
	struct snap *s = ud;
	const struct rw_inf_json *o = obj;
	struct job_row *r = &s->jb[s->njb++];
	struct rw_json j;
	int st;
	memset(r, 0, sizeof(*r));
	r->j.ns = o->meta.ns;
	r->j.name = o->meta.name;
	r->j.deployment_status = r->deployment;
	r->j.job_status = r->status;
	r->j.cluster = r->cluster;
	r->j.job_id = r->job_id;
	r->j.message = r->message;
	if (parse(o, &j) != 0)
		return;
	st = rw_json_get(&j, 0, "status");
	jstr(&j, rw_json_get(&j, st, "jobDeploymentStatus"), r->deployment, sizeof(r->deployment));
	jstr(&j, rw_json_get(&j, st, "jobStatus"), r->status, sizeof(r->status));
	jstr(&j, rw_json_get(&j, st, "rayClusterName"), r->cluster, sizeof(r->cluster));
	jstr(&j, rw_json_get(&j, st, "jobId"), r->job_id, sizeof(r->job_id));
	jstr(&j, rw_json_get(&j, st, "message"), r->message, sizeof(r->message));
	rw_json_fini(&j);
}

static void
collect_pod(const void *obj, void *ud)
{
	struct snap *s = ud;
	const struct rw_inf_pod *p = obj;
	struct pod_row *r = &s->pd[s->npd];
	char key[320];
	intptr_t ci;
	memset(r, 0, sizeof(*r));
	r->p.ns = p->meta.ns;
	r->p.name = p->meta.name;
	r->p.cluster = p->cluster;
	r->p.node_type = p->node_type;
	r->p.phase = p->phase;
	r->p.pod_ip = p->pod_ip;
	r->p.pod_ready = p->ready == RW_COND_TRUE ? 1 : p->ready == RW_COND_FALSE ? 0 : -1;
	r->uid = p->meta.uid;
	snprintf(key, sizeof(key), "%s/%s", p->meta.ns, p->meta.name);
	r->p.transitions = rw_kmap_get(&s->sp->rings, key);
	if (rw_kmap_put(&s->pod_by_key, key, (void *)(intptr_t)(s->npd + 1), NULL) != 0)
		s->err = -ENOMEM;
	snprintf(key, sizeof(key), "%s/%s", p->meta.ns, p->cluster);
	ci = (intptr_t)rw_kmap_get(&s->cl_by_key, key);
	if (ci > 0) {
		s->cl[ci - 1].c.pods_total++;
		if (p->ready == RW_COND_TRUE)
			s->cl[ci - 1].c.pods_ready++;
	}
	s->npd++;
}

static void
add_comp(struct pod_row *r, const char *name, const struct rw_probe *pr)
{
	int n = r->p.ncomp;
	if (n >= RW_SP_MAX_COMPONENTS)
		return;
	copy_utf8(r->comp_reason[n], sizeof(r->comp_reason[n]), pr->reason);
	r->p.comp[n].name = name;
	r->p.comp[n].state = rw_probe_state_name(pr->state);
	r->p.comp[n].reason = r->comp_reason[n];
	r->p.ncomp++;
}

static void
collect_report(const struct rw_report *rep, int stale, uint64_t last_seen_ms, void *arg)
{
	struct snap *s = arg;
	char key[320];
	intptr_t pi;
	struct pod_row *r;
	snprintf(key, sizeof(key), "%s/%s", rep->ns, rep->pod);
	pi = (intptr_t)rw_kmap_get(&s->pod_by_key, key);
	if (!strcmp(rep->node_type, "head")) {
		/* Serve replicas per Ray node come from the head's view of Serve. */
		for (int i = 0; i < rep->nnodes; i++) {
			snprintf(key, sizeof(key), "%s/%s", rep->ns, rep->nodes[i].node_ip);
			if (rw_kmap_put(&s->replicas, key,
					(void *)(intptr_t)(rep->nodes[i].replicas + 1), NULL) != 0)
				s->err = -ENOMEM;
		}
	}
	if (pi <= 0)
		return;
	r = &s->pd[pi - 1];
	/* A report of an earlier pod of the same name tells nothing about this one. */
	if (strcmp(rep->uid, r->uid))
		return;
	r->p.reported = true;
	r->p.agent_ready = rep->ready != 0;
	r->p.stale = stale != 0;
	copy_utf8(r->reason, sizeof(r->reason), rep->ready_reason);
	r->p.reason = r->reason;
	r->p.reported_ms = s->wall_ms - (int64_t)(s->loop_ms - last_seen_ms);
	r->p.ncomp = 0;
	add_comp(r, "raylet", &rep->raylet);
	if (!strcmp(rep->node_type, "head"))
		add_comp(r, "gcs", &rep->gcs);
	if (rep->rayservice || rep->proxy.state != RW_PROBE_UNKNOWN)
		add_comp(r, "proxy", &rep->proxy);
	if (rep->has_serve)
		add_comp(r, "serve_api", &rep->serve_api);
}

/* Rows are listed by namespace, then name. */
static int
cmp_ns_name(const char *ns1, const char *name1, const char *ns2, const char *name2)
{
	int c = strcmp(ns1, ns2);
	return c ? c : strcmp(name1, name2);
}

static int
cmp_cluster(const void *a, const void *b)
{
	const struct cluster_row *x = a, *y = b;
	return cmp_ns_name(x->c.ns, x->c.name, y->c.ns, y->c.name);
}

static int
cmp_service(const void *a, const void *b)
{
	const struct service_row *x = a, *y = b;
	return cmp_ns_name(x->s.ns, x->s.name, y->s.ns, y->s.name);
}

static int
cmp_job(const void *a, const void *b)
{
	const struct job_row *x = a, *y = b;
	return cmp_ns_name(x->j.ns, x->j.name, y->j.ns, y->j.name);
}

static int
cmp_pod(const void *a, const void *b)
{
	const struct pod_row *x = a, *y = b;
	int c = strcmp(x->p.ns, y->p.ns);
	if (!c)
		c = strcmp(x->p.cluster, y->p.cluster);
	/* The head first within its cluster. */
	if (!c)
		c = strcmp(x->p.node_type, y->p.node_type);
	return c ? c : strcmp(x->p.name, y->p.name);
}

static void
snap_fini(struct snap *s)
{
	free(s->cl);
	free(s->sv);
	free(s->jb);
	free(s->pd);
	rw_kmap_fini(&s->cl_by_key, NULL);
	rw_kmap_fini(&s->pod_by_key, NULL);
	rw_kmap_fini(&s->replicas, NULL);
}

/* Build /status.json into out (its max at least RW_SP_MAX_BYTES). */
static int
render(struct rw_statuspage *sp, struct rw_buf *out)
{
	struct snap s;
	struct rw_sp_snapshot snap;
	struct rw_sp_pod *pods = NULL;
	struct rw_sp_cluster *cls = NULL;
	struct rw_sp_service *svs = NULL;
	struct rw_sp_job *jbs = NULL;
	struct rw_sp_event evs[RW_SP_EVENTS];
	struct rw_hub *hub = rw_agents_hub(sp->agents);
	size_t nrc = rw_inf_count(sp->rc), nrs = sp->rs ? rw_inf_count(sp->rs) : 0,
	       nrj = sp->rj ? rw_inf_count(sp->rj) : 0, npod = rw_inf_count(sp->pod);
	int rv;
	memset(&s, 0, sizeof(s));
	s.sp = sp;
	rw_kmap_init(&s.cl_by_key);
	rw_kmap_init(&s.pod_by_key);
	rw_kmap_init(&s.replicas);
	s.wall_ms = rw_clock_wall_ms();
	s.loop_ms = uv_now(rw_mgr_loop(sp->m));
	s.cl = calloc(nrc + 1, sizeof(*s.cl));
	s.sv = calloc(nrs + 1, sizeof(*s.sv));
	s.jb = calloc(nrj + 1, sizeof(*s.jb));
	s.pd = calloc(npod + 1, sizeof(*s.pd));
	cls = calloc(nrc + 1, sizeof(*cls));
	svs = calloc(nrs + 1, sizeof(*svs));
	jbs = calloc(nrj + 1, sizeof(*jbs));
	pods = calloc(npod + 1, sizeof(*pods));
	if (!s.cl || !s.sv || !s.jb || !s.pd || !cls || !svs || !jbs || !pods) {
		rv = -ENOMEM;
		goto out;
	}
	rw_inf_foreach(sp->rc, collect_cluster, &s);
	if (sp->rs)
		rw_inf_foreach(sp->rs, collect_service, &s);
	if (sp->rj)
		rw_inf_foreach(sp->rj, collect_job, &s);
	rw_inf_foreach(sp->pod, collect_pod, &s);
	for (int i = 0; hub && i < s.ncl; i++)
		rw_hub_cluster_foreach(hub, s.cl[i].c.ns, s.cl[i].c.name, collect_report, &s);
	for (int i = 0; i < s.npd; i++) {
		struct pod_row *r = &s.pd[i];
		char key[320];
		intptr_t n;
		snprintf(key, sizeof(key), "%s/%s", r->p.ns, r->p.pod_ip);
		n = r->p.reported && r->p.pod_ip[0] ? (intptr_t)rw_kmap_get(&s.replicas, key) : 0;
		if (n > 0 && r->p.ncomp < RW_SP_MAX_COMPONENTS) {
			snprintf(r->replicas, sizeof(r->replicas), "%d", (int)(n - 1));
			r->p.comp[r->p.ncomp].name = "replicas";
			r->p.comp[r->p.ncomp].state = r->replicas;
			r->p.comp[r->p.ncomp].reason = "";
			r->p.ncomp++;
		}
	}
	if (s.err) {
		rv = s.err;
		goto out;
	}
	/* Sorted for a stable page; the row strings move with their rows. */
	qsort(s.cl, s.ncl, sizeof(*s.cl), cmp_cluster);
	qsort(s.sv, s.nsv, sizeof(*s.sv), cmp_service);
	qsort(s.jb, s.njb, sizeof(*s.jb), cmp_job);
	qsort(s.pd, s.npd, sizeof(*s.pd), cmp_pod);
	for (int i = 0; i < s.ncl; i++) {
		cls[i] = s.cl[i].c;
		cls[i].state = s.cl[i].state;
		cls[i].owner_kind = s.cl[i].owner_kind;
		cls[i].owner_name = s.cl[i].owner_name;
	}
	for (int i = 0; i < s.nsv; i++) {
		struct service_row *r = &s.sv[i];
		svs[i] = r->s;
		svs[i].status = r->status;
		svs[i].active_cluster = r->active;
		svs[i].pending_cluster = r->pending;
		svs[i].apps = r->apps;
		for (int a = 0; a < r->s.napps; a++) {
			r->apps[a].name = r->app_name[a];
			r->apps[a].status = r->app_status[a];
			r->apps[a].message = r->app_msg[a];
		}
	}
	for (int i = 0; i < s.njb; i++) {
		struct job_row *r = &s.jb[i];
		jbs[i] = r->j;
		jbs[i].deployment_status = r->deployment;
		jbs[i].job_status = r->status;
		jbs[i].cluster = r->cluster;
		jbs[i].job_id = r->job_id;
		jbs[i].message = r->message;
	}
	for (int i = 0; i < s.npd; i++) {
		struct pod_row *r = &s.pd[i];
		pods[i] = r->p;
		pods[i].reason = r->reason;
		for (int c = 0; c < r->p.ncomp; c++) {
			pods[i].comp[c].reason = r->comp_reason[c];
			if (!strcmp(r->p.comp[c].name, "replicas")) {
				pods[i].comp[c].state = r->replicas;
				pods[i].comp[c].reason = "";
			}
		}
	}
	for (int i = 0; i < sp->ev_n; i++)
		evs[i] = sp->ev[(sp->ev_next - 1 - i + 2 * RW_SP_EVENTS) % RW_SP_EVENTS];
	memset(&snap, 0, sizeof(snap));
	snap.generation = sp->generation;
	snap.now_ms = s.wall_ms;
	snap.leader = rw_mgr_is_leader(sp->m);
	snap.agents = hub != NULL;
	snap.clusters = cls;
	snap.nclusters = s.ncl;
	snap.services = svs;
	snap.nservices = s.nsv;
	snap.jobs = jbs;
	snap.njobs = s.njb;
	snap.events = evs;
	snap.nevents = sp->ev_n;
	snap.pods = pods;
	snap.npods = s.npd;
	rv = rw_sp_build(&snap, out, RW_SP_MAX_BYTES);
out:
	free(cls);
	free(svs);
	free(jbs);
	free(pods);
	snap_fini(&s);
	return rv;
}

/* ---- HTTP ---- */

static void
etag_of(const struct rw_statuspage *sp, char *out, size_t n)
{
	snprintf(out, n, "\"%" PRId64 "-%" PRIu64 "\"", sp->started_ms, sp->generation);
}

/* The answer for the current generation, built when it changed. 0 or a negative errno. */
static int
current(struct rw_statuspage *sp, bool *built)
{
	struct timespec t0, t1;
	int rv;
	*built = false;
	if (sp->cache_ok && sp->cache_gen == sp->generation)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rv = render(sp, &sp->cache);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	sp->cache_ok = rv == 0;
	sp->cache_gen = sp->generation;
	sp->build_ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	*built = true;
	return rv;
}

static int
serve(const struct rw_httpd_req *req, struct rw_httpd_resp *resp, void *ud)
{
	struct rw_statuspage *sp = ud;
	char etag[64];
	const char *inm;
	bool built;
	if (!strcmp(req->path, "/") || !strcmp(req->path, "/index.html")) {
		resp->content_type = "text/html; charset=utf-8";
		/* The page runs only its own inline code and talks only to this origin. */
		rw_buf_puts(
		    &resp->headers,
		    "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
		    "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
		    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
		    "X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n");
		if (rw_buf_append(&resp->body, rw_sp_page, rw_sp_page_len) != 0) {
			rw_buf_reset(&resp->body);
			resp->status = 500;
			rw_buf_puts(&resp->body, "page too large\n");
		}
		return 1;
	}
	if (strcmp(req->path, "/status.json"))
		return 0;
	if (rw_mgr_is_leader(sp->m) != sp->leader) {
		sp->leader = !sp->leader;
		changed(sp);
	}
	etag_of(sp, etag, sizeof(etag));
	rw_buf_printf(&resp->headers,
		      "ETag: %s\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n",
		      etag);
	inm = rw_httpd_header(req, "If-None-Match");
	if (inm && !strcmp(inm, etag)) {
		resp->status = 304;
		return 1;
	}
	resp->content_type = "application/json";
	/* The page corrects its clock with this (the answer itself may be cached). */
	rw_buf_printf(&resp->headers, "X-Status-Time: %" PRId64 "\r\n", rw_clock_wall_ms());
	if (current(sp, &built) != 0 ||
	    rw_buf_append(&resp->body, sp->cache.data, sp->cache.len) != 0) {
		rw_buf_reset(&resp->body);
		resp->status = 500;
		rw_buf_puts(&resp->body, "{\"error\":\"status unavailable\"}\n");
		return 1;
	}
	rw_buf_printf(&resp->headers, "Server-Timing: %s;dur=%.2f\r\n", built ? "build" : "cached",
		      sp->build_ms);
	return 1;
}

/* ---- the controller ---- */

static void teardown(void *state);

static int
setup(struct rw_mgr *m, void **state)
{
	struct rw_statuspage *sp;
	struct rw_inf_handlers h = {inf_add, inf_update, inf_add, NULL};
	struct rw_inf_handlers ph = {inf_add, inf_update, pod_delete, NULL};
	*state = NULL;
	if (!rw_mgr_cfg(m)->status_page)
		return 0;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->m = m;
	sp->started_ms = rw_clock_wall_ms();
	rw_kmap_init(&sp->rings);
	rw_buf_init(&sp->cache, RW_SP_MAX_BYTES);
	h.ud = ph.ud = sp;
	sp->rc = rw_mgr_informer(m, &rw_inf_raycluster_type, NULL, false, NULL, &h);
	/* Beside another operator (--inject-only) the controller watches no RayService or
	 * RayJob: the page does not add those watches either and shows clusters and pods. */
	if (!rw_mgr_cfg(m)->inject_only) {
		sp->rs = rw_mgr_informer(m, &rw_inf_rayservice_type, NULL, false, NULL, &h);
		sp->rj = rw_mgr_informer(m, &rw_inf_rayjob_type, NULL, false, NULL, &h);
	}
	sp->pod = rw_mgr_informer(m, &rw_inf_pod_type, RW_MGR_RAY_POD_SELECTOR, false, NULL, &ph);
	*state = sp;
	if (!sp->rc || !sp->pod || (!rw_mgr_cfg(m)->inject_only && (!sp->rs || !sp->rj))) {
		rw_error("statuspage", "cannot watch the Ray resources");
		return -ENOMEM;
	}
	sp->agents = rw_mgr_agents(m);
	if (sp->agents) {
		struct rw_agents_hooks ah;
		memset(&ah, 0, sizeof(ah));
		ah.on_report = on_report;
		ah.on_stale = on_stale;
		ah.ud = sp;
		ah.every_cluster = true;
		if (rw_agents_register(sp->agents, "StatusPage", &ah) != 0) {
			rw_warn("statuspage", "agent reports not shown: no hook slot left");
			sp->agents = NULL;
		}
	}
	rw_ev_set_tap(rw_mgr_events(m), on_event, sp);
	rw_mgr_set_page(m, serve, sp);
	return 0;
}

static void
free_ring(void *v)
{
	free(v);
}

static void
teardown(void *state)
{
	struct rw_statuspage *sp = state;
	if (!sp)
		return;
	rw_mgr_set_page(sp->m, NULL, NULL);
	rw_ev_set_tap(rw_mgr_events(sp->m), NULL, NULL);
	if (sp->agents)
		rw_agents_register(sp->agents, "StatusPage", NULL);
	rw_kmap_fini(&sp->rings, free_ring);
	rw_buf_fini(&sp->cache);
	free(sp);
}

const struct rw_mgr_controller rw_statuspage_controller = {
    .name = "statuspage",
    .setup = setup,
    .teardown = teardown,
};

/*
 * rayservice.c - the RayService reconciler (see rayservice.h): informers,
 * agent hooks (replies with the serve config, ray.io/serve labels), the
 * reconcile steps (finalizer, validation, cleanup of old clusters, the
 * pending cluster, services, status) and deletion.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "krmetrics.h"
#include "agents.h"
#include "kmap.h"
#include "podpatch.h"
#include "raycluster.h"
#include "rayservice.h"
#include "reconcile.h"
#include "rs_build.h"
#include "rs_serve.h"
#include "rs_status.h"
#include "rw/clock.h"
#include "rw/log.h"

#define LOGC "rayservice"

/* Requeue of a RayService that is not steady yet (KubeRay: always 2 s). */
#define RSR_BUSY_REQUEUE_MS 2000
/* Requeue of a steady RayService: events drive everything, this is a safety net. */
#define RSR_IDLE_REQUEUE_MS 60000

enum rsr_step { ST_LOAD = 0, ST_ADMIT, ST_CLUSTERS, ST_SERVICES, ST_STATUS, ST_DONE, ST_DELETE };

/* What the reconciler remembers per RayService. */
struct rsr_rs {
	char uid[64];
	bool exclude_head;
	int64_t cfg_gen; /* generation cfg was computed from; -1: none */
	struct rw_rayservice_serve_cfg cfg;
	char active[256], pending[256]; /* cluster names of the last status seen */
	struct rw_kmap sched;		/* cluster name -> int64_t *deletion time (ms) */
	int64_t svc_since_ms, dep_since_ms;
	char health_reason[64];	  /* last health Event reason ("" healthy) */
	char pending_health[512]; /* last pending-cluster health Event text ("" healthy) */
};

struct rsr;

/* One reconcile of one RayService: the runtime's job record (reconcile.h) first. */
struct rsr_job {
	struct rw_rec_job rec; /* rec.ud: the struct rsr */
	struct rw_rayservice *rs;
	struct rsr_rs *st;
	struct rw_raycluster *active, *pending; /* clusters named in the status, if they exist */
};

static inline struct rsr *
rsr_of(const struct rsr_job *j)
{
	return j->rec.ud;
}

/* The ray.io/serve label values, as the per-pod writer's states (podpatch.h). */
enum serve_label { SERVE_UNKNOWN = 0, SERVE_FALSE, SERVE_TRUE };

/* Label patches in flight at once (the rest wait in the writer's FIFO). */
#define LABEL_INFLIGHT 32

struct rsr {
	struct rw_mgr *mgr;
	struct rw_met *met;
	struct rw_rec_ctl ctl; /* work queue, jobs, requests, reconcile metrics */
	struct rw_wq *wq;      /* ctl.wq, for the informer handlers */
	struct rw_inf *rs_inf, *rc_inf, *pod_inf, *svc_inf, *eps_inf;
	struct rw_rayservice_opts rsopts;
	struct rw_raycluster_opts rcopts;
	struct rw_kmap rss;	  /* rs key -> struct rsr_rs */
	struct rw_kmap cl2rs;	  /* "ns/cluster" -> rs key (char *) */
	struct rw_kmap svc2rs;	  /* "ns/serve svc" -> rs key (char *) */
	struct rw_agents *agents; /* the manager's agent hub, or NULL */
	struct rw_pp *labels;	  /* ray.io/serve label patches */
	bool closing;
	struct rw_met_family *m_label, *m_label_lat, *m_clusters;
	struct rw_met_family *m_info, *m_ready, *m_upgrade, *m_endpoints;
	struct rw_krm_cache krm; /* RayService facts for the at-scrape metrics */
};

/* ---- metrics computed at scrape, from the cache (as KubeRay's collector) ---- */

static void
register_metrics(struct rsr *r)
{
	static const char *const info_l[] = {"name", "namespace", "uid", NULL};
	static const char *const cond_l[] = {"name", "namespace", "uid", "condition", NULL};
	/* Names, help and labels as KubeRay v1.5.0's
	 * controllers/ray/metrics/ray_service_metrics.go. */
	r->m_info = rw_met_gauge(r->met, "kuberay_service_info",
				 "Metadata information about RayService custom resources", info_l);
	r->m_ready = rw_met_gauge(
	    r->met, "kuberay_service_condition_ready",
	    "Describes whether the RayService is ready. Ready means users can send requests to the "
	    "underlying cluster and the number of serve endpoints is greater than 0.",
	    cond_l);
	r->m_upgrade = rw_met_gauge(
	    r->met, "kuberay_service_condition_upgrade_in_progress",
	    "Describes whether the RayService is performing a zero-downtime upgrade.", cond_l);
	r->m_endpoints =
	    rw_met_gauge(r->met, "raywarden_rayservice_serve_endpoints",
			 "Ready serve endpoints of the RayService (its status.numServeEndpoints).",
			 (const char *const[]){"namespace", "name", NULL});
}

static void
collect_service(const void *obj, void *ud)
{
	struct rsr *r = ud;
	const struct rw_inf_json *o = obj;
	const struct rw_krm_obj *kp =
	    rw_krm_cache_get(&r->krm, o->meta.ns, o->meta.name, o->meta.rv, o->json, o->len);
	if (!kp)
		return;
	const struct rw_krm_obj k = *kp;
	rw_met_set(r->m_info, (const char *const[]){k.name, k.ns, k.uid}, 1);
	rw_met_set(r->m_ready, (const char *const[]){k.name, k.ns, k.uid, rw_krm_bool(k.ready)}, 1);
	rw_met_set(r->m_upgrade,
		   (const char *const[]){k.name, k.ns, k.uid, rw_krm_bool(k.upgrading)}, 1);
	rw_met_set(r->m_endpoints, (const char *const[]){k.ns, k.name}, (double)k.serve_endpoints);
}

static void
collect_metrics(void *ud)
{
	struct rsr *r = ud;
	rw_met_clear(r->m_info);
	rw_met_clear(r->m_ready);
	rw_met_clear(r->m_upgrade);
	rw_met_clear(r->m_endpoints);
	rw_krm_cache_begin(&r->krm);
	if (r->rs_inf)
		rw_inf_foreach(r->rs_inf, collect_service, r);
	rw_krm_cache_end(&r->krm);
}

/* ---- helpers ---- */

/* A label (or any string member of object path) of a JSON object text, into out. */
static int
json_member(const char *json, size_t len, const char *path, const char *key, char *out,
	    size_t outlen)
{
	struct rw_json j;
	int rv = -ENOENT;
	out[0] = '\0';
	if (!json || rw_json_parse(&j, json, len, 1 << 20, NULL, 0) != 0)
		return -EINVAL;
	if (rw_json_str(&j, rw_json_get(&j, rw_json_path(&j, 0, path), key), out, outlen) >= 0)
		rv = 0;
	rw_json_fini(&j);
	return rv;
}

/* uid of the controller ownerReference of kind `kind`, into out ("" when none). */
static void
json_owner_uid(const char *json, size_t len, const char *kind, char *out, size_t outlen)
{
	struct rw_json j;
	int owners, i, c;
	out[0] = '\0';
	if (!json || rw_json_parse(&j, json, len, 1 << 20, NULL, 0) != 0)
		return;
	owners = rw_json_path(&j, 0, "metadata.ownerReferences");
	RW_JSON_ARR_FOREACH (&j, owners, i, c) {
		if (rw_json_streq(&j, rw_json_get(&j, c, "kind"), kind))
			rw_json_str(&j, rw_json_get(&j, c, "uid"), out, outlen);
	}
	rw_json_fini(&j);
}

/* ---- API requests ---- */

static int
request(struct rsr *r, struct rsr_job *j, const struct rw_kube_req *kr, rw_rec_req_cb cb,
	const char *s1, void *ptr)
{
	return rw_rec_request(&r->ctl, j, kr, cb, s1, NULL, ptr);
}

/* ---- per-RayService state and lookup tables ---- */

static void
sched_free(void *p)
{
	free(p);
}

static void
rs_state_free(void *p)
{
	struct rsr_rs *st = p;
	if (!st)
		return;
	rw_rayservice_serve_cfg_fini(&st->cfg);
	rw_kmap_fini(&st->sched, sched_free);
	free(st);
}

static struct rsr_rs *
rs_state_get(struct rsr *r, const char *key, const char *uid)
{
	struct rsr_rs *st = rw_kmap_get(&r->rss, key);
	if (st && uid && strcmp(st->uid, uid) != 0) {
		rw_kmap_del(&r->rss, key);
		rs_state_free(st);
		st = NULL;
	}
	if (st)
		return st;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	snprintf(st->uid, sizeof(st->uid), "%s", uid ? uid : "");
	st->cfg_gen = -1;
	rw_kmap_init(&st->sched);
	if (rw_kmap_put(&r->rss, key, st, NULL) != 0) {
		rs_state_free(st);
		return NULL;
	}
	return st;
}

static void
map_set(struct rw_kmap *m, const char *key, const char *val)
{
	char *old = rw_kmap_get(m, key), *v;
	if (old && strcmp(old, val) == 0)
		return;
	v = strdup(val);
	if (!v)
		return;
	if (rw_kmap_put(m, key, v, (void **)&old) != 0) {
		free(v);
		return;
	}
	free(old);
}

static void
map_del(struct rw_kmap *m, const char *key)
{
	free(rw_kmap_del(m, key));
}

/* The state of the RayService that owns cluster ns/cluster, or NULL. */
static struct rsr_rs *
rs_of_cluster(struct rsr *r, const char *ns, const char *cluster)
{
	char key[512];
	const char *rk;
	snprintf(key, sizeof(key), "%s/%s", ns, cluster);
	rk = rw_kmap_get(&r->cl2rs, key);
	return rk ? rw_kmap_get(&r->rss, rk) : NULL;
}

/* The latest fresh report of the cluster's head, or NULL. */
static const struct rw_report *
cluster_head(struct rsr *r, const char *ns, const char *cluster, int *stale)
{
	struct rw_hub *hub = rw_agents_hub(r->agents);
	struct rw_hub_cluster_stats cs;
	if (stale)
		*stale = 0;
	if (!hub || rw_hub_cluster_stats(hub, ns, cluster, &cs) != 0 || !cs.head)
		return NULL;
	if (stale)
		*stale = cs.head_stale;
	return cs.head;
}

/* ---- ray.io/serve labels ---- */

/* Decide for one pod of a RayService cluster (rep: its report, or NULL to look it up). */
static void
pod_decide(struct rsr *r, struct rsr_rs *st, const struct rw_inf_pod *p,
	   const struct rw_report *rep, int stale, struct rw_rayservice_pod_out *out,
	   const struct rw_report **headp)
{
	struct rw_rayservice_pod_in in;
	int hstale = 0;
	const struct rw_report *head = cluster_head(r, p->meta.ns, p->cluster, &hstale);
	memset(&in, 0, sizeof(in));
	in.is_head = strcmp(p->node_type, "head") == 0;
	in.self = rep;
	in.stale = stale != 0;
	in.head = hstale ? NULL : head;
	in.pod_ip = p->pod_ip;
	in.exclude_head = st->exclude_head;
	in.leaving = p->meta.deleted != 0;
	rw_rayservice_pod_decide(&in, out);
	if (headp)
		*headp = in.head;
}

/* The label the pod should carry after its agent's latest report (podpatch.h want()). */
static bool
label_want(void *ud, const struct rw_inf_pod *p, struct rw_pp_val *want, struct rw_pp_val *cached)
{
	struct rsr *r = ud;
	struct rw_hub *hub = rw_agents_hub(r->agents);
	struct rsr_rs *st;
	const struct rw_report *rep;
	struct rw_rayservice_pod_out d;
	int stale = 0;
	if (!hub || r->closing || !rw_mgr_is_leader(r->mgr) || !p->cluster[0])
		return false; /* only the leader writes */
	if (strcmp(p->node_type, "head") != 0 && strcmp(p->node_type, "worker") != 0)
		return false;
	st = rs_of_cluster(r, p->meta.ns, p->cluster);
	if (!st)
		return false;
	rep = rw_hub_pod(hub, p->meta.ns, p->meta.name, &stale);
	if (rep && strcmp(rep->uid, p->meta.uid) != 0)
		rep = NULL;
	if (!rep && !p->meta.deleted)
		return false; /* nothing known yet: leave the label as it is */
	pod_decide(r, st, p, rep, stale, &d, NULL);
	if (d.serve == RW_RAYSERVICE_LABEL_KEEP)
		return false;
	want->state = d.serve == RW_RAYSERVICE_LABEL_TRUE ? SERVE_TRUE : SERVE_FALSE;
	cached->state = strcmp(p->serve, "true") == 0	 ? SERVE_TRUE
			: strcmp(p->serve, "false") == 0 ? SERVE_FALSE
							 : SERVE_UNKNOWN;
	return true;
}

static int
label_build(void *ud, const struct rw_inf_pod *p, const struct rw_pp_val *v, bool flip,
	    struct rw_kube_req *kr, struct rw_buf *body)
{
	(void)ud;
	(void)p;
	(void)flip;
	(void)kr;
	return rw_buf_printf(body, "{\"metadata\":{\"labels\":{\"ray.io/serve\":\"%s\"}}}",
			     v->state == SERVE_TRUE ? "true" : "false") != 0
		   ? -ENOMEM
		   : 0;
}

static void
label_answered(void *ud, const char *key, const struct rw_pp_val *v,
	       const struct rw_kube_resp *resp, bool ok, uint64_t t_want, uint64_t t_sent)
{
	struct rsr *r = ud;
	const char *val = v->state == SERVE_TRUE ? "true" : "false";
	uint64_t now = uv_hrtime();
	(void)resp;
	(void)t_want;
	rw_met_add(r->m_label, (const char *const[]){val, ok ? "ok" : "error"}, 1);
	rw_met_observe(r->m_label_lat, NULL, (double)(now - t_sent) / 1e9);
	if (ok)
		rw_debug(LOGC, "%s: ray.io/serve=%s (%.1f ms)", key, val,
			 (double)(now - t_sent) / 1e6);
}

static void enqueue_rs_of_cluster_after(struct rsr *r, const char *ns, const char *cluster,
					uint64_t ms);

/* A failed label patch: the RayService's reconcile syncs its pods' labels again. */
static void
label_retry(void *ud, const struct rw_inf_pod *p)
{
	if (p->cluster[0])
		enqueue_rs_of_cluster_after(ud, p->meta.ns, p->cluster, 1000);
}

/*
 * Make the pod's ray.io/serve label follow its agent's latest report (only
 * the leader writes; bounded and coalesced per pod by podpatch.h).
 */
static void
label_sync(struct rsr *r, const struct rw_inf_pod *p)
{
	rw_pp_sync(r->labels, p);
}

static void
label_forget(struct rsr *r, const struct rw_inf_pod *p)
{
	rw_pp_forget(r->labels, p);
}

/* ---- informer handlers ---- */

static void
enqueue_rs_of_cluster(struct rsr *r, const char *ns, const char *cluster)
{
	char key[512];
	const char *rk;
	snprintf(key, sizeof(key), "%s/%s", ns, cluster);
	rk = rw_kmap_get(&r->cl2rs, key);
	if (rk && r->wq)
		rw_wq_add(r->wq, rk);
}

static void
enqueue_rs_of_cluster_after(struct rsr *r, const char *ns, const char *cluster, uint64_t ms)
{
	char key[512];
	const char *rk;
	snprintf(key, sizeof(key), "%s/%s", ns, cluster);
	rk = rw_kmap_get(&r->cl2rs, key);
	if (rk && r->wq)
		rw_wq_add_after(r->wq, rk, ms);
}

/*
 * Index of RayService-made clusters: "namespace/<ray.io/originated-from-cr-name>".
 * The RayCluster informer is shared with the RayCluster reconciler (every
 * cluster), so clusters other kinds made (RayJob) are left out here.
 */
static const char *
rc_index(const void *obj, char *buf, size_t n)
{
	const struct rw_inf_json *o = obj;
	char rs[256] = "";
	struct rw_json j;
	int labels;
	bool ours;
	if (!o->json || rw_json_parse(&j, o->json, o->len, 1 << 20, NULL, 0) != 0)
		return NULL;
	labels = rw_json_path(&j, 0, "metadata.labels");
	ours = rw_json_streq(&j, rw_json_get(&j, labels, "ray.io/originated-from-crd"),
			     "RayService") &&
	       rw_json_str(&j, rw_json_get(&j, labels, "ray.io/originated-from-cr-name"), rs,
			   sizeof(rs)) >= 0;
	rw_json_fini(&j);
	if (!ours || !rs[0])
		return NULL;
	snprintf(buf, n, "%s/%s", o->meta.ns, rs);
	return buf;
}

static void
rc_event(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rsr *r = ud;
	const struct rw_inf_json *o = obj;
	char idx[512], ck[512];
	(void)inf;
	if (!rc_index(o, idx, sizeof(idx)))
		return;
	snprintf(ck, sizeof(ck), "%s/%s", o->meta.ns, o->meta.name);
	map_set(&r->cl2rs, ck, idx);
	if (r->wq)
		rw_wq_add(r->wq, idx);
}

static void
rc_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	(void)o;
	rc_event(inf, n, ud);
}

static void
rc_delete(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rsr *r = ud;
	const struct rw_inf_json *o = obj;
	char idx[512], ck[512];
	(void)inf;
	snprintf(ck, sizeof(ck), "%s/%s", o->meta.ns, o->meta.name);
	if (rc_index(o, idx, sizeof(idx)) && r->wq)
		rw_wq_add(r->wq, idx);
	map_del(&r->cl2rs, ck);
}

static void
pod_event(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rsr *r = ud;
	const struct rw_inf_pod *p = obj;
	(void)inf;
	if (!p->cluster[0])
		return;
	label_sync(r, p);
	enqueue_rs_of_cluster(r, p->meta.ns, p->cluster);
}

static void
pod_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	const struct rw_inf_pod *op = o, *np = n;
	/* Only what the RayService looks at: readiness, the serve label, IP, deletion. */
	if (op->ready == np->ready && strcmp(op->serve, np->serve) == 0 &&
	    strcmp(op->pod_ip, np->pod_ip) == 0 && op->meta.deleted == np->meta.deleted &&
	    strcmp(op->phase, np->phase) == 0) {
		struct rsr *r = ud;
		label_sync(r, np);
		return;
	}
	pod_event(inf, n, ud);
}

static void
pod_delete(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rsr *r = ud;
	const struct rw_inf_pod *p = obj;
	(void)inf;
	label_forget(r, p);
	if (p->cluster[0])
		enqueue_rs_of_cluster(r, p->meta.ns, p->cluster);
}

static void
svc_event(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rsr *r = ud;
	const struct rw_inf_json *o = obj;
	char rs[256], key[512];
	(void)inf;
	if (json_member(o->json, o->len, "metadata.labels", "ray.io/originated-from-cr-name", rs,
			sizeof(rs)) != 0 ||
	    !rs[0] || !r->wq)
		return;
	snprintf(key, sizeof(key), "%s/%s", o->meta.ns, rs);
	rw_wq_add(r->wq, key);
}

static void
svc_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	(void)o;
	svc_event(inf, n, ud);
}

/* Index of EndpointSlices: "namespace/<kubernetes.io/service-name>". */
static const char *
eps_index(const void *obj, char *buf, size_t n)
{
	const struct rw_inf_json *o = obj;
	char svc[256];
	if (json_member(o->json, o->len, "metadata.labels", "kubernetes.io/service-name", svc,
			sizeof(svc)) != 0 ||
	    !svc[0])
		return NULL;
	snprintf(buf, n, "%s/%s", o->meta.ns, svc);
	return buf;
}

static void
eps_event(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rsr *r = ud;
	char idx[512];
	const char *rk;
	(void)inf;
	if (!eps_index(obj, idx, sizeof(idx)))
		return;
	rk = rw_kmap_get(&r->svc2rs, idx);
	if (rk && r->wq)
		rw_wq_add(r->wq, rk);
}

static void
eps_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	(void)o;
	eps_event(inf, n, ud);
}

/* ---- agent hooks ---- */

static void
hk_report(const struct rw_report *now, const struct rw_report *old, void *ud)
{
	struct rsr *r = ud;
	const struct rw_inf_pod *p;
	(void)old;
	p = rw_inf_get(r->pod_inf, now->ns, now->pod);
	if (p)
		label_sync(r, p);
	/* The head's report carries the applications: the RayService's status follows. */
	if (strcmp(now->node_type, "head") == 0 || !old || old->ready != now->ready ||
	    old->proxy.state != now->proxy.state)
		enqueue_rs_of_cluster(r, now->ns, now->cluster);
}

static void
hk_stale(const struct rw_report *last, void *ud)
{
	struct rsr *r = ud;
	const struct rw_inf_pod *p = rw_inf_get(r->pod_inf, last->ns, last->pod);
	if (p)
		label_sync(r, p);
	enqueue_rs_of_cluster(r, last->ns, last->cluster);
}

static int
hk_reply(const struct rw_report *rep, struct rw_reply *out, void *ud)
{
	struct rsr *r = ud;
	struct rsr_rs *st = rs_of_cluster(r, rep->ns, rep->cluster);
	const struct rw_inf_pod *p = rw_inf_get(r->pod_inf, rep->ns, rep->pod);
	struct rw_rayservice_pod_out d;
	const struct rw_report *head = NULL;
	bool is_head = strcmp(rep->node_type, "head") == 0;
	bool serving;
	if (!st)
		return 0; /* not reconciled yet in this process: "no change" */
	if (p && strcmp(p->meta.uid, rep->uid) == 0) {
		pod_decide(r, st, p, rep, 0, &d, &head);
	} else {
		struct rw_rayservice_pod_in in;
		memset(&in, 0, sizeof(in));
		in.is_head = is_head;
		in.self = rep;
		in.head = is_head ? rep : cluster_head(r, rep->ns, rep->cluster, NULL);
		in.exclude_head = st->exclude_head;
		rw_rayservice_pod_decide(&in, &d);
	}
	/* Only the active and the pending cluster get the serve config. */
	serving = strcmp(rep->cluster, st->active) == 0 || strcmp(rep->cluster, st->pending) == 0;
	return rw_rayservice_fill_reply(&d, is_head && serving ? &st->cfg : NULL,
					is_head ? rep : NULL, out);
}

/* ---- reconcile: jobs ---- */

static_assert(offsetof(struct rsr_job, rec) == 0, "the runtime's record comes first");

static void
rsr_job_fini(struct rw_rec_job *rj)
{
	struct rsr_job *j = (struct rsr_job *)rj;
	rw_rayservice_free(j->rs);
	rw_raycluster_free(j->active);
	rw_raycluster_free(j->pending);
}

/* A RayCluster of the informer, parsed, if it exists and is owned by rs. */
static struct rw_raycluster *
load_cluster(struct rsr_job *j, const char *name)
{
	const struct rw_inf_json *o;
	struct rw_raycluster *c = NULL;
	char owner[64];
	if (!name || !*name)
		return NULL;
	o = rw_inf_get(rsr_of(j)->rc_inf, j->rec.ns, name);
	if (!o)
		return NULL;
	json_owner_uid(o->json, o->len, "RayService", owner, sizeof(owner));
	if (strcmp(owner, j->rs->obj.uid) != 0)
		return NULL;
	if (rw_raycluster_parse(o->json, o->len, &c, NULL, 0) != 0)
		return NULL;
	return c;
}

/* PUT rs with status st_json to /status when it differs from the stored status. */
static void
write_status(struct rsr_job *j, const char *st_json, size_t st_len)
{
	struct rw_buf old, body;
	struct rw_doc_node *ns = NULL;
	rw_buf_init(&old, 4u << 20);
	rw_buf_init(&body, 16u << 20);
	if (j->rs->obj.status)
		rw_doc_dump(j->rs->obj.status, &old);
	if (rw_rayservice_status_equal(j->rs->obj.status ? rw_buf_cstr(&old) : NULL, old.len,
				       st_json, st_len))
		goto out;
	if (rw_doc_parse(st_json, st_len, &ns, NULL, 0) != 0 ||
	    rw_doc_set(j->rs->obj.root, "status", ns) != 0 ||
	    rw_doc_dump(j->rs->obj.root, &body) != 0)
		goto out;
	j->rs->obj.status = rw_doc_get(j->rs->obj.root, "status");
	if (rw_rec_put_status(&j->rec, rw_buf_cstr(&body), body.len, NULL, NULL) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot write the status");
out:
	rw_buf_fini(&old);
	rw_buf_fini(&body);
}

/* ---- load (the runtime's step, with these callbacks), then admit ---- */

static const struct rw_inf_json *
rsr_find(struct rw_rec_job *j)
{
	return rw_inf_get(((struct rsr *)j->ud)->rs_inf, j->ns, j->name);
}

static void
rsr_gone(struct rw_rec_job *j)
{
	struct rsr *r = j->ud;
	struct rsr_rs *st = rw_kmap_get(&r->rss, j->key);
	if (st) {
		rw_kmap_del(&r->rss, j->key);
		rs_state_free(st);
	}
}

static const char *
rsr_parse(struct rw_rec_job *rj, const struct rw_inf_json *o, char *err, size_t errlen)
{
	struct rsr_job *j = (struct rsr_job *)rj;
	if (rw_rayservice_parse(o->json, o->len, &j->rs, err, errlen) != 0)
		return NULL;
	return j->rs->obj.uid;
}

static int
rsr_attach(struct rw_rec_job *rj)
{
	struct rsr_job *j = (struct rsr_job *)rj;
	char err[256];
	j->st = rs_state_get(rsr_of(j), j->rec.key, j->rs->obj.uid);
	if (!j->st)
		return -ENOMEM;
	j->st->exclude_head = rw_rayservice_exclude_head(j->rs);
	snprintf(j->st->active, sizeof(j->st->active), "%s", rw_rayservice_active_name(j->rs));
	snprintf(j->st->pending, sizeof(j->st->pending), "%s", rw_rayservice_pending_name(j->rs));
	if (j->st->cfg_gen != j->rs->obj.generation) {
		rw_rayservice_serve_cfg_fini(&j->st->cfg);
		if (rw_rayservice_serve_config(j->rs, &j->st->cfg, err, sizeof(err)) == 0)
			j->st->cfg_gen = j->rs->obj.generation;
	}
	return 0;
}

static void
st_admit(struct rw_rec_job *rj)
{
	struct rsr_job *j = (struct rsr_job *)rj;
	struct rw_rayservice_verr ve;
	if (rw_rec_managed_elsewhere(&j->rec, rw_doc_gets(j->rs->obj.spec, "managedBy")))
		return;
	rw_rec_add_finalizer(&j->rec, j->rs->obj.root, RW_RAYSERVICE_CTL_FINALIZER);
	if (rw_rayservice_validate(j->rs, &ve) > 0) {
		struct rw_buf sb;
		char now[32];
		rw_rec_emit(&j->rec, 1, ve.reason, "%s", ve.msg);
		rw_warn(LOGC, "%s: invalid: %s", j->rec.key, ve.msg);
		rw_time_now_rfc3339(now);
		rw_buf_init(&sb, 4u << 20);
		if (rw_rayservice_status_invalid(j->rs, ve.msg, now, &sb) == 0)
			write_status(j, rw_buf_cstr(&sb), sb.len);
		rw_buf_fini(&sb);
		rw_rec_stop(&j->rec);
		return;
	}
	j->active = load_cluster(j, rw_rayservice_active_name(j->rs));
	j->pending = load_cluster(j, rw_rayservice_pending_name(j->rs));
}

/* ---- owned clusters ---- */

struct owned {
	const char *rs_uid;
	char **names;
	bool *deleting;
	size_t n, cap;
	int err;
};

static void
owned_cb(const void *obj, void *ud)
{
	const struct rw_inf_json *o = obj;
	struct owned *w = ud;
	char owner[64];
	if (w->err)
		return;
	json_owner_uid(o->json, o->len, "RayService", owner, sizeof(owner));
	if (strcmp(owner, w->rs_uid) != 0)
		return;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		char **nn = realloc(w->names, cap * sizeof(*nn));
		bool *nd;
		if (!nn) {
			w->err = -ENOMEM;
			return;
		}
		w->names = nn;
		nd = realloc(w->deleting, cap * sizeof(*nd));
		if (!nd) {
			w->err = -ENOMEM;
			return;
		}
		w->deleting = nd;
		w->cap = cap;
	}
	w->names[w->n] = strdup(o->meta.name);
	if (!w->names[w->n]) {
		w->err = -ENOMEM;
		return;
	}
	w->deleting[w->n++] = o->meta.deleted != 0;
}

static void
owned_fini(struct owned *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->names[i]);
	free(w->names);
	free(w->deleting);
}

static int
owned_collect(struct rsr_job *j, struct owned *w)
{
	char idx[512];
	memset(w, 0, sizeof(*w));
	w->rs_uid = j->rs->obj.uid;
	snprintf(idx, sizeof(idx), "%s/%s", j->rec.ns, j->rec.name);
	rw_inf_index_foreach(rsr_of(j)->rc_inf, idx, owned_cb, w);
	for (size_t i = 0; i < w->n && !w->err; i++) {
		char ck[512];
		snprintf(ck, sizeof(ck), "%s/%s", j->rec.ns, w->names[i]);
		map_set(&rsr_of(j)->cl2rs, ck, idx);
	}
	return w->err;
}

static void
cluster_delete_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rsr_job *j = q->job;
	if (resp->status == 404)
		return;
	if (!rw_rec_ok(resp->status)) {
		rw_rec_emit(&j->rec, 1, "FailedToDeleteRayCluster",
			    "Failed to delete RayCluster %s/%s: %ld %s", j->rec.ns, q->s1,
			    resp->status, resp->message);
		rw_rec_fail(&j->rec, -EIO, NULL, "deleting RayCluster %s: HTTP %ld %s", q->s1,
			    resp->status, resp->message);
		return;
	}
	rw_met_add(((struct rsr *)q->r)->m_clusters, (const char *const[]){"delete"}, 1);
	rw_rec_emit(&j->rec, 0, "DeletedRayCluster", "Deleted RayCluster %s/%s", j->rec.ns, q->s1);
	if (j->st) {
		int64_t *t = rw_kmap_del(&j->st->sched, q->s1);
		free(t);
	}
}

static int
cluster_delete(struct rsr_job *j, const char *name)
{
	char path[1024];
	snprintf(path, sizeof(path), "/apis/ray.io/v1/namespaces/%s/rayclusters/%s", j->rec.ns,
		 name);
	rw_info(LOGC, "%s: deleting RayCluster %s", j->rec.key, name);
	return rw_rec_delete(&j->rec, path, cluster_delete_cb, name, NULL);
}

static void
cluster_write_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rsr_job *j = q->job;
	bool create = q->ptr != NULL;
	if (create && rw_kube_already_exists(resp))
		return; /* created by an earlier pass the cache has not shown yet */
	if (!rw_rec_ok(resp->status)) {
		rw_rec_emit(&j->rec, 1,
			    create ? "FailedToCreateRayCluster" : "FailedToUpdateRayCluster",
			    "Failed to %s RayCluster %s/%s: %ld %s", create ? "create" : "update",
			    j->rec.ns, q->s1, resp->status, resp->message);
		rw_rec_fail(&j->rec, -EIO, NULL, "%s RayCluster %s: HTTP %ld %s",
			    create ? "creating" : "updating", q->s1, resp->status, resp->message);
		return;
	}
	rw_met_add(((struct rsr *)q->r)->m_clusters,
		   (const char *const[]){create ? "create" : "update"}, 1);
	rw_rec_emit(&j->rec, 0, create ? "CreatedRayCluster" : "UpdatedRayCluster",
		    "%s RayCluster %s/%s", create ? "Created" : "Updated", j->rec.ns, q->s1);
}

static void
cluster_write(struct rsr_job *j, const char *name, const struct rw_buf *b, bool create)
{
	char path[1024];
	if (create)
		snprintf(path, sizeof(path), "/apis/ray.io/v1/namespaces/%s/rayclusters",
			 j->rec.ns);
	else
		snprintf(path, sizeof(path), "/apis/ray.io/v1/namespaces/%s/rayclusters/%s",
			 j->rec.ns, name);
	rw_info(LOGC, "%s: %s RayCluster %s", j->rec.key, create ? "creating" : "updating", name);
	if (rw_rec_send(&j->rec, create ? "POST" : "PUT", path, rw_buf_cstr(b), b->len,
			cluster_write_cb, name, NULL, create ? (void *)1 : NULL) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot write RayCluster %s", name);
}

/* Services of the RayService (head and serve), deleted on suspend. */
static void
svc_delete(struct rsr_job *j, const char *name)
{
	char path[1024];
	if (!rw_inf_get(rsr_of(j)->svc_inf, j->rec.ns, name))
		return;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s", j->rec.ns, name);
	struct rw_kube_req kr = {.method = "DELETE", .path = path, .verb = "delete"};
	if (request(rsr_of(j), j, &kr, NULL, name, NULL) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot delete service %s", name);
}

static void
st_clusters(struct rw_rec_job *rj)
{
	struct rsr_job *j = (struct rsr_job *)rj;
	struct rsr *r = rsr_of(j);
	struct owned w;
	int64_t now = rw_clock_wall_ms();
	bool suspended = rw_rayservice_suspend_active(j->rs);
	struct rw_buf b;
	if (owned_collect(j, &w) != 0) {
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "out of memory");
		owned_fini(&w);
		return;
	}
	/* Clusters nobody points to any more: deleted after the delay (at once on suspend). */
	for (size_t i = 0; i < w.n; i++) {
		int64_t *t = rw_kmap_get(&j->st->sched, w.names[i]), at = 0;
		enum rw_rayservice_cleanup c;
		if (w.deleting[i])
			continue;
		c = rw_rayservice_cleanup_cluster(j->rs, w.names[i], t ? *t : 0, now, suspended,
						  &at);
		switch (c) {
		case RW_RAYSERVICE_CLEANUP_KEEP:
			if (t)
				free(rw_kmap_del(&j->st->sched, w.names[i]));
			break;
		case RW_RAYSERVICE_CLEANUP_SCHEDULE:
			t = malloc(sizeof(*t));
			if (t) {
				*t = at;
				if (rw_kmap_put(&j->st->sched, w.names[i], t, NULL) != 0)
					free(t);
			}
			rw_info(LOGC, "%s: RayCluster %s unreferenced; deleting it in %lld ms",
				j->rec.key, w.names[i], (long long)(at - now));
			rw_rec_requeue(&j->rec, (uint64_t)(at > now ? at - now : 0) + 10);
			break;
		case RW_RAYSERVICE_CLEANUP_WAIT:
			rw_rec_requeue(&j->rec, (uint64_t)(at > now ? at - now : 0) + 10);
			break;
		case RW_RAYSERVICE_CLEANUP_DELETE:
			if (cluster_delete(j, w.names[i]) != 0)
				rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot delete RayCluster %s",
					    w.names[i]);
			break;
		}
	}
	owned_fini(&w);
	if (suspended) {
		char name[320];
		rw_rayservice_head_svc_name(j->rs, name, sizeof(name));
		svc_delete(j, name);
		rw_rayservice_serve_svc_name(j->rs, name, sizeof(name));
		svc_delete(j, name);
		return;
	}
	if (rw_rayservice_timed_out(j->rs))
		return; /* terminal: only the cleanup above goes on */
	rw_buf_init(&b, 16u << 20);
	switch (rw_rayservice_cluster_action(j->rs, j->active, j->pending, &r->rsopts)) {
	case RW_RAYSERVICE_CLUSTER_NONE:
		break;
	case RW_RAYSERVICE_CLUSTER_CREATE_PENDING: {
		const char *name = rw_rayservice_pending_name(j->rs);
		char ck[512], idx[512];
		if (rw_rayservice_build_cluster(j->rs, name, &r->rsopts, &b) == 0) {
			snprintf(ck, sizeof(ck), "%s/%s", j->rec.ns, name);
			snprintf(idx, sizeof(idx), "%s/%s", j->rec.ns, j->rec.name);
			map_set(&r->cl2rs, ck, idx);
			cluster_write(j, name, &b, true);
		} else {
			rw_rec_fail(&j->rec, -EINVAL, NULL, "cannot build RayCluster %s", name);
		}
		j->rec.busy = true;
		break;
	}
	case RW_RAYSERVICE_CLUSTER_UPDATE_ACTIVE:
		if (j->active &&
		    rw_rayservice_update_cluster(j->rs, j->active, &r->rsopts, &b) == 0)
			cluster_write(j, j->active->obj.name, &b, false);
		break;
	case RW_RAYSERVICE_CLUSTER_UPDATE_PENDING:
		if (j->pending &&
		    rw_rayservice_update_cluster(j->rs, j->pending, &r->rsopts, &b) == 0)
			cluster_write(j, j->pending->obj.name, &b, false);
		break;
	}
	rw_buf_fini(&b);
}

/* ---- services ---- */

struct ready_count {
	const char *uid;
	int ready;
	const char *head_ip;
};

static void
ready_cb(const void *obj, void *ud)
{
	const struct rw_inf_pod *p = obj;
	struct ready_count *c = ud;
	if (c->uid && p->owner_uid[0] && strcmp(p->owner_uid, c->uid) != 0)
		return;
	if (strcmp(p->node_type, "head") != 0 && strcmp(p->node_type, "worker") != 0)
		return;
	if (strcmp(p->node_type, "head") == 0 && !p->meta.deleted)
		c->head_ip = p->pod_ip;
	if (p->meta.deleted || p->ready != RW_COND_TRUE || strcmp(p->serve, "true") != 0)
		return;
	c->ready++;
}

/* Can cluster c take traffic (applications RUNNING, serve endpoints ready)? */
static bool
can_serve(struct rsr_job *j, const struct rw_raycluster *c)
{
	struct ready_count cnt = {0};
	struct rw_rayservice_ready_in in;
	char idx[512];
	int stale = 0;
	if (!c)
		return false;
	cnt.uid = c->obj.uid;
	snprintf(idx, sizeof(idx), "%s/%s", j->rec.ns, c->obj.name);
	rw_inf_index_foreach(rsr_of(j)->pod_inf, idx, ready_cb, &cnt);
	memset(&in, 0, sizeof(in));
	in.head = cluster_head(rsr_of(j), j->rec.ns, c->obj.name, &stale);
	if (stale)
		in.head = NULL;
	in.ready_endpoints = cnt.ready;
	in.expected_endpoints =
	    rw_rayservice_expected_endpoints(in.head, cnt.head_ip, j->st->exclude_head);
	return rw_rayservice_cluster_can_serve(&in);
}

static void
st_services(struct rw_rec_job *rj)
{
	struct rsr_job *j = (struct rsr_job *)rj;
	struct rsr *r = rsr_of(j);
	bool a_ok, p_ok;
	const char *target;
	const struct rw_raycluster *tc;
	struct rw_buf b;
	char err[512], svc[320], key[600];
	if (rw_rayservice_suspend_active(j->rs) || rw_rayservice_timed_out(j->rs))
		return;
	rw_rayservice_serve_svc_name(j->rs, svc, sizeof(svc));
	snprintf(key, sizeof(key), "%s/%s", j->rec.ns, svc);
	map_set(&r->svc2rs, key, j->rec.key);
	a_ok = can_serve(j, j->active);
	p_ok = can_serve(j, j->pending);
	if (j->pending)
		j->rec.busy = true;
	target = rw_rayservice_service_target(j->rs, a_ok, p_ok);
	if (!target) {
		j->rec.busy = true;
		return;
	}
	tc = j->pending && strcmp(target, j->pending->obj.name) == 0 ? j->pending : j->active;
	if (!tc)
		return;
	rw_buf_init(&b, 4u << 20);
	if (rw_rayservice_build_head_service(j->rs, tc, &r->rcopts, &b) == 0)
		rw_rec_apply_service(&j->rec, r->svc_inf, rw_buf_cstr(&b), b.len);
	rw_buf_reset(&b);
	if (rw_rayservice_build_serve_service(j->rs, tc, &b, err, sizeof(err)) == 0) {
		rw_rec_apply_service(&j->rec, r->svc_inf, rw_buf_cstr(&b), b.len);
	} else {
		rw_rec_emit(&j->rec, 1, "FailedToCreateService", "%s", err);
		rw_rec_fail(&j->rec, -EINVAL, NULL, "serve service: %s", err);
	}
	rw_buf_fini(&b);
}

/* ---- status ---- */

struct slices {
	const char **texts;
	size_t *lens;
	size_t n, cap;
	int err;
};

static void
slices_cb(const void *obj, void *ud)
{
	const struct rw_inf_json *o = obj;
	struct slices *s = ud;
	if (s->err)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		const char **t = realloc(s->texts, cap * sizeof(*t));
		size_t *l;
		if (!t) {
			s->err = -ENOMEM;
			return;
		}
		s->texts = t;
		l = realloc(s->lens, cap * sizeof(*l));
		if (!l) {
			s->err = -ENOMEM;
			return;
		}
		s->lens = l;
		s->cap = cap;
	}
	s->texts[s->n] = o->json;
	s->lens[s->n++] = o->len;
}

static int
count_endpoints(struct rsr_job *j, const char *svc)
{
	struct slices s;
	char idx[512];
	int n;
	memset(&s, 0, sizeof(s));
	/* Namespaces and Service names are at most 63 characters; anything longer matches nothing.
	 */
	if ((size_t)snprintf(idx, sizeof(idx), "%s/%s", j->rec.ns, svc) >= sizeof(idx))
		return 0;
	rw_inf_index_foreach(rsr_of(j)->eps_inf, idx, slices_cb, &s);
	n = s.err ? 0 : rw_rayservice_count_endpoints(s.texts, s.lens, s.n);
	free(s.texts);
	free(s.lens);
	return n < 0 ? 0 : n;
}

/*
 * A pending cluster whose applications fail would hold the upgrade forever
 * without a word: one Warning Event per distinct failure (the status shows it
 * in pendingServiceStatus too). A pending head that is not up yet is not a
 * failure: the cluster is starting.
 */
static void
pending_health(struct rsr_job *j)
{
	const struct rw_report *head;
	char what[400], text[sizeof(j->st->pending_health)];
	int stale = 0;
	if (!j->pending) {
		j->st->pending_health[0] = '\0';
		return;
	}
	head = cluster_head(rsr_of(j), j->rec.ns, j->pending->obj.name, &stale);
	if (stale || !rw_rayservice_unhealthy_summary(head, what, sizeof(what))) {
		j->st->pending_health[0] = '\0';
		return;
	}
	j->rec.busy = true;
	snprintf(text, sizeof(text), "pending RayCluster %s: %s", j->pending->obj.name, what);
	if (strcmp(text, j->st->pending_health) != 0) {
		char traffic[400];
		rw_rayservice_pending_traffic(j->st->active, j->active != NULL, traffic,
					      sizeof(traffic));
		rw_rec_emit(&j->rec, 1, "PendingServeApplicationUnhealthy", "%s; %s", text,
			    traffic);
		snprintf(j->st->pending_health, sizeof(j->st->pending_health), "%s", text);
	}
}

static void
head_agent_cb(const void *obj, void *ud)
{
	const struct rw_inf_pod *p = obj;
	bool *without = ud;
	if (!p->meta.deleted && strcmp(p->node_type, "head") == 0)
		*without = rw_inf_pod_agent_silent(p, false);
}

/* The cluster's head has no agent that has spoken (callers ask only when the hub holds no
 * report of the head). */
static bool
head_without_agent(struct rsr_job *j, const char *cluster)
{
	char idx[512];
	bool without = false;
	snprintf(idx, sizeof(idx), "%s/%s", j->rec.ns, cluster);
	rw_inf_index_foreach(rsr_of(j)->pod_inf, idx, head_agent_cb, &without);
	return without;
}

/* Unhealthy applications or an unreachable head of the active cluster: Events. */
static bool
health(struct rsr_job *j, int64_t now)
{
	struct rw_rayservice_health_in in;
	struct rw_rayservice_health h;
	int stale = 0;
	pending_health(j);
	if (!j->active || !j->st->active[0])
		return false;
	memset(&in, 0, sizeof(in));
	in.head = cluster_head(rsr_of(j), j->rec.ns, j->active->obj.name, &stale);
	in.head_stale = stale != 0 || in.head == NULL;
	in.svc_since_ms = j->st->svc_since_ms;
	in.dep_since_ms = j->st->dep_since_ms;
	in.pending_exists = j->pending != NULL || rw_rayservice_pending_name(j->rs)[0];
	in.opts = &rsr_of(j)->rsopts;
	in.now_ms = now;
	in.head_without_agent = !in.head && !stale && head_without_agent(j, j->active->obj.name);
	rw_rayservice_health(j->rs, &in, &h);
	j->st->svc_since_ms = h.svc_since_ms;
	j->st->dep_since_ms = h.dep_since_ms;
	if (!h.event_reason) {
		j->st->health_reason[0] = '\0';
		return false;
	}
	j->rec.busy = true;
	if (strcmp(j->st->health_reason, h.event_reason) != 0) {
		char what[400];
		if (h.apps_unhealthy &&
		    rw_rayservice_unhealthy_summary(in.head, what, sizeof(what)))
			rw_rec_emit(&j->rec, 1, h.event_reason, "%s: %s", h.message, what);
		else
			rw_rec_emit(&j->rec, 1, h.event_reason, "%s", h.message);
		snprintf(j->st->health_reason, sizeof(j->st->health_reason), "%s", h.event_reason);
	}
	return h.action == RW_RAYSERVICE_HEALTH_NEW_CLUSTER;
}

/*
 * Suspend and resume: the status KubeRay writes while its clusters and
 * services are deleted (Suspending), once they are gone (Suspended), and once
 * when spec.suspend turns false again (resume).
 */
static void
suspend_status(struct rsr_job *j, const char *now, bool resume)
{
	struct rw_doc_node *st =
	    j->rs->obj.status ? rw_doc_clone(j->rs->obj.status) : rw_doc_new(RW_DOC_OBJ);
	enum rw_rayservice_suspend_phase ph = RW_RAYSERVICE_RESUMED;
	struct rw_buf b;
	if (!st) {
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot compute the status");
		return;
	}
	if (!resume) {
		struct owned w;
		char name[320];
		bool gone = owned_collect(j, &w) == 0 && w.n == 0;
		owned_fini(&w);
		rw_rayservice_head_svc_name(j->rs, name, sizeof(name));
		gone = gone && !rw_inf_get(rsr_of(j)->svc_inf, j->rec.ns, name);
		rw_rayservice_serve_svc_name(j->rs, name, sizeof(name));
		gone = gone && !rw_inf_get(rsr_of(j)->svc_inf, j->rec.ns, name);
		ph = gone ? RW_RAYSERVICE_SUSPENDED : RW_RAYSERVICE_SUSPENDING;
		rw_doc_set(st, "activeServiceStatus", rw_doc_new(RW_DOC_OBJ));
		rw_doc_set(st, "pendingServiceStatus", rw_doc_new(RW_DOC_OBJ));
		rw_doc_del(st, "numServeEndpoints");
		rw_doc_del(st, "serviceStatus");
	}
	/* Until Suspended holds (or after a resume, or a suspend flipped back), look again. */
	if (ph != RW_RAYSERVICE_SUSPENDED || !rw_rayservice_suspended(j->rs))
		j->rec.busy = true;
	if (j->rs->obj.generation > 0)
		rw_doc_set_int(st, "observedGeneration", j->rs->obj.generation);
	rw_doc_set_str(st, "lastUpdateTime", now);
	rw_buf_init(&b, 4u << 20);
	if (rw_rayservice_suspend_conds(st, j->rs, ph, now) != 0 || rw_doc_dump(st, &b) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot compute the status");
	else
		write_status(j, rw_buf_cstr(&b), b.len);
	rw_buf_fini(&b);
	rw_doc_free(st);
}

static void
sync_labels_cb(const void *obj, void *ud)
{
	label_sync(ud, obj);
}

static void
st_status(struct rw_rec_job *rj)
{
	struct rsr_job *j = (struct rsr_job *)rj;
	struct rsr *r = rsr_of(j);
	struct rw_rayservice_status_in in;
	struct rw_buf out;
	char now[32], svc[320], suffix[6], sel[256] = "", idx[512];
	unsigned char rnd[5];
	const struct rw_inf_json *so;
	int64_t nowms = rw_clock_wall_ms();
	int hs = 0;
	if (!j->rs || !j->st)
		return;
	rw_time_now_rfc3339(now);
	if (rw_rayservice_suspend_active(j->rs) || rw_rayservice_resume_due(j->rs)) {
		suspend_status(j, now, !rw_rayservice_suspend_active(j->rs));
		return;
	}
	rw_rayservice_serve_svc_name(j->rs, svc, sizeof(svc));
	so = rw_inf_get(r->svc_inf, j->rec.ns, svc);
	if (so)
		json_member(so->json, so->len, "spec.selector", "ray.io/cluster", sel, sizeof(sel));
	for (int i = 0; i < 5; i++)
		rnd[i] = (unsigned char)(rand() & 0xff);
	rw_rayservice_random_suffix(rnd, suffix);
	memset(&in, 0, sizeof(in));
	in.active = j->active;
	in.pending = j->pending;
	in.active_head = j->active ? cluster_head(r, j->rec.ns, j->active->obj.name, &hs) : NULL;
	if (hs)
		in.active_head = NULL;
	in.pending_head = j->pending ? cluster_head(r, j->rec.ns, j->pending->obj.name, &hs) : NULL;
	if (hs)
		in.pending_head = NULL;
	in.active_head_without_agent =
	    j->active && !in.active_head && head_without_agent(j, j->active->obj.name);
	in.pending_head_without_agent =
	    j->pending && !in.pending_head && head_without_agent(j, j->pending->obj.name);
	in.svc_cluster = sel;
	in.num_endpoints = so ? count_endpoints(j, svc) : 0;
	in.new_suffix = suffix;
	in.force_new_cluster = health(j, nowms);
	in.opts = &r->rsopts;
	in.now = now;
	in.now_ms = nowms;
	rw_buf_init(&out, 4u << 20);
	if (rw_rayservice_status(j->rs, &in, &out) == 0)
		write_status(j, rw_buf_cstr(&out), out.len);
	else
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot compute the status");
	rw_buf_fini(&out);
	if (!rw_rayservice_cond_true(j->rs, "Ready") || rw_rayservice_pending_name(j->rs)[0])
		j->rec.busy = true;
	/* Catch up on labels (after a restart or a leader change). */
	if (j->active) {
		snprintf(idx, sizeof(idx), "%s/%s", j->rec.ns, j->active->obj.name);
		rw_inf_index_foreach(r->pod_inf, idx, sync_labels_cb, r);
	}
	if (j->pending) {
		snprintf(idx, sizeof(idx), "%s/%s", j->rec.ns, j->pending->obj.name);
		rw_inf_index_foreach(r->pod_inf, idx, sync_labels_cb, r);
	}
}

/* ---- deletion ---- */

static void
st_delete(struct rw_rec_job *rj)
{
	struct rsr_job *j = (struct rsr_job *)rj;
	struct owned w;
	size_t left = 0;
	if (rw_doc_finalizer_index(j->rs->obj.root, RW_RAYSERVICE_CTL_FINALIZER) < 0) {
		j->rec.stop_requeue = true;
		return;
	}
	if (owned_collect(j, &w) != 0) {
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "out of memory");
		owned_fini(&w);
		return;
	}
	for (size_t i = 0; i < w.n; i++) {
		left++;
		if (!w.deleting[i] && cluster_delete(j, w.names[i]) != 0)
			rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot delete RayCluster %s",
				    w.names[i]);
	}
	owned_fini(&w);
	if (left) {
		rw_rec_requeue(&j->rec, 1000); /* cluster delete events come first, usually */
		return;
	}
	/* Every owned cluster is gone: release the finalizer. */
	int i = rw_doc_finalizer_index(j->rs->obj.root, RW_RAYSERVICE_CTL_FINALIZER);
	if (i >= 0) {
		rw_info(LOGC, "%s: every RayCluster is gone; removing the finalizer", j->rec.key);
		if (rw_rec_remove_finalizer(&j->rec, i, RW_RAYSERVICE_CTL_FINALIZER, NULL) != 0)
			rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot remove the finalizer");
	}
	j->rec.stop_requeue = true;
}

/* ---- the step table ---- */

static const struct rw_rec_step rsr_steps[] = {
    [ST_LOAD] = {"load", rw_rec_step_load, 0},	  [ST_ADMIT] = {"admit", st_admit, 0},
    [ST_CLUSTERS] = {"clusters", st_clusters, 0}, [ST_SERVICES] = {"services", st_services, 0},
    [ST_STATUS] = {"status", st_status, ST_DONE}, [ST_DONE] = {"done", NULL, 0},
    [ST_DELETE] = {"delete", st_delete, ST_DONE},
};

static bool
rsr_synced(void *ud)
{
	struct rsr *r = ud;
	return rw_inf_synced(r->rs_inf) && rw_inf_synced(r->rc_inf) && rw_inf_synced(r->pod_inf) &&
	       rw_inf_synced(r->svc_inf) && rw_inf_synced(r->eps_inf);
}

static const struct rw_rec_kind rsr_kind = {
    .name = "rayservice",
    .kind = "RayService",
    .type = &rw_inf_rayservice_type,
    .source = RW_REC_SRC_RAYSERVICE,
    .steps = rsr_steps,
    .nsteps = (int)(sizeof(rsr_steps) / sizeof(rsr_steps[0])),
    .fail_step = ST_STATUS,
    .job_size = sizeof(struct rsr_job),
    .synced = rsr_synced,
    .job_fini = rsr_job_fini,
    .find = rsr_find,
    .gone = rsr_gone,
    .parse = rsr_parse,
    .attach = rsr_attach,
    .delete_step = ST_DELETE,
};

/* KubeRay requeues a RayService every 2 s; a steady one here only every 60 s (events drive it). */
static const struct rw_rec_policy rsr_policy = {
    .busy_ms = RSR_BUSY_REQUEUE_MS,
    .idle_ms = RSR_IDLE_REQUEUE_MS,
    .soonest = true,
    .unsynced_ms = 200,
};

/* ---- setup / teardown ---- */

static void teardown(void *state);

static int
setup(struct rw_mgr *m, void **state)
{
	struct rsr *r = calloc(1, sizeof(*r));
	struct rw_inf_handlers rsh;
	const struct rw_inf_handlers rch = {rc_event, rc_update, rc_delete, r};
	const struct rw_inf_handlers ph = {pod_event, pod_update, pod_delete, r};
	const struct rw_inf_handlers sh = {svc_event, svc_update, svc_event, r};
	const struct rw_inf_handlers eh = {eps_event, eps_update, eps_event, r};
	struct rw_agents_hooks hk;
	struct rw_pp_ops lops = {label_want,  label_build, label_answered,
				 label_retry, NULL,	   "application/merge-patch+json"};
	static const double lat_b[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
				       0.1,   0.25,  0.5,   1,	  2.5};
	if (rw_mgr_cfg(m)->inject_only) {
		/* Another operator owns the ray.io kinds (--inject-only). */
		free(r);
		*state = NULL;
		return 0;
	}
	if (!r)
		return -ENOMEM;
	*state = r;
	r->mgr = m;
	r->met = rw_mgr_metrics(m);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	rw_kmap_init(&r->rss);
	rw_krm_cache_init(&r->krm);
	rw_kmap_init(&r->cl2rs);
	rw_kmap_init(&r->svc2rs);
	r->agents = rw_mgr_agents(m);
	rw_rayservice_opts_default(&r->rsopts);
	rw_rayservice_opts_from_env(&r->rsopts, getenv);
	rw_raycluster_opts_default(&r->rcopts);
	rw_raycluster_opts_from_env(&r->rcopts, getenv);
	r->m_label =
	    rw_met_counter(r->met, "raywarden_rayservice_serve_label_patches_total",
			   "ray.io/serve label patches on RayService pods, by value and result.",
			   (const char *const[]){"value", "result", NULL});
	r->m_label_lat = rw_met_histogram(r->met, "raywarden_rayservice_serve_label_patch_seconds",
					  "Round trip of a ray.io/serve label patch.", NULL, lat_b,
					  (int)(sizeof(lat_b) / sizeof(lat_b[0])));
	r->m_clusters = rw_met_counter(r->met, "raywarden_rayservice_cluster_operations_total",
				       "RayClusters created, updated and deleted for RayServices.",
				       (const char *const[]){"op", NULL});
	register_metrics(r);
	if (rw_rec_ctl_setup(&r->ctl, m, &rsr_kind, &rsr_policy, r) == 0)
		r->wq = r->ctl.wq;
	rsh = rw_rec_object_handlers(&r->ctl);
	r->rs_inf = rw_mgr_informer(m, &rw_inf_rayservice_type, NULL, false, NULL, &rsh);
	/* Every RayCluster (shared with the RayCluster reconciler); rc_index keeps ours. */
	r->rc_inf = rw_mgr_informer(m, &rw_inf_raycluster_type, NULL, false, rc_index, &rch);
	r->pod_inf = rw_mgr_informer(m, &rw_inf_pod_type, RW_MGR_RAY_POD_SELECTOR, false,
				     rw_inf_pod_cluster_key, &ph);
	r->svc_inf = rw_mgr_informer(m, &rw_inf_service_type,
				     "ray.io/originated-from-crd=RayService", false, NULL, &sh);
	r->eps_inf = rw_mgr_informer(m, &rw_inf_endpointslice_type, "kubernetes.io/service-name",
				     false, eps_index, &eh);
	if (!r->wq || !r->rs_inf || !r->rc_inf || !r->pod_inf || !r->svc_inf || !r->eps_inf ||
	    rw_met_add_collector(r->met, collect_metrics, r) != 0) {
		teardown(r);
		*state = NULL;
		return -ENOMEM;
	}
	if (!r->agents)
		return 0; /* no hub: no reports, labels stay as the pods were made */
	if (rw_pp_new(rw_mgr_kube(m), r->pod_inf, "ray.io/serve", LABEL_INFLIGHT, &lops, r,
		      &r->labels) != 0) {
		teardown(r);
		*state = NULL;
		return -ENOMEM;
	}
	memset(&hk, 0, sizeof(hk));
	hk.on_report = hk_report;
	hk.on_stale = hk_stale;
	hk.reply = hk_reply;
	hk.ud = r;
	if (rw_agents_register(r->agents, "RayService", &hk) != 0)
		rw_warn(LOGC, "cannot register the agent hooks: no serve config for head agents");
	return 0;
}

static void
teardown(void *state)
{
	struct rsr *r = state;
	if (!r)
		return;
	r->closing = true;
	rw_met_remove_collector(r->met, collect_metrics, r);
	if (r->agents)
		rw_agents_register(r->agents, "RayService", NULL);
	rw_pp_free(r->labels);
	r->labels = NULL;
	rw_rec_ctl_fini(&r->ctl);
	rw_kmap_fini(&r->rss, rs_state_free);
	rw_krm_cache_fini(&r->krm);
	rw_kmap_fini(&r->cl2rs, free);
	rw_kmap_fini(&r->svc2rs, free);
	free(r);
}

const struct rw_mgr_controller rw_rayservice_controller = {
    .name = "rayservice",
    .setup = setup,
    .teardown = teardown,
};

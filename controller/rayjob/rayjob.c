/*
 * rayjob.c - the RayJob reconciler on the reconcile runtime (reconcile.h).
 *
 * One pass: the runtime loads the RayJob; admit skips objects managed
 * elsewhere, adds ray.io/rayjob-finalizer and validates (ValidationFailed,
 * as KubeRay); decide gathers what the caches and the head agent show and
 * calls the pure lifecycle (rj_decide.h); act carries its actions out (the
 * RayCluster, the submitter Job, deletions, the finalizer); service keeps
 * the `<rayjob>-head-svc` Service pointing at the current cluster; and
 * status writes the status when it changed.
 *
 * The Ray job's status comes from the head agent's reports (the hub keeps
 * the head's last one); what the head agent should do (submit in HTTPMode,
 * stop, follow a job id) goes out in the hub's reply to that head. The
 * controller never calls a Ray dashboard.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "krmetrics.h"
#include "agents.h"
#include "batchsched.h"
#include "build_common.h"
#include "doc_builder.h"
#include "hub.h"
#include "kmap.h"
#include "rayjob.h"
#include "reconcile.h"
#include "rj_decide.h"
#include "rj_heads.h"
#include "rj_logs.h"
#include "rj_model.h"
#include "names.h"
#include "podgroup.h"
#include "rw/clock.h"
#include "rw/log.h"

#define LOGC "rayjob"

struct rjr {
	struct rw_rec_ctl ctl;
	struct rw_mgr *mgr;
	struct rw_met *met;
	struct rw_agents *agents;
	struct rw_inf *rj_inf, *rc_inf, *job_inf, *pod_inf;
	struct rw_krm_cache krm; /* RayJob facts for the at-scrape metrics */
	/* The RayJobs' head Services, and how they are built (KubeRay's env). */
	struct rw_inf *svc_inf;
	struct rw_raycluster_opts rcopts;

	struct rw_rj_heads heads; /* what each cluster's head agent is asked, per RayJob */
	struct rw_rj_logs logs;	  /* driver log tails waiting for their ConfigMap */
	struct rw_kmap uids; /* RayJob key -> UID (char *): its metric series outlive the object */
	struct rw_kmap sub_ended; /* RayJob key -> int64_t: SidecarMode submitter seen ended */
	bool delete_self_env;
	char domain[128]; /* CLUSTER_DOMAIN */
	int64_t grace_s, status_check_s;
	int64_t default_ttl_ms; /* --rayjob-default-ttl, 0 off */
	struct rw_met_family *m_info, *m_dep, *m_dur;
};

enum rjr_step {
	ST_LOAD = 0,
	ST_ADMIT,
	ST_DECIDE,
	ST_PODGROUP,
	ST_ACT,
	ST_SERVICE,
	ST_STATUS,
	ST_DONE
};

struct rjr_job {
	struct rw_rec_job rec; /* rec.ud: the struct rjr */
	struct rw_rayjob *rj;
	struct rw_rj_next next;
	struct rw_raycluster *cluster;	    /* as gather_cluster read it, for the service step */
	struct rw_doc_node *cluster_status; /* copied into status.rayClusterStatus, or NULL */
	struct rw_doc_node *bs_submitter;   /* KubeRay's default submitter spec, or NULL */
	char head_image[512];
	int ngroups; /* worker groups of the cluster (DeleteWorkers) */
	bool invalid;
};

static_assert(offsetof(struct rjr_job, rec) == 0, "the runtime's record comes first");

static struct rjr *
rjr_of(struct rjr_job *j)
{
	return j->rec.ud;
}

/* ---- agent hooks (for any cluster: a clusterSelector names clusters the RayJob does not own) ----
 */

/* Bring back every RayJob that asks something of the cluster's head. */
static void
enqueue_users(struct rjr *r, const char *ns, const char *cluster)
{
	char key[512];
	const struct rw_rj_want *w[RW_RJ_HEADS_PER_CLUSTER];
	int n;
	snprintf(key, sizeof(key), "%s/%s", ns, cluster);
	n = rw_rj_heads_of(&r->heads, key, w, RW_RJ_HEADS_PER_CLUSTER);
	for (int i = 0; i < n && r->ctl.wq; i++)
		rw_wq_add(r->ctl.wq, w[i]->rayjob);
}

/* A head report carrying a driver log tail (sent once): keep it for the ConfigMap. */
static void
keep_tails(struct rjr *r, const struct rw_report *now)
{
	char key[512];
	const struct rw_rj_want *w[RW_RJ_HEADS_PER_CLUSTER];
	int n;
	snprintf(key, sizeof(key), "%s/%s", now->ns, now->cluster);
	n = rw_rj_heads_of(&r->heads, key, w, RW_RJ_HEADS_PER_CLUSTER);
	for (int k = 0; k < n; k++)
		for (int i = 0; i < now->njobs; i++) {
			int rv =
			    rw_rj_logs_offer(&r->logs, w[k]->rayjob, w[k]->job_id, &now->jobs[i]);
			if (rv < 0)
				rw_warn(LOGC, "%s: driver log of %s not kept: %s", w[k]->rayjob,
					w[k]->job_id,
					rv == -ENOSPC ? "too many logs waiting" : "out of memory");
		}
}

static void
hk_report(const struct rw_report *now, const struct rw_report *old, void *ud)
{
	(void)old;
	if (strcmp(now->node_type, "head") != 0)
		return;
	keep_tails(ud, now);
	enqueue_users(ud, now->ns, now->cluster);
}

static void
hk_stale(const struct rw_report *last, void *ud)
{
	if (strcmp(last->node_type, "head") == 0)
		enqueue_users(ud, last->ns, last->cluster);
}

static int
hk_reply(const struct rw_report *rep, struct rw_reply *out, void *ud)
{
	struct rjr *r = ud;
	char key[512];
	const struct rw_rj_want *w[1];
	if (strcmp(rep->node_type, "head") != 0)
		return 0;
	snprintf(key, sizeof(key), "%s/%s", rep->ns, rep->cluster);
	if (rw_rj_heads_of(&r->heads, key, w, 1) == 0)
		return 0;
	return rw_rj_heads_reply(&r->heads, key, rep, out);
}

/* The head's latest report from the hub (NULL when none), and whether it went stale. */
static const struct rw_report *
head_report(struct rjr *r, const char *ns, const char *cluster, int *stale)
{
	struct rw_hub *hub = rw_agents_hub(r->agents);
	struct rw_hub_cluster_stats cs;
	*stale = 0;
	if (!hub || rw_hub_cluster_stats(hub, ns, cluster, &cs) != 0 || !cs.head)
		return NULL;
	*stale = cs.head_stale;
	return cs.head;
}

/* ---- informer handlers: owned objects bring their RayJob back ---- */

static void
owned_seen(struct rw_inf *inf, const void *obj, void *ud)
{
	const struct rw_inf_json *o = obj;
	struct rjr *r = ud;
	struct rw_doc_object d;
	struct rw_doc_node *owners;
	(void)inf;
	/* Every RayCluster, Job and head Service event comes here: parse only those a RayJob
	 * may own. */
	if (!strstr(o->json, "RayJob") ||
	    rw_doc_object_parse(o->json, o->len, "object", &d, NULL, 0) != 0)
		return;
	owners = rw_doc_path(d.root, "metadata.ownerReferences");
	for (int i = 0; owners && owners->type == RW_DOC_ARR && i < owners->n; i++) {
		struct rw_doc_node *ref = owners->kids[i];
		const char *kind = rw_doc_gets(ref, "kind"), *name = rw_doc_gets(ref, "name");
		if (kind && name && strcmp(kind, "RayJob") == 0)
			rw_rec_enqueue(&r->ctl, o->meta.ns, name);
	}
	rw_doc_free(d.root);
}

static void
owned_changed(struct rw_inf *inf, const void *old, const void *obj, void *ud)
{
	(void)old;
	owned_seen(inf, obj, ud);
}

static void
pod_changed(struct rw_inf *inf, const void *old, const void *obj, void *ud)
{
	const struct rw_inf_pod *p = obj;
	(void)inf;
	(void)old;
	if (p->node_type && strcmp(p->node_type, "head") == 0)
		enqueue_users(ud, p->meta.ns, p->cluster);
}

static void
pod_gone(struct rw_inf *inf, const void *obj, void *ud)
{
	pod_changed(inf, NULL, obj, ud);
}

/* ---- load (the runtime's step, with these callbacks) and admit ---- */

static const struct rw_inf_json *
rjr_find(struct rw_rec_job *j)
{
	return rw_inf_get(((struct rjr *)j->ud)->rj_inf, j->ns, j->name);
}

/*
 * KubeRay's DeleteRayJobMetrics: kuberay_job_execution_duration_seconds of
 * this name (and uid, for a new RayJob under a reused name). kuberay_job_info
 * and kuberay_job_deployment_status are computed at scrape (collect_metrics).
 */
static void
metrics_remove(struct rjr *r, const char *name, const char *ns, const char *uid)
{
	rw_met_remove_matching(r->m_dur, (const char *const[]){"name", "namespace", "uid", NULL},
			       (const char *const[]){name, ns, uid});
}

/*
 * KubeRay's emitRayJobExecutionDuration: set when an attempt ends (Complete,
 * Failed, Retrying) to now - startTime.
 */
static void
metrics_record(struct rjr_job *j, int64_t start_ms)
{
	struct rjr *r = rjr_of(j);
	const struct rw_rj_next *n = &j->next;
	const char *name = j->rec.name, *ns = j->rec.ns, *uid = j->rj->obj.uid;
	char retry[24];
	if (n->finished_attempt && start_ms > 0) {
		/* The attempts that failed before this one (KubeRay's retry_count). */
		int64_t before = n->failed - (strcmp(n->deployment, RW_RJ_COMPLETE) == 0 ? 0 : 1);
		snprintf(retry, sizeof(retry), "%lld", (long long)(before > 0 ? before : 0));
		rw_met_set(r->m_dur, (const char *const[]){name, ns, uid, n->deployment, retry},
			   (double)(rw_clock_wall_ms() - start_ms) / 1000.0);
	}
}

static void
collect_job(const void *obj, void *ud)
{
	struct rjr *r = ud;
	const struct rw_inf_json *o = obj;
	const struct rw_krm_obj *k =
	    rw_krm_cache_get(&r->krm, o->meta.ns, o->meta.name, o->meta.rv, o->json, o->len);
	if (!k)
		return;
	rw_met_set(r->m_info, (const char *const[]){k->name, k->ns, k->uid}, 1);
	rw_met_set(r->m_dep, (const char *const[]){k->name, k->ns, k->uid, k->deployment_status},
		   1);
}

/* At scrape, from the cache: KubeRay's RayJobMetricsManager.Collect. */
static void
collect_metrics(void *ud)
{
	struct rjr *r = ud;
	rw_met_clear(r->m_info);
	rw_met_clear(r->m_dep);
	rw_krm_cache_begin(&r->krm);
	if (r->rj_inf)
		rw_inf_foreach(r->rj_inf, collect_job, r);
	rw_krm_cache_end(&r->krm);
}

static void
rjr_gone(struct rw_rec_job *j)
{
	struct rjr *r = j->ud;
	char *uid = rw_kmap_del(&r->uids, j->key);
	metrics_remove(r, j->name, j->ns, NULL);
	free(uid);
	rw_rj_logs_drop(&r->logs, j->key);
	rw_rj_heads_drop(&r->heads, j->key);
	free(rw_kmap_del(&r->sub_ended, j->key));
}

static const char *
rjr_parse(struct rw_rec_job *rj, const struct rw_inf_json *o, char *err, size_t errlen)
{
	struct rjr_job *j = (struct rjr_job *)rj;
	if (rw_rayjob_parse(o->json, o->len, &j->rj, err, errlen) != 0)
		return NULL;
	return j->rj->obj.uid;
}

static int
rjr_attach(struct rw_rec_job *rj)
{
	struct rjr_job *j = (struct rjr_job *)rj;
	struct rjr *r = rjr_of(j);
	const char *had = rw_kmap_get(&r->uids, j->rec.key);
	if (!had || strcmp(had, j->rj->obj.uid) != 0) {
		char *uid = strdup(j->rj->obj.uid);
		void *old = NULL;
		if (!uid || rw_kmap_put(&r->uids, j->rec.key, uid, &old) != 0) {
			free(uid);
			return -ENOMEM;
		}
		if (old)
			metrics_remove(r, j->rec.name, j->rec.ns,
				       old); /* a new RayJob, same name */
		free(old);
	}
	return 0;
}

static void
rjr_job_fini(struct rw_rec_job *rj)
{
	struct rjr_job *j = (struct rjr_job *)rj;
	rw_rayjob_free(j->rj);
	rw_raycluster_free(j->cluster);
	rw_doc_free(j->cluster_status);
	rw_doc_free(j->bs_submitter);
}

static void
st_admit(struct rw_rec_job *rj)
{
	struct rjr_job *j = (struct rjr_job *)rj;
	struct rw_rayjob_verr ve;
	int rv;
	if (rw_rec_managed_elsewhere(&j->rec, j->rj->managed_by))
		return;
	rv = rw_rayjob_validate(j->rj, &ve);
	if (rv < 0) {
		rw_rec_abort(&j->rec, rv, "out of memory");
		return;
	}
	if (rv > 0) {
		const char *cur = rw_doc_gets(j->rj->obj.status, "jobDeploymentStatus");
		rw_warn(LOGC, "%s: invalid: %s", j->rec.key, ve.msg);
		j->invalid = true;
		memset(&j->next, 0, sizeof(j->next));
		if (!cur || strcmp(cur, RW_RJ_VALIDATION_FAILED) != 0) {
			/* Sent once the status is written, as every transition's Events. */
			struct rw_rj_event *e = &j->next.ev[j->next.nev++];
			e->warning = true;
			snprintf(e->reason, sizeof(e->reason), "%s", ve.reason);
			snprintf(e->msg, sizeof(e->msg), "%.*s", (int)sizeof(e->msg) - 1, ve.msg);
		}
		snprintf(j->next.deployment, sizeof(j->next.deployment), "%s",
			 RW_RJ_VALIDATION_FAILED);
		snprintf(j->next.reason, sizeof(j->next.reason), "ValidationFailed");
		snprintf(j->next.message, sizeof(j->next.message), "%s", ve.msg);
		j->next.actions = RW_RJ_ACT_WRITE_STATUS;
		j->next.steady = true;
		j->rec.step = ST_STATUS;
		return;
	}
	rw_rec_add_finalizer(&j->rec, j->rj->obj.root, RW_RAYJOB_FINALIZER);
}

/* ---- decide: gather the world ---- */

static int64_t
status_time_ms(const struct rw_doc_node *status, const char *key)
{
	const char *s = rw_doc_gets(status, key);
	int64_t t;
	if (!s || rw_inf_parse_time(s, strlen(s), &t) != 0)
		return 0;
	return t * 1000;
}

static const char *
or_empty(const char *s)
{
	return s ? s : "";
}

static bool
owned_by(const struct rw_doc_node *root, const char *uid)
{
	struct rw_doc_node *owners = rw_doc_path(root, "metadata.ownerReferences");
	for (int i = 0; owners && owners->type == RW_DOC_ARR && i < owners->n; i++)
		if (strcmp(or_empty(rw_doc_gets(owners->kids[i], "uid")), uid) == 0)
			return true;
	return false;
}

/* The RayCluster of the job: what the lifecycle needs, and the status to copy. */
static void
gather_cluster(struct rjr_job *j, const char *name, struct rw_rj_world *w, char *url, size_t urllen)
{
	struct rjr *r = rjr_of(j);
	const struct rw_inf_json *o = name[0] ? rw_inf_get(r->rc_inf, j->rec.ns, name) : NULL;
	struct rw_raycluster *c = NULL;
	struct rw_doc_node *groups, *ports, *ctr;
	char svc[300];
	int64_t port = 8265;
	if (!o || rw_raycluster_parse(o->json, o->len, &c, NULL, 0) != 0)
		return;
	w->cluster_exists = true;
	w->cluster_deleting = o->meta.deleted != 0;
	w->cluster_owned = owned_by(c->obj.root, j->rj->obj.uid);
	w->cluster_ready =
	    strcmp(or_empty(rw_doc_gets(rw_doc_get(c->obj.root, "status"), "state")), "ready") == 0;
	groups = rw_doc_get(c->obj.spec, "workerGroupSpecs");
	j->ngroups = groups && groups->type == RW_DOC_ARR ? groups->n : 0;
	w->workers_suspended = j->ngroups > 0;
	for (int i = 0; i < j->ngroups; i++)
		w->workers_suspended &= rw_doc_true(rw_doc_get(groups->kids[i], "suspend"));
	if (rw_doc_get(c->obj.root, "status"))
		j->cluster_status = rw_doc_clone(rw_doc_get(c->obj.root, "status"));
	/* KubeRay: <head service>.<ns>.svc.<cluster domain>:<the port named dashboard>. */
	ctr = rw_doc_at(rw_doc_path(c->head, "template.spec.containers"), 0);
	ports = rw_doc_get(ctr, "ports");
	for (int i = 0; ports && ports->type == RW_DOC_ARR && i < ports->n; i++)
		if (strcmp(or_empty(rw_doc_gets(ports->kids[i], "name")), "dashboard") == 0)
			port = rw_doc_int_or(ports->kids[i], "containerPort", 8265);
	snprintf(j->head_image, sizeof(j->head_image), "%s", or_empty(rw_doc_gets(ctr, "image")));
	rw_raycluster_head_svc_name(c, svc, sizeof(svc));
	if (snprintf(url, urllen, "%s.%s.svc.%s:%lld", svc, j->rec.ns, rjr_of(j)->domain,
		     (long long)port) < (int)urllen)
		w->dashboard_url = url; /* a name too long for a DNS name gets none */
	rw_raycluster_free(j->cluster);
	j->cluster = c; /* the service step builds from it: no second parse */
}

struct pod_scan {
	int n;
	const struct rw_inf_pod *head; /* the live head pod, if any */
};

static void
scan_pod(const void *obj, void *ud)
{
	const struct rw_inf_pod *p = obj;
	struct pod_scan *ps = ud;
	ps->n++;
	if (!p->meta.deleted && p->node_type && strcmp(p->node_type, "head") == 0)
		ps->head = p;
}

/* The batch Job of K8sJobMode: its state, from its conditions. */
static void
gather_submitter(struct rjr_job *j, struct rw_rj_world *w)
{
	const struct rw_inf_json *o = rw_inf_get(rjr_of(j)->job_inf, j->rec.ns, j->rec.name);
	struct rw_doc_object d;
	struct rw_doc_node *conds;
	if (!o || rw_doc_object_parse(o->json, o->len, "Job", &d, NULL, 0) != 0)
		return;
	w->submitter_exists = true;
	w->submitter = o->meta.deleted ? RW_RJ_SUB_NONE : RW_RJ_SUB_RUNNING;
	conds = rw_doc_get(d.status, "conditions");
	for (int i = 0; conds && conds->type == RW_DOC_ARR && i < conds->n; i++) {
		const char *type = rw_doc_gets(conds->kids[i], "type");
		if (strcmp(or_empty(rw_doc_gets(conds->kids[i], "status")), "True") != 0)
			continue;
		if (strcmp(or_empty(type), "Complete") == 0 ||
		    strcmp(or_empty(type), "Failed") == 0) {
			w->submitter =
			    strcmp(type, "Complete") == 0 ? RW_RJ_SUB_SUCCEEDED : RW_RJ_SUB_FAILED;
			w->submitter_finished_ms =
			    status_time_ms(conds->kids[i], "lastTransitionTime");
		}
	}
	rw_doc_free(d.root);
}

/*
 * SidecarMode's submitter: its container's exit code and finishedAt in the
 * head pod's status when the cache has them (a failed submitter with a job
 * Ray does not know is SubmissionFailed, as KubeRay). Without them, from the
 * head pod's Ready condition (rw_rj_sidecar_ended): an ended submitter then
 * counts as succeeded, and KubeRay's 30 s "Submitter completed but Ray job
 * not found" timer starts when this controller first saw it ended (kept per
 * RayJob).
 */
static void
sidecar_submitter(struct rjr_job *j, const struct rw_inf_pod *head, struct rw_rj_world *w)
{
	struct rjr *r = rjr_of(j);
	int64_t *seen;
	if (head->submitter_ended) {
		w->submitter = head->submitter_exit == 0 ? RW_RJ_SUB_SUCCEEDED : RW_RJ_SUB_FAILED;
		if (head->submitter_finished_ms > 0) {
			w->submitter_finished_ms = head->submitter_finished_ms;
			return;
		}
	} else if (!rw_rj_sidecar_ended(head->ready, head->ready_message, head->ray_container)) {
		w->submitter = RW_RJ_SUB_RUNNING;
		free(rw_kmap_del(&r->sub_ended, j->rec.key));
		return;
	} else {
		w->submitter = RW_RJ_SUB_SUCCEEDED;
	}
	seen = rw_kmap_get(&r->sub_ended, j->rec.key);
	if (!seen && (seen = malloc(sizeof(*seen))) != NULL) {
		*seen = w->now_ms;
		if (rw_kmap_put(&r->sub_ended, j->rec.key, seen, NULL) != 0) {
			free(seen);
			seen = NULL;
		}
	}
	w->submitter_finished_ms = seen ? *seen : 0;
}

/* The Ray job, per the head agent's last report. */
static void
gather_ray(struct rjr_job *j, const char *cluster, const char *job_id, const char *deployment,
	   struct rw_rj_world *w)
{
	struct rjr *r = rjr_of(j);
	int stale;
	const struct rw_report *h = head_report(r, j->rec.ns, cluster, &stale);
	char key[512];
	bool head_pod = false;
	const struct rw_inf_pod *p;
	struct pod_scan ps = {0};
	snprintf(key, sizeof(key), "%s/%s", j->rec.ns, cluster);
	/* Is there a head pod, and any pod at all, of the cluster? */
	rw_inf_index_foreach_by(r->pod_inf, rw_inf_pod_cluster_key, key, scan_pod, &ps);
	w->cluster_pods_exist = ps.n > 0;
	if (h) {
		p = rw_inf_get(r->pod_inf, j->rec.ns, h->pod);
		head_pod = p && !p->meta.deleted;
	}
	w->head_pod_exists = head_pod;
	w->head_ray_ready = ps.head && ps.head->agent_ready == RW_COND_TRUE;
	w->head_without_agent = ps.head && rw_inf_pod_agent_silent(ps.head, h != NULL);
	if (j->rj->mode == RW_RAYJOB_SIDECAR && ps.head)
		sidecar_submitter(j, ps.head, w);
	else if (j->rj->mode == RW_RAYJOB_SIDECAR)
		free(rw_kmap_del(&r->sub_ended, j->rec.key)); /* a retry's head starts afresh */
	w->head_reporting = h && !stale;
	if (strcmp(deployment, RW_RJ_RUNNING) == 0 && w->cluster_exists) {
		if (h && stale) {
			w->head_lost = true;
			w->head_lost_why =
			    "the head's agent stopped reporting while the job was running";
		} else if (h && !head_pod) {
			w->head_lost = true;
			w->head_lost_why = "the head pod was deleted while the job was running";
		}
	}
	if (!w->head_reporting || !job_id[0])
		return;
	for (int i = 0; i < h->njobs; i++) {
		const struct rw_job *rj = &h->jobs[i];
		if (strcmp(rj->submission_id, job_id) != 0)
			continue;
		if (strcmp(rj->status, "NOT_FOUND") == 0) {
			w->ray = RW_RJ_RAY_NOT_FOUND;
		} else if (strcmp(rj->status, "GONE") == 0) {
			/* Seen, then gone: deleted, or a head restart without GCS FT. */
			if (strcmp(deployment, RW_RJ_RUNNING) == 0) {
				w->head_lost = true;
				w->head_lost_why =
				    "Ray no longer knows the job (the head restarted "
				    "without GCS fault tolerance, or it was deleted)";
			}
		} else if (rj->status[0]) {
			w->ray = RW_RJ_RAY_KNOWN;
			w->ray_status = rj->status;
			w->ray_message = rj->message;
			w->ray_last_error = rj->last_error_line[0] ? rj->last_error_line : NULL;
			w->ray_start_ms = rj->start_time_ms;
			w->ray_end_ms = rj->end_time_ms;
		} else if (j->rj->mode == RW_RAYJOB_HTTP &&
			   strcmp(rj->message, "submit failed") == 0) {
			/* Ray never took it: submit again (the agent retries after its
			 * back-off only when asked), not a job without status. */
			w->ray = RW_RJ_RAY_NOT_FOUND;
		}
		if (j->rj->mode == RW_RAYJOB_HTTP && h->job_action_error[0])
			w->submit_error = h->job_action_error;
		return;
	}
	/* Not tracked by the agent yet: HTTPMode submits, the others ask it to watch. */
	if (j->rj->mode == RW_RAYJOB_HTTP)
		w->ray = RW_RJ_RAY_NOT_FOUND;
}

static void
st_decide(struct rw_rec_job *rj)
{
	struct rjr_job *j = (struct rjr_job *)rj;
	struct rjr *r = rjr_of(j);
	struct rw_doc_node *st = j->rj->obj.status;
	struct rw_rj_status cur = {
	    .deployment = or_empty(rw_doc_gets(st, "jobDeploymentStatus")),
	    .job_status = or_empty(rw_doc_gets(st, "jobStatus")),
	    .job_id = or_empty(rw_doc_gets(st, "jobId")),
	    .cluster_name = or_empty(rw_doc_gets(st, "rayClusterName")),
	    .dashboard_url = or_empty(rw_doc_gets(st, "dashboardURL")),
	    .reason = or_empty(rw_doc_gets(st, "reason")),
	    .message = or_empty(rw_doc_gets(st, "message")),
	    .start_ms = status_time_ms(st, "startTime"),
	    .end_ms = status_time_ms(st, "endTime"),
	    .succeeded = rw_doc_int_or(st, "succeeded", 0),
	    .failed = rw_doc_int_or(st, "failed", 0),
	    .check_fail_start_ms = status_time_ms(st, "jobStatusCheckFailureStartTime"),
	};
	struct rw_rj_spec spec = {
	    .name = j->rec.name,
	    .mode = j->rj->mode,
	    .has_selector = j->rj->selector_cluster != NULL,
	    .selector_cluster = j->rj->selector_cluster,
	    .spec_job_id = j->rj->spec_job_id,
	    .suspend = j->rj->suspend,
	    .shutdown_after_finishes = j->rj->shutdown_after_finishes,
	    .delete_self_env = r->delete_self_env,
	    .default_ttl_ms = r->default_ttl_ms,
	    .ttl_s = j->rj->ttl_after_finished_s,
	    .active_deadline_s = j->rj->active_deadline_s,
	    .pre_running_deadline_s = j->rj->pre_running_deadline_s,
	    .backoff_limit = j->rj->backoff_limit,
	    .nrules = j->rj->nrules,
	    .rules = j->rj->rules,
	    .legacy_strategy = j->rj->legacy_strategy,
	};
	struct rw_rj_world w;
	unsigned char rnd[5];
	char suffix[6], url[768];
	const char *cluster =
	    cur.cluster_name[0] ? cur.cluster_name : or_empty(spec.selector_cluster);
	memset(&w, 0, sizeof(w));
	for (int i = 0; i < 5; i++)
		rnd[i] = (unsigned char)rand();
	rw_name_random_suffix(rnd, suffix);
	w.now_ms = rw_clock_wall_ms();
	w.suffix = suffix;
	w.deleting = j->rec.deleted_at != 0;
	w.deleted_at_ms = j->rec.deleted_at * 1000;
	w.grace_s = r->grace_s;
	w.status_check_s = r->status_check_s;
	gather_cluster(j, cluster, &w, url, sizeof(url));
	gather_submitter(j, &w);
	if (cluster[0])
		gather_ray(j, cluster, cur.job_id, cur.deployment, &w);
	rw_rj_decide(&cur, &spec, &w, &j->next);
	if (!w.deleting)
		metrics_record(j, cur.start_ms);
	if (w.deleting && !(j->next.actions & RW_RJ_ACT_REMOVE_FINALIZER))
		j->next.actions &= ~RW_RJ_ACT_WRITE_STATUS;
}

/* ---- the batch scheduler (--batch-scheduler) ---- */

static enum rw_bs_kind
bs_kind(struct rjr_job *j)
{
	return (enum rw_bs_kind)rjr_of(j)->rcopts.batch_scheduler;
}

/* The RayJob as the parent of its PodGroup and children (batchsched.h). */
static int
bs_parent(struct rjr_job *j, struct rw_bs_parent *p)
{
	const struct rw_rayjob *rj = j->rj;
	memset(p, 0, sizeof(*p));
	p->rayjob = true;
	p->name = rj->obj.name;
	p->ns = rj->obj.ns;
	p->uid = rj->obj.uid;
	p->labels = rj->obj.labels;
	p->annotations = rj->obj.annotations;
	p->cluster_spec = rj->cluster_spec;
	if (!j->bs_submitter && !(j->bs_submitter = rw_bs_default_submitter_spec()))
		return -ENOMEM;
	p->submitter_spec = rw_doc_get(rj->submitter_template, "spec");
	if (!p->submitter_spec)
		p->submitter_spec = j->bs_submitter;
	if (rj->mode == RW_RAYJOB_K8SJOB)
		p->submitter_resources_spec = p->submitter_spec;
	else if (rj->mode == RW_RAYJOB_SIDECAR)
		p->submitter_resources_spec = j->bs_submitter;
	return 0;
}

/* AddMetadataToChildResource on a built child (JSON in b, replaced). */
static int
bs_stamp(struct rjr_job *j, struct rw_buf *b, const char *path, bool pod, const char *group)
{
	struct rw_bs_parent p;
	struct rw_buf out;
	int rv;
	if (bs_kind(j) == RW_BS_NONE)
		return 0;
	if ((rv = bs_parent(j, &p)) != 0)
		return rv;
	rw_buf_init(&out, 16u << 20);
	rv = rw_bs_child_metadata_json(bs_kind(j), &p, rw_buf_cstr(b), b->len, path, pod, group,
				       &out);
	if (!rv) {
		rw_buf_reset(b);
		rv = rw_buf_append(b, out.data, out.len);
	}
	rw_buf_fini(&out);
	return rv;
}

/*
 * DoBatchSchedulingOnSubmission while the RayJob is Initializing (before its
 * cluster), and the PodGroup's removal once it is Complete or Failed (KubeRay
 * v1.6's CleanupOnCompletion: a kept PodGroup holds its queue's capacity).
 */
static void
st_podgroup(struct rw_rec_job *rj)
{
	struct rjr_job *j = (struct rjr_job *)rj;
	enum rw_bs_kind k = bs_kind(j);
	const char *dep = rw_doc_gets(j->rj->obj.status, "jobDeploymentStatus");
	struct rw_bs_parent p;
	char path[512], err[512], name[320];
	struct rw_buf b;
	int rv;
	if (k == RW_BS_NONE || j->rec.deleted_at || j->invalid)
		return;
	if ((rv = bs_parent(j, &p)) != 0) {
		rw_rec_fail(&j->rec, rv, NULL, "out of memory");
		return;
	}
	if (rw_rj_terminal(j->next.deployment)) {
		if (k != RW_BS_VOLCANO || !p.cluster_spec)
			return;
		rw_bs_podgroup_collection(k, p.ns, path, sizeof(path));
		rw_bs_volcano_group_name(&p, name, sizeof(name));
		if (rw_podgroup_delete(&j->rec, path, name, "RayJob") != 0)
			rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot delete PodGroup %s", name);
		return;
	}
	/* KubeRay moves a suspended Initializing RayJob to Suspending before scheduling it. */
	if (j->rj->suspend ||
	    (!(j->next.actions & RW_RJ_ACT_CREATE_CLUSTER) && !streq(dep, RW_RJ_INITIALIZING)))
		return;
	rw_buf_init(&b, 1u << 20);
	rv = rw_bs_podgroup(k, &p, &b, path, sizeof(path), err, sizeof(err));
	if (!rv && b.len)
		rv = rw_podgroup_sync(&j->rec, path, rw_buf_cstr(&b), k == RW_BS_VOLCANO);
	if (rv) {
		/* As KubeRay: the pass ends here, the status stays as it was. */
		rw_rec_fail(&j->rec, rv, NULL, "%s", *err ? err : "cannot sync the PodGroup");
		j->next.actions &=
		    ~(unsigned)(RW_RJ_ACT_WRITE_STATUS | RW_RJ_ACT_COPY_CLUSTER_STATUS);
	}
	rw_buf_fini(&b);
}

/* ---- act ---- */

static void
emit_events(struct rjr_job *j)
{
	for (int i = 0; i < j->next.nev; i++)
		rw_rec_emit(&j->rec, j->next.ev[i].warning, j->next.ev[i].reason, "%s",
			    j->next.ev[i].msg);
}

static void
create_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rjr_job *j = q->job;
	char reason[64];
	if (rw_kube_already_exists(resp))
		return; /* made by an earlier pass the cache has not shown yet */
	if (!rw_rec_ok(resp->status)) {
		snprintf(reason, sizeof(reason), "FailedToCreate%s", q->s2);
		rw_rec_emit(&j->rec, 1, reason, "Failed to create %s %s/%s: %ld %s", q->s2,
			    j->rec.ns, q->s1, resp->status, resp->message);
		rw_rec_fail(&j->rec, -EIO, NULL, "creating %s %s: HTTP %ld %s", q->s2, q->s1,
			    resp->status, resp->message);
		return;
	}
	snprintf(reason, sizeof(reason), "Created%s", q->s2);
	rw_rec_emit(&j->rec, 0, reason, "Created %s %s/%s", q->s2, j->rec.ns, q->s1);
}

static void
delete_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rjr_job *j = q->job;
	char reason[64];
	if (resp->status == 404)
		return;
	if (!rw_rec_ok(resp->status)) {
		snprintf(reason, sizeof(reason), "FailedToDelete%s", q->s2);
		rw_rec_emit(&j->rec, 1, reason, "Failed to delete %s %s/%s: %ld %s", q->s2,
			    j->rec.ns, q->s1, resp->status, resp->message);
		rw_rec_fail(&j->rec, -EIO, NULL, "deleting %s %s: HTTP %ld %s", q->s2, q->s1,
			    resp->status, resp->message);
		return;
	}
	snprintf(reason, sizeof(reason), "Deleted%s", q->s2);
	rw_rec_emit(&j->rec, 0, reason, "Deleted %s %s/%s", q->s2, j->rec.ns, q->s1);
}

static void
post(struct rjr_job *j, const char *api, const char *resource, const char *name, const char *what,
     const struct rw_buf *body)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/namespaces/%s/%s", api, j->rec.ns, resource);
	if (rw_rec_send(&j->rec, "POST", path, body->data, body->len, create_cb, name, what,
			NULL) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot create %s %s", what, name);
}

static void
delete_bg(struct rjr_job *j, const char *api, const char *resource, const char *name,
	  const char *what)
{
	char path[768];
	snprintf(path, sizeof(path), "%s/namespaces/%s/%s/%s", api, j->rec.ns, resource, name);
	rw_info(LOGC, "%s: deleting %s %s", j->rec.key, what, name);
	if (rw_rec_delete(&j->rec, path, delete_cb, name, what) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot delete %s %s", what, name);
}

/* DeleteWorkers: suspend every worker group of the cluster (a JSON patch). */
static void
suspend_workers(struct rjr_job *j)
{
	struct rw_buf b;
	char path[512];
	struct rw_kube_req kr;
	int err = 0;
	rw_buf_init(&b, 64u << 10);
	err |= rw_buf_putc(&b, '[');
	for (int i = 0; i < j->ngroups; i++)
		err |= rw_buf_printf(&b,
				     "%s{\"op\":\"add\",\"path\":\"/spec/workerGroupSpecs/%d/"
				     "suspend\",\"value\":true}",
				     i ? "," : "", i);
	err |= rw_buf_putc(&b, ']');
	snprintf(path, sizeof(path), "/apis/ray.io/v1/namespaces/%s/rayclusters/%s", j->rec.ns,
		 j->next.cluster_name);
	memset(&kr, 0, sizeof(kr));
	kr.method = "PATCH";
	kr.path = path;
	kr.body = rw_buf_cstr(&b);
	kr.body_len = b.len;
	kr.content_type = "application/json-patch+json";
	kr.verb = "patch";
	if (err || rw_rec_request(j->rec.ctl, j, &kr, NULL, NULL, NULL, NULL) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot suspend the worker groups");
	else
		rw_rec_emit(&j->rec, 0, "UpdatedRayCluster", "Suspended the worker groups of %s/%s",
			    j->rec.ns, j->next.cluster_name);
	rw_buf_fini(&b);
}

static void
remove_finalizer(struct rjr_job *j)
{
	int i = rw_doc_finalizer_index(j->rj->obj.root, RW_RAYJOB_FINALIZER);
	if (i >= 0 && rw_rec_remove_finalizer(&j->rec, i, RW_RAYJOB_FINALIZER, NULL) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot remove the finalizer");
}

/*
 * The head agent reads a finished job's log and sends its tail after the
 * job's end, which may come after the RayJob is already Complete: the job
 * stays followed this long after endTime so the tail still finds its RayJob.
 */
#define LOG_WAIT_MS 60000

/*
 * Tell the hub's reply hook what the head agent should do for this job.
 * Returns when to look again (ms; 0: no need).
 */
static uint64_t
set_wants(struct rjr_job *j)
{
	struct rjr *r = rjr_of(j);
	const struct rw_rj_next *n = &j->next;
	char key[512], err[256];
	struct rw_job_submit sub;
	unsigned want = n->actions & (RW_RJ_ACT_SUBMIT | RW_RJ_ACT_STOP_JOB | RW_RJ_ACT_WATCH);
	int64_t log_until = n->end_ms ? n->end_ms + LOG_WAIT_MS : 0, now = rw_clock_wall_ms();
	uint64_t again = 0;
	bool submit = false;
	int rv;
	if (rw_rj_terminal(n->deployment) && now < log_until && !j->rec.deleted_at) {
		want |= RW_RJ_ACT_WATCH;
		again = (uint64_t)(log_until - now) + 1;
	}
	if (!want || !n->cluster_name[0] || !n->job_id[0]) {
		rw_rj_heads_drop(&r->heads, j->rec.key);
		return 0;
	}
	snprintf(key, sizeof(key), "%s/%s", j->rec.ns, n->cluster_name);
	memset(&sub, 0, sizeof(sub));
	if (want & RW_RJ_ACT_SUBMIT) {
		submit = rw_rayjob_http_submission(j->rj, n->job_id, &sub, err, sizeof(err)) == 0;
		if (!submit)
			rw_warn(LOGC, "%s: cannot build the submission: %s", j->rec.key, err);
	}
	rv = rw_rj_heads_set(&r->heads, j->rec.key, key, n->job_id,
			     (want & RW_RJ_ACT_STOP_JOB) != 0, submit ? &sub : NULL);
	if (rv == -ENOSPC)
		rw_warn(LOGC, "%s: cluster %s serves %d RayJobs already: waiting", j->rec.key,
			n->cluster_name, RW_RJ_HEADS_PER_CLUSTER);
	else if (rv)
		rw_rec_fail(&j->rec, rv, NULL, "out of memory");
	return again;
}

static void
log_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rjr_job *j = q->job;
	struct rjr *r = rjr_of(j);
	const struct rw_rj_log *g = rw_rj_logs_get(&r->logs, j->rec.key);
	if (rw_kube_already_exists(resp) && q->ptr) {
		/* It exists (an earlier attempt's log): replace it. */
		struct rw_buf b;
		char path[512];
		rw_buf_init(&b, 1u << 20);
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/%s", j->rec.ns,
			 q->s1);
		if (!g ||
		    rw_rj_logs_configmap(j->rec.ns, j->rec.name, j->rj->obj.uid, g, &b) != 0 ||
		    rw_rec_send(&j->rec, "PUT", path, rw_buf_cstr(&b), b.len, log_cb, q->s1,
				g->job_id, NULL) != 0)
			rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot write ConfigMap %s", q->s1);
		rw_buf_fini(&b);
		return;
	}
	if (!rw_rec_ok(resp->status)) {
		rw_rec_fail(&j->rec, -EIO, NULL, "writing ConfigMap %s: HTTP %ld %s", q->s1,
			    resp->status, resp->message);
		return;
	}
	if (g && q->s2 && strcmp(g->job_id, q->s2) == 0)
		rw_rj_logs_drop(&r->logs, j->rec.key); /* not a newer tail that came meanwhile */
}

/* The driver log's tail, once the head agent sent it: into <rayjob>-driver-log. */
static void
write_log(struct rjr_job *j)
{
	struct rjr *r = rjr_of(j);
	const struct rw_rj_log *g = rw_rj_logs_get(&r->logs, j->rec.key);
	struct rw_buf b;
	char path[512], name[300];
	if (!g || j->rec.deleted_at)
		return;
	snprintf(name, sizeof(name), "%s%s", j->rec.name, RW_RJ_LOGS_SUFFIX);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", j->rec.ns);
	rw_buf_init(&b, 1u << 20);
	if (rw_rj_logs_configmap(j->rec.ns, j->rec.name, j->rj->obj.uid, g, &b) != 0 ||
	    rw_rec_send(&j->rec, "POST", path, rw_buf_cstr(&b), b.len, log_cb, name, g->job_id,
			(void *)1) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot write ConfigMap %s", name);
	rw_buf_fini(&b);
}

static void
st_act(struct rw_rec_job *rj)
{
	struct rjr_job *j = (struct rjr_job *)rj;
	const struct rw_rj_next *n = &j->next;
	unsigned a = n->actions;
	struct rw_buf b;
	/* The Events of a transition go out once its status is written: a pass
	 * on a cache that has not seen the last write yet decides the same
	 * transition again, and its write fails with a conflict (one Retrying
	 * Event per attempt, not two). */
	if (!(a & RW_RJ_ACT_WRITE_STATUS) || j->rec.deleted_at)
		emit_events(j);
	uint64_t again = set_wants(j);
	rw_buf_init(&b, 16u << 20);
	if (a & RW_RJ_ACT_CREATE_CLUSTER) {
		/* KubeRay stamps the RayCluster for the scheduler in K8sJobMode only. */
		if (rw_rayjob_build_cluster(j->rj, n->cluster_name, n->job_id, &b) == 0 &&
		    (j->rj->mode != RW_RAYJOB_K8SJOB || bs_stamp(j, &b, NULL, false, "") == 0))
			post(j, "/apis/ray.io/v1", "rayclusters", n->cluster_name, "RayCluster",
			     &b);
		else
			rw_rec_fail(&j->rec, -EINVAL, NULL, "cannot build RayCluster %s",
				    n->cluster_name);
	}
	if ((a & RW_RJ_ACT_CREATE_SUBMITTER) && n->dashboard_url[0]) {
		rw_buf_reset(&b);
		if (rw_rayjob_build_submitter(j->rj, n->job_id, n->dashboard_url, j->head_image,
					      &b) == 0 &&
		    bs_stamp(j, &b, "spec.template", true, RW_BS_SUBMITTER_GROUP) == 0)
			post(j, "/apis/batch/v1", "jobs", j->rec.name, "RayJobSubmitter", &b);
		else
			rw_rec_fail(&j->rec, -EINVAL, NULL, "cannot build the submitter Job");
	}
	rw_buf_fini(&b);
	if (a & RW_RJ_ACT_DELETE_SUBMITTER)
		delete_bg(j, "/apis/batch/v1", "jobs", j->rec.name, "RayJobSubmitter");
	if ((a & RW_RJ_ACT_DELETE_CLUSTER) && n->cluster_name[0])
		delete_bg(j, "/apis/ray.io/v1", "rayclusters", n->cluster_name, "RayCluster");
	if (a & RW_RJ_ACT_SUSPEND_WORKERS)
		suspend_workers(j);
	if (a & RW_RJ_ACT_DELETE_SELF)
		delete_bg(j, "/apis/ray.io/v1", "rayjobs", j->rec.name, "RayJob");
	if (a & RW_RJ_ACT_REMOVE_FINALIZER)
		remove_finalizer(j);
	write_log(j);
	if (n->requeue_ms)
		rw_rec_requeue(&j->rec, n->requeue_ms);
	rw_rec_requeue(&j->rec, again);
	j->rec.busy = !n->steady;
	if (n->steady && !n->requeue_ms && !again)
		j->rec.stop_requeue = true;
}

/* ---- the head Service ---- */

/*
 * `<rayjob>-head-svc` (KubeRay v1.5 reconcileServices): made in a pass that
 * starts in Running and switched to the current cluster's head when a retry
 * brought a new cluster, so users keep one name across attempts. It runs
 * after act, so a refused write fails the pass (the back-off retries it)
 * without holding back the job's own actions.
 */
static void
st_service(struct rw_rec_job *rj)
{
	struct rjr_job *j = (struct rjr_job *)rj;
	struct rjr *r = rjr_of(j);
	const char *dep = rw_doc_gets(j->rj->obj.status, "jobDeploymentStatus");
	const char *cluster = rw_doc_gets(j->rj->obj.status, "rayClusterName");
	const struct rw_inf_json *o;
	struct rw_raycluster *c = NULL;
	struct rw_buf b;
	int rv;
	if (j->rec.deleted_at || !cluster || !*cluster || !rw_rayjob_wants_head_service(j->rj, dep))
		return;
	if (j->cluster && strcmp(j->cluster->obj.name, cluster) == 0) {
		c = j->cluster; /* read by decide this pass */
	} else {
		/* Not in the cache yet: the cluster's event brings the RayJob back. */
		o = rw_inf_get(r->rc_inf, j->rec.ns, cluster);
		if (!o)
			return;
		rv = rw_raycluster_parse(o->json, o->len, &c, NULL, 0);
		if (rv) {
			rw_rec_fail(&j->rec, rv, NULL, "cannot read RayCluster %s", cluster);
			return;
		}
	}
	rw_buf_init(&b, 4u << 20);
	rv = rw_rayjob_build_head_service(j->rj, c, &r->rcopts, &b);
	if (rv == 0)
		rw_rec_apply_service(&j->rec, r->svc_inf, rw_buf_cstr(&b), b.len);
	else
		rw_rec_fail(&j->rec, rv, NULL, "cannot build the head Service of cluster %s",
			    cluster);
	rw_buf_fini(&b);
	if (c != j->cluster)
		rw_raycluster_free(c);
}

/* ---- status ---- */

static void
set_time(struct b *bd, node *st, const char *key, int64_t ms)
{
	char t[RW_RFC3339_LEN];
	if (ms <= 0) {
		rw_doc_del(st, key);
		return;
	}
	rw_time_rfc3339(ms / 1000, t);
	sets(bd, st, key, t);
}

static void
set_or_del(struct b *bd, node *st, const char *key, const char *v)
{
	if (v && *v)
		sets(bd, st, key, v);
	else
		rw_doc_del(st, key);
}

static void
status_written(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	if (rw_rec_status_answer(&((struct rjr_job *)q->job)->rec, resp))
		emit_events(q->job);
}

static void
st_status(struct rw_rec_job *rj)
{
	struct rjr_job *j = (struct rjr_job *)rj;
	const struct rw_rj_next *n = &j->next;
	struct rw_buf body;
	struct b bd = {0};
	node *st;
	char now[RW_RFC3339_LEN];
	if (!(n->actions & RW_RJ_ACT_WRITE_STATUS) &&
	    !((n->actions & RW_RJ_ACT_COPY_CLUSTER_STATUS) && j->cluster_status))
		return;
	if (j->rec.deleted_at)
		return; /* the object is going: its status no longer matters */
	st = j->rj->obj.status ? j->rj->obj.status : rw_doc_obj(j->rj->obj.root, "status");
	if (!st) {
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot write the status");
		return;
	}
	set_or_del(&bd, st, "jobDeploymentStatus", n->deployment);
	set_or_del(&bd, st, "jobStatus", n->job_status);
	set_or_del(&bd, st, "reason", n->reason);
	set_or_del(&bd, st, "message", n->message);
	set_or_del(&bd, st, "jobId", n->job_id);
	set_or_del(&bd, st, "rayClusterName", n->cluster_name);
	set_or_del(&bd, st, "dashboardURL", n->dashboard_url);
	set_time(&bd, st, "startTime", n->start_ms);
	set_time(&bd, st, "endTime", n->end_ms);
	set_time(&bd, st, "jobStatusCheckFailureStartTime", n->check_fail_start_ms);
	if (n->succeeded)
		seti(&bd, st, "succeeded", n->succeeded);
	if (n->failed)
		seti(&bd, st, "failed", n->failed);
	if (n->ray_start_ms || n->ray_end_ms) {
		node *info = obj(&bd, st, "rayJobInfo");
		set_time(&bd, info, "startTime", n->ray_start_ms);
		set_time(&bd, info, "endTime", n->ray_end_ms);
	}
	if ((n->actions & RW_RJ_ACT_COPY_CLUSTER_STATUS) && j->cluster_status) {
		set(&bd, st, "rayClusterStatus", j->cluster_status);
		j->cluster_status = NULL;
	}
	if (!n->cluster_name[0])
		rw_doc_del(st, "rayClusterStatus");
	if (j->rj->obj.generation > 0)
		seti(&bd, st, "observedGeneration", j->rj->obj.generation);
	rw_time_now_rfc3339(now);
	{
		node *conds = arr(&bd, st, "conditions");
		bool terminal = rw_rj_terminal(n->deployment);
		int64_t gen = j->rj->obj.generation;
		set_condition(&bd, conds, "Submitted", *n->job_status ? "True" : "False",
			      *n->job_status ? "JobSubmitted" : "NotSubmitted", "", gen, now);
		set_condition(&bd, conds, "Running",
			      strcmp(n->job_status, "RUNNING") == 0 ? "True" : "False",
			      *n->job_status ? n->job_status : "Pending", "", gen, now);
		set_condition(&bd, conds, "Complete",
			      strcmp(n->deployment, RW_RJ_COMPLETE) == 0 ? "True" : "False",
			      terminal ? n->deployment : "NotFinished", "", gen, now);
		set_condition(&bd, conds, "Failed",
			      strcmp(n->deployment, RW_RJ_FAILED) == 0 ||
				      strcmp(n->deployment, RW_RJ_VALIDATION_FAILED) == 0
				  ? "True"
				  : "False",
			      *n->reason ? n->reason : "NotFailed", n->message, gen, now);
		set_condition(&bd, conds, "Suspended",
			      strcmp(n->deployment, RW_RJ_SUSPENDED) == 0 ? "True" : "False",
			      strcmp(n->deployment, RW_RJ_SUSPENDED) == 0 ? "Suspended"
									  : "NotSuspended",
			      "", gen, now);
	}
	if (bd.err) {
		rw_rec_fail(&j->rec, bd.err, NULL, "cannot build the status");
		return;
	}
	rw_buf_init(&body, 16u << 20);
	if (rw_doc_dump(j->rj->obj.root, &body) != 0 ||
	    rw_rec_put_status(&j->rec, rw_buf_cstr(&body), body.len, status_written, NULL) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot write the status");
	rw_buf_fini(&body);
}

/* ---- the kind ---- */

static const struct rw_rec_step rjr_steps[] = {
    [ST_LOAD] = {"load", rw_rec_step_load, 0},
    [ST_ADMIT] = {"admit", st_admit, 0},
    [ST_DECIDE] = {"decide", st_decide, 0},
    [ST_PODGROUP] = {"podgroup", st_podgroup, 0},
    [ST_ACT] = {"act", st_act, 0},
    [ST_SERVICE] = {"service", st_service, 0},
    [ST_STATUS] = {"status", st_status, ST_DONE},
    [ST_DONE] = {"done", NULL, 0},
};

static bool
rjr_synced(void *ud)
{
	struct rjr *r = ud;
	return rw_inf_synced(r->rj_inf) && rw_inf_synced(r->rc_inf) && rw_inf_synced(r->job_inf) &&
	       rw_inf_synced(r->pod_inf) && rw_inf_synced(r->svc_inf);
}

static const struct rw_rec_kind rjr_kind = {
    .name = "rayjob",
    .kind = "RayJob",
    .type = &rw_inf_rayjob_type,
    .source = RW_REC_SRC_RAYJOB,
    .steps = rjr_steps,
    .nsteps = (int)(sizeof(rjr_steps) / sizeof(rjr_steps[0])),
    .fail_step = ST_STATUS,
    .job_size = sizeof(struct rjr_job),
    .synced = rjr_synced,
    .job_fini = rjr_job_fini,
    .find = rjr_find,
    .gone = rjr_gone,
    .parse = rjr_parse,
    .attach = rjr_attach,
    .delete_step = ST_DECIDE,
};

/* KubeRay's period for a RayJob not yet finished (3 s); nothing for a steady one. */
static const struct rw_rec_policy rjr_policy = {
    .busy_ms = RW_RJ_REQUEUE_MS,
    .idle_ms = 0,
    .soonest = true,
    .unsynced_ms = 200,
};

/* ---- setup / teardown ---- */

static int64_t
env_seconds(const char *name, int64_t def)
{
	const char *v = getenv(name);
	char *end;
	long long n;
	if (!v || !*v)
		return def;
	n = strtoll(v, &end, 10);
	if (*end || n < 0) {
		rw_warn(LOGC, "%s=%s is not a number of seconds: using %lld", name, v,
			(long long)def);
		return def;
	}
	return n;
}

static void teardown(void *state);

static int
setup(struct rw_mgr *m, void **state)
{
	struct rjr *r = calloc(1, sizeof(*r));
	struct rw_inf_handlers own;
	const struct rw_inf_handlers oh = {owned_seen, owned_changed, owned_seen, r};
	const struct rw_inf_handlers ph = {NULL, pod_changed, pod_gone, r};
	struct rw_agents_hooks hk;
	const char *v;
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
	r->agents = rw_mgr_agents(m);
	rw_rj_heads_init(&r->heads);
	rw_rj_logs_init(&r->logs);
	rw_kmap_init(&r->uids);
	rw_krm_cache_init(&r->krm);
	rw_kmap_init(&r->sub_ended);
	v = getenv("DELETE_RAYJOB_CR_AFTER_JOB_FINISHES");
	r->delete_self_env = v && strcmp(v, "true") == 0;
	r->default_ttl_ms = llround(rw_mgr_cfg(m)->rayjob_default_ttl_s * 1000.0);
	if (r->default_ttl_ms > 0)
		rw_info(
		    LOGC,
		    "finished RayJobs without a deletion policy of their own are deleted %.3f s "
		    "after their endTime (--rayjob-default-ttl)",
		    (double)r->default_ttl_ms / 1000.0);
	v = getenv("CLUSTER_DOMAIN");
	snprintf(r->domain, sizeof(r->domain), "%s", v && *v ? v : "cluster.local");
	r->grace_s = env_seconds("RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS",
				 RW_RJ_GRACE_DEFAULT_S);
	r->status_check_s =
	    env_seconds("RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS", RW_RJ_STATUS_CHECK_DEFAULT_S);
	rw_raycluster_opts_default(&r->rcopts);
	rw_raycluster_opts_from_env(&r->rcopts, getenv);
	r->rcopts.batch_scheduler = rw_mgr_cfg(m)->batch_scheduler;
	/* Names, help and labels as KubeRay v1.5.0's controllers/ray/metrics/ray_job_metrics.go. */
	r->m_info = rw_met_gauge(r->met, "kuberay_job_info",
				 "Metadata information about RayJob custom resources",
				 (const char *const[]){"name", "namespace", "uid", NULL});
	r->m_dep = rw_met_gauge(
	    r->met, "kuberay_job_deployment_status", "The RayJob's current deployment status",
	    (const char *const[]){"name", "namespace", "uid", "deployment_status", NULL});
	r->m_dur = rw_met_gauge(
	    r->met, "kuberay_job_execution_duration_seconds",
	    "Duration from when the RayJob CR\u2019s JobDeploymentStatus transitions from "
	    "Initializing to either the Retrying state or a terminal state, such as Complete or "
	    "Failed. The Retrying state indicates that the CR previously failed and that "
	    "spec.backoffLimit is enabled.",
	    (const char *const[]){"name", "namespace", "uid", "job_deployment_status",
				  "retry_count", NULL});
	if (rw_rec_ctl_setup(&r->ctl, m, &rjr_kind, &rjr_policy, r) != 0)
		goto fail;
	own = rw_rec_object_handlers(&r->ctl);
	r->rj_inf = rw_mgr_informer(m, &rw_inf_rayjob_type, NULL, false, NULL, &own);
	r->rc_inf = rw_mgr_informer(m, &rw_inf_raycluster_type, NULL, false, NULL, &oh);
	r->job_inf =
	    rw_mgr_informer(m, &rw_inf_batchjob_type,
			    "app.kubernetes.io/created-by=kuberay-operator", false, NULL, &oh);
	r->pod_inf = rw_mgr_informer(m, &rw_inf_pod_type, RW_MGR_RAY_POD_SELECTOR, false,
				     rw_inf_pod_cluster_key, &ph);
	/* Only the RayJobs' head Services carry this label (their clusters' own head Services
	 * do not); a deleted one brings its RayJob back to make it again. */
	r->svc_inf = rw_mgr_informer(m, &rw_inf_service_type, "ray.io/originated-from-crd=RayJob",
				     false, NULL, &oh);
	if (!r->rj_inf || !r->rc_inf || !r->job_inf || !r->pod_inf || !r->svc_inf)
		goto fail;
	if (rw_met_add_collector(r->met, collect_metrics, r) != 0)
		goto fail;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	if (!r->agents)
		return 0;
	memset(&hk, 0, sizeof(hk));
	hk.on_report = hk_report;
	hk.on_stale = hk_stale;
	hk.reply = hk_reply;
	hk.ud = r;
	hk.every_cluster = true;
	if (rw_agents_register(r->agents, "RayJob", &hk) != 0)
		rw_warn(LOGC, "cannot register the agent hooks: RayJobs get no job status");
	return 0;
fail:
	teardown(r);
	*state = NULL;
	return -ENOMEM;
}

static void
teardown(void *state)
{
	struct rjr *r = state;
	if (!r)
		return;
	rw_met_remove_collector(r->met, collect_metrics, r);
	if (r->agents)
		rw_agents_register(r->agents, "RayJob", NULL);
	rw_rec_ctl_fini(&r->ctl);
	rw_rj_heads_fini(&r->heads);
	rw_rj_logs_fini(&r->logs);
	rw_kmap_fini(&r->uids, free);
	rw_krm_cache_fini(&r->krm);
	rw_kmap_fini(&r->sub_ended, free);
	free(r);
}

const struct rw_mgr_controller rw_rayjob_controller = {
    .name = "rayjob",
    .setup = setup,
    .teardown = teardown,
};

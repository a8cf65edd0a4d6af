/*
 * raycluster.c - the RayCluster reconciler (see raycluster.h): setup and
 * teardown, informer handlers, API request plumbing, the reconcile steps and
 * the status. The readiness gate (on the manager's agent hub) lives in rcr_gate.c and the
 * deletion / Redis cleanup path in rcr_delete.c; rcr.h holds what they share.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "krmetrics.h"
#include "agentkey.h"
#include "batchsched.h"
#include "podgroup.h"
#include "rc_status.h"
#include "rc_validate.h"
#include "rcr.h"
#include "rw/base64.h"
#include "rw/clock.h"
#include "rw/log.h"

#define LOGC "raycluster"

/* ---- small helpers ---- */

/* Name of the object in JSON text (metadata.name), into out. */
int
rw_raycluster_ctl_json_name(const char *json, size_t len, char *out, size_t outlen)
{
	struct rw_json j;
	int rv;
	out[0] = '\0';
	if (!json || rw_json_parse(&j, json, len, 1 << 20, NULL, 0) != 0)
		return -EINVAL;
	rv = rw_json_str(&j, rw_json_path(&j, 0, "metadata.name"), out, outlen) < 0 ? -EINVAL : 0;
	rw_json_fini(&j);
	return rv;
}

/* ---- API requests ---- */

int
rw_raycluster_ctl_request(struct rcr *r, struct rcr_job *j, const struct rw_kube_req *kr,
			  rw_rec_req_cb cb, const char *s1, const char *s2, void *ptr)
{
	return rw_rec_request(&r->ctl, j, kr, cb, s1, s2, ptr);
}

/* ---- per-cluster state ---- */

static void
cl_free(void *p)
{
	struct rcr_cl *cl = p;
	if (!cl)
		return;
	free(cl->written);
	free(cl);
}

struct rcr_cl *
rw_raycluster_ctl_state_get(struct rcr *r, const char *key, const char *uid)
{
	struct rcr_cl *cl = rw_kmap_get(&r->clusters, key);
	if (cl && uid && strcmp(cl->uid, uid) != 0) {
		/* A new incarnation of the name: forget what was done for the old one. */
		rw_raycluster_ctl_state_drop(r, key);
		cl = NULL;
	}
	if (!cl) {
		cl = calloc(1, sizeof(*cl));
		if (!cl)
			return NULL;
		cl->r = r;
		snprintf(cl->key, sizeof(cl->key), "%s", key);
		snprintf(cl->uid, sizeof(cl->uid), "%s", uid ? uid : "");
		if (rw_kmap_put(&r->clusters, key, cl, NULL) != 0) {
			free(cl);
			return NULL;
		}
	}
	return cl;
}

void
rw_raycluster_ctl_state_drop(struct rcr *r, const char *key)
{
	struct rcr_cl *cl = rw_kmap_get(&r->clusters, key);
	char ns[256], name[256];
	if (!cl)
		return;
	rw_rec_split_key(key, ns, sizeof(ns), name, sizeof(name));
	if (cl->rcl) {
		cl->dropping = true;
		rw_redis_cleanup_cancel(cl->rcl); /* calls rcr_cleanup_done, which sees dropping */
		cl->rcl = NULL;
	}
	if (cl->hub_key && r->hub)
		rw_hub_key_remove(r->hub, ns, name);
	rw_exp_clear(r->exp, key);
	/* KubeRay's DeleteRayClusterMetrics: every uid's series of this name. */
	rw_met_remove_matching(r->m_provdur, (const char *const[]){"name", "namespace", NULL},
			       (const char *const[]){name, ns});
	rw_kmap_del(&r->clusters, key);
	cl_free(cl);
}

/* ---- informer handlers ---- */

static void
enqueue_owner_json(struct rcr *r, const struct rw_inf_json *o)
{
	struct rw_json j;
	int owners, i, c;
	if (!r->wq || rw_json_parse(&j, o->json, o->len, 1 << 20, NULL, 0) != 0)
		return;
	owners = rw_json_path(&j, 0, "metadata.ownerReferences");
	RW_JSON_ARR_FOREACH (&j, owners, i, c) {
		char kind[64], name[256], key[512];
		if (rw_json_str(&j, rw_json_get(&j, c, "kind"), kind, sizeof(kind)) < 0 ||
		    strcmp(kind, "RayCluster") != 0 ||
		    rw_json_str(&j, rw_json_get(&j, c, "name"), name, sizeof(name)) < 0)
			continue;
		snprintf(key, sizeof(key), "%s/%s", o->meta.ns, name);
		rw_wq_add(r->wq, key);
	}
	rw_json_fini(&j);
}

static void
svc_add(struct rw_inf *inf, const void *obj, void *ud)
{
	(void)inf;
	enqueue_owner_json(ud, obj);
}

static void
svc_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	(void)inf;
	(void)o;
	enqueue_owner_json(ud, n);
}

static const char *
pod_group(const struct rw_inf_pod *p)
{
	return strcmp(p->node_type, "head") == 0 ? "" : p->group;
}

static void
pod_enqueue(struct rcr *r, const struct rw_inf_pod *p)
{
	char key[512];
	if (!p->cluster[0] || !r->wq)
		return;
	snprintf(key, sizeof(key), "%s/%s", p->meta.ns, p->cluster);
	rw_wq_add(r->wq, key);
}

static void
pod_add(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rcr *r = ud;
	const struct rw_inf_pod *p = obj;
	char scope[512];
	(void)inf;
	snprintf(scope, sizeof(scope), "%s/%s", p->meta.ns, p->cluster);
	rw_exp_observe_add(r->exp, scope, pod_group(p), p->meta.name);
	if (p->meta.deleted)
		rw_exp_observe_delete(r->exp, scope, pod_group(p), p->meta.name);
	pod_enqueue(r, p);
	rw_raycluster_ctl_gate_sync(r, p);
}

static void
pod_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	struct rcr *r = ud;
	const struct rw_inf_pod *op = o, *p = n;
	char scope[512];
	(void)inf;
	if (p->meta.deleted && !op->meta.deleted) {
		snprintf(scope, sizeof(scope), "%s/%s", p->meta.ns, p->cluster);
		rw_exp_observe_delete(r->exp, scope, pod_group(p), p->meta.name);
	}
	if ((op->ready == RW_COND_TRUE) != (p->ready == RW_COND_TRUE))
		rw_met_add(r->m_transitions,
			   (const char *const[]){p->meta.ns,
						 p->ready == RW_COND_TRUE ? "ready" : "not_ready"},
			   1);
	pod_enqueue(r, p);
	rw_raycluster_ctl_gate_sync(r, p);
}

static void
pod_delete(struct rw_inf *inf, const void *obj, void *ud)
{
	struct rcr *r = ud;
	const struct rw_inf_pod *p = obj;
	char scope[512];
	(void)inf;
	snprintf(scope, sizeof(scope), "%s/%s", p->meta.ns, p->cluster);
	rw_exp_observe_delete(r->exp, scope, pod_group(p), p->meta.name);
	pod_enqueue(r, p);
	rw_raycluster_ctl_gate_forget(r, p);
}

static void
rc_add(struct rw_inf *inf, const void *obj, void *ud)
{
	const struct rw_inf_meta *m = obj;
	struct rcr *r = ud;
	(void)inf;
	rw_rec_enqueue(&r->ctl, m->ns, m->name);
}

/*
 * The source of a new RayCluster (rw_rec_source): made by a person or a
 * tool, by a RayJob or by a RayService. A RayJob batch creates a thousand
 * clusters; one created by hand meanwhile takes turns with them.
 */
static unsigned
rc_source(const struct rw_inf_json *o)
{
	struct rw_json j;
	char crd[32] = "";
	if (rw_json_parse(&j, o->json, o->len, 1 << 20, NULL, 0) != 0)
		return RW_REC_SRC_DIRECT;
	rw_json_str(
	    &j,
	    rw_json_get(&j, rw_json_path(&j, 0, "metadata.labels"), "ray.io/originated-from-crd"),
	    crd, sizeof(crd));
	rw_json_fini(&j);
	return rw_rec_source_of(crd);
}

static void
rc_added(struct rw_inf *inf, const void *obj, void *ud)
{
	const struct rw_inf_json *o = obj;
	struct rcr *r = ud;
	rw_rec_enqueue_added(&r->ctl, inf, o->meta.ns, o->meta.name, rc_source(o));
}

/* The raw text of member path of JSON text, or "" (for change detection). */
static int
raw_member(const char *json, size_t len, const char *path, struct rw_buf *out)
{
	struct rw_json j;
	const char *raw;
	size_t n;
	if (rw_json_parse(&j, json, len, 1 << 20, NULL, 0) != 0)
		return -EINVAL;
	raw = rw_json_raw_value(&j, rw_json_path(&j, 0, path), &n);
	if (raw)
		rw_buf_append(out, raw, n);
	rw_json_fini(&j);
	return 0;
}

/*
 * KubeRay's predicate for RayCluster updates: generation, labels or
 * annotations changed (plus deletion and finalizers). Our own status writes
 * change none of them and so do not reconcile the cluster again.
 */
static bool
rc_changed(const struct rw_inf_json *a, const struct rw_inf_json *b)
{
	static const char *const paths[] = {"metadata.labels", "metadata.annotations",
					    "metadata.finalizers", "metadata.ownerReferences"};
	if (a->meta.generation != b->meta.generation || a->meta.deleted != b->meta.deleted ||
	    strcmp(a->meta.uid, b->meta.uid) != 0)
		return true;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct rw_buf x, y;
		bool diff;
		rw_buf_init(&x, 1 << 20);
		rw_buf_init(&y, 1 << 20);
		raw_member(a->json, a->len, paths[i], &x);
		raw_member(b->json, b->len, paths[i], &y);
		diff = !rw_kube_json_equal(x.len ? rw_buf_cstr(&x) : "null", x.len ? x.len : 4,
					   y.len ? rw_buf_cstr(&y) : "null", y.len ? y.len : 4);
		rw_buf_fini(&x);
		rw_buf_fini(&y);
		if (diff)
			return true;
	}
	return false;
}

static void
rc_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	struct rcr *r = ud;
	const struct rw_inf_json *nj = n;
	char key[512];
	struct rcr_cl *cl;
	snprintf(key, sizeof(key), "%s/%s", nj->meta.ns, nj->meta.name);
	cl = rw_kmap_get(&r->clusters, key);
	if (cl && cl->written && strcmp(cl->based_rv, nj->meta.rv) != 0) {
		free(cl->written); /* the cache caught up with our status write */
		cl->written = NULL;
	}
	if (rc_changed(o, n))
		rc_add(inf, n, r);
}

/* ---- pods of a cluster ---- */

static void
pods_collect_cb(const void *obj, void *ud)
{
	struct rcr_pods *ps = ud;
	const struct rw_inf_pod *p = obj;
	struct rw_raycluster_pod *e;
	if (ps->err)
		return;
	if (p->owner_uid[0] && ps->uid && strcmp(p->owner_uid, ps->uid) != 0)
		return; /* a pod of an earlier cluster of the same name */
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 16;
		struct rw_raycluster_pod *np = realloc(ps->pods, cap * sizeof(*np));
		const struct rw_inf_pod **nr = realloc(ps->raw, cap * sizeof(*nr));
		if (np)
			ps->pods = np;
		if (nr)
			ps->raw = nr;
		if (!np || !nr) {
			ps->err = -ENOMEM;
			return;
		}
		ps->cap = cap;
	}
	e = &ps->pods[ps->n];
	ps->raw[ps->n++] = p;
	memset(e, 0, sizeof(*e));
	e->name = p->meta.name;
	e->group = p->group;
	e->type = strcmp(p->node_type, "head") == 0	? RW_RAYCLUSTER_NT_HEAD
		  : strcmp(p->node_type, "worker") == 0 ? RW_RAYCLUSTER_NT_WORKER
							: RW_RAYCLUSTER_NT_OTHER;
	e->phase = p->phase;
	e->ready_cond = p->ready != RW_COND_UNKNOWN;
	e->ready = p->ready == RW_COND_TRUE;
	e->ready_reason = p->ready_reason;
	e->ready_message = p->ready_message;
	e->pod_ip = p->pod_ip;
	e->deleting = p->meta.deleted != 0;
	e->ray_terminated = p->ray_terminated;
	e->restart_policy = p->restart_policy;
	if (e->type == RW_RAYCLUSTER_NT_OTHER)
		ps->n--; /* redis-cleanup pods and unlabelled ones are not Ray nodes */
}

/*
 * Snapshot of a cluster's Ray pods from the informer. The strings point into
 * the store: use the snapshot within the current loop turn only.
 */
int
rw_raycluster_ctl_pods_collect(struct rcr *r, const char *ns, const char *name, const char *uid,
			       struct rcr_pods *ps)
{
	char key[512];
	memset(ps, 0, sizeof(*ps));
	ps->uid = uid;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	rw_inf_index_foreach(r->pod_inf, key, pods_collect_cb, ps);
	return ps->err;
}

void
rw_raycluster_ctl_pods_fini(struct rcr_pods *ps)
{
	free(ps->pods);
	free(ps->raw);
	memset(ps, 0, sizeof(*ps));
}

/* ---- reconcile steps ---- */

static_assert(offsetof(struct rcr_job, rec) == 0, "the runtime's record comes first");

static void
rcr_job_fini(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	if (j->redis_pass)
		memset(j->redis_pass, 0, strlen(j->redis_pass));
	if (j->redis_user)
		memset(j->redis_user, 0, strlen(j->redis_user));
	free(j->redis_pass);
	free(j->redis_user);
	free(j->redis_addr);
	free(j->storage_ns);
	rw_raycluster_free(j->c);
}

bool
rw_raycluster_ctl_ft_cleanup_wanted(const struct rcr *r, const struct rw_raycluster *c)
{
	return r->ft_cleanup && rw_raycluster_gcs_ft(c);
}

static bool
status_cond_true(const struct rw_raycluster *c, const char *type)
{
	return rw_doc_cond_true(rw_doc_path(c->obj.root, "status.conditions"), type);
}

/* Status reason for an invalid spec: merge-patch status.reason when it differs. */
static void
invalid_status_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	if (!rw_rec_ok(resp->status))
		rw_warn(LOGC, "%s: status reason not written: HTTP %ld %s", j->rec.key,
			resp->status, resp->message);
}

static void
st_invalid(struct rcr_job *j, const struct rw_raycluster_verrs *ve)
{
	struct rw_buf body, path;
	struct rw_jw w;
	const char *old = rw_doc_gets(rw_doc_get(j->c->obj.root, "status"), "reason");
	for (int i = 0; i < ve->n; i++)
		rw_rec_emit(&j->rec, 1, ve->e[i].reason, "%s", ve->e[i].msg);
	rw_warn(LOGC, "%s: invalid: %s", j->rec.key, ve->e[0].msg);
	rw_rec_stop(&j->rec); /* like KubeRay: a spec change triggers the next pass */
	if (old && strcmp(old, ve->e[0].msg) == 0)
		return;
	rw_buf_init(&body, 64 * 1024);
	rw_buf_init(&path, 4096);
	rw_jw_init(&w, &body);
	rw_jw_obj_begin(&w);
	rw_jw_key(&w, "status");
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "reason", ve->e[0].msg);
	rw_jw_obj_end(&w);
	rw_jw_obj_end(&w);
	rw_buf_printf(&path, "/apis/ray.io/v1/namespaces/%s/rayclusters/%s/status", j->rec.ns,
		      j->rec.name);
	if (rw_jw_finish(&w) == 0) {
		rw_rec_send(&j->rec, "PATCH", rw_buf_cstr(&path), rw_buf_cstr(&body), body.len,
			    invalid_status_cb, NULL, NULL, NULL);
	}
	rw_buf_fini(&body);
	rw_buf_fini(&path);
}

/* ---- load (the runtime's step, with these callbacks), then admit ---- */

static const struct rw_inf_json *
rcr_find(struct rw_rec_job *j)
{
	return rw_inf_get(((struct rcr *)j->ud)->rc_inf, j->ns, j->name);
}

static void
rcr_gone(struct rw_rec_job *j)
{
	rw_raycluster_ctl_state_drop(j->ud, j->key);
}

static const char *
rcr_parse(struct rw_rec_job *rj, const struct rw_inf_json *o, char *err, size_t errlen)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr_cl *prev = rw_kmap_get(&rcr_of(j)->clusters, j->rec.key);
	const char *json = o->json;
	size_t len = o->len;
	if (prev && prev->written) {
		if (strcmp(prev->based_rv, o->meta.rv) == 0) {
			/* The cache still shows the object our status write replaced. */
			json = prev->written;
			len = strlen(prev->written);
		} else {
			free(prev->written);
			prev->written = NULL;
		}
	}
	if (rw_raycluster_parse(json, len, &j->c, err, errlen) != 0)
		return NULL;
	return j->c->obj.uid;
}

static int
rcr_attach(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr *r = rcr_of(j);
	j->cl = rw_raycluster_ctl_state_get(r, j->rec.key, j->c->obj.uid);
	if (!j->cl)
		return -ENOMEM;
	/*
	 * Its requests, the deletion's included, take turns with other
	 * workloads' (a RayJob's cluster is the RayJob's).
	 */
	j->rec.source = rw_rec_source_of(
	    rw_doc_gets(rw_doc_get(rw_doc_get(j->c->obj.root, "metadata"), "labels"),
			"ray.io/originated-from-crd"));
	return 0;
}

static bool
template_asks_agent(const struct rw_doc_node *group)
{
	const char *v =
	    rw_doc_gets(rw_doc_path(group, "template.metadata.labels"), RW_RAYCLUSTER_INJECT_LABEL);
	return v && strcmp(v, "true") == 0;
}

/*
 * --inject-only: does this cluster of another operator have, or ask for, injected agents?
 * A pod template with the injection label, or a pod that got the agent (selected through its
 * namespace's label, which the controller does not read).
 */
static bool
agents_injected(struct rcr_job *j)
{
	struct rcr_pods ps = {0};
	bool yes = template_asks_agent(j->c->head);
	for (int i = 0; !yes && i < j->c->ngroups; i++)
		yes = template_asks_agent(rw_doc_at(j->c->groups, i));
	if (!yes && rw_raycluster_ctl_pods_collect(rcr_of(j), j->rec.ns, j->rec.name, j->c->obj.uid,
						   &ps) == 0) {
		for (size_t i = 0; !yes && i < ps.n; i++)
			yes = ps.raw[i]->has_agent;
	}
	rw_raycluster_ctl_pods_fini(&ps);
	return yes;
}

static void
st_admit(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rw_raycluster_verrs ve;
	if (rcr_of(j)->inject_only) {
		/* Only the agent key Secret of a cluster with injected agents; no status, no
		   pods, no finalizers: the cluster's operator owns those. */
		if (agents_injected(j))
			j->rec.step = RCR_ST_KEY;
		else
			rw_rec_stop(rj);
		return;
	}
	if (rw_rec_managed_elsewhere(&j->rec, rw_doc_gets(j->c->obj.spec, "managedBy")))
		return;
	if (rw_raycluster_validate(j->c, &ve) > 0)
		st_invalid(j, &ve);
}

static void
st_finalizer(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	if (rw_raycluster_ctl_ft_cleanup_wanted(rcr_of(j), j->c))
		rw_rec_add_finalizer(&j->rec, j->c->obj.root, RW_RAYCLUSTER_CTL_FT_FINALIZER);
}

/* Create an object; AlreadyExists counts as success. s1: name, s2: kind. */
static void
create_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	char reason[128];
	if (rw_kube_already_exists(resp)) {
		if (q->ptr)
			*(unsigned *)q->ptr |= (unsigned)q->kind;
		return;
	}
	if (!rw_rec_ok(resp->status)) {
		snprintf(reason, sizeof(reason), "FailedToCreate%s", q->s2);
		rw_rec_emit(&j->rec, 1, reason, "Failed to create %s %s/%s: HTTP %ld %s", q->s2,
			    j->rec.ns, q->s1, resp->status, resp->message);
		rw_rec_fail(&j->rec, resp->err ? resp->err : -EIO, NULL,
			    "creating %s %s: HTTP %ld %s", q->s2, q->s1, resp->status,
			    resp->message);
		return;
	}
	if (q->ptr)
		*(unsigned *)q->ptr |= (unsigned)q->kind;
	snprintf(reason, sizeof(reason), "Created%s", q->s2);
	rw_rec_emit(&j->rec, 0, reason, "Created %s %s/%s", q->s2, j->rec.ns, q->s1);
}

/*
 * Start a POST of body to the collection; a success (or AlreadyExists) sets
 * bit `kind` in *bits. kind names the object kind for the events
 * (CreatedService / FailedToCreateService).
 */
static int
create_obj(struct rcr_job *j, const char *collection, const struct rw_buf *body,
	   const char *objkind, unsigned *bits, unsigned kind)
{
	char name[256];
	int rv;
	rw_raycluster_ctl_json_name(rw_buf_cstr(body), body->len, name, sizeof(name));
	rv = rw_rec_send(&j->rec, "POST", collection, rw_buf_cstr(body), body->len, create_cb, name,
			 objkind, bits);
	if (rv == 0)
		rcr_of(j)->ctl.reqs->kind = (int)kind; /* the request just linked */
	return rv;
}

int
rw_raycluster_ctl_create(struct rcr_job *j, const char *collection, const struct rw_buf *body,
			 const char *kind)
{
	return create_obj(j, collection, body, kind, NULL, 0);
}

struct rw_inf_handlers
rw_raycluster_ctl_owned_handlers(struct rcr *r)
{
	return (struct rw_inf_handlers){svc_add, svc_update, svc_add, r};
}

static void
st_rbac(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rw_buf b;
	char path[1024];
	int rv = 0;
	if (!rw_raycluster_autoscaling(j->c) || j->cl->rbac_done)
		return;
	rw_buf_init(&b, 4u << 20);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts", j->rec.ns);
	if (rw_raycluster_build_service_account(j->c, &b) == 0)
		rv = create_obj(j, path, &b, "ServiceAccount", &j->rbac_bits, 1);
	rw_buf_reset(&b);
	snprintf(path, sizeof(path), "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles",
		 j->rec.ns);
	if (!rv && rw_raycluster_build_role(j->c, &b) == 0)
		rv = create_obj(j, path, &b, "Role", &j->rbac_bits, 2);
	rw_buf_reset(&b);
	snprintf(path, sizeof(path),
		 "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings", j->rec.ns);
	if (!rv && rw_raycluster_build_role_binding(j->c, &b) == 0)
		rv = create_obj(j, path, &b, "RoleBinding", &j->rbac_bits, 4);
	rw_buf_fini(&b);
	if (rv)
		rw_rec_fail(&j->rec, rv, NULL, "autoscaler RBAC: %s", strerror(-rv));
	j->rbac_started = true;
}

/* ---- services ---- */

static void
svc_create(struct rcr_job *j, struct rw_inf *inf, struct rw_buf *b)
{
	char name[256], path[1024];
	if (rw_raycluster_ctl_json_name(rw_buf_cstr(b), b->len, name, sizeof(name)) != 0)
		return;
	if (rw_inf_get(inf, j->rec.ns, name))
		return; /* created once, never updated (as KubeRay) */
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services", j->rec.ns);
	if (create_obj(j, path, b, "Service", NULL, 0) != 0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot create service %s", name);
}

static void
st_services(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr *r = rcr_of(j);
	struct rw_buf b;
	rw_buf_init(&b, 4u << 20);
	if (rw_raycluster_build_head_service(j->c, &r->opts, &b) == 0)
		svc_create(j, r->svc_head_inf, &b);
	else
		rw_rec_fail(&j->rec, -EINVAL, NULL, "cannot build the head service");
	rw_buf_reset(&b);
	if (!j->rec.err && rw_raycluster_wants_headless_service(j->c) &&
	    rw_raycluster_build_headless_service(j->c, &b) == 0)
		svc_create(j, r->svc_headless_inf, &b);
	rw_buf_reset(&b);
	if (!j->rec.err && rw_raycluster_wants_serve_service(j->c) &&
	    rw_raycluster_build_serve_service(j->c, &r->opts, &b) == 0)
		svc_create(j, r->svc_serve_inf, &b);
	rw_buf_fini(&b);
}

/* ---- the batch scheduler's PodGroup ---- */

/* DoBatchSchedulingOnSubmission, every pass before the pods (none while suspended). */
static void
st_podgroup(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr *r = rcr_of(j);
	enum rw_bs_kind k = (enum rw_bs_kind)r->opts.batch_scheduler;
	struct rw_bs_parent p = {
	    .name = j->c->obj.name,
	    .ns = j->c->obj.ns,
	    .uid = j->c->obj.uid,
	    .labels = j->c->obj.labels,
	    .annotations = j->c->obj.annotations,
	    .cluster_spec = j->c->obj.spec,
	};
	char path[512], err[512];
	struct rw_buf b;
	int rv;
	if (k == RW_BS_NONE || rw_raycluster_suspended(j->c) ||
	    status_cond_true(j->c, "RayClusterSuspending"))
		return;
	rw_buf_init(&b, 1u << 20);
	rv = rw_bs_podgroup(k, &p, &b, path, sizeof(path), err, sizeof(err));
	if (rv)
		rw_rec_fail(&j->rec, rv, NULL, "%s", err);
	else if (b.len &&
		 (rv = rw_podgroup_sync(&j->rec, path, rw_buf_cstr(&b), k == RW_BS_VOLCANO)) != 0)
		rw_rec_fail(&j->rec, rv, NULL, "cannot sync the PodGroup");
	rw_buf_fini(&b);
}

/* ---- pods ---- */

static void
pod_create_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	struct rcr *r = rcr_of(j);
	bool head = q->kind == 1;
	const char *nt = head ? "head" : "worker";
	char name[256];
	if (!rw_rec_ok(resp->status)) {
		rw_met_add(r->m_podops, (const char *const[]){"create", nt, "error"}, 1);
		rw_rec_emit(&j->rec, 1, head ? "FailedToCreateHeadPod" : "FailedToCreateWorkerPod",
			    "Failed to create %s Pod for the cluster %s/%s, HTTP %ld %s", nt,
			    j->rec.ns, j->rec.name, resp->status, resp->message);
		rw_rec_fail(&j->rec, resp->err ? resp->err : -EIO,
			    head ? "FailedCreateHeadPod" : "FailedCreateWorkerPod",
			    "failed to create %s pod: HTTP %ld %s", nt, resp->status,
			    resp->message);
		return;
	}
	rw_met_add(r->m_podops, (const char *const[]){"create", nt, "ok"}, 1);
	if (rw_raycluster_ctl_json_name(resp->body, resp->body_len, name, sizeof(name)) != 0)
		return;
	/* The informer may have seen it already (then nothing is pending). */
	if (!rw_inf_get(r->pod_inf, j->rec.ns, name))
		rw_exp_expect_create(r->exp, j->rec.key, q->s1, name, uv_now(r->loop));
	rw_rec_emit(&j->rec, 0, head ? "CreatedHeadPod" : "CreatedWorkerPod",
		    "Created %s Pod %s/%s", nt, j->rec.ns, name);
}

static void
pod_delete_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	struct rcr *r = rcr_of(j);
	bool head = q->kind == 1;
	const char *nt = head ? "head" : "worker";
	if (resp->status == 404) {
		rw_exp_forget(r->exp, j->rec.key, q->s1, q->s2);
		return;
	}
	if (!rw_rec_ok(resp->status)) {
		rw_exp_forget(r->exp, j->rec.key, q->s1, q->s2);
		rw_met_add(r->m_podops, (const char *const[]){"delete", nt, "error"}, 1);
		rw_rec_emit(&j->rec, 1, head ? "FailedToDeleteHeadPod" : "FailedToDeleteWorkerPod",
			    "Failed to delete %s Pod %s/%s, HTTP %ld %s", nt, j->rec.ns, q->s2,
			    resp->status, resp->message);
		rw_rec_fail(&j->rec, resp->err ? resp->err : -EIO,
			    head ? "FailedDeleteHeadPod" : "FailedDeleteWorkerPod",
			    "failed to delete %s pod %s: HTTP %ld %s", nt, q->s2, resp->status,
			    resp->message);
		return;
	}
	rw_met_add(r->m_podops, (const char *const[]){"delete", nt, "ok"}, 1);
	if (q->ptr == NULL)
		rw_rec_emit(&j->rec, 0, head ? "DeletedHeadPod" : "DeletedWorkerPod",
			    "Deleted %s Pod %s/%s", nt, j->rec.ns, q->s2);
}

int
rw_raycluster_ctl_pod_delete(struct rcr_job *j, const char *group, const char *name, bool head,
			     bool quiet)
{
	struct rcr *r = rcr_of(j);
	char path[1024];
	int rv;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", j->rec.ns, name);
	struct rw_kube_req kr = {.method = "DELETE", .path = path, .verb = "delete"};
	rw_exp_expect_delete(r->exp, j->rec.key, group, name, uv_now(r->loop));
	rv = rw_raycluster_ctl_request(r, j, &kr, pod_delete_cb, group, name,
				       quiet ? (void *)1 : NULL);
	if (rv == 0)
		r->ctl.reqs->kind = head ? 1 : 2;
	else
		rw_exp_forget(r->exp, j->rec.key, group, name);
	j->changed = true;
	return rv;
}

static int
pod_create(struct rcr_job *j, const char *group, const struct rw_buf *body, bool head)
{
	struct rcr *r = rcr_of(j);
	char path[1024];
	int rv;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods", j->rec.ns);
	rv = rw_rec_send(&j->rec, "POST", path, rw_buf_cstr(body), body->len, pod_create_cb, group,
			 NULL, NULL);
	if (rv == 0)
		r->ctl.reqs->kind = head ? 1 : 2;
	j->changed = true;
	return rv;
}

/* Is replica index idx used by a worker pod of group gname (deleting ones included)? */
static bool
index_used(const struct rcr_pods *ps, const char *gname, int idx, const int *taken, int ntaken)
{
	for (size_t i = 0; i < ps->n; i++)
		if (ps->pods[i].type == RW_RAYCLUSTER_NT_WORKER &&
		    strcmp(ps->pods[i].group, gname) == 0 && ps->raw[i]->replica_index == idx)
			return true;
	for (int i = 0; i < ntaken; i++)
		if (taken[i] == idx)
			return true;
	return false;
}

/*
 * Create n worker pods of group g, each with the lowest free replica index
 * (ray.io/worker-group-replica-index, KubeRay's RayMultiHostIndexing); with
 * numOfHosts > 1 every numOfHosts pods form one replica with a fresh replica
 * name and host indexes 0..numOfHosts-1.
 */
static void
create_workers(struct rcr_job *j, const struct rcr_pods *ps, int g, const char *gname, int32_t n,
	       struct rw_buf *b)
{
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	int64_t hosts = 1;
	int *taken = calloc((size_t)n + 1, sizeof(int));
	int ntaken = 0, idx = 0, host = 0;
	char rname[320] = "";
	rw_doc_int(rw_doc_get(rw_raycluster_group(j->c, g), "numOfHosts"), &hosts);
	if (hosts < 1)
		hosts = 1;
	if (!taken) {
		rw_rec_fail(&j->rec, -ENOMEM, "FailedCreateWorkerPod", "out of memory");
		return;
	}
	for (int32_t k = 0; k < n && !j->rec.err; k++) {
		struct rw_raycluster_slot slot;
		if (host == 0) {
			while (index_used(ps, gname, idx, taken, ntaken))
				idx++;
			taken[ntaken++] = idx;
			if (hosts > 1) {
				size_t l = (size_t)snprintf(rname, sizeof(rname) - 6, "%s-", gname);
				for (int c = 0; c < 5; c++)
					rname[l + (size_t)c] =
					    alnum[(unsigned)rand() % (sizeof(alnum) - 1)];
				rname[l + 5] = '\0';
			}
		}
		slot.replica_index = idx;
		slot.replica_name = hosts > 1 ? rname : NULL;
		slot.host_index = host;
		rw_buf_reset(b);
		if (rw_raycluster_build_worker_pod(j->c, &j->popts, g, &slot, b) != 0)
			rw_rec_fail(&j->rec, -EINVAL, "FailedCreateWorkerPod",
				    "cannot build a worker pod of group %s", gname);
		else if (pod_create(j, gname, b, false) != 0)
			rw_rec_fail(&j->rec, -ENOMEM, "FailedCreateWorkerPod", "cannot create");
		if (++host >= hosts)
			host = 0;
	}
	free(taken);
}

static bool
in_snapshot(const struct rcr_pods *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->pods[i].name, name) == 0)
			return true;
	return false;
}

/* Suspending: delete every Ray pod, create nothing. */
static void
pods_suspend(struct rcr_job *j, const struct rcr_pods *ps)
{
	for (size_t i = 0; i < ps->n && !j->rec.err; i++) {
		const struct rw_raycluster_pod *p = &ps->pods[i];
		if (p->deleting)
			continue;
		bool head = p->type == RW_RAYCLUSTER_NT_HEAD;
		if (rw_raycluster_ctl_pod_delete(j, head ? "" : p->group, p->name, head, false) !=
		    0)
			rw_rec_fail(&j->rec, -ENOMEM, "FailedDeleteAllPods", "cannot delete pods");
	}
}

static void
attach_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	if (rw_rec_ok(resp->status)) {
		rw_rec_emit(&j->rec, 0, "AttachedAgent",
			    "Attached the raywarden agent to head Pod %s/%s as an ephemeral "
			    "container",
			    j->rec.ns, q->s1);
		return;
	}
	/* Sent again at the next pass (the pod may be gone: then nothing is wanted). */
	if (j->cl && strcmp(j->cl->agent_attached, q->s2) == 0)
		j->cl->agent_attached[0] = '\0';
	if (resp->status != 404)
		rw_rec_emit(&j->rec, 1, "FailedToAttachAgent",
			    "Failed to attach the raywarden agent to head Pod %s/%s, HTTP %ld %s",
			    j->rec.ns, q->s1, resp->status, resp->message);
	rw_rec_requeue(&j->rec, 5000);
}

/*
 * A head without agent (KubeRay made it, raywarden took the cluster over) gets
 * one as an ephemeral container: the pod keeps running (no restart), and its
 * agent then reports the Ray jobs and Serve applications as any head's does.
 */
static void
attach_agent(struct rcr_job *j, const struct rcr_pods *ps)
{
	struct rcr *r = rcr_of(j);
	const struct rw_inf_pod *head = NULL;
	char path[1024];
	struct rw_buf b;
	for (size_t i = 0; i < ps->n; i++)
		if (ps->pods[i].type == RW_RAYCLUSTER_NT_HEAD && (!head || head->meta.deleted))
			head = ps->raw[i]; /* the live head, when one is being replaced */
	struct rw_raycluster_head_agent h = {
	    .exists = head != NULL,
	    .deleting = head && head->meta.deleted,
	    .phase_ended = head && (strcmp(head->phase, "Succeeded") == 0 ||
				    strcmp(head->phase, "Failed") == 0),
	    .has_agent = head && head->has_agent,
	    .key_ready = j->cl && j->cl->key_done,
	    .uid = head ? head->meta.uid : NULL,
	    .attached_uid = j->cl ? j->cl->agent_attached : NULL,
	};
	if (!rw_raycluster_ephemeral_agent_wanted(&j->popts, &h))
		return;
	rw_buf_init(&b, 1u << 20);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s/ephemeralcontainers", j->rec.ns,
		 head->meta.name);
	if (rw_raycluster_build_ephemeral_agent(j->c, &j->popts, &b) != 0) {
		rw_rec_emit(&j->rec, 1, "FailedToAttachAgent",
			    "Cannot build the raywarden agent for head Pod %s/%s", j->rec.ns,
			    head->meta.name);
	} else {
		struct rw_kube_req kr = {.method = "PATCH",
					 .path = path,
					 .body = rw_buf_cstr(&b),
					 .body_len = b.len,
					 .content_type = "application/strategic-merge-patch+json",
					 .verb = "patch"};
		if (rw_raycluster_ctl_request(r, j, &kr, attach_cb, head->meta.name, head->meta.uid,
					      NULL) == 0)
			snprintf(j->cl->agent_attached, sizeof(j->cl->agent_attached), "%s",
				 head->meta.uid);
	}
	rw_buf_fini(&b);
}

static void
st_pods(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr *r = rcr_of(j);
	struct rcr_pods ps;
	struct rw_buf b;
	uint64_t now = uv_now(r->loop);
	const char *dname;
	if (rw_raycluster_ctl_pods_collect(r, j->rec.ns, j->rec.name, j->c->obj.uid, &ps) != 0) {
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "out of memory");
		rw_raycluster_ctl_pods_fini(&ps);
		return;
	}
	rw_buf_init(&b, 16u << 20);
	rw_raycluster_ctl_pod_opts(j);
	if (rw_raycluster_suspended(j->c) || status_cond_true(j->c, "RayClusterSuspending")) {
		pods_suspend(j, &ps);
		/* Suspending -> Suspended takes a pass after the status write, and with no pod left
		 * no pod event brings one (a status-only update does not requeue): KubeRay gets it
		 * from its 2 s requeue. */
		if (ps.n == 0 && !status_cond_true(j->c, "RayClusterSuspended"))
			rw_rec_requeue(&j->rec, 500);
		goto out;
	}
	/* Head. */
	if (!rw_exp_satisfied(r->exp, j->rec.key, "", now)) {
		rw_rec_requeue(&j->rec, 1000);
		rw_met_add(r->m_expwait, NULL, 1);
	} else {
		switch (rw_raycluster_plan_head(
		    j->c, ps.pods, ps.n, status_cond_true(j->c, "RayClusterProvisioned"), &dname)) {
		case RW_RAYCLUSTER_HEAD_OK:
			attach_agent(j, &ps);
			break;
		case RW_RAYCLUSTER_HEAD_CREATE:
			if (rw_raycluster_build_head_pod(j->c, &j->popts, &b) != 0 ||
			    pod_create(j, "", &b, true) != 0)
				rw_rec_fail(&j->rec, -EINVAL, "FailedCreateHeadPod",
					    "cannot build the head pod");
			break;
		case RW_RAYCLUSTER_HEAD_DELETE:
			if (rw_raycluster_ctl_pod_delete(j, "", dname, true, false) != 0)
				rw_rec_fail(&j->rec, -ENOMEM, "FailedDeleteHeadPod",
					    "cannot delete the head pod");
			break;
		case RW_RAYCLUSTER_HEAD_MANY:
			rw_rec_fail(&j->rec, -ENOTUNIQ, NULL, "%s/%s has more than one head pod",
				    j->rec.ns, j->rec.name);
			goto out;
		}
	}
out:
	rw_buf_fini(&b);
	rw_raycluster_ctl_pods_fini(&ps);
}

/*
 * Worker groups, a step of their own so that the driver waits for the head
 * pod's create: a refused head fails the pass before any worker is created.
 */
static void
st_workers(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr *r = rcr_of(j);
	struct rcr_pods ps;
	struct rw_buf b;
	uint64_t now = uv_now(r->loop);
	if (rw_raycluster_suspended(j->c) || status_cond_true(j->c, "RayClusterSuspending"))
		return; /* st_pods deleted the pods */
	if (rw_raycluster_ctl_pods_collect(r, j->rec.ns, j->rec.name, j->c->obj.uid, &ps) != 0) {
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "out of memory");
		rw_raycluster_ctl_pods_fini(&ps);
		return;
	}
	rw_buf_init(&b, 16u << 20);
	for (int g = 0; g < j->c->ngroups && !j->rec.err; g++) {
		struct rw_raycluster_group_plan plan;
		const char *gname = rw_raycluster_group_name(j->c, g);
		int32_t create;
		if (!rw_exp_satisfied(r->exp, j->rec.key, gname, now)) {
			rw_rec_requeue(&j->rec, 1000);
			rw_met_add(r->m_expwait, NULL, 1);
			continue;
		}
		if (rw_raycluster_plan_group(j->c, &r->opts, g, ps.pods, ps.n, &plan) != 0) {
			rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot plan group %s", gname);
			break;
		}
		for (size_t k = 0; k < plan.ndel && !j->rec.err; k++) {
			if (!in_snapshot(&ps, plan.del[k]))
				continue; /* workersToDelete naming a pod that is gone */
			if (rw_raycluster_ctl_pod_delete(j, gname, plan.del[k], false, false) != 0)
				rw_rec_fail(&j->rec, -ENOMEM, "FailedDeleteWorkerPod",
					    "cannot delete");
		}
		if (plan.unhealthy) {
			/* As KubeRay: unhealthy pods deleted, no creates in this pass. */
			rw_rec_fail(&j->rec, -EAGAIN, NULL,
				    "group %s: deleted unhealthy worker pods", gname);
		}
		create = plan.create;
		if (create > RCR_MAX_CREATES_PER_PASS) {
			create = RCR_MAX_CREATES_PER_PASS;
			rw_rec_requeue(&j->rec,
				       1); /* the rest on the next pass, after other clusters */
		}
		if (create > 0 && !j->rec.err)
			create_workers(j, &ps, g, gname, create, &b);
		rw_raycluster_group_plan_fini(&plan);
	}
	rw_buf_fini(&b);
	rw_raycluster_ctl_pods_fini(&ps);
}

/* ---- status ---- */

static void
status_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	if (rw_rec_ok(resp->status) && j->cl && resp->body && q->s1) {
		free(j->cl->written);
		j->cl->written = strndup(resp->body, resp->body_len);
		snprintf(j->cl->based_rv, sizeof(j->cl->based_rv), "%s", q->s1);
	}
	rw_rec_status_answer(&j->rec, resp);
}

static void
provisioned_metrics(struct rcr_job *j, const char *status_json, size_t len)
{
	struct rcr *r = rcr_of(j);
	struct rw_doc_node *st = NULL;
	bool now_true = false, was = status_cond_true(j->c, "RayClusterProvisioned");
	struct rw_doc_node *conds;
	if (rw_doc_parse(status_json, len, &st, NULL, 0) != 0)
		return;
	conds = rw_doc_get(st, "conditions");
	for (int i = 0; conds && conds->type == RW_DOC_ARR && i < conds->n; i++)
		if (rw_doc_gets(conds->kids[i], "type") &&
		    !strcmp(rw_doc_gets(conds->kids[i], "type"), "RayClusterProvisioned"))
			now_true = rw_doc_gets(conds->kids[i], "status") &&
				   !strcmp(rw_doc_gets(conds->kids[i], "status"), "True");
	rw_doc_free(st);
	/* KubeRay's emitRayClusterProvisionedDuration: on the write that makes it true. */
	if (now_true && !was && !j->cl->provisioned_seen) {
		const struct rw_inf_json *o = rw_inf_get(r->rc_inf, j->rec.ns, j->rec.name);
		if (o && o->meta.created)
			rw_met_set(r->m_provdur,
				   (const char *const[]){j->rec.name, j->rec.ns, j->c->obj.uid},
				   (double)(time(NULL) - o->meta.created));
	}
	if (now_true)
		j->cl->provisioned_seen = true;
}

static void
st_status(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr *r = rcr_of(j);
	struct rcr_pods ps;
	struct rw_raycluster_status_in in;
	struct rw_raycluster_svc_buf *svc = NULL;
	struct rw_buf st, body;
	char now[32], err[256], hsvc[320];
	const struct rw_inf_json *so;
	struct rw_doc_node *old;
	struct rw_buf oldtxt;
	int rv;

	if (!j->c || !j->cl)
		return;
	if (rw_raycluster_ctl_pods_collect(r, j->rec.ns, j->rec.name, j->c->obj.uid, &ps) != 0) {
		rw_raycluster_ctl_pods_fini(&ps);
		return;
	}
	for (size_t i = 0; i < ps.n; i++)
		rw_raycluster_ctl_gate_sync(r, ps.raw[i]);
	rw_raycluster_head_svc_name(j->c, hsvc, sizeof(hsvc));
	so = rw_inf_get(r->svc_head_inf, j->rec.ns, hsvc);
	if (so) {
		svc = calloc(1, sizeof(*svc));
		if (svc && rw_raycluster_svc_parse(so->json, so->len, svc) != 0) {
			free(svc);
			svc = NULL;
		}
	}
	rw_time_now_rfc3339(now);
	memset(&in, 0, sizeof(in));
	in.pods = ps.pods;
	in.npods = ps.n;
	in.head_svc = svc ? &svc->svc : NULL;
	in.reconcile_failed = j->rec.err != 0;
	in.failure_reason = j->rec.fail_reason[0] ? j->rec.fail_reason : NULL;
	in.failure_message = j->rec.fail_msg;
	in.now = now;
	rw_buf_init(&st, 4u << 20);
	rw_buf_init(&body, 64u << 20);
	rw_buf_init(&oldtxt, 4u << 20);
	rv = rw_raycluster_status(j->c, &in, &st, err, sizeof(err));
	rw_raycluster_ctl_pods_fini(&ps);
	free(svc);
	if (rv == -ENOENT || rv == -ENOTUNIQ) {
		rw_debug(LOGC, "%s: status not written: %s", j->rec.key, err);
		goto out;
	}
	if (rv) {
		rw_warn(LOGC, "%s: status: %s", j->rec.key, strerror(-rv));
		goto out;
	}
	provisioned_metrics(j, rw_buf_cstr(&st), st.len);
	old = rw_doc_get(j->c->obj.root, "status");
	if (old)
		rw_doc_dump(old, &oldtxt);
	if (rw_raycluster_status_equal(old ? rw_buf_cstr(&oldtxt) : NULL, oldtxt.len,
				       rw_buf_cstr(&st), st.len))
		goto out;
	/* PUT the object with the new status to /status (Status().Update()). */
	{
		struct rw_doc_node *ns = NULL;
		if (rw_doc_parse(rw_buf_cstr(&st), st.len, &ns, NULL, 0) != 0 ||
		    rw_doc_set(j->c->obj.root, "status", ns) != 0 ||
		    rw_doc_dump(j->c->obj.root, &body) != 0)
			goto out;
	}
	rw_rec_put_status(&j->rec, rw_buf_cstr(&body), body.len, status_cb,
			  rw_doc_gets(rw_doc_get(j->c->obj.root, "metadata"), "resourceVersion"));
out:
	rw_buf_fini(&st);
	rw_buf_fini(&body);
	rw_buf_fini(&oldtxt);
}

/* ---- the step table ---- */

static void
st_key(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	if (j->rbac_started && j->rbac_bits == 7)
		j->cl->rbac_done = true;
	rw_raycluster_ctl_st_key(j);
	if (rcr_of(j)->inject_only) {
		/* The status step, which syncs every pod's gate (and so retries a failed gate
		   patch, rcr_gate.c), does not run here: sync them now. */
		struct rcr_pods ps = {0};
		if (j->c && rw_raycluster_ctl_pods_collect(rcr_of(j), j->rec.ns, j->rec.name,
							   j->c->obj.uid, &ps) == 0)
			for (size_t i = 0; i < ps.n; i++)
				rw_raycluster_ctl_gate_sync(rcr_of(j), ps.raw[i]);
		rw_raycluster_ctl_pods_fini(&ps);
		j->rec.step = RCR_ST_DONE;
	}
}

static const struct rw_rec_step rcr_steps[] = {
    [RCR_ST_LOAD] = {"load", rw_rec_step_load, 0},
    [RCR_ST_ADMIT] = {"admit", st_admit, 0},
    [RCR_ST_FINALIZER] = {"finalizer", st_finalizer, 0},
    [RCR_ST_RBAC] = {"rbac", st_rbac, 0},
    [RCR_ST_INGRESS] = {"ingress", rw_raycluster_ctl_st_ingress, 0},
    [RCR_ST_KEY] = {"key", st_key, 0},
    [RCR_ST_SERVICES] = {"services", st_services, 0},
    [RCR_ST_PODGROUP] = {"podgroup", st_podgroup, 0},
    [RCR_ST_PODS] = {"pods", st_pods, 0},
    [RCR_ST_WORKERS] = {"workers", st_workers, 0},
    [RCR_ST_STATUS] = {"status", st_status, 0},
    [RCR_ST_DONE] = {"done", NULL, 0},
    [RCR_ST_DELETE] = {"delete", rw_raycluster_ctl_st_delete, 0},
    [RCR_ST_DELETE_CLEANUP] = {"delete-cleanup", rw_raycluster_ctl_st_delete_cleanup, RCR_ST_DONE},
};

static bool
rcr_synced(void *ud)
{
	struct rcr *r = ud;
	return rw_inf_synced(r->rc_inf) && rw_inf_synced(r->pod_inf) &&
	       rw_inf_synced(r->svc_head_inf) && rw_inf_synced(r->svc_headless_inf) &&
	       rw_inf_synced(r->svc_serve_inf);
}

static const struct rw_rec_kind rcr_kind = {
    .name = "raycluster",
    .kind = "RayCluster",
    .type = &rw_inf_raycluster_type,
    .steps = rcr_steps,
    .nsteps = (int)(sizeof(rcr_steps) / sizeof(rcr_steps[0])),
    .fail_step = RCR_ST_STATUS,
    .job_size = sizeof(struct rcr_job),
    .synced = rcr_synced,
    .job_fini = rcr_job_fini,
    .find = rcr_find,
    .gone = rcr_gone,
    .parse = rcr_parse,
    .attach = rcr_attach,
    .delete_step = RCR_ST_DELETE,
};

/* ---- setup / teardown ---- */

/* ---- metrics computed at scrape, from the caches (as KubeRay's collectors) ---- */

struct pod_count {
	int ready, not_ready;
};

static void
count_pod(const void *obj, void *ud)
{
	const struct rw_inf_pod *p = obj;
	struct pod_count *c = ud;
	if (p->ready == RW_COND_TRUE)
		c->ready++;
	else
		c->not_ready++;
}

struct report_age {
	const struct rw_inf *pod_inf;
	uint64_t now_ms;
	double max_s;
	bool any;
};

/*
 * The hub remembers a pod's last report for a while after the pod is gone;
 * only the reports of the cluster's running pods count, or every scale-down
 * would look like an agent gone silent.
 */
static void
oldest_report(const struct rw_report *rep, int stale, uint64_t last_seen_ms, void *arg)
{
	struct report_age *a = arg;
	const struct rw_inf_pod *p = rw_inf_get(a->pod_inf, rep->ns, rep->pod);
	double age = a->now_ms > last_seen_ms ? (double)(a->now_ms - last_seen_ms) / 1000.0 : 0;
	(void)stale;
	if (!p || p->meta.deleted || strcmp(p->meta.uid, rep->uid) != 0 ||
	    strcmp(p->phase ? p->phase : "", "Running") != 0)
		return;
	if (!a->any || age > a->max_s)
		a->max_s = age;
	a->any = true;
}

static void
collect_cluster(const void *obj, void *ud)
{
	struct rcr *r = ud;
	const struct rw_inf_json *o = obj;
	const struct rw_krm_obj *kp =
	    rw_krm_cache_get(&r->krm, o->meta.ns, o->meta.name, o->meta.rv, o->json, o->len);
	struct pod_count pc = {0, 0};
	struct report_age age = {r->pod_inf, uv_now(r->loop), 0, false};
	char key[320];
	if (!kp)
		return;
	const struct rw_krm_obj k = *kp;
	rw_met_set(r->m_info, (const char *const[]){k.name, k.ns, k.uid, k.owner_kind}, 1);
	rw_met_set(r->m_prov,
		   (const char *const[]){k.name, k.ns, k.uid, rw_krm_bool(k.provisioned)}, 1);
	snprintf(key, sizeof(key), "%s/%s", k.ns, k.name);
	rw_inf_index_foreach_by(r->pod_inf, rw_inf_pod_cluster_key, key, count_pod, &pc);
	rw_met_set(r->m_pods, (const char *const[]){k.ns, k.name, "true"}, pc.ready);
	rw_met_set(r->m_pods, (const char *const[]){k.ns, k.name, "false"}, pc.not_ready);
	if (r->hub && r->pod_inf &&
	    rw_hub_cluster_foreach(r->hub, k.ns, k.name, oldest_report, &age) > 0 && age.any)
		rw_met_set(r->m_report_age, (const char *const[]){k.ns, k.name}, age.max_s);
}

static void
collect_metrics(void *ud)
{
	struct rcr *r = ud;
	rw_met_clear(r->m_info);
	rw_met_clear(r->m_prov);
	rw_met_clear(r->m_pods);
	rw_met_clear(r->m_report_age);
	rw_krm_cache_begin(&r->krm);
	if (r->rc_inf)
		rw_inf_foreach(r->rc_inf, collect_cluster, r);
	rw_krm_cache_end(&r->krm);
}

static void
register_metrics(struct rcr *r)
{
	struct rw_met *m = r->met;
	static const char *const info_l[] = {"name", "namespace", "uid", "owner_kind", NULL};
	static const char *const prov_l[] = {"name", "namespace", "uid", "condition", NULL};
	static const char *const dur_l[] = {"name", "namespace", "uid", NULL};
	static const char *const nn_l[] = {"namespace", "name", NULL};
	/* Names, help and labels as KubeRay v1.5.0's
	 * controllers/ray/metrics/ray_cluster_metrics.go. */
	r->m_info = rw_met_gauge(m, "kuberay_cluster_info",
				 "Metadata information about RayCluster custom resources", info_l);
	r->m_prov = rw_met_gauge(m, "kuberay_cluster_condition_provisioned",
				 "Indicates whether the RayCluster is provisioned", prov_l);
	r->m_provdur = rw_met_gauge(
	    m, "kuberay_cluster_provisioned_duration_seconds",
	    "The time, in seconds, when a RayCluster's `RayClusterProvisioned` status transitions "
	    "from false (or unset) to true",
	    dur_l);
	r->m_pods = rw_met_gauge(m, "raywarden_raycluster_pods",
				 "Pods of the RayCluster by readiness (the pods' Ready condition).",
				 (const char *const[]){"namespace", "name", "ready", NULL});
	r->m_report_age = rw_met_gauge(m, "raywarden_raycluster_report_age_max_seconds",
				       "Age of the oldest latest agent report among the "
				       "RayCluster's running pods (at scrape).",
				       nn_l);
	r->m_transitions =
	    rw_met_counter(m, "raywarden_pod_readiness_transitions_total",
			   "Ray pods whose Ready condition changed, by namespace and new state.",
			   (const char *const[]){"namespace", "to", NULL});
	r->m_podops = rw_met_counter(m, "raywarden_raycluster_pod_operations_total",
				     "Pod creates and deletes by the RayCluster reconciler.",
				     (const char *const[]){"op", "node_type", "result", NULL});
	r->m_expwait = rw_met_counter(
	    m, "raywarden_raycluster_expectation_waits_total",
	    "Pod groups skipped because earlier creates/deletes were not yet observed.", NULL);
	r->m_cleanup = rw_met_counter(m, "raywarden_raycluster_redis_cleanups_total",
				      "GCS FT Redis cleanups by outcome (ok, deadline, skipped).",
				      (const char *const[]){"result", NULL});
	rw_raycluster_ctl_gate_metrics(r);
}

static int
setup_hub(struct rcr *r, const struct rw_mgr_config *cfg)
{
	char err[512];
	int rv;
	if (!cfg->agent_key_file || !*cfg->agent_key_file) {
		rw_warn(LOGC, "no --agent-key-file: agents run standalone (no reports, no "
			      "readiness gate from the controller)");
		return 0;
	}
	rw_raycluster_ctl_keys_sig(r, cfg->agent_key_file);
	rv = rw_agentkey_load_master(&r->master, cfg->agent_key_file, err, sizeof(err));
	if (rv) {
		rw_error(LOGC, "agent master key: %s", err);
		return rv;
	}
	r->have_master = true;
	if (!cfg->agent_listen || !*cfg->agent_listen || !strcmp(cfg->agent_listen, "0")) {
		rw_warn(LOGC, "agent hub disabled (--agent-listen 0)");
		return 0;
	}
	/* The manager runs the hub (agents.h); the gate registers once the informers exist. */
	r->agents = rw_mgr_agents(r->mgr);
	r->hub = rw_agents_hub(r->agents);
	return 0;
}

int
rw_raycluster_opts_from_config(const struct rw_mgr_config *cfg, const char *ns,
			       struct rw_raycluster_opts *o, char *advertise, size_t advlen,
			       char *why, size_t whylen)
{
	rw_raycluster_opts_default(o);
	rw_raycluster_opts_from_env(o, getenv);
	if (cfg->agent_image && *cfg->agent_image)
		o->agent_image = cfg->agent_image;
	if (cfg->agent_cpu_request)
		o->agent_cpu_request = cfg->agent_cpu_request;
	if (cfg->agent_memory_request)
		o->agent_mem_request = cfg->agent_memory_request;
	if (cfg->agent_cpu_limit)
		o->agent_cpu_limit = cfg->agent_cpu_limit;
	if (cfg->agent_memory_limit)
		o->agent_mem_limit = cfg->agent_memory_limit;
	if (cfg->agent_readiness_period_s > 0)
		o->agent_readiness_period_s = cfg->agent_readiness_period_s;
	if (rw_raycluster_opts_check(o, why, whylen) != 0)
		return -EINVAL;
	o->agent = !cfg->no_agent_injection;
	o->batch_scheduler = cfg->batch_scheduler;
	o->readiness_gate = !cfg->no_readiness_gate && o->agent;
	if (!o->agent)
		o->probes = RW_RAYCLUSTER_PROBE_KUBERAY;
	bool hub = cfg->agent_key_file && *cfg->agent_key_file && cfg->agent_listen &&
		   *cfg->agent_listen && strcmp(cfg->agent_listen, "0") != 0;
	if (!o->agent || !hub) {
		/* Nobody would set the gate or hear the agents: standalone agents. */
		o->controller_addr = NULL;
		o->readiness_gate = false;
		return 0;
	}
	if (cfg->agent_advertise && *cfg->agent_advertise) {
		snprintf(advertise, advlen, "%s", cfg->agent_advertise);
	} else {
		const char *port = strrchr(cfg->agent_listen, ':');
		snprintf(advertise, advlen, "tcp://raywarden-controller.%s.svc:%s", ns,
			 port && port[1] ? port + 1 : "8478");
	}
	o->controller_addr = advertise;
	return 0;
}

static void teardown(void *state);

static int
setup(struct rw_mgr *m, void **state)
{
	const struct rw_mgr_config *cfg = rw_mgr_cfg(m);
	struct rcr *r = calloc(1, sizeof(*r));
	const struct rw_inf_handlers ph = {pod_add, pod_update, pod_delete, r};
	const struct rw_inf_handlers rh = {rc_added, rc_update, rc_add, r};
	const struct rw_inf_handlers sh = rw_raycluster_ctl_owned_handlers(r);
	const char *v;
	int rv = -ENOMEM;
	if (!r)
		return -ENOMEM;
	*state = r;
	r->mgr = m;
	r->loop = rw_mgr_loop(m);
	r->ev = rw_mgr_events(m);
	r->met = rw_mgr_metrics(m);
	rw_kmap_init(&r->clusters);
	rw_krm_cache_init(&r->krm);
	r->ft_deadline_ms = (uint64_t)(cfg->gcs_ft_cleanup_s * 1000.0);
	r->inject_only = cfg->inject_only;
	v = getenv("ENABLE_GCS_FT_REDIS_CLEANUP");
	r->ft_cleanup = !(v && !strcasecmp(v, "false"));
	/* KubeRay: RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV (300 s); a step's own delay wins. */
	struct rw_rec_policy pol = {.idle_ms = 300000, .unsynced_ms = 200};
	v = getenv("RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV");
	if (v && atoi(v) > 0)
		pol.idle_ms = (uint64_t)atoi(v) * 1000;
	{
		char why[160];
		if (rw_raycluster_opts_from_config(cfg, rw_mgr_namespace(m), &r->opts, r->advertise,
						   sizeof(r->advertise), why, sizeof(why)) != 0) {
			rw_error(LOGC, "%s", why);
			rv = -EINVAL;
			goto fail;
		}
	}
	register_metrics(r);
	if (rw_exp_new(0, &r->exp) != 0)
		goto fail;
	if (r->opts.agent) {
		rv = setup_hub(r, cfg);
		if (rv)
			goto fail;
		rv = -ENOMEM;
		if (!r->hub) {
			/* Nobody would set the gate or hear the agents: standalone agents. */
			r->opts.controller_addr = NULL;
			r->opts.readiness_gate = false;
		}
	}
	rw_info(LOGC, "agent sidecar %s, readiness gate %s, agents report to %s",
		r->opts.agent ? "on" : "off", r->opts.readiness_gate ? "on" : "off",
		r->opts.controller_addr ? r->opts.controller_addr : "(nobody)");
	if (rw_rec_ctl_setup(&r->ctl, m, &rcr_kind, &pol, r) == 0)
		r->wq = r->ctl.wq;
	r->rc_inf = rw_mgr_informer(m, &rw_inf_raycluster_type, NULL, false, NULL, &rh);
	r->pod_inf = rw_mgr_informer(m, &rw_inf_pod_type, RW_MGR_RAY_POD_SELECTOR, false,
				     rw_inf_pod_cluster_key, &ph);
	r->svc_head_inf =
	    rw_mgr_informer(m, &rw_inf_service_type,
			    "ray.io/node-type=head,app.kubernetes.io/created-by=kuberay-operator",
			    false, NULL, &sh);
	r->svc_headless_inf = rw_mgr_informer(m, &rw_inf_service_type, "ray.io/headless-worker-svc",
					      false, NULL, &sh);
	r->svc_serve_inf =
	    rw_mgr_informer(m, &rw_inf_service_type,
			    "ray.io/originated-from-crd=RayCluster,ray.io/serve", false, NULL, &sh);
	if (!r->wq || !r->rc_inf || !r->pod_inf || !r->svc_head_inf || !r->svc_headless_inf ||
	    !r->svc_serve_inf)
		goto fail;
	if ((rv = rw_raycluster_ctl_gate_setup(r)) != 0)
		goto fail;
	if ((rv = rw_raycluster_ctl_ingress_setup(r)) != 0)
		goto fail;
	if (r->have_master && (rv = rw_raycluster_ctl_keys_setup(r, cfg->agent_key_file)) != 0)
		goto fail;
	if ((rv = rw_met_add_collector(r->met, collect_metrics, r)) != 0)
		goto fail;
	return 0;
fail:
	teardown(r);
	*state = NULL;
	return rv;
}

static void
teardown(void *state)
{
	struct rcr *r = state;
	struct rw_kmap_iter it;
	struct rw_kmap_ent *e;
	if (!r)
		return;
	r->closing = true;
	rw_met_remove_collector(r->met, collect_metrics, r);
	/* Cancel every request: no callback, no rw_wq_done after this. */
	rw_rec_ctl_fini(&r->ctl);
	rw_raycluster_ctl_ingress_fini(r);
	rw_kmap_iter_init(&r->clusters, &it);
	while ((e = rw_kmap_next(&r->clusters, &it)) != NULL) {
		struct rcr_cl *cl = e->val;
		if (cl->rcl) {
			cl->dropping = true;
			rw_redis_cleanup_cancel(cl->rcl);
			cl->rcl = NULL;
		}
	}
	rw_kmap_fini(&r->clusters, cl_free);
	rw_raycluster_ctl_gate_fini(r);
	rw_raycluster_ctl_keys_fini(r);
	rw_exp_free(r->exp);
	rw_krm_cache_fini(&r->krm);
	memset(&r->master, 0, sizeof(r->master));
	free(r);
}

const struct rw_mgr_controller rw_raycluster_controller = {
    .name = "raycluster",
    .setup = setup,
    .teardown = teardown,
};

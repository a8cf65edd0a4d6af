/*
 * reconcile.c - the reconcile runtime (see reconcile.h): the requeue policy,
 * the job and request records, the step driver, and the per-kind
 * controller_runtime_reconcile_* metrics.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile.h"
#include "rw/json.h"
#include "rw/log.h"

/* ---- policy ---- */

enum rw_rec_result
rw_rec_decide(const struct rw_rec_policy *p, int err, bool busy, bool stop, uint64_t requested_ms,
	      uint64_t *delay_ms)
{
	uint64_t period = busy && p->busy_ms ? p->busy_ms : p->idle_ms, d;
	*delay_ms = 0;
	if (err)
		return RW_REC_ERROR;
	if (stop)
		return RW_REC_SUCCESS;
	if (!requested_ms)
		d = period;
	else if (p->soonest && period && period < requested_ms)
		d = period;
	else
		d = requested_ms;
	*delay_ms = d;
	return d ? RW_REC_REQUEUE_AFTER : RW_REC_SUCCESS;
}

const char *
rw_rec_result_label(enum rw_rec_result r)
{
	switch (r) {
	case RW_REC_ERROR:
		return "error";
	case RW_REC_REQUEUE:
		return "requeue";
	case RW_REC_REQUEUE_AFTER:
		return "requeue_after";
	case RW_REC_SUCCESS:
	default:
		return "success";
	}
}

bool
rw_rec_ok(long status)
{
	return status >= 200 && status < 300;
}

void
rw_rec_split_key(const char *key, char *ns, size_t nslen, char *name, size_t namelen)
{
	const char *sl = strchr(key, '/');
	if (!sl) {
		snprintf(ns, nslen, "%s", "");
		snprintf(name, namelen, "%s", key);
		return;
	}
	snprintf(ns, nslen, "%.*s", (int)(sl - key), key);
	snprintf(name, namelen, "%s", sl + 1);
}

/* ---- results and metrics ---- */

/* controller-runtime's controller_runtime_reconcile_time_seconds buckets. */
static const double reconcile_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1,  0.15, 0.2,	0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
    0.7,   0.8,	 0.9,	1.0,  1.25, 1.5,  1.75, 2.0,  2.5, 3.0,	 3.5, 4.0,  4.5, 5,
    6,	   7,	 8,	9,    10,   15,	  20,	25,   30,  40,	 50,  60};

/* One finished reconcile: counted, timed, handed back to the work queue. */
static void
done(struct rw_rec_ctl *c, const char *key, enum rw_rec_result res, uint64_t delay_ms, uint64_t t0)
{
	const char *lv[] = {c->kind->name, rw_rec_result_label(res)};
	const char *cv[] = {c->kind->name};
	rw_met_add(c->m_total, lv, 1);
	rw_met_observe(c->m_time, cv, (double)(uv_hrtime() - t0) / 1e9);
	switch (res) {
	case RW_REC_ERROR:
		rw_met_add(c->m_errors, cv, 1);
		rw_wq_done(c->wq, key, -1, 0);
		break;
	case RW_REC_REQUEUE:
		/* controller-runtime's Requeue: again after the key's rate limit. */
		rw_wq_done(c->wq, key, 0, 0);
		rw_wq_add_rate_limited(c->wq, key);
		break;
	default:
		rw_wq_done(c->wq, key, 0, delay_ms);
		break;
	}
}

/* ---- jobs ---- */

static void
job_free(struct rw_rec_job *j)
{
	const struct rw_rec_kind *k = j->ctl->kind;
	if (k->job_fini)
		k->job_fini(j);
	free(j->key);
	free(j);
}

static void
job_finish(struct rw_rec_job *j)
{
	struct rw_rec_ctl *c = j->ctl;
	enum rw_rec_result res;
	uint64_t delay;
	j->finished = true;
	if (j->prev)
		j->prev->next = j->next;
	else
		c->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	res = rw_rec_decide(&c->policy, j->err, j->busy, j->stop_requeue, j->requeue_ms, &delay);
	rw_debug(c->kind->name, "%s: reconciled in %.1f ms (%s)", j->key,
		 (double)(uv_hrtime() - j->t0) / 1e6, j->err ? "error" : "ok");
	done(c, j->key, res, delay, j->t0);
	job_free(j);
}

void
rw_rec_run(struct rw_rec_job *j)
{
	const struct rw_rec_kind *k = j->ctl->kind;
	while (j->pending == 0 && !j->finished) {
		int s;
		if (j->err && j->step > 0 && j->step < k->fail_step)
			j->step = k->fail_step; /* stop at the first failure, then the status */
		s = j->step++;
		if (s < 0 || s >= k->nsteps || !k->steps[s].run) {
			job_finish(j);
			return;
		}
		rw_debug(k->name, "%s: step %s (%.1f ms in)", j->key, k->steps[s].name,
			 (double)(uv_hrtime() - j->t0) / 1e6);
		k->steps[s].run(j);
		if (k->steps[s].then > 0)
			j->step = k->steps[s].then;
	}
}

void
rw_rec_reconcile(struct rw_rec_ctl *c, const char *key)
{
	const struct rw_rec_kind *k = c->kind;
	uint64_t t0 = uv_hrtime();
	struct rw_rec_job *j;
	if (k->synced && !k->synced(c->ud)) {
		/* Never act on a partial cache: that is how duplicates are made. */
		done(c, key, RW_REC_REQUEUE_AFTER, c->policy.unsynced_ms, t0);
		return;
	}
	j = calloc(1, k->job_size > sizeof(*j) ? k->job_size : sizeof(*j));
	if (!j || !(j->key = strdup(key))) {
		free(j);
		done(c, key, RW_REC_ERROR, 0, t0);
		return;
	}
	j->ctl = c;
	j->ud = c->ud;
	j->t0 = t0;
	j->source = k->source;
	rw_rec_split_key(key, j->ns, sizeof(j->ns), j->name, sizeof(j->name));
	if (k->job_init)
		k->job_init(j);
	j->next = c->jobs;
	if (c->jobs)
		c->jobs->prev = j;
	c->jobs = j;
	rw_rec_run(j);
}

static void
wq_reconcile(struct rw_wq *q, const char *key, void *ud)
{
	(void)q;
	rw_rec_reconcile(ud, key);
}

/* ---- requests ---- */

static void
req_free(struct rw_rec_req *q)
{
	/* s1 may hold key material (the agent key Secret): wiped before it is freed. */
	if (q->s1)
		memset(q->s1, 0, strlen(q->s1));
	free(q->s1);
	free(q->s2);
	free(q);
}

static void
req_done(const struct rw_kube_resp *resp, void *ud)
{
	struct rw_rec_req *q = ud;
	struct rw_rec_ctl *c = q->ctl;
	struct rw_rec_job *j = q->job;
	if (q->prev)
		q->prev->next = q->next;
	else
		c->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->op = NULL;
	if (j && rw_kube_namespace_terminating(resp)) {
		/* As Kubernetes' own controllers do (HasStatusCause NamespaceTerminating): the
		 * namespace controller is deleting everything here, so the refused create is
		 * neither retried as an error nor reported; the rest of the reconcile goes on,
		 * since deletes, patches and finalizer removals still work. */
		if (!j->ns_terminating)
			rw_info(c->kind->name,
				"%s: %s (namespace being deleted: not an error, no Event)", j->key,
				resp->message);
		j->ns_terminating = j->in_ns_refusal = true;
	}
	if (q->cb)
		q->cb(q, resp);
	if (j)
		j->in_ns_refusal = false;
	req_free(q);
	if (j && --j->pending == 0)
		rw_rec_run(j);
}

int
rw_rec_request(struct rw_rec_ctl *c, void *job, const struct rw_kube_req *kr, rw_rec_req_cb cb,
	       const char *s1, const char *s2, void *ptr)
{
	struct rw_rec_req *q = calloc(1, sizeof(*q));
	struct rw_rec_job *j = job;
	struct rw_kube_req fr = *kr;
	int rv;
	if (!q)
		return -ENOMEM;
	q->ctl = c;
	q->r = c->ud;
	q->job = job;
	q->cb = cb;
	q->ptr = ptr;
	q->t0 = uv_hrtime();
	if ((s1 && !(q->s1 = strdup(s1))) || (s2 && !(q->s2 = strdup(s2)))) {
		req_free(q);
		return -ENOMEM;
	}
	if (j && !fr.flow) {
		fr.flow = j->key; /* one flow per object in the client's fair queue (kube.h) */
		fr.source = j->source;
	}
	rv = c->submit(c->kube, &fr, req_done, q, &q->op);
	if (rv) {
		req_free(q);
		return rv;
	}
	q->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = q;
	c->reqs = q;
	if (j)
		j->pending++;
	return 0;
}

int
rw_rec_send(struct rw_rec_job *j, const char *method, const char *path, const char *body,
	    size_t len, rw_rec_req_cb cb, const char *s1, const char *s2, void *ptr)
{
	bool patch = strcmp(method, "PATCH") == 0, post = strcmp(method, "POST") == 0;
	struct rw_kube_req kr = {.method = method,
				 .path = path,
				 .body = body,
				 .body_len = len,
				 .content_type =
				     patch ? "application/merge-patch+json" : "application/json",
				 .verb = patch	? "patch"
					 : post ? "create"
						: "update"};
	return rw_rec_request(j->ctl, j, &kr, cb, s1, s2, ptr);
}

int
rw_rec_delete(struct rw_rec_job *j, const char *path, rw_rec_req_cb cb, const char *s1,
	      const char *s2)
{
	static const char body[] = "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
				   "\"propagationPolicy\":\"Background\"}";
	struct rw_kube_req kr = {.method = "DELETE",
				 .path = path,
				 .body = body,
				 .body_len = sizeof(body) - 1,
				 .content_type = "application/json",
				 .verb = "delete"};
	return rw_rec_request(j->ctl, j, &kr, cb, s1, s2, NULL);
}

/* ---- Services that follow a cluster ---- */

static const char *
str_or_empty(const char *s)
{
	return s ? s : "";
}

int
rw_rec_service_switch(const char *existing, size_t elen, const char *desired, size_t dlen,
		      enum rw_rec_svc_action *act, struct rw_buf *out)
{
	struct rw_doc_node *e = NULL, *d = NULL, *patch = NULL, *espec, *dspec, *esel, *dsel;
	const char *ec, *dc;
	int rv;

	*act = RW_REC_SVC_KEEP;
	rv = rw_doc_parse(existing, elen, &e, NULL, 0);
	if (rv == 0)
		rv = rw_doc_parse(desired, dlen, &d, NULL, 0);
	if (rv == 0 && (e->type != RW_DOC_OBJ || d->type != RW_DOC_OBJ))
		rv = -EINVAL;
	if (rv)
		goto out;
	ec = rw_doc_gets(rw_doc_path(e, "spec.selector"), "ray.io/cluster");
	dc = rw_doc_gets(rw_doc_path(d, "spec.selector"), "ray.io/cluster");
	if (strcmp(str_or_empty(ec), str_or_empty(dc)) == 0)
		goto out;
	espec = rw_doc_get(e, "spec");
	dspec = rw_doc_clone(rw_doc_get(d, "spec"));
	if (!dspec) {
		rv = -ENOMEM;
		goto out;
	}
	if (dspec->type != RW_DOC_OBJ) {
		rw_doc_free(dspec);
		rv = -EINVAL;
		goto out;
	}
	/* clusterIP(s) are immutable and allocated by the server: never sent. */
	rw_doc_del(dspec, "clusterIP");
	rw_doc_del(dspec, "clusterIPs");
	/* A merge patch merges maps: null out the selector keys the desired one lacks, so the
	 * selector becomes exactly the desired one in this single write. */
	esel = rw_doc_get(espec, "selector");
	dsel = rw_doc_get(dspec, "selector");
	if (!dsel || dsel->type != RW_DOC_OBJ) {
		rv = rw_doc_set(dspec, "selector", rw_doc_new(RW_DOC_NULL));
	} else if (esel && esel->type == RW_DOC_OBJ) {
		for (int i = 0; i < esel->n && rv == 0; i++)
			if (!rw_doc_get(dsel, esel->kids[i]->key))
				rv = rw_doc_set(dsel, esel->kids[i]->key, rw_doc_new(RW_DOC_NULL));
	}
	if (rv == 0 && !(patch = rw_doc_new(RW_DOC_OBJ)))
		rv = -ENOMEM;
	if (rv == 0)
		rv = rw_doc_set(patch, "spec", dspec); /* frees dspec on failure */
	else
		rw_doc_free(dspec);
	if (rv == 0)
		rv = rw_doc_dump(patch, out);
	if (rv == 0)
		*act = RW_REC_SVC_SWITCH;
out:
	rw_doc_free(patch);
	rw_doc_free(e);
	rw_doc_free(d);
	return rv;
}

/* ptr set: a create. KubeRay's Event reasons and texts. */
static void
svc_write_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rw_rec_job *j = q->job;
	bool create = q->ptr != NULL;
	if (create && rw_kube_already_exists(resp))
		return;
	if (!rw_rec_ok(resp->status)) {
		rw_rec_emit(j, 1, create ? "FailedToCreateService" : "FailedToUpdateService",
			    "Failed to %s the service %s/%s, HTTP %ld %s",
			    create ? "create" : "update", j->ns, q->s1, resp->status,
			    resp->message);
		rw_rec_fail(j, -EIO, NULL, "%s service %s: HTTP %ld %s",
			    create ? "creating" : "updating", q->s1, resp->status, resp->message);
		return;
	}
	rw_rec_emit(j, 0, create ? "CreatedService" : "UpdatedService", "%s the service %s/%s",
		    create ? "Created" : "Updated", j->ns, q->s1);
}

void
rw_rec_apply_service(struct rw_rec_job *j, const struct rw_inf *svc_inf, const char *desired,
		     size_t len)
{
	char name[320] = "", path[1024];
	const struct rw_inf_json *cur;
	struct rw_buf out;
	enum rw_rec_svc_action act = RW_REC_SVC_KEEP;
	struct rw_json js;
	int rv;
	if (rw_json_parse(&js, desired, len, 1 << 20, NULL, 0) != 0) {
		rw_rec_fail(j, -EINVAL, NULL, "a built Service does not parse");
		return;
	}
	rv = rw_json_str(&js, rw_json_path(&js, 0, "metadata.name"), name, sizeof(name));
	rw_json_fini(&js);
	if (rv < 0 || !name[0]) {
		rw_rec_fail(j, -EINVAL, NULL, "a built Service has no name");
		return;
	}
	cur = rw_inf_get(svc_inf, j->ns, name);
	if (!cur) {
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services", j->ns);
		if (rw_rec_send(j, "POST", path, desired, len, svc_write_cb, name, NULL,
				(void *)1) != 0)
			rw_rec_fail(j, -ENOMEM, NULL, "cannot create service %s", name);
		return;
	}
	rw_buf_init(&out, 4u << 20);
	if (rw_rec_service_switch(cur->json, cur->len, desired, len, &act, &out) == 0 &&
	    act == RW_REC_SVC_SWITCH) {
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s", j->ns, name);
		rw_info(j->ctl->kind->name, "%s: switching service %s", j->key, name);
		if (rw_rec_send(j, "PATCH", path, rw_buf_cstr(&out), out.len, svc_write_cb, name,
				NULL, NULL) != 0)
			rw_rec_fail(j, -ENOMEM, NULL, "cannot update service %s", name);
	}
	rw_buf_fini(&out);
}

/* ---- requests on the job's own object ---- */

/* The object's path, plus "/sub" when sub is given. */
static void
object_path(const struct rw_rec_job *j, const char *sub, char *out, size_t outlen)
{
	const struct rw_rec_kind *k = j->ctl->kind;
	snprintf(out, outlen, "%s/namespaces/%s/%s/%s%s%s", k->type->api_path, j->ns,
		 k->type->resource, j->name, sub ? "/" : "", sub ? sub : "");
}

static void
patch_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	if (!rw_rec_ok(resp->status))
		rw_rec_fail(q->job, resp->err ? resp->err : -EIO, NULL, "%s: HTTP %ld %s", q->s1,
			    resp->status, resp->message);
}

int
rw_rec_patch(struct rw_rec_job *j, const char *patch, rw_rec_req_cb cb, const char *what)
{
	char path[1024];
	object_path(j, NULL, path, sizeof(path));
	struct rw_kube_req kr = {.method = "PATCH",
				 .path = path,
				 .body = patch,
				 .body_len = strlen(patch),
				 .content_type = "application/json-patch+json",
				 .verb = "patch"};
	return rw_rec_request(j->ctl, j, &kr, cb ? cb : patch_cb, what, NULL, NULL);
}

static void
status_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	rw_rec_status_answer(q->job, resp);
}

int
rw_rec_put_status(struct rw_rec_job *j, const char *body, size_t len, rw_rec_req_cb cb,
		  const char *s1)
{
	char path[1024];
	object_path(j, "status", path, sizeof(path));
	struct rw_kube_req kr = {.method = "PUT",
				 .path = path,
				 .body = body,
				 .body_len = len,
				 .content_type = "application/json",
				 .verb = "update"};
	return rw_rec_request(j->ctl, j, &kr, cb ? cb : status_cb, s1, NULL, NULL);
}

bool
rw_rec_status_answer(struct rw_rec_job *j, const struct rw_kube_resp *resp)
{
	bool ok = rw_rec_ok(resp->status);
	rw_met_add(j->ctl->m_status, (const char *const[]){ok ? "ok" : "error"}, 1);
	if (ok)
		return true;
	if (resp->status == 409) {
		/* A newer object exists (someone else wrote): reconcile again with it. */
		rw_debug(j->ctl->kind->name, "%s: status update conflict; again", j->key);
		rw_rec_requeue(j, 20);
		return false;
	}
	rw_rec_fail(j, -EAGAIN, NULL, "status update: HTTP %ld %s", resp->status, resp->message);
	return false;
}

/* ---- emit / fail / requeue ---- */

void
rw_rec_emit(struct rw_rec_job *j, int warning, const char *reason, const char *fmt, ...)
{
	struct rw_ev_ref ref = {"ray.io/v1", j->ctl->kind->kind, j->ns, j->name,
				j->uid[0] ? j->uid : NULL};
	char note[1024];
	va_list ap;
	if (j->ns_terminating)
		return; /* an Event cannot be created in a namespace being deleted */
	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	rw_ev_emit(j->ctl->ev, &ref, warning, reason, "Reconcile", "%s", note);
}

void
rw_rec_fail(struct rw_rec_job *j, int err, const char *reason, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (j->in_ns_refusal) {
		rw_debug(j->ctl->kind->name, "%s: %s (namespace being deleted)", j->key, msg);
		return;
	}
	if (j->err) {
		rw_debug(j->ctl->kind->name, "%s: %s (after an earlier failure)", j->key, msg);
		return;
	}
	j->err = err ? err : -EIO;
	snprintf(j->fail_reason, sizeof(j->fail_reason), "%s", reason ? reason : "");
	snprintf(j->fail_msg, sizeof(j->fail_msg), "%s", msg);
	rw_warn(j->ctl->kind->name, "%s: %s", j->key, msg);
}

void
rw_rec_stop(struct rw_rec_job *j)
{
	j->stop_requeue = true;
	j->step = j->ctl->kind->nsteps; /* out of the table: the driver finishes the job */
}

void
rw_rec_abort(struct rw_rec_job *j, int err, const char *why)
{
	rw_rec_fail(j, err, NULL, "%s", why);
	j->step = j->ctl->kind->nsteps;
}

void
rw_rec_step_load(struct rw_rec_job *j)
{
	const struct rw_rec_kind *k = j->ctl->kind;
	const struct rw_inf_json *o = k->find(j);
	const char *uid;
	char err[256];
	if (!o) {
		if (k->gone)
			k->gone(j);
		rw_rec_stop(j);
		return;
	}
	err[0] = '\0';
	uid = k->parse(j, o, err, sizeof(err));
	if (!uid) {
		rw_warn(k->name, "%s: cannot parse: %s", j->key, err);
		rw_rec_stop(j);
		return;
	}
	snprintf(j->uid, sizeof(j->uid), "%s", uid);
	if (k->attach && k->attach(j) != 0) {
		rw_rec_abort(j, -ENOMEM, "out of memory");
		return;
	}
	if (o->meta.deleted) {
		j->deleted_at = o->meta.deleted;
		j->step = k->delete_step;
	}
}

int
rw_rec_remove_finalizer(struct rw_rec_job *j, int index, const char *finalizer, rw_rec_req_cb cb)
{
	char patch[512];
	if (snprintf(patch, sizeof(patch),
		     "[{\"op\":\"test\",\"path\":\"/metadata/finalizers/%d\",\"value\":\"%s\"},"
		     "{\"op\":\"remove\",\"path\":\"/metadata/finalizers/%d\"}]",
		     index, finalizer, index) >= (int)sizeof(patch))
		return -ENAMETOOLONG;
	return rw_rec_patch(j, patch, cb, "removing the finalizer");
}

bool
rw_rec_managed_elsewhere(struct rw_rec_job *j, const char *managed_by)
{
	if (!managed_by || !*managed_by || strcmp(managed_by, "ray.io/kuberay-operator") == 0)
		return false;
	rw_debug(j->ctl->kind->name, "%s: managed by %s: skipped", j->key, managed_by);
	rw_rec_stop(j);
	return true;
}

void
rw_rec_add_finalizer(struct rw_rec_job *j, const struct rw_doc_node *root, const char *finalizer)
{
	bool has_list = rw_doc_path(root, "metadata.finalizers") != NULL;
	struct rw_buf patch;
	struct rw_jw w;
	char what[160];
	if (rw_doc_finalizer_index(root, finalizer) >= 0)
		return;
	rw_buf_init(&patch, 4096);
	rw_jw_init(&w, &patch);
	rw_jw_arr_begin(&w);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "op", "add");
	if (has_list) {
		rw_jw_kstr(&w, "path", "/metadata/finalizers/-");
		rw_jw_kstr(&w, "value", finalizer);
	} else {
		rw_jw_kstr(&w, "path", "/metadata/finalizers");
		rw_jw_key(&w, "value");
		rw_jw_arr_begin(&w);
		rw_jw_str(&w, finalizer);
		rw_jw_arr_end(&w);
	}
	rw_jw_obj_end(&w);
	rw_jw_arr_end(&w);
	snprintf(what, sizeof(what), "adding the finalizer %s", finalizer);
	if (rw_jw_finish(&w) != 0 || rw_rec_patch(j, rw_buf_cstr(&patch), NULL, what) != 0)
		rw_rec_fail(j, -ENOMEM, NULL, "cannot add the finalizer %s", finalizer);
	rw_buf_fini(&patch);
}

/* Queue ns/name: in the work queue's first lane (group `group`), or at the back. */
static void
enqueue(struct rw_rec_ctl *c, const char *ns, const char *name, bool first, unsigned group)
{
	char key[512];
	if (!c->wq)
		return;
	if (snprintf(key, sizeof(key), "%s/%s", ns, name) >= (int)sizeof(key))
		return; /* longer than any valid namespace/name */
	if (!first) {
		rw_wq_add(c->wq, key);
		return;
	}
	rw_debug(c->kind->name, "%s: created; first in the work queue, group %u (%d waiting)", key,
		 group, rw_wq_len(c->wq));
	rw_wq_add_first(c->wq, key, group);
}

void
rw_rec_enqueue(struct rw_rec_ctl *c, const char *ns, const char *name)
{
	enqueue(c, ns, name, false, 0);
}

static void
object_seen(struct rw_inf *inf, const void *obj, void *ud)
{
	const struct rw_inf_meta *m = obj; /* every decoded object starts with its meta */
	(void)inf;
	rw_rec_enqueue(ud, m->ns, m->name);
}

unsigned
rw_rec_source_of(const char *crd)
{
	if (crd && strcmp(crd, "RayJob") == 0)
		return RW_REC_SRC_RAYJOB;
	if (crd && strcmp(crd, "RayService") == 0)
		return RW_REC_SRC_RAYSERVICE;
	return RW_REC_SRC_DIRECT;
}

void
rw_rec_enqueue_added(struct rw_rec_ctl *c, struct rw_inf *inf, const char *ns, const char *name,
		     unsigned group)
{
	enqueue(c, ns, name, rw_inf_synced(inf), group);
}

static void
object_added(struct rw_inf *inf, const void *obj, void *ud)
{
	const struct rw_inf_meta *m = obj;
	struct rw_rec_ctl *c = ud;
	rw_rec_enqueue_added(c, inf, m->ns, m->name, c->kind->source);
}

static void
object_changed(struct rw_inf *inf, const void *old_obj, const void *new_obj, void *ud)
{
	(void)old_obj;
	object_seen(inf, new_obj, ud);
}

struct rw_inf_handlers
rw_rec_object_handlers(struct rw_rec_ctl *c)
{
	struct rw_inf_handlers h = {
	    .on_add = object_added, .on_update = object_changed, .on_delete = object_seen, .ud = c};
	return h;
}

void
rw_rec_requeue(struct rw_rec_job *j, uint64_t ms)
{
	if (ms && (!j->requeue_ms || ms < j->requeue_ms))
		j->requeue_ms = ms;
}

/* ---- controller ---- */

int
rw_rec_ctl_init(struct rw_rec_ctl *c, const struct rw_rec_kind *kind,
		const struct rw_rec_policy *policy, void *ud, struct rw_kube *kube,
		struct rw_ev *ev, struct rw_met *met, rw_rec_submit_fn submit)
{
	static const char *const lcr[] = {"controller", "result", NULL};
	static const char *const lc[] = {"controller", NULL};
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->policy = *policy;
	c->ud = ud;
	c->kube = kube;
	c->ev = ev;
	c->submit = submit ? submit : rw_kube_request;
	/* Registered once per process: the second kind gets the same families. Names,
	 * help, labels and buckets as controller-runtime v0.22.1 (KubeRay v1.5.0's):
	 * pkg/internal/controller/metrics/metrics.go. */
	c->m_total = rw_met_counter(met, "controller_runtime_reconcile_total",
				    "Total number of reconciliations per controller", lcr);
	c->m_errors = rw_met_counter(met, "controller_runtime_reconcile_errors_total",
				     "Total number of reconciliation errors per controller", lc);
	c->m_terminal =
	    rw_met_counter(met, "controller_runtime_terminal_reconcile_errors_total",
			   "Total number of terminal reconciliation errors per controller", lc);
	c->m_panics = rw_met_counter(met, "controller_runtime_reconcile_panics_total",
				     "Total number of reconciliation panics per controller", lc);
	c->m_time = rw_met_histogram(
	    met, "controller_runtime_reconcile_time_seconds",
	    "Length of time per reconciliation per controller", lc, reconcile_buckets,
	    (int)(sizeof(reconcile_buckets) / sizeof(reconcile_buckets[0])));
	c->m_workers = rw_met_gauge(met, "controller_runtime_max_concurrent_reconciles",
				    "Maximum number of concurrent reconciles per controller", lc);
	{
		/* Pre-set as controller-runtime's Start does, so rates exist before the first
		 * error. */
		static const char *const results[] = {"error", "requeue_after", "requeue",
						      "success"};
		const char *cv[] = {kind->name};
		for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++)
			rw_met_add(c->m_total, (const char *const[]){kind->name, results[i]}, 0);
		rw_met_add(c->m_errors, cv, 0);
		rw_met_add(c->m_terminal, cv, 0);
		rw_met_add(c->m_panics, cv, 0);
	}
	/* The status writes of each kind, under the names the kinds always had. */
	{
		char name[128], help[160];
		snprintf(name, sizeof(name), "raywarden_%s_status_writes_total", kind->name);
		snprintf(help, sizeof(help), "%s status writes (only when the status changed).",
			 kind->kind);
		c->m_status =
		    rw_met_counter(met, name, help, (const char *const[]){"result", NULL});
	}
	return 0;
}

int
rw_rec_ctl_setup(struct rw_rec_ctl *c, struct rw_mgr *m, const struct rw_rec_kind *kind,
		 const struct rw_rec_policy *policy, void *ud)
{
	rw_rec_ctl_init(c, kind, policy, ud, rw_mgr_kube(m), rw_mgr_events(m), rw_mgr_metrics(m),
			NULL);
	c->wq = rw_mgr_workqueue(m, kind->name, wq_reconcile, c);
	rw_met_set(c->m_workers, (const char *const[]){kind->name},
		   (double)rw_mgr_cfg(m)->reconcile_concurrency);
	return c->wq ? 0 : -ENOMEM;
}

void
rw_rec_ctl_fini(struct rw_rec_ctl *c)
{
	if (!c || !c->kind)
		return;
	c->closing = true;
	/* Cancel every request: no callback, no rw_wq_done after this. */
	while (c->reqs) {
		struct rw_rec_req *q = c->reqs;
		c->reqs = q->next;
		if (q->op)
			rw_kube_cancel(q->op);
		req_free(q);
	}
	while (c->jobs) {
		struct rw_rec_job *j = c->jobs;
		c->jobs = j->next;
		job_free(j);
	}
}

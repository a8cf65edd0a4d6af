/* rc_status.c - RayCluster status from pods, the head service and the previous status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_builder.h"
#include "quantity.h"
#include "rc_status.h"

int
rw_raycluster_svc_parse(const char *json, size_t len, struct rw_raycluster_svc_buf *out)
{
	node *root = NULL, *ports;
	int rv = rw_doc_parse(json, len, &root, NULL, 0);
	memset(out, 0, sizeof(*out));
	if (rv)
		return rv;
	if (root->type != RW_DOC_OBJ) {
		rw_doc_free(root);
		return -EINVAL;
	}
	snprintf(out->name, sizeof(out->name), "%s",
		 rw_doc_gets(rw_doc_get(root, "metadata"), "name")
		     ? rw_doc_gets(rw_doc_get(root, "metadata"), "name")
		     : "");
	snprintf(out->ip, sizeof(out->ip), "%s",
		 rw_doc_gets(rw_doc_get(root, "spec"), "clusterIP")
		     ? rw_doc_gets(rw_doc_get(root, "spec"), "clusterIP")
		     : "");
	ports = rw_doc_path(root, "spec.ports");
	for (int i = 0;
	     ports && ports->type == RW_DOC_ARR && i < ports->n && i < RW_RAYCLUSTER_SVC_MAX_PORTS;
	     i++) {
		struct rw_raycluster_svc_port *p = &out->port[out->svc.nports];
		node *tp = rw_doc_get(ports->kids[i], "targetPort");
		int64_t v;
		snprintf(out->pname[i], sizeof(out->pname[i]), "%s",
			 rw_doc_gets(ports->kids[i], "name") ? rw_doc_gets(ports->kids[i], "name")
							     : "");
		p->name = out->pname[i];
		if (rw_doc_int(rw_doc_get(ports->kids[i], "nodePort"), &v) == 0)
			p->node_port = (int32_t)v;
		if (rw_doc_int(tp, &v) == 0) {
			p->target_port = (int32_t)v;
		} else if (rw_doc_str(tp)) {
			snprintf(out->ptarget[i], sizeof(out->ptarget[i]), "%s", tp->s);
			p->target_port_str = out->ptarget[i];
		}
		out->svc.nports++;
	}
	out->svc.name = out->name;
	out->svc.cluster_ip = out->ip;
	out->svc.ports = out->port;
	rw_doc_free(root);
	return 0;
}

/* ---- resources ---- */

int
rw_raycluster_res_add(struct rw_raycluster_res *s, const char *name, const struct rw_qty *q)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->key[i], name) == 0)
			return rw_qty_add(&s->q[i], q);
	if (s->n >= RW_RAYCLUSTER_RES_MAX || strlen(name) >= sizeof(s->key[0]))
		return 0; /* more resource names than anyone uses: ignored */
	snprintf(s->key[s->n], sizeof(s->key[0]), "%s", name);
	s->q[s->n++] = *q;
	return 0;
}

static int
qty_of(const node *list, const char *key, struct rw_qty *q)
{
	node *v = rw_doc_get(list, key);
	if (!v || !v->s || (v->type != RW_DOC_STR && v->type != RW_DOC_NUM))
		return -ENOENT;
	return rw_qty_parse(v->s, q);
}

void
rw_raycluster_pod_res(const node *tmpl_spec, struct rw_raycluster_res *pod)
{
	node *cs = rw_doc_get(tmpl_spec, "containers");
	for (int i = 0; cs && cs->type == RW_DOC_ARR && i < cs->n; i++) {
		node *res = rw_doc_get(cs->kids[i], "resources");
		node *req = rw_doc_get(res, "requests"), *lim = rw_doc_get(res, "limits");
		struct rw_qty q;
		for (int k = 0; req && req->type == RW_DOC_OBJ && k < req->n; k++)
			if (qty_of(req, req->kids[k]->key, &q) == 0)
				rw_raycluster_res_add(pod, req->kids[k]->key, &q);
		for (int k = 0; lim && lim->type == RW_DOC_OBJ && k < lim->n; k++)
			if (!rw_doc_get(req, lim->kids[k]->key) &&
			    qty_of(lim, lim->kids[k]->key, &q) == 0)
				rw_raycluster_res_add(pod, lim->kids[k]->key, &q);
	}
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
rw_raycluster_desired_resources(const struct rw_raycluster *c,
				struct rw_raycluster_desired_res *out)
{
	struct rw_raycluster_res *t = calloc(1, sizeof(*t)), *pod = calloc(1, sizeof(*pod));
	struct rw_qty gpu = {0, 0, RW_QTY_DECEXP};
	const char *gpus[64];
	int ngpus = 0, rv = 0;

	memset(out, 0, sizeof(*out));
	if (!t || !pod) {
		rv = -ENOMEM;
		goto out;
	}
	/* Head first, then each group's pod x numOfHosts x replicas (format: first seen). */
	rw_raycluster_pod_res(rw_doc_path(c->head, "template.spec"), t);
	for (int g = 0; g < c->ngroups; g++) {
		node *grp = rw_raycluster_group(c, g);
		int64_t reps = rw_doc_int_or(grp, "replicas", 0),
			hosts = rw_doc_int_or(grp, "numOfHosts", 1);
		if (!grp || rw_doc_true(rw_doc_get(grp, "suspend")) || reps <= 0)
			continue;
		if (hosts < 1)
			hosts = 1;
		memset(pod, 0, sizeof(*pod));
		rw_raycluster_pod_res(rw_doc_path(grp, "template.spec"), pod);
		for (int i = 0; i < pod->n; i++) {
			struct rw_qty q = pod->q[i];
			if (rw_qty_mul(&q, hosts) || rw_qty_mul(&q, reps)) {
				q.units = INT64_MAX; /* saturate rather than fail the status */
				q.nano = 0;
			}
			if (rw_raycluster_res_add(t, pod->key[i], &q)) {
				/* overflow: keep the saturated sum */
			}
		}
	}
	snprintf(out->cpu, sizeof(out->cpu), "0");
	snprintf(out->memory, sizeof(out->memory), "0");
	snprintf(out->tpu, sizeof(out->tpu), "0");
	for (int i = 0; i < t->n; i++) {
		size_t kl = strlen(t->key[i]);
		if (strcmp(t->key[i], "cpu") == 0)
			rw_qty_format(&t->q[i], out->cpu, sizeof(out->cpu));
		else if (strcmp(t->key[i], "memory") == 0)
			rw_qty_format(&t->q[i], out->memory, sizeof(out->memory));
		else if (strcmp(t->key[i], "google.com/tpu") == 0)
			rw_qty_format(&t->q[i], out->tpu, sizeof(out->tpu));
		if (kl >= 3 && strcmp(t->key[i] + kl - 3, "gpu") == 0 && !rw_qty_zero(&t->q[i]))
			gpus[ngpus++] = t->key[i];
	}
	/* sumGPUs: every non-zero "*gpu" resource (in name order, Go's is map order). */
	qsort(gpus, (size_t)ngpus, sizeof(gpus[0]), cmp_name);
	for (int k = 0; k < ngpus; k++)
		for (int i = 0; i < t->n; i++)
			if (strcmp(t->key[i], gpus[k]) == 0)
				rw_qty_add(&gpu, &t->q[i]);
	rw_qty_format(&gpu, out->gpu, sizeof(out->gpu));
out:
	free(t);
	free(pod);
	return rv;
}

/* ---- conditions (meta.SetStatusCondition) ---- */

/* CheckAllPodsRunning */
static bool
all_running(const struct rw_raycluster_pod *pods, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!streq(pods[i].phase, "Running"))
			return false;
		if (pods[i].ready_cond && !pods[i].ready)
			return false;
	}
	return true;
}

static bool
running_ready(const struct rw_raycluster_pod *p)
{
	return streq(p->phase, "Running") && p->ready_cond && p->ready;
}

static void
set_count(struct b *b, node *st, const char *key, int64_t v)
{
	if (b->err)
		return;
	if (v == 0)
		rw_doc_del(st, key); /* int32 with omitempty */
	else if (rw_doc_set_int(st, key, v))
		fail(b, -ENOMEM);
}

int
rw_raycluster_status(const struct rw_raycluster *c, const struct rw_raycluster_status_in *in,
		     struct rw_buf *out, char *err, size_t errlen)
{
	struct b b = {0};
	node *old = rw_doc_get(c->obj.root, "status");
	node *st = old && old->type == RW_DOC_OBJ ? rw_doc_clone(old) : rw_doc_new(RW_DOC_OBJ);
	node *conds;
	const struct rw_raycluster_pod *head = NULL;
	size_t nheads = 0;
	int64_t ready = 0, avail = 0;
	int32_t desired = rw_raycluster_desired_workers(c);
	struct rw_raycluster_desired_res res;
	const char *old_state = rw_doc_gets(old, "state");
	const char *now = in->now ? in->now : "1970-01-01T00:00:00Z";
	int rv;

	if (!st)
		return -ENOMEM;
	for (size_t i = 0; i < in->npods; i++) {
		const struct rw_raycluster_pod *p = &in->pods[i];
		if (p->type == RW_RAYCLUSTER_NT_HEAD) {
			head = p;
			nheads++;
		} else if (p->type == RW_RAYCLUSTER_NT_WORKER) {
			if (running_ready(p))
				ready++;
			if (streq(p->phase, "Running"))
				avail++;
		}
	}
	if (nheads > 1) {
		if (err && errlen)
			snprintf(err, errlen, "multiple head pods found for RayCluster %s/%s",
				 c->obj.ns, c->obj.name);
		rw_doc_free(st);
		return -ENOTUNIQ;
	}
	conds = rw_doc_get(st, "conditions");
	if (!conds || conds->type != RW_DOC_ARR) {
		if (rw_doc_set(st, "conditions", rw_doc_new(RW_DOC_ARR)))
			fail(&b, -ENOMEM);
		conds = rw_doc_get(st, "conditions");
	}
	if (in->reconcile_failed) {
		if (in->failure_reason && *in->failure_reason)
			set_condition(&b, conds, "RayClusterReplicaFailure", "True",
				      in->failure_reason, in->failure_message, 0, now);
	} else {
		for (int i = conds ? conds->n - 1 : -1; i >= 0; i--) {
			if (streq(rw_doc_gets(conds->kids[i], "type"),
				  "RayClusterReplicaFailure")) {
				rw_doc_free(conds->kids[i]);
				memmove(&conds->kids[i], &conds->kids[i + 1],
					(size_t)(conds->n - i - 1) * sizeof(*conds->kids));
				conds->n--;
			}
		}
	}
	if (c->obj.generation)
		rw_doc_set_int(st, "observedGeneration", c->obj.generation);
	else
		rw_doc_del(st, "observedGeneration");
	set_count(&b, st, "readyWorkerReplicas", ready);
	set_count(&b, st, "availableWorkerReplicas", avail);
	set_count(&b, st, "desiredWorkerReplicas", desired);
	set_count(&b, st, "minWorkerReplicas", rw_raycluster_min_workers(c));
	set_count(&b, st, "maxWorkerReplicas", rw_raycluster_max_workers(c));
	if (rw_raycluster_desired_resources(c, &res) == 0) {
		sets(&b, st, "desiredCPU", res.cpu);
		sets(&b, st, "desiredMemory", res.memory);
		sets(&b, st, "desiredGPU", res.gpu);
		sets(&b, st, "desiredTPU", res.tpu);
	}
	if (!in->reconcile_failed && in->npods == (size_t)desired + 1 &&
	    all_running(in->pods, in->npods)) {
		sets(&b, st, "state", "ready");
		rw_doc_del(st, "reason");
	}

	/* Conditions (RayClusterStatusConditions). */
	if (!head) {
		set_condition(&b, conds, "HeadPodReady", "False", "HeadPodNotFound",
			      "Head Pod not found", 0, now);
	} else {
		const char *status = "False", *reason = "Unknown", *msg = "";
		if (head->ready_cond) {
			status = head->ready ? "True" : "False";
			msg = head->ready_message ? head->ready_message : "";
			if (head->ready_reason && *head->ready_reason)
				reason = head->ready_reason;
			else if (head->ready)
				reason = "HeadPodRunningAndReady";
		}
		set_condition(&b, conds, "HeadPodReady", status, reason, msg, 0, now);
	}
	bool suspending = rw_doc_cond_true(conds, "RayClusterSuspending");
	bool suspended = !suspending && rw_doc_cond_true(conds, "RayClusterSuspended");
	node *susp = rw_doc_get(c->obj.spec, "suspend");
	if (!rw_doc_cond_true(conds, "RayClusterProvisioned") && !suspended) {
		if (all_running(in->pods, in->npods))
			set_condition(&b, conds, "RayClusterProvisioned", "True",
				      "AllPodRunningAndReadyFirstTime",
				      "All Ray Pods are ready for the first time", 0, now);
		else
			set_condition(&b, conds, "RayClusterProvisioned", "False",
				      "RayClusterPodsProvisioning",
				      "RayCluster Pods are being provisioned for first time", 0,
				      now);
	}
	if (suspending) {
		if (in->npods == 0) {
			set_condition(&b, conds, "RayClusterProvisioned", "False",
				      "RayClusterPodsProvisioning", "RayCluster has been suspended",
				      0, now);
			set_condition(&b, conds, "RayClusterSuspending", "False",
				      "RayClusterSuspending", "", 0, now);
			set_condition(&b, conds, "RayClusterSuspended", "True",
				      "RayClusterSuspended", "", 0, now);
		}
	} else if (suspended) {
		if (susp && susp->type == RW_DOC_BOOL && !susp->b)
			set_condition(&b, conds, "RayClusterSuspended", "False",
				      "RayClusterSuspended", "", 0, now);
	} else {
		set_condition(&b, conds, "RayClusterSuspended", "False", "RayClusterSuspended", "",
			      0, now);
		set_condition(&b, conds, "RayClusterSuspending",
			      rw_doc_true(susp) ? "True" : "False", "RayClusterSuspending", "", 0,
			      now);
	}
	if (rw_doc_true(susp) && in->npods == 0)
		sets(&b, st, "state", "suspended");

	/* Endpoints and head info. */
	if (in->head_svc) {
		node *ep = rw_doc_obj(st, "endpoints");
		for (size_t i = 0; ep && i < in->head_svc->nports; i++) {
			const struct rw_raycluster_svc_port *p = &in->head_svc->ports[i];
			char num[32];
			if (!p->name || !*p->name)
				continue;
			if (p->node_port) {
				snprintf(num, sizeof(num), "%d", p->node_port);
				sets(&b, ep, p->name, num);
			} else if (p->target_port) {
				snprintf(num, sizeof(num), "%d", p->target_port);
				sets(&b, ep, p->name, num);
			} else if (p->target_port_str && *p->target_port_str) {
				sets(&b, ep, p->name, p->target_port_str);
			}
		}
		if (ep && ep->n == 0)
			rw_doc_del(st, "endpoints");
	}
	node *hd = rw_doc_obj(st, "head");
	if (!hd)
		fail(&b, -ENOMEM);
	sets(&b, hd, "podIP", head && head->pod_ip ? head->pod_ip : "");
	sets(&b, hd, "podName", head && head->name ? head->name : "");
	if (!in->head_svc || !in->head_svc->cluster_ip || !*in->head_svc->cluster_ip) {
		if (err && errlen)
			snprintf(err, errlen,
				 in->head_svc ? "head service IP is empty. cluster name %s"
					      : "unable to find head service. cluster name %s",
				 c->obj.name);
		rw_doc_free(st);
		return b.err ? b.err : -ENOENT;
	}
	if (streq(in->head_svc->cluster_ip, "None"))
		sets(&b, hd, "serviceIP", head && head->pod_ip ? head->pod_ip : "");
	else
		sets(&b, hd, "serviceIP", in->head_svc->cluster_ip);
	sets(&b, hd, "serviceName", in->head_svc->name ? in->head_svc->name : "");
	for (int i = hd ? hd->n - 1 : -1; i >= 0; i--)
		if (rw_doc_str(hd->kids[i]) && !*hd->kids[i]->s)
			rw_doc_del(hd, hd->kids[i]->key); /* omitempty */
	if (hd && hd->n == 0)
		rw_doc_del(st, "head");

	sets(&b, st, "lastUpdateTime", now);
	const char *new_state = rw_doc_gets(st, "state");
	if (!streq(old_state ? old_state : "", new_state ? new_state : "")) {
		node *stt = rw_doc_obj(st, "stateTransitionTimes");
		sets(&b, stt, new_state ? new_state : "", now);
	}
	if (conds && conds->n == 0)
		rw_doc_del(st, "conditions");
	rv = b.err ? b.err : rw_doc_dump(st, out);
	rw_doc_free(st);
	return rv;
}

static node *
parse_status(const char *t, size_t n, bool *ok)
{
	node *s = NULL;
	*ok = true;
	if (!t || n == 0)
		return rw_doc_new(RW_DOC_OBJ);
	if (rw_doc_parse(t, n, &s, NULL, 0) != 0) {
		*ok = false;
		return NULL;
	}
	if (s->type == RW_DOC_NULL) {
		rw_doc_free(s);
		return rw_doc_new(RW_DOC_OBJ);
	}
	rw_doc_del(s, "lastUpdateTime");
	return s;
}

bool
rw_raycluster_status_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	bool oka, okb, eq;
	node *x = parse_status(a, alen, &oka), *y = parse_status(b, blen, &okb);
	eq = oka && okb && x && y && rw_doc_equal(x, y);
	rw_doc_free(x);
	rw_doc_free(y);
	return eq;
}

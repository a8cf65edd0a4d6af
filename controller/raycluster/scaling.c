/* scaling.c - KubeRay's reconcilePods decisions: head pod, worker counts, unhealthy pods. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_internal.h"

/* ---- pods and scaling ---- */

static void
copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

int
rw_raycluster_pod_parse(const char *json, size_t len, struct rw_raycluster_pod_buf *out)
{
	node *root = NULL, *md, *st, *conds, *cs;
	const char *t;
	int rv = rw_doc_parse(json, len, &root, NULL, 0);
	memset(out, 0, sizeof(*out));
	if (rv)
		return rv;
	if (root->type != RW_DOC_OBJ) {
		rw_doc_free(root);
		return -EINVAL;
	}
	md = rw_doc_get(root, "metadata");
	st = rw_doc_get(root, "status");
	copy_str(out->name, sizeof(out->name), rw_doc_gets(md, "name"));
	copy_str(out->group, sizeof(out->group),
		 rw_doc_gets(rw_doc_get(md, "labels"), "ray.io/group"));
	t = rw_doc_gets(rw_doc_get(md, "labels"), "ray.io/node-type");
	out->pod.type = streq(t, "head")     ? RW_RAYCLUSTER_NT_HEAD
			: streq(t, "worker") ? RW_RAYCLUSTER_NT_WORKER
					     : RW_RAYCLUSTER_NT_OTHER;
	copy_str(out->phase, sizeof(out->phase), rw_doc_gets(st, "phase"));
	copy_str(out->ip, sizeof(out->ip), rw_doc_gets(st, "podIP"));
	copy_str(out->restart, sizeof(out->restart),
		 rw_doc_gets(rw_doc_get(root, "spec"), "restartPolicy"));
	out->pod.deleting = rw_doc_get(md, "deletionTimestamp") &&
			    rw_doc_get(md, "deletionTimestamp")->type != RW_DOC_NULL;
	conds = rw_doc_get(st, "conditions");
	for (int i = 0; conds && conds->type == RW_DOC_ARR && i < conds->n; i++) {
		if (!streq(rw_doc_gets(conds->kids[i], "type"), "Ready"))
			continue;
		out->pod.ready_cond = true;
		out->pod.ready = streq(rw_doc_gets(conds->kids[i], "status"), "True");
		copy_str(out->reason, sizeof(out->reason), rw_doc_gets(conds->kids[i], "reason"));
		copy_str(out->message, sizeof(out->message),
			 rw_doc_gets(conds->kids[i], "message"));
		out->pod.ready_reason = out->reason;
		out->pod.ready_message = out->message;
		break;
	}
	/* The Ray container is containers[0]: match its status by name. */
	cs = rw_doc_get(st, "containerStatuses");
	t = rw_doc_gets(rw_doc_at(rw_doc_path(root, "spec.containers"), 0), "name");
	for (int i = 0; t && cs && cs->type == RW_DOC_ARR && i < cs->n; i++)
		if (streq(rw_doc_gets(cs->kids[i], "name"), t) &&
		    rw_doc_path(cs->kids[i], "state.terminated"))
			out->pod.ray_terminated = true;
	out->pod.name = out->name;
	out->pod.group = out->group;
	out->pod.phase = out->phase;
	out->pod.pod_ip = out->ip;
	out->pod.restart_policy = out->restart;
	rw_doc_free(root);
	return 0;
}

static int32_t
sat32(int64_t v)
{
	return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

int32_t
rw_raycluster_group_desired(const struct rw_raycluster *c, int group)
{
	node *g = rw_raycluster_group(c, group);
	int64_t min, max, rep, hosts, w;
	if (!g || rw_doc_true(rw_doc_get(g, "suspend")))
		return 0;
	min = rw_doc_int_or(g, "minReplicas", 0);
	max = rw_doc_int_or(g, "maxReplicas", INT32_MAX);
	hosts = rw_doc_int_or(g, "numOfHosts", 1);
	if (!rw_doc_get(g, "replicas") || rw_doc_get(g, "replicas")->type == RW_DOC_NULL)
		rep = -1;
	else
		rep = rw_doc_int_or(g, "replicas", 0);
	if (min > max)
		w = max;
	else if (rep < 0 || rep < min)
		w = min;
	else if (rep > max)
		w = max;
	else
		w = rep;
	if (hosts < 1)
		hosts = 1;
	if (w < 0)
		w = 0; /* negative bounds are refused by validation; never plan below zero */
	return sat32((int64_t)sat32(w) * sat32(hosts)); /* int32 fields in Go */
}

int32_t
rw_raycluster_desired_workers(const struct rw_raycluster *c)
{
	int64_t s = 0;
	for (int i = 0; i < c->ngroups; i++)
		s += rw_raycluster_group_desired(c, i);
	return sat32(s);
}

static int32_t
sum_groups(const struct rw_raycluster *c, const char *key, int64_t def)
{
	int64_t s = 0;
	for (int i = 0; i < c->ngroups; i++) {
		node *g = rw_raycluster_group(c, i);
		if (!g || rw_doc_true(rw_doc_get(g, "suspend")))
			continue;
		s += sat32((int64_t)sat32(rw_doc_int_or(g, key, def)) *
			   sat32(rw_doc_int_or(g, "numOfHosts", 1)));
	}
	return sat32(s);
}

int32_t
rw_raycluster_min_workers(const struct rw_raycluster *c)
{
	return sum_groups(c, "minReplicas", 0);
}

int32_t
rw_raycluster_max_workers(const struct rw_raycluster *c)
{
	return sum_groups(c, "maxReplicas", INT32_MAX);
}

bool
rw_raycluster_should_delete_pod(const struct rw_raycluster_pod *p, bool head, char *reason,
				size_t rlen)
{
	const char *nt = head ? "head" : "worker";
	const char *name = p->name ? p->name : "";
	const char *phase = p->phase ? p->phase : "";
	if (streq(phase, "Failed") || streq(phase, "Succeeded")) {
		if (reason)
			snprintf(
			    reason, rlen,
			    "The %s Pod %s status is %s which is a terminal state. KubeRay will "
			    "delete the Pod and create new Pods in the next reconciliation if "
			    "necessary.",
			    nt, name, phase);
		return true;
	}
	if (streq(phase, "Running") && p->ray_terminated) {
		if (streq(p->restart_policy, "Never")) {
			if (reason)
				snprintf(
				    reason, rlen,
				    "The Pod status of the %s Pod %s is %s, and the Ray container "
				    "terminated status is not nil. Since the Pod's restart policy "
				    "is Never, KubeRay will delete the Pod.",
				    nt, name, phase);
			return true;
		}
		if (reason)
			snprintf(reason, rlen,
				 "The Pod status of the %s Pod %s is %s, and the Ray container "
				 "terminated status is not nil. The Pod will be restarted by its "
				 "restart policy.",
				 nt, name, phase);
		return false;
	}
	if (reason)
		snprintf(reason, rlen,
			 "KubeRay does not need to delete the %s Pod %s. The Pod status is %s.", nt,
			 name, phase);
	return false;
}

enum rw_raycluster_head_action
rw_raycluster_plan_head(const struct rw_raycluster *c, const struct rw_raycluster_pod *pods,
			size_t npods, bool provisioned, const char **name)
{
	const struct rw_raycluster_pod *head = NULL;
	size_t n = 0;
	*name = NULL;
	for (size_t i = 0; i < npods; i++)
		if (pods[i].type == RW_RAYCLUSTER_NT_HEAD) {
			head = &pods[i];
			n++;
		}
	if (n == 0)
		return RW_RAYCLUSTER_HEAD_CREATE;
	if (n > 1)
		return RW_RAYCLUSTER_HEAD_MANY;
	if (provisioned &&
	    lower_is(param_raw(c->obj.annotations, "ray.io/disable-provisioned-head-restart"),
		     "true"))
		return RW_RAYCLUSTER_HEAD_OK;
	if (rw_raycluster_should_delete_pod(head, true, NULL, 0)) {
		*name = head->name;
		return RW_RAYCLUSTER_HEAD_DELETE;
	}
	return RW_RAYCLUSTER_HEAD_OK;
}

static int
plan_add(struct rw_raycluster_group_plan *plan, const char *name)
{
	const char **d;
	for (size_t i = 0; i < plan->ndel; i++)
		if (streq(plan->del[i], name))
			return 0;
	d = realloc(plan->del, (plan->ndel + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	plan->del = d;
	plan->del[plan->ndel++] = name;
	return 0;
}

static bool
planned(const struct rw_raycluster_group_plan *plan, const char *name)
{
	for (size_t i = 0; i < plan->ndel; i++)
		if (streq(plan->del[i], name))
			return true;
	return false;
}

int
rw_raycluster_plan_group(const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
			 int group, const struct rw_raycluster_pod *pods, size_t npods,
			 struct rw_raycluster_group_plan *plan)
{
	node *g = rw_raycluster_group(c, group);
	const char *gname = rw_raycluster_group_name(c, group);
	node *wtd;
	size_t running = 0;
	int rv = 0;

	memset(plan, 0, sizeof(*plan));
	if (!g)
		return -EINVAL;
	plan->desired = rw_raycluster_group_desired(c, group);
	if (rw_raycluster_suspended(c) || rw_doc_true(rw_doc_get(g, "suspend"))) {
		plan->desired = 0;
		for (size_t i = 0; i < npods && !rv; i++)
			if (pods[i].type == RW_RAYCLUSTER_NT_WORKER &&
			    streq(pods[i].group, gname) && !pods[i].deleting)
				rv = plan_add(plan, pods[i].name);
		return rv;
	}
	for (size_t i = 0; i < npods && !rv; i++) {
		if (pods[i].type != RW_RAYCLUSTER_NT_WORKER || !streq(pods[i].group, gname))
			continue;
		if (rw_raycluster_should_delete_pod(&pods[i], false, NULL, 0)) {
			rv = plan_add(plan, pods[i].name);
			plan->unhealthy = true;
		}
	}
	if (rv || plan->unhealthy)
		return rv;
	wtd = rw_doc_path(g, "scaleStrategy.workersToDelete");
	for (int i = 0; wtd && wtd->type == RW_DOC_ARR && i < wtd->n && !rv; i++)
		if (rw_doc_str(wtd->kids[i]))
			rv = plan_add(plan, wtd->kids[i]->s);
	for (size_t i = 0; i < npods; i++)
		if (pods[i].type == RW_RAYCLUSTER_NT_WORKER && streq(pods[i].group, gname) &&
		    !pods[i].deleting && !planned(plan, pods[i].name))
			running++;
	if ((int64_t)plan->desired > (int64_t)running) {
		plan->create = (int32_t)(plan->desired - (int64_t)running);
	} else if ((int64_t)plan->desired < (int64_t)running) {
		bool autoscale = rw_raycluster_autoscaling(c);
		if (!autoscale || o->random_pod_delete) {
			size_t surplus = running - (size_t)plan->desired;
			for (size_t i = 0; i < npods && surplus > 0 && !rv; i++) {
				if (pods[i].type != RW_RAYCLUSTER_NT_WORKER ||
				    !streq(pods[i].group, gname) || pods[i].deleting ||
				    planned(plan, pods[i].name))
					continue;
				rv = plan_add(plan, pods[i].name);
				surplus--;
			}
		}
	}
	return rv;
}

void
rw_raycluster_group_plan_fini(struct rw_raycluster_group_plan *plan)
{
	free(plan->del);
	memset(plan, 0, sizeof(*plan));
}

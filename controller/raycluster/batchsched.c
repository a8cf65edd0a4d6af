/* batchsched.c - batch scheduler PodGroups and child metadata (see batchsched.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchsched.h"
#include "doc_builder.h"
#include "quantity.h"
#include "rc_status.h"

static const struct {
	enum rw_bs_kind kind;
	const char *flag, *scheduler;
} kinds[] = {
    {RW_BS_VOLCANO, "volcano", "volcano"},
    {RW_BS_YUNIKORN, "yunikorn", "yunikorn"},
    /* KubeRay's flag value vs the scheduler's default instance name (its Helm chart). */
    {RW_BS_SCHEDULER_PLUGINS, "scheduler-plugins", "scheduler-plugins-scheduler"},
    {RW_BS_KAI, "kai-scheduler", "kai-scheduler"},
};

int
rw_bs_parse(const char *name, enum rw_bs_kind *out)
{
	*out = RW_BS_NONE;
	if (!name || !*name)
		return 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(name, kinds[i].flag) == 0) {
			*out = kinds[i].kind;
			return 0;
		}
	return -EINVAL;
}

const char *
rw_bs_flag_name(enum rw_bs_kind k)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == k)
			return kinds[i].flag;
	return "";
}

const char *
rw_bs_scheduler_name(enum rw_bs_kind k)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == k)
			return kinds[i].scheduler;
	return NULL;
}

static const char *
label(const struct rw_bs_parent *p, const char *key)
{
	return rw_doc_gets(p->labels, key);
}

static bool
gang(const struct rw_bs_parent *p)
{
	return rw_doc_get(p->labels, RW_BS_GANG_LABEL) != NULL;
}

/* A RayCluster a RayJob made (ray.io/originated-from-crd=RayJob). */
static bool
from_rayjob(const struct rw_bs_parent *p)
{
	return !p->rayjob && streq(label(p, "ray.io/originated-from-crd"), "RayJob");
}

void
rw_bs_volcano_group_name(const struct rw_bs_parent *p, char *out, size_t outlen)
{
	const char *name = p->name ? p->name : "";
	const char *job = label(p, "ray.io/originated-from-cr-name");
	if (from_rayjob(p) && job && *job)
		name = job;
	snprintf(out, outlen, "ray-%s-pg", name);
}

/* populateLabelsFromObject: copy a non-empty parent label under target. */
static void
copy_label(struct b *b, const struct rw_bs_parent *p, node *labels, const char *src,
	   const char *dst)
{
	const char *v = label(p, src);
	if (v && *v)
		sets(b, labels, dst, v);
}

/* ---- resources (utils/util.go) ---- */

/* A RayCluster view of a spec, for the replica helpers of scaling.h. */
static void
cluster_view(const node *spec, struct rw_raycluster *c)
{
	memset(c, 0, sizeof(*c));
	c->obj.spec = (node *)spec;
	c->head = rw_doc_get(spec, "headGroupSpec");
	c->groups = rw_doc_get(spec, "workerGroupSpecs");
	if (c->groups && c->groups->type != RW_DOC_ARR)
		c->groups = NULL;
	c->ngroups = c->groups ? c->groups->n : 0;
}

/* sum += res x k (saturating: a PodGroup larger than int64 nano-units is absurd anyway). */
static void
res_add_times(struct rw_raycluster_res *sum, const struct rw_raycluster_res *res, int64_t k)
{
	for (int i = 0; i < res->n; i++) {
		struct rw_qty q = res->q[i];
		if (rw_qty_mul(&q, k)) {
			q.units = INT64_MAX;
			q.nano = 0;
		}
		rw_raycluster_res_add(sum, res->key[i], &q);
	}
}

static void
res_add_all(struct rw_raycluster_res *sum, const struct rw_raycluster_res *res)
{
	res_add_times(sum, res, 1);
}

/* An int32 count of the spec (replicas, numOfHosts) in 0..INT32_MAX: products fit in int64. */
static int64_t
count_of(const node *o, const char *key, int64_t def)
{
	int64_t v = rw_doc_int_or(o, key, def);
	return v < 0 ? 0 : v > INT32_MAX ? INT32_MAX : v;
}

/*
 * CalculateDesiredResources (min false: replicas as written, suspended groups
 * skipped) or CalculateMinResources (min true: minReplicas, suspended groups
 * counted, as KubeRay does).
 */
static void
cluster_res(const node *spec, bool min, struct rw_raycluster_res *sum,
	    struct rw_raycluster_res *pod)
{
	node *groups = rw_doc_get(spec, "workerGroupSpecs");
	memset(pod, 0, sizeof(*pod));
	rw_raycluster_pod_res(rw_doc_path(spec, "headGroupSpec.template.spec"), pod);
	res_add_all(sum, pod);
	for (int g = 0; groups && groups->type == RW_DOC_ARR && g < groups->n; g++) {
		node *grp = groups->kids[g];
		int64_t n = count_of(grp, min ? "minReplicas" : "replicas", 0),
			hosts = count_of(grp, "numOfHosts", 1);
		if (grp->type != RW_DOC_OBJ || n == 0)
			continue;
		if (!min && rw_doc_true(rw_doc_get(grp, "suspend")))
			continue;
		memset(pod, 0, sizeof(*pod));
		rw_raycluster_pod_res(rw_doc_path(grp, "template.spec"), pod);
		res_add_times(sum, pod, hosts * n);
	}
}

/* A ResourceList object in Go's map order (sorted keys). */
static int
cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static node *
res_json(struct b *b, const struct rw_raycluster_res *r)
{
	const char *keys[RW_RAYCLUSTER_RES_MAX];
	node *o = nnew(b, RW_DOC_OBJ);
	char text[64];
	for (int i = 0; i < r->n; i++)
		keys[i] = r->key[i];
	qsort(keys, (size_t)r->n, sizeof(keys[0]), cmp_key);
	for (int k = 0; k < r->n; k++)
		for (int i = 0; i < r->n; i++)
			if (keys[k] == r->key[i] &&
			    rw_qty_format(&r->q[i], text, sizeof(text)) >= 0)
				sets(b, o, r->key[i], text);
	return o;
}

/* ---- YuniKorn task groups (yunikorn_task_groups.go) ---- */

static void
task_group(struct b *b, node *groups, const char *name, int64_t min_member, const node *pod_spec)
{
	struct rw_raycluster_res *res = calloc(1, sizeof(*res));
	node *g = nnew(b, RW_DOC_OBJ);
	const char *opt[] = {"nodeSelector", "affinity"};
	if (!res) {
		fail(b, -ENOMEM);
		rw_doc_free(g);
		return;
	}
	rw_raycluster_pod_res(pod_spec, res);
	set(b, g, "minResource", res_json(b, res));
	free(res);
	for (size_t i = 0; i < 2; i++) {
		node *v = rw_doc_get(pod_spec, opt[i]);
		if (v && v->type == RW_DOC_OBJ && v->n > 0)
			set(b, g, opt[i], nclone(b, v));
	}
	sets(b, g, "name", name);
	node *tol = rw_doc_get(pod_spec, "tolerations");
	if (tol && tol->type == RW_DOC_ARR && tol->n > 0)
		set(b, g, "tolerations", nclone(b, tol));
	seti(b, g, "minMember", min_member);
	push(b, groups, g);
}

static node *
task_groups(struct b *b, const struct rw_bs_parent *p)
{
	node *groups = nnew(b, RW_DOC_ARR);
	node *spec = (node *)p->cluster_spec;
	node *wgs = rw_doc_get(spec, "workerGroupSpecs");
	task_group(b, groups, "headgroup", 1, rw_doc_path(spec, "headGroupSpec.template.spec"));
	for (int g = 0; wgs && wgs->type == RW_DOC_ARR && g < wgs->n; g++) {
		node *grp = wgs->kids[g];
		const char *gname = rw_doc_gets(grp, "groupName");
		int64_t min = count_of(grp, "minReplicas", 0) * count_of(grp, "numOfHosts", 1);
		if (min > INT32_MAX)
			min = INT32_MAX;
		task_group(b, groups, gname ? gname : "", min, rw_doc_path(grp, "template.spec"));
	}
	if (p->rayjob)
		task_group(b, groups, RW_BS_SUBMITTER_GROUP, 1, p->submitter_spec);
	return groups;
}

int
rw_bs_yunikorn_task_groups(const struct rw_bs_parent *p, struct rw_buf *out)
{
	struct b b = {0};
	return finish(&b, task_groups(&b, p), out);
}

/* ---- child metadata ---- */

static void
set_scheduler(struct b *b, node *child, bool pod, enum rw_bs_kind k)
{
	if (pod)
		sets(b, obj(b, child, "spec"), "schedulerName", rw_bs_scheduler_name(k));
}

int
rw_bs_child_metadata(enum rw_bs_kind k, const struct rw_bs_parent *p, struct rw_doc_node *child,
		     bool pod, const char *group)
{
	struct b b = {0};
	node *meta, *labels, *annos;
	char name[320];
	if (!child || child->type != RW_DOC_OBJ)
		return -EINVAL;
	if (k == RW_BS_NONE)
		return 0;
	meta = obj(&b, child, "metadata");
	labels = obj(&b, meta, "labels");
	annos = obj(&b, meta, "annotations");
	switch (k) {
	case RW_BS_VOLCANO:
		copy_label(&b, p, labels, RW_BS_VOLCANO_QUEUE_LABEL, RW_BS_VOLCANO_QUEUE_LABEL);
		copy_label(&b, p, labels, RW_BS_PRIORITY_CLASS_LABEL, RW_BS_PRIORITY_CLASS_LABEL);
		rw_bs_volcano_group_name(p, name, sizeof(name));
		sets(&b, annos, RW_BS_VOLCANO_GROUP_ANNOTATION, name);
		sets(&b, annos, RW_BS_VOLCANO_TASK_ANNOTATION, group ? group : "");
		set_scheduler(&b, child, pod, k);
		break;
	case RW_BS_YUNIKORN:
		copy_label(&b, p, labels, RW_BS_YUNIKORN_APP_LABEL, "applicationId");
		copy_label(&b, p, labels, RW_BS_YUNIKORN_QUEUE_LABEL, "queue");
		set_scheduler(&b, child, pod, k);
		if (gang(p)) {
			const char *own = rw_doc_gets(p->annotations, RW_BS_YUNIKORN_TASK_GROUPS);
			if (own && *own) {
				sets(&b, annos, RW_BS_YUNIKORN_TASK_GROUPS, own);
			} else {
				struct rw_buf tg;
				rw_buf_init(&tg, 1u << 20);
				if (!b.err && rw_bs_yunikorn_task_groups(p, &tg) == 0)
					sets(&b, annos, RW_BS_YUNIKORN_TASK_GROUPS,
					     rw_buf_cstr(&tg));
				else
					fail(&b, -ENOMEM);
				rw_buf_fini(&tg);
			}
			if (group && *group)
				sets(&b, annos, RW_BS_YUNIKORN_TASK_GROUP_NAME, group);
		}
		break;
	case RW_BS_SCHEDULER_PLUGINS:
		if (gang(p))
			sets(&b, labels, RW_BS_SP_POD_GROUP_LABEL, p->name ? p->name : "");
		set_scheduler(&b, child, pod, k);
		break;
	case RW_BS_KAI:
		set_scheduler(&b, child, pod, k);
		copy_label(&b, p, labels, RW_BS_KAI_QUEUE_LABEL, RW_BS_KAI_QUEUE_LABEL);
		break;
	case RW_BS_NONE:
		break;
	}
	/* An empty annotations object would be written where KubeRay writes none. */
	if (!b.err && annos && annos->n == 0)
		rw_doc_del(meta, "annotations");
	if (!b.err && labels && labels->n == 0)
		rw_doc_del(meta, "labels");
	if (!b.err && meta && meta->n == 0)
		rw_doc_del(child, "metadata");
	return b.err;
}

int
rw_bs_child_metadata_json(enum rw_bs_kind k, const struct rw_bs_parent *p, const char *json,
			  size_t len, const char *path, bool pod, const char *group,
			  struct rw_buf *out)
{
	node *root = NULL, *child;
	int rv = rw_doc_parse(json, len, &root, NULL, 0);
	if (rv)
		return rv == -ENOMEM ? rv : -EINVAL;
	child = path ? rw_doc_path(root, path) : root;
	rv = child ? rw_bs_child_metadata(k, p, child, pod, group) : -EINVAL;
	if (!rv)
		rv = rw_doc_dump(root, out);
	rw_doc_free(root);
	return rv;
}

struct rw_doc_node *
rw_bs_default_submitter_spec(void)
{
	static const char spec[] = "{\"containers\":[{\"name\":\"ray-job-submitter\","
				   "\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},"
				   "\"requests\":{\"cpu\":\"500m\",\"memory\":\"200Mi\"}}}],"
				   "\"restartPolicy\":\"Never\"}";
	node *n = NULL;
	if (rw_doc_parse(spec, sizeof(spec) - 1, &n, NULL, 0) != 0)
		return NULL;
	return n;
}

/* ---- PodGroups ---- */

/* The owner reference: Volcano's is a controller reference; scheduler-plugins' names the owner
 * only. */
static void
owner_ref(struct b *b, node *meta, const struct rw_bs_parent *p, bool controller)
{
	const char *kind = p->rayjob ? "RayJob" : "RayCluster";
	const char *name = p->name ? p->name : "", *uid = p->uid ? p->uid : "";
	if (controller) {
		set_owner(b, meta, "ray.io/v1", kind, name, uid);
		return;
	}
	node *refs = nnew(b, RW_DOC_ARR);
	node *r = nnew(b, RW_DOC_OBJ);
	sets(b, r, "apiVersion", "ray.io/v1");
	sets(b, r, "kind", kind);
	sets(b, r, "name", name);
	sets(b, r, "uid", uid);
	push(b, refs, r);
	set(b, meta, "ownerReferences", refs);
}

/* calculatePodGroupParams: members and resources of a cluster spec (the head counted). */
static int32_t
group_params(const node *spec, struct rw_raycluster_res *sum, struct rw_raycluster_res *scratch)
{
	struct rw_raycluster view;
	bool autoscaling = rw_doc_true(rw_doc_get(spec, "enableInTreeAutoscaling"));
	int32_t workers;
	cluster_view(spec, &view);
	workers =
	    autoscaling ? rw_raycluster_min_workers(&view) : rw_raycluster_desired_workers(&view);
	cluster_res(spec, autoscaling, sum, scratch);
	return workers < INT32_MAX ? workers + 1 : INT32_MAX;
}

/*
 * getSubmitterResource: K8sJobMode the submitter pod's (template or default),
 * SidecarMode the default submitter container's; nothing in the other modes.
 */
static void
submitter_res(const struct rw_bs_parent *p, struct rw_raycluster_res *sum,
	      struct rw_raycluster_res *scratch)
{
	memset(scratch, 0, sizeof(*scratch));
	if (!p->submitter_resources_spec)
		return;
	rw_raycluster_pod_res(p->submitter_resources_spec, scratch);
	res_add_all(sum, scratch);
}

static int
volcano_podgroup(const struct rw_bs_parent *p, struct rw_buf *out, char *err, size_t errlen)
{
	struct b b = {0};
	struct rw_raycluster_res *sum = calloc(1, sizeof(*sum)),
				 *scratch = calloc(1, sizeof(*scratch));
	node *pg = NULL, *meta, *spec;
	char name[320];
	const char *v;
	int32_t members;
	int rv = 0;
	if (!sum || !scratch) {
		rv = -ENOMEM;
		goto out;
	}
	if (p->rayjob && !p->cluster_spec) {
		snprintf(err, errlen,
			 "gang scheduling does not support RayJob %s/%s referencing an existing "
			 "RayCluster",
			 p->ns ? p->ns : "", p->name ? p->name : "");
		rv = -EINVAL;
		goto out;
	}
	/* MinMember leaves the submitter out (it waits for the cluster: a gang of all would
	   deadlock), MinResources counts it so that capacity is kept for it. */
	members = group_params(p->cluster_spec, sum, scratch);
	if (p->rayjob)
		submitter_res(p, sum, scratch);
	rw_bs_volcano_group_name(p, name, sizeof(name));
	pg = nnew(&b, RW_DOC_OBJ);
	sets(&b, pg, "apiVersion", "scheduling.volcano.sh/v1beta1");
	sets(&b, pg, "kind", "PodGroup");
	meta = obj(&b, pg, "metadata");
	sets(&b, meta, "name", name);
	sets(&b, meta, "namespace", p->ns ? p->ns : "");
	owner_ref(&b, meta, p, true);
	spec = obj(&b, pg, "spec");
	seti(&b, spec, "minMember", members);
	if ((v = label(p, RW_BS_VOLCANO_QUEUE_LABEL)))
		sets(&b, spec, "queue", v);
	if ((v = label(p, RW_BS_PRIORITY_CLASS_LABEL)))
		sets(&b, spec, "priorityClassName", v);
	set(&b, spec, "minResources", res_json(&b, sum));
	if ((v = label(p, RW_BS_VOLCANO_TOPOLOGY_MODE_LABEL))) {
		node *nt = obj(&b, spec, "networkTopology");
		const char *tier = label(p, RW_BS_VOLCANO_TOPOLOGY_TIER_LABEL);
		if (*v)
			sets(&b, nt, "mode", v);
		if (tier) {
			char *end;
			long t = strtol(tier, &end, 10);
			if (!*tier || *end || t < INT_MIN || t > INT_MAX) {
				snprintf(err, errlen,
					 "failed to convert %s label to int: %s is not an integer "
					 "for podgroup %s in namespace %s",
					 RW_BS_VOLCANO_TOPOLOGY_TIER_LABEL, tier, name,
					 p->ns ? p->ns : "");
				rv = -EINVAL;
				goto out;
			}
			seti(&b, nt, "highestTierAllowed", t);
		}
	}
	/* No status subresource in Volcano's CRD: the phase is written with the object. */
	sets(&b, obj(&b, pg, "status"), "phase", "Pending");
	rv = finish(&b, pg, out);
	pg = NULL;
out:
	rw_doc_free(pg);
	free(sum);
	free(scratch);
	return rv;
}

static int
sp_podgroup(const struct rw_bs_parent *p, struct rw_buf *out)
{
	struct b b = {0};
	struct rw_raycluster_res *sum = calloc(1, sizeof(*sum)),
				 *scratch = calloc(1, sizeof(*scratch));
	struct rw_raycluster view;
	node *pg, *meta, *spec;
	int rv;
	if (!sum || !scratch) {
		free(sum);
		free(scratch);
		return -ENOMEM;
	}
	cluster_view(p->cluster_spec, &view);
	cluster_res(p->cluster_spec, false, sum, scratch);
	pg = nnew(&b, RW_DOC_OBJ);
	sets(&b, pg, "apiVersion", "scheduling.x-k8s.io/v1alpha1");
	sets(&b, pg, "kind", "PodGroup");
	meta = obj(&b, pg, "metadata");
	sets(&b, meta, "name", p->name ? p->name : "");
	sets(&b, meta, "namespace", p->ns ? p->ns : "");
	/* KubeRay's reference names the owner without the controller flags. */
	owner_ref(&b, meta, p, false);
	spec = obj(&b, pg, "spec");
	int32_t w = rw_raycluster_desired_workers(&view);
	seti(&b, spec, "minMember", w < INT32_MAX ? w + 1 : INT32_MAX);
	set(&b, spec, "minResources", res_json(&b, sum));
	rv = finish(&b, pg, out);
	free(sum);
	free(scratch);
	return rv;
}

void
rw_bs_podgroup_collection(enum rw_bs_kind k, const char *ns, char *out, size_t outlen)
{
	const char *api = k == RW_BS_VOLCANO		 ? "scheduling.volcano.sh/v1beta1"
			  : k == RW_BS_SCHEDULER_PLUGINS ? "scheduling.x-k8s.io/v1alpha1"
							 : NULL;
	if (api)
		snprintf(out, outlen, "/apis/%s/namespaces/%s/podgroups", api, ns ? ns : "");
	else if (outlen)
		out[0] = '\0';
}

int
rw_bs_podgroup(enum rw_bs_kind k, const struct rw_bs_parent *p, struct rw_buf *out, char *path,
	       size_t pathlen, char *err, size_t errlen)
{
	const char *ns = p->ns;
	if (err && errlen)
		err[0] = '\0';
	switch (k) {
	case RW_BS_VOLCANO:
		/* A RayJob's cluster shares the RayJob's PodGroup. */
		if (from_rayjob(p))
			return 0;
		rw_bs_podgroup_collection(k, ns, path, pathlen);
		return volcano_podgroup(p, out, err, errlen);
	case RW_BS_SCHEDULER_PLUGINS:
		if (p->rayjob || !gang(p) || !p->cluster_spec)
			return 0;
		rw_bs_podgroup_collection(k, ns, path, pathlen);
		return sp_podgroup(p, out);
	case RW_BS_NONE:
	case RW_BS_YUNIKORN:
	case RW_BS_KAI:
		break;
	}
	return 0;
}

/* ---- the Volcano update ---- */

static bool
qty_equal(const node *a, const node *b)
{
	struct rw_qty x, y;
	if (!a || !b || !a->s || !b->s || rw_qty_parse(a->s, &x) || rw_qty_parse(b->s, &y))
		return false;
	return x.units == y.units && x.nano == y.nano;
}

/* quotav1.Equals: the same names with equal quantities. */
static bool
res_equal(const node *a, const node *b)
{
	int na = a && a->type == RW_DOC_OBJ ? a->n : 0, nb = b && b->type == RW_DOC_OBJ ? b->n : 0;
	if (!a || a->type != RW_DOC_OBJ || na != nb)
		return false;
	for (int i = 0; i < na; i++)
		if (!qty_equal(a->kids[i], rw_doc_get(b, a->kids[i]->key)))
			return false;
	return true;
}

int
rw_bs_podgroup_patch(const char *existing, size_t elen, const char *desired, size_t dlen,
		     struct rw_buf *patch)
{
	node *e = NULL, *d = NULL;
	struct b b = {0};
	int rv = rw_doc_parse(existing, elen, &e, NULL, 0);
	if (!rv)
		rv = rw_doc_parse(desired, dlen, &d, NULL, 0);
	if (rv) {
		rw_doc_free(e);
		rw_doc_free(d);
		return rv == -ENOMEM ? rv : -EINVAL;
	}
	node *es = rw_doc_get(e, "spec"), *ds = rw_doc_get(d, "spec");
	int64_t em = rw_doc_int_or(es, "minMember", 0), dm = rw_doc_int_or(ds, "minMember", 0);
	node *er = rw_doc_get(es, "minResources"), *dr = rw_doc_get(ds, "minResources");
	rv = 0;
	if (em != dm || !res_equal(er, dr)) {
		node *p = nnew(&b, RW_DOC_OBJ);
		node *ps = obj(&b, p, "spec");
		seti(&b, ps, "minMember", dm);
		set(&b, ps, "minResources", dr ? nclone(&b, dr) : nnew(&b, RW_DOC_OBJ));
		rv = finish(&b, p, patch);
		if (!rv)
			rv = 1;
	}
	rw_doc_free(e);
	rw_doc_free(d);
	return rv;
}

/*
 * rj_validate.c - RayJob validation: what the CRD's schema refuses, then
 * KubeRay's ValidateRayJobMetadata/Spec/Status (utils/validation.go) with
 * its messages and order, then what KubeRay only finds out when it submits.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_builder.h"
#include "rc_validate.h"
#include "rj_internal.h"

#define SPEC "The RayJob spec is invalid: "

/* The outcome of one check: 0 passes, 1 fails (message written), -ENOMEM. */
enum { PASS = 0, FAIL = 1 };

static int failf(char *msg, size_t mlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
failf(char *msg, size_t mlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, mlen, fmt, ap);
	va_end(ap);
	return FAIL;
}

/* errors.Join: messages one per line, bounded by the buffer. */
struct joined {
	char *msg;
	size_t mlen, used;
	int n;
};

static void join(struct joined *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
join(struct joined *e, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (e->used + 1 >= e->mlen) {
		e->n++;
		return;
	}
	if (e->n > 0)
		e->msg[e->used++] = '\n';
	va_start(ap, fmt);
	n = vsnprintf(e->msg + e->used, e->mlen - e->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		e->used += (size_t)n < e->mlen - e->used ? (size_t)n : e->mlen - e->used - 1;
	e->msg[e->used] = '\0';
	e->n++;
}

static const char *const policy_names[] = {
    [RW_RAYJOB_DELETE_NONE] = "DeleteNone",
    [RW_RAYJOB_DELETE_WORKERS] = "DeleteWorkers",
    [RW_RAYJOB_DELETE_CLUSTER] = "DeleteCluster",
    [RW_RAYJOB_DELETE_SELF] = "DeleteSelf",
};

static enum rw_rayjob_policy
policy_of(const char *s)
{
	for (int i = 0; s && i < RW_RAYJOB_POLICY_INVALID; i++)
		if (strcmp(s, policy_names[i]) == 0)
			return (enum rw_rayjob_policy)i;
	return RW_RAYJOB_POLICY_INVALID;
}

static bool
autoscaling(const struct rw_rayjob *j)
{
	return rw_doc_true(rw_doc_get(j->cluster_spec, "enableInTreeAutoscaling"));
}

/* ---- the CRD's schema (the API server refuses these before KubeRay sees them) ---- */

static const char supported_policies[] =
    "supported values: \"DeleteCluster\", \"DeleteWorkers\", \"DeleteSelf\", \"DeleteNone\"";

/* An enum member: absent is fine here (KubeRay's rules say what must be set). */
static int
enum_value(const char *path, const char *v, const char *const *allowed, const char *supported,
	   char *msg, size_t mlen)
{
	if (!v)
		return PASS;
	for (const char *const *a = allowed; *a; a++)
		if (strcmp(v, *a) == 0)
			return PASS;
	return failf(msg, mlen, SPEC "%s: Unsupported value: \"%.80s\": %s", path, v, supported);
}

static int
check_schema(const struct rw_rayjob *j, char *msg, size_t mlen)
{
	static const char *const policies[] = {"DeleteCluster", "DeleteWorkers", "DeleteSelf",
					       "DeleteNone", NULL};
	static const char *const job_statuses[] = {"SUCCEEDED", "FAILED", NULL};
	static const char *const dep_statuses[] = {"Failed", NULL};
	node *ds = rw_doc_get(j->obj.spec, "deletionStrategy");
	node *rules = rw_doc_get(ds, "deletionRules");
	char path[96];

	if (j->type_error[0])
		return failf(msg, mlen, SPEC "%s", j->type_error);
	if (j->mode == RW_RAYJOB_MODE_INVALID)
		return failf(msg, mlen,
			     SPEC "spec.submissionMode: Unsupported value: \"%.80s\": supported "
				  "values: \"K8sJobMode\", \"HTTPMode\", \"InteractiveMode\", "
				  "\"SidecarMode\"",
			     j->mode_text ? j->mode_text : "");
	if (j->managed_by && strcmp(j->managed_by, "ray.io/kuberay-operator") != 0 &&
	    strcmp(j->managed_by, "kueue.x-k8s.io/multikueue") != 0)
		return failf(msg, mlen,
			     SPEC "the managedBy field value must be either "
				  "'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'");
	if (enum_value("spec.deletionStrategy.onSuccess.policy",
		       rw_doc_gets(rw_doc_get(ds, "onSuccess"), "policy"), policies,
		       supported_policies, msg, mlen) ||
	    enum_value("spec.deletionStrategy.onFailure.policy",
		       rw_doc_gets(rw_doc_get(ds, "onFailure"), "policy"), policies,
		       supported_policies, msg, mlen))
		return FAIL;
	for (int i = 0; rules && rules->type == RW_DOC_ARR && i < rules->n; i++) {
		node *r = rules->kids[i], *cond = rw_doc_get(r, "condition");
		snprintf(path, sizeof(path), "spec.deletionStrategy.deletionRules[%d].policy", i);
		if (!rj_present(r, "policy"))
			return failf(msg, mlen, SPEC "%s: Required value", path);
		if (enum_value(path, rw_doc_gets(r, "policy"), policies, supported_policies, msg,
			       mlen))
			return FAIL;
		snprintf(path, sizeof(path),
			 "spec.deletionStrategy.deletionRules[%d].condition.jobStatus", i);
		if (enum_value(path, rw_doc_gets(cond, "jobStatus"), job_statuses,
			       "supported values: \"SUCCEEDED\", \"FAILED\"", msg, mlen))
			return FAIL;
		snprintf(path, sizeof(path),
			 "spec.deletionStrategy.deletionRules[%d].condition.jobDeploymentStatus",
			 i);
		if (enum_value(path, rw_doc_gets(cond, "jobDeploymentStatus"), dep_statuses,
			       "supported values: \"Failed\"", msg, mlen))
			return FAIL;
	}
	return PASS;
}

/* ---- deletionStrategy (validateDeletionConfiguration and what it calls) ---- */

static int
check_legacy(const struct rw_rayjob *j, const node *ds, char *msg, size_t mlen)
{
	node *ok = rw_doc_get(ds, "onSuccess"), *bad = rw_doc_get(ds, "onFailure");
	enum rw_rayjob_policy ps, pf;

	if (!rj_present(ds, "onSuccess") || !rj_present(ds, "onFailure"))
		return failf(msg, mlen,
			     "both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must "
			     "be set when using the legacy deletion policy fields of "
			     "DeletionStrategy");
	if (!rj_present(ok, "policy"))
		return failf(msg, mlen,
			     "the DeletionPolicyType field of DeletionStrategy.OnSuccess cannot be "
			     "unset when DeletionStrategy is enabled");
	if (!rj_present(bad, "policy"))
		return failf(msg, mlen,
			     "the DeletionPolicyType field of DeletionStrategy.OnFailure cannot be "
			     "unset when DeletionStrategy is enabled");
	ps = policy_of(rw_doc_gets(ok, "policy"));
	pf = policy_of(rw_doc_gets(bad, "policy"));
	if (j->selector_mode) {
		if (ps == RW_RAYJOB_DELETE_CLUSTER || ps == RW_RAYJOB_DELETE_WORKERS)
			return failf(
			    msg, mlen,
			    "the ClusterSelector mode doesn't support DeletionStrategy=%s on "
			    "success",
			    policy_names[ps]);
		if (pf == RW_RAYJOB_DELETE_CLUSTER || pf == RW_RAYJOB_DELETE_WORKERS)
			return failf(
			    msg, mlen,
			    "the ClusterSelector mode doesn't support DeletionStrategy=%s on "
			    "failure",
			    policy_names[pf]);
	}
	if ((ps == RW_RAYJOB_DELETE_WORKERS || pf == RW_RAYJOB_DELETE_WORKERS) && autoscaling(j))
		return failf(msg, mlen,
			     "DeletionStrategy=DeleteWorkers currently does not support RayCluster "
			     "with autoscaling enabled");
	if (j->shutdown_after_finishes &&
	    (ps == RW_RAYJOB_DELETE_NONE || pf == RW_RAYJOB_DELETE_NONE))
		return failf(msg, mlen,
			     SPEC
			     "shutdownAfterJobFinshes is set to 'true' while deletion policy is "
			     "'DeleteNone'");
	return PASS;
}

/* The conditions a rule can name (the schema allows these three). */
enum { C_SUCCEEDED, C_FAILED, C_DEP_FAILED, NCOND };
static const char *const cond_kind[NCOND] = {"JobStatus", "JobStatus", "JobDeploymentStatus"};
static const char *const cond_value[NCOND] = {"SUCCEEDED", "FAILED", "Failed"};

static int
check_rules(const struct rw_rayjob *j, const node *rules, char *msg, size_t mlen)
{
	/* TTLs by condition and policy, for the uniqueness and order checks. */
	int64_t ttl[NCOND][RW_RAYJOB_POLICY_INVALID];
	bool seen[NCOND][RW_RAYJOB_POLICY_INVALID];
	struct joined e = {msg, mlen, 0, 0};
	static const enum rw_rayjob_policy order[] = {
	    RW_RAYJOB_DELETE_WORKERS, RW_RAYJOB_DELETE_CLUSTER, RW_RAYJOB_DELETE_SELF};

	memset(seen, 0, sizeof(seen));
	memset(ttl, 0, sizeof(ttl));
	msg[0] = '\0';
	for (int i = 0; i < rules->n; i++) {
		node *r = rules->kids[i], *cond = rw_doc_get(r, "condition");
		const char *js = rw_doc_gets(cond, "jobStatus");
		const char *dst = rw_doc_gets(cond, "jobDeploymentStatus");
		enum rw_rayjob_policy p = policy_of(rw_doc_gets(r, "policy"));
		int64_t t = rw_doc_int_or(cond, "ttlSeconds", 0);
		int c;
		if (js && dst) {
			join(&e,
			     "deletionRules[%d]: cannot set both JobStatus and JobDeploymentStatus "
			     "at the same time",
			     i);
			continue;
		}
		if (!js && !dst) {
			join(&e,
			     "deletionRules[%d]: exactly one of JobStatus and JobDeploymentStatus "
			     "must be set",
			     i);
			continue;
		}
		if (t < 0) {
			join(&e, "deletionRules[%d]: TTLSeconds must be non-negative", i);
			continue;
		}
		if (p == RW_RAYJOB_POLICY_INVALID)
			continue; /* check_schema has refused it already */
		if (j->selector_mode &&
		    (p == RW_RAYJOB_DELETE_CLUSTER || p == RW_RAYJOB_DELETE_WORKERS)) {
			join(&e,
			     "deletionRules[%d]: DeletionPolicyType '%s' not supported when "
			     "ClusterSelector is set",
			     i, policy_names[p]);
			continue;
		}
		if (autoscaling(j) && p == RW_RAYJOB_DELETE_WORKERS) {
			join(&e,
			     "deletionRules[%d]: DeletionPolicyType 'DeleteWorkers' not supported "
			     "with autoscaling enabled",
			     i);
			continue;
		}
		c = js ? (strcmp(js, "SUCCEEDED") == 0 ? C_SUCCEEDED : C_FAILED) : C_DEP_FAILED;
		if (seen[c][p]) {
			join(&e,
			     "deletionRules[%d]: duplicate rule for DeletionPolicyType '%s' and %s "
			     "'%s'",
			     i, policy_names[p], cond_kind[c], cond_value[c]);
			continue;
		}
		seen[c][p] = true;
		ttl[c][p] = t;
	}
	/* Workers <= Cluster <= Self: a lower TTL deletes earlier. */
	for (int c = 0; c < NCOND; c++) {
		bool has_prev = false;
		enum rw_rayjob_policy prev = RW_RAYJOB_DELETE_NONE;
		for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
			enum rw_rayjob_policy p = order[k];
			if (!seen[c][p])
				continue;
			if (has_prev && ttl[c][p] < ttl[c][prev])
				join(&e, "for %s '%s': %s TTL (%lld) must be >= %s TTL (%lld)",
				     cond_kind[c], cond_value[c], policy_names[p],
				     (long long)ttl[c][p], policy_names[prev],
				     (long long)ttl[c][prev]);
			prev = p;
			has_prev = true;
		}
	}
	return e.n ? FAIL : PASS;
}

static int
check_deletion(const struct rw_rayjob *j, char *msg, size_t mlen)
{
	node *ds = rw_doc_get(j->obj.spec, "deletionStrategy");
	node *rules;
	bool legacy, with_rules;

	if (!j->shutdown_after_finishes && j->ttl_after_finished_s > 0)
		return failf(msg, mlen,
			     SPEC "a RayJob with shutdownAfterJobFinishes set to false cannot have "
				  "TTLSecondsAfterFinished");
	if (!ds || ds->type != RW_DOC_OBJ)
		return PASS;
	rules = rw_doc_get(ds, "deletionRules");
	legacy = rj_present(ds, "onSuccess") || rj_present(ds, "onFailure");
	with_rules = rules && rules->type == RW_DOC_ARR && rules->n > 0;
	if (with_rules && j->shutdown_after_finishes)
		return failf(msg, mlen,
			     SPEC "spec.shutdownAfterJobFinishes and "
				  "spec.deletionStrategy.deletionRules are mutually exclusive");
	if (with_rules && legacy)
		return failf(msg, mlen,
			     SPEC "Cannot use both legacy onSuccess/onFailure fields and "
				  "deletionRules simultaneously");
	if (legacy)
		return check_legacy(j, ds, msg, mlen);
	if (with_rules)
		return check_rules(j, rules, msg, mlen);
	return failf(msg, mlen,
		     SPEC "DeletionStrategy requires either BOTH onSuccess and onFailure, OR the "
			  "deletionRules field (cannot be empty)");
}

/* ---- rayClusterSpec (ValidateRayClusterSpec, on the RayCluster the job would create) ---- */

static int
check_cluster_spec(const struct rw_rayjob *j, char *msg, size_t mlen)
{
	struct b b = {0};
	struct rw_buf text;
	struct rw_raycluster *c = NULL;
	struct rw_raycluster_verrs v;
	char name[64];
	node *doc = nnew(&b, RW_DOC_OBJ), *meta, *spec;
	int rv = PASS;

	sets(&b, doc, "apiVersion", "ray.io/v1");
	sets(&b, doc, "kind", "RayCluster");
	meta = obj(&b, doc, "metadata");
	snprintf(name, sizeof(name), "%.47s-bbbbb", j->obj.name);
	sets(&b, meta, "name", name);
	sets(&b, meta, "namespace", j->obj.ns);
	sets(&b, obj(&b, meta, "labels"), "ray.io/originated-from-crd", "RayJob");
	/* KubeRay passes the RayJob's annotations (ray.io/ft-enabled...). */
	if (j->obj.annotations)
		set(&b, meta, "annotations", nclone(&b, j->obj.annotations));
	spec = nclone(&b, j->cluster_spec);
	/* A RayCluster's upgradeStrategy is checked on the RayCluster itself. */
	if (spec)
		rw_doc_del(spec, "upgradeStrategy");
	set(&b, doc, "spec", spec);
	rw_buf_init(&text, RW_DOC_MAX_OUT);
	rv = finish(&b, doc, &text);
	if (rv) {
		rv = rv == -ENOMEM ? -ENOMEM : failf(msg, mlen, SPEC "rayClusterSpec is too large");
		goto out;
	}
	rv = rw_raycluster_parse(text.data, text.len, &c, NULL, 0);
	if (rv) {
		rv = rv == -ENOMEM ? -ENOMEM : failf(msg, mlen, SPEC "rayClusterSpec is too large");
		goto out;
	}
	rw_raycluster_validate(c, &v);
	for (int i = 0; i < v.n; i++) {
		if (streq(v.e[i].reason, "InvalidRayClusterSpec")) {
			rv = failf(msg, mlen, SPEC "%s", v.e[i].msg);
			break;
		}
	}
out:
	rw_raycluster_free(c);
	rw_buf_fini(&text);
	return rv;
}

/* ---- ValidateRayJobSpec ---- */

static int
check_kuberay_spec(const struct rw_rayjob *j, char *msg, size_t mlen)
{
	char tmp[400];
	int rv;

	if (j->suspend && !j->shutdown_after_finishes)
		return failf(msg, mlen,
			     SPEC
			     "a RayJob with shutdownAfterJobFinishes set to false is not allowed "
			     "to be suspended");
	if (j->ttl_after_finished_s < 0)
		return failf(msg, mlen,
			     SPEC "TTLSecondsAfterFinished must be a non-negative integer");
	if ((rv = check_deletion(j, msg, mlen)) != PASS)
		return rv;
	if (j->suspend && j->selector_mode)
		return failf(msg, mlen,
			     SPEC "the ClusterSelector mode doesn't support the suspend operation");
	if (!j->cluster_spec && !j->selector_mode)
		return failf(msg, mlen,
			     SPEC "one of RayClusterSpec or ClusterSelector must be set");
	if (j->selector_mode) {
		if (!j->selector_cluster || !*j->selector_cluster)
			return failf(msg, mlen,
				     "cluster name in ClusterSelector should not be empty");
		if (j->mode == RW_RAYJOB_SIDECAR)
			return failf(msg, mlen, "ClusterSelector is not supported in SidecarMode");
		if (j->has_backoff_limit && j->backoff_limit > 0)
			return failf(msg, mlen,
				     SPEC "BackoffLimit is incompatible with ClusterSelector mode");
	}
	/* Retries would find spec.jobId set and skip Waiting (kuberay#3525). */
	if (j->mode == RW_RAYJOB_INTERACTIVE && j->has_backoff_limit && j->backoff_limit > 0)
		return failf(msg, mlen, SPEC "BackoffLimit is incompatible with InteractiveMode");
	if (j->mode == RW_RAYJOB_SIDECAR) {
		const char *rp;
		if (rj_present(j->obj.spec, "submitterPodTemplate"))
			return failf(msg, mlen,
				     "Currently, SidecarMode doesn't support SubmitterPodTemplate");
		if (j->has_submitter_config)
			return failf(msg, mlen,
				     "Currently, SidecarMode doesn't support SubmitterConfig");
		rp = rw_doc_gets(rw_doc_path(j->cluster_spec, "headGroupSpec.template.spec"),
				 "restartPolicy");
		if (rp && *rp && strcmp(rp, "Never") != 0)
			return failf(
			    msg, mlen,
			    "restartPolicy for head Pod should be Never or unset when using "
			    "SidecarMode");
	}
	if (j->cluster_spec) {
		if (rw_doc_true(rw_doc_path(j->cluster_spec, "authOptions.enableK8sTokenAuth")))
			return failf(msg, mlen,
				     SPEC
				     "K8s token auth mode is currently not supported for RayJob");
		if ((rv = check_cluster_spec(j, msg, mlen)) != PASS)
			return rv;
	}
	{
		struct rw_buf b;
		rw_buf_init(&b, RW_RAYJOB_MAX_SUBMISSION);
		rv = rj_runtime_env_json(j, &b, tmp, sizeof(tmp));
		rw_buf_fini(&b);
		if (rv == -ENOMEM)
			return rv;
		if (rv)
			return failf(msg, mlen, "%s", tmp);
	}
	if (j->has_active_deadline && j->active_deadline_s <= 0)
		return failf(msg, mlen, SPEC "activeDeadlineSeconds must be a positive integer");
	if (j->has_pre_running_deadline && j->pre_running_deadline_s <= 0)
		return failf(msg, mlen,
			     SPEC "preRunningDeadlineSeconds must be a positive integer");
	if (j->has_backoff_limit && j->backoff_limit < 0)
		return failf(msg, mlen, SPEC "backoffLimit must be a positive integer");
	return PASS;
}

/* ---- what KubeRay only finds out when it submits (it then fails every reconcile) ---- */

static int
check_submission(const struct rw_rayjob *j, char *msg, size_t mlen)
{
	char tmp[300];
	struct rw_buf b;
	int rv;
	bool command = j->mode == RW_RAYJOB_K8SJOB || j->mode == RW_RAYJOB_SIDECAR;
	node *md = rw_doc_get(j->obj.spec, "metadata");

	rw_buf_init(&b, RW_RAYJOB_MAX_SUBMISSION);
	rv = rj_resources_json(j, &b, tmp, sizeof(tmp));
	rw_buf_fini(&b);
	if (rv == -ENOMEM)
		return rv;
	if (rv)
		return failf(msg, mlen, SPEC "%s", tmp);
	if (command && md && md->type == RW_DOC_OBJ && md->n > 0 &&
	    rj_metadata_version_ok(j, tmp, sizeof(tmp)) != 0)
		return failf(msg, mlen, SPEC "%s", tmp);
	if (j->mode == RW_RAYJOB_K8SJOB && j->submitter_template) {
		node *cs = rw_doc_path(j->submitter_template, "spec.containers");
		if (!cs || cs->type != RW_DOC_ARR || cs->n == 0 || cs->kids[0]->type != RW_DOC_OBJ)
			return failf(msg, mlen,
				     SPEC "submitterPodTemplate.spec.containers must hold at least "
					  "one container");
	}
	return PASS;
}

int
rw_rayjob_validate(const struct rw_rayjob *j, struct rw_rayjob_verr *out)
{
	char tmp[400];
	int rv;

	memset(out, 0, sizeof(*out));
	if (strlen(j->obj.name) > RW_RAYJOB_MAX_NAME) {
		snprintf(out->reason, sizeof(out->reason), "InvalidRayJobMetadata");
		snprintf(out->msg, sizeof(out->msg),
			 "The RayJob metadata is invalid: RayJob name should be no more than %d "
			 "characters",
			 RW_RAYJOB_MAX_NAME);
		return 1;
	}
	if (!rw_raycluster_dns1035(j->obj.name, tmp, sizeof(tmp))) {
		snprintf(out->reason, sizeof(out->reason), "InvalidRayJobMetadata");
		snprintf(out->msg, sizeof(out->msg),
			 "The RayJob metadata is invalid: RayJob name should be a valid DNS1035 "
			 "label: %s",
			 tmp);
		return 1;
	}
	rv = check_schema(j, out->msg, sizeof(out->msg));
	if (rv == PASS)
		rv = check_kuberay_spec(j, out->msg, sizeof(out->msg));
	if (rv == PASS)
		rv = check_submission(j, out->msg, sizeof(out->msg));
	if (rv < 0) {
		memset(out, 0, sizeof(*out));
		return rv;
	}
	if (rv == FAIL) {
		snprintf(out->reason, sizeof(out->reason), "InvalidRayJobSpec");
		return 1;
	}
	if (streq(rw_doc_gets(j->obj.status, "jobDeploymentStatus"), "Waiting") &&
	    j->mode != RW_RAYJOB_INTERACTIVE) {
		snprintf(out->reason, sizeof(out->reason), "InvalidRayJobStatus");
		snprintf(out->msg, sizeof(out->msg),
			 "The RayJob status is invalid: JobDeploymentStatus cannot be `Waiting` "
			 "when SubmissionMode is not InteractiveMode");
		return 1;
	}
	return 0;
}

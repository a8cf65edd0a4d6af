/*
 * rj_model.c - parsing a RayJob, names, and the conversions validation and
 * the builders share (rj_internal.h). Validation is in rj_validate.c, the
 * builders in rj_build.c.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_builder.h"
#include "names.h"
#include "rj_internal.h"
#include "rw/json.h"
#include "rw/yaml.h"

static_assert(offsetof(struct rw_rayjob, obj) == 0, "rw_doc_object_alloc's layout");

/* ---- member types, as the CRD's structural schema states them ---- */

enum want { W_STR, W_BOOL, W_I32, W_NUM, W_OBJ, W_ARR, W_STRMAP };

static const char *const want_text[] = {
    [W_STR] = "a string",
    [W_BOOL] = "a boolean",
    [W_I32] = "a 32-bit integer",
    [W_NUM] = "a number",
    [W_OBJ] = "an object",
    [W_ARR] = "an array",
    [W_STRMAP] = "an object of strings",
};

static bool
has_type(const node *n, enum want w)
{
	int64_t v;
	switch (w) {
	case W_STR:
		return n->type == RW_DOC_STR;
	case W_BOOL:
		return n->type == RW_DOC_BOOL;
	case W_I32:
		return n->type == RW_DOC_NUM && rw_doc_int(n, &v) == 0 && v >= INT32_MIN &&
		       v <= INT32_MAX;
	case W_NUM:
		return n->type == RW_DOC_NUM;
	case W_OBJ:
		return n->type == RW_DOC_OBJ;
	case W_ARR:
		return n->type == RW_DOC_ARR;
	case W_STRMAP:
		if (n->type != RW_DOC_OBJ)
			return false;
		for (int i = 0; i < n->n; i++)
			if (n->kids[i]->type != RW_DOC_STR && n->kids[i]->type != RW_DOC_NULL)
				return false;
		return true;
	}
	return false;
}

/*
 * Member key of o when it has the wanted type; NULL when it is absent, null
 * or of another type, the first such mismatch being recorded in j->type_error
 * (Go's decoder would have refused the whole object: the API server never
 * hands KubeRay such a RayJob, so validation refuses it here).
 */
static node *
member(struct rw_rayjob *j, const node *o, const char *path, const char *key, enum want w)
{
	node *n = rw_doc_get(o, key);
	if (!n || n->type == RW_DOC_NULL)
		return NULL;
	if (has_type(n, w))
		return n;
	if (!j->type_error[0])
		snprintf(j->type_error, sizeof(j->type_error), "%s%s must be %s", path, key,
			 want_text[w]);
	return NULL;
}

static int64_t
member_int(struct rw_rayjob *j, const node *o, const char *path, const char *key, int64_t def,
	   bool *present)
{
	node *n = member(j, o, path, key, W_I32);
	int64_t v = def;
	if (n)
		rw_doc_int(n, &v);
	if (present)
		*present = n != NULL;
	return v;
}

static const char *
member_str(struct rw_rayjob *j, const node *o, const char *path, const char *key)
{
	return rw_doc_str(member(j, o, path, key, W_STR));
}

static enum rw_rayjob_policy
policy_of(const char *s)
{
	static const char *const names[] = {
	    [RW_RAYJOB_DELETE_NONE] = "DeleteNone",
	    [RW_RAYJOB_DELETE_WORKERS] = "DeleteWorkers",
	    [RW_RAYJOB_DELETE_CLUSTER] = "DeleteCluster",
	    [RW_RAYJOB_DELETE_SELF] = "DeleteSelf",
	};
	for (int i = 0; s && i < RW_RAYJOB_POLICY_INVALID; i++)
		if (strcmp(s, names[i]) == 0)
			return (enum rw_rayjob_policy)i;
	return RW_RAYJOB_POLICY_INVALID;
}

static void
add_rule(struct rw_rayjob *j, enum rw_rayjob_policy p, const char *job_status,
	 const char *deployment_status, int64_t ttl)
{
	struct rw_rayjob_rule *r;
	if (j->nrules >= RW_RAYJOB_MAX_RULES)
		return; /* more cannot be valid: 12 distinct (condition, policy) pairs exist */
	r = &j->rules[j->nrules++];
	r->policy = p;
	snprintf(r->job_status, sizeof(r->job_status), "%s", job_status ? job_status : "");
	snprintf(r->deployment_status, sizeof(r->deployment_status), "%s",
		 deployment_status ? deployment_status : "");
	r->ttl_s = ttl;
}

/* onSuccess/onFailure as two rules at the global TTL, or deletionRules as written. */
static void
parse_deletion(struct rw_rayjob *j, const node *ds)
{
	static const char dp[] = "spec.deletionStrategy.";
	node *on_ok = member(j, ds, dp, "onSuccess", W_OBJ);
	node *on_fail = member(j, ds, dp, "onFailure", W_OBJ);
	node *rules = member(j, ds, dp, "deletionRules", W_ARR);
	char path[96];

	j->has_deletion_strategy = true;
	if (on_ok || on_fail) {
		j->legacy_strategy = true;
		if (on_ok)
			add_rule(j,
				 policy_of(member_str(j, on_ok, "spec.deletionStrategy.onSuccess.",
						      "policy")),
				 "SUCCEEDED", NULL, j->ttl_after_finished_s);
		if (on_fail)
			add_rule(j,
				 policy_of(member_str(
				     j, on_fail, "spec.deletionStrategy.onFailure.", "policy")),
				 "FAILED", NULL, j->ttl_after_finished_s);
	}
	for (int i = 0; rules && i < rules->n; i++) {
		node *r = rules->kids[i], *cond;
		const char *pol, *js, *dst;
		int64_t ttl;
		snprintf(path, sizeof(path), "%sdeletionRules[%d]", dp, i);
		if (r->type != RW_DOC_OBJ) {
			if (!j->type_error[0])
				snprintf(j->type_error, sizeof(j->type_error),
					 "%s must be an object", path);
			continue;
		}
		snprintf(path, sizeof(path), "%sdeletionRules[%d].", dp, i);
		pol = member_str(j, r, path, "policy");
		snprintf(path, sizeof(path), "%sdeletionRules[%d].", dp, i);
		cond = member(j, r, path, "condition", W_OBJ);
		snprintf(path, sizeof(path), "%sdeletionRules[%d].condition.", dp, i);
		js = member_str(j, cond, path, "jobStatus");
		dst = member_str(j, cond, path, "jobDeploymentStatus");
		ttl = member_int(j, cond, path, "ttlSeconds", 0, NULL);
		if (!j->legacy_strategy)
			add_rule(j, policy_of(pol), js, dst, ttl);
	}
}

int
rw_rayjob_parse(const char *json, size_t len, struct rw_rayjob **out, char *err, size_t errlen)
{
	static const char sp[] = "spec.";
	struct rw_rayjob *j;
	const node *spec, *sel, *sc, *ds;
	int rv = rw_doc_object_alloc(json, len, "RayJob", sizeof(*j), (void **)out, err, errlen);
	if (rv)
		return rv;
	j = *out;
	spec = j->obj.spec;

	j->mode_text = member_str(j, spec, sp, "submissionMode");
	j->mode = RW_RAYJOB_K8SJOB;
	if (j->mode_text) {
		j->mode = RW_RAYJOB_MODE_INVALID;
		for (int m = 0; m < RW_RAYJOB_MODE_INVALID; m++)
			if (strcmp(j->mode_text, rw_rayjob_mode_name((enum rw_rayjob_mode)m)) == 0)
				j->mode = (enum rw_rayjob_mode)m;
	}
	j->cluster_spec = member(j, spec, sp, "rayClusterSpec", W_OBJ);
	sel = member(j, spec, sp, "clusterSelector", W_STRMAP);
	j->selector_mode = sel && sel->n > 0;
	j->selector_cluster = rw_doc_gets(sel, "ray.io/cluster");
	j->submitter_template = member(j, spec, sp, "submitterPodTemplate", W_OBJ);
	j->entrypoint = member_str(j, spec, sp, "entrypoint");
	j->runtime_env_yaml = member_str(j, spec, sp, "runtimeEnvYAML");
	j->spec_job_id = member_str(j, spec, sp, "jobId");
	j->managed_by = member_str(j, spec, sp, "managedBy");
	(void)member(j, spec, sp, "entrypointResources", W_STR);
	(void)member(j, spec, sp, "entrypointNumCpus", W_NUM);
	(void)member(j, spec, sp, "entrypointNumGpus", W_NUM);
	(void)member(j, spec, sp, "metadata", W_STRMAP);
	j->suspend = rw_doc_true(member(j, spec, sp, "suspend", W_BOOL));
	j->shutdown_after_finishes =
	    rw_doc_true(member(j, spec, sp, "shutdownAfterJobFinishes", W_BOOL));
	j->ttl_after_finished_s = member_int(j, spec, sp, "ttlSecondsAfterFinished", 0, NULL);
	j->active_deadline_s =
	    member_int(j, spec, sp, "activeDeadlineSeconds", 0, &j->has_active_deadline);
	j->pre_running_deadline_s =
	    member_int(j, spec, sp, "preRunningDeadlineSeconds", 0, &j->has_pre_running_deadline);
	j->backoff_limit = member_int(j, spec, sp, "backoffLimit", 0, &j->has_backoff_limit);
	sc = member(j, spec, sp, "submitterConfig", W_OBJ);
	j->has_submitter_config = sc != NULL;
	j->submitter_backoff_limit = member_int(j, sc, "spec.submitterConfig.", "backoffLimit",
						RW_RAYJOB_DEFAULT_SUBMITTER_BACKOFF, NULL);
	ds = member(j, spec, sp, "deletionStrategy", W_OBJ);
	if (ds)
		parse_deletion(j, ds);
	return 0;
}

void
rw_rayjob_free(struct rw_rayjob *j)
{
	if (!j)
		return;
	rw_doc_free(j->obj.root);
	free(j);
}

const char *
rw_rayjob_mode_name(enum rw_rayjob_mode m)
{
	switch (m) {
	case RW_RAYJOB_K8SJOB:
		return "K8sJobMode";
	case RW_RAYJOB_HTTP:
		return "HTTPMode";
	case RW_RAYJOB_INTERACTIVE:
		return "InteractiveMode";
	case RW_RAYJOB_SIDECAR:
		return "SidecarMode";
	case RW_RAYJOB_MODE_INVALID:
		break;
	}
	return "";
}

int
rw_rayjob_generated_name(const char *job, const char *suffix, char *out, size_t outlen)
{
	return rw_name_suffixed(job, suffix, out, outlen);
}

/* ---- shared with validation and the builders ---- */

bool
rj_present(const node *o, const char *key)
{
	node *n = rw_doc_get(o, key);
	return n && n->type != RW_DOC_NULL;
}

node *
rj_head_container(const struct rw_rayjob *j)
{
	node *c =
	    rw_doc_at(rw_doc_path(j->cluster_spec, "headGroupSpec.template.spec.containers"), 0);
	return c && c->type == RW_DOC_OBJ ? c : NULL;
}

int
rj_dashboard_port(const struct rw_rayjob *j)
{
	node *ports = rw_doc_get(rj_head_container(j), "ports");
	for (int i = 0; ports && ports->type == RW_DOC_ARR && i < ports->n; i++) {
		int64_t p;
		if (streq(rw_doc_gets(ports->kids[i], "name"), "dashboard") &&
		    rw_doc_int(rw_doc_get(ports->kids[i], "containerPort"), &p) == 0 && p > 0 &&
		    p <= 65535)
			return (int)p;
	}
	return RW_RAYJOB_DEFAULT_DASHBOARD_PORT;
}

int
rj_runtime_env_json(const struct rw_rayjob *j, struct rw_buf *out, char *err, size_t errlen)
{
	const char *yaml = j->runtime_env_yaml;
	struct rw_buf raw;
	struct rw_jw w;
	node *tree = NULL;
	char yerr[200] = "";
	int rv;

	if (!yaml || !*yaml)
		return 0;
	rw_buf_init(&raw, RW_RAYJOB_MAX_SUBMISSION);
	rv = rw_yaml_to_json(yaml, strlen(yaml), &raw, yerr, sizeof(yerr));
	if (rv >= 0)
		rv = rw_doc_parse(raw.data, raw.len, &tree, yerr, sizeof(yerr));
	if (rv == -EMSGSIZE) {
		snprintf(yerr, sizeof(yerr), "larger than %u bytes as JSON",
			 RW_RAYJOB_MAX_SUBMISSION);
		rv = -EINVAL;
	}
	if (rv >= 0 && tree->type != RW_DOC_NULL && tree->type != RW_DOC_OBJ) {
		/* KubeRay decodes it into a map: a list or a scalar cannot be a runtime env. */
		snprintf(yerr, sizeof(yerr), "a runtime environment must be a YAML mapping");
		rv = -EINVAL;
	}
	if (rv == -EINVAL && err && errlen)
		snprintf(err, errlen, "failed to unmarshal RuntimeEnvYAML: %.200s: %s", yaml, yerr);
	if (rv >= 0 && tree->type == RW_DOC_OBJ) {
		rw_jw_init(&w, out);
		rw_doc_write_sorted(tree, &w);
		rv = rw_jw_finish(&w);
	}
	rw_doc_free(tree);
	rw_buf_fini(&raw);
	return rv < 0 ? rv : 0;
}

int
rj_resources_json(const struct rw_rayjob *j, struct rw_buf *out, char *err, size_t errlen)
{
	const char *s = rw_doc_gets(j->obj.spec, "entrypointResources");
	node *tree = NULL;
	char perr[160] = "";
	int rv;

	if (!s || !*s)
		return 0;
	rv = rw_doc_parse(s, strlen(s), &tree, perr, sizeof(perr));
	if (rv == -ENOMEM)
		return rv;
	if (rv == -EMSGSIZE) {
		snprintf(perr, sizeof(perr), "too large");
		rv = -EINVAL;
	}
	if (rv == 0 && tree->type != RW_DOC_OBJ) {
		snprintf(perr, sizeof(perr), "not a JSON object");
		rv = -EINVAL;
	}
	for (int i = 0; rv == 0 && i < tree->n; i++) {
		if (tree->kids[i]->type != RW_DOC_NUM) {
			snprintf(perr, sizeof(perr), "the value of %.60s is not a number",
				 tree->kids[i]->key);
			rv = -EINVAL;
		}
	}
	if (rv && err && errlen)
		snprintf(err, errlen,
			 "entrypointResources must be a JSON object of resource names to "
			 "numbers: %s",
			 perr);
	if (rv == 0 && tree->n > 0)
		rv = rw_doc_dump(tree, out);
	rw_doc_free(tree);
	return rv;
}

int
rj_metadata_json(const struct rw_rayjob *j, struct rw_buf *out)
{
	node *md = rw_doc_get(j->obj.spec, "metadata");
	struct rw_jw w;
	if (!md || md->type == RW_DOC_NULL)
		return 0;
	if (!has_type(md, W_STRMAP))
		return -EINVAL;
	if (md->n == 0)
		return 0;
	rw_jw_init(&w, out);
	rw_doc_write_sorted(md, &w);
	return rw_jw_finish(&w);
}

/*
 * Masterminds semver.NewVersion: v?MAJOR(.MINOR(.PATCH)?)?(-PRE)?(+BUILD)?,
 * numbers without leading zeros. 0 with the parts, or -EINVAL.
 */
static int
semver(const char *s, unsigned long v[3], bool *pre)
{
	const char *p = s;
	if (*p == 'v')
		p++;
	v[0] = v[1] = v[2] = 0;
	*pre = false;
	for (int i = 0; i < 3; i++) {
		unsigned long x = 0;
		const char *start = p;
		if (i > 0) {
			if (*p != '.')
				break;
			start = ++p;
		}
		while (*p >= '0' && *p <= '9') {
			if (x > 1000000000UL)
				return -EINVAL;
			x = x * 10 + (unsigned long)(*p++ - '0');
		}
		if (p == start || (p - start > 1 && *start == '0'))
			return -EINVAL;
		v[i] = x;
	}
	if (*p == '-') {
		*pre = true;
		p++;
		if (!*p || *p == '+')
			return -EINVAL;
		p += strspn(p, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.");
	}
	if (*p == '+') {
		p++;
		if (!*p)
			return -EINVAL;
		p += strspn(p, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.");
	}
	return *p ? -EINVAL : 0;
}

int
rj_metadata_version_ok(const struct rw_rayjob *j, char *err, size_t errlen)
{
	const char *rv = rw_doc_gets(j->cluster_spec, "rayVersion");
	unsigned long v[3];
	bool pre;
	if (!rv || !*rv)
		return 0;
	if (semver(rv, v, &pre) != 0) {
		if (err && errlen)
			snprintf(err, errlen,
				 "failed to parse Ray version: %.100s: Invalid Semantic Version",
				 rv);
		return -EINVAL;
	}
	/* A pre-release never satisfies ">= 2.6.0" in Masterminds' semver. */
	if (pre || v[0] < 2 || (v[0] == 2 && v[1] < 6)) {
		if (err && errlen)
			snprintf(
			    err, errlen,
			    "the Ray version must be at least 2.6.0 to use the metadata field");
		return -EINVAL;
	}
	return 0;
}

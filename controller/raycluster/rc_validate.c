/* rc_validate.c - KubeRay's RayCluster validation rules and messages. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_validate.h"

typedef struct rw_doc_node node;

void *(*rw_raycluster_validate_malloc)(size_t) = malloc;

static const char dns1035_msg[] =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
static const char qname_msg[] =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
static const char qname_full_msg[] =
    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
    "subdomain prefix and '/' (e.g. 'example.com/MyName')";
static const char dns1123_sub_msg[] =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
static const char label_value_msg[] =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

static bool
streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static bool
lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool
rw_raycluster_dns1035(const char *s, char *msg, size_t msglen)
{
	size_t n = strlen(s);
	bool ok = n > 0 && s[0] >= 'a' && s[0] <= 'z' && lower_alnum(s[n - 1]);
	for (size_t i = 0; ok && i < n; i++)
		ok = lower_alnum(s[i]) || s[i] == '-';
	if (n > 63) {
		if (msg)
			snprintf(msg, msglen, "[must be no more than 63 characters%s%s]",
				 ok ? "" : " ", ok ? "" : dns1035_msg);
		return false;
	}
	if (!ok && msg)
		snprintf(msg, msglen, "[%s]", dns1035_msg);
	return ok;
}

static bool
alnum(char c)
{
	return isalnum((unsigned char)c) != 0;
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] */
static bool
qname_part(const char *s, size_t n)
{
	if (n == 0 || !alnum(s[0]) || !alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static bool
dns1123_subdomain(const char *s, size_t n)
{
	if (n == 0 || n > 253 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (!lower_alnum(s[i - 1]) || (i + 1 < n && !lower_alnum(s[i + 1])))
				return false;
		} else if (!lower_alnum(s[i]) && s[i] != '-') {
			return false;
		}
	}
	return true;
}

/* IsQualifiedName: appends each error to errs (separated by \x1f). */
static int
qualified_name(const char *key, char errs[][400], int max)
{
	const char *slash = strchr(key, '/');
	const char *name = key;
	int n = 0;
	if (slash && strchr(slash + 1, '/')) {
		snprintf(errs[n++], 400, "%s", qname_full_msg);
		return n;
	}
	if (slash) {
		size_t plen = (size_t)(slash - key);
		name = slash + 1;
		if (plen == 0 && n < max)
			snprintf(errs[n++], 400, "prefix part must be non-empty");
		else if (!dns1123_subdomain(key, plen) && n < max)
			snprintf(errs[n++], 400, "prefix part %s", dns1123_sub_msg);
	}
	if (*name == '\0') {
		if (n < max)
			snprintf(errs[n++], 400, "name part must be non-empty");
	} else if (strlen(name) > 63) {
		if (n < max)
			snprintf(errs[n++], 400, "name part must be no more than 63 characters");
	}
	if (*name && !qname_part(name, strlen(name)) && n < max)
		snprintf(errs[n++], 400, "%s", qname_msg);
	return n;
}

static int
label_value(const char *v, char errs[][400], int max)
{
	int n = 0;
	size_t len = strlen(v);
	if (len > 63 && n < max)
		snprintf(errs[n++], 400, "must be no more than 63 characters");
	if (len > 0 && !qname_part(v, len) && n < max)
		snprintf(errs[n++], 400, "%s", label_value_msg);
	return n;
}

static const char *
sval(const node *o, const char *key)
{
	node *v = rw_doc_get(o, key);
	if (!v)
		return NULL;
	return v->type == RW_DOC_STR || v->type == RW_DOC_NUM ? v->s : NULL;
}

static node *
container0(const node *group)
{
	node *c = rw_doc_at(rw_doc_path(group, "template.spec.containers"), 0);
	return c && c->type == RW_DOC_OBJ ? c : NULL;
}

static bool
env_has(const node *container, const char *name)
{
	node *env = rw_doc_get(container, "env");
	for (int i = 0; env && env->type == RW_DOC_ARR && i < env->n; i++)
		if (streq(rw_doc_gets(env->kids[i], "name"), name))
			return true;
	return false;
}

static const char *
env_value(const node *container, const char *name)
{
	node *env = rw_doc_get(container, "env");
	for (int i = 0; env && env->type == RW_DOC_ARR && i < env->n; i++)
		if (streq(rw_doc_gets(env->kids[i], "name"), name)) {
			const char *v = rw_doc_gets(env->kids[i], "value");
			return v ? v : "";
		}
	return NULL;
}

static bool
nonempty(const node *o, const char *key)
{
	const char *v = sval(o, key);
	return v && *v;
}

static bool
has_containers(const node *group)
{
	node *cs = rw_doc_path(group, "template.spec.containers");
	return cs && cs->type == RW_DOC_ARR && cs->n > 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* validateRayGroupResources + validateRayGroupLabels; 0 or an error in msg. */
static int
group_checks(const char *gname, const node *g, char *msg, size_t mlen)
{
	const node *params = rw_doc_get(g, "rayStartParams");
	const node *res = rw_doc_get(g, "resources");
	const node *labels = rw_doc_get(g, "labels");
	bool rs = nonempty(params, "num-cpus") || nonempty(params, "num-gpus") ||
		  nonempty(params, "memory") || nonempty(params, "resources");
	if (rs && res && res->type == RW_DOC_OBJ && res->n > 0) {
		snprintf(
		    msg, mlen,
		    "resource fields should not be set in both rayStartParams and Resources for "
		    "%s group; please use only one",
		    gname);
		return -1;
	}
	if (rw_doc_get(params, "labels")) {
		snprintf(msg, mlen,
			 "rayStartParams['labels'] is not supported for %s group; please use the "
			 "top-level Labels field instead",
			 gname);
		return -1;
	}
	if (labels && labels->type == RW_DOC_OBJ && labels->n > 0) {
		const char **keys =
		    rw_raycluster_validate_malloc((size_t)labels->n * sizeof(*keys));
		size_t used = 0;
		bool any = false;
		/* Unchecked labels must not pass as valid: report the failure instead. */
		if (!keys) {
			snprintf(msg, mlen, "out of memory validating the labels of %s group",
				 gname);
			return -1;
		}
		for (int i = 0; i < labels->n; i++)
			keys[i] = labels->kids[i]->key;
		qsort(keys, (size_t)labels->n, sizeof(*keys), cmp_str);
		msg[0] = '\0';
		for (int i = 0; i < labels->n; i++) {
			char errs[4][400];
			int ne = qualified_name(keys[i], errs, 4);
			for (int e = 0; e < ne && used < mlen; e++, any = true)
				used += (size_t)snprintf(msg + used, mlen - used,
							 "%sinvalid label key for %s group: '%s', "
							 "error: %s",
							 any ? "; " : "", gname, keys[i], errs[e]);
			const char *v = sval(labels, keys[i]);
			ne = label_value(v ? v : "", errs, 4);
			for (int e = 0; e < ne && used < mlen; e++, any = true)
				used += (size_t)snprintf(msg + used, mlen - used,
							 "%sinvalid label value for key '%s' in %s "
							 "group: '%s', error: %s",
							 any ? "; " : "", keys[i], gname,
							 v ? v : "", errs[e]);
		}
		free(keys);
		if (any)
			return -1;
	}
	return 0;
}

/*
 * KubeRay's validating webhook (RayClusterWebhook.validateWorkerGroups)
 * refuses a repeated groupName before the controller sees the object; its
 * controller has no such check, so without the webhook two groups of one
 * name would share pods, labels and expectations. The check runs first, as
 * the webhook would. Groups are few (tens), so the quadratic scan is fine.
 */
static int
duplicate_group(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	for (int i = 1; i < c->ngroups; i++) {
		const char *gn = rw_raycluster_group_name(c, i);
		for (int k = 0; k < i; k++) {
			if (!streq(gn, rw_raycluster_group_name(c, k)))
				continue;
			snprintf(msg, mlen,
				 "workerGroupSpecs[%d]: worker group names must be unique "
				 "(groupName %s is also workerGroupSpecs[%d])",
				 i, gn, k);
			return -1;
		}
	}
	return 0;
}

/* validateRayClusterSpec's checks on the head group: a container, resources, labels. */
static int
check_head_group(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	if (!has_containers(c->head)) {
		snprintf(msg, mlen, "headGroupSpec should have at least one container");
		return -1;
	}
	return group_checks("Head", c->head, msg, mlen);
}

/* One worker group: a container, replica bounds, resources, labels, idle timeout. */
static int
check_worker_group(const struct rw_raycluster *c, int i, bool autoscale, char *msg, size_t mlen)
{
	node *g = rw_raycluster_group(c, i);
	const char *gn = rw_raycluster_group_name(c, i);
	node *mn = rw_doc_get(g, "minReplicas"), *mx = rw_doc_get(g, "maxReplicas");
	node *rp = rw_doc_get(g, "replicas");
	int64_t mnv = 0, mxv = 0, rpv = 0, v;
	bool hasmn = mn && mn->type == RW_DOC_NUM && rw_doc_int(mn, &mnv) == 0;
	bool hasmx = mx && mx->type == RW_DOC_NUM && rw_doc_int(mx, &mxv) == 0;
	if (!has_containers(g)) {
		snprintf(msg, mlen, "workerGroupSpec should have at least one container");
		return -1;
	}
	if (!autoscale && (!hasmn || !hasmx)) {
		snprintf(msg, mlen,
			 "worker group %s must set both minReplicas and maxReplicas when "
			 "autoscaling is disabled",
			 gn);
		return -1;
	}
	if (hasmn && mnv < 0) {
		snprintf(msg, mlen, "worker group %s has negative minReplicas %lld", gn,
			 (long long)mnv);
		return -1;
	}
	if (hasmx && mxv < 0) {
		snprintf(msg, mlen, "worker group %s has negative maxReplicas %lld", gn,
			 (long long)mxv);
		return -1;
	}
	if (hasmn && hasmx && mnv > mxv) {
		snprintf(msg, mlen,
			 "worker group %s has minReplicas %lld greater than maxReplicas %lld", gn,
			 (long long)mnv, (long long)mxv);
		return -1;
	}
	/*
	 * After KubeRay's own rules: KubeRay clamps a negative replicas into
	 * [minReplicas, maxReplicas] without a word; a negative count is
	 * always a mistake in the manifest, so it is refused here in the
	 * words of the min/max rules.
	 */
	if (rp && rp->type == RW_DOC_NUM && rw_doc_int(rp, &rpv) == 0 && rpv < 0) {
		snprintf(msg, mlen, "worker group %s has negative replicas %lld", gn,
			 (long long)rpv);
		return -1;
	}
	if (group_checks(gn, g, msg, mlen))
		return -1;
	node *idle = rw_doc_get(g, "idleTimeoutSeconds");
	if (idle && rw_doc_int(idle, &v) == 0) {
		if (v < 0) {
			snprintf(msg, mlen, "idleTimeoutSeconds must be non-negative, got %lld",
				 (long long)v);
			return -1;
		}
		if (!rw_raycluster_autoscaling_v2(c)) {
			snprintf(msg, mlen,
				 "worker group %s has idleTimeoutSeconds set, but autoscaler "
				 "version is not v2. Please set .spec.autoscalerOptions.version "
				 "to v2",
				 gn);
			return -1;
		}
	}
	return 0;
}

/* Every worker group in order; the first one at fault is reported. */
static int
check_worker_groups(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	bool autoscale = rw_raycluster_autoscaling(c);
	for (int i = 0; i < c->ngroups; i++)
		if (check_worker_group(c, i, autoscale, msg, mlen))
			return -1;
	return 0;
}

/* GCS fault tolerance: one way to turn it on, and Redis settings only through its options. */
static int
check_gcs_ft(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	const node *head = c->head, *opts;
	node *hc;
	opts = rw_doc_get(c->obj.spec, "gcsFaultToleranceOptions");
	if (opts && opts->type == RW_DOC_NULL)
		opts = NULL;
	if (nonempty(c->obj.annotations, "ray.io/ft-enabled") && opts) {
		snprintf(
		    msg, mlen,
		    "ray.io/ft-enabled annotation and GcsFaultToleranceOptions are both set. "
		    "Please use only GcsFaultToleranceOptions to configure GCS fault tolerance");
		return -1;
	}
	hc = container0(head);
	if (!rw_raycluster_gcs_ft(c) && env_has(hc, "RAY_REDIS_ADDRESS")) {
		snprintf(
		    msg, mlen,
		    "RAY_REDIS_ADDRESS is set which implicitly enables GCS fault tolerance, but "
		    "GcsFaultToleranceOptions is not set. Please set GcsFaultToleranceOptions to "
		    "enable GCS fault tolerance");
		return -1;
	}
	if (opts) {
		const node *params = rw_doc_get(head, "rayStartParams");
		if (nonempty(params, "redis-password")) {
			snprintf(msg, mlen,
				 "cannot set `redis-password` in rayStartParams when "
				 "GcsFaultToleranceOptions is enabled - use "
				 "GcsFaultToleranceOptions.RedisPassword instead");
			return -1;
		}
		if (env_has(hc, "REDIS_PASSWORD")) {
			snprintf(msg, mlen,
				 "cannot set `REDIS_PASSWORD` env var in head Pod when "
				 "GcsFaultToleranceOptions is enabled - use "
				 "GcsFaultToleranceOptions.RedisPassword instead");
			return -1;
		}
		if (env_has(hc, "RAY_REDIS_ADDRESS")) {
			snprintf(msg, mlen,
				 "cannot set `RAY_REDIS_ADDRESS` env var in head Pod when "
				 "GcsFaultToleranceOptions is enabled - use "
				 "GcsFaultToleranceOptions.RedisAddress instead");
			return -1;
		}
		if (nonempty(c->obj.annotations, "ray.io/external-storage-namespace")) {
			snprintf(msg, mlen,
				 "cannot set `ray.io/external-storage-namespace` annotation when "
				 "GcsFaultToleranceOptions is enabled - use "
				 "GcsFaultToleranceOptions.ExternalStorageNamespace instead");
			return -1;
		}
		if (streq(rw_doc_gets(opts, "backend"), "rocksdb")) {
			snprintf(msg, mlen,
				 "the embedded RocksDB GCS fault tolerance backend "
				 "(GcsFaultToleranceOptions.Backend: 'rocksdb') requires the "
				 "GCSFaultToleranceEmbeddedStorage feature gate to be enabled");
			return -1;
		}
		node *st = rw_doc_get(opts, "storage");
		if (st && st->type != RW_DOC_NULL) {
			snprintf(
			    msg, mlen,
			    "cannot set GcsFaultToleranceOptions.Storage when backend is 'redis' "
			    "- it only applies to the 'rocksdb' backend");
			return -1;
		}
	}
	if (nonempty(rw_doc_get(head, "rayStartParams"), "redis-username") ||
	    env_has(hc, "REDIS_USERNAME")) {
		snprintf(
		    msg, mlen,
		    "cannot set redis username in rayStartParams or environment variables - use "
		    "GcsFaultToleranceOptions.RedisUsername instead");
		return -1;
	}
	return 0;
}

/* The autoscaler: v2 only with enableInTreeAutoscaling, no suspended groups, restartPolicy. */
static int
check_autoscaler(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	const node *head = c->head, *ao;
	node *hc = container0(head);
	if (!rw_raycluster_autoscaling(c)) {
		const char *v2 = env_value(hc, "RAY_enable_autoscaler_v2");
		if (v2 && (strcmp(v2, "1") == 0 || strcmp(v2, "true") == 0)) {
			snprintf(
			    msg, mlen,
			    "environment variable RAY_enable_autoscaler_v2 cannot be set to '%s' "
			    "when enableInTreeAutoscaling is false. Please set "
			    "enableInTreeAutoscaling: true to use autoscaler v2",
			    v2);
			return -1;
		}
		return 0;
	}
	for (int i = 0; i < c->ngroups; i++) {
		if (rw_doc_true(rw_doc_get(rw_raycluster_group(c, i), "suspend"))) {
			snprintf(msg, mlen,
				 "worker group %s cannot be suspended with Autoscaler enabled",
				 rw_raycluster_group_name(c, i));
			return -1;
		}
	}
	ao = rw_doc_get(c->obj.spec, "autoscalerOptions");
	if (rw_doc_gets(ao, "version") && env_has(hc, "RAY_enable_autoscaler_v2")) {
		snprintf(msg, mlen,
			 "both .spec.autoscalerOptions.version and head Pod env var "
			 "RAY_enable_autoscaler_v2 are set, please only use the former");
		return -1;
	}
	if (rw_raycluster_autoscaling_v2(c)) {
		const char *rp = rw_doc_gets(rw_doc_path(head, "template.spec"), "restartPolicy");
		if (rp && *rp && strcmp(rp, "Never") != 0) {
			snprintf(msg, mlen,
				 "restartPolicy for head Pod should be Never or unset when "
				 "using autoscaler V2");
			return -1;
		}
		for (int i = 0; i < c->ngroups; i++) {
			rp = rw_doc_gets(rw_doc_path(rw_raycluster_group(c, i), "template.spec"),
					 "restartPolicy");
			if (rp && *rp && strcmp(rp, "Never") != 0) {
				snprintf(msg, mlen,
					 "restartPolicy for worker group %s should be Never or "
					 "unset when using autoscaler V2",
					 rw_raycluster_group_name(c, i));
				return -1;
			}
		}
	}
	return 0;
}

/* autoscalerOptions, checked whether or not autoscaling is on (as KubeRay does). */
static int
check_autoscaler_options(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	node *ao = rw_doc_get(c->obj.spec, "autoscalerOptions");
	int64_t v;
	if (rw_doc_int(rw_doc_get(ao, "idleTimeoutSeconds"), &v) == 0 && v < 0) {
		snprintf(msg, mlen,
			 "autoscalerOptions.idleTimeoutSeconds must be non-negative, got %lld",
			 (long long)v);
		return -1;
	}
	node *aoenv = rw_doc_get(ao, "env");
	for (int i = 0; aoenv && aoenv->type == RW_DOC_ARR && i < aoenv->n; i++) {
		if (streq(rw_doc_gets(aoenv->kids[i], "name"),
			  "KUBERAY_GEN_AUTOSCALER_START_CMD")) {
			snprintf(msg, mlen,
				 "autoscalerOptions.env must not contain "
				 "KUBERAY_GEN_AUTOSCALER_START_CMD: it is managed by KubeRay and "
				 "injected automatically into the autoscaler container");
			return -1;
		}
	}
	return 0;
}

/* historyServerOptions: its feature gate is off at KubeRay's defaults. */
static int
check_history_server(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	node *hs = rw_doc_get(c->obj.spec, "historyServerOptions");
	if (hs && hs->type != RW_DOC_NULL) {
		snprintf(msg, mlen, "RayClusterHistoryServer feature gate is not enabled");
		return -1;
	}
	return 0;
}

/* authOptions: token auth needs Ray 2.52 or later. */
static int
check_auth(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	node *auth = rw_doc_get(c->obj.spec, "authOptions");
	if (streq(rw_doc_gets(auth, "mode"), "token")) {
		const char *rv = rw_doc_gets(c->obj.spec, "rayVersion");
		if (!rv || !*rv) {
			snprintf(
			    msg, mlen,
			    "authOptions.mode is 'token' but RayVersion was not specified. Ray "
			    "version 2.52.0 or later is required");
			return -1;
		}
		/* Compare major.minor against 2.52 (version.ParseGeneric). */
		unsigned long a = 0, b = 0;
		const char *p = rv;
		if (*p == 'v')
			p++;
		if (sscanf(p, "%lu.%lu", &a, &b) != 2) {
			snprintf(
			    msg, mlen,
			    "authOptions.mode is 'token' but RayVersion format is invalid: %s, "
			    "illegal version string \"%s\"",
			    rv, rv);
			return -1;
		}
		if (a < 2 || (a == 2 && b < 52)) {
			snprintf(
			    msg, mlen,
			    "authOptions.mode is 'token' but minimum Ray version is 2.52.0, got %s",
			    rv);
			return -1;
		}
	}
	return 0;
}

/* networkPolicy and tlsOptions: their feature gates are off at KubeRay's defaults. */
static int
check_gated_fields(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	node *np = rw_doc_get(c->obj.spec, "networkPolicy");
	if (np && np->type != RW_DOC_NULL) {
		snprintf(
		    msg, mlen,
		    "spec.networkPolicy requires the RayClusterNetworkPolicy feature gate to be "
		    "enabled");
		return -1;
	}
	node *tls = rw_doc_get(c->obj.spec, "tlsOptions");
	if (tls && tls->type != RW_DOC_NULL) {
		snprintf(msg, mlen,
			 "spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled");
		return -1;
	}
	return 0;
}

/*
 * ValidateRayClusterSpec (annotations are the CR's), one check per part of the
 * spec. The order is KubeRay's and matters: only the first error is reported,
 * and the tests compare it message by message.
 */
static int (*const spec_checks[])(const struct rw_raycluster *c, char *msg, size_t mlen) = {
    duplicate_group,	      /* workerGroupSpecs[].groupName unique (the webhook's) */
    check_head_group,	      /* headGroupSpec */
    check_worker_groups,      /* workerGroupSpecs */
    check_gcs_ft,	      /* gcsFaultToleranceOptions, ray.io/ft-enabled, Redis settings */
    check_autoscaler,	      /* enableInTreeAutoscaling, autoscaler v2 */
    check_autoscaler_options, /* autoscalerOptions */
    check_history_server,     /* historyServerOptions */
    check_auth,		      /* authOptions */
    check_gated_fields,	      /* networkPolicy, tlsOptions */
};

static int
validate_spec(const struct rw_raycluster *c, char *msg, size_t mlen)
{
	for (size_t i = 0; i < sizeof(spec_checks) / sizeof(spec_checks[0]); i++)
		if (spec_checks[i](c, msg, mlen))
			return -1;
	return 0;
}

int
rw_raycluster_validate(const struct rw_raycluster *c, struct rw_raycluster_verrs *out)
{
	char tmp[700];
	node *conds = rw_doc_path(c->obj.root, "status.conditions");
	const char *ut;
	memset(out, 0, sizeof(*out));

	if (rw_doc_cond_true(conds, "RayClusterSuspending") &&
	    rw_doc_cond_true(conds, "RayClusterSuspended")) {
		out->e[out->n].reason = "InvalidRayClusterStatus";
		snprintf(out->e[out->n++].msg, sizeof(out->e[0].msg),
			 "invalid RayCluster State: rayv1.RayClusterSuspending and "
			 "rayv1.RayClusterSuspended conditions should not be both true");
	}
	if (strlen(c->obj.name) > 53) {
		out->e[out->n].reason = "InvalidRayClusterMetadata";
		snprintf(out->e[out->n++].msg, sizeof(out->e[0].msg),
			 "RayCluster name should be no more than 53 characters");
	} else if (!rw_raycluster_dns1035(c->obj.name, tmp, sizeof(tmp))) {
		out->e[out->n].reason = "InvalidRayClusterMetadata";
		snprintf(out->e[out->n++].msg, sizeof(out->e[0].msg),
			 "RayCluster name should be a valid DNS1035 label: %s", tmp);
	}
	if (validate_spec(c, tmp, sizeof(tmp))) {
		out->e[out->n].reason = "InvalidRayClusterSpec";
		snprintf(out->e[out->n++].msg, sizeof(out->e[0].msg), "%s", tmp);
	}
	ut = rw_doc_gets(rw_doc_get(c->obj.spec, "upgradeStrategy"), "type");
	if (ut) {
		enum rw_raycluster_crd crd = rw_raycluster_creator(c, NULL);
		if (strcmp(ut, "Recreate") != 0 && strcmp(ut, "None") != 0) {
			out->e[out->n].reason = "InvalidRayClusterSpec";
			snprintf(
			    out->e[out->n++].msg, sizeof(out->e[0].msg),
			    "The RayCluster spec is invalid: Spec.UpgradeStrategy.Type value %s "
			    "is invalid, valid options are Recreate or None",
			    ut);
		} else if (crd == RW_RAYCLUSTER_CRD_RAYJOB || crd == RW_RAYCLUSTER_CRD_RAYSERVICE) {
			out->e[out->n].reason = "InvalidRayClusterSpec";
			snprintf(out->e[out->n++].msg, sizeof(out->e[0].msg),
				 "upgradeStrategy cannot be set when RayCluster is created by %s",
				 rw_raycluster_crd_name(crd));
		}
	}
	return out->n;
}

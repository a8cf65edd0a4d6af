/*
 * rbac.c - the grant table, request -> RBAC attributes, and the manifest
 * printer (see rbac.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rbac.h"
#include "rw/text.h"

/*
 * Every permission raywarden-controller holds. One row is one rule of the
 * generated Role; to let the controller make a new API call, add its verb to
 * the row of the resource (or add a row), then regenerate the manifests:
 *   build/bin/raywarden-controller --print-rbac > manifests/rbac/cluster_role.yaml
 *   build/bin/raywarden-controller --print-rbac=leader-election \
 *       > manifests/rbac/leader_election_role.yaml
 * Rows are sorted by group and resource, verbs alphabetically, so the YAML
 * diff of a change is one line.
 */
const struct rw_rbac_grant rw_rbac_grants[] = {
    {RW_RBAC_CLUSTER, "", "configmaps", "create update", false,
     "RayJob reconciler: the ConfigMap <rayjob>-driver-log that keeps the tail of the driver "
     "log after the RayCluster is gone (created, replaced by a later attempt's; owned by the "
     "RayJob, so garbage-collected with it).",
     NULL},
    {RW_RBAC_CLUSTER, "", "pods", "create delete list patch watch", false,
     "RayCluster reconciler: creates head and worker pods, deletes surplus, failed and "
     "workersToDelete pods, and watches Ray pods (informer selected by ray.io/node-type). patch: "
     "the ray.io/serve label the RayService reconciler sets on heads.",
     NULL},
    {RW_RBAC_CLUSTER, "", "pods", "get", true,
     "Never requested: held because the autoscaler Role the controller creates per RayCluster "
     "grants pods get/list/watch/patch, and RBAC lets a subject grant only what it holds "
     "(escalation check).",
     NULL},
    {RW_RBAC_CLUSTER, "", "pods/ephemeralcontainers", "patch", false,
     "RayCluster reconciler: attaches the raywarden agent as an ephemeral container to a head "
     "pod that has none (made by KubeRay before raywarden took the cluster over), once per pod, "
     "so its Ray jobs and Serve applications are seen without restarting it.",
     NULL},
    {RW_RBAC_CLUSTER, "", "pods/resize", "patch", true,
     "Never requested: the autoscaler Role grants pods/resize patch (escalation check).", NULL},
    {RW_RBAC_CLUSTER, "", "pods/status", "patch", false,
     "Agent hub: sets the ray.io/agent-ready readiness-gate condition from agent reports.", NULL},
    {RW_RBAC_CLUSTER, "", "secrets", "create get list patch watch", false,
     "The per-cluster agent key Secret <cluster>-raywarden-key: created, read by name, "
     "rewritten (patch) when the master key changed, and list/watch through an informer "
     "selected by app.kubernetes.io/component=raywarden-agent-key so a deleted or altered key "
     "Secret is written again; the Redis password Secret of GCS fault tolerance is read by name "
     "for the Redis cleanup. No delete: the key Secret is owned by its RayCluster and "
     "garbage-collected.",
     NULL},
    {RW_RBAC_CLUSTER, "", "serviceaccounts", "create", false,
     "Autoscaler: the head pod's ServiceAccount when enableInTreeAutoscaling is set (owned by "
     "the RayCluster, so garbage collection removes it).",
     NULL},
    {RW_RBAC_CLUSTER, "", "services", "create delete list patch watch", false,
     "RayCluster head, headless-worker and serve Services; RayService serve and head Services, "
     "deleted when their cluster goes; the RayJob head Service <rayjob>-head-svc (informer "
     "selected by ray.io/originated-from-crd=RayJob). patch: the RayService traffic switch, one "
     "merge patch of the serve Service's spec (selector included), so traffic moves in one "
     "write; the same patch points <rayjob>-head-svc at a retry's new cluster.",
     NULL},
    {RW_RBAC_CLUSTER, "batch", "jobs", "create delete list watch", false,
     "RayJob reconciler: the K8sJobMode submitter Job <rayjob> (created, deleted on suspend "
     "and retry with background propagation), and its informer selected by "
     "app.kubernetes.io/created-by=kuberay-operator.",
     NULL},
    {RW_RBAC_CLUSTER, "discovery.k8s.io", "endpointslices", "list watch", false,
     "RayService reconciler: counts ready endpoints of the serve Service "
     "(status.numServeEndpoints).",
     NULL},
    {RW_RBAC_CLUSTER, "events.k8s.io", "events", "create patch", false,
     "Event recorder: create, and patch to bump the count of a repeated event.", NULL},
    {RW_RBAC_CLUSTER, "networking.k8s.io", "ingresses", "create list watch", false,
     "RayCluster enableIngress: the head Ingress <cluster>-head-ingress, created when no Ingress "
     "labelled ray.io/cluster=<cluster> exists (informer selected by ray.io/cluster, started by "
     "the first cluster that wants one), never updated; owned by the RayCluster, so garbage "
     "collection removes it.",
     NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayclusters", "create delete list patch update watch", false,
     "RayCluster informers; the RayService reconciler creates, updates in place (PUT) and "
     "deletes the RayClusters it owns; finalizers and DeleteWorkers group suspend are JSON "
     "patches.",
     NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayclusters", "get", true,
     "Never requested: the autoscaler Role grants rayclusters get/patch (escalation check).", NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayclusters/finalizers", "update", true,
     "Never requested: owner references with blockOwnerDeletion on objects a RayCluster owns "
     "need update on its finalizers subresource when the OwnerReferencesPermissionEnforcement "
     "admission plugin is on.",
     NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayclusters/status", "patch update", false,
     "RayCluster status writer (only when the status changed); patch: the invalid-spec reason.",
     NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayjobs", "delete list patch watch", false,
     "RayJob informer; patch: its finalizer; delete: DeleteSelf deletion rules, "
     "DELETE_RAYJOB_CR_AFTER_JOB_FINISHES and --rayjob-default-ttl.",
     NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayjobs/finalizers", "update", true,
     "Never requested: blockOwnerDeletion on the RayCluster, submitter Job and head Service a "
     "RayJob owns (OwnerReferencesPermissionEnforcement).",
     NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayjobs/status", "update", false,
     "RayJob status writer (only when the status changed).", NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayservices", "list patch watch", false,
     "RayService informer; patch: its finalizer.", NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayservices/finalizers", "update", true,
     "Never requested: blockOwnerDeletion on the RayClusters and Services a RayService owns "
     "(OwnerReferencesPermissionEnforcement).",
     NULL},
    {RW_RBAC_CLUSTER, "ray.io", "rayservices/status", "update", false,
     "RayService status writer (only when the status changed).", NULL},
    {RW_RBAC_CLUSTER, "rbac.authorization.k8s.io", "rolebindings", "create", false,
     "Autoscaler: the RoleBinding <cluster> of the autoscaler's ServiceAccount to its Role.", NULL},
    {RW_RBAC_CLUSTER, "rbac.authorization.k8s.io", "roles", "create", false,
     "Autoscaler: the Role <cluster> that lets the autoscaler sidecar read pods and patch its "
     "RayCluster.",
     NULL},
    {RW_RBAC_CLUSTER, "route.openshift.io", "routes", "create list watch", false,
     "RayCluster enableIngress on OpenShift: the head Route <cluster>-head-route instead of the "
     "Ingress (same rules); list: also the start-up check whether route.openshift.io is served.",
     NULL},
    {RW_RBAC_LEASE, "coordination.k8s.io", "leases", "create get update", false,
     "get + create to take a missing Lease, update to renew it, take over an expired one or "
     "release it (optimistic concurrency on resourceVersion).",
     NULL},
    {RW_RBAC_BATCH, "scheduling.volcano.sh", "podgroups", "create delete get patch", false,
     "--batch-scheduler=volcano: the PodGroup ray-<name>-pg of a RayCluster or RayJob, read by "
     "name and created before the pods, its minMember/minResources patched when the cluster "
     "changes, and a RayJob's deleted when it is Complete or Failed.",
     NULL},
    {RW_RBAC_BATCH, "scheduling.x-k8s.io", "podgroups", "create get", false,
     "--batch-scheduler=scheduler-plugins: the PodGroup <cluster> of a RayCluster labelled "
     "ray.io/gang-scheduling-enabled, read by name and created before the pods (never updated, "
     "as KubeRay; owned by the RayCluster, so garbage-collected with it).",
     NULL},
    {RW_RBAC_WEBHOOK, "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get patch",
     false,
     "Admission webhooks (--webhook-addr): reads the MutatingWebhookConfiguration by name and "
     "patches the caBundle of the webhooks it serves when it differs from its CA.",
     "raywarden"},
    {RW_RBAC_WEBHOOK, "admissionregistration.k8s.io", "validatingwebhookconfigurations",
     "get patch", false, "Admission webhooks: the same for the ValidatingWebhookConfiguration.",
     "raywarden"},
    {RW_RBAC_WEBHOOK_NS, "", "secrets", "create", false,
     "Admission webhooks: the Secret raywarden-webhook-certs (CA and serving certificate, shared "
     "by every replica) is created by the first replica that finds none (a create cannot be "
     "limited by name).",
     NULL},
    {RW_RBAC_WEBHOOK_NS, "", "secrets", "get patch", false,
     "Admission webhooks: that Secret read, and patched when a certificate is renewed "
     "(resourceVersion precondition: replicas never overwrite each other).",
     "raywarden-webhook-certs"},
};

const size_t rw_rbac_ngrants = sizeof(rw_rbac_grants) / sizeof(rw_rbac_grants[0]);

/* ---- request -> attributes ---- */

static int
copy_seg(char *dst, size_t n, const char *s, size_t len)
{
	if (len >= n)
		return -EINVAL;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* The decoded value of key in an encoded query; 1 when found, 0 when absent, -EINVAL. */
static int
query_get(const char *q, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key);
	while (q && *q) {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		if (len >= kl && strncmp(q, key, kl) == 0 && (len == kl || q[kl] == '=')) {
			size_t o = 0;
			for (size_t i = kl + 1; i < len; i++) {
				char c = q[i];
				if (c == '+')
					c = ' ';
				else if (c == '%') {
					int h = i + 2 < len ? rw_hexval(q[i + 1]) : -1;
					int l = i + 2 < len ? rw_hexval(q[i + 2]) : -1;
					if (h < 0 || l < 0)
						return -EINVAL;
					c = (char)(h * 16 + l);
					i += 2;
				}
				if (o + 1 >= outlen)
					return -EINVAL;
				out[o++] = c;
			}
			out[o] = '\0';
			return 1;
		}
		q = end ? end + 1 : NULL;
	}
	return 0;
}

/* strconv.ParseBool's true spellings (ListOptions.Watch). */
static bool
parse_true(const char *v)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(v, t[i]) == 0)
			return true;
	return false;
}

/* fieldSelector requiring metadata.name=X exactly (one term, = or ==): X. */
static void
selector_name(const char *sel, char *out, size_t outlen)
{
	const char *v = NULL;
	if (strchr(sel, ','))
		return;
	if (strncmp(sel, "metadata.name==", 15) == 0)
		v = sel + 15;
	else if (strncmp(sel, "metadata.name=", 14) == 0)
		v = sel + 14;
	if (v && *v && !strchr(v, '/') && strlen(v) < outlen)
		snprintf(out, outlen, "%s", v);
}

#define MAX_SEGS 16

int
rw_rbac_attr_of(const char *method, const char *path, const char *query, struct rw_rbac_attr *a)
{
	const char *seg[MAX_SEGS];
	size_t len[MAX_SEGS];
	int n = 0, i = 0;
	bool special = false;

	memset(a, 0, sizeof(*a));
	if (!method || !path || path[0] != '/')
		return -EINVAL;
	snprintf(a->path, sizeof(a->path), "%s", path);
	/* strings.Split(strings.Trim(path, "/"), "/") */
	const char *p = path;
	while (*p == '/')
		p++;
	size_t plen = strlen(p);
	while (plen && p[plen - 1] == '/')
		plen--;
	for (size_t s = 0; s < plen && n < MAX_SEGS;) {
		const char *e = memchr(p + s, '/', plen - s);
		size_t l = e ? (size_t)(e - (p + s)) : plen - s;
		if (l == 0)
			return -EINVAL;
		seg[n] = p + s;
		len[n++] = l;
		s += l + 1;
	}
	if (n == MAX_SEGS)
		return -EINVAL;
	bool is_api = n >= 1 && len[0] == 3 && !strncmp(seg[0], "api", 3);
	bool is_apis = n >= 1 && len[0] == 4 && !strncmp(seg[0], "apis", 4);
	if (n < 3 || (!is_api && !is_apis) || (is_apis && n < 4)) {
		/* A non-resource URL: the verb is the lower-cased method. */
		for (size_t k = 0; method[k] && k + 1 < sizeof(a->verb); k++)
			a->verb[k] = (char)(method[k] >= 'A' && method[k] <= 'Z' ? method[k] + 32
										 : method[k]);
		return 0;
	}
	a->resource_request = true;
	i = 1;
	if (is_apis) {
		if (copy_seg(a->group, sizeof(a->group), seg[1], len[1]))
			return -EINVAL;
		i = 2;
	}
	i++; /* the version */
	if ((len[i] == 5 && !strncmp(seg[i], "watch", 5)) ||
	    (len[i] == 5 && !strncmp(seg[i], "proxy", 5))) {
		if (n - i < 2)
			return -EINVAL;
		copy_seg(a->verb, sizeof(a->verb), seg[i], len[i]);
		special = true;
		i++;
	} else if (!strcasecmp(method, "POST")) {
		strcpy(a->verb, "create");
	} else if (!strcasecmp(method, "GET") || !strcasecmp(method, "HEAD")) {
		strcpy(a->verb, "get");
	} else if (!strcasecmp(method, "PUT")) {
		strcpy(a->verb, "update");
	} else if (!strcasecmp(method, "PATCH")) {
		strcpy(a->verb, "patch");
	} else if (!strcasecmp(method, "DELETE")) {
		strcpy(a->verb, "delete");
	} else {
		return -EINVAL;
	}
	if (len[i] == 10 && !strncmp(seg[i], "namespaces", 10) && n - i > 1) {
		if (copy_seg(a->ns, sizeof(a->ns), seg[i + 1], len[i + 1]))
			return -EINVAL;
		/* /namespaces/{ns}/status and /finalize are the namespace's own subresources. */
		if (n - i > 2 && !(len[i + 2] == 6 && !strncmp(seg[i + 2], "status", 6)) &&
		    !(len[i + 2] == 8 && !strncmp(seg[i + 2], "finalize", 8)))
			i += 2;
	}
	int parts = n - i;
	if (parts >= 3 && !(special && !strcmp(a->verb, "proxy")) &&
	    copy_seg(a->subresource, sizeof(a->subresource), seg[i + 2], len[i + 2]))
		return -EINVAL;
	if (parts >= 2 && copy_seg(a->name, sizeof(a->name), seg[i + 1], len[i + 1]))
		return -EINVAL;
	if (parts >= 1 && copy_seg(a->resource, sizeof(a->resource), seg[i], len[i]))
		return -EINVAL;
	if (!a->name[0] && !strcmp(a->verb, "get")) {
		char v[512];
		int rv = query_get(query, "watch", v, sizeof(v));
		if (rv < 0)
			return -EINVAL;
		strcpy(a->verb, rv == 1 && parse_true(v) ? "watch" : "list");
	}
	if (!a->name[0] && (!strcmp(a->verb, "list") || !strcmp(a->verb, "watch"))) {
		char sel[1024];
		int rv = query_get(query, "fieldSelector", sel, sizeof(sel));
		if (rv < 0)
			return -EINVAL;
		if (rv == 1)
			selector_name(sel, a->name, sizeof(a->name));
	}
	if (!a->name[0] && !strcmp(a->verb, "delete"))
		strcpy(a->verb, "deletecollection");
	return 0;
}

static bool
has_word(const char *list, const char *w)
{
	size_t wl = strlen(w);
	for (const char *p = list; *p;) {
		while (*p == ' ')
			p++;
		size_t l = strcspn(p, " ");
		if (l == wl && l && strncmp(p, w, l) == 0)
			return true;
		p += l;
	}
	return false;
}

void
rw_rbac_resource_name(const struct rw_rbac_attr *a, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s%s", a->resource, a->subresource[0] ? "/" : "", a->subresource);
}

bool
rw_rbac_granted(const struct rw_rbac_attr *a, const struct rw_rbac_grant **row)
{
	char res[200];
	if (row)
		*row = NULL;
	if (!a->resource_request || !a->resource[0])
		return false; /* the controller calls no non-resource URL */
	rw_rbac_resource_name(a, res, sizeof(res));
	for (size_t i = 0; i < rw_rbac_ngrants; i++) {
		const struct rw_rbac_grant *g = &rw_rbac_grants[i];
		/* Held-only rows are never requested: a request matching only them is a new call
		 * site that must say why it needs the verb in a row of its own. */
		if (g->held_only || strcmp(g->group, a->group) || strcmp(g->resource, res) ||
		    !has_word(g->verbs, a->verb) || (g->names && !has_word(g->names, a->name)))
			continue;
		if (row)
			*row = g;
		return true;
	}
	return false;
}

/* ---- manifests ---- */

#define WRAP 100

/* "# text" wrapped at WRAP columns. */
static int
comment(struct rw_buf *b, const char *text)
{
	int rv = 0;
	size_t col = 0;
	for (const char *p = text; *p && rv == 0;) {
		while (*p == ' ')
			p++;
		size_t l = strcspn(p, " ");
		if (!l)
			break;
		if (col && col + 1 + l > WRAP) {
			rv = rw_buf_putc(b, '\n');
			col = 0;
		}
		if (rv == 0 && col == 0) {
			rv = rw_buf_puts(b, "#");
			col = 1;
		}
		if (rv == 0)
			rv = rw_buf_printf(b, " %.*s", (int)l, p);
		col += 1 + l;
		p += l;
	}
	return rv ? rv : rw_buf_putc(b, '\n');
}

static int
words(struct rw_buf *b, const char *list)
{
	int rv = rw_buf_putc(b, '[');
	bool first = true;
	for (const char *p = list; *p && rv == 0;) {
		while (*p == ' ')
			p++;
		size_t l = strcspn(p, " ");
		if (!l)
			break;
		rv = rw_buf_printf(b, "%s\"%.*s\"", first ? "" : ", ", (int)l, p);
		first = false;
		p += l;
	}
	return rv ? rv : rw_buf_putc(b, ']');
}

static const char labels[] = "  labels:\n"
			     "    app.kubernetes.io/name: raywarden\n"
			     "    app.kubernetes.io/component: controller\n";

static int
rules(struct rw_buf *b, enum rw_rbac_scope scope)
{
	int rv = rw_buf_puts(b, "rules:\n");
	for (size_t i = 0; i < rw_rbac_ngrants && rv == 0; i++) {
		const struct rw_rbac_grant *g = &rw_rbac_grants[i];
		if (g->scope != scope)
			continue;
		rv = comment(b, g->why);
		if (rv == 0)
			rv = rw_buf_printf(b, "- apiGroups: [\"%s\"]\n  resources: [\"%s\"]\n%s",
					   g->group, g->resource, g->names ? "" : "  verbs: ");
		if (rv == 0 && g->names) {
			rv = rw_buf_puts(b, "  resourceNames: ");
			if (rv == 0)
				rv = words(b, g->names);
			if (rv == 0)
				rv = rw_buf_puts(b, "\n  verbs: ");
		}
		if (rv == 0)
			rv = words(b, g->verbs);
		if (rv == 0)
			rv = rw_buf_putc(b, '\n');
	}
	return rv;
}

/* A role (ClusterRole when role_ns is NULL) with the scope's rules, and its binding to the
 * controller's ServiceAccount in ns. */
static int
role_and_binding(struct rw_buf *out, enum rw_rbac_scope scope, const char *name,
		 const char *role_ns, const char *ns)
{
	const char *kind = role_ns ? "Role" : "ClusterRole";
	int rv = rw_buf_printf(out,
			       "apiVersion: rbac.authorization.k8s.io/v1\n"
			       "kind: %s\n"
			       "metadata:\n"
			       "  name: %s\n",
			       kind, name);
	if (rv == 0 && role_ns)
		rv = rw_buf_printf(out, "  namespace: %s\n", role_ns);
	if (rv == 0)
		rv = rw_buf_puts(out, labels);
	if (rv == 0)
		rv = rules(out, scope);
	if (rv == 0)
		rv = rw_buf_printf(out,
				   "---\n"
				   "apiVersion: rbac.authorization.k8s.io/v1\n"
				   "kind: %sBinding\n"
				   "metadata:\n"
				   "  name: %s\n",
				   kind, name);
	if (rv == 0 && role_ns)
		rv = rw_buf_printf(out, "  namespace: %s\n", role_ns);
	if (rv == 0)
		rv = rw_buf_printf(out,
				   "%s"
				   "roleRef:\n"
				   "  apiGroup: rbac.authorization.k8s.io\n"
				   "  kind: %s\n"
				   "  name: %s\n"
				   "subjects:\n"
				   "- kind: ServiceAccount\n"
				   "  name: raywarden-controller\n"
				   "  namespace: %s\n",
				   labels, kind, name, ns);
	return rv;
}

int
rw_rbac_print(enum rw_rbac_scope scope, const char *ns, struct rw_buf *out)
{
	int rv;
	if (scope == RW_RBAC_CLUSTER) {
		rv = comment(
		    out, "Generated by `raywarden-controller --print-rbac` from the grant table in "
			 "controller/kube/rbac.c; edit the table, not this file (tests/sim/"
			 "test_manifests.py fails when they differ). What raywarden-controller "
			 "may do in the namespaces it watches, one rule per purpose. The kube "
			 "client refuses any request the table does not grant, so every call site "
			 "is covered by a rule here. Bind it per namespace with a RoleBinding "
			 "instead of the ClusterRoleBinding when the controller runs with "
			 "--watch-namespace (docs/install.md).");
		if (rv == 0)
			rv = rw_buf_printf(out,
					   "apiVersion: rbac.authorization.k8s.io/v1\n"
					   "kind: ClusterRole\n"
					   "metadata:\n"
					   "  name: raywarden-controller\n%s",
					   labels);
		return rv ? rv : rules(out, scope);
	}
	if (scope == RW_RBAC_BATCH) {
		rv = comment(
		    out,
		    "Generated by `raywarden-controller --print-rbac=batch-scheduler` from the "
		    "grant table in controller/kube/rbac.c; edit the table, not this file. "
		    "Optional: only a controller started with --batch-scheduler needs it (the "
		    "PodGroups of Volcano and scheduler-plugins; YuniKorn and KAI need nothing "
		    "more). Install with the kustomize component manifests/batch-scheduler "
		    "(docs/security.md).");
		return rv ? rv
			  : role_and_binding(out, scope, "raywarden-batch-scheduler", NULL, ns);
	}
	if (scope == RW_RBAC_WEBHOOK || scope == RW_RBAC_WEBHOOK_NS) {
		rv = comment(
		    out,
		    "Generated by `raywarden-controller --print-rbac=webhook` from the grant "
		    "table in controller/kube/rbac.c; edit the table, not this file. Optional: "
		    "only a controller started with --webhook-addr needs it (the admission "
		    "webhooks, manifests/webhook, docs/install.md). Everything by name: the "
		    "webhook configurations raywarden and the certificate Secret in the "
		    "controller's own namespace.");
		if (rv == 0)
			rv = role_and_binding(out, RW_RBAC_WEBHOOK, "raywarden-webhook", NULL, ns);
		if (rv == 0)
			rv = rw_buf_puts(out, "---\n");
		return rv ? rv
			  : role_and_binding(out, RW_RBAC_WEBHOOK_NS, "raywarden-webhook", ns, ns);
	}
	rv = comment(out,
		     "Generated by `raywarden-controller --print-rbac=leader-election` from "
		     "the grant table in controller/kube/rbac.c; edit the table, not this file. "
		     "Leader election (--leader-elect, on by default): one coordination.k8s.io/v1 "
		     "Lease in the controller's own namespace. Namespaced, so the controller "
		     "cannot touch other namespaces' Leases.");
	return rv ? rv : role_and_binding(out, scope, "raywarden-leader-election", ns, ns);
}

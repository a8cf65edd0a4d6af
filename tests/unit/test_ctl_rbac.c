/*
 * test_ctl_rbac.c - the controller's RBAC grant table (controller/kube/rbac.c):
 * request -> attributes as the API server's RequestInfoFactory maps them,
 * every call site of the controller granted, unused verbs refused, the
 * committed manifests equal to what the table prints, and the kube client
 * answering an ungranted request with a local 403 without sending it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "kube.h"
#include "rbac.h"
#include "rwtest.h"

static void
t_attr_of(void)
{
	static const struct {
		const char *method, *path, *query;
		int rv;
		int resource; /* resource_request */
		const char *verb, *group, *resource_, *sub, *ns, *name;
	} c[] = {
	    {"GET", "/api/v1/namespaces/d/pods", NULL, 0, 1, "list", "", "pods", "", "d", ""},
	    {"GET", "/api/v1/namespaces/d/pods", "limit=500&labelSelector=ray.io%2Fnode-type", 0, 1,
	     "list", "", "pods", "", "d", ""},
	    {"GET", "/api/v1/namespaces/d/pods", "watch=1&resourceVersion=7", 0, 1, "watch", "",
	     "pods", "", "d", ""},
	    {"GET", "/api/v1/namespaces/d/pods", "allowWatchBookmarks=true&watch=true", 0, 1,
	     "watch", "", "pods", "", "d", ""},
	    {"GET", "/api/v1/namespaces/d/pods", "watch=false", 0, 1, "list", "", "pods", "", "d",
	     ""},
	    {"GET", "/api/v1/watch/namespaces/d/pods", NULL, 0, 1, "watch", "", "pods", "", "d",
	     ""},
	    {"GET", "/api/v1/pods", NULL, 0, 1, "list", "", "pods", "", "", ""},
	    {"GET", "/apis/ray.io/v1/rayclusters", "limit=500", 0, 1, "list", "ray.io",
	     "rayclusters", "", "", ""},
	    {"GET", "/api/v1/namespaces/d/secrets", "fieldSelector=metadata.name%3Dk", 0, 1, "list",
	     "", "secrets", "", "d", "k"},
	    {"GET", "/api/v1/namespaces/d/secrets", "fieldSelector=metadata.name%3Dk%2Ctype%3Dx", 0,
	     1, "list", "", "secrets", "", "d", ""},
	    {"GET", "/api/v1/namespaces/d/secrets/k", NULL, 0, 1, "get", "", "secrets", "", "d",
	     "k"},
	    {"HEAD", "/api/v1/namespaces/d/secrets/k", NULL, 0, 1, "get", "", "secrets", "", "d",
	     "k"},
	    {"POST", "/api/v1/namespaces/d/pods", NULL, 0, 1, "create", "", "pods", "", "d", ""},
	    {"PUT", "/apis/ray.io/v1/namespaces/d/rayclusters/c/status", NULL, 0, 1, "update",
	     "ray.io", "rayclusters", "status", "d", "c"},
	    {"PATCH", "/api/v1/namespaces/d/pods/p/status", NULL, 0, 1, "patch", "", "pods",
	     "status", "d", "p"},
	    {"DELETE", "/api/v1/namespaces/d/pods/p", NULL, 0, 1, "delete", "", "pods", "", "d",
	     "p"},
	    {"DELETE", "/api/v1/namespaces/d/pods", NULL, 0, 1, "deletecollection", "", "pods", "",
	     "d", ""},
	    {"GET", "/api/v1/namespaces/d/pods/p/log", NULL, 0, 1, "get", "", "pods", "log", "d",
	     "p"},
	    {"GET", "/api/v1/namespaces/d", NULL, 0, 1, "get", "", "namespaces", "", "d", "d"},
	    {"PUT", "/api/v1/namespaces/d/finalize", NULL, 0, 1, "update", "", "namespaces",
	     "finalize", "d", "d"},
	    {"GET", "/apis/coordination.k8s.io/v1/namespaces/s/leases/l/", NULL, 0, 1, "get",
	     "coordination.k8s.io", "leases", "", "s", "l"},
	    {"GET", "/version", NULL, 0, 0, "get", "", "", "", "", ""},
	    {"GET", "/apis/ray.io/v1", NULL, 0, 0, "get", "", "", "", "", ""},
	    {"POST", "/healthz", NULL, 0, 0, "post", "", "", "", "", ""},
	    {"GET", "/api/v1/namespaces//pods", NULL, -EINVAL, 0, "", "", "", "", "", ""},
	    {"OPTIONS", "/api/v1/namespaces/d/pods", NULL, -EINVAL, 0, "", "", "", "", "", ""},
	    {"GET", "api/v1/pods", NULL, -EINVAL, 0, "", "", "", "", "", ""},
	    {"GET", "/api/v1/namespaces/d/pods", "watch=%zz", -EINVAL, 0, "", "", "", "", "", ""},
	    {"GET", "/api/v1/watch", NULL, -EINVAL, 0, "", "", "", "", "", ""},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct rw_rbac_attr a;
		int rv = rw_rbac_attr_of(c[i].method, c[i].path, c[i].query, &a);
		if (rv != c[i].rv)
			fprintf(stderr, "  case %zu: %s %s\n", i, c[i].method, c[i].path);
		CHECK_EQ_INT(rv, c[i].rv);
		if (rv || c[i].rv)
			continue;
		CHECK_EQ_INT(a.resource_request, c[i].resource);
		CHECK_EQ_STR(a.verb, c[i].verb);
		CHECK_EQ_STR(a.group, c[i].group);
		CHECK_EQ_STR(a.resource, c[i].resource_);
		CHECK_EQ_STR(a.subresource, c[i].sub);
		CHECK_EQ_STR(a.ns, c[i].ns);
		CHECK_EQ_STR(a.name, c[i].name);
	}
}

static bool
granted(const char *method, const char *path, const char *query)
{
	struct rw_rbac_attr a;
	if (rw_rbac_attr_of(method, path, query, &a) != 0)
		return false;
	return rw_rbac_granted(&a, NULL);
}

/* Every request the controller makes (the path builders of kube.c's callers). */
static void
t_call_sites_granted(void)
{
	static const struct {
		const char *method, *path, *query;
	} c[] = {
	    /* informers, namespaced and cluster-wide */
	    {"GET", "/api/v1/namespaces/d/pods", "limit=500&labelSelector=ray.io%2Fnode-type"},
	    {"GET", "/api/v1/pods", "watch=1&resourceVersion=1&labelSelector=ray.io%2Fnode-type"},
	    {"GET", "/api/v1/services", "limit=500"},
	    {"GET", "/api/v1/namespaces/d/services", "watch=1&resourceVersion=1"},
	    {"GET", "/apis/ray.io/v1/rayclusters", "limit=500"},
	    {"GET", "/apis/ray.io/v1/namespaces/d/rayclusters", "watch=1"},
	    {"GET", "/apis/ray.io/v1/rayservices", "limit=500"},
	    {"GET", "/apis/ray.io/v1/rayservices", "watch=1"},
	    {"GET", "/apis/discovery.k8s.io/v1/endpointslices", "limit=500"},
	    {"GET", "/apis/discovery.k8s.io/v1/endpointslices", "watch=1"},
	    /* RayCluster reconciler */
	    {"POST", "/api/v1/namespaces/d/pods", NULL},
	    {"DELETE", "/api/v1/namespaces/d/pods/p", NULL},
	    {"PATCH", "/api/v1/namespaces/d/pods/p/status", NULL},
	    {"POST", "/api/v1/namespaces/d/services", NULL},
	    {"POST", "/api/v1/namespaces/d/secrets", NULL},
	    {"GET", "/api/v1/secrets",
	     "labelSelector=app.kubernetes.io%2Fcomponent%3Draywarden-agent-key&limit=500"},
	    {"GET", "/api/v1/secrets",
	     "labelSelector=app.kubernetes.io%2Fcomponent%3Draywarden-agent-key&watch=1"},
	    {"GET", "/api/v1/namespaces/d/secrets/c-raywarden-key", NULL},
	    {"PATCH", "/api/v1/namespaces/d/secrets/c-raywarden-key", NULL},
	    {"POST", "/api/v1/namespaces/d/serviceaccounts", NULL},
	    {"POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/d/roles", NULL},
	    {"POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/d/rolebindings", NULL},
	    {"PATCH", "/apis/ray.io/v1/namespaces/d/rayclusters/c", NULL},
	    {"PATCH", "/apis/ray.io/v1/namespaces/d/rayclusters/c/status", NULL},
	    {"PUT", "/apis/ray.io/v1/namespaces/d/rayclusters/c/status", NULL},
	    /* enableIngress: the Route probe, the Ingress or Route informer, the create */
	    {"GET", "/apis/route.openshift.io/v1/routes", "limit=1"},
	    {"GET", "/apis/route.openshift.io/v1/namespaces/d/routes", "limit=1"},
	    {"GET", "/apis/route.openshift.io/v1/namespaces/d/routes",
	     "watch=1&labelSelector=ray.io%2Fcluster"},
	    {"POST", "/apis/route.openshift.io/v1/namespaces/d/routes", NULL},
	    {"GET", "/apis/networking.k8s.io/v1/ingresses",
	     "limit=500&labelSelector=ray.io%2Fcluster"},
	    {"GET", "/apis/networking.k8s.io/v1/namespaces/d/ingresses", "watch=1"},
	    {"POST", "/apis/networking.k8s.io/v1/namespaces/d/ingresses", NULL},
	    /* RayService reconciler */
	    {"PATCH", "/api/v1/namespaces/d/pods/p", NULL},
	    {"PATCH", "/api/v1/namespaces/d/services/s", NULL},
	    {"DELETE", "/api/v1/namespaces/d/services/s", NULL},
	    {"POST", "/apis/ray.io/v1/namespaces/d/rayclusters", NULL},
	    {"PUT", "/apis/ray.io/v1/namespaces/d/rayclusters/c", NULL},
	    {"DELETE", "/apis/ray.io/v1/namespaces/d/rayclusters/c", NULL},
	    {"PATCH", "/apis/ray.io/v1/namespaces/d/rayservices/s", NULL},
	    {"PUT", "/apis/ray.io/v1/namespaces/d/rayservices/s/status", NULL},
	    /* events, leader election */
	    {"POST", "/apis/events.k8s.io/v1/namespaces/d/events", NULL},
	    {"PATCH", "/apis/events.k8s.io/v1/namespaces/d/events/e", NULL},
	    {"GET", "/apis/coordination.k8s.io/v1/namespaces/s/leases/l", NULL},
	    {"POST", "/apis/coordination.k8s.io/v1/namespaces/s/leases", NULL},
	    {"PUT", "/apis/coordination.k8s.io/v1/namespaces/s/leases/l", NULL},
	    /* --batch-scheduler PodGroups (podgroup.c) */
	    {"GET", "/apis/scheduling.volcano.sh/v1beta1/namespaces/d/podgroups/ray-c-pg", NULL},
	    {"POST", "/apis/scheduling.volcano.sh/v1beta1/namespaces/d/podgroups", NULL},
	    {"PATCH", "/apis/scheduling.volcano.sh/v1beta1/namespaces/d/podgroups/ray-c-pg", NULL},
	    {"DELETE", "/apis/scheduling.volcano.sh/v1beta1/namespaces/d/podgroups/ray-j-pg", NULL},
	    {"GET", "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/d/podgroups/c", NULL},
	    {"POST", "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/d/podgroups", NULL},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		bool ok = granted(c[i].method, c[i].path, c[i].query);
		if (!ok)
			fprintf(stderr, "  not granted: %s %s?%s\n", c[i].method, c[i].path,
				c[i].query ? c[i].query : "");
		CHECK(ok);
	}
}

/* Verbs the controller does not use stay refused (held-only rows included). */
static void
t_unused_refused(void)
{
	static const struct {
		const char *method, *path;
	} c[] = {
	    {"DELETE", "/api/v1/namespaces/d/secrets/s"},
	    {"DELETE", "/api/v1/namespaces/d/secrets"},
	    {"PUT", "/api/v1/namespaces/d/services/s"}, /* the switch is a patch */
	    {"GET", "/api/v1/namespaces/d/services/s"},
	    {"GET", "/api/v1/namespaces/d/pods/p"}, /* held for the autoscaler Role only */
	    {"PATCH", "/api/v1/namespaces/d/pods/p/resize"},
	    {"GET", "/apis/ray.io/v1/namespaces/d/rayclusters/c"},
	    {"PUT", "/apis/ray.io/v1/namespaces/d/rayclusters/c/finalizers"},
	    {"GET", "/apis/ray.io/v1/namespaces/d/rayjobs/j"},
	    {"PATCH", "/apis/batch/v1/namespaces/d/jobs/j"},
	    {"GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/d/roles"},
	    {"GET", "/apis/rbac.authorization.k8s.io/v1/rolebindings"},
	    {"GET", "/apis/coordination.k8s.io/v1/namespaces/s/leases"},
	    {"DELETE", "/apis/coordination.k8s.io/v1/namespaces/s/leases/l"},
	    {"DELETE", "/apis/ray.io/v1/namespaces/d/rayclusters"},
	    {"GET", "/api/v1/nodes"},
	    {"PUT", "/apis/networking.k8s.io/v1/namespaces/d/ingresses/i"}, /* created once */
	    {"PATCH", "/apis/route.openshift.io/v1/namespaces/d/routes/r"},
	    {"DELETE", "/apis/networking.k8s.io/v1/namespaces/d/ingresses/i"}, /* GC removes it */
	    {"GET", "/version"},
	    {"GET", "/api/v1/namespaces//pods"},
	    {"GET", "/apis/scheduling.volcano.sh/v1beta1/namespaces/d/podgroups"},
	    {"PUT", "/apis/scheduling.volcano.sh/v1beta1/namespaces/d/podgroups/p"},
	    {"PATCH", "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/d/podgroups/p"},
	    {"DELETE", "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/d/podgroups/p"},
	    {"GET", "/apis/scheduling.volcano.sh/v1beta1/queues/q"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		bool ok = granted(c[i].method, c[i].path, NULL);
		if (ok)
			fprintf(stderr, "  granted: %s %s\n", c[i].method, c[i].path);
		CHECK(!ok);
	}
}

static const char *const known_verbs[] = {"get",    "list",  "watch",  "create",
					  "update", "patch", "delete", "deletecollection"};

/* Rows sorted, verbs known and sorted, no verb granted twice, every rule explained. */
static void
t_table_shape(void)
{
	for (size_t i = 0; i < rw_rbac_ngrants; i++) {
		const struct rw_rbac_grant *g = &rw_rbac_grants[i];
		CHECK(g->why && strlen(g->why) > 20);
		if (i > 0) {
			const struct rw_rbac_grant *p = &rw_rbac_grants[i - 1];
			int o = (int)g->scope - (int)p->scope;
			if (o == 0)
				o = strcmp(g->group, p->group);
			if (o == 0)
				o = strcmp(g->resource, p->resource);
			CHECK(o >= 0);
		}
		char prev[32] = "";
		const char *s = g->verbs;
		while (*s) {
			size_t l = strcspn(s, " ");
			char v[32];
			CHECK(l > 0 && l < sizeof(v));
			snprintf(v, sizeof(v), "%.*s", (int)l, s);
			bool known = false;
			for (size_t k = 0; k < sizeof(known_verbs) / sizeof(known_verbs[0]); k++)
				known |= strcmp(v, known_verbs[k]) == 0;
			CHECK(known);
			CHECK(strcmp(prev, v) < 0);
			snprintf(prev, sizeof(prev), "%s", v);
			for (size_t j = 0; j < i; j++) {
				const struct rw_rbac_grant *h = &rw_rbac_grants[j];
				/* One role never grants a verb twice; separate roles may. */
				if (h->scope != g->scope || strcmp(h->group, g->group) ||
				    strcmp(h->resource, g->resource))
					continue;
				char pad[40];
				snprintf(pad, sizeof(pad), " %s ", v);
				char hv[256];
				snprintf(hv, sizeof(hv), " %s ", h->verbs);
				CHECK(strstr(hv, pad) == NULL);
			}
			s += l;
			while (*s == ' ')
				s++;
		}
	}
}

static char *
slurp(const char *rel)
{
	const char *src = getenv("RW_SOURCE_DIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", src ? src : ".", rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

/* The committed manifests are exactly what the table prints. */
static void
t_manifests_current(void)
{
	static const struct {
		enum rw_rbac_scope scope;
		const char *file;
	} m[] = {{RW_RBAC_CLUSTER, "manifests/rbac/cluster_role.yaml"},
		 {RW_RBAC_LEASE, "manifests/rbac/leader_election_role.yaml"},
		 {RW_RBAC_BATCH, "manifests/batch-scheduler/rbac.yaml"},
		 {RW_RBAC_WEBHOOK, "manifests/webhook/rbac.yaml"}};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		struct rw_buf b;
		rw_buf_init(&b, 1 << 20);
		CHECK_EQ_INT(rw_rbac_print(m[i].scope, "raywarden-system", &b), 0);
		char *have = slurp(m[i].file);
		CHECK(have != NULL);
		if (have && strcmp(have, rw_buf_cstr(&b)) != 0) {
			fprintf(stderr,
				"  %s differs from the grant table: regenerate it with "
				"raywarden-controller --print-rbac%s\n",
				m[i].file,
				m[i].scope == RW_RBAC_LEASE	? "=leader-election"
				: m[i].scope == RW_RBAC_BATCH	? "=batch-scheduler"
				: m[i].scope == RW_RBAC_WEBHOOK ? "=webhook"
								: "");
			CHECK(0);
		}
		/* Every printed line fits the project's 100 columns. */
		for (const char *l = rw_buf_cstr(&b); *l;) {
			size_t n = strcspn(l, "\n");
			CHECK(n <= 100);
			l += n + (l[n] == '\n');
		}
		free(have);
		rw_buf_fini(&b);
	}
}

/* ---- the kube client refuses locally ---- */

struct res {
	int done, in_call;
	long status;
	int err;
	char reason[64], message[512];
};

static int in_call;

static void
cb(const struct rw_kube_resp *r, void *ud)
{
	struct res *s = ud;
	s->done = 1;
	s->in_call = in_call;
	s->status = r->status;
	s->err = r->err;
	snprintf(s->reason, sizeof(s->reason), "%s", r->reason);
	snprintf(s->message, sizeof(s->message), "%s", r->message);
}

static int
no_data(const char *data, size_t len, void *ud)
{
	(void)data;
	(void)len;
	(void)ud;
	CHECK(0); /* a refused watch never streams */
	return 1;
}

static void
t_client_refuses(void)
{
	uv_loop_t loop;
	struct rw_kube *k;
	/* Nothing listens on the discard port: only a request actually sent gets there. */
	char server[] = "http://127.0.0.2:9";
	struct rw_kubecfg kc;
	memset(&kc, 0, sizeof(kc));
	kc.server = server;
	struct rw_kube_opts ko = {.qps = 0};
	struct res denied = {0}, stream = {0}, sent = {0};
	uv_loop_init(&loop);
	CHECK_EQ_INT(rw_kube_new(&loop, &kc, &ko, &k), 0);
	struct rw_kube_req del = {.method = "DELETE", .path = "/api/v1/namespaces/ns/secrets/s"};
	struct rw_kube_req watch = {.path = "/apis/apps/v1/deployments", .query = "watch=1"};
	struct rw_kube_req get = {.path = "/api/v1/namespaces/ns/secrets/s", .no_retry = 1};
	in_call = 1;
	CHECK_EQ_INT(rw_kube_request(k, &del, cb, &denied, NULL), 0);
	CHECK_EQ_INT(rw_kube_stream(k, &watch, no_data, cb, &stream, NULL), 0);
	CHECK_EQ_INT(rw_kube_request(k, &get, cb, &sent, NULL), 0);
	in_call = 0;
	CHECK_EQ_INT(denied.done, 0);
	for (int i = 0; i < 2000 && !(denied.done && stream.done && sent.done); i++)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK_EQ_INT(denied.done, 1);
	CHECK_EQ_INT(denied.in_call, 0);
	CHECK_EQ_INT(denied.status, 403);
	CHECK_EQ_INT(denied.err, 0);
	CHECK_EQ_STR(denied.reason, "Forbidden");
	CHECK(strstr(denied.message,
		     "secrets \"s\" is forbidden: raywarden-controller cannot "
		     "delete resource \"secrets\" in API group \"\" in the namespace "
		     "\"ns\"") != NULL);
	CHECK_EQ_INT(stream.status, 403);
	CHECK(strstr(stream.message,
		     "cannot watch resource \"deployments\" in API group \"apps\"") != NULL);
	/* The granted request went to the (absent) server. */
	CHECK_EQ_INT(sent.done, 1);
	CHECK(sent.err != 0 && sent.status != 403);
	rw_kube_free(k, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"request -> RBAC attributes", t_attr_of},
	    {"every call site is granted", t_call_sites_granted},
	    {"unused verbs are refused", t_unused_refused},
	    {"table shape", t_table_shape},
	    {"committed manifests match the table", t_manifests_current},
	    {"the client refuses an ungranted request with a local 403", t_client_refuses},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

/*
 * test_rc_ingress.c - the head Ingress and OpenShift Route builders against
 * KubeRay v1.5.0's common/ingress.go and common/route.go (and their tests
 * ingress_test.go, route_test.go): each row is a RayCluster and the whole
 * object KubeRay would create for it, compared as JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"
#include "rc_build.h"
#include "rwtest.h"

#define OWNER                                                                                      \
	"\"ownerReferences\":[{\"apiVersion\":\"ray.io/"                                           \
	"v1\",\"kind\":\"RayCluster\",\"name\":\"%s\","                                            \
	"\"uid\":\"uid-1\",\"controller\":true,\"blockOwnerDeletion\":true}]"

/* A RayCluster with the given name, namespace, metadata.annotations and head group members. */
static struct rw_raycluster *
cluster(const char *name, const char *ns, const char *annotations, const char *head_extra,
	const char *ports)
{
	char json[8192], err[256] = "";
	struct rw_raycluster *c = NULL;
	snprintf(json, sizeof(json),
		 "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"metadata\":{\"name\":"
		 "\"%s\",\"namespace\":\"%s\",\"uid\":\"uid-1\"%s%s},\"spec\":{\"headGroupSpec\":{"
		 "%s\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":[{\"name\":"
		 "\"ray-head\",\"image\":\"rayproject/ray\"%s%s}]}}}}}",
		 name, ns, annotations ? ",\"annotations\":" : "", annotations ? annotations : "",
		 head_extra ? head_extra : "", ports ? ",\"ports\":" : "", ports ? ports : "");
	CHECK_EQ_INT(rw_raycluster_parse(json, strlen(json), &c, err, sizeof(err)), 0);
	return c;
}

static void
check_json(const char *what, const char *got, size_t len, const char *want)
{
	bool same = got && rw_kube_json_equal(got, len, want, strlen(want));
	if (!same)
		fprintf(stderr, "  %s:\n    got  %s\n    want %s\n", what, got ? got : "(none)",
			want);
	CHECK(same);
}

struct row {
	const char *desc;
	const char *name, *ns, *annotations, *head_extra, *ports;
	const char *ingress; /* printf format with the owner's name for OWNER */
	const char *route;
};

#define LABELS(c, id)                                                                              \
	"\"labels\":{\"ray.io/cluster\":\"" c "\",\"ray.io/identifier\":\"" id "\","               \
	"\"app.kubernetes.io/name\":\"kuberay\",\"app.kubernetes.io/"                              \
	"created-by\":\"kuberay-operator\"}"

static const struct row rows[] = {
    {"ingress_test.go: class from the annotation, dashboard on the default port",
     "raycluster-sample", "default", "{\"kubernetes.io/ingress.class\":\"nginx\"}",
     "\"enableIngress\":true,", NULL,
     "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"Ingress\",\"metadata\":{\"name\":"
     "\"raycluster-sample-head-ingress\",\"namespace\":\"default\"," LABELS(
	 "raycluster-sample",
	 "raycluster-sample-head") "," OWNER "},"
				   "\"spec\":{\"ingressClassName\":\"nginx\","
				   "\"rules\":[{\"http\":{\"paths\":[{\"path\":"
				   "\"/raycluster-sample/(.*)\",\"pathType\":"
				   "\"Exact\",\"backend\":{\"service\":{\"name\":"
				   "\"raycluster-sample-head-svc\",\"port\":{"
				   "\"number\":8265}}}}]}}]}}",
     "{\"apiVersion\":\"route.openshift.io/v1\",\"kind\":\"Route\",\"metadata\":{\"name\":"
     "\"raycluster-sample-head-route\",\"namespace\":\"default\"," LABELS(
	 "raycluster-sample",
	 "raycluster-sample-head") ",\"annotations\":{\"kubernetes.io/"
				   "ingress.class\":\"nginx\"}," OWNER
				   "},\"spec\":{\"to\":{\"kind\":\"Service\",\"name\":"
				   "\"raycluster-sample-head-svc\",\"weight\":100},\"port\":{"
				   "\"targetPort\":8265},\"wildcardPolicy\":\"None\"}}"},
    {"ingress_test.go without a class: no ingressClassName; other annotations copied", "rc", "ns1",
     "{\"nginx.ingress.kubernetes.io/rewrite-target\":\"/$1\",\"team\":\"a b\"}",
     "\"enableIngress\":true,",
     "[{\"name\":\"gcs-server\",\"containerPort\":6379},{\"name\":\"dashboard\","
     "\"containerPort\":8266}]",
     "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"Ingress\",\"metadata\":{\"name\":"
     "\"rc-head-ingress\",\"namespace\":\"ns1\"," LABELS(
	 "rc",
	 "rc-head") ",\"annotations\":{\"nginx.ingress.kubernetes.io/rewrite-target\":\"/$1\","
		    "\"team\":\"a b\"}," OWNER
		    "},\"spec\":{\"rules\":[{\"http\":{\"paths\":[{\"path\":\"/rc/(.*)\","
		    "\"pathType\":\"Exact\",\"backend\":{\"service\":{\"name\":"
		    "\"rc-head-svc\",\"port\":{\"number\":8266}}}}]}}]}}",
     "{\"apiVersion\":\"route.openshift.io/v1\",\"kind\":\"Route\",\"metadata\":{\"name\":"
     "\"rc-head-route\",\"namespace\":\"ns1\"," LABELS(
	 "rc",
	 "rc-head") ",\"annotations\":{\"nginx.ingress.kubernetes.io/rewrite-target\":\"/$1\","
		    "\"team\":\"a b\"}," OWNER
		    "},\"spec\":{\"to\":{\"kind\":\"Service\",\"name\":\"rc-head-svc\",\"weight\":"
		    "100},\"port\":{\"targetPort\":8266},\"wildcardPolicy\":\"None\"}}"},
    {"custom headService name; ports without a dashboard: 8265; last dashboard port wins", "rc",
     "ns1", NULL, "\"enableIngress\":true,\"headService\":{\"metadata\":{\"name\":\"my-head\"}},",
     "[{\"name\":\"client\",\"containerPort\":10001}]",
     "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"Ingress\",\"metadata\":{\"name\":"
     "\"rc-head-ingress\",\"namespace\":\"ns1\"," LABELS(
	 "rc", "rc-head") "," OWNER "},\"spec\":{\"rules\":[{\"http\":{\"paths\":[{\"path\":"
			  "\"/rc/(.*)\",\"pathType\":\"Exact\",\"backend\":{\"service\":{"
			  "\"name\":\"my-head\",\"port\":{\"number\":8265}}}}]}}]}}",
     NULL},
    {"long names: CheckName keeps the last 50 characters of the Ingress name; the Route name "
     "is cut to 51 - len(namespace) from the front",
     "a23456789-123456789-123456789-123456789-12345", "namespace-of-20chars", NULL,
     "\"enableIngress\":true,",
     "[{\"name\":\"dashboard\",\"containerPort\":1},{\"name\":\"dashboard\",\"containerPort\":"
     "8267}]",
     "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"Ingress\",\"metadata\":{\"name\":"
     "\"r-123456789-123456789-123456789-12345-head-ingress\",\"namespace\":"
     "\"namespace-of-20chars\"," LABELS(
	 "a23456789-123456789-123456789-123456789-12345",
	 "a23456789-123456789-123456789-123456789-12345-head") "," OWNER
							       "},\"spec\":{\"rules\":[{\"http\":{"
							       "\"paths\":[{\"path\":"
							       "\"/"
							       "a23456789-123456789-123456789-"
							       "123456789-12345/"
							       "(.*)\",\"pathType\":\"Exact\","
							       "\"backend\":{\"service\":{\"name\":"
							       "\"r6789-123456789-123456789-"
							       "123456789-12345-head-svc\","
							       "\"port\":{\"number\":8267}}}"
							       "}]}}]}}",
     "{\"apiVersion\":\"route.openshift.io/v1\",\"kind\":\"Route\",\"metadata\":{\"name\":"
     "\"a23456789-123456789-123456789-1\",\"namespace\":\"namespace-of-20chars\"," LABELS(
	 "a23456789-123456789-123456789-123456789-12345",
	 "a23456789-123456789-123456789-123456789-12345-head") "," OWNER
							       "},\"spec\":{\"to\":{\"kind\":"
							       "\"Service\",\"name\":"
							       "\"r6789-123456789-123456789-"
							       "123456789-12345-head-svc\","
							       "\"weight\":100},\"port\":{"
							       "\"targetPort\":8267},"
							       "\"wildcardPolicy\":\"None\"}}"},
    {"a name starting with a digit after the cut becomes 'r...'",
     "x1234567890123456789012345678901234567890", "d", NULL, "\"enableIngress\":true,", NULL,
     "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"Ingress\",\"metadata\":{\"name\":"
     "\"r567890123456789012345678901234567890-head-ingress\",\"namespace\":\"d\"," LABELS(
	 "x1234567890123456789012345678901234567890",
	 "x1234567890123456789012345678901234567890-head") "," OWNER
							   "},\"spec\":{\"rules\":[{\"http\":{"
							   "\"paths\":[{\"path\":"
							   "\"/"
							   "x12345678901234567890123456789012345678"
							   "90/"
							   "(.*)\",\"pathType\":\"Exact\","
							   "\"backend\":"
							   "{\"service\":{\"name\":"
							   "\"x123456789012345678901234567890123456"
							   "7890-"
							   "head-svc\",\"port\":{\"number\":8265}}}"
							   "}]}}"
							   "]}}",
     NULL},
};

static void
t_builders(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct rw_raycluster *c =
		    cluster(r->name, r->ns, r->annotations, r->head_extra, r->ports);
		char want[8192];
		struct rw_buf b;
		fprintf(stderr, "  case %zu: %s\n", i, r->desc);
		CHECK(rw_raycluster_wants_ingress(c));
		rw_buf_init(&b, 1 << 20);
		CHECK_EQ_INT(rw_raycluster_build_ingress(c, &b), 0);
		snprintf(want, sizeof(want), r->ingress, r->name);
		check_json("ingress", b.data, b.len, want);
		if (r->route) {
			rw_buf_reset(&b);
			CHECK_EQ_INT(rw_raycluster_build_route(c, &b), 0);
			snprintf(want, sizeof(want), r->route, r->name);
			check_json("route", b.data, b.len, want);
		}
		rw_buf_fini(&b);
		rw_raycluster_free(c);
	}
}

static void
t_wants(void)
{
	static const struct {
		const char *head_extra;
		bool want;
	} cases[] = {
	    {NULL, false},
	    {"\"enableIngress\":false,", false},
	    {"\"enableIngress\":null,", false},
	    {"\"enableIngress\":true,", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_raycluster *c = cluster("rc", "d", NULL, cases[i].head_extra, NULL);
		CHECK_EQ_INT(rw_raycluster_wants_ingress(c), cases[i].want);
		rw_raycluster_free(c);
	}
}

static void
t_route_names(void)
{
	/* CheckRouteName: 51 - len(namespace) characters of <cluster>-head-route, then CheckName.
	 */
	static const struct {
		const char *name, *ns, *want;
	} cases[] = {
	    {"rc", "default", "rc-head-route"},
	    {"raycluster-sample", "a-namespace-of-thirty-characte", "raycluster-sample-hea"},
	    {"rc", "n23456789-123456789-123456789-123456789-123456789-1", "r"},
	    {"rc", "n23456789-123456789-123456789-123456789-123456789-123456789-12", "r"},
	    {"9rc", "d", "rrc-head-route"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_raycluster *c = cluster(cases[i].name, cases[i].ns, NULL, NULL, NULL);
		char out[80];
		rw_raycluster_route_name(c, out, sizeof(out));
		CHECK_EQ_STR(out, cases[i].want);
		rw_raycluster_free(c);
	}
}

static void
t_routes_or_ingresses(void)
{
	/* KubeRay's GetClusterType: os.Getenv(USE_INGRESS_ON_OPENSHIFT) == "true", exactly. */
	static const struct {
		const char *env;
		long status;
		bool probe, routes;
	} cases[] = {
	    {NULL, 200, true, true},	 {NULL, 404, true, false},    {NULL, 403, true, false},
	    {NULL, 0, true, false},	 {NULL, 503, true, false},    {"", 200, true, true},
	    {"false", 200, true, true},	 {"True", 200, true, true},   {"true ", 200, true, true},
	    {"true", 200, false, false}, {"true", 404, false, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ_INT(rw_raycluster_route_probe_needed(cases[i].env), cases[i].probe);
		CHECK_EQ_INT(rw_raycluster_use_routes(cases[i].env, cases[i].status),
			     cases[i].routes);
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"Ingress and Route objects", t_builders},
	    {"enableIngress", t_wants},
	    {"Route names (CheckRouteName)", t_route_names},
	    {"Routes or Ingresses (USE_INGRESS_ON_OPENSHIFT, the Route probe)",
	     t_routes_or_ingresses},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

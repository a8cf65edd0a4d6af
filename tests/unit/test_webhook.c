/*
 * test_webhook.c - the admission webhooks' pure parts: certificate making and
 * the renewal decision (wh_certs.c), AdmissionReview reading, the validation
 * decision that reuses the reconcilers' validators, the agent injection
 * patch built by the reconciler's own sidecar builder, and the answer
 * (wh_admission.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "rc_build.h"
#include "rc_validate.h"
#include "rj_model.h"
#include "rs_build.h"
#include "rw/base64.h"
#include "rw/json.h"
#include "rwtest.h"
#include "wh_admission.h"
#include "wh_certs.h"

/* A deterministic generator: the tests need keys, not secrets. */
static int
test_rng(void *ud, unsigned char *out, size_t len)
{
	uint64_t *s = ud;
	for (size_t i = 0; i < len; i++) {
		*s ^= *s << 13;
		*s ^= *s >> 7;
		*s ^= *s << 17;
		out[i] = (unsigned char)*s;
	}
	return 0;
}

static uint64_t seed = 0x9e3779b97f4a7c15ull;

#define T0 1800000000 /* a fixed "now" (2027) */
#define DAY 86400

static const char *const hosts[] = {"raywarden-webhook.raywarden-system.svc",
				    "raywarden-webhook.raywarden-system.svc.cluster.local",
				    "127.0.0.1"};

static void
t_cert_make(void)
{
	char *ca, *cak, *crt, *key, *ca2, *ca2k, err[256];
	struct rw_wh_cert_info i;
	CHECK_EQ_INT(rw_wh_cert_make("test-ca", NULL, 0, T0, T0 + 10 * DAY, NULL, NULL, test_rng,
				     &seed, &ca, &cak, err, sizeof(err)),
		     0);
	CHECK_EQ_INT(rw_wh_cert_make("test-ca2", NULL, 0, T0, T0 + 10 * DAY, NULL, NULL, test_rng,
				     &seed, &ca2, &ca2k, err, sizeof(err)),
		     0);
	CHECK_EQ_INT(rw_wh_cert_make(hosts[0], hosts, 3, T0, T0 + DAY, ca, cak, test_rng, &seed,
				     &crt, &key, err, sizeof(err)),
		     0);
	CHECK_EQ_INT(rw_wh_cert_info(ca, &i), 0);
	CHECK(i.is_ca);
	CHECK_EQ_INT(i.not_before, T0);
	CHECK_EQ_INT(i.not_after, T0 + 10 * DAY);
	CHECK_EQ_STR(i.subject, "CN=test-ca");
	CHECK_EQ_INT(rw_wh_cert_info(crt, &i), 0);
	CHECK(!i.is_ca);
	CHECK_EQ_INT(i.not_after, T0 + DAY);
	CHECK_EQ_STR(i.issuer, "CN=test-ca");
	CHECK(strstr(key, "BEGIN EC PRIVATE KEY") != NULL);
	for (int h = 0; h < 3; h++)
		CHECK(rw_wh_cert_has_host(crt, hosts[h]));
	CHECK(!rw_wh_cert_has_host(crt, "raywarden-webhook"));
	CHECK(!rw_wh_cert_has_host(crt, "127.0.0.2"));
	CHECK(rw_wh_cert_signed_by(crt, ca));
	CHECK(!rw_wh_cert_signed_by(crt, ca2));
	CHECK(rw_wh_cert_key_matches(crt, key));
	CHECK(!rw_wh_cert_key_matches(crt, cak));
	CHECK(!rw_wh_cert_key_matches("junk", key));
	CHECK_EQ_INT(rw_wh_cert_info("junk", &i), -EINVAL);
	/* A serving certificate from a CA key that is not the CA's is refused. */
	char *bad_crt = NULL, *bad_key = NULL;
	CHECK(rw_wh_cert_make("x", hosts, 1, T0, T0 + DAY, ca, "junk", test_rng, &seed, &bad_crt,
			      &bad_key, err, sizeof(err)) < 0);
	CHECK(bad_crt == NULL && err[0]);
	free(ca);
	free(cak);
	free(ca2);
	free(ca2k);
	free(crt);
	free(key);
}

static int
ncerts(const char *pem)
{
	int n = 0;
	for (const char *p = pem; (p = strstr(p, "BEGIN CERTIFICATE")); p++)
		n++;
	return n;
}

/* The life of the certificates, step by step, each step a case of the decision. */
static void
t_refresh_table(void)
{
	struct rw_wh_cert_policy pol = {
	    .ca_validity_s = 30 * DAY, .tls_validity_s = 3 * DAY, .hosts = hosts, .nhosts = 2};
	struct rw_wh_pem p = {0};
	char why[256], err[256];
	static const struct {
		int64_t at;	  /* seconds after T0 */
		int want;	  /* RW_WH_* bits */
		const char *why;  /* substring of why */
		int bundle_certs; /* CAs in the bundle afterwards */
	} steps[] = {
	    {0, RW_WH_NEW_CA | RW_WH_NEW_TLS, "CA made; serving certificate made", 1},
	    {1, 0, "", 1},
	    /* Dates are backdated by a hundredth of the life (at most an hour): due a little
	       before two thirds of the nominal life. */
	    {2 * DAY - 1000, 0, "", 1},
	    {2 * DAY + 10, RW_WH_NEW_TLS, "serving certificate renewed", 1},
	    {3 * DAY, 0, "", 1},
	    /* The CA at two thirds of its life: renewed; the serving certificate, signed by the
	       old one, is still trusted through the bundle. */
	    {20 * DAY + 10, RW_WH_NEW_CA | RW_WH_NEW_TLS, "CA renewed", 2},
	    {20 * DAY + 20, 0, "", 2},
	    /* The old CA expires: dropped. */
	    {30 * DAY + 1, RW_WH_DROPPED_PREV | RW_WH_NEW_TLS, "previous CA dropped", 1},
	};
	char *first_ca = NULL;
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		int rv = rw_wh_certs_refresh(&p, &pol, T0 + steps[s].at, test_rng, &seed, why,
					     sizeof(why), err, sizeof(err));
		if (rv != steps[s].want || !strstr(why, steps[s].why))
			fprintf(stderr, "  step %zu: got %d (%s), want %d (%s)\n", s, rv, why,
				steps[s].want, steps[s].why);
		CHECK_EQ_INT(rv, steps[s].want);
		CHECK(strstr(why, steps[s].why) != NULL);
		struct rw_buf b;
		rw_buf_init(&b, 1 << 16);
		CHECK_EQ_INT(rw_wh_certs_bundle(&p, &b), 0);
		CHECK_EQ_INT(ncerts(rw_buf_cstr(&b)), steps[s].bundle_certs);
		rw_buf_fini(&b);
		/* After every step the serving certificate is usable and trusted. */
		CHECK(rw_wh_cert_key_matches(p.tls_crt, p.tls_key));
		CHECK(rw_wh_cert_signed_by(p.tls_crt, p.ca_crt) ||
		      (p.ca_prev && rw_wh_cert_signed_by(p.tls_crt, p.ca_prev)));
		CHECK(rw_wh_certs_next_due(&p) > T0 + steps[s].at);
		if (s == 0)
			first_ca = strdup(p.ca_crt);
		if (s == 5)
			CHECK(p.ca_prev && first_ca && strcmp(p.ca_prev, first_ca) == 0);
	}
	free(first_ca);

	/* Repairs, each from a good state. */
	int64_t now = T0 + 30 * DAY + 2;
	CHECK_EQ_INT(
	    rw_wh_certs_refresh(&p, &pol, now, test_rng, &seed, why, sizeof(why), err, sizeof(err)),
	    0);
	/* A new host name wanted. */
	pol.nhosts = 3;
	CHECK_EQ_INT(
	    rw_wh_certs_refresh(&p, &pol, now, test_rng, &seed, why, sizeof(why), err, sizeof(err)),
	    RW_WH_NEW_TLS);
	CHECK_EQ_STR(why, "serving certificate lacks a host name");
	CHECK(rw_wh_cert_has_host(p.tls_crt, "127.0.0.1"));
	/* The serving key replaced by another key. */
	char *k = strdup(p.ca_key);
	free(p.tls_key);
	p.tls_key = k;
	CHECK_EQ_INT(
	    rw_wh_certs_refresh(&p, &pol, now, test_rng, &seed, why, sizeof(why), err, sizeof(err)),
	    RW_WH_NEW_TLS);
	CHECK_EQ_STR(why, "serving certificate does not match its key");
	/* The CA unreadable: a new CA, nothing kept of the old, the serving certificate anew. */
	free(p.ca_crt);
	p.ca_crt = strdup("not a certificate");
	CHECK_EQ_INT(
	    rw_wh_certs_refresh(&p, &pol, now, test_rng, &seed, why, sizeof(why), err, sizeof(err)),
	    RW_WH_NEW_CA | RW_WH_NEW_TLS);
	CHECK(p.ca_prev == NULL);
	CHECK(strstr(why, "serving certificate signed by neither CA") != NULL);
	/* A serving certificate never outlives its CA. */
	struct rw_wh_cert_info ci, ti;
	pol.tls_validity_s = 60 * DAY;
	free(p.tls_crt);
	p.tls_crt = NULL;
	CHECK_EQ_INT(
	    rw_wh_certs_refresh(&p, &pol, now, test_rng, &seed, why, sizeof(why), err, sizeof(err)),
	    RW_WH_NEW_TLS);
	CHECK_EQ_INT(rw_wh_cert_info(p.ca_crt, &ci), 0);
	CHECK_EQ_INT(rw_wh_cert_info(p.tls_crt, &ti), 0);
	CHECK(ti.not_after <= ci.not_after);
	struct rw_wh_pem copy;
	CHECK_EQ_INT(rw_wh_pem_copy(&copy, &p), 0);
	CHECK_EQ_STR(copy.tls_crt, p.tls_crt);
	rw_wh_pem_fini(&copy);
	rw_wh_pem_fini(&p);
}

/* ---- AdmissionReview ---- */

#define REVIEW(req)                                                                                \
	"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":" req "}"

static void
t_parse_table(void)
{
	static const struct {
		const char *body;
		int rv;
		const char *uid, *kind, *op;
		int has_object, has_old;
	} cases[] = {
	    {REVIEW("{\"uid\":\"u1\",\"kind\":{\"group\":\"ray.io\",\"version\":\"v1\",\"kind\":"
		    "\"RayCluster\"},\"operation\":\"CREATE\",\"namespace\":\"d\",\"name\":\"n\","
		    "\"object\":{\"a\":1},\"oldObject\":null}"),
	     0, "u1", "RayCluster", "CREATE", 1, 0},
	    {REVIEW("{\"uid\":\"u2\",\"kind\":{\"kind\":\"Pod\"},\"operation\":\"UPDATE\","
		    "\"object\":{},\"oldObject\":{}}"),
	     0, "u2", "Pod", "UPDATE", 1, 1},
	    {REVIEW("{\"uid\":\"\"}"), -EINVAL, NULL, NULL, NULL, 0, 0},
	    {REVIEW("{\"kind\":{}}"), -EINVAL, NULL, NULL, NULL, 0, 0},
	    {REVIEW("{\"uid\":7}"), -EINVAL, NULL, NULL, NULL, 0, 0},
	    {REVIEW("[]"), -EINVAL, NULL, NULL, NULL, 0, 0},
	    {"{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\","
	     "\"request\":{\"uid\":\"u\"}}",
	     -EINVAL, NULL, NULL, NULL, 0, 0},
	    {"{\"apiVersion\":\"admission.k8s.io/"
	     "v1\",\"kind\":\"Other\",\"request\":{\"uid\":\"u\"}}",
	     -EINVAL, NULL, NULL, NULL, 0, 0},
	    {"not json", -EINVAL, NULL, NULL, NULL, 0, 0},
	    {"", -EINVAL, NULL, NULL, NULL, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_wh_review r;
		char err[256] = "";
		int rv =
		    rw_wh_review_parse(cases[i].body, strlen(cases[i].body), &r, err, sizeof(err));
		if (rv != cases[i].rv)
			fprintf(stderr, "  case %zu: %d (%s)\n", i, rv, err);
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv != 0) {
			CHECK(err[0] != '\0');
			continue;
		}
		CHECK_EQ_STR(r.uid, cases[i].uid);
		CHECK_EQ_STR(r.kind, cases[i].kind);
		CHECK_EQ_STR(r.operation, cases[i].op);
		CHECK_EQ_INT(r.object >= 0, cases[i].has_object);
		CHECK_EQ_INT(r.old_object >= 0, cases[i].has_old);
		rw_wh_review_fini(&r);
	}
	/* Larger than the cap: refused before parsing. */
	struct rw_wh_review r;
	char err[128];
	CHECK_EQ_INT(rw_wh_review_parse("{}", RW_WH_MAX_REVIEW + 1, &r, err, sizeof(err)),
		     -EMSGSIZE);
}

#define HEADSPEC                                                                                   \
	"\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"h\",\"image\":"    \
	"\"ray\"}]}}}"
#define GROUP(n)                                                                                   \
	"{\"groupName\":\"" n                                                                      \
	"\",\"replicas\":1,\"minReplicas\":0,\"maxReplicas\":2,\"template\":"                      \
	"{\"spec\":{\"containers\":[{\"name\":\"w\",\"image\":\"ray\"}]}}}"
#define RC_GOOD                                                                                    \
	"{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"metadata\":{\"name\":\"c\","      \
	"\"namespace\":\"d\"},\"spec\":{" HEADSPEC ",\"workerGroupSpecs\":[" GROUP("g") "]}}"
#define RC_BAD                                                                                     \
	"{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"metadata\":{\"name\":\"c\","      \
	"\"namespace\":\"d\"},\"spec\":{" HEADSPEC                                                 \
	",\"workerGroupSpecs\":[" GROUP("g") "," GROUP("g") "]}}"
#define RC_BAD_ELSEWHERE                                                                           \
	"{\"metadata\":{\"name\":\"c\"},\"spec\":{\"managedBy\":\"kueue.x-k8s.io/"                 \
	"multikueue\"," HEADSPEC ",\"workerGroupSpecs\":[" GROUP("g") "," GROUP("g") "]}}"
#define RJ_BAD                                                                                     \
	"{\"metadata\":{\"name\":\"j\",\"namespace\":\"d\"},\"spec\":{\"entrypoint\":\"x\","       \
	"\"shutdownAfterJobFinishes\":false,\"ttlSecondsAfterFinished\":10,\"rayClusterSpec\":"    \
	"{" HEADSPEC "}}}"
#define RS_BAD                                                                                     \
	"{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\",\"annotations\":{\"ray.io/"             \
	"initializing-timeout\":\"-5s\"}},\"spec\":{\"rayClusterConfig\":{" HEADSPEC "}}}"

static char *
review(const char *kind, const char *op, const char *obj, const char *old)
{
	char *s = malloc(65536);
	snprintf(
	    s, 65536,
	    REVIEW("{\"uid\":\"u-%s\",\"kind\":{\"group\":\"%s\",\"version\":\"v1\",\"kind\":"
		   "\"%s\"},\"operation\":\"%s\",\"namespace\":\"d\",\"name\":\"n\",\"object\":%"
		   "s,\"oldObject\":%s}"),
	    op, strcmp(kind, "Pod") ? "ray.io" : "", kind, op, obj, old ? old : "null");
	return s;
}

/* What the reconciler's validator says of obj (the message of its first Event). */
static void
reconciler_message(const char *kind, const char *obj, char *out, size_t n)
{
	char err[128];
	out[0] = '\0';
	if (!strcmp(kind, "RayCluster")) {
		struct rw_raycluster *c;
		struct rw_raycluster_verrs ve;
		if (rw_raycluster_parse(obj, strlen(obj), &c, err, sizeof(err)) == 0) {
			if (rw_raycluster_validate(c, &ve) > 0)
				snprintf(out, n, "%s", ve.e[0].msg);
			rw_raycluster_free(c);
		}
	} else if (!strcmp(kind, "RayJob")) {
		struct rw_rayjob *j;
		struct rw_rayjob_verr ve;
		if (rw_rayjob_parse(obj, strlen(obj), &j, err, sizeof(err)) == 0) {
			if (rw_rayjob_validate(j, &ve) > 0)
				snprintf(out, n, "%s", ve.msg);
			rw_rayjob_free(j);
		}
	} else if (!strcmp(kind, "RayService")) {
		struct rw_rayservice *rs;
		struct rw_rayservice_verr ve;
		if (rw_rayservice_parse(obj, strlen(obj), &rs, err, sizeof(err)) == 0) {
			if (rw_rayservice_validate(rs, &ve) > 0)
				snprintf(out, n, "%s", ve.msg);
			rw_rayservice_free(rs);
		}
	}
}

static void
t_validate_table(void)
{
	static const struct {
		const char *kind, *op, *obj, *old;
		bool allowed;
		const char *phrase; /* in the refusal */
	} cases[] = {
	    {"RayCluster", "CREATE", RC_GOOD, NULL, true, NULL},
	    {"RayCluster", "CREATE", RC_BAD, NULL, false, "worker group names must be unique"},
	    /* A spec change to a bad spec is refused; metadata-only updates of a bad object pass.
	     */
	    {"RayCluster", "UPDATE", RC_BAD, RC_GOOD, false, "worker group names must be unique"},
	    {"RayCluster", "UPDATE", RC_BAD, RC_BAD, true, NULL},
	    {"RayCluster", "DELETE", RC_BAD, NULL, true, NULL},
	    {"RayCluster", "CREATE", RC_BAD_ELSEWHERE, NULL, true, NULL},
	    {"RayJob", "CREATE", RJ_BAD, NULL, false, "cannot have TTLSecondsAfterFinished"},
	    {"RayService", "CREATE", RS_BAD, NULL, false, "must be a positive duration"},
	    {"Pod", "CREATE", RC_BAD, NULL, true, NULL},
	    {"RayCluster", "CREATE", "[1]", NULL, true, NULL}, /* not an object: nothing to check */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *body = review(cases[i].kind, cases[i].op, cases[i].obj, cases[i].old);
		struct rw_wh_review r;
		struct rw_wh_verdict v;
		char err[256], want[2048];
		CHECK_EQ_INT(rw_wh_review_parse(body, strlen(body), &r, err, sizeof(err)), 0);
		CHECK_EQ_INT(rw_wh_validate(&r, &v), 0);
		if (v.allowed != cases[i].allowed)
			fprintf(stderr, "  case %zu: allowed %d: %s\n", i, v.allowed, v.msg);
		CHECK_EQ_INT(v.allowed, cases[i].allowed);
		if (!cases[i].allowed) {
			CHECK(strstr(v.msg, cases[i].phrase) != NULL);
			CHECK_EQ_INT(v.code, 422);
			/* The very message the reconciler's Event carries. */
			reconciler_message(cases[i].kind, cases[i].obj, want, sizeof(want));
			CHECK(want[0] && strncmp(v.msg, want, strlen(want)) == 0);
		}
		rw_wh_review_fini(&r);
		free(body);
	}
}

/* A pod as KubeRay v1.5.0 writes it (trimmed): labels, the Ray container with its exec probe. */
#define POD(labels, containers)                                                                    \
	"{\"metadata\":{\"generateName\":\"c-g-worker-\",\"namespace\":\"d\",\"labels\":{" labels  \
	"}},\"spec\":{\"containers\":" containers ",\"volumes\":[{\"name\":\"shared-mem\","        \
	"\"emptyDir\":{\"medium\":\"Memory\"}}]}}"
#define RAY_C                                                                                      \
	"[{\"name\":\"ray-worker\",\"image\":\"rayproject/ray:2.52.0\",\"command\":[\"/bin/"       \
	"bash\","                                                                                  \
	"\"-c\",\"--\"],\"args\":[\"ulimit -n 65536; ray start --address=c-head-svc:6379 "         \
	"--dashboard-agent-listen-port=52366 "                                                     \
	"--block\"],\"readinessProbe\":{\"exec\":{\"command\":"                                    \
	"[\"bash\",\"-c\",\"wget -T 2 -q -O- "                                                     \
	"http://localhost:52366/api/local_raylet_healthz\"]}}}]"
#define WORKER_L "\"ray.io/cluster\":\"c\",\"ray.io/node-type\":\"worker\",\"ray.io/group\":\"g\""
#define HEAD_RS_L                                                                                  \
	"\"ray.io/cluster\":\"c\",\"ray.io/node-type\":\"head\",\"ray.io/originated-from-crd\":"   \
	"\"RayService\""

/* Apply the webhook's patch (whole-member "add"s under /spec, the only ops it writes). */
static struct rw_doc_node *
apply_inject(const char *pod, const struct rw_buf *patch)
{
	struct rw_doc_node *d = NULL, *p = NULL;
	CHECK_EQ_INT(rw_doc_parse(pod, strlen(pod), &d, NULL, 0), 0);
	CHECK_EQ_INT(rw_doc_parse(patch->data, patch->len, &p, NULL, 0), 0);
	CHECK(p && p->type == RW_DOC_ARR);
	for (int i = 0; p && i < p->n; i++) {
		const char *path = rw_doc_gets(p->kids[i], "path");
		CHECK_EQ_STR(rw_doc_gets(p->kids[i], "op"), "add");
		CHECK(path && strncmp(path, "/spec/", 6) == 0 && !strchr(path + 6, '/'));
		rw_doc_set(rw_doc_get(d, "spec"), path + 6,
			   rw_doc_clone(rw_doc_get(p->kids[i], "value")));
	}
	rw_doc_free(p);
	return d;
}

static const char *
env_of(const struct rw_doc_node *c, const char *name)
{
	const struct rw_doc_node *env = rw_doc_get(c, "env");
	for (int i = 0; env && i < env->n; i++)
		if (!strcmp(rw_doc_gets(env->kids[i], "name"), name))
			return rw_doc_gets(env->kids[i], "value");
	return NULL;
}

static void
t_inject_table(void)
{
	static const struct {
		const char *kind, *op, *obj;
		bool hub;	     /* the controller runs the hub: key volume and gate */
		bool patched;	     /* a patch comes back */
		const char *node;    /* RAYWARDEN_NODE_TYPE */
		const char *service; /* RAYWARDEN_RAYSERVICE */
		const char *raylet;  /* RAYWARDEN_RAYLET_PORT */
	} cases[] = {
	    {"Pod", "CREATE", POD(WORKER_L, RAY_C), true, true, "worker", "false", "52366"},
	    {"Pod", "CREATE", POD(HEAD_RS_L, "[{\"name\":\"ray-head\",\"image\":\"r\"}]"), true,
	     true, "head", "true", "52365"},
	    /* Without a hub the agent runs standalone: no key volume, no gate. */
	    {"Pod", "CREATE", POD(WORKER_L, RAY_C), false, true, "worker", "false", "52366"},
	    /* Already has the agent (raywarden's own pod, or injected before). */
	    {"Pod", "CREATE",
	     POD(WORKER_L,
		 "[{\"name\":\"ray-worker\",\"image\":\"r\"},{\"name\":\"raywarden-agent\"}]"),
	     true, false, NULL, NULL, NULL},
	    {"Pod", "CREATE", POD("\"ray.io/node-type\":\"worker\"", RAY_C), true, false, NULL,
	     NULL, NULL},
	    {"Pod", "CREATE",
	     POD("\"ray.io/cluster\":\"c\",\"ray.io/node-type\":\"redis-cleanup\"", RAY_C), true,
	     false, NULL, NULL, NULL},
	    {"Pod", "CREATE", POD(WORKER_L, "[]"), true, false, NULL, NULL, NULL},
	    {"Pod", "CREATE", POD(WORKER_L, "{}"), true, false, NULL, NULL, NULL},
	    {"Pod", "UPDATE", POD(WORKER_L, RAY_C), true, false, NULL, NULL, NULL},
	    {"RayCluster", "CREATE", POD(WORKER_L, RAY_C), true, false, NULL, NULL, NULL},
	    {"Pod", "CREATE", "[1]", true, false, NULL, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *body = review(cases[i].kind, cases[i].op, cases[i].obj, NULL);
		struct rw_raycluster_opts o;
		struct rw_wh_review r;
		struct rw_wh_verdict v;
		char err[256];
		rw_raycluster_opts_default(&o);
		o.controller_addr = cases[i].hub ? "tcp://raywarden-controller.rs.svc:8478" : NULL;
		o.readiness_gate = cases[i].hub;
		CHECK_EQ_INT(rw_wh_review_parse(body, strlen(body), &r, err, sizeof(err)), 0);
		CHECK_EQ_INT(rw_wh_inject(&r, &o, &v), 0);
		CHECK(v.allowed);
		if ((v.patch != NULL) != cases[i].patched)
			fprintf(stderr, "  case %zu: patch %s\n", i, v.patch ? "made" : "none");
		CHECK_EQ_INT(v.patch != NULL, cases[i].patched);
		if (v.patch) {
			struct rw_doc_node *pod = apply_inject(cases[i].obj, v.patch);
			const struct rw_doc_node *spec = rw_doc_get(pod, "spec");
			const struct rw_doc_node *cs = rw_doc_get(spec, "containers");
			const struct rw_doc_node *vols = rw_doc_get(spec, "volumes");
			const struct rw_doc_node *gates = rw_doc_get(spec, "readinessGates");
			const struct rw_doc_node *agent = rw_doc_at(cs, 1);
			CHECK_EQ_INT(cs->n, 2);
			CHECK_EQ_STR(rw_doc_gets(agent, "name"), RW_RAYCLUSTER_AGENT_CONTAINER);
			CHECK_EQ_STR(env_of(agent, "RAYWARDEN_NODE_TYPE"), cases[i].node);
			CHECK_EQ_STR(env_of(agent, "RAYWARDEN_RAYSERVICE"), cases[i].service);
			CHECK_EQ_STR(env_of(agent, "RAYWARDEN_RAYLET_PORT"), cases[i].raylet);
			/* KubeRay's Ray container and volumes are kept as they were. */
			CHECK(rw_doc_path(rw_doc_at(cs, 0), "readinessProbe.exec") != NULL ||
			      !strstr(cases[i].obj, "readinessProbe"));
			CHECK(rw_doc_get(rw_doc_at(cs, 0), "livenessProbe") == NULL);
			CHECK_EQ_STR(rw_doc_gets(rw_doc_at(vols, 0), "name"), "shared-mem");
			if (cases[i].hub) {
				CHECK_EQ_STR(env_of(agent, "RAYWARDEN_CONTROLLER"),
					     "tcp://raywarden-controller.rs.svc:8478");
				CHECK_EQ_INT(vols->n, 2);
				CHECK_EQ_STR(rw_doc_gets(rw_doc_get(rw_doc_at(vols, 1), "secret"),
							 "secretName"),
					     "c-raywarden-key");
				CHECK(gates && gates->n == 1);
				CHECK_EQ_STR(rw_doc_gets(rw_doc_at(gates, 0), "conditionType"),
					     RW_RAYCLUSTER_AGENT_GATE);
			} else {
				CHECK(env_of(agent, "RAYWARDEN_CONTROLLER") == NULL);
				CHECK_EQ_INT(vols->n, 1);
				CHECK(gates == NULL);
			}
			rw_doc_free(pod);
		}
		rw_wh_verdict_fini(&v);
		rw_wh_review_fini(&r);
		free(body);
	}
}

/* --no-agent-injection: the webhook injects nothing either. */
static void
t_inject_off(void)
{
	char *body = review("Pod", "CREATE", POD(WORKER_L, RAY_C), NULL);
	struct rw_raycluster_opts o;
	struct rw_wh_review r;
	struct rw_wh_verdict v;
	char err[256];
	rw_raycluster_opts_default(&o);
	o.agent = false;
	CHECK_EQ_INT(rw_wh_review_parse(body, strlen(body), &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(rw_wh_inject(&r, &o, &v), 0);
	CHECK(v.allowed && v.patch == NULL);
	rw_wh_review_fini(&r);
	free(body);
}

static void
t_answer(void)
{
	struct rw_buf b, patch;
	struct rw_json j;
	struct rw_wh_verdict v = {.allowed = false, .code = 422, .msg = "bad \"spec\""};
	char s[256];
	int64_t code;
	bool allowed = true;
	rw_buf_init(&b, 1 << 16);
	CHECK_EQ_INT(rw_wh_review_answer(&b, "u-1", &v), 0);
	CHECK_EQ_INT(rw_json_parse(&j, b.data, b.len, 1000, NULL, 0), 0);
	CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "apiVersion"), "admission.k8s.io/v1"));
	CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "kind"), "AdmissionReview"));
	CHECK(rw_json_streq(&j, rw_json_path(&j, 0, "response.uid"), "u-1"));
	CHECK_EQ_INT(rw_json_bool(&j, rw_json_path(&j, 0, "response.allowed"), &allowed), 0);
	CHECK(!allowed);
	CHECK_EQ_INT(rw_json_int(&j, rw_json_path(&j, 0, "response.status.code"), &code), 0);
	CHECK_EQ_INT(code, 422);
	CHECK(rw_json_str(&j, rw_json_path(&j, 0, "response.status.message"), s, sizeof(s)) > 0);
	CHECK_EQ_STR(s, "bad \"spec\"");
	rw_json_fini(&j);

	/* Admitted with a patch: base64 JSONPatch. */
	rw_buf_reset(&b);
	rw_buf_init(&patch, 1024);
	rw_buf_puts(&patch, "[{\"op\":\"add\",\"path\":\"/x\",\"value\":1}]");
	v = (struct rw_wh_verdict){.allowed = true, .patch = &patch};
	CHECK_EQ_INT(rw_wh_review_answer(&b, "u-2", &v), 0);
	CHECK_EQ_INT(rw_json_parse(&j, b.data, b.len, 1000, NULL, 0), 0);
	CHECK(rw_json_streq(&j, rw_json_path(&j, 0, "response.patchType"), "JSONPatch"));
	CHECK(rw_json_get(&j, rw_json_get(&j, 0, "response"), "status") < 0);
	CHECK(rw_json_str(&j, rw_json_path(&j, 0, "response.patch"), s, sizeof(s)) > 0);
	unsigned char dec[256];
	long n = rw_base64_decode(s, strlen(s), dec, sizeof(dec));
	CHECK(n == (long)patch.len && memcmp(dec, patch.data, patch.len) == 0);
	rw_json_fini(&j);
	rw_buf_fini(&patch);
	rw_buf_fini(&b);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"certificates: CA, serving certificate, names, chain, key", t_cert_make},
	    {"certificates: renewal and rotation, step by step", t_refresh_table},
	    {"AdmissionReview: reading", t_parse_table},
	    {"validation: the reconcilers' rules and messages", t_validate_table},
	    {"agent injection: which pods, and the patch", t_inject_table},
	    {"agent injection: off with --no-agent-injection", t_inject_off},
	    {"AdmissionReview: answers", t_answer},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

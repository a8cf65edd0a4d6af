/*
 * test_rs_build.c - RayService validation (KubeRay's messages and event
 * reasons), serveConfigV2 -> JSON and hash, cluster names, the RayCluster
 * built for a RayService, the spec hash (KubeRay's
 * TestGenerateHashWithoutReplicasAndWorkersToDelete), the upgrade decision
 * (TestIsZeroDowntimeUpgradeEnabled, shouldUpdateCluster,
 * shouldPrepareNewCluster) and the RayService services
 * (TestBuildServeServiceForRayService and _WithoutServePort).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rs_fixture.h"
#include "rw/wire.h"

#define P(...) ((const char *const[]){__VA_ARGS__})
#define NP(...) (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *) / 2)

static struct rw_doc_node *
parse_node(const char *s, size_t n)
{
	struct rw_doc_node *t = NULL;
	CHECK_EQ_INT(rw_doc_parse(s, n, &t, NULL, 0), 0);
	return t;
}

static struct rw_doc_node *
pn(const char *s)
{
	return parse_node(s, strlen(s));
}

static void
t_parse(void)
{
	struct rw_rayservice *rs = rs_make(NULL, 0);
	struct rw_rayservice *bad = NULL;
	CHECK_EQ_STR(rs->obj.name, "rayservice-sample");
	CHECK_EQ_STR(rs->obj.ns, "default");
	CHECK_EQ_INT(rs->obj.generation, 2);
	CHECK(rs->cfg != NULL);
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "");
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "");
	CHECK(!rw_rayservice_exclude_head(rs));
	CHECK_EQ_INT(rw_rayservice_deletion_delay_s(rs), 60);
	rw_rayservice_free(rs);
	const char *const p[] = {
	    "spec|rayClusterDeletionDelaySeconds",
	    "5",
	    "spec|excludeHeadPodFromServeSvc",
	    "true",
	    "status",
	    "{\"activeServiceStatus\":{\"rayClusterName\":\"a\"},"
	    "\"pendingServiceStatus\":{\"rayClusterName\":\"b\"},\"conditions\":"
	    "[{\"type\":\"UpgradeInProgress\",\"status\":\"True\"}]}"};
	rs = rs_make(p, 3);
	CHECK_EQ_INT(rw_rayservice_deletion_delay_s(rs), 5);
	CHECK(rw_rayservice_exclude_head(rs));
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "a");
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "b");
	CHECK(rw_rayservice_cond_true(rs, "UpgradeInProgress"));
	CHECK(!rw_rayservice_cond_true(rs, "Ready"));
	rw_rayservice_free(rs);
	CHECK_EQ_INT(rw_rayservice_parse("[1]", 3, &bad, NULL, 0), -EINVAL);
	CHECK_EQ_INT(rw_rayservice_parse("{", 1, &bad, NULL, 0), -EINVAL);
	CHECK(bad == NULL);
	rw_rayservice_free(NULL);
}

static void
t_validate(void)
{
	static const struct {
		const char *path, *value;
		const char *reason; /* NULL: valid */
		const char *msg;    /* exact message, or prefix when ending in '*' */
	} cases[] = {
	    {"metadata|note", "1", NULL, NULL},
	    {"metadata|name", "\"a23456789012345678901234567890123456789012345678\"",
	     "InvalidRayServiceMetadata",
	     "The RayService metadata is invalid: RayService name should be no more than 47 "
	     "characters"},
	    {"metadata|name", "\"a2345678901234567890123456789012345678901234567\"", NULL, NULL},
	    {"metadata|name", "\"Rayservice\"", "InvalidRayServiceMetadata",
	     "The RayService metadata is invalid: RayService name should be a valid DNS1035 label: "
	     "[a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
	     "with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',"
	     "  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]"},
	    {"metadata|name", "\"1rs\"", "InvalidRayServiceMetadata", "*"},
	    {"metadata|annotations|ray.io/initializing-timeout", "\"5m\"", NULL, NULL},
	    {"metadata|annotations|ray.io/initializing-timeout", "\"300\"", NULL, NULL},
	    {"metadata|annotations|ray.io/initializing-timeout", "\"1h30m\"", NULL, NULL},
	    {"metadata|annotations|ray.io/initializing-timeout", "\"0\"",
	     "InvalidRayServiceMetadata",
	     "The RayService metadata is invalid: RayService annotations is invalid: annotation "
	     "ray.io/initializing-timeout must be a positive duration, got: 0"},
	    {"metadata|annotations|ray.io/initializing-timeout", "\"-5\"",
	     "InvalidRayServiceMetadata",
	     "The RayService metadata is invalid: RayService annotations is invalid: annotation "
	     "ray.io/initializing-timeout must be a positive integer (seconds), got: -5"},
	    {"metadata|annotations|ray.io/initializing-timeout", "\"soon\"",
	     "InvalidRayServiceMetadata",
	     "The RayService metadata is invalid: RayService annotations is invalid: annotation "
	     "ray.io/initializing-timeout has invalid format: soon. Expected Go duration format "
	     "(e.g., '5m', '1h') or positive integer seconds"},
	    {"spec|rayClusterConfig|authOptions", "{\"enableK8sTokenAuth\":true}",
	     "InvalidRayServiceSpec",
	     "The RayService spec is invalid: K8s token auth mode is currently not supported for "
	     "RayService"},
	    {"spec|rayClusterConfig|headGroupSpec|template|spec|containers", "[]",
	     "InvalidRayServiceSpec",
	     "The RayService spec is invalid: headGroupSpec should have at least one container"},
	    {"spec|rayClusterConfig", "-", "InvalidRayServiceSpec",
	     "The RayService spec is invalid: headGroupSpec should have at least one container"},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|minReplicas", "-", "InvalidRayServiceSpec",
	     "The RayService spec is invalid: worker group small-group must set both minReplicas "
	     "and maxReplicas when autoscaling is disabled"},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|replicas", "-1", "InvalidRayServiceSpec",
	     "The RayService spec is invalid: worker group small-group has negative replicas -1"},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|maxReplicas", "-1", "InvalidRayServiceSpec",
	     "The RayService spec is invalid: worker group small-group has negative maxReplicas "
	     "-1"},
	    {"spec|rayClusterConfig|workerGroupSpecs",
	     "[{\"groupName\":\"g\",\"minReplicas\":0,\"maxReplicas\":1,\"template\":{\"spec\":{"
	     "\"containers\":[{\"name\":\"w\"}]}}},{\"groupName\":\"g\",\"minReplicas\":0,"
	     "\"maxReplicas\":1,\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\"}]}}}]",
	     "InvalidRayServiceSpec",
	     "The RayService spec is invalid: workerGroupSpecs[1]: worker group names must be "
	     "unique (groupName g is also workerGroupSpecs[0])"},
	    {"spec|rayClusterConfig|headGroupSpec|headService", "{\"metadata\":{\"name\":\"x\"}}",
	     "InvalidRayServiceSpec",
	     "The RayService spec is invalid: spec.rayClusterConfig.headGroupSpec.headService."
	     "metadata.name should not be set"},
	    {"spec|rayClusterConfig|headGroupSpec|headService", "{\"metadata\":{\"labels\":{}}}",
	     NULL, NULL},
	    {"spec|upgradeStrategy", "{\"type\":\"Recreate\"}", "InvalidRayServiceSpec",
	     "The RayService spec is invalid: Spec.UpgradeStrategy.Type value Recreate is invalid, "
	     "valid options are NewClusterWithIncrementalUpgrade, NewCluster, or None"},
	    {"spec|upgradeStrategy", "{\"type\":\"None\"}", NULL, NULL},
	    {"spec|upgradeStrategy", "{\"type\":\"NewCluster\"}", NULL, NULL},
	    {"spec|upgradeStrategy", "{\"type\":\"NewClusterWithIncrementalUpgrade\"}",
	     "InvalidRayServiceSpec",
	     "The RayService spec is invalid: Ray Autoscaler is required for "
	     "NewClusterWithIncrementalUpgrade"},
	    {"spec|rayClusterDeletionDelaySeconds", "-1", "InvalidRayServiceSpec",
	     "The RayService spec is invalid: Spec.RayClusterDeletionDelaySeconds should be a "
	     "non-negative integer, got -1"},
	    {"spec|rayClusterDeletionDelaySeconds", "0", NULL, NULL},
	    {"spec|rayClusterConfig|headGroupSpec|template|spec|containers|0|ports",
	     "[{\"containerPort\":6379,\"name\":\"gcs-server\"}]", "InvalidRayServiceSpec",
	     "The RayService spec is invalid: Please specify the port named 'serve' in the Ray "
	     "head "
	     "container; otherwise, the Kubernetes service for Ray Serve will not be created."},
	    {"spec|rayClusterConfig|headGroupSpec|template|spec|containers|0|ports",
	     "[{\"containerPort\":9000,\"name\":\"serve-http\"}]", NULL, NULL},
	    {"spec|rayClusterConfig|headGroupSpec|template|spec|containers|0|ports", "-", NULL,
	     NULL},
	    {"spec|serveConfigV2", "\"applications: [\"", "InvalidRayServiceSpec",
	     "The RayService spec is invalid: serveConfigV2: *"},
	    {"spec|serveConfigV2", "\"- a\\n- b\\n\"", "InvalidRayServiceSpec",
	     "The RayService spec is invalid: serveConfigV2: must be a YAML mapping (a Ray Serve "
	     "config)"},
	    {"spec|serveConfigV2", "\"# nothing yet\\n\"", NULL, NULL},
	    {"spec|serveConfigV2", "-", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p[2] = {cases[i].path, cases[i].value};
		struct rw_rayservice *rs = rs_make(p, 1);
		struct rw_rayservice_verr e;
		int n = rw_rayservice_validate(rs, &e);
		if (n != (cases[i].reason ? 1 : 0))
			fprintf(stderr, "  case %zu (%s): got %d %s\n", i, cases[i].path, n, e.msg);
		CHECK_EQ_INT(n, cases[i].reason ? 1 : 0);
		if (cases[i].reason && n == 1) {
			size_t ml = strlen(cases[i].msg);
			CHECK_EQ_STR(e.reason, cases[i].reason);
			if (ml && cases[i].msg[ml - 1] == '*')
				CHECK(strncmp(e.msg, cases[i].msg, ml - 1) == 0);
			else
				CHECK_EQ_STR(e.msg, cases[i].msg);
		}
		rw_rayservice_free(rs);
	}
	/* A user serveService with a serve port makes up for a head without one. */
	{
		struct rw_rayservice *rs = rs_make(
		    P("spec|rayClusterConfig|headGroupSpec|template|spec|containers|0|ports",
		      "[{\"containerPort\":6379,\"name\":\"gcs-server\"}]", "spec|serveService",
		      "{\"spec\":{\"ports\":[{\"name\":\"serve\",\"port\":8000}]}}"),
		    2);
		struct rw_rayservice_verr e;
		CHECK_EQ_INT(rw_rayservice_validate(rs, &e), 0);
		rw_rayservice_free(rs);
	}
	/* Incremental upgrade options: KubeRay's checks in order. */
	{
		static const struct {
			const char *opts, *msg;
		} inc[] = {
		    {"-",
		     "ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade"},
		    {"{\"maxSurgePercent\":101,\"stepSizePercent\":1,\"intervalSeconds\":1,"
		     "\"gatewayClassName\":\"g\"}",
		     "maxSurgePercent must be between 0 and 100"},
		    {"{\"intervalSeconds\":1,\"gatewayClassName\":\"g\"}",
		     "stepSizePercent must be between 0 and 100"},
		    {"{\"maxSurgePercent\":10,\"stepSizePercent\":20,\"intervalSeconds\":1,"
		     "\"gatewayClassName\":\"g\"}",
		     "stepSizePercent must be less than or equal to maxSurgePercent"},
		    {"{\"stepSizePercent\":20,\"intervalSeconds\":0,\"gatewayClassName\":\"g\"}",
		     "intervalSeconds must be greater than 0"},
		    {"{\"stepSizePercent\":20,\"intervalSeconds\":5}",
		     "gatewayClassName is required for NewClusterWithIncrementalUpgrade"},
		    {"{\"stepSizePercent\":20,\"intervalSeconds\":5,\"gatewayClassName\":\"g\"}",
		     NULL},
		};
		for (size_t i = 0; i < sizeof(inc) / sizeof(inc[0]); i++) {
			struct rw_rayservice *rs =
			    rs_make(P("spec|rayClusterConfig|enableInTreeAutoscaling", "true",
				      "spec|upgradeStrategy",
				      "{\"type\":\"NewClusterWithIncrementalUpgrade\"}",
				      "spec|upgradeStrategy|clusterUpgradeOptions", inc[i].opts),
				    3);
			struct rw_rayservice_verr e;
			char want[512];
			int n = rw_rayservice_validate(rs, &e);
			CHECK_EQ_INT(n, inc[i].msg ? 1 : 0);
			if (inc[i].msg && n) {
				snprintf(want, sizeof(want), "The RayService spec is invalid: %s",
					 inc[i].msg);
				CHECK_EQ_STR(e.msg, want);
			}
			rw_rayservice_free(rs);
		}
	}
}

static void
t_timeout_parse(void)
{
	static const struct {
		const char *s;
		int rv;
		long long ms;
	} cases[] = {
	    {"5m", 0, 300000},
	    {"1h30m", 0, 5400000},
	    {"1.5s", 0, 1500},
	    {"300ms", 0, 300},
	    {"300", 0, 300000},
	    {"0", 0, 0},
	    {"-5", 0, -5000},
	    {"5", 0, 5000},
	    {"5x", -EINVAL, 0},
	    {"", -EINVAL, 0},
	    {"m", -EINVAL, 0},
	    {"1h-2m", -EINVAL, 0},
	    {"2562047h", 0, 2562047LL * 3600000},
	    {"2562048h", -EINVAL, 0},
	    {"99999999999h", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -1;
		int rv = rw_rayservice_parse_timeout(cases[i].s, &ms);
		if (rv != cases[i].rv)
			fprintf(stderr, "  case %s\n", cases[i].s);
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv == 0)
			CHECK_EQ_INT(ms, cases[i].ms);
	}
}

static void
t_serve_config(void)
{
	struct rw_rayservice *rs = rs_make(NULL, 0);
	struct rw_rayservice_serve_cfg c, c2;
	char err[256], hex[65];
	CHECK_EQ_INT(rw_rayservice_serve_config(rs, &c, err, sizeof(err)), 0);
	CHECK(c.json != NULL);
	CHECK_EQ_STR(c.json, "{\"applications\":[{\"deployments\":[{\"name\":\"MangoStand\","
			     "\"num_replicas\":2,\"ray_actor_options\":{\"num_cpus\":0.1},"
			     "\"user_config\":{\"price\":3}}],\"import_path\":\"fruit.deployment_"
			     "graph\",\"name\":\"fruit_app\",\"route_prefix\":\"/fruit\"}]}");
	CHECK_EQ_INT(c.len, strlen(c.json));
	rw_sha256_hex(c.json, c.len, hex);
	CHECK_EQ_STR(c.hash, hex);
	rw_rayservice_free(rs);

	/* Comments, quoting style, indentation and key order do not change the config. */
	rs = rs_make(
	    P("spec|serveConfigV2",
	      "\"# the fruit app\\napplications:\\n- route_prefix: \\\"/fruit\\\"\\n  name: "
	      "fruit_app\\n  import_path: 'fruit.deployment_graph'\\n  deployments:\\n  - "
	      "user_config: {price: 3}\\n    name: MangoStand\\n    ray_actor_options: "
	      "{num_cpus: 0.1}\\n    num_replicas: 2\\n\""),
	    1);
	CHECK_EQ_INT(rw_rayservice_serve_config(rs, &c2, err, sizeof(err)), 0);
	CHECK_EQ_STR(c2.json, c.json);
	CHECK_EQ_STR(c2.hash, c.hash);
	rw_rayservice_serve_cfg_fini(&c2);
	rw_rayservice_free(rs);

	/* A changed price is a different config. */
	rs = rs_make(
	    P("spec|serveConfigV2",
	      "\"applications:\\n  - name: fruit_app\\n    import_path: "
	      "fruit.deployment_graph\\n    route_prefix: /fruit\\n    deployments:\\n      "
	      "- name: MangoStand\\n        num_replicas: 2\\n        user_config:\\n       "
	      "   price: 4\\n        ray_actor_options:\\n          num_cpus: 0.1\\n\""),
	    1);
	CHECK_EQ_INT(rw_rayservice_serve_config(rs, &c2, err, sizeof(err)), 0);
	CHECK(strcmp(c2.hash, c.hash) != 0);
	CHECK(strstr(c2.json, "\"price\":4") != NULL);
	rw_rayservice_serve_cfg_fini(&c2);
	rw_rayservice_free(rs);
	rw_rayservice_serve_cfg_fini(&c);
	CHECK(c.json == NULL);

	/* YAML 1.1 typing as Kubernetes clients do: on/off booleans, quoted strings stay. */
	rs = rs_make(P("spec|serveConfigV2",
		       "\"proxy_location: EveryNode\\nhttp_options: {host: 0.0.0.0, port: 8000}\\n"
		       "applications:\\n- name: a\\n  args: {flag: on, v: '1', num: 0x10}\\n\""),
		     1);
	CHECK_EQ_INT(rw_rayservice_serve_config(rs, &c, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.json,
		     "{\"applications\":[{\"args\":{\"flag\":true,\"num\":16,\"v\":\"1\"},"
		     "\"name\":\"a\"}],\"http_options\":{\"host\":\"0.0.0.0\",\"port\":8000},"
		     "\"proxy_location\":\"EveryNode\"}");
	rw_rayservice_serve_cfg_fini(&c);
	rw_rayservice_free(rs);

	/* No config: nothing to deploy, no hash. */
	static const char *const none[] = {"-", "\"\"", "\"# later\\n\"", "\"~\""};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		rs = rs_make(P("spec|serveConfigV2", none[i]), 1);
		CHECK_EQ_INT(rw_rayservice_serve_config(rs, &c, err, sizeof(err)), 0);
		CHECK(c.json == NULL);
		CHECK_EQ_STR(c.hash, "");
		rw_rayservice_serve_cfg_fini(&c);
		rw_rayservice_free(rs);
	}
	/* Errors. */
	static const char *const bad[] = {"\"a: [\"", "\"- 1\\n\"", "\"just text\"",
					  "\"a: 1\\n---\\nb: 2\\n\"", "\"x: .inf\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rs = rs_make(P("spec|serveConfigV2", bad[i]), 1);
		err[0] = '\0';
		CHECK_EQ_INT(rw_rayservice_serve_config(rs, &c, err, sizeof(err)), -EINVAL);
		CHECK(err[0] != '\0');
		CHECK(c.json == NULL);
		rw_rayservice_free(rs);
	}
}

static void
t_names(void)
{
	char out[128], sfx[6];
	unsigned char rnd[5] = {0, 26, 27, 255, 100};
	struct rw_rayservice *rs;
	CHECK_EQ_INT(rw_rayservice_cluster_name("rayservice-sample", "x7k2p", out, sizeof(out)), 0);
	CHECK_EQ_STR(out, "rayservice-sample-x7k2p");
	CHECK_EQ_INT(rw_rayservice_cluster_name("rs", "abcde", out, sizeof(out)),
		     -EINVAL); /* 'a','e' */
	CHECK_EQ_INT(rw_rayservice_cluster_name("rs", "bcdf", out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(rw_rayservice_cluster_name("rs", NULL, out, sizeof(out)), -EINVAL);
	rw_rayservice_random_suffix(rnd, sfx);
	CHECK_EQ_INT(strlen(sfx), 5);
	CHECK_EQ_INT(strspn(sfx, RW_RAYSERVICE_SUFFIX_ALPHABET), 5);
	CHECK(sfx[0] == 'b' && sfx[1] == '9' && sfx[2] == 'b');
	CHECK_EQ_INT(rw_rayservice_cluster_name("rs", sfx, out, sizeof(out)), 0);

	rs = rs_make(NULL, 0);
	rw_rayservice_head_svc_name(rs, out, sizeof(out));
	CHECK_EQ_STR(out, "rayservice-sample-head-svc");
	rw_rayservice_serve_svc_name(rs, out, sizeof(out));
	CHECK_EQ_STR(out, "rayservice-sample-serve-svc");
	rw_rayservice_free(rs);
	/* 47 characters: CheckName keeps the last 50 of "<name>-head-svc". */
	rs = rs_make(P("metadata|name", "\"a2345678901234567890123456789012345678901234567\"",
		       "spec|serveService", "{\"metadata\":{\"name\":\"my-serve\"}}"),
		     2);
	rw_rayservice_head_svc_name(rs, out, sizeof(out));
	CHECK_EQ_STR(out, "r8901234567890123456789012345678901234567-head-svc");
	CHECK_EQ_INT(strlen(out), 50);
	rw_rayservice_serve_svc_name(rs, out, sizeof(out));
	CHECK_EQ_STR(out, "my-serve");
	rw_rayservice_free(rs);
}

static struct rw_raycluster *
build(const struct rw_rayservice *rs, const char *name, const struct rw_rayservice_opts *o)
{
	struct rw_buf b;
	struct rw_raycluster *c = NULL;
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_rayservice_build_cluster(rs, name, o, &b), 0);
	CHECK_EQ_INT(rw_raycluster_parse(b.data, b.len, &c, NULL, 0), 0);
	rw_buf_fini(&b);
	return c;
}

static void
t_build_cluster(void)
{
	struct rw_rayservice *rs = rs_make(NULL, 0);
	struct rw_rayservice_opts o;
	struct rw_raycluster *c;
	struct rw_doc_node *refs, *r;
	char hash[33];
	rw_rayservice_opts_default(&o);
	c = build(rs, "rayservice-sample-x7k2p", &o);
	CHECK_EQ_STR(rw_doc_gets(c->obj.root, "apiVersion"), "ray.io/v1");
	CHECK_EQ_STR(rw_doc_gets(c->obj.root, "kind"), "RayCluster");
	CHECK_EQ_STR(c->obj.name, "rayservice-sample-x7k2p");
	CHECK_EQ_STR(c->obj.ns, "default");
	CHECK_EQ_STR(rw_doc_gets(c->obj.labels, "team"), "a");
	CHECK_EQ_STR(rw_doc_gets(c->obj.labels, "ray.io/originated-from-cr-name"),
		     "rayservice-sample");
	CHECK_EQ_STR(rw_doc_gets(c->obj.labels, "ray.io/originated-from-crd"), "RayService");
	CHECK_EQ_INT(c->obj.labels->n, 3);
	CHECK_EQ_STR(rw_doc_gets(c->obj.annotations, "note"), "x");
	CHECK_EQ_STR(rw_doc_gets(c->obj.annotations, "ray.io/num-worker-groups"), "1");
	CHECK_EQ_STR(rw_doc_gets(c->obj.annotations, "ray.io/kuberay-version"),
		     RW_RAYCLUSTER_DEFAULT_VERSION);
	CHECK_EQ_INT(rw_rayservice_cluster_hash(rs->cfg, -1, hash), 0);
	CHECK_EQ_STR(
	    rw_doc_gets(c->obj.annotations, "ray.io/hash-without-replicas-and-workers-to-delete"),
	    hash);
	CHECK_EQ_INT(strlen(hash), 32);
	CHECK_EQ_INT(c->obj.annotations->n, 4);
	refs = rw_doc_path(c->obj.root, "metadata.ownerReferences");
	CHECK(refs && refs->n == 1);
	r = rw_doc_at(refs, 0);
	CHECK_EQ_STR(rw_doc_gets(r, "kind"), "RayService");
	CHECK_EQ_STR(rw_doc_gets(r, "apiVersion"), "ray.io/v1");
	CHECK_EQ_STR(rw_doc_gets(r, "name"), "rayservice-sample");
	CHECK_EQ_STR(rw_doc_gets(r, "uid"), "rs-uid-1");
	CHECK(rw_doc_true(rw_doc_get(r, "controller")));
	CHECK(rw_doc_true(rw_doc_get(r, "blockOwnerDeletion")));
	CHECK(rw_doc_equal(c->obj.spec, rs->cfg));
	/* The cluster creator is recognised as RayService by rc_build. */
	CHECK_EQ_INT(rw_raycluster_creator(c, NULL), RW_RAYCLUSTER_CRD_RAYSERVICE);
	rw_raycluster_free(c);
	o.version = "v9";
	c = build(rs, "n", &o);
	CHECK_EQ_STR(rw_doc_gets(c->obj.annotations, "ray.io/kuberay-version"), "v9");
	rw_raycluster_free(c);
	rw_rayservice_free(rs);
}

/*
 * serveConfigV2's proxy_location reaches the RayCluster as an annotation only
 * for HeadOnly/Disabled (kuberay#4994), which rc_build turns into proxy
 * readiness "ignore" on the workers; the spec hash does not move.
 */
static void
t_proxy_location(void)
{
	static const struct {
		const char *serve; /* serveConfigV2 JSON string, NULL = the base config */
		const char *loc;   /* rw_rayservice_proxy_location */
		const char *anno;  /* annotation on the cluster, NULL = absent */
		const char *agent; /* worker RAYWARDEN_PROXY_READINESS from rc_build */
	} cases[] = {
	    {NULL, "", NULL, "auto"},
	    {"\"proxy_location: HeadOnly\\napplications: []\\n\"", "HeadOnly", "HeadOnly",
	     "ignore"},
	    {"\"proxy_location: Disabled\\n\"", "Disabled", "Disabled", "ignore"},
	    {"\"proxy_location: EveryNode\\n\"", "EveryNode", NULL, "auto"},
	    {"\"proxy_location: 3\\n\"", "", NULL, "auto"},
	    {"\"applications: [\"", "", NULL, "auto"}, /* does not parse */
	    {"\"\"", "", NULL, "auto"},
	    {"\"http_options:\\n  proxy_location: HeadOnly\\n\"", "", NULL, "auto"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* A user-written annotation never survives: the serve config decides. */
		const char *const patches[] = {
		    "metadata|annotations|" RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION, "\"HeadOnly\"",
		    "spec|serveConfigV2", cases[i].serve};
		struct rw_rayservice *rs = rs_make(patches, cases[i].serve ? 2 : 1);
		struct rw_rayservice *plain = rs_make(NULL, 0);
		struct rw_rayservice_opts o;
		struct rw_raycluster_opts ro;
		struct rw_raycluster *c, *c0;
		struct rw_buf b;
		struct rw_raycluster_slot slot = {0, NULL, 0};
		struct rw_doc_node *pod = NULL, *env, *e;
		const char *got = NULL;
		char loc[32];

		rw_rayservice_opts_default(&o);
		rw_raycluster_opts_default(&ro);
		rw_rayservice_proxy_location(rs, loc, sizeof(loc));
		if (strcmp(loc, cases[i].loc) != 0)
			fprintf(stderr, "  case %zu: %s\n", i, loc);
		CHECK_EQ_STR(loc, cases[i].loc);
		c = build(rs, "rayservice-sample-x7k2p", &o);
		if (cases[i].anno)
			CHECK_EQ_STR(rw_doc_gets(c->obj.annotations,
						 RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION),
				     cases[i].anno);
		else
			CHECK(rw_doc_get(c->obj.annotations,
					 RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION) == NULL);
		/* Same rayClusterConfig, same hash: no new cluster for a serve config change. */
		c0 = build(plain, "rayservice-sample-x7k2p", &o);
		CHECK_EQ_STR(rw_doc_gets(c->obj.annotations,
					 "ray.io/hash-without-replicas-and-workers-to-delete"),
			     rw_doc_gets(c0->obj.annotations,
					 "ray.io/hash-without-replicas-and-workers-to-delete"));
		/* rc_build reads it when it builds the worker pods. */
		rw_buf_init(&b, 1 << 22);
		CHECK_EQ_INT(rw_raycluster_build_worker_pod(c, &ro, 0, &slot, &b), 0);
		CHECK_EQ_INT(rw_doc_parse(b.data, b.len, &pod, NULL, 0), 0);
		env = rw_doc_path(rw_doc_at(rw_doc_path(pod, "spec.containers"), 1), "env");
		for (int k = 0; env && k < env->n; k++) {
			e = env->kids[k];
			if (strcmp(rw_doc_gets(e, "name"), "RAYWARDEN_PROXY_READINESS") == 0)
				got = rw_doc_gets(e, "value");
		}
		CHECK_EQ_STR(got ? got : "(none)", cases[i].agent);
		/* The in-place update carries the annotation too. */
		if (cases[i].anno) {
			struct rw_raycluster *u = NULL;
			rw_buf_reset(&b);
			CHECK_EQ_INT(rw_rayservice_update_cluster(rs, c0, &o, &b), 0);
			CHECK_EQ_INT(rw_raycluster_parse(b.data, b.len, &u, NULL, 0), 0);
			CHECK_EQ_STR(rw_doc_gets(u->obj.annotations,
						 RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION),
				     cases[i].anno);
			rw_raycluster_free(u);
		}
		rw_doc_free(pod);
		rw_buf_fini(&b);
		rw_raycluster_free(c);
		rw_raycluster_free(c0);
		rw_rayservice_free(rs);
		rw_rayservice_free(plain);
	}
}

/* KubeRay's TestGenerateHashWithoutReplicasAndWorkersToDelete, plus the other cleared fields. */
static void
t_hash(void)
{
	static const struct {
		const char *path, *value;
		bool same;
	} cases[] = {
	    {"spec|rayClusterConfig|workerGroupSpecs|0|replicas", "3", true},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|minReplicas", "0", true},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|maxReplicas", "50", true},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|scaleStrategy",
	     "{\"workersToDelete\":[\"p1\"]}", true},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|template|spec|tolerations",
	     "[{\"key\":\"k\",\"operator\":\"Exists\"}]", true},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|template|spec|schedulingGates",
	     "[{\"name\":\"g\"}]", true},
	    {"spec|rayClusterConfig|headGroupSpec|template|spec|tolerations",
	     "[{\"key\":\"k\",\"operator\":\"Exists\"}]", true},
	    {"spec|rayClusterConfig|headGroupSpec|template|spec|schedulingGates",
	     "[{\"name\":\"g\"}]", true},
	    {"spec|rayClusterConfig|upgradeStrategy", "{\"type\":\"Recreate\"}", true},
	    {"spec|rayClusterConfig|suspend", "true", true},
	    {"spec|serveConfigV2", "\"applications: []\"", true},
	    {"spec|rayClusterConfig|rayVersion", "\"2.100.0\"", false},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|template|spec|containers|0|image",
	     "\"rayproject/ray:2.53.0\"", false},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|groupName", "\"g2\"", false},
	};
	struct rw_rayservice *base = rs_make(NULL, 0);
	char h0[33], h[33];
	CHECK_EQ_INT(rw_rayservice_cluster_hash(base->cfg, -1, h0), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p[2] = {cases[i].path, cases[i].value};
		struct rw_rayservice *rs = rs_make(p, 1);
		CHECK_EQ_INT(rw_rayservice_cluster_hash(rs->cfg, -1, h), 0);
		if ((strcmp(h, h0) == 0) != cases[i].same)
			fprintf(stderr, "  case %s\n", cases[i].path);
		CHECK((strcmp(h, h0) == 0) == cases[i].same);
		rw_rayservice_free(rs);
	}
	/* Prefix hash: the first N groups. */
	{
		struct rw_rayservice *two = rs_make(NULL, 0);
		char h1[33];
		struct rw_doc_node *g = rw_doc_get(two->cfg, "workerGroupSpecs");
		struct rw_doc_node *extra = pn("{\"groupName\":\"extra\"}");
		CHECK_EQ_INT(rw_doc_push(g, extra), 0);
		CHECK_EQ_INT(rw_rayservice_cluster_hash(two->cfg, 1, h1), 0);
		CHECK_EQ_STR(h1, h0);
		CHECK_EQ_INT(rw_rayservice_cluster_hash(two->cfg, -1, h1), 0);
		CHECK(strcmp(h1, h0) != 0);
		CHECK_EQ_INT(rw_rayservice_cluster_hash(two->cfg, 5, h), 0);
		CHECK_EQ_STR(h, h1);
		rw_rayservice_free(two);
	}
	rw_rayservice_free(base);
}

/* KubeRay's TestIsZeroDowntimeUpgradeEnabled. */
static void
t_zero_downtime(void)
{
	static const struct {
		const char *strategy; /* NULL: unset */
		bool env_on;
		bool want;
	} cases[] = {
	    {NULL, true, true},
	    {NULL, false, false},
	    {"{}", false, false},
	    {"{\"type\":\"NewCluster\"}", false, true},
	    {"{\"type\":\"NewCluster\"}", true, true},
	    {"{\"type\":\"NewClusterWithIncrementalUpgrade\"}", false, true},
	    {"{\"type\":\"None\"}", true, false},
	    {"{\"type\":\"None\"}", false, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p[2] = {"spec|upgradeStrategy", cases[i].strategy};
		struct rw_rayservice *rs = rs_make(p, cases[i].strategy ? 1 : 0);
		struct rw_rayservice_opts o;
		rw_rayservice_opts_default(&o);
		o.zero_downtime = cases[i].env_on;
		CHECK_EQ_INT(rw_rayservice_zero_downtime(rs, &o), cases[i].want);
		rw_rayservice_free(rs);
	}
}

static char *env_val;
static char *
fake_getenv(const char *k)
{
	return strcmp(k, "ENABLE_ZERO_DOWNTIME") == 0 ? env_val : NULL;
}

static void
t_opts_env(void)
{
	static const struct {
		const char *v;
		bool want;
	} cases[] = {
	    {NULL, true}, {"true", true}, {"false", false}, {"FALSE", false}, {"no", true}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_rayservice_opts o;
		char buf[16];
		rw_rayservice_opts_default(&o);
		env_val = NULL;
		if (cases[i].v) {
			snprintf(buf, sizeof(buf), "%s", cases[i].v);
			env_val = buf;
		}
		rw_rayservice_opts_from_env(&o, fake_getenv);
		CHECK_EQ_INT(o.zero_downtime, cases[i].want);
	}
}

/* An existing cluster built from one RayService, then judged against another. */
static void
t_upgrade(void)
{
	struct rw_rayservice_opts o;
	struct rw_rayservice *old = rs_make(NULL, 0);
	struct rw_raycluster *c;
	rw_rayservice_opts_default(&o);
	c = build(old, "rayservice-sample-bbbbb", &o);

	static const struct {
		const char *path, *value;
		enum rw_rayservice_match match;
	} cases[] = {
	    {"metadata|note", "1", RW_RAYSERVICE_MATCH_EQUAL},
	    {"spec|rayClusterConfig|workerGroupSpecs|0|replicas", "4", RW_RAYSERVICE_MATCH_EQUAL},
	    {"spec|serveConfigV2", "\"applications: []\"", RW_RAYSERVICE_MATCH_EQUAL},
	    {"spec|rayClusterConfig|workerGroupSpecs|1",
	     "{\"groupName\":\"new\",\"minReplicas\":0,\"maxReplicas\":2,\"template\":{}}",
	     RW_RAYSERVICE_MATCH_APPENDED},
	    {"spec|rayClusterConfig|rayVersion", "\"2.53.0\"", RW_RAYSERVICE_MATCH_DIFFERENT},
	    {"spec|rayClusterConfig|workerGroupSpecs", "[]", RW_RAYSERVICE_MATCH_DIFFERENT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_rayservice *rs;
		if (strcmp(cases[i].path, "spec|rayClusterConfig|workerGroupSpecs|1") == 0) {
			rs = rs_make(NULL, 0);
			CHECK_EQ_INT(
			    rw_doc_push(rw_doc_get(rs->cfg, "workerGroupSpecs"),
					parse_node(cases[i].value, strlen(cases[i].value))),
			    0);
		} else {
			const char *p[2] = {cases[i].path, cases[i].value};
			rs = rs_make(p, 1);
		}
		CHECK_EQ_INT(rw_rayservice_match_cluster(rs, c), cases[i].match);
		/* Active cluster, no upgrade in progress, same version. */
		enum rw_rayservice_cluster_action want_act =
		    cases[i].match == RW_RAYSERVICE_MATCH_APPENDED
			? RW_RAYSERVICE_CLUSTER_UPDATE_ACTIVE
			: RW_RAYSERVICE_CLUSTER_NONE;
		CHECK_EQ_INT(rw_rayservice_cluster_action(rs, c, NULL, &o), want_act);
		/* As the pending cluster. */
		CHECK_EQ_INT(rw_rayservice_cluster_action(rs, NULL, c, &o),
			     cases[i].match == RW_RAYSERVICE_MATCH_APPENDED
				 ? RW_RAYSERVICE_CLUSTER_UPDATE_PENDING
				 : RW_RAYSERVICE_CLUSTER_NONE);
		CHECK_EQ_INT(rw_rayservice_prepare_new_cluster(rs, c, NULL, false, &o),
			     cases[i].match == RW_RAYSERVICE_MATCH_DIFFERENT);
		CHECK(!rw_rayservice_prepare_new_cluster(rs, c, NULL, true, &o));
		rw_rayservice_free(rs);
	}
	/* upgradeStrategy None: a real change is ignored. */
	{
		struct rw_rayservice *rs =
		    rs_make(P("spec|rayClusterConfig|rayVersion", "\"2.53.0\"",
			      "spec|upgradeStrategy", "{\"type\":\"None\"}"),
			    2);
		CHECK(!rw_rayservice_prepare_new_cluster(rs, c, NULL, false, &o));
		CHECK_EQ_INT(rw_rayservice_cluster_action(rs, c, NULL, &o),
			     RW_RAYSERVICE_CLUSTER_NONE);
		o.zero_downtime = false;
		rw_rayservice_free(rs);
		rs = rs_make(P("spec|rayClusterConfig|rayVersion", "\"2.53.0\""), 1);
		CHECK(!rw_rayservice_prepare_new_cluster(rs, c, NULL, false, &o));
		o.zero_downtime = true;
		CHECK(rw_rayservice_prepare_new_cluster(rs, c, NULL, false, &o));
		/* The pending cluster is compared first. */
		struct rw_raycluster *p = build(rs, "rayservice-sample-ccccc", &o);
		CHECK(!rw_rayservice_prepare_new_cluster(rs, c, p, false, &o));
		rw_raycluster_free(p);
		rw_rayservice_free(rs);
	}
	/* No cluster at all: the first one. */
	CHECK(rw_rayservice_prepare_new_cluster(old, NULL, NULL, false, &o));
	/* Operator version changed: in-place update of the active cluster, unless upgrading. */
	{
		struct rw_rayservice_opts o2 = o;
		o2.version = "raywarden-9.9.9";
		CHECK_EQ_INT(rw_rayservice_cluster_action(old, c, NULL, &o2),
			     RW_RAYSERVICE_CLUSTER_UPDATE_ACTIVE);
		/* ... and not replaced, even while its hash (another operator's) differs. */
		{
			struct rw_rayservice *rs =
			    rs_make(P("spec|rayClusterConfig|rayVersion", "\"2.53.0\""), 1);
			CHECK_EQ_INT(rw_rayservice_match_cluster(rs, c),
				     RW_RAYSERVICE_MATCH_DIFFERENT);
			CHECK(!rw_rayservice_prepare_new_cluster(rs, c, NULL, false, &o2));
			CHECK_EQ_INT(rw_rayservice_cluster_action(rs, c, NULL, &o2),
				     RW_RAYSERVICE_CLUSTER_UPDATE_ACTIVE);
			rw_rayservice_free(rs);
		}
		CHECK_EQ_INT(rw_rayservice_cluster_action(old, NULL, c, &o2),
			     RW_RAYSERVICE_CLUSTER_NONE);
		struct rw_rayservice *up = rs_make(
		    P("status", "{\"conditions\":[{\"type\":\"UpgradeInProgress\",\"status\":"
				"\"True\"}],\"pendingServiceStatus\":{\"rayClusterName\":\"p\"}}"),
		    1);
		CHECK_EQ_INT(rw_rayservice_cluster_action(up, c, c, &o2),
			     RW_RAYSERVICE_CLUSTER_NONE);
		/* The pending cluster named in the status does not exist yet. */
		CHECK_EQ_INT(rw_rayservice_cluster_action(up, c, NULL, &o2),
			     RW_RAYSERVICE_CLUSTER_CREATE_PENDING);
		rw_rayservice_free(up);
	}
	/* A cluster without the group-count annotation is updated in place (KubeRay's Atoi rule).
	 */
	{
		struct rw_rayservice *rs =
		    rs_make(P("spec|rayClusterConfig|rayVersion", "\"2.53.0\""), 1);
		rw_doc_del(c->obj.annotations, "ray.io/num-worker-groups");
		CHECK_EQ_INT(rw_rayservice_match_cluster(rs, c), RW_RAYSERVICE_MATCH_APPENDED);
		rw_doc_set_str(c->obj.annotations, "ray.io/num-worker-groups", "3");
		CHECK_EQ_INT(rw_rayservice_match_cluster(rs, c), RW_RAYSERVICE_MATCH_DIFFERENT);
		rw_rayservice_free(rs);
	}
	rw_raycluster_free(c);
	rw_rayservice_free(old);
}

static void
t_update_cluster(void)
{
	struct rw_rayservice_opts o;
	struct rw_rayservice *rs = rs_make(NULL, 0);
	struct rw_raycluster *cur, *upd;
	struct rw_buf b;
	rw_rayservice_opts_default(&o);
	rw_buf_init(&b, 1 << 22);
	cur = build(rs, "rayservice-sample-bbbbb", &o);
	rw_doc_set_str(rw_doc_obj(cur->obj.root, "metadata"), "resourceVersion", "42");
	rw_doc_set_bool(cur->obj.spec, "suspend", true);
	rw_doc_set_str(cur->obj.labels, "stale", "1");
	rw_rayservice_free(rs);
	/* New group appended, new label; the current suspend value stays. */
	rs = rs_make(P("metadata|labels|fresh", "\"1\""), 1);
	CHECK_EQ_INT(rw_doc_push(rw_doc_get(rs->cfg, "workerGroupSpecs"),
				 pn("{\"groupName\":\"g2\",\"minReplicas\":0,\"maxReplicas\":1}")),
		     0);
	CHECK_EQ_INT(rw_rayservice_update_cluster(rs, cur, &o, &b), 0);
	CHECK_EQ_INT(rw_raycluster_parse(b.data, b.len, &upd, NULL, 0), 0);
	CHECK_EQ_STR(upd->obj.name, "rayservice-sample-bbbbb");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(upd->obj.root, "metadata"), "resourceVersion"), "42");
	CHECK_EQ_STR(rw_doc_gets(upd->obj.labels, "fresh"), "1");
	CHECK(rw_doc_get(upd->obj.labels, "stale") == NULL);
	CHECK_EQ_STR(rw_doc_gets(upd->obj.annotations, "ray.io/num-worker-groups"), "2");
	CHECK(rw_doc_true(rw_doc_get(upd->obj.spec, "suspend")));
	CHECK_EQ_INT(upd->ngroups, 2);
	CHECK_EQ_INT(rw_rayservice_match_cluster(rs, upd), RW_RAYSERVICE_MATCH_EQUAL);
	rw_raycluster_free(upd);
	rw_buf_reset(&b);
	/* Autoscaling: the existing group's replicas and workersToDelete are the autoscaler's. */
	rw_doc_set_int(rw_raycluster_group(cur, 0), "replicas", 4);
	rw_doc_set(rw_doc_obj(rw_raycluster_group(cur, 0), "scaleStrategy"), "workersToDelete",
		   pn("[\"w1\"]"));
	rw_doc_set_bool(rs->cfg, "enableInTreeAutoscaling", true);
	CHECK_EQ_INT(rw_rayservice_update_cluster(rs, cur, &o, &b), 0);
	CHECK_EQ_INT(rw_raycluster_parse(b.data, b.len, &upd, NULL, 0), 0);
	int64_t v = 0;
	CHECK_EQ_INT(rw_doc_int(rw_doc_get(rw_raycluster_group(upd, 0), "replicas"), &v), 0);
	CHECK_EQ_INT(v, 4);
	CHECK(rw_doc_path(rw_raycluster_group(upd, 0), "scaleStrategy.workersToDelete") != NULL);
	CHECK(rw_doc_get(rw_raycluster_group(upd, 1), "replicas") == NULL);
	rw_raycluster_free(upd);
	rw_raycluster_free(cur);
	rw_buf_fini(&b);
	rw_rayservice_free(rs);
}

static struct rw_doc_node *
svc_of(struct rw_buf *b)
{
	return parse_node(b->data, b->len);
}

/* KubeRay's TestBuildServeServiceForRayService (+ _WithoutServePort) and the head service. */
static void
t_services(void)
{
	struct rw_rayservice_opts o;
	struct rw_raycluster_opts ro;
	struct rw_rayservice *rs = rs_make(NULL, 0);
	struct rw_raycluster *c;
	struct rw_buf b;
	struct rw_doc_node *s, *ports;
	char err[256];

	rw_rayservice_opts_default(&o);
	rw_raycluster_opts_default(&ro);
	rw_buf_init(&b, 1 << 22);
	c = build(rs, "rayservice-sample-x7k2p", &o);

	CHECK_EQ_INT(rw_rayservice_build_serve_service(rs, c, &b, err, sizeof(err)), 0);
	s = svc_of(&b);
	CHECK_EQ_STR(rw_doc_gets(s, "kind"), "Service");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "name"), "rayservice-sample-serve-svc");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "namespace"), "default");
	CHECK_EQ_STR(
	    rw_doc_gets(rw_doc_path(s, "metadata.labels"), "ray.io/originated-from-cr-name"),
	    "rayservice-sample");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.labels"), "ray.io/originated-from-crd"),
		     "RayService");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.labels"), "ray.io/serve"),
		     "rayservice-sample-serve");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec.selector"), "ray.io/cluster"),
		     "rayservice-sample-x7k2p");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec.selector"), "ray.io/serve"), "true");
	CHECK_EQ_INT(rw_doc_path(s, "spec.selector")->n, 2);
	ports = rw_doc_path(s, "spec.ports");
	CHECK(ports && ports->n == 1);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(ports, 0), "name"), "serve");
	CHECK(rw_doc_get(rw_doc_at(ports, 0), "appProtocol") == NULL);
	CHECK(rw_doc_path(s, "spec.clusterIP") == NULL);
	CHECK(rw_doc_path(s, "spec.type") == NULL);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(rw_doc_path(s, "metadata.ownerReferences"), 0), "kind"),
		     "RayService");
	rw_doc_free(s);
	rw_buf_reset(&b);

	/* The head service follows the target cluster's head service. */
	CHECK_EQ_INT(rw_rayservice_build_head_service(rs, c, &ro, &b), 0);
	s = svc_of(&b);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "name"), "rayservice-sample-head-svc");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec.selector"), "ray.io/cluster"),
		     "rayservice-sample-x7k2p");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec.selector"), "ray.io/node-type"), "head");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec.selector"), "ray.io/identifier"),
		     "rayservice-sample-x7k2p-head");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec"), "clusterIP"), "None");
	CHECK(rw_doc_true(rw_doc_path(s, "spec.publishNotReadyAddresses")));
	CHECK_EQ_INT(rw_doc_path(s, "metadata.labels")->n, 4);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.labels"), "ray.io/identifier"),
		     "rayservice-sample-head");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.labels"), "ray.io/originated-from-crd"),
		     "RayService");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(rw_doc_path(s, "metadata.ownerReferences"), 0), "kind"),
		     "RayService");
	CHECK(rw_doc_path(s, "metadata.annotations") == NULL);
	CHECK_EQ_INT(rw_doc_path(s, "spec.ports")->n, 5); /* client dashboard gcs metrics serve */
	rw_doc_free(s);
	rw_buf_reset(&b);
	rw_raycluster_free(c);
	rw_rayservice_free(rs);

	/* _WithoutServePort: an error with KubeRay's message. */
	rs = rs_make(P("spec|rayClusterConfig|headGroupSpec|template|spec|containers|0|ports",
		       "[{\"containerPort\":6379,\"name\":\"gcs-server\"}]"),
		     1);
	c = build(rs, "rayservice-sample-x7k2p", &o);
	CHECK_EQ_INT(rw_rayservice_build_serve_service(rs, c, &b, err, sizeof(err)), -ENOENT);
	CHECK_EQ_STR(err, "Please specify the port named 'serve' in the Ray head container; "
			  "otherwise, the Kubernetes service for Ray Serve will not be created.");
	CHECK_EQ_INT(b.len, 0);
	rw_raycluster_free(c);
	rw_rayservice_free(rs);

	/* serve-* ports, serviceType, and the user's serveService. */
	rs = rs_make(
	    P("spec|rayClusterConfig|headGroupSpec|template|spec|containers|0|ports",
	      "[{\"containerPort\":9001,\"name\":\"serve-b\"},{\"containerPort\":6379,\"name\":"
	      "\"gcs-server\"},{\"containerPort\":9000,\"name\":\"serve-a\"}]",
	      "spec|rayClusterConfig|headGroupSpec|serviceType", "\"NodePort\"",
	      "spec|serveService",
	      "{\"metadata\":{\"name\":\"custom-serve\",\"namespace\":\"other\",\"labels\":{\"x\":"
	      "\"1\",\"ray.io/"
	      "serve\":\"mine\"},\"annotations\":{\"a\":\"b\"}},\"spec\":{\"selector\":"
	      "{\"app\":\"z\"},\"ports\":[{\"name\":\"http\",\"port\":80}]}}"),
	    3);
	c = build(rs, "rayservice-sample-x7k2p", &o);
	CHECK_EQ_INT(rw_rayservice_build_serve_service(rs, c, &b, err, sizeof(err)), 0);
	s = svc_of(&b);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "name"), "custom-serve");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "namespace"), "default");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.labels"), "x"), "1");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.labels"), "ray.io/serve"),
		     "rayservice-sample-serve");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.annotations"), "a"), "b");
	CHECK_EQ_INT(rw_doc_path(s, "spec.selector")->n, 2);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec"), "type"), "NodePort");
	ports = rw_doc_path(s, "spec.ports");
	CHECK(ports && ports->n == 2);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(ports, 0), "name"), "serve-a");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(ports, 1), "name"), "serve-b");
	rw_doc_free(s);
	rw_buf_reset(&b);
	rw_raycluster_free(c);
	rw_rayservice_free(rs);

	/* Head without a serve port, user serveService with one: the user's serve port. */
	rs =
	    rs_make(P("spec|rayClusterConfig|headGroupSpec|template|spec|containers|0|ports",
		      "[{\"containerPort\":6379,\"name\":\"gcs-server\"}]", "spec|serveService",
		      "{\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{\"name\":\"http\",\"port\":"
		      "80},{\"name\":\"serve\",\"port\":8080,\"appProtocol\":\"http\"}]}}"),
		    2);
	c = build(rs, "rayservice-sample-x7k2p", &o);
	CHECK_EQ_INT(rw_rayservice_build_serve_service(rs, c, &b, err, sizeof(err)), 0);
	s = svc_of(&b);
	ports = rw_doc_path(s, "spec.ports");
	CHECK(ports && ports->n == 1);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(ports, 0), "name"), "serve");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec"), "type"), "LoadBalancer");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "name"), "rayservice-sample-serve-svc");
	rw_doc_free(s);
	rw_buf_reset(&b);
	rw_raycluster_free(c);
	rw_rayservice_free(rs);

	/* No ports in the head container: the default serve:8000; headServiceAnnotations ignored.
	 */
	rs = rs_make(P("spec|rayClusterConfig|headGroupSpec|template|spec|containers|0|ports", "-",
		       "spec|rayClusterConfig|headServiceAnnotations", "{\"h\":\"1\"}"),
		     2);
	c = build(rs, "rayservice-sample-x7k2p", &o);
	CHECK_EQ_INT(rw_rayservice_build_serve_service(rs, c, &b, err, sizeof(err)), 0);
	s = svc_of(&b);
	ports = rw_doc_path(s, "spec.ports");
	CHECK(ports && ports->n == 1);
	int64_t port = 0;
	rw_doc_int(rw_doc_get(rw_doc_at(ports, 0), "port"), &port);
	CHECK_EQ_INT(port, 8000);
	rw_doc_free(s);
	rw_buf_reset(&b);
	ro.head_cluster_ip_service = true;
	CHECK_EQ_INT(rw_rayservice_build_head_service(rs, c, &ro, &b), 0);
	s = svc_of(&b);
	CHECK(rw_doc_path(s, "metadata.annotations") == NULL);
	CHECK(rw_doc_path(s, "spec.clusterIP") == NULL);
	rw_doc_free(s);
	rw_raycluster_free(c);
	rw_rayservice_free(rs);
	rw_buf_fini(&b);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"parse", t_parse},
	    {"validate", t_validate},
	    {"timeout_parse", t_timeout_parse},
	    {"serve_config", t_serve_config},
	    {"names", t_names},
	    {"build_cluster", t_build_cluster},
	    {"proxy_location (kuberay#4994)", t_proxy_location},
	    {"hash", t_hash},
	    {"zero_downtime", t_zero_downtime},
	    {"opts_env", t_opts_env},
	    {"upgrade", t_upgrade},
	    {"update_cluster", t_update_cluster},
	    {"services", t_services},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

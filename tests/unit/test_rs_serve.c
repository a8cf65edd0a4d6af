/*
 * test_rs_serve.c - RayService decisions from agent reports: KubeRay's
 * TestCheckIfNeedSubmitServeApplications and TestLabelHeadPodForServeStatus
 * driven by reports, application readiness and statuses, worker labels,
 * proxy placement and the replies agents get.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rs_serve.h"
#include "rwtest.h"

static struct rw_serve_dep deps_a[2] = {
    {"MangoStand", "HEALTHY", "", 2, 2},
    {"FruitMarket", "UPDATING", "starting", 0, 1},
};
static struct rw_serve_dep deps_b[1] = {{"Router", "UNHEALTHY", "replica died", 0, 1}};

static void
head_report(struct rw_report *r, const char *hash, int napps, struct rw_serve_app *apps)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->ns, sizeof(r->ns), "default");
	snprintf(r->pod, sizeof(r->pod), "rs-x-head-abcde");
	snprintf(r->node_type, sizeof(r->node_type), "head");
	snprintf(r->pod_ip, sizeof(r->pod_ip), "10.0.0.1");
	snprintf(r->serve_config_hash, sizeof(r->serve_config_hash), "%s", hash);
	snprintf(r->serve_apply_state, sizeof(r->serve_apply_state), "%s",
		 hash[0] ? "applied" : "");
	r->has_serve = 1;
	r->serve_api.state = RW_PROBE_OK;
	r->napps = napps;
	r->apps = apps;
	r->proxy.state = RW_PROBE_OK;
	r->rayservice = 1;
}

static void
app(struct rw_serve_app *a, const char *name, const char *status)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->status, sizeof(a->status), "%s", status);
}

/* KubeRay's TestCheckIfNeedSubmitServeApplications, the cache being the agent's applied hash. */
static void
t_need_submit(void)
{
	struct rw_serve_app apps[1];
	struct rw_report r;
	const char *why = NULL;
	app(apps, "app", "RUNNING");

	CHECK(rw_rayservice_need_submit("H1", NULL, &why)); /* empty cache */
	CHECK(why && strstr(why, "Nothing has been applied"));
	head_report(&r, "", 1, apps);
	CHECK(rw_rayservice_need_submit("H1", &r, NULL)); /* the agent applied nothing yet */
	head_report(&r, "H1", 1, apps);
	CHECK(!rw_rayservice_need_submit("H1", &r, &why)); /* same config, apps present */
	CHECK(strstr(why, "matches") != NULL);
	CHECK(rw_rayservice_need_submit("H2", &r, &why)); /* different config */
	CHECK(strstr(why, "doesn't match") != NULL);
	head_report(&r, "H1", 0, NULL);
	CHECK(rw_rayservice_need_submit("H1", &r, &why)); /* same config, no app: head restarted */
	CHECK(strstr(why, "head Pod crashed") != NULL);
	head_report(&r, "H1", 1, apps);
	snprintf(r.serve_apply_state, sizeof(r.serve_apply_state), "failed");
	CHECK(rw_rayservice_need_submit("H1", &r, NULL)); /* failed apply: let the agent retry */
	snprintf(r.serve_apply_state, sizeof(r.serve_apply_state), "applying");
	CHECK(!rw_rayservice_need_submit("H1", &r, NULL));
	r.has_serve = 0; /* the serve status is not known yet: no evidence of a restart */
	r.napps = 0;
	CHECK(!rw_rayservice_need_submit("H1", &r, NULL));
	CHECK(!rw_rayservice_need_submit("", &r, &why)); /* no serve config at all */
	CHECK(!rw_rayservice_need_submit(NULL, NULL, NULL));
}

static void
t_apps_ready(void)
{
	char sum[256];
	struct rw_serve_app apps[3];
	struct rw_report r;
	app(&apps[0], "a", "RUNNING");
	app(&apps[1], "b", "RUNNING");
	app(&apps[2], "c", "DEPLOYING");
	CHECK(!rw_rayservice_apps_ready(NULL));
	head_report(&r, "H", 0, NULL);
	CHECK(!rw_rayservice_apps_ready(&r)); /* no app: not ready */
	head_report(&r, "H", 2, apps);
	CHECK(rw_rayservice_apps_ready(&r));
	CHECK(!rw_rayservice_apps_unhealthy(&r));
	head_report(&r, "H", 3, apps);
	CHECK(!rw_rayservice_apps_ready(&r));
	CHECK(!rw_rayservice_apps_unhealthy(&r));
	head_report(&r, "H", 2, apps);
	r.has_serve = 0;
	CHECK(!rw_rayservice_apps_ready(&r));
	CHECK(!rw_rayservice_unhealthy_summary(&r, sum, sizeof(sum)));
	CHECK_EQ_STR(sum, "");
	app(&apps[2], "c", "DEPLOY_FAILED");
	snprintf(apps[2].message, sizeof(apps[2].message),
		 "Deploying app 'c' failed with exception:\nTraceback (most recent call last):\n"
		 "  File \"a.py\", line 1, in f\n    import x\nModuleNotFoundError: No module "
		 "named 'x'\n \n");
	head_report(&r, "H", 3, apps);
	CHECK(rw_rayservice_apps_unhealthy(&r));
	CHECK(rw_rayservice_unhealthy_summary(&r, sum, sizeof(sum)));
	CHECK_EQ_STR(sum,
		     "application c is DEPLOY_FAILED: ModuleNotFoundError: No module named 'x'");
	CHECK(rw_rayservice_unhealthy_summary(&r, sum, 12)); /* truncated, terminated */
	CHECK_EQ_STR(sum, "application");
	app(&apps[2], "c", "RUNNING");
	apps[2].ndeps = 1;
	apps[2].deps = deps_b;
	CHECK(rw_rayservice_apps_unhealthy(&r));
	CHECK(rw_rayservice_apps_ready(&r)); /* the app itself still says RUNNING */
	CHECK(rw_rayservice_unhealthy_summary(&r, sum, sizeof(sum)));
	CHECK(strncmp(sum, "deployment ", 11) == 0 &&
	      strstr(sum, " of application c is UNHEALTHY"));
	CHECK(!rw_rayservice_unhealthy_summary(NULL, sum, sizeof(sum)));
}

static void
t_app_statuses(void)
{
	struct rw_serve_app apps[2];
	struct rw_report r;
	struct rw_buf b;
	rw_buf_init(&b, 1 << 20);
	app(&apps[0], "", "DEPLOYING");
	snprintf(apps[0].message, sizeof(apps[0].message), "Deploying app 'default'");
	apps[0].ndeps = 2;
	apps[0].deps = deps_a;
	app(&apps[1], "math_app", "RUNNING");
	head_report(&r, "H", 2, apps);
	CHECK_EQ_INT(rw_rayservice_write_app_statuses(&r, &b), 0);
	CHECK_EQ_STR(
	    b.data,
	    "{\"default\":{\"message\":\"Deploying app 'default'\",\"status\":\"DEPLOYING\","
	    "\"serveDeploymentStatuses\":{\"MangoStand\":{\"status\":\"HEALTHY\"},"
	    "\"FruitMarket\":{\"message\":\"starting\",\"status\":\"UPDATING\"}}},"
	    "\"math_app\":{\"status\":\"RUNNING\"}}");
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rayservice_write_app_statuses(NULL, &b), 0);
	CHECK_EQ_STR(b.data, "{}");
	rw_buf_fini(&b);
}

/* KubeRay's TestLabelHeadPodForServeStatus, with the head agent's proxy probe as the check. */
static void
t_head_label(void)
{
	static const struct {
		bool exclude;
		enum rw_probe_state proxy;
		bool draining, have_report, stale, leaving;
		enum rw_rayservice_label want;
	} cases[] = {
	    {true, RW_PROBE_OK, false, true, false, false, RW_RAYSERVICE_LABEL_FALSE},
	    {false, RW_PROBE_OK, false, true, false, false, RW_RAYSERVICE_LABEL_TRUE},
	    {false, RW_PROBE_FAIL, false, true, false, false, RW_RAYSERVICE_LABEL_FALSE},
	    {false, RW_PROBE_REFUSED, false, true, false, false, RW_RAYSERVICE_LABEL_FALSE},
	    {false, RW_PROBE_DRAINING, false, true, false, false, RW_RAYSERVICE_LABEL_FALSE},
	    {false, RW_PROBE_OK, true, true, false, false, RW_RAYSERVICE_LABEL_FALSE},
	    {false, RW_PROBE_OK, false, false, false, false, RW_RAYSERVICE_LABEL_KEEP},
	    {true, RW_PROBE_OK, false, false, false, false, RW_RAYSERVICE_LABEL_FALSE},
	    {false, RW_PROBE_OK, false, true, true, false, RW_RAYSERVICE_LABEL_FALSE},
	    {false, RW_PROBE_OK, false, true, false, true, RW_RAYSERVICE_LABEL_FALSE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_report r;
		struct rw_rayservice_pod_in in = {0};
		struct rw_rayservice_pod_out out;
		head_report(&r, "H", 0, NULL);
		r.proxy.state = cases[i].proxy;
		r.draining = cases[i].draining;
		in.is_head = true;
		in.self = cases[i].have_report ? &r : NULL;
		in.head = in.self;
		in.exclude_head = cases[i].exclude;
		in.stale = cases[i].stale;
		in.leaving = cases[i].leaving;
		rw_rayservice_pod_decide(&in, &out);
		if (out.serve != cases[i].want)
			fprintf(stderr, "  case %zu\n", i);
		CHECK_EQ_INT(out.serve, cases[i].want);
		CHECK_EQ_INT(out.drain, cases[i].leaving);
	}
	CHECK_EQ_STR(rw_rayservice_label_value(RW_RAYSERVICE_LABEL_TRUE), "true");
	CHECK_EQ_STR(rw_rayservice_label_value(RW_RAYSERVICE_LABEL_FALSE), "false");
	CHECK(rw_rayservice_label_value(RW_RAYSERVICE_LABEL_KEEP) == NULL);
}

static void
t_worker_and_placement(void)
{
	struct rw_serve_node nodes[3] = {
	    {"n-head", "10.0.0.1", "HEALTHY", 0},
	    {"n-w1", "10.0.0.2", "HEALTHY", 1},
	    {"n-w2", "10.0.0.3", "", 0},
	};
	static const struct {
		const char *location;
		bool is_head;
		const char *ip;
		int want_expected;
	} cases[] = {
	    {"EveryNode", true, "10.0.0.1", 1},	 {"EveryNode", false, "10.0.0.2", 1},
	    {"EveryNode", false, "10.0.0.3", 0}, {"EveryNode", false, "10.0.0.9", -1},
	    {"", false, "10.0.0.2", 1},		 {"HeadOnly", true, "10.0.0.1", 1},
	    {"HeadOnly", false, "10.0.0.2", 0},	 {"Disabled", true, "10.0.0.1", 0},
	    {"Disabled", false, "10.0.0.2", 0},
	};
	struct rw_report head, w;
	head_report(&head, "H", 0, NULL);
	head.nnodes = 3;
	head.nodes = nodes;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_rayservice_pod_in in = {0};
		struct rw_rayservice_pod_out out;
		snprintf(head.proxy_location, sizeof(head.proxy_location), "%s", cases[i].location);
		memset(&w, 0, sizeof(w));
		snprintf(w.pod_ip, sizeof(w.pod_ip), "%s", cases[i].ip);
		w.proxy.state = RW_PROBE_OK;
		in.is_head = cases[i].is_head;
		in.self = &w;
		in.head = &head;
		rw_rayservice_pod_decide(&in, &out);
		if (out.proxy_expected != cases[i].want_expected)
			fprintf(stderr, "  case %zu\n", i);
		CHECK_EQ_INT(out.proxy_expected, cases[i].want_expected);
		CHECK_EQ_INT(out.serve, RW_RAYSERVICE_LABEL_TRUE);
		CHECK(!out.drain);
	}
	/* No head report: placement unknown. The pod IP from the API wins over the report's. */
	{
		struct rw_rayservice_pod_in in = {0};
		struct rw_rayservice_pod_out out;
		memset(&w, 0, sizeof(w));
		w.proxy.state = RW_PROBE_ABSENT;
		in.self = &w;
		rw_rayservice_pod_decide(&in, &out);
		CHECK_EQ_INT(out.proxy_expected, -1);
		CHECK_EQ_INT(out.serve,
			     RW_RAYSERVICE_LABEL_FALSE); /* a worker without a proxy: out */
		snprintf(head.proxy_location, sizeof(head.proxy_location), "EveryNode");
		in.head = &head;
		in.pod_ip = "10.0.0.2";
		rw_rayservice_pod_decide(&in, &out);
		CHECK_EQ_INT(out.proxy_expected, 1);
	}
	CHECK(rw_rayservice_find_node(&head, "10.0.0.3") == &nodes[2]);
	CHECK(rw_rayservice_find_node(&head, "") == NULL);
	CHECK(rw_rayservice_find_node(NULL, "10.0.0.3") == NULL);
	CHECK_EQ_INT(rw_rayservice_expected_endpoints(&head, "10.0.0.1", false), 2);
	CHECK_EQ_INT(rw_rayservice_expected_endpoints(&head, "10.0.0.1", true), 1);
	CHECK_EQ_INT(rw_rayservice_expected_endpoints(NULL, NULL, false), 0);
	CHECK(!rw_rayservice_proxy_healthy(NULL));
}

static void
t_reply(void)
{
	struct rw_rayservice_serve_cfg cfg = {0};
	struct rw_serve_app apps[1];
	struct rw_report head;
	struct rw_reply rp;
	struct rw_rayservice_pod_out d = {RW_RAYSERVICE_LABEL_TRUE, 1, false};
	struct rw_buf b;
	char err[256];
	static char json[] = "{\"applications\":[]}";

	cfg.json = json;
	cfg.len = strlen(json);
	rw_sha256_hex(json, cfg.len, cfg.hash);
	app(apps, "a", "RUNNING");
	memset(&rp, 0, sizeof(rp));
	/* Nothing applied yet: the config travels with its hash. */
	CHECK_EQ_INT(rw_rayservice_fill_reply(&d, &cfg, NULL, &rp), 0);
	CHECK_EQ_STR(rp.serve_config_hash, cfg.hash);
	CHECK_EQ_STR(rp.serve_config, json);
	CHECK_EQ_INT(rp.proxy_expected, 1);
	CHECK(!rp.drain);
	/* The reply encodes and decodes as a protocol reply. */
	rw_buf_init(&b, 1 << 20);
	CHECK_EQ_INT(rw_reply_encode(&rp, &b), 0);
	{
		struct rw_reply back;
		CHECK_EQ_INT(rw_reply_decode(b.data, b.len, &back, err, sizeof(err)), 0);
		CHECK(rw_reply_equal(&rp, &back));
		rw_reply_fini(&back);
	}
	rw_buf_fini(&b);
	/* Applied and running: the hash alone (the agent has it). */
	head_report(&head, cfg.hash, 1, apps);
	CHECK_EQ_INT(rw_rayservice_fill_reply(&d, &cfg, &head, &rp), 0);
	CHECK_EQ_STR(rp.serve_config_hash, cfg.hash);
	CHECK(rp.serve_config == NULL);
	/* Head restarted (no app): the config again. */
	head.napps = 0;
	CHECK_EQ_INT(rw_rayservice_fill_reply(&d, &cfg, &head, &rp), 0);
	CHECK(rp.serve_config != NULL);
	/* Workers (no cfg): no serve config; drain passes through. */
	d.drain = true;
	d.proxy_expected = 0;
	CHECK_EQ_INT(rw_rayservice_fill_reply(&d, NULL, NULL, &rp), 0);
	CHECK(rp.serve_config == NULL);
	CHECK_EQ_STR(rp.serve_config_hash, "");
	CHECK(rp.drain);
	CHECK_EQ_INT(rp.proxy_expected, 0);
	/* No serve config in the RayService. */
	cfg.json = NULL;
	CHECK_EQ_INT(rw_rayservice_fill_reply(&d, &cfg, NULL, &rp), 0);
	CHECK_EQ_STR(rp.serve_config_hash, "");
	rw_reply_fini(&rp);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"need_submit", t_need_submit},
	    {"apps_ready", t_apps_ready},
	    {"app_statuses", t_app_statuses},
	    {"head_label", t_head_label},
	    {"worker_and_placement", t_worker_and_placement},
	    {"reply", t_reply},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

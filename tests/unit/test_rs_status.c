/*
 * test_rs_status.c - RayService status over a whole life cycle (first
 * cluster, promotion, zero-downtime upgrade, endpoints dropping to zero,
 * initializing timeout, validation failure), numServeEndpoints from
 * EndpointSlices, the traffic switch, the deletion schedule of old clusters
 * and the unhealthy-threshold decisions.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rs_fixture.h"
#include "rs_status.h"

#define P(...) ((const char *const[]){__VA_ARGS__})

static struct rw_doc_node *
pn(const char *s)
{
	struct rw_doc_node *t = NULL;
	CHECK_EQ_INT(rw_doc_parse(s, strlen(s), &t, NULL, 0), 0);
	return t;
}

/* rs with its status replaced by `status` (JSON text), as after a status write. */
static struct rw_rayservice *
with_status(struct rw_rayservice *rs, const char *status, size_t len)
{
	struct rw_buf b;
	struct rw_rayservice *out = NULL;
	struct rw_doc_node *st = NULL;
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_doc_parse(status, len, &st, NULL, 0), 0);
	CHECK_EQ_INT(rw_doc_set(rs->obj.root, "status", st), 0);
	CHECK_EQ_INT(rw_doc_dump(rs->obj.root, &b), 0);
	CHECK_EQ_INT(rw_rayservice_parse(b.data, b.len, &out, NULL, 0), 0);
	rw_buf_fini(&b);
	rw_rayservice_free(rs);
	return out;
}

static struct rw_raycluster *
cluster_of(const struct rw_rayservice *rs, const char *name, const char *status)
{
	struct rw_rayservice_opts o;
	struct rw_buf b;
	struct rw_raycluster *c = NULL;
	rw_rayservice_opts_default(&o);
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_rayservice_build_cluster(rs, name, &o, &b), 0);
	CHECK_EQ_INT(rw_raycluster_parse(b.data, b.len, &c, NULL, 0), 0);
	if (status)
		CHECK_EQ_INT(rw_doc_set(c->obj.root, "status", pn(status)), 0);
	rw_buf_fini(&b);
	return c;
}

static const char *
cond_field(const struct rw_doc_node *st, const char *type, const char *field)
{
	struct rw_doc_node *conds = rw_doc_get(st, "conditions");
	for (int i = 0; conds && i < conds->n; i++)
		if (strcmp(rw_doc_gets(conds->kids[i], "type"), type) == 0)
			return rw_doc_gets(conds->kids[i], field);
	return NULL;
}

static void
head_report(struct rw_report *r, int napps, struct rw_serve_app *apps)
{
	memset(r, 0, sizeof(*r));
	r->has_serve = 1;
	r->serve_api.state = RW_PROBE_OK;
	r->napps = napps;
	r->apps = apps;
}

static void
t_endpoints(void)
{
	static const char s1[] =
	    "{\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":true},"
	    "\"targetRef\":{\"kind\":\"Pod\",\"uid\":\"u1\"}},{\"conditions\":{\"ready\":false},"
	    "\"targetRef\":{\"uid\":\"u2\"}},{\"conditions\":{\"ready\":true}},{\"conditions\":"
	    "{\"ready\":true},\"targetRef\":{\"uid\":\"\"}},{\"conditions\":{},\"targetRef\":"
	    "{\"uid\":\"u4\"}},{\"conditions\":{\"ready\":true},\"targetRef\":{\"uid\":\"u3\"}}]}";
	/* Dual stack: the same pods again with IPv6 addresses. */
	static const char s2[] =
	    "{\"addressType\":\"IPv6\",\"endpoints\":[{\"addresses\":[\"fd00::1\"],"
	    "\"conditions\":{\"ready\":true},\"targetRef\":{\"uid\":\"u1\"}},"
	    "{\"conditions\":{\"ready\":true},\"targetRef\":{\"uid\":\"u3\"}}]}";
	static const char s3[] = "{\"endpoints\":null}";
	static const char bad[] = "{\"endpoints\":[";
	const char *sl[] = {s1, s2, s3, bad, NULL};
	size_t lens[] = {strlen(s1), strlen(s2), strlen(s3), strlen(bad), 0};
	CHECK_EQ_INT(rw_rayservice_count_endpoints(sl, lens, 5), 2);
	CHECK_EQ_INT(rw_rayservice_count_endpoints(sl, lens, 1), 2);
	CHECK_EQ_INT(rw_rayservice_count_endpoints(sl + 2, lens + 2, 2), 0);
	CHECK_EQ_INT(rw_rayservice_count_endpoints(NULL, NULL, 0), 0);
}

static void
t_switch(void)
{
	struct rw_serve_app apps[2];
	struct rw_report h;
	memset(apps, 0, sizeof(apps));
	snprintf(apps[0].name, sizeof(apps[0].name), "a");
	snprintf(apps[0].status, sizeof(apps[0].status), "RUNNING");
	snprintf(apps[1].name, sizeof(apps[1].name), "b");
	snprintf(apps[1].status, sizeof(apps[1].status), "RUNNING");
	head_report(&h, 2, apps);
	static const struct {
		int napps;
		const char *status_b;
		int ready, expected;
		bool want;
	} cases[] = {
	    {2, "RUNNING", 1, 1, true},	 {2, "RUNNING", 3, 3, true},	{2, "RUNNING", 2, 3, false},
	    {2, "RUNNING", 0, 0, false}, {2, "DEPLOYING", 3, 3, false}, {0, "RUNNING", 3, 3, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_rayservice_ready_in in = {&h, cases[i].ready, cases[i].expected};
		h.napps = cases[i].napps;
		snprintf(apps[1].status, sizeof(apps[1].status), "%s", cases[i].status_b);
		CHECK_EQ_INT(rw_rayservice_cluster_can_serve(&in), cases[i].want);
	}
	struct rw_rayservice_ready_in none = {NULL, 5, 0};
	CHECK(!rw_rayservice_cluster_can_serve(&none));

	struct rw_rayservice *rs =
	    rs_make(P("status", "{\"activeServiceStatus\":{\"rayClusterName\":"
				"\"a\"},\"pendingServiceStatus\":{\"rayClusterName\":"
				"\"p\"}}"),
		    1);
	CHECK_EQ_STR(rw_rayservice_service_target(rs, true, true), "p");
	CHECK_EQ_STR(rw_rayservice_service_target(rs, true, false), "a");
	CHECK(rw_rayservice_service_target(rs, false, false) == NULL);
	rw_rayservice_free(rs);
	rs = rs_make(P("status", "{\"pendingServiceStatus\":{\"rayClusterName\":\"p\"}}"), 1);
	CHECK_EQ_STR(rw_rayservice_service_target(rs, false, true), "p");
	CHECK(rw_rayservice_service_target(rs, true, false) == NULL);
	rw_rayservice_free(rs);
}

static void
run_status(struct rw_rayservice **rs, const struct rw_rayservice_status_in *in, struct rw_buf *b)
{
	rw_buf_reset(b);
	CHECK_EQ_INT(rw_rayservice_status(*rs, in, b), 0);
	*rs = with_status(*rs, b->data, b->len);
}

static void
t_lifecycle(void)
{
	struct rw_rayservice *rs = rs_make(NULL, 0);
	struct rw_rayservice_opts o;
	struct rw_buf b, prev;
	struct rw_rayservice_status_in in;
	struct rw_raycluster *c1, *c2;
	struct rw_serve_app apps[1];
	struct rw_report h1, h2;
	struct rw_doc_node *st;
	int64_t v;

	rw_rayservice_opts_default(&o);
	rw_buf_init(&b, 1 << 22);
	rw_buf_init(&prev, 1 << 22);
	memset(apps, 0, sizeof(apps));
	snprintf(apps[0].name, sizeof(apps[0].name), "fruit_app");
	snprintf(apps[0].status, sizeof(apps[0].status), "DEPLOYING");

	/* 1. A new RayService: initializing, and a first (pending) cluster is named. */
	memset(&in, 0, sizeof(in));
	in.opts = &o;
	in.new_suffix = "x7k2p";
	in.now = "2026-01-01T00:00:00Z";
	in.now_ms = 1767225600000LL;
	run_status(&rs, &in, &b);
	st = rs->obj.status;
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "rayservice-sample-x7k2p");
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "");
	CHECK_EQ_INT(rw_doc_int(rw_doc_get(st, "observedGeneration"), &v), 0);
	CHECK_EQ_INT(v, 2);
	CHECK_EQ_STR(cond_field(st, "Ready", "status"), "False");
	CHECK_EQ_STR(cond_field(st, "Ready", "reason"), "Initializing");
	CHECK_EQ_STR(cond_field(st, "Ready", "message"), "RayService is initializing");
	CHECK_EQ_STR(cond_field(st, "Ready", "lastTransitionTime"), "2026-01-01T00:00:00Z");
	CHECK_EQ_STR(cond_field(st, "UpgradeInProgress", "status"), "False");
	CHECK_EQ_STR(cond_field(st, "UpgradeInProgress", "reason"), "Initializing");
	CHECK(rw_doc_get(st, "serviceStatus") == NULL);
	CHECK(rw_doc_get(st, "numServeEndpoints") == NULL);
	CHECK_EQ_STR(rw_doc_gets(st, "lastUpdateTime"), "2026-01-01T00:00:00Z");
	{
		struct rw_doc_node *c = rw_doc_at(rw_doc_get(st, "conditions"), 0);
		CHECK_EQ_INT(rw_doc_int(rw_doc_get(c, "observedGeneration"), &v), 0);
		CHECK_EQ_INT(v, 2);
	}
	CHECK(rw_doc_get(rw_doc_get(st, "activeServiceStatus"), "applicationStatuses") == NULL);

	/* 2. Named but not created yet: the name is kept. */
	in.new_suffix = "bbbbb";
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "rayservice-sample-x7k2p");

	/* 3. The pending cluster runs, its apps deploy; no service yet. */
	c1 = cluster_of(rs, "rayservice-sample-x7k2p", "{\"state\":\"ready\"}");
	head_report(&h1, 1, apps);
	in.pending = c1;
	in.pending_head = &h1;
	in.now = "2026-01-01T00:01:00Z";
	in.now_ms += 60000;
	run_status(&rs, &in, &b);
	st = rs->obj.status;
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "rayservice-sample-x7k2p");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(st, "pendingServiceStatus.rayClusterStatus"), "state"),
		     "ready");
	CHECK_EQ_STR(
	    rw_doc_gets(rw_doc_get(rw_doc_path(st, "pendingServiceStatus.applicationStatuses"),
				   "fruit_app"),
			"status"),
	    "DEPLOYING");
	CHECK_EQ_STR(cond_field(st, "Ready", "reason"), "Initializing");
	CHECK_EQ_STR(cond_field(st, "UpgradeInProgress", "reason"), "Initializing");
	CHECK_EQ_STR(cond_field(st, "Ready", "lastTransitionTime"), "2026-01-01T00:00:00Z");

	/* 4. Apps RUNNING, services created pointing at the pending cluster: promotion. */
	snprintf(apps[0].status, sizeof(apps[0].status), "RUNNING");
	in.svc_cluster = "rayservice-sample-x7k2p";
	in.num_endpoints = 3;
	in.now = "2026-01-01T00:02:00Z";
	in.now_ms += 60000;
	run_status(&rs, &in, &b);
	st = rs->obj.status;
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "rayservice-sample-x7k2p");
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "");
	CHECK(rw_doc_get(st, "pendingServiceStatus") &&
	      rw_doc_get(st, "pendingServiceStatus")->n == 0);
	CHECK_EQ_STR(
	    rw_doc_gets(
		rw_doc_get(rw_doc_path(st, "activeServiceStatus.applicationStatuses"), "fruit_app"),
		"status"),
	    "RUNNING");
	CHECK_EQ_INT(rw_doc_int(rw_doc_get(st, "numServeEndpoints"), &v), 0);
	CHECK_EQ_INT(v, 3);
	CHECK_EQ_STR(cond_field(st, "Ready", "status"), "True");
	CHECK_EQ_STR(cond_field(st, "Ready", "reason"), "NonZeroServeEndpoints");
	CHECK_EQ_STR(cond_field(st, "Ready", "lastTransitionTime"), "2026-01-01T00:02:00Z");
	CHECK_EQ_STR(cond_field(st, "UpgradeInProgress", "status"), "False");
	CHECK_EQ_STR(cond_field(st, "UpgradeInProgress", "reason"), "NoPendingCluster");
	CHECK_EQ_STR(rw_doc_gets(st, "serviceStatus"), "Running");

	/* 5. Steady state: the next pass only moves lastUpdateTime. */
	in.active = c1;
	in.active_head = &h1;
	in.pending = NULL;
	in.pending_head = NULL;
	rw_buf_reset(&prev);
	rw_doc_dump(rs->obj.status, &prev);
	in.now = "2026-01-01T00:03:00Z";
	in.now_ms += 60000;
	run_status(&rs, &in, &b);
	if (!rw_rayservice_status_equal(prev.data, prev.len, b.data, b.len))
		fprintf(stderr, "  %s\n  %s\n", prev.data, b.data);
	CHECK(rw_rayservice_status_equal(prev.data, prev.len, b.data, b.len));
	CHECK(strstr(prev.data, "00:03:00") == NULL && strstr(b.data, "00:03:00") != NULL);
	CHECK_EQ_STR(cond_field(rs->obj.status, "Ready", "lastTransitionTime"),
		     "2026-01-01T00:02:00Z");
	/* A head without agent (KubeRay's, after a switch): no report, the applications kept. */
	in.active_head = NULL;
	in.active_head_without_agent = true;
	run_status(&rs, &in, &b);
	CHECK(rw_doc_path(rs->obj.status, "activeServiceStatus.applicationStatuses.fruit_app") !=
	      NULL);
	CHECK(rw_rayservice_status_equal(prev.data, prev.len, b.data, b.len));
	/* An agent that does not report (yet): no applications known. */
	in.active_head_without_agent = false;
	run_status(&rs, &in, &b);
	CHECK(rw_doc_path(rs->obj.status, "activeServiceStatus.applicationStatuses") == NULL);
	in.active_head = &h1;
	run_status(&rs, &in, &b);
	/* ...and a change in the applications is a change. */
	snprintf(apps[0].status, sizeof(apps[0].status), "UNHEALTHY");
	rw_buf_reset(&prev);
	rw_doc_dump(rs->obj.status, &prev);
	run_status(&rs, &in, &b);
	CHECK(!rw_rayservice_status_equal(prev.data, prev.len, b.data, b.len));
	snprintf(apps[0].status, sizeof(apps[0].status), "RUNNING");

	/* 6. rayVersion changes: a new pending cluster, UpgradeInProgress True. */
	{
		struct rw_doc_node *rv = pn("\"2.53.0\"");
		CHECK_EQ_INT(rw_doc_set(rs->cfg, "rayVersion", rv), 0);
	}
	in.new_suffix = "qqqqq";
	in.now = "2026-01-01T00:04:00Z";
	in.now_ms += 60000;
	run_status(&rs, &in, &b);
	st = rs->obj.status;
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "rayservice-sample-qqqqq");
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "rayservice-sample-x7k2p");
	CHECK_EQ_STR(cond_field(st, "UpgradeInProgress", "status"), "True");
	CHECK_EQ_STR(cond_field(st, "UpgradeInProgress", "reason"),
		     "BothActivePendingClustersExist");
	CHECK_EQ_STR(cond_field(st, "Ready", "status"), "True");
	/* The active cluster is not updated in place during the upgrade. */
	{
		struct rw_rayservice_opts o2 = o;
		o2.version = "other";
		CHECK_EQ_INT(rw_rayservice_cluster_action(rs, c1, NULL, &o2),
			     RW_RAYSERVICE_CLUSTER_CREATE_PENDING);
	}

	/* 7. The new cluster comes up; while the services still point at the old one nothing moves.
	 */
	c2 = cluster_of(rs, "rayservice-sample-qqqqq", NULL);
	head_report(&h2, 1, apps);
	in.pending = c2;
	in.pending_head = &h2;
	in.new_suffix = "zzzzz";
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "rayservice-sample-qqqqq");
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "rayservice-sample-x7k2p");
	/* 8. Services switched to the new cluster: promoted, the old one is unreferenced. */
	in.svc_cluster = "rayservice-sample-qqqqq";
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "rayservice-sample-qqqqq");
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "");
	CHECK_EQ_STR(cond_field(rs->obj.status, "UpgradeInProgress", "reason"), "NoPendingCluster");
	{
		int64_t at;
		CHECK_EQ_INT(rw_rayservice_cleanup_cluster(rs, "rayservice-sample-x7k2p", 0, 1000,
							   false, &at),
			     RW_RAYSERVICE_CLEANUP_SCHEDULE);
		CHECK_EQ_INT(at, 61000);
		CHECK_EQ_INT(rw_rayservice_cleanup_cluster(rs, "rayservice-sample-qqqqq", 0, 1000,
							   false, &at),
			     RW_RAYSERVICE_CLEANUP_KEEP);
	}

	/* 9. Endpoints drop to zero: ZeroServeEndpoints, not Running. */
	in.active = c2;
	in.active_head = &h2;
	in.pending = NULL;
	in.pending_head = NULL;
	in.num_endpoints = 0;
	in.now = "2026-01-01T00:05:00Z";
	run_status(&rs, &in, &b);
	st = rs->obj.status;
	CHECK_EQ_STR(cond_field(st, "Ready", "status"), "False");
	CHECK_EQ_STR(cond_field(st, "Ready", "reason"), "ZeroServeEndpoints");
	CHECK_EQ_STR(cond_field(st, "Ready", "message"), "Number of serve endpoints dropped to 0");
	CHECK_EQ_STR(cond_field(st, "Ready", "lastTransitionTime"), "2026-01-01T00:05:00Z");
	CHECK(rw_doc_get(st, "serviceStatus") == NULL);
	CHECK(rw_doc_get(st, "numServeEndpoints") == NULL);
	/* The reason stays while the status does not change. */
	in.now = "2026-01-01T00:06:00Z";
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(cond_field(rs->obj.status, "Ready", "reason"), "ZeroServeEndpoints");

	/* 10. A validation failure keeps the rest of the status. */
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rayservice_status_invalid(rs, "The RayService spec is invalid: x",
						  "2026-01-01T00:07:00Z", &b),
		     0);
	rs = with_status(rs, b.data, b.len);
	CHECK_EQ_STR(cond_field(rs->obj.status, "Ready", "reason"), "ValidationFailed");
	CHECK_EQ_STR(cond_field(rs->obj.status, "Ready", "message"),
		     "The RayService spec is invalid: x");
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "rayservice-sample-qqqqq");

	rw_raycluster_free(c1);
	rw_raycluster_free(c2);
	rw_buf_fini(&b);
	rw_buf_fini(&prev);
	rw_rayservice_free(rs);
}

static void
t_init_timeout(void)
{
	struct rw_rayservice_opts o;
	struct rw_buf b;
	struct rw_rayservice_status_in in;
	struct rw_rayservice *rs = rs_make(
	    P("metadata|annotations|ray.io/initializing-timeout", "\"5m\"", "status",
	      "{\"pendingServiceStatus\":{\"rayClusterName\":\"rayservice-sample-x7k2p\"},"
	      "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":"
	      "\"Initializing\","
	      "\"message\":\"RayService is initializing\",\"lastTransitionTime\":"
	      "\"2026-01-01T00:00:00Z\"},{\"type\":\"UpgradeInProgress\",\"status\":\"False\","
	      "\"reason\":\"Initializing\",\"message\":\"RayService is initializing\","
	      "\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}]}"),
	    2);
	struct rw_raycluster *c = cluster_of(rs, "rayservice-sample-x7k2p", NULL);
	rw_rayservice_opts_default(&o);
	rw_buf_init(&b, 1 << 22);
	memset(&in, 0, sizeof(in));
	in.opts = &o;
	in.pending = c;
	in.new_suffix = "bbbbb";
	/* 4m59.5s: still initializing. */
	in.now = "2026-01-01T00:04:59Z";
	in.now_ms = 1767225600000LL + 299500;
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(cond_field(rs->obj.status, "Ready", "reason"), "Initializing");
	CHECK(!rw_rayservice_timed_out(rs));
	/* 5m1.25s: timed out, cluster names cleared, UpgradeInProgress left alone. */
	in.now = "2026-01-01T00:05:01Z";
	in.now_ms = 1767225600000LL + 301250;
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(cond_field(rs->obj.status, "Ready", "reason"), "InitializingTimeout");
	CHECK_EQ_STR(
	    cond_field(rs->obj.status, "Ready", "message"),
	    "RayService failed to become ready within the configured timeout of 5m0s. Time "
	    "spent initializing: 5m1.25s");
	CHECK_EQ_STR(cond_field(rs->obj.status, "UpgradeInProgress", "reason"), "Initializing");
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "");
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "");
	CHECK(rw_rayservice_timed_out(rs));
	/* Terminal: later passes leave the status as it is (no new cluster either). */
	{
		struct rw_buf again;
		rw_buf_init(&again, 1 << 22);
		in.now = "2026-01-01T01:00:00Z";
		in.num_endpoints = 5;
		CHECK_EQ_INT(rw_rayservice_status(rs, &in, &again), 0);
		CHECK(rw_rayservice_status_equal(b.data, b.len, again.data, again.len));
		CHECK(strstr(again.data, "01:00:00") == NULL);
		rw_buf_fini(&again);
	}
	/* Every cluster of a timed-out RayService is cleaned up. */
	{
		int64_t at;
		CHECK_EQ_INT(
		    rw_rayservice_cleanup_cluster(rs, "rayservice-sample-x7k2p", 0, 5, false, &at),
		    RW_RAYSERVICE_CLEANUP_SCHEDULE);
	}
	rw_raycluster_free(c);
	rw_buf_fini(&b);
	rw_rayservice_free(rs);
}

static void
t_new_cluster_inputs(void)
{
	struct rw_rayservice_opts o;
	struct rw_buf b;
	struct rw_rayservice_status_in in;
	struct rw_rayservice *rs = rs_make(NULL, 0);
	struct rw_raycluster *a;
	rw_rayservice_opts_default(&o);
	rw_buf_init(&b, 1 << 22);
	memset(&in, 0, sizeof(in));
	in.opts = &o;
	in.now = "2026-01-01T00:00:00Z";
	/* A bad suffix names nothing. */
	in.new_suffix = "aaaaa";
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "");
	/* Recovery: an active cluster with an unchanged spec, forced to a new cluster. */
	rw_rayservice_free(rs);
	rs = rs_make(P("status", "{\"activeServiceStatus\":{\"rayClusterName\":"
				 "\"rayservice-sample-bbbbb\"}}"),
		     1);
	a = cluster_of(rs, "rayservice-sample-bbbbb", NULL);
	in.active = a;
	in.svc_cluster = "rayservice-sample-bbbbb";
	in.new_suffix = "ccccc";
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "");
	in.force_new_cluster = true;
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "rayservice-sample-ccccc");
	CHECK_EQ_STR(rw_rayservice_active_name(rs), "rayservice-sample-bbbbb");
	/* A second forced pass keeps the pending cluster it already has. */
	in.new_suffix = "ddddd";
	run_status(&rs, &in, &b);
	CHECK_EQ_STR(rw_rayservice_pending_name(rs), "rayservice-sample-ccccc");
	rw_raycluster_free(a);
	rw_buf_fini(&b);
	rw_rayservice_free(rs);
}

static void
t_cleanup(void)
{
	struct rw_rayservice *rs = rs_make(
	    P("spec|rayClusterDeletionDelaySeconds", "30", "status",
	      "{\"activeServiceStatus\":{\"rayClusterName\":\"a\"},\"pendingServiceStatus\":"
	      "{\"rayClusterName\":\"p\"}}"),
	    2);
	static const struct {
		const char *name;
		int64_t scheduled, now;
		bool deleting;
		enum rw_rayservice_cleanup want;
		int64_t at;
	} cases[] = {
	    {"a", 0, 1000, false, RW_RAYSERVICE_CLEANUP_KEEP, 0},
	    {"p", 0, 1000, false, RW_RAYSERVICE_CLEANUP_KEEP, 0},
	    {"old", 0, 1000, false, RW_RAYSERVICE_CLEANUP_SCHEDULE, 31000},
	    {"old", 31000, 30999, false, RW_RAYSERVICE_CLEANUP_WAIT, 31000},
	    {"old", 31000, 31000, false, RW_RAYSERVICE_CLEANUP_WAIT, 31000},
	    {"old", 31000, 31001, false, RW_RAYSERVICE_CLEANUP_DELETE, 31000},
	    {"old", 0, 1000, true, RW_RAYSERVICE_CLEANUP_DELETE, 1000},
	    {"a", 0, 1000, true, RW_RAYSERVICE_CLEANUP_DELETE, 1000},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t at = -1;
		CHECK_EQ_INT(rw_rayservice_cleanup_cluster(rs, cases[i].name, cases[i].scheduled,
							   cases[i].now, cases[i].deleting, &at),
			     cases[i].want);
		CHECK_EQ_INT(at, cases[i].at);
	}
	rw_rayservice_free(rs);
	/* Default delay: 60 s; zero: the next pass deletes. */
	rs = rs_make(NULL, 0);
	int64_t at;
	CHECK_EQ_INT(rw_rayservice_cleanup_cluster(rs, "old", 0, 0, false, &at),
		     RW_RAYSERVICE_CLEANUP_SCHEDULE);
	CHECK_EQ_INT(at, 60000);
	rw_rayservice_free(rs);
	rs = rs_make(P("spec|rayClusterDeletionDelaySeconds", "0"), 1);
	CHECK_EQ_INT(rw_rayservice_cleanup_cluster(rs, "old", 0, 5, false, &at),
		     RW_RAYSERVICE_CLEANUP_SCHEDULE);
	CHECK_EQ_INT(rw_rayservice_cleanup_cluster(rs, "old", at, 6, false, &at),
		     RW_RAYSERVICE_CLEANUP_DELETE);
	rw_rayservice_free(rs);
}

static void
t_health(void)
{
	struct rw_serve_app apps[1];
	struct rw_report h;
	struct rw_rayservice_health out;
	struct rw_rayservice_opts o;
	struct rw_rayservice *plain = rs_make(NULL, 0);
	struct rw_rayservice *thr = rs_make(P("spec|serviceUnhealthySecondThreshold", "30",
					      "spec|deploymentUnhealthySecondThreshold", "10"),
					    2);
	struct rw_rayservice *thr_none = rs_make(P("spec|serviceUnhealthySecondThreshold", "30",
						   "spec|upgradeStrategy", "{\"type\":\"None\"}"),
						 2);
	rw_rayservice_opts_default(&o);
	memset(apps, 0, sizeof(apps));
	snprintf(apps[0].name, sizeof(apps[0].name), "a");
	snprintf(apps[0].status, sizeof(apps[0].status), "RUNNING");
	head_report(&h, 1, apps);

	struct rw_rayservice_health_in in = {&h, false, 0, 0, false, &o, 100000, false};
	rw_rayservice_health(thr, &in, &out);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_OK);
	CHECK(out.event_reason == NULL);
	CHECK_EQ_INT(out.svc_since_ms, 0);

	/* Head stale: reported at once, since starts now. */
	in.head_stale = true;
	rw_rayservice_health(plain, &in, &out);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_REPORT);
	CHECK(out.head_unreachable);
	CHECK_EQ_INT(out.svc_since_ms, 100000);
	CHECK_EQ_STR(out.event_reason, "HeadUnreachable");
	/* Without the threshold field: never more than a report. */
	in.svc_since_ms = 1;
	rw_rayservice_health(plain, &in, &out);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_REPORT);
	CHECK_EQ_INT(out.svc_since_ms, 1);
	/* With it: 29 s -> report, 30 s -> new cluster. */
	in.svc_since_ms = 100000 - 29000;
	rw_rayservice_health(thr, &in, &out);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_REPORT);
	in.svc_since_ms = 100000 - 30000;
	rw_rayservice_health(thr, &in, &out);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_NEW_CLUSTER);
	CHECK_EQ_STR(out.event_reason, "ServiceUnhealthyThresholdExceeded");
	CHECK(strstr(out.message, "preparing a new RayCluster") != NULL);
	/* ...but not while a pending cluster exists, nor with upgradeStrategy None. */
	in.pending_exists = true;
	rw_rayservice_health(thr, &in, &out);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_REPORT);
	CHECK(strstr(out.message, "pending RayCluster already exists") != NULL);
	in.pending_exists = false;
	rw_rayservice_health(thr_none, &in, &out);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_REPORT);
	/* The dashboard's serve API failing counts as unreachable; no report at all too. */
	in.head_stale = false;
	in.svc_since_ms = 0;
	h.serve_api.state = RW_PROBE_REFUSED;
	rw_rayservice_health(thr, &in, &out);
	CHECK(out.head_unreachable);
	h.serve_api.state = RW_PROBE_OK;
	in.head = NULL;
	rw_rayservice_health(thr, &in, &out);
	CHECK(out.head_unreachable);
	/* A head without agent (KubeRay's) is not judged, however long it has been silent. */
	in.head_without_agent = true;
	in.svc_since_ms = 100000 - 60000;
	rw_rayservice_health(thr, &in, &out);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_OK);
	CHECK(!out.head_unreachable);
	CHECK(out.event_reason == NULL);
	CHECK_EQ_INT(out.svc_since_ms, 0);
	in.head_without_agent = false;
	in.svc_since_ms = 0;
	in.head = &h;

	/* Unhealthy applications: always only a report. */
	snprintf(apps[0].status, sizeof(apps[0].status), "DEPLOY_FAILED");
	in.svc_since_ms = 5;
	rw_rayservice_health(thr, &in, &out);
	CHECK_EQ_INT(out.svc_since_ms, 0); /* reachable again */
	CHECK(out.apps_unhealthy);
	CHECK_EQ_INT(out.dep_since_ms, 100000);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_REPORT);
	CHECK_EQ_STR(out.event_reason, "ServeApplicationUnhealthy");
	in.dep_since_ms = 100000 - 10000;
	rw_rayservice_health(thr, &in, &out);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_REPORT);
	CHECK_EQ_STR(out.event_reason, "DeploymentUnhealthyThresholdExceeded");
	CHECK(strstr(out.message, "deploymentUnhealthySecondThreshold 10 s") != NULL);
	snprintf(apps[0].status, sizeof(apps[0].status), "RUNNING");
	rw_rayservice_health(thr, &in, &out);
	CHECK_EQ_INT(out.dep_since_ms, 0);
	CHECK_EQ_INT(out.action, RW_RAYSERVICE_HEALTH_OK);

	rw_rayservice_free(plain);
	rw_rayservice_free(thr);
	rw_rayservice_free(thr_none);
}

static void
t_pending_traffic(void)
{
	static const struct {
		const char *active;
		bool exists;
		const char *want;
	} cases[] = {
	    {"", false,
	     "there is no active RayCluster yet: no traffic is served until a RayCluster's "
	     "applications are running"},
	    {NULL, false,
	     "there is no active RayCluster yet: no traffic is served until a RayCluster's "
	     "applications are running"},
	    {"rs-a", true, "traffic stays on the active RayCluster rs-a"},
	    {"rs-a", false, "the active RayCluster rs-a no longer exists: no traffic is served"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[256];
		rw_rayservice_pending_traffic(cases[i].active, cases[i].exists, out, sizeof(out));
		CHECK_EQ_STR(out, cases[i].want);
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"endpoints", t_endpoints},
	    {"switch", t_switch},
	    {"lifecycle", t_lifecycle},
	    {"init_timeout", t_init_timeout},
	    {"new_cluster_inputs", t_new_cluster_inputs},
	    {"cleanup", t_cleanup},
	    {"health", t_health},
	    {"pending_traffic", t_pending_traffic},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

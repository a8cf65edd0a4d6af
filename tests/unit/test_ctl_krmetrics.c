/*
 * test_ctl_krmetrics.c - KubeRay metric facts of objects, /proc parsing for
 * process_*, and the registry's partial deletes and collectors.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "doc.h"
#include "krmetrics.h"
#include "metrics.h"
#include "rwtest.h"

static void
test_krm_parse(void)
{
	static const struct {
		const char *json;
		int rv;
		const char *owner_kind, *deployment;
		bool provisioned, ready, upgrading;
		long long endpoints;
	} cases[] = {
	    /* KubeRay's ray_cluster_metrics_test.go: owner_kind from the label, else "None". */
	    {"{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\",\"uid\":\"u1\","
	     "\"labels\":{\"ray.io/originated-from-crd\":\"RayJob\"}}}",
	     0, "RayJob", "", false, false, false, 0},
	    {"{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\",\"uid\":\"u1\",\"labels\":{}}"
	     ","
	     "\"status\":{\"conditions\":[{\"type\":\"RayClusterProvisioned\",\"status\":\"True\"}]"
	     "}}",
	     0, "None", "", true, false, false, 0},
	    {"{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\",\"uid\":\"u1\"},"
	     "\"status\":{\"conditions\":[{\"type\":\"RayClusterProvisioned\",\"status\":\"False\"}"
	     "]}}",
	     0, "None", "", false, false, false, 0},
	    /* RayService: Ready and UpgradeInProgress; Unknown is not true. */
	    {"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"uid\":\"u2\"},\"status\":{"
	     "\"numServeEndpoints\":3,\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},"
	     "{\"type\":\"UpgradeInProgress\",\"status\":\"Unknown\"}]}}",
	     0, "None", "", false, true, false, 3},
	    {"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"uid\":\"u2\"},\"status\":{"
	     "\"conditions\":[{\"type\":\"UpgradeInProgress\",\"status\":\"True\"}]}}",
	     0, "None", "", false, false, true, 0},
	    /* RayJob: jobDeploymentStatus, "" before the first status write. */
	    {"{\"metadata\":{\"name\":\"j\",\"namespace\":\"n\",\"uid\":\"u3\"},"
	     "\"status\":{\"jobDeploymentStatus\":\"Running\"}}",
	     0, "None", "Running", false, false, false, 0},
	    {"{\"metadata\":{\"name\":\"j\",\"namespace\":\"n\",\"uid\":\"u3\"}}", 0, "None", "",
	     false, false, false, 0},
	    /* Refused: no uid, not JSON, an over-long namespace. */
	    {"{\"metadata\":{\"name\":\"j\",\"namespace\":\"n\"}}", -EINVAL, NULL, NULL, false,
	     false, false, 0},
	    {"{not json", -EINVAL, NULL, NULL, false, false, false, 0},
	    {"{\"metadata\":{\"name\":\"j\",\"namespace\":"
	     "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	     "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\",\"uid\":\"u\"}}",
	     -EINVAL, NULL, NULL, false, false, false, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_krm_obj o;
		int rv = rw_krm_parse(cases[i].json, strlen(cases[i].json), &o);
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv != 0)
			continue;
		CHECK_EQ_STR(o.owner_kind, cases[i].owner_kind);
		CHECK_EQ_STR(o.deployment_status, cases[i].deployment);
		CHECK_EQ_INT(o.provisioned, cases[i].provisioned);
		CHECK_EQ_INT(o.ready, cases[i].ready);
		CHECK_EQ_INT(o.upgrading, cases[i].upgrading);
		CHECK_EQ_INT(o.serve_endpoints, cases[i].endpoints);
	}
	CHECK_EQ_STR(rw_krm_bool(true), "true");
	CHECK_EQ_STR(rw_krm_bool(false), "false");
}

/* The one reading of a condition list every kind shares (meta.IsStatusConditionTrue). */
static void
test_cond_true(void)
{
	static const struct {
		const char *conds, *type;
		bool want;
	} cases[] = {
	    {"[{\"type\":\"Ready\",\"status\":\"True\"}]", "Ready", true},
	    {"[{\"type\":\"Ready\",\"status\":\"False\"}]", "Ready", false},
	    {"[{\"type\":\"Ready\",\"status\":\"true\"}]", "Ready", false}, /* exact, as Go */
	    {"[{\"type\":\"Ready\"}]", "Ready", false},
	    {"[{\"type\":\"Other\",\"status\":\"True\"}]", "Ready", false},
	    {"[{\"status\":\"True\"},{\"type\":\"Ready\",\"status\":\"True\"}]", "Ready", true},
	    {"[{\"type\":7,\"status\":\"True\"}]", "Ready", false},
	    {"{\"type\":\"Ready\",\"status\":\"True\"}", "Ready", false}, /* not a list */
	    {"[]", "Ready", false},
	    {"null", "Ready", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_doc_node *d = NULL;
		char err[128];
		CHECK_EQ_INT(
		    rw_doc_parse(cases[i].conds, strlen(cases[i].conds), &d, err, sizeof(err)), 0);
		CHECK_EQ_INT(rw_doc_cond_true(d, cases[i].type), cases[i].want);
		CHECK_EQ_INT(rw_doc_cond(d, cases[i].type) != NULL,
			     strstr(cases[i].conds, "\"type\":\"Ready\"") != NULL &&
				 cases[i].conds[0] == '[');
		rw_doc_free(d);
	}
	CHECK(!rw_doc_cond_true(NULL, "Ready"));
}

static void
test_krm_cache(void)
{
	static const char *j1 = "{\"metadata\":{\"name\":\"c\",\"namespace\":\"n\",\"uid\":\"u\"},"
				"\"status\":{\"jobDeploymentStatus\":\"Running\"}}";
	static const char *j2 = "{\"metadata\":{\"name\":\"c\",\"namespace\":\"n\",\"uid\":\"u\"},"
				"\"status\":{\"jobDeploymentStatus\":\"Complete\"}}";
	struct rw_krm_cache c;
	const struct rw_krm_obj *o;
	rw_krm_cache_init(&c);
	rw_krm_cache_begin(&c);
	o = rw_krm_cache_get(&c, "n", "c", "10", j1, strlen(j1));
	CHECK(o && !strcmp(o->deployment_status, "Running"));
	rw_krm_cache_end(&c);
	/* Same resourceVersion: the facts parsed before (the text is not read again). */
	rw_krm_cache_begin(&c);
	o = rw_krm_cache_get(&c, "n", "c", "10", j2, strlen(j2));
	CHECK(o && !strcmp(o->deployment_status, "Running"));
	/* A new resourceVersion, or none: parsed again. */
	o = rw_krm_cache_get(&c, "n", "c", "11", j2, strlen(j2));
	CHECK(o && !strcmp(o->deployment_status, "Complete"));
	o = rw_krm_cache_get(&c, "n", "c", "", j1, strlen(j1));
	CHECK(o && !strcmp(o->deployment_status, "Running"));
	/* Unparsable: NULL, kept as such until it changes. */
	CHECK(rw_krm_cache_get(&c, "n", "bad", "1", "{", 1) == NULL);
	rw_krm_cache_end(&c);
	CHECK_EQ_INT(c.map.n, 2);
	/* Objects not visited in a sweep are dropped at its end (more than one batch of them). */
	for (int i = 0; i < 150; i++) {
		char name[16];
		snprintf(name, sizeof(name), "o%d", i);
		rw_krm_cache_get(&c, "n", name, "1", j1, strlen(j1));
	}
	CHECK_EQ_INT(c.map.n, 152);
	rw_krm_cache_begin(&c);
	rw_krm_cache_get(&c, "n", "o7", "1", j1, strlen(j1));
	rw_krm_cache_end(&c);
	CHECK_EQ_INT(c.map.n, 1);
	rw_krm_cache_fini(&c);
}

static void
test_proc_stat(void)
{
	static const struct {
		const char *text;
		int rv;
		unsigned long long utime, stime, start, vsize;
		long long rss;
	} cases[] = {
	    {"1234 (raywarden-contr) S 1 1234 1234 0 -1 4194560 500 0 0 0 150 25 0 0 20 0 3 0 "
	     "98765 123456789 4321 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 "
	     "0\n",
	     0, 150, 25, 98765, 123456789, 4321},
	    /* comm with spaces and parentheses: fields start after the last ')'. */
	    {"7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 1000 2 0\n", 0, 3, 4, 55,
	     1000, 2},
	    {"7 (short) R 1 2 3\n", -EINVAL, 0, 0, 0, 0, 0},
	    {"no parenthesis at all", -EINVAL, 0, 0, 0, 0, 0},
	    {"7 (x) R 1 2 3 x 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21\n", -EINVAL, 0, 0, 0, 0,
	     0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_proc_stat ps;
		int rv = rw_proc_stat_parse(cases[i].text, strlen(cases[i].text), &ps);
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv != 0)
			continue;
		CHECK_EQ_INT(ps.utime, cases[i].utime);
		CHECK_EQ_INT(ps.stime, cases[i].stime);
		CHECK_EQ_INT(ps.starttime, cases[i].start);
		CHECK_EQ_INT(ps.vsize, cases[i].vsize);
		CHECK_EQ_INT(ps.rss, cases[i].rss);
	}
	long long bt = 0;
	const char *st = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n";
	CHECK_EQ_INT(rw_proc_btime_parse(st, strlen(st), &bt), 0);
	CHECK_EQ_INT(bt, 1700000000);
	CHECK_EQ_INT(rw_proc_btime_parse("cpu 1\n", 6, &bt), -EINVAL);
	CHECK_EQ_INT(rw_proc_btime_parse("btime x\n", 8, &bt), -EINVAL);
}

static int collected;

static void
collect_counter(void *ud)
{
	rw_met_set(ud, (const char *const[]){"a", "n1", "u1"}, ++collected);
}

static void
test_partial_delete_and_collectors(void)
{
	struct rw_met *m;
	struct rw_buf b;
	CHECK_EQ_INT(rw_met_new(0, &m), 0);
	struct rw_met_family *g = rw_met_gauge(
	    m, "t_dur_seconds", "x", (const char *const[]){"name", "namespace", "uid", NULL});
	/* KubeRay's TestDeleteRayClusterMetrics, on this registry. */
	rw_met_set(g, (const char *const[]){"cluster1", "ns1", "uid1"}, 10.5);
	rw_met_set(g, (const char *const[]){"cluster2", "ns2", "uid2"}, 20.3);
	rw_met_set(g, (const char *const[]){"cluster3", "ns1", "uid3"}, 5.7);
	rw_met_set(g, (const char *const[]){"cluster1", "ns1", "uid9"}, 1);
	static const char *const nn[] = {"name", "namespace", NULL};
	CHECK_EQ_INT(rw_met_remove_matching(g, nn, (const char *const[]){"cluster1", "ns1"}), 2);
	CHECK(rw_met_value(g, (const char *const[]){"cluster1", "ns1", "uid1"}) == -1);
	CHECK(rw_met_value(g, (const char *const[]){"cluster3", "ns1", "uid3"}) == 5.7);
	CHECK_EQ_INT(rw_met_remove_matching(g, nn, (const char *const[]){"", "ns1"}), 0);
	CHECK_EQ_INT(rw_met_remove_matching(g, nn, (const char *const[]){"ns2", "cluster2"}), 0);
	CHECK_EQ_INT(rw_met_remove_matching(g, (const char *const[]){"nope", NULL},
					    (const char *const[]){"x"}),
		     0);
	/* The series are gone from the map too: setting again makes one series. */
	rw_met_set(g, (const char *const[]){"cluster1", "ns1", "uid1"}, 2);
	CHECK(rw_met_value(g, (const char *const[]){"cluster1", "ns1", "uid1"}) == 2);
	rw_met_clear(g);
	CHECK(rw_met_value(g, (const char *const[]){"cluster2", "ns2", "uid2"}) == -1);
	/* Collectors run before a render, in order, and can be removed. */
	collected = 0;
	CHECK_EQ_INT(rw_met_add_collector(m, collect_counter, g), 0);
	rw_met_collect(m);
	rw_met_collect(m);
	CHECK(rw_met_value(g, (const char *const[]){"a", "n1", "u1"}) == 2);
	rw_met_remove_collector(m, collect_counter, g);
	rw_met_collect(m);
	CHECK_EQ_INT(collected, 2);
	for (int i = 0; i < RW_MET_MAX_COLLECTORS; i++)
		CHECK_EQ_INT(rw_met_add_collector(m, collect_counter, g), 0);
	CHECK_EQ_INT(rw_met_add_collector(m, collect_counter, g), -ENOSPC);
	/* A counter copied from a monotonic source. */
	struct rw_met_family *c = rw_met_counter(m, "t_cpu_seconds_total", "x", NULL);
	rw_met_set(c, NULL, 1.5);
	CHECK(rw_met_value(c, NULL) == 1.5);
	rw_buf_init(&b, 1 << 20);
	CHECK_EQ_INT(rw_met_render(m, &b), 0);
	CHECK(strstr(rw_buf_cstr(&b), "t_cpu_seconds_total 1.5\n") != NULL);
	rw_buf_fini(&b);
	rw_met_free(m);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"KubeRay object facts", test_krm_parse},
	    {"condition lists", test_cond_true},
	    {"facts cached by resourceVersion", test_krm_cache},
	    {"/proc/self/stat and btime", test_proc_stat},
	    {"partial deletes and collectors", test_partial_delete_and_collectors},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

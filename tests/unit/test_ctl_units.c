/*
 * test_ctl_units.c - pure parts of the controller machinery: metrics text
 * format and bounds, the token bucket, back-off, expectations, the watch
 * line splitter and event parser, RFC 3339 times, the pod decoder, JSON
 * equality, query escaping, flags and listen addresses.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "batchsched.h"
#include "expect.h"
#include "informer.h"
#include "kube.h"
#include "manager.h"
#include "metrics.h"
#include "rwtest.h"
#include "workqueue.h"

static void
test_metrics_format(void)
{
	struct rw_met *m;
	struct rw_buf b;
	static const double bounds[] = {0.1, 1};
	CHECK_EQ_INT(rw_met_new(0, &m), 0);
	struct rw_met_family *c = rw_met_counter(m, "t_requests_total", "Requests \\ seen.\nok",
						 (const char *const[]){"verb", "code", NULL});
	struct rw_met_family *g = rw_met_gauge(m, "t_depth", "Depth.", NULL);
	struct rw_met_family *h = rw_met_histogram(m, "t_latency_seconds", "Latency.",
						   (const char *const[]){"verb", NULL}, bounds, 2);
	CHECK(c && g && h);
	CHECK(rw_met_counter(m, "t_requests_total", "x",
			     (const char *const[]){"verb", "code", NULL}) == c);
	CHECK(rw_met_gauge(m, "t_requests_total", "x", NULL) == NULL); /* type clash */
	CHECK(rw_met_counter(m, "9bad", "x", NULL) == NULL);
	CHECK(rw_met_counter(m, "ok", "x", (const char *const[]){"bad-label", NULL}) == NULL);
	rw_met_add(c, (const char *const[]){"get", "200"}, 1);
	rw_met_add(c, (const char *const[]){"get", "200"}, 2);
	rw_met_add(c, (const char *const[]){"list", "a\"b\\c\nd"}, 1);
	rw_met_add(c, (const char *const[]){"get", "200"}, -5); /* refused */
	rw_met_set(g, NULL, 7);
	rw_met_observe(h, (const char *const[]){"get"}, 0.05);
	rw_met_observe(h, (const char *const[]){"get"}, 0.5);
	rw_met_observe(h, (const char *const[]){"get"}, 5);
	CHECK(rw_met_value(c, (const char *const[]){"get", "200"}) == 3);
	CHECK(rw_met_value(h, (const char *const[]){"get"}) == 3);
	rw_buf_init(&b, 1 << 20);
	CHECK_EQ_INT(rw_met_render(m, &b), 0);
	const char *t = rw_buf_cstr(&b);
	CHECK(strstr(t, "# HELP t_requests_total Requests \\\\ seen.\\nok\n") != NULL);
	CHECK(strstr(t, "# TYPE t_requests_total counter\n") != NULL);
	CHECK(strstr(t, "t_requests_total{verb=\"get\",code=\"200\"} 3\n") != NULL);
	CHECK(strstr(t, "t_requests_total{verb=\"list\",code=\"a\\\"b\\\\c\\nd\"} 1\n") != NULL);
	CHECK(strstr(t, "# TYPE t_depth gauge\nt_depth 7\n") != NULL);
	CHECK(strstr(t, "t_latency_seconds_bucket{verb=\"get\",le=\"0.1\"} 1\n") != NULL);
	CHECK(strstr(t, "t_latency_seconds_bucket{verb=\"get\",le=\"1\"} 2\n") != NULL);
	CHECK(strstr(t, "t_latency_seconds_bucket{verb=\"get\",le=\"+Inf\"} 3\n") != NULL);
	CHECK(strstr(t, "t_latency_seconds_sum{verb=\"get\"} 5.55\n") != NULL);
	CHECK(strstr(t, "t_latency_seconds_count{verb=\"get\"} 3\n") != NULL);
	/* Every line is a comment or "name[{...}] value". */
	for (const char *p = t; *p;) {
		const char *nl = strchr(p, '\n');
		CHECK(nl != NULL);
		if (!nl)
			break;
		if (*p != '#') {
			const char *sp = memchr(p, ' ', (size_t)(nl - p));
			CHECK(sp != NULL && sp + 1 < nl);
		}
		p = nl + 1;
	}
	CHECK_EQ_INT(rw_met_remove(c, (const char *const[]){"get", "200"}), 0);
	CHECK_EQ_INT(rw_met_remove(c, (const char *const[]){"get", "200"}), -ENOENT);
	rw_buf_fini(&b);
	rw_met_free(m);
}

static void
test_metrics_bound(void)
{
	struct rw_met *m;
	char v[16];
	CHECK_EQ_INT(rw_met_new(10, &m), 0); /* one series is the dropped counter */
	struct rw_met_family *c =
	    rw_met_counter(m, "t_total", "x", (const char *const[]){"k", NULL});
	for (int i = 0; i < 50; i++) {
		snprintf(v, sizeof(v), "%d", i);
		rw_met_add(c, (const char *const[]){v}, 1);
	}
	CHECK_EQ_INT(rw_met_dropped(m), 41);
	CHECK(rw_met_value(c, (const char *const[]){"8"}) == 1);
	CHECK(rw_met_value(c, (const char *const[]){"9"}) == -1);
	struct rw_buf b;
	rw_buf_init(&b, 1 << 16);
	rw_met_render(m, &b);
	CHECK(strstr(rw_buf_cstr(&b), "raywarden_metrics_series_dropped_total 41\n") != NULL);
	rw_buf_fini(&b);
	/* Removing a series frees room for a new one. */
	CHECK_EQ_INT(rw_met_remove(c, (const char *const[]){"0"}), 0);
	rw_met_add(c, (const char *const[]){"new"}, 1);
	CHECK(rw_met_value(c, (const char *const[]){"new"}) == 1);
	rw_met_free(m);
	rw_met_add(NULL, NULL, 1); /* NULL family is a no-op */
}

static void
test_token_bucket(void)
{
	struct rw_kube_tb tb;
	uint64_t now = 1000;
	int taken = 0;
	rw_kube_tb_init(&tb, 10, 5, now); /* 10/s, burst 5 */
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(rw_kube_tb_take(&tb, now), 0);
	uint64_t w = rw_kube_tb_take(&tb, now);
	CHECK(w >= 99 && w <= 100);
	CHECK_EQ_INT(rw_kube_tb_take(&tb, now + 100), 0);
	CHECK(rw_kube_tb_take(&tb, now + 100) > 0);
	/* Over 10 s at most 10*10 + burst tokens. */
	rw_kube_tb_init(&tb, 10, 5, 0);
	for (uint64_t t = 0; t <= 10000; t += 7)
		while (rw_kube_tb_take(&tb, t) == 0)
			taken++;
	CHECK(taken >= 100 && taken <= 106);
	/* The bucket never holds more than burst after a long pause. */
	CHECK_EQ_INT(rw_kube_tb_take(&tb, 1000000), 0);
	taken = 1;
	while (rw_kube_tb_take(&tb, 1000000) == 0)
		taken++;
	CHECK_EQ_INT(taken, 5);
	/* Unlimited. */
	rw_kube_tb_init(&tb, 0, 1, 0);
	for (int i = 0; i < 1000; i++)
		CHECK_EQ_INT(rw_kube_tb_take(&tb, 0), 0);
}

static void
test_backoff(void)
{
	CHECK_EQ_INT(rw_wq_backoff_ms(0, 5, 1000000), 0);
	CHECK_EQ_INT(rw_wq_backoff_ms(1, 5, 1000000), 5);
	CHECK_EQ_INT(rw_wq_backoff_ms(2, 5, 1000000), 10);
	CHECK_EQ_INT(rw_wq_backoff_ms(10, 5, 1000000), 2560);
	CHECK_EQ_INT(rw_wq_backoff_ms(18, 5, 1000000), 655360);
	CHECK_EQ_INT(rw_wq_backoff_ms(19, 5, 1000000), 1000000);
	CHECK_EQ_INT(rw_wq_backoff_ms(500, 5, 1000000), 1000000);
	CHECK_EQ_INT(rw_wq_backoff_ms(4000000000u, 5, 1000000), 1000000);
}

static void
test_expectations(void)
{
	struct rw_exp *e;
	CHECK_EQ_INT(rw_exp_new(30000, &e), 0);
	CHECK(rw_exp_satisfied(e, "ns/c", "workers", 0));
	CHECK_EQ_INT(rw_exp_expect_create(e, "ns/c", "workers", "p1", 1000), 0);
	CHECK_EQ_INT(rw_exp_expect_create(e, "ns/c", "workers", "p2", 1000), 0);
	CHECK_EQ_INT(rw_exp_expect_delete(e, "ns/c", "", "head", 1000), 0);
	CHECK_EQ_INT(rw_exp_pending(e, "ns/c", "workers"), 2);
	CHECK(!rw_exp_satisfied(e, "ns/c", "workers", 2000));
	CHECK(!rw_exp_satisfied(e, "ns/c", "", 2000));
	CHECK(rw_exp_satisfied(e, "ns/other", "workers", 2000));
	rw_exp_observe_add(e, "ns/c", "workers", "p1");
	rw_exp_observe_add(e, "ns/c", "workers", "unrelated");
	CHECK(!rw_exp_satisfied(e, "ns/c", "workers", 2000));
	rw_exp_forget(e, "ns/c", "workers", "p2"); /* the create failed */
	CHECK(rw_exp_satisfied(e, "ns/c", "workers", 2000));
	/* An add does not satisfy a delete; a delete does. */
	rw_exp_observe_add(e, "ns/c", "", "head");
	CHECK(!rw_exp_satisfied(e, "ns/c", "", 2000));
	rw_exp_observe_delete(e, "ns/c", "", "head");
	CHECK(rw_exp_satisfied(e, "ns/c", "", 2000));
	/* Expiry after the timeout. */
	rw_exp_expect_create(e, "ns/c", "g", "p3", 5000);
	CHECK(!rw_exp_satisfied(e, "ns/c", "g", 34999));
	CHECK(rw_exp_satisfied(e, "ns/c", "g", 35000));
	CHECK_EQ_INT(rw_exp_pending(e, "ns/c", "g"), 0);
	/* The head group waits longer: a second head pod is a dead end. */
	rw_exp_expect_create(e, "ns/c", "", "head-2", 5000);
	CHECK(!rw_exp_satisfied(e, "ns/c", "", 35000));
	CHECK(!rw_exp_satisfied(e, "ns/c", "", 5000 + RW_EXP_HEAD_TIMEOUT_MS - 1));
	CHECK(rw_exp_satisfied(e, "ns/c", "", 5000 + RW_EXP_HEAD_TIMEOUT_MS));
	/* Clear drops a whole cluster only. */
	rw_exp_expect_create(e, "ns/c", "g", "a", 0);
	rw_exp_expect_create(e, "ns/c2", "g", "b", 0);
	rw_exp_clear(e, "ns/c");
	CHECK(rw_exp_satisfied(e, "ns/c", "g", 1));
	CHECK(!rw_exp_satisfied(e, "ns/c2", "g", 1));
	/* Many pods in one group. */
	char name[32];
	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "w-%d", i);
		rw_exp_expect_create(e, "ns/big", "w", name, 0);
	}
	for (int i = 0; i < 499; i++) {
		snprintf(name, sizeof(name), "w-%d", i);
		rw_exp_observe_add(e, "ns/big", "w", name);
	}
	CHECK_EQ_INT(rw_exp_pending(e, "ns/big", "w"), 1);
	rw_exp_observe_delete(e, "ns/big", "w", "w-499");
	CHECK(rw_exp_satisfied(e, "ns/big", "w", 1));
	rw_exp_free(e);
}

struct lines_ctx {
	char got[8][64];
	int n;
};

static int
collect(const char *line, size_t len, void *ud)
{
	struct lines_ctx *c = ud;
	if (c->n < 8)
		snprintf(c->got[c->n], sizeof(c->got[0]), "%.*s", (int)len, line);
	c->n++;
	return 0;
}

static void
test_line_splitter(void)
{
	static const char stream[] = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n{\"d\"";
	/* Every split of the stream into two or three pieces yields the same lines. */
	for (size_t i = 0; i <= sizeof(stream) - 1; i++) {
		for (size_t k = i; k <= sizeof(stream) - 1; k++) {
			struct rw_inf_lines l;
			struct lines_ctx c = {.n = 0};
			rw_inf_lines_init(&l, 64);
			CHECK_EQ_INT(rw_inf_lines_feed(&l, stream, i, collect, &c), 0);
			CHECK_EQ_INT(rw_inf_lines_feed(&l, stream + i, k - i, collect, &c), 0);
			CHECK_EQ_INT(
			    rw_inf_lines_feed(&l, stream + k, sizeof(stream) - 1 - k, collect, &c),
			    0);
			CHECK_EQ_INT(c.n, 3);
			CHECK_EQ_STR(c.got[0], "{\"a\":1}");
			CHECK_EQ_STR(c.got[1], "{\"b\":2}");
			CHECK_EQ_STR(c.got[2], "{\"c\":3}");
			CHECK_EQ_INT(l.b.len, 4); /* {"d" waits for its newline */
			rw_inf_lines_fini(&l);
		}
	}
	/* One byte at a time. */
	struct rw_inf_lines l;
	struct lines_ctx c = {.n = 0};
	rw_inf_lines_init(&l, 64);
	for (size_t i = 0; i < sizeof(stream) - 1; i++)
		rw_inf_lines_feed(&l, stream + i, 1, collect, &c);
	CHECK_EQ_INT(c.n, 3);
	rw_inf_lines_fini(&l);
	/* A line over the bound fails, in one piece or in many. */
	char big[200];
	memset(big, 'x', sizeof(big));
	rw_inf_lines_init(&l, 100);
	c.n = 0;
	CHECK_EQ_INT(rw_inf_lines_feed(&l, big, 101, collect, &c), -EMSGSIZE);
	rw_inf_lines_reset(&l);
	CHECK_EQ_INT(rw_inf_lines_feed(&l, big, 60, collect, &c), 0);
	CHECK_EQ_INT(rw_inf_lines_feed(&l, big, 60, collect, &c), -EMSGSIZE);
	CHECK_EQ_INT(l.b.len, 0);
	CHECK_EQ_INT(rw_inf_lines_feed(&l, "ok\n", 3, collect, &c), 0);
	CHECK_EQ_INT(c.n, 1);
	/* Exactly at the bound is fine. */
	big[100] = '\n';
	CHECK_EQ_INT(rw_inf_lines_feed(&l, big, 101, collect, &c), 0);
	CHECK_EQ_INT(c.n, 2);
	rw_inf_lines_fini(&l);
}

static void
test_parse_event(void)
{
	static const struct {
		const char *line;
		int rv;
		enum rw_inf_evtype type;
		const char *rv_str;
		long code;
	} cases[] = {
	    {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":"
	     "\"12\"}}}",
	     0, RW_INF_ADDED, "12", 0},
	    {"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"13\"}}}", 0,
	     RW_INF_MODIFIED, "13", 0},
	    {"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"resourceVersion\":\"14\"}}}", 0,
	     RW_INF_DELETED, "14", 0},
	    {"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{"
	     "\"resourceVersion\":\"99\",\"creationTimestamp\":null}}}",
	     0, RW_INF_BOOKMARK, "99", 0},
	    {"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":"
	     "\"Expired\"}}",
	     0, RW_INF_ERROR, "", 410},
	    {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}", -EINVAL, 0, "", 0},
	    {"{\"type\":\"WHAT\",\"object\":{}}", -EINVAL, 0, "", 0},
	    {"{\"type\":\"ADDED\",\"object\":[]}", -EINVAL, 0, "", 0},
	    {"{\"kind\":\"Status\",\"code\":410}", -EINVAL, 0, "", 0},
	    {"[1,2]", -EINVAL, 0, "", 0},
	    {"{\"type\":\"ADDED\"", -EINVAL, 0, "", 0},
	    {"", -EINVAL, 0, "", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_json j;
		struct rw_inf_event ev;
		int rv = rw_inf_parse_event(cases[i].line, strlen(cases[i].line), &j, &ev);
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv == 0) {
			CHECK_EQ_INT(ev.type, cases[i].type);
			CHECK_EQ_STR(ev.rv, cases[i].rv_str);
			CHECK_EQ_INT(ev.code, cases[i].code);
		}
		rw_json_fini(&j);
	}
}

static void
test_parse_time(void)
{
	int64_t t = 0;
	CHECK_EQ_INT(rw_inf_parse_time("1970-01-01T00:00:00Z", 20, &t), 0);
	CHECK_EQ_INT(t, 0);
	CHECK_EQ_INT(rw_inf_parse_time("2024-02-29T12:34:56Z", 20, &t), 0);
	CHECK_EQ_INT(t, 1709210096);
	CHECK_EQ_INT(rw_inf_parse_time("2024-02-29T12:34:56.123456Z", 27, &t), 0);
	CHECK_EQ_INT(t, 1709210096);
	CHECK_EQ_INT(rw_inf_parse_time("2024-02-29T14:34:56+02:00", 25, &t), 0);
	CHECK_EQ_INT(t, 1709210096);
	CHECK_EQ_INT(rw_inf_parse_time("2024-02-29 12:34:56Z", 20, &t), -EINVAL);
	CHECK_EQ_INT(rw_inf_parse_time("2024-13-01T00:00:00Z", 20, &t), -EINVAL);
	CHECK_EQ_INT(rw_inf_parse_time("2024-01-01T00:00:00", 19, &t), -EINVAL);
	CHECK_EQ_INT(rw_inf_parse_time("2024-01-01T00:00:00Zjunk", 24, &t), -EINVAL);
}

static const char pod_json[] =
    "{\"metadata\":{\"name\":\"rc-head-x\",\"namespace\":\"ns1\",\"uid\":\"u-1\","
    "\"resourceVersion\":\"77\",\"generation\":3,\"creationTimestamp\":\"2024-01-01T00:00:10Z\","
    "\"deletionTimestamp\":\"2024-01-01T00:01:00Z\",\"labels\":{\"ray.io/cluster\":\"rc\","
    "\"ray.io/group\":\"headgroup\",\"ray.io/node-type\":\"head\",\"ray.io/serve\":\"true\","
    "\"other\":\"x\"},\"ownerReferences\":[{\"uid\":\"not-ctl\"},{\"uid\":\"owner-1\","
    "\"controller\":true}]},\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":"
    "\"ray-head\"},{\"name\":\"raywarden-agent\"}]},\"status\":{\"phase\":\"Running\",\"podIP\":"
    "\"10.0.0.5\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},{\"type\":"
    "\"ray.io/agent-ready\",\"status\":\"True\"}],\"containerStatuses\":[{\"name\":"
    "\"raywarden-agent\",\"restartCount\":9,\"state\":{\"running\":{}}},{\"name\":\"ray-head\","
    "\"restartCount\":2,\"state\":{\"terminated\":{\"exitCode\":137}}},{\"name\":"
    "\"ray-job-submitter\",\"state\":{\"terminated\":{\"exitCode\":1,\"finishedAt\":"
    "\"2024-01-01T00:00:40Z\"}}}]}}";

static void
test_pod_decoder(void)
{
	struct rw_json j = {0};
	char key[128];
	CHECK_EQ_INT(rw_json_parse(&j, pod_json, strlen(pod_json), 4096, NULL, 0), 0);
	struct rw_inf_pod *p = rw_inf_pod_type.decode(&j, 0);
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ_STR(p->meta.ns, "ns1");
		CHECK_EQ_STR(p->meta.name, "rc-head-x");
		CHECK_EQ_STR(p->meta.uid, "u-1");
		CHECK_EQ_STR(p->meta.rv, "77");
		CHECK_EQ_INT(p->meta.generation, 3);
		CHECK_EQ_INT(p->meta.created, 1704067210);
		CHECK_EQ_INT(p->meta.deleted, 1704067260);
		CHECK_EQ_STR(p->cluster, "rc");
		CHECK_EQ_STR(p->group, "headgroup");
		CHECK_EQ_STR(p->node_type, "head");
		CHECK_EQ_STR(p->serve, "true");
		CHECK_EQ_STR(p->owner_uid, "owner-1");
		CHECK_EQ_STR(p->phase, "Running");
		CHECK_EQ_STR(p->pod_ip, "10.0.0.5");
		CHECK_EQ_STR(p->restart_policy, "Never");
		CHECK_EQ_STR(p->ray_container, "ray-head");
		CHECK_EQ_INT(p->ready, RW_COND_FALSE);
		CHECK_EQ_INT(p->agent_ready, RW_COND_TRUE);
		CHECK_EQ_INT(p->ray_terminated, 1);
		CHECK_EQ_INT(p->has_agent, 1);
		CHECK_EQ_INT(p->ray_exit_code, 137);
		CHECK_EQ_INT(p->ray_restarts, 2);
		CHECK_EQ_INT(p->submitter_ended, 1);
		CHECK_EQ_INT(p->submitter_exit, 1);
		CHECK(p->submitter_finished_ms == 1704067240000LL);
		CHECK_EQ_STR(rw_inf_pod_cluster_key(p, key, sizeof(key)), "ns1/rc");
		free(p);
	}
	rw_json_fini(&j);
	/* A bare pod: every string is "" and conditions unknown. */
	static const char bare[] = "{\"metadata\":{\"name\":\"p\"}}";
	CHECK_EQ_INT(rw_json_parse(&j, bare, strlen(bare), 64, NULL, 0), 0);
	p = rw_inf_pod_type.decode(&j, 0);
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ_STR(p->meta.ns, "");
		CHECK_EQ_STR(p->cluster, "");
		CHECK_EQ_INT(p->ready, RW_COND_UNKNOWN);
		CHECK_EQ_INT(p->has_agent, 0); /* KubeRay's pods */
		CHECK_EQ_INT(p->submitter_ended, 0);
		CHECK(rw_inf_pod_cluster_key(p, key, sizeof(key)) == NULL);
		free(p);
	}
	rw_json_fini(&j);
	/* KubeRay's head with the agent attached as an ephemeral container: it has an agent. */
	static const char ephem[] =
	    "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"ray-head\"}],"
	    "\"ephemeralContainers\":[{\"name\":\"debugger\"},{\"name\":\"raywarden-agent\"}]}}";
	CHECK_EQ_INT(rw_json_parse(&j, ephem, strlen(ephem), 64, NULL, 0), 0);
	p = rw_inf_pod_type.decode(&j, 0);
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ_INT(p->has_agent, 1);
		CHECK_EQ_INT(p->agent_ephemeral, 1);
		CHECK_EQ_STR(p->ray_container, "ray-head");
		free(p);
	}
	rw_json_fini(&j);
	/* Another ephemeral container (kubectl debug) is no agent. */
	static const char debug[] =
	    "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"ray-head\"}],"
	    "\"ephemeralContainers\":[{\"name\":\"debugger\"}]}}";
	CHECK_EQ_INT(rw_json_parse(&j, debug, strlen(debug), 64, NULL, 0), 0);
	p = rw_inf_pod_type.decode(&j, 0);
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ_INT(p->has_agent, 0);
		free(p);
	}
	rw_json_fini(&j);
	/* No name: refused. */
	static const char noname[] = "{\"metadata\":{\"namespace\":\"x\"}}";
	CHECK_EQ_INT(rw_json_parse(&j, noname, strlen(noname), 64, NULL, 0), 0);
	CHECK(rw_inf_pod_type.decode(&j, 0) == NULL);
	rw_json_fini(&j);
	/* The JSON decoder keeps the text. */
	static const char cr[] =
	    "{\"metadata\":{\"name\":\"c\",\"namespace\":\"n\"},\"spec\":{\"a\":[1]}}";
	CHECK_EQ_INT(rw_json_parse(&j, cr, strlen(cr), 64, NULL, 0), 0);
	struct rw_inf_json *o = rw_inf_json_decode(&j, 0);
	CHECK(o != NULL);
	if (o) {
		CHECK_EQ_STR(o->meta.name, "c");
		CHECK_EQ_STR(o->json, cr);
		CHECK_EQ_INT(o->len, strlen(cr));
		free(o);
	}
	rw_json_fini(&j);
}

static void
test_json_equal(void)
{
	static const struct {
		const char *a, *b;
		bool eq;
	} cases[] = {
	    {"{\"a\":1,\"b\":[1,2]}", "{\"b\":[1,2],\"a\":1}", true},
	    {"{\"a\":1}", "{\"a\":1.0}", true},
	    {"{\"a\":\"\\u0041\"}", "{\"a\":\"A\"}", true},
	    {"{\"a\":[1,2]}", "{\"a\":[2,1]}", false},
	    {"{\"a\":1}", "{\"a\":1,\"b\":null}", false},
	    {"{\"a\":true}", "{\"a\":false}", false},
	    {"{\"a\":null}", "{\"a\":null}", true},
	    {"{\"a\":{}}", "{\"a\":[]}", false},
	    {"{", "{", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(rw_kube_json_equal(cases[i].a, strlen(cases[i].a), cases[i].b,
					 strlen(cases[i].b)) == cases[i].eq);
}

static void
test_qescape(void)
{
	struct rw_buf b;
	rw_buf_init(&b, 1024);
	CHECK_EQ_INT(rw_kube_qescape(&b, "ray.io/node-type in (head,worker)"), 0);
	CHECK_EQ_STR(rw_buf_cstr(&b), "ray.io%2Fnode-type%20in%20%28head%2Cworker%29");
	rw_buf_fini(&b);
}

static const char *
fake_env(const char *name, void *ud)
{
	const char *const *kv = ud;
	for (; kv[0]; kv += 2)
		if (!strcmp(kv[0], name))
			return kv[1];
	return NULL;
}

static void
test_config(void)
{
	struct rw_mgr_config c;
	char err[256];
	const char *none[] = {NULL};
	char *a0[] = {"ctl", NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 1, a0, fake_env, none, err, sizeof(err)), 0);
	CHECK(c.leader_elect);
	CHECK(c.watch_ns == NULL);
	CHECK_EQ_STR(c.metrics_addr, ":8080");
	CHECK_EQ_STR(c.health_addr, ":8082");
	CHECK_EQ_STR(c.lease_name, "raywarden-controller-leader");
	CHECK(c.qps == 100);
	CHECK_EQ_INT(c.burst, 200);
	CHECK_EQ_INT(c.log_format, RW_LOG_TEXT);
	CHECK(c.rayjob_default_ttl_s == 0); /* off unless asked */
	CHECK(c.status_page);		    /* on unless asked */
	rw_mgr_config_fini(&c);

	/* --status-page: a bool, from the flag or RAYWARDEN_STATUS_PAGE; the flag wins. */
	static const struct {
		const char *arg;
		const char *env;
		bool want;
	} sp[] = {
	    {"--status-page=false", NULL, false},
	    {"--status-page", "false", true},
	    {NULL, "false", false},
	    {"--status-page=true", NULL, true},
	};
	for (size_t i = 0; i < sizeof(sp) / sizeof(sp[0]); i++) {
		const char *spenv[] = {"RAYWARDEN_STATUS_PAGE", sp[i].env, NULL};
		char *av[] = {"ctl", (char *)sp[i].arg, NULL};
		CHECK_EQ_INT(rw_mgr_config_parse(&c, sp[i].arg ? 2 : 1, av, fake_env,
						 sp[i].env ? spenv : none, err, sizeof(err)),
			     0);
		CHECK_EQ_INT(c.status_page, sp[i].want);
		rw_mgr_config_fini(&c);
	}

	/* --rayjob-default-ttl: a Go duration, from the flag or RAYWARDEN_RAYJOB_DEFAULT_TTL. */
	const char *ttl_env[] = {"RAYWARDEN_RAYJOB_DEFAULT_TTL", "90s", NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 1, a0, fake_env, ttl_env, err, sizeof(err)), 0);
	CHECK(c.rayjob_default_ttl_s == 90);
	rw_mgr_config_fini(&c);
	char *attl[] = {"ctl", "--rayjob-default-ttl", "24h", NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 3, attl, fake_env, ttl_env, err, sizeof(err)), 0);
	CHECK(c.rayjob_default_ttl_s == 86400);
	rw_mgr_config_fini(&c);

	/* --batch-scheduler: KubeRay's names; the deprecated --enable-batch-scheduler is volcano.
	 */
	static const struct {
		const char *arg, *arg2;
		int rv, kind;
	} bs[] = {
	    {"--batch-scheduler=volcano", NULL, 0, RW_BS_VOLCANO},
	    {"--batch-scheduler=yunikorn", NULL, 0, RW_BS_YUNIKORN},
	    {"--batch-scheduler=scheduler-plugins", NULL, 0, RW_BS_SCHEDULER_PLUGINS},
	    {"--batch-scheduler=kai-scheduler", NULL, 0, RW_BS_KAI},
	    {"--batch-scheduler=", NULL, 0, RW_BS_NONE},
	    {"--enable-batch-scheduler", NULL, 0, RW_BS_VOLCANO},
	    {"--enable-batch-scheduler=false", NULL, 0, RW_BS_NONE},
	    {"--batch-scheduler=kueue", NULL, -EINVAL, 0},
	    {"--enable-batch-scheduler", "--batch-scheduler=yunikorn", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(bs) / sizeof(bs[0]); i++) {
		char *av[] = {"ctl", (char *)bs[i].arg, (char *)bs[i].arg2, NULL};
		err[0] = '\0';
		CHECK_EQ_INT(rw_mgr_config_parse(&c, bs[i].arg2 ? 3 : 2, av, fake_env, none, err,
						 sizeof(err)),
			     bs[i].rv);
		if (bs[i].rv == 0) {
			CHECK_EQ_INT(c.batch_scheduler, bs[i].kind);
			rw_mgr_config_fini(&c);
		} else {
			CHECK(strstr(err, "batch-scheduler") != NULL);
		}
	}

	const char *env[] = {"RAYWARDEN_WATCH_NAMESPACE",
			     "a, b,,c",
			     "RAYWARDEN_QPS",
			     "5",
			     "RAYWARDEN_LEADER_ELECT",
			     "false",
			     NULL};
	char *a1[] = {"ctl",  "--qps=7.5",	"--burst", "9", "--log-stdout-encoder",
		      "json", "-kubeconfig=/k", NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 7, a1, fake_env, env, err, sizeof(err)), 0);
	CHECK(c.qps == 7.5);
	CHECK_EQ_INT(c.burst, 9);
	CHECK(!c.leader_elect);
	CHECK_EQ_INT(c.log_format, RW_LOG_JSON);
	CHECK_EQ_STR(c.kubeconfig, "/k");
	CHECK(c.watch_ns && c.watch_ns[0] && c.watch_ns[1] && c.watch_ns[2] && !c.watch_ns[3]);
	if (c.watch_ns && c.watch_ns[2]) {
		CHECK_EQ_STR(c.watch_ns[0], "a");
		CHECK_EQ_STR(c.watch_ns[1], "b");
		CHECK_EQ_STR(c.watch_ns[2], "c");
	}
	rw_mgr_config_fini(&c);

	char *a2[] = {"ctl", "--enable-leader-election=false", "--leader-elect", NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 3, a2, fake_env, none, err, sizeof(err)), 0);
	CHECK(c.leader_elect);
	rw_mgr_config_fini(&c);

	static const char *const bad[][3] = {
	    {"--qps=x", NULL, NULL},
	    {"--burst=0", NULL, NULL},
	    {"--log-format=xml", NULL, NULL},
	    {"--nope", NULL, NULL},
	    {"--metrics-addr=8080", NULL, NULL},
	    {"--leader-elect=maybe", NULL, NULL},
	    {"--rayjob-default-ttl=1d", NULL, NULL},
	    {"--rayjob-default-ttl=-1s", NULL, NULL},
	    {"--kubeconfig", NULL, NULL},
	    {"stray", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *av[] = {"ctl", (char *)bad[i][0], NULL};
		err[0] = '\0';
		CHECK_EQ_INT(rw_mgr_config_parse(&c, 2, av, fake_env, none, err, sizeof(err)),
			     -EINVAL);
		CHECK(err[0] != '\0');
	}
	char *ah[] = {"ctl", "--help", NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 2, ah, fake_env, none, err, sizeof(err)), 1);

	char host[64];
	int port;
	CHECK_EQ_INT(rw_mgr_parse_addr(":8080", host, sizeof(host), &port), 0);
	CHECK_EQ_STR(host, "0.0.0.0");
	CHECK_EQ_INT(port, 8080);
	CHECK_EQ_INT(rw_mgr_parse_addr("127.0.0.1:0", host, sizeof(host), &port), 0);
	CHECK_EQ_STR(host, "127.0.0.1");
	CHECK_EQ_INT(port, 0);
	CHECK_EQ_INT(rw_mgr_parse_addr("[::1]:9", host, sizeof(host), &port), 0);
	CHECK_EQ_STR(host, "::1");
	CHECK_EQ_INT(rw_mgr_parse_addr("0", host, sizeof(host), &port), 0);
	CHECK_EQ_INT(port, -1);
	CHECK_EQ_INT(rw_mgr_parse_addr("host:99999", host, sizeof(host), &port), -EINVAL);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"metrics text format", test_metrics_format},
	    {"metrics series bound", test_metrics_bound},
	    {"token bucket", test_token_bucket},
	    {"work queue back-off", test_backoff},
	    {"expectations", test_expectations},
	    {"watch line splitter", test_line_splitter},
	    {"watch event parser", test_parse_event},
	    {"RFC 3339 times", test_parse_time},
	    {"pod and JSON decoders", test_pod_decoder},
	    {"JSON equality", test_json_equal},
	    {"query escaping", test_qescape},
	    {"flags and env", test_config},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

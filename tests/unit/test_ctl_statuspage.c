/* test_ctl_statuspage.c - the status page's JSON (statuspage/sp_json.h): shape,
 * escaping of hostile names, the transition ring and the size cap. */
#include <errno.h>
#include <stdint.h>

#include "rw/json.h"
#include "rwtest.h"
#include "sp_json.h"

#define CAP (256 * 1024)

/* Build s, check the answer is valid JSON under cap, and leave it parsed in j. */
static int
build_parse(const struct rw_sp_snapshot *s, size_t cap, struct rw_buf *b, struct rw_json *j)
{
	char err[128];
	int rv;
	rw_buf_init(b, cap);
	rv = rw_sp_build(s, b, cap);
	CHECK_EQ_INT(rv, 0);
	CHECK(b->len <= cap);
	rv = rw_json_parse(j, b->data, b->len, 1 << 20, err, sizeof(err));
	if (rv)
		fprintf(stderr, "  not JSON (%s): %.200s\n", err, b->data);
	CHECK_EQ_INT(rv, 0);
	return rv;
}

static int64_t
geti(const struct rw_json *j, int t, const char *path)
{
	int64_t v = -1;
	rw_json_int(j, rw_json_path(j, t, path), &v);
	return v;
}

static void
t_empty(void)
{
	struct rw_sp_snapshot s = {.generation = 7, .now_ms = 1700000000000, .leader = true};
	struct rw_buf b;
	struct rw_json j;
	if (build_parse(&s, CAP, &b, &j) == 0) {
		CHECK_EQ_INT(geti(&j, 0, "generation"), 7);
		CHECK_EQ_INT(geti(&j, 0, "now"), 1700000000000);
		CHECK_EQ_INT(rw_json_type(&j, rw_json_get(&j, 0, "truncated")), RW_JSON_NULL);
		CHECK_EQ_INT(rw_json_size(&j, rw_json_get(&j, 0, "pods")), 0);
		CHECK_EQ_INT(geti(&j, 0, "totals.pods"), 0);
		rw_json_fini(&j);
	}
	rw_buf_fini(&b);
}

/* Names a hostile user may choose come back byte for byte (the page then renders them as text). */
static void
t_hostile_names(void)
{
	static const char *const names[] = {
	    "<img src=x onerror=alert(1)>",  "\"quoted\" \\back\\slash",
	    "</script><script>x()</script>", "line\nbreak\ttab",
	    "caf\xc3\xa9 \xe2\x9c\x93",	     "",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct rw_sp_app app = {names[i], "RUNNING", names[i]};
		struct rw_sp_service svc = {
		    .ns = "default", .name = names[i], .napps = 1, .apps = &app};
		struct rw_sp_pod pod = {
		    .ns = "default", .name = names[i], .cluster = names[i], .pod_ready = -1};
		struct rw_sp_snapshot s = {
		    .services = &svc, .nservices = 1, .pods = &pod, .npods = 1};
		struct rw_buf b;
		struct rw_json j;
		char out[256];
		if (build_parse(&s, CAP, &b, &j) == 0) {
			int p = rw_json_at(&j, rw_json_get(&j, 0, "pods"), 0);
			int sv = rw_json_at(&j, rw_json_get(&j, 0, "services"), 0);
			rw_json_str(&j, rw_json_get(&j, p, "name"), out, sizeof(out));
			CHECK_EQ_STR(out, names[i]);
			rw_json_str(
			    &j,
			    rw_json_path(&j, rw_json_at(&j, rw_json_get(&j, sv, "applications"), 0),
					 "message"),
			    out, sizeof(out));
			CHECK_EQ_STR(out, names[i]);
			/* No raw "<" of a name can close the document's script element. */
			CHECK(strstr(b.data, "\n") == NULL);
			/* Unknown readiness and no report are null, not false. */
			CHECK_EQ_INT(rw_json_type(&j, rw_json_get(&j, p, "pod_ready")),
				     RW_JSON_NULL);
			CHECK_EQ_INT(rw_json_type(&j, rw_json_get(&j, p, "agent")), RW_JSON_NULL);
			rw_json_fini(&j);
		}
		rw_buf_fini(&b);
	}
}

static void
t_ring(void)
{
	/* pushes -> kept (oldest first) */
	static const struct {
		int pushes;
		int kept;
		int64_t first;
	} cases[] = {
	    {0, 0, -1},
	    {1, 1, 0},
	    {RW_SP_TRANSITIONS, RW_SP_TRANSITIONS, 0},
	    {RW_SP_TRANSITIONS + 1, RW_SP_TRANSITIONS, 1},
	    {3 * RW_SP_TRANSITIONS + 5, RW_SP_TRANSITIONS, 2 * RW_SP_TRANSITIONS + 5},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct rw_sp_ring r;
		memset(&r, 0, sizeof(r));
		for (int i = 0; i < cases[c].pushes; i++)
			rw_sp_ring_push(&r, i, i % 2 == 0, "why");
		CHECK_EQ_INT(r.n, cases[c].kept);
		if (r.n) {
			CHECK_EQ_INT(rw_sp_ring_at(&r, 0)->at_ms, cases[c].first);
			CHECK_EQ_INT(rw_sp_ring_at(&r, r.n - 1)->at_ms, cases[c].pushes - 1);
		}
	}
	/* A long reason is cut, not overrun. */
	{
		struct rw_sp_ring r;
		char long_reason[400];
		memset(&r, 0, sizeof(r));
		memset(long_reason, 'x', sizeof(long_reason) - 1);
		long_reason[sizeof(long_reason) - 1] = '\0';
		rw_sp_ring_push(&r, 1, false, long_reason);
		CHECK_EQ_INT(strlen(rw_sp_ring_at(&r, 0)->reason), RW_SP_REASON_MAX - 1);
	}
}

static void
t_pod_fields(void)
{
	struct rw_sp_ring ring;
	struct rw_sp_pod pod = {
	    .ns = "ns",
	    .name = "rs-head",
	    .cluster = "rs-abc",
	    .node_type = "head",
	    .phase = "Running",
	    .pod_ip = "127.0.1.2",
	    .pod_ready = 0,
	    .reported = true,
	    .agent_ready = false,
	    .reason = "proxy refused",
	    .reported_ms = 1699999999000,
	    .ncomp = 2,
	    .comp = {{"raylet", "ok", ""}, {"proxy", "refused", "connect: refused"}},
	    .transitions = &ring,
	};
	struct rw_sp_snapshot s = {.pods = &pod, .npods = 1};
	struct rw_buf b;
	struct rw_json j;
	memset(&ring, 0, sizeof(ring));
	rw_sp_ring_push(&ring, 100, true, "ready");
	rw_sp_ring_push(&ring, 200, false, "proxy refused");
	if (build_parse(&s, CAP, &b, &j) == 0) {
		int p = rw_json_at(&j, rw_json_get(&j, 0, "pods"), 0);
		int comps = rw_json_path(&j, p, "agent.components");
		int tr = rw_json_get(&j, p, "transitions");
		bool v = true;
		CHECK_EQ_INT(rw_json_bool(&j, rw_json_get(&j, p, "pod_ready"), &v), 0);
		CHECK(!v);
		CHECK_EQ_INT(rw_json_size(&j, comps), 2);
		CHECK(rw_json_streq(&j, rw_json_at(&j, rw_json_at(&j, comps, 1), 1), "refused"));
		CHECK_EQ_INT(geti(&j, p, "agent.reported"), 1699999999000);
		CHECK_EQ_INT(rw_json_size(&j, tr), 2);
		CHECK(rw_json_streq(&j, rw_json_at(&j, rw_json_at(&j, tr, 1), 2), "proxy refused"));
		rw_json_fini(&j);
	}
	rw_buf_fini(&b);
}

/* However many pods, the answer stays under its cap and says what it left out. */
static void
t_cap(void)
{
	static const struct {
		int npods;
		size_t cap;
		bool truncated;
	} cases[] = {
	    {10, 64 * 1024, false},
	    {4000, 64 * 1024, true},
	    {4000, 4 * 1024, true},
	    {4000, 4 * 1024 * 1024, false},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		int n = cases[c].npods;
		struct rw_sp_pod *pods = calloc((size_t)n, sizeof(*pods));
		struct rw_sp_cluster cl = {.ns = "ns", .name = "big", .pods_total = n};
		struct rw_sp_snapshot s = {
		    .clusters = &cl, .nclusters = 1, .pods = pods, .npods = n};
		struct rw_buf b;
		struct rw_json j;
		char names[64];
		for (int i = 0; i < n; i++) {
			pods[i].ns = "ns";
			pods[i].name = "big-worker-pod";
			pods[i].cluster = "big";
			pods[i].reported = true;
			pods[i].ncomp = 2;
			pods[i].comp[0] = (struct rw_sp_component){"raylet", "ok", ""};
			pods[i].comp[1] = (struct rw_sp_component){"proxy", "ok", ""};
		}
		snprintf(names, sizeof(names), "case %zu", c);
		if (build_parse(&s, cases[c].cap, &b, &j) == 0) {
			int t = rw_json_get(&j, 0, "truncated");
			int shown = rw_json_size(&j, rw_json_get(&j, 0, "pods"));
			CHECK_EQ_INT(geti(&j, 0, "totals.pods"), n);
			CHECK_EQ_INT(rw_json_size(&j, rw_json_get(&j, 0, "clusters")), 1);
			if (cases[c].truncated) {
				CHECK_EQ_INT(rw_json_type(&j, t), RW_JSON_OBJECT);
				CHECK_EQ_INT(geti(&j, t, "pods.total"), n);
				CHECK_EQ_INT(geti(&j, t, "pods.shown"), shown);
				CHECK(shown < n);
				/* Filled up to near the cap, not cut early. */
				CHECK(b.len + 2 * RW_SP_RESERVE > cases[c].cap);
			} else {
				CHECK_EQ_INT(shown, n);
				CHECK_EQ_INT(rw_json_type(&j, t), RW_JSON_NULL);
			}
			rw_json_fini(&j);
		} else {
			fprintf(stderr, "  in %s\n", names);
		}
		rw_buf_fini(&b);
		free(pods);
	}
	/* A cap that cannot hold the frame is refused. */
	{
		struct rw_sp_snapshot s = {0};
		struct rw_buf b;
		rw_buf_init(&b, RW_SP_RESERVE);
		CHECK_EQ_INT(rw_sp_build(&s, &b, RW_SP_RESERVE), -EINVAL);
		rw_buf_fini(&b);
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"empty", t_empty}, {"hostile_names", t_hostile_names},
	    {"ring", t_ring},	{"pod_fields", t_pod_fields},
	    {"cap", t_cap},	{NULL, NULL},
	};
	return rwt_run(cases);
}

/*
 * test_ctl_fairq.c - the API client's fair queue (controller/kube/fairq.c) on its
 * own, table-driven (flows, arrivals, expected service order, bounds), then
 * the client (kube.c) on a real loop against a local HTTP server that
 * records the order requests arrive in, and the Event recorder's pending
 * bound (events.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "events.h"
#include "fairq.h"
#include "kube.h"
#include "rw/httpd.h"
#include "rwtest.h"

/* ---- the scheduler ---- */

#define MAXN 64

struct item {
	struct rw_fq_node n; /* first: the node is the item */
	char name[16];
};

/*
 * One step of a case: push "name" in flow (class c), or pop ("" name): the
 * served names, in order, must equal `want` (space separated). A flow named
 * "-" pushes with a NULL flow.
 */
struct step {
	const char *flow;
	int cls;
	const char *name; /* NULL: pop k nodes */
	int k;
};

struct fq_case {
	const char *what;
	struct step steps[24];
	const char *want; /* every popped name, space separated */
};

#define P(f, nm)                                                                                   \
	{                                                                                          \
		f, RW_FQ_NORMAL, nm, 0                                                             \
	}
#define E(f, nm)                                                                                   \
	{                                                                                          \
		f, RW_FQ_BEST_EFFORT, nm, 0                                                        \
	}
#define POP(k)                                                                                     \
	{                                                                                          \
		NULL, 0, NULL, k                                                                   \
	}

static const struct fq_case fq_cases[] = {
    {"one flow is FIFO", {P("a", "a1"), P("a", "a2"), P("a", "a3"), POP(3)}, "a1 a2 a3"},
    {"two flows alternate",
     {P("a", "a1"), P("a", "a2"), P("a", "a3"), P("b", "b1"), P("b", "b2"), POP(5)},
     "a1 b1 a2 b2 a3"},
    {"a new flow catches up with what the waiting flows were served, then they take turns",
     {P("big", "x1"), P("big", "x2"), P("big", "x3"), P("big", "x4"), P("big", "x5"),
      P("big", "x6"), POP(2), P("new", "n1"), P("new", "n2"), P("new", "n3"), POP(7)},
     "x1 x2 n1 n2 x3 n3 x4 x5 x6"},
    {"a new flow's head start is bounded (RW_FQ_HEAD_START requests)",
     {P("big", "x1"), P("big", "x2"), P("big", "x3"), P("big", "x4"), P("big", "x5"),
      P("big", "x6"), P("big", "x7"), P("big", "x8"), P("big", "x9"), P("big", "x10"),
      POP(9),	      P("new", "n1"), P("new", "n2"), P("new", "n3"), P("new", "n4"),
      P("new", "n5"), P("new", "n6"), P("new", "n7"), P("new", "n8"), P("new", "n9"),
      POP(10)},
     "x1 x2 x3 x4 x5 x6 x7 x8 x9 n1 n2 n3 n4 n5 n6 n7 n8 x10 n9"},
    {"three flows round robin, in order of arrival",
     {P("a", "a1"), P("b", "b1"), P("c", "c1"), P("a", "a2"), P("c", "c2"), P("a", "a3"), POP(6)},
     "a1 b1 c1 a2 c2 a3"},
    {"a flow that empties is remembered: served less recently, it goes first",
     {P("a", "a1"), P("b", "b1"), P("b", "b2"), POP(2), P("a", "a2"), POP(2)},
     "a1 b1 a2 b2"},
    {"a heavy past costs a bounded delay: the returning flow starts RW_FQ_HEAD_START above",
     {P("h", "h1"), P("h", "h2"), P("h", "h3"),	 P("h", "h4"),	P("h", "h5"), P("h", "h6"),
      P("h", "h7"), P("h", "h8"), P("h", "h9"),	 P("h", "h10"), POP(10),      P("a", "a1"),
      P("a", "a2"), P("a", "a3"), P("a", "a4"),	 P("a", "a5"),	P("a", "a6"), P("a", "a7"),
      P("a", "a8"), P("a", "a9"), P("a", "a10"), P("h", "h11"), POP(11)},
     "h1 h2 h3 h4 h5 h6 h7 h8 h9 h10 a1 a2 a3 a4 a5 a6 a7 a8 h11 a9 a10"},
    {"requests without a flow share one flow",
     {P("-", "u1"), P("", "u2"), P("a", "a1"), P("-", "u3"), POP(4)},
     "u1 a1 u2 u3"},
    {"best effort only when nothing else waits",
     {E("e", "e1"), E("e", "e2"), P("a", "a1"), P("b", "b1"), POP(1), P("a", "a2"), POP(5)},
     "a1 b1 a2 e1 e2"},
    {"best effort flows are fair among themselves",
     {E("x", "x1"), E("x", "x2"), E("x", "x3"), E("y", "y1"), POP(4)},
     "x1 y1 x2 x3"},
    {"the same key in two classes is two flows",
     {E("a", "e1"), P("a", "a1"), POP(1), P("a", "a2"), POP(2)},
     "a1 a2 e1"},
    {"empty queue pops nothing", {POP(2), P("a", "a1"), POP(2)}, "a1"},
};

static void
run_fq_case(const struct fq_case *c)
{
	struct rw_fq q;
	struct item items[MAXN];
	char got[512] = "";
	int ni = 0;
	rw_fq_init(&q, 0, 0);
	for (const struct step *s = c->steps; s->flow || s->k; s++) {
		if (s->name) {
			struct item *it = &items[ni++];
			memset(it, 0, sizeof(*it));
			snprintf(it->name, sizeof(it->name), "%s", s->name);
			const char *flow = strcmp(s->flow, "-") == 0 ? NULL : s->flow;
			CHECK_EQ_INT(rw_fq_push(&q, &it->n, flow, s->cls, 0), 0);
			continue;
		}
		for (int i = 0; i < s->k; i++) {
			struct rw_fq_node *n = rw_fq_pop(&q);
			if (!n)
				break;
			CHECK(n->flow == NULL); /* unlinked */
			size_t l = strlen(got);
			snprintf(got + l, sizeof(got) - l, "%s%s", l ? " " : "",
				 ((struct item *)(void *)n)->name);
		}
	}
	if (strcmp(got, c->want) != 0)
		fprintf(stderr, "  case \"%s\"\n", c->what);
	CHECK_EQ_STR(got, c->want);
	CHECK_EQ_INT(rw_fq_len(&q, -1), 0);
	CHECK_EQ_INT(rw_fq_flows(&q, -1), 0); /* no flow outlives its last node */
	rw_fq_fini(&q);
}

static void
test_fq_order(void)
{
	for (size_t i = 0; i < sizeof(fq_cases) / sizeof(fq_cases[0]); i++)
		run_fq_case(&fq_cases[i]);
}

static void
test_fq_bounds(void)
{
	struct rw_fq q;
	struct item it[12];
	memset(it, 0, sizeof(it));
	rw_fq_init(&q, 4, 2);
	/* Four normal, then the class is full; best effort has its own bound. */
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(rw_fq_push(&q, &it[i].n, i % 2 ? "a" : "b", RW_FQ_NORMAL, 0), 0);
	CHECK_EQ_INT(rw_fq_push(&q, &it[4].n, "c", RW_FQ_NORMAL, 0), -ENOBUFS);
	CHECK(it[4].n.flow == NULL);
	CHECK_EQ_INT(rw_fq_push(&q, &it[5].n, "e", RW_FQ_BEST_EFFORT, 0), 0);
	CHECK_EQ_INT(rw_fq_push(&q, &it[6].n, "e", RW_FQ_BEST_EFFORT, 0), 0);
	CHECK_EQ_INT(rw_fq_push(&q, &it[7].n, "f", RW_FQ_BEST_EFFORT, 0), -ENOBUFS);
	CHECK_EQ_INT(rw_fq_len(&q, RW_FQ_NORMAL), 4);
	CHECK_EQ_INT(rw_fq_len(&q, RW_FQ_BEST_EFFORT), 2);
	CHECK_EQ_INT(rw_fq_len(&q, -1), 6);
	CHECK_EQ_INT(rw_fq_flows(&q, RW_FQ_NORMAL), 2);
	CHECK_EQ_INT(rw_fq_flow_len(&q, RW_FQ_NORMAL, "a"), 2);
	CHECK_EQ_INT(rw_fq_flow_len(&q, RW_FQ_BEST_EFFORT, "e"), 2);
	/* Bad arguments, and a node pushed twice. */
	CHECK_EQ_INT(rw_fq_push(&q, &it[0].n, "a", RW_FQ_NORMAL, 0), -EINVAL);
	CHECK_EQ_INT(rw_fq_push(&q, &it[8].n, "a", 2, 0), -EINVAL);
	CHECK_EQ_INT(rw_fq_push(&q, &it[8].n, "a", -1, 0), -EINVAL);
	/* Removal (cancel) frees room, in the middle of a flow too. */
	rw_fq_remove(&q, &it[1].n); /* "a": first of two */
	CHECK_EQ_INT(rw_fq_flow_len(&q, RW_FQ_NORMAL, "a"), 1);
	rw_fq_remove(&q, &it[1].n); /* not queued any more: ignored */
	CHECK_EQ_INT(rw_fq_push(&q, &it[4].n, "c", RW_FQ_NORMAL, 0), 0);
	rw_fq_remove(&q, &it[3].n); /* "a" empties: the flow goes */
	CHECK_EQ_INT(rw_fq_flow_len(&q, RW_FQ_NORMAL, "a"), 0);
	CHECK_EQ_INT(rw_fq_flows(&q, RW_FQ_NORMAL), 2); /* b, c */
	/* Order after the removals: b's two alternate with c. */
	CHECK(rw_fq_pop(&q) == &it[0].n);
	CHECK(rw_fq_pop(&q) == &it[4].n);
	CHECK(rw_fq_pop(&q) == &it[2].n);
	CHECK(rw_fq_pop(&q) == &it[5].n);
	/* fini forgets what is still queued. */
	rw_fq_fini(&q);
	CHECK(it[6].n.flow == NULL);
	rw_fq_init(&q, 0, 0);
	CHECK_EQ_INT(q.c[RW_FQ_NORMAL].max, 65536);
	CHECK_EQ_INT(q.c[RW_FQ_BEST_EFFORT].max, 1000);
	rw_fq_fini(&q);
}

/*
 * The bound that matters: a busy flow with B requests queued delays a new
 * flow's first request by at most one request per other waiting flow, and
 * its k-th request by at most k turns, whatever B is.
 */
static void
test_fq_head_of_line(void)
{
	enum { BUSY = 500, OTHERS = 3 };
	struct rw_fq q;
	struct item *big = calloc(BUSY + OTHERS + 4, sizeof(*big));
	int pos[4] = {-1, -1, -1, -1};
	if (!big) {
		CHECK(0);
		return;
	}
	rw_fq_init(&q, 0, 0);
	for (int i = 0; i < BUSY; i++)
		CHECK_EQ_INT(rw_fq_push(&q, &big[i].n, "default/big", RW_FQ_NORMAL, 0), 0);
	for (int i = 0; i < OTHERS; i++) {
		char f[32];
		snprintf(f, sizeof(f), "default/other-%d", i);
		CHECK_EQ_INT(rw_fq_push(&q, &big[BUSY + i].n, f, RW_FQ_NORMAL, 0), 0);
	}
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(
		    rw_fq_push(&q, &big[BUSY + OTHERS + i].n, "default/probe", RW_FQ_NORMAL, 0), 0);
	for (int served = 0; served < BUSY + OTHERS + 4; served++) {
		struct rw_fq_node *n = rw_fq_pop(&q);
		CHECK(n != NULL);
		if (!n)
			break;
		ptrdiff_t idx = (struct item *)(void *)n - big;
		if (idx >= BUSY + OTHERS)
			pos[idx - BUSY - OTHERS] = served;
	}
	/* big, 3 others, probe 1; then big and probe alternate. */
	CHECK_EQ_INT(pos[0], 4);
	CHECK_EQ_INT(pos[1], 6);
	CHECK_EQ_INT(pos[2], 8);
	CHECK_EQ_INT(pos[3], 10);
	CHECK(rw_fq_pop(&q) == NULL);
	rw_fq_fini(&q);
	free(big);
}

/*
 * A batch keeps the queue full: FLOWS objects each with one request waiting
 * (when one is served, its next one is pushed, as a reconcile's next step).
 * Returns how many pops a newcomer's request waited, for `reqs` requests in
 * sequence, in waits[]. warm: pops of the batch alone before it comes.
 */
static void
batch_newcomer(struct rw_fq *q, struct item *it, int flows, long warm, int reqs, int *waits,
	       unsigned batch_src, unsigned probe_src)
{
	char f[32];
	struct item probe;
	int served = 0;
	for (int i = 0; i < flows; i++) {
		snprintf(f, sizeof(f), "ns/rayjob-%d", i);
		CHECK_EQ_INT(rw_fq_push(q, &it[i].n, f, RW_FQ_NORMAL, batch_src), 0);
	}
	memset(&probe, 0, sizeof(probe));
	for (long p = 0; p < warm + (long)reqs * flows * 2; p++) {
		if (p >= warm && !probe.n.flow)
			CHECK_EQ_INT(
			    rw_fq_push(q, &probe.n, "ns/new-cluster", RW_FQ_NORMAL, probe_src), 0);
		struct rw_fq_node *n = rw_fq_pop(q);
		if (!n) {
			CHECK(0);
			return;
		}
		if (n == &probe.n) {
			if (++served == reqs)
				break;
			continue;
		}
		if (probe.n.flow)
			waits[served]++;
		ptrdiff_t i = (struct item *)(void *)n - it;
		snprintf(f, sizeof(f), "ns/rayjob-%d", (int)i);
		CHECK_EQ_INT(rw_fq_push(q, n, f, RW_FQ_NORMAL, batch_src), 0);
	}
	CHECK_EQ_INT(served, reqs);
}

/*
 * What least-recent-service is for: a RayCluster created while 1,000
 * RayJobs keep the queue full gets its first requests served next (round
 * robin made each wait ~1,000 pops: ~10 s at --qps 100), and from then on
 * it takes its turn like the others, no longer ahead of them.
 */
static void
test_fq_newcomer_in_batch(void)
{
	enum { FLOWS = 1000 };
	struct rw_fq q;
	struct item *it = calloc(FLOWS, sizeof(*it));
	int waits[12] = {0};
	if (!it) {
		CHECK(0);
		return;
	}
	rw_fq_init(&q, 0, 0);
	batch_newcomer(&q, it, FLOWS, 50 * FLOWS, 12, waits, 0, 0);
	printf("  pops before each of the newcomer's requests:");
	for (int i = 0; i < 12; i++)
		printf(" %d", waits[i]);
	printf("\n");
	for (int i = 0; i < RW_FQ_HEAD_START; i++)
		CHECK_EQ_INT(waits[i], 0);
	/* Then about one turn of each other flow per request, never much more. */
	for (int i = RW_FQ_HEAD_START + 1; i < 12; i++) {
		CHECK(waits[i] > FLOWS / 2);
		CHECK(waits[i] <= FLOWS + 1);
	}
	CHECK_EQ_INT(rw_fq_idle_flows(&q, RW_FQ_NORMAL), 1); /* the newcomer, remembered */
	CHECK(rw_fq_usage(&q, RW_FQ_NORMAL, "ns/new-cluster") > RW_FQ_HEAD_START);
	rw_fq_fini(&q);
	free(it);
}

/*
 * Sources take turns: a flow of another source than the batch's waits for
 * at most one request of the batch per request, even when the batch's
 * flows are as new as it is (all fresh: no warm-up).
 */
static void
test_fq_sources(void)
{
	enum { FLOWS = 1000 };
	struct rw_fq q;
	struct item *it = calloc(FLOWS, sizeof(*it));
	int waits[12] = {0};
	if (!it) {
		CHECK(0);
		return;
	}
	rw_fq_init(&q, 0, 0);
	batch_newcomer(&q, it, FLOWS, 10, 12, waits, 1, 0);
	for (int i = 0; i < 12; i++)
		CHECK(waits[i] <= 1);
	rw_fq_fini(&q);
	/* The same flows in one source: the newcomer among a thousand fresh flows. */
	memset(waits, 0, sizeof(waits));
	rw_fq_init(&q, 0, 0);
	batch_newcomer(&q, it, FLOWS, 10, 12, waits, 0, 0);
	CHECK(waits[11] > FLOWS / 2);
	rw_fq_fini(&q);
	/* A source beyond the last counts as the last; a bad class still fails. */
	rw_fq_init(&q, 0, 0);
	CHECK_EQ_INT(rw_fq_push(&q, &it[0].n, "x", RW_FQ_NORMAL, 99), 0);
	CHECK_EQ_INT(q.c[RW_FQ_NORMAL].src[RW_FQ_SOURCES - 1].nheap, 1);
	CHECK(rw_fq_pop(&q) == &it[0].n);
	rw_fq_fini(&q);
	free(it);
}

/*
 * Usage decays (half per RW_FQ_HALF_LIFE pops) and stays ordered across the
 * rebase that keeps the weights finite; idle flows are forgotten once they
 * no longer matter, and never more than RW_FQ_MAX_IDLE are remembered.
 */
static void
test_fq_decay_and_memory(void)
{
	enum { MANY = RW_FQ_MAX_IDLE + 5000, FLOWS = 100 };
	struct rw_fq q;
	struct item *it = calloc(MANY, sizeof(*it));
	char f[32];
	int waits[4] = {0};
	if (!it) {
		CHECK(0);
		return;
	}
	rw_fq_init(&q, 0, 0);
	/* "old" is served 64 times, then a half-life of other work halves it. */
	for (int i = 0; i < 64; i++) {
		CHECK_EQ_INT(rw_fq_push(&q, &it[0].n, "ns/old", RW_FQ_NORMAL, 0), 0);
		CHECK(rw_fq_pop(&q) == &it[0].n);
	}
	CHECK(rw_fq_usage(&q, RW_FQ_NORMAL, "ns/old") > 63.0);
	for (int i = 0; i < RW_FQ_HALF_LIFE; i++) {
		CHECK_EQ_INT(rw_fq_push(&q, &it[1].n, "ns/busy", RW_FQ_NORMAL, 0), 0);
		CHECK(rw_fq_pop(&q) == &it[1].n);
	}
	double u = rw_fq_usage(&q, RW_FQ_NORMAL, "ns/old");
	CHECK(u > 31.0 && u < 33.0);
	/* Distinct flows, each served once: the idle ones are bounded. */
	for (int i = 0; i < MANY; i++) {
		snprintf(f, sizeof(f), "ns/once-%d", i);
		CHECK_EQ_INT(rw_fq_push(&q, &it[i].n, f, RW_FQ_NORMAL, 0), 0);
		CHECK(rw_fq_pop(&q) == &it[i].n);
	}
	CHECK(rw_fq_idle_flows(&q, RW_FQ_NORMAL) <= RW_FQ_MAX_IDLE);
	/* Ten half-lives of one flow's work: every other memory has faded and gone. */
	for (int i = 0; i < 10 * RW_FQ_HALF_LIFE; i++) {
		CHECK_EQ_INT(rw_fq_push(&q, &it[0].n, "ns/busy", RW_FQ_NORMAL, 0), 0);
		CHECK(rw_fq_pop(&q) == &it[0].n);
	}
	CHECK_EQ_INT(rw_fq_idle_flows(&q, RW_FQ_NORMAL), 1);
	CHECK(rw_fq_usage(&q, RW_FQ_NORMAL, "ns/old") == 0.0); /* forgotten */
	rw_fq_fini(&q);
	/* Past the rebase (the weight of a request reaches 1e30 after ~1.6M pops). */
	rw_fq_init(&q, 0, 0);
	batch_newcomer(&q, it, FLOWS, 2000000L, 4, waits, 0, 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(waits[i], 0);
	CHECK(q.c[RW_FQ_NORMAL].unit < 1e30);
	rw_fq_fini(&q);
	free(it);
}

/* ---- the client against a recording HTTP server ---- */

static uv_loop_t loop;
static char order[4096];
static int answered;

static void
record(const struct rw_httpd_req *req, struct rw_httpd_resp *resp, void *ud)
{
	size_t l = strlen(order);
	const char *slash = strrchr(req->path, '/');
	(void)ud;
	snprintf(order + l, sizeof(order) - l, "%s%s", l ? " " : "", slash ? slash + 1 : req->path);
	resp->content_type = "application/json";
	rw_buf_puts(&resp->body, "{}");
}

static void
count_cb(const struct rw_kube_resp *r, void *ud)
{
	(void)ud;
	CHECK_EQ_INT(r->err, 0);
	CHECK_EQ_INT(r->status, 200);
	answered++;
}

/* Run the loop until n answers or ms of wall time have passed. */
static void
run_until(int n, int ms)
{
	uint64_t deadline = uv_hrtime() + (uint64_t)ms * 1000000u;
	while (answered < n && uv_hrtime() < deadline)
		uv_run(&loop, UV_RUN_NOWAIT), uv_sleep(5);
}

static void
drain_loop(void)
{
	for (int i = 0; i < 50; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
}

struct srv {
	struct rw_httpd *h;
	struct rw_kubecfg kc;
	char url[64];
};

static int
srv_start(struct srv *s)
{
	struct rw_httpd_opts ho = {.host = "127.0.0.1"};
	char err[128];
	memset(&s->kc, 0, sizeof(s->kc));
	if (rw_httpd_new(&loop, &ho, record, NULL, &s->h, err, sizeof(err)) != 0)
		return -1;
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", rw_httpd_port(s->h));
	s->kc.server = s->url;
	return 0;
}

static void
srv_stop(struct srv *s)
{
	rw_httpd_free(s->h, NULL, NULL);
	drain_loop();
}

/*
 * At 50 requests/s with a burst of one, requests leave one at a time, 20 ms
 * apart, so the server sees the limiter's order.
 */
static void
test_client_order(void)
{
	struct srv s;
	struct rw_kube *k;
	struct rw_kube_opts ko = {.qps = 50, .burst = 1};
	static const struct {
		const char *flow;
		int best_effort;
		const char *name;
	} reqs[] = {
	    {"ns/big", 0, "big1"}, {"ns/big", 0, "big2"}, {"ns/big", 0, "big3"},
	    {"ns/big", 0, "big4"}, {"ns/big", 1, "ev1"},  {"ns/big", 1, "ev2"},
	    {"ns/new", 0, "new1"}, {"ns/new", 0, "new2"}, {NULL, 0, "list1"},
	    {"ns/new", 1, "ev3"},
	};
	char path[64];
	if (srv_start(&s) != 0) {
		CHECK(0);
		return;
	}
	order[0] = '\0';
	answered = 0;
	CHECK_EQ_INT(rw_kube_new(&loop, &s.kc, &ko, &k), 0);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct rw_kube_req r = {.path = path,
					.flow = reqs[i].flow,
					.best_effort = reqs[i].best_effort,
					.no_retry = 1};
		snprintf(path, sizeof(path), "/api/v1/namespaces/ns/secrets/%s", reqs[i].name);
		CHECK_EQ_INT(rw_kube_request(k, &r, count_cb, NULL, NULL), 0);
	}
	/* The bucket's one token went to big1 at once; everything else waits. */
	CHECK_EQ_INT(rw_kube_queued(k), 9);
	run_until(10, 30000);
	CHECK_EQ_INT(answered, 10);
	/*
	 * Least recent service first: big1 was served, so new and the shared
	 * flow go before big2, then new and big take turns; Events last.
	 */
	CHECK_EQ_STR(order, "big1 new1 list1 big2 new2 big3 big4 ev1 ev3 ev2");
	rw_kube_free(k, NULL, NULL);
	srv_stop(&s);
}

/* A full best-effort class refuses; a normal request still goes in. */
static void
test_client_bounds(void)
{
	struct srv s;
	struct rw_kube *k;
	/* One token per 100 s: the queued requests stay queued however slowly
	 * a loaded machine runs this test. */
	struct rw_kube_opts ko = {
	    .qps = 0.01, .burst = 1, .max_queued = 3, .max_queued_best_effort = 2};
	struct rw_kube_req r = {.path = "/api/v1/namespaces/ns/secrets/a", .no_retry = 1};
	if (srv_start(&s) != 0) {
		CHECK(0);
		return;
	}
	answered = 0;
	CHECK_EQ_INT(rw_kube_new(&loop, &s.kc, &ko, &k), 0);
	for (int i = 0; i < 4; i++) /* the first takes the token */
		CHECK_EQ_INT(rw_kube_request(k, &r, count_cb, NULL, NULL), 0);
	CHECK_EQ_INT(rw_kube_request(k, &r, count_cb, NULL, NULL), -ENOBUFS);
	r.best_effort = 1;
	CHECK_EQ_INT(rw_kube_request(k, &r, count_cb, NULL, NULL), 0);
	CHECK_EQ_INT(rw_kube_request(k, &r, count_cb, NULL, NULL), 0);
	CHECK_EQ_INT(rw_kube_request(k, &r, count_cb, NULL, NULL), -ENOBUFS);
	CHECK_EQ_INT(rw_kube_queued(k), 5);
	/* Priority requests skip the queue and its bound. */
	r.best_effort = 0;
	r.priority = 1;
	CHECK_EQ_INT(rw_kube_request(k, &r, count_cb, NULL, NULL), 0);
	run_until(2, 30000);
	CHECK_EQ_INT(answered, 2);
	rw_kube_free(k, NULL, NULL);
	srv_stop(&s);
}

/* At most max_inflight queued requests on the wire; priority ones are not counted. */
static void
test_client_inflight(void)
{
	struct srv s;
	struct rw_kube *k;
	struct rw_kube_opts ko = {.qps = 0, .burst = 1, .max_inflight = 2};
	struct rw_kube_req r = {.path = "/api/v1/namespaces/ns/secrets/a", .no_retry = 1};
	if (srv_start(&s) != 0) {
		CHECK(0);
		return;
	}
	answered = 0;
	CHECK_EQ_INT(rw_kube_new(&loop, &s.kc, &ko, &k), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ_INT(rw_kube_request(k, &r, count_cb, NULL, NULL), 0);
	/* No rate limit, but two on the wire and four waiting. */
	CHECK_EQ_INT(rw_kube_inflight(k), 2);
	CHECK_EQ_INT(rw_kube_queued(k), 4);
	r.priority = 1; /* the Lease renewal: never waits for a slot */
	CHECK_EQ_INT(rw_kube_request(k, &r, count_cb, NULL, NULL), 0);
	CHECK_EQ_INT(rw_kube_queued(k), 4);
	run_until(7, 30000);
	CHECK_EQ_INT(answered, 7);
	CHECK_EQ_INT(rw_kube_queued(k), 0);
	CHECK_EQ_INT(rw_kube_inflight(k), 0);
	rw_kube_free(k, NULL, NULL);
	srv_stop(&s);
}

/* The recorder folds repeats of pending writes and drops the rest beyond its bound. */
static void
test_events_pressure(void)
{
	struct srv s;
	struct rw_kube *k;
	struct rw_ev *ev;
	struct rw_kube_opts ko = {.qps = 1, .burst = 1};
	struct rw_ev_opts eo = {.instance = "t", .max_pending = 3};
	struct rw_ev_ref ref = {"ray.io/v1", "RayCluster", "ns", "rc", NULL};
	struct rw_kube_req w = {.path = "/api/v1/namespaces/ns/secrets/write", .no_retry = 1};
	if (srv_start(&s) != 0) {
		CHECK(0);
		return;
	}
	answered = 0;
	CHECK_EQ_INT(rw_kube_new(&loop, &s.kc, &ko, &k), 0);
	CHECK_EQ_INT(rw_ev_new(k, &eo, &ev), 0);
	/* An object write takes the token; the Events wait behind it. */
	CHECK_EQ_INT(rw_kube_request(k, &w, count_cb, NULL, NULL), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(rw_ev_emit(ev, &ref, 0, "CreatedWorkerPod", "Create", "pod %d", i), 0);
	CHECK_EQ_INT(rw_ev_pending(ev), 3);
	/* A fourth distinct Event is dropped; a repeat of a pending one is folded. */
	CHECK_EQ_INT(rw_ev_emit(ev, &ref, 0, "CreatedWorkerPod", "Create", "pod %d", 3), -EAGAIN);
	CHECK_EQ_INT(rw_ev_emit(ev, &ref, 0, "CreatedWorkerPod", "Create", "pod %d", 0), 0);
	CHECK_EQ_INT(rw_ev_dropped(ev), 1);
	CHECK_EQ_INT(rw_ev_pending(ev), 3);
	CHECK_EQ_INT(rw_kube_queued(k), 3);
	rw_ev_free(ev); /* cancels the pending writes */
	CHECK_EQ_INT(rw_kube_queued(k), 0);
	run_until(1, 30000);
	CHECK_EQ_INT(answered, 1);
	rw_kube_free(k, NULL, NULL);
	srv_stop(&s);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"fair queue: service order", test_fq_order},
	    {"fair queue: bounds, removal", test_fq_bounds},
	    {"fair queue: a newcomer in a full batch", test_fq_newcomer_in_batch},
	    {"fair queue: decay, rebase, idle memory", test_fq_decay_and_memory},
	    {"fair queue: sources take turns", test_fq_sources},
	    {"fair queue: a new flow behind 500 requests", test_fq_head_of_line},
	    {"client: flows round robin, best effort last", test_client_order},
	    {"client: queue bounds", test_client_bounds},
	    {"client: requests on the wire bounded", test_client_inflight},
	    {"events: bounded pending writes", test_events_pressure},
	    {NULL, NULL},
	};
	int rv;
	uv_loop_init(&loop);
	rv = rwt_run(cases);
	drain_loop();
	uv_loop_close(&loop);
	return rv;
}

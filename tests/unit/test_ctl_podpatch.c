/*
 * test_ctl_podpatch.c - the per-pod patch writer's queueing decisions
 * (podpatch.h): what a sync does with a pod (in sync, mark for another sync
 * behind its patch in flight, wait once in the FIFO, enqueue when every slot
 * is taken, send) and what an answer does with the pod's state. The writer
 * itself runs under the readiness gate and the ray.io/serve label in the e2e
 * tests (test_controller_hub, test_rayservice_*).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "kubeconfig.h"
#include "podpatch.h"
#include "rwtest.h"

enum { U = 0, T = 1, F = 2 }; /* states as the gate names them: unknown, true, false */

static void
test_decide(void)
{
	static const struct {
		const char *name;
		bool inflight, queued;
		int sent;
		const char *sent_msg;
		int cache;
		const char *cache_msg;
		int want;
		const char *want_msg;
		int used, max;
		enum rw_pp_act act;
		bool flip;
	} cases[] = {
	    {"cache already holds it", 0, 0, U, "", T, "", T, "", 0, 32, RW_PP_IN_SYNC, 0},
	    {"cache differs, slot free", 0, 0, U, "", F, "", T, "", 0, 32, RW_PP_SEND, 1},
	    {"cache unknown: a flip", 0, 0, U, "", U, "", F, "x", 0, 32, RW_PP_SEND, 1},
	    {"only the message differs", 0, 0, U, "", F, "a", F, "b", 0, 32, RW_PP_SEND, 0},
	    /* What we wrote wins over a cache that has not caught up. */
	    {"sent matches, stale cache", 0, 0, T, "", F, "", T, "", 0, 32, RW_PP_IN_SYNC, 0},
	    {"sent differs, cache matches", 0, 0, F, "", T, "", T, "", 0, 32, RW_PP_SEND, 1},
	    /* One patch per pod in flight: the newest state is synced after the answer. */
	    {"in flight", 1, 0, U, "", F, "", T, "", 0, 32, RW_PP_MARK_AGAIN, 0},
	    {"in flight, in sync too", 1, 0, T, "", T, "", T, "", 5, 32, RW_PP_MARK_AGAIN, 0},
	    /* Every slot taken: wait in the FIFO, once however many updates arrive. */
	    {"slots full", 0, 0, U, "", F, "", T, "", 32, 32, RW_PP_ENQUEUE, 1},
	    {"slots over full", 0, 0, U, "", F, "", T, "", 40, 32, RW_PP_ENQUEUE, 1},
	    {"already waiting", 0, 1, U, "", F, "", T, "", 32, 32, RW_PP_WAITING, 0},
	    {"waiting, in sync now", 0, 1, U, "", T, "", T, "", 32, 32, RW_PP_WAITING, 0},
	    {"slots full but in sync", 0, 0, U, "", T, "", T, "", 32, 32, RW_PP_IN_SYNC, 0},
	    {"last slot", 0, 0, U, "", F, "", T, "", 31, 32, RW_PP_SEND, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_pp_val sent = {cases[i].sent, ""}, cache = {cases[i].cache, ""},
				 want = {cases[i].want, ""};
		struct rw_pp_in in = {cases[i].inflight, cases[i].queued, &sent, &cache, &want,
				      cases[i].used,	 cases[i].max};
		bool flip = !cases[i].flip;
		snprintf(sent.msg, sizeof(sent.msg), "%s", cases[i].sent_msg);
		snprintf(cache.msg, sizeof(cache.msg), "%s", cases[i].cache_msg);
		snprintf(want.msg, sizeof(want.msg), "%s", cases[i].want_msg);
		enum rw_pp_act act = rw_pp_decide(&in, &flip);
		if (act != cases[i].act || flip != cases[i].flip)
			fprintf(stderr, "  case \"%s\": act %d flip %d\n", cases[i].name, (int)act,
				(int)flip);
		CHECK_EQ_INT(act, cases[i].act);
		CHECK(flip == cases[i].flip);
	}
	/* sent NULL is "unknown" too, and flip may be NULL. */
	{
		struct rw_pp_val cache = {F, ""}, want = {T, ""};
		struct rw_pp_in in = {false, false, NULL, &cache, &want, 0, 1};
		CHECK_EQ_INT(rw_pp_decide(&in, NULL), RW_PP_SEND);
	}
}

static void
test_answer(void)
{
	static const struct {
		bool forgotten;
		long status;
		bool ok;
		enum rw_pp_done d;
	} cases[] = {
	    {false, 200, true, RW_PP_D_SYNCED},	 {false, 500, false, RW_PP_D_FAILED},
	    {false, 0, false, RW_PP_D_FAILED},	 /* transport error */
	    {false, 409, false, RW_PP_D_FAILED}, /* retried through the owner's reconcile */
	    {false, 404, false, RW_PP_D_DROP},	 /* the pod is gone */
	    {true, 200, true, RW_PP_D_DROP},	 /* deleted while the patch was in flight */
	    {true, 500, false, RW_PP_D_DROP},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_EQ_INT(rw_pp_answer(cases[i].forgotten, cases[i].status, cases[i].ok),
			     cases[i].d);
}

static bool
want_never(void *ud, const struct rw_inf_pod *p, struct rw_pp_val *w, struct rw_pp_val *c)
{
	(void)ud;
	(void)p;
	(void)w;
	(void)c;
	return false;
}

static int
build_none(void *ud, const struct rw_inf_pod *p, const struct rw_pp_val *v, bool flip,
	   struct rw_kube_req *kr, struct rw_buf *body)
{
	(void)ud;
	(void)p;
	(void)v;
	(void)flip;
	(void)kr;
	(void)body;
	return -1;
}

/* A pod that wants nothing costs no state; NULL writers are no-ops. */
static void
test_lifecycle(void)
{
	struct rw_pp_ops ops = {want_never, build_none, NULL,
				NULL,	    NULL,	"application/json-patch+json"},
			 bad = {NULL, NULL, NULL, NULL, NULL, NULL};
	struct rw_pp *pp = NULL;
	struct rw_inf_pod p = {.meta = {.ns = "ns", .name = "p", .uid = "u"}};
	CHECK_EQ_INT(rw_pp_new(NULL, NULL, "x", 0, &bad, NULL, &pp), -EINVAL);
	CHECK(pp == NULL);
	CHECK_EQ_INT(rw_pp_new(NULL, NULL, "x", 0, &ops, NULL, &pp), 0);
	rw_pp_sync(pp, &p);
	CHECK_EQ_INT((int)rw_pp_pods(pp), 0);
	CHECK_EQ_INT(rw_pp_inflight(pp), 0);
	CHECK_EQ_INT((int)rw_pp_waiting(pp), 0);
	rw_pp_forget(pp, &p);
	rw_pp_free(pp);
	rw_pp_sync(NULL, &p);
	rw_pp_forget(NULL, &p);
	rw_pp_free(NULL);
}

/* ---- the writer with a real API client (its server refuses connections) ---- */

struct fx {
	int want_state; /* what every pod should hold; the cache says unknown */
	int built, answered, failed, retried;
};

static bool
want_fx(void *ud, const struct rw_inf_pod *p, struct rw_pp_val *w, struct rw_pp_val *c)
{
	struct fx *f = ud;
	(void)p;
	w->state = f->want_state;
	c->state = U;
	return true;
}

static int
build_fx(void *ud, const struct rw_inf_pod *p, const struct rw_pp_val *v, bool flip,
	 struct rw_kube_req *kr, struct rw_buf *body)
{
	struct fx *f = ud;
	(void)v;
	(void)flip;
	f->built++;
	/* What the writer filled in: a PATCH of the pod itself. */
	CHECK_EQ_STR(kr->method, "PATCH");
	CHECK_EQ_STR(kr->content_type, "application/merge-patch+json");
	CHECK(strstr(kr->path, p->meta.name) != NULL && strstr(kr->path, "/status") == NULL);
	kr->no_retry = 1;
	return rw_buf_puts(body, "{}");
}

static void
answered_fx(void *ud, const char *key, const struct rw_pp_val *v, const struct rw_kube_resp *resp,
	    bool ok, uint64_t t_want, uint64_t t_sent)
{
	struct fx *f = ud;
	(void)key;
	(void)v;
	(void)resp;
	(void)t_sent;
	f->answered++;
	f->failed += !ok;
	CHECK(t_want != 0);
}

static void
retry_fx(void *ud, const struct rw_inf_pod *p)
{
	struct fx *f = ud;
	(void)p;
	f->retried++;
}

static void
tick(uv_timer_t *t)
{
	(void)t;
}

/*
 * At most one patch in flight: the others wait once each however many
 * updates arrive, a forgotten pod leaves the FIFO, and a failed answer frees
 * the slot for the oldest waiting pod (which, gone from the pod cache here,
 * is dropped from the FIFO without a request).
 */
static void
test_bounded_fifo(void)
{
	char path[] = "/tmp/rw-ctl-pp-XXXXXX", err[256];
	const char *kcs = "apiVersion: v1\nkind: Config\nclusters:\n- {name: c, cluster: {server: "
			  "'http://127.0.0.1:1'}}\ncontexts:\n- {name: x, context: {cluster: c, "
			  "user: u}}\ncurrent-context: x\nusers:\n- {name: u, user: {token: t}}\n";
	struct rw_kubecfg kc;
	struct rw_kube_opts ko;
	struct rw_kube *k = NULL;
	struct rw_pp *pp = NULL;
	struct fx f = {T, 0, 0, 0, 0};
	struct rw_pp_ops ops = {want_fx,  build_fx, answered_fx,
				retry_fx, NULL,	    "application/merge-patch+json"};
	struct rw_inf_pod a = {.meta = {.ns = "ns", .name = "a", .uid = "ua"}, .cluster = "c"};
	struct rw_inf_pod b = {.meta = {.ns = "ns", .name = "b", .uid = "ub"}, .cluster = "c"};
	struct rw_inf_pod c = {.meta = {.ns = "ns", .name = "c", .uid = "uc"}, .cluster = "c"};
	uv_loop_t loop;
	uv_timer_t t;
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, kcs, strlen(kcs)) == (ssize_t)strlen(kcs));
	close(fd);
	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	memset(&kc, 0, sizeof(kc));
	CHECK_EQ_INT(rw_kubecfg_auto(&kc, path, 0, err, sizeof(err)), 0);
	memset(&ko, 0, sizeof(ko));
	CHECK_EQ_INT(rw_kube_new(&loop, &kc, &ko, &k), 0);
	CHECK_EQ_INT(rw_pp_new(k, NULL, "test", 1, &ops, &f, &pp), 0);
	rw_pp_sync(pp, &a);
	CHECK_EQ_INT(rw_pp_inflight(pp), 1);
	rw_pp_sync(pp, &b);
	rw_pp_sync(pp, &c);
	rw_pp_sync(pp, &b); /* coalesced: b waits once */
	rw_pp_sync(pp, &a); /* in flight: marked, not sent twice */
	CHECK_EQ_INT(f.built, 1);
	CHECK_EQ_INT((int)rw_pp_waiting(pp), 2);
	CHECK_EQ_INT((int)rw_pp_pods(pp), 3);
	rw_pp_forget(pp, &c);
	CHECK_EQ_INT((int)rw_pp_waiting(pp), 1);
	CHECK_EQ_INT((int)rw_pp_pods(pp), 2);
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, tick, 5, 5);
	for (int i = 0; i < 2000 && f.answered < 1; i++)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK_EQ_INT(f.answered, 1);
	CHECK_EQ_INT(f.failed, 1);
	CHECK_EQ_INT(f.retried, 0); /* a is not in the (absent) pod cache: nothing to retry */
	CHECK_EQ_INT(rw_pp_inflight(pp), 0);
	CHECK_EQ_INT((int)rw_pp_waiting(pp), 0);
	CHECK_EQ_INT(f.built, 1);
	/* a failed: what it held is unknown again, so the next sync sends. */
	rw_pp_sync(pp, &a);
	CHECK_EQ_INT(f.built, 2);
	CHECK_EQ_INT(rw_pp_inflight(pp), 1);
	rw_pp_forget(pp, &a); /* in flight: dropped after its answer */
	CHECK_EQ_INT((int)rw_pp_pods(pp), 2);
	for (int i = 0; i < 2000 && f.answered < 2; i++)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK_EQ_INT(f.answered, 2);
	CHECK_EQ_INT((int)rw_pp_pods(pp), 1); /* b, no longer waiting */
	rw_pp_free(pp);
	uv_close((uv_handle_t *)&t, NULL);
	rw_kube_free(k, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	rw_kubecfg_fini(&kc);
	unlink(path);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"decide", test_decide},
	    {"answer", test_answer},
	    {"lifecycle", test_lifecycle},
	    {"bounded_fifo", test_bounded_fifo},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

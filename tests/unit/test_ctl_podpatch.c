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
	   struct rw_kube_req *kr, char *path, size_t pathlen, struct rw_buf *body)
{
	(void)ud;
	(void)p;
	(void)v;
	(void)flip;
	(void)kr;
	(void)path;
	(void)pathlen;
	(void)body;
	return -1;
}

/* A pod that wants nothing costs no state; NULL writers are no-ops. */
static void
test_lifecycle(void)
{
	struct rw_pp_ops ops = {want_never, build_none, NULL, NULL}, bad = {NULL, NULL, NULL, NULL};
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

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"decide", test_decide},
	    {"answer", test_answer},
	    {"lifecycle", test_lifecycle},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

/*
 * test_ctl_reconcile.c - the reconcile runtime's pure parts: the requeue
 * policy (each kind's KubeRay intervals as a table), the result -> metric
 * label map, and the step driver with a fake request function (steps run in
 * order, a step waits for its requests, a failure jumps to the status step,
 * a terminal step's "then", teardown cancels what is in flight), and the
 * Service switch (rw_rec_service_switch) the RayService and RayJob share.
 */
#include <errno.h>
#include <string.h>
#include <uv.h>

#include "reconcile.h"
#include "rwtest.h"

/* ---- policy ---- */

/* The kinds' policies as configured in raycluster.c and rayservice.c. */
static const struct rw_rec_policy rc_pol = {.idle_ms = 300000, .unsynced_ms = 200};
static const struct rw_rec_policy rs_pol = {
    .busy_ms = 2000, .idle_ms = 60000, .soonest = true, .unsynced_ms = 200};

static void
t_policy(void)
{
	static const struct {
		const struct rw_rec_policy *p;
		int err;
		bool busy, stop;
		uint64_t requested;
		enum rw_rec_result want;
		uint64_t delay;
	} c[] = {
	    /* RayCluster: the default period, a step's own delay replaces it */
	    {&rc_pol, 0, false, false, 0, RW_REC_REQUEUE_AFTER, 300000},
	    {&rc_pol, 0, false, false, 10000, RW_REC_REQUEUE_AFTER, 10000}, /* head deletion */
	    {&rc_pol, 0, false, false, 1000, RW_REC_REQUEUE_AFTER, 1000},   /* expectations */
	    {&rc_pol, 0, false, false, 20, RW_REC_REQUEUE_AFTER, 20},	    /* status conflict */
	    {&rc_pol, 0, false, false, 1, RW_REC_REQUEUE_AFTER, 1},	/* more pods next pass */
	    {&rc_pol, 0, true, false, 0, RW_REC_REQUEUE_AFTER, 300000}, /* no busy period */
	    {&rc_pol, 0, false, true, 1000, RW_REC_SUCCESS, 0},		/* gone / invalid */
	    {&rc_pol, -EIO, false, false, 1000, RW_REC_ERROR, 0},	/* queue backs off */
	    {&rc_pol, -EAGAIN, false, true, 0, RW_REC_ERROR, 0},	/* error beats stop */
	    /* RayService: 2 s busy, 60 s steady, a request only makes it sooner */
	    {&rs_pol, 0, false, false, 0, RW_REC_REQUEUE_AFTER, 60000},
	    {&rs_pol, 0, true, false, 0, RW_REC_REQUEUE_AFTER, 2000},
	    {&rs_pol, 0, false, false, 20, RW_REC_REQUEUE_AFTER, 20},
	    {&rs_pol, 0, true, false, 1000, RW_REC_REQUEUE_AFTER, 1000},
	    {&rs_pol, 0, true, false, 30000, RW_REC_REQUEUE_AFTER, 2000}, /* deletion in 30 s */
	    {&rs_pol, 0, false, false, 90000, RW_REC_REQUEUE_AFTER, 60000},
	    {&rs_pol, 0, true, true, 1000, RW_REC_SUCCESS, 0},
	    {&rs_pol, -ENOMEM, true, false, 0, RW_REC_ERROR, 0},
	};
	static const struct rw_rec_policy none = {0};
	uint64_t d = 7;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		enum rw_rec_result r =
		    rw_rec_decide(c[i].p, c[i].err, c[i].busy, c[i].stop, c[i].requested, &d);
		CHECK_EQ_INT(r, c[i].want);
		CHECK_EQ_INT(d, c[i].delay);
	}
	/* No period configured: success without requeue unless asked. */
	CHECK_EQ_INT(rw_rec_decide(&none, 0, true, false, 0, &d), RW_REC_SUCCESS);
	CHECK_EQ_INT(d, 0);
	CHECK_EQ_INT(rw_rec_decide(&none, 0, false, false, 5, &d), RW_REC_REQUEUE_AFTER);
	CHECK_EQ_INT(d, 5);
}

static void
t_labels(void)
{
	CHECK_EQ_STR(rw_rec_result_label(RW_REC_SUCCESS), "success");
	CHECK_EQ_STR(rw_rec_result_label(RW_REC_ERROR), "error");
	CHECK_EQ_STR(rw_rec_result_label(RW_REC_REQUEUE), "requeue");
	CHECK_EQ_STR(rw_rec_result_label(RW_REC_REQUEUE_AFTER), "requeue_after");
	CHECK_EQ_STR(rw_rec_result_label((enum rw_rec_result)99), "success");
}

static void
t_helpers(void)
{
	char ns[8], name[8];
	CHECK(rw_rec_ok(200) && rw_rec_ok(201) && rw_rec_ok(299));
	CHECK(!rw_rec_ok(199) && !rw_rec_ok(300) && !rw_rec_ok(409) && !rw_rec_ok(0));
	rw_rec_split_key("ns/a", ns, sizeof(ns), name, sizeof(name));
	CHECK_EQ_STR(ns, "ns");
	CHECK_EQ_STR(name, "a");
	rw_rec_split_key("bare", ns, sizeof(ns), name, sizeof(name));
	CHECK_EQ_STR(ns, "");
	CHECK_EQ_STR(name, "bare");
	rw_rec_split_key("longnamespace/longname", ns, sizeof(ns), name, sizeof(name));
	CHECK_EQ_STR(ns, "longnam"); /* bounded */
	CHECK_EQ_STR(name, "longnam");
}

/* ---- the step driver, with a fake request function ---- */

enum { S_LOAD, S_A, S_B, S_STATUS, S_DONE, S_DELETE, S_N };

struct fake {
	/* requests handed to the "API": answered by the test */
	rw_kube_cb cb[8];
	void *ud[8];
	char flow[8][64];
	char path[8][128], verb[8][16], ctype[8][48], method[8][8];
	int n;
	int refuse; /* the next submit fails with this */
	/* what the steps saw */
	char trace[64];
	int fini;
	bool fail_in_a, delete_path, stop_in_load;
	int verdict; /* 1: parse fails (unparsable), 2: attach fails (abort) */
	int fini_err;
	bool fini_stop;
	char fini_uid[64];
	int64_t fini_deleted_at;
	int a_reqs; /* requests step A starts */
	int answered_ok;
};

static struct fake F;

struct tjob {
	struct rw_rec_job rec;
	int mine;
};

static int
fake_submit(struct rw_kube *k, const struct rw_kube_req *req, rw_kube_cb cb, void *ud,
	    struct rw_kube_op **opp)
{
	(void)k;
	if (F.refuse) {
		int rv = F.refuse;
		F.refuse = 0;
		return rv;
	}
	if (F.n >= 8)
		return -ENOBUFS;
	F.cb[F.n] = cb;
	F.ud[F.n] = ud;
	snprintf(F.flow[F.n], sizeof(F.flow[0]), "%s", req->flow ? req->flow : "");
	snprintf(F.path[F.n], sizeof(F.path[0]), "%s", req->path ? req->path : "");
	snprintf(F.verb[F.n], sizeof(F.verb[0]), "%s", req->verb ? req->verb : "");
	snprintf(F.ctype[F.n], sizeof(F.ctype[0]), "%s",
		 req->content_type ? req->content_type : "");
	snprintf(F.method[F.n], sizeof(F.method[0]), "%s", req->method ? req->method : "");
	F.n++;
	*opp = NULL; /* nothing to cancel in the fake */
	return 0;
}

static void
mark(char c)
{
	size_t n = strlen(F.trace);
	if (n + 1 < sizeof(F.trace)) {
		F.trace[n] = c;
		F.trace[n + 1] = '\0';
	}
}

static void
req_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct tjob *j = q->job;
	CHECK(j != NULL && j->mine == 42);
	CHECK_EQ_STR(q->s1, "what");
	if (rw_rec_ok(resp->status))
		F.answered_ok++;
	else
		rw_rec_fail(q->job, -EIO, "Reason", "HTTP %ld", resp->status);
}

/* The load step's callbacks (the runtime's rw_rec_step_load runs them). */
static const struct rw_inf_json *
find(struct rw_rec_job *j)
{
	static struct rw_inf_json obj;
	(void)j;
	mark('L');
	if (F.stop_in_load)
		return NULL; /* gone */
	memset(&obj, 0, sizeof(obj));
	obj.meta.deleted = F.delete_path ? 1700000000 : 0;
	obj.json = "{}";
	obj.len = 2;
	return &obj;
}

static void
gone(struct rw_rec_job *j)
{
	(void)j;
	mark('G');
}

static const char *
parse(struct rw_rec_job *j, const struct rw_inf_json *o, char *err, size_t errlen)
{
	(void)j;
	CHECK_EQ_STR(o->json, "{}");
	if (F.verdict == 1) {
		snprintf(err, errlen, "spec: not an object");
		return NULL;
	}
	return "uid-1";
}

static int
attach(struct rw_rec_job *j)
{
	(void)j;
	return F.verdict == 2 ? -ENOMEM : 0;
}

static void
st_a(struct rw_rec_job *j)
{
	struct rw_kube_req kr = {.method = "GET", .path = "/x"};
	mark('A');
	for (int i = 0; i < F.a_reqs; i++)
		CHECK_EQ_INT(rw_rec_request(j->ctl, j, &kr, req_cb, "what", NULL, NULL), 0);
	if (F.fail_in_a)
		rw_rec_fail(j, 0, "Why", "step %s failed", "a");
}

static void
st_b(struct rw_rec_job *j)
{
	mark('B');
	rw_rec_requeue(j, 1000);
	rw_rec_requeue(j, 0); /* asks nothing */
	rw_rec_requeue(j, 500);
	rw_rec_requeue(j, 800);
}

static void
st_status(struct rw_rec_job *j)
{
	mark('S');
	j->busy = true;
}

static void
st_delete(struct rw_rec_job *j)
{
	mark('D');
	j->stop_requeue = true;
	j->step = S_A; /* overridden by the table's "then" */
}

static void
job_init(struct rw_rec_job *j)
{
	((struct tjob *)j)->mine = 42;
}

static void
job_fini(struct rw_rec_job *j)
{
	CHECK_EQ_INT(((struct tjob *)j)->mine, 42);
	F.fini++;
	F.fini_err = j->err;
	F.fini_stop = j->stop_requeue;
	snprintf(F.fini_uid, sizeof(F.fini_uid), "%s", j->uid);
	F.fini_deleted_at = j->deleted_at;
}

static bool synced_v = true;

static bool
synced(void *ud)
{
	CHECK(ud == &F);
	return synced_v;
}

static const struct rw_rec_step steps[] = {
    [S_LOAD] = {"load", rw_rec_step_load, 0},
    [S_A] = {"a", st_a, 0},
    [S_B] = {"b", st_b, 0},
    [S_STATUS] = {"status", st_status, S_DONE},
    [S_DONE] = {"done", NULL, 0},
    [S_DELETE] = {"delete", st_delete, S_DONE},
};

static const struct rw_inf_type test_type = {.api_path = "/apis/t.io/v1", .resource = "tests"};

static const struct rw_rec_kind kind = {
    .name = "test",
    .kind = "Test",
    .type = &test_type,
    .steps = steps,
    .nsteps = S_N,
    .fail_step = S_STATUS,
    .job_size = sizeof(struct tjob),
    .synced = synced,
    .job_init = job_init,
    .job_fini = job_fini,
    .find = find,
    .gone = gone,
    .parse = parse,
    .attach = attach,
    .delete_step = S_DELETE,
};

static void
answer(int i, long status)
{
	struct rw_kube_resp resp = {.status = status, .message = ""};
	F.cb[i](&resp, F.ud[i]);
}

static void
ctl_init(struct rw_rec_ctl *c)
{
	memset(&F, 0, sizeof(F));
	synced_v = true;
	CHECK_EQ_INT(rw_rec_ctl_init(c, &kind, &rs_pol, &F, NULL, NULL, NULL, fake_submit), 0);
}

static void
t_driver_order_and_wait(void)
{
	struct rw_rec_ctl c;
	ctl_init(&c);
	F.a_reqs = 2;
	rw_rec_reconcile(&c, "ns/obj");
	/* Load, A started two requests: the driver waits. */
	CHECK_EQ_STR(F.trace, "LA");
	CHECK_EQ_INT(F.n, 2);
	CHECK(c.jobs != NULL && c.jobs->pending == 2);
	CHECK_EQ_STR(c.jobs->ns, "ns");
	CHECK_EQ_STR(c.jobs->name, "obj");
	CHECK_EQ_STR(F.flow[0], "ns/obj"); /* one fair-queue flow per object */
	CHECK(c.reqs != NULL);
	answer(1, 200);
	CHECK_EQ_STR(F.trace, "LA");
	answer(0, 201);
	/* Both answered: B, status, done; the job is gone. */
	CHECK_EQ_STR(F.trace, "LABS");
	CHECK_EQ_INT(F.answered_ok, 2);
	CHECK(c.jobs == NULL && c.reqs == NULL);
	CHECK_EQ_INT(F.fini, 1);
	rw_rec_ctl_fini(&c);
}

static void
t_driver_fail_jumps_to_status(void)
{
	struct rw_rec_ctl c;
	ctl_init(&c);
	F.fail_in_a = true;
	rw_rec_reconcile(&c, "ns/obj");
	/* A failed: B is skipped, the status still runs. */
	CHECK_EQ_STR(F.trace, "LAS");
	CHECK_EQ_INT(F.fini, 1);
	/* A failed answer fails the job the same way. */
	ctl_init(&c);
	F.a_reqs = 1;
	rw_rec_reconcile(&c, "ns/obj");
	CHECK(c.jobs != NULL && F.n == 1);
	if (F.n == 1)
		answer(0, 500); /* the job resumes, skips B, writes the status, is freed */
	CHECK_EQ_STR(F.trace, "LAS");
	CHECK_EQ_INT(F.fini, 1);
	rw_rec_ctl_fini(&c);
}

static void
t_driver_first_failure_kept(void)
{
	struct rw_rec_ctl c;
	struct rw_rec_job *j;
	ctl_init(&c);
	F.a_reqs = 1;
	rw_rec_reconcile(&c, "ns/obj");
	j = c.jobs;
	CHECK(j != NULL);
	if (!j)
		return;
	rw_rec_fail(j, -EAGAIN, "First", "first %d", 1);
	rw_rec_fail(j, -EIO, "Second", "second");
	CHECK_EQ_INT(j->err, -EAGAIN);
	CHECK_EQ_STR(j->fail_reason, "First");
	CHECK_EQ_STR(j->fail_msg, "first 1");
	rw_rec_fail(j, 0, NULL, "x"); /* err 0 would be -EIO, but the first is kept */
	CHECK_EQ_INT(j->err, -EAGAIN);
	rw_rec_emit(j, 1, "Reason", "no recorder: %s", "nothing happens");
	rw_rec_ctl_fini(&c); /* cancels the request, frees the job */
	CHECK_EQ_INT(F.fini, 1);
	CHECK(c.jobs == NULL && c.reqs == NULL);
}

static void
answer_ns_terminating(int i)
{
	struct rw_kube_resp resp = {.status = 403,
				    .reason = "Forbidden",
				    .message =
					"unable to create new content in namespace ns because it "
					"is being terminated",
				    .ns_terminating = true};
	F.cb[i](&resp, F.ud[i]);
}

/* A create refused because the namespace is being deleted is not a failure of the
 * reconcile; any other refusal in the same reconcile still is. */
static void
t_driver_namespace_terminating(void)
{
	static const struct {
		long second; /* the other request's answer */
		const char *trace;
		int err;
	} cases[] = {
	    {201, "LABS", 0},	/* B not skipped, no failure */
	    {403, "LAS", -EIO}, /* an RBAC refusal: a failure as ever */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_rec_ctl c;
		ctl_init(&c);
		F.a_reqs = 2;
		rw_rec_reconcile(&c, "ns/obj");
		CHECK_EQ_INT(F.n, 2);
		if (F.n != 2)
			return;
		answer_ns_terminating(0);
		answer(1, cases[i].second);
		CHECK_EQ_STR(F.trace, cases[i].trace);
		CHECK_EQ_INT(F.fini, 1);
		CHECK_EQ_INT(F.fini_err, cases[i].err);
		rw_rec_ctl_fini(&c);
	}
}

static void
t_driver_terminal_then(void)
{
	struct rw_rec_ctl c;
	ctl_init(&c);
	F.delete_path = true;
	rw_rec_reconcile(&c, "ns/obj");
	/* Load chose delete; delete's "then" ends the job whatever it set. */
	CHECK_EQ_STR(F.trace, "LD");
	CHECK_EQ_INT(F.fini, 1);
	CHECK_EQ_INT((int)F.fini_deleted_at, 1700000000); /* the runtime kept the timestamp */
	/* Gone from the cache: the kind drops its state, nothing else runs, not even the status
	 * step. */
	ctl_init(&c);
	F.stop_in_load = true;
	rw_rec_reconcile(&c, "ns/obj");
	CHECK_EQ_STR(F.trace, "LG");
	CHECK_EQ_INT(F.fini, 1);
	rw_rec_ctl_fini(&c);
}

/* The load step's verdicts: unparsable stops quietly, abort fails without a status. */
static void
t_driver_load_verdicts(void)
{
	struct rw_rec_ctl c;
	ctl_init(&c);
	F.verdict = 1;
	rw_rec_reconcile(&c, "ns/obj");
	CHECK_EQ_STR(F.trace, "L");
	CHECK_EQ_INT(F.fini, 1);
	CHECK_EQ_INT(F.fini_err, 0);
	CHECK(F.fini_stop);
	CHECK_EQ_STR(F.fini_uid, ""); /* never loaded */
	ctl_init(&c);
	F.verdict = 2;
	rw_rec_reconcile(&c, "ns/obj");
	CHECK_EQ_STR(F.trace, "L"); /* not the status step: the failure is the controller's */
	CHECK_EQ_INT(F.fini_err, -ENOMEM);
	CHECK(!F.fini_stop); /* the work queue retries it with back-off */
	rw_rec_ctl_fini(&c);
}

/* The ready-made handlers queue namespace/name of whatever they see. */
static void
wq_fn(struct rw_wq *q, const char *key, void *ud)
{
	(void)q;
	(void)key;
	(void)ud;
}

static void
t_object_handlers(void)
{
	struct rw_rec_ctl c;
	struct rw_inf_json o = {.meta = {.ns = "ns", .name = "obj", .uid = "", .rv = ""}};
	struct rw_inf_json o2 = {.meta = {.ns = "ns", .name = "other", .uid = "", .rv = ""}};
	struct rw_wq_opts wo = {.name = "test", .paused = 1};
	struct rw_inf_handlers h;
	uv_loop_t loop;
	ctl_init(&c);
	h = rw_rec_object_handlers(&c);
	CHECK(h.ud == &c && h.on_add && h.on_update && h.on_delete);
	h.on_add(NULL, &o, h.ud); /* no work queue yet (tests, before setup): a no-op */
	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(rw_wq_new(&loop, &wo, wq_fn, NULL, &c.wq), 0);
	h.on_add(NULL, &o, h.ud);
	CHECK_EQ_INT(rw_wq_len(c.wq), 1);
	h.on_update(NULL, &o, &o, h.ud); /* the same key: still one */
	h.on_delete(NULL, &o, h.ud);
	CHECK_EQ_INT(rw_wq_len(c.wq), 1);
	h.on_update(NULL, &o, &o2, h.ud); /* the new object's key */
	CHECK_EQ_INT(rw_wq_len(c.wq), 2);
	rw_rec_enqueue(&c, "ns", "third");
	CHECK_EQ_INT(rw_wq_len(c.wq), 3);
	CHECK_EQ_STR(F.trace, ""); /* paused: nothing ran */
	rw_wq_free(c.wq, NULL, NULL);
	c.wq = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	rw_rec_ctl_fini(&c);
}

static void
t_driver_unsynced_and_refused(void)
{
	struct rw_rec_ctl c;
	struct rw_kube_req kr = {.method = "GET", .path = "/x", .flow = "own"};
	ctl_init(&c);
	synced_v = false;
	rw_rec_reconcile(&c, "ns/obj");
	CHECK_EQ_STR(F.trace, ""); /* no step on a partial cache */
	CHECK_EQ_INT(F.fini, 0);
	/* A refused request: no record, no pending count, the error is returned. */
	F.refuse = -ENOBUFS;
	CHECK_EQ_INT(rw_rec_request(&c, NULL, &kr, NULL, "s", NULL, NULL), -ENOBUFS);
	CHECK(c.reqs == NULL);
	/* A request outside a reconcile keeps its own flow and resumes nothing. */
	CHECK_EQ_INT(rw_rec_request(&c, NULL, &kr, NULL, "s", "t", NULL), 0);
	CHECK_EQ_STR(F.flow[0], "own");
	answer(0, 200);
	CHECK(c.reqs == NULL);
	rw_rec_ctl_fini(&c);
	rw_rec_ctl_fini(NULL);
}

/* The request helpers: method, verb, content type and path of what they send. */
static void
t_send_helpers(void)
{
	struct rw_rec_ctl c;
	struct rw_rec_job *j;
	static const struct {
		const char *method, *verb, *ctype;
	} want[] = {
	    {"POST", "create", "application/json"},
	    {"PUT", "update", "application/json"},
	    {"PATCH", "patch", "application/merge-patch+json"},
	    {"PATCH", "patch", "application/json-patch+json"}, /* rw_rec_patch */
	    {"PUT", "update", "application/json"},	       /* rw_rec_put_status */
	};
	ctl_init(&c);
	F.a_reqs = 1; /* keep the job waiting in A */
	rw_rec_reconcile(&c, "ns/obj");
	j = c.jobs;
	CHECK(j != NULL);
	if (!j)
		return;
	F.n = 0;
	CHECK_EQ_INT(
	    rw_rec_send(j, "POST", "/api/v1/namespaces/ns/pods", "{}", 2, NULL, NULL, NULL, NULL),
	    0);
	CHECK_EQ_INT(rw_rec_send(j, "PUT", "/x/y", "{}", 2, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(rw_rec_send(j, "PATCH", "/x/y", "{}", 2, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(rw_rec_patch(j, "[]", NULL, "patching"), 0);
	CHECK_EQ_INT(rw_rec_put_status(j, "{}", 2, NULL, NULL), 0);
	CHECK_EQ_INT(F.n, 5);
	for (int i = 0; i < 5 && i < F.n; i++) {
		CHECK_EQ_STR(F.method[i], want[i].method);
		CHECK_EQ_STR(F.verb[i], want[i].verb);
		CHECK_EQ_STR(F.ctype[i], want[i].ctype);
		CHECK_EQ_STR(F.flow[i], "ns/obj");
	}
	CHECK_EQ_STR(F.path[3], "/apis/t.io/v1/namespaces/ns/tests/obj");
	CHECK_EQ_STR(F.path[4], "/apis/t.io/v1/namespaces/ns/tests/obj/status");
	CHECK_EQ_INT(j->pending, 6);
	/* A failed patch fails the job; a status conflict asks for a requeue in 20 ms. */
	answer(3, 422);
	CHECK_EQ_INT(j->err, -EIO);
	CHECK_EQ_STR(j->fail_msg, "patching: HTTP 422 ");
	answer(4, 409);
	CHECK_EQ_INT(j->requeue_ms, 20);
	rw_rec_ctl_fini(&c);
	CHECK_EQ_INT(F.fini, 1);
}

/* ---- Services that follow a cluster ---- */

static void
t_service_switch(void)
{
	static const char existing[] =
	    "{\"metadata\":{\"name\":\"s\",\"resourceVersion\":\"7\"},\"spec\":{\"clusterIP\":"
	    "\"10.0.0.5\",\"clusterIPs\":[\"10.0.0.5\"],\"selector\":{\"ray.io/cluster\":\"old\","
	    "\"ray.io/serve\":\"true\"},\"ports\":[{\"name\":\"serve\",\"port\":8000}]}}";
	static const char same[] =
	    "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"selector\":{\"ray.io/"
	    "cluster\":\"old\",\"ray.io/serve\":\"true\"},\"ports\":[]}}";
	static const char next[] =
	    "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"selector\":{\"ray.io/"
	    "cluster\":\"new\",\"ray.io/serve\":\"true\"},\"ports\":[{\"name\":"
	    "\"serve\",\"port\":8000}]}}";
	enum rw_rec_svc_action act;
	struct rw_buf b;
	struct rw_doc_node *s;
	rw_buf_init(&b, 1 << 20);
	CHECK_EQ_INT(
	    rw_rec_service_switch(existing, strlen(existing), same, strlen(same), &act, &b), 0);
	CHECK_EQ_INT(act, RW_REC_SVC_KEEP);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(
	    rw_rec_service_switch(existing, strlen(existing), next, strlen(next), &act, &b), 0);
	CHECK_EQ_INT(act, RW_REC_SVC_SWITCH);
	/* A merge patch of the spec only: the selector and ports as desired, the immutable
	 * clusterIP(s) left out, no metadata (no resourceVersion precondition). */
	s = NULL;
	CHECK_EQ_INT(rw_doc_parse(b.data, b.len, &s, NULL, 0), 0);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec.selector"), "ray.io/cluster"), "new");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "spec.selector"), "ray.io/serve"), "true");
	CHECK(rw_doc_path(s, "spec.ports") != NULL);
	CHECK(rw_doc_path(s, "spec.clusterIP") == NULL);
	CHECK(rw_doc_path(s, "spec.clusterIPs") == NULL);
	CHECK(rw_doc_get(s, "metadata") == NULL);
	rw_doc_free(s);
	/* Selector keys the desired selector lacks are nulled: the result is exact. */
	static const char extra[] =
	    "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"selector\":{\"ray.io/cluster\":\"old\","
	    "\"ray.io/serve\":\"true\",\"app\":\"x\"}}}";
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rec_service_switch(extra, strlen(extra), next, strlen(next), &act, &b), 0);
	CHECK_EQ_INT(act, RW_REC_SVC_SWITCH);
	s = NULL;
	CHECK_EQ_INT(rw_doc_parse(b.data, b.len, &s, NULL, 0), 0);
	struct rw_doc_node *app = rw_doc_get(rw_doc_path(s, "spec.selector"), "app");
	CHECK(app != NULL && app->type == RW_DOC_NULL);
	rw_doc_free(s);
	CHECK_EQ_INT(rw_rec_service_switch("{", 1, next, strlen(next), &act, &b), -EINVAL);
	CHECK_EQ_INT(rw_rec_service_switch("[]", 2, next, strlen(next), &act, &b), -EINVAL);
	CHECK_EQ_INT(act, RW_REC_SVC_KEEP);
	rw_buf_fini(&b);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"requeue policy table (both kinds)", t_policy},
	    {"result -> metric label", t_labels},
	    {"ok status and key split", t_helpers},
	    {"steps in order, wait for requests", t_driver_order_and_wait},
	    {"failure jumps to the status step", t_driver_fail_jumps_to_status},
	    {"first failure kept", t_driver_first_failure_kept},
	    {"namespace being deleted: not a failure", t_driver_namespace_terminating},
	    {"terminal step's then, stop", t_driver_terminal_then},
	    {"load verdicts: unparsable, abort", t_driver_load_verdicts},
	    {"object handlers", t_object_handlers},
	    {"unsynced caches, refused request", t_driver_unsynced_and_refused},
	    {"send, patch, put status", t_send_helpers},
	    {"service switch by ray.io/cluster", t_service_switch},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

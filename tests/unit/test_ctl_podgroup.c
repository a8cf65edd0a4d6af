/*
 * test_ctl_podgroup.c - the PodGroup calls (controller/podgroup.c) on the reconcile runtime with
 * a fake API: the sync's GET, then a create when absent (AlreadyExists accepted), a merge patch
 * when the size differs (Volcano only), failures failing the job; the deletion of a finished
 * RayJob's PodGroup never failing it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "podgroup.h"
#include "reconcile.h"
#include "rwtest.h"

#define COLL "/apis/scheduling.volcano.sh/v1beta1/namespaces/ns/podgroups"
#define DESIRED                                                                                    \
	"{\"metadata\":{\"name\":\"ray-c-pg\"},\"spec\":{\"minMember\":3,\"minResources\":{"       \
	"\"cpu\":\"3\"}}}"

static struct {
	rw_kube_cb cb[4];
	void *ud[4];
	char method[4][8], path[4][128], ctype[4][48], body[4][256];
	int n;
	/* what the job asks of the step */
	bool delete_mode, update;
	int err;
	int finished;
} F;

static int
fake_submit(struct rw_kube *k, const struct rw_kube_req *req, rw_kube_cb cb, void *ud,
	    struct rw_kube_op **opp)
{
	(void)k;
	if (F.n >= 4)
		return -ENOBUFS;
	F.cb[F.n] = cb;
	F.ud[F.n] = ud;
	snprintf(F.method[F.n], sizeof(F.method[0]), "%s", req->method ? req->method : "GET");
	snprintf(F.path[F.n], sizeof(F.path[0]), "%s", req->path);
	snprintf(F.ctype[F.n], sizeof(F.ctype[0]), "%s",
		 req->content_type ? req->content_type : "");
	snprintf(F.body[F.n], sizeof(F.body[0]), "%.*s", (int)req->body_len,
		 req->body ? req->body : "");
	F.n++;
	*opp = NULL;
	return 0;
}

static const struct rw_inf_json *
find(struct rw_rec_job *j)
{
	static struct rw_inf_json obj;
	(void)j;
	memset(&obj, 0, sizeof(obj));
	obj.json = "{}";
	obj.len = 2;
	return &obj;
}

static const char *
parse(struct rw_rec_job *j, const struct rw_inf_json *o, char *err, size_t errlen)
{
	(void)j;
	(void)o;
	(void)err;
	(void)errlen;
	return "uid-1";
}

static void
st_pg(struct rw_rec_job *j)
{
	if (F.delete_mode)
		CHECK_EQ_INT(rw_podgroup_delete(j, COLL, "ray-j-pg", "RayJob"), 0);
	else
		CHECK_EQ_INT(rw_podgroup_sync(j, COLL, DESIRED, F.update), 0);
}

static void
job_fini(struct rw_rec_job *j)
{
	F.err = j->err;
	F.finished++;
}

static bool
synced(void *ud)
{
	(void)ud;
	return true;
}

enum { S_LOAD, S_PG, S_DONE, S_N };
static const struct rw_rec_step steps[] = {
    [S_LOAD] = {"load", rw_rec_step_load, 0},
    [S_PG] = {"podgroup", st_pg, 0},
    [S_DONE] = {"done", NULL, 0},
};
static const struct rw_inf_type type = {.api_path = "/apis/t.io/v1", .resource = "tests"};
static const struct rw_rec_kind kind = {
    .name = "test",
    .kind = "Test",
    .type = &type,
    .steps = steps,
    .nsteps = S_N,
    .fail_step = S_DONE,
    .job_size = sizeof(struct rw_rec_job),
    .synced = synced,
    .job_fini = job_fini,
    .find = find,
    .parse = parse,
};
static const struct rw_rec_policy pol = {.idle_ms = 0};

static void
answer_reason(int i, long status, const char *body, const char *reason)
{
	struct rw_kube_resp r = {.status = status,
				 .body = body,
				 .body_len = body ? strlen(body) : 0,
				 .reason = reason,
				 .message = ""};
	F.cb[i](&r, F.ud[i]);
}

static void
answer(int i, long status, const char *body)
{
	answer_reason(i, status, body, "");
}

static void
t_sync(void)
{
	static const struct {
		const char *name;
		bool update;
		long get;	      /* the GET's answer */
		const char *existing; /* its body */
		const char *method2;  /* the second request, "" for none */
		long second;	      /* its answer */
		int err;	      /* the job's error: 0 or not */
		const char *reason;   /* the second answer's Status.reason */
	} c[] = {
	    {"absent: created", true, 404, NULL, "POST", 201, 0, ""},
	    {"created meanwhile", true, 404, NULL, "POST", 409, 0, "AlreadyExists"},
	    {"create conflict: retried", true, 404, NULL, "POST", 409, 1, "Conflict"},
	    {"create refused", true, 404, NULL, "POST", 403, 1, ""},
	    {"same size", true, 200,
	     "{\"spec\":{\"minMember\":3,\"minResources\":{\"cpu\":\"3000m\"}},\"status\":{}}", "",
	     0, 0, ""},
	    {"other size: patched", true, 200,
	     "{\"spec\":{\"minMember\":1,\"minResources\":{\"cpu\":\"1\"}}}", "PATCH", 200, 0, ""},
	    {"patch refused", true, 200, "{\"spec\":{\"minMember\":1}}", "PATCH", 500, 1, ""},
	    {"other size, no updates (scheduler-plugins)", false, 200,
	     "{\"spec\":{\"minMember\":1}}", "", 0, 0, ""},
	    {"read refused", true, 403, NULL, "", 0, 1, ""},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct rw_rec_ctl ctl;
		memset(&F, 0, sizeof(F));
		F.update = c[i].update;
		CHECK_EQ_INT(
		    rw_rec_ctl_init(&ctl, &kind, &pol, NULL, NULL, NULL, NULL, fake_submit), 0);
		rw_rec_reconcile(&ctl, "ns/c");
		CHECK_EQ_INT(F.n, 1);
		CHECK_EQ_STR(F.method[0], "GET");
		CHECK_EQ_STR(F.path[0], COLL "/ray-c-pg");
		answer(0, c[i].get, c[i].existing);
		if (c[i].method2[0]) {
			CHECK_EQ_INT(F.n, 2);
			CHECK_EQ_STR(F.method[1], c[i].method2);
			if (!strcmp(c[i].method2, "POST")) {
				CHECK_EQ_STR(F.path[1], COLL);
				CHECK_EQ_STR(F.body[1], DESIRED);
			} else {
				CHECK_EQ_STR(F.path[1], COLL "/ray-c-pg");
				CHECK_EQ_STR(F.ctype[1], "application/merge-patch+json");
				CHECK_EQ_STR(F.body[1],
					     "{\"spec\":{\"minMember\":3,\"minResources\":{"
					     "\"cpu\":\"3\"}}}");
			}
			CHECK_EQ_INT(F.finished, 0); /* the job waits for it */
			answer_reason(1, c[i].second, "{}", c[i].reason);
		} else {
			CHECK_EQ_INT(F.n, 1);
		}
		if (F.finished != 1 || (F.err != 0) != c[i].err)
			fprintf(stderr, "  case %s: finished %d err %d\n", c[i].name, F.finished,
				F.err);
		CHECK_EQ_INT(F.finished, 1);
		CHECK_EQ_INT(F.err != 0, c[i].err);
		rw_rec_ctl_fini(&ctl);
	}
}

static void
t_delete(void)
{
	static const long answers[] = {200, 404, 500, 403};
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		struct rw_rec_ctl ctl;
		memset(&F, 0, sizeof(F));
		F.delete_mode = true;
		CHECK_EQ_INT(
		    rw_rec_ctl_init(&ctl, &kind, &pol, NULL, NULL, NULL, NULL, fake_submit), 0);
		rw_rec_reconcile(&ctl, "ns/j");
		CHECK_EQ_INT(F.n, 1);
		CHECK_EQ_STR(F.method[0], "DELETE");
		CHECK_EQ_STR(F.path[0], COLL "/ray-j-pg");
		answer(0, answers[i], "{}");
		/* A failed cleanup is an Event, never the RayJob's failure (KubeRay). */
		CHECK_EQ_INT(F.finished, 1);
		CHECK_EQ_INT(F.err, 0);
		rw_rec_ctl_fini(&ctl);
	}
}

static void
t_bad_input(void)
{
	struct rw_rec_ctl ctl;
	struct rw_rec_job j;
	memset(&F, 0, sizeof(F));
	CHECK_EQ_INT(rw_rec_ctl_init(&ctl, &kind, &pol, NULL, NULL, NULL, NULL, fake_submit), 0);
	memset(&j, 0, sizeof(j));
	j.ctl = &ctl;
	/* A desired object without a name starts nothing. */
	CHECK_EQ_INT(rw_podgroup_sync(&j, COLL, "{\"metadata\":{}}", true), -EINVAL);
	CHECK_EQ_INT(rw_podgroup_sync(&j, COLL, "nope", true), -EINVAL);
	CHECK_EQ_INT(F.n, 0);
	rw_rec_ctl_fini(&ctl);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"sync: read, create, patch", t_sync},
	    {"delete on completion", t_delete},
	    {"bad input", t_bad_input},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

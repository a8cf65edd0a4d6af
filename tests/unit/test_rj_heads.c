/* test_rj_heads.c - what RayJobs ask of each cluster's head agent (rj_heads.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rj_heads.h"
#include "rwtest.h"

static struct rw_job_submit
submission(const char *entrypoint)
{
	struct rw_job_submit s;
	memset(&s, 0, sizeof(s));
	s.entrypoint = strdup(entrypoint);
	s.num_cpus = s.num_gpus = -1;
	s.memory = -1;
	return s;
}

static void
reply_init(struct rw_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->proxy_expected = -1;
}

/* Two RayJobs on one cluster (clusterSelector): both followed, the report's jobs not again. */
static void
t_shared_cluster(void)
{
	struct rw_rj_heads h;
	struct rw_report rep;
	struct rw_job jobs[1];
	struct rw_reply out;
	const struct rw_rj_want *w[4];
	rw_rj_heads_init(&h);
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/a", "ns/shared", "a-1", false, NULL), 0);
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/b", "ns/shared", "b-1", false, NULL), 0);
	CHECK_EQ_INT(rw_rj_heads_of(&h, "ns/shared", w, 4), 2);
	memset(&rep, 0, sizeof(rep));
	memset(jobs, 0, sizeof(jobs));
	snprintf(jobs[0].submission_id, sizeof(jobs[0].submission_id), "a-1");
	rep.jobs = jobs;
	rep.njobs = 1;
	reply_init(&out);
	CHECK_EQ_INT(rw_rj_heads_reply(&h, "ns/shared", &rep, &out), 0);
	CHECK_EQ_INT(out.nwatch, 1);
	CHECK_EQ_STR(out.watch_jobs[0], "b-1");
	CHECK(!out.has_submit && !out.stop_job[0]);
	rw_reply_fini(&out);
	/* Another cluster's head is told nothing. */
	reply_init(&out);
	CHECK_EQ_INT(rw_rj_heads_reply(&h, "ns/other", &rep, &out), 0);
	CHECK_EQ_INT(out.nwatch, 0);
	/* A RayJob that moves to another cluster (a retry) leaves the first. */
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/a", "ns/new", "a-2", false, NULL), 0);
	CHECK_EQ_INT(rw_rj_heads_of(&h, "ns/shared", w, 4), 1);
	CHECK_EQ_STR(w[0]->rayjob, "ns/b");
	rw_rj_heads_drop(&h, "ns/b");
	CHECK_EQ_INT(rw_rj_heads_of(&h, "ns/shared", w, 4), 0);
	rw_rj_heads_drop(&h, "ns/b"); /* twice is fine */
	rw_rj_heads_fini(&h);
}

/* HTTPMode: the submission goes out (copied) until the report shows the job; one a reply. */
static void
t_submit_and_stop(void)
{
	struct rw_rj_heads h;
	struct rw_report rep;
	struct rw_job jobs[1];
	struct rw_reply out;
	struct rw_job_submit s1 = submission("python a.py"), s2 = submission("python b.py");
	rw_rj_heads_init(&h);
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/a", "ns/c", "a-1", false, &s1), 0);
	CHECK(s1.entrypoint == NULL); /* moved into the table */
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/b", "ns/c", "b-1", false, &s2), 0);
	memset(&rep, 0, sizeof(rep));
	reply_init(&out);
	CHECK_EQ_INT(rw_rj_heads_reply(&h, "ns/c", &rep, &out), 0);
	CHECK(out.has_submit);
	CHECK_EQ_INT(out.nwatch, 0); /* a submission is followed by the agent anyway */
	CHECK(strcmp(out.submit.entrypoint, "python a.py") == 0 ||
	      strcmp(out.submit.entrypoint, "python b.py") == 0);
	{
		/* The reported one is not sent again: the other one is. */
		char first[32];
		snprintf(first, sizeof(first), "%s", out.submit.entrypoint);
		rw_reply_fini(&out);
		memset(jobs, 0, sizeof(jobs));
		snprintf(jobs[0].submission_id, sizeof(jobs[0].submission_id), "%s",
			 strcmp(first, "python a.py") == 0 ? "a-1" : "b-1");
		rep.jobs = jobs;
		rep.njobs = 1;
		reply_init(&out);
		CHECK_EQ_INT(rw_rj_heads_reply(&h, "ns/c", &rep, &out), 0);
		CHECK(out.has_submit && strcmp(out.submit.entrypoint, first) != 0);
		rw_reply_fini(&out);
	}
	/* Stop: the job id in stop_job. */
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/a", "ns/c", "a-1", true, NULL), 0);
	reply_init(&out);
	CHECK_EQ_INT(rw_rj_heads_reply(&h, "ns/c", &rep, &out), 0);
	CHECK_EQ_STR(out.stop_job, "a-1");
	rw_reply_fini(&out);
	rw_rj_heads_fini(&h);
}

/*
 * A submission the agent reports failed (status "", message "submit failed")
 * is sent again: the agent retries only when asked. One in flight or accepted
 * is not, and a new submission goes before a failed one.
 */
static void
t_submit_retry(void)
{
	struct rw_rj_heads h;
	struct rw_report rep;
	struct rw_job jobs[2];
	struct rw_reply out;
	struct rw_job_submit s1 = submission("python a.py"), s2 = submission("python b.py");
	rw_rj_heads_init(&h);
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/a", "ns/c", "a-1", false, &s1), 0);
	memset(&rep, 0, sizeof(rep));
	memset(jobs, 0, sizeof(jobs));
	snprintf(jobs[0].submission_id, sizeof(jobs[0].submission_id), "a-1");
	rep.jobs = jobs;
	rep.njobs = 1;
	static const char *const quiet[] = {"submitting", "submitted"};
	for (int i = 0; i < 2; i++) {
		snprintf(jobs[0].message, sizeof(jobs[0].message), "%s", quiet[i]);
		reply_init(&out);
		CHECK_EQ_INT(rw_rj_heads_reply(&h, "ns/c", &rep, &out), 0);
		CHECK(!out.has_submit);
		rw_reply_fini(&out);
	}
	snprintf(jobs[0].message, sizeof(jobs[0].message), "submit failed");
	reply_init(&out);
	CHECK_EQ_INT(rw_rj_heads_reply(&h, "ns/c", &rep, &out), 0);
	CHECK(out.has_submit && strcmp(out.submit.entrypoint, "python a.py") == 0);
	rw_reply_fini(&out);
	/* Ray answered for it: nothing more to send. */
	snprintf(jobs[0].status, sizeof(jobs[0].status), "PENDING");
	reply_init(&out);
	CHECK_EQ_INT(rw_rj_heads_reply(&h, "ns/c", &rep, &out), 0);
	CHECK(!out.has_submit);
	rw_reply_fini(&out);
	/* A new submission on the same head goes before the failed one. */
	jobs[0].status[0] = '\0';
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/b", "ns/c", "b-1", false, &s2), 0);
	reply_init(&out);
	CHECK_EQ_INT(rw_rj_heads_reply(&h, "ns/c", &rep, &out), 0);
	CHECK(out.has_submit && strcmp(out.submit.entrypoint, "python b.py") == 0);
	rw_reply_fini(&out);
	rw_rj_heads_fini(&h);
}

/* At most RW_RJ_HEADS_PER_CLUSTER RayJobs per cluster: the next waits. */
static void
t_bounded(void)
{
	struct rw_rj_heads h;
	char key[32], id[32];
	struct rw_job_submit s = submission("x");
	rw_rj_heads_init(&h);
	for (int i = 0; i < RW_RJ_HEADS_PER_CLUSTER; i++) {
		snprintf(key, sizeof(key), "ns/j%d", i);
		snprintf(id, sizeof(id), "j%d", i);
		CHECK_EQ_INT(rw_rj_heads_set(&h, key, "ns/c", id, false, NULL), 0);
	}
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/late", "ns/c", "late", false, &s), -ENOSPC);
	CHECK(s.entrypoint == NULL); /* freed on failure too */
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/j0", "ns/c", "j0-b", false, NULL),
		     0); /* update fits */
	rw_rj_heads_drop(&h, "ns/j1");
	CHECK_EQ_INT(rw_rj_heads_set(&h, "ns/late", "ns/c", "late", false, NULL), 0);
	rw_rj_heads_fini(&h);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"shared cluster", t_shared_cluster},
	    {"submit and stop", t_submit_and_stop},
	    {"failed submission sent again", t_submit_retry},
	    {"bounded per cluster", t_bounded},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

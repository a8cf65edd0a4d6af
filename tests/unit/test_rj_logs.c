/* test_rj_logs.c - driver log tails kept for the ConfigMap (rj_logs.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rj_logs.h"
#include "rw/json.h"
#include "rwtest.h"

static struct rw_job
job(const char *id, const char *tail)
{
	struct rw_job j;
	memset(&j, 0, sizeof(j));
	snprintf(j.submission_id, sizeof(j.submission_id), "%s", id);
	j.log_tail = (char *)tail;
	return j;
}

static void
t_offer(void)
{
	struct rw_rj_logs l;
	struct rw_job a = job("j-1", "line 1\nline 2\n"), other = job("j-0", "old"),
		      none = job("j-1", NULL);
	rw_rj_logs_init(&l);
	/* Not this RayJob's current job, or no tail: nothing kept. */
	CHECK_EQ_INT(rw_rj_logs_offer(&l, "ns/rj", "j-1", &other), 0);
	CHECK_EQ_INT(rw_rj_logs_offer(&l, "ns/rj", "j-1", &none), 0);
	CHECK(rw_rj_logs_get(&l, "ns/rj") == NULL);
	CHECK_EQ_INT(rw_rj_logs_offer(&l, "ns/rj", "j-1", &a), 1);
	CHECK_EQ_STR(rw_rj_logs_get(&l, "ns/rj")->tail, "line 1\nline 2\n");
	/* A second tail replaces the first (the agent resends until acknowledged). */
	a.log_tail = "line 3\n";
	a.log_truncated = 1;
	CHECK_EQ_INT(rw_rj_logs_offer(&l, "ns/rj", "j-1", &a), 1);
	CHECK_EQ_STR(rw_rj_logs_get(&l, "ns/rj")->tail, "line 3\n");
	CHECK(rw_rj_logs_get(&l, "ns/rj")->truncated);
	rw_rj_logs_drop(&l, "ns/rj");
	CHECK(rw_rj_logs_get(&l, "ns/rj") == NULL);
	rw_rj_logs_fini(&l);
}

/* The store is bounded: a tail for a new RayJob finds it full. */
static void
t_bounded(void)
{
	struct rw_rj_logs l;
	struct rw_job a = job("j", "x");
	char key[32];
	rw_rj_logs_init(&l);
	for (int i = 0; i < RW_RJ_LOGS_MAX_PENDING; i++) {
		snprintf(key, sizeof(key), "ns/rj-%d", i);
		CHECK_EQ_INT(rw_rj_logs_offer(&l, key, "j", &a), 1);
	}
	CHECK_EQ_INT(rw_rj_logs_offer(&l, "ns/one-more", "j", &a), -ENOSPC);
	CHECK_EQ_INT(rw_rj_logs_offer(&l, "ns/rj-0", "j", &a), 1); /* a replacement still fits */
	rw_rj_logs_fini(&l);
}

static void
t_configmap(void)
{
	struct rw_rj_log g = {.job_id = "rj-abcde",
			      .tail = "test_counter got 5\n\"quoted\"\n",
			      .truncated = true,
			      .error = "log read failed: 404"};
	struct rw_buf b;
	struct rw_json j;
	char s[256];
	rw_buf_init(&b, 1 << 20);
	CHECK_EQ_INT(rw_rj_logs_configmap("ns", "rj", "uid-1", &g, &b), 0);
	CHECK_EQ_INT(rw_json_parse(&j, rw_buf_cstr(&b), b.len, 1024, NULL, 0), 0);
	CHECK(rw_json_str(&j, rw_json_path(&j, 0, "metadata.name"), s, sizeof(s)) >= 0);
	CHECK_EQ_STR(s, "rj-driver-log");
	CHECK(rw_json_str(&j, rw_json_get(&j, rw_json_get(&j, 0, "data"), "driver.log"), s,
			  sizeof(s)) >= 0);
	CHECK_EQ_STR(s, "test_counter got 5\n\"quoted\"\n");
	CHECK(rw_json_str(&j, rw_json_get(&j, rw_json_get(&j, 0, "data"), "truncated"), s,
			  sizeof(s)) >= 0);
	CHECK_EQ_STR(s, "true");
	CHECK(strstr(rw_buf_cstr(&b), "\"kind\":\"RayJob\"") != NULL);
	CHECK(strstr(rw_buf_cstr(&b), "\"uid\":\"uid-1\"") != NULL);
	rw_json_fini(&j);
	rw_buf_fini(&b);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"offer, replace, drop", t_offer},
	    {"bounded store", t_bounded},
	    {"ConfigMap", t_configmap},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

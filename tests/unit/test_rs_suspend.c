/*
 * test_rs_suspend.c - RayService suspend and resume conditions (KubeRay's
 * handleSuspend): Suspending while owned objects remain, Suspended once they
 * are gone, the suspend staying in flight when spec.suspend flips back, and
 * Suspended False (RayServiceResumed) after a resume; conditions are kept,
 * never removed.
 */
#include <stdio.h>
#include <string.h>

#include "rs_fixture.h"
#include "rs_status.h"

#define P(...) ((const char *const[]){__VA_ARGS__})

static const char *
cond(const struct rw_doc_node *st, const char *type, const char *field)
{
	struct rw_doc_node *conds = rw_doc_get(st, "conditions");
	for (int i = 0; conds && i < conds->n; i++)
		if (strcmp(rw_doc_gets(conds->kids[i], "type"), type) == 0)
			return rw_doc_gets(conds->kids[i], field);
	return NULL;
}

/* The RayService with spec.suspend = suspend and the status st (cloned in). */
static struct rw_rayservice *
rs_with(const char *suspend, const struct rw_doc_node *st)
{
	struct rw_rayservice *rs = rs_make(P("spec|suspend", suspend), 1), *out = NULL;
	struct rw_buf b;
	if (!rs)
		return NULL;
	if (st)
		CHECK_EQ_INT(rw_doc_set(rs->obj.root, "status", rw_doc_clone(st)), 0);
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_doc_dump(rs->obj.root, &b), 0);
	CHECK_EQ_INT(rw_rayservice_parse(b.data, b.len, &out, NULL, 0), 0);
	rw_buf_fini(&b);
	rw_rayservice_free(rs);
	return out;
}

static void
t_lifecycle(void)
{
	struct rw_doc_node *st = NULL;
	struct rw_rayservice *rs;
	const char *running = "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":"
			      "\"NonZeroServeEndpoints\",\"lastTransitionTime\":\"t0\"},"
			      "{\"type\":\"UpgradeInProgress\",\"status\":\"False\",\"reason\":"
			      "\"NoPendingCluster\",\"lastTransitionTime\":\"t0\"}]}";
	CHECK_EQ_INT(rw_doc_parse(running, strlen(running), &st, NULL, 0), 0);

	/* Not suspended: nothing to do. */
	rs = rs_with("false", st);
	CHECK(!rw_rayservice_suspend_active(rs));
	CHECK(!rw_rayservice_resume_due(rs));
	rw_rayservice_free(rs);

	/* spec.suspend true, the cluster still exists: Suspending. */
	rs = rs_with("true", st);
	CHECK(rw_rayservice_suspend_active(rs));
	CHECK_EQ_INT(rw_rayservice_suspend_conds(st, rs, RW_RAYSERVICE_SUSPENDING, "t1"), 0);
	CHECK_EQ_STR(cond(st, "Suspending", "status"), "True");
	CHECK_EQ_STR(cond(st, "Suspending", "reason"), "SuspendInProgress");
	CHECK_EQ_STR(cond(st, "Ready", "status"), "False");
	CHECK_EQ_STR(cond(st, "Ready", "reason"), "SuspendInProgress");
	CHECK_EQ_STR(cond(st, "Ready", "lastTransitionTime"), "t1");
	CHECK(cond(st, "Suspended", "status") == NULL);
	rw_rayservice_free(rs);

	/* Flipped back while in flight: still suspending (atomic). */
	rs = rs_with("false", st);
	CHECK(rw_rayservice_suspend_active(rs));
	CHECK(!rw_rayservice_resume_due(rs));
	rw_rayservice_free(rs);

	/* spec.suspend true again, everything gone: Suspended. */
	rs = rs_with("true", st);
	CHECK_EQ_INT(rw_rayservice_suspend_conds(st, rs, RW_RAYSERVICE_SUSPENDED, "t2"), 0);
	CHECK_EQ_STR(cond(st, "Suspended", "status"), "True");
	CHECK_EQ_STR(cond(st, "Suspended", "reason"), "SuspendComplete");
	CHECK_EQ_STR(cond(st, "Suspending", "status"), "False");
	CHECK_EQ_STR(cond(st, "Suspending", "reason"), "SuspendComplete");
	CHECK_EQ_STR(cond(st, "UpgradeInProgress", "status"), "False");
	CHECK_EQ_STR(cond(st, "UpgradeInProgress", "reason"), "SuspendComplete");
	CHECK_EQ_STR(cond(st, "UpgradeInProgress", "lastTransitionTime"), "t0");
	CHECK_EQ_STR(cond(st, "Ready", "reason"), "SuspendComplete");
	CHECK_EQ_STR(cond(st, "Ready", "lastTransitionTime"), "t1");
	rw_rayservice_free(rs);

	/* Suspended and still wanted: stays; no resume. */
	rs = rs_with("true", st);
	CHECK(rw_rayservice_suspend_active(rs));
	CHECK(!rw_rayservice_resume_due(rs));
	rw_rayservice_free(rs);

	/* spec.suspend false: resume once, the condition is kept as False. */
	rs = rs_with("false", st);
	CHECK(!rw_rayservice_suspend_active(rs));
	CHECK(rw_rayservice_resume_due(rs));
	CHECK_EQ_INT(rw_rayservice_suspend_conds(st, rs, RW_RAYSERVICE_RESUMED, "t3"), 0);
	CHECK_EQ_STR(cond(st, "Suspended", "status"), "False");
	CHECK_EQ_STR(cond(st, "Suspended", "reason"), "RayServiceResumed");
	CHECK_EQ_STR(cond(st, "Suspended", "lastTransitionTime"), "t3");
	rw_rayservice_free(rs);
	rs = rs_with("false", st);
	CHECK(!rw_rayservice_suspend_active(rs));
	CHECK(!rw_rayservice_resume_due(rs));
	rw_rayservice_free(rs);
	rw_doc_free(st);
}

static void
t_flipped_back(void)
{
	struct rw_doc_node *st = rw_doc_new(RW_DOC_OBJ);
	struct rw_rayservice *rs;
	CHECK(st != NULL);
	rs = rs_with("true", st);
	CHECK_EQ_INT(rw_rayservice_suspend_conds(st, rs, RW_RAYSERVICE_SUSPENDING, "t1"), 0);
	rw_rayservice_free(rs);
	/* The deletion completes after spec.suspend went back to false: no Suspended. */
	rs = rs_with("false", st);
	CHECK(rw_rayservice_suspend_active(rs));
	CHECK_EQ_INT(rw_rayservice_suspend_conds(st, rs, RW_RAYSERVICE_SUSPENDED, "t2"), 0);
	CHECK(cond(st, "Suspended", "status") == NULL);
	CHECK_EQ_STR(cond(st, "Suspending", "status"), "False");
	rw_rayservice_free(rs);
	rs = rs_with("false", st);
	CHECK(!rw_rayservice_suspend_active(rs));
	CHECK(!rw_rayservice_resume_due(rs));
	rw_rayservice_free(rs);
	rw_doc_free(st);
}

/* Created suspended: Suspended at once, with an observedGeneration on each condition. */
static void
t_created_suspended(void)
{
	struct rw_doc_node *st = rw_doc_new(RW_DOC_OBJ);
	struct rw_rayservice *rs = rs_with("true", NULL);
	struct rw_doc_node *conds;
	int64_t g = 0;
	CHECK(st != NULL && rs != NULL);
	CHECK(rw_rayservice_suspend_active(rs));
	CHECK_EQ_INT(rw_rayservice_suspend_conds(st, rs, RW_RAYSERVICE_SUSPENDED, "t1"), 0);
	CHECK_EQ_STR(cond(st, "Suspended", "status"), "True");
	conds = rw_doc_get(st, "conditions");
	CHECK(conds != NULL && conds->n == 4);
	for (int i = 0; conds && i < conds->n; i++) {
		CHECK_EQ_INT(rw_doc_int(rw_doc_get(conds->kids[i], "observedGeneration"), &g), 0);
		CHECK_EQ_INT((int)g, 2);
	}
	rw_rayservice_free(rs);
	rw_doc_free(st);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"lifecycle", t_lifecycle},
	    {"flipped_back", t_flipped_back},
	    {"created_suspended", t_created_suspended},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

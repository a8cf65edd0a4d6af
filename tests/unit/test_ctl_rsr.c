/*
 * test_ctl_rsr.c - the agent hook registry the RayService reconciler uses
 * (raycluster.h: rw_rcr_agent_hooks_set): register, replace, remove, bounds,
 * and no hub without a running RayCluster reconciler.
 */
#include <errno.h>

#include "raycluster.h"
#include "rayservice.h"
#include "rwtest.h"

static int
reply_a(const struct rw_report *r, struct rw_reply *out, void *ud)
{
	(void)r;
	(void)out;
	(void)ud;
	return 0;
}

static void
test_register_replace_remove(void)
{
	struct rw_rcr_agent_hooks h = {NULL, NULL, reply_a, NULL};
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("RayService", &h), 0);
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("RayService", &h), 0); /* replace, same slot */
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("RayJob", &h), 0);
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("RayService", NULL), 0);
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("RayService", NULL), 0); /* removing twice is fine */
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("RayJob", NULL), 0);
}

static void
test_bounds(void)
{
	struct rw_rcr_agent_hooks h = {NULL, NULL, reply_a, NULL};
	char kind[16];
	CHECK_EQ_INT(rw_rcr_agent_hooks_set(NULL, &h), -EINVAL);
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("", &h), -EINVAL);
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("AKindNameFarTooLongForTheTableSlot", &h), -EINVAL);
	for (int i = 0; i < RW_RCR_MAX_HOOKS; i++) {
		snprintf(kind, sizeof(kind), "Kind%d", i);
		CHECK_EQ_INT(rw_rcr_agent_hooks_set(kind, &h), 0);
	}
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("OneMore", &h), -ENOSPC);
	/* Removing frees a slot for another kind. */
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("Kind0", NULL), 0);
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("OneMore", &h), 0);
	CHECK_EQ_INT(rw_rcr_agent_hooks_set("OneMore", NULL), 0);
	for (int i = 1; i < RW_RCR_MAX_HOOKS; i++) {
		snprintf(kind, sizeof(kind), "Kind%d", i);
		CHECK_EQ_INT(rw_rcr_agent_hooks_set(kind, NULL), 0);
	}
}

static void
test_no_hub(void)
{
	CHECK(rw_rcr_agent_hub() == NULL);
	CHECK_EQ_STR(rw_rsr_controller.name, "rayservice");
	CHECK(rw_rsr_controller.setup != NULL && rw_rsr_controller.teardown != NULL);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"register_replace_remove", test_register_replace_remove},
	    {"bounds", test_bounds},
	    {"no_hub", test_no_hub},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

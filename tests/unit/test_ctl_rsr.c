/*
 * test_ctl_rsr.c - the RayService reconciler's registration with the
 * manager. Its agent hooks go through the manager's hub (test_ctl_agents.c);
 * the reconciler itself runs end to end in tests/e2e/test_rayservice_*.py.
 */
#include <errno.h>

#include "agents.h"
#include "rayservice.h"
#include "rwtest.h"

static void
test_controller(void)
{
	CHECK_EQ_STR(rw_rayservice_controller.name, "rayservice");
	CHECK(rw_rayservice_controller.setup != NULL && rw_rayservice_controller.teardown != NULL);
	/* No hub: nothing to register with, no global to fall back on. */
	CHECK(rw_agents_hub(NULL) == NULL);
	CHECK_EQ_INT(rw_agents_register(NULL, "RayService", NULL), -EINVAL);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"controller", test_controller},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

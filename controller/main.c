/*
 * main.c - raywarden-controller: configuration, logging, the loop, the
 * registered controllers, exit codes. Exit 0 after SIGTERM/SIGINT, 1 when
 * leadership was lost or the start failed, 2 on bad configuration.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "manager.h"
#include "rbac.h"
#include "raycluster.h"
#include "rayjob.h"
#include "rayservice.h"
#include "rw/log.h"
#include "statuspage.h"
#include "webhook.h"

/*
 * The reconcilers, in any order: they share the manager's informers and agent
 * hub (agents.h) and nothing else. Each controller module exports a struct
 * rw_mgr_controller; add it here (e.g. &rw_raycluster_controller for RayCluster).
 */
static const struct rw_mgr_controller *const controllers[] = {
    &rw_raycluster_controller, &rw_rayservice_controller, &rw_rayjob_controller,
    &rw_webhook_controller,    &rw_statuspage_controller, NULL,
};

static const char *
env_get(const char *name, void *ud)
{
	(void)ud;
	return getenv(name);
}

/* --print-rbac: the manifests/rbac file generated from the grant table (rbac.c). */
static int
print_rbac(enum rw_rbac_scope scope)
{
	struct rw_buf b;
	int rv;
	rw_buf_init(&b, 1u << 20);
	rv = rw_rbac_print(scope, "raywarden-system", &b);
	if (rv == 0 && fwrite(rw_buf_cstr(&b), 1, b.len, stdout) != b.len)
		rv = -EIO;
	if (rv == 0 && fflush(stdout) != 0)
		rv = -EIO;
	rw_buf_fini(&b);
	if (rv)
		fprintf(stderr, "raywarden-controller: cannot print the RBAC manifest\n");
	return rv ? 1 : 0;
}

int
main(int argc, char **argv)
{
	struct rw_mgr_config cfg;
	struct rw_mgr *mgr = NULL;
	char err[512];
	uv_loop_t loop;
	int rv, code;

	rv = rw_mgr_config_parse(&cfg, argc, argv, env_get, NULL, err, sizeof(err));
	if (rv == 1) {
		if (strcmp(err, "version") == 0)
			printf("raywarden-controller %s\n", RW_VERSION);
		else if (strncmp(err, "print-rbac:", 11) == 0)
			return print_rbac(!strcmp(err + 11, "leader-election")	 ? RW_RBAC_LEASE
					  : !strcmp(err + 11, "batch-scheduler") ? RW_RBAC_BATCH
					  : !strcmp(err + 11, "webhook")	 ? RW_RBAC_WEBHOOK
										 : RW_RBAC_CLUSTER);
		else
			fputs(rw_mgr_usage(), stdout);
		return 0;
	}
	if (rv != 0) {
		fprintf(stderr, "raywarden-controller: %s\n", err);
		return 2;
	}
	rw_log_setup("controller", cfg.log_format, cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&loop) != 0) {
		fprintf(stderr, "raywarden-controller: cannot create the event loop\n");
		rw_mgr_config_fini(&cfg);
		return 1;
	}
	rv = rw_mgr_new(&loop, &cfg, &mgr, err, sizeof(err));
	if (rv != 0) {
		rw_error("manager", "cannot start: %s", err);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		rw_mgr_config_fini(&cfg);
		return 2;
	}
	for (size_t i = 0; controllers[i]; i++)
		rw_mgr_add(mgr, controllers[i]);
	rv = rw_mgr_start(mgr, err, sizeof(err));
	if (rv != 0) {
		rw_error("manager", "cannot start: %s", err);
		rw_mgr_shutdown(mgr, 1);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	code = rw_mgr_exit_code(mgr);
	rw_mgr_free(mgr);
	rv = uv_loop_close(&loop);
	if (rv)
		rw_warn("manager", "handles left open at exit");
	rw_mgr_config_fini(&cfg);
	return code;
}

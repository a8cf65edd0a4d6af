/*
 * main.c - raywarden-agent: configuration, logging, the loop, exit codes.
 * Exit 0 after SIGTERM/SIGINT, 2 on bad configuration, 1 on start failure.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent.h"
#include "config.h"
#include "rw/log.h"

static const char *
env_get(const char *name, void *ud)
{
	(void)ud;
	return getenv(name);
}

int
main(int argc, char **argv)
{
	static struct rw_agent agent;
	struct rw_agent_config cfg;
	char err[512];
	uv_loop_t loop;
	int rv;

	rw_agent_config_defaults(&cfg);
	rv = rw_agent_config_parse(&cfg, argc, argv, env_get, NULL, err, sizeof(err));
	if (rv == 1) {
		if (strcmp(err, "version") == 0)
			printf("raywarden-agent %s\n", RW_VERSION);
		else
			fputs(rw_agent_config_usage(), stdout);
		return 0;
	}
	if (rv != 0) {
		fprintf(stderr, "raywarden-agent: %s\n", err);
		return 2;
	}
	rw_log_setup("agent", cfg.log_format, cfg.log_level);
	signal(SIGPIPE, SIG_IGN);

	if (uv_loop_init(&loop) != 0) {
		fprintf(stderr, "raywarden-agent: cannot create the event loop\n");
		return 1;
	}
	rv = rw_agent_init(&agent, &loop, &cfg, err, sizeof(err));
	if (rv != 0) {
		rw_error("agent", "cannot start: %s", err);
		uv_run(&loop, UV_RUN_DEFAULT);
		rw_agent_fini(&agent);
		uv_loop_close(&loop);
		return 1;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	rw_agent_fini(&agent);
	rv = uv_loop_close(&loop);
	rw_info("agent", "stopped%s", rv ? " (handles left open)" : "");
	return 0;
}

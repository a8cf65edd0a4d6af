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

/*
 * libcurl is loaded only when a request first needs it (proto/src/curl_api.h).
 * Its dependency tree includes GnuTLS (through librtmp and libldap), whose
 * library constructor initialises itself (PKCS#11 modules, trust store)
 * when loaded unless GNUTLS_NO_IMPLICIT_INIT=1 is in the environment. The
 * agent never uses GnuTLS (its requests are HTTP; libcurl's TLS is
 * OpenSSL), so set the variable now, before any thread exists to read the
 * environment concurrently. A value already set is left alone;
 * RAYWARDEN_MEMORY_TRIM=false skips this too.
 */
static void
skip_gnutls_init(void)
{
	const char *trim = getenv("RAYWARDEN_MEMORY_TRIM");
	if (trim && (strcmp(trim, "false") == 0 || strcmp(trim, "0") == 0 ||
		     strcmp(trim, "no") == 0 || strcmp(trim, "off") == 0))
		return;
	setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0);
}

int
main(int argc, char **argv)
{
	static struct rw_agent agent;
	struct rw_agent_config cfg;
	char err[512];
	uv_loop_t loop;
	int rv;

	skip_gnutls_init();
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

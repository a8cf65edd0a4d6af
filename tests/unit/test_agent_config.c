/*
 * test_agent_config.c - environment and flag parsing, defaults, validation.
 */
#include <errno.h>

#include "config.h"
#include "rwtest.h"

/* A fake environment: NULL-terminated "NAME=value" list. */
static const char *
fake_env(const char *name, void *ud)
{
	const char **e = ud;
	size_t n = strlen(name);
	for (; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int
parse(struct rw_agent_config *c, const char **env, int argc, const char **argv, char *err)
{
	rw_agent_config_defaults(c);
	return rw_agent_config_parse(c, argc, (char **)argv, fake_env, env, err, 256);
}

static void
test_defaults(void)
{
	struct rw_agent_config c;
	char err[256];
	const char *argv[] = {"agent"};
	CHECK_EQ_INT(parse(&c, NULL, 1, argv, err), 0);
	CHECK_EQ_INT(c.port, 8477);
	CHECK_EQ_INT(c.raylet_port, 52365);
	CHECK_EQ_INT(c.dashboard_port, 8265);
	CHECK_EQ_INT(c.serve_port, 8000);
	CHECK_EQ_INT(c.probe_interval_ms, 2000);
	CHECK_EQ_INT(c.proxy_interval_ms, 200);
	/* The proxy probe may outlast its period: a probe in flight is not repeated. */
	CHECK(c.probe_timeout_ms > c.proxy_interval_ms);
	CHECK(c.probe_timeout_ms < c.probe_interval_ms);
	CHECK_EQ_INT(c.light_probes, 1);
	CHECK_EQ_INT(c.liveness_grace_s, 600);
	CHECK_EQ_INT(c.head, 0);
	CHECK_EQ_STR(c.probe_host, "127.0.0.1");
	CHECK_EQ_STR(c.listen_host, "0.0.0.0");
	CHECK_EQ_STR(c.controller, "");
	CHECK(!rw_agent_port_reserved(c.port));
}

static void
test_env_and_flags(void)
{
	struct rw_agent_config c;
	char err[256];
	const char *env[] = {"RAYWARDEN_POD_NAME=rc-head-x",
			     "RAYWARDEN_NODE_TYPE=head",
			     "RAYWARDEN_RAYSERVICE=true",
			     "RAYWARDEN_PROXY_READINESS=ignore",
			     "RAYWARDEN_PROBE_INTERVAL_MS=500",
			     "RAYWARDEN_PROBE_TIMEOUT_MS=400",
			     "RAYWARDEN_PROXY_INTERVAL_MS=500",
			     "RAYWARDEN_CONTROLLER=tcp://127.0.0.1:8478",
			     "RAYWARDEN_KEY_FILE=/etc/rw/key",
			     "RAYWARDEN_LOG_FORMAT=json",
			     NULL};
	const char *argv[] = {"agent", "--probe-interval-ms=450", "--port", "18477", "--node-type",
			      "worker"};
	CHECK_EQ_INT(parse(&c, env, 6, argv, err), 0);
	CHECK_EQ_STR(c.pod_name, "rc-head-x");
	CHECK_EQ_INT(c.head, 0); /* the flag wins */
	CHECK_EQ_INT(c.rayservice, 1);
	CHECK_EQ_INT(c.proxy_mode, RW_PROXY_IGNORE);
	CHECK_EQ_INT(c.probe_interval_ms, 450);
	CHECK_EQ_INT(c.probe_timeout_ms, 400 - 0); /* env */
	CHECK_EQ_INT(c.proxy_interval_ms, 500);
	CHECK_EQ_INT(c.port, 18477);
	CHECK_EQ_INT(c.log_format, RW_LOG_JSON);
	CHECK_EQ_STR(c.controller, "tcp://127.0.0.1:8478");
}

/* An agent attached as an ephemeral container has its key in the env, no key file. */
static void
test_key_from_env(void)
{
	struct rw_agent_config c;
	char err[256];
	const char *env[] = {"RAYWARDEN_CONTROLLER=tcp://127.0.0.1:8478",
			     "RAYWARDEN_KEY=00112233445566778899aabbccddeeff", NULL};
	const char *argv[] = {"agent"};
	CHECK_EQ_INT(parse(&c, env, 1, argv, err), 0);
	CHECK_EQ_STR(c.key, "00112233445566778899aabbccddeeff");
	CHECK_EQ_STR(c.key_file, "");
}

struct bad {
	const char *env;
	const char *flag;
	const char *err_has;
};

static const struct bad bads[] = {
    {"RAYWARDEN_PORT=8265", NULL, "collides"},
    {NULL, "--port=52365", "collides"},
    {NULL, "--port=70000", "65535"},
    {NULL, "--port=12x", "integer"},
    {NULL, "--port=", "integer"},
    {"RAYWARDEN_PROBE_TIMEOUT_MS=2000", NULL, "shorter"},
    {"RAYWARDEN_LIGHT_PROBES=sometimes", NULL, "boolean"},
    {NULL, "--probe-timeout-ms=2500", "shorter"},
    {"RAYWARDEN_NODE_TYPE=master", NULL, "head|worker"},
    {"RAYWARDEN_PROXY_READINESS=maybe", NULL, "auto|required|ignore"},
    {"RAYWARDEN_RAYSERVICE=perhaps", NULL, "boolean"},
    {"RAYWARDEN_CONTROLLER=tcp://x:1", NULL, "KEY_FILE"},
    {NULL, "--controller=hostonly", "KEY_FILE"},
    {NULL,
     "--key="
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
     "too long"},
    {NULL, "--no-such-flag=1", "unknown flag"},
    {NULL, "stray", "unexpected argument"},
    {NULL, "--pod-name", "needs a value"},
    {"RAYWARDEN_LOG_LEVEL=loud", NULL, "debug|info"},
    {"RAYWARDEN_FAILURE_THRESHOLD=0", NULL, "1..1000"},
    {"RAYWARDEN_POD_NAME=a\nb", NULL, "control character"},
    {NULL, "--reconnect-min-ms=9000", "reconnect"},
};

static void
test_invalid(void)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct rw_agent_config c;
		char err[256];
		const char *env[] = {bads[i].env, NULL};
		const char *argv[] = {"agent", bads[i].flag};
		int rv = parse(&c, env, bads[i].flag ? 2 : 1, argv, err);
		if (rv != -EINVAL || !strstr(err, bads[i].err_has)) {
			fprintf(stderr, "  bad[%zu]: rv=%d err=\"%s\" want ~\"%s\"\n", i, rv, err,
				bads[i].err_has);
			rwt_failed = 1;
		}
	}
}

static void
test_help(void)
{
	struct rw_agent_config c;
	char err[256];
	const char *argv[] = {"agent", "--help"};
	CHECK_EQ_INT(parse(&c, NULL, 2, argv, err), 1);
	const char *u = rw_agent_config_usage();
	CHECK(strstr(u, "--probe-interval-ms") != NULL);
	CHECK(strstr(u, "RAYWARDEN_PROXY_READINESS") != NULL);
	CHECK(strstr(u, "--liveness-grace-s") != NULL);
	const char *argv2[] = {"agent", "--version"};
	CHECK_EQ_INT(parse(&c, NULL, 2, argv2, err), 1);
}

static const struct rwt_case cases[] = {
    {"defaults", test_defaults},
    {"env and flags", test_env_and_flags},
    {"invalid values", test_invalid},
    {"key from the env", test_key_from_env},
    {"help", test_help},
    {NULL, NULL},
};

int
main(void)
{
	return rwt_run(cases);
}

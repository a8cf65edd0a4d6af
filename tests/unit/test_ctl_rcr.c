/*
 * test_ctl_rcr.c - the RayCluster reconciler's pure parts: its flags (--agent-*,
 * --no-agent-injection, --no-readiness-gate, --inject-only, --gcs-ft-cleanup-deadline) with
 * their environment variables, the pod builder options made from them (shared with the agent
 * injection webhook) (the hub's admission is in test_ctl_agents.c). The reconciler itself
 * runs end to end in tests/e2e/test_raycluster_*.py.
 */
#include <errno.h>

#include "manager.h"
#include "raycluster.h"
#include "rcr.h"
#include "rwtest.h"

struct envtab {
	const char *const *kv;
};

static const char *
env_get(const char *name, void *ud)
{
	const struct envtab *t = ud;
	for (const char *const *p = t->kv; p && *p; p += 2)
		if (!strcmp(p[0], name))
			return p[1];
	return NULL;
}

static void
test_flags_defaults(void)
{
	struct rw_mgr_config c;
	char err[256];
	char *argv[] = {"ctl", NULL};
	struct envtab e = {NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 1, argv, env_get, &e, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.agent_listen, "tcp://0.0.0.0:8478");
	CHECK(c.agent_key_file == NULL);
	CHECK(c.agent_advertise == NULL);
	CHECK(!c.no_agent_injection && !c.no_readiness_gate && !c.inject_only);
	CHECK(c.gcs_ft_cleanup_s == 300);
	rw_mgr_config_fini(&c);
}

static void
test_flags_set(void)
{
	struct rw_mgr_config c;
	char err[256];
	char *argv[] = {"ctl",
			"--agent-listen=tcp://127.0.0.1:9000",
			"--agent-advertise-address",
			"tcp://10.0.0.1:9000",
			"--agent-image=example/agent:1",
			"--no-agent-injection",
			"-no-readiness-gate",
			"--gcs-ft-cleanup-deadline=1m30s",
			NULL};
	static const char *const kv[] = {"RAYWARDEN_AGENT_KEY_FILE", "/etc/key", NULL};
	struct envtab e = {kv};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 8, argv, env_get, &e, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.agent_listen, "tcp://127.0.0.1:9000");
	CHECK_EQ_STR(c.agent_advertise, "tcp://10.0.0.1:9000");
	CHECK_EQ_STR(c.agent_image, "example/agent:1");
	CHECK_EQ_STR(c.agent_key_file, "/etc/key");
	CHECK(c.no_agent_injection && c.no_readiness_gate);
	CHECK(c.gcs_ft_cleanup_s == 90);
	rw_mgr_config_fini(&c);
}

static void
test_durations(void)
{
	static const struct {
		const char *v;
		double s;
		int rv;
	} cases[] = {
	    {"300s", 300, 0},	{"5m", 300, 0},	     {"1h", 3600, 0},	{"1500ms", 1.5, 0},
	    {"45", 45, 0},	{"1m30s", 90, 0},    {"0s", 0, 0},	{"", 0, -EINVAL},
	    {"5x", 0, -EINVAL}, {"-5s", 0, -EINVAL}, {"s", 0, -EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_mgr_config c;
		char err[256], flag[128];
		snprintf(flag, sizeof(flag), "--gcs-ft-cleanup-deadline=%s", cases[i].v);
		char *argv[] = {"ctl", flag, NULL};
		struct envtab e = {NULL};
		int rv = rw_mgr_config_parse(&c, 2, argv, env_get, &e, err, sizeof(err));
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv == 0) {
			CHECK(c.gcs_ft_cleanup_s > cases[i].s - 1e-9 &&
			      c.gcs_ft_cleanup_s < cases[i].s + 1e-9);
			rw_mgr_config_fini(&c);
		}
	}
}

static void
test_hub_flags(void)
{
	struct rw_mgr_config c;
	char err[256];
	char *argv0[] = {"ctl", NULL};
	struct envtab e = {NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 1, argv0, env_get, &e, err, sizeof(err)), 0);
	CHECK(c.agent_handshake_timeout_s == 3 && c.agent_frame_timeout_s == 5);
	CHECK_EQ_INT(c.agent_partial_budget_mib, 8);
	CHECK_EQ_INT(c.agent_max_conns_per_peer, 256);
	CHECK_EQ_INT(c.agent_max_pods_per_cluster, 10000);
	CHECK(c.agent_key_overlap_s == 600);
	rw_mgr_config_fini(&c);
	char *argv[] = {"ctl",
			"--agent-handshake-timeout=1s",
			"--agent-frame-timeout=2500ms",
			"--agent-partial-budget-mib=16",
			"--agent-max-conns-per-peer=0",
			"--agent-max-pods-per-cluster=500",
			"--agent-key-overlap=1h",
			NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 7, argv, env_get, &e, err, sizeof(err)), 0);
	CHECK(c.agent_handshake_timeout_s == 1 && c.agent_frame_timeout_s == 2.5);
	CHECK_EQ_INT(c.agent_partial_budget_mib, 16);
	CHECK_EQ_INT(c.agent_max_conns_per_peer, 0); /* unlimited */
	CHECK_EQ_INT(c.agent_max_pods_per_cluster, 500);
	CHECK(c.agent_key_overlap_s == 3600);
	rw_mgr_config_fini(&c);
	char *bad[] = {"ctl", "--agent-max-pods-per-cluster=0", NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 2, bad, env_get, &e, err, sizeof(err)), -EINVAL);
}

/* The agent container's resources and readiness period: unset by default (the builders'
   defaults), quantities checked at parse time. */
static void
test_agent_container_flags(void)
{
	struct rw_mgr_config c;
	char err[256];
	char *argv0[] = {"ctl", NULL};
	struct envtab e = {NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 1, argv0, env_get, &e, err, sizeof(err)), 0);
	CHECK(!c.agent_cpu_request && !c.agent_memory_request && !c.agent_cpu_limit &&
	      !c.agent_memory_limit);
	CHECK_EQ_INT(c.agent_readiness_period_s, 0);
	rw_mgr_config_fini(&c);
	char *argv[] = {"ctl",
			"--agent-cpu-request=20m",
			"--agent-memory-request",
			"32Mi",
			"--agent-cpu-limit=1",
			"--agent-memory-limit=0.5Gi",
			"--agent-readiness-period-seconds=5",
			NULL};
	CHECK_EQ_INT(rw_mgr_config_parse(&c, 7, argv, env_get, &e, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.agent_cpu_request, "20m");
	CHECK_EQ_STR(c.agent_memory_request, "32Mi");
	CHECK_EQ_STR(c.agent_cpu_limit, "1");
	CHECK_EQ_STR(c.agent_memory_limit, "0.5Gi");
	CHECK_EQ_INT(c.agent_readiness_period_s, 5);
	rw_mgr_config_fini(&c);
	static const char *const bad[] = {"--agent-cpu-request=lots", "--agent-memory-limit=-1Gi",
					  "--agent-cpu-limit=1x",
					  "--agent-readiness-period-seconds=0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *av[] = {"ctl", (char *)bad[i], NULL};
		err[0] = '\0';
		CHECK_EQ_INT(rw_mgr_config_parse(&c, 2, av, env_get, &e, err, sizeof(err)),
			     -EINVAL);
		CHECK(strstr(err, "--agent-") != NULL);
	}
}

/* What the reconciler and the injection webhook put into agents: hub address and gate. */
static void
test_opts_from_config(void)
{
	static const struct {
		const char *args[4];
		const char *addr; /* RAYWARDEN_CONTROLLER, NULL: standalone agents */
		bool gate, agent, inject_only;
	} cases[] = {
	    {{"--agent-key-file=/k"}, "tcp://raywarden-controller.rs.svc:8478", true, true, false},
	    {{"--agent-key-file=/k", "--agent-listen=tcp://0.0.0.0:9000"},
	     "tcp://raywarden-controller.rs.svc:9000",
	     true,
	     true,
	     false},
	    {{"--agent-key-file=/k", "--agent-advertise-address=tcp://10.0.0.1:1"},
	     "tcp://10.0.0.1:1",
	     true,
	     true,
	     false},
	    {{"--agent-key-file=/k", "--inject-only", "--no-readiness-gate"},
	     "tcp://raywarden-controller.rs.svc:8478",
	     false,
	     true,
	     true},
	    /* No master key, or no hub: nobody hears the agents, so no gate either. */
	    {{"--inject-only"}, NULL, false, true, true},
	    {{"--agent-key-file=/k", "--agent-listen=0"}, NULL, false, true, false},
	    {{"--agent-key-file=/k", "--no-agent-injection"}, NULL, false, false, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_mgr_config c;
		struct rw_raycluster_opts o;
		char err[256], adv[512], why[160];
		char *argv[6] = {"ctl"};
		int argc = 1;
		struct envtab e = {NULL};
		for (int k = 0; k < 4 && cases[i].args[k]; k++)
			argv[argc++] = (char *)cases[i].args[k];
		CHECK_EQ_INT(rw_mgr_config_parse(&c, argc, argv, env_get, &e, err, sizeof(err)), 0);
		CHECK_EQ_INT(c.inject_only, cases[i].inject_only);
		CHECK_EQ_INT(rw_raycluster_opts_from_config(&c, "rs", &o, adv, sizeof(adv), why,
							    sizeof(why)),
			     0);
		if (cases[i].addr)
			CHECK(o.controller_addr && !strcmp(o.controller_addr, cases[i].addr));
		else
			CHECK(o.controller_addr == NULL);
		CHECK_EQ_INT(o.readiness_gate, cases[i].gate);
		CHECK_EQ_INT(o.agent, cases[i].agent);
		rw_mgr_config_fini(&c);
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"flags_defaults", test_flags_defaults},
	    {"flags_set", test_flags_set},
	    {"pod builder options from the flags", test_opts_from_config},
	    {"durations", test_durations},
	    {"hub_flags", test_hub_flags},
	    {"agent_container_flags", test_agent_container_flags},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

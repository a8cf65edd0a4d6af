/*
 * config.h - the agent's configuration: environment variables (what the
 * controller injects) overridden by --kebab-case flags of the same names.
 * Pure: no I/O beyond the environment getter the caller passes in.
 */
#ifndef RW_AGENT_CONFIG_H
#define RW_AGENT_CONFIG_H

#include <stddef.h>

#include "rw/log.h"

enum rw_proxy_mode {
	RW_PROXY_AUTO = 0, /* the proxy counts on RayService workers (KubeRay's rule) */
	RW_PROXY_REQUIRED, /* the proxy counts on every node */
	RW_PROXY_IGNORE,   /* the proxy never counts (kuberay#4994 option) */
};

struct rw_agent_config {
	char pod_name[254];
	char pod_namespace[64];
	char pod_uid[64];
	char pod_ip[64];
	char cluster[64];
	char group[64];
	int head; /* node type: 1 head, 0 worker */
	int rayservice;
	enum rw_proxy_mode proxy_mode;

	char controller[256]; /* nng URL; "" = standalone */
	char key_file[256];
	/* The key itself (RAYWARDEN_KEY), where no file can be mounted: an agent
	   attached as an ephemeral container. Wiped once loaded. 128 = RW_WIRE_KEY_MAX. */
	char key[128 + 1];

	char listen_host[64];
	int port;
	char probe_host[64];
	int raylet_port;
	int dashboard_port;
	int serve_port;

	long probe_interval_ms;
	long proxy_interval_ms; /* where the proxy gates readiness (if shorter) */
	long probe_timeout_ms;
	long serve_status_interval_ms;
	long job_status_interval_ms; /* head: job status reads while a tracked job runs */
	int failure_threshold;
	int success_threshold;
	long liveness_grace_s;
	long heartbeat_ms;
	long reconnect_min_ms;
	long reconnect_max_ms;
	long resend_ms;

	int memory_trim;
	int light_probes; /* health GETs over the agent's own keep-alive client (not libcurl) */

	enum rw_log_format log_format;
	enum rw_log_level log_level;
};

/* Environment lookup: returns the value of name or NULL (getenv-compatible). */
typedef const char *(*rw_env_get)(const char *name, void *ud);

/* Fill cfg with the defaults. */
void rw_agent_config_defaults(struct rw_agent_config *cfg);

/*
 * Parse the environment (through env, may be NULL for none) and then argv.
 * Returns 0 on success, 1 when --help or --version was asked for (the text
 * is left in err), or -EINVAL with a one-line message in err.
 */
int rw_agent_config_parse(struct rw_agent_config *cfg, int argc, char **argv, rw_env_get env,
			  void *env_ud, char *err, size_t errlen);

/* The --help text. */
const char *rw_agent_config_usage(void);

/* Is port one of Ray's well-known ports? */
int rw_agent_port_reserved(int port);

/* Name of a proxy mode ("auto", "required", "ignore"). */
const char *rw_proxy_mode_name(enum rw_proxy_mode m);

#endif

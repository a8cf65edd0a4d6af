/*
 * config.c - table-driven parsing of RAYWARDEN_* variables and flags.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum opt_kind { OPT_STR, OPT_INT, OPT_LONG, OPT_BOOL, OPT_NODE, OPT_PROXY, OPT_LFMT, OPT_LLVL };

struct opt {
	const char *env; /* without the RAYWARDEN_ prefix */
	enum opt_kind kind;
	size_t off;
	size_t size; /* strings: capacity */
	long min, max;
	const char *help;
};

#define OFF(f) offsetof(struct rw_agent_config, f)
#define SZ(f) sizeof(((struct rw_agent_config *)0)->f)

static const struct opt opts[] = {
    {"POD_NAME", OPT_STR, OFF(pod_name), SZ(pod_name), 0, 0, "pod name (reported)"},
    {"POD_NAMESPACE", OPT_STR, OFF(pod_namespace), SZ(pod_namespace), 0, 0, "pod namespace"},
    {"POD_UID", OPT_STR, OFF(pod_uid), SZ(pod_uid), 0, 0, "pod UID"},
    {"POD_IP", OPT_STR, OFF(pod_ip), SZ(pod_ip), 0, 0, "pod IP"},
    {"CLUSTER", OPT_STR, OFF(cluster), SZ(cluster), 0, 0, "RayCluster name"},
    {"GROUP", OPT_STR, OFF(group), SZ(group), 0, 0,
     "worker group name (\"headgroup\" on the head)"},
    {"NODE_TYPE", OPT_NODE, OFF(head), 0, 0, 0, "head|worker (default worker)"},
    {"RAYSERVICE", OPT_BOOL, OFF(rayservice), 0, 0, 1,
     "true: part of a RayService; the serve proxy counts for worker readiness"},
    {"PROXY_READINESS", OPT_PROXY, OFF(proxy_mode), 0, 0, 0, "auto|required|ignore (default auto)"},
    {"CONTROLLER", OPT_STR, OFF(controller), SZ(controller), 0, 0,
     "controller nng URL, e.g. tcp://host:8478; empty: standalone"},
    {"KEY_FILE", OPT_STR, OFF(key_file), SZ(key_file), 0, 0,
     "file holding the cluster key (required with a controller; also needed for /drain); "
     "re-read when it changes"},
    {"KEY", OPT_STR, OFF(key), SZ(key), 0, 0,
     "the cluster key itself, when no file can be mounted (an agent attached as an ephemeral "
     "container); RAYWARDEN_KEY_FILE wins; never re-read"},
    {"LISTEN_HOST", OPT_STR, OFF(listen_host), SZ(listen_host), 0, 0,
     "address of the agent's HTTP endpoints (default 0.0.0.0; the controller sets the pod IP)"},
    {"PORT", OPT_INT, OFF(port), 0, 1, 65535, "port of the agent's HTTP endpoints (default 8477)"},
    {"PROBE_HOST", OPT_STR, OFF(probe_host), SZ(probe_host), 0, 0,
     "address of the local Ray node (default 127.0.0.1)"},
    {"RAYLET_PORT", OPT_INT, OFF(raylet_port), 0, 1, 65535, "dashboard agent port (52365)"},
    {"DASHBOARD_PORT", OPT_INT, OFF(dashboard_port), 0, 1, 65535, "dashboard head port (8265)"},
    {"SERVE_PORT", OPT_INT, OFF(serve_port), 0, 1, 65535, "serve HTTP proxy port (8000)"},
    {"PROBE_INTERVAL_MS", OPT_LONG, OFF(probe_interval_ms), 0, 10, 600000,
     "probe period per component (2000); a Ray process that dies is seen at once"},
    {"PROXY_INTERVAL_MS", OPT_LONG, OFF(proxy_interval_ms), 0, 10, 600000,
     "probe period of the serve proxy where it gates readiness, if shorter (200); a probe "
     "still in flight is not repeated"},
    {"PROBE_TIMEOUT_MS", OPT_LONG, OFF(probe_timeout_ms), 0, 5, 600000,
     "probe timeout, must be below the probe interval (300)"},
    {"SERVE_STATUS_INTERVAL_MS", OPT_LONG, OFF(serve_status_interval_ms), 0, 100, 3600000,
     "head: period of serve application status reads (2000)"},
    {"JOB_STATUS_INTERVAL_MS", OPT_LONG, OFF(job_status_interval_ms), 0, 100, 3600000,
     "head: period of job status reads while a tracked job has not ended (1000)"},
    {"FAILURE_THRESHOLD", OPT_INT, OFF(failure_threshold), 0, 1, 1000,
     "consecutive failed probes before a component counts as down (1)"},
    {"SUCCESS_THRESHOLD", OPT_INT, OFF(success_threshold), 0, 1, 1000,
     "consecutive good probes before a component counts as up (1)"},
    {"LIVENESS_GRACE_S", OPT_LONG, OFF(liveness_grace_s), 0, 1, 86400 * 7,
     "/livez fails after the raylet has failed continuously this long (600)"},
    {"HEARTBEAT_MS", OPT_LONG, OFF(heartbeat_ms), 0, 100, 3600000,
     "report period when nothing changes (5000)"},
    {"RECONNECT_MIN_MS", OPT_LONG, OFF(reconnect_min_ms), 0, 10, 3600000,
     "first reconnect delay to the controller (100)"},
    {"RECONNECT_MAX_MS", OPT_LONG, OFF(reconnect_max_ms), 0, 10, 3600000,
     "longest reconnect delay (back-off cap, 5000)"},
    {"RESEND_MS", OPT_LONG, OFF(resend_ms), 0, 100, 3600000,
     "resend an unanswered report after this long (2000)"},
    {"LIGHT_PROBES", OPT_BOOL, OFF(light_probes), 0, 0, 1,
     "health probes over the agent's own keep-alive HTTP/1.1 client; false: libcurl (true)"},
    {"MEMORY_TRIM", OPT_BOOL, OFF(memory_trim), 0, 0, 1,
     "after start-up, hand back library pages the steady state does not use (true)"},
    {"LOG_FORMAT", OPT_LFMT, OFF(log_format), 0, 0, 0, "text|json (text)"},
    {"LOG_LEVEL", OPT_LLVL, OFF(log_level), 0, 0, 0, "debug|info|warn|error (info)"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const int reserved_ports[] = {6379, 8265, 52365, 8000, 9000, 10001, 8080, 44217, 44227};

int
rw_agent_port_reserved(int port)
{
	for (size_t i = 0; i < sizeof(reserved_ports) / sizeof(reserved_ports[0]); i++)
		if (reserved_ports[i] == port)
			return 1;
	return 0;
}

const char *
rw_proxy_mode_name(enum rw_proxy_mode m)
{
	switch (m) {
	case RW_PROXY_REQUIRED:
		return "required";
	case RW_PROXY_IGNORE:
		return "ignore";
	default:
		return "auto";
	}
}

void
rw_agent_config_defaults(struct rw_agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_host, sizeof(cfg->listen_host), "0.0.0.0");
	snprintf(cfg->probe_host, sizeof(cfg->probe_host), "127.0.0.1");
	snprintf(cfg->pod_namespace, sizeof(cfg->pod_namespace), "default");
	/* Kubernetes sets a pod's hostname to its name. */
	if (gethostname(cfg->pod_name, sizeof(cfg->pod_name) - 1) != 0)
		snprintf(cfg->pod_name, sizeof(cfg->pod_name), "unknown");
	cfg->port = 8477;
	cfg->raylet_port = 52365;
	cfg->dashboard_port = 8265;
	cfg->serve_port = 8000;
	cfg->probe_interval_ms = 2000;
	cfg->proxy_interval_ms = 200;
	cfg->probe_timeout_ms = 300;
	cfg->serve_status_interval_ms = 2000;
	cfg->job_status_interval_ms = 1000;
	cfg->failure_threshold = 1;
	cfg->success_threshold = 1;
	cfg->liveness_grace_s = 600;
	cfg->heartbeat_ms = 5000;
	cfg->reconnect_min_ms = 100;
	cfg->reconnect_max_ms = 5000;
	cfg->resend_ms = 2000;
	cfg->memory_trim = 1;
	cfg->light_probes = 1;
	cfg->log_format = RW_LOG_TEXT;
	cfg->log_level = RW_LOG_INFO;
}

static int
parse_bool(const char *v, int *out)
{
	static const char *yes[] = {"1", "true", "yes", "on"};
	static const char *no[] = {"0", "false", "no", "off", ""};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(v, yes[i]) == 0)
			return *out = 1, 0;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(v, no[i]) == 0)
			return *out = 0, 0;
	return -EINVAL;
}

static int
parse_long(const char *v, long min, long max, long *out)
{
	char *end;
	if (!*v || isspace((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || x < min || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

/* Apply one value; `src` names where it came from for the error message. */
static int
apply(struct rw_agent_config *cfg, const struct opt *o, const char *v, const char *src, char *err,
      size_t errlen)
{
	char *base = (char *)cfg;
	long x;
	int b;

	switch (o->kind) {
	case OPT_STR:
		if (strlen(v) >= o->size) {
			snprintf(err, errlen, "%s: value too long (at most %zu bytes)", src,
				 o->size - 1);
			return -EINVAL;
		}
		for (const char *p = v; *p; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				snprintf(err, errlen, "%s: control character in value", src);
				return -EINVAL;
			}
		}
		memcpy(base + o->off, v, strlen(v) + 1);
		return 0;
	case OPT_INT:
	case OPT_LONG:
		if (parse_long(v, o->min, o->max, &x) != 0) {
			snprintf(err, errlen, "%s: \"%.40s\" is not an integer in %ld..%ld", src, v,
				 o->min, o->max);
			return -EINVAL;
		}
		if (o->kind == OPT_INT)
			*(int *)(base + o->off) = (int)x;
		else
			*(long *)(base + o->off) = x;
		return 0;
	case OPT_BOOL:
		if (parse_bool(v, &b) != 0) {
			snprintf(err, errlen, "%s: \"%.40s\" is not a boolean (true|false)", src,
				 v);
			return -EINVAL;
		}
		*(int *)(base + o->off) = b;
		return 0;
	case OPT_NODE:
		if (strcmp(v, "head") == 0)
			cfg->head = 1;
		else if (strcmp(v, "worker") == 0)
			cfg->head = 0;
		else {
			snprintf(err, errlen, "%s: \"%.40s\" is not head|worker", src, v);
			return -EINVAL;
		}
		return 0;
	case OPT_PROXY:
		if (strcmp(v, "auto") == 0)
			cfg->proxy_mode = RW_PROXY_AUTO;
		else if (strcmp(v, "required") == 0)
			cfg->proxy_mode = RW_PROXY_REQUIRED;
		else if (strcmp(v, "ignore") == 0)
			cfg->proxy_mode = RW_PROXY_IGNORE;
		else {
			snprintf(err, errlen, "%s: \"%.40s\" is not auto|required|ignore", src, v);
			return -EINVAL;
		}
		return 0;
	case OPT_LFMT:
		if (rw_log_parse_format(v, &cfg->log_format) != 0) {
			snprintf(err, errlen, "%s: \"%.40s\" is not text|json", src, v);
			return -EINVAL;
		}
		return 0;
	case OPT_LLVL:
		if (rw_log_parse_level(v, &cfg->log_level) != 0) {
			snprintf(err, errlen, "%s: \"%.40s\" is not debug|info|warn|error", src, v);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

/* "--probe-interval-ms" -> the option whose env name is PROBE_INTERVAL_MS. */
static const struct opt *
find_flag(const char *name, size_t n)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const char *e = opts[i].env;
		if (strlen(e) != n)
			continue;
		size_t k;
		for (k = 0; k < n; k++) {
			char c = e[k] == '_' ? '-' : (char)tolower((unsigned char)e[k]);
			if (name[k] != c)
				break;
		}
		if (k == n)
			return &opts[i];
	}
	return NULL;
}

static char usage_text[6144];

const char *
rw_agent_config_usage(void)
{
	size_t off = 0;
	off += (size_t)snprintf(usage_text + off, sizeof(usage_text) - off,
				"usage: raywarden-agent [--flag=value ...]\n"
				"Every setting comes from RAYWARDEN_<NAME> in the environment or "
				"--<name> (lower case, '-' for '_'); flags win.\n\n");
	for (size_t i = 0; i < NOPTS && off < sizeof(usage_text); i++) {
		char flag[64];
		size_t k;
		for (k = 0; opts[i].env[k] && k < sizeof(flag) - 1; k++)
			flag[k] = opts[i].env[k] == '_'
				      ? '-'
				      : (char)tolower((unsigned char)opts[i].env[k]);
		flag[k] = 0;
		off += (size_t)snprintf(usage_text + off, sizeof(usage_text) - off,
					"  --%-26s RAYWARDEN_%s\n      %s\n", flag, opts[i].env,
					opts[i].help);
	}
	if (off < sizeof(usage_text))
		snprintf(
		    usage_text + off, sizeof(usage_text) - off,
		    "  --help, --version\n\nEndpoints: GET /readyz /livez /metrics /status; GET "
		    "/drain?seconds=N with Authorization: Bearer <drain token>\n");
	return usage_text;
}

static int
validate(struct rw_agent_config *cfg, char *err, size_t errlen)
{
	if (rw_agent_port_reserved(cfg->port)) {
		snprintf(err, errlen,
			 "port %d collides with a Ray port; choose another (default 8477)",
			 cfg->port);
		return -EINVAL;
	}
	if (cfg->probe_timeout_ms >= cfg->probe_interval_ms) {
		snprintf(err, errlen,
			 "probe timeout (%ld ms) must be shorter than the probe interval (%ld ms)",
			 cfg->probe_timeout_ms, cfg->probe_interval_ms);
		return -EINVAL;
	}
	if (cfg->probe_timeout_ms >= cfg->serve_status_interval_ms) {
		snprintf(err, errlen,
			 "probe timeout must be shorter than the serve status interval");
		return -EINVAL;
	}
	if (cfg->reconnect_min_ms > cfg->reconnect_max_ms) {
		snprintf(err, errlen, "reconnect-min-ms must not exceed reconnect-max-ms");
		return -EINVAL;
	}
	if (cfg->controller[0] && !cfg->key_file[0] && !cfg->key[0]) {
		snprintf(err, errlen,
			 "RAYWARDEN_KEY_FILE (or RAYWARDEN_KEY) is required when a controller is "
			 "configured");
		return -EINVAL;
	}
	if (cfg->controller[0] && !strstr(cfg->controller, "://")) {
		snprintf(err, errlen, "controller \"%.60s\" is not an nng URL (tcp://host:port)",
			 cfg->controller);
		return -EINVAL;
	}
	if (!cfg->listen_host[0] || !cfg->probe_host[0]) {
		snprintf(err, errlen, "listen-host and probe-host must not be empty");
		return -EINVAL;
	}
	return 0;
}

int
rw_agent_config_parse(struct rw_agent_config *cfg, int argc, char **argv, rw_env_get env,
		      void *env_ud, char *err, size_t errlen)
{
	char src[96];
	int rv;

	if (errlen)
		err[0] = 0;
	if (env) {
		for (size_t i = 0; i < NOPTS; i++) {
			char name[64];
			snprintf(name, sizeof(name), "RAYWARDEN_%s", opts[i].env);
			const char *v = env(name, env_ud);
			if (!v)
				continue;
			snprintf(src, sizeof(src), "%s", name);
			if ((rv = apply(cfg, &opts[i], v, src, err, errlen)) != 0)
				return rv;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			snprintf(err, errlen, "help");
			return 1;
		}
		if (strcmp(a, "--version") == 0) {
			snprintf(err, errlen, "version");
			return 1;
		}
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument \"%.60s\" (see --help)", a);
			return -EINVAL;
		}
		const char *name = a + 2, *eq = strchr(name, '='), *v;
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = find_flag(name, n);
		if (!o) {
			snprintf(err, errlen, "unknown flag \"--%.*s\" (see --help)",
				 (int)(n > 60 ? 60 : n), name);
			return -EINVAL;
		}
		if (eq) {
			v = eq + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			snprintf(err, errlen, "flag --%.*s needs a value", (int)n, name);
			return -EINVAL;
		}
		snprintf(src, sizeof(src), "--%.*s", (int)(n > 60 ? 60 : n), name);
		if ((rv = apply(cfg, o, v, src, err, errlen)) != 0)
			return rv;
	}
	return validate(cfg, err, errlen);
}

/*
 * manager.c - process wiring of raywarden-controller (see manager.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kubeconfig.h"
#include "krmetrics.h"
#include "lease.h"
#include "manager.h"
#include "agents.h"
#include "batchsched.h"
#include "quantity.h"
#include "rw/httpd.h"

#define MAX_CTLS 16
#define MAX_INFS 32
#define MAX_WQS 16
#define MAX_LISTENERS 2

struct rw_mgr {
	uv_loop_t *loop;
	struct rw_mgr_config cfg;
	char *ns;
	struct rw_kubecfg kc;
	struct rw_kube *kube;
	struct rw_met *met;
	struct rw_ev *ev;
	struct rw_lease *lease;
	char *identity;
	struct rw_httpd *health, *metrics;
	struct rw_httpd *listeners[MAX_LISTENERS]; /* more listeners whose stats /metrics shows */
	const char *listener_names[MAX_LISTENERS];
	uv_signal_t sigterm, sigint;
	bool signals;
	const struct rw_mgr_controller *ctls[MAX_CTLS];
	void *states[MAX_CTLS];
	int nctl;
	struct rw_inf *infs[MAX_INFS];
	bool inf_cluster_scoped[MAX_INFS];
	int ninf;
	struct rw_wq *wqs[MAX_WQS];
	int nwq;
	struct rw_agents *agents; /* the agent hub, or NULL */
	rw_mgr_page_fn page;	  /* more paths on the metrics listener, or NULL */
	void *page_ud;
	bool started, leading, shutting;
	int exit_code;
	struct rw_met_family *m_up, *m_infs;
	struct rw_met_family *m_cpu, *m_rss, *m_vsize, *m_start, *m_fds, *m_maxfds;
};

static void register_process_metrics(struct rw_mgr *m);

/* ---- configuration ---- */

static const char usage[] =
    "usage: raywarden-controller [flags]\n"
    "\n"
    "Flags (each also read from the environment as RAYWARDEN_<FLAG>, e.g.\n"
    "RAYWARDEN_WATCH_NAMESPACE; flags win):\n"
    "  --watch-namespace NS[,NS...]      namespaces to watch (default: all)\n"
    "  --leader-elect[=BOOL]             leader election (default true);\n"
    "                                    alias --enable-leader-election\n"
    "  --leader-election-namespace NS    namespace of the Lease (default: own namespace)\n"
    "  --leader-election-id NAME         Lease name (raywarden-controller-leader)\n"
    "  --leader-election-identity ID     holder identity (default hostname_random)\n"
    "  --metrics-addr ADDR               /metrics listener (:8080; 0 disables);\n"
    "                                    alias --metrics-bind-address\n"
    "  --health-probe-bind-address ADDR  /healthz and /readyz listener (:8082; 0 disables)\n"
    "  --status-page[=BOOL]              read-only status page at / and /status.json on the\n"
    "                                    metrics listener (default true)\n"
    "  --qps N                           API requests per second (100)\n"
    "  --burst N                         API request burst (200)\n"
    "  --reconcile-concurrency N         reconciles in flight per controller (64)\n"
    "  --log-format text|json            log format (text); alias\n"
    "                                    --log-stdout-encoder console|json\n"
    "  --log-level debug|info|warn|error log level (info)\n"
    "  --kubeconfig PATH                 kubeconfig (default: $KUBECONFIG, in-cluster,\n"
    "                                    ~/.kube/config)\n"
    "  --agent-listen URL                agent hub listener (tcp://0.0.0.0:8478; 0 disables)\n"
    "  --agent-key-file PATH             master key for the agents' per-cluster keys\n"
    "  --agent-advertise-address URL     controller URL given to agents\n"
    "                                    (tcp://raywarden-controller.<ns>.svc:8478)\n"
    "  --agent-image IMAGE               agent sidecar image\n"
    "  --agent-cpu-request QTY           agent container CPU request (10m)\n"
    "  --agent-memory-request QTY        agent container memory request (16Mi)\n"
    "  --agent-cpu-limit QTY             agent container CPU limit (100m)\n"
    "  --agent-memory-limit QTY          agent container memory limit (64Mi)\n"
    "  --agent-readiness-period-seconds N  readiness probe period of the Ray\n"
    "                                    container, answered by the agent (1)\n"
    "  --no-agent-injection              no agent sidecar: pods exactly as KubeRay's\n"
    "  --no-readiness-gate               no ray.io/agent-ready readiness gate\n"
    "  --inject-only                     beside another operator (KubeRay): reconcile\n"
    "                                    nothing; keep the agent key Secrets of clusters\n"
    "                                    with injected agents, run the hub and gates\n"
    "  --agent-stale-after DUR           agent silent this long: stale (15s)\n"
    "  --agent-head-heartbeat DUR        report period asked of head agents (1s)\n"
    "  --agent-head-stale-after DUR      head agent on that heartbeat silent: stale (3.5s)\n"
    "  --agent-disconnect-grace DUR      agent connection closed, no reconnect: stale (1s)\n"
    "  --agent-handshake-timeout DUR     hub: close a peer without SP header after (3s)\n"
    "  --agent-frame-timeout DUR         hub: close a peer whose frame is incomplete after (5s)\n"
    "  --agent-partial-budget-mib N      hub: MiB of partial frames over all peers (8)\n"
    "  --agent-max-conns-per-peer N      hub: connections per peer IP (256; 0 unlimited)\n"
    "  --agent-max-pods-per-cluster N    hub: pods tracked per cluster key (10000)\n"
    "  --agent-key-overlap DUR           hub: a replaced cluster key is accepted for (10m)\n"
    "  --gcs-ft-cleanup-deadline DUR     give up the GCS FT Redis cleanup after DUR (300s)\n"
    "  --batch-scheduler NAME            volcano, yunikorn, scheduler-plugins or kai-scheduler:\n"
    "                                    PodGroups and pod metadata as KubeRay's (default none)\n"
    "  --enable-batch-scheduler          deprecated: --batch-scheduler=volcano\n"
    "  --rayjob-default-ttl DUR          delete a finished RayJob without a deletion policy\n"
    "                                    of its own DUR after its endTime (0: off, default)\n"
    "  --webhook-addr ADDR               admission webhook HTTPS listener (0: off, the\n"
    "                                    default; :9443 with manifests/webhook)\n"
    "  --webhook-service NAME            Service the API server calls the webhooks through\n"
    "                                    (raywarden-webhook): the serving certificate's name\n"
    "  --webhook-secret NAME             Secret of the webhook CA and serving certificate\n"
    "                                    (raywarden-webhook-certs, own namespace)\n"
    "  --webhook-configuration NAME      Validating/MutatingWebhookConfiguration whose\n"
    "                                    caBundle the controller keeps (raywarden)\n"
    "  --webhook-cert-hosts H[,H...]     more names (DNS or IPv4) in the serving certificate\n"
    "  --webhook-cert-validity DUR       serving certificate life (2160h = 90 days)\n"
    "  --webhook-ca-validity DUR         webhook CA life (87600h = 10 years)\n"
    "  --print-rbac[=WHICH]              print the RBAC manifest the controller needs and exit:\n"
    "                                    cluster-role (default), leader-election,\n"
    "                                    batch-scheduler or webhook\n"
    "  --help, --version\n";

const char *
rw_mgr_usage(void)
{
	return usage;
}

static void seterr(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	if (!err || !n)
		return;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

static int
parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int
set_str(char **dst, const char *v)
{
	char *n = strdup(v);
	if (!n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

static void
free_list(char **l)
{
	for (char **p = l; p && *p; p++)
		free(*p);
	free(l);
}

static int
set_ns_list(struct rw_mgr_config *c, const char *v)
{
	char **l = NULL;
	int n = 0;
	const char *p = v;
	free_list(c->watch_ns);
	c->watch_ns = NULL;
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *s = p;
		p += len;
		if (*p == ',')
			p++;
		while (len && *s == ' ') {
			s++;
			len--;
		}
		while (len && s[len - 1] == ' ')
			len--;
		if (!len)
			continue;
		char **nl = realloc(l, (size_t)(n + 2) * sizeof(*nl));
		if (!nl) {
			free_list(l);
			return -ENOMEM;
		}
		l = nl;
		l[n] = strndup(s, len);
		if (!l[n]) {
			free_list(l);
			return -ENOMEM;
		}
		l[++n] = NULL;
	}
	c->watch_ns = l;
	return 0;
}

/* O_INT: 1..1000000; O_COUNT: 0..1000000 (0 meaning "unlimited" where documented). */
enum opt_kind {
	O_STR,
	O_BOOL,
	O_NSLIST,
	O_DOUBLE,
	O_INT,
	O_COUNT,
	O_FMT,
	O_ENCODER,
	O_LEVEL,
	O_DURATION,
	O_BATCH,
	O_QTY
};

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t off;
};

#define OFF(f) offsetof(struct rw_mgr_config, f)
static const struct opt opts[] = {
    {"watch-namespace", O_NSLIST, OFF(watch_ns)},
    {"leader-elect", O_BOOL, OFF(leader_elect)},
    {"enable-leader-election", O_BOOL, OFF(leader_elect)},
    {"leader-election-namespace", O_STR, OFF(leader_ns)},
    {"leader-election-id", O_STR, OFF(lease_name)},
    {"leader-election-identity", O_STR, OFF(identity)},
    {"metrics-addr", O_STR, OFF(metrics_addr)},
    {"metrics-bind-address", O_STR, OFF(metrics_addr)},
    {"health-probe-bind-address", O_STR, OFF(health_addr)},
    {"status-page", O_BOOL, OFF(status_page)},
    {"qps", O_DOUBLE, OFF(qps)},
    {"burst", O_INT, OFF(burst)},
    {"reconcile-concurrency", O_INT, OFF(reconcile_concurrency)},
    {"log-format", O_FMT, OFF(log_format)},
    {"log-stdout-encoder", O_ENCODER, OFF(log_format)},
    {"log-level", O_LEVEL, OFF(log_level)},
    {"kubeconfig", O_STR, OFF(kubeconfig)},
    {"agent-listen", O_STR, OFF(agent_listen)},
    {"agent-key-file", O_STR, OFF(agent_key_file)},
    {"agent-advertise-address", O_STR, OFF(agent_advertise)},
    {"agent-image", O_STR, OFF(agent_image)},
    {"agent-cpu-request", O_QTY, OFF(agent_cpu_request)},
    {"agent-memory-request", O_QTY, OFF(agent_memory_request)},
    {"agent-cpu-limit", O_QTY, OFF(agent_cpu_limit)},
    {"agent-memory-limit", O_QTY, OFF(agent_memory_limit)},
    {"agent-readiness-period-seconds", O_INT, OFF(agent_readiness_period_s)},
    {"no-agent-injection", O_BOOL, OFF(no_agent_injection)},
    {"no-readiness-gate", O_BOOL, OFF(no_readiness_gate)},
    {"inject-only", O_BOOL, OFF(inject_only)},
    {"gcs-ft-cleanup-deadline", O_DURATION, OFF(gcs_ft_cleanup_s)},
    {"agent-stale-after", O_DURATION, OFF(agent_stale_after_s)},
    {"agent-head-heartbeat", O_DURATION, OFF(agent_head_heartbeat_s)},
    {"agent-head-stale-after", O_DURATION, OFF(agent_head_stale_after_s)},
    {"agent-disconnect-grace", O_DURATION, OFF(agent_disconnect_grace_s)},
    {"agent-handshake-timeout", O_DURATION, OFF(agent_handshake_timeout_s)},
    {"agent-frame-timeout", O_DURATION, OFF(agent_frame_timeout_s)},
    {"agent-partial-budget-mib", O_INT, OFF(agent_partial_budget_mib)},
    {"agent-max-conns-per-peer", O_COUNT, OFF(agent_max_conns_per_peer)},
    {"agent-max-pods-per-cluster", O_INT, OFF(agent_max_pods_per_cluster)},
    {"agent-key-overlap", O_DURATION, OFF(agent_key_overlap_s)},
    {"rayjob-default-ttl", O_DURATION, OFF(rayjob_default_ttl_s)},
    {"batch-scheduler", O_BATCH, OFF(batch_scheduler)},
    {"enable-batch-scheduler", O_BOOL, OFF(enable_batch_scheduler)},
    {"webhook-addr", O_STR, OFF(webhook_addr)},
    {"webhook-service", O_STR, OFF(webhook_service)},
    {"webhook-secret", O_STR, OFF(webhook_secret)},
    {"webhook-configuration", O_STR, OFF(webhook_config)},
    {"webhook-cert-hosts", O_STR, OFF(webhook_cert_hosts)},
    {"webhook-cert-validity", O_DURATION, OFF(webhook_cert_validity_s)},
    {"webhook-ca-validity", O_DURATION, OFF(webhook_ca_validity_s)},
};
#undef OFF

/* Go's time.ParseDuration for h, m, s, ms (e.g. "300s", "5m", "1m30s"); a bare number is seconds.
 */
static int
parse_duration(const char *v, double *out)
{
	double total = 0;
	char *end;
	if (!*v)
		return -EINVAL;
	while (*v) {
		double d = strtod(v, &end);
		if (end == v || !(d >= 0))
			return -EINVAL;
		v = end;
		if (!strncmp(v, "ms", 2)) {
			d /= 1000;
			v += 2;
		} else if (*v == 's') {
			v++;
		} else if (*v == 'm') {
			d *= 60;
			v++;
		} else if (*v == 'h') {
			d *= 3600;
			v++;
		} else if (*v) {
			return -EINVAL;
		}
		total += d;
	}
	if (!(total <= 1e9))
		return -EINVAL;
	*out = total;
	return 0;
}

static int
apply(struct rw_mgr_config *c, const struct opt *o, const char *v, char *err, size_t errlen)
{
	char *base = (char *)c, *end;
	bool b;
	switch (o->kind) {
	case O_STR:
		return set_str((char **)(void *)(base + o->off), v);
	case O_NSLIST:
		return set_ns_list(c, v);
	case O_BOOL:
		if (parse_bool(v, &b) != 0)
			break;
		*(bool *)(void *)(base + o->off) = b;
		return 0;
	case O_DOUBLE: {
		double d = strtod(v, &end);
		if (!*v || *end || !(d >= 0))
			break;
		*(double *)(void *)(base + o->off) = d;
		return 0;
	}
	case O_INT:
	case O_COUNT: {
		long l = strtol(v, &end, 10);
		if (!*v || *end || l < (o->kind == O_COUNT ? 0 : 1) || l > 1000000)
			break;
		*(int *)(void *)(base + o->off) = (int)l;
		return 0;
	}
	case O_FMT:
		if (rw_log_parse_format(v, &c->log_format) != 0)
			break;
		return 0;
	case O_ENCODER:
		if (!strcmp(v, "json"))
			c->log_format = RW_LOG_JSON;
		else if (!strcmp(v, "console"))
			c->log_format = RW_LOG_TEXT;
		else
			break;
		return 0;
	case O_LEVEL:
		if (rw_log_parse_level(v, &c->log_level) != 0)
			break;
		return 0;
	case O_DURATION:
		if (parse_duration(v, (double *)(void *)(base + o->off)) != 0)
			break;
		return 0;
	case O_QTY: {
		/* Checked here so a typo stops the controller at start, not every pod create. */
		struct rw_qty q;
		if (rw_qty_parse(v, &q) != 0 || q.units < 0)
			break;
		return set_str((char **)(void *)(base + o->off), v);
	}
	case O_BATCH: {
		enum rw_bs_kind k;
		if (rw_bs_parse(v, &k) != 0)
			break;
		*(int *)(void *)(base + o->off) = (int)k;
		return 0;
	}
	}
	if (o->kind == O_BATCH) {
		/* KubeRay's ValidateBatchSchedulerConfig wording. */
		seterr(err, errlen,
		       "--batch-scheduler: the scheduler is not supported, name=%.100s (want "
		       "volcano, yunikorn, scheduler-plugins or kai-scheduler)",
		       v);
		return -EINVAL;
	}
	seterr(err, errlen, "invalid value \"%.100s\" for --%s", v, o->name);
	return -EINVAL;
}

int
rw_mgr_config_parse(struct rw_mgr_config *c, int argc, char **argv, rw_mgr_getenv_fn env, void *ud,
		    char *err, size_t errlen)
{
	size_t nopts = sizeof(opts) / sizeof(opts[0]);
	int rv = -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->leader_elect = true;
	c->qps = 100;
	c->burst = 200;
	c->reconcile_concurrency = 64;
	c->log_format = RW_LOG_TEXT;
	c->log_level = RW_LOG_INFO;
	c->gcs_ft_cleanup_s = 300;
	c->agent_stale_after_s = 15;
	c->agent_head_heartbeat_s = 1;
	c->agent_head_stale_after_s = 3.5;
	c->agent_disconnect_grace_s = 1;
	c->agent_handshake_timeout_s = 3;
	c->agent_frame_timeout_s = 5;
	c->agent_partial_budget_mib = 8;
	c->agent_max_conns_per_peer = 256;
	c->agent_max_pods_per_cluster = 10000;
	c->agent_key_overlap_s = 600;
	c->status_page = true;
	c->webhook_cert_validity_s = 90 * 86400.0;
	c->webhook_ca_validity_s = 3650 * 86400.0;
	if (set_str(&c->lease_name, "raywarden-controller-leader") ||
	    set_str(&c->metrics_addr, ":8080") || set_str(&c->health_addr, ":8082") ||
	    set_str(&c->agent_listen, "tcp://0.0.0.0:8478") || set_str(&c->webhook_addr, "0") ||
	    set_str(&c->webhook_service, "raywarden-webhook") ||
	    set_str(&c->webhook_secret, "raywarden-webhook-certs") ||
	    set_str(&c->webhook_config, "raywarden"))
		goto fail;
	for (size_t i = 0; env && i < nopts; i++) {
		char name[80] = "RAYWARDEN_";
		size_t n = strlen(name);
		for (const char *p = opts[i].name; *p && n + 1 < sizeof(name); p++)
			name[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		name[n] = '\0';
		const char *v = env(name, ud);
		if (v && *v && (rv = apply(c, &opts[i], v, err, errlen)) != 0)
			goto fail;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			seterr(err, errlen, "help");
			rw_mgr_config_fini(c);
			return 1;
		}
		if (!strcmp(a, "--version")) {
			seterr(err, errlen, "version");
			rw_mgr_config_fini(c);
			return 1;
		}
		if (!strcmp(a, "--print-rbac") || !strcmp(a, "--print-rbac=cluster-role") ||
		    !strcmp(a, "--print-rbac=leader-election") ||
		    !strcmp(a, "--print-rbac=batch-scheduler") ||
		    !strcmp(a, "--print-rbac=webhook")) {
			seterr(err, errlen, "%s",
			       strstr(a, "leader")    ? "print-rbac:leader-election"
			       : strstr(a, "batch")   ? "print-rbac:batch-scheduler"
			       : strstr(a, "webhook") ? "print-rbac:webhook"
						      : "print-rbac:cluster-role");
			rw_mgr_config_fini(c);
			return 1;
		}
		if (!strncmp(a, "--print-rbac=", 13)) {
			seterr(err, errlen,
			       "--print-rbac: \"%.100s\" is not cluster-role, leader-election, "
			       "batch-scheduler or webhook",
			       a + 13);
			rv = -EINVAL;
			goto fail;
		}
		if (a[0] != '-') {
			seterr(err, errlen, "unexpected argument \"%.100s\"", a);
			rv = -EINVAL;
			goto fail;
		}
		a += a[1] == '-' ? 2 : 1; /* Go's flag package takes -flag and --flag */
		const char *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		const struct opt *o = NULL;
		for (size_t k = 0; k < nopts; k++)
			if (strlen(opts[k].name) == nl && !strncmp(opts[k].name, a, nl))
				o = &opts[k];
		if (!o) {
			seterr(err, errlen, "unknown flag --%.*s (see --help)", (int)nl, a);
			rv = -EINVAL;
			goto fail;
		}
		const char *v;
		if (eq)
			v = eq + 1;
		else if (o->kind == O_BOOL)
			v = "true";
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			seterr(err, errlen, "flag --%s needs a value", o->name);
			rv = -EINVAL;
			goto fail;
		}
		if ((rv = apply(c, o, v, err, errlen)) != 0)
			goto fail;
	}
	if (c->enable_batch_scheduler) {
		if (c->batch_scheduler != RW_BS_NONE) {
			seterr(err, errlen,
			       "both feature flags enable-batch-scheduler (deprecated) and "
			       "batch-scheduler are set. Please use batch-scheduler only");
			rv = -EINVAL;
			goto fail;
		}
		c->batch_scheduler = RW_BS_VOLCANO;
	}
	char h[256];
	int port;
	if (rw_mgr_parse_addr(c->metrics_addr, h, sizeof(h), &port) ||
	    rw_mgr_parse_addr(c->health_addr, h, sizeof(h), &port) ||
	    rw_mgr_parse_addr(c->webhook_addr, h, sizeof(h), &port)) {
		seterr(err, errlen, "invalid listen address (want [host]:port or 0)");
		rv = -EINVAL;
		goto fail;
	}
	return 0;
fail:
	if (rv == -ENOMEM)
		seterr(err, errlen, "out of memory");
	rw_mgr_config_fini(c);
	return rv;
}

void
rw_mgr_config_fini(struct rw_mgr_config *c)
{
	if (!c)
		return;
	free_list(c->watch_ns);
	free(c->leader_ns);
	free(c->lease_name);
	free(c->metrics_addr);
	free(c->health_addr);
	free(c->kubeconfig);
	free(c->identity);
	free(c->agent_listen);
	free(c->agent_key_file);
	free(c->agent_advertise);
	free(c->agent_image);
	free(c->agent_cpu_request);
	free(c->agent_memory_request);
	free(c->agent_cpu_limit);
	free(c->agent_memory_limit);
	free(c->webhook_addr);
	free(c->webhook_service);
	free(c->webhook_secret);
	free(c->webhook_config);
	free(c->webhook_cert_hosts);
	memset(c, 0, sizeof(*c));
}

int
rw_mgr_parse_addr(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon;
	char *end;
	*port = -1;
	if (!s || !*s || !strcmp(s, "0")) {
		snprintf(host, hostlen, "%s", "");
		return 0;
	}
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)(rb - s - 1), s + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)(colon - s), s);
	}
	long p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 0 || p > 65535)
		return -EINVAL;
	if (!host[0])
		snprintf(host, hostlen, "0.0.0.0");
	*port = (int)p;
	return 0;
}

/* ---- manager ---- */

static const char *
mgr_getenv(const char *n)
{
	const char *v = getenv(n);
	return v && *v ? v : NULL;
}

int
rw_mgr_new(uv_loop_t *loop, const struct rw_mgr_config *cfg, struct rw_mgr **out, char *err,
	   size_t errlen)
{
	struct rw_mgr *m;
	struct rw_kube_opts ko;
	char id[300];
	int rv;
	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->cfg = *cfg; /* borrowed strings: the caller keeps cfg alive */
	rv = rw_kubecfg_auto(&m->kc, cfg->kubeconfig, uv_now(loop), err, errlen);
	if (rv)
		goto fail;
	const char *ns = cfg->leader_ns ? cfg->leader_ns : mgr_getenv("POD_NAMESPACE");
	if (!ns)
		ns = m->kc.ns ? m->kc.ns : "default";
	m->ns = strdup(ns);
	rv = -ENOMEM;
	if (!m->ns || rw_met_new(20000, &m->met) != 0)
		goto fail;
	memset(&ko, 0, sizeof(ko));
	ko.qps = cfg->qps;
	ko.burst = cfg->burst;
	ko.met = m->met;
	rv = rw_kube_new(loop, &m->kc, &ko, &m->kube);
	if (rv) {
		seterr(err, errlen, "cannot create the API client: %s", strerror(-rv));
		goto fail;
	}
	if (cfg->identity && *cfg->identity) {
		snprintf(id, sizeof(id), "%s", cfg->identity);
	} else {
		char host[256] = "raywarden-controller";
		gethostname(host, sizeof(host) - 1);
		srand((unsigned)(getpid() ^ (unsigned)uv_hrtime()));
		snprintf(id, sizeof(id), "%s_%08x%08x", host, (unsigned)rand(), (unsigned)rand());
	}
	m->identity = strdup(id);
	if (!m->identity) {
		rv = -ENOMEM;
		goto fail;
	}
	struct rw_ev_opts eo = {.instance = id};
	rv = rw_ev_new(m->kube, &eo, &m->ev);
	if (rv)
		goto fail;
	m->m_up = rw_met_gauge(m->met, "raywarden_controller_info",
			       "Build information of the running controller.",
			       (const char *const[]){"version", NULL});
	rw_met_set(m->m_up, (const char *const[]){RW_VERSION}, 1);
	register_process_metrics(m);
	rw_lease_metric(m->met);
	*out = m;
	return 0;
fail:
	/* Nothing has started: close what exists synchronously enough for the caller's loop. */
	rw_ev_free(m->ev);
	rw_kube_free(m->kube, NULL, NULL);
	rw_met_free(m->met);
	rw_kubecfg_fini(&m->kc);
	free(m->identity);
	free(m->ns);
	free(m);
	return rv ? rv : -EINVAL;
}

int
rw_mgr_add(struct rw_mgr *m, const struct rw_mgr_controller *c)
{
	if (!m || !c || m->started || m->nctl >= MAX_CTLS)
		return -EINVAL;
	m->ctls[m->nctl++] = c;
	return 0;
}

uv_loop_t *
rw_mgr_loop(const struct rw_mgr *m)
{
	return m->loop;
}

struct rw_kube *
rw_mgr_kube(const struct rw_mgr *m)
{
	return m->kube;
}

struct rw_met *
rw_mgr_metrics(const struct rw_mgr *m)
{
	return m->met;
}

struct rw_ev *
rw_mgr_events(const struct rw_mgr *m)
{
	return m->ev;
}

const struct rw_mgr_config *
rw_mgr_cfg(const struct rw_mgr *m)
{
	return &m->cfg;
}

int
rw_mgr_show_listener(struct rw_mgr *m, const char *name, struct rw_httpd *s)
{
	for (int i = 0; i < MAX_LISTENERS; i++)
		if (s ? !m->listeners[i]
		      : m->listener_names[i] && !strcmp(m->listener_names[i], name)) {
			m->listeners[i] = s;
			m->listener_names[i] = s ? name : NULL;
			return 0;
		}
	return -ENOSPC;
}

bool
rw_mgr_is_leader(const struct rw_mgr *m)
{
	return m->leading;
}

const char *
rw_mgr_namespace(const struct rw_mgr *m)
{
	return m->ns;
}

int
rw_mgr_exit_code(const struct rw_mgr *m)
{
	return m->exit_code;
}

struct rw_inf *
rw_mgr_informer(struct rw_mgr *m, const struct rw_inf_type *t, const char *label_selector,
		bool cluster_scoped, const char *(*index_key)(const void *, char *, size_t),
		const struct rw_inf_handlers *h)
{
	struct rw_inf *inf = NULL;
	struct rw_inf_opts o;
	if (m->shutting || !t)
		return NULL;
	/* One list+watch per (type, selector, scope), whichever kinds want it. */
	for (int i = 0; i < m->ninf; i++) {
		if (m->inf_cluster_scoped[i] != cluster_scoped ||
		    !rw_inf_same(m->infs[i], t, label_selector))
			continue;
		if ((index_key && rw_inf_add_index(m->infs[i], index_key) != 0) ||
		    (h && rw_inf_add_handlers(m->infs[i], h) != 0)) {
			rw_error("manager", "informer %s: too many indexes or handler sets",
				 t->resource);
			return NULL;
		}
		return m->infs[i];
	}
	if (m->ninf >= MAX_INFS)
		return NULL;
	memset(&o, 0, sizeof(o));
	o.namespaces = cluster_scoped ? NULL : (const char *const *)m->cfg.watch_ns;
	o.label_selector = label_selector;
	o.index_key = index_key;
	if (rw_inf_new(m->kube, t, &o, h, &inf) != 0)
		return NULL;
	m->inf_cluster_scoped[m->ninf] = cluster_scoped;
	m->infs[m->ninf++] = inf;
	if (!m->m_infs)
		m->m_infs =
		    rw_met_gauge(m->met, "raywarden_informers",
				 "Informers (list+watch per namespace unit), by resource: one per "
				 "type, selector and scope however many kinds use it.",
				 (const char *const[]){"resource", NULL});
	rw_met_add(m->m_infs, (const char *const[]){t->resource}, 1);
	if (m->started)
		rw_inf_start(inf);
	return inf;
}

struct rw_agents *
rw_mgr_agents(const struct rw_mgr *m)
{
	return m->agents;
}

int
rw_mgr_informer_count(const struct rw_mgr *m)
{
	return m->ninf;
}

struct rw_wq *
rw_mgr_workqueue(struct rw_mgr *m, const char *name, rw_wq_fn fn, void *ud)
{
	struct rw_wq *q = NULL;
	struct rw_wq_opts o;
	if (m->nwq >= MAX_WQS || m->shutting)
		return NULL;
	memset(&o, 0, sizeof(o));
	o.name = name;
	o.max_inflight = m->cfg.reconcile_concurrency;
	o.paused = !m->leading;
	o.met = m->met;
	if (rw_wq_new(m->loop, &o, fn, ud, &q) != 0)
		return NULL;
	m->wqs[m->nwq++] = q;
	return q;
}

static bool
all_synced(const struct rw_mgr *m)
{
	for (int i = 0; i < m->ninf; i++)
		if (!rw_inf_synced(m->infs[i]))
			return false;
	return true;
}

/* ---- process_* metrics (client_golang's process collector, same names and help) ---- */

/* Read a small /proc file into buf. Its length, or -1. */
static ssize_t
read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len;
	if (fd < 0)
		return -1;
	len = read(fd, buf, n - 1);
	close(fd);
	if (len >= 0)
		buf[len] = '\0';
	return len;
}

static void
collect_process(void *ud)
{
	struct rw_mgr *m = ud;
	char buf[4096];
	struct rw_proc_stat ps;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	long long btime;
	ssize_t len = read_small("/proc/self/stat", buf, sizeof(buf));
	struct rlimit rl;
	DIR *d;
	if (len > 0 && ticks > 0 && rw_proc_stat_parse(buf, (size_t)len, &ps) == 0) {
		rw_met_set(m->m_cpu, NULL, (double)(ps.utime + ps.stime) / (double)ticks);
		rw_met_set(m->m_rss, NULL, (double)ps.rss * (double)page);
		rw_met_set(m->m_vsize, NULL, (double)ps.vsize);
		len = read_small("/proc/stat", buf, sizeof(buf));
		if (len > 0 && rw_proc_btime_parse(buf, (size_t)len, &btime) == 0)
			rw_met_set(m->m_start, NULL,
				   (double)btime + (double)ps.starttime / (double)ticks);
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		long n = 0;
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			n += e->d_name[0] != '.';
		closedir(d);
		rw_met_set(m->m_fds, NULL,
			   (double)(n > 0 ? n - 1 : 0)); /* less the directory's own fd */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		rw_met_set(m->m_maxfds, NULL, (double)rl.rlim_cur);
}

static void
register_process_metrics(struct rw_mgr *m)
{
	m->m_cpu = rw_met_counter(m->met, "process_cpu_seconds_total",
				  "Total user and system CPU time spent in seconds.", NULL);
	m->m_rss = rw_met_gauge(m->met, "process_resident_memory_bytes",
				"Resident memory size in bytes.", NULL);
	m->m_vsize = rw_met_gauge(m->met, "process_virtual_memory_bytes",
				  "Virtual memory size in bytes.", NULL);
	m->m_start = rw_met_gauge(m->met, "process_start_time_seconds",
				  "Start time of the process since unix epoch in seconds.", NULL);
	m->m_fds =
	    rw_met_gauge(m->met, "process_open_fds", "Number of open file descriptors.", NULL);
	m->m_maxfds = rw_met_gauge(m->met, "process_max_fds",
				   "Maximum number of open file descriptors.", NULL);
	rw_met_add_collector(m->met, collect_process, m);
}

static void
health_handler(const struct rw_httpd_req *req, struct rw_httpd_resp *resp, void *ud)
{
	struct rw_mgr *m = ud;
	if (!strcmp(req->path, "/healthz") || !strcmp(req->path, "/livez")) {
		resp->status = m->shutting ? 503 : 200;
		rw_buf_puts(&resp->body, m->shutting ? "shutting down\n" : "ok\n");
	} else if (!strcmp(req->path, "/readyz")) {
		bool ok = !m->shutting && all_synced(m);
		resp->status = ok ? 200 : 503;
		rw_buf_puts(&resp->body, ok ? "ok\n" : "informers not synced\n");
	} else if (!strcmp(req->path, "/metrics")) {
		resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
		rw_met_collect(m->met);
		if (rw_met_render(m->met, &resp->body) != 0) {
			rw_buf_reset(&resp->body);
			resp->status = 500;
			rw_buf_puts(&resp->body, "metrics too large\n");
		} else {
			struct rw_httpd *srv[2 + MAX_LISTENERS] = {m->health, m->metrics};
			const char *names[2 + MAX_LISTENERS] = {"health", "metrics"};
			int n = 2;
			for (int i = 0; i < MAX_LISTENERS; i++)
				if (m->listeners[i]) {
					srv[n] = m->listeners[i];
					names[n++] = m->listener_names[i];
				}
			rw_httpd_render_stats(&resp->body, "raywarden_controller", srv, names, n);
		}
	} else {
		resp->status = 404;
		rw_buf_puts(&resp->body, "not found\n");
	}
}

void
rw_mgr_set_page(struct rw_mgr *m, rw_mgr_page_fn h, void *ud)
{
	m->page = h;
	m->page_ud = h ? ud : NULL;
}

/* The metrics listener: the page's paths first, then everything the health listener answers. */
static void
metrics_handler(const struct rw_httpd_req *req, struct rw_httpd_resp *resp, void *ud)
{
	struct rw_mgr *m = ud;
	if (m->page && (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD")) &&
	    m->page(req, resp, m->page_ud))
		return;
	health_handler(req, resp, ud);
}

static void
leader_start(void *ud)
{
	struct rw_mgr *m = ud;
	int rv;
	m->leading = true;
	rw_info("manager", "leading: starting reconciles");
	/* Only the leader takes agents: their reports must reach the process that acts on them. */
	if (m->agents && (rv = rw_agents_serve(m->agents)) != 0) {
		rw_error("manager", "agent hub: cannot accept agents: %s", uv_strerror(rv));
		rw_mgr_shutdown(m, 1);
		return;
	}
	for (int i = 0; i < m->nwq; i++)
		rw_wq_resume(m->wqs[i]);
}

static void
leader_stop(void *ud)
{
	struct rw_mgr *m = ud;
	m->leading = false;
	for (int i = 0; i < m->nwq; i++)
		rw_wq_pause(m->wqs[i]);
	if (!m->shutting) {
		/* As controller-runtime: a lost election ends the process (exit 1). */
		rw_error("manager", "leader election lost");
		rw_mgr_shutdown(m, 1);
	}
}

static void
signal_cb(uv_signal_t *s, int signum)
{
	struct rw_mgr *m = s->data;
	rw_info("manager", "signal %d: shutting down", signum);
	rw_mgr_shutdown(m, 0);
}

static int
listen_on(struct rw_mgr *m, const char *addr, struct rw_httpd **out, const char *what,
	  rw_httpd_handler handler, char *err, size_t errlen)
{
	char host[256], herr[256];
	int port, rv;
	struct rw_httpd_opts o;
	*out = NULL;
	if (rw_mgr_parse_addr(addr, host, sizeof(host), &port) != 0)
		return -EINVAL;
	if (port < 0)
		return 0;
	memset(&o, 0, sizeof(o));
	o.host = host;
	o.port = port;
	o.max_body = 1024;
	/* A kubelet probe must always find a slot: see rw_httpd_opts for how the caps evict. */
	o.max_conns = 64;
	o.max_conns_per_peer = 8;
	o.head_timeout_ms = 3000;
	o.request_timeout_ms = 5000;
	o.idle_timeout_ms = 5000;
	o.write_timeout_ms = 5000;
	rv = rw_httpd_new(m->loop, &o, handler, m, out, herr, sizeof(herr));
	if (rv) {
		seterr(err, errlen, "%s listener %s: %s", what, addr, herr);
		return rv;
	}
	rw_info("manager", "%s endpoints on %s:%d", what, host, rw_httpd_port(*out));
	return 0;
}

int
rw_mgr_start(struct rw_mgr *m, char *err, size_t errlen)
{
	int rv;
	if (m->started || m->shutting)
		return -EINVAL;
	rv = listen_on(m, m->cfg.health_addr, &m->health, "health", health_handler, err, errlen);
	if (rv == 0)
		rv = listen_on(m, m->cfg.metrics_addr, &m->metrics, "metrics", metrics_handler, err,
			       errlen);
	if (rv)
		return rv;
	uv_signal_init(m->loop, &m->sigterm);
	uv_signal_init(m->loop, &m->sigint);
	m->sigterm.data = m->sigint.data = m;
	uv_signal_start(&m->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&m->sigint, signal_cb, SIGINT);
	m->signals = true;
	/* Before the reconcilers' setup, which register for the agents' reports. */
	if (rw_agents_wanted(&m->cfg)) {
		rv = rw_agents_new(m, &m->agents, err, errlen);
		if (rv)
			return rv;
	}
	for (int i = 0; i < m->nctl; i++) {
		rv = m->ctls[i]->setup ? m->ctls[i]->setup(m, &m->states[i]) : 0;
		if (rv) {
			seterr(err, errlen, "controller %s: setup failed: %s", m->ctls[i]->name,
			       strerror(-rv));
			return rv;
		}
	}
	m->started = true;
	for (int i = 0; i < m->ninf; i++)
		rw_inf_start(m->infs[i]);
	rw_info("manager", "API server %s, watching %s, leader election %s", m->kc.server,
		m->cfg.watch_ns ? "selected namespaces" : "all namespaces",
		m->cfg.leader_elect ? "on" : "off");
	if (m->cfg.leader_elect) {
		struct rw_lease_opts o = {.ns = m->ns,
					  .name = m->cfg.lease_name,
					  .identity = m->identity,
					  .on_start = leader_start,
					  .on_stop = leader_stop,
					  .ud = m};
		rv = rw_lease_new(m->kube, &o, &m->lease);
		if (rv == 0)
			rv = rw_lease_start(m->lease);
		if (rv) {
			seterr(err, errlen, "leader election: %s", strerror(-rv));
			return rv;
		}
	} else {
		leader_start(m);
	}
	return 0;
}

static void
close_rest(struct rw_mgr *m)
{
	for (int i = m->nctl - 1; i >= 0; i--)
		if (m->ctls[i]->teardown && m->states[i])
			m->ctls[i]->teardown(m->states[i]);
	m->nctl = 0;
	for (int i = 0; i < m->ninf; i++)
		rw_inf_free(m->infs[i]);
	m->ninf = 0;
	/* After the informers, whose handlers (admission, owner kinds) point into it. */
	rw_agents_free(m->agents);
	m->agents = NULL;
	for (int i = 0; i < m->nwq; i++)
		rw_wq_free(m->wqs[i], NULL, NULL);
	m->nwq = 0;
	rw_lease_free(m->lease);
	m->lease = NULL;
	rw_ev_free(m->ev);
	m->ev = NULL;
	rw_httpd_free(m->health, NULL, NULL);
	rw_httpd_free(m->metrics, NULL, NULL);
	m->health = m->metrics = NULL;
	if (m->signals) {
		uv_close((uv_handle_t *)&m->sigterm, NULL);
		uv_close((uv_handle_t *)&m->sigint, NULL);
		m->signals = false;
	}
	rw_kube_free(m->kube, NULL, NULL);
	m->kube = NULL;
	rw_info("manager", "stopped");
}

static void
released(void *ud)
{
	close_rest(ud);
}

void
rw_mgr_shutdown(struct rw_mgr *m, int exit_code)
{
	if (!m || m->shutting)
		return;
	m->shutting = true;
	m->exit_code = exit_code;
	for (int i = 0; i < m->ninf; i++)
		rw_inf_stop(m->infs[i]);
	for (int i = 0; i < m->nwq; i++)
		rw_wq_pause(m->wqs[i]);
	m->leading = false;
	if (m->lease)
		rw_lease_release(m->lease, released, m); /* async even when not leading */
	else
		close_rest(m);
}

void
rw_mgr_free(struct rw_mgr *m)
{
	if (!m)
		return;
	rw_met_free(m->met);
	rw_kubecfg_fini(&m->kc);
	free(m->identity);
	free(m->ns);
	free(m);
}

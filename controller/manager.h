/*
 * manager.h - the controller process around the reconcilers: configuration
 * (flags and env like KubeRay's), the API client, leader election, the
 * Event recorder, the metrics registry, the health (/healthz, /readyz) and
 * metrics (/metrics) endpoints, informers and work queues, and an orderly
 * shutdown (SIGTERM/SIGINT: stop informers, release the Lease, close
 * everything, exit 0).
 *
 * Reconcilers plug in as a struct rw_mgr_controller: setup() creates its
 * informers (rw_mgr_informer) and work queue (rw_mgr_workqueue) and keeps its
 * own state; teardown() cancels its API requests and frees that state.
 * Informers start at once (a standby keeps a warm cache); work queues collect
 * keys all the time but only run reconciles while this process leads.
 */
#ifndef RW_MANAGER_H
#define RW_MANAGER_H

#include <stdbool.h>

#include <uv.h>

#include "events.h"
#include "informer.h"
#include "kube.h"
#include "lease.h"
#include "metrics.h"
#include "rw/httpd.h"
#include "rw/log.h"
#include "workqueue.h"

struct rw_mgr_config {
	char **watch_ns;    /* NULL-terminated; NULL = all namespaces */
	bool leader_elect;  /* --leader-elect / --enable-leader-election (true) */
	char *leader_ns;    /* --leader-election-namespace (NULL: resolved) */
	char *lease_name;   /* --leader-election-id (raywarden-controller-leader) */
	char *metrics_addr; /* --metrics-addr (":8080"; "0" disables) */
	char *health_addr;  /* --health-probe-bind-address (":8082"; "0" disables) */
	bool status_page;   /* --status-page: / and /status.json on the metrics listener (true) */
	double qps;	    /* --qps (100) */
	int burst;	    /* --burst (200) */
	enum rw_log_format log_format; /* --log-format text|json, --log-stdout-encoder */
	enum rw_log_level log_level;   /* --log-level */
	char *kubeconfig;	       /* --kubeconfig */
	int reconcile_concurrency;     /* --reconcile-concurrency (64) */
	char *identity;		       /* --leader-election-identity (hostname_random) */
	/* RayCluster reconciler (raycluster.c) and agent hub (agents.c) */
	char *agent_listen;	 /* --agent-listen (tcp://0.0.0.0:8478; "0" disables the hub) */
	char *agent_key_file;	 /* --agent-key-file: the master key (NULL: no agent keys) */
	char *agent_advertise;	 /* --agent-advertise-address (NULL: the controller Service) */
	char *agent_image;	 /* --agent-image (NULL: the builders' default) */
	bool no_agent_injection; /* --no-agent-injection: pods exactly as KubeRay's */
	bool no_readiness_gate;	 /* --no-readiness-gate */
	bool inject_only;	 /* --inject-only: beside another operator (docs/install.md) */
	double gcs_ft_cleanup_s; /* --gcs-ft-cleanup-deadline (300 s) */
	/* Batch scheduler (raycluster/batchsched.h): enum rw_bs_kind, 0 none.
	   --batch-scheduler NAME, or the deprecated --enable-batch-scheduler (volcano). */
	int batch_scheduler;
	bool enable_batch_scheduler;
	/* RayJob reconciler (rayjob.c) */
	double rayjob_default_ttl_s; /* --rayjob-default-ttl (0: off) */
	/* Agent liveness (hub.h): --agent-stale-after (15 s), --agent-head-heartbeat
	 * (1 s), --agent-head-stale-after (3.5 s), --agent-disconnect-grace (1 s). */
	double agent_stale_after_s;
	double agent_head_heartbeat_s;
	double agent_head_stale_after_s;
	double agent_disconnect_grace_s;
	/* Agent hub limits (hub.h): --agent-handshake-timeout (3 s), --agent-frame-timeout
	 * (5 s), --agent-partial-budget-mib (8), --agent-max-conns-per-peer (256, 0
	 * unlimited), --agent-max-pods-per-cluster (10000), --agent-key-overlap (10 m). */
	double agent_handshake_timeout_s;
	double agent_frame_timeout_s;
	int agent_partial_budget_mib;
	int agent_max_conns_per_peer;
	int agent_max_pods_per_cluster;
	double agent_key_overlap_s;
	/* The agent container in Ray pods (raycluster/build_agent.c): --agent-cpu-request,
	 * --agent-memory-request, --agent-cpu-limit, --agent-memory-limit (NULL: 10m, 16Mi,
	 * 100m, 64Mi), --agent-readiness-period-seconds (0: 1 s). */
	char *agent_cpu_request;
	char *agent_memory_request;
	char *agent_cpu_limit;
	char *agent_memory_limit;
	int agent_readiness_period_s;
	/* Admission webhooks (webhook/webhook.h) */
	char *webhook_addr;		/* --webhook-addr ("0": off, the default; e.g. ":9443") */
	char *webhook_service;		/* --webhook-service (raywarden-webhook) */
	char *webhook_secret;		/* --webhook-secret (raywarden-webhook-certs) */
	char *webhook_config;		/* --webhook-configuration (raywarden) */
	char *webhook_cert_hosts;	/* --webhook-cert-hosts: extra names, comma-separated */
	double webhook_cert_validity_s; /* --webhook-cert-validity (90 days) */
	double webhook_ca_validity_s;	/* --webhook-ca-validity (10 years) */
};

typedef const char *(*rw_mgr_getenv_fn)(const char *name, void *ud);

/* Defaults, then env (RAYWARDEN_<FLAG>), then flags. Returns 0, 1 (help/version
 * printed into err as "help"/"version"; --print-rbac as "print-rbac:cluster-role",
 * "print-rbac:leader-election" or "print-rbac:batch-scheduler") or -EINVAL with a message. */
int rw_mgr_config_parse(struct rw_mgr_config *c, int argc, char **argv, rw_mgr_getenv_fn env,
			void *ud, char *err, size_t errlen);
void rw_mgr_config_fini(struct rw_mgr_config *c);
const char *rw_mgr_usage(void);

/* Split "host:port", ":port", "[v6]:port"; "0" or "" disables (port -1). */
int rw_mgr_parse_addr(const char *s, char *host, size_t hostlen, int *port);

struct rw_mgr;
struct rw_httpd;

struct rw_mgr_controller {
	const char *name;
	int (*setup)(struct rw_mgr *m, void **state);
	void (*teardown)(void *state);
};

/* Load the API configuration and create the client; nothing runs yet. */
int rw_mgr_new(uv_loop_t *loop, const struct rw_mgr_config *cfg, struct rw_mgr **out, char *err,
	       size_t errlen);

/* Register a controller (before rw_mgr_start). */
int rw_mgr_add(struct rw_mgr *m, const struct rw_mgr_controller *c);

/* Bind the endpoints, install signal handlers, run setups, start informers and the election. */
int rw_mgr_start(struct rw_mgr *m, char *err, size_t errlen);

/* Begin an orderly shutdown; the loop ends when everything is closed. */
void rw_mgr_shutdown(struct rw_mgr *m, int exit_code);

int rw_mgr_exit_code(const struct rw_mgr *m);

/* Free what is left after the loop ended. NULL-safe. */
void rw_mgr_free(struct rw_mgr *m);

/* For controllers. */
uv_loop_t *rw_mgr_loop(const struct rw_mgr *m);
struct rw_kube *rw_mgr_kube(const struct rw_mgr *m);
struct rw_met *rw_mgr_metrics(const struct rw_mgr *m);
struct rw_ev *rw_mgr_events(const struct rw_mgr *m);
const struct rw_mgr_config *rw_mgr_cfg(const struct rw_mgr *m);
bool rw_mgr_is_leader(const struct rw_mgr *m);
/*
 * Show the connection stats of another HTTP listener on /metrics, labelled
 * listener="<name>" (name must outlive it); s NULL removes it again (before
 * the listener is freed). 0, or -ENOSPC.
 */
int rw_mgr_show_listener(struct rw_mgr *m, const char *name, struct rw_httpd *s);
/*
 * Answer more paths on the metrics listener (the status page): h returns 1
 * when it answered, 0 to leave the path to /metrics' handler. NULL removes it.
 */
typedef int (*rw_mgr_page_fn)(const struct rw_httpd_req *req, struct rw_httpd_resp *resp, void *ud);
void rw_mgr_set_page(struct rw_mgr *m, rw_mgr_page_fn h, void *ud);
/* The namespace the controller runs in (leader election namespace). */
const char *rw_mgr_namespace(const struct rw_mgr *m);

/*
 * An informer owned by the manager: namespaced by --watch-namespace unless
 * cluster_scoped, started by rw_mgr_start (or at once when already started).
 * Informers are shared: a second call for the same type (API path, resource,
 * decoder), label selector and scope returns the existing informer, with h
 * added as another handler set and index_key as another index (the kinds'
 * handler sets run in registration order). rw_inf_index_foreach uses the
 * informer's first index: a kind whose index may not be the first calls
 * rw_inf_index_foreach_by with its own function. Call it from setup (a
 * handler set added later does not see the objects already stored).
 */
struct rw_inf *rw_mgr_informer(struct rw_mgr *m, const struct rw_inf_type *t,
			       const char *label_selector, bool cluster_scoped,
			       const char *(*index_key)(const void *, char *, size_t),
			       const struct rw_inf_handlers *h);

/*
 * The agent hub (agents.h), started before the controllers' setup when agents
 * report (injection on, a master key, --agent-listen not "0"), else NULL.
 */
struct rw_agents;
struct rw_agents *rw_mgr_agents(const struct rw_mgr *m);

/* Informers (distinct list+watches) open, for tests and the log. */
int rw_mgr_informer_count(const struct rw_mgr *m);

/* A work queue owned by the manager: runs reconciles only while leading. */
struct rw_wq *rw_mgr_workqueue(struct rw_mgr *m, const char *name, rw_wq_fn fn, void *ud);

/* Label selector for Ray pods, as KubeRay's cache: ray.io/node-type in (head,worker,redis-cleanup).
 */
#define RW_MGR_RAY_POD_SELECTOR "ray.io/node-type in (head,worker,redis-cleanup)"

#endif

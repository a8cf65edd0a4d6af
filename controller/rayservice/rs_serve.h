/*
 * rs_serve.h - pure RayService logic, part 2: decisions driven by agent
 * reports (struct rw_report, rw/wire.h) where KubeRay polls dashboards and
 * proxies: whether the serve config must be (re)sent to a cluster's head
 * agent, application readiness and statuses in KubeRay's status shape, the
 * ray.io/serve label of head and worker pods, and the reply each agent gets
 * (serve config, proxy expected, drain). No I/O (tests/unit/test_rs_serve.c).
 */
#ifndef RW_RAYSERVICE_SERVE_H
#define RW_RAYSERVICE_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "doc.h"
#include "rs_build.h"
#include "rw/buf.h"
#include "rw/wire.h"

/* KubeRay's DefaultServeAppName: Ray reports the unnamed application as "". */
#define RW_RAYSERVICE_DEFAULT_APP "default"

/*
 * checkIfNeedSubmitServeApplications, driven by the head agent's report
 * instead of KubeRay's in-memory cache. `hash` is the desired config's hash
 * ("" = no config: never). Send when the head has not reported yet or has
 * applied nothing, when the head reports no application (it restarted
 * without GCS FT), when the applied hash differs, or when the last apply
 * failed (the agent retries with its own back-off). *reason (may be NULL)
 * gets a static explanation.
 */
bool rw_rayservice_need_submit(const char *hash, const struct rw_report *head, const char **reason);

/* Ready to take traffic: the head reports serve status with >= 1 app and every app RUNNING. */
bool rw_rayservice_apps_ready(const struct rw_report *head);

/* Does any application report DEPLOY_FAILED or UNHEALTHY (or any deployment UNHEALTHY)? */
bool rw_rayservice_apps_unhealthy(const struct rw_report *head);

/*
 * The first unhealthy application or deployment of a head report, for an
 * Event: "application A is DEPLOY_FAILED: <Serve's message>" or "deployment
 * D of application A is UNHEALTHY: <message>", where the message is the last
 * non-empty line of Serve's (the exception of a traceback), truncated to fit
 * out. Returns
 * false (and "") when rw_rayservice_apps_unhealthy() is false.
 */
bool rw_rayservice_unhealthy_summary(const struct rw_report *head, char *out, size_t n);

/*
 * applicationStatuses as KubeRay writes them: {app: {status, message,
 * serveDeploymentStatuses: {dep: {status, message}}}}, app "" -> "default",
 * empty strings and empty maps omitted (Go omitempty). NULL head or no serve
 * section: an empty object. Returns a new node (NULL on allocation failure).
 */
struct rw_doc_node *rw_rayservice_app_statuses(const struct rw_report *head);

/* The same, appended to out as JSON. 0 or a negative errno. */
int rw_rayservice_write_app_statuses(const struct rw_report *head, struct rw_buf *out);

/* Is the pod's own serve proxy healthy (probe ok, not draining)? NULL: no. */
bool rw_rayservice_proxy_healthy(const struct rw_report *r);

/* The node of the head's serve report whose IP is `ip` (NULL: none). */
const struct rw_serve_node *rw_rayservice_find_node(const struct rw_report *head, const char *ip);

/* Serve-ready endpoints the head report implies: nodes with a HEALTHY proxy (head excluded on
 * request). */
int rw_rayservice_expected_endpoints(const struct rw_report *head, const char *head_ip,
				     bool exclude_head);

enum rw_rayservice_label {
	RW_RAYSERVICE_LABEL_KEEP = 0, /* nothing known: leave ray.io/serve as it is */
	RW_RAYSERVICE_LABEL_FALSE,
	RW_RAYSERVICE_LABEL_TRUE
};

/* The ray.io/serve value for a label decision ("true"/"false", NULL for KEEP). */
const char *rw_rayservice_label_value(enum rw_rayservice_label l);

/* Inputs for one pod of a RayService cluster. */
struct rw_rayservice_pod_in {
	bool is_head;
	const struct rw_report *self; /* the pod's latest report; NULL: none yet (KEEP) */
	bool stale; /* the pod's agent stopped reporting: its proxy counts as down */
	const struct rw_report *head; /* the cluster's head report (for placement); may be NULL */
	const char *pod_ip;	      /* status.podIP ("" or NULL: use self->pod_ip) */
	bool exclude_head;	      /* spec.excludeHeadPodFromServeSvc */
	bool leaving; /* the pod is about to go (scale-down, workersToDelete, old cluster) */
};

struct rw_rayservice_pod_out {
	enum rw_rayservice_label serve; /* ray.io/serve label */
	int proxy_expected;		/* reply: -1 unknown, 0, 1 */
	bool drain;			/* reply: stop taking traffic (NotReady) */
};

/*
 * Per-pod decision. Head: serve label true iff not excluded and its proxy is
 * healthy (KubeRay's updateHeadPodServeLabel, from the report instead of an
 * HTTP check). Worker: true iff its proxy is healthy (KubeRay relies on the
 * readiness probe; a worker without a proxy, e.g. under HeadOnly, is kept
 * out of the serve service without being NotReady). A leaving pod is false
 * and drained. proxy_expected follows the head's report: proxy location
 * Disabled -> none; HeadOnly -> head only; EveryNode (default) -> the head
 * and every node hosting a replica or running a proxy; unknown node -> -1.
 */
void rw_rayservice_pod_decide(const struct rw_rayservice_pod_in *in,
			      struct rw_rayservice_pod_out *out);

/*
 * Fill the reply for a pod of a RayService cluster: drain and
 * proxy_expected from d; on the head (cfg not NULL) serve_config_hash is
 * always the desired hash and serve_config is attached only when
 * rw_rayservice_need_submit says so (the agent ignores a hash it already applied).
 * rp must be zeroed or fini'ed by the caller; free with rw_reply_fini.
 * 0 or -ENOMEM.
 */
int rw_rayservice_fill_reply(const struct rw_rayservice_pod_out *d,
			     const struct rw_rayservice_serve_cfg *cfg,
			     const struct rw_report *head, struct rw_reply *rp);

#endif

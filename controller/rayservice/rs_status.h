/*
 * rs_status.h - pure RayService logic, part 3: which cluster the services
 * point to (traffic switch), the status (KubeRay's calculateStatus and
 * calculateConditions with promotion), numServeEndpoints from EndpointSlices,
 * the deletion schedule of old clusters and what happens when the unhealthy
 * thresholds pass. No I/O (tests/unit/test_rs_status.c, fuzz_rs.c).
 */
#ifndef RW_RAYSERVICE_STATUS_H
#define RW_RAYSERVICE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_build.h"
#include "rs_build.h"
#include "rs_serve.h"
#include "rw/buf.h"
#include "rw/wire.h"

/* ---- endpoints ---- */

/*
 * calculateNumServeEndpointsFromSlices: the number of distinct
 * targetRef.uid among endpoints whose conditions.ready is true, over the
 * EndpointSlices (JSON texts) labelled kubernetes.io/service-name=<serve svc>.
 * Unparsable slices count for nothing. Returns the count (>= 0) or -ENOMEM.
 */
int rw_rayservice_count_endpoints(const char *const *slices, const size_t *lens, size_t n);

/* ---- traffic switch ---- */

/* What the reconciler knows about one cluster's readiness for traffic. */
struct rw_rayservice_ready_in {
	const struct rw_report *head; /* head agent report (NULL: none or stale) */
	int ready_endpoints;	      /* pods of the cluster labelled ray.io/serve=true and Ready */
	int expected_endpoints;	      /* rw_rayservice_expected_endpoints() of the head report */
};

/*
 * A cluster may take traffic when every application on it is RUNNING
 * (rw_rayservice_apps_ready) and its serve endpoints are ready: at least one, and at
 * least as many as the head reports healthy proxies. KubeRay switches on the
 * applications alone, so traffic could reach a cluster whose proxies are not
 * Ready yet (kuberay#1559).
 */
bool rw_rayservice_cluster_can_serve(const struct rw_rayservice_ready_in *in);

/*
 * The cluster the head and serve services should point to: the pending
 * cluster when it can serve, else the active cluster when it can serve,
 * else NULL (leave the services as they are, or do not create them yet).
 */
const char *rw_rayservice_service_target(const struct rw_rayservice *rs, bool active_can_serve,
					 bool pending_can_serve);

/* ---- status ---- */

struct rw_rayservice_status_in {
	const struct rw_raycluster *active;  /* cluster named active in the status (NULL: absent) */
	const struct rw_raycluster *pending; /* cluster named pending (NULL: absent) */
	const struct rw_report *active_head; /* head reports; NULL: no applicationStatuses */
	const struct rw_report *pending_head;
	/* the cluster's head pod has no agent (KubeRay made it): its applicationStatuses of the
	 * current status are kept, as KubeRay keeps them while it cannot ask the dashboard */
	bool active_head_without_agent, pending_head_without_agent;
	const char
	    *svc_cluster;  /* ray.io/cluster selector of the serve service ("" or NULL: none) */
	int num_endpoints; /* rw_rayservice_count_endpoints of the serve service */
	const char *new_suffix; /* 5 random characters for a new pending cluster name */
	bool force_new_cluster; /* rw_rayservice_health said RW_RAYSERVICE_HEALTH_NEW_CLUSTER */
	const struct rw_rayservice_opts *opts;
	const char *now; /* RFC 3339 UTC, e.g. "2026-01-02T03:04:05Z" */
	int64_t now_ms;	 /* the same instant, ms since the epoch (initializing timeout) */
};

/*
 * KubeRay's calculateStatus for rs (its current status is the previous one),
 * appended to out as JSON: observedGeneration; active/pendingServiceStatus
 * with rayClusterStatus copied from the clusters and applicationStatuses
 * from the head reports; promotion (the services point to the pending
 * cluster: active := pending, pending := {}); a new pending cluster name when
 * rw_rayservice_prepare_new_cluster says so (or force_new_cluster); numServeEndpoints;
 * conditions Ready (Initializing / NonZeroServeEndpoints / ZeroServeEndpoints
 * / InitializingTimeout after the ray.io/initializing-timeout annotation) and
 * UpgradeInProgress (BothActivePendingClustersExist / NoPendingCluster /
 * NoActiveCluster), lastTransitionTime kept while the status does not change;
 * serviceStatus "Running" iff Ready. lastUpdateTime is set to now (the caller
 * writes only when rw_rayservice_status_equal says it changed). 0 or -ENOMEM.
 */
int rw_rayservice_status(const struct rw_rayservice *rs, const struct rw_rayservice_status_in *in,
			 struct rw_buf *out);

/*
 * Has rs timed out initializing (Ready False InitializingTimeout)? KubeRay
 * treats that as terminal: only the cleanup of its clusters goes on.
 */
bool rw_rayservice_timed_out(const struct rw_rayservice *rs);

/* The status after a validation failure: Ready False ValidationFailed with the message. */
int rw_rayservice_status_invalid(const struct rw_rayservice *rs, const char *message,
				 const char *now, struct rw_buf *out);

/* Are two statuses equal ignoring lastUpdateTime (rc_status's check)? */
bool rw_rayservice_status_equal(const char *a, size_t alen, const char *b, size_t blen);

/* ---- cleanup of old clusters ---- */

enum rw_rayservice_cleanup {
	RW_RAYSERVICE_CLEANUP_KEEP = 0, /* active or pending: not to be deleted */
	RW_RAYSERVICE_CLEANUP_SCHEDULE, /* first seen unreferenced: remember *at_ms */
	RW_RAYSERVICE_CLEANUP_WAIT,	/* scheduled, not yet due */
	RW_RAYSERVICE_CLEANUP_DELETE	/* due: delete (background propagation) */
};

/*
 * cleanUpRayClusterInstance for one owned cluster: `scheduled_ms` is the
 * deletion time remembered for it (0: none). Unreferenced clusters are
 * scheduled at now + rayClusterDeletionDelaySeconds and deleted once now is
 * past that time; when the RayService itself is being deleted they go at once.
 */
enum rw_rayservice_cleanup rw_rayservice_cleanup_cluster(const struct rw_rayservice *rs,
							 const char *cluster, int64_t scheduled_ms,
							 int64_t now_ms, bool rs_deleting,
							 int64_t *at_ms);

/* ---- unhealthy thresholds ---- */

enum rw_rayservice_health_action {
	RW_RAYSERVICE_HEALTH_OK = 0,	 /* healthy */
	RW_RAYSERVICE_HEALTH_REPORT,	 /* unhealthy: status and a Warning Event, nothing else */
	RW_RAYSERVICE_HEALTH_NEW_CLUSTER /* serviceUnhealthySecondThreshold passed: prepare a new
					    cluster */
};

struct rw_rayservice_health_in {
	const struct rw_report *head; /* the active cluster's head report (NULL: none) */
	bool head_stale;	      /* the head agent stopped reporting */
	int64_t svc_since_ms;	      /* when the head became unreachable (0: it was fine) */
	int64_t dep_since_ms;	      /* when the applications became unhealthy (0: fine) */
	bool pending_exists;	      /* an upgrade (or a previous recovery) is under way */
	const struct rw_rayservice_opts *opts;
	int64_t now_ms;
	bool head_without_agent; /* the head pod has no agent (KubeRay made it): no report can come
				  */
};

struct rw_rayservice_health {
	enum rw_rayservice_health_action action;
	bool head_unreachable;	  /* no fresh report, or the serve API does not answer */
	bool apps_unhealthy;	  /* DEPLOY_FAILED / UNHEALTHY */
	int64_t svc_since_ms;	  /* store for the next pass (0 when reachable) */
	int64_t dep_since_ms;	  /* store for the next pass (0 when healthy) */
	const char *event_reason; /* Warning Event reason, NULL when healthy */
	char message[256];	  /* Event / log text */
};

/*
 * What raywarden does with deploymentUnhealthySecondThreshold and
 * serviceUnhealthySecondThreshold (KubeRay accepts and ignores both):
 * unhealthy applications and an unreachable head are always reported at
 * once (REPORT). Only when the user set serviceUnhealthySecondThreshold and
 * the active cluster's head has been unreachable for that long, with no
 * pending cluster and zero-downtime upgrades allowed, the answer is
 * NEW_CLUSTER: a replacement cluster is prepared and traffic moves when it
 * is ready. Unhealthy applications never trigger a new cluster (Serve
 * already restarts unhealthy replicas; a config that fails fails the same
 * way on a new cluster); deploymentUnhealthySecondThreshold only changes the
 * Event from "unhealthy" to "unhealthy for longer than the threshold".
 */
void rw_rayservice_health(const struct rw_rayservice *rs, const struct rw_rayservice_health_in *in,
			  struct rw_rayservice_health *out);

/*
 * Where the traffic is while a pending cluster's applications fail, for the
 * Warning Event about them: on the active cluster when it exists, nowhere
 * when there is none yet (the Serve service is created for the first
 * cluster only once it can serve) or when the one the status names is gone.
 * active: the status' active cluster name ("" or NULL: none); active_exists:
 * that RayCluster is in the cache.
 */
void rw_rayservice_pending_traffic(const char *active, bool active_exists, char *out, size_t n);

/* ---- suspend (KubeRay's handleSuspend) ---- */

/*
 * Whether the RayService is being suspended: spec.suspend is true, or a
 * suspend is already in flight (condition Suspending True). As in KubeRay a
 * suspend is atomic once started: flipping spec.suspend back does not stop
 * it; the clusters and services are deleted first.
 */
bool rw_rayservice_suspend_active(const struct rw_rayservice *rs);

/*
 * Whether a completed suspend is to be undone: condition Suspended True and
 * spec.suspend false. The caller then writes rw_rayservice_suspend_conds(..,
 * RW_RAYSERVICE_RESUMED) once and reconciles normally from the next pass.
 */
bool rw_rayservice_resume_due(const struct rw_rayservice *rs);

enum rw_rayservice_suspend_phase {
	RW_RAYSERVICE_SUSPENDING, /* owned clusters or services remain */
	RW_RAYSERVICE_SUSPENDED,  /* all gone */
	RW_RAYSERVICE_RESUMED	  /* spec.suspend turned false after a completed suspend */
};

/*
 * Sets the suspend conditions in the status object st as KubeRay does:
 * SUSPENDING: Suspending True and Ready False (SuspendInProgress);
 * SUSPENDED: Suspending, UpgradeInProgress and Ready False and, when
 * spec.suspend is still true, Suspended True (all SuspendComplete); a suspend
 * whose spec.suspend was flipped back completes without Suspended and the
 * service comes back up; RESUMED: Suspended False (RayServiceResumed).
 * Conditions are kept, never removed. 0, or -ENOMEM.
 */
int rw_rayservice_suspend_conds(struct rw_doc_node *st, const struct rw_rayservice *rs,
				enum rw_rayservice_suspend_phase phase, const char *now);

#endif

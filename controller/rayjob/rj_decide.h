/*
 * rj_decide.h - the RayJob lifecycle as one pure function: from the RayJob's
 * status and what the caches and the head agent show, the next status, the
 * actions to take and the Events to emit. The reconciler (rayjob.c) gathers
 * the inputs and carries out the outputs; this file does no I/O, so every
 * transition is a row of a table test (tests/unit/test_rj_decide.c).
 *
 * The states and their order of checks follow KubeRay's RayJob controller
 * (rayjob_controller.go, v1.5; docs/rayjob.md). Where raywarden differs it is
 * on purpose and said at the place:
 * - the Ray job's status comes from the head agent's reports, never from a
 *   dashboard call by the controller;
 * - a Ray job that Ray reports RUNNING is never ended or failed because the
 *   submitter finished (a dropped `ray job logs --follow`);
 * - a head lost while the job runs fails the job (then retries per
 *   backoffLimit) within seconds instead of leaving it Running.
 */
#ifndef RW_RJ_DECIDE_H
#define RW_RJ_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rj_model.h"

/* status.jobDeploymentStatus values (KubeRay's spelling; "" is New). */
#define RW_RJ_NEW ""
#define RW_RJ_INITIALIZING "Initializing"
#define RW_RJ_WAITING "Waiting"
#define RW_RJ_RUNNING "Running"
#define RW_RJ_COMPLETE "Complete"
#define RW_RJ_FAILED "Failed"
#define RW_RJ_VALIDATION_FAILED "ValidationFailed"
#define RW_RJ_SUSPENDING "Suspending"
#define RW_RJ_SUSPENDED "Suspended"
#define RW_RJ_RETRYING "Retrying"

/* KubeRay's timeouts (env names as KubeRay's; docs/rayjob.md). */
#define RW_RJ_SUBMITTER_FINISHED_TIMEOUT_MS 30000u /* DefaultSubmitterFinishedTimeout */
#define RW_RJ_GRACE_DEFAULT_S 300 /* RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS */
#define RW_RJ_STATUS_CHECK_DEFAULT_S 300 /* RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS */
/* status.message of a running job whose head has no agent (docs/migrating-from-kuberay.md) */
#define RW_RJ_NO_AGENT_MESSAGE                                                                     \
	"The head pod has no raywarden agent that reports (created by KubeRay: its agent is "      \
	"being attached; or under --no-agent-injection): "                                         \
	"raywarden cannot see the Ray job's progress"
/* KubeRay's period for every non-terminal RayJob (RayJobDefaultRequeueDuration). */
#define RW_RJ_REQUEUE_MS 3000u

/* What the status says (strings point into the caller's object). */
struct rw_rj_status {
	const char *deployment; /* jobDeploymentStatus, "" when absent */
	const char *job_status; /* jobStatus, "" when absent */
	const char *job_id, *cluster_name, *dashboard_url, *reason, *message;
	int64_t start_ms, end_ms; /* startTime, endTime; 0 absent */
	int64_t succeeded, failed;
	int64_t check_fail_start_ms; /* jobStatusCheckFailureStartTime; 0 absent */
};

/* The RayJob's spec as the lifecycle needs it. */
struct rw_rj_spec {
	const char *name; /* the RayJob's, prefix of generated names */
	enum rw_rayjob_mode mode;
	bool has_selector;
	const char *spec_job_id; /* spec.jobId or NULL */
	const char *selector_cluster;
	bool suspend, shutdown_after_finishes, delete_self_env;
	int64_t ttl_s, active_deadline_s, pre_running_deadline_s, backoff_limit;
	/* --rayjob-default-ttl in ms, 0 off: for a RayJob without a deletion
	 * policy of its own (rw_rj_own_deletion_policy) */
	int64_t default_ttl_ms;
	bool autoscaling;
	/* deletion rules (rules or legacy style), already validated */
	int nrules;
	const struct rw_rayjob_rule *rules;
	bool legacy_strategy;
};

enum rw_rj_submitter {
	RW_RJ_SUB_NONE = 0, /* no submitter (not created, or gone) */
	RW_RJ_SUB_RUNNING,
	RW_RJ_SUB_SUCCEEDED,
	RW_RJ_SUB_FAILED,
};

/* What the Ray job looks like to the head agent. */
enum rw_rj_ray {
	RW_RJ_RAY_UNKNOWN = 0, /* no fresh report about this job */
	RW_RJ_RAY_NOT_FOUND,   /* the agent asked: Ray does not know it */
	RW_RJ_RAY_KNOWN,       /* status below */
};

/* The world around the RayJob, from the caches and the hub. */
struct rw_rj_world {
	int64_t now_ms;
	const char *suffix; /* 5 fresh random characters, for generated names */
	bool deleting;	    /* deletionTimestamp set */
	int64_t deleted_at_ms;
	/* the RayCluster named in the status (or by the selector) */
	bool cluster_exists, cluster_deleting, cluster_ready;
	bool cluster_owned;	   /* its controller ownerReference is this RayJob */
	bool cluster_pods_exist;   /* pods labelled with its name remain (deleted or not) */
	bool workers_suspended;	   /* every worker group has suspend: true */
	const char *dashboard_url; /* computed from the cluster's head Service, or NULL */
	/* the submitter (K8sJobMode: the batch Job; SidecarMode: the container) */
	enum rw_rj_submitter submitter;
	bool submitter_exists; /* the batch Job object exists (deleting or not) */
	int64_t submitter_finished_ms;
	/* the head: its pod and its agent */
	bool head_pod_exists;
	bool head_reporting; /* a fresh report from the head agent */
	bool head_ray_ready; /* the head pod's agent finds its Ray node healthy (ray.io/agent-ready)
			      */
	bool head_lost;	     /* the head pod or its agent went away while the job ran */
	bool head_without_agent; /* the head pod has no agent (KubeRay made it), or its agent,
				    attached as an ephemeral container, has not reported yet */
	const char *head_lost_why;
	/* the Ray job, per the head agent */
	enum rw_rj_ray ray;
	const char *ray_status; /* PENDING RUNNING STOPPED SUCCEEDED FAILED */
	const char *ray_message;
	const char *ray_last_error; /* the driver's last error line, or NULL */
	int64_t ray_start_ms, ray_end_ms;
	const char *submit_error; /* HTTPMode: the agent's last submission failure, or NULL */
	int64_t grace_s, status_check_s;
};

/* Actions, as bits. */
enum {
	RW_RJ_ACT_CREATE_CLUSTER = 1u << 0,
	RW_RJ_ACT_CREATE_SUBMITTER = 1u << 1,
	RW_RJ_ACT_DELETE_CLUSTER = 1u << 2,
	RW_RJ_ACT_DELETE_SUBMITTER = 1u << 3,
	RW_RJ_ACT_DELETE_SELF = 1u << 4,
	RW_RJ_ACT_SUSPEND_WORKERS = 1u << 5,
	RW_RJ_ACT_SUBMIT = 1u << 6,   /* HTTPMode: the head agent submits */
	RW_RJ_ACT_STOP_JOB = 1u << 7, /* the head agent stops the Ray job */
	RW_RJ_ACT_WATCH = 1u << 8,    /* the head agent follows the job id */
	RW_RJ_ACT_REMOVE_FINALIZER = 1u << 9,
	RW_RJ_ACT_WRITE_STATUS = 1u << 10, /* the status below differs from the old */
	RW_RJ_ACT_COPY_CLUSTER_STATUS = 1u << 11,
	RW_RJ_ACT_KEEP_LOG = 1u << 12, /* store the driver's log tail (terminal) */
};

#define RW_RJ_MAX_EVENTS 4

struct rw_rj_event {
	bool warning;
	char reason[48];
	char msg[384];
};

/* The next status: strings are owned copies (fixed buffers). */
struct rw_rj_next {
	char deployment[24], job_status[16], reason[64], message[512];
	char job_id[128], cluster_name[128], dashboard_url[320];
	int64_t start_ms, end_ms, succeeded, failed, check_fail_start_ms;
	int64_t ray_start_ms, ray_end_ms;
	unsigned actions;
	uint64_t requeue_ms; /* 0: no requeue asked */
	bool steady;	     /* nothing to wait for: no periodic requeue */
	struct rw_rj_event ev[RW_RJ_MAX_EVENTS];
	int nev;
	/* the finished attempt, for kuberay_job_execution_duration_seconds */
	bool finished_attempt;
};

/*
 * One decision. cur: the status now; spec, w: the inputs; out: the next
 * status, actions and Events. Pure.
 */
void rw_rj_decide(const struct rw_rj_status *cur, const struct rw_rj_spec *spec,
		  const struct rw_rj_world *w, struct rw_rj_next *out);

/*
 * SidecarMode: has the head pod's ray-job-submitter container ended? The
 * shared pod informer keeps the Ray container's state only, but a container
 * that ended is not ready, and the kubelet names the unready containers in
 * the pod's Ready condition ("containers with unready status: [a b]"). The
 * submitter listed there while the Ray container (ray_container, the first)
 * is not means it ended; both listed is a pod still starting. ready is the
 * condition's enum rw_inf_cond value (2: False). Pure.
 */
bool rw_rj_sidecar_ended(int ready, const char *message, const char *ray_container);

/*
 * Does the RayJob say how it is cleaned up once finished? shutdownAfterJobFinishes:
 * true (whatever ttlSecondsAfterFinished) or a deletionStrategy of either style
 * (rules already validated, so nrules > 0; DeleteNone rules included: that is
 * how one RayJob opts out of the default TTL). shutdownAfterJobFinishes: false
 * is no policy: it is KubeRay's default, and Go clients drop it (omitempty),
 * so written or not cannot be told apart. Pure.
 */
bool rw_rj_own_deletion_policy(const struct rw_rj_spec *spec);

/* Is this jobDeploymentStatus terminal (Complete, Failed)? */
bool rw_rj_terminal(const char *deployment);

/* Is this Ray job status terminal (STOPPED, SUCCEEDED, FAILED)? */
bool rw_rj_ray_terminal(const char *status);

#endif

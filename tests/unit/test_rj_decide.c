/*
 * test_rj_decide.c - the RayJob lifecycle (rj_decide.h) as tables: each row
 * is a status, a spec and a world, and the expected next deployment status,
 * reason and actions.
 */
#include <string.h>

#include "rj_decide.h"
#include "rwtest.h"

#define NOW 1700000000000LL

/* A row: the inputs as small overrides of a running K8sJobMode RayJob. */
struct row {
	const char *name;
	/* status */
	const char *deployment, *job_status, *reason;
	int64_t start_ago_ms, end_ago_ms, check_fail_ago_ms, failed;
	/* spec */
	enum rw_rayjob_mode mode;
	const char *spec_job_id, *selector;
	bool suspend, shutdown, delete_self_env;
	int64_t ttl_s, active_deadline_s, pre_running_deadline_s, backoff_limit;
	int nrules;
	struct rw_rayjob_rule rules[3];
	/* world */
	bool deleting, no_cluster, cluster_not_ready, cluster_deleting, pods_left;
	bool workers_suspended, head_lost, silent, head_ray_ready;
	enum rw_rj_submitter submitter;
	bool submitter_object;
	int64_t submitter_finished_ago_ms;
	enum rw_rj_ray ray;
	const char *ray_status;
	int64_t ray_end_ago_ms;
	/* expected */
	const char *want_deployment, *want_reason;
	unsigned want_actions, not_actions;
	int64_t want_failed;
	const char *want_job_id, *want_cluster;
	const char *want_event;
	const char *want_job_status;
};

static void
run(const struct row *r)
{
	struct rw_rj_status cur = {
	    .deployment = r->deployment ? r->deployment : "",
	    .job_status = r->job_status ? r->job_status : "",
	    .job_id = "job-1-abcde",
	    .cluster_name = r->selector ? r->selector : "job-1-abcde",
	    .dashboard_url = "job-1-abcde-head-svc.ns.svc.cluster.local:8265",
	    .reason = r->reason ? r->reason : "",
	    .message = "",
	    .start_ms = r->start_ago_ms ? NOW - r->start_ago_ms : NOW - 5000,
	    .end_ms = r->end_ago_ms ? NOW - r->end_ago_ms : 0,
	    .failed = r->failed,
	    .check_fail_start_ms = r->check_fail_ago_ms ? NOW - r->check_fail_ago_ms : 0,
	};
	struct rw_rj_spec spec = {
	    .name = "job-1",
	    .mode = r->mode,
	    .has_selector = r->selector != NULL,
	    .selector_cluster = r->selector,
	    .spec_job_id = r->spec_job_id,
	    .suspend = r->suspend,
	    .shutdown_after_finishes = r->shutdown,
	    .delete_self_env = r->delete_self_env,
	    .ttl_s = r->ttl_s,
	    .active_deadline_s = r->active_deadline_s,
	    .pre_running_deadline_s = r->pre_running_deadline_s,
	    .backoff_limit = r->backoff_limit,
	    .nrules = r->nrules,
	    .rules = r->rules,
	};
	struct rw_rj_world w = {
	    .now_ms = NOW,
	    .suffix = "zq2x7",
	    .deleting = r->deleting,
	    .deleted_at_ms = NOW - 1000,
	    .cluster_exists = !r->no_cluster,
	    .cluster_deleting = r->cluster_deleting,
	    .cluster_ready = !r->cluster_not_ready,
	    .cluster_owned = r->selector == NULL,
	    .cluster_pods_exist = r->pods_left,
	    .workers_suspended = r->workers_suspended,
	    .dashboard_url = "job-1-abcde-head-svc.ns.svc.cluster.local:8265",
	    .submitter = r->submitter,
	    .submitter_exists = r->submitter_object,
	    .submitter_finished_ms =
		r->submitter_finished_ago_ms ? NOW - r->submitter_finished_ago_ms : 0,
	    .head_pod_exists = !r->no_cluster,
	    .head_reporting = !r->silent && !r->head_lost,
	    .head_lost = r->head_lost,
	    .head_ray_ready = r->head_ray_ready,
	    .head_lost_why = "head pod job-1-abcde-head deleted",
	    .ray = r->ray,
	    .ray_status = r->ray_status,
	    .ray_message = "",
	    .ray_last_error = "ValueError: boom",
	    .ray_end_ms = r->ray_end_ago_ms ? NOW - r->ray_end_ago_ms : 0,
	    .grace_s = RW_RJ_GRACE_DEFAULT_S,
	    .status_check_s = RW_RJ_STATUS_CHECK_DEFAULT_S,
	};
	struct rw_rj_next out;
	int failed_before = rwt_failed;
	rwt_failed = 0;
	rw_rj_decide(&cur, &spec, &w, &out);
	CHECK_EQ_STR(out.deployment, r->want_deployment);
	if (r->want_reason)
		CHECK_EQ_STR(out.reason, r->want_reason);
	CHECK_EQ_INT(out.actions & r->want_actions, r->want_actions);
	CHECK_EQ_INT(out.actions & r->not_actions, 0);
	if (r->want_failed)
		CHECK_EQ_INT(out.failed, r->want_failed);
	if (r->want_job_id)
		CHECK_EQ_STR(out.job_id, r->want_job_id);
	if (r->want_cluster)
		CHECK_EQ_STR(out.cluster_name, r->want_cluster);
	if (r->want_job_status)
		CHECK_EQ_STR(out.job_status, r->want_job_status);
	if (r->want_event) {
		bool seen = false;
		for (int i = 0; i < out.nev; i++)
			seen |= strcmp(out.ev[i].reason, r->want_event) == 0;
		CHECK(seen);
	}
	/* Invariants: a changed status is written; a steady object asks no period. */
	if (strcmp(out.deployment, cur.deployment) != 0)
		CHECK(out.actions & RW_RJ_ACT_WRITE_STATUS);
	if (rwt_failed)
		fprintf(stderr, "  ^ in row \"%s\"\n", r->name);
	rwt_failed |= failed_before;
}

#define ALL_CREATE (RW_RJ_ACT_CREATE_CLUSTER | RW_RJ_ACT_CREATE_SUBMITTER)

static const struct row rows[] = {
    /* New: ids to the status before anything is created */
    {.name = "new: ids first",
     .deployment = "",
     .want_deployment = "Initializing",
     .want_actions = RW_RJ_ACT_WRITE_STATUS,
     .not_actions = ALL_CREATE,
     .want_job_id = "job-1-zq2x7",
     .want_cluster = "job-1-zq2x7"},
    {.name = "new: spec.jobId kept",
     .deployment = "",
     .spec_job_id = "mine",
     .want_deployment = "Initializing",
     .want_job_id = "mine"},
    {.name = "new: interactive has no id yet",
     .deployment = "",
     .mode = RW_RAYJOB_INTERACTIVE,
     .want_deployment = "Initializing",
     .want_job_id = ""},
    {.name = "new: selector names the cluster",
     .deployment = "",
     .selector = "shared",
     .want_deployment = "Initializing",
     .want_cluster = "shared"},
    {.name = "new: suspended at once",
     .deployment = "",
     .suspend = true,
     .shutdown = true,
     .want_deployment = "Suspended",
     .not_actions = ALL_CREATE},
    /* Initializing */
    {.name = "init: create the cluster",
     .deployment = "Initializing",
     .no_cluster = true,
     .want_deployment = "Initializing",
     .want_actions = RW_RJ_ACT_CREATE_CLUSTER},
    {.name = "init: selector cluster missing",
     .deployment = "Initializing",
     .selector = "shared",
     .no_cluster = true,
     .want_deployment = "Initializing",
     .not_actions = RW_RJ_ACT_CREATE_CLUSTER,
     .want_event = "RayClusterNotFound"},
    {.name = "init: wait for ready",
     .deployment = "Initializing",
     .cluster_not_ready = true,
     .want_deployment = "Initializing",
     .want_actions = RW_RJ_ACT_COPY_CLUSTER_STATUS,
     .not_actions = RW_RJ_ACT_CREATE_SUBMITTER},
    {.name = "init: k8s job -> submitter, Running",
     .deployment = "Initializing",
     .want_deployment = "Running",
     .want_actions = RW_RJ_ACT_CREATE_SUBMITTER},
    {.name = "init: http -> Running",
     .deployment = "Initializing",
     .mode = RW_RAYJOB_HTTP,
     .want_deployment = "Running",
     .not_actions = RW_RJ_ACT_CREATE_SUBMITTER},
    {.name = "init: sidecar -> Running",
     .deployment = "Initializing",
     .mode = RW_RAYJOB_SIDECAR,
     .want_deployment = "Running",
     .not_actions = RW_RJ_ACT_CREATE_SUBMITTER},
    /* SidecarMode: the ended submitter leaves the head pod unready for good */
    {.name = "init: sidecar, cluster not ready, head's Ray healthy -> Running",
     .deployment = "Initializing",
     .mode = RW_RAYJOB_SIDECAR,
     .cluster_not_ready = true,
     .head_ray_ready = true,
     .want_deployment = "Running"},
    {.name = "init: sidecar, cluster not ready, head's Ray not up",
     .deployment = "Initializing",
     .mode = RW_RAYJOB_SIDECAR,
     .cluster_not_ready = true,
     .want_deployment = "Initializing"},
    {.name = "init: k8s job waits for the cluster whatever the head",
     .deployment = "Initializing",
     .cluster_not_ready = true,
     .head_ray_ready = true,
     .want_deployment = "Initializing",
     .not_actions = RW_RJ_ACT_CREATE_SUBMITTER},
    {.name = "init: interactive -> Waiting",
     .deployment = "Initializing",
     .mode = RW_RAYJOB_INTERACTIVE,
     .want_deployment = "Waiting"},
    {.name = "init: suspend",
     .deployment = "Initializing",
     .suspend = true,
     .shutdown = true,
     .want_deployment = "Suspending"},
    {.name = "init: active deadline",
     .deployment = "Initializing",
     .active_deadline_s = 10,
     .start_ago_ms = 11000,
     .cluster_not_ready = true,
     .want_deployment = "Failed",
     .want_reason = "DeadlineExceeded",
     .want_failed = 1},
    {.name = "init: pre-running deadline retries",
     .deployment = "Initializing",
     .pre_running_deadline_s = 5,
     .start_ago_ms = 6000,
     .backoff_limit = 1,
     .cluster_not_ready = true,
     .want_deployment = "Retrying",
     .want_failed = 1},
    {.name = "init: deadline not retried",
     .deployment = "Initializing",
     .active_deadline_s = 5,
     .start_ago_ms = 6000,
     .backoff_limit = 3,
     .want_deployment = "Failed",
     .want_reason = "DeadlineExceeded"},
    /* Waiting */
    {.name = "waiting: no id",
     .deployment = "Waiting",
     .mode = RW_RAYJOB_INTERACTIVE,
     .want_deployment = "Waiting"},
    {.name = "waiting: id set",
     .deployment = "Waiting",
     .mode = RW_RAYJOB_INTERACTIVE,
     .spec_job_id = "user-1",
     .want_deployment = "Running",
     .want_job_id = "user-1"},
    /* Running */
    {.name = "running: ray running",
     .deployment = "Running",
     .job_status = "PENDING",
     .submitter = RW_RJ_SUB_RUNNING,
     .submitter_object = true,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "RUNNING",
     .want_deployment = "Running",
     .want_actions = RW_RJ_ACT_WATCH,
     .want_event = "JobRunning"},
    {.name = "running: succeeded, submitter still tailing",
     .deployment = "Running",
     .job_status = "RUNNING",
     .submitter = RW_RJ_SUB_RUNNING,
     .submitter_object = true,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "SUCCEEDED",
     .ray_end_ago_ms = 1000,
     .want_deployment = "Running"},
    {.name = "running: succeeded, submitter done",
     .deployment = "Running",
     .submitter = RW_RJ_SUB_SUCCEEDED,
     .submitter_object = true,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "SUCCEEDED",
     .want_deployment = "Complete",
     .want_actions = RW_RJ_ACT_KEEP_LOG,
     .want_event = "JobSucceeded"},
    {.name = "running: grace exceeded",
     .deployment = "Running",
     .submitter = RW_RJ_SUB_RUNNING,
     .submitter_object = true,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "FAILED",
     .ray_end_ago_ms = 301000,
     .want_deployment = "Failed",
     .want_reason = "JobDeploymentStatusTransitionGracePeriodExceeded"},
    {.name = "running: http succeeded",
     .deployment = "Running",
     .mode = RW_RAYJOB_HTTP,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "SUCCEEDED",
     .want_deployment = "Complete"},
    {.name = "running: stopped is Complete",
     .deployment = "Running",
     .mode = RW_RAYJOB_HTTP,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "STOPPED",
     .want_deployment = "Complete",
     .want_event = "JobStopped"},
    {.name = "running: driver failed",
     .deployment = "Running",
     .mode = RW_RAYJOB_HTTP,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "FAILED",
     .want_deployment = "Failed",
     .want_reason = "AppFailed",
     .want_failed = 1,
     .want_event = "JobFailed"},
    {.name = "running: failed with retries left",
     .deployment = "Running",
     .mode = RW_RAYJOB_HTTP,
     .backoff_limit = 2,
     .failed = 1,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "FAILED",
     .want_deployment = "Retrying",
     .want_failed = 2,
     .want_event = "Retrying"},
    {.name = "running: last attempt failed",
     .deployment = "Running",
     .mode = RW_RAYJOB_HTTP,
     .backoff_limit = 2,
     .failed = 2,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "FAILED",
     .want_deployment = "Failed",
     .want_failed = 3},
    {.name = "running: selector never retries",
     .deployment = "Running",
     .mode = RW_RAYJOB_HTTP,
     .selector = "shared",
     .backoff_limit = 2,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "FAILED",
     .want_deployment = "Failed"},
    /* A dropped log follow never ends a job Ray reports running (#4921). */
    {.name = "running: submitter done, ray running",
     .deployment = "Running",
     .submitter = RW_RJ_SUB_SUCCEEDED,
     .submitter_object = true,
     .submitter_finished_ago_ms = 120000,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "RUNNING",
     .want_deployment = "Running"},
    {.name = "running: submitter failed, ray running",
     .deployment = "Running",
     .submitter = RW_RJ_SUB_FAILED,
     .submitter_object = true,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "RUNNING",
     .want_deployment = "Running"},
    {.name = "running: submitter done, job unknown to ray 10 s",
     .deployment = "Running",
     .submitter = RW_RJ_SUB_SUCCEEDED,
     .submitter_object = true,
     .submitter_finished_ago_ms = 10000,
     .ray = RW_RJ_RAY_NOT_FOUND,
     .want_deployment = "Running"},
    {.name = "running: submitter done, job unknown to ray 31 s",
     .deployment = "Running",
     .submitter = RW_RJ_SUB_SUCCEEDED,
     .submitter_object = true,
     .submitter_finished_ago_ms = 31000,
     .ray = RW_RJ_RAY_NOT_FOUND,
     .want_deployment = "Failed",
     .want_reason = "AppFailed"},
    {.name = "running: submitter failed, nothing submitted",
     .deployment = "Running",
     .submitter = RW_RJ_SUB_FAILED,
     .submitter_object = true,
     .ray = RW_RJ_RAY_NOT_FOUND,
     .want_deployment = "Failed",
     .want_reason = "SubmissionFailed"},
    {.name = "running: http not found -> submit",
     .deployment = "Running",
     .mode = RW_RAYJOB_HTTP,
     .ray = RW_RJ_RAY_NOT_FOUND,
     .want_deployment = "Running",
     .want_actions = RW_RJ_ACT_SUBMIT},
    {.name = "running: submitter deleted by hand",
     .deployment = "Running",
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "RUNNING",
     .want_deployment = "Running",
     .want_actions = RW_RJ_ACT_CREATE_SUBMITTER},
    /* A head lost after Ray reported the end (waiting for the submitter's logs) keeps the outcome.
     */
    {.name = "running: head lost after SUCCEEDED",
     .deployment = "Running",
     .job_status = "SUCCEEDED",
     .submitter = RW_RJ_SUB_RUNNING,
     .submitter_object = true,
     .head_lost = true,
     .want_deployment = "Complete",
     .want_event = "JobSucceeded"},
    {.name = "running: cluster gone after FAILED",
     .deployment = "Running",
     .job_status = "FAILED",
     .no_cluster = true,
     .want_deployment = "Failed",
     .want_reason = "AppFailed"},
    {.name = "running: head lost",
     .deployment = "Running",
     .job_status = "RUNNING",
     .submitter = RW_RJ_SUB_RUNNING,
     .submitter_object = true,
     .head_lost = true,
     .want_deployment = "Failed",
     .want_reason = "AppFailed",
     .want_event = "HeadLost"},
    {.name = "running: cluster gone",
     .deployment = "Running",
     .job_status = "RUNNING",
     .no_cluster = true,
     .backoff_limit = 1,
     .want_deployment = "Retrying",
     .want_event = "HeadLost"},
    {.name = "running: silent head starts the check clock",
     .deployment = "Running",
     .silent = true,
     .submitter = RW_RJ_SUB_RUNNING,
     .submitter_object = true,
     .want_deployment = "Running",
     .want_actions = RW_RJ_ACT_WRITE_STATUS},
    {.name = "running: status check timeout",
     .deployment = "Running",
     .silent = true,
     .check_fail_ago_ms = 301000,
     .backoff_limit = 3,
     .submitter = RW_RJ_SUB_RUNNING,
     .submitter_object = true,
     .want_deployment = "Failed",
     .want_reason = "JobStatusCheckTimeoutExceeded"},
    {.name = "running: active deadline stops the job",
     .deployment = "Running",
     .job_status = "RUNNING",
     .active_deadline_s = 60,
     .start_ago_ms = 61000,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "RUNNING",
     .want_deployment = "Failed",
     .want_reason = "DeadlineExceeded",
     .want_actions = RW_RJ_ACT_STOP_JOB},
    {.name = "running: suspend",
     .deployment = "Running",
     .suspend = true,
     .shutdown = true,
     .want_deployment = "Suspending"},
    /* Suspending and Retrying */
    {.name = "suspending: delete both",
     .deployment = "Suspending",
     .suspend = true,
     .submitter_object = true,
     .want_deployment = "Suspending",
     .want_actions = RW_RJ_ACT_DELETE_CLUSTER | RW_RJ_ACT_DELETE_SUBMITTER},
    {.name = "suspending: done",
     .deployment = "Suspending",
     .suspend = true,
     .no_cluster = true,
     .want_deployment = "Suspended",
     .want_job_id = "",
     .want_cluster = ""},
    {.name = "retrying: pods still there",
     .deployment = "Retrying",
     .no_cluster = true,
     .pods_left = true,
     .want_deployment = "Retrying",
     .not_actions = RW_RJ_ACT_DELETE_CLUSTER},
    {.name = "retrying: gone -> New",
     .deployment = "Retrying",
     .no_cluster = true,
     .want_deployment = "",
     .want_job_id = ""},
    {.name = "suspended: stays",
     .deployment = "Suspended",
     .suspend = true,
     .no_cluster = true,
     .want_deployment = "Suspended"},
    {.name = "suspended: resume",
     .deployment = "Suspended",
     .no_cluster = true,
     .want_deployment = ""},
    /* Terminal */
    {.name = "complete: no policy",
     .deployment = "Complete",
     .job_status = "SUCCEEDED",
     .end_ago_ms = 1000,
     .want_deployment = "Complete",
     .not_actions = RW_RJ_ACT_DELETE_CLUSTER},
    {.name = "complete: ttl pending",
     .deployment = "Complete",
     .job_status = "SUCCEEDED",
     .shutdown = true,
     .ttl_s = 10,
     .end_ago_ms = 5000,
     .want_deployment = "Complete",
     .not_actions = RW_RJ_ACT_DELETE_CLUSTER},
    {.name = "complete: ttl passed",
     .deployment = "Complete",
     .job_status = "SUCCEEDED",
     .shutdown = true,
     .ttl_s = 10,
     .end_ago_ms = 11000,
     .want_deployment = "Complete",
     .want_actions = RW_RJ_ACT_DELETE_CLUSTER,
     .not_actions = RW_RJ_ACT_DELETE_SUBMITTER},
    {.name = "complete: delete self env",
     .deployment = "Complete",
     .job_status = "SUCCEEDED",
     .shutdown = true,
     .delete_self_env = true,
     .end_ago_ms = 1000,
     .want_deployment = "Complete",
     .want_actions = RW_RJ_ACT_DELETE_SELF},
    {.name = "complete: selector never deletes",
     .deployment = "Complete",
     .job_status = "SUCCEEDED",
     .selector = "shared",
     .shutdown = true,
     .end_ago_ms = 1000,
     .want_deployment = "Complete",
     .not_actions = RW_RJ_ACT_DELETE_CLUSTER},
    {.name = "rules: most destructive overdue first",
     .deployment = "Complete",
     .job_status = "SUCCEEDED",
     .end_ago_ms = 100000,
     .nrules = 3,
     .rules = {{RW_RAYJOB_DELETE_WORKERS, "SUCCEEDED", "", 10},
	       {RW_RAYJOB_DELETE_CLUSTER, "SUCCEEDED", "", 50},
	       {RW_RAYJOB_DELETE_SELF, "SUCCEEDED", "", 200}},
     .want_deployment = "Complete",
     .want_actions = RW_RJ_ACT_DELETE_CLUSTER,
     .not_actions = RW_RJ_ACT_SUSPEND_WORKERS | RW_RJ_ACT_DELETE_SELF},
    {.name = "rules: workers first",
     .deployment = "Complete",
     .job_status = "SUCCEEDED",
     .end_ago_ms = 20000,
     .nrules = 2,
     .rules = {{RW_RAYJOB_DELETE_WORKERS, "SUCCEEDED", "", 10},
	       {RW_RAYJOB_DELETE_CLUSTER, "SUCCEEDED", "", 50}},
     .want_deployment = "Complete",
     .want_actions = RW_RJ_ACT_SUSPEND_WORKERS,
     .not_actions = RW_RJ_ACT_DELETE_CLUSTER},
    {.name = "rules: other condition ignored",
     .deployment = "Failed",
     .job_status = "FAILED",
     .end_ago_ms = 20000,
     .nrules = 1,
     .rules = {{RW_RAYJOB_DELETE_CLUSTER, "SUCCEEDED", "", 0}},
     .want_deployment = "Failed",
     .not_actions = RW_RJ_ACT_DELETE_CLUSTER},
    {.name = "rules: deployment Failed condition",
     .deployment = "Failed",
     .job_status = "",
     .end_ago_ms = 20000,
     .nrules = 1,
     .rules = {{RW_RAYJOB_DELETE_SELF, "", "Failed", 5}},
     .want_deployment = "Failed",
     .want_actions = RW_RJ_ACT_DELETE_SELF},
    /* Deletion */
    {.name = "delete: stop a running job first",
     .deployment = "Running",
     .deleting = true,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "RUNNING",
     .want_deployment = "Running",
     .want_actions = RW_RJ_ACT_STOP_JOB,
     .not_actions = RW_RJ_ACT_REMOVE_FINALIZER},
    {.name = "delete: finished job",
     .deployment = "Complete",
     .deleting = true,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "SUCCEEDED",
     .want_deployment = "Complete",
     .want_actions = RW_RJ_ACT_REMOVE_FINALIZER},
    {.name = "delete: head silent",
     .deployment = "Running",
     .deleting = true,
     .silent = true,
     .want_deployment = "Running",
     .want_actions = RW_RJ_ACT_REMOVE_FINALIZER},
    /* A RayJob over while Ray still runs its job: stop it, until Ray says it ended */
    {.name = "terminal: deadline passed, Ray job still running -> stop",
     .deployment = "Failed",
     .job_status = "RUNNING",
     .reason = "DeadlineExceeded",
     .end_ago_ms = 1000,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "RUNNING",
     .want_deployment = "Failed",
     .want_reason = "DeadlineExceeded",
     .want_actions = RW_RJ_ACT_STOP_JOB | RW_RJ_ACT_WATCH,
     .not_actions = RW_RJ_ACT_WRITE_STATUS},
    {.name = "terminal: stopped job's status replaces RUNNING",
     .deployment = "Failed",
     .job_status = "RUNNING",
     .reason = "DeadlineExceeded",
     .end_ago_ms = 1000,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "STOPPED",
     .want_deployment = "Failed",
     .want_job_status = "STOPPED",
     .want_actions = RW_RJ_ACT_WRITE_STATUS,
     .not_actions = RW_RJ_ACT_STOP_JOB},
    {.name = "terminal: head silent, nothing to stop",
     .deployment = "Failed",
     .job_status = "RUNNING",
     .reason = "DeadlineExceeded",
     .end_ago_ms = 1000,
     .silent = true,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "RUNNING",
     .want_deployment = "Failed",
     .not_actions = RW_RJ_ACT_STOP_JOB},
    {.name = "terminal: finished job's status kept",
     .deployment = "Complete",
     .job_status = "SUCCEEDED",
     .end_ago_ms = 1000,
     .ray = RW_RJ_RAY_KNOWN,
     .ray_status = "SUCCEEDED",
     .want_deployment = "Complete",
     .want_job_status = "SUCCEEDED",
     .not_actions = RW_RJ_ACT_STOP_JOB | RW_RJ_ACT_WRITE_STATUS},
    {.name = "validation failed stays",
     .deployment = "ValidationFailed",
     .want_deployment = "ValidationFailed",
     .not_actions = ALL_CREATE | RW_RJ_ACT_WRITE_STATUS},
};

static void
t_rows(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run(&rows[i]);
}

/* Deletion is never held for long: 10 s after the deletionTimestamp the finalizer goes. */
static void
t_delete_bounded(void)
{
	struct rw_rj_status cur = {.deployment = "Running",
				   .job_status = "RUNNING",
				   .job_id = "j",
				   .cluster_name = "c",
				   .dashboard_url = "",
				   .reason = "",
				   .message = ""};
	struct rw_rj_spec spec = {.name = "j"};
	struct rw_rj_world w = {.now_ms = NOW,
				.deleting = true,
				.deleted_at_ms = NOW - 11000,
				.head_reporting = true,
				.ray = RW_RJ_RAY_KNOWN,
				.ray_status = "RUNNING",
				.cluster_exists = true};
	struct rw_rj_next out;
	rw_rj_decide(&cur, &spec, &w, &out);
	CHECK(out.actions & RW_RJ_ACT_REMOVE_FINALIZER);
}

/* A retry's New pass makes fresh names unless spec.jobId is set. */
static void
t_retry_new_names(void)
{
	struct rw_rj_status cur = {.deployment = "",
				   .job_id = "",
				   .cluster_name = "",
				   .dashboard_url = "",
				   .reason = "",
				   .message = "",
				   .job_status = "",
				   .failed = 1};
	struct rw_rj_spec spec = {.name = "j"};
	struct rw_rj_world w = {.now_ms = NOW, .suffix = "b2c4d"};
	struct rw_rj_next out;
	rw_rj_decide(&cur, &spec, &w, &out);
	CHECK_EQ_STR(out.cluster_name, "j-b2c4d");
	CHECK_EQ_STR(out.job_id, "j-b2c4d");
	CHECK_EQ_INT(out.failed, 1); /* the attempt count survives the retry */
	CHECK_EQ_INT(out.start_ms, NOW);
}

/* The kubelet's Ready message names the unready containers (SidecarMode's submitter end). */
static void
t_sidecar_ended(void)
{
	static const struct {
		int ready;
		const char *msg, *ray;
		bool want;
	} t[] = {
	    {2, "containers with unready status: [ray-job-submitter]", "ray-head", true},
	    {2, "containers with unready status: [raywarden-agent ray-job-submitter]", "ray-head",
	     true},
	    {2, "containers with unready status: [ray-head ray-job-submitter]", "ray-head", false},
	    {2, "containers with unready status: [ray-head]", "ray-head", false},
	    {2, "containers with unready status: [ray-job-submitter-2]", "ray-head", false},
	    {2, "containers with unready status: [ray-job-submitter", "ray-head", false},
	    {1, "containers with unready status: [ray-job-submitter]", "ray-head", false},
	    {0, "containers with unready status: [ray-job-submitter]", "ray-head", false},
	    {2,
	     "corresponding condition of pod readiness gate \"ray.io/agent-ready\" does not "
	     "exist.",
	     "ray-head", false},
	    {2, "", "ray-head", false},
	    {2, NULL, "ray-head", false},
	    {2, "containers with unready status: [ray-job-submitter]", NULL, true},
	    {2, "containers with unready status: []", "ray-head", false},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool got = rw_rj_sidecar_ended(t[i].ready, t[i].msg, t[i].ray);
		CHECK_EQ_INT(got, t[i].want);
		if (got != t[i].want)
			fprintf(stderr, "  ^ row %zu\n", i);
	}
}

static void
t_terminal_helpers(void)
{
	CHECK(rw_rj_terminal("Complete") && rw_rj_terminal("Failed"));
	CHECK(!rw_rj_terminal("Running") && !rw_rj_terminal("") && !rw_rj_terminal(NULL));
	CHECK(rw_rj_ray_terminal("STOPPED") && rw_rj_ray_terminal("SUCCEEDED") &&
	      rw_rj_ray_terminal("FAILED"));
	CHECK(!rw_rj_ray_terminal("RUNNING") && !rw_rj_ray_terminal("PENDING"));
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"lifecycle table", t_rows},
	    {"deletion bounded", t_delete_bounded},
	    {"retry makes new names", t_retry_new_names},
	    {"terminal helpers", t_terminal_helpers},
	    {"sidecar submitter ended", t_sidecar_ended},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

/* rj_decide.c - the RayJob lifecycle (see rj_decide.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rj_decide.h"

static bool
streq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static void
copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

#define COPY(field, src) copy(out->field, sizeof(out->field), (src))

bool
rw_rj_terminal(const char *d)
{
	return streq(d, RW_RJ_COMPLETE) || streq(d, RW_RJ_FAILED);
}

bool
rw_rj_ray_terminal(const char *s)
{
	return streq(s, "STOPPED") || streq(s, "SUCCEEDED") || streq(s, "FAILED");
}

/* Is name one of the words of the bracketed list that starts at p? */
static bool
in_list(const char *p, const char *name)
{
	size_t n = strlen(name);
	while (*p && *p != ']') {
		size_t k = strcspn(p, " ]");
		if (k == n && n > 0 && memcmp(p, name, n) == 0)
			return true;
		p += k;
		while (*p == ' ')
			p++;
	}
	return false;
}

bool
rw_rj_sidecar_ended(int ready, const char *message, const char *ray_container)
{
	static const char pre[] = "containers with unready status: [";
	const char *p;
	if (ready != 2 || !message || strncmp(message, pre, sizeof(pre) - 1) != 0)
		return false;
	p = message + sizeof(pre) - 1;
	if (!strchr(p, ']'))
		return false;
	return in_list(p, "ray-job-submitter") &&
	       !(ray_container && *ray_container && in_list(p, ray_container));
}

static void event(struct rw_rj_next *out, bool warning, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
event(struct rw_rj_next *out, bool warning, const char *reason, const char *fmt, ...)
{
	struct rw_rj_event *e;
	va_list ap;
	if (out->nev >= RW_RJ_MAX_EVENTS)
		return;
	e = &out->ev[out->nev++];
	e->warning = warning;
	copy(e->reason, sizeof(e->reason), reason);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

static void
requeue(struct rw_rj_next *out, uint64_t ms)
{
	if (ms && (!out->requeue_ms || ms < out->requeue_ms))
		out->requeue_ms = ms;
}

static void
set_deployment(struct rw_rj_next *out, const char *d)
{
	COPY(deployment, d);
}

/* Clear what an attempt wrote (KubeRay's reset before Suspended or New). */
static void
reset_attempt(struct rw_rj_next *out)
{
	out->job_status[0] = out->reason[0] = out->message[0] = '\0';
	out->job_id[0] = out->cluster_name[0] = out->dashboard_url[0] = '\0';
	out->ray_start_ms = out->ray_end_ms = 0;
	out->check_fail_start_ms = 0;
	out->start_ms = out->end_ms = 0;
}

/*
 * The job ends: Complete or Failed with reason and message, the counters,
 * then KubeRay's backoff check (Failed -> Retrying while attempts remain,
 * except after a deadline or a status-check timeout, and never with a
 * clusterSelector: a retry deletes the cluster).
 */
static void
finish(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w, bool ok,
       const char *reason, const char *msg)
{
	set_deployment(out, ok ? RW_RJ_COMPLETE : RW_RJ_FAILED);
	COPY(reason, ok ? "" : reason);
	if (msg)
		COPY(message, msg);
	out->end_ms = w->now_ms;
	out->finished_attempt = true;
	out->actions |= RW_RJ_ACT_KEEP_LOG;
	if (ok && streq(out->job_status, "SUCCEEDED"))
		out->succeeded++;
	if (!ok)
		out->failed++;
	if (!ok && !spec->has_selector && out->failed < spec->backoff_limit + 1 &&
	    !streq(reason, "DeadlineExceeded") && !streq(reason, "JobStatusCheckTimeoutExceeded")) {
		set_deployment(out, RW_RJ_RETRYING);
		event(out, true, "Retrying",
		      "Attempt %lld of %lld failed (%s): retrying with a new RayCluster",
		      (long long)out->failed, (long long)spec->backoff_limit + 1, reason);
		requeue(out, 1);
	} else if (ok) {
		event(out, false, streq(out->job_status, "STOPPED") ? "JobStopped" : "JobSucceeded",
		      "Ray job %s %s", out->job_id, out->job_status);
	} else {
		event(out, true, "JobFailed", "Ray job %s failed (%s)%s%s", out->job_id, reason,
		      w->ray_last_error ? ": " : "", w->ray_last_error ? w->ray_last_error : "");
	}
}

static void
fail(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w,
     const char *reason, const char *msg)
{
	finish(out, spec, w, false, reason, msg);
}

/* activeDeadlineSeconds, counted from status.startTime (Initializing and Running). */
static bool
active_deadline(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w)
{
	char msg[200];
	if (spec->active_deadline_s <= 0 || !out->start_ms)
		return false;
	if (w->now_ms < out->start_ms + spec->active_deadline_s * 1000) {
		requeue(out,
			(uint64_t)(out->start_ms + spec->active_deadline_s * 1000 - w->now_ms));
		return false;
	}
	snprintf(msg, sizeof(msg),
		 "The RayJob has passed the activeDeadlineSeconds. StartTime: %lld ms. "
		 "ActiveDeadlineSeconds: %lld",
		 (long long)out->start_ms, (long long)spec->active_deadline_s);
	if (out->job_id[0] && w->head_reporting)
		out->actions |=
		    RW_RJ_ACT_STOP_JOB; /* KubeRay leaves it running; nobody would see it */
	event(out, true, "DeadlineExceeded", "%s", msg);
	fail(out, spec, w, "DeadlineExceeded", msg);
	return true;
}

/* preRunningDeadlineSeconds (Initializing and Waiting); a retryable failure. */
static bool
pre_running_deadline(struct rw_rj_next *out, const struct rw_rj_spec *spec,
		     const struct rw_rj_world *w)
{
	char msg[200];
	if (spec->pre_running_deadline_s <= 0 || !out->start_ms)
		return false;
	if (w->now_ms < out->start_ms + spec->pre_running_deadline_s * 1000) {
		requeue(out, (uint64_t)(out->start_ms + spec->pre_running_deadline_s * 1000 -
					w->now_ms));
		return false;
	}
	snprintf(
	    msg, sizeof(msg),
	    "The RayJob has passed the preRunningDeadlineSeconds (%lld) before reaching Running",
	    (long long)spec->pre_running_deadline_s);
	event(out, true, "PreRunningDeadlineExceeded", "%s", msg);
	fail(out, spec, w, "PreRunningDeadlineExceeded", msg);
	return true;
}

/* suspend: allowed from Initializing and Running (KubeRay). */
static bool
suspending(struct rw_rj_next *out, const struct rw_rj_spec *spec)
{
	if (!spec->suspend)
		return false;
	set_deployment(out, RW_RJ_SUSPENDING);
	requeue(out, 1);
	return true;
}

static void
st_new(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w)
{
	char gen[128];
	if (spec->suspend) {
		set_deployment(out, RW_RJ_SUSPENDED);
		out->steady = true;
		return;
	}
	snprintf(gen, sizeof(gen), "%s-%s", spec->name, w->suffix ? w->suffix : "xxxxx");
	/* The ids go to the status before anything is created: a controller
	 * restart finds them there instead of making a second cluster or job. */
	if (spec->spec_job_id && *spec->spec_job_id)
		COPY(job_id, spec->spec_job_id);
	else if (spec->mode == RW_RAYJOB_INTERACTIVE)
		out->job_id[0] = '\0';
	else
		COPY(job_id, gen);
	COPY(cluster_name, spec->has_selector ? spec->selector_cluster : gen);
	out->job_status[0] = '\0';
	out->start_ms = w->now_ms;
	out->end_ms = 0;
	set_deployment(out, RW_RJ_INITIALIZING);
	requeue(out, 1);
}

static void
st_initializing(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w)
{
	if (suspending(out, spec) || active_deadline(out, spec, w) ||
	    pre_running_deadline(out, spec, w))
		return;
	if (!w->cluster_exists) {
		if (spec->has_selector) {
			event(out, true, "RayClusterNotFound",
			      "RayCluster %s set in the clusterSelector is not found",
			      out->cluster_name);
		} else {
			out->actions |= RW_RJ_ACT_CREATE_CLUSTER;
		}
		requeue(out, RW_RJ_REQUEUE_MS);
		return;
	}
	out->actions |= RW_RJ_ACT_COPY_CLUSTER_STATUS;
	/* SidecarMode: once the submitter container has ended the head pod is
	 * never Ready again, so a job that ends before the workers are up would
	 * leave the RayCluster short of ready for ever. The submitter waits for
	 * the GCS itself; a head whose Ray node its agent finds healthy will do. */
	if (!(w->cluster_ready || (spec->mode == RW_RAYJOB_SIDECAR && w->head_ray_ready)) ||
	    !w->dashboard_url) {
		requeue(out, RW_RJ_REQUEUE_MS);
		return;
	}
	COPY(dashboard_url, w->dashboard_url);
	switch (spec->mode) {
	case RW_RAYJOB_INTERACTIVE:
		set_deployment(out, RW_RJ_WAITING);
		break;
	case RW_RAYJOB_K8SJOB:
		out->actions |= RW_RJ_ACT_CREATE_SUBMITTER;
		set_deployment(out, RW_RJ_RUNNING);
		break;
	default: /* HTTPMode submits from Running; SidecarMode's submitter is in the head */
		set_deployment(out, RW_RJ_RUNNING);
		break;
	}
	requeue(out, 1);
}

static void
st_waiting(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w)
{
	if (pre_running_deadline(out, spec, w))
		return;
	if (!spec->spec_job_id || !*spec->spec_job_id) {
		out->steady = true; /* the user's spec.jobId edit brings the key back */
		return;
	}
	COPY(job_id, spec->spec_job_id);
	set_deployment(out, RW_RJ_RUNNING);
	requeue(out, 1);
}

/* The Ray job has a status: copy it, and end the attempt when it is terminal. */
static void
running_known(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w)
{
	bool via_submitter = spec->mode == RW_RAYJOB_K8SJOB || spec->mode == RW_RAYJOB_SIDECAR;
	char msg[256];
	if (!streq(out->job_status, w->ray_status) && streq(w->ray_status, "RUNNING"))
		event(out, false, "JobRunning", "Ray job %s is running", out->job_id);
	COPY(job_status, w->ray_status);
	if (w->ray_message && *w->ray_message)
		COPY(message, w->ray_message);
	out->ray_start_ms = w->ray_start_ms;
	out->ray_end_ms = w->ray_end_ms;
	out->check_fail_start_ms = 0;
	if (!rw_rj_ray_terminal(w->ray_status))
		return;
	/* Wait for the submitter to print the end of the logs (#1919), bounded by the grace period.
	 */
	if (via_submitter && w->submitter == RW_RJ_SUB_RUNNING) {
		int64_t since = w->ray_end_ms ? w->ray_end_ms : w->now_ms;
		if (w->now_ms < since + w->grace_s * 1000) {
			requeue(out, 1000);
			return;
		}
		snprintf(msg, sizeof(msg),
			 "The Ray job ended (%s) %lld s ago and the submitter is still running",
			 w->ray_status, (long long)w->grace_s);
		if (streq(w->ray_status, "FAILED"))
			fail(out, spec, w, "JobDeploymentStatusTransitionGracePeriodExceeded", msg);
		else
			finish(out, spec, w, true, "", msg);
		return;
	}
	if (streq(w->ray_status, "FAILED"))
		fail(out, spec, w, "AppFailed", NULL);
	else
		finish(out, spec, w, true, "", NULL);
}

static void
running_not_found(struct rw_rj_next *out, const struct rw_rj_spec *spec,
		  const struct rw_rj_world *w)
{
	switch (spec->mode) {
	case RW_RAYJOB_HTTP:
		out->actions |= RW_RJ_ACT_SUBMIT;
		if (w->submit_error && *w->submit_error)
			COPY(message, w->submit_error);
		return;
	case RW_RAYJOB_K8SJOB:
	case RW_RAYJOB_SIDECAR:
		if (w->submitter == RW_RJ_SUB_FAILED) {
			fail(out, spec, w, "SubmissionFailed",
			     "The submitter failed and Ray has no job with this id");
			return;
		}
		if (w->submitter == RW_RJ_SUB_SUCCEEDED) {
			int64_t t = w->submitter_finished_ms ? w->submitter_finished_ms : w->now_ms;
			if (w->now_ms >= t + (int64_t)RW_RJ_SUBMITTER_FINISHED_TIMEOUT_MS) {
				fail(out, spec, w, "AppFailed",
				     "Submitter completed but Ray job not found in RayCluster.");
				return;
			}
			requeue(out,
				(uint64_t)(t + RW_RJ_SUBMITTER_FINISHED_TIMEOUT_MS - w->now_ms));
		}
		return;
	default:
		return; /* InteractiveMode: the user's job may not be submitted yet */
	}
}

/* No word on the job: count the time without a status (KubeRay's status-check timeout). */
static void
running_unknown(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w)
{
	char msg[200];
	if (!out->check_fail_start_ms) {
		out->check_fail_start_ms = w->now_ms;
		return;
	}
	if (w->now_ms - out->check_fail_start_ms < w->status_check_s * 1000) {
		requeue(out, (uint64_t)(out->check_fail_start_ms + w->status_check_s * 1000 -
					w->now_ms));
		return;
	}
	snprintf(msg, sizeof(msg), "No status of the Ray job for %lld s",
		 (long long)w->status_check_s);
	fail(out, spec, w, "JobStatusCheckTimeoutExceeded", msg);
}

static void
st_running(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w)
{
	if (suspending(out, spec) || active_deadline(out, spec, w))
		return;
	/*
	 * Ray already said the job ended (the status holds it) and the attempt
	 * only waited for the submitter to print the logs: losing the head or
	 * the cluster now changes nothing about the job's outcome.
	 */
	if (rw_rj_ray_terminal(out->job_status) &&
	    (!w->cluster_exists || w->cluster_deleting || w->head_lost)) {
		bool ok = !streq(out->job_status, "FAILED");
		finish(out, spec, w, ok, ok ? "" : "AppFailed", NULL);
		return;
	}
	if (!w->cluster_exists || w->cluster_deleting) {
		char msg[256];
		snprintf(msg, sizeof(msg), "RayCluster %s is gone while the job was running",
			 out->cluster_name);
		event(out, true, "HeadLost", "%s", msg);
		fail(out, spec, w, "AppFailed", msg);
		return;
	}
	if (w->head_lost && !rw_rj_ray_terminal(w->ray_status)) {
		event(out, true, "HeadLost", "%s",
		      w->head_lost_why ? w->head_lost_why : "the Ray head was lost");
		fail(out, spec, w, "AppFailed",
		     w->head_lost_why ? w->head_lost_why : "the Ray head was lost");
		return;
	}
	if (spec->mode == RW_RAYJOB_K8SJOB && !w->submitter_exists)
		out->actions |= RW_RJ_ACT_CREATE_SUBMITTER; /* deleted by hand, or not yet seen */
	if (out->job_id[0])
		out->actions |= RW_RJ_ACT_WATCH;
	requeue(out, RW_RJ_REQUEUE_MS);
	switch (w->ray) {
	case RW_RJ_RAY_KNOWN:
		running_known(out, spec, w);
		break;
	case RW_RJ_RAY_NOT_FOUND:
		out->check_fail_start_ms = 0;
		running_not_found(out, spec, w);
		break;
	default:
		if (w->head_without_agent) {
			/*
			 * A head KubeRay made, kept when raywarden took over: only an
			 * agent could say how the job goes, so its silence is no
			 * failure (KubeRay's status-check timeout would fail every
			 * job running across the switch). The job stays Running
			 * until KubeRay runs again or the head is replaced.
			 */
			out->check_fail_start_ms = 0;
			COPY(message, RW_RJ_NO_AGENT_MESSAGE);
			break;
		}
		running_unknown(out, spec, w);
		break;
	}
}

/* Suspending and Retrying: delete the attempt's cluster and submitter, wait until they are gone. */
static void
st_teardown(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w,
	    bool retry)
{
	bool wait = false;
	if (!spec->has_selector && (w->cluster_exists || w->cluster_pods_exist)) {
		if (w->cluster_exists && !w->cluster_deleting)
			out->actions |= RW_RJ_ACT_DELETE_CLUSTER;
		wait = true; /* a retry never overlaps the previous attempt's pods */
	}
	if (w->submitter_exists) {
		out->actions |= RW_RJ_ACT_DELETE_SUBMITTER;
		wait = true;
	}
	if (wait) {
		requeue(out, 1000);
		return;
	}
	reset_attempt(out);
	set_deployment(out, retry ? RW_RJ_NEW : RW_RJ_SUSPENDED);
	if (retry)
		requeue(out, 1);
	else
		out->steady = true;
}

static const char *
policy_name(enum rw_rayjob_policy p)
{
	switch (p) {
	case RW_RAYJOB_DELETE_WORKERS:
		return "DeleteWorkers";
	case RW_RAYJOB_DELETE_CLUSTER:
		return "DeleteCluster";
	case RW_RAYJOB_DELETE_SELF:
		return "DeleteSelf";
	default:
		return "DeleteNone";
	}
}

/* Has the rule's action been carried out already? */
static bool
rule_done(enum rw_rayjob_policy p, const struct rw_rj_world *w)
{
	switch (p) {
	case RW_RAYJOB_DELETE_WORKERS:
		return !w->cluster_exists || w->workers_suspended;
	case RW_RAYJOB_DELETE_CLUSTER:
		return !w->cluster_exists || w->cluster_deleting;
	case RW_RAYJOB_DELETE_SELF:
		return w->deleting;
	default:
		return true;
	}
}

static bool
rule_matches(const struct rw_rayjob_rule *r, const struct rw_rj_next *out)
{
	if (r->deployment_status[0])
		return streq(r->deployment_status, out->deployment);
	return streq(r->job_status, out->job_status);
}

/*
 * The RayJob ended while Ray still runs its job (DeadlineExceeded, a
 * status-check timeout): stop it, since nothing will look at it again, and
 * keep asking until Ray reports it ended. KubeRay leaves it running. Once it
 * has ended its status replaces a jobStatus left at RUNNING (KubeRay #2314).
 */
static bool
stop_leftover(struct rw_rj_next *out, const struct rw_rj_world *w)
{
	if (!out->job_id[0] || !w->head_reporting || w->ray != RW_RJ_RAY_KNOWN)
		return false;
	if (rw_rj_ray_terminal(w->ray_status)) {
		if (!rw_rj_ray_terminal(out->job_status))
			COPY(job_status, w->ray_status);
		return false;
	}
	out->actions |= RW_RJ_ACT_STOP_JOB | RW_RJ_ACT_WATCH;
	requeue(out, 1000);
	return true;
}

bool
rw_rj_own_deletion_policy(const struct rw_rj_spec *spec)
{
	return spec->shutdown_after_finishes || spec->nrules > 0;
}

/* "4s", "1.5s", "86400s": a TTL as the flag could have been written. */
static void
fmt_ms(char *buf, size_t n, int64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, n, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, n, "%.3fs", (double)ms / 1000.0);
}

/*
 * --rayjob-default-ttl (KubeRay #5251: finished RayJobs pile up in etcd): a
 * RayJob without a policy of its own is deleted that long after endTime; its
 * RayCluster and submitter Job go with it through their ownerReferences.
 * With a clusterSelector only the RayJob (and its submitter) goes: the
 * cluster is not the RayJob's. Returns whether the default TTL governs this
 * RayJob (it then has no other deletion to decide).
 */
static bool
default_ttl(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w,
	    int64_t end)
{
	int64_t due = end + spec->default_ttl_ms;
	char ttl[32];
	if (spec->default_ttl_ms <= 0 || rw_rj_own_deletion_policy(spec))
		return false;
	if (spec->suspend)
		return true; /* parked by its user (a queue such as Kueue): not ours to remove */
	if (w->now_ms < due) {
		requeue(out, (uint64_t)(due - w->now_ms));
		return true;
	}
	out->actions |= RW_RJ_ACT_DELETE_SELF;
	fmt_ms(ttl, sizeof(ttl), spec->default_ttl_ms);
	event(out, false, "DefaultTTLExpired",
	      "Deleting the RayJob %s after it ended (%s): it sets no deletion policy of its own "
	      "and the controller's --rayjob-default-ttl is %s",
	      ttl, out->job_status[0] ? out->job_status : out->deployment, ttl);
	return true;
}

/*
 * Complete and Failed: the controller's default TTL for a RayJob without a
 * policy of its own; else nothing with a clusterSelector; else the deletion
 * rules (the most destructive overdue one first, one action per pass, then
 * again at the next rule's time); else shutdownAfterJobFinishes after the TTL.
 */
static void
st_terminal(struct rw_rj_next *out, const struct rw_rj_spec *spec, const struct rw_rj_world *w)
{
	int64_t end = out->end_ms ? out->end_ms : w->now_ms;
	out->steady = !stop_leftover(out, w);
	if (default_ttl(out, spec, w, end))
		return;
	if (spec->has_selector)
		return; /* never delete or change a cluster the RayJob does not own */
	if (spec->nrules > 0) {
		enum rw_rayjob_policy best = RW_RAYJOB_DELETE_NONE;
		int64_t next = 0;
		for (int i = 0; i < spec->nrules; i++) {
			const struct rw_rayjob_rule *r = &spec->rules[i];
			int64_t due = end + r->ttl_s * 1000;
			if (!rule_matches(r, out) || rule_done(r->policy, w))
				continue;
			if (w->now_ms >= due) {
				if (r->policy > best)
					best = r->policy;
			} else if (!next || due < next) {
				next = due;
			}
		}
		switch (best) {
		case RW_RAYJOB_DELETE_WORKERS:
			out->actions |= RW_RJ_ACT_SUSPEND_WORKERS;
			break;
		case RW_RAYJOB_DELETE_CLUSTER:
			out->actions |= RW_RJ_ACT_DELETE_CLUSTER;
			break;
		case RW_RAYJOB_DELETE_SELF:
			out->actions |= RW_RJ_ACT_DELETE_SELF;
			break;
		default:
			break;
		}
		if (best != RW_RAYJOB_DELETE_NONE) {
			event(out, false, "DeletionRule", "%s after the job ended (%s)",
			      policy_name(best),
			      out->job_status[0] ? out->job_status : out->deployment);
			requeue(out, 1000); /* the next rule, if any, once this one has landed */
		}
		/* At the next rule's time exactly, unlike KubeRay's + 2 s: later, the rule after
		 * it may be overdue too, and only the most destructive overdue rule runs, so a
		 * DeleteWorkers 2 s or less before a DeleteCluster would never run on its own.
		 * A timer that fires early finds nothing due and asks again. */
		if (next)
			requeue(out, (uint64_t)(next - w->now_ms));
		return;
	}
	if (!spec->shutdown_after_finishes)
		return;
	if (w->now_ms < end + spec->ttl_s * 1000) {
		requeue(out, (uint64_t)(end + spec->ttl_s * 1000 - w->now_ms));
		return;
	}
	if (spec->delete_self_env) {
		if (!w->deleting)
			out->actions |= RW_RJ_ACT_DELETE_SELF;
	} else if (w->cluster_exists && !w->cluster_deleting) {
		out->actions |= RW_RJ_ACT_DELETE_CLUSTER;
	}
}

static void
init_next(struct rw_rj_next *out, const struct rw_rj_status *cur)
{
	memset(out, 0, sizeof(*out));
	COPY(deployment, cur->deployment);
	COPY(job_status, cur->job_status);
	COPY(reason, cur->reason);
	COPY(message, cur->message);
	COPY(job_id, cur->job_id);
	COPY(cluster_name, cur->cluster_name);
	COPY(dashboard_url, cur->dashboard_url);
	out->start_ms = cur->start_ms;
	out->end_ms = cur->end_ms;
	out->succeeded = cur->succeeded;
	out->failed = cur->failed;
	out->check_fail_start_ms = cur->check_fail_start_ms;
}

static bool
changed(const struct rw_rj_next *out, const struct rw_rj_status *cur)
{
	return !streq(out->deployment, cur->deployment) ||
	       !streq(out->job_status, cur->job_status) || !streq(out->reason, cur->reason) ||
	       !streq(out->message, cur->message) || !streq(out->job_id, cur->job_id) ||
	       !streq(out->cluster_name, cur->cluster_name) ||
	       !streq(out->dashboard_url, cur->dashboard_url) || out->start_ms != cur->start_ms ||
	       out->end_ms != cur->end_ms || out->succeeded != cur->succeeded ||
	       out->failed != cur->failed || out->check_fail_start_ms != cur->check_fail_start_ms;
}

void
rw_rj_decide(const struct rw_rj_status *cur, const struct rw_rj_spec *spec,
	     const struct rw_rj_world *w, struct rw_rj_next *out)
{
	init_next(out, cur);
	if (w->deleting) {
		/* Stop the Ray job, then let the object go. The stop goes out in the
		 * head agent's next reply; deletion is never held for more than 10 s. */
		if (out->job_id[0] && w->head_reporting && w->ray == RW_RJ_RAY_KNOWN &&
		    !rw_rj_ray_terminal(w->ray_status) && w->now_ms < w->deleted_at_ms + 10000) {
			out->actions |= RW_RJ_ACT_STOP_JOB | RW_RJ_ACT_WATCH;
			requeue(out, 500);
			return;
		}
		out->actions |= RW_RJ_ACT_REMOVE_FINALIZER;
		out->steady = true;
		return;
	}
	if (streq(cur->deployment, RW_RJ_NEW))
		st_new(out, spec, w);
	else if (streq(cur->deployment, RW_RJ_INITIALIZING))
		st_initializing(out, spec, w);
	else if (streq(cur->deployment, RW_RJ_WAITING))
		st_waiting(out, spec, w);
	else if (streq(cur->deployment, RW_RJ_RUNNING))
		st_running(out, spec, w);
	else if (streq(cur->deployment, RW_RJ_SUSPENDING))
		st_teardown(out, spec, w, false);
	else if (streq(cur->deployment, RW_RJ_RETRYING))
		st_teardown(out, spec, w, true);
	else if (streq(cur->deployment, RW_RJ_SUSPENDED)) {
		if (spec->suspend) {
			out->steady = true; /* not requeued (KubeRay #4443) */
		} else {
			reset_attempt(out);
			set_deployment(out, RW_RJ_NEW);
			requeue(out, 1);
		}
	} else if (rw_rj_terminal(cur->deployment)) {
		st_terminal(out, spec, w);
	} else {
		out->steady = true; /* ValidationFailed, or a value this controller does not know */
	}
	if (changed(out, cur))
		out->actions |= RW_RJ_ACT_WRITE_STATUS;
}

/*
 * actions.c - what the controller asks of this agent, applied through the
 * local dashboard: drain, proxy expectation, serve config (PUT), job submit
 * and stop (POST), and job status tracking (GET). Every request has a
 * timeout and is retried with back-off while the controller keeps asking.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "jobtrack.h"
#include "rw/json.h"
#include "rw/log.h"

#define ACTION_TIMEOUT_MS 10000
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

static uint64_t
backoff_ms(unsigned attempts)
{
	uint64_t d = BACKOFF_MIN_MS;
	for (unsigned i = 1; i < attempts && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	return d > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d;
}

static void
dash_url(struct rw_agent *a, char *out, size_t n, const char *path)
{
	int v6 = strchr(a->cfg.probe_host, ':') != NULL;
	snprintf(out, n, "http://%s%s%s:%d%s", v6 ? "[" : "", a->cfg.probe_host, v6 ? "]" : "",
		 a->cfg.dashboard_port, path);
}

static void
set_job_error(struct rw_agent *a, const char *msg)
{
	if (strcmp(a->job_action_error, msg) != 0) {
		snprintf(a->job_action_error, sizeof(a->job_action_error), "%s", msg);
		rw_agent_kick(a);
	}
}

/* ---- serve config ---- */

static void start_put(struct rw_agent *a);

static void
set_apply_state(struct rw_agent *a, const char *state, const char *error)
{
	struct rw_serve_apply *ap = &a->apply;
	if (strcmp(ap->state, state) != 0 || strcmp(ap->error, error) != 0) {
		snprintf(ap->state, sizeof(ap->state), "%s", state);
		snprintf(ap->error, sizeof(ap->error), "%s", error);
		rw_agent_kick(a);
	}
}

static void
put_done(const struct rw_http_resp *resp, void *ud)
{
	struct rw_agent *a = ud;
	struct rw_serve_apply *ap = &a->apply;
	char reason[RW_MSG_MAX];
	struct rw_http_outcome o = {resp->err, resp->status, resp->body, resp->body_len};

	ap->call = NULL;
	if (rw_serve_put_result(&o, reason, sizeof(reason)) == 0) {
		ap->ok++;
		ap->attempts = 0;
		ap->applied_at_ms = uv_now(a->loop);
		ap->empty_seen = 0;
		rw_info("serve", "serve config %.12s applied", ap->hash);
		set_apply_state(a, "applied", "");
	} else {
		ap->failed++;
		ap->retry_at_ms = uv_now(a->loop) + backoff_ms(ap->attempts);
		rw_warn("serve", "serve config %.12s failed (attempt %u): %s", ap->hash,
			ap->attempts, reason);
		set_apply_state(a, "failed", reason);
	}
}

static void
start_put(struct rw_agent *a)
{
	struct rw_serve_apply *ap = &a->apply;
	char url[320];
	static const char *const hdrs[] = {"Content-Type: application/json", NULL};
	struct rw_http_req req;

	if (ap->call) {
		rw_http_cancel(ap->call);
		ap->call = NULL;
	}
	dash_url(a, url, sizeof(url), "/api/serve/applications/");
	memset(&req, 0, sizeof(req));
	req.method = "PUT";
	req.url = url;
	req.headers = hdrs;
	req.body = ap->config;
	req.body_len = strlen(ap->config);
	req.timeout_ms = ACTION_TIMEOUT_MS;
	req.max_body = 64 * 1024;
	ap->attempts++;
	set_apply_state(a, "applying", "");
	int rv = rw_http_start(a->http, &req, put_done, a, &ap->call);
	if (rv != 0) {
		ap->call = NULL;
		ap->retry_at_ms = uv_now(a->loop) + backoff_ms(ap->attempts);
		set_apply_state(a, "failed", "cannot start the request");
	}
}

static int
config_has_apps(const char *json)
{
	struct rw_json j = {0};
	int n = 0;
	if (rw_json_parse(&j, json, strlen(json), 1 << 20, NULL, 0) == 0)
		n = rw_json_size(&j, rw_json_get(&j, 0, "applications"));
	rw_json_fini(&j);
	return n > 0;
}

static void
apply_serve(struct rw_agent *a, const struct rw_reply *rp)
{
	struct rw_serve_apply *ap = &a->apply;
	if (!rp->serve_config_hash[0] || !rp->serve_config)
		return;
	if (strcmp(rp->serve_config_hash, ap->hash) == 0) {
		/* Same config: retry a failure once its back-off has passed. */
		if (strcmp(ap->state, "failed") == 0 && !ap->call &&
		    uv_now(a->loop) >= ap->retry_at_ms)
			start_put(a);
		return;
	}
	char *copy = strdup(rp->serve_config);
	if (!copy) {
		set_apply_state(a, "failed", "out of memory");
		return;
	}
	free(ap->config);
	ap->config = copy;
	snprintf(ap->hash, sizeof(ap->hash), "%s", rp->serve_config_hash);
	ap->has_apps = config_has_apps(copy);
	ap->attempts = 0;
	rw_info("serve", "applying serve config %.12s (%zu bytes)", ap->hash, strlen(copy));
	start_put(a);
}

/*
 * Called after each successful serve status read: a config that was applied
 * but whose applications are gone (the head's Serve restarted) is applied
 * again, with back-off. Only reads started after the apply count, and two
 * in a row must agree.
 */
void
rw_actions_serve_seen(struct rw_agent *a)
{
	struct rw_serve_apply *ap = &a->apply;
	if (strcmp(ap->state, "applied") != 0 || !ap->has_apps || ap->call)
		return;
	if (a->serve_req_started_ms < ap->applied_at_ms)
		return;
	if (a->serve.napps > 0) {
		ap->empty_seen = 0;
		return;
	}
	if (++ap->empty_seen < 2 || uv_now(a->loop) < ap->retry_at_ms)
		return;
	ap->reapplied++;
	ap->retry_at_ms = uv_now(a->loop) + backoff_ms(++ap->attempts);
	rw_warn("serve",
		"serve shows no applications although config %.12s was applied; "
		"applying it again",
		ap->hash);
	start_put(a);
}

/* ---- jobs ---- */

/*
 * A job's log is read once it has ended: at most LOG_MAX_IN bytes of
 * answer, within LOG_TIMEOUT_MS, at most LOG_FETCH_MAX at a time (each
 * holds a RW_LOG_TAIL_MAX ring while it runs).
 */
#define LOG_MAX_IN (64ULL * 1024 * 1024)
#define LOG_TIMEOUT_MS 10000
#define LOG_FETCH_MAX 2
/*
 * Status reads in flight at a time: the rest of a round follows as answers
 * come, over the same kept-alive connections, so a head with many jobs
 * sends the dashboard a steady trickle instead of a burst (twenty reads at
 * once on the Ray simulator stalled some by 1 s: its dashboard opens a
 * GCS connection per call and the burst overflowed that listen backlog).
 */
#define JOB_GET_MAX 4
/*
 * Log tails one report may carry, in JSON bytes: the 1 MiB message keeps
 * room for the rest of the report; tails over it wait for the next one.
 */
#define TAIL_REPORT_BUDGET (512 * 1024)

static void jobs_timer_arm(struct rw_agent *a);

/* Has Ray's answer for this job ended its tracking (no more status reads)? */
static int
job_ended(const struct rw_agent_job *j)
{
	return rw_job_terminal(j->info.status) || strcmp(j->info.status, "GONE") == 0;
}

/* Is the job's status to be read (again)? */
static int
job_pollable(const struct rw_agent_job *j)
{
	if (j->submit == RW_SUB_SUBMITTING)
		return 0;
	if (j->submit != RW_SUB_DONE && !j->stop_requested && !j->watched)
		return 0;
	return !job_ended(j);
}

static int
job_has_work(const struct rw_agent_job *j)
{
	return j->used && (job_pollable(j) || j->tail_state == RW_TAIL_WANT);
}

/* Is everything about the job's end known and ready to be reported? */
static int
job_final(const struct rw_agent_job *j)
{
	if (!job_ended(j))
		return 0;
	switch (j->tail_state) {
	case RW_TAIL_WANT:
	case RW_TAIL_FETCHING:
		return 0;
	case RW_TAIL_READY:
		return !j->tail || j->in_build;
	default:
		return 1;
	}
}

static void
job_free_tail(struct rw_agent_job *j)
{
	if (j->log_call) {
		rw_http_cancel(j->log_call);
		j->log_call = NULL;
	}
	free(j->lt);
	j->lt = NULL;
	free(j->tail);
	j->tail = NULL;
}

static struct rw_agent_job *
job_find(struct rw_agent *a, const char *id, int create)
{
	struct rw_job_slot slots[RW_MAX_JOBS];
	for (int i = 0; i < RW_MAX_JOBS; i++) {
		struct rw_agent_job *j = &a->jobs[i];
		if (j->used && strcmp(j->id, id) == 0)
			return j;
		slots[i].used = j->used;
		slots[i].busy = j->submit_call || j->stop_call || j->get_call || j->log_call;
		slots[i].terminal = job_ended(j);
		slots[i].reported = j->reported;
		slots[i].unseen = j->watched && !j->seen && j->submit == RW_SUB_NONE;
		slots[i].age = j->touched_ms;
	}
	if (!create)
		return NULL;
	int k = rw_job_slot_pick(slots, RW_MAX_JOBS);
	if (k < 0)
		return NULL;
	struct rw_agent_job *j = &a->jobs[k];
	if (j->used)
		rw_info("job", "job %s (%s) no longer tracked: room for %s", j->id,
			j->info.status[0] ? j->info.status : "no status", id);
	job_free_tail(j);
	memset(j, 0, sizeof(*j));
	j->used = 1;
	j->a = a;
	snprintf(j->id, sizeof(j->id), "%s", id);
	snprintf(j->info.submission_id, sizeof(j->info.submission_id), "%s", id);
	j->info.start_time_ms = j->info.end_time_ms = -1;
	j->touched_ms = uv_now(a->loop);
	return j;
}

static void
job_submit_done(const struct rw_http_resp *resp, void *ud)
{
	struct rw_agent_job *j = ud;
	struct rw_agent *a = j->a;
	char reason[RW_MSG_MAX];
	struct rw_http_outcome o = {resp->err, resp->status, resp->body, resp->body_len};
	j->submit_call = NULL;
	int rv = rw_job_submit_result(&o, reason, sizeof(reason));
	if (rv >= 0) {
		j->submit = RW_SUB_DONE;
		j->seen = 1; /* Ray holds it: a later 404 means it is gone */
		rw_info("job", "job %s %s", j->id, rv == 1 ? "was already submitted" : "submitted");
		set_job_error(a, "");
		jobs_timer_arm(a);
	} else {
		j->submit = RW_SUB_FAILED;
		j->retry_at_ms = uv_now(a->loop) + backoff_ms(j->attempts);
		rw_warn("job", "job %s: %s", j->id, reason);
		set_job_error(a, reason);
	}
	rw_agent_kick(a);
}

static int
start_job_call(struct rw_agent *a, struct rw_agent_job *j, const struct rw_http_req *base,
	       const char *path, rw_http_done_cb cb, struct rw_http_call **callp)
{
	char url[512];
	static const char *const hdrs[] = {"Content-Type: application/json", NULL};
	struct rw_http_req req = *base;
	dash_url(a, url, sizeof(url), path);
	req.url = url;
	req.headers = req.body ? hdrs : NULL;
	if (!req.timeout_ms)
		req.timeout_ms = ACTION_TIMEOUT_MS;
	if (!req.max_body)
		req.max_body = 256 * 1024;
	int rv = rw_http_start(a->http, &req, cb, j, callp);
	if (rv != 0)
		*callp = NULL;
	return rv;
}

static int
simple_job_call(struct rw_agent *a, struct rw_agent_job *j, const char *method, const char *path,
		const char *body, size_t body_len, rw_http_done_cb cb, struct rw_http_call **callp)
{
	struct rw_http_req req;
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.body = body;
	req.body_len = body_len;
	return start_job_call(a, j, &req, path, cb, callp);
}

static void
job_submit(struct rw_agent *a, struct rw_agent_job *j, const struct rw_job_submit *s)
{
	struct rw_buf b;
	struct rw_jw w;
	rw_buf_init(&b, RW_WIRE_MAX_MSG);
	rw_jw_init(&w, &b);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "entrypoint", s->entrypoint);
	rw_jw_kstr(&w, "submission_id", s->submission_id);
	if (s->runtime_env_json) {
		rw_jw_key(&w, "runtime_env");
		rw_jw_raw(&w, s->runtime_env_json, strlen(s->runtime_env_json));
	}
	if (s->metadata_json) {
		rw_jw_key(&w, "metadata");
		rw_jw_raw(&w, s->metadata_json, strlen(s->metadata_json));
	}
	if (s->resources_json) {
		rw_jw_key(&w, "entrypoint_resources");
		rw_jw_raw(&w, s->resources_json, strlen(s->resources_json));
	}
	if (s->num_cpus >= 0) {
		rw_jw_key(&w, "entrypoint_num_cpus");
		rw_jw_double(&w, s->num_cpus);
	}
	if (s->num_gpus >= 0) {
		rw_jw_key(&w, "entrypoint_num_gpus");
		rw_jw_double(&w, s->num_gpus);
	}
	if (s->memory >= 0)
		rw_jw_kint(&w, "entrypoint_memory", s->memory);
	rw_jw_obj_end(&w);
	if (rw_jw_finish(&w) != 0) {
		j->submit = RW_SUB_FAILED;
		set_job_error(a, "job submission too large to encode");
		rw_buf_fini(&b);
		return;
	}
	j->attempts++;
	j->submit = RW_SUB_SUBMITTING;
	if (simple_job_call(a, j, "POST", "/api/jobs/", b.data, b.len, job_submit_done,
			    &j->submit_call) != 0) {
		j->submit = RW_SUB_FAILED;
		j->retry_at_ms = uv_now(a->loop) + backoff_ms(j->attempts);
	}
	rw_buf_fini(&b);
}

static void
job_stop_done(const struct rw_http_resp *resp, void *ud)
{
	struct rw_agent_job *j = ud;
	struct rw_agent *a = j->a;
	char snip[200];
	j->stop_call = NULL;
	if (resp->err == 0 && (resp->status == 200 || resp->status == 404)) {
		j->stop_done = 1;
		rw_info("job", "job %s stop requested (%ld)", j->id, resp->status);
		set_job_error(a, "");
		jobs_timer_arm(a);
	} else {
		rw_snippet(resp->body, resp->body_len, 160, snip, sizeof(snip));
		char msg[RW_MSG_MAX];
		snprintf(msg, sizeof(msg), "job stop failed: %ld %s%s", resp->status, snip,
			 resp->err ? "transport error" : "");
		j->retry_at_ms = uv_now(a->loop) + backoff_ms(++j->attempts);
		set_job_error(a, msg);
	}
	rw_agent_kick(a);
}

/* ---- the driver log tail ---- */

static int
job_log_data(const char *data, size_t len, void *ud)
{
	struct rw_agent_job *j = ud;
	j->log_bytes += len;
	if (j->log_bytes > LOG_MAX_IN)
		return 1; /* stop reading: what the ring holds is kept */
	/* A syntax error is not fatal here: an error answer (404) is read to its end
	 * so its status counts; the byte cap above still bounds it. */
	(void)rw_logtail_feed(j->lt, data, len);
	return 0;
}

static void start_log_reads(struct rw_agent *a);

static void
job_log_done(const struct rw_http_resp *resp, void *ud)
{
	struct rw_agent_job *j = ud;
	struct rw_agent *a = j->a;
	struct rw_logtail *lt = j->lt;
	struct rw_job *x = &j->info;
	char snip[120];
	size_t len = 0;
	int trunc = 0, keep = 1;

	j->log_call = NULL;
	x->log_error[0] = '\0';
	if (resp->err == 0 && resp->status == 200 && rw_logtail_complete(lt)) {
		/* the whole log was read */
	} else if (resp->err == -ECANCELED && j->log_bytes > LOG_MAX_IN) {
		snprintf(x->log_error, sizeof(x->log_error),
			 "log answer larger than %llu MiB: read stopped there",
			 LOG_MAX_IN / (1024 * 1024));
	} else if (resp->err == -ETIMEDOUT) {
		snprintf(x->log_error, sizeof(x->log_error), "log not read to its end within %d s",
			 LOG_TIMEOUT_MS / 1000);
	} else if (resp->err) {
		snprintf(x->log_error, sizeof(x->log_error), "log read failed: %s%s%.80s",
			 strerror(-resp->err), resp->errmsg[0] ? ": " : "", resp->errmsg);
	} else if (resp->status != 200) {
		rw_snippet(lt->first, lt->first_len, 100, snip, sizeof(snip));
		snprintf(x->log_error, sizeof(x->log_error), "log read failed: %ld %s",
			 resp->status, snip);
		keep = 0;
	} else {
		snprintf(x->log_error, sizeof(x->log_error), "bad log answer: %s",
			 lt->err ? lt->why : "it ends early");
	}
	free(j->tail);
	j->tail = NULL;
	if (keep && lt->out_total > 0 && rw_logtail_result(lt, &j->tail, &len, &trunc) != 0)
		snprintf(x->log_error, sizeof(x->log_error), "out of memory for the log tail");
	/* A tail of a read that stopped early may miss the log's end. */
	x->log_truncated = trunc || (j->tail && x->log_error[0]);
	if (j->tail && strcmp(x->status, "FAILED") == 0)
		rw_last_error_line(j->tail, len, x->last_error_line, sizeof(x->last_error_line));
	free(lt);
	j->lt = NULL;
	j->tail_state = RW_TAIL_READY;
	j->touched_ms = uv_now(a->loop);
	rw_info("job", "job %s: log tail of %zu bytes read%s%s", j->id, len,
		x->log_error[0] ? "; " : "", x->log_error);
	rw_agent_kick(a);
	start_log_reads(a);
}

static void
start_log_read(struct rw_agent *a, struct rw_agent_job *j)
{
	char path[RW_ID_MAX + 32];
	struct rw_http_req req;
	j->lt = malloc(sizeof(*j->lt));
	if (!j->lt) {
		snprintf(j->info.log_error, sizeof(j->info.log_error), "out of memory");
		j->tail_state = RW_TAIL_READY;
		rw_agent_kick(a);
		return;
	}
	rw_logtail_init(j->lt, LOG_MAX_IN);
	j->log_bytes = 0;
	memset(&req, 0, sizeof(req));
	req.timeout_ms = LOG_TIMEOUT_MS;
	req.on_data = job_log_data;
	snprintf(path, sizeof(path), "/api/jobs/%s/logs", j->id);
	j->tail_state = RW_TAIL_FETCHING;
	if (start_job_call(a, j, &req, path, job_log_done, &j->log_call) != 0) {
		free(j->lt);
		j->lt = NULL;
		snprintf(j->info.log_error, sizeof(j->info.log_error),
			 "log read could not be started");
		j->tail_state = RW_TAIL_READY;
		rw_agent_kick(a);
	}
}

/* Start the log reads that wait, up to LOG_FETCH_MAX at a time, oldest end first. */
static void
start_log_reads(struct rw_agent *a)
{
	int running = 0;
	for (int i = 0; i < RW_MAX_JOBS; i++)
		running += a->jobs[i].used && a->jobs[i].tail_state == RW_TAIL_FETCHING;
	while (running < LOG_FETCH_MAX && !a->stopping) {
		struct rw_agent_job *next = NULL;
		for (int i = 0; i < RW_MAX_JOBS; i++) {
			struct rw_agent_job *j = &a->jobs[i];
			if (j->used && j->tail_state == RW_TAIL_WANT &&
			    (!next || j->touched_ms < next->touched_ms))
				next = j;
		}
		if (!next)
			break;
		start_log_read(a, next);
		running++;
	}
}

/* ---- status ---- */

/* Take Ray's answer for a job into the reported state. */
static void
job_take(struct rw_agent_job *j, const struct rw_job_outcome *jo, const char *reason)
{
	struct rw_job n = j->info;
	if (jo->found) {
		j->seen = 1;
		snprintf(n.status, sizeof(n.status), "%s", jo->status);
		snprintf(n.message, sizeof(n.message), "%s", jo->message);
		n.start_time_ms = jo->start_time_ms;
		n.end_time_ms = jo->end_time_ms;
		snprintf(n.error_type, sizeof(n.error_type), "%s", jo->error_type);
		n.has_exit_code = jo->has_exit_code;
		n.driver_exit_code = jo->has_exit_code ? jo->driver_exit_code : 0;
	} else {
		/* 404: never seen by this agent (not submitted yet), or gone. */
		snprintf(n.status, sizeof(n.status), "%s", j->seen ? "GONE" : "NOT_FOUND");
		snprintf(n.message, sizeof(n.message), "%s", reason);
	}
	if (strcmp(n.status, "FAILED") == 0 && !n.last_error_line[0]) {
		/* Until the log tail is read, Ray's message (which ends with the
		 * driver's last lines) gives the line. */
		const char *nl = strchr(n.message, '\n');
		const char *from = nl ? nl + 1 : n.message;
		rw_last_error_line(from, strlen(from), n.last_error_line,
				   sizeof(n.last_error_line));
	}
	if (memcmp(&n, &j->info, sizeof(n)) == 0)
		return;
	if (strcmp(n.status, j->info.status) != 0)
		rw_info("job", "job %s %s -> %s", j->id,
			j->info.status[0] ? j->info.status : "(new)", n.status);
	j->info = n;
	j->touched_ms = uv_now(j->a->loop);
	if (rw_job_terminal(n.status) && j->tail_state == RW_TAIL_NONE)
		j->tail_state = RW_TAIL_WANT;
	rw_agent_kick(j->a);
}

static void start_status_reads(struct rw_agent *a);

static void
job_get_done(const struct rw_http_resp *resp, void *ud)
{
	struct rw_agent_job *j = ud;
	struct rw_agent *a = j->a;
	struct rw_job_outcome jo;
	char reason[RW_MSG_MAX];
	struct rw_http_outcome o = {resp->err, resp->status, resp->body, resp->body_len};
	j->get_call = NULL;
	if (rw_job_parse(&o, &jo, reason, sizeof(reason)) == 0)
		job_take(j, &jo, reason);
	/* else transient: the next round reads it again */
	start_status_reads(a);
	start_log_reads(a);
}

/*
 * Start the status reads of this round not started yet, at most
 * JOB_GET_MAX in flight, those read longest ago first.
 */
static void
start_status_reads(struct rw_agent *a)
{
	int inflight = 0;
	for (int i = 0; i < RW_MAX_JOBS; i++)
		inflight += a->jobs[i].used && a->jobs[i].get_call != NULL;
	while (inflight < JOB_GET_MAX && !a->stopping) {
		struct rw_agent_job *next = NULL;
		for (int i = 0; i < RW_MAX_JOBS; i++) {
			struct rw_agent_job *j = &a->jobs[i];
			if (j->used && !j->get_call && job_pollable(j) &&
			    j->read_round != a->jobs_round &&
			    (!next || j->read_round < next->read_round))
				next = j;
		}
		if (!next)
			break;
		char path[RW_ID_MAX + 32];
		snprintf(path, sizeof(path), "/api/jobs/%s", next->id);
		next->read_round = a->jobs_round;
		if (simple_job_call(a, next, "GET", path, NULL, 0, job_get_done, &next->get_call) ==
		    0)
			inflight++;
	}
}

/* A new round: read the status of every job that needs it; start waiting log reads. */
static void
jobs_work(struct rw_agent *a)
{
	a->jobs_round++;
	start_status_reads(a);
	start_log_reads(a);
}

static int
jobs_need_timer(const struct rw_agent *a)
{
	for (int i = 0; i < RW_MAX_JOBS; i++)
		if (job_has_work(&a->jobs[i]))
			return 1;
	return 0;
}

static void
jobs_timer_cb(uv_timer_t *t)
{
	struct rw_agent *a = t->data;
	if (!jobs_need_timer(a)) {
		/* Nothing runs: no wake-ups until a job is tracked again. */
		uv_timer_stop(&a->jobs_timer);
		a->jobs_timer_on = 0;
		return;
	}
	jobs_work(a);
}

/* A job may need reads: run the timer (the first read goes out at once). */
static void
jobs_timer_arm(struct rw_agent *a)
{
	if (a->stopping || !jobs_need_timer(a))
		return;
	if (a->jobs_timer_on) {
		/* A job new to this round is read now, not at the next tick. */
		start_status_reads(a);
		return;
	}
	a->jobs_timer_on = 1;
	uv_timer_start(&a->jobs_timer, jobs_timer_cb, 0, (uint64_t)a->cfg.job_status_interval_ms);
}

static void
apply_jobs(struct rw_agent *a, const struct rw_reply *rp)
{
	uint64_t now = uv_now(a->loop);
	for (int i = 0; i < rp->nwatch && i < RW_MAX_JOBS; i++) {
		struct rw_agent_job *j = job_find(a, rp->watch_jobs[i], 1);
		if (!j) {
			set_job_error(a, "too many tracked jobs");
		} else if (!j->watched) {
			j->watched = 1;
			rw_info("job", "watching job %s", j->id);
			rw_agent_kick(a);
		}
	}
	if (rp->has_submit && rp->submit.submission_id[0] && rp->submit.entrypoint) {
		struct rw_agent_job *j = job_find(a, rp->submit.submission_id, 1);
		if (!j) {
			set_job_error(a, "too many tracked jobs");
		} else if (j->submit == RW_SUB_NONE && j->seen) {
			/* Ray already has it (watched before): nothing to send. */
			j->submit = RW_SUB_DONE;
		} else if (j->submit == RW_SUB_NONE ||
			   (j->submit == RW_SUB_FAILED && now >= j->retry_at_ms)) {
			job_submit(a, j, &rp->submit);
		}
	}
	if (rp->stop_job[0]) {
		struct rw_agent_job *j = job_find(a, rp->stop_job, 1);
		if (j && !j->stop_done && !j->stop_call && now >= j->retry_at_ms && !job_ended(j)) {
			char path[RW_ID_MAX + 32];
			j->stop_requested = 1;
			snprintf(path, sizeof(path), "/api/jobs/%s/stop", j->id);
			simple_job_call(a, j, "POST", path, NULL, 0, job_stop_done, &j->stop_call);
		}
	}
	jobs_timer_arm(a);
}

/* ---- what reports carry ---- */

void
rw_agent_fill_jobs(struct rw_agent *a, struct rw_report *r)
{
	size_t budget = TAIL_REPORT_BUDGET;
	int n = 0;
	for (int i = 0; i < RW_MAX_JOBS; i++) {
		struct rw_agent_job *j = &a->jobs[i];
		if (!j->used)
			continue;
		struct rw_job *x = &a->job_scratch[n++];
		*x = j->info;
		x->log_tail = NULL;
		j->in_build = 0;
		if (!x->status[0]) {
			const char *m = j->submit == RW_SUB_SUBMITTING ? "submitting"
					: j->submit == RW_SUB_FAILED   ? "submit failed"
					: j->submit == RW_SUB_DONE     ? "submitted"
								       : "watching, not read yet";
			snprintf(x->message, sizeof(x->message), "%s", m);
		}
		if (j->tail_state != RW_TAIL_READY)
			continue;
		size_t cost = j->tail ? rw_json_escaped_bound(j->tail, strlen(j->tail)) : 0;
		if (cost <= budget) {
			budget -= cost;
			x->log_tail = j->tail;
			j->in_build = 1;
		} else {
			/* It goes with a later report: say nothing of the log yet. */
			x->log_error[0] = '\0';
			x->log_truncated = 0;
		}
	}
	r->njobs = n;
	r->jobs = n ? a->job_scratch : NULL;
}

void
rw_agent_drop_tails(struct rw_agent *a, struct rw_report *r)
{
	for (int i = 0; i < RW_MAX_JOBS; i++)
		a->jobs[i].in_build = 0;
	for (int i = 0; i < r->njobs; i++) {
		if (r->jobs[i].log_tail) {
			r->jobs[i].log_tail = NULL;
			r->jobs[i].log_error[0] = '\0';
			r->jobs[i].log_truncated = 0;
		}
	}
}

void
rw_actions_report_sent(struct rw_agent *a, uint64_t seq)
{
	for (int i = 0; i < RW_MAX_JOBS; i++) {
		struct rw_agent_job *j = &a->jobs[i];
		if (j->used && job_final(j))
			j->final_seq = seq;
	}
}

void
rw_actions_report_acked(struct rw_agent *a, uint64_t seq)
{
	int waiting = 0;
	for (int i = 0; i < RW_MAX_JOBS; i++) {
		struct rw_agent_job *j = &a->jobs[i];
		if (!j->used)
			continue;
		/* final_seq is set only while the job was final (report_sent). */
		if (j->final_seq == seq && seq != 0) {
			j->reported = 1;
			if (j->tail_state == RW_TAIL_READY) {
				/* Delivered: the controller keeps it from here on. */
				free(j->tail);
				j->tail = NULL;
				j->tail_state = RW_TAIL_SENT;
			}
		}
		waiting += j->tail_state == RW_TAIL_READY && !j->in_build;
	}
	/* Tails left out of that report for its size go with the next one now. */
	if (waiting)
		rw_agent_kick(a);
}

void
rw_actions_init(struct rw_agent *a)
{
	uv_timer_init(a->loop, &a->jobs_timer);
	a->jobs_timer.data = a;
}

void
rw_actions_apply(struct rw_agent *a, const struct rw_reply *rp)
{
	uint64_t now = uv_now(a->loop);
	unsigned chg = rw_readiness_set_drain(&a->rd, rp->drain, now);
	if (chg & RW_CHG_STATE) {
		rw_log(rp->drain ? RW_LOG_WARN : RW_LOG_INFO, "ready",
		       "drain %s by the controller; now %s (%s)",
		       rp->drain ? "requested" : "lifted", a->rd.ready ? "Ready" : "NotReady",
		       a->rd.reason);
		rw_agent_kick(a);
	}
	if (rp->proxy_expected != a->proxy_expected) {
		a->proxy_expected = rp->proxy_expected;
		rw_agent_kick(a);
	}
	int wants = (rp->serve_config_hash[0] && rp->serve_config) || rp->has_submit ||
		    rp->stop_job[0] || rp->nwatch > 0;
	if (!a->cfg.head) {
		if (wants && !a->warned_worker_actions++)
			rw_warn("actions", "ignoring serve/job actions sent to a worker agent");
		return;
	}
	if (rp->serve_config_hash[0])
		rw_probes_want_serve(a);
	apply_serve(a, rp);
	apply_jobs(a, rp);
}

void
rw_actions_stop(struct rw_agent *a)
{
	if (a->apply.call) {
		rw_http_cancel(a->apply.call);
		a->apply.call = NULL;
	}
	for (int i = 0; i < RW_MAX_JOBS; i++) {
		struct rw_agent_job *j = &a->jobs[i];
		struct rw_http_call **calls[] = {&j->submit_call, &j->stop_call, &j->get_call,
						 &j->log_call};
		for (size_t k = 0; k < sizeof(calls) / sizeof(calls[0]); k++) {
			if (*calls[k]) {
				rw_http_cancel(*calls[k]);
				*calls[k] = NULL;
			}
		}
	}
	uv_close((uv_handle_t *)&a->jobs_timer, NULL);
	a->jobs_timer_on = 0;
}

void
rw_actions_fini(struct rw_agent *a)
{
	free(a->apply.config);
	a->apply.config = NULL;
	for (int i = 0; i < RW_MAX_JOBS; i++)
		job_free_tail(&a->jobs[i]);
}

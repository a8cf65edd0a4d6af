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

static struct rw_agent_job *
job_find(struct rw_agent *a, const char *id, int create)
{
	struct rw_agent_job *free_slot = NULL, *oldest = NULL;
	for (int i = 0; i < RW_MAX_JOBS; i++) {
		struct rw_agent_job *j = &a->jobs[i];
		if (j->used && strcmp(j->id, id) == 0)
			return j;
		if (!j->used && !free_slot)
			free_slot = j;
		if (j->used && !j->submit_call && !j->stop_call && !j->get_call &&
		    rw_job_terminal(j->info.status) &&
		    (!oldest || j->touched_ms < oldest->touched_ms))
			oldest = j;
	}
	if (!create)
		return NULL;
	struct rw_agent_job *j = free_slot ? free_slot : oldest;
	if (!j)
		return NULL;
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
		rw_info("job", "job %s %s", j->id, rv == 1 ? "was already submitted" : "submitted");
		set_job_error(a, "");
	} else {
		j->submit = RW_SUB_FAILED;
		j->retry_at_ms = uv_now(a->loop) + backoff_ms(j->attempts);
		rw_warn("job", "job %s: %s", j->id, reason);
		set_job_error(a, reason);
	}
	rw_agent_kick(a);
}

static int
start_job_call(struct rw_agent *a, struct rw_agent_job *j, const char *method, const char *path,
	       const char *body, size_t body_len, rw_http_done_cb cb, struct rw_http_call **callp)
{
	char url[512];
	static const char *const hdrs[] = {"Content-Type: application/json", NULL};
	struct rw_http_req req;
	dash_url(a, url, sizeof(url), path);
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = body ? hdrs : NULL;
	req.body = body;
	req.body_len = body_len;
	req.timeout_ms = ACTION_TIMEOUT_MS;
	req.max_body = 256 * 1024;
	int rv = rw_http_start(a->http, &req, cb, j, callp);
	if (rv != 0)
		*callp = NULL;
	return rv;
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
	if (start_job_call(a, j, "POST", "/api/jobs/", b.data, b.len, job_submit_done,
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

static void
job_get_done(const struct rw_http_resp *resp, void *ud)
{
	struct rw_agent_job *j = ud;
	struct rw_agent *a = j->a;
	struct rw_job_outcome jo;
	char reason[RW_MSG_MAX];
	struct rw_http_outcome o = {resp->err, resp->status, resp->body, resp->body_len};
	j->get_call = NULL;
	if (rw_job_parse(&o, &jo, reason, sizeof(reason)) != 0)
		return; /* transient; the next read tries again */
	struct rw_job n = j->info;
	if (jo.found) {
		snprintf(n.status, sizeof(n.status), "%s", jo.status);
		snprintf(n.message, sizeof(n.message), "%s", jo.message);
		n.start_time_ms = jo.start_time_ms;
		n.end_time_ms = jo.end_time_ms;
	} else if (j->submit == RW_SUB_DONE) {
		snprintf(n.status, sizeof(n.status), "%s", "NOT_FOUND");
		snprintf(n.message, sizeof(n.message), "%s", reason);
	}
	if (memcmp(&n, &j->info, sizeof(n)) != 0) {
		if (strcmp(n.status, j->info.status) != 0)
			rw_info("job", "job %s %s -> %s", j->id,
				j->info.status[0] ? j->info.status : "(new)", n.status);
		j->info = n;
		j->touched_ms = uv_now(a->loop);
		rw_agent_kick(a);
	}
}

static void
apply_jobs(struct rw_agent *a, const struct rw_reply *rp)
{
	uint64_t now = uv_now(a->loop);
	if (rp->has_submit && rp->submit.submission_id[0] && rp->submit.entrypoint) {
		struct rw_agent_job *j = job_find(a, rp->submit.submission_id, 1);
		if (!j)
			set_job_error(a, "too many tracked jobs");
		else if (j->submit == RW_SUB_NONE ||
			 (j->submit == RW_SUB_FAILED && now >= j->retry_at_ms))
			job_submit(a, j, &rp->submit);
	}
	if (rp->stop_job[0]) {
		struct rw_agent_job *j = job_find(a, rp->stop_job, 1);
		if (j && !j->stop_done && !j->stop_call && now >= j->retry_at_ms &&
		    !rw_job_terminal(j->info.status)) {
			char path[RW_ID_MAX + 32];
			j->stop_requested = 1;
			snprintf(path, sizeof(path), "/api/jobs/%s/stop", j->id);
			start_job_call(a, j, "POST", path, NULL, 0, job_stop_done, &j->stop_call);
		}
	}
}

/* Periodic: read the status of every tracked job that is not finished. */
void
rw_actions_tick(struct rw_agent *a)
{
	for (int i = 0; i < RW_MAX_JOBS; i++) {
		struct rw_agent_job *j = &a->jobs[i];
		if (!j->used || j->get_call || j->submit == RW_SUB_SUBMITTING)
			continue;
		if (j->submit != RW_SUB_DONE && !j->stop_requested)
			continue;
		if (rw_job_terminal(j->info.status))
			continue;
		char path[RW_ID_MAX + 32];
		snprintf(path, sizeof(path), "/api/jobs/%s", j->id);
		start_job_call(a, j, "GET", path, NULL, 0, job_get_done, &j->get_call);
	}
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
	int wants =
	    (rp->serve_config_hash[0] && rp->serve_config) || rp->has_submit || rp->stop_job[0];
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
		struct rw_http_call **calls[] = {&j->submit_call, &j->stop_call, &j->get_call};
		for (size_t k = 0; k < 3; k++) {
			if (*calls[k]) {
				rw_http_cancel(*calls[k]);
				*calls[k] = NULL;
			}
		}
	}
}

void
rw_actions_fini(struct rw_agent *a)
{
	free(a->apply.config);
	a->apply.config = NULL;
}

/*
 * endpoints.c - /readyz, /livez, /metrics and /status, answered from memory,
 * and /drain, which needs the cluster's drain token (keys.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent.h"
#include "rw/log.h"

static void
comp_labels(struct rw_buf *b, const char *metric, const char *help, const char *type)
{
	rw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
}

static long
rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

void
rw_metrics_render(struct rw_agent *a, struct rw_buf *b)
{
	uint64_t now = uv_now(a->loop);
	const struct rw_readiness *rd = &a->rd;
	const struct rw_reporter *r = &a->rep;
	const double *le = rw_probe_lat_bounds();

	comp_labels(b, "raywarden_agent_ready", "1 when the pod should receive traffic.", "gauge");
	rw_buf_printf(b, "raywarden_agent_ready %d\n", rd->ready);
	comp_labels(b, "raywarden_agent_live", "1 unless the raylet failed past the grace period.",
		    "gauge");
	rw_buf_printf(b, "raywarden_agent_live %d\n", rd->live);
	comp_labels(b, "raywarden_agent_draining",
		    "1 while the controller asks for a drain or after a preStop drain.", "gauge");
	rw_buf_printf(b, "raywarden_agent_draining %d\n", rd->drain || rd->terminating);
	comp_labels(
	    b, "raywarden_agent_proxy_expected",
	    "1 when the controller expects a Serve proxy on this node, 0 when not, -1 when it "
	    "has not said (not a RayService pod, or the head's Serve status does not list "
	    "this node).",
	    "gauge");
	rw_buf_printf(b, "raywarden_agent_proxy_expected %d\n", a->proxy_expected);
	comp_labels(b, "raywarden_agent_ready_state_seconds",
		    "Seconds since readiness last changed.", "gauge");
	rw_buf_printf(b, "raywarden_agent_ready_state_seconds %.3f\n",
		      (double)(now - rd->ready_since_ms) / 1000.0);
	comp_labels(b, "raywarden_agent_ready_transitions_total", "Readiness flips.", "counter");
	rw_buf_printf(b, "raywarden_agent_ready_transitions_total %lu\n", rd->transitions);

	comp_labels(b, "raywarden_agent_probe_state",
		    "Current state of each probed component (1 for the current state).", "gauge");
	for (int c = 0; c < RW_COMP_COUNT; c++)
		rw_buf_printf(b, "raywarden_agent_probe_state{component=\"%s\",state=\"%s\"} 1\n",
			      rw_comp_name((enum rw_comp)c),
			      rw_probe_state_name(rd->comp[c].state));
	if (a->cfg.head)
		rw_buf_printf(b,
			      "raywarden_agent_probe_state{component=\"serve_api\",state=\"%s\"} "
			      "1\n",
			      rw_probe_state_name(a->serve_api.state));
	comp_labels(b, "raywarden_agent_probe_state_seconds",
		    "Seconds each component has been in its current state.", "gauge");
	for (int c = 0; c < RW_COMP_COUNT; c++)
		if (rd->comp[c].probed)
			rw_buf_printf(
			    b, "raywarden_agent_probe_state_seconds{component=\"%s\"} %.3f\n",
			    rw_comp_name((enum rw_comp)c),
			    (double)(now - rd->comp[c].since_ms) / 1000.0);

	comp_labels(b, "raywarden_agent_probes_total", "Probe results by component and state.",
		    "counter");
	for (int k = 0; k < RW_KIND_COUNT; k++) {
		const struct rw_agent_probe *p = &a->probes[k];
		if (!p->enabled && !p->lat_count)
			continue;
		for (int s = 0; s <= RW_PROBE_DISABLED; s++)
			if (p->results[s])
				rw_buf_printf(
				    b,
				    "raywarden_agent_probes_total{component=\"%s\",result=\"%s\"} "
				    "%lu\n",
				    rw_probe_kind_name(p->kind),
				    rw_probe_state_name((enum rw_probe_state)s), p->results[s]);
	}
	comp_labels(b, "raywarden_agent_probe_duration_seconds", "Probe round-trip times.",
		    "histogram");
	for (int k = 0; k < RW_KIND_COUNT; k++) {
		const struct rw_agent_probe *p = &a->probes[k];
		if (!p->enabled && !p->lat_count)
			continue;
		unsigned long cum = 0;
		const char *n = rw_probe_kind_name(p->kind);
		for (int i = 0; i < RW_LAT_BUCKETS; i++) {
			cum += p->lat_bucket[i];
			rw_buf_printf(b,
				      "raywarden_agent_probe_duration_seconds_bucket{component=\"%"
				      "s\",le=\"%g\"} %lu\n",
				      n, le[i], cum);
		}
		rw_buf_printf(b,
			      "raywarden_agent_probe_duration_seconds_bucket{component=\"%s\",le="
			      "\"+Inf\"} %lu\n",
			      n, p->lat_count);
		rw_buf_printf(b,
			      "raywarden_agent_probe_duration_seconds_sum{component=\"%s\"} %.6f\n",
			      n, p->lat_sum_s);
		rw_buf_printf(b,
			      "raywarden_agent_probe_duration_seconds_count{component=\"%s\"} "
			      "%lu\n",
			      n, p->lat_count);
	}
	comp_labels(b, "raywarden_agent_probe_hangups_total",
		    "Idle keep-alive connections to a component that the server closed.",
		    "counter");
	for (int k = 0; k < RW_KIND_COUNT; k++)
		if (a->probes[k].enabled)
			rw_buf_printf(
			    b, "raywarden_agent_probe_hangups_total{component=\"%s\"} %lu\n",
			    rw_probe_kind_name(a->probes[k].kind), a->probes[k].conn_events);
	comp_labels(b, "raywarden_agent_probe_hangup_probes_total",
		    "Probes started at once because an idle connection hung up.", "counter");
	for (int k = 0; k < RW_KIND_COUNT; k++)
		if (a->probes[k].enabled)
			rw_buf_printf(b,
				      "raywarden_agent_probe_hangup_probes_total{component=\"%s\"} "
				      "%lu\n",
				      rw_probe_kind_name(a->probes[k].kind),
				      a->probes[k].event_probes);
	comp_labels(b, "raywarden_agent_probe_connections_total",
		    "TCP connections opened for probes and actions (keep-alive reuses them).",
		    "counter");
	rw_buf_printf(b, "raywarden_agent_probe_connections_total %lu\n",
		      a->http ? rw_http_connects(a->http) : 0UL);

	comp_labels(b, "raywarden_agent_controller_configured", "1 when a controller is set.",
		    "gauge");
	rw_buf_printf(b, "raywarden_agent_controller_configured %d\n", r->enabled);
	comp_labels(b, "raywarden_agent_controller_connected",
		    "1 while a connection to the controller is up.", "gauge");
	rw_buf_printf(b, "raywarden_agent_controller_connected %d\n",
		      r->enabled && atomic_load(&((struct rw_reporter *)r)->pipes) > 0);
	comp_labels(b, "raywarden_agent_reports_sent_total", "Reports handed to nng.", "counter");
	rw_buf_printf(b, "raywarden_agent_reports_sent_total %lu\n", r->sent);
	comp_labels(b, "raywarden_agent_reports_acked_total",
		    "Reports answered by an authenticated reply.", "counter");
	rw_buf_printf(b, "raywarden_agent_reports_acked_total %lu\n", r->acked);
	comp_labels(b, "raywarden_agent_reports_blocked_total",
		    "Report attempts that found no controller connection.", "counter");
	rw_buf_printf(b, "raywarden_agent_reports_blocked_total %lu\n", r->blocked);
	comp_labels(b, "raywarden_agent_replies_refused_total",
		    "Controller replies refused, by reason.", "counter");
	for (int i = 0; i < RW_REF_COUNT; i++)
		rw_buf_printf(b, "raywarden_agent_replies_refused_total{reason=\"%s\"} %lu\n",
			      rw_refuse_name((enum rw_refuse)i), r->refused[i]);
	if (r->enabled) {
		comp_labels(b, "raywarden_agent_last_ack_age_seconds",
			    "Seconds since the last accepted reply (-1: none yet).", "gauge");
		rw_buf_printf(b, "raywarden_agent_last_ack_age_seconds %.3f\n",
			      r->last_ack_ms ? (double)(now - r->last_ack_ms) / 1000.0 : -1.0);
	}
	if (a->cfg.head) {
		comp_labels(b, "raywarden_agent_serve_apply_total", "Serve config PUTs by result.",
			    "counter");
		rw_buf_printf(b, "raywarden_agent_serve_apply_total{result=\"ok\"} %lu\n",
			      a->apply.ok);
		rw_buf_printf(b, "raywarden_agent_serve_apply_total{result=\"failed\"} %lu\n",
			      a->apply.failed);
		rw_buf_printf(b, "raywarden_agent_serve_apply_total{result=\"reapplied\"} %lu\n",
			      a->apply.reapplied);
		comp_labels(b, "raywarden_agent_serve_applications",
			    "Serve applications seen on the head.", "gauge");
		rw_buf_printf(b, "raywarden_agent_serve_applications %d\n",
			      a->have_serve ? a->serve.napps : 0);
	}
	comp_labels(b, "raywarden_agent_drain_refused_total",
		    "/drain requests refused: no key loaded, no credential, wrong credential.",
		    "counter");
	for (int i = 0; i < RW_DRAIN_NREF; i++)
		rw_buf_printf(b, "raywarden_agent_drain_refused_total{reason=\"%s\"} %lu\n",
			      rw_drain_refusal_name((enum rw_drain_refusal)i),
			      a->keys.drain_refused[i]);
	if (a->keys.have) {
		comp_labels(b, "raywarden_agent_key_reloads_total",
			    "Changes of the key file: loaded, or refused (the key in use stays).",
			    "counter");
		rw_buf_printf(b, "raywarden_agent_key_reloads_total{result=\"ok\"} %lu\n",
			      a->keys.reloads);
		rw_buf_printf(b, "raywarden_agent_key_reloads_total{result=\"failed\"} %lu\n",
			      a->keys.reload_failed);
	}
	comp_labels(b, "raywarden_agent_http_requests_total", "Requests served on the agent port.",
		    "counter");
	rw_buf_printf(b, "raywarden_agent_http_requests_total %lu\n",
		      a->httpd ? rw_httpd_requests(a->httpd) : 0UL);
	rw_httpd_render_stats(b, "raywarden_agent", &a->httpd, NULL, 1);

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	comp_labels(b, "process_cpu_seconds_total", "User and system CPU time.", "counter");
	rw_buf_printf(b, "process_cpu_seconds_total %.6f\n", cpu);
	comp_labels(b, "process_resident_memory_bytes", "Resident set size.", "gauge");
	rw_buf_printf(b, "process_resident_memory_bytes %ld\n", rss_bytes());
	comp_labels(b, "process_start_time_seconds", "Start time since the epoch.", "gauge");
	rw_buf_printf(b, "process_start_time_seconds %.3f\n", (double)a->wall0_ms / 1000.0);
}

/*
 * Parse the `seconds` parameter of a /drain query ("seconds=N", other
 * parameters ignored). Returns N (0..RW_DRAIN_MAX_S), 0 when absent, or -1
 * when it is not a plain decimal in range.
 */
static long
drain_seconds(const char *query)
{
	const char *p = query;
	while (p && *p) {
		size_t n = strcspn(p, "&");
		if (n > 8 && strncmp(p, "seconds=", 8) == 0) {
			long v = 0;
			for (size_t i = 8; i < n; i++) {
				if (p[i] < '0' || p[i] > '9' || v > RW_DRAIN_MAX_S)
					return -1;
				v = v * 10 + (p[i] - '0');
			}
			return v <= RW_DRAIN_MAX_S ? v : -1;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

/*
 * Refuse a /drain without a valid token: 401 without a credential, 403 with
 * a wrong one or when the agent has no key. Nothing but the refusal counter
 * changes. Returns 1 when refused.
 */
static int
drain_refused(struct rw_agent *a, const struct rw_httpd_req *req, struct rw_httpd_resp *resp)
{
	const char *auth = rw_httpd_header(req, "Authorization");
	enum rw_drain_refusal why;
	uint64_t now = uv_now(a->loop);
	if (rw_keys_drain_ok(a, auth))
		return 0;
	if (!a->keys.have) {
		why = RW_DRAIN_NO_KEY;
		resp->status = 403;
		rw_buf_puts(&resp->body, "forbidden: this agent has no key, /drain is disabled\n");
	} else if (!auth || !*auth) {
		why = RW_DRAIN_UNAUTHENTICATED;
		resp->status = 401;
		rw_buf_puts(&resp->headers,
			    "WWW-Authenticate: Bearer realm=\"raywarden-agent\"\r\n");
		rw_buf_puts(&resp->body, "unauthorized: /drain needs the cluster's drain token\n");
	} else {
		why = RW_DRAIN_FORBIDDEN;
		resp->status = 403;
		rw_buf_puts(&resp->body, "forbidden: wrong drain token\n");
	}
	a->keys.drain_refused[why]++;
	/* One line per 10 s at most: a flood of refusals must not flood the log. */
	if (!a->keys.last_refusal_log_ms || now - a->keys.last_refusal_log_ms >= 10000) {
		a->keys.last_refusal_log_ms = now;
		rw_warn("drain", "refused /drain from %s (%s); %lu refused so far", req->peer,
			rw_drain_refusal_name(why),
			a->keys.drain_refused[0] + a->keys.drain_refused[1] +
			    a->keys.drain_refused[2]);
	}
	return 1;
}

/*
 * GET /drain?seconds=N, the preStop hook raywarden puts on the containers of
 * RayService pods, with "Authorization: Bearer <drain token>": the pod turns
 * NotReady at once (for good: it is terminating) and is reported, and the
 * answer is held for N seconds, so the kubelet sends SIGTERM only after the
 * endpoint removal had time to reach every service proxy. At most
 * RW_DRAIN_HELD_MAX answers are held.
 */
static void
drain(struct rw_agent *a, const struct rw_httpd_req *req, struct rw_httpd_resp *resp)
{
	uint64_t now = uv_now(a->loop);
	long secs;
	int slot = -1;

	if (drain_refused(a, req, resp))
		return;
	secs = drain_seconds(req->query);

	if (secs < 0) {
		resp->status = 400;
		rw_buf_printf(&resp->body, "seconds must be an integer from 0 to %d\n",
			      RW_DRAIN_MAX_S);
		return;
	}
	for (int i = 0; i < RW_DRAIN_HELD_MAX; i++)
		if (a->drain_due_ms[i] <= now && slot < 0)
			slot = i;
	unsigned chg = rw_readiness_set_terminating(&a->rd, now);
	if (chg & RW_CHG_STATE) {
		rw_warn("ready", "preStop drain from %s: NotReady for good, answering in %lds",
			req->peer, secs);
		rw_agent_kick(a);
	}
	if (slot < 0) {
		/* Enough answers are held already; this one goes at once. */
		resp->status = 429;
		rw_buf_puts(&resp->body, "draining; too many drain requests held\n");
		return;
	}
	a->drain_due_ms[slot] = now + (uint64_t)secs * 1000;
	resp->delay_ms = secs * 1000;
	rw_buf_printf(&resp->body, "drained for %lds\n", secs);
}

static void
handler(const struct rw_httpd_req *req, struct rw_httpd_resp *resp, void *ud)
{
	struct rw_agent *a = ud;
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		resp->status = 405;
		rw_buf_puts(&resp->headers, "Allow: GET, HEAD\r\n");
		rw_buf_puts(&resp->body, "method not allowed\n");
		return;
	}
	if (strcmp(req->path, "/readyz") == 0) {
		resp->status = a->rd.ready ? 200 : 503;
		if (a->rd.ready)
			rw_buf_puts(&resp->body, "ok\n");
		else
			rw_buf_printf(&resp->body, "%s\n", a->rd.reason);
	} else if (strcmp(req->path, "/livez") == 0) {
		resp->status = a->rd.live ? 200 : 503;
		if (a->rd.live)
			rw_buf_puts(&resp->body, "ok\n");
		else
			rw_buf_printf(&resp->body, "%s\n", a->rd.live_reason);
	} else if (strcmp(req->path, "/metrics") == 0) {
		resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
		rw_metrics_render(a, &resp->body);
	} else if (strcmp(req->path, "/status") == 0) {
		struct rw_report rpt;
		rw_agent_build_report(a, &rpt);
		resp->content_type = "application/json";
		if (rw_report_encode(&rpt, &resp->body) != 0) {
			rw_buf_reset(&resp->body);
			resp->status = 500;
			resp->content_type = NULL;
			rw_buf_puts(&resp->body, "status too large to encode\n");
			return;
		}
		rw_buf_putc(&resp->body, '\n');
	} else if (strcmp(req->path, "/drain") == 0) {
		drain(a, req, resp);
	} else if (strcmp(req->path, "/") == 0) {
		rw_buf_puts(&resp->body,
			    "raywarden-agent: /readyz /livez /metrics /status /drain\n");
	} else {
		resp->status = 404;
		rw_buf_puts(&resp->body, "not found\n");
	}
}

int
rw_endpoints_init(struct rw_agent *a, char *err, size_t errlen)
{
	struct rw_httpd_opts o;
	memset(&o, 0, sizeof(o));
	o.host = a->cfg.listen_host;
	o.port = a->cfg.port;
	o.max_body = 4096;
	/* A kubelet probe must always find a slot: see rw_httpd_opts for how the caps evict. */
	o.max_conns = 64;
	o.max_conns_per_peer = 8;
	o.head_timeout_ms = 3000;
	o.request_timeout_ms = 5000;
	o.idle_timeout_ms = 5000;
	o.write_timeout_ms = 5000;
	return rw_httpd_new(a->loop, &o, handler, a, &a->httpd, err, errlen);
}

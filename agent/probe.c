/*
 * probe.c - scheduling of the local probes on the agent's loop.
 *
 * One probe per component per period and never more than one in flight per
 * component (the timeout is shorter than the period, enforced at config
 * time, and a component still in flight is skipped). Every due component
 * is started in the same tick, so their answers share wake-ups.
 * Connections are reused by rw_http's keep-alive pool, and watched while
 * idle: when a Ray process dies the kernel closes its sockets, the idle
 * connection to it hangs up, and the component is probed again at once
 * instead of at its next period (at most once per period per component
 * from such events, so a server that closes every connection cannot make
 * the agent spin).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "rw/log.h"

#define HEALTH_MAX_BODY (64 * 1024)
#define SERVE_MAX_BODY (4 * 1024 * 1024)

static const double lat_le[RW_LAT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
					      0.025,  0.05,  0.1,    0.25,  1.0};

static enum rw_comp
comp_of(enum rw_probe_kind k)
{
	switch (k) {
	case RW_KIND_RAYLET:
		return RW_COMP_RAYLET;
	case RW_KIND_GCS:
		return RW_COMP_GCS;
	case RW_KIND_PROXY:
		return RW_COMP_PROXY;
	default:
		return RW_COMP_COUNT;
	}
}

static void
record_latency(struct rw_agent_probe *p, double ms)
{
	double s = ms / 1000.0;
	int i;
	for (i = 0; i < RW_LAT_BUCKETS; i++)
		if (s <= lat_le[i])
			break;
	p->lat_bucket[i]++;
	p->lat_sum_s += s;
	p->lat_count++;
	p->last_ms = ms;
}

/* Log one line per state change, never per probe. */
static void
log_changes(struct rw_agent *a, enum rw_comp c, enum rw_probe_state before, unsigned chg,
	    int was_ready, int was_live)
{
	const struct rw_comp_state *cs = &a->rd.comp[c];
	if ((chg & RW_CHG_STATE) && cs->state != before) {
		rw_log(cs->state == RW_PROBE_OK ? RW_LOG_INFO : RW_LOG_WARN, "probe",
		       "%s %s -> %s (%s)", rw_comp_name(c), rw_probe_state_name(before),
		       rw_probe_state_name(cs->state), cs->reason);
		a->log_lines_state++;
	}
	if (a->rd.ready != was_ready) {
		rw_log(a->rd.ready ? RW_LOG_INFO : RW_LOG_WARN, "ready", "%s (%s)",
		       a->rd.ready ? "Ready" : "NotReady", a->rd.reason);
		a->log_lines_state++;
	}
	if (a->rd.live != was_live) {
		rw_log(a->rd.live ? RW_LOG_INFO : RW_LOG_ERROR, "live", "%s (%s)",
		       a->rd.live ? "live" : "liveness failing", a->rd.live_reason);
		a->log_lines_state++;
	}
}

static void serve_done(struct rw_agent *a, const struct rw_http_resp *resp);

static void
probe_done(const struct rw_http_resp *resp, void *ud)
{
	struct rw_agent_probe *p = ud;
	struct rw_agent *a = p->a;
	char reason[RW_REASON_MAX];

	p->call = NULL;
	record_latency(p, resp->total_ms);
	if (p->kind == RW_KIND_SERVE_API) {
		serve_done(a, resp);
		return;
	}
	struct rw_http_outcome o = {resp->err, resp->status, resp->body, resp->body_len};
	enum rw_probe_state st = rw_classify(p->kind, &o, reason, sizeof(reason));
	if (st == RW_PROBE_UNKNOWN)
		return; /* cancelled */
	p->results[st]++;
	enum rw_comp c = comp_of(p->kind);
	enum rw_probe_state before = a->rd.comp[c].state;
	int was_ready = a->rd.ready, was_live = a->rd.live;
	unsigned chg = rw_readiness_observe(&a->rd, c, st, reason, uv_now(a->loop));
	if (chg) {
		log_changes(a, c, before, chg, was_ready, was_live);
		rw_agent_kick(a);
	}
}

static void
set_serve_api(struct rw_agent *a, enum rw_probe_state st, const char *reason)
{
	if (a->serve_api.state != st) {
		rw_log(st == RW_PROBE_OK ? RW_LOG_INFO : RW_LOG_WARN, "serve",
		       "serve applications API %s -> %s (%s)",
		       rw_probe_state_name(a->serve_api.state), rw_probe_state_name(st), reason);
		a->serve_api.since_ms = rw_agent_wall_ms(a, uv_now(a->loop));
		a->serve_api.state = st;
		rw_agent_kick(a);
	}
	if (strcmp(a->serve_api.reason, reason) != 0) {
		snprintf(a->serve_api.reason, sizeof(a->serve_api.reason), "%.*s",
			 (int)sizeof(a->serve_api.reason) - 1, reason);
		rw_agent_kick(a);
	}
}

static void
serve_done(struct rw_agent *a, const struct rw_http_resp *resp)
{
	struct rw_agent_probe *p = &a->probes[RW_KIND_SERVE_API];
	char reason[RW_REASON_MAX];
	struct rw_http_outcome o = {resp->err, resp->status, resp->body, resp->body_len};
	enum rw_probe_state st = rw_classify(RW_KIND_SERVE_API, &o, reason, sizeof(reason));
	if (st == RW_PROBE_UNKNOWN)
		return;
	if (st == RW_PROBE_OK) {
		struct rw_serve_status ns;
		char err[RW_REASON_MAX];
		int rv = rw_serve_status_parse(resp->body, resp->body_len, &ns, err, sizeof(err));
		if (rv != 0) {
			st = RW_PROBE_ERROR;
			snprintf(reason, sizeof(reason), "bad serve status: %.120s", err);
		} else {
			if (!a->have_serve || ns.digest != a->serve.digest) {
				rw_serve_status_fini(&a->serve);
				a->serve = ns;
				a->have_serve = 1;
				rw_agent_kick(a);
			} else {
				rw_serve_status_fini(&ns);
			}
		}
	}
	p->results[st]++;
	set_serve_api(a, st, reason);
	if (st == RW_PROBE_OK)
		rw_actions_serve_seen(a);
}

/* The component whose probe answers for a connection to p's port. */
static long
watch_tag_of(const struct rw_agent *a, enum rw_probe_kind k)
{
	/* The serve applications read shares the dashboard with the GCS
	 * health probe: the dashboard going away is the GCS probe's business. */
	if (k == RW_KIND_SERVE_API)
		k = RW_KIND_GCS;
	return a->probes[k].enabled ? (long)k + 1 : 0;
}

static void
start_probe(struct rw_agent *a, struct rw_agent_probe *p, uint64_t now)
{
	struct rw_http_req req;
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = p->url;
	req.watch_tag = watch_tag_of(a, p->kind);
	req.timeout_ms = a->cfg.probe_timeout_ms;
	req.connect_timeout_ms = a->cfg.probe_timeout_ms;
	if (p->kind == RW_KIND_SERVE_API) {
		/* A large serve status may take longer than a health answer: allow
		 * three quarters of its own period (still one in flight at most). */
		long t = a->cfg.serve_status_interval_ms * 3 / 4;
		req.timeout_ms = t > a->cfg.probe_timeout_ms ? t : a->cfg.probe_timeout_ms;
	}
	req.max_body = p->max_body;
	p->started_ms = now;
	if (p->kind == RW_KIND_SERVE_API)
		a->serve_req_started_ms = now;
	int rv = rw_http_start(a->http, &req, probe_done, p, &p->call);
	if (rv != 0) {
		p->call = NULL;
		rw_log(RW_LOG_ERROR, "probe", "cannot start %s probe: %s",
		       rw_probe_kind_name(p->kind), strerror(-rv));
	}
}

/* An idle connection to a component hung up: probe it now. */
static void
conn_event(long tag, int err, void *ud)
{
	struct rw_agent *a = ud;
	if (a->stopping || tag < 1 || tag > RW_KIND_COUNT)
		return;
	struct rw_agent_probe *p = &a->probes[tag - 1];
	uint64_t now = uv_now(a->loop);
	p->conn_events++;
	rw_log(RW_LOG_DEBUG, "probe", "idle connection to %s ended (%s); probing it now",
	       rw_probe_kind_name(p->kind), err == 0 ? "closed by the server" : strerror(-err));
	if (!p->enabled || p->call)
		return; /* a probe in flight sees the same thing */
	/* A second hang-up within one period while the component's state has
	 * not changed since the last one (a server closing every connection)
	 * waits for the next tick; after a change (it died and came back) the
	 * next death is probed at once again. */
	uint64_t since = a->rd.comp[comp_of(p->kind)].since_ms;
	if (p->event_ms && now - p->event_ms < (uint64_t)p->period_ms && since == p->event_since) {
		p->next_ms = now;
		return;
	}
	p->event_ms = now;
	p->event_since = since;
	p->event_probes++;
	p->next_ms = now + (uint64_t)p->period_ms - (uint64_t)(a->tick_ms / 2);
	start_probe(a, p, now);
}

int
rw_probes_init(struct rw_agent *a)
{
	const struct rw_agent_config *c = &a->cfg;
	static const char *paths[RW_KIND_COUNT] = {"/api/local_raylet_healthz", "/api/gcs_healthz",
						   "/-/healthz", "/api/serve/applications/"};
	int ports[RW_KIND_COUNT] = {c->raylet_port, c->dashboard_port, c->serve_port,
				    c->dashboard_port};
	/* IPv6 literals need brackets in a URL. */
	int v6 = strchr(c->probe_host, ':') != NULL;

	for (int k = 0; k < RW_KIND_COUNT; k++) {
		struct rw_agent_probe *p = &a->probes[k];
		memset(p, 0, sizeof(*p));
		p->a = a;
		p->kind = (enum rw_probe_kind)k;
		snprintf(p->url, sizeof(p->url), "http://%s%s%s:%d%s", v6 ? "[" : "", c->probe_host,
			 v6 ? "]" : "", ports[k], paths[k]);
		p->max_body = k == RW_KIND_SERVE_API ? SERVE_MAX_BODY : HEALTH_MAX_BODY;
		p->period_ms =
		    k == RW_KIND_SERVE_API ? c->serve_status_interval_ms : c->probe_interval_ms;
		/* Where the proxy gates readiness, its polling-only states (draining,
		 * starting) must be seen sooner than KubeRay's 5 s period allows. */
		if (k == RW_KIND_PROXY && a->rd.comp[RW_COMP_PROXY].counts &&
		    c->proxy_interval_ms < p->period_ms)
			p->period_ms = c->proxy_interval_ms;
		if (k == RW_KIND_SERVE_API)
			p->enabled = c->head;
		else
			p->enabled = rw_readiness_probed(&a->rd, comp_of(p->kind));
	}
	/* One tick for all: the shortest period (the others are multiples at
	 * the defaults, so every due probe starts in the same tick). */
	a->tick_ms = c->probe_interval_ms;
	for (int k = 0; k < RW_KIND_COUNT; k++)
		if (a->probes[k].enabled && a->probes[k].period_ms < a->tick_ms)
			a->tick_ms = a->probes[k].period_ms;
	rw_http_set_watch(a->http, conn_event, a);
	a->serve_api.state = c->head ? RW_PROBE_UNKNOWN : RW_PROBE_DISABLED;
	snprintf(a->serve_api.reason, sizeof(a->serve_api.reason), "%s",
		 c->head ? "not probed yet" : "not probed on this node");
	return 0;
}

void
rw_probes_tick(struct rw_agent *a)
{
	uint64_t now = uv_now(a->loop);
	for (int k = 0; k < RW_KIND_COUNT; k++) {
		struct rw_agent_probe *p = &a->probes[k];
		if (!p->enabled || p->call || now < p->next_ms)
			continue;
		/* Keep the phase: the next start is one period after this one's slot,
		 * less half a tick for timer jitter. */
		p->next_ms = now + (uint64_t)p->period_ms - (uint64_t)(a->tick_ms / 2);
		start_probe(a, p, now);
	}
	int was_live = a->rd.live;
	unsigned chg = rw_readiness_tick(&a->rd, now);
	if (chg & RW_CHG_LIVE) {
		log_changes(a, RW_COMP_RAYLET, a->rd.comp[RW_COMP_RAYLET].state, RW_CHG_LIVE,
			    a->rd.ready, was_live);
		rw_agent_kick(a);
	}
}

void
rw_probes_stop(struct rw_agent *a)
{
	for (int k = 0; k < RW_KIND_COUNT; k++) {
		if (a->probes[k].call) {
			rw_http_cancel(a->probes[k].call);
			a->probes[k].call = NULL;
		}
		a->probes[k].enabled = 0;
	}
}

const double *
rw_probe_lat_bounds(void)
{
	return lat_le;
}

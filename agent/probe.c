/*
 * probe.c - scheduling of the local probes on the agent's loop.
 *
 * One probe per component per period and never more than one in flight per
 * component (a component still in flight is skipped; the timeout is shorter
 * than the probe interval, but may exceed the proxy's shorter period, so a
 * slow proxy answer delays the next proxy probe instead of failing). Every due component
 * is started in the same tick, so their answers share wake-ups.
 * Connections are reused by rw_http's keep-alive pool, and watched while
 * idle: when a Ray process dies the kernel closes its sockets, the idle
 * connection to it hangs up, and the component is probed again at once
 * instead of at its next period (at most once per period per component
 * from such events, so a server that closes every connection cannot make
 * the agent spin).
 *
 * The probes (raylet, GCS, proxy, and the head's Serve applications read)
 * do not go through libcurl: each has its own HTTP/1.1 keep-alive
 * connection driven directly by libuv, with the request bytes built once,
 * an answer buffer (respbuf.h), one timer, and reading left on while idle
 * so that a hang-up is seen at once. A health GET is the agent's most
 * frequent piece of work, and libcurl's per-transfer set-up (URL parsing,
 * header formatting, allocations) was about half its CPU; and with the
 * Serve read off libcurl, a head that is never asked to act does not map
 * libcurl and its TLS libraries (~7.5 MiB) at all. libcurl serves every
 * action, and every probe when RAYWARDEN_LIGHT_PROBES is false.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "respbuf.h"
#include "rw/log.h"

#define HEALTH_MAX_BODY (64 * 1024)
/* Whole health answers (headers and body) larger than this fail (-EMSGSIZE);
 * every answer starts in this much inline space. */
#define LIGHT_BUF 4096
#define SERVE_MAX_BODY (4 * 1024 * 1024)
/* Room beyond the Serve body for the headers and chunk framing. */
#define SERVE_FRAMING (64 * 1024)
/* A grown answer buffer up to this size is kept for the next answer; a
 * larger one is freed, so a head does not hold its largest answer for good. */
#define LIGHT_KEEP (64 * 1024)
/* Smallest read offered once the buffer may grow. */
#define LIGHT_READ_MIN 1024

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

/*
 * The health probes' own client. One per probe kind; lives from
 * rw_probes_init until its handles are closed after rw_probes_stop.
 */
enum lp_state { LP_CLOSED = 0, LP_CONNECTING, LP_OPEN, LP_CLOSING };

struct rw_lprobe {
	struct rw_agent_probe *p;
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_timer_t timer;
	enum lp_state state;
	int busy;	  /* a probe is in flight */
	int sent;	  /* its request is on the connection */
	int reused;	  /* the connection carried an answer before */
	int retried;	  /* this probe already went to a fresh connection */
	int reconnect;	  /* connect when the close completes */
	int stopping;	  /* rw_probes_stop ran: free once the handles are closed */
	int open_handles; /* uv handles not yet closed */
	int nomem;	  /* the answer buffer could not grow */
	uint64_t t0_ns;
	struct sockaddr_storage addr;
	size_t req_len;
	size_t max_body;
	struct rw_respbuf rb;
	char req[256];
	char ibuf[LIGHT_BUF + 1];
};

static void conn_event(long tag, int err, void *ud);
static void lp_connect(struct rw_lprobe *lp);
static long watch_tag_of(const struct rw_agent *a, enum rw_probe_kind k);

static int
lp_busy(const struct rw_agent_probe *p)
{
	return p->call || (p->light && p->light->busy);
}

static void
lp_maybe_free(struct rw_lprobe *lp)
{
	if (lp->stopping && lp->open_handles == 0) {
		rw_respbuf_fini(&lp->rb);
		free(lp);
	}
}

static void
lp_timer_closed(uv_handle_t *h)
{
	struct rw_lprobe *lp = h->data;
	lp->open_handles--;
	lp_maybe_free(lp);
}

static void
lp_tcp_closed(uv_handle_t *h)
{
	struct rw_lprobe *lp = h->data;
	lp->open_handles--;
	lp->state = LP_CLOSED;
	if (lp->stopping) {
		lp_maybe_free(lp);
		return;
	}
	if (lp->reconnect) {
		lp->reconnect = 0;
		lp_connect(lp);
	}
}

static void
lp_close_conn(struct rw_lprobe *lp)
{
	if (lp->state == LP_CONNECTING || lp->state == LP_OPEN) {
		lp->state = LP_CLOSING;
		uv_close((uv_handle_t *)&lp->tcp, lp_tcp_closed);
	}
}

/* End the probe in flight: hand the outcome to probe_done like rw_http would. */
static void
lp_finish(struct rw_lprobe *lp, int err, long status, const char *body, size_t len)
{
	struct rw_http_resp r;
	if (!lp->busy)
		return;
	uv_timer_stop(&lp->timer);
	lp->busy = 0;
	lp->sent = 0;
	lp->reconnect = 0;
	memset(&r, 0, sizeof(r));
	r.err = err;
	r.status = err ? 0 : status;
	r.body = err ? "" : body;
	r.body_len = err ? 0 : len;
	r.errmsg = "";
	r.retry_after_s = -1;
	r.total_ms = (double)(uv_hrtime() - lp->t0_ns) / 1e6;
	probe_done(&r, lp->p);
	/* The large answer and what its parse allocated are free now; hand
	 * the pages back (glibc keeps freed heap, and after one large block
	 * is unmapped it serves the next ones from the heap). */
	if (rw_respbuf_reset(&lp->rb, LIGHT_KEEP))
		rw_mem_release_heap();
}

static void
lp_fail(struct rw_lprobe *lp, int err)
{
	lp_close_conn(lp);
	lp_finish(lp, err, 0, NULL, 0);
}

static void
lp_send(struct rw_lprobe *lp)
{
	uv_buf_t b = uv_buf_init(lp->req, (unsigned)lp->req_len);
	lp->rb.len = 0;
	lp->nomem = 0;
	int rv = uv_try_write((uv_stream_t *)&lp->tcp, &b, 1);
	if (rv == (int)lp->req_len) {
		lp->sent = 1;
		return;
	}
	/* A kept connection the peer has just closed: once more on a fresh one. */
	if (lp->reused && !lp->retried) {
		lp->retried = 1;
		lp->reconnect = 1;
		lp_close_conn(lp);
		return;
	}
	lp_fail(lp, rv == UV_EPIPE || rv == UV_ECONNRESET ? -ECONNRESET : -EPROTO);
}

static void
lp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct rw_lprobe *lp = h->data;
	(void)hint;
	if (rw_respbuf_reserve(&lp->rb, LIGHT_READ_MIN) != 0)
		lp->nomem = 1;
	/* No room left: libuv reports UV_ENOBUFS to lp_read. */
	*buf = uv_buf_init(lp->rb.p + lp->rb.len, (unsigned)rw_respbuf_room(&lp->rb));
}

/* Parse what arrived; eof: the peer closed. Ends the probe when the answer is whole. */
static void
lp_answer(struct rw_lprobe *lp, int eof)
{
	long status = 0;
	const char *body = NULL;
	size_t blen = 0;
	int keep = 0;
	int rv = rw_respbuf_answer(&lp->rb, eof, lp->max_body, &status, &body, &blen, &keep);
	if (rv == 0)
		return;
	if (rv < 0) {
		lp_fail(lp, rv == -EMSGSIZE && lp->nomem ? -ENOMEM : rv);
		return;
	}
	if (keep && !eof)
		lp->reused = 1;
	else
		lp_close_conn(lp);
	lp_finish(lp, 0, status, body, blen);
}

static void
lp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct rw_lprobe *lp = s->data;
	(void)buf;
	if (n == 0 || lp->state != LP_OPEN)
		return;
	if (!lp->busy || !lp->sent) {
		/* The idle connection hung up (or talked out of turn). */
		long tag = watch_tag_of(lp->p->a, lp->p->kind);
		lp_close_conn(lp);
		if (tag)
			conn_event(tag, n == UV_EOF ? 0 : n > 0 ? -EPROTO : (int)n, lp->p->a);
		return;
	}
	if (n > 0) {
		lp->rb.len += (size_t)n;
		lp_answer(lp, 0);
		return;
	}
	if (n == UV_ENOBUFS) {
		lp_fail(lp, lp->nomem ? -ENOMEM : -EMSGSIZE);
		return;
	}
	if (lp->rb.len == 0 && lp->reused && !lp->retried) {
		/* Closed under a request on a kept connection: as curl does, once
		 * more on a fresh connection (a dead server refuses it). */
		lp->retried = 1;
		lp->sent = 0;
		lp->reconnect = 1;
		lp_close_conn(lp);
		return;
	}
	if (n == UV_EOF && lp->rb.len > 0) {
		lp_answer(lp, 1);
		return;
	}
	lp_fail(lp, n == UV_EOF ? -EPROTO : n == UV_ECONNRESET ? -ECONNRESET : -EPROTO);
}

static void
lp_connected(uv_connect_t *req, int status)
{
	struct rw_lprobe *lp = req->data;
	if (status == UV_ECANCELED || lp->state != LP_CONNECTING)
		return;
	if (status < 0) {
		lp_fail(lp, status == UV_ETIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED);
		return;
	}
	lp->state = LP_OPEN;
	lp->reused = 0;
	uv_read_start((uv_stream_t *)&lp->tcp, lp_alloc, lp_read);
	if (lp->busy)
		lp_send(lp);
}

static void
lp_connect(struct rw_lprobe *lp)
{
	uv_loop_t *loop = lp->p->a->loop;
	if (uv_tcp_init(loop, &lp->tcp) != 0) {
		lp_finish(lp, -ENOMEM, 0, NULL, 0);
		return;
	}
	lp->tcp.data = lp;
	lp->open_handles++;
	lp->p->light_connects++;
	lp->state = LP_CONNECTING;
	lp->sent = 0;
	uv_tcp_nodelay(&lp->tcp, 1);
	lp->creq.data = lp;
	int rv =
	    uv_tcp_connect(&lp->creq, &lp->tcp, (const struct sockaddr *)&lp->addr, lp_connected);
	if (rv != 0)
		lp_fail(lp, rv == UV_ETIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED);
}

static void
lp_timeout(uv_timer_t *t)
{
	struct rw_lprobe *lp = t->data;
	/* An answer may still come: that connection cannot carry another request. */
	lp_fail(lp, -ETIMEDOUT);
}

static void
lp_start(struct rw_lprobe *lp, long timeout_ms)
{
	lp->busy = 1;
	lp->retried = 0;
	lp->t0_ns = uv_hrtime();
	uv_timer_start(&lp->timer, lp_timeout, (uint64_t)timeout_ms, 0);
	switch (lp->state) {
	case LP_OPEN:
		lp_send(lp);
		break;
	case LP_CLOSED:
		lp_connect(lp);
		break;
	case LP_CLOSING:
		lp->reconnect = 1;
		break;
	case LP_CONNECTING:
		break;
	}
}

/* A client for p's URL parts, or NULL (then libcurl serves p): host must be an IP literal. */
static struct rw_lprobe *
lp_new(struct rw_agent_probe *p, const char *host, int port, const char *path, size_t max_body)
{
	struct rw_lprobe *lp = calloc(1, sizeof(*lp));
	int v6 = strchr(host, ':') != NULL;
	if (!lp)
		return NULL;
	int rv = v6 ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&lp->addr)
		    : uv_ip4_addr(host, port, (struct sockaddr_in *)&lp->addr);
	int n = snprintf(lp->req, sizeof(lp->req),
			 "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: raywarden-agent\r\n"
			 "Accept: */*\r\n\r\n",
			 path, v6 ? "[" : "", host, v6 ? "]" : "", port);
	if (rv != 0 || n < 0 || (size_t)n >= sizeof(lp->req)) {
		free(lp);
		return NULL;
	}
	lp->req_len = (size_t)n;
	lp->p = p;
	lp->max_body = max_body;
	/* A health answer fits the inline space; a Serve answer may grow to
	 * its body cap plus headers and framing. */
	rw_respbuf_init(&lp->rb, lp->ibuf, LIGHT_BUF,
			max_body > LIGHT_BUF ? max_body + SERVE_FRAMING : LIGHT_BUF);
	uv_timer_init(p->a->loop, &lp->timer);
	lp->timer.data = lp;
	lp->open_handles = 1;
	return lp;
}

static void
lp_stop(struct rw_lprobe *lp)
{
	lp->stopping = 1;
	lp->busy = 0; /* cancelled: no callback */
	lp->reconnect = 0;
	uv_timer_stop(&lp->timer);
	lp_close_conn(lp);
	uv_close((uv_handle_t *)&lp->timer, lp_timer_closed);
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
	if (p->light) {
		lp_start(p->light, req.timeout_ms);
		return;
	}
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
	if (!p->enabled || lp_busy(p))
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

static const char *const probe_paths[RW_KIND_COUNT] = {
    "/api/local_raylet_healthz", "/api/gcs_healthz", "/-/healthz", "/api/serve/applications/"};

static int
probe_port(const struct rw_agent_config *c, enum rw_probe_kind k)
{
	switch (k) {
	case RW_KIND_RAYLET:
		return c->raylet_port;
	case RW_KIND_PROXY:
		return c->serve_port;
	default:
		return c->dashboard_port;
	}
}

static struct rw_lprobe *
lp_for(struct rw_agent_probe *p)
{
	const struct rw_agent_config *c = &p->a->cfg;
	if (!c->light_probes)
		return NULL;
	return lp_new(p, c->probe_host, probe_port(c, p->kind), probe_paths[p->kind],
		      p->kind == RW_KIND_SERVE_API ? SERVE_MAX_BODY : LIGHT_BUF);
}

int
rw_probes_init(struct rw_agent *a)
{
	const struct rw_agent_config *c = &a->cfg;
	/* IPv6 literals need brackets in a URL. */
	int v6 = strchr(c->probe_host, ':') != NULL;

	for (int k = 0; k < RW_KIND_COUNT; k++) {
		struct rw_agent_probe *p = &a->probes[k];
		memset(p, 0, sizeof(*p));
		p->a = a;
		p->kind = (enum rw_probe_kind)k;
		snprintf(p->url, sizeof(p->url), "http://%s%s%s:%d%s", v6 ? "[" : "", c->probe_host,
			 v6 ? "]" : "", probe_port(c, p->kind), probe_paths[k]);
		p->max_body = k == RW_KIND_SERVE_API ? SERVE_MAX_BODY : HEALTH_MAX_BODY;
		p->period_ms =
		    k == RW_KIND_SERVE_API ? c->serve_status_interval_ms : c->probe_interval_ms;
		/* Where the proxy gates readiness, its polling-only states (draining,
		 * starting) must be seen sooner than KubeRay's 5 s period allows. */
		if (k == RW_KIND_PROXY && a->rd.comp[RW_COMP_PROXY].counts &&
		    c->proxy_interval_ms < p->period_ms)
			p->period_ms = c->proxy_interval_ms;
		/* Only a RayService acts on a head's Serve applications; a plain
		 * RayCluster head starts reading them when a serve config arrives
		 * (rw_probes_want_serve). */
		if (k == RW_KIND_SERVE_API)
			p->enabled = c->head && c->rayservice;
		else
			p->enabled = rw_readiness_probed(&a->rd, comp_of(p->kind));
		if (p->enabled)
			p->light = lp_for(p);
	}
	/* One tick for all: the shortest period (the others are multiples at
	 * the defaults, so every due probe starts in the same tick). A head's
	 * Serve read counts even before it starts. */
	a->tick_ms = c->probe_interval_ms;
	for (int k = 0; k < RW_KIND_COUNT; k++)
		if ((a->probes[k].enabled || (k == RW_KIND_SERVE_API && c->head)) &&
		    a->probes[k].period_ms < a->tick_ms)
			a->tick_ms = a->probes[k].period_ms;
	rw_http_set_watch(a->http, conn_event, a);
	a->serve_api.state =
	    a->probes[RW_KIND_SERVE_API].enabled ? RW_PROBE_UNKNOWN : RW_PROBE_DISABLED;
	snprintf(a->serve_api.reason, sizeof(a->serve_api.reason), "%s",
		 a->probes[RW_KIND_SERVE_API].enabled ? "not probed yet"
		 : c->head			      ? "not read until a serve config arrives"
						      : "not probed on this node");
	return 0;
}

void
rw_probes_want_serve(struct rw_agent *a)
{
	struct rw_agent_probe *p = &a->probes[RW_KIND_SERVE_API];
	if (!a->cfg.head || p->enabled || a->stopping)
		return;
	p->enabled = 1;
	p->light = lp_for(p);
	p->next_ms = 0; /* at the next tick */
	rw_info("serve", "reading serve applications from now on (a serve config arrived)");
	set_serve_api(a, RW_PROBE_UNKNOWN, "not probed yet");
}

void
rw_probes_tick(struct rw_agent *a)
{
	uint64_t now = uv_now(a->loop);
	for (int k = 0; k < RW_KIND_COUNT; k++) {
		struct rw_agent_probe *p = &a->probes[k];
		if (!p->enabled || lp_busy(p) || now < p->next_ms)
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
		if (a->probes[k].light) {
			lp_stop(a->probes[k].light);
			a->probes[k].light = NULL;
		}
		a->probes[k].enabled = 0;
	}
}

const double *
rw_probe_lat_bounds(void)
{
	return lat_le;
}

unsigned long
rw_probes_connects(const struct rw_agent *a)
{
	unsigned long n = 0;
	for (int k = 0; k < RW_KIND_COUNT; k++)
		n += a->probes[k].light_connects;
	return n;
}

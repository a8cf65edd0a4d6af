/*
 * kube.c - Kubernetes API client on rw_http (see kube.h).
 *
 * An op goes QUEUED (the rate limiter's fair queue, fairq.h: its flow's FIFO,
 * flows round robin, best-effort requests last) -> WIRE (rw_http call) -> either DONE
 * (callback, then freed) or BACKOFF (its own timer) -> QUEUED again. Every op
 * owns a uv_timer_t, so ops are freed from the timer's close callback.
 */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fairq.h"
#include "kube.h"
#include "rbac.h"
#include "rw/http.h"
#include "rw/json.h"
#include "rw/list.h"
#include "rw/log.h"

#define DEF_TIMEOUT_MS 30000
#define DEF_MAX_ATTEMPTS 5
#define DEF_MAX_INFLIGHT 64
#define DEF_MAX_BODY (64u * 1024 * 1024)
#define RETRY_BASE_MS 200
#define RETRY_MAX_MS 5000

enum op_state { OP_QUEUED, OP_WIRE, OP_BACKOFF, OP_DONE, OP_DEAD };

struct rw_kube_op {
	struct rw_kube *k;
	struct rw_list link;  /* in k->ops (all) */
	struct rw_fq_node qn; /* in the limiter's fair queue */
	char *flow;	      /* its flow key, or NULL */
	unsigned source;      /* its flow's source */
	int cls;	      /* RW_FQ_NORMAL or RW_FQ_BEST_EFFORT */
	enum op_state state;
	uv_timer_t timer;
	struct rw_http_call *call;
	char *method, *url, *body, *ctype, *verb;
	char *denied; /* Status body of a request the RBAC table refuses, or NULL */
	size_t body_len;
	int no_retry, priority, idempotent, reauthed, is_stream, fail_err;
	int slot; /* holds one of max_inflight */
	long timeout_ms;
	int attempts;
	uint64_t enq_ms, start_ms;
	rw_kube_cb cb;
	rw_kube_data_cb on_data;
	void *ud;
};

struct rw_kube {
	uv_loop_t *loop;
	struct rw_kubecfg *cfg;
	struct rw_kube_opts o;
	char *ua_header;
	struct rw_http *http;
	struct rw_kube_tb tb;
	uv_timer_t lim_timer;
	struct rw_fq fq;
	int nwire;
	int nslots;	    /* limiter-queued requests on the wire (bounded by o.max_inflight) */
	struct rw_list ops; /* struct rw_kube_op */
	int closing, pending_closes;
	void (*closed)(void *);
	void *closed_ud;
	struct rw_met_family *m_req, *m_lat, *m_retry, *m_wait, *m_inflight, *m_flows, *m_refused;
	struct rw_met_family *m_ns_terminating;
	struct rw_met_family *m_rest_req, *m_rest_lat;
	char host[256]; /* the API server's host:port, the rest_client_* host label */
};

/* ---- token bucket ---- */

void
rw_kube_tb_init(struct rw_kube_tb *tb, double qps, int burst, uint64_t now_ms)
{
	tb->rate = qps > 0 ? qps / 1000.0 : 0;
	tb->burst = burst > 0 ? burst : 1;
	tb->tokens = tb->burst;
	tb->last = now_ms;
}

uint64_t
rw_kube_tb_take(struct rw_kube_tb *tb, uint64_t now_ms)
{
	if (tb->rate <= 0)
		return 0;
	if (now_ms > tb->last) {
		tb->tokens += (double)(now_ms - tb->last) * tb->rate;
		if (tb->tokens > tb->burst)
			tb->tokens = tb->burst;
		tb->last = now_ms;
	}
	if (tb->tokens >= 1.0) {
		tb->tokens -= 1.0;
		return 0;
	}
	double ms = ceil((1.0 - tb->tokens) / tb->rate);
	return ms < 1 ? 1 : (uint64_t)ms;
}

/* ---- helpers ---- */

int
rw_kube_qescape(struct rw_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rv = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && rv == 0; p++) {
		unsigned char c = *p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~')
			rv = rw_buf_putc(b, (char)c);
		else
			rv = rw_buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
	return rv;
}

static bool
tok_equal(const struct rw_json *a, int ta, const struct rw_json *b, int tb, int depth)
{
	enum rw_json_type ya = rw_json_type(a, ta), yb = rw_json_type(b, tb);
	int i, c, k, v;
	if (ya != yb || depth > RW_JSON_MAX_DEPTH)
		return false;
	switch (ya) {
	case RW_JSON_OBJECT:
		if (rw_json_size(a, ta) != rw_json_size(b, tb))
			return false;
		RW_JSON_OBJ_FOREACH (a, ta, i, k, v) {
			char key[256];
			if (rw_json_str(a, k, key, sizeof(key)) < 0)
				return false;
			int bv = rw_json_get(b, tb, key);
			if (bv < 0 || !tok_equal(a, v, b, bv, depth + 1))
				return false;
		}
		return true;
	case RW_JSON_ARRAY:
		if (rw_json_size(a, ta) != rw_json_size(b, tb))
			return false;
		c = ta + 1;
		k = tb + 1;
		for (i = 0; i < rw_json_size(a, ta); i++) {
			if (!tok_equal(a, c, b, k, depth + 1))
				return false;
			c = rw_json_skip(a, c);
			k = rw_json_skip(b, k);
		}
		return true;
	case RW_JSON_STRING: {
		size_t la, lb;
		const char *ra = rw_json_raw(a, ta, &la), *rb = rw_json_raw(b, tb, &lb);
		if (la == lb && memcmp(ra, rb, la) == 0)
			return true;
		char *sa = rw_json_strdup(a, ta), *sb = rw_json_strdup(b, tb);
		bool eq = sa && sb && strcmp(sa, sb) == 0;
		free(sa);
		free(sb);
		return eq;
	}
	case RW_JSON_NUMBER: {
		double da, db;
		return rw_json_double(a, ta, &da) == 0 && rw_json_double(b, tb, &db) == 0 &&
		       da == db;
	}
	default:
		return true; /* true, false, null: the type says it all */
	}
}

bool
rw_kube_json_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	struct rw_json ja = {0}, jb = {0};
	bool eq = false;
	if (rw_json_parse(&ja, a, alen, 1 << 20, NULL, 0) == 0 &&
	    rw_json_parse(&jb, b, blen, 1 << 20, NULL, 0) == 0)
		eq = tok_equal(&ja, 0, &jb, 0, 0);
	rw_json_fini(&ja);
	rw_json_fini(&jb);
	return eq;
}

static const char *
verb_of(const char *method)
{
	if (!strcasecmp(method, "POST"))
		return "create";
	if (!strcasecmp(method, "PUT"))
		return "update";
	if (!strcasecmp(method, "PATCH"))
		return "patch";
	if (!strcasecmp(method, "DELETE"))
		return "delete";
	return "get";
}

/* ---- client ---- */

static void
maybe_closed(struct rw_kube *k)
{
	if (k->closing && k->pending_closes == 0) {
		void (*cb)(void *) = k->closed;
		void *ud = k->closed_ud;
		rw_fq_fini(&k->fq);
		free(k->ua_header);
		free(k);
		if (cb)
			cb(ud);
	}
}

static void
handle_closed(uv_handle_t *h)
{
	struct rw_kube *k = h->data;
	k->pending_closes--;
	maybe_closed(k);
}

static void
http_closed(void *ud)
{
	struct rw_kube *k = ud;
	k->pending_closes--;
	maybe_closed(k);
}

static void pump(struct rw_kube *k);

static void
lim_timer_cb(uv_timer_t *t)
{
	pump(t->data);
}

static const double rest_buckets[] = {0.005, 0.025, 0.1, 0.25, 0.5,  1.0,
				      2.0,   4.0,   8.0, 15.0, 30.0, 60.0};

void
rw_kube_host_of(const char *server, char *out, size_t n)
{
	const char *p = server ? strstr(server, "://") : NULL;
	size_t len;
	p = p ? p + 3 : (server ? server : "");
	len = strcspn(p, "/");
	snprintf(out, n, "%.*s", (int)len, p);
}

int
rw_kube_new(uv_loop_t *loop, struct rw_kubecfg *cfg, const struct rw_kube_opts *opts,
	    struct rw_kube **out)
{
	static const char *const vc[] = {"verb", "code", NULL};
	static const char *const v[] = {"verb", NULL};
	static const char *const vr[] = {"verb", "reason", NULL};
	static const char *const cl[] = {"class", NULL};
	struct rw_kube *k;
	int rv;
	*out = NULL;
	if (!loop || !cfg || !cfg->server)
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->loop = loop;
	rw_list_init(&k->ops);
	k->cfg = cfg;
	if (opts)
		k->o = *opts;
	if (k->o.timeout_ms <= 0)
		k->o.timeout_ms = DEF_TIMEOUT_MS;
	if (k->o.max_attempts <= 0)
		k->o.max_attempts = DEF_MAX_ATTEMPTS;
	if (!k->o.max_body)
		k->o.max_body = DEF_MAX_BODY;
	if (k->o.max_retry_after_s <= 0)
		k->o.max_retry_after_s = 60;
	const char *ua = k->o.user_agent ? k->o.user_agent : "raywarden-controller/" RW_VERSION;
	size_t n = strlen(ua) + 16;
	k->ua_header = malloc(n);
	if (!k->ua_header) {
		free(k);
		return -ENOMEM;
	}
	snprintf(k->ua_header, n, "User-Agent: %s", ua);
	k->o.user_agent = NULL;
	rv = rw_http_new(loop, &k->http);
	if (rv) {
		free(k->ua_header);
		free(k);
		return rv;
	}
	uv_timer_init(loop, &k->lim_timer);
	k->lim_timer.data = k;
	rw_kube_tb_init(&k->tb, k->o.qps, k->o.burst, uv_now(loop));
	if (k->o.max_inflight <= 0)
		k->o.max_inflight = DEF_MAX_INFLIGHT;
	rw_fq_init(&k->fq, k->o.max_queued, k->o.max_queued_best_effort);
	struct rw_met *m = k->o.met;
	k->m_req = rw_met_counter(m, "raywarden_api_requests_total",
				  "Kubernetes API requests by verb and HTTP code (or error).", vc);
	k->m_lat =
	    rw_met_histogram(m, "raywarden_api_request_duration_seconds",
			     "Kubernetes API request latency per attempt (watches excluded).", v,
			     rw_met_latency_buckets, rw_met_latency_nbuckets);
	k->m_retry = rw_met_counter(m, "raywarden_api_request_retries_total",
				    "Kubernetes API request retries by verb and reason.", vr);
	k->m_wait =
	    rw_met_histogram(m, "raywarden_api_rate_limiter_wait_seconds",
			     "Time requests waited for the client-side QPS limiter, by class "
			     "(normal, best_effort).",
			     cl, rw_met_latency_buckets, rw_met_latency_nbuckets);
	k->m_inflight = rw_met_gauge(m, "raywarden_api_requests_queued",
				     "Kubernetes API requests waiting for the QPS limiter.", NULL);
	k->m_flows =
	    rw_met_gauge(m, "raywarden_api_rate_limiter_flows",
			 "Flows (clusters) with requests waiting for the QPS limiter.", NULL);
	k->m_ns_terminating = rw_met_counter(
	    m, "raywarden_api_namespace_terminating_total",
	    "Creates refused because their namespace is being deleted (HTTP 403 with the cause "
	    "NamespaceTerminating; not an RBAC refusal).",
	    v);
	k->m_refused = rw_met_counter(
	    m, "raywarden_api_rate_limiter_refused_total",
	    "Requests refused because the limiter's queue of their class was full.", cl);
	/* client-go's (k8s.io/component-base/metrics/prometheus/restclient/metrics.go v0.34). */
	rw_kube_host_of(cfg->server, k->host, sizeof(k->host));
	k->m_rest_req =
	    rw_met_counter(m, "rest_client_requests_total",
			   "Number of HTTP requests, partitioned by status code, method, and host.",
			   (const char *const[]){"code", "method", "host", NULL});
	k->m_rest_lat =
	    rw_met_histogram(m, "rest_client_request_duration_seconds",
			     "Request latency in seconds. Broken down by verb, and host.",
			     (const char *const[]){"verb", "host", NULL}, rest_buckets,
			     (int)(sizeof(rest_buckets) / sizeof(rest_buckets[0])));
	*out = k;
	return 0;
}

uv_loop_t *
rw_kube_loop(const struct rw_kube *k)
{
	return k->loop;
}

struct rw_met *
rw_kube_metrics(const struct rw_kube *k)
{
	return k->o.met;
}

int
rw_kube_queued(const struct rw_kube *k)
{
	return (int)rw_fq_len(&k->fq, -1);
}

int
rw_kube_inflight(const struct rw_kube *k)
{
	return k->nwire;
}

static void
op_closed(uv_handle_t *h)
{
	struct rw_kube_op *op = h->data;
	struct rw_kube *k = op->k;
	free(op->method);
	free(op->url);
	free(op->body);
	free(op->ctype);
	free(op->verb);
	free(op->flow);
	free(op->denied);
	free(op);
	k->pending_closes--;
	maybe_closed(k);
}

static const char *const class_names[RW_FQ_NCLASS] = {"normal", "best_effort"};

static void
queue_gauges(struct rw_kube *k)
{
	rw_met_set(k->m_inflight, NULL, (double)rw_fq_len(&k->fq, -1));
	rw_met_set(k->m_flows, NULL, (double)rw_fq_flows(&k->fq, -1));
}

/* Put op at the end of its flow; -ENOBUFS when its class is full. */
static int
q_push(struct rw_kube *k, struct rw_kube_op *op)
{
	int rv = rw_fq_push(&k->fq, &op->qn, op->flow, op->cls, op->source);
	if (rv == -ENOBUFS)
		rw_met_add(k->m_refused, (const char *const[]){class_names[op->cls]}, 1);
	if (rv == 0)
		op->state = OP_QUEUED;
	return rv;
}

/* Unlink an op and close its timer (freed in op_closed). */
static void pump(struct rw_kube *k);

/* The op leaves the wire: give back its slot (and let a queued request go). */
static void
slot_free(struct rw_kube_op *op)
{
	if (!op->slot)
		return;
	op->slot = 0;
	op->k->nslots--;
}

static void
op_release(struct rw_kube_op *op)
{
	struct rw_kube *k = op->k;
	if (op->state == OP_DEAD)
		return;
	if (op->state == OP_QUEUED)
		rw_fq_remove(&k->fq, &op->qn);
	if (op->state == OP_WIRE)
		k->nwire--;
	slot_free(op);
	op->state = OP_DEAD;
	rw_list_remove(&op->link);
	uv_timer_stop(&op->timer);
	k->pending_closes++;
	uv_close((uv_handle_t *)&op->timer, op_closed);
	queue_gauges(k);
}

void
rw_kube_cancel(struct rw_kube_op *op)
{
	if (!op || op->state == OP_DEAD || op->state == OP_DONE)
		return;
	if (op->state == OP_WIRE && op->call)
		rw_http_cancel(op->call);
	op->call = NULL;
	op_release(op);
}

void
rw_kube_free(struct rw_kube *k, void (*closed)(void *), void *ud)
{
	if (!k || k->closing)
		return;
	k->closing = 1;
	k->closed = closed;
	k->closed_ud = ud;
	while (!rw_list_empty(&k->ops)) {
		struct rw_kube_op *op =
		    rw_list_entry(rw_list_first(&k->ops), struct rw_kube_op, link);
		if (op->state == OP_WIRE && op->call)
			rw_http_cancel(op->call);
		op->call = NULL;
		op_release(op);
	}
	k->pending_closes += 2;
	uv_close((uv_handle_t *)&k->lim_timer, handle_closed);
	rw_http_free(k->http, http_closed, k);
}

static void
complete(struct rw_kube_op *op, const struct rw_http_resp *hr, int err, const char *msg)
{
	struct rw_kube_resp r;
	struct rw_kube_status st = {0};
	memset(&r, 0, sizeof(r));
	r.err = err;
	r.status = hr ? hr->status : 0;
	r.body = hr && !err ? hr->body : "";
	r.body_len = hr && !err ? hr->body_len : 0;
	r.retry_after_s = hr ? hr->retry_after_s : -1;
	r.attempts = op->attempts;
	if (err)
		snprintf(st.message, sizeof(st.message), "%s", msg ? msg : strerror(-err));
	else if (r.status >= 400)
		(void)rw_kube_status_parse(r.body, r.body_len, &st); /* not a Status: no details */
	r.reason = st.reason;
	r.message = st.message;
	r.ns_terminating = st.ns_terminating;
	struct rw_kube *k = op->k;
	if (rw_kube_namespace_terminating(&r))
		rw_met_add(k->m_ns_terminating, (const char *const[]){op->verb}, 1);
	int had_slot = op->slot;
	if (op->state == OP_WIRE)
		k->nwire--;
	slot_free(op);
	op->state = OP_DONE;
	if (op->cb)
		op->cb(&r, op->ud);
	op_release(op); /* no-op when rw_kube_free() ran inside the callback */
	if (had_slot && !k->closing)
		pump(k);
}

static void dispatch(struct rw_kube_op *op);

static void
fail_cb(uv_timer_t *t)
{
	struct rw_kube_op *op = t->data;
	if (op->state != OP_BACKOFF)
		return;
	complete(op, NULL, op->fail_err, "cannot start the request");
}

static void
retry_timer_cb(uv_timer_t *t)
{
	struct rw_kube_op *op = t->data;
	struct rw_kube *k = op->k;
	int rv;
	if (op->state != OP_BACKOFF)
		return;
	rv = q_push(k, op);
	if (rv) {
		complete(op, NULL, rv, "the API client's request queue is full");
		return;
	}
	pump(k);
}

/* Schedule another attempt after delay_ms. */
static void
retry_later(struct rw_kube_op *op, uint64_t delay_ms, const char *why)
{
	rw_met_add(op->k->m_retry, (const char *const[]){op->verb, why}, 1);
	op->k->nwire--;
	slot_free(op);
	op->state = OP_BACKOFF;
	op->call = NULL;
	uv_timer_start(&op->timer, retry_timer_cb, delay_ms, 0);
}

static uint64_t
backoff_ms(int attempt)
{
	uint64_t d = RETRY_BASE_MS;
	for (int i = 1; i < attempt && d < RETRY_MAX_MS; i++)
		d *= 2;
	if (d > RETRY_MAX_MS)
		d = RETRY_MAX_MS;
	return d + (uint64_t)(rand() % (int)(d / 4 + 1));
}

static void
http_done(const struct rw_http_resp *hr, void *ud)
{
	struct rw_kube_op *op = ud;
	struct rw_kube *k = op->k;
	char code[16];
	op->call = NULL;
	if (hr->err)
		snprintf(code, sizeof(code), "error");
	else
		snprintf(code, sizeof(code), "%ld", hr->status);
	rw_met_add(k->m_req, (const char *const[]){op->verb, code}, 1);
	/* client-go labels a transport error "<error>". */
	rw_met_add(k->m_rest_req,
		   (const char *const[]){hr->err ? "<error>" : code, op->method, k->host}, 1);
	if (!op->is_stream) {
		double secs = (double)(uv_now(k->loop) - op->start_ms) / 1000.0;
		rw_met_observe(k->m_lat, (const char *const[]){op->verb}, secs);
		rw_met_observe(k->m_rest_lat, (const char *const[]){op->method, k->host}, secs);
	}
	bool more = !op->no_retry && !op->is_stream && op->attempts < k->o.max_attempts;
	if (!hr->err && hr->status == 401 && k->cfg->token_file &&
	    (op->reauthed || op->is_stream)) {
		/* The next request (a watch's resume included) uses a freshly read token. */
		const char *tok;
		rw_kubecfg_token(k->cfg, uv_now(k->loop), 1, &tok);
	}
	if (!hr->err && hr->status == 401 && !op->reauthed && k->cfg->token_file &&
	    !op->is_stream) {
		/* The token may have been rotated: re-read it and try once more at once. */
		op->reauthed = 1;
		const char *tok;
		rw_kubecfg_token(k->cfg, uv_now(k->loop), 1, &tok);
		retry_later(op, 1, "unauthorized");
		return;
	}
	if (more && !hr->err && hr->status == 429) {
		long s = hr->retry_after_s >= 0 ? hr->retry_after_s : 1;
		if (s < 1)
			s = 1;
		if (s > k->o.max_retry_after_s)
			s = k->o.max_retry_after_s;
		retry_later(op, (uint64_t)s * 1000, "throttled");
		return;
	}
	if (more && op->idempotent && !hr->err && hr->status >= 500 && hr->status != 501) {
		uint64_t d = backoff_ms(op->attempts);
		if (hr->retry_after_s > 0 && hr->retry_after_s <= k->o.max_retry_after_s)
			d = (uint64_t)hr->retry_after_s * 1000;
		retry_later(op, d, "server_error");
		return;
	}
	if (more && hr->err && hr->err != -EMSGSIZE && hr->err != -ECANCELED &&
	    (op->idempotent || hr->err == -ECONNREFUSED)) {
		retry_later(op, backoff_ms(op->attempts), "transport");
		return;
	}
	complete(op, hr, hr->err, hr->errmsg);
}

static int
stream_data(const char *data, size_t len, void *ud)
{
	struct rw_kube_op *op = ud;
	if (op->state != OP_WIRE || !op->on_data)
		return 1;
	return op->on_data(data, len, op->ud);
}

static void
dispatch(struct rw_kube_op *op)
{
	struct rw_kube *k = op->k;
	struct rw_http_req hr;
	const char *tok = NULL;
	const char *hdrs[4];
	char cthdr[160];
	int nh = 0, rv;
	uint64_t now = uv_now(k->loop);

	if (op->attempts == 0 && !op->priority)
		rw_met_observe(k->m_wait, (const char *const[]){class_names[op->cls]},
			       (double)(now - op->enq_ms) / 1000.0);
	op->attempts++;
	op->start_ms = now;
	op->state = OP_WIRE;
	k->nwire++;
	rw_kubecfg_token(k->cfg, now, 0, &tok);
	hdrs[nh++] = "Accept: application/json";
	hdrs[nh++] = k->ua_header;
	if (op->body) {
		snprintf(cthdr, sizeof(cthdr), "Content-Type: %s", op->ctype);
		hdrs[nh++] = cthdr;
	}
	hdrs[nh] = NULL;
	memset(&hr, 0, sizeof(hr));
	hr.method = op->method;
	hr.url = op->url;
	hr.headers = hdrs;
	hr.body = op->body;
	hr.body_len = op->body_len;
	hr.timeout_ms = op->is_stream ? 0 : op->timeout_ms;
	hr.connect_timeout_ms = 10000;
	hr.max_body = k->o.max_body;
	hr.bearer_token = tok;
	hr.ca_file = k->cfg->ca_file;
	hr.client_cert = k->cfg->client_cert;
	hr.client_key = k->cfg->client_key;
	hr.insecure = k->cfg->insecure;
	hr.http2 = 1;
	hr.on_data = op->is_stream ? stream_data : NULL;
	rv = rw_http_start(k->http, &hr, http_done, op, &op->call);
	if (rv) {
		/* Report the failure from the loop, not from inside the caller. */
		k->nwire--;
		op->state = OP_BACKOFF;
		op->fail_err = rv;
		uv_timer_start(&op->timer, fail_cb, 0, 0);
	}
}

static void
pump(struct rw_kube *k)
{
	while (rw_fq_len(&k->fq, -1) && !k->closing) {
		/* A bounded number on the wire: a queue here, not a flood of connections
		 * at the API server that would delay the Lease renewal (priority). */
		if (k->nslots >= k->o.max_inflight)
			break;
		uint64_t w = rw_kube_tb_take(&k->tb, uv_now(k->loop));
		if (w) {
			uv_timer_start(&k->lim_timer, lim_timer_cb, w, 0);
			break;
		}
		struct rw_fq_node *n = rw_fq_pop(&k->fq);
		struct rw_kube_op *op =
		    (struct rw_kube_op *)(void *)((char *)n - offsetof(struct rw_kube_op, qn));
		if (!op->is_stream) {
			op->slot = 1;
			k->nslots++;
		}
		dispatch(op);
	}
	queue_gauges(k);
}

static void
kick_cb(uv_timer_t *t)
{
	struct rw_kube_op *op = t->data;
	if (op->state != OP_BACKOFF)
		return;
	dispatch(op);
}

static void
denied_cb(uv_timer_t *t)
{
	struct rw_kube_op *op = t->data;
	struct rw_http_resp hr;
	if (op->state != OP_BACKOFF)
		return;
	memset(&hr, 0, sizeof(hr));
	hr.status = 403;
	hr.body = op->denied;
	hr.body_len = strlen(op->denied);
	hr.retry_after_s = -1;
	rw_met_add(op->k->m_req, (const char *const[]){op->verb, "rbac_denied"}, 1);
	complete(op, &hr, 0, NULL);
}

/*
 * The 403 Status the API server would answer if the request is not in the
 * grant table (rbac.c), or NULL when it is granted (or on -ENOMEM: then the
 * server decides). Logged here so the call site and the missing grant are
 * named once, whatever the caller does with the answer.
 */
static char *
rbac_denial(const char *method, const char *path, const char *query)
{
	struct rw_rbac_attr a;
	struct rw_buf b, msg;
	struct rw_jw w;
	char res[200];
	if (rw_rbac_attr_of(method, path, query, &a) == 0 && rw_rbac_granted(&a, NULL))
		return NULL;
	rw_buf_init(&msg, 4096);
	rw_rbac_resource_name(&a, res, sizeof(res));
	if (!a.resource_request || !a.resource[0])
		rw_buf_printf(&msg,
			      "forbidden: raywarden-controller cannot %s path \"%s\": no "
			      "non-resource URL is in the controller's RBAC grant table",
			      a.verb[0] ? a.verb : method, a.path);
	else
		rw_buf_printf(
		    &msg,
		    "%s%s%s%sis forbidden: raywarden-controller cannot %s resource \"%s\" "
		    "in API group \"%s\"%s%s%s: not in the controller's RBAC grant table "
		    "(controller/kube/rbac.c)",
		    res, a.name[0] ? " \"" : "", a.name, a.name[0] ? "\" " : " ", a.verb, res,
		    a.group, a.ns[0] ? " in the namespace \"" : "", a.ns, a.ns[0] ? "\"" : "");
	rw_error("kube", "RBAC: refusing %s %s: %s", method, path, rw_buf_cstr(&msg));
	rw_buf_init(&b, 8192);
	rw_jw_init(&w, &b);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "kind", "Status");
	rw_jw_kstr(&w, "apiVersion", "v1");
	rw_jw_kstr(&w, "status", "Failure");
	rw_jw_kstr(&w, "message", rw_buf_cstr(&msg));
	rw_jw_kstr(&w, "reason", "Forbidden");
	rw_jw_kint(&w, "code", 403);
	rw_jw_obj_end(&w);
	char *out = rw_jw_finish(&w) == 0 ? rw_buf_steal(&b, NULL) : NULL;
	rw_buf_fini(&b);
	rw_buf_fini(&msg);
	return out;
}

static int
start(struct rw_kube *k, const struct rw_kube_req *req, rw_kube_data_cb on_data, rw_kube_cb cb,
      void *ud, struct rw_kube_op **opp, int stream)
{
	struct rw_kube_op *op;
	if (opp)
		*opp = NULL;
	if (!k || k->closing || !req || !req->path || req->path[0] != '/' || !cb)
		return -EINVAL;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->k = k;
	rw_list_init(&op->link);
	const char *m = req->method ? req->method : "GET";
	struct rw_buf url;
	rw_buf_init(&url, 64 * 1024);
	int rv = rw_buf_printf(&url, "%s%s%s%s", k->cfg->server, req->path,
			       req->query && *req->query ? "?" : "", req->query ? req->query : "");
	op->url = rw_buf_steal(&url, NULL);
	op->method = strdup(m);
	op->verb = strdup(req->verb ? req->verb : verb_of(m));
	op->flow = req->flow && *req->flow ? strdup(req->flow) : NULL;
	op->cls = req->best_effort ? RW_FQ_BEST_EFFORT : RW_FQ_NORMAL;
	op->source = req->source;
	if (req->body) {
		op->body = malloc(req->body_len + 1);
		if (op->body) {
			memcpy(op->body, req->body, req->body_len);
			op->body[req->body_len] = '\0';
		}
		op->body_len = req->body_len;
		op->ctype = strdup(req->content_type ? req->content_type : "application/json");
	}
	if (rv || !op->url || !op->method || !op->verb ||
	    (req->body && (!op->body || !op->ctype)) || (req->flow && *req->flow && !op->flow))
		goto fail;
	op->no_retry = req->no_retry || stream;
	op->priority = req->priority;
	op->is_stream = stream;
	op->idempotent = !strcasecmp(m, "GET") || !strcasecmp(m, "HEAD") || !strcasecmp(m, "PUT") ||
			 !strcasecmp(m, "DELETE");
	op->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : k->o.timeout_ms;
	op->cb = cb;
	op->on_data = on_data;
	op->ud = ud;
	op->enq_ms = uv_now(k->loop);
	op->denied = k->o.unrestricted ? NULL : rbac_denial(m, req->path, req->query);
	if (!op->priority && !op->denied) {
		/* Queued before anything else is set up: a full queue refuses cleanly. */
		rv = q_push(k, op);
		if (rv)
			goto fail;
	}
	uv_timer_init(k->loop, &op->timer);
	op->timer.data = op;
	rw_list_insert_head(&k->ops, &op->link);
	if (opp)
		*opp = op;
	if (op->denied) {
		/* Answered from the loop like any other request, never from inside this call. */
		op->state = OP_BACKOFF;
		uv_timer_start(&op->timer, denied_cb, 0, 0);
		return 0;
	}
	if (op->priority) {
		/* Skip the limiter, but never call back from inside this call. */
		op->state = OP_BACKOFF;
		uv_timer_start(&op->timer, kick_cb, 0, 0);
		return 0;
	}
	pump(k);
	return 0;
fail:
	free(op->url);
	free(op->method);
	free(op->verb);
	free(op->flow);
	free(op->body);
	free(op->ctype);
	free(op->denied);
	free(op);
	return rv ? rv : -ENOMEM;
}

int
rw_kube_request(struct rw_kube *k, const struct rw_kube_req *req, rw_kube_cb cb, void *ud,
		struct rw_kube_op **opp)
{
	return start(k, req, NULL, cb, ud, opp, 0);
}

int
rw_kube_stream(struct rw_kube *k, const struct rw_kube_req *req, rw_kube_data_cb on_data,
	       rw_kube_cb done, void *ud, struct rw_kube_op **opp)
{
	if (!on_data)
		return -EINVAL;
	return start(k, req, on_data, done, ud, opp, 1);
}

int
rw_kube_status_parse(const char *body, size_t len, struct rw_kube_status *out)
{
	struct rw_json j = {0};
	int causes, i, c;
	memset(out, 0, sizeof(*out));
	/* A Status is small; a larger error body (a proxy's HTML page) says nothing we use. */
	if (!body || !len || len >= 65536 || rw_json_parse(&j, body, len, 4096, NULL, 0) != 0 ||
	    rw_json_type(&j, 0) != RW_JSON_OBJECT) {
		rw_json_fini(&j);
		return -EINVAL;
	}
	(void)rw_json_str(&j, rw_json_get(&j, 0, "reason"), out->reason, sizeof(out->reason));
	/* A long message (a schema's list of invalid fields) is cut, not lost. */
	(void)rw_json_str_cut(&j, rw_json_get(&j, 0, "message"), out->message,
			      sizeof(out->message));
	causes = rw_json_path(&j, 0, "details.causes");
	RW_JSON_ARR_FOREACH (&j, causes, i, c)
		if (rw_json_streq(&j, rw_json_get(&j, c, "reason"), "NamespaceTerminating"))
			out->ns_terminating = true;
	rw_json_fini(&j);
	return 0;
}

bool
rw_kube_namespace_terminating(const struct rw_kube_resp *r)
{
	return !r->err && r->status == 403 && r->ns_terminating;
}

bool
rw_kube_already_exists(const struct rw_kube_resp *r)
{
	return !r->err && r->status == 409 && r->reason && strcmp(r->reason, "AlreadyExists") == 0;
}

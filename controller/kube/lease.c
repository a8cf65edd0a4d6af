/*
 * lease.c - Lease-based leader election (see lease.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lease.h"
#include "rw/clock.h"
#include "rw/json.h"
#include "rw/log.h"

enum lstate { L_IDLE, L_CANDIDATE, L_LEADER, L_RELEASING, L_DONE };

struct rw_lease {
	struct rw_kube *k;
	uv_loop_t *loop;
	struct rw_lease_opts o;
	char *ns, *name, *identity;
	enum lstate state;
	bool blocked;
	uv_timer_t tick, deadline;
	struct rw_kube_op *op;
	uint64_t attempt_ms;   /* when the current attempt started */
	uint64_t renewed_ms;   /* start of the last successful renewal */
	char rv[64];	       /* resourceVersion last seen */
	char record[512];      /* holder|renewTime|acquireTime|transitions last seen */
	uint64_t observed_ms;  /* when record last changed */
	char holder[256];      /* holder last seen */
	char acquire_time[40]; /* our acquireTime while leading */
	int64_t transitions;
	int64_t dur_s; /* leaseDurationSeconds last seen */
	void (*release_done)(void *);
	void *release_ud;
	int pending_closes;
	bool freeing;
	bool release_retried;
	struct rw_met_family *m_leader;
};

static void
set_leader_metric(struct rw_lease *l)
{
	rw_met_set(l->m_leader, (const char *const[]){l->name}, l->state == L_LEADER ? 1 : 0);
}

static void tick_cb(uv_timer_t *t);

static void
schedule(struct rw_lease *l, uint64_t ms)
{
	if (l->state == L_CANDIDATE || l->state == L_LEADER)
		uv_timer_start(&l->tick, tick_cb, ms, 0);
}

static void
lose(struct rw_lease *l, const char *why)
{
	if (l->state != L_LEADER)
		return;
	rw_warn("lease", "%s/%s: leadership lost (%s): stopping", l->ns, l->name, why);
	l->state = L_CANDIDATE;
	uv_timer_stop(&l->deadline);
	rw_kube_cancel(l->op);
	l->op = NULL;
	set_leader_metric(l);
	if (l->o.on_stop)
		l->o.on_stop(l->o.ud);
	schedule(l, l->o.retry_ms);
}

static void
deadline_cb(uv_timer_t *t)
{
	struct rw_lease *l = t->data;
	lose(l, "no renewal within the renew deadline");
}

/* Record what the Lease says; the observation clock restarts when it changed. */
static void
observe(struct rw_lease *l, const char *holder, const char *renew, const char *acquire,
	int64_t trans, int64_t dur, const char *rv)
{
	char rec[512];
	snprintf(rec, sizeof(rec), "%s|%s|%s|%lld|%lld", holder, renew, acquire, (long long)trans,
		 (long long)dur);
	if (strcmp(rec, l->record) != 0) {
		snprintf(l->record, sizeof(l->record), "%s", rec);
		l->observed_ms = uv_now(l->loop);
		if (strcmp(holder, l->holder) != 0 && l->o.on_change)
			l->o.on_change(holder, l->o.ud);
	}
	snprintf(l->holder, sizeof(l->holder), "%s", holder);
	snprintf(l->rv, sizeof(l->rv), "%s", rv);
	l->transitions = trans;
	l->dur_s = dur;
}

/* Parse a Lease object; returns 0 or -EINVAL. */
static int
parse_lease(struct rw_lease *l, const char *body, size_t len)
{
	struct rw_json j = {0};
	char holder[256] = "", renew[40] = "", acquire[40] = "", rv[64] = "";
	int64_t trans = 0, dur = 0;
	if (rw_json_parse(&j, body, len, 4096, NULL, 0) != 0)
		return -EINVAL;
	int spec = rw_json_get(&j, 0, "spec");
	rw_json_str(&j, rw_json_get(&j, spec, "holderIdentity"), holder, sizeof(holder));
	rw_json_str(&j, rw_json_get(&j, spec, "renewTime"), renew, sizeof(renew));
	rw_json_str(&j, rw_json_get(&j, spec, "acquireTime"), acquire, sizeof(acquire));
	rw_json_int(&j, rw_json_get(&j, spec, "leaseTransitions"), &trans);
	rw_json_int(&j, rw_json_get(&j, spec, "leaseDurationSeconds"), &dur);
	rw_json_str(&j, rw_json_path(&j, 0, "metadata.resourceVersion"), rv, sizeof(rv));
	rw_json_fini(&j);
	if (!rv[0])
		return -EINVAL;
	observe(l, holder, renew, acquire, trans, dur, rv);
	return 0;
}

static int
lease_body(struct rw_lease *l, struct rw_buf *b, const char *holder, const char *acquire,
	   const char *renew, int64_t dur_s, int64_t trans, bool with_rv)
{
	struct rw_jw w;
	rw_jw_init(&w, b);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "apiVersion", "coordination.k8s.io/v1");
	rw_jw_kstr(&w, "kind", "Lease");
	rw_jw_key(&w, "metadata");
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "name", l->name);
	rw_jw_kstr(&w, "namespace", l->ns);
	if (with_rv)
		rw_jw_kstr(&w, "resourceVersion", l->rv);
	rw_jw_obj_end(&w);
	rw_jw_key(&w, "spec");
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "holderIdentity", holder);
	rw_jw_kint(&w, "leaseDurationSeconds", dur_s);
	rw_jw_kstr(&w, "acquireTime", acquire);
	rw_jw_kstr(&w, "renewTime", renew);
	rw_jw_kint(&w, "leaseTransitions", trans);
	rw_jw_obj_end(&w);
	rw_jw_obj_end(&w);
	return rw_jw_finish(&w);
}

static void write_done(const struct rw_kube_resp *r, void *ud);

/* PUT (update) or POST (create) a record naming us as the holder. */
static void
write_lease(struct rw_lease *l, bool create, bool new_term)
{
	char now[RW_RFC3339_LEN], path[600];
	struct rw_buf b;
	struct rw_kube_req req;
	int64_t trans = l->transitions;
	rw_time_rfc3339_us(rw_clock_wall_us(), now);
	if (new_term) {
		snprintf(l->acquire_time, sizeof(l->acquire_time), "%s", now);
		if (!create && l->holder[0] && strcmp(l->holder, l->identity) != 0)
			trans++;
	}
	rw_buf_init(&b, 8192);
	/* The API counts whole seconds: round up, never promise less than lease_ms. */
	if (lease_body(l, &b, l->identity, l->acquire_time, now,
		       (int64_t)((l->o.lease_ms + 999) / 1000), trans, !create) != 0) {
		rw_buf_fini(&b);
		schedule(l, l->o.retry_ms);
		return;
	}
	memset(&req, 0, sizeof(req));
	if (create) {
		snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases",
			 l->ns);
		req.method = "POST";
	} else {
		snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
			 l->ns, l->name);
		req.method = "PUT";
	}
	req.path = path;
	req.body = b.data;
	req.body_len = b.len;
	req.no_retry = 1;
	req.priority = 1;
	req.timeout_ms = (long)(l->o.renew_deadline_ms / 2);
	if (rw_kube_request(l->k, &req, write_done, l, &l->op) != 0)
		schedule(l, l->o.retry_ms);
	rw_buf_fini(&b);
}

static void
write_done(const struct rw_kube_resp *r, void *ud)
{
	struct rw_lease *l = ud;
	l->op = NULL;
	if (l->state != L_CANDIDATE && l->state != L_LEADER)
		return;
	if (!r->err && (r->status == 200 || r->status == 201) &&
	    parse_lease(l, r->body, r->body_len) == 0) {
		l->renewed_ms = l->attempt_ms;
		uint64_t now = uv_now(l->loop), dl = l->renewed_ms + l->o.renew_deadline_ms;
		uv_timer_start(&l->deadline, deadline_cb, dl > now ? dl - now : 1, 0);
		if (l->state == L_CANDIDATE) {
			l->state = L_LEADER;
			set_leader_metric(l);
			rw_info("lease", "%s/%s: became the leader as %s", l->ns, l->name,
				l->identity);
			if (l->o.on_start)
				l->o.on_start(l->o.ud);
		}
		schedule(l, l->o.retry_ms);
		return;
	}
	if (r->err || r->status != 409)
		rw_debug("lease", "%s/%s: write failed: %s %ld %s", l->ns, l->name,
			 r->err ? "error" : "HTTP", r->status, r->message);
	if (l->state == L_LEADER)
		l->rv[0] = '\0'; /* read it again before the next try */
	schedule(l, l->state == L_LEADER ? l->o.retry_ms / 2 : l->o.retry_ms);
}

static void
get_done(const struct rw_kube_resp *r, void *ud)
{
	struct rw_lease *l = ud;
	l->op = NULL;
	if (l->state != L_CANDIDATE && l->state != L_LEADER)
		return;
	if (!r->err && r->status == 404) {
		write_lease(l, true, true);
		return;
	}
	if (r->err || r->status != 200 || parse_lease(l, r->body, r->body_len) != 0) {
		rw_debug("lease", "%s/%s: read failed: %s %ld %s", l->ns, l->name,
			 r->err ? "error" : "HTTP", r->status, r->message);
		schedule(l, l->o.retry_ms);
		return;
	}
	bool mine = strcmp(l->holder, l->identity) == 0;
	uint64_t dur = l->dur_s > 0 ? (uint64_t)l->dur_s * 1000 : l->o.lease_ms;
	bool expired = uv_now(l->loop) >= l->observed_ms + dur;
	if (l->state == L_LEADER && !mine) {
		lose(l, "another holder took the lease");
		return;
	}
	if (mine || !l->holder[0] || expired) {
		write_lease(l, false, !mine || l->state != L_LEADER);
		return;
	}
	schedule(l, l->o.retry_ms);
}

static void
tick_cb(uv_timer_t *t)
{
	struct rw_lease *l = t->data;
	char path[600];
	struct rw_kube_req req;
	if ((l->state != L_CANDIDATE && l->state != L_LEADER) || l->op)
		return;
	if (l->blocked) {
		schedule(l, l->o.retry_ms);
		return;
	}
	l->attempt_ms = uv_now(l->loop);
	if (l->state == L_LEADER && l->rv[0]) {
		write_lease(l, false, false); /* renew directly with the known version */
		return;
	}
	snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", l->ns,
		 l->name);
	memset(&req, 0, sizeof(req));
	req.path = path;
	req.no_retry = 1;
	req.priority = 1;
	req.timeout_ms = (long)(l->o.renew_deadline_ms / 2);
	if (rw_kube_request(l->k, &req, get_done, l, &l->op) != 0)
		schedule(l, l->o.retry_ms);
}

struct rw_met_family *
rw_lease_metric(struct rw_met *met)
{
	/* controller-runtime v0.22.1's pkg/metrics/leaderelection.go. */
	return rw_met_gauge(
	    met, "leader_election_master_status",
	    "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, "
	    "1 "
	    "indicates master. 'name' is the string used to identify the lease. Please make sure "
	    "to group by name.",
	    (const char *const[]){"name", NULL});
}

int
rw_lease_new(struct rw_kube *k, const struct rw_lease_opts *opts, struct rw_lease **out)
{
	struct rw_lease *l;
	char id[300];
	*out = NULL;
	if (!k || !opts || !opts->ns || !*opts->ns)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->k = k;
	l->loop = rw_kube_loop(k);
	l->o = *opts;
	if (!l->o.lease_ms)
		l->o.lease_ms = 15000;
	if (!l->o.renew_deadline_ms)
		l->o.renew_deadline_ms = 10000;
	if (!l->o.retry_ms)
		l->o.retry_ms = 2000;
	if (l->o.renew_deadline_ms >= l->o.lease_ms || l->o.retry_ms >= l->o.renew_deadline_ms) {
		free(l);
		return -EINVAL;
	}
	if (opts->identity && *opts->identity) {
		snprintf(id, sizeof(id), "%s", opts->identity);
	} else {
		char host[256] = "unknown";
		gethostname(host, sizeof(host) - 1);
		snprintf(id, sizeof(id), "%s_%08x%08x", host, (unsigned)rand(), (unsigned)rand());
	}
	l->ns = strdup(opts->ns);
	l->name = strdup(opts->name && *opts->name ? opts->name : "raywarden-controller-leader");
	l->identity = strdup(id);
	if (!l->ns || !l->name || !l->identity) {
		free(l->ns);
		free(l->name);
		free(l->identity);
		free(l);
		return -ENOMEM;
	}
	l->o.ns = l->o.name = l->o.identity = NULL;
	uv_timer_init(l->loop, &l->tick);
	uv_timer_init(l->loop, &l->deadline);
	l->tick.data = l->deadline.data = l;
	l->m_leader = rw_lease_metric(rw_kube_metrics(k));
	set_leader_metric(l);
	*out = l;
	return 0;
}

int
rw_lease_start(struct rw_lease *l)
{
	if (!l || l->state != L_IDLE)
		return -EINVAL;
	l->state = L_CANDIDATE;
	rw_info("lease", "%s/%s: campaigning as %s", l->ns, l->name, l->identity);
	uv_timer_start(&l->tick, tick_cb, 0, 0);
	return 0;
}

bool
rw_lease_is_leader(const struct rw_lease *l)
{
	return l && l->state == L_LEADER;
}

const char *
rw_lease_identity(const struct rw_lease *l)
{
	return l->identity;
}

const char *
rw_lease_holder(const struct rw_lease *l)
{
	return l->holder;
}

void
rw_lease_block(struct rw_lease *l, bool blocked)
{
	if (!l)
		return;
	l->blocked = blocked;
	if (blocked) {
		rw_kube_cancel(l->op);
		l->op = NULL;
	}
}

static void
release_finish(struct rw_lease *l)
{
	void (*cb)(void *) = l->release_done;
	void *ud = l->release_ud;
	l->state = L_DONE;
	l->release_done = NULL;
	if (cb)
		cb(ud);
}

static void release_put(struct rw_lease *l);

static void
release_get_done(const struct rw_kube_resp *r, void *ud)
{
	struct rw_lease *l = ud;
	l->op = NULL;
	/* Still ours (a renewal raced with the release): try once more with this version. */
	if (!r->err && r->status == 200 && parse_lease(l, r->body, r->body_len) == 0 &&
	    strcmp(l->holder, l->identity) == 0) {
		l->release_retried = true;
		release_put(l);
		return;
	}
	release_finish(l);
}

static void
release_done(const struct rw_kube_resp *r, void *ud)
{
	struct rw_lease *l = ud;
	l->op = NULL;
	if (!r->err && r->status == 409 && !l->release_retried) {
		char path[600];
		struct rw_kube_req req;
		snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
			 l->ns, l->name);
		memset(&req, 0, sizeof(req));
		req.path = path;
		req.no_retry = 1;
		req.priority = 1;
		req.timeout_ms = 5000;
		l->release_retried = true;
		if (rw_kube_request(l->k, &req, release_get_done, l, &l->op) == 0)
			return;
	}
	if (!r->err && r->status == 200)
		rw_info("lease", "%s/%s: released", l->ns, l->name);
	else
		rw_warn("lease", "%s/%s: release failed: %s %ld %s", l->ns, l->name,
			r->err ? "error" : "HTTP", r->status, r->message);
	release_finish(l);
}

static void
release_now_cb(uv_timer_t *t)
{
	release_finish(t->data);
}

void
rw_lease_release(struct rw_lease *l, void (*done)(void *), void *ud)
{
	bool was_leader;
	if (!l || l->state == L_RELEASING || l->state == L_DONE)
		return;
	was_leader = l->state == L_LEADER;
	l->state = L_RELEASING;
	l->release_done = done;
	l->release_ud = ud;
	uv_timer_stop(&l->tick);
	uv_timer_stop(&l->deadline);
	rw_kube_cancel(l->op);
	l->op = NULL;
	set_leader_metric(l);
	if (!was_leader || !l->rv[0]) {
		uv_timer_start(&l->tick, release_now_cb, 0, 0);
		return;
	}
	release_put(l);
}

/* Write the Lease back with an empty holder (client-go's release record). */
static void
release_put(struct rw_lease *l)
{
	char now[RW_RFC3339_LEN], path[600];
	struct rw_buf b;
	struct rw_kube_req req;
	rw_time_rfc3339_us(rw_clock_wall_us(), now);
	rw_buf_init(&b, 8192);
	memset(&req, 0, sizeof(req));
	if (lease_body(l, &b, "", now, now, 1, l->transitions, true) != 0) {
		rw_buf_fini(&b);
		uv_timer_start(&l->tick, release_now_cb, 0, 0);
		return;
	}
	snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", l->ns,
		 l->name);
	req.method = "PUT";
	req.path = path;
	req.body = b.data;
	req.body_len = b.len;
	req.no_retry = 1;
	req.priority = 1;
	req.timeout_ms = 5000;
	if (rw_kube_request(l->k, &req, release_done, l, &l->op) != 0)
		uv_timer_start(&l->tick, release_now_cb, 0, 0);
	rw_buf_fini(&b);
}

static void
lease_closed(uv_handle_t *h)
{
	struct rw_lease *l = h->data;
	if (--l->pending_closes)
		return;
	free(l->ns);
	free(l->name);
	free(l->identity);
	free(l);
}

void
rw_lease_free(struct rw_lease *l)
{
	if (!l || l->freeing)
		return;
	l->freeing = true;
	rw_kube_cancel(l->op);
	l->op = NULL;
	l->state = L_DONE;
	l->pending_closes = 2;
	uv_close((uv_handle_t *)&l->tick, lease_closed);
	uv_close((uv_handle_t *)&l->deadline, lease_closed);
}

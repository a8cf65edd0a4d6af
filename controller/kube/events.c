/*
 * events.c - events.k8s.io/v1 recorder with series aggregation, a
 * per-object rate limit and a bound on pending writes (see events.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "evcorr.h"
#include "kmap.h"
#include "lease.h"
#include "rw/clock.h"
#include "rw/json.h"
#include "rw/log.h"

#define NOTE_MAX 1024 /* the API limits note to 1 kB */

struct agg {
	struct rw_ev *ev;
	struct rw_evc_obs *obs;	 /* the correlator's record (count, times) */
	char *flow;		 /* the regarding object's "namespace/name" */
	char ns[254], name[254]; /* the Event object, once created */
	int created;		 /* the Event exists (name known) */
	int inflight;		 /* a create/patch is on the wire */
	int warning;		 /* type Warning */
	int sending;		 /* count carried by the write in flight */
	struct rw_kube_op *op;
};

struct rw_ev {
	struct rw_kube *k;
	uv_loop_t *loop;
	struct rw_ev_opts o;
	char *controller, *instance;
	struct rw_evc *evc; /* aggregation, spam filter and series records */
	unsigned long created, patched, dropped;
	size_t pending; /* writes queued or in flight */
	unsigned long seq;
	struct rw_met_family *m_events;
	rw_ev_tap_fn tap;
	void *tap_ud;
};

static void agg_free(void *p);

int
rw_ev_new(struct rw_kube *k, const struct rw_ev_opts *opts, struct rw_ev **out)
{
	static const char *const lt[] = {"type", "result", NULL};
	struct rw_ev *ev;
	*out = NULL;
	if (!k)
		return -EINVAL;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->k = k;
	ev->loop = rw_kube_loop(k);
	if (opts)
		ev->o = *opts;
	if (ev->o.burst <= 0)
		ev->o.burst = 25;
	if (ev->o.refill_per_s <= 0)
		ev->o.refill_per_s = 1.0 / 300;
	if (!ev->o.series_window_ms)
		ev->o.series_window_ms = 360000;
	if (!ev->o.max_tracked)
		ev->o.max_tracked = 4096;
	if (!ev->o.max_pending)
		ev->o.max_pending = 1000; /* client-go's maxQueuedEvents */
	ev->controller =
	    strdup(ev->o.controller ? ev->o.controller : "raywarden.io/raywarden-controller");
	ev->instance = strdup(ev->o.instance ? ev->o.instance : "raywarden-controller");
	if (!ev->controller || !ev->instance) {
		free(ev->controller);
		free(ev->instance);
		free(ev);
		return -ENOMEM;
	}
	ev->o.controller = ev->o.instance = NULL;
	struct rw_evc_opts co = {.max_entries = ev->o.max_tracked,
				 .burst = ev->o.burst,
				 .refill_per_s = ev->o.refill_per_s,
				 .series_window_ms = ev->o.series_window_ms};
	if (rw_evc_new(&co, agg_free, &ev->evc) != 0) {
		free(ev->controller);
		free(ev->instance);
		free(ev);
		return -ENOMEM;
	}
	ev->m_events = rw_met_counter(rw_kube_metrics(k), "raywarden_events_total",
				      "Events by type and result (created, aggregated, dropped, "
				      "failed).",
				      lt);
	*out = ev;
	return 0;
}

static void
agg_free(void *p)
{
	struct agg *a = p;
	if (!a)
		return;
	if (a->op) {
		rw_kube_cancel(a->op);
		a->ev->pending--;
	}
	if (a->obs)
		a->obs->ud = NULL;
	free(a->flow);
	free(a);
}

void
rw_ev_free(struct rw_ev *ev)
{
	if (!ev)
		return;
	rw_evc_free(ev->evc);
	free(ev->controller);
	free(ev->instance);
	free(ev);
}

static int send_patch(struct agg *a);

/* One occurrence dropped: counted, never written. */
static void
drop(struct rw_ev *ev, const char *type)
{
	ev->dropped++;
	rw_met_add(ev->m_events, (const char *const[]){type, "dropped"}, 1);
}

static void
write_done(const struct rw_kube_resp *r, void *ud)
{
	struct agg *a = ud;
	struct rw_ev *ev = a->ev;
	bool create = !a->created;
	a->op = NULL;
	a->inflight = 0;
	ev->pending--;
	if (rw_kube_namespace_terminating(r)) {
		/* Its namespace is being deleted, and the Event with it: nothing failed. */
		drop(ev, a->warning ? "Warning" : "Normal");
		a->created = 0;
		return;
	}
	if (r->err || r->status < 200 || r->status >= 300) {
		rw_met_add(ev->m_events, (const char *const[]){"", "failed"}, 1);
		rw_debug("events", "event write failed: %s %ld %s", r->err ? "error" : "HTTP",
			 r->status, r->message);
		if (!create) {
			/* The Event is gone (or unwritable): start a new one next time. */
			a->created = 0;
		}
		return;
	}
	if (create) {
		a->created = 1;
		ev->created++;
	} else {
		ev->patched++;
	}
	if (a->obs->count > a->sending && send_patch(a) != 0) /* repeats that arrived meanwhile */
		drop(ev, a->warning ? "Warning" : "Normal");
}

static int send_agg(struct agg *a, const struct rw_ev_ref *ref, int warning, const char *reason,
		    const char *action, const char *note);

/* Write a: as a best-effort request in its regarding object's flow. */
static int
start_write(struct agg *a, struct rw_kube_req *req)
{
	int rv;
	req->best_effort = 1;
	req->flow = a->flow;
	rv = rw_kube_request(a->ev->k, req, write_done, a, &a->op);
	if (rv == 0) {
		a->inflight = 1;
		a->sending = a->obs->count;
		a->ev->pending++;
	}
	return rv;
}

static int
send_agg(struct agg *a, const struct rw_ev_ref *ref, int warning, const char *reason,
	 const char *action, const char *note)
{
	struct rw_ev *ev = a->ev;
	struct rw_buf b;
	struct rw_jw w;
	struct rw_kube_req req;
	char path[700], now[RW_RFC3339_LEN];
	int rv;
	rw_time_rfc3339_us(rw_clock_wall_us(), now);
	rw_buf_init(&b, 16384);
	rw_jw_init(&w, &b);
	memset(&req, 0, sizeof(req));
	if (!a->created) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(a->ns, sizeof(a->ns), "%s", ref->ns && *ref->ns ? ref->ns : "default");
		/* client-go names Events "<object>.<hex nanoseconds>". */
		snprintf(a->name, sizeof(a->name), "%.200s.%llx%02lx", ref->name,
			 (unsigned long long)ts.tv_sec * 1000000000ull +
			     (unsigned long long)ts.tv_nsec,
			 ev->seq++ & 0xff);
		rw_jw_obj_begin(&w);
		rw_jw_kstr(&w, "apiVersion", "events.k8s.io/v1");
		rw_jw_kstr(&w, "kind", "Event");
		rw_jw_key(&w, "metadata");
		rw_jw_obj_begin(&w);
		rw_jw_kstr(&w, "name", a->name);
		rw_jw_kstr(&w, "namespace", a->ns);
		rw_jw_obj_end(&w);
		rw_jw_kstr(&w, "eventTime", now);
		rw_jw_kstr(&w, "reportingController", ev->controller);
		rw_jw_kstr(&w, "reportingInstance", ev->instance);
		rw_jw_kstr(&w, "action", action);
		rw_jw_kstr(&w, "reason", reason);
		rw_jw_kstr(&w, "note", note);
		rw_jw_kstr(&w, "type", warning ? "Warning" : "Normal");
		rw_jw_key(&w, "regarding");
		rw_jw_obj_begin(&w);
		rw_jw_kstr(&w, "apiVersion", ref->api_version);
		rw_jw_kstr(&w, "kind", ref->kind);
		if (ref->ns && *ref->ns)
			rw_jw_kstr(&w, "namespace", ref->ns);
		rw_jw_kstr(&w, "name", ref->name);
		if (ref->uid && *ref->uid)
			rw_jw_kstr(&w, "uid", ref->uid);
		rw_jw_obj_end(&w);
		if (a->obs->count > 1) {
			rw_jw_key(&w, "series");
			rw_jw_obj_begin(&w);
			rw_jw_kint(&w, "count", a->obs->count);
			rw_jw_kstr(&w, "lastObservedTime", now);
			rw_jw_obj_end(&w);
		}
		rw_jw_obj_end(&w);
		snprintf(path, sizeof(path), "/apis/events.k8s.io/v1/namespaces/%s/events", a->ns);
		req.method = "POST";
	} else {
		rw_buf_fini(&b);
		return send_patch(a);
	}
	rv = rw_jw_finish(&w);
	req.path = path;
	req.body = b.data;
	req.body_len = b.len;
	if (rv == 0)
		rv = start_write(a, &req);
	rw_buf_fini(&b);
	return rv;
}

/* Merge-patch the series of an existing Event to the current count. */
static int
send_patch(struct agg *a)
{
	struct rw_buf b;
	struct rw_jw w;
	struct rw_kube_req req;
	char path[700], now[RW_RFC3339_LEN];
	int rv;
	rw_time_rfc3339_us(rw_clock_wall_us(), now);
	rw_buf_init(&b, 4096);
	rw_jw_init(&w, &b);
	rw_jw_obj_begin(&w);
	rw_jw_key(&w, "series");
	rw_jw_obj_begin(&w);
	rw_jw_kint(&w, "count", a->obs->count);
	rw_jw_kstr(&w, "lastObservedTime", now);
	rw_jw_obj_end(&w);
	rw_jw_obj_end(&w);
	rv = rw_jw_finish(&w);
	snprintf(path, sizeof(path), "/apis/events.k8s.io/v1/namespaces/%s/events/%s", a->ns,
		 a->name);
	memset(&req, 0, sizeof(req));
	req.method = "PATCH";
	req.content_type = "application/merge-patch+json";
	req.path = path;
	req.body = b.data;
	req.body_len = b.len;
	if (rv == 0)
		rv = start_write(a, &req);
	rw_buf_fini(&b);
	return rv;
}

/* Cut s at a UTF-8 character boundary if the last sequence is incomplete. */
static void
utf8_trim(char *s)
{
	size_t n = strlen(s), i = n, need;
	unsigned char c;
	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && n - i < 3)
		i--;
	if (i == 0)
		return;
	c = (unsigned char)s[i - 1];
	need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	if (c >= 0x80 && n - (i - 1) < need)
		s[i - 1] = '\0';
}

void
rw_ev_set_tap(struct rw_ev *ev, rw_ev_tap_fn fn, void *ud)
{
	if (!ev)
		return;
	ev->tap = fn;
	ev->tap_ud = fn ? ud : NULL;
}

int
rw_ev_emit(struct rw_ev *ev, const struct rw_ev_ref *ref, int warning, const char *reason,
	   const char *action, const char *fmt, ...)
{
	char note[NOTE_MAX];
	struct rw_buf okey;
	struct rw_evc_res res;
	struct agg *a;
	va_list ap;
	int rv = 0;
	const char *type = warning ? "Warning" : "Normal";
	if (!ev || !ref || !ref->name || !ref->kind || !ref->api_version || !reason || !action ||
	    !fmt)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	utf8_trim(note);
	rw_buf_init(&okey, 2048);
	if (rw_buf_printf(&okey, "%s\x1f%s\x1f%s\x1f%s\x1f%s", ref->api_version, ref->kind,
			  ref->ns ? ref->ns : "", ref->name, ref->uid ? ref->uid : "") != 0 ||
	    rw_evc_correlate(ev->evc, rw_buf_cstr(&okey), type, reason, action, note,
			     uv_now(ev->loop), &res) != 0) {
		rv = -ENOMEM;
		goto out;
	}
	utf8_trim(res.note);
	if (res.drop) {
		drop(ev, type); /* the object's spam filter */
		rv = -EAGAIN;
		goto out;
	}
	if (ev->tap)
		ev->tap(ref, warning, reason, res.note, ev->tap_ud);
	a = res.obs->ud;
	if ((!a || !a->inflight) && ev->pending >= ev->o.max_pending) {
		/* Under pressure: only repeats of pending writes are taken (folded). */
		rw_evc_uncount(ev->evc, &res);
		drop(ev, type);
		rv = -EAGAIN;
		goto out;
	}
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (a)
			a->flow = malloc(strlen(ref->ns ? ref->ns : "") + strlen(ref->name) + 2);
		if (!a || !a->flow) {
			if (a)
				free(a);
			rw_evc_uncount(ev->evc, &res);
			rv = -ENOMEM;
			goto out;
		}
		sprintf(a->flow, "%s/%s", ref->ns ? ref->ns : "", ref->name);
		a->ev = ev;
		a->obs = res.obs;
		res.obs->ud = a;
	}
	a->warning = warning;
	if (!a->inflight && /* else folded into the write after the one in flight */
	    send_agg(a, ref, warning, reason, action, res.note) != 0) {
		/* Refused (the client's best-effort queue is full) or no memory. */
		rw_evc_uncount(ev->evc, &res);
		drop(ev, type);
		rv = -EAGAIN;
		goto out;
	}
	rw_met_add(ev->m_events,
		   (const char *const[]){type, res.obs->count > 1 || res.combined ? "aggregated"
										  : "created"},
		   1);
	if (rw_log_enabled(RW_LOG_DEBUG))
		rw_debug("events", "%s %s/%s %s: %s", type, ref->ns ? ref->ns : "", ref->name,
			 reason, res.note);
out:
	rw_buf_fini(&okey);
	return rv;
}

unsigned long
rw_ev_created(const struct rw_ev *ev)
{
	return ev ? ev->created : 0;
}

unsigned long
rw_ev_patched(const struct rw_ev *ev)
{
	return ev ? ev->patched : 0;
}

unsigned long
rw_ev_dropped(const struct rw_ev *ev)
{
	return ev ? ev->dropped : 0;
}

size_t
rw_ev_pending(const struct rw_ev *ev)
{
	return ev ? ev->pending : 0;
}

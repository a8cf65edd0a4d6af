/*
 * sp_json.c - /status.json from plain structs (sp_json.h).
 */
#include "sp_json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rw/json.h"

void
rw_sp_ring_push(struct rw_sp_ring *r, int64_t at_ms, bool ready, const char *reason)
{
	struct rw_sp_transition *t;
	if (r->n < RW_SP_TRANSITIONS) {
		t = &r->t[(r->start + r->n) % RW_SP_TRANSITIONS];
		r->n++;
	} else {
		t = &r->t[r->start];
		r->start = (r->start + 1) % RW_SP_TRANSITIONS;
	}
	t->at_ms = at_ms;
	t->ready = ready;
	snprintf(t->reason, sizeof(t->reason), "%s", reason ? reason : "");
}

const struct rw_sp_transition *
rw_sp_ring_at(const struct rw_sp_ring *r, int i)
{
	return &r->t[(r->start + i) % RW_SP_TRANSITIONS];
}

static const char *
s_or(const char *s)
{
	return s ? s : "";
}

static void
put_cluster(struct rw_jw *w, const void *item)
{
	const struct rw_sp_cluster *c = item;
	rw_jw_obj_begin(w);
	rw_jw_kstr(w, "namespace", s_or(c->ns));
	rw_jw_kstr(w, "name", s_or(c->name));
	rw_jw_kstr(w, "state", s_or(c->state));
	rw_jw_kstr(w, "owner_kind", s_or(c->owner_kind));
	rw_jw_kstr(w, "owner_name", s_or(c->owner_name));
	rw_jw_kint(w, "pods_ready", c->pods_ready);
	rw_jw_kint(w, "pods_total", c->pods_total);
	rw_jw_kint(w, "desired_workers", c->desired_workers);
	rw_jw_kint(w, "ready_workers", c->ready_workers);
	rw_jw_obj_end(w);
}

static void
put_service(struct rw_jw *w, const void *item)
{
	const struct rw_sp_service *s = item;
	rw_jw_obj_begin(w);
	rw_jw_kstr(w, "namespace", s_or(s->ns));
	rw_jw_kstr(w, "name", s_or(s->name));
	rw_jw_kstr(w, "status", s_or(s->status));
	rw_jw_kbool(w, "ready", s->ready);
	rw_jw_kbool(w, "upgrading", s->upgrading);
	rw_jw_kstr(w, "active_cluster", s_or(s->active_cluster));
	rw_jw_kstr(w, "pending_cluster", s_or(s->pending_cluster));
	rw_jw_kint(w, "serve_endpoints", s->serve_endpoints);
	rw_jw_key(w, "applications");
	rw_jw_arr_begin(w);
	for (int i = 0; i < s->napps; i++) {
		rw_jw_obj_begin(w);
		rw_jw_kstr(w, "name", s_or(s->apps[i].name));
		rw_jw_kstr(w, "status", s_or(s->apps[i].status));
		rw_jw_kstr(w, "message", s_or(s->apps[i].message));
		rw_jw_obj_end(w);
	}
	rw_jw_arr_end(w);
	rw_jw_obj_end(w);
}

static void
put_job(struct rw_jw *w, const void *item)
{
	const struct rw_sp_job *j = item;
	rw_jw_obj_begin(w);
	rw_jw_kstr(w, "namespace", s_or(j->ns));
	rw_jw_kstr(w, "name", s_or(j->name));
	rw_jw_kstr(w, "deployment_status", s_or(j->deployment_status));
	rw_jw_kstr(w, "job_status", s_or(j->job_status));
	rw_jw_kstr(w, "cluster", s_or(j->cluster));
	rw_jw_kstr(w, "job_id", s_or(j->job_id));
	rw_jw_kstr(w, "message", s_or(j->message));
	rw_jw_obj_end(w);
}

static void
put_event(struct rw_jw *w, const void *item)
{
	const struct rw_sp_event *e = item;
	rw_jw_obj_begin(w);
	rw_jw_kint(w, "at", e->at_ms);
	rw_jw_kstr(w, "type", e->warning ? "Warning" : "Normal");
	rw_jw_kstr(w, "kind", e->kind);
	rw_jw_kstr(w, "namespace", e->ns);
	rw_jw_kstr(w, "name", e->name);
	rw_jw_kstr(w, "reason", e->reason);
	rw_jw_kstr(w, "note", e->note);
	rw_jw_obj_end(w);
}

static void
put_pod(struct rw_jw *w, const void *item)
{
	const struct rw_sp_pod *p = item;
	rw_jw_obj_begin(w);
	rw_jw_kstr(w, "namespace", s_or(p->ns));
	rw_jw_kstr(w, "name", s_or(p->name));
	rw_jw_kstr(w, "cluster", s_or(p->cluster));
	rw_jw_kstr(w, "node_type", s_or(p->node_type));
	rw_jw_kstr(w, "phase", s_or(p->phase));
	rw_jw_kstr(w, "ip", s_or(p->pod_ip));
	rw_jw_key(w, "pod_ready");
	if (p->pod_ready < 0)
		rw_jw_null(w);
	else
		rw_jw_bool(w, p->pod_ready);
	rw_jw_key(w, "agent");
	if (!p->reported) {
		rw_jw_null(w);
	} else {
		rw_jw_obj_begin(w);
		rw_jw_kbool(w, "ready", p->agent_ready);
		rw_jw_kbool(w, "stale", p->stale);
		rw_jw_kstr(w, "reason", s_or(p->reason));
		rw_jw_kint(w, "reported", p->reported_ms);
		rw_jw_key(w, "components");
		rw_jw_arr_begin(w);
		for (int i = 0; i < p->ncomp && i < RW_SP_MAX_COMPONENTS; i++) {
			rw_jw_arr_begin(w);
			rw_jw_str(w, s_or(p->comp[i].name));
			rw_jw_str(w, s_or(p->comp[i].state));
			rw_jw_str(w, s_or(p->comp[i].reason));
			rw_jw_arr_end(w);
		}
		rw_jw_arr_end(w);
		rw_jw_obj_end(w);
	}
	/* Compact: [time, ready, reason], oldest first. */
	rw_jw_key(w, "transitions");
	rw_jw_arr_begin(w);
	for (int i = 0; p->transitions && i < p->transitions->n; i++) {
		const struct rw_sp_transition *t = rw_sp_ring_at(p->transitions, i);
		rw_jw_arr_begin(w);
		rw_jw_int(w, t->at_ms);
		rw_jw_bool(w, t->ready);
		rw_jw_str(w, t->reason);
		rw_jw_arr_end(w);
	}
	rw_jw_arr_end(w);
	rw_jw_obj_end(w);
}

struct section {
	const char *name;
	const void *items;
	size_t size;
	int n;
	void (*put)(struct rw_jw *w, const void *item);
	int shown;
};

int
rw_sp_build(const struct rw_sp_snapshot *s, struct rw_buf *out, size_t cap)
{
	struct section sec[] = {
	    {"clusters", s->clusters, sizeof(*s->clusters), s->nclusters, put_cluster, 0},
	    {"services", s->services, sizeof(*s->services), s->nservices, put_service, 0},
	    {"jobs", s->jobs, sizeof(*s->jobs), s->njobs, put_job, 0},
	    {"events", s->events, sizeof(*s->events), s->nevents, put_event, 0},
	    {"pods", s->pods, sizeof(*s->pods), s->npods, put_pod, 0},
	};
	const size_t nsec = sizeof(sec) / sizeof(sec[0]);
	struct rw_jw w;
	bool full = false, truncated = false;
	if (cap <= RW_SP_RESERVE || out->max < cap)
		return -EINVAL;
	rw_buf_reset(out);
	rw_jw_init(&w, out);
	rw_jw_obj_begin(&w);
	rw_jw_key(&w, "generation");
	rw_jw_uint(&w, s->generation);
	rw_jw_kint(&w, "now", s->now_ms);
	rw_jw_kbool(&w, "leader", s->leader);
	rw_jw_kbool(&w, "agents", s->agents);
	for (size_t k = 0; k < nsec; k++) {
		struct section *c = &sec[k];
		rw_jw_key(&w, c->name);
		rw_jw_arr_begin(&w);
		for (int i = 0; !full && i < c->n; i++) {
			/* An item that would cross the soft limit is taken back whole. */
			struct rw_jw saved = w;
			size_t len = out->len;
			c->put(&w, (const char *)c->items + (size_t)i * c->size);
			if (w.err || out->len > cap - RW_SP_RESERVE) {
				w = saved;
				out->len = len;
				out->data[len] = '\0';
				full = true;
				break;
			}
			c->shown++;
		}
		rw_jw_arr_end(&w);
		if (c->shown < c->n)
			truncated = true;
	}
	rw_jw_key(&w, "totals");
	rw_jw_obj_begin(&w);
	for (size_t k = 0; k < nsec; k++)
		rw_jw_kint(&w, sec[k].name, sec[k].n);
	rw_jw_obj_end(&w);
	rw_jw_key(&w, "truncated");
	if (!truncated) {
		rw_jw_null(&w);
	} else {
		rw_jw_obj_begin(&w);
		for (size_t k = 0; k < nsec; k++) {
			if (sec[k].shown == sec[k].n)
				continue;
			rw_jw_key(&w, sec[k].name);
			rw_jw_obj_begin(&w);
			rw_jw_kint(&w, "shown", sec[k].shown);
			rw_jw_kint(&w, "total", sec[k].n);
			rw_jw_obj_end(&w);
		}
		rw_jw_obj_end(&w);
	}
	rw_jw_obj_end(&w);
	return rw_jw_finish(&w);
}

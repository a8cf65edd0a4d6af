/*
 * podpatch.c - the bounded, coalescing per-pod patch writer (podpatch.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "kmap.h"
#include "podpatch.h"
#include "rw/list.h"
#include "rw/log.h"

#define DEF_INFLIGHT 32

/* One pod's state ("ns/name" in pp->pods). */
struct ppod {
	struct rw_list q; /* in pp->fifo while queued, else self-linked */
	bool inflight, again, dead;
	char uid[64];
	struct rw_pp_val sent; /* last value written by us; state 0: unknown */
	struct rw_pp_val pend; /* the value of the patch in flight */
	/* uv_hrtime() when the pod first differed from its desired value (0: it
	 * does not), and when a sync arrived while a patch was in flight. */
	uint64_t t_want, t_again, t_sent;
	struct rw_kube_op *op;
	struct rw_pp *pp;
	char key[512];
};

struct rw_pp {
	struct rw_kube *k;
	struct rw_inf *pods;
	char name[32];
	int max, inflight;
	size_t nqueued;
	struct rw_pp_ops ops;
	void *ud;
	struct rw_kmap map;  /* key -> struct ppod */
	struct rw_list fifo; /* pods waiting for a slot, oldest first */
	bool draining, freeing;
};

/* ---- pure decisions ---- */

static bool
val_eq(const struct rw_pp_val *a, const struct rw_pp_val *b)
{
	return a->state == b->state && strncmp(a->msg, b->msg, RW_PP_MSG - 1) == 0;
}

enum rw_pp_act
rw_pp_decide(const struct rw_pp_in *in, bool *flip)
{
	const struct rw_pp_val *cur;
	if (flip)
		*flip = false;
	if (in->inflight)
		return RW_PP_MARK_AGAIN;
	if (in->queued)
		return RW_PP_WAITING;
	/* What the pod holds: what we last wrote, else what the cache says. */
	cur = in->sent && in->sent->state ? in->sent : in->cache;
	if (val_eq(cur, in->want))
		return RW_PP_IN_SYNC;
	if (flip)
		*flip = cur->state != in->want->state;
	return in->slots_used >= in->max_inflight ? RW_PP_ENQUEUE : RW_PP_SEND;
}

enum rw_pp_done
rw_pp_answer(bool forgotten, long status, bool ok)
{
	if (forgotten || status == 404)
		return RW_PP_D_DROP;
	return ok ? RW_PP_D_SYNCED : RW_PP_D_FAILED;
}

/* ---- FIFO ---- */

static bool
queued(const struct ppod *d)
{
	return !rw_list_empty(&d->q);
}

static void
q_push(struct rw_pp *pp, struct ppod *d)
{
	if (queued(d))
		return;
	rw_list_insert_tail(&pp->fifo, &d->q);
	pp->nqueued++;
}

static void
q_unlink(struct rw_pp *pp, struct ppod *d)
{
	if (!queued(d))
		return;
	rw_list_remove(&d->q);
	pp->nqueued--;
}

static void
ppod_drop(struct rw_pp *pp, struct ppod *d)
{
	q_unlink(pp, d);
	rw_kmap_del(&pp->map, d->key);
	free(d);
}

/* ---- patches ---- */

static const struct rw_inf_pod *
lookup(struct rw_pp *pp, const char *key)
{
	char ns[256], name[256];
	const char *sl = strchr(key, '/');
	if (!sl || !pp->pods)
		return NULL;
	snprintf(ns, sizeof(ns), "%.*s", (int)(sl - key), key);
	snprintf(name, sizeof(name), "%s", sl + 1);
	return rw_inf_get(pp->pods, ns, name);
}

static void
resync(struct rw_pp *pp, const char *key)
{
	const struct rw_inf_pod *p = lookup(pp, key);
	if (p)
		rw_pp_sync(pp, p);
}

/* Hand the free slots to the waiting pods, oldest first. */
static void
drain(struct rw_pp *pp)
{
	if (pp->draining)
		return; /* a send that failed at once re-enters through rw_pp_sync */
	pp->draining = true;
	while (!rw_list_empty(&pp->fifo) && pp->inflight < pp->max && !pp->freeing) {
		struct ppod *d = rw_list_entry(pp->fifo.next, struct ppod, q);
		char key[512];
		q_unlink(pp, d);
		snprintf(key, sizeof(key), "%s", d->key);
		resync(pp, key);
	}
	pp->draining = false;
}

static void
patch_done(const struct rw_kube_resp *resp, void *ud)
{
	struct ppod *d = ud;
	struct rw_pp *pp = d->pp;
	bool ok = resp->err == 0 && resp->status >= 200 && resp->status < 300;
	char key[512];
	d->op = NULL;
	d->inflight = false;
	if (pp->inflight > 0)
		pp->inflight--;
	if (pp->ops.answered)
		pp->ops.answered(pp->ud, d->key, &d->pend, resp, ok, d->t_want, d->t_sent);
	snprintf(key, sizeof(key), "%s", d->key);
	switch (rw_pp_answer(d->dead, resp->status, ok)) {
	case RW_PP_D_DROP: {
		/* A new pod of that name may want a sync. */
		bool again = d->again;
		ppod_drop(pp, d);
		if (again)
			resync(pp, key);
		break;
	}
	case RW_PP_D_FAILED: {
		const struct rw_inf_pod *p;
		memset(&d->sent, 0, sizeof(d->sent)); /* compare with the cached pod again */
		d->again = false;
		rw_warn("podpatch", "%s: patching %s failed: HTTP %ld %s", key, pp->name,
			resp->status, resp->message ? resp->message : "");
		p = lookup(pp, key);
		if (p && pp->ops.retry)
			pp->ops.retry(pp->ud, p);
		break;
	}
	case RW_PP_D_SYNCED:
		d->sent = d->pend;
		d->t_want = d->t_again;
		d->t_again = 0;
		if (d->again) {
			d->again = false;
			resync(pp, key);
		}
		break;
	}
	drain(pp);
}

static int
pod_path(char *out, size_t n, const struct rw_inf_pod *p, const char *subresource)
{
	int w = snprintf(out, n, "/api/v1/namespaces/%s/pods/%s%s%s", p->meta.ns, p->meta.name,
			 subresource ? "/" : "", subresource ? subresource : "");
	return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

static void
send_patch(struct rw_pp *pp, struct ppod *d, const struct rw_inf_pod *p, const struct rw_pp_val *v,
	   bool flip)
{
	struct rw_kube_req kr;
	struct rw_buf body;
	char path[1024];
	rw_buf_init(&body, 16 * 1024);
	memset(&kr, 0, sizeof(kr));
	path[0] = '\0';
	kr.method = "PATCH";
	kr.verb = "patch";
	kr.content_type = pp->ops.patch_type;
	kr.priority = 1; /* before bulk work: a pod waits on it to serve */
	kr.path = path;
	if (pod_path(path, sizeof(path), p, pp->ops.subresource) == 0 &&
	    pp->ops.build(pp->ud, p, v, flip, &kr, &body) == 0) {
		kr.body = rw_buf_cstr(&body);
		kr.body_len = body.len;
		d->pend = *v;
		d->t_sent = uv_hrtime();
		if (rw_kube_request(pp->k, &kr, patch_done, d, &d->op) == 0) {
			d->inflight = true;
			pp->inflight++;
		} else {
			d->op = NULL;
			rw_warn("podpatch", "%s: cannot send the %s patch", d->key, pp->name);
		}
	}
	rw_buf_fini(&body);
}

void
rw_pp_sync(struct rw_pp *pp, const struct rw_inf_pod *p)
{
	struct rw_pp_val want, cached;
	struct rw_pp_in in;
	struct ppod *d;
	char key[512];
	bool flip;
	if (!pp || pp->freeing)
		return;
	memset(&want, 0, sizeof(want));
	memset(&cached, 0, sizeof(cached));
	if (!pp->ops.want(pp->ud, p, &want, &cached))
		return;
	snprintf(key, sizeof(key), "%s/%s", p->meta.ns, p->meta.name);
	d = rw_kmap_get(&pp->map, key);
	if (d && strcmp(d->uid, p->meta.uid) != 0 && !d->inflight) {
		/* Another incarnation of the name: what we wrote was on the old one. */
		memset(&d->sent, 0, sizeof(d->sent));
		snprintf(d->uid, sizeof(d->uid), "%s", p->meta.uid);
	}
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d)
			return;
		d->pp = pp;
		rw_list_init(&d->q);
		snprintf(d->uid, sizeof(d->uid), "%s", p->meta.uid);
		snprintf(d->key, sizeof(d->key), "%s", key);
		if (rw_kmap_put(&pp->map, key, d, NULL) != 0) {
			free(d);
			return;
		}
	}
	memset(&in, 0, sizeof(in));
	in.inflight = d->inflight;
	in.queued = queued(d);
	in.sent = &d->sent;
	in.cache = &cached;
	in.want = &want;
	in.slots_used = pp->inflight;
	in.max_inflight = pp->max;
	switch (rw_pp_decide(&in, &flip)) {
	case RW_PP_MARK_AGAIN:
		d->again = true;
		if (!d->t_again)
			d->t_again = uv_hrtime();
		return;
	case RW_PP_WAITING:
		return;
	case RW_PP_IN_SYNC:
		d->t_want = 0;
		return;
	case RW_PP_ENQUEUE:
		if (!d->t_want)
			d->t_want = uv_hrtime();
		q_push(pp, d);
		return;
	case RW_PP_SEND:
		if (!d->t_want)
			d->t_want = uv_hrtime();
		send_patch(pp, d, p, &want, flip);
		return;
	}
}

void
rw_pp_forget(struct rw_pp *pp, const struct rw_inf_pod *p)
{
	char key[512];
	struct ppod *d;
	if (!pp)
		return;
	snprintf(key, sizeof(key), "%s/%s", p->meta.ns, p->meta.name);
	d = rw_kmap_get(&pp->map, key);
	if (!d)
		return;
	if (d->inflight)
		d->dead = true; /* dropped when its patch answers */
	else
		ppod_drop(pp, d);
}

int
rw_pp_new(struct rw_kube *k, struct rw_inf *pods, const char *name, int max_inflight,
	  const struct rw_pp_ops *ops, void *ud, struct rw_pp **out)
{
	struct rw_pp *pp;
	*out = NULL;
	if (!ops || !ops->want || !ops->build || !ops->patch_type)
		return -EINVAL;
	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	pp->k = k;
	pp->pods = pods;
	snprintf(pp->name, sizeof(pp->name), "%s", name ? name : "pod");
	pp->max = max_inflight > 0 ? max_inflight : DEF_INFLIGHT;
	pp->ops = *ops;
	pp->ud = ud;
	rw_kmap_init(&pp->map);
	rw_list_init(&pp->fifo);
	*out = pp;
	return 0;
}

static void
ppod_free(void *p)
{
	struct ppod *d = p;
	if (d && d->op)
		rw_kube_cancel(d->op);
	free(d);
}

void
rw_pp_free(struct rw_pp *pp)
{
	if (!pp)
		return;
	pp->freeing = true;
	rw_list_init(&pp->fifo); /* the records go with the map */
	rw_kmap_fini(&pp->map, ppod_free);
	free(pp);
}

int
rw_pp_inflight(const struct rw_pp *pp)
{
	return pp ? pp->inflight : 0;
}

size_t
rw_pp_waiting(const struct rw_pp *pp)
{
	return pp ? pp->nqueued : 0;
}

size_t
rw_pp_pods(const struct rw_pp *pp)
{
	return pp ? pp->map.n : 0;
}

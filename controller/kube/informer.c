/*
 * informer.c - list/watch reflector and store (see informer.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "informer.h"
#include "kmap.h"
#include "rw/clock.h"
#include "rw/log.h"

#define DEF_PAGE 500
#define DEF_MAX_LINE (16u * 1024 * 1024)
#define LIST_MAX_TOKENS (8 << 20)
#define EVENT_MAX_TOKENS (1 << 20)
#define BACKOFF_MIN_MS 800
#define BACKOFF_MAX_MS 30000

enum lw_state { LW_IDLE, LW_LISTING, LW_WATCHING, LW_WAITING };

struct lw {
	struct rw_inf *inf;
	char *ns; /* NULL = all namespaces */
	enum lw_state state;
	char rv[64];
	bool synced;	  /* the store reflects a complete list (and rv is usable) */
	bool ever_synced; /* HasSynced: a first list completed */
	bool relist;	  /* set inside the stream: relist when it ends */
	bool stream_err;  /* an ERROR event other than 410 */
	bool got_events;
	uint64_t backoff_ms;
	struct rw_kube_op *op;
	uv_timer_t timer;
	struct rw_kmap fresh; /* objects of the list in progress */
	struct rw_inf_lines lines;
};

struct idx {
	const void **objs;
	int n, cap;
};

struct rw_inf {
	struct rw_kube *k;
	struct rw_inf_type t;
	struct rw_inf_opts o;
	char *label_selector, *field_selector;
	struct rw_inf_handlers hs[RW_INF_MAX_HANDLERS]; /* one set per interested kind */
	int nh;
	struct lw *lws;
	int nlw;
	bool running;
	struct rw_kmap store; /* "ns/name" -> object */
	struct {
		rw_inf_index_fn fn;
		struct rw_kmap map; /* index key -> struct idx */
	} idx[RW_INF_MAX_INDEXES];
	int nidx;
	unsigned long relists;
	int pending_closes;
	bool freeing;
	struct rw_met_family *m_objs, *m_relists, *m_events, *m_watches;
};

/* ---- time ---- */

int
rw_inf_parse_time(const char *s, size_t len, int64_t *out)
{
	int64_t ms;
	if (rw_time_parse_rfc3339_ms(s, len, &ms) != 0)
		return -EINVAL;
	*out = ms / 1000 - (ms % 1000 < 0); /* whole seconds, toward the past */
	return 0;
}

/* ---- lines ---- */

void
rw_inf_lines_init(struct rw_inf_lines *l, size_t max_line)
{
	l->max = max_line ? max_line : DEF_MAX_LINE;
	rw_buf_init(&l->b, l->max);
}

void
rw_inf_lines_fini(struct rw_inf_lines *l)
{
	rw_buf_fini(&l->b);
}

void
rw_inf_lines_reset(struct rw_inf_lines *l)
{
	rw_buf_reset(&l->b);
}

static int
emit_line(const char *p, size_t n, int (*cb)(const char *, size_t, void *), void *ud)
{
	if (n && p[n - 1] == '\r')
		n--;
	return n ? cb(p, n, ud) : 0;
}

int
rw_inf_lines_feed(struct rw_inf_lines *l, const char *data, size_t len,
		  int (*cb)(const char *line, size_t len, void *ud), void *ud)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t seg = nl ? (size_t)(nl - data) : len;
		int rv;
		if (l->b.len + seg > l->max) {
			rw_buf_reset(&l->b);
			return -EMSGSIZE;
		}
		if (!nl) {
			if (rw_buf_append(&l->b, data, seg) != 0) {
				rw_buf_reset(&l->b);
				return -EMSGSIZE;
			}
			return 0;
		}
		if (l->b.len == 0) {
			rv = emit_line(data, seg, cb, ud);
		} else {
			if (rw_buf_append(&l->b, data, seg) != 0) {
				rw_buf_reset(&l->b);
				return -EMSGSIZE;
			}
			rv = emit_line(l->b.data, l->b.len, cb, ud);
			rw_buf_reset(&l->b);
		}
		if (rv)
			return rv;
		data += seg + 1;
		len -= seg + 1;
	}
	return 0;
}

int
rw_inf_parse_event(const char *line, size_t len, struct rw_json *j, struct rw_inf_event *ev)
{
	int rv, t;
	memset(ev, 0, sizeof(*ev));
	memset(j, 0, sizeof(*j));
	rv = rw_json_parse(j, line, len, EVENT_MAX_TOKENS, NULL, 0);
	if (rv)
		return rv == -EMSGSIZE ? -EMSGSIZE : -EINVAL;
	if (rw_json_type(j, 0) != RW_JSON_OBJECT)
		return -EINVAL;
	t = rw_json_get(j, 0, "type");
	ev->obj = rw_json_get(j, 0, "object");
	if (rw_json_type(j, ev->obj) != RW_JSON_OBJECT)
		return -EINVAL;
	if (rw_json_streq(j, t, "ADDED"))
		ev->type = RW_INF_ADDED;
	else if (rw_json_streq(j, t, "MODIFIED"))
		ev->type = RW_INF_MODIFIED;
	else if (rw_json_streq(j, t, "DELETED"))
		ev->type = RW_INF_DELETED;
	else if (rw_json_streq(j, t, "BOOKMARK"))
		ev->type = RW_INF_BOOKMARK;
	else if (rw_json_streq(j, t, "ERROR"))
		ev->type = RW_INF_ERROR;
	else
		return -EINVAL;
	if (ev->type == RW_INF_ERROR) {
		if (rw_json_int(j, rw_json_get(j, ev->obj, "code"), &ev->code) != 0)
			ev->code = 0;
		return 0;
	}
	int r = rw_json_path(j, ev->obj, "metadata.resourceVersion");
	if (r >= 0 && rw_json_str(j, r, ev->rv, sizeof(ev->rv)) < 0)
		return -EINVAL;
	if (ev->type != RW_INF_BOOKMARK && !ev->rv[0])
		return -EINVAL;
	return 0;
}

/* ---- packed strings for decoders ---- */

struct pack {
	struct rw_buf b;
	int err;
};

/* Add string token t (unescaped) and return its offset + 1, or 0 for absent/empty. */
static size_t
pack_tok(struct pack *p, const struct rw_json *j, int t)
{
	char tmp[1024];
	if (rw_json_type(j, t) != RW_JSON_STRING)
		return 0;
	int n = rw_json_str(j, t, tmp, sizeof(tmp));
	char *big = NULL;
	const char *s = tmp;
	if (n == -EMSGSIZE) {
		big = rw_json_strdup(j, t);
		if (!big) {
			p->err = -EINVAL;
			return 0;
		}
		s = big;
		n = (int)strlen(big);
	}
	if (n <= 0) {
		if (n < 0)
			p->err = n;
		return 0;
	}
	size_t off = p->b.len + 1;
	if (rw_buf_append(&p->b, s, (size_t)n + 1) != 0)
		p->err = -ENOMEM;
	free(big);
	return off;
}

static size_t
pack_raw(struct pack *p, const char *s, size_t n)
{
	size_t off = p->b.len + 1;
	if (rw_buf_append(&p->b, s, n) != 0 || rw_buf_putc(&p->b, '\0') != 0)
		p->err = -ENOMEM;
	return off;
}

/* Allocate size bytes followed by the packed strings. */
static void *
pack_alloc(struct pack *p, size_t size)
{
	if (p->err)
		return NULL;
	char *m = calloc(1, size + p->b.len + 1);
	if (m && p->b.len)
		memcpy(m + size, p->b.data, p->b.len);
	return m;
}

static const char *
pack_ptr(void *base, size_t size, size_t off)
{
	return off ? (const char *)base + size + off - 1 : "";
}

struct meta_offs {
	size_t ns, name, uid, rv;
	int64_t created, deleted, generation;
};

static void
meta_pack(struct pack *p, const struct rw_json *j, int obj, struct meta_offs *mo)
{
	int md = rw_json_get(j, obj, "metadata");
	size_t l;
	const char *s;
	memset(mo, 0, sizeof(*mo));
	mo->ns = pack_tok(p, j, rw_json_get(j, md, "namespace"));
	mo->name = pack_tok(p, j, rw_json_get(j, md, "name"));
	mo->uid = pack_tok(p, j, rw_json_get(j, md, "uid"));
	mo->rv = pack_tok(p, j, rw_json_get(j, md, "resourceVersion"));
	int t = rw_json_get(j, md, "creationTimestamp");
	if (rw_json_type(j, t) == RW_JSON_STRING && (s = rw_json_raw(j, t, &l)) != NULL)
		rw_inf_parse_time(s, l, &mo->created);
	t = rw_json_get(j, md, "deletionTimestamp");
	if (rw_json_type(j, t) == RW_JSON_STRING && (s = rw_json_raw(j, t, &l)) != NULL &&
	    rw_inf_parse_time(s, l, &mo->deleted) != 0)
		mo->deleted = 1; /* set but unreadable: still being deleted */
	if (rw_json_int(j, rw_json_get(j, md, "generation"), &mo->generation) != 0)
		mo->generation = 0;
	if (!mo->name)
		p->err = -EINVAL;
}

static void
meta_fill(struct rw_inf_meta *m, void *base, size_t size, const struct meta_offs *mo)
{
	m->ns = pack_ptr(base, size, mo->ns);
	m->name = pack_ptr(base, size, mo->name);
	m->uid = pack_ptr(base, size, mo->uid);
	m->rv = pack_ptr(base, size, mo->rv);
	m->created = mo->created;
	m->deleted = mo->deleted;
	m->generation = mo->generation;
}

void *
rw_inf_json_decode(const struct rw_json *j, int obj)
{
	struct pack p = {.err = 0};
	struct meta_offs mo;
	size_t len, off;
	struct rw_inf_json *o = NULL;
	const char *raw = rw_json_raw_value(j, obj, &len);
	rw_buf_init(&p.b, 64u * 1024 * 1024);
	meta_pack(&p, j, obj, &mo);
	off = raw ? pack_raw(&p, raw, len) : 0;
	if (!raw)
		p.err = -EINVAL;
	o = pack_alloc(&p, sizeof(*o));
	if (o) {
		meta_fill(&o->meta, o, sizeof(*o), &mo);
		o->json = pack_ptr(o, sizeof(*o), off);
		o->len = len;
	}
	rw_buf_fini(&p.b);
	return o;
}

static int
cond_of(const struct rw_json *j, int conds, const char *type)
{
	int i, c;
	RW_JSON_ARR_FOREACH (j, conds, i, c) {
		if (!rw_json_streq(j, rw_json_get(j, c, "type"), type))
			continue;
		int st = rw_json_get(j, c, "status");
		if (rw_json_streq(j, st, "True"))
			return RW_COND_TRUE;
		if (rw_json_streq(j, st, "False"))
			return RW_COND_FALSE;
		return RW_COND_UNKNOWN;
	}
	return RW_COND_UNKNOWN;
}

static void *
pod_decode(const struct rw_json *j, int obj)
{
	struct pack p = {.err = 0};
	struct meta_offs mo;
	size_t o_cl, o_gr, o_nt, o_sv, o_own = 0, o_ph, o_ip, o_rp, o_rc;
	int i, c, md, labels, spec, status, rc_name_tok;
	int64_t exit_code = 0, restarts = 0, sub_exit = 0, sub_finished = 0;
	bool sub_ended = false;
	bool term = false;
	struct rw_inf_pod *pod;

	rw_buf_init(&p.b, 1024 * 1024);
	meta_pack(&p, j, obj, &mo);
	md = rw_json_get(j, obj, "metadata");
	labels = rw_json_get(j, md, "labels");
	spec = rw_json_get(j, obj, "spec");
	status = rw_json_get(j, obj, "status");
	o_cl = pack_tok(&p, j, rw_json_get(j, labels, "ray.io/cluster"));
	o_gr = pack_tok(&p, j, rw_json_get(j, labels, "ray.io/group"));
	o_nt = pack_tok(&p, j, rw_json_get(j, labels, "ray.io/node-type"));
	o_sv = pack_tok(&p, j, rw_json_get(j, labels, "ray.io/serve"));
	int replica_index = -1;
	{
		char idx[16];
		char *end;
		if (rw_json_str(j, rw_json_get(j, labels, "ray.io/worker-group-replica-index"), idx,
				sizeof(idx)) > 0) {
			long l = strtol(idx, &end, 10);
			if (!*end && l >= 0 && l < 1000000000)
				replica_index = (int)l;
		}
	}
	int owners = rw_json_get(j, md, "ownerReferences"), first = -1, ctl = -1;
	RW_JSON_ARR_FOREACH (j, owners, i, c) {
		bool b = false;
		if (first < 0)
			first = c;
		if (rw_json_bool(j, rw_json_get(j, c, "controller"), &b) == 0 && b && ctl < 0)
			ctl = c;
	}
	if (ctl >= 0 || first >= 0)
		o_own = pack_tok(&p, j, rw_json_get(j, ctl >= 0 ? ctl : first, "uid"));
	o_ph = pack_tok(&p, j, rw_json_get(j, status, "phase"));
	o_ip = pack_tok(&p, j, rw_json_get(j, status, "podIP"));
	o_rp = pack_tok(&p, j, rw_json_get(j, spec, "restartPolicy"));
	rc_name_tok = rw_json_get(j, rw_json_at(j, rw_json_get(j, spec, "containers"), 0), "name");
	bool has_agent = false, agent_ephemeral = false;
	RW_JSON_ARR_FOREACH (j, rw_json_get(j, spec, "containers"), i, c) {
		/* RW_RAYCLUSTER_AGENT_CONTAINER (raycluster/build_common.h) */
		if (rw_json_streq(j, rw_json_get(j, c, "name"), "raywarden-agent"))
			has_agent = true;
	}
	/* The agent attached to a head KubeRay made (rw_raycluster_build_ephemeral_agent). */
	RW_JSON_ARR_FOREACH (j, rw_json_get(j, spec, "ephemeralContainers"), i, c) {
		if (rw_json_streq(j, rw_json_get(j, c, "name"), "raywarden-agent") && !has_agent)
			has_agent = agent_ephemeral = true;
	}
	o_rc = pack_tok(&p, j, rc_name_tok);
	int conds = rw_json_get(j, status, "conditions");
	int cs = rw_json_get(j, status, "containerStatuses");
	size_t o_rr = 0, o_rm = 0, o_am = 0;
	RW_JSON_ARR_FOREACH (j, conds, i, c) {
		int ty = rw_json_get(j, c, "type");
		if (rw_json_streq(j, ty, "Ready")) {
			o_rr = pack_tok(&p, j, rw_json_get(j, c, "reason"));
			o_rm = pack_tok(&p, j, rw_json_get(j, c, "message"));
		} else if (rw_json_streq(j, ty, "ray.io/agent-ready")) {
			o_am = pack_tok(&p, j, rw_json_get(j, c, "message"));
		}
	}
	/*
	 * One pass over the container statuses: the ray container's (container
	 * 0) and KubeRay's SidecarMode submitter's, whose end decides
	 * SubmissionFailed. The first status of each name counts.
	 */
	{
		char rcname[256];
		bool want_rc =
		    rc_name_tok >= 0 && rw_json_str(j, rc_name_tok, rcname, sizeof(rcname)) >= 0;
		bool want_sub = true;
		RW_JSON_ARR_FOREACH (j, cs, i, c) {
			int nm = rw_json_get(j, c, "name");
			if (want_rc && rw_json_streq(j, nm, rcname)) {
				int tm = rw_json_path(j, c, "state.terminated");
				want_rc = false;
				if (rw_json_type(j, tm) == RW_JSON_OBJECT) {
					term = true;
					if (rw_json_int(j, rw_json_get(j, tm, "exitCode"),
							&exit_code) != 0)
						exit_code = 0;
				}
				if (rw_json_int(j, rw_json_get(j, c, "restartCount"), &restarts) !=
				    0)
					restarts = 0;
			}
			if (want_sub && rw_json_streq(j, nm, "ray-job-submitter")) {
				int tm = rw_json_path(j, c, "state.terminated");
				char at[64];
				want_sub = false;
				if (rw_json_type(j, tm) == RW_JSON_OBJECT) {
					sub_ended = true;
					if (rw_json_int(j, rw_json_get(j, tm, "exitCode"),
							&sub_exit) != 0 ||
					    sub_exit < 0 || sub_exit > 255)
						sub_exit = 255; /* no usable code: not a success */
					if (rw_json_str(j, rw_json_get(j, tm, "finishedAt"), at,
							sizeof(at)) > 0 &&
					    rw_time_parse_rfc3339_ms(at, strlen(at),
								     &sub_finished) != 0)
						sub_finished = 0;
				}
			}
			if (!want_rc && !want_sub)
				break;
		}
	}
	pod = pack_alloc(&p, sizeof(*pod));
	if (pod) {
		size_t sz = sizeof(*pod);
		meta_fill(&pod->meta, pod, sz, &mo);
		pod->cluster = pack_ptr(pod, sz, o_cl);
		pod->group = pack_ptr(pod, sz, o_gr);
		pod->node_type = pack_ptr(pod, sz, o_nt);
		pod->serve = pack_ptr(pod, sz, o_sv);
		pod->owner_uid = pack_ptr(pod, sz, o_own);
		pod->phase = pack_ptr(pod, sz, o_ph);
		pod->pod_ip = pack_ptr(pod, sz, o_ip);
		pod->restart_policy = pack_ptr(pod, sz, o_rp);
		pod->ray_container = pack_ptr(pod, sz, o_rc);
		pod->has_agent = has_agent;
		pod->ready = (unsigned char)cond_of(j, conds, "Ready");
		pod->agent_ready = (unsigned char)cond_of(j, conds, "ray.io/agent-ready");
		pod->ray_terminated = term;
		pod->agent_ephemeral = agent_ephemeral;
		pod->ray_exit_code = (int)exit_code;
		pod->ray_restarts = (int)restarts;
		pod->ready_reason = pack_ptr(pod, sz, o_rr);
		pod->ready_message = pack_ptr(pod, sz, o_rm);
		pod->agent_message = pack_ptr(pod, sz, o_am);
		pod->replica_index = replica_index;
		pod->submitter_ended = sub_ended;
		pod->submitter_exit = (int)sub_exit;
		pod->submitter_finished_ms = sub_finished;
	}
	rw_buf_fini(&p.b);
	return pod;
}

const struct rw_inf_type rw_inf_pod_type = {
    .api_path = "/api/v1",
    .resource = "pods",
    .decode = pod_decode,
    .free_obj = free,
};

#define JSON_TYPE(path, res)                                                                       \
	{                                                                                          \
		.api_path = path, .resource = res, .decode = rw_inf_json_decode, .free_obj = free  \
	}
const struct rw_inf_type rw_inf_raycluster_type = JSON_TYPE("/apis/ray.io/v1", "rayclusters");
const struct rw_inf_type rw_inf_rayservice_type = JSON_TYPE("/apis/ray.io/v1", "rayservices");
const struct rw_inf_type rw_inf_rayjob_type = JSON_TYPE("/apis/ray.io/v1", "rayjobs");
const struct rw_inf_type rw_inf_batchjob_type = JSON_TYPE("/apis/batch/v1", "jobs");
const struct rw_inf_type rw_inf_service_type = JSON_TYPE("/api/v1", "services");
const struct rw_inf_type rw_inf_endpointslice_type =
    JSON_TYPE("/apis/discovery.k8s.io/v1", "endpointslices");
#undef JSON_TYPE

const char *
rw_inf_pod_cluster_key(const void *obj, char *buf, size_t n)
{
	const struct rw_inf_pod *p = obj;
	if (!p->cluster[0])
		return NULL;
	int r = snprintf(buf, n, "%s/%s", p->meta.ns, p->cluster);
	return r < 0 || (size_t)r >= n ? NULL : buf;
}

/* ---- store ---- */

static const struct rw_inf_meta *
meta(const void *obj)
{
	return obj;
}

static int
obj_key(const void *obj, char *buf, size_t n)
{
	const struct rw_inf_meta *m = meta(obj);
	int r =
	    m->ns[0] ? snprintf(buf, n, "%s/%s", m->ns, m->name) : snprintf(buf, n, "%s", m->name);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

static void
free_obj(struct rw_inf *inf, void *obj)
{
	if (obj)
		inf->t.free_obj(obj);
}

static void
idx_del(struct rw_inf *inf, const void *obj)
{
	for (int k = 0; k < inf->nidx; k++) {
		char buf[512];
		const char *key = inf->idx[k].fn(obj, buf, sizeof(buf));
		struct idx *x;
		if (!key || !(x = rw_kmap_get(&inf->idx[k].map, key)))
			continue;
		for (int i = 0; i < x->n; i++) {
			if (x->objs[i] == obj) {
				x->objs[i] = x->objs[--x->n];
				break;
			}
		}
		if (x->n == 0) {
			rw_kmap_del(&inf->idx[k].map, key);
			free(x->objs);
			free(x);
		}
	}
}

static void
idx_add_one(struct rw_inf *inf, int k, const void *obj)
{
	char buf[512];
	const char *key = inf->idx[k].fn(obj, buf, sizeof(buf));
	struct idx *x;
	if (!key)
		return;
	x = rw_kmap_get(&inf->idx[k].map, key);
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x || rw_kmap_put(&inf->idx[k].map, key, x, NULL) != 0) {
			free(x);
			return;
		}
	}
	if (x->n == x->cap) {
		int nc = x->cap ? x->cap * 2 : 4;
		const void **no = realloc(x->objs, (size_t)nc * sizeof(*no));
		if (!no)
			return;
		x->objs = no;
		x->cap = nc;
	}
	x->objs[x->n++] = obj;
}

static void
idx_add(struct rw_inf *inf, const void *obj)
{
	for (int k = 0; k < inf->nidx; k++)
		idx_add_one(inf, k, obj);
}

static void
set_count(struct rw_inf *inf)
{
	rw_met_set(inf->m_objs, (const char *const[]){inf->t.resource}, (double)inf->store.n);
}

/* Insert or replace obj (owned) and call the handlers. */
static void
store_upsert(struct rw_inf *inf, void *obj)
{
	char key[600];
	void *old = NULL;
	if (obj_key(obj, key, sizeof(key)) != 0 || rw_kmap_put(&inf->store, key, obj, &old) != 0) {
		free_obj(inf, obj);
		return;
	}
	if (old)
		idx_del(inf, old);
	idx_add(inf, obj);
	set_count(inf);
	if (old) {
		for (int i = 0; i < inf->nh; i++)
			if (inf->hs[i].on_update)
				inf->hs[i].on_update(inf, old, obj, inf->hs[i].ud);
		free_obj(inf, old);
	} else {
		for (int i = 0; i < inf->nh; i++)
			if (inf->hs[i].on_add)
				inf->hs[i].on_add(inf, obj, inf->hs[i].ud);
	}
}

static void
store_delete_key(struct rw_inf *inf, const char *key)
{
	void *old = rw_kmap_del(&inf->store, key);
	if (!old)
		return;
	idx_del(inf, old);
	set_count(inf);
	for (int i = 0; i < inf->nh; i++)
		if (inf->hs[i].on_delete)
			inf->hs[i].on_delete(inf, old, inf->hs[i].ud);
	free_obj(inf, old);
}

/* ---- list/watch ---- */

static void lw_list(struct lw *w, const char *cont);
static void lw_watch(struct lw *w);

static void
lw_timer_cb(uv_timer_t *t)
{
	struct lw *w = t->data;
	if (!w->inf->running || w->state != LW_WAITING)
		return;
	if (w->synced && w->rv[0])
		lw_watch(w);
	else
		lw_list(w, NULL);
}

/* Wait before the next attempt (list again when relist or not synced). */
static void
lw_backoff(struct lw *w, long min_ms)
{
	uint64_t d = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	w->backoff_ms = d;
	if (min_ms > 0 && (uint64_t)min_ms > d)
		d = (uint64_t)min_ms;
	w->state = LW_WAITING;
	uv_timer_start(&w->timer, lw_timer_cb, d, 0);
}

static void
relist_now(struct lw *w, const char *why)
{
	struct rw_inf *inf = w->inf;
	inf->relists++;
	rw_met_add(inf->m_relists, (const char *const[]){inf->t.resource, why}, 1);
	w->rv[0] = '\0';
	w->synced = false; /* the store keeps serving the old contents meanwhile */
	lw_list(w, NULL);
}

static int
build_query(struct rw_inf *inf, struct rw_buf *q, const char *extra)
{
	int rv = rw_buf_puts(q, extra);
	if (rv == 0 && inf->label_selector) {
		rv = rw_buf_puts(q, "&labelSelector=");
		if (rv == 0)
			rv = rw_kube_qescape(q, inf->label_selector);
	}
	if (rv == 0 && inf->field_selector) {
		rv = rw_buf_puts(q, "&fieldSelector=");
		if (rv == 0)
			rv = rw_kube_qescape(q, inf->field_selector);
	}
	return rv;
}

static int
build_path(struct rw_inf *inf, struct lw *w, struct rw_buf *p)
{
	if (w->ns)
		return rw_buf_printf(p, "%s/namespaces/%s/%s", inf->t.api_path, w->ns,
				     inf->t.resource);
	return rw_buf_printf(p, "%s/%s", inf->t.api_path, inf->t.resource);
}

static bool
in_unit(const struct lw *w, const void *obj)
{
	return !w->ns || strcmp(meta(obj)->ns, w->ns) == 0;
}

/* Replace this unit's part of the store with w->fresh. */
static void
lw_replace(struct lw *w)
{
	struct rw_inf *inf = w->inf;
	struct rw_kmap_iter it;
	struct rw_kmap_ent *e;
	char **gone = NULL;
	size_t ngone = 0, cap = 0;

	rw_kmap_iter_init(&inf->store, &it);
	while ((e = rw_kmap_next(&inf->store, &it)) != NULL) {
		if (!in_unit(w, e->val) || rw_kmap_get(&w->fresh, e->key))
			continue;
		if (ngone == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **ng = realloc(gone, nc * sizeof(*ng));
			if (!ng)
				break;
			gone = ng;
			cap = nc;
		}
		gone[ngone] = strdup(e->key);
		if (gone[ngone])
			ngone++;
	}
	for (size_t i = 0; i < ngone; i++) {
		store_delete_key(inf, gone[i]);
		free(gone[i]);
	}
	free(gone);
	rw_kmap_iter_init(&w->fresh, &it);
	while ((e = rw_kmap_next(&w->fresh, &it)) != NULL) {
		void *obj = e->val;
		void *cur = rw_kmap_get(&inf->store, e->key);
		e->val = NULL;
		if (cur && strcmp(meta(cur)->rv, meta(obj)->rv) == 0)
			free_obj(inf, obj); /* unchanged */
		else
			store_upsert(inf, obj);
	}
	rw_kmap_fini(&w->fresh, NULL);
	rw_kmap_init(&w->fresh);
}

static void
fresh_clear(struct lw *w)
{
	struct rw_kmap_iter it;
	struct rw_kmap_ent *e;
	rw_kmap_iter_init(&w->fresh, &it);
	while ((e = rw_kmap_next(&w->fresh, &it)) != NULL)
		free_obj(w->inf, e->val);
	rw_kmap_fini(&w->fresh, NULL);
	rw_kmap_init(&w->fresh);
}

static void
list_done(const struct rw_kube_resp *r, void *ud)
{
	struct lw *w = ud;
	struct rw_inf *inf = w->inf;
	struct rw_json j = {0};
	char cont[4096] = "", rv[64] = "";
	int items, i, c;
	w->op = NULL;
	if (r->err || r->status != 200) {
		fresh_clear(w);
		if (!r->err && r->status == 410) {
			/* The continue token expired: start the list over at once. */
			rw_info("informer", "%s: list continue token expired, listing again",
				inf->t.resource);
			lw_list(w, NULL);
			return;
		}
		rw_warn("informer", "%s: list%s%s failed: %s %ld %s", inf->t.resource,
			w->ns ? " in " : "", w->ns ? w->ns : "", r->err ? "error" : "HTTP",
			r->status, r->message);
		lw_backoff(w,
			   r->status == 429 && r->retry_after_s > 0 ? r->retry_after_s * 1000 : 0);
		return;
	}
	if (rw_json_parse(&j, r->body, r->body_len, LIST_MAX_TOKENS, NULL, 0) != 0) {
		rw_warn("informer", "%s: list answer is not valid JSON (%zu bytes)",
			inf->t.resource, r->body_len);
		fresh_clear(w);
		rw_json_fini(&j);
		lw_backoff(w, 0);
		return;
	}
	rw_json_str(&j, rw_json_path(&j, 0, "metadata.continue"), cont, sizeof(cont));
	rw_json_str(&j, rw_json_path(&j, 0, "metadata.resourceVersion"), rv, sizeof(rv));
	items = rw_json_get(&j, 0, "items");
	RW_JSON_ARR_FOREACH (&j, items, i, c) {
		char key[600];
		void *obj = inf->t.decode(&j, c);
		if (!obj) {
			rw_warn("informer", "%s: skipping an object that cannot be decoded",
				inf->t.resource);
			continue;
		}
		void *old = NULL;
		if (obj_key(obj, key, sizeof(key)) != 0 ||
		    rw_kmap_put(&w->fresh, key, obj, &old) != 0) {
			free_obj(inf, obj);
			continue;
		}
		free_obj(inf, old);
	}
	rw_json_fini(&j);
	if (cont[0]) {
		lw_list(w, cont);
		return;
	}
	lw_replace(w);
	snprintf(w->rv, sizeof(w->rv), "%s", rv);
	w->backoff_ms = 0;
	if (!w->synced)
		rw_debug("informer", "%s%s%s: synced, %zu objects at resourceVersion %s",
			 inf->t.resource, w->ns ? " in " : "", w->ns ? w->ns : "", inf->store.n,
			 w->rv);
	w->synced = true;
	w->ever_synced = true;
	lw_watch(w);
}

static void
lw_list(struct lw *w, const char *cont)
{
	struct rw_inf *inf = w->inf;
	struct rw_buf path, q;
	struct rw_kube_req req;
	int rv;
	if (!inf->running)
		return;
	if (!cont)
		fresh_clear(w);
	rw_buf_init(&path, 8192);
	rw_buf_init(&q, 16384);
	rv = build_path(inf, w, &path);
	if (rv == 0)
		rv = rw_buf_printf(&q, "limit=%d", inf->o.page_size);
	if (rv == 0 && cont) {
		rv = rw_buf_puts(&q, "&continue=");
		if (rv == 0)
			rv = rw_kube_qescape(&q, cont);
	}
	if (rv == 0)
		rv = build_query(inf, &q, "");
	memset(&req, 0, sizeof(req));
	req.path = rw_buf_cstr(&path);
	req.query = rw_buf_cstr(&q);
	req.verb = "list";
	w->state = LW_LISTING;
	if (rv == 0)
		rv = rw_kube_request(inf->k, &req, list_done, w, &w->op);
	rw_buf_fini(&path);
	rw_buf_fini(&q);
	if (rv) {
		rw_error("informer", "%s: cannot start a list: %s", inf->t.resource, strerror(-rv));
		lw_backoff(w, 0);
	}
}

static int
on_line(const char *line, size_t len, void *ud)
{
	struct lw *w = ud;
	struct rw_inf *inf = w->inf;
	struct rw_json j;
	struct rw_inf_event ev;
	int rv;
	if (!inf->running || w->state != LW_WATCHING)
		return 1;
	rv = rw_inf_parse_event(line, len, &j, &ev);
	if (rv) {
		/* A Status object is the body of a failed watch request; done() handles it. */
		if (rw_json_streq(&j, rw_json_get(&j, 0, "kind"), "Status")) {
			rw_json_fini(&j);
			return 0;
		}
		rw_warn("informer", "%s: dropping the watch: unreadable event (%zu bytes)",
			inf->t.resource, len);
		rw_json_fini(&j);
		w->stream_err = true;
		return 1;
	}
	static const char *const tn[] = {"", "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
	rw_met_add(inf->m_events, (const char *const[]){inf->t.resource, tn[ev.type]}, 1);
	switch (ev.type) {
	case RW_INF_ERROR:
		if (ev.code == 410) {
			w->relist = true;
		} else {
			char msg[256] = "";
			rw_json_str(&j, rw_json_get(&j, ev.obj, "message"), msg, sizeof(msg));
			rw_warn("informer", "%s: watch error %lld: %s", inf->t.resource,
				(long long)ev.code, msg);
			w->stream_err = true;
		}
		rw_json_fini(&j);
		return 1;
	case RW_INF_BOOKMARK:
		if (ev.rv[0])
			snprintf(w->rv, sizeof(w->rv), "%s", ev.rv);
		break;
	case RW_INF_ADDED:
	case RW_INF_MODIFIED: {
		void *obj = inf->t.decode(&j, ev.obj);
		snprintf(w->rv, sizeof(w->rv), "%s", ev.rv);
		if (obj)
			store_upsert(inf, obj);
		else
			rw_warn("informer", "%s: skipping an object that cannot be decoded",
				inf->t.resource);
		break;
	}
	case RW_INF_DELETED: {
		void *obj = inf->t.decode(&j, ev.obj);
		char key[600];
		snprintf(w->rv, sizeof(w->rv), "%s", ev.rv);
		if (obj && obj_key(obj, key, sizeof(key)) == 0)
			store_delete_key(inf, key);
		free_obj(inf, obj);
		break;
	}
	}
	w->got_events = true;
	rw_json_fini(&j);
	return inf->running && w->state == LW_WATCHING ? 0 : 1;
}

static int
watch_data(const char *data, size_t len, void *ud)
{
	struct lw *w = ud;
	int rv = rw_inf_lines_feed(&w->lines, data, len, on_line, w);
	if (rv == -EMSGSIZE) {
		rw_warn("informer",
			"%s: a watch event is longer than %zu bytes: dropping the stream and "
			"listing again",
			w->inf->t.resource, w->lines.max);
		w->relist = true;
	}
	return rv ? 1 : 0;
}

static void
watch_done(const struct rw_kube_resp *r, void *ud)
{
	struct lw *w = ud;
	struct rw_inf *inf = w->inf;
	bool relist = w->relist, serr = w->stream_err, got = w->got_events;
	w->op = NULL;
	w->relist = w->stream_err = w->got_events = false;
	rw_inf_lines_reset(&w->lines);
	if (!inf->running)
		return;
	if (relist || (!r->err && r->status == 410)) {
		rw_info("informer", "%s: resourceVersion %s is too old, listing again",
			inf->t.resource, w->rv);
		relist_now(w, "expired");
		return;
	}
	if (!serr && !r->err && r->status == 200) {
		/* A clean end (server timeout): resume from the last resourceVersion. */
		w->backoff_ms = 0;
		lw_watch(w);
		return;
	}
	if (got)
		w->backoff_ms = 0;
	rw_info("informer", "%s: watch ended (%s %ld %s), resuming after a back-off",
		inf->t.resource, r->err ? "error" : "HTTP", r->status, r->message);
	lw_backoff(w, r->status == 429 && r->retry_after_s > 0 ? r->retry_after_s * 1000 : 0);
}

static void
lw_watch(struct lw *w)
{
	struct rw_inf *inf = w->inf;
	struct rw_buf path, q;
	struct rw_kube_req req;
	char extra[160];
	int rv, timeout = inf->o.watch_timeout_s;
	if (!inf->running)
		return;
	if (timeout <= 0)
		timeout = 300 + rand() % 300;
	snprintf(extra, sizeof(extra), "watch=1&allowWatchBookmarks=true&timeoutSeconds=%d",
		 timeout);
	rw_buf_init(&path, 8192);
	rw_buf_init(&q, 16384);
	rv = build_path(inf, w, &path);
	if (rv == 0)
		rv = build_query(inf, &q, extra);
	if (rv == 0) {
		rv = rw_buf_puts(&q, "&resourceVersion=");
		if (rv == 0)
			rv = rw_kube_qescape(&q, w->rv);
	}
	memset(&req, 0, sizeof(req));
	req.path = rw_buf_cstr(&path);
	req.query = rw_buf_cstr(&q);
	req.verb = "watch";
	w->state = LW_WATCHING;
	w->relist = w->stream_err = w->got_events = false;
	rw_inf_lines_reset(&w->lines);
	if (rv == 0)
		rv = rw_kube_stream(inf->k, &req, watch_data, watch_done, w, &w->op);
	rw_buf_fini(&path);
	rw_buf_fini(&q);
	if (rv == 0)
		rw_met_add(inf->m_watches, (const char *const[]){inf->t.resource}, 1);
	else
		lw_backoff(w, 0);
}

/* ---- public ---- */

int
rw_inf_new(struct rw_kube *k, const struct rw_inf_type *t, const struct rw_inf_opts *opts,
	   const struct rw_inf_handlers *h, struct rw_inf **out)
{
	static const char *const lr[] = {"resource", NULL};
	static const char *const lrr[] = {"resource", "reason", NULL};
	static const char *const lrt[] = {"resource", "type", NULL};
	struct rw_inf *inf;
	int n = 0;
	*out = NULL;
	if (!k || !t || !t->api_path || !t->resource || !t->decode)
		return -EINVAL;
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return -ENOMEM;
	inf->k = k;
	inf->t = *t;
	if (!inf->t.free_obj)
		inf->t.free_obj = free;
	if (opts)
		inf->o = *opts;
	if (h)
		inf->hs[inf->nh++] = *h;
	if (inf->o.page_size <= 0)
		inf->o.page_size = DEF_PAGE;
	if (!inf->o.max_line)
		inf->o.max_line = DEF_MAX_LINE;
	if (inf->o.label_selector && *inf->o.label_selector)
		inf->label_selector = strdup(inf->o.label_selector);
	if (inf->o.field_selector && *inf->o.field_selector)
		inf->field_selector = strdup(inf->o.field_selector);
	while (inf->o.namespaces && inf->o.namespaces[n])
		n++;
	inf->nlw = n ? n : 1;
	inf->lws = calloc((size_t)inf->nlw, sizeof(*inf->lws));
	if (!inf->lws) {
		free(inf->label_selector);
		free(inf->field_selector);
		free(inf);
		return -ENOMEM;
	}
	for (int i = 0; i < inf->nlw; i++) {
		struct lw *w = &inf->lws[i];
		w->inf = inf;
		w->ns = n ? strdup(inf->o.namespaces[i]) : NULL;
		rw_kmap_init(&w->fresh);
		rw_inf_lines_init(&w->lines, inf->o.max_line);
		uv_timer_init(rw_kube_loop(k), &w->timer);
		w->timer.data = w;
	}
	inf->o.namespaces = NULL;
	inf->o.label_selector = inf->o.field_selector = NULL;
	rw_kmap_init(&inf->store);
	if (inf->o.index_key) {
		inf->idx[0].fn = inf->o.index_key;
		rw_kmap_init(&inf->idx[0].map);
		inf->nidx = 1;
	}
	inf->o.index_key = NULL;
	struct rw_met *m = rw_kube_metrics(k);
	inf->m_objs =
	    rw_met_gauge(m, "raywarden_informer_objects", "Objects in the informer store.", lr);
	inf->m_relists = rw_met_counter(m, "raywarden_informer_relists_total",
					"Relists after 410 Gone or an oversized event.", lrr);
	inf->m_events =
	    rw_met_counter(m, "raywarden_informer_events_total", "Watch events received.", lrt);
	inf->m_watches =
	    rw_met_counter(m, "raywarden_informer_watches_total", "Watch requests started.", lr);
	set_count(inf);
	*out = inf;
	return 0;
}

int
rw_inf_start(struct rw_inf *inf)
{
	if (!inf || inf->freeing)
		return -EINVAL;
	if (inf->running)
		return 0;
	inf->running = true;
	for (int i = 0; i < inf->nlw; i++) {
		struct lw *w = &inf->lws[i];
		w->backoff_ms = 0;
		if (w->synced && w->rv[0])
			lw_watch(w);
		else
			lw_list(w, NULL);
	}
	return 0;
}

void
rw_inf_stop(struct rw_inf *inf)
{
	if (!inf || !inf->running)
		return;
	inf->running = false;
	for (int i = 0; i < inf->nlw; i++) {
		struct lw *w = &inf->lws[i];
		rw_kube_cancel(w->op);
		w->op = NULL;
		uv_timer_stop(&w->timer);
		fresh_clear(w);
		rw_inf_lines_reset(&w->lines);
		w->state = LW_IDLE;
	}
}

static void
inf_closed(uv_handle_t *h)
{
	struct lw *w = h->data;
	struct rw_inf *inf = w->inf;
	if (--inf->pending_closes)
		return;
	free(inf->lws);
	free(inf);
}

static void
idx_free(void *p)
{
	struct idx *x = p;
	if (x)
		free(x->objs);
	free(x);
}

void
rw_inf_free(struct rw_inf *inf)
{
	struct rw_kmap_iter it;
	struct rw_kmap_ent *e;
	if (!inf || inf->freeing)
		return;
	rw_inf_stop(inf);
	inf->freeing = true;
	rw_kmap_iter_init(&inf->store, &it);
	while ((e = rw_kmap_next(&inf->store, &it)) != NULL)
		free_obj(inf, e->val);
	rw_kmap_fini(&inf->store, NULL);
	for (int k = 0; k < inf->nidx; k++)
		rw_kmap_fini(&inf->idx[k].map, idx_free);
	inf->nidx = 0;
	free(inf->label_selector);
	free(inf->field_selector);
	inf->pending_closes = inf->nlw;
	for (int i = 0; i < inf->nlw; i++) {
		struct lw *w = &inf->lws[i];
		free(w->ns);
		rw_kmap_fini(&w->fresh, NULL);
		rw_inf_lines_fini(&w->lines);
		uv_close((uv_handle_t *)&w->timer, inf_closed);
	}
}

bool
rw_inf_synced(const struct rw_inf *inf)
{
	if (!inf)
		return false;
	for (int i = 0; i < inf->nlw; i++)
		if (!inf->lws[i].ever_synced)
			return false;
	return true;
}

const void *
rw_inf_get(const struct rw_inf *inf, const char *ns, const char *name)
{
	char key[600];
	int r = ns && *ns ? snprintf(key, sizeof(key), "%s/%s", ns, name)
			  : snprintf(key, sizeof(key), "%s", name);
	if (r < 0 || (size_t)r >= sizeof(key))
		return NULL;
	return rw_kmap_get(&inf->store, key);
}

size_t
rw_inf_count(const struct rw_inf *inf)
{
	return inf ? inf->store.n : 0;
}

void
rw_inf_foreach(const struct rw_inf *inf, void (*fn)(const void *obj, void *ud), void *ud)
{
	struct rw_kmap_iter it;
	struct rw_kmap_ent *e;
	rw_kmap_iter_init(&inf->store, &it);
	while ((e = rw_kmap_next(&inf->store, &it)) != NULL)
		fn(e->val, ud);
}

int
rw_inf_index_foreach_by(const struct rw_inf *inf, rw_inf_index_fn index, const char *key,
			void (*fn)(const void *obj, void *ud), void *ud)
{
	struct idx *x = NULL;
	for (int k = 0; k < inf->nidx && !x; k++)
		if (!index || inf->idx[k].fn == index)
			x = rw_kmap_get(&inf->idx[k].map, key);
	if (!x)
		return 0;
	int n = x->n;
	for (int i = 0; i < n && i < x->n; i++)
		fn(x->objs[i], ud);
	return n;
}

int
rw_inf_index_foreach(const struct rw_inf *inf, const char *key,
		     void (*fn)(const void *obj, void *ud), void *ud)
{
	return inf->nidx ? rw_inf_index_foreach_by(inf, inf->idx[0].fn, key, fn, ud) : 0;
}

int
rw_inf_add_handlers(struct rw_inf *inf, const struct rw_inf_handlers *h)
{
	if (!inf || !h)
		return -EINVAL;
	if (inf->nh >= RW_INF_MAX_HANDLERS)
		return -ENOSPC;
	inf->hs[inf->nh++] = *h;
	return 0;
}

int
rw_inf_add_index(struct rw_inf *inf, rw_inf_index_fn fn)
{
	struct rw_kmap_iter it;
	struct rw_kmap_ent *e;
	int k;
	if (!inf || !fn)
		return -EINVAL;
	for (k = 0; k < inf->nidx; k++)
		if (inf->idx[k].fn == fn)
			return 0;
	if (inf->nidx >= RW_INF_MAX_INDEXES)
		return -ENOSPC;
	k = inf->nidx++;
	inf->idx[k].fn = fn;
	rw_kmap_init(&inf->idx[k].map);
	/* Objects stored already (an index added after the start) are indexed now. */
	rw_kmap_iter_init(&inf->store, &it);
	while ((e = rw_kmap_next(&inf->store, &it)) != NULL)
		idx_add_one(inf, k, e->val);
	return 0;
}

bool
rw_inf_same(const struct rw_inf *inf, const struct rw_inf_type *t, const char *label_selector)
{
	const char *a = inf->label_selector ? inf->label_selector : "";
	const char *b = label_selector ? label_selector : "";
	return strcmp(inf->t.api_path, t->api_path) == 0 &&
	       strcmp(inf->t.resource, t->resource) == 0 && inf->t.decode == t->decode &&
	       inf->t.free_obj == (t->free_obj ? t->free_obj : free) && strcmp(a, b) == 0;
}

unsigned long
rw_inf_relists(const struct rw_inf *inf)
{
	return inf ? inf->relists : 0;
}

const char *
rw_inf_resource(const struct rw_inf *inf)
{
	return inf->t.resource;
}

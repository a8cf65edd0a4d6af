/*
 * hub.c - the agent hub (see hub.h and docs/controller.md "Agent hub").
 *
 * Transport: the agents speak nng's REQ/REP protocol (SP over TCP: an
 * 8-byte header each way, then frames of a 64-bit big-endian length and a
 * body that starts with the request's 4-byte id). The hub implements the
 * REP side itself on libuv, on the loop thread: accept, read, parse frames,
 * process, and write the reply frame (the request id echoed) with
 * uv_try_write, falling back to a queued uv_write. Earlier versions used an
 * nng REP socket with contexts: at 10,000 reports/s its hand-offs between
 * nng's I/O and task threads and the loop cost ~55 us of CPU per report,
 * eight times the hub's own work (authenticate, decode, compare, seal).
 * A refused message gets no reply (the agent's REQ socket resends after its
 * timeout); a frame over recv_max or a protocol violation closes the
 * connection, as nng does, and so does a message that proves the peer is
 * not a working agent of the key's cluster (see refusal_closes). Until a
 * peer has proven anything it may cost little: deadlines for the SP header
 * and each frame, a budget for partial frames over all connections, and a
 * cap on connections per address (hub.h, rw_hub_opts).
 *
 * Liveness: each pod remembers the connection ("pipe") its last report came
 * on. When a connection closes, the pods of that connection are marked
 * "disconnected", and the sweep makes them stale after
 * disconnect_grace_ms unless a report arrived on a new pipe (the agent
 * reconnected: it reports at once on reconnect). A hung agent or a
 * partition keeps its TCP connection up: that case is the heartbeat
 * staleness, short for head pods (the hub asks head agents for a 1 s
 * heartbeat) and a few heartbeats for workers.
 */
#define _GNU_SOURCE /* mremap */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#include "hub.h"
#include "kmap.h"
#include "rw/list.h"
#include "rw/buf.h"
#include "rw/bytes.h"
#include "rw/clock.h"
#include "rw/log.h"

#define COMPONENT "hub"
#define POD_ID_MAX (64 + 1 + 254)
#define SCOPE_MAX (64 + 1 + 64)
#define CONTAINER(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* ---- state ---- */

struct hub_key;

/*
 * A report packed: the scalars, then every string field of struct
 * rw_report NUL-terminated one after the other. The arrays (apps, nodes,
 * jobs) are the decoded ones, owned by the record.
 */
struct packed_report {
	uint32_t size; /* bytes of the whole record */
	int rayservice, ready, live, draining, has_serve;
	struct {
		enum rw_probe_state state;
		uint64_t since_ms;
	} pr[4]; /* raylet, gcs, proxy, serve_api */
	int napps, nnodes, njobs;
	struct rw_serve_app *apps;
	struct rw_serve_node *nodes;
	struct rw_job *jobs;
	char s[];
};

#define RSTR(f)                                                                                    \
	{                                                                                          \
		offsetof(struct rw_report, f), sizeof(((struct rw_report *)0)->f)                  \
	}
static const struct {
	size_t off, size;
} report_strs[] = {
    RSTR(ns),
    RSTR(pod),
    RSTR(uid),
    RSTR(cluster),
    RSTR(group),
    RSTR(node_type),
    RSTR(pod_ip),
    RSTR(agent_version),
    RSTR(ready_reason),
    RSTR(raylet.reason),
    RSTR(gcs.reason),
    RSTR(proxy.reason),
    RSTR(serve_api.reason),
    RSTR(proxy_location),
    RSTR(serve_config_hash),
    RSTR(serve_apply_state),
    RSTR(serve_apply_error),
    RSTR(job_action_error),
};
#undef RSTR
/* A field added to struct rw_report must be packed too (and this updated). */
_Static_assert(sizeof(struct rw_report) == 2680 || sizeof(void *) != 8,
	       "struct rw_report changed: update struct packed_report and report_strs");

static struct rw_probe *
report_probe(struct rw_report *r, int i)
{
	return i == 0 ? &r->raylet : i == 1 ? &r->gcs : i == 2 ? &r->proxy : &r->serve_api;
}

/* Pack r (its arrays move into the record on success). */
static struct packed_report *
report_pack(struct rw_report *r)
{
	size_t n = sizeof(struct packed_report);
	size_t len[sizeof(report_strs) / sizeof(report_strs[0])];
	for (size_t i = 0; i < sizeof(report_strs) / sizeof(report_strs[0]); i++) {
		len[i] = strnlen((const char *)r + report_strs[i].off, report_strs[i].size - 1);
		n += len[i] + 1;
	}
	struct packed_report *k = malloc(n);
	if (!k)
		return NULL;
	k->size = (uint32_t)n;
	k->rayservice = r->rayservice;
	k->ready = r->ready;
	k->live = r->live;
	k->draining = r->draining;
	k->has_serve = r->has_serve;
	for (int i = 0; i < 4; i++) {
		k->pr[i].state = report_probe(r, i)->state;
		k->pr[i].since_ms = report_probe(r, i)->since_ms;
	}
	k->napps = r->napps;
	k->nnodes = r->nnodes;
	k->njobs = r->njobs;
	k->apps = r->apps;
	k->nodes = r->nodes;
	k->jobs = r->jobs;
	r->apps = NULL;
	r->nodes = NULL;
	r->jobs = NULL;
	r->napps = r->nnodes = r->njobs = 0;
	char *o = k->s;
	for (size_t i = 0; i < sizeof(report_strs) / sizeof(report_strs[0]); i++) {
		memcpy(o, (const char *)r + report_strs[i].off, len[i]);
		o[len[i]] = '\0';
		o += len[i] + 1;
	}
	return k;
}

/* A view of k in out (its arrays still belong to k). */
static void
report_unpack(const struct packed_report *k, struct rw_report *out)
{
	memset(out, 0, sizeof(*out));
	if (!k)
		return;
	out->rayservice = k->rayservice;
	out->ready = k->ready;
	out->live = k->live;
	out->draining = k->draining;
	out->has_serve = k->has_serve;
	for (int i = 0; i < 4; i++) {
		report_probe(out, i)->state = k->pr[i].state;
		report_probe(out, i)->since_ms = k->pr[i].since_ms;
	}
	out->napps = k->napps;
	out->nnodes = k->nnodes;
	out->njobs = k->njobs;
	out->apps = k->apps;
	out->nodes = k->nodes;
	out->jobs = k->jobs;
	const char *s = k->s;
	for (size_t i = 0; i < sizeof(report_strs) / sizeof(report_strs[0]); i++) {
		size_t n = strlen(s);
		memcpy((char *)out + report_strs[i].off, s, n + 1);
		s += n + 1;
	}
}

static void
packed_free(struct packed_report *k)
{
	if (!k)
		return;
	struct rw_report r = {0};
	r.apps = k->apps;
	r.napps = k->napps;
	r.nodes = k->nodes;
	r.jobs = k->jobs;
	rw_report_fini(&r);
	free(k);
}

static void
full_free(struct rw_report *r)
{
	if (r) {
		rw_report_fini(r);
		free(r);
	}
}

struct hub_pod;
static const struct rw_report *pod_report(const struct hub_pod *p, struct rw_report *view);

struct hub_pod {
	struct rw_hlink link;  /* in hub->pods, by "ns/pod" */
	struct rw_hlink slink; /* in hub->by_session while in_sessions */
	int in_sessions;
	uint64_t session; /* the agent session of its last FRESH report */
	uint64_t pdigest; /* digest and length of that report's payload */
	uint32_t plen;
	struct hub_pipe *pp;  /* the open pipe its reports come on, or NULL */
	struct rw_list plink; /* in pp->pods while pp */
	struct rw_list clink; /* in owner->pods while owner */
	struct hub_key *owner;
	char *id; /* "ns/pod" */
	struct rw_wire_replay replay;
	/* The latest report: a head's decoded in full (its pointer is handed
	 * out and held, e.g. the active and pending heads of a RayService at
	 * once), any other pod's packed to its strings' lengths (a worker's
	 * is ~300 bytes instead of a 2.7 KB struct rw_report). */
	struct rw_report *full;
	struct packed_report *packed;
	uint64_t last_seen; /* uv_now */
	uint64_t closed_at; /* uv_now when its pipe closed; 0: connected */
	uint32_t pipe;	    /* nng pipe id of the last report (maybe closed); 0: none */
	uint32_t hb_told;   /* heartbeat_ms carried by the last reply (0: none) */
	uint32_t hb_ms;	    /* heartbeat the agent runs on, as far as we know (0: its default) */
	unsigned char is_head, ready, has_report;
	int stale;
	unsigned char *reply; /* last sealed reply, or NULL */
	size_t reply_len;
	uint64_t reply_session, reply_seq;
};

/* One key of a scope, in hub->keys_by_id while linked. */
struct hub_keyslot {
	struct rw_hlink by_id;
	struct hub_key *owner;
	struct rw_wire_key key;
	uint64_t until; /* the previous key: accepted while uv_now < until */
	int linked;
};

struct hub_key {
	struct rw_hlink by_scope; /* in hub->keys_by_scope, by "ns/cluster" */
	char ns[64];
	char cluster[64];
	char scope[SCOPE_MAX + 1];
	struct hub_keyslot cur;	 /* the key registered last */
	struct hub_keyslot prev; /* the one it replaced, during the overlap window */
	struct rw_list pods;	 /* struct hub_pod, by clink */
	size_t npods;
};

/* An open pipe and the pods whose last report came on it (one for an
 * agent; a load generator multiplexes many pods over a few). */
struct hub_pipe {
	struct rw_hlink link;
	uint32_t id;
	struct rw_list pods; /* struct hub_pod, by plink; never empty for long */
};

/* A pipe that closed (kept a while: a report from it may still be queued). */
struct closed_pipe {
	struct rw_hlink link;
	uint32_t id;
	uint64_t at;
};

#define CLOSED_KEEP_MS 10000
#define STALE_LOG_MAX 10
#define CLOSED_MAX 65536
#define CONNS_MAX 200000

/* SP protocol numbers (nng's reqrep0) and limits. */
#define SP_REQ0 0x30
#define SP_MAX_HOPS 8
#define READ_CHUNK 65536
#define WQ_PAUSE (4u << 20) /* stop reading a connection with this much unsent */

/* Open connections of one peer IP address (for max_conns_per_peer). */
struct hub_peer {
	struct rw_hlink link;
	unsigned n;
	char ip[INET6_ADDRSTRLEN];
};

/* One agent connection (an nng "pipe" to the agent's REQ socket). */
struct hub_conn {
	uv_tcp_t tcp;
	struct rw_hub *hub;
	struct rw_list link; /* in hub->conns */
	/* In hub->waiting (oldest first) while its SP header or a frame is
	 * incomplete, since `since` (uv_now); self-linked otherwise. */
	struct rw_list wlink;
	uint64_t since;
	uint64_t frames; /* frames received */
	struct hub_peer *pr;
	uint32_t id; /* pipe id, never 0 */
	char peer[64];
	struct rw_hub_sp_conn sp;
	int closing, paused;
	int bad; /* a refusal that ends the connection */
};

struct rw_hub {
	uv_loop_t *loop;
	struct rw_hub_opts o;
	char url[256];
	struct rw_hub_callbacks cb;
	void *ud;

	uv_tcp_t listener;
	int listener_init;
	struct rw_list conns; /* struct hub_conn */
	size_t nconns;
	struct rw_list waiting; /* incomplete header or frame, oldest first */
	size_t partial;		/* bytes of their buffers */
	uv_timer_t deadline;	/* runs while waiting is not empty */
	uint64_t deadline_tick;
	struct rw_htab peers; /* struct hub_peer by IP */
	uint32_t next_conn_id;
	int stopping;

	uv_timer_t sweep;
	unsigned char rbuf[READ_CHUNK]; /* every connection reads into this */
	int handles_open;
	int in_cb; /* inside a user callback */

	struct rw_htab pods;
	struct rw_htab by_pipe;	   /* open pipes with pods (struct hub_pipe) by id */
	struct rw_htab by_session; /* pods by the session of their last FRESH report */
	struct rw_htab closed;	   /* recently closed pipe ids (struct closed_pipe) */
	uint64_t last_sweep;
	struct rw_htab keys_by_id;
	struct rw_htab keys_by_scope;
	size_t nkeys;
	struct rw_htab retired; /* ids of keys forgotten lately (struct retired_key) */

	/* Views of packed reports (report_unpack): for callbacks, for
	 * rw_hub_cluster_foreach, and a ring for rw_hub_pod. */
	struct rw_report cb_view, fe_view, pod_view[4];
	unsigned pod_view_next;

	struct rw_buf enc;  /* reply payload */
	struct rw_buf seal; /* sealed reply */

	struct rw_hub_stats st;
	uint64_t started; /* uv_now when it began accepting */
	bool serving;
	uint64_t log_last[RW_HUB_REFUSED_NREASONS];
	uint64_t log_suppressed[RW_HUB_REFUSED_NREASONS];
	uint64_t close_log_last[RW_HUB_CLOSE_NREASONS];
	uint64_t close_log_suppressed[RW_HUB_CLOSE_NREASONS];
};

static const char *const refusal_names[RW_HUB_REFUSED_NREASONS] = {
    [RW_HUB_REFUSED_SIZE] = "size",
    [RW_HUB_REFUSED_MALFORMED] = "malformed",
    [RW_HUB_REFUSED_VERSION] = "version",
    [RW_HUB_REFUSED_UNKNOWN_KEY] = "unknown_key",
    [RW_HUB_REFUSED_MAC] = "mac",
    [RW_HUB_REFUSED_CLOCK] = "clock",
    [RW_HUB_REFUSED_REPLAY] = "replay",
    [RW_HUB_REFUSED_PAYLOAD] = "payload",
    [RW_HUB_REFUSED_SCOPE] = "scope",
    [RW_HUB_REFUSED_FULL] = "full",
    [RW_HUB_REFUSED_CLUSTER_FULL] = "cluster_full",
    [RW_HUB_REFUSED_PENDING] = "pending",
    [RW_HUB_REFUSED_FORGED] = "forged",
};

static const char *const close_names[RW_HUB_CLOSE_NREASONS] = {
    [RW_HUB_CLOSE_HANDSHAKE_TIMEOUT] = "handshake_timeout",
    [RW_HUB_CLOSE_FRAME_TIMEOUT] = "frame_timeout",
    [RW_HUB_CLOSE_BUDGET] = "budget",
    [RW_HUB_CLOSE_PEER_CAP] = "peer_cap",
    [RW_HUB_CLOSE_PROTOCOL] = "protocol",
    [RW_HUB_CLOSE_REFUSED] = "refused",
};

const char *
rw_hub_close_name(enum rw_hub_close r)
{
	if ((int)r < 0 || r >= RW_HUB_CLOSE_NREASONS)
		return "unknown";
	return close_names[r];
}

const char *
rw_hub_refusal_name(enum rw_hub_refusal r)
{
	if ((int)r < 0 || r >= RW_HUB_REFUSED_NREASONS)
		return "unknown";
	return refusal_names[r];
}

/* ---- keys and pods ---- */

static struct hub_key *
key_by_scope(const struct rw_hub *h, const char *ns, const char *cluster)
{
	char scope[SCOPE_MAX + 1];
	int n = snprintf(scope, sizeof(scope), "%s/%s", ns, cluster);
	if (n < 0 || (size_t)n >= sizeof(scope))
		return NULL;
	uint64_t hv = rw_hash_str(scope);
	for (struct rw_hlink *l = rw_htab_chain(&h->keys_by_scope, hv); l; l = l->next) {
		struct hub_key *k = CONTAINER(l, struct hub_key, by_scope);
		if (l->hash == hv && strcmp(k->scope, scope) == 0)
			return k;
	}
	return NULL;
}

static struct hub_pod *
pod_find(const struct rw_hub *h, const char *ns, const char *pod)
{
	char id[POD_ID_MAX + 1];
	int n = snprintf(id, sizeof(id), "%s/%s", ns, pod);
	if (n < 0 || (size_t)n >= sizeof(id))
		return NULL;
	uint64_t hv = rw_hash_str(id);
	for (struct rw_hlink *l = rw_htab_chain(&h->pods, hv); l; l = l->next) {
		struct hub_pod *p = CONTAINER(l, struct hub_pod, link);
		if (l->hash == hv && strcmp(p->id, id) == 0)
			return p;
	}
	return NULL;
}

static void
pod_unlink_owner(struct hub_pod *p)
{
	struct hub_key *k = p->owner;
	if (!k)
		return;
	rw_list_remove(&p->clink);
	p->owner = NULL;
	k->npods--;
}

static void
pod_link_owner(struct hub_pod *p, struct hub_key *k)
{
	p->owner = k;
	rw_list_insert_head(&k->pods, &p->clink);
	k->npods++;
}

static void
pod_unlink_pipe(struct rw_hub *h, struct hub_pod *p)
{
	struct hub_pipe *pp = p->pp;
	if (!pp)
		return;
	rw_list_remove(&p->plink);
	p->pp = NULL;
	if (rw_list_empty(&pp->pods)) {
		rw_htab_remove(&h->by_pipe, &pp->link);
		free(pp);
	}
}

static void
pod_free(struct rw_hub *h, struct hub_pod *p)
{
	if (!p)
		return;
	pod_unlink_pipe(h, p);
	if (p->in_sessions)
		rw_htab_remove(&h->by_session, &p->slink);
	rw_htab_remove(&h->pods, &p->link);
	pod_unlink_owner(p);
	full_free(p->full);
	packed_free(p->packed);
	free(p->id);
	free(p->reply);
	free(p);
}

/* The pod's latest report: the head's own, or a view of a packed one in view. */
static const struct rw_report *
pod_report(const struct hub_pod *p, struct rw_report *view)
{
	if (p->full)
		return p->full;
	report_unpack(p->packed, view);
	return view;
}

/*
 * Make r the pod's report (its arrays move with it; r is cleared). The
 * previous report's storage goes to *old_full and *old_packed, for the
 * caller to free once the callbacks that may look at it have run.
 */
static int
pod_store(struct hub_pod *p, struct rw_report *r, struct rw_report **old_full,
	  struct packed_report **old_packed)
{
	int head = strcmp(r->node_type, "head") == 0;
	struct rw_report *full = NULL;
	struct packed_report *pk = NULL;
	if (head) {
		full = malloc(sizeof(*full));
		if (!full)
			return -ENOMEM;
		*full = *r;
	} else if (!(pk = report_pack(r))) {
		return -ENOMEM;
	}
	memset(r, 0, sizeof(*r));
	*old_full = p->full;
	*old_packed = p->packed;
	p->full = full;
	p->packed = pk;
	p->is_head = (unsigned char)head;
	p->ready = (unsigned char)(full ? full->ready : pk->ready);
	p->has_report = 1;
	return 0;
}

/* Heap bytes of one pod record: what a table of many pods costs each. */
static size_t
pod_bytes(const struct hub_pod *p)
{
	size_t n = sizeof(*p) + p->reply_len + (p->id ? strlen(p->id) + 1 : 0);
	/* Its share of the tables it is linked in (pods, sessions). */
	n += 2 * sizeof(struct rw_hlink *);
	const struct rw_serve_app *apps = p->full     ? p->full->apps
					  : p->packed ? p->packed->apps
						      : NULL;
	int napps = p->full ? p->full->napps : p->packed ? p->packed->napps : 0;
	int nnodes = p->full ? p->full->nnodes : p->packed ? p->packed->nnodes : 0;
	int njobs = p->full ? p->full->njobs : p->packed ? p->packed->njobs : 0;
	n += p->full ? sizeof(*p->full) : p->packed ? p->packed->size : 0;
	n += (size_t)napps * sizeof(struct rw_serve_app) +
	     (size_t)nnodes * sizeof(struct rw_serve_node) + (size_t)njobs * sizeof(struct rw_job);
	for (int i = 0; i < napps; i++)
		n += (size_t)apps[i].ndeps * sizeof(*apps[i].deps);
	return n;
}

size_t
rw_hub_pod_bytes(struct rw_hub *h, const char *ns, const char *pod)
{
	const struct hub_pod *p = h && ns && pod ? pod_find(h, ns, pod) : NULL;
	return p ? pod_bytes(p) : 0;
}

/* ---- connections (pipes) ---- */

static struct closed_pipe *
closed_find(const struct rw_hub *h, uint32_t id)
{
	uint64_t hv = rw_hash_u64(id);
	for (struct rw_hlink *l = rw_htab_chain(&h->closed, hv); l; l = l->next) {
		struct closed_pipe *c = CONTAINER(l, struct closed_pipe, link);
		if (l->hash == hv && c->id == id)
			return c;
	}
	return NULL;
}

static struct hub_pipe *
pipe_find(const struct rw_hub *h, uint32_t id)
{
	uint64_t hv = rw_hash_u64(id);
	for (struct rw_hlink *l = rw_htab_chain(&h->by_pipe, hv); l; l = l->next) {
		struct hub_pipe *pp = CONTAINER(l, struct hub_pipe, link);
		if (l->hash == hv && pp->id == id)
			return pp;
	}
	return NULL;
}

/* The pod's report came on pipe id: remember it (a report on a new pipe
 * means the agent is connected again, unless that pipe closed already). */
static void
pod_set_pipe(struct rw_hub *h, struct hub_pod *p, uint32_t id, uint64_t now)
{
	if (id == p->pipe)
		return;
	pod_unlink_pipe(h, p);
	p->pipe = id;
	p->closed_at = 0;
	if (!id)
		return;
	const struct closed_pipe *c = closed_find(h, id);
	if (c) {
		/* The close was seen before this (queued) report. */
		p->closed_at = c->at ? c->at : now;
		return;
	}
	struct hub_pipe *pp = pipe_find(h, id);
	if (!pp) {
		pp = calloc(1, sizeof(*pp));
		if (!pp)
			return; /* untracked: the heartbeat staleness still applies */
		pp->id = id;
		rw_list_init(&pp->pods);
		if (rw_htab_insert(&h->by_pipe, &pp->link, rw_hash_u64(id)) != 0) {
			free(pp);
			return;
		}
	}
	p->pp = pp;
	rw_list_insert_head(&pp->pods, &p->plink);
}

/* Pipe id closed: its pods are disconnected from now on. */
static void
pipe_closed(struct rw_hub *h, uint32_t id, uint64_t now)
{
	uint64_t hv = rw_hash_u64(id);
	struct hub_pipe *pp = pipe_find(h, id);
	if (pp) {
		struct rw_list *n, *tmp;
		RW_LIST_FOREACH_SAFE (n, tmp, &pp->pods) {
			struct hub_pod *p = rw_list_entry(n, struct hub_pod, plink);
			rw_list_remove(&p->plink);
			p->pp = NULL;
			if (!p->closed_at)
				p->closed_at = now ? now : 1;
		}
		rw_htab_remove(&h->by_pipe, &pp->link);
		free(pp);
	}
	if (h->closed.n >= CLOSED_MAX || closed_find(h, id))
		return;
	struct closed_pipe *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->id = id;
	c->at = now ? now : 1;
	if (rw_htab_insert(&h->closed, &c->link, hv) != 0)
		free(c);
}

static void
closed_expire(struct rw_hub *h, uint64_t now, int all)
{
	struct rw_hlink *l, *next;
	size_t i;
	RW_HTAB_FOREACH_SAFE (l, next, i, &h->closed) {
		struct closed_pipe *c = CONTAINER(l, struct closed_pipe, link);
		if (all || now - c->at >= CLOSED_KEEP_MS) {
			rw_htab_remove(&h->closed, l);
			free(c);
		}
	}
}

/* How long pod p may stay silent. */
static uint64_t
pod_stale_after(const struct rw_hub *h, const struct hub_pod *p)
{
	if (p->is_head && p->hb_ms && p->hb_ms <= h->o.head_heartbeat_ms)
		return h->o.head_stale_after_ms;
	return h->o.stale_after_ms;
}

/* 1: silent too long, 2: disconnected too long, 0: live. */
static int
pod_stale_why(const struct rw_hub *h, const struct hub_pod *p, uint64_t now)
{
	if (now > p->last_seen && now - p->last_seen >= pod_stale_after(h, p))
		return 1;
	if (p->closed_at && now >= p->closed_at && now - p->closed_at >= h->o.disconnect_grace_ms)
		return 2;
	return 0;
}

static int
key_same(const struct rw_wire_key *a, const struct rw_wire_key *b)
{
	return a->id == b->id && a->len == b->len && memcmp(a->k, b->k, a->len) == 0;
}

static void
slot_unlink(struct rw_hub *h, struct hub_keyslot *s)
{
	if (s->linked)
		rw_htab_remove(&h->keys_by_id, &s->by_id);
	s->linked = 0;
}

static int
slot_link(struct rw_hub *h, struct hub_keyslot *s)
{
	if (rw_htab_insert(&h->keys_by_id, &s->by_id, rw_hash_u64(s->key.id)) != 0)
		return -ENOMEM;
	s->linked = 1;
	return 0;
}

/*
 * A key id no longer accepted, remembered for key_overlap_ms: the agents of
 * a deleted cluster report until their pods are gone, and agents of a
 * rotated key until their key file is updated. Their frames are dropped
 * without closing the connection, which would only make each of them
 * reconnect and resend ten times a second.
 */
struct retired_key {
	struct rw_hlink link;
	uint32_t id;
	uint64_t until;
};
#define RETIRED_MAX 65536

static struct retired_key *
retired_find(const struct rw_hub *h, uint32_t id)
{
	uint64_t hv = rw_hash_u64(id);
	for (struct rw_hlink *l = rw_htab_chain(&h->retired, hv); l; l = l->next) {
		struct retired_key *r = CONTAINER(l, struct retired_key, link);
		if (l->hash == hv && r->id == id)
			return r;
	}
	return NULL;
}

static void
key_retire(struct rw_hub *h, uint32_t id)
{
	struct retired_key *r = retired_find(h, id);
	uint64_t until = uv_now(h->loop) + h->o.key_overlap_ms;
	if (r) {
		r->until = until;
		return;
	}
	if (h->retired.n >= RETIRED_MAX || !(r = calloc(1, sizeof(*r))))
		return; /* then its agents are closed: a cost, not a fault */
	r->id = id;
	r->until = until;
	if (rw_htab_insert(&h->retired, &r->link, rw_hash_u64(id)) != 0)
		free(r);
}

static void
retired_expire(struct rw_hub *h, uint64_t now, int all)
{
	struct rw_hlink *l, *next;
	size_t i;
	RW_HTAB_FOREACH_SAFE (l, next, i, &h->retired) {
		struct retired_key *r = CONTAINER(l, struct retired_key, link);
		if (all || now >= r->until) {
			rw_htab_remove(&h->retired, l);
			free(r);
		}
	}
}

/* The previous key of k is no longer accepted. */
static void
slot_forget_prev(struct rw_hub *h, struct hub_key *k)
{
	if (k->prev.linked)
		key_retire(h, k->prev.key.id);
	slot_unlink(h, &k->prev);
	rw_wire_key_wipe(&k->prev.key);
	k->prev.until = 0;
}

static void
key_free(struct rw_hub *h, struct hub_key *k)
{
	while (!rw_list_empty(&k->pods))
		pod_free(h, rw_list_entry(rw_list_first(&k->pods), struct hub_pod, clink));
	rw_htab_remove(&h->keys_by_scope, &k->by_scope);
	if (k->cur.linked)
		key_retire(h, k->cur.key.id);
	slot_unlink(h, &k->cur);
	slot_forget_prev(h, k);
	rw_wire_key_wipe(&k->cur.key);
	free(k);
	h->nkeys--;
}

int
rw_hub_key_add(struct rw_hub *h, const char *ns, const char *cluster, const struct rw_wire_key *key)
{
	if (!h || !ns || !cluster || !key || !*ns || !*cluster || strlen(ns) >= 64 ||
	    strlen(cluster) >= 64 || key->len < RW_WIRE_KEY_MIN || key->len > RW_WIRE_KEY_MAX)
		return -EINVAL;
	struct hub_key *k = key_by_scope(h, ns, cluster);
	if (k) {
		uint64_t now = uv_now(h->loop);
		if (key_same(&k->cur.key, key))
			return 0;
		/* The current key overlaps with the new one; an older one goes. */
		int back = k->prev.linked && key_same(&k->prev.key, key);
		struct rw_wire_key old = k->cur.key;
		slot_unlink(h, &k->cur);
		slot_forget_prev(h, k);
		k->cur.key = *key;
		k->prev.key = old;
		rw_wire_key_wipe(&old);
		k->prev.until = now + h->o.key_overlap_ms;
		if (slot_link(h, &k->cur) != 0) {
			/* Cannot happen: the table had room for it a moment ago. */
			key_free(h, k);
			return -ENOMEM;
		}
		if (slot_link(h, &k->prev) != 0)
			slot_forget_prev(h, k); /* no overlap rather than no key */
		rw_info(COMPONENT,
			"key of %s %s; the previous key (id %08x) is accepted for %" PRIu64
			" ms more",
			k->scope, back ? "rolled back" : "replaced", k->prev.key.id,
			h->o.key_overlap_ms);
		return 0;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	snprintf(k->ns, sizeof(k->ns), "%s", ns);
	snprintf(k->cluster, sizeof(k->cluster), "%s", cluster);
	snprintf(k->scope, sizeof(k->scope), "%s/%s", ns, cluster);
	rw_list_init(&k->pods);
	k->cur.owner = k->prev.owner = k;
	k->cur.key = *key;
	if (rw_htab_insert(&h->keys_by_scope, &k->by_scope, rw_hash_str(k->scope)) != 0) {
		free(k);
		return -ENOMEM;
	}
	if (slot_link(h, &k->cur) != 0) {
		rw_htab_remove(&h->keys_by_scope, &k->by_scope);
		free(k);
		return -ENOMEM;
	}
	h->nkeys++;
	return 0;
}

int
rw_hub_key_remove(struct rw_hub *h, const char *ns, const char *cluster)
{
	if (!h || !ns || !cluster)
		return -EINVAL;
	if (h->in_cb)
		return -EBUSY;
	struct hub_key *k = key_by_scope(h, ns, cluster);
	if (!k)
		return -ENOENT;
	key_free(h, k);
	return 0;
}

/* Forget previous keys whose overlap window has passed. */
static void
keys_expire(struct rw_hub *h, uint64_t now)
{
	for (size_t i = 0; i < h->keys_by_scope.nb; i++)
		for (struct rw_hlink *l = h->keys_by_scope.b[i]; l; l = l->next) {
			struct hub_key *k = CONTAINER(l, struct hub_key, by_scope);
			if (k->prev.linked && now >= k->prev.until) {
				rw_info(COMPONENT,
					"previous key of %s (id %08x) no longer accepted: its "
					"overlap window has passed",
					k->scope, k->prev.key.id);
				slot_forget_prev(h, k);
			}
		}
}

/* ---- refusals ---- */

/*
 * Count a refusal and log it, at most once per reason per log interval
 * (with the number of lines suppressed since). detail never holds key
 * material or payload text.
 */
/* Refusals after which the connection is closed (see enum rw_hub_close).
 * Not a version mismatch: that is a rolling upgrade, cheap to refuse (no
 * MAC), and closing would make every such agent reconnect and resend in a
 * loop. */
static int
in_startup_grace(const struct rw_hub *h)
{
	return uv_now(h->loop) - h->started < h->o.startup_grace_ms;
}

static int
refusal_closes(const struct rw_hub *h, enum rw_hub_refusal why)
{
	switch (why) {
	case RW_HUB_REFUSED_UNKNOWN_KEY:
		return !in_startup_grace(h);
	case RW_HUB_REFUSED_SIZE:
	case RW_HUB_REFUSED_MALFORMED:
	case RW_HUB_REFUSED_MAC:
	case RW_HUB_REFUSED_PAYLOAD:
	case RW_HUB_REFUSED_SCOPE:
	case RW_HUB_REFUSED_FORGED:
		return 1;
	default:
		return 0;
	}
}

static void
refuse(struct rw_hub *h, enum rw_hub_refusal why, struct hub_conn *c, const char *detail)
{
	uint64_t now = uv_now(h->loop);
	const char *peer = c ? c->peer : "unknown peer";

	if (c && refusal_closes(h, why))
		c->bad = 1;
	h->st.refused[why]++;
	h->st.refused_total++;
	if (h->log_last[why] && now - h->log_last[why] < h->o.log_interval_ms) {
		h->log_suppressed[why]++;
		return;
	}
	if (h->log_suppressed[why])
		rw_warn(COMPONENT,
			"refused message from %s (%s): %s [%" PRIu64
			" similar refusals not logged]",
			peer, refusal_names[why], detail, h->log_suppressed[why]);
	else
		rw_warn(COMPONENT, "refused message from %s (%s): %s", peer, refusal_names[why],
			detail);
	h->log_last[why] = now ? now : 1;
	h->log_suppressed[why] = 0;
}

/* ---- processing on the loop ---- */

/* Seal the reply for pod p (answering hdr) with key k into h->seal and cache it. */
static int
build_reply(struct rw_hub *h, struct hub_pod *p, const struct rw_report *r,
	    const struct rw_wire_key *key, const struct rw_wire_hdr *rq)
{
	struct rw_reply rep;
	struct rw_wire_hdr rh;
	int rv;

	memset(&rep, 0, sizeof(rep));
	rep.proxy_expected = -1;
	rep.submit.num_cpus = -1;
	rep.submit.num_gpus = -1;
	rep.submit.memory = -1;
	if (h->cb.reply) {
		h->in_cb++;
		rv = h->cb.reply(h, r, &rep, h->ud);
		h->in_cb--;
		if (rv != 0) {
			rw_reply_fini(&rep);
			return rv < 0 ? rv : -EIO;
		}
	}
	/* Head agents report at least every head_heartbeat_ms. */
	if (p->is_head && (rep.heartbeat_ms == 0 || rep.heartbeat_ms > h->o.head_heartbeat_ms))
		rep.heartbeat_ms = h->o.head_heartbeat_ms;
	p->hb_told = rep.heartbeat_ms;
	rw_buf_reset(&h->enc);
	rv = rw_reply_encode(&rep, &h->enc);
	rw_reply_fini(&rep);
	if (rv != 0) {
		rw_warn(COMPONENT, "reply for %s does not encode: %s", p->id, strerror(-rv));
		return rv;
	}
	memset(&rh, 0, sizeof(rh));
	rh.type = RW_WIRE_REPLY;
	rh.session = rq->session;
	rh.seq = rq->seq;
	rh.ts_ms = rw_clock_wall_ms();
	rv = rw_wire_seal(key, &rh, h->enc.data, h->enc.len, &h->seal);
	if (rv != 0)
		return rv;
	unsigned char *copy = malloc(h->seal.len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, h->seal.data, h->seal.len);
	free(p->reply);
	p->reply = copy;
	p->reply_len = h->seal.len;
	p->reply_session = rq->session;
	p->reply_seq = rq->seq;
	return 0;
}

/* A 64-bit digest of a payload (not cryptographic: the MAC already vouched
 * for the bytes; this only tells an unchanged heartbeat from a new report). */
static uint64_t
payload_digest(const char *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	h ^= h >> 32;
	return h * 0xc4ceb9fe1a85ec53ULL;
}

static struct hub_pod *
session_find(const struct rw_hub *h, uint64_t session)
{
	uint64_t hv = rw_hash_u64(session);
	for (struct rw_hlink *l = rw_htab_chain(&h->by_session, hv); l; l = l->next) {
		struct hub_pod *p = CONTAINER(l, struct hub_pod, slink);
		if (l->hash == hv && p->session == session)
			return p;
	}
	return NULL;
}

static void
session_set(struct rw_hub *h, struct hub_pod *p, uint64_t session)
{
	if (p->in_sessions && p->session == session)
		return;
	if (p->in_sessions)
		rw_htab_remove(&h->by_session, &p->slink);
	p->in_sessions = 0;
	p->session = session;
	if (rw_htab_insert(&h->by_session, &p->slink, rw_hash_u64(session)) == 0)
		p->in_sessions = 1;
}

/* ---- processing one message, in stages ----
 *
 * process() runs: check_envelope (framing, version, length: before the MAC)
 * -> authenticate (a current key of the id opens it; it is a report) ->
 * the fast path for an unchanged heartbeat (process_same) or decode_report
 * -> admit (scope, the admit callback, the per-key pod limit, replay) ->
 * apply (the pod table, the report, the callbacks) -> reply. A stage that
 * refuses says why (refuse()) and the message gets no reply. The stages add
 * no allocation or copy of their own (a report's cost stays apply's: the pod
 * table and pod_store); small ones are inlined by the compiler.
 */

/* The on_report callback, guarded against re-entry (h->in_cb). */
static void
notify(struct rw_hub *h, const struct rw_report *cur, const struct rw_report *prev)
{
	if (h->cb.on_report) {
		h->in_cb++;
		h->cb.on_report(h, cur, prev, h->ud);
		h->in_cb--;
	}
}

static void
log_back(const struct hub_pod *p, uint64_t now)
{
	rw_info(COMPONENT, "agent of pod %s reporting again after %" PRIu64 " ms", p->id,
		now - p->last_seen);
}

/*
 * Reply stage: seal p's reply to hdr (unless reuse and the cached one
 * answers this very session and sequence). Returns 1 with *out set (owned by
 * the pod), or 0 when no reply could be built.
 */
static int
reply(struct rw_hub *h, struct hub_pod *p, const struct rw_report *r, const struct rw_wire_key *key,
      const struct rw_wire_hdr *hdr, int reuse, const unsigned char **out, size_t *outlen)
{
	if (!(reuse && p->reply && p->reply_session == hdr->session && p->reply_seq == hdr->seq) &&
	    build_reply(h, p, r, key, hdr) != 0) {
		h->st.no_reply++;
		return 0;
	}
	*out = p->reply;
	*outlen = p->reply_len;
	return 1;
}

/* Refuse a report the replay check rejected (fresh < 0); pod names it. */
static void
refuse_replay(struct rw_hub *h, struct hub_conn *m, int fresh, const char *pod,
	      const struct rw_wire_hdr *hdr)
{
	char detail[600];
	snprintf(detail, sizeof(detail),
		 "%s for pod %.320s (session %016" PRIx64 ", seq %" PRIu64 ", ts %" PRIu64 ")",
		 fresh == -ETIME ? "timestamp outside the clock-skew window"
				 : "replayed or reordered report",
		 pod, hdr->session, hdr->seq, hdr->ts_ms);
	refuse(h, fresh == -ETIME ? RW_HUB_REFUSED_CLOCK : RW_HUB_REFUSED_REPLAY, m, detail);
}

/* A RESEND of pod p: the cached reply again (a stale pod is back). */
static int
resend(struct rw_hub *h, struct hub_pod *p, const struct rw_wire_key *key,
       const struct rw_wire_hdr *hdr, uint32_t pipe_id, const unsigned char **out, size_t *outlen)
{
	uint64_t now = uv_now(h->loop);
	h->st.resends++;
	if (p->stale)
		log_back(p, now);
	p->last_seen = now;
	pod_set_pipe(h, p, pipe_id, now);
	const struct rw_report *r = pod_report(p, &h->cb_view);
	if (p->stale) {
		p->stale = 0;
		notify(h, r, r);
	}
	return reply(h, p, r, key, hdr, 1, out, outlen);
}

/*
 * The payload is byte for byte the last one pod p reported in this session
 * (an unchanged heartbeat): no decoding, no comparison; the replay checks
 * and the reply as usual.
 */
static int
process_same(struct rw_hub *h, struct hub_conn *m, const struct rw_wire_key *key, struct hub_pod *p,
	     const struct rw_wire_hdr *hdr, const unsigned char **out, size_t *outlen)
{
	int fresh =
	    rw_wire_replay_check(&p->replay, hdr, rw_clock_wall_ms(), h->o.replay_window_ms);
	if (fresh < 0) {
		refuse_replay(h, m, fresh, p->id, hdr);
		return 0;
	}
	if (fresh == RW_WIRE_RESEND)
		return resend(h, p, key, hdr, m->id, out, outlen);
	uint64_t now = uv_now(h->loop);
	int back = p->stale;
	h->st.reports++;
	h->st.unchanged_fast++;
	if (back)
		log_back(p, now);
	p->last_seen = now;
	p->stale = 0;
	pod_set_pipe(h, p, m->id, now);
	p->hb_ms = p->hb_told;
	const struct rw_report *r = pod_report(p, &h->cb_view);
	if (back) {
		h->st.changes++;
		notify(h, r, r);
	}
	return reply(h, p, r, key, hdr, 0, out, outlen);
}

/*
 * Envelope stage: size, magic, version and the header's payload length,
 * all before the MAC (the expensive part, linear in the message: ~4 ms a
 * MiB). Returns 0, or -1 when refused.
 */
static int
check_envelope(struct rw_hub *h, struct hub_conn *m, const unsigned char *msg, size_t n)
{
	char detail[256];
	enum rw_hub_refusal why;
	if (n > h->o.recv_max || n > RW_WIRE_MAX_MSG) {
		why = RW_HUB_REFUSED_SIZE;
		snprintf(detail, sizeof(detail), "message of %zu bytes exceeds the limit", n);
	} else if (n < RW_WIRE_HDR_LEN + RW_WIRE_MAC_LEN || memcmp(msg, "RWP\x01", 4) != 0) {
		why = RW_HUB_REFUSED_MALFORMED;
		snprintf(detail, sizeof(detail), "not a raywarden envelope (%zu bytes)", n);
	} else if (rw_get_be16(msg + 4) != RW_WIRE_VERSION) {
		why = RW_HUB_REFUSED_VERSION;
		snprintf(detail, sizeof(detail),
			 "unsupported protocol version %u (this controller speaks %d); upgrade "
			 "the controller or roll back the agent",
			 (unsigned)rw_get_be16(msg + 4), RW_WIRE_VERSION);
	} else if (rw_get_be32(msg + 40) != n - RW_WIRE_HDR_LEN - RW_WIRE_MAC_LEN) {
		why = RW_HUB_REFUSED_MALFORMED;
		snprintf(detail, sizeof(detail), "payload length %u in a %zu-byte envelope",
			 (unsigned)rw_get_be32(msg + 40), n);
	} else {
		return 0;
	}
	refuse(h, why, m, detail);
	return -1;
}

/*
 * Authentication stage: open msg with a current key of its key id (two
 * slots may share an id across a rotation: the first whose MAC verifies
 * wins), and it must be a report. Returns the key slot with *hdr and
 * *payload set, or NULL when refused.
 */
static const struct hub_keyslot *
authenticate(struct rw_hub *h, struct hub_conn *m, const unsigned char *msg, size_t n,
	     struct rw_wire_hdr *hdr, const char **payload)
{
	char detail[256];
	uint32_t kid = rw_get_be32(msg + 12);
	uint64_t hv = rw_hash_u64(kid), lnow = uv_now(h->loop);
	const struct hub_keyslot *slot = NULL;
	int candidates = 0, rv = -EKEYREJECTED;
	for (struct rw_hlink *l = rw_htab_chain(&h->keys_by_id, hv); l; l = l->next) {
		const struct hub_keyslot *c = CONTAINER(l, struct hub_keyslot, by_id);
		if (l->hash != hv || c->key.id != kid || (c->until && lnow >= c->until))
			continue;
		candidates++;
		rv = rw_wire_open(&c->key, msg, n, hdr, payload);
		if (rv != -EACCES) {
			slot = c;
			break;
		}
	}
	if (rv != 0) {
		enum rw_hub_refusal why = RW_HUB_REFUSED_MALFORMED;
		if (!candidates) {
			why = RW_HUB_REFUSED_UNKNOWN_KEY;
			snprintf(detail, sizeof(detail),
				 "no key with id %08x (the agent holds a key this controller did "
				 "not issue, or its cluster is gone)",
				 kid);
		} else if (rv == -EACCES) {
			why = RW_HUB_REFUSED_MAC;
			snprintf(detail, sizeof(detail), "bad MAC for key id %08x", kid);
		} else if (rv == -EMSGSIZE) {
			why = RW_HUB_REFUSED_SIZE;
			snprintf(detail, sizeof(detail), "%s", rw_wire_strerror(rv));
		} else {
			snprintf(detail, sizeof(detail), "%s (key id %08x)", rw_wire_strerror(rv),
				 kid);
		}
		refuse(h, why, m, detail);
		return NULL;
	}
	if (hdr->type != RW_WIRE_REPORT) {
		snprintf(detail, sizeof(detail), "message type %u is not a report",
			 (unsigned)hdr->type);
		refuse(h, RW_HUB_REFUSED_MALFORMED, m, detail);
		return NULL;
	}
	return slot;
}

/*
 * Decoding stage: the payload into *rpt (zeroed first). Returns 0, or -1
 * when refused (then *rpt holds nothing to free).
 */
static int
decode_report(struct rw_hub *h, struct hub_conn *m, const struct hub_key *k, const char *payload,
	      size_t len, struct rw_report *rpt)
{
	char derr[200], detail[512];
	memset(rpt, 0, sizeof(*rpt));
	if (rw_report_decode(payload, len, rpt, derr, sizeof(derr)) == 0)
		return 0;
	snprintf(detail, sizeof(detail), "report from key scope %s: %s", k->scope, derr);
	refuse(h, RW_HUB_REFUSED_PAYLOAD, m, detail);
	return -1;
}

/*
 * Admission stage: the report is for a pod of the key's cluster, the admit
 * callback agrees, the key has room for a pod it does not own yet, and the
 * replay check passes. Returns RW_WIRE_FRESH or RW_WIRE_RESEND with *pp the
 * pod (NULL: not known yet; its replay state is then *tmp), or -1 when
 * refused.
 */
static int
admit(struct rw_hub *h, struct hub_conn *m, struct hub_key *k, const struct rw_report *rpt,
      const struct rw_wire_hdr *hdr, struct hub_pod **pp, struct rw_wire_replay *tmp)
{
	char detail[1024];
	int rv;
	if (strcmp(rpt->ns, k->ns) != 0 || strcmp(rpt->cluster, k->cluster) != 0) {
		snprintf(detail, sizeof(detail), "key of %s used for pod %s/%s of cluster \"%s\"",
			 k->scope, rpt->ns, rpt->pod, rpt->cluster);
		refuse(h, RW_HUB_REFUSED_SCOPE, m, detail);
		return -1;
	}
	if (h->cb.admit) {
		char why[256] = "";
		h->in_cb++;
		rv = h->cb.admit(h, k->ns, k->cluster, rpt, why, sizeof(why), h->ud);
		h->in_cb--;
		if (rv != 0) {
			snprintf(detail, sizeof(detail),
				 "key of %s used for pod %s/%s (uid %s): %s", k->scope, rpt->ns,
				 rpt->pod, rpt->uid, why[0] ? why : "not admitted");
			refuse(h, rv == -EAGAIN ? RW_HUB_REFUSED_PENDING : RW_HUB_REFUSED_FORGED, m,
			       detail);
			return -1;
		}
	}
	struct hub_pod *p = pod_find(h, rpt->ns, rpt->pod);
	if ((!p || p->owner != k) && k->npods >= h->o.max_pods_per_key) {
		snprintf(detail, sizeof(detail), "cluster %s has %zu pods (the limit); pod %s/%s",
			 k->scope, k->npods, rpt->ns, rpt->pod);
		refuse(h, RW_HUB_REFUSED_CLUSTER_FULL, m, detail);
		return -1;
	}
	rv = rw_wire_replay_check(p ? &p->replay : tmp, hdr, rw_clock_wall_ms(),
				  h->o.replay_window_ms);
	if (rv < 0) {
		snprintf(detail, sizeof(detail), "%s/%s", rpt->ns, rpt->pod);
		refuse_replay(h, m, rv, detail, hdr);
		return -1;
	}
	*pp = p;
	return rv;
}

/*
 * Apply stage (a FRESH report): the pod (created when p is NULL, its replay
 * state from *tmp), the report stored in it (*rpt's arrays move into the
 * pod), the callbacks when it changed; then the reply. Returns as reply().
 */
static int
apply(struct rw_hub *h, struct hub_conn *m, const struct hub_keyslot *slot, struct hub_pod *p,
      const struct rw_wire_replay *tmp, const struct rw_wire_hdr *hdr, uint64_t dig,
      struct rw_report *rpt, const unsigned char **out, size_t *outlen)
{
	struct hub_key *k = slot->owner;
	uint64_t now = uv_now(h->loop);
	if (!p) {
		if (h->pods.n >= h->o.max_pods) {
			char detail[600];
			snprintf(detail, sizeof(detail), "pod table full (%zu pods); pod %s/%s",
				 h->pods.n, rpt->ns, rpt->pod);
			refuse(h, RW_HUB_REFUSED_FULL, m, detail);
			return 0;
		}
		size_t idlen = strlen(rpt->ns) + 1 + strlen(rpt->pod) + 1;
		p = calloc(1, sizeof(*p));
		if (!p || !(p->id = malloc(idlen))) {
			free(p);
			return 0;
		}
		snprintf(p->id, idlen, "%s/%s", rpt->ns, rpt->pod);
		if (rw_htab_insert(&h->pods, &p->link, rw_hash_str(p->id)) != 0) {
			free(p->id);
			free(p);
			return 0;
		}
		p->replay = *tmp;
	}
	if (p->owner != k) {
		pod_unlink_owner(p);
		pod_link_owner(p, k);
	}
	const struct rw_report *prev = p->has_report ? pod_report(p, &h->cb_view) : NULL;
	int new_pod = !prev || strcmp(prev->uid, rpt->uid) != 0;
	int changed = new_pod || p->stale || !rw_report_equal(prev, rpt);
	/* What the callbacks see: the pod owns the arrays from here on. */
	struct rw_report cur = *rpt;
	struct rw_report *old_full = NULL;
	struct packed_report *old_packed = NULL;
	if (pod_store(p, rpt, &old_full, &old_packed) != 0) {
		if (!p->has_report)
			pod_free(h, p);
		return 0;
	}
	h->st.reports++;
	if (p->stale && !new_pod)
		log_back(p, now);
	p->last_seen = now;
	p->stale = 0;
	p->pdigest = dig;
	p->plen = (uint32_t)hdr->len;
	session_set(h, p, hdr->session);
	pod_set_pipe(h, p, m->id, now);
	if (new_pod) {
		/* A new pod incarnation (or first report): its old reply is meaningless. */
		free(p->reply);
		p->reply = NULL;
		p->hb_told = 0;
	}
	/* A new report after a reply: the agent runs on the heartbeat that reply
	 * asked for (an agent applies it at once). */
	p->hb_ms = p->hb_told;
	if (changed) {
		h->st.changes++;
		notify(h, &cur, new_pod ? NULL : prev);
	}
	full_free(old_full);
	packed_free(old_packed);
	return reply(h, p, &cur, &slot->key, hdr, 0, out, outlen);
}

/*
 * Process one received message. Returns 1 with *out set to the bytes to
 * send (owned by the pod), or 0 when nothing is to be sent.
 */
static int
process(struct rw_hub *h, struct hub_conn *m, const unsigned char *msg, size_t n,
	const unsigned char **out, size_t *outlen)
{
	struct rw_wire_hdr hdr;
	const char *payload = NULL;
	const struct hub_keyslot *slot;
	struct rw_wire_replay tmp = {0};
	struct rw_report rpt;
	struct hub_pod *p = NULL;
	int fresh, answer = 0;

	if (check_envelope(h, m, msg, n) != 0 ||
	    !(slot = authenticate(h, m, msg, n, &hdr, &payload)))
		return 0;
	/* The fast path: the same bytes as the pod's last report of this session. */
	uint64_t dig = payload_digest(payload, hdr.len);
	struct hub_pod *same = session_find(h, hdr.session);
	if (same && same->owner == slot->owner && same->plen == hdr.len && same->pdigest == dig &&
	    same->has_report)
		return process_same(h, m, &slot->key, same, &hdr, out, outlen);
	if (decode_report(h, m, slot->owner, payload, hdr.len, &rpt) != 0)
		return 0;
	fresh = admit(h, m, slot->owner, &rpt, &hdr, &p, &tmp);
	if (fresh == RW_WIRE_RESEND) /* only an existing pod can have a resend */
		answer = resend(h, p, &slot->key, &hdr, m->id, out, outlen);
	else if (fresh >= 0)
		answer = apply(h, m, slot, p, &tmp, &hdr, dig, &rpt, out, outlen);
	rw_report_fini(&rpt);
	return answer;
}

/* ---- connections (the REP side of nng's SP protocol over TCP) ---- */

static void
hub_release(struct rw_hub *h)
{
	if (--h->handles_open > 0)
		return;
	free(h);
}

static void
conn_closed(uv_handle_t *hd)
{
	struct hub_conn *c = hd->data;
	struct rw_hub *h = c->hub;
	free(c);
	hub_release(h);
}

static const struct rw_hub_sp_ops conn_sp_ops;
static void waiting_remove(struct hub_conn *c);

static void
peer_release(struct rw_hub *h, struct hub_conn *c)
{
	struct hub_peer *pr = c->pr;
	c->pr = NULL;
	if (pr && --pr->n == 0) {
		rw_htab_remove(&h->peers, &pr->link);
		free(pr);
	}
}

/* Close a connection: its pods count as disconnected from now on. */
static void
conn_close(struct hub_conn *c)
{
	struct rw_hub *h = c->hub;
	if (c->closing)
		return;
	c->closing = 1;
	/* Its partial frame's budget is free for others at once. */
	waiting_remove(c);
	rw_hub_sp_conn_fini(&c->sp, &conn_sp_ops, c);
	peer_release(h, c);
	/* Only a connection that carried frames can have pods to disconnect. */
	if (!h->stopping && c->frames)
		pipe_closed(h, c->id, uv_now(h->loop));
	rw_list_remove(&c->link);
	h->nconns--;
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_resume(struct hub_conn *c);

struct wreq {
	uv_write_t w;
	struct hub_conn *c;
	size_t len;
	unsigned char data[];
};

static void
write_cb(uv_write_t *w, int status)
{
	struct wreq *wr = (struct wreq *)(void *)w;
	struct hub_conn *c = wr->c;
	free(wr);
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (c->paused && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < WQ_PAUSE / 2) {
		c->paused = 0;
		rw_debug(COMPONENT, "%s: reading again", c->peer);
		conn_resume(c);
	}
}

/* Write the n buffers, what uv_try_write does not take queued in one copy. */
static void
conn_write(struct hub_conn *c, uv_buf_t *b, unsigned n)
{
	size_t total = 0, done = 0;
	int rv = 0;
	for (unsigned i = 0; i < n; i++)
		total += b[i].len;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
		rv = uv_try_write((uv_stream_t *)&c->tcp, b, n);
		if (rv < 0 && rv != UV_EAGAIN) {
			conn_close(c);
			return;
		}
		done = rv > 0 ? (size_t)rv : 0;
	}
	if (done == total)
		return;
	struct wreq *wr = malloc(sizeof(*wr) + total - done);
	if (!wr) {
		conn_close(c);
		return;
	}
	wr->c = c;
	wr->len = total - done;
	size_t off = 0, w = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t bl = b[i].len, skip = 0;
		if (off + bl <= done) {
			off += bl;
			continue;
		}
		if (off < done)
			skip = done - off;
		memcpy(wr->data + w, b[i].base + skip, bl - skip);
		w += bl - skip;
		off += bl;
	}
	uv_buf_t one = uv_buf_init((char *)wr->data, (unsigned)wr->len);
	if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &one, 1, write_cb) != 0) {
		free(wr);
		conn_close(c);
		return;
	}
	if (!c->paused && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >= WQ_PAUSE) {
		/* The agent does not read its answers: stop reading its requests. */
		c->paused = 1;
		uv_read_stop((uv_stream_t *)&c->tcp);
	}
}

int
rw_hub_sp_header_ok(const unsigned char *d)
{
	return d[0] == 0 && d[1] == 'S' && d[2] == 'P' && d[3] == 0 &&
	       (unsigned)(d[4] << 8 | d[5]) == SP_REQ0 && d[6] == 0 && d[7] == 0;
}

/*
 * The backtrace of a frame of length l at f (f[0..avail) received): 1 with
 * its length *hl, 0 when more bytes are needed, -EPROTO when it does not end
 * within SP_MAX_HOPS words or the frame. Decided by the bytes alone, however
 * they arrive.
 */
static int
sp_backtrace(const unsigned char *f, size_t avail, uint64_t l, size_t *hl)
{
	size_t h = 0;
	while (h + 4 <= l && h < 4 * SP_MAX_HOPS) {
		if (avail < 8 + h + 4)
			return 0;
		int end = (f[8 + h] & 0x80) != 0;
		h += 4;
		if (end) {
			*hl = h;
			return 1;
		}
	}
	return -EPROTO;
}

int
rw_hub_sp_frame(const unsigned char *d, size_t n, size_t max, size_t *hl, size_t *len)
{
	uint64_t l;
	size_t h = 0;
	if (n < 8)
		return 0;
	l = rw_get_be64(d);
	if (l > max + 4 * SP_MAX_HOPS)
		return -EMSGSIZE;
	if (n - 8 < l)
		return 0;
	int rv = sp_backtrace(d, n, l, &h);
	if (rv != 1)
		return rv < 0 ? rv : -EPROTO;
	*hl = h;
	*len = (size_t)l;
	return 1;
}

void
rw_hub_sp_conn_init(struct rw_hub_sp_conn *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
}

/*
 * Partial buffers of SP_MMAP_MIN bytes or more are mappings of their own:
 * unmapped when the frame completes or the peer is closed, they go back to
 * the system at once. From malloc, peers that hold large partial frames and
 * are closed in turn leave the heap fragmented and the process's RSS well
 * above the budget (glibc raises its mmap threshold after such frees).
 */
#define SP_MMAP_MIN (128 * 1024)

static void
sp_buf_free(unsigned char *b, size_t cap)
{
	if (b && cap >= SP_MMAP_MIN)
		munmap(b, cap);
	else
		free(b);
}

/* Grow b (cap bytes, len of them used) to ncap > cap; NULL when out of memory (b intact). */
static unsigned char *
sp_buf_grow(unsigned char *b, size_t cap, size_t len, size_t ncap)
{
	if (ncap < SP_MMAP_MIN)
		return realloc(b, ncap);
	if (b && cap >= SP_MMAP_MIN) {
		void *n = mremap(b, cap, ncap, MREMAP_MAYMOVE);
		return n == MAP_FAILED ? NULL : n;
	}
	void *n = mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (n == MAP_FAILED)
		return NULL;
	if (b) {
		memcpy(n, b, len);
		free(b);
	}
	return n;
}

void
rw_hub_sp_conn_fini(struct rw_hub_sp_conn *s, const struct rw_hub_sp_ops *ops, void *ud)
{
	if (s->incap && ops && ops->release)
		ops->release(ud, s->incap);
	sp_buf_free(s->in, s->incap);
	s->in = NULL;
	s->inlen = s->incap = 0;
}

/* Bytes of the peeked envelope header: magic, version, type, flags, key id. */
#define SP_PEEK 16

/*
 * The frame starting at f (f[0..avail) received): 1 with *size when it was
 * complete and handed to ops->frame, 0 when more bytes are needed, < 0 to
 * stop. ops->peek runs once per frame, as soon as its first bytes are here.
 */
static int
sp_step(struct rw_hub_sp_conn *s, const unsigned char *f, size_t avail,
	const struct rw_hub_sp_ops *ops, void *ud, size_t *size)
{
	size_t hl = 0;
	int rv;
	if (avail < 8)
		return 0;
	uint64_t l = rw_get_be64(f);
	if (l > s->max + 4 * SP_MAX_HOPS)
		return -EMSGSIZE;
	if ((rv = sp_backtrace(f, avail, l, &hl)) <= 0)
		return rv;
	size_t mlen = (size_t)l - hl;
	if (!s->peeked) {
		size_t pk = mlen < SP_PEEK ? mlen : SP_PEEK;
		if (avail < 8 + hl + pk)
			return 0;
		s->peeked = 1;
		if (ops->peek && (rv = ops->peek(ud, f + 8 + hl, pk)) != 0) {
			if (rv != RW_HUB_SP_SKIP)
				return rv < 0 ? rv : -ECANCELED;
			/* Drop the frame: what is here now, the rest as it comes. */
			s->peeked = 0;
			*size = avail < 8 + (size_t)l ? avail : 8 + (size_t)l;
			s->skip = 8 + (size_t)l - *size;
			return 1;
		}
	}
	if (avail - 8 < l)
		return 0;
	s->peeked = 0;
	if (ops->frame && (rv = ops->frame(ud, f + 8, hl, f + 8 + hl, mlen)) != 0)
		return rv < 0 ? rv : -ECANCELED;
	*size = 8 + (size_t)l;
	return 1;
}

/* Bytes the partial header or frame in s->in amounts to when complete (as far as known). */
static size_t
sp_target(const struct rw_hub_sp_conn *s)
{
	if (!s->got_hdr || s->inlen < 8)
		return 8;
	return 8 + (size_t)rw_get_be64(s->in); /* bounded by sp_step before it gets here */
}

/* Append d[0..n) to the partial buffer, growing it within the frame's size. */
static int
sp_append(struct rw_hub_sp_conn *s, const unsigned char *d, size_t n, size_t target,
	  const struct rw_hub_sp_ops *ops, void *ud)
{
	size_t need = s->inlen + n;
	if (need > s->incap) {
		size_t cap = s->incap ? 2 * s->incap : 256;
		if (cap > target)
			cap = target;
		if (cap < need)
			cap = need;
		s->want = target;
		if (ops->reserve && ops->reserve(ud, cap - s->incap) != 0)
			return -ENOBUFS;
		unsigned char *b = sp_buf_grow(s->in, s->incap, s->inlen, cap);
		if (!b) {
			if (ops->release)
				ops->release(ud, cap - s->incap);
			return -ENOMEM;
		}
		s->in = b;
		s->incap = cap;
	}
	memcpy(s->in + s->inlen, d, n);
	s->inlen += n;
	return 0;
}

int
rw_hub_sp_feed(struct rw_hub_sp_conn *s, const unsigned char *d, size_t n,
	       const struct rw_hub_sp_ops *ops, void *ud)
{
	size_t pos = 0, size = 0;
	int rv;
	while (pos < n) {
		if (s->skip > 0) {
			size_t take = s->skip < n - pos ? s->skip : n - pos;
			s->skip -= take;
			pos += take;
			continue;
		}
		if (s->inlen > 0 || (!s->got_hdr && n - pos < 8)) {
			/* Complete what is buffered, as far as the bytes go. */
			size_t target = sp_target(s), take = target - s->inlen;
			if (take > n - pos)
				take = n - pos;
			if ((rv = sp_append(s, d + pos, take, target, ops, ud)) != 0)
				return rv;
			pos += take;
			if (!s->got_hdr) {
				if (s->inlen < 8)
					return 0;
				if (!rw_hub_sp_header_ok(s->in))
					return -EPROTO;
				s->got_hdr = 1;
				rw_hub_sp_conn_fini(s, ops, ud); /* the buffer only */
				continue;
			}
			rv = sp_step(s, s->in, s->inlen, ops, ud, &size);
			if (rv < 0)
				return rv;
			if (rv == 1)
				rw_hub_sp_conn_fini(s, ops, ud); /* the buffer only */
			continue;
		}
		if (!s->got_hdr) {
			if (!rw_hub_sp_header_ok(d + pos))
				return -EPROTO;
			s->got_hdr = 1;
			pos += 8;
			continue;
		}
		rv = sp_step(s, d + pos, n - pos, ops, ud, &size);
		if (rv < 0)
			return rv;
		if (rv == 1) {
			pos += size;
			continue;
		}
		/* Keep the start of a frame. */
		size_t rest = n - pos, target = 8;
		if (rest >= 8)
			target = 8 + (size_t)rw_get_be64(d + pos);
		return sp_append(s, d + pos, rest, target, ops, ud);
	}
	return 0;
}

/* ---- connections on the loop: deadlines, budget, peers ---- */

static void deadline_cb(uv_timer_t *t);

/* c waits for its header or the rest of a frame from now on (appended: the list stays oldest
 * first). */
static void
waiting_add(struct rw_hub *h, struct hub_conn *c, uint64_t now)
{
	rw_list_remove(&c->wlink);
	c->since = now;
	rw_list_insert_tail(&h->waiting, &c->wlink);
	if (!uv_is_active((uv_handle_t *)&h->deadline))
		uv_timer_start(&h->deadline, deadline_cb, h->deadline_tick, h->deadline_tick);
}

static void
waiting_remove(struct hub_conn *c)
{
	rw_list_remove(&c->wlink); /* a no-op when not waiting */
}

/* Close c for reason why, with a log line at most once per reason per log interval. */
static void
conn_close_why(struct hub_conn *c, enum rw_hub_close why, const char *detail)
{
	struct rw_hub *h = c->hub;
	uint64_t now = uv_now(h->loop);
	if (c->closing)
		return;
	h->st.closed[why]++;
	if (h->close_log_last[why] && now - h->close_log_last[why] < h->o.log_interval_ms) {
		h->close_log_suppressed[why]++;
	} else {
		rw_warn(COMPONENT,
			"closing connection from %s (%s): %s [%" PRIu64 " similar not logged]",
			c->peer, close_names[why], detail, h->close_log_suppressed[why]);
		h->close_log_last[why] = now ? now : 1;
		h->close_log_suppressed[why] = 0;
	}
	conn_close(c);
}

static void
deadline_cb(uv_timer_t *t)
{
	struct rw_hub *h = t->data;
	uint64_t now = uv_now(h->loop);
	char detail[128];
	struct rw_list *n, *tmp;
	RW_LIST_FOREACH_SAFE (n, tmp, &h->waiting) {
		struct hub_conn *c = rw_list_entry(n, struct hub_conn, wlink);
		int hs = !c->sp.got_hdr;
		uint64_t lim = hs ? h->o.handshake_timeout_ms : h->o.frame_timeout_ms;
		if (now - c->since < lim)
			continue;
		snprintf(detail, sizeof(detail), "%s not complete after %" PRIu64 " ms (%zu bytes)",
			 hs ? "SP header" : "frame", now - c->since, c->sp.inlen);
		conn_close_why(c, hs ? RW_HUB_CLOSE_HANDSHAKE_TIMEOUT : RW_HUB_CLOSE_FRAME_TIMEOUT,
			       detail);
	}
	if (rw_list_empty(&h->waiting))
		uv_timer_stop(t);
}

/* A frame up to this size is "small": an agent's report (0.3-2 KB, a head's
 * with its Serve status a few KB) that straddles two reads. */
#define SP_SMALL (64 * 1024)

/*
 * Room for bytes more of partial frames. Over the budget, a small frame
 * makes room by closing the connections that hold the oldest partial
 * frames: an agent's report completes within a round trip, so a frame
 * incomplete for longest is the likeliest to come from a peer holding
 * memory on purpose, and the newcomer (an agent whose report straddles two
 * reads) goes on. A frame declaring more than SP_SMALL is refused instead
 * (its connection closed): were it to evict others, every new connection
 * of an attacker would make the hub read, map and copy up to a frame's
 * worth before being evicted in turn, while refused it costs one read; the
 * large frames admitted meanwhile complete or meet their frame deadline.
 * When c itself holds the oldest, c is refused.
 */
static int
conn_reserve(void *ud, size_t bytes)
{
	struct hub_conn *c = ud;
	struct rw_hub *h = c->hub;
	while (h->partial + bytes > h->o.partial_budget) {
		if (c->sp.want > SP_SMALL)
			return -ENOBUFS;
		struct hub_conn *o = NULL;
		struct rw_list *n;
		RW_LIST_FOREACH (n, &h->waiting) {
			o = rw_list_entry(n, struct hub_conn, wlink);
			if (o->sp.incap != 0)
				break;
			o = NULL;
		}
		if (!o || o == c)
			return -ENOBUFS;
		char detail[128];
		snprintf(detail, sizeof(detail),
			 "oldest partial frame (%zu bytes for %" PRIu64
			 " ms) closed: partial frames at the %zu-byte budget",
			 o->sp.inlen, uv_now(h->loop) - o->since, h->o.partial_budget);
		conn_close_why(o, RW_HUB_CLOSE_BUDGET, detail);
	}
	h->partial += bytes;
	return 0;
}

static void
conn_release(void *ud, size_t bytes)
{
	struct hub_conn *c = ud;
	c->hub->partial -= bytes < c->hub->partial ? bytes : c->hub->partial;
}

/* A frame's first bytes: refuse what no key can open before its body is buffered. */
static int
conn_peek(void *ud, const unsigned char *m, size_t n)
{
	struct hub_conn *c = ud;
	struct rw_hub *h = c->hub;
	char detail[160];
	if (c->closing || h->stopping)
		return -ECANCELED;
	if (n < SP_PEEK)
		return 0; /* too short for an envelope: process() says so */
	if (memcmp(m, "RWP\x01", 4) != 0) {
		snprintf(detail, sizeof(detail), "not a raywarden envelope");
		refuse(h, RW_HUB_REFUSED_MALFORMED, c, detail);
		return -ECONNABORTED;
	}
	if (rw_get_be16(m + 4) != RW_WIRE_VERSION)
		return 0; /* process() explains */
	uint32_t kid = rw_get_be32(m + 12);
	uint64_t hv = rw_hash_u64(kid), now = uv_now(h->loop);
	for (struct rw_hlink *l = rw_htab_chain(&h->keys_by_id, hv); l; l = l->next) {
		const struct hub_keyslot *k = CONTAINER(l, struct hub_keyslot, by_id);
		if (l->hash == hv && k->key.id == kid && !(k->until && now >= k->until))
			return 0;
	}
	const struct retired_key *r = retired_find(h, kid);
	int keep = r && now < r->until;
	snprintf(
	    detail, sizeof(detail), "no key with id %08x (%s)", kid,
	    keep ? "a key forgotten lately: its cluster was deleted or its key replaced; frame "
		   "dropped"
		 : "the agent holds a key this controller did not issue, or its cluster is gone");
	refuse(h, RW_HUB_REFUSED_UNKNOWN_KEY, c, detail);
	if (keep)
		c->bad = 0; /* no other refusal of c comes first: it would have ended the feed */
	return c->bad ? -ECONNABORTED : RW_HUB_SP_SKIP;
}

static int
conn_frame(void *ud, const unsigned char *bt, size_t hl, const unsigned char *msg, size_t n)
{
	struct hub_conn *c = ud;
	struct rw_hub *h = c->hub;
	const unsigned char *out = NULL;
	size_t outlen = 0;
	if (c->closing || h->stopping)
		return -ECANCELED;
	c->frames++;
	if (process(h, c, msg, n, &out, &outlen) && !c->closing && !c->bad) {
		unsigned char lb[8];
		rw_put_be64(lb, hl + outlen);
		uv_buf_t b[3] = {uv_buf_init((char *)lb, 8),
				 uv_buf_init((char *)(uintptr_t)bt, (unsigned)hl),
				 uv_buf_init((char *)(uintptr_t)out, (unsigned)outlen)};
		conn_write(c, b, 3);
		h->st.replies++;
	}
	if (c->bad)
		return -ECONNABORTED;
	return c->closing ? -ECANCELED : 0;
}

static const struct rw_hub_sp_ops conn_sp_ops = {conn_reserve, conn_release, conn_peek, conn_frame};

/* Reads go to the hub's one buffer; only a partial header or frame is kept per connection. */
static void
conn_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
	struct hub_conn *c = hd->data;
	(void)suggested;
	*buf = uv_buf_init((char *)c->hub->rbuf, sizeof(c->hub->rbuf));
}

static void
conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct hub_conn *c = st->data;
	struct rw_hub *h = c->hub;
	(void)buf;
	if (c->closing)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	uint64_t frames = c->frames;
	int rv = rw_hub_sp_feed(&c->sp, h->rbuf, (size_t)nread, &conn_sp_ops, c);
	if (c->closing)
		return;
	if (rv != 0) {
		enum rw_hub_close why = RW_HUB_CLOSE_PROTOCOL;
		const char *d = rv == -EMSGSIZE	 ? "message too large"
				: rv == -ENOBUFS ? "partial frames at the budget"
				: rv == -EPROTO	 ? "not an nng REQ peer or a malformed frame"
						 : strerror(-rv);
		if (rv == -ECONNABORTED) {
			why = RW_HUB_CLOSE_REFUSED;
			d = "after a refused message";
		} else if (rv == -ENOBUFS) {
			why = RW_HUB_CLOSE_BUDGET;
		}
		conn_close_why(c, why, d);
		return;
	}
	if (c->sp.inlen > 0) {
		/* A frame started in this read, or one waiting already. */
		if (rw_list_empty(&c->wlink) || c->frames != frames)
			waiting_add(h, c, uv_now(h->loop));
	} else if (c->sp.got_hdr) {
		waiting_remove(c);
	}
}

static void
conn_resume(struct hub_conn *c)
{
	if (!c->closing && uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) != 0)
		conn_close(c);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct rw_hub *h = server->data;
	struct hub_conn *c;
	if (status < 0 || h->stopping)
		return;
	c = calloc(1, sizeof(*c));
	if (!c || uv_tcp_init(h->loop, &c->tcp) != 0) {
		free(c);
		return;
	}
	c->hub = h;
	c->tcp.data = c;
	rw_list_init(&c->wlink);
	rw_hub_sp_conn_init(&c->sp, h->o.recv_max);
	h->handles_open++;
	rw_list_insert_head(&h->conns, &c->link);
	h->nconns++;
	if (++h->next_conn_id == 0)
		h->next_conn_id = 1;
	c->id = h->next_conn_id;
	snprintf(c->peer, sizeof(c->peer), "unknown peer");
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || h->nconns > CONNS_MAX) {
		conn_close(c);
		return;
	}
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "";
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)(void *)&ss;
			if (inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)))
				snprintf(c->peer, sizeof(c->peer), "%s:%u", ip,
					 (unsigned)ntohs(a->sin_port));
		} else if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(void *)&ss;
			if (inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip)))
				snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip,
					 (unsigned)ntohs(a->sin6_port));
		}
	}
	if (ip[0] && h->o.max_conns_per_peer > 0) {
		uint64_t hv = rw_hash_str(ip);
		struct hub_peer *pr = NULL;
		for (struct rw_hlink *l = rw_htab_chain(&h->peers, hv); l && !pr; l = l->next) {
			struct hub_peer *x = CONTAINER(l, struct hub_peer, link);
			if (l->hash == hv && strcmp(x->ip, ip) == 0)
				pr = x;
		}
		if (pr && pr->n >= (unsigned)h->o.max_conns_per_peer) {
			char detail[96];
			snprintf(detail, sizeof(detail), "%u connections from %s already open",
				 pr->n, ip);
			conn_close_why(c, RW_HUB_CLOSE_PEER_CAP, detail);
			return;
		}
		if (!pr) {
			pr = calloc(1, sizeof(*pr));
			if (!pr || rw_htab_insert(&h->peers, &pr->link, hv) != 0) {
				free(pr);
				conn_close(c);
				return;
			}
			snprintf(pr->ip, sizeof(pr->ip), "%s", ip);
		}
		pr->n++;
		c->pr = pr;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	waiting_add(h, c, uv_now(h->loop));
	unsigned char hdr[8] = {0, 'S', 'P', 0, 0, SP_REQ0 + 1, 0, 0};
	uv_buf_t b = uv_buf_init((char *)hdr, 8);
	conn_write(c, &b, 1);
	conn_resume(c);
}

static void
sweep_cb(uv_timer_t *t)
{
	struct rw_hub *h = t->data;
	uint64_t now, evict_after = h->o.stale_after_ms + h->o.replay_window_ms;
	int stalled;
	size_t nstale = 0, ndisc = 0;

	uv_update_time(h->loop);
	now = uv_now(h->loop);
	/* The loop itself was blocked for a while: reports may be waiting in
	 * nng, so no pod is declared stale in this round. */
	stalled = h->last_sweep && now - h->last_sweep > 2 * h->o.sweep_ms + 1000;
	h->last_sweep = now;
	closed_expire(h, now, 0);
	keys_expire(h, now);
	retired_expire(h, now, 0);

	struct rw_hlink *l, *next;
	size_t i;
	RW_HTAB_FOREACH_SAFE (l, next, i, &h->pods) {
		struct hub_pod *p = CONTAINER(l, struct hub_pod, link);
		uint64_t idle = now > p->last_seen ? now - p->last_seen : 0;
		if (p->stale && idle >= evict_after) {
			/* The replay window has passed: any replay is refused by its
			 * timestamp now, so the pod's state can go. */
			pod_free(h, p);
			continue;
		}
		int why = p->stale || stalled ? 0 : pod_stale_why(h, p, now);
		if (why) {
			p->stale = 1;
			nstale++;
			if (why == 2) {
				h->st.disconnects++;
				ndisc++;
			}
			/* A line per pod for the first few of a sweep, then a count. */
			if (nstale <= STALE_LOG_MAX && why == 2)
				rw_info(COMPONENT,
					"agent of pod %s disconnected %" PRIu64
					" ms ago and has not reconnected",
					p->id, now - p->closed_at);
			else if (nstale <= STALE_LOG_MAX)
				rw_info(COMPONENT, "agent of pod %s silent for %" PRIu64 " ms",
					p->id, idle);
			if (h->cb.on_stale) {
				h->in_cb++;
				h->cb.on_stale(h, pod_report(p, &h->cb_view), h->ud);
				h->in_cb--;
			}
		}
	}
	if (nstale > STALE_LOG_MAX)
		rw_warn(COMPONENT,
			"%zu agents went stale in this sweep (%zu of them disconnected); %zu not "
			"logged one by one",
			nstale, ndisc, nstale - STALE_LOG_MAX);
}

/* ---- lifecycle ---- */

static void
handle_closed(uv_handle_t *hd)
{
	hub_release(hd->data);
}

/* Stop listening and close every connection (their handles close later). */
static void
hub_stop_net(struct rw_hub *h)
{
	h->stopping = 1;
	while (!rw_list_empty(&h->conns))
		conn_close(rw_list_entry(rw_list_first(&h->conns), struct hub_conn, link));
	if (h->listener_init) {
		uv_close((uv_handle_t *)&h->listener, handle_closed);
		h->listener_init = 0;
	}
}

/* tcp://host:port with host empty, "*", "localhost", an IPv4 or a [IPv6] address. */
static int
parse_listen(const char *url, struct sockaddr_storage *ss)
{
	char host[128];
	const char *hp, *colon;
	char *end;
	long port;
	if (strncmp(url, "tcp://", 6) != 0)
		return -EINVAL;
	hp = url + 6;
	colon = strrchr(hp, ':');
	if (!colon || (size_t)(colon - hp) >= sizeof(host))
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 0 || port > 65535)
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		size_t n = strlen(host);
		if (n < 3 || host[n - 1] != ']')
			return -EINVAL;
		host[n - 1] = '\0';
		return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)(void *)ss) ? -EINVAL
											   : 0;
	}
	if (!host[0] || !strcmp(host, "*"))
		snprintf(host, sizeof(host), "0.0.0.0");
	else if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)(void *)ss) ? -EINVAL : 0;
}

static void
hub_free_state(struct rw_hub *h)
{
	struct rw_hlink *l, *next;
	size_t i;
	RW_HTAB_FOREACH_SAFE (l, next, i, &h->pods) {
		struct hub_pod *p = CONTAINER(l, struct hub_pod, link);
		full_free(p->full);
		packed_free(p->packed);
		free(p->id);
		free(p->reply);
		free(p);
	}
	RW_HTAB_FOREACH_SAFE (l, next, i, &h->keys_by_scope) {
		struct hub_key *k = CONTAINER(l, struct hub_key, by_scope);
		rw_wire_key_wipe(&k->cur.key);
		rw_wire_key_wipe(&k->prev.key);
		free(k);
	}
	closed_expire(h, 0, 1);
	retired_expire(h, 0, 1);
	rw_htab_fini(&h->retired);
	RW_HTAB_FOREACH_SAFE (l, next, i, &h->by_pipe) {
		free(CONTAINER(l, struct hub_pipe, link));
	}
	RW_HTAB_FOREACH_SAFE (l, next, i, &h->peers) {
		free(CONTAINER(l, struct hub_peer, link));
	}
	rw_htab_fini(&h->peers);
	rw_htab_fini(&h->pods);
	rw_htab_fini(&h->by_pipe);
	rw_htab_fini(&h->by_session);
	rw_htab_fini(&h->closed);
	rw_htab_fini(&h->keys_by_id);
	rw_htab_fini(&h->keys_by_scope);
	rw_buf_fini(&h->enc);
	rw_buf_fini(&h->seal);
}

int
rw_hub_new(uv_loop_t *loop, const struct rw_hub_opts *opts, const struct rw_hub_callbacks *cb,
	   void *ud, struct rw_hub **out, char *err, size_t errlen)
{
	struct rw_hub *h = NULL;
	int rv = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!loop || !opts || !opts->listen_url || !out ||
	    strlen(opts->listen_url) >= sizeof(h->url)) {
		if (err && errlen)
			snprintf(err, errlen, "agent hub: no or over-long listen URL");
		return -EINVAL;
	}
	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->loop = loop;
	rw_list_init(&h->conns);
	rw_list_init(&h->waiting);
	h->started = uv_now(loop);
	h->o = *opts;
	snprintf(h->url, sizeof(h->url), "%s", opts->listen_url);
	h->o.listen_url = h->url;
	if (h->o.recv_max == 0 || h->o.recv_max > RW_WIRE_MAX_MSG)
		h->o.recv_max = RW_WIRE_MAX_MSG;
	if (h->o.replay_window_ms == 0)
		h->o.replay_window_ms = 300000;
	if (h->o.stale_after_ms == 0)
		h->o.stale_after_ms = 15000;
	if (h->o.head_heartbeat_ms == 0)
		h->o.head_heartbeat_ms = 1000;
	if (h->o.head_stale_after_ms == 0)
		h->o.head_stale_after_ms = 3500;
	if (h->o.disconnect_grace_ms == 0)
		h->o.disconnect_grace_ms = 1000;
	if (h->o.sweep_ms == 0) {
		uint64_t m = h->o.stale_after_ms;
		if (h->o.head_stale_after_ms < m)
			m = h->o.head_stale_after_ms;
		if (h->o.disconnect_grace_ms < m)
			m = h->o.disconnect_grace_ms;
		h->o.sweep_ms = m / 4;
		if (h->o.sweep_ms > 1000)
			h->o.sweep_ms = 1000;
		if (h->o.sweep_ms == 0)
			h->o.sweep_ms = 1;
	}
	if (h->o.max_pods == 0)
		h->o.max_pods = 100000;
	if (h->o.log_interval_ms == 0)
		h->o.log_interval_ms = 10000;
	if (h->o.handshake_timeout_ms == 0)
		h->o.handshake_timeout_ms = 3000;
	if (h->o.frame_timeout_ms == 0)
		h->o.frame_timeout_ms = 5000;
	if (h->o.partial_budget == 0)
		h->o.partial_budget = 8u << 20;
	if (h->o.max_conns_per_peer == 0)
		h->o.max_conns_per_peer = 256;
	if (h->o.max_pods_per_key == 0)
		h->o.max_pods_per_key = 10000;
	if (h->o.key_overlap_ms == 0)
		h->o.key_overlap_ms = 600000;
	if (h->o.startup_grace_ms == 0)
		h->o.startup_grace_ms = 60000;
	{
		/* A deadline is enforced within a quarter of itself (10..250 ms late). */
		uint64_t m = h->o.handshake_timeout_ms < h->o.frame_timeout_ms
				 ? h->o.handshake_timeout_ms
				 : h->o.frame_timeout_ms;
		h->deadline_tick = m / 4 < 10 ? 10 : m / 4 > 250 ? 250 : m / 4;
	}
	if (cb)
		h->cb = *cb;
	h->ud = ud;
	rw_buf_init(&h->enc, RW_WIRE_MAX_MSG - RW_WIRE_HDR_LEN - RW_WIRE_MAC_LEN);
	rw_buf_init(&h->seal, RW_WIRE_MAX_MSG);
	/* The hub itself holds one reference; every handle one more. */
	h->handles_open = 1;
	uv_timer_init(loop, &h->sweep);
	h->sweep.data = h;
	h->handles_open++;
	uv_timer_init(loop, &h->deadline);
	h->deadline.data = h;
	h->handles_open++;

	struct sockaddr_storage ss;
	if ((rv = parse_listen(h->url, &ss)) != 0) {
		if (err && errlen)
			snprintf(err, errlen,
				 "agent hub: %s: not tcp://HOST:PORT (HOST an IP address, *, "
				 "localhost or empty)",
				 h->url);
		goto fail;
	}
	if ((rv = uv_tcp_init(loop, &h->listener)) != 0)
		goto fail_uv;
	h->listener.data = h;
	h->listener_init = 1;
	h->handles_open++;
	if ((rv = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0)) != 0 ||
	    (!h->o.serve_later && (rv = rw_hub_serve(h)) != 0))
		goto fail_uv;
	uv_timer_start(&h->sweep, sweep_cb, h->o.sweep_ms, h->o.sweep_ms);
	rw_info(COMPONENT,
		"agent hub %s %s (messages up to %zu bytes; stale after %" PRIu64
		" ms, heads on a %u ms heartbeat after %" PRIu64 " ms, disconnected after %" PRIu64
		" ms)",
		h->serving ? "listening on" : "bound, not yet accepting, on", h->url, h->o.recv_max,
		h->o.stale_after_ms, (unsigned)h->o.head_heartbeat_ms, h->o.head_stale_after_ms,
		h->o.disconnect_grace_ms);
	*out = h;
	return 0;
fail_uv:
	if (err && errlen)
		snprintf(err, errlen, "agent hub: %s: %s", h->url, uv_strerror(rv));
fail:
	hub_stop_net(h);
	hub_free_state(h);
	uv_close((uv_handle_t *)&h->sweep, handle_closed);
	uv_close((uv_handle_t *)&h->deadline, handle_closed);
	hub_release(h);
	return rv;
}

int
rw_hub_serve(struct rw_hub *h)
{
	int rv;
	if (!h || !h->listener_init || h->stopping)
		return -EINVAL;
	if (h->serving)
		return 0;
	/* uv_tcp_bind may defer an error (EADDRINUSE) to listen. */
	rv = uv_listen((uv_stream_t *)&h->listener, 1024, on_connection);
	if (rv)
		return rv;
	h->serving = true;
	h->started = uv_now(h->loop);
	return 0;
}

bool
rw_hub_serving(const struct rw_hub *h)
{
	return h && h->serving;
}

void
rw_hub_free(struct rw_hub *h)
{
	if (!h)
		return;
	hub_stop_net(h);
	hub_free_state(h);
	uv_timer_stop(&h->sweep);
	uv_close((uv_handle_t *)&h->sweep, handle_closed);
	uv_timer_stop(&h->deadline);
	uv_close((uv_handle_t *)&h->deadline, handle_closed);
	hub_release(h);
}

/* ---- queries ---- */

void
rw_hub_stats(const struct rw_hub *h, struct rw_hub_stats *out)
{
	if (!h || !out)
		return;
	*out = h->st;
	out->pods = h->pods.n;
	out->keys = h->nkeys;
	out->conns = h->nconns;
	out->partial_bytes = h->partial;
	out->agents_connected = 0;
	out->pod_bytes = 0;
	uint64_t now = uv_now(h->loop);
	for (size_t i = 0; i < h->pods.nb; i++)
		for (struct rw_hlink *l = h->pods.b[i]; l; l = l->next) {
			const struct hub_pod *p = CONTAINER(l, struct hub_pod, link);
			if (!p->stale && !pod_stale_why(h, p, now))
				out->agents_connected++;
			out->pod_bytes += pod_bytes(p);
		}
}

static int
pod_is_stale(const struct rw_hub *h, const struct hub_pod *p, uint64_t now)
{
	return p->stale || pod_stale_why(h, p, now) != 0;
}

int
rw_hub_cluster_stats(struct rw_hub *h, const char *ns, const char *cluster,
		     struct rw_hub_cluster_stats *out)
{
	if (!h || !ns || !cluster || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	struct hub_key *k = key_by_scope(h, ns, cluster);
	if (!k)
		return -ENOENT;
	uint64_t now = uv_now(h->loop);
	const struct hub_pod *head = NULL;
	const struct rw_list *n;
	RW_LIST_FOREACH (n, &k->pods) {
		const struct hub_pod *p = rw_list_entry(n, const struct hub_pod, clink);
		int stale = pod_is_stale(h, p, now);
		out->pods++;
		if (stale)
			out->stale++;
		else if (p->ready)
			out->ready++;
		else
			out->not_ready++;
		if (p->is_head && p->full && (!head || p->last_seen > head->last_seen))
			head = p;
	}
	if (head) {
		out->head = head->full;
		out->head_stale = pod_is_stale(h, head, now);
		out->head_last_seen_ms = head->last_seen;
	}
	return 0;
}

int
rw_hub_cluster_foreach(struct rw_hub *h, const char *ns, const char *cluster,
		       void (*fn)(const struct rw_report *r, int stale, uint64_t last_seen_ms,
				  void *arg),
		       void *arg)
{
	if (!h || !ns || !cluster || !fn)
		return -EINVAL;
	struct hub_key *k = key_by_scope(h, ns, cluster);
	if (!k)
		return -ENOENT;
	uint64_t now = uv_now(h->loop);
	int n = 0;
	h->in_cb++;
	const struct rw_list *l;
	RW_LIST_FOREACH (l, &k->pods) {
		const struct hub_pod *p = rw_list_entry(l, const struct hub_pod, clink);
		fn(pod_report(p, &h->fe_view), pod_is_stale(h, p, now), p->last_seen, arg);
		n++;
	}
	h->in_cb--;
	return n;
}

const struct rw_report *
rw_hub_pod(struct rw_hub *h, const char *ns, const char *pod, int *stale)
{
	if (!h || !ns || !pod)
		return NULL;
	struct hub_pod *p = pod_find(h, ns, pod);
	if (!p)
		return NULL;
	if (stale)
		*stale = pod_is_stale(h, p, uv_now(h->loop));
	/* A ring of views: a few pods' reports can be held at once. */
	struct rw_report *v = &h->pod_view[h->pod_view_next++ % 4];
	return pod_report(p, v);
}

int
rw_hub_listen_url(const struct rw_hub *h, char *out, size_t outlen)
{
	int port = 0;
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	if (!h || !out || outlen == 0)
		return -EINVAL;
	if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &sl) != 0)
		return -ENOTSUP;
	if (ss.ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)(void *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)(void *)&ss)->sin6_port);
	/* Replace the port of tcp://host:port with the bound one. */
	const char *colon = strrchr(h->url, ':');
	if (!colon || strncmp(h->url, "tcp://", 6) != 0)
		return -ENOTSUP;
	int n = snprintf(out, outlen, "%.*s:%d", (int)(colon - h->url), h->url, port);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

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
 * connection, as nng does.
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
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "hub.h"
#include "rw/buf.h"
#include "rw/bytes.h"
#include "rw/log.h"

#define COMPONENT "hub"
#define POD_ID_MAX (64 + 1 + 254)
#define SCOPE_MAX (64 + 1 + 64)
#define CONTAINER(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* ---- a small chained hash table with intrusive links ---- */

struct hlink {
	struct hlink *next;
	uint64_t h;
};

struct htab {
	struct hlink **b;
	size_t nb; /* power of two, or 0 before the first insert */
	size_t n;
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t
hash_u32(uint32_t v)
{
	uint64_t h = v * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static int
ht_insert(struct htab *t, struct hlink *l, uint64_t h)
{
	if (t->n >= t->nb) {
		size_t nb = t->nb ? t->nb * 2 : 64;
		struct hlink **b = calloc(nb, sizeof(*b));
		if (!b)
			return -ENOMEM;
		for (size_t i = 0; i < t->nb; i++) {
			struct hlink *x = t->b[i], *next;
			for (; x; x = next) {
				next = x->next;
				x->next = b[x->h & (nb - 1)];
				b[x->h & (nb - 1)] = x;
			}
		}
		free(t->b);
		t->b = b;
		t->nb = nb;
	}
	l->h = h;
	l->next = t->b[h & (t->nb - 1)];
	t->b[h & (t->nb - 1)] = l;
	t->n++;
	return 0;
}

static void
ht_remove(struct htab *t, struct hlink *l)
{
	if (!t->nb)
		return;
	for (struct hlink **pp = &t->b[l->h & (t->nb - 1)]; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			t->n--;
			return;
		}
	}
}

static struct hlink *
ht_first(const struct htab *t, uint64_t h)
{
	return t->nb ? t->b[h & (t->nb - 1)] : NULL;
}

static void
ht_fini(struct htab *t)
{
	free(t->b);
	memset(t, 0, sizeof(*t));
}

/* ---- state ---- */

struct hub_key;

struct hub_pod {
	struct hlink link;  /* in hub->pods, by "ns/pod" */
	struct hlink slink; /* in hub->by_session while in_sessions */
	int in_sessions;
	uint64_t session; /* the agent session of its last FRESH report */
	uint64_t pdigest; /* digest and length of that report's payload */
	uint32_t plen;
	struct hub_pipe *pp;	       /* the open pipe its reports come on, or NULL */
	struct hub_pod *pprev, *pnext; /* in pp->pods */
	struct hub_pod *cprev, *cnext; /* in owner->pods */
	struct hub_key *owner;
	char id[POD_ID_MAX + 1];
	struct rw_wire_replay replay;
	struct rw_report report;
	uint64_t last_seen; /* uv_now */
	uint64_t closed_at; /* uv_now when its pipe closed; 0: connected */
	uint32_t pipe;	    /* nng pipe id of the last report (maybe closed); 0: none */
	uint32_t hb_told;   /* heartbeat_ms carried by the last reply (0: none) */
	uint32_t hb_ms;	    /* heartbeat the agent runs on, as far as we know (0: its default) */
	int is_head;
	int stale;
	unsigned char *reply; /* last sealed reply, or NULL */
	size_t reply_len;
	uint64_t reply_session, reply_seq;
};

struct hub_key {
	struct hlink by_id;    /* in hub->keys_by_id */
	struct hlink by_scope; /* in hub->keys_by_scope, by "ns/cluster" */
	char ns[64];
	char cluster[64];
	char scope[SCOPE_MAX + 1];
	struct rw_wire_key key;
	struct hub_pod *pods;
	size_t npods;
};

/* An open pipe and the pods whose last report came on it (one for an
 * agent; a load generator multiplexes many pods over a few). */
struct hub_pipe {
	struct hlink link;
	uint32_t id;
	struct hub_pod *pods;
};

/* A pipe that closed (kept a while: a report from it may still be queued). */
struct closed_pipe {
	struct hlink link;
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

/* One agent connection (an nng "pipe" to the agent's REQ socket). */
struct hub_conn {
	uv_tcp_t tcp;
	struct rw_hub *hub;
	struct hub_conn *prev, *next; /* in hub->conns */
	uint32_t id;		      /* pipe id, never 0 */
	char peer[64];
	unsigned char *in; /* received bytes not parsed yet */
	size_t inlen, incap;
	int got_hdr, closing, paused;
};

struct rw_hub {
	uv_loop_t *loop;
	struct rw_hub_opts o;
	char url[256];
	struct rw_hub_callbacks cb;
	void *ud;

	uv_tcp_t listener;
	int listener_init;
	struct hub_conn *conns;
	size_t nconns;
	uint32_t next_conn_id;
	int stopping;

	uv_timer_t sweep;
	unsigned char rbuf[READ_CHUNK]; /* every connection reads into this */
	int handles_open;
	int in_cb; /* inside a user callback */

	struct htab pods;
	struct htab by_pipe;	/* open pipes with pods (struct hub_pipe) by id */
	struct htab by_session; /* pods by the session of their last FRESH report */
	struct htab closed;	/* recently closed pipe ids (struct closed_pipe) */
	uint64_t last_sweep;
	struct htab keys_by_id;
	struct htab keys_by_scope;
	size_t nkeys;

	struct rw_buf enc;  /* reply payload */
	struct rw_buf seal; /* sealed reply */

	struct rw_hub_stats st;
	uint64_t log_last[RW_HUB_REFUSED_NREASONS];
	uint64_t log_suppressed[RW_HUB_REFUSED_NREASONS];
};

static const char *const refusal_names[RW_HUB_REFUSED_NREASONS] = {
    [RW_HUB_REFUSED_SIZE] = "size",	  [RW_HUB_REFUSED_MALFORMED] = "malformed",
    [RW_HUB_REFUSED_VERSION] = "version", [RW_HUB_REFUSED_UNKNOWN_KEY] = "unknown_key",
    [RW_HUB_REFUSED_MAC] = "mac",	  [RW_HUB_REFUSED_CLOCK] = "clock",
    [RW_HUB_REFUSED_REPLAY] = "replay",	  [RW_HUB_REFUSED_PAYLOAD] = "payload",
    [RW_HUB_REFUSED_SCOPE] = "scope",	  [RW_HUB_REFUSED_FULL] = "full",
};

const char *
rw_hub_refusal_name(enum rw_hub_refusal r)
{
	if ((int)r < 0 || r >= RW_HUB_REFUSED_NREASONS)
		return "unknown";
	return refusal_names[r];
}

static uint64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- keys and pods ---- */

static struct hub_key *
key_by_scope(const struct rw_hub *h, const char *ns, const char *cluster)
{
	char scope[SCOPE_MAX + 1];
	int n = snprintf(scope, sizeof(scope), "%s/%s", ns, cluster);
	if (n < 0 || (size_t)n >= sizeof(scope))
		return NULL;
	uint64_t hv = hash_str(scope);
	for (struct hlink *l = ht_first(&h->keys_by_scope, hv); l; l = l->next) {
		struct hub_key *k = CONTAINER(l, struct hub_key, by_scope);
		if (l->h == hv && strcmp(k->scope, scope) == 0)
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
	uint64_t hv = hash_str(id);
	for (struct hlink *l = ht_first(&h->pods, hv); l; l = l->next) {
		struct hub_pod *p = CONTAINER(l, struct hub_pod, link);
		if (l->h == hv && strcmp(p->id, id) == 0)
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
	if (p->cprev)
		p->cprev->cnext = p->cnext;
	else
		k->pods = p->cnext;
	if (p->cnext)
		p->cnext->cprev = p->cprev;
	p->cprev = p->cnext = NULL;
	p->owner = NULL;
	k->npods--;
}

static void
pod_link_owner(struct hub_pod *p, struct hub_key *k)
{
	p->owner = k;
	p->cprev = NULL;
	p->cnext = k->pods;
	if (k->pods)
		k->pods->cprev = p;
	k->pods = p;
	k->npods++;
}

static void
pod_unlink_pipe(struct rw_hub *h, struct hub_pod *p)
{
	struct hub_pipe *pp = p->pp;
	if (!pp)
		return;
	if (p->pprev)
		p->pprev->pnext = p->pnext;
	else
		pp->pods = p->pnext;
	if (p->pnext)
		p->pnext->pprev = p->pprev;
	p->pprev = p->pnext = NULL;
	p->pp = NULL;
	if (!pp->pods) {
		ht_remove(&h->by_pipe, &pp->link);
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
		ht_remove(&h->by_session, &p->slink);
	ht_remove(&h->pods, &p->link);
	pod_unlink_owner(p);
	rw_report_fini(&p->report);
	free(p->reply);
	free(p);
}

/* ---- connections (pipes) ---- */

static struct closed_pipe *
closed_find(const struct rw_hub *h, uint32_t id)
{
	uint64_t hv = hash_u32(id);
	for (struct hlink *l = ht_first(&h->closed, hv); l; l = l->next) {
		struct closed_pipe *c = CONTAINER(l, struct closed_pipe, link);
		if (l->h == hv && c->id == id)
			return c;
	}
	return NULL;
}

static struct hub_pipe *
pipe_find(const struct rw_hub *h, uint32_t id)
{
	uint64_t hv = hash_u32(id);
	for (struct hlink *l = ht_first(&h->by_pipe, hv); l; l = l->next) {
		struct hub_pipe *pp = CONTAINER(l, struct hub_pipe, link);
		if (l->h == hv && pp->id == id)
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
		if (ht_insert(&h->by_pipe, &pp->link, hash_u32(id)) != 0) {
			free(pp);
			return;
		}
	}
	p->pp = pp;
	p->pprev = NULL;
	p->pnext = pp->pods;
	if (pp->pods)
		pp->pods->pprev = p;
	pp->pods = p;
}

/* Pipe id closed: its pods are disconnected from now on. */
static void
pipe_closed(struct rw_hub *h, uint32_t id, uint64_t now)
{
	uint64_t hv = hash_u32(id);
	struct hub_pipe *pp = pipe_find(h, id);
	if (pp) {
		for (struct hub_pod *p = pp->pods, *next; p; p = next) {
			next = p->pnext;
			p->pp = NULL;
			p->pprev = p->pnext = NULL;
			if (!p->closed_at)
				p->closed_at = now ? now : 1;
		}
		ht_remove(&h->by_pipe, &pp->link);
		free(pp);
	}
	if (h->closed.n >= CLOSED_MAX || closed_find(h, id))
		return;
	struct closed_pipe *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->id = id;
	c->at = now ? now : 1;
	if (ht_insert(&h->closed, &c->link, hv) != 0)
		free(c);
}

static void
closed_expire(struct rw_hub *h, uint64_t now, int all)
{
	for (size_t i = 0; i < h->closed.nb; i++) {
		struct hlink *l = h->closed.b[i], *next;
		for (; l; l = next) {
			next = l->next;
			struct closed_pipe *c = CONTAINER(l, struct closed_pipe, link);
			if (all || now - c->at >= CLOSED_KEEP_MS) {
				ht_remove(&h->closed, l);
				free(c);
			}
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

int
rw_hub_key_add(struct rw_hub *h, const char *ns, const char *cluster, const struct rw_wire_key *key)
{
	if (!h || !ns || !cluster || !key || !*ns || !*cluster || strlen(ns) >= 64 ||
	    strlen(cluster) >= 64 || key->len < RW_WIRE_KEY_MIN || key->len > RW_WIRE_KEY_MAX)
		return -EINVAL;
	struct hub_key *k = key_by_scope(h, ns, cluster);
	if (k) {
		/* Same scope, maybe a new key: rehash by id. */
		ht_remove(&h->keys_by_id, &k->by_id);
		k->key = *key;
		if (ht_insert(&h->keys_by_id, &k->by_id, hash_u32(key->id)) != 0) {
			/* Cannot happen: the table had room for it a moment ago. */
			ht_remove(&h->keys_by_scope, &k->by_scope);
			while (k->pods)
				pod_free(h, k->pods);
			rw_wire_key_wipe(&k->key);
			free(k);
			h->nkeys--;
			return -ENOMEM;
		}
		return 0;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	snprintf(k->ns, sizeof(k->ns), "%s", ns);
	snprintf(k->cluster, sizeof(k->cluster), "%s", cluster);
	snprintf(k->scope, sizeof(k->scope), "%s/%s", ns, cluster);
	k->key = *key;
	if (ht_insert(&h->keys_by_scope, &k->by_scope, hash_str(k->scope)) != 0) {
		free(k);
		return -ENOMEM;
	}
	if (ht_insert(&h->keys_by_id, &k->by_id, hash_u32(key->id)) != 0) {
		ht_remove(&h->keys_by_scope, &k->by_scope);
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
	while (k->pods)
		pod_free(h, k->pods);
	ht_remove(&h->keys_by_scope, &k->by_scope);
	ht_remove(&h->keys_by_id, &k->by_id);
	rw_wire_key_wipe(&k->key);
	free(k);
	h->nkeys--;
	return 0;
}

/* ---- refusals ---- */

/*
 * Count a refusal and log it, at most once per reason per log interval
 * (with the number of lines suppressed since). detail never holds key
 * material or payload text.
 */
static void
refuse(struct rw_hub *h, enum rw_hub_refusal why, const struct hub_conn *c, const char *detail)
{
	uint64_t now = uv_now(h->loop);
	const char *peer = c ? c->peer : "unknown peer";

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
build_reply(struct rw_hub *h, struct hub_pod *p, const struct hub_key *k,
	    const struct rw_wire_hdr *rq)
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
		rv = h->cb.reply(h, &p->report, &rep, h->ud);
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
	rh.ts_ms = wall_ms();
	rv = rw_wire_seal(&k->key, &rh, h->enc.data, h->enc.len, &h->seal);
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

static uint64_t
hash_u64(uint64_t v)
{
	uint64_t h = v * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 31);
}

static struct hub_pod *
session_find(const struct rw_hub *h, uint64_t session)
{
	uint64_t hv = hash_u64(session);
	for (struct hlink *l = ht_first(&h->by_session, hv); l; l = l->next) {
		struct hub_pod *p = CONTAINER(l, struct hub_pod, slink);
		if (l->h == hv && p->session == session)
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
		ht_remove(&h->by_session, &p->slink);
	p->in_sessions = 0;
	p->session = session;
	if (ht_insert(&h->by_session, &p->slink, hash_u64(session)) == 0)
		p->in_sessions = 1;
}

/* A RESEND of pod p: the cached reply again (a stale pod is back). */
static int
resend(struct rw_hub *h, struct hub_pod *p, const struct hub_key *k, const struct rw_wire_hdr *hdr,
       uint32_t pipe_id, const unsigned char **out, size_t *outlen)
{
	uint64_t now = uv_now(h->loop);
	h->st.resends++;
	if (p->stale)
		rw_info(COMPONENT, "agent of pod %s reporting again after %" PRIu64 " ms", p->id,
			now - p->last_seen);
	p->last_seen = now;
	pod_set_pipe(h, p, pipe_id, now);
	if (p->stale) {
		p->stale = 0;
		if (h->cb.on_report) {
			h->in_cb++;
			h->cb.on_report(h, &p->report, &p->report, h->ud);
			h->in_cb--;
		}
	}
	if (!(p->reply && p->reply_session == hdr->session && p->reply_seq == hdr->seq)) {
		if (build_reply(h, p, k, hdr) != 0) {
			h->st.no_reply++;
			return 0;
		}
	}
	*out = p->reply;
	*outlen = p->reply_len;
	return 1;
}

/*
 * The payload is byte for byte the last one pod p reported in this session
 * (an unchanged heartbeat): no decoding, no comparison; the replay checks
 * and the reply as usual.
 */
static int
process_same(struct rw_hub *h, struct hub_conn *m, const struct hub_key *k, struct hub_pod *p,
	     const struct rw_wire_hdr *hdr, const unsigned char **out, size_t *outlen)
{
	char detail[600];
	int fresh = rw_wire_replay_check(&p->replay, hdr, wall_ms(), h->o.replay_window_ms);
	if (fresh < 0) {
		snprintf(detail, sizeof(detail),
			 "%s for pod %s (session %016" PRIx64 ", seq %" PRIu64 ", ts %" PRIu64 ")",
			 fresh == -ETIME ? "timestamp outside the clock-skew window"
					 : "replayed or reordered report",
			 p->id, hdr->session, hdr->seq, hdr->ts_ms);
		refuse(h, fresh == -ETIME ? RW_HUB_REFUSED_CLOCK : RW_HUB_REFUSED_REPLAY, m,
		       detail);
		return 0;
	}
	if (fresh == RW_WIRE_RESEND)
		return resend(h, p, k, hdr, m->id, out, outlen);
	uint64_t now = uv_now(h->loop);
	int back = p->stale;
	h->st.reports++;
	h->st.unchanged_fast++;
	if (back)
		rw_info(COMPONENT, "agent of pod %s reporting again after %" PRIu64 " ms", p->id,
			now - p->last_seen);
	p->last_seen = now;
	p->stale = 0;
	pod_set_pipe(h, p, m->id, now);
	p->hb_ms = p->hb_told;
	if (back) {
		h->st.changes++;
		if (h->cb.on_report) {
			h->in_cb++;
			h->cb.on_report(h, &p->report, &p->report, h->ud);
			h->in_cb--;
		}
	}
	if (build_reply(h, p, k, hdr) != 0) {
		h->st.no_reply++;
		return 0;
	}
	*out = p->reply;
	*outlen = p->reply_len;
	return 1;
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
	struct rw_report rpt;
	struct hub_key *k = NULL;
	char detail[1024];
	int rv, fresh, answer = 0;

	memset(&rpt, 0, sizeof(rpt));
	if (n > h->o.recv_max || n > RW_WIRE_MAX_MSG) {
		snprintf(detail, sizeof(detail), "message of %zu bytes exceeds the limit", n);
		refuse(h, RW_HUB_REFUSED_SIZE, m, detail);
		return 0;
	}
	if (n < RW_WIRE_HDR_LEN + RW_WIRE_MAC_LEN || memcmp(msg, "RWP\x01", 4) != 0) {
		snprintf(detail, sizeof(detail), "not a raywarden envelope (%zu bytes)", n);
		refuse(h, RW_HUB_REFUSED_MALFORMED, m, detail);
		return 0;
	}
	if (rw_get_be16(msg + 4) != RW_WIRE_VERSION) {
		snprintf(detail, sizeof(detail),
			 "unsupported protocol version %u (this controller speaks %d); upgrade "
			 "the controller or roll back the agent",
			 (unsigned)rw_get_be16(msg + 4), RW_WIRE_VERSION);
		refuse(h, RW_HUB_REFUSED_VERSION, m, detail);
		return 0;
	}
	uint32_t kid = rw_get_be32(msg + 12);
	uint64_t hv = hash_u32(kid);
	int candidates = 0;
	rv = -EKEYREJECTED;
	for (struct hlink *l = ht_first(&h->keys_by_id, hv); l; l = l->next) {
		struct hub_key *c = CONTAINER(l, struct hub_key, by_id);
		if (l->h != hv || c->key.id != kid)
			continue;
		candidates++;
		rv = rw_wire_open(&c->key, msg, n, &hdr, &payload);
		if (rv != -EACCES) {
			k = c;
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
		return 0;
	}
	if (hdr.type != RW_WIRE_REPORT) {
		snprintf(detail, sizeof(detail), "message type %u is not a report",
			 (unsigned)hdr.type);
		refuse(h, RW_HUB_REFUSED_MALFORMED, m, detail);
		return 0;
	}
	uint64_t dig = payload_digest(payload, hdr.len);
	struct hub_pod *same = session_find(h, hdr.session);
	if (same && same->owner == k && same->plen == hdr.len && same->pdigest == dig &&
	    same->report.ns[0])
		return process_same(h, m, k, same, &hdr, out, outlen);
	char derr[200];
	rv = rw_report_decode(payload, hdr.len, &rpt, derr, sizeof(derr));
	if (rv != 0) {
		snprintf(detail, sizeof(detail), "report from key scope %s: %s", k->scope, derr);
		refuse(h, RW_HUB_REFUSED_PAYLOAD, m, detail);
		return 0;
	}
	if (strcmp(rpt.ns, k->ns) != 0 || strcmp(rpt.cluster, k->cluster) != 0) {
		snprintf(detail, sizeof(detail), "key of %s used for pod %s/%s of cluster \"%s\"",
			 k->scope, rpt.ns, rpt.pod, rpt.cluster);
		refuse(h, RW_HUB_REFUSED_SCOPE, m, detail);
		goto out;
	}

	struct hub_pod *p = pod_find(h, rpt.ns, rpt.pod);
	struct rw_wire_replay tmp = {0};
	fresh = rw_wire_replay_check(p ? &p->replay : &tmp, &hdr, wall_ms(), h->o.replay_window_ms);
	if (fresh < 0) {
		enum rw_hub_refusal why =
		    fresh == -ETIME ? RW_HUB_REFUSED_CLOCK : RW_HUB_REFUSED_REPLAY;
		snprintf(detail, sizeof(detail),
			 "%s for pod %s/%s (session %016" PRIx64 ", seq %" PRIu64 ", ts %" PRIu64
			 ")",
			 fresh == -ETIME ? "timestamp outside the clock-skew window"
					 : "replayed or reordered report",
			 rpt.ns, rpt.pod, hdr.session, hdr.seq, hdr.ts_ms);
		refuse(h, why, m, detail);
		goto out;
	}
	uint64_t now = uv_now(h->loop);
	uint32_t pipe_id = m->id;

	if (fresh == RW_WIRE_RESEND) {
		/* Only an existing pod can have a resend. */
		answer = resend(h, p, k, &hdr, pipe_id, out, outlen);
		goto out;
	}

	/* FRESH. */
	if (!p) {
		if (h->pods.n >= h->o.max_pods) {
			snprintf(detail, sizeof(detail), "pod table full (%zu pods); pod %s/%s",
				 h->pods.n, rpt.ns, rpt.pod);
			refuse(h, RW_HUB_REFUSED_FULL, m, detail);
			goto out;
		}
		p = calloc(1, sizeof(*p));
		if (!p)
			goto out;
		snprintf(p->id, sizeof(p->id), "%s/%s", rpt.ns, rpt.pod);
		if (ht_insert(&h->pods, &p->link, hash_str(p->id)) != 0) {
			free(p);
			goto out;
		}
		p->replay = tmp;
	}
	if (p->owner != k) {
		pod_unlink_owner(p);
		pod_link_owner(p, k);
	}
	h->st.reports++;
	int had = p->report.ns[0] != '\0';
	int new_pod = !had || strcmp(p->report.uid, rpt.uid) != 0;
	int changed = new_pod || p->stale || !rw_report_equal(&p->report, &rpt);
	if (p->stale && !new_pod)
		rw_info(COMPONENT, "agent of pod %s reporting again after %" PRIu64 " ms", p->id,
			now - p->last_seen);
	struct rw_report old = p->report;
	p->report = rpt;
	memset(&rpt, 0, sizeof(rpt));
	p->last_seen = now;
	p->stale = 0;
	p->is_head = strcmp(p->report.node_type, "head") == 0;
	p->pdigest = dig;
	p->plen = (uint32_t)hdr.len;
	session_set(h, p, hdr.session);
	pod_set_pipe(h, p, pipe_id, now);
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
		if (h->cb.on_report) {
			h->in_cb++;
			h->cb.on_report(h, &p->report, new_pod ? NULL : &old, h->ud);
			h->in_cb--;
		}
	}
	rw_report_fini(&old);
	if (build_reply(h, p, k, &hdr) != 0) {
		h->st.no_reply++;
		goto out;
	}
	*out = p->reply;
	*outlen = p->reply_len;
	answer = 1;
out:
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
	free(c->in);
	free(c);
	hub_release(h);
}

/* Close a connection: its pods count as disconnected from now on. */
static void
conn_close(struct hub_conn *c)
{
	struct rw_hub *h = c->hub;
	if (c->closing)
		return;
	c->closing = 1;
	if (!h->stopping)
		pipe_closed(h, c->id, uv_now(h->loop));
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
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
	/* The backtrace: 4-byte words up to the request id (high bit set). */
	while (h + 4 <= l && h < 4 * SP_MAX_HOPS) {
		int end = (d[8 + h] & 0x80) != 0;
		h += 4;
		if (end) {
			*hl = h;
			*len = (size_t)l;
			return 1;
		}
	}
	return -EPROTO;
}

/*
 * Parse d[0..n): the peer's header, then whole frames, each processed and
 * answered. Returns the bytes consumed (a partial frame is left), or
 * (size_t)-1 when the connection was closed.
 */
static size_t
conn_parse(struct hub_conn *c, const unsigned char *d, size_t n)
{
	struct rw_hub *h = c->hub;
	size_t pos = 0;

	if (!c->got_hdr) {
		if (n < 8)
			return 0;
		if (!rw_hub_sp_header_ok(d)) {
			rw_debug(COMPONENT, "%s: not an nng REQ peer; closing", c->peer);
			conn_close(c);
			return (size_t)-1;
		}
		c->got_hdr = 1;
		pos = 8;
	}
	while (!c->closing && !h->stopping) {
		size_t hl = 0, len = 0;
		int rv = rw_hub_sp_frame(d + pos, n - pos, h->o.recv_max, &hl, &len);
		if (rv == 0)
			break;
		if (rv < 0) {
			/* As nng does with a message over NNG_OPT_RECVMAXSZ or a bad backtrace. */
			rw_debug(COMPONENT, "%s: %s; closing", c->peer,
				 rv == -EMSGSIZE ? "message too large" : "malformed frame");
			conn_close(c);
			return (size_t)-1;
		}
		const unsigned char *body = d + pos + 8;
		const unsigned char *out = NULL;
		size_t outlen = 0;
		if (process(h, c, body + hl, len - hl, &out, &outlen) && !c->closing) {
			unsigned char lb[8];
			rw_put_be64(lb, hl + outlen);
			uv_buf_t b[3] = {uv_buf_init((char *)lb, 8),
					 uv_buf_init((char *)(uintptr_t)body, (unsigned)hl),
					 uv_buf_init((char *)(uintptr_t)out, (unsigned)outlen)};
			conn_write(c, b, 3);
			h->st.replies++;
		}
		pos += 8 + len;
	}
	return c->closing ? (size_t)-1 : pos;
}

/*
 * Reads go to the hub's one buffer (libuv hands it back in the read
 * callback at once, so connections can share it); only a partial frame is
 * kept per connection. 10,000 idle agents cost no read buffers.
 */
static void
conn_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
	struct hub_conn *c = hd->data;
	size_t want = c->inlen + READ_CHUNK;
	(void)suggested;
	if (c->inlen == 0) {
		*buf = uv_buf_init((char *)c->hub->rbuf, sizeof(c->hub->rbuf));
		return;
	}
	/* A frame being received may need more than a chunk (bounded by recv_max). */
	if (c->got_hdr && c->inlen >= 8) {
		uint64_t len = rw_get_be64(c->in);
		if (len <= c->hub->o.recv_max + 4 * SP_MAX_HOPS && 8 + len > want)
			want = 8 + (size_t)len;
	}
	if (want > c->incap) {
		unsigned char *n = realloc(c->in, want);
		if (!n) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->in = n;
		c->incap = want;
	}
	*buf = uv_buf_init((char *)c->in + c->inlen, (unsigned)(c->incap - c->inlen));
}

static void
conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct hub_conn *c = st->data;
	struct rw_hub *h = c->hub;
	size_t used;
	if (c->closing)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	if (buf->base == (char *)h->rbuf) {
		used = conn_parse(c, h->rbuf, (size_t)nread);
		if (used == (size_t)-1 || used == (size_t)nread)
			return;
		/* Keep the partial frame. */
		size_t left = (size_t)nread - used;
		unsigned char *n = malloc(left + READ_CHUNK);
		if (!n) {
			conn_close(c);
			return;
		}
		memcpy(n, h->rbuf + used, left);
		free(c->in);
		c->in = n;
		c->incap = left + READ_CHUNK;
		c->inlen = left;
		return;
	}
	c->inlen += (size_t)nread;
	used = conn_parse(c, c->in, c->inlen);
	if (used == (size_t)-1)
		return;
	memmove(c->in, c->in + used, c->inlen - used);
	c->inlen -= used;
	if (c->inlen == 0) {
		free(c->in);
		c->in = NULL;
		c->incap = 0;
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
	h->handles_open++;
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
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
	char ip[INET6_ADDRSTRLEN];
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
	uv_tcp_nodelay(&c->tcp, 1);
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

	for (size_t i = 0; i < h->pods.nb; i++) {
		struct hlink *l = h->pods.b[i], *next;
		for (; l; l = next) {
			next = l->next;
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
					rw_info(COMPONENT,
						"agent of pod %s silent for %" PRIu64 " ms", p->id,
						idle);
				if (h->cb.on_stale) {
					h->in_cb++;
					h->cb.on_stale(h, &p->report, h->ud);
					h->in_cb--;
				}
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
	while (h->conns)
		conn_close(h->conns);
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
	for (size_t i = 0; i < h->pods.nb; i++) {
		struct hlink *l = h->pods.b[i], *next;
		for (; l; l = next) {
			next = l->next;
			struct hub_pod *p = CONTAINER(l, struct hub_pod, link);
			rw_report_fini(&p->report);
			free(p->reply);
			free(p);
		}
	}
	for (size_t i = 0; i < h->keys_by_scope.nb; i++) {
		struct hlink *l = h->keys_by_scope.b[i], *next;
		for (; l; l = next) {
			next = l->next;
			struct hub_key *k = CONTAINER(l, struct hub_key, by_scope);
			rw_wire_key_wipe(&k->key);
			free(k);
		}
	}
	closed_expire(h, 0, 1);
	for (size_t i = 0; i < h->by_pipe.nb; i++) {
		struct hlink *l = h->by_pipe.b[i], *next;
		for (; l; l = next) {
			next = l->next;
			free(CONTAINER(l, struct hub_pipe, link));
		}
	}
	ht_fini(&h->pods);
	ht_fini(&h->by_pipe);
	ht_fini(&h->by_session);
	ht_fini(&h->closed);
	ht_fini(&h->keys_by_id);
	ht_fini(&h->keys_by_scope);
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
	    (rv = uv_listen((uv_stream_t *)&h->listener, 1024, on_connection)) != 0)
		goto fail_uv;
	uv_timer_start(&h->sweep, sweep_cb, h->o.sweep_ms, h->o.sweep_ms);
	rw_info(COMPONENT,
		"agent hub listening on %s (messages up to %zu bytes; stale after %" PRIu64
		" ms, heads on a %u ms heartbeat after %" PRIu64 " ms, disconnected after %" PRIu64
		" ms)",
		h->url, h->o.recv_max, h->o.stale_after_ms, (unsigned)h->o.head_heartbeat_ms,
		h->o.head_stale_after_ms, h->o.disconnect_grace_ms);
	*out = h;
	return 0;
fail_uv:
	if (err && errlen)
		snprintf(err, errlen, "agent hub: %s: %s", h->url, uv_strerror(rv));
fail:
	hub_stop_net(h);
	hub_free_state(h);
	uv_close((uv_handle_t *)&h->sweep, handle_closed);
	hub_release(h);
	return rv;
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
	out->agents_connected = 0;
	uint64_t now = uv_now(h->loop);
	for (size_t i = 0; i < h->pods.nb; i++)
		for (struct hlink *l = h->pods.b[i]; l; l = l->next) {
			const struct hub_pod *p = CONTAINER(l, struct hub_pod, link);
			if (!p->stale && !pod_stale_why(h, p, now))
				out->agents_connected++;
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
	for (const struct hub_pod *p = k->pods; p; p = p->cnext) {
		int stale = pod_is_stale(h, p, now);
		out->pods++;
		if (stale)
			out->stale++;
		else if (p->report.ready)
			out->ready++;
		else
			out->not_ready++;
		if (strcmp(p->report.node_type, "head") == 0 &&
		    (!head || p->last_seen > head->last_seen))
			head = p;
	}
	if (head) {
		out->head = &head->report;
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
	for (const struct hub_pod *p = k->pods; p; p = p->cnext, n++)
		fn(&p->report, pod_is_stale(h, p, now), p->last_seen, arg);
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
	return &p->report;
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

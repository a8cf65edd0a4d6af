/*
 * hub.c - the agent hub (see hub.h and docs/controller.md "Agent hub").
 *
 * nng side: one REP socket, N contexts, one aio each. A context cycles
 * RECV -> QUEUED -> (SEND ->) RECV. The aio callback runs on an nng thread;
 * after a receive it parks the message in the context, appends the context
 * to a mutex-protected queue and calls uv_async_send. The loop drains the
 * whole queue at each wake-up (libuv coalesces wake-ups), processes each
 * message and either sends the sealed reply on the same context or, for a
 * refused message, simply receives again (REP then drops the request, and
 * the agent's REQ socket resends after its timeout).
 *
 * Liveness: each pod remembers the nng pipe (connection) its last report
 * came on. A pipe notifier (NNG_PIPE_EV_REM_POST, on an nng thread) queues
 * the id of every closed pipe for the loop like a message; the loop marks
 * the pods of that pipe "disconnected", and the sweep makes them stale after
 * disconnect_grace_ms unless a report arrived on a new pipe (the agent
 * reconnected: it reports at once on reconnect). A hung agent or a
 * partition keeps its TCP connection up: that case is the heartbeat
 * staleness, short for head pods (the hub asks head agents for a 1 s
 * heartbeat) and a few heartbeats for workers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "hub.h"
#include "rw/buf.h"
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
	struct hlink link;	       /* in hub->pods, by "ns/pod" */
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
#define CQ_MAX 65536

enum ctx_state { CTX_IDLE = 0, CTX_RECV, CTX_QUEUED, CTX_SEND };

struct hub_ctx {
	struct rw_hub *hub;
	nng_ctx ctx;
	nng_aio *aio;
	int opened;
	enum ctx_state state;
	nng_msg *msg; /* received message handed to the loop */
	struct hub_ctx *qnext;
};

struct rw_hub {
	uv_loop_t *loop;
	struct rw_hub_opts o;
	char url[256];
	struct rw_hub_callbacks cb;
	void *ud;

	nng_socket sock;
	int sock_open;
	nng_listener listener;
	struct hub_ctx *ctxs;
	int nctx;

	pthread_mutex_t mu; /* guards the queue, the closed-pipe queue and stopping */
	struct hub_ctx *qhead, *qtail;
	uint32_t *cq; /* pipe ids closed since the last wake-up */
	size_t cqn, cqcap;
	uint64_t cq_dropped;
	atomic_int stopping;

	uv_async_t async;
	uv_timer_t sweep;
	int handles_open;
	int in_cb; /* inside a user callback */

	struct htab pods;
	struct htab by_pipe; /* open pipes with pods (struct hub_pipe) by id */
	struct htab closed;  /* recently closed pipe ids (struct closed_pipe) */
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

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
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

/* Runs on an nng thread: queue the id for the loop. */
static void
pipe_cb(nng_pipe pp, nng_pipe_ev ev, void *arg)
{
	struct rw_hub *h = arg;
	int id = nng_pipe_id(pp);
	if (ev != NNG_PIPE_EV_REM_POST || id <= 0)
		return;
	pthread_mutex_lock(&h->mu);
	if (!atomic_load(&h->stopping)) {
		if (h->cqn == h->cqcap && h->cqcap < CQ_MAX) {
			size_t cap = h->cqcap ? h->cqcap * 2 : 64;
			uint32_t *n = realloc(h->cq, cap * sizeof(*n));
			if (n) {
				h->cq = n;
				h->cqcap = cap;
			}
		}
		if (h->cqn < h->cqcap)
			h->cq[h->cqn++] = (uint32_t)id;
		else
			h->cq_dropped++;
		uv_async_send(&h->async);
	}
	pthread_mutex_unlock(&h->mu);
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

static void
peer_of(nng_msg *m, char *out, size_t outlen)
{
	nng_sockaddr sa;
	char ip[INET6_ADDRSTRLEN];
	snprintf(out, outlen, "unknown peer");
	if (!m)
		return;
	nng_pipe p = nng_msg_get_pipe(m);
	if (nng_pipe_id(p) < 0 || nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET &&
	    inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip)) != NULL)
		snprintf(out, outlen, "%s:%u", ip, (unsigned)ntohs(sa.s_in.sa_port));
	else if (sa.s_family == NNG_AF_INET6 &&
		 inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip)) != NULL)
		snprintf(out, outlen, "[%s]:%u", ip, (unsigned)ntohs(sa.s_in6.sa_port));
}

/*
 * Count a refusal and log it, at most once per reason per log interval
 * (with the number of lines suppressed since). detail never holds key
 * material or payload text.
 */
static void
refuse(struct rw_hub *h, enum rw_hub_refusal why, nng_msg *m, const char *detail)
{
	uint64_t now = uv_now(h->loop);
	char peer[80];

	h->st.refused[why]++;
	h->st.refused_total++;
	if (h->log_last[why] && now - h->log_last[why] < h->o.log_interval_ms) {
		h->log_suppressed[why]++;
		return;
	}
	peer_of(m, peer, sizeof(peer));
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

/*
 * Process one received message. Returns 1 with *out set to the bytes to
 * send (owned by the pod), or 0 when nothing is to be sent.
 */
static int
process(struct rw_hub *h, nng_msg *m, const unsigned char **out, size_t *outlen)
{
	const unsigned char *msg = nng_msg_body(m);
	size_t n = nng_msg_len(m);
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
	if (get16(msg + 4) != RW_WIRE_VERSION) {
		snprintf(detail, sizeof(detail),
			 "unsupported protocol version %u (this controller speaks %d); upgrade "
			 "the controller or roll back the agent",
			 (unsigned)get16(msg + 4), RW_WIRE_VERSION);
		refuse(h, RW_HUB_REFUSED_VERSION, m, detail);
		return 0;
	}
	uint32_t kid = get32(msg + 12);
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
	int pipe_id = nng_pipe_id(nng_msg_get_pipe(m));
	if (pipe_id < 0)
		pipe_id = 0;

	if (fresh == RW_WIRE_RESEND) {
		/* Only an existing pod can have a resend. */
		h->st.resends++;
		if (p->stale)
			rw_info(COMPONENT, "agent of pod %s reporting again after %" PRIu64 " ms",
				p->id, now - p->last_seen);
		p->last_seen = now;
		pod_set_pipe(h, p, (uint32_t)pipe_id, now);
		if (p->stale) {
			p->stale = 0;
			if (h->cb.on_report) {
				h->in_cb++;
				h->cb.on_report(h, &p->report, &p->report, h->ud);
				h->in_cb--;
			}
		}
		if (!(p->reply && p->reply_session == hdr.session && p->reply_seq == hdr.seq)) {
			if (build_reply(h, p, k, &hdr) != 0) {
				h->st.no_reply++;
				goto out;
			}
		}
		*out = p->reply;
		*outlen = p->reply_len;
		answer = 1;
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
	pod_set_pipe(h, p, (uint32_t)pipe_id, now);
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

static void
ctx_recv(struct hub_ctx *c)
{
	c->state = CTX_RECV;
	nng_ctx_recv(c->ctx, c->aio);
}

static void
handle_ctx(struct rw_hub *h, struct hub_ctx *c)
{
	nng_msg *m = c->msg;
	const unsigned char *out = NULL;
	size_t outlen = 0;
	nng_msg *r = NULL;

	c->msg = NULL;
	if (process(h, m, &out, &outlen) && nng_msg_alloc(&r, outlen) == 0) {
		memcpy(nng_msg_body(r), out, outlen);
		h->st.replies++;
		nng_msg_free(m);
		c->state = CTX_SEND;
		nng_aio_set_msg(c->aio, r);
		nng_ctx_send(c->ctx, c->aio);
		return;
	}
	nng_msg_free(m);
	ctx_recv(c);
}

/* Runs on an nng thread: never blocks, never touches hub state but the queue. */
static void
ctx_cb(void *arg)
{
	struct hub_ctx *c = arg;
	struct rw_hub *h = c->hub;
	int rv = nng_aio_result(c->aio);

	if (c->state == CTX_SEND) {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(c->aio));
		if (atomic_load(&h->stopping) || rv == NNG_ECLOSED)
			return;
		ctx_recv(c);
		return;
	}
	if (rv != 0) {
		if (atomic_load(&h->stopping) || rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		ctx_recv(c);
		return;
	}
	c->msg = nng_aio_get_msg(c->aio);
	c->state = CTX_QUEUED;
	c->qnext = NULL;
	pthread_mutex_lock(&h->mu);
	if (h->qtail)
		h->qtail->qnext = c;
	else
		h->qhead = c;
	h->qtail = c;
	if (!atomic_load(&h->stopping))
		uv_async_send(&h->async);
	pthread_mutex_unlock(&h->mu);
}

static void
async_cb(uv_async_t *a)
{
	struct rw_hub *h = a->data;
	struct hub_ctx *c;
	uint32_t *cq;
	size_t cqn;
	uint64_t dropped;

	pthread_mutex_lock(&h->mu);
	c = h->qhead;
	h->qhead = h->qtail = NULL;
	cq = h->cq;
	cqn = h->cqn;
	dropped = h->cq_dropped;
	h->cq = NULL;
	h->cqn = h->cqcap = 0;
	h->cq_dropped = 0;
	pthread_mutex_unlock(&h->mu);
	if (dropped)
		rw_warn(COMPONENT,
			"%" PRIu64 " connection closures not tracked (queue full); those pods "
			"go stale by their heartbeat",
			dropped);
	while (c) {
		struct hub_ctx *next = c->qnext;
		c->qnext = NULL;
		if (atomic_load(&h->stopping)) {
			nng_msg_free(c->msg);
			c->msg = NULL;
		} else {
			handle_ctx(h, c);
		}
		c = next;
	}
	/* Closures after the messages: a report sent just before the close counts. */
	uint64_t now = uv_now(h->loop);
	for (size_t i = 0; i < cqn && !atomic_load(&h->stopping); i++)
		pipe_closed(h, cq[i], now);
	free(cq);
}

static void
sweep_cb(uv_timer_t *t)
{
	struct rw_hub *h = t->data;
	uint64_t now, evict_after = h->o.stale_after_ms + h->o.replay_window_ms;
	int stalled;
	size_t nstale = 0, ndisc = 0;

	/* Decide on the freshest data: act on what nng has delivered so far. */
	async_cb(&h->async);
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
	struct rw_hub *h = hd->data;
	if (--h->handles_open > 0)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static int
nng_to_errno(int rv)
{
	switch (rv) {
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EADDRINUSE:
		return -EADDRINUSE;
	case NNG_EADDRINVAL:
	case NNG_EINVAL:
		return -EINVAL;
	case NNG_ENOTSUP:
		return -ENOTSUP;
	case NNG_EPERM:
		return -EACCES;
	default:
		return -EIO;
	}
}

static void
hub_stop_nng(struct rw_hub *h)
{
	/* Under the mutex: no nng thread wakes the loop after this. */
	pthread_mutex_lock(&h->mu);
	atomic_store(&h->stopping, 1);
	pthread_mutex_unlock(&h->mu);
	for (int i = 0; i < h->nctx; i++)
		if (h->ctxs[i].aio)
			nng_aio_stop(h->ctxs[i].aio);
	for (int i = 0; i < h->nctx; i++)
		if (h->ctxs[i].opened)
			nng_ctx_close(h->ctxs[i].ctx);
	if (h->sock_open)
		nng_close(h->sock);
	h->sock_open = 0;
	/* Messages parked for the loop. */
	pthread_mutex_lock(&h->mu);
	struct hub_ctx *c = h->qhead;
	h->qhead = h->qtail = NULL;
	pthread_mutex_unlock(&h->mu);
	for (; c; c = c->qnext) {
		nng_msg_free(c->msg);
		c->msg = NULL;
	}
	for (int i = 0; i < h->nctx; i++) {
		if (h->ctxs[i].aio)
			nng_aio_free(h->ctxs[i].aio);
		h->ctxs[i].aio = NULL;
		nng_msg_free(h->ctxs[i].msg);
		h->ctxs[i].msg = NULL;
	}
	free(h->ctxs);
	h->ctxs = NULL;
	h->nctx = 0;
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
	ht_fini(&h->closed);
	free(h->cq);
	h->cq = NULL;
	h->cqn = h->cqcap = 0;
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
	int rv = 0, nrv = 0;

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
	if (h->o.nctx <= 0)
		h->o.nctx = 16;
	if (h->o.nctx > 1024)
		h->o.nctx = 1024;
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
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		rw_buf_fini(&h->enc);
		rw_buf_fini(&h->seal);
		free(h);
		return -ENOMEM;
	}
	if ((rv = uv_async_init(loop, &h->async, async_cb)) != 0) {
		pthread_mutex_destroy(&h->mu);
		rw_buf_fini(&h->enc);
		rw_buf_fini(&h->seal);
		free(h);
		if (err && errlen)
			snprintf(err, errlen, "agent hub: uv_async_init: %s", uv_strerror(rv));
		return rv;
	}
	h->async.data = h;
	h->handles_open = 1;
	uv_timer_init(loop, &h->sweep);
	h->sweep.data = h;
	h->handles_open++;

	if ((nrv = nng_rep0_open(&h->sock)) != 0)
		goto fail;
	h->sock_open = 1;
	if ((nrv = nng_pipe_notify(h->sock, NNG_PIPE_EV_REM_POST, pipe_cb, h)) != 0)
		goto fail;
	h->ctxs = calloc((size_t)h->o.nctx, sizeof(*h->ctxs));
	if (!h->ctxs) {
		nrv = NNG_ENOMEM;
		goto fail;
	}
	h->nctx = h->o.nctx;
	for (int i = 0; i < h->nctx; i++) {
		struct hub_ctx *c = &h->ctxs[i];
		c->hub = h;
		if ((nrv = nng_aio_alloc(&c->aio, ctx_cb, c)) != 0)
			goto fail;
		if ((nrv = nng_ctx_open(&c->ctx, h->sock)) != 0)
			goto fail;
		c->opened = 1;
	}
	if ((nrv = nng_listener_create(&h->listener, h->sock, h->url)) != 0 ||
	    (nrv = nng_listener_set_size(h->listener, NNG_OPT_RECVMAXSZ, h->o.recv_max)) != 0 ||
	    (nrv = nng_listener_start(h->listener, 0)) != 0)
		goto fail;
	for (int i = 0; i < h->nctx; i++)
		ctx_recv(&h->ctxs[i]);
	uv_timer_start(&h->sweep, sweep_cb, h->o.sweep_ms, h->o.sweep_ms);
	rw_info(COMPONENT,
		"agent hub listening on %s (%d contexts, messages up to %zu bytes; stale after "
		"%" PRIu64 " ms, heads on a %u ms heartbeat after %" PRIu64
		" ms, disconnected after %" PRIu64 " ms)",
		h->url, h->nctx, h->o.recv_max, h->o.stale_after_ms,
		(unsigned)h->o.head_heartbeat_ms, h->o.head_stale_after_ms,
		h->o.disconnect_grace_ms);
	*out = h;
	return 0;
fail:
	if (err && errlen)
		snprintf(err, errlen, "agent hub: %s: %s", h->url, nng_strerror(nrv));
	rv = nng_to_errno(nrv);
	hub_stop_nng(h);
	hub_free_state(h);
	uv_close((uv_handle_t *)&h->async, handle_closed);
	uv_close((uv_handle_t *)&h->sweep, handle_closed);
	return rv;
}

void
rw_hub_free(struct rw_hub *h)
{
	if (!h)
		return;
	hub_stop_nng(h);
	hub_free_state(h);
	uv_timer_stop(&h->sweep);
	uv_close((uv_handle_t *)&h->async, handle_closed);
	uv_close((uv_handle_t *)&h->sweep, handle_closed);
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
	if (!h || !out || outlen == 0)
		return -EINVAL;
	if (nng_listener_get_int(h->listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
		return -ENOTSUP;
	/* Replace the port of tcp://host:port with the bound one. */
	const char *colon = strrchr(h->url, ':');
	if (!colon || strncmp(h->url, "tcp://", 6) != 0)
		return -ENOTSUP;
	int n = snprintf(out, outlen, "%.*s:%d", (int)(colon - h->url), h->url, port);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

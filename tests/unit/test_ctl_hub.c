/*
 * test_ctl_hub.c - the agent hub: one process, the hub on a libuv loop in
 * the main thread, agents as nng REQ sockets on client threads sending
 * envelopes built with proto/wire.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <uv.h>

#include "hub.h"
#include "rw/buf.h"
#include "rw/clock.h"
#include "rw/log.h"
#include "rw/wire.h"
#include "rwtest.h"

#define NS "default"
#define KEY_A "alpha-cluster-key-0123456789abcdef"
#define KEY_B "beta-cluster-key-0123456789abcdef"
#define KEY_X "not-a-registered-key-0123456789"
/* Bound on one worker pod's record (struct, strings, cached reply). */
#define RW_HUB_POD_BYTES_MAX 1024

static double
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the hub side: callbacks record what they saw ---- */

struct seen {
	int reports;	 /* on_report calls */
	int reports_new; /* ... with old == NULL */
	int stale;	 /* on_stale calls */
	int replies;	 /* provider calls */
	int last_old_ready;
	char last_pod[256];
	char last_stale[256];
	/* admission: off (accept all), or as the pod informer would say for
	 * pods "<cluster>-...": known once `known` is set, UID "uid-1". */
	int admit_on, known, admits;
};

static void
on_report(struct rw_hub *hub, const struct rw_report *now, const struct rw_report *old, void *ud)
{
	struct seen *s = ud;
	(void)hub;
	s->reports++;
	if (!old)
		s->reports_new++;
	s->last_old_ready = old ? old->ready : -1;
	snprintf(s->last_pod, sizeof(s->last_pod), "%s", now->pod);
}

static void
on_stale(struct rw_hub *hub, const struct rw_report *last, void *ud)
{
	struct seen *s = ud;
	(void)hub;
	s->stale++;
	snprintf(s->last_stale, sizeof(s->last_stale), "%s", last->pod);
	/* Removing keys from a callback is refused. */
	CHECK_EQ_INT(rw_hub_key_remove(hub, NS, "alpha"), -EBUSY);
}

static int
provide(struct rw_hub *hub, const struct rw_report *r, struct rw_reply *out, void *ud)
{
	struct seen *s = ud;
	(void)hub;
	s->replies++;
	out->drain = strstr(r->pod, "drain") != NULL;
	out->proxy_expected = 1;
	snprintf(out->serve_config_hash, sizeof(out->serve_config_hash), "hash-%.60s", r->pod);
	out->serve_config = strdup("{\"applications\":[]}");
	snprintf(out->stop_job, sizeof(out->stop_job), "job-%d", s->replies);
	out->heartbeat_ms = 5000;
	return 0;
}

static int
admit(struct rw_hub *hub, const char *ns, const char *cluster, const struct rw_report *r, char *why,
      size_t whylen, void *ud)
{
	struct seen *s = ud;
	(void)hub;
	(void)ns;
	if (!s->admit_on)
		return 0;
	s->admits++;
	if (!s->known) {
		snprintf(why, whylen, "pod cache not synced yet");
		return -EAGAIN;
	}
	size_t n = strlen(cluster);
	if (strncmp(r->pod, cluster, n) != 0 || r->pod[n] != '-') {
		snprintf(why, whylen, "the pod belongs to another cluster");
		return -EPERM;
	}
	if (strcmp(r->uid, "uid-1") != 0) {
		snprintf(why, whylen, "another incarnation");
		return -EAGAIN;
	}
	return 0;
}

struct fixture {
	uv_loop_t loop;
	uv_timer_t tick;
	struct rw_hub *hub;
	struct seen seen;
	struct rw_wire_key ka, kb, kx;
	char url[128];
};

static void
tick_cb(uv_timer_t *t)
{
	(void)t;
}

static int fx_init_opts(struct fixture *f, struct rw_hub_opts *o);

/* One staleness period for everything (heads, disconnects), as before the
 * head heartbeat and the connection tracking. */
static int
fx_init(struct fixture *f, uint64_t stale_after_ms, size_t recv_max)
{
	struct rw_hub_opts o = {0};
	o.recv_max = recv_max;
	o.stale_after_ms = stale_after_ms;
	o.head_stale_after_ms = stale_after_ms;
	o.disconnect_grace_ms = stale_after_ms;
	o.sweep_ms = stale_after_ms < 1000 ? 20 : 0;
	return fx_init_opts(f, &o);
}

static int
fx_init_opts(struct fixture *f, struct rw_hub_opts *o)
{
	char err[256];
	struct rw_hub_callbacks cb = {on_report, on_stale, provide, admit};

	memset(f, 0, sizeof(*f));
	uv_loop_init(&f->loop);
	uv_timer_init(&f->loop, &f->tick);
	uv_timer_start(&f->tick, tick_cb, 5, 5);
	o->listen_url = "tcp://127.0.0.1:0";
	o->nctx = 16;
	/* The steady state: unknown keys close at once (t_startup_grace tests the grace). */
	if (!o->startup_grace_ms)
		o->startup_grace_ms = 1;
	o->log_interval_ms = 1000;
	int rv = rw_hub_new(&f->loop, o, &cb, &f->seen, &f->hub, err, sizeof(err));
	CHECK_EQ_INT(rv, 0);
	if (rv)
		return rv;
	CHECK_EQ_INT(rw_hub_listen_url(f->hub, f->url, sizeof(f->url)), 0);
	rw_wire_key_set(&f->ka, KEY_A, strlen(KEY_A));
	rw_wire_key_set(&f->kb, KEY_B, strlen(KEY_B));
	rw_wire_key_set(&f->kx, KEY_X, strlen(KEY_X));
	CHECK_EQ_INT(rw_hub_key_add(f->hub, NS, "alpha", &f->ka), 0);
	CHECK_EQ_INT(rw_hub_key_add(f->hub, NS, "beta", &f->kb), 0);
	return 0;
}

static void
fx_fini(struct fixture *f)
{
	rw_hub_free(f->hub);
	uv_close((uv_handle_t *)&f->tick, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&f->loop), 0);
}

/* ---- the agent side ---- */

struct rpt_spec {
	const char *ns, *cluster, *pod, *uid, *node_type;
	int ready;
	uint64_t session, seq, ts;
};

/* Seal a report into out (reset first). */
static void
make_report(struct rw_buf *out, const struct rw_wire_key *k, const struct rpt_spec *s)
{
	struct rw_report r;
	struct rw_buf pl;
	struct rw_wire_hdr h = {0};

	memset(&r, 0, sizeof(r));
	snprintf(r.ns, sizeof(r.ns), "%s", s->ns ? s->ns : NS);
	snprintf(r.pod, sizeof(r.pod), "%s", s->pod);
	snprintf(r.uid, sizeof(r.uid), "%s", s->uid ? s->uid : "uid-1");
	snprintf(r.cluster, sizeof(r.cluster), "%s", s->cluster ? s->cluster : "alpha");
	snprintf(r.node_type, sizeof(r.node_type), "%s", s->node_type ? s->node_type : "worker");
	r.ready = s->ready;
	r.live = 1;
	r.raylet.state = RW_PROBE_OK;
	rw_buf_init(&pl, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_report_encode(&r, &pl), 0);
	h.type = RW_WIRE_REPORT;
	h.session = s->session;
	h.seq = s->seq;
	h.ts_ms = s->ts ? s->ts : (uint64_t)rw_clock_wall_ms();
	rw_buf_reset(out);
	CHECK_EQ_INT(rw_wire_seal(k, &h, pl.data, pl.len, out), 0);
	rw_buf_fini(&pl);
}

#define MAXREQ 16

/* One agent: a REQ socket sending msgs[i] in turn, each waiting for an answer. */
struct agent {
	const char *url;
	int nmsg;
	const unsigned char *msg[MAXREQ];
	size_t len[MAXREQ];
	int timeout_ms;
	int rv[MAXREQ];
	unsigned char *reply[MAXREQ];
	size_t rlen[MAXREQ];
	atomic_int done;
	/* hold: keep the connection open after the last answer until release. */
	int hold;
	atomic_int answered, release;
	pthread_t thread;
};

static void *
agent_main(void *arg)
{
	struct agent *a = arg;
	nng_socket s;
	int rv = nng_req0_open(&s);
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 60000);
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, a->timeout_ms);
	/* A REQ send waits for a connection: bounded, so a hub that never takes the agent back
	 * fails the case (ETIMEDOUT) instead of blocking the thread run_agent joins. */
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 10000);
	if (rv == 0)
		rv = nng_dial(s, a->url, NULL, 0);
	for (int i = 0; i < a->nmsg; i++) {
		a->rv[i] = rv;
		if (rv)
			continue;
		a->rv[i] = nng_send(s, (void *)a->msg[i], a->len[i], 0);
		if (a->rv[i])
			continue;
		void *buf = NULL;
		size_t n = 0;
		a->rv[i] = nng_recv(s, &buf, &n, NNG_FLAG_ALLOC);
		if (a->rv[i] == 0) {
			a->reply[i] = malloc(n);
			memcpy(a->reply[i], buf, n);
			a->rlen[i] = n;
			nng_free(buf, n);
		}
	}
	atomic_store(&a->answered, 1);
	for (int i = 0; a->hold && !atomic_load(&a->release) && i < 30000; i++)
		nng_msleep(1);
	nng_close(s);
	atomic_store(&a->done, 1);
	return NULL;
}

/* Run one agent on a thread while the loop serves it. */
static void
run_agent(struct fixture *f, struct agent *a)
{
	pthread_t t;
	a->url = f->url;
	if (!a->timeout_ms)
		a->timeout_ms = 2000;
	atomic_store(&a->done, 0);
	pthread_create(&t, NULL, agent_main, a);
	double end = mono_ms() + 30000;
	while (!atomic_load(&a->done) && mono_ms() < end)
		uv_run(&f->loop, UV_RUN_ONCE);
	pthread_join(t, NULL);
	/* Let the loop finish what the last answer started. */
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Start an agent that keeps its connection until agent_release(); returns
 * once every message is answered (or failed). */
static void
start_holding_agent(struct fixture *f, struct agent *a)
{
	a->url = f->url;
	a->hold = 1;
	if (!a->timeout_ms)
		a->timeout_ms = 2000;
	atomic_store(&a->done, 0);
	atomic_store(&a->answered, 0);
	atomic_store(&a->release, 0);
	pthread_create(&a->thread, NULL, agent_main, a);
	double end = mono_ms() + 30000;
	while (!atomic_load(&a->answered) && mono_ms() < end)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Close a holding agent's connection and join its thread. */
static void
agent_release(struct fixture *f, struct agent *a)
{
	atomic_store(&a->release, 1);
	double end = mono_ms() + 30000;
	while (!atomic_load(&a->done) && mono_ms() < end)
		uv_run(&f->loop, UV_RUN_ONCE);
	pthread_join(a->thread, NULL);
}

static void
agent_free(struct agent *a)
{
	for (int i = 0; i < MAXREQ; i++)
		free(a->reply[i]);
	memset(a, 0, sizeof(*a));
}

/* Run the loop until refusals for why reach n or ms pass; returns their count. */
static uint64_t
wait_refused(struct fixture *f, enum rw_hub_refusal why, uint64_t n, double ms)
{
	struct rw_hub_stats st;
	double end = mono_ms() + ms;
	rw_hub_stats(f->hub, &st);
	while (st.refused[why] < n && mono_ms() < end) {
		uv_run(&f->loop, UV_RUN_ONCE);
		rw_hub_stats(f->hub, &st);
	}
	return st.refused[why];
}

/* ---- raw TCP connections: hostile peers, and requests whose connection the hub closes ---- */

static int
raw_connect(const struct fixture *f)
{
	struct sockaddr_in sa;
	const char *colon = strrchr(f->url, ':');
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)(colon ? atoi(colon + 1) : 0));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static const unsigned char req_hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};

/* Send all of d while the loop runs (the hub reads meanwhile). */
static int
raw_send(struct fixture *f, int fd, const void *d, size_t n)
{
	const unsigned char *p = d;
	double end = mono_ms() + 20000;
	while (n > 0 && mono_ms() < end) {
		ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			return -1;
		} else {
			uv_run(&f->loop, UV_RUN_NOWAIT);
		}
	}
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return n == 0 ? 0 : -1;
}

/* 1 when the hub closed fd (EOF or reset; what it sent first is skipped). */
static int
raw_closed(int fd)
{
	unsigned char b[4096];
	for (;;) {
		ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return 1;
		if (r < 0)
			return 0;
	}
}

/* Run the loop until fd is closed by the hub or ms pass; returns the time it took or -1. */
static double
wait_closed(struct fixture *f, int fd, double ms)
{
	double t0 = mono_ms(), end = t0 + ms;
	while (mono_ms() < end) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (raw_closed(fd))
			return mono_ms() - t0;
		uv_sleep(2);
	}
	return -1;
}

/* One SP frame (request id 0x80000001) around msg into out. */
static void
sp_frame(struct rw_buf *out, const void *msg, size_t n)
{
	unsigned char lb[8], id[4] = {0x80, 0, 0, 1};
	for (int i = 0; i < 8; i++)
		lb[i] = (unsigned char)((uint64_t)(n + 4) >> (56 - 8 * i));
	rw_buf_reset(out);
	rw_buf_append(out, lb, 8);
	rw_buf_append(out, id, 4);
	rw_buf_append(out, msg, n);
}

/*
 * One request on a connection of its own, framed as an nng REQ socket frames it. Returns 1
 * with the reply (request id stripped) in *reply when answered within ms; 0 when the hub
 * closed the connection first or ms passed. Cases where the hub closes connections use this
 * and not an nng REQ socket: the socket redials each closed pipe, and nng 1.5.2's nng_close
 * can deadlock when it meets a redial under way (upstream nng issue 1813, fixed in 1.8).
 */
static int
raw_request(struct fixture *f, const void *msg, size_t n, double ms, struct rw_buf *reply)
{
	struct rw_buf fr, in;
	int answered = 0, fd = raw_connect(f);
	if (fd < 0)
		return 0;
	rw_buf_init(&fr, n + 64);
	rw_buf_init(&in, RW_WIRE_MAX_MSG + 64);
	sp_frame(&fr, msg, n);
	if (raw_send(f, fd, req_hdr, 8) != 0 || raw_send(f, fd, fr.data, fr.len) != 0)
		goto out;
	double end = mono_ms() + ms;
	while (mono_ms() < end) {
		unsigned char b[16384];
		uv_run(&f->loop, UV_RUN_NOWAIT);
		ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			break;
		if (r < 0) {
			uv_sleep(1);
			continue;
		}
		if (rw_buf_append(&in, b, (size_t)r) != 0)
			break;
		/* The hub's SP header, then one frame: length, request id, reply. */
		if (in.len < 16)
			continue;
		const unsigned char *u = (const unsigned char *)in.data;
		uint64_t len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | u[8 + i];
		if (len < 4 || len > RW_WIRE_MAX_MSG + 4)
			break;
		if (in.len < 16 + len)
			continue;
		if (reply) {
			rw_buf_reset(reply);
			rw_buf_append(reply, u + 20, (size_t)len - 4);
		}
		answered = 1;
		break;
	}
out:
	close(fd);
	rw_buf_fini(&fr);
	rw_buf_fini(&in);
	return answered;
}

/* Send each message on its own connection; returns how many were answered. */
static int
send_each(struct fixture *f, struct rw_buf *m, int n, int timeout_ms)
{
	int ok = 0;
	for (int i = 0; i < n; i++)
		ok += raw_request(f, m[i].data, m[i].len, timeout_ms, NULL);
	return ok;
}

/* Open and decode a reply; checks session/seq echo. Returns 0 on success. */
static int
open_reply(const struct rw_wire_key *k, const unsigned char *m, size_t n, uint64_t session,
	   uint64_t seq, struct rw_reply *out)
{
	struct rw_wire_hdr h;
	const char *pl;
	char err[200];
	if (!m)
		return -ENOENT;
	int rv = rw_wire_open(k, m, n, &h, &pl);
	CHECK_EQ_INT(rv, 0);
	if (rv)
		return rv;
	CHECK_EQ_INT(h.type, RW_WIRE_REPLY);
	CHECK(h.session == session);
	CHECK(h.seq == seq);
	rv = rw_reply_decode(pl, h.len, out, err, sizeof(err));
	CHECK_EQ_INT(rv, 0);
	return rv;
}

/* ---- cases ---- */

static void
t_fresh_resend_change(void)
{
	struct fixture f;
	struct agent a = {0};
	struct rw_buf m[4];
	struct rw_hub_stats st;
	struct rw_reply rep;

	if (fx_init(&f, 60000, 0))
		return;
	for (int i = 0; i < 4; i++)
		rw_buf_init(&m[i], RW_WIRE_MAX_MSG);
	make_report(&m[0], &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-1", .session = 7, .seq = 1});
	make_report(&m[1], &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-1", .session = 7, .seq = 2});
	make_report(
	    &m[2], &f.ka,
	    &(struct rpt_spec){.pod = "alpha-worker-1", .ready = 1, .session = 7, .seq = 3});
	/* 0: fresh; 1: the same bytes again (resend); 2: seq 2, same content; 3: seq 3, ready. */
	a.nmsg = 4;
	a.msg[0] = a.msg[1] = (unsigned char *)m[0].data;
	a.len[0] = a.len[1] = m[0].len;
	a.msg[2] = (unsigned char *)m[1].data;
	a.len[2] = m[1].len;
	a.msg[3] = (unsigned char *)m[2].data;
	a.len[3] = m[2].len;
	run_agent(&f, &a);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(a.rv[i], 0);

	/* The first answer carries the provider's content. */
	memset(&rep, 0, sizeof(rep));
	if (open_reply(&f.ka, a.reply[0], a.rlen[0], 7, 1, &rep) == 0) {
		CHECK_EQ_INT(rep.drain, 0);
		CHECK_EQ_INT(rep.proxy_expected, 1);
		CHECK_EQ_STR(rep.serve_config_hash, "hash-alpha-worker-1");
		CHECK_EQ_STR(rep.serve_config, "{\"applications\":[]}");
		CHECK_EQ_STR(rep.stop_job, "job-1");
		CHECK_EQ_INT(rep.heartbeat_ms, 5000);
	}
	rw_reply_fini(&rep);
	/* The resend got exactly the same bytes. */
	CHECK(a.reply[0] && a.reply[1] && a.rlen[0] == a.rlen[1] &&
	      memcmp(a.reply[0], a.reply[1], a.rlen[0]) == 0);
	/* Seq 2 (unchanged content) is answered anew but calls no on_report. */
	memset(&rep, 0, sizeof(rep));
	if (open_reply(&f.ka, a.reply[2], a.rlen[2], 7, 2, &rep) == 0)
		CHECK_EQ_STR(rep.stop_job, "job-2");
	rw_reply_fini(&rep);
	memset(&rep, 0, sizeof(rep));
	if (open_reply(&f.ka, a.reply[3], a.rlen[3], 7, 3, &rep) == 0)
		CHECK_EQ_STR(rep.stop_job, "job-3");
	rw_reply_fini(&rep);

	CHECK_EQ_INT(f.seen.reports, 2);     /* first report, then the ready change */
	CHECK_EQ_INT(f.seen.reports_new, 1); /* only the first had no old report */
	CHECK_EQ_INT(f.seen.last_old_ready, 0);
	CHECK_EQ_INT(f.seen.replies, 3); /* the resend did not ask the provider */
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.reports, 3);
	CHECK_EQ_INT(st.changes, 2);
	CHECK_EQ_INT(st.resends, 1);
	CHECK(st.unchanged_fast == 1); /* seq 2: the same payload bytes, not decoded again */
	CHECK_EQ_INT(st.replies, 4);
	CHECK_EQ_INT(st.refused_total, 0);
	CHECK_EQ_INT(st.pods, 1);
	CHECK_EQ_INT(st.agents_connected, 1);

	int stale = -1;
	const struct rw_report *r = rw_hub_pod(f.hub, NS, "alpha-worker-1", &stale);
	CHECK(r != NULL);
	if (r)
		CHECK_EQ_INT(r->ready, 1);
	CHECK_EQ_INT(stale, 0);
	struct rw_hub_cluster_stats cs;
	CHECK_EQ_INT(rw_hub_cluster_stats(f.hub, NS, "alpha", &cs), 0);
	CHECK_EQ_INT(cs.pods, 1);
	CHECK_EQ_INT(cs.ready, 1);
	CHECK(cs.head == NULL);
	CHECK_EQ_INT(rw_hub_cluster_stats(f.hub, NS, "gamma", &cs), -ENOENT);

	/* A new pod incarnation (same name, new UID and session) is a new pod. */
	agent_free(&a);
	make_report(
	    &m[3], &f.ka,
	    &(struct rpt_spec){
		.pod = "alpha-worker-1", .uid = "uid-2", .ready = 1, .session = 8, .seq = 1});
	a.nmsg = 1;
	a.msg[0] = (unsigned char *)m[3].data;
	a.len[0] = m[3].len;
	run_agent(&f, &a);
	CHECK_EQ_INT(a.rv[0], 0);
	CHECK_EQ_INT(f.seen.reports, 3);
	CHECK_EQ_INT(f.seen.reports_new, 2);

	agent_free(&a);
	for (int i = 0; i < 4; i++)
		rw_buf_fini(&m[i]);
	fx_fini(&f);
}

static void
t_refusals(void)
{
	struct fixture f;
	struct agent a = {0};
	enum { N = 9 };
	struct rw_buf m[N];
	struct rw_hub_stats st;

	if (fx_init(&f, 60000, 0))
		return;
	for (int i = 0; i < N; i++)
		rw_buf_init(&m[i], RW_WIRE_MAX_MSG);
	/* m[0], m[1]: accepted seq 5 of pod alpha-worker-2 (sets the replay state). */
	make_report(&m[0], &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-2", .session = 9, .seq = 5});
	/* m[1]: an unknown key id. */
	make_report(&m[1], &f.kx,
		    &(struct rpt_spec){.pod = "alpha-worker-2", .session = 9, .seq = 6});
	/* m[2]: a wrong key presenting alpha's key id: MAC mismatch. */
	{
		struct rw_wire_key forged = f.kx;
		forged.id = f.ka.id;
		make_report(&m[2], &forged,
			    &(struct rpt_spec){.pod = "alpha-worker-2", .session = 9, .seq = 6});
	}
	/* m[3]: version 2. */
	make_report(&m[3], &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-2", .session = 9, .seq = 6});
	m[3].data[5] = 2;
	/* m[4]: an old seq of the current session: replay. */
	make_report(&m[4], &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-2", .session = 9, .seq = 4});
	/* m[5]: alpha's key speaking for beta: scope. */
	make_report(
	    &m[5], &f.ka,
	    &(struct rpt_spec){.pod = "beta-worker-1", .cluster = "beta", .session = 3, .seq = 1});
	/* m[6]: a timestamp 10 minutes old: clock. */
	make_report(&m[6], &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-3",
				       .session = 4,
				       .seq = 1,
				       .ts = rw_clock_wall_ms() - 600000});
	/* m[7]: a payload that does not decode. */
	{
		struct rw_wire_hdr h = {
		    .type = RW_WIRE_REPORT, .session = 5, .seq = 1, .ts_ms = rw_clock_wall_ms()};
		CHECK_EQ_INT(rw_wire_seal(&f.ka, &h, "{\"namespace\":1}", 15, &m[7]), 0);
	}
	/* m[8]: not an envelope at all. */
	rw_buf_puts(&m[8], "hello, this is not a raywarden message at all; nothing to see here");

	/* The accepted report first, its answer waited for as long as a loaded machine needs. */
	a.nmsg = 1;
	a.timeout_ms = 5000;
	a.msg[0] = (unsigned char *)m[0].data;
	a.len[0] = m[0].len;
	run_agent(&f, &a);
	CHECK_EQ_INT(a.rv[0], 0);
	agent_free(&a);
	/* The refusals that keep the connection (version, replay, clock) travel on one socket,
	 * so each reaches the hub exactly once, in order. None is answered: the wait is for the
	 * last one's count. */
	const int keep[] = {3, 4, 6};
	a.nmsg = 3;
	a.timeout_ms = 300;
	for (int i = 0; i < a.nmsg; i++) {
		a.msg[i] = (unsigned char *)m[keep[i]].data;
		a.len[i] = m[keep[i]].len;
	}
	run_agent(&f, &a);
	for (int i = 0; i < a.nmsg; i++) {
		CHECK_EQ_INT(a.rv[i], NNG_ETIMEDOUT);
		CHECK(a.reply[i] == NULL);
	}
	CHECK(wait_refused(&f, RW_HUB_REFUSED_CLOCK, 1, 10000) == 1);
	/* Unknown key, bad MAC, scope, payload and garbage each close their connection. */
	const int closing[] = {1, 2, 5, 7, 8};
	for (size_t i = 0; i < sizeof(closing) / sizeof(closing[0]); i++)
		CHECK_EQ_INT(send_each(&f, &m[closing[i]], 1, 2000), 0);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.reports, 1);
	CHECK_EQ_INT(st.replies, 1);
	static const enum rw_hub_refusal once[] = {
	    RW_HUB_REFUSED_UNKNOWN_KEY, RW_HUB_REFUSED_MAC,	 RW_HUB_REFUSED_VERSION,
	    RW_HUB_REFUSED_REPLAY,	RW_HUB_REFUSED_SCOPE,	 RW_HUB_REFUSED_CLOCK,
	    RW_HUB_REFUSED_PAYLOAD,	RW_HUB_REFUSED_MALFORMED};
	for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
		if (st.refused[once[i]] != 1)
			fprintf(stderr, "  refusal %s: %" PRIu64 "\n", rw_hub_refusal_name(once[i]),
				st.refused[once[i]]);
		CHECK(st.refused[once[i]] == 1);
	}
	CHECK(st.refused_total == 8);
	CHECK(st.closed[RW_HUB_CLOSE_REFUSED] == 5);
	CHECK_EQ_INT(st.pods, 1); /* nothing refused created a pod */
	CHECK_EQ_INT(f.seen.reports, 1);
	CHECK_EQ_INT(f.seen.replies, 1);
	CHECK_EQ_STR(rw_hub_refusal_name(RW_HUB_REFUSED_SCOPE), "scope");

	/* Forgetting alpha's key drops its pods; its agents are now unknown. */
	agent_free(&a);
	make_report(&m[0], &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-2", .session = 9, .seq = 7});
	CHECK_EQ_INT(rw_hub_key_remove(f.hub, NS, "alpha"), 0);
	CHECK_EQ_INT(rw_hub_key_remove(f.hub, NS, "alpha"), -ENOENT);
	a.nmsg = 1;
	a.timeout_ms = 400;
	a.msg[0] = (unsigned char *)m[0].data;
	a.len[0] = m[0].len;
	run_agent(&f, &a);
	CHECK_EQ_INT(a.rv[0], NNG_ETIMEDOUT);
	uint64_t unknown_before = st.refused[RW_HUB_REFUSED_UNKNOWN_KEY];
	CHECK(wait_refused(&f, RW_HUB_REFUSED_UNKNOWN_KEY, unknown_before + 1, 10000) ==
	      unknown_before + 1);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.pods, 0);
	CHECK_EQ_INT(st.keys, 1);

	agent_free(&a);
	for (int i = 0; i < N; i++)
		rw_buf_fini(&m[i]);
	fx_fini(&f);
}

/* Two scopes whose keys share a key id: the hub tries both. */
static void
t_key_id_collision(void)
{
	struct fixture f;
	struct agent a = {0};
	struct rw_buf m[2];
	struct rw_hub_stats st;
	struct rw_wire_key k1, k2;

	if (fx_init(&f, 60000, 0))
		return;
	k1 = f.ka;
	k2 = f.kb;
	k1.id = k2.id = 0x11111111;
	CHECK_EQ_INT(rw_hub_key_add(f.hub, "other", "c1", &k1), 0);
	CHECK_EQ_INT(rw_hub_key_add(f.hub, "other", "c2", &k2), 0);
	rw_buf_init(&m[0], RW_WIRE_MAX_MSG);
	rw_buf_init(&m[1], RW_WIRE_MAX_MSG);
	make_report(&m[0], &k1,
		    &(struct rpt_spec){
			.ns = "other", .cluster = "c1", .pod = "c1-head", .session = 1, .seq = 1});
	make_report(&m[1], &k2,
		    &(struct rpt_spec){
			.ns = "other", .cluster = "c2", .pod = "c2-head", .session = 2, .seq = 1});
	a.nmsg = 2;
	a.msg[0] = (unsigned char *)m[0].data;
	a.len[0] = m[0].len;
	a.msg[1] = (unsigned char *)m[1].data;
	a.len[1] = m[1].len;
	run_agent(&f, &a);
	CHECK_EQ_INT(a.rv[0], 0);
	CHECK_EQ_INT(a.rv[1], 0);
	struct rw_reply rep;
	memset(&rep, 0, sizeof(rep));
	if (open_reply(&k2, a.reply[1], a.rlen[1], 2, 1, &rep) == 0)
		CHECK_EQ_STR(rep.serve_config_hash, "hash-c2-head");
	rw_reply_fini(&rep);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.reports, 2);
	CHECK_EQ_INT(st.refused_total, 0);
	CHECK_EQ_INT(st.keys, 4);
	agent_free(&a);
	rw_buf_fini(&m[0]);
	rw_buf_fini(&m[1]);
	fx_fini(&f);
}

/* ---- many agents ---- */

#define NAGENTS 200
#define NREPORTS 20

struct load_agent {
	const char *url;
	const struct rw_wire_key *key;
	int idx;
	int ok, bad;
	double lat[NREPORTS];
	atomic_int *done;
};

static void *
load_main(void *arg)
{
	struct load_agent *la = arg;
	struct rw_buf m;
	char pod[64];
	nng_socket s;
	int rv;
	int alpha = la->idx < NAGENTS / 2;

	rw_buf_init(&m, RW_WIRE_MAX_MSG);
	snprintf(pod, sizeof(pod), "%s-%s-%d", alpha ? "alpha" : "beta",
		 la->idx % (NAGENTS / 2) == 0 ? "head" : "worker", la->idx);
	rv = nng_req0_open(&s);
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 60000);
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000);
	if (rv == 0)
		rv = nng_dial(s, la->url, NULL, 0);
	for (int i = 0; i < NREPORTS && rv == 0; i++) {
		struct rpt_spec sp = {.cluster = alpha ? "alpha" : "beta",
				      .pod = pod,
				      .node_type = la->idx % (NAGENTS / 2) == 0 ? "head" : "worker",
				      .ready = i % 2,
				      .session = 1000 + (uint64_t)la->idx,
				      .seq = (uint64_t)i + 1};
		make_report(&m, la->key, &sp);
		double t0 = mono_ms();
		void *buf = NULL;
		size_t n = 0;
		if (nng_send(s, m.data, m.len, 0) == 0 &&
		    nng_recv(s, &buf, &n, NNG_FLAG_ALLOC) == 0) {
			la->lat[la->ok++] = mono_ms() - t0;
			nng_free(buf, n);
		} else {
			la->bad++;
		}
	}
	if (rv)
		la->bad = NREPORTS;
	else
		nng_close(s);
	rw_buf_fini(&m);
	atomic_fetch_add(la->done, 1);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void
t_many_agents(void)
{
	struct fixture f;
	static struct load_agent la[NAGENTS];
	static pthread_t th[NAGENTS];
	static double all[NAGENTS * NREPORTS];
	atomic_int done = 0;
	struct rw_hub_stats st;

	if (fx_init(&f, 60000, 0))
		return;
	double t0 = mono_ms();
	int started = 0;
	for (int i = 0; i < NAGENTS; i++) {
		la[i] = (struct load_agent){
		    .url = f.url, .key = i < NAGENTS / 2 ? &f.ka : &f.kb, .idx = i, .done = &done};
		if (pthread_create(&th[i], NULL, load_main, &la[i]) != 0)
			break;
		started++;
	}
	CHECK_EQ_INT(started, NAGENTS);
	double end = mono_ms() + 60000;
	while (atomic_load(&done) < started && mono_ms() < end)
		uv_run(&f.loop, UV_RUN_ONCE);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	uv_run(&f.loop, UV_RUN_NOWAIT);
	double wall = mono_ms() - t0;

	int ok = 0, bad = 0, n = 0;
	for (int i = 0; i < started; i++) {
		ok += la[i].ok;
		bad += la[i].bad;
		for (int j = 0; j < la[i].ok; j++)
			all[n++] = la[i].lat[j];
	}
	CHECK_EQ_INT(ok, NAGENTS * NREPORTS);
	CHECK_EQ_INT(bad, 0);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.reports, NAGENTS * NREPORTS);
	CHECK_EQ_INT(st.replies, NAGENTS * NREPORTS);
	CHECK_EQ_INT(st.changes, NAGENTS * NREPORTS); /* ready flips on every report */
	CHECK_EQ_INT(st.refused_total, 0);
	CHECK_EQ_INT(st.pods, NAGENTS);
	CHECK_EQ_INT(st.agents_connected, NAGENTS);
	CHECK_EQ_INT(f.seen.replies, NAGENTS * NREPORTS);

	struct rw_hub_cluster_stats cs;
	CHECK_EQ_INT(rw_hub_cluster_stats(f.hub, NS, "alpha", &cs), 0);
	CHECK_EQ_INT(cs.pods, NAGENTS / 2);
	CHECK_EQ_INT(cs.ready, NAGENTS / 2); /* the last report (i = 19) said ready */
	CHECK_EQ_INT(cs.not_ready, 0);
	CHECK(cs.head != NULL);
	if (cs.head)
		CHECK_EQ_STR(cs.head->pod, "alpha-head-0");
	CHECK_EQ_INT(cs.head_stale, 0);

	if (n > 0) {
		qsort(all, (size_t)n, sizeof(all[0]), cmp_double);
		printf("  %d agents x %d reports: %d answered in %.0f ms (%.0f reports/s); latency "
		       "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		       NAGENTS, NREPORTS, n, wall, n / (wall / 1000.0), all[n / 2],
		       all[(n * 99) / 100], all[n - 1]);
	}
	fx_fini(&f);
}

static void
t_stale(void)
{
	struct fixture f;
	struct agent a = {0};
	struct rw_buf m[2];
	struct rw_hub_stats st;

	if (fx_init(&f, 200, 0))
		return;
	rw_buf_init(&m[0], RW_WIRE_MAX_MSG);
	rw_buf_init(&m[1], RW_WIRE_MAX_MSG);
	make_report(
	    &m[0], &f.ka,
	    &(struct rpt_spec){
		.pod = "alpha-head-x", .node_type = "head", .ready = 1, .session = 1, .seq = 1});
	make_report(
	    &m[1], &f.ka,
	    &(struct rpt_spec){
		.pod = "alpha-head-x", .node_type = "head", .ready = 1, .session = 1, .seq = 2});
	a.nmsg = 1;
	a.msg[0] = (unsigned char *)m[0].data;
	a.len[0] = m[0].len;
	run_agent(&f, &a);
	CHECK_EQ_INT(a.rv[0], 0);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.agents_connected, 1);
	CHECK_EQ_INT(f.seen.stale, 0);

	/* Wait (bounded) for the sweep to declare the pod stale. */
	double t0 = mono_ms(), end = t0 + 5000;
	while (f.seen.stale == 0 && mono_ms() < end)
		uv_run(&f.loop, UV_RUN_ONCE);
	double took = mono_ms() - t0;
	CHECK_EQ_INT(f.seen.stale, 1);
	CHECK_EQ_STR(f.seen.last_stale, "alpha-head-x");
	CHECK(took >= 150 && took < 2000);
	printf("  stale after %.0f ms (stale-after 200 ms, sweep 20 ms)\n", took);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.agents_connected, 0);
	CHECK_EQ_INT(st.pods, 1);
	struct rw_hub_cluster_stats cs;
	CHECK_EQ_INT(rw_hub_cluster_stats(f.hub, NS, "alpha", &cs), 0);
	CHECK_EQ_INT(cs.stale, 1);
	CHECK_EQ_INT(cs.ready, 0);
	CHECK(cs.head != NULL);
	CHECK_EQ_INT(cs.head_stale, 1);

	/* It reports again (same content): on_report tells the reconciler it is back. */
	int before = f.seen.reports;
	agent_free(&a);
	a.nmsg = 1;
	a.msg[0] = (unsigned char *)m[1].data;
	a.len[0] = m[1].len;
	run_agent(&f, &a);
	CHECK_EQ_INT(a.rv[0], 0);
	CHECK_EQ_INT(f.seen.reports, before + 1);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.agents_connected, 1);
	CHECK(st.unchanged_fast == 1); /* back with the same bytes: the fast path said so too */

	agent_free(&a);
	rw_buf_fini(&m[0]);
	rw_buf_fini(&m[1]);
	fx_fini(&f);
}

/* Run the loop until pred(f) or ms pass; returns the time taken. */
static double
wait_until(struct fixture *f, int (*pred)(struct fixture *), double ms)
{
	double t0 = mono_ms(), end = t0 + ms;
	while (!pred(f) && mono_ms() < end)
		uv_run(&f->loop, UV_RUN_ONCE);
	return mono_ms() - t0;
}

static int
one_stale(struct fixture *f)
{
	return f->seen.stale >= 1;
}

static int
two_stale(struct fixture *f)
{
	return f->seen.stale >= 2;
}

static int
never(struct fixture *f)
{
	(void)f;
	return 0;
}

static void
t_disconnect(void)
{
	struct fixture f;
	struct agent a = {0}, b = {0};
	struct rw_buf m[4];
	struct rw_hub_stats st;
	struct rw_hub_opts o = {0};
	int stale = -1;

	o.stale_after_ms = 60000;
	o.head_stale_after_ms = 60000;
	o.disconnect_grace_ms = 300;
	o.sweep_ms = 20;
	if (fx_init_opts(&f, &o))
		return;
	for (int i = 0; i < 4; i++) {
		rw_buf_init(&m[i], RW_WIRE_MAX_MSG);
		make_report(&m[i], &f.ka,
			    &(struct rpt_spec){.pod = "alpha-head-d",
					       .node_type = "head",
					       .ready = 1,
					       .session = 3,
					       .seq = (uint64_t)i + 1});
	}
	/* The agent reports, then its connection closes (run_agent closes it). */
	a.nmsg = 1;
	a.msg[0] = (unsigned char *)m[0].data;
	a.len[0] = m[0].len;
	/* t0 before the agent runs: its connection closes after t0, so the pod
	 * cannot be stale before t0 + grace, whatever the machine's load. */
	double t0 = mono_ms();
	run_agent(&f, &a);
	CHECK_EQ_INT(a.rv[0], 0);
	double ran = mono_ms() - t0;
	wait_until(&f, one_stale, 5000);
	double took = mono_ms() - t0;
	CHECK_EQ_INT(f.seen.stale, 1);
	CHECK_EQ_STR(f.seen.last_stale, "alpha-head-d");
	/* Grace 300 ms, sweep 20 ms; far below the 60 s heartbeat staleness. */
	CHECK(took >= 300 && took < ran + 2000);
	printf("  disconnected pod stale %.0f ms after its agent finished (grace 300 ms)\n",
	       took - ran);
	rw_hub_stats(f.hub, &st);
	CHECK(st.disconnects == 1);
	CHECK_EQ_INT(st.agents_connected, 0);
	struct rw_hub_cluster_stats cs;
	CHECK_EQ_INT(rw_hub_cluster_stats(f.hub, NS, "alpha", &cs), 0);
	CHECK_EQ_INT(cs.head_stale, 1);

	/* It reconnects (a new connection) and reports: back at once. */
	int before = f.seen.reports;
	agent_free(&a);
	a.nmsg = 1;
	a.msg[0] = (unsigned char *)m[1].data;
	a.len[0] = m[1].len;
	start_holding_agent(&f, &a);
	CHECK_EQ_INT(a.rv[0], 0);
	CHECK_EQ_INT(f.seen.reports, before + 1);
	CHECK(rw_hub_pod(f.hub, NS, "alpha-head-d", &stale) != NULL);
	CHECK_EQ_INT(stale, 0);

	/* A second connection takes over (the agent reconnected before the old
	 * connection's close was seen): closing the old one changes nothing. */
	b.nmsg = 1;
	b.msg[0] = (unsigned char *)m[2].data;
	b.len[0] = m[2].len;
	start_holding_agent(&f, &b);
	CHECK_EQ_INT(b.rv[0], 0);
	agent_release(&f, &a);
	wait_until(&f, never, 900); /* three grace periods */
	CHECK_EQ_INT(f.seen.stale, 1);
	CHECK(rw_hub_pod(f.hub, NS, "alpha-head-d", &stale) != NULL);
	CHECK_EQ_INT(stale, 0);

	/* Now the live connection closes too. */
	agent_release(&f, &b);
	took = wait_until(&f, two_stale, 5000);
	CHECK_EQ_INT(f.seen.stale, 2);
	CHECK(took < 2000);
	rw_hub_stats(f.hub, &st);
	CHECK(st.disconnects == 2);

	agent_free(&a);
	agent_free(&b);
	for (int i = 0; i < 4; i++)
		rw_buf_fini(&m[i]);
	fx_fini(&f);
}

static void
t_head_heartbeat(void)
{
	struct fixture f;
	struct agent a = {0}, w = {0};
	struct rw_buf m[5];
	struct rw_hub_opts o = {0};
	struct rw_reply rep;
	int stale = -1;

	o.stale_after_ms = 60000;
	o.head_heartbeat_ms = 200;
	o.head_stale_after_ms = 500;
	o.disconnect_grace_ms = 60000;
	o.sweep_ms = 20;
	if (fx_init_opts(&f, &o))
		return;
	for (int i = 0; i < 5; i++)
		rw_buf_init(&m[i], RW_WIRE_MAX_MSG);
	/* head-1 reports twice (the second after being told the head heartbeat),
	 * head-2 once; a worker twice. Every connection stays open. */
	make_report(
	    &m[0], &f.ka,
	    &(struct rpt_spec){.pod = "alpha-head-1", .node_type = "head", .session = 1, .seq = 1});
	make_report(
	    &m[1], &f.ka,
	    &(struct rpt_spec){.pod = "alpha-head-2", .node_type = "head", .session = 2, .seq = 1});
	make_report(
	    &m[2], &f.ka,
	    &(struct rpt_spec){.pod = "alpha-head-1", .node_type = "head", .session = 1, .seq = 2});
	make_report(&m[3], &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-h", .session = 4, .seq = 1});
	make_report(&m[4], &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-h", .session = 4, .seq = 2});
	a.nmsg = 3;
	for (int i = 0; i < 3; i++) {
		a.msg[i] = (unsigned char *)m[i].data;
		a.len[i] = m[i].len;
	}
	w.nmsg = 2;
	w.msg[0] = (unsigned char *)m[3].data;
	w.len[0] = m[3].len;
	w.msg[1] = (unsigned char *)m[4].data;
	w.len[1] = m[4].len;
	start_holding_agent(&f, &w);
	double t0 = mono_ms(); /* head-1's last report is after t0 */
	start_holding_agent(&f, &a);
	double t1 = mono_ms();
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(a.rv[i], 0);
	/* Heads are asked for the head heartbeat (the provider said 5000). */
	memset(&rep, 0, sizeof(rep));
	if (open_reply(&f.ka, a.reply[0], a.rlen[0], 1, 1, &rep) == 0)
		CHECK_EQ_INT(rep.heartbeat_ms, 200);
	rw_reply_fini(&rep);
	memset(&rep, 0, sizeof(rep));
	if (open_reply(&f.ka, w.reply[1], w.rlen[1], 4, 2, &rep) == 0)
		CHECK_EQ_INT(rep.heartbeat_ms, 5000);
	rw_reply_fini(&rep);

	/* head-1 runs on the 200 ms heartbeat: stale after 500 ms of silence. */
	wait_until(&f, one_stale, 5000);
	double took = mono_ms() - t0;
	CHECK_EQ_INT(f.seen.stale, 1);
	CHECK_EQ_STR(f.seen.last_stale, "alpha-head-1");
	CHECK(took >= 500 && took < (t1 - t0) + 2500);
	printf("  silent head stale %.0f ms after its agent finished (head staleness 500 ms)\n",
	       mono_ms() - t1);
	/* head-2 was never confirmed on the short heartbeat, the worker never is. */
	CHECK(rw_hub_pod(f.hub, NS, "alpha-head-2", &stale) != NULL);
	CHECK_EQ_INT(stale, 0);
	CHECK(rw_hub_pod(f.hub, NS, "alpha-worker-h", &stale) != NULL);
	CHECK_EQ_INT(stale, 0);
	struct rw_hub_cluster_stats cs;
	CHECK_EQ_INT(rw_hub_cluster_stats(f.hub, NS, "alpha", &cs), 0);
	CHECK_EQ_INT(cs.stale, 1);

	agent_release(&f, &a);
	agent_release(&f, &w);
	agent_free(&a);
	agent_free(&w);
	for (int i = 0; i < 5; i++)
		rw_buf_fini(&m[i]);
	fx_fini(&f);
}

static void
t_oversize(void)
{
	struct fixture f;
	struct rw_hub_stats st;
	struct rw_buf ok, reply;
	size_t big_len = RW_WIRE_MAX_MSG + 4096;
	unsigned char *big = calloc(1, big_len);

	if (!big || fx_init(&f, 60000, 0)) {
		free(big);
		return;
	}
	/* A plausible header, then far too many bytes. */
	memcpy(big, "RWP\x01\x00\x01\x00\x01", 8);
	rw_buf_init(&ok, RW_WIRE_MAX_MSG);
	rw_buf_init(&reply, RW_WIRE_MAX_MSG);
	make_report(&ok, &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-9", .session = 1, .seq = 1});
	CHECK_EQ_INT(raw_request(&f, big, big_len, 2000, NULL), 0);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.reports, 0);
	CHECK_EQ_INT(st.replies, 0);
	CHECK_EQ_INT(st.refused_total, 0); /* the frame length alone closed it */
	CHECK_EQ_INT(st.closed[RW_HUB_CLOSE_PROTOCOL], 1);

	/* The hub still serves the next agent. */
	CHECK_EQ_INT(raw_request(&f, ok.data, ok.len, 2000, &reply), 1);
	struct rw_reply rep;
	memset(&rep, 0, sizeof(rep));
	CHECK_EQ_INT(open_reply(&f.ka, (const unsigned char *)reply.data, reply.len, 1, 1, &rep),
		     0);
	rw_reply_fini(&rep);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.reports, 1);

	rw_buf_fini(&ok);
	rw_buf_fini(&reply);
	free(big);
	fx_fini(&f);
}

/* A large message arrives in many reads: reassembled, refused, and the
 * connection closed; the agent's next connection is served. */
static void
t_large_frame(void)
{
	struct fixture f;
	struct rw_hub_stats st;
	struct rw_buf ok;
	size_t big_len = 300 * 1024;
	unsigned char *big = malloc(big_len);

	if (!big || fx_init(&f, 60000, 0)) {
		free(big);
		return;
	}
	for (size_t i = 0; i < big_len; i++)
		big[i] = (unsigned char)('a' + i % 26);
	rw_buf_init(&ok, RW_WIRE_MAX_MSG);
	make_report(&ok, &f.ka,
		    &(struct rpt_spec){.pod = "alpha-worker-l", .session = 1, .seq = 1});
	CHECK_EQ_INT(raw_request(&f, big, big_len, 2000, NULL), 0); /* refused: no answer */
	CHECK_EQ_INT(raw_request(&f, ok.data, ok.len, 2000, NULL), 1);
	rw_hub_stats(f.hub, &st);
	/* Refused by its first bytes, before the body was buffered, and closed. */
	CHECK_EQ_INT(st.refused[RW_HUB_REFUSED_MALFORMED], 1);
	CHECK_EQ_INT(st.closed[RW_HUB_CLOSE_REFUSED], 1);
	CHECK_EQ_INT(st.reports, 1);
	CHECK_EQ_INT((int)st.partial_bytes, 0);

	rw_buf_fini(&ok);
	free(big);
	fx_fini(&f);
}

/* A peer that is not an nng REQ socket gets the REP header, then the connection closes. */
static void
t_wrong_peer(void)
{
	struct fixture f;
	struct sockaddr_in sa;
	unsigned char got[16];
	size_t n = 0;
	int eof = 0, port = 0;

	if (fx_init(&f, 60000, 0))
		return;
	const char *colon = strrchr(f.url, ':');
	port = colon ? atoi(colon + 1) : 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	/* A REP peer (0x31) talking to the REP hub. */
	static const unsigned char rep_hdr[8] = {0, 'S', 'P', 0, 0, 0x31, 0, 0};
	CHECK(send(fd, rep_hdr, sizeof(rep_hdr), 0) == (ssize_t)sizeof(rep_hdr));
	double end = mono_ms() + 3000;
	while (!eof && mono_ms() < end) {
		uv_run(&f.loop, UV_RUN_NOWAIT);
		ssize_t r = recv(fd, got + n, sizeof(got) - n, MSG_DONTWAIT);
		if (r == 0)
			eof = 1;
		else if (r > 0)
			n += (size_t)r;
		else
			uv_sleep(2);
	}
	CHECK(eof);
	CHECK_EQ_INT((int)n, 8);
	CHECK(n == 8 && memcmp(got, rep_hdr, 8) == 0); /* the hub said who it is */
	struct rw_hub_stats st;
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.reports, 0);
	close(fd);
	fx_fini(&f);
}

/* A silent peer and one that starts a frame and stops are closed at their deadlines. */
static void
t_deadlines(void)
{
	struct fixture f;
	struct rw_hub_opts o = {0};
	struct rw_hub_stats st;
	o.handshake_timeout_ms = 200;
	o.frame_timeout_ms = 300;
	if (fx_init_opts(&f, &o))
		return;
	int silent = raw_connect(&f), slow = raw_connect(&f);
	CHECK(silent >= 0 && slow >= 0);
	unsigned char part[8 + 4 + 10] = {0, 0, 0, 0, 0, 0, 3, 232, 0x80, 0, 0, 1, 'R', 'W'};
	CHECK_EQ_INT(raw_send(&f, slow, req_hdr, 8), 0);
	double t0 = mono_ms();
	CHECK_EQ_INT(raw_send(&f, slow, part, sizeof(part)), 0);
	double a = wait_closed(&f, silent, 10000);
	double b = wait_closed(&f, slow, 10000);
	if (b >= 0)
		b += mono_ms() - t0 - b; /* from the frame's start */
	fprintf(stderr, "  silent peer closed after %.0f ms, half a frame after %.0f ms\n", a, b);
	CHECK(a >= 150); /* not before its deadline (200 ms, connect time aside) */
	CHECK(b >= 250);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.closed[RW_HUB_CLOSE_HANDSHAKE_TIMEOUT], 1);
	CHECK_EQ_INT(st.closed[RW_HUB_CLOSE_FRAME_TIMEOUT], 1);
	CHECK_EQ_INT((int)st.partial_bytes, 0);
	close(silent);
	close(slow);
	fx_fini(&f);
}

/*
 * 200 peers each holding a partial 1 MiB frame (a known key id, so the
 * peek lets it through): partial bytes stay within the budget, and an
 * agent's report is still answered.
 */
#define NHOLD 200
static void
t_budget(void)
{
	struct fixture f;
	struct rw_hub_opts o = {0};
	struct rw_hub_stats st;
	static int fds[NHOLD];
	size_t chunk = 96 * 1024, peak = 0;
	unsigned char *body = calloc(1, chunk);
	o.partial_budget = 4u << 20;
	if (!body || fx_init_opts(&f, &o)) {
		free(body);
		return;
	}
	/* Frame header of a 1 MiB message whose envelope names alpha's key id. */
	unsigned char *h = body;
	size_t mlen = RW_WIRE_MAX_MSG;
	for (int i = 0; i < 8; i++)
		h[i] = (unsigned char)((uint64_t)(mlen + 4) >> (56 - 8 * i));
	h[8] = 0x80;
	h[11] = 1;
	memcpy(h + 12, "RWP\x01\x00\x01\x00\x01\x00\x00\x00\x00", 12);
	h[24] = (unsigned char)(f.ka.id >> 24);
	h[25] = (unsigned char)(f.ka.id >> 16);
	h[26] = (unsigned char)(f.ka.id >> 8);
	h[27] = (unsigned char)f.ka.id;
	for (int i = 0; i < NHOLD; i++) {
		fds[i] = raw_connect(&f);
		CHECK(fds[i] >= 0);
		if (fds[i] < 0)
			continue;
		if (raw_send(&f, fds[i], req_hdr, 8) != 0 ||
		    raw_send(&f, fds[i], body, chunk) != 0) {
			/* closed by the hub meanwhile: fine */
		}
		rw_hub_stats(f.hub, &st);
		if (st.partial_bytes > peak)
			peak = st.partial_bytes;
	}
	for (int i = 0; i < 50; i++) {
		uv_run(&f.loop, UV_RUN_NOWAIT);
		rw_hub_stats(f.hub, &st);
		if (st.partial_bytes > peak)
			peak = st.partial_bytes;
	}
	rw_hub_stats(f.hub, &st);
	fprintf(stderr,
		"  %d peers x %zu KiB of 1 MiB frames: partial bytes peak %zu KiB (budget %zu "
		"KiB), %" PRIu64 " closed for the budget\n",
		NHOLD, chunk / 1024, peak / 1024, (size_t)(4u << 20) / 1024,
		st.closed[RW_HUB_CLOSE_BUDGET]);
	CHECK(peak <= (4u << 20));
	CHECK(st.closed[RW_HUB_CLOSE_BUDGET] > 0);
	/* An agent is still served meanwhile. */
	struct agent a = {0};
	struct rw_buf m;
	rw_buf_init(&m, RW_WIRE_MAX_MSG);
	make_report(&m, &f.ka, &(struct rpt_spec){.pod = "alpha-worker-b", .session = 1, .seq = 1});
	a.nmsg = 1;
	a.msg[0] = (unsigned char *)m.data;
	a.len[0] = m.len;
	run_agent(&f, &a);
	CHECK_EQ_INT(a.rv[0], 0);
	agent_free(&a);
	rw_buf_fini(&m);
	for (int i = 0; i < NHOLD; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(body);
	fx_fini(&f);
}

/*
 * Over the budget, a small partial frame (an agent's report straddling two
 * reads) closes the peer holding the oldest partial frame; a frame that
 * would grow past 64 KiB is refused instead.
 */
static void
t_budget_policy(void)
{
	struct fixture f;
	struct rw_hub_opts o = {0};
	struct rw_hub_stats st;
	size_t big = 100 * 1024;
	unsigned char *body = calloc(1, big);
	o.partial_budget = 256 * 1024;
	if (!body || fx_init_opts(&f, &o)) {
		free(body);
		return;
	}
	for (int i = 0; i < 8; i++)
		body[i] = (unsigned char)((uint64_t)(200 * 1024) >> (56 - 8 * i));
	body[8] = 0x80;
	body[11] = 1;
	memcpy(body + 12, "RWP\x01\x00\x01\x00\x01\x00\x00\x00\x00", 12);
	for (int i = 0; i < 4; i++)
		body[24 + i] = (unsigned char)(f.ka.id >> (24 - 8 * i));
	int old = raw_connect(&f), second = raw_connect(&f), small = raw_connect(&f),
	    late = raw_connect(&f);
	CHECK(old >= 0 && second >= 0 && small >= 0 && late >= 0);
	raw_send(&f, old, req_hdr, 8);
	raw_send(&f, old, body, big);
	raw_send(&f, second, req_hdr, 8);
	raw_send(&f, second, body, big);
	for (int i = 0; i < 20; i++)
		uv_run(&f.loop, UV_RUN_NOWAIT);
	rw_hub_stats(f.hub, &st);
	/* Two buffers of ~128 KiB: the budget is (nearly) full. */
	CHECK(st.partial_bytes > 250 * 1024 && st.partial_bytes <= 256 * 1024);
	/* A report of 1000 bytes, 600 of them here: room is made by closing the oldest. */
	unsigned char rep[8 + 600] = {0, 0, 0, 0, 0, 0, 3, 232, 0x80, 0, 0, 1, 'R', 'W', 'P', 1};
	for (int i = 0; i < 4; i++)
		rep[24 + i] = (unsigned char)(f.ka.id >> (24 - 8 * i));
	rep[17] = 1;
	rep[19] = 1;
	raw_send(&f, small, req_hdr, 8);
	raw_send(&f, small, rep, sizeof(rep));
	CHECK(wait_closed(&f, old, 5000) >= 0);
	CHECK(!raw_closed(second) && !raw_closed(small));
	/* A large frame now is refused itself. */
	raw_send(&f, late, req_hdr, 8);
	raw_send(&f, late, body, big);
	CHECK(wait_closed(&f, late, 5000) >= 0);
	CHECK(!raw_closed(second) && !raw_closed(small));
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT((int)st.closed[RW_HUB_CLOSE_BUDGET], 2);
	CHECK(st.partial_bytes <= 256 * 1024);
	close(old);
	close(second);
	close(small);
	close(late);
	free(body);
	fx_fini(&f);
}

/* A bad MAC is refused and closes the connection; what a bad MAC costs. */
static void
t_bad_mac_closes(void)
{
	struct fixture f;
	struct rw_hub_stats st;
	struct rw_buf m, fr;
	if (fx_init(&f, 60000, 0))
		return;
	rw_buf_init(&m, RW_WIRE_MAX_MSG);
	rw_buf_init(&fr, RW_WIRE_MAX_MSG + 64);
	struct rw_wire_key forged = f.kx;
	forged.id = f.ka.id;
	make_report(&m, &forged,
		    &(struct rpt_spec){.pod = "alpha-worker-2", .session = 9, .seq = 6});
	sp_frame(&fr, m.data, m.len);
	int fd = raw_connect(&f);
	CHECK(fd >= 0);
	CHECK_EQ_INT(raw_send(&f, fd, req_hdr, 8), 0);
	CHECK_EQ_INT(raw_send(&f, fd, fr.data, fr.len), 0);
	CHECK(wait_closed(&f, fd, 5000) >= 0);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.refused[RW_HUB_REFUSED_MAC], 1);
	CHECK_EQ_INT(st.closed[RW_HUB_CLOSE_REFUSED], 1);
	close(fd);

	/* Its cost is the HMAC over the message, linear in its size. */
	struct rw_wire_hdr hd = {
	    .type = RW_WIRE_REPORT, .session = 1, .seq = 1, .ts_ms = rw_clock_wall_ms()};
	size_t big = RW_WIRE_MAX_MSG - RW_WIRE_HDR_LEN - RW_WIRE_MAC_LEN;
	char *pl = calloc(1, big);
	if (pl && rw_wire_seal(&forged, &hd, pl, big, &m) == 0) {
		struct rw_wire_hdr oh;
		const char *op;
		double t0 = mono_ms();
		for (int i = 0; i < 5; i++)
			CHECK_EQ_INT(rw_wire_open(&f.ka, m.data, m.len, &oh, &op), -EACCES);
		double t1 = mono_ms();
		make_report(&m, &forged, &(struct rpt_spec){.pod = "p", .session = 1, .seq = 1});
		for (int i = 0; i < 1000; i++)
			rw_wire_open(&f.ka, m.data, m.len, &oh, &op);
		fprintf(stderr,
			"  bad MAC: %.2f ms for a 1 MiB message, %.1f us for a %zu-byte report\n",
			(t1 - t0) / 5, (mono_ms() - t1), m.len);
	}
	free(pl);
	rw_buf_fini(&m);
	rw_buf_fini(&fr);
	fx_fini(&f);
}

/*
 * Right after the hub starts, an unknown key id is refused and the frame
 * dropped unbuffered, but the connection stays (the reconciler registers
 * keys as it goes); afterwards it closes.
 */
static void
t_startup_grace(void)
{
	struct fixture f;
	struct rw_hub_opts o = {0};
	struct rw_hub_stats st;
	struct rw_buf bad, good, fb, fg;
	o.startup_grace_ms = 60000;
	if (fx_init_opts(&f, &o))
		return;
	rw_buf_init(&bad, RW_WIRE_MAX_MSG);
	rw_buf_init(&good, RW_WIRE_MAX_MSG);
	rw_buf_init(&fb, RW_WIRE_MAX_MSG + 64);
	rw_buf_init(&fg, RW_WIRE_MAX_MSG + 64);
	make_report(&bad, &f.kx, &(struct rpt_spec){.pod = "alpha-w-1", .session = 1, .seq = 1});
	make_report(&good, &f.ka, &(struct rpt_spec){.pod = "alpha-w-1", .session = 1, .seq = 1});
	sp_frame(&fb, bad.data, bad.len);
	sp_frame(&fg, good.data, good.len);
	int fd = raw_connect(&f);
	CHECK(fd >= 0);
	CHECK_EQ_INT(raw_send(&f, fd, req_hdr, 8), 0);
	/* The unknown key's frame in two pieces (dropped as it arrives), then a report. */
	CHECK_EQ_INT(raw_send(&f, fd, fb.data, 40), 0);
	CHECK_EQ_INT(raw_send(&f, fd, fb.data + 40, fb.len - 40), 0);
	CHECK_EQ_INT(raw_send(&f, fd, fg.data, fg.len), 0);
	double end = mono_ms() + 5000;
	do {
		uv_run(&f.loop, UV_RUN_NOWAIT);
		rw_hub_stats(f.hub, &st);
	} while (st.reports < 1 && mono_ms() < end);
	CHECK_EQ_INT((int)st.reports, 1);
	CHECK_EQ_INT((int)st.refused[RW_HUB_REFUSED_UNKNOWN_KEY], 1);
	CHECK_EQ_INT((int)st.closed[RW_HUB_CLOSE_REFUSED], 0);
	CHECK_EQ_INT((int)st.partial_bytes, 0);
	CHECK(!raw_closed(fd));
	close(fd);
	rw_buf_fini(&bad);
	rw_buf_fini(&good);
	rw_buf_fini(&fb);
	rw_buf_fini(&fg);
	fx_fini(&f);
}

/*
 * A key forgotten lately (its cluster deleted, or replaced past the
 * overlap) is refused and its frame dropped, the connection kept: its
 * agents report until their pods are gone. A key never known closes.
 */
static void
t_retired_key(void)
{
	struct fixture f;
	struct rw_hub_stats st;
	struct rw_buf old, never, fo, fn;
	if (fx_init(&f, 60000, 0))
		return;
	rw_buf_init(&old, RW_WIRE_MAX_MSG);
	rw_buf_init(&never, RW_WIRE_MAX_MSG);
	rw_buf_init(&fo, RW_WIRE_MAX_MSG + 64);
	rw_buf_init(&fn, RW_WIRE_MAX_MSG + 64);
	make_report(&old, &f.ka, &(struct rpt_spec){.pod = "alpha-w-1", .session = 1, .seq = 1});
	make_report(&never, &f.kx, &(struct rpt_spec){.pod = "alpha-w-1", .session = 1, .seq = 2});
	sp_frame(&fo, old.data, old.len);
	sp_frame(&fn, never.data, never.len);
	CHECK_EQ_INT(rw_hub_key_remove(f.hub, NS, "alpha"), 0);
	int fd = raw_connect(&f);
	CHECK(fd >= 0);
	CHECK_EQ_INT(raw_send(&f, fd, req_hdr, 8), 0);
	CHECK_EQ_INT(raw_send(&f, fd, fo.data, fo.len), 0);
	double end = mono_ms() + 5000;
	do {
		uv_run(&f.loop, UV_RUN_NOWAIT);
		rw_hub_stats(f.hub, &st);
	} while (st.refused[RW_HUB_REFUSED_UNKNOWN_KEY] < 1 && mono_ms() < end);
	CHECK_EQ_INT((int)st.refused[RW_HUB_REFUSED_UNKNOWN_KEY], 1);
	CHECK_EQ_INT((int)st.closed[RW_HUB_CLOSE_REFUSED], 0);
	CHECK(!raw_closed(fd));
	CHECK_EQ_INT(raw_send(&f, fd, fn.data, fn.len), 0);
	CHECK(wait_closed(&f, fd, 5000) >= 0);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT((int)st.closed[RW_HUB_CLOSE_REFUSED], 1);
	close(fd);
	rw_buf_fini(&old);
	rw_buf_fini(&never);
	rw_buf_fini(&fo);
	rw_buf_fini(&fn);
	fx_fini(&f);
}

/* At most max_conns_per_peer connections from one address. */
static void
t_peer_cap(void)
{
	struct fixture f;
	struct rw_hub_opts o = {0};
	struct rw_hub_stats st;
	int fd[4];
	o.max_conns_per_peer = 3;
	if (fx_init_opts(&f, &o))
		return;
	for (int i = 0; i < 4; i++) {
		fd[i] = raw_connect(&f);
		CHECK(fd[i] >= 0);
		raw_send(&f, fd[i], req_hdr, 8);
	}
	CHECK(wait_closed(&f, fd[3], 5000) >= 0);
	for (int i = 0; i < 3; i++)
		CHECK(!raw_closed(fd[i]));
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.closed[RW_HUB_CLOSE_PEER_CAP], 1);
	CHECK_EQ_INT((int)st.conns, 3);
	/* One closes: room for the next. */
	close(fd[0]);
	close(fd[3]);
	double end = mono_ms() + 5000;
	do {
		uv_run(&f.loop, UV_RUN_NOWAIT);
		rw_hub_stats(f.hub, &st);
	} while (st.conns != 2 && mono_ms() < end);
	fd[0] = raw_connect(&f);
	raw_send(&f, fd[0], req_hdr, 8);
	for (int i = 0; i < 20; i++)
		uv_run(&f.loop, UV_RUN_NOWAIT);
	CHECK(!raw_closed(fd[0]));
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT(st.closed[RW_HUB_CLOSE_PEER_CAP], 1);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	fx_fini(&f);
}

/* A cluster's key tracks at most max_pods_per_key pods; other clusters go on. */
static void
t_cluster_cap(void)
{
	struct fixture f;
	struct rw_hub_opts o = {0};
	struct rw_hub_stats st;
	struct rw_buf m[4];
	o.max_pods_per_key = 2;
	if (fx_init_opts(&f, &o))
		return;
	for (int i = 0; i < 4; i++)
		rw_buf_init(&m[i], RW_WIRE_MAX_MSG);
	make_report(&m[0], &f.ka, &(struct rpt_spec){.pod = "alpha-w-1", .session = 1, .seq = 1});
	make_report(&m[1], &f.ka, &(struct rpt_spec){.pod = "alpha-w-2", .session = 2, .seq = 1});
	make_report(&m[2], &f.ka, &(struct rpt_spec){.pod = "alpha-w-3", .session = 3, .seq = 1});
	make_report(
	    &m[3], &f.kb,
	    &(struct rpt_spec){.pod = "beta-w-1", .cluster = "beta", .session = 4, .seq = 1});
	CHECK_EQ_INT(send_each(&f, m, 2, 2000), 2);
	CHECK_EQ_INT(send_each(&f, m + 2, 1, 300), 0);
	CHECK_EQ_INT(send_each(&f, m + 3, 1, 2000), 1);
	CHECK(wait_refused(&f, RW_HUB_REFUSED_CLUSTER_FULL, 1, 10000) == 1);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT((int)st.pods, 3);
	CHECK(rw_hub_pod(f.hub, NS, "alpha-w-3", NULL) == NULL);
	for (int i = 0; i < 4; i++)
		rw_buf_fini(&m[i]);
	fx_fini(&f);
}

/*
 * Admission: before the pod is known, refused without penalty (the same
 * request is admitted once it is); a report sealed with alpha's key for
 * beta's pod is a forgery: refused, counted, closed, and no pod record.
 */
static void
t_admission(void)
{
	struct fixture f;
	struct rw_hub_stats st;
	struct rw_buf m[3];
	if (fx_init(&f, 60000, 0))
		return;
	f.seen.admit_on = 1;
	for (int i = 0; i < 3; i++)
		rw_buf_init(&m[i], RW_WIRE_MAX_MSG);
	make_report(&m[0], &f.ka, &(struct rpt_spec){.pod = "alpha-w-1", .session = 1, .seq = 1});
	/* alpha's key, cluster field "alpha" (in scope), naming beta's pod and UID. */
	make_report(&m[1], &f.ka, &(struct rpt_spec){.pod = "beta-w-1", .session = 2, .seq = 1});
	make_report(
	    &m[2], &f.ka,
	    &(struct rpt_spec){.pod = "alpha-w-2", .uid = "uid-old", .session = 3, .seq = 1});
	CHECK_EQ_INT(send_each(&f, m, 1, 300), 0);
	CHECK(wait_refused(&f, RW_HUB_REFUSED_PENDING, 1, 10000) == 1);
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT((int)st.closed[RW_HUB_CLOSE_REFUSED], 0);
	CHECK_EQ_INT((int)st.pods, 0);
	f.seen.known = 1;
	CHECK_EQ_INT(send_each(&f, m, 1, 2000), 1); /* the same bytes, admitted now */
	CHECK(rw_hub_pod(f.hub, NS, "alpha-w-1", NULL) != NULL);
	CHECK_EQ_INT(send_each(&f, m + 1, 1, 300), 0);
	CHECK_EQ_INT(send_each(&f, m + 2, 1, 300), 0);
	CHECK(wait_refused(&f, RW_HUB_REFUSED_PENDING, 2, 10000) == 2);
	rw_hub_stats(f.hub, &st);
	CHECK(st.refused[RW_HUB_REFUSED_FORGED] == 1); /* refused, then closed: before the answer */
	CHECK(st.closed[RW_HUB_CLOSE_REFUSED] == 1);
	CHECK(rw_hub_pod(f.hub, NS, "beta-w-1", NULL) == NULL);
	CHECK(rw_hub_pod(f.hub, NS, "alpha-w-2", NULL) == NULL);
	CHECK_EQ_INT((int)st.pods, 1);
	CHECK_EQ_STR(rw_hub_refusal_name(RW_HUB_REFUSED_FORGED), "forged");
	for (int i = 0; i < 3; i++)
		rw_buf_fini(&m[i]);
	fx_fini(&f);
}

/* Rotation: the replaced key is accepted (and answered with) for key_overlap_ms, then not. */
static void
t_key_overlap(void)
{
	struct fixture f;
	struct rw_hub_opts o = {0};
	struct rw_hub_stats st;
	struct rw_buf m[4];
	struct rw_wire_key k2;
	struct rw_reply rep;
	o.key_overlap_ms = 400;
	if (fx_init_opts(&f, &o))
		return;
	rw_wire_key_set(&k2, "alpha-rotated-key-0123456789abcdef", 34);
	for (int i = 0; i < 4; i++)
		rw_buf_init(&m[i], RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_hub_key_add(f.hub, NS, "alpha", &f.ka), 0); /* the same key: no change */
	CHECK_EQ_INT(rw_hub_key_add(f.hub, NS, "alpha", &k2), 0);
	double t_rot = mono_ms();
	rw_hub_stats(f.hub, &st);
	CHECK_EQ_INT((int)st.keys, 2); /* scopes */
	make_report(&m[0], &f.ka, &(struct rpt_spec){.pod = "alpha-w-1", .session = 1, .seq = 1});
	make_report(&m[1], &k2, &(struct rpt_spec){.pod = "alpha-w-2", .session = 2, .seq = 1});
	struct agent a = {0};
	a.nmsg = 2;
	a.msg[0] = (unsigned char *)m[0].data;
	a.len[0] = m[0].len;
	a.msg[1] = (unsigned char *)m[1].data;
	a.len[1] = m[1].len;
	run_agent(&f, &a);
	int in_window = mono_ms() - t_rot < 400;
	if (in_window) {
		CHECK_EQ_INT(a.rv[0], 0);
		memset(&rep, 0, sizeof(rep));
		CHECK_EQ_INT(open_reply(&f.ka, a.reply[0], a.rlen[0], 1, 1, &rep), 0); /* old key */
		rw_reply_fini(&rep);
	}
	CHECK_EQ_INT(a.rv[1], 0);
	memset(&rep, 0, sizeof(rep));
	CHECK_EQ_INT(open_reply(&k2, a.reply[1], a.rlen[1], 2, 1, &rep), 0);
	rw_reply_fini(&rep);
	agent_free(&a);
	/* After the window the old key is unknown; the new one and the pods stay. */
	while (mono_ms() - t_rot < 450)
		uv_run(&f.loop, UV_RUN_ONCE);
	uv_update_time(&f.loop);
	make_report(&m[2], &f.ka, &(struct rpt_spec){.pod = "alpha-w-1", .session = 1, .seq = 2});
	make_report(&m[3], &k2, &(struct rpt_spec){.pod = "alpha-w-1", .session = 5, .seq = 1});
	CHECK_EQ_INT(send_each(&f, m + 2, 1, 300), 0);
	CHECK_EQ_INT(send_each(&f, m + 3, 1, 2000), 1);
	rw_hub_stats(f.hub, &st);
	CHECK(st.refused[RW_HUB_REFUSED_UNKNOWN_KEY] >= 1);
	CHECK(rw_hub_pod(f.hub, NS, "alpha-w-2", NULL) != NULL);
	/* Rolling back to the previous key within the window makes it current again. */
	CHECK_EQ_INT(rw_hub_key_add(f.hub, NS, "alpha", &f.ka), 0);
	CHECK_EQ_INT(rw_hub_key_add(f.hub, NS, "alpha", &k2), 0);
	make_report(&m[0], &f.ka, &(struct rpt_spec){.pod = "alpha-w-1", .session = 6, .seq = 1});
	CHECK_EQ_INT(send_each(&f, m, 1, 2000), 1); /* ka overlaps again */
	for (int i = 0; i < 4; i++)
		rw_buf_fini(&m[i]);
	fx_fini(&f);
}

/* What one pod record costs (a worker's report, its cached reply). */
static void
t_pod_bytes(void)
{
	struct fixture f;
	struct rw_buf m;
	struct rw_hub_stats st;
	if (fx_init(&f, 60000, 0))
		return;
	rw_buf_init(&m, RW_WIRE_MAX_MSG);
	make_report(&m, &f.ka, &(struct rpt_spec){.pod = "alpha-w-1", .session = 1, .seq = 1});
	CHECK_EQ_INT(send_each(&f, &m, 1, 2000), 1);
	size_t b = rw_hub_pod_bytes(f.hub, NS, "alpha-w-1");
	rw_hub_stats(f.hub, &st);
	fprintf(stderr, "  one worker pod record: %zu bytes\n", b);
	CHECK(b > 0 && st.pod_bytes == b);
	CHECK(b <= RW_HUB_POD_BYTES_MAX);

	/* A worker's packed report reads back as it was sent, every field set. */
	struct rw_report r, dec;
	struct rw_buf pl;
	struct rw_wire_hdr hd = {
	    .type = RW_WIRE_REPORT, .session = 2, .seq = 1, .ts_ms = rw_clock_wall_ms()};
	memset(&r, 0, sizeof(r));
	snprintf(r.ns, sizeof(r.ns), NS);
	snprintf(r.pod, sizeof(r.pod), "alpha-w-2");
	snprintf(r.uid, sizeof(r.uid), "uid-2");
	snprintf(r.cluster, sizeof(r.cluster), "alpha");
	snprintf(r.group, sizeof(r.group), "small");
	snprintf(r.node_type, sizeof(r.node_type), "worker");
	snprintf(r.pod_ip, sizeof(r.pod_ip), "10.0.0.7");
	snprintf(r.agent_version, sizeof(r.agent_version), "1.2.3");
	snprintf(r.ready_reason, sizeof(r.ready_reason), "raylet: connection refused");
	r.rayservice = 1;
	r.live = 1;
	r.draining = 1;
	r.raylet.state = RW_PROBE_REFUSED;
	snprintf(r.raylet.reason, sizeof(r.raylet.reason), "connection refused");
	r.raylet.since_ms = 123456;
	r.gcs.state = RW_PROBE_TIMEOUT;
	snprintf(r.gcs.reason, sizeof(r.gcs.reason), "no answer in 1 s");
	r.proxy.state = RW_PROBE_DRAINING;
	snprintf(r.proxy.reason, sizeof(r.proxy.reason), "This node is being drained.");
	snprintf(r.job_action_error, sizeof(r.job_action_error), "submit failed: 500");
	rw_buf_init(&pl, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_report_encode(&r, &pl), 0);
	CHECK_EQ_INT(rw_wire_seal(&f.ka, &hd, pl.data, pl.len, &m), 0);
	char derr[200];
	CHECK_EQ_INT(rw_report_decode(pl.data, pl.len, &dec, derr, sizeof(derr)), 0);
	CHECK_EQ_INT(send_each(&f, &m, 1, 2000), 1);
	const struct rw_report *got = rw_hub_pod(f.hub, NS, "alpha-w-2", NULL);
	CHECK(got && rw_report_equal(got, &dec));
	CHECK(got && strcmp(got->gcs.reason, "no answer in 1 s") == 0 && got->draining == 1);
	rw_report_fini(&dec);
	rw_buf_fini(&pl);
	rw_buf_fini(&m);
	fx_fini(&f);
}

/* Try a TCP connection to the hub's address: 0 when accepted, else the errno. */
static int
try_connect(const char *url)
{
	struct sockaddr_in sa;
	const char *colon = strrchr(url, ':');
	int fd, rv = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		rv = errno;
	close(fd);
	return rv;
}

/* A standby's hub: bound, refusing connections until rw_hub_serve(). */
static void
t_serve_later(void)
{
	struct fixture f;
	struct rw_hub_opts o = {0};
	o.serve_later = true;
	if (fx_init_opts(&f, &o) != 0)
		return;
	CHECK(!rw_hub_serving(f.hub));
	CHECK(strcmp(f.url + strlen(f.url) - 2, ":0") != 0); /* the port is bound */
	CHECK_EQ_INT(try_connect(f.url), ECONNREFUSED);
	CHECK_EQ_INT(rw_hub_serve(f.hub), 0);
	CHECK(rw_hub_serving(f.hub));
	CHECK_EQ_INT(rw_hub_serve(f.hub), 0); /* once is enough */
	CHECK_EQ_INT(try_connect(f.url), 0);
	CHECK_EQ_INT(rw_hub_serve(NULL), -EINVAL);
	fx_fini(&f);
}

static void
t_bad_options(void)
{
	uv_loop_t loop;
	struct rw_hub *h = NULL;
	char err[256];
	struct rw_hub_opts o = {0};

	uv_loop_init(&loop);
	CHECK_EQ_INT(rw_hub_new(&loop, &o, NULL, NULL, &h, err, sizeof(err)), -EINVAL);
	o.listen_url = "bogus://nowhere";
	CHECK(rw_hub_new(&loop, &o, NULL, NULL, &h, err, sizeof(err)) < 0);
	CHECK(h == NULL);
	CHECK(strstr(err, "bogus://nowhere") != NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	rw_hub_free(NULL);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"fresh, resend, change", t_fresh_resend_change},
	    {"refusals", t_refusals},
	    {"key id collision", t_key_id_collision},
	    {"200 agents x 20 reports", t_many_agents},
	    {"stale detection", t_stale},
	    {"disconnect detection", t_disconnect},
	    {"head heartbeat staleness", t_head_heartbeat},
	    {"over-size message", t_oversize},
	    {"large message in pieces", t_large_frame},
	    {"not an nng REQ peer", t_wrong_peer},
	    {"bad options", t_bad_options},
	    {"serve later: refused until serving", t_serve_later},
	    {"handshake and frame deadlines", t_deadlines},
	    {"partial-frame budget under 200 peers", t_budget},
	    {"partial-frame budget: who is closed", t_budget_policy},
	    {"bad MAC closes", t_bad_mac_closes},
	    {"unknown keys right after start", t_startup_grace},
	    {"keys forgotten lately", t_retired_key},
	    {"connections per peer", t_peer_cap},
	    {"pods per cluster key", t_cluster_cap},
	    {"admission and forgery", t_admission},
	    {"key rotation overlap", t_key_overlap},
	    {"pod record size", t_pod_bytes},
	    {NULL, NULL},
	};
	rw_log_setup("test_ctl_hub", RW_LOG_TEXT, RW_LOG_WARN);
	int rv = rwt_run(cases);
	/*
	 * nng_close returns before nng's reaper thread has freed a closed
	 * socket's dialer and pipes; at exit LeakSanitizer then reports them
	 * (14 objects from the test agents' nng_dial, once in a CI run).
	 * nng_fini drains the reaper first.
	 */
	nng_fini();
	return rv;
}

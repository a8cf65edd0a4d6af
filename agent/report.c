/*
 * report.c - reports to the controller over nng REQ, driven by the loop.
 *
 * Pattern A of the design notes: the REQ socket is dialled non-blocking
 * (nng reconnects in the background with back-off) and its RECVFD/SENDFD
 * are watched with uv_poll; every send and receive is NONBLOCK, so the loop
 * never waits on nng. A new report replaces an unanswered one (REQ
 * semantics), and nng resends an unanswered request after resend_ms and on
 * reconnect; the sequence number makes such resends recognisable.
 * Replies are opened with the shared key and must carry our session and
 * the outstanding sequence before anything in them is acted on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "agent.h"
#include "rw/bounded.h"
#include "rw/clock.h"
#include "rw/log.h"

#define MAX_ENCODE (RW_WIRE_MAX_MSG - RW_WIRE_HDR_LEN - RW_WIRE_MAC_LEN)

const char *
rw_refuse_name(enum rw_refuse r)
{
	static const char *n[RW_REF_COUNT] = {"size", "malformed", "version", "key",	"mac",
					      "type", "session",   "seq",     "payload"};
	return (unsigned)r < RW_REF_COUNT ? n[r] : "?";
}

static uint64_t
random64(void)
{
	uint64_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
			v = 0;
		close(fd);
	}
	if (!v) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		v = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
	}
	return v;
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct rw_reporter *r = arg;
	(void)p;
	/* Runs on an nng thread: only touch the atomic counter. */
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&r->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&r->pipes, 1);
}

static void
refuse(struct rw_agent *a, enum rw_refuse why, const char *detail)
{
	struct rw_reporter *r = &a->rep;
	uint64_t now = uv_now(a->loop);
	r->refused[why]++;
	/* Once per reason change, or once a minute with the running count. */
	if ((int)why != r->last_refuse_logged || now - r->last_refuse_log_ms >= 60000) {
		rw_warn("report",
			"refused a reply from the controller: %s (%s); %lu refused so far",
			rw_refuse_name(why), detail, r->refused[why]);
		r->last_refuse_logged = (int)why;
		r->last_refuse_log_ms = now;
	}
}

static void
handle_reply(struct rw_agent *a, const void *data, size_t n)
{
	struct rw_reporter *r = &a->rep;
	struct rw_wire_hdr h;
	const char *payload;
	char err[160];
	int rv = rw_wire_open(&r->key, data, n, &h, &payload);

	/* Just after a key reload, the answer to a report sealed with the previous key. */
	if (rv == -EKEYREJECTED && r->have_prev && h.key_id == r->prev_key.id)
		rv = rw_wire_open(&r->prev_key, data, n, &h, &payload);

	switch (rv) {
	case 0:
		break;
	case -EMSGSIZE:
		return refuse(a, RW_REF_SIZE, "message over the size limit");
	case -EPROTONOSUPPORT:
		snprintf(err, sizeof(err), "protocol version %u, we speak %u", h.version,
			 RW_WIRE_VERSION);
		return refuse(a, RW_REF_VERSION, err);
	case -EKEYREJECTED:
		snprintf(err, sizeof(err), "key id %08x is not ours", h.key_id);
		return refuse(a, RW_REF_KEY, err);
	case -EACCES:
		return refuse(a, RW_REF_MAC, "authentication code mismatch");
	default:
		return refuse(a, RW_REF_MALFORMED, rw_wire_strerror(rv));
	}
	if (h.type != RW_WIRE_REPLY)
		return refuse(a, RW_REF_TYPE, "not a reply");
	if (h.session != r->session)
		return refuse(a, RW_REF_SESSION, "reply to another session");
	if (!r->outstanding || h.seq != r->seq)
		return refuse(a, RW_REF_SEQ, "reply to a request that is not outstanding");

	struct rw_reply reply;
	if ((rv = rw_reply_decode(payload, h.len, &reply, err, sizeof(err))) != 0)
		return refuse(a, RW_REF_PAYLOAD, err);
	r->outstanding = 0;
	r->acked++;
	rw_actions_report_acked(a, h.seq);
	r->last_ack_ms = uv_now(a->loop);
	if (reply.heartbeat_ms && (long)reply.heartbeat_ms != r->heartbeat_ms &&
	    reply.heartbeat_ms >= 100 && reply.heartbeat_ms <= 3600000) {
		r->heartbeat_ms = (long)reply.heartbeat_ms;
		/* Restart the timer: the next report comes one new period from now
		 * (the controller times this agent's silence by it). */
		uv_timer_set_repeat(&r->heartbeat, (uint64_t)r->heartbeat_ms);
		uv_timer_again(&r->heartbeat);
		rw_info("report", "heartbeat set to %ld ms by the controller", r->heartbeat_ms);
	}
	rw_actions_apply(a, &reply);
	rw_reply_fini(&reply);
}

static void
recv_cb(uv_poll_t *h, int status, int events)
{
	struct rw_agent *a = h->data;
	(void)status;
	(void)events;
	/* Drain everything that is queued; never read the fd itself. */
	for (int i = 0; i < 64; i++) {
		nng_msg *m = NULL;
		int rv = nng_recvmsg(a->rep.sock, &m, NNG_FLAG_NONBLOCK);
		if (rv != 0) {
			if (rv == NNG_EMSGSIZE)
				refuse(a, RW_REF_SIZE, "message over the receive limit");
			break;
		}
		handle_reply(a, nng_msg_body(m), nng_msg_len(m));
		nng_msg_free(m);
	}
}

static void
send_poll_stop(struct rw_reporter *r)
{
	if (r->send_polling) {
		uv_poll_stop(&r->send_poll);
		r->send_polling = 0;
	}
}

static void try_send(struct rw_agent *a);

static void
send_ready_cb(uv_poll_t *h, int status, int events)
{
	struct rw_agent *a = h->data;
	(void)status;
	(void)events;
	send_poll_stop(&a->rep);
	try_send(a);
}

static void
retry_cb(uv_timer_t *t)
{
	try_send(t->data);
}

static void
heartbeat_cb(uv_timer_t *t)
{
	struct rw_agent *a = t->data;
	try_send(a);
}

/* Build, seal and send the current report; on back-pressure wait for SENDFD. */
static void
try_send(struct rw_agent *a)
{
	struct rw_reporter *r = &a->rep;
	struct rw_report rpt;
	struct rw_wire_hdr h;
	int rv;

	if (!r->enabled || a->stopping)
		return;
	rw_agent_build_report(a, &rpt);
	rw_buf_reset(&r->payload);
	if ((rv = rw_report_encode(&rpt, &r->payload)) != 0) {
		/* Too many nodes for one message: drop the per-node detail. */
		rpt.nnodes = 0;
		rw_buf_reset(&r->payload);
		rv = rw_report_encode(&rpt, &r->payload);
	}
	if (rv != 0) {
		/* Still too large: log tails wait for a smaller report. */
		rw_agent_drop_tails(a, &rpt);
		rw_buf_reset(&r->payload);
		rv = rw_report_encode(&rpt, &r->payload);
	}
	if (rv != 0) {
		if (!r->encode_failed++)
			rw_error("report", "cannot encode the report: %s", strerror(-rv));
		return;
	}
	memset(&h, 0, sizeof(h));
	h.type = RW_WIRE_REPORT;
	h.session = r->session;
	h.seq = r->seq + 1;
	h.ts_ms = rw_clock_wall_ms();
	if ((rv = rw_wire_seal(&r->key, &h, r->payload.data, r->payload.len, &r->msg)) != 0) {
		if (!r->encode_failed++)
			rw_error("report", "cannot seal the report: %s", strerror(-rv));
		return;
	}
	rv = nng_send(r->sock, r->msg.data, r->msg.len, NNG_FLAG_NONBLOCK);
	if (rv == 0) {
		r->seq = h.seq;
		r->outstanding = 1;
		rw_actions_report_sent(a, h.seq);
		r->sent++;
		r->last_send_ms = uv_now(a->loop);
		uv_timer_again(&r->heartbeat);
		uv_timer_stop(&r->retry);
		return;
	}
	r->blocked++;
	/* No controller connection yet: SENDFD turns readable when a send would
	 * not block. If it is already readable (a spurious wake) fall back to a
	 * short timer so we never spin. */
	if (rv == NNG_EAGAIN && !r->send_polling && r->send_poll_init &&
	    uv_poll_start(&r->send_poll, UV_READABLE, send_ready_cb) == 0 && r->blocked % 8 != 0) {
		r->send_polling = 1;
		return;
	}
	send_poll_stop(r);
	if (!uv_is_active((uv_handle_t *)&r->retry))
		uv_timer_start(&r->retry, retry_cb, (uint64_t)a->cfg.reconnect_min_ms, 0);
}

void
rw_reporter_send(struct rw_agent *a)
{
	if (a->rep.enabled && !a->rep.send_polling)
		try_send(a);
}

void
rw_reporter_poll_pipes(struct rw_agent *a)
{
	struct rw_reporter *r = &a->rep;
	if (!r->enabled)
		return;
	int p = atomic_load(&r->pipes);
	if ((p > 0) != (r->pipes_seen > 0)) {
		if (p > 0)
			rw_info("report", "connected to the controller at %s", a->cfg.controller);
		else
			rw_warn("report",
				"lost the controller connection; reconnecting (readiness is "
				"unaffected)");
		if (p > 0)
			rw_agent_kick(a);
	}
	r->pipes_seen = p;
}

int
rw_reporter_init(struct rw_agent *a, char *err, size_t errlen)
{
	struct rw_reporter *r = &a->rep;
	int rv, fd;

	rw_buf_init(&r->payload, MAX_ENCODE);
	rw_buf_init(&r->msg, RW_WIRE_MAX_MSG);
	r->last_refuse_logged = -1;
	r->heartbeat_ms = a->cfg.heartbeat_ms;
	atomic_init(&r->pipes, 0);
	if (!a->cfg.controller[0])
		return 0;
	if (!a->keys.have) {
		snprintf(err, errlen, "no key loaded (RAYWARDEN_KEY_FILE)");
		return -EINVAL;
	}
	r->session = random64();
	if ((rv = nng_req0_open(&r->sock)) != 0)
		goto nngfail;
	r->sock_open = 1;
	nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, r);
	nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, pipe_cb, r);
	if ((rv = nng_socket_set_ms(r->sock, NNG_OPT_RECONNMINT, a->cfg.reconnect_min_ms)) ||
	    (rv = nng_socket_set_ms(r->sock, NNG_OPT_RECONNMAXT, a->cfg.reconnect_max_ms)) ||
	    (rv = nng_socket_set_ms(r->sock, NNG_OPT_REQ_RESENDTIME, a->cfg.resend_ms)) ||
	    (rv = nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, RW_WIRE_MAX_MSG)) ||
	    (rv = nng_socket_set_ms(r->sock, NNG_OPT_SENDTIMEO, 0)))
		goto nngfail;
	if ((rv = nng_dial(r->sock, a->cfg.controller, NULL, NNG_FLAG_NONBLOCK)) != 0)
		goto nngfail;
	if ((rv = nng_socket_get_int(r->sock, NNG_OPT_RECVFD, &fd)) != 0)
		goto nngfail;
	uv_poll_init(a->loop, &r->recv_poll, fd);
	r->recv_poll.data = a;
	uv_poll_start(&r->recv_poll, UV_READABLE, recv_cb);
	r->recv_poll_on = 1;
	if ((rv = nng_socket_get_int(r->sock, NNG_OPT_SENDFD, &fd)) != 0)
		goto nngfail;
	uv_poll_init(a->loop, &r->send_poll, fd);
	r->send_poll.data = a;
	r->send_poll_init = 1;
	uv_timer_init(a->loop, &r->heartbeat);
	r->heartbeat.data = a;
	uv_timer_start(&r->heartbeat, heartbeat_cb, (uint64_t)r->heartbeat_ms,
		       (uint64_t)r->heartbeat_ms);
	uv_timer_init(a->loop, &r->retry);
	r->retry.data = a;
	r->enabled = 1;
	rw_info("report", "reporting to %s (key id %08x, heartbeat %ld ms)", a->cfg.controller,
		r->key.id, r->heartbeat_ms);
	return 0;
nngfail:
	snprintf(err, errlen, "controller %s: %s", a->cfg.controller, nng_strerror(rv));
	return -EINVAL;
}

void
rw_reporter_close(struct rw_agent *a)
{
	struct rw_reporter *r = &a->rep;
	if (!r->enabled)
		return;
	r->enabled = 0;
	/* Stop and close the polls before nng_close (in rw_reporter_fini). */
	if (r->recv_poll_on)
		uv_poll_stop(&r->recv_poll);
	send_poll_stop(r);
	uv_close((uv_handle_t *)&r->recv_poll, NULL);
	uv_close((uv_handle_t *)&r->send_poll, NULL);
	uv_close((uv_handle_t *)&r->heartbeat, NULL);
	uv_close((uv_handle_t *)&r->retry, NULL);
}

/* How long the agent waits for nng_close at exit (see rw_reporter_fini). */
#define CLOSE_WAIT_MS 2000

static void
close_socket(void *arg)
{
	nng_socket *s = arg;
	nng_close(*s);
	free(s);
}

void
rw_reporter_fini(struct rw_agent *a)
{
	struct rw_reporter *r = &a->rep;
	/*
	 * nng 1.5.2's nng_close can deadlock when it meets a redial under way (upstream nng
	 * issue 1813, fixed in 1.8): with the controller out of reach at shutdown the agent
	 * would hold its pod's termination until the kubelet kills it. The process is exiting
	 * and the kernel closes the connection anyway, so past the deadline it goes on.
	 */
	if (r->sock_open) {
		/* nng's threads call pipe_cb with r: not once this function has returned. */
		nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
		nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
		nng_socket *s = malloc(sizeof(*s));
		int rv =
		    s ? (*s = r->sock, rw_run_bounded(close_socket, s, CLOSE_WAIT_MS)) : -ENOMEM;
		if (rv == -ETIMEDOUT) {
			rw_warn("report",
				"closing the controller connection did not finish within %d ms "
				"(nng 1.5.2 can deadlock there); exiting without it",
				CLOSE_WAIT_MS);
		} else if (rv != 0) {
			free(s); /* no thread: close here, unbounded */
			nng_close(r->sock);
		}
		r->sock_open = 0;
	}
	rw_wire_key_wipe(&r->key);
	rw_buf_fini(&r->payload);
	rw_buf_fini(&r->msg);
}

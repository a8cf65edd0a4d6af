/*
 * httpd.c - small HTTP/1.1 server on libuv (see rw/httpd.h).
 *
 * Each connection owns a TCP handle, one deadline timer, a bounded input
 * buffer (head cap + body cap) and an output buffer. Requests are framed by
 * the pure functions in httpd_parse.c; every complete request in the input
 * (pipelining) is answered in order and the answers go out in one write.
 * While a write is in flight no further request is processed; when the input
 * buffer is full reading stops until it drains. A connection that must close
 * is shut down for writing first and drained for a short while, so the peer
 * receives the last answer instead of a reset.
 *
 * Hostile peers: the timer always holds the deadline of the connection's
 * current phase (head, body, keep-alive idle, write), recomputed after every
 * event. Connections waiting for a request sit in a FIFO (the wait list) in
 * the order they started waiting; a new connection over a cap evicts from
 * its front. Before a connection is evicted, whatever it has already sent is
 * read, so a probe accepted in the same burst as many silent peers is
 * answered rather than evicted; a new connection is read at once for the
 * same reason.
 *
 * With a transport (rw_httpd_transport: TLS), the socket's bytes go to a
 * bounded buffer the transport reads from, and what it writes to a second one
 * is what the socket sends; HTTP framing, caps and deadlines are unchanged
 * above it, and the head deadline also bounds the whole handshake.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd_parse.h"
#include "rw/httpd.h"
#include "rw/list.h"

#define DEF_MAX_BODY (64 * 1024)
#define DEF_MAX_CONNS 256
#define DEF_MAX_PER_PEER 16
#define DEF_HEAD_MS 3000
#define DEF_REQUEST_MS 5000
#define DEF_IDLE_MS 5000
#define DEF_WRITE_MS 5000
#define RESP_BODY_MAX (4 * 1024 * 1024)
#define RESP_HDRS_MAX (16 * 1024)
#define OUT_MAX (RESP_BODY_MAX + RESP_HDRS_MAX + 1024)
#define OUT_SOFT (256 * 1024) /* stop queueing pipelined answers past this */
#define KEEP_CAP (64 * 1024)  /* buffers above this are released when idle */
#define LINGER_MS 2000
#define READ_CHUNK (64 * 1024)
/* Transport (TLS) input: two records of 16 KiB plus their overhead. */
#define CIN_MAX (2 * (16384 + 2048))
/* Transport output: one answer in records, and the handshake flight. */
#define COUT_MAX (OUT_MAX + OUT_MAX / 16 + 64 * 1024)

/* Phase of a connection, for its deadline. */
enum phase {
	PH_NONE, /* forces a fresh start on the next arm */
	PH_HEAD, /* reading a request head */
	PH_BODY, /* head complete, reading the body */
	PH_IDLE, /* keep-alive: waiting for the next request */
	PH_WRITE /* an answer is being written */
};

/* A peer IP address, for the per-peer cap. */
struct peer_addr {
	int family;
	unsigned char ip[16];
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct rw_httpd *s;
	struct rw_list link;  /* in s->conns: every live connection */
	struct rw_list wlink; /* in s->wait; self-linked when not waiting */
	struct peer_addr addr;
	enum phase phase;
	uint64_t phase_ms; /* when the phase began */
	uint64_t req_ms;   /* when the current request began */
	int head_done;	   /* the current request's head is complete */
	unsigned long nreq;
	struct rw_buf in;
	struct rw_buf out;
	size_t out_sent; /* bytes of out already written by uv_try_write */
	char peer[64];
	int writing;	 /* a uv_write is in flight */
	int reading;	 /* uv_read_start is active */
	int close_after; /* close once out is written */
	int continued;	 /* 100 Continue sent for the request being read */
	int eof;	 /* the peer finished sending */
	int lingering;	 /* shut down; discarding input until EOF */
	int closing;	 /* uv_close called */
	int held;	 /* an answer waits for its delay (rw_httpd_resp.delay_ms) */
	int open_handles;
	void *tc;	    /* the transport's state, or NULL for plain HTTP */
	struct rw_buf cin;  /* transport: the peer's bytes not yet taken */
	struct rw_buf cout; /* transport: bytes for the peer (what is written) */
	size_t out_done;    /* transport: bytes of out already handed to it */
	int notified;	    /* transport: shutdown message queued */
	uint64_t accept_ms; /* transport: the handshake's deadline counts from here */
};

struct rw_httpd {
	uv_loop_t *loop;
	uv_tcp_t listener;
	rw_httpd_handler handler;
	void *ud;
	struct rw_httpd_transport tr;
	int has_tr;
	size_t max_body;
	int max_conns;
	int max_per_peer;
	long head_ms, request_ms, idle_ms, write_ms;
	int port;
	int nconns; /* allocated, closing ones included */
	int nlive;  /* not closing: what the caps count */
	struct rw_httpd_stats st;
	struct rw_list conns; /* struct conn */
	struct rw_list wait;  /* the wait list, longest waiting first */
	int closing;
	int open_handles;
	void (*closed)(void *ud);
	void *closed_ud;
	struct rw_httpd_resp resp; /* reused: handlers run one at a time */
	char rbuf[READ_CHUNK];	   /* shared read scratch: consumed in read_cb */
};

/* The request's private view, behind rw_httpd_req.priv. */
struct req_priv {
	const char *base; /* input buffer holding the head, NUL-split */
	const struct rw_httpd_head *head;
};

static void conn_process(struct conn *c);
static void conn_close(struct conn *c);
static void conn_arm(struct conn *c);

static const char *
reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

const char *
rw_httpd_header(const struct rw_httpd_req *req, const char *name)
{
	if (!req || !req->priv || !name)
		return NULL;
	const struct req_priv *p = req->priv;
	size_t n = strlen(name);
	for (int i = 0; i < p->head->nfields; i++) {
		const struct rw_httpd_field *f = &p->head->fields[i];
		if (f->name.len == n && strncasecmp(p->base + f->name.off, name, n) == 0)
			return p->base + f->value.off;
	}
	return NULL;
}

int
rw_httpd_port(const struct rw_httpd *s)
{
	return s ? s->port : -1;
}

unsigned long
rw_httpd_requests(const struct rw_httpd *s)
{
	return s ? s->st.requests : 0;
}

unsigned long
rw_httpd_connections(const struct rw_httpd *s)
{
	return s ? s->st.accepted : 0;
}

void
rw_httpd_get_stats(const struct rw_httpd *s, struct rw_httpd_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (s) {
		*out = s->st;
		out->open = s->nlive;
	}
}

static const char *
timeout_name(enum rw_httpd_timeout t)
{
	static const char *const names[RW_HTTPD_TO_COUNT] = {"head", "request", "idle", "write"};
	return (unsigned)t < RW_HTTPD_TO_COUNT ? names[t] : "?";
}

/* One metric family: HELP, TYPE, then a sample per listener (and per kind). */
static void
render_family(struct rw_buf *b, const char *prefix, const char *name, const char *type,
	      const char *help, struct rw_httpd *const *servers, const char *const *names, int n)
{
	rw_buf_printf(b, "# HELP %s_%s %s\n# TYPE %s_%s %s\n", prefix, name, help, prefix, name,
		      type);
	for (int i = 0; i < n; i++) {
		struct rw_httpd_stats st;
		rw_httpd_get_stats(servers[i], &st);
		char lab[96] = "";
		if (names)
			snprintf(lab, sizeof(lab), "listener=\"%s\"", names[i]);
		if (!strcmp(name, "http_timeouts_total")) {
			for (int k = 0; k < RW_HTTPD_TO_COUNT; k++)
				rw_buf_printf(b, "%s_%s{%s%skind=\"%s\"} %lu\n", prefix, name, lab,
					      lab[0] ? "," : "",
					      timeout_name((enum rw_httpd_timeout)k),
					      st.timeouts[k]);
			continue;
		}
		unsigned long v = !strcmp(name, "http_connections_total")  ? st.accepted
				  : !strcmp(name, "http_connections_open") ? (unsigned long)st.open
				  : !strcmp(name, "http_evictions_total")  ? st.evicted
									   : st.refused;
		rw_buf_printf(b, "%s_%s%s%s%s %lu\n", prefix, name, lab[0] ? "{" : "", lab,
			      lab[0] ? "}" : "", v);
	}
}

void
rw_httpd_render_stats(struct rw_buf *b, const char *prefix, struct rw_httpd *const *servers,
		      const char *const *names, int n)
{
	render_family(b, prefix, "http_connections_total", "counter",
		      "TCP connections accepted on the HTTP port.", servers, names, n);
	render_family(b, prefix, "http_connections_open", "gauge", "HTTP connections open now.",
		      servers, names, n);
	render_family(b, prefix, "http_evictions_total", "counter",
		      "HTTP connections waiting for a request closed to admit a new one.", servers,
		      names, n);
	render_family(b, prefix, "http_refusals_total", "counter",
		      "New HTTP connections closed at once because every slot was busy.", servers,
		      names, n);
	render_family(b, prefix, "http_timeouts_total", "counter",
		      "HTTP connections closed by a deadline, by phase.", servers, names, n);
}

/* Release the server once its last handle has closed. */
static void
server_maybe_done(struct rw_httpd *s)
{
	if (!s->closing || s->open_handles > 0 || s->nconns > 0)
		return;
	void (*cb)(void *) = s->closed;
	void *ud = s->closed_ud;
	rw_buf_fini(&s->resp.body);
	rw_buf_fini(&s->resp.headers);
	free(s);
	if (cb)
		cb(ud);
}

static void
conn_handle_closed(uv_handle_t *hd)
{
	struct conn *c = hd->data;
	if (--c->open_handles > 0)
		return;
	struct rw_httpd *s = c->s;
	if (c->tc)
		s->tr.conn_free(c->tc);
	rw_buf_fini(&c->in);
	rw_buf_fini(&c->out);
	rw_buf_fini(&c->cin);
	rw_buf_fini(&c->cout);
	free(c);
	s->nconns--;
	server_maybe_done(s);
}

/* On the wait list? */
static int
waiting(const struct conn *c)
{
	return !rw_list_empty(&c->wlink);
}

/* Append to the wait list (no-op when on it already). */
static void
wait_push(struct conn *c)
{
	if (!waiting(c))
		rw_list_insert_tail(&c->s->wait, &c->wlink);
}

static void
wait_remove(struct conn *c)
{
	rw_list_remove(&c->wlink);
}

/* Put a finished connection in front of the wait list: the first to evict. */
static void
wait_push_front(struct conn *c)
{
	wait_remove(c);
	rw_list_insert_head(&c->s->wait, &c->wlink);
}

static void
conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	struct rw_httpd *s = c->s;
	wait_remove(c);
	s->nlive--;
	rw_list_remove(&c->link);
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void
linger_timer_cb(uv_timer_t *t)
{
	conn_close(t->data);
}

/* The current phase's deadline passed. */
static void
deadline_cb(uv_timer_t *t)
{
	static const char r408[] = "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; "
				   "charset=utf-8\r\nContent-Length: 16\r\nConnection: "
				   "close\r\n\r\nRequest Timeout\n";
	struct conn *c = t->data;
	enum rw_httpd_timeout k = c->phase == PH_HEAD	? RW_HTTPD_TO_HEAD
				  : c->phase == PH_BODY ? RW_HTTPD_TO_REQUEST
				  : c->phase == PH_IDLE ? RW_HTTPD_TO_IDLE
							: RW_HTTPD_TO_WRITE;
	c->s->st.timeouts[k]++;
	if ((k == RW_HTTPD_TO_HEAD || k == RW_HTTPD_TO_REQUEST) && c->in.len > 0 &&
	    c->out.len == 0 && !c->tc) {
		/* Tell a slow but honest client why; never wait for it. */
		uv_buf_t b = uv_buf_init((char *)r408, sizeof(r408) - 1);
		(void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	}
	conn_close(c);
}

/*
 * Recompute the phase and (re)start the deadline timer. Called after every
 * event; a held answer and a lingering close keep their own timers.
 */
static void
conn_arm(struct conn *c)
{
	struct rw_httpd *s = c->s;
	if (c->closing || c->held || c->lingering)
		return;
	uint64_t now = uv_now(s->loop);
	enum phase ph;
	if (c->writing || c->close_after || c->out.len > 0)
		ph = PH_WRITE;
	else if (c->in.len == 0 && c->nreq > 0)
		ph = PH_IDLE;
	else
		ph = c->head_done ? PH_BODY : PH_HEAD;
	if (ph != c->phase) {
		/* A request starts when its first byte is read, or at accept. */
		if (ph == PH_HEAD || (ph == PH_BODY && c->phase != PH_HEAD))
			c->req_ms = now;
		c->phase = ph;
		c->phase_ms = now;
	}
	uint64_t due;
	switch (ph) {
	case PH_HEAD: {
		uint64_t h = c->req_ms + (uint64_t)s->head_ms,
			 r = c->req_ms + (uint64_t)s->request_ms;
		due = h < r ? h : r;
		break;
	}
	case PH_BODY:
		due = c->req_ms + (uint64_t)s->request_ms;
		break;
	case PH_IDLE:
		due = c->phase_ms + (uint64_t)s->idle_ms;
		break;
	default:
		due = c->phase_ms + (uint64_t)s->write_ms;
		break;
	}
	if (c->tc && !s->tr.established(c->tc)) {
		/* Each handshake flight would restart the phase: bound the whole handshake. */
		uint64_t hs = c->accept_ms + (uint64_t)s->head_ms;
		if (hs < due)
			due = hs;
	}
	uv_timer_start(&c->timer, deadline_cb, due > now ? due - now : 0, 0);
}

/* A held answer's delay is over: send it and go on as usual. */
static void
hold_timer_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	c->held = 0;
	conn_process(c);
}

static void
alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
	struct conn *c = hd->data;
	(void)suggested;
	size_t room = c->lingering ? READ_CHUNK
		      : c->tc	   ? c->cin.max - c->cin.len
				   : c->in.max - c->in.len;
	if (room > READ_CHUNK)
		room = READ_CHUNK;
	b->base = c->s->rbuf;
	b->len = room;
}

static void
read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = st->data;
	if (c->closing)
		return;
	if (nread == UV_ENOBUFS) {
		/* Input full: wait until processing frees room. */
		uv_read_stop(st);
		c->reading = 0;
		return;
	}
	if (nread == UV_EOF && !c->lingering) {
		/* Half-close: answer what was received, then close. */
		c->eof = 1;
		c->reading = 0;
		uv_read_stop(st); /* conn_pull may have seen the EOF before libuv did */
		if (!c->writing && !c->held)
			conn_close(c);
		return;
	}
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0 || c->lingering)
		return;
	if (rw_buf_append(c->tc ? &c->cin : &c->in, b->base, (size_t)nread) != 0) {
		conn_close(c);
		return;
	}
	conn_process(c);
}

static void
conn_start_reading(struct conn *c)
{
	if (c->reading || c->closing || c->eof)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
		c->reading = 1;
	else
		conn_close(c);
}

static void
shutdown_cb(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;
	if (c->closing)
		return;
	if (status < 0 || c->eof) {
		conn_close(c);
		return;
	}
	/* Drain what the peer still sends until EOF or the linger timer. */
	c->lingering = 1;
	wait_push_front(c);
	uv_timer_start(&c->timer, linger_timer_cb, LINGER_MS, 0);
	conn_start_reading(c);
}

static void
conn_finish_close(struct conn *c)
{
	c->sreq.data = c;
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, shutdown_cb) != 0)
		conn_close(c);
}

/* After the output is fully written: close, or go on with the input. */
static void
conn_after_write(struct conn *c)
{
	rw_buf_reset(&c->out);
	c->out_sent = 0;
	c->out_done = 0;
	if (c->out.cap > KEEP_CAP)
		rw_buf_fini(&c->out);
	rw_buf_reset(&c->cout);
	if (c->cout.cap > KEEP_CAP)
		rw_buf_fini(&c->cout);
	if (c->close_after) {
		conn_finish_close(c);
		return;
	}
	conn_process(c);
}

static void
write_cb(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	c->writing = 0;
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	conn_after_write(c);
}

/* Send c->out: try a direct write first, queue the rest. */
static void
conn_flush(struct conn *c)
{
	struct rw_buf *src = &c->out;
	if (c->writing || c->closing || c->held)
		return;
	if (c->tc) {
		/* What goes on the wire is the transport's output: protect the answers first. */
		struct rw_httpd_transport *tr = &c->s->tr;
		if (c->out.len > c->out_done) {
			if (tr->write(c->tc, c->out.data + c->out_done, c->out.len - c->out_done)) {
				conn_close(c);
				return;
			}
			c->out_done = c->out.len;
		}
		if (c->close_after && !c->notified && tr->established(c->tc)) {
			tr->shutdown(c->tc);
			c->notified = 1;
		}
		src = &c->cout;
	}
	if (src->len == 0) {
		if (c->close_after)
			conn_finish_close(c);
		return;
	}
	uv_buf_t b = uv_buf_init(src->data, (unsigned int)src->len);
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n == (int)src->len) {
		conn_after_write(c);
		return;
	}
	if (n < 0 && n != UV_EAGAIN) {
		conn_close(c);
		return;
	}
	c->out_sent = n > 0 ? (size_t)n : 0;
	b = uv_buf_init(src->data + c->out_sent, (unsigned int)(src->len - c->out_sent));
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
		conn_close(c);
		return;
	}
	c->writing = 1;
}

/* Queue a short error answer and mark the connection for closing. */
static void
queue_error(struct conn *c, int status)
{
	const char *r = reason(status);
	rw_buf_printf(&c->out,
		      "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		      "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
		      status, r, strlen(r) + 1, r);
	c->close_after = 1;
}

/* Run the handler for one complete request and append its answer to out. */
static void
dispatch(struct conn *c, struct rw_httpd_head *h)
{
	struct rw_httpd *s = c->s;
	char *base = c->in.data;
	size_t body_off = h->head_len;
	size_t body_len = h->content_length > 0 ? (size_t)h->content_length : 0;
	struct req_priv priv = {base, h};
	struct rw_httpd_resp *resp = &s->resp;
	int is_head;

	/* The request is complete: the connection is no longer waiting. */
	wait_remove(c);
	c->phase = PH_NONE;
	c->head_done = 0;
	c->nreq++;
	rw_httpd_head_terminate(base, h);
	struct rw_httpd_req req = {
	    .method = base + h->method.off,
	    .query = base + h->query.off,
	    .path = base + h->path.off,
	    .body = base + body_off,
	    .body_len = body_len,
	    .peer = c->peer,
	    .priv = &priv,
	};
	/* Give the handler a NUL-terminated body; restore the next byte after. */
	char saved = base[body_off + body_len];
	base[body_off + body_len] = '\0';

	resp->status = 200;
	resp->content_type = NULL;
	resp->delay_ms = 0;
	rw_buf_reset(&resp->body);
	rw_buf_reset(&resp->headers);
	s->st.requests++;
	s->handler(&req, resp, s->ud);
	is_head = strcmp(req.method, "HEAD") == 0;
	base[body_off + body_len] = saved;

	if (c->closing)
		return;
	if (!h->keep_alive || s->closing)
		c->close_after = 1;
	int status = resp->status >= 100 && resp->status <= 999 ? resp->status : 500;
	int rv = rw_buf_printf(
	    &c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
	    reason(status), resp->content_type ? resp->content_type : "text/plain; charset=utf-8",
	    resp->body.len);
	if (!rv && resp->headers.len)
		rv = rw_buf_append(&c->out, resp->headers.data, resp->headers.len);
	if (!rv && c->close_after)
		rv = rw_buf_puts(&c->out, "Connection: close\r\n");
	else if (!rv && h->minor == 0)
		rv = rw_buf_puts(&c->out, "Connection: keep-alive\r\n");
	if (!rv)
		rv = rw_buf_puts(&c->out, "\r\n");
	if (!rv && !is_head && resp->body.len)
		rv = rw_buf_append(&c->out, resp->body.data, resp->body.len);
	if (rv) {
		/* Cannot happen with the caps above; fail safe. */
		rw_buf_reset(&c->out);
		queue_error(c, 500);
	}
	if (resp->body.cap > KEEP_CAP)
		rw_buf_fini(&resp->body);
	if (resp->headers.cap > KEEP_CAP)
		rw_buf_fini(&resp->headers);
	if (resp->delay_ms > 0) {
		/* Hold the answer; the connection timer releases it (hold_timer_cb). */
		c->held = 1;
		uv_timer_start(&c->timer, hold_timer_cb, (uint64_t)resp->delay_ms, 0);
	}
}

/*
 * Run the transport over the bytes received: handshake, then plaintext into
 * in. Never while a write is in flight (the transport appends to cout, which
 * the write is reading). -1 when the connection was closed.
 */
static int
conn_untransport(struct conn *c)
{
	if (!c->tc || c->writing || c->closing || c->lingering)
		return 0;
	if (c->s->tr.read(c->tc, &c->in) != 0) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/* Answer every complete request in the input, then write. */
static void
conn_process(struct conn *c)
{
	struct rw_httpd *s = c->s;
	struct rw_httpd_head head;
	struct rw_httpd_frame f;

	if (conn_untransport(c))
		return;
	while (!c->closing && !c->writing && !c->close_after && !c->held && c->in.len > 0 &&
	       c->out.len < OUT_SOFT) {
		rw_httpd_frame(c->in.data, c->in.len, s->max_body, &head, &f);
		c->head_done = f.head_done;
		if (f.status > 0) {
			queue_error(c, f.status);
			break;
		}
		if (f.status < 0) {
			/* The client waits for our go-ahead before sending the body. */
			if (f.want_continue && !c->continued) {
				rw_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
				c->continued = 1;
			}
			break;
		}
		c->continued = 0;
		dispatch(c, &head);
		if (c->closing)
			return;
		rw_buf_consume(&c->in, f.total);
		if (conn_untransport(c))
			return;
	}
	if (c->closing)
		return;
	if (c->in.len == 0 && c->in.cap > KEEP_CAP)
		rw_buf_fini(&c->in);
	if (c->close_after) {
		/* Stop reading; conn_finish_close drains after the write. */
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = 0;
		}
	} else if (!c->writing) {
		conn_start_reading(c);
	}
	conn_flush(c);
	if (c->closing)
		return;
	if (c->eof && !c->writing && !c->held) {
		conn_close(c);
		return;
	}
	if (!c->writing && !c->held && !c->close_after && !c->lingering)
		wait_push(c);
	conn_arm(c);
}

static void
fill_peer(struct conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			uv_ip4_name(a, ip, sizeof(ip));
			port = ntohs(a->sin_port);
			c->addr.family = AF_INET;
			memcpy(c->addr.ip, &a->sin_addr, 4);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			uv_ip6_name(a, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
			c->addr.family = AF_INET6;
			memcpy(c->addr.ip, &a->sin6_addr, 16);
			snprintf(c->peer, sizeof(c->peer), "[%s]:%d", ip, port);
			return;
		}
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
}

static int
same_peer(const struct conn *a, const struct conn *b)
{
	return a->addr.family == b->addr.family &&
	       memcmp(a->addr.ip, b->addr.ip, sizeof(a->addr.ip)) == 0;
}

/*
 * Read, without waiting, what the peer has already sent, and act on it as
 * read_cb would: a connection about to be evicted may hold a whole request.
 */
static void
conn_pull(struct conn *c)
{
	uv_os_fd_t fd;
	if (c->closing || c->eof || c->lingering || !c->reading ||
	    uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
		return;
	for (int i = 0; i < 4 && !c->closing && !c->eof && c->in.len < c->in.max; i++) {
		uv_buf_t b;
		alloc_cb((uv_handle_t *)&c->tcp, READ_CHUNK, &b);
		ssize_t n = recv(fd, b.base, b.len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		read_cb((uv_stream_t *)&c->tcp, n > 0 ? n : n == 0 ? UV_EOF : -errno, &b);
		if (n <= 0)
			return;
	}
}

/*
 * Make room for newcomer c: evict the connection waiting longest (of c's
 * peer address when peer_only), else the one writing longest. Returns 0 when
 * one was evicted or freed itself meanwhile, -1 when none can go.
 */
static int
evict_one(struct rw_httpd *s, struct conn *c, int peer_only)
{
	int live0 = s->nlive;
	/* Bounded: a peer that keeps sending cannot hold the loop here. */
	int guard = 4 * s->nlive + 16;
	for (struct rw_list *n = s->wait.next; n != &s->wait && guard > 0; guard--) {
		struct conn *v = rw_list_entry(n, struct conn, wlink);
		if (v == c || (peer_only && !same_peer(v, c))) {
			n = n->next;
			continue;
		}
		unsigned long nreq = v->nreq;
		conn_pull(v);
		if (s->nlive < live0)
			return 0; /* it closed by itself (EOF or a final answer) */
		if (v->nreq == nreq && waiting(v)) {
			s->st.evicted++;
			conn_close(v);
			return 0;
		}
		/* It held a request, answered now: start over from the longest waiting. */
		n = s->wait.next;
	}
	/*
	 * Nobody waits: the next best victim is the peer that has been slowest to
	 * take its answer (an answer held on purpose, such as a /drain, stays).
	 */
	struct conn *w = NULL;
	struct rw_list *n;
	RW_LIST_FOREACH (n, &s->conns) {
		struct conn *o = rw_list_entry(n, struct conn, link);
		if (o != c && !o->held && o->phase == PH_WRITE && (!peer_only || same_peer(o, c)) &&
		    (!w || o->phase_ms < w->phase_ms))
			w = o;
	}
	if (!w)
		return -1;
	s->st.evicted++;
	conn_close(w);
	return 0;
}

/* Admit c under both caps, evicting as needed. 0, or -1 when refused. */
static int
admit(struct rw_httpd *s, struct conn *c)
{
	int same = 0;
	struct rw_list *n;
	RW_LIST_FOREACH (n, &s->conns) {
		struct conn *o = rw_list_entry(n, struct conn, link);
		if (o != c && same_peer(o, c))
			same++;
	}
	if (same >= s->max_per_peer && evict_one(s, c, 1) != 0)
		return -1;
	while (s->nlive > s->max_conns)
		if (evict_one(s, c, 0) != 0)
			return -1;
	return 0;
}

static void
reject_closed(uv_handle_t *hd)
{
	struct rw_httpd *s = hd->data;
	free(hd);
	s->open_handles--;
	server_maybe_done(s);
}

static void
on_connection(uv_stream_t *ls, int status)
{
	struct rw_httpd *s = ls->data;
	if (status < 0 || s->closing)
		return;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		/* Accept and close at once, so the backlog does not fill up. */
		uv_tcp_t *t = malloc(sizeof(*t));
		if (!t)
			return;
		uv_tcp_init(s->loop, t);
		t->data = s;
		s->open_handles++;
		if (uv_accept(ls, (uv_stream_t *)t) == 0) {
			s->st.accepted++;
			s->st.refused++;
		}
		uv_close((uv_handle_t *)t, reject_closed);
		return;
	}
	c->s = s;
	rw_list_init(&c->wlink);
	rw_buf_init(&c->in, RW_HTTPD_MAX_HEAD + s->max_body);
	rw_buf_init(&c->out, OUT_MAX);
	rw_buf_init(&c->cin, CIN_MAX);
	rw_buf_init(&c->cout, COUT_MAX);
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->open_handles = 2;
	s->nconns++;
	s->nlive++;
	rw_list_insert_head(&s->conns, &c->link);
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	s->st.accepted++;
	uv_tcp_nodelay(&c->tcp, 1);
	fill_peer(c);
	if (admit(s, c) != 0) {
		s->st.refused++;
		conn_close(c);
		return;
	}
	if (s->has_tr) {
		c->accept_ms = uv_now(s->loop);
		c->tc = s->tr.conn_new(s->tr.ud, &c->cin, &c->cout);
		if (!c->tc) {
			s->st.refused++;
			conn_close(c);
			return;
		}
	}
	wait_push(c);
	conn_arm(c);
	conn_start_reading(c);
	/* A client usually sends its request right after connecting: answer now. */
	conn_pull(c);
}

static void
set_err(char *err, size_t errlen, const char *fmt, const char *host, int port, int e)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, host, port, strerror(e));
}

/* Bind and listen with plain socket calls, so a failure leaves no uv handle behind. */
static int
open_listener(const char *host, int port, int *fdp, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int fd = -1, rv, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		rv = uv_ip6_addr(host, port, a);
		slen = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		rv = uv_ip4_addr(host, port, a);
		slen = sizeof(*a);
	}
	if (rv) {
		set_err(err, errlen, "bad listen address %s:%d: %s", host, port, EINVAL);
		rv = -EINVAL;
		goto fail;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rv = -errno;
		set_err(err, errlen, "socket for %s:%d: %s", host, port, errno);
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) != 0) {
		rv = -errno;
		set_err(err, errlen, "bind %s:%d: %s", host, port, errno);
		goto fail;
	}
	if (listen(fd, 511) != 0) {
		rv = -errno;
		set_err(err, errlen, "listen %s:%d: %s", host, port, errno);
		goto fail;
	}
	*fdp = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return rv;
}

int
rw_httpd_new(uv_loop_t *loop, const struct rw_httpd_opts *opts, rw_httpd_handler handler, void *ud,
	     struct rw_httpd **out, char *err, size_t errlen)
{
	struct rw_httpd *s = NULL;
	const char *host = opts && opts->host ? opts->host : "0.0.0.0";
	int port = opts ? opts->port : 0;
	int fd = -1, rv;

	if (err && errlen)
		err[0] = '\0';
	if (!loop || !handler || !out || port < 0 || port > 65535) {
		rv = -EINVAL;
		if (err && errlen)
			snprintf(err, errlen, "invalid arguments");
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		rv = -ENOMEM;
		goto fail;
	}
	s->loop = loop;
	rw_list_init(&s->conns);
	rw_list_init(&s->wait);
	s->handler = handler;
	s->ud = ud;
	if (opts && opts->transport) {
		s->tr = *opts->transport;
		s->has_tr = 1;
	}
	s->max_body = opts && opts->max_body ? opts->max_body : DEF_MAX_BODY;
	s->max_conns = opts && opts->max_conns > 0 ? opts->max_conns : DEF_MAX_CONNS;
	s->max_per_peer =
	    opts && opts->max_conns_per_peer > 0 ? opts->max_conns_per_peer : DEF_MAX_PER_PEER;
	s->head_ms = opts && opts->head_timeout_ms > 0 ? opts->head_timeout_ms : DEF_HEAD_MS;
	s->request_ms =
	    opts && opts->request_timeout_ms > 0 ? opts->request_timeout_ms : DEF_REQUEST_MS;
	s->idle_ms = opts && opts->idle_timeout_ms > 0 ? opts->idle_timeout_ms : DEF_IDLE_MS;
	s->write_ms = opts && opts->write_timeout_ms > 0 ? opts->write_timeout_ms : DEF_WRITE_MS;
	rw_buf_init(&s->resp.body, RESP_BODY_MAX);
	rw_buf_init(&s->resp.headers, RESP_HDRS_MAX);

	rv = open_listener(host, port, &fd, err, errlen);
	if (rv)
		goto fail;
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == 0)
		s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	s->open_handles = 1;
	rv = uv_tcp_open(&s->listener, fd);
	if (rv == 0) {
		fd = -1; /* owned by the handle now */
		rv = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
	}
	if (rv) {
		if (err && errlen)
			snprintf(err, errlen, "listen %s:%d: %s", host, port, uv_strerror(rv));
		/* The handle exists now: release it asynchronously. */
		if (fd >= 0)
			close(fd);
		rw_httpd_free(s, NULL, NULL);
		return rv;
	}
	*out = s;
	return 0;
fail:
	if (s) {
		rw_buf_fini(&s->resp.body);
		rw_buf_fini(&s->resp.headers);
	}
	free(s);
	return rv;
}

static void
listener_closed(uv_handle_t *hd)
{
	struct rw_httpd *s = hd->data;
	s->open_handles--;
	server_maybe_done(s);
}

void
rw_httpd_free(struct rw_httpd *s, void (*closed)(void *ud), void *ud)
{
	if (!s || s->closing)
		return;
	s->closing = 1;
	s->closed = closed;
	s->closed_ud = ud;
	while (!rw_list_empty(&s->conns))
		conn_close(rw_list_entry(rw_list_first(&s->conns), struct conn, link));
	uv_close((uv_handle_t *)&s->listener, listener_closed);
}

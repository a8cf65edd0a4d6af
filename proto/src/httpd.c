/*
 * httpd.c - small HTTP/1.1 server on libuv (see rw/httpd.h).
 *
 * Each connection owns a TCP handle, an idle timer, a bounded input buffer
 * (head cap + body cap) and an output buffer. Requests are parsed by the pure
 * parser in httpd_parse.c; every complete request in the input (pipelining)
 * is answered in order and the answers go out in one write. While a write is
 * in flight no further request is processed; when the input buffer is full
 * reading stops until it drains. A connection that must close is shut down
 * for writing first and drained for a short while, so the peer receives the
 * last answer instead of a reset.
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

#define DEF_MAX_BODY (64 * 1024)
#define DEF_MAX_CONNS 256
#define DEF_IDLE_MS 30000
#define RESP_BODY_MAX (4 * 1024 * 1024)
#define RESP_HDRS_MAX (16 * 1024)
#define OUT_MAX (RESP_BODY_MAX + RESP_HDRS_MAX + 1024)
#define OUT_SOFT (256 * 1024) /* stop queueing pipelined answers past this */
#define KEEP_CAP (64 * 1024)  /* buffers above this are released when idle */
#define LINGER_MS 2000
#define READ_CHUNK (64 * 1024)

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct rw_httpd *s;
	struct conn *prev, *next;
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
};

struct rw_httpd {
	uv_loop_t *loop;
	uv_tcp_t listener;
	rw_httpd_handler handler;
	void *ud;
	size_t max_body;
	int max_conns;
	long idle_ms;
	int port;
	int nconns;
	unsigned long requests;
	unsigned long accepted;
	struct conn *conns;
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
	return s ? s->requests : 0;
}

unsigned long
rw_httpd_connections(const struct rw_httpd *s)
{
	return s ? s->accepted : 0;
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
	rw_buf_fini(&c->in);
	rw_buf_fini(&c->out);
	free(c);
	s->nconns--;
	server_maybe_done(s);
}

static void
conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	struct rw_httpd *s = c->s;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void
conn_timer_cb(uv_timer_t *t)
{
	conn_close(t->data);
}

/* A held answer's delay is over: send it and go on as usual. */
static void
hold_timer_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	c->held = 0;
	uv_timer_start(&c->timer, conn_timer_cb, (uint64_t)c->s->idle_ms, 0);
	conn_process(c);
}

static void
alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
	struct conn *c = hd->data;
	(void)suggested;
	size_t room = c->lingering ? READ_CHUNK : c->in.max - c->in.len;
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
	if (rw_buf_append(&c->in, b->base, (size_t)nread) != 0) {
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
	uv_timer_start(&c->timer, conn_timer_cb, LINGER_MS, 0);
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
	if (c->out.cap > KEEP_CAP)
		rw_buf_fini(&c->out);
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
	if (c->writing || c->closing || c->held)
		return;
	if (c->out.len == 0) {
		if (c->close_after)
			conn_finish_close(c);
		return;
	}
	uv_buf_t b = uv_buf_init(c->out.data, (unsigned int)c->out.len);
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n == (int)c->out.len) {
		conn_after_write(c);
		return;
	}
	if (n < 0 && n != UV_EAGAIN) {
		conn_close(c);
		return;
	}
	c->out_sent = n > 0 ? (size_t)n : 0;
	b = uv_buf_init(c->out.data + c->out_sent, (unsigned int)(c->out.len - c->out_sent));
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

/* NUL-terminate a span in place (the byte after it is a separator). */
static const char *
span_cstr(char *base, struct rw_httpd_span sp)
{
	base[sp.off + sp.len] = '\0';
	return base + sp.off;
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

	/* The byte after each span is a separator we may overwrite. */
	for (int i = 0; i < h->nfields; i++) {
		span_cstr(base, h->fields[i].name);
		span_cstr(base, h->fields[i].value);
	}
	/* The query ends at the SP before the version. */
	struct rw_httpd_req req = {
	    .method = span_cstr(base, h->method),
	    .query = span_cstr(base, h->query),
	    .path = span_cstr(base, h->path),
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
	s->requests++;
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

/* Answer every complete request in the input, then write. */
static void
conn_process(struct conn *c)
{
	struct rw_httpd *s = c->s;
	struct rw_httpd_head head;
	int handled = 0;

	while (!c->closing && !c->writing && !c->close_after && !c->held && c->in.len > 0 &&
	       c->out.len < OUT_SOFT) {
		int rv = rw_httpd_parse_head(c->in.data, c->in.len, &head);
		if (rv == 0)
			break;
		if (rv < 0) {
			int st = rv == -EMSGSIZE	  ? 431
				 : rv == -ENOTSUP	  ? 501
				 : rv == -EPROTONOSUPPORT ? 505
							  : 400;
			queue_error(c, st);
			break;
		}
		if (head.content_length > (long long)s->max_body) {
			queue_error(c, 413);
			break;
		}
		size_t total =
		    (size_t)rv + (head.content_length > 0 ? (size_t)head.content_length : 0);
		if (c->in.len < total) {
			/* The client waits for our go-ahead before sending the body. */
			if (head.expect_continue && !c->continued && head.minor >= 1) {
				rw_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
				c->continued = 1;
			}
			break;
		}
		c->continued = 0;
		dispatch(c, &head);
		if (c->closing)
			return;
		rw_buf_consume(&c->in, total);
		handled++;
	}
	if (c->closing)
		return;
	if (handled && !c->close_after && !c->held)
		uv_timer_start(&c->timer, conn_timer_cb, (uint64_t)s->idle_ms, 0);
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
	if (c->eof && !c->writing && !c->closing && !c->held)
		conn_close(c);
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
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			uv_ip6_name(a, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
			snprintf(c->peer, sizeof(c->peer), "[%s]:%d", ip, port);
			return;
		}
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
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
	if (s->nconns >= s->max_conns) {
		/* Accept and close at once, so the backlog does not fill up. */
		uv_tcp_t *t = malloc(sizeof(*t));
		if (!t)
			return;
		uv_tcp_init(s->loop, t);
		t->data = s;
		s->open_handles++;
		if (uv_accept(ls, (uv_stream_t *)t) == 0)
			s->accepted++;
		uv_close((uv_handle_t *)t, reject_closed);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->s = s;
	rw_buf_init(&c->in, RW_HTTPD_MAX_HEAD + s->max_body);
	rw_buf_init(&c->out, OUT_MAX);
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->open_handles = 2;
	s->nconns++;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	s->accepted++;
	uv_tcp_nodelay(&c->tcp, 1);
	fill_peer(c);
	uv_timer_start(&c->timer, conn_timer_cb, (uint64_t)s->idle_ms, 0);
	conn_start_reading(c);
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
	s->handler = handler;
	s->ud = ud;
	s->max_body = opts && opts->max_body ? opts->max_body : DEF_MAX_BODY;
	s->max_conns = opts && opts->max_conns > 0 ? opts->max_conns : DEF_MAX_CONNS;
	s->idle_ms = opts && opts->idle_timeout_ms > 0 ? opts->idle_timeout_ms : DEF_IDLE_MS;
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
	while (s->conns)
		conn_close(s->conns);
	uv_close((uv_handle_t *)&s->listener, listener_closed);
}

/*
 * httpd.h - a small HTTP/1.1 server on libuv for health, metrics and status
 * endpoints. Handlers are synchronous (they answer from memory), so no
 * answer ever waits on another peer. Request heads are capped at 8 KiB and
 * bodies at max_body; every phase of a connection has a deadline (see
 * rw_httpd_opts), and when the connection caps are reached a new connection
 * evicts the one that has waited longest for a request, so a fresh probe is
 * served however many silent or slow peers are connected.
 */
#ifndef RW_HTTPD_H
#define RW_HTTPD_H

#include <stddef.h>

#include <uv.h>

#include "rw/buf.h"

struct rw_httpd;

struct rw_httpd_req {
	const char *method;
	const char *path;  /* without the query string, not decoded */
	const char *query; /* "" when absent */
	const char *body;
	size_t body_len;
	const char *peer; /* "ip:port" */
	void *priv;	  /* internal */
};

/* Value of a request header (case-insensitive name), or NULL. */
const char *rw_httpd_header(const struct rw_httpd_req *req, const char *name);

struct rw_httpd_resp {
	int status;		  /* default 200 */
	const char *content_type; /* default "text/plain; charset=utf-8" */
	struct rw_buf body;	  /* handler appends; bounded */
	struct rw_buf headers;	  /* extra "Name: value\r\n" lines */
	long delay_ms;		  /* > 0: send the answer this long after the handler
				     returned (the connection answers nothing else meanwhile);
				     default 0 */
};

typedef void (*rw_httpd_handler)(const struct rw_httpd_req *req, struct rw_httpd_resp *resp,
				 void *ud);

/*
 * Listener options; a field left 0 takes its default.
 *
 * Connection caps: a new connection beyond max_conns_per_peer (same peer IP
 * address) or max_conns evicts the connection of that address (or of any
 * address) that has waited longest for a request: one that has sent no
 * complete request since it was accepted or since its last answer was
 * written. When none waits, the one that has been writing its answer longest
 * goes (a peer slow to read). Only when every connection holds an answer on
 * purpose (rw_httpd_resp.delay_ms) is the new one refused, i.e. closed at
 * once.
 *
 * Deadlines (each closes the connection; a partial request gets a 408 first,
 * best effort): the head of a request complete within head_timeout_ms of
 * accept (first request) or of its first byte; head and body within
 * request_timeout_ms; between keep-alive requests, the next request's first
 * byte within idle_timeout_ms of the last answer; every answer written within
 * write_timeout_ms (a peer that stops reading). While an answer is being
 * written no further request is read past the input cap, so a peer's unsent
 * bytes stay under 256 KiB of pipelined answers plus one answer.
 */
/*
 * A byte transform between the socket and HTTP: TLS. The server owns two
 * bounded buffers per connection and hands them to conn_new: the transport
 * reads the peer's bytes from the front of cin (consuming them) and appends
 * what must go to the peer to cout. The server never runs the transport
 * while a write of cout is in flight, so cout is not moved under it.
 */
struct rw_httpd_transport {
	/* A connection's state, or NULL to refuse it (closed at once). */
	void *(*conn_new)(void *ud, struct rw_buf *cin, struct rw_buf *cout);
	/* Make progress on cin (handshake, records) and append plaintext to plain without
	 * growing it past its max. 0, or negative to close the connection. */
	int (*read)(void *tc, struct rw_buf *plain);
	/* Append the protected form of p[0..n) to cout. 0, or negative to close. */
	int (*write)(void *tc, const char *p, size_t n);
	/* Append the end-of-session message (TLS close_notify) to cout, best effort. */
	void (*shutdown)(void *tc);
	/* The handshake is over: requests may flow. */
	int (*established)(void *tc);
	void (*conn_free)(void *tc);
	void *ud;
};

struct rw_httpd_opts {
	/* NULL: plain HTTP. With a transport, head_timeout_ms also bounds the handshake
	 * (counted from accept). */
	const struct rw_httpd_transport *transport;
	const char *host;	 /* "0.0.0.0" when NULL */
	int port;		 /* 0 picks a free port; see rw_httpd_port() */
	size_t max_body;	 /* request body cap, default 64 KiB */
	int max_conns;		 /* default 256 */
	int max_conns_per_peer;	 /* default 16 */
	long head_timeout_ms;	 /* default 3000 */
	long request_timeout_ms; /* default 5000 */
	long idle_timeout_ms;	 /* default 5000 */
	long write_timeout_ms;	 /* default 5000 */
};

/* Bind and listen. Errors (bind failure...) are negative errno, with text in err. */
int rw_httpd_new(uv_loop_t *loop, const struct rw_httpd_opts *opts, rw_httpd_handler h, void *ud,
		 struct rw_httpd **out, char *err, size_t errlen);

/* The bound port. */
int rw_httpd_port(const struct rw_httpd *s);

/* Requests served so far. */
unsigned long rw_httpd_requests(const struct rw_httpd *s);

/* TCP connections accepted so far (refused ones included). */
unsigned long rw_httpd_connections(const struct rw_httpd *s);

/* Why a connection was closed by a deadline (index of rw_httpd_stats.timeouts). */
enum rw_httpd_timeout {
	RW_HTTPD_TO_HEAD,    /* request head not complete in time */
	RW_HTTPD_TO_REQUEST, /* request body not complete in time */
	RW_HTTPD_TO_IDLE,    /* keep-alive connection silent too long */
	RW_HTTPD_TO_WRITE,   /* answer not taken by the peer in time */
	RW_HTTPD_TO_COUNT
};

/* Counters since rw_httpd_new. */
struct rw_httpd_stats {
	unsigned long accepted; /* TCP connections accepted, refused ones included */
	unsigned long requests; /* requests answered by the handler */
	unsigned long evicted;	/* connections closed to make room for a new one */
	unsigned long refused;	/* new connections closed at once: every slot busy */
	unsigned long timeouts[RW_HTTPD_TO_COUNT];
	int open; /* connections open now */
};

/* A snapshot of the counters (all zero for NULL). Loop thread only. */
void rw_httpd_get_stats(const struct rw_httpd *s, struct rw_httpd_stats *out);

/*
 * Append the stats of n listeners in Prometheus text format to b, as
 * <prefix>_http_connections_total, _http_connections_open,
 * _http_evictions_total, _http_refusals_total and _http_timeouts_total{kind}
 * (kind "head", "request", "idle", "write")
 * (requests are left to the caller, which names them already), each sample
 * labelled listener="<names[i]>" when names is not NULL. A NULL server
 * renders as zeros.
 */
void rw_httpd_render_stats(struct rw_buf *b, const char *prefix, struct rw_httpd *const *servers,
			   const char *const *names, int n);

/* Close the listener and every connection; closed(ud) runs when all handles are released. */
void rw_httpd_free(struct rw_httpd *s, void (*closed)(void *ud), void *ud);

#endif

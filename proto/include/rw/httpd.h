/*
 * httpd.h - a small HTTP/1.1 server on libuv for health, metrics and status
 * endpoints. Handlers are synchronous (they answer from memory). Request
 * heads are capped at 8 KiB and bodies at max_body; connections idle for
 * idle_timeout_ms are closed; at most max_conns connections are kept.
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

struct rw_httpd_opts {
	const char *host;     /* "0.0.0.0" when NULL */
	int port;	      /* 0 picks a free port; see rw_httpd_port() */
	size_t max_body;      /* request body cap, default 64 KiB */
	int max_conns;	      /* default 256 */
	long idle_timeout_ms; /* default 30000 */
};

/* Bind and listen. Errors (bind failure...) are negative errno, with text in err. */
int rw_httpd_new(uv_loop_t *loop, const struct rw_httpd_opts *opts, rw_httpd_handler h, void *ud,
		 struct rw_httpd **out, char *err, size_t errlen);

/* The bound port. */
int rw_httpd_port(const struct rw_httpd *s);

/* Requests served so far. */
unsigned long rw_httpd_requests(const struct rw_httpd *s);

/* TCP connections accepted so far (including those closed at once over max_conns). */
unsigned long rw_httpd_connections(const struct rw_httpd *s);

/* Close the listener and every connection; closed(ud) runs when all handles are released. */
void rw_httpd_free(struct rw_httpd *s, void (*closed)(void *ud), void *ud);

#endif

/*
 * httpd_parse.h - internal: the HTTP/1.x request-head parser used by httpd.c.
 *
 * The parser is a pure function over a byte range, so it can be unit-tested
 * and fuzzed without sockets. It reports positions (offset + length into the
 * input) and never writes to the input.
 */
#ifndef RW_HTTPD_PARSE_H
#define RW_HTTPD_PARSE_H

#include <stddef.h>

/* Largest request head accepted (request line + headers + blank line). */
#define RW_HTTPD_MAX_HEAD 8192
/* Most header fields accepted in one request. */
#define RW_HTTPD_MAX_HEADERS 64

struct rw_httpd_span {
	size_t off;
	size_t len;
};

struct rw_httpd_field {
	struct rw_httpd_span name;
	struct rw_httpd_span value; /* optional whitespace trimmed on both sides */
};

struct rw_httpd_head {
	size_t head_len; /* bytes up to and including the blank line */
	struct rw_httpd_span method;
	struct rw_httpd_span target; /* request-target as sent */
	struct rw_httpd_span path;   /* target before '?' */
	struct rw_httpd_span query;  /* after '?', len 0 when absent */
	int minor;		     /* HTTP/1.<minor> */
	int nfields;
	struct rw_httpd_field fields[RW_HTTPD_MAX_HEADERS];
	long long content_length; /* -1 when absent */
	int keep_alive;		  /* 1 when the connection stays open afterwards */
	int expect_continue;	  /* "Expect: 100-continue" was sent */
};

/*
 * Parse the request head at the start of buf[0..len). Returns the head length
 * (> 0) when a complete and valid head is present, 0 when more bytes are
 * needed, or a negative errno: -EMSGSIZE when the head is longer than
 * RW_HTTPD_MAX_HEAD or has too many fields (answer 431), -EINVAL on bad syntax
 * or a bad Content-Length (400), -ENOTSUP for a Transfer-Encoding request
 * body (501), -EPROTONOSUPPORT for an HTTP version other than 1.x (505).
 * Empty lines before the request line are skipped (they count in head_len).
 */
int rw_httpd_parse_head(const char *buf, size_t len, struct rw_httpd_head *out);

/* What the start of a connection's input buffer holds (rw_httpd_frame). */
struct rw_httpd_frame {
	int status;	   /* 0: a whole request; > 0: answer this error and close; -1: need more */
	size_t total;	   /* status 0: head and body bytes of the request */
	int head_done;	   /* the head is complete (h is filled) */
	int want_continue; /* head complete, body missing, the client waits for 100 Continue */
};

/*
 * Frame the request at the start of buf[0..len) on a connection whose bodies
 * are capped at max_body: the connection's whole input decision, without I/O,
 * so the server and the fuzzer share it. A buffer of RW_HTTPD_MAX_HEAD +
 * max_body bytes always yields a request or an error, never "need more".
 */
void rw_httpd_frame(const char *buf, size_t len, size_t max_body, struct rw_httpd_head *h,
		    struct rw_httpd_frame *f);

/*
 * NUL-terminate, in place, the method, path, query and every field name and
 * value of a head parsed from buf (each span is followed by a separator that
 * belongs to no other span), so they can be handed out as C strings.
 */
void rw_httpd_head_terminate(char *buf, const struct rw_httpd_head *h);

#endif

/*
 * http.h - asynchronous HTTP client: libcurl multi driven by a libuv loop.
 *
 * One struct rw_http per loop. Requests complete through a callback on the
 * loop thread. Connections are reused (keep-alive) across requests to the
 * same host. Bodies are capped (max_body), so a huge answer fails the
 * request with -EMSGSIZE instead of growing memory.
 *
 * libcurl comes from one of two providers a program links
 * (proto/src/curl_api.h): rw_curl_linked (linked as usual: the controller)
 * or rw_curl_dlopen (libcurl.so.4 loaded on the first rw_http_start: the
 * agent). Either way it is first touched by the first rw_http_start, never
 * by rw_http_new; a library that cannot be loaded fails each request with
 * -ELIBACC and the reason in errmsg.
 */
#ifndef RW_HTTP_H
#define RW_HTTP_H

#include <stddef.h>

#include <uv.h>

struct rw_http;
struct rw_http_call;

struct rw_http_resp {
	int err;	  /* 0 when a response arrived; else negative: -ETIMEDOUT,
			     -ECONNREFUSED, -EMSGSIZE (body over max_body),
			     -ECANCELED, -EPROTO (other transport error),
			     -ELIBACC (libcurl could not be loaded) */
	long status;	  /* HTTP status, 0 when err != 0 */
	const char *body; /* NUL-terminated, valid only during the callback */
	size_t body_len;
	const char *errmsg;	  /* curl's error text (or why libcurl is missing) or "" */
	double total_ms;	  /* wall time of the transfer */
	long retry_after_s;	  /* Retry-After header in seconds, -1 if absent */
	const char *content_type; /* or NULL */
};

typedef void (*rw_http_done_cb)(const struct rw_http_resp *resp, void *ud);

/* Streaming: called with each chunk as it arrives (watch streams). Non-zero aborts. */
typedef int (*rw_http_data_cb)(const char *data, size_t len, void *ud);

struct rw_http_req {
	const char *method; /* "GET" when NULL */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
	const char *body;	    /* request body or NULL */
	size_t body_len;
	long timeout_ms;	  /* whole transfer; 0 = none (streams) */
	long connect_timeout_ms;  /* 0 = curl default */
	size_t max_body;	  /* 0 = 1 MiB default */
	const char *bearer_token; /* "Authorization: Bearer" when not NULL */
	const char *ca_file;	  /* verify the server against this CA */
	const char *client_cert;  /* PEM client certificate / key, or NULL */
	const char *client_key;
	int insecure;		 /* skip TLS verification (only when configured) */
	int http2;		 /* allow HTTP/2 (TLS) */
	long low_speed_time_s;	 /* abort a stream idle this long; 0 = off */
	rw_http_data_cb on_data; /* stream the body instead of collecting it */
	long watch_tag;		 /* non-zero: watch the connection while it is idle
				    (see rw_http_set_watch) */
};

/*
 * Called when an idle kept-alive connection last used by a request with a
 * watch tag ends: err is 0 when the peer closed it (EOF), -ECONNRESET or
 * another negative errno on a socket error, -EPROTO when unexpected bytes
 * arrived. Called from the loop, outside of any curl call; it may start,
 * cancel or free.
 */
typedef void (*rw_http_watch_cb)(long tag, int err, void *ud);

/* Create a client on loop (libcurl is not loaded yet). Returns 0 or a negative errno. */
int rw_http_new(uv_loop_t *loop, struct rw_http **out);

/*
 * Start a request. The request struct and strings are copied; the caller may
 * free them at once. `done` is always called exactly once (never from inside
 * rw_http_start itself), unless the call is cancelled with rw_http_cancel(),
 * in which case it is not called at all. *callp (if not NULL) receives a
 * handle valid until `done` runs or the call is cancelled.
 * A non-zero return (-EINVAL, -ENOMEM, -ECANCELED after rw_http_free) means
 * the call was not started and `done` will not run. Failing to connect maps to
 * -ECONNREFUSED (-ETIMEDOUT when the connect itself timed out).
 */
int rw_http_start(struct rw_http *h, const struct rw_http_req *req, rw_http_done_cb done, void *ud,
		  struct rw_http_call **callp);

/* Abort a call in flight; its done callback will not be called. */
void rw_http_cancel(struct rw_http_call *call);

/*
 * Watch idle connections: every connection that served a request with a
 * non-zero watch_tag stays polled while it sits idle in the connection
 * cache; when the server closes it (a dying process's sockets are closed
 * by the kernel at once), cb runs once with the tag. A connection reused by
 * a later request takes that request's tag; a connection curl closes
 * itself is never reported. cb NULL turns reporting off.
 */
void rw_http_set_watch(struct rw_http *h, rw_http_watch_cb cb, void *ud);

/* Number of idle connections reported through the watch callback so far. */
unsigned long rw_http_watch_events(const struct rw_http *h);

/* Number of calls in flight. */
int rw_http_inflight(const struct rw_http *h);

/*
 * New TCP connections opened so far (the sum of CURLINFO_NUM_CONNECTS over
 * finished calls); a reused keep-alive connection does not count.
 */
unsigned long rw_http_connects(const struct rw_http *h);

/*
 * Cancel everything and release the client. Its uv handles close
 * asynchronously: run the loop afterwards until it has no more work; `closed`
 * (may be NULL) runs when everything is released.
 */
void rw_http_free(struct rw_http *h, void (*closed)(void *ud), void *ud);

#endif

/*
 * http.c - asynchronous HTTP client: libcurl's multi_socket API driven by a
 * libuv loop (see rw/http.h).
 *
 * libcurl is called through a table (curl_api.h), and the multi handle is
 * created by the first request: with the dlopen provider, a client that
 * never sends one never maps libcurl.
 *
 * One CURLM per client holds the connection and DNS caches, so keep-alive
 * connections are reused across calls. Easy handles (with their call record
 * and body buffer) are kept in a small free pool and reset for reuse.
 *
 * Glue rules (libcurl 7.88 multi-uv pattern, with its known pitfalls fixed):
 * curl's timer callback only arms a uv timer (0 ms stays 0: it runs in the
 * same or the next loop turn without sleeping) and never calls
 * curl_multi_socket_action itself; poll errors are passed on as
 * CURL_CSELECT_ERR; curl_multi_info_read is drained after every
 * socket_action; a transfer's result is read before the handle is removed.
 *
 * Sockets: curl opens and closes its TCP sockets through our open/close
 * socket callbacks, so each one has one poll context for its whole life
 * (one uv_poll per fd, closed before the fd). When curl stops polling a
 * socket (CURL_POLL_REMOVE) the connection sits idle in curl's cache; if
 * the last request on it carried a watch tag, the context keeps polling
 * for readability/hang-up, and an event there (the server closed the
 * connection or sent bytes nobody asked for) is reported once through the
 * watch callback, after which the socket is left alone until curl reuses
 * (finds it dead) or closes it. The poll events of a socket only change
 * when they must: libuv's uv_poll_start costs an epoll_ctl DEL + ADD.
 *
 * User code runs in two places: the done callback (called outside of any
 * curl call) and on_data (called from curl's write callback, inside
 * socket_action). Calls into this module made from on_data that would
 * re-enter curl (start, cancel of a running call, free) are deferred to a
 * zero-delay uv timer or to the end of the current socket_action.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "curl_api.h"
#include "rw/buf.h"
#include "rw/http.h"
#include "rw/list.h"

#define DEF_MAX_BODY (1024 * 1024)
#define POOL_MAX 16
#define KEEP_BODY_CAP (64 * 1024) /* pooled body buffers above this are released */
/* curl's connection cache size: above the requests a client keeps in flight (the
 * controller: 64 queued + 32 readiness gates + the Lease + its watches), or each
 * request over it costs a new connection. */
#define MAX_CONNECTS 128
#define KEY_MAX 400 /* setup key of a plain GET (URL and limits) */

enum call_state {
	C_FREE,	      /* in the pool */
	C_ACTIVE,     /* added to the multi handle */
	C_DEFER_ADD,  /* started from inside curl: add from the defer timer */
	C_DEFER_FAIL, /* failed before reaching curl: complete from the defer timer */
	C_DONE,	      /* its done callback is running */
};

struct sock_ctx {
	uv_poll_t poll;
	struct rw_http *h;
	curl_socket_t fd;
	int owned;	     /* opened through open_socket: closed through close_socket */
	int idle;	     /* curl does not poll it: a cached keep-alive connection */
	int events;	     /* uv events being polled; 0 = stopped */
	int fired;	     /* the watch reported it; not polled until curl reuses it */
	long tag;	     /* watch tag of the last request on it */
	struct rw_list link; /* in h->socks */
};

struct rw_http_call {
	struct rw_http *h;
	CURL *easy;
	struct rw_list link; /* in one of h's call lists; self-linked in none */
	enum call_state state;
	int in_multi;
	int cancelled;
	int overflow; /* body exceeded max_body */
	int aborted;  /* on_data returned non-zero */
	int fail_err; /* for C_DEFER_FAIL */
	long watch_tag;
	int setup_kept; /* its easy handle is still set up for `key` */
	char key[KEY_MAX];
	rw_http_done_cb done;
	void *ud;
	rw_http_data_cb on_data;
	struct rw_buf body;
	struct curl_slist *hdrs;
	long retry_after;
	char errbuf[CURL_ERROR_SIZE];
};

struct rw_http {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer; /* curl's timeout */
	uv_timer_t defer; /* deferred work */
	/* Call lists, newest first (calls are inserted at the head). */
	struct rw_list active;	 /* in the multi handle */
	struct rw_list deferred; /* waiting for the defer timer */
	struct rw_list draining; /* being handled by the defer timer */
	struct rw_list pool;
	int npool;
	struct rw_list socks; /* struct sock_ctx */
	int inflight;
	unsigned long connects;
	rw_http_watch_cb watch_cb;
	void *watch_ud;
	unsigned long watch_events;
	int in_curl;
	int closing;
	int torn_down;
	int open_handles;
	void (*closed)(void *ud);
	void *closed_ud;
};

/* libcurl, once a request has needed it (curl_api.h); NULL before. */
static const struct rw_curl_api *cu;

static void teardown(struct rw_http *h);

/* ---- lists ---- */

/* Link c first in list l (c is in no list). */
static void
list_push(struct rw_list *l, struct rw_http_call *c)
{
	rw_list_insert_head(l, &c->link);
}

/* The first call of l, or NULL. */
static struct rw_http_call *
list_first(const struct rw_list *l)
{
	struct rw_list *n = rw_list_first(l);
	return n ? rw_list_entry(n, struct rw_http_call, link) : NULL;
}

/* Unlink c from its list; a call in none is left alone. */
static void
list_unlink(struct rw_http_call *c)
{
	rw_list_remove(&c->link);
}

/* ---- uv handle bookkeeping ---- */

static void
handle_closed(struct rw_http *h)
{
	if (--h->open_handles > 0 || !h->torn_down)
		return;
	void (*cb)(void *) = h->closed;
	void *ud = h->closed_ud;
	free(h);
	if (cb)
		cb(ud);
}

static void
timer_closed(uv_handle_t *hd)
{
	handle_closed(hd->data);
}

static void
sock_closed(uv_handle_t *hd)
{
	struct sock_ctx *s = hd->data;
	struct rw_http *h = s->h;
	free(s);
	handle_closed(h);
}

/* Stop polling and release the context; the fd itself is left open. */
static void
sock_close(struct sock_ctx *s)
{
	rw_list_remove(&s->link);
	/* uv_poll_stop removes the fd from epoll at once (before any close). */
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static struct sock_ctx *
sock_find(struct rw_http *h, curl_socket_t fd)
{
	struct rw_list *n;
	RW_LIST_FOREACH (n, &h->socks) {
		struct sock_ctx *s = rw_list_entry(n, struct sock_ctx, link);
		if (s->fd == fd)
			return s;
	}
	return NULL;
}

static struct sock_ctx *
sock_new(struct rw_http *h, curl_socket_t fd, int owned)
{
	struct sock_ctx *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
		free(s);
		return NULL;
	}
	s->h = h;
	s->fd = fd;
	s->owned = owned;
	s->poll.data = s;
	h->open_handles++;
	rw_list_insert_head(&h->socks, &s->link);
	return s;
}

/* ---- call records ---- */

static void
call_destroy(struct rw_http_call *c)
{
	if (!c)
		return;
	if (c->hdrs)
		cu->slist_free_all(c->hdrs);
	if (c->easy)
		cu->easy_cleanup(c->easy);
	rw_buf_fini(&c->body);
	free(c);
}

/* Return a finished call to the pool (or free it). */
static void
call_recycle(struct rw_http_call *c)
{
	struct rw_http *h = c->h;
	list_unlink(c);
	if (c->hdrs)
		cu->slist_free_all(c->hdrs);
	c->hdrs = NULL;
	c->state = C_FREE;
	if (h->torn_down || h->npool >= POOL_MAX || !c->easy) {
		call_destroy(c);
		return;
	}
	rw_buf_reset(&c->body);
	if (c->body.cap > KEEP_BODY_CAP)
		rw_buf_fini(&c->body);
	list_push(&h->pool, c);
	h->npool++;
}

/*
 * A plain GET (no headers, body, credentials, TLS settings or streaming)
 * is described completely by its key; an easy handle set up for the same
 * key is reused as it is (repeated probes skip curl_easy_reset and every
 * setopt). Returns 0 when req has a key.
 */
static int
req_key(const struct rw_http_req *req, char *key, size_t len)
{
	if ((req->method && strcmp(req->method, "GET") != 0) || req->headers || req->body ||
	    req->bearer_token || req->ca_file || req->client_cert || req->client_key ||
	    req->insecure || req->http2 || req->low_speed_time_s || req->on_data)
		return -1;
	int n = snprintf(key, len, "%ld %ld %zu %ld %s", req->timeout_ms, req->connect_timeout_ms,
			 req->max_body, req->watch_tag, req->url);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static struct rw_http_call *
call_get(struct rw_http *h, const char *key)
{
	struct rw_http_call *c = NULL;
	struct rw_list *n;
	if (key)
		RW_LIST_FOREACH (n, &h->pool) {
			struct rw_http_call *x = rw_list_entry(n, struct rw_http_call, link);
			if (x->setup_kept && strcmp(x->key, key) == 0) {
				c = x;
				break;
			}
		}
	if (!c)
		c = list_first(&h->pool);
	if (c) {
		list_unlink(c);
		h->npool--;
		if (!key || !c->setup_kept || strcmp(c->key, key) != 0) {
			cu->easy_reset(c->easy);
			c->setup_kept = 0;
		}
	} else {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		c->easy = cu->easy_init();
		if (!c->easy) {
			free(c);
			return NULL;
		}
		c->h = h;
		rw_list_init(&c->link);
		rw_buf_init(&c->body, DEF_MAX_BODY);
	}
	c->in_multi = 0;
	c->cancelled = 0;
	c->overflow = 0;
	c->aborted = 0;
	c->fail_err = 0;
	c->retry_after = -1;
	c->errbuf[0] = '\0';
	return c;
}

/* ---- curl callbacks ---- */

static size_t
write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct rw_http_call *c = ud;
	size_t len = size * n;
	if (c->cancelled || c->h->closing)
		return 0;
	if (c->on_data) {
		if (c->on_data(p, len, c->ud) != 0) {
			c->aborted = 1;
			return 0;
		}
		/* on_data may have cancelled this call or freed the client. */
		return c->cancelled || c->h->closing ? 0 : len;
	}
	if (rw_buf_append(&c->body, p, len) != 0) {
		c->overflow = 1;
		return 0;
	}
	return len;
}

/* Seconds from a Retry-After value: delay-seconds or an HTTP-date. */
static long
parse_retry_after(const char *v, size_t len)
{
	char tmp[64];
	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' ||
		       v[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	if (tmp[0] >= '0' && tmp[0] <= '9') {
		char *end;
		long s = strtol(tmp, &end, 10);
		return *end == '\0' && s >= 0 ? s : -1;
	}
	time_t t = cu->getdate(tmp, NULL);
	if (t == (time_t)-1)
		return -1;
	time_t now = time(NULL);
	return t > now ? (long)(t - now) : 0;
}

static size_t
header_cb(char *p, size_t size, size_t n, void *ud)
{
	struct rw_http_call *c = ud;
	size_t len = size * n;
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
		c->retry_after = -1; /* a new response (after 1xx) starts */
	else if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0)
		c->retry_after = parse_retry_after(p + 12, len - 12);
	return len;
}

static void poll_cb(uv_poll_t *p, int status, int events);

/* Poll for ev (0: stop); a no-op when nothing changes. */
static int
sock_poll(struct sock_ctx *s, int ev)
{
	if (ev == s->events)
		return 0;
	s->events = 0;
	if (ev == 0)
		return uv_poll_stop(&s->poll);
	int rv = uv_poll_start(&s->poll, ev, poll_cb);
	if (rv == 0)
		s->events = ev;
	return rv;
}

/* The events an idle connection is watched for. */
#define IDLE_EVENTS (UV_READABLE | UV_DISCONNECT)

static int
sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct rw_http *h = userp;
	struct sock_ctx *s = sockp;
	if (!s)
		s = sock_find(h, fd);
	if (what == CURL_POLL_REMOVE) {
		if (!s)
			return 0;
		if (!s->owned) {
			sock_close(s);
			return 0;
		}
		/* A cached keep-alive connection (or about to be closed by curl). */
		s->idle = 1;
		sock_poll(s, s->tag && h->watch_cb && !s->fired ? IDLE_EVENTS : 0);
		return 0;
	}
	if (!s) {
		s = sock_new(h, fd, 0);
		if (!s)
			return -1;
	}
	if (!sockp)
		cu->multi_assign(h->multi, fd, s);
	char *priv = NULL;
	cu->easy_getinfo(e, CURLINFO_PRIVATE, &priv);
	const struct rw_http_call *c = (const struct rw_http_call *)(void *)priv;
	s->tag = c ? c->watch_tag : 0;
	s->idle = 0;
	s->fired = 0;
	/* Reading also watches for hang-up: the same events as when idle, so
	 * a connection going idle or being reused costs no epoll_ctl. */
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= IDLE_EVENTS;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	return sock_poll(s, ev) == 0 ? 0 : -1;
}

/* CURLOPT_OPENSOCKETFUNCTION: every socket curl opens gets its context now. */
static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct rw_http *h = clientp;
	(void)purpose;
	curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
	if (fd == CURL_SOCKET_BAD)
		return CURL_SOCKET_BAD;
	/* A context left on this fd number belongs to a socket closed behind our
	 * back (never expected): drop it so one fd never has two poll handles. */
	struct sock_ctx *old = sock_find(h, fd);
	if (old)
		sock_close(old);
	if (!sock_new(h, fd, 1)) {
		close(fd);
		return CURL_SOCKET_BAD;
	}
	return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: release the poll handle, then the fd. */
static int
close_socket(void *clientp, curl_socket_t fd)
{
	struct rw_http *h = clientp;
	struct sock_ctx *s = sock_find(h, fd);
	if (s)
		sock_close(s);
	return close(fd);
}

static void on_timeout(uv_timer_t *t);

static int
timer_func(CURLM *m, long ms, void *userp)
{
	struct rw_http *h = userp;
	(void)m;
	if (h->torn_down)
		return 0;
	/* 0 ms: run from the loop without sleeping (never from in here). */
	if (ms < 0)
		uv_timer_stop(&h->timer);
	else
		uv_timer_start(&h->timer, on_timeout, (uint64_t)ms, 0);
	return 0;
}

/* ---- completion ---- */

static int
map_error(struct rw_http_call *c, CURLcode res)
{
	long oserr = 0;
	switch (res) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		cu->easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &oserr);
		return oserr == ETIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
	case CURLE_FILESIZE_EXCEEDED:
		return -EMSGSIZE;
	case CURLE_WRITE_ERROR:
		if (c->overflow)
			return -EMSGSIZE;
		if (c->aborted)
			return -ECANCELED;
		return -EPROTO;
	default:
		return -EPROTO;
	}
}

/* Deliver the result of a call and recycle it. */
static void
call_finish(struct rw_http_call *c, int err, const char *errmsg)
{
	struct rw_http *h = c->h;
	struct rw_http_resp r;
	list_unlink(c);
	memset(&r, 0, sizeof(r));
	r.err = err;
	r.retry_after_s = c->retry_after;
	r.errmsg = errmsg ? errmsg : "";
	r.body = rw_buf_cstr(&c->body);
	r.body_len = c->body.len;
	if (c->easy) {
		curl_off_t us = 0;
		char *ct = NULL;
		cu->easy_getinfo(c->easy, CURLINFO_TOTAL_TIME_T, &us);
		r.total_ms = (double)us / 1000.0;
		if (!err) {
			cu->easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &r.status);
			cu->easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &ct);
			r.content_type = ct;
		}
	}
	if (err) {
		r.body = "";
		r.body_len = 0;
	}
	if (!c->cancelled) {
		h->inflight--;
		c->state = C_DONE;
		if (c->done)
			c->done(&r, c->ud);
	}
	call_recycle(c);
}

static void
check_multi_info(struct rw_http *h)
{
	CURLMsg *m;
	int left;
	while (!h->closing && (m = cu->multi_info_read(h->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode res = m->data.result; /* read before remove_handle frees m */
		char *priv = NULL;
		long nconn = 0;
		cu->easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		struct rw_http_call *c = (struct rw_http_call *)(void *)priv;
		cu->easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nconn);
		h->connects += (unsigned long)(nconn > 0 ? nconn : 0);
		cu->multi_remove_handle(h->multi, e);
		if (!c)
			continue;
		c->in_multi = 0;
		int err = map_error(c, res);
		const char *msg = "";
		if (err)
			msg = c->errbuf[0] ? c->errbuf : cu->easy_strerror(res);
		call_finish(c, err, msg);
	}
}

static void
socket_action(struct rw_http *h, curl_socket_t fd, int flags)
{
	int running = 0;
	h->in_curl = 1;
	cu->multi_socket_action(h->multi, fd, flags, &running);
	h->in_curl = 0;
	if (h->closing) {
		teardown(h);
		return;
	}
	check_multi_info(h);
}

/* An event on an idle watched connection: report it once. */
static void
idle_event(struct sock_ctx *s, int status)
{
	struct rw_http *h = s->h;
	int err = status;
	if (s->fired)
		return;
	s->fired = 1;
	/* Level-triggered: stop before the callback so EOF cannot spin. */
	sock_poll(s, 0);
	if (status == 0) {
		char b;
		ssize_t n = recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		err = n == 0 ? 0 : n > 0 ? -EPROTO : -errno;
		if (err == -EAGAIN || err == -EWOULDBLOCK)
			err = 0; /* hang-up reported without a readable EOF */
	}
	/* The connection is of no further use: the peer closed it, or bytes
	 * nobody asked for would be parsed as the next answer (curl only finds
	 * a connection dead at EOF). Shutting it down makes curl discard it
	 * instead of reusing it; curl still closes the fd. */
	shutdown(s->fd, SHUT_RDWR);
	if (!h->watch_cb || !s->tag)
		return;
	h->watch_events++;
	/* Nothing of s is used after this: the callback may free the client. */
	h->watch_cb(s->tag, err, h->watch_ud);
}

static void
poll_cb(uv_poll_t *p, int status, int events)
{
	struct sock_ctx *s = p->data;
	int flags = 0;
	if (s->idle) {
		idle_event(s, status);
		return;
	}
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & (UV_READABLE | UV_DISCONNECT))
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	socket_action(s->h, s->fd, flags);
}

static void
on_timeout(uv_timer_t *t)
{
	socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static void defer_cb(uv_timer_t *t);

static void
defer_kick(struct rw_http *h)
{
	if (!h->torn_down)
		uv_timer_start(&h->defer, defer_cb, 0, 0);
}

static void
defer_cb(uv_timer_t *t)
{
	struct rw_http *h = t->data;
	struct rw_http_call *c;
	if (h->closing) {
		teardown(h);
		return;
	}
	/* Move everything queued so far; work queued meanwhile waits for the next round. */
	while ((c = list_first(&h->deferred)) != NULL) {
		list_unlink(c);
		list_push(&h->draining, c);
	}
	while (!h->closing && (c = list_first(&h->draining)) != NULL) {
		list_unlink(c);
		if (c->cancelled) {
			if (c->in_multi) {
				cu->multi_remove_handle(h->multi, c->easy);
				c->in_multi = 0;
			}
			call_recycle(c);
		} else if (c->state == C_DEFER_ADD) {
			CURLMcode mc = cu->multi_add_handle(h->multi, c->easy);
			if (mc == CURLM_OK) {
				c->in_multi = 1;
				c->state = C_ACTIVE;
				list_push(&h->active, c);
			} else {
				call_finish(c, -EPROTO, cu->multi_strerror(mc));
			}
		} else if (c->state == C_DEFER_FAIL) {
			call_finish(c, c->fail_err,
				    c->errbuf[0] ? c->errbuf : "request setup failed");
		} else {
			list_push(&h->active, c); /* should not happen */
		}
	}
}

/* ---- public API ---- */

int
rw_http_new(uv_loop_t *loop, struct rw_http **out)
{
	if (!loop || !out)
		return -EINVAL;
	struct rw_http *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->loop = loop;
	rw_list_init(&h->active);
	rw_list_init(&h->deferred);
	rw_list_init(&h->draining);
	rw_list_init(&h->pool);
	rw_list_init(&h->socks);
	uv_timer_init(loop, &h->timer);
	uv_timer_init(loop, &h->defer);
	h->timer.data = h;
	h->defer.data = h;
	h->open_handles = 2;
	*out = h;
	return 0;
}

/*
 * Load libcurl and create the multi handle. Done by the first request, not
 * by rw_http_new: a client that never sends one never maps libcurl (with
 * the dlopen provider, curl_api.h). Returns 0, or a negative errno with
 * the reason in err.
 */
static int
open_multi(struct rw_http *h, char *err, size_t errlen)
{
	static int global_done;
	if (h->multi)
		return 0;
	if (!cu && !(cu = rw_curl_api(err, errlen)))
		return -ELIBACC;
	if (!global_done) {
		if (cu->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errlen, "libcurl's global initialisation failed");
			return -ENOMEM;
		}
		global_done = 1;
	}
	h->multi = cu->multi_init();
	if (!h->multi) {
		snprintf(err, errlen, "cannot create a curl multi handle");
		return -ENOMEM;
	}
	cu->multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	cu->multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	cu->multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_func);
	cu->multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	cu->multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)MAX_CONNECTS);
	return 0;
}

/*
 * A call that fails before reaching curl (libcurl unavailable): a bare
 * record, without an easy handle, completed from the defer timer like any
 * other failure, so `done` still runs exactly once and never from inside
 * rw_http_start.
 */
static int
start_failed(struct rw_http *h, int err, const char *why, rw_http_done_cb done, void *ud,
	     struct rw_http_call **callp)
{
	struct rw_http_call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->h = h;
	rw_buf_init(&c->body, DEF_MAX_BODY);
	c->retry_after = -1;
	c->done = done;
	c->ud = ud;
	snprintf(c->errbuf, sizeof(c->errbuf), "%s", why);
	c->fail_err = err;
	c->state = C_DEFER_FAIL;
	list_push(&h->deferred, c);
	defer_kick(h);
	h->inflight++;
	if (callp)
		*callp = c;
	return 0;
}

static int
is_method(const char *m, const char *name)
{
	return m && strcmp(m, name) == 0;
}

/* Set every option of a request; returns the first curl error. */
static CURLcode
setup_easy(struct rw_http_call *c, const struct rw_http_req *req)
{
	CURL *e = c->easy;
	CURLcode rc = CURLE_OK;
	const char *m = req->method ? req->method : "GET";
	size_t max_body = req->max_body ? req->max_body : DEF_MAX_BODY;

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = cu->easy_setopt(e, opt, val);                                         \
	} while (0)

	SET(CURLOPT_PRIVATE, (void *)c);
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, (void *)c);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, (void *)c);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SET(CURLOPT_OPENSOCKETDATA, (void *)c->h);
	SET(CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	SET(CURLOPT_CLOSESOCKETDATA, (void *)c->h);
	SET(CURLOPT_HTTP_VERSION,
	    req->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
	if (req->timeout_ms > 0)
		SET(CURLOPT_TIMEOUT_MS, req->timeout_ms);
	if (req->connect_timeout_ms > 0)
		SET(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
	if (!req->on_data)
		SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
	if (req->on_data || req->timeout_ms <= 0)
		SET(CURLOPT_TCP_KEEPALIVE, 1L);
	if (req->low_speed_time_s > 0) {
		SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
		SET(CURLOPT_LOW_SPEED_TIME, req->low_speed_time_s);
	}

	/* Method and body. */
	if (req->body) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_COPYPOSTFIELDS, req->body);
		if (!is_method(m, "POST"))
			SET(CURLOPT_CUSTOMREQUEST, m);
	} else if (is_method(m, "HEAD")) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (is_method(m, "POST") || is_method(m, "PUT") || is_method(m, "PATCH")) {
		SET(CURLOPT_POSTFIELDSIZE, 0L);
		SET(CURLOPT_COPYPOSTFIELDS, "");
		if (!is_method(m, "POST"))
			SET(CURLOPT_CUSTOMREQUEST, m);
	} else if (!is_method(m, "GET")) {
		SET(CURLOPT_CUSTOMREQUEST, m);
	}

	/* Headers (copied by curl_slist_append). */
	for (const char *const *hp = req->headers; rc == CURLE_OK && hp && *hp; hp++) {
		struct curl_slist *n = cu->slist_append(c->hdrs, *hp);
		if (!n)
			rc = CURLE_OUT_OF_MEMORY;
		else
			c->hdrs = n;
	}
	if (rc == CURLE_OK && req->body && req->body_len > 1024) {
		/* Our peers do not send 100 Continue; do not wait for it. */
		struct curl_slist *n = cu->slist_append(c->hdrs, "Expect:");
		if (!n)
			rc = CURLE_OUT_OF_MEMORY;
		else
			c->hdrs = n;
	}
	if (c->hdrs)
		SET(CURLOPT_HTTPHEADER, c->hdrs);
	if (req->bearer_token) {
		SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		SET(CURLOPT_XOAUTH2_BEARER, req->bearer_token);
	}

	/* TLS. */
	if (req->ca_file)
		SET(CURLOPT_CAINFO, req->ca_file);
	if (req->client_cert)
		SET(CURLOPT_SSLCERT, req->client_cert);
	if (req->client_key)
		SET(CURLOPT_SSLKEY, req->client_key);
	if (req->insecure) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
#undef SET
	if (rc == CURLE_OK)
		c->body.max = max_body;
	return rc;
}

int
rw_http_start(struct rw_http *h, const struct rw_http_req *req, rw_http_done_cb done, void *ud,
	      struct rw_http_call **callp)
{
	struct rw_http_call *c;
	if (callp)
		*callp = NULL;
	if (!h || !req || !req->url || !done)
		return -EINVAL;
	if (h->closing)
		return -ECANCELED;
	char why[CURL_ERROR_SIZE];
	int lerr = open_multi(h, why, sizeof(why));
	if (lerr)
		return start_failed(h, lerr, why, done, ud, callp);
	char key[KEY_MAX];
	int keyed = req_key(req, key, sizeof(key)) == 0;
	c = call_get(h, keyed ? key : NULL);
	if (!c)
		return -ENOMEM;
	c->done = done;
	c->ud = ud;
	c->on_data = req->on_data;
	c->watch_tag = req->watch_tag;
	CURLcode rc = CURLE_OK;
	if (!c->setup_kept) {
		rc = setup_easy(c, req);
		c->setup_kept = keyed && rc == CURLE_OK;
		if (c->setup_kept)
			memcpy(c->key, key, strlen(key) + 1);
	}
	if (rc != CURLE_OK) {
		if (!c->errbuf[0])
			snprintf(c->errbuf, sizeof(c->errbuf), "%s", cu->easy_strerror(rc));
		c->fail_err = rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EPROTO;
		c->state = C_DEFER_FAIL;
		list_push(&h->deferred, c);
		defer_kick(h);
	} else if (h->in_curl) {
		c->state = C_DEFER_ADD;
		list_push(&h->deferred, c);
		defer_kick(h);
	} else {
		CURLMcode mc = cu->multi_add_handle(h->multi, c->easy);
		if (mc != CURLM_OK) {
			snprintf(c->errbuf, sizeof(c->errbuf), "%s", cu->multi_strerror(mc));
			c->fail_err = -EPROTO;
			c->state = C_DEFER_FAIL;
			list_push(&h->deferred, c);
			defer_kick(h);
		} else {
			c->in_multi = 1;
			c->state = C_ACTIVE;
			list_push(&h->active, c);
		}
	}
	h->inflight++;
	if (callp)
		*callp = c;
	return 0;
}

void
rw_http_cancel(struct rw_http_call *c)
{
	if (!c || c->cancelled || c->state == C_FREE || c->state == C_DONE)
		return;
	struct rw_http *h = c->h;
	c->cancelled = 1;
	h->inflight--;
	if (c->in_multi && h->in_curl) {
		/* Inside curl: remove it from the defer timer. */
		list_unlink(c);
		list_push(&h->deferred, c);
		defer_kick(h);
		return;
	}
	if (c->in_multi) {
		cu->multi_remove_handle(h->multi, c->easy);
		c->in_multi = 0;
	}
	call_recycle(c);
}

void
rw_http_set_watch(struct rw_http *h, rw_http_watch_cb cb, void *ud)
{
	if (!h)
		return;
	h->watch_cb = cb;
	h->watch_ud = ud;
	if (cb)
		return;
	struct rw_list *n;
	RW_LIST_FOREACH (n, &h->socks) {
		struct sock_ctx *s = rw_list_entry(n, struct sock_ctx, link);
		if (s->idle)
			sock_poll(s, 0);
	}
}

unsigned long
rw_http_watch_events(const struct rw_http *h)
{
	return h ? h->watch_events : 0;
}

int
rw_http_inflight(const struct rw_http *h)
{
	return h ? h->inflight : 0;
}

unsigned long
rw_http_connects(const struct rw_http *h)
{
	return h ? h->connects : 0;
}

/* Drop every call without callbacks, release curl and close every handle. */
static void
teardown(struct rw_http *h)
{
	struct rw_list *lists[] = {&h->active, &h->deferred, &h->draining, &h->pool};
	struct rw_http_call *c;
	if (h->torn_down)
		return;
	h->torn_down = 1;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		while ((c = list_first(lists[i])) != NULL) {
			list_unlink(c);
			if (c->in_multi)
				cu->multi_remove_handle(h->multi, c->easy);
			call_destroy(c);
		}
	}
	h->npool = 0;
	h->inflight = 0;
	if (h->multi)
		cu->multi_cleanup(h->multi);
	h->multi = NULL;
	while (!rw_list_empty(&h->socks))
		sock_close(rw_list_entry(rw_list_first(&h->socks), struct sock_ctx, link));
	uv_close((uv_handle_t *)&h->timer, timer_closed);
	uv_close((uv_handle_t *)&h->defer, timer_closed);
}

void
rw_http_free(struct rw_http *h, void (*closed)(void *ud), void *ud)
{
	if (!h || h->closing)
		return;
	h->closing = 1;
	h->closed = closed;
	h->closed_ud = ud;
	if (h->in_curl)
		return; /* socket_action tears down when curl returns */
	teardown(h);
}

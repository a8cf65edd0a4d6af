/*
 * redis_cleanup.c - SCAN MATCH RAY<escaped ns>@* + UNLINK over hiredis
 * async on the libuv loop (see redis_cleanup.h and docs/controller.md
 * "Redis cleanup").
 *
 * One attempt: resolve the host (uv_getaddrinfo, so no DNS lookup blocks
 * the loop), connect, AUTH when credentials are given, then SCAN pages in
 * turn, each page's keys removed with one UNLINK (redisAsyncCommandArgv:
 * copied and binary-safe) before the next SCAN. One command is in flight
 * at a time and cmd_timer bounds each step. Any failure ends the attempt:
 * the connection is freed from a timer callback (never from inside
 * hiredis' connect callback, where freeing the context is unsafe) and the
 * next attempt starts after the back-off. The deadline timer ends it all.
 *
 * The event glue is our own rather than hiredis' adapters/libuv.h: libuv
 * reports POLLERR (e.g. a refused connect) as a poll error and stops the
 * watcher, and that adapter drops such errors, so a refused connection
 * would only be noticed at the connect timeout. Ours hands the error to
 * hiredis, which then reads the socket error and fails the connect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "redis_cleanup.h"
#include "rw/log.h"

#define COMPONENT "redis-cleanup"

enum rcl_state {
	ST_RESOLVE = 0,
	ST_CONNECT,
	ST_AUTH,
	ST_SCAN,
	ST_UNLINK,
	ST_FAILING, /* attempt failed: teardown scheduled */
	ST_BACKOFF,
	ST_DONE,
};

static const char *const state_names[] = {
    [ST_RESOLVE] = "resolve",  [ST_CONNECT] = "connect", [ST_AUTH] = "AUTH",
    [ST_SCAN] = "SCAN",	       [ST_UNLINK] = "UNLINK",	 [ST_FAILING] = "teardown",
    [ST_BACKOFF] = "back-off", [ST_DONE] = "done",
};

struct rw_redis_cleanup {
	uv_loop_t *loop;
	struct rw_redis_cleanup_opts o;
	struct rw_redis_cleanup_addr addr;
	char ns[256];
	char pattern[600];
	char countstr[16];
	rw_redis_cleanup_done_cb done_cb;
	void *ud;

	redisAsyncContext *ac;
	uv_timer_t cmd_timer;
	uv_timer_t retry_timer;
	uv_timer_t deadline_timer;
	uv_getaddrinfo_t gai;
	int gai_active;
	int handles_open;

	enum rcl_state state;
	char cursor[32];      /* cursor of the next SCAN */
	char prev_cursor[32]; /* cursor of the page being deleted */
	int use_del;	      /* the server has no UNLINK */
	uint32_t backoff;
	uint64_t started;
	int finished;
	struct rw_redis_cleanup_result res;
};

/* ---- hiredis event glue on uv_poll ---- */

struct rcl_ev {
	redisAsyncContext *ac; /* NULL once hiredis cleaned up */
	uv_poll_t poll;
	int events;
};

static void
ev_poll_cb(uv_poll_t *h, int status, int events)
{
	struct rcl_ev *e = h->data;
	if (!e->ac)
		return;
	if (status < 0) {
		/* libuv stopped the watcher: let hiredis find the socket error. */
		e->events = 0;
		if (!(e->ac->c.flags & REDIS_CONNECTED))
			redisAsyncHandleWrite(e->ac);
		else
			redisAsyncHandleRead(e->ac);
		return;
	}
	if (events & UV_READABLE)
		redisAsyncHandleRead(e->ac);
	if (e->ac && (events & UV_WRITABLE))
		redisAsyncHandleWrite(e->ac);
}

static void
ev_update(struct rcl_ev *e)
{
	if (e->events)
		uv_poll_start(&e->poll, e->events, ev_poll_cb);
	else
		uv_poll_stop(&e->poll);
}

static void
ev_add_read(void *d)
{
	struct rcl_ev *e = d;
	e->events |= UV_READABLE;
	ev_update(e);
}

static void
ev_del_read(void *d)
{
	struct rcl_ev *e = d;
	e->events &= ~UV_READABLE;
	ev_update(e);
}

static void
ev_add_write(void *d)
{
	struct rcl_ev *e = d;
	e->events |= UV_WRITABLE;
	ev_update(e);
}

static void
ev_del_write(void *d)
{
	struct rcl_ev *e = d;
	e->events &= ~UV_WRITABLE;
	ev_update(e);
}

static void
ev_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
ev_cleanup(void *d)
{
	struct rcl_ev *e = d;
	e->ac = NULL;
	uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int
ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	struct rcl_ev *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
		free(e);
		return -EIO;
	}
	e->poll.data = e;
	e->ac = ac;
	ac->ev.data = e;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	return 0;
}

/* ---- address and pattern ---- */

int
rw_redis_cleanup_parse_address(const char *address, struct rw_redis_cleanup_addr *out)
{
	char buf[1024];
	const char *p, *netloc, *end;
	int rv = 0;

	if (!address || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	/* First entry of a comma-separated list. */
	size_t n = strcspn(address, ",");
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, address, n);
	buf[n] = '\0';
	p = buf;
	if (strstr(p, "://")) {
		if (strncmp(p, "redis://", 8) == 0) {
			p += 8;
		} else if (strncmp(p, "rediss://", 9) == 0) {
			out->tls = 1;
			p += 9;
		} else {
			return -EINVAL;
		}
	}
	netloc = p;
	end = netloc + strcspn(netloc, "/?#");
	/* userinfo@hostinfo, split at the last '@' (as urlparse does). */
	const char *at = NULL;
	for (const char *q = netloc; q < end; q++)
		if (*q == '@')
			at = q;
	const char *host = netloc;
	if (at) {
		const char *colon = memchr(netloc, ':', (size_t)(at - netloc));
		const char *uend = colon ? colon : at;
		if ((size_t)(uend - netloc) >= sizeof(out->username))
			return -EINVAL;
		memcpy(out->username, netloc, (size_t)(uend - netloc));
		out->has_user = 1;
		if (colon) {
			if ((size_t)(at - colon - 1) >= sizeof(out->password))
				return -EINVAL;
			memcpy(out->password, colon + 1, (size_t)(at - colon - 1));
			out->has_password = 1;
		}
		host = at + 1;
	}
	const char *hend, *portp = NULL;
	if (host < end && *host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));
		if (!rb)
			return -EINVAL;
		host++;
		hend = rb;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -EINVAL;
			portp = rb + 2;
		}
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));
		hend = colon ? colon : end;
		if (colon)
			portp = colon + 1;
	}
	if (hend <= host || (size_t)(hend - host) >= sizeof(out->host))
		return -EINVAL;
	memcpy(out->host, host, (size_t)(hend - host));
	for (char *c = out->host; *c; c++) {
		/* No host has spaces, control or non-ASCII bytes; refused before any log line. */
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7F)
			return -EINVAL;
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	}
	out->port = 6379;
	if (portp && portp < end) {
		long v = 0;
		for (const char *c = portp; c < end; c++) {
			if (*c < '0' || *c > '9' || v > 65535)
				return -EINVAL;
			v = v * 10 + (*c - '0');
		}
		if (v < 1 || v > 65535)
			return -EINVAL;
		out->port = (int)v;
	} else if (portp) {
		rv = -EINVAL; /* "host:" */
	}
	return rv;
}

int
rw_redis_cleanup_pattern(const char *ns, char *out, size_t outlen)
{
	size_t o = 0;
	if (!ns || !*ns || strchr(ns, '@') || !out)
		return -EINVAL;
	if (outlen < 6)
		return -ENAMETOOLONG;
	memcpy(out, "RAY", 3);
	o = 3;
	for (const char *c = ns; *c; c++) {
		if (strchr("[]-?*^\\", *c)) {
			if (o + 1 >= outlen)
				return -ENAMETOOLONG;
			out[o++] = '\\';
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = *c;
	}
	if (o + 3 > outlen)
		return -ENAMETOOLONG;
	out[o++] = '@';
	out[o++] = '*';
	out[o] = '\0';
	return 0;
}

/* ---- lifecycle ---- */

static void attempt(struct rw_redis_cleanup *c);

static void
maybe_free(struct rw_redis_cleanup *c)
{
	if (c->handles_open > 0 || c->gai_active)
		return;
	/* Wipe credentials. */
	volatile char *p = c->addr.password;
	for (size_t i = 0; i < sizeof(c->addr.password); i++)
		p[i] = 0;
	free(c);
}

static void
handle_closed(uv_handle_t *h)
{
	struct rw_redis_cleanup *c = h->data;
	c->handles_open--;
	maybe_free(c);
}

/* Free the connection, if any. Never call from within hiredis' connect callback. */
static void
drop_connection(struct rw_redis_cleanup *c)
{
	redisAsyncContext *ac = c->ac;
	c->ac = NULL;
	if (ac)
		redisAsyncFree(ac); /* deferred by hiredis when inside a reply callback */
}

static void
finish(struct rw_redis_cleanup *c, int ok, int deadline, int cancelled, const char *why)
{
	if (c->finished)
		return;
	c->finished = 1;
	c->state = ST_DONE;
	c->res.ok = ok;
	c->res.deadline_exceeded = deadline;
	c->res.cancelled = cancelled;
	c->res.elapsed_ms = uv_now(c->loop) - c->started;
	if (ok)
		c->res.error[0] = '\0';
	else if (why) {
		char last[sizeof(c->res.error)];
		snprintf(last, sizeof(last), "%s", c->res.error);
		if (last[0])
			snprintf(c->res.error, sizeof(c->res.error), "%.60s; last error: %.180s",
				 why, last);
		else
			snprintf(c->res.error, sizeof(c->res.error), "%s", why);
	}
	uv_timer_stop(&c->cmd_timer);
	uv_timer_stop(&c->retry_timer);
	uv_timer_stop(&c->deadline_timer);
	if (c->gai_active)
		uv_cancel((uv_req_t *)&c->gai);
	drop_connection(c);
	if (ok)
		rw_info(COMPONENT,
			"removed %" PRIu64 " keys matching %s from %s:%d in %" PRIu64
			" ms (%u attempts)",
			c->res.keys_deleted, c->pattern, c->addr.host, c->addr.port,
			c->res.elapsed_ms, c->res.attempts);
	else
		rw_warn(COMPONENT, "cleanup of %s on %s:%d stopped after %" PRIu64 " ms: %s",
			c->pattern, c->addr.host, c->addr.port, c->res.elapsed_ms, c->res.error);
	if (c->done_cb)
		c->done_cb(&c->res, c->ud);
	uv_close((uv_handle_t *)&c->cmd_timer, handle_closed);
	uv_close((uv_handle_t *)&c->retry_timer, handle_closed);
	uv_close((uv_handle_t *)&c->deadline_timer, handle_closed);
}

static void
retry_cb(uv_timer_t *t)
{
	struct rw_redis_cleanup *c = t->data;
	if (c->finished)
		return;
	if (c->gai_active) {
		/* A cancelled lookup still running in the thread pool: wait for it. */
		uv_timer_start(&c->retry_timer, retry_cb, 10, 0);
		return;
	}
	attempt(c);
}

/* The attempt is over: free the connection (from a timer) and back off. */
static void
teardown_cb(uv_timer_t *t)
{
	struct rw_redis_cleanup *c = t->data;
	if (c->finished)
		return;
	if (c->state != ST_FAILING) {
		/* A step took too long. */
		snprintf(c->res.error, sizeof(c->res.error), "%s timed out after %u ms",
			 state_names[c->state],
			 c->state <= ST_CONNECT ? c->o.connect_timeout_ms
						: c->o.command_timeout_ms);
		rw_warn(COMPONENT, "attempt %u on %s:%d: %s", c->res.attempts, c->addr.host,
			c->addr.port, c->res.error);
	}
	drop_connection(c);
	if (c->gai_active)
		uv_cancel((uv_req_t *)&c->gai);
	c->state = ST_BACKOFF;
	uint32_t delay = c->backoff;
	c->backoff = c->backoff > c->o.backoff_max_ms / 2 ? c->o.backoff_max_ms : c->backoff * 2;
	uv_timer_start(&c->retry_timer, retry_cb, delay, 0);
}

/* ---- error texts ---- */

/* Length of the ANSI escape sequence at s[0] == ESC (CSI, OSC or a two-byte one). */
static size_t
ansi_len(const unsigned char *s, size_t n)
{
	size_t i;
	if (n < 2)
		return n;
	if (s[1] == '[') { /* CSI: parameters and intermediates, then a final byte */
		for (i = 2; i < n && s[i] >= 0x20 && s[i] <= 0x3F; i++)
			;
		for (; i < n && s[i] >= 0x20 && s[i] <= 0x2F; i++)
			;
		return i < n && s[i] >= 0x40 && s[i] <= 0x7E ? i + 1 : i;
	}
	if (s[1] == ']') { /* OSC: up to BEL or ESC \ */
		for (i = 2; i < n; i++) {
			if (s[i] == 0x07)
				return i + 1;
			if (s[i] == 0x1B && i + 1 < n && s[i + 1] == '\\')
				return i + 2;
		}
		return n;
	}
	/* Other escapes: intermediates (e.g. "ESC ( B"), then one final byte. */
	for (i = 1; i < n && s[i] >= 0x20 && s[i] <= 0x2F; i++)
		;
	return i < n ? i + 1 : n;
}

#define REDACTED 0x1A /* stands for a secret between the passes below */

/* Replace each occurrence of a non-empty secret in in[0..n) by REDACTED; returns the length. */
static size_t
redact(const char *in, size_t n, const char *const *secrets, char *out)
{
	size_t i = 0, o = 0;
	while (i < n) {
		size_t k, sl = 0;
		for (k = 0; secrets && secrets[k]; k++) {
			sl = strlen(secrets[k]);
			if (sl && sl <= n - i && memcmp(in + i, secrets[k], sl) == 0)
				break;
		}
		if (secrets && secrets[k]) {
			out[o++] = REDACTED;
			i += sl;
		} else {
			out[o++] = in[i] == REDACTED ? 0x01 : in[i];
			i++;
		}
	}
	return o;
}

/* In place: each occurrence of sec[0..sl) in buf[0..n) becomes REDACTED; returns the length. */
static size_t
redact2(char *buf, size_t n, const char *sec, size_t sl)
{
	size_t i = 0, o = 0;
	while (i < n) {
		if (sl <= n - i && memcmp(buf + i, sec, sl) == 0) {
			buf[o++] = REDACTED;
			i += sl;
		} else {
			buf[o++] = buf[i++];
		}
	}
	return o;
}

/*
 * Printable ASCII only: escape sequences and control bytes dropped,
 * whitespace runs one space (none at either end), a run of non-ASCII bytes
 * one '?'; REDACTED is kept. The output is never longer than the input.
 */
static size_t
printable(const char *in, size_t n, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;
	int space = 1, odd = 0;
	while (i < n) {
		if (s[i] == 0x1B) {
			i += ansi_len(s + i, n - i);
			continue;
		}
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			if (!space)
				out[o++] = ' ';
			space = 1;
			odd = 0;
		} else if (s[i] != REDACTED && (s[i] < 0x20 || s[i] == 0x7F)) {
			/* Control bytes vanish, so that they cannot split a secret either. */
		} else if (s[i] >= 0x80) {
			if (!odd)
				out[o++] = '?';
			odd = 1;
			space = 0;
		} else {
			out[o++] = (char)s[i];
			space = odd = 0;
		}
		i++;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	return o;
}

void
rw_redis_cleanup_clean_text(const char *raw, size_t len, const char *const *secrets, size_t max,
			    char *out, size_t outlen)
{
	size_t n, o = 0, cap = outlen ? outlen - 1 : 0;
	char *a, *b;
	if (!outlen)
		return;
	if (max < cap)
		cap = max;
	a = malloc(len + 1);
	b = malloc(len + 1);
	if (!a || !b) {
		free(a);
		free(b);
		snprintf(out, cap + 1, "%s", "(text not shown: out of memory)");
		return;
	}
	/*
	 * The secrets are matched on the raw bytes and again on the printable
	 * form, so that a server echoing a password split by escapes or
	 * control bytes does not get it through either.
	 */
	n = redact(raw, len, secrets, a);
	n = printable(a, n, b);
	for (size_t k = 0; secrets && secrets[k]; k++) {
		/* The secret's printable form, made the way the text's was (in one buffer: the
		 * printable pass writes the first half and never overtakes its input). */
		size_t sl = strlen(secrets[k]), pl = 0;
		char *ps = malloc(2 * sl + 1);
		if (ps)
			pl = printable(ps + sl, redact(secrets[k], sl, NULL, ps + sl), ps);
		if (pl > 0)
			n = redact2(b, n, ps, pl);
		free(ps);
	}
	/* Expand REDACTED; when the whole does not fit in cap, cut and end in "...". */
	size_t total = n, limit;
	for (size_t i = 0; i < n; i++)
		total += b[i] == REDACTED ? 2 : 0;
	limit = total <= cap ? cap : cap >= 3 ? cap - 3 : 0;
	for (size_t i = 0; i < n; i++) {
		size_t w = b[i] == REDACTED ? 3 : 1;
		if (o + w > limit)
			break;
		if (w == 3)
			memcpy(out + o, "***", 3);
		else
			out[o] = b[i];
		o += w;
	}
	if (total > cap) {
		while (o > 0 && out[o - 1] == ' ')
			o--;
		for (const char *d = "..."; *d && o < cap; d++)
			out[o++] = *d;
	}
	out[o] = '\0';
	free(a);
	free(b);
}

const char *
rw_redis_cleanup_classify_reply(const char *reply, size_t len)
{
	static const struct {
		const char *code, *cause;
	} codes[] = {
	    {"WRONGPASS", "authentication failed"}, {"NOAUTH", "authentication failed"},
	    {"NOPERM", "permission denied"},	    {"LOADING", "server not ready"},
	    {"BUSY", "server not ready"},	    {"MASTERDOWN", "server not ready"},
	    {"READONLY", "read-only replica"},	    {"OOM", "server out of memory"},
	};
	size_t w = 0;
	while (w < len && reply[w] != ' ' && reply[w] != '\r' && reply[w] != '\n')
		w++;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strlen(codes[i].code) == w && memcmp(reply, codes[i].code, w) == 0)
			return codes[i].cause;
	/* Older servers answer a bad AUTH with "ERR invalid password" (or "...username-password").
	 */
	for (size_t i = w; i + 7 < len; i++)
		if (memcmp(reply + i, "invalid", 7) == 0 && i + 16 <= len &&
		    (memcmp(reply + i, "invalid password", 16) == 0 ||
		     (i + 25 <= len && memcmp(reply + i, "invalid username-password", 25) == 0)))
			return "authentication failed";
	return "server error";
}

/* End the current attempt with an error; the teardown runs from a timer. */
static void fail_attempt(struct rw_redis_cleanup *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail_attempt(struct rw_redis_cleanup *c, const char *fmt, ...)
{
	va_list ap;
	char raw[1024];
	const char *secrets[] = {c->addr.password, NULL};
	if (c->finished || c->state == ST_FAILING || c->state == ST_BACKOFF)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* hiredis' errstr and resolver texts pass here too: clean them all. */
	rw_redis_cleanup_clean_text(raw, strlen(raw), secrets, 200, c->res.error,
				    sizeof(c->res.error));
	rw_warn(COMPONENT, "attempt %u on %s:%d: %s", c->res.attempts, c->addr.host, c->addr.port,
		c->res.error);
	c->state = ST_FAILING;
	uv_timer_start(&c->cmd_timer, teardown_cb, 0, 0);
}

static void
deadline_cb(uv_timer_t *t)
{
	struct rw_redis_cleanup *c = t->data;
	char why[64];
	snprintf(why, sizeof(why), "deadline of %u ms exceeded", c->o.deadline_ms);
	finish(c, 0, 1, 0, why);
}

/* ---- the commands ---- */

static void scan_next(struct rw_redis_cleanup *c);

/* Common checks of a reply. Returns the reply, or NULL after failing the attempt. */
static redisReply *
check_reply(struct rw_redis_cleanup *c, redisAsyncContext *ac, void *r, const char *what)
{
	redisReply *reply = r;
	if (ac != c->ac || c->finished)
		return NULL; /* a connection we dropped */
	if (!reply) {
		fail_attempt(c, "connection lost during %s: %s", what,
			     ac->errstr[0] ? ac->errstr : "closed");
		return NULL;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		/*
		 * The reply is the server's (or whatever answers on that port):
		 * a cause, and a short excerpt cleaned of the password (matched
		 * on the whole reply, before any cut), escapes and control bytes.
		 */
		const char *secrets[] = {c->addr.password, NULL};
		const char *str = reply->str ? reply->str : "";
		size_t len = reply->str ? reply->len : 0;
		char excerpt[96];
		rw_redis_cleanup_clean_text(str, len, secrets, 80, excerpt, sizeof(excerpt));
		fail_attempt(c, "%s: %s (server said: %s)", what,
			     rw_redis_cleanup_classify_reply(str, len), excerpt);
		return NULL;
	}
	return reply;
}

static int
send_cmd(struct rw_redis_cleanup *c, redisCallbackFn *fn, int argc, const char **argv,
	 const size_t *lens)
{
	if (redisAsyncCommandArgv(c->ac, fn, c, argc, argv, lens) != REDIS_OK) {
		fail_attempt(c, "%s: cannot queue the command: %s", state_names[c->state],
			     c->ac->errstr[0] ? c->ac->errstr : "out of memory");
		return -EIO;
	}
	uv_timer_start(&c->cmd_timer, teardown_cb, c->o.command_timeout_ms, 0);
	return 0;
}

static void
unlink_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct rw_redis_cleanup *c = priv;
	redisReply *reply = r;

	if (ac != c->ac || c->finished)
		return;
	if (reply && reply->type == REDIS_REPLY_ERROR && !c->use_del && reply->str &&
	    strstr(reply->str, "unknown command")) {
		/* Redis < 4: no UNLINK. Scan the same page again and DEL it. */
		rw_info(COMPONENT, "%s:%d has no UNLINK; using DEL", c->addr.host, c->addr.port);
		c->use_del = 1;
		snprintf(c->cursor, sizeof(c->cursor), "%s", c->prev_cursor);
		scan_next(c);
		return;
	}
	reply = check_reply(c, ac, r, c->use_del ? "DEL" : "UNLINK");
	if (!reply)
		return;
	if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
		c->res.keys_deleted += (uint64_t)reply->integer;
	if (strcmp(c->cursor, "0") == 0) {
		finish(c, 1, 0, 0, NULL);
		return;
	}
	scan_next(c);
}

static void
scan_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct rw_redis_cleanup *c = priv;
	redisReply *reply = check_reply(c, ac, r, "SCAN");
	const char **argv = NULL;
	size_t *lens = NULL;

	if (!reply)
		return;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    (reply->element[0]->type != REDIS_REPLY_STRING &&
	     reply->element[0]->type != REDIS_REPLY_STATUS) ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY ||
	    reply->element[0]->len >= sizeof(c->cursor)) {
		fail_attempt(c, "SCAN: unexpected reply");
		return;
	}
	snprintf(c->prev_cursor, sizeof(c->prev_cursor), "%s", c->cursor);
	memcpy(c->cursor, reply->element[0]->str, reply->element[0]->len);
	c->cursor[reply->element[0]->len] = '\0';

	redisReply *keys = reply->element[1];
	if (keys->elements == 0) {
		if (strcmp(c->cursor, "0") == 0)
			finish(c, 1, 0, 0, NULL);
		else
			scan_next(c);
		return;
	}
	/* One UNLINK for the whole page; hiredis copies the arguments. */
	size_t argc = keys->elements + 1;
	if (argc > (size_t)INT32_MAX) {
		fail_attempt(c, "SCAN: page too large");
		return;
	}
	argv = calloc(argc, sizeof(*argv));
	lens = calloc(argc, sizeof(*lens));
	if (!argv || !lens) {
		fail_attempt(c, "out of memory");
		goto out;
	}
	argv[0] = c->use_del ? "DEL" : "UNLINK";
	lens[0] = strlen(argv[0]);
	for (size_t i = 0; i < keys->elements; i++) {
		redisReply *k = keys->element[i];
		if (k->type != REDIS_REPLY_STRING) {
			fail_attempt(c, "SCAN: a key is not a string");
			goto out;
		}
		argv[i + 1] = k->str;
		lens[i + 1] = k->len;
	}
	c->state = ST_UNLINK;
	send_cmd(c, unlink_cb, (int)argc, argv, lens);
out:
	free(argv);
	free(lens);
}

static void
scan_next(struct rw_redis_cleanup *c)
{
	const char *argv[6] = {"SCAN", c->cursor, "MATCH", c->pattern, "COUNT", c->countstr};
	size_t lens[6];
	for (int i = 0; i < 6; i++)
		lens[i] = strlen(argv[i]);
	c->state = ST_SCAN;
	send_cmd(c, scan_cb, 6, argv, lens);
}

static void
auth_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct rw_redis_cleanup *c = priv;
	if (!check_reply(c, ac, r, "AUTH"))
		return;
	snprintf(c->cursor, sizeof(c->cursor), "0");
	scan_next(c);
}

static void
connect_cb(const redisAsyncContext *cac, int status)
{
	struct rw_redis_cleanup *c = cac->data;
	if (!c || cac != c->ac || c->finished)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context itself after this callback. */
		c->ac = NULL;
		fail_attempt(c, "connect to %s:%d: %s", c->addr.host, c->addr.port,
			     cac->errstr[0] ? cac->errstr : "failed");
		return;
	}
	/* Connected. Queue only; never free the context in here. */
	const char *user =
	    c->o.username ? c->o.username : (c->addr.has_user ? c->addr.username : "");
	const char *pass =
	    c->o.password ? c->o.password : (c->addr.has_password ? c->addr.password : "");
	if (pass[0]) {
		const char *argv[3] = {"AUTH", user, pass};
		size_t lens[3] = {4, strlen(user), strlen(pass)};
		c->state = ST_AUTH;
		if (user[0])
			send_cmd(c, auth_cb, 3, argv, lens);
		else {
			argv[1] = pass;
			lens[1] = lens[2];
			send_cmd(c, auth_cb, 2, argv, lens);
		}
		return;
	}
	snprintf(c->cursor, sizeof(c->cursor), "0");
	scan_next(c);
}

static void
disconnect_cb(const redisAsyncContext *cac, int status)
{
	struct rw_redis_cleanup *c = cac->data;
	(void)status;
	if (!c || cac != c->ac)
		return;
	/* hiredis frees the context after this callback. */
	c->ac = NULL;
	if (!c->finished)
		fail_attempt(c, "connection to %s:%d lost: %s", c->addr.host, c->addr.port,
			     cac->errstr[0] ? cac->errstr : "closed");
}

static void
resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct rw_redis_cleanup *c = req->data;
	char ip[INET6_ADDRSTRLEN] = "";

	c->gai_active = 0;
	if (c->finished || c->state != ST_RESOLVE) {
		if (res)
			uv_freeaddrinfo(res);
		maybe_free(c);
		return;
	}
	if (status < 0 || !res) {
		if (res)
			uv_freeaddrinfo(res);
		fail_attempt(c, "resolve %s: %s", c->addr.host,
			     status < 0 ? uv_strerror(status) : "no address");
		return;
	}
	if (res->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr, ip,
			  sizeof(ip));
	else if (res->ai_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr, ip,
			  sizeof(ip));
	uv_freeaddrinfo(res);
	if (!ip[0]) {
		fail_attempt(c, "resolve %s: no usable address", c->addr.host);
		return;
	}
	/* A numeric address: hiredis' own getaddrinfo does not block. */
	redisAsyncContext *ac = redisAsyncConnect(ip, c->addr.port);
	if (!ac) {
		fail_attempt(c, "connect to %s:%d: out of memory", c->addr.host, c->addr.port);
		return;
	}
	if (ac->err) {
		char e[128];
		snprintf(e, sizeof(e), "%s", ac->errstr);
		redisAsyncFree(ac);
		fail_attempt(c, "connect to %s:%d: %s", c->addr.host, c->addr.port, e);
		return;
	}
	if (ev_attach(ac, c->loop) != 0) {
		redisAsyncFree(ac);
		fail_attempt(c, "connect to %s:%d: cannot watch the socket", c->addr.host,
			     c->addr.port);
		return;
	}
	ac->data = c;
	c->ac = ac;
	c->state = ST_CONNECT;
	redisAsyncSetConnectCallback(ac, connect_cb);
	redisAsyncSetDisconnectCallback(ac, disconnect_cb);
}

static void
attempt(struct rw_redis_cleanup *c)
{
	struct addrinfo hints;
	char port[8];
	int rv;

	c->res.attempts++;
	c->state = ST_RESOLVE;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", c->addr.port);
	uv_timer_start(&c->cmd_timer, teardown_cb, c->o.connect_timeout_ms, 0);
	c->gai.data = c;
	rv = uv_getaddrinfo(c->loop, &c->gai, resolved_cb, c->addr.host, port, &hints);
	if (rv != 0) {
		fail_attempt(c, "resolve %s: %s", c->addr.host, uv_strerror(rv));
		return;
	}
	c->gai_active = 1;
}

int
rw_redis_cleanup_start(uv_loop_t *loop, const struct rw_redis_cleanup_opts *opts,
		       rw_redis_cleanup_done_cb done_cb, void *ud, struct rw_redis_cleanup **out)
{
	struct rw_redis_cleanup *c;
	int rv;

	if (!loop || !opts || !opts->address || !opts->storage_ns || !out)
		return -EINVAL;
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if ((rv = rw_redis_cleanup_parse_address(opts->address, &c->addr)) != 0)
		goto fail;
	if (c->addr.tls) {
		rv = -EPROTONOSUPPORT;
		goto fail;
	}
	if (strlen(opts->storage_ns) >= sizeof(c->ns) ||
	    (rv = rw_redis_cleanup_pattern(opts->storage_ns, c->pattern, sizeof(c->pattern))) !=
		0) {
		rv = -EINVAL;
		goto fail;
	}
	snprintf(c->ns, sizeof(c->ns), "%s", opts->storage_ns);
	c->loop = loop;
	c->o = *opts;
	c->o.address = NULL; /* may hold a password; not kept */
	c->o.storage_ns = c->ns;
	if (opts->username && strlen(opts->username) >= sizeof(c->addr.username)) {
		rv = -EINVAL;
		goto fail;
	}
	if (opts->password && strlen(opts->password) >= sizeof(c->addr.password)) {
		rv = -EINVAL;
		goto fail;
	}
	/* Explicit credentials win over the URL's, as REDIS_USERNAME/REDIS_PASSWORD do. */
	if (opts->username) {
		snprintf(c->addr.username, sizeof(c->addr.username), "%s", opts->username);
		c->addr.has_user = 1;
		c->o.username = NULL;
	}
	if (opts->password) {
		snprintf(c->addr.password, sizeof(c->addr.password), "%s", opts->password);
		c->addr.has_password = 1;
		c->o.password = NULL;
	}
	if (!c->o.connect_timeout_ms)
		c->o.connect_timeout_ms = 5000;
	if (!c->o.command_timeout_ms)
		c->o.command_timeout_ms = 10000;
	if (!c->o.deadline_ms)
		c->o.deadline_ms = 300000;
	if (!c->o.backoff_min_ms)
		c->o.backoff_min_ms = 250;
	if (!c->o.backoff_max_ms)
		c->o.backoff_max_ms = 10000;
	if (c->o.backoff_max_ms < c->o.backoff_min_ms)
		c->o.backoff_max_ms = c->o.backoff_min_ms;
	if (!c->o.scan_count)
		c->o.scan_count = 1000;
	snprintf(c->countstr, sizeof(c->countstr), "%u", c->o.scan_count);
	c->backoff = c->o.backoff_min_ms;
	c->done_cb = done_cb;
	c->ud = ud;
	c->started = uv_now(loop);

	uv_timer_init(loop, &c->cmd_timer);
	uv_timer_init(loop, &c->retry_timer);
	uv_timer_init(loop, &c->deadline_timer);
	c->cmd_timer.data = c->retry_timer.data = c->deadline_timer.data = c;
	c->handles_open = 3;
	uv_timer_start(&c->deadline_timer, deadline_cb, c->o.deadline_ms, 0);
	rw_info(COMPONENT, "removing keys matching %s from %s:%d (deadline %u ms)", c->pattern,
		c->addr.host, c->addr.port, c->o.deadline_ms);
	attempt(c);
	*out = c;
	return 0;
fail:
	memset(&c->addr, 0, sizeof(c->addr));
	free(c);
	return rv;
}

void
rw_redis_cleanup_cancel(struct rw_redis_cleanup *c)
{
	if (!c || c->finished)
		return;
	finish(c, 0, 0, 1, "cancelled");
}

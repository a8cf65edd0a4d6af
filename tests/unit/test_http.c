/*
 * test_http.c - the libcurl/libuv client against rw_httpd and against small
 * raw uv TCP servers (silent, streaming, oversized), all on one loop on
 * 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "rw/http.h"
#include "rw/httpd.h"
#include "rwtest.h"

static uv_loop_t loop;

/* Run the loop until *flag is set or ms pass. Returns the flag. */
static void
tick_cb(uv_timer_t *t)
{
	(void)t;
}

static int
run_until(const int *flag, long ms)
{
	uv_timer_t tick;
	uv_timer_init(&loop, &tick);
	uv_timer_start(&tick, tick_cb, 10, 10);
	uint64_t end = uv_now(&loop) + (uint64_t)ms;
	while (!*flag && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return *flag;
}

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- rw_httpd handler ---- */

static void
handler(const struct rw_httpd_req *req, struct rw_httpd_resp *resp, void *ud)
{
	(void)ud;
	if (strcmp(req->path, "/hello") == 0) {
		rw_buf_puts(&resp->body, "hello");
	} else if (strcmp(req->path, "/echo") == 0) {
		const char *x = rw_httpd_header(req, "X-Test");
		rw_buf_printf(&resp->body, "%s %s %s ", req->method, req->query, x ? x : "-");
		rw_buf_append(&resp->body, req->body, req->body_len);
	} else if (strcmp(req->path, "/auth") == 0) {
		const char *a = rw_httpd_header(req, "Authorization");
		if (!a)
			resp->status = 401;
		rw_buf_puts(&resp->body, a ? a : "none");
	} else if (strcmp(req->path, "/status") == 0) {
		resp->status = atoi(req->query);
		if (resp->status == 503)
			rw_buf_puts(&resp->headers, "Retry-After: 7\r\n");
		rw_buf_puts(&resp->body, "status");
	} else if (strcmp(req->path, "/retry-date") == 0) {
		char date[64];
		time_t t = time(NULL) + 30;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		resp->status = 429;
		rw_buf_printf(&resp->headers, "Retry-After: %s\r\n", date);
	} else if (strcmp(req->path, "/big") == 0) {
		long n = atol(req->query);
		resp->content_type = "application/octet-stream";
		for (long i = 0; i < n; i++)
			rw_buf_putc(&resp->body, (char)('a' + i % 26));
	} else {
		resp->status = 404;
	}
}

static struct rw_httpd *
server_new(void)
{
	struct rw_httpd *s = NULL;
	char err[128];
	/* One client address opens up to 100 connections at once here. */
	struct rw_httpd_opts o = {
	    .host = "127.0.0.1", .max_body = 1 << 20, .max_conns_per_peer = 128};
	if (rw_httpd_new(&loop, &o, handler, NULL, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "  httpd: %s\n", err);
		return NULL;
	}
	return s;
}

static int server_closed;
static void
on_server_closed(void *ud)
{
	(void)ud;
	server_closed = 1;
}

static int client_closed;
static void
on_client_closed(void *ud)
{
	(void)ud;
	client_closed = 1;
}

static void
close_both(struct rw_http *h, struct rw_httpd *s)
{
	client_closed = server_closed = 0;
	if (h)
		rw_http_free(h, on_client_closed, NULL);
	else
		client_closed = 1;
	if (s)
		rw_httpd_free(s, on_server_closed, NULL);
	else
		server_closed = 1;
	int both = 0;
	for (int i = 0; i < 200 && !both; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		both = client_closed && server_closed;
		if (!both)
			uv_run(&loop, UV_RUN_ONCE);
	}
	CHECK(client_closed);
	CHECK(server_closed);
}

/* Nothing may be left on the loop at the end of a case. */
static void
check_loop_empty(void)
{
	CHECK_EQ_INT(uv_run(&loop, UV_RUN_NOWAIT), 0);
}

/* ---- result capture ---- */

struct result {
	int done;
	int calls;
	int err;
	long status;
	char body[8192];
	size_t body_len;
	char ctype[64];
	char errmsg[256];
	long retry_after;
	double total_ms;
};

static void
on_done(const struct rw_http_resp *r, void *ud)
{
	struct result *res = ud;
	res->calls++;
	res->done = 1;
	res->err = r->err;
	res->status = r->status;
	res->body_len = r->body_len;
	snprintf(res->body, sizeof(res->body), "%s", r->body);
	snprintf(res->ctype, sizeof(res->ctype), "%s", r->content_type ? r->content_type : "");
	snprintf(res->errmsg, sizeof(res->errmsg), "%s", r->errmsg);
	res->retry_after = r->retry_after_s;
	res->total_ms = r->total_ms;
}

static void
url_of(char *buf, size_t n, int port, const char *path)
{
	snprintf(buf, n, "http://127.0.0.1:%d%s", port, path);
}

/* Issue one request and wait for it. */
static void
do_req(struct rw_http *h, const struct rw_http_req *req, struct result *res, long wait_ms)
{
	memset(res, 0, sizeof(*res));
	int rv = rw_http_start(h, req, on_done, res, NULL);
	CHECK_EQ_INT(rv, 0);
	CHECK_EQ_INT(res->done, 0); /* never completed inside rw_http_start */
	CHECK(run_until(&res->done, wait_ms));
	CHECK_EQ_INT(res->calls, 1);
}

static void
t_get_put(void)
{
	struct rw_httpd *s = server_new();
	struct rw_http *h = NULL;
	CHECK(s != NULL);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	if (!s || !h)
		return;
	char url[128];
	struct result res;
	url_of(url, sizeof(url), rw_httpd_port(s), "/hello");
	struct rw_http_req req = {.url = url, .timeout_ms = 5000};
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, 0);
	CHECK_EQ_INT(res.status, 200);
	CHECK_EQ_STR(res.body, "hello");
	CHECK_EQ_INT(res.body_len, 5);
	CHECK_EQ_STR(res.ctype, "text/plain; charset=utf-8");
	CHECK_EQ_INT(res.retry_after, -1);
	CHECK_EQ_STR(res.errmsg, "");
	CHECK(res.total_ms > 0 && res.total_ms < 5000);

	/* PUT with a body and a custom header; the strings are copied. */
	char body[] = "payload-123";
	char hdr[] = "X-Test: yes";
	const char *hdrs[] = {hdr, NULL};
	url_of(url, sizeof(url), rw_httpd_port(s), "/echo?a=b");
	req = (struct rw_http_req){.method = "PUT",
				   .url = url,
				   .headers = hdrs,
				   .body = body,
				   .body_len = strlen(body),
				   .timeout_ms = 5000};
	memset(&res, 0, sizeof(res));
	CHECK_EQ_INT(rw_http_start(h, &req, on_done, &res, NULL), 0);
	memset(body, 'X', sizeof(body) - 1);
	memset(hdr, 'Z', sizeof(hdr) - 1);
	memset(url, 0, sizeof(url));
	CHECK(run_until(&res.done, 5000));
	CHECK_EQ_INT(res.status, 200);
	CHECK_EQ_STR(res.body, "PUT a=b yes payload-123");

	/* POST with a large body (no Expect: 100-continue stall) and DELETE. */
	static char large[200000];
	memset(large, 'q', sizeof(large));
	url_of(url, sizeof(url), rw_httpd_port(s), "/echo");
	req = (struct rw_http_req){.method = "POST",
				   .url = url,
				   .body = large,
				   .body_len = sizeof(large),
				   .timeout_ms = 5000};
	double t0 = now_ms();
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, 0);
	CHECK_EQ_INT(res.body_len, 8 + sizeof(large));
	CHECK(strncmp(res.body, "POST  - qqq", 11) == 0);
	CHECK(now_ms() - t0 < 900);
	req = (struct rw_http_req){.method = "DELETE", .url = url, .timeout_ms = 5000};
	do_req(h, &req, &res, 5000);
	CHECK_EQ_STR(res.body, "DELETE  - ");
	close_both(h, s);
	check_loop_empty();
}

static void
t_status_codes(void)
{
	struct rw_httpd *s = server_new();
	struct rw_http *h = NULL;
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	if (!s || !h)
		return;
	static const int codes[] = {201, 204, 400, 401, 404, 500, 503};
	char url[128];
	struct result res;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/status?%d", codes[i]);
		url_of(url, sizeof(url), rw_httpd_port(s), path);
		struct rw_http_req req = {.url = url, .timeout_ms = 5000};
		do_req(h, &req, &res, 5000);
		CHECK_EQ_INT(res.err, 0);
		CHECK_EQ_INT(res.status, codes[i]);
		CHECK_EQ_INT(res.retry_after, codes[i] == 503 ? 7 : -1);
	}
	/* Retry-After as an HTTP-date, 30 s ahead. */
	url_of(url, sizeof(url), rw_httpd_port(s), "/retry-date");
	struct rw_http_req req = {.url = url, .timeout_ms = 5000};
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.status, 429);
	CHECK(res.retry_after >= 28 && res.retry_after <= 31);
	/* Bearer token: none -> 401 (and still err 0), with token -> header sent. */
	url_of(url, sizeof(url), rw_httpd_port(s), "/auth");
	req = (struct rw_http_req){.url = url, .timeout_ms = 5000};
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, 0);
	CHECK_EQ_INT(res.status, 401);
	req.bearer_token = "tok-abc";
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.status, 200);
	CHECK_EQ_STR(res.body, "Bearer tok-abc");
	close_both(h, s);
	check_loop_empty();
}

static void
t_keepalive_reuse(void)
{
	struct rw_httpd *s = server_new();
	struct rw_http *h = NULL;
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	if (!s || !h)
		return;
	char url[128];
	struct result res;
	url_of(url, sizeof(url), rw_httpd_port(s), "/hello");
	struct rw_http_req req = {.url = url, .timeout_ms = 5000};
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.status, 200);
	CHECK_EQ_INT(rw_http_connects(h), 1);
	for (int i = 0; i < 5; i++) {
		do_req(h, &req, &res, 5000);
		CHECK_EQ_INT(res.status, 200);
	}
	/* No new TCP connection on either side. */
	CHECK_EQ_INT(rw_http_connects(h), 1);
	CHECK_EQ_INT(rw_httpd_connections(s), 1);
	CHECK_EQ_INT(rw_httpd_requests(s), 6);
	close_both(h, s);
	check_loop_empty();
}

struct many {
	int left;
	int ok;
	int zero;
};

static void
on_many(const struct rw_http_resp *r, void *ud)
{
	struct many *m = ud;
	if (r->err == 0 && r->status == 200 && strcmp(r->body, "hello") == 0)
		m->ok++;
	if (--m->left == 0)
		m->zero = 1;
}

static void
t_concurrent(void)
{
	struct rw_httpd *s = server_new();
	struct rw_http *h = NULL;
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	if (!s || !h)
		return;
	char url[128];
	url_of(url, sizeof(url), rw_httpd_port(s), "/hello");
	struct rw_http_req req = {.url = url, .timeout_ms = 10000};
	struct many m = {100, 0, 0};
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(rw_http_start(h, &req, on_many, &m, NULL), 0);
	CHECK_EQ_INT(rw_http_inflight(h), 100);
	CHECK(run_until(&m.zero, 20000));
	CHECK_EQ_INT(m.ok, 100);
	CHECK_EQ_INT(rw_http_inflight(h), 0);
	CHECK_EQ_INT(rw_httpd_requests(s), 100);
	/* A second wave reuses the cached connections (at most 32 kept). */
	unsigned long c1 = rw_http_connects(h);
	m = (struct many){100, 0, 0};
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(rw_http_start(h, &req, on_many, &m, NULL), 0);
	CHECK(run_until(&m.zero, 20000));
	CHECK_EQ_INT(m.ok, 100);
	CHECK(rw_http_connects(h) - c1 <= 100 - 16);
	close_both(h, s);
	check_loop_empty();
}

/* ---- raw uv TCP test server ---- */

enum raw_mode {
	RAW_SILENT, /* accept, read, never answer */
	RAW_STREAM, /* chunked answer in several writes, spaced by a timer */
	RAW_NOLEN,  /* big answer without Content-Length, then close */
	RAW_KEEP,   /* "hello" to every request, connection kept open */
	RAW_CLOSE,  /* "hello" with Connection: close, socket left open */
};

struct raw_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t sreq;
	struct raw_srv *srv;
	int step;
	int got_req;
	int nclosed;
};

struct raw_srv {
	uv_tcp_t tcp;
	enum raw_mode mode;
	int port;
	int accepted;
	int requests;
	int conns_open;
	struct raw_conn *conns[64];
	int nconns;
};

static char raw_rbuf[65536];

static void
raw_alloc(uv_handle_t *hd, size_t s, uv_buf_t *b)
{
	(void)hd;
	(void)s;
	b->base = raw_rbuf;
	b->len = sizeof(raw_rbuf);
}

static void
raw_conn_closed(uv_handle_t *hd)
{
	struct raw_conn *c = hd->data;
	if (++c->nclosed == 2) {
		c->srv->conns_open--;
		for (int i = 0; i < c->srv->nconns; i++)
			if (c->srv->conns[i] == c)
				c->srv->conns[i] = NULL;
		free(c);
	}
}

static void
raw_conn_close(struct raw_conn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	uv_close((uv_handle_t *)&c->tcp, raw_conn_closed);
	uv_close((uv_handle_t *)&c->timer, raw_conn_closed);
}

struct raw_write {
	uv_write_t req;
	char *data;
};

static void
raw_written(uv_write_t *w, int status)
{
	struct raw_write *rw = (struct raw_write *)w;
	(void)status;
	free(rw->data);
	free(rw);
}

static void
raw_send(struct raw_conn *c, const char *data, size_t n)
{
	struct raw_write *w = malloc(sizeof(*w));
	w->data = malloc(n);
	memcpy(w->data, data, n);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, raw_written) != 0) {
		free(w->data);
		free(w);
	}
}

static const char *const stream_chunks[] = {
    ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
     "c\r\n{\"type\":\"A\"}\r\n"),
    "c\r\n\n{\"type\":\"B\"\r\n",
    "2\r\n}\n\r\n",
    "0\r\n\r\n",
};

static void
raw_timer(uv_timer_t *t)
{
	struct raw_conn *c = t->data;
	if (c->step < 4) {
		raw_send(c, stream_chunks[c->step], strlen(stream_chunks[c->step]));
		c->step++;
		if (c->step < 4)
			uv_timer_start(&c->timer, raw_timer, 30, 0);
		else
			c->step = c->got_req = 0; /* ready for the next request (keep-alive) */
	}
}

static void
raw_shut(uv_shutdown_t *req, int status)
{
	(void)status;
	raw_conn_close(req->data);
}

static void
raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct raw_conn *c = st->data;
	(void)b;
	if (n < 0) {
		raw_conn_close(c);
		return;
	}
	if (n > 0 && (c->srv->mode == RAW_KEEP || c->srv->mode == RAW_CLOSE)) {
		c->srv->requests++;
		const char *ans = c->srv->mode == RAW_KEEP
				      ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
				      : "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: "
					"close\r\n\r\nhello";
		raw_send(c, ans, strlen(ans));
		return;
	}
	if (n == 0 || c->got_req)
		return;
	c->got_req = 1;
	if (c->srv->mode == RAW_STREAM) {
		raw_timer(&c->timer);
	} else if (c->srv->mode == RAW_NOLEN) {
		static char big[100000];
		const char *hd = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
		memset(big, 'z', sizeof(big));
		raw_send(c, hd, strlen(hd));
		raw_send(c, big, sizeof(big));
		/* The body ends at EOF: shut down after the writes, then close. */
		c->sreq.data = c;
		uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, raw_shut);
	}
}

static void
raw_on_conn(uv_stream_t *ls, int status)
{
	struct raw_srv *r = ls->data;
	if (status < 0)
		return;
	struct raw_conn *c = calloc(1, sizeof(*c));
	c->srv = r;
	uv_tcp_init(&loop, &c->tcp);
	uv_timer_init(&loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	r->conns_open++;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
		raw_conn_close(c);
		return;
	}
	r->accepted++;
	if (r->nconns < 64)
		r->conns[r->nconns++] = c;
	uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read);
}

static int
raw_start(struct raw_srv *r, enum raw_mode mode)
{
	struct sockaddr_in a;
	memset(r, 0, sizeof(*r));
	r->mode = mode;
	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_tcp_init(&loop, &r->tcp);
	r->tcp.data = r;
	if (uv_tcp_bind(&r->tcp, (struct sockaddr *)&a, 0) != 0 ||
	    uv_listen((uv_stream_t *)&r->tcp, 128, raw_on_conn) != 0)
		return -1;
	struct sockaddr_in me;
	int len = sizeof(me);
	uv_tcp_getsockname(&r->tcp, (struct sockaddr *)&me, &len);
	r->port = ntohs(me.sin_port);
	return 0;
}

static void
raw_stop(struct raw_srv *r)
{
	for (int i = 0; i < r->nconns; i++)
		if (r->conns[i])
			raw_conn_close(r->conns[i]);
	uv_close((uv_handle_t *)&r->tcp, NULL);
	for (int i = 0; i < 100 && r->conns_open > 0; i++)
		uv_run(&loop, UV_RUN_ONCE);
	uv_run(&loop, UV_RUN_NOWAIT);
	CHECK_EQ_INT(r->conns_open, 0);
}

static void
t_timeout(void)
{
	struct raw_srv r;
	struct rw_http *h = NULL;
	CHECK_EQ_INT(raw_start(&r, RAW_SILENT), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	char url[128];
	struct result res;
	url_of(url, sizeof(url), r.port, "/never");
	struct rw_http_req req = {.url = url, .timeout_ms = 300};
	double t0 = now_ms();
	do_req(h, &req, &res, 5000);
	double dt = now_ms() - t0;
	CHECK_EQ_INT(res.err, -ETIMEDOUT);
	CHECK_EQ_INT(res.status, 0);
	CHECK(res.errmsg[0] != '\0');
	CHECK(dt >= 290 && dt < 300 + 400);
	CHECK_EQ_INT(r.accepted, 1);
	close_both(h, NULL);
	raw_stop(&r);
	check_loop_empty();
}

static void
t_refused(void)
{
	/* A port that was free a moment ago and has no listener. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	uv_ip4_addr("127.0.0.1", 0, &a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	int port = ntohs(a.sin_port);
	close(fd);
	struct rw_http *h = NULL;
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	char url[128];
	struct result res;
	url_of(url, sizeof(url), port, "/");
	struct rw_http_req req = {.url = url, .timeout_ms = 2000};
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, -ECONNREFUSED);
	CHECK_EQ_INT(res.status, 0);
	/* A malformed URL fails through the callback as well, never inside start. */
	req.url = "http://[::1";
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, -EPROTO);
	CHECK(res.errmsg[0] != '\0');
	/* Other schemes are refused. */
	req.url = "file:///etc/hostname";
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, -EPROTO);
	close_both(h, NULL);
	check_loop_empty();
}

static void
t_max_body(void)
{
	struct rw_httpd *s = server_new();
	struct rw_http *h = NULL;
	struct raw_srv r;
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	CHECK_EQ_INT(raw_start(&r, RAW_NOLEN), 0);
	if (!s || !h)
		return;
	char url[128];
	struct result res;
	/* With Content-Length (curl refuses early). */
	url_of(url, sizeof(url), rw_httpd_port(s), "/big?5000");
	struct rw_http_req req = {.url = url, .timeout_ms = 5000, .max_body = 1000};
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, -EMSGSIZE);
	CHECK_EQ_INT(res.body_len, 0);
	/* Exactly at the limit is fine. */
	url_of(url, sizeof(url), rw_httpd_port(s), "/big?1000");
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, 0);
	CHECK_EQ_INT(res.body_len, 1000);
	CHECK_EQ_STR(res.ctype, "application/octet-stream");
	/* Without Content-Length: the write callback aborts. */
	url_of(url, sizeof(url), r.port, "/");
	req.max_body = 50000;
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, -EMSGSIZE);
	/* The default cap is 1 MiB: 100000 bytes pass. */
	req.max_body = 0;
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, 0);
	CHECK_EQ_INT(res.body_len, 100000);
	close_both(h, s);
	raw_stop(&r);
	check_loop_empty();
}

struct stream {
	char data[512];
	size_t len;
	int chunks;
	int abort_after;
};

static int
on_data(const char *p, size_t n, void *ud)
{
	struct stream *st = ud;
	if (st->len + n < sizeof(st->data)) {
		memcpy(st->data + st->len, p, n);
		st->len += n;
		st->data[st->len] = '\0';
	}
	st->chunks++;
	return st->abort_after && st->chunks >= st->abort_after;
}

/* on_data and done share the call's ud: wrap both records. */
struct sres {
	struct result res;
	struct stream st;
};

static int
on_data_s(const char *p, size_t n, void *ud)
{
	return on_data(p, n, &((struct sres *)ud)->st);
}

static void
on_done_s(const struct rw_http_resp *r, void *ud)
{
	on_done(r, &((struct sres *)ud)->res);
}

static void
t_streaming_chunks(void)
{
	struct raw_srv r;
	struct rw_http *h = NULL;
	CHECK_EQ_INT(raw_start(&r, RAW_STREAM), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	char url[128];
	struct sres *x = calloc(1, sizeof(*x));
	url_of(url, sizeof(url), r.port, "/watch");
	struct rw_http_req req = {.url = url, .low_speed_time_s = 5, .on_data = on_data_s};
	CHECK_EQ_INT(rw_http_start(h, &req, on_done_s, x, NULL), 0);
	CHECK(run_until(&x->res.done, 5000));
	CHECK_EQ_INT(x->res.err, 0);
	CHECK_EQ_INT(x->res.status, 200);
	CHECK_EQ_INT(x->st.len, 26);
	CHECK_EQ_STR(x->st.data, "{\"type\":\"A\"}\n{\"type\":\"B\"}\n");
	CHECK(x->st.chunks >= 3); /* three separately timed chunks */
	/* Aborting from on_data ends the call with -ECANCELED. */
	memset(x, 0, sizeof(*x));
	x->st.abort_after = 1;
	CHECK_EQ_INT(rw_http_start(h, &req, on_done_s, x, NULL), 0);
	CHECK(run_until(&x->res.done, 5000));
	CHECK_EQ_INT(x->res.err, -ECANCELED);
	CHECK_EQ_INT(x->st.chunks, 1);
	close_both(h, NULL);
	raw_stop(&r);
	free(x);
	check_loop_empty();
}

static void
t_cancel(void)
{
	struct raw_srv r;
	struct rw_http *h = NULL;
	CHECK_EQ_INT(raw_start(&r, RAW_SILENT), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	char url[128];
	struct result res, res2;
	memset(&res, 0, sizeof(res));
	memset(&res2, 0, sizeof(res2));
	url_of(url, sizeof(url), r.port, "/");
	struct rw_http_req req = {.url = url, .timeout_ms = 300};
	struct rw_http_call *call = NULL, *call2 = NULL;
	CHECK_EQ_INT(rw_http_start(h, &req, on_done, &res, &call), 0);
	CHECK(call != NULL);
	/* Cancel once the server holds the connection. */
	int accepted = 0;
	for (int i = 0; i < 200 && !accepted; i++) {
		uv_run(&loop, UV_RUN_ONCE);
		accepted = r.accepted == 1;
	}
	CHECK(accepted);
	rw_http_cancel(call);
	CHECK_EQ_INT(rw_http_inflight(h), 0);
	/* Cancel right after start, before the loop ran. */
	CHECK_EQ_INT(rw_http_start(h, &req, on_done, &res2, &call2), 0);
	rw_http_cancel(call2);
	/* Past the request timeout: still no callback. */
	int never = 0;
	run_until(&never, 600);
	CHECK_EQ_INT(res.calls, 0);
	CHECK_EQ_INT(res2.calls, 0);
	/* The client still works after cancels. */
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, -ETIMEDOUT);
	close_both(h, NULL);
	raw_stop(&r);
	check_loop_empty();
}

static void
t_free_inflight(void)
{
	struct raw_srv r;
	struct rw_httpd *s = server_new();
	struct rw_http *h = NULL;
	CHECK_EQ_INT(raw_start(&r, RAW_SILENT), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	char url[128], url2[128];
	struct result res[4];
	memset(res, 0, sizeof(res));
	url_of(url, sizeof(url), r.port, "/");
	url_of(url2, sizeof(url2), rw_httpd_port(s), "/hello");
	struct rw_http_req req = {.url = url, .timeout_ms = 5000};
	struct rw_http_req req2 = {.url = url2, .timeout_ms = 5000};
	/* Warm a keep-alive connection so one is cached when freeing. */
	do_req(h, &req2, &res[3], 5000);
	memset(&res[3], 0, sizeof(res[3]));
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(rw_http_start(h, &req, on_done, &res[i], NULL), 0);
	CHECK_EQ_INT(rw_http_start(h, &req2, on_done, &res[3], NULL), 0);
	for (int i = 0; i < 200 && r.accepted < 3; i++)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK_EQ_INT(r.accepted, 3);
	close_both(h, s);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(res[i].calls, 0);
	raw_stop(&r);
	check_loop_empty();
}

/* Re-entrancy: start, cancel and free from inside callbacks. */
struct chain {
	struct rw_http *h;
	struct rw_http_req req;
	struct result res;
	int hops;
	int freed;
	struct rw_http_call *victim;
	int victim_called;
};

static void
on_victim(const struct rw_http_resp *r, void *ud)
{
	(void)r;
	((struct chain *)ud)->victim_called++;
}

static void
on_chain(const struct rw_http_resp *r, void *ud)
{
	struct chain *c = ud;
	c->hops++;
	if (r->err || r->status != 200)
		c->res.err = r->err ? r->err : -1;
	if (c->hops == 1) {
		/* Start two more; cancel one of them at once. */
		rw_http_start(c->h, &c->req, on_chain, c, NULL);
		rw_http_start(c->h, &c->req, on_victim, c, &c->victim);
		rw_http_cancel(c->victim);
	} else if (c->hops == 2) {
		rw_http_start(c->h, &c->req, on_chain, c, NULL);
		rw_http_start(c->h, &c->req, on_victim, c, NULL);
		/* Free the client from its own callback: no more callbacks. */
		rw_http_free(c->h, on_client_closed, NULL);
		c->freed = 1;
	}
}

static void
t_reentrancy(void)
{
	struct rw_httpd *s = server_new();
	struct chain *c = calloc(1, sizeof(*c));
	CHECK_EQ_INT(rw_http_new(&loop, &c->h), 0);
	char url[128];
	url_of(url, sizeof(url), rw_httpd_port(s), "/hello");
	c->req = (struct rw_http_req){.url = url, .timeout_ms = 5000};
	client_closed = 0;
	CHECK_EQ_INT(rw_http_start(c->h, &c->req, on_chain, c, NULL), 0);
	CHECK(run_until(&client_closed, 5000));
	CHECK_EQ_INT(c->hops, 2);
	CHECK_EQ_INT(c->victim_called, 0);
	CHECK_EQ_INT(c->res.err, 0);
	close_both(NULL, s);
	free(c);
	check_loop_empty();
}

/* Free from inside on_data (that is, inside curl). */
static int
on_data_free(const char *p, size_t n, void *ud)
{
	struct sres *x = ud;
	(void)p;
	(void)n;
	x->st.chunks++;
	rw_http_free(*(struct rw_http **)(void *)x->st.data, on_client_closed, NULL);
	return 0;
}

static void
t_free_in_stream(void)
{
	struct raw_srv r;
	struct rw_http *h = NULL;
	CHECK_EQ_INT(raw_start(&r, RAW_STREAM), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	struct sres *x = calloc(1, sizeof(*x));
	memcpy(x->st.data, &h, sizeof(h));
	char url[128];
	url_of(url, sizeof(url), r.port, "/watch");
	struct rw_http_req req = {.url = url, .on_data = on_data_free};
	client_closed = 0;
	CHECK_EQ_INT(rw_http_start(h, &req, on_done_s, x, NULL), 0);
	CHECK(run_until(&client_closed, 5000));
	CHECK_EQ_INT(x->st.chunks, 1);
	CHECK_EQ_INT(x->res.calls, 0);
	raw_stop(&r);
	free(x);
	check_loop_empty();
}

/* From inside on_data (inside curl): start a call and cancel another; both are deferred. */
struct inner {
	struct rw_http *h;
	struct rw_http_req req;
	struct result started;
	struct result victim;
	struct rw_http_call *victim_call;
	struct result outer;
	int chunks;
};

static int
on_data_inner(const char *p, size_t n, void *ud)
{
	struct inner *in = ud;
	(void)p;
	(void)n;
	if (in->chunks++ == 0) {
		CHECK_EQ_INT(rw_http_start(in->h, &in->req, on_done, &in->started, NULL), 0);
		rw_http_cancel(in->victim_call);
	}
	return 0;
}

static void
on_done_inner(const struct rw_http_resp *r, void *ud)
{
	on_done(r, &((struct inner *)ud)->outer);
}

static void
t_calls_from_on_data(void)
{
	struct raw_srv r, silent;
	struct rw_httpd *s = server_new();
	struct inner *in = calloc(1, sizeof(*in));
	CHECK_EQ_INT(raw_start(&r, RAW_STREAM), 0);
	CHECK_EQ_INT(raw_start(&silent, RAW_SILENT), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &in->h), 0);
	char url[128], url2[128], url3[128];
	url_of(url, sizeof(url), r.port, "/watch");
	url_of(url2, sizeof(url2), rw_httpd_port(s), "/hello");
	url_of(url3, sizeof(url3), silent.port, "/");
	in->req = (struct rw_http_req){.url = url2, .timeout_ms = 5000};
	struct rw_http_req vreq = {.url = url3, .timeout_ms = 300};
	CHECK_EQ_INT(rw_http_start(in->h, &vreq, on_done, &in->victim, &in->victim_call), 0);
	struct rw_http_req sreq = {.url = url, .on_data = on_data_inner, .timeout_ms = 5000};
	CHECK_EQ_INT(rw_http_start(in->h, &sreq, on_done_inner, in, NULL), 0);
	CHECK(run_until(&in->outer.done, 5000));
	CHECK(run_until(&in->started.done, 5000));
	CHECK_EQ_INT(in->outer.err, 0);
	CHECK_EQ_INT(in->started.err, 0);
	CHECK_EQ_STR(in->started.body, "hello");
	int never = 0;
	run_until(&never, 400); /* past the victim's timeout */
	CHECK_EQ_INT(in->victim.calls, 0);
	CHECK_EQ_INT(rw_http_inflight(in->h), 0);
	close_both(in->h, s);
	raw_stop(&r);
	raw_stop(&silent);
	free(in);
	check_loop_empty();
}

/* A stream that stops sending is cut by low_speed_time. */
static void
t_stream_stall(void)
{
	struct raw_srv r;
	struct rw_http *h = NULL;
	struct sres *x = calloc(1, sizeof(*x));
	CHECK_EQ_INT(raw_start(&r, RAW_SILENT), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	char url[128];
	url_of(url, sizeof(url), r.port, "/watch");
	struct rw_http_req req = {.url = url, .low_speed_time_s = 1, .on_data = on_data_s};
	double t0 = now_ms();
	CHECK_EQ_INT(rw_http_start(h, &req, on_done_s, x, NULL), 0);
	CHECK(run_until(&x->res.done, 5000));
	double dt = now_ms() - t0;
	CHECK_EQ_INT(x->res.err, -ETIMEDOUT);
	CHECK(dt >= 900 && dt < 3500);
	close_both(h, NULL);
	raw_stop(&r);
	free(x);
	check_loop_empty();
}

static void
t_env_proxy_ignored(void)
{
	setenv("http_proxy", "http://127.0.0.1:9", 1);
	setenv("HTTP_PROXY", "http://127.0.0.1:9", 1);
	setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
	struct rw_httpd *s = server_new();
	struct rw_http *h = NULL;
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	char url[128];
	struct result res;
	url_of(url, sizeof(url), rw_httpd_port(s), "/hello");
	struct rw_http_req req = {.url = url, .timeout_ms = 5000};
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.err, 0);
	CHECK_EQ_INT(res.status, 200);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("ALL_PROXY");
	close_both(h, s);
	check_loop_empty();
}

/* ---- idle connection watch ---- */

struct watch_rec {
	int fired;
	int calls;
	long tag;
	int err;
};

static void
on_watch(long tag, int err, void *ud)
{
	struct watch_rec *w = ud;
	w->fired = 1;
	w->calls++;
	w->tag = tag;
	w->err = err;
}

/* Run the loop for ms (nothing to wait for). */
static void
run_for(long ms)
{
	int never = 0;
	run_until(&never, ms);
}

static void
t_watch_server_close(void)
{
	struct raw_srv r;
	struct rw_http *h = NULL;
	struct watch_rec w = {0, 0, 0, 0};
	CHECK_EQ_INT(raw_start(&r, RAW_KEEP), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	rw_http_set_watch(h, on_watch, &w);
	char url[128];
	struct result res;
	url_of(url, sizeof(url), r.port, "/x");
	struct rw_http_req req = {.url = url, .timeout_ms = 2000, .watch_tag = 7};
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.status, 200);
	CHECK_EQ_STR(res.body, "hello");
	/* Idle and open: nothing to report. */
	run_for(100);
	CHECK_EQ_INT(w.calls, 0);
	/* The server closes the idle connection: reported at once, with the tag. */
	double t0 = now_ms();
	raw_conn_close(r.conns[0]);
	CHECK(run_until(&w.fired, 2000));
	CHECK(now_ms() - t0 < 500);
	CHECK_EQ_INT(w.calls, 1);
	CHECK_EQ_INT(w.tag, 7);
	CHECK_EQ_INT(w.err, 0);
	CHECK_EQ_INT((int)rw_http_watch_events(h), 1);
	/* Once, not once per loop turn (EOF stays readable). */
	run_for(100);
	CHECK_EQ_INT(w.calls, 1);
	/* The next request finds it dead and connects again; curl closing the
	 * dead connection is not reported. */
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.status, 200);
	CHECK_EQ_INT(r.accepted, 2);
	CHECK_EQ_INT((int)rw_http_connects(h), 2);
	CHECK_EQ_INT(w.calls, 1);
	/* Bytes nobody asked for on an idle connection: -EPROTO. */
	w.fired = 0;
	CHECK(r.conns[1] != NULL);
	if (r.conns[1])
		raw_send(r.conns[1], "junk", 4);
	CHECK(run_until(&w.fired, 2000));
	CHECK_EQ_INT(w.calls, 2);
	CHECK_EQ_INT(w.err, -EPROTO);
	/* A request without a tag leaves its connection unwatched. */
	req.watch_tag = 0;
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.status, 200);
	CHECK_EQ_INT(r.accepted, 3);
	CHECK(r.conns[2] != NULL);
	if (r.conns[2])
		raw_conn_close(r.conns[2]);
	run_for(200);
	CHECK_EQ_INT(w.calls, 2);
	close_both(h, NULL);
	raw_stop(&r);
	check_loop_empty();
}

static void
t_watch_reuse(void)
{
	struct raw_srv r;
	struct rw_http *h = NULL;
	struct watch_rec w = {0, 0, 0, 0};
	CHECK_EQ_INT(raw_start(&r, RAW_KEEP), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	rw_http_set_watch(h, on_watch, &w);
	char url[128];
	struct result res;
	url_of(url, sizeof(url), r.port, "/x");
	struct rw_http_req req = {.url = url, .timeout_ms = 2000, .watch_tag = 3};
	/* curl reuses the watched connection: polling goes back to curl and
	 * returns to the watch after each answer, with nothing reported. */
	for (int i = 0; i < 5; i++) {
		if (i == 4)
			req.watch_tag = 4; /* the last request's tag is the one reported */
		do_req(h, &req, &res, 5000);
		CHECK_EQ_INT(res.status, 200);
		CHECK_EQ_STR(res.body, "hello");
		run_for(20);
	}
	CHECK_EQ_INT(r.accepted, 1);
	CHECK_EQ_INT(r.requests, 5);
	CHECK_EQ_INT((int)rw_http_connects(h), 1);
	CHECK_EQ_INT(w.calls, 0);
	raw_conn_close(r.conns[0]);
	CHECK(run_until(&w.fired, 2000));
	CHECK_EQ_INT(w.calls, 1);
	CHECK_EQ_INT(w.tag, 4);
	/* Reporting turned off: a later hang-up is not reported. */
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.status, 200);
	rw_http_set_watch(h, NULL, NULL);
	CHECK(r.conns[1] != NULL);
	if (r.conns[1])
		raw_conn_close(r.conns[1]);
	run_for(200);
	CHECK_EQ_INT(w.calls, 1);
	close_both(h, NULL);
	raw_stop(&r);
	check_loop_empty();
}

static void
t_watch_curl_closes(void)
{
	struct raw_srv r;
	struct rw_http *h = NULL;
	struct watch_rec w = {0, 0, 0, 0};
	char url[128];
	struct result res;
	/* "Connection: close": curl closes the socket itself; never reported,
	 * also not when the server's end goes away afterwards. */
	CHECK_EQ_INT(raw_start(&r, RAW_CLOSE), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	rw_http_set_watch(h, on_watch, &w);
	url_of(url, sizeof(url), r.port, "/x");
	struct rw_http_req req = {.url = url, .timeout_ms = 2000, .watch_tag = 9};
	for (int i = 0; i < 3; i++) {
		do_req(h, &req, &res, 5000);
		CHECK_EQ_INT(res.status, 200);
	}
	CHECK_EQ_INT(r.accepted, 3);
	run_for(100);
	for (int i = 0; i < r.nconns; i++)
		if (r.conns[i])
			raw_conn_close(r.conns[i]);
	run_for(100);
	CHECK_EQ_INT(w.calls, 0);
	close_both(h, NULL);
	raw_stop(&r);
	check_loop_empty();

	/* A watched idle connection when the client is freed: curl closes it
	 * (through the close-socket callback), nothing is reported, every
	 * handle is released. */
	CHECK_EQ_INT(raw_start(&r, RAW_KEEP), 0);
	h = NULL;
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	rw_http_set_watch(h, on_watch, &w);
	url_of(url, sizeof(url), r.port, "/x");
	req.url = url;
	do_req(h, &req, &res, 5000);
	CHECK_EQ_INT(res.status, 200);
	close_both(h, NULL);
	CHECK_EQ_INT(w.calls, 0);
	raw_stop(&r);
	check_loop_empty();
}

/* The watch callback may start a request at once (the agent re-probes). */
struct reprobe {
	struct rw_http *h;
	struct rw_http_req req;
	struct result res;
	int started;
};

static void
on_watch_reprobe(long tag, int err, void *ud)
{
	struct reprobe *rp = ud;
	(void)tag;
	(void)err;
	memset(&rp->res, 0, sizeof(rp->res));
	rp->started = rw_http_start(rp->h, &rp->req, on_done, &rp->res, NULL) == 0;
}

static void
t_watch_reprobe_from_callback(void)
{
	struct raw_srv r;
	struct reprobe rp;
	memset(&rp, 0, sizeof(rp));
	CHECK_EQ_INT(raw_start(&r, RAW_KEEP), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &rp.h), 0);
	rw_http_set_watch(rp.h, on_watch_reprobe, &rp);
	char url[128];
	url_of(url, sizeof(url), r.port, "/x");
	rp.req = (struct rw_http_req){.url = url, .timeout_ms = 2000, .watch_tag = 1};
	do_req(rp.h, &rp.req, &rp.res, 5000);
	CHECK_EQ_INT(rp.res.status, 200);
	/* A normal keep-alive close by the server costs exactly one new probe. */
	rp.res.done = 0;
	raw_conn_close(r.conns[0]);
	CHECK(run_until(&rp.res.done, 2000));
	CHECK_EQ_INT(rp.started, 1);
	CHECK_EQ_INT(rp.res.status, 200);
	CHECK_EQ_INT(r.requests, 2);
	CHECK_EQ_INT(r.accepted, 2);
	run_for(100);
	CHECK_EQ_INT(r.requests, 2);
	close_both(rp.h, NULL);
	raw_stop(&r);
	check_loop_empty();
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"get and put with bodies", t_get_put},
	    {"status codes, retry-after, bearer", t_status_codes},
	    {"keep-alive reuse", t_keepalive_reuse},
	    {"100 concurrent requests", t_concurrent},
	    {"timeout against a silent server", t_timeout},
	    {"connection refused and bad urls", t_refused},
	    {"max body", t_max_body},
	    {"streaming in chunks", t_streaming_chunks},
	    {"cancel", t_cancel},
	    {"free with calls in flight", t_free_inflight},
	    {"start/cancel/free from callbacks", t_reentrancy},
	    {"free from on_data", t_free_in_stream},
	    {"start and cancel from on_data", t_calls_from_on_data},
	    {"stalled stream", t_stream_stall},
	    {"proxy environment ignored", t_env_proxy_ignored},
	    {"idle watch: server closes, unexpected bytes, untagged", t_watch_server_close},
	    {"idle watch: curl reuses the connection", t_watch_reuse},
	    {"idle watch: curl closes the connection", t_watch_curl_closes},
	    {"idle watch: re-probe from the callback", t_watch_reprobe_from_callback},
	    {NULL, NULL},
	};
	uv_loop_init(&loop);
	int rv = rwt_run(cases);
	uv_run(&loop, UV_RUN_NOWAIT);
	if (uv_loop_close(&loop) != 0) {
		fprintf(stderr, "loop not empty at exit\n");
		rv = 1;
	}
	return rv;
}

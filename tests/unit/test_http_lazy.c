/*
 * test_http_lazy.c - rw_http with the dlopen provider of libcurl (the
 * agent's): libcurl is mapped by the first request and not before; a
 * library that cannot be loaded fails each request through its callback,
 * with the reason, and nothing else (checked in a child process, since
 * the outcome of loading is decided once per process).
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <uv.h>

#include "rw/http.h"
#include "rw/httpd.h"
#include "rwtest.h"

extern char **environ;

#define MISSING "librw-no-such-curl.so.0"

static uv_loop_t loop;

static void
tick_cb(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until *flag is set or ms pass. Returns the flag. */
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

/* Is a file whose name contains `what` mapped into this process? */
static int
mapped(const char *what)
{
	char line[1024];
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static void
handler(const struct rw_httpd_req *req, struct rw_httpd_resp *resp, void *ud)
{
	(void)ud;
	if (strcmp(req->path, "/hello") == 0)
		rw_buf_puts(&resp->body, "hello");
	else
		resp->status = 404;
}

struct result {
	int done, calls, err;
	long status;
	char body[64];
	char errmsg[256];
};

static void
on_done(const struct rw_http_resp *r, void *ud)
{
	struct result *res = ud;
	res->calls++;
	res->done = 1;
	res->err = r->err;
	res->status = r->status;
	snprintf(res->body, sizeof(res->body), "%s", r->body);
	snprintf(res->errmsg, sizeof(res->errmsg), "%s", r->errmsg);
}

static int closed;
static void
on_closed(void *ud)
{
	(void)ud;
	closed++;
}

static void
t_loaded_on_first_request(void)
{
	struct rw_httpd *s = NULL;
	struct rw_http *h = NULL;
	char err[128], url[64];
	struct rw_httpd_opts o = {.host = "127.0.0.1"};
	struct result res;

	CHECK_EQ_INT(mapped("libcurl"), 0);
	CHECK_EQ_INT(rw_httpd_new(&loop, &o, handler, NULL, &s, err, sizeof(err)), 0);
	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	if (!s || !h)
		return;
	CHECK_EQ_INT(mapped("libcurl"), 0); /* a client alone does not load it */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", rw_httpd_port(s));
	struct rw_http_req req = {.url = url, .timeout_ms = 10000};
	memset(&res, 0, sizeof(res));
	CHECK_EQ_INT(rw_http_start(h, &req, on_done, &res, NULL), 0);
	CHECK_EQ_INT(mapped("libcurl"), 1);
	CHECK(run_until(&res.done, 20000));
	CHECK_EQ_INT(res.err, 0);
	CHECK_EQ_INT(res.status, 200);
	CHECK_EQ_STR(res.body, "hello");
	/* A second client reuses the loaded library. */
	struct rw_http *h2 = NULL;
	CHECK_EQ_INT(rw_http_new(&loop, &h2), 0);
	memset(&res, 0, sizeof(res));
	CHECK_EQ_INT(rw_http_start(h2, &req, on_done, &res, NULL), 0);
	CHECK(run_until(&res.done, 20000));
	CHECK_EQ_INT(res.status, 200);
	closed = 0;
	rw_http_free(h, on_closed, NULL);
	rw_http_free(h2, on_closed, NULL);
	rw_httpd_free(s, on_closed, NULL);
	for (int i = 0; i < 200 && closed < 3; i++)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK_EQ_INT(closed, 3);
}

/* The child's part: RAYWARDEN_LIBCURL names a library that does not exist. */
static void
t_missing_library(void)
{
	struct rw_http *h = NULL;
	struct rw_http_call *call = NULL;
	struct result a, b, c;
	/* Nothing listens there: a loaded libcurl would answer -ECONNREFUSED. */
	struct rw_http_req req = {
	    .url = "http://127.0.0.1:9/x", .method = "PUT", .body = "{}", .body_len = 2};

	CHECK_EQ_INT(rw_http_new(&loop, &h), 0);
	if (!h)
		return;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(rw_http_start(h, &req, on_done, &a, NULL), 0);
	CHECK_EQ_INT(a.done, 0); /* never completed inside rw_http_start */
	CHECK_EQ_INT(rw_http_start(h, &req, on_done, &b, &call), 0);
	CHECK(call != NULL);
	rw_http_cancel(call); /* a cancelled failure is never reported */
	CHECK_EQ_INT(rw_http_inflight(h), 1);
	CHECK(run_until(&a.done, 5000));
	CHECK_EQ_INT(a.calls, 1);
	CHECK_EQ_INT(a.err, -ELIBACC);
	CHECK_EQ_INT(a.status, 0);
	CHECK(strstr(a.errmsg, MISSING) != NULL);
	CHECK_EQ_INT(b.calls, 0);
	CHECK_EQ_INT(rw_http_inflight(h), 0);
	/* The failure is kept: the next request fails the same way. */
	CHECK_EQ_INT(rw_http_start(h, &req, on_done, &c, NULL), 0);
	CHECK(run_until(&c.done, 5000));
	CHECK_EQ_INT(c.err, -ELIBACC);
	CHECK_EQ_INT(mapped("libcurl"), 0);
	/* Freed with a failed call still pending: no callback, no leak. */
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(rw_http_start(h, &req, on_done, &c, NULL), 0);
	closed = 0;
	rw_http_free(h, on_closed, NULL);
	for (int i = 0; i < 200 && !closed; i++)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK_EQ_INT(closed, 1);
	CHECK_EQ_INT(c.calls, 0);
}

static const char *self;

static void
t_missing_library_child(void)
{
	char *argv[] = {(char *)self, "missing", NULL};
	pid_t pid;
	int st = 0;
	CHECK_EQ_INT(setenv("RAYWARDEN_LIBCURL", MISSING, 1), 0);
	int rv = posix_spawn(&pid, self, NULL, NULL, argv, environ);
	unsetenv("RAYWARDEN_LIBCURL");
	CHECK_EQ_INT(rv, 0);
	if (rv != 0)
		return;
	CHECK_EQ_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ_INT(WEXITSTATUS(st), 0);
}

int
main(int argc, char **argv)
{
	static const struct rwt_case cases[] = {
	    {"libcurl mapped by the first request, not before", t_loaded_on_first_request},
	    {"a library that cannot be loaded fails requests (child process)",
	     t_missing_library_child},
	    {NULL, NULL},
	};
	static const struct rwt_case child[] = {
	    {"child: requests fail with -ELIBACC and the reason", t_missing_library},
	    {NULL, NULL},
	};
	self = argv[0];
	uv_loop_init(&loop);
	int rv = rwt_run(argc > 1 && strcmp(argv[1], "missing") == 0 ? child : cases);
	uv_run(&loop, UV_RUN_NOWAIT);
	if (uv_loop_close(&loop) != 0) {
		fprintf(stderr, "loop not empty at exit\n");
		rv = 1;
	}
	return rv;
}

/*
 * bench_http.c - CPU time per keep-alive GET of rw_http against rw_httpd in
 * one process and one loop (client and server costs together). Not part of
 * ctest; build and run by hand, without sanitizers:
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iproto/include \
 *      tests/bench/bench_http.c proto/src/http.c proto/src/httpd.c \
 *      proto/src/httpd_parse.c proto/src/buf.c proto/src/curl_linked.c -luv -lcurl \
 *      -o /tmp/bench_http
 *   /tmp/bench_http [requests] [interval_ms]
 *
 * With interval_ms 0 the requests run back to back; with e.g. 200 they are
 * spaced like the agent's probes, which also shows the idle cost of the
 * timers between requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <uv.h>

#include "rw/http.h"
#include "rw/httpd.h"

static uv_loop_t loop;
static struct rw_http *cli;
static struct rw_http_req req;
static long total, done_n, bad, interval_ms;
static uv_timer_t pace;
static int finished;

static void
handler(const struct rw_httpd_req *r, struct rw_httpd_resp *resp, void *ud)
{
	(void)r;
	(void)ud;
	rw_buf_puts(&resp->body, "success");
}

static void start_one(void);

static void
pace_cb(uv_timer_t *t)
{
	(void)t;
	start_one();
}

static void
on_done(const struct rw_http_resp *r, void *ud)
{
	(void)ud;
	if (r->err || r->status != 200)
		bad++;
	if (++done_n >= total) {
		finished = 1;
		return;
	}
	if (interval_ms > 0)
		uv_timer_start(&pace, pace_cb, (uint64_t)interval_ms, 0);
	else
		start_one();
}

static void
start_one(void)
{
	if (rw_http_start(cli, &req, on_done, NULL, NULL) != 0) {
		bad++;
		finished = 1;
	}
}

static double
cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double
wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct rw_httpd *srv = NULL;
	struct rw_httpd_opts o = {.host = "127.0.0.1"};
	char err[128], url[128];
	total = argc > 1 ? atol(argv[1]) : 20000;
	interval_ms = argc > 2 ? atol(argv[2]) : 0;

	uv_loop_init(&loop);
	uv_timer_init(&loop, &pace);
	if (rw_httpd_new(&loop, &o, handler, NULL, &srv, err, sizeof(err)) != 0) {
		fprintf(stderr, "httpd: %s\n", err);
		return 1;
	}
	rw_http_new(&loop, &cli);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/local_raylet_healthz",
		 rw_httpd_port(srv));
	req = (struct rw_http_req){.url = url, .timeout_ms = 2000, .connect_timeout_ms = 1000};

	/* Warm up: the first request opens the connection. */
	total = 1;
	start_one();
	while (!finished)
		uv_run(&loop, UV_RUN_ONCE);
	total = argc > 1 ? atol(argv[1]) : 20000;
	done_n = 0;
	finished = 0;

	double c0 = cpu_us(), w0 = wall_s();
	start_one();
	while (!finished)
		uv_run(&loop, UV_RUN_ONCE);
	double c1 = cpu_us(), w1 = wall_s();

	printf("requests %ld, failed %ld, new connections %lu (incl. warm-up), server conns %lu\n",
	       total, bad, rw_http_connects(cli), rw_httpd_connections(srv));
	printf("cpu %.1f us/request (client+server), wall %.1f us/request, cpu share %.2f%%\n",
	       (c1 - c0) / (double)total, (w1 - w0) * 1e6 / (double)total,
	       100.0 * (c1 - c0) / 1e6 / (w1 - w0));
	uv_close((uv_handle_t *)&pace, NULL);
	rw_http_free(cli, NULL, NULL);
	rw_httpd_free(srv, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return bad ? 1 : 0;
}

/*
 * test_agent_classify.c - every answer form Ray gives to the agent's probes,
 * including garbage, mapped to a probe state and reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "respbuf.h"
#include "rwtest.h"

struct ccase {
	enum rw_probe_kind kind;
	int err;
	long status;
	const char *body;
	enum rw_probe_state want;
	const char *reason_has; /* substring of the reason, or NULL */
};

static const char garbage[] = "\x01\xff\x00zz\x1b[31m";

static const struct ccase ccases[] = {
    /* raylet: dashboard agent 52365 /api/local_raylet_healthz */
    {RW_KIND_RAYLET, 0, 200, "success", RW_PROBE_OK, "success"},
    {RW_KIND_RAYLET, 0, 200, "success\n", RW_PROBE_OK, "success"},
    {RW_KIND_RAYLET, 0, 503, "Local Raylet failed", RW_PROBE_FAIL, "Local Raylet failed"},
    {RW_KIND_RAYLET, 0, 503, "Health check failed due to: RpcError INTERNAL", RW_PROBE_FAIL,
     "Health check failed due to"},
    {RW_KIND_RAYLET, -ECONNREFUSED, 0, NULL, RW_PROBE_REFUSED, "refused"},
    {RW_KIND_RAYLET, -ETIMEDOUT, 0, NULL, RW_PROBE_TIMEOUT, "timeout"},
    {RW_KIND_RAYLET, -EMSGSIZE, 0, NULL, RW_PROBE_ERROR, "larger"},
    {RW_KIND_RAYLET, -EPROTO, 0, NULL, RW_PROBE_ERROR, "transport"},
    {RW_KIND_RAYLET, 0, 200, "raylet: success\ngcs: success", RW_PROBE_ERROR, "unexpected"},
    {RW_KIND_RAYLET, 0, 200, "", RW_PROBE_ERROR, "unexpected answer 200"},
    {RW_KIND_RAYLET, 0, 404, "404: Not Found", RW_PROBE_ERROR, "404"},
    {RW_KIND_RAYLET, 0, 500, garbage, RW_PROBE_ERROR, "500"},
    {RW_KIND_RAYLET, 0, 200, "successful", RW_PROBE_ERROR, NULL},
    /* GCS: dashboard head 8265 /api/gcs_healthz */
    {RW_KIND_GCS, 0, 200, "success", RW_PROBE_OK, "success"},
    {RW_KIND_GCS, 0, 503, "503: Health check failed: GCS unavailable", RW_PROBE_FAIL,
     "Health check failed"},
    {RW_KIND_GCS, 0, 503, "", RW_PROBE_FAIL, "503"},
    {RW_KIND_GCS, -ETIMEDOUT, 0, NULL, RW_PROBE_TIMEOUT, NULL},
    {RW_KIND_GCS, -ECONNREFUSED, 0, NULL, RW_PROBE_REFUSED, "dashboard"},
    {RW_KIND_GCS, 0, 502, "Bad gateway", RW_PROBE_ERROR, "502"},
    /* serve proxy 8000 /-/healthz */
    {RW_KIND_PROXY, 0, 200, "success", RW_PROBE_OK, "success"},
    {RW_KIND_PROXY, 0, 503, "This node is being drained.", RW_PROBE_DRAINING, "drained"},
    {RW_KIND_PROXY, 0, 503, "Route table is not populated yet.", RW_PROBE_STARTING, "Route table"},
    {RW_KIND_PROXY, 0, 503, "No replicas are available yet.", RW_PROBE_STARTING, "No replicas"},
    {RW_KIND_PROXY, -ECONNREFUSED, 0, NULL, RW_PROBE_ABSENT, "no serve proxy"},
    {RW_KIND_PROXY, -ETIMEDOUT, 0, NULL, RW_PROBE_TIMEOUT, NULL},
    {RW_KIND_PROXY, 0, 503, "Something else", RW_PROBE_FAIL, "Something else"},
    {RW_KIND_PROXY, 0, 404,
     "Path '/-/healthz' not found. Ping http://.../-/routes for available routes.", RW_PROBE_ERROR,
     "404"},
    {RW_KIND_PROXY, 0, 200, "{\"/fruit\":\"fruit_app\"}", RW_PROBE_ERROR, "unexpected"},
    {RW_KIND_PROXY, 0, 200, garbage, RW_PROBE_ERROR, NULL},
    {RW_KIND_PROXY, -EMSGSIZE, 0, NULL, RW_PROBE_ERROR, "larger"},
    /* serve applications API */
    {RW_KIND_SERVE_API, 0, 200, "{}", RW_PROBE_OK, NULL},
    {RW_KIND_SERVE_API, 0, 503,
     "Failed to get a response from the controller. The GCS may be down, please retry later: x",
     RW_PROBE_FAIL, "GCS may be down"},
    {RW_KIND_SERVE_API, 0, 501, "Serve dependencies are not installed.", RW_PROBE_ERROR, "501"},
    {RW_KIND_SERVE_API, -ECONNREFUSED, 0, NULL, RW_PROBE_REFUSED, NULL},
    {RW_KIND_SERVE_API, -ELIBACC, 0, NULL, RW_PROBE_ERROR, "libcurl could not be loaded"},
};

static void
test_classify_table(void)
{
	for (size_t i = 0; i < sizeof(ccases) / sizeof(ccases[0]); i++) {
		const struct ccase *c = &ccases[i];
		struct rw_http_outcome o = {c->err, c->status, c->body, 0};
		char reason[RW_REASON_MAX];
		if (c->body)
			o.body_len = c->body == garbage ? sizeof(garbage) - 1 : strlen(c->body);
		enum rw_probe_state st = rw_classify(c->kind, &o, reason, sizeof(reason));
		if (st != c->want || (c->reason_has && !strstr(reason, c->reason_has))) {
			fprintf(stderr, "  case %zu (%s %ld): got %s \"%s\", want %s ~\"%s\"\n", i,
				rw_probe_kind_name(c->kind), c->status, rw_probe_state_name(st),
				reason, rw_probe_state_name(c->want),
				c->reason_has ? c->reason_has : "");
			rwt_failed = 1;
		}
		for (const char *p = reason; *p; p++)
			CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	}
}

static void
test_snippet_bounded(void)
{
	char big[5000], out[100];
	memset(big, 'A', sizeof(big));
	rw_snippet(big, sizeof(big), 80, out, sizeof(out));
	CHECK_EQ_INT(strlen(out), 83);
	rw_snippet("  a\nb\t ", 7, 80, out, sizeof(out));
	CHECK_EQ_STR(out, "a b");
	rw_snippet(NULL, 10, 80, out, sizeof(out));
	CHECK_EQ_STR(out, "");
}

static char *
slurp(const char *name, size_t *len)
{
	char dir[1024], path[1200];
	if (rwt_corpus("ray-api", dir, sizeof(dir)) != 0)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

/* A Serve message too long for a report keeps its first line and its end (the exception). */
static void
test_serve_long_message(void)
{
	static char body[8192];
	char pad[3001], err[200];
	struct rw_serve_status st;
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = 0;
	int n = snprintf(body, sizeof(body),
			 "{\"applications\":{\"a\":{\"status\":\"DEPLOY_FAILED\",\"message\":"
			 "\"Deploying app 'a' failed with exception:\\nTraceback\\n%s\\n"
			 "ModuleNotFoundError: No module named '\\u00e9t\u00e9'\\n\"}}}",
			 pad);
	CHECK(n > 0 && (size_t)n < sizeof(body));
	CHECK_EQ_INT(rw_serve_status_parse(body, (size_t)n, &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(st.napps, 1);
	const char *m = st.apps[0].message;
	CHECK(strlen(m) == RW_MSG_MAX - 1 || strlen(m) == RW_MSG_MAX - 2);
	CHECK(strncmp(m, "Deploying app 'a' failed with exception:\n...\nxxx", 48) == 0);
	CHECK(strstr(m, "ModuleNotFoundError: No module named '\u00e9t\u00e9'\n") != NULL);
	rw_serve_status_fini(&st);
}

static void
test_serve_fruit_math(void)
{
	size_t len;
	char *body = slurp("serve-applications-fruit-math.json", &len);
	if (!body) {
		printf("  (corpus not found, skipped)\n");
		return;
	}
	struct rw_serve_status st;
	char err[200];
	CHECK_EQ_INT(rw_serve_status_parse(body, len, &st, err, sizeof(err)), 0);
	CHECK_EQ_STR(st.proxy_location, "EveryNode");
	CHECK_EQ_INT(st.napps, 2);
	int found = 0;
	for (int i = 0; i < st.napps; i++) {
		if (strcmp(st.apps[i].name, "fruit_app") == 0) {
			found = 1;
			CHECK_EQ_STR(st.apps[i].status, "RUNNING");
			CHECK_EQ_STR(st.apps[i].route_prefix, "/fruit");
			CHECK(st.apps[i].ndeps >= 2);
			for (int d = 0; d < st.apps[i].ndeps; d++)
				if (strcmp(st.apps[i].deps[d].name, "MangoStand") == 0) {
					CHECK_EQ_INT(st.apps[i].deps[d].replicas_running, 2);
					CHECK_EQ_INT(st.apps[i].deps[d].replicas_target, 2);
				}
		}
	}
	CHECK(found);
	CHECK_EQ_INT(st.nnodes, 2);
	int replicas = 0;
	for (int n = 0; n < st.nnodes; n++) {
		CHECK_EQ_STR(st.nodes[n].proxy_status, "HEALTHY");
		replicas += st.nodes[n].replicas;
	}
	CHECK(replicas > 0);
	/* The parsed summary must travel in a report the wire decoder accepts. */
	struct rw_report rpt, back;
	struct rw_buf enc;
	memset(&rpt, 0, sizeof(rpt));
	snprintf(rpt.ns, sizeof(rpt.ns), "ns");
	snprintf(rpt.pod, sizeof(rpt.pod), "p");
	snprintf(rpt.node_type, sizeof(rpt.node_type), "head");
	rpt.has_serve = 1;
	rpt.napps = st.napps;
	rpt.apps = st.apps;
	rpt.nnodes = st.nnodes;
	rpt.nodes = st.nodes;
	rw_buf_init(&enc, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_report_encode(&rpt, &enc), 0);
	CHECK_EQ_INT(rw_report_decode(enc.data, enc.len, &back, err, sizeof(err)), 0);
	CHECK_EQ_INT(back.napps, 2);
	CHECK_EQ_INT(back.nnodes, 2);
	rw_report_fini(&back);
	rw_buf_fini(&enc);
	uint64_t d1 = st.digest;
	rw_serve_status_fini(&st);
	CHECK_EQ_INT(rw_serve_status_parse(body, len, &st, err, sizeof(err)), 0);
	CHECK(st.digest == d1);
	rw_serve_status_fini(&st);
	free(body);
}

static void
test_serve_simple_app(void)
{
	size_t len;
	char *body = slurp("serve-applications-simple-app.json", &len);
	if (!body)
		return;
	struct rw_serve_status st;
	char err[200];
	CHECK_EQ_INT(rw_serve_status_parse(body, len, &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(st.napps, 1);
	/* head + the worker with the replica have proxies; the other worker has none. */
	int proxies = 0;
	for (int n = 0; n < st.nnodes; n++)
		proxies += st.nodes[n].proxy_status[0] != 0;
	CHECK_EQ_INT(proxies, 2);
	rw_serve_status_fini(&st);
	free(body);
}

static void
test_serve_empty_and_bad(void)
{
	const char *empty =
	    "{\"deploy_mode\": \"MULTI_APP\", \"controller_info\": {}, \"proxies\": "
	    "{}, \"applications\": {}, \"target_capacity\": null}";
	struct rw_serve_status st;
	char err[200];
	CHECK_EQ_INT(rw_serve_status_parse(empty, strlen(empty), &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(st.napps, 0);
	CHECK_EQ_INT(st.nnodes, 0);
	uint64_t d = st.digest;
	rw_serve_status_fini(&st);

	static const char *bad[] = {
	    "",
	    "{",
	    "[1,2]",
	    "null",
	    "{\"applications\": []}",
	    "{\"applications\": {\"a\": 5}}",
	    "{\"applications\": {\"a\": {\"deployments\": 3}}}",
	    "{\"applications\": {\"a\": {\"deployments\": {\"d\": {\"replicas\": {}}}}}}",
	    "{\"a\":1}{\"b\":2}",
	    "\xff\xfe"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rv = rw_serve_status_parse(bad[i], strlen(bad[i]), &st, err, sizeof(err));
		if (rv == 0) {
			fprintf(stderr, "  bad[%zu] accepted\n", i);
			rwt_failed = 1;
			rw_serve_status_fini(&st);
		}
		CHECK(st.apps == NULL && st.nodes == NULL);
	}

	/* A change in a replica count changes the digest. */
	const char *a = "{\"applications\":{\"x\":{\"status\":\"RUNNING\",\"deployments\":{\"d\":"
			"{\"status\":\"HEALTHY\",\"replicas\":[{\"node_id\":\"n1\",\"node_ip\":\"1."
			"2.3.4\",\"state\":\"RUNNING\"}]}}}}}";
	const char *b = "{\"applications\":{\"x\":{\"status\":\"RUNNING\",\"deployments\":{\"d\":"
			"{\"status\":\"HEALTHY\",\"replicas\":[{\"node_id\":\"n1\",\"node_ip\":\"1."
			"2.3.4\",\"state\":\"RUNNING\"},{\"node_id\":\"n2\",\"state\":\"STARTING\"}"
			"]}}}}}";
	CHECK_EQ_INT(rw_serve_status_parse(a, strlen(a), &st, err, sizeof(err)), 0);
	uint64_t da = st.digest;
	CHECK(da != d);
	CHECK_EQ_INT(st.nnodes, 1);
	CHECK_EQ_INT(st.nodes[0].replicas, 1);
	rw_serve_status_fini(&st);
	CHECK_EQ_INT(rw_serve_status_parse(b, strlen(b), &st, err, sizeof(err)), 0);
	CHECK(st.digest != da);
	CHECK_EQ_INT(st.nnodes, 2);
	CHECK_EQ_INT(st.apps[0].deps[0].replicas_running, 1);
	CHECK_EQ_INT(st.apps[0].deps[0].replicas_target, 0); /* unknown */
	rw_serve_status_fini(&st);
}

static void
test_serve_too_many_apps(void)
{
	struct rw_buf b;
	rw_buf_init(&b, 1 << 20);
	rw_buf_puts(&b, "{\"applications\":{");
	for (int i = 0; i < RW_MAX_APPS + 1; i++)
		rw_buf_printf(&b, "%s\"a%d\":{\"status\":\"RUNNING\"}", i ? "," : "", i);
	rw_buf_puts(&b, "}}");
	struct rw_serve_status st;
	char err[200];
	CHECK_EQ_INT(rw_serve_status_parse(b.data, b.len, &st, err, sizeof(err)), -EMSGSIZE);
	rw_buf_fini(&b);
}

static void
test_jobs(void)
{
	struct rw_job_outcome jo;
	char reason[RW_MSG_MAX];
	size_t len;
	char *body = slurp("job-details-running.json", &len);
	if (body) {
		struct rw_http_outcome o = {0, 200, body, len};
		CHECK_EQ_INT(rw_job_parse(&o, &jo, reason, sizeof(reason)), 0);
		CHECK_EQ_INT(jo.found, 1);
		CHECK_EQ_STR(jo.status, "RUNNING");
		CHECK_EQ_STR(jo.message, "Job is currently running.");
		CHECK_EQ_INT(jo.start_time_ms, 1718020000123LL);
		CHECK_EQ_INT(jo.end_time_ms, -1);
		/* null error_type and driver_exit_code: unset */
		CHECK_EQ_STR(jo.error_type, "");
		CHECK_EQ_INT(jo.has_exit_code, 0);
		free(body);
	}
	body = slurp("job-details-failed.json", &len);
	if (body) {
		struct rw_http_outcome o = {0, 200, body, len};
		CHECK_EQ_INT(rw_job_parse(&o, &jo, reason, sizeof(reason)), 0);
		CHECK_EQ_STR(jo.status, "FAILED");
		CHECK_EQ_STR(jo.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
		CHECK_EQ_INT(jo.has_exit_code, 1);
		CHECK_EQ_INT(jo.driver_exit_code, 1);
		CHECK_EQ_INT(jo.end_time_ms, 1718020031002LL);
		CHECK(strstr(jo.message, "No module named 'emojii'") != NULL);
		free(body);
	}
	{
		/* A long message keeps its first line and its end (the exception). */
		struct rw_buf b;
		rw_buf_init(&b, 1 << 20);
		rw_buf_puts(&b,
			    "{\"status\":\"FAILED\",\"message\":\"Job entrypoint command failed "
			    "with exit code 3, last available logs:\\n");
		for (int i = 0; i < 200; i++)
			rw_buf_printf(&b, "noise line %d\\n", i);
		rw_buf_puts(&b, "KeyError: 'x'\\n\",\"error_type\":\"JOB_ENTRYPOINT_COMMAND_ERROR"
				"_WITH_A_NAME_LONGER_THAN_SIXTY_THREE_BYTES_XXXXXXXXXXXX\","
				"\"driver_exit_code\":3}");
		struct rw_http_outcome o = {0, 200, b.data, b.len};
		CHECK_EQ_INT(rw_job_parse(&o, &jo, reason, sizeof(reason)), 0);
		CHECK(strncmp(jo.message, "Job entrypoint command failed", 29) == 0);
		CHECK(strstr(jo.message, "KeyError: 'x'") != NULL);
		CHECK_EQ_INT(strlen(jo.error_type), RW_ERROR_TYPE_MAX - 1);
		CHECK_EQ_INT(jo.driver_exit_code, 3);
		rw_buf_fini(&b);
	}
	struct rw_http_outcome nf = {0, 404, "Job x does not exist", 20};
	CHECK_EQ_INT(rw_job_parse(&nf, &jo, reason, sizeof(reason)), 0);
	CHECK_EQ_INT(jo.found, 0);
	struct rw_http_outcome g = {0, 200, "not json", 8};
	CHECK(rw_job_parse(&g, &jo, reason, sizeof(reason)) < 0);
	struct rw_http_outcome ns = {0, 200, "{\"x\":1}", 7};
	CHECK(rw_job_parse(&ns, &jo, reason, sizeof(reason)) < 0);
	struct rw_http_outcome rf = {-ECONNREFUSED, 0, NULL, 0};
	CHECK_EQ_INT(rw_job_parse(&rf, &jo, reason, sizeof(reason)), -ECONNREFUSED);
	CHECK(rw_job_terminal("SUCCEEDED") && rw_job_terminal("FAILED") &&
	      rw_job_terminal("STOPPED") && !rw_job_terminal("RUNNING") &&
	      !rw_job_terminal("PENDING"));

	const char *dup = "Traceback ... RuntimeError: Request failed with status code 400: "
			  "ValueError: Job with submission_id s1 already exists. Please use a "
			  "different submission_id.";
	struct rw_http_outcome d = {0, 500, dup, strlen(dup)};
	CHECK_EQ_INT(rw_job_submit_result(&d, reason, sizeof(reason)), 1);
	struct rw_http_outcome ok = {0, 200, "{\"job_id\":\"s1\",\"submission_id\":\"s1\"}", 36};
	CHECK_EQ_INT(rw_job_submit_result(&ok, reason, sizeof(reason)), 0);
	const char *na = "No available agent to submit job, please try again later.";
	struct rw_http_outcome e = {0, 500, na, strlen(na)};
	CHECK(rw_job_submit_result(&e, reason, sizeof(reason)) < 0);
	CHECK(strstr(reason, "No available agent") != NULL);
	struct rw_http_outcome bad = {0, 400, "Traceback: unexpected key", 25};
	CHECK(rw_job_submit_result(&bad, reason, sizeof(reason)) < 0);

	struct rw_http_outcome put_ok = {0, 200, "", 0};
	CHECK_EQ_INT(rw_serve_put_result(&put_ok, reason, sizeof(reason)), 0);
	struct rw_http_outcome put_bad = {0, 400, "1 validation error for ServeDeploySchema", 40};
	CHECK(rw_serve_put_result(&put_bad, reason, sizeof(reason)) < 0);
	CHECK(strstr(reason, "validation error") != NULL);
	/* libcurl missing: the action fails with a reason that says so. */
	struct rw_http_outcome nolib = {-ELIBACC, 0, NULL, 0};
	CHECK_EQ_INT(rw_serve_put_result(&nolib, reason, sizeof(reason)), -ELIBACC);
	CHECK(strstr(reason, "libcurl could not be loaded") != NULL);
	CHECK_EQ_INT(rw_job_submit_result(&nolib, reason, sizeof(reason)), -ELIBACC);
	CHECK(strstr(reason, "libcurl could not be loaded") != NULL);
}

struct rcase {
	const char *raw;
	int eof;
	int want; /* 1, 0, -EPROTO */
	long status;
	const char *body;
	int keep;
};

static const struct rcase rcases[] = {
    /* uvicorn (serve proxy) */
    {"HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 03:04:42 GMT\r\nserver: uvicorn\r\n"
     "content-type: text/plain; charset=utf-8\r\ncontent-length: 7\r\n"
     "x-request-id: 0b1\r\n\r\nsuccess",
     0, 1, 200, "success", 1},
    {"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 27\r\n\r\nThis node is being drained.", 0,
     1, 503, "This node is being drained.", 1},
    /* aiohttp (dashboard) */
    {"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 7\r\n"
     "Server: Python/3.11 aiohttp/3.9.5\r\n\r\nsuccess",
     0, 1, 200, "success", 1},
    /* incomplete: headers, then body */
    {"HTTP/1.1 200 OK\r\nContent-Len", 0, 0, 0, NULL, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsucc", 0, 0, 0, NULL, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsucc", 1, -EPROTO, 0, NULL, 0},
    {"", 1, -EPROTO, 0, NULL, 0},
    {"HTTP/1.", 0, 0, 0, NULL, 0},
    /* connection handling */
    {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 0, 1, 200, "ok", 0},
    {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 1, 200, "ok", 0},
    {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", 0, 1, 200, "ok",
     1},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", 0, 1, 200, "ok", 0},
    /* no length: until the peer closes */
    {"HTTP/1.1 200 OK\r\n\r\nsuccess", 0, 0, 0, NULL, 0},
    {"HTTP/1.1 200 OK\r\n\r\nsuccess", 1, 1, 200, "success", 0},
    /* chunked, with an extension and a trailer */
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsuc\r\n4;x=y\r\ncess\r\n0\r\n\r\n",
     0, 1, 200, "success", 1},
    {"HTTP/1.1 503 X\r\ntransfer-encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n", 0, 1,
     503, "hello", 1},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsuc\r\n", 0, 0, 0, NULL, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsuc\r\n", 1, -EPROTO, 0, NULL, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nsuc\r\n0\r\n\r\n", 0, -EPROTO, 0,
     NULL, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsucXX0\r\n\r\n", 0, -EPROTO, 0,
     NULL, 0},
    {"HTTP/1.1 204 No Content\r\n\r\n", 0, 1, 204, "", 1},
    /* garbage */
    {"SSH-2.0-OpenSSH_9.2\r\n", 0, -EPROTO, 0, NULL, 0},
    {"HTTP/1.1 2x0 OK\r\n\r\n", 0, -EPROTO, 0, NULL, 0},
    {"HTTP/1.1 100 Continue\r\n\r\n", 0, -EPROTO, 0, NULL, 0},
    {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 0, -EPROTO, 0, NULL, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nok", 0, -EPROTO, 0, NULL, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nok", 0, -EPROTO, 0, NULL, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 0, -EPROTO, 0, NULL, 0},
};

static void
test_health_resp_parse(void)
{
	for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		const struct rcase *c = &rcases[i];
		char buf[512];
		size_t n = strlen(c->raw);
		memcpy(buf, c->raw, n + 1);
		long st = -1;
		const char *body = NULL;
		size_t blen = 0;
		int keep = -1;
		int rv = rw_health_resp_parse(buf, n, c->eof, &st, &body, &blen, &keep);
		int ok = rv == c->want;
		if (ok && rv == 1)
			ok = st == c->status && blen == strlen(c->body) &&
			     memcmp(body, c->body, blen) == 0 && keep == c->keep;
		if (!ok) {
			fprintf(stderr, "  case %zu: rv %d status %ld body \"%.*s\" keep %d\n", i,
				rv, st, body ? (int)blen : 0, body ? body : "", keep);
			rwt_failed = 1;
		}
	}
}

/* The probe re-parses its buffer after each read: every split gives one result. */
static void
test_health_resp_split(void)
{
	static const char *const answers[] = {
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n3\r\nsuc\r\n4;x=y\r\ncess\r\n0\r\n"
	    "\r\n",
	    "HTTP/1.1 503 X\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n2\r\n, "
	    "\r\n5\r\nworld\r\n"
	    "0\r\nT: 1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsuccess",
	};
	static const char *const bodies[] = {"success", "hello, world", "success"};
	static const long statuses[] = {200, 503, 200};
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		size_t n = strlen(answers[i]);
		/* mode 0: one split at k; mode 1: one byte per read. */
		for (int mode = 0; mode < 2; mode++) {
			for (size_t k = 1; k < n; k++) {
				char buf[512];
				memcpy(buf, answers[i], n + 1);
				long st = -1;
				const char *body = NULL;
				size_t blen = 0;
				int keep = -1, early = 0;
				for (size_t j = mode ? 1 : k; j < n; j += mode ? 1 : n)
					if (rw_health_resp_parse(buf, j, 0, &st, &body, &blen,
								 &keep) != 0)
						early = 1;
				int rv = rw_health_resp_parse(buf, n, 0, &st, &body, &blen, &keep);
				int ok = !early && rv == 1 && st == statuses[i] &&
					 blen == strlen(bodies[i]) &&
					 memcmp(body, bodies[i], blen) == 0 && keep == 1;
				if (!ok) {
					fprintf(stderr, "  answer %zu mode %d split %zu: rv %d\n",
						i, mode, k, rv);
					rwt_failed = 1;
				}
				if (mode)
					break; /* byte-wise feeding covers every split at once */
			}
		}
	}
}

/* Feed text in reads of step bytes into a growing buffer; the first outcome. */
static int
respbuf_feed(struct rw_respbuf *b, const char *text, size_t n, size_t step, size_t max_body,
	     size_t *blen)
{
	long st;
	const char *body;
	int keep;
	for (size_t off = 0; off < n;) {
		size_t k = n - off < step ? n - off : step;
		if (rw_respbuf_reserve(b, k) != 0)
			return -ENOMEM;
		if (rw_respbuf_room(b) == 0)
			return -EMSGSIZE;
		if (k > rw_respbuf_room(b))
			k = rw_respbuf_room(b);
		memcpy(b->p + b->len, text + off, k);
		b->len += k;
		off += k;
		int rv = rw_respbuf_answer(b, 0, max_body, &st, &body, blen, &keep);
		if (rv != 0)
			return rv;
	}
	/* Only the peer's close decided: say so apart from the parse results. */
	return rw_respbuf_answer(b, 1, max_body, &st, &body, blen, &keep) == 1 ? 2 : -EPIPE;
}

/* The answer buffer grows from its inline area up to its maximum, no further. */
static void
test_respbuf_bounds(void)
{
	char big[4096], head[4096];
	memset(big, 'x', sizeof(big));
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n");
	memcpy(head + hl, big, 3000);
	size_t answer_len = (size_t)hl + 3000;
	static char nohdr[80 * 1024];
	size_t nl = (size_t)snprintf(nohdr, sizeof(nohdr), "HTTP/1.1 200 OK\r\n");
	while (nl + 6 < sizeof(nohdr)) {
		memcpy(nohdr + nl, "X: y\r\n", 6);
		nl += 6;
	}
	const struct {
		const char *text;
		size_t len, max, max_body;
		int rv;
		size_t blen;
	} t[] = {
	    {head, answer_len, 8192, 4096, 1, 3000},	     /* grows past inline, fits */
	    {head, answer_len, 1024, 4096, -EMSGSIZE, 0},    /* full at its maximum */
	    {head, answer_len, 8192, 2999, -EMSGSIZE, 0},    /* body over the cap */
	    {nohdr, nl, 128 * 1024, 128 * 1024, -EPROTO, 0}, /* headers never end */
	    {head, answer_len - 1, 8192, 4096, -EPIPE, 0},   /* cut short by a close */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		for (size_t step = 1; step <= 4096; step *= 8) {
			char inl[17];
			struct rw_respbuf b;
			size_t blen = 0;
			rw_respbuf_init(&b, inl, 16, t[i].max);
			int rv = respbuf_feed(&b, t[i].text, t[i].len, step, t[i].max_body, &blen);
			if (rv != t[i].rv || (rv == 1 && blen != t[i].blen) || b.cap > t[i].max) {
				fprintf(stderr, "  case %zu step %zu: rv %d blen %zu cap %zu\n", i,
					step, rv, blen, b.cap);
				rwt_failed = 1;
			}
			CHECK(b.p != inl);
			/* A buffer grown past keep goes back to the inline area. */
			rw_respbuf_reset(&b, 64);
			CHECK(b.p == inl && b.cap == 16 && b.len == 0);
			rw_respbuf_fini(&b);
		}
	}
}

static const struct rwt_case cases[] = {
    {"classify table", test_classify_table},
    {"snippet bounded", test_snippet_bounded},
    {"health answer parse", test_health_resp_parse},
    {"health answer split at every byte", test_health_resp_split},
    {"answer buffer bounded, grows and shrinks", test_respbuf_bounds},
    {"serve fruit+math corpus", test_serve_fruit_math},
    {"serve long message: first line and end", test_serve_long_message},
    {"serve simple app corpus", test_serve_simple_app},
    {"serve empty and malformed", test_serve_empty_and_bad},
    {"serve too many apps", test_serve_too_many_apps},
    {"jobs", test_jobs},
    {NULL, NULL},
};

int
main(void)
{
	return rwt_run(cases);
}

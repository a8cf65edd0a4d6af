/*
 * fuzz_rayjob.c - any bytes as a RayJob: parse, validate, and every builder
 * on what was parsed (the RayCluster and its `<rayjob>-head-svc`, the
 * submitter Job, the submit command, the HTTPMode submission). The bytes are also fed as
 * runtimeEnvYAML and as entrypointResources of a minimal RayJob. Nothing may crash or leak; every
 * object built must be valid JSON; a RayJob that passes validation must
 * build in every mode it uses, and its submission must go through the wire.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_service.h"
#include "rj_model.h"
#include "rw/json.h"
#include "rw/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_json(const struct rw_buf *b)
{
	struct rw_json j;
	if (rw_json_parse(&j, b->data, b->len, 1 << 22, NULL, 0) != 0)
		abort();
	rw_json_fini(&j);
}

static void
exercise(const struct rw_rayjob *j)
{
	struct rw_rayjob_verr e;
	struct rw_reply r;
	struct rw_buf b;
	char err[256];
	int valid = rw_rayjob_validate(j, &e) == 0;
	int rv;

	rw_buf_init(&b, 1 << 24);
	rv = rw_rayjob_build_cluster(j, "job-x7k2p", "job-q4z9s", &b);
	if (rv == 0) {
		struct rw_raycluster *c = NULL;
		struct rw_raycluster_opts o;
		check_json(&b);
		/* The head Service of that cluster: any cluster with a head group has one. */
		rw_raycluster_opts_default(&o);
		if (rw_raycluster_parse(b.data, b.len, &c, NULL, 0) == 0) {
			rw_buf_reset(&b);
			rv = rw_rayjob_build_head_service(j, c, &o, &b);
			if (rv == 0)
				check_json(&b);
			else if (c->head && rv != -ENAMETOOLONG)
				abort();
			rw_raycluster_free(c);
		}
	} else if (valid && j->cluster_spec && !j->selector_mode && rv != -EINVAL) {
		abort();
	}
	rw_buf_reset(&b);
	rv = rw_rayjob_build_submitter(j, "job-q4z9s", "job-x7k2p-head-svc.ns.svc:8265", NULL, &b);
	if (rv == 0)
		check_json(&b);
	else if (valid && j->mode == RW_RAYJOB_K8SJOB)
		abort();
	rw_buf_reset(&b);
	rv = rw_rayjob_submit_command(j, "job-x7k2p-head-svc.ns.svc:8265", "job-q4z9s", &b);
	if (rv != 0 && valid && (j->mode == RW_RAYJOB_K8SJOB || j->mode == RW_RAYJOB_SIDECAR))
		abort();
	rw_buf_fini(&b);
	memset(&r, 0, sizeof(r));
	if (rw_rayjob_http_submission(j, "job-q4z9s", &r.submit, err, sizeof(err)) == 0) {
		struct rw_reply back;
		r.has_submit = 1;
		rw_buf_init(&b, RW_WIRE_MAX_MSG);
		if (rw_reply_encode(&r, &b) == 0) {
			if (rw_reply_decode(b.data, b.len, &back, err, sizeof(err)) != 0)
				abort();
			if (!rw_reply_equal(&r, &back))
				abort();
			rw_reply_fini(&back);
		}
		rw_buf_fini(&b);
		rw_reply_fini(&r);
	}
}

/* The bytes as one string member of a minimal valid RayJob. */
static void
as_member(const char *key, const uint8_t *data, size_t size)
{
	struct rw_buf b;
	struct rw_rayjob *j = NULL;
	if (size > 1u << 20 || memchr(data, 0, size))
		return;
	rw_buf_init(&b, 6 * size + 512);
	if (rw_buf_printf(
		&b,
		"{\"metadata\":{\"name\":\"job\"},\"spec\":{\"entrypoint\":\"python x.py\","
		"\"clusterSelector\":{\"ray.io/cluster\":\"c\"},\"%s\":",
		key) == 0 &&
	    rw_json_quote(&b, (const char *)data, size) == 0 && rw_buf_puts(&b, "}}") == 0 &&
	    rw_rayjob_parse(b.data, b.len, &j, NULL, 0) == 0)
		exercise(j);
	rw_rayjob_free(j);
	rw_buf_fini(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_rayjob *j = NULL;
	as_member("runtimeEnvYAML", data, size);
	as_member("entrypointResources", data, size);
	if (rw_rayjob_parse((const char *)data, size, &j, NULL, 0) == 0)
		exercise(j);
	rw_rayjob_free(j);
	return 0;
}

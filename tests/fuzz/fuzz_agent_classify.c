/*
 * fuzz_agent_classify.c - the agent's interpretation of Ray's answers: the
 * serve applications parser, the health classifiers and the job parsers,
 * fed arbitrary bodies. The first byte picks the HTTP status.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "classify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 503, 404, 500, 400, 0};
	char reason[RW_MSG_MAX];
	long status = size ? statuses[data[0] % 6] : 200;
	const char *body = size ? (const char *)data + 1 : "";
	size_t len = size ? size - 1 : 0;
	struct rw_http_outcome o = {status ? 0 : -ECONNREFUSED, status, body, len};

	for (int k = 0; k < RW_KIND_COUNT; k++) {
		enum rw_probe_state st =
		    rw_classify((enum rw_probe_kind)k, &o, reason, sizeof(reason));
		if (st == RW_PROBE_OK && (o.err || o.status != 200))
			__builtin_trap();
		for (const char *p = reason; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				__builtin_trap();
	}
	struct rw_serve_status st;
	if (rw_serve_status_parse(body, len, &st, reason, sizeof(reason)) == 0) {
		if (st.napps > RW_MAX_APPS || st.nnodes > RW_MAX_NODES)
			__builtin_trap();
		rw_serve_status_fini(&st);
	}
	struct rw_job_outcome jo;
	rw_job_parse(&o, &jo, reason, sizeof(reason));
	rw_job_submit_result(&o, reason, sizeof(reason));
	rw_serve_put_result(&o, reason, sizeof(reason));
	return 0;
}

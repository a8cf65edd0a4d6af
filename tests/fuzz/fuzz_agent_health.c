/*
 * fuzz_agent_health.c - the agent's own parser of health answers
 * (rw_health_resp_parse), fed arbitrary bytes, with and without the peer's
 * close, and at every prefix length of the first 512 bytes (as they arrive
 * in pieces). The body must lie inside the buffer; a decoded chunked body
 * must not be longer than what was received.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
one(const uint8_t *data, size_t size, int eof)
{
	char *buf = malloc(size + 1);
	long status = 0;
	const char *body = NULL;
	size_t blen = 0;
	int keep = 0;
	if (!buf)
		return;
	memcpy(buf, data, size);
	buf[size] = 0;
	int rv = rw_health_resp_parse(buf, size, eof, &status, &body, &blen, &keep);
	if (rv == 1) {
		if (body < buf || body + blen > buf + size || status < 200 || status > 999)
			__builtin_trap();
		if (keep != 0 && keep != 1)
			__builtin_trap();
	} else if (rv != 0 && rv > 0) {
		__builtin_trap();
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	one(data, size, 0);
	one(data, size, 1);
	for (size_t n = 0; n < size && n < 512; n += 7)
		one(data, n, 0);
	return 0;
}

/*
 * fuzz_agent_health.c - the agent's own parser of health answers
 * (rw_health_resp_parse), fed arbitrary bytes, with and without the peer's
 * close, and at every prefix length of the first 512 bytes (as they arrive
 * in pieces). The body must lie inside the buffer; a decoded chunked body
 * must not be longer than what was received. Split invariance: the probe
 * re-parses its growing buffer after every read, so feeding the bytes one
 * read at a time into one buffer must leave the buffer untouched while the
 * answer is incomplete and end with the same result as parsing that length
 * at once.
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

struct result {
	int rv;
	long status;
	size_t body_off, blen;
	int keep;
	char body[64];
};

static void
parse_into(char *buf, size_t n, struct result *r)
{
	const char *body = NULL;
	memset(r, 0, sizeof(*r));
	r->rv = rw_health_resp_parse(buf, n, 0, &r->status, &body, &r->blen, &r->keep);
	if (r->rv == 1) {
		r->body_off = (size_t)(body - buf);
		memcpy(r->body, body, r->blen < sizeof(r->body) ? r->blen : sizeof(r->body));
	}
}

/* Feed data in reads ending at every byte (then every 64th) into one buffer. */
static void
split_invariant(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *fresh = malloc(size + 1);
	struct result got, want;
	if (!buf || !fresh)
		goto out;
	memcpy(buf, data, size);
	for (size_t n = 1; n <= size; n += n < 2048 ? 1 : 64) {
		parse_into(buf, n, &got);
		if (got.rv == 0) {
			if (memcmp(buf, data, size) != 0)
				__builtin_trap(); /* an incomplete answer was rewritten */
			continue;
		}
		memcpy(fresh, data, size);
		parse_into(fresh, n, &want);
		if (got.rv != want.rv || got.status != want.status || got.blen != want.blen ||
		    got.keep != want.keep || got.body_off != want.body_off ||
		    memcmp(got.body, want.body, sizeof(got.body)) != 0)
			__builtin_trap();
		break;
	}
out:
	free(buf);
	free(fresh);
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
	split_invariant(data, size);
	return 0;
}

/*
 * fuzz_wire.c - libFuzzer target for wire protocol v1.
 *
 * The input is opened as an envelope with the test key (the seeds in
 * corpus/fuzz_wire/ are sealed with it; tests/unit/test_wire.c writes them).
 * Since a mutated input almost never carries a valid MAC, the payload part
 * (or, for inputs that are not envelope-shaped, the whole input) is also fed
 * straight to both payload decoders. Every successful decode must encode
 * again, decode again to the same values, and survive a seal/open cycle.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rw/wire.h"

/* The same test key as tests/unit/test_wire.c. */
#define FUZZ_KEY "raywarden-test-key-0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rw_wire_key key;
static int key_ready;

#define ASSERT(c)                                                                                  \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

/* Seal a payload, open it again and check it comes back unchanged. */
static void
seal_cycle(const char *p, size_t n, uint16_t type)
{
	struct rw_buf b;
	struct rw_wire_hdr h = {0}, o;
	const char *back;
	rw_buf_init(&b, RW_WIRE_MAX_MSG);
	h.type = type;
	h.session = 1;
	h.seq = 2;
	h.ts_ms = 3;
	ASSERT(rw_wire_seal(&key, &h, p, n, &b) == 0);
	ASSERT(rw_wire_open(&key, b.data, b.len, &o, &back) == 0);
	ASSERT(o.len == n && o.type == type && o.seq == 2);
	ASSERT(n == 0 || memcmp(back, p, n) == 0);
	rw_buf_fini(&b);
}

static void
check_report(const char *p, size_t n)
{
	struct rw_report a, b;
	struct rw_buf out;
	char err[256];
	if (rw_report_decode(p, n, &a, err, sizeof(err)) != 0) {
		ASSERT(a.apps == NULL && a.nodes == NULL && a.jobs == NULL);
		ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
		return;
	}
	rw_buf_init(&out, RW_WIRE_MAX_MSG);
	int rv = rw_report_encode(&a, &out);
	/* A decoded report fits again unless it was padded with long escapes. */
	if (rv == 0) {
		ASSERT(rw_report_decode(out.data, out.len, &b, err, sizeof(err)) == 0);
		ASSERT(rw_report_equal(&a, &b));
		rw_report_fini(&b);
		seal_cycle(out.data, out.len, RW_WIRE_REPORT);
	} else {
		ASSERT(rv == -EMSGSIZE && out.len == 0);
	}
	rw_buf_fini(&out);
	rw_report_fini(&a);
}

static void
check_reply(const char *p, size_t n)
{
	struct rw_reply a, b;
	struct rw_buf out;
	char err[256];
	if (rw_reply_decode(p, n, &a, err, sizeof(err)) != 0) {
		ASSERT(a.serve_config == NULL && a.submit.entrypoint == NULL);
		ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
		return;
	}
	rw_buf_init(&out, RW_WIRE_MAX_MSG);
	int rv = rw_reply_encode(&a, &out);
	if (rv == 0) {
		ASSERT(rw_reply_decode(out.data, out.len, &b, err, sizeof(err)) == 0);
		ASSERT(rw_reply_equal(&a, &b));
		rw_reply_fini(&b);
		seal_cycle(out.data, out.len, RW_WIRE_REPLY);
	} else {
		ASSERT(rv == -EMSGSIZE && out.len == 0);
	}
	rw_buf_fini(&out);
	rw_reply_fini(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_wire_hdr h;
	const char *payload = NULL;

	if (!key_ready) {
		ASSERT(rw_wire_key_set(&key, FUZZ_KEY, strlen(FUZZ_KEY)) == 0);
		key_ready = 1;
	}

	int rv = rw_wire_open(&key, data, size, &h, &payload);
	if (rv == 0) {
		ASSERT(payload == (const char *)data + RW_WIRE_HDR_LEN);
		ASSERT(h.len == size - RW_WIRE_HDR_LEN - RW_WIRE_MAC_LEN);
		ASSERT(h.version == RW_WIRE_VERSION && h.key_id == key.id);
		/* The replay guard on the authenticated header. */
		struct rw_wire_replay r = {0};
		ASSERT(rw_wire_replay_check(&r, &h, h.ts_ms, 0) == RW_WIRE_FRESH);
		ASSERT(rw_wire_replay_check(&r, &h, h.ts_ms, 0) == RW_WIRE_RESEND);
		if (h.seq > 0) {
			struct rw_wire_hdr older = h;
			older.seq--;
			ASSERT(rw_wire_replay_check(&r, &older, h.ts_ms, 0) == -EALREADY);
		}
	} else {
		ASSERT(payload == NULL);
		ASSERT(rv == -EMSGSIZE || rv == -EBADMSG || rv == -EPROTONOSUPPORT ||
		       rv == -EKEYREJECTED || rv == -EACCES);
	}

	/* The payload decoders, with or without a valid MAC. */
	const char *p = (const char *)data;
	size_t n = size;
	if (size >= RW_WIRE_HDR_LEN + RW_WIRE_MAC_LEN && memcmp(data, "RWP\x01", 4) == 0) {
		p += RW_WIRE_HDR_LEN;
		n -= RW_WIRE_HDR_LEN + RW_WIRE_MAC_LEN;
	}
	check_report(p, n);
	check_reply(p, n);
	return 0;
}

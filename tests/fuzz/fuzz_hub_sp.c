/*
 * fuzz_hub_sp.c - libFuzzer target for the hub's SP-over-TCP framing (the
 * REP end of nng's REQ/REP protocol that the hub speaks on its loop).
 *
 * The input is a connection's byte stream: the 8-byte header, then frames.
 * It is split at every possible chunk boundary of a fixed size too, as reads
 * deliver it, and the frames found must be the same whole-stream ones: each
 * within the input, its backtrace 4-byte words ending in the request id,
 * never longer than the limit.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "rw/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(c)                                                                                  \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

/* The hub's default recv_max: the largest wire message. */
#define FRAME_MAX RW_WIRE_MAX_MSG

/* Frames of d[0..n) as the hub reads them: returns bytes consumed; *bad on error. */
static size_t
frames(const uint8_t *d, size_t n, int *bad, size_t *count)
{
	size_t pos = 0;
	for (;;) {
		size_t hl = 0, len = 0;
		int rv = rw_hub_sp_frame(d + pos, n - pos, FRAME_MAX, &hl, &len);
		if (rv == 0)
			return pos;
		if (rv < 0) {
			ASSERT(rv == -EMSGSIZE || rv == -EPROTO);
			*bad = 1;
			return pos;
		}
		ASSERT(rv == 1);
		ASSERT(hl >= 4 && hl % 4 == 0 && hl <= 32 && hl <= len);
		ASSERT(len <= FRAME_MAX + 32 && 8 + len <= n - pos);
		ASSERT(d[pos + 8 + hl - 4] & 0x80);
		pos += 8 + len;
		(*count)++;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t whole_count = 0, whole_pos;
	int whole_bad = 0;
	if (size < 8)
		return 0;
	if (!rw_hub_sp_header_ok(data))
		return 0;
	whole_pos = frames(data + 8, size - 8, &whole_bad, &whole_count);

	/* The same stream arriving in chunks of 7 bytes, kept as the hub keeps a partial frame. */
	uint8_t *buf = malloc(size);
	size_t have = 0, got = 0, count = 0, consumed = 0;
	int bad = 0;
	ASSERT(buf);
	for (size_t off = 8; off < size && !bad; off += 7) {
		size_t chunk = size - off < 7 ? size - off : 7;
		memcpy(buf + have, data + off, chunk);
		have += chunk;
		got = frames(buf, have, &bad, &count);
		/* Only after a whole frame: keeps a 1 MiB frame in 7-byte pieces linear. */
		if (got) {
			memmove(buf, buf + got, have - got);
			have -= got;
			consumed += got;
		}
	}
	ASSERT(count == whole_count && bad == whole_bad);
	ASSERT(consumed == whole_pos);
	free(buf);
	return 0;
}

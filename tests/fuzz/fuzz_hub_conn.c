/*
 * fuzz_hub_conn.c - libFuzzer target for the hub's per-connection receive
 * state machine (rw_hub_sp_feed): the SP header, frames cut from any split
 * of the stream, the early peek at each envelope, and the hub's decisions
 * on whole frames (open with the key, decode the report; anything refused
 * ends the connection, as the hub closes it).
 *
 * Input: byte 0 holds the number of split points (low 4 bits), then 2 bytes
 * per split point (big-endian offsets into the stream, taken modulo its
 * length), then the connection's byte stream. The stream is fed whole, at
 * the chosen splits, byte by byte (up to 64 KiB) and in 4093-byte reads:
 * every way must give the same peeks, frames, dropped frames (an unknown
 * key id with its top bit set is dropped, as the hub does right after its
 * start; any other closes), accepted reports and the same
 * end (consumed, or the same error), with the partial buffer never larger
 * than twice what it holds (or 256 bytes) nor than the frame, and every
 * reserved byte released.
 *
 * Seeds (corpus/fuzz_hub_conn/) are real sealed reports of
 * corpus/fuzz_wire/ framed as an agent's REQ socket sends them, written by
 * tests/fuzz/make_hub_conn_corpus.py.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "rw/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The test key of tests/unit/test_wire.c (corpus/fuzz_wire/ is sealed with it). */
#define FUZZ_KEY "raywarden-test-key-0123456789"
#define MAXEV 64

#define ASSERT(c)                                                                                  \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

enum { EV_PEEK = 1, EV_FRAME, EV_ACCEPT, EV_REFUSE };

struct run {
	struct {
		int kind;
		size_t len;
		uint64_t hash;
	} ev[MAXEV];
	int nev, overflow;
	int end;		   /* rw_hub_sp_feed's first non-zero return, or 0 */
	size_t reserved, released; /* through the ops */
	const struct rw_hub_sp_conn *s;
};

static struct rw_wire_key key;
static int key_ready;

static uint64_t
hash(const unsigned char *d, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ d[i]) * 1099511628211ULL;
	return h;
}

static void
note(struct run *r, int kind, const unsigned char *d, size_t n)
{
	if (r->nev == MAXEV) {
		r->overflow++;
		return;
	}
	r->ev[r->nev].kind = kind;
	r->ev[r->nev].len = n;
	r->ev[r->nev].hash = hash(d, n);
	r->nev++;
}

static int
reserve(void *ud, size_t n)
{
	struct run *r = ud;
	r->reserved += n;
	return 0;
}

static void
release(void *ud, size_t n)
{
	struct run *r = ud;
	r->released += n;
}

static int
peek(void *ud, const unsigned char *m, size_t n)
{
	struct run *r = ud;
	ASSERT(n <= 16);
	note(r, EV_PEEK, m, n);
	if (n < 16)
		return 0;
	uint32_t kid = (uint32_t)m[12] << 24 | (uint32_t)m[13] << 16 | (uint32_t)m[14] << 8 | m[15];
	if (memcmp(m, "RWP\x01", 4) == 0 && kid != key.id && (kid & 0x80000000u)) {
		/* As the hub right after its start: the frame is dropped, the connection kept. */
		note(r, EV_REFUSE, m + 12, 4);
		return RW_HUB_SP_SKIP;
	}
	if (memcmp(m, "RWP\x01", 4) != 0 || kid != key.id) {
		note(r, EV_REFUSE, m, 4);
		return -ECONNABORTED;
	}
	return 0;
}

static int
frame(void *ud, const unsigned char *bt, size_t hl, const unsigned char *msg, size_t n)
{
	struct run *r = ud;
	struct rw_wire_hdr h;
	const char *payload;
	ASSERT(hl >= 4 && hl % 4 == 0 && hl <= 32 && (bt[hl - 4] & 0x80));
	note(r, EV_FRAME, msg, n);
	if (rw_wire_open(&key, msg, n, &h, &payload) != 0 || h.type != RW_WIRE_REPORT) {
		note(r, EV_REFUSE, msg, n < 4 ? n : 4);
		return -ECONNABORTED;
	}
	struct rw_report rep;
	char err[200];
	int rv = rw_report_decode(payload, h.len, &rep, err, sizeof(err));
	if (rv == 0) {
		note(r, EV_ACCEPT, (const unsigned char *)rep.pod, strlen(rep.pod));
		rw_report_fini(&rep);
		return 0;
	}
	note(r, EV_REFUSE, msg, 1);
	return -ECONNABORTED;
}

static const struct rw_hub_sp_ops ops = {reserve, release, peek, frame};

/* The buffer holds a partial header or frame, sized to what arrived. */
static void
check_buffer(const struct rw_hub_sp_conn *s)
{
	ASSERT(s->inlen <= s->incap);
	ASSERT((s->inlen == 0) == (s->incap == 0));
	if (s->incap > 256)
		ASSERT(s->incap <= 2 * s->inlen || s->incap == s->inlen);
	if (s->got_hdr && s->inlen >= 8) {
		uint64_t l = 0;
		for (int i = 0; i < 8; i++)
			l = l << 8 | s->in[i];
		ASSERT(l <= s->max + 32 && s->incap <= 8 + l);
	} else {
		ASSERT(s->incap <= 8 || s->got_hdr);
	}
}

/* Feed d[0..n) cut before each offset of cuts[] (sorted, within n). */
static void
feed(struct run *r, const uint8_t *d, size_t n, const size_t *cuts, int ncuts)
{
	struct rw_hub_sp_conn s;
	size_t pos = 0;
	memset(r, 0, sizeof(*r));
	rw_hub_sp_conn_init(&s, RW_WIRE_MAX_MSG);
	for (int i = 0; i <= ncuts && !r->end; i++) {
		size_t to = i < ncuts ? cuts[i] : n;
		if (to < pos)
			continue;
		r->end = rw_hub_sp_feed(&s, d + pos, to - pos, &ops, r);
		pos = to;
		if (!r->end)
			check_buffer(&s);
		ASSERT(r->reserved - r->released == s.incap);
	}
	rw_hub_sp_conn_fini(&s, &ops, r);
	ASSERT(r->reserved == r->released);
}

static void
same(const struct run *a, const struct run *b)
{
	ASSERT(a->nev == b->nev && a->overflow == b->overflow && a->end == b->end);
	for (int i = 0; i < a->nev; i++)
		ASSERT(a->ev[i].kind == b->ev[i].kind && a->ev[i].len == b->ev[i].len &&
		       a->ev[i].hash == b->ev[i].hash);
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, other;
	size_t cuts[16];
	if (!key_ready) {
		ASSERT(rw_wire_key_set(&key, FUZZ_KEY, strlen(FUZZ_KEY)) == 0);
		key_ready = 1;
	}
	if (size < 1)
		return 0;
	int ncuts = data[0] & 15;
	if (size < 1 + 2 * (size_t)ncuts)
		return 0;
	const uint8_t *d = data + 1 + 2 * ncuts;
	size_t n = size - 1 - 2 * (size_t)ncuts;
	for (int i = 0; i < ncuts; i++)
		cuts[i] = n ? ((size_t)data[1 + 2 * i] << 8 | data[2 + 2 * i]) % n : 0;
	qsort(cuts, (size_t)ncuts, sizeof(cuts[0]), cmp_size);

	feed(&whole, d, n, NULL, 0);
	feed(&other, d, n, cuts, ncuts);
	same(&whole, &other);

	/* Byte by byte (bounded: one feed per byte), and in odd-sized reads. */
	size_t lim = n < 65536 ? n : 65536;
	size_t *every = calloc(lim + 1, sizeof(*every));
	ASSERT(every);
	for (size_t i = 0; i < lim; i++)
		every[i] = i + 1;
	if (lim == n) {
		feed(&other, d, n, every, (int)lim);
		same(&whole, &other);
	}
	size_t k = 0;
	for (size_t off = 4093; off < n && k < lim; off += 4093)
		every[k++] = off;
	feed(&other, d, n, every, (int)k);
	same(&whole, &other);
	free(every);
	return 0;
}

/*
 * fuzz_agent_respbuf.c - the agent's growing answer buffer (respbuf.h) and
 * the answer decision on it (rw_respbuf_answer), as probe.c drives them:
 * reserve room, copy one read in, parse what has arrived, stop at the first
 * outcome. The first input byte picks the inline size, the maximum and the
 * body cap; the rest is the peer's bytes.
 *
 * Split at every byte (every 61st past 2 KiB) with the rest in one read,
 * and one byte per read, the outcome must equal that of a buffer that never
 * grows fed the same number of bytes at once; while an answer is incomplete
 * the received bytes are untouched; the buffer never exceeds its maximum; a
 * body lies inside the buffer, is NUL-terminated and within the cap; and
 * after a reset the buffer is back inline when it had grown past keep.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "respbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	int rv;
	size_t n; /* bytes received when it ended */
	long status;
	size_t body_off, blen;
	int keep;
	int eof;
};

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

/* Receive data: first bytes in one read, then reads of step bytes; eof at the end. */
static void
feed(struct rw_respbuf *b, const uint8_t *data, size_t size, size_t first, size_t step,
     size_t max_body, struct outcome *o)
{
	size_t off = 0;
	const char *body = NULL;
	memset(o, 0, sizeof(*o));
	for (;;) {
		if (off == size) {
			o->eof = 1;
			o->rv = rw_respbuf_answer(b, 1, max_body, &o->status, &body, &o->blen,
						  &o->keep);
			break;
		}
		size_t want = off == 0 ? first : step;
		if (want > size - off)
			want = size - off;
		CHECK(rw_respbuf_reserve(b, want) == 0);
		CHECK(b->cap <= b->max && b->len <= b->cap);
		size_t room = rw_respbuf_room(b);
		if (room == 0) {
			o->rv = -EMSGSIZE; /* what libuv's UV_ENOBUFS becomes */
			break;
		}
		if (want > room)
			want = room;
		memcpy(b->p + b->len, data + off, want);
		b->len += want;
		off += want;
		o->rv = rw_respbuf_answer(b, 0, max_body, &o->status, &body, &o->blen, &o->keep);
		if (o->rv != 0)
			break;
		CHECK(memcmp(b->p, data, b->len) == 0); /* incomplete: untouched */
	}
	o->n = b->len;
	if (o->rv == 1) {
		CHECK(body >= b->p && body + o->blen <= b->p + b->len);
		CHECK(body[o->blen] == '\0' && o->blen <= max_body);
		CHECK(o->status >= 200 && o->status <= 999 && (o->keep == 0 || o->keep == 1));
		o->body_off = (size_t)(body - b->p);
	} else {
		CHECK(o->rv == 0 || o->rv == -EPROTO || o->rv == -EMSGSIZE);
		CHECK(o->rv != 0);
	}
}

static int
same(const struct outcome *x, const char *xb, const struct outcome *y, const char *yb)
{
	if (x->rv != y->rv || x->n != y->n)
		return 0;
	if (x->rv != 1)
		return 1;
	return x->status == y->status && x->blen == y->blen && x->keep == y->keep &&
	       x->body_off == y->body_off &&
	       memcmp(xb + x->body_off, yb + y->body_off, x->blen) == 0;
}

struct params {
	char *inl, *ref;
	size_t inl_cap, max, max_body;
};

/* One delivery: the first bytes, then reads of step; checked against the reference. */
static void
run(const struct params *pm, const uint8_t *data, size_t size, size_t first, size_t step, int again)
{
	struct rw_respbuf b, r;
	struct outcome got, want;
	rw_respbuf_init(&b, pm->inl, pm->inl_cap, pm->max);
	feed(&b, data, size, first, step, pm->max_body, &got);
	/* The reference: room for everything from the start, one read of the
	 * same bytes (and the close, if that is what decided). */
	rw_respbuf_init(&r, pm->ref, pm->max, pm->max);
	feed(&r, data, got.eof ? got.n : size, got.n, 1, pm->max_body, &want);
	CHECK(same(&got, b.p, &want, r.p));
	if (again) {
		/* A buffer grown past keep goes back inline; the next answer is the same. */
		rw_respbuf_reset(&b, 2 * pm->inl_cap);
		CHECK(b.len == 0 && (b.p == pm->inl || b.cap <= 2 * pm->inl_cap));
		feed(&b, data, size, first, step, pm->max_body, &got);
		CHECK(same(&got, b.p, &want, r.p));
	}
	rw_respbuf_fini(&b);
	CHECK(b.p == pm->inl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 8192 + 1)
		return 0;
	uint8_t sel = data[0];
	data++;
	size--;
	struct params pm;
	pm.max = (size_t)64 << (sel & 7);	    /* 64 .. 8192 */
	pm.inl_cap = (size_t)8 << ((sel >> 3) & 3); /* 8 .. 64 */
	pm.max_body = pm.max - (size_t)((sel >> 5) & 7) * 8;
	pm.inl = malloc(pm.inl_cap + 1);
	pm.ref = malloc(pm.max + 1);
	if (!pm.inl || !pm.ref)
		goto out;
	/* Split at every byte (past 2 KiB every 61st, to stay fast enough to
	 * fuzz), the rest in one read (as room allows). */
	for (size_t s = 1; s < size && s <= pm.max; s += s < 2048 ? 1 : 61)
		run(&pm, data, size, s, size, 0);
	/* One byte per read, and again after a reset. */
	run(&pm, data, size, 1, 1, 1);
out:
	free(pm.inl);
	free(pm.ref);
	return 0;
}

/*
 * fuzz_agent_jobs.c - the pure parts of the head agent's job tracking
 * (agent/jobtrack.h): the streaming reader of a driver log answer, the last
 * error line and the tracked-job slot choice.
 *
 * The first input byte picks a piece size; the rest is the answer to
 * GET /api/jobs/<id>/logs. Read in one piece, in pieces of that size, and
 * split at a point picked from the input, the reader must reach the same
 * verdict and tail; the tail is at most RW_LOG_TAIL_MAX bytes, NUL-free,
 * well-formed UTF-8; the read limit (a quarter of the input) is never
 * passed. The last error line of the input and of the tail is one line
 * that fits. The input's bytes also make a table of slots, and the picked
 * slot must be one the rules allow.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobtrack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static struct rw_logtail lt;

struct verdict {
	int complete, err;
	char *tail;
	size_t len;
	int trunc;
};

static void
run(const char *body, size_t n, size_t step, uint64_t max_in, struct verdict *v)
{
	rw_logtail_init(&lt, max_in);
	for (size_t i = 0; i < n;) {
		size_t k = step && step < n - i ? step : n - i;
		int rv = rw_logtail_feed(&lt, body + i, k);
		CHECK(rv == 0 || rv == lt.err);
		i += k;
	}
	CHECK(lt.in_total <= max_in);
	v->complete = rw_logtail_complete(&lt);
	v->err = lt.err;
	CHECK(rw_logtail_result(&lt, &v->tail, &v->len, &v->trunc) == 0);
	CHECK(v->len <= RW_LOG_TAIL_MAX && strlen(v->tail) == v->len);
}

static void
same(const struct verdict *a, const struct verdict *b)
{
	CHECK(a->complete == b->complete && a->err == b->err && a->len == b->len &&
	      a->trunc == b->trunc && memcmp(a->tail, b->tail, a->len) == 0);
}

/* Is s[0..n) well-formed UTF-8 without NUL? */
static int
utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
		if (c == 0 || (c >= 0x80 && c < 0xC2) || c > 0xF4 || i + k > n)
			return 0;
		for (size_t j = 1; j < k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

static void
check_line(const char *text, size_t n)
{
	char out[64];
	size_t k = rw_last_error_line(text, n, out, sizeof(out));
	CHECK(k < sizeof(out) && strlen(out) == k);
	for (size_t i = 0; i < k; i++)
		CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7F);
	CHECK(k == 0 || (out[0] != ' ' && out[k - 1] != ' '));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)data[0] % 64 + 1;
	const char *body = (const char *)data + 1;
	size_t n = size - 1;
	struct verdict whole, pieces, split, capped;

	run(body, n, 0, UINT64_MAX, &whole);
	CHECK(utf8_ok((const unsigned char *)whole.tail, whole.len));
	CHECK(!whole.complete || whole.err == 0);
	run(body, n, step, UINT64_MAX, &pieces);
	same(&whole, &pieces);
	size_t cut = n ? (size_t)data[0] * 257 % n : 0;
	rw_logtail_init(&lt, UINT64_MAX);
	rw_logtail_feed(&lt, body, cut);
	rw_logtail_feed(&lt, body + cut, n - cut);
	split.complete = rw_logtail_complete(&lt);
	split.err = lt.err;
	CHECK(rw_logtail_result(&lt, &split.tail, &split.len, &split.trunc) == 0);
	same(&whole, &split);
	/* A read limit below the input: refused, never past the limit. */
	run(body, n, step, n / 4, &capped);
	CHECK(n / 4 == n || capped.err != 0);

	check_line(body, n);
	check_line(whole.tail, whole.len);

	/* Slots from the input's bytes: the pick follows the rules. */
	struct rw_job_slot slots[RW_MAX_JOBS];
	int ns = (int)(n < RW_MAX_JOBS ? n : RW_MAX_JOBS);
	for (int i = 0; i < ns; i++) {
		unsigned b = (unsigned char)body[i];
		slots[i] = (struct rw_job_slot){b & 1,	      (b >> 1) & 1, (b >> 2) & 1,
						(b >> 3) & 1, (b >> 4) & 1, b >> 5};
	}
	int k = rw_job_slot_pick(slots, ns);
	if (k >= 0) {
		CHECK(k < ns);
		CHECK(!slots[k].used || (!slots[k].busy && (slots[k].terminal || slots[k].unseen)));
		for (int i = 0; i < ns; i++)
			CHECK(slots[k].used || i >= k || slots[i].used);
	} else {
		for (int i = 0; i < ns; i++)
			CHECK(slots[i].used &&
			      (slots[i].busy || (!slots[i].terminal && !slots[i].unseen)));
	}
	free(whole.tail);
	free(pieces.tail);
	free(split.tail);
	free(capped.tail);
	return 0;
}

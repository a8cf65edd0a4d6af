/*
 * jobtrack.h - PURE parts of the head agent's job tracking: the streaming
 * reader of a driver log answer that keeps only its tail, the pick of a
 * failed job's "last error line", and which tracked job makes room for a
 * new one. No I/O: tested with tables (tests/unit/test_agent_jobtrack.c)
 * and fuzzed (tests/fuzz/fuzz_agent_jobs.c).
 */
#ifndef RW_AGENT_JOBTRACK_H
#define RW_AGENT_JOBTRACK_H

#include <stddef.h>
#include <stdint.h>

#include "rw/wire.h"

/*
 * Reader of the answer to GET /api/jobs/<id>/logs, {"logs": "<text>"},
 * fed in pieces as they arrive (a piece may end anywhere, even inside an
 * escape). The decoded text of "logs" goes through a ring of
 * RW_LOG_TAIL_MAX bytes, so memory stays fixed whatever the log's size;
 * other members are skipped. Input beyond max_in bytes is refused.
 */
struct rw_logtail {
	int st;		   /* parser state (jobtrack.c) */
	int key_logs;	   /* the key being read still matches "logs" */
	size_t key_len;	   /* bytes of the key read so far */
	int value_is_logs; /* the value being read belongs to "logs" */
	long depth;	   /* nesting while skipping another member's value */
	int skip_str, skip_esc;
	unsigned ucp;	 /* \uXXXX being read */
	int udigits;	 /* hex digits read of it */
	unsigned hi_sur; /* a high surrogate waiting for its low half, or 0 */
	int found;	 /* a complete "logs" string was read */
	int err;	 /* 0, -EINVAL (not the expected JSON), -EFBIG (over max_in) */
	char why[96];	 /* what went wrong, when err */
	uint64_t in_total, max_in;
	uint64_t out_total; /* bytes of log text decoded (the ring keeps the last ones) */
	char first[64];	    /* the answer's first bytes, for error messages */
	size_t first_len;
	char ring[RW_LOG_TAIL_MAX];
};

/* Start reading an answer of at most max_in bytes. */
void rw_logtail_init(struct rw_logtail *lt, uint64_t max_in);

/*
 * Feed the next piece. Returns 0, or lt->err once an error is known
 * (later pieces are then ignored): -EINVAL, -EFBIG.
 */
int rw_logtail_feed(struct rw_logtail *lt, const char *data, size_t len);

/* Was a whole {"logs": "..."} object read, with nothing but white space after it? */
int rw_logtail_complete(const struct rw_logtail *lt);

/*
 * The tail decoded so far (the whole text if it fitted) as a malloc'd,
 * NUL-terminated string into *out, its length into *len: it starts at a
 * UTF-8 character boundary, and bytes that are not well-formed UTF-8 (or
 * NUL) are replaced by '?', so its length never exceeds RW_LOG_TAIL_MAX.
 * *truncated is 1 when earlier text was dropped. 0 or -ENOMEM.
 */
int rw_logtail_result(const struct rw_logtail *lt, char **out, size_t *len, int *truncated);

/*
 * The one line of a failed driver's log tail worth an Event: the last
 * non-empty line that looks like an exception ("ValueError: ...",
 * "ray.exceptions.RayTaskError(ZeroDivisionError): ...",
 * "KeyboardInterrupt"), else the last non-empty line. Written to out
 * trimmed, control characters as spaces, cut at a UTF-8 boundary to fit.
 * Returns its length (0: the text has no non-empty line).
 */
size_t rw_last_error_line(const char *text, size_t len, char *out, size_t outlen);

/* What the slot choice needs to know of one tracked job. */
struct rw_job_slot {
	int used;
	int busy;     /* a request for it is in flight */
	int terminal; /* its status is final (or Ray no longer has it) */
	int reported; /* ... and the controller acknowledged that report */
	int unseen;   /* watched but never found in Ray (404 so far) */
	uint64_t age; /* loop time of its last change: smaller is older */
};

/*
 * Slot for a new job among n: a free one; else the oldest terminal job
 * whose end was reported; else the oldest terminal one; else the oldest
 * watched job Ray never had. Jobs with a request in flight are never
 * taken. -1 when none can be.
 */
int rw_job_slot_pick(const struct rw_job_slot *slots, int n);

/* Upper bound of the bytes s[0..n) takes as a JSON string body (escapes, U+FFFD). */
size_t rw_json_escaped_bound(const char *s, size_t n);

#endif

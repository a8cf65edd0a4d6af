/*
 * respbuf.h - the receive buffer of the agent's own HTTP/1.1 client
 * (probe.c) and the decision on what it holds.
 *
 * An answer is received into a small inline area; when it outgrows that,
 * the buffer moves to the heap and doubles as bytes arrive, never beyond a
 * fixed maximum, and after a large answer it goes back to the inline area
 * so that one large Serve answer is not kept for the life of the agent.
 * No I/O here: the fuzz target feeds answers through it split at every byte.
 */
#ifndef RW_AGENT_RESPBUF_H
#define RW_AGENT_RESPBUF_H

#include <stddef.h>

struct rw_respbuf {
	char *p;    /* inl or a heap block of cap + 1 bytes */
	size_t len; /* bytes received */
	size_t cap; /* usable bytes at p (one more is kept for a terminating NUL) */
	size_t max; /* cap never grows beyond this */
	char *inl;  /* caller's area of inl_cap + 1 bytes */
	size_t inl_cap;
};

/* inl: inl_cap + 1 bytes owned by the caller; max >= inl_cap. */
void rw_respbuf_init(struct rw_respbuf *b, char *inl, size_t inl_cap, size_t max);

/*
 * Make room for a read of at least want bytes (fewer when the maximum is
 * near): grows by doubling, bounded at max. 0, or -ENOMEM (the buffer is
 * unchanged and may still have some room).
 */
int rw_respbuf_reserve(struct rw_respbuf *b, size_t want);

/* Free bytes after what was received (where the next read goes: p + len). */
static inline size_t
rw_respbuf_room(const struct rw_respbuf *b)
{
	return b->cap - b->len;
}

/*
 * Parse what was received as the answer to one GET (rw_health_resp_parse).
 * eof: the peer closed. Returns 1 when the answer is complete (status, body,
 * keep set; the body is NUL-terminated inside the buffer), 0 when more bytes
 * are needed and fit, -EMSGSIZE when the answer fills the buffer at its
 * maximum or its body exceeds max_body, -EPROTO when it is not an answer.
 */
int rw_respbuf_answer(struct rw_respbuf *b, int eof, size_t max_body, long *status,
		      const char **body, size_t *body_len, int *keep);

/* Empty it for the next answer; a heap block larger than keep is freed (returns 1 then). */
int rw_respbuf_reset(struct rw_respbuf *b, size_t keep);

void rw_respbuf_fini(struct rw_respbuf *b);

#endif

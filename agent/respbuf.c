/*
 * respbuf.c - growing, bounded receive buffer of the agent's own HTTP
 * client (respbuf.h).
 */
#include "respbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"

void
rw_respbuf_init(struct rw_respbuf *b, char *inl, size_t inl_cap, size_t max)
{
	b->p = inl;
	b->len = 0;
	b->cap = inl_cap;
	b->max = max < inl_cap ? inl_cap : max;
	b->inl = inl;
	b->inl_cap = inl_cap;
}

int
rw_respbuf_reserve(struct rw_respbuf *b, size_t want)
{
	if (b->cap - b->len >= want || b->cap >= b->max)
		return 0;
	/* Doubling keeps the copies linear in the answer's size. */
	size_t ncap = b->cap * 2;
	if (ncap < b->len + want)
		ncap = b->len + want;
	if (ncap > b->max || ncap < b->cap)
		ncap = b->max;
	char *np;
	if (b->p == b->inl) {
		np = malloc(ncap + 1);
		if (np)
			memcpy(np, b->p, b->len);
	} else {
		np = realloc(b->p, ncap + 1);
	}
	if (!np)
		return -ENOMEM;
	b->p = np;
	b->cap = ncap;
	return 0;
}

int
rw_respbuf_answer(struct rw_respbuf *b, int eof, size_t max_body, long *status, const char **body,
		  size_t *body_len, int *keep)
{
	int rv = rw_health_resp_parse(b->p, b->len, eof, status, body, body_len, keep);
	if (rv == 0)
		return b->len >= b->max ? -EMSGSIZE : 0;
	if (rv < 0)
		return rv;
	if (*body_len > max_body)
		return -EMSGSIZE;
	((char *)*body)[*body_len] = '\0';
	return 1;
}

int
rw_respbuf_reset(struct rw_respbuf *b, size_t keep)
{
	b->len = 0;
	if (b->p == b->inl || b->cap <= keep)
		return 0;
	free(b->p);
	b->p = b->inl;
	b->cap = b->inl_cap;
	return 1;
}

void
rw_respbuf_fini(struct rw_respbuf *b)
{
	if (b->p != b->inl)
		free(b->p);
	b->p = b->inl;
	b->cap = b->inl_cap;
	b->len = 0;
}

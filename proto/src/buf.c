/*
 * buf.c - bounded growable byte buffer (see rw/buf.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw/buf.h"

void
rw_buf_init(struct rw_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
rw_buf_fini(struct rw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
rw_buf_reset(struct rw_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* Make room for n more bytes plus the terminator. */
static int
buf_reserve(struct rw_buf *b, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return -EMSGSIZE;
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	char *p = realloc(b->data, ncap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
rw_buf_append(struct rw_buf *b, const void *p, size_t n)
{
	int rv = buf_reserve(b, n);
	if (rv)
		return rv;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
rw_buf_puts(struct rw_buf *b, const char *s)
{
	return rw_buf_append(b, s, strlen(s));
}

int
rw_buf_putc(struct rw_buf *b, char c)
{
	return rw_buf_append(b, &c, 1);
}

int
rw_buf_vprintf(struct rw_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return -EINVAL;
	int rv = buf_reserve(b, (size_t)n);
	if (rv)
		return rv;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
rw_buf_printf(struct rw_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rv = rw_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rv;
}

void
rw_buf_consume(struct rw_buf *b, size_t n)
{
	if (n >= b->len) {
		rw_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

const char *
rw_buf_cstr(const struct rw_buf *b)
{
	return b->data ? b->data : "";
}

char *
rw_buf_steal(struct rw_buf *b, size_t *len)
{
	char *p = b->data;
	if (len)
		*len = b->len;
	if (!p)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

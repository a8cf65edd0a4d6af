/*
 * buf.h - a growable byte buffer with a hard size limit.
 *
 * Every buffer that grows from outside input is bounded: appending past
 * `max` fails with -EMSGSIZE and leaves the buffer as it was. The data is
 * always NUL-terminated (the terminator is not counted in len).
 */
#ifndef RW_BUF_H
#define RW_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct rw_buf {
	char *data; /* NULL until the first append; then NUL-terminated */
	size_t len; /* bytes used, excluding the terminator */
	size_t cap; /* bytes allocated */
	size_t max; /* hard limit on len */
};

/* Initialise an empty buffer that may hold at most `max` bytes. */
void rw_buf_init(struct rw_buf *b, size_t max);

/* Free the storage; the buffer is empty and reusable afterwards. */
void rw_buf_fini(struct rw_buf *b);

/* Forget the contents but keep the allocation. */
void rw_buf_reset(struct rw_buf *b);

/* Append n bytes. Returns 0, -ENOMEM, or -EMSGSIZE past the limit. */
int rw_buf_append(struct rw_buf *b, const void *p, size_t n);

/* Append a C string. Same returns as rw_buf_append(). */
int rw_buf_puts(struct rw_buf *b, const char *s);

/* Append one byte. */
int rw_buf_putc(struct rw_buf *b, char c);

/* Append formatted text. Same returns as rw_buf_append(). */
int rw_buf_printf(struct rw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rw_buf_vprintf(struct rw_buf *b, const char *fmt, va_list ap);

/* Drop the first n bytes (n <= len), moving the rest to the front. */
void rw_buf_consume(struct rw_buf *b, size_t n);

/* The contents as a C string: "" for an empty buffer, never NULL. */
const char *rw_buf_cstr(const struct rw_buf *b);

/* Take the storage out of the buffer (caller frees); the buffer becomes empty. */
char *rw_buf_steal(struct rw_buf *b, size_t *len);

#endif

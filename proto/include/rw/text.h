/*
 * rw/text.h - the small text codecs the parsers share: a hex digit's value,
 * a code point's UTF-8 bytes (JSON string escapes, the streaming job-log
 * decoder, percent-decoding) and where text may be cut.
 */
#ifndef RW_TEXT_H
#define RW_TEXT_H

#include <stddef.h>

/* The value of hex digit c, or -1. */
static inline int
rw_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Encode code point cp (valid, not a surrogate) as UTF-8 into out; returns the length (1-4). */
static inline int
rw_utf8_put(unsigned long cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/*
 * The length of the first len bytes of s cut to at most max bytes, never inside a UTF-8
 * sequence: a truncated message, name or log line stays valid text (JSON writers, Events and
 * the status page would otherwise carry a broken character). Reads s[max] when len > max.
 */
static inline size_t
rw_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

#endif

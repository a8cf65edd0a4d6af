/*
 * base64.c - standard base64 encoding and decoding (see rw/base64.h).
 */
#include <errno.h>
#include <limits.h>

#include "rw/base64.h"

static const char b64_tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
rw_base64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

int
rw_base64_encode(const void *in, size_t n, char *out, size_t outlen)
{
	const unsigned char *p = in;
	size_t o = 0;

	if (n > (size_t)INT_MAX / 4 * 3 - 3)
		return -EOVERFLOW;
	if (!out || outlen < rw_base64_len(n) + 1 || (n && !in))
		return -ENOSPC;
	for (size_t i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64_tab[v >> 18 & 63];
		out[o++] = b64_tab[v >> 12 & 63];
		out[o++] = b64_tab[v >> 6 & 63];
		out[o++] = b64_tab[v & 63];
	}
	size_t rest = n % 3;
	if (rest) {
		size_t i = n - rest;
		unsigned v = (unsigned)p[i] << 16 | (rest == 2 ? (unsigned)p[i + 1] << 8 : 0);
		out[o++] = b64_tab[v >> 18 & 63];
		out[o++] = b64_tab[v >> 12 & 63];
		out[o++] = rest == 2 ? b64_tab[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return (int)o;
}

static int
b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

long
rw_base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	unsigned acc = 0;
	int bits = 0, pad = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		if (ch == '\n' || ch == '\r')
			continue;
		if (ch == '=') {
			pad++;
			continue;
		}
		int v = b64_value(ch);
		if (v < 0 || pad)
			return -EINVAL;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= outlen)
				return -ENOSPC;
			out[n++] = (unsigned char)((acc >> bits) & 0xff);
		}
	}
	if (pad > 2 || bits >= 6)
		return -EINVAL;
	return (long)n;
}

/*
 * fuzz_redis_text.c - arbitrary bytes as an error text from Redis or the
 * network through rw_redis_cleanup_clean_text, the password being the first
 * (data[0] % 16) bytes after the first, the cut (data[1]) and the output
 * size varied too. Invariants: the output is NUL-terminated within its
 * buffer, at most max characters, printable ASCII only (no escape or
 * control byte), and never contains the password's printable form when
 * that form is at least 4 characters long and has none of '*', '?' and
 * '.' (which the redaction, the non-ASCII marker and the cut produce, so
 * they can join other text into the form). rw_redis_cleanup_classify_reply answers
 * one of its causes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const causes[] = {"authentication failed", "permission denied",
					     "server not ready",      "read-only replica",
					     "server out of memory",  "server error"};
	char secret[32], shown[32], out[300];
	const char *secrets[2] = {secret, NULL};
	size_t sl, max, outlen;
	if (size < 2 || size > 65536)
		return 0;
	sl = (size_t)(data[0] % 16);
	if (sl > size - 2)
		sl = size - 2;
	memcpy(secret, data + 2, sl);
	secret[sl] = '\0';
	if (strlen(secret) != sl)
		secret[0] = '\0'; /* a NUL inside: no secret this time */
	max = data[1];
	outlen = 1 + (size_t)(data[0] >> 4) * 19; /* 1..286 */
	memset(out, 0x55, sizeof(out));
	rw_redis_cleanup_clean_text((const char *)data + 2, size - 2, secrets, max, out, outlen);
	size_t n = strnlen(out, outlen);
	if (n >= outlen || n > max)
		abort();
	for (size_t i = 0; i < n; i++)
		if (out[i] < 0x20 || out[i] > 0x7E)
			abort();
	/* The printable form of the secret must not show (when it is distinctive). */
	rw_redis_cleanup_clean_text(secret, strlen(secret), NULL, sizeof(shown) - 1, shown,
				    sizeof(shown));
	if (strlen(shown) >= 4 && !strpbrk(shown, "*?.") && strstr(out, shown))
		abort();
	const char *c = rw_redis_cleanup_classify_reply((const char *)data + 2, size - 2);
	size_t k;
	for (k = 0; k < sizeof(causes) / sizeof(causes[0]); k++)
		if (strcmp(c, causes[k]) == 0)
			break;
	if (k == sizeof(causes) / sizeof(causes[0]))
		abort();
	return 0;
}

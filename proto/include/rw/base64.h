/*
 * base64.h - standard base64 (RFC 4648 section 4), as Kubernetes uses it for
 * Secret data and kubeconfig *-data fields.
 */
#ifndef RW_BASE64_H
#define RW_BASE64_H

#include <stddef.h>

/* Encoded length of n bytes with '=' padding, without a terminator. */
size_t rw_base64_len(size_t n);

/*
 * Encode n bytes into out and NUL-terminate it. Returns the encoded length,
 * -ENOSPC when out cannot hold rw_base64_len(n) + 1 bytes, -EOVERFLOW for an
 * absurd n.
 */
int rw_base64_encode(const void *in, size_t n, char *out, size_t outlen);

/*
 * Decode len characters into out. Padding is optional; '\r' and '\n' are
 * ignored (as Go's encoding/base64 does); any other character outside the
 * alphabet, data after padding, more than two '=' or a dangling 6-bit group
 * is -EINVAL; -ENOSPC when the result does not fit. Returns the decoded length.
 */
long rw_base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen);

#endif

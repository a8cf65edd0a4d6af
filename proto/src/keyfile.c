/*
 * keyfile.c - key file change detection and the /drain token (see
 * rw/keyfile.h).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <mbedtls/md.h>

#include "rw/keyfile.h"

int
rw_keyfile_changed(const struct rw_keyfile_sig *last, const char *path, struct rw_keyfile_sig *now)
{
	struct stat st;
	memset(now, 0, sizeof(*now));
	if (path && stat(path, &st) == 0) {
		now->valid = true;
		now->dev = (uint64_t)st.st_dev;
		now->ino = (uint64_t)st.st_ino;
		now->size = (uint64_t)st.st_size;
		now->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		now->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	}
	if (now->valid != last->valid)
		return 1;
	if (!now->valid)
		return 0;
	return now->dev != last->dev || now->ino != last->ino || now->size != last->size ||
	       now->mtime_ns != last->mtime_ns || now->ctime_ns != last->ctime_ns;
}

int
rw_drain_token(const struct rw_wire_key *key, char out[RW_DRAIN_TOKEN_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	static const char label[] = RW_DRAIN_TOKEN_LABEL;
	unsigned char mac[32];
	if (!out)
		return -EINVAL;
	out[0] = '\0';
	if (!key || key->len == 0 || key->len > RW_WIRE_KEY_MAX)
		return -EINVAL;
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	if (!md || mbedtls_md_hmac(md, key->k, key->len, (const unsigned char *)label,
				   sizeof(label) - 1, mac) != 0)
		return -EIO;
	for (size_t i = 0; i < sizeof(mac); i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[RW_DRAIN_TOKEN_LEN] = '\0';
	volatile unsigned char *v = mac;
	for (size_t i = 0; i < sizeof(mac); i++)
		v[i] = 0;
	return 0;
}

bool
rw_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

bool
rw_drain_token_match(const char *authorization, const char *token)
{
	size_t tl, n;
	if (!authorization || !token || !(tl = strlen(token)))
		return false;
	while (*authorization == ' ' || *authorization == '\t')
		authorization++;
	if (strncasecmp(authorization, "Bearer", 6) != 0 ||
	    (authorization[6] != ' ' && authorization[6] != '\t'))
		return false;
	authorization += 6;
	while (*authorization == ' ' || *authorization == '\t')
		authorization++;
	n = strcspn(authorization, " \t");
	if (authorization[n + strspn(authorization + n, " \t")] != '\0')
		return false; /* more than one word after the scheme */
	/* The length of a token is no secret (always 64 digits); its bytes are. */
	return n == tl && rw_ct_equal(authorization, token, tl);
}

/*
 * wire.c - the v1 envelope: header codec, HMAC-SHA256 sealing and opening,
 * key handling and the replay guard (see rw/wire.h and docs/protocol.md).
 * The JSON payload codecs live in wire_msg.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/md.h>

#include "rw/bytes.h"
#include "rw/wire.h"

static const unsigned char wire_magic[4] = {'R', 'W', 'P', 0x01};

/* Byte offsets of the header fields (the table in rw/wire.h). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 4,
	OFF_TYPE = 6,
	OFF_FLAGS = 8,
	OFF_KEYID = 12,
	OFF_SESSION = 16,
	OFF_SEQ = 24,
	OFF_TS = 32,
	OFF_LEN = 40,
};

/* Wipe memory in a way the compiler may not elide. */
static void
wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

static const mbedtls_md_info_t *
sha256_info(void)
{
	return mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
}

/* SHA-256 of data into out[32]. 0 or -EIO (mbed TLS failure). */
static int
sha256(const void *data, size_t n, unsigned char out[32])
{
	const mbedtls_md_info_t *md = sha256_info();
	if (!md || mbedtls_md(md, data, n, out) != 0)
		return -EIO;
	return 0;
}

/* HMAC-SHA256 of data under key into out[32]. 0 or -EIO. */
static int
hmac(const struct rw_wire_key *key, const void *data, size_t n, unsigned char out[32])
{
	const mbedtls_md_info_t *md = sha256_info();
	if (!md || mbedtls_md_hmac(md, key->k, key->len, data, n, out) != 0)
		return -EIO;
	return 0;
}

/* Constant-time comparison of two MACs: 1 when equal. */
static int
mac_equal(const unsigned char *a, const unsigned char *b, size_t n)
{
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

int
rw_wire_key_set(struct rw_wire_key *key, const void *secret, size_t len)
{
	unsigned char digest[32];
	if (!key || !secret || len < RW_WIRE_KEY_MIN || len > RW_WIRE_KEY_MAX)
		return -EINVAL;
	if (sha256(secret, len, digest) != 0)
		return -EINVAL;
	wipe(key, sizeof(*key));
	memcpy(key->k, secret, len);
	key->len = len;
	key->id = rw_get_be32(digest);
	wipe(digest, sizeof(digest));
	return 0;
}

/*
 * Read at most cap bytes of the file at path into buf. Returns the number
 * of bytes read, or a negative errno. One byte beyond what any valid key
 * file can hold is enough to tell "too long".
 */
static ssize_t
read_small_file(const char *path, unsigned char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	ssize_t rv = 0;
	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rv = -errno;
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	rv = (ssize_t)got;
out:
	close(fd);
	return rv;
}

int
rw_wire_key_load(struct rw_wire_key *key, const char *path, char *err, size_t errlen)
{
	/* Key bytes, plus "\r\n", plus one to detect an over-long file. */
	unsigned char buf[RW_WIRE_KEY_MAX + 3];
	int rv = 0;
	if (err && errlen)
		err[0] = '\0';
	if (!key || !path) {
		rv = -EINVAL;
		if (err && errlen)
			snprintf(err, errlen, "no key or path given");
		goto out;
	}
	ssize_t n = read_small_file(path, buf, sizeof(buf));
	if (n < 0) {
		rv = (int)n;
		if (err && errlen)
			snprintf(err, errlen, "key file %s: %s", path, strerror(-rv));
		goto out;
	}
	size_t len = (size_t)n;
	if (len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n')
		len -= 2;
	else if (len >= 1 && buf[len - 1] == '\n')
		len -= 1;
	if ((size_t)n == sizeof(buf) || len > RW_WIRE_KEY_MAX) {
		rv = -EINVAL;
		if (err && errlen)
			snprintf(err, errlen, "key file %s: key longer than %d bytes", path,
				 RW_WIRE_KEY_MAX);
		goto out;
	}
	if (len < RW_WIRE_KEY_MIN) {
		rv = -EINVAL;
		if (err && errlen)
			snprintf(err, errlen, "key file %s: key is %zu bytes, need at least %d",
				 path, len, RW_WIRE_KEY_MIN);
		goto out;
	}
	rv = rw_wire_key_set(key, buf, len);
	if (rv != 0 && err && errlen)
		snprintf(err, errlen, "key file %s: cannot derive the key", path);
out:
	wipe(buf, sizeof(buf));
	return rv;
}

void
rw_wire_key_wipe(struct rw_wire_key *key)
{
	if (key)
		wipe(key, sizeof(*key));
}

int
rw_wire_seal(const struct rw_wire_key *key, const struct rw_wire_hdr *h, const char *payload,
	     size_t n, struct rw_buf *out)
{
	unsigned char hdr[RW_WIRE_HDR_LEN];
	unsigned char mac[RW_WIRE_MAC_LEN];
	int rv;

	if (!key || !h || !out || (n > 0 && !payload) || key->len < RW_WIRE_KEY_MIN ||
	    key->len > RW_WIRE_KEY_MAX)
		return -EINVAL;
	rw_buf_reset(out);
	if (n > (size_t)RW_WIRE_MAX_MSG - RW_WIRE_HDR_LEN - RW_WIRE_MAC_LEN)
		return -EMSGSIZE;

	memcpy(hdr + OFF_MAGIC, wire_magic, sizeof(wire_magic));
	rw_put_be16(hdr + OFF_VERSION, RW_WIRE_VERSION);
	rw_put_be16(hdr + OFF_TYPE, h->type);
	rw_put_be32(hdr + OFF_FLAGS, h->flags);
	rw_put_be32(hdr + OFF_KEYID, key->id);
	rw_put_be64(hdr + OFF_SESSION, h->session);
	rw_put_be64(hdr + OFF_SEQ, h->seq);
	rw_put_be64(hdr + OFF_TS, h->ts_ms);
	rw_put_be32(hdr + OFF_LEN, (uint32_t)n);

	if ((rv = rw_buf_append(out, hdr, sizeof(hdr))) != 0)
		goto fail;
	if (n > 0 && (rv = rw_buf_append(out, payload, n)) != 0)
		goto fail;
	if ((rv = hmac(key, out->data, out->len, mac)) != 0)
		goto fail;
	if ((rv = rw_buf_append(out, mac, sizeof(mac))) != 0)
		goto fail;
	return 0;
fail:
	rw_buf_reset(out);
	return rv;
}

int
rw_wire_open(const struct rw_wire_key *key, const void *msg, size_t n, struct rw_wire_hdr *h,
	     const char **payload)
{
	const unsigned char *p = msg;
	unsigned char mac[RW_WIRE_MAC_LEN];
	int rv;

	if (!key || !h || !payload || (n > 0 && !msg))
		return -EINVAL;
	*payload = NULL;
	if (n > RW_WIRE_MAX_MSG)
		return -EMSGSIZE;
	if (n < RW_WIRE_HDR_LEN + RW_WIRE_MAC_LEN ||
	    memcmp(p + OFF_MAGIC, wire_magic, sizeof(wire_magic)) != 0)
		return -EBADMSG;

	/* Filled in now so a caller can log what was refused; trusted only on success. */
	h->version = rw_get_be16(p + OFF_VERSION);
	h->type = rw_get_be16(p + OFF_TYPE);
	h->flags = rw_get_be32(p + OFF_FLAGS);
	h->key_id = rw_get_be32(p + OFF_KEYID);
	h->session = rw_get_be64(p + OFF_SESSION);
	h->seq = rw_get_be64(p + OFF_SEQ);
	h->ts_ms = rw_get_be64(p + OFF_TS);
	h->len = rw_get_be32(p + OFF_LEN);

	if (h->version != RW_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	if (key->len < RW_WIRE_KEY_MIN || key->len > RW_WIRE_KEY_MAX || h->key_id != key->id)
		return -EKEYREJECTED;
	if ((rv = hmac(key, p, n - RW_WIRE_MAC_LEN, mac)) != 0)
		return rv;
	rv = mac_equal(mac, p + n - RW_WIRE_MAC_LEN, RW_WIRE_MAC_LEN) ? 0 : -EACCES;
	wipe(mac, sizeof(mac));
	if (rv != 0)
		return rv;
	if ((size_t)h->len != n - RW_WIRE_HDR_LEN - RW_WIRE_MAC_LEN)
		return -EBADMSG;
	*payload = (const char *)p + RW_WIRE_HDR_LEN;
	return 0;
}

int
rw_wire_replay_check(struct rw_wire_replay *r, const struct rw_wire_hdr *h, uint64_t now_ms,
		     uint64_t window_ms)
{
	if (!r || !h)
		return -EINVAL;
	uint64_t skew = h->ts_ms > now_ms ? h->ts_ms - now_ms : now_ms - h->ts_ms;
	if (skew > window_ms)
		return -ETIME;
	if (r->have) {
		if (h->session == r->session) {
			if (h->seq == r->seq)
				return RW_WIRE_RESEND;
			if (h->seq < r->seq)
				return -EALREADY;
		} else if (h->ts_ms < r->ts_ms) {
			return -EALREADY;
		}
	}
	r->have = 1;
	r->session = h->session;
	r->seq = h->seq;
	r->ts_ms = h->ts_ms;
	return RW_WIRE_FRESH;
}

void
rw_sha256_hex(const void *data, size_t n, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[32];
	if (sha256(data, n, d) != 0) {
		memset(out, '0', 64);
		out[64] = '\0';
		return;
	}
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}

const char *
rw_wire_strerror(int err)
{
	if (err > 0)
		err = -err;
	switch (err) {
	case 0:
		return "ok";
	case -EMSGSIZE:
		return "message too large";
	case -EBADMSG:
		return "malformed message (size, magic or payload length)";
	case -EPROTONOSUPPORT:
		return "unsupported protocol version";
	case -EKEYREJECTED:
		return "unknown key id (the peer holds a different key)";
	case -EACCES:
		return "authentication failed (MAC mismatch)";
	case -EALREADY:
		return "replayed or out-of-order message";
	case -ETIME:
		return "timestamp outside the accepted clock window";
	case -EINVAL:
		return "invalid argument or payload";
	case -ENOMEM:
		return "out of memory";
	case -EIO:
		return "crypto library failure";
	default:
		return "unknown error";
	}
}

static const char *const probe_names[] = {
    [RW_PROBE_UNKNOWN] = "unknown",   [RW_PROBE_OK] = "ok",
    [RW_PROBE_FAIL] = "fail",	      [RW_PROBE_REFUSED] = "refused",
    [RW_PROBE_TIMEOUT] = "timeout",   [RW_PROBE_ERROR] = "error",
    [RW_PROBE_DRAINING] = "draining", [RW_PROBE_STARTING] = "starting",
    [RW_PROBE_ABSENT] = "absent",     [RW_PROBE_DISABLED] = "disabled",
};

const char *
rw_probe_state_name(enum rw_probe_state s)
{
	if ((unsigned)s >= sizeof(probe_names) / sizeof(probe_names[0]) || !probe_names[s])
		return "unknown";
	return probe_names[s];
}

int
rw_probe_state_parse(const char *s, enum rw_probe_state *out)
{
	if (!s || !out)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(probe_names) / sizeof(probe_names[0]); i++) {
		if (probe_names[i] && strcmp(s, probe_names[i]) == 0) {
			*out = (enum rw_probe_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

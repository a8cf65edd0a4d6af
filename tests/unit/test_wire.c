/* test_wire.c - wire protocol v1: envelope, HMAC, replay guard, keys, payload codecs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/md.h>

#include "rw/wire.h"
#include "rwtest.h"

#define TEST_KEY "raywarden-test-key-0123456789"

static void
test_key(struct rw_wire_key *k)
{
	int rv = rw_wire_key_set(k, TEST_KEY, strlen(TEST_KEY));
	CHECK_EQ_INT(rv, 0);
}

static void
hex_of(const unsigned char *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Recompute the MAC of a (modified) message in place, as a key holder could. */
static void
reseal(const struct rw_wire_key *k, unsigned char *msg, size_t n)
{
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	CHECK(mbedtls_md_hmac(md, k->k, k->len, msg, n - RW_WIRE_MAC_LEN,
			      msg + n - RW_WIRE_MAC_LEN) == 0);
}

static struct rw_wire_hdr
sample_hdr(void)
{
	struct rw_wire_hdr h = {0};
	h.type = RW_WIRE_REPORT;
	h.session = 0x1122334455667788ULL;
	h.seq = 42;
	h.ts_ms = 1700000000123ULL;
	return h;
}

/* ---- envelope ---- */

static void
t_known_answer(void)
{
	/* Computed independently (Python hashlib/hmac) from the layout in wire.h. */
	static const char want[] =
	    "5257500100010001000000005327cb5e1122334455667788000000000000002a"
	    "0000018bcfe5687b000000077b2261223a317d7b261704a155a55f21081367d4"
	    "e01cbc4feee6beefce8cf7401e748ad82cffff";
	struct rw_wire_key k;
	struct rw_buf b;
	struct rw_wire_hdr h = sample_hdr();
	char got[2 * 128 + 1];

	test_key(&k);
	CHECK_EQ_INT(k.id, 0x5327cb5eU);
	rw_buf_init(&b, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_wire_seal(&k, &h, "{\"a\":1}", 7, &b), 0);
	CHECK_EQ_INT(b.len, RW_WIRE_HDR_LEN + 7 + RW_WIRE_MAC_LEN);
	if (b.len <= 128) {
		hex_of((const unsigned char *)b.data, b.len, got);
		CHECK_EQ_STR(got, want);
	}
	rw_buf_fini(&b);
}

static void
t_round_trip(void)
{
	struct rw_wire_key k;
	struct rw_buf b;
	struct rw_wire_hdr h = sample_hdr(), o;
	const char *payload;
	static const char *const payloads[] = {"", "{}", "{\"pod\":\"p\\u00e9\"}", NULL};

	test_key(&k);
	rw_buf_init(&b, RW_WIRE_MAX_MSG);
	for (int i = 0; payloads[i]; i++) {
		size_t n = strlen(payloads[i]);
		h.type = (uint16_t)(i % 2 ? RW_WIRE_REPLY : RW_WIRE_REPORT);
		h.seq = (uint64_t)i + 1;
		h.version = 77; /* ignored: seal writes RW_WIRE_VERSION */
		h.key_id = 5;	/* ignored: seal writes the key's id */
		CHECK_EQ_INT(rw_wire_seal(&k, &h, payloads[i], n, &b), 0);
		memset(&o, 0xa5, sizeof(o));
		CHECK_EQ_INT(rw_wire_open(&k, b.data, b.len, &o, &payload), 0);
		CHECK_EQ_INT(o.version, RW_WIRE_VERSION);
		CHECK_EQ_INT(o.type, h.type);
		CHECK_EQ_INT(o.flags, 0);
		CHECK_EQ_INT(o.key_id, k.id);
		CHECK(o.session == h.session);
		CHECK(o.seq == h.seq);
		CHECK(o.ts_ms == h.ts_ms);
		CHECK_EQ_INT(o.len, n);
		CHECK(payload == b.data + RW_WIRE_HDR_LEN);
		CHECK(payload && memcmp(payload, payloads[i], n) == 0);
	}
	rw_buf_fini(&b);
}

static void
t_size_limits(void)
{
	struct rw_wire_key k;
	struct rw_buf b, small;
	struct rw_wire_hdr h = sample_hdr(), o;
	const char *payload;
	size_t maxp = RW_WIRE_MAX_MSG - RW_WIRE_HDR_LEN - RW_WIRE_MAC_LEN;
	char *big = malloc(RW_WIRE_MAX_MSG + 1);

	test_key(&k);
	rw_buf_init(&b, RW_WIRE_MAX_MSG);
	CHECK(big != NULL);
	if (!big)
		return;
	memset(big, 'x', RW_WIRE_MAX_MSG + 1);
	CHECK_EQ_INT(rw_wire_seal(&k, &h, big, maxp, &b), 0);
	CHECK_EQ_INT(b.len, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_wire_open(&k, b.data, b.len, &o, &payload), 0);
	CHECK_EQ_INT(o.len, maxp);
	CHECK_EQ_INT(rw_wire_seal(&k, &h, big, maxp + 1, &b), -EMSGSIZE);
	CHECK_EQ_INT(b.len, 0);
	/* Anything over the limit is refused before even the magic is read. */
	CHECK_EQ_INT(rw_wire_open(&k, big, RW_WIRE_MAX_MSG + 1, &o, &payload), -EMSGSIZE);
	CHECK(payload == NULL);
	/* The output buffer's own limit is honoured. */
	rw_buf_init(&small, 50);
	CHECK_EQ_INT(rw_wire_seal(&k, &h, "{}", 2, &small), -EMSGSIZE);
	CHECK_EQ_INT(small.len, 0);
	rw_buf_fini(&small);
	rw_buf_fini(&b);
	free(big);
}

/* What a one-bit flip in each byte of a sealed message must produce. */
static int
flip_expect(size_t off, size_t hdr_and_payload)
{
	if (off < 4)
		return -EBADMSG; /* magic */
	if (off < 6)
		return -EPROTONOSUPPORT;
	if (off >= 12 && off < 16)
		return -EKEYREJECTED;
	(void)hdr_and_payload;
	return -EACCES; /* type, flags, session, seq, ts, len, payload, MAC */
}

static void
t_every_bit_flip(void)
{
	struct rw_wire_key k;
	struct rw_buf b;
	struct rw_wire_hdr h = sample_hdr(), o;
	const char *payload;
	static const char pl[] = "{\"pod\":\"ray-head-0\",\"ready\":true}";

	test_key(&k);
	rw_buf_init(&b, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_wire_seal(&k, &h, pl, sizeof(pl) - 1, &b), 0);
	unsigned char *m = (unsigned char *)b.data;
	int bad = 0;
	for (size_t off = 0; off < b.len; off++) {
		for (int bit = 0; bit < 8; bit++) {
			m[off] ^= (unsigned char)(1u << bit);
			int rv = rw_wire_open(&k, m, b.len, &o, &payload);
			int want = flip_expect(off, b.len - RW_WIRE_MAC_LEN);
			if (rv != want || payload != NULL) {
				if (bad++ < 5)
					fprintf(stderr, "  byte %zu bit %d: got %d want %d\n", off,
						bit, rv, want);
			}
			m[off] ^= (unsigned char)(1u << bit);
		}
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(rw_wire_open(&k, m, b.len, &o, &payload), 0);
	rw_buf_fini(&b);
}

struct reject_case {
	const char *name;
	int want;
};

static void
t_rejections(void)
{
	struct rw_wire_key k, other, forged;
	struct rw_buf b;
	struct rw_wire_hdr h = sample_hdr(), o;
	const char *payload = "x";
	static const char pl[] = "{\"seq\":1}";
	unsigned char m[256];
	size_t n;

	test_key(&k);
	CHECK_EQ_INT(rw_wire_key_set(&other, "another-key-of-20-bytes", 23), 0);
	CHECK(other.id != k.id);
	forged = other;
	forged.id = k.id; /* same id, different bytes */
	rw_buf_init(&b, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_wire_seal(&k, &h, pl, sizeof(pl) - 1, &b), 0);
	n = b.len;
	CHECK(n <= sizeof(m));
	if (n > sizeof(m))
		goto out;

	static const struct reject_case cases[] = {
	    {"empty", -EBADMSG},
	    {"header only", -EBADMSG},
	    {"one short of header+mac", -EBADMSG},
	    {"wrong magic", -EBADMSG},
	    {"old magic version byte", -EBADMSG},
	    {"version 2", -EPROTONOSUPPORT},
	    {"version 0 resealed", -EPROTONOSUPPORT},
	    {"other key", -EKEYREJECTED},
	    {"forged key id", -EACCES},
	    {"truncated payload", -EACCES},
	    {"extra byte", -EACCES},
	    {"length too small resealed", -EBADMSG},
	    {"length too large resealed", -EBADMSG},
	    {"length huge resealed", -EBADMSG},
	    {"zeroed MAC", -EACCES},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rw_wire_key *key = &k;
		size_t len = n;
		memcpy(m, b.data, n);
		switch (i) {
		case 0:
			len = 0;
			break;
		case 1:
			len = RW_WIRE_HDR_LEN;
			break;
		case 2:
			len = RW_WIRE_HDR_LEN + RW_WIRE_MAC_LEN - 1;
			break;
		case 3:
			m[0] = 'X';
			break;
		case 4:
			m[3] = 0x00;
			break;
		case 5:
			m[5] = 2;
			break;
		case 6:
			m[5] = 0;
			reseal(&k, m, n);
			break;
		case 7:
			key = &other;
			break;
		case 8:
			key = &forged;
			break;
		case 9:
			len = n - 1;
			break;
		case 10:
			m[n] = 0;
			len = n + 1;
			break;
		case 11:
			m[43] = (unsigned char)(m[43] - 1);
			reseal(&k, m, n);
			break;
		case 12:
			m[43] = (unsigned char)(m[43] + 1);
			reseal(&k, m, n);
			break;
		case 13:
			m[40] = 0xff;
			reseal(&k, m, n);
			break;
		case 14:
			memset(m + n - RW_WIRE_MAC_LEN, 0, RW_WIRE_MAC_LEN);
			break;
		}
		memset(&o, 0, sizeof(o));
		payload = "x";
		int rv = rw_wire_open(key, m, len, &o, &payload);
		if (rv != cases[i].want)
			fprintf(stderr, "  case '%s': got %d (%s), want %d\n", cases[i].name, rv,
				rw_wire_strerror(rv), cases[i].want);
		CHECK_EQ_INT(rv, cases[i].want);
		CHECK(payload == NULL);
		if (cases[i].want == -EPROTONOSUPPORT)
			CHECK_EQ_INT(o.version, m[5]);
	}
	/* A type the receiver does not expect still opens; the caller checks h->type. */
	memcpy(m, b.data, n);
	m[7] = 9;
	reseal(&k, m, n);
	CHECK_EQ_INT(rw_wire_open(&k, m, n, &o, &payload), 0);
	CHECK_EQ_INT(o.type, 9);
out:
	rw_buf_fini(&b);
}

static void
t_strerror(void)
{
	static const int codes[] = {EMSGSIZE, EBADMSG, EPROTONOSUPPORT, EKEYREJECTED, EACCES,
				    EALREADY, ETIME,   EINVAL,		ENOMEM};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = rw_wire_strerror(-codes[i]);
		CHECK(s && strcmp(s, "unknown error") != 0);
		CHECK_EQ_STR(rw_wire_strerror(codes[i]), s);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(s, rw_wire_strerror(-codes[j])) != 0);
	}
	CHECK_EQ_STR(rw_wire_strerror(0), "ok");
	CHECK_EQ_STR(rw_wire_strerror(-EXDEV), "unknown error");
}

static void
t_sha256_hex(void)
{
	char out[65];
	rw_sha256_hex("abc", 3, out);
	CHECK_EQ_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	rw_sha256_hex("", 0, out);
	CHECK_EQ_STR(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- replay guard ---- */

#define NOW 1700000000000ULL
#define WIN 300000ULL

struct replay_case {
	const char *name;
	struct rw_wire_replay before;
	uint64_t session, seq, ts;
	int want;
	struct rw_wire_replay after;
};

static void
t_replay_table(void)
{
	static const struct replay_case cases[] = {
	    {"first message", {0, 0, 0, 0}, 7, 1, NOW, RW_WIRE_FRESH, {1, 7, 1, NOW}},
	    {"next seq", {1, 7, 1, NOW}, 7, 2, NOW + 5, RW_WIRE_FRESH, {1, 7, 2, NOW + 5}},
	    {"seq jump", {1, 7, 1, NOW}, 7, 100, NOW, RW_WIRE_FRESH, {1, 7, 100, NOW}},
	    {"resend", {1, 7, 5, NOW}, 7, 5, NOW, RW_WIRE_RESEND, {1, 7, 5, NOW}},
	    {"older seq", {1, 7, 5, NOW}, 7, 4, NOW, -EALREADY, {1, 7, 5, NOW}},
	    {"seq 0 after 5", {1, 7, 5, NOW}, 7, 0, NOW + 1, -EALREADY, {1, 7, 5, NOW}},
	    {"same session, newer seq, older ts",
	     {1, 7, 5, NOW},
	     7,
	     6,
	     NOW - 10,
	     RW_WIRE_FRESH,
	     {1, 7, 6, NOW - 10}},
	    {"new session, older ts", {1, 7, 5, NOW}, 8, 1, NOW - 1, -EALREADY, {1, 7, 5, NOW}},
	    {"new session, same ts", {1, 7, 5, NOW}, 8, 1, NOW, RW_WIRE_FRESH, {1, 8, 1, NOW}},
	    {"new session, newer ts",
	     {1, 7, 5, NOW},
	     8,
	     1,
	     NOW + 1,
	     RW_WIRE_FRESH,
	     {1, 8, 1, NOW + 1}},
	    {"new session, low seq",
	     {1, 7, 500, NOW},
	     9,
	     0,
	     NOW + 1,
	     RW_WIRE_FRESH,
	     {1, 9, 0, NOW + 1}},
	    {"ts too old", {1, 7, 5, NOW}, 7, 6, NOW - WIN - 1, -ETIME, {1, 7, 5, NOW}},
	    {"ts too new", {1, 7, 5, NOW}, 7, 6, NOW + WIN + 1, -ETIME, {1, 7, 5, NOW}},
	    {"ts at window edge",
	     {0, 0, 0, 0},
	     3,
	     1,
	     NOW - WIN,
	     RW_WIRE_FRESH,
	     {1, 3, 1, NOW - WIN}},
	    {"first message out of window",
	     {0, 0, 0, 0},
	     3,
	     1,
	     NOW + WIN + 1,
	     -ETIME,
	     {0, 0, 0, 0}},
	    {"ts 0", {0, 0, 0, 0}, 3, 1, 0, -ETIME, {0, 0, 0, 0}},
	    {"ts max", {0, 0, 0, 0}, 3, 1, UINT64_MAX, -ETIME, {0, 0, 0, 0}},
	    {"resend out of window",
	     {1, 7, 5, NOW - WIN - 1},
	     7,
	     5,
	     NOW - WIN - 1,
	     -ETIME,
	     {1, 7, 5, NOW - WIN - 1}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct replay_case *c = &cases[i];
		struct rw_wire_replay r = c->before;
		struct rw_wire_hdr h = sample_hdr();
		h.session = c->session;
		h.seq = c->seq;
		h.ts_ms = c->ts;
		int rv = rw_wire_replay_check(&r, &h, NOW, WIN);
		if (rv != c->want || memcmp(&r, &c->after, sizeof(r)) != 0)
			fprintf(stderr, "  case '%s': got %d\n", c->name, rv);
		CHECK_EQ_INT(rv, c->want);
		CHECK_EQ_INT(r.have, c->after.have);
		CHECK(r.session == c->after.session);
		CHECK(r.seq == c->after.seq);
		CHECK(r.ts_ms == c->after.ts_ms);
	}
}

static void
t_replay_sequence(void)
{
	/* A realistic run: reports, an nng resend, a restart, a replay of the old session. */
	struct rw_wire_replay r = {0};
	struct rw_wire_hdr h = sample_hdr();
	uint64_t t = NOW;
	for (uint64_t s = 1; s <= 50; s++) {
		h.seq = s;
		h.ts_ms = t + s * 1000;
		CHECK_EQ_INT(rw_wire_replay_check(&r, &h, t + s * 1000, WIN), RW_WIRE_FRESH);
		CHECK_EQ_INT(rw_wire_replay_check(&r, &h, t + s * 1000 + 60000, WIN),
			     RW_WIRE_RESEND);
	}
	struct rw_wire_hdr old = h;
	old.seq = 10;
	old.ts_ms = t + 10000;
	h.session = 0xfeed;
	h.seq = 1;
	h.ts_ms = t + 51000;
	CHECK_EQ_INT(rw_wire_replay_check(&r, &h, t + 51000, WIN), RW_WIRE_FRESH);
	CHECK_EQ_INT(rw_wire_replay_check(&r, &old, t + 52000, WIN), -EALREADY);
	h.seq = 2;
	h.ts_ms = t + 52000;
	CHECK_EQ_INT(rw_wire_replay_check(&r, &h, t + 52000, WIN), RW_WIRE_FRESH);
}

/* ---- keys ---- */

static char tmpdir[256];

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(p, 1, n, f) == n);
	fclose(f);
}

struct key_case {
	const char *name;
	const char *content; /* NULL: no file */
	size_t len;
	int want;
	size_t keylen;	      /* on success */
	const char *err_part; /* expected in err on failure */
};

static void
t_key_load(void)
{
	static char long_key[RW_WIRE_KEY_MAX + 2];
	memset(long_key, 'S', sizeof(long_key));
	static const struct key_case cases[] = {
	    {"plain", "SECRETSECRETSECR", 16, 0, 16, NULL},
	    {"trailing newline", "SECRETSECRETSECR\n", 17, 0, 16, NULL},
	    {"trailing crlf", "SECRETSECRETSECR\r\n", 18, 0, 16, NULL},
	    {"only one newline stripped", "SECRETSECRETSECR\n\n", 18, 0, 17, NULL},
	    {"binary with nul", "SECRET\0SECRETSECRET", 19, 0, 19, NULL},
	    {"too short", "SECRETSECRETSEC\n", 16, -EINVAL, 0, "at least 16"},
	    {"empty", "", 0, -EINVAL, 0, "at least 16"},
	    {"just a newline", "\n", 1, -EINVAL, 0, "at least 16"},
	    {"max", long_key, RW_WIRE_KEY_MAX, 0, RW_WIRE_KEY_MAX, NULL},
	    {"one over max", long_key, RW_WIRE_KEY_MAX + 1, -EINVAL, 0, "longer than 128"},
	    {"two over max", long_key, RW_WIRE_KEY_MAX + 2, -EINVAL, 0, "longer than 128"},
	    {"missing file", NULL, 0, -ENOENT, 0, "No such file"},
	};
	char path[320], err[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct key_case *c = &cases[i];
		struct rw_wire_key k;
		snprintf(path, sizeof(path), "%s/key%zu", tmpdir, i);
		if (c->content)
			write_file(path, c->content, c->len);
		memset(&k, 0, sizeof(k));
		memset(err, 'z', sizeof(err));
		int rv = rw_wire_key_load(&k, path, err, sizeof(err));
		if (rv != c->want)
			fprintf(stderr, "  case '%s': got %d (%s)\n", c->name, rv, err);
		CHECK_EQ_INT(rv, c->want);
		CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		/* The key bytes never reach the message, whatever happened. */
		CHECK(strstr(err, "SECRET") == NULL);
		CHECK(strstr(err, "SSSSSSSS") == NULL);
		if (rv == 0) {
			struct rw_wire_key ref;
			CHECK_EQ_INT(k.len, c->keylen);
			CHECK(memcmp(k.k, c->content, c->keylen) == 0);
			CHECK_EQ_INT(rw_wire_key_set(&ref, c->content, c->keylen), 0);
			CHECK_EQ_INT(k.id, ref.id);
		} else {
			CHECK(strstr(err, c->err_part) != NULL);
			CHECK(strstr(err, path) != NULL);
		}
		unlink(path);
	}
	/* A NULL err buffer is fine. */
	struct rw_wire_key k;
	CHECK_EQ_INT(rw_wire_key_load(&k, "/nonexistent/raywarden/key", NULL, 0), -ENOENT);
}

static void
t_key_set_and_wipe(void)
{
	struct rw_wire_key k;
	unsigned char zero[sizeof(k)];
	char secret[RW_WIRE_KEY_MAX + 1];
	memset(secret, 'k', sizeof(secret));
	CHECK_EQ_INT(rw_wire_key_set(&k, secret, RW_WIRE_KEY_MIN - 1), -EINVAL);
	CHECK_EQ_INT(rw_wire_key_set(&k, secret, RW_WIRE_KEY_MAX + 1), -EINVAL);
	CHECK_EQ_INT(rw_wire_key_set(&k, NULL, 20), -EINVAL);
	CHECK_EQ_INT(rw_wire_key_set(&k, secret, RW_WIRE_KEY_MIN), 0);
	CHECK_EQ_INT(k.len, RW_WIRE_KEY_MIN);
	/* Key id of 16 x 'k': SHA-256 begins ee6321d7 (computed with Python hashlib). */
	CHECK_EQ_INT(k.id, 0xee6321d7U);
	rw_wire_key_wipe(&k);
	memset(zero, 0, sizeof(zero));
	CHECK(memcmp(&k, zero, sizeof(k)) == 0);
	rw_wire_key_wipe(NULL);
	/* A wiped (zero-length) key seals and opens nothing. */
	struct rw_buf b;
	struct rw_wire_hdr h = sample_hdr();
	rw_buf_init(&b, 1024);
	CHECK_EQ_INT(rw_wire_seal(&k, &h, "{}", 2, &b), -EINVAL);
	rw_buf_fini(&b);
}

static void
t_probe_names(void)
{
	for (int s = RW_PROBE_UNKNOWN; s <= RW_PROBE_DISABLED; s++) {
		enum rw_probe_state back = RW_PROBE_UNKNOWN;
		const char *name = rw_probe_state_name((enum rw_probe_state)s);
		CHECK_EQ_INT(rw_probe_state_parse(name, &back), 0);
		CHECK_EQ_INT(back, s);
	}
	enum rw_probe_state x;
	CHECK_EQ_STR(rw_probe_state_name(RW_PROBE_DRAINING), "draining");
	CHECK_EQ_STR(rw_probe_state_name((enum rw_probe_state)99), "unknown");
	CHECK_EQ_INT(rw_probe_state_parse("OK", &x), -EINVAL);
	CHECK_EQ_INT(rw_probe_state_parse("", &x), -EINVAL);
	CHECK_EQ_INT(rw_probe_state_parse(NULL, &x), -EINVAL);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"known answer", t_known_answer},
	    {"seal/open round trip", t_round_trip},
	    {"size limits", t_size_limits},
	    {"every bit flip", t_every_bit_flip},
	    {"rejections", t_rejections},
	    {"strerror", t_strerror},
	    {"sha256 hex", t_sha256_hex},
	    {"replay table", t_replay_table},
	    {"replay sequence", t_replay_sequence},
	    {"key load", t_key_load},
	    {"key set and wipe", t_key_set_and_wipe},
	    {"probe state names", t_probe_names},
	    {NULL, NULL},
	};
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/rw-test-wire-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	int rv = rwt_run(cases);
	rmdir(tmpdir);
	return rv;
}

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

/* ---- payload codecs ---- */

static void
fill_report(struct rw_report *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->ns, sizeof(r->ns), "ray-system");
	snprintf(r->pod, sizeof(r->pod), "rayservice-sample-raycluster-x7k2p-head-9qz4m");
	snprintf(r->uid, sizeof(r->uid), "5f0c2a4e-8b1d-4c3e-9f7a-0123456789ab");
	snprintf(r->cluster, sizeof(r->cluster), "rayservice-sample-raycluster-x7k2p");
	snprintf(r->group, sizeof(r->group), "headgroup");
	snprintf(r->node_type, sizeof(r->node_type), "head");
	snprintf(r->pod_ip, sizeof(r->pod_ip), "127.0.3.7");
	snprintf(r->agent_version, sizeof(r->agent_version), "0.1.0");
	r->rayservice = 1;
	r->ready = 1;
	snprintf(r->ready_reason, sizeof(r->ready_reason), "raylet ok, gcs ok \"quoted\" \\ \t");
	r->live = 1;
	r->draining = 0;
	r->raylet = (struct rw_probe){RW_PROBE_OK, "", 1700000000001ULL};
	r->gcs = (struct rw_probe){RW_PROBE_TIMEOUT, "no answer in 1000 ms", 1700000000002ULL};
	r->proxy = (struct rw_probe){RW_PROBE_DRAINING, "This node is being drained.", 3};
	r->has_serve = 1;
	r->serve_api = (struct rw_probe){RW_PROBE_OK, "", 1700000000004ULL};
	snprintf(r->proxy_location, sizeof(r->proxy_location), "EveryNode");
	snprintf(r->serve_config_hash, sizeof(r->serve_config_hash), "%064d", 7);
	snprintf(r->serve_apply_state, sizeof(r->serve_apply_state), "applied");
	snprintf(r->serve_apply_error, sizeof(r->serve_apply_error), "caf\xc3\xa9 \xe2\x82\xac");
	r->napps = 2;
	r->apps = calloc(2, sizeof(*r->apps));
	snprintf(r->apps[0].name, sizeof(r->apps[0].name), "fruit_app");
	snprintf(r->apps[0].status, sizeof(r->apps[0].status), "RUNNING");
	snprintf(r->apps[0].route_prefix, sizeof(r->apps[0].route_prefix), "/fruit");
	r->apps[0].ndeps = 3;
	r->apps[0].deps = calloc(3, sizeof(*r->apps[0].deps));
	static const char *const deps[] = {"MangoStand", "OrangeStand", "FruitMarket"};
	for (int i = 0; i < 3; i++) {
		struct rw_serve_dep *d = &r->apps[0].deps[i];
		snprintf(d->name, sizeof(d->name), "%s", deps[i]);
		snprintf(d->status, sizeof(d->status), i == 2 ? "UPDATING" : "HEALTHY");
		snprintf(d->message, sizeof(d->message), i == 2 ? "waiting for replicas" : "");
		d->replicas_running = i;
		d->replicas_target = 2;
	}
	snprintf(r->apps[1].name, sizeof(r->apps[1].name), "math_app");
	snprintf(r->apps[1].status, sizeof(r->apps[1].status), "DEPLOY_FAILED");
	snprintf(r->apps[1].message, sizeof(r->apps[1].message), "line 1\nline 2");
	r->nnodes = 2;
	r->nodes = calloc(2, sizeof(*r->nodes));
	snprintf(r->nodes[0].node_id, sizeof(r->nodes[0].node_id), "%056x", 0xabc);
	snprintf(r->nodes[0].node_ip, sizeof(r->nodes[0].node_ip), "127.0.3.7");
	snprintf(r->nodes[0].proxy_status, sizeof(r->nodes[0].proxy_status), "HEALTHY");
	r->nodes[0].replicas = 3;
	snprintf(r->nodes[1].node_id, sizeof(r->nodes[1].node_id), "%056x", 0xdef);
	r->njobs = 1;
	r->jobs = calloc(1, sizeof(*r->jobs));
	snprintf(r->jobs[0].submission_id, sizeof(r->jobs[0].submission_id), "rayjob-sample-abc");
	snprintf(r->jobs[0].status, sizeof(r->jobs[0].status), "SUCCEEDED");
	snprintf(r->jobs[0].message, sizeof(r->jobs[0].message), "Job finished successfully.");
	r->jobs[0].start_time_ms = 1700000000100LL;
	r->jobs[0].end_time_ms = 1700000009100LL;
	snprintf(r->job_action_error, sizeof(r->job_action_error), "stop: 404 not found");
}

static void
fill_reply(struct rw_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->drain = 1;
	r->proxy_expected = 1;
	snprintf(r->serve_config_hash, sizeof(r->serve_config_hash), "%064x", 0x1234);
	r->serve_config = strdup("{\"applications\":[{\"name\":\"fruit_app\",\"import_path\":"
				 "\"fruit.deployment_graph\",\"route_prefix\":\"/fruit\"}]}");
	r->has_submit = 1;
	snprintf(r->submit.submission_id, sizeof(r->submit.submission_id), "rayjob-sample-xyz");
	r->submit.entrypoint = strdup("python /home/ray/samples/sample_code.py --x \"1 2\"");
	r->submit.runtime_env_json = strdup("{\"pip\":[\"requests==2.26.0\"]}");
	r->submit.metadata_json = strdup("{\"owner\":\"me\"}");
	r->submit.resources_json = strdup("{\"custom\":1}");
	r->submit.num_cpus = 0.5;
	r->submit.num_gpus = 0.1;
	r->submit.memory = 1LL << 33;
	snprintf(r->stop_job, sizeof(r->stop_job), "rayjob-old");
	r->heartbeat_ms = 4000000000U;
}

static void
t_report_round_trip(void)
{
	struct rw_report a, b;
	struct rw_buf buf;
	char err[256];

	fill_report(&a);
	rw_buf_init(&buf, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_buf_puts(&buf, "prefix:"), 0);
	CHECK_EQ_INT(rw_report_encode(&a, &buf), 0);
	CHECK(strncmp(buf.data, "prefix:{", 8) == 0);
	const char *js = buf.data + 7;
	int rv = rw_report_decode(js, buf.len - 7, &b, err, sizeof(err));
	if (rv)
		fprintf(stderr, "  decode: %s\n", err);
	CHECK_EQ_INT(rv, 0);
	CHECK(rw_report_equal(&a, &b));
	CHECK_EQ_STR(b.apps[0].deps[2].name, "FruitMarket");
	CHECK_EQ_INT(b.apps[0].deps[1].replicas_running, 1);
	CHECK_EQ_INT(b.gcs.state, RW_PROBE_TIMEOUT);
	CHECK(b.raylet.since_ms == 1700000000001ULL);
	CHECK_EQ_STR(b.ready_reason, a.ready_reason);
	CHECK_EQ_STR(b.serve_apply_error, "caf\xc3\xa9 \xe2\x82\xac");
	CHECK(b.jobs[0].end_time_ms == 1700000009100LL);
	/* Equality notices a difference deep down. */
	b.apps[0].deps[2].replicas_target = 3;
	CHECK(!rw_report_equal(&a, &b));
	b.apps[0].deps[2].replicas_target = 2;
	b.nodes[1].proxy_status[0] = 'X';
	CHECK(!rw_report_equal(&a, &b));
	/* Readable field names. */
	CHECK(strstr(js, "\"namespace\":\"ray-system\"") != NULL);
	CHECK(strstr(js, "\"probes\":{\"raylet\":{\"state\":\"ok\",\"since_ms\":1700000000001}") !=
	      NULL);
	CHECK(strstr(js, "\"deployments\":[{\"name\":\"MangoStand\"") != NULL);
	rw_report_fini(&a);
	rw_report_fini(&b);
	rw_report_fini(&b); /* twice is harmless */
	rw_buf_fini(&buf);
}

static void
t_report_minimal(void)
{
	struct rw_report a, b;
	struct rw_buf buf;
	char err[256];

	memset(&a, 0, sizeof(a));
	snprintf(a.ns, sizeof(a.ns), "default");
	snprintf(a.pod, sizeof(a.pod), "w-1");
	a.live = 1;
	rw_buf_init(&buf, 4096);
	CHECK_EQ_INT(rw_report_encode(&a, &buf), 0);
	/* Empty strings, unset probes and absent sections are left out. */
	CHECK_EQ_STR(buf.data, "{\"namespace\":\"default\",\"pod\":\"w-1\",\"rayservice\":false,"
			       "\"ready\":false,\"live\":true,\"draining\":false}");
	CHECK_EQ_INT(rw_report_decode(buf.data, buf.len, &b, err, sizeof(err)), 0);
	CHECK(rw_report_equal(&a, &b));
	CHECK(!b.has_serve && b.apps == NULL && b.nodes == NULL && b.jobs == NULL);
	/* An empty serve section is still a section. */
	a.has_serve = 1;
	rw_buf_reset(&buf);
	CHECK_EQ_INT(rw_report_encode(&a, &buf), 0);
	CHECK(strstr(buf.data, "\"serve\":{}") != NULL);
	CHECK_EQ_INT(rw_report_decode(buf.data, buf.len, &b, err, sizeof(err)), 0);
	CHECK_EQ_INT(b.has_serve, 1);
	CHECK(rw_report_equal(&a, &b));
	rw_report_fini(&b);
	rw_buf_fini(&buf);
}

static void
t_reply_round_trip(void)
{
	struct rw_reply a, b;
	struct rw_buf buf;
	char err[256];

	fill_reply(&a);
	rw_buf_init(&buf, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_reply_encode(&a, &buf), 0);
	int rv = rw_reply_decode(buf.data, buf.len, &b, err, sizeof(err));
	if (rv)
		fprintf(stderr, "  decode: %s\n", err);
	CHECK_EQ_INT(rv, 0);
	CHECK(rw_reply_equal(&a, &b));
	CHECK_EQ_STR(b.serve_config, a.serve_config);
	CHECK_EQ_STR(b.submit.entrypoint, a.submit.entrypoint);
	CHECK(b.submit.num_cpus == 0.5 && b.submit.num_gpus == 0.1);
	CHECK(b.submit.memory == 1LL << 33);
	CHECK(b.heartbeat_ms == 4000000000U);
	CHECK_EQ_INT(b.proxy_expected, 1);
	b.submit.num_gpus = 0.2;
	CHECK(!rw_reply_equal(&a, &b));
	rw_reply_fini(&a);
	rw_reply_fini(&b);

	/* Nothing to say: defaults come back as "unset". */
	memset(&a, 0, sizeof(a));
	a.proxy_expected = -1;
	rw_buf_reset(&buf);
	CHECK_EQ_INT(rw_reply_encode(&a, &buf), 0);
	CHECK_EQ_STR(buf.data, "{\"drain\":false}");
	CHECK_EQ_INT(rw_reply_decode(buf.data, buf.len, &b, err, sizeof(err)), 0);
	CHECK_EQ_INT(b.proxy_expected, -1);
	CHECK(b.serve_config == NULL && !b.has_submit && b.heartbeat_ms == 0);
	CHECK(b.submit.num_cpus < 0 && b.submit.num_gpus < 0 && b.submit.memory < 0);
	CHECK(rw_reply_equal(&a, &b));
	rw_reply_fini(&b);

	/* proxy_expected 0 is "no proxy expected", not "unknown". */
	a.proxy_expected = 0;
	rw_buf_reset(&buf);
	CHECK_EQ_INT(rw_reply_encode(&a, &buf), 0);
	CHECK_EQ_STR(buf.data, "{\"drain\":false,\"proxy_expected\":false}");
	CHECK_EQ_INT(rw_reply_decode(buf.data, buf.len, &b, err, sizeof(err)), 0);
	CHECK_EQ_INT(b.proxy_expected, 0);
	rw_reply_fini(&b);
	rw_buf_fini(&buf);
}

struct bad_case {
	const char *json;
	const char *err_part;
};

static void
t_report_rejects(void)
{
	static const struct bad_case cases[] = {
	    {"", "invalid JSON"},
	    {"{", "invalid JSON"},
	    {"[]", "payload: must be a JSON object"},
	    {"{\"pod\":\"p\"}", "namespace: missing"},
	    {"{\"namespace\":\"n\"}", "pod: missing"},
	    {"{\"namespace\":\"n\",\"pod\":\"\"}", "pod: must not be empty"},
	    {"{\"namespace\":\"n\",\"pod\":5}", "pod: must be a string"},
	    {"{\"namespace\":\"n\",\"pod\":null}", "pod: must be a string"},
	    {"{\"namespace\":\"n\",\"pod\":\"a\\u0000b\"}", "pod: invalid string escape"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"ready\":\"yes\"}",
	     "ready: must be true or false"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"live\":1}", "live: must be true or false"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"node_type\":\"leader\"}", "node_type: must be"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"node_type\":\"worker-1\"}", "node_type: longer"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"probes\":[]}", "probes: must be an object"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"probes\":{\"raylet\":{}}}",
	     "probes.raylet.state: missing"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"probes\":{\"gcs\":{\"state\":\"bogus\"}}}",
	     "probes.gcs.state: unknown probe state \"bogus\""},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"probes\":{\"gcs\":{\"state\":\"OK\"}}}",
	     "probes.gcs.state: unknown probe state"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"probes\":{\"proxy\":{\"state\":\"ok\","
	     "\"since_ms\":1.5}}}",
	     "probes.proxy.since_ms: must be an integer"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"probes\":{\"proxy\":{\"state\":\"ok\","
	     "\"since_ms\":-1}}}",
	     "probes.proxy.since_ms: must be an integer"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"serve\":[]}", "serve: must be an object"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"serve\":{\"apps\":{}}}",
	     "serve.apps: must be an array"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"serve\":{\"apps\":[\"a\"]}}",
	     "serve.apps: element 0 must be an object"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"serve\":{\"apps\":[{\"name\":\"a\"},{}]}}",
	     "serve.apps[1].name: missing"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"serve\":{\"apps\":[{\"name\":\"a\","
	     "\"deployments\":[{\"name\":\"d\"},{\"name\":\"e\",\"replicas_running\":\"3\"}]}]}}",
	     "serve.apps[0].deployments[1].replicas_running: must be an integer"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"serve\":{\"nodes\":[{\"node_id\":\"x\","
	     "\"replicas\":-1}]}}",
	     "serve.nodes[0].replicas: must be an integer in 0..2147483647"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"serve\":{\"nodes\":[{\"node_id\":\"x\","
	     "\"replicas\":2147483648}]}}",
	     "serve.nodes[0].replicas"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"serve\":{\"api\":{\"state\":\"ok\"},"
	     "\"proxy_location\":\"EveryNodeAndMore\"}}",
	     "serve.proxy_location: longer than 15 bytes"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"jobs\":{}}", "jobs: must be an array"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"jobs\":[{\"submission_id\":\"j\","
	     "\"start_time_ms\":99999999999999999999}]}",
	     "jobs[0].start_time_ms: must be an integer"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"jobs\":[{\"submission_id\":\"j\","
	     "\"status\":\"SUCCEEDED-AND-MORE\"}]}",
	     "jobs[0].status: longer than 15 bytes"},
	    {"{\"namespace\":\"n\",\"pod\":\"p\",\"serve_config_hash\":true}",
	     "serve_config_hash: must be a string"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_report r;
		char err[256];
		memset(&r, 0x5a, sizeof(r));
		int rv =
		    rw_report_decode(cases[i].json, strlen(cases[i].json), &r, err, sizeof(err));
		if (rv != -EINVAL || !strstr(err, cases[i].err_part))
			fprintf(stderr, "  case %zu: rv %d err '%s', want '%s'\n", i, rv, err,
				cases[i].err_part);
		CHECK_EQ_INT(rv, -EINVAL);
		CHECK(strstr(err, cases[i].err_part) != NULL);
		/* Failure leaves an empty struct with no allocation. */
		CHECK(r.apps == NULL && r.nodes == NULL && r.jobs == NULL && r.napps == 0);
		CHECK(r.pod[0] == '\0');
	}
}

static void
t_reply_rejects(void)
{
	static const struct bad_case cases[] = {
	    {"null", "payload: must be a JSON object"},
	    {"{\"drain\":\"true\"}", "drain: must be true or false"},
	    {"{\"proxy_expected\":null}", "proxy_expected: must be true or false"},
	    {"{\"heartbeat_ms\":-1}", "heartbeat_ms: must be an integer in 0..4294967295"},
	    {"{\"heartbeat_ms\":4294967296}", "heartbeat_ms: must be an integer"},
	    {"{\"heartbeat_ms\":1e3}", "heartbeat_ms: must be an integer"},
	    {"{\"serve_config\":{\"applications\":[]}}",
	     "serve_config: must be a string holding a JSON object"},
	    {"{\"serve_config\":\"[1,2]\"}", "serve_config: must hold a JSON object"},
	    {"{\"serve_config\":\"{bad\"}", "serve_config: must hold a JSON object"},
	    {"{\"serve_config\":\"\"}", "serve_config: must hold a JSON object"},
	    {"{\"stop_job\":[\"a\"]}", "stop_job: must be a string"},
	    {"{\"submit_job\":true}", "submit_job: must be an object"},
	    {"{\"submit_job\":{\"entrypoint\":\"x\"}}", "submit_job.submission_id: missing"},
	    {"{\"submit_job\":{\"submission_id\":\"j\"}}", "submit_job.entrypoint: missing"},
	    {"{\"submit_job\":{\"submission_id\":\"j\",\"entrypoint\":\"\"}}",
	     "submit_job.entrypoint: must not be empty"},
	    {"{\"submit_job\":{\"submission_id\":\"j\",\"entrypoint\":\"x\","
	     "\"runtime_env_json\":\"{\\\"pip\\\":[]}\",\"metadata_json\":\"nope\"}}",
	     "submit_job.metadata_json: must hold a JSON object"},
	    {"{\"submit_job\":{\"submission_id\":\"j\",\"entrypoint\":\"x\","
	     "\"entrypoint_num_cpus\":-0.5}}",
	     "submit_job.entrypoint_num_cpus: must be a finite number >= 0"},
	    {"{\"submit_job\":{\"submission_id\":\"j\",\"entrypoint\":\"x\","
	     "\"entrypoint_num_gpus\":1e400}}",
	     "submit_job.entrypoint_num_gpus"},
	    {"{\"submit_job\":{\"submission_id\":\"j\",\"entrypoint\":\"x\","
	     "\"entrypoint_memory\":1.5}}",
	     "submit_job.entrypoint_memory: must be an integer"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_reply r;
		char err[256];
		memset(&r, 0x5a, sizeof(r));
		int rv =
		    rw_reply_decode(cases[i].json, strlen(cases[i].json), &r, err, sizeof(err));
		if (rv != -EINVAL || !strstr(err, cases[i].err_part))
			fprintf(stderr, "  case %zu: rv %d err '%s', want '%s'\n", i, rv, err,
				cases[i].err_part);
		CHECK_EQ_INT(rv, -EINVAL);
		CHECK(strstr(err, cases[i].err_part) != NULL);
		CHECK(r.serve_config == NULL && r.submit.entrypoint == NULL &&
		      r.submit.runtime_env_json == NULL && r.submit.metadata_json == NULL);
		CHECK_EQ_INT(r.proxy_expected, -1);
		CHECK_EQ_INT(r.has_submit, 0);
	}
}

static void
t_unknown_keys_ignored(void)
{
	static const char rep[] =
	    "{\"future_top\":{\"a\":[1,2,{\"b\":null}]},\"namespace\":\"n\",\"pod\":\"p\","
	    "\"probes\":{\"raylet\":{\"state\":\"ok\",\"new\":1},\"dashboard\":{\"state\":\"x\"}},"
	    "\"serve\":{\"extra\":true,\"apps\":[{\"name\":\"a\",\"x\":\"y\",\"deployments\":"
	    "[{\"name\":\"d\",\"zz\":[]}]}],\"nodes\":[{\"node_id\":\"n1\",\"gpu\":0}]},"
	    "\"jobs\":[{\"submission_id\":\"j\",\"driver\":{}}],\"z\":null}";
	static const char rpl[] = "{\"drain\":true,\"new_command\":{\"x\":1},\"submit_job\":"
				  "{\"submission_id\":\"j\",\"entrypoint\":\"e\",\"later\":[]}}";
	struct rw_report r;
	struct rw_reply q;
	char err[256];
	int rv = rw_report_decode(rep, sizeof(rep) - 1, &r, err, sizeof(err));
	if (rv)
		fprintf(stderr, "  report: %s\n", err);
	CHECK_EQ_INT(rv, 0);
	if (rv == 0) {
		CHECK_EQ_INT(r.raylet.state, RW_PROBE_OK);
		CHECK_EQ_INT(r.napps, 1);
		CHECK_EQ_INT(r.apps[0].ndeps, 1);
		CHECK_EQ_STR(r.apps[0].deps[0].name, "d");
		CHECK_EQ_INT(r.nnodes, 1);
		CHECK_EQ_INT(r.njobs, 1);
		rw_report_fini(&r);
	}
	rv = rw_reply_decode(rpl, sizeof(rpl) - 1, &q, err, sizeof(err));
	if (rv)
		fprintf(stderr, "  reply: %s\n", err);
	CHECK_EQ_INT(rv, 0);
	CHECK_EQ_INT(q.drain, 1);
	CHECK_EQ_INT(q.has_submit, 1);
	CHECK_EQ_STR(q.submit.entrypoint, "e");
	rw_reply_fini(&q);
}

/* Build a report JSON text with n elements in one array. */
static void
array_json(struct rw_buf *b, const char *where, int n)
{
	rw_buf_reset(b);
	rw_buf_puts(b, "{\"namespace\":\"n\",\"pod\":\"p\",");
	if (strcmp(where, "jobs") == 0) {
		rw_buf_puts(b, "\"jobs\":[");
		for (int i = 0; i < n; i++)
			rw_buf_printf(b, "%s{\"submission_id\":\"j%d\"}", i ? "," : "", i);
		rw_buf_puts(b, "]}");
	} else if (strcmp(where, "apps") == 0) {
		rw_buf_puts(b, "\"serve\":{\"apps\":[");
		for (int i = 0; i < n; i++)
			rw_buf_printf(b, "%s{\"name\":\"a%d\"}", i ? "," : "", i);
		rw_buf_puts(b, "]}}");
	} else if (strcmp(where, "deps") == 0) {
		rw_buf_puts(b, "\"serve\":{\"apps\":[{\"name\":\"a\",\"deployments\":[");
		for (int i = 0; i < n; i++)
			rw_buf_printf(b, "%s{\"name\":\"d%d\"}", i ? "," : "", i);
		rw_buf_puts(b, "]}]}}");
	} else {
		rw_buf_puts(b, "\"serve\":{\"nodes\":[");
		for (int i = 0; i < n; i++)
			rw_buf_printf(b, "%s{\"node_id\":\"n%d\",\"replicas\":%d}", i ? "," : "", i,
				      i);
		rw_buf_puts(b, "]}}");
	}
}

static void
t_limits(void)
{
	static const struct {
		const char *where;
		int max;
		const char *err;
	} arrays[] = {
	    {"jobs", RW_MAX_JOBS, "jobs: more than 64 entries"},
	    {"apps", RW_MAX_APPS, "serve.apps: more than 64 entries"},
	    {"deps", RW_MAX_DEPS, "serve.apps[0].deployments: more than 64 entries"},
	    {"nodes", RW_MAX_NODES, "serve.nodes: more than 4096 entries"},
	};
	struct rw_buf b, enc;
	struct rw_report r, r2;
	char err[256];
	rw_buf_init(&b, RW_WIRE_MAX_MSG);
	rw_buf_init(&enc, RW_WIRE_MAX_MSG);
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		array_json(&b, arrays[i].where, arrays[i].max);
		int rv = rw_report_decode(b.data, b.len, &r, err, sizeof(err));
		if (rv)
			fprintf(stderr, "  %s at max: %s\n", arrays[i].where, err);
		CHECK_EQ_INT(rv, 0);
		/* The full array survives encode + decode. */
		rw_buf_reset(&enc);
		CHECK_EQ_INT(rw_report_encode(&r, &enc), 0);
		CHECK_EQ_INT(rw_report_decode(enc.data, enc.len, &r2, err, sizeof(err)), 0);
		CHECK(rw_report_equal(&r, &r2));
		rw_report_fini(&r2);
		rw_report_fini(&r);
		array_json(&b, arrays[i].where, arrays[i].max + 1);
		CHECK_EQ_INT(rw_report_decode(b.data, b.len, &r, err, sizeof(err)), -EINVAL);
		CHECK_EQ_STR(err, arrays[i].err);
	}

	/* Identifiers: exactly the field size - 1 fits, one more is refused. */
	char pod[300];
	memset(pod, 'p', sizeof(pod));
	for (int extra = 0; extra <= 1; extra++) {
		rw_buf_reset(&b);
		rw_buf_printf(&b, "{\"namespace\":\"n\",\"pod\":\"%.*s\"}",
			      (int)sizeof(r.pod) - 1 + extra, pod);
		int rv = rw_report_decode(b.data, b.len, &r, err, sizeof(err));
		CHECK_EQ_INT(rv, extra ? -EINVAL : 0);
		if (extra)
			CHECK_EQ_STR(err, "pod: longer than 253 bytes");
		else
			CHECK_EQ_INT(strlen(r.pod), sizeof(r.pod) - 1);
		rw_report_fini(&r);
	}

	/* Free text is cut at a UTF-8 boundary: 300 x U+00E9 (2 bytes) into 511 bytes. */
	rw_buf_reset(&b);
	rw_buf_puts(&b, "{\"namespace\":\"n\",\"pod\":\"p\",\"jobs\":[{\"submission_id\":\"j\","
			"\"message\":\"");
	for (int i = 0; i < 300; i++)
		rw_buf_puts(&b, "\xc3\xa9");
	rw_buf_puts(&b, "\"}],\"ready_reason\":\"");
	for (int i = 0; i < 100; i++)
		rw_buf_puts(&b, "\\u20ac"); /* U+20AC, 3 bytes each, escaped */
	rw_buf_puts(&b, "\"}");
	CHECK_EQ_INT(rw_report_decode(b.data, b.len, &r, err, sizeof(err)), 0);
	if (r.njobs == 1) {
		CHECK_EQ_INT(strlen(r.jobs[0].message), 510);
		CHECK((unsigned char)r.jobs[0].message[508] == 0xc3);
	}
	CHECK_EQ_INT(strlen(r.ready_reason), 159); /* 53 x 3 bytes, under 160 */
	CHECK((unsigned char)r.ready_reason[156] == 0xe2);
	/* Truncated text round-trips unchanged. */
	rw_buf_reset(&enc);
	CHECK_EQ_INT(rw_report_encode(&r, &enc), 0);
	CHECK_EQ_INT(rw_report_decode(enc.data, enc.len, &r2, err, sizeof(err)), 0);
	CHECK(rw_report_equal(&r, &r2));
	rw_report_fini(&r2);
	rw_report_fini(&r);

	/* Encoding past the buffer's limit fails and leaves what was there. */
	struct rw_buf small;
	rw_buf_init(&small, 64);
	rw_buf_puts(&small, "keep");
	fill_report(&r);
	CHECK_EQ_INT(rw_report_encode(&r, &small), -EMSGSIZE);
	CHECK_EQ_STR(rw_buf_cstr(&small), "keep");
	rw_report_fini(&r);
	struct rw_reply q;
	fill_reply(&q);
	CHECK_EQ_INT(rw_reply_encode(&q, &small), -EMSGSIZE);
	CHECK_EQ_STR(rw_buf_cstr(&small), "keep");
	rw_reply_fini(&q);
	rw_buf_fini(&small);

	/* A payload that could never be sealed is refused by the encoder. */
	fill_reply(&q);
	free(q.serve_config);
	q.serve_config = malloc(RW_WIRE_MAX_MSG);
	memset(q.serve_config, ' ', RW_WIRE_MAX_MSG - 1);
	q.serve_config[0] = '{';
	q.serve_config[RW_WIRE_MAX_MSG - 2] = '}';
	q.serve_config[RW_WIRE_MAX_MSG - 1] = '\0';
	struct rw_buf huge;
	rw_buf_init(&huge, 4 * RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_reply_encode(&q, &huge), -EMSGSIZE);
	CHECK_EQ_INT(huge.len, 0);
	rw_buf_fini(&huge);
	rw_reply_fini(&q);
	rw_buf_fini(&enc);
	rw_buf_fini(&b);
}

/* ---- fuzz seeds ---- */

/*
 * The seeds of tests/fuzz/corpus/fuzz_wire/ are sealed messages made here
 * with TEST_KEY. With RW_WIRE_WRITE_CORPUS=<dir> this case writes them;
 * otherwise it checks that the committed files are exactly what it makes
 * (under RW_SOURCE_DIR), so the corpus never goes stale.
 */
static int
make_seed(int which, struct rw_buf *sealed)
{
	struct rw_wire_key k;
	struct rw_wire_hdr h = sample_hdr();
	struct rw_buf payload;
	struct rw_report rep;
	struct rw_reply rpl;
	int rv = 0;

	test_key(&k);
	rw_buf_init(&payload, RW_WIRE_MAX_MSG);
	h.type = RW_WIRE_REPORT;
	switch (which) {
	case 0:
		fill_report(&rep);
		rv = rw_report_encode(&rep, &payload);
		rw_report_fini(&rep);
		break;
	case 1:
		memset(&rep, 0, sizeof(rep));
		snprintf(rep.ns, sizeof(rep.ns), "default");
		snprintf(rep.pod, sizeof(rep.pod), "raycluster-kuberay-worker-small-group-7x2q");
		snprintf(rep.node_type, sizeof(rep.node_type), "worker");
		snprintf(rep.group, sizeof(rep.group), "small-group");
		rep.rayservice = 1;
		rep.live = 1;
		snprintf(rep.ready_reason, sizeof(rep.ready_reason), "proxy absent");
		rep.raylet = (struct rw_probe){RW_PROBE_OK, "", 10};
		rep.proxy = (struct rw_probe){RW_PROBE_ABSENT, "connection refused", 11};
		rv = rw_report_encode(&rep, &payload);
		break;
	case 2:
		h.type = RW_WIRE_REPLY;
		fill_reply(&rpl);
		rv = rw_reply_encode(&rpl, &payload);
		rw_reply_fini(&rpl);
		break;
	case 3:
		h.type = RW_WIRE_REPLY;
		memset(&rpl, 0, sizeof(rpl));
		rpl.proxy_expected = 0;
		rpl.heartbeat_ms = 1000;
		snprintf(rpl.stop_job, sizeof(rpl.stop_job), "job-1");
		rv = rw_reply_encode(&rpl, &payload);
		break;
	}
	if (rv == 0)
		rv = rw_wire_seal(&k, &h, payload.data, payload.len, sealed);
	rw_buf_fini(&payload);
	return rv;
}

/* ---- job details, log tails, watch_jobs (fields added within v1) ---- */

static void
job_report(struct rw_report *r, int njobs)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->ns, sizeof(r->ns), "default");
	snprintf(r->pod, sizeof(r->pod), "rayjob-head");
	snprintf(r->node_type, sizeof(r->node_type), "head");
	r->njobs = njobs;
	r->jobs = calloc((size_t)njobs, sizeof(*r->jobs));
	for (int i = 0; i < njobs; i++)
		snprintf(r->jobs[i].submission_id, sizeof(r->jobs[i].submission_id), "job-%d", i);
}

static void
t_job_fields(void)
{
	struct rw_report a, b;
	struct rw_buf buf;
	char err[256];
	static char tail[] = "line 1\n\tcaf\xc3\xa9 \"q\" \\\nValueError: boom\n";

	job_report(&a, 2);
	struct rw_job *x = &a.jobs[0];
	snprintf(x->status, sizeof(x->status), "FAILED");
	snprintf(x->error_type, sizeof(x->error_type), "JOB_ENTRYPOINT_COMMAND_ERROR");
	x->has_exit_code = 1;
	x->driver_exit_code = -9;
	snprintf(x->last_error_line, sizeof(x->last_error_line), "ValueError: boom");
	snprintf(x->log_error, sizeof(x->log_error), "log not read to its end within 10 s");
	x->log_truncated = 1;
	x->log_tail = tail;
	a.jobs[1].has_exit_code = 1; /* exit code 0 is a value, not "absent" */
	rw_buf_init(&buf, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_report_encode(&a, &buf), 0);
	CHECK(strstr(buf.data, "\"driver_exit_code\":-9") != NULL);
	CHECK(strstr(buf.data, "\"driver_exit_code\":0") != NULL);
	CHECK(strstr(buf.data, "\"log_truncated\":true") != NULL);
	int rv = rw_report_decode(buf.data, buf.len, &b, err, sizeof(err));
	if (rv)
		fprintf(stderr, "  decode: %s\n", err);
	CHECK_EQ_INT(rv, 0);
	CHECK(rw_report_equal(&a, &b));
	if (rv == 0) {
		CHECK_EQ_STR(b.jobs[0].log_tail, tail);
		CHECK_EQ_STR(b.jobs[0].error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
		CHECK_EQ_INT(b.jobs[0].driver_exit_code, -9);
		CHECK(b.jobs[1].has_exit_code && b.jobs[1].driver_exit_code == 0);
		CHECK(b.jobs[1].log_tail == NULL);
		/* Equality sees the tail's text, not its address. */
		b.jobs[0].log_tail[0] = 'X';
		CHECK(!rw_report_equal(&a, &b));
		b.jobs[0].log_tail[0] = 'l';
		CHECK(rw_report_equal(&a, &b));
		b.jobs[0].log_tail = NULL;
		CHECK(!rw_report_equal(&a, &b));
		b.jobs[0].driver_exit_code = 2;
		CHECK(!rw_report_equal(&a, &b));
	}
	rw_report_fini(&b);
	/* An old report (none of the new keys) decodes with them unset. */
	rv = rw_report_decode(
	    "{\"namespace\":\"n\",\"pod\":\"p\",\"jobs\":[{\"submission_id\":"
	    "\"j\",\"status\":\"RUNNING\"}]}",
	    strlen("{\"namespace\":\"n\",\"pod\":\"p\",\"jobs\":[{\"submission_id\":"
		   "\"j\",\"status\":\"RUNNING\"}]}"),
	    &b, err, sizeof(err));
	CHECK_EQ_INT(rv, 0);
	if (rv == 0)
		CHECK(!b.jobs[0].has_exit_code && !b.jobs[0].log_tail && !b.jobs[0].log_truncated &&
		      !b.jobs[0].error_type[0]);
	rw_report_fini(&b);
	rw_report_fini(&a);
	rw_buf_fini(&buf);
}

/* A tail over RW_LOG_TAIL_MAX decodes to its last bytes, cut at a character boundary. */
static void
t_job_tail_cap(void)
{
	struct rw_report a, b;
	struct rw_buf buf;
	char err[256];
	size_t n = RW_LOG_TAIL_MAX + 1001;
	char *tail = malloc(n + 1);
	/* 'é' (2 bytes) everywhere, so the cut point falls inside one. */
	for (size_t i = 0; i + 1 < n; i += 2) {
		tail[i] = (char)0xc3;
		tail[i + 1] = (char)0xa9;
	}
	memcpy(tail + n - 4, "END\n", 4);
	tail[n] = '\0';
	job_report(&a, 1);
	a.jobs[0].log_tail = tail;
	rw_buf_init(&buf, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_report_encode(&a, &buf), 0);
	int rv = rw_report_decode(buf.data, buf.len, &b, err, sizeof(err));
	CHECK_EQ_INT(rv, 0);
	if (rv == 0) {
		size_t m = strlen(b.jobs[0].log_tail);
		CHECK(m <= RW_LOG_TAIL_MAX && m >= RW_LOG_TAIL_MAX - 3);
		CHECK(((unsigned char)b.jobs[0].log_tail[0] & 0xC0) != 0x80);
		CHECK(strcmp(b.jobs[0].log_tail + m - 4, "END\n") == 0);
		CHECK(!rw_report_equal(&a, &b));
	}
	rw_report_fini(&b);
	/* Worst case for JSON: a tail of control characters (6 bytes each) still fits
	 * one message beside a full report's other jobs. */
	memset(tail, 1, RW_LOG_TAIL_MAX);
	tail[RW_LOG_TAIL_MAX] = '\0';
	rw_buf_reset(&buf);
	CHECK_EQ_INT(rw_report_encode(&a, &buf), 0);
	CHECK(buf.len < RW_WIRE_MAX_MSG / 2);
	rv = rw_report_decode(buf.data, buf.len, &b, err, sizeof(err));
	CHECK_EQ_INT(rv, 0);
	CHECK(rw_report_equal(&a, &b));
	rw_report_fini(&b);
	/* ... but not four of them: the agent limits the tails of one report. */
	free(a.jobs);
	job_report(&a, 4);
	for (int i = 0; i < 4; i++)
		a.jobs[i].log_tail = tail;
	rw_buf_reset(&buf);
	CHECK_EQ_INT(rw_report_encode(&a, &buf), -EMSGSIZE);
	CHECK_EQ_INT(buf.len, 0);
	rw_report_fini(&a);
	rw_buf_fini(&buf);
	free(tail);
}

static void
t_job_rejects(void)
{
	static const struct {
		const char *jobs, *want;
	} cases[] = {
	    {"[{\"submission_id\":\"j\",\"driver_exit_code\":1.5}]",
	     "jobs[0].driver_exit_code: must be an integer"},
	    {"[{\"submission_id\":\"j\",\"driver_exit_code\":4294967296}]",
	     "jobs[0].driver_exit_code: must be an integer"},
	    {"[{\"submission_id\":\"j\",\"driver_exit_code\":null}]",
	     "jobs[0].driver_exit_code: must be an integer"},
	    {"[{\"submission_id\":\"j\",\"log_tail\":5}]", "jobs[0].log_tail: must be a string"},
	    {"[{\"submission_id\":\"j\",\"log_tail\":\"a\\u0000b\"}]",
	     "jobs[0].log_tail: invalid string escape"},
	    {"[{\"submission_id\":\"j\",\"log_truncated\":1}]",
	     "jobs[0].log_truncated: must be true or false"},
	    {"[{\"submission_id\":\"j\",\"error_type\":\"0123456789012345678901234567890123456789"
	     "012345678901234567890123\"}]",
	     "jobs[0].error_type: longer than 63 bytes"},
	};
	char js[512], err[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_report r;
		snprintf(js, sizeof(js), "{\"namespace\":\"n\",\"pod\":\"p\",\"jobs\":%s}",
			 cases[i].jobs);
		CHECK_EQ_INT(rw_report_decode(js, strlen(js), &r, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].want))
			fprintf(stderr, "  case %zu: %s\n", i, err);
		CHECK(strstr(err, cases[i].want) != NULL);
		CHECK(r.jobs == NULL && r.njobs == 0);
	}
}

static void
t_watch_jobs(void)
{
	struct rw_reply a, b;
	struct rw_buf buf;
	char err[256], js[16384];

	memset(&a, 0, sizeof(a));
	a.proxy_expected = -1;
	a.submit.num_cpus = a.submit.num_gpus = -1;
	a.submit.memory = -1;
	rw_buf_init(&buf, RW_WIRE_MAX_MSG);
	/* None: the key is left out, so steady-state replies stay as small as before. */
	CHECK_EQ_INT(rw_reply_encode(&a, &buf), 0);
	CHECK(strstr(buf.data, "watch_jobs") == NULL);
	a.nwatch = RW_MAX_JOBS;
	for (int i = 0; i < RW_MAX_JOBS; i++)
		snprintf(a.watch_jobs[i], sizeof(a.watch_jobs[i]), "rayjob-%d-\xc3\xa9", i);
	rw_buf_reset(&buf);
	CHECK_EQ_INT(rw_reply_encode(&a, &buf), 0);
	int rv = rw_reply_decode(buf.data, buf.len, &b, err, sizeof(err));
	CHECK_EQ_INT(rv, 0);
	CHECK(rw_reply_equal(&a, &b));
	CHECK_EQ_INT(b.nwatch, RW_MAX_JOBS);
	CHECK_EQ_STR(b.watch_jobs[63], "rayjob-63-\xc3\xa9");
	snprintf(b.watch_jobs[5], sizeof(b.watch_jobs[5]), "other");
	CHECK(!rw_reply_equal(&a, &b));
	rw_reply_fini(&b);

	/* One too many, an empty id, a non-string, an over-long id. */
	size_t o = (size_t)snprintf(js, sizeof(js), "{\"watch_jobs\":[");
	for (int i = 0; i <= RW_MAX_JOBS; i++)
		o += (size_t)snprintf(js + o, sizeof(js) - o, "%s\"j%d\"", i ? "," : "", i);
	snprintf(js + o, sizeof(js) - o, "]}");
	CHECK_EQ_INT(rw_reply_decode(js, strlen(js), &b, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "watch_jobs: more than 64 entries") != NULL);
	CHECK_EQ_INT(b.nwatch, 0);
	static const char *const bad[][2] = {
	    {"{\"watch_jobs\":[\"a\",\"\"]}", "watch_jobs[1]: must not be empty"},
	    {"{\"watch_jobs\":[1]}", "watch_jobs[0]: must be a string"},
	    {"{\"watch_jobs\":\"a\"}", "watch_jobs: must be an array"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(rw_reply_decode(bad[i][0], strlen(bad[i][0]), &b, err, sizeof(err)),
			     -EINVAL);
		CHECK(strstr(err, bad[i][1]) != NULL);
		CHECK_EQ_INT(b.nwatch, 0);
	}
	snprintf(js, sizeof(js), "{\"watch_jobs\":[\"%0128d\"]}", 0);
	CHECK_EQ_INT(rw_reply_decode(js, strlen(js), &b, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "watch_jobs[0]: longer than 127 bytes") != NULL);
	rw_buf_fini(&buf);
}

static void
t_fuzz_seeds(void)
{
	static const char *const names[] = {"report_head_full", "report_worker", "reply_full",
					    "reply_small"};
	const char *outdir = getenv("RW_WIRE_WRITE_CORPUS");
	const char *src = getenv("RW_SOURCE_DIR");
	struct rw_wire_key k;
	char path[1024], err[256];

	test_key(&k);
	for (int i = 0; i < 4; i++) {
		struct rw_buf b;
		struct rw_wire_hdr h;
		const char *payload;
		rw_buf_init(&b, RW_WIRE_MAX_MSG);
		CHECK_EQ_INT(make_seed(i, &b), 0);
		/* Every seed opens and decodes. */
		CHECK_EQ_INT(rw_wire_open(&k, b.data, b.len, &h, &payload), 0);
		if (h.type == RW_WIRE_REPORT) {
			struct rw_report r;
			CHECK_EQ_INT(rw_report_decode(payload, h.len, &r, err, sizeof(err)), 0);
			rw_report_fini(&r);
		} else {
			struct rw_reply r;
			CHECK_EQ_INT(rw_reply_decode(payload, h.len, &r, err, sizeof(err)), 0);
			rw_reply_fini(&r);
		}
		if (outdir && *outdir) {
			snprintf(path, sizeof(path), "%s/%s", outdir, names[i]);
			write_file(path, b.data, b.len);
		} else if (src && *src) {
			snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fuzz_wire/%s", src,
				 names[i]);
			FILE *f = fopen(path, "rb");
			CHECK(f != NULL);
			if (f) {
				char *have = malloc(b.len + 1);
				size_t got = have ? fread(have, 1, b.len + 1, f) : 0;
				if (got != b.len || memcmp(have, b.data, b.len) != 0)
					fprintf(
					    stderr,
					    "  %s is stale: regenerate with "
					    "RW_WIRE_WRITE_CORPUS=tests/fuzz/corpus/fuzz_wire\n",
					    path);
				CHECK(got == b.len && memcmp(have, b.data, b.len) == 0);
				free(have);
				fclose(f);
			}
		}
		rw_buf_fini(&b);
	}
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
	    {"report round trip", t_report_round_trip},
	    {"report minimal", t_report_minimal},
	    {"reply round trip", t_reply_round_trip},
	    {"report rejects", t_report_rejects},
	    {"reply rejects", t_reply_rejects},
	    {"unknown keys ignored", t_unknown_keys_ignored},
	    {"limits", t_limits},
	    {"job fields", t_job_fields},
	    {"job log tail cap", t_job_tail_cap},
	    {"job rejects", t_job_rejects},
	    {"watch_jobs", t_watch_jobs},
	    {"fuzz seeds", t_fuzz_seeds},
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

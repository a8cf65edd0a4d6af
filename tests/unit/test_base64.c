/* test_base64.c - RFC 4648 vectors, decoding rules and bounds. */
#include <errno.h>

#include "rw/base64.h"
#include "rwtest.h"

static void
t_encode_vectors(void)
{
	static const struct {
		const char *in;
		size_t n;
		const char *want;
	} cases[] = {
	    {"", 0, ""},
	    {"f", 1, "Zg=="},
	    {"fo", 2, "Zm8="},
	    {"foo", 3, "Zm9v"},
	    {"foob", 4, "Zm9vYg=="},
	    {"fooba", 5, "Zm9vYmE="},
	    {"foobar", 6, "Zm9vYmFy"},
	    {"\xff\xfe\xfd", 3, "//79"},
	    {"\x00\x00\x00", 3, "AAAA"},
	    {"\xfb\xff", 2, "+/8="},
	    {"\x00", 1, "AA=="},
	    {"\x14\xfb\x9c\x03\xd9\x7e", 6, "FPucA9l+"},
	};
	char out[64];
	unsigned char back[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = rw_base64_encode(cases[i].in, cases[i].n, out, sizeof(out));
		CHECK_EQ_INT(n, (int)strlen(cases[i].want));
		CHECK_EQ_INT(rw_base64_len(cases[i].n), strlen(cases[i].want));
		CHECK_EQ_STR(out, cases[i].want);
		long m = rw_base64_decode(out, (size_t)n, back, sizeof(back));
		CHECK_EQ_INT(m, (long)cases[i].n);
		CHECK(m < 0 || memcmp(back, cases[i].in, cases[i].n) == 0);
	}
	/* Exactly enough room (with the NUL), and one byte less. */
	CHECK_EQ_INT(rw_base64_encode("foob", 4, out, 9), 8);
	CHECK_EQ_INT(rw_base64_encode("foob", 4, out, 8), -ENOSPC);
	CHECK_EQ_INT(rw_base64_encode("f", 1, NULL, 0), -ENOSPC);
}

static void
t_decode_rules(void)
{
	static const struct {
		const char *in;
		const char *out;
		long len;
	} cases[] = {
	    {"", "", 0},
	    {"Zg==", "f", 1},
	    {"Zm9vYg", "foob", 4}, /* padding optional */
	    {"cGFzc3dvcmQ=", "password", 8},
	    {"aGVs\nbG8", "hello", 5}, /* line breaks ignored, as in Go */
	    {"aGVs\r\nbG8=", "hello", 5},
	    {"Zm9v!", NULL, -EINVAL},
	    {"Z", NULL, -EINVAL},	  /* 6 bits: not a byte */
	    {"Zm 9v", NULL, -EINVAL},	  /* spaces are not ignored */
	    {"aGVsbG8=x", NULL, -EINVAL}, /* data after padding */
	    {"Zg===", NULL, -EINVAL},
	    {"a", NULL, -EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char out[64];
		long n = rw_base64_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out) - 1);
		CHECK_EQ_INT(n, cases[i].len);
		if (n >= 0) {
			out[n] = '\0';
			CHECK_EQ_STR((char *)out, cases[i].out);
		}
	}
	unsigned char small[2];
	CHECK_EQ_INT(rw_base64_decode("Zm9v", 4, small, sizeof(small)), -ENOSPC);
	unsigned char bin[4];
	CHECK_EQ_INT(rw_base64_decode("/wAK", 4, bin, sizeof(bin)), 3);
	CHECK(bin[0] == 0xff && bin[1] == 0 && bin[2] == 0x0a);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"encode vectors and round trip", t_encode_vectors},
	    {"decode rules", t_decode_rules},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

/* test_json.c - strict JSON parser, accessors, unescaping, numbers and writer. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "rw/json.h"
#include "rw/text.h"
#include "rwtest.h"

#define S(lit) lit, sizeof(lit) - 1

struct text_case {
	const char *js;
	size_t len;
	int ntok; /* expected token count for valid cases */
};

static void
t_valid(void)
{
	static const struct text_case cases[] = {
	    {S("{}"), 1},
	    {S("[]"), 1},
	    {S(" \t\r\n{ } \n"), 1},
	    {S("0"), 1},
	    {S("-0"), 1},
	    {S("-0.0e-0"), 1},
	    {S("123"), 1},
	    {S(" 1.5E+10 "), 1},
	    {S("true"), 1},
	    {S("false"), 1},
	    {S("null"), 1},
	    {S("\"\""), 1},
	    {S("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\""), 1},
	    {S("{\"a\":1}"), 3},
	    {S("{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}"), 10},
	    {S("[[[[]]]]"), 4},
	    {S("[1,-1,0.5,1e5,1E-5,-0.25e+3]"), 7},
	    {S("{\"\":\"\"}"), 3},
	    {S("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]"), 2},
	    {S("{\"a\":1,\"a\":2}"), 5}, /* duplicates are legal JSON */
	    {S("[true,false,null]"), 4},
	    {S("\"\\ud83d\\ude00\""), 1},
	    {S("\"\\u0000\""), 1}, /* grammar-valid; rw_json_str refuses it */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_json j;
		char err[128] = "";
		int rv = rw_json_parse(&j, cases[i].js, cases[i].len, 1000, err, sizeof(err));
		if (rv != 0)
			fprintf(stderr, "  valid case %zu (%s): %d %s\n", i, cases[i].js, rv, err);
		CHECK_EQ_INT(rv, 0);
		CHECK_EQ_INT(j.ntok, cases[i].ntok);
		rw_json_fini(&j);
	}
}

struct bad_case {
	const char *js;
	size_t len;
	long offset; /* expected byte offset in the message, -1 = do not check */
};

static void
t_invalid(void)
{
	static const struct bad_case cases[] = {
	    /* Everything jsmn would accept on its own. */
	    {S("[1 2]"), 3},
	    {S("{\"a\":1 \"b\":2}"), 7},
	    {S("[1,]"), 3},
	    {S("[1,2,]"), 5},
	    {S("{\"a\":1,}"), 7},
	    {S("[,1]"), 1},
	    {S("tru"), 0},
	    {S("[tru]"), 1},
	    {S("[truex]"), 5},
	    {S("nul"), 0},
	    {S("fals"), 0},
	    {S("1.2.3"), 3},
	    {S("[1.2.3]"), 4},
	    {S("0x10"), 1},
	    {S("[0x10]"), 2},
	    {S("-"), 1},
	    {S("[-]"), 2},
	    {S("1 2"), 2},
	    {S("{} {}"), 3},
	    {S("[] 1"), 3},
	    {S("\"a\x01\""), 2},
	    {S("\"a\nb\""), 2},
	    {S("\"a\tb\""), 2},
	    {S("[\"a\"\x00]"), 4},
	    /* Other syntax errors. */
	    {S("{a:1}"), 1},
	    {S("{\"a\" 1}"), 5},
	    {S("{\"a\":}"), 5},
	    {S("{,}"), 1},
	    {S("{\"a\",1}"), 4},
	    {S("{1:2}"), 1},
	    {S("['a']"), 1},
	    {S("01"), 1},
	    {S("-01"), 2},
	    {S("1."), 2},
	    {S(".5"), 0},
	    {S("1e"), 2},
	    {S("1e+"), 3},
	    {S("+1"), 0},
	    {S("NaN"), 0},
	    {S("Infinity"), 0},
	    {S("-Infinity"), 1},
	    {S("\"\\x\""), 2},
	    {S("\"\\u12\""), 5},
	    {S("\"\\u12G4\""), 5},
	    {S("\"abc"), 4},
	    {S("\"abc\\"), 4},
	    {S("["), 1},
	    {S("{\"a\":1"), 6},
	    {S("[1,[2]"), 6},
	    {S("]"), 0},
	    {S("}"), 0},
	    {S("[}"), 1},
	    {S("{]"), 1},
	    {S("[1}"), 2},
	    {S(""), 0},
	    {S("   "), 3},
	    {S("\"\xff\""), 1},
	    {S("\"\xc0\x80\""), 1},	    /* overlong NUL */
	    {S("\"\xed\xa0\x80\""), 1},	    /* encoded surrogate */
	    {S("\"\xf4\x90\x80\x80\""), 1}, /* above U+10FFFF */
	    {S("\"\xe2\x82\""), 1},	    /* truncated sequence */
	    {S("\xef\xbb\xbf{}"), 0},	    /* BOM */
	    {S("{}\x00"), 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_json j;
		char err[160] = "";
		int rv = rw_json_parse(&j, cases[i].js, cases[i].len, 1000, err, sizeof(err));
		if (rv != -EINVAL)
			fprintf(stderr, "  invalid case %zu (%s) gave %d\n", i, cases[i].js, rv);
		CHECK_EQ_INT(rv, -EINVAL);
		CHECK(j.tok == NULL && j.ntok == 0);
		if (cases[i].offset >= 0) {
			char want[48];
			snprintf(want, sizeof(want), "offset %ld:", cases[i].offset);
			if (!strstr(err, want))
				fprintf(stderr, "  invalid case %zu: want \"%s\" in \"%s\"\n", i,
					want, err);
			CHECK(strstr(err, want) != NULL);
		}
		rw_json_fini(&j);
	}
}

static void
t_depth(void)
{
	char buf[300];
	struct rw_json j;
	char err[128];
	for (int depth = 63; depth <= 66; depth++) {
		size_t n = 0;
		for (int i = 0; i < depth; i++)
			buf[n++] = '[';
		for (int i = 0; i < depth; i++)
			buf[n++] = ']';
		int rv = rw_json_parse(&j, buf, n, 1000, err, sizeof(err));
		CHECK_EQ_INT(rv, depth <= RW_JSON_MAX_DEPTH ? 0 : -EINVAL);
		if (rv == 0)
			CHECK_EQ_INT(j.ntok, depth);
		else
			CHECK(strstr(err, "too deep") != NULL);
		rw_json_fini(&j);
	}
	/* Deep unbalanced input must not recurse or crash. */
	static char deep[100000];
	memset(deep, '[', sizeof(deep));
	CHECK_EQ_INT(rw_json_parse(&j, deep, sizeof(deep), 1000, NULL, 0), -EINVAL);
	memset(deep, '{', sizeof(deep));
	CHECK_EQ_INT(rw_json_parse(&j, deep, sizeof(deep), 1000, NULL, 0), -EINVAL);
}

static void
t_token_growth(void)
{
	struct rw_buf b;
	struct rw_json j;
	char err[128];
	rw_buf_init(&b, 1 << 20);
	rw_buf_putc(&b, '[');
	for (int i = 0; i < 1000; i++)
		rw_buf_printf(&b, "%s%d", i ? "," : "", i);
	rw_buf_putc(&b, ']');
	/* 1001 tokens: the array plus 1000 numbers. */
	CHECK_EQ_INT(rw_json_parse(&j, b.data, b.len, 1000, err, sizeof(err)), -EMSGSIZE);
	CHECK(j.tok == NULL);
	CHECK_EQ_INT(rw_json_parse(&j, b.data, b.len, 1001, err, sizeof(err)), 0);
	CHECK_EQ_INT(j.ntok, 1001);
	CHECK_EQ_INT(rw_json_size(&j, 0), 1000);
	int64_t v = -1;
	CHECK_EQ_INT(rw_json_int(&j, rw_json_at(&j, 0, 999), &v), 0);
	CHECK_EQ_INT(v, 999);
	CHECK_EQ_INT(rw_json_skip(&j, 0), 1001);
	rw_json_fini(&j);
	rw_json_fini(&j); /* twice is fine */
	CHECK_EQ_INT(rw_json_parse(&j, b.data, b.len, 1 << 20, err, sizeof(err)), 0);
	CHECK_EQ_INT(j.ntok, 1001);
	CHECK(j.cap >= 1001 && j.cap <= 2048);
	rw_json_fini(&j);
	/* Small limits. */
	CHECK_EQ_INT(rw_json_parse(&j, S("[1]"), 1, NULL, 0), -EMSGSIZE);
	CHECK_EQ_INT(rw_json_parse(&j, S("[1]"), 2, NULL, 0), 0);
	rw_json_fini(&j);
	CHECK_EQ_INT(rw_json_parse(&j, S("7"), 1, NULL, 0), 0);
	rw_json_fini(&j);
	CHECK_EQ_INT(rw_json_parse(&j, S("[1]"), 0, NULL, 0), -EINVAL);
	rw_buf_fini(&b);
}

static void
t_navigate(void)
{
	static const char doc[] = "{\"metadata\":{\"name\":\"rc\",\"labels\":{\"a.b\":\"x\"}},"
				  "\"spec\":{\"replicas\":3,\"list\":[10,[20,21],{\"k\":30},40]},"
				  "\"dup\":1,\"dup\":2,\"esc\\u0061ped\":true,\"n\":null}";
	struct rw_json j;
	char err[128];
	CHECK_EQ_INT(rw_json_parse(&j, doc, strlen(doc), 256, err, sizeof(err)), 0);
	CHECK_EQ_INT(rw_json_type(&j, 0), RW_JSON_OBJECT);
	CHECK_EQ_INT(rw_json_size(&j, 0), 6);
	int name = rw_json_path(&j, 0, "metadata.name");
	CHECK(rw_json_streq(&j, name, "rc"));
	CHECK(!rw_json_streq(&j, name, "r"));
	CHECK(!rw_json_streq(&j, name, "rcx"));
	CHECK_EQ_INT(rw_json_path(&j, 0, "metadata.nope"), -1);
	CHECK_EQ_INT(rw_json_path(&j, 0, "metadata.name.deeper"), -1);
	CHECK_EQ_INT(rw_json_path(&j, -1, "metadata"), -1);
	CHECK_EQ_INT(rw_json_get(&j, name, "x"), -1); /* not an object */
	int md = rw_json_get(&j, 0, "metadata");
	CHECK_EQ_INT(rw_json_get(&j, rw_json_get(&j, md, "labels"), "a.b"), md + 6);
	int64_t v = 0;
	CHECK_EQ_INT(rw_json_int(&j, rw_json_path(&j, 0, "spec.replicas"), &v), 0);
	CHECK_EQ_INT(v, 3);
	int list = rw_json_path(&j, 0, "spec.list");
	CHECK_EQ_INT(rw_json_type(&j, list), RW_JSON_ARRAY);
	CHECK_EQ_INT(rw_json_size(&j, list), 4);
	CHECK_EQ_INT(rw_json_at(&j, list, 4), -1);
	CHECK_EQ_INT(rw_json_at(&j, list, -1), -1);
	CHECK_EQ_INT(rw_json_at(&j, 0, 0), -1);
	CHECK_EQ_INT(rw_json_int(&j, rw_json_at(&j, list, 3), &v), 0);
	CHECK_EQ_INT(v, 40);
	CHECK_EQ_INT(rw_json_int(&j, rw_json_get(&j, rw_json_at(&j, list, 2), "k"), &v), 0);
	CHECK_EQ_INT(v, 30);
	CHECK_EQ_INT(rw_json_int(&j, rw_json_at(&j, rw_json_at(&j, list, 1), 1), &v), 0);
	CHECK_EQ_INT(v, 21);
	/* Foreach visits every element in order. */
	int i, c, sum = 0, count = 0;
	RW_JSON_ARR_FOREACH (&j, list, i, c) {
		count++;
		if (rw_json_type(&j, c) == RW_JSON_NUMBER && rw_json_int(&j, c, &v) == 0)
			sum += (int)v;
	}
	CHECK_EQ_INT(count, 4);
	CHECK_EQ_INT(sum, 50);
	int k, val;
	count = 0;
	RW_JSON_OBJ_FOREACH (&j, 0, i, k, val) {
		CHECK_EQ_INT(rw_json_type(&j, k), RW_JSON_STRING);
		count++;
	}
	CHECK_EQ_INT(count, 6);
	/* Foreach over an absent token runs zero times. */
	count = 0;
	RW_JSON_ARR_FOREACH (&j, -1, i, c) {
		count++;
	}
	RW_JSON_OBJ_FOREACH (&j, list, i, k, val) {
		count++;
	}
	CHECK_EQ_INT(count, 0);
	/* Duplicate keys: the last one wins, as in Go. */
	CHECK_EQ_INT(rw_json_int(&j, rw_json_get(&j, 0, "dup"), &v), 0);
	CHECK_EQ_INT(v, 2);
	/* Keys are compared unescaped. */
	bool bv = false;
	CHECK_EQ_INT(rw_json_bool(&j, rw_json_get(&j, 0, "escaped"), &bv), 0);
	CHECK(bv);
	CHECK_EQ_INT(rw_json_type(&j, rw_json_get(&j, 0, "n")), RW_JSON_NULL);
	CHECK_EQ_INT(rw_json_bool(&j, rw_json_get(&j, 0, "n"), &bv), -EINVAL);
	/* Raw text. */
	size_t len = 0;
	const char *raw = rw_json_raw(&j, name, &len);
	CHECK(raw && len == 2 && memcmp(raw, "rc", 2) == 0);
	raw = rw_json_raw_value(&j, name, &len);
	CHECK(raw && len == 4 && memcmp(raw, "\"rc\"", 4) == 0);
	raw = rw_json_raw_value(&j, rw_json_at(&j, list, 1), &len);
	CHECK(raw && len == 7 && memcmp(raw, "[20,21]", 7) == 0);
	CHECK(rw_json_raw(&j, -1, &len) == NULL && len == 0);
	CHECK(rw_json_raw_value(&j, j.ntok, &len) == NULL);
	/* Out-of-range indices. */
	CHECK_EQ_INT(rw_json_type(&j, -1), RW_JSON_NONE);
	CHECK_EQ_INT(rw_json_type(&j, j.ntok), RW_JSON_NONE);
	CHECK_EQ_INT(rw_json_skip(&j, -1), -1);
	CHECK_EQ_INT(rw_json_skip(&j, 0), j.ntok);
	CHECK_EQ_INT(rw_json_size(&j, -1), 0);
	CHECK(rw_json_strdup(&j, -1) == NULL);
	CHECK_EQ_INT(rw_json_int(&j, -1, &v), -EINVAL);
	rw_json_fini(&j);
	/* A zeroed struct is safe everywhere. */
	struct rw_json z;
	memset(&z, 0, sizeof(z));
	CHECK_EQ_INT(rw_json_type(&z, 0), RW_JSON_NONE);
	CHECK_EQ_INT(rw_json_get(&z, 0, "a"), -1);
	rw_json_fini(&z);
}

struct str_case {
	const char *js; /* a JSON string literal */
	const char *want;
	size_t wantlen;
	int rv; /* 0 = success (length must be wantlen) */
};

static void
t_unescape(void)
{
	static const struct str_case cases[] = {
	    {"\"plain\"", S("plain"), 0},
	    {"\"\"", S(""), 0},
	    {"\"\\\"\\\\\\/\"", S("\"\\/"), 0},
	    {"\"\\b\\f\\n\\r\\t\"", S("\b\f\n\r\t"), 0},
	    {"\"\\u0041\\u00e9\"", S("A\xc3\xa9"), 0},
	    {"\"\\u00E9\"", S("\xc3\xa9"), 0},
	    {"\"\\u20ac\"", S("\xe2\x82\xac"), 0},
	    {"\"\\u07ff\\u0800\\uffff\"", S("\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"), 0},
	    {"\"\\ud83d\\ude00\"", S("\xf0\x9f\x98\x80"), 0},
	    {"\"\\udbff\\udfff\"", S("\xf4\x8f\xbf\xbf"), 0},
	    {"\"\\uD800\\uDC00\"", S("\xf0\x90\x80\x80"), 0},
	    {"\"raw \xe2\x82\xac\"", S("raw \xe2\x82\xac"), 0},
	    {"\"\\u0001\"", S("\x01"), 0},
	    {"\"\\u0000\"", S(""), -EINVAL},
	    {"\"a\\u0000b\"", S(""), -EINVAL},
	    {"\"\\ud83d\"", S(""), -EINVAL},
	    {"\"\\ud83dx\"", S(""), -EINVAL},
	    {"\"\\ud83d\\u0041\"", S(""), -EINVAL},
	    {"\"\\ud83d\\ud83d\"", S(""), -EINVAL},
	    {"\"\\ude00\"", S(""), -EINVAL},
	    {"\"\\ude00\\ud83d\"", S(""), -EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_json j;
		char out[64];
		CHECK_EQ_INT(rw_json_parse(&j, cases[i].js, strlen(cases[i].js), 8, NULL, 0), 0);
		int rv = rw_json_str(&j, 0, out, sizeof(out));
		if (cases[i].rv) {
			CHECK_EQ_INT(rv, cases[i].rv);
			CHECK_EQ_STR(out, "");
			CHECK(rw_json_strdup(&j, 0) == NULL);
			CHECK(!rw_json_streq(&j, 0, ""));
		} else {
			if (rv != (int)cases[i].wantlen)
				fprintf(stderr, "  unescape case %zu: %d\n", i, rv);
			CHECK_EQ_INT(rv, cases[i].wantlen);
			CHECK(rv >= 0 && memcmp(out, cases[i].want, cases[i].wantlen + 1) == 0);
			char *d = rw_json_strdup(&j, 0);
			CHECK(d && strcmp(d, cases[i].want) == 0);
			free(d);
			CHECK(rw_json_streq(&j, 0, cases[i].want));
		}
		rw_json_fini(&j);
	}
	/* Output space: exact fit, one short, zero and NULL. */
	struct rw_json j;
	char out[8];
	CHECK_EQ_INT(rw_json_parse(&j, S("\"ab\\u00e9\""), 8, NULL, 0), 0);
	CHECK_EQ_INT(rw_json_str(&j, 0, out, 5), 4);
	CHECK_EQ_STR(out, "ab\xc3\xa9");
	CHECK_EQ_INT(rw_json_str(&j, 0, out, 4), -EMSGSIZE);
	CHECK_EQ_STR(out, "");
	CHECK_EQ_INT(rw_json_str(&j, 0, out, 0), -EMSGSIZE);
	CHECK_EQ_INT(rw_json_str(&j, 0, NULL, 0), -EMSGSIZE);
	rw_json_fini(&j);
	/* Not a string. */
	CHECK_EQ_INT(rw_json_parse(&j, S("[1]"), 8, NULL, 0), 0);
	CHECK_EQ_INT(rw_json_str(&j, 1, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(rw_json_str(&j, 0, out, sizeof(out)), -EINVAL);
	rw_json_fini(&j);
}

struct int_case {
	const char *js;
	int rv;
	int64_t want;
};

static void
t_ints(void)
{
	static const struct int_case cases[] = {
	    {"0", 0, 0},
	    {"-0", 0, 0},
	    {"42", 0, 42},
	    {"-42", 0, -42},
	    {"9223372036854775807", 0, INT64_MAX},
	    {"-9223372036854775808", 0, INT64_MIN},
	    {"9223372036854775808", -ERANGE, 0},
	    {"-9223372036854775809", -ERANGE, 0},
	    {"100000000000000000000000000000000000000000000000000000000000000000000000", -ERANGE,
	     0},
	    {"1.0", -EINVAL, 0},
	    {"1e3", -EINVAL, 0},
	    {"1.5", -EINVAL, 0},
	    {"\"1\"", -EINVAL, 0},
	    {"true", -EINVAL, 0},
	    {"null", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_json j;
		int64_t v = 7777;
		CHECK_EQ_INT(rw_json_parse(&j, cases[i].js, strlen(cases[i].js), 8, NULL, 0), 0);
		int rv = rw_json_int(&j, 0, &v);
		if (rv != cases[i].rv)
			fprintf(stderr, "  int case %s: %d\n", cases[i].js, rv);
		CHECK_EQ_INT(rv, cases[i].rv);
		CHECK(v == (cases[i].rv ? 7777 : cases[i].want));
		rw_json_fini(&j);
	}
}

struct dbl_case {
	const char *js;
	int rv;
	double want;
};

static void
t_doubles(void)
{
	static const struct dbl_case cases[] = {
	    {"0", 0, 0.0},
	    {"1", 0, 1.0},
	    {"-2.5", 0, -2.5},
	    {"1e3", 0, 1000.0},
	    {"1E-2", 0, 0.01},
	    {"0.1", 0, 0.1},
	    {"1.7976931348623157e308", 0, DBL_MAX},
	    {"1e309", -ERANGE, 0},
	    {"-1e309", -ERANGE, 0},
	    {"1e-400", 0, 0.0}, /* underflow rounds to zero, as Go does */
	    {"9223372036854775808", 0, 9223372036854775808.0},
	    {"0."
	     "1000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	     "0000"
	     "0000000000000000000000000000000000000000000000000000000000000000000001",
	     0, 0.1},
	    {"\"1\"", -EINVAL, 0},
	    {"false", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_json j;
		double v = 7777;
		CHECK_EQ_INT(rw_json_parse(&j, cases[i].js, strlen(cases[i].js), 8, NULL, 0), 0);
		int rv = rw_json_double(&j, 0, &v);
		if (rv != cases[i].rv)
			fprintf(stderr, "  double case %s: %d\n", cases[i].js, rv);
		CHECK_EQ_INT(rv, cases[i].rv);
		CHECK(v == (cases[i].rv ? 7777 : cases[i].want));
		rw_json_fini(&j);
	}
}

static void
t_top_level_scalars(void)
{
	struct rw_json j;
	int64_t v;
	bool b;
	CHECK_EQ_INT(rw_json_parse(&j, S("  -12  "), 4, NULL, 0), 0);
	CHECK_EQ_INT(rw_json_type(&j, 0), RW_JSON_NUMBER);
	CHECK_EQ_INT(rw_json_int(&j, 0, &v), 0);
	CHECK_EQ_INT(v, -12);
	rw_json_fini(&j);
	CHECK_EQ_INT(rw_json_parse(&j, S("true\n"), 4, NULL, 0), 0);
	CHECK_EQ_INT(rw_json_bool(&j, 0, &b), 0);
	CHECK(b);
	rw_json_fini(&j);
	CHECK_EQ_INT(rw_json_parse(&j, S(" \"x\\ty\" "), 4, NULL, 0), 0);
	CHECK(rw_json_streq(&j, 0, "x\ty"));
	size_t len;
	const char *raw = rw_json_raw_value(&j, 0, &len);
	CHECK(len == 6 && memcmp(raw, "\"x\\ty\"", 6) == 0);
	rw_json_fini(&j);
	/* Parsing stops at len even when more text follows. */
	CHECK_EQ_INT(rw_json_parse(&j, "[1]garbage", 3, 4, NULL, 0), 0);
	CHECK_EQ_INT(j.ntok, 2);
	rw_json_fini(&j);
}

static const char *
wrote(struct rw_buf *b)
{
	return rw_buf_cstr(b);
}

static void
t_writer_basic(void)
{
	struct rw_buf b;
	struct rw_jw w;
	rw_buf_init(&b, 4096);
	rw_jw_init(&w, &b);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "name", "rc");
	rw_jw_kint(&w, "n", -5);
	rw_jw_kbool(&w, "ok", true);
	rw_jw_key(&w, "list");
	rw_jw_arr_begin(&w);
	rw_jw_int(&w, 1);
	rw_jw_uint(&w, UINT64_MAX);
	rw_jw_null(&w);
	rw_jw_str(&w, NULL);
	rw_jw_bool(&w, false);
	rw_jw_arr_begin(&w);
	rw_jw_arr_end(&w);
	rw_jw_obj_begin(&w);
	rw_jw_obj_end(&w);
	rw_jw_raw(&w, S(" {\"r\": [1, 2]} "));
	rw_jw_arr_end(&w);
	rw_jw_key(&w, "q\"k");
	rw_jw_strn(&w, "a\0b", 3);
	rw_jw_obj_end(&w);
	CHECK_EQ_INT(rw_jw_finish(&w), 0);
	CHECK_EQ_STR(wrote(&b), "{\"name\":\"rc\",\"n\":-5,\"ok\":true,\"list\":[1,"
				"18446744073709551615,null,null,false,[],{}, {\"r\": [1, 2]} ],"
				"\"q\\\"k\":\"a\\u0000b\"}");
	struct rw_json j;
	CHECK_EQ_INT(rw_json_parse(&j, b.data, b.len, 64, NULL, 0), 0);
	CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "name"), "rc"));
	rw_json_fini(&j);
	rw_buf_fini(&b);
}

struct quote_case {
	const char *in;
	size_t len;
	const char *want;
};

static void
t_writer_escapes(void)
{
	static const struct quote_case cases[] = {
	    {S(""), "\"\""},
	    {S("plain"), "\"plain\""},
	    {S("q\"b\\s/"), "\"q\\\"b\\\\s/\""},
	    {S("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\""},
	    {S("\x01\x1f\x7f"), "\"\\u0001\\u001f\x7f\""},
	    {S("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
	    {S("a\xff"
	       "b"),
	     "\"a\xef\xbf\xbd"
	     "b\""},
	    {S("\xc3"), "\"\xef\xbf\xbd\""},
	    {S("\xed\xa0\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
	    {S("\xc0\xaf"), "\"\xef\xbf\xbd\xef\xbf\xbd\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_buf b;
		rw_buf_init(&b, 256);
		CHECK_EQ_INT(rw_json_quote(&b, cases[i].in, cases[i].len), 0);
		CHECK_EQ_STR(wrote(&b), cases[i].want);
		/* The output always parses back to a string. */
		struct rw_json j;
		CHECK_EQ_INT(rw_json_parse(&j, b.data, b.len, 4, NULL, 0), 0);
		CHECK_EQ_INT(rw_json_type(&j, 0), RW_JSON_STRING);
		rw_json_fini(&j);
		rw_buf_fini(&b);
	}
	/* A failed quote leaves the buffer as it was. */
	struct rw_buf b;
	rw_buf_init(&b, 8);
	rw_buf_puts(&b, "xy");
	CHECK_EQ_INT(rw_json_quote(&b, S("toolong")), -EMSGSIZE);
	CHECK_EQ_STR(wrote(&b), "xy");
	CHECK_EQ_INT(b.len, 2);
	rw_buf_fini(&b);
}

struct dbl_fmt_case {
	double v;
	const char *want;
};

static void
t_writer_doubles(void)
{
	static const struct dbl_fmt_case cases[] = {
	    {0.0, "0"},
	    {-0.0, "-0"},
	    {1.0, "1"},
	    {-3.0, "-3"},
	    {123456789012345.0, "123456789012345"},
	    {0.5, "0.5"},
	    {0.1, "0.1"},
	    {1.0 / 3.0, "0.3333333333333333"},
	    {2.5e-8, "2.5e-08"},
	    {1e300, "1e+300"},
	    {DBL_MAX, "1.7976931348623157e+308"},
	    {5e-324, "4.94065645841247e-324"}, /* shortest of %.15g..%.17g */
	    {1e15, "1e+15"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_buf b;
		struct rw_jw w;
		rw_buf_init(&b, 256);
		rw_jw_init(&w, &b);
		rw_jw_double(&w, cases[i].v);
		CHECK_EQ_INT(rw_jw_finish(&w), 0);
		CHECK_EQ_STR(wrote(&b), cases[i].want);
		/* Round trip through the parser gives the same double. */
		struct rw_json j;
		double back = 42;
		CHECK_EQ_INT(rw_json_parse(&j, b.data, b.len, 4, NULL, 0), 0);
		CHECK_EQ_INT(rw_json_double(&j, 0, &back), 0);
		CHECK(back == cases[i].v);
		rw_json_fini(&j);
		rw_buf_fini(&b);
	}
	/* Non-finite values become null. */
	struct rw_buf b;
	struct rw_jw w;
	rw_buf_init(&b, 256);
	rw_jw_init(&w, &b);
	rw_jw_arr_begin(&w);
	rw_jw_double(&w, INFINITY);
	rw_jw_double(&w, -INFINITY);
	rw_jw_double(&w, NAN);
	rw_jw_arr_end(&w);
	CHECK_EQ_INT(rw_jw_finish(&w), 0);
	CHECK_EQ_STR(wrote(&b), "[null,null,null]");
	rw_buf_fini(&b);
}

enum wop { W_OB, W_OE, W_AB, W_AE, W_KEY, W_INT, W_RAW, W_END };

struct werr_case {
	const char *name;
	enum wop ops[8];
	const char *raw;
	int rv;
};

static void
t_writer_errors(void)
{
	static const struct werr_case cases[] = {
	    {"unclosed object", {W_OB, W_END}, NULL, -EINVAL},
	    {"unclosed array", {W_AB, W_INT, W_END}, NULL, -EINVAL},
	    {"extra close", {W_AB, W_AE, W_AE, W_END}, NULL, -EINVAL},
	    {"mismatched close", {W_OB, W_AE, W_END}, NULL, -EINVAL},
	    {"value without key", {W_OB, W_INT, W_OE, W_END}, NULL, -EINVAL},
	    {"key without value", {W_OB, W_KEY, W_OE, W_END}, NULL, -EINVAL},
	    {"two keys", {W_OB, W_KEY, W_KEY, W_END}, NULL, -EINVAL},
	    {"key in array", {W_AB, W_KEY, W_END}, NULL, -EINVAL},
	    {"key at top", {W_KEY, W_END}, NULL, -EINVAL},
	    {"two top-level values", {W_INT, W_INT, W_END}, NULL, -EINVAL},
	    {"nothing written", {W_END}, NULL, -EINVAL},
	    {"invalid raw", {W_AB, W_RAW, W_AE, W_END}, "[1,]", -EINVAL},
	    {"raw two values", {W_AB, W_RAW, W_AE, W_END}, "1 2", -EINVAL},
	    {"good raw", {W_AB, W_RAW, W_RAW, W_AE, W_END}, "\"s\"", 0},
	    {"key then value", {W_OB, W_KEY, W_INT, W_OE, W_END}, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_buf b;
		struct rw_jw w;
		rw_buf_init(&b, 256);
		rw_jw_init(&w, &b);
		for (const enum wop *op = cases[i].ops; *op != W_END; op++) {
			switch (*op) {
			case W_OB:
				rw_jw_obj_begin(&w);
				break;
			case W_OE:
				rw_jw_obj_end(&w);
				break;
			case W_AB:
				rw_jw_arr_begin(&w);
				break;
			case W_AE:
				rw_jw_arr_end(&w);
				break;
			case W_KEY:
				rw_jw_key(&w, "k");
				break;
			case W_INT:
				rw_jw_int(&w, 1);
				break;
			case W_RAW:
				rw_jw_raw(&w, cases[i].raw, strlen(cases[i].raw));
				break;
			case W_END:
				break;
			}
		}
		int rv = rw_jw_finish(&w);
		if (rv != cases[i].rv)
			fprintf(stderr, "  writer case \"%s\": %d\n", cases[i].name, rv);
		CHECK_EQ_INT(rv, cases[i].rv);
		rw_buf_fini(&b);
	}
	/* Too deep. */
	struct rw_buf b;
	struct rw_jw w;
	rw_buf_init(&b, 4096);
	rw_jw_init(&w, &b);
	for (int i = 0; i < RW_JSON_MAX_DEPTH; i++)
		rw_jw_arr_begin(&w);
	CHECK_EQ_INT(w.err, 0);
	rw_jw_arr_begin(&w);
	CHECK_EQ_INT(rw_jw_finish(&w), -EINVAL);
	rw_buf_fini(&b);
	/* Buffer limit: the first error sticks. */
	rw_buf_init(&b, 10);
	rw_jw_init(&w, &b);
	rw_jw_arr_begin(&w);
	rw_jw_str(&w, "0123456789");
	rw_jw_arr_end(&w);
	CHECK_EQ_INT(rw_jw_finish(&w), -EMSGSIZE);
	rw_buf_fini(&b);
}

/* Build a document with the writer, parse it, rebuild it from the tokens: same text. */
static void
rewrite(const struct rw_json *j, int t, struct rw_jw *w)
{
	int i, c, k, v;
	char *s;
	switch (rw_json_type(j, t)) {
	case RW_JSON_OBJECT:
		rw_jw_obj_begin(w);
		RW_JSON_OBJ_FOREACH (j, t, i, k, v) {
			s = rw_json_strdup(j, k);
			rw_jw_key(w, s);
			free(s);
			rewrite(j, v, w);
		}
		rw_jw_obj_end(w);
		break;
	case RW_JSON_ARRAY:
		rw_jw_arr_begin(w);
		RW_JSON_ARR_FOREACH (j, t, i, c) {
			rewrite(j, c, w);
		}
		rw_jw_arr_end(w);
		break;
	case RW_JSON_STRING: {
		int n = rw_json_str(j, t, NULL, 0);
		(void)n;
		s = rw_json_strdup(j, t);
		rw_jw_str(w, s);
		free(s);
		break;
	}
	case RW_JSON_NUMBER: {
		int64_t iv;
		double dv;
		if (rw_json_int(j, t, &iv) == 0)
			rw_jw_int(w, iv);
		else if (rw_json_double(j, t, &dv) == 0)
			rw_jw_double(w, dv);
		break;
	}
	case RW_JSON_TRUE:
	case RW_JSON_FALSE:
		rw_jw_bool(w, rw_json_type(j, t) == RW_JSON_TRUE);
		break;
	default:
		rw_jw_null(w);
	}
}

static void
t_roundtrip(void)
{
	struct rw_buf a, b;
	struct rw_jw w;
	rw_buf_init(&a, 1 << 16);
	rw_buf_init(&b, 1 << 16);
	rw_jw_init(&w, &a);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "s", "tab\there \"quoted\" \\ \x01 \xc3\xa9 \xf0\x9f\x98\x80");
	rw_jw_kint(&w, "min", INT64_MIN);
	rw_jw_kint(&w, "max", INT64_MAX);
	rw_jw_key(&w, "d");
	rw_jw_arr_begin(&w);
	rw_jw_double(&w, 0.1);
	rw_jw_double(&w, -1e-300);
	rw_jw_double(&w, 6.02214076e23);
	rw_jw_double(&w, 2.5);
	rw_jw_arr_end(&w);
	rw_jw_key(&w, "nested");
	for (int i = 0; i < 20; i++)
		rw_jw_arr_begin(&w);
	rw_jw_obj_begin(&w);
	rw_jw_kbool(&w, "deep", true);
	rw_jw_obj_end(&w);
	for (int i = 0; i < 20; i++)
		rw_jw_arr_end(&w);
	rw_jw_kstr(&w, "", "");
	rw_jw_obj_end(&w);
	CHECK_EQ_INT(rw_jw_finish(&w), 0);

	struct rw_json j;
	char err[128];
	CHECK_EQ_INT(rw_json_parse(&j, a.data, a.len, 1000, err, sizeof(err)), 0);
	rw_jw_init(&w, &b);
	rewrite(&j, 0, &w);
	CHECK_EQ_INT(rw_jw_finish(&w), 0);
	CHECK_EQ_STR(wrote(&b), wrote(&a));
	int64_t v;
	CHECK_EQ_INT(rw_json_int(&j, rw_json_get(&j, 0, "min"), &v), 0);
	CHECK(v == INT64_MIN);
	char s[128];
	CHECK(rw_json_str(&j, rw_json_get(&j, 0, "s"), s, sizeof(s)) > 0);
	CHECK_EQ_STR(s, "tab\there \"quoted\" \\ \x01 \xc3\xa9 \xf0\x9f\x98\x80");
	rw_json_fini(&j);
	rw_buf_fini(&a);
	rw_buf_fini(&b);
}

static void
t_corpus_files(void)
{
	/* Every Ray API sample in the shared corpus parses. */
	static const char *files[] = {
	    "job-details-running.json",
	    "jobs-list.json",
	    "serve-applications-fruit-math.json",
	    "serve-deploy-request-fruit-math.json",
	    "job-submit-request.json",
	};
	char dir[1024];
	int seen = 0;
	if (rwt_corpus("ray-api", dir, sizeof(dir)) != 0)
		return;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[1200];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		static char buf[1 << 18];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		struct rw_json j;
		char err[160] = "";
		int rv = rw_json_parse(&j, buf, n, 1 << 16, err, sizeof(err));
		if (rv)
			fprintf(stderr, "  %s: %s\n", files[i], err);
		CHECK_EQ_INT(rv, 0);
		rw_json_fini(&j);
		seen++;
	}
	if (!seen)
		printf("  (skipped: %s not found)\n", dir);
}

/* Cutting text to a size never splits a UTF-8 sequence; strings that fit are kept whole. */
static void
t_utf8_cut(void)
{
	static const struct {
		const char *s;
		size_t max, want;
	} cut[] = {
	    {"abc", 5, 3},	     /* fits */
	    {"abc", 3, 3},	     /* exactly */
	    {"abcd", 3, 3},	     /* ASCII: cut anywhere */
	    {"ab\xc3\xa9", 3, 2},    /* "abé": é is 2 bytes, 1 fits: drop it */
	    {"ab\xc3\xa9", 4, 4},    /* all of it */
	    {"a\xe2\x82\xac", 3, 1}, /* "a€": 3-byte sequence, 2 fit */
	    {"a\xe2\x82\xac", 2, 1},
	    {"\xf0\x9f\x98\x80x", 3, 0}, /* a 4-byte emoji first: nothing fits */
	    {"\xf0\x9f\x98\x80x", 4, 4},
	    {"x", 0, 0},
	};
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++)
		CHECK_EQ_INT((int)rw_utf8_cut(cut[i].s, strlen(cut[i].s), cut[i].max),
			     (int)cut[i].want);

	static const struct {
		const char *json;
		size_t outlen;
		int rv;
		const char *want;
	} str[] = {
	    {"\"abc\"", 8, 3, "abc"},
	    {"\"abcdef\"", 4, 3, "abc"},     /* rw_json_str refuses this one */
	    {"\"ab\\u00e9cd\"", 4, 2, "ab"}, /* an escape that is 2 bytes, 1 fits */
	    {"\"\xe2\x82\xac\xe2\x82\xac\"", 5, 3, "\xe2\x82\xac"}, /* raw UTF-8 */
	    {"\"a\\u0000b\"", 8, -EINVAL, ""}, /* an escaped NUL is still refused */
	    {"17", 8, -EINVAL, ""},	       /* not a string */
	};
	for (size_t i = 0; i < sizeof(str) / sizeof(str[0]); i++) {
		struct rw_json j;
		char err[128], out[16];
		CHECK_EQ_INT(
		    rw_json_parse(&j, str[i].json, strlen(str[i].json), 16, err, sizeof(err)), 0);
		memset(out, 'x', sizeof(out));
		CHECK_EQ_INT(rw_json_str_cut(&j, 0, out, str[i].outlen), str[i].rv);
		CHECK_EQ_STR(out, str[i].want);
		rw_json_fini(&j);
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"valid documents", t_valid},
	    {"invalid documents (incl. jsmn leniencies)", t_invalid},
	    {"nesting depth", t_depth},
	    {"token array growth and limit", t_token_growth},
	    {"navigation", t_navigate},
	    {"string unescaping", t_unescape},
	    {"cutting text at UTF-8 boundaries", t_utf8_cut},
	    {"strict integers", t_ints},
	    {"strict doubles", t_doubles},
	    {"top-level scalars", t_top_level_scalars},
	    {"writer basics", t_writer_basic},
	    {"writer escapes", t_writer_escapes},
	    {"writer doubles", t_writer_doubles},
	    {"writer errors", t_writer_errors},
	    {"writer/parser round trip", t_roundtrip},
	    {"corpus files", t_corpus_files},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

/* test_yaml.c - YAML to JSON: typing, keys, anchors, merges, documents, errors, limits. */
#include <dirent.h>
#include <errno.h>
#include <time.h>

#include "rw/json.h"
#include "rw/yaml.h"
#include "rwtest.h"

/* Success rows of the tables leave the error column out. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct conv_case {
	const char *yaml;
	const char *json; /* expected output, or NULL when an error is expected */
	const char *err;  /* substring of the error message (error cases) */
};

/* Convert one document; the result is checked to be valid JSON too. */
static void
run_cases(const char *table, const struct conv_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct rw_buf out;
		char err[256] = "";
		rw_buf_init(&out, 1 << 16);
		int rv =
		    rw_yaml_to_json(cases[i].yaml, strlen(cases[i].yaml), &out, err, sizeof(err));
		if (cases[i].json) {
			if (rv != 0 || strcmp(rw_buf_cstr(&out), cases[i].json) != 0)
				fprintf(stderr,
					"  %s case %zu: %s\n    rv %d err \"%s\"\n    got  %s\n    "
					"want %s\n",
					table, i, cases[i].yaml, rv, err, rw_buf_cstr(&out),
					cases[i].json);
			CHECK_EQ_INT(rv, 0);
			CHECK_EQ_STR(rw_buf_cstr(&out), cases[i].json);
			struct rw_json j;
			CHECK_EQ_INT(rw_json_parse(&j, out.data, out.len, 4096, NULL, 0), 0);
			rw_json_fini(&j);
		} else {
			if (rv != -EINVAL || !strstr(err, cases[i].err))
				fprintf(stderr,
					"  %s case %zu: %s\n    rv %d err \"%s\" want \"%s\"\n",
					table, i, cases[i].yaml, rv, err, cases[i].err);
			CHECK_EQ_INT(rv, -EINVAL);
			CHECK(strstr(err, cases[i].err) != NULL);
			CHECK_EQ_INT(out.len, 0);
		}
		rw_buf_fini(&out);
	}
}

#define RUN(name, cases) run_cases(name, cases, sizeof(cases) / sizeof(cases[0]))

static void
t_plain_typing(void)
{
	static const struct conv_case cases[] = {
	    /* YAML 1.1 booleans, exactly go-yaml v2's list. */
	    {"[true, True, TRUE, yes, Yes, YES, y, Y, on, On, ON]",
	     "[true,true,true,true,true,true,true,true,true,true,true]"},
	    {"[false, False, FALSE, no, No, NO, n, N, off, Off, OFF]",
	     "[false,false,false,false,false,false,false,false,false,false,false]"},
	    {"[tRUE, yES, oN, nO, fALSE, oFF, yup, t, f]",
	     "[\"tRUE\",\"yES\",\"oN\",\"nO\",\"fALSE\",\"oFF\",\"yup\",\"t\",\"f\"]"},
	    /* Nulls. */
	    {"[null, Null, NULL, ~, nULL, none]", "[null,null,null,null,\"nULL\",\"none\"]"},
	    {"a:\nb: ~\n", "{\"a\":null,\"b\":null}"},
	    /* Integers: decimal, sign, hex, 0o, leading-0 octal, binary, underscores. */
	    {"[12, -12, +12, 0, -0, 007]", "[12,-12,12,0,0,7]"},
	    {"[0x1F, 0X1f, -0x10, 0o17, 017, 0b101, -0b11, 0B1]", "[31,31,-16,15,15,5,-3,1]"},
	    {"[1_000, 1_0_0, 0x_ff]", "[1000,100,255]"},
	    {"[9223372036854775807, -9223372036854775808]",
	     "[9223372036854775807,-9223372036854775808]"},
	    {"[9223372036854775808, 18446744073709551615, 0xffffffffffffffff]",
	     "[9223372036854775808,18446744073709551615,18446744073709551615]"},
	    {"18446744073709551616", "1.8446744073709552e+19"},
	    /* Floats. */
	    {"[1.5, -1.5, 1e3, 1E-2, .5, -.5, +.5, 1., 0.1, 6.02e23]",
	     "[1.5,-1.5,1000,0.01,0.5,-0.5,0.5,1,0.1,6.02e+23]"},
	    {"[08, 09.5, 1_000.5]", "[8,9.5,1000.5]"},
	    /* Things that look numeric but are strings (as in Go). */
	    {"[1e400, 1.2.3, 0x, 0xG, 1:20, 2001-12-14, 12abc, '-', +, .e5, ., 1e, 0b2]",
	     "[\"1e400\",\"1.2.3\",\"0x\",\"0xG\",\"1:20\",\"2001-12-14\",\"12abc\",\"-\",\"+\","
	     "\".e5\",\".\",\"1e\",\"0b2\"]"},
	    {"[_1, 1_, ._5]", "[\"_1\",1,\"._5\"]"},
	    /* Plain strings. */
	    {"hello world", "\"hello world\""},
	    {"v: a: b", NULL, "mapping values are not allowed"},
	    {"[a b, 'c', \"d\"]", "[\"a b\",\"c\",\"d\"]"},
	    {"<<", "\"<<\""},
	};
	RUN("typing", cases);
}

static void
t_non_plain_strings(void)
{
	static const struct conv_case cases[] = {
	    {"['true', \"yes\", 'null', \"12\", '0x10', \"1.5\", '', \"\"]",
	     "[\"true\",\"yes\",\"null\",\"12\",\"0x10\",\"1.5\",\"\",\"\"]"},
	    {"v: |\n  12\n", "{\"v\":\"12\\n\"}"},
	    {"v: |-\n  yes\n", "{\"v\":\"yes\"}"},
	    {"v: >\n  folded\n  text\n\n  para\n", "{\"v\":\"folded text\\npara\\n\"}"},
	    {"v: |\n  line 1\n    indented\n  line 3\n",
	     "{\"v\":\"line 1\\n  indented\\nline 3\\n\"}"},
	    {"v: |+\n  keep\n\n", "{\"v\":\"keep\\n\\n\"}"},
	    {"v: \"esc \\\" \\\\ \\t \\n \\u00e9 \\x41 \\0\"",
	     "{\"v\":\"esc \\\" \\\\ \\t \\n \xc3\xa9 A \\u0000\"}"},
	    {"v: 'it''s'", "{\"v\":\"it's\"}"},
	    {"v: plain # comment", "{\"v\":\"plain\"}"},
	    {"v: caf\xc3\xa9 \xe2\x82\xac", "{\"v\":\"caf\xc3\xa9 \xe2\x82\xac\"}"},
	};
	RUN("strings", cases);
}

static void
t_tags(void)
{
	static const struct conv_case cases[] = {
	    {"[!!str 12, !!str true, !!str null, !!str ~]", "[\"12\",\"true\",\"null\",\"~\"]"},
	    {"v: !!str\nw: !!str 0x10\n", "{\"v\":\"\",\"w\":\"0x10\"}"},
	    {"[!!int \"12\", !!int 0x10, !!float 1, !!float \"2.5\", !!bool \"yes\", !!null \"\"]",
	     "[12,16,1,2.5,true,null]"},
	    {"[!custom 12, ! true, !!timestamp 2001-12-14, !!set x]",
	     "[\"12\",\"true\",\"2001-12-14\",\"x\"]"},
	    {"!!map {a: 1}", "{\"a\":1}"},
	    {"%TAG !e! tag:example.com,2000:\n---\nv: !e!thing 5\n", "{\"v\":\"5\"}"},
	    {"v: !!int abc", NULL, "line 1 column 4: cannot decode `abc` as !!int"},
	    {"v: !!bool 1", NULL, "as !!bool"},
	    {"v: !!null x", NULL, "as !!null"},
	    {"v: !!float yes", NULL, "as !!float"},
	    {"v: !!binary aGVsbG8=", NULL, "!!binary is not supported"},
	};
	RUN("tags", cases);
}

static void
t_keys(void)
{
	static const struct conv_case cases[] = {
	    {"true: 1\nyes: 2\nno: 3\non: 4", "{\"true\":4,\"false\":3}"},
	    {"1: a\n0x10: b\n-3: c\n007: d", "{\"1\":\"a\",\"16\":\"b\",\"-3\":\"c\",\"7\":\"d\"}"},
	    {"1.5: a\n1.0: b\n1e6: c\n0.1: d\n123456.0: e\n1e-5: f\n0.0001: g",
	     "{\"1.5\":\"a\",\"1\":\"b\",\"1e+06\":\"c\",\"0.1\":\"d\",\"123456\":\"e\","
	     "\"1e-05\":\"f\",\"0.0001\":\"g\"}"},
	    {".inf: a\n-.Inf: b\n.nan: c", "{\".inf\":\"a\",\"-.inf\":\"b\",\".nan\":\"c\"}"},
	    {"'quoted key': 1\n\"\": 2", "{\"quoted key\":1,\"\":2}"},
	    {"9223372036854775808: big", "{\"9223372036854775808\":\"big\"}"},
	    {"a: 1\na: 2", "{\"a\":2}"},
	    {"a: 1\nb: 2\na: 3", "{\"a\":3,\"b\":2}"},
	    {"1: p\n'1': q", "{\"1\":\"q\"}"},
	    /* go-yaml v2 reads a plain y/n as a boolean, in keys too (a known Kubernetes gotcha).
	     */
	    {"y: 1\nn: 2\nx: y", "{\"true\":1,\"false\":2,\"x\":true}"},
	    {"~: 1", NULL, "line 1 column 1: null mapping key"},
	    {"a: 1\n: 2", NULL, "line 2 column 1"},
	    {"? \n: 2", NULL, "line 1 column 2: null mapping key"},
	    {"? [a, b]\n: 1", NULL,
	     "line 1 column 3: mapping key must be a scalar, not a sequence"},
	    {"? {a: b}\n: 1", NULL, "not a mapping"},
	};
	RUN("keys", cases);
}

static void
t_anchors_merges(void)
{
	static const struct conv_case cases[] = {
	    {"a: &x {k: 1}\nb: *x", "{\"a\":{\"k\":1},\"b\":{\"k\":1}}"},
	    {"a: &s hi\nb: *s\nc: [*s, *s]", "{\"a\":\"hi\",\"b\":\"hi\",\"c\":[\"hi\",\"hi\"]}"},
	    {"a: &x 1\nb: &x 2\nc: *x", "{\"a\":1,\"b\":2,\"c\":2}"},
	    {"a: &k key\n*k : v", "{\"a\":\"key\",\"key\":\"v\"}"},
	    {"base: &b {p: 1, q: 2}\nd:\n  <<: *b\n  q: 3\n",
	     "{\"base\":{\"p\":1,\"q\":2},\"d\":{\"p\":1,\"q\":3}}"},
	    /* go-yaml v2: a merge overrides keys set before it. */
	    {"base: &b {p: 1, q: 2}\nd:\n  q: 3\n  <<: *b\n",
	     "{\"base\":{\"p\":1,\"q\":2},\"d\":{\"q\":2,\"p\":1}}"},
	    /* In a list, earlier maps win. */
	    {"a: &a {k: 1}\nb: &b {k: 2, j: 2}\nc:\n  <<: [*a, *b]\n",
	     "{\"a\":{\"k\":1},\"b\":{\"k\":2,\"j\":2},\"c\":{\"k\":1,\"j\":2}}"},
	    {"c:\n  <<: {inline: true}\n  own: 1\n", "{\"c\":{\"inline\":true,\"own\":1}}"},
	    {"c:\n  !!merge <<: {t: 1}\n", "{\"c\":{\"t\":1}}"},
	    {"c:\n  '<<': {t: 1}\n", "{\"c\":{\"<<\":{\"t\":1}}}"},
	    {"a: &m {p: 1, <<: {q: 2}}\nb: {<<: *m, r: 3}",
	     "{\"a\":{\"p\":1,\"q\":2},\"b\":{\"p\":1,\"q\":2,\"r\":3}}"},
	    {"a: &s x\nb:\n  <<: *s\n", NULL, "line 3 column 3: map merge requires a mapping"},
	    {"b:\n  <<: [{a: 1}, 2]\n", NULL, "map merge requires"},
	    {"a: *nope", NULL, "line 1 column 4: unknown anchor 'nope'"},
	    {"a: &x [1, *x]", NULL, "line 1 column 11: anchor 'x' value contains itself"},
	    {"a: &x {b: *x}", NULL, "contains itself"},
	};
	RUN("anchors", cases);
}

static void
t_flow_and_structure(void)
{
	static const struct conv_case cases[] = {
	    {"{a: [1, {b: [true, \"x\"]}], c: {}, d: []}",
	     "{\"a\":[1,{\"b\":[true,\"x\"]}],\"c\":{},\"d\":[]}"},
	    {"[[1, 2], [3, [4, [5]]], []]", "[[1,2],[3,[4,[5]]],[]]"},
	    {"- a\n- - b\n  - c\n- k: v\n  l: [w]\n",
	     "[\"a\",[\"b\",\"c\"],{\"k\":\"v\",\"l\":[\"w\"]}]"},
	    {"a:\n  b:\n    c:\n      - 1\n      - d: e\n",
	     "{\"a\":{\"b\":{\"c\":[1,{\"d\":\"e\"}]}}}"},
	    {"42", "42"},
	    {"\"\"", "\"\""},
	    {"--- ~\n", "null"},
	    {"", "null"},
	    {"# only a comment\n", "null"},
	    {"---\n", "null"},
	    {"a: 1\n---\n", "{\"a\":1}"},
	    {"a: 1\n...\n", "{\"a\":1}"},
	    {"\xef\xbb\xbf"
	     "a: 1",
	     "{\"a\":1}"},
	};
	RUN("structure", cases);
}

static void
t_errors(void)
{
	static const struct conv_case cases[] = {
	    {"a: 1\nb: [1, 2\nc: 3\n", NULL, "line 3 column 2: did not find expected ',' or ']'"},
	    {"a:\n  - 1\n  b: 2\n", NULL, "line 3 column 3"},
	    {"a:\n\tb: 1\n", NULL, "line 2 column 1"},
	    {"a: 'unterminated\n", NULL, "line 2 column 1"},
	    {"key: value\n  bad: indent\n", NULL, "line 2 column 6"},
	    {"a: 1\nb: 2\nc: .inf\n", NULL, "line 3 column 4: .inf cannot be represented in JSON"},
	    {"[.nan]", NULL, "line 1 column 2: .nan cannot"},
	    {"[-.INF]", NULL, ".inf cannot"},
	    {"a: 1\n---\nb: 2\n", NULL, "single document"},
	    {"a: &x 1\n---\nb: *x\n", NULL, "line 3 column 4: unknown anchor 'x'"},
	    {"a: \x01", NULL, "control characters are not allowed"},
	    {"a: \xff", NULL, "invalid leading UTF-8 octet"},
	};
	RUN("errors", cases);
}

static void
t_depth(void)
{
	struct rw_buf out;
	char err[256], y[400];
	for (int depth = 63; depth <= 66; depth++) {
		size_t n = 0;
		for (int i = 0; i < depth; i++)
			y[n++] = '[';
		for (int i = 0; i < depth; i++)
			y[n++] = ']';
		y[n] = '\0';
		rw_buf_init(&out, 4096);
		err[0] = '\0';
		int rv = rw_yaml_to_json(y, n, &out, err, sizeof(err));
		CHECK_EQ_INT(rv, depth <= RW_JSON_MAX_DEPTH ? 0 : -EINVAL);
		if (rv == 0)
			CHECK_EQ_INT(out.len, (size_t)(2 * depth));
		else
			CHECK(strstr(err, "line 1 column 65: nesting deeper than 64") != NULL);
		rw_buf_fini(&out);
	}
	/* Aliases can push the expanded depth past the limit. */
	struct rw_buf b;
	rw_buf_init(&b, 4096);
	rw_buf_puts(&b, "a: &deep ");
	for (int i = 0; i < 40; i++)
		rw_buf_putc(&b, '[');
	for (int i = 0; i < 40; i++)
		rw_buf_putc(&b, ']');
	rw_buf_puts(&b, "\nb: ");
	for (int i = 0; i < 30; i++)
		rw_buf_putc(&b, '[');
	rw_buf_puts(&b, "*deep");
	for (int i = 0; i < 30; i++)
		rw_buf_putc(&b, ']');
	rw_buf_init(&out, 1 << 16);
	err[0] = '\0';
	CHECK_EQ_INT(rw_yaml_to_json(b.data, b.len, &out, err, sizeof(err)), -EINVAL);
	if (!strstr(err, "line 1 column 43: nesting (with aliases expanded) deeper"))
		fprintf(stderr, "  alias depth: %s\n", err);
	CHECK(strstr(err, "line 1 column 43: nesting (with aliases expanded) deeper") != NULL);
	rw_buf_fini(&out);
	rw_buf_fini(&b);
	/* Very deep input fails fast without recursion. */
	static char deep[200000];
	memset(deep, '[', sizeof(deep));
	rw_buf_init(&out, 1 << 16);
	CHECK_EQ_INT(rw_yaml_to_json(deep, sizeof(deep), &out, err, sizeof(err)), -EINVAL);
	rw_buf_fini(&out);
}

struct docs {
	int n;
	char json[8][256];
	int stop_at; /* return 7 from this document (1-based), 0 = never */
};

static int
collect(const char *json, size_t len, void *ud)
{
	struct docs *d = ud;
	CHECK_EQ_INT(strlen(json), len);
	if (d->n < 8)
		snprintf(d->json[d->n], sizeof(d->json[0]), "%s", json);
	d->n++;
	return d->n == d->stop_at ? 7 : 0;
}

#define S3 "--- 1\n--- 2\n--- 3\n"

struct multi_case {
	const char *yaml;
	int rv;
	const char *docs[4];
};

static void
t_multi_doc(void)
{
	static const struct multi_case cases[] = {
	    {"a: 1\n---\nb: 2\n", 2, {"{\"a\":1}", "{\"b\":2}"}},
	    {"---\n# only a comment\n---\na: 1\n---\n", 1, {"{\"a\":1}"}},
	    {"--- 1\n--- 2\n--- 3\n", 3, {"1", "2", "3"}},
	    {"a: 1\n...\n---\nb: 2\n...\n", 2, {"{\"a\":1}", "{\"b\":2}"}},
	    {"", 0, {NULL}},
	    {"# nothing\n", 0, {NULL}},
	    {"---\n---\n---\n", 0, {NULL}},
	    {"--- ~\n---\n--- ''\n", 2, {"null", "\"\""}},
	    {"apiVersion: v1\nkind: Service\n---\napiVersion: v1\nkind: Pod\n---\n",
	     2,
	     {"{\"apiVersion\":\"v1\",\"kind\":\"Service\"}",
	      "{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}"}},
	    {"a: 1\n---\nb: [\n", -EINVAL, {NULL}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct docs d;
		char err[256] = "";
		memset(&d, 0, sizeof(d));
		int rv = rw_yaml_docs_to_json(cases[i].yaml, strlen(cases[i].yaml), 4096, collect,
					      &d, err, sizeof(err));
		if (rv != cases[i].rv)
			fprintf(stderr, "  multi case %zu: rv %d err %s\n", i, rv, err);
		CHECK_EQ_INT(rv, cases[i].rv);
		for (int k = 0; k < rv && k < 4; k++)
			CHECK_EQ_STR(d.json[k], cases[i].docs[k]);
		if (rv < 0)
			CHECK(strstr(err, "line 4") != NULL);
	}
	/* A non-zero callback return stops and is returned. */
	struct docs d;
	memset(&d, 0, sizeof(d));
	d.stop_at = 2;
	CHECK_EQ_INT(rw_yaml_docs_to_json(S3, strlen(S3), 4096, collect, &d, NULL, 0), 7);
	CHECK_EQ_INT(d.n, 2);
	/* No callback: just count. */
	CHECK_EQ_INT(rw_yaml_docs_to_json(S3, strlen(S3), 4096, NULL, NULL, NULL, 0), 3);
}

static void
t_append_and_limits(void)
{
	struct rw_buf out;
	char err[256] = "";
	/* Appends to what is there; a failure leaves it unchanged. */
	rw_buf_init(&out, 64);
	rw_buf_puts(&out, "X=");
	CHECK_EQ_INT(rw_yaml_to_json("a: [1, 2]", 9, &out, err, sizeof(err)), 0);
	CHECK_EQ_STR(rw_buf_cstr(&out), "X={\"a\":[1,2]}");
	CHECK_EQ_INT(rw_yaml_to_json("a: [1, 2", 8, &out, err, sizeof(err)), -EINVAL);
	CHECK_EQ_STR(rw_buf_cstr(&out), "X={\"a\":[1,2]}");
	rw_buf_fini(&out);
	/* max_json overflow: the output limit is the buffer's. */
	rw_buf_init(&out, 10);
	err[0] = '\0';
	CHECK_EQ_INT(rw_yaml_to_json("a: 123456789", 12, &out, err, sizeof(err)), -EMSGSIZE);
	CHECK(strstr(err, "exceeds 10 bytes") != NULL);
	CHECK_EQ_INT(out.len, 0);
	rw_buf_fini(&out);
	rw_buf_init(&out, 15);
	CHECK_EQ_INT(rw_yaml_to_json("a: 123456789", 12, &out, err, sizeof(err)), 0);
	CHECK_EQ_STR(rw_buf_cstr(&out), "{\"a\":123456789}");
	rw_buf_fini(&out);
	/* Per document in a stream. */
	struct docs d;
	memset(&d, 0, sizeof(d));
	err[0] = '\0';
	CHECK_EQ_INT(rw_yaml_docs_to_json("a: 1\n---\nb: 1234567890\n", 23, 10, collect, &d, err,
					  sizeof(err)),
		     -EMSGSIZE);
	CHECK_EQ_INT(d.n, 1);
	CHECK(strstr(err, "line 3") != NULL);
	/* NULL input is an empty stream. */
	rw_buf_init(&out, 16);
	CHECK_EQ_INT(rw_yaml_to_json(NULL, 0, &out, NULL, 0), 0);
	CHECK_EQ_STR(rw_buf_cstr(&out), "null");
	rw_buf_fini(&out);
}

/*
 * CPU seconds of this process since *a (taken with CLOCK_PROCESS_CPUTIME_ID):
 * the bounds below catch exponential work, and CPU time is not stretched by
 * other processes on a loaded machine the way wall time is.
 */
static double
elapsed(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

static void
t_bombs(void)
{
	/* Billion laughs: 9^9 expansions of a 5-byte string. */
	static const char laughs[] =
	    "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
	    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
	    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	struct rw_buf out;
	struct timespec t0;
	char err[256] = "";
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	rw_buf_init(&out, 1 << 20);
	CHECK_EQ_INT(rw_yaml_to_json(laughs, strlen(laughs), &out, err, sizeof(err)), -EMSGSIZE);
	CHECK(strstr(err, "exceeds") != NULL);
	CHECK(elapsed(&t0) < 5.0);
	rw_buf_fini(&out);
	/* The same with a stream and a small max_json. */
	CHECK_EQ_INT(rw_yaml_docs_to_json(laughs, strlen(laughs), 4096, NULL, NULL, NULL, 0),
		     -EMSGSIZE);
	/* Merge chain: each map merges the previous one (quadratic entries). */
	struct rw_buf y;
	rw_buf_init(&y, 1 << 22);
	rw_buf_puts(&y, "m0: &m0 {k0: 0}\n");
	for (int i = 1; i < 4000; i++)
		rw_buf_printf(&y, "m%d: &m%d {<<: *m%d, k%d: %d}\n", i, i, i - 1, i, i);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	rw_buf_init(&out, 1 << 20);
	err[0] = '\0';
	CHECK_EQ_INT(rw_yaml_to_json(y.data, y.len, &out, err, sizeof(err)), -EMSGSIZE);
	CHECK(elapsed(&t0) < 5.0);
	rw_buf_fini(&out);
	rw_buf_fini(&y);
}

static int
check_parses(const char *json, size_t len, void *ud)
{
	int *count = ud;
	struct rw_json j;
	char err[160] = "";
	int rv = rw_json_parse(&j, json, len, 1 << 20, err, sizeof(err));
	if (rv)
		fprintf(stderr, "  converted JSON does not parse: %s\n", err);
	CHECK_EQ_INT(rv, 0);
	CHECK_EQ_INT(rw_json_type(&j, 0), RW_JSON_OBJECT);
	CHECK(rw_json_get(&j, 0, "apiVersion") >= 0);
	CHECK(rw_json_get(&j, 0, "kind") >= 0);
	rw_json_fini(&j);
	(*count)++;
	return 0;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct rw_buf b;
	char chunk[65536];
	size_t n;
	rw_buf_init(&b, 16 << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rw_buf_append(&b, chunk, n);
	fclose(f);
	return rw_buf_steal(&b, len);
}

static void
t_kuberay_samples(void)
{
	char samples[1024], dirpath[1200];
	if (rwt_corpus("kuberay-samples", samples, sizeof(samples)) != 0)
		return;
	snprintf(dirpath, sizeof(dirpath), "%s", samples);
	DIR *dir = opendir(dirpath);
	CHECK(dir != NULL);
	if (!dir)
		return;
	struct dirent *e;
	int files = 0;
	while ((e = readdir(dir)) != NULL) {
		if (!strstr(e->d_name, ".yaml"))
			continue;
		char path[1536];
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", dirpath, e->d_name);
		char *y = read_file(path, &len);
		CHECK(y != NULL);
		if (!y)
			continue;
		int docs = 0;
		char err[256] = "";
		int rv =
		    rw_yaml_docs_to_json(y, len, 1 << 22, check_parses, &docs, err, sizeof(err));
		if (rv < 1)
			fprintf(stderr, "  %s: %d %s\n", e->d_name, rv, err);
		CHECK(rv >= 1);
		CHECK_EQ_INT(rv, docs);
		free(y);
		files++;
	}
	closedir(dir);
	CHECK(files > 0);
	printf("  converted %d sample files\n", files);

	/* The RayService sample, and its serveConfigV2 (YAML inside a string). */
	snprintf(dirpath, sizeof(dirpath), "%s/ray-service.sample.yaml", samples);
	size_t len;
	char *y = read_file(dirpath, &len);
	if (!y) {
		printf("  (skipped: ray-service.sample.yaml not found)\n");
		return;
	}
	struct rw_buf out, serve;
	struct rw_json j, s;
	char err[256] = "";
	rw_buf_init(&out, 1 << 20);
	rw_buf_init(&serve, 1 << 20);
	CHECK_EQ_INT(rw_yaml_to_json(y, len, &out, err, sizeof(err)), 0);
	CHECK_EQ_INT(rw_json_parse(&j, out.data, out.len, 1 << 16, err, sizeof(err)), 0);
	CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "kind"), "RayService"));
	char *cfg = rw_json_strdup(&j, rw_json_path(&j, 0, "spec.serveConfigV2"));
	CHECK(cfg != NULL && strstr(cfg, "applications:") != NULL);
	if (cfg) {
		CHECK_EQ_INT(rw_yaml_to_json(cfg, strlen(cfg), &serve, err, sizeof(err)), 0);
		CHECK_EQ_INT(rw_json_parse(&s, serve.data, serve.len, 4096, err, sizeof(err)), 0);
		int apps = rw_json_get(&s, 0, "applications");
		CHECK_EQ_INT(rw_json_type(&s, apps), RW_JSON_ARRAY);
		CHECK(rw_json_size(&s, apps) >= 2);
		int app0 = rw_json_at(&s, apps, 0);
		CHECK(rw_json_streq(&s, rw_json_get(&s, app0, "name"), "fruit_app"));
		int dep0 = rw_json_at(&s, rw_json_get(&s, app0, "deployments"), 0);
		int64_t replicas = 0;
		double cpus = 0;
		CHECK_EQ_INT(rw_json_int(&s, rw_json_get(&s, dep0, "num_replicas"), &replicas), 0);
		CHECK_EQ_INT(replicas, 2);
		CHECK_EQ_INT(
		    rw_json_double(&s, rw_json_path(&s, dep0, "ray_actor_options.num_cpus"), &cpus),
		    0);
		CHECK(cpus == 0.1);
		rw_json_fini(&s);
	}
	free(cfg);
	rw_json_fini(&j);
	rw_buf_fini(&serve);
	rw_buf_fini(&out);
	free(y);
}

static void
t_big_crd(void)
{
	char crds[1024], path[1200];
	size_t len;
	if (rwt_corpus("kuberay-crds", crds, sizeof(crds)) != 0)
		return;
	snprintf(path, sizeof(path), "%s/ray.io_rayclusters.yaml", crds);
	char *y = read_file(path, &len);
	if (!y) {
		printf("  (skipped: %s not found)\n", path);
		return;
	}
	struct rw_buf out;
	struct rw_json j;
	struct timespec t0;
	char err[256] = "";
	rw_buf_init(&out, 16 << 20);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	CHECK_EQ_INT(rw_yaml_to_json(y, len, &out, err, sizeof(err)), 0);
	double secs = elapsed(&t0);
	printf("  %zu bytes of YAML -> %zu bytes of JSON in %.0f ms\n", len, out.len, secs * 1e3);
	CHECK(secs < 5.0);
	CHECK_EQ_INT(rw_json_parse(&j, out.data, out.len, 1 << 22, err, sizeof(err)), 0);
	CHECK(rw_json_streq(&j, rw_json_path(&j, 0, "spec.names.kind"), "RayCluster"));
	rw_json_fini(&j);
	rw_buf_fini(&out);
	free(y);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"plain scalar typing (go-yaml v2)", t_plain_typing},
	    {"quoted and block scalars stay strings", t_non_plain_strings},
	    {"explicit tags", t_tags},
	    {"mapping keys", t_keys},
	    {"anchors, aliases and merge keys", t_anchors_merges},
	    {"flow, block and empty documents", t_flow_and_structure},
	    {"errors with line and column", t_errors},
	    {"nesting depth", t_depth},
	    {"multi-document streams", t_multi_doc},
	    {"appending and max_json", t_append_and_limits},
	    {"alias and merge bombs", t_bombs},
	    {"KubeRay samples", t_kuberay_samples},
	    {"1 MB CRD", t_big_crd},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

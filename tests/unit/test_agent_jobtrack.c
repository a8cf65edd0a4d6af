/* test_agent_jobtrack.c - the pure parts of job tracking: log tail reader, last error line, slots.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobtrack.h"
#include "rwtest.h"

static struct rw_logtail lt; /* large: not on the stack */

/* Read body in pieces of `step` bytes (0: one piece); the result into *out (malloc'd). */
static int
read_all(const char *body, size_t n, size_t step, char **out, int *trunc)
{
	size_t len;
	rw_logtail_init(&lt, 1 << 30);
	for (size_t i = 0; i < n;) {
		size_t k = step && step < n - i ? step : n - i;
		rw_logtail_feed(&lt, body + i, k);
		i += k;
	}
	CHECK_EQ_INT(rw_logtail_result(&lt, out, &len, trunc), 0);
	CHECK_EQ_INT(len, strlen(*out));
	return rw_logtail_complete(&lt);
}

static void
t_logtail_table(void)
{
	static const struct {
		const char *body;
		int complete;
		const char *want;
	} cases[] = {
	    {"{\"logs\": \"a\\nb\"}", 1, "a\nb"},
	    {"{\"logs\":\"\"}", 1, ""},
	    {" \r\n{ \"logs\" : \"x\" } \n", 1, "x"},
	    /* Escapes, \u, a surrogate pair, NUL and lone surrogates. */
	    {"{\"logs\":\"q\\\" s\\\\ s\\/ \\b\\f\\r\\t \\u00e9\\u20ac \\ud83d\\ude00\"}", 1,
	     "q\" s\\ s/ \b\f\r\t \xc3\xa9\xe2\x82\xac \xf0\x9f\x98\x80"},
	    {"{\"logs\":\"a\\u0000b\"}", 1, "a?b"},
	    {"{\"logs\":\"\\ud83dx\\ude00\"}", 1, "\xef\xbf\xbdx\xef\xbf\xbd"},
	    {"{\"logs\":\"\\ud83d\\u0041\"}", 1,
	     "\xef\xbf\xbd"
	     "A"},
	    /* Raw non-ASCII stays; broken UTF-8 becomes '?'. */
	    {"{\"logs\":\"caf\xc3\xa9 \xff\xc3\"}", 1, "caf\xc3\xa9 ??"},
	    /* Other members are skipped, whatever they hold. */
	    {"{\"a\":{\"logs\":\"no\",\"x\":[1,{\"}\":\"]\\\"\"}]},\"b\":-1.5e3,\"c\":null,"
	     "\"logs\":\"yes\",\"d\":true,\"e\":\"\\\"}\"}",
	     1, "yes"},
	    {"{\"log\":\"no\",\"logsx\":\"no\",\"lo\\u0067s\":\"no\",\"logs\":\"yes\"}", 1, "yes"},
	    /* A repeated key: the last one wins. */
	    {"{\"logs\":\"one\",\"logs\":\"two\"}", 1, "two"},
	    /* Not what Ray sends. */
	    {"Job x does not exist", 0, ""},
	    {"[\"logs\"]", 0, ""},
	    {"{\"logs\":null}", 0, ""},
	    {"{\"logs\":\"ab\\x\"}", 0, "ab"},
	    {"{\"logs\":\"ab\\u12g4\"}", 0, "ab"},
	    {"{\"other\":1}", 0, ""},
	    {"{\"logs\":\"ab\"} x", 0, "ab"},
	    {"{\"logs\":\"ab\" \"c\"}", 0, "ab"},
	    {"{\"logs\":\"abc", 0, "abc"}, /* cut short: what was read is kept */
	    {"{\"logs\":\"abc\"", 0, "abc"},
	    {"{", 0, ""},
	    {"", 0, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *b = cases[i].body;
		size_t n = strlen(b);
		/* Every split into two pieces, and byte by byte, read as the whole. */
		for (size_t step = 0; step <= n; step++) {
			char *out = NULL;
			int trunc = 1;
			int c = read_all(b, n, step, &out, &trunc);
			if (c != cases[i].complete || !out || strcmp(out, cases[i].want) != 0) {
				fprintf(stderr, "  case %zu step %zu: complete %d out \"%s\"\n", i,
					step, c, out ? out : "(null)");
				CHECK(0);
				free(out);
				break;
			}
			CHECK_EQ_INT(trunc, 0);
			free(out);
		}
		for (size_t cut = 1; cut < n; cut++) {
			char *out = NULL;
			int trunc;
			rw_logtail_init(&lt, 1 << 30);
			rw_logtail_feed(&lt, b, cut);
			rw_logtail_feed(&lt, b + cut, n - cut);
			CHECK_EQ_INT(rw_logtail_complete(&lt), cases[i].complete);
			size_t len;
			CHECK_EQ_INT(rw_logtail_result(&lt, &out, &len, &trunc), 0);
			CHECK_EQ_STR(out, cases[i].want);
			free(out);
		}
	}
	rw_logtail_init(&lt, 1 << 30);
	rw_logtail_feed(&lt, "nope", 4);
	CHECK_EQ_INT(lt.err, -EINVAL);
	CHECK_EQ_STR(lt.why, "the answer is not a JSON object");
	CHECK(lt.first_len == 4 && memcmp(lt.first, "nope", 4) == 0);
}

/* A log larger than the ring: the tail is its last RW_LOG_TAIL_MAX bytes. */
static void
t_logtail_ring(void)
{
	size_t lines = 20000; /* "line NNNNN\n" x 20000: about 220 KiB */
	size_t cap = 32 + lines * 12 * 2;
	char *body = malloc(cap), *want = malloc(cap), *out = NULL;
	size_t o = 0, w = 0, len = 0;
	int trunc = 0;
	o += (size_t)snprintf(body + o, cap - o, "{\"logs\": \"");
	for (size_t i = 0; i < lines; i++) {
		o += (size_t)snprintf(body + o, cap - o, "line %05zu\\n", i);
		w += (size_t)snprintf(want + w, cap - w, "line %05zu\n", i);
	}
	o += (size_t)snprintf(body + o, cap - o, "\"}");
	for (size_t step = 1; step <= 16384; step *= 4) {
		rw_logtail_init(&lt, 1 << 30);
		for (size_t i = 0; i < o; i += step)
			CHECK_EQ_INT(rw_logtail_feed(&lt, body + i, step < o - i ? step : o - i),
				     0);
		CHECK(rw_logtail_complete(&lt));
		CHECK_EQ_INT(lt.out_total, w);
		CHECK_EQ_INT(rw_logtail_result(&lt, &out, &len, &trunc), 0);
		CHECK_EQ_INT(len, RW_LOG_TAIL_MAX);
		CHECK_EQ_INT(trunc, 1);
		CHECK(memcmp(out, want + w - RW_LOG_TAIL_MAX, RW_LOG_TAIL_MAX) == 0);
		CHECK(strcmp(out + len - 11, "line 19999\n") == 0);
		free(out);
	}
	/* The read limit: input past max_in is refused, what came before is kept. */
	rw_logtail_init(&lt, 1000);
	CHECK_EQ_INT(rw_logtail_feed(&lt, body, 999), 0);
	CHECK_EQ_INT(rw_logtail_feed(&lt, body + 999, 2), -EFBIG);
	CHECK_EQ_INT(rw_logtail_feed(&lt, "x", 1), -EFBIG);
	CHECK(!rw_logtail_complete(&lt));
	CHECK_EQ_INT(lt.in_total, 1000);
	CHECK_EQ_INT(rw_logtail_result(&lt, &out, &len, &trunc), 0);
	CHECK(len > 900 && strncmp(out, "line 00000\n", 11) == 0);
	free(out);
	free(body);
	free(want);
}

/* A ring cut inside a multi-byte character starts at the next character. */
static void
t_logtail_cut_utf8(void)
{
	char *out;
	size_t len;
	int trunc;
	rw_logtail_init(&lt, 1 << 30);
	rw_logtail_feed(&lt, "{\"logs\":\"", 9);
	rw_logtail_feed(&lt, "a", 1); /* shift by one: the cut falls inside a \u20ac */
	for (size_t i = 0; i < RW_LOG_TAIL_MAX / 3 + 10; i++)
		rw_logtail_feed(&lt, "\xe2\x82\xac", 3);
	rw_logtail_feed(&lt, "\"}", 2);
	CHECK(rw_logtail_complete(&lt));
	CHECK_EQ_INT(rw_logtail_result(&lt, &out, &len, &trunc), 0);
	CHECK_EQ_INT(trunc, 1);
	CHECK(len % 3 == 0 && len <= RW_LOG_TAIL_MAX && len >= RW_LOG_TAIL_MAX - 3);
	CHECK(memcmp(out, "\xe2\x82\xac", 3) == 0);
	CHECK(strchr(out, '?') == NULL);
	free(out);
}

static void
t_last_error_line(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"", ""},
	    {"\n \n\t\n", ""},
	    {"hello\nworld\n", "world"},
	    {"hello\nworld", "world"},
	    {"Traceback (most recent call last):\n  File \"x.py\", line 3, in <module>\n"
	     "    import emojii\nModuleNotFoundError: No module named 'emojii'\n",
	     "ModuleNotFoundError: No module named 'emojii'"},
	    /* The exception, not the cleanup lines after it. */
	    {"ValueError: bad value\nshutting down\n\n", "ValueError: bad value"},
	    {"ray.exceptions.RayTaskError(ZeroDivisionError): ray::f() (pid=1)\n  done\n",
	     "ray.exceptions.RayTaskError(ZeroDivisionError): ray::f() (pid=1)"},
	    {"first Error: no\nKeyboardInterrupt\nbye\n", "KeyboardInterrupt"},
	    {"SystemExit: 3\nexit\n", "SystemExit: 3"},
	    {"  RuntimeError: indented  \r\n", "RuntimeError: indented"},
	    {"custom.MyException\n", "custom.MyException"},
	    /* Not exceptions: the last non-empty line. */
	    {"ERROR worker.py:12 -- boom\nlast\n", "last"},
	    {"Errors: 3\nValueErrorx: y\nend", "end"},
	    {"x = ValueError: no\n", "x = ValueError: no"},
	    {"Error(: unclosed\n", "Error(: unclosed"},
	    {"tab\there\x01\n", "tab here"},
	};
	char out[RW_MSG_MAX];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n =
		    rw_last_error_line(cases[i].text, strlen(cases[i].text), out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0)
			fprintf(stderr, "  case %zu\n", i);
		CHECK_EQ_STR(out, cases[i].want);
		CHECK_EQ_INT(n, strlen(cases[i].want));
	}
	/* Cut to fit, at a character boundary. */
	char small[8];
	CHECK_EQ_INT(rw_last_error_line("ab\xc3\xa9\xc3\xa9\xc3\xa9", 8, small, sizeof(small)), 6);
	CHECK_EQ_STR(small, "ab\xc3\xa9\xc3\xa9");
	CHECK_EQ_INT(rw_last_error_line("abc", 3, small, 1), 0);
	CHECK_EQ_STR(small, "");
}

static void
t_slot_pick(void)
{
	/* used, busy, terminal, reported, unseen, age */
	struct rw_job_slot all_running[3] = {
	    {1, 0, 0, 0, 0, 1}, {1, 0, 0, 0, 0, 2}, {1, 0, 0, 0, 0, 3}};
	CHECK_EQ_INT(rw_job_slot_pick(all_running, 3), -1);
	struct rw_job_slot free_one[3] = {
	    {1, 0, 1, 1, 0, 1}, {0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 3}};
	CHECK_EQ_INT(rw_job_slot_pick(free_one, 3), 1);
	/* Reported ends go first, oldest first, even if an unreported one is older. */
	struct rw_job_slot ends[4] = {
	    {1, 0, 1, 0, 0, 1}, {1, 0, 1, 1, 0, 9}, {1, 0, 1, 1, 0, 5}, {1, 0, 0, 0, 0, 0}};
	CHECK_EQ_INT(rw_job_slot_pick(ends, 4), 2);
	/* Then unreported ends, then watched jobs Ray never had. */
	struct rw_job_slot unrep[3] = {{1, 0, 0, 0, 1, 1}, {1, 0, 1, 0, 0, 7}, {1, 0, 1, 0, 0, 4}};
	CHECK_EQ_INT(rw_job_slot_pick(unrep, 3), 2);
	struct rw_job_slot unseen[3] = {{1, 0, 0, 0, 1, 8}, {1, 0, 0, 0, 0, 1}, {1, 0, 0, 0, 1, 3}};
	CHECK_EQ_INT(rw_job_slot_pick(unseen, 3), 2);
	/* A request in flight protects a slot. */
	struct rw_job_slot busy[2] = {{1, 1, 1, 1, 0, 1}, {1, 0, 0, 0, 0, 2}};
	CHECK_EQ_INT(rw_job_slot_pick(busy, 2), -1);
	CHECK_EQ_INT(rw_job_slot_pick(busy, 0), -1);
}

static void
t_escaped_bound(void)
{
	CHECK_EQ_INT(rw_json_escaped_bound("", 0), 0);
	CHECK_EQ_INT(rw_json_escaped_bound("ab", 2), 2);
	CHECK_EQ_INT(rw_json_escaped_bound("\"\\", 2), 4);
	CHECK_EQ_INT(rw_json_escaped_bound("\n\x01", 2), 12);
	CHECK_EQ_INT(rw_json_escaped_bound("\xc3\xa9", 2), 6);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"log tail table at every split", t_logtail_table},
	    {"log tail ring and read limit", t_logtail_ring},
	    {"log tail cut at a UTF-8 boundary", t_logtail_cut_utf8},
	    {"last error line", t_last_error_line},
	    {"slot pick", t_slot_pick},
	    {"escaped bound", t_escaped_bound},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

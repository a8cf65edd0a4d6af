/* test_log.c - log line format, levels, escaping, JSON validity and truncation. */
#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include "rw/json.h"
#include "rw/log.h"
#include "rwtest.h"

#define LINE_MAX_BYTES 8192

static char captured[1 << 17];
static size_t captured_len;

/* Redirect fd 2 to a temporary file around the calls made by fn. */
static void
capture(void (*fn)(void))
{
	char path[] = "/tmp/rw_test_log_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	fn();
	dup2(saved, 2);
	close(saved);
	captured_len = 0;
	lseek(fd, 0, SEEK_SET);
	for (;;) {
		ssize_t n = read(fd, captured + captured_len, sizeof(captured) - 1 - captured_len);
		if (n <= 0)
			break;
		captured_len += (size_t)n;
	}
	captured[captured_len] = '\0';
	close(fd);
}

static int
count_lines(void)
{
	int n = 0;
	for (size_t i = 0; i < captured_len; i++)
		n += captured[i] == '\n';
	return n;
}

static bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* YYYY-MM-DDTHH:MM:SS.mmmZ */
static bool
is_ts(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	for (size_t i = 0; i < sizeof(pat) - 1; i++) {
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return false;
	}
	return true;
}

static void
emit_text(void)
{
	rw_log_setup("agent", RW_LOG_TEXT, RW_LOG_INFO);
	rw_info("probe", "raylet %s -> %s (%d)", "healthy", "dead", 3);
	rw_debug("probe", "hidden");
	rw_warn("report", "two\nlines\tand\x01 ctl");
	rw_error(NULL, "no component");
	rw_log(RW_LOG_ERROR, "", "empty component");
}

static void
t_text(void)
{
	capture(emit_text);
	CHECK_EQ_INT(count_lines(), 4);
	char *l1 = captured;
	CHECK(is_ts(l1));
	CHECK(starts(l1 + 24, " INFO  agent probe: raylet healthy -> dead (3)\n"));
	char *l2 = strchr(l1, '\n') + 1;
	CHECK(is_ts(l2));
	CHECK(starts(l2 + 24, " WARN  agent report: two\\nlines\\tand\\x01 ctl\n"));
	char *l3 = strchr(l2, '\n') + 1;
	CHECK(starts(l3 + 24, " ERROR agent: no component\n"));
	char *l4 = strchr(l3, '\n') + 1;
	CHECK(starts(l4 + 24, " ERROR agent: empty component\n"));
	CHECK(strstr(captured, "hidden") == NULL);
}

static void
emit_json(void)
{
	rw_log_setup("controller", RW_LOG_JSON, RW_LOG_DEBUG);
	rw_debug("reconcile", "quote \" backslash \\ newline \n tab \t bell \a utf8 \xc3\xa9");
	rw_info(NULL, "plain");
	rw_error("x", "bad utf8 \xff end");
}

static void
t_json(void)
{
	capture(emit_json);
	CHECK_EQ_INT(count_lines(), 3);
	char *line = captured;
	for (int i = 0; i < 3 && line && *line; i++) {
		char *nl = strchr(line, '\n');
		CHECK(nl != NULL);
		if (!nl)
			break;
		struct rw_json j;
		char err[128] = "", s[256];
		int rv = rw_json_parse(&j, line, (size_t)(nl - line), 64, err, sizeof(err));
		if (rv)
			fprintf(stderr, "  line %d: %s: %.*s\n", i, err, (int)(nl - line), line);
		CHECK_EQ_INT(rv, 0);
		CHECK(rw_json_str(&j, rw_json_get(&j, 0, "ts"), s, sizeof(s)) == 24 && is_ts(s));
		CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "prog"), "controller"));
		if (i == 0) {
			CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "level"), "debug"));
			CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "component"), "reconcile"));
			CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "msg"),
					    "quote \" backslash \\ newline \n tab \t bell \a utf8 "
					    "\xc3\xa9"));
			/* Key order as documented. */
			CHECK(strncmp(line, "{\"ts\":\"", 7) == 0);
			CHECK(strstr(line, "\",\"level\":\"debug\",\"prog\":\"controller\","
					   "\"component\":\"reconcile\",\"msg\":\"") != NULL);
		} else if (i == 1) {
			CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "level"), "info"));
			CHECK_EQ_INT(rw_json_get(&j, 0, "component"), -1);
			CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "msg"), "plain"));
		} else {
			CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "level"), "error"));
			CHECK(rw_json_streq(&j, rw_json_get(&j, 0, "msg"),
					    "bad utf8 \xef\xbf\xbd end"));
		}
		CHECK_EQ_INT(rw_json_get(&j, 0, "truncated"), -1);
		rw_json_fini(&j);
		line = nl + 1;
	}
}

static char big[40000];

static void
emit_long(void)
{
	rw_info("big", "%s", big);
}

/* A very long message of each kind is cut to one bounded, well-formed line. */
static void
t_truncate(void)
{
	static const struct {
		const char *unit;
		size_t ulen;
	} fills[] = {{"a", 1},	{"\xc3\xa9", 2}, {"\xe2\x82\xac", 3},	 {"\x01", 1},
		     {"\"", 1}, {"\n", 1},	 {"\xf0\x9f\x98\x80", 4}};
	for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
		size_t n = 0;
		while (n + fills[f].ulen < 20000) {
			memcpy(big + n, fills[f].unit, fills[f].ulen);
			n += fills[f].ulen;
		}
		big[n] = '\0';
		for (int fmt = 0; fmt < 2; fmt++) {
			rw_log_setup("agent", fmt ? RW_LOG_JSON : RW_LOG_TEXT, RW_LOG_INFO);
			capture(emit_long);
			CHECK_EQ_INT(count_lines(), 1);
			CHECK(captured_len <= LINE_MAX_BYTES);
			CHECK(captured_len > LINE_MAX_BYTES - 64);
			CHECK(captured[captured_len - 1] == '\n');
			if (!fmt) {
				CHECK(strstr(captured, " [truncated]\n") != NULL);
				continue;
			}
			struct rw_json j;
			char err[128] = "";
			int rv = rw_json_parse(&j, captured, captured_len, 64, err, sizeof(err));
			if (rv)
				fprintf(stderr, "  fill %zu: %s\n", f, err);
			CHECK_EQ_INT(rv, 0);
			bool tr = false;
			CHECK_EQ_INT(rw_json_bool(&j, rw_json_get(&j, 0, "truncated"), &tr), 0);
			CHECK(tr);
			char *m = rw_json_strdup(&j, rw_json_get(&j, 0, "msg"));
			CHECK(m != NULL);
			if (m) {
				size_t ml = strlen(m);
				CHECK(ml > 12 && strcmp(m + ml - 12, " [truncated]") == 0);
				/* The kept part is a whole number of fill units. */
				CHECK((ml - 12) % fills[f].ulen == 0);
				CHECK(strncmp(m, big, ml - 12) == 0);
			}
			free(m);
			rw_json_fini(&j);
		}
	}
	/* Just under the limit: not truncated. */
	memset(big, 'b', 8000);
	big[8000] = '\0';
	rw_log_setup("agent", RW_LOG_JSON, RW_LOG_INFO);
	capture(emit_long);
	CHECK(strstr(captured, "truncated") == NULL);
	CHECK(captured_len > 8000 && captured_len <= LINE_MAX_BYTES);
}

static void
emit_errno(void)
{
	errno = EAGAIN;
	rw_info("e", "keeps errno");
	CHECK_EQ_INT(errno, EAGAIN);
}

static void
t_errno_and_levels(void)
{
	rw_log_setup("agent", RW_LOG_TEXT, RW_LOG_WARN);
	CHECK(!rw_log_enabled(RW_LOG_DEBUG));
	CHECK(!rw_log_enabled(RW_LOG_INFO));
	CHECK(rw_log_enabled(RW_LOG_WARN));
	CHECK(rw_log_enabled(RW_LOG_ERROR));
	CHECK(!rw_log_enabled((enum rw_log_level)42));
	rw_log_setup("agent", RW_LOG_TEXT, RW_LOG_DEBUG);
	CHECK(rw_log_enabled(RW_LOG_DEBUG));
	capture(emit_errno);
	CHECK_EQ_INT(count_lines(), 1);
}

struct parse_case {
	const char *s;
	int rv;
	int want;
};

static void
t_parse(void)
{
	static const struct parse_case levels[] = {
	    {"debug", 0, RW_LOG_DEBUG}, {"info", 0, RW_LOG_INFO},
	    {"warn", 0, RW_LOG_WARN},	{"WARNING", 0, RW_LOG_WARN},
	    {"error", 0, RW_LOG_ERROR}, {"Error", 0, RW_LOG_ERROR},
	    {"", -EINVAL, 0},		{"fatal", -EINVAL, 0},
	    {NULL, -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		enum rw_log_level l = (enum rw_log_level)99;
		CHECK_EQ_INT(rw_log_parse_level(levels[i].s, &l), levels[i].rv);
		if (!levels[i].rv)
			CHECK_EQ_INT(l, levels[i].want);
		else
			CHECK_EQ_INT(l, 99);
	}
	static const struct parse_case fmts[] = {
	    {"text", 0, RW_LOG_TEXT}, {"json", 0, RW_LOG_JSON}, {"JSON", 0, RW_LOG_JSON},
	    {"yaml", -EINVAL, 0},     {"", -EINVAL, 0},		{NULL, -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		enum rw_log_format f = (enum rw_log_format)99;
		CHECK_EQ_INT(rw_log_parse_format(fmts[i].s, &f), fmts[i].rv);
		if (!fmts[i].rv)
			CHECK_EQ_INT(f, fmts[i].want);
		else
			CHECK_EQ_INT(f, 99);
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"text lines", t_text},
	    {"JSON lines", t_json},
	    {"truncation at 8 KiB", t_truncate},
	    {"levels and errno", t_errno_and_levels},
	    {"parse level and format", t_parse},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

/*
 * jobtrack.c - pure helpers of job tracking (jobtrack.h): the driver log
 * tail reader, the last error line and the tracked-job slot choice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobtrack.h"
#include "rw/text.h"

/* Parser states of struct rw_logtail. */
enum {
	LT_START = 0,  /* before the object */
	LT_KEY_OR_END, /* after '{' */
	LT_KEY_START,  /* after ',' */
	LT_KEY,	       /* inside a key */
	LT_KEY_ESC,    /* after a backslash in a key */
	LT_COLON,
	LT_VALUE,
	LT_SKIP,      /* inside another member's object, array or string */
	LT_SKIP_PRIM, /* inside another member's number or literal */
	LT_AFTER,     /* after a value */
	LT_LOGS,      /* inside the "logs" string */
	LT_LOGS_ESC,  /* after a backslash in it */
	LT_LOGS_U,    /* reading \uXXXX */
	LT_DONE,      /* after the closing brace */
};

/* Deeper than this while skipping a member is refused (a counter, not memory). */
#define SKIP_MAX_DEPTH (1L << 20)

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
lt_fail(struct rw_logtail *lt, int err, const char *why)
{
	if (!lt->err) {
		lt->err = err;
		snprintf(lt->why, sizeof(lt->why), "%s", why);
	}
	return lt->err;
}

void
rw_logtail_init(struct rw_logtail *lt, uint64_t max_in)
{
	/* The ring is not cleared: only its written part is ever read. */
	size_t head = offsetof(struct rw_logtail, ring);
	memset(lt, 0, head);
	lt->max_in = max_in;
}

static void
put(struct rw_logtail *lt, char c)
{
	lt->ring[lt->out_total % RW_LOG_TAIL_MAX] = c;
	lt->out_total++;
}

static void
put_cp(struct rw_logtail *lt, unsigned cp)
{
	char u[4];
	int n;
	if (cp == 0) {
		put(lt, '?'); /* a C string cannot hold NUL */
		return;
	}
	n = rw_utf8_put(cp, u);
	for (int i = 0; i < n; i++)
		put(lt, u[i]);
}

/* A high surrogate not followed by its low half stands for U+FFFD. */
static void
flush_surrogate(struct rw_logtail *lt)
{
	if (lt->hi_sur) {
		put_cp(lt, 0xFFFD);
		lt->hi_sur = 0;
	}
}

static void
escape_done(struct rw_logtail *lt)
{
	unsigned cp = lt->ucp;
	if (cp >= 0xDC00 && cp <= 0xDFFF) {
		if (lt->hi_sur) {
			cp = 0x10000 + ((lt->hi_sur - 0xD800) << 10) + (cp - 0xDC00);
			lt->hi_sur = 0;
			put_cp(lt, cp);
		} else {
			put_cp(lt, 0xFFFD);
		}
		return;
	}
	flush_surrogate(lt);
	if (cp >= 0xD800 && cp <= 0xDBFF)
		lt->hi_sur = cp;
	else
		put_cp(lt, cp);
}

/* One byte of the answer. Returns 0 or the error. */
static int
step(struct rw_logtail *lt, char c)
{
	static const char logs[] = "logs";
	switch (lt->st) {
	case LT_START:
		if (is_ws(c))
			return 0;
		if (c != '{')
			return lt_fail(lt, -EINVAL, "the answer is not a JSON object");
		lt->st = LT_KEY_OR_END;
		return 0;
	case LT_KEY_OR_END:
	case LT_KEY_START:
		if (is_ws(c))
			return 0;
		if (c == '}' && lt->st == LT_KEY_OR_END) {
			lt->st = LT_DONE;
			return 0;
		}
		if (c != '"')
			return lt_fail(lt, -EINVAL, "expected a member name");
		lt->st = LT_KEY;
		lt->key_logs = 1;
		lt->key_len = 0;
		return 0;
	case LT_KEY:
		if (c == '"') {
			lt->value_is_logs = lt->key_logs && lt->key_len == 4;
			lt->st = LT_COLON;
		} else if (c == '\\') {
			lt->key_logs = 0; /* "logs" needs no escape */
			lt->st = LT_KEY_ESC;
		} else {
			if (lt->key_len >= 4 || c != logs[lt->key_len])
				lt->key_logs = 0;
			lt->key_len++;
		}
		return 0;
	case LT_KEY_ESC:
		lt->st = LT_KEY;
		return 0;
	case LT_COLON:
		if (is_ws(c))
			return 0;
		if (c != ':')
			return lt_fail(lt, -EINVAL, "expected ':'");
		lt->st = LT_VALUE;
		return 0;
	case LT_VALUE:
		if (is_ws(c))
			return 0;
		if (lt->value_is_logs) {
			if (c != '"')
				return lt_fail(lt, -EINVAL, "\"logs\" is not a string");
			/* A repeated key: the last one wins, as in any JSON reader. */
			lt->out_total = 0;
			lt->found = 0;
			lt->st = LT_LOGS;
			return 0;
		}
		if (c == '"' || c == '{' || c == '[') {
			lt->skip_str = c == '"';
			lt->skip_esc = 0;
			lt->depth = c == '"' ? 0 : 1;
			lt->st = LT_SKIP;
			return 0;
		}
		if (c == ',' || c == '}' || c == ']' || c == ':')
			return lt_fail(lt, -EINVAL, "expected a value");
		lt->st = LT_SKIP_PRIM;
		return 0;
	case LT_SKIP:
		if (lt->skip_str) {
			if (lt->skip_esc)
				lt->skip_esc = 0;
			else if (c == '\\')
				lt->skip_esc = 1;
			else if (c == '"') {
				lt->skip_str = 0;
				if (lt->depth == 0)
					lt->st = LT_AFTER;
			}
			return 0;
		}
		if (c == '"') {
			lt->skip_str = 1;
		} else if (c == '{' || c == '[') {
			if (++lt->depth > SKIP_MAX_DEPTH)
				return lt_fail(lt, -EINVAL, "nested too deeply");
		} else if (c == '}' || c == ']') {
			if (--lt->depth == 0)
				lt->st = LT_AFTER;
		}
		return 0;
	case LT_SKIP_PRIM:
		if (!is_ws(c) && c != ',' && c != '}')
			return 0;
		lt->st = LT_AFTER;
		return step(lt, c);
	case LT_AFTER:
		if (is_ws(c))
			return 0;
		if (c == ',') {
			lt->st = LT_KEY_START;
			return 0;
		}
		if (c == '}') {
			lt->st = LT_DONE;
			return 0;
		}
		return lt_fail(lt, -EINVAL, "expected ',' or '}'");
	case LT_LOGS:
		if (c == '\\') {
			lt->st = LT_LOGS_ESC;
			return 0;
		}
		flush_surrogate(lt);
		if (c == '"') {
			lt->found = 1;
			lt->st = LT_AFTER;
			return 0;
		}
		put(lt, c == '\0' ? '?' : c);
		return 0;
	case LT_LOGS_ESC: {
		static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
		const char *p = c ? strchr(from, c) : NULL;
		if (c == 'u') {
			lt->ucp = 0;
			lt->udigits = 0;
			lt->st = LT_LOGS_U;
			return 0;
		}
		if (!p)
			return lt_fail(lt, -EINVAL, "invalid escape in \"logs\"");
		flush_surrogate(lt);
		put(lt, to[p - from]);
		lt->st = LT_LOGS;
		return 0;
	}
	case LT_LOGS_U: {
		int v = rw_hexval(c);
		if (v < 0)
			return lt_fail(lt, -EINVAL, "invalid \\u escape in \"logs\"");
		lt->ucp = (lt->ucp << 4) | (unsigned)v;
		if (++lt->udigits == 4) {
			escape_done(lt);
			lt->st = LT_LOGS;
		}
		return 0;
	}
	case LT_DONE:
		if (is_ws(c))
			return 0;
		return lt_fail(lt, -EINVAL, "data after the JSON object");
	default:
		return lt_fail(lt, -EINVAL, "bad parser state");
	}
}

int
rw_logtail_feed(struct rw_logtail *lt, const char *data, size_t len)
{
	if (lt->err)
		return lt->err;
	if (lt->first_len < sizeof(lt->first)) {
		size_t k = sizeof(lt->first) - lt->first_len;
		if (k > len)
			k = len;
		memcpy(lt->first + lt->first_len, data, k);
		lt->first_len += k;
	}
	for (size_t i = 0; i < len; i++) {
		if (lt->in_total >= lt->max_in)
			return lt_fail(lt, -EFBIG, "the log answer exceeds the read limit");
		lt->in_total++;
		if (step(lt, data[i]) != 0)
			return lt->err;
	}
	return 0;
}

int
rw_logtail_complete(const struct rw_logtail *lt)
{
	return !lt->err && lt->st == LT_DONE && lt->found;
}

/* Length of the well-formed UTF-8 sequence at p (n bytes available), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t k;
	unsigned min;
	if (c < 0x80)
		return c ? 1 : 0;
	if (c >= 0xC2 && c <= 0xDF)
		k = 2, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		k = 3, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		k = 4, min = 0x10000;
	else
		return 0;
	if (n < k)
		return 0;
	unsigned cp = c & (0x7F >> k);
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return k;
}

int
rw_logtail_result(const struct rw_logtail *lt, char **out, size_t *len, int *truncated)
{
	size_t n = lt->out_total < RW_LOG_TAIL_MAX ? (size_t)lt->out_total : RW_LOG_TAIL_MAX;
	size_t start = lt->out_total <= RW_LOG_TAIL_MAX ? 0 : lt->out_total % RW_LOG_TAIL_MAX;
	char *s = malloc(n + 1);
	size_t from = 0, o = 0;
	*out = NULL;
	*len = 0;
	*truncated = lt->out_total > RW_LOG_TAIL_MAX;
	if (!s)
		return -ENOMEM;
	memcpy(s, lt->ring + start, n - start);
	memcpy(s + (n - start), lt->ring, start);
	/* A cut ring may start inside a character: drop its continuation bytes. */
	if (*truncated)
		while (from < n && from < 3 && ((unsigned char)s[from] & 0xC0) == 0x80)
			from++;
	for (size_t i = from; i < n;) {
		size_t k = utf8_len((const unsigned char *)s + i, n - i);
		if (k == 0) {
			s[o++] = '?';
			i++;
			continue;
		}
		memmove(s + o, s + i, k);
		o += k;
		i += k;
	}
	s[o] = '\0';
	*out = s;
	*len = o;
	return 0;
}

/* ---- last error line ---- */

static int
ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.';
}

static int
ends_with(const char *p, size_t n, const char *suf)
{
	size_t k = strlen(suf);
	return n >= k && memcmp(p + n - k, suf, k) == 0;
}

/*
 * Python's exception line: a (dotted) class name ending in Error,
 * Exception or Interrupt, or SystemExit, optionally followed by Ray's
 * "(Cause)", then ':' or the end of the line.
 */
static int
looks_like_exception(const char *p, size_t n)
{
	size_t i = 0, last = 0;
	if (n == 0 ||
	    !((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z') || p[0] == '_'))
		return 0;
	while (i < n && ident_char(p[i])) {
		if (p[i] == '.')
			last = i + 1;
		i++;
	}
	const char *name = p + last;
	size_t nl = i - last;
	if (!(ends_with(name, nl, "Error") || ends_with(name, nl, "Exception") ||
	      ends_with(name, nl, "Interrupt") ||
	      (nl == 10 && memcmp(name, "SystemExit", 10) == 0)))
		return 0;
	if (i < n && p[i] == '(') {
		while (i < n && p[i] != ')')
			i++;
		if (i == n)
			return 0;
		i++;
	}
	return i == n || p[i] == ':';
}

/* White space and control characters, trimmed from both ends of a line. */
static int
is_space(char c)
{
	return (unsigned char)c <= 0x20 || c == 0x7F;
}

size_t
rw_last_error_line(const char *text, size_t len, char *out, size_t outlen)
{
	const char *pick = NULL, *fallback = NULL;
	size_t pick_n = 0, fallback_n = 0;
	size_t end = len;
	if (outlen == 0)
		return 0;
	out[0] = '\0';
	while (end > 0 && !pick) {
		size_t b = end;
		while (b > 0 && text[b - 1] != '\n')
			b--;
		const char *p = text + b;
		size_t n = end - b;
		while (n > 0 && is_space(*p))
			p++, n--;
		while (n > 0 && is_space(p[n - 1]))
			n--;
		if (n > 0) {
			if (!fallback)
				fallback = p, fallback_n = n;
			if (looks_like_exception(p, n))
				pick = p, pick_n = n;
		}
		end = b > 0 ? b - 1 : 0;
	}
	if (!pick)
		pick = fallback, pick_n = fallback_n;
	if (!pick)
		return 0;
	size_t n = rw_utf8_cut(pick, pick_n, outlen - 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)pick[i];
		out[i] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
	}
	while (n > 0 && out[n - 1] == ' ') /* a cut may end at a space */
		n--;
	out[n] = '\0';
	return n;
}

/* ---- slots ---- */

static int
rank(const struct rw_job_slot *s)
{
	if (!s->used)
		return 0;
	if (s->busy)
		return -1;
	if (s->terminal && s->reported)
		return 1;
	if (s->terminal)
		return 2;
	if (s->unseen)
		return 3;
	return -1;
}

int
rw_job_slot_pick(const struct rw_job_slot *slots, int n)
{
	int best = -1, best_rank = 0;
	for (int i = 0; i < n; i++) {
		int r = rank(&slots[i]);
		if (r < 0)
			continue;
		if (r == 0)
			return i;
		if (best < 0 || r < best_rank ||
		    (r == best_rank && slots[i].age < slots[best].age)) {
			best = i;
			best_rank = r;
		}
	}
	return best;
}

size_t
rw_json_escaped_bound(const char *s, size_t n)
{
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20)
			out += 6;
		else if (c == '"' || c == '\\')
			out += 2;
		else if (c >= 0x80)
			out += 3; /* an invalid byte becomes U+FFFD */
		else
			out += 1;
	}
	return out;
}

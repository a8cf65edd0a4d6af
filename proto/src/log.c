/*
 * log.c - text or JSON log lines on stderr (see rw/log.h).
 *
 * Each call formats one complete line (at most RW_LOG_LINE_MAX bytes with
 * its newline) and hands it to a single write(2) on fd 2, so lines of one
 * process never interleave. A message that does not fit is cut at a
 * character boundary and marked " [truncated]"; JSON lines stay valid JSON
 * and also get "truncated":true.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "rw/buf.h"
#include "rw/clock.h"
#include "rw/json.h"
#include "rw/log.h"

#define RW_LOG_LINE_MAX 8192
#define NAME_MAX_LEN 64
#define TRUNC_MARK " [truncated]"

static struct {
	char prog[NAME_MAX_LEN + 1];
	enum rw_log_format fmt;
	enum rw_log_level min;
} g_log = {"raywarden", RW_LOG_TEXT, RW_LOG_INFO};

static const char *const level_text[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
static const char *const level_json[] = {"debug", "info", "warn", "error"};

void
rw_log_setup(const char *prog, enum rw_log_format fmt, enum rw_log_level min)
{
	snprintf(g_log.prog, sizeof(g_log.prog), "%s", prog ? prog : "raywarden");
	g_log.fmt = fmt == RW_LOG_JSON ? RW_LOG_JSON : RW_LOG_TEXT;
	if ((int)min < (int)RW_LOG_DEBUG)
		min = RW_LOG_DEBUG;
	if ((int)min > (int)RW_LOG_ERROR)
		min = RW_LOG_ERROR;
	g_log.min = min;
}

int
rw_log_parse_format(const char *s, enum rw_log_format *out)
{
	if (!s)
		return -EINVAL;
	if (strcasecmp(s, "text") == 0)
		*out = RW_LOG_TEXT;
	else if (strcasecmp(s, "json") == 0)
		*out = RW_LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

int
rw_log_parse_level(const char *s, enum rw_log_level *out)
{
	if (!s)
		return -EINVAL;
	if (strcasecmp(s, "debug") == 0)
		*out = RW_LOG_DEBUG;
	else if (strcasecmp(s, "info") == 0)
		*out = RW_LOG_INFO;
	else if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		*out = RW_LOG_WARN;
	else if (strcasecmp(s, "error") == 0)
		*out = RW_LOG_ERROR;
	else
		return -EINVAL;
	return 0;
}

int
rw_log_enabled(enum rw_log_level lvl)
{
	return (int)lvl >= (int)RW_LOG_DEBUG && (int)lvl <= (int)RW_LOG_ERROR && lvl >= g_log.min;
}

/*
 * Append s (n bytes) for a text line: control characters become \n, \t,
 * \r or \xNN. Stops before a piece that would take the buffer past `limit`
 * bytes, never inside a UTF-8 sequence. Returns true if all of s fit.
 */
static bool
text_escape(struct rw_buf *b, const char *s, size_t n, size_t limit)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		char esc[4];
		size_t elen = 1, adv = 1;
		esc[0] = (char)c;
		if (c < 0x20 || c == 0x7F) {
			esc[0] = '\\';
			elen = 2;
			if (c == '\n')
				esc[1] = 'n';
			else if (c == '\t')
				esc[1] = 't';
			else if (c == '\r')
				esc[1] = 'r';
			else {
				esc[1] = 'x';
				esc[2] = hex[c >> 4];
				esc[3] = hex[c & 15];
				elen = 4;
			}
		} else if (c >= 0xC0) {
			/* Keep a multi-byte sequence whole. */
			while (i + adv < n && ((unsigned char)s[i + adv] & 0xC0) == 0x80 && adv < 4)
				adv++;
		}
		size_t need = elen == 1 ? adv : elen;
		if (b->len + need > limit)
			return false;
		if (rw_buf_append(b, elen == 1 ? s + i : esc, need) != 0)
			return false;
		i += adv;
	}
	return true;
}

/*
 * Length of the longest prefix of the quoted JSON string q (starting after
 * its opening quote, excluding the closing one) that ends on a character
 * boundary and is at most `room` bytes.
 */
static size_t
json_cut(const char *q, size_t n, size_t room)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)q[i];
		size_t step = 1;
		if (c == '\\')
			step = q[i + 1] == 'u' ? 6 : 2;
		else if (c >= 0xF0)
			step = 4;
		else if (c >= 0xE0)
			step = 3;
		else if (c >= 0xC0)
			step = 2;
		if (i + step > room)
			break;
		i += step;
	}
	return i;
}

static void
write_line(const char *p, size_t n)
{
	/* One write(2); continue only if the kernel took part of it. */
	for (int tries = 0; n > 0 && tries < 16; tries++) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Build the JSON line; the message is cut to fit. */
static int
build_json(struct rw_buf *line, struct rw_buf *tmp, const char *ts, enum rw_log_level lvl,
	   const char *component, const char *msg, size_t mlen, bool truncated)
{
	static const char tail_trunc[] = "\",\"truncated\":true}\n";
	int rv = 0;
	rv |= rw_buf_puts(line, "{\"ts\":\"");
	rv |= rw_buf_puts(line, ts);
	rv |= rw_buf_puts(line, "\",\"level\":\"");
	rv |= rw_buf_puts(line, level_json[lvl]);
	rv |= rw_buf_puts(line, "\",\"prog\":");
	rv |= rw_json_quote(line, g_log.prog, strlen(g_log.prog));
	if (component) {
		rv |= rw_buf_puts(line, ",\"component\":");
		rv |= rw_json_quote(line, component, strnlen(component, NAME_MAX_LEN));
	}
	rv |= rw_buf_puts(line, ",\"msg\":\"");
	if (rv)
		return -EMSGSIZE;
	if ((rv = rw_json_quote(tmp, msg, mlen)) != 0)
		return rv;
	const char *q = tmp->data + 1; /* skip the opening quote */
	size_t qlen = tmp->len - 2;
	size_t room = RW_LOG_LINE_MAX - line->len;
	if (!truncated && qlen + 3 <= room) /* "}\n */
		return rw_buf_append(line, q, qlen) | rw_buf_puts(line, "\"}\n");
	size_t reserve = sizeof(TRUNC_MARK) - 1 + sizeof(tail_trunc) - 1;
	size_t cut = room > reserve ? json_cut(q, qlen, room - reserve) : 0;
	return rw_buf_append(line, q, cut) | rw_buf_puts(line, TRUNC_MARK) |
	       rw_buf_puts(line, tail_trunc);
}

/* Build the text line; the message is cut to fit. */
static int
build_text(struct rw_buf *line, const char *ts, enum rw_log_level lvl, const char *component,
	   const char *msg, size_t mlen, bool truncated)
{
	size_t lim = RW_LOG_LINE_MAX - 1 - (sizeof(TRUNC_MARK) - 1);
	int rv = rw_buf_printf(line, "%s %s ", ts, level_text[lvl]);
	if (rv)
		return rv;
	text_escape(line, g_log.prog, strlen(g_log.prog), lim);
	if (component) {
		rw_buf_putc(line, ' ');
		text_escape(line, component, strnlen(component, NAME_MAX_LEN), lim);
	}
	rw_buf_puts(line, ": ");
	if (!text_escape(line, msg, mlen, lim))
		truncated = true;
	if (truncated)
		rw_buf_puts(line, TRUNC_MARK);
	return rw_buf_putc(line, '\n');
}

void
rw_log(enum rw_log_level lvl, const char *component, const char *fmt, ...)
{
	char msg[RW_LOG_LINE_MAX];
	char ts[RW_RFC3339_LEN];
	struct rw_buf line, tmp;
	va_list ap;

	if (!rw_log_enabled(lvl) || !fmt)
		return;
	int saved_errno = errno;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0) {
		snprintf(msg, sizeof(msg), "(unformattable log message)");
		n = (int)strlen(msg);
	}
	bool truncated = (size_t)n >= sizeof(msg);
	size_t mlen = truncated ? sizeof(msg) - 1 : (size_t)n;
	if (component && !*component)
		component = NULL;

	rw_time_rfc3339_ms(rw_clock_wall_ms(), ts);
	rw_buf_init(&line, RW_LOG_LINE_MAX);
	rw_buf_init(&tmp, 6 * sizeof(msg) + 2); /* worst-case escaping */
	int rv = g_log.fmt == RW_LOG_JSON
		     ? build_json(&line, &tmp, ts, lvl, component, msg, mlen, truncated)
		     : build_text(&line, ts, lvl, component, msg, mlen, truncated);
	if (rv == 0 && line.len > 0) {
		write_line(line.data, line.len);
	} else {
		/* Out of memory: say so without allocating. */
		static const char oom[] = "rw_log: cannot format a log line\n";
		write_line(oom, sizeof(oom) - 1);
	}
	rw_buf_fini(&tmp);
	rw_buf_fini(&line);
	errno = saved_errno;
}

/*
 * httpd_parse.c - HTTP/1.x request-head parser (see httpd_parse.h).
 *
 * Lines end in CRLF; a bare LF is accepted too. Obsolete line folding,
 * whitespace before a field's colon, control characters and a missing or
 * repeated-but-different Content-Length are rejected.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "httpd_parse.h"

/* Largest Content-Length we will even look at; the server caps far lower. */
#define CL_LIMIT (1LL << 40)

/* RFC 9110 tchar. */
static int
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Visible characters allowed in a request-target. */
static int
is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Field-value characters: visible, SP, HTAB and obs-text. */
static int
is_fchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * Find the end of the line starting at p (bounded by end). Returns the
 * content length of the line and sets *next past the terminator; -1 when no
 * terminator is present yet.
 */
static long
line_end(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl)
		return -1;
	*next = nl + 1;
	if (nl > p && nl[-1] == '\r')
		nl--;
	return (long)(nl - p);
}

static int
span_ieq(const char *base, struct rw_httpd_span s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && strncasecmp(base + s.off, lit, n) == 0;
}

/* Scan a comma-separated Connection value for "close" and "keep-alive". */
static void
connection_tokens(const char *v, size_t len, int *close_, int *keep)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		size_t n = i - s;
		if (n == 5 && strncasecmp(v + s, "close", 5) == 0)
			*close_ = 1;
		else if (n == 10 && strncasecmp(v + s, "keep-alive", 10) == 0)
			*keep = 1;
	}
}

static int
parse_content_length(const char *v, size_t len, long long *out)
{
	long long n = 0;
	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		n = n * 10 + (v[i] - '0');
		if (n > CL_LIMIT)
			return -EINVAL;
	}
	*out = n;
	return 0;
}

/* Request line: method SP target SP HTTP/1.x */
static int
parse_request_line(const char *buf, size_t off, size_t n, struct rw_httpd_head *h)
{
	const char *l = buf + off;
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)l[i]))
		i++;
	if (i == 0 || i >= n || l[i] != ' ')
		return -EINVAL;
	h->method.off = off;
	h->method.len = i;
	size_t ts = ++i;
	while (i < n && is_vchar((unsigned char)l[i]))
		i++;
	if (i == ts || i >= n || l[i] != ' ')
		return -EINVAL;
	h->target.off = off + ts;
	h->target.len = i - ts;
	const char *q = memchr(l + ts, '?', i - ts);
	size_t plen = q ? (size_t)(q - (l + ts)) : i - ts;
	h->path.off = off + ts;
	h->path.len = plen;
	h->query.off = q ? off + ts + plen + 1 : off + i;
	h->query.len = q ? i - ts - plen - 1 : 0;
	i++;
	if (n - i != 8 || memcmp(l + i, "HTTP/", 5) != 0 || l[i + 6] != '.')
		return -EINVAL;
	char maj = l[i + 5], min = l[i + 7];
	if (maj < '0' || maj > '9' || min < '0' || min > '9')
		return -EINVAL;
	if (maj != '1')
		return -EPROTONOSUPPORT;
	h->minor = min - '0';
	return 0;
}

/* One header field line (already known not to be empty). */
static int
parse_field(const char *buf, size_t off, size_t n, struct rw_httpd_head *h, int *conn_close,
	    int *conn_keep)
{
	const char *l = buf + off;
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)l[i]))
		i++;
	if (i == 0 || i >= n || l[i] != ':')
		return -EINVAL; /* also catches obs-fold and space before ':' */
	size_t nlen = i++;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	size_t vs = i, ve = n;
	for (size_t k = vs; k < n; k++)
		if (!is_fchar((unsigned char)l[k]))
			return -EINVAL;
	while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
		ve--;
	if (h->nfields >= RW_HTTPD_MAX_HEADERS)
		return -EMSGSIZE;
	struct rw_httpd_field *f = &h->fields[h->nfields++];
	f->name.off = off;
	f->name.len = nlen;
	f->value.off = off + vs;
	f->value.len = ve - vs;
	if (span_ieq(buf, f->name, "content-length")) {
		long long cl;
		if (parse_content_length(buf + f->value.off, f->value.len, &cl))
			return -EINVAL;
		if (h->content_length >= 0 && h->content_length != cl)
			return -EINVAL;
		h->content_length = cl;
	} else if (span_ieq(buf, f->name, "transfer-encoding")) {
		return -ENOTSUP;
	} else if (span_ieq(buf, f->name, "expect")) {
		h->expect_continue = span_ieq(buf, f->value, "100-continue");
	} else if (span_ieq(buf, f->name, "connection")) {
		connection_tokens(buf + f->value.off, f->value.len, conn_close, conn_keep);
	}
	return 0;
}

int
rw_httpd_parse_head(const char *buf, size_t len, struct rw_httpd_head *h)
{
	size_t lim = len < RW_HTTPD_MAX_HEAD ? len : RW_HTTPD_MAX_HEAD;
	const char *p = buf, *end = buf + lim, *next = NULL;
	int conn_close = 0, conn_keep = 0, rv;
	long n;

	h->nfields = 0;
	h->content_length = -1;
	h->keep_alive = 0;
	h->expect_continue = 0;
	h->minor = 0;
	h->head_len = 0;

	/* Skip empty lines before the request line (RFC 9112 2.2). */
	for (;;) {
		n = line_end(p, end, &next);
		if (n < 0)
			goto incomplete;
		if (n > 0)
			break;
		p = next;
	}
	rv = parse_request_line(buf, (size_t)(p - buf), (size_t)n, h);
	if (rv)
		return rv;
	p = next;
	for (;;) {
		n = line_end(p, end, &next);
		if (n < 0)
			goto incomplete;
		if (n == 0)
			break;
		rv = parse_field(buf, (size_t)(p - buf), (size_t)n, h, &conn_close, &conn_keep);
		if (rv)
			return rv;
		p = next;
	}
	h->head_len = (size_t)(next - buf);
	if (h->minor >= 1)
		h->keep_alive = !conn_close;
	else
		h->keep_alive = conn_keep && !conn_close;
	return (int)h->head_len;

incomplete:
	return len >= RW_HTTPD_MAX_HEAD ? -EMSGSIZE : 0;
}

void
rw_httpd_frame(const char *buf, size_t len, size_t max_body, struct rw_httpd_head *h,
	       struct rw_httpd_frame *f)
{
	memset(f, 0, sizeof(*f));
	f->status = -1;
	int rv = rw_httpd_parse_head(buf, len, h);
	if (rv == 0)
		return;
	if (rv < 0) {
		f->status = rv == -EMSGSIZE	     ? 431
			    : rv == -ENOTSUP	     ? 501
			    : rv == -EPROTONOSUPPORT ? 505
						     : 400;
		return;
	}
	f->head_done = 1;
	if (h->content_length > (long long)max_body) {
		f->status = 413;
		return;
	}
	size_t total = (size_t)rv + (h->content_length > 0 ? (size_t)h->content_length : 0);
	if (len < total) {
		f->want_continue = h->expect_continue && h->minor >= 1;
		return;
	}
	f->status = 0;
	f->total = total;
}

static void
terminate(char *buf, struct rw_httpd_span sp)
{
	buf[sp.off + sp.len] = '\0';
}

void
rw_httpd_head_terminate(char *buf, const struct rw_httpd_head *h)
{
	for (int i = 0; i < h->nfields; i++) {
		terminate(buf, h->fields[i].name);
		terminate(buf, h->fields[i].value);
	}
	/* The query ends at the SP before the version, the path at '?' or that SP. */
	terminate(buf, h->method);
	terminate(buf, h->query);
	terminate(buf, h->path);
}

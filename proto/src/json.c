/*
 * json.c - strict JSON reading on jsmn, and a bounded JSON writer (see rw/json.h).
 *
 * jsmn alone accepts a lot that is not JSON (missing and trailing commas,
 * `tru`, `1.2.3`, `0x10`, two top-level values, raw control characters), so
 * rw_json_parse() first runs validate(), an iterative RFC 8259 recogniser that
 * allocates nothing and also checks UTF-8 and the nesting depth. Only text
 * that passed it reaches jsmn, whose job is then just to produce tokens.
 *
 * Choices the header leaves open, stated here:
 * - rw_json_get() returns the LAST member with a given key, as Go's
 *   encoding/json (and therefore the Kubernetes API server) does.
 * - The writer refuses a second top-level value, a value in an object without
 *   a key, and a key outside an object (-EINVAL, sticky).
 * - Invalid UTF-8 handed to the writer is replaced by U+FFFD, as Go does, so
 *   the output is always valid JSON.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw/json.h"
#include "rw/text.h"

#define TOK_INITIAL 64

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		if (n >= 2 && (p[1] & 0xC0) == 0x80)
			return 2;
		return 0;
	}
	if (c >= 0xE0 && c <= 0xEF) {
		if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && p[1] < 0xA0)
			return 0; /* overlong */
		if (c == 0xED && p[1] > 0x9F)
			return 0; /* UTF-16 surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
		    (p[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && p[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xF4 && p[1] > 0x8F)
			return 0; /* above U+10FFFF */
		return 4;
	}
	return 0;
}

/* ---- strict validation ---- */

struct vstate {
	const char *s;
	size_t len;
	size_t pos;
	long ntok;
	char *err;
	size_t errlen;
};

static int
verr(struct vstate *v, const char *what)
{
	if (v->err && v->errlen)
		snprintf(v->err, v->errlen, "invalid JSON at byte offset %zu: %s", v->pos, what);
	return -EINVAL;
}

static void
vskip_ws(struct vstate *v)
{
	while (v->pos < v->len) {
		char c = v->s[v->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		v->pos++;
	}
}

/* A string starting at the opening quote. */
static int
vstring(struct vstate *v)
{
	const unsigned char *s = (const unsigned char *)v->s;
	v->pos++;
	while (v->pos < v->len) {
		unsigned char c = s[v->pos];
		if (c == '"') {
			v->pos++;
			return 0;
		}
		if (c < 0x20)
			return verr(v, "control character in string");
		if (c == '\\') {
			if (v->pos + 1 >= v->len)
				break;
			char e = (char)s[v->pos + 1];
			if (e == 'u') {
				for (int i = 0; i < 4; i++) {
					if (v->pos + 2 + i >= v->len)
						goto eof;
					if (rw_hexval((char)s[v->pos + 2 + i]) < 0) {
						v->pos += 2 + i;
						return verr(v, "bad \\u escape");
					}
				}
				v->pos += 6;
				continue;
			}
			if (!strchr("\"\\/bfnrt", e) || e == '\0') {
				v->pos++;
				return verr(v, "bad escape");
			}
			v->pos += 2;
			continue;
		}
		if (c < 0x80) {
			v->pos++;
			continue;
		}
		size_t n = utf8_seq_len(s + v->pos, v->len - v->pos);
		if (!n)
			return verr(v, "invalid UTF-8 in string");
		v->pos += n;
	}
eof:
	return verr(v, "unterminated string");
}

static int
vdigits(struct vstate *v)
{
	size_t start = v->pos;
	while (v->pos < v->len && v->s[v->pos] >= '0' && v->s[v->pos] <= '9')
		v->pos++;
	return v->pos > start ? 0 : verr(v, "digit expected in number");
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
vnumber(struct vstate *v)
{
	if (v->s[v->pos] == '-')
		v->pos++;
	if (v->pos >= v->len)
		return verr(v, "digit expected in number");
	if (v->s[v->pos] == '0')
		v->pos++;
	else if (vdigits(v))
		return -EINVAL;
	if (v->pos < v->len && v->s[v->pos] == '.') {
		v->pos++;
		if (vdigits(v))
			return -EINVAL;
	}
	if (v->pos < v->len && (v->s[v->pos] == 'e' || v->s[v->pos] == 'E')) {
		v->pos++;
		if (v->pos < v->len && (v->s[v->pos] == '+' || v->s[v->pos] == '-'))
			v->pos++;
		if (vdigits(v))
			return -EINVAL;
	}
	return 0;
}

static int
vliteral(struct vstate *v, const char *lit)
{
	size_t n = strlen(lit);
	if (v->len - v->pos < n || memcmp(v->s + v->pos, lit, n) != 0)
		return verr(v, "invalid literal");
	v->pos += n;
	return 0;
}

/*
 * Recognise exactly one JSON value surrounded by optional whitespace. The
 * container stack is a fixed array (depth <= RW_JSON_MAX_DEPTH), so there is
 * neither recursion nor allocation. Counts the tokens jsmn will produce.
 * On success root_start and root_end delimit the top-level value.
 */
static int
validate(struct vstate *v, size_t *root_start, size_t *root_end)
{
	char stack[RW_JSON_MAX_DEPTH];
	int depth = 0;
	int rv;

	vskip_ws(v);
	if (v->pos >= v->len)
		return verr(v, "empty document");
	*root_start = v->pos;
value:
	vskip_ws(v);
	if (v->pos >= v->len)
		return verr(v, "unexpected end, value expected");
	v->ntok++;
	switch (v->s[v->pos]) {
	case '{':
	case '[':
		if (depth >= RW_JSON_MAX_DEPTH)
			return verr(v, "nesting too deep");
		stack[depth++] = v->s[v->pos];
		v->pos++;
		vskip_ws(v);
		if (v->pos < v->len && v->s[v->pos] == (stack[depth - 1] == '{' ? '}' : ']')) {
			v->pos++;
			depth--;
			goto after;
		}
		if (stack[depth - 1] == '{')
			goto key;
		goto value;
	case '"':
		rv = vstring(v);
		break;
	case 't':
		rv = vliteral(v, "true");
		break;
	case 'f':
		rv = vliteral(v, "false");
		break;
	case 'n':
		rv = vliteral(v, "null");
		break;
	default:
		if (v->s[v->pos] == '-' || (v->s[v->pos] >= '0' && v->s[v->pos] <= '9'))
			rv = vnumber(v);
		else
			rv = verr(v, "value expected");
		break;
	}
	if (rv)
		return rv;
	goto after;
key:
	vskip_ws(v);
	if (v->pos >= v->len)
		return verr(v, "unexpected end, object key expected");
	if (v->s[v->pos] != '"')
		return verr(v, "object key (string) expected");
	v->ntok++;
	if ((rv = vstring(v)) != 0)
		return rv;
	vskip_ws(v);
	if (v->pos >= v->len || v->s[v->pos] != ':')
		return verr(v, "':' expected after object key");
	v->pos++;
	goto value;
after:
	if (depth == 0) {
		*root_end = v->pos;
		vskip_ws(v);
		if (v->pos != v->len)
			return verr(v, "trailing data after the top-level value");
		return 0;
	}
	vskip_ws(v);
	if (v->pos >= v->len)
		return verr(v, depth && stack[depth - 1] == '{' ? "unexpected end, '}' expected"
								: "unexpected end, ']' expected");
	if (v->s[v->pos] == ',') {
		v->pos++;
		if (stack[depth - 1] == '{')
			goto key;
		goto value;
	}
	if (v->s[v->pos] == (stack[depth - 1] == '{' ? '}' : ']')) {
		v->pos++;
		depth--;
		goto after;
	}
	return verr(v, stack[depth - 1] == '{' ? "',' or '}' expected" : "',' or ']' expected");
}

/* Validate that n bytes are exactly one JSON value (used by rw_jw_raw()). */
static int
json_valid(const char *s, size_t n)
{
	struct vstate v = {.s = s, .len = n};
	size_t a, b;
	return validate(&v, &a, &b);
}

/* ---- parsing ---- */

void
rw_json_fini(struct rw_json *j)
{
	if (!j)
		return;
	free(j->tok);
	j->tok = NULL;
	j->ntok = 0;
	j->cap = 0;
}

static void
set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

int
rw_json_parse(struct rw_json *j, const char *js, size_t len, int max_tokens, char *err,
	      size_t errlen)
{
	struct vstate v = {.s = js, .len = len, .err = err, .errlen = errlen};
	size_t rs = 0, re = 0;
	jsmn_parser p;
	int rv;

	memset(j, 0, sizeof(*j));
	j->js = js;
	j->len = len;
	j->max_tokens = max_tokens;
	if (err && errlen)
		err[0] = '\0';
	if (max_tokens <= 0) {
		set_err(err, errlen, "max_tokens must be positive");
		rv = -EINVAL;
		goto fail;
	}
	if (len > INT_MAX) {
		set_err(err, errlen, "JSON text too large");
		rv = -EMSGSIZE;
		goto fail;
	}
	if (!js && len) {
		rv = -EINVAL;
		goto fail;
	}
	if ((rv = validate(&v, &rs, &re)) != 0)
		goto fail;
	if (v.ntok > max_tokens) {
		if (err && errlen)
			snprintf(err, errlen, "JSON needs %ld tokens, limit is %d", v.ntok,
				 max_tokens);
		rv = -EMSGSIZE;
		goto fail;
	}

	if (js[rs] != '{' && js[rs] != '[') {
		/*
		 * A scalar at the top level. jsmn's strict mode wants a delimiter
		 * after a primitive, so build the single token here.
		 */
		j->tok = malloc(sizeof(*j->tok));
		if (!j->tok) {
			rv = -ENOMEM;
			goto fail;
		}
		j->cap = 1;
		j->ntok = 1;
		if (js[rs] == '"') {
			j->tok[0].type = JSMN_STRING;
			j->tok[0].start = (int)rs + 1;
			j->tok[0].end = (int)re - 1;
		} else {
			j->tok[0].type = JSMN_PRIMITIVE;
			j->tok[0].start = (int)rs;
			j->tok[0].end = (int)re;
		}
		j->tok[0].size = 0;
		j->tok[0].parent = -1;
		return 0;
	}

	jsmn_init(&p);
	j->cap = max_tokens < TOK_INITIAL ? max_tokens : TOK_INITIAL;
	j->tok = malloc(sizeof(*j->tok) * (size_t)j->cap);
	if (!j->tok) {
		rv = -ENOMEM;
		goto fail;
	}
	for (;;) {
		int r = jsmn_parse(&p, js, len, j->tok, (unsigned)j->cap);
		if (r >= 0) {
			j->ntok = r;
			break;
		}
		if (r != JSMN_ERROR_NOMEM) {
			/* Cannot happen for validated text; refuse rather than trust it. */
			set_err(err, errlen, "JSON tokeniser disagrees with the validator");
			rv = -EINVAL;
			goto fail;
		}
		if (j->cap >= max_tokens) {
			set_err(err, errlen, "too many JSON tokens");
			rv = -EMSGSIZE;
			goto fail;
		}
		int ncap = j->cap > max_tokens / 2 ? max_tokens : j->cap * 2;
		jsmntok_t *nt = realloc(j->tok, sizeof(*nt) * (size_t)ncap);
		if (!nt) {
			rv = -ENOMEM;
			goto fail;
		}
		j->tok = nt;
		j->cap = ncap;
	}
	if (j->ntok < 1 || j->tok[0].start != (int)rs || j->tok[0].end != (int)re) {
		set_err(err, errlen, "JSON tokeniser disagrees with the validator");
		rv = -EINVAL;
		goto fail;
	}
	return 0;
fail:
	rw_json_fini(j);
	if (rv == -ENOMEM)
		set_err(err, errlen, "out of memory");
	return rv;
}

static int
tok_ok(const struct rw_json *j, int t)
{
	return j && j->tok && t >= 0 && t < j->ntok;
}

enum rw_json_type
rw_json_type(const struct rw_json *j, int t)
{
	if (!tok_ok(j, t))
		return RW_JSON_NONE;
	const jsmntok_t *k = &j->tok[t];
	switch (k->type) {
	case JSMN_OBJECT:
		return RW_JSON_OBJECT;
	case JSMN_ARRAY:
		return RW_JSON_ARRAY;
	case JSMN_STRING:
		return RW_JSON_STRING;
	case JSMN_PRIMITIVE:
		switch (j->js[k->start]) {
		case 't':
			return RW_JSON_TRUE;
		case 'f':
			return RW_JSON_FALSE;
		case 'n':
			return RW_JSON_NULL;
		default:
			return RW_JSON_NUMBER;
		}
	default:
		return RW_JSON_NONE;
	}
}

int
rw_json_skip(const struct rw_json *j, int t)
{
	if (!tok_ok(j, t))
		return -1;
	long pending = 1;
	int i = t;
	while (pending > 0 && i < j->ntok) {
		pending += j->tok[i].size - 1;
		i++;
	}
	return i;
}

int
rw_json_size(const struct rw_json *j, int t)
{
	enum rw_json_type ty = rw_json_type(j, t);
	if (ty == RW_JSON_OBJECT || ty == RW_JSON_ARRAY)
		return j->tok[t].size;
	return 0;
}

int
rw_json_at(const struct rw_json *j, int t, int i)
{
	if (rw_json_type(j, t) != RW_JSON_ARRAY || i < 0 || i >= j->tok[t].size)
		return -1;
	int c = t + 1;
	for (int k = 0; k < i && c >= 0; k++)
		c = rw_json_skip(j, c);
	return tok_ok(j, c) ? c : -1;
}

/*
 * Decode one character of the raw string text [*p, end) into out (up to 4
 * bytes). Returns the number of bytes produced, or -EINVAL on a bad escape,
 * a lone surrogate or \u0000.
 */
static int
unescape_one(const char **pp, const char *end, char *out)
{
	const char *p = *pp;
	if (*p != '\\') {
		out[0] = *p;
		*pp = p + 1;
		return 1;
	}
	if (end - p < 2)
		return -EINVAL;
	char e = p[1];
	const char *simple = "\"\\/bfnrt";
	const char *mapped = "\"\\/\b\f\n\r\t";
	const char *f = e ? strchr(simple, e) : NULL;
	if (f) {
		out[0] = mapped[f - simple];
		*pp = p + 2;
		return 1;
	}
	if (e != 'u' || end - p < 6)
		return -EINVAL;
	unsigned long cp = 0;
	for (int i = 0; i < 4; i++) {
		int h = rw_hexval(p[2 + i]);
		if (h < 0)
			return -EINVAL;
		cp = cp * 16 + (unsigned long)h;
	}
	p += 6;
	if (cp == 0)
		return -EINVAL;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return -EINVAL; /* lone low surrogate */
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
			return -EINVAL; /* lone high surrogate */
		unsigned long lo = 0;
		for (int i = 0; i < 4; i++) {
			int h = rw_hexval(p[2 + i]);
			if (h < 0)
				return -EINVAL;
			lo = lo * 16 + (unsigned long)h;
		}
		if (lo < 0xDC00 || lo > 0xDFFF)
			return -EINVAL;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		p += 6;
	}
	*pp = p;
	return rw_utf8_put(cp, out);
}

int
rw_json_str(const struct rw_json *j, int t, char *out, size_t outlen)
{
	int rv;
	size_t n = 0;

	if (out && outlen)
		out[0] = '\0';
	if (rw_json_type(j, t) != RW_JSON_STRING)
		return -EINVAL;
	const char *p = j->js + j->tok[t].start, *end = j->js + j->tok[t].end;
	while (p < end) {
		char c[4];
		rv = unescape_one(&p, end, c);
		if (rv < 0)
			goto fail;
		if (!out || n + (size_t)rv >= outlen) {
			rv = -EMSGSIZE;
			goto fail;
		}
		memcpy(out + n, c, (size_t)rv);
		n += (size_t)rv;
	}
	if (out)
		out[n] = '\0';
	if (n > INT_MAX) {
		rv = -EMSGSIZE;
		goto fail;
	}
	return (int)n;
fail:
	if (out && outlen)
		out[0] = '\0';
	return rv;
}

/* Unescaped length of string token t, or a negative errno. */
static long
str_len(const struct rw_json *j, int t)
{
	if (rw_json_type(j, t) != RW_JSON_STRING)
		return -EINVAL;
	const char *p = j->js + j->tok[t].start, *end = j->js + j->tok[t].end;
	long n = 0;
	while (p < end) {
		char c[4];
		int rv = unescape_one(&p, end, c);
		if (rv < 0)
			return rv;
		n += rv;
	}
	return n;
}

int
rw_json_str_cut(const struct rw_json *j, int t, char *out, size_t outlen)
{
	int rv = rw_json_str(j, t, out, outlen);
	if (rv != -EMSGSIZE || !out || !outlen)
		return rv;
	char *s = rw_json_strdup(j, t);
	if (!s)
		return -ENOMEM;
	size_t n = rw_utf8_cut(s, strlen(s), outlen - 1);
	memcpy(out, s, n);
	out[n] = '\0';
	free(s);
	return (int)n;
}

char *
rw_json_strdup(const struct rw_json *j, int t)
{
	long n = str_len(j, t);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	if (rw_json_str(j, t, s, (size_t)n + 1) != n) {
		free(s);
		return NULL;
	}
	return s;
}

/* Does string token t, unescaped, equal the n bytes at s? */
static bool
tok_eqn(const struct rw_json *j, int t, const char *s, size_t n)
{
	if (rw_json_type(j, t) != RW_JSON_STRING)
		return false;
	const char *p = j->js + j->tok[t].start, *end = j->js + j->tok[t].end;
	/* Fast path: no escapes, compare the raw bytes. */
	if (!memchr(p, '\\', (size_t)(end - p)))
		return (size_t)(end - p) == n && memcmp(p, s, n) == 0;
	size_t i = 0;
	while (p < end) {
		char c[4];
		int rv = unescape_one(&p, end, c);
		if (rv < 0 || i + (size_t)rv > n || memcmp(s + i, c, (size_t)rv) != 0)
			return false;
		i += (size_t)rv;
	}
	return i == n;
}

bool
rw_json_streq(const struct rw_json *j, int t, const char *s)
{
	return s && tok_eqn(j, t, s, strlen(s));
}

static int
get_n(const struct rw_json *j, int t, const char *key, size_t n)
{
	int i, k, v, found = -1;
	if (rw_json_type(j, t) != RW_JSON_OBJECT)
		return -1;
	RW_JSON_OBJ_FOREACH (j, t, i, k, v) {
		if (!tok_ok(j, v))
			break;
		if (tok_eqn(j, k, key, n))
			found = v;
	}
	return found;
}

int
rw_json_get(const struct rw_json *j, int t, const char *key)
{
	if (!key)
		return -1;
	return get_n(j, t, key, strlen(key));
}

int
rw_json_path(const struct rw_json *j, int t, const char *path)
{
	if (!path)
		return -1;
	const char *p = path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		t = get_n(j, t, p, n);
		if (t < 0 || !dot)
			return t;
		p = dot + 1;
	}
}

/* Copy the number token t into a NUL-terminated buffer (heap when large). */
static int
num_text(const struct rw_json *j, int t, char *small, size_t smalllen, char **out)
{
	if (rw_json_type(j, t) != RW_JSON_NUMBER)
		return -EINVAL;
	size_t n = (size_t)(j->tok[t].end - j->tok[t].start);
	char *s = small;
	if (n + 1 > smalllen) {
		s = malloc(n + 1);
		if (!s)
			return -ENOMEM;
	}
	memcpy(s, j->js + j->tok[t].start, n);
	s[n] = '\0';
	*out = s;
	return 0;
}

int
rw_json_int(const struct rw_json *j, int t, int64_t *out)
{
	char small[64], *s = NULL, *end;
	int rv = num_text(j, t, small, sizeof(small), &s);
	if (rv)
		return rv;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0')
		rv = -EINVAL;
	else if (errno == ERANGE)
		rv = -ERANGE;
	else if (out)
		*out = (int64_t)v;
	if (s != small)
		free(s);
	return rv;
}

int
rw_json_double(const struct rw_json *j, int t, double *out)
{
	char small[128], *s = NULL, *end;
	int rv = num_text(j, t, small, sizeof(small), &s);
	if (rv)
		return rv;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end != '\0')
		rv = -EINVAL;
	else if (errno == ERANGE && isinf(v))
		rv = -ERANGE; /* overflow; underflow to 0 or a subnormal is accepted */
	else if (out)
		*out = v;
	if (s != small)
		free(s);
	return rv;
}

int
rw_json_bool(const struct rw_json *j, int t, bool *out)
{
	enum rw_json_type ty = rw_json_type(j, t);
	if (ty != RW_JSON_TRUE && ty != RW_JSON_FALSE)
		return -EINVAL;
	if (out)
		*out = ty == RW_JSON_TRUE;
	return 0;
}

const char *
rw_json_raw(const struct rw_json *j, int t, size_t *len)
{
	if (!tok_ok(j, t)) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = (size_t)(j->tok[t].end - j->tok[t].start);
	return j->js + j->tok[t].start;
}

const char *
rw_json_raw_value(const struct rw_json *j, int t, size_t *len)
{
	if (!tok_ok(j, t)) {
		if (len)
			*len = 0;
		return NULL;
	}
	int s = j->tok[t].start, e = j->tok[t].end;
	if (j->tok[t].type == JSMN_STRING) {
		s--;
		e++;
	}
	if (len)
		*len = (size_t)(e - s);
	return j->js + s;
}

/* ---- writer ---- */

/* Bits of rw_jw.first[depth]. */
#define JW_FIRST 1 /* nothing written at this depth yet */
#define JW_OBJ 2   /* this level is an object */

int
rw_json_quote(struct rw_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t old = b->len, run = 0, i = 0;
	int rv;

	if (!s && n) {
		rv = -EINVAL;
		goto fail;
	}
	if ((rv = rw_buf_putc(b, '"')) != 0)
		goto fail;
	while (i < n) {
		unsigned char c = p[i];
		char esc[8];
		size_t elen = 0, adv = 1;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			elen = 2;
		} else if (c < 0x20) {
			esc[0] = '\\';
			elen = 2;
			switch (c) {
			case '\b':
				esc[1] = 'b';
				break;
			case '\f':
				esc[1] = 'f';
				break;
			case '\n':
				esc[1] = 'n';
				break;
			case '\r':
				esc[1] = 'r';
				break;
			case '\t':
				esc[1] = 't';
				break;
			default:
				memcpy(esc + 1, "u00", 3);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				elen = 6;
			}
		} else if (c >= 0x80) {
			adv = utf8_seq_len(p + i, n - i);
			if (adv == 0) {
				memcpy(esc, "\xEF\xBF\xBD", 3); /* U+FFFD for a bad byte */
				elen = 3;
				adv = 1;
			}
		}
		if (elen == 0) {
			run += adv;
			i += adv;
			continue;
		}
		if (run && (rv = rw_buf_append(b, s + i - run, run)) != 0)
			goto fail;
		run = 0;
		if ((rv = rw_buf_append(b, esc, elen)) != 0)
			goto fail;
		i += adv;
	}
	if (run && (rv = rw_buf_append(b, s + i - run, run)) != 0)
		goto fail;
	if ((rv = rw_buf_putc(b, '"')) != 0)
		goto fail;
	return 0;
fail:
	b->len = old;
	if (b->data)
		b->data[old] = '\0';
	return rv;
}

void
rw_jw_init(struct rw_jw *w, struct rw_buf *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
	w->first[0] = JW_FIRST;
}

static void
jw_fail(struct rw_jw *w, int rv)
{
	if (!w->err)
		w->err = rv;
}

/* Called before every value: checks the position and writes a comma. */
static int
jw_value(struct rw_jw *w)
{
	if (w->err)
		return w->err;
	if (!w->b) {
		jw_fail(w, -EINVAL);
		return w->err;
	}
	unsigned char *f = &w->first[w->depth];
	if (w->depth == 0) {
		if (!(*f & JW_FIRST))
			jw_fail(w, -EINVAL); /* second top-level value */
	} else if (*f & JW_OBJ) {
		if (!w->after_key)
			jw_fail(w, -EINVAL); /* value without a key */
	} else if (!(*f & JW_FIRST)) {
		int rv = rw_buf_putc(w->b, ',');
		if (rv)
			jw_fail(w, rv);
	}
	*f &= (unsigned char)~JW_FIRST;
	w->after_key = 0;
	return w->err;
}

static void
jw_put(struct rw_jw *w, const char *s, size_t n)
{
	if (w->err)
		return;
	int rv = rw_buf_append(w->b, s, n);
	if (rv)
		jw_fail(w, rv);
}

static void
jw_begin(struct rw_jw *w, char c)
{
	if (jw_value(w))
		return;
	if (w->depth >= RW_JSON_MAX_DEPTH) {
		jw_fail(w, -EINVAL);
		return;
	}
	jw_put(w, &c, 1);
	w->depth++;
	w->first[w->depth] = (unsigned char)(JW_FIRST | (c == '{' ? JW_OBJ : 0));
}

static void
jw_end(struct rw_jw *w, char c)
{
	if (w->err)
		return;
	bool obj = c == '}';
	if (w->depth == 0 || w->after_key || !(w->first[w->depth] & JW_OBJ) != !obj) {
		jw_fail(w, -EINVAL);
		return;
	}
	jw_put(w, &c, 1);
	w->depth--;
}

void
rw_jw_obj_begin(struct rw_jw *w)
{
	jw_begin(w, '{');
}

void
rw_jw_obj_end(struct rw_jw *w)
{
	jw_end(w, '}');
}

void
rw_jw_arr_begin(struct rw_jw *w)
{
	jw_begin(w, '[');
}

void
rw_jw_arr_end(struct rw_jw *w)
{
	jw_end(w, ']');
}

void
rw_jw_key(struct rw_jw *w, const char *k)
{
	if (!k) {
		jw_fail(w, -EINVAL);
		return;
	}
	rw_jw_keyn(w, k, strlen(k));
}

void
rw_jw_keyn(struct rw_jw *w, const char *k, size_t n)
{
	if (w->err)
		return;
	unsigned char *f = &w->first[w->depth];
	if ((!k && n) || w->depth == 0 || !(*f & JW_OBJ) || w->after_key) {
		jw_fail(w, -EINVAL);
		return;
	}
	if (!(*f & JW_FIRST))
		jw_put(w, ",", 1);
	*f &= (unsigned char)~JW_FIRST;
	if (!w->err) {
		int rv = rw_json_quote(w->b, k ? k : "", n);
		if (rv)
			jw_fail(w, rv);
	}
	jw_put(w, ":", 1);
	w->after_key = 1;
}

void
rw_jw_strn(struct rw_jw *w, const char *s, size_t n)
{
	if (!s && n) {
		jw_fail(w, -EINVAL);
		return;
	}
	if (jw_value(w))
		return;
	int rv = rw_json_quote(w->b, s ? s : "", n);
	if (rv)
		jw_fail(w, rv);
}

void
rw_jw_str(struct rw_jw *w, const char *s)
{
	if (!s)
		rw_jw_null(w);
	else
		rw_jw_strn(w, s, strlen(s));
}

void
rw_jw_int(struct rw_jw *w, int64_t v)
{
	char tmp[32];
	if (jw_value(w))
		return;
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
	jw_put(w, tmp, (size_t)n);
}

void
rw_jw_uint(struct rw_jw *w, uint64_t v)
{
	char tmp[32];
	if (jw_value(w))
		return;
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	jw_put(w, tmp, (size_t)n);
}

/*
 * Format a finite double as a JSON number: integral values below 1e15 as
 * plain integers, otherwise the shortest of %.15g/%.16g/%.17g that reads
 * back to the same value.
 */
static int
fmt_double(double v, char *tmp, size_t len)
{
	if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
		return snprintf(tmp, len, "%.0f", v);
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(tmp, len, "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	return n;
}

void
rw_jw_double(struct rw_jw *w, double v)
{
	char tmp[40];
	if (!isfinite(v)) {
		rw_jw_null(w);
		return;
	}
	if (jw_value(w))
		return;
	int n = fmt_double(v, tmp, sizeof(tmp));
	jw_put(w, tmp, (size_t)n);
}

void
rw_jw_bool(struct rw_jw *w, bool v)
{
	if (jw_value(w))
		return;
	jw_put(w, v ? "true" : "false", v ? 4 : 5);
}

void
rw_jw_null(struct rw_jw *w)
{
	if (jw_value(w))
		return;
	jw_put(w, "null", 4);
}

void
rw_jw_raw(struct rw_jw *w, const char *json, size_t n)
{
	if (!json || json_valid(json, n) != 0) {
		jw_fail(w, -EINVAL);
		return;
	}
	if (jw_value(w))
		return;
	jw_put(w, json, n);
}

void
rw_jw_kstr(struct rw_jw *w, const char *k, const char *v)
{
	rw_jw_key(w, k);
	rw_jw_str(w, v);
}

void
rw_jw_kint(struct rw_jw *w, const char *k, int64_t v)
{
	rw_jw_key(w, k);
	rw_jw_int(w, v);
}

void
rw_jw_kbool(struct rw_jw *w, const char *k, bool v)
{
	rw_jw_key(w, k);
	rw_jw_bool(w, v);
}

int
rw_jw_finish(struct rw_jw *w)
{
	if (w->err)
		return w->err;
	if (w->depth != 0 || w->after_key || (w->first[0] & JW_FIRST))
		return -EINVAL;
	return 0;
}

/*
 * yaml.c - YAML to JSON on libyaml's event parser (see rw/yaml.h).
 *
 * The event API is used rather than yaml_parser_load() because the loader
 * gives every untagged scalar the tag !!str, which makes an explicit `!!str`
 * indistinguishable from a plain scalar. Each document is built into a small
 * tree (nodes in one array, children in another), then written as JSON.
 *
 * Typing follows go-yaml v2, which sigs.k8s.io/yaml (and so Kubernetes and
 * KubeRay) uses:
 * - only plain, untagged scalars are resolved; quoted and block scalars and
 *   scalars tagged `!` or an unknown tag are strings;
 * - booleans: y Y yes Yes YES true True TRUE on On ON and n N no No NO false
 *   False FALSE off Off OFF; null: empty ~ null Null NULL;
 * - a scalar starting with a digit or sign is an integer if, with `_`
 *   removed, it parses as Go's ParseInt(s, 0, 64) would (decimal, 0x, 0o,
 *   0b, and a leading 0 meaning octal), then as an unsigned 64-bit integer,
 *   then as a float ([-+]?(.d+|d+(.d*)?)([eE][-+]?d+)?); otherwise a string
 *   (so out-of-range floats such as 1e400 stay strings, as in Go);
 * - a scalar starting with `.` is a float if it is .d+ with an optional
 *   exponent; .inf/.nan (any sign, the three spellings) are floats that JSON
 *   cannot carry, so they are refused as values;
 * - timestamps stay strings (go-yaml v2 keeps them strings in interface{});
 * - explicit tags !!str !!int !!float !!bool !!null !!timestamp are honoured
 *   (the value must then resolve to that type; !!float accepts integers);
 *   !!binary is refused.
 * Mapping keys become strings the way sigs.k8s.io/yaml does it: booleans as
 * true/false, integers in decimal, floats in Go's shortest float32 %g form;
 * null and non-scalar keys are errors. Duplicate keys: the last value wins
 * (at the position of the first). Merge keys (plain `<<` or !!merge) take a
 * mapping, an alias of one, or a sequence of those, applied where the `<<`
 * stands, so later keys override merged ones, merged ones override earlier
 * keys, and earlier maps of a sequence win over later ones (go-yaml v2).
 *
 * Bounds: nesting depth RW_JSON_MAX_DEPTH; aliases are expanded into the
 * output, whose size is capped by max_json, and the number of mapping entries
 * built (merges copy entries) is capped by max_json / 4, so alias and merge
 * bombs stop with -EMSGSIZE. An alias to a node that is still open
 * (recursion) is an error.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "rw/json.h"
#include "rw/yaml.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

enum ykind { Y_NULL, Y_BOOL, Y_INT, Y_UINT, Y_FLOAT, Y_STR, Y_SEQ, Y_MAP };

struct ynode {
	unsigned char kind;
	unsigned char done;  /* containers: closed (aliases to open nodes are recursion) */
	unsigned char merge; /* a plain `<<` or !!merge scalar */
	unsigned char bval;
	union {
		int64_t i;
		uint64_t u;
		double d;
	} v;
	size_t off;	    /* Y_STR: offset in strs; Y_SEQ/Y_MAP: offset in edges */
	size_t len;	    /* Y_STR: bytes; Y_SEQ: children; Y_MAP: key/value pairs */
	unsigned line, col; /* 1-based start, for messages */
};

/* A growable array of fixed-size elements. */
struct vec {
	void *p;
	size_t n, cap, elem;
};

struct open_node {
	int node;
	size_t pending_base; /* children start here in `pending` */
};

struct anchor {
	size_t name_off, name_len; /* in strs */
	int node;
};

struct conv {
	yaml_parser_t parser;
	bool parser_ok;
	bool stream_end;
	bool root_empty; /* the document is an empty plain scalar (no content) */
	size_t max_json;
	size_t pairs_budget;
	struct vec nodes;   /* struct ynode */
	struct vec edges;   /* int: children of closed containers */
	struct vec pending; /* int: children of open containers */
	struct vec open;    /* struct open_node */
	struct vec anchors; /* struct anchor */
	struct vec strs;    /* char: scalar values, key strings, anchor names */
	int *ahash;	    /* open addressing over anchors, -1 = empty */
	size_t ahash_cap;
	char *err;
	size_t errlen;
};

/* ---- small helpers ---- */

static int
vec_reserve(struct vec *v, size_t more)
{
	if (more <= v->cap - v->n)
		return 0;
	size_t ncap = v->cap ? v->cap : 64;
	while (ncap - v->n < more) {
		if (ncap > SIZE_MAX / 2 / v->elem)
			return -ENOMEM;
		ncap *= 2;
	}
	void *np = realloc(v->p, ncap * v->elem);
	if (!np)
		return -ENOMEM;
	v->p = np;
	v->cap = ncap;
	return 0;
}

static int
vec_push(struct vec *v, const void *e, size_t count)
{
	if (count == 0)
		return 0;
	int rv = vec_reserve(v, count);
	if (rv)
		return rv;
	memcpy((char *)v->p + v->n * v->elem, e, count * v->elem);
	v->n += count;
	return 0;
}

static void
vec_free(struct vec *v)
{
	free(v->p);
	v->p = NULL;
	v->n = v->cap = 0;
}

#define NODE(c, i) (((struct ynode *)(c)->nodes.p)[i])
#define EDGE(c, i) (((int *)(c)->edges.p)[i])
#define STR(c, off) ((const char *)(c)->strs.p + (off))

static int fail(struct conv *c, unsigned line, unsigned col, int rv, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
fail(struct conv *c, unsigned line, unsigned col, int rv, const char *fmt, ...)
{
	if (c->err && c->errlen && !c->err[0]) {
		va_list ap;
		int n = snprintf(c->err, c->errlen, "yaml: line %u column %u: ", line, col);
		if (n >= 0 && (size_t)n < c->errlen) {
			va_start(ap, fmt);
			vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return rv;
}

static int
str_add(struct conv *c, const char *s, size_t n, size_t *off)
{
	*off = c->strs.n;
	return vec_push(&c->strs, s, n);
}

static uint64_t
hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* ---- anchors (open-addressing hash: name -> node; a redefinition replaces) ---- */

static int
anchor_slot(struct conv *c, const char *name, size_t n)
{
	size_t mask = c->ahash_cap - 1;
	size_t i = (size_t)hash_bytes(name, n) & mask;
	for (;;) {
		int a = c->ahash[i];
		if (a < 0)
			return (int)i;
		const struct anchor *an = &((struct anchor *)c->anchors.p)[a];
		if (an->name_len == n && memcmp(STR(c, an->name_off), name, n) == 0)
			return (int)i;
		i = (i + 1) & mask;
	}
}

static int
anchor_grow(struct conv *c)
{
	size_t ncap = c->ahash_cap ? c->ahash_cap * 2 : 64;
	int *nh = malloc(ncap * sizeof(int));
	if (!nh)
		return -ENOMEM;
	for (size_t i = 0; i < ncap; i++)
		nh[i] = -1;
	free(c->ahash);
	c->ahash = nh;
	c->ahash_cap = ncap;
	for (size_t a = 0; a < c->anchors.n; a++) {
		const struct anchor *an = &((struct anchor *)c->anchors.p)[a];
		c->ahash[anchor_slot(c, STR(c, an->name_off), an->name_len)] = (int)a;
	}
	return 0;
}

static int
anchor_define(struct conv *c, const yaml_char_t *name, int node)
{
	size_t n = strlen((const char *)name);
	int rv;
	if ((c->anchors.n + 1) * 2 > c->ahash_cap && (rv = anchor_grow(c)) != 0)
		return rv;
	int slot = anchor_slot(c, (const char *)name, n);
	if (c->ahash[slot] >= 0) {
		((struct anchor *)c->anchors.p)[c->ahash[slot]].node = node;
		return 0;
	}
	struct anchor an = {.name_len = n, .node = node};
	if ((rv = str_add(c, (const char *)name, n, &an.name_off)) != 0)
		return rv;
	if ((rv = vec_push(&c->anchors, &an, 1)) != 0)
		return rv;
	c->ahash[slot] = (int)(c->anchors.n - 1);
	return 0;
}

static int
anchor_find(struct conv *c, const yaml_char_t *name)
{
	if (!c->ahash_cap)
		return -1;
	int slot = anchor_slot(c, (const char *)name, strlen((const char *)name));
	int a = c->ahash[slot];
	return a < 0 ? -1 : ((struct anchor *)c->anchors.p)[a].node;
}

/* ---- scalar resolution (go-yaml v2) ---- */

static bool
in_list(const char *s, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == n && memcmp(*list, s, n) == 0)
			return true;
	return false;
}

static const char *const true_words[] = {"y",	 "Y",	 "yes", "Yes", "YES", "true",
					 "True", "TRUE", "on",	"On",  "ON",  NULL};
static const char *const false_words[] = {"n",	   "N",	    "no",  "No",  "NO",	 "false",
					  "False", "FALSE", "off", "Off", "OFF", NULL};
static const char *const null_words[] = {"~", "null", "Null", "NULL", NULL};
static const char *const nan_words[] = {".nan", ".NaN", ".NAN", NULL};
static const char *const pinf_words[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
static const char *const ninf_words[] = {"-.inf", "-.Inf", "-.INF", NULL};

static int
digit_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A' + 10;
	return 99;
}

/* Go's strconv.ParseUint(s, 0, 64). */
static bool
go_parse_uint(const char *s, size_t n, uint64_t *out)
{
	int base = 10;
	if (n == 0)
		return false;
	if (s[0] == '0') {
		char p = n >= 3 ? (char)(s[1] | 0x20) : 0;
		if (p == 'b' || p == 'o' || p == 'x') {
			base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
			s += 2;
			n -= 2;
		} else {
			base = 8;
			s++;
			n--;
		}
	}
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d = digit_val(s[i]);
		if (d >= base)
			return false;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return false;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	*out = v;
	return true;
}

/* Go's strconv.ParseInt(s, 0, 64). */
static bool
go_parse_int(const char *s, size_t n, int64_t *out)
{
	bool neg = false;
	uint64_t u;
	if (n && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		s++;
		n--;
	}
	if (!go_parse_uint(s, n, &u))
		return false;
	if (!neg && u > (uint64_t)INT64_MAX)
		return false;
	if (neg && u > (uint64_t)INT64_MAX + 1)
		return false;
	*out = neg ? (int64_t)(0 - u) : (int64_t)u;
	return true;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool
yaml_float_syntax(const char *s, size_t n)
{
	size_t i = 0, d;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	if (i < n && s[i] == '.') {
		i++;
		for (d = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++, d++)
			;
		if (!d)
			return false;
	} else {
		for (d = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++, d++)
			;
		if (!d)
			return false;
		if (i < n && s[i] == '.')
			for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
				;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++, d++)
			;
		if (!d)
			return false;
	}
	return i == n;
}

/* strtod on a syntax-checked decimal; false on overflow (Go's ErrRange). */
static bool
parse_float(const char *s, size_t n, double *out)
{
	char small[128], *buf = small;
	if (n + 1 > sizeof(small)) {
		buf = malloc(n + 1);
		if (!buf)
			return false;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	double d = strtod(buf, NULL);
	if (buf != small)
		free(buf);
	if (isinf(d))
		return false;
	*out = d;
	return true;
}

/*
 * Resolve a plain scalar's text into nd (kind and value); strings are
 * left as Y_STR for the caller to store. Returns 0 or -ENOMEM.
 */
static int
resolve_plain(const char *s, size_t n, struct ynode *nd)
{
	nd->kind = Y_STR;
	if (n == 0 || in_list(s, n, null_words)) {
		nd->kind = Y_NULL;
		return 0;
	}
	if (in_list(s, n, true_words) || in_list(s, n, false_words)) {
		nd->kind = Y_BOOL;
		nd->bval = in_list(s, n, true_words);
		return 0;
	}
	if (in_list(s, n, nan_words) || in_list(s, n, pinf_words) || in_list(s, n, ninf_words)) {
		nd->kind = Y_FLOAT;
		nd->v.d = in_list(s, n, nan_words)    ? NAN
			  : in_list(s, n, pinf_words) ? INFINITY
						      : -INFINITY;
		return 0;
	}
	if (s[0] == '.') {
		double d;
		if (yaml_float_syntax(s, n) && parse_float(s, n, &d)) {
			nd->kind = Y_FLOAT;
			nd->v.d = d;
		}
		return 0;
	}
	if (!(s[0] == '+' || s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	/* Digits or a sign: int, uint, then float, with underscores removed. */
	char small[128], *plain = small;
	if (n + 1 > sizeof(small)) {
		plain = malloc(n + 1);
		if (!plain)
			return -ENOMEM;
	}
	size_t pn = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '_')
			plain[pn++] = s[i];
	int64_t iv;
	uint64_t uv;
	double d;
	if (go_parse_int(plain, pn, &iv)) {
		nd->kind = Y_INT;
		nd->v.i = iv;
	} else if (go_parse_uint(plain, pn, &uv)) {
		nd->kind = Y_UINT;
		nd->v.u = uv;
	} else if (yaml_float_syntax(plain, pn) && parse_float(plain, pn, &d)) {
		nd->kind = Y_FLOAT;
		nd->v.d = d;
	}
	if (plain != small)
		free(plain);
	return 0;
}

/* ---- building the tree from events ---- */

static int
new_node(struct conv *c, const yaml_mark_t *m, int *idx)
{
	struct ynode nd;
	memset(&nd, 0, sizeof(nd));
	nd.line = (unsigned)m->line + 1;
	nd.col = (unsigned)m->column + 1;
	if (c->nodes.n >= INT_MAX)
		return -EMSGSIZE;
	int rv = vec_push(&c->nodes, &nd, 1);
	*idx = (int)c->nodes.n - 1;
	return rv;
}

static int
add_child(struct conv *c, int node)
{
	return vec_push(&c->pending, &node, 1);
}

static int
scalar_event(struct conv *c, const yaml_event_t *ev)
{
	const char *val = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	const yaml_mark_t *m = &ev->start_mark;
	int idx, rv;

	if ((rv = new_node(c, m, &idx)) != 0)
		return rv;
	struct ynode nd = NODE(c, idx);
	nd.done = 1;
	if (!tag) {
		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
			if ((rv = resolve_plain(val, n, &nd)) != 0)
				return rv;
			nd.merge = n == 2 && memcmp(val, "<<", 2) == 0;
		} else {
			nd.kind = Y_STR;
		}
	} else if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0) {
		nd.kind = Y_STR; /* "!" or an application tag: the text as is */
	} else {
		const char *t = tag + strlen(TAG_PREFIX);
		if (strcmp(t, "str") == 0 || strcmp(t, "timestamp") == 0) {
			nd.kind = Y_STR;
		} else if (strcmp(t, "merge") == 0) {
			nd.kind = Y_STR;
			nd.merge = 1;
		} else if (strcmp(t, "binary") == 0) {
			return fail(c, nd.line, nd.col, -EINVAL, "!!binary is not supported");
		} else {
			if ((rv = resolve_plain(val, n, &nd)) != 0)
				return rv;
			int want = strcmp(t, "int") == 0     ? Y_INT
				   : strcmp(t, "float") == 0 ? Y_FLOAT
				   : strcmp(t, "bool") == 0  ? Y_BOOL
				   : strcmp(t, "null") == 0  ? Y_NULL
							     : -1;
			if (want == Y_FLOAT && nd.kind == Y_INT) {
				nd.kind = Y_FLOAT;
				nd.v.d = (double)nd.v.i;
			} else if (want == Y_FLOAT && nd.kind == Y_UINT) {
				nd.kind = Y_FLOAT;
				nd.v.d = (double)nd.v.u;
			}
			if (want < 0)
				nd.kind =
				    Y_STR; /* another yaml.org tag (!!set...): keep the text */
			else if (!(nd.kind == want || (want == Y_INT && nd.kind == Y_UINT)))
				return fail(c, nd.line, nd.col, -EINVAL,
					    "cannot decode `%.40s` as !!%s", val, t);
		}
	}
	if (nd.kind == Y_STR && (rv = str_add(c, val, n, &nd.off)) != 0)
		return rv;
	nd.len = nd.kind == Y_STR ? n : 0;
	NODE(c, idx) = nd;
	if (ev->data.scalar.anchor && (rv = anchor_define(c, ev->data.scalar.anchor, idx)) != 0)
		return rv;
	c->root_empty = c->open.n == 0 && !tag && !ev->data.scalar.anchor && n == 0 &&
			ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			ev->start_mark.index == ev->end_mark.index;
	return add_child(c, idx);
}

static int
start_event(struct conv *c, const yaml_event_t *ev, enum ykind kind, const yaml_char_t *anchor)
{
	int idx, rv;
	if (c->open.n >= RW_JSON_MAX_DEPTH)
		return fail(c, (unsigned)ev->start_mark.line + 1,
			    (unsigned)ev->start_mark.column + 1, -EINVAL,
			    "nesting deeper than %d levels", RW_JSON_MAX_DEPTH);
	if ((rv = new_node(c, &ev->start_mark, &idx)) != 0)
		return rv;
	NODE(c, idx).kind = (unsigned char)kind;
	struct open_node on = {.node = idx, .pending_base = c->pending.n};
	if ((rv = vec_push(&c->open, &on, 1)) != 0)
		return rv;
	if (anchor && (rv = anchor_define(c, anchor, idx)) != 0)
		return rv;
	return 0;
}

/* Float formatting as Go's strconv.FormatFloat(f, 'g', -1, 32), for keys. */
static void
go_float32_g(double d, char *out, size_t outlen)
{
	if (isnan(d)) {
		snprintf(out, outlen, ".nan");
		return;
	}
	float f = (float)d;
	if (isinf(f)) {
		snprintf(out, outlen, "%s", f > 0 ? ".inf" : "-.inf");
		return;
	}
	if (f == 0) {
		snprintf(out, outlen, "%s", signbit(f) ? "-0" : "0");
		return;
	}
	char e[48];
	for (int prec = 1; prec <= 9; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec - 1, (double)f);
		if ((float)strtod(e, NULL) == f)
			break;
	}
	/* e is [-]d[.ddd]e[+-]xx: collect the digits and the exponent. */
	char digits[16];
	size_t nd = 0;
	const char *p = e;
	bool neg = *p == '-';
	if (neg)
		p++;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9' && nd < sizeof(digits) - 1)
			digits[nd++] = *p;
	int exp = *p == 'e' ? atoi(p + 1) : 0;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	size_t o = 0;
	char buf[64];
	if (neg)
		buf[o++] = '-';
	if (exp < -4 || exp >= 6) {
		buf[o++] = digits[0];
		if (nd > 1) {
			buf[o++] = '.';
			memcpy(buf + o, digits + 1, nd - 1);
			o += nd - 1;
		}
		snprintf(buf + o, sizeof(buf) - o, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
	} else if (exp >= 0) {
		for (int i = 0; i <= exp; i++)
			buf[o++] = (size_t)i < nd ? digits[i] : '0';
		if (nd > (size_t)exp + 1) {
			buf[o++] = '.';
			for (size_t i = (size_t)exp + 1; i < nd; i++)
				buf[o++] = digits[i];
		}
		buf[o] = '\0';
	} else {
		buf[o++] = '0';
		buf[o++] = '.';
		for (int i = 0; i < -exp - 1; i++)
			buf[o++] = '0';
		memcpy(buf + o, digits, nd);
		o += nd;
		buf[o] = '\0';
	}
	snprintf(out, outlen, "%s", buf);
}

/* The key string of scalar node k, stored in strs: *off, *len. */
static int
key_string(struct conv *c, int k, size_t *off, size_t *len)
{
	const struct ynode *kn = &NODE(c, k);
	char tmp[64];
	switch (kn->kind) {
	case Y_STR:
		*off = kn->off;
		*len = kn->len;
		return 0;
	case Y_BOOL:
		snprintf(tmp, sizeof(tmp), "%s", kn->bval ? "true" : "false");
		break;
	case Y_INT:
		snprintf(tmp, sizeof(tmp), "%lld", (long long)kn->v.i);
		break;
	case Y_UINT:
		snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)kn->v.u);
		break;
	case Y_FLOAT:
		go_float32_g(kn->v.d, tmp, sizeof(tmp));
		break;
	case Y_NULL:
		return fail(c, kn->line, kn->col, -EINVAL, "null mapping key is not supported");
	default:
		return fail(c, kn->line, kn->col, -EINVAL, "mapping key must be a scalar, not a %s",
			    kn->kind == Y_SEQ ? "sequence" : "mapping");
	}
	*len = strlen(tmp);
	return str_add(c, tmp, *len, off);
}

/* Building a mapping: pairs in order, with a hash on the key text for last-wins. */
struct mbuild {
	struct vec pairs; /* elements are size_t[3]: key off, key len, value node */
	size_t *hash;	  /* pair index + 1; 0 = empty */
	size_t hcap;
};

static int
mb_set(struct conv *c, struct mbuild *mb, size_t koff, size_t klen, int val)
{
	int rv;
	if (c->pairs_budget == 0)
		return -EMSGSIZE;
	c->pairs_budget--;
	if ((mb->pairs.n + 1) * 2 > mb->hcap) {
		size_t ncap = mb->hcap ? mb->hcap * 2 : 16;
		size_t *nh = calloc(ncap, sizeof(size_t));
		if (!nh)
			return -ENOMEM;
		for (size_t i = 0; i < mb->pairs.n; i++) {
			const size_t *pr = (const size_t *)mb->pairs.p + 3 * i;
			size_t h = (size_t)hash_bytes(STR(c, pr[0]), pr[1]) & (ncap - 1);
			while (nh[h])
				h = (h + 1) & (ncap - 1);
			nh[h] = i + 1;
		}
		free(mb->hash);
		mb->hash = nh;
		mb->hcap = ncap;
	}
	size_t h = (size_t)hash_bytes(STR(c, koff), klen) & (mb->hcap - 1);
	while (mb->hash[h]) {
		size_t *pr = (size_t *)mb->pairs.p + 3 * (mb->hash[h] - 1);
		if (pr[1] == klen && memcmp(STR(c, pr[0]), STR(c, koff), klen) == 0) {
			pr[2] = (size_t)val;
			return 0;
		}
		h = (h + 1) & (mb->hcap - 1);
	}
	size_t np[3] = {koff, klen, (size_t)val};
	if ((rv = vec_push(&mb->pairs, np, 1)) != 0)
		return rv;
	mb->hash[h] = mb->pairs.n;
	return 0;
}

/* Merge the entries of closed mapping m into mb. */
static int
mb_merge_map(struct conv *c, struct mbuild *mb, int m)
{
	const struct ynode *mn = &NODE(c, m);
	size_t off = mn->off, cnt = mn->len;
	for (size_t i = 0; i < cnt; i++) {
		int k = EDGE(c, off + 2 * i), v = EDGE(c, off + 2 * i + 1);
		int rv = mb_set(c, mb, NODE(c, k).off, NODE(c, k).len, v);
		if (rv)
			return rv;
	}
	return 0;
}

static int
mb_merge(struct conv *c, struct mbuild *mb, int kidx, int v)
{
	const struct ynode *vn = &NODE(c, v);
	const struct ynode *kn = &NODE(c, kidx);
	if (vn->kind == Y_MAP)
		return mb_merge_map(c, mb, v);
	if (vn->kind != Y_SEQ)
		return fail(c, kn->line, kn->col, -EINVAL,
			    "map merge requires a mapping or a list of mappings");
	size_t off = vn->off, cnt = vn->len;
	for (size_t i = cnt; i-- > 0;) {
		int e = EDGE(c, off + i);
		if (NODE(c, e).kind != Y_MAP)
			return fail(c, kn->line, kn->col, -EINVAL,
				    "map merge requires a mapping or a list of mappings");
		int rv = mb_merge_map(c, mb, e);
		if (rv)
			return rv;
	}
	return 0;
}

/* Close the innermost open container: move its children to edges. */
static int
end_event(struct conv *c)
{
	struct open_node on = ((struct open_node *)c->open.p)[--c->open.n];
	int *kids = (int *)c->pending.p + on.pending_base;
	size_t nk = c->pending.n - on.pending_base;
	struct ynode *nd = &NODE(c, on.node);
	int rv = 0;

	if (nd->kind == Y_SEQ) {
		nd->off = c->edges.n;
		nd->len = nk;
		if ((rv = vec_push(&c->edges, kids, nk)) != 0)
			return rv;
	} else {
		struct mbuild mb = {.pairs = {.elem = 3 * sizeof(size_t)}};
		for (size_t i = 0; i + 1 < nk && rv == 0; i += 2) {
			int k = kids[i], v = kids[i + 1];
			size_t koff = 0, klen = 0;
			if (NODE(c, k).merge) {
				rv = mb_merge(c, &mb, k, v);
				continue;
			}
			if ((rv = key_string(c, k, &koff, &klen)) != 0)
				break;
			rv = mb_set(c, &mb, koff, klen, v);
		}
		/* Store pairs as (key string node, value) edges. */
		size_t base = c->edges.n;
		size_t npairs = mb.pairs.n;
		if (rv == 0)
			rv = vec_reserve(&c->edges, 2 * npairs);
		for (size_t i = 0; i < npairs && rv == 0; i++) {
			const size_t *pr = (const size_t *)mb.pairs.p + 3 * i;
			int kn;
			yaml_mark_t m = {.line = NODE(c, on.node).line - 1,
					 .column = NODE(c, on.node).col - 1};
			if ((rv = new_node(c, &m, &kn)) != 0)
				break;
			NODE(c, kn).kind = Y_STR;
			NODE(c, kn).done = 1;
			NODE(c, kn).off = pr[0];
			NODE(c, kn).len = pr[1];
			int e[2] = {kn, (int)pr[2]};
			rv = vec_push(&c->edges, e, 2);
		}
		vec_free(&mb.pairs);
		free(mb.hash);
		if (rv)
			return rv;
		nd = &NODE(c, on.node); /* nodes may have moved */
		nd->off = base;
		nd->len = npairs;
	}
	nd->done = 1;
	c->pending.n = on.pending_base;
	return add_child(c, on.node);
}

static int
alias_event(struct conv *c, const yaml_event_t *ev)
{
	int target = anchor_find(c, ev->data.alias.anchor);
	unsigned line = (unsigned)ev->start_mark.line + 1,
		 col = (unsigned)ev->start_mark.column + 1;
	if (target < 0)
		return fail(c, line, col, -EINVAL, "unknown anchor '%.40s' referenced",
			    (const char *)ev->data.alias.anchor);
	if (!NODE(c, target).done)
		return fail(c, line, col, -EINVAL, "anchor '%.40s' value contains itself",
			    (const char *)ev->data.alias.anchor);
	return add_child(c, target);
}

static void
doc_reset(struct conv *c)
{
	c->nodes.n = c->edges.n = c->pending.n = c->open.n = c->anchors.n = c->strs.n = 0;
	if (c->ahash)
		for (size_t i = 0; i < c->ahash_cap; i++)
			c->ahash[i] = -1;
	c->pairs_budget = c->max_json / 4 + 16;
}

/* ---- JSON output ---- */

static int
emit(struct conv *c, struct rw_jw *w, int idx, int depth)
{
	const struct ynode *nd = &NODE(c, idx);
	if (w->err)
		return w->err;
	if ((nd->kind == Y_SEQ || nd->kind == Y_MAP) && depth >= RW_JSON_MAX_DEPTH)
		return fail(c, nd->line, nd->col, -EINVAL,
			    "nesting (with aliases expanded) deeper than %d levels",
			    RW_JSON_MAX_DEPTH);
	switch (nd->kind) {
	case Y_NULL:
		rw_jw_null(w);
		break;
	case Y_BOOL:
		rw_jw_bool(w, nd->bval);
		break;
	case Y_INT:
		rw_jw_int(w, nd->v.i);
		break;
	case Y_UINT:
		rw_jw_uint(w, nd->v.u);
		break;
	case Y_FLOAT:
		if (!isfinite(nd->v.d))
			return fail(c, nd->line, nd->col, -EINVAL,
				    "%s cannot be represented in JSON",
				    isnan(nd->v.d) ? ".nan" : ".inf");
		rw_jw_double(w, nd->v.d);
		break;
	case Y_STR:
		rw_jw_strn(w, STR(c, nd->off), nd->len);
		break;
	case Y_SEQ:
		rw_jw_arr_begin(w);
		for (size_t i = 0; i < nd->len; i++) {
			int rv = emit(c, w, EDGE(c, nd->off + i), depth + 1);
			if (rv)
				return rv;
		}
		rw_jw_arr_end(w);
		break;
	case Y_MAP:
		rw_jw_obj_begin(w);
		for (size_t i = 0; i < nd->len; i++) {
			const struct ynode *k = &NODE(c, EDGE(c, nd->off + 2 * i));
			rw_jw_keyn(w, STR(c, k->off), k->len);
			int rv = emit(c, w, EDGE(c, nd->off + 2 * i + 1), depth + 1);
			if (rv)
				return rv;
		}
		rw_jw_obj_end(w);
		break;
	}
	return w->err;
}

static int
parser_fail(struct conv *c)
{
	yaml_parser_t *p = &c->parser;
	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	const char *problem = p->problem ? p->problem : "syntax error";
	if (p->context)
		return fail(c, (unsigned)p->problem_mark.line + 1,
			    (unsigned)p->problem_mark.column + 1, -EINVAL, "%s %s", problem,
			    p->context);
	return fail(c, (unsigned)p->problem_mark.line + 1, (unsigned)p->problem_mark.column + 1,
		    -EINVAL, "%s", problem);
}

/*
 * Convert the next non-empty document of the stream, appending its JSON to
 * out. Returns 1 when a document was converted, 0 at the end of the stream,
 * or a negative errno.
 */
static int
next_doc(struct conv *c, struct rw_buf *out)
{
	yaml_event_t ev;
	int rv = 0;

	if (c->stream_end)
		return 0;
	for (;;) {
		if (!yaml_parser_parse(&c->parser, &ev))
			return parser_fail(c);
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			c->stream_end = true;
			yaml_event_delete(&ev);
			return 0;
		case YAML_DOCUMENT_START_EVENT:
			doc_reset(c);
			c->root_empty = false;
			break;
		case YAML_SCALAR_EVENT:
			rv = scalar_event(c, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			rv = start_event(c, &ev, Y_SEQ, ev.data.sequence_start.anchor);
			break;
		case YAML_MAPPING_START_EVENT:
			rv = start_event(c, &ev, Y_MAP, ev.data.mapping_start.anchor);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			rv = c->open.n ? end_event(c) : -EINVAL;
			break;
		case YAML_ALIAS_EVENT:
			rv = alias_event(c, &ev);
			break;
		case YAML_DOCUMENT_END_EVENT: {
			if (c->pending.n != 1 || c->open.n != 0) {
				rv = -EINVAL;
				break;
			}
			int root = ((int *)c->pending.p)[0];
			const struct ynode *r = &NODE(c, root);
			yaml_event_delete(&ev);
			/* A document with no content (comments only, a trailing ---). */
			if (c->root_empty && c->nodes.n == 1)
				continue;
			struct rw_jw w;
			size_t old = out->len;
			rw_jw_init(&w, out);
			rv = emit(c, &w, root, 0);
			if (rv == 0)
				rv = rw_jw_finish(&w);
			if (rv == -EMSGSIZE)
				fail(c, r->line, r->col, rv, "JSON output exceeds %zu bytes",
				     c->max_json);
			if (rv) {
				out->len = old;
				if (out->data)
					out->data[old] = '\0';
				return rv;
			}
			return 1;
		}
		default:
			break;
		}
		if (rv) {
			if (rv == -EMSGSIZE)
				fail(c, (unsigned)ev.start_mark.line + 1,
				     (unsigned)ev.start_mark.column + 1, rv,
				     "document too large (more than %zu bytes of JSON)",
				     c->max_json);
			else if (rv == -ENOMEM)
				fail(c, (unsigned)ev.start_mark.line + 1,
				     (unsigned)ev.start_mark.column + 1, rv, "out of memory");
			yaml_event_delete(&ev);
			return rv;
		}
		yaml_event_delete(&ev);
	}
}

static int
conv_init(struct conv *c, const char *yaml, size_t len, size_t max_json, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->nodes.elem = sizeof(struct ynode);
	c->edges.elem = sizeof(int);
	c->pending.elem = sizeof(int);
	c->open.elem = sizeof(struct open_node);
	c->anchors.elem = sizeof(struct anchor);
	c->strs.elem = 1;
	c->max_json = max_json;
	c->err = err;
	c->errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	/* No vector pointer is ever NULL, so empty ranges need no special case. */
	if (vec_reserve(&c->nodes, 64) || vec_reserve(&c->edges, 64) ||
	    vec_reserve(&c->pending, 64) || vec_reserve(&c->open, 16) ||
	    vec_reserve(&c->anchors, 16) || vec_reserve(&c->strs, 256))
		return -ENOMEM;
	if (!yaml_parser_initialize(&c->parser))
		return -ENOMEM;
	c->parser_ok = true;
	yaml_parser_set_input_string(&c->parser, (const unsigned char *)(yaml ? yaml : ""),
				     yaml ? len : 0);
	return 0;
}

static void
conv_fini(struct conv *c)
{
	if (c->parser_ok)
		yaml_parser_delete(&c->parser);
	vec_free(&c->nodes);
	vec_free(&c->edges);
	vec_free(&c->pending);
	vec_free(&c->open);
	vec_free(&c->anchors);
	vec_free(&c->strs);
	free(c->ahash);
	c->ahash = NULL;
}

int
rw_yaml_docs_to_json(const char *yaml, size_t len, size_t max_json, rw_yaml_doc_cb cb, void *ud,
		     char *err, size_t errlen)
{
	struct conv c;
	struct rw_buf out;
	int rv, count = 0;

	rw_buf_init(&out, max_json);
	if ((rv = conv_init(&c, yaml, len, max_json, err, errlen)) != 0)
		goto out;
	for (;;) {
		rw_buf_reset(&out);
		rv = next_doc(&c, &out);
		if (rv <= 0)
			break;
		count++;
		if (cb) {
			rv = cb(rw_buf_cstr(&out), out.len, ud);
			if (rv)
				goto out;
		}
	}
	if (rv == 0)
		rv = count;
out:
	conv_fini(&c);
	rw_buf_fini(&out);
	return rv;
}

int
rw_yaml_to_json(const char *yaml, size_t len, struct rw_buf *out, char *err, size_t errlen)
{
	struct conv c;
	struct rw_buf extra;
	size_t old = out->len;
	size_t room = out->max > out->len ? out->max - out->len : 0;
	int rv;

	rw_buf_init(&extra, room);
	if ((rv = conv_init(&c, yaml, len, room, err, errlen)) != 0)
		goto out;
	rv = next_doc(&c, out);
	if (rv == 0) {
		rv = rw_buf_puts(out, "null");
		goto out;
	}
	if (rv < 0)
		goto out;
	rv = next_doc(&c, &extra);
	if (rv > 0) {
		rv = fail(&c, (unsigned)c.parser.mark.line + 1, (unsigned)c.parser.mark.column + 1,
			  -EINVAL, "expected a single document, found more");
	}
out:
	if (rv < 0) {
		out->len = old;
		if (out->data)
			out->data[old] = '\0';
	}
	conv_fini(&c);
	rw_buf_fini(&extra);
	return rv < 0 ? rv : 0;
}

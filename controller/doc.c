/* doc.c - the mutable JSON tree (doc.h) the builders and status writers of every kind use. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"

struct rw_doc_node *
rw_doc_new(enum rw_doc_type type)
{
	struct rw_doc_node *n = calloc(1, sizeof(*n));
	if (n)
		n->type = type;
	return n;
}

struct rw_doc_node *
rw_doc_new_str(const char *s)
{
	struct rw_doc_node *n = rw_doc_new(RW_DOC_STR);
	if (!n)
		return NULL;
	n->s = strdup(s ? s : "");
	if (!n->s) {
		free(n);
		return NULL;
	}
	return n;
}

struct rw_doc_node *
rw_doc_new_int(int64_t v)
{
	char tmp[32];
	struct rw_doc_node *n = rw_doc_new(RW_DOC_NUM);
	if (!n)
		return NULL;
	snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
	n->s = strdup(tmp);
	if (!n->s) {
		free(n);
		return NULL;
	}
	return n;
}

struct rw_doc_node *
rw_doc_new_bool(bool v)
{
	struct rw_doc_node *n = rw_doc_new(RW_DOC_BOOL);
	if (n)
		n->b = v;
	return n;
}

void
rw_doc_free(struct rw_doc_node *n)
{
	if (!n)
		return;
	for (int i = 0; i < n->n; i++)
		rw_doc_free(n->kids[i]);
	free(n->kids);
	free(n->s);
	free(n->key);
	free(n);
}

static int
grow(struct rw_doc_node *p)
{
	if (p->n < p->cap)
		return 0;
	if (p->n >= RW_DOC_MAX_KIDS)
		return -EMSGSIZE;
	int ncap = p->cap ? p->cap * 2 : 4;
	struct rw_doc_node **k = realloc(p->kids, (size_t)ncap * sizeof(*k));
	if (!k)
		return -ENOMEM;
	p->kids = k;
	p->cap = ncap;
	return 0;
}

struct rw_doc_node *
rw_doc_clone(const struct rw_doc_node *n)
{
	if (!n)
		return NULL;
	struct rw_doc_node *c = rw_doc_new(n->type);
	if (!c)
		return NULL;
	c->b = n->b;
	if (n->s && !(c->s = strdup(n->s)))
		goto fail;
	for (int i = 0; i < n->n; i++) {
		struct rw_doc_node *k = rw_doc_clone(n->kids[i]);
		if (!k || grow(c) != 0) {
			rw_doc_free(k);
			goto fail;
		}
		if (n->kids[i]->key && !(k->key = strdup(n->kids[i]->key))) {
			rw_doc_free(k);
			goto fail;
		}
		c->kids[c->n++] = k;
	}
	return c;
fail:
	rw_doc_free(c);
	return NULL;
}

struct keyidx {
	const char *key;
	int i;
};

static int
cmp_keyidx(const void *a, const void *b)
{
	const struct keyidx *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/*
 * Keep only the last member of each key (Go's decoding rule) in O(n log n):
 * sort (key, position) pairs and drop all but the last of each run.
 */
static int
dedup(struct rw_doc_node *o)
{
	struct keyidx *ki;
	bool *drop;
	int m = 0;
	if (o->n < 2)
		return 0;
	ki = malloc((size_t)o->n * sizeof(*ki));
	drop = calloc((size_t)o->n, sizeof(*drop));
	if (!ki || !drop) {
		free(ki);
		free(drop);
		return -ENOMEM;
	}
	for (int i = 0; i < o->n; i++) {
		ki[i].key = o->kids[i]->key;
		ki[i].i = i;
	}
	qsort(ki, (size_t)o->n, sizeof(*ki), cmp_keyidx);
	for (int i = 0; i + 1 < o->n; i++)
		if (strcmp(ki[i].key, ki[i + 1].key) == 0)
			drop[ki[i].i] = true;
	for (int i = 0; i < o->n; i++) {
		if (drop[i])
			rw_doc_free(o->kids[i]);
		else
			o->kids[m++] = o->kids[i];
	}
	o->n = m;
	free(ki);
	free(drop);
	return 0;
}

struct rw_doc_node *
rw_doc_from_json(const struct rw_json *j, int t)
{
	struct rw_doc_node *n = NULL;
	int i, c, k, v;
	size_t len;
	const char *raw;

	switch (rw_json_type(j, t)) {
	case RW_JSON_OBJECT:
		n = rw_doc_new(RW_DOC_OBJ);
		if (!n)
			return NULL;
		RW_JSON_OBJ_FOREACH (j, t, i, k, v) {
			char *key = rw_json_strdup(j, k);
			struct rw_doc_node *val = key ? rw_doc_from_json(j, v) : NULL;
			if (!val || grow(n) != 0) {
				free(key);
				rw_doc_free(val);
				goto fail;
			}
			val->key = key;
			n->kids[n->n++] = val;
		}
		if (dedup(n) != 0)
			goto fail;
		return n;
	case RW_JSON_ARRAY:
		n = rw_doc_new(RW_DOC_ARR);
		if (!n)
			return NULL;
		RW_JSON_ARR_FOREACH (j, t, i, c) {
			if (rw_doc_push(n, rw_doc_from_json(j, c)) != 0)
				goto fail;
		}
		return n;
	case RW_JSON_STRING: {
		char *s = rw_json_strdup(j, t);
		if (!s)
			return NULL;
		n = rw_doc_new(RW_DOC_STR);
		if (!n) {
			free(s);
			return NULL;
		}
		n->s = s;
		return n;
	}
	case RW_JSON_NUMBER:
		raw = rw_json_raw(j, t, &len);
		n = rw_doc_new(RW_DOC_NUM);
		if (!n || !raw)
			goto fail;
		n->s = strndup(raw, len);
		if (!n->s)
			goto fail;
		return n;
	case RW_JSON_TRUE:
	case RW_JSON_FALSE:
		return rw_doc_new_bool(rw_json_type(j, t) == RW_JSON_TRUE);
	case RW_JSON_NULL:
		return rw_doc_new(RW_DOC_NULL);
	default:
		return NULL;
	}
fail:
	rw_doc_free(n);
	return NULL;
}

int
rw_doc_parse(const char *text, size_t len, struct rw_doc_node **out, char *err, size_t errlen)
{
	struct rw_json j;
	int rv;

	*out = NULL;
	rv = rw_json_parse(&j, text, len, RW_DOC_MAX_TOKENS, err, errlen);
	if (rv)
		return rv;
	*out = rw_doc_from_json(&j, 0);
	rw_json_fini(&j);
	if (!*out) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory or bad string escape");
		return -ENOMEM;
	}
	return 0;
}

static struct rw_doc_node *
obj_or_null(struct rw_doc_node *n)
{
	return n && n->type == RW_DOC_OBJ ? n : NULL;
}

static const char *
str_or(const struct rw_doc_node *o, const char *key, const char *dflt)
{
	const char *v = rw_doc_gets(o, key);
	return v ? v : dflt;
}

int
rw_doc_object_parse(const char *json, size_t len, const char *kind, struct rw_doc_object *o,
		    char *err, size_t errlen)
{
	struct rw_doc_node *md;
	int64_t gen;
	int rv;

	memset(o, 0, sizeof(*o));
	rv = rw_doc_parse(json, len, &o->root, err, errlen);
	if (rv)
		return rv;
	if (o->root->type != RW_DOC_OBJ) {
		rw_doc_free(o->root);
		o->root = NULL;
		if (err && errlen)
			snprintf(err, errlen, "%s is not a JSON object", kind);
		return -EINVAL;
	}
	md = rw_doc_get(o->root, "metadata");
	o->name = str_or(md, "name", "");
	o->ns = str_or(md, "namespace", "default");
	o->uid = str_or(md, "uid", "");
	if (rw_doc_int(rw_doc_get(md, "generation"), &gen) == 0)
		o->generation = gen;
	o->labels = obj_or_null(rw_doc_get(md, "labels"));
	o->annotations = obj_or_null(rw_doc_get(md, "annotations"));
	o->status = obj_or_null(rw_doc_get(o->root, "status"));
	o->spec = rw_doc_obj(o->root, "spec");
	if (!o->spec) {
		rw_doc_free(o->root);
		memset(o, 0, sizeof(*o));
		return -ENOMEM;
	}
	return 0;
}

static int
cmp_kids(const void *a, const void *b)
{
	const struct rw_doc_node *x = *(const struct rw_doc_node *const *)a;
	const struct rw_doc_node *y = *(const struct rw_doc_node *const *)b;
	return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static void
write_node(const struct rw_doc_node *n, struct rw_jw *w, bool sorted)
{
	if (!n) {
		rw_jw_null(w);
		return;
	}
	switch (n->type) {
	case RW_DOC_OBJ: {
		struct rw_doc_node **order = n->kids;
		struct rw_doc_node **tmp = NULL;
		if (sorted && n->n > 1) {
			tmp = malloc((size_t)n->n * sizeof(*tmp));
			if (!tmp) {
				w->err = w->err ? w->err : -ENOMEM;
				return;
			}
			memcpy(tmp, n->kids, (size_t)n->n * sizeof(*tmp));
			qsort(tmp, (size_t)n->n, sizeof(*tmp), cmp_kids);
			order = tmp;
		}
		rw_jw_obj_begin(w);
		for (int i = 0; i < n->n; i++) {
			rw_jw_key(w, order[i]->key ? order[i]->key : "");
			write_node(order[i], w, sorted);
		}
		rw_jw_obj_end(w);
		free(tmp);
		break;
	}
	case RW_DOC_ARR:
		rw_jw_arr_begin(w);
		for (int i = 0; i < n->n; i++)
			write_node(n->kids[i], w, sorted);
		rw_jw_arr_end(w);
		break;
	case RW_DOC_STR:
		rw_jw_str(w, n->s ? n->s : "");
		break;
	case RW_DOC_NUM:
		rw_jw_raw(w, n->s ? n->s : "0", n->s ? strlen(n->s) : 1);
		break;
	case RW_DOC_BOOL:
		rw_jw_bool(w, n->b);
		break;
	default:
		rw_jw_null(w);
	}
}

void
rw_doc_write(const struct rw_doc_node *n, struct rw_jw *w)
{
	write_node(n, w, false);
}

void
rw_doc_write_sorted(const struct rw_doc_node *n, struct rw_jw *w)
{
	write_node(n, w, true);
}

int
rw_doc_dump(const struct rw_doc_node *n, struct rw_buf *b)
{
	struct rw_jw w;
	rw_jw_init(&w, b);
	rw_doc_write(n, &w);
	return rw_jw_finish(&w);
}

static int
pretty(const struct rw_doc_node *n, struct rw_buf *b, int depth)
{
	int rv = 0;
	if (depth > RW_JSON_MAX_DEPTH)
		return -EINVAL;
	if (n->type != RW_DOC_OBJ && n->type != RW_DOC_ARR) {
		struct rw_jw w;
		rw_jw_init(&w, b);
		rw_doc_write(n, &w);
		return rw_jw_finish(&w);
	}
	if (n->n == 0)
		return rw_buf_puts(b, n->type == RW_DOC_OBJ ? "{}" : "[]");
	rv = rw_buf_putc(b, n->type == RW_DOC_OBJ ? '{' : '[');
	for (int i = 0; i < n->n && !rv; i++) {
		rv = rw_buf_printf(b, "%s\n%*s", i ? "," : "", 2 * (depth + 1), "");
		if (!rv && n->type == RW_DOC_OBJ) {
			const char *k = n->kids[i]->key ? n->kids[i]->key : "";
			rv = rw_json_quote(b, k, strlen(k));
			if (!rv)
				rv = rw_buf_puts(b, ": ");
		}
		if (!rv)
			rv = pretty(n->kids[i], b, depth + 1);
	}
	if (!rv)
		rv = rw_buf_printf(b, "\n%*s%c", 2 * depth, "", n->type == RW_DOC_OBJ ? '}' : ']');
	return rv;
}

int
rw_doc_dump_pretty(const struct rw_doc_node *n, struct rw_buf *b)
{
	if (!n)
		return rw_buf_puts(b, "null");
	return pretty(n, b, 0);
}

struct rw_doc_node *
rw_doc_get(const struct rw_doc_node *o, const char *key)
{
	if (!o || o->type != RW_DOC_OBJ || !key)
		return NULL;
	for (int i = o->n - 1; i >= 0; i--)
		if (o->kids[i]->key && strcmp(o->kids[i]->key, key) == 0)
			return o->kids[i];
	return NULL;
}

struct rw_doc_node *
rw_doc_path(const struct rw_doc_node *o, const char *path)
{
	char part[256];
	const struct rw_doc_node *cur = o;
	while (cur && path && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, path, n);
		part[n] = '\0';
		cur = rw_doc_get(cur, part);
		path = dot ? dot + 1 : NULL;
	}
	return (struct rw_doc_node *)cur;
}

struct rw_doc_node *
rw_doc_at(const struct rw_doc_node *a, int i)
{
	if (!a || a->type != RW_DOC_ARR || i < 0 || i >= a->n)
		return NULL;
	return a->kids[i];
}

const char *
rw_doc_str(const struct rw_doc_node *n)
{
	return n && n->type == RW_DOC_STR ? n->s : NULL;
}

const char *
rw_doc_gets(const struct rw_doc_node *o, const char *key)
{
	return rw_doc_str(rw_doc_get(o, key));
}

struct rw_doc_node *
rw_doc_cond(const struct rw_doc_node *conds, const char *type)
{
	for (int i = 0; conds && conds->type == RW_DOC_ARR && i < conds->n; i++) {
		const char *t = rw_doc_gets(conds->kids[i], "type");
		if (t && type && strcmp(t, type) == 0)
			return conds->kids[i];
	}
	return NULL;
}

bool
rw_doc_cond_true(const struct rw_doc_node *conds, const char *type)
{
	const char *s = rw_doc_gets(rw_doc_cond(conds, type), "status");
	return s && strcmp(s, "True") == 0;
}

bool
rw_doc_true(const struct rw_doc_node *n)
{
	return n && n->type == RW_DOC_BOOL && n->b;
}

int
rw_doc_int(const struct rw_doc_node *n, int64_t *out)
{
	char *end;
	long long v;
	if (!n || n->type != RW_DOC_NUM || !n->s)
		return -EINVAL;
	errno = 0;
	v = strtoll(n->s, &end, 10);
	if (*end != '\0') {
		/* Accept integral values written as floats (1.0, 1e3). */
		double d = strtod(n->s, &end);
		if (*end != '\0')
			return -EINVAL;
		if (!(d <= 9.2e18 && d >= -9.2e18)) /* also inf and nan */
			return -ERANGE;
		if (d != (double)(long long)d)
			return -EINVAL;
		*out = (int64_t)d;
		return 0;
	}
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

int64_t
rw_doc_int_or(const struct rw_doc_node *o, const char *key, int64_t def)
{
	int64_t v;
	struct rw_doc_node *n = rw_doc_get(o, key);
	if (!n || n->type == RW_DOC_NULL || rw_doc_int(n, &v) != 0)
		return def;
	return v;
}

int
rw_doc_set(struct rw_doc_node *o, const char *key, struct rw_doc_node *v)
{
	char *k;
	if (!o || o->type != RW_DOC_OBJ || !v || !key) {
		rw_doc_free(v);
		return v ? -EINVAL : -ENOMEM;
	}
	for (int i = o->n - 1; i >= 0; i--) {
		if (o->kids[i]->key && strcmp(o->kids[i]->key, key) == 0) {
			k = o->kids[i]->key;
			o->kids[i]->key = NULL;
			rw_doc_free(o->kids[i]);
			free(v->key);
			v->key = k;
			o->kids[i] = v;
			/* Drop earlier duplicates so the object has one member per key. */
			for (int d = i - 1; d >= 0; d--) {
				if (o->kids[d]->key && strcmp(o->kids[d]->key, key) == 0) {
					rw_doc_free(o->kids[d]);
					memmove(&o->kids[d], &o->kids[d + 1],
						(size_t)(o->n - d - 1) * sizeof(*o->kids));
					o->n--;
				}
			}
			return 0;
		}
	}
	if (grow(o) != 0 || !(k = strdup(key))) {
		rw_doc_free(v);
		return -ENOMEM;
	}
	free(v->key);
	v->key = k;
	o->kids[o->n++] = v;
	return 0;
}

int
rw_doc_set_str(struct rw_doc_node *o, const char *key, const char *v)
{
	return rw_doc_set(o, key, rw_doc_new_str(v));
}

int
rw_doc_set_int(struct rw_doc_node *o, const char *key, int64_t v)
{
	return rw_doc_set(o, key, rw_doc_new_int(v));
}

int
rw_doc_set_bool(struct rw_doc_node *o, const char *key, bool v)
{
	return rw_doc_set(o, key, rw_doc_new_bool(v));
}

void
rw_doc_del(struct rw_doc_node *o, const char *key)
{
	char *k;
	if (!o || o->type != RW_DOC_OBJ || !key)
		return;
	/* key may be a member's own key, freed below: work on a copy. */
	k = strdup(key);
	if (!k)
		return;
	for (int i = o->n - 1; i >= 0; i--) {
		if (o->kids[i]->key && strcmp(o->kids[i]->key, k) == 0) {
			rw_doc_free(o->kids[i]);
			memmove(&o->kids[i], &o->kids[i + 1],
				(size_t)(o->n - i - 1) * sizeof(*o->kids));
			o->n--;
		}
	}
	free(k);
}

int
rw_doc_insert(struct rw_doc_node *a, int i, struct rw_doc_node *v)
{
	if (!a || a->type != RW_DOC_ARR || !v || i < 0 || i > a->n) {
		rw_doc_free(v);
		return v ? -EINVAL : -ENOMEM;
	}
	if (grow(a) != 0) {
		rw_doc_free(v);
		return -ENOMEM;
	}
	free(v->key);
	v->key = NULL;
	memmove(&a->kids[i + 1], &a->kids[i], (size_t)(a->n - i) * sizeof(*a->kids));
	a->kids[i] = v;
	a->n++;
	return 0;
}

int
rw_doc_push(struct rw_doc_node *a, struct rw_doc_node *v)
{
	return rw_doc_insert(a, a ? a->n : 0, v);
}

static struct rw_doc_node *
member_of_type(struct rw_doc_node *o, const char *key, enum rw_doc_type type)
{
	struct rw_doc_node *m = rw_doc_get(o, key);
	if (m && m->type == type)
		return m;
	if (!o || o->type != RW_DOC_OBJ)
		return NULL;
	if (rw_doc_set(o, key, rw_doc_new(type)) != 0)
		return NULL;
	return rw_doc_get(o, key);
}

struct rw_doc_node *
rw_doc_obj(struct rw_doc_node *o, const char *key)
{
	return member_of_type(o, key, RW_DOC_OBJ);
}

struct rw_doc_node *
rw_doc_arr(struct rw_doc_node *o, const char *key)
{
	return member_of_type(o, key, RW_DOC_ARR);
}

bool
rw_doc_equal(const struct rw_doc_node *a, const struct rw_doc_node *b)
{
	if (!a || !b)
		return a == b;
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case RW_DOC_NULL:
		return true;
	case RW_DOC_BOOL:
		return a->b == b->b;
	case RW_DOC_NUM:
	case RW_DOC_STR:
		return strcmp(a->s ? a->s : "", b->s ? b->s : "") == 0;
	case RW_DOC_ARR:
		if (a->n != b->n)
			return false;
		for (int i = 0; i < a->n; i++)
			if (!rw_doc_equal(a->kids[i], b->kids[i]))
				return false;
		return true;
	case RW_DOC_OBJ:
		if (a->n != b->n)
			return false;
		for (int i = 0; i < a->n; i++)
			if (!rw_doc_equal(a->kids[i], rw_doc_get(b, a->kids[i]->key)))
				return false;
		return true;
	}
	return false;
}

int
rw_doc_finalizer_index(const struct rw_doc_node *root, const char *finalizer)
{
	struct rw_doc_node *f = rw_doc_path(root, "metadata.finalizers");
	for (int i = 0; f && f->type == RW_DOC_ARR && i < f->n; i++)
		if (rw_doc_str(f->kids[i]) && strcmp(f->kids[i]->s, finalizer) == 0)
			return i;
	return -1;
}

int
rw_doc_object_alloc(const char *json, size_t len, const char *kind, size_t size, void **out,
		    char *err, size_t errlen)
{
	struct rw_doc_object *o;
	int rv;
	*out = NULL;
	if (size < sizeof(*o) || !(o = calloc(1, size)))
		return -ENOMEM;
	rv = rw_doc_object_parse(json, len, kind, o, err, errlen);
	if (rv) {
		free(o);
		return rv;
	}
	*out = o;
	return 0;
}

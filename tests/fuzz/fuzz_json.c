/*
 * fuzz_json.c - parse arbitrary bytes; whatever parses is rewritten with the
 * writer, which must produce JSON that parses again and is a fixed point of
 * parse+rewrite. Also exercises the accessors on every token.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
rewrite(const struct rw_json *j, int t, struct rw_jw *w)
{
	int i, c, k, v;
	char *s;
	int64_t iv;
	double dv;

	switch (rw_json_type(j, t)) {
	case RW_JSON_OBJECT:
		rw_jw_obj_begin(w);
		RW_JSON_OBJ_FOREACH (j, t, i, k, v) {
			s = rw_json_strdup(j, k);
			rw_jw_key(w, s ? s : "");
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
	case RW_JSON_STRING:
		s = rw_json_strdup(j, t);
		rw_jw_str(w, s); /* NULL (bad escape) writes null */
		free(s);
		break;
	case RW_JSON_NUMBER:
		if (rw_json_int(j, t, &iv) == 0)
			rw_jw_int(w, iv);
		else if (rw_json_double(j, t, &dv) == 0)
			rw_jw_double(w, dv);
		else
			rw_jw_null(w);
		break;
	case RW_JSON_TRUE:
	case RW_JSON_FALSE:
		rw_jw_bool(w, rw_json_type(j, t) == RW_JSON_TRUE);
		break;
	default:
		rw_jw_null(w);
	}
}

/* Parse text and rewrite it into out; returns the parse result. */
static int
cycle(const char *text, size_t len, struct rw_buf *out)
{
	struct rw_json j;
	struct rw_jw w;
	char err[128];
	/* The informer's token cap for a list answer (LIST_MAX_TOKENS). */
	int rv = rw_json_parse(&j, text, len, 8 << 20, err, sizeof(err));
	if (rv)
		return rv;
	/* Accessors must stay in range on every token. */
	for (int t = 0; t < j.ntok; t++) {
		char small[16];
		size_t n;
		int s = rw_json_skip(&j, t);
		if (s <= t || s > j.ntok)
			abort();
		(void)rw_json_str(&j, t, small, sizeof(small));
		(void)rw_json_raw_value(&j, t, &n);
		(void)rw_json_get(&j, t, "a");
		(void)rw_json_path(&j, t, "a.b");
		(void)rw_json_at(&j, t, 1);
	}
	rw_jw_init(&w, out);
	rewrite(&j, 0, &w);
	rv = rw_jw_finish(&w);
	rw_json_fini(&j);
	return rv ? 1 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_buf a, b, c;
	rw_buf_init(&a, 1 << 20);
	rw_buf_init(&b, 1 << 20);
	rw_buf_init(&c, 1 << 20);
	if (cycle((const char *)data, size, &a) != 0)
		goto out;
	/* The writer's output must parse and be stable from the second round on. */
	if (cycle(a.data, a.len, &b) != 0)
		abort();
	if (cycle(b.data, b.len, &c) != 0)
		abort();
	if (b.len != c.len || memcmp(b.data, c.data, b.len) != 0)
		abort();
	/* Raw insertion accepts exactly what the parser accepts. */
	{
		struct rw_buf r;
		struct rw_jw w;
		rw_buf_init(&r, 1 << 20);
		rw_jw_init(&w, &r);
		rw_jw_raw(&w, (const char *)data, size);
		if (rw_jw_finish(&w) != 0)
			abort();
		rw_buf_fini(&r);
	}
out:
	rw_buf_fini(&a);
	rw_buf_fini(&b);
	rw_buf_fini(&c);
	return 0;
}

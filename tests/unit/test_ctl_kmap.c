/* test_ctl_kmap.c - the controller's hash map: the intrusive table and the
 * string-keyed map on it (kmap.h). */
#include <errno.h>
#include <stdint.h>

#include "kmap.h"
#include "rw/list.h"
#include "rwtest.h"

struct obj {
	uint32_t id;
	struct rw_hlink link;
};

static struct obj *
htab_find(const struct rw_htab *t, uint32_t id)
{
	uint64_t hv = rw_hash_u64(id);
	for (struct rw_hlink *l = rw_htab_chain(t, hv); l; l = l->next) {
		struct obj *o = rw_list_entry(l, struct obj, link);
		if (l->hash == hv && o->id == id)
			return o;
	}
	return NULL;
}

static void
t_htab(void)
{
	/* n objects in, every third out, the rest still found; growth on the way. */
	static const int sizes[] = {0, 1, 15, 16, 17, 1000, 10000};
	for (size_t c = 0; c < sizeof(sizes) / sizeof(sizes[0]); c++) {
		int n = sizes[c];
		struct obj *o = calloc((size_t)n + 1, sizeof(*o));
		struct rw_htab t;
		rw_htab_init(&t);
		CHECK(htab_find(&t, 1) == NULL);
		for (int i = 0; i < n; i++) {
			o[i].id = (uint32_t)i * 7919u;
			CHECK_EQ_INT(rw_htab_insert(&t, &o[i].link, rw_hash_u64(o[i].id)), 0);
		}
		CHECK_EQ_INT(t.n, n);
		CHECK(t.nb >= t.n); /* load factor <= 1 */
		for (int i = 0; i < n; i += 3)
			rw_htab_remove(&t, &o[i].link);
		int left = n - (n + 2) / 3;
		CHECK_EQ_INT(t.n, left);
		for (int i = 0; i < n; i++)
			CHECK((htab_find(&t, o[i].id) != NULL) == (i % 3 != 0));
		/* Walk with removal of the current link: every one seen once. */
		struct rw_hlink *l, *tmp;
		size_t b;
		int seen = 0;
		RW_HTAB_FOREACH_SAFE (l, tmp, b, &t) {
			seen++;
			rw_htab_remove(&t, l);
			l->next = NULL; /* as if freed */
		}
		CHECK_EQ_INT(seen, left);
		CHECK_EQ_INT(t.n, 0);
		rw_htab_fini(&t);
		CHECK(t.b == NULL && t.nb == 0);
		free(o);
	}
}

static void
t_kmap(void)
{
	static const struct {
		char op; /* p: put, d: del, g: get */
		const char *key;
		intptr_t val;  /* put: the value; get/del: the expected one (0: NULL) */
		intptr_t prev; /* put: the old value expected */
		size_t n;      /* entries after */
	} steps[] = {
	    {'g', "a", 0, 0, 0}, {'d', "a", 0, 0, 0},	 {'p', "a", 1, 0, 1},
	    {'p', "b", 2, 0, 2}, {'g', "a", 1, 0, 2},	 {'p', "a", 3, 1, 2},
	    {'g', "a", 3, 0, 2}, {'d', "a", 3, 0, 1},	 {'g', "a", 0, 0, 1},
	    {'p', "", 4, 0, 2},	 {'g', "", 4, 0, 2},	 {'d', "b", 2, 0, 1},
	    {'d', "b", 0, 0, 1}, {'p', "ns/x", 5, 0, 2}, {'g', "ns/x", 5, 0, 2},
	};
	struct rw_kmap m;
	rw_kmap_init(&m);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		void *old = (void *)-1;
		switch (steps[i].op) {
		case 'p':
			CHECK_EQ_INT(rw_kmap_put(&m, steps[i].key, (void *)steps[i].val, &old), 0);
			CHECK(old == (void *)steps[i].prev);
			break;
		case 'd':
			CHECK(rw_kmap_del(&m, steps[i].key) == (void *)steps[i].val);
			break;
		default:
			CHECK(rw_kmap_get(&m, steps[i].key) == (void *)steps[i].val);
		}
		CHECK_EQ_INT(m.n, steps[i].n);
	}
	rw_kmap_fini(&m, NULL);
	CHECK_EQ_INT(m.n, 0);
}

static void
t_kmap_iter_delete(void)
{
	/* Deleting the current entry while iterating is allowed. */
	struct rw_kmap m;
	struct rw_kmap_iter it;
	struct rw_kmap_ent *e;
	char key[16];
	int seen = 0;
	rw_kmap_init(&m);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CHECK_EQ_INT(rw_kmap_put(&m, key, (void *)(intptr_t)(i + 1), NULL), 0);
	}
	rw_kmap_iter_init(&m, &it);
	while ((e = rw_kmap_next(&m, &it))) {
		seen++;
		if ((intptr_t)e->val % 2)
			rw_kmap_del(&m, e->key);
	}
	CHECK_EQ_INT(seen, 100);
	CHECK_EQ_INT(m.n, 50);
	CHECK(rw_kmap_get(&m, "k1") != NULL);	     /* value 2 */
	CHECK(rw_kmap_get(&m, "k0") == NULL);	     /* value 1 */
	CHECK_EQ_INT(rw_kmap_hash(""), 2166136261u); /* FNV-1a offset basis */
	CHECK_EQ_INT(rw_kmap_hash("a"), 0xe40c292cu);
	rw_kmap_fini(&m, NULL);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"htab", t_htab},
	    {"kmap", t_kmap},
	    {"kmap_iter_delete", t_kmap_iter_delete},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

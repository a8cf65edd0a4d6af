/* test_list.c - the intrusive list (rw/list.h): order, removal, safe iteration. */
#include "rw/list.h"
#include "rwtest.h"

struct item {
	int v;
	struct rw_list link;
};

/* The values of head's elements, first to last, into out; returns the count. */
static int
values(const struct rw_list *head, int *out, int max)
{
	const struct rw_list *pos;
	int n = 0;
	RW_LIST_FOREACH (pos, head) {
		if (n < max)
			out[n] = rw_list_entry(pos, const struct item, link)->v;
		n++;
	}
	return n;
}

/* Walking backwards must give the same elements: prev links are consistent. */
static int
consistent(const struct rw_list *head)
{
	const struct rw_list *p = head;
	do {
		if (p->next->prev != p || p->prev->next != p)
			return 0;
		p = p->next;
	} while (p != head);
	return 1;
}

static void
t_insert_order(void)
{
	static const struct {
		const char *ops; /* 't': insert_tail of the next item, 'h': insert_head */
		int want[6];
		int n;
	} cases[] = {
	    {"", {0}, 0},
	    {"t", {0}, 1},
	    {"h", {0}, 1},
	    {"ttt", {0, 1, 2}, 3},
	    {"hhh", {2, 1, 0}, 3},
	    {"thth", {3, 1, 0, 2}, 4},
	    {"tthhtt", {3, 2, 0, 1, 4, 5}, 6},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_list head;
		struct item it[6];
		int got[6];
		rw_list_init(&head);
		CHECK(rw_list_empty(&head));
		CHECK(rw_list_first(&head) == NULL);
		CHECK(rw_list_last(&head) == NULL);
		for (int k = 0; cases[i].ops[k]; k++) {
			it[k].v = k;
			rw_list_init(&it[k].link);
			if (cases[i].ops[k] == 't')
				rw_list_insert_tail(&head, &it[k].link);
			else
				rw_list_insert_head(&head, &it[k].link);
		}
		CHECK_EQ_INT(values(&head, got, 6), cases[i].n);
		for (int k = 0; k < cases[i].n; k++)
			CHECK_EQ_INT(got[k], cases[i].want[k]);
		CHECK(consistent(&head));
		CHECK_EQ_INT(rw_list_empty(&head), cases[i].n == 0);
		if (cases[i].n) {
			CHECK_EQ_INT(rw_list_entry(rw_list_first(&head), struct item, link)->v,
				     cases[i].want[0]);
			CHECK_EQ_INT(rw_list_entry(rw_list_last(&head), struct item, link)->v,
				     cases[i].want[cases[i].n - 1]);
		}
	}
}

static void
t_remove(void)
{
	static const struct {
		int remove[5]; /* indexes of items 0..4 to remove, -1 ends */
		int want[5];
		int n;
	} cases[] =
	    {
		{{-1}, {0, 1, 2, 3, 4}, 5},    {{0, -1}, {1, 2, 3, 4}, 4},
		{{4, -1}, {0, 1, 2, 3}, 4},    {{2, -1}, {0, 1, 3, 4}, 4},
		{{2, 2, -1}, {0, 1, 3, 4}, 4}, /* twice: the second is a no-op */
		{{0, 1, 2, 3, 4}, {0}, 0},
	    };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_list head = RW_LIST_INIT(head);
		struct item it[5];
		int got[5];
		for (int k = 0; k < 5; k++) {
			it[k].v = k;
			rw_list_init(&it[k].link);
			rw_list_insert_tail(&head, &it[k].link);
			CHECK(!rw_list_empty(&it[k].link)); /* linked */
		}
		for (int k = 0; k < 5 && cases[i].remove[k] >= 0; k++) {
			struct rw_list *n = &it[cases[i].remove[k]].link;
			rw_list_remove(n);
			CHECK(rw_list_empty(n)); /* self-linked after removal */
			CHECK(n->next == n && n->prev == n);
		}
		CHECK_EQ_INT(values(&head, got, 5), cases[i].n);
		for (int k = 0; k < cases[i].n; k++)
			CHECK_EQ_INT(got[k], cases[i].want[k]);
		CHECK(consistent(&head));
	}
}

static void
t_foreach_safe(void)
{
	/* Remove (and poison) every element matching a predicate while walking. */
	static const struct {
		int mod; /* remove v where v % mod == rem */
		int rem;
		int left;
	} cases[] = {
	    {1, 0, 0}, /* all */
	    {2, 0, 3}, /* evens */
	    {2, 1, 3}, /* odds */
	    {7, 6, 6}, /* none */
	    {6, 5, 5}, /* the last */
	    {6, 0, 5}, /* the first */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_list head, *pos, *tmp;
		struct item it[6];
		int got[6], n = 0;
		rw_list_init(&head);
		for (int k = 0; k < 6; k++) {
			it[k].v = k;
			rw_list_init(&it[k].link);
			rw_list_insert_tail(&head, &it[k].link);
		}
		RW_LIST_FOREACH_SAFE (pos, tmp, &head) {
			struct item *e = rw_list_entry(pos, struct item, link);
			n++;
			if (e->v % cases[i].mod == cases[i].rem) {
				rw_list_remove(pos);
				/* As if freed: the walk must not read it again. */
				pos->next = pos->prev = NULL;
			}
		}
		CHECK_EQ_INT(n, 6); /* every element visited once */
		CHECK_EQ_INT(values(&head, got, 6), cases[i].left);
		for (int k = 0; k < cases[i].left && k < 6; k++)
			CHECK(got[k] % cases[i].mod != cases[i].rem);
		CHECK(consistent(&head));
	}
}

static void
t_move_between_lists(void)
{
	/* A node leaves one list and joins another: the pattern of LRU and
	 * waiting queues. */
	struct rw_list a, b;
	struct item it[3];
	int got[3];
	rw_list_init(&a);
	rw_list_init(&b);
	for (int k = 0; k < 3; k++) {
		it[k].v = k;
		rw_list_init(&it[k].link);
		rw_list_insert_tail(&a, &it[k].link);
	}
	rw_list_remove(&it[1].link);
	rw_list_insert_head(&b, &it[1].link);
	rw_list_remove(&it[0].link);
	rw_list_insert_tail(&a, &it[0].link); /* to the back: "most recently used" */
	CHECK_EQ_INT(values(&a, got, 3), 2);
	CHECK_EQ_INT(got[0], 2);
	CHECK_EQ_INT(got[1], 0);
	CHECK_EQ_INT(values(&b, got, 3), 1);
	CHECK_EQ_INT(got[0], 1);
	CHECK(consistent(&a) && consistent(&b));
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"insert_order", t_insert_order},
	    {"remove", t_remove},
	    {"foreach_safe", t_foreach_safe},
	    {"move_between_lists", t_move_between_lists},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

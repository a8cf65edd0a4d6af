/* test_buf.c - bounded buffer. */
#include <errno.h>

#include "rw/buf.h"
#include "rwtest.h"

static void
t_append_and_limit(void)
{
	struct rw_buf b;
	rw_buf_init(&b, 8);
	CHECK_EQ_STR(rw_buf_cstr(&b), "");
	CHECK_EQ_INT(rw_buf_puts(&b, "abcd"), 0);
	CHECK_EQ_INT(rw_buf_puts(&b, "efgh"), 0);
	CHECK_EQ_INT(rw_buf_putc(&b, 'x'), -EMSGSIZE);
	CHECK_EQ_STR(rw_buf_cstr(&b), "abcdefgh");
	CHECK(b.cap <= 9);
	rw_buf_consume(&b, 3);
	CHECK_EQ_STR(rw_buf_cstr(&b), "defgh");
	CHECK_EQ_INT(rw_buf_printf(&b, "%d", 123), 0);
	CHECK_EQ_STR(rw_buf_cstr(&b), "defgh123");
	CHECK_EQ_INT(rw_buf_printf(&b, "%d", 4), -EMSGSIZE);
	CHECK_EQ_INT((int)b.len, 8);
	rw_buf_fini(&b);
}

static void
t_steal(void)
{
	struct rw_buf b;
	size_t n = 99;
	rw_buf_init(&b, 1024);
	char *p = rw_buf_steal(&b, &n);
	CHECK(p && p[0] == '\0' && n == 0);
	free(p);
	rw_buf_puts(&b, "hello");
	p = rw_buf_steal(&b, &n);
	CHECK_EQ_STR(p, "hello");
	CHECK_EQ_INT((int)n, 5);
	CHECK(b.data == NULL && b.len == 0);
	free(p);
	rw_buf_fini(&b);
}

static void
t_huge_printf(void)
{
	struct rw_buf b;
	rw_buf_init(&b, 1 << 20);
	for (int i = 0; i < 10000; i++)
		CHECK_EQ_INT(rw_buf_printf(&b, "%08d", i), 0);
	CHECK_EQ_INT((int)b.len, 80000);
	CHECK(memcmp(b.data + 79992, "00009999", 8) == 0);
	rw_buf_fini(&b);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"append and limit", t_append_and_limit},
	    {"steal", t_steal},
	    {"many printf", t_huge_printf},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

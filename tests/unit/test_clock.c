/* test_clock.c - clocks and RFC 3339 formatting/parsing (rw/clock.h). */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "rw/clock.h"
#include "rwtest.h"

static void
t_format(void)
{
	static const struct {
		int64_t t; /* in the unit of fn */
		int unit;  /* 1: seconds, 1000: ms, 1000000: µs */
		const char *want;
	} cases[] = {
	    {0, 1, "1970-01-01T00:00:00Z"},
	    {1796248800, 1, "2026-12-02T22:00:00Z"},
	    {1709210096, 1, "2024-02-29T12:34:56Z"},
	    {253402300799, 1, "9999-12-31T23:59:59Z"},
	    {-1, 1, "1969-12-31T23:59:59Z"},
	    {1796248800123, 1000, "2026-12-02T22:00:00.123Z"},
	    {1796248800007, 1000, "2026-12-02T22:00:00.007Z"},
	    {1796248800000, 1000, "2026-12-02T22:00:00.000Z"},
	    {-1, 1000, "1969-12-31T23:59:59.999Z"},
	    {1796248800123456, 1000000, "2026-12-02T22:00:00.123456Z"},
	    {1796248800000001, 1000000, "2026-12-02T22:00:00.000001Z"},
	    {0, 1000000, "1970-01-01T00:00:00.000000Z"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[RW_RFC3339_LEN];
		size_t n;
		memset(out, 'x', sizeof(out));
		if (cases[i].unit == 1)
			n = rw_time_rfc3339(cases[i].t, out);
		else if (cases[i].unit == 1000)
			n = rw_time_rfc3339_ms(cases[i].t, out);
		else
			n = rw_time_rfc3339_us(cases[i].t, out);
		CHECK_EQ_STR(out, cases[i].want);
		CHECK_EQ_INT(n, strlen(cases[i].want));
	}
}

static void
t_parse(void)
{
	static const struct {
		const char *s;
		int rv;
		int64_t ms;
	} cases[] = {
	    {"1970-01-01T00:00:00Z", 0, 0},
	    {"2026-12-02T22:00:00Z", 0, 1796248800000},
	    {"2026-12-02t22:00:00z", 0, 1796248800000},
	    {"2024-02-29T12:34:56Z", 0, 1709210096000},
	    {"2024-02-29T12:34:56.1Z", 0, 1709210096100},
	    {"2024-02-29T12:34:56.123456Z", 0, 1709210096123},
	    {"2024-02-29T12:34:56.999999999Z", 0, 1709210096999},
	    {"2024-02-29T14:34:56+02:00", 0, 1709210096000},
	    {"2024-02-29T10:04:56-02:30", 0, 1709210096000},
	    {"2024-02-29T12:34:56.5+00:00", 0, 1709210096500},
	    {"1969-12-31T23:59:59.5Z", 0, -500},
	    {"2024-02-29 12:34:56Z", -EINVAL, 0},
	    {"2024-13-01T00:00:00Z", -EINVAL, 0},
	    {"2024-01-32T00:00:00Z", -EINVAL, 0},
	    {"2024-01-01T24:00:00Z", -EINVAL, 0},
	    {"2024-01-01T00:00:00", -EINVAL, 0},
	    {"2024-01-01T00:00:00.Z", -EINVAL, 0},
	    {"2024-01-01T00:00:00Zjunk", -EINVAL, 0},
	    {"2024-01-01T00:00:00+02", -EINVAL, 0},
	    {"2024-01-01T00:00:00+02:0", -EINVAL, 0},
	    {"2024-1-01T00:00:00Z", -EINVAL, 0},
	    {"", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = 42, s = 42;
		int rv = rw_time_parse_rfc3339_ms(cases[i].s, strlen(cases[i].s), &ms);
		CHECK_EQ_INT(rv, cases[i].rv);
		CHECK_EQ_INT(ms, rv == 0 ? cases[i].ms : 42); /* untouched on error */
		rv = rw_time_parse_rfc3339(cases[i].s, &s);
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv == 0) /* whole seconds, toward the past */
			CHECK_EQ_INT(s, cases[i].ms >= 0 ? cases[i].ms / 1000
							 : -((-cases[i].ms + 999) / 1000));
		if (rv != cases[i].rv)
			fprintf(stderr, "  case %zu: %s\n", i, cases[i].s);
	}
	int64_t s;
	CHECK_EQ_INT(rw_time_parse_rfc3339(NULL, &s), -EINVAL);
	/* The length bounds the text: a valid prefix of a longer buffer. */
	CHECK_EQ_INT(rw_time_parse_rfc3339_ms("2026-12-02T22:00:00Zxyz", 20, &s), 0);
	CHECK_EQ_INT(s, 1796248800000);
	CHECK_EQ_INT(rw_time_parse_rfc3339_ms("2026-12-02T22:00:00Z", 19, &s), -EINVAL);
}

static void
t_round_trip(void)
{
	static const int64_t ts[] = {0,		1,	    59,		86399,
				     951782400, 1709210096, 1796248800, 4102444800};
	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		char out[RW_RFC3339_LEN];
		int64_t back = -1, ms = -1;
		CHECK(rw_time_rfc3339(ts[i], out) > 0);
		CHECK_EQ_INT(rw_time_parse_rfc3339(out, &back), 0);
		CHECK_EQ_INT(back, ts[i]);
		CHECK(rw_time_rfc3339_us(ts[i] * 1000000 + 654321, out) > 0);
		CHECK_EQ_INT(rw_time_parse_rfc3339_ms(out, strlen(out), &ms), 0);
		CHECK_EQ_INT(ms, ts[i] * 1000 + 654);
	}
}

static void
t_clocks(void)
{
	/* The wall clock agrees with time(); the monotonic one never goes back. */
	int64_t w = rw_clock_wall_ms(), us = rw_clock_wall_us();
	int64_t t = (int64_t)time(NULL);
	CHECK(w / 1000 >= t - 2 && w / 1000 <= t + 2);
	CHECK(us / 1000000 >= t - 2 && us / 1000000 <= t + 2);
	uint64_t m0 = rw_clock_mono_ms();
	for (int i = 0; i < 1000; i++) {
		uint64_t m = rw_clock_mono_ms();
		CHECK(m >= m0);
		m0 = m;
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"format", t_format}, {"parse", t_parse}, {"round_trip", t_round_trip},
	    {"clocks", t_clocks}, {NULL, NULL},
	};
	return rwt_run(cases);
}

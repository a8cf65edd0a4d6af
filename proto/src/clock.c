/*
 * clock.c - clocks and RFC 3339 times (see rw/clock.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rw/clock.h"

int64_t
rw_clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
rw_clock_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t
rw_clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Floor division, so times before 1970 keep a fraction in [0, unit). */
static int64_t
floor_div(int64_t a, int64_t unit, int64_t *rem)
{
	int64_t q = a / unit, r = a % unit;
	if (r < 0) {
		q--;
		r += unit;
	}
	*rem = r;
	return q;
}

/* frac_digits 0, 3 or 6: the fraction (frac) printed with that many digits. */
static size_t
format(int64_t unix_s, long frac, int frac_digits, char out[RW_RFC3339_LEN])
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	int w;
	if ((int64_t)t != unix_s || !gmtime_r(&t, &tm)) {
		out[0] = '\0';
		return 0;
	}
	if (frac_digits)
		w = snprintf(out, RW_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%0*ldZ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, frac_digits, frac);
	else
		w = snprintf(out, RW_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02dZ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec);
	if (w < 0 || w >= RW_RFC3339_LEN) {
		out[0] = '\0'; /* never a cut timestamp */
		return 0;
	}
	return (size_t)w;
}

size_t
rw_time_rfc3339(int64_t unix_s, char out[RW_RFC3339_LEN])
{
	return format(unix_s, 0, 0, out);
}

size_t
rw_time_now_rfc3339(char out[RW_RFC3339_LEN])
{
	return rw_time_rfc3339(rw_clock_wall_ms() / 1000, out);
}

size_t
rw_time_rfc3339_ms(int64_t unix_ms, char out[RW_RFC3339_LEN])
{
	int64_t ms, s = floor_div(unix_ms, 1000, &ms);
	return format(s, (long)ms, 3, out);
}

size_t
rw_time_rfc3339_us(int64_t unix_us, char out[RW_RFC3339_LEN])
{
	int64_t us, s = floor_div(unix_us, 1000000, &us);
	return format(s, (long)us, 6, out);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* n decimal digits at s[off], all within len. */
static int
digits(const char *s, size_t len, size_t off, int n, int *out)
{
	int v = 0;
	if (off + (size_t)n > len)
		return -1;
	for (int i = 0; i < n; i++) {
		char c = s[off + (size_t)i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return 0;
}

int
rw_time_parse_rfc3339_ms(const char *s, size_t len, int64_t *unix_ms)
{
	int Y, M, D, h, m, sec, ms = 0, oh = 0, om = 0;
	size_t p = 19;
	if (!s || len < 20 || digits(s, len, 0, 4, &Y) || s[4] != '-' || digits(s, len, 5, 2, &M) ||
	    s[7] != '-' || digits(s, len, 8, 2, &D) || (s[10] != 'T' && s[10] != 't') ||
	    digits(s, len, 11, 2, &h) || s[13] != ':' || digits(s, len, 14, 2, &m) ||
	    s[16] != ':' || digits(s, len, 17, 2, &sec))
		return -EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	if (s[p] == '.') {
		int k = 0;
		for (p++; p < len && s[p] >= '0' && s[p] <= '9'; p++, k++)
			if (k < 3)
				ms = ms * 10 + (s[p] - '0');
		if (k == 0)
			return -EINVAL;
		for (; k < 3; k++)
			ms *= 10;
	}
	if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
		p++;
	} else if (p < len && (s[p] == '+' || s[p] == '-')) {
		int sign = s[p] == '-' ? -1 : 1;
		if (digits(s, len, p + 1, 2, &oh) || p + 3 >= len || s[p + 3] != ':' ||
		    digits(s, len, p + 4, 2, &om))
			return -EINVAL;
		oh *= sign;
		om *= sign;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (p != len)
		return -EINVAL;
	*unix_ms = (days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + m * 60 + sec -
		    (oh * 3600 + om * 60)) *
		       1000 +
		   ms;
	return 0;
}

int
rw_time_parse_rfc3339(const char *s, int64_t *unix_s)
{
	int64_t ms, rem;
	if (!s || rw_time_parse_rfc3339_ms(s, strlen(s), &ms) != 0)
		return -EINVAL;
	*unix_s = floor_div(ms, 1000, &rem);
	return 0;
}

/* quantity.c - Kubernetes resource quantity parsing and canonical formatting. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quantity.h"

#define NANO 1000000000LL

struct suffix {
	const char *s;
	int base; /* 10 or 2 */
	int exp;
	enum rw_qty_fmt fmt;
};

static const struct suffix suffixes[] = {
    {"", 10, 0, RW_QTY_DECSI},	 {"n", 10, -9, RW_QTY_DECSI}, {"u", 10, -6, RW_QTY_DECSI},
    {"m", 10, -3, RW_QTY_DECSI}, {"k", 10, 3, RW_QTY_DECSI},  {"M", 10, 6, RW_QTY_DECSI},
    {"G", 10, 9, RW_QTY_DECSI},	 {"T", 10, 12, RW_QTY_DECSI}, {"P", 10, 15, RW_QTY_DECSI},
    {"E", 10, 18, RW_QTY_DECSI}, {"Ki", 2, 10, RW_QTY_BINSI}, {"Mi", 2, 20, RW_QTY_BINSI},
    {"Gi", 2, 30, RW_QTY_BINSI}, {"Ti", 2, 40, RW_QTY_BINSI}, {"Pi", 2, 50, RW_QTY_BINSI},
    {"Ei", 2, 60, RW_QTY_BINSI},
};

static bool
isdig(char c)
{
	return c >= '0' && c <= '9';
}

/* Interpret a suffix: table entries or e/E followed by a signed integer. */
static int
interpret(const char *suf, size_t n, int *base, int *exp, enum rw_qty_fmt *fmt)
{
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (strlen(suffixes[i].s) == n && memcmp(suffixes[i].s, suf, n) == 0) {
			*base = suffixes[i].base;
			*exp = suffixes[i].exp;
			*fmt = suffixes[i].fmt;
			return 0;
		}
	}
	if (n >= 2 && (suf[0] == 'e' || suf[0] == 'E')) {
		size_t i = 1;
		bool neg = false;
		long v = 0;
		if (suf[i] == '+' || suf[i] == '-')
			neg = suf[i++] == '-';
		if (i >= n)
			return -EINVAL;
		for (; i < n; i++) {
			if (!isdig(suf[i]))
				return -EINVAL;
			if (v > 100000)
				return -ERANGE;
			v = v * 10 + (suf[i] - '0');
		}
		*base = 10;
		*exp = (int)(neg ? -v : v);
		*fmt = RW_QTY_DECEXP;
		return 0;
	}
	return -EINVAL;
}

/* Append decimal digits of v to a digit string; returns the string length. */
static int
parse_int_digits(const char *d, size_t n, int64_t *out)
{
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (v > (INT64_MAX - (d[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (d[i] - '0');
	}
	*out = v;
	return 0;
}

/* Negate a non-negative (units, nano) magnitude into floor form. */
static int
apply_sign(struct rw_qty *q, bool negative)
{
	if (!negative)
		return 0;
	if (q->nano > 0) {
		q->units = -q->units - 1;
		q->nano = (int32_t)(NANO - q->nano);
	} else {
		q->units = -q->units;
	}
	return 0;
}

int
rw_qty_parse(const char *str, struct rw_qty *q)
{
	size_t end, pos = 0, nstart, nlen, dstart = 0, dlen = 0, sstart;
	bool positive = true;
	int base, exp, rv;
	enum rw_qty_fmt fmt;
	struct rw_qty r = {0, 0, RW_QTY_DECSI};

	if (!str || !q)
		return -EINVAL;
	end = strlen(str);
	if (end == 0 || end > 256)
		return -EINVAL;
	if (str[0] == '-' || str[0] == '+') {
		positive = str[0] != '-';
		pos++;
	}
	while (pos < end && str[pos] == '0')
		pos++;
	nstart = pos;
	while (pos < end && isdig(str[pos]))
		pos++;
	nlen = pos - nstart;
	if (pos < end && str[pos] == '.') {
		pos++;
		dstart = pos;
		while (pos < end && isdig(str[pos]))
			pos++;
		dlen = pos - dstart;
	}
	sstart = pos;
	while (pos < end && strchr("eEinumkKMGTP", str[pos]))
		pos++;
	if (pos < end && (str[pos] == '-' || str[pos] == '+'))
		pos++;
	while (pos < end && isdig(str[pos]))
		pos++;
	if (pos != end)
		return -EINVAL;
	rv = interpret(str + sstart, end - sstart, &base, &exp, &fmt);
	if (rv)
		return rv;

	if (base == 10) {
		/* digits = num + denom; the decimal point sits after nlen + exp digits. */
		char digits[600];
		size_t nd = nlen + dlen;
		long point = (long)nlen + exp;
		int64_t units = 0, nano = 0;
		bool tail = false;
		if (nd >= sizeof(digits))
			return -ERANGE;
		memcpy(digits, str + nstart, nlen);
		memcpy(digits + nlen, str + dstart, dlen);
		for (long i = 0; i < point; i++) {
			int dig = i < (long)nd ? digits[i] - '0' : 0;
			if (units > (INT64_MAX - dig) / 10)
				return -ERANGE;
			units = units * 10 + dig;
		}
		for (long i = point; i < point + 9; i++) {
			int dig = (i >= 0 && i < (long)nd) ? digits[i] - '0' : 0;
			nano = nano * 10 + dig;
		}
		for (long i = point + 9 > 0 ? point + 9 : 0; i < (long)nd; i++)
			if (digits[i] != '0')
				tail = true;
		if (tail && ++nano == NANO) {
			nano = 0;
			if (units == INT64_MAX)
				return -ERANGE;
			units++;
		}
		r.units = units;
		r.nano = (int32_t)nano;
	} else {
		/* Binary: value = (num + 0.denom) * 2^exp, exactly, rounded up to nano. */
		int64_t ip;
		unsigned __int128 f = 0, pow10 = 1, scaled, rem;
		bool tail = false;
		rv = parse_int_digits(str + nstart, nlen, &ip);
		if (rv)
			return rv;
		if (ip > (INT64_MAX >> exp))
			ip = -1; /* over the cap */
		for (size_t i = 0; i < dlen; i++) {
			if (i < 18) {
				f = f * 10 + (unsigned)(str[dstart + i] - '0');
				pow10 *= 10;
			} else if (str[dstart + i] != '0') {
				tail = true;
			}
		}
		if (ip < 0) {
			r.units = INT64_MAX;
			r.nano = 0;
		} else {
			scaled = f << exp;
			unsigned __int128 whole = (unsigned __int128)(uint64_t)ip << exp;
			whole += scaled / pow10;
			rem = scaled % pow10;
			unsigned __int128 n9 = rem * NANO;
			int64_t nano = (int64_t)(n9 / pow10);
			if (n9 % pow10 != 0 || tail)
				nano++;
			if (nano >= NANO) {
				nano -= NANO;
				whole++;
			}
			if (whole > (unsigned __int128)INT64_MAX) {
				r.units = INT64_MAX; /* Go caps binary quantities at 2^63-1 */
				nano = 0;
			} else {
				r.units = (int64_t)whole;
			}
			r.nano = (int32_t)nano;
		}
	}
	/* Binary values strictly between 0 and 1 are shown as decimal. */
	if (fmt == RW_QTY_BINSI && r.units == 0 && r.nano > 0)
		fmt = RW_QTY_DECSI;
	r.fmt = fmt;
	apply_sign(&r, !positive && (r.units != 0 || r.nano != 0));
	*q = r;
	return 0;
}

bool
rw_qty_zero(const struct rw_qty *q)
{
	return q->units == 0 && q->nano == 0;
}

int64_t
rw_qty_value(const struct rw_qty *q)
{
	if (q->nano > 0 && q->units < INT64_MAX)
		return q->units + 1;
	return q->units;
}

double
rw_qty_float(const struct rw_qty *q)
{
	return (double)q->units + (double)q->nano / (double)NANO;
}

int
rw_qty_add(struct rw_qty *a, const struct rw_qty *b)
{
	int64_t u, n = (int64_t)a->nano + b->nano;
	enum rw_qty_fmt fmt = rw_qty_zero(a) ? b->fmt : a->fmt;
	if (__builtin_add_overflow(a->units, b->units, &u))
		return -ERANGE;
	if (n >= NANO) {
		n -= NANO;
		if (__builtin_add_overflow(u, 1, &u))
			return -ERANGE;
	}
	a->units = u;
	a->nano = (int32_t)n;
	a->fmt = fmt;
	return 0;
}

int
rw_qty_mul(struct rw_qty *a, int64_t k)
{
	int64_t u, n, carry;
	if (k < 0 || k > INT64_MAX / NANO)
		return -ERANGE;
	n = (int64_t)a->nano * k;
	carry = n / NANO;
	if (__builtin_mul_overflow(a->units, k, &u) || __builtin_add_overflow(u, carry, &u))
		return -ERANGE;
	a->units = u;
	a->nano = (int32_t)(n % NANO);
	return 0;
}

/* Exact decimal digits of |value| * 1e9 (no leading zeros; "0" for zero). */
static void
nano_digits(const struct rw_qty *q, char *out, bool *neg)
{
	unsigned __int128 v;
	char tmp[64];
	int n = 0;
	*neg = q->units < 0;
	if (*neg) {
		/* |value| = -(units) - nano/1e9 */
		unsigned __int128 mag = (unsigned __int128)(-(q->units + 1)) + 1;
		v = mag * NANO - (unsigned __int128)q->nano;
	} else {
		v = (unsigned __int128)q->units * NANO + (unsigned __int128)q->nano;
	}
	if (v == 0) {
		strcpy(out, "0");
		return;
	}
	while (v > 0) {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	}
	for (int i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
}

static const char *
dec_suffix(int exp)
{
	switch (exp) {
	case -9:
		return "n";
	case -6:
		return "u";
	case -3:
		return "m";
	case 0:
		return "";
	case 3:
		return "k";
	case 6:
		return "M";
	case 9:
		return "G";
	case 12:
		return "T";
	case 15:
		return "P";
	case 18:
		return "E";
	}
	return NULL;
}

int
rw_qty_format(const struct rw_qty *q, char *out, size_t outlen)
{
	char digits[64], suf[16];
	bool neg;
	int exp, n;
	enum rw_qty_fmt fmt = q->fmt;

	if (rw_qty_zero(q))
		return snprintf(out, outlen, "0") >= (int)outlen ? -EMSGSIZE : 1;
	if (fmt == RW_QTY_BINSI) {
		bool above = q->units > -1024 || (q->units == -1024 && q->nano > 0);
		if (above && q->units < 1024)
			fmt = RW_QTY_DECSI; /* -1024 < value < 1024 */
		else if (q->nano != 0)
			fmt = RW_QTY_DECSI; /* not an integer: would lose precision */
	}
	if (fmt == RW_QTY_BINSI) {
		static const char *const bin[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
		int64_t v = q->units;
		int k = 0;
		while (k < 6 && v % 1024 == 0) {
			v /= 1024;
			k++;
		}
		n = snprintf(out, outlen, "%lld%s", (long long)v, bin[k]);
		return n >= (int)outlen ? -EMSGSIZE : n;
	}
	/* Decimal: value = digits * 10^-9; move trailing zeros into the exponent. */
	nano_digits(q, digits, &neg);
	exp = -9;
	n = (int)strlen(digits);
	while (n > 1 && digits[n - 1] == '0') {
		digits[--n] = '\0';
		exp++;
	}
	while (((exp % 3) + 3) % 3 != 0) {
		digits[n++] = '0';
		digits[n] = '\0';
		exp--;
	}
	if (fmt == RW_QTY_DECSI) {
		const char *s = dec_suffix(exp);
		snprintf(suf, sizeof(suf), "%s", s ? s : "");
	} else if (exp == 0) {
		suf[0] = '\0';
	} else {
		snprintf(suf, sizeof(suf), "e%d", exp);
	}
	n = snprintf(out, outlen, "%s%s%s", neg ? "-" : "", digits, suf);
	return n >= (int)outlen ? -EMSGSIZE : n;
}

int
rw_qty_fmt_float(double v, char *out, size_t outlen)
{
	char buf[64], mant[32];
	int prec, exp10, nd = 0, n;
	bool neg;
	char *e;

	if (!isfinite(v))
		return -EINVAL;
	if (v == 0) {
		n = snprintf(out, outlen, "0");
		return n >= (int)outlen ? -EMSGSIZE : n;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	/* buf = [-]d.ddde[+-]xx */
	neg = buf[0] == '-';
	for (char *p = buf + (neg ? 1 : 0); *p && *p != 'e'; p++)
		if (*p != '.')
			mant[nd++] = *p;
	mant[nd] = '\0';
	e = strchr(buf, 'e');
	exp10 = e ? atoi(e + 1) : 0;
	while (nd > 1 && mant[nd - 1] == '0')
		mant[--nd] = '\0';
	double a = fabs(v);
	if (a < 1e-6 || a >= 1e21) {
		/* Go: strconv 'e' format, shortest digits. */
		char ex[16];
		if (exp10 < 0)
			snprintf(ex, sizeof(ex), "e-%d", -exp10); /* Go trims e-09 to e-9 */
		else
			snprintf(ex, sizeof(ex), "e+%02d", exp10);
		if (nd > 1)
			n = snprintf(out, outlen, "%s%c.%s%s", neg ? "-" : "", mant[0], mant + 1,
				     ex);
		else
			n = snprintf(out, outlen, "%s%c%s", neg ? "-" : "", mant[0], ex);
		return n >= (int)outlen ? -EMSGSIZE : n;
	}
	/* Plain notation. */
	char res[80];
	int r = 0;
	if (neg)
		res[r++] = '-';
	if (exp10 < 0) {
		res[r++] = '0';
		res[r++] = '.';
		for (int i = 0; i < -exp10 - 1; i++)
			res[r++] = '0';
		for (int i = 0; i < nd; i++)
			res[r++] = mant[i];
	} else {
		for (int i = 0; i <= exp10; i++)
			res[r++] = i < nd ? mant[i] : '0';
		if (nd > exp10 + 1) {
			res[r++] = '.';
			for (int i = exp10 + 1; i < nd; i++)
				res[r++] = mant[i];
		}
	}
	res[r] = '\0';
	n = snprintf(out, outlen, "%s", res);
	return n >= (int)outlen ? -EMSGSIZE : n;
}

/* test_quantity.c - Kubernetes quantity parsing, canonical text, arithmetic, Go floats. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "quantity.h"
#include "rwtest.h"

struct qcase {
	const char *in;
	int rv;
	int64_t value; /* Quantity.Value() (ceil) */
	const char *canon;
};

static void
t_parse(void)
{
	static const struct qcase cases[] = {
	    {"500m", 0, 1, "500m"},
	    {"2Gi", 0, 2147483648LL, "2Gi"},
	    {"1e3", 0, 1000, "1e3"},
	    {"1E3", 0, 1000, "1e3"},
	    {"1.5Gi", 0, 1610612736LL, "1536Mi"},
	    {"1000m", 0, 1, "1"},
	    {"0.5", 0, 1, "500m"},
	    {"1024Mi", 0, 1073741824LL, "1Gi"},
	    {"100k", 0, 100000, "100k"},
	    {"12345", 0, 12345, "12345"},
	    {"1M", 0, 1000000, "1M"},
	    {"1E", 0, 1000000000000000000LL, "1E"},
	    {"0", 0, 0, "0"},
	    {"0Gi", 0, 0, "0"},
	    {"-1", 0, -1, "-1"},
	    {"+5", 0, 5, "5"},
	    {"05", 0, 5, "5"},
	    {"1Ki", 0, 1024, "1Ki"},
	    {"512", 0, 512, "512"},
	    {"0.5Ki", 0, 512, "512"},
	    {"1000Ki", 0, 1024000, "1000Ki"},
	    {"1n", 0, 1, "1n"},
	    {"1.5n", 0, 1, "2n"},
	    {"0.1m", 0, 1, "100u"},
	    {"1.", 0, 1, "1"},
	    {".5", 0, 1, "500m"},
	    {"1Ei", 0, 1152921504606846976LL, "1Ei"},
	    {"8Ei", 0, INT64_MAX, "9223372036854775807"},
	    {"1.000000001", 0, 2, "1000000001n"},
	    {"12e-3", 0, 1, "12e-3"},
	    {"1500e-3", 0, 2, "1500e-3"},
	    {"3.5", 0, 4, "3500m"},
	    {"", -EINVAL, 0, NULL},
	    {"abc", -EINVAL, 0, NULL},
	    {"1.2.3", -EINVAL, 0, NULL},
	    {"1Zi", -EINVAL, 0, NULL},
	    {"1e", -EINVAL, 0, NULL},
	    {"--1", -EINVAL, 0, NULL},
	    {"1 ", -EINVAL, 0, NULL},
	    {" 1", -EINVAL, 0, NULL},
	    {"1e999999", -ERANGE, 0, NULL},
	    {"99999999999999999999", -ERANGE, 0, NULL},
	    {"1mm", -EINVAL, 0, NULL},
	    {"1Gb", -EINVAL, 0, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_qty q;
		char out[64];
		int rv = rw_qty_parse(cases[i].in, &q);
		if (rv != cases[i].rv)
			fprintf(stderr, "  case \"%s\": rv %d\n", cases[i].in, rv);
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv || cases[i].rv)
			continue;
		if (rw_qty_value(&q) != cases[i].value)
			fprintf(stderr, "  case \"%s\"\n", cases[i].in);
		CHECK_EQ_INT(rw_qty_value(&q), cases[i].value);
		CHECK(rw_qty_format(&q, out, sizeof(out)) > 0);
		if (strcmp(out, cases[i].canon) != 0)
			fprintf(stderr, "  case \"%s\"\n", cases[i].in);
		CHECK_EQ_STR(out, cases[i].canon);
		/* The canonical form parses back to the same value. */
		struct rw_qty q2;
		CHECK_EQ_INT(rw_qty_parse(out, &q2), 0);
		CHECK_EQ_INT(q2.units, q.units);
		CHECK_EQ_INT(q2.nano, q.nano);
	}
}

static void
t_arith(void)
{
	struct rw_qty a, b;
	char out[64];
	CHECK_EQ_INT(rw_qty_parse("1", &a), 0);
	CHECK_EQ_INT(rw_qty_parse("500m", &b), 0);
	CHECK_EQ_INT(rw_qty_add(&a, &b), 0);
	rw_qty_format(&a, out, sizeof(out));
	CHECK_EQ_STR(out, "1500m");
	CHECK_EQ_INT(rw_qty_mul(&a, 3), 0);
	rw_qty_format(&a, out, sizeof(out));
	CHECK_EQ_STR(out, "4500m");
	CHECK_EQ_INT(rw_qty_parse("2Gi", &a), 0);
	CHECK_EQ_INT(rw_qty_parse("1Gi", &b), 0);
	rw_qty_add(&a, &b);
	rw_qty_format(&a, out, sizeof(out));
	CHECK_EQ_STR(out, "3Gi");
	/* The first operand's format wins (Quantity.Add); a zero takes the other's. */
	CHECK_EQ_INT(rw_qty_parse("1G", &a), 0);
	rw_qty_add(&a, &b);
	rw_qty_format(&a, out, sizeof(out));
	CHECK_EQ_STR(out, "2073741824");
	struct rw_qty z = {0, 0, RW_QTY_DECEXP};
	rw_qty_add(&z, &b);
	rw_qty_format(&z, out, sizeof(out));
	CHECK_EQ_STR(out, "1Gi");
	CHECK_EQ_INT(rw_qty_parse("8Ei", &a), 0);
	CHECK_EQ_INT(rw_qty_add(&a, &b), -ERANGE);
	CHECK_EQ_INT(rw_qty_mul(&a, 2), -ERANGE);
	CHECK(rw_qty_float(&b) == 1073741824.0);
}

static void
t_float(void)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {4, "4"},
	    {0.5, "0.5"},
	    {1e21, "1e+21"},
	    {1e-7, "1e-7"},
	    {0.1, "0.1"},
	    {123456789, "123456789"},
	    {1.5e20, "150000000000000000000"},
	    {-2.25, "-2.25"},
	    {0.000001, "0.000001"},
	    {1.25e-8, "1.25e-8"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		CHECK(rw_qty_fmt_float(cases[i].v, out, sizeof(out)) > 0);
		CHECK_EQ_STR(out, cases[i].want);
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"parse and canonical text", t_parse},
	    {"add, multiply, formats", t_arith},
	    {"Go json floats", t_float},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

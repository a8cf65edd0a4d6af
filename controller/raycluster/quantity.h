/*
 * quantity.h - Kubernetes resource quantities ("500m", "2Gi", "1e3").
 *
 * Parsing follows k8s.io/apimachinery resource.ParseQuantity: optional sign,
 * digits with an optional fraction, then a suffix (n u m "" k M G T P E, Ki Mi
 * Gi Ti Pi Ei, or e/E with a signed integer exponent); values are rounded up
 * (away from zero) to nano precision. Stricter than Go in one respect: values
 * whose integer part does not fit in int64 are refused with -ERANGE (binary
 * quantities are capped at 2^63-1 as Go caps them).
 *
 * Formatting reproduces Quantity.String(): the canonical form in the
 * quantity's format (decimal SI, binary SI, or decimal exponent), e.g.
 * "1536Mi", "1500m", "2", "1e3".
 */
#ifndef RW_QUANTITY_H
#define RW_QUANTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rw_qty_fmt { RW_QTY_DECEXP = 0, RW_QTY_BINSI, RW_QTY_DECSI };

struct rw_qty {
	int64_t units; /* floor of the value */
	int32_t nano;  /* 0 .. 999999999, added to units */
	enum rw_qty_fmt fmt;
};

/* Parse s. Returns 0, -EINVAL (syntax or unknown suffix), -ERANGE. */
int rw_qty_parse(const char *s, struct rw_qty *q);

/* Is the value zero? */
bool rw_qty_zero(const struct rw_qty *q);

/* Quantity.Value(): the value rounded up to an integer. */
int64_t rw_qty_value(const struct rw_qty *q);

/* Quantity.AsApproximateFloat64(). */
double rw_qty_float(const struct rw_qty *q);

/*
 * a += b with Quantity.Add's format rule (a keeps its format unless it is
 * zero). Returns 0 or -ERANGE (a unchanged).
 */
int rw_qty_add(struct rw_qty *a, const struct rw_qty *b);

/* a *= k (k >= 0). Returns 0 or -ERANGE (a unchanged). */
int rw_qty_mul(struct rw_qty *a, int64_t k);

/* Canonical text (Quantity.String()). Returns the length, or -EMSGSIZE. */
int rw_qty_format(const struct rw_qty *q, char *out, size_t outlen);

/*
 * Format a double the way Go's encoding/json does (shortest round-trip
 * digits; plain notation for 1e-6 <= |v| < 1e21). Returns the length or
 * -EMSGSIZE; non-finite values are -EINVAL.
 */
int rw_qty_fmt_float(double v, char *out, size_t outlen);

#endif

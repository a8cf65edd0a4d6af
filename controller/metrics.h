/*
 * metrics.h - a Prometheus registry: counters, gauges and histograms with
 * labels, rendered in the text exposition format (version 0.0.4).
 *
 * Families are registered once; series (one per set of label values) are
 * created on first use. The registry holds at most max_series series in all:
 * past that, new series are refused (counted in rw_met_dropped() and in the
 * registry's own raywarden_metrics_series_dropped_total), existing ones keep
 * working. Every function accepts a NULL family and does nothing, so modules
 * run without a registry.
 */
#ifndef RW_METRICS_H
#define RW_METRICS_H

#include <stddef.h>

#include "rw/buf.h"

struct rw_met;
struct rw_met_family;

#define RW_MET_MAX_LABELS 8
#define RW_MET_MAX_BUCKETS 48
#define RW_MET_MAX_COLLECTORS 16

/* Create a registry holding at most max_series series (0 = 10000). */
int rw_met_new(size_t max_series, struct rw_met **out);

/* Free the registry and every family. NULL-safe. */
void rw_met_free(struct rw_met *m);

/*
 * Register a family. labels is a NULL-terminated list of label names (or
 * NULL for none). Registering a name twice returns the existing family when
 * type and labels match, NULL otherwise. NULL also for an invalid name.
 */
struct rw_met_family *rw_met_counter(struct rw_met *m, const char *name, const char *help,
				     const char *const *labels);
struct rw_met_family *rw_met_gauge(struct rw_met *m, const char *name, const char *help,
				   const char *const *labels);
/* bounds: ascending upper bounds (+Inf is implied), at most RW_MET_MAX_BUCKETS. */
struct rw_met_family *rw_met_histogram(struct rw_met *m, const char *name, const char *help,
				       const char *const *labels, const double *bounds,
				       int nbounds);

/*
 * Series operations. values holds one value per label name of the family
 * (NULL when it has none). Counters refuse negative increments; rw_met_set
 * sets gauges, and counters a collector copies from a monotonic source.
 */
void rw_met_add(struct rw_met_family *f, const char *const *values, double v);
void rw_met_set(struct rw_met_family *f, const char *const *values, double v);
void rw_met_observe(struct rw_met_family *f, const char *const *values, double v);

/* Current value of a counter/gauge series (histograms: the count), or -1. */
double rw_met_value(struct rw_met_family *f, const char *const *values);

/* Remove one series (e.g. of a deleted object). Returns 0 or -ENOENT. */
int rw_met_remove(struct rw_met_family *f, const char *const *values);

/*
 * Remove every series whose labels names[i] equal values[i] (names
 * NULL-terminated), as client_golang's DeletePartialMatch. Returns how many.
 */
int rw_met_remove_matching(struct rw_met_family *f, const char *const *names,
			   const char *const *values);

/* Remove every series of the family. */
void rw_met_clear(struct rw_met_family *f);

/*
 * Collectors: functions that refresh families computed from state (objects in
 * a cache, /proc) right before a scrape renders them. rw_met_collect runs them
 * in registration order. -ENOSPC past RW_MET_MAX_COLLECTORS.
 */
typedef void (*rw_met_collect_fn)(void *ud);
int rw_met_add_collector(struct rw_met *m, rw_met_collect_fn fn, void *ud);
void rw_met_remove_collector(struct rw_met *m, rw_met_collect_fn fn, void *ud);
void rw_met_collect(struct rw_met *m);

/* Series refused because the registry was full. */
unsigned long rw_met_dropped(const struct rw_met *m);

/*
 * Append every family in registration order to out: HELP and TYPE always (a
 * scraper sees every family the process has, with its type, before its first
 * series), a label-less family's one sample even when never set.
 * 0, -EMSGSIZE or -ENOMEM.
 */
int rw_met_render(const struct rw_met *m, struct rw_buf *out);

/* Default latency buckets in seconds (0.001 .. 60). */
extern const double rw_met_latency_buckets[];
extern const int rw_met_latency_nbuckets;

#endif

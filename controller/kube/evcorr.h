/*
 * evcorr.h - the Event recorder's decisions, without I/O: client-go's
 * EventCorrelator (tools/record/events_cache.go) for events.k8s.io/v1.
 *
 * 1. Aggregator: occurrences with the same object, type, reason and action
 *    but different notes are "similar". From the agg_max-th distinct note
 *    within agg_window_ms of the previous similar one (10 in 10 minutes, as
 *    client-go), they are no longer written one Event each: they count on one
 *    aggregate Event whose note is "(combined from similar events): <note>".
 *    events.k8s.io/v1 makes note immutable, so the aggregate keeps the note
 *    it was created with and its series count grows.
 * 2. Spam filter: a token bucket per object and type (client-go's spam key:
 *    burst 25, one token per 5 minutes). An occurrence without a token is
 *    dropped and not counted.
 * 3. Logger: an occurrence whose Event exists (same key, series started
 *    within series_window_ms) increments that Event's count instead of
 *    creating a new one.
 *
 * Each of the three tables is an LRU of at most max_entries keys (client-go:
 * 4096), so memory is bounded whatever the notes. The caller attaches its own
 * state (the write in flight) to a logger record; free_ud releases it when the
 * record is evicted, replaced or forgotten.
 */
#ifndef RW_EVCORR_H
#define RW_EVCORR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RW_EVC_NOTE_MAX 1024 /* the API's limit on note, terminator included here */
#define RW_EVC_COMBINED "(combined from similar events): "

struct rw_evc_opts {
	size_t max_entries;	   /* per table; default 4096 */
	int burst;		   /* default 25 */
	double refill_per_s;	   /* default 1/300 */
	unsigned agg_max;	   /* distinct notes before aggregating; default 10 */
	uint64_t agg_window_ms;	   /* default 600000 */
	uint64_t series_window_ms; /* default 360000 */
};

/* The logger's record of one Event object. */
struct rw_evc_obs {
	int count;	   /* occurrences counted on the Event */
	uint64_t first_ms; /* the series' start */
	uint64_t last_ms;
	void *ud; /* the caller's state, released by free_ud */
};

struct rw_evc_res {
	bool drop;		    /* spam filter: write nothing */
	bool fresh;		    /* obs is a new record (a new Event) */
	bool combined;		    /* the occurrence counts on an aggregate Event */
	struct rw_evc_obs *obs;	    /* when !drop; count already includes this one */
	char note[RW_EVC_NOTE_MAX]; /* the note a new Event gets */
};

struct rw_evc;

int rw_evc_new(const struct rw_evc_opts *o, void (*free_ud)(void *ud), struct rw_evc **out);
void rw_evc_free(struct rw_evc *c); /* NULL-safe; free_ud on every record */

/*
 * Decide one occurrence. object identifies the regarding object (any string
 * unique per object, e.g. apiVersion/kind/namespace/name/uid). Returns 0 or
 * -ENOMEM (nothing changed then).
 */
int rw_evc_correlate(struct rw_evc *c, const char *object, const char *type, const char *reason,
		     const char *action, const char *note, uint64_t now_ms, struct rw_evc_res *res);

/* Undo the count of the last rw_evc_correlate (its write could not start). */
void rw_evc_uncount(struct rw_evc *c, const struct rw_evc_res *res);

/* Entries in the aggregator, spam filter and logger tables (tests). */
void rw_evc_sizes(const struct rw_evc *c, size_t *agg, size_t *spam, size_t *log);

#endif

/*
 * events.h - an events.k8s.io/v1 Event recorder.
 *
 * Each Event names the reporting controller (reportingController
 * "raywarden.io/raywarden-controller" by default) and instance, an action, a
 * reason, a note and the regarding object. What each occurrence becomes is
 * decided by evcorr.h (client-go's EventCorrelator): the same regarding
 * object + type + reason + action + note within the series window (6
 * minutes) patches the existing Event's series (count, lastObservedTime)
 * instead of creating a new one, and while a write for it is in flight
 * further repeats are folded into the next patch; similar occurrences with
 * different notes count on one "(combined from similar events)" Event from
 * the 10th distinct note in 10 minutes; a token bucket per object and type
 * (burst 25, one token per 5 minutes) drops floods. Every table is an LRU.
 *
 * Events are best effort: their writes go to the API client's lowest class
 * (kube.h), served only when no object read or write waits, and each flows
 * with its regarding object ("namespace/name"). Under pressure the recorder
 * aggregates and drops instead of queueing without bound: at most
 * max_pending writes are queued or on the wire, a repeat of an Event whose
 * write is pending is folded into it, and anything else beyond the bound is
 * dropped and counted (raywarden_events_total{result="dropped"}).
 */
#ifndef RW_EVENTS_H
#define RW_EVENTS_H

#include <stdint.h>

#include "kube.h"

struct rw_ev;

struct rw_ev_ref {
	const char *api_version; /* "ray.io/v1", "v1" */
	const char *kind;	 /* "RayCluster", "Pod" */
	const char *ns;
	const char *name;
	const char *uid; /* or NULL */
};

struct rw_ev_opts {
	const char *controller;	   /* reportingController */
	const char *instance;	   /* reportingInstance (e.g. the lease identity / hostname) */
	int burst;		   /* per object and type; default 25 */
	double refill_per_s;	   /* default 1/300 */
	uint64_t series_window_ms; /* default 360000 */
	size_t max_tracked;	   /* entries of each evcorr table; default 4096 */
	size_t max_pending;	   /* writes queued or in flight; default 1000 */
};

int rw_ev_new(struct rw_kube *k, const struct rw_ev_opts *opts, struct rw_ev **out);

/* Free (writes in flight are cancelled). NULL-safe. */
void rw_ev_free(struct rw_ev *ev);

/*
 * Record an Event. warning selects type Warning (else Normal). Returns 0 when
 * written or aggregated, -EAGAIN when the object's rate limit or the pending
 * bound dropped it, -EINVAL / -ENOMEM.
 */
int rw_ev_emit(struct rw_ev *ev, const struct rw_ev_ref *regarding, int warning, const char *reason,
	       const char *action, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * Also hand every Event that is written or aggregated to fn (the status
 * page's ring of recent Events), after its note is formatted. fn NULL stops.
 */
typedef void (*rw_ev_tap_fn)(const struct rw_ev_ref *regarding, int warning, const char *reason,
			     const char *note, void *ud);
void rw_ev_set_tap(struct rw_ev *ev, rw_ev_tap_fn fn, void *ud);

/*
 * Counters for tests: Events created, series patches sent, events dropped
 * (rate limit, pressure, or refused because their namespace is being
 * deleted), writes queued or in flight now.
 */
unsigned long rw_ev_created(const struct rw_ev *ev);
unsigned long rw_ev_patched(const struct rw_ev *ev);
unsigned long rw_ev_dropped(const struct rw_ev *ev);
size_t rw_ev_pending(const struct rw_ev *ev);

#endif

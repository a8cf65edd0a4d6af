/*
 * workqueue.h - the reconcile queue, with controller-runtime's semantics:
 *
 * - keys are deduplicated: a key added many times before it runs runs once;
 * - a key is never reconciled twice at the same time: added while running,
 *   it is marked dirty and queued again when the running reconcile finishes;
 * - many different keys are in flight at once (up to max_inflight), each
 *   reconcile completing asynchronously through rw_wq_done();
 * - failures back off per key exponentially (base_ms * 2^failures, capped at
 *   max_ms; 5 ms .. 1000 s by default) until a success resets the key;
 * - rw_wq_add_after() queues a key later (uv timers; the earliest wins);
 * - rw_wq_add_first() queues a key in the first lane, which is served before
 *   the rest (FIFO within each lane): a newly created object is reconciled
 *   ahead of the keys a batch keeps queued, as controller-runtime's priority
 *   queue serves new events before the initial list. The first lane has
 *   RW_WQ_GROUPS groups served in turn, so new objects of one source (the
 *   thousand RayClusters a RayJob batch creates) do not queue those of
 *   another (a RayCluster a person creates meanwhile). A key already queued
 *   moves up; one running is queued first again when it finishes. First-lane
 *   keys may also take up to max_inflight / 4 (at least 1) slots beyond
 *   max_inflight, each group at most a quarter of them (at least 1): when
 *   every slot holds a reconcile that waits on the rate-limited API, a new
 *   object still starts at once.
 *
 * Reconciles are started from a zero-delay timer, never from inside add.
 * While the queue is paused (a standby without leadership) keys are
 * collected but nothing runs.
 */
#ifndef RW_WORKQUEUE_H
#define RW_WORKQUEUE_H

#include <stdint.h>

#include <uv.h>

#include "metrics.h"

struct rw_wq;

/* Start reconciling key; call rw_wq_done(q, key, ...) exactly once, now or later. */
typedef void (*rw_wq_fn)(struct rw_wq *q, const char *key, void *ud);

struct rw_wq_opts {
	const char *name;	  /* metrics label, e.g. "raycluster" */
	int max_inflight;	  /* concurrent reconciles; default 64 */
	uint64_t base_backoff_ms; /* default 5 */
	uint64_t max_backoff_ms;  /* default 1000000 (1000 s) */
	int paused;		  /* start paused (see rw_wq_resume) */
	struct rw_met *met;	  /* may be NULL */
};

int rw_wq_new(uv_loop_t *loop, const struct rw_wq_opts *opts, rw_wq_fn fn, void *ud,
	      struct rw_wq **out);

/*
 * Stop: nothing new starts, timers stop, keys are dropped; closed(ud) runs
 * once the timers are closed. Cancel the work of reconciles in flight first:
 * rw_wq_done() must not be called after rw_wq_free(). NULL-safe.
 */
void rw_wq_free(struct rw_wq *q, void (*closed)(void *ud), void *ud);

/* Queue key now (deduplicated). */
void rw_wq_add(struct rw_wq *q, const char *key);

/* First-lane groups (a larger group number counts as the last group). */
#define RW_WQ_GROUPS 4

/* Queue key now in group `group` of the first lane (see above). */
void rw_wq_add_first(struct rw_wq *q, const char *key, unsigned group);

/* Queue key after delay_ms (0 = now). */
void rw_wq_add_after(struct rw_wq *q, const char *key, uint64_t delay_ms);

/* Queue key after its back-off delay, counting one more failure. */
void rw_wq_add_rate_limited(struct rw_wq *q, const char *key);

/* Reset the failure count of key. */
void rw_wq_forget(struct rw_wq *q, const char *key);

/*
 * A reconcile finished. result < 0: failed, re-queued with back-off.
 * result >= 0: success, back-off reset; requeue_after_ms > 0 queues it again
 * after that delay.
 */
void rw_wq_done(struct rw_wq *q, const char *key, int result, uint64_t requeue_after_ms);

/* Pause / resume starting reconciles (keys keep being collected). */
void rw_wq_pause(struct rw_wq *q);
void rw_wq_resume(struct rw_wq *q);

int rw_wq_len(const struct rw_wq *q);	   /* keys waiting to run */
int rw_wq_inflight(const struct rw_wq *q); /* reconciles running */
int rw_wq_failures(const struct rw_wq *q, const char *key);

/* The back-off of the n-th consecutive failure (n >= 1): base * 2^(n-1), capped. */
uint64_t rw_wq_backoff_ms(unsigned n, uint64_t base_ms, uint64_t max_ms);

#endif

/*
 * bounded.h - run a blocking call that may never return, with a deadline.
 *
 * For a library call at shutdown that can deadlock inside the library (nng 1.5.2's
 * nng_close): the process waits a bounded time and then goes on exiting without it.
 */
#ifndef RW_BOUNDED_H
#define RW_BOUNDED_H

/*
 * Call fn(arg) on a thread of its own and wait at most ms for it to return. Returns 0 when it
 * returned in time, -ETIMEDOUT when it did not (the thread is left running; it cleans up after
 * itself should fn return later, so arg must stay valid until then: give it memory fn owns),
 * or -errno when no thread could be started (fn was not called).
 */
int rw_run_bounded(void (*fn)(void *arg), void *arg, long ms);

#endif

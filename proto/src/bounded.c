/*
 * bounded.c - rw_run_bounded: a blocking call with a deadline (see bounded.h).
 *
 * The state is shared by the caller and the thread; whichever of them is last to need it
 * frees it: the caller after joining a thread that finished, or the thread itself when the
 * caller gave up on it first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "rw/bounded.h"

struct bounded {
	void (*fn)(void *);
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, abandoned;
};

static void
bounded_free(struct bounded *b)
{
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

static void *
bounded_main(void *p)
{
	struct bounded *b = p;
	b->fn(b->arg);
	pthread_mutex_lock(&b->mu);
	b->done = 1;
	int abandoned = b->abandoned;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (abandoned)
		bounded_free(b);
	return NULL;
}

int
rw_run_bounded(void (*fn)(void *arg), void *arg, long ms)
{
	struct bounded *b = calloc(1, sizeof(*b));
	pthread_condattr_t ca;
	pthread_t t;
	struct timespec end;
	int rv;

	if (!b)
		return -ENOMEM;
	b->fn = fn;
	b->arg = arg;
	pthread_mutex_init(&b->mu, NULL);
	/* The deadline on the monotonic clock: a wall-clock step must not stretch or cut it. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((rv = pthread_create(&t, NULL, bounded_main, b)) != 0) {
		bounded_free(b);
		return -rv;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->mu);
	while (!b->done && pthread_cond_timedwait(&b->cv, &b->mu, &end) != ETIMEDOUT)
		;
	int done = b->done;
	if (!done)
		b->abandoned = 1;
	pthread_mutex_unlock(&b->mu);
	if (!done) {
		pthread_detach(t);
		return -ETIMEDOUT;
	}
	pthread_join(t, NULL);
	bounded_free(b);
	return 0;
}

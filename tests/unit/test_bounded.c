/* test_bounded.c - rw_run_bounded: a blocking call with a deadline (rw/bounded.h). */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "rw/bounded.h"
#include "rw/clock.h"
#include "rwtest.h"

static atomic_int calls;

static void
quick(void *arg)
{
	atomic_fetch_add(&calls, 1);
	*(int *)arg = 42;
}

/* Blocks until a byte arrives on the pipe it owns, then closes and frees it. */
struct stuck {
	int fd[2];
	atomic_int *finished;
};

static void
stuck_read(void *arg)
{
	struct stuck *s = arg;
	char c;
	atomic_fetch_add(&calls, 1);
	while (read(s->fd[0], &c, 1) < 0 && errno == EINTR)
		;
	close(s->fd[0]);
	atomic_store(s->finished, 1);
	free(s);
}

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Threads of this process (/proc/self/task entries). */
static int
threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
t_returns_in_time(void)
{
	int out = 0;
	atomic_store(&calls, 0);
	CHECK_EQ_INT(rw_run_bounded(quick, &out, 5000), 0);
	CHECK_EQ_INT(out, 42); /* joined: its writes are seen */
	CHECK_EQ_INT(atomic_load(&calls), 1);
}

static void
t_gives_up_then_thread_cleans_up(void)
{
	static atomic_int finished;
	struct stuck *s = malloc(sizeof(*s));
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_EQ_INT(pipe(s->fd), 0);
	int wfd = s->fd[1];
	s->finished = &finished;
	atomic_store(&calls, 0);
	uint64_t t0 = rw_clock_mono_ms();
	CHECK_EQ_INT(rw_run_bounded(stuck_read, s, 200), -ETIMEDOUT);
	uint64_t took = rw_clock_mono_ms() - t0;
	CHECK(took >= 200);  /* not before the deadline */
	CHECK(took < 20000); /* and not until the call returns */
	CHECK_EQ_INT(atomic_load(&finished), 0);
	/* The call returns later: the left thread frees its state (ASan would see a leak). */
	CHECK_EQ_INT((int)write(wfd, "x", 1), 1);
	uint64_t end = rw_clock_mono_ms() + 20000;
	while (!atomic_load(&finished) && rw_clock_mono_ms() < end)
		nap_ms(1);
	CHECK_EQ_INT(atomic_load(&finished), 1);
	close(wfd);
	/* Once the left thread has exited, LeakSanitizer at exit proves it freed the state. */
	while (threads() > 1 && rw_clock_mono_ms() < end)
		nap_ms(1);
	CHECK_EQ_INT(threads(), 1);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"returns in time: joined, 0", t_returns_in_time},
	    {"gives up at the deadline; the thread cleans up later",
	     t_gives_up_then_thread_cleans_up},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

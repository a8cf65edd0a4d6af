/*
 * test_ctl_workqueue.c - work queue semantics on a real libuv loop: dedup,
 * one reconcile per key at a time, re-add while running, many keys in
 * flight with asynchronous completion, the concurrency limit, back-off on
 * failure reset by success, add_after with the earliest deadline, pause,
 * the first lane.
 */
#include <string.h>

#include <uv.h>

#include "rwtest.h"
#include "workqueue.h"

#define MAXK 64

struct run {
	char key[32];
	uint64_t at;
};

struct fx {
	uv_loop_t loop;
	struct rw_wq *q;
	struct run runs[256];
	int nruns;
	int running_now, max_running;
	char inflight[MAXK][32];
	int ninflight;
	int fail_left; /* fail this many reconciles first */
	int sync_done; /* complete inside the callback */
	int overlap;   /* a key started while already running */
	uv_timer_t stop;
};

static void
reconcile(struct rw_wq *q, const char *key, void *ud)
{
	struct fx *f = ud;
	for (int i = 0; i < f->ninflight; i++)
		if (!strcmp(f->inflight[i], key))
			f->overlap++;
	if (f->nruns < 256) {
		snprintf(f->runs[f->nruns].key, sizeof(f->runs[0].key), "%s", key);
		f->runs[f->nruns].at = uv_now(&f->loop);
	}
	f->nruns++;
	if (f->sync_done) {
		int r = f->fail_left > 0 ? -1 : 0;
		if (f->fail_left > 0)
			f->fail_left--;
		rw_wq_done(q, key, r, 0);
		return;
	}
	snprintf(f->inflight[f->ninflight++], 32, "%s", key);
	f->running_now++;
	if (f->running_now > f->max_running)
		f->max_running = f->running_now;
}

/* Finish every reconcile in flight (async completion). */
static void
finish_all(struct fx *f, int result)
{
	int n = f->ninflight;
	char keys[MAXK][32];
	memcpy(keys, f->inflight, sizeof(keys));
	f->ninflight = 0;
	f->running_now = 0;
	for (int i = 0; i < n; i++)
		rw_wq_done(f->q, keys[i], result, 0);
}

static void
stop_cb(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Run the loop for ms milliseconds. */
static void
run_for(struct fx *f, uint64_t ms)
{
	uv_timer_start(&f->stop, stop_cb, ms, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void
fx_init(struct fx *f, int max_inflight)
{
	struct rw_wq_opts o = {.name = "test", .max_inflight = max_inflight};
	memset(f, 0, sizeof(*f));
	uv_loop_init(&f->loop);
	uv_timer_init(&f->loop, &f->stop);
	CHECK_EQ_INT(rw_wq_new(&f->loop, &o, reconcile, f, &f->q), 0);
}

static void
fx_fini(struct fx *f)
{
	rw_wq_free(f->q, NULL, NULL);
	uv_close((uv_handle_t *)&f->stop, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&f->loop), 0);
}

static void
test_dedup(void)
{
	struct fx f;
	fx_init(&f, 8);
	for (int i = 0; i < 10; i++)
		rw_wq_add(f.q, "a");
	rw_wq_add(f.q, "b");
	CHECK_EQ_INT(rw_wq_len(f.q), 2);
	CHECK_EQ_INT(f.nruns, 0); /* never from inside add */
	run_for(&f, 20);
	CHECK_EQ_INT(f.nruns, 2);
	CHECK_EQ_STR(f.runs[0].key, "a");
	CHECK_EQ_STR(f.runs[1].key, "b");
	finish_all(&f, 0);
	run_for(&f, 20);
	CHECK_EQ_INT(f.nruns, 2);
	CHECK_EQ_INT(rw_wq_len(f.q), 0);
	fx_fini(&f);
}

static void
test_readd_while_running(void)
{
	struct fx f;
	fx_init(&f, 8);
	rw_wq_add(f.q, "k");
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, 1);
	CHECK_EQ_INT(rw_wq_inflight(f.q), 1);
	/* Added three times while running: runs once more, after the first finished. */
	rw_wq_add(f.q, "k");
	rw_wq_add(f.q, "k");
	rw_wq_add(f.q, "k");
	run_for(&f, 20);
	CHECK_EQ_INT(f.nruns, 1);
	CHECK_EQ_INT(f.overlap, 0);
	finish_all(&f, 0);
	run_for(&f, 20);
	CHECK_EQ_INT(f.nruns, 2);
	CHECK_EQ_INT(f.overlap, 0);
	finish_all(&f, 0);
	run_for(&f, 20);
	CHECK_EQ_INT(f.nruns, 2);
	fx_fini(&f);
}

static void
test_concurrency(void)
{
	struct fx f;
	char key[16];
	fx_init(&f, 5);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		rw_wq_add(f.q, key);
	}
	run_for(&f, 20);
	/* Five in flight at once, none finished yet. */
	CHECK_EQ_INT(f.nruns, 5);
	CHECK_EQ_INT(f.max_running, 5);
	CHECK_EQ_INT(rw_wq_inflight(f.q), 5);
	CHECK_EQ_INT(rw_wq_len(f.q), 15);
	for (int round = 0; round < 3; round++) {
		finish_all(&f, 0);
		run_for(&f, 20);
	}
	CHECK_EQ_INT(f.nruns, 20);
	CHECK_EQ_INT(f.max_running, 5);
	finish_all(&f, 0);
	fx_fini(&f);
}

/*
 * The first lane: keys added with rw_wq_add_first run before the rest, FIFO
 * among themselves, and may take max_inflight / 4 (here 1) slots more; a
 * key already queued moves up; one added first while it runs is queued
 * first again when it finishes.
 */
static void
test_first_lane(void)
{
	static const char *const want[] = {"k0",   "k1", "k2", "k3", "new1", "new2", "k5",
					   "new1", "k4", "k6", "k7", "k8",   "k9"};
	const int n = (int)(sizeof(want) / sizeof(want[0]));
	struct fx f;
	char key[16];
	fx_init(&f, 4);
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		rw_wq_add(f.q, key);
	}
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, 4); /* k0..k3: the regular slots are full */
	rw_wq_add_first(f.q, "new1", 0);
	rw_wq_add_first(f.q, "new2", 0);
	rw_wq_add_first(f.q, "k5", 0);
	rw_wq_add(f.q, "new2"); /* a plain add does not move it back */
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, 5); /* new1 in the extra slot; new2 waits */
	CHECK_EQ_INT(rw_wq_inflight(f.q), 5);
	CHECK_EQ_INT(rw_wq_len(f.q), 7);
	rw_wq_add_first(f.q, "new1", 0); /* while it runs */
	finish_all(&f, 0);
	run_for(&f, 10);
	/* new2, k5, new1 again (first lane), then one regular key fills four. */
	CHECK_EQ_INT(f.nruns, 9);
	CHECK_EQ_INT(rw_wq_inflight(f.q), 4);
	finish_all(&f, 0);
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, n);
	for (int i = 0; i < n && i < f.nruns; i++)
		CHECK_EQ_STR(f.runs[i].key, want[i]);
	CHECK_EQ_INT(f.overlap, 0);
	CHECK_EQ_INT(f.max_running, 5);
	finish_all(&f, 0);
	run_for(&f, 10);
	CHECK_EQ_INT(rw_wq_len(f.q), 0);
	fx_fini(&f);
}

/*
 * First-lane groups take turns: a key of group 0 added while four of group 1
 * wait runs before them, after group 3's turn (a group number beyond the
 * groups counts as the last).
 */
static void
test_first_lane_groups(void)
{
	static const char *const want[] = {"p1", "b1", "x", "p2", "b2", "b3", "b4", "b5"};
	const int n = (int)(sizeof(want) / sizeof(want[0]));
	struct fx f;
	char key[16];
	fx_init(&f, 1); /* the first lane gets 2 slots */
	rw_wq_pause(f.q);
	for (int i = 1; i <= 5; i++) {
		snprintf(key, sizeof(key), "b%d", i);
		rw_wq_add_first(f.q, key, 1);
	}
	rw_wq_add_first(f.q, "p1", 0);
	rw_wq_add_first(f.q, "x", 99); /* beyond the groups: the last group */
	rw_wq_resume(f.q);
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, 2); /* p1 (group 0's turn), b1 */
	rw_wq_add_first(f.q, "p2", 0);
	for (int round = 0; round < 8 && f.nruns < n; round++) {
		finish_all(&f, 0);
		run_for(&f, 10);
	}
	CHECK_EQ_INT(f.nruns, n);
	for (int i = 0; i < n && i < f.nruns; i++)
		CHECK_EQ_STR(f.runs[i].key, want[i]);
	finish_all(&f, 0);
	run_for(&f, 10);
	fx_fini(&f);
}

/* The extra slots are shared out: one group's batch cannot take them all. */
static void
test_first_lane_extra_share(void)
{
	struct fx f;
	char key[16];
	fx_init(&f, 16); /* 4 extra slots, 1 per group */
	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		rw_wq_add(f.q, key);
	}
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, 16);
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "job-made-%d", i);
		rw_wq_add_first(f.q, key, 1);
	}
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, 17); /* group 1's one extra slot */
	rw_wq_add_first(f.q, "by-hand", 0);
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, 18);
	CHECK_EQ_STR(f.runs[17].key, "by-hand");
	CHECK_EQ_INT(rw_wq_inflight(f.q), 18);
	CHECK_EQ_INT(rw_wq_len(f.q), 2);
	finish_all(&f, 0);
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, 20);
	finish_all(&f, 0);
	run_for(&f, 10);
	fx_fini(&f);
}

static void
test_backoff_and_reset(void)
{
	struct fx f;
	fx_init(&f, 4);
	f.sync_done = 1;
	f.fail_left = 4;
	rw_wq_add(f.q, "x");
	/* Failures back off 5, 10, 20, 40 ms: five runs within ~75 ms + slack. */
	run_for(&f, 300);
	CHECK_EQ_INT(f.nruns, 5);
	if (f.nruns == 5) {
		CHECK(f.runs[1].at - f.runs[0].at >= 5);
		CHECK(f.runs[2].at - f.runs[1].at >= 10);
		CHECK(f.runs[3].at - f.runs[2].at >= 20);
		CHECK(f.runs[4].at - f.runs[3].at >= 40);
	}
	CHECK_EQ_INT(rw_wq_failures(f.q, "x"), 0); /* the success reset it */
	/* A new failure starts from the base again. */
	f.fail_left = 1;
	rw_wq_add(f.q, "x");
	run_for(&f, 100);
	CHECK_EQ_INT(f.nruns, 7);
	if (f.nruns == 7)
		CHECK(f.runs[6].at - f.runs[5].at < 40);
	fx_fini(&f);
}

static void
test_add_after(void)
{
	struct fx f;
	fx_init(&f, 4);
	f.sync_done = 1;
	uint64_t t0 = uv_now(&f.loop);
	rw_wq_add_after(f.q, "late", 200);
	rw_wq_add_after(f.q, "late", 60); /* the earlier wins */
	rw_wq_add_after(f.q, "late", 500);
	run_for(&f, 40);
	CHECK_EQ_INT(f.nruns, 0);
	run_for(&f, 100);
	CHECK_EQ_INT(f.nruns, 1);
	if (f.nruns == 1)
		CHECK(f.runs[0].at - t0 >= 60);
	run_for(&f, 500);
	CHECK_EQ_INT(f.nruns, 1); /* later timers were folded into the first */
	/* Requeue after a successful reconcile. */
	f.sync_done = 0;
	rw_wq_add(f.q, "again");
	run_for(&f, 10);
	CHECK_EQ_INT(f.nruns, 2);
	f.ninflight = 0;
	f.running_now = 0;
	rw_wq_done(f.q, "again", 0, 50);
	run_for(&f, 20);
	CHECK_EQ_INT(f.nruns, 2);
	run_for(&f, 80);
	CHECK_EQ_INT(f.nruns, 3);
	finish_all(&f, 0);
	fx_fini(&f);
}

static void
test_pause(void)
{
	struct fx f;
	fx_init(&f, 4);
	f.sync_done = 1;
	rw_wq_pause(f.q);
	rw_wq_add(f.q, "p");
	rw_wq_add(f.q, "q");
	run_for(&f, 30);
	CHECK_EQ_INT(f.nruns, 0);
	CHECK_EQ_INT(rw_wq_len(f.q), 2);
	rw_wq_resume(f.q);
	run_for(&f, 30);
	CHECK_EQ_INT(f.nruns, 2);
	fx_fini(&f);
}

static void
test_free_with_timers(void)
{
	struct fx f;
	fx_init(&f, 4);
	rw_wq_add_after(f.q, "t1", 10000);
	rw_wq_add(f.q, "t2");
	rw_wq_add_rate_limited(f.q, "t3");
	fx_fini(&f); /* closes every timer; ASan checks for leaks */
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"dedup and order", test_dedup},
	    {"re-add while running", test_readd_while_running},
	    {"many keys in flight, limit", test_concurrency},
	    {"first lane", test_first_lane},
	    {"first-lane groups take turns", test_first_lane_groups},
	    {"first-lane extra slots shared out", test_first_lane_extra_share},
	    {"back-off, reset on success", test_backoff_and_reset},
	    {"add_after earliest wins, requeue after", test_add_after},
	    {"paused queue collects keys", test_pause},
	    {"free with pending timers", test_free_with_timers},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

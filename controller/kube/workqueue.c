/*
 * workqueue.c - deduplicating, per-key serialised, rate-limited work queue on
 * libuv timers (see workqueue.h). Metric names follow controller-runtime's
 * (workqueue_*, controller_runtime_active_workers) so existing dashboards
 * work; the reconcile results and latency (controller_runtime_reconcile_*)
 * are the reconcile runtime's (reconcile.c), which knows why a key requeues.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kmap.h"
#include "rw/list.h"
#include "workqueue.h"

#define REGULAR RW_WQ_GROUPS /* the lane of plain adds */

struct wtimer {
	uv_timer_t t;
	struct rw_wq *q;
	struct item *it; /* NULL once detached */
};

struct item {
	char *key;
	bool queued, running, dirty;
	int lane;	 /* while queued: a first-lane group, or REGULAR */
	int dirty_lane;	 /* the lane to queue it in when a dirty run finishes */
	int extra_group; /* running in an extra slot of this group, or -1 */
	unsigned failures;
	struct wtimer *timer;
	uint64_t due_ms;   /* when the timer fires */
	uint64_t added_ms; /* when it entered the ready queue */
	uint64_t start_ms;
	struct rw_list qlink; /* in its lane while queued */
};

struct rw_wq {
	uv_loop_t *loop;
	struct rw_wq_opts o;
	char *name;
	rw_wq_fn fn;
	void *ud;
	struct rw_kmap items;
	/* [0, RW_WQ_GROUPS): the first lane's groups, in turn; [REGULAR]: the rest. */
	struct rw_list lanes[RW_WQ_GROUPS + 1];
	int next_group; /* the first-lane group whose turn it is */
	int extra_used[RW_WQ_GROUPS];
	int qlen, inflight, paused, closing, pending_closes;
	uv_timer_t kick;
	bool kick_armed;
	void (*closed)(void *);
	void *closed_ud;
	struct rw_met_family *m_depth, *m_adds, *m_qlat, *m_work, *m_retries, *m_active;
	struct rw_met_family *m_unfinished, *m_longest;
};

uint64_t
rw_wq_backoff_ms(unsigned n, uint64_t base_ms, uint64_t max_ms)
{
	uint64_t d = base_ms ? base_ms : 1;
	if (n == 0)
		return 0;
	for (unsigned i = 1; i < n; i++) {
		if (d >= max_ms / 2) {
			d = max_ms;
			break;
		}
		d *= 2;
	}
	return d > max_ms ? max_ms : d;
}

static void
set_depth(struct rw_wq *q)
{
	rw_met_set(q->m_depth, (const char *const[]){q->name, q->name, ""}, q->qlen);
	rw_met_set(q->m_active, (const char *const[]){q->name}, q->inflight);
}

static void
maybe_free_item(struct rw_wq *q, struct item *it)
{
	if (it->queued || it->running || it->dirty || it->timer || it->failures)
		return;
	rw_kmap_del(&q->items, it->key);
	free(it->key);
	free(it);
}

static void
item_free(void *p)
{
	struct item *it = p;
	if (it)
		free(it->key);
	free(it);
}

static void
finish_close(struct rw_wq *q)
{
	if (!q->closing || q->pending_closes)
		return;
	void (*cb)(void *) = q->closed;
	void *ud = q->closed_ud;
	rw_kmap_fini(&q->items, item_free);
	free(q->name);
	free(q);
	if (cb)
		cb(ud);
}

static void kick_cb(uv_timer_t *t);

/*
 * The next key to start, or NULL. First-lane keys may also use the extra
 * slots (max_inflight / 4, at least one), so a new object starts even while
 * every regular slot holds a reconcile that waits on a rate-limited API;
 * each group holds at most its share of them, so one source's batch cannot
 * take them all.
 */
static int
extra_slots(const struct rw_wq *q)
{
	return q->o.max_inflight / 4 > 0 ? q->o.max_inflight / 4 : 1;
}

/* Whether a first-lane key of group g may start now. */
static bool
group_may_start(const struct rw_wq *q, int g)
{
	int per_group = extra_slots(q) / RW_WQ_GROUPS > 0 ? extra_slots(q) / RW_WQ_GROUPS : 1;
	if (q->inflight < q->o.max_inflight)
		return true;
	return q->inflight < q->o.max_inflight + extra_slots(q) && q->extra_used[g] < per_group;
}

static struct item *
next_item(const struct rw_wq *q)
{
	struct rw_list *l;
	for (int i = 0; i < RW_WQ_GROUPS; i++) {
		int g = (q->next_group + i) % RW_WQ_GROUPS;
		l = rw_list_first(&q->lanes[g]);
		if (l && group_may_start(q, g))
			return rw_list_entry(l, struct item, qlink);
	}
	l = rw_list_first(&q->lanes[REGULAR]);
	if (l && q->inflight < q->o.max_inflight)
		return rw_list_entry(l, struct item, qlink);
	return NULL;
}

static void
kick(struct rw_wq *q)
{
	if (q->kick_armed || q->closing || q->paused || !next_item(q))
		return;
	q->kick_armed = true;
	uv_timer_start(&q->kick, kick_cb, 0, 0);
}

static struct item *
get_item(struct rw_wq *q, const char *key, bool create)
{
	struct item *it = rw_kmap_get(&q->items, key);
	if (it || !create)
		return it;
	it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->key = strdup(key);
	it->dirty_lane = REGULAR;
	if (!it->key || rw_kmap_put(&q->items, key, it, NULL) != 0) {
		free(it->key);
		free(it);
		return NULL;
	}
	return it;
}

static void
enqueue(struct rw_wq *q, struct item *it, int lane)
{
	it->queued = true;
	it->lane = lane;
	it->added_ms = uv_now(q->loop);
	rw_list_insert_tail(&q->lanes[lane], &it->qlink);
	q->qlen++;
	set_depth(q);
	kick(q);
}

static void
add(struct rw_wq *q, const char *key, int lane)
{
	struct item *it;
	if (!q || q->closing || !key)
		return;
	it = get_item(q, key, true);
	if (!it)
		return;
	rw_met_add(q->m_adds, (const char *const[]){q->name, q->name}, 1);
	if (it->queued) {
		if (lane < REGULAR && it->lane == REGULAR) {
			rw_list_remove(&it->qlink);
			rw_list_insert_tail(&q->lanes[lane], &it->qlink);
			it->lane = lane;
		}
		return;
	}
	if (it->running) {
		it->dirty = true;
		if (lane < it->dirty_lane)
			it->dirty_lane = lane;
		return;
	}
	enqueue(q, it, lane);
}

void
rw_wq_add(struct rw_wq *q, const char *key)
{
	add(q, key, REGULAR);
}

void
rw_wq_add_first(struct rw_wq *q, const char *key, unsigned group)
{
	add(q, key, group < RW_WQ_GROUPS ? (int)group : RW_WQ_GROUPS - 1);
}

static void
timer_closed(uv_handle_t *h)
{
	struct wtimer *w = h->data;
	struct rw_wq *q = w->q;
	free(w);
	q->pending_closes--;
	finish_close(q);
}

static void
drop_timer(struct rw_wq *q, struct item *it)
{
	struct wtimer *w = it->timer;
	if (!w)
		return;
	it->timer = NULL;
	w->it = NULL;
	uv_timer_stop(&w->t);
	q->pending_closes++;
	uv_close((uv_handle_t *)&w->t, timer_closed);
}

static void
delay_cb(uv_timer_t *t)
{
	struct wtimer *w = t->data;
	struct rw_wq *q = w->q;
	struct item *it = w->it;
	if (!it)
		return;
	drop_timer(q, it);
	rw_wq_add(q, it->key);
	maybe_free_item(q, it);
}

void
rw_wq_add_after(struct rw_wq *q, const char *key, uint64_t delay_ms)
{
	struct item *it;
	if (!q || q->closing || !key)
		return;
	if (delay_ms == 0) {
		rw_wq_add(q, key);
		return;
	}
	it = get_item(q, key, true);
	if (!it)
		return;
	uint64_t due = uv_now(q->loop) + delay_ms;
	if (it->timer) {
		if (it->due_ms <= due)
			return; /* an earlier wake-up is already set */
		uv_timer_stop(&it->timer->t);
	} else {
		struct wtimer *w = calloc(1, sizeof(*w));
		if (!w) {
			maybe_free_item(q, it);
			return;
		}
		w->q = q;
		w->it = it;
		uv_timer_init(q->loop, &w->t);
		w->t.data = w;
		it->timer = w;
	}
	it->due_ms = due;
	uv_timer_start(&it->timer->t, delay_cb, delay_ms, 0);
}

void
rw_wq_add_rate_limited(struct rw_wq *q, const char *key)
{
	struct item *it;
	if (!q || q->closing || !key)
		return;
	it = get_item(q, key, true);
	if (!it)
		return;
	it->failures++;
	rw_met_add(q->m_retries, (const char *const[]){q->name, q->name}, 1);
	rw_wq_add_after(q, key,
			rw_wq_backoff_ms(it->failures, q->o.base_backoff_ms, q->o.max_backoff_ms));
}

void
rw_wq_forget(struct rw_wq *q, const char *key)
{
	struct item *it = q && key ? get_item(q, key, false) : NULL;
	if (!it)
		return;
	it->failures = 0;
	maybe_free_item(q, it);
}

void
rw_wq_done(struct rw_wq *q, const char *key, int result, uint64_t requeue_after_ms)
{
	struct item *it = q && key ? get_item(q, key, false) : NULL;
	if (!it || !it->running)
		return;
	it->running = false;
	q->inflight--;
	if (it->extra_group >= 0)
		q->extra_used[it->extra_group]--;
	it->extra_group = -1;
	double secs = (double)(uv_now(q->loop) - it->start_ms) / 1000.0;
	rw_met_observe(q->m_work, (const char *const[]){q->name, q->name}, secs);
	if (it->dirty) {
		it->dirty = false;
		enqueue(q, it, it->dirty_lane);
		it->dirty_lane = REGULAR;
	}
	if (result < 0) {
		rw_wq_add_rate_limited(q, it->key);
	} else {
		it->failures = 0;
		if (requeue_after_ms)
			rw_wq_add_after(q, it->key, requeue_after_ms);
	}
	set_depth(q);
	maybe_free_item(q, it);
	kick(q);
}

static void
kick_cb(uv_timer_t *t)
{
	struct rw_wq *q = t->data;
	q->kick_armed = false;
	struct item *it;
	while (!q->closing && !q->paused && (it = next_item(q)) != NULL) {
		rw_list_remove(&it->qlink);
		it->extra_group = -1;
		if (it->lane < REGULAR) {
			q->next_group = (it->lane + 1) % RW_WQ_GROUPS;
			if (q->inflight >= q->o.max_inflight) {
				it->extra_group = it->lane;
				q->extra_used[it->lane]++;
			}
		}
		it->queued = false;
		it->running = true;
		q->qlen--;
		q->inflight++;
		it->start_ms = uv_now(q->loop);
		rw_met_observe(q->m_qlat, (const char *const[]){q->name, q->name},
			       (double)(it->start_ms - it->added_ms) / 1000.0);
		set_depth(q);
		/* it may be freed by a synchronous rw_wq_done(): do not touch it afterwards. */
		q->fn(q, it->key, q->ud);
	}
}

/* prometheus.ExponentialBuckets(10e-9, 10, 12), controller-runtime's workqueue buckets. */
static const double wq_buckets[] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3,
				    1e-2, 1e-1, 1,    10,   100,  1000};

/* At scrape: client-go's updateUnfinishedWork, over the reconciles in flight. */
static void
collect_running(void *ud)
{
	struct rw_wq *q = ud;
	struct rw_kmap_iter itr;
	struct rw_kmap_ent *e;
	uint64_t now = uv_now(q->loop);
	double total = 0, longest = 0;
	rw_kmap_iter_init(&q->items, &itr);
	while ((e = rw_kmap_next(&q->items, &itr)) != NULL) {
		const struct item *it = e->val;
		double secs;
		if (!it->running)
			continue;
		secs = (double)(now - it->start_ms) / 1000.0;
		total += secs;
		if (secs > longest)
			longest = secs;
	}
	rw_met_set(q->m_unfinished, (const char *const[]){q->name, q->name}, total);
	rw_met_set(q->m_longest, (const char *const[]){q->name, q->name}, longest);
}

int
rw_wq_new(uv_loop_t *loop, const struct rw_wq_opts *opts, rw_wq_fn fn, void *ud, struct rw_wq **out)
{
	static const char *const ln[] = {"name", "controller", NULL};
	static const char *const lnp[] = {"name", "controller", "priority", NULL};
	static const char *const lc[] = {"controller", NULL};
	struct rw_wq *q;
	*out = NULL;
	if (!loop || !fn)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	if (opts)
		q->o = *opts;
	if (q->o.max_inflight <= 0)
		q->o.max_inflight = 64;
	if (!q->o.base_backoff_ms)
		q->o.base_backoff_ms = 5;
	if (!q->o.max_backoff_ms)
		q->o.max_backoff_ms = 1000000;
	q->name = strdup(q->o.name ? q->o.name : "default");
	if (!q->name) {
		free(q);
		return -ENOMEM;
	}
	q->o.name = NULL;
	q->loop = loop;
	q->fn = fn;
	q->ud = ud;
	q->paused = q->o.paused;
	rw_kmap_init(&q->items);
	for (int i = 0; i <= REGULAR; i++)
		rw_list_init(&q->lanes[i]);
	uv_timer_init(loop, &q->kick);
	q->kick.data = q;
	struct rw_met *m = q->o.met;
	/* Names, help and labels as controller-runtime v0.22.1's workqueue metrics
	 * (pkg/internal/metrics/workqueue.go): name and controller are both the
	 * controller's name; depth has an empty priority without a priority queue. */
	q->m_depth = rw_met_gauge(m, "workqueue_depth",
				  "Current depth of workqueue by workqueue and priority", lnp);
	q->m_adds = rw_met_counter(m, "workqueue_adds_total",
				   "Total number of adds handled by workqueue", ln);
	q->m_qlat = rw_met_histogram(
	    m, "workqueue_queue_duration_seconds",
	    "How long in seconds an item stays in workqueue before being requested", ln, wq_buckets,
	    (int)(sizeof(wq_buckets) / sizeof(wq_buckets[0])));
	q->m_work =
	    rw_met_histogram(m, "workqueue_work_duration_seconds",
			     "How long in seconds processing an item from workqueue takes.", ln,
			     wq_buckets, (int)(sizeof(wq_buckets) / sizeof(wq_buckets[0])));
	q->m_unfinished = rw_met_gauge(
	    m, "workqueue_unfinished_work_seconds",
	    "How many seconds of work has been done that is in progress and hasn't been observed "
	    "by work_duration. Large values indicate stuck threads. One can deduce the number of "
	    "stuck threads by observing the rate at which this increases.",
	    ln);
	q->m_longest = rw_met_gauge(
	    m, "workqueue_longest_running_processor_seconds",
	    "How many seconds has the longest running processor for workqueue been running.", ln);
	q->m_retries = rw_met_counter(m, "workqueue_retries_total",
				      "Total number of retries handled by workqueue", ln);
	q->m_active = rw_met_gauge(m, "controller_runtime_active_workers",
				   "Number of currently used workers per controller", lc);
	rw_met_add(q->m_adds, (const char *const[]){q->name, q->name}, 0);
	rw_met_add(q->m_retries, (const char *const[]){q->name, q->name}, 0);
	collect_running(q);
	rw_met_add_collector(m, collect_running, q);
	set_depth(q);
	*out = q;
	return 0;
}

static void
kick_closed(uv_handle_t *h)
{
	struct rw_wq *q = h->data;
	q->pending_closes--;
	finish_close(q);
}

void
rw_wq_free(struct rw_wq *q, void (*closed)(void *), void *ud)
{
	struct rw_kmap_iter itr;
	struct rw_kmap_ent *e;
	if (!q || q->closing)
		return;
	rw_met_remove_collector(q->o.met, collect_running, q);
	q->closing = 1;
	q->closed = closed;
	q->closed_ud = ud;
	for (int i = 0; i <= REGULAR; i++)
		rw_list_init(&q->lanes[i]);
	q->qlen = 0;
	rw_kmap_iter_init(&q->items, &itr);
	while ((e = rw_kmap_next(&q->items, &itr)) != NULL) {
		struct item *it = e->val;
		it->queued = false;
		it->dirty = false;
		it->failures = 0;
		drop_timer(q, it);
		maybe_free_item(q, it); /* running items are freed by rw_wq_done */
	}
	q->pending_closes++;
	uv_close((uv_handle_t *)&q->kick, kick_closed);
}

void
rw_wq_pause(struct rw_wq *q)
{
	if (q)
		q->paused = 1;
}

void
rw_wq_resume(struct rw_wq *q)
{
	if (!q)
		return;
	q->paused = 0;
	kick(q);
}

int
rw_wq_len(const struct rw_wq *q)
{
	return q ? q->qlen : 0;
}

int
rw_wq_inflight(const struct rw_wq *q)
{
	return q ? q->inflight : 0;
}

int
rw_wq_failures(const struct rw_wq *q, const char *key)
{
	struct item *it = q ? rw_kmap_get(&q->items, key) : NULL;
	return it ? (int)it->failures : 0;
}

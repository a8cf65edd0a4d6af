/*
 * fairq.c - per-flow FIFOs, the least recently served flow first, two
 * classes by strict priority (see fairq.h).
 *
 * Usage decays without touching every flow: instead of halving all usages
 * every RW_FQ_HALF_LIFE pops, the weight of one request (unit) doubles, which
 * orders the flows the same way. When unit grows large every usage and unit
 * are divided by unit (rebase), once in 100 half-lives (~1.6 million pops).
 *
 * A flow is created by the push that finds none. When its last node leaves
 * it is kept as idle (its usage remembered) until its usage has decayed
 * below RW_FQ_FORGET of one request, or RW_FQ_MAX_IDLE newer idle flows push
 * it out; so the memory follows what waits and what was recently served.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fairq.h"

#define DEF_MAX_NORMAL 65536
#define DEF_MAX_BEST_EFFORT 1000
#define NOT_WAITING SIZE_MAX
/* An idle flow whose usage is below this many requests is forgotten. */
#define RW_FQ_FORGET (1.0 / 64)
#define REBASE_AT 1e30 /* every 100 half-lives */

struct rw_fq_flow {
	struct rw_list fifo; /* struct rw_fq_node, oldest first */
	int src;	     /* its source (fixed while it waits) */
	struct rw_list idle; /* in the class's idle list while not waiting */
	size_t n;
	size_t hi; /* index in the class's heap, NOT_WAITING when idle */
	double usage;
	unsigned long long seq;
	char key[]; /* NUL-terminated */
};

static double decay_step; /* unit grows by this factor per pop: 2^(1/RW_FQ_HALF_LIFE) */

/* ---- the heap of waiting flows: least usage, then least seq, at the root ---- */

static int
before(const struct rw_fq_flow *a, const struct rw_fq_flow *b)
{
	if (a->usage != b->usage)
		return a->usage < b->usage;
	return a->seq < b->seq;
}

static void
heap_set(struct rw_fq_src *c, size_t i, struct rw_fq_flow *f)
{
	c->heap[i] = f;
	f->hi = i;
}

static void
sift_up(struct rw_fq_src *c, size_t i)
{
	struct rw_fq_flow *f = c->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!before(f, c->heap[p]))
			break;
		heap_set(c, i, c->heap[p]);
		i = p;
	}
	heap_set(c, i, f);
}

static void
sift_down(struct rw_fq_src *c, size_t i)
{
	struct rw_fq_flow *f = c->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct rw_fq_flow *best = f;
		if (l < c->nheap && before(c->heap[l], best))
			best = c->heap[m = l];
		if (l + 1 < c->nheap && before(c->heap[l + 1], best))
			best = c->heap[m = l + 1];
		if (m == i)
			break;
		heap_set(c, i, best);
		i = m;
	}
	heap_set(c, i, f);
}

static int
heap_add(struct rw_fq_src *c, struct rw_fq_flow *f)
{
	if (c->nheap == c->capheap) {
		size_t cap = c->capheap ? 2 * c->capheap : 16;
		struct rw_fq_flow **h = realloc(c->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		c->heap = h;
		c->capheap = cap;
	}
	heap_set(c, c->nheap++, f);
	sift_up(c, f->hi);
	return 0;
}

static void
heap_del(struct rw_fq_src *c, struct rw_fq_flow *f)
{
	size_t i = f->hi;
	struct rw_fq_flow *last = c->heap[--c->nheap];
	f->hi = NOT_WAITING;
	if (last == f)
		return;
	heap_set(c, i, last);
	if (i > 0 && before(last, c->heap[(i - 1) / 2]))
		sift_up(c, i);
	else
		sift_down(c, i);
}

/* ---- remembered flows ---- */

static void
forget(struct rw_fq_cls *c, struct rw_fq_flow *f)
{
	rw_list_remove(&f->idle);
	c->nidle--;
	rw_kmap_del(&c->flows, f->key);
	free(f);
}

/* Forget the longest idle flows once they no longer matter, or beyond the bound. */
static void
trim_idle(struct rw_fq_cls *c)
{
	struct rw_list *l;
	while ((l = rw_list_first(&c->idle)) != NULL) {
		struct rw_fq_flow *f = rw_list_entry(l, struct rw_fq_flow, idle);
		if (c->nidle <= RW_FQ_MAX_IDLE && f->usage >= RW_FQ_FORGET * c->unit)
			break;
		forget(c, f);
	}
}

/* Divide every usage by unit, so that unit is 1 again (the order is unchanged). */
static void
rebase(struct rw_fq_cls *c)
{
	struct rw_list *l;
	for (int k = 0; k < RW_FQ_SOURCES; k++)
		for (size_t i = 0; i < c->src[k].nheap; i++)
			c->src[k].heap[i]->usage /= c->unit;
	RW_LIST_FOREACH (l, &c->idle)
		rw_list_entry(l, struct rw_fq_flow, idle)->usage /= c->unit;
	c->unit = 1.0;
}

/*
 * f starts waiting: clamp its usage near that of the least-used flow waiting
 * in its source (the heap's root), and join that heap.
 */
static int
join(struct rw_fq_cls *c, struct rw_fq_flow *f)
{
	struct rw_fq_src *sq = &c->src[f->src];
	double span = RW_FQ_HEAD_START * c->unit;
	if (sq->nheap > 0) {
		double min = sq->heap[0]->usage;
		if (f->usage < min - span)
			f->usage = min - span;
		else if (f->usage > min + span)
			f->usage = min + span;
	}
	f->seq = ++c->seq;
	return heap_add(sq, f);
}

/* ---- the queue ---- */

void
rw_fq_init(struct rw_fq *q, size_t max_normal, size_t max_best_effort)
{
	memset(q, 0, sizeof(*q));
	if (decay_step == 0)
		decay_step = exp2(1.0 / RW_FQ_HALF_LIFE);
	for (int i = 0; i < RW_FQ_NCLASS; i++) {
		rw_kmap_init(&q->c[i].flows);
		rw_list_init(&q->c[i].idle);
		q->c[i].unit = 1.0;
	}
	q->c[RW_FQ_NORMAL].max = max_normal ? max_normal : DEF_MAX_NORMAL;
	q->c[RW_FQ_BEST_EFFORT].max = max_best_effort ? max_best_effort : DEF_MAX_BEST_EFFORT;
}

void
rw_fq_fini(struct rw_fq *q)
{
	if (!q)
		return;
	for (int i = 0; i < RW_FQ_NCLASS; i++) {
		struct rw_fq_cls *c = &q->c[i];
		for (int k = 0; k < RW_FQ_SOURCES; k++) {
			struct rw_fq_src *sq = &c->src[k];
			for (size_t h = 0; h < sq->nheap; h++) {
				struct rw_list *nl;
				RW_LIST_FOREACH (nl, &sq->heap[h]->fifo)
					rw_list_entry(nl, struct rw_fq_node, link)->flow = NULL;
			}
			free(sq->heap);
			memset(sq, 0, sizeof(*sq));
		}
		rw_kmap_fini(&c->flows, free); /* every flow, waiting or idle */
		rw_list_init(&c->idle);
		c->nidle = 0;
		c->n = 0;
	}
}

int
rw_fq_push(struct rw_fq *q, struct rw_fq_node *n, const char *flow, int cls, unsigned source)
{
	struct rw_fq_cls *c;
	struct rw_fq_flow *f;
	int src = source < RW_FQ_SOURCES ? (int)source : RW_FQ_SOURCES - 1;
	if (!q || !n || cls < 0 || cls >= RW_FQ_NCLASS || n->flow)
		return -EINVAL;
	c = &q->c[cls];
	if (c->n >= c->max)
		return -ENOBUFS;
	if (!flow)
		flow = "";
	f = rw_kmap_get(&c->flows, flow);
	if (!f) {
		size_t len = strlen(flow);
		f = calloc(1, sizeof(*f) + len + 1);
		if (!f)
			return -ENOMEM;
		memcpy(f->key, flow, len + 1);
		rw_list_init(&f->fifo);
		rw_list_init(&f->idle);
		f->hi = NOT_WAITING;
		f->src = src;
		if (rw_kmap_put(&c->flows, flow, f, NULL) != 0) {
			free(f);
			return -ENOMEM;
		}
		if (join(c, f) != 0) {
			rw_kmap_del(&c->flows, f->key);
			free(f);
			return -ENOMEM;
		}
	} else if (f->hi == NOT_WAITING) {
		f->src = src;
		if (join(c, f) != 0)
			return -ENOMEM; /* stays idle, remembered */
		rw_list_remove(&f->idle);
		c->nidle--;
	}
	n->cls = cls;
	n->flow = f;
	rw_list_insert_tail(&f->fifo, &n->link);
	f->n++;
	c->n++;
	return 0;
}

/* Unlink n from its flow; the flow leaves the heap (remembered) when that empties it. */
static void
unlink_node(struct rw_fq *q, struct rw_fq_node *n)
{
	struct rw_fq_cls *c = &q->c[n->cls];
	struct rw_fq_flow *f = n->flow;
	rw_list_remove(&n->link);
	n->flow = NULL;
	f->n--;
	c->n--;
	if (f->n == 0) {
		heap_del(&c->src[f->src], f);
		rw_list_insert_tail(&c->idle, &f->idle);
		c->nidle++;
		trim_idle(c);
	}
}

struct rw_fq_node *
rw_fq_pop(struct rw_fq *q)
{
	if (!q)
		return NULL;
	for (int i = 0; i < RW_FQ_NCLASS; i++) {
		struct rw_fq_cls *c = &q->c[i];
		struct rw_fq_src *sq = NULL;
		for (int k = 0; k < RW_FQ_SOURCES && !sq; k++) {
			int s = (c->next_src + k) % RW_FQ_SOURCES;
			if (c->src[s].nheap > 0) {
				sq = &c->src[s];
				c->next_src = (s + 1) % RW_FQ_SOURCES;
			}
		}
		if (!sq)
			continue;
		struct rw_fq_flow *f = sq->heap[0];
		struct rw_fq_node *n =
		    rw_list_entry(rw_list_first(&f->fifo), struct rw_fq_node, link);
		f->usage += c->unit;
		f->seq = ++c->seq;
		c->unit *= decay_step;
		if (f->n > 1)
			sift_down(sq, 0); /* its usage grew: behind its equals */
		unlink_node(q, n);
		if (c->unit > REBASE_AT)
			rebase(c);
		return n;
	}
	return NULL;
}

void
rw_fq_remove(struct rw_fq *q, struct rw_fq_node *n)
{
	if (!q || !n || !n->flow)
		return;
	unlink_node(q, n);
}

size_t
rw_fq_len(const struct rw_fq *q, int cls)
{
	size_t n = 0;
	if (!q)
		return 0;
	for (int i = 0; i < RW_FQ_NCLASS; i++)
		if (cls < 0 || cls == i)
			n += q->c[i].n;
	return n;
}

size_t
rw_fq_flows(const struct rw_fq *q, int cls)
{
	size_t n = 0;
	if (!q)
		return 0;
	for (int i = 0; i < RW_FQ_NCLASS; i++)
		if (cls < 0 || cls == i)
			for (int k = 0; k < RW_FQ_SOURCES; k++)
				n += q->c[i].src[k].nheap;
	return n;
}

size_t
rw_fq_idle_flows(const struct rw_fq *q, int cls)
{
	size_t n = 0;
	if (!q)
		return 0;
	for (int i = 0; i < RW_FQ_NCLASS; i++)
		if (cls < 0 || cls == i)
			n += q->c[i].nidle;
	return n;
}

size_t
rw_fq_flow_len(const struct rw_fq *q, int cls, const char *flow)
{
	const struct rw_fq_flow *f;
	if (!q || cls < 0 || cls >= RW_FQ_NCLASS)
		return 0;
	f = rw_kmap_get(&q->c[cls].flows, flow ? flow : "");
	return f ? f->n : 0;
}

double
rw_fq_usage(const struct rw_fq *q, int cls, const char *flow)
{
	const struct rw_fq_flow *f;
	if (!q || cls < 0 || cls >= RW_FQ_NCLASS)
		return 0;
	f = rw_kmap_get(&q->c[cls].flows, flow ? flow : "");
	return f ? f->usage / q->c[cls].unit : 0;
}

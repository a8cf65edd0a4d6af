/*
 * fairq.c - per-flow FIFOs served round robin, two classes by strict
 * priority (see fairq.h).
 *
 * A flow exists only while it has waiting nodes: it is created by the push
 * that finds none and freed by the pop or removal that empties it, so the
 * memory follows what waits and an idle cluster costs nothing here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fairq.h"

#define DEF_MAX_NORMAL 65536
#define DEF_MAX_BEST_EFFORT 1000

struct rw_fq_flow {
	struct rw_list rr;   /* in the class's round */
	struct rw_list fifo; /* struct rw_fq_node, oldest first */
	size_t n;
	char key[]; /* NUL-terminated */
};

void
rw_fq_init(struct rw_fq *q, size_t max_normal, size_t max_best_effort)
{
	memset(q, 0, sizeof(*q));
	for (int i = 0; i < RW_FQ_NCLASS; i++) {
		rw_kmap_init(&q->c[i].flows);
		rw_list_init(&q->c[i].round);
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
		struct rw_list *fl, *nl;
		RW_LIST_FOREACH (fl, &q->c[i].round) {
			struct rw_fq_flow *f = rw_list_entry(fl, struct rw_fq_flow, rr);
			RW_LIST_FOREACH (nl, &f->fifo)
				rw_list_entry(nl, struct rw_fq_node, link)->flow = NULL;
		}
		rw_kmap_fini(&q->c[i].flows, free);
		rw_list_init(&q->c[i].round);
		q->c[i].n = 0;
	}
}

int
rw_fq_push(struct rw_fq *q, struct rw_fq_node *n, const char *flow, int cls)
{
	struct rw_fq_cls *c;
	struct rw_fq_flow *f;
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
		if (rw_kmap_put(&c->flows, flow, f, NULL) != 0) {
			free(f);
			return -ENOMEM;
		}
		rw_list_insert_tail(&c->round, &f->rr);
	}
	n->cls = cls;
	n->flow = f;
	rw_list_insert_tail(&f->fifo, &n->link);
	f->n++;
	c->n++;
	return 0;
}

/* Unlink n from its flow; free the flow when that empties it. */
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
		rw_list_remove(&f->rr);
		rw_kmap_del(&c->flows, f->key);
		free(f);
	}
}

struct rw_fq_node *
rw_fq_pop(struct rw_fq *q)
{
	if (!q)
		return NULL;
	for (int i = 0; i < RW_FQ_NCLASS; i++) {
		struct rw_fq_cls *c = &q->c[i];
		struct rw_list *first = rw_list_first(&c->round);
		if (!first)
			continue;
		struct rw_fq_flow *f = rw_list_entry(first, struct rw_fq_flow, rr);
		struct rw_fq_node *n =
		    rw_list_entry(rw_list_first(&f->fifo), struct rw_fq_node, link);
		if (f->n > 1) {
			/* Its turn is used: to the end of the round. */
			rw_list_remove(&f->rr);
			rw_list_insert_tail(&c->round, &f->rr);
		}
		unlink_node(q, n);
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
			n += q->c[i].flows.n;
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

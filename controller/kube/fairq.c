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
	struct rw_fq_flow *rr_prev, *rr_next; /* in the class's round */
	struct rw_fq_node *head, *tail;
	size_t n;
	char key[]; /* NUL-terminated */
};

void
rw_fq_init(struct rw_fq *q, size_t max_normal, size_t max_best_effort)
{
	memset(q, 0, sizeof(*q));
	for (int i = 0; i < RW_FQ_NCLASS; i++)
		rw_kmap_init(&q->c[i].flows);
	q->c[RW_FQ_NORMAL].max = max_normal ? max_normal : DEF_MAX_NORMAL;
	q->c[RW_FQ_BEST_EFFORT].max = max_best_effort ? max_best_effort : DEF_MAX_BEST_EFFORT;
}

void
rw_fq_fini(struct rw_fq *q)
{
	if (!q)
		return;
	for (int i = 0; i < RW_FQ_NCLASS; i++) {
		struct rw_fq_flow *f = q->c[i].rr_head;
		while (f) {
			struct rw_fq_node *n = f->head;
			for (; n; n = n->next)
				n->flow = NULL;
			f = f->rr_next;
		}
		rw_kmap_fini(&q->c[i].flows, free);
		q->c[i].rr_head = q->c[i].rr_tail = NULL;
		q->c[i].n = 0;
	}
}

static void
rr_append(struct rw_fq_cls *c, struct rw_fq_flow *f)
{
	f->rr_next = NULL;
	f->rr_prev = c->rr_tail;
	if (c->rr_tail)
		c->rr_tail->rr_next = f;
	else
		c->rr_head = f;
	c->rr_tail = f;
}

static void
rr_unlink(struct rw_fq_cls *c, struct rw_fq_flow *f)
{
	if (f->rr_prev)
		f->rr_prev->rr_next = f->rr_next;
	else
		c->rr_head = f->rr_next;
	if (f->rr_next)
		f->rr_next->rr_prev = f->rr_prev;
	else
		c->rr_tail = f->rr_prev;
	f->rr_prev = f->rr_next = NULL;
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
		if (rw_kmap_put(&c->flows, flow, f, NULL) != 0) {
			free(f);
			return -ENOMEM;
		}
		rr_append(c, f);
	}
	n->cls = cls;
	n->flow = f;
	n->next = NULL;
	n->prev = f->tail;
	if (f->tail)
		f->tail->next = n;
	else
		f->head = n;
	f->tail = n;
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
	if (n->prev)
		n->prev->next = n->next;
	else
		f->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		f->tail = n->prev;
	n->prev = n->next = NULL;
	n->flow = NULL;
	f->n--;
	c->n--;
	if (f->n == 0) {
		rr_unlink(c, f);
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
		struct rw_fq_flow *f = c->rr_head;
		struct rw_fq_node *n;
		if (!f)
			continue;
		n = f->head;
		if (f->n > 1) {
			/* Its turn is used: to the end of the round. */
			rr_unlink(c, f);
			rr_append(c, f);
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

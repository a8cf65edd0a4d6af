/*
 * fairq.h - the API client's fair queue: what waits behind the client-side
 * QPS/burst token bucket, and in which order it gets the next token.
 *
 * Every waiting request belongs to a class and, within it, to a flow (a
 * string such as "namespace/cluster"; requests without a key share the flow
 * ""). Classes are served by strict priority: RW_FQ_BEST_EFFORT (Events) gets
 * a token only when no RW_FQ_NORMAL request waits, so it never delays an
 * object write. Within a class the flows are served round robin, one request
 * per turn (deficit round robin with a quantum of one request, since every
 * request costs one token), and each flow is FIFO. A flow that starts waiting
 * joins the end of the round, so it waits for at most one request of every
 * other waiting flow, however many requests those flows have queued.
 *
 * The queue is intrusive (the caller embeds a struct rw_fq_node in its own
 * record) and bounded per class: a push beyond the bound is refused. It does
 * no I/O and knows nothing of time, so it is tested on its own.
 */
#ifndef RW_FAIRQ_H
#define RW_FAIRQ_H

#include <stddef.h>

#include "kmap.h"
#include "rw/list.h"

enum rw_fq_class {
	RW_FQ_NORMAL = 0,      /* object reads and writes */
	RW_FQ_BEST_EFFORT = 1, /* Events: only when nothing else waits */
	RW_FQ_NCLASS = 2
};

struct rw_fq_flow;

/* Embedded in the caller's record; owned by the queue while pushed. */
struct rw_fq_node {
	struct rw_list link;	 /* in the flow's FIFO; meaningful only while queued */
	struct rw_fq_flow *flow; /* NULL while not queued (a zeroed node is not queued) */
	int cls;
};

struct rw_fq_cls {
	struct rw_kmap flows; /* flow key -> struct rw_fq_flow (waiting flows) */
	struct rw_list round; /* waiting flows, in service order */
	size_t n;	      /* nodes waiting */
	size_t max;	      /* bound on n */
};

struct rw_fq {
	struct rw_fq_cls c[RW_FQ_NCLASS];
};

/* An empty queue: at most max_normal / max_best_effort waiting nodes (0: 65536 / 1000). */
void rw_fq_init(struct rw_fq *q, size_t max_normal, size_t max_best_effort);

/* Release the flows. The nodes still queued are forgotten (they belong to the caller). */
void rw_fq_fini(struct rw_fq *q);

/*
 * Queue node n at the end of flow `flow` (NULL: "") of class cls. Returns 0,
 * -EINVAL (bad class, or n already queued), -ENOBUFS (the class is full) or
 * -ENOMEM.
 */
int rw_fq_push(struct rw_fq *q, struct rw_fq_node *n, const char *flow, int cls);

/* Take the next node to serve, or NULL when nothing waits. */
struct rw_fq_node *rw_fq_pop(struct rw_fq *q);

/* Take a queued node out of the queue (cancel); a node not queued is ignored. */
void rw_fq_remove(struct rw_fq *q, struct rw_fq_node *n);

/* Nodes waiting in class cls (-1: all classes). */
size_t rw_fq_len(const struct rw_fq *q, int cls);

/* Flows with waiting nodes in class cls (-1: all classes). */
size_t rw_fq_flows(const struct rw_fq *q, int cls);

/* Nodes waiting in one flow of class cls. */
size_t rw_fq_flow_len(const struct rw_fq *q, int cls, const char *flow);

#endif

/*
 * fairq.h - the API client's fair queue: what waits behind the client-side
 * QPS/burst token bucket, and in which order it gets the next token.
 *
 * Every waiting request belongs to a class and, within it, to a flow (a
 * string such as "namespace/cluster"; requests without a key share the flow
 * ""), and each flow to a source: the workload it is part of (the API
 * client's caller says which: RayClusters made by people and tools, the
 * RayJobs with their clusters, the RayServices with theirs). Classes are
 * served by strict priority: RW_FQ_BEST_EFFORT (Events) gets a token only
 * when no RW_FQ_NORMAL request waits, so it never delays an object write.
 * Within a class the sources with waiting flows take turns, one request
 * each, so a batch of a thousand RayJobs is one source and a cluster made
 * by hand meanwhile waits for one of its requests at a time, not for the
 * first requests of every cluster the batch makes. Each flow is FIFO.
 *
 * Within a source the flow with the least recent service goes first: every
 * request served adds one to its flow's usage, and usage halves every
 * RW_FQ_HALF_LIFE requests the class serves (ties: the flow that waited
 * longest, so equal flows take turns as in round robin). A flow that has
 * made no recent progress, such as a RayCluster created in the middle of a
 * batch of a thousand RayJobs, is therefore served ahead of the flows that
 * keep the queue full, and needs no turn of each of them per request. The
 * head start is bounded: a flow that starts waiting counts at least
 * min - RW_FQ_HEAD_START and at most min + RW_FQ_HEAD_START, min being the
 * least usage of the flows already waiting in its source. So a flow waits for at most
 * about 2 * RW_FQ_HEAD_START + 1 requests of each other flow, however long
 * their queues, and a heavy past costs a flow a bounded delay, not its turn.
 * Flows that stop waiting are remembered (their usage) while it matters,
 * at most RW_FQ_MAX_IDLE per class, oldest forgotten first.
 *
 * The queue is intrusive (the caller embeds a struct rw_fq_node in its own
 * record) and bounded per class: a push beyond the bound is refused. It does
 * no I/O and knows nothing of time (its clock is the requests it serves), so
 * it is tested on its own.
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

/*
 * Usage halves every RW_FQ_HALF_LIFE pops of the class (~164 s at --qps
 * 100): long enough that flows which keep the queue full count more than
 * RW_FQ_HEAD_START, so a newcomer gets its whole head start.
 */
#define RW_FQ_HALF_LIFE 16384
/* How far below (or above) the least-used waiting flow a flow may start. */
#define RW_FQ_HEAD_START 8
/* Idle flows remembered per class. */
#define RW_FQ_MAX_IDLE 8192

/* Sources (workloads) served in turn within a class. */
#define RW_FQ_SOURCES 4

/* One source's waiting flows, least (usage, seq) first. */
struct rw_fq_src {
	struct rw_fq_flow **heap;
	size_t nheap, capheap;
};

struct rw_fq_cls {
	struct rw_kmap flows; /* flow key -> struct rw_fq_flow (waiting or remembered) */
	struct rw_fq_src src[RW_FQ_SOURCES];
	int next_src;	     /* the source whose turn it is */
	struct rw_list idle; /* remembered flows, longest idle first */
	size_t nidle;
	size_t n;		/* nodes waiting */
	size_t max;		/* bound on n */
	double unit;		/* what one request adds to usage now (grows to decay the past) */
	unsigned long long seq; /* tie-break: order of joining or being served */
};

struct rw_fq {
	struct rw_fq_cls c[RW_FQ_NCLASS];
};

/* An empty queue: at most max_normal / max_best_effort waiting nodes (0: 65536 / 1000). */
void rw_fq_init(struct rw_fq *q, size_t max_normal, size_t max_best_effort);

/* Release the flows. The nodes still queued are forgotten (they belong to the caller). */
void rw_fq_fini(struct rw_fq *q);

/*
 * Queue node n at the end of flow `flow` (NULL: "") of class cls, the flow
 * belonging to `source` (0..RW_FQ_SOURCES-1; larger counts as the last).
 * Returns 0, -EINVAL (bad class, or n already queued), -ENOBUFS (the class
 * is full) or -ENOMEM.
 */
int rw_fq_push(struct rw_fq *q, struct rw_fq_node *n, const char *flow, int cls, unsigned source);

/* Take the next node to serve, or NULL when nothing waits. */
struct rw_fq_node *rw_fq_pop(struct rw_fq *q);

/* Take a queued node out of the queue (cancel); a node not queued is ignored. */
void rw_fq_remove(struct rw_fq *q, struct rw_fq_node *n);

/* Nodes waiting in class cls (-1: all classes). */
size_t rw_fq_len(const struct rw_fq *q, int cls);

/* Flows with waiting nodes in class cls (-1: all classes); remembered idle ones not counted. */
size_t rw_fq_flows(const struct rw_fq *q, int cls);

/* Idle flows remembered in class cls (-1: all classes); at most RW_FQ_MAX_IDLE per class. */
size_t rw_fq_idle_flows(const struct rw_fq *q, int cls);

/* Nodes waiting in one flow of class cls. */
size_t rw_fq_flow_len(const struct rw_fq *q, int cls, const char *flow);

/* A flow's usage, in requests served at the current weight (0 for an unknown flow). */
double rw_fq_usage(const struct rw_fq *q, int cls, const char *flow);

#endif

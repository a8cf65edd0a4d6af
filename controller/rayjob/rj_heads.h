/*
 * rj_heads.h - what the RayJobs ask of each cluster's head agent: follow a
 * job id, submit it (HTTPMode), stop it. Several RayJobs may use one cluster
 * (clusterSelector), so the wants are kept per RayJob and indexed per
 * cluster; the hub's reply to a head is composed from its cluster's wants
 * (rw_rj_heads_reply, pure). Bounded: a cluster serves at most
 * RW_RJ_HEADS_PER_CLUSTER RayJobs at a time (the head agent follows at most
 * RW_MAX_JOBS jobs); a further one waits (-ENOSPC) until one finishes.
 */
#ifndef RW_RJ_HEADS_H
#define RW_RJ_HEADS_H

#include <stdbool.h>

#include "kmap.h"
#include "rw/wire.h"

#define RW_RJ_HEADS_PER_CLUSTER RW_MAX_JOBS

struct rw_rj_want {
	char rayjob[512];  /* "ns/name" of the RayJob */
	char cluster[512]; /* "ns/cluster" of its RayCluster */
	char job_id[RW_ID_MAX];
	bool stop, submit;
	struct rw_job_submit sub; /* when submit: owned strings */
};

struct rw_rj_heads {
	struct rw_kmap by_job;	   /* RayJob key -> struct rw_rj_want */
	struct rw_kmap by_cluster; /* cluster key -> struct rw_rj_heads_cluster */
};

void rw_rj_heads_init(struct rw_rj_heads *h);
void rw_rj_heads_fini(struct rw_rj_heads *h);

/*
 * Set what rayjob asks of cluster's head: follow job_id, and stop it, or
 * submit it with *sub (whose strings move into the table, also on failure;
 * sub NULL: no submission). Replaces the RayJob's earlier want, wherever it
 * was. 0, -ENOSPC (the cluster serves too many RayJobs), -ENOMEM.
 */
int rw_rj_heads_set(struct rw_rj_heads *h, const char *rayjob, const char *cluster,
		    const char *job_id, bool stop, struct rw_job_submit *sub);

/* The RayJob asks nothing any more. */
void rw_rj_heads_drop(struct rw_rj_heads *h, const char *rayjob);

/* The wants on cluster's head (at most max); returns how many. */
int rw_rj_heads_of(const struct rw_rj_heads *h, const char *cluster, const struct rw_rj_want **out,
		   int max);

/*
 * Add to out what cluster's head (its report rep) should be told: every
 * followed job the report lacks in watch_jobs (submissions excepted: the
 * submit makes the agent follow them), the first stop, and the first
 * submission the report lacks, else the first whose submission failed
 * (the agent retries it after its back-off; copied strings). Pure.
 */
int rw_rj_heads_reply(const struct rw_rj_heads *h, const char *cluster, const struct rw_report *rep,
		      struct rw_reply *out);

#endif

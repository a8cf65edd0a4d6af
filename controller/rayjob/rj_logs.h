/*
 * rj_logs.h - driver logs that survive the RayCluster. When a Ray job ends,
 * its head agent sends the last 64 KiB of the driver log once (docs/protocol.md,
 * "The log tail is sent once"); the RayJob reconciler keeps it in the
 * ConfigMap <rayjob>-driver-log, owned by the RayJob, so `kubectl get
 * configmap <rayjob>-driver-log -o jsonpath='{.data.driver\.log}'` shows it
 * after the cluster is deleted, in every submission mode.
 *
 * The store between the hub's report and the reconcile that writes the
 * ConfigMap is bounded: at most RW_RJ_LOGS_MAX_PENDING tails wait, each at
 * most RW_LOG_TAIL_MAX bytes; a tail that finds the store full is dropped
 * and logged.
 */
#ifndef RW_RJ_LOGS_H
#define RW_RJ_LOGS_H

#include <stdbool.h>
#include <stddef.h>

#include "kmap.h"
#include "rw/buf.h"
#include "rw/wire.h"

#define RW_RJ_LOGS_MAX_PENDING 256
#define RW_RJ_LOGS_SUFFIX "-driver-log"

/* A tail waiting to be written. */
struct rw_rj_log {
	char job_id[RW_ID_MAX];
	char *tail; /* owned */
	bool truncated;
	char error[RW_REASON_MAX];
};

/* Pending tails by RayJob key ("ns/name"). */
struct rw_rj_logs {
	struct rw_kmap pending;
};

void rw_rj_logs_init(struct rw_rj_logs *l);
void rw_rj_logs_fini(struct rw_rj_logs *l);

/*
 * Keep the tail of job (from a head report) for the RayJob rayjob_key whose
 * current job id is job_id. 1 kept, 0 not this job's or no tail, -ENOSPC
 * (store full), -ENOMEM.
 */
int rw_rj_logs_offer(struct rw_rj_logs *l, const char *rayjob_key, const char *job_id,
		     const struct rw_job *job);

/* The pending tail of rayjob_key, or NULL. */
const struct rw_rj_log *rw_rj_logs_get(const struct rw_rj_logs *l, const char *rayjob_key);

/* Forget rayjob_key's pending tail (written, or the RayJob is gone). */
void rw_rj_logs_drop(struct rw_rj_logs *l, const char *rayjob_key);

/*
 * The ConfigMap <name>-driver-log for the RayJob (ns, name, uid) holding
 * log: data driver.log, jobId, and truncated/error when set; labels as
 * KubeRay's RayJob-made objects; a (non-controller) ownerReference to the
 * RayJob so the garbage collector removes it with the RayJob. Pure.
 */
int rw_rj_logs_configmap(const char *ns, const char *name, const char *uid,
			 const struct rw_rj_log *log, struct rw_buf *out);

#endif

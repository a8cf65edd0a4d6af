/*
 * podgroup.h - the API calls behind the batch schedulers' PodGroups
 * (raycluster/batchsched.h builds them), shared by the RayCluster and RayJob
 * reconcilers: make sure one exists before the pods (KubeRay's syncPodGroup),
 * and delete a RayJob's when it finishes.
 */
#ifndef RW_PODGROUP_H
#define RW_PODGROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "reconcile.h"

/*
 * GET collection/<desired's metadata.name>; when absent POST desired (a
 * concurrent create, 409, counts as done); when present and update is set,
 * merge-patch spec.minMember and spec.minResources if they differ
 * (rw_bs_podgroup_patch). The job waits for the calls; any other answer
 * fails it (the pods wait for the next pass, as in KubeRay where the error
 * ends reconcilePods). Returns 0 or -ENOMEM (nothing started).
 */
int rw_podgroup_sync(struct rw_rec_job *j, const char *collection, const char *desired,
		     bool update);

/*
 * KubeRay's CleanupOnCompletion for a finished RayJob: DELETE
 * collection/name. A deletion is told with a BatchSchedulerCleanedUp Event, a
 * failure with a FailedToCleanupBatchScheduler Warning; neither fails the job
 * (the RayJob's own cleanup goes on) and 404 is quiet. Returns 0 or -ENOMEM.
 */
int rw_podgroup_delete(struct rw_rec_job *j, const char *collection, const char *name,
		       const char *kind);

#endif

/*
 * rayservice.h - the RayService reconciler (rw_rayservice_ctl_*): wires the pure
 * RayService logic (rs_build.h, rs_serve.h, rs_status.h) to the API server
 * and to the agent hub, asynchronously on the controller's loop.
 *
 * A reconcile per RayService ("namespace/name"): the finalizer, validation,
 * the deletion of unreferenced clusters after rayClusterDeletionDelaySeconds,
 * the pending cluster (created, or updated in place), the `<rs>-head-svc` and
 * `<rs>-serve-svc` (created once a cluster can serve, switched only by
 * selector), and the status (written only when it changed). Deletion deletes
 * every owned RayCluster and releases the finalizer once they are gone.
 *
 * Between reconciles the agents drive it: the RayCluster reconciler's hub
 * calls this module's hooks for the pods of RayService-owned clusters. The
 * head agent's reply carries the serve config (the controller never calls a
 * dashboard), every pod's `ray.io/serve` label follows its own proxy as its
 * agent reports it, and a head report re-runs the RayService's reconcile.
 * See docs/controller.md, section "RayService reconciler".
 */
#ifndef RW_RAYSERVICE_H
#define RW_RAYSERVICE_H

#include "manager.h"

/* The reconciler, for main.c's controller table (after the RayCluster reconciler). */
extern const struct rw_mgr_controller rw_rayservice_controller;

/* The finalizer that makes a RayService's deletion wait for its RayClusters. */
#define RW_RAYSERVICE_CTL_FINALIZER "ray.io/rayservice-finalizer"

#endif

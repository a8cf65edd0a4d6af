/*
 * expect.h - scale expectations, as KubeRay's (controllers/ray/expectations):
 * pending pod creates and deletes per (namespace/cluster, group), so a
 * reconcile that runs before the informer has seen its own writes does not
 * create duplicate pods or delete twice.
 *
 * A group is "satisfied" when every pod it created has been observed by the
 * informer (added) and every pod it deleted has been observed gone, or when
 * an expectation is older than the timeout (30 s like KubeRay), after which
 * the cache is trusted again. The head group is "" by convention and waits
 * longer (RW_EXP_HEAD_TIMEOUT_MS, kube-controller-manager's ReplicaSet
 * expectations timeout): a second head pod is a dead end ("more than one head
 * pod"), while a spare worker is scaled away, and under an overloaded API
 * server the pod watch can lag the cluster's own create by over 30 s (seen in
 * tests/bench/side-by-side-rayjob: 207 of 1,000 clusters got a second head).
 */
#ifndef RW_EXPECT_H
#define RW_EXPECT_H

#include <stdbool.h>
#include <stdint.h>

struct rw_exp;

#define RW_EXP_HEAD_TIMEOUT_MS 300000

/* timeout_ms 0 = 30000; the head group's is the larger of it and RW_EXP_HEAD_TIMEOUT_MS. */
int rw_exp_new(uint64_t timeout_ms, struct rw_exp **out);
void rw_exp_free(struct rw_exp *e);

/* Record a pod create/delete request for (scope, group) at now_ms. */
int rw_exp_expect_create(struct rw_exp *e, const char *scope, const char *group, const char *pod,
			 uint64_t now_ms);
int rw_exp_expect_delete(struct rw_exp *e, const char *scope, const char *group, const char *pod,
			 uint64_t now_ms);

/* The informer saw pod added / deleted: lowers the matching expectation. */
void rw_exp_observe_add(struct rw_exp *e, const char *scope, const char *group, const char *pod);
void rw_exp_observe_delete(struct rw_exp *e, const char *scope, const char *group, const char *pod);

/* A create/delete request failed: forget its expectation (nothing will be observed). */
void rw_exp_forget(struct rw_exp *e, const char *scope, const char *group, const char *pod);

/* No pending (unexpired) expectation for (scope, group)? Drops expired ones. */
bool rw_exp_satisfied(struct rw_exp *e, const char *scope, const char *group, uint64_t now_ms);

/* Pending creates and deletes of (scope, group), expired ones included. */
int rw_exp_pending(const struct rw_exp *e, const char *scope, const char *group);

/* Drop everything of scope (the cluster was deleted). */
void rw_exp_clear(struct rw_exp *e, const char *scope);

#endif

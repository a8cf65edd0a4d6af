/*
 * lease.h - leader election on a coordination.k8s.io/v1 Lease, with
 * client-go's rules and defaults (lease duration 15 s, renew deadline 10 s,
 * retry period 2 s):
 *
 * - a candidate reads the Lease every retry period and takes it (create, or
 *   update with the observed resourceVersion) when it is free: no holder, or
 *   the holder's record has not changed for a lease duration as measured on
 *   this process's own clock since it last saw the record change;
 * - the leader renews every retry period; when no renewal has succeeded
 *   within the renew deadline, counted from the start of the last successful
 *   renewal request, it calls on_stop and becomes a candidate again. As the
 *   deadline is shorter than the duration, it stops acting before any other
 *   candidate can see the lease as expired;
 * - rw_lease_release() on a clean shutdown hands the Lease back (empty
 *   holder), so a standby takes over at its next retry.
 *
 * Lease requests skip the client's QPS limiter, so a busy reconcile queue
 * never costs the leadership.
 */
#ifndef RW_LEASE_H
#define RW_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "kube.h"

struct rw_lease;

struct rw_lease_opts {
	const char *ns;		    /* namespace of the Lease */
	const char *name;	    /* default "raywarden-controller-leader" */
	const char *identity;	    /* holder identity; default hostname_<random> */
	uint64_t lease_ms;	    /* default 15000 */
	uint64_t renew_deadline_ms; /* default 10000 */
	uint64_t retry_ms;	    /* default 2000 */
	void (*on_start)(void *ud); /* became leader */
	void (*on_stop)(void *ud);  /* lost leadership: stop acting now */
	void (*on_change)(const char *holder, void *ud); /* observed holder changed (may be NULL) */
	void *ud;
};

int rw_lease_new(struct rw_kube *k, const struct rw_lease_opts *opts, struct rw_lease **out);

/* Begin campaigning. */
int rw_lease_start(struct rw_lease *l);

bool rw_lease_is_leader(const struct rw_lease *l);
const char *rw_lease_identity(const struct rw_lease *l);
/* Holder last observed ("" when none). */
const char *rw_lease_holder(const struct rw_lease *l);

/*
 * Stop campaigning. If leader, give the Lease up (holder "") and call done
 * when the write has finished (or failed); otherwise call done from the
 * loop at once. on_stop is not called by a release.
 */
void rw_lease_release(struct rw_lease *l, void (*done)(void *ud), void *ud);

/* Test hook: while blocked, this process sends no Lease requests at all. */
void rw_lease_block(struct rw_lease *l, bool blocked);

/* Free (stop first); handles close asynchronously. NULL-safe. */
void rw_lease_free(struct rw_lease *l);

/* The leader_election_master_status family (registered by the manager from the start, as
 * controller-runtime does, and set by a lease). */
struct rw_met_family *rw_lease_metric(struct rw_met *met);

#endif

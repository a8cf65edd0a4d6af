/*
 * podpatch.h - one bounded, coalescing patch writer per pod field the
 * controller keeps in line with agent reports (the ray.io/agent-ready
 * readiness gate, the RayService's ray.io/serve label).
 *
 * Each pod ("ns/name") has a desired value (a small state code the user
 * names, 0 meaning "unknown", plus a message) computed on demand by the
 * user's want() from the newest report, and the value the pod holds (what
 * we last wrote, else what the pod cache says). rw_pp_sync compares them
 * and, when they differ, sends the user's patch (build()):
 *   - one patch per pod in flight; a sync that arrives meanwhile marks the
 *     pod and it is synced again, from the newest state, when the answer
 *     comes;
 *   - at most max_inflight patches in flight in all; a pod that finds every
 *     slot taken waits in a FIFO once, however many syncs arrive meanwhile,
 *     and is synced from its newest state when a slot frees (newest state
 *     wins: a pod that flipped and flipped back costs nothing);
 *   - a failed patch forgets what was written (the cache is compared again)
 *     and calls retry() (e.g. requeue the owner's reconcile, which syncs
 *     again); 404 or a forgotten pod (rw_pp_forget: pod deleted) drops the
 *     pod's state, after its patch answered if one was in flight.
 * Requests go straight to the API client (priority requests skip its QPS
 * queue when build() sets kr->priority) and are cancelled by rw_pp_free.
 * Memory: one small record per pod synced, dropped with the pod.
 */
#ifndef RW_PODPATCH_H
#define RW_PODPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "informer.h"
#include "kube.h"
#include "rw/buf.h"

/* A pod field's value: state (user-named, 0 unknown) and a message ("" none). */
#define RW_PP_MSG 256
struct rw_pp_val {
	int state;
	char msg[RW_PP_MSG];
};

struct rw_pp_ops {
	/*
	 * The value pod p should hold now (*want) and what the pod cache says it
	 * holds (*cached). false: leave the pod alone (no report yet, not ours,
	 * not leading...). Required.
	 */
	bool (*want)(void *ud, const struct rw_inf_pod *p, struct rw_pp_val *want,
		     struct rw_pp_val *cached);
	/*
	 * Write into body the patch that makes pod p take value v (flip: the
	 * state changes, not only the message). kr comes filled in (a PATCH of
	 * the pod or its subresource, patch_type, priority 1); build may adjust
	 * it. Non-zero: nothing is sent. Required.
	 */
	int (*build)(void *ud, const struct rw_inf_pod *p, const struct rw_pp_val *v, bool flip,
		     struct rw_kube_req *kr, struct rw_buf *body);
	/*
	 * Every answer (metrics, trace): the pod's key, the value sent, whether
	 * it succeeded, when the pod first differed from its desired value
	 * (uv_hrtime, 0 unknown) and when the patch was sent. Optional.
	 */
	void (*answered)(void *ud, const char *key, const struct rw_pp_val *v,
			 const struct rw_kube_resp *resp, bool ok, uint64_t t_want,
			 uint64_t t_sent);
	/* A failed patch (not 404) of pod p, still in the cache: the retry path. Optional. */
	void (*retry)(void *ud, const struct rw_inf_pod *p);
	/* What is patched: "status" or NULL (the pod itself), and the patch's content type. */
	const char *subresource;
	const char *patch_type;
};

struct rw_pp;

/*
 * pods: the pod informer the pods are looked up in when their turn comes.
 * max_inflight <= 0 means 32. name is for log lines. 0 or -ENOMEM.
 */
int rw_pp_new(struct rw_kube *k, struct rw_inf *pods, const char *name, int max_inflight,
	      const struct rw_pp_ops *ops, void *ud, struct rw_pp **out);

/* Bring pod p in line (on pod events, reports, reconciles). */
void rw_pp_sync(struct rw_pp *pp, const struct rw_inf_pod *p);

/* Pod p was deleted: drop its state (after its patch, if one is in flight). */
void rw_pp_forget(struct rw_pp *pp, const struct rw_inf_pod *p);

/* Cancel the patches in flight (no callbacks) and free. NULL-safe. */
void rw_pp_free(struct rw_pp *pp);

/* Patches in flight, pods waiting for a slot, pods with state (tests, metrics). */
int rw_pp_inflight(const struct rw_pp *pp);
size_t rw_pp_waiting(const struct rw_pp *pp);
size_t rw_pp_pods(const struct rw_pp *pp);

/* ---- the queueing decisions (pure; exported for tests) ---- */

/* What rw_pp_sync does with a pod. */
enum rw_pp_act {
	RW_PP_IN_SYNC = 0, /* the pod holds the desired value: nothing */
	RW_PP_MARK_AGAIN,  /* its patch is in flight: sync again from the newest when it answers */
	RW_PP_WAITING,	   /* it waits in the FIFO already: synced from the newest on its turn */
	RW_PP_ENQUEUE,	   /* differs, every slot taken: wait in the FIFO */
	RW_PP_SEND	   /* differs, a slot is free: patch now */
};

struct rw_pp_in {
	bool inflight, queued;	       /* the pod's patch in flight; the pod in the FIFO */
	const struct rw_pp_val *sent;  /* what we last wrote (NULL or state 0: unknown) */
	const struct rw_pp_val *cache; /* what the pod cache says */
	const struct rw_pp_val *want;
	int slots_used, max_inflight;
};

/* *flip (may be NULL): the state, not only the message, changes (RW_PP_SEND/ENQUEUE). */
enum rw_pp_act rw_pp_decide(const struct rw_pp_in *in, bool *flip);

/* What an answer to a pod's patch does with the pod's state. */
enum rw_pp_done {
	RW_PP_D_SYNCED = 0, /* written; sync again if marked meanwhile */
	RW_PP_D_FAILED,	    /* forget what was written, take the retry path */
	RW_PP_D_DROP,	    /* pod gone (forgotten, or 404): drop; sync again if marked */
};

enum rw_pp_done rw_pp_answer(bool forgotten, long status, bool ok);

#endif

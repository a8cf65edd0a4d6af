/*
 * reconcile.h - the reconcile runtime every kind (RayCluster, RayService,
 * RayJob) plugs into, after controller-runtime's split: a controller
 * (struct rw_rec_ctl) owns the work queue of its kind, the requeue policy and
 * the per-kind reconcile metrics; a reconciler is a table of callbacks
 * (struct rw_rec_kind) whose steps take a job from a key to a result.
 *
 * One reconcile of one key is a job (struct rw_rec_job): the runtime creates
 * it when the work queue hands out the key (never while the kind's caches are
 * still listing), runs its steps in order, waits between steps for the API
 * requests the step started (struct rw_rec_req, each tied to its job), and
 * finishes it with one rw_wq_done() carrying the result the policy decides.
 * Everything is on the one event loop: no locks.
 *
 * The runtime includes no reconciler header; reconcilers include this one.
 */
#ifndef RW_RECONCILE_H
#define RW_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "doc.h"
#include "events.h"
#include "informer.h"
#include "kube.h"
#include "manager.h"
#include "metrics.h"
#include "workqueue.h"

struct rw_rec_ctl;
struct rw_rec_job;
struct rw_rec_req;

/* ---- requeue policy (pure) ---- */

/*
 * When a finished reconcile runs again. KubeRay's intervals are the kinds'
 * configuration (docs/controller.md, "Requeue policy"):
 * - RayCluster: idle_ms = RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV (300 s),
 *   no busy period, a step's request replaces the period (the 10 s wait for
 *   the head's deletion stays 10 s whatever the env says);
 * - RayService: busy_ms 2 s (KubeRay's period), idle_ms 60 s (a safety net:
 *   events drive the rest), a step's request only makes it sooner.
 * Failures are not timed here: the work queue backs a failing key off
 * exponentially (rw_wq_backoff_ms: 5 ms doubling to 1000 s), like
 * controller-runtime's rate limiter.
 */
struct rw_rec_policy {
	uint64_t busy_ms;     /* period of a job marked busy (not steady); 0: idle_ms */
	uint64_t idle_ms;     /* period of a steady object; 0: none */
	bool soonest;	      /* a requested requeue may only shorten the period */
	uint64_t unsynced_ms; /* a key handed out before the caches synced runs after this */
};

enum rw_rec_result {
	RW_REC_SUCCESS = 0,   /* done; no requeue */
	RW_REC_ERROR,	      /* failed; the work queue backs the key off */
	RW_REC_REQUEUE,	      /* again now, rate limited (no kind asks for it yet) */
	RW_REC_REQUEUE_AFTER, /* again after *delay_ms */
};

/*
 * The result of a finished job and its requeue delay (0 for none): err != 0
 * is an error; stop (the object is gone, invalid, managed elsewhere, deleted)
 * is a success without requeue; else the period (busy or idle) merged with
 * the requested delay (0: none requested) as the policy says. Pure.
 */
enum rw_rec_result rw_rec_decide(const struct rw_rec_policy *p, int err, bool busy, bool stop,
				 uint64_t requested_ms, uint64_t *delay_ms);

/* controller-runtime's result label: "success", "error", "requeue", "requeue_after". */
const char *rw_rec_result_label(enum rw_rec_result r);

/* ---- the callback table of a kind ---- */

struct rw_rec_step {
	const char *name;		   /* for the debug log */
	void (*run)(struct rw_rec_job *j); /* NULL: the job is done */
	/*
	 * > 0: the step after this one, whatever the step set in j->step
	 * (a terminal step jumps to the done step); 0: the next in the table
	 * or the one the step chose.
	 */
	int then;
};

/*
 * The workload a reconcile's requests and a new object belong to: its work
 * queue first-lane group and its API fair-queue source. Workloads take turns
 * in both, so a thousand RayJobs (with their clusters) do not queue a
 * RayCluster someone creates meanwhile.
 */
enum rw_rec_source {
	RW_REC_SRC_DIRECT = 0,	   /* objects made by people and tools */
	RW_REC_SRC_RAYJOB = 1,	   /* RayJobs and the clusters they make */
	RW_REC_SRC_RAYSERVICE = 2, /* RayServices and the clusters they make */
};

/* The source of an object from its ray.io/originated-from-crd label (NULL: direct). */
unsigned rw_rec_source_of(const char *originated_from_crd);

struct rw_rec_kind {
	const char *name; /* controller label and work queue name: "raycluster" */
	const char *kind; /* API kind of the object, for Events: "RayCluster" */
	/* Where the objects live (its api_path and resource name the object's URL). */
	const struct rw_inf_type *type;
	/* The source of its objects and requests (a job may change its own: j->source). */
	unsigned source;
	const struct rw_rec_step *steps;
	int nsteps; /* a step index out of range finishes the job */
	/*
	 * Where a failure jumps: once j->err is set, the steps after the first
	 * (load) and before this one are skipped (stop at the first failure,
	 * then write the status, like KubeRay). Steps from here on still run.
	 */
	int fail_step;
	/* The kind's job record: a struct rw_rec_job first, the kind's fields after. */
	size_t job_size;
	/* Every cache the kind reads has finished its first list. */
	bool (*synced)(void *ud);
	/* Optional: set up the kind's fields of a new job (zeroed, rec filled in). */
	void (*job_init)(struct rw_rec_job *j);
	/* Optional: release the kind's fields (the record itself is freed by the runtime). */
	void (*job_fini)(struct rw_rec_job *j);

	/*
	 * The load step, rw_rec_step_load, first in every kind's table:
	 * - find: the object j->ns/j->name in the kind's cache, or NULL;
	 * - gone (optional): it left the cache: drop the kind's state of it;
	 *   the job stops (owner references let the API server collect the rest);
	 * - parse: the object into the kind's job record; its UID, or NULL
	 *   with the reason in err (unparsable: logged, not retried until the
	 *   object changes);
	 * - attach (optional): find or make the kind's state of the object;
	 *   non-zero (out of memory) aborts the job for the back-off to retry.
	 * A deleted object (deletionTimestamp set) then jumps to delete_step with
	 * j->deleted_at set; any other goes on to the next step.
	 */
	const struct rw_inf_json *(*find)(struct rw_rec_job *j);
	void (*gone)(struct rw_rec_job *j);
	const char *(*parse)(struct rw_rec_job *j, const struct rw_inf_json *o, char *err,
			     size_t errlen);
	int (*attach)(struct rw_rec_job *j);
	int delete_step;
};

/* ---- jobs and requests ---- */

/*
 * One reconcile in flight. A kind's job record starts with this struct
 * (static_assert its offset is 0), so a struct rw_rec_job * is the kind's
 * record and the other way round.
 */
struct rw_rec_job {
	struct rw_rec_job *prev, *next; /* the controller's jobs */
	struct rw_rec_ctl *ctl;
	void *ud; /* the kind's state (the ud given to rw_rec_ctl_init) */
	char *key;
	char ns[256], name[256];
	char uid[64]; /* of the object, once loaded: Events name it */
	int step;
	int pending; /* requests in flight: the next step waits for them */
	bool finished;
	bool busy;	   /* not steady: the busy period applies */
	bool stop_requeue; /* no periodic requeue */
	/* A create was refused because the namespace is being deleted: that failure is not
	 * an error, and no Event is written (it would be refused too). */
	bool ns_terminating;
	bool in_ns_refusal; /* inside the callback of such an answer */
	int err;	    /* first failure */
	char fail_reason[64];
	char fail_msg[768];
	uint64_t requeue_ms; /* soonest requested requeue; 0 none */
	uint64_t t0;	     /* uv_hrtime at start */
	int64_t deleted_at;  /* the object's deletionTimestamp (Unix s), 0 if none */
	unsigned source;     /* the fair-queue source of its requests (kind's by default) */
};

typedef void (*rw_rec_req_cb)(struct rw_rec_req *q, const struct rw_kube_resp *resp);

/* One API request of a controller, in flight. */
struct rw_rec_req {
	struct rw_rec_req *prev, *next; /* the controller's requests */
	struct rw_rec_ctl *ctl;
	void *r;   /* the kind's state */
	void *job; /* the kind's job record, NULL for a request outside a reconcile */
	struct rw_kube_op *op;
	rw_rec_req_cb cb;
	char *s1, *s2; /* the caller's strings (copied; s1 is wiped before it is freed) */
	void *ptr;
	int kind;
	uint64_t t0; /* uv_hrtime at start */
};

/* How requests reach the API (rw_kube_request's shape); tests put a fake here. */
typedef int (*rw_rec_submit_fn)(struct rw_kube *k, const struct rw_kube_req *req, rw_kube_cb cb,
				void *ud, struct rw_kube_op **opp);

/* A controller: one kind's work queue, jobs, requests and metrics. */
struct rw_rec_ctl {
	const struct rw_rec_kind *kind;
	struct rw_rec_policy policy;
	void *ud;
	struct rw_kube *kube;
	struct rw_ev *ev;
	struct rw_wq *wq; /* NULL: results go nowhere (tests) */
	rw_rec_submit_fn submit;
	struct rw_rec_req *reqs; /* every request in flight */
	struct rw_rec_job *jobs; /* every reconcile in flight */
	bool closing;
	struct rw_met_family *m_total, *m_errors, *m_time, *m_terminal, *m_panics, *m_workers;
	struct rw_met_family *m_status; /* raywarden_<name>_status_writes_total{result} */
};

/*
 * Set up c for kind with policy (copied) and the kind's state ud, without a
 * work queue: kube and ev may be NULL, submit NULL means rw_kube_request,
 * met NULL means no metrics. kind must outlive c. Returns 0.
 */
int rw_rec_ctl_init(struct rw_rec_ctl *c, const struct rw_rec_kind *kind,
		    const struct rw_rec_policy *policy, void *ud, struct rw_kube *kube,
		    struct rw_ev *ev, struct rw_met *met, rw_rec_submit_fn submit);

/*
 * rw_rec_ctl_init with the manager's client, recorder and registry, plus
 * the manager's work queue named kind->name feeding rw_rec_reconcile.
 * Returns 0 or -ENOMEM (c->wq not created).
 */
int rw_rec_ctl_setup(struct rw_rec_ctl *c, struct rw_mgr *m, const struct rw_rec_kind *kind,
		     const struct rw_rec_policy *policy, void *ud);

/*
 * Teardown: cancel every request (no callback runs) and free every job (no
 * rw_wq_done after this). The work queue belongs to the manager. NULL-safe.
 */
void rw_rec_ctl_fini(struct rw_rec_ctl *c);

/* Start reconciling key (the work queue's callback; exactly one rw_wq_done follows). */
void rw_rec_reconcile(struct rw_rec_ctl *c, const char *key);

/* Run j's steps until one waits for requests or the job finishes (and is freed). */
void rw_rec_run(struct rw_rec_job *j);

/*
 * Start an API request for job (the kind's job record, or NULL outside a
 * reconcile): cb (may be NULL) runs with the answer, then the job resumes
 * once no request of it is left. A job's requests share one flow, its key,
 * of the job's source in the client's fair queue unless kr names one. s1, s2 are copied.
 * Returns 0, or an error of rw_kube_request or -ENOMEM (cb never runs).
 */
int rw_rec_request(struct rw_rec_ctl *c, void *job, const struct rw_kube_req *kr, rw_rec_req_cb cb,
		   const char *s1, const char *s2, void *ptr);

/* An Event on the job's object (action "Reconcile"). */
void rw_rec_emit(struct rw_rec_job *j, int warning, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Record a failure (err 0 means -EIO). The first one is kept (reason and
 * message feed the kind's status) and logged as a warning; later ones are
 * logged at debug level.
 */
void rw_rec_fail(struct rw_rec_job *j, int err, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * The object needs nothing more (gone, unparsable, invalid, managed
 * elsewhere): the job ends once the current step's requests are answered,
 * with no periodic requeue (a watch event brings the key back).
 */
void rw_rec_stop(struct rw_rec_job *j);

/* The load step every kind starts with (see struct rw_rec_kind). */
void rw_rec_step_load(struct rw_rec_job *j);

/*
 * Fail and end the job at once, without the status steps: for a failure of
 * the controller itself (out of memory), which the work queue's back-off
 * retries.
 */
void rw_rec_abort(struct rw_rec_job *j, int err, const char *why);

/*
 * Is the object managed by another controller (managed_by, its
 * spec.managedBy, set and not KubeRay's "ray.io/kuberay-operator")? Then the
 * job stops and the kind leaves the object alone, as KubeRay does for
 * MultiKueue.
 */
bool rw_rec_managed_elsewhere(struct rw_rec_job *j, const char *managed_by);

/*
 * Add finalizer to the job's object (root, as loaded) unless it is there: a
 * JSON patch, which creates metadata.finalizers when the object has none.
 * A failure to start the request fails the job.
 */
void rw_rec_add_finalizer(struct rw_rec_job *j, const struct rw_doc_node *root,
			  const char *finalizer);

/*
 * Remove finalizer (at index, as rw_doc_finalizer_index found it in the
 * loaded object) with a JSON patch that first tests it is still there, so a
 * concurrent change of the list fails the patch instead of removing another
 * entry. cb as rw_rec_patch's. Returns as rw_rec_request.
 */
int rw_rec_remove_finalizer(struct rw_rec_job *j, int index, const char *finalizer,
			    rw_rec_req_cb cb);

/* Ask for a requeue after ms (the soonest request wins; 0 asks nothing). */
void rw_rec_requeue(struct rw_rec_job *j, uint64_t ms);

/*
 * rw_rec_request for a JSON body: method "POST" (create, to a collection),
 * "PUT" (update) or "PATCH" (a merge patch), with the content type and the
 * verb (create, update, patch) that go with it.
 */
int rw_rec_send(struct rw_rec_job *j, const char *method, const char *path, const char *body,
		size_t len, rw_rec_req_cb cb, const char *s1, const char *s2, void *ptr);

/*
 * rw_rec_request for a DELETE of path with propagationPolicy Background: the
 * object goes at once and the garbage collector removes its dependents, as
 * KubeRay deletes the clusters and Jobs it owns.
 */
int rw_rec_delete(struct rw_rec_job *j, const char *path, rw_rec_req_cb cb, const char *s1,
		  const char *s2);

/* ---- Services that follow a cluster ---- */

enum rw_rec_svc_action {
	RW_REC_SVC_KEEP = 0, /* the selector points at the same cluster: leave it alone */
	RW_REC_SVC_SWITCH    /* send `out` as a JSON merge patch */
};

/*
 * Compare an existing Service with the desired one by the ray.io/cluster
 * selector only (KubeRay's reconcileServices of RayService and RayJob). On a
 * switch, out gets a JSON merge patch {"spec": desired spec} without
 * clusterIP/clusterIPs (immutable), whose selector nulls the existing keys
 * the desired selector lacks: one write makes the selector exactly the
 * desired one (traffic moves atomically), and it needs the `patch` verb
 * rather than `update` (KubeRay PUTs the whole object). Spec fields the
 * desired spec omits keep their server values. Pure. Returns 0 or -EINVAL
 * for unparsable input.
 */
int rw_rec_service_switch(const char *existing, size_t elen, const char *desired, size_t dlen,
			  enum rw_rec_svc_action *act, struct rw_buf *out);

/*
 * The Service desired (JSON with metadata.name) in the job's namespace:
 * created when the cache svc_inf does not hold it, else switched as
 * rw_rec_service_switch says. Events CreatedService / UpdatedService; a
 * refused write is a FailedToCreateService / FailedToUpdateService Warning
 * and fails the job (the back-off retries). A 409 on create is an earlier
 * pass's Service the cache has not shown yet, not a failure.
 */
void rw_rec_apply_service(struct rw_rec_job *j, const struct rw_inf *svc_inf, const char *desired,
			  size_t len);

/* ---- requests on the job's own object ---- */

/*
 * JSON patch (RFC 6902) of the job's object, e.g. its finalizers. cb NULL:
 * a non-2xx answer fails the job with "<what>: HTTP <status> <message>".
 * Returns as rw_rec_request.
 */
int rw_rec_patch(struct rw_rec_job *j, const char *patch, rw_rec_req_cb cb, const char *what);

/*
 * PUT body (the whole object with its new status) to the object's /status
 * (controller-runtime's Status().Update()); s1 is handed to cb. cb NULL:
 * rw_rec_status_answer alone. Returns as rw_rec_request.
 */
int rw_rec_put_status(struct rw_rec_job *j, const char *body, size_t len, rw_rec_req_cb cb,
		      const char *s1);

/*
 * What every kind does with the answer to its status write: count it in
 * raywarden_<name>_status_writes_total{result="ok"|"error"}; 409 (someone
 * wrote a newer object) reconciles again after 20 ms with it; any other
 * failure fails the job with -EAGAIN. Returns rw_rec_ok(resp->status).
 */
bool rw_rec_status_answer(struct rw_rec_job *j, const struct rw_kube_resp *resp);

/* ---- small pure helpers ---- */

/* A 2xx HTTP status. */
bool rw_rec_ok(long status);

/*
 * Queue the object ns/name (nothing before the work queue exists).
 * rw_rec_object_handlers: informer handlers that queue every object they see
 * (add through rw_rec_enqueue_added, update, delete), with the controller as
 * ud; for the kind's own resource or anything named like it.
 */
void rw_rec_enqueue(struct rw_rec_ctl *c, const char *ns, const char *name);

struct rw_inf_handlers rw_rec_object_handlers(struct rw_rec_ctl *c);

/*
 * Queue ns/name for an informer's add event. An object created while the
 * process watches (the informer has synced) goes to the work queue's first
 * lane in `group` (its source, so one source's batch does not queue
 * another's), so its first reconcile, the one that creates its pods, does
 * not wait behind every key a batch keeps queued; the initial list goes to
 * the back. The default handlers use group 0.
 */
void rw_rec_enqueue_added(struct rw_rec_ctl *c, struct rw_inf *inf, const char *ns,
			  const char *name, unsigned group);

/* Split "ns/name" (a key without '/' is a name in namespace ""). Truncates to the buffers. */
void rw_rec_split_key(const char *key, char *ns, size_t nslen, char *name, size_t namelen);

#endif

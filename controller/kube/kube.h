/*
 * kube.h - the Kubernetes API client: rw_http (libcurl multi on the one
 * libuv loop, HTTP/2 when the server offers it) plus what every request
 * needs: the bearer token (re-read as it rotates, and at once after a 401),
 * a client-side QPS/burst token bucket (requests wait in a fair queue,
 * fairq.h: round robin between flows such as one cluster's requests, Events
 * behind everything else; never blocking the loop), 429 Retry-After, retries with back-off for 5xx
 * and connection errors on idempotent verbs, and metrics by verb and code.
 *
 * Least privilege: every request is mapped to its RBAC attributes and
 * checked against the controller's grant table (rbac.h) before it is queued.
 * One the table does not grant is never sent: it is answered, from the loop,
 * with the 403 Status the API server would give under the generated
 * ClusterRole, and logged (error, "RBAC: refusing ...") naming the verb and
 * resource, so a call site without its grant fails at once in every test.
 *
 * Every answer's HTTP status is passed on: callers must check it (2xx is not
 * assumed). Callbacks run on the loop thread, never from inside the call
 * that started the request.
 */
#ifndef RW_KUBE_H
#define RW_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "kubeconfig.h"
#include "metrics.h"
#include "rw/buf.h"

struct rw_kube;
struct rw_kube_op;

struct rw_kube_opts {
	double qps;		       /* sustained requests per second; <= 0 means unlimited */
	int burst;		       /* bucket size (at least 1) */
	long timeout_ms;	       /* per attempt, for non-stream requests; default 30000 */
	int max_attempts;	       /* including the first; default 5 */
	size_t max_body;	       /* answer size cap; default 64 MiB */
	long max_retry_after_s;	       /* cap on a honoured Retry-After; default 60 */
	size_t max_queued;	       /* requests waiting for the limiter; default 65536 */
	size_t max_queued_best_effort; /* of them best effort (Events); default 1000 */
	int max_inflight;	       /* limiter-queued requests on the wire at once (streams and
					  priority requests not counted); default 64 */
	struct rw_met *met;	       /* may be NULL */
	const char *user_agent;	       /* default "raywarden-controller/<version>" */
	int unrestricted; /* no grant-table check (below): test fixtures acting as the admin */
};

struct rw_kube_req {
	const char *method; /* "GET" when NULL */
	const char *path;   /* "/api/v1/namespaces/default/pods" */
	const char *query;  /* encoded "a=b&c=d", or NULL */
	const char *body;   /* or NULL */
	size_t body_len;
	const char *content_type; /* "application/json" when a body is given */
	const char *verb;	  /* metrics label (get, list, watch...); from method if NULL */
	int no_retry;		  /* hand back the first answer, whatever it is */
	int priority;	  /* skip the QPS limiter and the in-flight bound (leader election) */
	const char *flow; /* fair-queue flow ("ns/cluster"); NULL: the shared flow */
	unsigned source;  /* fair-queue source of the flow (fairq.h); 0 by default */
	int best_effort;  /* served only when no other request waits (Events) */
	long timeout_ms;  /* 0: the client default; ignored for streams */
};

struct rw_kube_resp {
	int err;	  /* 0 when an HTTP answer arrived, else a negative errno */
	long status;	  /* HTTP status (0 with err) */
	const char *body; /* NUL-terminated; valid during the callback */
	size_t body_len;
	const char *reason;  /* Status.reason of an error answer, or "" */
	const char *message; /* Status.message of an error answer, or the transport error */
	long retry_after_s;  /* Retry-After of the answer, -1 if none */
	int attempts;	     /* attempts made */
	bool ns_terminating; /* Status.details.causes names NamespaceTerminating */
};

typedef void (*rw_kube_cb)(const struct rw_kube_resp *r, void *ud);

/* What the metav1.Status body of an error answer says. */
struct rw_kube_status {
	char reason[64];
	char message[512]; /* cut to fit */
	bool ns_terminating;
};

/* Parse a Status body (anything else leaves out empty). 0, or -EINVAL when it is not a
 * JSON object. */
int rw_kube_status_parse(const char *body, size_t len, struct rw_kube_status *out);

/*
 * Was a create refused because its namespace is being deleted (403 with the cause
 * NamespaceTerminating, k8s.io/apiserver's namespace lifecycle admission)? Nothing can be
 * created there again, so it is neither an RBAC problem nor worth a retry.
 */
bool rw_kube_namespace_terminating(const struct rw_kube_resp *r);

/*
 * Did a create fail because the name is taken (409 with reason AlreadyExists)? Not every 409
 * means that: a Conflict (another writer's version, or a server-side retry of ours) must be
 * retried, or the object is never made.
 */
bool rw_kube_already_exists(const struct rw_kube_resp *r);
typedef int (*rw_kube_data_cb)(const char *data, size_t len, void *ud);

/* Create a client. cfg is borrowed and must outlive the client. */
int rw_kube_new(uv_loop_t *loop, struct rw_kubecfg *cfg, const struct rw_kube_opts *opts,
		struct rw_kube **out);

/*
 * Cancel everything (no callbacks) and release the client; closed(ud) runs
 * once every handle is closed (run the loop). NULL-safe.
 */
void rw_kube_free(struct rw_kube *k, void (*closed)(void *ud), void *ud);

uv_loop_t *rw_kube_loop(const struct rw_kube *k);
struct rw_met *rw_kube_metrics(const struct rw_kube *k);

/*
 * Start a request; cb runs exactly once with the final answer unless the
 * request is cancelled. *opp (may be NULL) is valid until cb runs.
 * Returns 0, -EINVAL, -ENOBUFS (its class of the limiter queue is full) or
 * -ENOMEM (then cb never runs). A retry that finds the queue full ends with
 * err -ENOBUFS.
 */
int rw_kube_request(struct rw_kube *k, const struct rw_kube_req *req, rw_kube_cb cb, void *ud,
		    struct rw_kube_op **opp);

/*
 * Start a streaming GET (watch): on_data receives the body as it arrives (any
 * split), whatever the status; non-zero from on_data aborts the stream (done
 * then gets err -ECANCELED). Never retried. done runs once at the end.
 */
int rw_kube_stream(struct rw_kube *k, const struct rw_kube_req *req, rw_kube_data_cb on_data,
		   rw_kube_cb done, void *ud, struct rw_kube_op **opp);

/* Cancel a request: its callback will not run. Safe from inside on_data. */
void rw_kube_cancel(struct rw_kube_op *op);

/* Requests waiting for the rate limiter, and requests on the wire. */
int rw_kube_queued(const struct rw_kube *k);
int rw_kube_inflight(const struct rw_kube *k);

/* Append s percent-encoded for a query value (RFC 3986 unreserved kept). */
int rw_kube_qescape(struct rw_buf *b, const char *s);

/*
 * Semantic JSON equality (object key order, number spelling and string
 * escapes do not matter). The reconciler compares a computed status with the
 * stored one and writes only when they differ. Invalid JSON is never equal.
 */
bool rw_kube_json_equal(const char *a, size_t alen, const char *b, size_t blen);

/* ---- token bucket (pure; exported for tests) ---- */

struct rw_kube_tb {
	double rate;   /* tokens per ms; 0 = unlimited */
	double burst;  /* capacity */
	double tokens; /* available now */
	uint64_t last; /* ms of the last refill */
};

/* A full bucket at now_ms. qps <= 0 disables limiting. */
void rw_kube_tb_init(struct rw_kube_tb *tb, double qps, int burst, uint64_t now_ms);

/* Take one token: 0 when taken, else the ms to wait before trying again (>= 1). */
uint64_t rw_kube_tb_take(struct rw_kube_tb *tb, uint64_t now_ms);

/* host[:port] of an API server URL ("https://h:6443/x" -> "h:6443"): the rest_client_* host label.
 */
void rw_kube_host_of(const char *server, char *out, size_t n);

#endif

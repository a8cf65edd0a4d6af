/*
 * sp_json.h - the data of the controller's status page (/status.json) as
 * JSON, built from plain structs so that it is tested without a cluster.
 *
 * The answer is bounded: items go in section by section (clusters, services,
 * jobs, events, pods) while the text stays under the caller's cap minus a
 * reserve for the closing part; an item that does not fit ends its section
 * and every later one, and "truncated" then says per section how many items
 * were shown out of how many. Every string is escaped as JSON; the page
 * escapes it again as HTML when it renders.
 */
#ifndef RW_SP_JSON_H
#define RW_SP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rw/buf.h"

#define RW_SP_MAX_COMPONENTS 8
/* Readiness transitions remembered per pod (a ring: the newest replace the oldest). */
#define RW_SP_TRANSITIONS 8
/* Events remembered (a ring). */
#define RW_SP_EVENTS 64
#define RW_SP_REASON_MAX 96

struct rw_sp_transition {
	int64_t at_ms; /* wall clock, Unix ms */
	bool ready;
	char reason[RW_SP_REASON_MAX];
};

/* A bounded ring of transitions, oldest first from start. Zero is empty. */
struct rw_sp_ring {
	struct rw_sp_transition t[RW_SP_TRANSITIONS];
	int start, n;
};

void rw_sp_ring_push(struct rw_sp_ring *r, int64_t at_ms, bool ready, const char *reason);
/* The i-th oldest transition (0 <= i < r->n). */
const struct rw_sp_transition *rw_sp_ring_at(const struct rw_sp_ring *r, int i);

struct rw_sp_component {
	const char *name;   /* "raylet", "gcs", "proxy", "serve_api", "replicas" */
	const char *state;  /* "ok", "fail", "refused"... or a count for replicas */
	const char *reason; /* "" when none */
};

/* Any string may be NULL (written as ""). */
struct rw_sp_pod {
	const char *ns, *name, *cluster, *node_type, *phase, *pod_ip;
	int pod_ready; /* Ready condition: 1 true, 0 false, -1 unknown */
	bool reported; /* the agent has reported (the fields below are set) */
	bool agent_ready;
	bool stale;
	const char *reason;  /* the agent's readiness reason */
	int64_t reported_ms; /* wall clock of the last report, Unix ms */
	int ncomp;
	struct rw_sp_component comp[RW_SP_MAX_COMPONENTS];
	const struct rw_sp_ring *transitions; /* or NULL */
};

struct rw_sp_cluster {
	const char *ns, *name, *state, *owner_kind, *owner_name;
	int pods_ready, pods_total;
	int64_t desired_workers, ready_workers;
};

struct rw_sp_app {
	const char *name, *status, *message;
};

struct rw_sp_service {
	const char *ns, *name, *status, *active_cluster, *pending_cluster;
	bool ready, upgrading;
	int64_t serve_endpoints;
	int napps;
	const struct rw_sp_app *apps; /* the active cluster's applications */
};

struct rw_sp_job {
	const char *ns, *name, *deployment_status, *job_status, *cluster, *job_id, *message;
};

struct rw_sp_event {
	int64_t at_ms;
	bool warning;
	char kind[32];
	char ns[64];
	char name[254];
	char reason[64];
	char note[256];
};

struct rw_sp_snapshot {
	uint64_t generation;
	int64_t now_ms; /* wall clock, Unix ms */
	bool leader;
	bool agents; /* the hub runs (agents report) */
	const struct rw_sp_cluster *clusters;
	int nclusters;
	const struct rw_sp_service *services;
	int nservices;
	const struct rw_sp_job *jobs;
	int njobs;
	const struct rw_sp_event *events; /* newest first */
	int nevents;
	const struct rw_sp_pod *pods;
	int npods;
};

/* Room kept below the cap for the closing part and the truncation counts. */
#define RW_SP_RESERVE 1024

/*
 * Replace out's contents with the snapshot as JSON of at most cap bytes
 * (cap > RW_SP_RESERVE). Returns 0 (possibly truncated), or -EMSGSIZE /
 * -ENOMEM.
 */
int rw_sp_build(const struct rw_sp_snapshot *s, struct rw_buf *out, size_t cap);

#endif

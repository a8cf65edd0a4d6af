/*
 * informer.h - list + watch of one resource type into a compact in-memory
 * store, like client-go's reflector and indexer.
 *
 * Per namespace (or once for all namespaces) the informer lists with
 * limit/continue pages, then watches from the list's resourceVersion with
 * allowWatchBookmarks. A stream that ends cleanly is resumed from the last
 * resourceVersion seen; a failed stream is resumed after a back-off (0.8 s
 * doubling to 30 s); 410 Gone (an ERROR event with code 410, or 410 on the
 * watch request) relists and replaces the store, delivering the differences
 * as add/update/delete. Watch lines are cut out of any split of the stream;
 * a line longer than max_line drops the stream and relists, with a log line.
 *
 * The store holds what the type's decode callback makes of each object, not
 * the JSON: every decoded object starts with a struct rw_inf_meta. Two
 * decoders come with it: rw_inf_pod_type (struct rw_inf_pod, the fields a
 * RayCluster reconciler needs) and rw_inf_json_decode (keeps the object's JSON
 * text, for custom resources). An optional index groups objects by a derived
 * key (e.g. "namespace/cluster" from the ray.io/cluster label).
 */
#ifndef RW_INFORMER_H
#define RW_INFORMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube.h"
#include "rw/buf.h"
#include "rw/json.h"

struct rw_inf;

/* The head of every stored object. Strings are never NULL ("" when absent). */
struct rw_inf_meta {
	const char *ns; /* "" for cluster-scoped objects */
	const char *name;
	const char *uid;
	const char *rv;	    /* resourceVersion */
	int64_t created;    /* creationTimestamp, Unix seconds (0 unknown) */
	int64_t deleted;    /* deletionTimestamp, Unix seconds (0 none) */
	int64_t generation; /* metadata.generation (0 when absent) */
};

struct rw_inf_type {
	const char *api_path; /* "/api/v1", "/apis/ray.io/v1" */
	const char *resource; /* "pods", "rayclusters" */
	/* Decode object token obj of j; NULL refuses the object (logged, skipped). */
	void *(*decode)(const struct rw_json *j, int obj);
	void (*free_obj)(void *obj); /* default free() */
};

/* Handler sets per informer (several kinds share one informer, see manager.h). */
#define RW_INF_MAX_HANDLERS 8
/* Indexes per informer. */
#define RW_INF_MAX_INDEXES 4

/* An index: write the object's index key into buf, or return NULL (not indexed). */
typedef const char *(*rw_inf_index_fn)(const void *obj, char *buf, size_t n);

struct rw_inf_handlers {
	/* Called after the store changed. Objects are valid during the call only. */
	void (*on_add)(struct rw_inf *inf, const void *obj, void *ud);
	void (*on_update)(struct rw_inf *inf, const void *old_obj, const void *new_obj, void *ud);
	void (*on_delete)(struct rw_inf *inf, const void *obj, void *ud);
	void *ud;
};

struct rw_inf_opts {
	const char *const *namespaces; /* NULL-terminated; NULL or empty = all namespaces */
	const char *label_selector;    /* or NULL */
	const char *field_selector;    /* or NULL */
	int page_size;		       /* list limit; default 500 */
	size_t max_line;	       /* longest watch line; default 16 MiB */
	int watch_timeout_s;	       /* server-side timeout; default 300..600 s random */
	/* Optional first index (more with rw_inf_add_index). */
	rw_inf_index_fn index_key;
};

int rw_inf_new(struct rw_kube *k, const struct rw_inf_type *t, const struct rw_inf_opts *opts,
	       const struct rw_inf_handlers *h, struct rw_inf **out);

/* Start listing and watching. */
int rw_inf_start(struct rw_inf *inf);

/* Stop the streams (the store keeps its contents). */
void rw_inf_stop(struct rw_inf *inf);

/* Stop and free; uv handles close asynchronously (run the loop afterwards). NULL-safe. */
void rw_inf_free(struct rw_inf *inf);

/* Has every namespace completed its first list? */
bool rw_inf_synced(const struct rw_inf *inf);

/* Stored object by namespace and name ("" namespace for cluster-scoped), or NULL. */
const void *rw_inf_get(const struct rw_inf *inf, const char *ns, const char *name);

size_t rw_inf_count(const struct rw_inf *inf);

/* Call fn for every stored object (the store must not change meanwhile). */
void rw_inf_foreach(const struct rw_inf *inf, void (*fn)(const void *obj, void *ud), void *ud);

/*
 * Add a handler set (h, may be NULL, is the first). Sets run in the order
 * added. A set added after objects arrived does not see them as adds: add
 * every set before rw_inf_start. 0, -EINVAL or -ENOSPC (RW_INF_MAX_HANDLERS).
 */
int rw_inf_add_handlers(struct rw_inf *inf, const struct rw_inf_handlers *h);

/*
 * Add an index, identified by its function (adding one twice is a no-op);
 * objects already stored are indexed at once. 0, -EINVAL or -ENOSPC.
 */
int rw_inf_add_index(struct rw_inf *inf, rw_inf_index_fn fn);

/* Call fn for every object whose key in index `index` equals key. Returns how many. */
int rw_inf_index_foreach_by(const struct rw_inf *inf, rw_inf_index_fn index, const char *key,
			    void (*fn)(const void *obj, void *ud), void *ud);

/* The same through the first index (opts.index_key, else the first added). */
int rw_inf_index_foreach(const struct rw_inf *inf, const char *key,
			 void (*fn)(const void *obj, void *ud), void *ud);

/* Does inf list type t with this label selector (NULL and "" alike)? For sharing. */
bool rw_inf_same(const struct rw_inf *inf, const struct rw_inf_type *t, const char *label_selector);

/* Relists done so far (410s, overflows, restarts), for tests and metrics. */
unsigned long rw_inf_relists(const struct rw_inf *inf);

/* The resource name ("pods"). */
const char *rw_inf_resource(const struct rw_inf *inf);

/* ---- watch stream parsing (pure; exported for tests and fuzzing) ---- */

struct rw_inf_lines {
	struct rw_buf b;
	size_t max;
};

void rw_inf_lines_init(struct rw_inf_lines *l, size_t max_line);
void rw_inf_lines_fini(struct rw_inf_lines *l);
void rw_inf_lines_reset(struct rw_inf_lines *l);

/*
 * Feed stream bytes; cb runs for each complete non-empty line (without the
 * newline or a trailing CR). Returns 0, -EMSGSIZE when a line exceeds the
 * bound (the partial line is dropped), or cb's first non-zero return.
 */
int rw_inf_lines_feed(struct rw_inf_lines *l, const char *data, size_t len,
		      int (*cb)(const char *line, size_t len, void *ud), void *ud);

enum rw_inf_evtype {
	RW_INF_ADDED = 1,
	RW_INF_MODIFIED,
	RW_INF_DELETED,
	RW_INF_BOOKMARK,
	RW_INF_ERROR
};

struct rw_inf_event {
	enum rw_inf_evtype type;
	int obj;      /* the object token */
	char rv[64];  /* object.metadata.resourceVersion ("" if absent) */
	int64_t code; /* ERROR: object.code (0 if absent) */
};

/*
 * Parse one watch line into j (caller calls rw_json_fini) and ev.
 * Returns 0 or -EINVAL (not an event), -EMSGSIZE (too many tokens).
 */
int rw_inf_parse_event(const char *line, size_t len, struct rw_json *j, struct rw_inf_event *ev);

/* RFC 3339 time ("2024-05-01T10:00:00Z", fractions and offsets allowed) to Unix seconds. */
int rw_inf_parse_time(const char *s, size_t len, int64_t *out);

/* ---- decoders ---- */

/* Tri-state condition value. */
enum rw_inf_cond { RW_COND_UNKNOWN = 0, RW_COND_TRUE = 1, RW_COND_FALSE = 2 };

struct rw_inf_pod {
	struct rw_inf_meta meta;
	const char *cluster;	    /* label ray.io/cluster ("" when absent) */
	const char *group;	    /* label ray.io/group */
	const char *node_type;	    /* label ray.io/node-type: head, worker, redis-cleanup */
	const char *serve;	    /* label ray.io/serve */
	const char *owner_uid;	    /* uid of the controller ownerReference (else the first) */
	const char *phase;	    /* status.phase */
	const char *pod_ip;	    /* status.podIP */
	const char *restart_policy; /* spec.restartPolicy */
	const char *ray_container;  /* spec.containers[0].name */
	unsigned char has_agent; /* a container or ephemeral container is named raywarden-agent */
	unsigned char agent_ephemeral; /* ...and it is an ephemeral container (attached later) */
	unsigned char ready;	       /* enum rw_inf_cond of condition Ready */
	unsigned char agent_ready;     /* enum rw_inf_cond of condition ray.io/agent-ready */
	unsigned char ray_terminated;  /* the ray container's state.terminated is set */
	int ray_exit_code;	       /* its exitCode when terminated */
	int ray_restarts;	       /* its restartCount */
	const char *ready_reason;      /* reason of condition Ready ("" when absent) */
	const char *ready_message;     /* message of condition Ready */
	const char *agent_message;     /* message of condition ray.io/agent-ready */
	int replica_index;	       /* label ray.io/worker-group-replica-index, -1 absent */
	/* SidecarMode: the ray-job-submitter container terminated, its exitCode and finishedAt. */
	unsigned char submitter_ended;
	int submitter_exit;
	int64_t submitter_finished_ms; /* Unix ms, 0 unknown */
};

extern const struct rw_inf_type rw_inf_pod_type; /* /api/v1 pods, struct rw_inf_pod */

/*
 * The pod has no agent that has spoken: none at all (KubeRay made the pod), or
 * one attached later as an ephemeral container that has not reported yet. Such
 * an agent is judged by its reports from its first one on, never by its silence
 * before it: it may still be starting.
 */
static inline bool
rw_inf_pod_agent_silent(const struct rw_inf_pod *p, bool reported)
{
	return !p->has_agent || (p->agent_ephemeral && !reported);
}

struct rw_inf_json {
	struct rw_inf_meta meta;
	const char *json; /* the object's JSON text, NUL-terminated */
	size_t len;
};

/* Decoder keeping the JSON text (struct rw_inf_json); use in a struct rw_inf_type. */
void *rw_inf_json_decode(const struct rw_json *j, int obj);

/* The kinds every reconciler watches as JSON text (struct rw_inf_json): one
 * descriptor each, so that kinds asking the manager for the same resource get
 * the same shared informer. */
extern const struct rw_inf_type rw_inf_raycluster_type;	   /* ray.io/v1 rayclusters */
extern const struct rw_inf_type rw_inf_rayservice_type;	   /* ray.io/v1 rayservices */
extern const struct rw_inf_type rw_inf_rayjob_type;	   /* ray.io/v1 rayjobs */
extern const struct rw_inf_type rw_inf_batchjob_type;	   /* batch/v1 jobs */
extern const struct rw_inf_type rw_inf_service_type;	   /* v1 services */
extern const struct rw_inf_type rw_inf_endpointslice_type; /* discovery.k8s.io/v1 */

/* Index helper: "namespace/<ray.io/cluster label>" of a struct rw_inf_pod, or NULL. */
const char *rw_inf_pod_cluster_key(const void *obj, char *buf, size_t n);

#endif

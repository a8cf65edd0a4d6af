/*
 * wire.h - the agent <-> controller protocol, version 1 (docs/protocol.md).
 *
 * Transport: nng REQ (agent) / REP (controller). Every message is an
 * envelope: a fixed binary header, a JSON payload and an HMAC-SHA256 over
 * both, keyed with the shared secret mounted from a Kubernetes Secret.
 *
 *   off len field
 *     0   4 magic "RWP\x01"
 *     4   2 version (RW_WIRE_VERSION), big-endian like every integer here
 *     6   2 type (enum rw_wire_type)
 *     8   4 flags (0)
 *    12   4 key id (first 4 bytes of SHA-256 of the key: selects the key)
 *    16   8 session (random per agent process; a reply echoes it)
 *    24   8 seq (report: agent's sequence; reply: the sequence it answers)
 *    32   8 ts_ms (sender's wall clock, ms since the epoch)
 *    40   4 payload length N
 *    44   N payload (UTF-8 JSON)
 *  44+N  32 HMAC-SHA256(key, bytes 0 .. 44+N-1)
 *
 * Messages larger than RW_WIRE_MAX_MSG are refused before anything else.
 */
#ifndef RW_WIRE_H
#define RW_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rw/buf.h"

#define RW_WIRE_VERSION 1
#define RW_WIRE_HDR_LEN 44
#define RW_WIRE_MAC_LEN 32
#define RW_WIRE_MAX_MSG (1024 * 1024)
#define RW_WIRE_KEY_MIN 16
#define RW_WIRE_KEY_MAX 128

enum rw_wire_type { RW_WIRE_REPORT = 1, RW_WIRE_REPLY = 2 };

struct rw_wire_key {
	uint32_t id;
	size_t len;
	unsigned char k[RW_WIRE_KEY_MAX];
};

struct rw_wire_hdr {
	uint16_t version;
	uint16_t type;
	uint32_t flags;
	uint32_t key_id;
	uint64_t session;
	uint64_t seq;
	uint64_t ts_ms;
	uint32_t len;
};

/* Derive a key from raw secret bytes (RW_WIRE_KEY_MIN..RW_WIRE_KEY_MAX). 0 or -EINVAL. */
int rw_wire_key_set(struct rw_wire_key *key, const void *secret, size_t len);

/*
 * Load a key from a file (a mounted Secret): the bytes, without one trailing
 * newline. Errors are written to err without any key material.
 */
int rw_wire_key_load(struct rw_wire_key *key, const char *path, char *err, size_t errlen);

/* Wipe a key. */
void rw_wire_key_wipe(struct rw_wire_key *key);

/*
 * Build an envelope in out (reset first). h->version, key_id and len are
 * filled in here. Returns 0, -EMSGSIZE or -ENOMEM.
 */
int rw_wire_seal(const struct rw_wire_key *key, const struct rw_wire_hdr *h, const char *payload,
		 size_t n, struct rw_buf *out);

/*
 * Check and open an envelope. On success fills h and points *payload into
 * msg (not NUL-terminated; length h->len). Checks in this order:
 *   -EMSGSIZE         larger than RW_WIRE_MAX_MSG
 *   -EBADMSG          shorter than a header + MAC, wrong magic
 *   -EPROTONOSUPPORT  version other than RW_WIRE_VERSION (h->version is set)
 *   -EKEYREJECTED     key id is not ours
 *   -EACCES           MAC mismatch (constant-time compare)
 *   -EBADMSG          payload length disagrees with the message size
 */
int rw_wire_open(const struct rw_wire_key *key, const void *msg, size_t n, struct rw_wire_hdr *h,
		 const char **payload);

/*
 * Replay protection, kept by the receiver of reports per pod. A report is
 *   RW_WIRE_FRESH   new: act on it;
 *   RW_WIRE_RESEND  same session and seq as the last accepted one (an nng
 *                   REQ resend): answer again, act on nothing new;
 *   -EALREADY       an older seq of the current session, or a different
 *                   session whose timestamp is older than the last accepted
 *                   message (a replay);
 *   -ETIME          timestamp more than window_ms away from now_ms.
 * Only FRESH updates the state.
 */
enum { RW_WIRE_FRESH = 0, RW_WIRE_RESEND = 1 };
struct rw_wire_replay {
	int have;
	uint64_t session;
	uint64_t seq;
	uint64_t ts_ms;
};
int rw_wire_replay_check(struct rw_wire_replay *r, const struct rw_wire_hdr *h, uint64_t now_ms,
			 uint64_t window_ms);

/* Lowercase hex SHA-256 of data into out[65]. */
void rw_sha256_hex(const void *data, size_t n, char out[65]);

/* Human-readable name of a wire error code, for log lines. */
const char *rw_wire_strerror(int err);

/* ---- payloads ---- */

/* State of one probed component, as the agent sees it. */
enum rw_probe_state {
	RW_PROBE_UNKNOWN = 0, /* not probed yet */
	RW_PROBE_OK,	      /* healthy answer */
	RW_PROBE_FAIL,	      /* the component answered "unhealthy" (e.g. 503) */
	RW_PROBE_REFUSED,     /* connection refused: nothing listens */
	RW_PROBE_TIMEOUT,     /* no answer within the probe timeout */
	RW_PROBE_ERROR,	      /* garbage, unexpected status or body */
	/* serve proxy only */
	RW_PROBE_DRAINING, /* 503 "This node is being drained." */
	RW_PROBE_STARTING, /* 503 route table not populated / no replicas yet */
	RW_PROBE_ABSENT,   /* no proxy on this node (connection refused) */
	RW_PROBE_DISABLED, /* not probed on this node by configuration */
};
const char *rw_probe_state_name(enum rw_probe_state s);
int rw_probe_state_parse(const char *s, enum rw_probe_state *out);

#define RW_REASON_MAX 160
#define RW_ID_MAX 128
#define RW_MSG_MAX 512

struct rw_probe {
	enum rw_probe_state state;
	char reason[RW_REASON_MAX];
	uint64_t since_ms; /* when it entered this state */
};

struct rw_serve_dep {
	char name[RW_ID_MAX];
	char status[24];
	char message[RW_MSG_MAX];
	int replicas_running;
	int replicas_target;
};

struct rw_serve_app {
	char name[RW_ID_MAX];
	char status[24];
	char message[RW_MSG_MAX];
	char route_prefix[RW_ID_MAX];
	int ndeps;
	struct rw_serve_dep *deps;
};

/* Per Ray node, from the serve applications answer: proxy and replicas. */
struct rw_serve_node {
	char node_id[RW_ID_MAX];
	char node_ip[64];
	char proxy_status[16]; /* "" when the node has no proxy */
	int replicas;	       /* replicas in STARTING/UPDATING/RECOVERING/RUNNING */
};

/* Longest driver log tail a report carries (bytes of decoded log text). */
#define RW_LOG_TAIL_MAX (64 * 1024)
#define RW_ERROR_TYPE_MAX 64

struct rw_job {
	char submission_id[RW_ID_MAX];
	char status[16]; /* Ray's status; "NOT_FOUND" / "GONE": 404 (docs/protocol.md) */
	char message[RW_MSG_MAX];
	int64_t start_time_ms;
	int64_t end_time_ms;
	/* Fields added within v1: all optional on the wire. */
	char error_type[RW_ERROR_TYPE_MAX]; /* Ray's error_type, "" when none */
	int has_exit_code;		    /* driver_exit_code present */
	int driver_exit_code;
	char last_error_line[RW_MSG_MAX]; /* failed jobs: one line of the log tail */
	char log_error[RW_REASON_MAX];	  /* why the log could not be read to its end */
	int log_truncated;		  /* log_tail holds less than the whole log */
	/*
	 * Last RW_LOG_TAIL_MAX bytes of the driver log (UTF-8, NUL-free), or
	 * NULL. Decoded reports: points into the allocation of the report's
	 * jobs array and is freed with it (copy it to keep it). Encoding:
	 * borrowed from the caller.
	 */
	char *log_tail;
};

#define RW_MAX_APPS 64
#define RW_MAX_DEPS 64
#define RW_MAX_NODES 4096
#define RW_MAX_JOBS 64

struct rw_report {
	/* identity */
	char ns[64];
	char pod[254];
	char uid[64];
	char cluster[64];
	char group[64];
	char node_type[8]; /* "head" | "worker" */
	char pod_ip[64];
	char agent_version[32];
	int rayservice; /* probes the serve proxy for readiness */

	/* local verdict */
	int ready;
	char ready_reason[RW_REASON_MAX];
	int live;
	int draining; /* the agent applied a drain */
	struct rw_probe raylet, gcs, proxy;

	/* head only */
	int has_serve;		   /* serve section present */
	struct rw_probe serve_api; /* state of GET /api/serve/applications/ */
	char proxy_location[16];
	char serve_config_hash[72]; /* hash of the config last applied */
	char serve_apply_state[16]; /* "", "applying", "applied", "failed" */
	char serve_apply_error[RW_MSG_MAX];
	int napps;
	struct rw_serve_app *apps;
	int nnodes;
	struct rw_serve_node *nodes;
	int njobs;
	struct rw_job *jobs;
	char job_action_error[RW_MSG_MAX]; /* last submit/stop failure, "" if none */
};

struct rw_job_submit {
	char submission_id[RW_ID_MAX];
	char *entrypoint;
	char *runtime_env_json; /* JSON object text or NULL */
	char *metadata_json;	/* JSON object text or NULL */
	char *resources_json;	/* entrypoint_resources JSON object or NULL */
	double num_cpus;	/* < 0: unset */
	double num_gpus;	/* < 0: unset */
	int64_t memory;		/* < 0: unset */
};

struct rw_reply {
	int drain;		    /* 1: report NotReady and stop taking traffic */
	int proxy_expected;	    /* -1 unknown, 0 no proxy expected, 1 expected */
	char serve_config_hash[72]; /* "" : no serve config */
	char *serve_config;	    /* JSON text of the serve config (owned) */
	int has_submit;
	struct rw_job_submit submit;
	char stop_job[RW_ID_MAX]; /* "" : none */
	uint32_t heartbeat_ms;	  /* 0: keep the agent's default */
	/*
	 * Submission ids the head agent should track (jobs submitted by others:
	 * a submitter pod, a user). The controller lists only those missing
	 * from the agent's last report (docs/protocol.md).
	 */
	int nwatch;
	char watch_jobs[RW_MAX_JOBS][RW_ID_MAX];
};

/* Encode as JSON into out (appended). 0, -EMSGSIZE, -ENOMEM. */
int rw_report_encode(const struct rw_report *r, struct rw_buf *out);
int rw_reply_encode(const struct rw_reply *r, struct rw_buf *out);

/*
 * Decode and validate a payload. Unknown keys are ignored (forward
 * compatibility within a version); wrong types, over-long strings and
 * over-long arrays are -EINVAL with a message in err. On failure the struct
 * holds no allocation. Free with *_fini.
 */
int rw_report_decode(const char *json, size_t len, struct rw_report *r, char *err, size_t errlen);
int rw_reply_decode(const char *json, size_t len, struct rw_reply *r, char *err, size_t errlen);
void rw_report_fini(struct rw_report *r);
void rw_reply_fini(struct rw_reply *r);
/* Free a submission's strings and zero it (rw_reply_fini does it for reply->submit). */
void rw_job_submit_fini(struct rw_job_submit *s);

/*
 * Do two payloads carry the same values (every field, booleans compared as
 * truth values, arrays element by element)? For change detection and tests.
 */
bool rw_report_equal(const struct rw_report *a, const struct rw_report *b);
bool rw_reply_equal(const struct rw_reply *a, const struct rw_reply *b);

#endif

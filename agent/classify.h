/*
 * classify.h - PURE mapping of Ray's HTTP answers to probe states.
 *
 * Every function here takes the outcome of one HTTP exchange (a transport
 * error, or a status and a body) and returns what it means, with a short
 * human reason. Nothing here does I/O, so it is tested with tables of every
 * answer form Ray gives (docs/agent.md, shared/reference/ray-apis.md).
 */
#ifndef RW_AGENT_CLASSIFY_H
#define RW_AGENT_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "rw/wire.h"

enum rw_probe_kind {
	RW_KIND_RAYLET = 0, /* 52365 /api/local_raylet_healthz */
	RW_KIND_GCS,	    /* 8265 /api/gcs_healthz (head) */
	RW_KIND_PROXY,	    /* 8000 /-/healthz */
	RW_KIND_SERVE_API,  /* 8265 /api/serve/applications/ (head) */
	RW_KIND_COUNT
};

/* The outcome of one HTTP exchange, as rw_http reports it. */
struct rw_http_outcome {
	int err;     /* 0 or negative errno (-ECONNREFUSED, -ETIMEDOUT, -EMSGSIZE...) */
	long status; /* HTTP status when err == 0 */
	const char *body;
	size_t body_len;
};

/* Short name of a probe kind ("raylet", "gcs", "proxy", "serve_api"). */
const char *rw_probe_kind_name(enum rw_probe_kind k);

/*
 * Classify a health answer of kind k. Writes a short reason (always
 * NUL-terminated, printable ASCII) and returns the state.
 */
enum rw_probe_state rw_classify(enum rw_probe_kind k, const struct rw_http_outcome *o, char *reason,
				size_t reasonlen);

/*
 * Copy at most max bytes of body into out as printable ASCII on one line
 * (control characters and non-ASCII become '?', surrounding space trimmed).
 */
void rw_snippet(const char *body, size_t len, size_t max, char *out, size_t outlen);

/* Answers whose headers do not end within this many bytes are -EPROTO. */
#define RW_HEALTH_HDR_MAX (64 * 1024)

/*
 * Parse an HTTP/1.x answer to a health GET held in buf[0..len). eof: the
 * peer has closed the connection (an answer with neither Content-Length nor
 * chunked encoding ends there). Returns 1 when the answer is complete
 * (status, body and keep set; a chunked body is decoded in place in buf),
 * 0 when more bytes are needed, -EPROTO when it is not a valid answer
 * (also when no end of headers is found in RW_HEALTH_HDR_MAX bytes).
 * keep is 0 when the connection must not be used again.
 */
int rw_health_resp_parse(char *buf, size_t len, int eof, long *status, const char **body,
			 size_t *body_len, int *keep);

/* Parsed summary of GET /api/serve/applications/ (bounded; owned arrays). */
struct rw_serve_status {
	char proxy_location[16];
	int napps;
	struct rw_serve_app *apps; /* up to RW_MAX_APPS, each up to RW_MAX_DEPS deployments */
	int nnodes;
	struct rw_serve_node *nodes; /* up to RW_MAX_NODES */
	uint64_t digest;	     /* FNV-1a over the summary: changes when it changes */
};

/*
 * Parse a serve applications answer (the JSON body of a 200). On success
 * fills st (free with rw_serve_status_fini). Returns 0, -EINVAL (malformed,
 * message in err), -EMSGSIZE (too many apps/nodes/tokens) or -ENOMEM.
 */
int rw_serve_status_parse(const char *body, size_t len, struct rw_serve_status *st, char *err,
			  size_t errlen);
void rw_serve_status_fini(struct rw_serve_status *st);

/* Job tracking states the agent reports. */
struct rw_job_outcome {
	int found; /* 0: 404 "does not exist" */
	char status[16];
	char message[RW_MSG_MAX];
	int64_t start_time_ms;
	int64_t end_time_ms;
	char error_type[RW_ERROR_TYPE_MAX]; /* "" when null or absent */
	int has_exit_code;		    /* driver_exit_code was a number */
	int driver_exit_code;
};

/*
 * Interpret GET /api/jobs/<id>. Returns 0 with out filled (found=0 on 404),
 * or a negative errno with a reason (transport error, bad JSON, other status).
 */
int rw_job_parse(const struct rw_http_outcome *o, struct rw_job_outcome *out, char *reason,
		 size_t reasonlen);

/* Is a job status terminal (STOPPED, SUCCEEDED, FAILED)? */
int rw_job_terminal(const char *status);

/*
 * Interpret the answer to POST /api/jobs/: 0 submitted (200), 1 already
 * submitted (500 whose body says "Please use a different submission_id"),
 * negative on failure with a reason.
 */
int rw_job_submit_result(const struct rw_http_outcome *o, char *reason, size_t reasonlen);

/* Interpret PUT /api/serve/applications/: 0 accepted (200), negative with a reason. */
int rw_serve_put_result(const struct rw_http_outcome *o, char *reason, size_t reasonlen);

#endif

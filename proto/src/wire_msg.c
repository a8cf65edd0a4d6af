/*
 * wire_msg.c - the JSON payloads of wire protocol v1: struct rw_report (agent
 * to controller) and struct rw_reply (controller to agent). The schema is
 * documented field by field in docs/protocol.md; keep the two in step.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw/json.h"
#include "rw/text.h"
#include "rw/wire.h"

/*
 * Token budget of one payload. A report at every RW_MAX_* bound needs about
 * 84,000 tokens; the 1 MiB message limit keeps real payloads far below.
 */
#define MSG_MAX_TOKENS (1 << 17)
/* Token budget of a JSON text carried inside a string (serve config, runtime_env ...). */
#define EMBED_MAX_TOKENS (1 << 18)
/* Largest payload that still fits in an envelope. */
#define MSG_MAX_PAYLOAD ((size_t)RW_WIRE_MAX_MSG - RW_WIRE_HDR_LEN - RW_WIRE_MAC_LEN)

/* Flags of dec_str(). */
#define F_REQ 1	     /* the key must be present */
#define F_NONEMPTY 2 /* the value must not be "" */
#define F_TRUNC 4    /* free text: cut at a UTF-8 boundary instead of failing */

struct dec {
	struct rw_json j;
	char *err;
	size_t errlen;
};

/* Record a decoding error: "<at><key>: <what>". Returns rv. */
static int dec_fail(struct dec *d, int rv, const char *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
dec_fail(struct dec *d, int rv, const char *at, const char *key, const char *fmt, ...)
{
	if (d->err && d->errlen) {
		int n = snprintf(d->err, d->errlen, "%s%s: ", at, key);
		if (n >= 0 && (size_t)n < d->errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return rv;
}

/*
 * Unescaped copy of string token t (malloc'd) into *out, its length into
 * *len. -EINVAL for a bad escape (e.g. \u0000), -ENOMEM.
 */
static int
dup_str(struct dec *d, int t, char **out, size_t *len)
{
	size_t raw;
	*out = NULL;
	rw_json_raw(&d->j, t, &raw);
	char *s = malloc(raw + 1); /* unescaping never lengthens */
	if (!s)
		return -ENOMEM;
	int n = rw_json_str(&d->j, t, s, raw + 1);
	if (n < 0) {
		free(s);
		return -EINVAL;
	}
	*out = s;
	*len = (size_t)n;
	return 0;
}

/* Copy string member `key` of obj into the fixed field out[outlen]. */
static int
dec_str(struct dec *d, int obj, const char *at, const char *key, char *out, size_t outlen,
	int flags)
{
	int t = rw_json_get(&d->j, obj, key);
	int rv;
	out[0] = '\0';
	if (t < 0) {
		if (flags & F_REQ)
			return dec_fail(d, -EINVAL, at, key, "missing");
		return 0;
	}
	if (rw_json_type(&d->j, t) != RW_JSON_STRING)
		return dec_fail(d, -EINVAL, at, key, "must be a string");
	rv = rw_json_str(&d->j, t, out, outlen);
	if (rv == -EMSGSIZE && (flags & F_TRUNC)) {
		char *s;
		size_t n;
		if ((rv = dup_str(d, t, &s, &n)) == 0) {
			n = rw_utf8_cut(s, n, outlen - 1);
			memcpy(out, s, n);
			out[n] = '\0';
			free(s);
		}
	}
	if (rv == -EMSGSIZE)
		return dec_fail(d, -EINVAL, at, key, "longer than %zu bytes", outlen - 1);
	if (rv == -ENOMEM)
		return dec_fail(d, rv, at, key, "out of memory");
	if (rv < 0)
		return dec_fail(d, -EINVAL, at, key, "invalid string escape");
	if ((flags & F_NONEMPTY) && out[0] == '\0')
		return dec_fail(d, -EINVAL, at, key, "must not be empty");
	return 0;
}

/* Boolean member: absent leaves *out alone. */
static int
dec_bool(struct dec *d, int obj, const char *at, const char *key, int *out)
{
	int t = rw_json_get(&d->j, obj, key);
	bool b;
	if (t < 0)
		return 0;
	if (rw_json_bool(&d->j, t, &b) != 0)
		return dec_fail(d, -EINVAL, at, key, "must be true or false");
	*out = b ? 1 : 0;
	return 0;
}

/* Integer member in [min, max]: absent leaves *out alone. */
static int
dec_int(struct dec *d, int obj, const char *at, const char *key, int64_t min, int64_t max,
	int64_t *out)
{
	int t = rw_json_get(&d->j, obj, key);
	int64_t v;
	if (t < 0)
		return 0;
	if (rw_json_type(&d->j, t) != RW_JSON_NUMBER || rw_json_int(&d->j, t, &v) != 0 || v < min ||
	    v > max)
		return dec_fail(d, -EINVAL, at, key, "must be an integer in %lld..%lld",
				(long long)min, (long long)max);
	*out = v;
	return 0;
}

/* Integer member into an int. */
static int
dec_i32(struct dec *d, int obj, const char *at, const char *key, int64_t min, int *out)
{
	int64_t v = *out;
	int rv = dec_int(d, obj, at, key, min, INT_MAX, &v);
	if (rv == 0)
		*out = (int)v;
	return rv;
}

/* Finite non-negative number member: absent leaves *out alone. */
static int
dec_nonneg_double(struct dec *d, int obj, const char *at, const char *key, double *out)
{
	int t = rw_json_get(&d->j, obj, key);
	double v;
	if (t < 0)
		return 0;
	if (rw_json_type(&d->j, t) != RW_JSON_NUMBER || rw_json_double(&d->j, t, &v) != 0 ||
	    !isfinite(v) || v < 0)
		return dec_fail(d, -EINVAL, at, key, "must be a finite number >= 0");
	*out = v;
	return 0;
}

/*
 * String member holding the text of a JSON object (kept verbatim, malloc'd
 * into *out); absent leaves *out NULL.
 */
static int
dec_json_text(struct dec *d, int obj, const char *at, const char *key, char **out)
{
	int t = rw_json_get(&d->j, obj, key);
	struct rw_json inner = {0};
	char *s = NULL;
	size_t n = 0;
	int rv;
	*out = NULL;
	if (t < 0)
		return 0;
	if (rw_json_type(&d->j, t) != RW_JSON_STRING)
		return dec_fail(d, -EINVAL, at, key, "must be a string holding a JSON object");
	if ((rv = dup_str(d, t, &s, &n)) != 0) {
		dec_fail(d, rv, at, key, rv == -ENOMEM ? "out of memory" : "invalid string escape");
		goto fail;
	}
	rv = rw_json_parse(&inner, s, n, EMBED_MAX_TOKENS, NULL, 0);
	if (rv == -ENOMEM) {
		dec_fail(d, rv, at, key, "out of memory");
		goto fail;
	}
	if (rv != 0 || rw_json_type(&inner, 0) != RW_JSON_OBJECT) {
		rv = -EINVAL;
		dec_fail(d, rv, at, key, "must hold a JSON object");
		goto fail;
	}
	rw_json_fini(&inner);
	*out = s;
	return 0;
fail:
	rw_json_fini(&inner);
	free(s);
	return rv;
}

/*
 * Optional object member: *t is its token, or -1 when absent. Anything but
 * an object is an error.
 */
static int
dec_obj(struct dec *d, int obj, const char *at, const char *key, int *t)
{
	*t = rw_json_get(&d->j, obj, key);
	if (*t >= 0 && rw_json_type(&d->j, *t) != RW_JSON_OBJECT)
		return dec_fail(d, -EINVAL, at, key, "must be an object");
	return 0;
}

/* Optional array member of at most max elements: token into *t (-1), count into *n. */
static int
dec_arr(struct dec *d, int obj, const char *at, const char *key, int max, int *t, int *n)
{
	*n = 0;
	*t = rw_json_get(&d->j, obj, key);
	if (*t < 0)
		return 0;
	if (rw_json_type(&d->j, *t) != RW_JSON_ARRAY)
		return dec_fail(d, -EINVAL, at, key, "must be an array");
	*n = rw_json_size(&d->j, *t);
	if (*n > max)
		return dec_fail(d, -EINVAL, at, key, "more than %d entries", max);
	return 0;
}

/* Array element e (index i) must be an object. */
static int
dec_elem(struct dec *d, int e, int i, const char *at, const char *key)
{
	if (rw_json_type(&d->j, e) != RW_JSON_OBJECT)
		return dec_fail(d, -EINVAL, at, key, "element %d must be an object", i);
	return 0;
}

static int
dec_probe(struct dec *d, int obj, const char *at, const char *key, struct rw_probe *p)
{
	char where[64], state[16];
	int t, rv;
	int64_t since = 0;
	memset(p, 0, sizeof(*p));
	if ((rv = dec_obj(d, obj, at, key, &t)) != 0 || t < 0)
		return rv;
	snprintf(where, sizeof(where), "%s%s.", at, key);
	if ((rv = dec_str(d, t, where, "state", state, sizeof(state), F_REQ)) != 0)
		return rv;
	if (rw_probe_state_parse(state, &p->state) != 0)
		return dec_fail(d, -EINVAL, where, "state", "unknown probe state \"%s\"", state);
	if ((rv = dec_str(d, t, where, "reason", p->reason, sizeof(p->reason), F_TRUNC)) != 0)
		return rv;
	if ((rv = dec_int(d, t, where, "since_ms", 0, INT64_MAX, &since)) != 0)
		return rv;
	p->since_ms = (uint64_t)since;
	return 0;
}

static int
dec_dep(struct dec *d, int t, const char *at, struct rw_serve_dep *x)
{
	int rv;
	if ((rv = dec_str(d, t, at, "name", x->name, sizeof(x->name), F_REQ | F_NONEMPTY)) ||
	    (rv = dec_str(d, t, at, "status", x->status, sizeof(x->status), 0)) ||
	    (rv = dec_str(d, t, at, "message", x->message, sizeof(x->message), F_TRUNC)) ||
	    (rv = dec_i32(d, t, at, "replicas_running", 0, &x->replicas_running)) ||
	    (rv = dec_i32(d, t, at, "replicas_target", 0, &x->replicas_target)))
		return rv;
	return 0;
}

static int
dec_app(struct dec *d, int t, const char *at, struct rw_serve_app *x)
{
	char where[96];
	int rv, arr, n, e, i;
	if ((rv = dec_str(d, t, at, "name", x->name, sizeof(x->name), F_REQ | F_NONEMPTY)) ||
	    (rv = dec_str(d, t, at, "status", x->status, sizeof(x->status), 0)) ||
	    (rv = dec_str(d, t, at, "message", x->message, sizeof(x->message), F_TRUNC)) ||
	    (rv = dec_str(d, t, at, "route_prefix", x->route_prefix, sizeof(x->route_prefix), 0)) ||
	    (rv = dec_arr(d, t, at, "deployments", RW_MAX_DEPS, &arr, &n)))
		return rv;
	if (n == 0)
		return 0;
	x->deps = calloc((size_t)n, sizeof(*x->deps));
	if (!x->deps)
		return dec_fail(d, -ENOMEM, at, "deployments", "out of memory");
	x->ndeps = n;
	RW_JSON_ARR_FOREACH (&d->j, arr, i, e) {
		snprintf(where, sizeof(where), "%sdeployments[%d].", at, i);
		if ((rv = dec_elem(d, e, i, at, "deployments")) ||
		    (rv = dec_dep(d, e, where, &x->deps[i])))
			return rv;
	}
	return 0;
}

static int
dec_node(struct dec *d, int t, const char *at, struct rw_serve_node *x)
{
	int rv;
	if ((rv = dec_str(d, t, at, "node_id", x->node_id, sizeof(x->node_id),
			  F_REQ | F_NONEMPTY)) ||
	    (rv = dec_str(d, t, at, "node_ip", x->node_ip, sizeof(x->node_ip), 0)) ||
	    (rv = dec_str(d, t, at, "proxy_status", x->proxy_status, sizeof(x->proxy_status), 0)) ||
	    (rv = dec_i32(d, t, at, "replicas", 0, &x->replicas)))
		return rv;
	return 0;
}

/*
 * Bytes a job's log_tail needs in the jobs array's allocation: its raw
 * (escaped) length bounds the unescaped one; 0 when absent or not a string
 * (dec_tail then reports the error).
 */
static size_t
tail_room(struct dec *d, int job)
{
	int t = rw_json_get(&d->j, job, "log_tail");
	size_t raw = 0;
	if (t < 0 || rw_json_type(&d->j, t) != RW_JSON_STRING)
		return 0;
	rw_json_raw(&d->j, t, &raw);
	return (raw < RW_LOG_TAIL_MAX ? raw : RW_LOG_TAIL_MAX) + 1;
}

/*
 * log_tail: copied into the room at *pool (which advances). A longer text
 * keeps its end (it is the end of a log), cut at a UTF-8 boundary.
 */
static int
dec_tail(struct dec *d, int obj, const char *at, char **pool, char **out)
{
	int t = rw_json_get(&d->j, obj, "log_tail");
	char *s;
	size_t n, from = 0;
	int rv;
	*out = NULL;
	if (t < 0)
		return 0;
	if (rw_json_type(&d->j, t) != RW_JSON_STRING)
		return dec_fail(d, -EINVAL, at, "log_tail", "must be a string");
	if ((rv = dup_str(d, t, &s, &n)) != 0)
		return dec_fail(d, rv, at, "log_tail",
				rv == -ENOMEM ? "out of memory" : "invalid string escape");
	if (n > RW_LOG_TAIL_MAX) {
		from = n - RW_LOG_TAIL_MAX;
		while (from < n && ((unsigned char)s[from] & 0xC0) == 0x80)
			from++;
	}
	memcpy(*pool, s + from, n - from);
	(*pool)[n - from] = '\0';
	*out = *pool;
	*pool += n - from + 1;
	free(s);
	return 0;
}

static int
dec_job(struct dec *d, int t, const char *at, struct rw_job *x, char **pool)
{
	int rv;
	int64_t v;
	if ((rv = dec_str(d, t, at, "submission_id", x->submission_id, sizeof(x->submission_id),
			  F_REQ | F_NONEMPTY)) ||
	    (rv = dec_str(d, t, at, "status", x->status, sizeof(x->status), 0)) ||
	    (rv = dec_str(d, t, at, "message", x->message, sizeof(x->message), F_TRUNC)))
		return rv;
	v = 0;
	if ((rv = dec_int(d, t, at, "start_time_ms", INT64_MIN, INT64_MAX, &v)) != 0)
		return rv;
	x->start_time_ms = v;
	v = 0;
	if ((rv = dec_int(d, t, at, "end_time_ms", INT64_MIN, INT64_MAX, &v)) != 0)
		return rv;
	x->end_time_ms = v;
	if ((rv = dec_str(d, t, at, "error_type", x->error_type, sizeof(x->error_type), 0)) ||
	    (rv = dec_str(d, t, at, "last_error_line", x->last_error_line,
			  sizeof(x->last_error_line), F_TRUNC)) ||
	    (rv = dec_str(d, t, at, "log_error", x->log_error, sizeof(x->log_error), F_TRUNC)) ||
	    (rv = dec_bool(d, t, at, "log_truncated", &x->log_truncated)))
		return rv;
	if (rw_json_get(&d->j, t, "driver_exit_code") >= 0) {
		v = 0;
		if ((rv = dec_int(d, t, at, "driver_exit_code", INT32_MIN, INT32_MAX, &v)) != 0)
			return rv;
		x->has_exit_code = 1;
		x->driver_exit_code = (int)v;
	}
	return dec_tail(d, t, at, pool, &x->log_tail);
}

/* The "serve" section of a report. */
static int
dec_serve(struct dec *d, int s, struct rw_report *r)
{
	char where[64];
	int rv, arr, n, e, i;
	const char *at = "serve.";

	if ((rv = dec_probe(d, s, at, "api", &r->serve_api)) ||
	    (rv = dec_str(d, s, at, "proxy_location", r->proxy_location, sizeof(r->proxy_location),
			  0)))
		return rv;

	if ((rv = dec_arr(d, s, at, "apps", RW_MAX_APPS, &arr, &n)) != 0)
		return rv;
	if (n > 0) {
		r->apps = calloc((size_t)n, sizeof(*r->apps));
		if (!r->apps)
			return dec_fail(d, -ENOMEM, at, "apps", "out of memory");
		r->napps = n;
	}
	RW_JSON_ARR_FOREACH (&d->j, arr, i, e) {
		snprintf(where, sizeof(where), "serve.apps[%d].", i);
		if ((rv = dec_elem(d, e, i, at, "apps")) ||
		    (rv = dec_app(d, e, where, &r->apps[i])))
			return rv;
	}

	if ((rv = dec_arr(d, s, at, "nodes", RW_MAX_NODES, &arr, &n)) != 0)
		return rv;
	if (n > 0) {
		r->nodes = calloc((size_t)n, sizeof(*r->nodes));
		if (!r->nodes)
			return dec_fail(d, -ENOMEM, at, "nodes", "out of memory");
		r->nnodes = n;
	}
	RW_JSON_ARR_FOREACH (&d->j, arr, i, e) {
		snprintf(where, sizeof(where), "serve.nodes[%d].", i);
		if ((rv = dec_elem(d, e, i, at, "nodes")) ||
		    (rv = dec_node(d, e, where, &r->nodes[i])))
			return rv;
	}
	return 0;
}

/* Parse the payload; the root must be an object. */
static int
dec_begin(struct dec *d, const char *json, size_t len, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->err = err;
	d->errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	if (!json && len > 0)
		return dec_fail(d, -EINVAL, "", "payload", "missing");
	if (len > MSG_MAX_PAYLOAD)
		return dec_fail(d, -EINVAL, "", "payload", "larger than %zu bytes",
				MSG_MAX_PAYLOAD);
	int rv = rw_json_parse(&d->j, json ? json : "", len, MSG_MAX_TOKENS, err, errlen);
	if (rv == -ENOMEM)
		return rv;
	if (rv != 0)
		return -EINVAL; /* err already says why */
	if (rw_json_type(&d->j, 0) != RW_JSON_OBJECT)
		return dec_fail(d, -EINVAL, "", "payload", "must be a JSON object");
	return 0;
}

int
rw_report_decode(const char *json, size_t len, struct rw_report *r, char *err, size_t errlen)
{
	struct dec d;
	int rv, arr, n, e, t, i;
	char where[64];
	char *pool = NULL;
	const char *at = "";

	memset(r, 0, sizeof(*r));
	if ((rv = dec_begin(&d, json, len, err, errlen)) != 0)
		goto fail;

	/* Identity. */
	if ((rv = dec_str(&d, 0, at, "namespace", r->ns, sizeof(r->ns), F_REQ | F_NONEMPTY)) ||
	    (rv = dec_str(&d, 0, at, "pod", r->pod, sizeof(r->pod), F_REQ | F_NONEMPTY)) ||
	    (rv = dec_str(&d, 0, at, "uid", r->uid, sizeof(r->uid), 0)) ||
	    (rv = dec_str(&d, 0, at, "cluster", r->cluster, sizeof(r->cluster), 0)) ||
	    (rv = dec_str(&d, 0, at, "group", r->group, sizeof(r->group), 0)) ||
	    (rv = dec_str(&d, 0, at, "node_type", r->node_type, sizeof(r->node_type), 0)) ||
	    (rv = dec_str(&d, 0, at, "pod_ip", r->pod_ip, sizeof(r->pod_ip), 0)) ||
	    (rv = dec_str(&d, 0, at, "agent_version", r->agent_version, sizeof(r->agent_version),
			  0)) ||
	    (rv = dec_bool(&d, 0, at, "rayservice", &r->rayservice)))
		goto fail;
	if (r->node_type[0] && strcmp(r->node_type, "head") != 0 &&
	    strcmp(r->node_type, "worker") != 0) {
		rv = dec_fail(&d, -EINVAL, at, "node_type", "must be \"head\" or \"worker\"");
		goto fail;
	}

	/* Local verdict. */
	if ((rv = dec_bool(&d, 0, at, "ready", &r->ready)) ||
	    (rv = dec_str(&d, 0, at, "ready_reason", r->ready_reason, sizeof(r->ready_reason),
			  F_TRUNC)) ||
	    (rv = dec_bool(&d, 0, at, "live", &r->live)) ||
	    (rv = dec_bool(&d, 0, at, "draining", &r->draining)))
		goto fail;
	if ((rv = dec_obj(&d, 0, at, "probes", &t)) != 0)
		goto fail;
	if (t >= 0 && ((rv = dec_probe(&d, t, "probes.", "raylet", &r->raylet)) ||
		       (rv = dec_probe(&d, t, "probes.", "gcs", &r->gcs)) ||
		       (rv = dec_probe(&d, t, "probes.", "proxy", &r->proxy))))
		goto fail;

	/* Head only: what the agent did with the serve config and jobs. */
	if ((rv = dec_str(&d, 0, at, "serve_config_hash", r->serve_config_hash,
			  sizeof(r->serve_config_hash), 0)) ||
	    (rv = dec_str(&d, 0, at, "serve_apply_state", r->serve_apply_state,
			  sizeof(r->serve_apply_state), 0)) ||
	    (rv = dec_str(&d, 0, at, "serve_apply_error", r->serve_apply_error,
			  sizeof(r->serve_apply_error), F_TRUNC)) ||
	    (rv = dec_str(&d, 0, at, "job_action_error", r->job_action_error,
			  sizeof(r->job_action_error), F_TRUNC)))
		goto fail;

	if ((rv = dec_obj(&d, 0, at, "serve", &t)) != 0)
		goto fail;
	if (t >= 0) {
		r->has_serve = 1;
		if ((rv = dec_serve(&d, t, r)) != 0)
			goto fail;
	}

	if ((rv = dec_arr(&d, 0, at, "jobs", RW_MAX_JOBS, &arr, &n)) != 0)
		goto fail;
	if (n > 0) {
		/* One allocation holds the jobs and their log tails, so that
		 * freeing the array frees everything (holders of decoded
		 * reports free r->jobs alone). */
		size_t room = 0;
		RW_JSON_ARR_FOREACH (&d.j, arr, i, e)
			room += tail_room(&d, e);
		r->jobs = calloc(1, (size_t)n * sizeof(*r->jobs) + room);
		if (!r->jobs) {
			rv = dec_fail(&d, -ENOMEM, at, "jobs", "out of memory");
			goto fail;
		}
		r->njobs = n;
		pool = (char *)(r->jobs + n);
	}
	RW_JSON_ARR_FOREACH (&d.j, arr, i, e) {
		snprintf(where, sizeof(where), "jobs[%d].", i);
		if ((rv = dec_elem(&d, e, i, at, "jobs")) ||
		    (rv = dec_job(&d, e, where, &r->jobs[i], &pool)))
			goto fail;
	}
	rw_json_fini(&d.j);
	return 0;
fail:
	rw_json_fini(&d.j);
	rw_report_fini(r);
	memset(r, 0, sizeof(*r));
	return rv;
}

void
rw_report_fini(struct rw_report *r)
{
	if (!r)
		return;
	if (r->apps) {
		for (int i = 0; i < r->napps; i++)
			free(r->apps[i].deps);
		free(r->apps);
	}
	free(r->nodes);
	free(r->jobs);
	r->apps = NULL;
	r->nodes = NULL;
	r->jobs = NULL;
	r->napps = r->nnodes = r->njobs = 0;
}

static int
dec_submit(struct dec *d, int t, struct rw_job_submit *s)
{
	const char *at = "submit_job.";
	int rv, et;
	char *ep = NULL;
	size_t n;
	double v;
	int64_t mem = -1;

	if ((rv = dec_str(d, t, at, "submission_id", s->submission_id, sizeof(s->submission_id),
			  F_REQ | F_NONEMPTY)) != 0)
		return rv;
	et = rw_json_get(&d->j, t, "entrypoint");
	if (et < 0)
		return dec_fail(d, -EINVAL, at, "entrypoint", "missing");
	if (rw_json_type(&d->j, et) != RW_JSON_STRING)
		return dec_fail(d, -EINVAL, at, "entrypoint", "must be a string");
	if ((rv = dup_str(d, et, &ep, &n)) != 0)
		return dec_fail(d, rv, at, "entrypoint",
				rv == -ENOMEM ? "out of memory" : "invalid string escape");
	s->entrypoint = ep;
	if (n == 0)
		return dec_fail(d, -EINVAL, at, "entrypoint", "must not be empty");
	if ((rv = dec_json_text(d, t, at, "runtime_env_json", &s->runtime_env_json)) ||
	    (rv = dec_json_text(d, t, at, "metadata_json", &s->metadata_json)) ||
	    (rv = dec_json_text(d, t, at, "entrypoint_resources_json", &s->resources_json)))
		return rv;
	v = -1;
	if ((rv = dec_nonneg_double(d, t, at, "entrypoint_num_cpus", &v)) != 0)
		return rv;
	s->num_cpus = v;
	v = -1;
	if ((rv = dec_nonneg_double(d, t, at, "entrypoint_num_gpus", &v)) != 0)
		return rv;
	s->num_gpus = v;
	if ((rv = dec_int(d, t, at, "entrypoint_memory", 0, INT64_MAX, &mem)) != 0)
		return rv;
	s->memory = mem;
	return 0;
}

/* watch_jobs: an array of at most RW_MAX_JOBS non-empty submission ids. */
static int
dec_watch(struct dec *d, struct rw_reply *r)
{
	int arr, n, i, e, rv;
	char where[32];
	if ((rv = dec_arr(d, 0, "", "watch_jobs", RW_MAX_JOBS, &arr, &n)) != 0)
		return rv;
	RW_JSON_ARR_FOREACH (&d->j, arr, i, e) {
		snprintf(where, sizeof(where), "watch_jobs[%d]", i);
		if (rw_json_type(&d->j, e) != RW_JSON_STRING)
			return dec_fail(d, -EINVAL, "", where, "must be a string");
		rv = rw_json_str(&d->j, e, r->watch_jobs[i], sizeof(r->watch_jobs[i]));
		if (rv == -EMSGSIZE)
			return dec_fail(d, -EINVAL, "", where, "longer than %zu bytes",
					sizeof(r->watch_jobs[i]) - 1);
		if (rv < 0)
			return dec_fail(d, -EINVAL, "", where, "invalid string escape");
		if (rv == 0)
			return dec_fail(d, -EINVAL, "", where, "must not be empty");
		r->nwatch = i + 1;
	}
	return 0;
}

static void
reply_defaults(struct rw_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->proxy_expected = -1;
	r->submit.num_cpus = -1;
	r->submit.num_gpus = -1;
	r->submit.memory = -1;
}

int
rw_reply_decode(const char *json, size_t len, struct rw_reply *r, char *err, size_t errlen)
{
	struct dec d;
	int rv, t, pe = -1;
	int64_t hb = 0;
	const char *at = "";

	reply_defaults(r);
	if ((rv = dec_begin(&d, json, len, err, errlen)) != 0)
		goto fail;
	if ((rv = dec_bool(&d, 0, at, "drain", &r->drain)) ||
	    (rv = dec_bool(&d, 0, at, "proxy_expected", &pe)) ||
	    (rv = dec_str(&d, 0, at, "serve_config_hash", r->serve_config_hash,
			  sizeof(r->serve_config_hash), 0)) ||
	    (rv = dec_json_text(&d, 0, at, "serve_config", &r->serve_config)) ||
	    (rv = dec_str(&d, 0, at, "stop_job", r->stop_job, sizeof(r->stop_job), 0)) ||
	    (rv = dec_int(&d, 0, at, "heartbeat_ms", 0, UINT32_MAX, &hb)))
		goto fail;
	r->proxy_expected = pe;
	r->heartbeat_ms = (uint32_t)hb;
	if ((rv = dec_obj(&d, 0, at, "submit_job", &t)) != 0)
		goto fail;
	if (t >= 0) {
		r->has_submit = 1;
		if ((rv = dec_submit(&d, t, &r->submit)) != 0)
			goto fail;
	}
	if ((rv = dec_watch(&d, r)) != 0)
		goto fail;
	rw_json_fini(&d.j);
	return 0;
fail:
	rw_json_fini(&d.j);
	rw_reply_fini(r);
	reply_defaults(r);
	return rv;
}

void
rw_reply_fini(struct rw_reply *r)
{
	if (!r)
		return;
	free(r->serve_config);
	r->serve_config = NULL;
	rw_job_submit_fini(&r->submit);
}

void
rw_job_submit_fini(struct rw_job_submit *s)
{
	if (!s)
		return;
	free(s->entrypoint);
	free(s->runtime_env_json);
	free(s->metadata_json);
	free(s->resources_json);
	s->entrypoint = s->runtime_env_json = s->metadata_json = s->resources_json = NULL;
}

/* ---- encoding ---- */

/* Key and a fixed-size string field (never read past the field). */
static void
enc_str(struct rw_jw *w, const char *key, const char *s, size_t size)
{
	rw_jw_key(w, key);
	rw_jw_strn(w, s, strnlen(s, size - 1));
}

/* Same, omitted when empty. */
static void
enc_opt(struct rw_jw *w, const char *key, const char *s, size_t size)
{
	if (s[0])
		enc_str(w, key, s, size);
}

#define ENC_STR(w, key, field) enc_str((w), (key), (field), sizeof(field))
#define ENC_OPT(w, key, field) enc_opt((w), (key), (field), sizeof(field))

/* A probe never set (unknown, no reason, no time) is left out. */
static bool
probe_empty(const struct rw_probe *p)
{
	return p->state == RW_PROBE_UNKNOWN && !p->reason[0] && p->since_ms == 0;
}

static void
enc_probe(struct rw_jw *w, const char *key, const struct rw_probe *p)
{
	if (probe_empty(p))
		return;
	rw_jw_key(w, key);
	rw_jw_obj_begin(w);
	rw_jw_kstr(w, "state", rw_probe_state_name(p->state));
	ENC_OPT(w, "reason", p->reason);
	if (p->since_ms) {
		rw_jw_key(w, "since_ms");
		rw_jw_uint(w, p->since_ms);
	}
	rw_jw_obj_end(w);
}

/* Finish an encoding: on failure (or an unsealable size) out is restored. */
static int
enc_finish(struct rw_jw *w, struct rw_buf *out, size_t start)
{
	int rv = rw_jw_finish(w);
	if (rv == 0 && out->len - start > MSG_MAX_PAYLOAD)
		rv = -EMSGSIZE;
	if (rv != 0) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return rv;
}

int
rw_report_encode(const struct rw_report *r, struct rw_buf *out)
{
	struct rw_jw w;
	size_t start = out->len;

	rw_jw_init(&w, out);
	rw_jw_obj_begin(&w);
	ENC_STR(&w, "namespace", r->ns);
	ENC_STR(&w, "pod", r->pod);
	ENC_OPT(&w, "uid", r->uid);
	ENC_OPT(&w, "cluster", r->cluster);
	ENC_OPT(&w, "group", r->group);
	ENC_OPT(&w, "node_type", r->node_type);
	ENC_OPT(&w, "pod_ip", r->pod_ip);
	ENC_OPT(&w, "agent_version", r->agent_version);
	rw_jw_kbool(&w, "rayservice", r->rayservice != 0);

	rw_jw_kbool(&w, "ready", r->ready != 0);
	ENC_OPT(&w, "ready_reason", r->ready_reason);
	rw_jw_kbool(&w, "live", r->live != 0);
	rw_jw_kbool(&w, "draining", r->draining != 0);
	if (!probe_empty(&r->raylet) || !probe_empty(&r->gcs) || !probe_empty(&r->proxy)) {
		rw_jw_key(&w, "probes");
		rw_jw_obj_begin(&w);
		enc_probe(&w, "raylet", &r->raylet);
		enc_probe(&w, "gcs", &r->gcs);
		enc_probe(&w, "proxy", &r->proxy);
		rw_jw_obj_end(&w);
	}

	ENC_OPT(&w, "serve_config_hash", r->serve_config_hash);
	ENC_OPT(&w, "serve_apply_state", r->serve_apply_state);
	ENC_OPT(&w, "serve_apply_error", r->serve_apply_error);
	ENC_OPT(&w, "job_action_error", r->job_action_error);

	if (r->has_serve) {
		rw_jw_key(&w, "serve");
		rw_jw_obj_begin(&w);
		enc_probe(&w, "api", &r->serve_api);
		ENC_OPT(&w, "proxy_location", r->proxy_location);
		if (r->napps > 0 && r->apps) {
			rw_jw_key(&w, "apps");
			rw_jw_arr_begin(&w);
			for (int i = 0; i < r->napps; i++) {
				const struct rw_serve_app *a = &r->apps[i];
				rw_jw_obj_begin(&w);
				ENC_STR(&w, "name", a->name);
				ENC_OPT(&w, "status", a->status);
				ENC_OPT(&w, "message", a->message);
				ENC_OPT(&w, "route_prefix", a->route_prefix);
				if (a->ndeps > 0 && a->deps) {
					rw_jw_key(&w, "deployments");
					rw_jw_arr_begin(&w);
					for (int k = 0; k < a->ndeps; k++) {
						const struct rw_serve_dep *x = &a->deps[k];
						rw_jw_obj_begin(&w);
						ENC_STR(&w, "name", x->name);
						ENC_OPT(&w, "status", x->status);
						ENC_OPT(&w, "message", x->message);
						rw_jw_kint(&w, "replicas_running",
							   x->replicas_running);
						rw_jw_kint(&w, "replicas_target",
							   x->replicas_target);
						rw_jw_obj_end(&w);
					}
					rw_jw_arr_end(&w);
				}
				rw_jw_obj_end(&w);
			}
			rw_jw_arr_end(&w);
		}
		if (r->nnodes > 0 && r->nodes) {
			rw_jw_key(&w, "nodes");
			rw_jw_arr_begin(&w);
			for (int i = 0; i < r->nnodes; i++) {
				const struct rw_serve_node *x = &r->nodes[i];
				rw_jw_obj_begin(&w);
				ENC_STR(&w, "node_id", x->node_id);
				ENC_OPT(&w, "node_ip", x->node_ip);
				ENC_OPT(&w, "proxy_status", x->proxy_status);
				rw_jw_kint(&w, "replicas", x->replicas);
				rw_jw_obj_end(&w);
			}
			rw_jw_arr_end(&w);
		}
		rw_jw_obj_end(&w);
	}

	if (r->njobs > 0 && r->jobs) {
		rw_jw_key(&w, "jobs");
		rw_jw_arr_begin(&w);
		for (int i = 0; i < r->njobs; i++) {
			const struct rw_job *x = &r->jobs[i];
			rw_jw_obj_begin(&w);
			ENC_STR(&w, "submission_id", x->submission_id);
			ENC_OPT(&w, "status", x->status);
			ENC_OPT(&w, "message", x->message);
			if (x->start_time_ms)
				rw_jw_kint(&w, "start_time_ms", x->start_time_ms);
			if (x->end_time_ms)
				rw_jw_kint(&w, "end_time_ms", x->end_time_ms);
			ENC_OPT(&w, "error_type", x->error_type);
			if (x->has_exit_code)
				rw_jw_kint(&w, "driver_exit_code", x->driver_exit_code);
			ENC_OPT(&w, "last_error_line", x->last_error_line);
			ENC_OPT(&w, "log_error", x->log_error);
			if (x->log_truncated)
				rw_jw_kbool(&w, "log_truncated", true);
			if (x->log_tail)
				rw_jw_kstr(&w, "log_tail", x->log_tail);
			rw_jw_obj_end(&w);
		}
		rw_jw_arr_end(&w);
	}
	rw_jw_obj_end(&w);
	return enc_finish(&w, out, start);
}

/* A JSON-text field, written as a string; omitted when NULL. */
static void
enc_text(struct rw_jw *w, const char *key, const char *s)
{
	if (s)
		rw_jw_kstr(w, key, s);
}

int
rw_reply_encode(const struct rw_reply *r, struct rw_buf *out)
{
	struct rw_jw w;
	size_t start = out->len;

	rw_jw_init(&w, out);
	rw_jw_obj_begin(&w);
	rw_jw_kbool(&w, "drain", r->drain != 0);
	if (r->proxy_expected >= 0)
		rw_jw_kbool(&w, "proxy_expected", r->proxy_expected > 0);
	ENC_OPT(&w, "serve_config_hash", r->serve_config_hash);
	enc_text(&w, "serve_config", r->serve_config);
	if (r->has_submit) {
		const struct rw_job_submit *s = &r->submit;
		rw_jw_key(&w, "submit_job");
		rw_jw_obj_begin(&w);
		ENC_STR(&w, "submission_id", s->submission_id);
		rw_jw_kstr(&w, "entrypoint", s->entrypoint ? s->entrypoint : "");
		enc_text(&w, "runtime_env_json", s->runtime_env_json);
		enc_text(&w, "metadata_json", s->metadata_json);
		enc_text(&w, "entrypoint_resources_json", s->resources_json);
		if (isfinite(s->num_cpus) && s->num_cpus >= 0) {
			rw_jw_key(&w, "entrypoint_num_cpus");
			rw_jw_double(&w, s->num_cpus);
		}
		if (isfinite(s->num_gpus) && s->num_gpus >= 0) {
			rw_jw_key(&w, "entrypoint_num_gpus");
			rw_jw_double(&w, s->num_gpus);
		}
		if (s->memory >= 0)
			rw_jw_kint(&w, "entrypoint_memory", s->memory);
		rw_jw_obj_end(&w);
	}
	ENC_OPT(&w, "stop_job", r->stop_job);
	if (r->heartbeat_ms) {
		rw_jw_key(&w, "heartbeat_ms");
		rw_jw_uint(&w, r->heartbeat_ms);
	}
	if (r->nwatch > 0) {
		int n = r->nwatch < RW_MAX_JOBS ? r->nwatch : RW_MAX_JOBS;
		rw_jw_key(&w, "watch_jobs");
		rw_jw_arr_begin(&w);
		for (int i = 0; i < n; i++)
			rw_jw_strn(&w, r->watch_jobs[i],
				   strnlen(r->watch_jobs[i], sizeof(r->watch_jobs[i]) - 1));
		rw_jw_arr_end(&w);
	}
	rw_jw_obj_end(&w);
	return enc_finish(&w, out, start);
}

/* ---- comparison ---- */

#define STR_EQ(a, b, field) (strncmp((a)->field, (b)->field, sizeof((a)->field)) == 0)
#define BOOL_EQ(a, b, field) (!(a)->field == !(b)->field)

static bool
probe_eq(const struct rw_probe *a, const struct rw_probe *b)
{
	return a->state == b->state && STR_EQ(a, b, reason) && a->since_ms == b->since_ms;
}

static bool
text_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
app_eq(const struct rw_serve_app *a, const struct rw_serve_app *b)
{
	if (!STR_EQ(a, b, name) || !STR_EQ(a, b, status) || !STR_EQ(a, b, message) ||
	    !STR_EQ(a, b, route_prefix) || a->ndeps != b->ndeps)
		return false;
	for (int i = 0; i < a->ndeps; i++) {
		const struct rw_serve_dep *x = &a->deps[i], *y = &b->deps[i];
		if (!STR_EQ(x, y, name) || !STR_EQ(x, y, status) || !STR_EQ(x, y, message) ||
		    x->replicas_running != y->replicas_running ||
		    x->replicas_target != y->replicas_target)
			return false;
	}
	return true;
}

bool
rw_report_equal(const struct rw_report *a, const struct rw_report *b)
{
	if (!STR_EQ(a, b, ns) || !STR_EQ(a, b, pod) || !STR_EQ(a, b, uid) ||
	    !STR_EQ(a, b, cluster) || !STR_EQ(a, b, group) || !STR_EQ(a, b, node_type) ||
	    !STR_EQ(a, b, pod_ip) || !STR_EQ(a, b, agent_version) || !BOOL_EQ(a, b, rayservice))
		return false;
	if (!BOOL_EQ(a, b, ready) || !STR_EQ(a, b, ready_reason) || !BOOL_EQ(a, b, live) ||
	    !BOOL_EQ(a, b, draining) || !probe_eq(&a->raylet, &b->raylet) ||
	    !probe_eq(&a->gcs, &b->gcs) || !probe_eq(&a->proxy, &b->proxy))
		return false;
	if (!STR_EQ(a, b, serve_config_hash) || !STR_EQ(a, b, serve_apply_state) ||
	    !STR_EQ(a, b, serve_apply_error) || !STR_EQ(a, b, job_action_error) ||
	    !BOOL_EQ(a, b, has_serve) || a->njobs != b->njobs)
		return false;
	if (a->has_serve) {
		if (!probe_eq(&a->serve_api, &b->serve_api) || !STR_EQ(a, b, proxy_location) ||
		    a->napps != b->napps || a->nnodes != b->nnodes)
			return false;
		for (int i = 0; i < a->napps; i++)
			if (!app_eq(&a->apps[i], &b->apps[i]))
				return false;
		for (int i = 0; i < a->nnodes; i++) {
			const struct rw_serve_node *x = &a->nodes[i], *y = &b->nodes[i];
			if (!STR_EQ(x, y, node_id) || !STR_EQ(x, y, node_ip) ||
			    !STR_EQ(x, y, proxy_status) || x->replicas != y->replicas)
				return false;
		}
	}
	for (int i = 0; i < a->njobs; i++) {
		const struct rw_job *x = &a->jobs[i], *y = &b->jobs[i];
		if (!STR_EQ(x, y, submission_id) || !STR_EQ(x, y, status) ||
		    !STR_EQ(x, y, message) || x->start_time_ms != y->start_time_ms ||
		    x->end_time_ms != y->end_time_ms || !STR_EQ(x, y, error_type) ||
		    !BOOL_EQ(x, y, has_exit_code) ||
		    (x->has_exit_code && x->driver_exit_code != y->driver_exit_code) ||
		    !STR_EQ(x, y, last_error_line) || !STR_EQ(x, y, log_error) ||
		    !BOOL_EQ(x, y, log_truncated) || !text_eq(x->log_tail, y->log_tail))
			return false;
	}
	return true;
}

bool
rw_reply_equal(const struct rw_reply *a, const struct rw_reply *b)
{
	if (!BOOL_EQ(a, b, drain) || (a->proxy_expected < 0) != (b->proxy_expected < 0) ||
	    (a->proxy_expected >= 0 && !a->proxy_expected != !b->proxy_expected) ||
	    !STR_EQ(a, b, serve_config_hash) || !text_eq(a->serve_config, b->serve_config) ||
	    !STR_EQ(a, b, stop_job) || a->heartbeat_ms != b->heartbeat_ms ||
	    !BOOL_EQ(a, b, has_submit) || a->nwatch != b->nwatch)
		return false;
	for (int i = 0; i < a->nwatch && i < RW_MAX_JOBS; i++)
		if (!STR_EQ(a, b, watch_jobs[i]))
			return false;
	if (a->has_submit) {
		const struct rw_job_submit *x = &a->submit, *y = &b->submit;
		bool cpus_x = isfinite(x->num_cpus) && x->num_cpus >= 0;
		bool cpus_y = isfinite(y->num_cpus) && y->num_cpus >= 0;
		bool gpus_x = isfinite(x->num_gpus) && x->num_gpus >= 0;
		bool gpus_y = isfinite(y->num_gpus) && y->num_gpus >= 0;
		if (!STR_EQ(x, y, submission_id) || !text_eq(x->entrypoint, y->entrypoint) ||
		    !text_eq(x->runtime_env_json, y->runtime_env_json) ||
		    !text_eq(x->metadata_json, y->metadata_json) ||
		    !text_eq(x->resources_json, y->resources_json) || cpus_x != cpus_y ||
		    (cpus_x && x->num_cpus != y->num_cpus) || gpus_x != gpus_y ||
		    (gpus_x && x->num_gpus != y->num_gpus) || (x->memory < 0) != (y->memory < 0) ||
		    (x->memory >= 0 && x->memory != y->memory))
			return false;
	}
	return true;
}

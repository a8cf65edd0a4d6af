/*
 * classify.c - what Ray's answers mean. Pure: no I/O, no globals.
 */
#include "classify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw/json.h"
#include "rw/text.h"

#define SNIPPET 80

const char *
rw_probe_kind_name(enum rw_probe_kind k)
{
	static const char *names[] = {"raylet", "gcs", "proxy", "serve_api"};
	return (unsigned)k < RW_KIND_COUNT ? names[k] : "?";
}

void
rw_snippet(const char *body, size_t len, size_t max, char *out, size_t outlen)
{
	size_t o = 0;
	if (!outlen)
		return;
	if (!body)
		len = 0;
	while (len && (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t'))
		body++, len--;
	while (len && (body[len - 1] == ' ' || body[len - 1] == '\n' || body[len - 1] == '\r' ||
		       body[len - 1] == '\t'))
		len--;
	int cut = len > max;
	if (cut)
		len = max;
	for (size_t i = 0; i < len && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)body[i];
		out[o++] = (c < 0x20 || c >= 0x7f) ? (c == '\n' ? ' ' : '?') : (char)c;
	}
	if (cut && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = 0;
}

/* Does the body, trimmed of surrounding white space, equal s? */
static int
body_is(const struct rw_http_outcome *o, const char *s)
{
	const char *b = o->body;
	size_t n = o->body ? o->body_len : 0, sl = strlen(s);
	while (n && (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t'))
		b++, n--;
	while (n && (b[n - 1] == ' ' || b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == '\t'))
		n--;
	return n == sl && memcmp(b, s, sl) == 0;
}

/* Does the body contain s (bounded search, binary-safe)? */
static int
body_has(const struct rw_http_outcome *o, const char *s)
{
	size_t sl = strlen(s);
	if (!o->body || o->body_len < sl)
		return 0;
	for (size_t i = 0; i + sl <= o->body_len; i++)
		if (o->body[i] == s[0] && memcmp(o->body + i, s, sl) == 0)
			return 1;
	return 0;
}

/* Transport errors common to every kind; returns 1 when o->err was set. */
static int
transport(const struct rw_http_outcome *o, const char *what, enum rw_probe_state refused,
	  enum rw_probe_state *st, char *reason, size_t rl)
{
	switch (o->err) {
	case 0:
		return 0;
	case -ECONNREFUSED:
		*st = refused;
		snprintf(reason, rl, "connection refused (%s not listening)", what);
		return 1;
	case -ETIMEDOUT:
		*st = RW_PROBE_TIMEOUT;
		snprintf(reason, rl, "no answer within the probe timeout");
		return 1;
	case -EMSGSIZE:
		*st = RW_PROBE_ERROR;
		snprintf(reason, rl, "answer larger than the body limit");
		return 1;
	case -ECANCELED:
		*st = RW_PROBE_UNKNOWN;
		snprintf(reason, rl, "probe cancelled");
		return 1;
	case -ELIBACC:
		*st = RW_PROBE_ERROR;
		snprintf(reason, rl,
			 "HTTP client unavailable: libcurl could not be loaded (see log)");
		return 1;
	default:
		*st = RW_PROBE_ERROR;
		snprintf(reason, rl, "transport error (%s)", strerror(-o->err));
		return 1;
	}
}

enum rw_probe_state
rw_classify(enum rw_probe_kind k, const struct rw_http_outcome *o, char *reason, size_t rl)
{
	enum rw_probe_state st = RW_PROBE_ERROR;
	char snip[SNIPPET + 8];

	if (!rl)
		return RW_PROBE_ERROR;
	reason[0] = 0;
	rw_snippet(o->body, o->body_len, SNIPPET, snip, sizeof(snip));

	switch (k) {
	case RW_KIND_RAYLET:
		if (transport(o, "dashboard agent", RW_PROBE_REFUSED, &st, reason, rl))
			return st;
		if (o->status == 200 && body_is(o, "success"))
			return snprintf(reason, rl, "success"), RW_PROBE_OK;
		if (o->status == 503 && body_has(o, "Local Raylet failed"))
			return snprintf(reason, rl, "Local Raylet failed"), RW_PROBE_FAIL;
		if (o->status == 503)
			return snprintf(reason, rl, "503: %s", snip), RW_PROBE_FAIL;
		snprintf(reason, rl, "unexpected answer %ld: %s", o->status, snip);
		return RW_PROBE_ERROR;
	case RW_KIND_GCS:
		if (transport(o, "dashboard", RW_PROBE_REFUSED, &st, reason, rl))
			return st;
		if (o->status == 200 && body_is(o, "success"))
			return snprintf(reason, rl, "success"), RW_PROBE_OK;
		if (o->status == 503)
			return snprintf(reason, rl, "%s", snip[0] ? snip : "503"), RW_PROBE_FAIL;
		snprintf(reason, rl, "unexpected answer %ld: %s", o->status, snip);
		return RW_PROBE_ERROR;
	case RW_KIND_PROXY:
		if (transport(o, "no serve proxy on this node", RW_PROBE_ABSENT, &st, reason, rl)) {
			if (st == RW_PROBE_ABSENT)
				snprintf(reason, rl,
					 "connection refused (no serve proxy on this node)");
			return st;
		}
		if (o->status == 200 && body_is(o, "success"))
			return snprintf(reason, rl, "success"), RW_PROBE_OK;
		if (o->status == 503 && body_has(o, "This node is being drained."))
			return snprintf(reason, rl, "This node is being drained."),
			       RW_PROBE_DRAINING;
		if (o->status == 503 && body_has(o, "Route table is not populated yet."))
			return snprintf(reason, rl, "Route table is not populated yet."),
			       RW_PROBE_STARTING;
		if (o->status == 503 && body_has(o, "No replicas are available yet."))
			return snprintf(reason, rl, "No replicas are available yet."),
			       RW_PROBE_STARTING;
		if (o->status == 503)
			return snprintf(reason, rl, "503: %s", snip), RW_PROBE_FAIL;
		snprintf(reason, rl, "unexpected answer %ld: %s", o->status, snip);
		return RW_PROBE_ERROR;
	case RW_KIND_SERVE_API:
		if (transport(o, "dashboard", RW_PROBE_REFUSED, &st, reason, rl))
			return st;
		if (o->status == 200) {
			/* The JSON itself is checked by rw_serve_status_parse. */
			return snprintf(reason, rl, "ok"), RW_PROBE_OK;
		}
		if (o->status == 503)
			return snprintf(reason, rl, "503: %s", snip), RW_PROBE_FAIL;
		snprintf(reason, rl, "unexpected answer %ld: %s", o->status, snip);
		return RW_PROBE_ERROR;
	default:
		snprintf(reason, rl, "unknown probe kind");
		return RW_PROBE_ERROR;
	}
}

/* ---- serve applications ---- */

/*
 * String token t into out when it fits (returns NULL); else a copy of the
 * whole string for the caller to cut. NULL with out "" when t is not a
 * string or memory ran out.
 */
static char *
jstr_or_dup(const struct rw_json *j, int t, char *out, size_t outlen)
{
	out[0] = 0;
	if (t < 0 || rw_json_type(j, t) != RW_JSON_STRING)
		return NULL;
	if (rw_json_str(j, t, out, outlen) >= 0)
		return NULL;
	return rw_json_strdup(j, t);
}

/* Copy string token t into out, truncating (on a UTF-8 boundary) if needed. */
static void
jcopy(const struct rw_json *j, int t, char *out, size_t outlen)
{
	(void)rw_json_str_cut(j, t, out, outlen);
}

/*
 * Copy a Serve message (string token t) that may not fit: its first line
 * and its end (a traceback's exception, what the user needs), joined by
 * "\n...\n", on UTF-8 boundaries.
 */
static void
jcopy_msg(const struct rw_json *j, int t, char *out, size_t outlen)
{
	char *s;
	if (outlen < 16) {
		out[0] = 0;
		return;
	}
	s = jstr_or_dup(j, t, out, outlen);
	if (!s)
		return;
	size_t n = strlen(s), room = outlen - 1 - 5, head, from;
	const char *nl = strchr(s, '\n');
	if (n < outlen) {
		memcpy(out, s, n + 1);
		free(s);
		return;
	}
	head = nl ? (size_t)(nl - s) : 0;
	head = rw_utf8_cut(s, n, head < room / 2 ? head : room / 2);
	from = n - (room - head);
	while (from < n && ((unsigned char)s[from] & 0xc0) == 0x80)
		from++;
	memcpy(out, s, head);
	memcpy(out + head, "\n...\n", 5);
	memcpy(out + head + 5, s + from, n - from);
	out[head + 5 + (n - from)] = 0;
	free(s);
}

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t
fnv_s(uint64_t h, const char *s)
{
	return fnv(h, s, strlen(s) + 1);
}

static struct rw_serve_node *
node_get(struct rw_serve_status *st, const char *id, const char *ip, int *err)
{
	for (int i = 0; i < st->nnodes; i++)
		if (strcmp(st->nodes[i].node_id, id) == 0)
			return &st->nodes[i];
	if (st->nnodes >= RW_MAX_NODES) {
		*err = -EMSGSIZE;
		return NULL;
	}
	if (st->nnodes % 16 == 0) {
		void *p = realloc(st->nodes, sizeof(*st->nodes) * (size_t)(st->nnodes + 16));
		if (!p) {
			*err = -ENOMEM;
			return NULL;
		}
		st->nodes = p;
	}
	struct rw_serve_node *n = &st->nodes[st->nnodes++];
	memset(n, 0, sizeof(*n));
	snprintf(n->node_id, sizeof(n->node_id), "%s", id);
	snprintf(n->node_ip, sizeof(n->node_ip), "%s", ip);
	return n;
}

static int
replica_active(const char *state)
{
	return strcmp(state, "STARTING") == 0 || strcmp(state, "UPDATING") == 0 ||
	       strcmp(state, "RECOVERING") == 0 || strcmp(state, "RUNNING") == 0;
}

void
rw_serve_status_fini(struct rw_serve_status *st)
{
	if (!st)
		return;
	for (int i = 0; st->apps && i < st->napps; i++)
		free(st->apps[i].deps);
	free(st->apps);
	free(st->nodes);
	memset(st, 0, sizeof(*st));
}

static int
parse_deployments(const struct rw_json *j, int deps, struct rw_serve_app *app,
		  struct rw_serve_status *st, char *err, size_t errlen)
{
	int i, k, v, rv = 0;
	int n = rw_json_size(j, deps);
	if (n > RW_MAX_DEPS) {
		snprintf(err, errlen, "application %s has more than %d deployments", app->name,
			 RW_MAX_DEPS);
		return -EMSGSIZE;
	}
	if (n == 0)
		return 0;
	app->deps = calloc((size_t)n, sizeof(*app->deps));
	if (!app->deps)
		return -ENOMEM;
	RW_JSON_OBJ_FOREACH (j, deps, i, k, v) {
		struct rw_serve_dep *d = &app->deps[app->ndeps++];
		if (rw_json_type(j, v) != RW_JSON_OBJECT) {
			snprintf(err, errlen, "deployment is not an object");
			return -EINVAL;
		}
		jcopy(j, k, d->name, sizeof(d->name));
		jcopy(j, rw_json_get(j, v, "status"), d->status, sizeof(d->status));
		jcopy_msg(j, rw_json_get(j, v, "message"), d->message, sizeof(d->message));
		int64_t x;
		/* Unknown target (autoscaling without target_num_replicas): 0, since
		 * the wire decoder accepts only 0..INT_MAX. */
		d->replicas_target = 0;
		if (rw_json_int(j, rw_json_get(j, v, "target_num_replicas"), &x) == 0 && x >= 0 &&
		    x < 1000000)
			d->replicas_target = (int)x;
		else if (rw_json_int(j, rw_json_path(j, v, "deployment_config.num_replicas"), &x) ==
			     0 &&
			 x >= 0 && x < 1000000)
			d->replicas_target = (int)x;
		int reps = rw_json_get(j, v, "replicas"), ri, r;
		if (reps >= 0 && rw_json_type(j, reps) != RW_JSON_ARRAY) {
			snprintf(err, errlen, "replicas is not an array");
			return -EINVAL;
		}
		RW_JSON_ARR_FOREACH (j, reps, ri, r) {
			char state[24], nid[RW_ID_MAX], nip[64];
			jcopy(j, rw_json_get(j, r, "state"), state, sizeof(state));
			jcopy(j, rw_json_get(j, r, "node_id"), nid, sizeof(nid));
			jcopy(j, rw_json_get(j, r, "node_ip"), nip, sizeof(nip));
			if (strcmp(state, "RUNNING") == 0)
				d->replicas_running++;
			if (!nid[0] || !replica_active(state))
				continue;
			struct rw_serve_node *node = node_get(st, nid, nip, &rv);
			if (!node) {
				snprintf(err, errlen, "more than %d nodes", RW_MAX_NODES);
				return rv;
			}
			node->replicas++;
		}
	}
	return 0;
}

int
rw_serve_status_parse(const char *body, size_t len, struct rw_serve_status *st, char *err,
		      size_t errlen)
{
	struct rw_json j = {0};
	int rv, i, k, v;

	memset(st, 0, sizeof(*st));
	if (errlen)
		err[0] = 0;
	if ((rv = rw_json_parse(&j, body, len, 65536, err, errlen)) != 0)
		goto fail;
	if (rw_json_type(&j, 0) != RW_JSON_OBJECT) {
		snprintf(err, errlen, "serve status is not a JSON object");
		rv = -EINVAL;
		goto fail;
	}
	jcopy(&j, rw_json_get(&j, 0, "proxy_location"), st->proxy_location,
	      sizeof(st->proxy_location));

	int proxies = rw_json_get(&j, 0, "proxies");
	RW_JSON_OBJ_FOREACH (&j, proxies, i, k, v) {
		char nid[RW_ID_MAX], nip[64];
		jcopy(&j, rw_json_get(&j, v, "node_id"), nid, sizeof(nid));
		if (!nid[0])
			jcopy(&j, k, nid, sizeof(nid));
		jcopy(&j, rw_json_get(&j, v, "node_ip"), nip, sizeof(nip));
		struct rw_serve_node *n = node_get(st, nid, nip, &rv);
		if (!n) {
			snprintf(err, errlen, "more than %d nodes", RW_MAX_NODES);
			goto fail;
		}
		jcopy(&j, rw_json_get(&j, v, "status"), n->proxy_status, sizeof(n->proxy_status));
	}

	int apps = rw_json_get(&j, 0, "applications");
	if (apps >= 0 && rw_json_type(&j, apps) != RW_JSON_OBJECT) {
		snprintf(err, errlen, "applications is not an object");
		rv = -EINVAL;
		goto fail;
	}
	int napps = rw_json_size(&j, apps);
	if (napps > RW_MAX_APPS) {
		snprintf(err, errlen, "more than %d applications", RW_MAX_APPS);
		rv = -EMSGSIZE;
		goto fail;
	}
	if (napps > 0 && !(st->apps = calloc((size_t)napps, sizeof(*st->apps)))) {
		rv = -ENOMEM;
		goto fail;
	}
	RW_JSON_OBJ_FOREACH (&j, apps, i, k, v) {
		struct rw_serve_app *a = &st->apps[st->napps++];
		if (rw_json_type(&j, v) != RW_JSON_OBJECT) {
			snprintf(err, errlen, "application is not an object");
			rv = -EINVAL;
			goto fail;
		}
		jcopy(&j, k, a->name, sizeof(a->name));
		jcopy(&j, rw_json_get(&j, v, "status"), a->status, sizeof(a->status));
		jcopy_msg(&j, rw_json_get(&j, v, "message"), a->message, sizeof(a->message));
		jcopy(&j, rw_json_get(&j, v, "route_prefix"), a->route_prefix,
		      sizeof(a->route_prefix));
		int deps = rw_json_get(&j, v, "deployments");
		if (deps >= 0 && rw_json_type(&j, deps) != RW_JSON_OBJECT) {
			snprintf(err, errlen, "deployments is not an object");
			rv = -EINVAL;
			goto fail;
		}
		if ((rv = parse_deployments(&j, deps, a, st, err, errlen)) != 0)
			goto fail;
	}

	uint64_t h = 1469598103934665603ULL;
	h = fnv_s(h, st->proxy_location);
	for (int a = 0; a < st->napps; a++) {
		h = fnv_s(h, st->apps[a].name);
		h = fnv_s(h, st->apps[a].status);
		h = fnv_s(h, st->apps[a].message);
		h = fnv_s(h, st->apps[a].route_prefix);
		for (int d = 0; d < st->apps[a].ndeps; d++) {
			const struct rw_serve_dep *dp = &st->apps[a].deps[d];
			h = fnv_s(h, dp->name);
			h = fnv_s(h, dp->status);
			h = fnv_s(h, dp->message);
			h = fnv(h, &dp->replicas_running, sizeof(int));
			h = fnv(h, &dp->replicas_target, sizeof(int));
		}
	}
	for (int n = 0; n < st->nnodes; n++) {
		h = fnv_s(h, st->nodes[n].node_id);
		h = fnv_s(h, st->nodes[n].node_ip);
		h = fnv_s(h, st->nodes[n].proxy_status);
		h = fnv(h, &st->nodes[n].replicas, sizeof(int));
	}
	st->digest = h;
	rw_json_fini(&j);
	return 0;
fail:
	rw_json_fini(&j);
	rw_serve_status_fini(st);
	return rv;
}

/* ---- jobs ---- */

int
rw_job_terminal(const char *s)
{
	return strcmp(s, "STOPPED") == 0 || strcmp(s, "SUCCEEDED") == 0 || strcmp(s, "FAILED") == 0;
}

static int
transport_reason(const struct rw_http_outcome *o, char *reason, size_t rl)
{
	if (o->err == 0)
		return 0;
	enum rw_probe_state st;
	transport(o, "dashboard", RW_PROBE_REFUSED, &st, reason, rl);
	return o->err;
}

int
rw_job_parse(const struct rw_http_outcome *o, struct rw_job_outcome *out, char *reason, size_t rl)
{
	struct rw_json j = {0};
	char snip[SNIPPET + 8];
	int rv;

	memset(out, 0, sizeof(*out));
	reason[0] = 0;
	if ((rv = transport_reason(o, reason, rl)) != 0)
		return rv;
	rw_snippet(o->body, o->body_len, SNIPPET, snip, sizeof(snip));
	if (o->status == 404) {
		snprintf(reason, rl, "%s", snip[0] ? snip : "job does not exist");
		return 0;
	}
	if (o->status != 200) {
		snprintf(reason, rl, "unexpected answer %ld: %s", o->status, snip);
		return -EPROTO;
	}
	if ((rv = rw_json_parse(&j, o->body, o->body_len, 4096, reason, rl)) != 0)
		goto out;
	if (rw_json_type(&j, 0) != RW_JSON_OBJECT) {
		snprintf(reason, rl, "job details are not a JSON object");
		rv = -EINVAL;
		goto out;
	}
	jcopy(&j, rw_json_get(&j, 0, "status"), out->status, sizeof(out->status));
	if (!out->status[0]) {
		snprintf(reason, rl, "job details without a status");
		rv = -EINVAL;
		goto out;
	}
	/* A failed job's message ends with the driver's last output: keep the end too. */
	jcopy_msg(&j, rw_json_get(&j, 0, "message"), out->message, sizeof(out->message));
	out->start_time_ms = out->end_time_ms = -1;
	rw_json_int(&j, rw_json_get(&j, 0, "start_time"), &out->start_time_ms);
	rw_json_int(&j, rw_json_get(&j, 0, "end_time"), &out->end_time_ms);
	jcopy(&j, rw_json_get(&j, 0, "error_type"), out->error_type, sizeof(out->error_type));
	int64_t code;
	if (rw_json_int(&j, rw_json_get(&j, 0, "driver_exit_code"), &code) == 0 &&
	    code >= INT32_MIN && code <= INT32_MAX) {
		out->has_exit_code = 1;
		out->driver_exit_code = (int)code;
	}
	out->found = 1;
out:
	rw_json_fini(&j);
	return rv;
}

int
rw_job_submit_result(const struct rw_http_outcome *o, char *reason, size_t rl)
{
	char snip[SNIPPET + 8];
	int rv;
	reason[0] = 0;
	if ((rv = transport_reason(o, reason, rl)) != 0)
		return rv;
	if (o->status == 200)
		return snprintf(reason, rl, "submitted"), 0;
	if (o->status == 500 && body_has(o, "Please use a different submission_id"))
		return snprintf(reason, rl, "already submitted"), 1;
	rw_snippet(o->body, o->body_len, 200, snip, sizeof(snip));
	snprintf(reason, rl, "job submit failed: %ld: %s", o->status, snip);
	return -EPROTO;
}

int
rw_serve_put_result(const struct rw_http_outcome *o, char *reason, size_t rl)
{
	char snip[400];
	int rv;
	reason[0] = 0;
	if ((rv = transport_reason(o, reason, rl)) != 0)
		return rv;
	if (o->status == 200)
		return snprintf(reason, rl, "accepted"), 0;
	rw_snippet(o->body, o->body_len, 380, snip, sizeof(snip));
	snprintf(reason, rl, "serve config rejected: %ld: %s", o->status, snip);
	return -EPROTO;
}

/* Case-insensitive comparison of a header name [p, p+n) with s. */
static int
hname_is(const char *p, size_t n, const char *s)
{
	size_t sl = strlen(s);
	if (n != sl)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char a = p[i], b = s[i];
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (a != b)
			return 0;
	}
	return 1;
}

/* Does the header value [p, p+n) contain the lower-case token s (any case)? */
static int
hvalue_has(const char *p, size_t n, const char *s)
{
	size_t sl = strlen(s);
	for (size_t i = 0; i + sl <= n; i++) {
		size_t k;
		for (k = 0; k < sl; k++) {
			char a = p[i + k];
			if (a >= 'A' && a <= 'Z')
				a = (char)(a - 'A' + 'a');
			if (a != s[k])
				break;
		}
		if (k == sl)
			return 1;
	}
	return 0;
}

static const char *
find_crlf(const char *p, const char *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '\r' && p[1] == '\n')
			return p;
	return NULL;
}

/*
 * Walk a chunked body at [p, end): 1 complete, 0 more needed, -EPROTO. With
 * write set, also decode it in place. The caller decodes only once the whole
 * body is known to be there, so an incomplete body is left untouched and the
 * next read parses the same bytes again, whatever the split.
 */
static int
dechunk(char *p, char *end, size_t *out_len, int write)
{
	char *w = p, *start = p;
	for (int n = 0; n < 4096; n++) {
		const char *eol = find_crlf(p, end);
		if (!eol)
			return 0;
		size_t sz = 0;
		const char *q = p;
		int digits = 0;
		for (; q < eol && *q != ';' && *q != ' ' && *q != '\t'; q++, digits++) {
			int v;
			if (*q >= '0' && *q <= '9')
				v = *q - '0';
			else if (*q >= 'a' && *q <= 'f')
				v = *q - 'a' + 10;
			else if (*q >= 'A' && *q <= 'F')
				v = *q - 'A' + 10;
			else
				return -EPROTO;
			if (digits >= 8)
				return -EPROTO;
			sz = sz * 16 + (size_t)v;
		}
		if (!digits)
			return -EPROTO;
		char *data = (char *)eol + 2;
		if (sz == 0) {
			/* Trailers, then an empty line. */
			for (int t = 0; t < 64; t++) {
				const char *tl = find_crlf(data, end);
				if (!tl)
					return 0;
				if (tl == data) {
					*out_len = (size_t)(w - start);
					return 1;
				}
				data = (char *)tl + 2;
			}
			return -EPROTO;
		}
		if ((size_t)(end - data) < sz + 2)
			return 0;
		if (data[sz] != '\r' || data[sz + 1] != '\n')
			return -EPROTO;
		if (write)
			memmove(w, data, sz);
		w += sz;
		p = data + sz + 2;
	}
	return -EPROTO;
}

int
rw_health_resp_parse(char *buf, size_t len, int eof, long *status, const char **body,
		     size_t *body_len, int *keep)
{
	char *end = buf + len;
	const char *hdr_end = NULL;
	char *scan_end = len > RW_HEALTH_HDR_MAX ? buf + RW_HEALTH_HDR_MAX : end;

	/* memchr: the whole buffer is scanned again after every read. */
	for (char *p = buf; p + 3 < scan_end; p++) {
		p = memchr(p, '\r', (size_t)(scan_end - 3 - p));
		if (!p)
			break;
		if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n') {
			hdr_end = p;
			break;
		}
	}
	if (!hdr_end) {
		/* Bounded, so that an answer read into a growing buffer is not
		 * rescanned up to its whole size on every read. */
		if (eof || len >= RW_HEALTH_HDR_MAX || (len >= 7 && memcmp(buf, "HTTP/1.", 7) != 0))
			return -EPROTO;
		return 0;
	}
	/* Status line: HTTP/1.x NNN [reason] */
	if (hdr_end - buf < 12 || memcmp(buf, "HTTP/1.", 7) != 0 ||
	    (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
		return -EPROTO;
	long st = 0;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -EPROTO;
		st = st * 10 + (buf[i] - '0');
	}
	if (st < 200 || (hdr_end - buf > 12 && buf[12] != ' ' && buf[12] != '\r'))
		return -EPROTO;
	int kp = buf[7] == '1', chunked = 0;
	long long clen = -1;
	const char *line = find_crlf(buf, hdr_end + 2) + 2;
	while (line < hdr_end) {
		const char *eol = find_crlf(line, hdr_end + 2);
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon || colon == line)
			return -EPROTO;
		const char *v = colon + 1, *ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t nl = (size_t)(colon - line), vl = (size_t)(ve - v);
		if (hname_is(line, nl, "content-length")) {
			long long x = 0;
			if (!vl)
				return -EPROTO;
			for (size_t i = 0; i < vl; i++) {
				if (v[i] < '0' || v[i] > '9' || x > (1LL << 30))
					return -EPROTO;
				x = x * 10 + (v[i] - '0');
			}
			if (clen >= 0 && clen != x)
				return -EPROTO;
			clen = x;
		} else if (hname_is(line, nl, "transfer-encoding")) {
			if (hvalue_has(v, vl, "chunked"))
				chunked = 1;
		} else if (hname_is(line, nl, "connection")) {
			if (hvalue_has(v, vl, "close"))
				kp = 0;
			else if (hvalue_has(v, vl, "keep-alive"))
				kp = 1;
		}
		line = eol + 2;
	}
	char *b = (char *)hdr_end + 4;
	size_t have = (size_t)(end - b);
	*status = st;
	*body = b;
	if (st == 204 || st == 304) {
		*body_len = 0;
		*keep = kp && have == 0;
		return 1;
	}
	if (chunked) {
		size_t n = 0;
		int rv = dechunk(b, end, &n, 0);
		if (rv == 0 && eof)
			return -EPROTO;
		if (rv != 1)
			return rv;
		dechunk(b, end, &n, 1);
		*body_len = n;
		*keep = kp;
		return 1;
	}
	if (clen >= 0) {
		if (have < (size_t)clen)
			return eof ? -EPROTO : 0;
		*body_len = (size_t)clen;
		*keep = kp && have == (size_t)clen;
		return 1;
	}
	/* Neither: the body ends when the peer closes. */
	if (!eof)
		return 0;
	*body_len = have;
	*keep = 0;
	return 1;
}

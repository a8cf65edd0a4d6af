/*
 * webhook.c - the webhook listener and the certificate and caBundle upkeep
 * (see webhook.h).
 *
 * Upkeep runs at start and then on a timer (every minute, sooner when a
 * certificate falls due): read the Secret, create or renew what is due,
 * write it back, serve its serving certificate, and patch the caBundle of
 * the webhooks raywarden owns (by name) in the Validating and Mutating
 * WebhookConfiguration when it differs. A failed step is retried at the
 * next tick; until the first certificate is loaded, connections are refused,
 * which the API server treats as a call failure (failurePolicy Ignore: the
 * request goes through).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube.h"
#include "raycluster.h"
#include "rc_build.h"
#include "rw/base64.h"
#include "rw/httpd.h"
#include "rw/json.h"
#include "rw/log.h"
#include "wh_admission.h"
#include "wh_certs.h"
#include "wh_tls.h"
#include "webhook.h"

#define LOGC "webhook"
#define MAX_HOSTS 16
#define CHECK_PERIOD_S 60
#define RETRY_S 10
/* Restarts of one upkeep pass after losing a create or update race to another replica. */
#define MAX_RACES 3

/* The webhooks whose caBundle the controller keeps (names in the webhook configurations). */
static const char *const owned_webhooks[] = {
    "rayclusters.validate.raywarden.io",    "rayjobs.validate.raywarden.io",
    "rayservices.validate.raywarden.io",    "pods.inject-agent.raywarden.io",
    "namespaces.inject-agent.raywarden.io",
};

/* Keys of the Secret, in the order of struct rw_wh_pem's fields. */
static const char *const secret_keys[] = {"ca.crt", "ca.key", "ca-previous.crt", "tls.crt",
					  "tls.key"};

struct wh {
	struct rw_mgr *m;
	struct rw_kube *kube;
	struct rw_wh_tls *tls;
	struct rw_httpd *httpd;
	uv_timer_t timer;
	const char *ns, *secret, *config;
	char *hosts_buf;
	const char *hosts[MAX_HOSTS];
	struct rw_wh_cert_policy pol;
	struct rw_wh_pem have;	   /* the Secret's content as last read or written */
	char rv[64];		   /* its resourceVersion ("" when it does not exist) */
	char *served;		   /* tls.crt being served */
	char *bundle_b64;	   /* the caBundle the configurations should carry */
	struct rw_kube_op *op;	   /* the upkeep request in flight */
	struct write_ctx *pending; /* the Secret write in flight (freed if cancelled) */
	int races;
	int config_step; /* 0: validating, 1: mutating */
	struct rw_met_family *m_reviews, *m_renewals;
	/* The agent injection webhook: the reconciler's pod builder options (raycluster.h). */
	struct rw_raycluster_opts agent_opts;
	char advertise[512];
};

struct write_ctx;
static void upkeep_start(struct wh *w);
static void configs_next(struct wh *w);

static void **
pem_field(struct rw_wh_pem *p, int i)
{
	char **f[] = {&p->ca_crt, &p->ca_key, &p->ca_prev, &p->tls_crt, &p->tls_key};
	return (void **)f[i];
}

static void
timer_cb(uv_timer_t *t)
{
	upkeep_start(t->data);
}

/* Next pass: at the next due moment, at most a check period away. */
static void
upkeep_done(struct wh *w, bool failed)
{
	int64_t now = (int64_t)time(NULL);
	int64_t period = CHECK_PERIOD_S;
	if (w->pol.tls_validity_s / 6 < period)
		period = w->pol.tls_validity_s / 6;
	int64_t in = failed ? RETRY_S : period;
	int64_t due = rw_wh_certs_next_due(&w->have) - now;
	if (due < in)
		in = due;
	if (in < 1)
		in = 1;
	w->op = NULL;
	uv_timer_start(&w->timer, timer_cb, (uint64_t)in * 1000, 0);
}

/* ---- the Secret ---- */

static int
pem_from_secret(const char *body, size_t len, struct rw_wh_pem *out, char *rv, size_t rvlen)
{
	struct rw_json j;
	int data, rc = 0;
	memset(out, 0, sizeof(*out));
	if (rw_json_parse(&j, body, len, 4096, NULL, 0) != 0)
		return -EINVAL;
	if (rw_json_str(&j, rw_json_path(&j, 0, "metadata.resourceVersion"), rv, rvlen) < 0)
		rc = -EINVAL;
	data = rw_json_get(&j, 0, "data");
	for (int i = 0; rc == 0 && i < 5; i++) {
		size_t l;
		int t = rw_json_get(&j, data, secret_keys[i]);
		const char *s =
		    t >= 0 && rw_json_type(&j, t) == RW_JSON_STRING ? rw_json_raw(&j, t, &l) : NULL;
		if (!s || !l)
			continue;
		unsigned char *dec = malloc(l + 1);
		long n = dec ? rw_base64_decode(s, l, dec, l) : -ENOMEM;
		if (n <= 0) {
			free(dec);
			continue; /* unreadable: treated as missing, so it is made anew */
		}
		dec[n] = '\0';
		*(char **)pem_field(out, i) = (char *)dec;
	}
	rw_json_fini(&j);
	if (rc)
		rw_wh_pem_fini(out);
	return rc;
}

static void
put_b64(struct rw_jw *jw, const char *key, const char *pem)
{
	size_t n = rw_base64_len(strlen(pem)) + 1;
	char *b = malloc(n);
	rw_jw_key(jw, key);
	if (!b) {
		rw_jw_null(jw); /* caught below: the write is refused as incomplete */
		return;
	}
	rw_base64_encode(pem, strlen(pem), b, n);
	rw_jw_str(jw, b);
	free(b);
}

/* The Secret body (create) or merge patch (update, with the resourceVersion precondition). */
static int
secret_body(const struct wh *w, const struct rw_wh_pem *p, bool create, struct rw_buf *out)
{
	struct rw_jw jw;
	rw_jw_init(&jw, out);
	rw_jw_obj_begin(&jw);
	if (create) {
		rw_jw_kstr(&jw, "apiVersion", "v1");
		rw_jw_kstr(&jw, "kind", "Secret");
		rw_jw_kstr(&jw, "type", "kubernetes.io/tls");
	}
	rw_jw_key(&jw, "metadata");
	rw_jw_obj_begin(&jw);
	if (create) {
		rw_jw_kstr(&jw, "name", w->secret);
		rw_jw_kstr(&jw, "namespace", w->ns);
		rw_jw_key(&jw, "labels");
		rw_jw_obj_begin(&jw);
		rw_jw_kstr(&jw, "app.kubernetes.io/name", "raywarden");
		rw_jw_kstr(&jw, "app.kubernetes.io/component", "webhook");
		rw_jw_obj_end(&jw);
	} else {
		rw_jw_kstr(&jw, "resourceVersion", w->rv);
	}
	rw_jw_obj_end(&jw);
	rw_jw_key(&jw, "data");
	rw_jw_obj_begin(&jw);
	for (int i = 0; i < 5; i++) {
		const char *v = *(char **)pem_field((struct rw_wh_pem *)p, i);
		if (v)
			put_b64(&jw, secret_keys[i], v);
		else if (!create) {
			rw_jw_key(&jw, secret_keys[i]);
			rw_jw_null(&jw); /* merge patch: remove the key */
		}
	}
	rw_jw_obj_end(&jw);
	rw_jw_obj_end(&jw);
	return rw_jw_finish(&jw);
}

static void
serve(struct wh *w)
{
	char err[256];
	if (!w->have.tls_crt || !w->have.tls_key ||
	    (w->served && strcmp(w->served, w->have.tls_crt) == 0))
		return;
	/* The chain: the serving certificate alone; the client holds the CA in caBundle. */
	if (rw_wh_tls_set_cert(w->tls, w->have.tls_crt, w->have.tls_key, err, sizeof(err)) != 0) {
		rw_error(LOGC, "cannot serve the certificate of Secret %s/%s: %s", w->ns, w->secret,
			 err);
		return;
	}
	free(w->served);
	w->served = strdup(w->have.tls_crt);
	struct rw_wh_cert_info i;
	if (rw_wh_cert_info(w->have.tls_crt, &i) == 0)
		rw_info(LOGC, "serving certificate %s, valid until %lld", i.subject,
			(long long)i.not_after);
}

static void
adopt(struct wh *w)
{
	struct rw_buf b;
	serve(w);
	rw_buf_init(&b, 64 * 1024);
	if (rw_wh_certs_bundle(&w->have, &b) == 0) {
		size_t n = rw_base64_len(b.len) + 1;
		char *s = malloc(n);
		if (s) {
			rw_base64_encode(b.data, b.len, s, n);
			free(w->bundle_b64);
			w->bundle_b64 = s;
		}
	}
	rw_buf_fini(&b);
	w->config_step = 0;
	configs_next(w);
}

static void secret_get_cb(const struct rw_kube_resp *r, void *ud);

static void
restart_after_race(struct wh *w, const char *what)
{
	if (++w->races > MAX_RACES) {
		rw_warn(LOGC, "Secret %s/%s: %s lost to other writers %d times; next try later",
			w->ns, w->secret, what, MAX_RACES);
		upkeep_done(w, true);
		return;
	}
	rw_debug(LOGC, "Secret %s/%s: %s raced with another replica: reading it again", w->ns,
		 w->secret, what);
	char path[600];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", w->ns, w->secret);
	struct rw_kube_req q = {.method = "GET", .path = path};
	if (rw_kube_request(w->kube, &q, secret_get_cb, w, &w->op) != 0)
		upkeep_done(w, true);
}

struct write_ctx {
	struct wh *w;
	struct rw_wh_pem next;
	bool create;
};

static void
secret_write_cb(const struct rw_kube_resp *r, void *ud)
{
	struct write_ctx *c = ud;
	struct wh *w = c->w;
	w->pending = NULL;
	if (r->err == 0 && r->status >= 200 && r->status < 300) {
		char rv[64] = "";
		struct rw_wh_pem tmp;
		rw_wh_pem_fini(&w->have);
		w->have = c->next;
		memset(&c->next, 0, sizeof(c->next));
		if (pem_from_secret(r->body, r->body_len, &tmp, rv, sizeof(rv)) == 0) {
			snprintf(w->rv, sizeof(w->rv), "%s", rv);
			rw_wh_pem_fini(&tmp);
		}
		free(c);
		adopt(w);
		return;
	}
	bool race = r->status == 409 && (!c->create || rw_kube_already_exists(r));
	if (!race)
		rw_warn(LOGC, "Secret %s/%s: %s failed: HTTP %ld %s", w->ns, w->secret,
			c->create ? "create" : "update", r->status, r->message);
	rw_wh_pem_fini(&c->next);
	bool create = c->create;
	free(c);
	if (race)
		restart_after_race(w, create ? "create" : "update");
	else
		upkeep_done(w, true);
}

/* Renew what is due in the Secret's content and write it back (or create the Secret). */
static void
refresh(struct wh *w, bool exists)
{
	char why[256], err[256], path[600];
	struct write_ctx *c = calloc(1, sizeof(*c));
	struct rw_buf body;
	int rv;
	if (!c || rw_wh_pem_copy(&c->next, &w->have) != 0) {
		free(c);
		upkeep_done(w, true);
		return;
	}
	c->w = w;
	c->create = !exists;
	rv = rw_wh_certs_refresh(&c->next, &w->pol, (int64_t)time(NULL), rw_wh_tls_random, w->tls,
				 why, sizeof(why), err, sizeof(err));
	if (rv < 0) {
		rw_error(LOGC, "cannot make the webhook certificates: %s", err);
		rw_wh_pem_fini(&c->next);
		free(c);
		upkeep_done(w, true);
		return;
	}
	if (rv == 0 && exists) {
		rw_wh_pem_fini(&c->next);
		free(c);
		adopt(w);
		return;
	}
	rw_info(LOGC, "Secret %s/%s: %s", w->ns, w->secret, why);
	if (rv & RW_WH_NEW_CA)
		rw_met_add(w->m_renewals, (const char *const[]){"ca"}, 1);
	if (rv & RW_WH_NEW_TLS)
		rw_met_add(w->m_renewals, (const char *const[]){"serving"}, 1);
	rw_buf_init(&body, 256 * 1024);
	if (secret_body(w, &c->next, c->create, &body) != 0) {
		rw_buf_fini(&body);
		rw_wh_pem_fini(&c->next);
		free(c);
		upkeep_done(w, true);
		return;
	}
	if (c->create)
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets", w->ns);
	else
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", w->ns, w->secret);
	struct rw_kube_req q = {.method = c->create ? "POST" : "PATCH",
				.path = path,
				.body = body.data,
				.body_len = body.len,
				.content_type =
				    c->create ? "application/json" : "application/merge-patch+json",
				.no_retry = 1};
	if (rw_kube_request(w->kube, &q, secret_write_cb, c, &w->op) != 0) {
		rw_wh_pem_fini(&c->next);
		free(c);
		upkeep_done(w, true);
	} else {
		w->pending = c;
	}
	memset(body.data, 0, body.len); /* it held the keys */
	rw_buf_fini(&body);
}

static void
secret_get_cb(const struct rw_kube_resp *r, void *ud)
{
	struct wh *w = ud;
	if (r->err == 0 && r->status == 404) {
		rw_wh_pem_fini(&w->have);
		w->rv[0] = '\0';
		refresh(w, false);
		return;
	}
	if (r->err || r->status != 200) {
		rw_warn(LOGC, "Secret %s/%s: read failed: HTTP %ld %s", w->ns, w->secret, r->status,
			r->message);
		upkeep_done(w, true);
		return;
	}
	struct rw_wh_pem p;
	if (pem_from_secret(r->body, r->body_len, &p, w->rv, sizeof(w->rv)) != 0) {
		rw_warn(LOGC, "Secret %s/%s: not a Secret", w->ns, w->secret);
		upkeep_done(w, true);
		return;
	}
	rw_wh_pem_fini(&w->have);
	w->have = p;
	refresh(w, true);
}

static void
upkeep_start(struct wh *w)
{
	char path[600];
	w->races = 0;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", w->ns, w->secret);
	struct rw_kube_req q = {.method = "GET", .path = path};
	if (rw_kube_request(w->kube, &q, secret_get_cb, w, &w->op) != 0)
		upkeep_done(w, true);
}

/* ---- caBundle of the webhook configurations ---- */

static bool
owned(const struct rw_json *j, int name)
{
	for (size_t i = 0; i < sizeof(owned_webhooks) / sizeof(owned_webhooks[0]); i++)
		if (rw_json_streq(j, name, owned_webhooks[i]))
			return true;
	return false;
}

/*
 * The JSON patch that sets caBundle on every owned webhook of a configuration
 * whose caBundle differs ("" when none does). Each replacement is guarded by
 * a test of the webhook's name at that index, so a configuration edited in
 * between makes the patch fail (422) instead of touching another webhook.
 */
static int
bundle_patch(const char *body, size_t len, const char *b64, struct rw_buf *out)
{
	struct rw_json j;
	struct rw_jw jw;
	int hooks, i, h, n = 0;
	if (rw_json_parse(&j, body, len, 65536, NULL, 0) != 0)
		return -EINVAL;
	hooks = rw_json_get(&j, 0, "webhooks");
	rw_jw_init(&jw, out);
	rw_jw_arr_begin(&jw);
	RW_JSON_ARR_FOREACH (&j, hooks, i, h) {
		int name = rw_json_get(&j, h, "name");
		if (!owned(&j, name) ||
		    rw_json_streq(&j, rw_json_path(&j, h, "clientConfig.caBundle"), b64))
			continue;
		char p[64], nm[128];
		rw_json_str(&j, name, nm, sizeof(nm));
		rw_jw_obj_begin(&jw);
		rw_jw_kstr(&jw, "op", "test");
		snprintf(p, sizeof(p), "/webhooks/%d/name", i);
		rw_jw_kstr(&jw, "path", p);
		rw_jw_kstr(&jw, "value", nm);
		rw_jw_obj_end(&jw);
		rw_jw_obj_begin(&jw);
		rw_jw_kstr(&jw, "op", "add");
		snprintf(p, sizeof(p), "/webhooks/%d/clientConfig/caBundle", i);
		rw_jw_kstr(&jw, "path", p);
		rw_jw_kstr(&jw, "value", b64);
		rw_jw_obj_end(&jw);
		n++;
	}
	rw_jw_arr_end(&jw);
	rw_json_fini(&j);
	if (rw_jw_finish(&jw) != 0)
		return -ENOMEM;
	if (n == 0)
		rw_buf_reset(out);
	return 0;
}

static const char *
config_kind(int step)
{
	return step == 0 ? "validatingwebhookconfigurations" : "mutatingwebhookconfigurations";
}

static void
config_patch_cb(const struct rw_kube_resp *r, void *ud)
{
	struct wh *w = ud;
	if (r->err || r->status < 200 || r->status >= 300)
		rw_warn(LOGC, "%s %s: caBundle patch failed: HTTP %ld %s",
			config_kind(w->config_step), w->config, r->status, r->message);
	else
		rw_info(LOGC, "%s %s: caBundle updated", config_kind(w->config_step), w->config);
	w->config_step++;
	configs_next(w);
}

static void
config_get_cb(const struct rw_kube_resp *r, void *ud)
{
	struct wh *w = ud;
	char path[600];
	struct rw_buf patch;
	if (r->err == 0 && r->status == 404) {
		/* Not installed (e.g. only the validating webhook is): nothing to keep. */
		w->config_step++;
		configs_next(w);
		return;
	}
	if (r->err || r->status != 200) {
		rw_warn(LOGC, "%s %s: read failed: HTTP %ld %s", config_kind(w->config_step),
			w->config, r->status, r->message);
		w->config_step++;
		configs_next(w);
		return;
	}
	rw_buf_init(&patch, 1u << 20);
	if (bundle_patch(r->body, r->body_len, w->bundle_b64, &patch) != 0 || patch.len == 0) {
		rw_buf_fini(&patch);
		w->config_step++;
		configs_next(w);
		return;
	}
	snprintf(path, sizeof(path), "/apis/admissionregistration.k8s.io/v1/%s/%s",
		 config_kind(w->config_step), w->config);
	struct rw_kube_req q = {.method = "PATCH",
				.path = path,
				.body = patch.data,
				.body_len = patch.len,
				.content_type = "application/json-patch+json",
				.no_retry = 1};
	int rv = rw_kube_request(w->kube, &q, config_patch_cb, w, &w->op);
	rw_buf_fini(&patch);
	if (rv != 0) {
		w->config_step++;
		configs_next(w);
	}
}

static void
configs_next(struct wh *w)
{
	char path[600];
	if (w->config_step > 1 || !w->bundle_b64) {
		upkeep_done(w, false);
		return;
	}
	snprintf(path, sizeof(path), "/apis/admissionregistration.k8s.io/v1/%s/%s",
		 config_kind(w->config_step), w->config);
	struct rw_kube_req q = {.method = "GET", .path = path};
	if (rw_kube_request(w->kube, &q, config_get_cb, w, &w->op) != 0)
		upkeep_done(w, true);
}

/* ---- requests ---- */

static void
handle(const struct rw_httpd_req *req, struct rw_httpd_resp *resp, void *ud)
{
	struct wh *w = ud;
	struct rw_wh_review r;
	struct rw_wh_verdict v;
	char err[256];
	const char *result;

	if (!strcmp(req->path, "/healthz")) {
		rw_buf_puts(&resp->body, "ok\n");
		return;
	}
	bool inject = strcmp(req->path, RW_WH_PATH_INJECT) == 0;
	if (!inject && strcmp(req->path, RW_WH_PATH_VALIDATE) != 0) {
		resp->status = 404;
		rw_buf_puts(&resp->body, "not found\n");
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		resp->status = 405;
		rw_buf_puts(&resp->body, "POST an AdmissionReview\n");
		return;
	}
	if (rw_wh_review_parse(req->body, req->body_len, &r, err, sizeof(err)) != 0) {
		resp->status = 400;
		rw_buf_printf(&resp->body, "bad AdmissionReview: %s\n", err);
		rw_met_add(w->m_reviews, (const char *const[]){"error"}, 1);
		return;
	}
	if ((inject ? rw_wh_inject(&r, &w->agent_opts, &v) : rw_wh_validate(&r, &v)) != 0) {
		/* Out of memory: a 500 is a call failure, which failurePolicy Ignore lets pass. */
		rw_wh_review_fini(&r);
		resp->status = 500;
		rw_met_add(w->m_reviews, (const char *const[]){"error"}, 1);
		return;
	}
	resp->content_type = "application/json";
	if (rw_wh_review_answer(&resp->body, r.uid, &v) != 0) {
		rw_buf_reset(&resp->body);
		resp->status = 500;
	}
	result = v.patch ? "mutated" : v.allowed ? "allowed" : "denied";
	if (v.patch) {
		char cluster[64] = "";
		rw_json_str(&r.j,
			    rw_json_get(&r.j, rw_json_path(&r.j, r.object, "metadata.labels"),
					"ray.io/cluster"),
			    cluster, sizeof(cluster));
		rw_info(LOGC, "agent injected into a pod of RayCluster %s/%s", r.ns, cluster);
	}
	rw_wh_verdict_fini(&v);
	rw_met_add(w->m_reviews, (const char *const[]){result}, 1);
	if (!v.allowed)
		rw_info(LOGC, "%s %s %s/%s denied: %s", r.operation, r.kind, r.ns, r.name, v.msg);
	rw_wh_review_fini(&r);
}

/* ---- set-up ---- */

static void wh_teardown(void *state);

static int
split_hosts(struct wh *w, const struct rw_mgr_config *cfg)
{
	size_t n = strlen(cfg->webhook_service) * 2 + strlen(w->ns) * 2 +
		   (cfg->webhook_cert_hosts ? strlen(cfg->webhook_cert_hosts) : 0) + 64;
	char *b = malloc(n), *p;
	int k = 0;
	if (!b)
		return -ENOMEM;
	w->hosts_buf = b;
	/* <service>.<ns>.svc is what the API server's service resolver dials. */
	p = b;
	w->hosts[k++] = p;
	p += sprintf(p, "%s.%s.svc", cfg->webhook_service, w->ns) + 1;
	w->hosts[k++] = p;
	p += sprintf(p, "%s.%s.svc.cluster.local", cfg->webhook_service, w->ns) + 1;
	if (cfg->webhook_cert_hosts) {
		strcpy(p, cfg->webhook_cert_hosts);
		for (char *tok = p; tok && k < MAX_HOSTS;) {
			char *comma = strchr(tok, ',');
			if (comma)
				*comma = '\0';
			if (*tok)
				w->hosts[k++] = tok;
			tok = comma ? comma + 1 : NULL;
		}
	}
	w->pol.hosts = w->hosts;
	w->pol.nhosts = k;
	return 0;
}

static int
wh_setup(struct rw_mgr *m, void **state)
{
	const struct rw_mgr_config *cfg = rw_mgr_cfg(m);
	char host[256], herr[256];
	int port, rv;
	*state = NULL;
	if (rw_mgr_parse_addr(cfg->webhook_addr, host, sizeof(host), &port) != 0 || port < 0)
		return 0; /* off */
	struct wh *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->m = m;
	w->kube = rw_mgr_kube(m);
	w->ns = rw_mgr_namespace(m);
	w->secret = cfg->webhook_secret;
	w->config = cfg->webhook_config;
	w->pol.ca_validity_s = (int64_t)cfg->webhook_ca_validity_s;
	w->pol.tls_validity_s = (int64_t)cfg->webhook_cert_validity_s;
	if (w->pol.tls_validity_s < 6)
		w->pol.tls_validity_s = 6;
	if (w->pol.ca_validity_s < w->pol.tls_validity_s)
		w->pol.ca_validity_s = w->pol.tls_validity_s;
	w->m_reviews = rw_met_counter(
	    rw_mgr_metrics(m), "raywarden_webhook_reviews_total",
	    "AdmissionReviews answered, by result (allowed, mutated, denied, error).",
	    (const char *const[]){"result", NULL});
	w->m_renewals =
	    rw_met_counter(rw_mgr_metrics(m), "raywarden_webhook_certificate_renewals_total",
			   "Webhook certificates made by this replica, by kind (ca, serving).",
			   (const char *const[]){"kind", NULL});
	uv_timer_init(rw_mgr_loop(m), &w->timer);
	w->timer.data = w;
	rv = rw_raycluster_opts_from_config(cfg, w->ns, &w->agent_opts, w->advertise,
					    sizeof(w->advertise), herr, sizeof(herr));
	if (rv)
		rw_error(LOGC, "agent injection: %s", herr);
	if (rv == 0)
		rv = split_hosts(w, cfg);
	if (rv == 0)
		rv = rw_wh_tls_new(&w->tls);
	if (rv == 0) {
		/*
		 * Bodies are capped at the largest review (an object and its old version), so
		 * the connection cap bounds memory: 16 x 3 MiB at worst, well under the
		 * Deployment's limit. The API server keeps a few connections alive; a newcomer
		 * evicts the one waiting longest, so it always gets in (docs/security.md).
		 */
		struct rw_httpd_opts o = {.transport = rw_wh_tls_transport(w->tls),
					  .host = host,
					  .port = port,
					  .max_body = RW_WH_MAX_REVIEW,
					  .max_conns = 16,
					  .max_conns_per_peer = 8,
					  .head_timeout_ms = 5000,
					  .request_timeout_ms = 10000,
					  .idle_timeout_ms = 30000,
					  .write_timeout_ms = 10000};
		rv = rw_httpd_new(rw_mgr_loop(m), &o, handle, w, &w->httpd, herr, sizeof(herr));
		if (rv)
			rw_error(LOGC, "webhook listener %s: %s", cfg->webhook_addr, herr);
	}
	if (rv) {
		wh_teardown(w);
		return rv;
	}
	rw_mgr_show_listener(m, "webhook", w->httpd);
	rw_info(LOGC, "admission webhooks on https://%s:%d (certificate for %s; Secret %s/%s)",
		host, rw_httpd_port(w->httpd), w->hosts[0], w->ns, w->secret);
	*state = w;
	upkeep_start(w);
	return 0;
}

static void
timer_closed(uv_handle_t *h)
{
	struct wh *w = h->data;
	rw_wh_tls_free(w->tls);
	rw_wh_pem_fini(&w->have);
	free(w->served);
	free(w->bundle_b64);
	free(w->hosts_buf);
	free(w);
}

static void
httpd_closed(void *ud)
{
	struct wh *w = ud;
	uv_close((uv_handle_t *)&w->timer, timer_closed);
}

static void
wh_teardown(void *state)
{
	struct wh *w = state;
	if (!w)
		return;
	if (w->op)
		rw_kube_cancel(w->op);
	w->op = NULL;
	if (w->pending) {
		rw_wh_pem_fini(&w->pending->next);
		free(w->pending);
		w->pending = NULL;
	}
	uv_timer_stop(&w->timer);
	if (w->httpd) {
		rw_mgr_show_listener(w->m, "webhook", NULL);
		rw_httpd_free(w->httpd, httpd_closed, w);
	} else
		httpd_closed(w);
}

const struct rw_mgr_controller rw_webhook_controller = {
    .name = "webhook",
    .setup = wh_setup,
    .teardown = wh_teardown,
};

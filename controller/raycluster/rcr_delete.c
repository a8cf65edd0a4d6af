/*
 * rcr_delete.c - deleting a RayCluster that carries the GCS FT finalizer
 * (ray.io/gcs-ft-redis-cleanup-finalizer): delete the Ray pods, wait until
 * the head pod is gone, remove the cluster's keys from Redis (redis_cleanup.h,
 * with the password read from its Secret when redisPassword uses valueFrom)
 * and release the finalizer. The deadline (--gcs-ft-cleanup-deadline, counted
 * from the deletionTimestamp) bounds all of it: past it the finalizer is
 * released with a Warning Event, so a deletion is never stuck for good.
 * KubeRay does the Redis part with a batch Job; raywarden does it on its loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rcr.h"
#include "rw/base64.h"
#include "rw/log.h"

#define LOGC "raycluster"

static bool
finalizer_index(const struct rw_raycluster *c, int *index)
{
	struct rw_doc_node *f = rw_doc_path(c->obj.root, "metadata.finalizers");
	for (int i = 0; f && f->type == RW_DOC_ARR && i < f->n; i++)
		if (rw_doc_str(f->kids[i]) &&
		    strcmp(f->kids[i]->s, RW_RAYCLUSTER_CTL_FT_FINALIZER) == 0) {
			*index = i;
			return true;
		}
	return false;
}

static void
release_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	if (!rw_rec_ok(resp->status)) {
		rw_rec_fail(&j->rec, -EAGAIN, NULL, "removing the finalizer: HTTP %ld %s",
			    resp->status, resp->message);
		return;
	}
	rw_info(LOGC, "%s: finalizer %s removed", j->rec.key, RW_RAYCLUSTER_CTL_FT_FINALIZER);
	j->rec.stop_requeue = true;
}

static void
release(struct rcr_job *j, int index)
{
	if (rw_rec_remove_finalizer(&j->rec, index, RW_RAYCLUSTER_CTL_FT_FINALIZER, release_cb) !=
	    0)
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot remove the finalizer");
}

/* The Ray container's env entry `name` of the head group template, or NULL. */
static struct rw_doc_node *
head_env(const struct rw_raycluster *c, const char *name)
{
	struct rw_doc_node *cs = rw_doc_path(c->head, "template.spec.containers");
	struct rw_doc_node *env = rw_doc_get(rw_doc_at(cs, 0), "env");
	for (int i = 0; env && env->type == RW_DOC_ARR && i < env->n; i++)
		if (rw_doc_gets(env->kids[i], "name") &&
		    strcmp(rw_doc_gets(env->kids[i], "name"), name) == 0)
			return env->kids[i];
	return NULL;
}

/* A credential: {value} or {valueFrom.secretKeyRef{name,key}} (option or env entry). */
struct cred {
	const char *value;
	const char *secret, *key;
};

static void
cred_of(const struct rw_doc_node *n, struct cred *out)
{
	memset(out, 0, sizeof(*out));
	if (!n)
		return;
	out->value = rw_doc_gets(n, "value");
	struct rw_doc_node *ref = rw_doc_path(n, "valueFrom.secretKeyRef");
	if (ref) {
		out->secret = rw_doc_gets(ref, "name");
		out->key = rw_doc_gets(ref, "key");
	}
}

static void
secret_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	struct rw_json js;
	char b64[4096];
	unsigned char val[3072];
	int n = -EINVAL;
	char **dst = q->kind == 1 ? &j->redis_pass : &j->redis_user;
	if (!rw_rec_ok(resp->status)) {
		rw_rec_fail(&j->rec, -EIO, NULL,
			    "reading Secret %s for the Redis cleanup: HTTP %ld %s", q->s1,
			    resp->status, resp->message);
		return;
	}
	if (rw_json_parse(&js, resp->body, resp->body_len, 1 << 16, NULL, 0) == 0) {
		int data = rw_json_get(&js, 0, "data");
		if (rw_json_str(&js, rw_json_get(&js, data, q->s2), b64, sizeof(b64)) >= 0)
			n = rw_base64_decode(b64, strlen(b64), val, sizeof(val) - 1);
		rw_json_fini(&js);
	}
	memset(b64, 0, sizeof(b64));
	if (n < 0) {
		rw_rec_fail(&j->rec, -EINVAL, NULL, "Secret %s has no key %s", q->s1, q->s2);
		return;
	}
	val[n] = '\0';
	free(*dst);
	*dst = strdup((char *)val);
	memset(val, 0, sizeof(val));
}

static int
fetch_secret(struct rcr_job *j, const struct cred *c, int which)
{
	char path[1024];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", j->rec.ns, c->secret);
	struct rw_kube_req kr = {.path = path, .verb = "get"};
	int rv = rw_raycluster_ctl_request(rcr_of(j), j, &kr, secret_cb, c->secret,
					   c->key ? c->key : "", NULL);
	if (rv == 0)
		rcr_of(j)->ctl.reqs->kind = which;
	return rv;
}

/* The host's kind for rw_raycluster_ctl_redis_qualify: labels to add (0, 1 or 2). */
static int
host_labels_missing(const char *h, size_t n)
{
	size_t labels = 1, i, start = 0;
	bool ip = true;
	if (n == 0 || h[n - 1] == '.' || (n == 9 && strncasecmp(h, "localhost", 9) == 0))
		return 0;
	for (i = 0; i < n; i++) {
		if (h[i] == '.' || h[i] == ':')
			labels += h[i] == '.';
		else if (h[i] < '0' || h[i] > '9')
			ip = false;
		if (h[i] == ':')
			return 0; /* an IPv6 literal without brackets */
	}
	if (ip)
		return 0;
	for (i = 0; i <= n; i++) {
		if (i == n || h[i] == '.') {
			if (start > 0 && i - start == 3 && strncasecmp(h + start, "svc", 3) == 0)
				return 0; /* <svc>.<ns>.svc[.<domain>] */
			start = i + 1;
		}
	}
	return labels == 1 ? 2 : labels == 2 ? 1 : 0;
}

int
rw_raycluster_ctl_redis_qualify(const char *addr, const char *ns, const char *domain, char *out,
				size_t outlen)
{
	const char *p, *entry_end, *netloc_end, *host, *host_end;
	size_t dlen;
	int add, n;
	if (!addr || !ns || !*ns || !out || outlen == 0)
		return -EINVAL;
	if (!domain || !*domain)
		domain = "cluster.local";
	dlen = strlen(domain);
	if (dlen && domain[dlen - 1] == '.')
		dlen--;
	entry_end = addr + strcspn(addr, ",");
	p = strstr(addr, "://");
	p = p && p < entry_end ? p + 3 : addr;
	netloc_end = p + strcspn(p, "/?#,");
	host = p;
	for (const char *q = p; q < netloc_end; q++)
		if (*q == '@')
			host = q + 1; /* userinfo ends at the last '@' */
	if (host < netloc_end && *host == '[')
		host_end = host; /* [IPv6]: nothing to qualify */
	else
		host_end = host + strcspn(host, ":/?#,");
	if (host_end > netloc_end)
		host_end = netloc_end;
	add = host_labels_missing(host, (size_t)(host_end - host));
	if (add == 2)
		n = snprintf(out, outlen, "%.*s.%s.svc.%.*s%s", (int)(host_end - addr), addr, ns,
			     (int)dlen, domain, host_end);
	else if (add == 1)
		n = snprintf(out, outlen, "%.*s.svc.%.*s%s", (int)(host_end - addr), addr,
			     (int)dlen, domain, host_end);
	else
		n = snprintf(out, outlen, "%s", addr);
	if (n < 0 || (size_t)n >= outlen) {
		memset(out, 0, outlen); /* may hold a password */
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Work out address, credentials and storage namespace; may start Secret reads. */
static int
resolve(struct rcr_job *j)
{
	const struct rw_raycluster *c = j->c;
	struct rw_doc_node *opt = rw_doc_get(c->obj.spec, "gcsFaultToleranceOptions");
	struct cred pw, user;
	const char *addr = NULL, *ns = NULL;
	const char *domain = rcr_of(j)->opts.cluster_domain && *rcr_of(j)->opts.cluster_domain
				 ? rcr_of(j)->opts.cluster_domain
				 : "cluster.local";
	memset(&pw, 0, sizeof(pw));
	memset(&user, 0, sizeof(user));
	if (opt) {
		addr = rw_doc_gets(opt, "redisAddress");
		cred_of(rw_doc_get(opt, "redisPassword"), &pw);
		cred_of(rw_doc_get(opt, "redisUsername"), &user);
		ns = rw_doc_gets(opt, "externalStorageNamespace");
	} else {
		struct rw_doc_node *e = head_env(c, "RAY_REDIS_ADDRESS");
		addr = rw_doc_gets(e, "value");
		cred_of(head_env(c, "REDIS_PASSWORD"), &pw);
		if (!pw.value && !pw.secret) {
			const char *p =
			    rw_doc_gets(rw_doc_get(c->head, "rayStartParams"), "redis-password");
			if (p && p[0] != '$')
				pw.value = p;
		}
		cred_of(head_env(c, "REDIS_USERNAME"), &user);
	}
	if (!ns || !*ns)
		ns = rw_doc_gets(c->obj.annotations, "ray.io/external-storage-namespace");
	if (!ns || !*ns) {
		struct rw_doc_node *e = head_env(c, "RAY_external_storage_namespace");
		ns = rw_doc_gets(e, "value");
	}
	if (!ns || !*ns)
		ns = c->obj.uid;
	if (!addr || !*addr)
		return -ENOENT;
	/* The Ray pods resolve the address in the cluster's namespace; so must we. */
	size_t qlen = strlen(addr) + strlen(j->rec.ns) + strlen(domain) + 16;
	j->redis_addr = malloc(qlen);
	if (j->redis_addr &&
	    rw_raycluster_ctl_redis_qualify(addr, j->rec.ns, domain, j->redis_addr, qlen) != 0) {
		free(j->redis_addr);
		j->redis_addr = strdup(addr);
	}
	j->storage_ns = strdup(ns);
	if (pw.value)
		j->redis_pass = strdup(pw.value);
	if (user.value)
		j->redis_user = strdup(user.value);
	if (!j->redis_addr || !j->storage_ns)
		return -ENOMEM;
	if (pw.secret && fetch_secret(j, &pw, 1) != 0)
		return -ENOMEM;
	if (user.secret && fetch_secret(j, &user, 2) != 0)
		return -ENOMEM;
	return 0;
}

static void
cleanup_done(const struct rw_redis_cleanup_result *res, void *ud)
{
	struct rcr_cl *cl = ud;
	struct rcr *r = cl->r;
	cl->rcl = NULL;
	if (cl->dropping || r->closing)
		return;
	cl->cleanup = *res;
	cl->cleanup_finished = true;
	rw_met_add(r->m_cleanup, (const char *const[]){res->ok ? "ok" : "deadline"}, 1);
	if (res->ok)
		rw_info(LOGC, "%s: Redis cleanup deleted %llu keys in %llu ms (%u attempts)",
			cl->key, (unsigned long long)res->keys_deleted,
			(unsigned long long)res->elapsed_ms, res->attempts);
	else
		rw_warn(LOGC, "%s: Redis cleanup gave up after %llu ms: %s", cl->key,
			(unsigned long long)res->elapsed_ms, res->error);
	rw_wq_add(r->wq, cl->key);
}

static uint64_t
remaining_ms(const struct rcr_job *j)
{
	int64_t deadline_ms = j->rec.deleted_at * 1000 + (int64_t)rcr_of(j)->ft_deadline_ms;
	int64_t now_ms = (int64_t)time(NULL) * 1000;
	return deadline_ms > now_ms ? (uint64_t)(deadline_ms - now_ms) : 0;
}

void
rw_raycluster_ctl_st_delete(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr *r = rcr_of(j);
	struct rcr_cl *cl = j->cl;
	struct rcr_pods ps;
	bool head = false;
	int idx, rv;
	uint64_t left;

	j->rec.step = RCR_ST_DONE;
	if (r->inject_only || !finalizer_index(j->c, &idx)) {
		j->rec.stop_requeue = true; /* owner references do the rest */
		return;
	}
	left = remaining_ms(j);
	if (left == 0 && !(cl->cleanup_finished && cl->cleanup.ok)) {
		if (cl->rcl) {
			cl->dropping = true;
			rw_redis_cleanup_cancel(cl->rcl);
			cl->rcl = NULL;
			cl->dropping = false;
		}
		rw_met_add(r->m_cleanup, (const char *const[]){"deadline"}, 1);
		rw_rec_emit(&j->rec, 1, "ForceDeletedStuckCluster",
			    "The GCS fault-tolerance cleanup of %s/%s did not finish within %llu s "
			    "of the deletion (%s); removing the %s finalizer anyway; Redis keys "
			    "may remain",
			    j->rec.ns, j->rec.name, (unsigned long long)(r->ft_deadline_ms / 1000),
			    cl->cleanup_finished ? cl->cleanup.error : "Ray pods still present",
			    RW_RAYCLUSTER_CTL_FT_FINALIZER);
		release(j, idx);
		return;
	}
	if (rw_raycluster_ctl_pods_collect(r, j->rec.ns, j->rec.name, j->c->obj.uid, &ps) != 0) {
		rw_raycluster_ctl_pods_fini(&ps);
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "out of memory");
		return;
	}
	for (size_t i = 0; i < ps.n && !j->rec.err; i++) {
		const struct rw_raycluster_pod *p = &ps.pods[i];
		bool h = p->type == RW_RAYCLUSTER_NT_HEAD;
		if (h)
			head = true;
		if (!p->deleting &&
		    rw_raycluster_ctl_pod_delete(j, h ? "" : p->group, p->name, h, true) != 0)
			rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot delete pods");
	}
	rw_raycluster_ctl_pods_fini(&ps);
	if (head) {
		/* Pod events bring us back; the requeue is the fallback. */
		rw_rec_requeue(&j->rec, left < 2000 ? left + 1 : 2000);
		return;
	}
	if (cl->cleanup_finished) {
		if (cl->cleanup.ok) {
			rw_rec_emit(&j->rec, 0, "RedisCleanupSucceeded",
				    "Deleted %llu GCS keys of %s/%s from Redis",
				    (unsigned long long)cl->cleanup.keys_deleted, j->rec.ns,
				    j->rec.name);
		} else {
			rw_rec_emit(&j->rec, 1, "ForceDeletedStuckCluster",
				    "The GCS fault-tolerance Redis cleanup of %s/%s failed (%s); "
				    "removing the %s finalizer anyway; Redis keys may remain",
				    j->rec.ns, j->rec.name, cl->cleanup.error,
				    RW_RAYCLUSTER_CTL_FT_FINALIZER);
		}
		release(j, idx);
		return;
	}
	if (cl->cleanup_skipped) {
		release(j, idx);
		return;
	}
	if (cl->rcl) {
		rw_rec_requeue(&j->rec, left + 1000);
		return;
	}
	rv = resolve(j);
	if (rv == -ENOENT) {
		cl->cleanup_skipped = true;
		rw_met_add(r->m_cleanup, (const char *const[]){"skipped"}, 1);
		rw_rec_emit(&j->rec, 1, "RedisCleanupSkipped",
			    "No Redis address found for %s/%s; nothing to clean, removing the %s "
			    "finalizer",
			    j->rec.ns, j->rec.name, RW_RAYCLUSTER_CTL_FT_FINALIZER);
		release(j, idx);
		return;
	}
	if (rv) {
		rw_rec_fail(&j->rec, rv, NULL, "Redis cleanup: %s", strerror(-rv));
		return;
	}
	j->rec.step = RCR_ST_DELETE_CLEANUP; /* after the Secret reads */
}

static void
wipe(char **p)
{
	if (*p) {
		memset(*p, 0, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void
rw_raycluster_ctl_st_delete_cleanup(struct rw_rec_job *rj)
{
	struct rcr_job *j = (struct rcr_job *)rj;
	struct rcr *r = rcr_of(j);
	struct rcr_cl *cl = j->cl;
	struct rw_redis_cleanup_opts o;
	uint64_t left = remaining_ms(j);
	int rv;
	if (!j->rec.err && left > 0 && !cl->rcl) {
		memset(&o, 0, sizeof(o));
		o.address = j->redis_addr;
		o.username = j->redis_user;
		o.password = j->redis_pass;
		o.storage_ns = j->storage_ns;
		o.deadline_ms = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
		cl->r = r;
		rv = rw_redis_cleanup_start(r->loop, &o, cleanup_done, cl, &cl->rcl);
		if (rv) {
			cl->rcl = NULL;
			if (rv == -EINVAL || rv == -EPROTONOSUPPORT) {
				cl->cleanup_finished = true;
				memset(&cl->cleanup, 0, sizeof(cl->cleanup));
				snprintf(cl->cleanup.error, sizeof(cl->cleanup.error),
					 "unusable Redis address or namespace (%s)", strerror(-rv));
				rw_wq_add(r->wq, j->rec.key);
			} else {
				rw_rec_fail(&j->rec, rv, NULL, "Redis cleanup: %s", strerror(-rv));
			}
		} else {
			rw_info(LOGC, "%s: head pod gone; cleaning Redis (deadline in %llu ms)",
				j->rec.key, (unsigned long long)left);
			rw_rec_requeue(&j->rec, left + 1000);
		}
	}
	wipe(&j->redis_pass);
	wipe(&j->redis_user);
	wipe(&j->redis_addr); /* may carry a password in its userinfo */
	free(j->storage_ns);
	j->storage_ns = NULL;
}

/*
 * rcr_key.c - the agent keys of the RayCluster reconciler (agentkey.h):
 * the reconcile step that keeps each cluster's key Secret right, the
 * informer over key Secrets that notices one deleted or changed, the master
 * key file watch that rotates every key without restarts, and the per-pod
 * builder options that carry the cluster's /drain token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentkey.h"
#include "rcr.h"
#include "rw/base64.h"
#include "rw/keyfile.h"
#include "rw/log.h"

#define LOGC "raycluster"
/* How often the master key file is looked at (a stat; the read only when it changed). */
#define MASTER_CHECK_MS 1000

/* What the informer keeps of a key Secret: no key material, only its digest. */
struct rcr_ksec {
	struct rw_inf_meta meta;
	char ns[64], name[256], uid[64], rv[32];
	char cluster[64];   /* label ray.io/cluster */
	char owner_uid[64]; /* uid of the RayCluster ownerReference ("" none) */
	char key_sha[65];   /* SHA-256 (hex) of data.key as stored (base64 text); "" none */
};

void *
rw_raycluster_ctl_ksec_decode(const struct rw_json *j, int obj)
{
	struct rcr_ksec *s = calloc(1, sizeof(*s));
	int md, refs, i, c, t;
	if (!s)
		return NULL;
	md = rw_json_get(j, obj, "metadata");
	if (rw_json_str(j, rw_json_get(j, md, "name"), s->name, sizeof(s->name)) <= 0) {
		free(s);
		return NULL;
	}
	rw_json_str(j, rw_json_get(j, md, "namespace"), s->ns, sizeof(s->ns));
	rw_json_str(j, rw_json_get(j, md, "uid"), s->uid, sizeof(s->uid));
	rw_json_str(j, rw_json_get(j, md, "resourceVersion"), s->rv, sizeof(s->rv));
	rw_json_str(j, rw_json_get(j, rw_json_get(j, md, "labels"), "ray.io/cluster"), s->cluster,
		    sizeof(s->cluster));
	t = rw_json_get(j, md, "deletionTimestamp");
	if (rw_json_type(j, t) == RW_JSON_STRING)
		s->meta.deleted = 1;
	refs = rw_json_get(j, md, "ownerReferences");
	RW_JSON_ARR_FOREACH (j, refs, i, c) {
		if (rw_json_streq(j, rw_json_get(j, c, "kind"), "RayCluster"))
			rw_json_str(j, rw_json_get(j, c, "uid"), s->owner_uid,
				    sizeof(s->owner_uid));
	}
	t = rw_json_path(j, obj, "data.key");
	if (rw_json_type(j, t) == RW_JSON_STRING) {
		char *v = rw_json_strdup(j, t);
		if (v) {
			rw_sha256_hex(v, strlen(v), s->key_sha);
			memset(v, 0, strlen(v));
			free(v);
		}
	}
	s->meta.ns = s->ns;
	s->meta.name = s->name;
	s->meta.uid = s->uid;
	s->meta.rv = s->rv;
	return s;
}

static const struct rw_inf_type ksec_type = {
    .api_path = "/api/v1",
    .resource = "secrets",
    .decode = rw_raycluster_ctl_ksec_decode,
    .free_obj = free,
};

/* Does the stored Secret hold what this incarnation of the cluster needs? */
static bool
ksec_ok(const struct rcr_ksec *s, const char *want_sha, const char *cluster_uid)
{
	return s && !s->meta.deleted && want_sha[0] && strcmp(s->key_sha, want_sha) == 0 &&
	       strcmp(s->owner_uid, cluster_uid) == 0;
}

/* A key Secret appeared, changed or went: check it on the cluster's next reconcile. */
static void
ksec_event(struct rcr *r, const struct rcr_ksec *s, bool gone)
{
	char key[512];
	struct rcr_cl *cl;
	if (!s->cluster[0] || !r->wq)
		return;
	snprintf(key, sizeof(key), "%s/%s", s->ns, s->cluster);
	cl = rw_kmap_get(&r->clusters, key);
	if (!cl)
		return; /* not reconciled yet: its first reconcile creates or checks it */
	if (!gone && (!cl->key_done || ksec_ok(s, cl->key_sha, cl->uid)))
		return; /* ours, or already being written */
	if (cl->key_done)
		rw_info(LOGC, "%s: agent key Secret %s %s; writing it again", key, s->name,
			gone ? "deleted" : "changed");
	cl->key_done = false;
	rw_wq_add(r->wq, key);
}

static void
ksec_add(struct rw_inf *inf, const void *obj, void *ud)
{
	(void)inf;
	ksec_event(ud, obj, false);
}

static void
ksec_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	const struct rcr_ksec *s = n;
	(void)inf;
	(void)o;
	ksec_event(ud, s, s->meta.deleted != 0);
}

static void
ksec_delete(struct rw_inf *inf, const void *obj, void *ud)
{
	(void)inf;
	ksec_event(ud, obj, true);
}

/* ---- the reconcile step ---- */

static bool
keys_enabled(const struct rcr *r)
{
	return r->opts.agent && r->opts.controller_addr && *r->opts.controller_addr &&
	       r->have_master;
}

/* The Secret now holds the key derived in this job, unless the master key changed since. */
static void
key_written(struct rcr_job *j)
{
	if (j->key_gen == rcr_of(j)->master_gen)
		j->cl->key_done = true;
}

static void
key_write_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	if (!rw_rec_ok(resp->status)) {
		rw_rec_fail(&j->rec, -EIO, NULL, "updating the agent key Secret: HTTP %ld %s",
			    resp->status, resp->message);
		return;
	}
	rw_info(LOGC, "%s: agent key Secret rewritten", j->rec.key);
	key_written(j);
}

/* Merge-patch the whole Secret object: key, labels and owner (q->s1 = JSON, s2 = name). */
static int
key_patch(struct rcr_job *j, const char *body, const char *sname)
{
	char path[1024];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", j->rec.ns, sname);
	return rw_rec_send(&j->rec, "PATCH", path, body, strlen(body), key_write_cb, NULL, NULL,
			   NULL);
}

static void
key_get_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	struct rw_json js;
	char have[256] = "", owner[64] = "", want[128] = "";
	int refs, i, c;
	if (!rw_rec_ok(resp->status)) {
		rw_rec_fail(&j->rec, -EIO, NULL, "reading the agent key Secret: HTTP %ld %s",
			    resp->status, resp->message);
		return;
	}
	if (rw_json_parse(&js, resp->body, resp->body_len, 1 << 16, NULL, 0) == 0) {
		rw_json_str(&js, rw_json_path(&js, 0, "data.key"), have, sizeof(have));
		refs = rw_json_path(&js, 0, "metadata.ownerReferences");
		RW_JSON_ARR_FOREACH (&js, refs, i, c) {
			if (rw_json_streq(&js, rw_json_get(&js, c, "kind"), "RayCluster"))
				rw_json_str(&js, rw_json_get(&js, c, "uid"), owner, sizeof(owner));
		}
		rw_json_fini(&js);
	}
	/* q->s1 is the whole Secret we want; compare its key and owner. */
	if (rw_json_parse(&js, q->s1, strlen(q->s1), 1 << 12, NULL, 0) == 0) {
		rw_json_str(&js, rw_json_path(&js, 0, "data.key"), want, sizeof(want));
		rw_json_fini(&js);
	}
	if (want[0] && strcmp(have, want) == 0 && j->c && strcmp(owner, j->c->obj.uid) == 0) {
		key_written(j);
	} else if (key_patch(j, q->s1, q->s2) != 0) {
		rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot update the agent key Secret");
	}
	memset(have, 0, sizeof(have));
	memset(want, 0, sizeof(want));
}

static void
key_create_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rcr_job *j = q->job;
	if (rw_rec_ok(resp->status)) {
		key_written(j);
		return;
	}
	if (rw_kube_already_exists(resp)) {
		/* It exists (the informer had not seen it yet, or not ours to see):
		 * read it and rewrite it unless it holds this key and owner. */
		char path[1024];
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", j->rec.ns, q->s2);
		struct rw_kube_req kr = {.path = path, .verb = "get"};
		if (rw_raycluster_ctl_request(rcr_of(j), j, &kr, key_get_cb, q->s1, q->s2, NULL) !=
		    0)
			rw_rec_fail(&j->rec, -ENOMEM, NULL, "cannot read the agent key Secret");
		return;
	}
	rw_rec_emit(&j->rec, 1, "FailedToCreateSecret",
		    "Failed to create the agent key Secret %s/%s: %ld %s", j->rec.ns, q->s2,
		    resp->status, resp->message);
	rw_rec_fail(&j->rec, -EIO, NULL, "creating the agent key Secret: HTTP %ld %s", resp->status,
		    resp->message);
}

void
rw_raycluster_ctl_st_key(struct rcr_job *j)
{
	struct rcr *r = rcr_of(j);
	struct rw_wire_key key;
	char text[RW_AGENTKEY_LEN + 1], b64[128], sname[320], path[1024];
	const struct rcr_ksec *sec;
	struct rw_buf b;
	int rv;
	if (!keys_enabled(r) || !j->c || !j->cl)
		return;
	if (j->cl->hub_key && j->cl->key_done)
		return;
	j->key_gen = r->master_gen;
	rv = rw_agentkey_derive(&r->master, j->rec.ns, j->rec.name, j->c->obj.uid, &key, text);
	if (rv) {
		rw_rec_fail(&j->rec, rv, NULL, "cannot derive the agent key: %s", strerror(-rv));
		return;
	}
	if (!j->cl->hub_key && r->hub) {
		/* For a scope that has a key already (master key rotation) the hub keeps
		 * accepting the previous one for an overlap window (hub.h). */
		if (rw_hub_key_add(r->hub, j->rec.ns, j->rec.name, &key) == 0)
			j->cl->hub_key = true;
	}
	if (rw_base64_encode(text, RW_AGENTKEY_LEN, b64, sizeof(b64)) < 0) {
		rw_rec_fail(&j->rec, -EINVAL, NULL, "cannot encode the agent key");
		goto out;
	}
	rw_sha256_hex(b64, strlen(b64), j->cl->key_sha);
	if (j->cl->key_done)
		goto out;
	rw_agentkey_secret_name(j->rec.name, sname, sizeof(sname));
	/* Until the Secret informer has listed (or when it may not list: RBAC without list
	 * and watch on Secrets), create and fall back to reading by name on AlreadyExists. */
	sec = r->secret_inf && rw_inf_synced(r->secret_inf)
		  ? rw_inf_get(r->secret_inf, j->rec.ns, sname)
		  : NULL;
	if (ksec_ok(sec, j->cl->key_sha, j->c->obj.uid)) {
		j->cl->key_done = true;
		goto out;
	}
	rw_buf_init(&b, 64 * 1024);
	rv = rw_agentkey_secret_json(j->rec.ns, j->rec.name, j->c->obj.uid, &key, &b);
	if (rv == 0 && sec && !sec->meta.deleted) {
		/* There, but with another key (master key rotated, edited) or owner. */
		rv = key_patch(j, rw_buf_cstr(&b), sname);
	} else if (rv == 0) {
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets", j->rec.ns);
		rv = rw_rec_send(&j->rec, "POST", path, rw_buf_cstr(&b), b.len, key_create_cb,
				 rw_buf_cstr(&b), sname, NULL);
	}
	if (b.data)
		memset(b.data, 0, b.cap);
	rw_buf_fini(&b);
	if (rv)
		rw_rec_fail(&j->rec, rv, NULL, "agent key Secret: %s", strerror(-rv));
out:
	rw_wire_key_wipe(&key);
	memset(text, 0, sizeof(text));
	memset(b64, 0, sizeof(b64));
}

/* ---- pod builder options ---- */

void
rw_raycluster_ctl_pod_opts(struct rcr_job *j)
{
	struct rcr *r = rcr_of(j);
	struct rw_wire_key key;
	j->popts = r->opts;
	j->popts.drain_token = NULL;
	j->drain_token[0] = '\0';
	if (!keys_enabled(r) || !j->c || !j->c->obj.uid || !*j->c->obj.uid)
		return;
	if (rw_agentkey_derive(&r->master, j->rec.ns, j->rec.name, j->c->obj.uid, &key, NULL) ==
		0 &&
	    rw_drain_token(&key, j->drain_token) == 0)
		j->popts.drain_token = j->drain_token;
	rw_wire_key_wipe(&key);
}

/* ---- master key rotation ---- */

static bool
same_key(const struct rw_wire_key *a, const struct rw_wire_key *b)
{
	return a->len == b->len && a->id == b->id && rw_ct_equal(a->k, b->k, a->len);
}

static void
master_check_cb(uv_timer_t *t)
{
	struct rcr *r = t->data;
	struct rw_keyfile_sig now;
	struct rw_wire_key k;
	struct rw_kmap_iter it;
	struct rw_kmap_ent *e;
	char err[512];
	size_t n = 0;

	if (!rw_keyfile_changed(&r->master_sig, r->master_path, &now))
		return;
	r->master_sig = now;
	if (rw_agentkey_load_master(&k, r->master_path, err, sizeof(err)) != 0) {
		/* Keep the key in use; the next change of the file is tried again. */
		rw_error(LOGC,
			 "agent master key changed but cannot be read: %s; keeping the "
			 "current key",
			 err);
		return;
	}
	if (same_key(&k, &r->master)) {
		rw_wire_key_wipe(&k);
		return;
	}
	r->master = k;
	r->master_gen++;
	rw_wire_key_wipe(&k);
	rw_kmap_iter_init(&r->clusters, &it);
	while ((e = rw_kmap_next(&r->clusters, &it)) != NULL) {
		struct rcr_cl *cl = e->val;
		cl->key_done = false;
		cl->hub_key = false;
		if (r->wq)
			rw_wq_add(r->wq, cl->key);
		n++;
	}
	if (r->m_master)
		rw_met_add(r->m_master, NULL, 1);
	rw_info(LOGC,
		"agent master key changed (key id %08x): deriving the keys of %zu cluster(s) "
		"again",
		r->master.id, n);
}

int
rw_raycluster_ctl_keys_setup(struct rcr *r, const char *master_path)
{
	struct rw_inf_handlers h;
	if (!r->have_master || !master_path || !*master_path)
		return 0;
	snprintf(r->master_path, sizeof(r->master_path), "%s", master_path);
	r->m_master = rw_met_counter(r->met, "raywarden_agent_master_key_reloads_total",
				     "Times a changed master key file was loaded (every cluster "
				     "key derived again).",
				     NULL);
	if (!r->opts.agent)
		return 0;
	memset(&h, 0, sizeof(h));
	h.on_add = ksec_add;
	h.on_update = ksec_update;
	h.on_delete = ksec_delete;
	h.ud = r;
	r->secret_inf =
	    rw_mgr_informer(r->mgr, &ksec_type, RW_AGENTKEY_LABEL_SELECTOR, false, NULL, &h);
	if (!r->secret_inf)
		return -ENOMEM;
	r->master_timer = malloc(sizeof(*r->master_timer));
	if (!r->master_timer)
		return -ENOMEM;
	uv_timer_init(r->loop, r->master_timer);
	r->master_timer->data = r;
	uv_timer_start(r->master_timer, master_check_cb, MASTER_CHECK_MS, MASTER_CHECK_MS);
	return 0;
}

/* Take the master key file's signature before reading it (a change in between is seen). */
void
rw_raycluster_ctl_keys_sig(struct rcr *r, const char *master_path)
{
	struct rw_keyfile_sig none;
	memset(&none, 0, sizeof(none));
	rw_keyfile_changed(&none, master_path, &r->master_sig);
}

static void
timer_closed(uv_handle_t *h)
{
	free(h);
}

void
rw_raycluster_ctl_keys_fini(struct rcr *r)
{
	if (r->master_timer) {
		uv_close((uv_handle_t *)r->master_timer, timer_closed);
		r->master_timer = NULL;
	}
}

/*
 * wh_admission.c - AdmissionReview reading, validation, answers (see wh_admission.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "kube.h"
#include "raycluster.h"
#include "rc_build.h"
#include "rc_validate.h"
#include "rj_model.h"
#include "rs_build.h"
#include "rw/base64.h"
#include "wh_admission.h"

/* Tokens for the largest review: about one per 6 bytes of JSON. */
#define MAX_TOKENS (RW_WH_MAX_REVIEW / 6)

static int
copy_str(const struct rw_json *j, int t, char *out, size_t outlen)
{
	if (t < 0) {
		out[0] = '\0';
		return 0;
	}
	return rw_json_str(j, t, out, outlen) < 0 ? -EINVAL : 0;
}

int
rw_wh_review_parse(const char *body, size_t len, struct rw_wh_review *r, char *err, size_t errlen)
{
	int rv, req;
	memset(r, 0, sizeof(*r));
	r->object = r->old_object = -1;
	if (len > RW_WH_MAX_REVIEW) {
		snprintf(err, errlen, "AdmissionReview larger than %u bytes", RW_WH_MAX_REVIEW);
		return -EMSGSIZE;
	}
	rv = rw_json_parse(&r->j, body, len, MAX_TOKENS, err, errlen);
	if (rv)
		return rv;
	if (rw_json_type(&r->j, 0) != RW_JSON_OBJECT ||
	    !rw_json_streq(&r->j, rw_json_get(&r->j, 0, "apiVersion"), "admission.k8s.io/v1") ||
	    !rw_json_streq(&r->j, rw_json_get(&r->j, 0, "kind"), "AdmissionReview")) {
		snprintf(err, errlen, "not an admission.k8s.io/v1 AdmissionReview");
		goto bad;
	}
	req = rw_json_get(&r->j, 0, "request");
	if (rw_json_type(&r->j, req) != RW_JSON_OBJECT) {
		snprintf(err, errlen, "AdmissionReview without a request");
		goto bad;
	}
	int kind = rw_json_get(&r->j, req, "kind");
	if (copy_str(&r->j, rw_json_get(&r->j, req, "uid"), r->uid, sizeof(r->uid)) || !r->uid[0] ||
	    copy_str(&r->j, rw_json_get(&r->j, kind, "group"), r->group, sizeof(r->group)) ||
	    copy_str(&r->j, rw_json_get(&r->j, kind, "version"), r->version, sizeof(r->version)) ||
	    copy_str(&r->j, rw_json_get(&r->j, kind, "kind"), r->kind, sizeof(r->kind)) ||
	    copy_str(&r->j, rw_json_get(&r->j, req, "operation"), r->operation,
		     sizeof(r->operation)) ||
	    copy_str(&r->j, rw_json_get(&r->j, req, "namespace"), r->ns, sizeof(r->ns)) ||
	    copy_str(&r->j, rw_json_get(&r->j, req, "name"), r->name, sizeof(r->name))) {
		snprintf(err, errlen,
			 "request: uid, kind, operation, namespace or name missing or "
			 "not a short string");
		goto bad;
	}
	r->object = rw_json_get(&r->j, req, "object");
	r->old_object = rw_json_get(&r->j, req, "oldObject");
	if (rw_json_type(&r->j, r->object) != RW_JSON_OBJECT)
		r->object = -1;
	if (rw_json_type(&r->j, r->old_object) != RW_JSON_OBJECT)
		r->old_object = -1;
	return 0;
bad:
	rw_wh_review_fini(r);
	return -EINVAL;
}

void
rw_wh_review_fini(struct rw_wh_review *r)
{
	rw_json_fini(&r->j);
}

/* Is spec the same in object and oldObject (semantically)? */
static bool
spec_unchanged(const struct rw_wh_review *r)
{
	size_t al, bl;
	int a = rw_json_get(&r->j, r->object, "spec"),
	    b = rw_json_get(&r->j, r->old_object, "spec");
	if (a < 0 || b < 0)
		return a == b;
	const char *as = rw_json_raw_value(&r->j, a, &al), *bs = rw_json_raw_value(&r->j, b, &bl);
	return as && bs && rw_kube_json_equal(as, al, bs, bl);
}

static bool
managed_elsewhere(const char *by)
{
	return by && *by && strcmp(by, "ray.io/kuberay-operator") != 0;
}

static void
refuse(struct rw_wh_verdict *v, const char *msg)
{
	v->allowed = false;
	v->code = 422;
	snprintf(v->msg, sizeof(v->msg), "%s", msg);
}

static int
validate_raycluster(const char *js, size_t len, struct rw_wh_verdict *v)
{
	struct rw_raycluster *c = NULL;
	struct rw_raycluster_verrs ve;
	char err[256];
	int rv = rw_raycluster_parse(js, len, &c, err, sizeof(err));
	if (rv == -ENOMEM)
		return rv;
	if (rv) {
		refuse(v, err);
		return 0;
	}
	if (!managed_elsewhere(rw_doc_gets(c->obj.spec, "managedBy")) &&
	    rw_raycluster_validate(c, &ve) > 0) {
		refuse(v, ve.e[0].msg);
		for (int i = 1; i < ve.n; i++) {
			size_t l = strlen(v->msg);
			snprintf(v->msg + l, sizeof(v->msg) - l, "; %s", ve.e[i].msg);
		}
	}
	rw_raycluster_free(c);
	return 0;
}

static int
validate_rayjob(const char *js, size_t len, struct rw_wh_verdict *v)
{
	struct rw_rayjob *j = NULL;
	struct rw_rayjob_verr ve;
	char err[256];
	int rv = rw_rayjob_parse(js, len, &j, err, sizeof(err));
	if (rv == -ENOMEM)
		return rv;
	if (rv) {
		refuse(v, err);
		return 0;
	}
	rv = managed_elsewhere(j->managed_by) ? 0 : rw_rayjob_validate(j, &ve);
	if (rv > 0)
		refuse(v, ve.msg);
	rw_rayjob_free(j);
	return rv < 0 ? rv : 0;
}

static int
validate_rayservice(const char *js, size_t len, struct rw_wh_verdict *v)
{
	struct rw_rayservice *rs = NULL;
	struct rw_rayservice_verr ve;
	char err[256];
	int rv = rw_rayservice_parse(js, len, &rs, err, sizeof(err));
	if (rv == -ENOMEM)
		return rv;
	if (rv) {
		refuse(v, err);
		return 0;
	}
	if (!managed_elsewhere(rw_doc_gets(rs->obj.spec, "managedBy")) &&
	    rw_rayservice_validate(rs, &ve) > 0)
		refuse(v, ve.msg);
	rw_rayservice_free(rs);
	return 0;
}

int
rw_wh_validate(const struct rw_wh_review *r, struct rw_wh_verdict *v)
{
	size_t len;
	const char *js;
	v->allowed = true;
	v->code = 200;
	v->msg[0] = '\0';
	v->patch = NULL;
	if (strcmp(r->group, "ray.io") || strcmp(r->version, "v1") ||
	    (strcmp(r->operation, "CREATE") && strcmp(r->operation, "UPDATE")) || r->object < 0)
		return 0;
	if (!strcmp(r->operation, "UPDATE") && r->old_object >= 0 && spec_unchanged(r))
		return 0;
	js = rw_json_raw_value(&r->j, r->object, &len);
	if (!js)
		return 0;
	if (!strcmp(r->kind, "RayCluster"))
		return validate_raycluster(js, len, v);
	if (!strcmp(r->kind, "RayJob"))
		return validate_rayjob(js, len, v);
	if (!strcmp(r->kind, "RayService"))
		return validate_rayservice(js, len, v);
	return 0;
}

/*
 * Does the pod (a JSON object) have the agent's container, or a volume of its key's name? The
 * first means injected already (or raywarden's own pod); the second would make the patched pod
 * invalid (duplicate volume name), so such a pod is left as it is.
 */
static bool
has_agent(const struct rw_json *j, int pod)
{
	int i, c;
	RW_JSON_ARR_FOREACH (j, rw_json_path(j, pod, "spec.containers"), i, c) {
		if (rw_json_streq(j, rw_json_get(j, c, "name"), RW_RAYCLUSTER_AGENT_CONTAINER))
			return true;
	}
	RW_JSON_ARR_FOREACH (j, rw_json_path(j, pod, "spec.volumes"), i, c) {
		if (rw_json_streq(j, rw_json_get(j, c, "name"), RW_RAYCLUSTER_AGENT_KEY_VOLUME))
			return true;
	}
	return false;
}

int
rw_wh_inject(const struct rw_wh_review *r, const struct rw_raycluster_opts *o,
	     struct rw_wh_verdict *v)
{
	struct rw_doc_node *pod = NULL;
	size_t len;
	const char *js;
	int labels, rv;
	v->allowed = true;
	v->code = 200;
	v->msg[0] = '\0';
	v->patch = NULL;
	if (!o->agent || r->group[0] || strcmp(r->version, "v1") || strcmp(r->kind, "Pod") ||
	    strcmp(r->operation, "CREATE") || r->object < 0)
		return 0; /* --no-agent-injection: nothing to inject */
	labels = rw_json_path(&r->j, r->object, "metadata.labels");
	if (rw_json_type(&r->j, rw_json_get(&r->j, labels, "ray.io/cluster")) != RW_JSON_STRING ||
	    (!rw_json_streq(&r->j, rw_json_get(&r->j, labels, "ray.io/node-type"), "head") &&
	     !rw_json_streq(&r->j, rw_json_get(&r->j, labels, "ray.io/node-type"), "worker")) ||
	    has_agent(&r->j, r->object))
		return 0;
	js = rw_json_raw_value(&r->j, r->object, &len);
	if (!js)
		return 0;
	char perr[128];
	rv = rw_doc_parse(js, len, &pod, perr, sizeof(perr));
	if (rv == -ENOMEM)
		return rv;
	if (rv)
		return 0;
	v->patch = malloc(sizeof(*v->patch));
	if (!v->patch) {
		rw_doc_free(pod);
		return -ENOMEM;
	}
	rw_buf_init(v->patch, RW_WH_MAX_REVIEW);
	rv = rw_raycluster_agent_inject_patch(pod, o, v->patch);
	rw_doc_free(pod);
	if (rv) {
		rw_wh_verdict_fini(v);
		return rv == -ENOMEM ? rv : 0;
	}
	return 0;
}

void
rw_wh_verdict_fini(struct rw_wh_verdict *v)
{
	if (v->patch) {
		rw_buf_fini(v->patch);
		free(v->patch);
		v->patch = NULL;
	}
}

int
rw_wh_review_answer(struct rw_buf *out, const char *uid, const struct rw_wh_verdict *v)
{
	struct rw_jw w;
	rw_jw_init(&w, out);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "apiVersion", "admission.k8s.io/v1");
	rw_jw_kstr(&w, "kind", "AdmissionReview");
	rw_jw_key(&w, "response");
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "uid", uid);
	rw_jw_kbool(&w, "allowed", v->allowed);
	if (!v->allowed) {
		rw_jw_key(&w, "status");
		rw_jw_obj_begin(&w);
		rw_jw_kint(&w, "code", v->code);
		rw_jw_kstr(&w, "message", v->msg);
		rw_jw_obj_end(&w);
	} else if (v->patch && v->patch->len) {
		size_t n = rw_base64_len(v->patch->len) + 1;
		char *b64 = malloc(n);
		if (!b64)
			return -ENOMEM;
		rw_base64_encode(v->patch->data, v->patch->len, b64, n);
		rw_jw_kstr(&w, "patchType", "JSONPatch");
		rw_jw_kstr(&w, "patch", b64);
		free(b64);
	}
	rw_jw_obj_end(&w);
	rw_jw_obj_end(&w);
	return rw_jw_finish(&w);
}

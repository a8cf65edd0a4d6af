/*
 * wh_admission.h - admission.k8s.io/v1 AdmissionReview: reading a request,
 * the validation decision for ray.io objects, and writing the answer. Pure
 * (no I/O): the listener (webhook.c) and the fuzzer share it.
 *
 * The validation decision is the reconcilers' own: rw_raycluster_validate,
 * rw_rayjob_validate and rw_rayservice_validate, so an object refused here
 * carries the message of the Warning Event the reconciler would emit for it.
 */
#ifndef RW_WH_ADMISSION_H
#define RW_WH_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>

#include "rw/buf.h"
#include "rw/json.h"

/* Largest AdmissionReview read: an object and its old version, each up to etcd's 1.5 MiB. */
#define RW_WH_MAX_REVIEW (3u << 20)

struct rw_wh_review {
	struct rw_json j; /* over the request body (borrowed) */
	char uid[128];
	char group[64], version[32], kind[64]; /* request.kind */
	char operation[16];		       /* CREATE, UPDATE, DELETE, CONNECT */
	char ns[254], name[254];
	int object;	/* token of request.object, -1 when absent */
	int old_object; /* token of request.oldObject, -1 when absent */
};

/*
 * Read an AdmissionReview (apiVersion admission.k8s.io/v1, kind
 * AdmissionReview, a request with a uid). 0, or -EINVAL / -EMSGSIZE /
 * -ENOMEM with a message in err. On success rw_wh_review_fini must be
 * called; body must outlive r.
 */
int rw_wh_review_parse(const char *body, size_t len, struct rw_wh_review *r, char *err,
		       size_t errlen);
void rw_wh_review_fini(struct rw_wh_review *r);

struct rw_wh_verdict {
	bool allowed;
	int code;	      /* HTTP-style code of a refusal (422) */
	char msg[2048];	      /* why it was refused */
	struct rw_buf *patch; /* JSON patch of an admitted mutation, or NULL */
};

/*
 * The decision for a ray.io/v1 RayCluster, RayJob or RayService. Admitted:
 * every other kind, a DELETE, an object managed by another controller
 * (spec.managedBy), and an UPDATE that leaves spec as it was (metadata
 * changes such as removing a finalizer must never be blocked by a spec that
 * was already there). Refused: what the reconciler would refuse, with its
 * message (RayCluster errors joined by "; "). 0, or -ENOMEM.
 */
int rw_wh_validate(const struct rw_wh_review *r, struct rw_wh_verdict *v);

struct rw_raycluster_opts;

/*
 * The agent injection decision for a Pod CREATE (the mutating webhook): a
 * Ray pod (labels ray.io/cluster, and ray.io/node-type head or worker)
 * without a raywarden-agent container (nor a volume of the agent key's
 * name) gets the patch of rw_raycluster_agent_inject_patch with options o,
 * unless o->agent is off. Always admitted (the
 * webhook never refuses a pod); anything else, or a pod the builder cannot
 * read, is admitted unchanged. On success v->patch is a new buffer the
 * caller frees (rw_wh_verdict_fini). 0, or -ENOMEM.
 */
int rw_wh_inject(const struct rw_wh_review *r, const struct rw_raycluster_opts *o,
		 struct rw_wh_verdict *v);
void rw_wh_verdict_fini(struct rw_wh_verdict *v);

/*
 * Write the AdmissionReview answer for uid: allowed, and for a refusal
 * status.code and status.message; a patch is sent base64-encoded with
 * patchType JSONPatch. 0, or a negative errno.
 */
int rw_wh_review_answer(struct rw_buf *out, const char *uid, const struct rw_wh_verdict *v);

#endif

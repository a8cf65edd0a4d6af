/* podgroup.c - create, update and delete batch scheduler PodGroups (podgroup.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "batchsched.h"
#include "doc.h"
#include "podgroup.h"

static void
name_of(const char *json, char *out, size_t outlen)
{
	struct rw_doc_node *d = NULL;
	out[0] = '\0';
	if (rw_doc_parse(json, strlen(json), &d, NULL, 0) == 0) {
		const char *n = rw_doc_gets(rw_doc_get(d, "metadata"), "name");
		snprintf(out, outlen, "%s", n ? n : "");
	}
	rw_doc_free(d);
}

static void
written_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rw_rec_job *j = q->job;
	if (rw_kube_already_exists(resp) && q->kind == 0)
		return; /* created meanwhile: KubeRay's IsAlreadyExists */
	if (resp->status >= 200 && resp->status < 300)
		return;
	rw_rec_fail(j, resp->err ? resp->err : -EIO, NULL, "%s PodGroup %s/%s: HTTP %ld %s",
		    q->kind == 0 ? "creating" : "updating", j->ns, q->s2 ? q->s2 : "", resp->status,
		    resp->message);
}

/* s1: the desired PodGroup, s2: the collection; ptr non-NULL: update when it differs. */
static void
get_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rw_rec_job *j = q->job;
	char name[256], path[1024];
	int rv;
	name_of(q->s1, name, sizeof(name));
	if (resp->status == 404) {
		rv = rw_rec_send(j, "POST", q->s2, q->s1, strlen(q->s1), written_cb, NULL, name,
				 NULL);
		if (rv)
			rw_rec_fail(j, rv, NULL, "creating PodGroup %s: %s", name, strerror(-rv));
		else
			j->ctl->reqs->kind = 0; /* the request just linked */
		return;
	}
	if (resp->status != 200 || !resp->body) {
		rw_rec_fail(j, resp->err ? resp->err : -EIO, NULL,
			    "getting PodGroup %s/%s: HTTP %ld %s", j->ns, name, resp->status,
			    resp->message);
		return;
	}
	if (!q->ptr)
		return; /* scheduler-plugins: created once, never updated (as KubeRay) */
	struct rw_buf patch;
	rw_buf_init(&patch, 1u << 20);
	rv = rw_bs_podgroup_patch(resp->body, resp->body_len, q->s1, strlen(q->s1), &patch);
	if (rv == 1) {
		snprintf(path, sizeof(path), "%s/%s", q->s2, name);
		rv = rw_rec_send(j, "PATCH", path, rw_buf_cstr(&patch), patch.len, written_cb, NULL,
				 name, NULL);
		if (rv == 0)
			j->ctl->reqs->kind = 1;
	}
	if (rv < 0)
		rw_rec_fail(j, rv, NULL, "updating PodGroup %s: %s", name, strerror(-rv));
	rw_buf_fini(&patch);
}

int
rw_podgroup_sync(struct rw_rec_job *j, const char *collection, const char *desired, bool update)
{
	char name[256], path[1024];
	name_of(desired, name, sizeof(name));
	if (!*name)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s", collection, name);
	struct rw_kube_req kr = {.method = "GET", .path = path, .verb = "get"};
	return rw_rec_request(j->ctl, j, &kr, get_cb, desired, collection,
			      update ? (void *)1 : NULL);
}

static void
delete_cb(struct rw_rec_req *q, const struct rw_kube_resp *resp)
{
	struct rw_rec_job *j = q->job;
	if (resp->status == 404)
		return;
	if (resp->status >= 200 && resp->status < 300)
		rw_rec_emit(j, 0, "BatchSchedulerCleanedUp",
			    "Cleaned up batch scheduler resources for %s %s/%s", q->s2, j->ns,
			    j->name);
	else
		rw_rec_emit(j, 1, "FailedToCleanupBatchScheduler",
			    "Failed to cleanup batch scheduler resources for %s %s/%s: PodGroup "
			    "%s: HTTP %ld %s",
			    q->s2, j->ns, j->name, q->s1, resp->status, resp->message);
}

int
rw_podgroup_delete(struct rw_rec_job *j, const char *collection, const char *name, const char *kind)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", collection, name);
	struct rw_kube_req kr = {.method = "DELETE", .path = path, .verb = "delete"};
	return rw_rec_request(j->ctl, j, &kr, delete_cb, name, kind, NULL);
}

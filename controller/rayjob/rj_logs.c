/* rj_logs.c - driver logs that survive the RayCluster (see rj_logs.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_builder.h"
#include "rj_logs.h"

static void
log_free(void *p)
{
	struct rw_rj_log *g = p;
	if (!g)
		return;
	free(g->tail);
	free(g);
}

void
rw_rj_logs_init(struct rw_rj_logs *l)
{
	rw_kmap_init(&l->pending);
}

void
rw_rj_logs_fini(struct rw_rj_logs *l)
{
	rw_kmap_fini(&l->pending, log_free);
}

int
rw_rj_logs_offer(struct rw_rj_logs *l, const char *rayjob_key, const char *job_id,
		 const struct rw_job *job)
{
	struct rw_rj_log *g;
	void *old = NULL;
	size_t n;
	if (!job->log_tail || !job_id || strcmp(job->submission_id, job_id) != 0)
		return 0;
	if (!rw_kmap_get(&l->pending, rayjob_key) && l->pending.n >= RW_RJ_LOGS_MAX_PENDING)
		return -ENOSPC;
	g = calloc(1, sizeof(*g));
	n = strnlen(job->log_tail, RW_LOG_TAIL_MAX);
	if (!g || !(g->tail = malloc(n + 1))) {
		free(g);
		return -ENOMEM;
	}
	memcpy(g->tail, job->log_tail, n);
	g->tail[n] = '\0';
	snprintf(g->job_id, sizeof(g->job_id), "%s", job_id);
	g->truncated = job->log_truncated != 0;
	snprintf(g->error, sizeof(g->error), "%s", job->log_error);
	if (rw_kmap_put(&l->pending, rayjob_key, g, &old) != 0) {
		log_free(g);
		return -ENOMEM;
	}
	log_free(old);
	return 1;
}

const struct rw_rj_log *
rw_rj_logs_get(const struct rw_rj_logs *l, const char *rayjob_key)
{
	return rw_kmap_get(&l->pending, rayjob_key);
}

void
rw_rj_logs_drop(struct rw_rj_logs *l, const char *rayjob_key)
{
	log_free(rw_kmap_del(&l->pending, rayjob_key));
}

int
rw_rj_logs_configmap(const char *ns, const char *name, const char *uid, const struct rw_rj_log *log,
		     struct rw_buf *out)
{
	struct b b = {0};
	char cm[300];
	node *root = nnew(&b, RW_DOC_OBJ);
	node *meta, *labels, *data;
	if (snprintf(cm, sizeof(cm), "%s%s", name, RW_RJ_LOGS_SUFFIX) >= (int)sizeof(cm))
		return -ENAMETOOLONG;
	sets(&b, root, "apiVersion", "v1");
	sets(&b, root, "kind", "ConfigMap");
	meta = obj(&b, root, "metadata");
	sets(&b, meta, "name", cm);
	sets(&b, meta, "namespace", ns);
	labels = obj(&b, meta, "labels");
	sets(&b, labels, "ray.io/originated-from-cr-name", name);
	sets(&b, labels, "ray.io/originated-from-crd", "RayJob");
	sets(&b, labels, "app.kubernetes.io/created-by", "kuberay-operator");
	set_owner(&b, meta, "ray.io/v1", "RayJob", name, uid);
	data = obj(&b, root, "data");
	sets(&b, data, "driver.log", log->tail ? log->tail : "");
	sets(&b, data, "jobId", log->job_id);
	if (log->truncated)
		sets(&b, data, "truncated", "true");
	if (log->error[0])
		sets(&b, data, "error", log->error);
	return finish(&b, root, out);
}

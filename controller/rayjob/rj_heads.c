/* rj_heads.c - what the RayJobs ask of each cluster's head agent (see rj_heads.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rj_heads.h"

struct rw_rj_heads_cluster {
	int n;
	struct rw_rj_want *w[RW_RJ_HEADS_PER_CLUSTER];
};

static void
want_free(void *p)
{
	struct rw_rj_want *w = p;
	if (!w)
		return;
	rw_job_submit_fini(&w->sub);
	free(w);
}

void
rw_rj_heads_init(struct rw_rj_heads *h)
{
	rw_kmap_init(&h->by_job);
	rw_kmap_init(&h->by_cluster);
}

void
rw_rj_heads_fini(struct rw_rj_heads *h)
{
	rw_kmap_fini(&h->by_cluster, free);
	rw_kmap_fini(&h->by_job, want_free);
}

/* Take w out of its cluster's index (freeing an empty index entry). */
static void
unindex(struct rw_rj_heads *h, struct rw_rj_want *w)
{
	struct rw_rj_heads_cluster *c = rw_kmap_get(&h->by_cluster, w->cluster);
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		if (c->w[i] == w) {
			c->w[i] = c->w[--c->n];
			break;
		}
	if (c->n == 0)
		free(rw_kmap_del(&h->by_cluster, w->cluster));
}

void
rw_rj_heads_drop(struct rw_rj_heads *h, const char *rayjob)
{
	struct rw_rj_want *w = rw_kmap_get(&h->by_job, rayjob);
	if (!w)
		return;
	unindex(h, w);
	want_free(rw_kmap_del(&h->by_job, rayjob));
}

int
rw_rj_heads_set(struct rw_rj_heads *h, const char *rayjob, const char *cluster, const char *job_id,
		bool stop, struct rw_job_submit *sub)
{
	struct rw_rj_want *w = rw_kmap_get(&h->by_job, rayjob);
	struct rw_rj_heads_cluster *c;
	if (w && strcmp(w->cluster, cluster) != 0) {
		rw_rj_heads_drop(h, rayjob);
		w = NULL;
	}
	if (!w) {
		void *old = NULL;
		c = rw_kmap_get(&h->by_cluster, cluster);
		if (c && c->n >= RW_RJ_HEADS_PER_CLUSTER) {
			if (sub)
				rw_job_submit_fini(sub);
			return -ENOSPC;
		}
		if (!c) {
			if (!(c = calloc(1, sizeof(*c))) ||
			    rw_kmap_put(&h->by_cluster, cluster, c, &old) != 0) {
				free(c);
				if (sub)
					rw_job_submit_fini(sub);
				return -ENOMEM;
			}
		}
		if (!(w = calloc(1, sizeof(*w))) || rw_kmap_put(&h->by_job, rayjob, w, &old) != 0) {
			free(w);
			if (c->n == 0)
				free(rw_kmap_del(&h->by_cluster, cluster));
			if (sub)
				rw_job_submit_fini(sub);
			return -ENOMEM;
		}
		snprintf(w->rayjob, sizeof(w->rayjob), "%s", rayjob);
		snprintf(w->cluster, sizeof(w->cluster), "%s", cluster);
		c->w[c->n++] = w;
	}
	snprintf(w->job_id, sizeof(w->job_id), "%s", job_id);
	w->stop = stop;
	rw_job_submit_fini(&w->sub);
	w->submit = sub != NULL;
	if (sub) {
		w->sub = *sub;
		memset(sub, 0, sizeof(*sub));
	}
	return 0;
}

int
rw_rj_heads_of(const struct rw_rj_heads *h, const char *cluster, const struct rw_rj_want **out,
	       int max)
{
	const struct rw_rj_heads_cluster *c = rw_kmap_get(&h->by_cluster, cluster);
	int n = 0;
	for (int i = 0; c && i < c->n && n < max; i++)
		out[n++] = c->w[i];
	return n;
}

static const struct rw_job *
reported(const struct rw_report *rep, const char *id)
{
	for (int i = 0; rep && i < rep->njobs; i++)
		if (strcmp(rep->jobs[i].submission_id, id) == 0)
			return &rep->jobs[i];
	return NULL;
}

/*
 * The agent's submission failed and Ray has said nothing of the job (status
 * "", message "submit failed", docs/protocol.md): the agent retries only
 * when a reply asks again (after its back-off), so the reply must keep
 * carrying the submission. A submission in flight or accepted needs nothing.
 */
static bool
submit_failed(const struct rw_job *x)
{
	return x && !x->status[0] && strcmp(x->message, "submit failed") == 0;
}

static char *
dup_or_null(const char *s, int *err)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*err = -ENOMEM;
	return d;
}

int
rw_rj_heads_reply(const struct rw_rj_heads *h, const char *cluster, const struct rw_report *rep,
		  struct rw_reply *out)
{
	const struct rw_rj_heads_cluster *c = rw_kmap_get(&h->by_cluster, cluster);
	const struct rw_rj_want *send = NULL, *retry = NULL;
	int err = 0;
	for (int i = 0; c && i < c->n; i++) {
		const struct rw_rj_want *w = c->w[i];
		const struct rw_job *x = reported(rep, w->job_id);
		if (w->stop && !out->stop_job[0])
			snprintf(out->stop_job, sizeof(out->stop_job), "%s", w->job_id);
		if (w->submit) {
			/* One submission a reply: a new one first, so that a submission
			 * failing again and again does not hold back the others. */
			if (!x && !send)
				send = w;
			else if (submit_failed(x) && !retry)
				retry = w;
		} else if (!x && out->nwatch < RW_MAX_JOBS) {
			snprintf(out->watch_jobs[out->nwatch++], RW_ID_MAX, "%s", w->job_id);
		}
	}
	if (!send)
		send = retry;
	if (send) {
		out->has_submit = 1;
		out->submit = send->sub;
		out->submit.entrypoint = dup_or_null(send->sub.entrypoint, &err);
		out->submit.runtime_env_json = dup_or_null(send->sub.runtime_env_json, &err);
		out->submit.metadata_json = dup_or_null(send->sub.metadata_json, &err);
		out->submit.resources_json = dup_or_null(send->sub.resources_json, &err);
	}
	return err;
}

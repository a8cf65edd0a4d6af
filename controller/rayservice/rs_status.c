/* rs_status.c - RayService status, traffic switch, endpoints, cleanup and health decisions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_builder.h"
#include "rc_status.h"
#include "rs_status.h"
#include "rw/clock.h"
#include "rw/json.h"

/* ---- endpoints ---- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
rw_rayservice_count_endpoints(const char *const *slices, const size_t *lens, size_t n)
{
	char **uids = NULL;
	size_t nuids = 0, cap = 0;
	int count = 0, rv = 0;

	for (size_t s = 0; s < n && rv == 0; s++) {
		struct rw_json j;
		int eps, i, ep;
		if (!slices[s] || rw_json_parse(&j, slices[s], lens[s], 1 << 20, NULL, 0) != 0)
			continue;
		eps = rw_json_get(&j, 0, "endpoints");
		if (rw_json_type(&j, eps) == RW_JSON_ARRAY) {
			RW_JSON_ARR_FOREACH (&j, eps, i, ep) {
				int ready = rw_json_path(&j, ep, "conditions.ready");
				int uid = rw_json_path(&j, ep, "targetRef.uid");
				char *u;
				if (rw_json_type(&j, ready) != RW_JSON_TRUE ||
				    rw_json_type(&j, uid) != RW_JSON_STRING)
					continue;
				u = rw_json_strdup(&j, uid);
				if (!u) {
					rv = -ENOMEM;
					break;
				}
				if (!*u) {
					free(u);
					continue;
				}
				if (nuids == cap) {
					size_t nc = cap ? cap * 2 : 16;
					char **g = realloc(uids, nc * sizeof(*g));
					if (!g) {
						free(u);
						rv = -ENOMEM;
						break;
					}
					uids = g;
					cap = nc;
				}
				uids[nuids++] = u;
			}
		}
		rw_json_fini(&j);
	}
	if (rv == 0 && nuids > 0) {
		qsort(uids, nuids, sizeof(*uids), cmp_str);
		for (size_t i = 0; i < nuids; i++)
			if (i == 0 || strcmp(uids[i], uids[i - 1]) != 0)
				count++;
	}
	for (size_t i = 0; i < nuids; i++)
		free(uids[i]);
	free(uids);
	return rv ? rv : count;
}

/* ---- traffic switch ---- */

bool
rw_rayservice_cluster_can_serve(const struct rw_rayservice_ready_in *in)
{
	if (!rw_rayservice_apps_ready(in->head))
		return false;
	return in->ready_endpoints >= 1 && in->ready_endpoints >= in->expected_endpoints;
}

const char *
rw_rayservice_service_target(const struct rw_rayservice *rs, bool active_can_serve,
			     bool pending_can_serve)
{
	const char *a = rw_rayservice_active_name(rs), *p = rw_rayservice_pending_name(rs);
	if (pending_can_serve && *p)
		return p;
	if (active_can_serve && *a)
		return a;
	return NULL;
}

/* ---- time helpers ---- */

/* Go's time.Duration.String for a whole number of milliseconds ("5m0s", "1h2m3.5s", "300ms"). */
static void
go_dur(int64_t ms, char *out, size_t n)
{
	char frac[8] = "";
	int64_t h, m, s, r;
	bool neg = ms < 0;
	if (neg) /* INT64_MIN has no positive twin; one millisecond off is fine here */
		ms = ms == INT64_MIN ? INT64_MAX : -ms;
	if (ms == 0) {
		snprintf(out, n, "0s");
		return;
	}
	if (ms < 1000) {
		snprintf(out, n, "%s%lldms", neg ? "-" : "", (long long)ms);
		return;
	}
	h = ms / 3600000;
	m = ms / 60000 % 60;
	s = ms / 1000 % 60;
	r = ms % 1000;
	if (r) {
		snprintf(frac, sizeof(frac), ".%03lld", (long long)r);
		size_t k = strlen(frac);
		while (k > 1 && frac[k - 1] == '0')
			frac[--k] = '\0';
	}
	if (h)
		snprintf(out, n, "%s%lldh%lldm%lld%ss", neg ? "-" : "", (long long)h, (long long)m,
			 (long long)s, frac);
	else if (m)
		snprintf(out, n, "%s%lldm%lld%ss", neg ? "-" : "", (long long)m, (long long)s,
			 frac);
	else
		snprintf(out, n, "%s%lld%ss", neg ? "-" : "", (long long)s, frac);
}

/* ---- conditions ---- */

static bool
cond_is(node *conds, const char *type, const char *status, const char *reason)
{
	node *c = rw_doc_cond(conds, type);
	return c && streq(rw_doc_gets(c, "status"), status) &&
	       (!reason || streq(rw_doc_gets(c, "reason"), reason));
}

bool
rw_rayservice_timed_out(const struct rw_rayservice *rs)
{
	return cond_is(rw_doc_get(rs->obj.status, "conditions"), "Ready", "False",
		       "InitializingTimeout");
}

/* ---- status ---- */

static const char *
cname(const node *svc_status)
{
	const char *v = rw_doc_gets(svc_status, "rayClusterName");
	return v ? v : "";
}

static node *
status_copy(const struct rw_rayservice *rs)
{
	return rs->obj.status ? rw_doc_clone(rs->obj.status) : rw_doc_new(RW_DOC_OBJ);
}

static node *
conds_of(struct b *b, node *st)
{
	node *c = rw_doc_get(st, "conditions");
	if (c && c->type == RW_DOC_ARR)
		return c;
	c = b->err ? NULL : rw_doc_arr(st, "conditions");
	if (!c)
		fail(b, -ENOMEM);
	return c;
}

static void
cluster_part(struct b *b, node *svc_status, const struct rw_raycluster *c,
	     const struct rw_report *head, bool head_without_agent)
{
	node *cs = c ? rw_doc_get(c->obj.root, "status") : NULL;
	node *copy;
	if (b->err)
		return;
	if (!c) {
		/* No cluster: no rayClusterStatus (an empty service status stays {}). */
		rw_doc_del(svc_status, "rayClusterStatus");
		rw_doc_del(svc_status, "applicationStatuses");
		return;
	}
	copy = cs && cs->type == RW_DOC_OBJ ? rw_doc_clone(cs) : rw_doc_new(RW_DOC_OBJ);
	if (!copy || rw_doc_set(svc_status, "rayClusterStatus", copy)) {
		fail(b, -ENOMEM);
		return;
	}
	if (head) {
		node *apps = rw_rayservice_app_statuses(head);
		if (!apps || rw_doc_set(svc_status, "applicationStatuses", apps))
			fail(b, -ENOMEM);
		else if (apps->n == 0)
			rw_doc_del(svc_status, "applicationStatuses");
	} else if (!head_without_agent) {
		rw_doc_del(svc_status, "applicationStatuses");
	}
}

static void
init_timeout(struct b *b, const struct rw_rayservice *rs, node *st, node *conds, int64_t gen,
	     const struct rw_rayservice_status_in *in, const char *now)
{
	const char *v = rw_doc_gets(rs->obj.annotations, RW_RAYSERVICE_INIT_TIMEOUT_ANNOTATION);
	node *ready = rw_doc_cond(conds, "Ready");
	int64_t timeout, since, spent;
	char msg[256], t1[64], t2[64];

	if (!v || !*v || rw_rayservice_parse_timeout(v, &timeout) != 0 || timeout <= 0)
		return;
	if (!ready || !streq(rw_doc_gets(ready, "status"), "False") ||
	    !streq(rw_doc_gets(ready, "reason"), "Initializing"))
		return;
	const char *lt = rw_doc_gets(ready, "lastTransitionTime");
	if (!lt || rw_time_parse_rfc3339_ms(lt, strlen(lt), &since) != 0)
		return;
	spent = in->now_ms - since;
	if (spent < timeout)
		return;
	rw_doc_del(rw_doc_get(st, "activeServiceStatus"), "rayClusterName");
	rw_doc_del(rw_doc_get(st, "pendingServiceStatus"), "rayClusterName");
	go_dur(timeout, t1, sizeof(t1));
	go_dur(spent, t2, sizeof(t2));
	snprintf(msg, sizeof(msg),
		 "RayService failed to become ready within the configured timeout of %s. Time "
		 "spent initializing: %s",
		 t1, t2);
	set_condition(b, conds, "Ready", "False", "InitializingTimeout", msg, gen, now);
}

int
rw_rayservice_status(const struct rw_rayservice *rs, const struct rw_rayservice_status_in *in,
		     struct rw_buf *out)
{
	struct b b = {0};
	struct rw_rayservice_opts defo;
	const struct rw_rayservice_opts *o = in->opts;
	const char *now = in->now ? in->now : "1970-01-01T00:00:00Z";
	node *st = status_copy(rs), *act, *pend, *conds;
	const char *svc = in->svc_cluster ? in->svc_cluster : "";
	char aname[300], pname[300];
	bool pending_serving = false, prepare;
	int64_t gen = rs->obj.generation;
	int rv;

	if (!o) {
		rw_rayservice_opts_default(&defo);
		o = &defo;
	}
	if (!st)
		return -ENOMEM;
	if (rw_rayservice_timed_out(rs)) {
		/* Terminal: the status stays as it is. */
		rv = rw_doc_dump(st, out);
		rw_doc_free(st);
		return rv;
	}
	snprintf(aname, sizeof(aname), "%s", rw_rayservice_active_name(rs));
	snprintf(pname, sizeof(pname), "%s", rw_rayservice_pending_name(rs));
	if (gen > 0 && rw_doc_set_int(st, "observedGeneration", gen))
		fail(&b, -ENOMEM);
	act = obj(&b, st, "activeServiceStatus");
	pend = obj(&b, st, "pendingServiceStatus");
	cluster_part(&b, act, in->active, in->active_head, in->active_head_without_agent);
	cluster_part(&b, pend, in->pending, in->pending_head, in->pending_head_without_agent);

	/* Promotion: the services already point to the pending cluster. */
	if (!b.err && *svc && *pname && streq(svc, pname) && !streq(svc, aname)) {
		node *moved = rw_doc_clone(pend);
		if (!moved || rw_doc_set(st, "activeServiceStatus", moved) ||
		    rw_doc_set(st, "pendingServiceStatus", rw_doc_new(RW_DOC_OBJ)))
			fail(&b, -ENOMEM);
		snprintf(aname, sizeof(aname), "%s", pname);
		pname[0] = '\0';
	}
	pending_serving = *svc && streq(svc, rw_rayservice_pending_name(rs));

	/* A new pending cluster (upgrade, first cluster, or recovery). */
	if (*pname && !in->pending)
		prepare = false; /* named but not created yet: keep the name */
	else
		prepare = rw_rayservice_prepare_new_cluster(rs, in->active, in->pending,
							    pending_serving, o);
	if (!prepare && in->force_new_cluster && !*pname && !pending_serving)
		prepare = true;
	if (prepare && !b.err) {
		char name[300];
		if (rw_rayservice_cluster_name(rs->obj.name, in->new_suffix, name, sizeof(name)) ==
		    0) {
			node *np = rw_doc_new(RW_DOC_OBJ);
			sets(&b, np, "rayClusterName", name);
			if (!b.err && rw_doc_set(st, "pendingServiceStatus", np))
				fail(&b, -ENOMEM);
			else if (b.err)
				rw_doc_free(np);
			snprintf(pname, sizeof(pname), "%s", name);
		}
	}

	if (in->num_endpoints > 0) {
		if (rw_doc_set_int(st, "numServeEndpoints", in->num_endpoints))
			fail(&b, -ENOMEM);
	} else {
		rw_doc_del(st, "numServeEndpoints");
	}

	conds = conds_of(&b, st);
	if (!b.err && conds->n == 0) {
		set_condition(&b, conds, "Ready", "False", "Initializing",
			      "RayService is initializing", gen, now);
		set_condition(&b, conds, "UpgradeInProgress", "False", "Initializing",
			      "RayService is initializing", gen, now);
	}
	if (in->num_endpoints > 0)
		set_condition(&b, conds, "Ready", "True", "NonZeroServeEndpoints",
			      "Number of serve endpoints is greater than 0", gen, now);
	else if (cond_is(conds, "Ready", "True", NULL))
		set_condition(&b, conds, "Ready", "False", "ZeroServeEndpoints",
			      "Number of serve endpoints dropped to 0", gen, now);
	else if (!b.err)
		init_timeout(&b, rs, st, conds, gen, in, now);
	if (!b.err) {
		const char *a = cname(rw_doc_get(st, "activeServiceStatus"));
		const char *p = cname(rw_doc_get(st, "pendingServiceStatus"));
		if (*a && *p) {
			set_condition(&b, conds, "UpgradeInProgress", "True",
				      "BothActivePendingClustersExist",
				      "Both active and pending Ray clusters exist", gen, now);
		} else if (*a) {
			set_condition(&b, conds, "UpgradeInProgress", "False", "NoPendingCluster",
				      "Active Ray cluster exists and no pending Ray cluster", gen,
				      now);
		} else {
			node *c = rw_doc_cond(conds, "UpgradeInProgress");
			const char *r = rw_doc_gets(c, "reason");
			if (!c || (!streq(r, "Initializing") && !streq(r, "InitializingTimeout")))
				set_condition(
				    &b, conds, "UpgradeInProgress", "Unknown", "NoActiveCluster",
				    "No active Ray cluster exists, and the RayService is not "
				    "initializing. Please open a GitHub issue in the KubeRay "
				    "repository.",
				    gen, now);
		}
	}
	if (cond_is(conds, "Ready", "True", NULL))
		sets(&b, st, "serviceStatus", "Running");
	else
		rw_doc_del(st, "serviceStatus");
	sets(&b, st, "lastUpdateTime", now);
	rv = b.err ? b.err : rw_doc_dump(st, out);
	rw_doc_free(st);
	return rv;
}

int
rw_rayservice_status_invalid(const struct rw_rayservice *rs, const char *message, const char *now,
			     struct rw_buf *out)
{
	struct b b = {0};
	node *st = status_copy(rs), *conds;
	int64_t gen = 0;
	int rv;

	if (!st)
		return -ENOMEM;
	rw_doc_int(rw_doc_get(st, "observedGeneration"), &gen);
	conds = conds_of(&b, st);
	set_condition(&b, conds, "Ready", "False", "ValidationFailed", message ? message : "", gen,
		      now ? now : "1970-01-01T00:00:00Z");
	sets(&b, st, "lastUpdateTime", now ? now : "1970-01-01T00:00:00Z");
	rv = b.err ? b.err : rw_doc_dump(st, out);
	rw_doc_free(st);
	return rv;
}

bool
rw_rayservice_status_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	return rw_raycluster_status_equal(a, alen, b, blen);
}

/* ---- cleanup ---- */

enum rw_rayservice_cleanup
rw_rayservice_cleanup_cluster(const struct rw_rayservice *rs, const char *cluster,
			      int64_t scheduled_ms, int64_t now_ms, bool rs_deleting,
			      int64_t *at_ms)
{
	int64_t delay_ms;
	*at_ms = scheduled_ms;
	if (!rs_deleting && cluster &&
	    (streq(cluster, rw_rayservice_active_name(rs)) ||
	     streq(cluster, rw_rayservice_pending_name(rs))))
		return RW_RAYSERVICE_CLEANUP_KEEP;
	if (rs_deleting) {
		*at_ms = now_ms;
		return RW_RAYSERVICE_CLEANUP_DELETE;
	}
	if (scheduled_ms == 0) {
		delay_ms = rw_rayservice_deletion_delay_s(rs) * 1000;
		*at_ms = now_ms + delay_ms;
		return RW_RAYSERVICE_CLEANUP_SCHEDULE;
	}
	return now_ms > scheduled_ms ? RW_RAYSERVICE_CLEANUP_DELETE : RW_RAYSERVICE_CLEANUP_WAIT;
}

/* ---- unhealthy thresholds ---- */

static bool
threshold_s(const struct rw_rayservice *rs, const char *key, int64_t *s)
{
	return rw_doc_int(rw_doc_get(rs->obj.spec, key), s) == 0 && *s >= 0;
}

void
rw_rayservice_health(const struct rw_rayservice *rs, const struct rw_rayservice_health_in *in,
		     struct rw_rayservice_health *out)
{
	struct rw_rayservice_opts defo;
	const struct rw_rayservice_opts *o = in->opts;
	int64_t svc_t = 0, dep_t = 0;
	bool have_svc_t, have_dep_t;

	if (!o) {
		rw_rayservice_opts_default(&defo);
		o = &defo;
	}
	memset(out, 0, sizeof(*out));
	/*
	 * A head KubeRay made, kept when raywarden took over, never reports: its
	 * silence says nothing about Ray, and must neither raise HeadUnreachable
	 * nor replace a serving cluster (KubeRay's probes still guard its pods).
	 */
	if (in->head_without_agent)
		return;
	out->head_unreachable = in->head_stale || !in->head ||
				(in->head->has_serve && in->head->serve_api.state != RW_PROBE_OK &&
				 in->head->serve_api.state != RW_PROBE_UNKNOWN);
	out->apps_unhealthy = !out->head_unreachable && rw_rayservice_apps_unhealthy(in->head);
	out->svc_since_ms =
	    out->head_unreachable ? (in->svc_since_ms ? in->svc_since_ms : in->now_ms) : 0;
	out->dep_since_ms =
	    out->apps_unhealthy ? (in->dep_since_ms ? in->dep_since_ms : in->now_ms) : 0;
	have_svc_t = threshold_s(rs, "serviceUnhealthySecondThreshold", &svc_t);
	have_dep_t = threshold_s(rs, "deploymentUnhealthySecondThreshold", &dep_t);

	if (out->head_unreachable) {
		int64_t for_ms = in->now_ms - out->svc_since_ms;
		out->action = RW_RAYSERVICE_HEALTH_REPORT;
		out->event_reason = "HeadUnreachable";
		snprintf(out->message, sizeof(out->message),
			 "The head of the active RayCluster has not answered for %lld s",
			 (long long)(for_ms / 1000));
		if (have_svc_t && for_ms >= svc_t * 1000) {
			out->event_reason = "ServiceUnhealthyThresholdExceeded";
			if (!in->pending_exists && rw_rayservice_zero_downtime(rs, o)) {
				out->action = RW_RAYSERVICE_HEALTH_NEW_CLUSTER;
				snprintf(
				    out->message, sizeof(out->message),
				    "The head of the active RayCluster has not answered for "
				    "%lld s (serviceUnhealthySecondThreshold %lld s): preparing "
				    "a new RayCluster",
				    (long long)(for_ms / 1000), (long long)svc_t);
			} else {
				snprintf(out->message, sizeof(out->message),
					 "The head of the active RayCluster has not answered for "
					 "%lld s (serviceUnhealthySecondThreshold %lld s); %s",
					 (long long)(for_ms / 1000), (long long)svc_t,
					 in->pending_exists ? "a pending RayCluster already exists"
							    : "zero-downtime upgrades are off");
			}
		}
		return;
	}
	if (out->apps_unhealthy) {
		int64_t for_ms = in->now_ms - out->dep_since_ms;
		out->action = RW_RAYSERVICE_HEALTH_REPORT;
		out->event_reason = "ServeApplicationUnhealthy";
		if (have_dep_t && for_ms >= dep_t * 1000) {
			out->event_reason = "DeploymentUnhealthyThresholdExceeded";
			snprintf(out->message, sizeof(out->message),
				 "Serve applications have been unhealthy for %lld s "
				 "(deploymentUnhealthySecondThreshold %lld s)",
				 (long long)(for_ms / 1000), (long long)dep_t);
		} else {
			snprintf(out->message, sizeof(out->message),
				 "Serve applications are unhealthy (for %lld s)",
				 (long long)(for_ms / 1000));
		}
	}
}

/* ---- suspend ---- */

bool
rw_rayservice_suspend_active(const struct rw_rayservice *rs)
{
	return rw_rayservice_suspended(rs) ||
	       cond_is(rw_doc_get(rs->obj.status, "conditions"), "Suspending", "True", NULL);
}

bool
rw_rayservice_resume_due(const struct rw_rayservice *rs)
{
	return !rw_rayservice_suspend_active(rs) &&
	       cond_is(rw_doc_get(rs->obj.status, "conditions"), "Suspended", "True", NULL);
}

int
rw_rayservice_suspend_conds(node *st, const struct rw_rayservice *rs,
			    enum rw_rayservice_suspend_phase phase, const char *now)
{
	struct b b = {0};
	node *conds = conds_of(&b, st);
	int64_t gen = rs->obj.generation;
	switch (phase) {
	case RW_RAYSERVICE_SUSPENDING:
		set_condition(&b, conds, "Suspending", "True", "SuspendInProgress",
			      "Deleting the RayService's clusters and services", gen, now);
		set_condition(&b, conds, "Ready", "False", "SuspendInProgress",
			      "RayService is being suspended", gen, now);
		break;
	case RW_RAYSERVICE_SUSPENDED:
		set_condition(&b, conds, "Suspending", "False", "SuspendComplete",
			      "RayService suspend completed", gen, now);
		set_condition(&b, conds, "UpgradeInProgress", "False", "SuspendComplete",
			      "RayService suspend completed", gen, now);
		set_condition(&b, conds, "Ready", "False", "SuspendComplete",
			      "RayService is suspended", gen, now);
		if (rw_rayservice_suspended(rs))
			set_condition(&b, conds, "Suspended", "True", "SuspendComplete",
				      "RayService is suspended", gen, now);
		break;
	case RW_RAYSERVICE_RESUMED:
		set_condition(&b, conds, "Suspended", "False", "RayServiceResumed",
			      "RayService resumed", gen, now);
		break;
	}
	return b.err;
}

void
rw_rayservice_pending_traffic(const char *active, bool active_exists, char *out, size_t n)
{
	if (!active || !*active)
		snprintf(out, n,
			 "there is no active RayCluster yet: no traffic is served until a "
			 "RayCluster's applications are running");
	else if (!active_exists)
		snprintf(out, n, "the active RayCluster %s no longer exists: no traffic is served",
			 active);
	else
		snprintf(out, n, "traffic stays on the active RayCluster %s", active);
}

/* rs_serve.c - RayService decisions from agent reports (serve config, apps, labels, replies). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_serve.h"

static bool
streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

bool
rw_rayservice_need_submit(const char *hash, const struct rw_report *head, const char **reason)
{
	const char *why = NULL;
	bool need = true;

	if (!hash || !*hash) {
		need = false;
		why = "No serve config in the RayService.";
	} else if (!head || !head->serve_config_hash[0]) {
		why = "Nothing has been applied to the cluster yet.";
	} else if (head->has_serve && head->napps == 0) {
		why = "No Serve application found in the RayCluster. A possible reason is that the "
		      "head Pod crashed and GCS FT was not enabled.";
	} else if (strcmp(head->serve_config_hash, hash) != 0) {
		why = "Current serve config doesn't match the applied one.";
	} else if (streq(head->serve_apply_state, "failed")) {
		why = "The last apply of the current serve config failed.";
	} else {
		need = false;
		why = "Current serve config matches the applied one.";
	}
	if (reason)
		*reason = why;
	return need;
}

bool
rw_rayservice_apps_ready(const struct rw_report *head)
{
	if (!head || !head->has_serve || head->napps <= 0)
		return false;
	for (int i = 0; i < head->napps; i++)
		if (strcmp(head->apps[i].status, "RUNNING") != 0)
			return false;
	return true;
}

bool
rw_rayservice_apps_unhealthy(const struct rw_report *head)
{
	if (!head || !head->has_serve)
		return false;
	for (int i = 0; i < head->napps; i++) {
		const struct rw_serve_app *a = &head->apps[i];
		if (streq(a->status, "DEPLOY_FAILED") || streq(a->status, "UNHEALTHY"))
			return true;
		for (int k = 0; k < a->ndeps; k++)
			if (streq(a->deps[k].status, "UNHEALTHY"))
				return true;
	}
	return false;
}

/*
 * The line of a Serve message worth an Event: the last non-empty one (for a
 * traceback, the exception), as a pointer into msg and a length.
 */
static const char *
last_line(const char *msg, int *len)
{
	const char *end = msg + strlen(msg), *start;
	while (end > msg && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	start = end;
	while (start > msg && start[-1] != '\n')
		start--;
	while (start < end && (*start == ' ' || *start == '\t'))
		start++;
	*len = (int)(end - start);
	return start;
}

bool
rw_rayservice_unhealthy_summary(const struct rw_report *head, char *out, size_t n)
{
	const char *m;
	int ml;
	if (n)
		out[0] = '\0';
	if (!head || !head->has_serve || !n)
		return false;
	for (int i = 0; i < head->napps; i++) {
		const struct rw_serve_app *a = &head->apps[i];
		if (streq(a->status, "DEPLOY_FAILED") || streq(a->status, "UNHEALTHY")) {
			m = last_line(a->message, &ml);
			snprintf(out, n, "application %s is %s%s%.*s", a->name, a->status,
				 ml ? ": " : "", ml, m);
			return true;
		}
		for (int k = 0; k < a->ndeps; k++) {
			const struct rw_serve_dep *d = &a->deps[k];
			if (streq(d->status, "UNHEALTHY")) {
				m = last_line(d->message, &ml);
				snprintf(out, n,
					 "deployment %s of application %s is UNHEALTHY%s%.*s",
					 d->name, a->name, ml ? ": " : "", ml, m);
				return true;
			}
		}
	}
	return false;
}

/* status/message members, omitted when empty (Go omitempty). */
static int
status_pair(struct rw_doc_node *o, const char *status, const char *message)
{
	int rv = 0;
	if (message && *message)
		rv = rw_doc_set_str(o, "message", message);
	if (rv == 0 && status && *status)
		rv = rw_doc_set_str(o, "status", status);
	return rv;
}

struct rw_doc_node *
rw_rayservice_app_statuses(const struct rw_report *head)
{
	struct rw_doc_node *apps = rw_doc_new(RW_DOC_OBJ);
	int rv = apps ? 0 : -ENOMEM;

	for (int i = 0; rv == 0 && head && head->has_serve && i < head->napps; i++) {
		const struct rw_serve_app *a = &head->apps[i];
		struct rw_doc_node *app = rw_doc_new(RW_DOC_OBJ), *deps = NULL;
		const char *name = a->name[0] ? a->name : RW_RAYSERVICE_DEFAULT_APP;
		rv = app ? status_pair(app, a->status, a->message) : -ENOMEM;
		if (rv == 0 && a->ndeps > 0) {
			deps = rw_doc_obj(app, "serveDeploymentStatuses");
			rv = deps ? 0 : -ENOMEM;
		}
		for (int k = 0; rv == 0 && k < a->ndeps; k++) {
			struct rw_doc_node *d = rw_doc_obj(deps, a->deps[k].name);
			rv = d ? status_pair(d, a->deps[k].status, a->deps[k].message) : -ENOMEM;
		}
		if (rv == 0)
			rv = rw_doc_set(apps, name, app); /* takes app, even on failure */
		else
			rw_doc_free(app);
	}
	if (rv) {
		rw_doc_free(apps);
		return NULL;
	}
	return apps;
}

int
rw_rayservice_write_app_statuses(const struct rw_report *head, struct rw_buf *out)
{
	struct rw_doc_node *n = rw_rayservice_app_statuses(head);
	int rv = n ? rw_doc_dump(n, out) : -ENOMEM;
	rw_doc_free(n);
	return rv;
}

bool
rw_rayservice_proxy_healthy(const struct rw_report *r)
{
	return r && r->proxy.state == RW_PROBE_OK && !r->draining;
}

const struct rw_serve_node *
rw_rayservice_find_node(const struct rw_report *head, const char *ip)
{
	if (!head || !ip || !*ip)
		return NULL;
	for (int i = 0; i < head->nnodes; i++)
		if (strcmp(head->nodes[i].node_ip, ip) == 0)
			return &head->nodes[i];
	return NULL;
}

int
rw_rayservice_expected_endpoints(const struct rw_report *head, const char *head_ip,
				 bool exclude_head)
{
	int n = 0;
	if (!head || !head->has_serve)
		return 0;
	for (int i = 0; i < head->nnodes; i++) {
		const struct rw_serve_node *nd = &head->nodes[i];
		if (strcmp(nd->proxy_status, "HEALTHY") != 0)
			continue;
		if (exclude_head && head_ip && *head_ip && strcmp(nd->node_ip, head_ip) == 0)
			continue;
		n++;
	}
	return n;
}

const char *
rw_rayservice_label_value(enum rw_rayservice_label l)
{
	return l == RW_RAYSERVICE_LABEL_TRUE	? "true"
	       : l == RW_RAYSERVICE_LABEL_FALSE ? "false"
						: NULL;
}

static int
proxy_expected(const struct rw_rayservice_pod_in *in, const char *ip)
{
	const struct rw_report *h = in->head;
	const struct rw_serve_node *nd;
	const char *loc;

	if (!h || !h->has_serve)
		return -1;
	loc = h->proxy_location;
	if (streq(loc, "Disabled") || streq(loc, "NoServer"))
		return 0;
	if (in->is_head)
		return 1;
	if (streq(loc, "HeadOnly"))
		return 0;
	nd = rw_rayservice_find_node(h, ip);
	if (!nd)
		return -1;
	return nd->replicas > 0 || nd->proxy_status[0] ? 1 : 0;
}

void
rw_rayservice_pod_decide(const struct rw_rayservice_pod_in *in, struct rw_rayservice_pod_out *out)
{
	const char *ip = in->pod_ip && *in->pod_ip ? in->pod_ip
			 : in->self		   ? in->self->pod_ip
						   : NULL;

	out->proxy_expected = proxy_expected(in, ip);
	out->drain = in->leaving;
	if (in->leaving || (in->is_head && in->exclude_head))
		out->serve = RW_RAYSERVICE_LABEL_FALSE;
	else if (in->stale)
		out->serve = RW_RAYSERVICE_LABEL_FALSE;
	else if (!in->self)
		out->serve = RW_RAYSERVICE_LABEL_KEEP;
	else
		out->serve = rw_rayservice_proxy_healthy(in->self) ? RW_RAYSERVICE_LABEL_TRUE
								   : RW_RAYSERVICE_LABEL_FALSE;
}

int
rw_rayservice_fill_reply(const struct rw_rayservice_pod_out *d,
			 const struct rw_rayservice_serve_cfg *cfg, const struct rw_report *head,
			 struct rw_reply *rp)
{
	rp->drain = d->drain;
	rp->proxy_expected = d->proxy_expected;
	rp->serve_config_hash[0] = '\0';
	free(rp->serve_config);
	rp->serve_config = NULL;
	if (!cfg || !cfg->json || !cfg->hash[0])
		return 0;
	memcpy(rp->serve_config_hash, cfg->hash, sizeof(cfg->hash));
	if (!rw_rayservice_need_submit(cfg->hash, head, NULL))
		return 0;
	rp->serve_config = malloc(cfg->len + 1);
	if (!rp->serve_config)
		return -ENOMEM;
	memcpy(rp->serve_config, cfg->json, cfg->len);
	rp->serve_config[cfg->len] = '\0';
	return 0;
}

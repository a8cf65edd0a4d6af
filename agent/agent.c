/*
 * agent.c - the agent's lifecycle on one libuv loop: timers, signals, the
 * report it builds from its state, and orderly shutdown.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "rw/clock.h"
#include "rw/log.h"

uint64_t
rw_agent_wall_ms(const struct rw_agent *a, uint64_t loop_ms)
{
	return a->wall0_ms + (loop_ms - a->mono0_ms);
}

static void
kick_cb(uv_timer_t *t)
{
	struct rw_agent *a = t->data;
	a->kick_pending = 0;
	rw_reporter_send(a);
}

void
rw_agent_kick(struct rw_agent *a)
{
	/* Coalesce every change of one loop turn into one report. */
	if (a->stopping || !a->rep.enabled || a->kick_pending)
		return;
	a->kick_pending = 1;
	uv_timer_start(&a->kick, kick_cb, 0, 0);
}

static void
fill_probe(struct rw_agent *a, struct rw_probe *out, const struct rw_comp_state *c)
{
	out->state = c->state;
	snprintf(out->reason, sizeof(out->reason), "%s", c->reason);
	out->since_ms = rw_agent_wall_ms(a, c->since_ms);
}

void
rw_agent_build_report(struct rw_agent *a, struct rw_report *r)
{
	const struct rw_agent_config *c = &a->cfg;
	memset(r, 0, sizeof(*r));
	snprintf(r->ns, sizeof(r->ns), "%s", c->pod_namespace);
	snprintf(r->pod, sizeof(r->pod), "%s", c->pod_name);
	snprintf(r->uid, sizeof(r->uid), "%s", c->pod_uid);
	snprintf(r->cluster, sizeof(r->cluster), "%s", c->cluster);
	snprintf(r->group, sizeof(r->group), "%s", c->group);
	snprintf(r->node_type, sizeof(r->node_type), "%s", c->head ? "head" : "worker");
	snprintf(r->pod_ip, sizeof(r->pod_ip), "%s", c->pod_ip);
	snprintf(r->agent_version, sizeof(r->agent_version), "%s", RW_VERSION);
	r->rayservice = c->rayservice;
	r->ready = a->rd.ready;
	snprintf(r->ready_reason, sizeof(r->ready_reason), "%s", a->rd.reason);
	r->live = a->rd.live;
	r->draining = a->rd.drain || a->rd.terminating;
	fill_probe(a, &r->raylet, &a->rd.comp[RW_COMP_RAYLET]);
	fill_probe(a, &r->gcs, &a->rd.comp[RW_COMP_GCS]);
	fill_probe(a, &r->proxy, &a->rd.comp[RW_COMP_PROXY]);
	if (!c->head)
		return;
	r->has_serve = 1;
	r->serve_api = a->serve_api;
	snprintf(r->serve_config_hash, sizeof(r->serve_config_hash), "%s", a->apply.hash);
	snprintf(r->serve_apply_state, sizeof(r->serve_apply_state), "%s", a->apply.state);
	snprintf(r->serve_apply_error, sizeof(r->serve_apply_error), "%s", a->apply.error);
	if (a->have_serve) {
		snprintf(r->proxy_location, sizeof(r->proxy_location), "%s",
			 a->serve.proxy_location);
		r->napps = a->serve.napps;
		r->apps = a->serve.apps;
		r->nnodes = a->serve.nnodes;
		r->nodes = a->serve.nodes;
	}
	rw_agent_fill_jobs(a, r);
	snprintf(r->job_action_error, sizeof(r->job_action_error), "%s", a->job_action_error);
}

static void
trim_memory(struct rw_agent *a, const char *when)
{
	struct rw_mem_stats m0, m1;
	unsigned long kib = 0;
	rw_mem_read(&m0);
	int rv = rw_mem_trim(&kib);
	rw_mem_read(&m1);
	rw_log(RW_LOG_INFO, "memory",
	       "trimmed %s: rss %ld -> %ld KiB (anon %ld, file %ld -> %ld), pss %ld -> %ld KiB, "
	       "%lu KiB advised%s%s",
	       when, m0.rss_kib, m1.rss_kib, m1.anon_kib, m0.file_kib, m1.file_kib, m0.pss_kib,
	       m1.pss_kib, kib, rv ? ": " : "", rv ? strerror(-rv) : "");
	(void)a;
}

/* Every enabled probe has answered once: start-up is over. */
static int
first_round_done(const struct rw_agent *a)
{
	for (int k = 0; k < RW_KIND_COUNT; k++)
		if (a->probes[k].enabled && a->probes[k].lat_count == 0)
			return 0;
	return 1;
}

static void
tick_cb(uv_timer_t *t)
{
	struct rw_agent *a = t->data;
	if (a->trim_pending && first_round_done(a)) {
		a->trim_pending = 0;
		trim_memory(a, "after the first probes");
	}
	rw_probes_tick(a);
	rw_keys_tick(a);
	rw_reporter_poll_pipes(a);
}

static void
signal_cb(uv_signal_t *s, int signum)
{
	struct rw_agent *a = s->data;
	rw_info("agent", "received %s; shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	rw_agent_stop(a);
}

int
rw_agent_init(struct rw_agent *a, uv_loop_t *loop, const struct rw_agent_config *cfg, char *err,
	      size_t errlen)
{
	struct rw_ready_cfg rc;
	int rv;

	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	a->loop = loop;
	a->proxy_expected = -1;
	uv_update_time(loop);
	a->mono0_ms = uv_now(loop);
	a->wall0_ms = rw_clock_wall_ms();

	memset(&rc, 0, sizeof(rc));
	rc.head = cfg->head;
	rc.rayservice = cfg->rayservice;
	rc.proxy_mode = cfg->proxy_mode;
	rc.failure_threshold = cfg->failure_threshold;
	rc.success_threshold = cfg->success_threshold;
	rc.liveness_grace_ms = (uint64_t)cfg->liveness_grace_s * 1000;
	rw_readiness_init(&a->rd, &rc, uv_now(loop));

	if ((rv = rw_http_new(loop, &a->http)) != 0) {
		snprintf(err, errlen, "cannot create the HTTP client: %s", strerror(-rv));
		return rv;
	}
	rw_probes_init(a);
	if ((rv = rw_keys_init(a, err, errlen)) != 0)
		goto fail;
	if ((rv = rw_endpoints_init(a, err, errlen)) != 0)
		goto fail;
	uv_timer_init(loop, &a->kick);
	a->kick.data = a;
	uv_timer_init(loop, &a->tick);
	a->tick.data = a;
	rw_actions_init(a);
	uv_signal_init(loop, &a->sigterm);
	a->sigterm.data = a;
	uv_signal_init(loop, &a->sigint);
	a->sigint.data = a;
	if ((rv = rw_reporter_init(a, err, errlen)) != 0) {
		rw_agent_stop(a);
		return rv;
	}
	uv_signal_start(&a->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&a->sigint, signal_cb, SIGINT);
	/* The first probes go out at once; then one per interval. */
	if (cfg->memory_trim) {
		trim_memory(a, "after start-up");
		a->trim_pending = 1;
	}
	uv_timer_start(&a->tick, tick_cb, 0, (uint64_t)a->tick_ms);
	rw_info("agent",
		"raywarden-agent %s: %s pod %s/%s, probing %s (raylet :%d%s%s), every %ld ms "
		"(proxy %ld ms, timeout %ld ms, and at once when a connection hangs up), "
		"endpoints on %s:%d, proxy readiness %s%s",
		RW_VERSION, cfg->head ? "head" : "worker", cfg->pod_namespace, cfg->pod_name,
		cfg->probe_host, cfg->raylet_port, cfg->head ? ", gcs" : "",
		a->probes[RW_KIND_PROXY].enabled ? ", proxy" : "", cfg->probe_interval_ms,
		a->probes[RW_KIND_PROXY].period_ms, cfg->probe_timeout_ms, cfg->listen_host,
		rw_httpd_port(a->httpd), rw_proxy_mode_name(cfg->proxy_mode),
		cfg->controller[0] ? "" : ", standalone");
	return 0;
fail:
	rw_http_free(a->http, NULL, NULL);
	a->http = NULL;
	return rv;
}

void
rw_agent_stop(struct rw_agent *a)
{
	if (a->stopping)
		return;
	a->stopping = 1;
	rw_probes_stop(a);
	rw_actions_stop(a);
	rw_reporter_close(a);
	uv_close((uv_handle_t *)&a->tick, NULL);
	uv_close((uv_handle_t *)&a->kick, NULL);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->sigint, NULL);
	if (a->httpd) {
		rw_httpd_free(a->httpd, NULL, NULL);
		a->httpd = NULL;
	}
	if (a->http) {
		rw_http_free(a->http, NULL, NULL);
		a->http = NULL;
	}
}

void
rw_agent_fini(struct rw_agent *a)
{
	rw_reporter_fini(a);
	rw_keys_fini(a);
	rw_actions_fini(a);
	rw_serve_status_fini(&a->serve);
}

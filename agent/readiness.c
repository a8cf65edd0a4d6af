/*
 * readiness.c - the readiness and liveness state machine (pure).
 */
#include "readiness.h"

#include <stdio.h>
#include <string.h>

const char *
rw_comp_name(enum rw_comp c)
{
	static const char *n[] = {"raylet", "gcs", "proxy"};
	return (unsigned)c < RW_COMP_COUNT ? n[c] : "?";
}

static int
proxy_counts(const struct rw_ready_cfg *cfg)
{
	switch (cfg->proxy_mode) {
	case RW_PROXY_REQUIRED:
		return 1;
	case RW_PROXY_IGNORE:
		return 0;
	default:
		return cfg->rayservice && !cfg->head;
	}
}

void
rw_readiness_init(struct rw_readiness *r, const struct rw_ready_cfg *cfg, uint64_t now_ms)
{
	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
	if (r->cfg.failure_threshold < 1)
		r->cfg.failure_threshold = 1;
	if (r->cfg.success_threshold < 1)
		r->cfg.success_threshold = 1;
	for (int i = 0; i < RW_COMP_COUNT; i++) {
		r->comp[i].state = RW_PROBE_UNKNOWN;
		r->comp[i].since_ms = now_ms;
		snprintf(r->comp[i].reason, sizeof(r->comp[i].reason), "not probed yet");
	}
	r->comp[RW_COMP_RAYLET].probed = r->comp[RW_COMP_RAYLET].counts = 1;
	r->comp[RW_COMP_GCS].probed = r->comp[RW_COMP_GCS].counts = cfg->head;
	/* The proxy is probed wherever it can matter: for readiness, or on the head
	 * (where the controller uses it for the serve label). */
	r->comp[RW_COMP_PROXY].counts = proxy_counts(cfg);
	r->comp[RW_COMP_PROXY].probed =
	    r->comp[RW_COMP_PROXY].counts || cfg->head || cfg->rayservice;
	for (int i = 0; i < RW_COMP_COUNT; i++) {
		if (!r->comp[i].probed) {
			r->comp[i].state = RW_PROBE_DISABLED;
			snprintf(r->comp[i].reason, sizeof(r->comp[i].reason),
				 "not probed on this node");
		}
	}
	r->ready = 0;
	r->ready_since_ms = now_ms;
	snprintf(r->reason, sizeof(r->reason), "raylet: not probed yet");
	r->live = 1;
	snprintf(r->live_reason, sizeof(r->live_reason), "ok");
}

int
rw_readiness_probed(const struct rw_readiness *r, enum rw_comp c)
{
	return (unsigned)c < RW_COMP_COUNT && r->comp[c].probed;
}

static const char *
down_word(enum rw_probe_state s)
{
	switch (s) {
	case RW_PROBE_UNKNOWN:
		return "not probed yet";
	case RW_PROBE_FAIL:
		return "unhealthy";
	case RW_PROBE_REFUSED:
		return "down";
	case RW_PROBE_TIMEOUT:
		return "not answering";
	case RW_PROBE_ERROR:
		return "bad answer";
	case RW_PROBE_DRAINING:
		return "draining";
	case RW_PROBE_STARTING:
		return "starting";
	case RW_PROBE_ABSENT:
		return "absent";
	default:
		return rw_probe_state_name(s);
	}
}

/* Copy src into dst (size n), cutting it short if needed. */
static void
copy_trunc(char *dst, size_t n, const char *src)
{
	size_t l = strlen(src);
	if (l >= n)
		l = n - 1;
	memcpy(dst, src, l);
	dst[l] = 0;
}

static unsigned
evaluate(struct rw_readiness *r, uint64_t now_ms)
{
	unsigned chg = 0;
	int ready = 1;
	char tmp[512], reason[RW_REASON_MAX];

	snprintf(reason, sizeof(reason), "ok");
	if (r->terminating) {
		ready = 0;
		snprintf(reason, sizeof(reason), "draining: the pod is terminating (preStop)");
	} else if (r->drain) {
		ready = 0;
		snprintf(reason, sizeof(reason), "draining: requested by the controller");
	} else {
		for (int i = 0; i < RW_COMP_COUNT; i++) {
			const struct rw_comp_state *c = &r->comp[i];
			if (!c->counts || c->up)
				continue;
			ready = 0;
			if (c->state == RW_PROBE_UNKNOWN)
				snprintf(reason, sizeof(reason), "%s: not probed yet",
					 rw_comp_name((enum rw_comp)i));
			else if (c->state == RW_PROBE_OK)
				snprintf(reason, sizeof(reason), "%s recovering: %d/%d good probes",
					 rw_comp_name((enum rw_comp)i), c->consec_ok,
					 r->cfg.success_threshold);
			else {
				snprintf(tmp, sizeof(tmp), "%s %s: %s",
					 rw_comp_name((enum rw_comp)i), down_word(c->state),
					 c->reason);
				copy_trunc(reason, sizeof(reason), tmp);
			}
			break;
		}
	}
	if (ready != r->ready) {
		r->ready = ready;
		r->ready_since_ms = now_ms;
		r->transitions++;
		chg |= RW_CHG_READY;
	}
	if (strcmp(reason, r->reason) != 0) {
		memcpy(r->reason, reason, sizeof(reason));
		chg |= RW_CHG_READY;
	}

	/* Liveness: only a long, continuous raylet failure seen by this process. */
	const struct rw_comp_state *rl = &r->comp[RW_COMP_RAYLET];
	int live = 1;
	char lreason[RW_REASON_MAX];
	snprintf(lreason, sizeof(lreason), "ok");
	if (rl->bad_since_ms && now_ms >= rl->bad_since_ms &&
	    now_ms - rl->bad_since_ms > r->cfg.liveness_grace_ms) {
		live = 0;
		snprintf(tmp, sizeof(tmp), "raylet failing for %llus (grace %llus): %s",
			 (unsigned long long)((now_ms - rl->bad_since_ms) / 1000),
			 (unsigned long long)(r->cfg.liveness_grace_ms / 1000), rl->reason);
		copy_trunc(lreason, sizeof(lreason), tmp);
	}
	if (live != r->live)
		chg |= RW_CHG_LIVE;
	r->live = live;
	/* The reason carries a running duration: refresh it without flagging a change. */
	memcpy(r->live_reason, lreason, sizeof(lreason));
	return chg;
}

unsigned
rw_readiness_observe(struct rw_readiness *r, enum rw_comp ci, enum rw_probe_state st,
		     const char *reason, uint64_t now_ms)
{
	unsigned chg = 0;
	if ((unsigned)ci >= RW_COMP_COUNT || !r->comp[ci].probed)
		return 0;
	struct rw_comp_state *c = &r->comp[ci];
	if (!reason)
		reason = "";

	c->observations++;
	if (st != c->state) {
		c->state = st;
		c->since_ms = now_ms;
		chg |= RW_CHG_STATE;
	}
	if (strncmp(reason, c->reason, sizeof(c->reason) - 1) != 0) {
		copy_trunc(c->reason, sizeof(c->reason), reason);
		chg |= RW_CHG_STATE;
	}
	if (st == RW_PROBE_OK) {
		c->consec_ok++;
		c->consec_bad = 0;
		c->bad_since_ms = 0;
		if (!c->up && c->consec_ok >= r->cfg.success_threshold)
			c->up = 1;
	} else if (st != RW_PROBE_UNKNOWN) {
		c->failures++;
		c->consec_bad++;
		c->consec_ok = 0;
		if (!c->bad_since_ms)
			c->bad_since_ms = now_ms ? now_ms : 1;
		if (c->up && c->consec_bad >= r->cfg.failure_threshold)
			c->up = 0;
	}
	return chg | evaluate(r, now_ms);
}

unsigned
rw_readiness_set_drain(struct rw_readiness *r, int drain, uint64_t now_ms)
{
	drain = !!drain;
	if (drain == r->drain)
		return evaluate(r, now_ms);
	r->drain = drain;
	return RW_CHG_STATE | evaluate(r, now_ms);
}

unsigned
rw_readiness_set_terminating(struct rw_readiness *r, uint64_t now_ms)
{
	if (r->terminating)
		return evaluate(r, now_ms);
	r->terminating = 1;
	return RW_CHG_STATE | evaluate(r, now_ms);
}

unsigned
rw_readiness_tick(struct rw_readiness *r, uint64_t now_ms)
{
	return evaluate(r, now_ms);
}

/*
 * readiness.h - PURE readiness and liveness state machine.
 *
 * Fed with one observation per probe (state + reason + time), it debounces
 * each component with consecutive success/failure thresholds and derives
 * the pod's verdict with the rules of docs/agent.md:
 *   head:               raylet up and GCS up
 *   worker:             raylet up
 *   RayService worker:  raylet up and serve proxy up (proxy mode auto)
 * plus: a drain from the controller or a preStop drain (the pod is
 * terminating) forces NotReady; proxy mode "required"
 * makes the proxy count everywhere, "ignore" nowhere. Liveness fails only
 * when the raylet has been failing continuously for longer than the grace
 * period, counted from this process's own observations.
 */
#ifndef RW_AGENT_READINESS_H
#define RW_AGENT_READINESS_H

#include <stdint.h>

#include "classify.h"
#include "config.h"
#include "rw/wire.h"

/* Components that gate readiness (the serve API is reported, never gates). */
enum rw_comp { RW_COMP_RAYLET = 0, RW_COMP_GCS, RW_COMP_PROXY, RW_COMP_COUNT };

struct rw_ready_cfg {
	int head;
	int rayservice;
	enum rw_proxy_mode proxy_mode;
	int failure_threshold;
	int success_threshold;
	uint64_t liveness_grace_ms;
};

struct rw_comp_state {
	int probed;			 /* this component is probed on this node */
	int counts;			 /* it gates readiness */
	enum rw_probe_state state;	 /* last observation */
	char reason[RW_REASON_MAX];	 /* of the last observation */
	uint64_t since_ms;		 /* when state last changed */
	int up;				 /* debounced: 1 up, 0 down (initially down) */
	int consec_ok, consec_bad;	 /* current runs */
	uint64_t bad_since_ms;		 /* start of the current failing run, 0 if none */
	uint64_t observations, failures; /* totals */
};

struct rw_readiness {
	struct rw_ready_cfg cfg;
	struct rw_comp_state comp[RW_COMP_COUNT];
	int drain;	 /* the controller asks for a drain (it can lift it) */
	int terminating; /* a preStop hook asked for a drain: NotReady for good */
	int ready;
	char reason[RW_REASON_MAX];
	uint64_t ready_since_ms; /* when `ready` last changed */
	int live;
	char live_reason[RW_REASON_MAX];
	unsigned long transitions; /* ready flips */
};

/* Start: nothing probed yet, NotReady ("waiting for the first probes"), live. */
void rw_readiness_init(struct rw_readiness *r, const struct rw_ready_cfg *cfg, uint64_t now_ms);

/* Which components this node probes (disabled ones report RW_PROBE_DISABLED). */
int rw_readiness_probed(const struct rw_readiness *r, enum rw_comp c);

/* Flags returned by the updating calls. */
#define RW_CHG_STATE 1u /* a component's observed state or reason changed */
#define RW_CHG_READY 2u /* the readiness verdict or its reason changed */
#define RW_CHG_LIVE 4u	/* the liveness verdict changed */

/* Record one probe result for component c. Returns RW_CHG_* flags. */
unsigned rw_readiness_observe(struct rw_readiness *r, enum rw_comp c, enum rw_probe_state st,
			      const char *reason, uint64_t now_ms);

/* Apply or lift a drain requested by the controller. Returns RW_CHG_* flags. */
unsigned rw_readiness_set_drain(struct rw_readiness *r, int drain, uint64_t now_ms);

/*
 * The pod is terminating (the kubelet runs its preStop hook against the
 * agent's /drain): NotReady from now on, whatever the probes and the
 * controller say. Returns RW_CHG_* flags.
 */
unsigned rw_readiness_set_terminating(struct rw_readiness *r, uint64_t now_ms);

/* Re-evaluate time-dependent verdicts (liveness). Returns RW_CHG_* flags. */
unsigned rw_readiness_tick(struct rw_readiness *r, uint64_t now_ms);

/* Short name of a component. */
const char *rw_comp_name(enum rw_comp c);

#endif

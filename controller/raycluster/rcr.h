/*
 * rcr.h - internals shared by the RayCluster reconciler's files
 * (raycluster.c: steps and status; rcr_gate.c: the readiness
 * gate; rcr_delete.c: deletion and the GCS FT Redis cleanup). Not a public
 * interface: see raycluster.h.
 */
#ifndef RW_RCR_H
#define RW_RCR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "krmetrics.h"
#include "agents.h"
#include "expect.h"
#include "hub.h"
#include "kmap.h"
#include "manager.h"
#include "podpatch.h"
#include "raycluster.h"
#include "rc_build.h"
#include "reconcile.h"
#include "redis_cleanup.h"
#include "rw/keyfile.h"
#include "rw/wire.h"

/* Pods created per group and pass; the rest follow on the next pass (fairness). */
#define RCR_MAX_CREATES_PER_PASS 50

enum rcr_step {
	RCR_ST_LOAD = 0,
	RCR_ST_ADMIT, /* managed elsewhere, validation */
	RCR_ST_FINALIZER,
	RCR_ST_RBAC,
	RCR_ST_INGRESS, /* enableIngress: the head Ingress or Route (rcr_ingress.c) */
	RCR_ST_KEY,
	RCR_ST_SERVICES,
	RCR_ST_PODGROUP, /* --batch-scheduler: the PodGroup before any pod */
	RCR_ST_PODS,	 /* suspension, or the head pod */
	RCR_ST_WORKERS,	 /* after the head's create answered: KubeRay stops at its error */
	RCR_ST_STATUS,
	RCR_ST_DONE,
	/* deletion path */
	RCR_ST_DELETE,
	RCR_ST_DELETE_CLEANUP
};

/* What the reconciler remembers per cluster ("namespace/name"). */
struct rcr;

struct rcr_cl {
	struct rcr *r;
	char key[512];
	char uid[64];
	bool provisioned_seen;	 /* provisioned duration observed */
	bool rbac_done;		 /* autoscaler SA/Role/RoleBinding exist */
	bool key_done;		 /* agent key Secret exists with the right key */
	bool hub_key;		 /* key registered with the hub */
	char key_sha[65];	 /* SHA-256 (hex) of the key Secret's data.key we want */
	char agent_attached[64]; /* uid of the head pod the ephemeral agent was sent for */
	/* GCS FT Redis cleanup */
	struct rw_redis_cleanup *rcl; /* running, or NULL */
	bool dropping;		      /* the state is being dropped: ignore the result */
	bool cleanup_finished;	      /* result below is valid */
	struct rw_redis_cleanup_result cleanup;
	bool cleanup_skipped; /* nothing to clean (no address) */
	/* Our last status write, while the informer has not caught up with it. */
	char based_rv[32]; /* resourceVersion the write was based on */
	char *written;	   /* the object the API server answered with */
	char cleanup_why[256];
};

/*
 * One reconcile of one cluster: the runtime's job record (reconcile.h) first,
 * then what the RayCluster steps carry between them.
 */
struct rcr_job {
	struct rw_rec_job rec; /* rec.ud: the struct rcr (rcr_of) */
	struct rw_raycluster *c;
	struct rcr_cl *cl;
	bool changed; /* pods created or deleted */
	unsigned rbac_bits;
	bool rbac_started;
	/* pod builder options: the operator's, with this cluster's drain token */
	unsigned key_gen; /* master_gen the key step derived with */
	struct rw_raycluster_opts popts;
	char drain_token[RW_DRAIN_TOKEN_LEN + 1];
	/* deletion: credentials for the cleanup */
	char *redis_addr, *redis_user, *redis_pass, *storage_ns;
};

static inline struct rcr *
rcr_of(const struct rcr_job *j)
{
	return j->rec.ud;
}

/* A snapshot of one cluster's Ray pods (valid during the current loop turn). */
struct rcr_pods {
	struct rw_raycluster_pod *pods;
	const struct rw_inf_pod **raw;
	size_t n, cap;
	const char *uid;
	int err;
};

/* What enableIngress makes (rcr_ingress.c). */
enum rcr_net_mode {
	RCR_NET_PROBING = 0, /* asking whether route.openshift.io is served */
	RCR_NET_INGRESS,
	RCR_NET_ROUTE,
};

struct rcr {
	struct rw_mgr *mgr;
	uv_loop_t *loop;
	struct rw_ev *ev;
	struct rw_met *met;
	struct rw_rec_ctl ctl; /* work queue, jobs, requests, reconcile metrics */
	struct rw_wq *wq;      /* ctl.wq, for the informer handlers */
	struct rw_inf *rc_inf, *pod_inf, *svc_head_inf, *svc_headless_inf, *svc_serve_inf;
	struct rw_exp *exp;
	struct rw_raycluster_opts opts;
	char advertise[512];
	struct rw_wire_key master;
	bool have_master;
	/* master key rotation and key Secrets (rcr_key.c) */
	char master_path[1024];
	struct rw_keyfile_sig master_sig;
	uv_timer_t *master_timer;
	unsigned master_gen;	   /* bumped on every master key change */
	struct rw_inf *secret_inf; /* key Secrets (label RW_AGENTKEY_LABEL_SELECTOR), or NULL */
	bool ft_cleanup;
	uint64_t ft_deadline_ms;
	/* --inject-only: another operator owns the RayClusters; only their agent keys are kept */
	bool inject_only;
	/* enableIngress (rcr_ingress.c); an informer starts with the first cluster wanting one */
	enum rcr_net_mode net_mode;
	struct rw_kube_op *route_probe; /* the Route API probe in flight, or NULL */
	struct rw_inf *ingress_inf, *route_inf;
	struct rw_kmap clusters; /* key -> struct rcr_cl */
	bool closing;
	/* agent hub (the manager's, agents.h; NULL without one) and readiness gates (rcr_gate.c) */
	struct rw_agents *agents;
	struct rw_hub *hub;	/* rw_agents_hub(agents): agent keys, reports */
	struct rw_pp *gate_pp;	/* ray.io/agent-ready patches */
	uint64_t stale_log_sec; /* rate limit of the "agent silent" log lines */
	unsigned stale_log_n;
	/* metrics */
	struct rw_met_family *m_info, *m_prov, *m_provdur, *m_podops, *m_expwait, *m_cleanup;
	struct rw_met_family *m_pods, *m_report_age, *m_transitions, *m_report_gate;
	struct rw_krm_cache krm; /* RayCluster facts for the at-scrape metrics */
	struct rw_met_family *m_master;
	struct rw_met_family *m_gate, *m_gate_lat;
};

int rw_raycluster_ctl_json_name(const char *json, size_t len, char *out, size_t outlen);
/* rw_rec_request on the RayCluster controller. */
int rw_raycluster_ctl_request(struct rcr *r, struct rcr_job *j, const struct rw_kube_req *kr,
			      rw_rec_req_cb cb, const char *s1, const char *s2, void *ptr);
struct rcr_cl *rw_raycluster_ctl_state_get(struct rcr *r, const char *key, const char *uid);
void rw_raycluster_ctl_state_drop(struct rcr *r, const char *key);
int rw_raycluster_ctl_pods_collect(struct rcr *r, const char *ns, const char *name, const char *uid,
				   struct rcr_pods *ps);
void rw_raycluster_ctl_pods_fini(struct rcr_pods *ps);
bool rw_raycluster_ctl_ft_cleanup_wanted(const struct rcr *r, const struct rw_raycluster *c);
int rw_raycluster_ctl_pod_delete(struct rcr_job *j, const char *group, const char *name, bool head,
				 bool quiet);
/*
 * POST body to collection; AlreadyExists counts as success. Events Created<kind> and
 * FailedToCreate<kind>.
 */
int rw_raycluster_ctl_create(struct rcr_job *j, const char *collection, const struct rw_buf *body,
			     const char *kind);
/* Handlers for objects a RayCluster owns: any change enqueues the owner. */
struct rw_inf_handlers rw_raycluster_ctl_owned_handlers(struct rcr *r);

/* rcr_ingress.c */
/* Decide Route or Ingress (USE_INGRESS_ON_OPENSHIFT, then a probe of route.openshift.io). */
int rw_raycluster_ctl_ingress_setup(struct rcr *r);
void rw_raycluster_ctl_ingress_fini(struct rcr *r);
void rw_raycluster_ctl_st_ingress(struct rw_rec_job *rj);

/* rcr_gate.c */
void rw_raycluster_ctl_gate_metrics(struct rcr *r);
/* After the informers: the gate's patch writer and its agent hooks (no-op without a hub). */
int rw_raycluster_ctl_gate_setup(struct rcr *r);
void rw_raycluster_ctl_gate_sync(struct rcr *r, const struct rw_inf_pod *p);
void rw_raycluster_ctl_gate_forget(struct rcr *r, const struct rw_inf_pod *p);
void rw_raycluster_ctl_gate_fini(struct rcr *r);

/* rcr_key.c */
void rw_raycluster_ctl_st_key(struct rcr_job *j);
/* j->popts from the operator's options plus the cluster's drain token. */
void rw_raycluster_ctl_pod_opts(struct rcr_job *j);
int rw_raycluster_ctl_keys_setup(struct rcr *r, const char *master_path);
void rw_raycluster_ctl_keys_sig(struct rcr *r, const char *master_path);
void rw_raycluster_ctl_keys_fini(struct rcr *r);
/* The key Secret informer's decoder (a struct rw_inf_meta first; free()), for fuzzing. */
void *rw_raycluster_ctl_ksec_decode(const struct rw_json *j, int obj);

/* rcr_delete.c */
/* Steps of the deletion path (struct rcr_job records). */
void rw_raycluster_ctl_st_delete(struct rw_rec_job *rj);
void rw_raycluster_ctl_st_delete_cleanup(struct rw_rec_job *rj);

/*
 * Qualify the host of a Redis address (RAY_REDIS_ADDRESS or redisAddress:
 * "host:port", "redis://[user[:pass]@]host[:port]...", a comma list, of which
 * the first entry is rewritten) with the RayCluster's namespace, since the
 * Ray pods resolve it there and the controller runs elsewhere: a bare
 * "<host>" becomes "<host>.<ns>.svc.<domain>" and "<svc>.<ns>" becomes
 * "<svc>.<ns>.svc.<domain>". IP addresses, "localhost", names with a "svc"
 * label or a trailing dot, and other names of three or more labels are kept.
 * domain NULL or "" means cluster.local. The rest of the address (scheme,
 * userinfo, port, path, other entries) is copied unchanged into out.
 * Returns 0, -EINVAL or -ENAMETOOLONG (out too small).
 */
int rw_raycluster_ctl_redis_qualify(const char *addr, const char *ns, const char *domain, char *out,
				    size_t outlen);

#endif

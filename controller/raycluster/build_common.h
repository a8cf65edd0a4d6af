/*
 * build_common.h - what every RayCluster builder starts from: the options
 * (raywarden's agent knobs and KubeRay's operator environment), the parsed
 * RayCluster, the names KubeRay derives (utils/util.go), the predicates on
 * the spec and the spec hash. Implemented in build_common.c.
 */
#ifndef RW_BUILD_COMMON_H
#define RW_BUILD_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "doc.h"
#include "rw/buf.h"

/* The CRD a RayCluster was created for (KubeRay's CRDType). */
enum rw_raycluster_crd {
	RW_RAYCLUSTER_CRD_AUTO = 0, /* from the label ray.io/originated-from-crd (KubeRay's rule) */
	RW_RAYCLUSTER_CRD_RAYCLUSTER,
	RW_RAYCLUSTER_CRD_RAYJOB,
	RW_RAYCLUSTER_CRD_RAYSERVICE
};

/* Which readiness/liveness probes the Ray container gets. */
enum rw_raycluster_probe_mode {
	RW_RAYCLUSTER_PROBE_AGENT = 0, /* httpGet to the agent's /readyz and /livez */
	RW_RAYCLUSTER_PROBE_KUBERAY    /* KubeRay's exec (or httpGet for Ray >= 2.53) probes */
};

struct rw_raycluster_env {
	const char *name;
	const char *value;
};

struct rw_raycluster_opts {
	/* raywarden agent sidecar */
	bool agent;			      /* inject the agent container (default on) */
	const char *agent_image;	      /* default RW_RAYCLUSTER_DEFAULT_AGENT_IMAGE */
	int agent_port;			      /* 8477 */
	const char *agent_cpu_request;	      /* 10m */
	const char *agent_mem_request;	      /* 16Mi */
	const char *agent_cpu_limit;	      /* 100m */
	const char *agent_mem_limit;	      /* 64Mi */
	const char *controller_addr;	      /* RAYWARDEN_CONTROLLER; NULL/"" = standalone agent */
	const char *proxy_readiness;	      /* RAYWARDEN_PROXY_READINESS, default "auto" */
	int agent_liveness_grace_s;	      /* RAYWARDEN_LIVENESS_GRACE_S, default 60 */
	bool readiness_gate;		      /* readinessGates ray.io/agent-ready (default on) */
	enum rw_raycluster_probe_mode probes; /* default RW_RAYCLUSTER_PROBE_AGENT (needs agent) */
	int agent_readiness_period_s;	      /* 1 (default) or KubeRay's 5 */
	int drain_s; /* RayService pods: preStop drain through the agent, seconds (0 = off);
			default RW_RAYCLUSTER_DEFAULT_DRAIN_S, RAYWARDEN_RAYSERVICE_DRAIN_SECONDS */
	/* Per cluster, set by the caller for the cluster being built: the agent's /drain
	   token (rw/keyfile.h), sent by the preStop hook as "Authorization: Bearer <token>".
	   NULL or "": no preStop drain (the agent refuses /drain without it). */
	const char *drain_token;
	/* RayService workers get proxy readiness "ignore" (Ready on raylet health alone)
	   when the cluster's RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION is HeadOnly or Disabled and
	   proxy_readiness is "auto" (kuberay#4994). RAYWARDEN_HEADONLY_WORKERS_READY. */
	bool headonly_workers_ready; /* default on */
	/* KubeRay operator environment knobs */
	bool init_container_injection; /* ENABLE_INIT_CONTAINER_INJECTION (default on) */
	bool probes_injection;	       /* ENABLE_PROBES_INJECTION (default on) */
	bool head_cluster_ip_service;  /* ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE (default off) */
	const char *cluster_domain;    /* CLUSTER_DOMAIN, default cluster.local */
	bool login_shell;	       /* ENABLE_LOGIN_SHELL */
	bool deterministic_head_name;  /* ENABLE_DETERMINISTIC_HEAD_POD_NAME */
	bool random_pod_delete;	       /* ENABLE_RANDOM_POD_DELETE */
	const char *version;	       /* reported as kuberay_version and ray.io/kuberay-version */
	enum rw_raycluster_crd crd;    /* creator CRD override (AUTO = label) */
	const struct rw_raycluster_env *default_envs; /* operator defaultContainerEnvs */
	size_t n_default_envs;
	int batch_scheduler; /* enum rw_bs_kind (batchsched.h): --batch-scheduler, 0 none */
};

#define RW_RAYCLUSTER_AGENT_CONTAINER "raywarden-agent"
#define RW_RAYCLUSTER_AGENT_PORT_NAME "rw-agent"
#define RW_RAYCLUSTER_AGENT_GATE "ray.io/agent-ready"
#define RW_RAYCLUSTER_AGENT_KEY_VOLUME "raywarden-key"
#define RW_RAYCLUSTER_AGENT_KEY_DIR "/etc/raywarden/key"
/* The agent container's user and group (the distroless "nonroot" ids), and the mode of
   its key files: world-readable, because the key volume is mounted in the agent
   container only and the kubelet does not chown Secret files to runAsUser. */
#define RW_RAYCLUSTER_AGENT_UID 65532
#define RW_RAYCLUSTER_AGENT_KEY_MODE 0444
/* Written by the RayService reconciler (rs_build) on its RayClusters when serveConfigV2's
   proxy_location is HeadOnly or Disabled: no proxy is expected on workers. */
#define RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION "raywarden.io/serve-proxy-location"
/* preStop drain of RayService pods (GET /drain?seconds=N on the agent), and the
   SIGTERM window the kubelet keeps after it (its minimumGracePeriodInSeconds). */
#define RW_RAYCLUSTER_DEFAULT_DRAIN_S 5
#define RW_RAYCLUSTER_DRAIN_MAX_S 600
#define RW_RAYCLUSTER_MIN_STOP_S 2
/* Longest drain token put into a hook (a longer one gets no hook). */
#define RW_RAYCLUSTER_DRAIN_TOKEN_MAX 128
#define RW_RAYCLUSTER_DEFAULT_AGENT_IMAGE "raywarden/raywarden-agent:" RW_VERSION
/* What raywarden reports where KubeRay reports KUBERAY_VERSION ("nightly", "v1.4.0"...). */
#define RW_RAYCLUSTER_DEFAULT_VERSION "raywarden-" RW_VERSION

/* Fill defaults (agent on, agent probes, KubeRay's env defaults). */
void rw_raycluster_opts_default(struct rw_raycluster_opts *o);

/*
 * Apply KubeRay's operator environment variables read through getenv_fn
 * (ENABLE_INIT_CONTAINER_INJECTION, ENABLE_PROBES_INJECTION,
 * ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE, CLUSTER_DOMAIN, ENABLE_LOGIN_SHELL,
 * ENABLE_DETERMINISTIC_HEAD_POD_NAME, ENABLE_RANDOM_POD_DELETE) with KubeRay's
 * parsing (only "false"/"true", case-insensitive, flip a default), and
 * raywarden's RAYWARDEN_RAYSERVICE_DRAIN_SECONDS (0..RW_RAYCLUSTER_DRAIN_MAX_S; other
 * values keep the default) and RAYWARDEN_HEADONLY_WORKERS_READY (only "false"
 * turns it off). Pass getenv.
 */
void rw_raycluster_opts_from_env(struct rw_raycluster_opts *o, char *(*getenv_fn)(const char *));
/* 0, or -EINVAL with why: an agent resource quantity that does not parse, or a request above
   its limit (the API server would refuse every Ray pod). */
int rw_raycluster_opts_check(const struct rw_raycluster_opts *o, char *why, size_t n);

/*
 * The JSON patch (RFC 6902) that gives a Ray pod made by another operator
 * (KubeRay) the agent sidecar raywarden puts into its own pods, built by the
 * same code: the agent container, its key volume and, with
 * o->readiness_gate, the ray.io/agent-ready readiness gate. The pod's
 * labels ray.io/cluster and ray.io/node-type (head or worker) name its
 * cluster and role; the Ray container's probes stay as they are. Appended to
 * out; 0, -EINVAL (not a Ray pod with containers) or -ENOMEM.
 */
int rw_raycluster_agent_inject_patch(const struct rw_doc_node *pod,
				     const struct rw_raycluster_opts *o, struct rw_buf *out);

/* A parsed RayCluster. Pointers point into root. */
struct rw_raycluster {
	struct rw_doc_object obj;   /* name, namespace, uid, spec, status... */
	struct rw_doc_node *head;   /* spec.headGroupSpec or NULL */
	struct rw_doc_node *groups; /* spec.workerGroupSpecs or NULL */
	int ngroups;
};

/*
 * Parse a RayCluster document. Any JSON object is accepted (missing fields
 * read as absent); -EINVAL for non-JSON or a non-object, -ENOMEM, -EMSGSIZE.
 */
int rw_raycluster_parse(const char *json, size_t len, struct rw_raycluster **out, char *err,
			size_t errlen);
void rw_raycluster_free(struct rw_raycluster *c);

/* Worker group i (object) or NULL; its groupName ("" when absent). */
struct rw_doc_node *rw_raycluster_group(const struct rw_raycluster *c, int i);
const char *rw_raycluster_group_name(const struct rw_raycluster *c, int i);
int rw_raycluster_group_index(const struct rw_raycluster *c, const char *name);

/* ---- names (utils/util.go) ---- */

/* CheckName: keep the last 50 bytes; a leading digit or punctuation becomes 'r'. */
void rw_raycluster_check_name(const char *in, char *out, size_t outlen);
/* CheckLabel: keep the last 63 bytes; leading punctuation becomes 'r'. */
void rw_raycluster_check_label(const char *in, char *out, size_t outlen);
/* PodName: lower(prefix[:50] + "-head"/"-worker") + ("-" if generate). */
void rw_raycluster_pod_name(const char *prefix, bool head, bool generate, char *out, size_t outlen);
/* Head service name (custom headService name or CheckName(<c>-head-svc)). */
void rw_raycluster_head_svc_name(const struct rw_raycluster *c, char *out, size_t outlen);
/* <head svc>.<ns>.svc.<domain> */
void rw_raycluster_fqdn(const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
			char *out, size_t outlen);
/* The head port workers connect to: headGroupSpec.rayStartParams.port or "6379". */
const char *rw_raycluster_head_port(const struct rw_raycluster *c);
/* Secret holding the agent key for this cluster: <cluster>-raywarden-key. */
void rw_raycluster_agent_secret_name(const struct rw_raycluster *c, char *out, size_t outlen);

/* ---- predicates ---- */
bool rw_raycluster_autoscaling(const struct rw_raycluster *c);
bool rw_raycluster_autoscaling_v2(const struct rw_raycluster *c);
bool rw_raycluster_gcs_ft(const struct rw_raycluster *c);
bool rw_raycluster_suspended(const struct rw_raycluster *c); /* spec.suspend */
enum rw_raycluster_crd rw_raycluster_creator(const struct rw_raycluster *c,
					     const struct rw_raycluster_opts *o);
const char *rw_raycluster_crd_name(enum rw_raycluster_crd crd);
/* rayVersion >= 2.53.0 by k8s version.ParseGeneric rules. */
bool rw_raycluster_unified_health_check(const char *ray_version);
bool rw_raycluster_gpu_key(const char *key);

/* ---- hash ---- */

/*
 * The spec hash KubeRay computes as GenerateHashWithoutReplicasAndWorkersToDelete
 * (replicas, min/maxReplicas, workersToDelete, tolerations, schedulingGates,
 * upgradeStrategy and suspend cleared): base32hex(SHA-1(canonical JSON)).
 * raywarden hashes canonical JSON (sorted keys) instead of Go's struct-order
 * encoding, so the value is stable but not equal to KubeRay's.
 * out must hold 33 bytes.
 */
int rw_raycluster_spec_hash(const struct rw_doc_node *spec, char out[33]);

#endif

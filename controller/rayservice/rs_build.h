/*
 * rs_build.h - pure RayService logic, part 1: parsing, validation with
 * KubeRay's messages, serveConfigV2 -> JSON for the head agent, the
 * RayCluster built for a RayService, the spec hash and the upgrade decision
 * (in-place update, new pending cluster or nothing), and the RayService's
 * own `<rs>-head-svc` / `<rs>-serve-svc`. No I/O: every function maps inputs
 * to JSON text or plain values (tests/unit/test_rs_build.c, fuzz_rs.c).
 *
 * Reference: KubeRay ray-operator controllers/ray/rayservice_controller.go,
 * common/service.go, utils/validation.go and utils/util.go (see
 * docs/kuberay-compatibility.md, section RayService).
 */
#ifndef RW_RAYSERVICE_BUILD_H
#define RW_RAYSERVICE_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_build.h"
#include "doc.h"
#include "names.h"
#include "rw/buf.h"

#define RW_RAYSERVICE_MAX_NAME 47		   /* KubeRay's MaxRayServiceNameLength */
#define RW_RAYSERVICE_DEFAULT_DELETION_DELAY_S 60  /* rayClusterDeletionDelaySeconds default */
#define RW_RAYSERVICE_MAX_SERVE_JSON (900u * 1024) /* serve config JSON must fit in one reply */
#define RW_RAYSERVICE_SUFFIX_ALPHABET RW_NAME_SUFFIX_ALPHABET /* names.h, shared with RayJob */
#define RW_RAYSERVICE_INIT_TIMEOUT_ANNOTATION "ray.io/initializing-timeout"

/* A parsed RayService. Pointers point into root. */
struct rw_rayservice {
	struct rw_doc_object obj; /* name, namespace, uid, spec, status... */
	struct rw_doc_node *cfg;  /* spec.rayClusterConfig object or NULL */
};

/*
 * Parse a RayService document. Any JSON object is accepted (missing fields
 * read as absent); -EINVAL for non-JSON or a non-object, -ENOMEM, -EMSGSIZE.
 */
int rw_rayservice_parse(const char *json, size_t len, struct rw_rayservice **out, char *err,
			size_t errlen);
void rw_rayservice_free(struct rw_rayservice *rs);

/* status.activeServiceStatus.rayClusterName / pendingServiceStatus's ("" when absent). */
const char *rw_rayservice_active_name(const struct rw_rayservice *rs);
const char *rw_rayservice_pending_name(const struct rw_rayservice *rs);
/* spec.excludeHeadPodFromServeSvc */
bool rw_rayservice_exclude_head(const struct rw_rayservice *rs);
/* spec.rayClusterDeletionDelaySeconds (default 60; negative values read as 60). */
int64_t rw_rayservice_deletion_delay_s(const struct rw_rayservice *rs);
/* Is condition `type` of the current status True? */
bool rw_rayservice_cond_true(const struct rw_rayservice *rs, const char *type);
/* spec.suspend */
bool rw_rayservice_suspended(const struct rw_rayservice *rs);

/* Controller options for RayServices (KubeRay's operator environment). */
struct rw_rayservice_opts {
	const char *version; /* ray.io/kuberay-version written on clusters
				(RW_RAYCLUSTER_DEFAULT_VERSION) */
	bool zero_downtime;  /* ENABLE_ZERO_DOWNTIME != "false" (default on) */
};
void rw_rayservice_opts_default(struct rw_rayservice_opts *o);
/* ENABLE_ZERO_DOWNTIME through getenv_fn (pass getenv); only "false" (any case) turns it off. */
void rw_rayservice_opts_from_env(struct rw_rayservice_opts *o, char *(*getenv_fn)(const char *));

/* ---- validation (utils/validation.go ValidateRayServiceMetadata/Spec) ---- */

struct rw_rayservice_verr {
	const char *reason; /* InvalidRayServiceMetadata / InvalidRayServiceSpec */
	char msg[1024];
};

/*
 * Validate rs as KubeRay does and stop at the first error: name length (47)
 * and DNS-1035, the ray.io/initializing-timeout annotation, token auth with
 * Kubernetes tokens, the RayCluster spec rules of rc_validate (prefixed
 * "The RayService spec is invalid: "), headService.metadata.name, the
 * upgradeStrategy type, rayClusterDeletionDelaySeconds, the incremental
 * upgrade options, a head port named serve (or serve-*) when the head
 * container lists ports, and (raywarden: checked up front rather than at
 * the first PUT) serveConfigV2 being a YAML mapping whose JSON fits a reply.
 * Returns 0 (valid) or 1 with *out filled.
 */
int rw_rayservice_validate(const struct rw_rayservice *rs, struct rw_rayservice_verr *out);

/*
 * Go's time.ParseDuration then strconv.Atoi, as KubeRay reads the
 * initializing-timeout annotation: 0 with *ms set, or -EINVAL.
 */
int rw_rayservice_parse_timeout(const char *s, int64_t *ms);

/* ---- serve config ---- */

/* serveConfigV2 as the head agent gets it: JSON text (object members sorted) and its hash. */
struct rw_rayservice_serve_cfg {
	char *json; /* NULL when serveConfigV2 is empty or absent (nothing to deploy) */
	size_t len;
	char hash[65]; /* lowercase SHA-256 hex of json; "" without a config */
};

/*
 * Convert spec.serveConfigV2 (YAML, Kubernetes' YAML 1.1 typing, see
 * rw/yaml.h) to JSON with object members sorted by key, which is what
 * KubeRay's json.Marshal of the unmarshalled map sends, and hash the text.
 * Returns 0 (out->json may be NULL: no config), -EINVAL (not YAML or not a
 * mapping; message in err), -EMSGSIZE (JSON larger than RW_RAYSERVICE_MAX_SERVE_JSON),
 * -ENOMEM. Free with rw_rayservice_serve_cfg_fini.
 */
int rw_rayservice_serve_config(const struct rw_rayservice *rs, struct rw_rayservice_serve_cfg *out,
			       char *err, size_t errlen);
void rw_rayservice_serve_cfg_fini(struct rw_rayservice_serve_cfg *c);

/*
 * serveConfigV2's top-level proxy_location copied to out ("EveryNode",
 * "HeadOnly", "Disabled"...); "" when absent, not a string, or the config
 * does not parse (validation reports that).
 */
void rw_rayservice_proxy_location(const struct rw_rayservice *rs, char *out, size_t outlen);

/* ---- names ---- */

/* rw_name_random_suffix (names.h). */
void rw_rayservice_random_suffix(const unsigned char rnd[5], char out[6]);
/* `<rs>-<suffix>`; -EINVAL unless suffix is 5 characters of RW_RAYSERVICE_SUFFIX_ALPHABET. */
int rw_rayservice_cluster_name(const char *rs_name, const char *suffix, char *out, size_t outlen);
/* CheckName(`<rs>-head-svc`) and the serve service name (spec.serveService name or
 * CheckName(`<rs>-serve-svc`)). */
void rw_rayservice_head_svc_name(const struct rw_rayservice *rs, char *out, size_t outlen);
void rw_rayservice_serve_svc_name(const struct rw_rayservice *rs, char *out, size_t outlen);

/* ---- the RayCluster ---- */

/*
 * The RayCluster `name` for rs (constructRayClusterForRayService): labels =
 * rs labels + ray.io/originated-from-cr-name, ray.io/originated-from-crd=
 * RayService; annotations = rs annotations + the spec hash, the number of
 * worker groups and ray.io/kuberay-version, plus (raywarden only) the
 * annotation RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION when serveConfigV2's
 * proxy_location is HeadOnly or Disabled (removed otherwise); ownerReference
 * to rs (controller); spec = rayClusterConfig. Appends JSON to out.
 */
int rw_rayservice_build_cluster(const struct rw_rayservice *rs, const char *name,
				const struct rw_rayservice_opts *o, struct rw_buf *out);

/*
 * The in-place update of an existing cluster (modifyRayCluster): cur with
 * spec, labels and annotations replaced by the goal cluster's, keeping
 * cur's metadata otherwise (resourceVersion, uid...) and cur's spec.suspend.
 * With in-tree autoscaling on, each existing worker group keeps its current
 * replicas and workersToDelete (the autoscaler owns them; KubeRay overwrites
 * them, see its TODO). Appends JSON to out.
 */
int rw_rayservice_update_cluster(const struct rw_rayservice *rs, const struct rw_raycluster *cur,
				 const struct rw_rayservice_opts *o, struct rw_buf *out);

/* ---- hash and upgrade decision ---- */

/*
 * Hash of a rayClusterConfig as written in ray.io/hash-without-replicas-and-
 * workers-to-delete: rc_build's rw_raycluster_spec_hash (replicas, min/max,
 * workersToDelete, tolerations, schedulingGates, upgradeStrategy and
 * suspend cleared) over the first `ngroups` worker groups (-1: all).
 */
int rw_rayservice_cluster_hash(const struct rw_doc_node *cfg, int ngroups, char out[33]);

enum rw_rayservice_match {
	RW_RAYSERVICE_MATCH_DIFFERENT = 0, /* a real change: new cluster (or ignored) */
	RW_RAYSERVICE_MATCH_EQUAL,	   /* same hash: nothing to do */
	RW_RAYSERVICE_MATCH_APPENDED /* equal on the cluster's groups, new groups at the end */
};

/* isClusterSpecHashEqual(full) then (partial), against cluster c's annotations. */
enum rw_rayservice_match rw_rayservice_match_cluster(const struct rw_rayservice *rs,
						     const struct rw_raycluster *c);

/*
 * isZeroDowntimeUpgradeEnabled: upgradeStrategy.type NewCluster or
 * NewClusterWithIncrementalUpgrade -> on; any other type (None) -> off;
 * unset -> on unless ENABLE_ZERO_DOWNTIME is "false".
 */
bool rw_rayservice_zero_downtime(const struct rw_rayservice *rs,
				 const struct rw_rayservice_opts *o);

enum rw_rayservice_cluster_action {
	RW_RAYSERVICE_CLUSTER_NONE = 0,
	RW_RAYSERVICE_CLUSTER_CREATE_PENDING, /* pendingServiceStatus names a cluster that does not
						 exist */
	RW_RAYSERVICE_CLUSTER_UPDATE_ACTIVE,  /* in place (version changed, or groups appended) */
	RW_RAYSERVICE_CLUSTER_UPDATE_PENDING  /* in place (groups appended) */
};

/*
 * reconcileRayCluster's decision for this pass. active/pending are the
 * clusters named in the status (NULL when not found). The active cluster is
 * never updated while UpgradeInProgress is True.
 */
enum rw_rayservice_cluster_action rw_rayservice_cluster_action(const struct rw_rayservice *rs,
							       const struct rw_raycluster *active,
							       const struct rw_raycluster *pending,
							       const struct rw_rayservice_opts *o);

/*
 * shouldPrepareNewCluster: no cluster at all -> yes; the pending (else
 * active) cluster's hash equal or groups appended -> no; otherwise the
 * zero-downtime setting decides (upgradeStrategy None: the change is
 * ignored). Never while the services already point to the pending cluster.
 */
bool rw_rayservice_prepare_new_cluster(const struct rw_rayservice *rs,
				       const struct rw_raycluster *active,
				       const struct rw_raycluster *pending, bool pending_serving,
				       const struct rw_rayservice_opts *o);

/* ---- services ---- */

/*
 * `<rs>-head-svc`: the target cluster's head service as rc_build makes it
 * (headless by default, same selector pointing at the target cluster, custom
 * headService honoured, headServiceAnnotations not applied, as KubeRay),
 * renamed, labelled ray.io/originated-from-cr-name, -crd=RayService,
 * ray.io/node-type=head, ray.io/identifier=<rs>-head, owned by rs.
 */
int rw_rayservice_build_head_service(const struct rw_rayservice *rs,
				     const struct rw_raycluster *target,
				     const struct rw_raycluster_opts *o, struct rw_buf *out);

/*
 * `<rs>-serve-svc`: selector {ray.io/cluster: target, ray.io/serve: "true"},
 * only the head ports named serve or serve-* (in name order), labels
 * originated-from-* and ray.io/serve=<rs>-serve, type from
 * headGroupSpec.serviceType, never headless, owned by rs; spec.serveService
 * overrides as KubeRay (selector replaced, its serve port used when the head
 * has none, labels merged with ours winning, name/namespace/type defaulted).
 * -ENOENT (KubeRay's message in err) when there is no serve port at all.
 */
int rw_rayservice_build_serve_service(const struct rw_rayservice *rs,
				      const struct rw_raycluster *target, struct rw_buf *out,
				      char *err, size_t errlen);

#endif

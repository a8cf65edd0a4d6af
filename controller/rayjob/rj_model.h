/*
 * rj_model.h - a parsed RayJob (ray.io/v1, the CRD revision of
 * manifests/crds/ray.io_rayjobs.yaml) and the pure pieces the reconciler
 * builds from it: validation, names, the RayCluster, the submitter (a batch
 * Job in K8sJobMode, a head container in SidecarMode), the `ray job` command
 * and the HTTPMode submission. No I/O here: everything is table-tested.
 *
 * Behaviour follows KubeRay v1.5 (controllers/ray/rayjob_controller.go,
 * common/job.go, utils/validation.go); facts in docs/rayjob.md.
 */
#ifndef RW_RJ_MODEL_H
#define RW_RJ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "doc.h"
#include "rw/buf.h"
#include "rw/wire.h"

#define RW_RAYJOB_FINALIZER "ray.io/rayjob-finalizer"
/* The submitter container, in the batch Job's pod or in the head pod (SidecarMode). */
#define RW_RAYJOB_SUBMITTER_CONTAINER "ray-job-submitter"
/* KubeRay's MaxRayJobNameLength: 53 - len("-xxxxx") so <job>-<5> stays a valid label. */
#define RW_RAYJOB_MAX_NAME 47
/* spec.submitterConfig.backoffLimit when absent: three submitter attempts. */
#define RW_RAYJOB_DEFAULT_SUBMITTER_BACKOFF 2
/* The dashboard port when the head container names none "dashboard". */
#define RW_RAYJOB_DEFAULT_DASHBOARD_PORT 8265
/* What one submission (HTTPMode) may carry: it travels in one wire reply (RW_WIRE_MAX_MSG). */
#define RW_RAYJOB_MAX_SUBMISSION (768u * 1024)

enum rw_rayjob_mode {
	RW_RAYJOB_K8SJOB = 0,  /* default: a batch Job runs `ray job submit` */
	RW_RAYJOB_HTTP,	       /* the head agent POSTs to the Jobs API */
	RW_RAYJOB_INTERACTIVE, /* the user submits, then sets spec.jobId */
	RW_RAYJOB_SIDECAR,     /* a submitter container in the head pod */
	RW_RAYJOB_MODE_INVALID,
};

/* spec.deletionStrategy policies (rules style and legacy onSuccess/onFailure). */
enum rw_rayjob_policy {
	RW_RAYJOB_DELETE_NONE = 0,
	RW_RAYJOB_DELETE_WORKERS,
	RW_RAYJOB_DELETE_CLUSTER,
	RW_RAYJOB_DELETE_SELF,
	RW_RAYJOB_POLICY_INVALID,
};

/* One rule of spec.deletionStrategy.deletionRules (or a legacy policy turned into a rule). */
struct rw_rayjob_rule {
	enum rw_rayjob_policy policy;
	char job_status[16];	    /* "SUCCEEDED" | "FAILED" | "" */
	char deployment_status[16]; /* "Failed" | "" */
	int64_t ttl_s;
};

#define RW_RAYJOB_MAX_RULES 16

/* A parsed RayJob. Pointers point into obj.root. */
struct rw_rayjob {
	struct rw_doc_object obj;	  /* name, namespace, uid, generation, spec, status */
	enum rw_rayjob_mode mode;	  /* RW_RAYJOB_MODE_INVALID for an unknown submissionMode */
	const char *mode_text;		  /* spec.submissionMode as written, or NULL */
	struct rw_doc_node *cluster_spec; /* spec.rayClusterSpec (an object) or NULL */
	const char *selector_cluster;	  /* spec.clusterSelector["ray.io/cluster"] or NULL */
	struct rw_doc_node *submitter_template; /* spec.submitterPodTemplate or NULL */
	const char *entrypoint;			/* as written (trim before use) or NULL */
	const char *runtime_env_yaml;		/* or NULL */
	const char *spec_job_id;		/* spec.jobId or NULL */
	const char *managed_by;			/* spec.managedBy or NULL */
	bool suspend, shutdown_after_finishes;
	int64_t ttl_after_finished_s;	 /* 0 when absent */
	int64_t active_deadline_s;	 /* 0: none */
	int64_t pre_running_deadline_s;	 /* 0: none */
	int64_t backoff_limit;		 /* 0 when absent */
	int64_t submitter_backoff_limit; /* 2 when absent (KubeRay's default) */
	/* deletionStrategy: rules (either style, legacy turned into two rules), count. */
	struct rw_rayjob_rule rules[RW_RAYJOB_MAX_RULES];
	int nrules;
	bool has_deletion_strategy, legacy_strategy;
	/* Presence of the optional members whose zero is a value KubeRay checks. */
	bool has_active_deadline, has_pre_running_deadline, has_backoff_limit;
	bool has_submitter_config;
	bool selector_mode; /* spec.clusterSelector has at least one key (KubeRay's test) */
	/* The first spec member of the wrong JSON type, for validation to report
	   ("spec.suspend must be a boolean"); "" when every member has its type. */
	char type_error[160];
};

/*
 * Parse a RayJob. Any JSON object is accepted (missing fields read as
 * absent; wrong types read as absent and are caught by validation): 0,
 * -EINVAL for non-JSON or a non-object, -ENOMEM, -EMSGSIZE.
 */
int rw_rayjob_parse(const char *json, size_t len, struct rw_rayjob **out, char *err, size_t errlen);
void rw_rayjob_free(struct rw_rayjob *j);

/* "K8sJobMode", "HTTPMode", ... for a mode (KubeRay's spelling); "" for RW_RAYJOB_MODE_INVALID. */
const char *rw_rayjob_mode_name(enum rw_rayjob_mode m);

/* ---- validation (utils/validation.go ValidateRayJob{Metadata,Spec,Status}) ---- */

struct rw_rayjob_verr {
	char reason[40]; /* "InvalidRayJobMetadata" | "InvalidRayJobSpec" | "InvalidRayJobStatus" */
	char msg[512];
};

/*
 * Validate as KubeRay does, metadata first, then spec, then status; the
 * first failure is written to out. 0 valid, 1 invalid, -ENOMEM.
 *
 * The spec is checked against the CRD first (member types, submissionMode,
 * managedBy, deletion policy and condition values: what the API server's
 * schema refuses for KubeRay's CRD), then with KubeRay's rules and
 * messages, then with raywarden's checks of what KubeRay only finds out at
 * submission (entrypointResources is a JSON object of numbers, metadata needs
 * rayVersion >= 2.6.0, a submitterPodTemplate has a container). The
 * RayJobDeletionPolicy feature gate counts as on (KubeRay's default from
 * v1.6). Both rayClusterSpec and clusterSelector may be set, as in KubeRay:
 * the selector wins.
 */
int rw_rayjob_validate(const struct rw_rayjob *j, struct rw_rayjob_verr *out);

/* ---- names ---- */

/*
 * "<job>-<suffix>" for the generated cluster name and job id, suffix being
 * 5 characters of RW_NAME_SUFFIX_ALPHABET (names.h: rw_name_random_suffix).
 * -EINVAL for a bad suffix, -ENAMETOOLONG.
 */
int rw_rayjob_generated_name(const char *job, const char *suffix, char *out, size_t outlen);

/*
 * "<job>-head-svc", uncut (KubeRay's GenerateHeadServiceName for RayJobCRD
 * applies no CheckName since v1.4; a valid name of at most
 * RW_RAYJOB_MAX_NAME keeps it within 63). -ENAMETOOLONG when out is short.
 */
int rw_rayjob_head_svc_name(const char *job, char *out, size_t outlen);

/* ---- builders (JSON objects appended to out; 0 or a negative errno) ---- */

struct rw_raycluster;
struct rw_raycluster_opts;

/*
 * Does this pass keep the RayJob's head Service: KubeRay reconciles it in
 * every pass that starts in Running (deployment: status.jobDeploymentStatus
 * as loaded), and never for a clusterSelector RayJob, whose cluster is
 * someone else's and keeps its own head Service.
 */
bool rw_rayjob_wants_head_service(const struct rw_rayjob *j, const char *deployment);

/*
 * `<job>-head-svc` pointing at cluster c's head (BuildHeadServiceForRayJob):
 * rw_raycluster_build_owned_head_service with the RayJob as owner, so the
 * name stays the same across retries while the selector follows the
 * current cluster. -EINVAL when c has no headGroupSpec.
 */
int rw_rayjob_build_head_service(const struct rw_rayjob *j, const struct rw_raycluster *c,
				 const struct rw_raycluster_opts *o, struct rw_buf *out);

/*
 * The RayCluster of the RayJob: metadata.name = name, the RayJob's labels and
 * annotations plus ray.io/originated-from-cr-name, ray.io/originated-from-crd
 * = RayJob and ray.io/job-submission-mode, a controller ownerReference to the
 * RayJob, spec = spec.rayClusterSpec. SidecarMode also appends the submitter
 * container (rw_rayjob_sidecar_container) to the head pod, sets the head
 * pod's restartPolicy Never and annotates ray.io/disable-provisioned-head-restart.
 * -EINVAL without a rayClusterSpec (clusterSelector mode: nothing to build),
 * or when the sidecar's command cannot be built (rw_rayjob_submit_command).
 */
int rw_rayjob_build_cluster(const struct rw_rayjob *j, const char *name, const char *job_id,
			    struct rw_buf *out);

/*
 * KubeRay's submit command (common.BuildJobSubmitCommand) for address (the
 * dashboard, "host:port" without scheme) and job id, as one bash -ce script:
 * the GCS health wait, then `if ! ray job status ...; then ray job submit
 * --no-wait ... -- <entrypoint>; fi; ray job logs --follow ...`.
 * In SidecarMode address is ignored (NULL is fine): the submitter shares the
 * head's network, so it uses 127.0.0.1 and the head container's dashboard
 * port, submits once and waits for the job. The text is appended to out
 * without a terminator. -EINVAL for HTTPMode/InteractiveMode, a missing
 * address, an unconvertible runtimeEnvYAML or metadata the Ray version
 * cannot take (validation reports these first).
 */
int rw_rayjob_submit_command(const struct rw_rayjob *j, const char *address, const char *job_id,
			     struct rw_buf *out);

/*
 * The K8sJobMode submitter: batch/v1 Job named as the RayJob, KubeRay's
 * labels, a controller ownerReference, backoffLimit =
 * submitterConfig.backoffLimit (2), the pod from submitterPodTemplate or
 * the default one (container ray-job-submitter with head_image, requests
 * 500m/200Mi, limits 1/1Gi, restartPolicy Never), the command when the
 * template's container has none, and env PYTHONUNBUFFERED=1,
 * RAY_DASHBOARD_ADDRESS, RAY_JOB_SUBMISSION_ID. The pod template is labelled
 * like the Job. head_image NULL takes the rayClusterSpec's head image.
 * With token authentication (rayClusterSpec.authOptions.mode token) the
 * submitter also gets RAY_AUTH_MODE and RAY_AUTH_TOKEN from the cluster's
 * token Secret (status.rayClusterName's, unless authOptions.secretName).
 * -EINVAL as rw_rayjob_submit_command, or for a template without containers.
 */
int rw_rayjob_build_submitter(const struct rw_rayjob *j, const char *job_id,
			      const char *dashboard_url, const char *head_image,
			      struct rw_buf *out);

/*
 * The HTTPMode submission the head agent sends to POST /api/jobs/:
 * entrypoint (trimmed), submission_id, runtime_env (runtimeEnvYAML as
 * JSON), metadata, entrypoint_num_cpus/gpus, entrypoint_resources. Fills
 * out, usually &reply->submit (rw_reply_fini frees it). 0, -EINVAL (with
 * err: e.g. runtimeEnvYAML is not YAML, an empty entrypoint, a job id longer
 * than the wire allows), -EMSGSIZE (larger than RW_RAYJOB_MAX_SUBMISSION),
 * -ENOMEM. On failure out holds no allocation.
 */
int rw_rayjob_http_submission(const struct rw_rayjob *j, const char *job_id,
			      struct rw_job_submit *out, char *err, size_t errlen);

#endif

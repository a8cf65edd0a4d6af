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
};

/*
 * Parse a RayJob. Any JSON object is accepted (missing fields read as
 * absent; wrong types read as absent and are caught by validation): 0,
 * -EINVAL for non-JSON or a non-object, -ENOMEM, -EMSGSIZE.
 */
int rw_rayjob_parse(const char *json, size_t len, struct rw_rayjob **out, char *err, size_t errlen);
void rw_rayjob_free(struct rw_rayjob *j);

/* "K8sJobMode", "HTTPMode", ... for a mode (KubeRay's spelling). */
const char *rw_rayjob_mode_name(enum rw_rayjob_mode m);

/* ---- validation (utils/validation.go ValidateRayJob{Metadata,Spec,Status}) ---- */

struct rw_rayjob_verr {
	char reason[40]; /* "InvalidRayJobMetadata" | "InvalidRayJobSpec" | "InvalidRayJobStatus" */
	char msg[512];
};

/*
 * Validate as KubeRay does, metadata first, then spec, then status; the
 * first failure is written to out. 0 valid, 1 invalid, -ENOMEM.
 */
int rw_rayjob_validate(const struct rw_rayjob *j, struct rw_rayjob_verr *out);

/* ---- names ---- */

/*
 * "<job>-<suffix>" for the generated cluster name and job id, suffix being
 * 5 characters of the RayService suffix alphabet (rw_rayservice_random_suffix).
 * -EINVAL for a bad suffix, -ENAMETOOLONG.
 */
int rw_rayjob_generated_name(const char *job, const char *suffix, char *out, size_t outlen);

/* ---- builders (JSON objects appended to out; 0 or a negative errno) ---- */

/*
 * The RayCluster of the RayJob: metadata.name = name, the RayJob's labels and
 * annotations plus ray.io/originated-from-cr-name, ray.io/originated-from-crd
 * = RayJob and ray.io/job-submission-mode, a controller ownerReference to the
 * RayJob, spec = spec.rayClusterSpec. SidecarMode also appends the submitter
 * container (rw_rayjob_sidecar_container) to the head pod, sets the head
 * pod's restartPolicy Never and annotates ray.io/disable-provisioned-head-restart.
 */
int rw_rayjob_build_cluster(const struct rw_rayjob *j, const char *name, const char *job_id,
			    struct rw_buf *out);

/*
 * KubeRay's submit command (common.BuildJobSubmitCommand) for address (the
 * dashboard, "host:port" without scheme) and job id, as one bash -ce script:
 * the GCS health wait, then `if ! ray job status ...; then ray job submit
 * --no-wait ... -- <entrypoint>; fi; ray job logs --follow ...`.
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
 * RAY_DASHBOARD_ADDRESS, RAY_JOB_SUBMISSION_ID.
 */
int rw_rayjob_build_submitter(const struct rw_rayjob *j, const char *job_id,
			      const char *dashboard_url, const char *head_image,
			      struct rw_buf *out);

/*
 * The HTTPMode submission the head agent sends to POST /api/jobs/:
 * entrypoint (trimmed), submission_id, runtime_env (runtimeEnvYAML as
 * JSON), metadata, entrypoint_num_cpus/gpus, entrypoint_resources. Fills
 * out, usually &reply->submit (rw_reply_fini frees it). 0, -EINVAL (with
 * err: e.g. runtimeEnvYAML is not YAML), -ENOMEM.
 */
int rw_rayjob_http_submission(const struct rw_rayjob *j, const char *job_id,
			      struct rw_job_submit *out, char *err, size_t errlen);

#endif

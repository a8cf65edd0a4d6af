/*
 * test_rj_model.c - the parsed RayJob (every field, legacy deletion policies
 * as rules, wrong types read as absent), validation with KubeRay's reasons
 * and messages (utils/validation_test.go's TestValidateRayJobSpec,
 * TestValidateRayJobMetadata, TestValidateRayJobStatus and the deletion
 * strategy tables, as cases of this file's table), generated names, and
 * malformed RayJobs: refused with a message, never a crash.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "names.h"
#include "rj_fixture.h"

static void
t_parse(void)
{
	struct rw_rayjob *j = rj_make(NULL, 0), *bad = NULL;
	char err[128];
	CHECK_EQ_STR(j->obj.name, "rayjob-sample");
	CHECK_EQ_STR(j->obj.uid, "rj-uid-1");
	CHECK_EQ_INT(j->mode, RW_RAYJOB_K8SJOB);
	CHECK_EQ_STR(j->mode_text, "K8sJobMode");
	CHECK(j->cluster_spec && j->cluster_spec->type == RW_DOC_OBJ);
	CHECK(j->selector_cluster == NULL && !j->selector_mode);
	CHECK(j->submitter_template == NULL);
	CHECK_EQ_STR(j->entrypoint, "python /home/ray/samples/sample_code.py");
	CHECK(strncmp(j->runtime_env_yaml, "pip:", 4) == 0);
	CHECK(j->spec_job_id == NULL && j->managed_by == NULL);
	CHECK(!j->suspend && !j->shutdown_after_finishes);
	CHECK_EQ_INT(j->ttl_after_finished_s, 0);
	CHECK(!j->has_active_deadline && !j->has_pre_running_deadline && !j->has_backoff_limit);
	CHECK_EQ_INT(j->submitter_backoff_limit, RW_RAYJOB_DEFAULT_SUBMITTER_BACKOFF);
	CHECK(!j->has_deletion_strategy && j->nrules == 0);
	CHECK_EQ_STR(j->type_error, "");
	rw_rayjob_free(j);

	const char *const all[] = {"spec|submissionMode",
				   "\"HTTPMode\"",
				   "spec|jobId",
				   "\"my-id\"",
				   "spec|managedBy",
				   "\"kueue.x-k8s.io/multikueue\"",
				   "spec|suspend",
				   "true",
				   "spec|shutdownAfterJobFinishes",
				   "true",
				   "spec|ttlSecondsAfterFinished",
				   "60",
				   "spec|activeDeadlineSeconds",
				   "0",
				   "spec|preRunningDeadlineSeconds",
				   "30",
				   "spec|backoffLimit",
				   "3",
				   "spec|submitterConfig",
				   "{\"backoffLimit\":5}",
				   "spec|clusterSelector",
				   "{\"ray.io/cluster\":\"shared\"}",
				   "spec|submitterPodTemplate",
				   "{\"spec\":{}}",
				   "spec|deletionStrategy",
				   ("{\"onSuccess\":{\"policy\":\"DeleteCluster\"},\"onFailure\":{"
				    "\"policy\":\"DeleteNone\"}}")};
	j = rj_make(all, 13);
	CHECK_EQ_INT(j->mode, RW_RAYJOB_HTTP);
	CHECK_EQ_STR(j->spec_job_id, "my-id");
	CHECK_EQ_STR(j->managed_by, "kueue.x-k8s.io/multikueue");
	CHECK(j->suspend && j->shutdown_after_finishes);
	CHECK_EQ_INT(j->ttl_after_finished_s, 60);
	CHECK(j->has_active_deadline); /* 0, but written: validation refuses it */
	CHECK_EQ_INT(j->active_deadline_s, 0);
	CHECK(j->has_pre_running_deadline && j->pre_running_deadline_s == 30);
	CHECK(j->has_backoff_limit && j->backoff_limit == 3);
	CHECK(j->has_submitter_config && j->submitter_backoff_limit == 5);
	CHECK_EQ_STR(j->selector_cluster, "shared");
	CHECK(j->selector_mode);
	CHECK(j->submitter_template && j->submitter_template->type == RW_DOC_OBJ);
	/* Legacy onSuccess/onFailure: two rules at the global TTL. */
	CHECK(j->has_deletion_strategy && j->legacy_strategy);
	CHECK_EQ_INT(j->nrules, 2);
	CHECK_EQ_INT(j->rules[0].policy, RW_RAYJOB_DELETE_CLUSTER);
	CHECK_EQ_STR(j->rules[0].job_status, "SUCCEEDED");
	CHECK_EQ_INT(j->rules[0].ttl_s, 60);
	CHECK_EQ_INT(j->rules[1].policy, RW_RAYJOB_DELETE_NONE);
	CHECK_EQ_STR(j->rules[1].job_status, "FAILED");
	CHECK_EQ_STR(j->rules[1].deployment_status, "");
	CHECK_EQ_INT(j->rules[1].ttl_s, 60);
	rw_rayjob_free(j);

	const char *const rules[] = {
	    "spec|deletionStrategy",
	    "{\"deletionRules\":[{\"policy\":\"DeleteWorkers\",\"condition\":{\"jobStatus\":"
	    "\"SUCCEEDED\",\"ttlSeconds\":10}},{\"policy\":\"DeleteSelf\",\"condition\":"
	    "{\"jobDeploymentStatus\":\"Failed\"}},{\"policy\":\"Bogus\",\"condition\":{}}]}",
	    "spec|submissionMode", "\"Unknown\""};
	j = rj_make(rules, 2);
	CHECK(j->has_deletion_strategy && !j->legacy_strategy);
	CHECK_EQ_INT(j->nrules, 3);
	CHECK_EQ_INT(j->rules[0].policy, RW_RAYJOB_DELETE_WORKERS);
	CHECK_EQ_STR(j->rules[0].job_status, "SUCCEEDED");
	CHECK_EQ_INT(j->rules[0].ttl_s, 10);
	CHECK_EQ_INT(j->rules[1].policy, RW_RAYJOB_DELETE_SELF);
	CHECK_EQ_STR(j->rules[1].job_status, "");
	CHECK_EQ_STR(j->rules[1].deployment_status, "Failed");
	CHECK_EQ_INT(j->rules[1].ttl_s, 0);
	CHECK_EQ_INT(j->rules[2].policy, RW_RAYJOB_POLICY_INVALID);
	CHECK_EQ_INT(j->mode, RW_RAYJOB_MODE_INVALID);
	CHECK_EQ_STR(j->mode_text, "Unknown");
	rw_rayjob_free(j);

	/* Wrong types read as absent, and the first one read is named for validation. */
	const char *const types[] = {"spec|suspend",	    "\"yes\"", "spec|backoffLimit", "1.5",
				     "spec|rayClusterSpec", "[]",      "spec|entrypoint",   "7"};
	j = rj_make(types, 4);
	CHECK(!j->suspend && !j->has_backoff_limit && !j->cluster_spec && !j->entrypoint);
	CHECK_EQ_STR(j->type_error, "spec.rayClusterSpec must be an object");
	rw_rayjob_free(j);
	const char *const big[] = {"spec|ttlSecondsAfterFinished", "3000000000"};
	j = rj_make(big, 1);
	CHECK_EQ_INT(j->ttl_after_finished_s, 0);
	CHECK_EQ_STR(j->type_error, "spec.ttlSecondsAfterFinished must be a 32-bit integer");
	rw_rayjob_free(j);

	CHECK_EQ_INT(rw_rayjob_parse("[1]", 3, &bad, err, sizeof(err)), -EINVAL);
	CHECK_EQ_STR(err, "RayJob is not a JSON object");
	CHECK_EQ_INT(rw_rayjob_parse("{\"spec\":", 8, &bad, NULL, 0), -EINVAL);
	CHECK(bad == NULL);
	CHECK_EQ_INT(rw_rayjob_parse("{}", 2, &bad, NULL, 0), 0);
	CHECK(bad && bad->obj.spec && bad->mode == RW_RAYJOB_K8SJOB);
	rw_rayjob_free(bad);
	rw_rayjob_free(NULL);

	CHECK_EQ_STR(rw_rayjob_mode_name(RW_RAYJOB_K8SJOB), "K8sJobMode");
	CHECK_EQ_STR(rw_rayjob_mode_name(RW_RAYJOB_HTTP), "HTTPMode");
	CHECK_EQ_STR(rw_rayjob_mode_name(RW_RAYJOB_INTERACTIVE), "InteractiveMode");
	CHECK_EQ_STR(rw_rayjob_mode_name(RW_RAYJOB_SIDECAR), "SidecarMode");
	CHECK_EQ_STR(rw_rayjob_mode_name(RW_RAYJOB_MODE_INVALID), "");
}

#define SPEC "The RayJob spec is invalid: "
#define NOSPEC "spec|rayClusterSpec", "-"
#define SELECTOR "spec|clusterSelector", "{\"ray.io/cluster\":\"shared\"}"
#define SHUTDOWN "spec|shutdownAfterJobFinishes", "true"
#define AUTOSCALE "spec|rayClusterSpec|enableInTreeAutoscaling", "true"
#define RULES "spec|deletionStrategy|deletionRules"
#define RULE(p, cond) "{\"policy\":\"" p "\",\"condition\":{" cond "}}"

static void
t_validate(void)
{
	static const struct {
		const char *p[8];   /* path, value pairs (NULL-terminated) */
		const char *reason; /* NULL: valid */
		const char *msg;    /* exact, or a prefix when it ends in '*' */
	} cases[] = {
	    {{NULL}, NULL, NULL},
	    /* metadata */
	    {{"metadata|name", "\"a2345678901234567890123456789012345678901234567\""}, NULL, NULL},
	    {{"metadata|name", "\"a23456789012345678901234567890123456789012345678\""},
	     "InvalidRayJobMetadata",
	     "The RayJob metadata is invalid: RayJob name should be no more than 47 "
	     "characters"},
	    {{"metadata|name", "\"Job_1\""},
	     "InvalidRayJobMetadata",
	     "The RayJob metadata is invalid: RayJob name should be a valid DNS1035 label: [a "
	     "DNS-1035 label must consist of lower case*"},
	    {{"metadata|name", "\"1job\"", "spec|suspend", "true"},
	     "InvalidRayJobMetadata",
	     "The RayJob metadata is invalid: RayJob name should be a valid DNS1035 label*"},
	    /* the CRD's schema */
	    {{"spec|suspend", "\"yes\""},
	     "InvalidRayJobSpec",
	     SPEC "spec.suspend must be a boolean"},
	    {{"spec|backoffLimit", "1.5"},
	     "InvalidRayJobSpec",
	     SPEC "spec.backoffLimit must be a 32-bit integer"},
	    {{"spec|clusterSelector", "{\"ray.io/cluster\":1}"},
	     "InvalidRayJobSpec",
	     SPEC "spec.clusterSelector must be an object of strings"},
	    {{RULES, "[{\"policy\":\"DeleteSelf\",\"condition\":{\"ttlSeconds\":\"5\"}}]"},
	     "InvalidRayJobSpec",
	     SPEC "spec.deletionStrategy.deletionRules[0].condition.ttlSeconds must be a 32-bit "
		  "integer"},
	    {{"spec|submissionMode", "\"BatchMode\""},
	     "InvalidRayJobSpec",
	     SPEC "spec.submissionMode: Unsupported value: \"BatchMode\": supported values: "
		  "\"K8sJobMode\", \"HTTPMode\", \"InteractiveMode\", \"SidecarMode\""},
	    {{"spec|managedBy", "\"someone-else\""},
	     "InvalidRayJobSpec",
	     SPEC "the managedBy field value must be either 'ray.io/kuberay-operator' or "
		  "'kueue.x-k8s.io/multikueue'"},
	    {{"spec|managedBy", "\"kueue.x-k8s.io/multikueue\""}, NULL, NULL},
	    {{"spec|managedBy", "\"ray.io/kuberay-operator\""}, NULL, NULL},
	    {{RULES, "[" RULE("Explode", "\"jobStatus\":\"FAILED\"") "]"},
	     "InvalidRayJobSpec",
	     SPEC "spec.deletionStrategy.deletionRules[0].policy: Unsupported value: \"Explode\": "
		  "supported values: \"DeleteCluster\", \"DeleteWorkers\", \"DeleteSelf\", "
		  "\"DeleteNone\""},
	    {{RULES, "[{\"condition\":{\"jobStatus\":\"FAILED\"}}]"},
	     "InvalidRayJobSpec",
	     SPEC "spec.deletionStrategy.deletionRules[0].policy: Required value"},
	    {{RULES, "[" RULE("DeleteSelf", "\"jobStatus\":\"RUNNING\"") "]"},
	     "InvalidRayJobSpec",
	     SPEC "spec.deletionStrategy.deletionRules[0].condition.jobStatus: Unsupported value: "
		  "\"RUNNING\": supported values: \"SUCCEEDED\", \"FAILED\""},
	    {{"spec|deletionStrategy", "{\"onSuccess\":{\"policy\":\"Keep\"},\"onFailure\":{"
				       "\"policy\":\"DeleteNone\"}}"},
	     "InvalidRayJobSpec",
	     SPEC "spec.deletionStrategy.onSuccess.policy: Unsupported value: \"Keep\"*"},
	    /* suspend, TTL */
	    {{"spec|suspend", "true"},
	     "InvalidRayJobSpec",
	     SPEC "a RayJob with shutdownAfterJobFinishes set to false is not allowed to be "
		  "suspended"},
	    {{"spec|suspend", "true", SHUTDOWN}, NULL, NULL},
	    {{"spec|ttlSecondsAfterFinished", "-1"},
	     "InvalidRayJobSpec",
	     SPEC "TTLSecondsAfterFinished must be a non-negative integer"},
	    {{"spec|ttlSecondsAfterFinished", "10"},
	     "InvalidRayJobSpec",
	     SPEC "a RayJob with shutdownAfterJobFinishes set to false cannot have "
		  "TTLSecondsAfterFinished"},
	    {{"spec|ttlSecondsAfterFinished", "10", SHUTDOWN}, NULL, NULL},
	    /* deletionStrategy, legacy */
	    {{"spec|deletionStrategy", "{}"},
	     "InvalidRayJobSpec",
	     SPEC "DeletionStrategy requires either BOTH onSuccess and onFailure, OR the "
		  "deletionRules field (cannot be empty)"},
	    {{"spec|deletionStrategy", "{\"onSuccess\":{\"policy\":\"DeleteCluster\"}}"},
	     "InvalidRayJobSpec",
	     "both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must be set when "
	     "using the legacy deletion policy fields of DeletionStrategy"},
	    {{"spec|deletionStrategy",
	      "{\"onSuccess\":{},\"onFailure\":{\"policy\":\"DeleteNone\"}}"},
	     "InvalidRayJobSpec",
	     "the DeletionPolicyType field of DeletionStrategy.OnSuccess cannot be unset when "
	     "DeletionStrategy is enabled"},
	    {{"spec|deletionStrategy",
	      "{\"onSuccess\":{\"policy\":\"DeleteNone\"},\"onFailure\":{}}"},
	     "InvalidRayJobSpec",
	     "the DeletionPolicyType field of DeletionStrategy.OnFailure cannot be unset when "
	     "DeletionStrategy is enabled"},
	    {{"spec|deletionStrategy",
	      "{\"onSuccess\":{\"policy\":\"DeleteCluster\"},\"onFailure\":{\"policy\":"
	      "\"DeleteWorkers\"}}"},
	     NULL,
	     NULL},
	    {{"spec|deletionStrategy",
	      "{\"onSuccess\":{\"policy\":\"DeleteCluster\"},\"onFailure\":{\"policy\":"
	      "\"DeleteNone\"}}",
	      NOSPEC, SELECTOR},
	     "InvalidRayJobSpec",
	     "the ClusterSelector mode doesn't support DeletionStrategy=DeleteCluster on "
	     "success"},
	    {{"spec|deletionStrategy",
	      "{\"onSuccess\":{\"policy\":\"DeleteSelf\"},\"onFailure\":{\"policy\":"
	      "\"DeleteWorkers\"}}",
	      NOSPEC, SELECTOR},
	     "InvalidRayJobSpec",
	     "the ClusterSelector mode doesn't support DeletionStrategy=DeleteWorkers on "
	     "failure"},
	    {{"spec|deletionStrategy",
	      "{\"onSuccess\":{\"policy\":\"DeleteWorkers\"},\"onFailure\":{\"policy\":"
	      "\"DeleteCluster\"}}",
	      AUTOSCALE},
	     "InvalidRayJobSpec",
	     "DeletionStrategy=DeleteWorkers currently does not support RayCluster with "
	     "autoscaling enabled"},
	    {{"spec|deletionStrategy",
	      "{\"onSuccess\":{\"policy\":\"DeleteCluster\"},\"onFailure\":{\"policy\":"
	      "\"DeleteNone\"}}",
	      SHUTDOWN},
	     "InvalidRayJobSpec",
	     SPEC "shutdownAfterJobFinshes is set to 'true' while deletion policy is 'DeleteNone'"},
	    /* deletionStrategy, rules */
	    {{RULES,
	      "[" RULE(
		  "DeleteWorkers",
		  "\"jobStatus\":\"SUCCEEDED\",\"ttlSeconds\":"
		  "10") "," RULE("DeleteCluster",
				 "\"jobStatus"
				 "\":"
				 "\"SUCCEEDED"
				 "\","
				 "\"ttlSeconds"
				 "\":20") "," RULE("DeleteSelf",
						   "\"jobStatus\":\"SUCCEEDED\",\"ttlSeconds\":"
						   "20") "," RULE("DeleteCl"
								  "uster",
								  "\"jobDep"
								  "loymentS"
								  "tatus\":"
								  "\"Failed"
								  "\"") "," RULE("DeleteNone",
										 "\"jobStatus\":"
										 "\"FAILED\"") "]"},
	     NULL,
	     NULL},
	    {{RULES, "[" RULE("DeleteCluster", "\"jobStatus\":\"FAILED\"") "]", SHUTDOWN},
	     "InvalidRayJobSpec",
	     SPEC "spec.shutdownAfterJobFinishes and spec.deletionStrategy.deletionRules are "
		  "mutually exclusive"},
	    {{RULES, "[" RULE("DeleteCluster", "\"jobStatus\":\"FAILED\"") "]",
	      "spec|deletionStrategy|onSuccess", "{\"policy\":\"DeleteCluster\"}"},
	     "InvalidRayJobSpec",
	     SPEC "Cannot use both legacy onSuccess/onFailure fields and deletionRules "
		  "simultaneously"},
	    {{RULES, "[" RULE("DeleteSelf",
			      "\"jobStatus\":\"FAILED\",\"jobDeploymentStatus\":\"Failed\"") "]"},
	     "InvalidRayJobSpec",
	     "deletionRules[0]: cannot set both JobStatus and JobDeploymentStatus at the same "
	     "time"},
	    {{RULES, "[" RULE("DeleteSelf", "\"ttlSeconds\":5") "]"},
	     "InvalidRayJobSpec",
	     "deletionRules[0]: exactly one of JobStatus and JobDeploymentStatus must be set"},
	    {{RULES, "[" RULE("DeleteSelf", "\"jobStatus\":\"FAILED\",\"ttlSeconds\":-5") "]"},
	     "InvalidRayJobSpec",
	     "deletionRules[0]: TTLSeconds must be non-negative"},
	    {{RULES, "[" RULE("DeleteWorkers", "\"jobStatus\":\"FAILED\"") "]", AUTOSCALE},
	     "InvalidRayJobSpec",
	     "deletionRules[0]: DeletionPolicyType 'DeleteWorkers' not supported with "
	     "autoscaling "
	     "enabled"},
	    {{RULES,
	      "[" RULE("DeleteSelf", "\"jobStatus\":\"FAILED\"") "," RULE(
		  "DeleteCluster", "\"jobStatus\":\"FAILED\"") "]",
	      NOSPEC, SELECTOR},
	     "InvalidRayJobSpec",
	     "deletionRules[1]: DeletionPolicyType 'DeleteCluster' not supported when "
	     "ClusterSelector is set"},
	    {{RULES, "[" RULE("DeleteSelf", "\"jobStatus\":\"FAILED\"") "]", NOSPEC, SELECTOR},
	     NULL,
	     NULL},
	    {{RULES, "[" RULE("DeleteCluster", "\"jobStatus\":\"FAILED\"") "," RULE(
			 "DeleteCluster", "\"jobStatus\":\"FAILED\",\"ttlSeconds\":5") "]"},
	     "InvalidRayJobSpec",
	     "deletionRules[1]: duplicate rule for DeletionPolicyType 'DeleteCluster' and "
	     "JobStatus 'FAILED'"},
	    {{RULES, "[" RULE("DeleteSelf", "\"jobDeploymentStatus\":\"Failed\"") "," RULE(
			 "DeleteSelf", "\"jobDeploymentStatus\":\"Failed\"") "]"},
	     "InvalidRayJobSpec",
	     "deletionRules[1]: duplicate rule for DeletionPolicyType 'DeleteSelf' and "
	     "JobDeploymentStatus 'Failed'"},
	    {{RULES,
	      "[" RULE("DeleteWorkers",
		       "\"jobStatus\":\"SUCCEEDED\",\"ttlSeconds\":30") "," RULE("DeleteCluste"
										 "r",
										 "\"jobStatus\""
										 ":\"SUCCEEDED"
										 "\","
										 "\"ttlSeconds"
										 "\":10") "]"},
	     "InvalidRayJobSpec",
	     "for JobStatus 'SUCCEEDED': DeleteCluster TTL (10) must be >= DeleteWorkers TTL "
	     "(30)"},
	    /* every error of the rules at once, one per line, as errors.Join */
	    {{RULES,
	      "[" RULE("DeleteSelf", "\"ttlSeconds\":1") "," RULE(
		  "DeleteCluster",
		  "\"jobDeploymentStatus\":\"Failed\",\"ttlSeconds\":9") "," RULE("DeleteSelf",
										  "\"jobDeploym"
										  "entStatus\":"
										  "\"Failed\","
										  "\"ttlSeconds"
										  "\":3") "]"},
	     "InvalidRayJobSpec",
	     "deletionRules[0]: exactly one of JobStatus and JobDeploymentStatus must be "
	     "set\nfor "
	     "JobDeploymentStatus 'Failed': DeleteSelf TTL (3) must be >= DeleteCluster TTL "
	     "(9)"},
	    /* cluster or selector */
	    {{"spec|suspend", "true", SHUTDOWN, SELECTOR},
	     "InvalidRayJobSpec",
	     SPEC "the ClusterSelector mode doesn't support the suspend operation"},
	    {{NOSPEC},
	     "InvalidRayJobSpec",
	     SPEC "one of RayClusterSpec or ClusterSelector must be set"},
	    {{NOSPEC, "spec|clusterSelector", "{}"},
	     "InvalidRayJobSpec",
	     SPEC "one of RayClusterSpec or ClusterSelector must be set"},
	    {{NOSPEC, "spec|clusterSelector", "{\"ray.io/cluster\":\"\"}"},
	     "InvalidRayJobSpec",
	     "cluster name in ClusterSelector should not be empty"},
	    {{NOSPEC, "spec|clusterSelector", "{\"app\":\"x\"}"},
	     "InvalidRayJobSpec",
	     "cluster name in ClusterSelector should not be empty"},
	    {{NOSPEC, SELECTOR}, NULL, NULL},
	    {{SELECTOR}, NULL, NULL}, /* both: the selector wins, as in KubeRay */
	    {{NOSPEC, SELECTOR, "spec|submissionMode", "\"SidecarMode\""},
	     "InvalidRayJobSpec",
	     "ClusterSelector is not supported in SidecarMode"},
	    {{NOSPEC, SELECTOR, "spec|backoffLimit", "2"},
	     "InvalidRayJobSpec",
	     SPEC "BackoffLimit is incompatible with ClusterSelector mode"},
	    {{NOSPEC, SELECTOR, "spec|backoffLimit", "0"}, NULL, NULL},
	    /* modes */
	    {{"spec|submissionMode", "\"InteractiveMode\"", "spec|backoffLimit", "1"},
	     "InvalidRayJobSpec",
	     SPEC "BackoffLimit is incompatible with InteractiveMode"},
	    {{"spec|submissionMode", "\"InteractiveMode\"", "spec|backoffLimit", "0"}, NULL, NULL},
	    {{"spec|submissionMode", "\"SidecarMode\"", "spec|submitterPodTemplate",
	      "{\"spec\":{}}"},
	     "InvalidRayJobSpec",
	     "Currently, SidecarMode doesn't support SubmitterPodTemplate"},
	    {{"spec|submissionMode", "\"SidecarMode\"", "spec|submitterConfig", "{}"},
	     "InvalidRayJobSpec",
	     "Currently, SidecarMode doesn't support SubmitterConfig"},
	    {{"spec|submissionMode", "\"SidecarMode\"",
	      "spec|rayClusterSpec|headGroupSpec|template|spec|restartPolicy", "\"Always\""},
	     "InvalidRayJobSpec",
	     "restartPolicy for head Pod should be Never or unset when using SidecarMode"},
	    {{"spec|submissionMode", "\"SidecarMode\"",
	      "spec|rayClusterSpec|headGroupSpec|template|spec|restartPolicy", "\"Never\""},
	     NULL,
	     NULL},
	    {{"spec|submissionMode", "\"HTTPMode\""}, NULL, NULL},
	    /* rayClusterSpec */
	    {{"spec|rayClusterSpec|authOptions",
	      "{\"mode\":\"token\",\"enableK8sTokenAuth\":true}"},
	     "InvalidRayJobSpec",
	     SPEC "K8s token auth mode is currently not supported for RayJob"},
	    {{"spec|rayClusterSpec|headGroupSpec|template|spec|containers", "[]"},
	     "InvalidRayJobSpec",
	     SPEC "headGroupSpec should have at least one container"},
	    {{"spec|rayClusterSpec|workerGroupSpecs|0|minReplicas", "6"},
	     "InvalidRayJobSpec",
	     SPEC "worker group small-group has minReplicas 6 greater than maxReplicas 5"},
	    {{"spec|rayClusterSpec|upgradeStrategy", "{\"type\":\"Recreate\"}"}, NULL, NULL},
	    /* runtimeEnvYAML, deadlines, backoff */
	    {{"spec|runtimeEnvYAML", "\"pip: [a\""},
	     "InvalidRayJobSpec",
	     "failed to unmarshal RuntimeEnvYAML: pip: [a: *"},
	    {{"spec|runtimeEnvYAML", "\"- a\\n- b\\n\""},
	     "InvalidRayJobSpec",
	     "failed to unmarshal RuntimeEnvYAML: - a\n- b\n: a runtime environment must be a "
	     "YAML "
	     "mapping"},
	    {{"spec|runtimeEnvYAML", "\"# nothing\\n\""}, NULL, NULL},
	    {{"spec|activeDeadlineSeconds", "0"},
	     "InvalidRayJobSpec",
	     SPEC "activeDeadlineSeconds must be a positive integer"},
	    {{"spec|activeDeadlineSeconds", "5"}, NULL, NULL},
	    {{"spec|preRunningDeadlineSeconds", "0"},
	     "InvalidRayJobSpec",
	     SPEC "preRunningDeadlineSeconds must be a positive integer"},
	    {{"spec|preRunningDeadlineSeconds", "1"}, NULL, NULL},
	    {{"spec|backoffLimit", "-1"},
	     "InvalidRayJobSpec",
	     SPEC "backoffLimit must be a positive integer"},
	    /* what KubeRay finds out at submission */
	    {{"spec|entrypointResources", "\"{\\\"Custom_1\\\": 1, \\\"Custom_2\\\": 5.5}\""},
	     NULL,
	     NULL},
	    {{"spec|entrypointResources", "\"{\\\"Custom_1\\\": \\\"one\\\"}\""},
	     "InvalidRayJobSpec",
	     SPEC "entrypointResources must be a JSON object of resource names to numbers: the "
		  "value of Custom_1 is not a number"},
	    {{"spec|entrypointResources", "\"[1]\""},
	     "InvalidRayJobSpec",
	     SPEC "entrypointResources must be a JSON object of resource names to numbers: not a "
		  "JSON object"},
	    {{"spec|entrypointResources", "\"{\""},
	     "InvalidRayJobSpec",
	     SPEC "entrypointResources must be a JSON object of resource names to numbers: *"},
	    {{"spec|metadata", "{\"owner\":\"me\"}", "spec|rayClusterSpec|rayVersion", "\"2.5.0\""},
	     "InvalidRayJobSpec",
	     SPEC "the Ray version must be at least 2.6.0 to use the metadata field"},
	    {{"spec|metadata", "{\"owner\":\"me\"}", "spec|rayClusterSpec|rayVersion",
	      "\"latest\""},
	     "InvalidRayJobSpec",
	     SPEC "failed to parse Ray version: latest: Invalid Semantic Version"},
	    {{"spec|metadata", "{\"owner\":\"me\"}", "spec|rayClusterSpec|rayVersion", "\"v2.6\""},
	     NULL,
	     NULL},
	    {{"spec|metadata", "{\"owner\":\"me\"}", "spec|rayClusterSpec|rayVersion", "\"2.5.0\"",
	      "spec|submissionMode", "\"HTTPMode\""},
	     NULL,
	     NULL},
	    {{"spec|submitterPodTemplate", "{\"spec\":{\"containers\":[]}}"},
	     "InvalidRayJobSpec",
	     SPEC "submitterPodTemplate.spec.containers must hold at least one container"},
	    /* status */
	    {{"status", "{\"jobDeploymentStatus\":\"Waiting\"}"},
	     "InvalidRayJobStatus",
	     "The RayJob status is invalid: JobDeploymentStatus cannot be `Waiting` when "
	     "SubmissionMode is not InteractiveMode"},
	    {{"status", "{\"jobDeploymentStatus\":\"Waiting\"}", "spec|submissionMode",
	      "\"InteractiveMode\""},
	     NULL,
	     NULL},
	    {{"status", "{\"jobDeploymentStatus\":\"Waiting\"}", "spec|suspend", "true"},
	     "InvalidRayJobSpec",
	     "*"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = 0;
		while (n < 4 && cases[i].p[2 * n])
			n++;
		struct rw_rayjob *j = rj_make(cases[i].p, n);
		struct rw_rayjob_verr e;
		int rv;
		if (!j)
			continue;
		rv = rw_rayjob_validate(j, &e);
		if (rv != (cases[i].reason ? 1 : 0))
			fprintf(stderr, "  case %zu: rv %d: %s: %s\n", i, rv, e.reason, e.msg);
		CHECK_EQ_INT(rv, cases[i].reason ? 1 : 0);
		if (cases[i].reason) {
			size_t ml = strlen(cases[i].msg);
			CHECK_EQ_STR(e.reason, cases[i].reason);
			if (ml && cases[i].msg[ml - 1] == '*') {
				if (strncmp(e.msg, cases[i].msg, ml - 1) != 0) {
					fprintf(stderr, "  case %zu: %s\n", i, e.msg);
					CHECK(0);
				}
			} else {
				if (strcmp(e.msg, cases[i].msg) != 0)
					fprintf(stderr, "  case %zu\n", i);
				CHECK_EQ_STR(e.msg, cases[i].msg);
			}
		}
		rw_rayjob_free(j);
	}
}

static void
t_names(void)
{
	char out[64], sfx[RW_NAME_SUFFIX_LEN + 1];
	const unsigned char rnd[5] = {0, 26, 27, 255, 100};
	CHECK_EQ_INT(rw_rayjob_generated_name("rayjob-sample", "x7k2p", out, sizeof(out)), 0);
	CHECK_EQ_STR(out, "rayjob-sample-x7k2p");
	CHECK_EQ_INT(rw_rayjob_generated_name("rayjob-sample", "x7k2", out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(rw_rayjob_generated_name("rayjob-sample", "x7k2a", out, sizeof(out)),
		     -EINVAL); /* 'a' is not in the alphabet */
	CHECK_EQ_INT(rw_rayjob_generated_name("rayjob-sample", NULL, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(rw_rayjob_generated_name("rayjob-sample", "x7k2p", out, 19), -ENAMETOOLONG);
	CHECK_EQ_STR(out, "");
	CHECK_EQ_INT(rw_rayjob_generated_name("rayjob-sample", "x7k2p", out, 20), 0);
	rw_name_random_suffix(rnd, sfx);
	CHECK_EQ_STR(sfx, "b9bqz"); /* 0, 26, 27, 255 % 27 = 12, 100 % 27 = 19 */
	CHECK_EQ_INT(rw_rayjob_generated_name("j", sfx, out, sizeof(out)), 0);
	CHECK_EQ_STR(out, "j-b9bqz");
}

/*
 * Malformed RayJobs: each parses (or is refused with -EINVAL), each parsed
 * one but the last is invalid with a message, and no builder crashes on
 * any. The last one's head container is not an object: the RayCluster
 * rules (rc_validate) leave that to the RayCluster, so the job is valid and
 * its builders must cope.
 */
static void
t_malformed(void)
{
	static const char *const docs[] = {
	    "{}",
	    "{\"metadata\":{\"name\":5},\"spec\":[]}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"rayClusterSpec\":{\"headGroupSpec\":5}}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"clusterSelector\":[],\"deletionStrategy\":"
	    "{\"deletionRules\":[1,\"x\",{\"condition\":5}]}}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"clusterSelector\":{\"ray.io/"
	    "cluster\":\"c\"},"
	    "\"deletionStrategy\":{\"deletionRules\":{}}}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"clusterSelector\":{\"ray.io/"
	    "cluster\":\"c\"},"
	    "\"deletionStrategy\":{\"onSuccess\":null,\"onFailure\":{\"policy\":7}}}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"clusterSelector\":{\"ray.io/"
	    "cluster\":\"c\"},"
	    "\"submissionMode\":\"SidecarMode\"}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"clusterSelector\":{\"ray.io/"
	    "cluster\":\"c\"},"
	    "\"runtimeEnvYAML\":\"a: *undefined\"}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"clusterSelector\":{\"ray.io/"
	    "cluster\":\"c\"},"
	    "\"submitterPodTemplate\":{\"spec\":{\"containers\":\"x\"}}}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"rayClusterSpec\":{},\"submissionMode\":"
	    "\"SidecarMode\"}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"clusterSelector\":{\"ray.io/"
	    "cluster\":\"c\"},"
	    "\"entrypointNumCpus\":\"2\"}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"clusterSelector\":{\"ray.io/"
	    "cluster\":\"c\"}},"
	    "\"status\":{\"jobDeploymentStatus\":\"Waiting\"}}",
	    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"submissionMode\":\"SidecarMode\","
	    "\"rayClusterSpec\":{\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[7]}}}}}"
	    "}",
	};
	const size_t ninvalid = sizeof(docs) / sizeof(docs[0]) - 1;
	static const char *const refused[] = {"", "[]", "null", "\"x\"", "{\"a\":", "{} {}"};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct rw_rayjob *j = NULL;
		struct rw_rayjob_verr e;
		struct rw_job_submit s;
		struct rw_buf b;
		char err[256];
		CHECK_EQ_INT(rw_rayjob_parse(docs[i], strlen(docs[i]), &j, err, sizeof(err)), 0);
		if (!j)
			continue;
		if (i < ninvalid) {
			if (rw_rayjob_validate(j, &e) != 1)
				fprintf(stderr, "  malformed %zu passed validation\n", i);
			CHECK_EQ_INT(rw_rayjob_validate(j, &e), 1);
			CHECK(e.reason[0] != '\0' && e.msg[0] != '\0');
		} else {
			CHECK_EQ_INT(rw_rayjob_validate(j, &e), 0);
		}
		rw_buf_init(&b, 1 << 22);
		(void)rw_rayjob_build_cluster(j, "j-bbbbb", "j-id", &b);
		rw_buf_reset(&b);
		(void)rw_rayjob_build_submitter(j, "j-id", "svc:8265", NULL, &b);
		rw_buf_reset(&b);
		(void)rw_rayjob_submit_command(j, "svc:8265", "j-id", &b);
		rw_buf_fini(&b);
		if (rw_rayjob_http_submission(j, "j-id", &s, err, sizeof(err)) == 0) {
			free(s.entrypoint);
			free(s.runtime_env_json);
			free(s.metadata_json);
			free(s.resources_json);
		}
		rw_rayjob_free(j);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct rw_rayjob *j = NULL;
		char err[128] = "";
		CHECK_EQ_INT(rw_rayjob_parse(refused[i], strlen(refused[i]), &j, err, sizeof(err)),
			     -EINVAL);
		CHECK(j == NULL && err[0] != '\0');
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"parse", t_parse}, {"validate", t_validate},
	    {"names", t_names}, {"malformed", t_malformed},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

#!/usr/bin/env python3
"""Generate raywarden's ray.io/v1 CustomResourceDefinitions (manifests/crds/*.yaml).

    python3 manifests/hack/gen_crds.py           write manifests/crds/ray.io_{rayclusters,rayjobs,rayservices}.yaml
    python3 manifests/hack/gen_crds.py --check   exit 1 if a committed file differs from what this script writes

Why a generator: the RayCluster spec appears three times (RayCluster.spec, RayJob.spec.rayClusterSpec,
RayService.spec.rayClusterConfig) and must be identical in all three. Python 3 standard library only.

Schema policy (see docs/install.md, "The CRDs"):
- structural (apiextensions.k8s.io/v1): every node has a type, except int-or-string quantities and
  nodes marked x-kubernetes-preserve-unknown-fields;
- every spec field of KubeRay's ray.io/v1 API is declared, so a misspelt field is refused exactly as
  with KubeRay's CRDs (kubectl sends fieldValidation=Strict);
- the fields raywarden reads are typed, with KubeRay's defaults, enums and CEL rules;
- pod templates, Service templates and other Kubernetes types raywarden passes through untouched are
  `type: object` + `x-kubernetes-preserve-unknown-fields: true`, so the API server keeps them verbatim and
  the kubelet (not this schema) validates them;
- only v1 (served, storage); v1alpha1 is not served.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_openapi  # noqa: E402

GROUP = "ray.io"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(os.path.dirname(HERE), "crds")
VERSION = "0.1.0"

# ---- schema building blocks --------------------------------------------------------------------


def _d(node, desc):
    if desc:
        node["description"] = desc
    return node


def string(desc=None, enum=None, default=None, fmt=None):
    n = {"type": "string"}
    if fmt:
        n["format"] = fmt
    if enum:
        n["enum"] = list(enum)
    if default is not None:
        n["default"] = default
    return _d(n, desc)


def boolean(desc=None):
    return _d({"type": "boolean"}, desc)


def number(desc=None):
    return _d({"type": "number"}, desc)


def int32(desc=None, default=None, minimum=None):
    n = {"type": "integer", "format": "int32"}
    if default is not None:
        n["default"] = default
    if minimum is not None:
        n["minimum"] = minimum
    return _d(n, desc)


def int64(desc=None, minimum=None):
    n = {"type": "integer", "format": "int64"}
    if minimum is not None:
        n["minimum"] = minimum
    return _d(n, desc)


def date_time(desc=None, nullable=False):
    n = {"type": "string", "format": "date-time"}
    if nullable:
        n["nullable"] = True
    return _d(n, desc)


def quantity(desc=None):
    # A resource.Quantity: an integer or a string such as "500m" or "1Gi" (controller-gen's schema).
    return _d(k8s_openapi.quantity_schema(), desc)


def string_map(desc=None):
    return _d({"type": "object", "additionalProperties": {"type": "string"}}, desc)


def string_list(desc=None):
    return _d({"type": "array", "items": {"type": "string"}}, desc)


def obj(props, desc=None, required=None, rules=None):
    n = {"type": "object", "properties": props}
    if required:
        n["required"] = list(required)
    if rules:
        n["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]
    return _d(n, desc)


# ---- Kubernetes types (generated from the pinned Kubernetes OpenAPI; see k8s_openapi.py) ------------------

_K8S = []


def k8s(type_name, desc=None):
    """A Kubernetes type as controller-gen renders it, from the vendored OpenAPI extract
    (manifests/hack/k8s-openapi-v1.34.4.json), e.g. k8s("core.v1.PodTemplateSpec")."""
    if not _K8S:
        _K8S.append(k8s_openapi.Converter.vendored(descriptions="short"))
    full = type_name if type_name.startswith("io.k8s.") else "io.k8s.api." + type_name
    return _K8S[0].type(full, desc)


def k8s_list(type_name, desc, **extra):
    item = k8s(type_name)
    item.pop("description", None)
    n = {"type": "array", "items": item}
    n.update(extra)
    return _d(n, desc)


def pod_template(desc):
    return k8s("core.v1.PodTemplateSpec", desc + " A core/v1 PodTemplateSpec.")


def managed_by():
    n = string("Which controller manages this object: ray.io/kuberay-operator (raywarden answers to this "
               "value) or kueue.x-k8s.io/multikueue. Immutable.")
    n["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf", "message": "the managedBy field is immutable"},
        {"rule": "self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']",
         "message": "the managedBy field value must be either 'ray.io/kuberay-operator' or "
                    "'kueue.x-k8s.io/multikueue'"},
    ]
    return n


def env_source(desc):
    return obj({
        "value": string("Literal value."),
        "valueFrom": k8s("core.v1.EnvVarSource", "Where to read the value from (secretKeyRef, configMapKeyRef, ...)."),
    }, desc)


def conditions(desc):
    item = obj({
        "type": string("Condition type.", None),
        "status": string("True, False or Unknown.", enum=("True", "False", "Unknown")),
        "reason": string("Machine-readable reason in CamelCase."),
        "message": string("Human-readable details."),
        "lastTransitionTime": date_time("When status last changed."),
        "observedGeneration": int64("The .metadata.generation the condition was computed for.", minimum=0),
    }, required=("lastTransitionTime", "message", "reason", "status", "type"))
    p = item["properties"]
    p["type"]["maxLength"] = 316
    p["type"]["pattern"] = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                            r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")
    p["reason"]["minLength"] = 1
    p["reason"]["maxLength"] = 1024
    p["reason"]["pattern"] = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    p["message"]["maxLength"] = 32768
    return {"type": "array", "items": item, "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"], "description": desc}


# ---- RayCluster ------------------------------------------------------------------------------------


def head_group_spec():
    return obj({
        "template": pod_template("Pod template of the head pod; containers[0] is the Ray container."),
        "rayStartParams": string_map("Options of `ray start --head`, without the leading dashes "
                                     "(e.g. dashboard-host: 0.0.0.0). Values are strings."),
        "serviceType": string("Type of the head Service (ClusterIP, NodePort, LoadBalancer). Empty or "
                              "ClusterIP gives a headless Service, as KubeRay does."),
        "headService": k8s("core.v1.Service", "A core/v1 Service used as the template of the head Service."),
        "enableIngress": boolean("Create an Ingress for the head's dashboard."),
        "ingressOptions": obj({
            "host": string("Host of the Ingress rule."),
            "path": string("Path of the Ingress rule."),
            "pathType": string("Path type of the Ingress rule.", enum=("Exact", "Prefix", "ImplementationSpecific")),
            "tls": k8s_list("networking.v1.IngressTLS", "TLS settings of the Ingress."),
        }, "Ingress options."),
        "labels": string_map("Ray node labels, passed to `ray start --labels`."),
        "resources": string_map("Ray resources overriding those derived from the container (num-cpus, "
                                "num-gpus, memory, custom resources)."),
    }, "The head group: exactly one head pod.", required=("template",))


def worker_group_spec():
    return obj({
        "groupName": string("Name of the group; unique within the cluster; becomes the ray.io/group label."),
        "replicas": int32("Desired number of replicas (multi-host units), clamped to "
                          "[minReplicas, maxReplicas].", default=0),
        "minReplicas": int32("Lower bound of replicas.", default=0),
        "maxReplicas": int32("Upper bound of replicas.", default=2147483647),
        "numOfHosts": int32("Pods per replica (multi-host groups, e.g. TPU slices).", default=1),
        "priority": int32("Scheduling priority of the group among worker groups.", default=0),
        "idleTimeoutSeconds": int32("Autoscaler v2: seconds a worker may stay idle before removal."),
        "suspend": boolean("Delete all pods of this group and create none until false."),
        "rayStartParams": string_map("Options of `ray start` for the workers. Values are strings."),
        "labels": string_map("Ray node labels, passed to `ray start --labels`."),
        "resources": string_map("Ray resources overriding those derived from the container."),
        "scaleStrategy": obj({
            "workersToDelete": string_list("Names of worker pods to delete (set by the autoscaler)."),
        }, "Scale-down instructions."),
        "template": pod_template("Pod template of the workers; containers[0] is the Ray container."),
    }, required=("groupName", "template"))


def autoscaler_options():
    return obj({
        "image": string("Autoscaler image (default: the head's Ray image)."),
        "imagePullPolicy": string("Image pull policy of the autoscaler container."),
        "command": string_list("Command of the autoscaler container."),
        "args": string_list("Arguments of the autoscaler container."),
        "env": k8s_list("core.v1.EnvVar", "Extra environment variables of the autoscaler container."),
        "envFrom": k8s_list("core.v1.EnvFromSource", "Environment sources of the autoscaler container."),
        "volumeMounts": k8s_list("core.v1.VolumeMount", "Volume mounts of the autoscaler container."),
        "resources": k8s("core.v1.ResourceRequirements", "Resources of the autoscaler container "
                                                         "(default 500m/512Mi)."),
        "securityContext": k8s("core.v1.SecurityContext", "Security context of the autoscaler container."),
        "idleTimeoutSeconds": int32("Seconds a worker may stay idle before the autoscaler removes it."),
        "upscalingMode": string("How fast the autoscaler scales up.",
                                enum=("Default", "Aggressive", "Conservative")),
        "version": string("Autoscaler generation: v1 or v2.", enum=("v1", "v2")),
    }, "In-tree autoscaler sidecar options.")


def gcs_ft_options():
    backend = string("GCS storage backend. Immutable.", enum=("redis", "rocksdb"))
    backend["x-kubernetes-validations"] = [{"rule": "self == oldSelf",
                                            "message": "gcsFaultToleranceOptions.backend is immutable"}]
    return obj({
        "redisAddress": string("Redis address (host:port or redis:// URI)."),
        "redisPassword": env_source("Redis password."),
        "redisUsername": env_source("Redis user name."),
        "externalStorageNamespace": string("Key namespace in Redis (default: the RayCluster UID)."),
        "backend": backend,
        "storage": obj({
            "accessModes": string_list("PersistentVolumeClaim access modes."),
            "claimName": string("Existing PersistentVolumeClaim to use."),
            "deletionPolicy": string("What happens to the claim when the cluster is deleted.",
                                     enum=("DeleteWithCluster", "Retain")),
            "size": quantity("Size of the claim."),
            "storageClassName": string("Storage class of the claim."),
            "subPath": string("Sub-path inside the volume."),
        }, "Embedded (rocksdb) storage options."),
    }, "GCS fault tolerance: GCS state kept in Redis so the head can be replaced.")


def network_policy():
    def rules(extra=None, required=None, desc=None):
        props = {
            "ingressRules": k8s_list("networking.v1.NetworkPolicyIngressRule", "Allowed ingress."),
            "egressRules": k8s_list("networking.v1.NetworkPolicyEgressRule", "Allowed egress."),
        }
        props.update(extra or {})
        return obj(props, desc, required=required)
    groups = _d({"type": "array", "items": rules({"groupName": string("Worker group name.")},
                                                 required=("groupName",)),
                 "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["groupName"]},
                "Rules per worker group.")
    return obj({
        "mode": string("What is denied by default.", enum=("DenyAll", "DenyAllIngress", "DenyAllEgress"),
                       default="DenyAll"),
        "head": rules(desc="Rules of the head pod."),
        "worker": rules(desc="Rules of all worker pods."),
        "workerGroups": groups,
    }, "NetworkPolicies created for the cluster.")


def raycluster_spec(desc):
    return obj({
        "rayVersion": string("Ray version of the images (e.g. 2.52.0); selects probe behaviour."),
        "enableInTreeAutoscaling": boolean("Run the Ray autoscaler as a sidecar of the head pod."),
        "autoscalerOptions": autoscaler_options(),
        "suspend": boolean("Delete all pods and create none until false."),
        "managedBy": managed_by(),
        "headServiceAnnotations": string_map("Annotations of the head Service."),
        "headGroupSpec": head_group_spec(),
        "workerGroupSpecs": _d({"type": "array", "items": worker_group_spec()}, "Worker groups."),
        "gcsFaultToleranceOptions": gcs_ft_options(),
        "upgradeStrategy": obj({
            "type": string("Recreate: replace all pods when the spec changes; None: do not.",
                           enum=("Recreate", "None")),
        }, "What to do with running pods when the spec changes."),
        "authOptions": obj({
            "mode": string("Ray token authentication.", enum=("disabled", "token")),
            "secretName": string("Secret holding the token (key auth_token)."),
            "enableK8sTokenAuth": boolean("Accept Kubernetes service-account tokens."),
        }, "Ray authentication options."),
        "tlsOptions": obj({"enabled": boolean("Enable TLS between Ray components.")}, "Ray TLS options."),
        "networkPolicy": network_policy(),
        "historyServerOptions": obj({
            "collectorOptions": obj({
                "env": k8s_list("core.v1.EnvVar", "Environment of the collector container."),
                "image": string("Image of the collector container."),
                "imagePullPolicy": string("Image pull policy of the collector container."),
                "resources": k8s("core.v1.ResourceRequirements", "Resources of the collector container."),
            }, "The log collector sidecar."),
        }, "Ray history server collector options."),
    }, desc, required=("headGroupSpec",))


def raycluster_status(desc):
    return obj({
        "state": string("ready or suspended (sticky once ready)."),
        "reason": string("Why the cluster is in its state."),
        "readyWorkerReplicas": int32("Worker pods running and ready."),
        "availableWorkerReplicas": int32("Worker pods running."),
        "desiredWorkerReplicas": int32("Worker pods wanted: sum of clamped replicas x numOfHosts."),
        "minWorkerReplicas": int32("Sum of minReplicas x numOfHosts."),
        "maxWorkerReplicas": int32("Sum of maxReplicas x numOfHosts."),
        "desiredCPU": quantity("CPUs requested by all desired pods."),
        "desiredMemory": quantity("Memory requested by all desired pods."),
        "desiredGPU": quantity("GPUs requested by all desired pods."),
        "desiredTPU": quantity("TPUs requested by all desired pods."),
        "endpoints": string_map("Head Service ports by name (node port, else target port)."),
        "head": obj({
            "podIP": string("IP of the head pod."),
            "podName": string("Name of the head pod."),
            "serviceIP": string("Cluster IP of the head Service (the pod IP when headless)."),
            "serviceName": string("Name of the head Service."),
        }, "Head pod and Service."),
        "conditions": conditions("HeadPodReady, RayClusterProvisioned, ReplicaFailure, "
                                 "RayClusterSuspending, RayClusterSuspended."),
        "lastUpdateTime": date_time("Last status update.", nullable=True),
        "stateTransitionTimes": _d({"type": "object",
                                    "additionalProperties": {"type": "string", "format": "date-time"}},
                                   "When each state was entered."),
        "observedGeneration": int64("The .metadata.generation this status reflects."),
    }, desc)


RAYCLUSTER_COLUMNS = [
    {"name": "desired workers", "type": "integer", "jsonPath": ".status.desiredWorkerReplicas"},
    {"name": "available workers", "type": "integer", "jsonPath": ".status.availableWorkerReplicas"},
    {"name": "cpus", "type": "string", "jsonPath": ".status.desiredCPU"},
    {"name": "memory", "type": "string", "jsonPath": ".status.desiredMemory"},
    {"name": "gpus", "type": "string", "jsonPath": ".status.desiredGPU"},
    {"name": "tpus", "type": "string", "jsonPath": ".status.desiredTPU", "priority": 1},
    {"name": "status", "type": "string", "jsonPath": ".status.state"},
    {"name": "age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "head pod IP", "type": "string", "jsonPath": ".status.head.podIP", "priority": 1},
    {"name": "head service IP", "type": "string", "jsonPath": ".status.head.serviceIP", "priority": 1},
]

# ---- RayJob ------------------------------------------------------------------------------------------

DELETION_POLICIES = ("DeleteCluster", "DeleteWorkers", "DeleteSelf", "DeleteNone")


def deletion_strategy():
    rule = obj({
        "policy": string("What to delete.", enum=DELETION_POLICIES),
        "condition": obj({
            "jobStatus": string("Ray job status that triggers the rule.", enum=("SUCCEEDED", "FAILED")),
            "jobDeploymentStatus": string("Deployment status that triggers the rule.", enum=("Failed",)),
            "ttlSeconds": int32("Seconds after the condition holds before acting.", default=0, minimum=0),
        }, "When the rule applies: exactly one of jobStatus and jobDeploymentStatus.", rules=[
            ("!(has(self.jobStatus) && has(self.jobDeploymentStatus))",
             "JobStatus and JobDeploymentStatus cannot be used together within the same deletion condition."),
            ("has(self.jobStatus) || has(self.jobDeploymentStatus)",
             "the deletion condition requires either the JobStatus or the JobDeploymentStatus field."),
        ]),
    }, required=("condition", "policy"))
    rules = _d({"type": "array", "items": rule, "minItems": 1, "x-kubernetes-list-type": "atomic"},
               "Rules evaluated after the job ends.")
    legacy = lambda d: obj({"policy": string("What to delete.", enum=DELETION_POLICIES)}, d)  # noqa: E731
    return obj({
        "onSuccess": legacy("Legacy: policy when the job succeeded."),
        "onFailure": legacy("Legacy: policy when the job failed."),
        "deletionRules": rules,
    }, "What to delete once the job has finished: onSuccess+onFailure, or deletionRules.", rules=[
        ("!((has(self.onSuccess) || has(self.onFailure)) && has(self.deletionRules))",
         "legacy policies (onSuccess/onFailure) and deletionRules cannot be used together within the same "
         "deletionStrategy"),
        ("((has(self.onSuccess) && has(self.onFailure)) || has(self.deletionRules))",
         "deletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field "
         "(cannot be empty)"),
    ])


def rayjob_spec():
    return obj({
        "entrypoint": string("Command run by `ray job submit` (e.g. python /home/ray/samples/job.py)."),
        "entrypointNumCpus": number("CPUs reserved for the entrypoint."),
        "entrypointNumGpus": number("GPUs reserved for the entrypoint."),
        "entrypointResources": string("Custom resources for the entrypoint, as a JSON object string."),
        "runtimeEnvYAML": string("Ray runtime environment, as a YAML string."),
        "metadata": string_map("Job metadata passed to Ray."),
        "jobId": string("Submission id (default: <name>-<random>)."),
        "submissionMode": string("K8sJobMode (default), HTTPMode, InteractiveMode or SidecarMode.",
                                 default="K8sJobMode"),
        "submitterPodTemplate": pod_template("Pod template of the submitter Job (K8sJobMode)."),
        "submitterConfig": obj({"backoffLimit": int32("backoffLimit of the submitter Job (default 2).")},
                               "Submitter Job options."),
        "rayClusterSpec": raycluster_spec("RayCluster created for this job (unless clusterSelector is set)."),
        "clusterSelector": string_map("Use an existing RayCluster instead: ray.io/cluster: <name>."),
        "shutdownAfterJobFinishes": boolean("Delete the RayCluster when the job ends."),
        "ttlSecondsAfterFinished": int32("Seconds to wait after the end before cleanup.", default=0),
        "activeDeadlineSeconds": int32("Fail the job after this many seconds from start."),
        "preRunningDeadlineSeconds": int32("Fail the job if it is not running this many seconds after start.",
                                           minimum=1),
        "backoffLimit": int32("Retries of the whole job (new cluster each time).", default=0),
        "suspend": boolean("Suspend the job (requires shutdownAfterJobFinishes)."),
        "deletionStrategy": deletion_strategy(),
        "managedBy": managed_by(),
    }, "Desired state of the RayJob.")


def rayjob_status():
    return obj({
        "jobStatus": string("Ray job status: PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED."),
        "jobDeploymentStatus": string("Initializing, Running, Complete, Failed, ValidationFailed, "
                                      "Suspending, Suspended, Retrying or Waiting."),
        "reason": string("Why the job failed."),
        "message": string("Details."),
        "jobId": string("Submission id used."),
        "rayClusterName": string("Name of the RayCluster running the job."),
        "dashboardURL": string("Dashboard address of that cluster."),
        "startTime": date_time("When the RayJob started."),
        "endTime": date_time("When it reached Complete or Failed."),
        "jobStatusCheckFailureStartTime": date_time("Since when reading the job status has failed."),
        "rayJobInfo": obj({"startTime": date_time("Ray job start."), "endTime": date_time("Ray job end.")},
                          "Times reported by Ray."),
        "rayClusterStatus": raycluster_status("Status of that RayCluster."),
        "succeeded": int32("Successful attempts.", default=0),
        "failed": int32("Failed attempts.", default=0),
        "observedGeneration": int64("The .metadata.generation this status reflects."),
        # Not in KubeRay's RayJob status: raywarden's own conditions, a standard metav1.Condition list.
        "conditions": conditions("Submitted, Running, Complete, Failed, Suspended (raywarden; not in KubeRay)."),
    }, "Observed state of the RayJob.")


RAYJOB_COLUMNS = [
    {"name": "job status", "type": "string", "jsonPath": ".status.jobStatus"},
    {"name": "deployment status", "type": "string", "jsonPath": ".status.jobDeploymentStatus"},
    {"name": "ray cluster name", "type": "string", "jsonPath": ".status.rayClusterName"},
    {"name": "start time", "type": "string", "jsonPath": ".status.startTime"},
    {"name": "end time", "type": "string", "jsonPath": ".status.endTime"},
    {"name": "age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# ---- RayService ----------------------------------------------------------------------------------------


def serve_service_status(desc):
    app = obj({
        "status": string("Application status (RUNNING, DEPLOYING, UNHEALTHY, ...)."),
        "message": string("Details."),
        "serveDeploymentStatuses": _d({"type": "object", "additionalProperties": obj({
            "status": string("Deployment status (HEALTHY, UPDATING, UNHEALTHY, ...)."),
            "message": string("Details."),
        })}, "Deployments by name."),
    })
    return obj({
        "rayClusterName": string("Name of the RayCluster."),
        "applicationStatuses": _d({"type": "object", "additionalProperties": app},
                                  "Serve applications by name."),
        "rayClusterStatus": raycluster_status("Status of that RayCluster."),
        "targetCapacity": int32("Serve target capacity (incremental upgrade)."),
        "trafficRoutedPercent": int32("Share of traffic routed to this cluster (incremental upgrade)."),
        "lastTrafficMigratedTime": date_time("Last traffic step (incremental upgrade)."),
    }, desc)


def rayservice_spec():
    return obj({
        "serveConfigV2": string("Ray Serve config (YAML string), deployed to the cluster's head."),
        "rayClusterConfig": raycluster_spec("Spec of the RayCluster(s) serving the applications."),
        "serveService": k8s("core.v1.Service", "A core/v1 Service used as the template of the serve Service."),
        "excludeHeadPodFromServeSvc": boolean("Never route serve traffic to the head pod."),
        "upgradeStrategy": obj({
            "type": string("NewCluster, NewClusterWithIncrementalUpgrade or None."),
            "clusterUpgradeOptions": obj({
                "gatewayClassName": string("Gateway class for traffic splitting."),
                "intervalSeconds": int32("Seconds between traffic steps."),
                "maxSurgePercent": int32("Extra capacity allowed during the upgrade.", default=100),
                "stepSizePercent": int32("Traffic moved per step."),
            }, "Incremental upgrade options.",
                required=("gatewayClassName", "intervalSeconds", "stepSizePercent")),
        }, "How a changed rayClusterConfig is rolled out."),
        "rayClusterDeletionDelaySeconds": int32("Seconds before an unused RayCluster is deleted (default 60).",
                                                minimum=0),
        "deploymentUnhealthySecondThreshold": int32("Deprecated; ignored."),
        "serviceUnhealthySecondThreshold": int32("Deprecated; ignored."),
        "suspend": boolean("Delete the clusters and Services until false."),
        "managedBy": managed_by(),
    }, "Desired state of the RayService.", required=("rayClusterConfig",))


def rayservice_status():
    return obj({
        "serviceStatus": string("Running when the Ready condition is True, else empty."),
        "numServeEndpoints": int32("Ready endpoints of the serve Service."),
        "activeServiceStatus": serve_service_status("The RayCluster serving traffic."),
        "pendingServiceStatus": serve_service_status("The RayCluster being prepared by an upgrade."),
        "conditions": conditions("Ready, UpgradeInProgress, RollbackInProgress, Suspending, Suspended."),
        "lastUpdateTime": date_time("Last status update."),
        "observedGeneration": int64("The .metadata.generation this status reflects."),
    }, "Observed state of the RayService.")


RAYSERVICE_COLUMNS = [
    {"name": "service status", "type": "string", "jsonPath": ".status.serviceStatus"},
    {"name": "num serve endpoints", "type": "string", "jsonPath": ".status.numServeEndpoints"},
]

# ---- CRDs ------------------------------------------------------------------------------------------------


def crd(kind, plural, desc, spec, status, columns):
    root = obj({
        "apiVersion": string("Versioned schema of this object."),
        "kind": string("REST resource this object represents."),
        "metadata": {"type": "object"},
        "spec": spec,
        "status": status,
    }, desc)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "%s.%s" % (plural, GROUP),
            "labels": {"app.kubernetes.io/name": "raywarden", "app.kubernetes.io/part-of": "raywarden",
                       "app.kubernetes.io/version": VERSION},
        },
        "spec": {
            "group": GROUP,
            "names": {"kind": kind, "listKind": kind + "List", "plural": plural, "singular": kind.lower(),
                      "categories": ["all"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": root},
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
            }],
        },
    }


def all_crds():
    return [
        ("ray.io_rayclusters.yaml",
         crd("RayCluster", "rayclusters", "A Ray cluster: one head pod and groups of worker pods.",
             raycluster_spec("Desired state of the RayCluster."),
             raycluster_status("Observed state of the RayCluster."), RAYCLUSTER_COLUMNS)),
        ("ray.io_rayjobs.yaml",
         crd("RayJob", "rayjobs", "A Ray job and, unless it uses an existing one, the RayCluster it runs on.",
             rayjob_spec(), rayjob_status(), RAYJOB_COLUMNS)),
        ("ray.io_rayservices.yaml",
         crd("RayService", "rayservices", "Ray Serve applications on a RayCluster, upgraded without downtime.",
             rayservice_spec(), rayservice_status(), RAYSERVICE_COLUMNS)),
    ]


# ---- a small YAML writer (block style, deterministic) -----------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z/][A-Za-z0-9_./-]*( [A-Za-z0-9_./()-]+)*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if _PLAIN.match(v) and v.lower() not in _RESERVED:
        return v
    return json.dumps(v, ensure_ascii=False)


def _key_order(d):
    # description and type first (easier to read); otherwise the order the document was built in.
    first = [k for k in ("description", "type") if k in d]
    return first + [k for k in d if k not in first]


def _emit(v, indent, out, sort=False):
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return " {}"
        keys = sorted(v) if sort else _key_order(v)
        for k in keys:
            child = v[k]
            line = pad + _scalar(k) + ":"
            if isinstance(child, (dict, list)) and child:
                out.append(line)
                _emit(child, indent + 1 if isinstance(child, dict) else indent, out, sort=(k == "properties"))
            else:
                out.append(line + (" {}" if child == {} else " []" if child == [] else " " + _scalar(child)))
        return None
    if isinstance(v, list):
        for item in v:
            if isinstance(item, dict) and item:
                sub = []
                _emit(item, indent + 1, sub)
                first = sub[0]
                sub[0] = pad + "- " + first[len(pad) + 2:]
                out.extend(sub)
            elif isinstance(item, list) and item:
                raise ValueError("nested lists are not used in CRDs")
            else:
                out.append(pad + "- " + _scalar(item))
        return None
    raise ValueError("unexpected value %r" % (v,))


def to_yaml(doc):
    out = []
    _emit(doc, 0, out)
    return "\n".join(out) + "\n"


HEADER = ("# Generated by manifests/hack/gen_crds.py; edit that script, then run it (do not edit this file).\n"
          "# raywarden's own CRD for the KubeRay-compatible ray.io/v1 API: structural schema; the Kubernetes types\n"
          "# it embeds come from the OpenAPI of Kubernetes %s. Too big for client-side `kubectl apply`:\n"
          "# install with `kubectl apply --server-side -f` or `kubectl create -f`. See docs/install.md.\n---\n"
          % k8s_openapi.KUBERNETES)


def render():
    return [(name, HEADER + to_yaml(doc)) for name, doc in all_crds()]


def vendor(check):
    """Re-extract manifests/hack/k8s-openapi-<release>.json from the pinned release (Go module cache).
    Returns (stale paths, skip message)."""
    try:
        text = k8s_openapi.dump_vendored(k8s_openapi.extract())
    except k8s_openapi.Unavailable as e:
        return [], ("skipped the check of %s against Kubernetes %s: the pinned OpenAPI is not available "
                    "here (%s)" % (os.path.relpath(k8s_openapi.VENDORED), k8s_openapi.KUBERNETES, e))
    if check:
        try:
            with open(k8s_openapi.VENDORED, encoding="utf-8") as f:
                return ([] if f.read() == text else [k8s_openapi.VENDORED]), None
        except OSError:
            return [k8s_openapi.VENDORED], None
    with open(k8s_openapi.VENDORED, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s (%d bytes)" % (os.path.relpath(k8s_openapi.VENDORED), len(text.encode("utf-8"))))
    return [], None


def main(argv):
    check = "--check" in argv
    stale = []
    if "--vendor" in argv or check:
        # --check also compares the vendored extract with the pinned release when that is available.
        s, skip = vendor(check)
        stale += s
        if skip:
            print(skip, file=sys.stderr)
    if not os.path.exists(k8s_openapi.VENDORED):
        print("skipped: %s is missing and could not be extracted (see above); run "
              "`python3 manifests/hack/gen_crds.py --vendor` where Go and the module proxy are available"
              % os.path.relpath(k8s_openapi.VENDORED), file=sys.stderr)
        return 0 if check else 1
    for name, text in render():
        path = os.path.join(OUT_DIR, name)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(path)
            except OSError:
                stale.append(path)
        else:
            os.makedirs(OUT_DIR, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print("wrote %s (%d bytes)" % (os.path.relpath(path), len(text.encode("utf-8"))))
    if stale:
        print("out of date (run manifests/hack/gen_crds.py%s): %s"
              % (" --vendor" if k8s_openapi.VENDORED in stale else "", ", ".join(stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

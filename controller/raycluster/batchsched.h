/*
 * batchsched.h - batch schedulers (--batch-scheduler), as KubeRay's
 * controllers/ray/batchscheduler plugins do it: the PodGroup a RayCluster or
 * RayJob gets before its pods (Volcano, scheduler-plugins), and the labels,
 * annotations and schedulerName stamped on its children (Pods, the submitter
 * Job's pod template, the RayCluster of a RayJob). Pure: objects in, JSON or
 * an edited document out; the reconcilers do the API calls.
 *
 * Reference: KubeRay v1.5.0 batchscheduler/{volcano,yunikorn,scheduler-plugins,
 * kai-scheduler}, utils/util.go (CalculateDesiredResources...), and the
 * RayCluster/RayJob controllers' call sites (docs/kuberay-compatibility.md).
 */
#ifndef RW_BATCHSCHED_H
#define RW_BATCHSCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "doc.h"
#include "rw/buf.h"

enum rw_bs_kind {
	RW_BS_NONE = 0,		 /* no --batch-scheduler: the default scheduler, nothing added */
	RW_BS_VOLCANO,		 /* volcano: PodGroup scheduling.volcano.sh/v1beta1 */
	RW_BS_YUNIKORN,		 /* yunikorn: labels and task-group annotations only */
	RW_BS_SCHEDULER_PLUGINS, /* scheduler-plugins: PodGroup scheduling.x-k8s.io/v1alpha1 */
	RW_BS_KAI,		 /* kai-scheduler: schedulerName and the queue label only */
};

/* Labels and annotations the plugins read and write. */
#define RW_BS_VOLCANO_QUEUE_LABEL "volcano.sh/queue-name"
#define RW_BS_VOLCANO_TOPOLOGY_MODE_LABEL "volcano.sh/network-topology-mode"
#define RW_BS_VOLCANO_TOPOLOGY_TIER_LABEL "volcano.sh/network-topology-highest-tier-allowed"
#define RW_BS_VOLCANO_GROUP_ANNOTATION "scheduling.k8s.io/group-name"
#define RW_BS_VOLCANO_TASK_ANNOTATION "volcano.sh/task-spec"
#define RW_BS_PRIORITY_CLASS_LABEL "ray.io/priority-class-name"
#define RW_BS_GANG_LABEL "ray.io/gang-scheduling-enabled"
#define RW_BS_YUNIKORN_APP_LABEL "yunikorn.apache.org/app-id"
#define RW_BS_YUNIKORN_QUEUE_LABEL "yunikorn.apache.org/queue"
#define RW_BS_YUNIKORN_TASK_GROUPS "yunikorn.apache.org/task-groups"
#define RW_BS_YUNIKORN_TASK_GROUP_NAME "yunikorn.apache.org/task-group-name"
#define RW_BS_SP_POD_GROUP_LABEL "scheduling.x-k8s.io/pod-group"
#define RW_BS_KAI_QUEUE_LABEL "kai.scheduler/queue"
/* The task group of a RayJob's submitter (KubeRay's RayNodeSubmitterGroupLabelValue). */
#define RW_BS_SUBMITTER_GROUP "submittergroup"

/*
 * The --batch-scheduler value: "" or NULL is RW_BS_NONE; volcano, yunikorn,
 * scheduler-plugins and kai-scheduler are the others. 0 or -EINVAL for any
 * other name (KubeRay refuses to start then too).
 */
int rw_bs_parse(const char *name, enum rw_bs_kind *out);

/* The flag value of a kind ("" for none). */
const char *rw_bs_flag_name(enum rw_bs_kind k);

/* The schedulerName its pods get (scheduler-plugins: scheduler-plugins-scheduler); NULL for none.
 */
const char *rw_bs_scheduler_name(enum rw_bs_kind k);

/*
 * The object a child is stamped from and a PodGroup is made for: a RayCluster
 * (cluster_spec its spec) or a RayJob (cluster_spec its rayClusterSpec, NULL
 * with a clusterSelector). For a RayJob, submitter_spec is the submitter
 * pod's spec (submitterPodTemplate's, else rw_bs_default_submitter_spec):
 * YuniKorn's submitter task group; submitter_resources_spec is the pod spec
 * whose resources Volcano reserves for the submitter (K8sJobMode the
 * submitter's, SidecarMode the default container's, NULL in the other modes).
 */
struct rw_bs_parent {
	bool rayjob;
	const char *name, *ns, *uid;
	const struct rw_doc_node *labels, *annotations;
	const struct rw_doc_node *cluster_spec;
	const struct rw_doc_node *submitter_spec;
	const struct rw_doc_node *submitter_resources_spec;
};

/*
 * AddMetadataToChildResource: stamp child (a Pod or PodTemplateSpec when pod
 * is true, else a RayCluster: no schedulerName) with what kind k wants for
 * parent p; group is the child's task group ("headgroup", the worker group
 * name, RW_BS_SUBMITTER_GROUP, or "" for a RayCluster child). Volcano: the
 * queue and priority-class labels copied, the group-name and task-spec
 * annotations. YunKorn: applicationId and queue labels from the yunikorn.apache.org
 * ones; with ray.io/gang-scheduling-enabled the task-groups annotation (the
 * parent's own, else computed) and task-group-name. scheduler-plugins: the
 * pod-group label when gang scheduling is enabled. KAI: the queue label.
 * 0, -ENOMEM (child partly stamped) or -EINVAL (child not an object).
 */
int rw_bs_child_metadata(enum rw_bs_kind k, const struct rw_bs_parent *p, struct rw_doc_node *child,
			 bool pod, const char *group);

/*
 * rw_bs_child_metadata on a child given as JSON text (json, len), at path
 * inside it (NULL: the object itself; "spec.template" for a Job's pod
 * template); the result is appended to out. -EINVAL for unparsable JSON or a
 * missing path.
 */
int rw_bs_child_metadata_json(enum rw_bs_kind k, const struct rw_bs_parent *p, const char *json,
			      size_t len, const char *path, bool pod, const char *group,
			      struct rw_buf *out);

/*
 * KubeRay's default submitter pod spec as far as the schedulers read it
 * (GetDefaultSubmitterContainer: requests 500m/200Mi, limits 1/1Gi): the
 * resources of a RayJob without a submitterPodTemplate. NULL on allocation
 * failure; free with rw_doc_free.
 */
struct rw_doc_node *rw_bs_default_submitter_spec(void);

/*
 * The YuniKorn task groups of p as JSON (KubeRay's json.Marshal of
 * []TaskGroup: minResource, nodeSelector, affinity, name, tolerations,
 * minMember): headgroup (1), each worker group (minReplicas x numOfHosts),
 * and for a RayJob the submitter group (1). Appended to out.
 */
int rw_bs_yunikorn_task_groups(const struct rw_bs_parent *p, struct rw_buf *out);

/* Volcano's PodGroup name: ray-<name>-pg, <name> the RayJob's for a RayJob's cluster. */
void rw_bs_volcano_group_name(const struct rw_bs_parent *p, char *out, size_t outlen);

/*
 * DoBatchSchedulingOnSubmission: the PodGroup kind k wants for p, appended to
 * out as JSON (out left empty when none is wanted: YuniKorn, KAI, no
 * scheduler, a RayJob's RayCluster under Volcano, scheduler-plugins without
 * the gang label or for a RayJob). The path of the PodGroup collection is
 * written to path. Returns 0, or -EINVAL with a message in err (a RayJob with
 * a clusterSelector under Volcano, a non-integer network-topology tier).
 */
int rw_bs_podgroup(enum rw_bs_kind k, const struct rw_bs_parent *p, struct rw_buf *out, char *path,
		   size_t pathlen, char *err, size_t errlen);

/* The API path of kind k's PodGroups in namespace ns ("" for kinds without PodGroups). */
void rw_bs_podgroup_collection(enum rw_bs_kind k, const char *ns, char *out, size_t outlen);

/*
 * Volcano's syncPodGroup update: when the existing PodGroup (JSON) differs
 * from the desired one in spec.minMember or spec.minResources (compared as
 * quantities, quotav1.Equals), a merge patch setting both is appended to
 * patch and 1 returned; 0 when equal; -EINVAL for unparsable input.
 */
int rw_bs_podgroup_patch(const char *existing, size_t elen, const char *desired, size_t dlen,
			 struct rw_buf *patch);

#endif

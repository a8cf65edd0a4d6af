/*
 * test_batchsched.c - the batch scheduler builders (controller/raycluster/batchsched.c)
 * against KubeRay v1.5.0's plugins: flag names, Volcano and scheduler-plugins
 * PodGroups (members, resources, queue, priority, network topology, a RayJob's
 * submitter), child metadata per scheduler, YuniKorn task groups, and the
 * Volcano update decision.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchsched.h"
#include "rwtest.h"

/* A parent from a RayCluster or RayJob document (doc kept alive by the caller). */
struct fixture {
	struct rw_doc_node *doc, *dflt;
	struct rw_bs_parent p;
};

static void
fixture_load(struct fixture *f, const char *json, const char *mode)
{
	memset(f, 0, sizeof(*f));
	CHECK_EQ_INT(rw_doc_parse(json, strlen(json), &f->doc, NULL, 0), 0);
	struct rw_doc_node *meta = rw_doc_get(f->doc, "metadata");
	f->p.rayjob = strcmp(rw_doc_gets(f->doc, "kind"), "RayJob") == 0;
	f->p.name = rw_doc_gets(meta, "name");
	f->p.ns = "default";
	f->p.uid = "u1";
	f->p.labels = rw_doc_get(meta, "labels");
	f->p.annotations = rw_doc_get(meta, "annotations");
	if (!f->p.rayjob) {
		f->p.cluster_spec = rw_doc_get(f->doc, "spec");
		return;
	}
	f->p.cluster_spec = rw_doc_path(f->doc, "spec.rayClusterSpec");
	f->dflt = rw_bs_default_submitter_spec();
	CHECK(f->dflt != NULL);
	f->p.submitter_spec = rw_doc_path(f->doc, "spec.submitterPodTemplate.spec");
	if (!f->p.submitter_spec)
		f->p.submitter_spec = f->dflt;
	if (!mode || !strcmp(mode, "K8sJobMode"))
		f->p.submitter_resources_spec = f->p.submitter_spec;
	else if (!strcmp(mode, "SidecarMode"))
		f->p.submitter_resources_spec = f->dflt;
}

static void
fixture_fini(struct fixture *f)
{
	rw_doc_free(f->doc);
	rw_doc_free(f->dflt);
}

static void
t_parse(void)
{
	static const struct {
		const char *in;
		int rv;
		enum rw_bs_kind kind;
		const char *scheduler;
	} c[] = {
	    {NULL, 0, RW_BS_NONE, NULL},
	    {"", 0, RW_BS_NONE, NULL},
	    {"volcano", 0, RW_BS_VOLCANO, "volcano"},
	    {"yunikorn", 0, RW_BS_YUNIKORN, "yunikorn"},
	    {"scheduler-plugins", 0, RW_BS_SCHEDULER_PLUGINS, "scheduler-plugins-scheduler"},
	    {"kai-scheduler", 0, RW_BS_KAI, "kai-scheduler"},
	    {"Volcano", -EINVAL, RW_BS_NONE, NULL},
	    {"default", -EINVAL, RW_BS_NONE, NULL},
	    {"kueue", -EINVAL, RW_BS_NONE, NULL},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		enum rw_bs_kind k = RW_BS_KAI;
		CHECK_EQ_INT(rw_bs_parse(c[i].in, &k), c[i].rv);
		CHECK_EQ_INT((int)k, (int)c[i].kind);
		if (c[i].rv == 0) {
			const char *s = rw_bs_scheduler_name(k);
			CHECK(c[i].scheduler ? s && !strcmp(s, c[i].scheduler) : s == NULL);
			CHECK_EQ_STR(rw_bs_flag_name(k), c[i].in ? c[i].in : "");
		}
	}
}

/* The head and a worker group of KubeRay's volcano samples (1 CPU/2Gi head, 1/1Gi workers). */
#define HEAD                                                                                       \
	"\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-head\","       \
	"\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},\"requests\":{\"cpu\":"      \
	"\"1\",\"memory\":\"2Gi\"}}}]}}}"
#define WORKER(extra)                                                                              \
	"{\"groupName\":\"worker\"," extra ",\"template\":{\"spec\":{\"containers\":[{\"name\":"   \
	"\"w\",\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"requests\":{"        \
	"\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}}"
#define CLUSTER(labels, spec_extra, workers)                                                       \
	"{\"kind\":\"RayCluster\",\"metadata\":{\"name\":\"c\",\"labels\":{" labels "}},"          \
	"\"spec\":{" spec_extra HEAD ",\"workerGroupSpecs\":[" workers "]}}"
#define OWNER_RC                                                                                   \
	"\"ownerReferences\":[{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"name\":"     \
	"\"c\",\"uid\":\"u1\",\"controller\":true,\"blockOwnerDeletion\":true}]"
#define JOB(labels, spec_extra)                                                                    \
	"{\"kind\":\"RayJob\",\"metadata\":{\"name\":\"j\",\"labels\":{" labels "}},"              \
	"\"spec\":{" spec_extra "\"rayClusterSpec\":{" HEAD ",\"workerGroupSpecs\":[" WORKER(      \
	    "\"replicas\":2,\"minReplicas\":2,\"maxReplicas\":2") "]}}}"
#define OWNER_RJ                                                                                   \
	"\"ownerReferences\":[{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayJob\",\"name\":\"j\","   \
	"\"uid\":\"u1\",\"controller\":true,\"blockOwnerDeletion\":true}]"

static void
t_volcano_podgroup(void)
{
	static const struct {
		const char *name, *obj, *mode;
		int rv;
		const char *want; /* "" for no PodGroup */
	} c[] = {
	    {"ray-cluster.volcano-scheduler-queue",
	     CLUSTER("\"volcano.sh/queue-name\":\"q\"", "",
		     WORKER("\"replicas\":2,\"minReplicas\":2,\"maxReplicas\":2")),
	     NULL, 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-c-pg\",\"namespace\":\"default\"," OWNER_RC
	     "},\"spec\":{\"minMember\":"
	     "3,\"queue\":\"q\",\"minResources\":{\"cpu\":\"3\",\"memory\":\"4Gi\"}},\"status\":{"
	     "\"phase\":\"Pending\"}}"},
	    {"head only, priority class",
	     CLUSTER("\"ray.io/priority-class-name\":\"high\"", "", ""), NULL, 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-c-pg\",\"namespace\":\"default\"," OWNER_RC
	     "},\"spec\":{\"minMember\":"
	     "1,\"priorityClassName\":\"high\",\"minResources\":{\"cpu\":\"1\",\"memory\":\"2Gi\"}}"
	     ","
	     "\"status\":{\"phase\":\"Pending\"}}"},
	    /* Members from the clamped replicas, resources from replicas as written (KubeRay). */
	    {"replicas above max, numOfHosts 2",
	     CLUSTER("", "",
		     WORKER("\"replicas\":5,\"minReplicas\":0,\"maxReplicas\":3,\"numOfHosts\":2")),
	     NULL, 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-c-pg\",\"namespace\":\"default\"," OWNER_RC
	     "},\"spec\":{\"minMember\":"
	     "7,\"minResources\":{\"cpu\":\"11\",\"memory\":\"12Gi\"}},\"status\":{\"phase\":"
	     "\"Pending\"}}"},
	    {"suspended group left out",
	     CLUSTER("", "",
		     WORKER("\"replicas\":2,\"minReplicas\":1,\"maxReplicas\":2,\"suspend\":true")),
	     NULL, 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-c-pg\",\"namespace\":\"default\"," OWNER_RC
	     "},\"spec\":{\"minMember\":"
	     "1,\"minResources\":{\"cpu\":\"1\",\"memory\":\"2Gi\"}},\"status\":{\"phase\":"
	     "\"Pending\"}}"},
	    {"autoscaling: minReplicas",
	     CLUSTER("", "\"enableInTreeAutoscaling\":true,",
		     WORKER("\"replicas\":4,\"minReplicas\":1,\"maxReplicas\":9")),
	     NULL, 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-c-pg\",\"namespace\":\"default\"," OWNER_RC
	     "},\"spec\":{\"minMember\":"
	     "2,\"minResources\":{\"cpu\":\"2\",\"memory\":\"3Gi\"}},\"status\":{\"phase\":"
	     "\"Pending\"}}"},
	    {"network topology",
	     CLUSTER("\"volcano.sh/network-topology-mode\":\"hard\",\"volcano.sh/"
		     "network-topology-highest-tier-allowed\":\"2\"",
		     "", ""),
	     NULL, 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-c-pg\",\"namespace\":\"default\"," OWNER_RC
	     "},\"spec\":{\"minMember\":"
	     "1,\"minResources\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},\"networkTopology\":{\"mode\":"
	     "\"hard\",\"highestTierAllowed\":2}},\"status\":{\"phase\":\"Pending\"}}"},
	    {"bad tier",
	     CLUSTER("\"volcano.sh/network-topology-mode\":\"soft\",\"volcano.sh/"
		     "network-topology-highest-tier-allowed\":\"two\"",
		     "", ""),
	     NULL, -EINVAL, ""},
	    {"a RayJob's cluster shares the RayJob's",
	     CLUSTER("\"ray.io/originated-from-crd\":\"RayJob\",\"ray.io/originated-from-cr-name\":"
		     "\"j\"",
		     "", ""),
	     NULL, 0, ""},
	    /* The submitter's resources are reserved, its pod is not a member. */
	    {"ray-job.volcano-scheduler-queue (K8sJobMode)",
	     JOB("\"volcano.sh/queue-name\":\"q\"", ""), "K8sJobMode", 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-j-pg\",\"namespace\":\"default\"," OWNER_RJ
	     "},\"spec\":{\"minMember\":"
	     "3,\"queue\":\"q\",\"minResources\":{\"cpu\":\"3500m\",\"memory\":\"4296Mi\"}},"
	     "\"status\":{\"phase\":\"Pending\"}}"},
	    {"RayJob SidecarMode", JOB("", ""), "SidecarMode", 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-j-pg\",\"namespace\":\"default\"," OWNER_RJ
	     "},\"spec\":{\"minMember\":"
	     "3,\"minResources\":{\"cpu\":\"3500m\",\"memory\":\"4296Mi\"}},\"status\":{\"phase\":"
	     "\"Pending\"}}"},
	    {"RayJob HTTPMode", JOB("", ""), "HTTPMode", 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-j-pg\",\"namespace\":\"default\"," OWNER_RJ
	     "},\"spec\":{\"minMember\":"
	     "3,\"minResources\":{\"cpu\":\"3\",\"memory\":\"4Gi\"}},\"status\":{\"phase\":"
	     "\"Pending\"}}"},
	    {"RayJob submitterPodTemplate",
	     JOB("", "\"submitterPodTemplate\":{\"spec\":{\"containers\":[{\"name\":\"s\","
		     "\"resources\":{\"limits\":{\"cpu\":\"2\",\"nvidia.com/gpu\":\"1\"}}}]}},"),
	     "K8sJobMode", 0,
	     "{\"apiVersion\":\"scheduling.volcano.sh/"
	     "v1beta1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"ray-j-pg\",\"namespace\":\"default\"," OWNER_RJ
	     "},\"spec\":{\"minMember\":"
	     "3,\"minResources\":{\"cpu\":\"5\",\"memory\":\"4Gi\",\"nvidia.com/gpu\":\"1\"}},"
	     "\"status\":{\"phase\":\"Pending\"}}"},
	    {"RayJob with a clusterSelector",
	     "{\"kind\":\"RayJob\",\"metadata\":{\"name\":\"j\"},\"spec\":{\"clusterSelector\":{"
	     "\"ray.io/cluster\":\"x\"}}}",
	     "K8sJobMode", -EINVAL, ""},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct fixture f;
		struct rw_buf b;
		char path[256] = "", err[256] = "";
		fixture_load(&f, c[i].obj, c[i].mode);
		rw_buf_init(&b, 1u << 20);
		int rv =
		    rw_bs_podgroup(RW_BS_VOLCANO, &f.p, &b, path, sizeof(path), err, sizeof(err));
		if (rv != c[i].rv || strcmp(rw_buf_cstr(&b), c[i].want) != 0)
			fprintf(stderr, "  case %s: rv %d err %s\n  got  %s\n  want %s\n",
				c[i].name, rv, err, rw_buf_cstr(&b), c[i].want);
		CHECK_EQ_INT(rv, c[i].rv);
		CHECK_EQ_STR(rw_buf_cstr(&b), c[i].want);
		if (rv)
			CHECK(err[0] != '\0');
		else if (b.len)
			CHECK_EQ_STR(path, "/apis/scheduling.volcano.sh/v1beta1/namespaces/default/"
					   "podgroups");
		rw_buf_fini(&b);
		fixture_fini(&f);
	}
}

static void
t_sp_podgroup(void)
{
	static const struct {
		const char *name, *obj;
		const char *want;
	} c[] = {
	    {"ray-cluster.scheduler-plugins",
	     CLUSTER("\"ray.io/gang-scheduling-enabled\":\"true\"", "",
		     WORKER("\"replicas\":2,\"minReplicas\":2,\"maxReplicas\":2")),
	     "{\"apiVersion\":\"scheduling.x-k8s.io/v1alpha1\",\"kind\":\"PodGroup\",\"metadata\":{"
	     "\"name\":\"c\",\"namespace\":\"default\",\"ownerReferences\":[{\"apiVersion\":\"ray."
	     "io/"
	     "v1\",\"kind\":\"RayCluster\",\"name\":\"c\",\"uid\":\"u1\"}]},\"spec\":{"
	     "\"minMember\":3,"
	     "\"minResources\":{\"cpu\":\"3\",\"memory\":\"4Gi\"}}}"},
	    {"no gang label", CLUSTER("", "", ""), ""},
	    {"a RayJob gets none", JOB("\"ray.io/gang-scheduling-enabled\":\"true\"", ""), ""},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct fixture f;
		struct rw_buf b;
		char path[256] = "", err[256];
		fixture_load(&f, c[i].obj, NULL);
		rw_buf_init(&b, 1u << 20);
		CHECK_EQ_INT(rw_bs_podgroup(RW_BS_SCHEDULER_PLUGINS, &f.p, &b, path, sizeof(path),
					    err, sizeof(err)),
			     0);
		if (strcmp(rw_buf_cstr(&b), c[i].want) != 0)
			fprintf(stderr, "  case %s:\n  got  %s\n", c[i].name, rw_buf_cstr(&b));
		CHECK_EQ_STR(rw_buf_cstr(&b), c[i].want);
		/* YuniKorn and KAI never make one. */
		rw_buf_reset(&b);
		CHECK_EQ_INT(
		    rw_bs_podgroup(RW_BS_YUNIKORN, &f.p, &b, path, sizeof(path), err, sizeof(err)),
		    0);
		CHECK_EQ_INT(
		    rw_bs_podgroup(RW_BS_KAI, &f.p, &b, path, sizeof(path), err, sizeof(err)), 0);
		CHECK_EQ_INT((int)b.len, 0);
		rw_buf_fini(&b);
		fixture_fini(&f);
	}
}

/* The head's task group, as it appears inside the annotation's JSON string. */
#define TG_HEAD                                                                                    \
	"{\\\"minResource\\\":{\\\"cpu\\\":\\\"1\\\",\\\"memory\\\":\\\"2Gi\\\"},"                 \
	"\\\"name\\\":\\\"headgroup\\\",\\\"minMember\\\":1}"

static void
t_child_metadata(void)
{
	static const struct {
		const char *name;
		enum rw_bs_kind kind;
		const char *obj; /* the parent */
		bool pod;
		const char *group;
		const char *child, *want;
	} c[] = {
	    {"volcano head pod", RW_BS_VOLCANO,
	     CLUSTER("\"volcano.sh/queue-name\":\"q\",\"ray.io/priority-class-name\":\"p\"", "",
		     ""),
	     true, "headgroup",
	     "{\"metadata\":{\"labels\":{\"ray.io/node-type\":\"head\"}},\"spec\":{}}",
	     "{\"metadata\":{\"labels\":{\"ray.io/node-type\":\"head\",\"volcano.sh/"
	     "queue-name\":\"q\","
	     "\"ray.io/priority-class-name\":\"p\"},\"annotations\":{\"scheduling.k8s.io/"
	     "group-name\":"
	     "\"ray-c-pg\",\"volcano.sh/task-spec\":\"headgroup\"}},\"spec\":{\"schedulerName\":"
	     "\"volcano\"}}"},
	    {"volcano pod of a RayJob's cluster", RW_BS_VOLCANO,
	     CLUSTER("\"ray.io/originated-from-crd\":\"RayJob\",\"ray.io/originated-from-cr-name\":"
		     "\"j\",\"volcano.sh/queue-name\":\"\"",
		     "", ""),
	     true, "worker", "{\"spec\":{}}",
	     "{\"spec\":{\"schedulerName\":\"volcano\"},\"metadata\":{\"annotations\":{"
	     "\"scheduling.k8s.io/group-name\":\"ray-j-pg\",\"volcano.sh/"
	     "task-spec\":\"worker\"}}}"},
	    {"volcano RayCluster of a RayJob", RW_BS_VOLCANO,
	     JOB("\"volcano.sh/queue-name\":\"q\"", ""), false, "",
	     "{\"metadata\":{\"name\":\"j-abcde\"},\"spec\":{}}",
	     "{\"metadata\":{\"name\":\"j-abcde\",\"labels\":{\"volcano.sh/queue-name\":\"q\"},"
	     "\"annotations\":{\"scheduling.k8s.io/group-name\":\"ray-j-pg\",\"volcano.sh/"
	     "task-spec\":\"\"}},\"spec\":{}}"},
	    {"yunikorn without gang", RW_BS_YUNIKORN,
	     CLUSTER(
		 "\"yunikorn.apache.org/app-id\":\"a\",\"yunikorn.apache.org/queue\":\"root.t\"",
		 "", ""),
	     true, "headgroup", "{}",
	     "{\"metadata\":{\"labels\":{\"applicationId\":\"a\",\"queue\":\"root.t\"}},\"spec\":{"
	     "\"schedulerName\":\"yunikorn\"}}"},
	    {"yunikorn gang head pod", RW_BS_YUNIKORN,
	     CLUSTER("\"ray.io/gang-scheduling-enabled\":\"true\",\"yunikorn.apache.org/app-id\":"
		     "\"a\"",
		     "", WORKER("\"replicas\":2,\"minReplicas\":2,\"maxReplicas\":2")),
	     true, "headgroup", "{}",
	     "{\"metadata\":{\"labels\":{\"applicationId\":\"a\"},\"annotations\":{\"yunikorn."
	     "apache."
	     "org/task-groups\":\"[" TG_HEAD ",{\\\"minResource\\\":{\\\"cpu\\\":\\\"1\\\","
	     "\\\"memory\\\":\\\"1Gi\\\"},\\\"name\\\":\\\"worker\\\",\\\"minMember\\\":2}]\","
	     "\"yunikorn.apache.org/task-group-name\":\"headgroup\"}},\"spec\":{\"schedulerName\":"
	     "\"yunikorn\"}}"},
	    {"yunikorn gang submitter of a RayJob", RW_BS_YUNIKORN,
	     JOB("\"ray.io/gang-scheduling-enabled\":\"true\"", ""), true, "submittergroup", "{}",
	     "{\"metadata\":{\"annotations\":{\"yunikorn.apache.org/task-groups\":\"[" TG_HEAD
	     ",{\\\"minResource\\\":{\\\"cpu\\\":\\\"1\\\",\\\"memory\\\":\\\"1Gi\\\"},"
	     "\\\"name\\\":"
	     "\\\"worker\\\",\\\"minMember\\\":2},{\\\"minResource\\\":{\\\"cpu\\\":\\\"500m\\\","
	     "\\\"memory\\\":\\\"200Mi\\\"},\\\"name\\\":\\\"submittergroup\\\",\\\"minMember\\\":"
	     "1}]"
	     "\",\"yunikorn.apache.org/task-group-name\":\"submittergroup\"}},\"spec\":{"
	     "\"schedulerName\":\"yunikorn\"}}"},
	    {"scheduler-plugins gang", RW_BS_SCHEDULER_PLUGINS,
	     CLUSTER("\"ray.io/gang-scheduling-enabled\":\"true\"", "", ""), true, "worker", "{}",
	     "{\"metadata\":{\"labels\":{\"scheduling.x-k8s.io/pod-group\":\"c\"}},\"spec\":{"
	     "\"schedulerName\":\"scheduler-plugins-scheduler\"}}"},
	    {"scheduler-plugins without gang", RW_BS_SCHEDULER_PLUGINS, CLUSTER("", "", ""), true,
	     "worker", "{}", "{\"spec\":{\"schedulerName\":\"scheduler-plugins-scheduler\"}}"},
	    {"kai queue", RW_BS_KAI, CLUSTER("\"kai.scheduler/queue\":\"team-a\"", "", ""), true,
	     "headgroup", "{}",
	     "{\"metadata\":{\"labels\":{\"kai.scheduler/queue\":\"team-a\"}},\"spec\":{"
	     "\"schedulerName\":\"kai-scheduler\"}}"},
	    {"kai RayCluster child: no schedulerName", RW_BS_KAI,
	     JOB("\"kai.scheduler/queue\":\"team-a\"", ""), false, "", "{\"spec\":{}}",
	     "{\"spec\":{},\"metadata\":{\"labels\":{\"kai.scheduler/queue\":\"team-a\"}}}"},
	    {"no scheduler", RW_BS_NONE, CLUSTER("\"volcano.sh/queue-name\":\"q\"", "", ""), true,
	     "headgroup", "{\"spec\":{}}", "{\"spec\":{}}"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct fixture f;
		struct rw_doc_node *child = NULL;
		struct rw_buf b;
		fixture_load(&f, c[i].obj, "K8sJobMode");
		CHECK_EQ_INT(rw_doc_parse(c[i].child, strlen(c[i].child), &child, NULL, 0), 0);
		CHECK_EQ_INT(rw_bs_child_metadata(c[i].kind, &f.p, child, c[i].pod, c[i].group), 0);
		rw_buf_init(&b, 1u << 20);
		CHECK_EQ_INT(rw_doc_dump(child, &b), 0);
		if (strcmp(rw_buf_cstr(&b), c[i].want) != 0)
			fprintf(stderr, "  case %s:\n  got  %s\n  want %s\n", c[i].name,
				rw_buf_cstr(&b), c[i].want);
		CHECK_EQ_STR(rw_buf_cstr(&b), c[i].want);
		rw_buf_fini(&b);
		rw_doc_free(child);
		fixture_fini(&f);
	}
	/* A parent's own task-groups annotation is passed on as written. */
	struct fixture f;
	struct rw_doc_node *child = NULL;
	fixture_load(&f,
		     "{\"kind\":\"RayCluster\",\"metadata\":{\"name\":\"c\",\"labels\":{\"ray.io/"
		     "gang-scheduling-enabled\":\"\"},\"annotations\":{\"yunikorn.apache.org/"
		     "task-groups\":\"[mine]\"}},\"spec\":{}}",
		     NULL);
	CHECK_EQ_INT(rw_doc_parse("{}", 2, &child, NULL, 0), 0);
	CHECK_EQ_INT(rw_bs_child_metadata(RW_BS_YUNIKORN, &f.p, child, true, ""), 0);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(child, "metadata.annotations"),
				 "yunikorn.apache.org/task-groups"),
		     "[mine]");
	CHECK(rw_doc_gets(rw_doc_path(child, "metadata.annotations"),
			  "yunikorn.apache.org/task-group-name") == NULL);
	CHECK_EQ_INT(rw_bs_child_metadata(RW_BS_YUNIKORN, &f.p, NULL, true, ""), -EINVAL);
	rw_doc_free(child);
	fixture_fini(&f);
}

/* The submitter Job: its pod template is stamped, the Job itself is not. */
static void
t_child_json(void)
{
	struct fixture f;
	struct rw_buf b;
	static const char job[] = "{\"kind\":\"Job\",\"metadata\":{\"name\":\"j\"},\"spec\":{"
				  "\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{"
				  "}}}}";
	fixture_load(&f, JOB("\"volcano.sh/queue-name\":\"q\"", ""), "K8sJobMode");
	rw_buf_init(&b, 1u << 20);
	CHECK_EQ_INT(rw_bs_child_metadata_json(RW_BS_VOLCANO, &f.p, job, sizeof(job) - 1,
					       "spec.template", true, RW_BS_SUBMITTER_GROUP, &b),
		     0);
	CHECK_EQ_STR(
	    rw_buf_cstr(&b),
	    "{\"kind\":\"Job\",\"metadata\":{\"name\":\"j\"},\"spec\":{\"template\":{"
	    "\"metadata\":{\"labels\":{\"a\":\"b\",\"volcano.sh/queue-name\":\"q\"},"
	    "\"annotations\":{\"scheduling.k8s.io/group-name\":\"ray-j-pg\",\"volcano.sh/"
	    "task-spec\":\"submittergroup\"}},\"spec\":{\"schedulerName\":\"volcano\"}}}}");
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_bs_child_metadata_json(RW_BS_VOLCANO, &f.p, job, sizeof(job) - 1,
					       "spec.nope", true, "", &b),
		     -EINVAL);
	CHECK_EQ_INT(rw_bs_child_metadata_json(RW_BS_VOLCANO, &f.p, "{", 1, NULL, true, "", &b),
		     -EINVAL);
	rw_buf_fini(&b);
	fixture_fini(&f);
}

static void
t_patch(void)
{
	static const struct {
		const char *existing, *desired;
		int rv;
		const char *patch;
	} c[] = {
	    {"{\"spec\":{\"minMember\":3,\"minResources\":{\"cpu\":\"3\",\"memory\":\"4Gi\"}}}",
	     "{\"spec\":{\"minMember\":3,\"minResources\":{\"memory\":\"4096Mi\",\"cpu\":\"3000m\"}"
	     "}}",
	     0, ""},
	    {"{\"spec\":{\"minMember\":3,\"minResources\":{\"cpu\":\"3\"}}}",
	     "{\"spec\":{\"minMember\":5,\"minResources\":{\"cpu\":\"3\"}}}", 1,
	     "{\"spec\":{\"minMember\":5,\"minResources\":{\"cpu\":\"3\"}}}"},
	    {"{\"spec\":{\"minMember\":3,\"minResources\":{\"cpu\":\"3\"}}}",
	     "{\"spec\":{\"minMember\":3,\"minResources\":{\"cpu\":\"3\",\"memory\":\"1Gi\"}}}", 1,
	     "{\"spec\":{\"minMember\":3,\"minResources\":{\"cpu\":\"3\",\"memory\":\"1Gi\"}}}"},
	    /* No minResources yet (KubeRay: MinResources == nil updates). */
	    {"{\"spec\":{\"minMember\":1}}", "{\"spec\":{\"minMember\":1,\"minResources\":{}}}", 1,
	     "{\"spec\":{\"minMember\":1,\"minResources\":{}}}"},
	    {"nope", "{}", -EINVAL, ""},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct rw_buf b;
		rw_buf_init(&b, 1u << 20);
		CHECK_EQ_INT(rw_bs_podgroup_patch(c[i].existing, strlen(c[i].existing),
						  c[i].desired, strlen(c[i].desired), &b),
			     c[i].rv);
		CHECK_EQ_STR(rw_buf_cstr(&b), c[i].patch);
		rw_buf_fini(&b);
	}
}

/* Counts beyond int32 (refused by validation, but builders see any input) stay defined. */
static void
t_huge_counts(void)
{
	struct fixture f;
	struct rw_buf b;
	struct rw_doc_node *child = NULL;
	char path[256], err[256];
	fixture_load(&f,
		     CLUSTER("\"ray.io/gang-scheduling-enabled\":\"\"", "",
			     WORKER("\"replicas\":9000000000000000000,\"minReplicas\":"
				    "9000000000000000000,\"maxReplicas\":9000000000000000000,"
				    "\"numOfHosts\":9000000000000000000")),
		     NULL);
	rw_buf_init(&b, 1u << 20);
	CHECK_EQ_INT(rw_bs_podgroup(RW_BS_VOLCANO, &f.p, &b, path, sizeof(path), err, sizeof(err)),
		     0);
	CHECK(strstr(rw_buf_cstr(&b), "\"minMember\":2147483647") != NULL);
	CHECK_EQ_INT(rw_doc_parse("{}", 2, &child, NULL, 0), 0);
	CHECK_EQ_INT(rw_bs_child_metadata(RW_BS_YUNIKORN, &f.p, child, true, "worker"), 0);
	CHECK(strstr(rw_doc_gets(rw_doc_path(child, "metadata.annotations"),
				 "yunikorn.apache.org/task-groups"),
		     "\"minMember\":2147483647") != NULL);
	rw_doc_free(child);
	rw_buf_fini(&b);
	fixture_fini(&f);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"--batch-scheduler names", t_parse},
	    {"Volcano PodGroups", t_volcano_podgroup},
	    {"scheduler-plugins PodGroups", t_sp_podgroup},
	    {"child metadata per scheduler", t_child_metadata},
	    {"child metadata on JSON", t_child_json},
	    {"Volcano PodGroup updates", t_patch},
	    {"counts beyond int32", t_huge_counts},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

/*
 * test_rc_status.c - desired replica math, the reconcilePods decisions
 * (workersToDelete, random deletion, unhealthy pods, head recreation) and
 * status transitions (ready sticky, provisioned, suspend, replica failure).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rc_status.h"
#include "rwtest.h"

static struct rw_raycluster *
parse(const char *json)
{
	struct rw_raycluster *c = NULL;
	char err[256] = "";
	int rv = rw_raycluster_parse(json, strlen(json), &c, err, sizeof(err));
	if (rv)
		fprintf(stderr, "  parse: %s\n", err);
	CHECK_EQ_INT(rv, 0);
	return c;
}

static void
t_desired(void)
{
	static const struct {
		const char *group;
		int want;
	} cases[] = {
	    {"{\"replicas\":3,\"minReplicas\":0,\"maxReplicas\":10}", 3},
	    {"{\"minReplicas\":2,\"maxReplicas\":10}", 2},
	    {"{\"replicas\":null,\"minReplicas\":2,\"maxReplicas\":10}", 2},
	    {"{\"replicas\":1,\"minReplicas\":2,\"maxReplicas\":10}", 2},
	    {"{\"replicas\":20,\"minReplicas\":0,\"maxReplicas\":10}", 10},
	    {"{\"replicas\":5,\"minReplicas\":6,\"maxReplicas\":4}", 4},
	    {"{\"replicas\":3,\"minReplicas\":0,\"maxReplicas\":10,\"numOfHosts\":2}", 6},
	    {"{\"replicas\":3,\"minReplicas\":0,\"maxReplicas\":10,\"suspend\":true}", 0},
	    {"{\"replicas\":3}", 3},
	    {"{}", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char json[512];
		snprintf(json, sizeof(json),
			 "{\"metadata\":{\"name\":\"c\"},\"spec\":{"
			 "\"workerGroupSpecs\":[%s]}}",
			 cases[i].group);
		struct rw_raycluster *c = parse(json);
		if (rw_raycluster_group_desired(c, 0) != cases[i].want)
			fprintf(stderr, "  case %zu\n", i);
		CHECK_EQ_INT(rw_raycluster_group_desired(c, 0), cases[i].want);
		rw_raycluster_free(c);
	}
	struct rw_raycluster *c = parse(
	    "{\"spec\":{\"workerGroupSpecs\":[{\"replicas\":2,\"minReplicas\":1,\"maxReplicas\":"
	    "3,\"numOfHosts\":2},{\"replicas\":1,\"minReplicas\":0,\"maxReplicas\":5,"
	    "\"suspend\":true},{\"replicas\":4,\"minReplicas\":4,\"maxReplicas\":4}]}}");
	CHECK_EQ_INT(rw_raycluster_desired_workers(c), 8);
	CHECK_EQ_INT(rw_raycluster_min_workers(c), 6);
	CHECK_EQ_INT(rw_raycluster_max_workers(c), 10);
	rw_raycluster_free(c);
}

#define W(n, ph)                                                                                   \
	{                                                                                          \
		n, "g", RW_RAYCLUSTER_NT_WORKER, ph, true, true, NULL, NULL, "10.0.0.1", false,    \
		    false, "Always"                                                                \
	}

static int
has(const struct rw_raycluster_group_plan *p, const char *name)
{
	for (size_t i = 0; i < p->ndel; i++)
		if (strcmp(p->del[i], name) == 0)
			return 1;
	return 0;
}

static void
t_plan_group(void)
{
	struct rw_raycluster_pod pods[] = {W("pod1", "Running"), W("pod2", "Running"),
					   W("pod3", "Running"), W("pod4", "Running"),
					   W("pod5", "Running")};
	struct rw_raycluster_opts o;
	struct rw_raycluster_group_plan p;
	struct rw_raycluster *c;
	rw_raycluster_opts_default(&o);

	/* Autoscaling off: the surplus goes, first pods first. */
	c = parse("{\"spec\":{\"workerGroupSpecs\":[{\"groupName\":\"g\",\"replicas\":3,"
		  "\"minReplicas\":0,\"maxReplicas\":10}]}}");
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 5, &p), 0);
	CHECK_EQ_INT((int)p.ndel, 2);
	CHECK(has(&p, "pod1") && has(&p, "pod2"));
	CHECK_EQ_INT(p.create, 0);
	rw_raycluster_group_plan_fini(&p);
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 1, &p), 0);
	CHECK_EQ_INT(p.create, 2);
	CHECK_EQ_INT((int)p.ndel, 0);
	rw_raycluster_group_plan_fini(&p);
	/* Pods already being deleted do not count. */
	pods[0].deleting = true;
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 3, &p), 0);
	CHECK_EQ_INT(p.create, 1);
	rw_raycluster_group_plan_fini(&p);
	pods[0].deleting = false;
	rw_raycluster_free(c);

	/* TestReconcile_RemoveWorkersToDelete_RandomDelete (autoscaler + ENABLE_RANDOM_POD_DELETE).
	 */
	c = parse(
	    "{\"spec\":{\"enableInTreeAutoscaling\":true,\"workerGroupSpecs\":[{\"groupName\":"
	    "\"g\",\"replicas\":3,\"minReplicas\":0,\"maxReplicas\":10,\"scaleStrategy\":{"
	    "\"workersToDelete\":[\"pod2\",\"NonExistentPod\"]}}]}}");
	o.random_pod_delete = true;
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 5, &p), 0);
	CHECK_EQ_INT((int)p.ndel, 3);
	CHECK(has(&p, "pod2") && has(&p, "NonExistentPod") && has(&p, "pod1"));
	rw_raycluster_group_plan_fini(&p);
	/* _NoRandomDelete: only the listed pods. */
	o.random_pod_delete = false;
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 5, &p), 0);
	CHECK_EQ_INT((int)p.ndel, 2);
	CHECK(has(&p, "pod2") && has(&p, "NonExistentPod"));
	CHECK_EQ_INT(p.create, 0);
	rw_raycluster_group_plan_fini(&p);
	rw_raycluster_free(c);

	/* Unhealthy pods are deleted first and nothing is created in that pass. */
	c = parse("{\"spec\":{\"workerGroupSpecs\":[{\"groupName\":\"g\",\"replicas\":5,"
		  "\"minReplicas\":0,\"maxReplicas\":10}]}}");
	pods[3].phase = "Failed";
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 4, &p), 0);
	CHECK(p.unhealthy);
	CHECK_EQ_INT((int)p.ndel, 1);
	CHECK(has(&p, "pod4"));
	CHECK_EQ_INT(p.create, 0);
	rw_raycluster_group_plan_fini(&p);
	pods[3].phase = "Running";
	pods[3].ray_terminated = true;
	pods[3].restart_policy = "Never";
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 4, &p), 0);
	CHECK(p.unhealthy && has(&p, "pod4"));
	rw_raycluster_group_plan_fini(&p);
	pods[3].restart_policy = "Always"; /* the kubelet restarts the container */
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 4, &p), 0);
	CHECK(!p.unhealthy);
	CHECK_EQ_INT(p.create, 1);
	rw_raycluster_group_plan_fini(&p);
	pods[3].ray_terminated = false;
	rw_raycluster_free(c);

	/* Suspended group or cluster: every pod goes. */
	c = parse("{\"spec\":{\"workerGroupSpecs\":[{\"groupName\":\"g\",\"replicas\":5,"
		  "\"suspend\":true}]}}");
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 5, &p), 0);
	CHECK_EQ_INT((int)p.ndel, 5);
	CHECK_EQ_INT(p.desired, 0);
	rw_raycluster_group_plan_fini(&p);
	rw_raycluster_free(c);
	c = parse("{\"spec\":{\"suspend\":true,\"workerGroupSpecs\":[{\"groupName\":\"g\","
		  "\"replicas\":5}]}}");
	CHECK_EQ_INT(rw_raycluster_plan_group(c, &o, 0, pods, 5, &p), 0);
	CHECK_EQ_INT((int)p.ndel, 5);
	rw_raycluster_group_plan_fini(&p);
	rw_raycluster_free(c);
}

static void
t_plan_head(void)
{
	struct rw_raycluster_pod h[] = {
	    {"head-1", "headgroup", RW_RAYCLUSTER_NT_HEAD, "Running", true, true, NULL, NULL,
	     "10.0.0.2", false, false, "Always"},
	    {"head-2", "headgroup", RW_RAYCLUSTER_NT_HEAD, "Running", true, true, NULL, NULL,
	     "10.0.0.3", false, false, "Always"},
	};
	const char *name;
	char reason[512];
	struct rw_raycluster *c = parse("{\"metadata\":{\"name\":\"c\"}}");
	struct rw_raycluster *sc = parse("{\"metadata\":{\"name\":\"c\",\"annotations\":{"
					 "\"ray.io/disable-provisioned-head-restart\":\"true\"}}}");

	CHECK_EQ_INT(rw_raycluster_plan_head(c, h, 0, false, &name), RW_RAYCLUSTER_HEAD_CREATE);
	CHECK_EQ_INT(rw_raycluster_plan_head(c, h, 1, false, &name), RW_RAYCLUSTER_HEAD_OK);
	CHECK_EQ_INT(rw_raycluster_plan_head(c, h, 2, false, &name), RW_RAYCLUSTER_HEAD_MANY);
	h[0].phase = "Failed";
	CHECK_EQ_INT(rw_raycluster_plan_head(c, h, 1, false, &name), RW_RAYCLUSTER_HEAD_DELETE);
	CHECK_EQ_STR(name, "head-1");
	CHECK_EQ_INT(rw_raycluster_plan_head(sc, h, 1, true, &name), RW_RAYCLUSTER_HEAD_OK);
	CHECK_EQ_INT(rw_raycluster_plan_head(sc, h, 1, false, &name), RW_RAYCLUSTER_HEAD_DELETE);
	CHECK(rw_raycluster_should_delete_pod(&h[0], true, reason, sizeof(reason)));
	CHECK_EQ_STR(reason, "The head Pod head-1 status is Failed which is a terminal state. "
			     "KubeRay will delete the Pod and create new Pods in the next "
			     "reconciliation if necessary.");
	h[0].phase = "Succeeded";
	CHECK(rw_raycluster_should_delete_pod(&h[0], true, NULL, 0));
	h[0].phase = "Running";
	h[0].ray_terminated = true;
	h[0].restart_policy = "Never";
	CHECK_EQ_INT(rw_raycluster_plan_head(c, h, 1, false, &name), RW_RAYCLUSTER_HEAD_DELETE);
	h[0].restart_policy = "OnFailure";
	CHECK_EQ_INT(rw_raycluster_plan_head(c, h, 1, false, &name), RW_RAYCLUSTER_HEAD_OK);
	h[0].phase = "Pending";
	CHECK(!rw_raycluster_should_delete_pod(&h[0], true, NULL, 0));
	rw_raycluster_free(c);
	rw_raycluster_free(sc);

	/* The pod summary parser. */
	static const char pod[] =
	    "{\"metadata\":{\"name\":\"p\",\"labels\":{\"ray.io/group\":\"g\",\"ray.io/node-type\":"
	    "\"worker\"},\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},\"spec\":{"
	    "\"restartPolicy\":"
	    "\"Never\",\"containers\":[{\"name\":\"ray\"},{\"name\":\"raywarden-agent\"}]},"
	    "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.1.2.3\",\"conditions\":[{\"type\":"
	    "\"Ready\",\"status\":\"False\",\"reason\":\"ContainersNotReady\",\"message\":\"m\"}],"
	    "\"containerStatuses\":[{\"name\":\"raywarden-agent\",\"state\":{\"running\":{}}},"
	    "{\"name\":\"ray\",\"state\":{\"terminated\":{\"exitCode\":1}}}]}}";
	struct rw_raycluster_pod_buf pb;
	CHECK_EQ_INT(rw_raycluster_pod_parse(pod, sizeof(pod) - 1, &pb), 0);
	CHECK_EQ_STR(pb.pod.name, "p");
	CHECK_EQ_STR(pb.pod.group, "g");
	CHECK_EQ_INT(pb.pod.type, RW_RAYCLUSTER_NT_WORKER);
	CHECK(pb.pod.deleting && pb.pod.ray_terminated && pb.pod.ready_cond && !pb.pod.ready);
	CHECK_EQ_STR(pb.pod.ready_reason, "ContainersNotReady");
	CHECK_EQ_STR(pb.pod.pod_ip, "10.1.2.3");
	CHECK(rw_raycluster_should_delete_pod(&pb.pod, false, NULL, 0));
}

static const char cluster_json[] =
    "{\"metadata\":{\"name\":\"rc\",\"namespace\":\"ns\",\"generation\":%d},\"spec\":{%s"
    "\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"h\",\"resources\":{"
    "\"requests\":{\"cpu\":\"500m\",\"memory\":\"2Gi\"},\"limits\":{\"cpu\":\"1\",\"memory\":"
    "\"4Gi\"}}}]}}},\"workerGroupSpecs\":[{\"groupName\":\"g\",\"replicas\":2,\"minReplicas\":"
    "1,\"maxReplicas\":4,\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\",\"resources\":"
    "{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\",\"nvidia.com/gpu\":\"3\",\"google.com/tpu\":"
    "\"4\"}}}]}}}]}%s}";

/* Run rw_raycluster_status on cluster text with a previous status; returns the new status tree. */
static struct rw_doc_node *
status(const char *spec_extra, const char *old_status, const struct rw_raycluster_status_in *in,
       int *rv)
{
	char json[4096], st[2048];
	struct rw_raycluster *c;
	struct rw_buf b;
	struct rw_doc_node *n = NULL;
	char err[256] = "";
	snprintf(st, sizeof(st), "%s%s", old_status ? ",\"status\":" : "",
		 old_status ? old_status : "");
	snprintf(json, sizeof(json), cluster_json, 3, spec_extra, st);
	c = parse(json);
	rw_buf_init(&b, 1 << 20);
	*rv = rw_raycluster_status(c, in, &b, err, sizeof(err));
	if (*rv == 0)
		CHECK_EQ_INT(rw_doc_parse(b.data, b.len, &n, NULL, 0), 0);
	rw_buf_fini(&b);
	rw_raycluster_free(c);
	return n;
}

static struct rw_doc_node *
cond(const struct rw_doc_node *st, const char *type)
{
	struct rw_doc_node *cs = rw_doc_get(st, "conditions");
	for (int i = 0; cs && i < cs->n; i++)
		if (strcmp(rw_doc_gets(cs->kids[i], "type"), type) == 0)
			return cs->kids[i];
	return NULL;
}

static const char *
cs(const struct rw_doc_node *st, const char *type, const char *field)
{
	return rw_doc_gets(cond(st, type), field);
}

static int64_t
num(const struct rw_doc_node *o, const char *k)
{
	int64_t v = 0;
	rw_doc_int(rw_doc_get(o, k), &v);
	return v;
}

static void
t_status(void)
{
	struct rw_raycluster_pod pods[3] = {
	    {"rc-head-x", "headgroup", RW_RAYCLUSTER_NT_HEAD, "Pending", true, false,
	     "ContainersNotReady", "containers with unready status: [h]", "", false, false,
	     "Always"},
	    {"rc-g-worker-a", "g", RW_RAYCLUSTER_NT_WORKER, "Pending", false, false, NULL, NULL, "",
	     false, false, "Always"},
	    {"rc-g-worker-b", "g", RW_RAYCLUSTER_NT_WORKER, "Pending", false, false, NULL, NULL, "",
	     false, false, "Always"},
	};
	struct rw_raycluster_svc_port ports[] = {{"dashboard", 0, 8265, NULL},
						 {"gcs-server", 0, 6379, NULL},
						 {"client", 30001, 10001, NULL},
						 {"", 0, 1, NULL}};
	struct rw_raycluster_svc svc = {"rc-head-svc", "None", ports, 4};
	struct rw_raycluster_status_in in = {
	    pods, 3, &svc, false, NULL, NULL, "2026-01-01T00:00:00Z"};
	struct rw_buf b1, b2;
	int rv;

	/* 1. Fresh cluster, pods pending. */
	struct rw_doc_node *s1 = status("", NULL, &in, &rv);
	CHECK_EQ_INT(rv, 0);
	CHECK(rw_doc_get(s1, "state") == NULL);
	CHECK_EQ_INT(num(s1, "observedGeneration"), 3);
	CHECK_EQ_INT(num(s1, "desiredWorkerReplicas"), 2);
	CHECK_EQ_INT(num(s1, "minWorkerReplicas"), 1);
	CHECK_EQ_INT(num(s1, "maxWorkerReplicas"), 4);
	CHECK(rw_doc_get(s1, "readyWorkerReplicas") == NULL);
	CHECK_EQ_STR(rw_doc_gets(s1, "desiredCPU"), "2500m");
	CHECK_EQ_STR(rw_doc_gets(s1, "desiredMemory"), "4Gi");
	CHECK_EQ_STR(rw_doc_gets(s1, "desiredGPU"), "6");
	CHECK_EQ_STR(rw_doc_gets(s1, "desiredTPU"), "8");
	CHECK_EQ_STR(cs(s1, "HeadPodReady", "status"), "False");
	CHECK_EQ_STR(cs(s1, "HeadPodReady", "reason"), "ContainersNotReady");
	CHECK_EQ_STR(cs(s1, "RayClusterProvisioned", "status"), "False");
	CHECK_EQ_STR(cs(s1, "RayClusterProvisioned", "reason"), "RayClusterPodsProvisioning");
	CHECK_EQ_STR(cs(s1, "RayClusterSuspended", "status"), "False");
	CHECK_EQ_STR(cs(s1, "RayClusterSuspending", "status"), "False");
	CHECK(cond(s1, "RayClusterReplicaFailure") == NULL);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s1, "endpoints"), "dashboard"), "8265");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s1, "endpoints"), "client"), "30001");
	CHECK_EQ_INT(rw_doc_get(s1, "endpoints")->n, 3);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s1, "head"), "podName"), "rc-head-x");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s1, "head"), "serviceName"), "rc-head-svc");
	CHECK(rw_doc_gets(rw_doc_get(s1, "head"), "serviceIP") == NULL); /* headless, no pod IP */
	CHECK_EQ_STR(rw_doc_gets(s1, "lastUpdateTime"), "2026-01-01T00:00:00Z");

	/* 2. Everything running and ready: state ready, provisioned, times. */
	for (int i = 0; i < 3; i++) {
		pods[i].phase = "Running";
		pods[i].ready_cond = true;
		pods[i].ready = true;
		pods[i].ready_reason = "";
		pods[i].ready_message = "";
	}
	pods[0].pod_ip = "10.0.0.9";
	rw_buf_init(&b1, 1 << 20);
	rw_doc_dump(s1, &b1);
	in.now = "2026-01-01T00:01:00Z";
	struct rw_doc_node *s2 = status("", b1.data, &in, &rv);
	CHECK_EQ_INT(rv, 0);
	CHECK_EQ_STR(rw_doc_gets(s2, "state"), "ready");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s2, "stateTransitionTimes"), "ready"),
		     "2026-01-01T00:01:00Z");
	CHECK_EQ_INT(num(s2, "readyWorkerReplicas"), 2);
	CHECK_EQ_INT(num(s2, "availableWorkerReplicas"), 2);
	CHECK_EQ_STR(cs(s2, "HeadPodReady", "status"), "True");
	CHECK_EQ_STR(cs(s2, "HeadPodReady", "reason"), "HeadPodRunningAndReady");
	CHECK_EQ_STR(cs(s2, "HeadPodReady", "lastTransitionTime"), "2026-01-01T00:01:00Z");
	CHECK_EQ_STR(cs(s2, "RayClusterProvisioned", "status"), "True");
	CHECK_EQ_STR(cs(s2, "RayClusterProvisioned", "reason"), "AllPodRunningAndReadyFirstTime");
	CHECK_EQ_STR(cs(s2, "RayClusterProvisioned", "message"),
		     "All Ray Pods are ready for the first time");
	/* Unchanged condition keeps its transition time. */
	CHECK_EQ_STR(cs(s2, "RayClusterSuspended", "lastTransitionTime"), "2026-01-01T00:00:00Z");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s2, "head"), "serviceIP"), "10.0.0.9");

	/* 3. A worker turns unready: ready stays (sticky); provisioned stays True. */
	pods[2].ready = false;
	rw_buf_reset(&b1);
	rw_doc_dump(s2, &b1);
	in.now = "2026-01-01T00:02:00Z";
	struct rw_doc_node *s3 = status("", b1.data, &in, &rv);
	CHECK_EQ_STR(rw_doc_gets(s3, "state"), "ready");
	CHECK_EQ_INT(num(s3, "readyWorkerReplicas"), 1);
	CHECK_EQ_STR(cs(s3, "RayClusterProvisioned", "status"), "True");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s3, "stateTransitionTimes"), "ready"),
		     "2026-01-01T00:01:00Z");
	pods[2].ready = true;

	/* Equality ignores lastUpdateTime only. */
	rw_buf_init(&b2, 1 << 20);
	in.now = "2026-01-01T00:03:00Z";
	struct rw_doc_node *s4 = status("", b1.data, &in, &rv);
	rw_doc_dump(s4, &b2);
	CHECK(rw_raycluster_status_equal(b1.data, b1.len, b2.data, b2.len));
	rw_buf_reset(&b2);
	rw_doc_dump(s3, &b2);
	CHECK(!rw_raycluster_status_equal(b1.data, b1.len, b2.data, b2.len));
	CHECK(rw_raycluster_status_equal(NULL, 0, "{}", 2));
	CHECK(!rw_raycluster_status_equal("{", 1, "{", 1));

	/* 4. Replica failure while reconciling, then cleared. */
	in.reconcile_failed = true;
	in.failure_reason = "FailedCreateWorkerPod";
	in.failure_message = "pods \"x\" is forbidden";
	struct rw_doc_node *s5 = status("", b1.data, &in, &rv);
	CHECK_EQ_STR(cs(s5, "RayClusterReplicaFailure", "status"), "True");
	CHECK_EQ_STR(cs(s5, "RayClusterReplicaFailure", "reason"), "FailedCreateWorkerPod");
	CHECK_EQ_STR(cs(s5, "RayClusterReplicaFailure", "message"), "pods \"x\" is forbidden");
	rw_buf_reset(&b2);
	rw_doc_dump(s5, &b2);
	in.reconcile_failed = false;
	struct rw_doc_node *s6 = status("", b2.data, &in, &rv);
	CHECK(cond(s6, "RayClusterReplicaFailure") == NULL);

	/* 5. Suspend: Suspending while pods remain, then Suspended and state suspended. */
	rw_buf_reset(&b2);
	rw_doc_dump(s6, &b2);
	struct rw_doc_node *s7 = status("\"suspend\":true,", b2.data, &in, &rv);
	CHECK_EQ_STR(cs(s7, "RayClusterSuspending", "status"), "True");
	CHECK_EQ_STR(rw_doc_gets(s7, "state"), "ready");
	rw_buf_reset(&b2);
	rw_doc_dump(s7, &b2);
	in.npods = 0;
	struct rw_doc_node *s8 = status("\"suspend\":true,", b2.data, &in, &rv);
	CHECK_EQ_STR(cs(s8, "RayClusterSuspending", "status"), "False");
	CHECK_EQ_STR(cs(s8, "RayClusterSuspended", "status"), "True");
	CHECK_EQ_STR(cs(s8, "RayClusterProvisioned", "status"), "False");
	CHECK_EQ_STR(cs(s8, "RayClusterProvisioned", "message"), "RayCluster has been suspended");
	CHECK_EQ_STR(cs(s8, "HeadPodReady", "reason"), "HeadPodNotFound");
	CHECK_EQ_STR(rw_doc_gets(s8, "state"), "suspended");
	CHECK(rw_doc_gets(rw_doc_get(s8, "stateTransitionTimes"), "suspended") != NULL);
	rw_buf_reset(&b2);
	rw_doc_dump(s8, &b2);
	struct rw_doc_node *s9 = status("\"suspend\":false,", b2.data, &in, &rv);
	CHECK_EQ_STR(cs(s9, "RayClusterSuspended", "status"), "False");
	CHECK_EQ_STR(rw_doc_gets(s9, "state"), "suspended"); /* until ready again */
	CHECK_EQ_STR(cs(s9, "RayClusterProvisioned", "status"), "False");

	/* 6. Errors KubeRay answers by not writing a status. */
	in.npods = 3;
	in.head_svc = NULL;
	CHECK(status("", NULL, &in, &rv) == NULL);
	CHECK_EQ_INT(rv, -ENOENT);
	in.head_svc = &svc;
	pods[1].type = RW_RAYCLUSTER_NT_HEAD;
	CHECK(status("", NULL, &in, &rv) == NULL);
	CHECK_EQ_INT(rv, -ENOTUNIQ);
	pods[1].type = RW_RAYCLUSTER_NT_WORKER;
	svc.cluster_ip = "10.96.0.5";
	struct rw_doc_node *s10 = status("", NULL, &in, &rv);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s10, "head"), "serviceIP"), "10.96.0.5");

	rw_buf_fini(&b1);
	rw_buf_fini(&b2);
	struct rw_doc_node *all[] = {s1, s2, s3, s4, s5, s6, s7, s8, s9, s10};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		rw_doc_free(all[i]);
}

static void
t_svc_parse(void)
{
	static const char svc[] =
	    "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"clusterIP\":\"None\",\"ports\":[{\"name\":"
	    "\"a\",\"port\":1,\"targetPort\":2},{\"name\":\"b\",\"port\":3,\"targetPort\":"
	    "\"named\","
	    "\"nodePort\":30000}]}}";
	struct rw_raycluster_svc_buf sb;
	CHECK_EQ_INT(rw_raycluster_svc_parse(svc, sizeof(svc) - 1, &sb), 0);
	CHECK_EQ_STR(sb.svc.name, "s");
	CHECK_EQ_STR(sb.svc.cluster_ip, "None");
	CHECK_EQ_INT((int)sb.svc.nports, 2);
	CHECK_EQ_INT(sb.svc.ports[0].target_port, 2);
	CHECK_EQ_STR(sb.svc.ports[1].target_port_str, "named");
	CHECK_EQ_INT(sb.svc.ports[1].node_port, 30000);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"desired replica math", t_desired},
	    {"worker group plan", t_plan_group},
	    {"head pod plan and pod summaries", t_plan_head},
	    {"status transitions", t_status},
	    {"service summaries", t_svc_parse},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

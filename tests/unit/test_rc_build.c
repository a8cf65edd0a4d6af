/*
 * test_rc_build.c - the RayCluster builders against KubeRay's own test
 * expectations (shared/reference/kuberay.md section 6: pod_test.go,
 * service_test.go, util_test.go), plus the agent sidecar, GCS fault
 * tolerance, names and the spec hash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_build.h"
#include "doc.h"
#include "rwtest.h"

/* A RayCluster in the shape of pod_test.go's fixture (cluster raycluster-sample, ns default). */
static const char *const base_cluster =
    "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\","
    "\"metadata\":{\"name\":\"raycluster-sample\",\"namespace\":\"default\",\"uid\":\"uid-1\"},"
    "\"spec\":{\"rayVersion\":\"2.52.0\",\"headGroupSpec\":{\"rayStartParams\":{},"
    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-head\",\"image\":\"rayproject/ray\","
    "\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"requests\":{\"cpu\":\"1\","
    "\"memory\":\"1Gi\"}},\"env\":[{\"name\":\"TEST_ENV_NAME\",\"value\":\"TEST_ENV_VALUE\"}]}]}}},"
    "\"workerGroupSpecs\":[{\"groupName\":\"small-group\",\"replicas\":3,\"minReplicas\":0,"
    "\"maxReplicas\":10000,\"numOfHosts\":1,\"rayStartParams\":{\"port\":\"6379\"},"
    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-worker\",\"image\":\"rayproject/ray\","
    "\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\",\"nvidia.com/gpu\":\"3\"},"
    "\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}},\"env\":[{\"name\":\"TEST_ENV_NAME\","
    "\"value\":\"TEST_ENV_VALUE\"}]}]}}}]}}";

static struct rw_raycluster *
cluster_from(const char *json)
{
	struct rw_raycluster *c = NULL;
	char err[256] = "";
	int rv = rw_raycluster_parse(json, strlen(json), &c, err, sizeof(err));
	if (rv)
		fprintf(stderr, "  cluster parse: %d %s\n", rv, err);
	CHECK_EQ_INT(rv, 0);
	return c;
}

/* Apply an edit to the base cluster: path to an object, key, JSON value. */
struct edit {
	const char *path; /* dotted object path, "" = root; "G" = first worker group */
	const char *key;
	const char *json;
};

static struct rw_raycluster *
cluster_with(const struct edit *edits, size_t n)
{
	struct rw_doc_node *root = NULL, *v;
	struct rw_buf b;
	struct rw_raycluster *c;
	CHECK_EQ_INT(rw_doc_parse(base_cluster, strlen(base_cluster), &root, NULL, 0), 0);
	for (size_t i = 0; i < n; i++) {
		struct rw_doc_node *at = root;
		const char *p = edits[i].path;
		if (strncmp(p, "G", 1) == 0) {
			at = rw_doc_at(rw_doc_path(root, "spec.workerGroupSpecs"), 0);
			p = p[1] == '.' ? p + 2 : p + 1;
		}
		if (*p)
			at = rw_doc_path(at, p);
		CHECK(at != NULL);
		if (!edits[i].json) {
			rw_doc_del(at, edits[i].key);
			continue;
		}
		CHECK_EQ_INT(rw_doc_parse(edits[i].json, strlen(edits[i].json), &v, NULL, 0), 0);
		CHECK_EQ_INT(rw_doc_set(at, edits[i].key, v), 0);
	}
	rw_buf_init(&b, 1 << 20);
	CHECK_EQ_INT(rw_doc_dump(root, &b), 0);
	c = cluster_from(b.data);
	rw_buf_fini(&b);
	rw_doc_free(root);
	return c;
}

static struct rw_raycluster_opts
kuberay_opts(void)
{
	struct rw_raycluster_opts o;
	rw_raycluster_opts_default(&o);
	o.agent = false;
	o.probes = RW_RAYCLUSTER_PROBE_KUBERAY;
	o.version = "nightly";
	return o;
}

static struct rw_doc_node *
head_pod(const struct rw_raycluster *c, const struct rw_raycluster_opts *o)
{
	struct rw_buf b;
	struct rw_doc_node *n = NULL;
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_raycluster_build_head_pod(c, o, &b), 0);
	if (b.data)
		CHECK_EQ_INT(rw_doc_parse(b.data, b.len, &n, NULL, 0), 0);
	rw_buf_fini(&b);
	return n;
}

static struct rw_doc_node *
worker_pod(const struct rw_raycluster *c, const struct rw_raycluster_opts *o)
{
	struct rw_buf b;
	struct rw_doc_node *n = NULL;
	struct rw_raycluster_slot slot = {0, NULL, 0};
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_raycluster_build_worker_pod(c, o, 0, &slot, &b), 0);
	if (b.data)
		CHECK_EQ_INT(rw_doc_parse(b.data, b.len, &n, NULL, 0), 0);
	rw_buf_fini(&b);
	return n;
}

static struct rw_doc_node *
container(const struct rw_doc_node *pod, const char *name)
{
	struct rw_doc_node *cs = rw_doc_path(pod, "spec.containers");
	for (int i = 0; cs && i < cs->n; i++)
		if (name ? rw_doc_gets(cs->kids[i], "name") &&
			       strcmp(rw_doc_gets(cs->kids[i], "name"), name) == 0
			 : i == 0)
			return cs->kids[i];
	return NULL;
}

static const char *
env(const struct rw_doc_node *c, const char *name)
{
	struct rw_doc_node *e = rw_doc_get(c, "env");
	for (int i = 0; e && i < e->n; i++)
		if (rw_doc_gets(e->kids[i], "name") &&
		    strcmp(rw_doc_gets(e->kids[i], "name"), name) == 0) {
			const char *v = rw_doc_gets(e->kids[i], "value");
			return v ? v : "";
		}
	return NULL;
}

/* Env names in order, joined with ','. */
static void
env_names(const struct rw_doc_node *c, char *out, size_t n)
{
	struct rw_doc_node *e = rw_doc_get(c, "env");
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; e && i < e->n && used < n; i++)
		used += (size_t)snprintf(out + used, n - used, "%s%s", i ? "," : "",
					 rw_doc_gets(e->kids[i], "name"));
}

static int
cmp_tok(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Same whitespace-separated tokens, in any order (KubeRay's tests split and sort). */
static int
same_tokens(const char *a, const char *b)
{
	char *x = strdup(a), *y = strdup(b);
	char *ta[128], *tb[128];
	int na = 0, nb = 0, same;
	for (char *s = strtok(x, " "); s && na < 128; s = strtok(NULL, " "))
		ta[na++] = s;
	for (char *s = strtok(y, " "); s && nb < 128; s = strtok(NULL, " "))
		tb[nb++] = s;
	qsort(ta, (size_t)na, sizeof(char *), cmp_tok);
	qsort(tb, (size_t)nb, sizeof(char *), cmp_tok);
	same = na == nb;
	for (int i = 0; same && i < na; i++)
		same = strcmp(ta[i], tb[i]) == 0;
	if (!same)
		fprintf(stderr, "  tokens differ:\n    %s\n    %s\n", a, b);
	free(x);
	free(y);
	return same;
}

static const char *
arg0(const struct rw_doc_node *c)
{
	return rw_doc_str(rw_doc_at(rw_doc_get(c, "args"), 0));
}

/* 1. TestBuildPod: head and worker env. */
static void
t_build_pod_env(void)
{
	struct rw_raycluster *c = cluster_from(base_cluster);
	struct rw_raycluster_opts o = kuberay_opts();
	struct rw_doc_node *h = head_pod(c, &o), *w = worker_pod(c, &o);
	struct rw_doc_node *hc = container(h, NULL), *wc = container(w, NULL);
	char names[1024];

	CHECK_EQ_STR(env(hc, "RAY_ADDRESS"), "127.0.0.1:6379");
	CHECK_EQ_STR(env(hc, "RAY_USAGE_STATS_EXTRA_TAGS"),
		     "kuberay_version=nightly;kuberay_crd=RayCluster");
	CHECK_EQ_STR(env(hc, "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE"), "1");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(h, "metadata.labels"), "ray.io/group"), "headgroup");
	CHECK_EQ_STR(env(wc, "RAY_ADDRESS"),
		     "raycluster-sample-head-svc.default.svc.cluster.local:6379");
	CHECK_EQ_STR(env(wc, "FQ_RAY_IP"), "raycluster-sample-head-svc.default.svc.cluster.local");
	CHECK_EQ_STR(env(wc, "RAY_IP"), "raycluster-sample-head-svc");
	CHECK(env(wc, "RAY_USAGE_STATS_EXTRA_TAGS") == NULL);
	/* The order setContainerEnvVars appends in. */
	env_names(hc, names, sizeof(names));
	CHECK_EQ_STR(names, "TEST_ENV_NAME,RAY_CLUSTER_NAME,RAY_CLUSTER_NAMESPACE,"
			    "RAY_CLOUD_INSTANCE_ID,RAY_NODE_TYPE_NAME,KUBERAY_GEN_RAY_START_CMD,"
			    "RAY_PORT,RAY_ADDRESS,RAY_USAGE_STATS_KUBERAY_IN_USE,"
			    "RAY_USAGE_STATS_EXTRA_TAGS,RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE");
	env_names(wc, names, sizeof(names));
	CHECK_EQ_STR(names, "TEST_ENV_NAME,FQ_RAY_IP,RAY_IP,RAY_CLUSTER_NAME,"
			    "RAY_CLUSTER_NAMESPACE,RAY_CLOUD_INSTANCE_ID,RAY_NODE_TYPE_NAME,"
			    "KUBERAY_GEN_RAY_START_CMD,RAY_PORT,RAY_ADDRESS,"
			    "RAY_USAGE_STATS_KUBERAY_IN_USE,RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE");
	/* Labels and owner. */
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(w, "metadata.labels"), "ray.io/identifier"),
		     "raycluster-sample-worker");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(w, "metadata"), "generateName"),
		     "raycluster-sample-small-group-worker-");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(h, "metadata"), "generateName"),
		     "raycluster-sample-head-");
	struct rw_doc_node *ref = rw_doc_at(rw_doc_path(h, "metadata.ownerReferences"), 0);
	CHECK(rw_doc_true(rw_doc_get(ref, "controller")));
	CHECK(rw_doc_true(rw_doc_get(ref, "blockOwnerDeletion")));
	CHECK_EQ_STR(rw_doc_gets(ref, "uid"), "uid-1");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(h, "metadata.annotations"), "ray.io/ft-enabled"),
		     "false");
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);
}

/* 2 and 3. TestBuildPod worker args/volumes; TestBuildPod_WithUlimitOverride head args. */
static void
t_build_pod_command(void)
{
	struct rw_raycluster *c = cluster_from(base_cluster);
	struct rw_raycluster_opts o = kuberay_opts();
	struct rw_doc_node *h = head_pod(c, &o), *w = worker_pod(c, &o);
	struct rw_doc_node *wc = container(w, NULL), *vols, *m;

	CHECK(same_tokens(arg0(wc),
			  "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start --block "
			  "--dashboard-agent-listen-port=52365 --memory=1073741824 --num-cpus=1 "
			  "--num-gpus=3 --address=raycluster-sample-head-svc.default.svc.cluster."
			  "local:6379 --port=6379 --metrics-export-port=8080"));
	/* Byte for byte: sorted flags, each " --k=v ". */
	CHECK_EQ_STR(arg0(wc),
		     "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start  "
		     "--address=raycluster-sample-head-svc.default.svc.cluster.local:6379 "
		     " --block  --dashboard-agent-listen-port=52365  --memory=1073741824  "
		     "--metrics-export-port=8080  --num-cpus=1  --num-gpus=3  --port=6379 ");
	CHECK_EQ_STR(env(wc, "KUBERAY_GEN_RAY_START_CMD"), strstr(arg0(wc), "ray start"));
	struct rw_doc_node *cmd = rw_doc_get(wc, "command");
	CHECK_EQ_INT(cmd ? cmd->n : 0, 3);
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(cmd, 0)), "/bin/bash");
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(cmd, 1)), "-c");
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(cmd, 2)), "--");
	vols = rw_doc_path(w, "spec.volumes");
	CHECK_EQ_INT(vols ? vols->n : 0, 1);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(vols, 0), "name"), "shared-mem");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(rw_doc_at(vols, 0), "emptyDir"), "medium"), "Memory");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(rw_doc_at(vols, 0), "emptyDir"), "sizeLimit"), "1Gi");
	m = rw_doc_at(rw_doc_get(wc, "volumeMounts"), 0);
	CHECK_EQ_STR(rw_doc_gets(m, "mountPath"), "/dev/shm");
	CHECK_EQ_STR(rw_doc_gets(m, "name"), "shared-mem");
	CHECK(
	    same_tokens(arg0(container(h, NULL)),
			"ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start --head --block "
			"--dashboard-agent-listen-port=52365 --memory=1073741824 --num-cpus=1 "
			"--metrics-export-port=8080 --dashboard-host=0.0.0.0"));
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);

	/* The overwrite annotation keeps the user's command; login shell; user command first. */
	struct edit ed[] = {{"", "metadata",
			     "{\"name\":\"raycluster-sample\",\"namespace\":"
			     "\"default\",\"uid\":\"uid-1\",\"annotations\":{\"ray."
			     "io/overwrite-container-cmd\":\"true\"}}"}};
	c = cluster_with(ed, 1);
	h = head_pod(c, &o);
	CHECK(rw_doc_get(container(h, NULL), "args") == NULL);
	CHECK(env(container(h, NULL), "KUBERAY_GEN_RAY_START_CMD") != NULL);
	CHECK_EQ_STR(
	    rw_doc_gets(rw_doc_path(h, "metadata.annotations"), "ray.io/overwrite-container-cmd"),
	    "true");
	rw_doc_free(h);
	rw_raycluster_free(c);

	struct rw_doc_node *hc0;
	struct rw_raycluster *c2;
	struct rw_doc_node *root = NULL;
	CHECK_EQ_INT(rw_doc_parse(base_cluster, strlen(base_cluster), &root, NULL, 0), 0);
	hc0 = rw_doc_at(rw_doc_path(root, "spec.headGroupSpec.template.spec.containers"), 0);
	rw_doc_parse("[\"echo\",\"hi\"]", 13, &cmd, NULL, 0);
	rw_doc_set(hc0, "command", cmd);
	struct rw_buf b;
	rw_buf_init(&b, 1 << 20);
	rw_doc_dump(root, &b);
	c2 = cluster_from(b.data);
	o.login_shell = true;
	h = head_pod(c2, &o);
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(rw_doc_get(container(h, NULL), "command"), 1)), "-lc");
	CHECK(
	    strncmp(
		arg0(container(h, NULL)),
		" echo  hi  && ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start --head ",
		80) == 0);
	rw_doc_free(h);
	rw_raycluster_free(c2);
	rw_buf_fini(&b);
	rw_doc_free(root);
}

/* 4. The autoscaler container and the head volumes. */
static void
t_autoscaler(void)
{
	struct edit ed[] = {{"spec", "enableInTreeAutoscaling", "true"}};
	struct rw_raycluster *c = cluster_with(ed, 1);
	struct rw_raycluster_opts o = kuberay_opts();
	struct rw_doc_node *h = head_pod(c, &o), *a = container(h, "autoscaler"), *vols;
	char names[512];
	struct rw_buf b;

	CHECK(a != NULL);
	CHECK_EQ_STR(rw_doc_gets(a, "image"), "rayproject/ray");
	CHECK_EQ_STR(rw_doc_gets(a, "imagePullPolicy"), "IfNotPresent");
	env_names(a, names, sizeof(names));
	CHECK_EQ_STR(names, "RAY_CLUSTER_NAME,RAY_CLUSTER_NAMESPACE,RAY_HEAD_POD_NAME,"
			    "KUBERAY_CRD_VER,KUBERAY_GEN_AUTOSCALER_START_CMD");
	CHECK_EQ_STR(env(a, "KUBERAY_CRD_VER"), "v1");
	CHECK_EQ_STR(arg0(a), "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) "
			      "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(a, "resources.limits"), "cpu"), "500m");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(a, "resources.requests"), "memory"), "512Mi");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(rw_doc_get(a, "volumeMounts"), 0), "mountPath"),
		     "/tmp/ray");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(rw_doc_get(a, "volumeMounts"), 0), "name"), "ray-logs");
	vols = rw_doc_path(h, "spec.volumes");
	CHECK_EQ_INT(vols ? vols->n : 0, 2);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(vols, 0), "name"), "shared-mem");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(vols, 1), "name"), "ray-logs");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(h, "spec"), "serviceAccountName"),
		     "raycluster-sample");
	CHECK(strstr(arg0(container(h, NULL)), " --no-monitor ") != NULL);
	rw_buf_init(&b, 1 << 20);
	CHECK_EQ_INT(rw_raycluster_build_role(c, &b), 0);
	CHECK(strstr(b.data, "\"pods/resize\"") != NULL);
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_raycluster_build_role_binding(c, &b), 0);
	CHECK(strstr(b.data, "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":"
			     "\"raycluster-sample\",\"namespace\":\"default\"}]") != NULL);
	rw_buf_fini(&b);
	rw_doc_free(h);
	rw_raycluster_free(c);

	/* v2: env on the Ray container and restartPolicy Never on head and workers. */
	struct edit ed2[] = {{"spec", "enableInTreeAutoscaling", "true"},
			     {"spec", "autoscalerOptions", "{\"version\":\"v2\"}"}};
	c = cluster_with(ed2, 2);
	h = head_pod(c, &o);
	struct rw_doc_node *w = worker_pod(c, &o);
	CHECK_EQ_STR(env(container(h, NULL), "RAY_enable_autoscaler_v2"), "true");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(h, "spec"), "restartPolicy"), "Never");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(w, "spec"), "restartPolicy"), "Never");
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);
}

/* 5. GCS fault tolerance: options and legacy annotation. */
static void
t_gcs_ft(void)
{
	struct rw_raycluster_opts o = kuberay_opts();
	struct edit ed[] = {{"spec", "gcsFaultToleranceOptions",
			     "{\"redisAddress\":\"redis:6379\",\"redisPassword\":{\"value\":"
			     "\"5241590000000000\"}}"}};
	struct rw_raycluster *c = cluster_with(ed, 1);
	struct rw_doc_node *h = head_pod(c, &o), *w = worker_pod(c, &o);
	struct rw_doc_node *hc = container(h, NULL), *wc = container(w, NULL);
	struct rw_doc_node *an = rw_doc_path(h, "metadata.annotations");

	CHECK_EQ_STR(rw_doc_gets(an, "ray.io/ft-enabled"), "true");
	CHECK_EQ_STR(rw_doc_gets(an, "ray.io/external-storage-namespace"), "uid-1");
	CHECK_EQ_STR(env(hc, "RAY_external_storage_namespace"), "uid-1");
	CHECK_EQ_STR(env(hc, "RAY_REDIS_ADDRESS"), "redis:6379");
	CHECK_EQ_STR(env(hc, "REDIS_PASSWORD"), "5241590000000000");
	CHECK(env(hc, "RAY_gcs_rpc_server_reconnect_timeout_s") == NULL);
	CHECK(strstr(arg0(hc), " --redis-password=$REDIS_PASSWORD ") != NULL);
	CHECK_EQ_STR(env(wc, "RAY_gcs_rpc_server_reconnect_timeout_s"), "600");
	CHECK(env(wc, "RAY_REDIS_ADDRESS") == NULL);
	CHECK(env(wc, "REDIS_PASSWORD") == NULL);
	CHECK(rw_doc_gets(rw_doc_path(w, "metadata.annotations"), "ray.io/ft-enabled") == NULL);
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);

	/* valueFrom kept; explicit storage namespace; worker timeout set by the user. */
	struct edit ed2[] = {
	    {"spec", "gcsFaultToleranceOptions",
	     "{\"redisAddress\":\"redis:6379\",\"externalStorageNamespace\":\"my-ns\","
	     "\"redisPassword\":{\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}},"
	     "\"redisUsername\":{\"value\":\"u\"}}"},
	};
	c = cluster_with(ed2, 1);
	h = head_pod(c, &o);
	hc = container(h, NULL);
	CHECK_EQ_STR(env(hc, "RAY_external_storage_namespace"), "my-ns");
	CHECK_EQ_STR(env(hc, "REDIS_USERNAME"), "u");
	CHECK(strstr(arg0(hc), " --redis-username=$REDIS_USERNAME ") != NULL);
	struct rw_doc_node *e = rw_doc_get(hc, "env");
	int found = 0;
	for (int i = 0; e && i < e->n; i++)
		if (strcmp(rw_doc_gets(e->kids[i], "name"), "REDIS_PASSWORD") == 0) {
			found = 1;
			CHECK_EQ_STR(
			    rw_doc_gets(rw_doc_path(e->kids[i], "valueFrom.secretKeyRef"), "name"),
			    "s");
			CHECK(rw_doc_get(e->kids[i], "value") == NULL);
		}
	CHECK(found);
	rw_doc_free(h);
	rw_raycluster_free(c);

	/* Legacy annotation, storage namespace from the annotation, password param. */
	struct edit ed3[] = {
	    {"", "metadata",
	     "{\"name\":\"raycluster-sample\",\"namespace\":\"default\",\"uid\":\"uid-1\","
	     "\"annotations\":{\"ray.io/ft-enabled\":\"true\",\"ray.io/external-storage-"
	     "namespace\":\"legacy-ns\"}}"},
	    {"spec.headGroupSpec", "rayStartParams", "{\"redis-password\":\"pw\"}"},
	};
	c = cluster_with(ed3, 2);
	h = head_pod(c, &o);
	w = worker_pod(c, &o);
	hc = container(h, NULL);
	CHECK_EQ_STR(env(hc, "RAY_external_storage_namespace"), "legacy-ns");
	CHECK_EQ_STR(env(hc, "REDIS_PASSWORD"), "pw");
	CHECK(env(hc, "RAY_REDIS_ADDRESS") == NULL);
	CHECK_EQ_STR(env(container(w, NULL), "RAY_gcs_rpc_server_reconnect_timeout_s"), "600");
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);

	/* A user-set reconnect timeout on the worker is kept. */
	struct edit ed4[] = {
	    {"spec", "gcsFaultToleranceOptions", "{\"redisAddress\":\"redis:6379\"}"},
	    {"G.template.spec", "containers",
	     "[{\"name\":\"w\",\"image\":\"i\",\"env\":[{\"name\":"
	     "\"RAY_gcs_rpc_server_reconnect_timeout_s\",\"value\":\"60\"}]}]"},
	};
	c = cluster_with(ed4, 2);
	w = worker_pod(c, &o);
	CHECK_EQ_STR(env(container(w, NULL), "RAY_gcs_rpc_server_reconnect_timeout_s"), "60");
	rw_doc_free(w);
	rw_raycluster_free(c);
}

static struct rw_doc_node *
probe(const struct rw_doc_node *c, const char *which)
{
	return rw_doc_get(c, which);
}

static const char *
probe_cmd(const struct rw_doc_node *p)
{
	return rw_doc_str(rw_doc_at(rw_doc_path(p, "exec.command"), 2));
}

static int64_t
probe_int(const struct rw_doc_node *p, const char *k)
{
	int64_t v = -1;
	rw_doc_int(rw_doc_get(p, k), &v);
	return v;
}

/* 6. TestInitLivenessAndReadinessProbe (agent injection off). */
static void
t_probes_kuberay(void)
{
	struct rw_raycluster_opts o = kuberay_opts();
	struct rw_raycluster *c = cluster_from(base_cluster);
	struct rw_doc_node *h = head_pod(c, &o), *w = worker_pod(c, &o);
	struct rw_doc_node *hr = probe(container(h, NULL), "readinessProbe");
	struct rw_doc_node *hl = probe(container(h, NULL), "livenessProbe");
	struct rw_doc_node *wr = probe(container(w, NULL), "readinessProbe");
	struct rw_doc_node *wl = probe(container(w, NULL), "livenessProbe");
	static const char raylet[] =
	    "wget --tries 1 -T 2 -q -O- http://localhost:52365/api/local_raylet_healthz | grep "
	    "success";
	static const char gcs[] =
	    "wget --tries 1 -T 10 -q -O- http://localhost:8265/api/gcs_healthz "
	    "| grep success";
	char both[512];

	snprintf(both, sizeof(both), "%s && %s", raylet, gcs);
	CHECK_EQ_STR(probe_cmd(hr), both);
	CHECK_EQ_STR(probe_cmd(hl), both);
	CHECK_EQ_STR(probe_cmd(wr), raylet);
	CHECK_EQ_STR(probe_cmd(wl), raylet);
	CHECK_EQ_INT(probe_int(hr, "timeoutSeconds"), 5);
	CHECK_EQ_INT(probe_int(hl, "timeoutSeconds"), 5);
	CHECK_EQ_INT(probe_int(wr, "timeoutSeconds"), 2);
	CHECK_EQ_INT(probe_int(wl, "timeoutSeconds"), 2);
	CHECK_EQ_INT(probe_int(hr, "initialDelaySeconds"), 10);
	CHECK_EQ_INT(probe_int(hl, "initialDelaySeconds"), 30);
	CHECK_EQ_INT(probe_int(hr, "failureThreshold"), 10);
	CHECK_EQ_INT(probe_int(hl, "failureThreshold"), 120);
	CHECK_EQ_INT(probe_int(wr, "periodSeconds"), 5);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(h, "metadata"), "generateName"),
		     "raycluster-sample-head-");
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);

	/* Custom ports from rayStartParams; RayService worker readiness gets the proxy check. */
	struct edit ed[] = {
	    {"", "metadata",
	     "{\"name\":\"raycluster-sample\",\"namespace\":\"default\",\"uid\":\"uid-1\","
	     "\"labels\":{\"ray.io/originated-from-crd\":\"RayService\"}}"},
	    {"spec.headGroupSpec", "rayStartParams",
	     "{\"dashboard-agent-listen-port\":\"8888\",\"dashboard-port\":\"9999\"}"},
	    {"G", "rayStartParams", "{\"dashboard-agent-listen-port\":\"8888\"}"},
	};
	c = cluster_with(ed, 3);
	h = head_pod(c, &o);
	w = worker_pod(c, &o);
	CHECK(strstr(probe_cmd(probe(container(h, NULL), "readinessProbe")),
		     "localhost:8888/api/local_raylet_healthz") != NULL);
	CHECK(strstr(probe_cmd(probe(container(h, NULL), "readinessProbe")),
		     "localhost:9999/api/gcs_healthz") != NULL);
	CHECK(strstr(probe_cmd(probe(container(h, NULL), "readinessProbe")), "-/healthz") == NULL);
	wr = probe(container(w, NULL), "readinessProbe");
	CHECK_EQ_STR(
	    probe_cmd(wr),
	    "wget --tries 1 -T 2 -q -O- http://localhost:8888/api/local_raylet_healthz | "
	    "grep success && wget --tries 1 -T 10 -q -O- http://localhost:8000/-/healthz | "
	    "grep success");
	CHECK_EQ_INT(probe_int(wr, "failureThreshold"), 1);
	CHECK(strstr(probe_cmd(probe(container(w, NULL), "livenessProbe")), "-/healthz") == NULL);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(w, "metadata.labels"), "ray.io/serve"), "true");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(h, "metadata.labels"), "ray.io/serve"), "false");
	CHECK_EQ_STR(env(container(h, NULL), "RAY_USAGE_STATS_EXTRA_TAGS"),
		     "kuberay_version=nightly;kuberay_crd=RayService");
	CHECK_EQ_STR(env(container(w, NULL), "RAY_timeout_ms_task_wait_for_death_info"), "0");
	CHECK_EQ_STR(env(container(w, NULL), "RAY_gcs_server_request_timeout_seconds"), "5");
	CHECK_EQ_STR(env(container(w, NULL), "RAY_SERVE_KV_TIMEOUT_S"), "5");
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);

	/* rayVersion 2.53.0: httpGet /api/healthz on the agent port; RayService worker readiness
	 * stays exec. */
	struct edit ed2[] = {
	    {"", "metadata",
	     "{\"name\":\"raycluster-sample\",\"namespace\":\"default\",\"uid\":\"uid-1\","
	     "\"labels\":{\"ray.io/originated-from-crd\":\"RayService\"}}"},
	    {"spec", "rayVersion", "\"2.53.0\""},
	};
	c = cluster_with(ed2, 2);
	h = head_pod(c, &o);
	w = worker_pod(c, &o);
	hr = probe(container(h, NULL), "readinessProbe");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(hr, "httpGet"), "path"), "/api/healthz");
	CHECK_EQ_INT(probe_int(rw_doc_get(hr, "httpGet"), "port"), 52365);
	CHECK(rw_doc_get(hr, "exec") == NULL);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(container(w, NULL), "livenessProbe.httpGet"), "path"),
		     "/api/healthz");
	CHECK(probe_cmd(probe(container(w, NULL), "readinessProbe")) != NULL);
	CHECK(rw_doc_path(container(w, NULL), "readinessProbe.httpGet") == NULL);
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);

	/* User probes are left alone; ENABLE_PROBES_INJECTION=false adds none. */
	struct rw_doc_node *root = NULL;
	rw_doc_parse(base_cluster, strlen(base_cluster), &root, NULL, 0);
	struct rw_doc_node *hc0 =
	    rw_doc_at(rw_doc_path(root, "spec.headGroupSpec.template.spec.containers"), 0);
	struct rw_doc_node *up = NULL;
	rw_doc_parse("{\"httpGet\":{\"path\":\"/custom\",\"port\":1}}", 39, &up, NULL, 0);
	rw_doc_set(hc0, "readinessProbe", up);
	struct rw_buf b;
	rw_buf_init(&b, 1 << 20);
	rw_doc_dump(root, &b);
	c = cluster_from(b.data);
	h = head_pod(c, &o);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(container(h, NULL), "readinessProbe.httpGet"), "path"),
		     "/custom");
	CHECK(probe_cmd(probe(container(h, NULL), "livenessProbe")) != NULL);
	rw_doc_free(h);
	o.probes_injection = false;
	h = head_pod(c, &o);
	CHECK(rw_doc_get(container(h, NULL), "livenessProbe") == NULL);
	rw_doc_free(h);
	rw_raycluster_free(c);
	rw_buf_fini(&b);
	rw_doc_free(root);

	CHECK(rw_raycluster_unified_health_check("2.53.0"));
	CHECK(rw_raycluster_unified_health_check("v2.53"));
	CHECK(rw_raycluster_unified_health_check("3.0.0"));
	CHECK(rw_raycluster_unified_health_check("2.100.1rc1"));
	CHECK(!rw_raycluster_unified_health_check("2.52.0"));
	CHECK(!rw_raycluster_unified_health_check(""));
	CHECK(!rw_raycluster_unified_health_check("nightly"));
	CHECK(!rw_raycluster_unified_health_check("2"));
	CHECK(!rw_raycluster_unified_health_check("02.53.0"));
}

/* The agent sidecar: container, env, key volume, probes, readiness gate. */
static void
t_agent(void)
{
	struct rw_raycluster_opts o;
	struct rw_raycluster *c = cluster_from(base_cluster);
	struct rw_doc_node *h, *w, *a, *r, *l;
	char names[1024];

	rw_raycluster_opts_default(&o);
	o.controller_addr = "tcp://raywarden-controller.raywarden-system.svc:8478";
	h = head_pod(c, &o);
	w = worker_pod(c, &o);
	a = container(h, RW_RAYCLUSTER_AGENT_CONTAINER);
	CHECK(a != NULL);
	env_names(a, names, sizeof(names));
	CHECK_EQ_STR(names,
		     "RAYWARDEN_POD_NAME,RAYWARDEN_POD_NAMESPACE,RAYWARDEN_POD_UID,"
		     "RAYWARDEN_POD_IP,RAYWARDEN_LISTEN_HOST,RAYWARDEN_CLUSTER,RAYWARDEN_GROUP,"
		     "RAYWARDEN_NODE_TYPE,"
		     "RAYWARDEN_RAYSERVICE,RAYWARDEN_PROXY_READINESS,RAYWARDEN_CONTROLLER,"
		     "RAYWARDEN_KEY_FILE,RAYWARDEN_PORT,RAYWARDEN_RAYLET_PORT,"
		     "RAYWARDEN_DASHBOARD_PORT,RAYWARDEN_SERVE_PORT,RAYWARDEN_LIVENESS_GRACE_S");
	CHECK_EQ_STR(env(a, "RAYWARDEN_NODE_TYPE"), "head");
	CHECK_EQ_STR(env(container(w, RW_RAYCLUSTER_AGENT_CONTAINER), "RAYWARDEN_NODE_TYPE"),
		     "worker");
	CHECK_EQ_STR(env(a, "RAYWARDEN_KEY_FILE"), "/etc/raywarden/key/key");
	CHECK_EQ_STR(env(a, "RAYWARDEN_CONTROLLER"), o.controller_addr);
	CHECK_EQ_STR(rw_doc_gets(a, "image"), RW_RAYCLUSTER_DEFAULT_AGENT_IMAGE);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(a, "resources.requests"), "cpu"), "10m");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(a, "resources.limits"), "memory"), "64Mi");
	CHECK_EQ_INT(probe_int(rw_doc_at(rw_doc_get(a, "ports"), 0), "containerPort"), 8477);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(rw_doc_get(a, "ports"), 0), "name"), "rw-agent");
	/* The Ray container's probes go to the agent. */
	r = probe(container(h, NULL), "readinessProbe");
	l = probe(container(h, NULL), "livenessProbe");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(r, "httpGet"), "path"), "/readyz");
	CHECK_EQ_INT(probe_int(rw_doc_get(r, "httpGet"), "port"), 8477);
	CHECK_EQ_INT(probe_int(r, "periodSeconds"), 1);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(l, "httpGet"), "path"), "/livez");
	/* An agent outage must not kill Ray: failures tolerated for >= 2x the 300 s back-off cap.
	 */
	CHECK(probe_int(l, "failureThreshold") * probe_int(l, "periodSeconds") >= 600);
	CHECK(rw_doc_get(r, "exec") == NULL);
	CHECK_EQ_STR(
	    rw_doc_gets(rw_doc_at(rw_doc_path(h, "spec.readinessGates"), 0), "conditionType"),
	    "ray.io/agent-ready");
	struct rw_doc_node *vols = rw_doc_path(h, "spec.volumes");
	struct rw_doc_node *kv = rw_doc_at(vols, vols ? vols->n - 1 : 0);
	CHECK_EQ_STR(rw_doc_gets(kv, "name"), "raywarden-key");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(kv, "secret"), "secretName"),
		     "raycluster-sample-raywarden-key");
	/* The key is readable by the agent's non-root user; mounted in the agent only. */
	CHECK_EQ_INT(probe_int(rw_doc_get(kv, "secret"), "defaultMode"), 0444);
	/* The endpoints listen on the pod IP (downward API), where the kubelet probes. */
	{
		struct rw_doc_node *ev = rw_doc_get(a, "env");
		const char *fp = NULL;
		for (int i = 0; ev && i < ev->n; i++)
			if (rw_doc_gets(ev->kids[i], "name") &&
			    !strcmp(rw_doc_gets(ev->kids[i], "name"), "RAYWARDEN_LISTEN_HOST"))
				fp = rw_doc_gets(rw_doc_path(ev->kids[i], "valueFrom.fieldRef"),
						 "fieldPath");
		CHECK_EQ_STR(fp, "status.podIP");
	}
	/* Pod security of the agent container: the restricted profile. */
	{
		struct rw_doc_node *sc = rw_doc_get(a, "securityContext");
		struct rw_doc_node *v;
		CHECK((v = rw_doc_get(sc, "runAsNonRoot")) && v->type == RW_DOC_BOOL && v->b);
		CHECK_EQ_INT(probe_int(sc, "runAsUser"), 65532);
		CHECK_EQ_INT(probe_int(sc, "runAsGroup"), 65532);
		CHECK((v = rw_doc_get(sc, "allowPrivilegeEscalation")) && v->type == RW_DOC_BOOL &&
		      !v->b);
		CHECK((v = rw_doc_get(sc, "readOnlyRootFilesystem")) && v->type == RW_DOC_BOOL &&
		      v->b);
		CHECK_EQ_STR(rw_doc_str(rw_doc_at(rw_doc_path(sc, "capabilities.drop"), 0)), "ALL");
		CHECK_EQ_STR(rw_doc_gets(rw_doc_get(sc, "seccompProfile"), "type"),
			     "RuntimeDefault");
		/* The Ray container's own securityContext is the user's (none here). */
		CHECK(rw_doc_get(container(h, NULL), "securityContext") == NULL);
	}
	rw_doc_free(h);
	rw_doc_free(w);

	/* KubeRay probes with the agent present; no gate; no controller -> no key. */
	o.probes = RW_RAYCLUSTER_PROBE_KUBERAY;
	o.readiness_gate = false;
	o.controller_addr = NULL;
	o.agent_readiness_period_s = 5;
	h = head_pod(c, &o);
	CHECK(probe_cmd(probe(container(h, NULL), "readinessProbe")) != NULL);
	CHECK(rw_doc_path(h, "spec.readinessGates") == NULL);
	a = container(h, RW_RAYCLUSTER_AGENT_CONTAINER);
	CHECK(a != NULL && env(a, "RAYWARDEN_KEY_FILE") == NULL);
	CHECK_EQ_INT(rw_doc_path(h, "spec.volumes")->n, 1);
	rw_doc_free(h);
	rw_raycluster_free(c);
}

/* 7. TestGenerateRayStartCommand. */
static void
t_ray_start(void)
{
	static const struct {
		bool head;
		const char *params, *resources, *want;
	} cases[] = {
	    {false, "{}", "{\"limits\":{\"nvidia.com/gpu\":\"1\"}}", "ray start  --num-gpus=1 "},
	    {false, "{}", "{\"limits\":{\"nvidia.com/mig-2g.32gb\":\"1\"}}",
	     "ray start  --num-gpus=1 "},
	    {false, "{}", "{\"limits\":{\"google.com/tpu\":\"4\"}}",
	     "ray start  --resources='{\"TPU\":4}' "},
	    {true, "{}",
	     "{\"limits\":{\"google.com/tpu\":\"4\",\"aws.amazon.com/neuroncore\":\"4\","
	     "\"nvidia.com/gpu\":\"1\"}}",
	     "ray start --head  --num-gpus=1  --resources='{\"neuron_cores\":4}' "},
	    {false, "{\"include-log-monitor\":\"false\"}", "{}",
	     "ray start  --include-log-monitor=false "},
	    {false, "{\"log-color\":\"False\",\"disable-usage-stats\":\"false\",\"x\":\"TRUE\"}",
	     "{}", "ray start  --log-color=False  --x "},
	    /* CPU request when no limit; memory only from limits; ceil of fractions. */
	    {false, "{}", "{\"requests\":{\"cpu\":\"500m\",\"memory\":\"1Gi\"}}",
	     "ray start  --num-cpus=1 "},
	    {false, "{}",
	     "{\"limits\":{\"cpu\":\"0\",\"memory\":\"1.5Gi\"},\"requests\":{\"cpu\":"
	     "\"2\"}}",
	     "ray start  --memory=1610612736  --num-cpus=2 "},
	    /* Existing resources keep their values and get the accelerator merged, sorted. */
	    {false, "{\"resources\":\"'{\\\"zz\\\":1.5,\\\"a\\\":2}'\"}",
	     "{\"limits\":{\"google.com/tpu\":\"8\"}}",
	     "ray start  --resources='{\"TPU\":8,\"a\":2,\"zz\":1.5}' "},
	    /* A custom accelerator already present: nothing added. */
	    {false, "{\"resources\":\"{\\\"TPU\\\":1}\"}",
	     "{\"limits\":{\"google.com/tpu\":\"8\"}}", "ray start  --resources={\"TPU\":1} "},
	    /* Unparsable resources: KubeRay gives up on accelerators (no num-gpus either). */
	    {false, "{\"resources\":\"{bad\"}", "{\"limits\":{\"nvidia.com/gpu\":\"2\"}}",
	     "ray start  --resources={bad "},
	    {false, "{\"num-gpus\":\"0\"}", "{\"limits\":{\"nvidia.com/gpu\":\"2\"}}",
	     "ray start  --num-gpus=0 "},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_doc_node *p = NULL, *r = NULL;
		struct rw_buf b;
		rw_buf_init(&b, 1 << 16);
		CHECK_EQ_INT(rw_doc_parse(cases[i].params, strlen(cases[i].params), &p, NULL, 0),
			     0);
		CHECK_EQ_INT(
		    rw_doc_parse(cases[i].resources, strlen(cases[i].resources), &r, NULL, 0), 0);
		CHECK_EQ_INT(rw_raycluster_ray_start(cases[i].head, p, r, &b), 0);
		if (strcmp(rw_buf_cstr(&b), cases[i].want) != 0)
			fprintf(stderr, "  case %zu\n", i);
		CHECK_EQ_STR(rw_buf_cstr(&b), cases[i].want);
		rw_buf_fini(&b);
		rw_doc_free(p);
		rw_doc_free(r);
	}
}

static struct rw_doc_node *
service(const struct rw_raycluster *c, const struct rw_raycluster_opts *o, int which)
{
	struct rw_buf b;
	struct rw_doc_node *n = NULL;
	int rv;
	rw_buf_init(&b, 1 << 20);
	rv = which == 0	  ? rw_raycluster_build_head_service(c, o, &b)
	     : which == 1 ? rw_raycluster_build_headless_service(c, &b)
			  : rw_raycluster_build_serve_service(c, o, &b);
	if (rv == 0)
		rw_doc_parse(b.data, b.len, &n, NULL, 0);
	rw_buf_fini(&b);
	return n;
}

static void
ports_str(const struct rw_doc_node *svc, char *out, size_t n)
{
	struct rw_doc_node *p = rw_doc_path(svc, "spec.ports");
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; p && i < p->n && used < n; i++) {
		int64_t v = 0;
		rw_doc_int(rw_doc_get(p->kids[i], "port"), &v);
		used += (size_t)snprintf(out + used, n - used, "%s%s:%lld", i ? "," : "",
					 rw_doc_gets(p->kids[i], "name"), (long long)v);
	}
}

/* 8, 9, 10. Services. */
static void
t_services(void)
{
	struct rw_raycluster_opts o = kuberay_opts();
	struct rw_raycluster *c = cluster_from(base_cluster);
	struct rw_doc_node *s = service(c, &o, 0);
	char ports[512];

	ports_str(s, ports, sizeof(ports));
	CHECK_EQ_STR(ports, "client:10001,dashboard:8265,gcs-server:6379,metrics:8080,serve:8000");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(rw_doc_path(s, "spec.ports"), 0), "appProtocol"), "tcp");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "spec"), "clusterIP"), "None");
	CHECK(rw_doc_true(rw_doc_path(s, "spec.publishNotReadyAddresses")));
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "name"), "raycluster-sample-head-svc");
	struct rw_doc_node *sel = rw_doc_path(s, "spec.selector");
	CHECK_EQ_INT(sel ? sel->n : 0, 5);
	CHECK_EQ_STR(rw_doc_gets(sel, "ray.io/identifier"), "raycluster-sample-head");
	CHECK_EQ_STR(rw_doc_gets(sel, "ray.io/node-type"), "head");
	CHECK(rw_doc_equal(sel, rw_doc_path(s, "metadata.labels")));
	rw_doc_free(s);

	o.head_cluster_ip_service = true;
	s = service(c, &o, 0);
	CHECK(rw_doc_gets(rw_doc_get(s, "spec"), "clusterIP") == NULL);
	CHECK(rw_doc_path(s, "spec.publishNotReadyAddresses") == NULL);
	rw_doc_free(s);
	o.head_cluster_ip_service = false;
	rw_raycluster_free(c);

	struct edit ed[] = {{"spec.headGroupSpec.template.spec.containers.0", "ports",
			     "[{\"name\":\"random\",\"containerPort\":1234}]"}};
	struct rw_doc_node *root = NULL;
	rw_doc_parse(base_cluster, strlen(base_cluster), &root, NULL, 0);
	struct rw_doc_node *hc0 =
	    rw_doc_at(rw_doc_path(root, "spec.headGroupSpec.template.spec.containers"), 0);
	struct rw_doc_node *pv = NULL;
	rw_doc_parse(ed[0].json, strlen(ed[0].json), &pv, NULL, 0);
	rw_doc_set(hc0, "ports", pv);
	rw_doc_set_str(rw_doc_path(root, "spec.headGroupSpec"), "serviceType", "NodePort");
	struct rw_buf b;
	rw_buf_init(&b, 1 << 20);
	rw_doc_dump(root, &b);
	c = cluster_from(b.data);
	s = service(c, &o, 0);
	ports_str(s, ports, sizeof(ports));
	CHECK_EQ_STR(ports, "metrics:8080,random:1234");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "spec"), "type"), "NodePort");
	CHECK(rw_doc_gets(rw_doc_get(s, "spec"), "clusterIP") == NULL);
	rw_doc_free(s);
	/* No port named serve: no serve service. */
	CHECK(service(c, &o, 2) == NULL);
	struct rw_buf e;
	rw_buf_init(&e, 1024);
	CHECK_EQ_INT(rw_raycluster_build_serve_service(c, &o, &e), -ENOENT);
	rw_buf_fini(&e);
	rw_raycluster_free(c);
	rw_buf_fini(&b);
	rw_doc_free(root);

	/* Headless service for multi-host groups. */
	struct edit ed2[] = {{"G", "numOfHosts", "2"}};
	c = cluster_with(ed2, 1);
	CHECK(rw_raycluster_wants_headless_service(c));
	s = service(c, &o, 1);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "name"), "raycluster-sample-headless");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "spec"), "clusterIP"), "None");
	CHECK(rw_doc_true(rw_doc_path(s, "spec.publishNotReadyAddresses")));
	sel = rw_doc_path(s, "spec.selector");
	CHECK_EQ_INT(sel ? sel->n : 0, 2);
	CHECK_EQ_STR(rw_doc_gets(sel, "ray.io/cluster"), "raycluster-sample");
	CHECK_EQ_STR(rw_doc_gets(sel, "ray.io/node-type"), "worker");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.labels"), "ray.io/headless-worker-svc"),
		     "raycluster-sample");
	rw_doc_free(s);
	CHECK_EQ_INT(rw_raycluster_group_desired(c, 0), 6);
	/* Multi-host labels on the worker. */
	struct rw_buf wb;
	struct rw_raycluster_slot slot = {2, "small-group-abcde", 1};
	struct rw_doc_node *w = NULL;
	rw_buf_init(&wb, 1 << 20);
	CHECK_EQ_INT(rw_raycluster_build_worker_pod(c, &o, 0, &slot, &wb), 0);
	rw_doc_parse(wb.data, wb.len, &w, NULL, 0);
	struct rw_doc_node *lab = rw_doc_path(w, "metadata.labels");
	CHECK_EQ_STR(rw_doc_gets(lab, "ray.io/worker-group-replica-index"), "2");
	CHECK_EQ_STR(rw_doc_gets(lab, "ray.io/worker-group-replica-name"), "small-group-abcde");
	CHECK_EQ_STR(rw_doc_gets(lab, "ray.io/replica-host-index"), "1");
	rw_doc_free(w);
	rw_buf_fini(&wb);
	rw_raycluster_free(c);

	/* Serve service (annotation on a RayCluster): <c>-serve-svc, selector cluster only. */
	struct edit ed3[] = {
	    {"", "metadata",
	     "{\"name\":\"raycluster-sample\",\"namespace\":\"default\",\"uid\":"
	     "\"uid-1\",\"annotations\":{\"ray.io/enable-serve-service\":\"true\"}}"}};
	c = cluster_with(ed3, 1);
	CHECK(rw_raycluster_wants_serve_service(c));
	s = service(c, &o, 2);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "name"), "raycluster-sample-serve-svc");
	sel = rw_doc_path(s, "spec.selector");
	CHECK_EQ_INT(sel ? sel->n : 0, 1);
	CHECK_EQ_STR(rw_doc_gets(sel, "ray.io/cluster"), "raycluster-sample");
	lab = rw_doc_path(s, "metadata.labels");
	CHECK_EQ_STR(rw_doc_gets(lab, "ray.io/originated-from-cr-name"), "raycluster-sample");
	CHECK_EQ_STR(rw_doc_gets(lab, "ray.io/originated-from-crd"), "RayCluster");
	CHECK_EQ_STR(rw_doc_gets(lab, "ray.io/serve"), "raycluster-sample-serve");
	ports_str(s, ports, sizeof(ports));
	CHECK_EQ_STR(ports, "serve:8000");
	rw_doc_free(s);
	rw_raycluster_free(c);
}

/* Custom headService merge rules. */
static void
t_custom_head_service(void)
{
	struct rw_raycluster_opts o = kuberay_opts();
	struct edit ed[] = {
	    {"spec.headGroupSpec", "headService",
	     "{\"metadata\":{\"name\":\"my-svc\",\"namespace\":\"other\",\"labels\":{\"ray.io/"
	     "cluster\":\"spoof\",\"mine\":\"x\"},\"annotations\":{\"a\":\"user\",\"b\":\"user\"}},"
	     "\"spec\":{\"selector\":{\"x\":\"y\"},\"ports\":[{\"name\":\"p\",\"port\":1}]}}"},
	    {"spec", "headServiceAnnotations", "{\"b\":\"spec\"}"},
	};
	struct rw_raycluster *c = cluster_with(ed, 2);
	struct rw_doc_node *s = service(c, &o, 0);
	char ports[512], fq[512];
	ports_str(s, ports, sizeof(ports));
	CHECK_EQ_STR(ports,
		     "p:1,client:10001,dashboard:8265,gcs-server:6379,metrics:8080,serve:8000");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "name"), "my-svc");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(s, "metadata"), "namespace"), "default");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.labels"), "ray.io/cluster"),
		     "raycluster-sample");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.labels"), "mine"), "x");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.annotations"), "a"), "user");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(s, "metadata.annotations"), "b"), "spec");
	CHECK(rw_doc_gets(rw_doc_path(s, "spec.selector"), "x") == NULL);
	CHECK(rw_doc_gets(rw_doc_get(s, "spec"), "clusterIP") == NULL);
	rw_raycluster_fqdn(c, &o, fq, sizeof(fq));
	CHECK_EQ_STR(fq, "my-svc.default.svc.cluster.local");
	o.cluster_domain = "corp.example";
	rw_raycluster_fqdn(c, &o, fq, sizeof(fq));
	CHECK_EQ_STR(fq, "my-svc.default.svc.corp.example");
	rw_doc_free(s);
	rw_raycluster_free(c);
}

/* 15. Names. */
static void
t_names(void)
{
	char out[128];
	rw_raycluster_pod_name("ray-cluster-01", true, true, out, sizeof(out));
	CHECK_EQ_STR(out, "ray-cluster-01-head-");
	rw_raycluster_pod_name("ray-cluster-01", true, false, out, sizeof(out));
	CHECK_EQ_STR(out, "ray-cluster-01-head");
	rw_raycluster_pod_name("ray-cluster-group-name-01", false, true, out, sizeof(out));
	CHECK_EQ_STR(out, "ray-cluster-group-name-01-worker-");
	rw_raycluster_pod_name("rayclustername-0123456789012345678901234567890123456789abcdefgh",
			       true, true, out, sizeof(out));
	CHECK_EQ_STR(out, "rayclustername-01234567890123456789012345678901234-head-");
	rw_raycluster_pod_name("Upper-Case", false, true, out, sizeof(out));
	CHECK_EQ_STR(out, "upper-case-worker-");
	rw_raycluster_check_name(
	    "72fbcc7e-a661-4b18e-ca41-e903-fc3ae634b18e-lazer090scholar-director-s", out,
	    sizeof(out));
	CHECK_EQ_STR(out, "rca41-e903-fc3ae634b18e-lazer090scholar-director-s");
	rw_raycluster_check_name("-abc", out, sizeof(out));
	CHECK_EQ_STR(out, "rabc");
	rw_raycluster_check_name("short", out, sizeof(out));
	CHECK_EQ_STR(out, "short");
	rw_raycluster_check_label("_x", out, sizeof(out));
	CHECK_EQ_STR(out, "rx");
	/* Long cluster name: the head service name is clipped like KubeRay's CheckName. */
	struct edit ed[] = {{"", "metadata",
			     "{\"name\":\"abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcd\","
			     "\"namespace\":\"ns\"}"}};
	struct rw_raycluster *c = cluster_with(ed, 1);
	struct rw_raycluster_opts o = kuberay_opts();
	char fq[512];
	rw_raycluster_head_svc_name(c, out, sizeof(out));
	CHECK_EQ_STR(out, "hij-abcdefghij-abcdefghij-abcdefghij-abcd-head-svc");
	rw_raycluster_fqdn(c, &o, fq, sizeof(fq));
	CHECK_EQ_STR(fq, "hij-abcdefghij-abcdefghij-abcdefghij-abcd-head-svc.ns.svc.cluster.local");
	rw_raycluster_free(c);
	/* Deterministic head pod name. */
	c = cluster_from(base_cluster);
	o.deterministic_head_name = true;
	struct rw_doc_node *h = head_pod(c, &o);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(h, "metadata"), "name"), "raycluster-sample-head");
	CHECK(rw_doc_gets(rw_doc_get(h, "metadata"), "generateName") == NULL);
	rw_doc_free(h);
	rw_raycluster_free(c);
	CHECK(rw_raycluster_gpu_key("nvidia.com/gpu"));
	CHECK(rw_raycluster_gpu_key("amd.com/gpu"));
	CHECK(rw_raycluster_gpu_key("nvidia.com/mig-1g.5gb"));
	CHECK(!rw_raycluster_gpu_key("nvidia.com/mig-1g.5gbx"));
	CHECK(!rw_raycluster_gpu_key("google.com/tpu"));
}

/* 18. TestDefaultInitContainer: one wait-gcs-ready with the user env; opt-out. */
static void
t_init_container(void)
{
	struct rw_raycluster_opts o = kuberay_opts();
	struct rw_raycluster *c = cluster_from(base_cluster);
	struct rw_doc_node *w = worker_pod(c, &o), *ics = rw_doc_path(w, "spec.initContainers");
	char names[256];
	CHECK_EQ_INT(ics ? ics->n : 0, 1);
	struct rw_doc_node *ic = rw_doc_at(ics, 0);
	CHECK_EQ_STR(rw_doc_gets(ic, "name"), "wait-gcs-ready");
	CHECK_EQ_STR(rw_doc_gets(ic, "image"), "rayproject/ray");
	/* The user's env (TEST_ENV_NAME), then FQ_RAY_IP/RAY_IP that every init container gets. */
	env_names(ic, names, sizeof(names));
	CHECK_EQ_STR(names, "TEST_ENV_NAME,FQ_RAY_IP,RAY_IP");
	CHECK(strstr(arg0(ic), "ray health-check --address "
			       "raycluster-sample-head-svc.default.svc.cluster.local:6379 > "
			       "/dev/null 2>&1; then") != NULL);
	CHECK(strncmp(arg0(ic), "\n\t\t\t\t\tSECONDS=0\n\t\t\t\t\twhile true; do\n", 35) == 0);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(ic, "resources.limits"), "cpu"), "200m");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(ic, "resources.requests"), "memory"), "256Mi");
	rw_doc_free(w);
	o.init_container_injection = false;
	w = worker_pod(c, &o);
	CHECK(rw_doc_path(w, "spec.initContainers") == NULL);
	rw_doc_free(w);
	rw_raycluster_free(c);
}

/* The Authorization header of a container's httpGet preStop ("" when none). */
static const char *
prestop_auth(const struct rw_doc_node *ctr)
{
	struct rw_doc_node *hs = rw_doc_path(ctr, "lifecycle.preStop.httpGet.httpHeaders");
	for (int i = 0; hs && hs->type == RW_DOC_ARR && i < hs->n; i++)
		if (rw_doc_gets(hs->kids[i], "name") &&
		    !strcmp(rw_doc_gets(hs->kids[i], "name"), "Authorization"))
			return rw_doc_gets(hs->kids[i], "value");
	return "";
}

/* preStop path of a container ("" when it has no httpGet preStop). */
static const char *
prestop_path(const struct rw_doc_node *ctr)
{
	const char *p = rw_doc_gets(rw_doc_path(ctr, "lifecycle.preStop.httpGet"), "path");
	return p ? p : "";
}

static int64_t
grace_of(const struct rw_doc_node *pod)
{
	int64_t v = -1;
	struct rw_doc_node *n = rw_doc_path(pod, "spec.terminationGracePeriodSeconds");
	if (n)
		rw_doc_int(n, &v);
	return v;
}

/* RayService pods: preStop drain through the agent on the Ray container and the agent. */
static void
t_drain(void)
{
	struct rw_raycluster_opts o;
	struct rw_raycluster *c = cluster_from(base_cluster);
	struct rw_doc_node *h, *w;

	rw_raycluster_opts_default(&o);
	CHECK_EQ_INT(o.drain_s, RW_RAYCLUSTER_DEFAULT_DRAIN_S);
	/* A plain RayCluster gets no hook. */
	h = head_pod(c, &o);
	CHECK_EQ_STR(prestop_path(container(h, NULL)), "");
	CHECK_EQ_STR(prestop_path(container(h, RW_RAYCLUSTER_AGENT_CONTAINER)), "");
	CHECK(rw_doc_path(h, "spec.terminationGracePeriodSeconds") == NULL);
	rw_doc_free(h);

	o.crd = RW_RAYCLUSTER_CRD_RAYSERVICE;
	/* No drain token (no key for the agents): no hook, the agent would refuse it. */
	h = head_pod(c, &o);
	CHECK_EQ_STR(prestop_path(container(h, NULL)), "");
	CHECK_EQ_STR(prestop_path(container(h, RW_RAYCLUSTER_AGENT_CONTAINER)), "");
	rw_doc_free(h);
	o.drain_token = "2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4";
	h = head_pod(c, &o);
	w = worker_pod(c, &o);
	CHECK_EQ_STR(prestop_auth(container(h, NULL)),
		     "Bearer 2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4");
	CHECK_EQ_STR(prestop_auth(container(w, RW_RAYCLUSTER_AGENT_CONTAINER)),
		     "Bearer 2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4");
	CHECK_EQ_STR(prestop_path(container(h, NULL)), "/drain?seconds=5");
	CHECK_EQ_STR(prestop_path(container(h, RW_RAYCLUSTER_AGENT_CONTAINER)), "/drain?seconds=5");
	CHECK_EQ_STR(prestop_path(container(w, NULL)), "/drain?seconds=5");
	CHECK_EQ_STR(prestop_path(container(w, RW_RAYCLUSTER_AGENT_CONTAINER)), "/drain?seconds=5");
	CHECK_EQ_INT(
	    probe_int(rw_doc_path(container(w, NULL), "lifecycle.preStop.httpGet"), "port"), 8477);
	/* The default 30 s grace covers 5 s + the kubelet's 2 s SIGTERM window: left unset. */
	CHECK(rw_doc_path(h, "spec.terminationGracePeriodSeconds") == NULL);
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);

	/* A user preStop (and a short grace) on the head; postStart only on the worker. */
	struct edit ed[] = {
	    {"spec.headGroupSpec.template.spec", "containers",
	     "[{\"name\":\"ray-head\",\"image\":\"rayproject/ray\",\"lifecycle\":"
	     "{\"preStop\":{\"exec\":{\"command\":[\"sleep\",\"1\"]}}}}]"},
	    {"spec.headGroupSpec.template.spec", "terminationGracePeriodSeconds", "3"},
	    {"G.template.spec", "containers",
	     "[{\"name\":\"ray-worker\",\"image\":\"rayproject/ray\",\"lifecycle\":"
	     "{\"postStart\":{\"exec\":{\"command\":[\"true\"]}}}}]"},
	};
	c = cluster_with(ed, sizeof(ed) / sizeof(ed[0]));
	o.drain_s = 20;
	h = head_pod(c, &o);
	w = worker_pod(c, &o);
	CHECK_EQ_STR(prestop_path(container(h, NULL)), "");
	CHECK(rw_doc_path(container(h, NULL), "lifecycle.preStop.exec") != NULL);
	CHECK_EQ_STR(prestop_path(container(h, RW_RAYCLUSTER_AGENT_CONTAINER)),
		     "/drain?seconds=20");
	CHECK_EQ_INT(grace_of(h), 22); /* 20 s drain + the 2 s SIGTERM minimum */
	CHECK_EQ_STR(prestop_path(container(w, NULL)), "/drain?seconds=20");
	CHECK(rw_doc_path(container(w, NULL), "lifecycle.postStart.exec") != NULL);
	CHECK_EQ_INT(grace_of(w), -1); /* unset: the default 30 s covers 20 + 2 s */
	rw_doc_free(h);
	rw_doc_free(w);

	/* Off: 0 seconds, or no agent. */
	o.drain_s = 0;
	h = head_pod(c, &o);
	CHECK_EQ_STR(prestop_path(container(h, RW_RAYCLUSTER_AGENT_CONTAINER)), "");
	CHECK_EQ_INT(grace_of(h), 3);
	rw_doc_free(h);
	o.drain_s = 5;
	o.agent = false;
	o.probes = RW_RAYCLUSTER_PROBE_KUBERAY;
	w = worker_pod(c, &o);
	CHECK_EQ_STR(prestop_path(container(w, NULL)), "");
	rw_doc_free(w);
	rw_raycluster_free(c);
}

/*
 * kuberay#4994: RayService workers of a cluster whose serve config puts proxies
 * on the head only (or nowhere) get proxy readiness "ignore"; everything else
 * keeps the configured mode.
 */
static void
t_headonly_workers(void)
{
	static const struct {
		const char *crd;      /* ray.io/originated-from-crd label, NULL = none */
		const char *loc;      /* proxy-location annotation, NULL = none */
		bool on;	      /* headonly_workers_ready */
		const char *mode;     /* o.proxy_readiness */
		const char *head_env; /* expected RAYWARDEN_PROXY_READINESS */
		const char *worker_env;
	} cases[] = {
	    {"RayService", "HeadOnly", true, "auto", "auto", "ignore"},
	    {"RayService", "Disabled", true, "auto", "auto", "ignore"},
	    {"RayService", "HeadOnly", true, NULL, "auto", "ignore"},
	    {"RayService", "EveryNode", true, "auto", "auto", "auto"},
	    {"RayService", "headonly", true, "auto", "auto", "auto"}, /* Ray's values are exact */
	    {"RayService", NULL, true, "auto", "auto", "auto"},
	    {"RayService", "HeadOnly", false, "auto", "auto", "auto"}, /* switched off */
	    {"RayService", "HeadOnly", true, "required", "required", "required"},
	    {NULL, "HeadOnly", true, "auto", "auto", "auto"}, /* plain RayCluster */
	    {"RayJob", "HeadOnly", true, "auto", "auto", "auto"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char lab[128], ann[128];
		struct edit ed[2];
		size_t ne = 0;
		struct rw_raycluster_opts o;
		struct rw_raycluster *c;
		struct rw_doc_node *h, *w;
		if (cases[i].crd) {
			snprintf(lab, sizeof(lab), "{\"ray.io/originated-from-crd\":\"%s\"}",
				 cases[i].crd);
			ed[ne++] = (struct edit){"metadata", "labels", lab};
		}
		if (cases[i].loc) {
			snprintf(ann, sizeof(ann), "{\"%s\":\"%s\"}",
				 RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION, cases[i].loc);
			ed[ne++] = (struct edit){"metadata", "annotations", ann};
		}
		c = cluster_with(ed, ne);
		rw_raycluster_opts_default(&o);
		o.headonly_workers_ready = cases[i].on;
		o.proxy_readiness = cases[i].mode;
		h = head_pod(c, &o);
		w = worker_pod(c, &o);
		if (strcmp(env(container(w, RW_RAYCLUSTER_AGENT_CONTAINER),
			       "RAYWARDEN_PROXY_READINESS"),
			   cases[i].worker_env) != 0)
			fprintf(stderr, "  case %zu\n", i);
		CHECK_EQ_STR(
		    env(container(h, RW_RAYCLUSTER_AGENT_CONTAINER), "RAYWARDEN_PROXY_READINESS"),
		    cases[i].head_env);
		CHECK_EQ_STR(
		    env(container(w, RW_RAYCLUSTER_AGENT_CONTAINER), "RAYWARDEN_PROXY_READINESS"),
		    cases[i].worker_env);
		CHECK_EQ_STR(rw_raycluster_agent_proxy_readiness(c, &o, false),
			     cases[i].worker_env);
		/* The workers still start with ray.io/serve=true; the controller's label logic
		   takes a worker without a healthy proxy out of the serve service. */
		if (cases[i].crd && strcmp(cases[i].crd, "RayService") == 0)
			CHECK_EQ_STR(rw_doc_gets(rw_doc_path(w, "metadata.labels"), "ray.io/serve"),
				     "true");
		rw_doc_free(h);
		rw_doc_free(w);
		rw_raycluster_free(c);
	}
}

/* KubeRay's operator env knobs. */
static char *
fake_env(const char *k)
{
	static const char *const kv[][2] = {
	    {"ENABLE_INIT_CONTAINER_INJECTION", "FALSE"},
	    {"ENABLE_PROBES_INJECTION", "no"},
	    {"ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE", "True"},
	    {"CLUSTER_DOMAIN", "k.local"},
	    {"RAYWARDEN_RAYSERVICE_DRAIN_SECONDS", "12"},
	    {"ENABLE_LOGIN_SHELL", "true"},
	    {"ENABLE_RANDOM_POD_DELETE", "1"},
	    {"RAYWARDEN_HEADONLY_WORKERS_READY", "False"},
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (strcmp(kv[i][0], k) == 0)
			return (char *)kv[i][1];
	return NULL;
}

static char *
no_env(const char *k)
{
	(void)k;
	return NULL;
}

static void
t_env_knobs(void)
{
	struct rw_raycluster_opts o;
	rw_raycluster_opts_default(&o);
	rw_raycluster_opts_from_env(&o, fake_env);
	CHECK(!o.init_container_injection);
	CHECK(o.probes_injection); /* only "false" turns it off */
	CHECK(o.head_cluster_ip_service);
	CHECK_EQ_STR(o.cluster_domain, "k.local");
	CHECK(o.login_shell);
	CHECK(!o.random_pod_delete); /* only "true" turns it on */
	CHECK(!o.deterministic_head_name);
	CHECK_EQ_INT(o.drain_s, 12);
	CHECK(!o.headonly_workers_ready);
	rw_raycluster_opts_default(&o);
	CHECK(o.headonly_workers_ready);
	rw_raycluster_opts_from_env(&o, no_env);
	CHECK(o.headonly_workers_ready); /* default on */
}

/* The agent's resources from --agent-{cpu,memory}-{request,limit}: quantities, request <= limit. */
static void
t_agent_resources_check(void)
{
	static const struct {
		const char *cpu_req, *mem_req, *cpu_lim, *mem_lim;
		int rv;
		const char *why; /* a word of the message */
	} cases[] = {
	    {NULL, NULL, NULL, NULL, 0, NULL}, /* the defaults */
	    {"50m", "32Mi", "1", "1Gi", 0, NULL},
	    {"100m", "64Mi", "100m", "64Mi", 0, NULL},	  /* equal is fine */
	    {"0.1", "67108864", "100m", "64Mi", 0, NULL}, /* other spellings of the same */
	    {"200m", NULL, NULL, NULL, -EINVAL, "cpu request 200m is above its limit 100m"},
	    {NULL, "65Mi", NULL, NULL, -EINVAL, "memory request"},
	    {NULL, NULL, "100m", "64Mi", 0, NULL},
	    {"100001u", NULL, NULL, NULL, -EINVAL, "above"}, /* 100.001m > 100m */
	    {"lots", NULL, NULL, NULL, -EINVAL, "--agent-cpu-request"},
	    {NULL, NULL, NULL, "-1", -EINVAL, "--agent-memory-limit"},
	    {NULL, NULL, "", NULL, -EINVAL, "--agent-cpu-limit"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_raycluster_opts o;
		char why[160] = "";
		rw_raycluster_opts_default(&o);
		if (cases[i].cpu_req)
			o.agent_cpu_request = cases[i].cpu_req;
		if (cases[i].mem_req)
			o.agent_mem_request = cases[i].mem_req;
		if (cases[i].cpu_lim)
			o.agent_cpu_limit = cases[i].cpu_lim;
		if (cases[i].mem_lim)
			o.agent_mem_limit = cases[i].mem_lim;
		CHECK_EQ_INT(rw_raycluster_opts_check(&o, why, sizeof(why)), cases[i].rv);
		if (cases[i].why)
			CHECK(strstr(why, cases[i].why) != NULL);
	}
}

/* The spec hash ignores replicas, tolerations, schedulingGates; rayVersion changes it. */
static void
t_hash(void)
{
	char h0[33], h1[33];
	struct rw_raycluster *c = cluster_from(base_cluster), *d;
	CHECK_EQ_INT(rw_raycluster_spec_hash(c->obj.spec, h0), 0);
	CHECK_EQ_INT((int)strlen(h0), 32);
	for (const char *p = h0; *p; p++)
		CHECK((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'V'));
	struct edit same[] = {
	    {"G", "replicas", "7"},
	    {"G", "minReplicas", "2"},
	    {"G", "maxReplicas", "9"},
	    {"G", "scaleStrategy", "{\"workersToDelete\":[\"a\"]}"},
	    {"G.template.spec", "tolerations", "[{\"key\":\"k\"}]"},
	    {"spec.headGroupSpec.template.spec", "schedulingGates", "[{\"name\":\"g\"}]"},
	    {"spec", "suspend", "true"},
	    {"spec", "upgradeStrategy", "{\"type\":\"Recreate\"}"},
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		d = cluster_with(&same[i], 1);
		CHECK_EQ_INT(rw_raycluster_spec_hash(d->obj.spec, h1), 0);
		if (strcmp(h0, h1) != 0)
			fprintf(stderr, "  edit %zu changed the hash\n", i);
		CHECK_EQ_STR(h1, h0);
		rw_raycluster_free(d);
	}
	struct edit diff[] = {{"spec", "rayVersion", "\"2.53.0\""}};
	d = cluster_with(diff, 1);
	CHECK_EQ_INT(rw_raycluster_spec_hash(d->obj.spec, h1), 0);
	CHECK(strcmp(h0, h1) != 0);
	rw_raycluster_free(d);
	/* Member order does not matter. */
	struct rw_doc_node *a = NULL, *b = NULL;
	rw_doc_parse("{\"x\":1,\"y\":{\"b\":2,\"a\":3}}", 25, &a, NULL, 0);
	rw_doc_parse("{\"y\":{\"a\":3,\"b\":2},\"x\":1}", 25, &b, NULL, 0);
	CHECK_EQ_INT(rw_raycluster_spec_hash(a, h0), 0);
	CHECK_EQ_INT(rw_raycluster_spec_hash(b, h1), 0);
	CHECK_EQ_STR(h0, h1);
	/* base32hex of SHA-1("{}") = bf21a9e8fbc5a3846fb05b4fa0859e0917b2202f */
	struct rw_doc_node *e = rw_doc_new(RW_DOC_OBJ);
	CHECK_EQ_INT(rw_raycluster_spec_hash(e, h0), 0);
	CHECK_EQ_STR(h0, "NSGQJQ7ROMHO8RTGBD7Q11CU14BR481F");
	rw_doc_free(e);
	rw_doc_free(a);
	rw_doc_free(b);
	rw_raycluster_free(c);
}

/* Inputs the builders must refuse without crashing. */
static void
t_bad_inputs(void)
{
	static const char *const bad[] = {
	    "{}",
	    "{\"spec\":{\"headGroupSpec\":{}}}",
	    "{\"spec\":{\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[]}}}}}",
	    "{\"spec\":{\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[1]}}}}}",
	    "{\"spec\":[]}",
	};
	struct rw_raycluster_opts o;
	struct rw_buf b;
	rw_raycluster_opts_default(&o);
	rw_buf_init(&b, 1 << 20);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rw_raycluster *c = cluster_from(bad[i]);
		struct rw_raycluster_slot slot = {0, NULL, 0};
		if (!c)
			continue;
		CHECK_EQ_INT(rw_raycluster_build_head_pod(c, &o, &b), -EINVAL);
		CHECK_EQ_INT(rw_raycluster_build_worker_pod(c, &o, 0, &slot, &b), -EINVAL);
		CHECK_EQ_INT(rw_raycluster_build_head_service(c, &o, &b) == 0 || c->head == NULL,
			     1);
		rw_buf_reset(&b);
		rw_raycluster_free(c);
	}
	struct rw_raycluster *c = NULL;
	CHECK_EQ_INT(rw_raycluster_parse("[1]", 3, &c, NULL, 0), -EINVAL);
	CHECK_EQ_INT(rw_raycluster_parse("{", 1, &c, NULL, 0), -EINVAL);
	rw_buf_fini(&b);
}

/* The object header every CR parser shares: defaults, wrong types, errors. */
static void
t_object_parse(void)
{
	struct rw_doc_object o;
	char err[128] = "";
	const char *doc = "{\"metadata\":{\"name\":\"n\",\"generation\":3,\"labels\":[1],"
			  "\"annotations\":{\"a\":\"b\"}},\"status\":\"x\"}";
	CHECK_EQ_INT(rw_doc_object_parse("[1]", 3, "RayJob", &o, err, sizeof(err)), -EINVAL);
	CHECK_EQ_STR(err, "RayJob is not a JSON object");
	CHECK(o.root == NULL);
	CHECK_EQ_INT(rw_doc_object_parse("{\"a\":", 5, "RayJob", &o, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(rw_doc_object_parse(doc, strlen(doc), "RayJob", &o, NULL, 0), 0);
	CHECK_EQ_STR(o.name, "n");
	CHECK_EQ_STR(o.ns, "default");
	CHECK_EQ_STR(o.uid, "");
	CHECK_EQ_INT((int)o.generation, 3);
	CHECK(o.labels == NULL); /* not an object */
	CHECK(o.annotations != NULL);
	CHECK(o.status == NULL);					       /* not an object */
	CHECK(o.spec != NULL && o.spec->type == RW_DOC_OBJ && o.spec->n == 0); /* created */
	rw_doc_free(o.root);
}

/* The Secret a container's RAY_AUTH_TOKEN comes from, "key/name" ("" when none). */
static const char *
auth_token_ref(const struct rw_doc_node *ctr, char *out, size_t n)
{
	struct rw_doc_node *e = rw_doc_get(ctr, "env");
	out[0] = '\0';
	for (int i = 0; e && i < e->n; i++)
		if (rw_doc_gets(e->kids[i], "name") &&
		    !strcmp(rw_doc_gets(e->kids[i], "name"), "RAY_AUTH_TOKEN")) {
			struct rw_doc_node *r = rw_doc_path(e->kids[i], "valueFrom.secretKeyRef");
			snprintf(out, n, "%s/%s",
				 rw_doc_gets(r, "key") ? rw_doc_gets(r, "key") : "",
				 rw_doc_gets(r, "name") ? rw_doc_gets(r, "name") : "");
		}
	return out;
}

/* authOptions.mode token: every Ray-facing container reads the token from the Secret. */
static void
t_token_auth(void)
{
	struct edit ed[] = {{"spec", "enableInTreeAutoscaling", "true"},
			    {"spec", "authOptions", "{\"mode\":\"token\"}"}};
	struct rw_raycluster *c = cluster_with(ed, 2);
	struct rw_raycluster_opts o = kuberay_opts();
	struct rw_doc_node *h = head_pod(c, &o), *w = worker_pod(c, &o);
	struct rw_doc_node *init = rw_doc_at(rw_doc_path(w, "spec.initContainers"), 0);
	char ref[256];

	CHECK_EQ_STR(env(container(h, NULL), "RAY_AUTH_MODE"), "token");
	CHECK_EQ_STR(auth_token_ref(container(h, NULL), ref, sizeof(ref)),
		     "auth_token/raycluster-sample");
	CHECK_EQ_STR(env(container(h, "autoscaler"), "RAY_AUTH_MODE"), "token");
	CHECK_EQ_STR(auth_token_ref(container(h, "autoscaler"), ref, sizeof(ref)),
		     "auth_token/raycluster-sample");
	CHECK_EQ_STR(env(container(w, NULL), "RAY_AUTH_MODE"), "token");
	CHECK_EQ_STR(auth_token_ref(container(w, NULL), ref, sizeof(ref)),
		     "auth_token/raycluster-sample");
	CHECK_EQ_STR(rw_doc_gets(init, "name"), "wait-gcs-ready");
	CHECK_EQ_STR(auth_token_ref(init, ref, sizeof(ref)), "auth_token/raycluster-sample");
	rw_doc_free(h);
	rw_doc_free(w);
	rw_raycluster_free(c);

	/* A named Secret wins over the cluster's. */
	ed[1].json = "{\"mode\":\"token\",\"secretName\":\"my-token\"}";
	c = cluster_with(ed, 2);
	h = head_pod(c, &o);
	CHECK_EQ_STR(auth_token_ref(container(h, NULL), ref, sizeof(ref)), "auth_token/my-token");
	CHECK_EQ_STR(auth_token_ref(container(h, "autoscaler"), ref, sizeof(ref)),
		     "auth_token/my-token");
	rw_doc_free(h);
	rw_raycluster_free(c);

	/* No token mode, no token env. */
	c = cluster_from(base_cluster);
	h = head_pod(c, &o);
	CHECK(env(container(h, NULL), "RAY_AUTH_MODE") == NULL);
	CHECK_EQ_STR(auth_token_ref(container(h, NULL), ref, sizeof(ref)), "");
	rw_doc_free(h);
	rw_raycluster_free(c);
}

/*
 * The agent attached as an ephemeral container to a head without one: the sidecar's
 * container minus what the API server refuses on an ephemeral container (ports,
 * probes, resources, lifecycle, volume mounts of volumes the pod lacks), the key
 * from the env.
 */
static void
t_ephemeral_agent(void)
{
	struct rw_raycluster_opts o;
	struct rw_raycluster *c = cluster_from(base_cluster);
	struct rw_doc_node *patch = NULL, *a, *e;
	struct rw_buf b;
	char names[1024];

	rw_raycluster_opts_default(&o);
	rw_buf_init(&b, 1 << 20);
	/* No controller to report to: nothing to attach. */
	CHECK_EQ_INT(rw_raycluster_build_ephemeral_agent(c, &o, &b), -EINVAL);
	o.controller_addr = "tcp://raywarden-controller.raywarden-system.svc:8478";
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_raycluster_build_ephemeral_agent(c, &o, &b), 0);
	CHECK_EQ_INT(rw_doc_parse(b.data, b.len, &patch, NULL, 0), 0);
	CHECK_EQ_INT(rw_doc_path(patch, "spec.ephemeralContainers")->n, 1);
	CHECK_EQ_INT(rw_doc_get(patch, "spec")->n, 1); /* nothing else is patched */
	a = rw_doc_at(rw_doc_path(patch, "spec.ephemeralContainers"), 0);
	CHECK_EQ_STR(rw_doc_gets(a, "name"), RW_RAYCLUSTER_AGENT_CONTAINER);
	CHECK_EQ_STR(rw_doc_gets(a, "image"), RW_RAYCLUSTER_DEFAULT_AGENT_IMAGE);
	static const char *const refused[] = {
	    "ports",	    "resources", "readinessProbe", "livenessProbe",
	    "startupProbe", "lifecycle", "volumeMounts",   "targetContainerName"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (rw_doc_get(a, refused[i]))
			fprintf(stderr, "  unexpected %s\n", refused[i]);
		CHECK(rw_doc_get(a, refused[i]) == NULL);
	}
	env_names(a, names, sizeof(names));
	CHECK_EQ_STR(names,
		     "RAYWARDEN_POD_NAME,RAYWARDEN_POD_NAMESPACE,RAYWARDEN_POD_UID,"
		     "RAYWARDEN_POD_IP,RAYWARDEN_LISTEN_HOST,RAYWARDEN_CLUSTER,RAYWARDEN_GROUP,"
		     "RAYWARDEN_NODE_TYPE,"
		     "RAYWARDEN_RAYSERVICE,RAYWARDEN_PROXY_READINESS,RAYWARDEN_CONTROLLER,"
		     "RAYWARDEN_KEY,RAYWARDEN_PORT,RAYWARDEN_RAYLET_PORT,"
		     "RAYWARDEN_DASHBOARD_PORT,RAYWARDEN_SERVE_PORT,RAYWARDEN_LIVENESS_GRACE_S");
	CHECK_EQ_STR(env(a, "RAYWARDEN_NODE_TYPE"), "head");
	CHECK_EQ_STR(env(a, "RAYWARDEN_CONTROLLER"), o.controller_addr);
	e = rw_doc_get(a, "env");
	for (int i = 0; e && i < e->n; i++) {
		if (strcmp(rw_doc_gets(e->kids[i], "name"), "RAYWARDEN_KEY") != 0)
			continue;
		CHECK(rw_doc_get(e->kids[i], "value") == NULL); /* never the key itself */
		CHECK_EQ_STR(rw_doc_gets(rw_doc_path(e->kids[i], "valueFrom.secretKeyRef"), "name"),
			     "raycluster-sample-raywarden-key");
		CHECK_EQ_STR(rw_doc_gets(rw_doc_path(e->kids[i], "valueFrom.secretKeyRef"), "key"),
			     "key");
	}
	CHECK_EQ_INT(probe_int(rw_doc_get(a, "securityContext"), "runAsUser"), 65532);
	rw_doc_free(patch);
	rw_buf_fini(&b);
	rw_raycluster_free(c);
}

/* When the ephemeral agent is attached: a table over what the pod cache says of the head. */
static void
t_ephemeral_decide(void)
{
	struct rw_raycluster_opts on, off, standalone;
	rw_raycluster_opts_default(&on);
	on.controller_addr = "tcp://c:8478";
	off = on;
	off.agent = false; /* --no-agent-injection */
	standalone = on;
	standalone.controller_addr = "";
	static const struct {
		const char *name;
		int opts; /* 0 on, 1 off, 2 standalone */
		struct rw_raycluster_head_agent h;
		bool want;
	} cases[] = {
	    {"KubeRay's live head", 0, {true, false, false, false, true, "u1", ""}, true},
	    {"sent for another pod before", 0, {true, false, false, false, true, "u2", "u1"}, true},
	    {"sent for this pod already", 0, {true, false, false, false, true, "u1", "u1"}, false},
	    {"has the agent (sidecar or ephemeral)",
	     0,
	     {true, false, false, true, true, "u1", ""},
	     false},
	    {"no head", 0, {false, false, false, false, true, NULL, ""}, false},
	    {"head being deleted", 0, {true, true, false, false, true, "u1", ""}, false},
	    {"head pod ended", 0, {true, false, true, false, true, "u1", ""}, false},
	    {"key Secret not there yet", 0, {true, false, false, false, false, "u1", ""}, false},
	    {"--no-agent-injection", 1, {true, false, false, false, true, "u1", ""}, false},
	    {"no controller address", 2, {true, false, false, false, true, "u1", ""}, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rw_raycluster_opts *o = cases[i].opts == 0	  ? &on
						     : cases[i].opts == 1 ? &off
									  : &standalone;
		bool got = rw_raycluster_ephemeral_agent_wanted(o, &cases[i].h);
		if (got != cases[i].want)
			fprintf(stderr, "  case %s: got %d\n", cases[i].name, got);
		CHECK(got == cases[i].want);
	}
	CHECK(!rw_raycluster_ephemeral_agent_wanted(&on, NULL));
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"1 BuildPod env (head, worker, order)", t_build_pod_env},
	    {"2/3 ray start args, volumes, command forms", t_build_pod_command},
	    {"4 autoscaler container, RBAC, v2", t_autoscaler},
	    {"token auth env (ray, autoscaler, wait-gcs-ready)", t_token_auth},
	    {"5 GCS fault tolerance env and annotations", t_gcs_ft},
	    {"6 KubeRay probes (exec, 2.53 httpGet, RayService)", t_probes_kuberay},
	    {"agent sidecar and agent probes", t_agent},
	    {"agent as an ephemeral container", t_ephemeral_agent},
	    {"when to attach the ephemeral agent", t_ephemeral_decide},
	    {"7 generateRayStartCommand", t_ray_start},
	    {"8/9/10 head, headless, serve services", t_services},
	    {"custom headService merge", t_custom_head_service},
	    {"15 names", t_names},
	    {"18 wait-gcs-ready init container", t_init_container},
	    {"RayService preStop drain hooks", t_drain},
	    {"HeadOnly/Disabled proxy_location workers Ready (kuberay#4994)", t_headonly_workers},
	    {"operator env knobs", t_env_knobs},
	    {"agent resources flags checked", t_agent_resources_check},
	    {"spec hash", t_hash},
	    {"bad inputs", t_bad_inputs},
	    {"object header parse", t_object_parse},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

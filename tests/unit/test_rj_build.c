/*
 * test_rj_build.c - what the RayJob reconciler creates or sends: the submit
 * command (KubeRay's TestBuildJobSubmitCommandWithK8sJobMode / WithSidecarMode
 * / custom dashboard port, as whole bash scripts), its quoting (checked by
 * bash itself when /bin/bash exists), the RayCluster (labels, annotations,
 * owner, the SidecarMode submitter), the submitter Job (default and user pod
 * templates), the HTTPMode submission (through the wire and back), the
 * `<rayjob>-head-svc` Service and the passes that keep it, and
 * golden files for the KubeRay samples ray-job.*.yaml of the shared corpus
 * (rwt_corpus; skipped with a message without it; RW_GOLDEN_UPDATE=1 rewrites tests/unit/golden/
 * <sample>.rayjob.json from the current output).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "golden.h"
#include "rc_validate.h"
#include "rj_fixture.h"
#include "rw/wire.h"
#include "rw/yaml.h"

#define HEALTH(url)                                                                                \
	"until python -c \"import urllib.request; r=urllib.request.urlopen('" url "', "            \
	"timeout=10); exit(0 if b'success' in r.read() else 1)\" >/dev/null 2>&1 ; do echo "       \
	"\"Waiting for Ray Dashboard GCS to become healthy at http://127.0.0.1:8265 ...\" ; "      \
	"sleep "                                                                                   \
	"2 ; done ; "

/* KubeRay's rayJobTemplate() in common/job_test.go. */
static const char *const kuberay_template[] = {
    "spec|runtimeEnvYAML",
    "\"test: test\"",
    "spec|metadata",
    "{\"testKey\":\"testValue\"}",
    "spec|rayClusterSpec|rayVersion",
    "\"2.6.0\"",
    "spec|entrypoint",
    "\"echo no quote 'single quote' \\\"double quote\\\"\"",
    "spec|entrypointNumCpus",
    "1",
    "spec|entrypointNumGpus",
    "0.5",
    "spec|entrypointResources",
    "\"{\\\"Custom_1\\\": 1, \\\"Custom_2\\\": 5.5}\"",
};

static const char k8s_command[] = HEALTH(
    "http://127.0.0.1:8265/api/gcs_healthz") "if ! ray job status --address "
					     "http://127.0.0.1:8265 testJobId >/dev/null 2>&1 ; "
					     "then ray job submit --address "
					     "http://127.0.0.1:8265 --no-wait --runtime-env-json "
					     "\"{\\\"test\\\":\\\"test\\\"}\" "
					     "--metadata-json "
					     "\"{\\\"testKey\\\":\\\"testValue\\\"}\" "
					     "--submission-id testJobId "
					     "--entrypoint-num-cpus 1.000000 --entrypoint-num-gpus "
					     "0.500000 --entrypoint-resources "
					     "\"{\\\"Custom_1\\\": 1, \\\"Custom_2\\\": 5.5}\" -- "
					     "echo no quote 'single quote' \"double "
					     "quote\" ; fi ; ray job logs --address "
					     "http://127.0.0.1:8265 --follow testJobId";

static const char sidecar_command[] = HEALTH(
    "http://localhost:8265/api/gcs_healthz") "ray job submit --address "
					     "http://127.0.0.1:8265 --runtime-env-json "
					     "\"{\\\"test\\\":\\\"test\\\"}\" --metadata-json "
					     "\"{\\\"testKey\\\":\\\"testValue\\\"}\" "
					     "--submission-id testJobId --entrypoint-num-cpus "
					     "1.000000 --entrypoint-num-gpus 0.500000 "
					     "--entrypoint-resources \"{\\\"Custom_1\\\": 1, "
					     "\\\"Custom_2\\\": 5.5}\" -- echo no quote 'single "
					     "quote' \"double quote\" ;";

static struct rw_rayjob *
with(const char *const *extra, int n)
{
	const char *p[64];
	int k = (int)(sizeof(kuberay_template) / sizeof(kuberay_template[0]));
	memcpy(p, kuberay_template, sizeof(kuberay_template));
	for (int i = 0; i < 2 * n && k + i < 64; i++)
		p[k + i] = extra[i];
	return rj_make(p, k / 2 + n);
}

static void
t_command(void)
{
	struct rw_buf b;
	struct rw_rayjob *j = with(NULL, 0);
	rw_buf_init(&b, 1 << 20);
	CHECK_EQ_INT(rw_rayjob_submit_command(j, "127.0.0.1:8265", "testJobId", &b), 0);
	CHECK_EQ_STR(b.data, k8s_command);
	/* An address with its scheme is used as it is. */
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rayjob_submit_command(j, "http://127.0.0.1:8265", "testJobId", &b), 0);
	CHECK_EQ_STR(b.data, k8s_command);
	rw_rayjob_free(j);

	const char *const sidecar[] = {"spec|submissionMode", "\"SidecarMode\""};
	j = with(sidecar, 1);
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rayjob_submit_command(j, NULL, "testJobId", &b), 0);
	CHECK_EQ_STR(b.data, sidecar_command);
	rw_rayjob_free(j);

	/* The sidecar talks to the head's own dashboard port. */
	const char *const port[] = {
	    "spec|submissionMode", "\"SidecarMode\"",
	    "spec|rayClusterSpec|headGroupSpec|template|spec|containers|0|ports",
	    "[{\"name\":\"dashboard\",\"containerPort\":9000}]"};
	j = with(port, 2);
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rayjob_submit_command(j, "ignored:1", "testJobId", &b), 0);
	CHECK(strstr(b.data, "urlopen('http://localhost:9000/api/gcs_healthz'") != NULL);
	CHECK(strstr(b.data, "ray job submit --address http://127.0.0.1:9000 --runtime") != NULL);
	CHECK(strstr(b.data, "ignored") == NULL);
	rw_rayjob_free(j);

	/* Nothing optional: no JSON flags, no submission id, the entrypoint trimmed. */
	const char *const bare[] = {"spec|runtimeEnvYAML", "-", "spec|entrypoint",
				    "\"\\n\\t python x.py  \\n\""};
	j = rj_make(bare, 2);
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rayjob_submit_command(j, "svc:8265", NULL, &b), 0);
	CHECK(strstr(b.data,
		     "if ! ray job status --address http://svc:8265  >/dev/null 2>&1 ; "
		     "then ray job submit --address http://svc:8265 --no-wait -- python "
		     "x.py ; fi ; ray job logs --address http://svc:8265 --follow ") != NULL);
	rw_rayjob_free(j);

	/* Failures leave out as it was. */
	const char *const http[] = {"spec|submissionMode", "\"HTTPMode\""};
	const char *const old[] = {"spec|metadata", "{\"k\":\"v\"}",
				   "spec|rayClusterSpec|rayVersion", "\"2.5.0\""};
	const char *const badenv[] = {"spec|runtimeEnvYAML", "\"[\""};
	struct {
		const char *const *p;
		int n;
		const char *addr;
	} bad[] = {
	    {http, 1, "svc:8265"}, {old, 2, "svc:8265"}, {badenv, 1, "svc:8265"}, {NULL, 0, NULL}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = rj_make(bad[i].p, bad[i].n);
		rw_buf_reset(&b);
		rw_buf_puts(&b, "keep");
		CHECK_EQ_INT(rw_rayjob_submit_command(j, bad[i].addr, "id", &b), -EINVAL);
		CHECK_EQ_STR(b.data, "keep");
		rw_rayjob_free(j);
	}
	rw_buf_fini(&b);
}

/*
 * bash must read the quoted JSON back byte for byte: $ and ` would expand
 * and \ would be eaten with Go's strconv.Quote alone.
 */
static void
t_quoting(void)
{
	const char *const p[] = {
	    "spec|runtimeEnvYAML",
	    "\"env_vars:\\n  A: \\\"$HOME `id` \\\\\\\\ \\\\\\\"q\\\\\\\" \\\\t ü\\\"\\n\""};
	struct rw_rayjob *j = rj_make(p, 1);
	struct rw_buf b, cmd;
	const char *start, *end;
	static const char want[] = "{\"env_vars\":{\"A\":\"$HOME `id` \\\\ \\\"q\\\" \\t ü\"}}";
	rw_buf_init(&b, 1 << 20);
	rw_buf_init(&cmd, 1 << 20);
	CHECK_EQ_INT(rw_rayjob_submit_command(j, "svc:8265", "id", &b), 0);
	start = strstr(b.data, "--runtime-env-json ");
	CHECK(start != NULL);
	if (!start)
		goto out;
	start += strlen("--runtime-env-json ");
	end = strstr(start, " --submission-id");
	CHECK(end != NULL);
	if (!end)
		goto out;
	CHECK(strncmp(start, "\"{\\\"env_vars\\\":{\\\"A\\\":\\\"\\$HOME \\`id\\` \\\\\\\\ ", 37) ==
	      0);
	if (access("/bin/bash", X_OK) != 0) {
		printf("  skipped the bash round trip: no /bin/bash\n");
		goto out;
	}
	/* printf %s <quoted> through bash, compared with the JSON text. */
	rw_buf_puts(&cmd, "/bin/bash -c 'printf %s ");
	for (const char *c = start; c < end; c++) {
		if (*c == '\'')
			rw_buf_puts(&cmd, "'\\''");
		else
			rw_buf_putc(&cmd, *c);
	}
	rw_buf_puts(&cmd, "'");
	{
		FILE *f = popen(cmd.data, "r");
		char got[512] = "";
		size_t n = 0;
		CHECK(f != NULL);
		if (f) {
			n = fread(got, 1, sizeof(got) - 1, f);
			got[n] = '\0';
			CHECK_EQ_INT(pclose(f), 0);
		}
		CHECK_EQ_STR(got, want);
	}
out:
	rw_buf_fini(&cmd);
	rw_buf_fini(&b);
	rw_rayjob_free(j);
}

static struct rw_doc_node *
built(int rv, const struct rw_buf *b)
{
	CHECK_EQ_INT(rv, 0);
	return rv == 0 ? rj_tree(b->data, b->len) : NULL;
}

static const char *
envv(const struct rw_doc_node *c, int i, const char *key)
{
	return rw_doc_gets(rw_doc_at(rw_doc_get(c, "env"), i), key);
}

static void
t_cluster(void)
{
	struct rw_buf b, cmd;
	struct rw_rayjob *j = rj_make(NULL, 0);
	struct rw_doc_node *t, *meta, *c, *cs;
	struct rw_raycluster *rc = NULL;
	struct rw_raycluster_verrs v;

	rw_buf_init(&b, 1 << 22);
	rw_buf_init(&cmd, 1 << 20);
	t = built(rw_rayjob_build_cluster(j, "rayjob-sample-x7k2p", "rayjob-sample-q4z9s", &b), &b);
	meta = rw_doc_get(t, "metadata");
	CHECK_EQ_STR(rw_doc_gets(t, "apiVersion"), "ray.io/v1");
	CHECK_EQ_STR(rw_doc_gets(t, "kind"), "RayCluster");
	CHECK_EQ_STR(rw_doc_gets(meta, "name"), "rayjob-sample-x7k2p");
	CHECK_EQ_STR(rw_doc_gets(meta, "namespace"), "default");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(meta, "labels"), "team"), "a");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(meta, "labels"), "ray.io/originated-from-cr-name"),
		     "rayjob-sample");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(meta, "labels"), "ray.io/originated-from-crd"),
		     "RayJob");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(meta, "labels"), "ray.io/job-submission-mode"),
		     "K8sJobMode");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(meta, "annotations"), "note"), "x");
	CHECK(!rw_doc_get(rw_doc_get(meta, "annotations"),
			  "ray.io/disable-provisioned-head-restart"));
	c = rw_doc_at(rw_doc_get(meta, "ownerReferences"), 0);
	CHECK_EQ_STR(rw_doc_gets(c, "kind"), "RayJob");
	CHECK_EQ_STR(rw_doc_gets(c, "name"), "rayjob-sample");
	CHECK_EQ_STR(rw_doc_gets(c, "uid"), "rj-uid-1");
	CHECK(rw_doc_true(rw_doc_get(c, "controller")));
	CHECK(rw_doc_equal(rw_doc_get(t, "spec"), j->cluster_spec));
	/* What it builds is a valid RayCluster created by a RayJob. */
	CHECK_EQ_INT(rw_raycluster_parse(b.data, b.len, &rc, NULL, 0), 0);
	if (rc) {
		CHECK_EQ_INT(rw_raycluster_validate(rc, &v), 0);
		CHECK_EQ_INT(rw_raycluster_creator(rc, NULL), RW_RAYCLUSTER_CRD_RAYJOB);
	}
	rw_raycluster_free(rc);
	rw_doc_free(t);
	rw_rayjob_free(j);

	/* SidecarMode: the submitter joins the head pod, which is never restarted. */
	const char *const sidecar[] = {"spec|submissionMode", "\"SidecarMode\"",
				       "spec|rayClusterSpec|authOptions", "{\"mode\":\"token\"}"};
	j = rj_make(sidecar, 2);
	rw_buf_reset(&b);
	t = built(rw_rayjob_build_cluster(j, "rayjob-sample-x7k2p", "rayjob-sample-q4z9s", &b), &b);
	CHECK_EQ_INT(rw_rayjob_submit_command(j, NULL, "rayjob-sample-q4z9s", &cmd), 0);
	meta = rw_doc_get(t, "metadata");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(meta, "labels"), "ray.io/job-submission-mode"),
		     "SidecarMode");
	CHECK_EQ_STR(
	    rw_doc_gets(rw_doc_get(meta, "annotations"), "ray.io/disable-provisioned-head-restart"),
	    "true");
	CHECK_EQ_STR(
	    rw_doc_gets(rw_doc_path(t, "spec.headGroupSpec.template.spec"), "restartPolicy"),
	    "Never");
	cs = rw_doc_path(t, "spec.headGroupSpec.template.spec.containers");
	CHECK(cs && cs->n == 2);
	c = rw_doc_at(cs, 1);
	CHECK_EQ_STR(rw_doc_gets(c, "name"), RW_RAYJOB_SUBMITTER_CONTAINER);
	CHECK_EQ_STR(rw_doc_gets(c, "image"), "rayproject/ray:2.52.0");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(c, "resources.limits"), "cpu"), "1");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(c, "resources.limits"), "memory"), "1Gi");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(c, "resources.requests"), "cpu"), "500m");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(c, "resources.requests"), "memory"), "200Mi");
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(rw_doc_get(c, "command"), 1)), "-ce");
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(rw_doc_get(c, "args"), 0)), cmd.data);
	CHECK_EQ_STR(envv(c, 0, "name"), "PYTHONUNBUFFERED");
	CHECK_EQ_STR(envv(c, 0, "value"), "1");
	CHECK_EQ_STR(envv(c, 1, "name"), "RAY_DASHBOARD_ADDRESS");
	CHECK(envv(c, 1, "value") == NULL); /* empty: left out, as KubeRay's omitempty */
	CHECK_EQ_STR(envv(c, 2, "name"), "RAY_JOB_SUBMISSION_ID");
	CHECK_EQ_STR(envv(c, 2, "value"), "rayjob-sample-q4z9s");
	CHECK_EQ_STR(envv(c, 3, "name"), "RAY_AUTH_MODE");
	CHECK_EQ_STR(envv(c, 4, "name"), "RAY_AUTH_TOKEN");
	CHECK_EQ_STR(
	    rw_doc_gets(rw_doc_path(rw_doc_at(rw_doc_get(c, "env"), 4), "valueFrom.secretKeyRef"),
			"name"),
	    "rayjob-sample-x7k2p");
	/* The job's spec is left alone: the sidecar is only in what was built. */
	CHECK_EQ_INT(rw_doc_path(j->cluster_spec, "headGroupSpec.template.spec.containers")->n, 1);
	rw_doc_free(t);
	rw_rayjob_free(j);

	/* clusterSelector: no cluster to build. */
	const char *const sel[] = {"spec|rayClusterSpec", "-", "spec|clusterSelector",
				   "{\"ray.io/cluster\":\"c\"}"};
	j = rj_make(sel, 2);
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rayjob_build_cluster(j, "c", "id", &b), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	rw_rayjob_free(j);
	rw_buf_fini(&cmd);
	rw_buf_fini(&b);
}

static void
t_submitter(void)
{
	struct rw_buf b, cmd;
	struct rw_rayjob *j = rj_make(NULL, 0);
	struct rw_doc_node *t, *meta, *c, *pod;
	const char *url = "rayjob-sample-x7k2p-head-svc.default.svc.cluster.local:8265";

	rw_buf_init(&b, 1 << 22);
	rw_buf_init(&cmd, 1 << 20);
	CHECK_EQ_INT(rw_rayjob_submit_command(j, url, "rayjob-sample-q4z9s", &cmd), 0);
	t = built(rw_rayjob_build_submitter(j, "rayjob-sample-q4z9s", url, "head:img", &b), &b);
	meta = rw_doc_get(t, "metadata");
	CHECK_EQ_STR(rw_doc_gets(t, "apiVersion"), "batch/v1");
	CHECK_EQ_STR(rw_doc_gets(t, "kind"), "Job");
	CHECK_EQ_STR(rw_doc_gets(meta, "name"), "rayjob-sample");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(meta, "labels"), "ray.io/originated-from-cr-name"),
		     "rayjob-sample");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(meta, "labels"), "ray.io/originated-from-crd"),
		     "RayJob");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_get(meta, "labels"), "app.kubernetes.io/created-by"),
		     "kuberay-operator");
	CHECK(rw_doc_get(rw_doc_get(meta, "labels"), "team") == NULL);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_at(rw_doc_get(meta, "ownerReferences"), 0), "uid"),
		     "rj-uid-1");
	CHECK_EQ_INT(rw_doc_int_or(rw_doc_get(t, "spec"), "backoffLimit", -1), 2);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(t, "spec.template.metadata.labels"),
				 "app.kubernetes.io/created-by"),
		     "kuberay-operator");
	pod = rw_doc_path(t, "spec.template.spec");
	CHECK_EQ_STR(rw_doc_gets(pod, "restartPolicy"), "Never");
	c = rw_doc_at(rw_doc_get(pod, "containers"), 0);
	CHECK_EQ_STR(rw_doc_gets(c, "name"), RW_RAYJOB_SUBMITTER_CONTAINER);
	CHECK_EQ_STR(rw_doc_gets(c, "image"), "head:img");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(c, "resources.requests"), "memory"), "200Mi");
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(rw_doc_get(c, "command"), 0)), "/bin/bash");
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(rw_doc_get(c, "args"), 0)), cmd.data);
	CHECK_EQ_STR(envv(c, 1, "value"), url);
	CHECK_EQ_STR(envv(c, 2, "value"), "rayjob-sample-q4z9s");
	CHECK(rw_doc_at(rw_doc_get(c, "env"), 3) == NULL);
	rw_doc_free(t);
	/* Without an image given, the rayClusterSpec's head image. */
	rw_buf_reset(&b);
	t = built(rw_rayjob_build_submitter(j, "id", url, NULL, &b), &b);
	CHECK_EQ_STR(
	    rw_doc_gets(rw_doc_at(rw_doc_path(t, "spec.template.spec.containers"), 0), "image"),
	    "rayproject/ray:2.52.0");
	rw_doc_free(t);
	rw_rayjob_free(j);

	/* A user template keeps its command, pod settings and labels; env is appended. */
	const char *const user[] = {
	    "spec|submitterPodTemplate",
	    "{\"metadata\":{\"labels\":{\"x\":\"y\"}},\"spec\":{\"restartPolicy\":\"OnFailure\","
	    "\"containers\":[{\"name\":\"light\",\"image\":\"quay.io/kuberay/submitter:v1.5.0\","
	    "\"command\":[\"/submitter\"],\"env\":[{\"name\":\"A\",\"value\":\"1\"}]}]}}",
	    "spec|submitterConfig", "{\"backoffLimit\":5}"};
	j = rj_make(user, 2);
	rw_buf_reset(&b);
	t = built(rw_rayjob_build_submitter(j, "id", url, "head:img", &b), &b);
	CHECK_EQ_INT(rw_doc_int_or(rw_doc_get(t, "spec"), "backoffLimit", -1), 5);
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(t, "spec.template.metadata.labels"), "x"), "y");
	CHECK_EQ_STR(rw_doc_gets(rw_doc_path(t, "spec.template.metadata.labels"),
				 "ray.io/originated-from-crd"),
		     "RayJob");
	pod = rw_doc_path(t, "spec.template.spec");
	CHECK_EQ_STR(rw_doc_gets(pod, "restartPolicy"), "OnFailure");
	c = rw_doc_at(rw_doc_get(pod, "containers"), 0);
	CHECK_EQ_STR(rw_doc_gets(c, "image"), "quay.io/kuberay/submitter:v1.5.0");
	CHECK_EQ_INT(rw_doc_get(c, "command")->n, 1);
	CHECK(rw_doc_get(c, "args") == NULL);
	CHECK_EQ_STR(envv(c, 0, "name"), "A");
	CHECK_EQ_STR(envv(c, 1, "name"), "PYTHONUNBUFFERED");
	CHECK_EQ_STR(envv(c, 3, "name"), "RAY_JOB_SUBMISSION_ID");
	rw_doc_free(t);
	rw_rayjob_free(j);

	/* A user container without a command gets the default one. */
	const char *const nocmd[] = {"spec|submitterPodTemplate",
				     "{\"spec\":{\"containers\":[{\"name\":\"s\",\"image\":\"i\","
				     "\"command\":[]}]}}"};
	j = rj_make(nocmd, 1);
	rw_buf_reset(&b);
	t = built(rw_rayjob_build_submitter(j, "rayjob-sample-q4z9s", url, NULL, &b), &b);
	c = rw_doc_at(rw_doc_path(t, "spec.template.spec.containers"), 0);
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(rw_doc_get(c, "command"), 2)), "--");
	CHECK_EQ_STR(rw_doc_str(rw_doc_at(rw_doc_get(c, "args"), 0)), cmd.data);
	CHECK_EQ_STR(rw_doc_gets(c, "image"), "i");
	rw_doc_free(t);
	rw_rayjob_free(j);

	/* Refused: another mode, a template without a container. */
	const char *const http[] = {"spec|submissionMode", "\"HTTPMode\""};
	const char *const empty[] = {"spec|submitterPodTemplate", "{\"spec\":{\"containers\":[]}}"};
	j = rj_make(http, 1);
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rayjob_build_submitter(j, "id", url, NULL, &b), -EINVAL);
	rw_rayjob_free(j);
	j = rj_make(empty, 1);
	CHECK_EQ_INT(rw_rayjob_build_submitter(j, "id", url, NULL, &b), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	rw_rayjob_free(j);
	rw_buf_fini(&cmd);
	rw_buf_fini(&b);
}

static void
t_http(void)
{
	const char *const p[] = {"spec|submissionMode",	   "\"HTTPMode\"",
				 "spec|entrypoint",	   "\"  python x.py\\n\"",
				 "spec|entrypointNumGpus", "0.5"};
	struct rw_rayjob *j = with(p, 3);
	struct rw_reply r, back;
	struct rw_buf b;
	char err[256];
	char longid[RW_ID_MAX + 1];

	memset(&r, 0, sizeof(r));
	CHECK_EQ_INT(
	    rw_rayjob_http_submission(j, "rayjob-sample-q4z9s", &r.submit, err, sizeof(err)), 0);
	CHECK_EQ_STR(r.submit.submission_id, "rayjob-sample-q4z9s");
	CHECK_EQ_STR(r.submit.entrypoint, "python x.py");
	CHECK_EQ_STR(r.submit.runtime_env_json, "{\"test\":\"test\"}");
	CHECK_EQ_STR(r.submit.metadata_json, "{\"testKey\":\"testValue\"}");
	CHECK_EQ_STR(r.submit.resources_json, "{\"Custom_1\":1,\"Custom_2\":5.5}");
	CHECK(r.submit.num_cpus == 1.0 && r.submit.num_gpus == 0.5);
	CHECK(r.submit.memory < 0);
	/* The agent takes it: through the wire and back unchanged. */
	r.has_submit = 1;
	rw_buf_init(&b, RW_WIRE_MAX_MSG);
	CHECK_EQ_INT(rw_reply_encode(&r, &b), 0);
	CHECK_EQ_INT(rw_reply_decode(b.data, b.len, &back, err, sizeof(err)), 0);
	CHECK(rw_reply_equal(&r, &back));
	rw_reply_fini(&back);
	rw_buf_fini(&b);
	rw_reply_fini(&r);
	rw_rayjob_free(j);

	/* Absent parts are not sent (Go's omitempty). */
	const char *const bare[] = {"spec|runtimeEnvYAML", "-", "spec|entrypointResources",
				    "\"{}\""};
	j = rj_make(bare, 2);
	CHECK_EQ_INT(rw_rayjob_http_submission(j, "id", &r.submit, err, sizeof(err)), 0);
	CHECK(!r.submit.runtime_env_json && !r.submit.metadata_json && !r.submit.resources_json);
	CHECK(r.submit.num_cpus < 0 && r.submit.num_gpus < 0);
	rw_job_submit_fini(&r.submit);
	rw_rayjob_free(j);

	/* Refusals leave nothing allocated. */
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	j = rj_make(NULL, 0);
	CHECK_EQ_INT(rw_rayjob_http_submission(j, NULL, &r.submit, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(rw_rayjob_http_submission(j, longid, &r.submit, err, sizeof(err)), -EINVAL);
	CHECK(r.submit.entrypoint == NULL && r.submit.submission_id[0] == '\0');
	rw_rayjob_free(j);
	const char *const noep[] = {"spec|entrypoint", "\" \\n \""};
	const char *const badenv[] = {"spec|runtimeEnvYAML", "\"a: [\""};
	const char *const badres[] = {"spec|entrypointResources", "\"{\\\"GPU\\\": true}\""};
	struct {
		const char *const *p;
		const char *msg;
	} bad[] = {{noep, "spec.entrypoint is empty"},
		   {badenv, "failed to unmarshal RuntimeEnvYAML: a: [: "},
		   {badres,
		    "entrypointResources must be a JSON object of resource names to numbers: "
		    "the value of GPU is not a number"}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = rj_make(bad[i].p, 1);
		CHECK_EQ_INT(rw_rayjob_http_submission(j, "id", &r.submit, err, sizeof(err)),
			     -EINVAL);
		CHECK(strncmp(err, bad[i].msg, strlen(bad[i].msg)) == 0);
		CHECK(!r.submit.entrypoint && !r.submit.runtime_env_json);
		rw_rayjob_free(j);
	}
}

/* ---- the head Service (BuildHeadServiceForRayJob) ---- */

/* The RayJob's cluster as the API server returns it (a uid added), parsed. */
static struct rw_raycluster *
cluster_of(const struct rw_rayjob *j, const char *name)
{
	struct rw_buf b;
	struct rw_doc_node *t;
	struct rw_raycluster *c = NULL;
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_rayjob_build_cluster(j, name, "id-1", &b), 0);
	t = rj_tree(b.data, b.len);
	rw_doc_set_str(rw_doc_obj(t, "metadata"), "uid", "rc-uid-1");
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_doc_dump(t, &b), 0);
	rw_doc_free(t);
	CHECK_EQ_INT(rw_raycluster_parse(b.data, b.len, &c, NULL, 0), 0);
	rw_buf_fini(&b);
	return c;
}

static const char *
label(const struct rw_doc_node *svc, const char *where, const char *key)
{
	return rw_doc_gets(rw_doc_path(svc, where), key);
}

/* Both absent, or equal. */
static bool
same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void
t_head_service(void)
{
	static const char *const custom[] = {
	    "spec|rayClusterSpec|headGroupSpec|headService",
	    ("{\"metadata\":{\"name\":\"my-head\",\"labels\":{\"team\":\"a\"},\"annotations\":"
	     "{\"c\":\"1\"}},\"spec\":{\"ports\":[{\"name\":\"extra\",\"port\":9999}]}}"),
	    "spec|rayClusterSpec|headServiceAnnotations",
	    "{\"h\":\"1\"}",
	};
	static const char *const nodeport[] = {"spec|rayClusterSpec|headGroupSpec|serviceType",
					       "\"NodePort\""};
	static const char *const annotated[] = {"spec|rayClusterSpec|headServiceAnnotations",
						"{\"h\":\"1\"}"};
	static const char *const named[] = {"metadata|name",
					    "\"a23456789012345678901234567890123456789012345x7\""};
	static const struct {
		const char *what;
		const char *const *patch;
		int npatch;
		bool cluster_ip_env; /* ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE=true */
		const char *name, *identifier;
		bool headless;
		const char *type;	 /* spec.type, NULL: absent */
		const char *annotations; /* the one annotation key expected, NULL: none */
		int nports;
	} c[] = {
	    {"sample: headless, the cluster's ports", NULL, 0, false, "rayjob-sample-head-svc",
	     "rayjob-sample-head", true, NULL, NULL, 4},
	    {"headServiceAnnotations stay on the cluster's own service", annotated, 1, false,
	     "rayjob-sample-head-svc", "rayjob-sample-head", true, NULL, NULL, 4},
	    {"ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE: a ClusterIP service", NULL, 0, true,
	     "rayjob-sample-head-svc", "rayjob-sample-head", false, NULL, NULL, 4},
	    {"serviceType NodePort: not headless", nodeport, 1, false, "rayjob-sample-head-svc",
	     "rayjob-sample-head", false, "NodePort", NULL, 4},
	    {"custom headService: renamed, its labels replaced, its annotations kept", custom, 2,
	     false, "rayjob-sample-head-svc", "rayjob-sample-head", false, NULL, "c", 5},
	    {"a 47-character name is not cut (no CheckName since KubeRay v1.4)", named, 1, false,
	     "a23456789012345678901234567890123456789012345x7-head-svc",
	     "a23456789012345678901234567890123456789012345x7-head", true, NULL, NULL, 4},
	};
	struct rw_buf b;
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(strlen(c[5].name), RW_RAYJOB_MAX_NAME + strlen("-head-svc"));
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct rw_rayjob *j = rj_make(c[i].patch, c[i].npatch);
		struct rw_raycluster *rc = cluster_of(j, "rayjob-sample-x7k2p");
		struct rw_raycluster_opts o;
		struct rw_doc_node *svc, *ref, *sel, *ann, *ports;
		rw_raycluster_opts_default(&o);
		o.head_cluster_ip_service = c[i].cluster_ip_env;
		int failed = rwt_failed;
		rw_buf_reset(&b);
		CHECK_EQ_INT(rw_rayjob_build_head_service(j, rc, &o, &b), 0);
		svc = rj_tree(b.data, b.len);
		CHECK_EQ_STR(rw_doc_gets(svc, "kind"), "Service");
		CHECK_EQ_STR(label(svc, "metadata", "name"), c[i].name);
		CHECK(strlen(c[i].name) <= 63);
		CHECK_EQ_STR(label(svc, "metadata", "namespace"), "default");
		/* Exactly KubeRay's four labels: no ray.io/cluster, so the cluster's own
		 * head-service selectors and informers never take it for theirs. */
		CHECK_EQ_INT(rw_doc_path(svc, "metadata.labels")->n, 4);
		CHECK_EQ_STR(label(svc, "metadata.labels", "ray.io/originated-from-cr-name"),
			     j->obj.name);
		CHECK_EQ_STR(label(svc, "metadata.labels", "ray.io/originated-from-crd"), "RayJob");
		CHECK_EQ_STR(label(svc, "metadata.labels", "ray.io/node-type"), "head");
		CHECK_EQ_STR(label(svc, "metadata.labels", "ray.io/identifier"), c[i].identifier);
		/* The selector is the cluster's head service's: it follows the cluster. */
		sel = rw_doc_path(svc, "spec.selector");
		CHECK(sel && sel->n == 5);
		CHECK_EQ_STR(rw_doc_gets(sel, "ray.io/cluster"), "rayjob-sample-x7k2p");
		CHECK_EQ_STR(rw_doc_gets(sel, "ray.io/node-type"), "head");
		CHECK_EQ_STR(rw_doc_gets(sel, "ray.io/identifier"), "rayjob-sample-x7k2p-head");
		CHECK_EQ_STR(rw_doc_gets(sel, "app.kubernetes.io/name"), "kuberay");
		CHECK_EQ_STR(rw_doc_gets(sel, "app.kubernetes.io/created-by"), "kuberay-operator");
		/* Owned (controller) by the RayJob, not the cluster: it outlives retries. */
		ref = rw_doc_at(rw_doc_path(svc, "metadata.ownerReferences"), 0);
		CHECK_EQ_INT(rw_doc_path(svc, "metadata.ownerReferences")->n, 1);
		CHECK_EQ_STR(rw_doc_gets(ref, "apiVersion"), "ray.io/v1");
		CHECK_EQ_STR(rw_doc_gets(ref, "kind"), "RayJob");
		CHECK_EQ_STR(rw_doc_gets(ref, "name"), j->obj.name);
		CHECK_EQ_STR(rw_doc_gets(ref, "uid"), "rj-uid-1");
		CHECK(rw_doc_true(rw_doc_get(ref, "controller")));
		CHECK(rw_doc_true(rw_doc_get(ref, "blockOwnerDeletion")));
		CHECK(same(label(svc, "spec", "clusterIP"), c[i].headless ? "None" : NULL));
		CHECK(rw_doc_true(rw_doc_path(svc, "spec.publishNotReadyAddresses")) ==
		      c[i].headless);
		CHECK(same(label(svc, "spec", "type"), c[i].type));
		ann = rw_doc_path(svc, "metadata.annotations");
		if (c[i].annotations)
			CHECK(ann && ann->n == 1 && rw_doc_get(ann, c[i].annotations));
		else
			CHECK(ann == NULL);
		ports = rw_doc_path(svc, "spec.ports");
		CHECK(ports && ports->n == c[i].nports);
		for (int k = 0; ports && k < ports->n && c[i].nports == 4; k++) {
			static const char *const want[] = {"client", "dashboard", "gcs-server",
							   "metrics"};
			CHECK_EQ_STR(rw_doc_gets(ports->kids[k], "name"), want[k]);
			CHECK_EQ_STR(rw_doc_gets(ports->kids[k], "appProtocol"), "tcp");
		}
		if (rwt_failed != failed)
			fprintf(stderr, "  in case: %s\n", c[i].what);
		rw_doc_free(svc);
		rw_raycluster_free(rc);
		rw_rayjob_free(j);
	}

	/* A cluster without a head group has no head service to copy. */
	struct rw_rayjob *j = rj_make(NULL, 0);
	struct rw_raycluster *rc = NULL;
	struct rw_raycluster_opts o;
	static const char headless[] = "{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\"},"
				       "\"spec\":{}}";
	rw_raycluster_opts_default(&o);
	CHECK_EQ_INT(rw_raycluster_parse(headless, strlen(headless), &rc, NULL, 0), 0);
	rw_buf_reset(&b);
	CHECK_EQ_INT(rw_rayjob_build_head_service(j, rc, &o, &b), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	rw_raycluster_free(rc);

	/* The name alone, and a buffer too short for it. */
	char name[16];
	CHECK_EQ_INT(rw_rayjob_head_svc_name("rj", name, sizeof(name)), 0);
	CHECK_EQ_STR(name, "rj-head-svc");
	CHECK_EQ_INT(rw_rayjob_head_svc_name("rayjob-sample", name, sizeof(name)), -ENAMETOOLONG);
	rw_rayjob_free(j);
	rw_buf_fini(&b);
}

/* Which passes keep the head Service: those that start in Running, without a clusterSelector. */
static void
t_head_service_when(void)
{
	static const char *const selector[] = {"spec|clusterSelector",
					       "{\"ray.io/cluster\":\"shared\"}"};
	static const char *const other_key[] = {"spec|clusterSelector", "{\"team\":\"a\"}"};
	static const struct {
		const char *const *patch;
		int npatch;
		const char *deployment;
		bool want;
	} c[] = {
	    {NULL, 0, "Running", true},
	    {NULL, 0, "", false},
	    {NULL, 0, NULL, false},
	    {NULL, 0, "Initializing", false}, /* the cluster may not be ready: KubeRay waits */
	    {NULL, 0, "Waiting", false},      /* InteractiveMode until spec.jobId is set */
	    {NULL, 0, "Complete", false},
	    {NULL, 0, "Failed", false},
	    {NULL, 0, "Retrying", false},
	    {NULL, 0, "Suspended", false},
	    {selector, 1, "Running", false},  /* someone else's cluster, its own head service */
	    {other_key, 1, "Running", false}, /* KubeRay tests len(clusterSelector) != 0 */
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct rw_rayjob *j = rj_make(c[i].patch, c[i].npatch);
		if (rw_rayjob_wants_head_service(j, c[i].deployment) != c[i].want)
			fprintf(stderr, "  row %zu (%s)\n", i,
				c[i].deployment ? c[i].deployment : "NULL");
		CHECK(rw_rayjob_wants_head_service(j, c[i].deployment) == c[i].want);
		rw_rayjob_free(j);
	}
}

/* ---- the KubeRay samples, against golden files ---- */

static int
take_rayjob(const char *json, size_t len, void *ud)
{
	struct rw_buf *b = ud;
	struct rw_doc_node *t = NULL, *meta;
	if (b->len || rw_doc_parse(json, len, &t, NULL, 0) != 0)
		return 0;
	if (rw_doc_gets(t, "kind") && strcmp(rw_doc_gets(t, "kind"), "RayJob") == 0) {
		meta = rw_doc_obj(t, "metadata");
		rw_doc_set_str(meta, "namespace", "default");
		rw_doc_set_str(meta, "uid", "00000000-0000-4000-8000-00000000b0b0");
		rw_doc_set_int(meta, "generation", 1);
		rw_doc_dump(t, b);
	}
	rw_doc_free(t);
	return 0;
}

static void
check_golden(const char *name, const struct rw_doc_node *got)
{
	char file[512];
	snprintf(file, sizeof(file), "%s.rayjob.json", name);
	golden_check(file, got);
}

/* Everything the reconciler would make of one sample, as one document. */
static struct rw_doc_node *
build_all(const struct rw_rayjob *j)
{
	static const char cluster[] = "-x7k2p", id[] = "-q4z9s";
	char cname[128], jid[128], url[256];
	struct rw_doc_node *all = rw_doc_new(RW_DOC_OBJ), *h;
	struct rw_job_submit s;
	struct rw_buf b;
	struct rw_raycluster *rc = NULL;
	struct rw_raycluster_opts o;
	char err[256];

	snprintf(cname, sizeof(cname), "%s%s", j->obj.name, cluster);
	snprintf(jid, sizeof(jid), "%s%s", j->obj.name, id);
	snprintf(url, sizeof(url), "%s-head-svc.default.svc.cluster.local:8265", cname);
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_rayjob_build_cluster(j, cname, jid, &b), 0);
	rw_doc_set(all, "cluster", rj_tree(b.data, b.len));
	CHECK_EQ_INT(rw_raycluster_parse(b.data, b.len, &rc, NULL, 0), 0);
	rw_buf_reset(&b);
	rw_raycluster_opts_default(&o);
	CHECK_EQ_INT(rw_rayjob_build_head_service(j, rc, &o, &b), 0);
	rw_doc_set(all, "headService", rj_tree(b.data, b.len));
	rw_raycluster_free(rc);
	rw_buf_reset(&b);
	if (j->mode == RW_RAYJOB_K8SJOB) {
		CHECK_EQ_INT(rw_rayjob_build_submitter(j, jid, url, NULL, &b), 0);
		rw_doc_set(all, "submitter", rj_tree(b.data, b.len));
		rw_buf_reset(&b);
	}
	if (rw_rayjob_submit_command(j, url, jid, &b) == 0)
		rw_doc_set_str(all, "command", b.data);
	rw_buf_fini(&b);
	CHECK_EQ_INT(rw_rayjob_http_submission(j, jid, &s, err, sizeof(err)), 0);
	h = rw_doc_new(RW_DOC_OBJ);
	rw_doc_set_str(h, "submission_id", s.submission_id);
	rw_doc_set_str(h, "entrypoint", s.entrypoint);
	if (s.runtime_env_json)
		rw_doc_set(h, "runtime_env",
			   rj_tree(s.runtime_env_json, strlen(s.runtime_env_json)));
	if (s.metadata_json)
		rw_doc_set(h, "metadata", rj_tree(s.metadata_json, strlen(s.metadata_json)));
	if (s.resources_json)
		rw_doc_set(h, "entrypoint_resources",
			   rj_tree(s.resources_json, strlen(s.resources_json)));
	rw_doc_set(all, "http", h);
	rw_job_submit_fini(&s);
	return all;
}

static void
t_samples(void)
{
	static const char *const samples[] = {"ray-job.sample", "ray-job.sidecar-mode",
					      "ray-job.shutdown", "ray-job.http-mode", NULL};
	char dir[1024];
	char path[1200];
	int done = 0;

	if (rwt_corpus("kuberay-samples", dir, sizeof(dir)) != 0)
		return;
	for (const char *const *s = samples; *s; s++) {
		size_t len = 0;
		char err[256] = "";
		struct rw_buf json;
		struct rw_rayjob *j = NULL;
		struct rw_rayjob_verr e;
		snprintf(path, sizeof(path), "%s/%s.yaml", dir, *s);
		char *yaml = slurp(path, &len);
		if (!yaml) {
			printf("  skipped: %s not found\n", path);
			continue;
		}
		rw_buf_init(&json, 1 << 22);
		CHECK(rw_yaml_docs_to_json(yaml, len, 1 << 22, take_rayjob, &json, err,
					   sizeof(err)) >= 1);
		CHECK_EQ_INT(rw_rayjob_parse(json.data, json.len, &j, err, sizeof(err)), 0);
		if (j) {
			int rv = rw_rayjob_validate(j, &e);
			if (rv)
				fprintf(stderr, "  %s: %s\n", *s, e.msg);
			CHECK_EQ_INT(rv, 0);
			struct rw_doc_node *all = build_all(j);
			check_golden(*s, all);
			rw_doc_free(all);
			done++;
		}
		rw_rayjob_free(j);
		rw_buf_fini(&json);
		free(yaml);
	}
	printf("  %d samples compared\n", done);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"command", t_command},
	    {"quoting", t_quoting},
	    {"cluster", t_cluster},
	    {"submitter", t_submitter},
	    {"http", t_http},
	    {"head service", t_head_service},
	    {"head service passes", t_head_service_when},
	    {"samples", t_samples},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

/*
 * test_rc_golden.c - golden files for the RayCluster builders.
 *
 * Each KubeRay sample ray-cluster.*.yaml in the shared corpus is converted
 * with rw_yaml, given what the API server adds (namespace, uid, generation)
 * and built into every object the controller would create, once with the
 * defaults (agent sidecar, agent probes) and once in KubeRay mode (no agent,
 * KubeRay's probes). The result must equal tests/unit/golden/<sample>[.kuberay].json
 * (JSON equality, member order ignored). The golden files were reviewed by
 * hand against KubeRay's pod.go/service.go; the KubeRay-mode ones are what
 * KubeRay itself creates apart from the annotations documented in
 * docs/kuberay-compatibility.md. Without the shared corpus (rwt_corpus) the cases are
 * skipped with a message.
 * RW_GOLDEN_UPDATE=1 rewrites the golden files from the current output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rc_build.h"
#include "doc.h"
#include "rw/yaml.h"
#include "golden.h"
#include "rwtest.h"

static const char *const samples[] = {"ray-cluster.sample", "ray-cluster.autoscaler",
				      "ray-cluster.custom-head-service",
				      "ray-cluster.external-redis", NULL};

struct first_rc {
	struct rw_buf json;
	int found;
};

static int
take_raycluster(const char *json, size_t len, void *ud)
{
	struct first_rc *f = ud;
	struct rw_doc_node *n = NULL;
	if (f->found || rw_doc_parse(json, len, &n, NULL, 0) != 0)
		return 0;
	if (rw_doc_gets(n, "kind") && strcmp(rw_doc_gets(n, "kind"), "RayCluster") == 0) {
		/* What the API server adds on create. */
		struct rw_doc_node *md = rw_doc_obj(n, "metadata");
		rw_doc_set_str(md, "namespace", "default");
		rw_doc_set_str(md, "uid", "6f0c8d9e-1b2a-4c3d-8e4f-000000000001");
		rw_doc_set_int(md, "generation", 1);
		rw_doc_dump(n, &f->json);
		f->found = 1;
	}
	rw_doc_free(n);
	return 0;
}

static void
add_obj(struct rw_doc_node *into, const char *key, struct rw_buf *b, int rv)
{
	struct rw_doc_node *n = NULL;
	CHECK_EQ_INT(rv, 0);
	if (rv == 0 && rw_doc_parse(b->data, b->len, &n, NULL, 0) == 0) {
		if (into->type == RW_DOC_ARR)
			rw_doc_push(into, n);
		else
			rw_doc_set(into, key, n);
	}
	rw_buf_reset(b);
}

/* Everything the controller creates for cluster c with options o. */
static struct rw_doc_node *
build_all(const struct rw_raycluster *c, const struct rw_raycluster_opts *o)
{
	struct rw_doc_node *all = rw_doc_new(RW_DOC_OBJ);
	struct rw_buf b;
	char hash[33];
	rw_buf_init(&b, 1 << 22);
	add_obj(all, "headPod", &b, rw_raycluster_build_head_pod(c, o, &b));
	struct rw_doc_node *workers = rw_doc_arr(all, "workerPods");
	for (int i = 0; i < c->ngroups; i++) {
		struct rw_raycluster_slot slot = {0, "replica-0", 0};
		add_obj(workers, NULL, &b, rw_raycluster_build_worker_pod(c, o, i, &slot, &b));
	}
	add_obj(all, "headService", &b, rw_raycluster_build_head_service(c, o, &b));
	if (rw_raycluster_wants_serve_service(c))
		add_obj(all, "serveService", &b, rw_raycluster_build_serve_service(c, o, &b));
	if (rw_raycluster_wants_headless_service(c))
		add_obj(all, "headlessService", &b, rw_raycluster_build_headless_service(c, &b));
	if (rw_raycluster_autoscaling(c)) {
		add_obj(all, "serviceAccount", &b, rw_raycluster_build_service_account(c, &b));
		add_obj(all, "role", &b, rw_raycluster_build_role(c, &b));
		add_obj(all, "roleBinding", &b, rw_raycluster_build_role_binding(c, &b));
	}
	struct rw_doc_node *plan = rw_doc_obj(all, "plan");
	rw_doc_set_int(plan, "desiredWorkers", rw_raycluster_desired_workers(c));
	rw_doc_set_int(plan, "minWorkers", rw_raycluster_min_workers(c));
	rw_doc_set_int(plan, "maxWorkers", rw_raycluster_max_workers(c));
	CHECK_EQ_INT(rw_raycluster_spec_hash(c->obj.spec, hash), 0);
	rw_doc_set_str(plan, "specHash", hash);
	rw_buf_fini(&b);
	return all;
}

static void
check_golden(const char *name, const struct rw_doc_node *got)
{
	char file[512];
	snprintf(file, sizeof(file), "%s.json", name);
	golden_check(file, got);
}

static void
t_samples(void)
{
	char dir[1024];
	char path[1200];
	int done = 0;

	if (rwt_corpus("kuberay-samples", dir, sizeof(dir)) != 0)
		return;
	for (const char *const *s = samples; *s; s++) {
		size_t len = 0;
		char err[256] = "";
		struct first_rc f = {.found = 0};
		struct rw_raycluster *c = NULL;
		snprintf(path, sizeof(path), "%s/%s.yaml", dir, *s);
		char *yaml = slurp(path, &len);
		if (!yaml) {
			printf("  skipped: %s not found\n", path);
			continue;
		}
		rw_buf_init(&f.json, 1 << 22);
		CHECK(rw_yaml_docs_to_json(yaml, len, 1 << 22, take_raycluster, &f, err,
					   sizeof(err)) >= 1);
		CHECK_EQ_INT(f.found, 1);
		CHECK_EQ_INT(rw_raycluster_parse(f.json.data, f.json.len, &c, err, sizeof(err)), 0);
		if (c) {
			struct rw_raycluster_opts o;
			char name[256];
			rw_raycluster_opts_default(&o);
			o.agent_image = "raywarden/raywarden-agent:test";
			o.version = "raywarden-test";
			o.controller_addr = "tcp://raywarden-controller.raywarden-system.svc:8478";
			struct rw_doc_node *all = build_all(c, &o);
			check_golden(*s, all);
			rw_doc_free(all);

			rw_raycluster_opts_default(&o);
			o.agent = false;
			o.probes = RW_RAYCLUSTER_PROBE_KUBERAY;
			o.version = "nightly";
			all = build_all(c, &o);
			snprintf(name, sizeof(name), "%s.kuberay", *s);
			check_golden(name, all);
			rw_doc_free(all);
			done++;
		}
		rw_raycluster_free(c);
		rw_buf_fini(&f.json);
		free(yaml);
	}
	printf("  %d samples compared\n", done);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"golden files of the KubeRay samples", t_samples},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

/*
 * rs_fixture.h - a RayService fixture for the rs_* unit tests: the base
 * object (close to ray-service.sample.yaml) and a tiny patcher that sets a
 * JSON value at a path of member names / array indexes separated by '|'
 * (member names may contain dots, e.g. ray.io/initializing-timeout).
 */
#ifndef RS_FIXTURE_H
#define RS_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "doc_patch.h"
#include "rs_build.h"
#include "rwtest.h"

static const char rs_base_json[] =
    "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayService\",\"metadata\":{\"name\":"
    "\"rayservice-sample\",\"namespace\":\"default\",\"uid\":\"rs-uid-1\",\"generation\":2,"
    "\"labels\":{\"team\":\"a\"},\"annotations\":{\"note\":\"x\"}},\"spec\":{\"serveConfigV2\":"
    "\"applications:\\n  - name: fruit_app\\n    import_path: fruit.deployment_graph\\n    "
    "route_prefix: /fruit\\n    deployments:\\n      - name: MangoStand\\n        "
    "num_replicas: 2\\n        user_config:\\n          price: 3\\n        "
    "ray_actor_options:\\n          num_cpus: 0.1\\n\",\"rayClusterConfig\":{\"rayVersion\":"
    "\"2.52.0\",\"headGroupSpec\":{\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":"
    "[{\"name\":\"ray-head\",\"image\":\"rayproject/ray:2.52.0\",\"ports\":[{\"containerPort\":"
    "6379,\"name\":\"gcs-server\"},{\"containerPort\":8265,\"name\":\"dashboard\"},"
    "{\"containerPort\":10001,\"name\":\"client\"},{\"containerPort\":8000,\"name\":\"serve\"}]}"
    "]}}},\"workerGroupSpecs\":[{\"groupName\":\"small-group\",\"replicas\":1,\"minReplicas\":1,"
    "\"maxReplicas\":5,\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":[{\"name\":"
    "\"ray-worker\",\"image\":\"rayproject/ray:2.52.0\"}]}}}]}}}";

/* Set the JSON `value` at `path` ("spec|rayClusterConfig|rayVersion"); "-" deletes. */
static int
rs_patch(struct rw_doc_node *root, const char *path, const char *value)
{
	return doc_patch(root, path, value);
}

/* Parse the base RayService and apply n patches (path, value pairs). */
static struct rw_rayservice *
rs_make(const char *const *patches, int n)
{
	struct rw_rayservice *rs = NULL;
	char err[256] = "";
	struct rw_buf b;
	struct rw_doc_node *root = NULL;
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_doc_parse(rs_base_json, strlen(rs_base_json), &root, err, sizeof(err)), 0);
	for (int i = 0; root && i < n; i++)
		CHECK_EQ_INT(rs_patch(root, patches[2 * i], patches[2 * i + 1]), 0);
	CHECK_EQ_INT(rw_doc_dump(root, &b), 0);
	rw_doc_free(root);
	CHECK_EQ_INT(rw_rayservice_parse(b.data, b.len, &rs, err, sizeof(err)), 0);
	rw_buf_fini(&b);
	return rs;
}

#endif

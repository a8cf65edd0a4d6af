/*
 * rj_fixture.h - a RayJob fixture for the test_rj_* unit tests: the base
 * object (ray-job.sample.yaml as the API server returns it, plus labels and
 * annotations) and a patcher that sets a JSON value at a path of member
 * names / array indexes separated by '|' (names may contain dots:
 * clusterSelector|ray.io/cluster); the value "-" deletes the member.
 */
#ifndef RJ_FIXTURE_H
#define RJ_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_patch.h"
#include "rj_model.h"
#include "rwtest.h"

static const char rj_base_json[] =
    "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayJob\",\"metadata\":{\"name\":\"rayjob-sample\","
    "\"namespace\":\"default\",\"uid\":\"rj-uid-1\",\"generation\":1,\"labels\":{\"team\":\"a\"},"
    "\"annotations\":{\"note\":\"x\"}},\"spec\":{\"entrypoint\":\"python "
    "/home/ray/samples/sample_code.py\",\"runtimeEnvYAML\":\"pip:\\n  - requests==2.26.0\\n  - "
    "pendulum==2.1.2\\nenv_vars:\\n  counter_name: \\\"test_counter\\\"\\n\","
    "\"submissionMode\":\"K8sJobMode\",\"rayClusterSpec\":{\"rayVersion\":\"2.52.0\","
    "\"headGroupSpec\":{\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":[{\"name\":"
    "\"ray-head\",\"image\":\"rayproject/ray:2.52.0\",\"ports\":[{\"containerPort\":6379,\"name\":"
    "\"gcs-server\"},{\"containerPort\":8265,\"name\":\"dashboard\"},{\"containerPort\":10001,"
    "\"name\":\"client\"}]}]}}},\"workerGroupSpecs\":[{\"groupName\":\"small-group\",\"replicas\":"
    "1,"
    "\"minReplicas\":1,\"maxReplicas\":5,\"rayStartParams\":{},\"template\":{\"spec\":"
    "{\"containers\":[{\"name\":\"ray-worker\",\"image\":\"rayproject/ray:2.52.0\"}]}}}]}}}";

/* Set the JSON `value` at `path`; "-" deletes. 0 or -1. */
static inline int
rj_patch(struct rw_doc_node *root, const char *path, const char *value)
{
	return doc_patch(root, path, value);
}

/* The base RayJob with n patches (path, value pairs) applied, parsed. */
static inline struct rw_rayjob *
rj_make(const char *const *patches, int n)
{
	struct rw_rayjob *j = NULL;
	char err[256] = "";
	struct rw_buf b;
	struct rw_doc_node *root = NULL;
	rw_buf_init(&b, 1 << 22);
	CHECK_EQ_INT(rw_doc_parse(rj_base_json, strlen(rj_base_json), &root, err, sizeof(err)), 0);
	for (int i = 0; root && i < n; i++)
		CHECK_EQ_INT(rj_patch(root, patches[2 * i], patches[2 * i + 1]), 0);
	CHECK_EQ_INT(rw_doc_dump(root, &b), 0);
	rw_doc_free(root);
	CHECK_EQ_INT(rw_rayjob_parse(b.data, b.len, &j, err, sizeof(err)), 0);
	rw_buf_fini(&b);
	return j;
}

/* A parsed tree of JSON text (NULL when it does not parse). */
static inline struct rw_doc_node *
rj_tree(const char *s, size_t n)
{
	struct rw_doc_node *t = NULL;
	CHECK_EQ_INT(rw_doc_parse(s, n, &t, NULL, 0), 0);
	return t;
}

#endif

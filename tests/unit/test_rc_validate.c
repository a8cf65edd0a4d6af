/* test_rc_validate.c - KubeRay's RayCluster validation messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_validate.h"
#include "rwtest.h"

#define HEAD                                                                                       \
	"\"headGroupSpec\":{\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":[{"       \
	"\"name\":\"h\",\"image\":\"i\"}]}}}"
#define HEADP(params, env)                                                                         \
	"\"headGroupSpec\":{\"rayStartParams\":" params                                            \
	",\"template\":{\"spec\":{\"containers\":[{"                                               \
	"\"name\":\"h\",\"image\":\"i\",\"env\":" env "}]}}}"
#define GROUP(extra)                                                                               \
	"{\"groupName\":\"g\"," extra "\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\","   \
	"\"image\":\"i\"}]}}}"
#define GROUP2(name, extra)                                                                        \
	"{\"groupName\":\"" name "\"," extra "\"template\":{\"spec\":{\"containers\":[{\"name\":"  \
	"\"w\",\"image\":\"i\"}]}}}"
#define RC(meta, spec) "{\"metadata\":" meta ",\"spec\":{" spec "}}"
#define META "{\"name\":\"rc\",\"namespace\":\"ns\"}"

struct vcase {
	const char *json;
	const char *reason; /* NULL = valid */
	const char *msg;
};

static void
t_validate(void)
{
	static const struct vcase cases[] = {
	    {RC(META,
		HEAD ",\"workerGroupSpecs\":[" GROUP("\"minReplicas\":1,\"maxReplicas\":2,") "]"),
	     NULL, NULL},
	    {RC("{\"name\":\"a-very-long-name-that-is-longer-than-fifty-three-characters\"}", HEAD),
	     "InvalidRayClusterMetadata", "RayCluster name should be no more than 53 characters"},
	    {RC("{\"name\":\"Bad_Name\"}", HEAD), "InvalidRayClusterMetadata",
	     "RayCluster name should be a valid DNS1035 label: [a DNS-1035 label must consist of "
	     "lower case alphanumeric characters or '-', start with an alphabetic character, and "
	     "end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
	     "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]"},
	    {RC("{\"name\":\"1abc\"}", HEAD), "InvalidRayClusterMetadata", NULL},
	    {RC(META, "\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[]}}}"),
	     "InvalidRayClusterSpec", "headGroupSpec should have at least one container"},
	    {RC(META,
		HEAD ",\"workerGroupSpecs\":[{\"groupName\":\"g\",\"template\":{\"spec\":{}}}]"),
	     "InvalidRayClusterSpec", "workerGroupSpec should have at least one container"},
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP("\"minReplicas\":1,") "]"),
	     "InvalidRayClusterSpec",
	     "worker group g must set both minReplicas and maxReplicas when autoscaling is "
	     "disabled"},
	    {RC(META,
		"\"enableInTreeAutoscaling\":true," HEAD ",\"workerGroupSpecs\":[" GROUP("") "]"),
	     NULL, NULL},
	    {RC(META,
		HEAD ",\"workerGroupSpecs\":[" GROUP("\"minReplicas\":-1,\"maxReplicas\":2,") "]"),
	     "InvalidRayClusterSpec", "worker group g has negative minReplicas -1"},
	    {RC(META,
		HEAD ",\"workerGroupSpecs\":[" GROUP("\"minReplicas\":0,\"maxReplicas\":-2,") "]"),
	     "InvalidRayClusterSpec", "worker group g has negative maxReplicas -2"},
	    {RC(META,
		HEAD ",\"workerGroupSpecs\":[" GROUP("\"minReplicas\":3,\"maxReplicas\":2,") "]"),
	     "InvalidRayClusterSpec",
	     "worker group g has minReplicas 3 greater than maxReplicas 2"},
	    /* replicas: KubeRay would clamp a negative value silently; refused here. */
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP(
			  "\"replicas\":-1,\"minReplicas\":0,\"maxReplicas\":2,") "]"),
	     "InvalidRayClusterSpec", "worker group g has negative replicas -1"},
	    {RC(META, "\"enableInTreeAutoscaling\":true," HEAD
		      ",\"workerGroupSpecs\":[" GROUP("\"replicas\":-3,") "]"),
	     "InvalidRayClusterSpec", "worker group g has negative replicas -3"},
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP(
			  "\"replicas\":0,\"minReplicas\":0,\"maxReplicas\":0,") "]"),
	     NULL, NULL},
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP(
			  "\"replicas\":null,\"minReplicas\":0,\"maxReplicas\":1,") "]"),
	     NULL, NULL},
	    /* KubeRay's own min/max rules come first. */
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP(
			  "\"replicas\":-1,\"minReplicas\":-1,\"maxReplicas\":2,") "]"),
	     "InvalidRayClusterSpec", "worker group g has negative minReplicas -1"},
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP(
			  "\"replicas\":-1,\"minReplicas\":3,\"maxReplicas\":2,") "]"),
	     "InvalidRayClusterSpec",
	     "worker group g has minReplicas 3 greater than maxReplicas 2"},
	    {RC(META,
		HEAD ",\"workerGroupSpecs\":[" GROUP("\"minReplicas\":-1,\"maxReplicas\":-2,") "]"),
	     "InvalidRayClusterSpec", "worker group g has negative minReplicas -1"},
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP(
			  "\"minReplicas\":2147483647,\"maxReplicas\":0,") "]"),
	     "InvalidRayClusterSpec",
	     "worker group g has minReplicas 2147483647 greater than maxReplicas 0"},
	    /* groupName: unique, as KubeRay's webhook demands; checked before anything else. */
	    {RC(META, HEAD
		",\"workerGroupSpecs\":[" GROUP("\"minReplicas\":0,\"maxReplicas\":1,") "," GROUP(
		    "\"minReplicas\":0,"
		    "\"maxReplicas\":1,") "]"),
	     "InvalidRayClusterSpec",
	     "workerGroupSpecs[1]: worker group names must be unique (groupName g is also "
	     "workerGroupSpecs[0])"},
	    {RC(META, "\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[]}}},"
		      "\"workerGroupSpecs\":[" GROUP("") "," GROUP("") "]"),
	     "InvalidRayClusterSpec",
	     "workerGroupSpecs[1]: worker group names must be unique (groupName g is also "
	     "workerGroupSpecs[0])"},
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP2("a", "") "," GROUP2("b", "") "," GROUP2(
			  "c", "") "," GROUP2("b", "") "]"),
	     "InvalidRayClusterSpec",
	     "workerGroupSpecs[3]: worker group names must be unique (groupName b is also "
	     "workerGroupSpecs[1])"},
	    {RC(META,
		HEAD ",\"workerGroupSpecs\":[" GROUP2(
		    "a",
		    "\"minReplicas\":0,"
		    "\"maxReplicas\":1,") "," GROUP2("a-b",
						     "\"minReplicas\":0,\"maxReplicas\":1,") "]"),
	     NULL, NULL},
	    {RC("{\"name\":\"rc\",\"annotations\":{\"ray.io/ft-enabled\":\"true\"}}",
		"\"gcsFaultToleranceOptions\":{\"redisAddress\":\"r:6379\"}," HEAD),
	     "InvalidRayClusterSpec",
	     "ray.io/ft-enabled annotation and GcsFaultToleranceOptions are both set. Please use "
	     "only GcsFaultToleranceOptions to configure GCS fault tolerance"},
	    {RC(META, HEADP("{}", "[{\"name\":\"RAY_REDIS_ADDRESS\",\"value\":\"r:6379\"}]")),
	     "InvalidRayClusterSpec",
	     "RAY_REDIS_ADDRESS is set which implicitly enables GCS fault tolerance, but "
	     "GcsFaultToleranceOptions is not set. Please set GcsFaultToleranceOptions to enable "
	     "GCS fault tolerance"},
	    {RC("{\"name\":\"rc\",\"annotations\":{\"ray.io/ft-enabled\":\"true\"}}",
		HEADP("{}", "[{\"name\":\"RAY_REDIS_ADDRESS\",\"value\":\"r:6379\"}]")),
	     NULL, NULL},
	    {RC(META, "\"gcsFaultToleranceOptions\":{\"redisAddress\":\"r\"}," HEADP(
			  "{\"redis-password\":\"x\"}", "[]")),
	     "InvalidRayClusterSpec",
	     "cannot set `redis-password` in rayStartParams when GcsFaultToleranceOptions is "
	     "enabled - use GcsFaultToleranceOptions.RedisPassword instead"},
	    {RC(META, "\"gcsFaultToleranceOptions\":{\"redisAddress\":\"r\"}," HEADP(
			  "{}", "[{\"name\":\"REDIS_PASSWORD\",\"value\":\"x\"}]")),
	     "InvalidRayClusterSpec",
	     "cannot set `REDIS_PASSWORD` env var in head Pod when GcsFaultToleranceOptions is "
	     "enabled - use GcsFaultToleranceOptions.RedisPassword instead"},
	    {RC(META, "\"gcsFaultToleranceOptions\":{\"redisAddress\":\"r\"}," HEADP(
			  "{}", "[{\"name\":\"RAY_REDIS_ADDRESS\",\"value\":\"x\"}]")),
	     "InvalidRayClusterSpec",
	     "cannot set `RAY_REDIS_ADDRESS` env var in head Pod when GcsFaultToleranceOptions is "
	     "enabled - use GcsFaultToleranceOptions.RedisAddress instead"},
	    {RC("{\"name\":\"rc\",\"annotations\":{\"ray.io/external-storage-namespace\":\"x\"}}",
		"\"gcsFaultToleranceOptions\":{\"redisAddress\":\"r\"}," HEAD),
	     "InvalidRayClusterSpec",
	     "cannot set `ray.io/external-storage-namespace` annotation when "
	     "GcsFaultToleranceOptions is enabled - use "
	     "GcsFaultToleranceOptions.ExternalStorageNamespace instead"},
	    {RC(META, HEADP("{\"redis-username\":\"u\"}", "[]")), "InvalidRayClusterSpec",
	     "cannot set redis username in rayStartParams or environment variables - use "
	     "GcsFaultToleranceOptions.RedisUsername instead"},
	    {RC(META, "\"enableInTreeAutoscaling\":true," HEAD
		      ",\"workerGroupSpecs\":[" GROUP("\"suspend\":true,") "]"),
	     "InvalidRayClusterSpec", "worker group g cannot be suspended with Autoscaler enabled"},
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP(
			  "\"suspend\":true,\"minReplicas\":0,\"maxReplicas\":1,") "]"),
	     NULL, NULL},
	    {RC(META, HEADP("{}", "[{\"name\":\"RAY_enable_autoscaler_v2\",\"value\":\"1\"}]")),
	     "InvalidRayClusterSpec",
	     "environment variable RAY_enable_autoscaler_v2 cannot be set to '1' when "
	     "enableInTreeAutoscaling is false. Please set enableInTreeAutoscaling: true to use "
	     "autoscaler v2"},
	    {RC(META,
		"\"headGroupSpec\":{\"rayStartParams\":{\"num-cpus\":\"1\"},\"resources\":{"
		"\"CPU\":\"2\"},\"template\":{\"spec\":{\"containers\":[{\"name\":\"h\"}]}}}"),
	     "InvalidRayClusterSpec",
	     "resource fields should not be set in both rayStartParams and Resources for Head "
	     "group; please use only one"},
	    {RC(META, HEADP("{\"labels\":\"a=b\"}", "[]")), "InvalidRayClusterSpec",
	     "rayStartParams['labels'] is not supported for Head group; please use the top-level "
	     "Labels field instead"},
	    {RC(META, "\"headGroupSpec\":{\"labels\":{\"ok\":\"bad value\"},\"template\":{\"spec\":"
		      "{\"containers\":[{\"name\":\"h\"}]}}}"),
	     "InvalidRayClusterSpec",
	     "invalid label value for key 'ok' in Head group: 'bad value', error: a valid label "
	     "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
	     "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
	     "or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])"
	     "?')"},
	    {RC(META, "\"upgradeStrategy\":{\"type\":\"Rolling\"}," HEAD), "InvalidRayClusterSpec",
	     "The RayCluster spec is invalid: Spec.UpgradeStrategy.Type value Rolling is invalid, "
	     "valid options are Recreate or None"},
	    {RC("{\"name\":\"rc\",\"labels\":{\"ray.io/originated-from-crd\":\"RayJob\"}}",
		"\"upgradeStrategy\":{\"type\":\"Recreate\"}," HEAD),
	     "InvalidRayClusterSpec",
	     "upgradeStrategy cannot be set when RayCluster is created by RayJob"},
	    {RC(META, "\"tlsOptions\":{}," HEAD), "InvalidRayClusterSpec",
	     "spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled"},
	    {RC(META, "\"authOptions\":{\"mode\":\"token\"},\"rayVersion\":\"2.46.0\"," HEAD),
	     "InvalidRayClusterSpec",
	     "authOptions.mode is 'token' but minimum Ray version is 2.52.0, got 2.46.0"},
	    {RC(META, HEAD ",\"workerGroupSpecs\":[" GROUP(
			  "\"minReplicas\":0,\"maxReplicas\":1,\"idleTimeoutSeconds\":10,") "]"),
	     "InvalidRayClusterSpec",
	     "worker group g has idleTimeoutSeconds set, but autoscaler version is not v2. Please "
	     "set .spec.autoscalerOptions.version to v2"},
	    {"{\"metadata\":{\"name\":\"rc\"},\"spec\":{" HEAD "},\"status\":{\"conditions\":[{"
	     "\"type\":\"RayClusterSuspending\",\"status\":\"True\"},{\"type\":"
	     "\"RayClusterSuspended\",\"status\":\"True\"}]}}",
	     "InvalidRayClusterStatus",
	     "invalid RayCluster State: rayv1.RayClusterSuspending and rayv1.RayClusterSuspended "
	     "conditions should not be both true"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_raycluster *c = NULL;
		struct rw_raycluster_verrs v;
		char err[256];
		int rv =
		    rw_raycluster_parse(cases[i].json, strlen(cases[i].json), &c, err, sizeof(err));
		if (rv)
			fprintf(stderr, "  case %zu: %s\n", i, err);
		CHECK_EQ_INT(rv, 0);
		if (!c)
			continue;
		int n = rw_raycluster_validate(c, &v);
		if ((n > 0) != (cases[i].reason != NULL))
			fprintf(stderr, "  case %zu: %d errors (%s)\n", i, n, n ? v.e[0].msg : "");
		CHECK_EQ_INT(n > 0, cases[i].reason != NULL);
		if (n > 0 && cases[i].reason) {
			CHECK_EQ_STR(v.e[0].reason, cases[i].reason);
			if (cases[i].msg)
				CHECK_EQ_STR(v.e[0].msg, cases[i].msg);
		}
		rw_raycluster_free(c);
	}
}

static void *
no_memory(size_t size)
{
	(void)size;
	return NULL;
}

/* An allocation failure while checking labels is an error, never "valid". */
static void
t_out_of_memory(void)
{
	static const char json[] =
	    RC(META, "\"headGroupSpec\":{\"rayStartParams\":{},\"labels\":{\"zone\":\"a\"},"
		     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"h\",\"image\":"
		     "\"i\"}]}}}");
	struct rw_raycluster *c = NULL;
	struct rw_raycluster_verrs v;
	char err[256];
	CHECK_EQ_INT(rw_raycluster_parse(json, strlen(json), &c, err, sizeof(err)), 0);
	if (!c)
		return;
	CHECK_EQ_INT(rw_raycluster_validate(c, &v), 0);
	rw_raycluster_validate_malloc = no_memory;
	CHECK_EQ_INT(rw_raycluster_validate(c, &v), 1);
	rw_raycluster_validate_malloc = malloc;
	CHECK_EQ_STR(v.e[0].reason, "InvalidRayClusterSpec");
	CHECK_EQ_STR(v.e[0].msg, "out of memory validating the labels of Head group");
	rw_raycluster_free(c);
}

static void
t_dns(void)
{
	char m[512];
	CHECK(rw_raycluster_dns1035("a", m, sizeof(m)));
	CHECK(rw_raycluster_dns1035("a-b-1", m, sizeof(m)));
	CHECK(!rw_raycluster_dns1035("", m, sizeof(m)));
	CHECK(!rw_raycluster_dns1035("a-", m, sizeof(m)));
	CHECK(!rw_raycluster_dns1035("-a", m, sizeof(m)));
	CHECK(!rw_raycluster_dns1035("1a", m, sizeof(m)));
	CHECK(!rw_raycluster_dns1035("a.b", m, sizeof(m)));
	CHECK(!rw_raycluster_dns1035("aB", m, sizeof(m)));
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"validation messages", t_validate},
	    {"allocation failure is an error", t_out_of_memory},
	    {"DNS-1035 labels", t_dns},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}

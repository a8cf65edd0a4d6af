/*
 * rj_internal.h - what rj_model.c, rj_validate.c and rj_build.c share: the
 * conversions validation must try before the builders rely on them, so a
 * RayJob that passes validation never fails to build.
 */
#ifndef RW_RJ_INTERNAL_H
#define RW_RJ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "rj_model.h"

/* Member key of o is there and not JSON null (Go decodes null into a nil pointer). */
bool rj_present(const struct rw_doc_node *o, const char *key);

/*
 * runtimeEnvYAML as a JSON object with sorted keys (sigs.k8s.io/yaml's
 * YAMLToJSON of a map), appended to out; nothing is appended when it is
 * absent, empty or YAML null. 0, -EINVAL (message in err: not YAML, not a
 * mapping), -EMSGSIZE, -ENOMEM.
 */
int rj_runtime_env_json(const struct rw_rayjob *j, struct rw_buf *out, char *err, size_t errlen);

/*
 * entrypointResources as a JSON object of numbers (KubeRay decodes it into
 * map[string]float32), appended to out as written; nothing for an absent or
 * empty one, or an empty object. 0, -EINVAL (message in err), -EMSGSIZE, -ENOMEM.
 */
int rj_resources_json(const struct rw_rayjob *j, struct rw_buf *out, char *err, size_t errlen);

/*
 * spec.metadata as a JSON object with sorted keys (json.Marshal of a
 * map[string]string), appended to out; nothing when absent or empty.
 * 0, -EINVAL (a value is not a string), -EMSGSIZE, -ENOMEM.
 */
int rj_metadata_json(const struct rw_rayjob *j, struct rw_buf *out);

/*
 * Can `ray job submit --metadata-json` be used: always, unless
 * rayClusterSpec.rayVersion is set and is not a semantic version >= 2.6.0
 * (KubeRay's Masterminds semver check). 0 or -EINVAL with KubeRay's message.
 */
int rj_metadata_version_ok(const struct rw_rayjob *j, char *err, size_t errlen);

/* The head container (rayClusterSpec's containers[0], an object) or NULL. */
struct rw_doc_node *rj_head_container(const struct rw_rayjob *j);

/* containerPort of the head container's port named "dashboard", else 8265. */
int rj_dashboard_port(const struct rw_rayjob *j);

#endif

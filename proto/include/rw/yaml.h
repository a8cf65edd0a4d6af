/*
 * yaml.h - YAML to JSON on libyaml.
 *
 * Scalar typing follows what Kubernetes clients do with YAML (sigs.k8s.io/yaml
 * on go-yaml v2, i.e. YAML 1.1 resolution), so a serveConfigV2 converts the
 * same way KubeRay converts it: plain scalars true/false/yes/no/on/off (and
 * their case variants) become booleans, null/Null/NULL/~/empty become null,
 * decimal/0x/0o/0b integers and floats become numbers; quoted and block
 * scalars always stay strings. Mapping keys are always emitted as strings.
 * Aliases are expanded (with a bound on total output); .inf/.nan are refused
 * because JSON cannot carry them. docs/protocol.md states the rule.
 */
#ifndef RW_YAML_H
#define RW_YAML_H

#include <stddef.h>

#include "rw/buf.h"

/* Called once per non-empty document with its JSON. Non-zero return stops. */
typedef int (*rw_yaml_doc_cb)(const char *json, size_t len, void *ud);

/*
 * Convert every non-empty document of a multi-document stream. Returns the
 * number of documents converted, -EINVAL on a YAML error (message with 1-based
 * line and column in err), -EMSGSIZE when a document's JSON would exceed
 * max_json bytes, or the callback's non-zero return.
 */
int rw_yaml_docs_to_json(const char *yaml, size_t len, size_t max_json, rw_yaml_doc_cb cb, void *ud,
			 char *err, size_t errlen);

/*
 * Convert a single document into out (appended). An empty input yields
 * `null`. More than one document is -EINVAL. Same errors as above.
 */
int rw_yaml_to_json(const char *yaml, size_t len, struct rw_buf *out, char *err, size_t errlen);

#endif

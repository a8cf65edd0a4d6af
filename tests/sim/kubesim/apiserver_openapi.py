"""OpenAPI v3 documents, enough for kubectl 1.32.

kubectl's ParamVerifyingSchema (staging/src/k8s.io/cli-runtime/pkg/resource/
query_param_verifier_v3.go) reads /openapi/v3, then /openapi/v3/<api path>, and looks for a PATCH
operation carrying x-kubernetes-group-version-kind for the object's GVK and a `fieldValidation`
query parameter; when found, validation is left to the server (fieldValidation=Strict).
kubectl apply's patcher (staging/src/k8s.io/kubectl/pkg/cmd/apply/patcher.go) only computes a
strategic merge patch from OpenAPI v3 when the PATCH operation lists
application/strategic-merge-patch+json; built-in kinds are not listed here, so kubectl uses its
compiled-in types for them (the result is the same strategic merge patch), and custom resources
get JSON merge patches exactly as on a real cluster.
See https://kubernetes.io/docs/concepts/overview/kubernetes-api/#openapi-v3.
"""

import hashlib
import json

PATCH_TYPES_BUILTIN = ["application/apply-patch+yaml", "application/json-patch+json",
                       "application/merge-patch+json"]

_PARAMS = [
    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}},
]


def published_crd_schema(node):
    """A CRD version's schema as kube-apiserver publishes it in /openapi/v3/apis/<group>/<version>
    (apiextensions-apiserver pkg/controller/openapi/builder/builder.go buildKubeNative, through
    pkg/apiserver/schema Structural.ToKubeOpenAPI): the structural schema with its value validations
    (pattern, enum, required, x-kubernetes-validations ...), except that an int-or-string node loses its
    `anyOf: [{type: integer}, {type: string}]` (NewStructural folds it into x-kubernetes-int-or-string),
    so `kubectl explain` can descend into every declared field."""
    if isinstance(node, list):
        return [published_crd_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "anyOf" and node.get("x-kubernetes-int-or-string") and \
                sorted(x.get("type", "") for x in v if isinstance(x, dict)) == ["integer", "string"]:
            continue
        if k in ("properties",) and isinstance(v, dict):
            out[k] = {pk: published_crd_schema(pv) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties", "allOf", "anyOf", "oneOf", "not"):
            out[k] = published_crd_schema(v)
        else:
            out[k] = v
    return out


def _schema_name(rt):
    if rt.crd is not None:
        rev = ".".join(reversed(rt.group.split(".")))
        return "%s.%s.%s" % (rev, rt.version, rt.kind)
    grp = {"": "core", "apps": "apps", "batch": "batch"}.get(rt.group, rt.group.split(".")[0])
    return "io.k8s.api.%s.%s.%s" % (grp, rt.version, rt.kind)


def gv_document(rts):
    paths = {}
    schemas = {
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
            "type": "object", "description": "ObjectMeta is metadata that all persisted resources "
            "must have.", "properties": {"name": {"type": "string"},
                                         "namespace": {"type": "string"},
                                         "labels": {"type": "object",
                                                    "additionalProperties": {"type": "string"}},
                                         "annotations": {"type": "object",
                                                         "additionalProperties": {"type": "string"}}}},
    }
    for rt in rts:
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        name = _schema_name(rt)
        ref = {"$ref": "#/components/schemas/" + name}
        if rt.crd is not None:
            sch = published_crd_schema(rt.schema)
            props = sch.setdefault("properties", {})
            props["apiVersion"] = {"type": "string"}
            props["kind"] = {"type": "string"}
            props["metadata"] = {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg."
                                                    "apis.meta.v1.ObjectMeta"}]}
        else:
            sch = {"type": "object", "description": rt.kind,
                   "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                  "metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s."
                                                                  "apimachinery.pkg.apis.meta.v1."
                                                                  "ObjectMeta"}]}}}
        sch["x-kubernetes-group-version-kind"] = [gvk]
        schemas[name] = sch
        base = rt.gv_path + ("/namespaces/{namespace}/" if rt.namespaced else "/") + rt.plural
        body = {"content": {t: {"schema": {"type": "object"}} for t in PATCH_TYPES_BUILTIN},
                "required": True}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        item = {
            "get": {"operationId": "read" + rt.kind, "responses": ok,
                    "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk},
            "put": {"operationId": "replace" + rt.kind, "responses": ok,
                    "parameters": list(_PARAMS[:3]),
                    "requestBody": {"content": {"*/*": {"schema": ref}}, "required": True},
                    "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk},
            "patch": {"operationId": "patch" + rt.kind, "responses": ok,
                      "parameters": list(_PARAMS), "requestBody": body,
                      "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
            "delete": {"operationId": "delete" + rt.kind, "responses": ok,
                       "x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk},
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "uniqueItems": True}}],
        }
        coll = {
            "get": {"operationId": "list" + rt.kind, "responses": ok,
                    "x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk},
            "post": {"operationId": "create" + rt.kind, "responses": ok,
                     "parameters": list(_PARAMS[:3]),
                     "requestBody": {"content": {"*/*": {"schema": ref}}, "required": True},
                     "x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk},
        }
        paths[base] = coll
        paths[base + "/{name}"] = item
        if rt.status:
            st = dict(item)
            st.pop("delete", None)
            paths[base + "/{name}/status"] = st
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": schemas}}


class OpenAPICache:
    """Documents keyed by group/version, rebuilt when the set of resource types changes."""

    def __init__(self):
        self.sig = None
        self.docs = {}

    def refresh(self, types):
        sig = tuple(sorted((k, id(rt.crd)) for k, rt in types.items()))
        if sig == self.sig:
            return
        by_gv = {}
        for rt in types.values():
            p = "api/v1" if not rt.group else "apis/%s/%s" % (rt.group, rt.version)
            by_gv.setdefault(p, []).append(rt)
        docs = {}
        for p, rts in by_gv.items():
            raw = json.dumps(gv_document(sorted(rts, key=lambda r: r.plural)),
                             separators=(",", ":")).encode()
            docs[p] = (hashlib.sha512(raw).hexdigest().upper()[:128], raw)
        self.docs = docs
        self.sig = sig

    def root(self):
        return {"paths": {p: {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (p, h)}
                          for p, (h, _) in sorted(self.docs.items())}}

"""Decoding of Kubernetes protobuf request bodies for a few kinds.

kubectl 1.32's typed clients (`kubectl create namespace|configmap|secret|serviceaccount`) send
bodies as application/vnd.kubernetes.protobuf: the 4-byte magic "k8s\\x00" followed by a
runtime.Unknown message (staging/src/k8s.io/apimachinery/pkg/runtime/serializer/protobuf/
protobuf.go, https://kubernetes.io/docs/reference/using-api/api-concepts/#protobuf-encoding).
Field numbers come from staging/src/k8s.io/api/core/v1/generated.proto and
staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto.

Only the kinds below are decoded; a body of any other kind, or carrying a field this table does not
know, is refused with 415 rather than silently losing data.
"""

import base64
import calendar
import time

from kubesim.apiserver_errors import ApiError
# The protobuf wire format, read by the same code as the ProtoShim's decoder.
from kubesim.protojson import Undecodable, _varint, fields as _fields  # noqa: F401

MAGIC = b"k8s\x00"


def _int64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


# Schemas: field number -> (json name, type, sub-schema). Types: s string, b bytes (base64 in JSON),
# i int64, t bool, m message, rs repeated string, rm repeated message, mss map<string,string>,
# msb map<string,bytes>, time metav1.Time.
OWNER_REF = {1: ("kind", "s", None), 3: ("name", "s", None), 4: ("uid", "s", None),
             5: ("apiVersion", "s", None), 6: ("controller", "t", None),
             7: ("blockOwnerDeletion", "t", None)}
OBJECT_META = {1: ("name", "s", None), 2: ("generateName", "s", None), 3: ("namespace", "s", None),
               4: ("selfLink", "s", None), 5: ("uid", "s", None),
               6: ("resourceVersion", "s", None), 7: ("generation", "i", None),
               8: ("creationTimestamp", "time", None), 9: ("deletionTimestamp", "time", None),
               10: ("deletionGracePeriodSeconds", "i", None), 11: ("labels", "mss", None),
               12: ("annotations", "mss", None), 13: ("ownerReferences", "rm", OWNER_REF),
               14: ("finalizers", "rs", None), 17: ("managedFields", "skip", None)}
OBJECT_REF = {1: ("kind", "s", None), 2: ("namespace", "s", None), 3: ("name", "s", None),
              4: ("uid", "s", None), 5: ("apiVersion", "s", None),
              6: ("resourceVersion", "s", None), 7: ("fieldPath", "s", None)}
KINDS = {
    ("v1", "Namespace"): {1: ("metadata", "m", OBJECT_META),
                          2: ("spec", "m", {1: ("finalizers", "rs", None)}),
                          3: ("status", "m", {1: ("phase", "s", None)})},
    ("v1", "ConfigMap"): {1: ("metadata", "m", OBJECT_META), 2: ("data", "mss", None),
                          3: ("binaryData", "msb", None), 4: ("immutable", "t", None)},
    ("v1", "Secret"): {1: ("metadata", "m", OBJECT_META), 2: ("data", "msb", None),
                       3: ("type", "s", None), 4: ("stringData", "mss", None),
                       5: ("immutable", "t", None)},
    ("v1", "ServiceAccount"): {1: ("metadata", "m", OBJECT_META), 2: ("secrets", "rm", OBJECT_REF),
                               3: ("imagePullSecrets", "rm", {1: ("name", "s", None)}),
                               4: ("automountServiceAccountToken", "t", None)},
}


# The reviews kubectl sends as protobuf (`auth can-i`, `auth can-i --list`, `auth whoami`). The answer
# depends on the spec (staging/src/k8s.io/api/authorization/v1/generated.proto); the metadata,
# the status and the field and label selectors of ResourceAttributes (which RBAC ignores) are
# not read.
RESOURCE_ATTRIBUTES = {1: ("namespace", "s", None), 2: ("verb", "s", None), 3: ("group", "s", None),
                       4: ("version", "s", None), 5: ("resource", "s", None),
                       6: ("subresource", "s", None), 7: ("name", "s", None),
                       8: ("fieldSelector", "skip", None), 9: ("labelSelector", "skip", None)}
NON_RESOURCE_ATTRIBUTES = {1: ("path", "s", None), 2: ("verb", "s", None)}
REVIEWS = {("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {
               1: ("metadata", "skip", None), 3: ("status", "skip", None),
               2: ("spec", "m", {1: ("resourceAttributes", "m", RESOURCE_ATTRIBUTES),
                                 2: ("nonResourceAttributes", "m", NON_RESOURCE_ATTRIBUTES)})},
           ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): {
               1: ("metadata", "skip", None), 3: ("status", "skip", None),
               2: ("spec", "m", {1: ("namespace", "s", None)})},
           ("authentication.k8s.io/v1", "SelfSubjectReview"): {
               1: ("metadata", "skip", None), 2: ("status", "skip", None)}}


def _msg(b, schema):
    out = {}
    for num, wt, v in _fields(b):
        ent = schema.get(num)
        if ent is None:
            raise Undecodable("field %d" % num)
        name, typ, sub = ent
        if typ == "skip":
            continue
        if typ == "s":
            # Go's JSON omitempty: proto2 encodes empty strings, JSON leaves them out.
            if v:
                out[name] = bytes(v).decode()
        elif typ == "b":
            out[name] = base64.b64encode(bytes(v)).decode()
        elif typ == "i":
            if v:
                out[name] = _int64(v)
        elif typ == "t":
            out[name] = bool(v)
        elif typ == "m":
            m = _msg(v, sub)
            if m or name != "status":
                out[name] = m
        elif typ == "rs":
            out.setdefault(name, []).append(bytes(v).decode())
        elif typ == "rm":
            out.setdefault(name, []).append(_msg(v, sub))
        elif typ in ("mss", "msb"):
            k = val = None
            for n2, _, v2 in _fields(v):
                if n2 == 1:
                    k = bytes(v2).decode()
                elif n2 == 2:
                    val = bytes(v2)
            d = out.setdefault(name, {})
            if typ == "mss":
                d[k or ""] = (val or b"").decode()
            else:
                d[k or ""] = base64.b64encode(val or b"").decode()
        elif typ == "time":
            secs = 0
            for n2, _, v2 in _fields(v):
                if n2 == 1:
                    secs = _int64(v2)
            if secs:
                out[name] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))
    return out


def decode(body):
    """Protobuf request body -> JSON object (dict); ApiError 415 when not decodable here."""
    def refuse(why):
        return ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown "
                        "format - accepted media types include: application/json, application/yaml"
                        " (this simulator decodes protobuf only for %s: %s)"
                        % (", ".join(k for _, k in KINDS), why))
    if not body.startswith(MAGIC):
        raise refuse("missing k8s magic")
    try:
        tm = {}
        raw = b""
        for num, _, v in _fields(body[4:]):
            if num == 1:
                tm = _msg(v, {1: ("apiVersion", "s", None), 2: ("kind", "s", None)})
            elif num == 2:
                raw = bytes(v)
            elif num == 3 and v:
                raise Undecodable("content encoding %r" % bytes(v))
        review = REVIEWS.get((tm.get("apiVersion"), tm.get("kind")))
        if review is not None:
            obj = {"apiVersion": tm["apiVersion"], "kind": tm["kind"], "metadata": {}, "spec": {}}
            obj.update(_msg(raw, review))
            return obj
        schema = KINDS.get((tm.get("apiVersion"), tm.get("kind")))
        if schema is None:
            raise Undecodable("kind %s/%s" % (tm.get("apiVersion"), tm.get("kind")))
        obj = {"apiVersion": tm["apiVersion"], "kind": tm["kind"]}
        obj.update(_msg(raw, schema))
        return obj
    except Undecodable as e:
        raise refuse(str(e))


_ = calendar

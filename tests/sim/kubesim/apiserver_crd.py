"""CustomResourceDefinitions: validation, status conditions, and structural-schema handling of the
custom resources they serve (pruning, defaulting, validation).

Follows staging/src/k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation/validation.go
(CRD validation), pkg/controller/establish and pkg/controller/status/naming_controller.go
(NamesAccepted/Established), pkg/apiserver/schema/pruning/algorithm.go (pruning, with
x-kubernetes-preserve-unknown-fields and x-kubernetes-embedded-resource),
pkg/apiserver/schema/defaulting/algorithm.go and
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/.
"""

import json
import re

from kubesim.apiserver_errors import DNS1123_SUBDOMAIN, clone, rfc3339
from kubesim.apiserver_kinds import ResType


def crd_validate(obj):
    causes = []
    spec = obj.get("spec") or {}
    group = spec.get("group") or ""
    names = spec.get("names") or {}
    plural = names.get("plural") or ""
    name = obj.get("metadata", {}).get("name", "")
    if not group:
        causes.append(("FieldValueRequired", "spec.group", "Required value"))
    elif "." not in group:
        causes.append(("FieldValueInvalid", "spec.group",
                       'Invalid value: "%s": should be a domain with at least one dot' % group))
    if not plural:
        causes.append(("FieldValueRequired", "spec.names.plural", "Required value"))
    if not names.get("kind"):
        causes.append(("FieldValueRequired", "spec.names.kind", "Required value"))
    if not names.get("listKind") and False:
        causes.append(("FieldValueRequired", "spec.names.listKind", "Required value"))
    if plural and group and name != plural + "." + group:
        causes.append(("FieldValueInvalid", "metadata.name",
                       'Invalid value: "%s": must be spec.names.plural+"."+spec.group' % name))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(("FieldValueNotSupported", "spec.scope",
                       'Unsupported value: "%s": supported values: "Cluster", "Namespaced"'
                       % spec.get("scope", "")))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(("FieldValueRequired", "spec.versions",
                       "Required value: must have exactly one version marked as storage version"))
    storage = [v for v in versions if v.get("storage")]
    if versions and len(storage) != 1:
        causes.append(("FieldValueInvalid", "spec.versions", "Invalid value: %s: must have exactly"
                       " one version marked as storage version" % ("[]" if not storage else "...")))
    if versions and not any(v.get("served") for v in versions):
        causes.append(("FieldValueInvalid", "spec.versions",
                       "Invalid value: ...: must have at least one version marked as served"))
    for i, v in enumerate(versions):
        sch = (v.get("schema") or {}).get("openAPIV3Schema")
        if sch is None:
            causes.append(("FieldValueRequired", "spec.versions[%d].schema.openAPIV3Schema" % i,
                           "Required value: schemas are required"))
        elif sch.get("type") != "object":
            causes.append(("FieldValueInvalid", "spec.versions[%d].schema.openAPIV3Schema.type" % i,
                           'Invalid value: "%s": must be object at the root' % sch.get("type", "")))
    if plural and not DNS1123_SUBDOMAIN.match(plural):
        causes.append(("FieldValueInvalid", "spec.names.plural", 'Invalid value: "%s": a lowercase '
                       'RFC 1123 subdomain ...' % plural))
    return causes


def crd_defaults(obj):
    spec = obj.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    for v in spec.get("versions") or []:
        pcs = v.get("additionalPrinterColumns")
        for pc in pcs or []:
            pc.setdefault("priority", 0) if False else None


def crd_status(obj, conflict_msg=None):
    """NamesAccepted and Established conditions, acceptedNames, storedVersions."""
    spec = obj.get("spec", {})
    st = obj.setdefault("status", {})
    now = rfc3339()
    old = {c.get("type"): c for c in st.get("conditions") or []}

    def cond(t, status, reason, message):
        prev = old.get(t)
        ts = prev["lastTransitionTime"] if prev and prev.get("status") == status else now
        return {"type": t, "status": status, "lastTransitionTime": ts, "reason": reason,
                "message": message}

    if conflict_msg:
        st["conditions"] = [cond("NamesAccepted", "False", "MultipleNameConflict", conflict_msg),
                            cond("Established", "False", "NotAccepted", "not all names are accepted")]
        st["acceptedNames"] = st.get("acceptedNames") or {"plural": "", "kind": ""}
    else:
        st["conditions"] = [cond("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                            cond("Established", "True", "InitialNamesAccepted",
                                 "the initial names have been accepted")]
        st["acceptedNames"] = clone(spec.get("names", {}))
    stored = list(st.get("storedVersions") or [])
    for v in spec.get("versions") or []:
        if v.get("storage") and v.get("name") not in stored:
            stored.append(v["name"])
    st["storedVersions"] = stored


def crd_restypes(crd):
    """One ResType per served version of an established CRD."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    out = []
    storage_version = next((v["name"] for v in spec.get("versions", []) if v.get("storage")), None)
    for v in spec.get("versions") or []:
        if not v.get("served"):
            continue
        subs = v.get("subresources") or {}
        scale = None
        if "scale" in subs:
            sc = subs["scale"]
            scale = (sc.get("specReplicasPath"), sc.get("statusReplicasPath"),
                     sc.get("labelSelectorPath"))
        rt = ResType(spec["group"], v["name"], names["plural"], names["kind"],
                     namespaced=spec.get("scope") == "Namespaced", short=names.get("shortNames") or [],
                     categories=names.get("categories") or [], singular=names.get("singular"),
                     status="status" in subs, scale=scale, generation=True,
                     return_deleted=True, unconditional_update=False,
                     storage=(spec["group"], names["plural"]), crd=crd, version_info=v)
        rt.list_kind = names.get("listKind") or names["kind"] + "List"
        rt.storage_version = storage_version
        rt.schema = (v.get("schema") or {}).get("openAPIV3Schema") or {}
        out.append(rt)
    return out


# ---- structural schema handling -------------------------------------------------------------------

_META_KEEP = {"name", "namespace", "generateName", "uid", "resourceVersion", "generation",
              "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
              "annotations", "ownerReferences", "finalizers", "managedFields", "selfLink"}


def prune(value, schema, path, unknown, root=False, embedded=False):
    """Drop fields not declared in the schema; record their paths in unknown.

    The root and x-kubernetes-embedded-resource objects keep apiVersion, kind and metadata
    (metadata is pruned to ObjectMeta fields at the root, kept whole when embedded).
    """
    if schema is None:
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        out = {}
        for k, v in value.items():
            sub = path + "." + k if path else k
            if (root or embedded) and k in ("apiVersion", "kind"):
                out[k] = v
                continue
            if (root or embedded) and k == "metadata":
                if root and isinstance(v, dict):
                    for mk in list(v):
                        if mk not in _META_KEEP:
                            unknown.append("metadata." + mk)
                    out[k] = {mk: mv for mk, mv in v.items() if mk in _META_KEEP}
                else:
                    out[k] = v
                continue
            if props is not None and k in props:
                ps = props[k]
                out[k] = prune(v, ps, sub, unknown,
                               embedded=bool(ps.get("x-kubernetes-embedded-resource")))
            elif isinstance(addl, dict):
                out[k] = prune(v, addl, sub, unknown,
                               embedded=bool(addl.get("x-kubernetes-embedded-resource")))
            elif addl is True or preserve:
                out[k] = v
            else:
                unknown.append(sub)
        return out
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            return [prune(x, items, path + "[%d]" % i, unknown,
                          embedded=bool(items.get("x-kubernetes-embedded-resource")))
                    for i, x in enumerate(value)]
        return value
    return value


def prune_nulls(value, schema):
    """Drop null fields whose schema is neither nullable nor defaulted (object fields only; null list
    items are left to validation), as apiextensions-apiserver pkg/apiserver/schema/defaulting/
    prunenulls.go PruneNonNullableNullsWithoutDefaults does before defaulting."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        for k in list(value):
            sub = props.get(k) if k in props else (addl if isinstance(addl, dict) else None)
            v = value[k]
            if v is None and sub is not None and not sub.get("nullable") and "default" not in sub:
                del value[k]
            else:
                prune_nulls(v, sub)
    elif isinstance(value, list):
        for x in value:
            prune_nulls(x, schema.get("items"))


def apply_defaults(value, schema):
    """Structural defaulting (defaulting/algorithm.go Default): a missing field, or a null one that is
    not nullable, gets the schema's default."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for k, ps in props.items():
            if isinstance(ps, dict) and "default" in ps and (
                    k not in value or (value[k] is None and not ps.get("nullable"))):
                value[k] = clone(ps["default"])
            if k in value:
                value[k] = apply_defaults(value[k], ps)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for k in list(value):
                if k not in props:
                    value[k] = apply_defaults(value[k], addl)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(x, schema["items"]) for x in value]
    return value


def _typename(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        # go-openapi (swag.IsFloat64AJSONInteger): a whole float64 is a JSON integer.
        return "integer" if v.is_integer() and abs(v) < 2 ** 63 else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _show(v):
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return '"object"'


def _go_value(v):
    """%#v of a decoded JSON value, as field.Duplicate prints it (close enough)."""
    if isinstance(v, dict):
        return "map[string]interface {}{%s}" % ", ".join(
            '"%s":%s' % (k, _go_value(x)) for k, x in sorted(v.items()))
    if isinstance(v, str):
        return '"%s"' % v
    return _show(v)


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _list_duplicates(value, schema, path, causes):
    """x-kubernetes-list-type set/map uniqueness (apiextensions-apiserver pkg/apiserver/schema/listtype/
    validation.go): each repeated element (set) or key tuple (map) after the first is a Duplicate."""
    lt = schema.get("x-kubernetes-list-type")
    if lt not in ("set", "map") or len(value) < 2:
        return
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen = {}
    for i, x in enumerate(value):
        if lt == "map":
            if x is not None and not isinstance(x, dict):
                causes.append(("FieldValueInvalid", "%s[%d]" % (path, i), "Invalid value: %s: must be an "
                               "object for an array of list-type map" % _show(x)))
                return
            k = {kk: x[kk] for kk in keys if isinstance(x, dict) and kk in x}
        else:
            k = x
        sig = json.dumps(k, sort_keys=True)
        seen[sig] = seen.get(sig, 0) + 1
        if seen[sig] == 2:
            causes.append(("FieldValueDuplicate", "%s[%d]" % (path, i), "Duplicate value: %s" % _go_value(k)))



def _check_pattern(schema, value, path, causes):
    """A string against the schema's pattern, with kube-openapi's message."""
    if "pattern" not in schema:
        return
    try:
        if not re.search(schema["pattern"], value):
            causes.append(("FieldValueInvalid", path, "Invalid value: %s: %s in body "
                           "should match '%s'" % (_show(value), path, schema["pattern"])))
    except re.error:
        pass

def validate_value(value, schema, path, causes, depth=0):
    """OpenAPI v3 validation as kube-openapi's validator (k8s.io/kube-openapi/pkg/validation/validate,
    called from apiextensions-apiserver pkg/apiserver/validation) applies it to a structural schema:
    type, nullable, x-kubernetes-int-or-string (anyOf integer/string; a pattern such as controller-gen's
    resource.Quantity one applies to strings only), required, enum, minimum/maximum, lengths, pattern,
    date-time format, items, list-type set/map uniqueness. Messages follow field.Error's
    `<path>: Invalid value: <value>: <path> in body ...` shape. CEL rules are not evaluated."""
    if not isinstance(schema, dict) or depth > 96:
        return
    if value is None:
        # Null object fields were pruned (prune_nulls) or defaulted; what is left is a nullable field or
        # a list item.
        if not schema.get("nullable") and (schema.get("type") or schema.get("x-kubernetes-int-or-string")):
            t = schema.get("type") or "integer,string"
            causes.append(("FieldValueTypeInvalid", path, 'Invalid value: "null": %s in body must be of '
                           'type %s: "null"' % (path, t)))
        return
    vt = _typename(value)
    if schema.get("x-kubernetes-int-or-string"):
        if vt not in ("integer", "string"):
            causes.append(("FieldValueTypeInvalid", path, 'Invalid value: "%s": %s in body must be of '
                           'type integer,string: "%s"' % (vt, path, vt)))
            return
        if vt == "string":
            _check_pattern(schema, value, path, causes)
        return
    t = schema.get("type")
    if t and not (t == vt or (t == "number" and vt == "integer")):
        causes.append(("FieldValueTypeInvalid", path,
                       'Invalid value: "%s": %s in body must be of type %s: "%s"'
                       % (vt, path, t, vt)))
        return
    if "enum" in schema and value not in schema["enum"]:
        causes.append(("FieldValueNotSupported", path, "Unsupported value: %s: supported values: %s"
                       % (_show(value), ", ".join(_show(e) for e in schema["enum"]))))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            causes.append(("FieldValueInvalid", path, "Invalid value: %s: %s in body should be "
                           "greater than or equal to %s" % (value, path, schema["minimum"])))
        if "maximum" in schema and value > schema["maximum"]:
            causes.append(("FieldValueInvalid", path, "Invalid value: %s: %s in body should be "
                           "less than or equal to %s" % (value, path, schema["maximum"])))
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(("FieldValueTooLong", path, "Too long: may not be more than %d bytes"
                           % schema["maxLength"]))
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(("FieldValueInvalid", path, "Invalid value: %s: %s in body should be at "
                           "least %d chars long" % (_show(value), path, schema["minLength"])))
        _check_pattern(schema, value, path, causes)
        if schema.get("format") == "date-time" and not _DATE_TIME.match(value):
            causes.append(("FieldValueInvalid", path, "Invalid value: %s: %s in body must be of type "
                           "date-time: %s" % (_show(value), path, _show(value))))
    if isinstance(value, dict):
        for r in schema.get("required") or []:
            if r not in value:
                causes.append(("FieldValueRequired", path + "." + r if path else r, "Required value"))
        props = schema.get("properties") or {}
        for k, v in value.items():
            if k in props:
                validate_value(v, props[k], path + "." + k if path else k, causes, depth + 1)
            elif isinstance(schema.get("additionalProperties"), dict):
                validate_value(v, schema["additionalProperties"], path + "." + k if path else k,
                               causes, depth + 1)
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            causes.append(("FieldValueTooMany", path, "Too many: %d: must have at most %d items"
                           % (len(value), schema["maxProperties"])))
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(("FieldValueTooMany", path, "Too many: %d: must have at most %d items"
                           % (len(value), schema["maxItems"])))
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(("FieldValueInvalid", path, "Invalid value: %d: %s in body should have at"
                           " least %d items" % (len(value), path, schema["minItems"])))
        items = schema.get("items")
        if isinstance(items, dict):
            for i, x in enumerate(value):
                validate_value(x, items, "%s[%d]" % (path, i), causes, depth + 1)
        _list_duplicates(value, schema, path, causes)


def process_custom_resource(rt, obj):
    """Prune, default and validate a custom resource; returns (obj, unknown_fields, causes).

    The order of the real handler (apiextensions-apiserver pkg/apiserver/customresource_handler.go and
    pkg/apiserver/schema/pruning/algorithm.go): unknown fields are pruned and reported (the caller turns
    them into `strict decoding error: unknown field "..."` for fieldValidation=Strict, which kubectl
    sends by default since 1.27 (--validate=strict), a Warning header for Warn, nothing for Ignore),
    non-nullable nulls are pruned, defaults applied, then the schema is validated (422 Invalid)."""
    schema = rt.schema
    unknown = []
    obj = prune(obj, schema, "", unknown, root=True)
    prune_nulls(obj, schema)
    obj = apply_defaults(obj, schema)
    causes = []
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    sch = dict(schema)
    sch["properties"] = {k: v for k, v in (schema.get("properties") or {}).items()
                         if k not in ("apiVersion", "kind", "metadata")}
    sch["required"] = [r for r in schema.get("required") or [] if r not in ("apiVersion", "kind",
                                                                           "metadata")]
    validate_value(body, sch, "", causes)
    return obj, unknown, causes

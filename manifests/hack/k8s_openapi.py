"""Kubernetes types for raywarden's CRDs: the OpenAPI v3 of a pinned Kubernetes release, converted to
structural CRD schemas the way controller-gen (sigs.k8s.io/controller-tools, which builds KubeRay's CRDs)
renders the same Go types. Python 3 standard library only.

Source (pinned): k8s.io/kubernetes v1.34.4, api/openapi-spec/v3/api__v1_openapi.json and
apis__networking.k8s.io__v1_openapi.json, plus the `+default=` and `+kubebuilder:` markers of
k8s.io/api v0.34.4 and k8s.io/apimachinery v0.34.4 (openapi-gen writes zero-value defaults that
controller-gen does not, and drops the kubebuilder markers that controller-gen honours; the Go source tells
the two apart). `extract()` reads those from the Go module cache and keeps the closure of the types
raywarden's CRDs embed, with descriptions cut to their first sentence; the result is vendored as
manifests/hack/k8s-openapi-v1.34.4.json so the generator runs (and `--check` passes) without Go.

Conversion (controller-gen's rules; sigs.k8s.io/controller-tools/pkg/crd/schema.go and known_types.go):
- `$ref` and `allOf: [{$ref}]` are inlined (the field's description replaces the type's);
- resource.Quantity -> `anyOf: [{type: integer}, {type: string}]`, controller-gen's quantity `pattern`,
  `x-kubernetes-int-or-string: true`; intstr.IntOrString -> the same without the pattern;
  metav1.Time -> `type: string, format: date-time`;
- an embedded ObjectMeta (PodTemplateSpec.metadata, Service.metadata) -> the subset controller-gen emits
  with crd:generateEmbeddedObjectMeta=true: annotations, finalizers, labels, name, namespace;
- `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, `required`, `format`
  are kept (both generators take them from the same markers);
- `default` is kept when the Go field has a `+default=` or `+kubebuilder:default=` marker; openapi-gen's
  zero-value defaults (`""`, `0`, `false`, `{}` for every non-pointer struct) are dropped;
- `+kubebuilder:validation:` markers (Pattern, MaxLength, MinLength, Minimum, Maximum, Enum, Format,
  Required) are added, as controller-gen does (metav1.Condition, PortStatus.error);
- openapi-gen's extensions that CRDs forbid or ignore are dropped: x-kubernetes-patch-strategy,
  x-kubernetes-patch-merge-key, x-kubernetes-unions, x-kubernetes-group-version-kind, uniqueItems.
- The upstream has no `enum` in these types (openapi-gen's +enum is not rendered into v3 here), and
  controller-gen does not read +enum either, so neither schema restricts e.g. imagePullPolicy: the API
  server's Pod validation does, when the controller creates the pod.
"""

import json
import os
import re

KUBERNETES = "v1.34.4"
STAGING = "v0.34.4"  # k8s.io/api and k8s.io/apimachinery released with KUBERNETES
HERE = os.path.dirname(os.path.abspath(__file__))
VENDORED = os.path.join(HERE, "k8s-openapi-%s.json" % KUBERNETES)
OPENAPI_FILES = ("api__v1_openapi.json", "apis__networking.k8s.io__v1_openapi.json")

# The Kubernetes types raywarden's ray.io/v1 API embeds (as KubeRay's does); extract() keeps their closure.
ROOTS = (
    "io.k8s.api.core.v1.PodTemplateSpec",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.EnvVar",
    "io.k8s.api.core.v1.EnvVarSource",
    "io.k8s.api.core.v1.EnvFromSource",
    "io.k8s.api.core.v1.VolumeMount",
    "io.k8s.api.core.v1.ResourceRequirements",
    "io.k8s.api.core.v1.SecurityContext",
    "io.k8s.api.networking.v1.NetworkPolicyIngressRule",
    "io.k8s.api.networking.v1.NetworkPolicyEgressRule",
    "io.k8s.api.networking.v1.IngressTLS",
)

# Go packages whose markers matter, and the OpenAPI name prefix of their types.
GO_PACKAGES = (
    ("k8s.io/api", "core/v1/types.go", "io.k8s.api.core.v1."),
    ("k8s.io/api", "networking/v1/types.go", "io.k8s.api.networking.v1."),
    ("k8s.io/apimachinery", "pkg/apis/meta/v1/types.go", "io.k8s.apimachinery.pkg.apis.meta.v1."),
)

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# controller-gen's pattern for resource.Quantity (controller-tools pkg/crd/known_types.go).
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
EMBEDDED_META_FIELDS = ("annotations", "finalizers", "labels", "name", "namespace")
DROP_KEYS = {"x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key", "x-kubernetes-unions",
             "x-kubernetes-group-version-kind", "uniqueItems"}
_REF = "#/components/schemas/"


class Unavailable(RuntimeError):
    """The pinned upstream sources are not on this machine (no Go, no module cache, no network)."""


# ---- descriptions ---------------------------------------------------------------------------------------

_SENTENCE = re.compile(r"^(.*?[.!?])(\s|$)", re.S)


def short_description(text, limit=200):
    """The first sentence of an upstream description, on one line, at most `limit` characters."""
    text = " ".join((text or "").split())
    m = _SENTENCE.match(text)
    s = m.group(1) if m else text
    if len(s) > limit:
        s = s[:limit - 3].rstrip() + "..."
    return s


# ---- extraction from the pinned release (needs the Go module cache) ------------------------------------------

_STRUCT = re.compile(r"^type (\w+) struct \{")
_FIELD = re.compile(r'^\s+\w+\s+[^`]*`json:"([^",]*)')
_INLINE = re.compile(r'^\s+(\w+)\s+`json:",inline"')
_MARKER = re.compile(r"^\s*//\s*\+(default|kubebuilder:default|kubebuilder:validation:\w+)(?:=(.*))?$")


def _marker_value(kind, raw):
    raw = (raw or "").strip()
    if kind in ("Pattern",):
        return raw[1:-1] if raw.startswith("`") else raw
    if kind in ("MaxLength", "MinLength", "MaxItems", "MinItems"):
        return int(raw)
    if kind in ("Minimum", "Maximum"):
        return int(raw) if re.match(r"^-?\d+$", raw) else float(raw)
    if kind == "Enum":
        return raw.split(";")
    if kind in ("default", "kubebuilder:default"):
        if raw.startswith("ref("):
            return None  # a Go constant: openapi-gen resolves it, controller-gen ignores the marker
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def parse_markers(go_source, prefix):
    """{openapi type name: {json field: {marker: value}}} for the markers controller-gen honours."""
    out = {}
    struct, pending = None, {}
    for line in go_source.splitlines():
        m = _STRUCT.match(line)
        if m:
            struct, pending = prefix + m.group(1), {}
            continue
        if struct is None:
            continue
        if line.startswith("}"):
            struct, pending = None, {}
            continue
        m = _MARKER.match(line)
        if m:
            kind = m.group(1).replace("kubebuilder:validation:", "")
            if kind in ("default", "kubebuilder:default"):
                pending["default"] = _marker_value(kind, m.group(2))
            elif kind in ("Pattern", "MaxLength", "MinLength", "Minimum", "Maximum", "Enum", "Format",
                          "MaxItems", "MinItems"):
                pending[kind] = _marker_value(kind, m.group(2))
            elif kind == "Required":
                pending["Required"] = True
            continue
        if line.strip().startswith("//"):
            continue
        i = _INLINE.match(line)
        if i:
            # An embedded struct (LocalObjectReference in ConfigMapKeySelector...): controller-gen merges
            # its fields, their markers and its +structType into the outer type.
            out.setdefault(struct, {}).setdefault("__inline__", []).append(prefix + i.group(1))
        f = _FIELD.match(line)
        if f and pending and f.group(1):
            out.setdefault(struct, {})[f.group(1)] = pending
        pending = {}
    return out


def _refs(node, acc):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str) and r.startswith(_REF):
            acc.add(r[len(_REF):])
        for v in node.values():
            _refs(v, acc)
    elif isinstance(node, list):
        for v in node:
            _refs(v, acc)


def _trim(node):
    """Copy of an upstream schema with descriptions shortened (the vendored extract)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "description":
                out[k] = short_description(v)
            elif k == "properties":
                out[k] = {pk: _trim(pv) for pk, pv in v.items()}
            else:
                out[k] = _trim(v)
        return out
    if isinstance(node, list):
        return [_trim(v) for v in node]
    return node


def upstream_dirs(offline=False):
    """(kubernetes, api, apimachinery) module directories, from tests/sim/kubesim/upstream.py.
    offline: answer from the Go module cache only (GOPROXY=off), never from the network, so a check
    fails fast and is skipped where the modules are not cached."""
    import sys
    sim = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "sim")
    if sim not in sys.path:
        sys.path.insert(0, sim)
    try:
        from kubesim import upstream
    except ImportError as e:
        raise Unavailable("tests/sim/kubesim/upstream.py not importable: %s" % e)
    saved = os.environ.get("GOPROXY")
    if offline:
        os.environ["GOPROXY"] = "off"
    try:
        return (upstream.module_dir("k8s.io/kubernetes", KUBERNETES),
                upstream.module_dir("k8s.io/api", STAGING),
                upstream.module_dir("k8s.io/apimachinery", STAGING))
    except Exception as e:  # upstream.Missing, timeouts, no network
        raise Unavailable(str(e))
    finally:
        if offline:
            if saved is None:
                os.environ.pop("GOPROXY", None)
            else:
                os.environ["GOPROXY"] = saved


def extract(dirs=None):
    """The vendored document: the closure of ROOTS from the pinned OpenAPI, plus the Go markers."""
    kube, api, apimachinery = dirs or upstream_dirs()
    schemas = {}
    for f in OPENAPI_FILES:
        path = os.path.join(kube, "api", "openapi-spec", "v3", f)
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except OSError as e:
            raise Unavailable("cannot read %s: %s" % (path, e))
        for name, s in doc["components"]["schemas"].items():
            schemas.setdefault(name, s)
    keep, todo = {}, list(ROOTS)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        if name not in schemas:
            raise Unavailable("%s not in the pinned OpenAPI" % name)
        keep[name] = schemas[name]
        acc = set()
        _refs(schemas[name], acc)
        todo.extend(sorted(acc - set(keep)))
    markers = {}
    for module, rel, prefix in GO_PACKAGES:
        base = api if module == "k8s.io/api" else apimachinery
        with open(os.path.join(base, rel), encoding="utf-8") as fh:
            for t, fields in parse_markers(fh.read(), prefix).items():
                if t in keep:
                    markers[t] = fields
    return {
        "source": ("k8s.io/kubernetes %s api/openapi-spec/v3/{%s} (components.schemas, the closure of the "
                   "types below, descriptions cut to their first sentence) and the +default/+kubebuilder "
                   "markers of k8s.io/api and k8s.io/apimachinery %s. Generated by "
                   "`python3 manifests/hack/gen_crds.py --vendor`; do not edit."
                   % (KUBERNETES, ",".join(OPENAPI_FILES), STAGING)),
        "kubernetes": KUBERNETES,
        "roots": list(ROOTS),
        "markers": {k: markers[k] for k in sorted(markers)},
        "schemas": {k: _trim(keep[k]) for k in sorted(keep)},
    }


def dump_vendored(doc):
    """Compact, one type per line (diffable), deterministic."""
    lines = ["{"]
    for k in ("source", "kubernetes", "roots", "markers"):
        lines.append("%s:%s," % (json.dumps(k), json.dumps(doc[k], sort_keys=True, separators=(",", ":"))))
    lines.append('"schemas":{')
    names = sorted(doc["schemas"])
    for i, n in enumerate(names):
        lines.append("%s:%s%s" % (json.dumps(n), json.dumps(doc["schemas"][n], sort_keys=True,
                                                           separators=(",", ":")),
                                  "," if i + 1 < len(names) else ""))
    lines.append("}}")
    return "\n".join(lines) + "\n"


def load_vendored(path=VENDORED):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# ---- conversion -------------------------------------------------------------------------------------------


def quantity_schema():
    return {"anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True}


def int_or_string_schema():
    return {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}


class Converter:
    """OpenAPI v3 component schemas -> structural CRD schemas, as controller-gen renders the Go types.

    descriptions: "short" (first sentence, as vendored), or None (none at all, as KubeRay's CRDs have for
    embedded Kubernetes types: controller-gen's crd:maxDescLen=0)."""

    def __init__(self, schemas, markers=None, descriptions="short"):
        self.schemas = schemas
        self.markers = markers or {}
        self.descriptions = descriptions

    @classmethod
    def vendored(cls, descriptions="short"):
        doc = load_vendored()
        return cls(doc["schemas"], doc["markers"], descriptions)

    def type(self, name, description=None, embedded_meta=True):
        """The schema of component `name` (e.g. io.k8s.api.core.v1.PodTemplateSpec)."""
        return self._named(name, description, (), embedded_meta)

    def _desc(self, node, text):
        if text and self.descriptions:
            node["description"] = short_description(text)
        return node

    def _named(self, name, description, stack, embedded_meta):
        if name == QUANTITY:
            return self._desc(quantity_schema(), description)
        if name == INT_OR_STRING:
            return self._desc(int_or_string_schema(), description)
        if name in (TIME, MICRO_TIME):
            return self._desc({"type": "string", "format": "date-time"}, description)
        if name in stack:
            # controller-gen refuses recursive types; none of the embedded types is.
            raise ValueError("recursive type %s via %s" % (name, " -> ".join(stack)))
        src = self.schemas.get(name)
        if src is None:
            raise KeyError("type %s is not in the OpenAPI extract (add it to ROOTS and re-vendor)" % name)
        node = self._node(src, stack + (name,), name, embedded_meta)
        if description is not None:
            node.pop("description", None)
            self._desc(node, description)
        if name == OBJECT_META and embedded_meta:
            node["properties"] = {k: v for k, v in node["properties"].items() if k in EMBEDDED_META_FIELDS}
            node.pop("required", None)
            for v in node["properties"].values():
                v.pop("x-kubernetes-list-type", None)  # controller-gen's embedded ObjectMeta is a fixed schema
        return node

    def _node(self, src, stack, owner=None, embedded_meta=True):
        """Convert one schema node; owner is the component name when src is a whole component."""
        desc = src.get("description")
        ref = src.get("$ref")
        if ref is None and len(src.get("allOf") or []) == 1 and "$ref" in src["allOf"][0]:
            ref = src["allOf"][0]["$ref"]
        if ref is not None:
            return self._named(ref[len(_REF):], desc, stack, embedded_meta)
        out = {}
        self._desc(out, desc)
        for k in ("type", "format", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems",
                  "maxItems", "enum", "nullable", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
                  "x-kubernetes-map-type", "x-kubernetes-preserve-unknown-fields",
                  "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string"):
            if k in src:
                out[k] = src[k]
        if "oneOf" in src or "anyOf" in src:
            out["anyOf"] = [{"type": x["type"]} for x in (src.get("oneOf") or src.get("anyOf")) if "type" in x]
            if src.get("format") == "int-or-string":
                out.pop("format", None)
                out["x-kubernetes-int-or-string"] = True
        if "items" in src:
            out["items"] = self._node(src["items"], stack)
            out["items"].pop("description", None)
        if "additionalProperties" in src:
            ap = src["additionalProperties"]
            out["additionalProperties"] = self._node(ap, stack) if isinstance(ap, dict) else ap
            if isinstance(ap, dict):
                out["additionalProperties"].pop("description", None)
        if "properties" in src:
            fields = dict(self.markers.get(owner, {})) if owner else {}
            for inner in fields.pop("__inline__", []):
                for fk, fv in self.markers.get(inner, {}).items():
                    if fk != "__inline__":
                        fields.setdefault(fk, fv)
                mt = (self.schemas.get(inner) or {}).get("x-kubernetes-map-type")
                if mt and "x-kubernetes-map-type" not in out:
                    out["x-kubernetes-map-type"] = mt
            props, required = {}, list(src.get("required") or [])
            for pk in src["properties"]:
                ps = src["properties"][pk]
                node = self._node(ps, stack)
                mk = fields.get(pk, {})
                if mk.get("default") is not None:
                    node["default"] = mk["default"]
                else:
                    node.pop("default", None)
                for mkey, skey in (("Pattern", "pattern"), ("MaxLength", "maxLength"),
                                   ("MinLength", "minLength"), ("Minimum", "minimum"), ("Maximum", "maximum"),
                                   ("Enum", "enum"), ("Format", "format"), ("MaxItems", "maxItems"),
                                   ("MinItems", "minItems")):
                    if mkey in mk:
                        node[skey] = mk[mkey]
                if mk.get("Required") and pk not in required:
                    required.append(pk)
                props[pk] = node
            out["properties"] = props
            if required:
                out["required"] = sorted(required)
            out.setdefault("type", "object")
        return out

"""manifests/hack/k8s_openapi.py: the OpenAPI v3 -> structural CRD schema conversion (controller-gen's
rules) on representative types, table-driven; the Go marker parser; the vendored extract (and, where Go
and the module cache are available, that it is what the pinned release gives). test_manifests compares
the generated Kubernetes types with KubeRay's CRDs path by path (it needs kubectl to read their YAML).

Offline, no cluster. Run: cd tests/sim && python3 -m unittest -v test_crd_schema
"""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("RW_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "manifests", "hack"))
import k8s_openapi as K  # noqa: E402

R = "#/components/schemas/"
Q = "io.k8s.apimachinery.pkg.api.resource.Quantity"
IOS = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
OM = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# Synthetic upstream components in the shape openapi-gen writes them.
SCHEMAS = {
    Q: {"description": "Quantity is a fixed-point representation of a number.", "type": "string"},
    IOS: {"description": "IntOrString...", "format": "int-or-string", "oneOf": [{"type": "integer"},
                                                                             {"type": "string"}]},
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": {"description": "Time...", "type": "string",
                                                  "format": "date-time"},
    OM: {"type": "object", "properties": {
        "name": {"type": "string"}, "namespace": {"type": "string"}, "uid": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
        "finalizers": {"type": "array", "items": {"type": "string", "default": ""},
                       "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
        "creationTimestamp": {"allOf": [{"$ref": R + "io.k8s.apimachinery.pkg.apis.meta.v1.Time"}]}}},
    "t.Ref": {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {
        "name": {"type": "string", "default": ""}}},
    "t.Sel": {"description": "Selects a key. More text.", "type": "object", "required": ["key"],
              "properties": {"key": {"type": "string", "default": ""},
                             "name": {"type": "string", "default": ""},
                             "optional": {"type": "boolean"}}},
    "t.Port": {"type": "object", "required": ["containerPort"], "properties": {
        "containerPort": {"type": "integer", "format": "int32", "default": 0},
        "protocol": {"type": "string", "default": "TCP"},
        "caching": {"type": "string", "default": "ReadWrite"}}},
    "t.Container": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "default": ""},
        "ports": {"type": "array", "items": {"allOf": [{"$ref": R + "t.Port"}], "default": {}},
                  "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                  "x-kubernetes-patch-merge-key": "containerPort", "x-kubernetes-patch-strategy": "merge"},
        "limits": {"type": "object", "additionalProperties": {"$ref": R + Q}},
        "port": {"allOf": [{"$ref": R + IOS}], "description": "Port to probe. Number or name."},
        "since": {"allOf": [{"$ref": R + "io.k8s.apimachinery.pkg.apis.meta.v1.Time"}]},
        "sel": {"allOf": [{"$ref": R + "t.Sel"}], "default": {}, "description": "The selector. Details."},
        "tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}}}},
    "t.Template": {"type": "object", "x-kubernetes-unions": [{}], "properties": {
        "metadata": {"allOf": [{"$ref": R + OM}], "default": {}},
        "spec": {"allOf": [{"$ref": R + "t.Container"}], "default": {}}}},
    "t.Loop": {"type": "object", "properties": {"next": {"allOf": [{"$ref": R + "t.Loop"}]}}},
}
MARKERS = {
    "t.Ref": {"name": {"default": ""}},
    "t.Sel": {"__inline__": ["t.Ref"]},
    "t.Port": {"protocol": {"default": "TCP"}, "caching": {"default": None}},  # None: +default=ref(Const)
    "t.Container": {"name": {"Pattern": "^[a-z]+$", "MaxLength": 63, "Required": True}},
}
QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": K.QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True}


class TestConversionTable(unittest.TestCase):
    def conv(self, name, descriptions=None):
        return K.Converter(SCHEMAS, MARKERS, descriptions).type(name)

    def test_table(self):
        c = self.conv("t.Container")
        p = c["properties"]
        cases = [
            # (what, got, want)
            ("quantity map values", p["limits"], {"type": "object", "additionalProperties": QUANTITY}),
            ("int-or-string", p["port"], {"anyOf": [{"type": "integer"}, {"type": "string"}],
                                          "x-kubernetes-int-or-string": True}),
            ("metav1.Time", p["since"], {"type": "string", "format": "date-time"}),
            ("uniqueItems dropped", p["tags"], {"type": "array", "items": {"type": "string"}}),
            ("list-map kept, patch keys and {} defaults dropped, +default kept, ref() default dropped",
             p["ports"], {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                          "items": {"type": "object", "required": ["containerPort"], "properties": {
                              "containerPort": {"type": "integer", "format": "int32"},
                              "protocol": {"type": "string", "default": "TCP"},
                              "caching": {"type": "string"}}}}),
            ("inline embedded struct: its +default and its map type", p["sel"],
             {"type": "object", "required": ["key"], "x-kubernetes-map-type": "atomic", "properties": {
                 "key": {"type": "string"}, "name": {"type": "string", "default": ""},
                 "optional": {"type": "boolean"}}}),
            ("kubebuilder markers", p["name"], {"type": "string", "pattern": "^[a-z]+$", "maxLength": 63}),
            ("required", c["required"], ["name"]),
        ]
        for what, got, want in cases:
            with self.subTest(what):
                self.assertEqual(got, want)

    def test_embedded_object_meta(self):
        t = self.conv("t.Template")
        self.assertNotIn("x-kubernetes-unions", t)
        self.assertEqual(t["properties"]["metadata"], {"type": "object", "properties": {
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "name": {"type": "string"}, "namespace": {"type": "string"}}})

    def test_descriptions(self):
        c = self.conv("t.Container", descriptions="short")
        self.assertEqual(c["properties"]["sel"]["description"], "The selector.")  # the field's, first sentence
        self.assertEqual(c["properties"]["port"]["description"], "Port to probe.")
        self.assertEqual(K.short_description("A " + "b" * 300 + "."), ("A " + "b" * 300)[:197] + "...")
        self.assertEqual(K.short_description("One line\n  wrapped. Two."), "One line wrapped.")
        self.assertNotIn("description", json.dumps(self.conv("t.Container")))

    def test_recursion_and_missing(self):
        with self.assertRaises(ValueError):
            self.conv("t.Loop")
        with self.assertRaises(KeyError):
            self.conv("t.Nope")


class TestMarkers(unittest.TestCase):
    GO = '''
// LocalObjectReference contains enough information.
// +structType=atomic
type LocalObjectReference struct {
	// Name of the referent.
	// +optional
	// +default=""
	// +kubebuilder:default=""
	Name string `json:"name,omitempty" protobuf:"bytes,1,opt,name=name"`
}

type ConfigMapKeySelector struct {
	// The ConfigMap to select from.
	LocalObjectReference `json:",inline" protobuf:"bytes,1,opt,name=localObjectReference"`
	// The key to select.
	Key string `json:"key" protobuf:"bytes,2,opt,name=key"`
}

type AzureDisk struct {
	// +default=ref(AzureDataDiskCachingReadWrite)
	CachingMode *string `json:"cachingMode,omitempty"`
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:Enum=True;False;Unknown
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:Minimum=0
	Status string `json:"status"`
}
'''

    def test_parse(self):
        m = K.parse_markers(self.GO, "p.")
        self.assertEqual(m["p.LocalObjectReference"], {"name": {"default": ""}})
        self.assertEqual(m["p.ConfigMapKeySelector"], {"__inline__": ["p.LocalObjectReference"]})
        self.assertEqual(m["p.AzureDisk"]["cachingMode"], {"default": None})
        self.assertEqual(m["p.AzureDisk"]["status"], {"MaxLength": 316, "Enum": ["True", "False", "Unknown"],
                                                      "Required": True, "Minimum": 0})


class TestVendoredExtract(unittest.TestCase):
    def test_vendored(self):
        doc = K.load_vendored()
        self.assertEqual(doc["kubernetes"], "v1.34.4")
        self.assertIn("v1.34.4", doc["source"])
        for root in K.ROOTS:
            self.assertIn(root, doc["schemas"])
        conv = K.Converter(doc["schemas"], doc["markers"], None)
        pts = conv.type("io.k8s.api.core.v1.PodTemplateSpec")
        cpu = pts["properties"]["spec"]["properties"]["containers"]["items"]["properties"]["resources"]
        self.assertEqual(cpu["properties"]["limits"]["additionalProperties"], QUANTITY)
        cond = conv.type("io.k8s.api.core.v1.Service")["properties"]["status"]["properties"]["conditions"]
        self.assertEqual(cond["items"]["properties"]["status"], {"type": "string",
                                                                 "enum": ["True", "False", "Unknown"]})

    def test_matches_pinned_release(self):
        try:
            dirs = K.upstream_dirs(offline=True)
        except K.Unavailable as e:
            self.skipTest("Kubernetes %s OpenAPI not available here: %s" % (K.KUBERNETES, e))
        with open(K.VENDORED, encoding="utf-8") as f:
            self.assertEqual(f.read(), K.dump_vendored(K.extract(dirs)),
                             "re-vendor with python3 manifests/hack/gen_crds.py --vendor")


if __name__ == "__main__":
    unittest.main()

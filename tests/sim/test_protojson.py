"""kubesim/protojson.py: protobuf request bodies (as client-go sends them) decode to the JSON a Go
client would have sent. The bodies are encoded here by hand from the field numbers of
k8s.io/api's Go types; skipped when k8s.io/api is not in the Go module cache."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubesim import protojson  # noqa: E402

VERSION = "v0.34.1"


def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def f(num, v):
    """A field: int -> varint, bytes/str -> length-delimited."""
    if isinstance(v, int):
        return varint(num << 3) + varint(v)
    if isinstance(v, str):
        v = v.encode()
    return varint(num << 3 | 2) + varint(len(v)) + v


def unknown(api_version, kind, raw):
    return protojson.MAGIC + f(1, f(1, api_version) + f(2, kind)) + f(2, raw) + f(3, "") + f(4, "")


class ProtoJSON(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            protojson.schema(VERSION)
        except protojson.Undecodable as e:
            raise unittest.SkipTest(str(e))

    def decode(self, body):
        return json.loads(protojson.to_json(body, VERSION))

    def test_service(self):
        meta = f(1, "head-svc") + f(11, f(1, "ray.io/cluster") + f(2, "c")) + f(8, b"")
        port = f(1, "dashboard") + f(2, "TCP") + f(3, 8265) + f(4, f(1, 0) + f(2, 0) + f(3, "")) + f(6, "tcp")
        spec = f(1, port) + f(2, f(1, "ray.io/node-type") + f(2, "head")) + f(3, "None")
        svc = self.decode(unknown("v1", "Service", f(1, meta) + f(2, spec) + f(3, b"")))
        self.assertEqual(svc, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "head-svc", "labels": {"ray.io/cluster": "c"}},  # zero time: omitzero
            "spec": {"ports": [{"name": "dashboard", "protocol": "TCP", "appProtocol": "tcp", "port": 8265,
                                "targetPort": 0}],
                     "selector": {"ray.io/node-type": "head"}, "clusterIP": "None"},
            "status": {}})

    def test_pod_pointer_zero_kept_plain_zero_dropped(self):
        spec = f(2, f(1, "ray-head") + f(2, "rayproject/ray:2.52.0")) + f(3, "Always") + f(4, 0) + f(11, 0)
        pod = self.decode(unknown("v1", "Pod", f(1, f(1, "p")) + f(2, spec)))
        self.assertEqual(pod["spec"], {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.52.0"}],
                                       "restartPolicy": "Always", "terminationGracePeriodSeconds": 0})

    def test_secret_bytes_base64_and_time(self):
        meta = f(1, "s") + f(8, f(1, 1700000000))
        sec = self.decode(unknown("v1", "Secret", f(1, meta) + f(2, f(1, "k") + f(2, b"\x00\xff"))))
        self.assertEqual(sec["data"], {"k": "AP8="})
        self.assertEqual(sec["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z")

    def test_group_kinds_and_meta_options(self):
        rb = self.decode(unknown("rbac.authorization.k8s.io/v1", "RoleBinding",
                                 f(1, f(1, "rb")) + f(2, f(1, "ServiceAccount") + f(3, "sa"))
                                 + f(3, f(1, "rbac.authorization.k8s.io") + f(2, "Role") + f(3, "r"))))
        self.assertEqual(rb["subjects"], [{"kind": "ServiceAccount", "name": "sa"}])
        self.assertEqual(rb["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"})
        self.assertEqual(self.decode(unknown("v1", "DeleteOptions", f(4, "Background"))),
                         {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})

    def test_unknown_field_refused(self):
        with self.assertRaises(protojson.Undecodable):
            protojson.to_json(unknown("v1", "Pod", f(1, f(999, "x"))), VERSION)
        with self.assertRaises(protojson.Undecodable):
            protojson.to_json(b"{}", VERSION)


if __name__ == "__main__":
    unittest.main()

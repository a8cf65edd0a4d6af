"""Conformance tests of the kube-apiserver simulator (tests/sim/kubesim/apiserver.py).

Each test states one behaviour of the real kube-apiserver as an assertion; the simulator module
comments name the Kubernetes page or source file each behaviour follows.
Run: cd tests/sim && python3 -m unittest -v test_apiserver
"""

import http.client
import json
import os
import re
import ssl
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubesim.apiserver import APIServer  # noqa: E402
from kubesim.controllers import ControllerManager  # noqa: E402
from kubesim.kubeclient import KubeClient  # noqa: E402
from kubesim.testutil import wait_for  # noqa: E402

TOKEN = "test-token-123"
JSON = "application/json"


class Client:
    def __init__(self, srv, token=TOKEN, ctx=None):
        self.host = srv.host
        self.port = srv.port
        self.token = token
        self.tls = srv.tls
        self.ctx = ctx
        self.local = threading.local()

    def conn(self):
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def req(self, method, path, body=None, ctype=JSON, accept=JSON, token=True, headers=None):
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = self.conn()
        h = {"Accept": accept}
        if token and self.token:
            h["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h["Content-Type"] = ctype
        h.update(headers or {})
        try:
            c.request(method, path, data, h)
            r = c.getresponse()
        except (http.client.HTTPException, OSError):
            c.close()
            c = self.local.c = self.conn()
            c.request(method, path, data, h)
            r = c.getresponse()
        raw = r.read()
        try:
            obj = json.loads(raw) if raw else None
        except ValueError:
            obj = raw.decode()
        return r.status, obj, r

    def ok(self, method, path, body=None, ctype=JSON, expect=(200, 201)):
        code, obj, _ = self.req(method, path, body, ctype)
        if code not in expect:
            raise AssertionError("%s %s -> %d %s" % (method, path, code, obj))
        return obj

    def watch(self, path, timeout=10):
        """Open a watch; returns (response, reader) where reader() yields decoded events."""
        c = self.conn()
        h = {"Authorization": "Bearer " + self.token, "Accept": JSON}
        c.sock = None
        c.timeout = timeout
        c.request("GET", path, headers=h)
        r = c.getresponse()
        return WatchStream(c, r)


class WatchStream:
    def __init__(self, conn, resp):
        self.conn = conn
        self.resp = resp
        self.status = resp.status

    def next(self):
        while True:
            line = self.resp.readline()
            if not line:
                return None
            if line.strip():
                return json.loads(line)

    def take(self, n, skip_bookmarks=True):
        out = []
        while len(out) < n:
            ev = self.next()
            if ev is None:
                break
            if skip_bookmarks and ev["type"] == "BOOKMARK":
                continue
            out.append(ev)
        return out

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except Exception:
            pass
        self.conn.close()


def cm(name, ns=None, labels=None, data=None, **meta):
    md = {"name": name}
    if ns:
        md["namespace"] = ns
    if labels:
        md["labels"] = labels
    md.update(meta)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data or {"k": "v"}}


def deployment(name, replicas=1):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.25",
                                                           "env": [{"name": "A", "value": "1"}]}]}}}}


def pod(name, node=None, labels=None, finalizers=None):
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    if node:
        p["spec"]["nodeName"] = node
    if finalizers:
        p["metadata"]["finalizers"] = finalizers
    return p


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                       "shortNames": ["wd"], "categories": ["all"]},
             "versions": [
                 {"name": "v1", "served": True, "storage": True,
                  "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                           "statusReplicasPath": ".status.replicas"}},
                  "additionalPrinterColumns": [
                      {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                      {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                      {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                      "spec": {"type": "object", "required": ["size"], "properties": {
                          "size": {"type": "integer", "minimum": 0},
                          "replicas": {"type": "integer"},
                          "color": {"type": "string", "default": "blue",
                                    "enum": ["blue", "red"]},
                          "free": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}},
                      "status": {"type": "object", "properties": {
                          "phase": {"type": "string"}, "replicas": {"type": "integer"}}}}}}},
                 {"name": "v1beta1", "served": True, "storage": False, "deprecated": True,
                  "schema": {"openAPIV3Schema": {"type": "object",
                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}


class ApiServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = APIServer(token=TOKEN, bookmark_interval=0.3, history_size=200,
                            watch_cache_size=200)
        cls.srv.start()
        cls.c = Client(cls.srv)
        cls.nsn = 0
        # The kube-controller-manager parts a namespace needs: its `default` ServiceAccount (the
        # ServiceAccount admission plugin refuses pods without it), kube-root-ca.crt, and the
        # namespace controller (its delays shortened 50 times).
        cls.cm = ControllerManager(client=KubeClient(cls.srv.url, token=TOKEN), controllers=(
            "serviceaccount-controller", "root-ca-certificate-publisher-controller", "namespace-controller"),
            namespace_delay_scale=0.02, ca_pem="")
        cls.cm.start()

    @classmethod
    def tearDownClass(cls):
        cls.cm.stop()
        cls.srv.stop()

    def ns(self):
        type(self).nsn += 1
        name = "t%d-%s" % (self.nsn, self._testMethodName.replace("_", "-")[5:30].strip("-"))
        self.c.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": name}})
        # Ready as on a real cluster: the controllers made `default` and kube-root-ca.crt.
        wait_for(lambda: self.c.req("GET", "/api/v1/namespaces/%s/serviceaccounts/default" % name)[0] == 200
                 and self.c.req("GET", "/api/v1/namespaces/%s/configmaps/kube-root-ca.crt" % name)[0] == 200,
                 what="namespace %s has its ServiceAccount and kube-root-ca.crt" % name)
        return name

    def assertStatus(self, obj, code, reason):
        self.assertEqual(obj["kind"], "Status")
        self.assertEqual(obj["apiVersion"], "v1")
        self.assertEqual(obj["status"], "Failure")
        self.assertEqual(obj["code"], code)
        self.assertEqual(obj["reason"], reason)
        self.assertTrue(obj["message"])

    # ---- auth, health, discovery -------------------------------------------------------------------

    def test_auth(self):
        code, obj, _ = self.c.req("GET", "/api/v1/namespaces", token=False)
        self.assertEqual(code, 403)  # anonymous -> system:anonymous, denied by RBAC (kubeadm)
        self.assertStatus(obj, 403, "Forbidden")
        self.c.token = "wrong"
        try:
            code, obj, _ = self.c.req("GET", "/api/v1/namespaces")
        finally:
            self.c.token = TOKEN
        self.assertEqual(code, 401)
        self.assertEqual(obj, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Failure", "message": "Unauthorized",
                               "reason": "Unauthorized", "code": 401})
        for p in ("/readyz", "/livez", "/healthz"):
            code, body, _ = self.c.req("GET", p, token=False)
            self.assertEqual((code, body), (200, "ok"))
        code, v, _ = self.c.req("GET", "/version", token=False)
        self.assertEqual(code, 200)
        self.assertEqual(v["major"], "1")
        code, obj, _ = self.c.req("GET", "/_sim/stats", token=False)
        self.assertEqual(code, 401)

    def test_auth_without_anonymous(self):
        s = APIServer(token=TOKEN, anonymous_auth=False).start()
        try:
            c = Client(s)
            code, obj, _ = c.req("GET", "/api/v1/pods", token=False)
            self.assertEqual(code, 401)
            self.assertStatus(obj, 401, "Unauthorized")
        finally:
            s.stop()

    def test_discovery(self):
        v1 = self.c.ok("GET", "/api/v1")
        res = {r["name"]: r for r in v1["resources"]}
        self.assertEqual(res["pods"]["shortNames"], ["po"])
        self.assertEqual(res["pods"]["categories"], ["all"])
        self.assertIn("watch", res["pods"]["verbs"])
        self.assertEqual(res["pods/status"]["verbs"], ["get", "patch", "update"])
        self.assertIn("pods/log", res)
        self.assertIn("pods/binding", res)
        self.assertFalse(res["nodes"]["namespaced"])
        self.assertEqual(res["services"]["shortNames"], ["svc"])
        apis = self.c.ok("GET", "/apis")
        names = [g["name"] for g in apis["groups"]]
        for g in ("apps", "batch", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io",
                  "rbac.authorization.k8s.io", "apiextensions.k8s.io"):
            self.assertIn(g, names)
        apps = {r["name"]: r for r in self.c.ok("GET", "/apis/apps/v1")["resources"]}
        self.assertEqual(apps["deployments"]["shortNames"], ["deploy"])
        self.assertEqual(apps["deployments/scale"]["group"], "autoscaling")
        self.assertEqual(apps["deployments/scale"]["kind"], "Scale")
        code, obj, _ = self.c.req("GET", "/apis/nope.io/v1")
        self.assertEqual(code, 404)
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.assertEqual(self.c.ok("GET", "/api/v1/namespaces/" + ns)["status"]["phase"],
                             "Active")
        root = self.c.ok("GET", "/openapi/v3")
        self.assertIn("apis/apps/v1", root["paths"])
        doc = self.c.ok("GET", root["paths"]["apis/apps/v1"]["serverRelativeURL"])
        patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
        self.assertIn("fieldValidation", [p["name"] for p in patch["parameters"]])

    # ---- create / names / errors ------------------------------------------------------------------

    def test_create_system_fields(self):
        ns = self.ns()
        a = self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("a"))
        b = self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("b"))
        self.assertRegex(a["metadata"]["uid"], r"^[0-9a-f-]{36}$")
        self.assertIsInstance(a["metadata"]["resourceVersion"], str)
        self.assertGreater(int(b["metadata"]["resourceVersion"]), int(a["metadata"]["resourceVersion"]))
        self.assertRegex(a["metadata"]["creationTimestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(a["metadata"]["namespace"], ns)
        self.assertNotIn("generation", a["metadata"])
        d = self.c.ok("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns, deployment("d"))
        self.assertEqual(d["metadata"]["generation"], 1)
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("a"))
        self.assertEqual(code, 409)
        self.assertEqual(obj, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Failure", "message": 'configmaps "a" already exists',
                               "reason": "AlreadyExists", "details": {"name": "a", "kind": "configmaps"},
                               "code": 409})
        code, obj, _ = self.c.req("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns,
                                  deployment("d"))
        self.assertEqual(obj["message"], 'deployments.apps "d" already exists')
        self.assertEqual(obj["details"], {"name": "d", "group": "apps", "kind": "deployments"})
        code, obj, _ = self.c.req("GET", "/api/v1/namespaces/%s/configmaps/zz" % ns)
        self.assertEqual(code, 404)
        self.assertEqual(obj["message"], 'configmaps "zz" not found')
        self.assertEqual(obj["details"], {"name": "zz", "kind": "configmaps"})
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/nosuchns/configmaps", cm("x"))
        self.assertEqual(code, 404)
        self.assertEqual(obj["message"], 'namespaces "nosuchns" not found')
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                                  cm("rv", resourceVersion="12"))
        self.assertEqual((code, obj["message"]),
                         (500, "resourceVersion should not be set on objects to be created"))
        self.assertNotIn("reason", obj)
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("x", ns="other"))
        self.assertEqual(code, 400)
        self.assertStatus(obj, 400, "BadRequest")

    def test_generate_name(self):
        ns = self.ns()
        seen = set()
        for _ in range(20):
            o = self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                          {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"generateName": "web-"}})
            n = o["metadata"]["name"]
            self.assertRegex(n, r"^web-[bcdfghjklmnpqrstvwxz2456789]{5}$")
            seen.add(n)
        self.assertEqual(len(seen), 20)
        long = "x" * 70
        o = self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                      {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": long}})
        self.assertEqual(len(o["metadata"]["name"]), 63)
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
        self.assertEqual(code, 422)
        self.assertIn("name or generateName is required", obj["message"])

    def test_name_validation(self):
        ns = self.ns()
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("Bad_Name"))
        self.assertEqual(code, 422)
        self.assertStatus(obj, 422, "Invalid")
        self.assertTrue(obj["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: '
                                                  'Invalid value: "Bad_Name": a lowercase RFC 1123'))
        self.assertEqual(obj["details"]["kind"], "ConfigMap")
        self.assertEqual(obj["details"]["causes"][0]["field"], "metadata.name")
        self.assertEqual(obj["details"]["causes"][0]["reason"], "FieldValueInvalid")
        # Subdomain names may contain dots; Services need DNS-1035 labels; namespaces labels.
        self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("a.b.c"))
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1svc"},
               "spec": {"ports": [{"port": 80}]}}
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/services" % ns, svc)
        self.assertEqual(code, 422)
        self.assertIn("DNS-1035", obj["message"])
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces",
                                  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}})
        self.assertEqual(code, 422)
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                                  cm("lbl", labels={"bad key!": "x"}))
        self.assertEqual(code, 422)
        big = {"a": "x" * 262144}
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                                  cm("big", annotations=big))
        self.assertEqual(code, 422)
        self.assertIn("metadata.annotations: Too long: must have at most 262144 bytes", obj["message"])

    def test_defaults_and_kind_rules(self):
        ns = self.ns()
        svc = self.c.ok("POST", "/api/v1/namespaces/%s/services" % ns,
                        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                         "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
        self.assertRegex(svc["spec"]["clusterIP"], r"^10\.9[6-9]\.\d+\.\d+$")
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], 80)
        self.assertEqual(svc["spec"]["ports"][0]["protocol"], "TCP")
        self.assertEqual(svc["spec"]["type"], "ClusterIP")
        sec = self.c.ok("POST", "/api/v1/namespaces/%s/secrets" % ns,
                        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                         "stringData": {"pw": "hunter2"}})
        self.assertEqual(sec["data"], {"pw": "aHVudGVyMg=="})
        self.assertEqual(sec["type"], "Opaque")
        self.assertNotIn("stringData", sec)
        p = self.c.ok("POST", "/api/v1/namespaces/%s/pods" % ns, pod("p"))
        self.assertEqual(p["status"]["phase"], "Pending")
        self.assertEqual(p["spec"]["restartPolicy"], "Always")
        self.assertEqual(p["spec"]["terminationGracePeriodSeconds"], 30)
        self.assertEqual(p["spec"]["containers"][0]["imagePullPolicy"], "Always")
        bad = pod("q")
        del bad["spec"]["containers"][0]["image"]
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/pods" % ns, bad)
        self.assertEqual(code, 422)
        self.assertIn("spec.containers[0].image: Required value", obj["message"])
        d = deployment("d")
        d["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
        code, obj, _ = self.c.req("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns, d)
        self.assertEqual(code, 422)
        self.assertIn("`selector` does not match template `labels`", obj["message"])
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
               "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                   {"name": "c", "image": "busybox"}]}}}}
        j = self.c.ok("POST", "/apis/batch/v1/namespaces/%s/jobs" % ns, job)
        uid = j["metadata"]["uid"]
        self.assertEqual(j["spec"]["selector"], {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        self.assertEqual(j["spec"]["template"]["metadata"]["labels"]["job-name"], "j")
        self.assertEqual(j["spec"]["backoffLimit"], 6)
        job["metadata"]["name"] = "j2"
        job["spec"]["template"]["spec"]["restartPolicy"] = "Always"
        code, obj, _ = self.c.req("POST", "/apis/batch/v1/namespaces/%s/jobs" % ns, job)
        self.assertEqual(code, 422)
        # Pod spec is immutable except for images and a few fields.
        p["spec"]["containers"][0]["image"] = "busybox:2"
        self.c.ok("PUT", "/api/v1/namespaces/%s/pods/p" % ns, p)
        p = self.c.ok("GET", "/api/v1/namespaces/%s/pods/p" % ns)
        p["spec"]["nodeName"] = "n1"
        code, obj, _ = self.c.req("PUT", "/api/v1/namespaces/%s/pods/p" % ns, p)
        self.assertEqual(code, 422)
        self.assertIn("pod updates may not change fields", obj["message"])

    def test_secret_data_decoded_as_go_decodes(self):
        # encoding/json decodes []byte with base64.StdEncoding: '\r' and '\n' are skipped, padding
        # is required; the stored value is the re-encoding. Errors are the serializer's 400.
        ns = self.ns()
        base = "/api/v1/namespaces/%s/secrets" % ns
        sec = self.c.ok("POST", base, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "w"},
                                       "data": {"a": "aGVs\nbG8g\r\nd29y\nbGQ=\n", "b": "aGVsbG9="}})
        self.assertEqual(sec["data"], {"a": "aGVsbG8gd29ybGQ=", "b": "aGVsbG8="})
        cmap = self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"},
                          "binaryData": {"x": "AAEC\nAw=="}})
        self.assertEqual(cmap["binaryData"], {"x": "AAECAw=="})
        for value, offset in (("aGVsbG8", 4), ("aGVsbG8=x", 8), ("aG=", 3), ("a===", 1),
                              ("aGVsbG8gd29y\nbGQgaGVsbG8gd29ybGQ", 29), ("YQ", 0), ("aGV$", 3)):
            code, obj, _ = self.c.req("POST", base, {"apiVersion": "v1", "kind": "Secret",
                                                     "metadata": {"name": "bad"}, "data": {"k": value}})
            self.assertEqual(code, 400, value)
            self.assertStatus(obj, 400, "BadRequest")
            self.assertEqual(obj["message"], 'Secret in version "v1" cannot be handled as a Secret: '
                             'illegal base64 data at input byte %d' % offset)

    # ---- update semantics ----------------------------------------------------------------------

    def test_update_conflict_and_unconditional(self):
        ns = self.ns()
        path = "/api/v1/namespaces/%s/configmaps/c" % ns
        o = self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("c"))
        o2 = dict(o, data={"k": "2"})
        new = self.c.ok("PUT", path, o2)
        self.assertGreater(int(new["metadata"]["resourceVersion"]), int(o["metadata"]["resourceVersion"]))
        code, obj, _ = self.c.req("PUT", path, dict(o, data={"k": "3"}))  # stale resourceVersion
        self.assertEqual(code, 409)
        self.assertEqual(obj["reason"], "Conflict")
        self.assertEqual(obj["message"], 'Operation cannot be fulfilled on configmaps "c": the object '
                         'has been modified; please apply your changes to the latest version and '
                         'try again')
        uncond = cm("c", data={"k": "4"})
        self.assertEqual(self.c.ok("PUT", path, uncond)["data"], {"k": "4"})
        # An update that changes nothing writes nothing.
        cur = self.c.ok("GET", path)
        same = self.c.ok("PUT", path, cur)
        self.assertEqual(same["metadata"]["resourceVersion"], cur["metadata"]["resourceVersion"])
        code, obj, _ = self.c.req("PUT", "/api/v1/namespaces/%s/configmaps/nope" % ns, cm("nope"))
        self.assertEqual(code, 404)
        code, obj, _ = self.c.req("PUT", path, cm("other"))
        self.assertEqual(code, 400)

    def test_generation_and_status_subresource(self):
        ns = self.ns()
        base = "/apis/apps/v1/namespaces/%s/deployments" % ns
        d = self.c.ok("POST", base, deployment("d"))
        self.assertNotIn("status", d)
        d["status"] = {"replicas": 5}
        d2 = self.c.ok("PUT", base + "/d", d)  # main endpoint: status ignored, no spec change
        self.assertEqual(d2["metadata"]["generation"], 1)
        self.assertNotIn("replicas", d2.get("status", {}))
        d2["status"] = {"replicas": 3, "observedGeneration": 1}
        d2["spec"]["replicas"] = 9  # ignored by /status
        d3 = self.c.ok("PUT", base + "/d/status", d2)
        self.assertEqual(d3["status"]["replicas"], 3)
        self.assertEqual(d3["spec"]["replicas"], 1)
        self.assertEqual(d3["metadata"]["generation"], 1)
        d3["spec"]["replicas"] = 2
        d4 = self.c.ok("PUT", base + "/d", d3)
        self.assertEqual(d4["metadata"]["generation"], 2)
        self.assertEqual(d4["status"]["replicas"], 3)
        d5 = self.c.ok("PATCH", base + "/d/status", {"status": {"readyReplicas": 2}},
                       "application/merge-patch+json")
        self.assertEqual(d5["metadata"]["generation"], 2)
        d6 = self.c.ok("PATCH", base + "/d", {"metadata": {"labels": {"x": "y"}}},
                       "application/merge-patch+json")
        self.assertEqual(d6["metadata"]["generation"], 2)  # metadata changes leave generation alone

    def test_scale_subresource(self):
        ns = self.ns()
        base = "/apis/apps/v1/namespaces/%s/deployments" % ns
        self.c.ok("POST", base, deployment("d", 2))
        sc = self.c.ok("GET", base + "/d/scale")
        self.assertEqual(sc["kind"], "Scale")
        self.assertEqual(sc["apiVersion"], "autoscaling/v1")
        self.assertEqual(sc["spec"]["replicas"], 2)
        self.assertEqual(sc["status"]["selector"], "app=d")
        sc["spec"]["replicas"] = 4
        self.assertEqual(self.c.ok("PUT", base + "/d/scale", sc)["spec"]["replicas"], 4)
        code, obj, _ = self.c.req("PUT", base + "/d/scale", sc)  # stale
        self.assertEqual(code, 409)
        self.c.ok("PATCH", base + "/d/scale", {"spec": {"replicas": 6}}, "application/merge-patch+json")
        d = self.c.ok("GET", base + "/d")
        self.assertEqual(d["spec"]["replicas"], 6)
        self.assertEqual(d["metadata"]["generation"], 3)

    # ---- patch ---------------------------------------------------------------------------------

    def test_patch_types(self):
        ns = self.ns()
        base = "/apis/apps/v1/namespaces/%s/deployments/d" % ns
        self.c.ok("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns, deployment("d"))
        # JSON merge patch: null deletes, lists replace.
        o = self.c.ok("PATCH", base, {"metadata": {"labels": {"a": "1", "b": "2"}}},
                      "application/merge-patch+json")
        o = self.c.ok("PATCH", base, {"metadata": {"labels": {"a": None}}}, "application/merge-patch+json")
        self.assertEqual(o["metadata"]["labels"], {"b": "2"})
        # JSON patch with a passing and a failing test op.
        o = self.c.ok("PATCH", base, [{"op": "test", "path": "/spec/replicas", "value": 1},
                                      {"op": "replace", "path": "/spec/replicas", "value": 3}],
                      "application/json-patch+json")
        self.assertEqual(o["spec"]["replicas"], 3)
        code, obj, _ = self.c.req("PATCH", base, [{"op": "test", "path": "/spec/replicas", "value": 1}],
                                  "application/json-patch+json")
        self.assertEqual(code, 422)
        self.assertEqual(obj["reason"], "Invalid")
        code, obj, _ = self.c.req("PATCH", base, [{"op": "remove", "path": "/spec/nope"}],
                                  "application/json-patch+json")
        self.assertEqual(code, 422)
        # Strategic merge: containers merge by name, env by name, $patch: delete removes.
        o = self.c.ok("PATCH", base, {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "env": [{"name": "B", "value": "2"}]},
            {"name": "side", "image": "busybox"}]}}}}, "application/strategic-merge-patch+json")
        cs = o["spec"]["template"]["spec"]["containers"]
        self.assertEqual([c["name"] for c in cs], ["c", "side"])
        self.assertEqual(cs[0]["image"], "nginx:1.25")
        self.assertEqual(cs[0]["env"], [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        o = self.c.ok("PATCH", base, {"spec": {"template": {"spec": {"containers": [
            {"name": "side", "$patch": "delete"}]}}}}, "application/strategic-merge-patch+json")
        self.assertEqual([c["name"] for c in o["spec"]["template"]["spec"]["containers"]], ["c"])
        o = self.c.ok("PATCH", base, {"metadata": {"finalizers": ["x.io/a"]}},
                      "application/strategic-merge-patch+json")
        o = self.c.ok("PATCH", base, {"metadata": {"finalizers": ["x.io/b"]}},
                      "application/strategic-merge-patch+json")
        self.assertEqual(o["metadata"]["finalizers"], ["x.io/a", "x.io/b"])
        o = self.c.ok("PATCH", base, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x.io/a",
                                                                                          "x.io/b"]}},
                      "application/strategic-merge-patch+json")
        self.assertNotIn("finalizers", o["metadata"])  # empty lists are omitted (omitempty)
        # Stale resourceVersion in a patch -> 409.
        code, obj, _ = self.c.req("PATCH", base, {"metadata": {"resourceVersion": "1"}},
                                  "application/merge-patch+json")
        self.assertEqual(code, 409)
        code, obj, _ = self.c.req("PATCH", base, {"x": 1}, "text/plain")
        self.assertEqual(code, 415)
        self.assertStatus(obj, 415, "UnsupportedMediaType")
        code, obj, _ = self.c.req("PATCH", "/apis/apps/v1/namespaces/%s/deployments/nope" % ns,
                                  {"x": 1}, "application/merge-patch+json")
        self.assertEqual(code, 404)

    def test_server_side_apply(self):
        ns = self.ns()
        path = "/api/v1/namespaces/%s/configmaps/ssa" % ns
        code, obj, _ = self.c.req("PATCH", path + "?fieldManager=t", cm("ssa", data={"a": "1"}),
                                  "application/apply-patch+yaml")
        self.assertEqual(code, 201)
        code, obj, _ = self.c.req("PATCH", path + "?fieldManager=t", cm("ssa", data={"b": "2"}),
                                  "application/apply-patch+yaml")
        self.assertEqual(code, 200)
        self.assertEqual(obj["data"], {"a": "1", "b": "2"})
        code, obj, _ = self.c.req("PATCH", path, cm("ssa"), "application/apply-patch+yaml")
        self.assertEqual(code, 400)  # fieldManager is required for apply

    # ---- deletion ------------------------------------------------------------------------------

    def test_finalizers_block_deletion(self):
        ns = self.ns()
        path = "/api/v1/namespaces/%s/configmaps/f" % ns
        self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                  cm("f", finalizers=["example.com/hold"]))
        o = self.c.ok("DELETE", path)
        self.assertEqual(o["kind"], "ConfigMap")
        self.assertTrue(o["metadata"]["deletionTimestamp"])
        self.assertEqual(o["metadata"]["deletionGracePeriodSeconds"], 0)
        self.assertEqual(self.c.ok("GET", path)["metadata"]["finalizers"], ["example.com/hold"])
        code, obj, _ = self.c.req("PATCH", path, {"metadata": {"finalizers": ["example.com/hold",
                                                                             "example.com/new"]}},
                                  "application/merge-patch+json")
        self.assertEqual(code, 422)
        self.assertIn("no new finalizers can be added if the object is being deleted", obj["message"])
        self.c.ok("PATCH", path, {"metadata": {"finalizers": None}}, "application/merge-patch+json")
        code, obj, _ = self.c.req("GET", path)
        self.assertEqual(code, 404)
        # Immediate deletion returns a Success Status for kinds that do not return the object.
        self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("g"))
        st = self.c.ok("DELETE", "/api/v1/namespaces/%s/configmaps/g" % ns)
        self.assertEqual(st["kind"], "Status")
        self.assertEqual(st["status"], "Success")
        self.assertEqual(st["details"]["name"], "g")
        self.assertEqual(st["details"]["kind"], "configmaps")
        code, obj, _ = self.c.req("DELETE", "/api/v1/namespaces/%s/configmaps/g" % ns)
        self.assertEqual(code, 404)
        # Preconditions.
        o = self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("h"))
        code, obj, _ = self.c.req("DELETE", "/api/v1/namespaces/%s/configmaps/h" % ns,
                                  {"preconditions": {"uid": "not-the-uid"}})
        self.assertEqual(code, 409)

    def test_pod_graceful_deletion(self):
        ns = self.ns()
        base = "/api/v1/namespaces/%s/pods" % ns
        self.c.ok("POST", base, pod("unbound"))
        o = self.c.ok("DELETE", base + "/unbound")
        self.assertEqual(o["kind"], "Pod")
        code, _, _ = self.c.req("GET", base + "/unbound")
        self.assertEqual(code, 404)  # not bound to a node: deleted at once
        self.c.ok("POST", base, pod("bound", node="node-1"))
        o = self.c.ok("DELETE", base + "/bound")
        self.assertEqual(o["metadata"]["deletionGracePeriodSeconds"], 30)
        self.assertTrue(o["metadata"]["deletionTimestamp"])
        self.assertEqual(self.c.ok("GET", base + "/bound")["metadata"]["deletionGracePeriodSeconds"], 30)
        # The kubelet finishes the deletion with gracePeriodSeconds=0.
        self.c.ok("DELETE", base + "/bound", {"gracePeriodSeconds": 0})
        code, _, _ = self.c.req("GET", base + "/bound")
        self.assertEqual(code, 404)

    def test_pod_binding(self):
        ns = self.ns()
        base = "/api/v1/namespaces/%s/pods" % ns
        self.c.ok("POST", base, pod("p"))
        b = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
             "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
        st = self.c.ok("POST", base + "/p/binding", b)
        self.assertEqual(st["status"], "Success")
        p = self.c.ok("GET", base + "/p")
        self.assertEqual(p["spec"]["nodeName"], "node-1")
        self.assertIn({"type": "PodScheduled", "status": "True"},
                      [{"type": c["type"], "status": c["status"]} for c in p["status"]["conditions"]])
        code, obj, _ = self.c.req("POST", base + "/p/binding", b)
        self.assertEqual(code, 409)
        code, obj, _ = self.c.req("GET", base + "/p/log")
        self.assertEqual(code, 404)

    def _owned(self, ns, name, owner, block=False, finalizers=None):
        ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner["metadata"]["name"],
               "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": block}
        return self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                         cm(name, ownerReferences=[ref], finalizers=finalizers or []))

    def test_gc_background(self):
        ns = self.ns()
        owner = self.c.ok("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns, deployment("o"))
        self._owned(ns, "dep1", owner)
        self._owned(ns, "dep2", owner)
        other = self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("other-owner"))
        ref2 = {"apiVersion": "v1", "kind": "ConfigMap", "name": "other-owner",
                "uid": other["metadata"]["uid"]}
        d3 = self._owned(ns, "dep3", owner)
        d3["metadata"]["ownerReferences"].append(ref2)
        self.c.ok("PUT", "/api/v1/namespaces/%s/configmaps/dep3" % ns, d3)
        st = self.c.ok("DELETE", "/apis/apps/v1/namespaces/%s/deployments/o" % ns,
                       {"propagationPolicy": "Background"})
        self.assertEqual(st["kind"], "Status")
        for n in ("dep1", "dep2"):
            wait_for(lambda: self.c.req("GET", "/api/v1/namespaces/%s/configmaps/%s" % (ns, n))[0] == 404,
                     what="dependent %s collected" % n)
        # A dependent with another live owner only loses the dangling reference.
        wait_for(lambda: len(self.c.ok("GET", "/api/v1/namespaces/%s/configmaps/dep3" % ns)
                             ["metadata"]["ownerReferences"]) == 1, what="dangling ref removed")
        # A dependent created with an owner that does not exist is collected too.
        self._owned(ns, "orphaned", owner)
        wait_for(lambda: self.c.req("GET", "/api/v1/namespaces/%s/configmaps/orphaned" % ns)[0] == 404,
                 what="dependent of a missing owner collected")

    def test_gc_foreground(self):
        ns = self.ns()
        owner = self.c.ok("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns, deployment("o"))
        self._owned(ns, "blocker", owner, block=True, finalizers=["example.com/slow"])
        self._owned(ns, "plain", owner)
        o = self.c.ok("DELETE", "/apis/apps/v1/namespaces/%s/deployments/o" % ns,
                      {"propagationPolicy": "Foreground"})
        self.assertIn("foregroundDeletion", o["metadata"]["finalizers"])
        self.assertTrue(o["metadata"]["deletionTimestamp"])
        wait_for(lambda: self.c.req("GET", "/api/v1/namespaces/%s/configmaps/plain" % ns)[0] == 404,
                 what="non-blocking dependent deleted")
        blk = wait_for(lambda: self.c.ok("GET", "/api/v1/namespaces/%s/configmaps/blocker" % ns)
                       ["metadata"].get("deletionTimestamp"), what="blocking dependent deleting")
        self.assertTrue(blk)
        # The owner waits for the blocking dependent.
        self.assertEqual(self.c.req("GET", "/apis/apps/v1/namespaces/%s/deployments/o" % ns)[0], 200)
        self.c.ok("PATCH", "/api/v1/namespaces/%s/configmaps/blocker" % ns,
                  {"metadata": {"finalizers": None}}, "application/merge-patch+json")
        wait_for(lambda: self.c.req("GET", "/apis/apps/v1/namespaces/%s/deployments/o" % ns)[0] == 404,
                 what="owner deleted after its blocking dependents")

    def test_gc_orphan_and_job_default(self):
        ns = self.ns()
        owner = self.c.ok("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns, deployment("o"))
        self._owned(ns, "kid", owner)
        self.c.ok("DELETE", "/apis/apps/v1/namespaces/%s/deployments/o" % ns,
                  {"propagationPolicy": "Orphan"})
        wait_for(lambda: self.c.req("GET", "/apis/apps/v1/namespaces/%s/deployments/o" % ns)[0] == 404,
                 what="owner deleted")
        kid = self.c.ok("GET", "/api/v1/namespaces/%s/configmaps/kid" % ns)
        self.assertNotIn("ownerReferences", kid["metadata"])
        # batch/v1 Jobs orphan by default and warn about it.
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
               "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                   {"name": "c", "image": "busybox"}]}}}}
        j = self.c.ok("POST", "/apis/batch/v1/namespaces/%s/jobs" % ns, job)
        self.c.ok("POST", "/api/v1/namespaces/%s/pods" % ns, dict(pod("jp"), metadata={
            "name": "jp", "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j",
                                               "uid": j["metadata"]["uid"]}]}))
        code, obj, resp = self.c.req("DELETE", "/apis/batch/v1/namespaces/%s/jobs/j" % ns)
        self.assertEqual(code, 200)
        self.assertIn("child pods are preserved by default", resp.getheader("Warning") or "")
        self.assertIn("orphan", obj["metadata"]["finalizers"])
        wait_for(lambda: self.c.req("GET", "/apis/batch/v1/namespaces/%s/jobs/j" % ns)[0] == 404,
                 what="job deleted")
        self.assertEqual(self.c.req("GET", "/api/v1/namespaces/%s/pods/jp" % ns)[0], 200)

    def test_namespace_deletion(self):
        ns = self.ns()
        self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("a"))
        self.c.ok("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("held", finalizers=["x.io/f"]))
        o = self.c.ok("DELETE", "/api/v1/namespaces/" + ns)
        self.assertEqual(o["status"]["phase"], "Terminating")
        self.assertEqual(o["spec"]["finalizers"], ["kubernetes"])
        self.assertTrue(o["metadata"]["deletionTimestamp"])
        code, obj, _ = self.c.req("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("new"))
        self.assertEqual(code, 403)
        self.assertStatus(obj, 403, "Forbidden")
        self.assertEqual(obj["message"], 'configmaps "new" is forbidden: unable to create new content in '
                         'namespace %s because it is being terminated' % ns)
        self.assertEqual(obj["details"]["causes"], [{"reason": "NamespaceTerminating", "message": "namespace %s "
                                                     "is being terminated" % ns, "field": "metadata.namespace"}])
        # A second DELETE answers the namespace while its finalizer remains.
        self.assertEqual(self.c.ok("DELETE", "/api/v1/namespaces/" + ns)["status"]["phase"], "Terminating")
        wait_for(lambda: self.c.req("GET", "/api/v1/namespaces/%s/configmaps/a" % ns)[0] == 404,
                 what="content deleted")
        # The namespace controller's conditions (status_condition_utils.go) while "held" waits on
        # its finalizer; the ServiceAccount and kube-root-ca.crt are gone and not made again.

        def conds():
            st = self.c.ok("GET", "/api/v1/namespaces/" + ns).get("status") or {}
            got = {c["type"]: (c["status"], c["reason"], c["message"]) for c in st.get("conditions") or []}
            return got if got.get("NamespaceFinalizersRemaining", ("",))[0] == "True" else None

        got = wait_for(conds, what="namespace conditions")
        self.assertEqual(got, {
            "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered",
                                                  "All resources successfully discovered"),
            "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions",
                                                            "All legacy kube types successfully parsed"),
            "NamespaceDeletionContentFailure": ("False", "ContentDeleted",
                                                "All content successfully deleted, may be waiting on finalization"),
            "NamespaceContentRemaining": ("True", "SomeResourcesRemain",
                                          "Some resources are remaining: configmaps. has 1 resource instances"),
            "NamespaceFinalizersRemaining": ("True", "SomeFinalizersRemain", "Some content in the namespace has "
                                             "finalizers remaining: x.io/f in 1 resource instances")})
        self.assertEqual(self.c.req("GET", "/api/v1/namespaces/%s/serviceaccounts/default" % ns)[0], 404)
        self.assertEqual(self.c.req("GET", "/api/v1/namespaces/%s/configmaps/kube-root-ca.crt" % ns)[0], 404)
        self.assertEqual(self.c.req("GET", "/api/v1/namespaces/" + ns)[0], 200)
        self.c.ok("PATCH", "/api/v1/namespaces/%s/configmaps/held" % ns,
                  {"metadata": {"finalizers": None}}, "application/merge-patch+json")
        wait_for(lambda: self.c.req("GET", "/api/v1/namespaces/" + ns)[0] == 404,
                 what="namespace gone")
        code, obj, _ = self.c.req("DELETE", "/api/v1/namespaces/default")
        self.assertEqual(code, 403)

    def test_service_account_admission(self):
        # plugin/pkg/admission/serviceaccount/admission.go with the serviceaccount controller.
        ns = self.ns()
        base = "/api/v1/namespaces/%s/pods" % ns
        p = self.c.ok("POST", base, pod("p"))
        spec = p["spec"]
        self.assertEqual((spec["serviceAccountName"], spec["serviceAccount"]), ("default", "default"))
        vol = spec["volumes"][-1]
        self.assertRegex(vol["name"], r"^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$")
        self.assertEqual(vol["projected"], {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                          "fieldPath": "metadata.namespace"}}]}}]})
        self.assertEqual(spec["containers"][0]["volumeMounts"], [
            {"name": vol["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
        # A missing ServiceAccount: 403 before validation; the name is the generateName for one.
        for name, md in (("q", {"name": "q"}), ("gen-", {"generateName": "gen-"})):
            b = pod("x")
            b["metadata"] = md
            b["spec"]["serviceAccountName"] = "nosuch"
            del b["spec"]["containers"][0]["image"]
            code, obj, _ = self.c.req("POST", base, b)
            self.assertEqual(code, 403)
            self.assertStatus(obj, 403, "Forbidden")
            self.assertEqual(obj["message"], 'pods "%s" is forbidden: error looking up service account %s/nosuch: '
                             'serviceaccount "nosuch" not found' % (name, ns))
            self.assertEqual(obj["details"], {"name": name, "kind": "pods"})
        # No token: the pod says so, or its ServiceAccount does (the pod's choice wins); a container
        # with its own mount at the path keeps it.
        self.c.ok("POST", "/api/v1/namespaces/%s/serviceaccounts" % ns, {
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet"},
            "automountServiceAccountToken": False})
        b = pod("n1")
        b["spec"]["automountServiceAccountToken"] = False
        self.assertNotIn("volumes", self.c.ok("POST", base, b)["spec"])
        b = pod("n2")
        b["spec"]["serviceAccountName"] = "quiet"
        self.assertNotIn("volumes", self.c.ok("POST", base, b)["spec"])
        b["metadata"]["name"] = "n3"
        b["spec"]["automountServiceAccountToken"] = True
        self.assertEqual(len(self.c.ok("POST", base, b)["spec"]["volumes"]), 1)
        b = pod("n4")
        b["spec"]["containers"].append({"name": "own", "image": "busybox", "volumeMounts": [
            {"name": "v", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]})
        b["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
        got = self.c.ok("POST", base, b)["spec"]
        self.assertEqual([v["name"][:16] for v in got["volumes"]], ["v", "kube-api-access-"])
        self.assertEqual([m["name"] for m in got["containers"][1]["volumeMounts"]], ["v"])
        # The controller makes `default` again.
        self.c.ok("DELETE", "/api/v1/namespaces/%s/serviceaccounts/default" % ns)
        wait_for(lambda: self.c.req("GET", "/api/v1/namespaces/%s/serviceaccounts/default" % ns)[0] == 200,
                 what="default ServiceAccount made again")

    # ---- list ----------------------------------------------------------------------------------

    def test_label_and_field_selectors(self):
        ns = self.ns()
        base = "/api/v1/namespaces/%s/configmaps" % ns
        for n, lb in (("a", {"env": "prod", "tier": "fe"}), ("b", {"env": "dev"}),
                      ("c", {"tier": "be"}), ("d", {})):
            self.c.ok("POST", base, cm(n, labels=lb))

        def names(sel):
            q = "?labelSelector=" + sel.replace(" ", "%20").replace("!", "%21")
            return sorted(i["metadata"]["name"] for i in self.c.ok("GET", base + q)["items"]
                          if i["metadata"]["name"] != "kube-root-ca.crt")

        self.assertEqual(names("env=prod"), ["a"])
        self.assertEqual(names("env==prod"), ["a"])
        self.assertEqual(names("env!=prod"), ["b", "c", "d"])
        self.assertEqual(names("env in (prod,dev)"), ["a", "b"])
        self.assertEqual(names("env notin (prod)"), ["b", "c", "d"])
        self.assertEqual(names("tier"), ["a", "c"])
        self.assertEqual(names("!tier"), ["b", "d"])
        self.assertEqual(names("env=prod,tier=fe"), ["a"])
        code, obj, _ = self.c.req("GET", base + "?labelSelector=env%20in%20prod")
        self.assertEqual(code, 400)
        fs = self.c.ok("GET", base + "?fieldSelector=metadata.name%3Db")["items"]
        self.assertEqual([i["metadata"]["name"] for i in fs], ["b"])
        fs = self.c.ok("GET", base + "?fieldSelector=metadata.name!%3Db")["items"]
        self.assertEqual(sorted(i["metadata"]["name"] for i in fs), ["a", "c", "d", "kube-root-ca.crt"])
        code, obj, _ = self.c.req("GET", base + "?fieldSelector=data.k%3Dv")
        self.assertEqual(code, 400)
        self.assertIn("field label not supported", obj["message"])
        pb = "/api/v1/namespaces/%s/pods" % ns
        self.c.ok("POST", pb, pod("on1", node="n1"))
        self.c.ok("POST", pb, pod("on2", node="n2"))
        fs = self.c.ok("GET", pb + "?fieldSelector=spec.nodeName%3Dn1")["items"]
        self.assertEqual([i["metadata"]["name"] for i in fs], ["on1"])
        fs = self.c.ok("GET", pb + "?fieldSelector=status.phase%3DPending,spec.nodeName!%3Dn1")["items"]
        self.assertEqual([i["metadata"]["name"] for i in fs], ["on2"])
        allp = self.c.ok("GET", "/api/v1/pods?fieldSelector=metadata.namespace%3D" + ns)["items"]
        self.assertEqual(len(allp), 2)

    def test_pagination(self):
        ns = self.ns()
        base = "/api/v1/namespaces/%s/configmaps" % ns
        for i in range(7):
            self.c.ok("POST", base, cm("c%d" % i))
        page = self.c.ok("GET", base + "?limit=3")
        self.assertEqual([i["metadata"]["name"] for i in page["items"]], ["c0", "c1", "c2"])
        self.assertEqual(page["metadata"]["remainingItemCount"], 5)  # c3..c6, kube-root-ca.crt
        tok = page["metadata"]["continue"]
        rv = page["metadata"]["resourceVersion"]
        self.c.ok("POST", base, cm("c3a"))  # after the snapshot: not in later pages
        self.c.ok("DELETE", base + "/c5")  # deleted after the snapshot: still listed
        p2 = self.c.ok("GET", base + "?limit=3&continue=" + tok)
        self.assertEqual([i["metadata"]["name"] for i in p2["items"]], ["c3", "c4", "c5"])
        self.assertEqual(p2["metadata"]["resourceVersion"], rv)
        p3 = self.c.ok("GET", base + "?limit=3&continue=" + p2["metadata"]["continue"])
        self.assertEqual([i["metadata"]["name"] for i in p3["items"]], ["c6", "kube-root-ca.crt"])
        self.assertNotIn("continue", p3["metadata"])
        # Once history is compacted the token expires with 410.
        page = self.c.ok("GET", base + "?limit=2")
        self.c.ok("POST", base, cm("late"))
        self.c.ok("POST", "/_sim/compact", {})
        code, obj, _ = self.c.req("GET", base + "?limit=2&continue=" + page["metadata"]["continue"])
        self.assertEqual(code, 410)
        self.assertStatus(obj, 410, "Expired")

    def test_table_output(self):
        ns = self.ns()
        self.c.ok("POST", "/api/v1/namespaces/%s/pods" % ns, pod("p"))
        acc = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        code, t, _ = self.c.req("GET", "/api/v1/namespaces/%s/pods" % ns, accept=acc)
        self.assertEqual(code, 200)
        self.assertEqual(t["kind"], "Table")
        self.assertEqual(t["apiVersion"], "meta.k8s.io/v1")
        self.assertEqual([c["name"] for c in t["columnDefinitions"] if c["priority"] == 0],
                         ["Name", "Ready", "Status", "Restarts", "Age"])
        self.assertEqual(t["rows"][0]["cells"][:4], ["p", "0/1", "Pending", "0"])
        self.assertEqual(t["rows"][0]["object"]["kind"], "PartialObjectMetadata")
        code, t, _ = self.c.req("GET", "/api/v1/namespaces/%s/configmaps" % ns, accept=acc)
        self.assertEqual([c["name"] for c in t["columnDefinitions"]], ["Name", "Data", "Age"])
        code, obj, _ = self.c.req("GET", "/api/v1/namespaces", accept="application/vnd.kubernetes.protobuf")
        self.assertEqual(code, 406)

    # ---- CRDs ------------------------------------------------------------------------------------

    def test_crd_serving(self):
        ns = self.ns()
        crd = self.c.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)
        conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        self.assertEqual(conds, {"NamesAccepted": "True", "Established": "True"})
        self.assertEqual(crd["status"]["acceptedNames"]["kind"], "Widget")
        self.assertEqual(crd["status"]["storedVersions"], ["v1"])
        disc = {r["name"]: r for r in self.c.ok("GET", "/apis/example.com/v1")["resources"]}
        self.assertEqual(disc["widgets"]["shortNames"], ["wd"])
        self.assertIn("widgets/status", disc)
        self.assertIn("widgets/scale", disc)
        base = "/apis/example.com/v1/namespaces/%s/widgets" % ns
        w = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
             "spec": {"size": 3, "unknownField": 1, "free": {"anything": [1, 2]}},
             "status": {"phase": "ignored-on-create"}}
        code, o, resp = self.c.req("POST", base, w)
        self.assertEqual(code, 201)
        self.assertEqual(o["spec"], {"size": 3, "color": "blue", "free": {"anything": [1, 2]}})
        self.assertIn('unknown field \\"spec.unknownField\\"', resp.getheader("Warning"))
        self.assertNotIn("status", o)
        self.assertEqual(o["metadata"]["generation"], 1)
        w["metadata"]["name"] = "w2"
        code, o, _ = self.c.req("POST", base + "?fieldValidation=Strict", w)
        self.assertEqual(code, 400)
        self.assertIn('strict decoding error: unknown field "spec.unknownField"', o["message"])
        code, o, _ = self.c.req("POST", base, {"apiVersion": "example.com/v1", "kind": "Widget",
                                               "metadata": {"name": "w3"},
                                               "spec": {"size": -1, "color": "green"}})
        self.assertEqual(code, 422)
        self.assertIn("spec.size", o["message"])
        self.assertIn("spec.color", o["message"])
        # Status subresource: main endpoint ignores status, /status ignores the rest.
        cur = self.c.ok("GET", base + "/w1")
        cur["status"] = {"phase": "Ready", "replicas": 1}
        cur2 = self.c.ok("PUT", base + "/w1/status", cur)
        self.assertEqual(cur2["status"]["phase"], "Ready")
        self.assertEqual(cur2["metadata"]["generation"], 1)
        cur2["spec"]["size"] = 5
        cur2["status"]["phase"] = "Changed"
        cur3 = self.c.ok("PUT", base + "/w1", cur2)
        self.assertEqual(cur3["metadata"]["generation"], 2)
        self.assertEqual(cur3["status"]["phase"], "Ready")
        # Custom resources need a resourceVersion on PUT.
        del cur3["metadata"]["resourceVersion"]
        code, o, _ = self.c.req("PUT", base + "/w1", cur3)
        self.assertEqual(code, 422)
        code, o, _ = self.c.req("PATCH", base + "/w1", {"spec": {"size": 1}},
                                "application/strategic-merge-patch+json")
        self.assertEqual(code, 415)
        self.c.ok("PATCH", base + "/w1", {"spec": {"size": 1}}, "application/merge-patch+json")
        # Scale subresource.
        self.c.ok("PATCH", base + "/w1/scale", {"spec": {"replicas": 4}}, "application/merge-patch+json")
        self.assertEqual(self.c.ok("GET", base + "/w1")["spec"]["replicas"], 4)
        # Table with additionalPrinterColumns.
        acc = "application/json;as=Table;v=v1;g=meta.k8s.io"
        code, t, _ = self.c.req("GET", base, accept=acc)
        self.assertEqual([c["name"] for c in t["columnDefinitions"]], ["Name", "Size", "Phase", "Age"])
        self.assertEqual(t["rows"][0]["cells"][:3], ["w1", 1, "Ready"])
        # Other served version: same object, other apiVersion.
        code, o, resp = self.c.req("GET", "/apis/example.com/v1beta1/namespaces/%s/widgets/w1" % ns)
        self.assertEqual(o["apiVersion"], "example.com/v1beta1")
        self.assertEqual(resp.getheader("Warning"), '299 - "example.com/v1beta1 Widget is deprecated"')
        # Deleting the CRD deletes its objects and stops serving it.
        self.c.ok("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
        wait_for(lambda: self.c.req("GET", base)[0] == 404, what="CRD endpoint gone")
        wait_for(lambda: self.c.req("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                    "widgets.example.com")[0] == 404, what="CRD deleted")
        code, _, _ = self.c.req("GET", "/apis/example.com/v1")
        self.assertEqual(code, 404)

    def test_crd_cluster_scope(self):
        crd = json.loads(json.dumps(WIDGET_CRD))
        crd["metadata"]["name"] = "gadgets.example.org"
        crd["spec"]["group"] = "example.org"
        crd["spec"]["scope"] = "Cluster"
        crd["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
        o = self.c.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        self.assertEqual(o["spec"]["names"]["listKind"], "GadgetList")
        g = self.c.ok("POST", "/apis/example.org/v1/gadgets",
                      {"apiVersion": "example.org/v1", "kind": "Gadget", "metadata": {"name": "g"},
                       "spec": {"size": 1}})
        self.assertNotIn("namespace", g["metadata"])
        lst = self.c.ok("GET", "/apis/example.org/v1/gadgets")
        self.assertEqual(lst["kind"], "GadgetList")
        code, _, _ = self.c.req("GET", "/apis/example.org/v1/namespaces/default/gadgets")
        self.assertEqual(code, 404)
        bad = dict(crd, metadata={"name": "wrong.example.org"})
        code, obj, _ = self.c.req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad)
        self.assertEqual(code, 422)

    # ---- watch ---------------------------------------------------------------------------------

    def test_watch_events_in_order_to_all_watchers(self):
        ns = self.ns()
        base = "/api/v1/namespaces/%s/configmaps" % ns
        rv = self.c.ok("GET", base)["metadata"]["resourceVersion"]
        ws = [self.c.watch(base + "?watch=1&resourceVersion=" + rv) for _ in range(3)]
        o = self.c.ok("POST", base, cm("w"))
        o["data"] = {"k": "2"}
        self.c.ok("PUT", base + "/w", o)
        self.c.ok("DELETE", base + "/w")
        for w in ws:
            evs = w.take(3)
            self.assertEqual([e["type"] for e in evs], ["ADDED", "MODIFIED", "DELETED"])
            rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
            self.assertEqual(rvs, sorted(rvs))
            self.assertEqual(evs[1]["object"]["data"], {"k": "2"})
            w.close()
        # resourceVersion "0"/unset: synthetic ADDED for the current state first.
        self.c.ok("POST", base, cm("x"))
        w = self.c.watch(base + "?watch=true&resourceVersion=0")
        self.assertEqual(w.take(1)[0]["type"], "ADDED")
        w.close()
        # Legacy /watch/ path with a single name.
        w = self.c.watch("/api/v1/watch/namespaces/%s/configmaps/x" % ns)
        ev = w.take(1)[0]
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "x"))
        w.close()

    def test_watch_selectors(self):
        ns = self.ns()
        base = "/api/v1/namespaces/%s/configmaps" % ns
        rv = self.c.ok("GET", base)["metadata"]["resourceVersion"]
        wl = self.c.watch(base + "?watch=1&labelSelector=app%3Dx&resourceVersion=" + rv)
        wn = self.c.watch(base + "?watch=1&fieldSelector=metadata.name%3Done&resourceVersion=" + rv)
        self.c.ok("POST", base, cm("one"))
        self.c.ok("POST", base, cm("two", labels={"app": "x"}))
        self.c.ok("PATCH", base + "/one", {"metadata": {"labels": {"app": "x"}}},
                  "application/merge-patch+json")
        self.c.ok("PATCH", base + "/one", {"metadata": {"labels": {"app": "y"}}},
                  "application/merge-patch+json")
        evs = wl.take(3)
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                         [("ADDED", "two"), ("ADDED", "one"), ("DELETED", "one")])
        evs = wn.take(3)
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                         [("ADDED", "one"), ("MODIFIED", "one"), ("MODIFIED", "one")])
        wl.close()
        wn.close()

    def test_watch_expired_and_bookmarks_and_timeout(self):
        ns = self.ns()
        base = "/api/v1/namespaces/%s/configmaps" % ns
        o = self.c.ok("POST", base, cm("a"))
        old_rv = o["metadata"]["resourceVersion"]
        self.c.ok("POST", base, cm("b"))
        self.c.ok("POST", "/_sim/compact", {})
        w = self.c.watch(base + "?watch=1&resourceVersion=" + old_rv)
        self.assertEqual(w.status, 200)
        ev = w.next()
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual(ev["object"]["code"], 410)
        self.assertEqual(ev["object"]["reason"], "Expired")
        self.assertRegex(ev["object"]["message"], r"^too old resource version: \d+ \(\d+\)$")
        self.assertIsNone(w.next())  # stream ends after the error
        w.close()
        # History beyond the window (history_size=200) also expires.
        rv = self.c.ok("GET", base)["metadata"]["resourceVersion"]
        for i in range(450):
            self.c.ok("PATCH", base + "/b", {"data": {"i": str(i)}}, "application/merge-patch+json")
        w = self.c.watch(base + "?watch=1&resourceVersion=" + rv)
        self.assertEqual(w.next()["object"]["code"], 410)
        w.close()
        # Bookmarks (interval 0.3 s here) and timeoutSeconds.
        rv = self.c.ok("GET", base)["metadata"]["resourceVersion"]
        t0 = time.monotonic()
        w = self.c.watch(base + "?watch=1&allowWatchBookmarks=true&timeoutSeconds=2&resourceVersion=" + rv)
        bm = w.next()
        self.assertEqual(bm["type"], "BOOKMARK")
        self.assertEqual(bm["object"]["kind"], "ConfigMap")
        self.assertGreaterEqual(int(bm["object"]["metadata"]["resourceVersion"]), int(rv))
        while w.next() is not None:
            pass
        self.assertLess(time.monotonic() - t0, 6)
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        w.close()
        w = self.c.watch(base + "?watch=1&timeoutSeconds=1&resourceVersion=" + rv)
        self.assertIsNone(w.next())  # no bookmarks unless asked for
        w.close()

    def test_watch_window_per_resource(self):
        # watch_cache.go: each resource has its own window (capacity 100 growing to the upper
        # bound, 200 here, while its events are fresher than 75 s); a watch from before the
        # window's first event gets "too old resource version: RV (first-1)" as an ERROR event
        # in a 200 stream; another resource's window is not affected.
        ns = self.ns()
        base = "/api/v1/namespaces/%s/configmaps" % ns
        self.c.ok("POST", base, cm("w"))
        sec = self.c.ok("POST", "/api/v1/namespaces/%s/secrets" % ns,
                        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
        start = sec["metadata"]["resourceVersion"]
        last = None
        for i in range(250):
            last = self.c.ok("PATCH", base + "/w", {"data": {"i": str(i)}},
                             "application/merge-patch+json")["metadata"]["resourceVersion"]
        last = int(last)
        # The window holds the newest 200 configmap events: last-199 .. last.
        w = self.c.watch(base + "?watch=1&resourceVersion=%d" % (last - 201))
        self.assertEqual(w.status, 200)
        ev = w.next()
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual(ev["object"]["message"],
                         "too old resource version: %d (%d)" % (last - 201, last - 200))
        w.close()
        w = self.c.watch(base + "?watch=1&resourceVersion=%d" % (last - 200))
        ev = w.next()
        self.assertEqual(ev["type"], "MODIFIED")
        self.assertEqual(ev["object"]["metadata"]["resourceVersion"], str(last - 199))
        w.close()
        # Secrets lost nothing from their window: a watch from before the flood is served.
        self.c.ok("PATCH", "/api/v1/namespaces/%s/secrets/s" % ns, {"metadata": {"labels": {"a": "b"}}},
                  "application/merge-patch+json")
        w = self.c.watch("/api/v1/namespaces/%s/secrets?watch=1&resourceVersion=%s" % (ns, start))
        ev = w.next()
        self.assertEqual(ev["type"], "MODIFIED")
        self.assertEqual(ev["object"]["metadata"]["labels"], {"a": "b"})
        w.close()

    # ---- faults --------------------------------------------------------------------------------

    def test_faults(self):
        ns = self.ns()
        base = "/api/v1/namespaces/%s/configmaps" % ns
        self.c.ok("POST", "/_sim/faults", {"verb": "create", "code": 500, "rate": 1.0, "count": 2})
        for _ in range(2):
            code, obj, _ = self.c.req("POST", base, cm("f"))
            self.assertEqual(code, 500)
            self.assertStatus(obj, 500, "InternalError")
        self.c.ok("POST", base, cm("f"))
        self.c.ok("POST", "/_sim/faults", {"verb": "get", "code": 429, "retryAfter": 3, "count": 1})
        code, obj, resp = self.c.req("GET", base + "/f")
        self.assertEqual(code, 429)
        self.assertEqual(resp.getheader("Retry-After"), "3")
        self.assertEqual(obj["details"]["retryAfterSeconds"], 3)
        self.c.ok("POST", "/_sim/faults", {"verb": "update", "code": 409, "count": 1})
        cur = self.c.ok("GET", base + "/f")
        code, obj, _ = self.c.req("PUT", base + "/f", cur)
        self.assertEqual(code, 409)
        self.assertEqual(obj["reason"], "Conflict")
        self.c.ok("DELETE", "/_sim/faults")
        self.c.ok("POST", "/_sim/latency", {"ms": 200})
        t0 = time.monotonic()
        self.c.ok("GET", base + "/f")
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.c.ok("DELETE", "/_sim/faults")
        # Pause: requests hang until resumed.
        self.c.ok("POST", "/_sim/pause", {})
        got = []
        t = threading.Thread(target=lambda: got.append(Client(self.srv).req("GET", base + "/f")[0]))
        t.start()
        time.sleep(0.3)
        self.assertEqual(got, [])
        self.c.ok("POST", "/_sim/resume", {})
        t.join(5)
        self.assertEqual(got, [200])
        # Dropping watches ends open streams.
        w = self.c.watch(base + "?watch=1&resourceVersion=" + self.c.ok("GET", base)["metadata"]["resourceVersion"])
        wait_for(lambda: self.c.ok("GET", "/_sim/stats")["watches"] >= 1, what="watch registered")
        self.c.ok("POST", "/_sim/drop-watches", {})
        self.assertIsNone(w.next())
        w.close()
        st = self.c.ok("GET", "/_sim/stats")
        self.assertGreaterEqual(st["by_verb"]["create"]["500"], 2)
        self.assertGreaterEqual(st["by_verb"]["get"]["429"], 1)

    def test_events_v1_series_patch(self):
        """events.k8s.io/v1 as pkg/apis/core/validation/events.go: a merge patch of
        series (count >= 2, lastObservedTime) is accepted and shows as count in core/v1;
        note, reason and eventTime are immutable; a new Event needs eventTime and the
        reporting fields and may not carry a series of 1."""
        ns = self.ns()
        base = "/apis/events.k8s.io/v1/namespaces/%s/events" % ns
        t = "2026-01-01T00:00:00.000000Z"
        ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "rc.1"},
              "eventTime": t, "reportingController": "raywarden.io/raywarden-controller",
              "reportingInstance": "i", "action": "Reconcile", "reason": "FailedToCreateHeadPod",
              "note": "(combined from similar events): x", "type": "Warning",
              "regarding": {"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": "rc",
                            "namespace": ns}}
        self.c.ok("POST", base, ev)
        mp = "application/merge-patch+json"
        o = self.c.ok("PATCH", base + "/rc.1", {"series": {"count": 3, "lastObservedTime": t}}, mp)
        self.assertEqual(o["series"]["count"], 3)
        core = self.c.ok("GET", "/api/v1/namespaces/%s/events/rc.1" % ns)
        self.assertEqual(core["series"]["count"], 3)
        self.assertEqual(core["message"], "(combined from similar events): x")
        for patch, field in (({"series": {"count": 1, "lastObservedTime": t}}, "series.count"),
                             ({"series": {"count": 4, "lastObservedTime": None}},
                              "series.lastObservedTime"),
                             ({"note": "other"}, "message"), ({"reason": "R"}, "reason"),
                             ({"eventTime": "2026-01-02T00:00:00.000000Z"}, "eventTime")):
            code, err, _ = self.c.req("PATCH", base + "/rc.1", patch, mp)
            self.assertEqual(code, 422, patch)
            self.assertIn(field, [c["field"] for c in err["details"]["causes"]], err)
        bad = dict(ev, metadata={"name": "rc.2"}, series={"count": 1, "lastObservedTime": t})
        code, err, _ = self.c.req("POST", base, bad)
        self.assertEqual(code, 422)
        self.assertIn("series.count", [c["field"] for c in err["details"]["causes"]])
        bad = dict(ev, metadata={"name": "rc.3"})
        del bad["eventTime"]
        del bad["action"]
        code, err, _ = self.c.req("POST", base, bad)
        self.assertEqual(code, 422)
        self.assertEqual({"eventTime", "action"} & {c["field"] for c in err["details"]["causes"]},
                         {"eventTime", "action"})
        bad = dict(ev, metadata={"name": "rc.4"}, note="x" * 1025)
        code, err, _ = self.c.req("POST", base, bad)
        self.assertEqual(code, 422)

    def test_events_both_groups(self):
        ns = self.ns()
        ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
              "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
              "reason": "Started", "message": "hello", "type": "Normal"}
        self.c.ok("POST", "/api/v1/namespaces/%s/events" % ns, ev)
        o = self.c.ok("GET", "/apis/events.k8s.io/v1/namespaces/%s/events/e1" % ns)
        self.assertEqual(o["note"], "hello")
        self.assertEqual(o["regarding"]["name"], "p")
        fs = self.c.ok("GET", "/api/v1/namespaces/%s/events?fieldSelector=involvedObject.name%%3Dp" % ns)
        self.assertEqual(len(fs["items"]), 1)
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
                 "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
        self.c.ok("POST", "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % ns, lease)
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-" + ns}}
        self.c.ok("POST", "/api/v1/nodes", node)
        n = self.c.ok("PATCH", "/api/v1/nodes/n-%s/status" % ns,
                      {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                      "application/strategic-merge-patch+json")
        self.assertEqual(n["status"]["conditions"][0]["type"], "Ready")

    # ---- RBAC (kubesim/apiserver_rbac.py) -----------------------------------------------------------

    def sa_client(self, ns, name):
        """A Client authenticated as ServiceAccount ns/name (created here), via TokenRequest."""
        self.c.ok("POST", "/api/v1/namespaces/%s/serviceaccounts" % ns,
                  {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
        tr = self.c.ok("POST", "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (ns, name),
                       {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                        "spec": {"audiences": ["x"]}})
        self.assertEqual(tr["kind"], "TokenRequest")
        self.assertTrue(tr["status"]["expirationTimestamp"])
        return Client(self.srv, token=tr["status"]["token"])

    def rbac(self, kind, ns, name, body):
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        plural = {"Role": "roles", "RoleBinding": "rolebindings", "ClusterRole": "clusterroles",
                  "ClusterRoleBinding": "clusterrolebindings"}[kind]
        path = "%s/namespaces/%s/%s" % (rbac, ns, plural) if ns else "%s/%s" % (rbac, plural)
        obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
               "metadata": {"name": name}}
        obj.update(body)
        self.c.ok("POST", path, obj)

    def test_rbac_service_account_identity_and_denial(self):
        ns = self.ns()
        sa = self.sa_client(ns, "ctl")
        user = "system:serviceaccount:%s:ctl" % ns
        code, obj, _ = sa.req("GET", "/api/v1/namespaces/%s/pods" % ns)
        self.assertEqual(code, 403)
        self.assertStatus(obj, 403, "Forbidden")
        self.assertEqual(obj["message"], 'pods is forbidden: User "%s" cannot list resource "pods" '
                         'in API group "" in the namespace "%s"' % (user, ns))
        self.assertEqual(obj["details"], {"kind": "pods"})
        code, obj, _ = sa.req("GET", "/apis/coordination.k8s.io/v1/leases?watch=1")
        self.assertEqual(code, 403)
        self.assertEqual(obj["message"], 'leases.coordination.k8s.io is forbidden: User "%s" '
                         'cannot watch resource "leases" in API group "coordination.k8s.io" at '
                         'the cluster scope' % user)
        # Who am I: the ServiceAccount's user and groups.
        r = sa.ok("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                  {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        self.assertEqual(r["status"]["userInfo"]["username"], user)
        self.assertEqual(r["status"]["userInfo"]["groups"],
                         ["system:serviceaccounts", "system:serviceaccounts:" + ns,
                          "system:authenticated"])
        # Discovery and health stay open to every authenticated user; /_sim is the admin's.
        self.assertEqual(sa.req("GET", "/api/v1")[0], 200)
        self.assertEqual(sa.req("GET", "/apis")[0], 200)
        code, obj, _ = sa.req("GET", "/_sim/stats")
        self.assertEqual(code, 403)
        # A Role and RoleBinding grant exactly their verbs, in their namespace only.
        self.rbac("Role", ns, "pod-reader", {"rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})
        self.rbac("RoleBinding", ns, "ctl-reads", {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "ctl"}]})  # namespace: the binding's
        self.assertEqual(sa.req("GET", "/api/v1/namespaces/%s/pods" % ns)[0], 200)
        self.assertEqual(sa.req("GET", "/api/v1/namespaces/%s/pods/nope" % ns)[0], 404)
        code, obj, _ = sa.req("POST", "/api/v1/namespaces/%s/pods" % ns,
                              {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                               "spec": {"containers": [{"name": "c", "image": "i"}]}})
        self.assertEqual(code, 403)
        self.assertIn('cannot create resource "pods"', obj["message"])
        other = self.ns()
        code, obj, _ = sa.req("GET", "/api/v1/namespaces/%s/pods" % other)
        self.assertEqual(code, 403)
        self.assertIn('in the namespace "%s"' % other, obj["message"])
        code, obj, _ = sa.req("GET", "/api/v1/pods")  # all namespaces: needs a cluster binding
        self.assertEqual(code, 403)
        self.assertIn("at the cluster scope", obj["message"])
        # Removing the binding takes the grant away at the next request.
        self.c.ok("DELETE", "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings/"
                  "ctl-reads" % ns)
        self.assertEqual(sa.req("GET", "/api/v1/namespaces/%s/pods" % ns)[0], 403)
        # A token of a deleted ServiceAccount is no longer valid; a forged one never is.
        self.c.ok("DELETE", "/api/v1/namespaces/%s/serviceaccounts/ctl" % ns)
        self.assertEqual(sa.req("GET", "/api/v1/namespaces/%s/pods" % ns)[0], 401)
        forged = Client(self.srv, token=sa.token[:-2] + ("AA" if sa.token[-2:] != "AA" else "BB"))
        self.assertEqual(forged.req("GET", "/api/v1")[0], 401)
        # The admin token stays all-powerful.
        self.assertEqual(self.c.req("GET", "/api/v1/pods")[0], 200)

    def test_rbac_wildcards_subresources_names_and_urls(self):
        ns = self.ns()
        sa = self.sa_client(ns, "w")
        self.rbac("ClusterRole", "", "w-" + ns, {"rules": [
            {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]},
            {"apiGroups": ["*"], "resources": ["configmaps"], "verbs": ["*"]},
            {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"],
             "resourceNames": ["allowed"]},
            {"nonResourceURLs": ["/logs/*", "/metrics"], "verbs": ["get"]}]})
        # Bound through the ServiceAccounts group of the namespace, cluster-wide.
        self.rbac("ClusterRoleBinding", "", "w-" + ns, {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "w-" + ns},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:" + ns}]})
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}
        self.c.ok("POST", "/api/v1/namespaces/%s/pods" % ns, pod)
        mp = "application/merge-patch+json"
        code, _, _ = sa.req("PATCH", "/api/v1/namespaces/%s/pods/p/status" % ns,
                            {"status": {"message": "x"}}, mp)
        self.assertEqual(code, 200)
        code, obj, _ = sa.req("PATCH", "/api/v1/namespaces/%s/pods/p" % ns,
                              {"metadata": {"labels": {"a": "b"}}}, mp)
        self.assertEqual(code, 403)
        self.assertEqual(obj["message"], 'pods "p" is forbidden: User "system:serviceaccount:%s:w" '
                         'cannot patch resource "pods" in API group "" in the namespace "%s"'
                         % (ns, ns))
        self.assertEqual(obj["details"], {"name": "p", "kind": "pods"})
        # '*' verbs and groups.
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
        self.assertEqual(sa.req("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm)[0], 201)
        self.assertEqual(sa.req("DELETE", "/api/v1/namespaces/%s/configmaps" % ns)[0], 200)
        # '*/scale' is any resource's scale subresource, not the resource itself.
        self.assertEqual(sa.req("GET", "/apis/apps/v1/namespaces/%s/deployments/d/scale" % ns)[0],
                         404)
        code, obj, _ = sa.req("GET", "/apis/apps/v1/namespaces/%s/deployments/d" % ns)
        self.assertEqual(code, 403)
        self.assertEqual(obj["details"], {"name": "d", "group": "apps", "kind": "deployments"})
        self.assertTrue(obj["message"].startswith('deployments.apps "d" is forbidden'))
        # resourceNames: that name only; a list has no name and is refused.
        self.assertEqual(sa.req("GET", "/api/v1/namespaces/%s/secrets/allowed" % ns)[0], 404)
        self.assertEqual(sa.req("GET", "/api/v1/namespaces/%s/secrets/other" % ns)[0], 403)
        self.assertEqual(sa.req("GET", "/api/v1/namespaces/%s/secrets" % ns)[0], 403)
        self.assertEqual(sa.req("GET", "/api/v1/namespaces/%s/secrets?fieldSelector="
                                "metadata.name%%3Dallowed" % ns)[0], 200)
        # nonResourceURLs: exact and prefix; refused paths name the path.
        self.assertEqual(sa.req("GET", "/logs/x")[0], 404)
        code, obj, _ = sa.req("GET", "/other")
        self.assertEqual(code, 403)
        self.assertEqual(obj["message"], 'forbidden: User "system:serviceaccount:%s:w" cannot get '
                         'path "/other"' % ns)
        # SelfSubjectAccessReview answers from the same rules.
        def can(**ra):
            r = sa.ok("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                      {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                       "spec": {"resourceAttributes": ra}})
            return r["status"]["allowed"]
        self.assertTrue(can(verb="patch", resource="pods", subresource="status", namespace=ns))
        self.assertFalse(can(verb="patch", resource="pods", namespace=ns))

    def test_rbac_role_escalation(self):
        ns = self.ns()
        sa = self.sa_client(ns, "creator")
        self.rbac("Role", ns, "creator", {"rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/resize"], "verbs": ["patch"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["create"]}]})
        self.rbac("RoleBinding", ns, "creator", {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "creator"},
            "subjects": [{"kind": "ServiceAccount", "name": "creator", "namespace": ns}]})
        path = "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles" % ns

        def role(name, rules):
            return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": name}, "rules": rules}
        # What it holds it may grant (a subset, a subresource).
        held = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods/resize"], "verbs": ["patch"]}]
        self.assertEqual(sa.req("POST", path, role("ok", held))[0], 201)
        # More than it holds: refused, naming each missing piece.
        code, obj, _ = sa.req("POST", path, role("more", held + [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]))
        self.assertEqual(code, 403)
        self.assertStatus(obj, 403, "Forbidden")
        self.assertTrue(obj["message"].startswith(
            'roles.rbac.authorization.k8s.io "more" is forbidden: user "system:serviceaccount:%s:'
            'creator" (groups=["system:serviceaccounts" "system:serviceaccounts:%s" '
            '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:'
            % (ns, ns)), obj["message"])
        self.assertTrue(obj["message"].endswith(
            '\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}'), obj["message"])
        # The admin is not checked.
        self.c.ok("POST", path, role("admin-made", [{"apiGroups": ["*"], "resources": ["*"],
                                                      "verbs": ["*"]}]))


class RbacAttrsTest(unittest.TestCase):
    """kubesim.apiserver_rbac.request_attrs against RequestInfoFactory's mapping."""

    def test_table(self):
        from kubesim import apiserver_rbac as rbac
        cases = [
            ("GET", "/api/v1/namespaces/d/pods", {}, (True, "list", "", "pods", "", "d", "")),
            ("GET", "/api/v1/namespaces/d/pods", {"watch": "true"},
             (True, "watch", "", "pods", "", "d", "")),
            ("GET", "/api/v1/namespaces/d/pods", {"watch": "false"},
             (True, "list", "", "pods", "", "d", "")),
            ("GET", "/api/v1/watch/pods", {}, (True, "watch", "", "pods", "", "", "")),
            ("GET", "/apis/ray.io/v1/rayclusters", {"fieldSelector": "metadata.name=c"},
             (True, "list", "ray.io", "rayclusters", "", "", "c")),
            ("GET", "/api/v1/namespaces/d/secrets", {"fieldSelector": "metadata.name=c,type=x"},
             (True, "list", "", "secrets", "", "d", "")),
            ("PATCH", "/api/v1/namespaces/d/pods/p/status", {},
             (True, "patch", "", "pods", "status", "d", "p")),
            ("PUT", "/apis/ray.io/v1/namespaces/d/rayclusters/c/status", {},
             (True, "update", "ray.io", "rayclusters", "status", "d", "c")),
            ("DELETE", "/api/v1/namespaces/d/pods", {},
             (True, "deletecollection", "", "pods", "", "d", "")),
            ("POST", "/api/v1/namespaces/d/serviceaccounts/s/token", {},
             (True, "create", "", "serviceaccounts", "token", "d", "s")),
            ("GET", "/api/v1/namespaces/d", {}, (True, "get", "", "namespaces", "", "d", "d")),
            ("PUT", "/api/v1/namespaces/d/finalize", {},
             (True, "update", "", "namespaces", "finalize", "d", "d")),
            ("GET", "/version", {}, (False, "get", "", "", "", "", "")),
            ("GET", "/apis/apps/v1", {}, (False, "get", "", "", "", "", "")),
        ]
        for method, path, q, want in cases:
            a = rbac.request_attrs(method, path, q)
            got = (a.resource_request, a.verb, a.group, a.resource, a.subresource, a.namespace,
                   a.name)
            self.assertEqual(got, want, "%s %s %s" % (method, path, q))


class TlsTest(unittest.TestCase):
    def test_tls_and_state_files(self):
        d = tempfile.mkdtemp(prefix="kubesim-tls-")
        s = APIServer(state_dir=d, tls=True, token=TOKEN).start()
        try:
            for f in ("ca.crt", "apiserver.crt", "apiserver.key", "token", "kubeconfig",
                      "apiserver.json"):
                self.assertTrue(os.path.exists(os.path.join(d, f)), f)
            info = json.load(open(os.path.join(d, "apiserver.json")))
            self.assertEqual(info["url"], s.url)
            self.assertTrue(info["url"].startswith("https://127.0.0.1:"))
            ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
            c = Client(s, ctx=ctx)
            code, body, _ = c.req("GET", "/readyz", token=False)
            self.assertEqual((code, body), (200, "ok"))
            self.assertEqual(c.ok("GET", "/api/v1/namespaces/default")["metadata"]["name"], "default")
            kc = open(os.path.join(d, "kubeconfig")).read()
            self.assertIn("current-context: kubesim", kc)
            self.assertIn("certificate-authority: " + os.path.join(d, "ca.crt"), kc)
            # localhost is in the certificate's SANs too.
            conn = http.client.HTTPSConnection("localhost", s.port, context=ctx, timeout=10)
            conn.request("GET", "/livez")
            self.assertEqual(conn.getresponse().status, 200)
        finally:
            s.stop()


if __name__ == "__main__":
    unittest.main()

_ = re

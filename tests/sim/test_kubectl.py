"""Real kubectl (/usr/bin/kubectl, v1.32) against the kube-apiserver simulator, default flags.

kubectl only sends bearer tokens over TLS, so the simulator runs with its generated CA here.
Run: cd tests/sim && python3 -m unittest -v test_kubectl
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubesim.apiserver import APIServer  # noqa: E402
from kubesim.controllers import ControllerManager  # noqa: E402
from kubesim.testutil import wait_for  # noqa: E402

KUBECTL = shutil.which("kubectl")
CORPUS = os.environ.get("RW_SHARED_DIR", "/work/shared") + "/corpus"
CRDS = os.path.join(CORPUS, "kuberay-crds")
SAMPLE = os.path.join(CORPUS, "kuberay-samples", "ray-cluster.sample.yaml")
# KubeRay's own sample with a Secret whose data is line-wrapped base64 (`cat ca.crt | base64`).
TLS_SAMPLE = os.path.join(os.environ.get("GOMODCACHE", "/root/go/pkg/mod"), "github.com", "ray-project",
                          "kuberay", "ray-operator@v1.5.0", "config", "samples", "ray-cluster.tls.yaml")

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  labels: {app: web}
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx:1.25
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: p1
  labels: {app: web}
spec:
  containers:
  - name: c
    image: busybox:1.36
"""


@unittest.skipIf(KUBECTL is None, "kubectl not installed")
class KubectlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kubesim-kubectl-")
        cls.srv = APIServer(state_dir=os.path.join(cls.dir, "state"), tls=True,
                            bookmark_interval=1.0).start()
        cls.kubeconfig = os.path.join(cls.dir, "state", "kubeconfig")
        cls.env = dict(os.environ, HOME=cls.dir, KUBECONFIG=cls.kubeconfig)
        # Namespaces get their `default` ServiceAccount (needed by the ServiceAccount admission
        # plugin for pods), kube-root-ca.crt, and are emptied when deleted, as on a real cluster.
        cls.cm = ControllerManager(state_dir=os.path.join(cls.dir, "state"), controllers=(
            "serviceaccount-controller", "root-ca-certificate-publisher-controller", "namespace-controller"),
            namespace_delay_scale=0.05)
        cls.cm.start()

    @classmethod
    def tearDownClass(cls):
        cls.cm.stop()
        cls.srv.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def kubectl(self, *args, stdin=None, check=True, timeout=60):
        cmd = [KUBECTL, "--kubeconfig", self.kubeconfig, "--cache-dir",
               os.path.join(self.dir, "cache")] + list(args)
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=self.env,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("kubectl %s failed (%d):\n%s%s" % (" ".join(args), p.returncode,
                                                                    p.stdout, p.stderr))
        return p

    def namespace(self, name):
        # A typed client: the body is protobuf (decoded by the simulator for a few kinds).
        p = self.kubectl("create", "namespace", name)
        self.assertIn("namespace/%s created" % name, p.stdout)

    def getj(self, *args):
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def wait_gone(self, *args, timeout=15):
        def gone():
            p = self.kubectl("get", *args, check=False)
            return p.returncode != 0 and "NotFound" in p.stderr
        wait_for(gone, timeout, 0.1, what="%s gone (kubectl get says NotFound)" % (args,))

    def test_1_apply_get_label_patch_scale_delete(self):
        ns = "kc1"
        self.namespace(ns)
        p = self.kubectl("apply", "-n", ns, "-f", "-", stdin=MANIFEST)
        self.assertIn("configmap/cfg created", p.stdout)
        self.assertIn("deployment.apps/web created", p.stdout)
        self.assertIn("service/web created", p.stdout)
        self.assertIn("pod/p1 created", p.stdout)
        p = self.kubectl("apply", "-n", ns, "-f", "-", stdin=MANIFEST)
        self.assertIn("deployment.apps/web unchanged", p.stdout)
        p = self.kubectl("apply", "-n", ns, "-f", "-", stdin=MANIFEST.replace("nginx:1.25", "nginx:1.26"))
        self.assertIn("deployment.apps/web configured", p.stdout)
        d = self.getj("-n", ns, "deployment", "web")
        self.assertEqual(d["metadata"]["generation"], 2)
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.26")
        self.assertIn("kubectl.kubernetes.io/last-applied-configuration", d["metadata"]["annotations"])
        lst = self.getj("-n", ns, "all")
        kinds = sorted(i["kind"] for i in lst["items"])
        self.assertEqual(kinds, ["Deployment", "Pod", "Service"])
        # Default table output.
        out = self.kubectl("get", "-n", ns, "pods").stdout.splitlines()
        self.assertEqual(out[0].split(), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"])
        self.assertEqual(out[1].split()[:4], ["p1", "0/1", "Pending", "0"])
        out = self.kubectl("get", "-n", ns, "svc", "-o", "wide").stdout.splitlines()
        self.assertEqual(out[0].split()[:5], ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"])
        self.assertIn("80/TCP", out[1])
        out = self.kubectl("get", "-n", ns, "deploy").stdout.splitlines()
        self.assertEqual(out[0].split(), ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"])
        self.assertEqual(out[1].split()[:2], ["web", "0/2"])
        # label, patch (three types), scale.
        self.kubectl("label", "-n", ns, "pod", "p1", "tier=fe")
        self.assertIn("p1", self.kubectl("get", "-n", ns, "pods", "-l", "tier=fe", "-o", "name").stdout)
        self.kubectl("patch", "-n", ns, "configmap", "cfg", "--type=merge", "-p", '{"data":{"b":"2"}}')
        self.kubectl("patch", "-n", ns, "configmap", "cfg", "--type=json",
                     "-p", '[{"op":"test","path":"/data/a","value":"1"},'
                           '{"op":"replace","path":"/data/a","value":"9"}]')
        p = self.kubectl("patch", "-n", ns, "configmap", "cfg", "--type=json",
                         "-p", '[{"op":"test","path":"/data/a","value":"1"}]', check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(self.getj("-n", ns, "configmap", "cfg")["data"], {"a": "9", "b": "2"})
        self.kubectl("patch", "-n", ns, "deployment", "web", "-p",
                     '{"spec":{"template":{"spec":{"containers":[{"name":"c","env":[{"name":"B","value":"2"}]}]}}}}')
        env = self.getj("-n", ns, "deployment", "web")["spec"]["template"]["spec"]["containers"][0]["env"]
        self.assertEqual([e["name"] for e in env], ["A", "B"])
        self.kubectl("scale", "-n", ns, "deployment", "web", "--replicas=5")
        self.assertEqual(self.getj("-n", ns, "deployment", "web")["spec"]["replicas"], 5)
        # describe (with an event about the pod).
        ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "p1.1", "namespace": ns},
              "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "p1", "namespace": ns,
                                 "uid": self.getj("-n", ns, "pod", "p1")["metadata"]["uid"]},
              "reason": "Scheduled", "message": "Successfully assigned to node-1", "type": "Normal",
              "source": {"component": "default-scheduler"}, "count": 1,
              "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z"}
        self.kubectl("create", "-f", "-", stdin=json.dumps(ev))
        out = self.kubectl("describe", "-n", ns, "pod", "p1").stdout
        self.assertIn("Name:", out)
        self.assertIn("busybox:1.36", out)
        self.assertIn("Successfully assigned to node-1", out)
        out = self.kubectl("describe", "-n", ns, "deployment", "web").stdout
        self.assertIn("5 desired", out)
        # delete --cascade=foreground waits for a blocking dependent.
        d = self.getj("-n", ns, "deployment", "web")
        dep = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "owned", "namespace": ns, "ownerReferences": [
                   {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                    "uid": d["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]}}
        self.kubectl("create", "-f", "-", stdin=json.dumps(dep))
        p = self.kubectl("delete", "-n", ns, "deployment", "web", "--cascade=foreground")
        self.assertIn('deployment.apps "web" deleted', p.stdout)
        self.wait_gone("-n", ns, "configmap", "owned")
        self.wait_gone("-n", ns, "deployment", "web")
        p = self.kubectl("delete", "-n", ns, "pod", "p1")
        self.assertIn('pod "p1" deleted', p.stdout)
        p = self.kubectl("get", "-n", ns, "pod", "p1", check=False)
        self.assertIn('pods "p1" not found', p.stderr)

    def test_2_get_watch(self):
        ns = "kc2"
        self.namespace(ns)
        self.kubectl("create", "-n", ns, "configmap", "first", "--from-literal=a=1")
        self.assertEqual(self.getj("-n", ns, "configmap", "first")["data"], {"a": "1"})
        self.assertEqual(self.kubectl("auth", "can-i", "create", "pods").stdout.strip(), "yes")
        # Protobuf bodies of kinds the simulator does not decode are refused (documented).
        p = self.kubectl("create", "-n", ns, "deployment", "d", "--image=nginx", check=False)
        self.assertIn("the body of the request was in an unknown format", p.stderr)
        cmd = [KUBECTL, "--kubeconfig", self.kubeconfig, "--cache-dir", os.path.join(self.dir, "cache"),
               "get", "-n", ns, "configmaps", "-w"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env)
        lines = []
        got_second = threading.Event()

        def reader():
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("second"):
                    got_second.set()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            wait_for(lambda: any(x.startswith("first") for x in lines), 20,
                     what="kubectl get -w listing the first object")
            self.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second"},
                 "data": {"b": "2"}}))
            self.assertTrue(got_second.wait(20), "kubectl get -w did not show the new object: %s"
                            % lines)
        finally:
            proc.kill()
            proc.wait(10)
            t.join(5)
        self.assertEqual(lines[0].split(), ["NAME", "DATA", "AGE"])
        self.assertEqual(lines[1].split()[:2], ["first", "1"])
        self.assertEqual(sum(1 for x in lines if x.startswith("NAME")), 1)
        # -o json watch prints whole objects.
        p = subprocess.run(cmd + ["-o", "json", "--request-timeout=2s"], capture_output=True,
                           text=True, env=self.env, timeout=30)
        self.assertIn('"name": "second"', p.stdout)

    @unittest.skipUnless(os.path.isdir(CRDS), "KubeRay corpus (shared/corpus) not present")
    def test_3_kuberay_crds_and_sample(self):
        ns = "kc3"
        self.namespace(ns)
        crd = os.path.join(CRDS, "ray.io_rayclusters.yaml")
        # Client-side apply stores the whole CRD in the last-applied annotation: a real server
        # refuses it (annotations over 262144 bytes), and so does the simulator.
        p = self.kubectl("apply", "-f", crd, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("metadata.annotations: Too long: must have at most 262144 bytes", p.stderr)
        p = self.kubectl("apply", "--server-side", "-f", crd)
        self.assertIn("rayclusters.ray.io serverside-applied", p.stdout)
        p = self.kubectl("apply", "--server-side", "-f", crd)
        self.assertIn("serverside-applied", p.stdout)
        for f in ("ray.io_rayjobs.yaml", "ray.io_rayservices.yaml"):
            p = self.kubectl("create", "-f", os.path.join(CRDS, f))
            self.assertIn("created", p.stdout)
        c = self.getj("crd", "rayclusters.ray.io")
        conds = {x["type"]: x["status"] for x in c["status"]["conditions"]}
        self.assertEqual(conds["Established"], "True")
        p = self.kubectl("apply", "-n", ns, "-f", SAMPLE)
        self.assertIn("raycluster.ray.io/raycluster-kuberay created", p.stdout)
        out = self.kubectl("get", "-n", ns, "rayclusters").stdout.splitlines()
        self.assertEqual(out[0].split()[:3], ["NAME", "DESIRED", "WORKERS"])
        self.assertIn("STATUS", out[0])
        self.assertTrue(out[1].startswith("raycluster-kuberay"))
        rc = self.getj("-n", ns, "raycluster", "raycluster-kuberay")
        self.assertEqual(rc["spec"]["workerGroupSpecs"][0]["groupName"], "workergroup")
        # Re-applying sends a JSON merge patch that replaces lists whose items got schema defaults
        # (ports[].protocol): kubectl says "configured" as on a real cluster, but nothing changes.
        p = self.kubectl("apply", "-n", ns, "-f", SAMPLE)
        self.assertIn("raycluster.ray.io/raycluster-kuberay", p.stdout)
        rc2 = self.getj("-n", ns, "raycluster", "raycluster-kuberay")
        self.assertEqual(rc2["metadata"]["resourceVersion"], rc["metadata"]["resourceVersion"])
        self.kubectl("delete", "-n", ns, "raycluster", "raycluster-kuberay")
        self.wait_gone("-n", ns, "raycluster", "raycluster-kuberay")

    @unittest.skipUnless(os.path.isdir(CRDS) and os.path.exists(TLS_SAMPLE),
                         "KubeRay corpus or the kuberay v1.5.0 module (ray-cluster.tls.yaml) not present")
    def test_4_kuberay_tls_sample_applies_unchanged(self):
        ns = "kc4"
        self.namespace(ns)
        self.kubectl("apply", "--server-side", "-f", os.path.join(CRDS, "ray.io_rayclusters.yaml"))
        p = self.kubectl("apply", "-n", ns, "-f", TLS_SAMPLE)
        for line in ("raycluster.ray.io/raycluster-tls created", "secret/ca-tls created",
                     "configmap/tls created"):
            self.assertIn(line, p.stdout)
        # Stored as Go re-encodes the decoded bytes: one line, the same bytes.
        import base64
        import re
        with open(TLS_SAMPLE) as f:
            text = f.read()
        wrapped = re.search(r"ca\.crt: \|\n((?:    [A-Za-z0-9+/=]+\n)+)", text).group(1)
        sec = self.getj("-n", ns, "secret", "ca-tls")
        self.assertEqual(base64.b64decode(sec["data"]["ca.crt"]),
                         base64.b64decode("".join(wrapped.split())))
        self.assertNotIn("\n", sec["data"]["ca.crt"])
        # Go's decoder errors come back as the serializer's 400.
        bad = "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\ndata: {k: aGVsbG8}\n"
        p = self.kubectl("apply", "-n", ns, "-f", "-", stdin=bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('Secret in version "v1" cannot be handled as a Secret: illegal base64 data at '
                      'input byte 4', p.stderr)


if __name__ == "__main__":
    unittest.main()

"""`tests/sim/local-cluster up|status|down`: fast start, idempotent up, and nothing
left behind.  Run from tests/sim:  python3 -m unittest -v test_localcluster"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubesim.kubeclient import KubeClient  # noqa: E402
from kubesim.kubelet_volumes import pending_mount_targets  # noqa: E402
from kubesim.kubelet_testutil import is_ready, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CMD = os.path.join(HERE, "local-cluster")


def marked(state):
    want = ("KUBESIM_CLUSTER=%s" % state).encode() + b"\0"
    out = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/environ", "rb") as f:
                env = b"\0" + f.read()
            with open(d + "/stat") as f:
                zombie = f.read().split(") ", 1)[1][:1] == "Z"
        except OSError:
            continue
        if b"\0" + want in env and not zombie and int(d[6:]) != os.getpid():
            out.append(int(d[6:]))
    return out


class TestLocalCluster(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="kubesim-lc-")

    def tearDown(self):
        subprocess.run([CMD, "down", "--state", self.state], capture_output=True, timeout=60)
        shutil.rmtree(self.state, ignore_errors=True)

    def load(self, rel):
        with open(os.path.join(self.state, rel)) as f:
            return json.load(f)

    @staticmethod
    def hosts():
        with open("/etc/hosts") as f:
            return f.read()

    def run_cmd(self, *args, timeout=60):
        return subprocess.run([CMD] + list(args) + ["--state", self.state], capture_output=True, timeout=timeout)

    def test_up_status_down(self):
        t0 = time.monotonic()
        r = self.run_cmd("up", "--backoff-base", "1")
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr.decode() + r.stdout.decode())
        out = r.stdout.decode()
        self.assertIn("export KUBECONFIG=%s" % os.path.join(self.state, "kubeconfig"), out)
        self.assertLess(took, 5.0, "startup took %.2fs" % took)
        info = self.load("cluster.json")
        want = {"apiserver", "kubelet", "controllers", "proxy"}
        if os.path.exists(os.path.join(os.environ.get("RW_BUILD_DIR") or os.path.join(HERE, "..", "..", "build"),
                                       "bin", "raywarden-controller")):
            want.add("raywarden-controller")  # started unless --no-controller
        self.assertEqual(set(info["pids"]), want)
        self.assertLess(info["startup_seconds"], 5.0)
        # A line of progress per component started, on stderr.
        progress = r.stderr.decode()
        for name in want:
            self.assertIn("local-cluster: starting %s\n" % name, progress)
        r = self.run_cmd("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        st = json.loads(r.stdout)
        self.assertEqual(set(st), {"apiserver", "metrics", "ui", "prometheus"})
        self.assertIsNone(st["prometheus"])  # not started without --prometheus
        self.assertEqual(st["apiserver"], self.load("apiserver.json")["url"])
        if "raywarden-controller" in want:
            self.assertEqual(st["metrics"], self.load("raywarden-controller.json")["metrics_url"])

        # A second up is a no-op.
        r = self.run_cmd("up")
        self.assertEqual(r.returncode, 0)
        self.assertIn("already up", r.stdout.decode())
        self.assertEqual(self.load("cluster.json")["pids"], info["pids"])
        r = self.run_cmd("status")
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        self.assertRegex(r.stdout.decode(), r"(?m)^kubelet +running")

        # Give it something to clean up: pods with processes, a mount point on the
        # host (redis /data), a service name in /etc/hosts.
        c = KubeClient.from_state_dir(self.state)
        c.create("configmaps", "default", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rc"},
                                           "data": {"redis.conf": "port 6379\nprotected-mode no\n"}})
        c.create("pods", "default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "redis", "labels": {"app": "redis"}},
            "spec": {"containers": [{"name": "redis", "image": "redis:7.4.0",
                                     "command": ["sh", "-c", "redis-server /usr/local/etc/redis/redis.conf"],
                                     "volumeMounts": [{"name": "c", "mountPath": "/usr/local/etc/redis/redis.conf",
                                                       "subPath": "redis.conf"}],
                                     "readinessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 1}}],
                     "volumes": [{"name": "c", "configMap": {"name": "rc"}}]}})
        c.create("pods", "default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
            "spec": {"terminationGracePeriodSeconds": 30,
                     "containers": [{"name": "c", "image": "busybox",
                                     "command": ["bash", "-c", "trap '' TERM; while true; do sleep 1; done"]}]}})
        c.create("services", "default", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lc-redis"},
                                         "spec": {"selector": {"app": "redis"}, "ports": [{"port": 6379}]}})
        for name in ("redis", "sleeper"):
            wait_for(lambda n=name: is_ready(c.get("pods", "default", n)), 15, what=name)
        wait_for(lambda: "lc-redis.default.svc.cluster.local" in self.hosts(), 5, what="hosts entry")
        self.assertGreaterEqual(len(marked(self.state)), 6)
        kubelet = self.load("kubelet.json")
        created = self.load("kubelet/mountpoints.json")
        if kubelet.get("mountNamespaces"):
            self.assertTrue(any(p.startswith("/usr/local/etc/redis") or p == "/data" for p in created) or
                            os.path.exists("/usr/local/etc/redis/redis.conf"))

        t0 = time.monotonic()
        r = self.run_cmd("down")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertLess(time.monotonic() - t0, 15)
        self.assertEqual(marked(self.state), [], "stray processes")
        with open("/etc/hosts") as f:
            hosts = f.read()
        self.assertNotIn("kubesim %s" % self.state, hosts)
        self.assertNotIn("lc-redis", hosts)
        pending = pending_mount_targets()  # kept while another local cluster's kubelet lives
        for p in created:
            self.assertFalse(os.path.exists(p) and p not in pending, "mount point %s left behind" % p)
        self.assertFalse(os.path.exists(os.path.join(self.state, "cluster.json")))
        r = self.run_cmd("status")
        self.assertEqual(r.returncode, 3)
        self.assertIn("down", r.stdout.decode())


class TestCRDInstall(unittest.TestCase):
    CRDS = "/work/shared/corpus/kuberay-crds"

    def test_crds_installed_on_up(self):
        if not os.path.isdir(self.CRDS) or not shutil.which("kubectl"):
            self.skipTest("KubeRay CRDs or kubectl missing")
        state = tempfile.mkdtemp(prefix="kubesim-crd-")
        try:
            r = subprocess.run([CMD, "up", "--state", state], capture_output=True, timeout=120,
                               env=dict(os.environ, RW_SIM_CRD_DIR=self.CRDS))
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertIn("installed 3 CRD file(s)", r.stdout.decode())
            c = KubeClient.from_state_dir(state)
            names = {i["metadata"]["name"] for i in c.list("customresourcedefinitions")["items"]}
            self.assertTrue({"rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io"} <= names)
        finally:
            subprocess.run([CMD, "down", "--state", state], capture_output=True, timeout=60)
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()

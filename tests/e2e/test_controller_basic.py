"""End-to-end tests of the real raywarden-controller binary against the API server
simulator (tests/sim/kubesim/apiserver.py over TLS): it starts, becomes the leader,
answers /healthz /readyz /metrics, exits 0 on SIGTERM and releases the Lease, and a
second instance takes over (at once after a release, after expiry after a kill)."""

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("RW_SOURCE_DIR") or os.path.join(HERE, "..", "..")
BUILD = os.environ.get("RW_BUILD_DIR") or os.path.join(SRC, "build")
CTL = os.path.join(BUILD, "bin", "raywarden-controller")
APISERVER = os.path.join(SRC, "tests", "sim", "kubesim", "apiserver.py")
# The controller runs as its ServiceAccount, whose namespace holds the Lease (manifests/rbac).
LEASE = "/apis/coordination.k8s.io/v1/namespaces/raywarden-system/leases/raywarden-controller-leader"
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))

from kubesim import controller_identity  # noqa: E402
from kubesim.testutil import http_get, pick_ip, wait_for  # noqa: E402


class Sim:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "apiserver")
        os.makedirs(self.dir)
        self.log = open(os.path.join(tmp, "apiserver.log"), "w")
        self.proc = subprocess.Popen([sys.executable, APISERVER, "--state-dir", self.dir, "--tls",
                                      "--port", "0"], stdout=self.log, stderr=subprocess.STDOUT)
        info = os.path.join(self.dir, "apiserver.json")
        wait_for(lambda: os.path.exists(info) and os.path.getsize(info) > 0, 20,
                 what="apiserver.json")
        with open(info) as f:
            self.info = json.load(f)
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.crt"))
        # The RayCluster reconciler's informer needs the CRDs; /readyz waits for it.
        crds = os.path.join(SRC, "manifests", "crds")
        if os.path.isdir(crds) and shutil.which("kubectl"):
            subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, "apply", "--server-side", "-f", crds],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
                           env=dict(os.environ, KUBECACHEDIR=os.path.join(tmp, "kubecache")))
        # As installed: manifests/rbac applied, the controller on its ServiceAccount's token
        # (RBAC enforced by the simulator).
        self.ctl_kubeconfig = controller_identity.controller_kubeconfig(self.dir)

    def get(self, path):
        req = urllib.request.Request(self.info["url"] + path,
                                     headers={"Authorization": "Bearer " + self.info["token"]})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, None

    def holder(self):
        code, obj = self.get(LEASE)
        if code != 200:
            return None
        return obj["spec"].get("holderIdentity") or ""

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


class Controller:
    def __init__(self, tmp, sim, ident, *extra):
        self.ip = pick_ip()
        self.ident = ident
        self.logpath = os.path.join(tmp, ident + ".log")
        self.log = open(self.logpath, "w")
        args = [CTL, "--kubeconfig", sim.ctl_kubeconfig, "--leader-election-identity", ident,
                "--metrics-addr", self.ip + ":8080",
                "--health-probe-bind-address", self.ip + ":8082"] + list(extra)
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def health(self, path):
        return http_get("http://%s:8082%s" % (self.ip, path), 2, soft=True)

    def metrics(self):
        return http_get("http://%s:8080/metrics" % self.ip, 2, soft=True)

    def leader_metric(self):
        code, text = self.metrics()
        if code != 200:
            return None
        for line in text.splitlines():
            if line.startswith('leader_election_master_status{name="raywarden-controller-leader"}'):
                return float(line.split()[-1])
        return None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def output(self):
        with open(self.logpath) as f:
            return f.read()


class ControllerBasic(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(CTL):
            self.skipTest("raywarden-controller not built")
        self.tmp = tempfile.mkdtemp(prefix="rw-ctl-e2e-")
        self.sim = Sim(self.tmp)
        self.ctls = []

    def tearDown(self):
        for c in self.ctls:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
        self.sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, ident, *extra):
        c = Controller(self.tmp, self.sim, ident, *extra)
        self.ctls.append(c)
        return c

    def test_lead_serve_release_takeover(self):
        a = self.start("ctl-a")
        wait_for(lambda: a.health("/healthz")[0] == 200, what="a /healthz")
        wait_for(lambda: a.health("/readyz")[0] == 200, what="a /readyz")
        wait_for(lambda: self.sim.holder() == "ctl-a", what="ctl-a holds the Lease")
        wait_for(lambda: a.leader_metric() == 1.0, what="a leader metric")
        # Renewals (PUT every 2 s) show up as API requests by verb and code.
        text = wait_for(lambda: (lambda r: r[0] == 200 and 'raywarden_api_requests_total{verb='
                                 '"update",code="200"}' in r[1] and r[1])(a.metrics()),
                        what="renewals in /metrics")
        self.assertIn("# TYPE raywarden_api_requests_total counter", text)
        self.assertIn("# TYPE raywarden_api_request_duration_seconds histogram", text)
        self.assertEqual(a.health("/nope")[0], 404)
        _, lease = self.sim.get(LEASE)
        self.assertEqual(lease["spec"]["leaseDurationSeconds"], 15)

        # A second instance is a healthy standby while a renews.
        b = self.start("ctl-b")
        wait_for(lambda: b.health("/healthz")[0] == 200, what="b /healthz")
        wait_for(lambda: b.leader_metric() == 0.0, what="b standby metric")
        time.sleep(3)  # several of b's retry periods: a must keep the Lease
        self.assertEqual(self.sim.holder(), "ctl-a")
        self.assertEqual(b.leader_metric(), 0.0)

        # SIGTERM: exit 0, Lease released; b takes over without waiting for expiry.
        t0 = time.monotonic()
        self.assertEqual(a.stop(), 0)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("released", a.output())
        wait_for(lambda: self.sim.holder() == "ctl-b", timeout=6, what="ctl-b takes over")
        self.assertLess(time.monotonic() - t0, 8)
        wait_for(lambda: b.leader_metric() == 1.0, what="b leader metric")
        self.assertEqual(b.stop(), 0)
        self.assertEqual(self.sim.holder(), "")

    def test_takeover_after_kill(self):
        a = self.start("ctl-a")
        wait_for(lambda: self.sim.holder() == "ctl-a", what="ctl-a holds the Lease")
        b = self.start("ctl-b")
        wait_for(lambda: b.health("/healthz")[0] == 200, what="b /healthz")
        time.sleep(1)  # b reads the Lease every 2 s; the bounds below allow for either phase
        t_kill = time.monotonic()
        a.stop(signal.SIGKILL)
        wait_for(lambda: self.sim.holder() == "ctl-b", timeout=25, interval=0.1,
                 what="ctl-b takes over after expiry")
        waited = time.monotonic() - t_kill
        # Not before the 15 s lease could have expired (b last saw a renew < 2 s before the
        # kill), and soon after it (retry period 2 s).
        self.assertGreater(waited, 12.5)
        self.assertLess(waited, 21)
        self.assertEqual(b.stop(), 0)

    def test_flags(self):
        r = subprocess.run([CTL, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--watch-namespace", r.stdout)
        r = subprocess.run([CTL, "--qps=fast"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--qps", r.stderr)
        r = subprocess.run([CTL, "--kubeconfig", "/nonexistent"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 2)

    def test_no_leader_election_json_logs(self):
        c = self.start("ctl-solo", "--leader-elect=false", "--log-format", "json",
                       "--watch-namespace", "a,b")
        wait_for(lambda: c.health("/readyz")[0] == 200, what="/readyz")
        wait_for(lambda: c.leader_metric() is None and c.metrics()[0] == 200,
                 what="metrics without a Lease")
        self.assertIsNone(self.sim.holder())
        self.assertEqual(c.stop(), 0)
        for line in c.output().splitlines():
            json.loads(line)


if __name__ == "__main__":
    unittest.main()

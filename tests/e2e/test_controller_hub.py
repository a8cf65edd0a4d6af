"""The controller's agent hub against a hostile agent (API server simulator, fake kubelet leaving
readiness gates to the controller, agent/tools/rw-agentload standing in for the agents).

A report sealed with cluster c1's key that names cluster c2's head pod and UID (an agent of c1
speaking for a pod of another cluster in the same namespace) is refused as "forged", counted in
raywarden_agent_refusals_total{reason="forged"} and logged naming the key's cluster, the claimed
pod and why; c2's head gets no ray.io/agent-ready condition from it, while c1's own pods' reports
are accepted and set theirs.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ctlsim  # noqa: E402

GATE = "ray.io/agent-ready"


def load_bin():
    return os.path.join(ctlsim.BUILD, "bin", "rw-agentload")


def gate_of(pod):
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == GATE:
            return c.get("status")
    return None


@unittest.skipUnless(os.path.exists(ctlsim.controller_bin()) and os.path.exists(load_bin()),
                     "raywarden-controller or rw-agentload not built")
class HubForgery(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rw-e2e-hub-")
        self.w = ctlsim.World(self.tmp, tls=False, gates="respect")
        self.load = None

    def tearDown(self):
        if self.load and self.load.poll() is None:
            self.load.kill()
            self.load.wait()
        self.w.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def pods(self):
        return {p["metadata"]["name"]: p for p in self.w.pods("default")}

    def test_cross_cluster_forgery_refused(self):
        ctl = self.w.controller("--qps", "200", identity="ctl-hub-e2e")
        ctlsim.wait_for(ctl.ready, 30, what="controller /readyz")
        self.w.apply_cluster(ctlsim.raycluster("c1", workers=1))
        self.w.apply_cluster(ctlsim.raycluster("c2", workers=1))
        ctlsim.wait_for(lambda: len(self.pods()) >= 4, 60, what="the two clusters' pods")
        pods = self.pods()
        c1 = [p for p in pods.values() if p["metadata"]["labels"].get("ray.io/cluster") == "c1"]
        c2_head = [p for p in pods.values() if p["metadata"]["labels"].get("ray.io/cluster") == "c2"
                   and p["metadata"]["labels"].get("ray.io/node-type") == "head"][0]
        # The last column is the cluster's UID: keys are derived from it (docs/protocol.md).
        c1_uid = self.w.get_cluster("c1")["metadata"]["uid"]
        lines = ["default c1 %s %s %s %s %s" % (p["metadata"]["name"], p["metadata"]["uid"],
                                                p["metadata"]["labels"].get("ray.io/node-type"),
                                                p["metadata"]["labels"].get("ray.io/group", "-") or "-",
                                                c1_uid)
                 for p in c1]
        # c1's key (the cluster columns pick it), c2's head pod and UID.
        lines.append("default c1 %s %s head - %s" % (c2_head["metadata"]["name"], c2_head["metadata"]["uid"],
                                                     c1_uid))
        pods_file = os.path.join(self.tmp, "pods.txt")
        with open(pods_file, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.load = subprocess.Popen(
            [load_bin(), "--dial", "tcp://%s:8478" % ctl.ip, "--master-key-file", self.w.key_file,
             "--pods-file", pods_file, "--duration", "30", "--warmup", "30", "--flip-permille", "0",
             "--sockets", "2", "--ctxs", "4"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def forged():
            return sum(v for k, v in ctl.metrics().items()
                       if k.startswith("raywarden_agent_refusals_total{") and 'reason="forged"' in k)

        ctlsim.wait_for(lambda: forged() >= 1, 30, what="a forged refusal counted")
        # c1's own pods are admitted: their gate is set from their reports.
        ctlsim.wait_for(lambda: all(gate_of(self.pods()[p["metadata"]["name"]]) is not None for p in c1),
                        30, what="c1's pods' agent-ready condition")
        self.load.kill()
        self.load.wait()
        log = ctl.output()
        line = [ln for ln in log.splitlines() if "(forged)" in ln]
        self.assertTrue(line, "no forged refusal logged")
        self.assertIn("default/c1", line[0])
        self.assertIn(c2_head["metadata"]["name"], line[0])
        self.assertIn('cluster "c2"', line[0])
        # Nothing acted on the forged report: c2's head has no condition from the hub.
        self.assertIsNone(gate_of(self.pods()[c2_head["metadata"]["name"]]))
        # Ray pods and RayClusters are listed and watched once, shared by both reconcilers and
        # the hub (docs/controller.md, "Informers", "Shared").
        m = ctl.metrics()
        self.assertEqual(m.get('raywarden_informers{resource="pods"}'), 1)
        self.assertEqual(m.get('raywarden_informers{resource="rayclusters"}'), 1)
        self.assertTrue(ctl.alive())


if __name__ == "__main__":
    unittest.main()

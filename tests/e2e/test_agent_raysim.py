"""The real raywarden-agent against the Ray node simulator (tests/sim): a
num-cpus 0 head and one worker, each with its agent, and rw-fakectl as the
controller of the head agent. Faults are injected through the simulator's
control endpoint and the agents' /readyz and reports are checked."""

import json
import os
import random
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "..", "sim")
sys.path.insert(0, SIM)

from agentlib import (AGENT, FAKECTL, events, agent_get, set_reply, start_agent,  # noqa: E402
                      start_fakectl, wait_for, write_key)

try:
    from raysim.cluster import Cluster  # noqa: E402
except ImportError:  # the simulator is not in this tree
    Cluster = None

ENV = {
    "RAY_health_check_period_ms": "200", "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "0", "RAY_SERVE_PROXY_MIN_DRAINING_PERIOD_S": "3",
    "RAY_SERVE_PROXY_DRAIN_CHECK_PERIOD_S": "0.2", "RAY_SERVE_PROXY_HEALTH_CHECK_PERIOD_S": "0.5",
    "RW_SIM_BLOCK_MONITOR": "0",
}
SIMPLE_APP = {
    "name": "simple_app",
    "import_path": "ray-operator.config.samples.ray-serve.single_deployment_dag:DagNode",
    "route_prefix": "/basic",
    "deployments": [{"name": "BaseService", "num_replicas": 1, "max_replicas_per_node": 1,
                     "ray_actor_options": {"num_cpus": 0.1}}],
}


def detect(ip, has, timeout=5.0):
    """Seconds until /readyz answers 503 with `has` in its reason."""
    t0 = time.monotonic()
    wait_for(lambda: (lambda r: r[0] == 503 and has in r[1])(agent_get(ip, 8477, "/readyz")),
             timeout, interval=0.005, what="503 %s" % has)
    return time.monotonic() - t0


@unittest.skipIf(Cluster is None, "Ray node simulator not present")
class AgentOnRaySim(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (os.path.exists(AGENT) and os.path.exists(FAKECTL)):
            raise unittest.SkipTest("agent binaries not built")
        cls.tmp = tempfile.mkdtemp(prefix="rw-agent-raysim-")
        prefix = "127.79.%d" % random.randint(1, 250)
        cls.c = Cluster(prefix, workers=1, head_args=["--num-cpus=0"],
                        worker_args=["--num-cpus=1"], env=ENV, log_dir=cls.tmp,
                        worker_env={"RAY_gcs_rpc_server_reconnect_timeout_s": "60"})
        cls.c.start()
        cls.h, cls.w = cls.c.head, cls.c.workers[0]
        cls.key = write_key(cls.tmp)
        htmp = os.path.join(cls.tmp, "head")
        wtmp = os.path.join(cls.tmp, "worker")
        os.makedirs(htmp)
        os.makedirs(wtmp)
        cls.ctl = start_fakectl(cls.h.ip, htmp, cls.key)
        cls.ha = start_agent(cls.h.ip, htmp, node_type="head", rayservice="true",
                             controller="tcp://%s:8478" % cls.h.ip, key_file=cls.key,
                             serve_status_interval_ms=500, heartbeat_ms=1000)
        cls.wa = start_agent(cls.w.ip, wtmp, node_type="worker", rayservice="true")

    @classmethod
    def tearDownClass(cls):
        for p in (getattr(cls, "wa", None), getattr(cls, "ha", None), getattr(cls, "ctl", None)):
            if p:
                p.stop()
        cls.c.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ready(self, node, code, has=None, timeout=20):
        def ok():
            c, body = agent_get(node.ip, 8477, "/readyz")
            return c == code and (has is None or has in body) and (c, body)
        return wait_for(ok, timeout, what="%s /readyz %s %s" % (node.ip, code, has))

    def report_has(self, pred, what, timeout=20):
        return wait_for(lambda: [e["report"] for e in events(self.ctl, "report")
                                 if pred(e["report"])], timeout, what=what)

    def test_scenario(self):
        h, w = self.h, self.w
        # No serve yet: the head is ready, the RayService worker has no proxy.
        self.ready(h, 200, "ok")
        self.ready(w, 503, "proxy absent: connection refused")

        # The controller's reply carries a serve config: the head agent PUTs it.
        set_reply(self.ctl, {"serve_config_hash": "h1",
                             "serve_config": json.dumps({"applications": [SIMPLE_APP]})})
        self.ready(w, 200, "ok", timeout=30)
        rpts = self.report_has(
            lambda r: r.get("serve_apply_state") == "applied"
            and any(a.get("name") == "simple_app" and a.get("status") == "RUNNING"
                    for a in r.get("serve", {}).get("apps", [])), "simple_app RUNNING report")
        nodes = rpts[-1]["serve"]["nodes"]
        self.assertIn(w.ip, [n["node_ip"] for n in nodes if n.get("replicas", 0) > 0])
        self.assertEqual(sorted(n["node_ip"] for n in nodes if n.get("proxy_status")),
                         sorted([h.ip, w.ip]))

        # Proxy killed on the worker: NotReady at once; Serve restarts it.
        figures = {}
        w.fault("proxy", "kill")
        figures["proxy_killed_s"] = detect(w.ip, "proxy absent")
        self.ready(w, 200, timeout=30)

        # A job submitted through a reply runs to SUCCEEDED and is reported.
        set_reply(self.ctl, {"serve_config_hash": "h1",
                             "serve_config": json.dumps({"applications": [SIMPLE_APP]}),
                             "submit_job": {"submission_id": "rw-e2e-job-1",
                                            "entrypoint": "echo hello from raysim"}})
        self.report_has(lambda r: any(j.get("submission_id") == "rw-e2e-job-1" and
                                      j.get("status") == "SUCCEEDED"
                                      for j in r.get("jobs", [])), "job SUCCEEDED", 30)

        # A config without applications: the worker's proxy drains (503), then goes.
        set_reply(self.ctl, {"serve_config_hash": "h2",
                             "serve_config": json.dumps({"applications": []})})
        figures["proxy_draining_s"] = detect(w.ip, "proxy draining: This node is being drained.",
                                             15)
        self.ready(w, 503, "proxy absent", timeout=30)

        # Raylet killed on the worker.
        w.fault("raylet", "kill")
        figures["raylet_killed_s"] = detect(w.ip, "raylet down")
        self.assertEqual(agent_get(w.ip, 8477, "/livez")[0], 200)  # grace period

        # GCS killed on the head.
        h.fault("gcs", "kill")
        figures["gcs_killed_s"] = detect(h.ip, "gcs unhealthy", 10)
        self.report_has(lambda r: r["probes"]["gcs"]["state"] == "fail" and not r["ready"],
                        "gcs failure report")
        print("\ndetection (s): %s" % json.dumps({k: round(v, 3) for k, v in figures.items()}))
        # A killed process closes its connections: the agent probes it again at
        # once. A dead GCS only shows in the dashboard's answer: next 2 s poll.
        for k in ("proxy_killed_s", "raylet_killed_s"):
            self.assertLess(figures[k], 0.3, k)
        self.assertLess(figures["gcs_killed_s"], 2.6)
        self.assertIsNone(self.ha.p.poll())
        self.assertIsNone(self.wa.p.poll())
        # SIGTERM: both exit 0 (leak-checked under ASan) while Ray is half dead.
        self.assertEqual(self.wa.stop(), 0)
        self.assertEqual(self.ha.stop(), 0)


if __name__ == "__main__":
    unittest.main()

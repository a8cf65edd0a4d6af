"""Ray node simulator: GCS fault tolerance with a real redis-server.

Skipped (with a message) when redis-server is not installed.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from raysim.cluster import Cluster, SimNode, http, wait_for  # noqa: E402
from raysim.resp import Redis  # noqa: E402
from kubesim.testutil import free_port  # noqa: E402
from test_raysim import FAST, SIMPLE_APP, app_status, healthz  # noqa: E402

REDIS = shutil.which("redis-server")
PASSWORD = "5241590000000000"


@unittest.skipIf(REDIS is None, "redis-server is not installed; GCS FT tests skipped")
class GcsFaultTolerance(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="raysim-redis-")
        self.port = free_port()
        self.redis_proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", PASSWORD, "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self._stop_redis)  # runs even if setUp fails below
        self.r = Redis("127.0.0.1", self.port, password=PASSWORD)
        wait_for(lambda: self.r.execute("PING") == "PONG", 10, what="redis-server")
        self.ns = str(uuid.uuid4())
        self.c = None

    def tearDown(self):
        if self.c is not None:
            self.c.stop()

    def _stop_redis(self):
        self.r.close() if hasattr(self, "r") else None
        self.redis_proc.terminate()
        self.redis_proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_job(self, head, sid, entrypoint):
        st, _, _ = http(head.ip, 8265, "POST", "/api/jobs/", {"entrypoint": entrypoint, "submission_id": sid})
        self.assertEqual(st, 200)

        def done():
            info = json.loads(http(head.ip, 8265, "GET", "/api/jobs/%s" % sid)[2])
            return info["status"] in ("SUCCEEDED", "FAILED") and info
        info = wait_for(done, 20, what="job %s" % sid)
        logs = json.loads(http(head.ip, 8265, "GET", "/api/jobs/%s/logs" % sid)[2])["logs"]
        return info, logs

    def test_state_survives_head_restart(self):
        head_env = {"RAY_REDIS_ADDRESS": "redis://127.0.0.1:%d" % self.port, "REDIS_PASSWORD": PASSWORD,
                    "RAY_external_storage_namespace": self.ns}
        # The worker needs a whole free CPU for the Counter (num_cpus=1) next to the replica.
        self.c = Cluster("127.77.30", workers=1, head_args=["--num-cpus=0", "--redis-password=%s" % PASSWORD],
                         worker_args=["--num-cpus=2"], env=FAST, head_env=head_env,
                         worker_env={"RAY_gcs_rpc_server_reconnect_timeout_s": "600"})
        self.c.start()
        h, w = self.c.head, self.c.workers[0]
        http(h.ip, 8265, "PUT", "/api/serve/applications/", {"applications": [SIMPLE_APP]})
        wait_for(lambda: app_status(h, "simple_app") == "RUNNING", 15, what="RUNNING")
        before = json.loads(http(h.ip, 8265, "GET", "/api/serve/applications/")[2])
        rid = before["applications"]["simple_app"]["deployments"]["BaseService"]["replicas"][0]["replica_id"]
        # The detached counter of the GCS FT walkthrough.
        info, logs = self.run_job(h, "create-counter", "python3 -m raysim.actor create counter_actor && "
                                  "python3 -m raysim.actor call counter_actor increment")
        self.assertEqual(info["status"], "SUCCEEDED", logs)
        self.assertTrue(logs.endswith("\n1\n"), logs)

        # Ray's current key schema (ray-apis.md 5): one HASH per table, JobCounter string.
        keys = sorted(k.decode() for k in self.r.execute("KEYS", "*"))
        pre = "RAY%s@" % self.ns
        self.assertTrue(all(k.startswith(pre) for k in keys), keys)
        for table in ("NODE", "KV", "JOB", "ACTOR"):
            self.assertEqual(self.r.execute("TYPE", pre + table), "hash", table)
        self.assertEqual(self.r.execute("TYPE", pre + "JobCounter"), "string")
        self.assertGreaterEqual(int(self.r.execute("GET", pre + "JobCounter")), 2)
        job_field = "@namespace_job:_ray_internal_job_info_create-counter"
        self.assertEqual(json.loads(self.r.execute("HGET", pre + "KV", job_field))["status"], "SUCCEEDED")
        self.assertEqual(self.r.execute("HLEN", pre + "NODE"), 2)

        # Kill the head outright and start a new one with the same storage.
        h.stop(sig=9)
        self.assertEqual(healthz(w.ip), (200, "success"))  # HA: worker keeps serving
        h2 = SimNode(h.ip, h.args, h.env)
        self.c.head = h2
        h2.start()
        h2.wait_ready()
        st, _, body = h2.get(8265, "/api/gcs_healthz")
        self.assertEqual((st, body), (200, b"success"))
        after = wait_for(lambda: app_status(h2, "simple_app") == "RUNNING" and json.loads(
            http(h2.ip, 8265, "GET", "/api/serve/applications/")[2]), 15, what="serve recovered")
        reps = after["applications"]["simple_app"]["deployments"]["BaseService"]["replicas"]
        self.assertEqual([r["replica_id"] for r in reps], [rid])  # the worker's replica survived
        self.assertNotEqual(after["controller_info"]["node_id"], before["controller_info"]["node_id"])
        self.assertTrue(w.alive())
        jobs = json.loads(http(h2.ip, 8265, "GET", "/api/jobs/")[2])
        self.assertEqual([j["submission_id"] for j in jobs], ["create-counter"])
        info, logs = self.run_job(h2, "bump-counter", "python3 -m raysim.actor call counter_actor increment")
        self.assertEqual(info["status"], "SUCCEEDED", logs)
        self.assertTrue(logs.endswith("\n2\n"), logs)
        wait_for(lambda: healthz(h2.ip) == (200, "success"), 10, what="new head proxy")
        self.assertEqual(http(h2.ip, 8000, "POST", "/basic", b"")[2], b"hello world")

    def test_without_ft_state_is_lost(self):
        self.c = Cluster("127.77.31", workers=1, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"], env=FAST,
                         worker_env={"RAY_gcs_rpc_server_reconnect_timeout_s": "30"})
        self.c.start()
        h, w = self.c.head, self.c.workers[0]
        info, logs = self.run_job(h, "c1", "python3 -m raysim.actor create counter_actor && "
                                  "python3 -m raysim.actor call counter_actor increment")
        self.assertEqual(info["status"], "SUCCEEDED", logs)
        h.stop(sig=9)
        h2 = SimNode(h.ip, h.args, h.env)
        self.c.head = h2
        h2.start()
        h2.wait_ready()
        self.assertEqual(json.loads(http(h2.ip, 8265, "GET", "/api/jobs/")[2]), [])
        info, logs = self.run_job(h2, "c2", "python3 -m raysim.actor call counter_actor increment")
        self.assertEqual(info["status"], "FAILED")
        self.assertIn("Failed to look up actor with name 'counter_actor'", logs)
        # The old worker belongs to the old cluster and exits.
        wait_for(lambda: not w.alive(), 15, what="old worker to exit")
        self.assertEqual(w.proc.returncode, 1)
        self.assertEqual(self.r.execute("KEYS", "*"), [])


if __name__ == "__main__":
    unittest.main()

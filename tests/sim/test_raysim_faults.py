"""Ray node simulator: fault injection through the control endpoint, and HA.

Each class uses its own 127.77.x.0/24 so nodes never share ports.
"""

import json
import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from raysim.cluster import Cluster, http, wait_for  # noqa: E402
from test_raysim import FAST, SIMPLE_APP, healthz, kuberay_probe, port_refuses  # noqa: E402


def refused(ip, port):
    try:
        socket.create_connection((ip, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def times_out(ip, port, path, timeout=0.5):
    try:
        http(ip, port, "GET", path, timeout=timeout)
    except socket.timeout:
        return True
    return False


class ComponentFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env = dict(FAST, RAY_SERVE_PROXY_HEALTH_CHECK_PERIOD_S="0.2", RW_SIM_BLOCK_MONITOR="0")
        cls.c = Cluster("127.77.20", workers=1, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"], env=env,
                        worker_env={"RAY_gcs_rpc_server_reconnect_timeout_s": "30"})
        cls.c.start()
        cls.h, cls.w = cls.c.head, cls.c.workers[0]
        st, _, _ = http(cls.h.ip, 8265, "PUT", "/api/serve/applications/", {"applications": [SIMPLE_APP]})
        assert st == 200
        wait_for(lambda: healthz(cls.w.ip) == (200, "success"), 15, what="worker proxy healthy")

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def test_dashboard_hang_slow_garbage(self):
        h = self.h
        h.fault("dashboard", "hang")
        self.assertTrue(times_out(h.ip, 8265, "/api/gcs_healthz"))
        h.fault("dashboard", "slow", delay_ms=400)
        t0 = time.time()
        self.assertEqual(h.get(8265, "/api/gcs_healthz")[2], b"success")
        self.assertGreaterEqual(time.time() - t0, 0.4)
        h.fault("dashboard", "garbage")
        st, _, body = h.get(8265, "/api/serve/applications/")
        self.assertEqual(st, 200)
        self.assertRaises(ValueError, json.loads, body)
        h.fault("dashboard", "garbage_huge", size=5 * 1024 * 1024)
        st, hdr, body = h.get(8265, "/api/gcs_healthz", timeout=20)
        self.assertEqual((st, len(body)), (200, 5 * 1024 * 1024))
        h.fault("dashboard", "kill")
        self.assertTrue(refused(h.ip, 8265))
        h.fault("dashboard", "restore")
        self.assertEqual(h.get(8265, "/api/gcs_healthz")[2], b"success")

    def test_agent_garbage_fails_probe(self):
        self.w.fault("agent", "garbage")
        try:
            self.assertEqual(kuberay_probe(self.w.ip), (1, ""))
        finally:
            self.w.fault("agent", "restore")
        self.assertEqual(kuberay_probe(self.w.ip), (0, "success\nsuccess\n"))

    def test_proxy_kill_is_restarted_by_serve(self):
        self.w.fault("proxy", "kill")
        self.assertTrue(port_refuses(self.w.ip, 8000))
        self.assertEqual(kuberay_probe(self.w.ip), (1, "success\n"))
        # 3 failed health checks (0.2 s period here) -> UNHEALTHY -> restarted.
        wait_for(lambda: healthz(self.w.ip) == (200, "success"), 15, what="proxy restarted")

    def test_proxy_hang_restarts_too(self):
        self.w.fault("proxy", "hang")
        self.assertTrue(times_out(self.w.ip, 8000, "/-/healthz"))
        wait_for(lambda: healthz(self.w.ip) == (200, "success"), 15, what="hung proxy replaced")

    def test_z_gcs_hang(self):
        h = self.h
        h.fault("gcs", "hang")
        try:
            st, _, body = h.get(8265, "/api/gcs_healthz")
            self.assertEqual(st, 503)
            self.assertIn(b"Deadline Exceeded", body)
            self.assertEqual(h.get(52365, "/api/local_raylet_healthz")[2], b"success")
        finally:
            h.fault("gcs", "restore")
        self.assertEqual(h.get(8265, "/api/gcs_healthz")[2], b"success")


class GcsKill(unittest.TestCase):
    def test_gcs_kill_then_restart_without_redis(self):
        with Cluster("127.77.23", workers=1, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"], env=FAST,
                     worker_env={"RAY_gcs_rpc_server_reconnect_timeout_s": "30"}) as c:
            h, w = c.head, c.workers[0]
            http(h.ip, 8265, "PUT", "/api/serve/applications/", {"applications": [SIMPLE_APP]})
            wait_for(lambda: healthz(w.ip) == (200, "success"), 15, what="worker proxy healthy")
            h.fault("gcs", "kill")
            st, _, body = h.get(8265, "/api/gcs_healthz")
            self.assertEqual(st, 503)
            self.assertTrue(body.startswith(b"503: Health check failed: "), body)
            st, _, body = h.get(8265, "/api/serve/applications/")
            self.assertEqual(st, 503)
            self.assertTrue(body.startswith(b"Failed to get a response from the controller. The GCS may be down, "
                                            b"please retry later: "))
            # GCS unreachable: the agents still say success.
            for n in (h, w):
                st, _, body = n.get(52365, "/api/local_raylet_healthz")
                self.assertEqual((st, body), (200, b"success"))
            # The worker proxy keeps serving from its cached routes.
            self.assertEqual(http(w.ip, 8000, "POST", "/basic", b"")[2], b"hello world")
            self.assertEqual(h.get(8265, "/api/jobs/x")[0], 500)
            self.assertTrue(refused(h.ip, 6379))
            # A restarted GCS without Redis is a new cluster: raylets of the
            # old one exit non-zero when they reconnect. The simulated GCS
            # lives in the head's process, so the head raylet's exit takes the
            # new GCS with it; a worker that had not reached it by then would
            # only see a refused connection and wait out its 30 s reconnect
            # timeout. The head raylet is held (hung) until the worker has met
            # the new GCS, so each raylet's exit is the one under test.
            # The node logs are appended to across runs: only what follows counts.
            wlog0, hlog0 = len(w.log()), len(h.log())
            h.fault("raylet", "hang")
            h.fault("gcs", "restore")
            # One heartbeat (0.2 s) after the restore; the deadline is margin
            # for a loaded machine, well below the reconnect timeout.
            wait_for(lambda: not w.alive(), 20, what="worker of the old cluster to exit")
            self.assertEqual(w.proc.returncode, 1)
            self.assertIn("belongs to another cluster", w.log()[wlog0:])
            h.fault("raylet", "restore")
            wait_for(lambda: not h.alive(), 20, what="head raylet to exit")
            self.assertEqual(h.proc.returncode, 1)
            self.assertIn("belongs to another cluster", h.log()[hlog0:])


class NodeDeath(unittest.TestCase):
    """raylet kill / hang as Ray: agent fate-shares, GCS marks the node dead."""

    def test_raylet_hang_then_kill_with_block_monitor(self):
        env = dict(FAST)
        env.pop("RW_SIM_BLOCK_MONITOR")
        with Cluster("127.77.21", workers=2, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"], env=env) as c:
            w1, w2 = c.workers
            # Hung raylet: heartbeats stop; once the GCS declares the node
            # dead, the agent (still up) answers 503 "Local Raylet failed".
            w1.fault("raylet", "hang")
            wait_for(lambda: w1.get(52365, "/api/local_raylet_healthz")[0] == 503, 10, what="503 after hang")
            st, hdr, body = w1.get(52365, "/api/local_raylet_healthz")
            self.assertEqual((body, hdr["content-type"]), (b"Local Raylet failed", "application/text; charset=utf-8"))
            self.assertEqual(kuberay_probe(w1.ip), (1, ""))
            # Killed raylet: the agent goes with it; with --block the whole
            # `ray start` exits 1 (scripts.py monitors its subprocesses).
            w2.fault("raylet", "kill")
            self.assertTrue(refused(w2.ip, 52365))
            wait_for(lambda: not w2.alive(), 10, what="ray start --block to exit")
            self.assertEqual(w2.proc.returncode, 1)
            self.assertIn("Some Ray subprocesses exited unexpectedly", w2.log())


class HeadLossWithoutFT(unittest.TestCase):
    def test_worker_keeps_serving_then_exits_after_reconnect_timeout(self):
        with Cluster("127.77.22", workers=1, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"], env=FAST,
                     worker_env={"RAY_gcs_rpc_server_reconnect_timeout_s": "3"}) as c:
            w = c.workers[0]
            http(c.head.ip, 8265, "PUT", "/api/serve/applications/", {"applications": [SIMPLE_APP]})
            wait_for(lambda: healthz(w.ip) == (200, "success"), 15, what="worker proxy")
            c.head.stop(sig=9)
            t0 = time.time()
            # HA: the worker proxy serves from its cache while the GCS is gone.
            self.assertEqual(http(w.ip, 8000, "POST", "/basic", b"")[2], b"hello world")
            self.assertEqual(healthz(w.ip), (200, "success"))
            self.assertEqual(w.get(52365, "/api/local_raylet_healthz")[2], b"success")
            wait_for(lambda: not w.alive(), 15, what="raylet to give up on the GCS")
            self.assertGreaterEqual(time.time() - t0, 2.5)
            self.assertEqual(w.proc.returncode, 1)
            self.assertIn("Failed to connect to GCS within 3 seconds", w.log())


if __name__ == "__main__":
    unittest.main()

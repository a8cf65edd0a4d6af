"""End-to-end: the real agent's port and the real controller's health port keep answering a
kubelet-style probe (a new connection per probe) while 200 silent connections from many
loopback addresses and slow-loris peers hold every slot they can; the evictions show in each
/metrics. The listener limits themselves are unit-tested in tests/unit/test_httpd.c; this
checks that both daemons use them."""

import os
import shutil
import socket
import tempfile
import time
import unittest

from agentlib import AGENT, FakeRay, agent_get, metric, pick_ip, start_agent, wait_for
import ctlsim

SILENT = 200
LORIS = 20


def open_attackers(ip, port):
    """SILENT silent sockets (two per source address) and LORIS that sent half a head."""
    socks = []
    for i in range(SILENT + LORIS):
        s = socket.socket()
        src = "127.66.%d.%d" % (i // 2 // 250, 1 + i // 2 % 250) if i < SILENT else \
            "127.67.0.%d" % (1 + i - SILENT)
        s.bind((src, 0))
        s.settimeout(5)
        s.connect((ip, port))
        if i >= SILENT:
            s.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
        socks.append(s)
    return socks


def probe(ip, port, path):
    """One kubelet-style probe on a fresh connection: (status, seconds)."""
    t0 = time.monotonic()
    st, _ = agent_get(ip, port, path, timeout=2.0)
    return st, time.monotonic() - t0


class AgentPort(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(AGENT):
            self.skipTest("agent not built")
        self.tmp = tempfile.mkdtemp(prefix="rw-hostile-e2e-")
        self.ip = pick_ip()
        self.ray = FakeRay(self.ip)
        self.agent = start_agent(self.ip, self.tmp)
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.agent.stop()
        self.ray.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_probe_answered_among_silent_peers(self):
        wait_for(lambda: agent_get(self.ip, 8477, "/readyz")[0] == 200, 10, what="agent ready")
        self.socks = open_attackers(self.ip, 8477)
        for _ in range(20):
            st, dt = probe(self.ip, 8477, "/readyz")
            self.assertEqual(st, 200)
            self.assertLess(dt, 1.0)  # the kubelet's default timeoutSeconds
        # 64 slots: the rest of the attackers were evicted as they came.
        ev = metric(self.ip, "raywarden_agent_http_evictions_total")
        self.assertGreaterEqual(ev, SILENT + LORIS - 64)
        self.assertEqual(metric(self.ip, "raywarden_agent_http_refusals_total"), 0)
        self.assertLessEqual(metric(self.ip, "raywarden_agent_http_connections_open"), 64)


class ControllerHealthPort(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(ctlsim.controller_bin()):
            self.skipTest("controller not built")
        self.tmp = tempfile.mkdtemp(prefix="rw-hostile-ctl-")
        self.world = ctlsim.World(self.tmp)
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.world.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_healthz_answered_among_silent_peers(self):
        ctl = self.world.controller(identity="ctl-hostile")
        ctlsim.wait_for(ctl.ready, 30, what="controller /readyz")
        self.socks = open_attackers(ctl.ip, 8082)
        for _ in range(20):
            st, dt = probe(ctl.ip, 8082, "/healthz")
            self.assertEqual(st, 200)
            self.assertLess(dt, 1.0)
        m = ctl.metrics()
        self.assertGreaterEqual(
            m.get('raywarden_controller_http_evictions_total{listener="health"}', 0),
            SILENT + LORIS - 64)
        self.assertEqual(m.get('raywarden_controller_http_refusals_total{listener="health"}'), 0)


if __name__ == "__main__":
    unittest.main()

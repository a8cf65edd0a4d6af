"""preStop hooks in the kubelet simulator (kubesim/kubelet_lifecycle.py): httpGet,
exec and sleep handlers run on pod deletion before SIGTERM and count against the
grace period; a failing hook is a FailedPreStopHook event and termination goes on;
a hook longer than the grace period is abandoned. Run from tests/sim:
python3 -m unittest -v test_kubelet_prestop
"""

import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubesim.kubelet_lifecycle import MIN_GRACE_S, PreStop, run_handler  # noqa: E402
from kubesim.kubelet_testutil import LocalCluster, is_ready, wait_for  # noqa: E402

# A container that records what happens to it in $REC/<pod>.jsonl: "start",
# every GET (path, user agent, Authorization) and the SIGTERM, each with the wall-clock time.
# GET /slow?s=N answers after N seconds.
RECORDER = r'''
import http.server, json, os, signal, sys, time, threading, urllib.parse
rec = os.path.join(os.environ["REC"], os.environ["POD_NAME"] + ".jsonl")
lock = threading.Lock()
def note(**kw):
    kw["t"] = time.time()
    with lock, open(rec, "a") as f:
        f.write(json.dumps(kw) + "\n")
def term(*a):
    note(ev="term")
    os._exit(0)
signal.signal(signal.SIGTERM, term)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        note(ev="get", path=self.path, ua=self.headers.get("User-Agent"), auth=self.headers.get("Authorization"))
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        time.sleep(float(q.get("s", ["0"])[0]))
        self.send_response(404 if "missing" in self.path else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
note(ev="start")
http.server.ThreadingHTTPServer((os.environ["RW_SIM_POD_IP"], 8080), H).serve_forever()
'''


def pod(name, rec, prestop, grace=30):
    c = {"name": "c", "image": "python:3.11", "command": ["python3", "-c", RECORDER],
         "env": [{"name": "POD_NAME", "value": name}, {"name": "REC", "value": rec}],
         "ports": [{"name": "http", "containerPort": 8080}],
         "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}
    if prestop is not None:
        c["lifecycle"] = {"preStop": prestop}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "prestop"}},
            "spec": {"terminationGracePeriodSeconds": grace, "containers": [c]}}


def events(rec, name):
    try:
        with open(os.path.join(rec, name + ".jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def first(evs, ev):
    for e in evs:
        if e["ev"] == ev:
            return e
    return None


class TestHandlers(unittest.TestCase):
    """The handler runner alone."""

    def test_unsupported_and_sleep(self):
        import threading
        stop = threading.Event()
        ok, msg = run_handler({"tcpSocket": {"port": 1}}, {}, "127.0.0.1", {}, 1, stop)
        self.assertFalse(ok)
        self.assertIn("invalid handler", msg)
        t0 = time.monotonic()
        self.assertEqual(run_handler({"sleep": {"seconds": 0.3}}, {}, "127.0.0.1", {}, 5, stop), (True, ""))
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        ok, msg = run_handler({"exec": {"command": ["sh", "-c", "exit 3"]}}, {}, "127.0.0.1", dict(os.environ), 5,
                              stop)
        self.assertFalse(ok)
        self.assertIn("exit status 3", msg)

    def test_remaining_grace(self):
        ps = PreStop({"sleep": {"seconds": 0}}, {}, "127.0.0.1", {}, 10)
        ps.start_mono = 100.0
        self.assertEqual(ps.remaining_grace(103.9), 7)   # whole seconds deducted (3.9 -> 3)
        self.assertEqual(ps.remaining_grace(150.0), MIN_GRACE_S)  # never below the minimum
        ps.grace = 1
        self.assertEqual(ps.remaining_grace(100.2), MIN_GRACE_S)


class TestPreStop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cl = LocalCluster(nodes=1, backoff_base=1.0)
        cls.c = cls.cl.client
        cls.rec = tempfile.mkdtemp(prefix="kubesim-prestop-")
        os.chmod(cls.rec, 0o777)

    @classmethod
    def tearDownClass(cls):
        cls.cl.down()
        shutil.rmtree(cls.rec, ignore_errors=True)

    def test_hooks_on_deletion(self):
        rec = self.rec
        cases = {
            # name: (preStop, grace)
            "http-slow": ({"httpGet": {"path": "/slow?s=2", "port": "http",
                                       "httpHeaders": [{"name": "Authorization", "value": "Bearer t0k"}]}}, 30),
            "http-404": ({"httpGet": {"path": "/missing", "port": 8080}}, 30),
            "http-refused": ({"httpGet": {"path": "/x", "port": 8099}}, 30),
            "sleep": ({"sleep": {"seconds": 2}}, 30),
            "exec": ({"exec": {"command": ["sh", "-c", "echo hook > $REC/exec.hook; sleep 1"]}}, 30),
            "too-long": ({"sleep": {"seconds": 60}}, 3),
            "none": (None, 30),
        }
        self.c.create("services", "default", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "prestop"},
                                              "spec": {"selector": {"app": "prestop"}, "ports": [{"port": 80}]}})
        for name, (hook, grace) in cases.items():
            self.c.create("pods", "default", pod(name, rec, hook, grace))
        for name in cases:
            self.cl.wait_pod("default", name, is_ready, 20, name + " ready")
            wait_for(lambda n=name: first(events(rec, n), "start"), 5, what=name + " started")
        t0 = time.time()
        for name in cases:
            self.c.delete("pods", "default", name)
        # The endpoints turn terminating at once, while the hooks run.
        wait_for(lambda: all((e.get("conditions") or {}).get("terminating")
                             for s in self.c.list("endpointslices", "default",
                                                  label_selector="kubernetes.io/service-name=prestop")["items"]
                             for e in s.get("endpoints") or []), 3, what="terminating endpoints")
        for name in cases:
            wait_for(lambda n=name: self.cl.pod("default", n) is None, 15, what=name + " gone")
        term = {n: first(events(rec, n), "term") for n in cases}
        for n, e in term.items():
            self.assertIsNotNone(e, "%s got no SIGTERM" % n)
        after = {n: e["t"] - t0 for n, e in term.items()}
        # httpGet: the query reaches the server, the user agent is the kubelet's,
        # SIGTERM waits for the answer (2 s); a 404 answer still counts as done.
        get = first(events(rec, "http-slow"), "get")
        self.assertEqual(get["path"], "/slow?s=2")
        self.assertTrue(get["ua"].startswith("kube-lifecycle/"), get["ua"])
        # httpHeaders are sent as given (raywarden's drain token rides on them).
        self.assertEqual(get["auth"], "Bearer t0k")
        self.assertIsNone(first(events(rec, "http-404"), "get")["auth"])
        self.assertGreaterEqual(after["http-slow"], 1.9)
        self.assertLess(after["http-slow"], 5.0)
        self.assertLess(after["http-404"], 1.5)
        # Refused: FailedPreStopHook, and SIGTERM at once.
        self.assertLess(after["http-refused"], 1.5)
        self.assertGreaterEqual(after["sleep"], 1.9)
        self.assertLess(after["sleep"], 5.0)
        self.assertTrue(os.path.exists(os.path.join(rec, "exec.hook")))
        self.assertGreaterEqual(after["exec"], 0.9)
        # A hook longer than the grace period is abandoned at the grace period.
        self.assertGreaterEqual(after["too-long"], 2.9)
        self.assertLess(after["too-long"], 6.0)
        self.assertLess(after["none"], 1.5)
        evs = self.c.list("events", "default", field_selector="reason=FailedPreStopHook")["items"]
        names = {e["involvedObject"]["name"] for e in evs}
        self.assertIn("http-refused", names)
        self.assertNotIn("http-404", names)
        self.assertNotIn("sleep", names)
        self.assertTrue(all(e["message"] == "PreStopHook failed" for e in evs))


if __name__ == "__main__":
    unittest.main()

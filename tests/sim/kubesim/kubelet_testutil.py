"""Helpers shared by tests/sim/test_kubelet*.py and test_localcluster*.py: a local
cluster per test class and bounded waits for conditions."""

import functools
import json
import os
import tempfile
import urllib.request

from . import testutil
from .testutil import condition, pod_ready as is_ready  # noqa: F401 (the tests import them from here)
from .kubeclient import ApiError, KubeClient
from .localcluster import Cluster

# A tiny HTTP server used as a test container (image python:*): GET /fail makes
# every other path answer 500, GET /heal undoes it; / answers the pod name.
TEST_SERVER = r'''
import http.server, os, sys
state = {"ok": True}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/fail":
            state["ok"] = False
        elif self.path == "/heal":
            state["ok"] = True
        code = 200 if state["ok"] or self.path in ("/fail", "/heal") else 500
        body = os.environ.get("POD_NAME", "?").encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((os.environ["RW_SIM_POD_IP"], int(sys.argv[1])), H).serve_forever()
'''


def _not_yet(exc):
    """A refused connection, or an object not there yet (404) or in conflict (409), is "not
    yet"; any other API error fails the wait at once."""
    return isinstance(exc, OSError) or (isinstance(exc, ApiError) and exc.code in (404, 409))


# Poll fn until it returns a truthy value; bounded in time.
wait_for = functools.partial(testutil.wait_for, retry=_not_yet)


class LocalCluster:
    """Start a local cluster in a temporary state dir (fast back-offs for tests)."""

    def __init__(self, nodes=1, backoff_base=1.0, job_backoff_base=0.3):
        self.tmp = tempfile.mkdtemp(prefix="kubesim-test-")
        self.cluster = Cluster(self.tmp)
        rc = self.cluster.up(nodes=nodes, backoff_base=backoff_base, job_backoff_base=job_backoff_base, quiet=True)
        if rc != 0:
            logs = ""
            for f in sorted(os.listdir(os.path.join(self.tmp, "logs"))):
                with open(os.path.join(self.tmp, "logs", f), errors="replace") as fh:
                    logs += "== %s\n%s\n" % (f, fh.read()[-3000:])
            self.cluster.down(quiet=True)
            raise RuntimeError("local cluster did not start:\n" + logs)
        self.client = KubeClient.from_state_dir(self.tmp)
        self.kubeconfig = os.path.join(self.tmp, "kubeconfig")
        with open(os.path.join(self.tmp, "kubelet.json")) as f:
            self.kubelet_url = json.load(f)["control_url"]
        with open(os.path.join(self.tmp, "proxy.json")) as f:
            self.proxy_url = json.load(f)["control_url"]

    def kubelet(self, path, body=None):
        if body is None:
            with urllib.request.urlopen(self.kubelet_url + path, timeout=10) as r:
                data = r.read()
        else:
            req = urllib.request.Request(self.kubelet_url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=15) as r:
                data = r.read()
        try:
            return json.loads(data)
        except ValueError:
            return data

    def proxy_stats(self):
        with urllib.request.urlopen(self.proxy_url + "/stats", timeout=5) as r:
            return json.loads(r.read())

    def ensure_namespace(self, ns):
        try:
            self.client.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        except ApiError as e:
            if e.code != 409:
                raise

    def pod(self, ns, name):
        return self.client.get_or_none("pods", ns, name)

    def wait_pod(self, ns, name, pred, timeout=15.0, what=None):
        return wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(self.pod(ns, name)),
                        timeout, what=what or ("pod %s/%s" % (ns, name)))

    def down(self):
        self.cluster.down(quiet=True)

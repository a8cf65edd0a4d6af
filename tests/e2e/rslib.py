"""Helpers for the RayService end-to-end tests (test_rayservice_*.py) and the
rayservice-reaction benchmark: RayService objects, serve requests through the
serve Service (the simulated kube-proxy), and a concurrent client that counts
every failed request."""

import http.client
import json
import threading
import time
import urllib.request

from clusterlib import cond, pod_ready, wait_for

RS_API = "/apis/ray.io/v1/namespaces/%s/rayservices"


def rs_path(ns, name=None):
    p = RS_API % ns
    return p + "/" + name if name else p


def rayservice(lc, ns, name):
    return lc.get_or_none(rs_path(ns, name))


def rs_status(lc, ns, name):
    rs = rayservice(lc, ns, name) or {}
    return rs.get("status") or {}


def rs_ready(lc, ns, name):
    """The RayService's Ready condition is True; returns its status."""
    st = rs_status(lc, ns, name)
    c = cond({"status": st}, "Ready")
    return st if c and c.get("status") == "True" and st.get("serviceStatus") == "Running" else None


def wait_rs_ready(lc, ns, name, timeout=90):
    return wait_for(lambda: rs_ready(lc, ns, name), timeout, 0.2, "RayService %s/%s Ready" % (ns, name))


def active_cluster(lc, ns, name):
    return (rs_status(lc, ns, name).get("activeServiceStatus") or {}).get("rayClusterName")


def owned_clusters(lc, ns, name):
    items = lc.get("/apis/ray.io/v1/namespaces/%s/rayclusters" % ns,
                   labelSelector="ray.io/originated-from-cr-name=%s" % name)["items"]
    return sorted(i["metadata"]["name"] for i in items if not i["metadata"].get("deletionTimestamp"))


def serve_host(ns, svc):
    return "%s.%s.svc.cluster.local" % (svc, ns)


def serve_request(host, path, body=None, port=8000, timeout=10.0, info=None):
    """POST (or GET without a body) through the serve Service; returns (status, text).
    With an info dict, its "port" is set to the connection's local port (which the
    service proxy's trace records as "peer")."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if info is not None:
            c.connect()
            info["port"] = c.sock.getsockname()[1]
        if body is None:
            c.request("GET", path)
        else:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            c.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def raysim_state(pod_ip):
    with urllib.request.urlopen("http://%s:19999/state" % pod_ip, timeout=5) as r:
        return json.loads(r.read().decode())


def ready_workers(lc, ns, cluster):
    return sorted(p["metadata"]["name"] for p in lc.pods(ns, cluster, "worker") if pod_ready(p))


def serve_endpoint_uids(lc, ns, svc):
    """UIDs of the ready endpoints of the serve Service's EndpointSlices."""
    items = lc.get("/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % ns,
                   labelSelector="kubernetes.io/service-name=%s" % svc)["items"]
    out = set()
    for s in items:
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") and (ep.get("targetRef") or {}).get("uid"):
                out.add(ep["targetRef"]["uid"])
    return out


class Client:
    """`concurrency` threads sending requests back to back through a Service; every
    answer other than `expect` (status 200 and the body) counts as a failure, with
    its cause kept (first 20)."""

    def __init__(self, host, path, body, expect, concurrency=8, port=8000, timeout=10.0):
        self.host, self.path, self.body, self.expect = host, path, body, expect
        self.port, self.timeout = port, timeout
        self.concurrency = concurrency
        self.ok = 0
        self.failed = 0
        self.causes = []
        self.first_failure = self.last_failure = None  # time.time() of the first and last failed request
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def _run(self):
        while not self._stop.is_set():
            info = {}
            t0 = time.time()
            try:
                st, text = serve_request(self.host, self.path, self.body, self.port, self.timeout, info)
                good = st == 200 and text.strip() == self.expect
                why = None if good else "HTTP %d %r" % (st, text[:120])
            except Exception as e:  # noqa: BLE001 - every failure is counted
                good, why = False, "%s: %s" % (type(e).__name__, e)
            if not good:
                why = "%s (local port %s, sent %.3f)" % (why, info.get("port"), t0)
            with self._lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.last_failure = time.time()
                    self.first_failure = self.first_failure or self.last_failure
                    if len(self.causes) < 200:
                        self.causes.append("%.3f %s" % (time.time(), why))

    def start(self):
        for _ in range(self.concurrency):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        return self.ok, self.failed

    def total(self):
        with self._lock:
            return self.ok + self.failed

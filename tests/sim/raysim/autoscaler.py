"""`ray kuberay-autoscaler`: a stand-in for Ray's KubeRay autoscaler entry point.

KubeRay puts a container named `autoscaler` next to the Ray head when
enableInTreeAutoscaling is set, running
`ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) --cluster-namespace $(RAY_CLUSTER_NAMESPACE)`
from the head's image (python/ray/scripts/scripts.py `kuberay_autoscaler`, which
calls ray/autoscaler/_private/kuberay/run_autoscaler.py). The stand-in keeps what a
pod and its operator can observe of that process:

- it waits for the head's GCS on <pod IP>:6379 (Ray hard-codes the port), checking
  every BACKOFF_S = 5 seconds and logging Ray's two messages;
- then it stays up, and every AUTOSCALER_UPDATE_INTERVAL_S (Ray's variable, 5 s)
  reads the RayCluster through the API server with the pod's service-account
  credentials (what AutoscalingConfigProducer does) and the node table from the
  GCS, and logs a summary line when it changed;
- SIGTERM or SIGINT ends it with exit code 0.

It never scales: it does not patch the RayCluster or delete pods. Real autoscaling
(resource demand, bin packing, idle timeouts) is out of the simulator's scope; see
docs/ray-simulator.md. Logs go to the container's stdout (info) and stderr
(warnings), as Ray's `_setup_logging` routes them; no monitor.log is written.
"""

import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request

from .gcs import GcsClient, GcsError

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
GCS_PORT = 6379  # run_autoscaler.py: build_address(head_ip, 6379)


def _env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return float(default)


def _log(level, where, msg):
    # Like ray_constants.LOGGER_FORMAT ("%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s --
    # %(message)s") without the line number: the file named is the Ray module whose step this is.
    ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    ms = int((time.time() % 1) * 1000)
    stream = sys.stderr if level in ("WARNING", "ERROR") else sys.stdout
    try:
        stream.write("%s,%03d\t%s %s -- %s\n" % (ts, ms, level, where, msg))
        stream.flush()
    except (OSError, ValueError):
        pass


class Standin:
    def __init__(self, cluster_name, namespace):
        self.name = cluster_name
        self.ns = namespace
        self.head_ip = os.environ.get("RW_SIM_POD_IP") or "127.0.0.1"
        self.address = "%s:%d" % (self.head_ip, GCS_PORT)
        self.backoff_s = _env_float("RW_SIM_AUTOSCALER_BACKOFF_S", 5)
        self.interval_s = _env_float("AUTOSCALER_UPDATE_INTERVAL_S", 5)
        self.stop = threading.Event()
        self.last_summary = None
        self.api_warned = False

    # ---------------------------------------------------------------- GCS
    def gcs_nodes(self):
        return GcsClient(self.address).call("get_all_node_info", {}, timeout=3.0)

    def wait_for_head(self):
        """run_kuberay_autoscaler's loop: `ray health-check` until it passes, then the
        head's raylet registered in the GCS (get_all_node_info_until_retrieved)."""
        for _ in range(10 ** 6):
            if self.stop.is_set():
                return False
            try:
                GcsClient(self.address).call("check_alive", {"node_ids": []}, timeout=3.0)
                if any(n.get("is_head") for n in self.gcs_nodes()):
                    _log("INFO", "run_autoscaler.py", "The Ray head is ready. Starting the autoscaler.")
                    return True
            except (GcsError, ValueError):
                pass
            _log("WARNING", "run_autoscaler.py",
                 "The Ray head is not ready. Will check again in %g seconds." % self.backoff_s)
            self.stop.wait(self.backoff_s)
        return False

    # ---------------------------------------------------------------- API server
    def read_raycluster(self):
        """GET the RayCluster like AutoscalingConfigProducer (in-cluster config), or None."""
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        try:
            with open(os.path.join(SA_DIR, "token")) as f:
                token = f.read().strip()
        except OSError:
            token = ""
        if not host or not token:
            if not self.api_warned:
                _log("WARNING", "autoscaling_config.py",
                     "No in-cluster credentials (KUBERNETES_SERVICE_HOST or %s/token missing); "
                     "the RayCluster is not read." % SA_DIR)
                self.api_warned = True
            return None
        ctx = ssl.create_default_context(cafile=os.path.join(SA_DIR, "ca.crt"))
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host
        url = "https://%s:%s/apis/ray.io/v1/namespaces/%s/rayclusters/%s" % (host, port, self.ns, self.name)
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token,
                                                   "Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return json.loads(r.read(1 << 22).decode("utf-8", "replace"))

    # ---------------------------------------------------------------- loop
    def summary(self, rc, nodes):
        alive = [n for n in nodes if n.get("state", "ALIVE") == "ALIVE"]
        parts = ["%d node(s) alive" % len(alive)]
        if rc is not None:
            for g in (rc.get("spec") or {}).get("workerGroupSpecs") or []:
                parts.append("group %s replicas=%s min=%s max=%s" % (
                    g.get("groupName"), g.get("replicas", 0), g.get("minReplicas", 0), g.get("maxReplicas", 0)))
        return "; ".join(parts)

    def update(self):
        try:
            rc = self.read_raycluster()
        except (OSError, ValueError, urllib.error.URLError) as exc:
            _log("WARNING", "autoscaling_config.py", "Failed to read RayCluster %s/%s: %s" % (
                self.ns, self.name, exc))
            rc = None
        try:
            nodes = self.gcs_nodes()
        except GcsError as exc:
            _log("WARNING", "monitor.py", "Failed to get the node table from the GCS: %s" % exc)
            return
        s = self.summary(rc, nodes)
        if s != self.last_summary:
            _log("INFO", "monitor.py", "RayCluster %s/%s: %s (simulator stand-in: no scaling decisions)" % (
                self.ns, self.name, s))
            self.last_summary = s

    def run(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        _log("INFO", "run_autoscaler.py", "kuberay-autoscaler stand-in for RayCluster %s/%s, GCS %s" % (
            self.ns, self.name, self.address))
        if not self.wait_for_head():
            return 0
        for _ in range(10 ** 9):
            if self.stop.is_set():
                break
            self.update()
            self.stop.wait(self.interval_s)
        _log("INFO", "monitor.py", "Autoscaler stand-in exiting.")
        return 0

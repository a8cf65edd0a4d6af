"""Helpers of the autoscaling end-to-end test and benchmark (tests/e2e/test_autoscaling.py,
tests/bench/autoscaling): KubeRay's autoscaler samples, and a watch on one RayCluster that
records its worker pods and every name its autoscaler put in scaleStrategy.workersToDelete.

The samples come from KubeRay's own source (config/samples of the pinned release, through
kubesim.operators.src_dir()), else from shared/corpus (which has the v1 sample only)."""

import copy
import json
import os
import threading
import time

from clusterlib import corpus_sample, pod_ready
from kubesim.kubeclient import Informer, KubeClient

V1_SAMPLE = "ray-cluster.autoscaler.yaml"
V2_SAMPLE = "ray-cluster.autoscaler-v2.yaml"
CLUSTER = "raycluster-autoscaler"  # both samples' metadata.name


def sample_path(name):
    """Path of a KubeRay sample, or None when neither KubeRay's source nor the corpus has it."""
    try:
        from kubesim import operators
        p = os.path.join(operators.src_dir(), "config", "samples", name)
        if os.path.exists(p):
            return p
    except Exception:  # upstream.Missing: no KubeRay build here
        pass
    return corpus_sample(name)


def sample_objects(lc, path, ns, idle_s=None):
    """The sample's objects (kubectl's JSON) placed in ns. idle_s: a copy whose
    autoscalerOptions.idleTimeoutSeconds is idle_s instead of the sample's 60 s; nothing else
    changes."""
    text = lc.kubectl("create", "--dry-run=client", "-o", "json", "-f", path)
    dec, i, objs = json.JSONDecoder(), 0, []
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        o, i = dec.raw_decode(text, i)
        objs += o["items"] if o.get("kind") == "List" else [o]
    out = []
    for o in objs:
        o = copy.deepcopy(o)
        o["metadata"]["namespace"] = ns
        if o["kind"] == "RayCluster" and idle_s is not None:
            o["spec"]["autoscalerOptions"]["idleTimeoutSeconds"] = idle_s
        out.append(o)
    return out


def apply_objs(lc, objs):
    lc.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))


class ClusterWatch:
    """Pod and RayCluster watches on one RayCluster, each event stamped with time.monotonic()
    on arrival: worker pods by name (first seen, Ready, deletion started, gone), the head pod's
    uid, the group's replicas, and every name ever listed in workersToDelete."""

    def __init__(self, state, ns, cluster=CLUSTER):
        self.ns = ns
        self.cluster = cluster
        self.cv = threading.Condition()
        self.workers = {}  # name -> {"seen", "ready", "deleting", "gone", "uid"}
        self.heads = set()  # head pod uids
        self.named = set()
        # name -> resourceVersion of the first RayCluster version listing it, and of the first pod
        # version with a deletionTimestamp. On the real control plane a resourceVersion is etcd's
        # revision, one counter for all kinds, so these order the two writes; the arrival times
        # above cannot (two watch streams, each in its own thread).
        self.named_rv = {}
        self.deleting_rv = {}
        self.named_log = []  # (t, [names]) on every change of the list
        self.replicas = []  # (t, replicas)
        client = KubeClient.from_state_dir(state, user_agent="e2e-autoscaling", timeout=60)
        self.pods = Informer(client, "pods", self._on_pod, namespace=ns,
                             label_selector="ray.io/cluster=%s" % cluster)
        self.rcs = Informer(client, "rayclusters", self._on_rc, namespace=ns)

    def start(self):
        self.pods.start()
        self.rcs.start()
        return self

    def stop(self):
        self.pods.stop()
        self.rcs.stop()

    def _on_pod(self, etype, pod, old):
        now = time.monotonic()
        md = pod["metadata"]
        kind = (md.get("labels") or {}).get("ray.io/node-type")
        if kind not in ("head", "worker"):
            return  # a RayJob's submitter pod, say
        with self.cv:
            if kind == "head":
                self.heads.add(md["uid"])
            else:
                w = self.workers.setdefault(md["name"], {"seen": now, "ready": None, "deleting": None, "gone": None,
                                                         "uid": md["uid"]})
                if w["ready"] is None and pod_ready(pod):
                    w["ready"] = now
                if w["deleting"] is None and md.get("deletionTimestamp"):
                    w["deleting"] = now
                if md.get("deletionTimestamp") and md["name"] not in self.deleting_rv:
                    self.deleting_rv[md["name"]] = int(md.get("resourceVersion") or 0)
                if etype == "DELETED" and w["gone"] is None:
                    w["gone"] = now
                    if w["deleting"] is None:
                        w["deleting"] = now  # removed before a watch event showed its deletionTimestamp
            self.cv.notify_all()

    def _on_rc(self, etype, rc, old):
        if rc["metadata"]["name"] != self.cluster:
            return
        now = time.monotonic()
        with self.cv:
            for g in rc["spec"].get("workerGroupSpecs") or []:
                names = list((g.get("scaleStrategy") or {}).get("workersToDelete") or [])
                if not self.named_log or self.named_log[-1][1] != names:
                    self.named_log.append((now, names))
                self.named.update(names)
                for n in names:
                    self.named_rv.setdefault(n, int(rc["metadata"].get("resourceVersion") or 0))
                r = g.get("replicas", 0)
                if not self.replicas or self.replicas[-1][1] != r:
                    self.replicas.append((now, r))
            self.cv.notify_all()

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.0f s waiting for %s; workers %s, named %s, replicas %s"
                                         % (timeout, what, self.workers, sorted(self.named), self.replicas))
                self.cv.wait(min(left, 1.0))

    def live_workers(self):
        return sorted(n for n, w in self.workers.items() if w["gone"] is None)

    def ready_workers(self):
        return sorted(n for n, w in self.workers.items() if w["ready"] is not None and w["gone"] is None
                      and w["deleting"] is None)

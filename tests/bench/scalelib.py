"""Pieces shared by the RayCluster scale benchmarks (tests/bench/controller-scale,
tests/bench/side-by-side-scale) that run against a ctlsim.World: a pod watch that records when
each Ray pod was first seen and Running, waiting for every RayCluster's status to say ready,
and the head-of-line measurement (one cluster scales 0 -> S workers while probe clusters are
created). Python standard library only.
"""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
import ctlsim  # noqa: E402


class PodWatch(ctlsim.PodWatch):
    """Watches Ray pods and records when each was first seen, and when Running."""

    def __init__(self, world):
        self.lock = threading.RLock()  # wait()'s conditions call count(), which takes it too
        self.first = {}  # pod uid -> (cluster, time first seen)
        self.running = set()
        self.by_cluster = {}  # cluster -> set of live pod uids
        self.cv = threading.Condition(self.lock)
        self.events = 0
        ctlsim.PodWatch.__init__(self, world)

    def note(self, etype, p, now):
        md = p.get("metadata") or {}
        uid = md.get("uid")
        cl = (md.get("labels") or {}).get("ray.io/cluster")
        with self.cv:
            self.events += 1
            if etype == "DELETED":
                self.by_cluster.get(cl, set()).discard(uid)
                self.running.discard(uid)
            else:
                if uid not in self.first:
                    self.first[uid] = (cl, now)
                    self.by_cluster.setdefault(cl, set()).add(uid)
                if (p.get("status") or {}).get("phase") == "Running":
                    self.running.add(uid)
            self.cv.notify_all()

    def count(self, cluster=None):
        with self.lock:
            if cluster is not None:
                return len(self.by_cluster.get(cluster, ()))
            return sum(len(s) for s in self.by_cluster.values())

    def wait(self, cond, timeout, what=None):
        """Wait until cond() holds; with `what`, a progress line every 10 s says how many pods
        the watch has seen."""
        deadline = time.monotonic() + timeout
        ticker = benchlib.Ticker()
        with self.cv:
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if what:
                    ticker.tick("waiting for %s: %d pods seen, %d Running", what, self.count(), len(self.running))
                self.cv.wait(min(left, 0.5))
        return True


def wait_all(w, n, pred, timeout, since=None, namespace="default", interval=0.5):
    """Wait until pred(cluster) holds for n RayClusters of namespace (listed every interval
    seconds). Returns (seconds from `since` (a time.monotonic(); default: now) or None after
    the timeout, how many held at the end)."""
    t0 = time.monotonic() if since is None else since
    deadline = time.monotonic() + timeout
    ticker = benchlib.Ticker()
    got = 0
    while True:
        got = sum(1 for c in w.clusters(namespace) if pred(c))
        if got >= n:
            return time.monotonic() - t0, got
        if time.monotonic() >= deadline:
            return None, got
        ticker.tick("waiting for RayClusters: %d of %d", got, n)
        time.sleep(interval)


def is_ready(c):
    """The RayCluster's status says ready (status.state, KubeRay's field)."""
    return (c.get("status") or {}).get("state") == "ready"


def wait_all_ready(w, n, timeout, since=None, namespace="default"):
    """wait_all() for status.state "ready"."""
    return wait_all(w, n, is_ready, timeout, since, namespace)


def head_of_line(w, watch, scale_to, timeout, probes=20, spacing=0.5):
    """With whatever runs in w, one more cluster ("big", head only) is scaled from 0 to scale_to
    workers; shortly after (50 ms) and then every `spacing` seconds, up to `probes` probe
    clusters of 1 head + 3 workers are created (fewer when the big cluster's pods are all there
    first). Per probe: the time from its POST's answer until all 4 of its pods were seen on the
    watch. Returns {"scale_to", "big_scale_s", "probes": [...], "probes_during_scale",
    "worst_probe_pods_s"}."""
    benchlib.progress("head of line: cluster \"big\" (head only), then 0 -> %d workers with probe clusters", scale_to)
    big = ctlsim.raycluster("big", workers=0, max_replicas=scale_to)
    w.apply_cluster(big)
    if not watch.wait(lambda: watch.count("big") >= 1, 120):
        raise RuntimeError("big: no head pod")
    ctlsim.wait_for(lambda: (w.get_cluster("big").get("status") or {}).get("state") == "ready", 120,
                    what="big ready", interval=0.2)
    t_scale = time.monotonic()
    w.scale("big", 0, scale_to)
    made = []
    delays = [0.05] + [spacing * i for i in range(1, probes)]
    for i, d in enumerate(delays):
        while time.monotonic() < t_scale + d:
            time.sleep(0.005)
        n_big = watch.count("big") - 1
        if n_big >= scale_to and i > 0:
            break
        name = "probe-%02d" % i
        w.apply_cluster(ctlsim.raycluster(name, workers=3))
        made.append((name, time.monotonic(), n_big))
    big_done = None
    benchlib.progress("head of line: %d probe clusters created; waiting for big's %d workers", len(made), scale_to)
    if watch.wait(lambda: watch.count("big") >= scale_to + 1, timeout, what="big's workers"):
        big_done = max(t for (cl, t) in watch.first.values() if cl == "big") - t_scale
    lat = []
    for name, t_created, n_big in made:
        watch.wait(lambda: watch.count(name) >= 4, 30)
        seen = sorted(t for (cl, t) in watch.first.values() if cl == name)
        got = seen[3] - t_created if len(seen) >= 4 else None
        lat.append({"probe": name, "big_workers_at_create": n_big,
                    "pods_s": round(got, 3) if got is not None else None})
    during = [x for x in lat if x["big_workers_at_create"] < scale_to]
    worst = max((x["pods_s"] if x["pods_s"] is not None else 1e9) for x in (during or lat))
    return {"scale_to": scale_to, "big_scale_s": round(big_done, 2) if big_done else None,
            "probes": lat, "probes_during_scale": len(during), "worst_probe_pods_s": round(worst, 3)}


def print_head_of_line(h):
    print("head of line: big cluster 0 -> %d workers in %s s; %d probe clusters created during the "
          "scale-up" % (h["scale_to"], h["big_scale_s"], h["probes_during_scale"]))
    for x in h["probes"]:
        print("  %s (big had %d workers): 4 pods after %s s" % (x["probe"], x["big_workers_at_create"], x["pods_s"]))

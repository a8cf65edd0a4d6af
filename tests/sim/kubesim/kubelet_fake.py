"""Fake kubelet: Nodes and pod status without processes, in the spirit of kwok
(https://kwok.sigs.k8s.io/): every pod bound to one of its Nodes is marked Running and
Ready at once, and a pod being deleted is finished at once. Nothing is started, so
thousands of pods cost the host nothing but API requests. For controller scale and
fault tests, where what runs inside the pods does not matter.

Run:  python3 -m kubesim.kubelet_fake --state-dir DIR [--nodes N] [--threads 8]
                                     [--gates set|respect] [--selector SEL]
      (cwd or PYTHONPATH = tests/sim; the API server must be running in DIR)

What it does, per pod (it keeps a few fields per pod, never the objects):

- A pending pod (no spec.nodeName, default scheduler) is bound through pods/binding to
  the next node, round robin (the scheduler's job, folded in as the real simulator
  kubelet does).
- A pod on one of its nodes that is not yet Running gets one merge patch of /status:
  phase Running, podIP from 10.244.<node>.0/24 style ranges (never dialled), hostIP,
  startTime, conditions PodScheduled, Initialized, ContainersReady and Ready (True),
  and a running, ready status for every container and init container (the init
  containers terminated with exit code 0).
- Readiness gates: with --gates set (default) the fake kubelet also writes each gate's
  condition True, as kwok's default stages do, since no agent runs to report. With
  --gates respect it leaves gate conditions to their owner, and Ready is True only
  when every gate's condition is True (recomputed when the owner changes one), as the
  real kubelet does.
- A pod with a deletionTimestamp is deleted with gracePeriodSeconds 0 and a UID
  precondition (the kubelet's status manager does this once the containers are gone).

Every write is retried with back-off on 409/429/5xx and connection errors (a 404 ends
it), so the fake kubelet keeps working while the API server's /_sim/faults inject
errors, and a dropped watch is resumed from the last resourceVersion (410: relist).

Control endpoint (address in DIR/kubelet.json, as for the real simulator kubelet):
GET /stats -> {"bound", "started", "deleted", "retries", "requests", "pods", "errors"}.
"""

import argparse
import heapq
import http.client
import http.server
import json
import os
import signal
import sys
import threading
import time

from . import gcpause, nodelease
from .kubeclient import ApiError, KubeClient, rfc3339

MERGE_PATCH = "application/merge-patch+json"
RETRY_CODES = (409, 429, 500, 502, 503, 504)


def log(msg):
    sys.stderr.write("%s kubelet-fake: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class PodRec:
    """What the fake kubelet remembers about one pod."""

    __slots__ = ("ns", "name", "uid", "node", "phase", "deleting", "gates", "gates_true", "running")

    def __init__(self):
        self.ns = self.name = self.uid = self.node = self.phase = None
        self.deleting = False
        self.gates = ()
        self.gates_true = True
        self.running = False


def summarise(pod, gates="set"):
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    st = pod.get("status") or {}
    r = PodRec()
    r.ns = md.get("namespace") or "default"
    r.name = md.get("name")
    r.uid = md.get("uid")
    r.node = spec.get("nodeName")
    r.phase = st.get("phase")
    r.deleting = bool(md.get("deletionTimestamp"))
    r.gates = tuple(g.get("conditionType") for g in spec.get("readinessGates") or [] if g.get("conditionType"))
    conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
    r.gates_true = all(conds.get(g) == "True" for g in r.gates)
    if gates == "set":
        r.running = r.phase == "Running"
    else:
        # Ready must follow the gates (the real kubelet recomputes it when an owner changes one).
        r.running = r.phase == "Running" and conds.get("Ready") == ("True" if r.gates_true else "False")
    return r


class FakeKubelet:
    def __init__(self, state_dir, nodes=1, threads=8, gates="set", selector=None, node_prefix="fake-node-",
                 client=None, leases=False):
        self.state_dir = os.path.abspath(state_dir)
        self.client = client or KubeClient.from_state_dir(self.state_dir, user_agent="kubesim-kubelet-fake")
        self.node_names = ["%s%d" % (node_prefix, i + 1) for i in range(nodes)]
        self.threads = max(1, int(threads))
        self.gates = gates
        self.selector = selector
        self.pods = {}  # ns/name -> PodRec
        self.started = set()  # uids this kubelet has written Running
        self.node_set = frozenset(self.node_names)
        self.rr = 0
        self.ips = {n: 0 for n in self.node_names}
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.queue = []  # heap of (due, seq, key)
        self.queued = set()
        self.seq = 0
        self.stopping = threading.Event()
        self.stats = {"bound": 0, "started": 0, "deleted": 0, "retries": 0, "requests": 0, "errors": 0}
        self.control = None
        self._watch = None
        self.synced = threading.Event()
        self.leases = leases  # renew node Leases (a real control plane's node lifecycle controller reads them)

    # -- nodes -------------------------------------------------------------------------

    def node_object(self, i, name):
        now = rfc3339()

        def c(t, status, reason, msg):
            return {"type": t, "status": status, "reason": reason, "message": msg,
                    "lastHeartbeatTime": now, "lastTransitionTime": now}

        alloc = {"cpu": "1000", "memory": "4Ti", "pods": "10000", "ephemeral-storage": "10Ti"}
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64", "type": "kwok"},
                         "annotations": {"kwok.x-k8s.io/node": "fake"}},
            "spec": {"podCIDR": "10.244.%d.0/24" % i},
            "status": {"capacity": dict(alloc), "allocatable": dict(alloc),
                       "conditions": [c("Ready", "True", "KubeletReady", "kubelet is posting ready status")],
                       "addresses": [{"type": "InternalIP", "address": "10.250.0.%d" % i}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0-fake", "containerRuntimeVersion": "fake://1.0",
                                    "operatingSystem": "linux", "architecture": "amd64"}},
        }

    def register_nodes(self):
        for i, n in enumerate(self.node_names, 1):
            obj = self.node_object(i, n)
            for _ in range(50):
                try:
                    if self.client.get_or_none("nodes", None, n) is None:
                        self.client.create("nodes", None, obj)
                    self.client.patch("nodes", None, n, {"status": obj["status"]}, sub="status")
                    break
                except (ApiError, OSError) as e:
                    log("node %s: %s (retrying)" % (n, e))
                    time.sleep(0.1)

    # -- queue -------------------------------------------------------------------------

    def enqueue(self, key, delay=0.0):
        with self.cv:
            if key in self.queued and delay == 0.0:
                return
            self.queued.add(key)
            self.seq += 1
            heapq.heappush(self.queue, (time.monotonic() + delay, self.seq, key))
            self.cv.notify()

    def worker(self):
        while not self.stopping.is_set():
            with self.cv:
                while not self.stopping.is_set():
                    if self.queue and self.queue[0][0] <= time.monotonic():
                        _, _, key = heapq.heappop(self.queue)
                        self.queued.discard(key)
                        rec = self.pods.get(key)
                        break
                    wait = (self.queue[0][0] - time.monotonic()) if self.queue else 1.0
                    self.cv.wait(max(0.001, min(wait, 1.0)))
                else:
                    return
            if rec is None:
                continue
            try:
                self.sync(rec)
            except ApiError as e:
                if e.code == 404:
                    continue
                with self.lock:
                    self.stats["retries"] += 1
                    if e.code not in RETRY_CODES:
                        self.stats["errors"] += 1
                        log("%s/%s: %s" % (rec.ns, rec.name, e))
                self.enqueue(key, 0.05 if e.code in RETRY_CODES else 1.0)
            except (OSError, http.client.HTTPException, ValueError) as e:
                with self.lock:
                    self.stats["retries"] += 1
                log("%s/%s: %s (retrying)" % (rec.ns, rec.name, e))
                self.enqueue(key, 0.2)
            except Exception as e:  # a bug here must not stop the worker
                with self.lock:
                    self.stats["errors"] += 1
                log("%s/%s: unexpected %r" % (rec.ns, rec.name, e))
                self.enqueue(key, 1.0)

    def count(self, what, n=1):
        with self.lock:
            self.stats[what] += n

    # -- per pod -------------------------------------------------------------------------

    def sync(self, rec):
        if rec.deleting:
            if rec.node is None:
                return  # the API server deletes unbound pods itself
            self.count("requests")
            try:
                self.client.delete("pods", rec.ns, rec.name, grace=0, uid=rec.uid)
            except ApiError as e:
                # 409 on the UID precondition: the name belongs to another incarnation now.
                if e.code == 404 or (e.code == 409 and "precondition" in str(e.body).lower()):
                    return
                raise
            self.count("deleted")
            return
        if rec.node is None:
            node = self.pick_node()
            binding = {"apiVersion": "v1", "kind": "Binding",
                       "metadata": {"name": rec.name, "namespace": rec.ns, "uid": rec.uid},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
            self.count("requests")
            try:
                self.client.create("pods", rec.ns, binding, sub="binding", name=rec.name)
            except ApiError as e:
                if e.code != 409 or "already" not in str(e.body).lower():
                    raise
                return  # bound by someone else: the watch tells us where
            with self.lock:
                if rec.node is None:
                    rec.node = node
            self.count("bound")
        if rec.node not in self.node_set or rec.running:
            return
        self.run_pod(rec)

    def pick_node(self):
        # Round robin: the fake nodes have room for everything.
        with self.lock:
            self.rr += 1
            return self.node_names[self.rr % len(self.node_names)]

    def pod_ip(self, node):
        with self.lock:
            self.ips[node] += 1
            n = self.ips[node]
        i = self.node_names.index(node) + 1
        return "10.%d.%d.%d" % (100 + i % 100, (n >> 8) & 255, n & 255)

    def run_pod(self, rec):
        """One status write: Running and Ready, with every container running."""
        self.count("requests")
        pod = self.client.get("pods", rec.ns, rec.name)
        md = pod.get("metadata") or {}
        if md.get("uid") != rec.uid or md.get("deletionTimestamp"):
            return
        if summarise(pod, self.gates).running:
            with self.lock:
                rec.running = True  # an earlier write of this kubelet already did it
                if self.gates == "set":
                    self.started.add(rec.uid)
            return
        spec = pod.get("spec") or {}
        st = pod.get("status") or {}
        now = rfc3339()
        conds = {c.get("type"): c for c in st.get("conditions") or []}
        gate_types = [g.get("conditionType") for g in spec.get("readinessGates") or [] if g.get("conditionType")]
        if self.gates == "set":
            for g in gate_types:
                if (conds.get(g) or {}).get("status") != "True":
                    conds[g] = {"type": g, "status": "True", "lastProbeTime": None, "lastTransitionTime": now,
                                "reason": "FakeKubelet", "message": "set by the fake kubelet"}
        gates_ok = all((conds.get(g) or {}).get("status") == "True" for g in gate_types)

        def cond(t, ok, reason=None):
            c = {"type": t, "status": "True" if ok else "False", "lastProbeTime": None,
                 "lastTransitionTime": (conds.get(t) or {}).get("lastTransitionTime") or now}
            if (conds.get(t) or {}).get("status") != c["status"]:
                c["lastTransitionTime"] = now
            if reason:
                c["reason"] = reason
            return c

        ip = st.get("podIP") or self.pod_ip(rec.node)
        new_conds = [cond("PodReadyToStartContainers", True), cond("Initialized", True),
                     cond("Ready", gates_ok, None if gates_ok else "ReadinessGatesNotReady"),
                     cond("ContainersReady", True), cond("PodScheduled", True)]
        own = {c["type"] for c in new_conds}
        new_conds += [c for t, c in conds.items() if t not in own]

        def cstatus(c, init=False):
            s = {"name": c.get("name"), "image": c.get("image") or "", "imageID": "fake://" + (c.get("image") or ""),
                 "containerID": "fake://%s-%s" % (rec.uid, c.get("name")), "restartCount": 0}
            if init:
                s.update(ready=True, started=False,
                         state={"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now,
                                               "finishedAt": now}})
            else:
                s.update(ready=True, started=True, state={"running": {"startedAt": now}})
            return s

        status = {"phase": "Running", "conditions": new_conds, "podIP": ip, "podIPs": [{"ip": ip}],
                  "hostIP": "10.250.0.%d" % (self.node_names.index(rec.node) + 1),
                  "startTime": st.get("startTime") or now, "qosClass": st.get("qosClass") or "BestEffort",
                  "containerStatuses": [cstatus(c) for c in spec.get("containers") or []]}
        if spec.get("initContainers"):
            status["initContainerStatuses"] = [cstatus(c, True) for c in spec["initContainers"]]
        self.count("requests")
        self.client.request("PATCH", self.client.path("pods", rec.ns, rec.name, "status"),
                            {"metadata": {"uid": rec.uid}, "status": status}, ctype=MERGE_PATCH)
        with self.lock:
            rec.running = True
            if rec.uid not in self.started:
                self.started.add(rec.uid)
                self.stats["started"] += 1

    # -- watch -----------------------------------------------------------------------------

    def on_event(self, etype, pod):
        md = pod.get("metadata") or {}
        key = "%s/%s" % (md.get("namespace") or "default", md.get("name"))
        with self.lock:
            old = self.pods.get(key)
            if etype == "DELETED":
                if old is not None and old.uid == md.get("uid"):
                    del self.pods[key]
                self.started.discard(md.get("uid"))
                return
            rec = summarise(pod, self.gates)
            if self.gates == "set" and rec.uid in self.started:
                # Written Running by this kubelet: events older than that write change nothing.
                rec.running = True
            self.pods[key] = rec
        if rec.phase in ("Succeeded", "Failed") and not rec.deleting:
            return
        if rec.node is None and (pod.get("spec") or {}).get("schedulerName",
                                                                "default-scheduler") != "default-scheduler":
            return
        if rec.deleting or rec.node is None or (rec.node in self.node_set and not rec.running):
            self.enqueue(key)

    def relist(self):
        q = {}
        if self.selector:
            q["labelSelector"] = self.selector
        lst = self.client.request("GET", self.client.path("pods"), query=q or None)
        seen = set()
        for it in lst.get("items") or []:
            md = it.get("metadata") or {}
            seen.add("%s/%s" % (md.get("namespace") or "default", md.get("name")))
            self.on_event("ADDED", it)
        with self.lock:
            gone = [k for k in self.pods if k not in seen]
        for k in gone:
            rec = self.pods.get(k)
            if rec is not None:
                self.on_event("DELETED", {"metadata": {"namespace": rec.ns, "name": rec.name, "uid": rec.uid}})
        return (lst.get("metadata") or {}).get("resourceVersion")

    def watch_loop(self):
        rv = None
        failures = 0
        while not self.stopping.is_set():
            try:
                if rv is None:
                    rv = self.relist()
                    self.synced.set()
                self._watch = self.client.open_watch("pods", None, rv, self.selector)
                failures = 0
                for ev in self._watch:
                    if self.stopping.is_set():
                        break
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":
                        if obj.get("code") == 410:
                            rv = None
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if ev.get("type") == "BOOKMARK":
                        continue
                    self.on_event(ev.get("type"), obj)
                self._watch.close()
            except ApiError as e:
                if e.code == 410:
                    rv = None
                    continue
                failures += 1
            except (OSError, http.client.HTTPException, ValueError):
                failures += 1
            if failures:
                self.stopping.wait(min(0.05 * (2 ** min(failures, 6)), 2.0))

    # -- control -------------------------------------------------------------------------------

    def snapshot(self):
        with self.lock:
            st = dict(self.stats)
            st["pods"] = len(self.pods)
            st["queued"] = len(self.queue)
        return st

    def start_control(self, port=0):
        fk = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.split("?")[0] == "/stats":
                    data = json.dumps(fk.snapshot()).encode()
                    code = 200
                else:
                    data, code = b'{"error": "not found"}', 404
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.control = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.control.daemon_threads = True
        threading.Thread(target=self.control.serve_forever, daemon=True, name="control").start()
        return "http://127.0.0.1:%d" % self.control.server_address[1]

    def start(self, control_port=0):
        self.register_nodes()
        if self.leases:
            nodelease.start(self.client, lambda: self.node_names, self.stopping, log)
        for i in range(self.threads):
            threading.Thread(target=self.worker, daemon=True, name="worker-%d" % i).start()
        threading.Thread(target=self.watch_loop, daemon=True, name="watch").start()
        url = self.start_control(control_port)
        self.synced.wait(30)
        info = {"pid": os.getpid(), "control_url": url, "nodes": self.node_names, "fake": True}
        tmp = os.path.join(self.state_dir, "kubelet.json.tmp")
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, os.path.join(self.state_dir, "kubelet.json"))
        return url

    def stop(self):
        self.stopping.set()
        with self.cv:
            self.cv.notify_all()
        w = self._watch
        if w is not None:
            w.close()
        if self.control:
            self.control.shutdown()
            self.control.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake kubelet (no processes; pods Running/Ready at once)")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--node-prefix", default="fake-node-")
    ap.add_argument("--threads", type=int, default=8, help="concurrent API writers (8)")
    ap.add_argument("--gates", choices=("set", "respect"), default="set",
                    help="set: write readiness-gate conditions True; respect: leave them to their owner")
    ap.add_argument("--selector", default=None, help="label selector of the pods to handle (all)")
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--leases", action="store_true", help="renew each Node's Lease (for a real control plane)")
    args = ap.parse_args(argv)
    k = FakeKubelet(args.state_dir, args.nodes, args.threads, args.gates, args.selector, args.node_prefix,
                    leases=args.leases)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    url = k.start(args.control_port)
    log("ready: nodes %s, control %s, gates %s" % (",".join(k.node_names), url, args.gates))
    gcpause.log_pauses("kubelet-fake")
    gcpause.freeze_periodically(stop)
    while not stop.wait(1.0):
        pass
    k.stop()
    log("stopped")


if __name__ == "__main__":
    main()

"""Controller-manager simulator: the endpoints and EndpointSlice controllers, a
Deployment controller (pods owned directly by the Deployment, no ReplicaSets),
the batch/v1 Job controller (plus Job TTL-after-finished), the ServiceAccount
controller (`default` in every namespace), the root CA publisher (kube-root-ca.crt)
and the namespace controller (empties and finalizes terminating namespaces), all as
REST clients of the API server.

Run:  python3 -m kubesim.controllers --state-dir DIR      (cwd or PYTHONPATH = tests/sim)
"""

import argparse
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time

from .kubeclient import ApiError, Informer, KubeClient, parse_rfc3339, rfc3339


def log(msg):
    sys.stderr.write("%s controllers: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------------
# Label selectors (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors).
# ---------------------------------------------------------------------------------


def match_labels(selector, labels):
    """Service-style equality selector: every key/value present.  An empty
    selector matches nothing here (Services without a selector are not managed)."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def match_label_selector(sel, labels):
    """metav1.LabelSelector (matchLabels + matchExpressions); an empty selector
    matches everything (apimachinery LabelSelectorAsSelector)."""
    labels = labels or {}
    sel = sel or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def pod_ready(pod):
    """podutil.IsPodReady: the Ready condition is True."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def ready_since(pod):
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return parse_rfc3339(c.get("lastTransitionTime"))
    return None


def owned_by(obj, uid):
    for o in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if o.get("uid") == uid and o.get("controller"):
            return True
    return False


def controller_uid(obj):
    for o in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if o.get("controller"):
            return o.get("uid")
    return None


class WorkQueue:
    """A de-duplicating work queue with delayed adds (client-go workqueue)."""

    def __init__(self):
        self.cv = threading.Condition()
        self.items = []
        self.set = set()
        self.closed = False

    def add(self, key):
        with self.cv:
            if key not in self.set:
                self.set.add(key)
                self.items.append(key)
                self.cv.notify()

    def add_after(self, key, delay):
        t = threading.Timer(max(0.0, delay), self.add, args=(key,))
        t.daemon = True
        t.start()

    def get(self, timeout=1.0):
        with self.cv:
            if not self.items and not self.closed:
                self.cv.wait(timeout)
            if not self.items:
                return None
            key = self.items.pop(0)
            self.set.discard(key)
            return key

    def close(self):
        with self.cv:
            self.closed = True
            self.cv.notify_all()


def run_queue(name, q, sync, stop):
    def loop():
        while not stop.is_set():
            key = q.get(0.5)
            if key is None:
                continue
            try:
                sync(key)
            except ApiError as e:
                if e.code != 409:
                    log("%s %s: %s" % (name, key, e))
                q.add_after(key, 0.2)
            except OSError as e:
                log("%s %s: %s" % (name, key, e))
                q.add_after(key, 0.5)
            except Exception as e:
                import traceback

                traceback.print_exc()
                log("%s %s: %s" % (name, key, e))
                q.add_after(key, 1.0)

    t = threading.Thread(target=loop, daemon=True, name=name)
    t.start()
    return t


def split_key(key):
    ns, _, name = key.partition("/")
    return ns, name


# ---------------------------------------------------------------------------------
# Endpoints and EndpointSlices.
# ---------------------------------------------------------------------------------

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
SERVICE_NAME = "kubernetes.io/service-name"


def find_port(pod, svc_port):
    """Target port of a Service port on a pod (pkg/api/v1/pod/util.go FindPort):
    a number is used as is (targetPort defaults to port), a name is looked up in the
    pod's container ports with the same protocol; None when the pod has no such port."""
    tp = svc_port.get("targetPort", svc_port.get("port"))
    proto = svc_port.get("protocol") or "TCP"
    if isinstance(tp, int):
        return tp
    s = str(tp)
    if s.isdigit():
        return int(s)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == s and (p.get("protocol") or "TCP") == proto:
                return int(p.get("containerPort"))
    return None


def pod_in_endpoints(pod, include_terminating):
    """endpointslice util ShouldPodBeInEndpoints: no IP or a terminal phase keeps a
    pod out; a terminating pod only when asked for."""
    st = pod.get("status") or {}
    if not st.get("podIP"):
        return False
    if st.get("phase") in ("Succeeded", "Failed"):
        return False
    if (pod.get("metadata") or {}).get("deletionTimestamp") and not include_terminating:
        return False
    return True


def endpoint_for_pod(svc, pod):
    """One discovery/v1 Endpoint (staging/src/k8s.io/endpointslice/utils.go podToEndpoint):
    serving = pod Ready; terminating = deletionTimestamp set; ready = serving and
    not terminating, or always true with publishNotReadyAddresses
    (https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#conditions)."""
    spec = svc.get("spec") or {}
    md = pod.get("metadata") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    serving = pod_ready(pod)
    terminating = bool(md.get("deletionTimestamp"))
    ready = publish or (serving and not terminating)
    ep = {"addresses": [pod["status"]["podIP"]],
          "conditions": {"ready": ready, "serving": serving or publish, "terminating": terminating},
          "targetRef": {"kind": "Pod", "namespace": md.get("namespace"), "name": md.get("name"), "uid": md.get("uid")}}
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        ep["nodeName"] = node
    pspec = pod.get("spec") or {}
    if pspec.get("hostname") and pspec.get("subdomain") == svc["metadata"]["name"] and spec.get("clusterIP") == "None":
        ep["hostname"] = pspec["hostname"]
    return ep


def desired_endpoints(svc, pods):
    """Returns (slices, subsets): slices is {port signature: (ports, [endpoint])};
    subsets are the v1 Endpoints subsets."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    groups = {}
    sub_groups = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if not pod_in_endpoints(pod, True):
            continue
        ports = []
        for sp in spec.get("ports") or []:
            tp = find_port(pod, sp)
            if tp is None:
                continue
            p = {"name": sp.get("name", ""), "port": tp, "protocol": sp.get("protocol") or "TCP"}
            if sp.get("appProtocol"):
                p["appProtocol"] = sp["appProtocol"]
            ports.append(p)
        sig = json.dumps(ports, sort_keys=True)
        ep = endpoint_for_pod(svc, pod)
        groups.setdefault(sig, (ports, []))[1].append(ep)
        # v1 Endpoints (pkg/controller/endpoint/endpoints_controller.go): terminating
        # pods only with publishNotReadyAddresses; ready ones in addresses, the rest
        # in notReadyAddresses.
        if not pod_in_endpoints(pod, publish):
            continue
        if not ports:
            continue
        addr = {"ip": ep["addresses"][0], "targetRef": dict(ep["targetRef"])}
        if ep.get("nodeName"):
            addr["nodeName"] = ep["nodeName"]
        if ep.get("hostname"):
            addr["hostname"] = ep["hostname"]
        eports = [{k: v for k, v in p.items()} for p in ports]
        g = sub_groups.setdefault(json.dumps(eports, sort_keys=True), {"addresses": [], "notReadyAddresses": [], "ports": eports})
        if publish or pod_ready(pod):
            g["addresses"].append(addr)
        else:
            g["notReadyAddresses"].append(addr)
    subsets = []
    for k in sorted(sub_groups):
        g = sub_groups[k]
        s = {"ports": g["ports"]}
        if g["addresses"]:
            s["addresses"] = sorted(g["addresses"], key=lambda a: a["ip"])
        if g["notReadyAddresses"]:
            s["notReadyAddresses"] = sorted(g["notReadyAddresses"], key=lambda a: a["ip"])
        subsets.append(s)
    return groups, subsets


class EndpointsController:
    def __init__(self, client, stop):
        self.client = client
        self.stop = stop
        self.q = WorkQueue()
        self.services = Informer(client, "services", self.on_service)
        self.pods = Informer(client, "pods", self.on_pod)
        self.slices = Informer(client, "endpointslices", self.on_slice, label_selector=MANAGED_BY + "=" + SLICE_CONTROLLER)

    def start(self):
        for inf in (self.services, self.pods, self.slices):
            inf.start()
        run_queue("endpoints", self.q, self.sync, self.stop)

    def synced(self, timeout):
        return all(i.synced.wait(timeout) for i in (self.services, self.pods, self.slices))

    def on_service(self, etype, svc, old):
        md = svc["metadata"]
        self.q.add(md.get("namespace", "default") + "/" + md["name"])

    def on_pod(self, etype, pod, old):
        ns = pod["metadata"].get("namespace", "default")
        labels = [(pod.get("metadata") or {}).get("labels")]
        if old is not None:
            labels.append((old.get("metadata") or {}).get("labels"))
        for svc in self.services.items():
            if svc["metadata"].get("namespace", "default") != ns:
                continue
            sel = (svc.get("spec") or {}).get("selector")
            if any(match_labels(sel, lb) for lb in labels):
                self.q.add(ns + "/" + svc["metadata"]["name"])

    def on_slice(self, etype, sl, old):
        name = ((sl.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME)
        if name and etype == "DELETED":
            self.q.add(sl["metadata"].get("namespace", "default") + "/" + name)

    def sync(self, key):
        ns, name = split_key(key)
        svc = self.services.get(ns, name)
        mine = [s for s in self.slices.items() if s["metadata"].get("namespace") == ns
                and (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name]
        if svc is None:
            for s in mine:
                self.client.delete_ignore_missing("endpointslices", ns, s["metadata"]["name"])
            self.client.delete_ignore_missing("endpoints", ns, name)
            return
        sel = (svc.get("spec") or {}).get("selector")
        if not sel or (svc.get("spec") or {}).get("type") == "ExternalName":
            return
        pods = [p for p in self.pods.items() if p["metadata"].get("namespace", "default") == ns
                and match_labels(sel, (p.get("metadata") or {}).get("labels"))]
        groups, subsets = desired_endpoints(svc, pods)
        self.write_slices(svc, groups, mine)
        self.write_endpoints(svc, subsets)

    def _owner(self, svc):
        return [{"apiVersion": "v1", "kind": "Service", "name": svc["metadata"]["name"], "uid": svc["metadata"].get("uid"),
                 "controller": True, "blockOwnerDeletion": True}]

    def write_slices(self, svc, groups, existing):
        """One slice per distinct port list, reusing existing slices
        (https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#management)."""
        ns = svc["metadata"].get("namespace", "default")
        name = svc["metadata"]["name"]
        if not groups:
            groups = {"[]": ([], [])}
        free = list(existing)
        by_sig = {}
        for s in existing:
            sig = json.dumps(s.get("ports") or [], sort_keys=True)
            by_sig.setdefault(sig, s)
        labels = dict((svc.get("metadata") or {}).get("labels") or {})
        labels[SERVICE_NAME] = name
        labels[MANAGED_BY] = SLICE_CONTROLLER
        for sig, (ports, eps) in groups.items():
            cur = by_sig.get(sig)
            if cur is None and free:
                cur = free[0]
            if cur is not None and cur in free:
                free.remove(cur)
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                    "endpoints": eps, "ports": ports}
            if cur is None:
                body["metadata"] = {"generateName": name + "-", "namespace": ns, "labels": labels,
                                    "ownerReferences": self._owner(svc)}
                self.client.create("endpointslices", ns, body)
                continue
            if (cur.get("endpoints") or []) == eps and (cur.get("ports") or []) == ports and \
                    (cur["metadata"].get("labels") or {}) == labels:
                continue
            md = dict(cur["metadata"])
            md["labels"] = labels
            body["metadata"] = md
            self.client.replace("endpointslices", ns, md["name"], body)
        for s in free:
            self.client.delete_ignore_missing("endpointslices", ns, s["metadata"]["name"])

    def write_endpoints(self, svc, subsets):
        ns = svc["metadata"].get("namespace", "default")
        name = svc["metadata"]["name"]
        cur = self.client.get_or_none("endpoints", ns, name)
        labels = dict((svc.get("metadata") or {}).get("labels") or {})
        labels["endpoints.kubernetes.io/managed-by"] = "endpoint-controller"
        if cur is None:
            self.client.create("endpoints", ns, {"apiVersion": "v1", "kind": "Endpoints",
                                                 "metadata": {"name": name, "namespace": ns, "labels": labels},
                                                 "subsets": subsets})
            return
        if (cur.get("subsets") or []) == subsets and (cur["metadata"].get("labels") or {}) == labels:
            return
        cur["subsets"] = subsets
        cur["metadata"]["labels"] = labels
        self.client.replace("endpoints", ns, name, cur)


# ---------------------------------------------------------------------------------
# Shared pieces of the workload controllers.
# ---------------------------------------------------------------------------------

HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template):
    """pod-template-hash stand-in (the real one is fnv32a of the template rendered
    with SafeEncodeString's alphabet; pkg/controller/controller_utils.go ComputeHash)."""
    h = int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:12], 16)
    out = ""
    for _ in range(10):
        out += HASH_ALPHABET[h % len(HASH_ALPHABET)]
        h //= len(HASH_ALPHABET)
    return out


class Expectations:
    """Creations/deletions in flight per owner, so that a sync that runs before the
    informer saw them does not act twice (pkg/controller/controller_utils.go
    ControllerExpectations; entries expire after 30 s like the real ones... here 10 s)."""

    def __init__(self, ttl=10.0):
        self.lock = threading.Lock()
        self.adds = {}
        self.dels = {}
        self.seen = {}  # owner -> {name: t}: adds the informer saw before expect_add ran
        self.ttl = ttl

    def expect_add(self, owner, name):
        # The real controller counts creations before it makes them (ExpectCreations), so an
        # informer event that beats the create's answer still lowers the count. Names are only
        # known from the answer here: an add already seen is not expected again.
        with self.lock:
            if self.seen.get(owner, {}).pop(name, None) is not None:
                return
            self.adds.setdefault(owner, {})[name] = time.monotonic()

    def expect_del(self, owner, name):
        with self.lock:
            self.dels.setdefault(owner, {})[name] = time.monotonic()

    def observe(self, owner, name, deleted=False):
        with self.lock:
            if deleted:
                self.dels.get(owner, {}).pop(name, None)
            elif self.adds.get(owner, {}).pop(name, None) is None:
                self.seen.setdefault(owner, {})[name] = time.monotonic()

    def pending(self, owner):
        now = time.monotonic()
        with self.lock:
            a = {n for n, t in self.adds.get(owner, {}).items() if now - t < self.ttl}
            d = {n for n, t in self.dels.get(owner, {}).items() if now - t < self.ttl}
            self.adds[owner] = {n: self.adds[owner][n] for n in a}
            self.dels[owner] = {n: self.dels[owner][n] for n in d}
            seen = self.seen.get(owner, {})
            self.seen[owner] = {n: t for n, t in seen.items() if now - t < self.ttl}
            return a, d


def pod_from_template(owner, template, generate_name, extra_labels, api_version, kind):
    md = template.get("metadata") or {}
    labels = dict(md.get("labels") or {})
    labels.update(extra_labels)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": generate_name, "namespace": owner["metadata"].get("namespace", "default"),
                        "labels": labels, "annotations": dict(md.get("annotations") or {}),
                        "ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
                                             "uid": owner["metadata"].get("uid"), "controller": True,
                                             "blockOwnerDeletion": True}]},
           "spec": json.loads(json.dumps(template.get("spec") or {}))}
    if not pod["metadata"]["annotations"]:
        del pod["metadata"]["annotations"]
    return pod


def set_condition(conds, ctype, status, reason, message, now=None):
    """Upsert a condition, keeping lastTransitionTime unless the status changes."""
    now = now or rfc3339()
    for c in conds:
        if c.get("type") == ctype:
            if c.get("status") != status:
                c["lastTransitionTime"] = now
            c["status"] = status
            c["reason"] = reason
            c["message"] = message
            c["lastUpdateTime"] = now if "lastUpdateTime" in c else c.get("lastUpdateTime", now)
            return conds
    conds.append({"type": ctype, "status": status, "reason": reason, "message": message,
                  "lastTransitionTime": now, "lastUpdateTime": now})
    return conds


def _int_or_percent(v, total, round_up):
    """intstr.GetScaledValueFromIntOrPercent."""
    if v is None:
        v = "25%"
    if isinstance(v, int):
        return v
    s = str(v)
    if s.endswith("%"):
        x = total * float(s[:-1]) / 100.0
        return int(math.ceil(x)) if round_up else int(math.floor(x))
    return int(s)


# ---------------------------------------------------------------------------------
# Deployments (simplified: the Deployment owns its pods directly).
# ---------------------------------------------------------------------------------


class DeploymentController:
    def __init__(self, client, stop, pods_informer):
        self.client = client
        self.stop = stop
        self.q = WorkQueue()
        self.exp = Expectations()
        self.deps = Informer(client, "deployments", self.on_dep)
        self.pods = pods_informer
        self.pods.handlers.append(self.on_pod)

    def start(self):
        self.deps.start()
        run_queue("deployments", self.q, self.sync, self.stop)

    def on_dep(self, etype, d, old):
        md = d["metadata"]
        if etype == "DELETED":
            threading.Thread(target=self.orphan_cleanup, args=(md.get("namespace", "default"), md.get("uid")),
                             daemon=True).start()
            return
        self.q.add(md.get("namespace", "default") + "/" + md["name"])

    def orphan_cleanup(self, ns, uid):
        """Background cascading deletion of the Deployment's pods, in case the API
        server's garbage collector does not do it
        (https://kubernetes.io/docs/concepts/architecture/garbage-collection/)."""
        time.sleep(1.0)
        for p in self.pods.items():
            if p["metadata"].get("namespace") == ns and owned_by(p, uid) and not p["metadata"].get("deletionTimestamp"):
                self.client.delete_ignore_missing("pods", ns, p["metadata"]["name"])

    def on_pod(self, etype, pod, old):
        uid = controller_uid(pod)
        if not uid:
            return
        for d in self.deps.items():
            if d["metadata"].get("uid") == uid:
                self.exp.observe(uid, pod["metadata"]["name"], deleted=(etype == "DELETED"))
                self.q.add(d["metadata"].get("namespace", "default") + "/" + d["metadata"]["name"])
                return

    def sync(self, key):
        """Reconcile one Deployment (pkg/controller/deployment: rolling.go / recreate.go /
        sync.go syncDeploymentStatus; https://kubernetes.io/docs/concepts/workloads/controllers/deployment/)."""
        ns, name = split_key(key)
        d = self.deps.get(ns, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        uid = d["metadata"].get("uid")
        spec = d.get("spec") or {}
        replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        template = spec.get("template") or {}
        h = template_hash(template)
        adds, dels = self.exp.pending(uid)
        pods = [p for p in self.pods.items() if p["metadata"].get("namespace") == ns and owned_by(p, uid)]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                and p["metadata"]["name"] not in dels]
        # Pods that ended (Failed/Succeeded) are replaced, like a ReplicaSet does.
        for p in pods:
            if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp"):
                self.client.delete_ignore_missing("pods", ns, p["metadata"]["name"])
        new = [p for p in live if (p["metadata"].get("labels") or {}).get("pod-template-hash") == h]
        old = [p for p in live if p not in new]
        pending_new = len(adds)
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = time.time()

        def available(p):
            if not pod_ready(p):
                return False
            t = ready_since(p)
            return t is None or now - t >= min_ready

        strategy = spec.get("strategy") or {}
        paused = bool(spec.get("paused"))
        if strategy.get("type") == "Recreate" and not paused:
            if old:
                for p in old:
                    self.delete_pod(uid, p)
            elif not any(p["metadata"].get("deletionTimestamp") for p in pods if p not in new):
                self.scale(d, uid, h, template, new, pending_new, replicas)
        elif not paused:
            ru = strategy.get("rollingUpdate") or {}
            surge = _int_or_percent(ru.get("maxSurge"), replicas, True)
            unavail = _int_or_percent(ru.get("maxUnavailable"), replicas, False)
            if surge == 0 and unavail == 0:
                unavail = 1
            if not old:
                self.scale(d, uid, h, template, new, pending_new, replicas)
            else:
                total = len(new) + len(old) + pending_new
                want_new = replicas - len(new) - pending_new
                room = replicas + surge - total
                for _ in range(max(0, min(want_new, room))):
                    self.create_pod(d, uid, h, template)
                avail = sum(1 for p in live if available(p))
                can_delete = max(0, avail - (replicas - unavail))
                # Old pods that are not ready go first (they do not count as available).
                old_sorted = sorted(old, key=lambda p: (pod_ready(p), p["metadata"].get("creationTimestamp", "")))
                for p in old_sorted:
                    if not pod_ready(p):
                        self.delete_pod(uid, p)
                    elif can_delete > 0:
                        self.delete_pod(uid, p)
                        can_delete -= 1
        elif not old:
            self.scale(d, uid, h, template, new, pending_new, replicas)
        self.write_status(d, live, new, available, replicas, strategy)
        if min_ready and any(pod_ready(p) and not available(p) for p in live):
            self.q.add_after(ns + "/" + name, 1.0)

    def scale(self, d, uid, h, template, new, pending_new, replicas):
        have = len(new) + pending_new
        for _ in range(max(0, replicas - have)):
            self.create_pod(d, uid, h, template)
        if len(new) > replicas:
            # Scale down: not-ready and newest pods first (controller.ActivePods ordering).
            order = sorted(new, key=lambda p: (pod_ready(p), "" if not p["metadata"].get("creationTimestamp") else
                                               p["metadata"]["creationTimestamp"]), reverse=False)
            notready = [p for p in order if not pod_ready(p)]
            ready = sorted([p for p in order if pod_ready(p)], key=lambda p: p["metadata"].get("creationTimestamp", ""),
                           reverse=True)
            for p in (notready + ready)[:len(new) - replicas]:
                self.delete_pod(uid, p)

    def create_pod(self, d, uid, h, template):
        ns = d["metadata"].get("namespace", "default")
        pod = pod_from_template(d, template, "%s-%s-" % (d["metadata"]["name"], h), {"pod-template-hash": h},
                                "apps/v1", "Deployment")
        res = self.client.create("pods", ns, pod)
        self.exp.expect_add(uid, res["metadata"]["name"])

    def delete_pod(self, uid, p):
        self.exp.expect_del(uid, p["metadata"]["name"])
        self.client.delete_ignore_missing("pods", p["metadata"].get("namespace"), p["metadata"]["name"])

    def write_status(self, d, live, new, available, replicas, strategy):
        md = d["metadata"]
        ready = sum(1 for p in live if pod_ready(p))
        avail = sum(1 for p in live if available(p))
        ru = strategy.get("rollingUpdate") or {}
        max_unavail = 0 if strategy.get("type") == "Recreate" else _int_or_percent(ru.get("maxUnavailable"), replicas, False)
        gen = md.get("generation")

        def mutate(obj):
            st = obj.setdefault("status", {})
            before = json.dumps(st, sort_keys=True)
            st["replicas"] = len(live)
            st["updatedReplicas"] = len(new)
            st["readyReplicas"] = ready
            st["availableReplicas"] = avail
            st["unavailableReplicas"] = max(0, replicas - avail)
            for k in ("readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas", "replicas"):
                if st[k] == 0:
                    del st[k]
            if gen is not None:
                st["observedGeneration"] = gen
            conds = [dict(c) for c in st.get("conditions") or []]
            prev = {c["type"]: dict(c) for c in conds}
            if avail >= replicas - max_unavail:
                set_condition(conds, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
            else:
                set_condition(conds, "Available", "False", "MinimumReplicasUnavailable",
                              "Deployment does not have minimum availability.")
            done = len(new) == replicas and len(live) == replicas and avail >= replicas
            set_condition(conds, "Progressing", "True", "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                          ('ReplicaSet "%s" has successfully progressed.' if done else 'ReplicaSet "%s" is progressing.')
                          % (md["name"] + "-" + template_hash((obj.get("spec") or {}).get("template") or {})))
            for c in conds:
                p = prev.get(c["type"])
                if p and p.get("status") == c["status"] and p.get("reason") == c["reason"]:
                    c["lastUpdateTime"] = p.get("lastUpdateTime", c.get("lastUpdateTime"))
            st["conditions"] = conds
            if json.dumps(st, sort_keys=True) == before:
                return False

        self.client.update_status("deployments", md.get("namespace", "default"), md["name"], mutate)


# ---------------------------------------------------------------------------------
# batch/v1 Jobs.
# ---------------------------------------------------------------------------------


class JobController:
    def __init__(self, client, stop, pods_informer, backoff_base=10.0, backoff_max=360.0):
        self.client = client
        self.stop = stop
        self.q = WorkQueue()
        self.exp = Expectations()
        self.jobs = Informer(client, "jobs", self.on_job)
        self.pods = pods_informer
        self.pods.handlers.append(self.on_pod)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.last_fail = {}

    def start(self):
        self.jobs.start()
        run_queue("jobs", self.q, self.sync, self.stop)

    def on_job(self, etype, j, old):
        md = j["metadata"]
        if etype == "DELETED":
            threading.Thread(target=self.orphan_cleanup, args=(md.get("namespace", "default"), md.get("uid")),
                             daemon=True).start()
            return
        self.q.add(md.get("namespace", "default") + "/" + md["name"])

    def orphan_cleanup(self, ns, uid):
        time.sleep(1.0)
        for p in self.pods.items():
            if p["metadata"].get("namespace") == ns and owned_by(p, uid) and not p["metadata"].get("deletionTimestamp"):
                self.client.delete_ignore_missing("pods", ns, p["metadata"]["name"])

    def on_pod(self, etype, pod, old):
        uid = controller_uid(pod)
        if not uid:
            return
        for j in self.jobs.items():
            if j["metadata"].get("uid") == uid:
                self.exp.observe(uid, pod["metadata"]["name"], deleted=(etype == "DELETED"))
                self.q.add(j["metadata"].get("namespace", "default") + "/" + j["metadata"]["name"])
                return

    @staticmethod
    def finished(job):
        for c in (job.get("status") or {}).get("conditions") or []:
            if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
                return c.get("type")
        return None

    def sync(self, key):
        """Reconcile one Job (pkg/controller/job/job_controller.go syncJob, v1.32;
        https://kubernetes.io/docs/concepts/workloads/controllers/job/): run up to
        parallelism pods until completions succeed; failed pods count against
        backoffLimit (with restartPolicy OnFailure, container restarts do instead:
        pastBackoffLimitOnFailure); stop at activeDeadlineSeconds; replacement pods
        wait an exponential back-off (10 s doubling, capped at 6 min). A finishing
        Job first gets FailureTarget / SuccessCriteriaMet and its remaining pods
        are deleted (counted as failed); the terminal Failed / Complete condition
        is added once no pod is left terminating (JobPodReplacementPolicy, beta
        and on by default since 1.29)."""
        ns, name = split_key(key)
        job = self.jobs.get(ns, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        uid = job["metadata"].get("uid")
        spec = job.get("spec") or {}
        status = job.get("status") or {}
        done = self.finished(job)
        pods = [p for p in self.pods.items() if p["metadata"].get("namespace") == ns and owned_by(p, uid)]
        adds, dels = self.exp.pending(uid)

        def phase(p):
            return (p.get("status") or {}).get("phase")
        terminating = [p for p in pods if p["metadata"].get("deletionTimestamp")
                       and phase(p) not in ("Succeeded", "Failed")]
        active = [p for p in pods if phase(p) not in ("Succeeded", "Failed")
                  and not p["metadata"].get("deletionTimestamp") and p["metadata"]["name"] not in dels]
        succeeded = sum(1 for p in pods if phase(p) == "Succeeded")
        # A pod deleted before it succeeded counts as failed (isPodFailed), except
        # the pods a suspension deletes.
        failed_pods = sum(1 for p in pods if phase(p) == "Failed") + (0 if spec.get("suspend") else len(terminating))
        # Pods already removed keep counting through the recorded status.
        succeeded = max(succeeded, int(status.get("succeeded") or 0))
        failed_pods = max(failed_pods, int(status.get("failed") or 0))
        restarts = 0
        template = spec.get("template") or {}
        on_failure = (template.get("spec") or {}).get("restartPolicy") == "OnFailure"
        if on_failure:
            for p in active:
                for cs in ((p.get("status") or {}).get("containerStatuses") or []) + \
                        ((p.get("status") or {}).get("initContainerStatuses") or []):
                    restarts += int(cs.get("restartCount") or 0)
        if done:
            self.ttl(job, ns, name)
            return
        if spec.get("suspend"):
            for p in active:
                self.delete_pod(uid, p)
            self.write_status(job, active=[], succeeded=succeeded, failed=failed_pods, suspended=True,
                              terminating=len(terminating) + len(active))
            return
        completions = spec.get("completions")
        completions = 1 if completions is None and spec.get("parallelism") in (None, 1) else completions
        parallelism = int(spec.get("parallelism") if spec.get("parallelism") is not None else 1)
        backoff_limit = int(spec.get("backoffLimit") if spec.get("backoffLimit") is not None else 6)
        start = parse_rfc3339(status.get("startTime")) or time.time()
        ads = spec.get("activeDeadlineSeconds")
        now = time.time()
        finish = None
        target = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
        if "FailureTarget" in target:
            c = target["FailureTarget"]
            finish = ("Failed", c.get("reason"), c.get("message"))
        elif "SuccessCriteriaMet" in target:
            c = target["SuccessCriteriaMet"]
            finish = ("Complete", c.get("reason"), c.get("message"))
        elif ads is not None and now - start >= int(ads):
            finish = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        elif (on_failure and (restarts > 0 if backoff_limit == 0 else restarts >= backoff_limit)) or \
                failed_pods > backoff_limit:
            finish = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif completions is not None and succeeded >= int(completions):
            finish = ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
        elif completions is None and succeeded > 0 and not active:
            finish = ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
        if finish:
            for p in active:
                self.delete_pod(uid, p)
            still = len(terminating) + len(active)
            self.write_status(job, [], succeeded, failed_pods + len(active), finish=finish, start=start,
                              terminating=still, final=(still == 0 and not dels))
            if still == 0 and not dels:
                self.ttl(job, ns, name)
            else:
                self.q.add_after(key, 0.5)
            return
        want = parallelism if completions is None else min(parallelism, int(completions) - succeeded)
        missing = want - len(active) - len(adds)
        if dels:
            # manageJob runs only once the expectations are satisfied (syncJob's
            # satisfiedExpectations): a deletion still in flight, e.g. of the pod a
            # finish decided on a Job status the cache does not show yet, must not be
            # replaced.
            missing = 0
            self.q.add_after(key, 0.5)
        if missing > 0:
            # Back-off before replacing failed pods (job_controller.go getBackoff / getRemainingTime).
            delay = 0.0
            if failed_pods:
                delay = min(self.backoff_base * (2 ** (failed_pods - 1)), self.backoff_max)
                last = self.last_finish_time(pods)
                wait = (last + delay) - now if last else 0
                if wait > 0:
                    self.q.add_after(key, wait)
                    missing = 0
            for _ in range(missing):
                self.create_pod(job, uid, template)
        self.write_status(job, active, succeeded, failed_pods, start=start, adds=max(0, missing),
                          terminating=len(terminating))
        if ads is not None:
            self.q.add_after(key, max(0.05, start + int(ads) - now))

    def last_finish_time(self, pods):
        t = None
        for p in pods:
            if (p.get("status") or {}).get("phase") != "Failed":
                continue
            for cs in (p.get("status") or {}).get("containerStatuses") or []:
                ft = parse_rfc3339(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
                if ft and (t is None or ft > t):
                    t = ft
        return t

    def create_pod(self, job, uid, template):
        ns = job["metadata"].get("namespace", "default")
        name = job["metadata"]["name"]
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                  "controller-uid": uid, "job-name": name}
        pod = pod_from_template(job, template, name + "-", labels, "batch/v1", "Job")
        res = self.client.create("pods", ns, pod)
        self.exp.expect_add(uid, res["metadata"]["name"])

    def delete_pod(self, uid, p):
        self.exp.expect_del(uid, p["metadata"]["name"])
        self.client.delete_ignore_missing("pods", p["metadata"].get("namespace"), p["metadata"]["name"])

    def write_status(self, job, active, succeeded, failed, finish=None, suspended=False, start=None, adds=0,
                     terminating=0, final=True):
        md = job["metadata"]
        ready = sum(1 for p in active if pod_ready(p))

        def mutate(obj):
            st = obj.setdefault("status", {})
            before = json.dumps(st, sort_keys=True)
            if suspended:
                # A suspended Job has no startTime; resuming sets a new one, which
                # restarts the activeDeadlineSeconds timer (job_controller.go).
                st.pop("startTime", None)
            elif start:
                st.setdefault("startTime", rfc3339(start))
            n_active = len(active) + adds
            for k, v in (("active", n_active), ("succeeded", succeeded), ("failed", failed)):
                if v:
                    st[k] = v
                else:
                    st.pop(k, None)
            st["ready"] = ready
            st["terminating"] = terminating
            conds = [dict(c) for c in st.get("conditions") or []]
            now = rfc3339()
            if suspended:
                set_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended", now)
            elif any(c.get("type") == "Suspended" for c in conds):
                set_condition(conds, "Suspended", "False", "JobResumed", "Job resumed", now)
            if finish:
                ctype, reason, msg = finish
                # Since 1.31 the terminal condition is preceded by SuccessCriteriaMet /
                # FailureTarget with the same reason; the terminal one waits until no
                # pod is terminating.
                pre = "SuccessCriteriaMet" if ctype == "Complete" else "FailureTarget"
                set_condition(conds, pre, "True", reason, msg, now)
                if final:
                    set_condition(conds, ctype, "True", reason, msg, now)
                    if ctype == "Complete":
                        st["completionTime"] = now
                st.pop("active", None)
            for c in conds:
                c.pop("lastUpdateTime", None)
                c["lastProbeTime"] = c.get("lastProbeTime") or now
            st["conditions"] = conds
            if not conds:
                del st["conditions"]
            if json.dumps(st, sort_keys=True) == before:
                return False

        self.client.update_status("jobs", md.get("namespace", "default"), md["name"], mutate)

    def ttl(self, job, ns, name):
        """TTL-after-finished controller (https://kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/)."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        fin = None
        for c in (job.get("status") or {}).get("conditions") or []:
            if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
                fin = parse_rfc3339(c.get("lastTransitionTime"))
        if fin is None:
            return
        left = fin + int(ttl) - time.time()
        if left > 0:
            self.q.add_after(ns + "/" + name, left + 0.05)
            return
        try:
            self.client.delete("jobs", ns, name, propagation="Background")
        except ApiError as e:
            if e.code != 404:
                raise


# ---------------------------------------------------------------------------------
# ServiceAccount, root CA publisher and namespace controllers.
# ---------------------------------------------------------------------------------


def _terminating_cause(e):
    """apierrors.HasStatusCause(err, NamespaceTerminatingCause)."""
    causes = ((e.body.get("details") or {}).get("causes") or []) if isinstance(e.body, dict) else []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


def _active(ns):
    return ((ns or {}).get("status") or {}).get("phase", "Active") == "Active"


class ServiceAccountsController:
    """pkg/controller/serviceaccount/serviceaccounts_controller.go: the ServiceAccount `default`
    exists in every Active namespace (made again when deleted)."""

    def __init__(self, client, stop):
        self.client = client
        self.stop = stop
        self.q = WorkQueue()
        self.namespaces = Informer(client, "namespaces", self.on_ns, name="sa-namespaces")
        self.sas = Informer(client, "serviceaccounts", self.on_sa, field_selector="metadata.name=default")

    def informers(self):
        return (self.namespaces, self.sas)

    def start(self):
        for inf in self.informers():
            inf.start()
        run_queue("serviceaccount", self.q, self.sync, self.stop)

    def on_ns(self, etype, ns, old):
        if etype != "DELETED":
            self.q.add(ns["metadata"]["name"])

    def on_sa(self, etype, sa, old):
        if etype == "DELETED":
            self.q.add(sa["metadata"].get("namespace", ""))

    def sync(self, name):
        ns = self.namespaces.get("", name)
        if ns is None or not _active(ns):
            return
        if self.sas.get(name, "default") is not None:
            return
        try:
            self.client.create("serviceaccounts", name, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                         "metadata": {"name": "default"}})
        except ApiError as e:
            if e.code != 409 and not _terminating_cause(e):
                raise


class RootCACertPublisher:
    """pkg/controller/certificates/rootcacertpublisher/publisher.go: the ConfigMap
    kube-root-ca.crt (the API server's CA) in every Active namespace, put back when changed or
    deleted. The kube-api-access projected volume reads its ca.crt."""

    NAME = "kube-root-ca.crt"
    DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
                   "internal endpoints such as the internal service IP or kubernetes.default.svc. "
                   "No other usage is guaranteed across distributions of Kubernetes clusters.")

    def __init__(self, client, stop, ca_pem):
        self.client = client
        self.stop = stop
        self.ca_pem = ca_pem
        self.q = WorkQueue()
        self.namespaces = Informer(client, "namespaces", self.on_ns, name="rootca-namespaces")
        self.cms = Informer(client, "configmaps", self.on_cm, field_selector="metadata.name=" + self.NAME)

    def informers(self):
        return (self.namespaces, self.cms)

    def start(self):
        for inf in self.informers():
            inf.start()
        run_queue("root-ca-cert-publisher", self.q, self.sync, self.stop)

    def on_ns(self, etype, ns, old):
        if etype != "DELETED" and _active(ns):
            self.q.add(ns["metadata"]["name"])

    def on_cm(self, etype, cm, old):
        self.q.add(cm["metadata"].get("namespace", ""))

    def sync(self, name):
        ns = self.namespaces.get("", name)
        if ns is None or not _active(ns):
            return
        data = {"ca.crt": self.ca_pem}
        cm = self.cms.get(name, self.NAME)
        try:
            if cm is None:
                self.client.create("configmaps", name, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": self.NAME, "annotations": {"kubernetes.io/description": self.DESCRIPTION}},
                    "data": data})
                return
            if cm.get("data") == data and (cm["metadata"].get("annotations") or {}).get("kubernetes.io/description"):
                return
            new = json.loads(json.dumps(cm))
            new["data"] = data
            new["metadata"].setdefault("annotations", {})["kubernetes.io/description"] = self.DESCRIPTION
            self.client.replace("configmaps", name, self.NAME, new)
        except ApiError as e:
            if e.code == 404 or _terminating_cause(e):
                return
            raise


class ResourcesRemaining(Exception):
    def __init__(self, estimate):
        Exception.__init__(self, "some content remains, estimate %d s" % estimate)
        self.estimate = estimate


NS_CONDITIONS = [
    # (type, ok reason, ok message): status_condition_utils.go okReasons/okMessages.
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions",
     "All legacy kube types successfully parsed"),
    ("NamespaceDeletionContentFailure", "ContentDeleted",
     "All content successfully deleted, may be waiting on finalization"),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
]


class NamespaceController:
    """pkg/controller/namespace (namespace_controller.go, deletion/namespaced_resources_deleter.go):
    a namespace with deletionTimestamp is processed 5 s after the event (namespaceDeletionGracePeriod);
    every namespaced resource discovery lists with the delete verb is emptied with a Background
    deletecollection (or list + delete), pods first (OrderedNamespaceDeletion, GA in 1.34); the
    conditions NamespaceDeletionDiscoveryFailure, ...ContentFailure, NamespaceContentRemaining,
    NamespaceFinalizersRemaining are kept up to date; while content remains it looks again after
    estimate/2+1 s (estimate: the longest grace period of live pods, or 15 s while finalizers
    remain), after other errors with a 5 ms..60 s back-off; when empty, "kubernetes" is removed
    through /finalize and the API server deletes the namespace. delay_scale multiplies the
    delays (1 = the real ones)."""

    GRACE = 5.0  # namespaceDeletionGracePeriod
    FINALIZER_ESTIMATE = 15  # finalizerEstimateSeconds

    def __init__(self, client, stop, delay_scale=1.0):
        self.client = client
        self.stop = stop
        self.scale = float(delay_scale)
        self.q = WorkQueue()
        self.failures = {}
        self.namespaces = Informer(client, "namespaces", self.on_ns, name="ns-namespaces")

    def informers(self):
        return (self.namespaces,)

    def start(self):
        self.namespaces.start()
        t = threading.Thread(target=self._loop, daemon=True, name="namespace")
        t.start()

    def on_ns(self, etype, ns, old):
        if etype != "DELETED" and ns["metadata"].get("deletionTimestamp"):
            self.q.add_after(ns["metadata"]["name"], self.GRACE * self.scale)

    def _loop(self):
        while not self.stop.is_set():
            key = self.q.get(0.5)
            if key is None:
                continue
            try:
                self.sync(key)
                self.failures.pop(key, None)
            except ResourcesRemaining as r:
                self.failures.pop(key, None)
                self.q.add_after(key, (r.estimate // 2 + 1) * self.scale)
            except Exception as e:  # noqa: BLE001 - AddRateLimited
                n = self.failures.get(key, 0)
                self.failures[key] = n + 1
                if not isinstance(e, (ApiError, OSError)):
                    import traceback
                    traceback.print_exc()
                log("namespace %s: %s" % (key, e))
                self.q.add_after(key, min(0.005 * (2 ** n), 60.0))

    # -- discovery ---------------------------------------------------------------

    def resources(self):
        """ServerPreferredNamespacedResources filtered to those with the delete verb:
        [(api prefix, group, resource, verbs)]."""
        out = []
        for r in self.client.request("GET", "/api/v1").get("resources") or []:
            out.append(("api/v1", "", r))
        for g in self.client.request("GET", "/apis").get("groups") or []:
            gv = (g.get("preferredVersion") or {}).get("groupVersion") or \
                ((g.get("versions") or [{}])[0]).get("groupVersion")
            if not gv:
                continue
            for r in self.client.request("GET", "/apis/" + gv).get("resources") or []:
                out.append(("apis/" + gv, g["name"], r))
        return [(p, grp, r["name"], r.get("verbs") or []) for p, grp, r in out
                if r.get("namespaced") and "/" not in r["name"] and "delete" in (r.get("verbs") or [])]

    # -- one pass ----------------------------------------------------------------

    def sync(self, name):
        try:
            ns = self.client.get("namespaces", None, name)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        md = ns["metadata"]
        if not md.get("deletionTimestamp"):
            return
        if (ns.get("status") or {}).get("phase") != "Terminating":
            ns["status"] = dict(ns.get("status") or {}, phase="Terminating")
            ns = self.client.replace("namespaces", None, name, ns, sub="status")
        if not (ns.get("spec") or {}).get("finalizers"):
            return  # finalized
        estimate = self.delete_all_content(ns)
        if estimate > 0:
            raise ResourcesRemaining(estimate)
        for _ in range(5):  # retryOnConflictError(finalizeNamespace)
            ns = self.client.get_or_none("namespaces", None, name)
            if ns is None:
                return
            spec = dict(ns.get("spec") or {})
            spec["finalizers"] = sorted(set(f for f in spec.get("finalizers") or [] if f != "kubernetes"))
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": ns["metadata"], "spec": spec}
            try:
                self.client.replace("namespaces", None, name, body, sub="finalize")
                return
            except ApiError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
        raise ApiError(409, "finalize of namespace %s kept conflicting" % name)

    def delete_all_content(self, ns):
        name = ns["metadata"]["name"]
        deleted_at = parse_rfc3339(ns["metadata"]["deletionTimestamp"]) or time.time()
        errs = []
        remaining = {}
        finalizers = {}
        estimate = 0
        try:
            resources = self.resources()
            discovery_err = None
        except (ApiError, OSError) as e:
            resources, discovery_err = [], e
            errs.append(e)
        pods = [r for r in resources if r[0] == "api/v1" and r[2] == "pods"]
        rest = [r for r in resources if r not in pods]
        for batch in (pods, rest):
            for prefix, group, res, verbs in batch:
                try:
                    est, n, fins = self.delete_resource(prefix, res, verbs, name, deleted_at)
                except ResourcesRemainingUnexpected as e:
                    est, n, fins = e.estimate, e.n, {}
                    errs.append(e)
                except (ApiError, OSError) as e:
                    est, n, fins = 0, 0, {}
                    errs.append(e)
                estimate = max(estimate, est)
                if n:
                    remaining["%s.%s" % (res, group)] = n
                    for f, k in fins.items():
                        finalizers[f] = finalizers.get(f, 0) + k
            if batch is pods and remaining:
                break  # other content waits until the pods are gone
        self.update_conditions(name, discovery_err, errs, remaining, finalizers,
                               full=not (pods and remaining and "pods." in remaining))
        if errs:
            raise errs[0]
        return estimate

    def delete_resource(self, prefix, res, verbs, ns, deleted_at):
        """deleteAllContentForGroupVersionResource: (estimate, remaining, finalizers)."""
        path = "/%s/namespaces/%s/%s" % (prefix, ns, res)
        estimate = 0
        if prefix == "api/v1" and res == "pods":
            for p in self.client.request("GET", path).get("items") or []:
                if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                estimate = max(estimate, int((p.get("spec") or {}).get("terminationGracePeriodSeconds") or 0))
            if time.time() - deleted_at >= estimate:
                estimate = 0
        opts = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        done = False
        if "deletecollection" in verbs:
            try:
                self.client.request("DELETE", path, opts)
                done = True
            except ApiError as e:
                if e.code not in (404, 405):
                    raise
        items = self.client.request("GET", path).get("items") or []
        if not done:
            for it in items:
                if it["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    self.client.request("DELETE", path + "/" + it["metadata"]["name"], opts)
                except ApiError as e:
                    if e.code != 404:
                        raise
            items = self.client.request("GET", path).get("items") or []
        if not items:
            return 0, 0, {}
        fins = {}
        for it in items:
            for f in it["metadata"].get("finalizers") or []:
                fins[f] = fins.get(f, 0) + 1
        if estimate:
            return estimate, len(items), fins
        if fins:
            return self.FINALIZER_ESTIMATE, len(items), fins
        raise ResourcesRemainingUnexpected(
            "unexpected items still remain in namespace: %s for gvr: %s" % (ns, res), estimate, len(items))

    def update_conditions(self, name, discovery_err, errs, remaining, finalizers, full=True):
        new = {}
        if discovery_err is not None:
            new["NamespaceDeletionDiscoveryFailure"] = ("True", "DiscoveryFailed", str(discovery_err))
        content_errs = [e for e in errs if e is not discovery_err]
        if content_errs:
            msgs = sorted(str(e) for e in content_errs)
            new["NamespaceDeletionContentFailure"] = (
                "True", "ContentDeletionFailed",
                "Failed to delete all resource types, %d remaining: %s" % (len(msgs), ", ".join(msgs)))
        if remaining and full:
            new["NamespaceContentRemaining"] = (
                "True", "SomeResourcesRemain", "Some resources are remaining: %s" % ", ".join(
                    sorted("%s has %d resource instances" % (k, n) for k, n in remaining.items())))
        if finalizers and full:
            new["NamespaceFinalizersRemaining"] = (
                "True", "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: %s"
                % ", ".join(sorted("%s in %d resource instances" % (f, n) for f, n in finalizers.items())))

        def mutate(ns):
            st = ns.setdefault("status", {})
            conds = st.setdefault("conditions", [])
            changed = False
            for ctype, ok_reason, ok_msg in NS_CONDITIONS:
                status, reason, msg = new.get(ctype, ("False", ok_reason, ok_msg))
                old = next((c for c in conds if c.get("type") == ctype), None)
                if old is None:
                    conds.append({"type": ctype, "status": status, "lastTransitionTime": rfc3339(),
                                  "reason": reason, "message": msg})
                    changed = True
                elif (old.get("status"), old.get("reason"), old.get("message")) != (status, reason, msg):
                    if old.get("status") != status:
                        old["lastTransitionTime"] = rfc3339()
                    old.update(status=status, reason=reason, message=msg)
                    changed = True
            return changed

        self.client.update_status("namespaces", None, name, mutate)


class ResourcesRemainingUnexpected(Exception):
    def __init__(self, msg, estimate, n):
        Exception.__init__(self, msg)
        self.estimate = estimate
        self.n = n


CONTROLLERS = ("endpoints-controller", "endpointslice-controller", "deployment-controller", "job-controller",
               "ttl-after-finished-controller", "serviceaccount-controller",
               "root-ca-certificate-publisher-controller", "namespace-controller")


class ControllerManager:
    """The controllers kube-controller-manager would run; `controllers` selects them by the names
    of its --controllers flag ("*" = all)."""

    def __init__(self, state_dir=None, client=None, job_backoff_base=10.0, controllers=("*",),
                 namespace_delay_scale=1.0, ca_pem=None):
        self.client = client or KubeClient.from_state_dir(state_dir, user_agent="kubesim-controller-manager")
        self.state_dir = state_dir
        self.stop_ev = threading.Event()
        want = set(controllers)
        on = (lambda n: "*" in want or n in want)
        self.endpoints = self.deployments = self.jobs = None
        self.parts = []
        if any(on(n) for n in ("endpoints-controller", "endpointslice-controller", "deployment-controller",
                               "job-controller", "ttl-after-finished-controller")):
            self.endpoints = EndpointsController(self.client, self.stop_ev)
            self.deployments = DeploymentController(self.client, self.stop_ev, self.endpoints.pods)
            self.jobs = JobController(self.client, self.stop_ev, self.endpoints.pods, backoff_base=job_backoff_base)
        if on("serviceaccount-controller"):
            self.parts.append(ServiceAccountsController(self.client, self.stop_ev))
        if on("root-ca-certificate-publisher-controller"):
            if ca_pem is None:
                ca = os.path.join(state_dir, "ca.crt") if state_dir else ""
                ca_pem = open(ca).read() if ca and os.path.exists(ca) else ""
            self.parts.append(RootCACertPublisher(self.client, self.stop_ev, ca_pem))
        if on("namespace-controller"):
            self.parts.append(NamespaceController(self.client, self.stop_ev, delay_scale=namespace_delay_scale))

    def _informers(self):
        out = []
        if self.endpoints is not None:
            out += [self.endpoints.services, self.endpoints.pods, self.endpoints.slices, self.deployments.deps,
                    self.jobs.jobs]
        for p in self.parts:
            out += list(p.informers())
        return out

    def start(self):
        if self.endpoints is not None:
            self.endpoints.start()
            self.deployments.start()
            self.jobs.start()
        for p in self.parts:
            p.start()
        ok = all(i.synced.wait(10) for i in self._informers())
        if self.state_dir:
            tmp = os.path.join(self.state_dir, "controllers.json.tmp")
            with open(tmp, "w") as f:
                json.dump({"pid": os.getpid(), "synced": bool(ok)}, f)
            os.replace(tmp, os.path.join(self.state_dir, "controllers.json"))
        return ok

    def stop(self):
        self.stop_ev.set()
        for inf in self._informers():
            inf.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description="controller-manager simulator")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--job-backoff-base", type=float, default=10.0)
    ap.add_argument("--controllers", default="*",
                    help="comma-separated controller names as kube-controller-manager's --controllers "
                         "(%s), or * for all" % ", ".join(CONTROLLERS))
    ap.add_argument("--namespace-delay-scale", type=float, default=1.0,
                    help="multiplies the namespace controller's delays (5 s after a deletion, "
                         "estimate/2+1 s between passes); 1 = the real ones")
    args = ap.parse_args(argv)
    cm = ControllerManager(args.state_dir, job_backoff_base=args.job_backoff_base,
                           controllers=[c.strip() for c in args.controllers.split(",") if c.strip()],
                           namespace_delay_scale=args.namespace_delay_scale)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    cm.start()
    log("ready")
    while not stop.wait(1.0):
        pass
    cm.stop()


if __name__ == "__main__":
    main()

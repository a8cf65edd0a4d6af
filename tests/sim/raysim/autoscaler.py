"""`ray kuberay-autoscaler`: a stand-in for Ray's KubeRay autoscaler entry point.

KubeRay puts a container named `autoscaler` next to the Ray head when
enableInTreeAutoscaling is set, running
`ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) --cluster-namespace $(RAY_CLUSTER_NAMESPACE)`
from the head's image (python/ray/scripts/scripts.py `kuberay_autoscaler`, which
calls ray/autoscaler/_private/kuberay/run_autoscaler.py). The stand-in:

- waits for the head's GCS on <pod IP>:6379 (Ray hard-codes the port), checking
  every BACKOFF_S = 5 seconds and logging Ray's two messages;
- then, every AUTOSCALER_UPDATE_INTERVAL_S (Ray's variable, 5 s), reads the
  RayCluster and its pods through the API server with the pod's service-account
  credentials (KubeRayNodeProvider.get_node_data) and the cluster's resource state
  from the GCS (nodes with total/available resources and idle time, pending lease
  requests, request_resources() bundles), and decides as Ray's autoscaler does
  (plan() below): scale a worker group up for demand that fits nowhere, within
  maxReplicas and the upscaling speed of upscalingMode; scale idle workers down
  after idleTimeoutSeconds, keeping minReplicas and what request_resources() asks
  for. It writes the decision as KubeRay's node provider does: one JSON patch of
  workerGroupSpecs[i].replicas and scaleStrategy.workersToDelete, and it clears a
  workersToDelete list once the operator has removed those pods (safe_to_scale).
  Autoscaler v2 (autoscalerOptions.version v2 or RAY_enable_autoscaler_v2) drains a
  node through the GCS before naming its pod; a drain the node rejects (it is busy
  again) keeps the pod;
- SIGTERM or SIGINT ends it with exit code 0.

Logs go to the container's stdout (info) and stderr (warnings), as Ray's
`_setup_logging` routes them; no monitor.log is written. What it leaves out is
listed in docs/ray-simulator.md.
"""

import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
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


# ------------------------------------------------------------------------- configuration
#
# Ray's kuberay/autoscaling_config.py turns the RayCluster into the autoscaler's
# config: one node type per worker group (min/max workers = min/maxReplicas x
# numOfHosts), its resources from rayStartParams first, else the Ray container's
# limits, else its requests (_get_ray_resources_from_group_spec), the idle
# timeout from autoscalerOptions.idleTimeoutSeconds (default 60 s), and the
# upscaling speed from upscalingMode: Conservative 1, Default and Aggressive (and
# unset) 1000.

UPSCALING_SPEED = {"Conservative": 1, "Default": 1000, "Aggressive": 1000}
DEFAULT_UPSCALING_SPEED = 1000
DEFAULT_IDLE_TIMEOUT_S = 60.0
# autoscaler/_private/constants.py UPSCALING_INITIAL_NUM_NODES: the pending nodes a
# type may have at once however slow the upscaling speed.
UPSCALING_INITIAL_NUM_NODES = 5

_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}


def parse_quantity(q):
    """A Kubernetes quantity as a number (ValueError when it is not one)."""
    q = str(q).strip()
    for suf in sorted(_SUFFIX, key=len, reverse=True):
        if suf and q.endswith(suf):
            return float(q[:-len(suf)]) * _SUFFIX[suf]
    return float(q)


def _round_up(q):
    # autoscaling_config.py _round_up_k8s_quantity (decimal ROUND_UP).
    v = parse_quantity(q)
    n = int(v)
    return n + 1 if v > n + 1e-12 else n


def group_resources(group, is_head=False):
    """autoscaling_config.py _get_ray_resources_from_group_spec."""
    params = group.get("rayStartParams") or {}
    containers = (((group.get("template") or {}).get("spec") or {}).get("containers") or [{}])
    k8s = containers[0].get("resources") or {}
    limits, requests = k8s.get("limits") or {}, k8s.get("requests") or {}
    res = {}
    if "num-cpus" in params:
        res["CPU"] = int(float(params["num-cpus"]))
    elif "cpu" in limits:
        res["CPU"] = _round_up(limits["cpu"])
    elif "cpu" in requests:
        res["CPU"] = _round_up(requests["cpu"])
    else:
        raise ValueError("Autoscaler failed to detect `CPU` resources for group %s.\nSet the `--num-cpus` "
                         "rayStartParam and/or the CPU resource limit for the Ray container." % (
                             "headgroup" if is_head else group.get("groupName")))
    if "num-gpus" in params:
        res["GPU"] = int(float(params["num-gpus"]))
    else:
        for key, qty in list(limits.items()) + list(requests.items()):
            if key.endswith("gpu") and _round_up(qty) > 0:
                res["GPU"] = _round_up(qty)
                break
    if "memory" in params:
        res["memory"] = int(float(params["memory"]))
    elif "memory" in limits:
        res["memory"] = _round_up(limits["memory"])
    elif "memory" in requests:
        res["memory"] = _round_up(requests["memory"])
    if "resources" in params:
        # The '"{\"Custom1\": 1}"' form: outer quotes dropped, backslashes removed.
        custom = json.loads(str(params["resources"])[1:-1].replace("\\", ""))
        if not isinstance(custom, dict):
            raise ValueError("resources of group %s is not a JSON object" % group.get("groupName"))
        res.update({str(k): v for k, v in custom.items()})
    return {k: float(v) for k, v in res.items()}


def autoscaling_config(rc, v2_env=False):
    """The decision inputs read from a RayCluster (pure)."""
    spec = rc.get("spec") or {}
    opts = spec.get("autoscalerOptions") or {}
    idle = opts.get("idleTimeoutSeconds")
    cfg = {"version": "v2" if (opts.get("version") == "v2" or v2_env) else "v1",
           "idle_timeout_s": float(idle) if idle is not None else DEFAULT_IDLE_TIMEOUT_S,
           "upscaling_speed": UPSCALING_SPEED.get(opts.get("upscalingMode"), DEFAULT_UPSCALING_SPEED),
           "groups": []}
    for i, g in enumerate(spec.get("workerGroupSpecs") or []):
        hosts = max(1, int(g.get("numOfHosts") or 1))
        group = {"name": g.get("groupName"), "index": i,
                 # node_provider.py _worker_group_replicas: 1 when unset.
                 "replicas": int(g.get("replicas", 1)),
                 "min": int(g.get("minReplicas") or 0) * hosts,
                 "max": int(g.get("maxReplicas") if g.get("maxReplicas") is not None else 2 ** 31 - 1) * hosts,
                 "resources": group_resources(g),
                 "workers_to_delete": list(((g.get("scaleStrategy") or {}).get("workersToDelete")) or []),
                 "has_scale_strategy": "scaleStrategy" in g,
                 "suspended": bool(g.get("suspend"))}
        # A group's own idleTimeoutSeconds is read by autoscaler v2 only
        # (_node_type_from_group_spec idle_timeout_s; KubeRay validates it so).
        if cfg["version"] == "v2" and g.get("idleTimeoutSeconds") is not None:
            group["idle_timeout_s"] = float(g["idleTimeoutSeconds"])
        cfg["groups"].append(group)
    return cfg


# ------------------------------------------------------------------------- decisions


def _fits(shape, avail):
    return all(avail.get(k, 0.0) + 1e-9 >= float(v) for k, v in shape.items() if float(v) > 0)


def _take(shape, avail):
    for k, v in shape.items():
        avail[k] = avail.get(k, 0.0) - float(v)


def _pack(demands, bins):
    """First fit of demands (largest first, as the bin packing of
    resource_demand_scheduler.py get_bin_pack_residual) into bins (mutated);
    returns the demands that fit nowhere."""
    left = []
    for d in sorted(demands, key=lambda s: (-s.get("GPU", 0.0), -s.get("CPU", 0.0), -s.get("memory", 0.0))):
        for b in bins:
            if _fits(d, b):
                _take(d, b)
                break
        else:
            left.append(d)
    return left


def _expand(requests):
    out = []
    for r in requests:
        out += [dict(r.get("resources") or {}) for _ in range(int(r.get("count", 1)))]
    return out


def match_nodes(pods, nodes):
    """pod name -> the live Ray node running in it: by the instance id the raylet
    reports (RAY_CLOUD_INSTANCE_ID, the pod name; how v2 matches), else by IP (v1)."""
    live = [n for n in nodes if n.get("status") in ("ALIVE", "DRAINING")]
    by_id = {n["instance_id"]: n for n in live if n.get("instance_id")}
    by_ip = {}
    for n in live:
        by_ip[n["node_ip"]] = n
        parts = n["node_ip"].split(".")
        if parts[0] == "127" and len(parts) == 4:
            by_ip["10." + ".".join(parts[1:])] = n  # the pod network's address of a simulated pod
    out = {}
    for p in pods:
        n = by_id.get(p["name"]) or (by_ip.get(p.get("ip")) if p.get("ip") else None)
        if n is not None and not n.get("is_head"):
            out[p["name"]] = n
    return out


def plan(cfg, pods, state):
    """One autoscaler update, pure.

    cfg: autoscaling_config(); pods: [{name, group, kind, ip}] of the cluster's pods
    that are not being deleted; state: the GCS's cluster resource state.
    Returns {"desired": {group: replicas}, "terminate": [{pod, group, node_id,
    idle_s}], "infeasible": [shape], "launch": {group: n}}. Terminations are only
    proposals: v2 drains each first (Standin.update)."""
    groups = [g for g in cfg["groups"] if not g["suspended"]]
    nodes = state.get("node_states") or []
    matched = match_nodes(pods, nodes)
    head_nodes = [n for n in nodes if n.get("is_head") and n.get("status") == "ALIVE"]
    info = {}
    for g in groups:
        existing = [p for p in pods if p["kind"] == "worker" and p["group"] == g["name"]]
        running = [p for p in existing if p["name"] in matched]
        replicas = min(max(g["replicas"], g["min"]), g["max"])
        info[g["name"]] = {"group": g, "existing": existing, "running": running,
                           # pods without a live raylet yet, and replicas the operator has not
                           # created: both are nodes on their way (Ray's pending nodes).
                           "pending": len(existing) - len(running) + max(0, replicas - len(existing)),
                           "count": max(len(existing), replicas)}

    # --- scale up (resource_demand_scheduler.py get_nodes_to_launch)
    bins = [dict(n["available_resources"]) for n in head_nodes]
    for name, gi in info.items():
        for p in gi["running"]:
            n = matched[p["name"]]
            if n.get("status") == "ALIVE":
                bins.append(dict(n["available_resources"]))
        bins += [dict(gi["group"]["resources"]) for _ in range(gi["pending"])]
    unfulfilled = _pack(_expand(state.get("pending_resource_requests") or []), bins)
    launch = {name: 0 for name in info}
    infeasible = []
    while unfulfilled:
        first = unfulfilled[0]
        cands = [gi for gi in info.values()
                 if gi["count"] + launch[gi["group"]["name"]] < gi["group"]["max"] and _fits(first, gi["group"]["resources"])]
        if not cands:
            infeasible.append(unfulfilled.pop(0))
            continue

        def served(gi):
            # _resource_based_utilization_scorer, reduced: the type serving the most demands wins.
            return len(unfulfilled) - len(_pack([dict(d) for d in unfulfilled], [dict(gi["group"]["resources"])]))
        best = max(cands, key=served)  # max() keeps the first of equals: group order
        launch[best["group"]["name"]] += 1
        unfulfilled = _pack(unfulfilled, [dict(best["group"]["resources"])])

    # min_workers and request_resources() bypass the launch limit (adjusted_min_workers).
    adjusted = {name: max(0, gi["group"]["min"] - gi["count"] - launch[name]) for name, gi in info.items()}
    constraints = [dict(b) for b in state.get("cluster_resource_constraints") or []]
    if constraints:
        totals = [dict(n["total_resources"]) for n in head_nodes]
        for name, gi in info.items():
            totals += [dict(gi["group"]["resources"])
                       for _ in range(gi["count"] + launch[name] + adjusted[name])]
        left = _pack(constraints, totals)
        while left:
            cands = [gi for gi in info.values() if gi["count"] + launch[gi["group"]["name"]]
                     + adjusted[gi["group"]["name"]] < gi["group"]["max"] and _fits(left[0], gi["group"]["resources"])]
            if not cands:
                infeasible.append(left.pop(0))
                continue
            adjusted[cands[0]["group"]["name"]] += 1
            left = _pack(left, [dict(cands[0]["group"]["resources"])])

    # _get_concurrent_resource_demand_to_launch: pending nodes of a type are held
    # to max(UPSCALING_INITIAL_NUM_NODES, upscaling_speed x running nodes).
    for name, gi in info.items():
        want = launch[name] + adjusted[name]
        if not want:
            continue
        allowed = max(UPSCALING_INITIAL_NUM_NODES, int(cfg["upscaling_speed"] * max(len(gi["running"]), 1)))
        upper = max(allowed - gi["pending"], adjusted[name])
        launch[name] = max(0, min(upper, want, gi["group"]["max"] - gi["count"]))

    # --- scale down: workers idle past the timeout, keeping minReplicas and the
    # nodes request_resources() needs (StandardAutoscaler._get_nodes_to_terminate).
    terminate = []
    keep_totals = [dict(n["total_resources"]) for n in head_nodes]
    candidates = []
    for name, gi in info.items():
        timeout = gi["group"].get("idle_timeout_s", cfg["idle_timeout_s"])
        for p in gi["running"]:
            n = matched[p["name"]]
            idle_s = n.get("idle_duration_ms", 0) / 1000.0
            if n.get("status") == "DRAINING":
                candidates.append((float("inf"), p, n, name))  # drained already: only the pod is left
            elif launch[name] == 0 and n.get("status") == "ALIVE" and idle_s >= timeout and idle_s > 0:
                candidates.append((idle_s, p, n, name))
            else:
                keep_totals.append(dict(n["total_resources"]))
    removed = {name: 0 for name in info}
    kept = []
    for idle_s, p, n, name in sorted(candidates, key=lambda c: -c[0]):
        gi = info[name]
        if gi["count"] - removed[name] <= gi["group"]["min"] and n.get("status") != "DRAINING":
            kept.append(n)
            continue
        removed[name] += 1
        terminate.append({"pod": p["name"], "group": name, "node_id": n["node_id"], "idle_s": idle_s,
                          "draining": n.get("status") == "DRAINING"})
    if constraints and terminate:
        # Keep idle nodes whose resources the requested bundles need.
        base = keep_totals + [dict(n["total_resources"]) for n in kept]
        for gi in info.values():
            base += [dict(gi["group"]["resources"]) for _ in range(gi["pending"])]
        for t in list(terminate):
            if t["draining"]:
                continue
            if _pack([dict(c) for c in constraints], [dict(b) for b in base]):
                terminate.remove(t)
                removed[t["group"]] -= 1
                node = next(n for n in nodes if n["node_id"] == t["node_id"])
                base.append(dict(node["total_resources"]))
    desired = {name: gi["count"] + launch[name] - removed[name] for name, gi in info.items()}
    return {"desired": desired, "terminate": terminate, "infeasible": infeasible, "launch": launch}


def scale_patch(cfg, desired, deletions):
    """node_provider.py _scale_request_to_patch_payload: replace the replicas of
    groups whose count changes (capped at maxReplicas) and the scaleStrategy of
    groups losing named workers. A group without scaleStrategy gets it with
    "add": JSON Patch "replace" needs the member to exist (RFC 6902 4.3), and
    "add" on an object member sets it either way."""
    ops = []
    for g in cfg["groups"]:
        n = desired.get(g["name"])
        if n is None:
            continue
        n = min(n, g["max"])
        if n != g["replicas"]:
            ops.append({"op": "replace", "path": "/spec/workerGroupSpecs/%d/replicas" % g["index"], "value": n})
    for g in cfg["groups"]:
        names = deletions.get(g["name"])
        if names:
            ops.append({"op": "replace" if g["has_scale_strategy"] else "add",
                        "path": "/spec/workerGroupSpecs/%d/scaleStrategy" % g["index"],
                        "value": {"workersToDelete": list(names)}})
    return ops


def workers_to_delete_cleanup(cfg, pods):
    """node_provider.py safe_to_scale: (False, waiting-for names) while any named
    worker still has a pod that is not being deleted; else (True, the JSON patch
    emptying the non-empty lists)."""
    alive = {p["name"] for p in pods}
    waiting = [w for g in cfg["groups"] for w in g["workers_to_delete"] if w in alive]
    if waiting:
        return False, waiting
    return True, [{"op": "replace", "path": "/spec/workerGroupSpecs/%d/scaleStrategy" % g["index"],
                   "value": {"workersToDelete": []}} for g in cfg["groups"] if g["workers_to_delete"]]


# ------------------------------------------------------------------------- I/O


class KubeClient:
    """The API-server calls of KubeRayNodeProvider, with in-cluster credentials.

    The token and CA are loaded once, as KubernetesHttpApiClient does at start
    (node_provider.py load_k8s_secrets), and again only after a 401."""

    def __init__(self, namespace):
        self.ns = namespace
        self.warned = False
        self.creds = None  # (token, ssl context)

    def _load(self):
        try:
            with open(os.path.join(SA_DIR, "token")) as f:
                token = f.read().strip()
            ctx = ssl.create_default_context(cafile=os.path.join(SA_DIR, "ca.crt"))
        except (OSError, ssl.SSLError):
            token, ctx = "", None
        if not os.environ.get("KUBERNETES_SERVICE_HOST") or not token:
            if not self.warned:
                _log("WARNING", "autoscaling_config.py",
                     "No in-cluster credentials (KUBERNETES_SERVICE_HOST or %s/token missing); "
                     "the RayCluster is not read." % SA_DIR)
                self.warned = True
            return None
        return token, ctx

    def _request(self, method, path, body=None, ctype=None):
        if self.creds is None:
            self.creds = self._load()
            if self.creds is None:
                return None
        token, ctx = self.creds
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host
        headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = ctype
        req = urllib.request.Request("https://%s:%s%s" % (host, port, path), data=data, headers=headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
                return json.loads(r.read(1 << 24).decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                self.creds = None  # a rotated token: read it again next time
            raise

    def raycluster(self, name):
        # KUBERAY_CRD_VER, which KubeRay sets to v1 on the autoscaler container.
        return self._request("GET", "/apis/ray.io/%s/namespaces/%s/rayclusters/%s" % (
            os.environ.get("KUBERAY_CRD_VER", "v1"), self.ns, name))

    def pods(self, cluster):
        sel = urllib.parse.quote("ray.io/cluster=%s" % cluster)
        return self._request("GET", "/api/v1/namespaces/%s/pods?labelSelector=%s" % (self.ns, sel))

    def patch_raycluster(self, name, ops):
        return self._request("PATCH", "/apis/ray.io/%s/namespaces/%s/rayclusters/%s" % (
            os.environ.get("KUBERAY_CRD_VER", "v1"), self.ns, name), ops, "application/json-patch+json")


def pod_view(pod_list):
    """The pods the provider counts: not being deleted (get_node_data)."""
    out = []
    for p in (pod_list or {}).get("items") or []:
        md = p.get("metadata") or {}
        if md.get("deletionTimestamp"):
            continue
        labels = md.get("labels") or {}
        kind = labels.get("ray.io/node-type")
        if kind not in ("head", "worker"):
            continue  # not a Ray pod (make_node_tags knows head and worker only)
        out.append({"name": md.get("name"), "group": labels.get("ray.io/group"), "kind": kind,
                    "ip": (p.get("status") or {}).get("podIP")})
    return out


class Standin:
    def __init__(self, cluster_name, namespace, kube=None, gcs_address=None):
        self.name = cluster_name
        self.ns = namespace
        self.head_ip = os.environ.get("RW_SIM_POD_IP") or "127.0.0.1"
        self.address = gcs_address or "%s:%d" % (self.head_ip, GCS_PORT)
        self.backoff_s = _env_float("RW_SIM_AUTOSCALER_BACKOFF_S", 5)
        self.interval_s = _env_float("AUTOSCALER_UPDATE_INTERVAL_S", 5)
        self.v2_env = os.environ.get("RAY_enable_autoscaler_v2", "").lower() in ("1", "true")
        self.kube = kube if kube is not None else KubeClient(namespace)
        self.stop = threading.Event()
        self.last_summary = None
        self.last_infeasible = None

    # ---------------------------------------------------------------- GCS
    def gcs(self, method, params=None):
        return GcsClient(self.address).call(method, params or {}, timeout=3.0)

    def wait_for_head(self):
        """run_kuberay_autoscaler's loop: `ray health-check` until it passes, then the
        head's raylet registered in the GCS (get_all_node_info_until_retrieved)."""
        for _ in range(10 ** 6):
            if self.stop.is_set():
                return False
            try:
                self.gcs("check_alive", {"node_ids": []})
                if any(n.get("is_head") for n in self.gcs("get_all_node_info")):
                    _log("INFO", "run_autoscaler.py", "The Ray head is ready. Starting the autoscaler.")
                    return True
            except (GcsError, ValueError):
                pass
            _log("WARNING", "run_autoscaler.py",
                 "The Ray head is not ready. Will check again in %g seconds." % self.backoff_s)
            self.stop.wait(self.backoff_s)
        return False

    # ---------------------------------------------------------------- one update
    def summary(self, rc, nodes):
        alive = [n for n in nodes if n.get("status", "ALIVE") in ("ALIVE", "DRAINING")]
        parts = ["%d node(s) alive" % len(alive)]
        if rc is not None:
            for g in (rc.get("spec") or {}).get("workerGroupSpecs") or []:
                parts.append("group %s replicas=%s min=%s max=%s" % (
                    g.get("groupName"), g.get("replicas", 0), g.get("minReplicas", 0), g.get("maxReplicas", 0)))
        return "; ".join(parts)

    def update(self):
        """One pass of the monitor loop; returns the patch it submitted, or None."""
        try:
            rc = self.kube.raycluster(self.name)
            pods = pod_view(self.kube.pods(self.name)) if rc is not None else None
        except (OSError, ValueError, urllib.error.URLError) as exc:
            _log("WARNING", "node_provider.py", "Failed to read RayCluster %s/%s: %s" % (self.ns, self.name, exc))
            rc = pods = None
        try:
            state = self.gcs("get_cluster_resource_state")
        except GcsError as exc:
            _log("WARNING", "monitor.py", "Failed to get the cluster resource state from the GCS: %s" % exc)
            return None
        s = self.summary(rc, state["node_states"])
        if s != self.last_summary:
            _log("INFO", "monitor.py", "RayCluster %s/%s: %s" % (self.ns, self.name, s))
            self.last_summary = s
        if rc is None:
            return None
        try:
            cfg = autoscaling_config(rc, self.v2_env)
        except (ValueError, TypeError, KeyError) as exc:
            _log("ERROR", "autoscaling_config.py", "Cannot read the autoscaling config of RayCluster %s/%s: %s" % (
                self.ns, self.name, exc))
            return None
        safe, what = workers_to_delete_cleanup(cfg, pods)
        if not safe:
            for w in what:
                _log("WARNING", "node_provider.py", "Waiting for operator to remove worker %s." % w)
            return None
        if what:
            _log("INFO", "node_provider.py", "Cleaning up workers to delete.")
            self.submit(what)
            for g in cfg["groups"]:
                g["workers_to_delete"] = []
                g["has_scale_strategy"] = True
        decision = plan(cfg, pods, state)
        if decision["infeasible"] != self.last_infeasible and decision["infeasible"]:
            _log("WARNING", "resource_demand_scheduler.py",
                 "The autoscaler could not find a node type to satisfy the request: %s." % json.dumps(
                     decision["infeasible"]))
        self.last_infeasible = decision["infeasible"]
        deletions = {}
        desired = dict(decision["desired"])
        for t in decision["terminate"]:
            if cfg["version"] == "v2" and not t["draining"]:
                # v2 instance_manager/ray_stopper.py _drain_ray_node: an idle node is
                # drained through the GCS first; it is terminated only when accepted.
                msg = "Termination of node that's idle for %s seconds." % round(t["idle_s"], 1)
                try:
                    rep = self.gcs("drain_node", {"node_id": t["node_id"],
                                                  "reason": "DRAIN_NODE_REASON_IDLE_TERMINATION",
                                                  "reason_message": msg, "deadline_timestamp_ms": 0})
                except GcsError as exc:
                    rep = {"is_accepted": False, "rejection_reason_message": str(exc)}
                _log("INFO", "ray_stopper.py", "Drained ray on %s(success=%s, msg=%s)" % (
                    t["node_id"], rep.get("is_accepted"), rep.get("rejection_reason_message", "")))
                if not rep.get("is_accepted"):
                    desired[t["group"]] += 1
                    continue
            deletions.setdefault(t["group"], []).append(t["pod"])
        ops = scale_patch(cfg, desired, deletions)
        if ops:
            self.submit(ops)
        return ops or None

    def submit(self, ops):
        _log("INFO", "node_provider.py", "Autoscaler is submitting the following patch to RayCluster %s in "
             "namespace %s." % (self.name, self.ns))
        _log("INFO", "node_provider.py", json.dumps(ops))
        try:
            self.kube.patch_raycluster(self.name, ops)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            _log("ERROR", "node_provider.py", "Failed to patch RayCluster %s/%s: %s" % (self.ns, self.name, exc))

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
            try:
                self.update()
            except Exception as exc:  # Monitor._run logs an update's exception and goes on
                _log("ERROR", "monitor.py", "Autoscaler update failed: %r" % (exc,))
            self.stop.wait(self.interval_s)
        _log("INFO", "monitor.py", "Autoscaler stand-in exiting.")
        return 0

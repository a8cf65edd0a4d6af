"""KubeRay compatibility: run a KubeRay sample under KubeRay and under raywarden, collect what each
operator made, normalise the run-time parts away and compare field by field.

    from compatlib import OperatorCluster, run_sample, diff, Allowed
    kr = OperatorCluster.start("kuberay");  rw = OperatorCluster.start("raywarden")
    snaps = run_sample([kr, rw], sample_path, ns)     # {"kuberay": {...}, "raywarden": {...}}
    for d in diff(snaps["kuberay"], snaps["raywarden"]): ...   # Diff(path, kuberay, raywarden)
    allowed = Allowed.from_doc(DOC)                   # docs/kuberay-compatibility.md's table

A snapshot is {object key: {JSON-pointer path: value}} of the namespace's pods, services,
serviceaccounts, roles, rolebindings, batch jobs and Ray custom resources, minus what the
sample itself holds and what was there before it. Normalised: uids, resourceVersions,
creation metadata, timestamps and IPs become placeholders, and random name suffixes
(a generateName's, and the <parent>-<5 random> of RayJob/RayService clusters and job ids)
become "#####" everywhere they appear. Lists of named things (containers, env, ports,
volumes, conditions) are keyed by name (or type), so a path reads like
Pod:raycluster-kuberay-head-#####/spec/containers[ray-head]/env[RAY_ADDRESS]/value.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time

from clusterlib import LocalCluster, default_control_plane, wait_for

from kubesim import operators  # noqa: E402  (clusterlib put tests/sim on sys.path)
from kubesim.testutil import WaitTimeout  # noqa: E402

ABSENT = "<absent>"
RAND = "[bcdfghjklmnpqrstvwxz2456789]{5}"  # k8s.io/apimachinery/pkg/util/rand alphabet
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
IPV4 = re.compile(r"(?<![\d.])(?!0\.0\.0\.0(?![\d.]))(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")  # not 0.0.0.0

# kind -> API collection path (namespaced)
KINDS = (("Pod", "/api/v1/namespaces/%s/pods"),
         ("Service", "/api/v1/namespaces/%s/services"),
         ("ServiceAccount", "/api/v1/namespaces/%s/serviceaccounts"),
         ("Role", "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles"),
         ("RoleBinding", "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings"),
         ("Job", "/apis/batch/v1/namespaces/%s/jobs"),
         ("RayCluster", "/apis/ray.io/v1/namespaces/%s/rayclusters"),
         ("RayJob", "/apis/ray.io/v1/namespaces/%s/rayjobs"),
         ("RayService", "/apis/ray.io/v1/namespaces/%s/rayservices"))
RAY_KINDS = ("RayCluster", "RayJob", "RayService")
# Set by the API server, scheduler or kubelet, identical in kind on both clusters.
DROP_META = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink", "namespace",
             "deletionTimestamp", "deletionGracePeriodSeconds")
# Of the pods' status only what an operator influences (readiness gates) and the phase.
POD_STATUS = ("phase", "conditions")


class OperatorCluster(LocalCluster):
    """A private local cluster (state dir /tmp/kr-state-*) with one operator."""

    @classmethod
    def start(cls, operator, timeout=120.0):
        state = tempfile.mkdtemp(prefix="kr-state-%s-" % operator)
        lc = cls(state, own_state=True)
        lc.operator = operator
        cp = default_control_plane()
        rc = lc.cluster.up(nodes=1, backoff_base=1, quiet=True, timeout=timeout if cp == "sim" else max(timeout, 120.0),
                           operator=operator, control_plane=cp)
        if rc != 0:
            logs = os.path.join(state, "logs")
            keep = tempfile.mkdtemp(prefix="kr-state-failed-")
            shutil.copytree(logs, os.path.join(keep, "logs"), dirs_exist_ok=True)
            lc.stop()
            raise RuntimeError("local-cluster up --operator %s failed (%s); logs in %s" % (operator, rc, keep))
        return lc

    def operator_log(self):
        name = operators.KUBERAY if self.operator == "kuberay" else "raywarden-controller"
        try:
            with open(os.path.join(self.state, "logs", name + ".log")) as f:
                return f.read()
        except OSError:
            return ""

    def list(self, path):
        return (self.get(path) or {}).get("items") or []


# ---- samples --------------------------------------------------------------------------------

def sample_objects(path):
    """[(kind, name)] of the documents of a sample (kubectl's own parse, no cluster needed)."""
    out = []
    with open(path) as f:
        text = f.read()
    for doc in re.split(r"(?m)^---\s*$", text):
        kind = re.search(r"(?m)^kind:\s*(\S+)", doc)
        name = re.search(r"(?m)^metadata:\s*\n(?:\s+.*\n)*?\s+name:\s*(\S+)", doc)
        if kind and name:
            out.append((kind.group(1), name.group(1).strip("\"'")))
    return out


def ray_resources(path):
    return [(k, n) for k, n in sample_objects(path) if k in RAY_KINDS]


def cr_path(kind, ns, name):
    return "/apis/ray.io/v1/namespaces/%s/%ss/%s" % (ns, kind.lower(), name)


def cr_settled(lc, kind, ns, name):
    """The sample's CR reached its goal: RayCluster ready, RayJob terminal, RayService running."""
    obj = lc.get_or_none(cr_path(kind, ns, name))
    st = (obj or {}).get("status") or {}
    if kind == "RayCluster":
        return st.get("state") == "ready"
    if kind == "RayJob":
        return st.get("jobDeploymentStatus") in ("Complete", "Failed")
    if kind == "RayService":
        if st.get("serviceStatus") == "Running":
            return True
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
    return False


def pods_quiet(lc, ns, exclude):
    """Nothing on its way: every pod has terminated (Succeeded, Failed) or is initialized with
    each container running or terminated (not Ready: a finished sidecar leaves its pod not
    Ready, and so does a RayService worker without a Serve replica)."""
    for p in lc.list(KINDS[0][1] % ns):
        if ("Pod", p["metadata"]["name"]) in exclude:
            continue
        st = p.get("status") or {}
        if st.get("phase") in ("Succeeded", "Failed"):
            continue
        if (p.get("metadata") or {}).get("deletionTimestamp"):
            return False
        if not any(c.get("type") == "Initialized" and c.get("status") == "True" for c in st.get("conditions") or []):
            return False
        cs = st.get("containerStatuses") or []
        if len(cs) < len((p.get("spec") or {}).get("containers") or []):
            return False
        if not all("running" in (c.get("state") or {}) or "terminated" in (c.get("state") or {}) for c in cs):
            return False
    return True


# ---- collecting and normalising ---------------------------------------------------------------

def collect(lc, ns, exclude):
    """{kind: [object]} of the namespace, without the (kind, name) pairs in exclude, the pods
    of the sample's own workloads (owned by a ReplicaSet) and ServiceAccount `default` (the
    serviceaccount controller's, made in every namespace whenever it gets to it)."""
    out = {}
    for kind, coll in KINDS:
        items = []
        for o in lc.list(coll % ns):
            md = o.get("metadata") or {}
            if (kind, md.get("name")) in exclude or (kind, md.get("name")) == ("ServiceAccount", "default"):
                continue
            if kind == "Pod" and any(r.get("kind") == "ReplicaSet" for r in md.get("ownerReferences") or []):
                continue
            o.setdefault("kind", kind)
            items.append(o)
        out[kind] = items
    return out


def _suffix_map(objs, parents):
    """{generated name: normalised name} for this snapshot."""
    m = {}
    for items in objs.values():
        for o in items:
            md = o.get("metadata") or {}
            g, n = md.get("generateName"), md.get("name") or ""
            if g and n.startswith(g) and re.fullmatch(RAND, n[len(g):]):
                m[n] = g + "#####"
    return m


def normalise_string(s, names, parents):
    for k in sorted(names, key=len, reverse=True):
        if k in s:
            s = s.replace(k, names[k])
    for p in parents:
        s = re.sub(re.escape(p) + "-" + RAND + "(?![a-z0-9])", p + "-#####", s)
    # The ServiceAccount admission plugin's token volume (kube-api-access-<random>).
    s = re.sub(r"\bkube-api-access-" + RAND + "(?![a-z0-9])", "kube-api-access-#####", s)
    s = UUID.sub("<uid>", s)
    s = TIME.sub("<time>", s)
    s = IPV4.sub("<ip>", s)
    return s


def _walk(v, f):
    if isinstance(v, dict):
        return {f(k) if isinstance(k, str) else k: _walk(x, f) for k, x in v.items()}
    if isinstance(v, list):
        return [_walk(x, f) for x in v]
    if isinstance(v, str):
        return f(v)
    return v


def _trim(kind, o, sample_crs):
    o = json.loads(json.dumps(o))
    md = o.get("metadata") or {}
    for k in DROP_META:
        md.pop(k, None)
    o.pop("apiVersion", None)
    if kind == "Pod":
        st = o.get("status") or {}
        o["status"] = {k: st[k] for k in POD_STATUS if k in st}
        if "conditions" in o["status"]:
            o["status"]["conditions"] = [{"type": c.get("type"), "status": c.get("status"), "reason": c.get("reason")}
                                         for c in o["status"]["conditions"]]
    elif kind == "Service":
        o.pop("status", None)
    elif kind == "Job":
        st = o.get("status") or {}
        o["status"] = {k: st[k] for k in ("succeeded", "failed") if k in st}
    if (kind, md.get("name")) in sample_crs:
        md.pop("generation", None)
    return o


def _flatten(v, path, out):
    if isinstance(v, dict):
        if not v:
            out[path] = {}
        for k in sorted(v):
            _flatten(v[k], path + "/" + k.replace("~", "~0").replace("/", "~1"), out)
    elif isinstance(v, list):
        if not v:
            out[path] = []
            return
        keyf = None
        for key in ("name", "type", "containerPort", "mountPath"):
            vals = [x.get(key) if isinstance(x, dict) else None for x in v]
            if all(isinstance(x, (str, int)) for x in vals) and len(set(vals)) == len(vals):
                keyf = key
                break
        for i, x in enumerate(v):
            _flatten(x, "%s[%s]" % (path, x[keyf] if keyf else i), out)
    else:
        out[path] = v


def snapshot(objs, parents, sample_crs):
    """{object key: {path: value}} normalised (see the module doc)."""
    names = _suffix_map(objs, parents)
    snap = {}
    for kind, items in objs.items():
        keyed = []
        for o in items:
            o = _walk(_trim(kind, o, sample_crs), lambda s: normalise_string(s, names, parents))
            key = "%s:%s" % (kind, o["metadata"].get("name"))
            idx = (o["metadata"].get("labels") or {}).get("ray.io/worker-group-replica-index")
            keyed.append((key + ("@" + idx if idx is not None else ""), o))  # workers of a group by index
        seen = {}
        for key, o in sorted(keyed, key=lambda kv: (kv[0], json.dumps(kv[1], sort_keys=True))):
            n = seen.get(key, 0)
            seen[key] = n + 1
            flat = {}
            _flatten(o, "", flat)
            snap[key + ("#%d" % n if n else "")] = flat
    return snap


# ---- running a sample on several clusters ------------------------------------------------------

def baseline(lc, ns):
    return {(k, o["metadata"]["name"]) for k, coll in KINDS for o in lc.list(coll % ns)}


def run_sample(clusters, path, ns, timeout=150.0, stable_s=10.0, goal_stable_s=6.0):
    """Apply the sample to namespace ns of every cluster at once, wait until each settles (its
    Ray resources reach their goal and nothing changed for goal_stable_s, so that readiness
    and counts that follow the goal are in; or, for one that cannot, nothing changed for stable_s),
    snapshot, then delete what the sample made and wait until the namespace is empty of it.
    Returns ({operator: snapshot}, {operator: settled how})."""
    objs = sample_objects(path)
    crs = ray_resources(path)
    parents = [n for _k, n in crs]
    exclude = {(k, n) for k, n in objs if k not in RAY_KINDS}  # the sample's CRs are compared (status)
    base = {}
    for lc in clusters:
        lc.kubectl("create", "namespace", ns)
        base[lc.operator] = baseline(lc, ns)
    snaps, how, errors = {}, {}, []

    def one(lc):
        try:
            lc.apply(path, ns)
            ex = exclude | base[lc.operator]
            t0 = time.monotonic()
            state = {"last": None, "since": t0}

            def settled():
                if not pods_quiet(lc, ns, ex):
                    state["last"] = None  # pods still on their way: neither goal nor stable yet
                    return None
                goal = all(cr_settled(lc, k, ns, n) for k, n in crs)
                snap = snapshot(collect(lc, ns, ex), parents, set(crs))
                now = time.monotonic()
                if snap != state["last"]:
                    state["last"], state["since"] = snap, now
                elif goal and now - state["since"] >= goal_stable_s:
                    return "ready"  # and nothing changed since for goal_stable_s (readiness, counts)
                elif now - state["since"] >= stable_s and now - t0 >= 2 * stable_s:
                    return "stable"
                return None

            try:
                how[lc.operator] = wait_for(settled, timeout, 0.5, "%s settles under %s" % (path, lc.operator))
            except WaitTimeout:
                how[lc.operator] = "timeout"
            snaps[lc.operator] = snapshot(collect(lc, ns, ex), parents, set(crs))
        except Exception as e:  # noqa: BLE001 -- reported by the caller
            errors.append((lc.operator, e))

    threads = [threading.Thread(target=one, args=(lc,)) for lc in clusters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for lc in clusters:
        stuck = cleanup(lc, path, ns, base[lc.operator])
        if stuck:
            log("warning: %s: under %s still there after deletion: %s" % (os.path.basename(path), lc.operator,
                                                                          ", ".join(stuck)))
    if errors:
        raise RuntimeError("; ".join("%s: %r" % e for e in errors))
    return snaps, how


def cleanup(lc, path, ns, keep, timeout=120.0):
    """Delete the sample: its Ray resources first (so that finalizers that still need the
    sample's other objects, such as KubeRay's Redis cleanup Job needing the sample's Redis, can
    finish), then the rest; wait until no pod or Ray resource of it is left in ns. Returns None,
    or what was still there at the deadline."""
    crs = ray_resources(path)

    def left(kinds):
        return ["%s/%s" % (k, o["metadata"]["name"]) for k, coll in KINDS if k in kinds
                for o in lc.list(coll % ns) if (k, o["metadata"]["name"]) not in keep]

    try:
        if crs:
            lc.kubectl("delete", "-n", ns, "--wait=false", "--ignore-not-found",
                       *["%s/%s" % (k.lower(), n) for k, n in crs], check=False)
            wait_for(lambda: not left(RAY_KINDS), timeout, 0.25, "Ray resources of %s deleted from %s under %s"
                     % (os.path.basename(path), ns, lc.operator))
        lc.kubectl("delete", "-n", ns, "-f", path, "--wait=false", "--ignore-not-found", check=False)
        wait_for(lambda: not left(("Pod",) + RAY_KINDS), timeout, 0.25, "pods of %s deleted from %s under %s"
                 % (os.path.basename(path), ns, lc.operator))
        return None
    except WaitTimeout:
        return left(("Pod",) + RAY_KINDS)


# ---- comparing -------------------------------------------------------------------------------

class Diff:
    __slots__ = ("path", "kuberay", "raywarden")

    def __init__(self, path, kuberay, raywarden):
        self.path, self.kuberay, self.raywarden = path, kuberay, raywarden

    def row(self, sample):
        return "%s | %s | %s | %s | ?" % (sample, self.path, cell(self.kuberay), cell(self.raywarden))


def cell(v):
    if v is ABSENT:
        return ABSENT
    s = json.dumps(v, sort_keys=True)
    return s.replace("|", "\\u007c")


def diff(a, b):
    """[Diff] between two snapshots: a whole object one side lacks is one Diff (path = key)."""
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            out.append(Diff(key, "present" if key in a else ABSENT, "present" if key in b else ABSENT))
            continue
        fa, fb = a[key], b[key]
        for p in sorted(set(fa) | set(fb)):
            va, vb = fa.get(p, ABSENT), fb.get(p, ABSENT)
            if va != vb:
                out.append(Diff(key + p, va, vb))
    return out


def glob(text, pattern):
    """fnmatch with only * and ? special ([ and ] are literal: they index lists in paths)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, re.S) is not None


class Allowed:
    """The table of docs/kuberay-compatibility.md (the fenced ```compat block): rows
    `sample | path | kuberay | raywarden | why`, each cell but why a pattern (* any text, ? one
    character, everything else literal; values against their JSON form, <absent> for a missing
    field). The first row that matches a difference explains it."""

    def __init__(self, rows):
        self.rows = rows
        self.used = [0] * len(rows)

    @classmethod
    def from_doc(cls, path):
        with open(path) as f:
            text = f.read()
        m = re.search(r"```compat\n(.*?)```", text, re.S)
        if not m:
            raise ValueError("%s has no ```compat block" % path)
        rows = []
        for line in m.group(1).splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in line.split(" | ")]
            if len(cells) != 5 or not cells[4]:
                raise ValueError("%s: bad row (want `sample | path | kuberay | raywarden | why`): %r" % (path, line))
            rows.append(cells)
        return cls(rows)

    def match(self, sample, d):
        for i, (s, p, k, r, _why) in enumerate(self.rows):
            if (glob(sample, s) and glob(d.path, p) and glob(cell(d.kuberay), k) and glob(cell(d.raywarden), r)):
                self.used[i] += 1
                return self.rows[i]
        return None

    def unused(self):
        return [r for r, n in zip(self.rows, self.used) if not n]


def log(msg):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()

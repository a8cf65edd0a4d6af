"""The scheduling decisions of the simulated kube-scheduler (the kubelet simulator's scheduler loop
binds through them): the filter plugins the default profile runs, in its order, and the
FailedScheduling message.

Sources (Kubernetes v1.34):
- pkg/scheduler/apis/config/v1/default_plugins.go: filter order NodeUnschedulable, NodeName,
  TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, ...; a node's first failing plugin
  gives its reasons.
- pkg/scheduler/framework/plugins/nodeunschedulable/node_unschedulable.go: "node(s) were
  unschedulable" unless the pod tolerates node.kubernetes.io/unschedulable:NoSchedule.
- pkg/scheduler/framework/plugins/tainttoleration/taint_toleration.go: "node(s) had untolerated
  taint(s)" (NoSchedule and NoExecute taints); k8s.io/api/core/v1 toleration.go ToleratesTaint.
- pkg/scheduler/framework/plugins/nodeaffinity/node_affinity.go: "node(s) didn't match Pod's node
  affinity/selector" (spec.nodeSelector and requiredDuringSchedulingIgnoredDuringExecution;
  k8s.io/component-helpers/scheduling/corev1/nodeaffinity).
- pkg/scheduler/framework/plugins/noderesources/fit.go fitsRequest: "Too many pods",
  "Insufficient cpu|memory|ephemeral-storage|<extended resource>"; unresolvable when the request
  exceeds the node's allocatable. Requests as k8s.io/component-helpers/resource/helpers.go
  PodRequests: max(sum of containers + sidecars, max over init containers of the init container
  plus the sidecars started before it), plus spec.overhead; pod-level spec.resources.requests
  replace cpu and memory when set. Pods in phase Succeeded/Failed do not count (the scheduler's
  pod informer excludes them, pkg/scheduler/scheduler.go).
- pkg/scheduler/framework/types.go FitError.Error and
  pkg/scheduler/framework/preemption/preemption.go, plugins/defaultpreemption: "0/N nodes are
  available: <sorted reason histogram>. preemption: 0/N nodes are available: <k No preemption
  victims found for incoming pod, m Preemption is not helpful for scheduling>." (no pod has a
  lower priority to evict: priorities are not simulated).
"""

import math

from .kubelet_env import parse_quantity

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_TAINT = "node(s) had untolerated taint(s)"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_NODES = "no nodes available to schedule pods"


def _qty(v, milli=False):
    """resource.Quantity MilliValue()/Value(): rounded up to an integer."""
    try:
        f = parse_quantity(v)
    except ValueError:
        return 0
    return int(math.ceil(f * 1000 - 1e-9)) if milli else int(math.ceil(f - 1e-9))


def _is_scalar(name):
    # schedutil.IsScalarResourceName: extended resources (a domain outside kubernetes.io),
    # hugepages-*, and attachable volumes.
    return name.startswith("hugepages-") or name.startswith("attachable-volumes-") or \
        ("/" in name and not name.split("/", 1)[0].endswith("kubernetes.io"))


def resource_list(rl):
    """A ResourceList as integers: cpu in millicores, everything else in units."""
    out = {}
    for k, v in (rl or {}).items():
        if k == "cpu":
            out[k] = _qty(v, milli=True)
        elif k in ("memory", "ephemeral-storage") or _is_scalar(k):
            out[k] = _qty(v)
    return out


def _add(dst, src):
    for k, v in src.items():
        dst[k] = dst.get(k, 0) + v


def _max(dst, src):
    for k, v in src.items():
        if v > dst.get(k, 0):
            dst[k] = v


def pod_requests(pod):
    """What NodeResourcesFit counts for a pod (see the module comment)."""
    spec = pod.get("spec") or {}
    reqs = {}
    for c in spec.get("containers") or []:
        _add(reqs, resource_list(((c.get("resources") or {}).get("requests"))))
    sidecars = {}
    init = {}
    for c in spec.get("initContainers") or []:
        r = resource_list(((c.get("resources") or {}).get("requests")))
        if c.get("restartPolicy") == "Always":
            _add(reqs, r)
            _add(sidecars, r)
            r = dict(sidecars)
        else:
            _add(r, sidecars)
        _max(init, r)
    _max(reqs, init)
    pod_level = resource_list(((spec.get("resources") or {}).get("requests")))
    for k in ("cpu", "memory"):
        if k in pod_level:
            reqs[k] = pod_level[k]
    _add(reqs, resource_list(spec.get("overhead")))
    return reqs


def tolerates(toleration, taint):
    """v1.Toleration.ToleratesTaint."""
    eff = toleration.get("effect") or ""
    if eff and eff != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def _tolerated(pod, taint):
    return any(tolerates(t, taint) for t in (pod.get("spec") or {}).get("tolerations") or [])


def _expr_match(expr, value, present):
    op = expr.get("operator")
    vals = expr.get("values") or []
    if op == "In":
        return present and value in vals
    if op == "NotIn":
        return not present or value not in vals
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        try:
            a, b = int(value), int(vals[0])
        except (TypeError, ValueError, IndexError):
            return False
        return present and (a > b if op == "Gt" else a < b)
    return False


def _term_match(term, node):
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches no objects
    labels = (node.get("metadata") or {}).get("labels") or {}
    for e in exprs:
        if not _expr_match(e, labels.get(e.get("key")), e.get("key") in labels):
            return False
    for e in fields:
        if e.get("key") != "metadata.name" or \
                not _expr_match(e, node["metadata"]["name"], True):
            return False
    return True


def node_affinity_match(pod, node):
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if req is not None:
        return any(_term_match(t, node) for t in req.get("nodeSelectorTerms") or [])
    return True


def filter_node(pod, node, preqs, used, npods):
    """The node's failure reasons (empty when the pod fits) and whether preemption cannot help."""
    nspec = node.get("spec") or {}
    if nspec.get("unschedulable") and not _tolerated(
            pod, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}):
        return [REASON_UNSCHEDULABLE], True
    for t in nspec.get("taints") or []:
        if t.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(pod, t):
            return [REASON_TAINT], True
    if not node_affinity_match(pod, node):
        return [REASON_AFFINITY], True
    alloc = resource_list((node.get("status") or {}).get("allocatable"))
    max_pods = _qty(((node.get("status") or {}).get("allocatable") or {}).get("pods", 0))
    reasons, unresolvable = [], False
    if npods + 1 > max_pods:
        reasons.append("Too many pods")
    if not any(preqs.values()):
        return reasons, False
    for name in ["cpu", "memory", "ephemeral-storage"] + sorted(k for k in preqs if _is_scalar(k)):
        want = preqs.get(name, 0)
        if want <= 0:
            continue
        have = alloc.get(name, 0)
        if want > have - used.get(name, 0):
            reasons.append("Insufficient %s" % name)
            unresolvable = unresolvable or want > have
    return reasons, unresolvable


def _histogram(counts):
    return ", ".join(sorted("%d %s" % (n, r) for r, n in counts.items()))


def fit_error(pod, results):
    """FitError.Error() plus the DefaultPreemption PostFilter message; results is
    [(reasons, unresolvable)] per node."""
    if not results:
        return NO_NODES
    n = len(results)
    counts = {}
    for reasons, _ in results:
        for r in reasons:
            counts[r] = counts.get(r, 0) + 1
    msg = "0/%d nodes are available: %s." % (n, _histogram(counts))
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return msg + " preemption: not eligible due to preemptionPolicy=Never."
    pre = {}
    for _, unresolvable in results:
        r = NOT_HELPFUL if unresolvable else NO_VICTIMS
        pre[r] = pre.get(r, 0) + 1
    return msg + " preemption: 0/%d nodes are available: %s." % (n, _histogram(pre))

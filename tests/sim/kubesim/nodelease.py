"""A Node's heartbeat Lease (coordination.k8s.io/v1, namespace kube-node-lease), renewed as the
real kubelet does (pkg/kubelet/nodelease, k8s.io/component-helpers/apimachinery/lease:
leaseDurationSeconds 40, renewed every 10 s, owned by its Node). A real control plane's node
lifecycle controller reads it: a Node whose Lease stops being renewed for the grace period
(50 s) becomes Unknown, its pods are marked not Ready and, after 300 s, evicted. Shared by the
kubelet simulator and the fake kubelet."""

import threading
import time

from .kubeclient import ApiError

NAMESPACE = "kube-node-lease"
DURATION_S = 40
RENEW_S = 10.0


def micro_time(t=None):
    """metav1.MicroTime in RFC 3339 with microseconds."""
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def renew(client, node):
    """Create or renew node's Lease; returns an error text, or None."""
    try:
        cur = client.get_or_none("leases", NAMESPACE, node)
        if cur is None:
            n = client.get("nodes", None, node)
            client.create("leases", NAMESPACE, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": node, "namespace": NAMESPACE, "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Node", "name": node, "uid": n["metadata"]["uid"]}]},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": DURATION_S, "renewTime": micro_time()}})
        else:
            cur.setdefault("spec", {})["renewTime"] = micro_time()
            client.replace("leases", NAMESPACE, node, cur)
    except (ApiError, OSError, KeyError, ValueError) as e:
        return str(e)
    return None


def renew_loop(client, nodes, stopping, log, skip=lambda n: False):
    """Renew every node's Lease each RENEW_S until stopping is set (a daemon thread's body)."""
    while True:
        for n in nodes():
            if not skip(n):
                err = renew(client, n)
                if err:
                    log("node %s: lease renewal failed: %s" % (n, err))
        if stopping.wait(RENEW_S):
            return


def start(client, nodes, stopping, log, skip=lambda n: False):
    t = threading.Thread(target=renew_loop, args=(client, nodes, stopping, log, skip), daemon=True,
                         name="node-leases")
    t.start()
    return t

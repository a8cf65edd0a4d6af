"""End to end, least privilege: on the local cluster the controller runs as ServiceAccount
raywarden-system/raywarden-controller, bound by manifests/rbac, and the simulated API server
enforces RBAC for it as a real one does. A grant taken out of the ClusterRole makes the
simulator answer 403 with the real message, the controller reports the refusal (an Event on the
RayCluster and a log line) and recovers once the grant is back; without its ClusterRoleBinding the
controller's token may do nothing. Uses clusterlib.py."""

import json
import os
import ssl
import sys
import unittest
import urllib.error
import urllib.request

from clusterlib import SRC, LocalClusterCase, wait_for

sys.path.insert(0, os.path.join(SRC, "tests", "sim"))
from kubesim import controller_identity  # noqa: E402

NS = "default"
NAME = "raycluster-mini"
SA_USER = "system:serviceaccount:raywarden-system:raywarden-controller"
ROLE = "/apis/rbac.authorization.k8s.io/v1/clusterroles/raywarden-controller"
BINDING = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/raywarden-controller"


class Rbac(LocalClusterCase):
    RBAC_REFUSALS_EXPECTED = True  # this class takes grants away on purpose

    def tearDown(self):
        controller_identity.apply_rbac(self.lc.state)  # whatever a test took away
        super().tearDown()

    def as_controller(self, path):
        """GET path with the controller's own token: (HTTP code, body)."""
        with open(os.path.join(self.lc.state, "raywarden-controller.kubeconfig")) as f:
            tok = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("    token:")][0]
        a = self.lc.api()
        req = urllib.request.Request(a["url"] + path, headers={"Authorization": "Bearer " + tok})
        ctx = ssl.create_default_context(cafile=os.path.join(self.lc.state, "ca.crt"))
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_1_missing_grant_refused_reported_and_recovered(self):
        lc = self.lc
        role = lc.get(ROLE)
        for rule in role["rules"]:
            if rule["apiGroups"] == [""] and rule["resources"] == ["pods"] and "create" in rule["verbs"]:
                rule["verbs"].remove("create")
        lc.request("PUT", ROLE, role)
        lc.apply(os.path.join(SRC, "manifests", "samples", "ray-cluster.mini.yaml"), ns=NS)
        want = ('pods is forbidden: User "%s" cannot create resource "pods" in API group "" in '
                'the namespace "%s"' % (SA_USER, NS))

        def refused():
            evs = lc.events(NS, name=NAME, reason="FailedToCreateHeadPod")
            return [e for e in evs if want in (e.get("note") or "")]

        evs = wait_for(refused, 60, what="a FailedToCreateHeadPod Event naming the 403")
        self.assertIn("HTTP 403", evs[0]["note"])
        self.assertEqual(lc.pods(NS, cluster=NAME), [])
        wait_for(lambda: want in lc.controller_log(), 10, what="the refusal in the controller log")
        # The grant back: the next retry creates the pods and the cluster becomes ready.
        controller_identity.apply_rbac(lc.state)
        lc.wait_cluster_ready(NS, NAME, timeout=120)
        lc.delete_cluster(NS, NAME)

    def test_2_no_binding_no_access(self):
        lc = self.lc
        code, _ = self.as_controller("/api/v1/namespaces/%s/pods" % NS)
        self.assertEqual(code, 200)
        lc.delete(BINDING)
        code, body = self.as_controller("/api/v1/namespaces/%s/pods" % NS)
        self.assertEqual(code, 403, body)
        st = json.loads(body)
        self.assertEqual((st["reason"], st["code"]), ("Forbidden", 403))
        self.assertEqual(st["message"], 'pods is forbidden: User "%s" cannot list resource "pods" '
                         'in API group "" in the namespace "%s"' % (SA_USER, NS))
        # The leader-election Role is separate and namespaced: Leases elsewhere are refused.
        code, _ = self.as_controller("/apis/coordination.k8s.io/v1/namespaces/raywarden-system/"
                                     "leases/x")
        self.assertEqual(code, 404)  # allowed (get), the Lease just does not exist
        code, _ = self.as_controller("/apis/coordination.k8s.io/v1/namespaces/default/leases/x")
        self.assertEqual(code, 403)
        controller_identity.apply_rbac(lc.state)
        self.assertEqual(self.as_controller("/api/v1/namespaces/%s/pods" % NS)[0], 200)


if __name__ == "__main__":
    unittest.main()

"""End to end on the real Kubernetes control plane (`local-cluster up --control-plane real`:
etcd, kube-apiserver, kube-controller-manager and kube-scheduler at the pinned release,
kubesim/realcp.py), with the kubelet and proxy simulators and raywarden-controller:

- the control plane is the real one: /version is the pinned release; the kubelet simulator's
  Nodes are Ready with their heartbeat Leases; the `default` ServiceAccount exists (made by the
  real serviceaccount controller);
- KubeRay's ray-cluster.sample.yaml, applied unchanged, reaches status.state ready; its pods were
  bound by the real default-scheduler, and the real EndpointSlice controller lists the head pod
  (under its pod-network address) in the head Service's slice;
- the controller runs as its ServiceAccount under the real RBAC authorizer and is refused
  anything its ClusterRole does not grant (reading ConfigMaps, deleting Secrets);
- deleting the RayCluster removes its pods and Services through the real garbage collector;
- every KubeRay sample of shared/corpus, and KubeRay's own ray-cluster.tls.yaml (line-wrapped
  base64 in its Secret), passes the real API server's validation unchanged (server-side dry run);
- raywarden's CRDs validate on the real server as KubeRay's do: a misspelt pod-template field and
  an invalid quantity are refused, and `kubectl explain` descends into the pod templates.

Skipped, saying why, when the upstream binaries are not built (tests/sim/upstream/build) or
shared/corpus is absent.
"""

import os
import subprocess
import sys
import unittest

from clusterlib import CORPUS, LocalClusterCase, pod_ready, wait_for
from kubesim import realcp, upstream

NS = "default"
NAME = "raycluster-kuberay"  # the sample's metadata.name


class RealControlPlaneRayCluster(LocalClusterCase):
    SAMPLE = "ray-cluster.sample.yaml"
    CONTROL_PLANE = "real"

    def test_1_control_plane_is_real(self):
        v = self.lc.get("/version")
        self.assertEqual(v.get("gitVersion"), upstream.KUBERNETES)
        nodes = self.lc.get("/api/v1/nodes")["items"]
        self.assertTrue(nodes)
        for n in nodes:
            ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"]
            self.assertEqual(ready[0]["status"], "True", n["metadata"]["name"])
            lease = self.lc.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + n["metadata"]["name"])
            self.assertEqual(lease["spec"]["holderIdentity"], n["metadata"]["name"])
        wait_for(lambda: self.lc.get_or_none("/api/v1/namespaces/%s/serviceaccounts/default" % NS), timeout=60,
                 what="the serviceaccount controller's default ServiceAccount")

    def test_2_sample_ready(self):
        self.lc.apply(self.sample, ns=NS)
        self.lc.wait_cluster_ready(NS, NAME, timeout=180)
        pods = self.lc.pods(NS, NAME)
        self.assertTrue(pods)
        for p in pods:
            self.assertTrue(pod_ready(p), p["metadata"]["name"])
            ev = self.lc.events(NS, p["metadata"]["name"], reason="Scheduled")
            self.assertTrue(any("default-scheduler" in (e.get("reportingController"), e.get("reportingComponent"))
                                for e in ev), "not bound by the real scheduler: %s" % ev)
            ip = p["status"]["podIP"]
            self.assertTrue(ip.startswith("10."), ip)  # the pod network, not loopback
        head = [p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "head"][0]
        svc = NAME + "-head-svc"

        def head_in_slice():
            slices = self.lc.get("/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % NS,
                                 labelSelector="kubernetes.io/service-name=" + svc)["items"]
            return any(head["status"]["podIP"] in (ep.get("addresses") or [])
                       and (ep.get("conditions") or {}).get("ready") for s in slices for ep in s.get("endpoints") or [])

        wait_for(head_in_slice, timeout=60, what="the head pod in %s's EndpointSlice" % svc)
        self.assertEqual(realcp.host_ip(head["status"]["podIP"]), "127." + head["status"]["podIP"][3:])

    def test_3_rbac_enforced(self):
        kc = os.path.join(self.lc.state, "raywarden-controller.kubeconfig")
        r = subprocess.run(["kubectl", "--kubeconfig", kc, "auth", "can-i", "delete", "secrets", "--all-namespaces"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.stdout.decode().strip().splitlines()[0], "no", r.stdout)
        r = subprocess.run(["kubectl", "--kubeconfig", kc, "get", "configmaps", "-A"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("forbidden", r.stdout.decode())
        r = subprocess.run(["kubectl", "--kubeconfig", kc, "auth", "can-i", "create", "pods", "-n", NS],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.stdout.decode().strip(), "yes", r.stdout)

    def test_4_delete_collects_garbage(self):
        if not self.lc.get_or_none("/apis/ray.io/v1/namespaces/%s/rayclusters/%s" % (NS, NAME)):
            self.lc.apply(self.sample, ns=NS)
            self.lc.wait_cluster_ready(NS, NAME, timeout=180)
        self.lc.delete_cluster(NS, NAME)

        def gone():
            pods = self.lc.pods(NS, NAME, include_deleting=True)
            svcs = [s for s in self.lc.get("/api/v1/namespaces/%s/services" % NS)["items"]
                    if s["metadata"]["name"].startswith(NAME)]
            return not pods and not svcs

        wait_for(gone, timeout=120, what="the RayCluster's pods and Services collected")

    def test_5_samples_pass_validation(self):
        samples = sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS) if f.endswith(".yaml"))
        samples.append(os.path.join(upstream.find().kuberay_src, "config", "samples", "ray-cluster.tls.yaml"))
        for path in samples:
            with self.subTest(sample=os.path.basename(path)):
                self.lc.kubectl("apply", "--dry-run=server", "-n", NS, "-f", path)  # raises on refusal

    def test_6_crd_schema_enforced(self):
        with open(self.sample) as f:
            text = f.read()
        image = "          image: rayproject/ray:"
        self.assertIn(image, text)
        cases = (
            (text.replace(image, "          imagePullPolicyy: IfNotPresent\n" + image, 1),
             'unknown field "spec.headGroupSpec.template.spec.containers[0].imagePullPolicyy"'),
            (text.replace('cpu: "1"', "cpu: lots", 1), "spec.headGroupSpec.template.spec.containers[0].resources.limits.cpu"),
        )
        for broken, want in cases:
            with self.subTest(want=want):
                with self.assertRaises(AssertionError) as cm:
                    self.lc.kubectl("apply", "--dry-run=server", "-n", NS, "-f", "-", input=broken)
                self.assertIn(want, str(cm.exception))
        out = self.lc.kubectl("explain", "raycluster.spec.headGroupSpec.template.spec.containers.imagePullPolicy")
        self.assertIn("imagePullPolicy", out)

if __name__ == "__main__":
    unittest.main(verbosity=2, stream=sys.stdout)



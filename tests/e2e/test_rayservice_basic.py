"""End to end, scenario S0 ("RayService worker pod not ready"): KubeRay's
ray-service.no-ray-serve-replica.yaml applied unchanged to the local cluster with
raywarden-controller -> the RayService becomes Ready; exactly one of the two workers is
ready, the one that hosts the replica; POST <serve-svc>:8000/basic through the Service's
DNS name (the simulated kube-proxy) answers "hello world"; num_replicas 1 -> 2 (kubectl
patch of serveConfigV2) makes both workers ready with no new RayCluster; the status,
labels, events and finalizer are KubeRay's; deleting the RayService removes its
RayCluster and then the RayService. Uses clusterlib.py and rslib.py."""

import json
import os
import time
import unittest

from clusterlib import LocalClusterCase, cond, pod_ready, wait_for
from kubesim.realcp import host_ip
from rslib import (owned_clusters, raysim_state, rayservice, ready_workers, rs_path, rs_status, serve_host,
                   serve_request, wait_rs_ready)

NS = "default"
NAME = "rayservice-no-ray-serve-replica"
SVC = NAME + "-serve-svc"


class RayServiceS0(LocalClusterCase):
    SAMPLE = "ray-service.no-ray-serve-replica.yaml"

    def worker_pods(self, cluster):
        return self.lc.pods(NS, cluster, "worker")

    def test_1_ready_one_worker(self):
        lc = self.lc
        t0 = time.monotonic()
        lc.apply(self.sample)
        st = wait_rs_ready(lc, NS, NAME, timeout=90)
        print("S0: RayService Ready %.2fs after kubectl apply" % (time.monotonic() - t0))
        cluster = st["activeServiceStatus"]["rayClusterName"]
        self.assertTrue(cluster.startswith(NAME + "-") and len(cluster) == len(NAME) + 6, cluster)
        self.assertEqual(owned_clusters(lc, NS, NAME), [cluster])
        rs = rayservice(lc, NS, NAME)
        self.assertIn("ray.io/rayservice-finalizer", rs["metadata"].get("finalizers", []))
        self.assertEqual(st["observedGeneration"], rs["metadata"]["generation"])
        self.assertEqual(st.get("pendingServiceStatus") or {}, {})
        up = cond({"status": st}, "UpgradeInProgress")
        self.assertEqual((up["status"], up["reason"]), ("False", "NoPendingCluster"))
        app = st["activeServiceStatus"]["applicationStatuses"]["simple_app"]
        self.assertEqual(app["status"], "RUNNING")
        self.assertEqual(app["serveDeploymentStatuses"]["BaseService"]["status"], "HEALTHY")
        self.assertEqual(st["activeServiceStatus"]["rayClusterStatus"]["desiredWorkerReplicas"], 2)

        # Exactly one worker is ready: the one hosting the replica, the other has no proxy.
        # Both Ray nodes must be up first (a worker may still wait for the GCS in its init
        # container, which is not ready either, for another reason).
        def both_up_one_ready():
            ws = self.worker_pods(cluster)
            if len(ws) != 2 or len([p for p in ws if pod_ready(p)]) != 1:
                return None
            try:
                states = [raysim_state(host_ip(p["status"]["podIP"])) for p in ws]
            except OSError:
                return None
            return list(zip(ws, states))
        pairs = wait_for(both_up_one_ready, 60, 0.2, "both workers up, exactly one ready")
        time.sleep(1.0)  # a second worker turning ready now would be a failure; re-read after a while
        ws = self.worker_pods(cluster)
        self.assertEqual(len([p for p in ws if pod_ready(p)]), 1)
        for p, state in pairs:
            p = [w for w in ws if w["metadata"]["name"] == p["metadata"]["name"]][0]
            hosts = len(state.get("replicas") or []) > 0
            self.assertEqual(pod_ready(p), hosts, "worker %s ready=%s hosts a replica=%s" %
                             (p["metadata"]["name"], pod_ready(p), hosts))
            self.assertEqual(p["metadata"]["labels"].get("ray.io/serve"), "true" if hosts else "false")
        head = lc.pods(NS, cluster, "head")[0]
        self.assertEqual(head["metadata"]["labels"].get("ray.io/serve"), "true")  # its proxy is healthy
        self.assertEqual(st["numServeEndpoints"], 2)  # head + the worker with the replica

        # The services: switched only by selector, serve ports only.
        svc = lc.get("/api/v1/namespaces/%s/services/%s" % (NS, SVC))
        self.assertEqual(svc["spec"]["selector"], {"ray.io/cluster": cluster, "ray.io/serve": "true"})
        self.assertEqual([(p["name"], p["port"]) for p in svc["spec"]["ports"]], [("serve", 8000)])
        self.assertEqual(svc["metadata"]["ownerReferences"][0]["kind"], "RayService")
        hsvc = lc.get("/api/v1/namespaces/%s/services/%s-head-svc" % (NS, NAME))
        self.assertEqual(hsvc["spec"]["selector"].get("ray.io/cluster"), cluster)
        for reason in ("CreatedRayCluster", "CreatedService"):
            self.assertTrue(lc.events(NS, NAME, reason), "no %s event" % reason)

    def test_2_request_through_serve_service(self):
        host = serve_host(NS, SVC)
        answers = [serve_request(host, "/basic", body="") for _ in range(20)]
        self.assertEqual(set(answers), {(200, "hello world")}, answers[:3])

    def test_3_two_replicas_in_place(self):
        lc = self.lc
        cluster = rs_status(lc, NS, NAME)["activeServiceStatus"]["rayClusterName"]
        cfg = rayservice(lc, NS, NAME)["spec"]["serveConfigV2"]
        self.assertIn("num_replicas: 1", cfg)
        patch = {"spec": {"serveConfigV2": cfg.replace("num_replicas: 1", "num_replicas: 2")}}
        t0 = time.monotonic()
        lc.kubectl("patch", "rayservice", NAME, "-n", NS, "--type", "merge", "-p", json.dumps(patch))
        wait_for(lambda: len(ready_workers(lc, NS, cluster)) == 2, 60, 0.1, "both workers ready")
        print("S0: both workers ready %.2fs after the patch" % (time.monotonic() - t0))
        wait_for(lambda: rs_status(lc, NS, NAME).get("numServeEndpoints") == 3, 30, 0.2, "3 serve endpoints")
        st = rs_status(lc, NS, NAME)
        self.assertEqual(st["activeServiceStatus"]["rayClusterName"], cluster)
        self.assertEqual(owned_clusters(lc, NS, NAME), [cluster], "no new RayCluster for a serve config change")
        self.assertEqual(st.get("pendingServiceStatus") or {}, {})
        for p in self.worker_pods(cluster):
            self.assertEqual(p["metadata"]["labels"].get("ray.io/serve"), "true")
        host = serve_host(NS, SVC)
        answers = [serve_request(host, "/basic", body="") for _ in range(10)]
        self.assertEqual(set(answers), {(200, "hello world")})

    def test_3b_suspend_resume(self):
        """spec.suspend as KubeRay (its e2e TestRayServiceSuspendResume): every owned RayCluster
        and Service deleted, Suspended True with Suspending / UpgradeInProgress / Ready False
        (SuspendComplete), status emptied; suspend false brings it back on a new cluster, with
        Suspended kept as False (RayServiceResumed), serving again."""
        lc = self.lc
        old = rs_status(lc, NS, NAME)["activeServiceStatus"]["rayClusterName"]
        sel = "ray.io/originated-from-cr-name=%s" % NAME
        t0 = time.monotonic()
        lc.kubectl("patch", "rayservice", NAME, "-n", NS, "--type", "merge", "-p", '{"spec":{"suspend":true}}')

        def suspended():
            c = cond({"status": rs_status(lc, NS, NAME)}, "Suspended")
            return c and c["status"] == "True"
        wait_for(suspended, 90, 0.2, "Suspended True")
        print("S0: Suspended %.2fs after spec.suspend=true" % (time.monotonic() - t0))
        st = rs_status(lc, NS, NAME)
        for ctype in ("Suspending", "UpgradeInProgress", "Ready"):
            c = cond({"status": st}, ctype)
            self.assertEqual((c["status"], c["reason"]), ("False", "SuspendComplete"), ctype)
        self.assertEqual((st.get("activeServiceStatus") or {}).get("rayClusterName", ""), "")
        self.assertEqual((st.get("pendingServiceStatus") or {}).get("rayClusterName", ""), "")
        self.assertFalse(st.get("numServeEndpoints"))
        self.assertEqual(owned_clusters(lc, NS, NAME), [])
        self.assertIsNone(lc.raycluster(NS, old))
        self.assertEqual(lc.services(NS, sel), [])

        t0 = time.monotonic()
        lc.kubectl("patch", "rayservice", NAME, "-n", NS, "--type", "merge", "-p", '{"spec":{"suspend":false}}')
        st = wait_rs_ready(lc, NS, NAME, timeout=90)
        print("S0: Ready again %.2fs after spec.suspend=false" % (time.monotonic() - t0))
        new = st["activeServiceStatus"]["rayClusterName"]
        self.assertNotEqual(new, old)
        c = cond({"status": st}, "Suspended")
        self.assertEqual((c["status"], c["reason"]), ("False", "RayServiceResumed"))
        c = cond({"status": st}, "Suspending")
        self.assertEqual(c["status"], "False")
        wait_for(lambda: len(ready_workers(lc, NS, new)) == 2, 60, 0.1, "both workers ready again")
        host = serve_host(NS, SVC)

        def serving():
            try:
                return serve_request(host, "/basic", body="", timeout=5) == (200, "hello world")
            except OSError:
                return False
        wait_for(serving, 30, 0.2, "serving again")

    def test_4_delete(self):
        lc = self.lc
        cluster = rs_status(lc, NS, NAME)["activeServiceStatus"]["rayClusterName"]
        lc.delete(rs_path(NS, NAME))
        wait_for(lambda: rayservice(lc, NS, NAME) is None, 60, 0.2, "RayService gone")
        self.assertIsNone(lc.raycluster(NS, cluster), "the finalizer waits for the RayCluster")
        # Collected by kube-controller-manager's garbage collector, not by the controller; on a
        # loaded two-core machine it has taken over 30 s (its work queues are rate limited).
        wait_for(lambda: not lc.services(NS, "ray.io/originated-from-cr-name=%s" % NAME), 120, 0.2,
                 "services collected")

    def test_5_first_cluster_failing_has_no_traffic(self):
        """A new RayService whose first cluster's application cannot deploy: the Warning
        names the pending cluster and says that no traffic is served (there is no active
        cluster to fall back on), not that traffic stays on one."""
        lc = self.lc
        name = "rs-never-serves"
        with open(self.sample) as f:
            doc = f.read().replace("name: " + NAME, "name: " + name, 1)
        doc = doc.replace("    - replicas: 2\n      minReplicas: 1", "    - replicas: 0\n      minReplicas: 0", 1)
        doc = doc.replace("          - name: ray-head\n",
                          "          - name: ray-head\n            env:\n            - name: RW_SIM_IMAGE_LACKS\n"
                          "              value: ray-operator\n", 1)
        self.assertIn("RW_SIM_IMAGE_LACKS", doc)
        lc.apply(doc)
        try:
            def event():
                evs = lc.events(NS, name, "PendingServeApplicationUnhealthy")
                return evs and evs[-1]
            ev = wait_for(event, 90, 0.2, "PendingServeApplicationUnhealthy Event")
            print("first cluster failing: %s" % ev["note"][:200])
            st = rs_status(lc, NS, name)
            self.assertFalse((st.get("activeServiceStatus") or {}).get("rayClusterName"))
            self.assertIn(st["pendingServiceStatus"]["rayClusterName"], ev["note"])
            self.assertIn("there is no active RayCluster yet: no traffic is served", ev["note"])
            self.assertNotIn("traffic stays", ev["note"])
        finally:
            lc.delete(rs_path(NS, name))
            wait_for(lambda: rayservice(lc, NS, name) is None, 60, 0.2, "RayService gone")


if __name__ == "__main__":
    unittest.main()

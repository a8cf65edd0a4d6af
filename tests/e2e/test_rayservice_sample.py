"""End to end, scenario S1 ("deploy a Ray Serve application"): KubeRay's
ray-service.sample.yaml applied unchanged to the local cluster with raywarden-controller
-> ["MANGO", 2] gives 6 and ["MUL", 3] gives "15 pizzas please!" through the serve
Service; the mango price 3 -> 4 is applied in place (8, same RayCluster); a worker
replicas change does not reach the RayCluster; a rayVersion change (with a short
rayClusterDeletionDelaySeconds) creates a new RayCluster, switches traffic only when it
can serve, and deletes the old one, while a client sending 8 requests at a time through
the serve Service counts every failed request (asserted 0). Uses clusterlib.py and rslib.py."""

import json
import os
import time
import unittest

from clusterlib import LocalClusterCase, wait_for
from rslib import (Client, active_cluster, owned_clusters, rayservice, rs_status, serve_host, serve_request,
                   wait_rs_ready)

NS = "default"
NAME = "rayservice-sample"
SVC = NAME + "-serve-svc"


def patch_rs(lc, patch):
    lc.kubectl("patch", "rayservice", NAME, "-n", NS, "--type", "merge", "-p", json.dumps(patch))


class RayServiceS1(LocalClusterCase):
    SAMPLE = "ray-service.sample.yaml"
    host = serve_host(NS, SVC)

    def fruit(self, body):
        return serve_request(self.host, "/fruit", body)

    def test_1_ready_and_answers(self):
        lc = self.lc
        t0 = time.monotonic()
        lc.apply(self.sample)
        st = wait_rs_ready(lc, NS, NAME, timeout=90)
        print("S1: RayService Ready %.2fs after kubectl apply" % (time.monotonic() - t0))
        apps = st["activeServiceStatus"]["applicationStatuses"]
        self.assertEqual({a: v["status"] for a, v in apps.items()}, {"fruit_app": "RUNNING", "math_app": "RUNNING"})
        self.assertEqual(self.fruit(["MANGO", 2]), (200, "6"))
        self.assertEqual(serve_request(self.host, "/calc", ["MUL", 3]), (200, "15 pizzas please!"))

    def test_2_price_in_place(self):
        lc = self.lc
        cluster = active_cluster(lc, NS, NAME)
        cfg = rayservice(lc, NS, NAME)["spec"]["serveConfigV2"]
        self.assertEqual(cfg.count("price: 3"), 1)
        t0 = time.monotonic()
        patch_rs(lc, {"spec": {"serveConfigV2": cfg.replace("price: 3", "price: 4")}})
        wait_for(lambda: self.fruit(["MANGO", 2]) == (200, "8"), 30, 0.1, "mango at price 4")
        print("S1: price 4 served %.2fs after the patch" % (time.monotonic() - t0))
        self.assertEqual(owned_clusters(lc, NS, NAME), [cluster])
        self.assertEqual(active_cluster(lc, NS, NAME), cluster)
        self.assertEqual(rs_status(lc, NS, NAME).get("pendingServiceStatus") or {}, {})

    def test_3_worker_replicas_not_propagated(self):
        lc = self.lc
        cluster = active_cluster(lc, NS, NAME)
        rs = rayservice(lc, NS, NAME)
        groups = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]
        groups[0]["replicas"] = 2
        gen = rs["metadata"]["generation"]
        patch_rs(lc, {"spec": {"rayClusterConfig": {"workerGroupSpecs": groups}}})
        wait_for(lambda: rs_status(lc, NS, NAME).get("observedGeneration", 0) > gen, 30, 0.1, "observed")
        time.sleep(1.0)  # give a wrong implementation the time to act, then check it did not
        rc = lc.raycluster(NS, cluster)
        self.assertEqual(rc["spec"]["workerGroupSpecs"][0]["replicas"], 1)
        self.assertEqual(owned_clusters(lc, NS, NAME), [cluster])
        self.assertEqual(rs_status(lc, NS, NAME).get("pendingServiceStatus") or {}, {})
        self.assertEqual(len(lc.pods(NS, cluster, "worker")), 1)

    def test_4_zero_downtime_upgrade(self):
        lc = self.lc
        old = active_cluster(lc, NS, NAME)
        self.assertEqual(self.fruit(["MANGO", 2]), (200, "8"))
        client = Client(self.host, "/fruit", ["MANGO", 2], "8", concurrency=8).start()
        try:
            wait_for(lambda: client.total() >= 50, 20, 0.05, "client running")
            t0 = time.monotonic()
            patch_rs(lc, {"spec": {"rayClusterDeletionDelaySeconds": 3,
                                   "rayClusterConfig": {"rayVersion": "2.52.1"}}})
            pending = wait_for(lambda: (rs_status(lc, NS, NAME).get("pendingServiceStatus") or {})
                               .get("rayClusterName"), 20, 0.05, "a pending cluster")
            self.assertNotEqual(pending, old)
            st = wait_for(lambda: active_cluster(lc, NS, NAME) == pending and rs_status(lc, NS, NAME), 120, 0.1,
                          "pending cluster promoted")
            switched = time.monotonic() - t0
            svc = lc.get("/api/v1/namespaces/%s/services/%s" % (NS, SVC))
            self.assertEqual(svc["spec"]["selector"]["ray.io/cluster"], pending)
            self.assertEqual(st.get("pendingServiceStatus") or {}, {})
            wait_for(lambda: lc.raycluster(NS, old) is None, 30, 0.1, "old cluster deleted")
            deleted = time.monotonic() - t0
            time.sleep(1.0)  # requests after the old cluster's pods went
        finally:
            ok, failed = client.stop()
        print("S1 upgrade: switched %.2fs, old cluster deleted %.2fs after the patch; %d requests, %d failed %s"
              % (switched, deleted, ok + failed, failed, client.causes[:5]))
        self.assertGreater(ok, 100)
        self.assertEqual(failed, 0, "failed requests during the upgrade: %s" % client.causes)
        self.assertEqual(owned_clusters(lc, NS, NAME), [pending])
        self.assertTrue(lc.events(NS, NAME, "DeletedRayCluster"))
        self.assertEqual(self.fruit(["MANGO", 2]), (200, "8"))

    def test_5_stuck_upgrade_reported(self):
        """An upgrade to an image that lacks the application's module (the simulator's
        RW_SIM_IMAGE_LACKS) never becomes servable: a Warning Event names the pending
        cluster and Serve's error, traffic stays on the active cluster, and fixing the spec
        completes the upgrade."""
        lc = self.lc
        old = active_cluster(lc, NS, NAME)
        cfg = rayservice(lc, NS, NAME)["spec"]["rayClusterConfig"]
        head = cfg["headGroupSpec"]["template"]["spec"]["containers"][0]
        head.setdefault("env", []).append({"name": "RW_SIM_IMAGE_LACKS", "value": "fruit"})
        cfg["rayVersion"] = "2.52.2"
        t0 = time.monotonic()
        patch_rs(lc, {"spec": {"rayClusterConfig": cfg}})
        pending = wait_for(lambda: (rs_status(lc, NS, NAME).get("pendingServiceStatus") or {})
                           .get("rayClusterName"), 20, 0.05, "a pending cluster")

        def event():
            evs = lc.events(NS, NAME, "PendingServeApplicationUnhealthy")
            return evs and evs[-1]
        ev = wait_for(event, 60, 0.2, "PendingServeApplicationUnhealthy Event")
        print("S1 stuck upgrade: Event %.2fs after the patch: %s" % (time.monotonic() - t0, ev["note"][:160]))
        self.assertEqual(ev["type"], "Warning")
        self.assertIn(pending, ev["note"])
        self.assertIn("fruit_app is DEPLOY_FAILED", ev["note"])
        self.assertIn("No module named 'fruit'", ev["note"])
        self.assertIn("traffic stays on the active RayCluster %s" % old, ev["note"])
        # The Event and the status are separate writes: wait for the status on its own.
        st = wait_for(lambda: (lambda s: s if ((s.get("pendingServiceStatus") or {}).get("applicationStatuses")
                                                or {}).get("fruit_app", {}).get("status") == "DEPLOY_FAILED"
                               else None)(rs_status(lc, NS, NAME)), 20, 0.1, "pending fruit_app DEPLOY_FAILED in status")
        self.assertEqual(st["activeServiceStatus"]["rayClusterName"], old)
        self.assertEqual(self.fruit(["MANGO", 2]), (200, "8"), "the active cluster keeps serving")

        head["env"] = [e for e in head["env"] if e["name"] != "RW_SIM_IMAGE_LACKS"]
        patch_rs(lc, {"spec": {"rayClusterConfig": cfg}})
        wait_for(lambda: active_cluster(lc, NS, NAME) not in (old, pending), 120, 0.2, "the fixed upgrade promoted")
        self.assertEqual(self.fruit(["MANGO", 2]), (200, "8"))
        wait_for(lambda: set(owned_clusters(lc, NS, NAME)) == {active_cluster(lc, NS, NAME)}, 60, 0.2,
                 "old and stuck clusters deleted")


if __name__ == "__main__":
    unittest.main()

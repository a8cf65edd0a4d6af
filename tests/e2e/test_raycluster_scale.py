"""End to end: scaling a RayCluster on the local cluster with raywarden-controller:
replicas up and down, scaleStrategy.workersToDelete, suspend and resume, a controller
restart (SIGKILL) in the middle of a scale-up creates no duplicate pods, and an invalid
spec gets KubeRay's Warning Event and a status reason with nothing created.
Uses tests/e2e/clusterlib.py."""

import json
import signal
import time
import unittest

from clusterlib import LocalClusterCase, cond, wait_for

NS = "default"
NAME = "rc-scale"

# A small cluster: the Ray simulator's nodes are cheap, so the numbers are what matters.
CLUSTER = {
    "apiVersion": "ray.io/v1",
    "kind": "RayCluster",
    "metadata": {"name": NAME},
    "spec": {
        "rayVersion": "2.52.0",
        "headGroupSpec": {
            "rayStartParams": {},
            "template": {"spec": {"containers": [{
                "name": "ray-head", "image": "rayproject/ray:2.52.0",
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}]}},
        },
        "workerGroupSpecs": [{
            "groupName": "small", "replicas": 1, "minReplicas": 0, "maxReplicas": 20,
            "rayStartParams": {},
            "template": {"spec": {"containers": [{
                "name": "ray-worker", "image": "rayproject/ray:2.52.0",
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}]}},
        }],
    },
}


def group_patch(**fields):
    g = dict(CLUSTER["spec"]["workerGroupSpecs"][0])
    g.update(fields)
    return {"spec": {"workerGroupSpecs": [g]}}


class RayClusterScale(LocalClusterCase):
    @classmethod
    def setUpCluster(cls):
        cls.lc.apply(json.dumps(CLUSTER))
        cls.lc.wait_cluster_ready(NS, NAME, workers=1, timeout=90)

    def workers(self, include_deleting=False):
        return self.lc.pods(NS, NAME, "worker", include_deleting=include_deleting)

    def all_workers_ever(self):
        """Names of every worker pod the API server has (deleting ones included)."""
        return {p["metadata"]["name"] for p in self.workers(include_deleting=True)}

    def assert_stays(self, fn, want, seconds, what):
        """fn() keeps returning want for `seconds` (checks an absence of change)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got = fn()
            self.assertEqual(got, want, what)
            time.sleep(0.1)

    def test_1_scale_up_and_down(self):
        t0 = time.monotonic()
        self.lc.patch_cluster(NS, NAME, group_patch(replicas=6))
        self.lc.wait_cluster_ready(NS, NAME, workers=6, timeout=90)
        print("scale 1 -> 6 ready in %.2fs" % (time.monotonic() - t0))
        idx = sorted(int(p["metadata"]["labels"]["ray.io/worker-group-replica-index"]) for p in self.workers())
        self.assertEqual(idx, list(range(6)))
        self.assert_stays(lambda: len(self.workers(include_deleting=True)), 6, 1.0, "no extra worker pods")
        t0 = time.monotonic()
        self.lc.patch_cluster(NS, NAME, group_patch(replicas=2))
        self.lc.wait_cluster_ready(NS, NAME, workers=2, timeout=60)
        print("scale 6 -> 2 ready in %.2fs" % (time.monotonic() - t0))
        # Surplus pods are Running until their containers stop (SIGTERM, at least 2 s before
        # SIGKILL), and KubeRay counts Running pods as available: wait for the status to settle.
        def settled():
            status = self.lc.raycluster(NS, NAME)["status"]
            return status if status.get("availableWorkerReplicas") == 2 else None
        st = wait_for(settled, 30, 0.2, "availableWorkerReplicas 2")
        self.assertEqual(st["desiredWorkerReplicas"], 2)
        self.assertEqual(st["availableWorkerReplicas"], 2)
        # Replicas beyond maxReplicas are clamped (KubeRay's GetWorkerGroupDesiredReplicas).
        self.lc.patch_cluster(NS, NAME, group_patch(replicas=2, maxReplicas=1))
        self.lc.wait_cluster_ready(NS, NAME, workers=1, timeout=60)
        self.lc.patch_cluster(NS, NAME, group_patch(replicas=2))
        self.lc.wait_cluster_ready(NS, NAME, workers=2, timeout=60)

    def test_2_workers_to_delete(self):
        self.lc.wait_cluster_ready(NS, NAME, workers=2, timeout=60)
        victim = sorted(p["metadata"]["name"] for p in self.workers())[0]
        self.lc.patch_cluster(NS, NAME, group_patch(replicas=1, scaleStrategy={"workersToDelete": [victim]}))
        wait_for(lambda: victim not in self.all_workers_ever(), 60, 0.1, "%s deleted" % victim)
        self.lc.wait_cluster_ready(NS, NAME, workers=1, timeout=60)
        self.assertNotIn(victim, {p["metadata"]["name"] for p in self.workers()})
        reasons = [e for e in self.lc.events(NS, NAME, "DeletedWorkerPod") if victim in e.get("note", "")]
        self.assertTrue(reasons, "a DeletedWorkerPod event names %s" % victim)
        # A stale name in workersToDelete does nothing more.
        self.assert_stays(lambda: len(self.workers(include_deleting=True)), 1, 1.0, "one worker stays")
        self.lc.patch_cluster(NS, NAME, group_patch(replicas=1, scaleStrategy={"workersToDelete": []}))

    def test_3_suspend_and_resume(self):
        self.lc.wait_cluster_ready(NS, NAME, workers=1, timeout=60)
        self.lc.patch_cluster(NS, NAME, {"spec": {"suspend": True}})

        def suspended():
            rc = self.lc.raycluster(NS, NAME)
            st = rc.get("status") or {}
            c = cond(rc, "RayClusterSuspended")
            if st.get("state") == "suspended" and c and c["status"] == "True" and \
                    not self.lc.pods(NS, NAME, include_deleting=True):
                return rc
            return None
        rc = wait_for(suspended, 60, 0.2, "cluster suspended with no pods")
        self.assertEqual(cond(rc, "RayClusterProvisioned")["status"], "False")
        self.assert_stays(lambda: len(self.lc.pods(NS, NAME, include_deleting=True)), 0, 1.0,
                          "no pod created while suspended")
        self.lc.patch_cluster(NS, NAME, {"spec": {"suspend": False}})
        rc = self.lc.wait_cluster_ready(NS, NAME, workers=1, timeout=90)
        self.assertEqual(cond(rc, "RayClusterSuspended")["status"], "False")

    def test_4_controller_killed_mid_scale_up(self):
        self.lc.wait_cluster_ready(NS, NAME, workers=1, timeout=60)
        before = self.all_workers_ever()
        self.lc.patch_cluster(NS, NAME, group_patch(replicas=12))
        # Kill it as soon as the scale-up has started (some, not all, pods created).
        wait_for(lambda: len(self.all_workers_ever() - before) >= 1, 30, 0.005, "scale-up started")
        self.lc.stop_controller(signal.SIGKILL)
        created_at_kill = len(self.all_workers_ever() - before)
        print("controller killed with %d of 11 new workers created" % created_at_kill)
        self.lc.start_controller()
        self.lc.wait_cluster_ready(NS, NAME, workers=12, timeout=120)
        self.assert_stays(lambda: len(self.workers(include_deleting=True)), 12, 2.0, "exactly 12 worker pods")
        idx = sorted(int(p["metadata"]["labels"]["ray.io/worker-group-replica-index"]) for p in self.workers())
        self.assertEqual(idx, list(range(12)))
        self.lc.patch_cluster(NS, NAME, group_patch(replicas=1))
        self.lc.wait_cluster_ready(NS, NAME, workers=1, timeout=90)

    def test_5_invalid_spec(self):
        bad = json.loads(json.dumps(CLUSTER))
        bad["metadata"]["name"] = "rc-invalid"
        bad["spec"]["workerGroupSpecs"][0].update(minReplicas=3, maxReplicas=2)
        self.lc.apply(json.dumps(bad))
        ev = wait_for(lambda: self.lc.events(NS, "rc-invalid", "InvalidRayClusterSpec"), 30, 0.1,
                      "InvalidRayClusterSpec event")
        self.assertEqual(ev[0]["type"], "Warning")
        self.assertIn("minReplicas", ev[0]["note"])
        rc = wait_for(lambda: (lambda o: o if (o.get("status") or {}).get("reason") else None)(
            self.lc.raycluster(NS, "rc-invalid")), 30, 0.1, "status.reason")
        self.assertIn("minReplicas", rc["status"]["reason"])
        self.assert_stays(lambda: (len(self.lc.pods(NS, "rc-invalid", include_deleting=True)),
                                   len(self.lc.services(NS, "ray.io/cluster=rc-invalid"))), (0, 0), 1.0,
                          "nothing created for an invalid cluster")
        # Fixing the spec makes it reconcile normally.
        self.lc.patch_cluster(NS, "rc-invalid", group_patch(replicas=1, minReplicas=0, maxReplicas=2))
        self.lc.wait_cluster_ready(NS, "rc-invalid", workers=1, timeout=90)
        self.lc.delete_cluster(NS, "rc-invalid")
        self.lc.wait_gone(NS, "rc-invalid", 60)


if __name__ == "__main__":
    unittest.main()

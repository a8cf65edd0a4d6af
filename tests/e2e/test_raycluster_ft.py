"""End to end: the GCS fault-tolerance finalizer of a RayCluster on the local cluster.
With a real redis-server (password from a Secret through redisPassword.valueFrom),
deleting the cluster removes its RAY<uid>@* keys and nothing else, then releases
ray.io/gcs-ft-redis-cleanup-finalizer; with Redis unreachable the deletion still
completes once --gcs-ft-cleanup-deadline has passed, with a Warning Event.
(The full walkthrough S4 with the detached-actor counter is a separate suite.)"""

import shutil
import subprocess
import tempfile
import time
import unittest

from clusterlib import LocalClusterCase, free_port, wait_for

NS = "default"
PASSWORD = "ft-secret-pw"
DEADLINE_S = 8


def cluster(name, address, password_secret=None):
    ft = {"redisAddress": address}
    if password_secret:
        ft["redisPassword"] = {"valueFrom": {"secretKeyRef": {"name": password_secret, "key": "password"}}}
    pod = {"spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.52.0",
                                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}]}}
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name},
            "spec": {"rayVersion": "2.52.0", "gcsFaultToleranceOptions": ft,
                     "headGroupSpec": {"rayStartParams": {}, "template": pod},
                     "workerGroupSpecs": [{"groupName": "w", "replicas": 1, "minReplicas": 0, "maxReplicas": 2,
                                           "rayStartParams": {}, "template": pod}]}}


class RayClusterFT(LocalClusterCase):
    CONTROLLER_ARGS = ("--gcs-ft-cleanup-deadline=%ds" % DEADLINE_S,)
    redis = tmp = None

    @classmethod
    def prerequisites(cls):
        if not (shutil.which("redis-server") and shutil.which("redis-cli")):
            return super().prerequisites() or "redis-server/redis-cli not installed"
        return super().prerequisites()

    @classmethod
    def setUpCluster(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rw-ft-")
        cls.port = free_port()
        cls.redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(cls.port),
                                      "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
                                      "--dir", cls.tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: cls.cli("PING") == "PONG", 10, 0.05, "redis-server")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if cls.redis:
            cls.redis.terminate()
            cls.redis.wait(timeout=10)
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def cli(cls, *args):
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(cls.port), "-a", PASSWORD, "--no-auth-warning"]
                           + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
        return r.stdout.strip()

    def keys(self, prefix):
        out = self.cli("--scan", "--pattern", prefix + "*")
        return [k for k in out.splitlines() if k]

    def finalizers(self, name):
        rc = self.lc.raycluster(NS, name)
        return None if rc is None else rc["metadata"].get("finalizers", [])

    def test_1_delete_cleans_redis_then_releases(self):
        self.lc.kubectl("create", "secret", "generic", "redis-pw", "--from-literal=password=" + PASSWORD)
        name = "rc-ft"
        self.lc.request("POST", self.lc.rc_path(NS), cluster(name, "127.0.0.1:%d" % self.port, "redis-pw"))
        rc = self.lc.wait_cluster_ready(NS, name, workers=1, timeout=120)
        uid = rc["metadata"]["uid"]
        self.assertIn("ray.io/gcs-ft-redis-cleanup-finalizer", rc["metadata"]["finalizers"])
        head = self.lc.pods(NS, name, "head")[0]
        env = {e["name"]: e for e in head["spec"]["containers"][0]["env"]}
        self.assertEqual(env["RAY_external_storage_namespace"]["value"], uid)
        self.assertEqual(env["RAY_REDIS_ADDRESS"]["value"], "127.0.0.1:%d" % self.port)
        prefix = "RAY%s@" % uid
        wait_for(lambda: self.keys(prefix), 30, 0.2, "GCS keys under %s" % prefix)
        self.cli("SET", "RAYother-namespace@KV", "keep")
        self.cli("SET", prefix[:-1] + "x@KV", "keep")  # one character different
        t0 = time.monotonic()
        self.lc.delete_cluster(NS, name)
        self.lc.wait_gone(NS, name, 60)
        print("FT cluster deleted (pods, Redis keys, finalizer) in %.2fs" % (time.monotonic() - t0))
        self.assertEqual(self.keys(prefix), [])
        self.assertEqual(self.cli("GET", "RAYother-namespace@KV"), "keep")
        self.assertEqual(self.cli("GET", prefix[:-1] + "x@KV"), "keep")
        ev = self.lc.events(NS, name, "RedisCleanupSucceeded")
        self.assertTrue(ev, "RedisCleanupSucceeded event")
        self.assertFalse(self.lc.events(NS, name, "ForceDeletedStuckCluster"))

    def test_2_unreachable_redis_released_after_deadline(self):
        name = "rc-ft-lost"
        dead = free_port()  # nothing listens there
        self.lc.request("POST", self.lc.rc_path(NS), cluster(name, "127.0.0.1:%d" % dead))
        wait_for(lambda: "ray.io/gcs-ft-redis-cleanup-finalizer" in (self.finalizers(name) or []), 30, 0.1,
                 "finalizer added")
        wait_for(lambda: self.lc.pods(NS, name, "head"), 30, 0.1, "head pod created")
        t0 = time.monotonic()
        self.lc.delete_cluster(NS, name)
        # Still there while the cleanup retries (checked at once, well before the deadline).
        self.assertIsNotNone(self.lc.raycluster(NS, name))
        self.lc.wait_gone(NS, name, DEADLINE_S + 30)
        took = time.monotonic() - t0
        print("unreachable Redis: deletion completed after %.1fs (deadline %ds)" % (took, DEADLINE_S))
        self.assertGreater(took, DEADLINE_S - 2)
        ev = self.lc.events(NS, name, "ForceDeletedStuckCluster")
        self.assertTrue(ev, "ForceDeletedStuckCluster event")
        self.assertEqual(ev[0]["type"], "Warning")


if __name__ == "__main__":
    unittest.main()

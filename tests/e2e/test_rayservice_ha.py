"""End to end, scenario S3 ("RayService high availability"): KubeRay's
ray-service.high-availability.yaml applied unchanged (real redis-server through the
sample's Deployment, password from its Secret, GCS fault tolerance) -> the serve Service
has 3 ready endpoints (the head and both workers); deleting the head pod while a client
sends one request at a time (the document's query.py: POST /fruit/ '["PEAR", 12]')
loses no request over RW_S3_ROUNDS (20) deletions (asserted: at most RW_S3_MAX_FAILED,
default 0); then the same with 8 requests at a time (RW_S3_ROUNDS8, 3 rounds; at most
RW_S3_MAX_FAILED8, default 0). What makes it
lossless: the head's preStop drain (the agent's /drain, RAYWARDEN_RAYSERVICE_DRAIN_SECONDS,
default 5 s) keeps the old head serving until its endpoint is gone everywhere, and the
worker proxies keep serving while the new head's Serve controller recovers (as Ray's
do; docs/ray-simulator.md). Uses clusterlib.py and rslib.py."""

import os
import time
import unittest

from clusterlib import LocalClusterCase, pod_ready, wait_for
from rslib import Client, active_cluster, rs_status, serve_endpoint_uids, serve_host, serve_request, wait_rs_ready

NS = "default"
NAME = "rayservice-ha"
SVC = NAME + "-serve-svc"
ROUNDS = int(os.environ.get("RW_S3_ROUNDS", "20"))
ROUNDS8 = int(os.environ.get("RW_S3_ROUNDS8", "3"))
BODY = '["PEAR", 12]'


class RayServiceS3(LocalClusterCase):
    SAMPLE = "ray-service.high-availability.yaml"
    host = serve_host(NS, SVC)

    @classmethod
    def setUpClass(cls):
        if not os.path.exists("/usr/bin/redis-server"):
            raise unittest.SkipTest("redis-server not installed")
        super().setUpClass()
        cls.deleted_at = []
        cls.all_causes = []

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("KUBESIM_PROXY_TRACE"):
            with open(os.environ["KUBESIM_PROXY_TRACE"] + ".client", "a") as f:
                f.write("deleted %s\n" % " ".join(cls.deleted_at))
                for c in cls.all_causes:
                    f.write(c + "\n")
        super().tearDownClass()

    def head(self, cluster):
        heads = self.lc.pods(NS, cluster, "head")
        return heads[0] if len(heads) == 1 else None

    def all_serving(self, cluster):
        """Head and both workers ready and in the serve Service's EndpointSlices."""
        pods = self.lc.pods(NS, cluster)
        if len(pods) != 3 or not all(pod_ready(p) for p in pods):
            return False
        return serve_endpoint_uids(self.lc, NS, SVC) == {p["metadata"]["uid"] for p in pods}

    def rounds(self, client, n, label):
        lc = self.lc
        cluster = active_cluster(lc, NS, NAME)
        took = []
        for i in range(n):
            old = self.head(cluster)
            self.assertIsNotNone(old)
            before = client.total()
            t0 = time.monotonic()
            self.deleted_at.append("%s@%.3f" % (old["metadata"]["name"][-5:], time.time()))
            lc.delete("/api/v1/namespaces/%s/pods/%s" % (NS, old["metadata"]["name"]))

            def back():
                h = self.head(cluster)
                return h and h["metadata"]["uid"] != old["metadata"]["uid"] and self.all_serving(cluster)
            wait_for(back, 60, 0.1, "%s round %d: a new head serving" % (label, i))
            took.append(time.monotonic() - t0)
            # Requests keep flowing through the round (the client is not stuck).
            wait_for(lambda: client.total() > before + 5, 10, 0.05, "requests after round %d" % i)
        self.assertEqual(active_cluster(lc, NS, NAME), cluster, "no new RayCluster for a head loss")
        return took

    def test_1_three_endpoints(self):
        lc = self.lc
        t0 = time.monotonic()
        lc.apply(self.sample)
        st = wait_rs_ready(lc, NS, NAME, timeout=120)
        cluster = st["activeServiceStatus"]["rayClusterName"]
        wait_for(lambda: self.all_serving(cluster), 60, 0.2, "head and both workers serving")
        wait_for(lambda: rs_status(lc, NS, NAME).get("numServeEndpoints") == 3, 30, 0.2, "numServeEndpoints 3")
        print("S3: 3 serve endpoints %.2fs after kubectl apply" % (time.monotonic() - t0))
        self.assertEqual(len(serve_endpoint_uids(lc, NS, SVC)), 3)
        for p in lc.pods(NS, cluster):
            self.assertEqual(p["metadata"]["labels"].get("ray.io/serve"), "true", p["metadata"]["name"])
        self.assertEqual(serve_request(self.host, "/fruit/", BODY), (200, "12"))
        # RayService pods carry the agent's preStop drain on the Ray container and the agent.
        head = self.head(cluster)
        for ctr in head["spec"]["containers"]:
            path = (((ctr.get("lifecycle") or {}).get("preStop") or {}).get("httpGet") or {}).get("path", "")
            self.assertTrue(path.startswith("/drain?seconds="), (ctr["name"], path))

    def deletions_under_load(self, concurrency, rounds, warmup, min_ok, max_failed_env):
        """`rounds` head deletions while `concurrency` clients send requests; asserts at most
        $max_failed_env (default 0) failed requests."""
        client = Client(self.host, "/fruit/", BODY, "12", concurrency=concurrency).start()
        try:
            wait_for(lambda: client.total() >= warmup, 20, 0.05, "client running")
            took = self.rounds(client, rounds, "%d-at-a-time" % concurrency)
        finally:
            ok, failed = client.stop()
            self.all_causes.extend(client.causes)
        print("S3: %d head deletions (recovered in %.1f-%.1fs), %d request(s) at a time: %d requests, %d failed %s"
              % (rounds, min(took), max(took), concurrency, ok + failed, failed, client.causes[:5]))
        self.assertGreater(ok, min_ok)
        self.assertLessEqual(failed, int(os.environ.get(max_failed_env, "0")), client.causes)

    def test_2_head_deleted_one_at_a_time(self):
        self.deletions_under_load(1, ROUNDS, 20, 50, "RW_S3_MAX_FAILED")

    def test_3_head_deleted_eight_at_a_time(self):
        self.deletions_under_load(8, ROUNDS8, 50, 100, "RW_S3_MAX_FAILED8")

if __name__ == "__main__":
    unittest.main()

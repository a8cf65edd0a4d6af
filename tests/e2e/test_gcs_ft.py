"""Acceptance scenario S4, GCS fault tolerance, end to end on the local cluster with a real
redis-server (run by the kubelet simulator from the sample's redis image) and
raywarden-controller.

shared/corpus/kuberay-samples/ray-cluster.external-redis.yaml is applied unchanged:

- env and annotations as KubeRay sets them: head RAY_external_storage_namespace = the
  RayCluster's UID, RAY_REDIS_ADDRESS, REDIS_PASSWORD from the Secret (and
  --redis-password=$REDIS_PASSWORD in the generated ray start), ray.io/ft-enabled=true;
  workers RAY_gcs_rpc_server_reconnect_timeout_s=600 and no Redis settings; the Redis
  cleanup finalizer on the RayCluster;
- the walkthrough's detached counter (raysim.actor through the Jobs API) reads 1, the GCS
  process is killed through the simulator's control endpoint, and after the GCS is back
  (reloaded from Redis) the counter reads 2;
- the cluster's keys live under RAY<uid>@ in Redis; deleting the RayCluster removes them
  and only them (decoy keys survive);
- with Redis stopped (its Deployment scaled to 0), deleting a second RayCluster still
  completes once the cleanup deadline (--gcs-ft-cleanup-deadline, short here) has
  passed, with a Warning Event.

Skipped, with a message, when /work/shared (the corpus) is absent, or redis-server,
kubectl, the agent or the controller is missing. Set up through clusterlib.LocalClusterCase
(two nodes, no controller of local-cluster's: the test runs its own through ctlsim).
"""

import json
import os
import shutil
import subprocess
import sys
import time
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ctlsim  # noqa: E402
from clusterlib import LocalClusterCase  # noqa: E402
from raysim.cluster import http  # noqa: E402
from raysim.resp import Redis  # noqa: E402
from kubesim.realcp import host_ip

SHARED = os.environ.get("RW_SHARED_DIR") or os.path.join(os.path.dirname(ctlsim.SRC), "shared")
SAMPLE = os.path.join(SHARED, "corpus", "kuberay-samples", "ray-cluster.external-redis.yaml")
NAME = "raycluster-external-redis"
PASSWORD = "5241590000000000"  # the sample's Secret and redis.conf
DEADLINE_S = 6
FINALIZER = "ray.io/gcs-ft-redis-cleanup-finalizer"
RC = "apis/ray.io/v1/namespaces/default/rayclusters"


def env_list(container):
    return [(e["name"], e.get("value"), e.get("valueFrom")) for e in container.get("env") or []]


def env_map(container):
    return {n: (v, vf) for n, v, vf in env_list(container)}


class GcsFaultToleranceS4(LocalClusterCase):
    NODES = 2
    # This test runs its own controller (short cleanup deadline, SIGKILL-able, in the cluster's
    # view of names), so local-cluster starts none.
    CONTROLLER = False
    ctl = None

    @classmethod
    def prerequisites(cls):
        why = super().prerequisites()  # the controller, the agent, kubectl
        if not why and not os.path.exists(SAMPLE):
            why = "shared corpus not present (%s); S4 skipped" % SAMPLE
        if not why and shutil.which("redis-server") is None:
            why = "redis-server not installed; S4 skipped"
        return why

    @classmethod
    def setUpCluster(cls):
        state = cls.lc.state
        cls.tmp = state  # kubectl's HOME
        cls.kubeconfig = cls.lc.kubeconfig
        cls.client = ctlsim.KubeClient.from_state_dir(state, user_agent="s4-test", timeout=30)
        key = os.path.join(state, "master-key")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex())
        os.chmod(key, 0o600)
        world = types.SimpleNamespace(kubeconfig=cls.kubeconfig, key_file=key, dir=state,
                                      controller_kubeconfig=cls.lc.cluster.controller_kubeconfig())
        cls.ctl = ctlsim.Controller(world, [], identity="ctl-s4")
        cls.ctl.args += ["--agent-advertise-address", "tcp://%s:8478" % cls.ctl.ip,
                         "--gcs-ft-cleanup-deadline", "%ds" % DEADLINE_S, "--log-level", "debug"]
        # In the cluster's view of names (its own hosts file), as a controller pod would be:
        # the Redis cleanup resolves the sample's `redis:6379`.
        etc = os.path.join(state, "etc")
        ctlsim.wait_for(lambda: os.path.isfile(os.path.join(etc, "hosts")), 10, what="the cluster's hosts file")
        cls.ctl.start(etc_overlay=etc)
        ctlsim.wait_for(cls.ctl.ready, 30, what="controller /readyz")

    @classmethod
    def tearDownClass(cls):
        if cls.ctl is not None:
            cls.ctl.kill()
        super().tearDownClass()

    # -- helpers -------------------------------------------------------------------------

    def kubectl(self, *args, check=True, timeout=60):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.tmp)
        r = subprocess.run(["kubectl"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=env)
        out = r.stdout.decode("utf-8", "replace")
        if check and r.returncode != 0:
            self.fail("kubectl %s: %s" % (" ".join(args), out))
        return out

    def get(self, path):
        try:
            return self.client.request("GET", path)
        except ctlsim.ApiError as e:
            if e.code == 404:
                return None
            raise

    def pods(self, selector):
        return self.client.request("GET", "api/v1/namespaces/default/pods",
                                   query={"labelSelector": selector}).get("items") or []

    def live(self, selector):
        return [p for p in self.pods(selector) if not p["metadata"].get("deletionTimestamp")]

    def head(self):
        ps = [p for p in self.live("ray.io/cluster=%s,ray.io/node-type=head" % NAME)
              if (p.get("status") or {}).get("podIP")]
        return ps[0] if len(ps) == 1 else None

    def redis(self):
        """A client of the Redis pod (closed at the end of the test), or None."""
        ps = [p for p in self.live("app=redis") if (p.get("status") or {}).get("phase") == "Running"]
        if len(ps) != 1:
            return None
        r = Redis(host_ip(ps[0]["status"]["podIP"]), 6379, password=PASSWORD)
        self.addCleanup(r.close)
        return r

    def diag(self):
        out = ["controller log tail:", self.ctl.output()[-4000:]]
        try:
            out.append(self.kubectl("get", "pods,rayclusters,svc", "-o", "wide", check=False))
            out.append(self.kubectl("get", "events", "--sort-by=.lastTimestamp", check=False)[-3000:])
            for p in self.pods("ray.io/cluster=%s" % NAME):
                for c in p["spec"]["containers"]:
                    for prev in ("--previous", None):
                        args = ["logs", p["metadata"]["name"], "-c", c["name"]] + ([prev] if prev else [])
                        out.append("$ kubectl %s\n%s" % (" ".join(args), self.kubectl(*args, check=False)[-1500:]))
        except Exception as e:  # noqa: BLE001
            out.append(repr(e))
        return "\n".join(out)

    def wait(self, cond, timeout, what):
        try:
            return ctlsim.wait_for(cond, timeout, what=what, interval=0.2)
        except AssertionError as e:
            self.fail("%s\n%s" % (e, self.diag()))

    def ready_cluster(self):
        rc = self.get(RC + "/" + NAME)
        if not rc or (rc.get("status") or {}).get("state") != "ready":
            return None
        return rc

    def run_job(self, sid, entrypoint):
        """Submit a job to the head's Jobs API; (status, logs) once it ends."""
        def submit():
            h = self.head()
            if h is None:
                return None
            try:
                st, _, body = http(host_ip(h["status"]["podIP"]), 8265, "POST", "/api/jobs/",
                                   {"entrypoint": entrypoint, "submission_id": sid})
            except OSError:
                return None
            return (host_ip(h["status"]["podIP"]), body) if st == 200 else None

        ip, _ = self.wait(submit, 30, "job %s submitted" % sid)

        def done():
            try:
                st, _, body = http(ip, 8265, "GET", "/api/jobs/%s" % sid)
            except OSError:
                return None
            info = json.loads(body) if st == 200 else {}
            return info if info.get("status") in ("SUCCEEDED", "FAILED", "STOPPED") else None

        info = self.wait(done, 60, "job %s finished" % sid)
        _, _, body = http(ip, 8265, "GET", "/api/jobs/%s/logs" % sid)
        return info["status"], json.loads(body)["logs"]

    def gcs_healthy(self):
        h = self.head()
        if h is None:
            return False
        try:
            st, _, body = http(host_ip(h["status"]["podIP"]), 8265, "GET", "/api/gcs_healthz", timeout=2)
        except OSError:
            return False
        return st == 200 and body == b"success"

    def warning_events(self, name):
        evs = self.client.request("GET", "api/v1/namespaces/default/events",
                                  query={"fieldSelector": "involvedObject.name=%s" % name}).get("items") or []
        return [e for e in evs if e.get("type") == "Warning"]

    # -- the scenario --------------------------------------------------------------------

    def test_s4(self):
        self.kubectl("apply", "-f", SAMPLE)
        rc = self.wait(self.ready_cluster, 120, "RayCluster %s ready" % NAME)
        uid = rc["metadata"]["uid"]
        self.assertIn(FINALIZER, rc["metadata"].get("finalizers") or [])

        # -- env and annotations, as KubeRay sets them -----------------------------------------
        head = self.head()
        ray = head["spec"]["containers"][0]
        self.assertEqual(ray["name"], "ray-head")
        self.assertEqual(head["metadata"]["annotations"].get("ray.io/ft-enabled"), "true")
        self.assertEqual(head["metadata"]["annotations"].get("ray.io/external-storage-namespace"), uid)
        env = env_map(ray)
        self.assertEqual(env["RAY_external_storage_namespace"], (uid, None))
        self.assertEqual(env["RAY_REDIS_ADDRESS"], ("redis:6379", None))
        self.assertEqual(env["REDIS_PASSWORD"],
                         (None, {"secretKeyRef": {"name": "redis-password-secret", "key": "password"}}))
        names = [n for n, _, _ in env_list(ray)]
        # configureGCSFaultTolerance appends them in this order.
        ft = [n for n in names if n in ("RAY_external_storage_namespace", "RAY_REDIS_ADDRESS", "REDIS_PASSWORD")]
        self.assertEqual(ft, ["RAY_external_storage_namespace", "RAY_REDIS_ADDRESS", "REDIS_PASSWORD"])
        self.assertNotIn("RAY_gcs_rpc_server_reconnect_timeout_s", env)
        self.assertIn("--redis-password=$REDIS_PASSWORD", env["KUBERAY_GEN_RAY_START_CMD"][0])
        workers = self.live("ray.io/cluster=%s,ray.io/node-type=worker" % NAME)
        self.assertEqual(len(workers), 1)
        wray = workers[0]["spec"]["containers"][0]
        wenv = env_map(wray)
        self.assertEqual(wenv["RAY_gcs_rpc_server_reconnect_timeout_s"], ("600", None))
        for n in ("RAY_REDIS_ADDRESS", "REDIS_PASSWORD", "RAY_external_storage_namespace"):
            self.assertNotIn(n, wenv)
        self.assertNotIn("ray.io/external-storage-namespace", workers[0]["metadata"].get("annotations") or {})

        # -- the detached counter survives a GCS kill -------------------------------------------
        st, logs = self.run_job("create-counter", "python3 -m raysim.actor create counter_actor && "
                                "python3 -m raysim.actor call counter_actor increment")
        self.assertEqual(st, "SUCCEEDED", logs)
        self.assertTrue(logs.endswith("\n1\n"), logs)
        h = self.head()
        worker_uid = workers[0]["metadata"]["uid"]
        st, _, body = http(host_ip(h["status"]["podIP"]), 19999, "POST", "/fault", {"component": "gcs", "mode": "kill"})
        self.assertEqual(st, 200, body)
        self.wait(lambda: not self.gcs_healthy(), 10, "GCS down after the kill")
        # ray start --block notices the dead GCS and exits; the kubelet restarts the head's
        # ray container (or the controller replaces the pod), and the new GCS reloads from Redis.
        self.wait(self.gcs_healthy, 90, "GCS back")
        st, logs = self.run_job("bump-counter", "python3 -m raysim.actor call counter_actor increment")
        self.assertEqual(st, "SUCCEEDED", logs)
        self.assertTrue(logs.endswith("\n2\n"), logs)
        restarts = [c.get("restartCount", 0) for c in self.head()["status"].get("containerStatuses") or []
                    if c.get("name") == "ray-head"]
        w2 = self.live("ray.io/cluster=%s,ray.io/node-type=worker" % NAME)
        self.assertEqual([p["metadata"]["uid"] for p in w2], [worker_uid], "the worker survived the GCS restart")

        # -- keys under RAY<uid>@ ----------------------------------------------------------------
        r = self.wait(self.redis, 30, "redis pod")
        keys = sorted(k.decode() for k in r.execute("KEYS", "*"))
        prefix = "RAY%s@" % uid
        ours = [k for k in keys if k.startswith(prefix)]
        self.assertTrue(ours, keys)
        self.assertEqual(ours, keys, "every key is the cluster's")
        for table in ("NODE", "ACTOR", "JOB", "KV"):
            self.assertIn(prefix + table, keys)
        # Decoys the cleanup must leave alone: another namespace, the prefix without '@', a
        # namespace one character short, and an unrelated key.
        decoys = {"RAYother-namespace@KV": "hash", "RAY%s" % uid: "string", "RAY%s@KV" % uid[:-1]: "hash",
                  "unrelated:%s@" % uid: "string"}
        for k, kind in decoys.items():
            if kind == "hash":
                r.execute("HSET", k, "f", "v")
            else:
                r.execute("SET", k, "v")

        # -- deleting the RayCluster removes its keys, and only them -----------------------------
        t0 = time.monotonic()
        self.kubectl("delete", "raycluster", NAME, "--wait=false")
        self.wait(lambda: self.get(RC + "/" + NAME) is None, 90, "RayCluster deleted")
        took = time.monotonic() - t0
        self.assertEqual(self.pods("ray.io/cluster=%s" % NAME), [])
        r = self.wait(self.redis, 10, "redis pod")
        left = sorted(k.decode() for k in r.execute("KEYS", "*"))
        self.assertEqual(left, sorted(decoys), "only the decoys are left")
        self.assertEqual(self.warning_events(NAME), [], "no Warning when the cleanup succeeds")
        print("S4: counter 1 -> 2 across a GCS kill (head ray container restarts: %s); %d keys under %s "
              "removed; deletion took %.1f s" % (restarts, len(ours), prefix, took), flush=True)

        # -- Redis stopped: the deletion still completes after the deadline -----------------------
        self.kubectl("apply", "-f", SAMPLE)
        rc = self.wait(self.ready_cluster, 120, "second RayCluster ready")
        uid2 = rc["metadata"]["uid"]
        self.assertNotEqual(uid2, uid)
        self.wait(lambda: (lambda r2: r2 is not None and r2.execute("EXISTS", "RAY%s@NODE" % uid2) == 1)(self.redis()),
                  30, "the second cluster's keys in Redis")
        self.kubectl("scale", "deployment", "redis", "--replicas=0")
        self.wait(lambda: self.pods("app=redis") == [], 60, "redis pod gone")
        t0 = time.monotonic()
        self.kubectl("delete", "raycluster", NAME, "--wait=false")
        self.wait(lambda: not self.pods("ray.io/cluster=%s" % NAME), 60, "Ray pods gone")
        t_pods = time.monotonic() - t0
        self.wait(lambda: self.get(RC + "/" + NAME) is None, DEADLINE_S + 60, "RayCluster deleted without Redis")
        took = time.monotonic() - t0
        # The deadline counts from metadata.deletionTimestamp, which the API server stores in whole
        # seconds (RFC 3339 without fractions), so it can start up to 1 s before this test's clock.
        self.assertGreaterEqual(took, DEADLINE_S - 1.0, "the finalizer was held while Redis could be retried")
        warn = self.wait(lambda: self.warning_events(NAME), 10, "a Warning Event about the cleanup")
        text = json.dumps(warn)
        self.assertNotIn(PASSWORD, text, "no secret in Events")
        self.assertNotIn(PASSWORD, self.ctl.output(), "no secret in the controller's log")
        print("S4: with Redis stopped the deletion completed after %.1f s (pods gone after %.1f s, deadline %d s); "
              "Warning: %s" % (took, t_pods, DEADLINE_S, [(e.get("reason"), e.get("message")) for e in warn]),
              flush=True)
        self.assertTrue(self.ctl.alive(), self.ctl.output()[-2000:])


if __name__ == "__main__":
    unittest.main()

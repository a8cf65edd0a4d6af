"""Ray node simulator: endpoints, Serve placement/proxies/draining, apps, jobs, CLI.

Every node is a real `tests/sim/bin/ray start --block` subprocess on its own
127.77.x.y address; each test class uses its own /24 so classes never share ports.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from raysim.cluster import Cluster, http, wait_for  # noqa: E402

RAY = os.path.join(HERE, "bin", "ray")
FAST = {
    "RAY_health_check_period_ms": "200", "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "0", "RAY_SERVE_PROXY_MIN_DRAINING_PERIOD_S": "1",
    "RAY_SERVE_PROXY_DRAIN_CHECK_PERIOD_S": "0.2", "RW_SIM_BLOCK_MONITOR": "0",
}
SIMPLE_APP = {
    "name": "simple_app", "import_path": "ray-operator.config.samples.ray-serve.single_deployment_dag:DagNode",
    "route_prefix": "/basic", "runtime_env": {"working_dir": "https://github.com/ray-project/kuberay/archive/master.zip"},
    "deployments": [{"name": "BaseService", "num_replicas": 1, "max_replicas_per_node": 1,
                     "ray_actor_options": {"num_cpus": 0.1}}],
}
WD = {"working_dir": "https://github.com/ray-project/test_dag/archive/78b4a5da38796123d9f9ffff59bab2792a043e95.zip"}
FRUIT_MATH = {"applications": [
    {"name": "fruit_app", "import_path": "fruit.deployment_graph", "route_prefix": "/fruit", "runtime_env": WD,
     "deployments": [
         {"name": "MangoStand", "num_replicas": 2, "max_replicas_per_node": 1, "user_config": {"price": 3},
          "ray_actor_options": {"num_cpus": 0.1}},
         {"name": "OrangeStand", "num_replicas": 1, "user_config": {"price": 2}, "ray_actor_options": {"num_cpus": 0.1}},
         {"name": "PearStand", "num_replicas": 1, "user_config": {"price": 1}, "ray_actor_options": {"num_cpus": 0.1}},
         {"name": "FruitMarket", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}}]},
    {"name": "math_app", "import_path": "conditional_dag.serve_dag", "route_prefix": "/calc", "runtime_env": WD,
     "deployments": [
         {"name": "Adder", "num_replicas": 1, "user_config": {"increment": 3}, "ray_actor_options": {"num_cpus": 0.1}},
         {"name": "Multiplier", "num_replicas": 1, "user_config": {"factor": 5}, "ray_actor_options": {"num_cpus": 0.1}},
         {"name": "Router", "num_replicas": 1}]},
]}


def serve_get(node):
    st, hdr, body = http(node.ip, 8265, "GET", "/api/serve/applications/")
    return st, hdr, json.loads(body) if st == 200 else body


def app_status(node, app):
    st, _, d = serve_get(node)
    return d["applications"].get(app, {}).get("status") if st == 200 else None


def port_refuses(ip, port):
    try:
        http(ip, port, "GET", "/-/healthz", timeout=2)
    except ConnectionRefusedError:
        return True
    return False


def healthz(ip):
    try:
        st, _, body = http(ip, 8000, "GET", "/-/healthz", timeout=2)
        return st, body.decode()
    except ConnectionRefusedError:
        return "refused", ""


def kuberay_probe(ip):
    # KubeRay >= 1.4 RayService worker readiness (ray-apis.md section 6).
    cmd = ("wget --tries 1 -T 2 -q -O- http://%s:52365/api/local_raylet_healthz | grep success && "
           "wget --tries 1 -T 10 -q -O- http://%s:8000/-/healthz | grep success" % (ip, ip))
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


class TenFacts(unittest.TestCase):
    """Exact status/body/content-type of the endpoints (ray-apis.md section 7)."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster("127.77.10", workers=1, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"], env=FAST)
        cls.c.start()
        cls.h = cls.c.head
        cls.w = cls.c.workers[0]

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def test_local_raylet_healthz_on_agent(self):
        for n in (self.h, self.w):
            st, hdr, body = n.get(52365, "/api/local_raylet_healthz")
            self.assertEqual((st, body), (200, b"success"))
            self.assertEqual(hdr["content-type"], "application/text; charset=utf-8")
        # The agent has no gcs_healthz, and 8265 is head-only.
        st, _, body = self.w.get(52365, "/api/gcs_healthz")
        self.assertEqual((st, body), (404, b"404: Not Found"))
        self.assertTrue(port_refuses(self.w.ip, 8265))

    def test_gcs_healthz_on_dashboard(self):
        st, hdr, body = self.h.get(8265, "/api/gcs_healthz")
        self.assertEqual((st, body), (200, b"success"))
        self.assertIn("aiohttp", hdr["server"])

    def test_serve_empty_and_trailing_slash(self):
        st, hdr, body = self.h.get(8265, "/api/serve/applications/")
        self.assertEqual(st, 200)
        self.assertEqual(body, b'{"deploy_mode": "MULTI_APP", "controller_info": {}, "proxies": {}, '
                               b'"applications": {}, "target_capacity": null}')
        self.assertTrue(hdr["content-type"].startswith("application/json"))
        self.assertEqual(self.h.get(8265, "/api/serve/applications")[0], 404)
        st, _, body = self.h.get(8265, "/api/serve/applications/?api_type=bogus")
        self.assertEqual((st, body), (400, b"Invalid 'api_type' value: 'bogus'. Must be one of: imperative, declarative"))
        self.assertEqual(self.h.get(8265, "/api/serve/applications/?api_type=declarative")[0], 200)

    def test_no_proxy_anywhere_without_serve(self):
        for n in (self.h, self.w):
            self.assertTrue(port_refuses(n.ip, 8000))

    def test_version_and_api_healthz_gate(self):
        st, _, body = self.h.get(8265, "/api/version")
        d = json.loads(body)
        self.assertEqual((st, d["ray_version"], d["version"]), (200, "2.52.0", "4"))
        self.assertEqual(set(d), {"version", "ray_version", "ray_commit", "session_name"})
        # /api/healthz only exists from Ray 2.53.0 (PR #56943).
        self.assertEqual(self.w.get(52365, "/api/healthz")[0], 404)

    def test_job_404_and_keepalive(self):
        import http.client
        conn = http.client.HTTPConnection(self.h.ip, 8265, timeout=5)
        try:
            for _ in range(3):  # same TCP connection: HTTP/1.1 keep-alive
                conn.request("GET", "/api/jobs/nope")
                r = conn.getresponse()
                self.assertEqual((r.status, r.read()), (404, b"Job nope does not exist"))
                self.assertEqual(r.getheader("Content-Type"), "text/plain; charset=utf-8")
        finally:
            conn.close()

    def test_put_validation_400(self):
        bad = {"applications": [dict(SIMPLE_APP), dict(SIMPLE_APP, route_prefix="/other")]}
        st, _, body = http(self.h.ip, 8265, "PUT", "/api/serve/applications/", bad)
        self.assertEqual(st, 400)
        self.assertIn(b'Found multiple configs for application "simple_app". Please remove all duplicates.', body)
        self.assertTrue(body.startswith(b"ValidationError(model='ServeDeploySchema'"))
        dup_route = {"applications": [dict(SIMPLE_APP), dict(SIMPLE_APP, name="b")]}
        st, _, body = http(self.h.ip, 8265, "PUT", "/api/serve/applications/", dup_route)
        self.assertEqual(st, 400)
        self.assertIn(b"Found duplicate applications for route prefix", body)
        self.assertEqual(app_status(self.h, "simple_app"), None)


class ServeNoReplica(unittest.TestCase):
    """ray-service.no-ray-serve-replica.yaml: num-cpus 0 head + 2 workers."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster("127.77.11", workers=2, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"], env=FAST)
        cls.c.start()
        cls.h = cls.c.head

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def deploy(self, cfg):
        st, hdr, body = http(self.h.ip, 8265, "PUT", "/api/serve/applications/", cfg)
        self.assertEqual((st, body), (200, b""))

    def wait_workers(self, expect):
        """Wait until each worker's /-/healthz is (200 'success') or refused as expected."""
        def ok():
            got = [healthz(w.ip)[0] for w in self.c.workers]
            return sorted(got, key=str) == sorted(expect, key=str) and got
        return wait_for(ok, 15, what="worker proxies %s" % (expect,))

    def test_placement_proxies_scale_drain(self):
        self.deploy({"applications": [SIMPLE_APP]})
        wait_for(lambda: app_status(self.h, "simple_app") == "RUNNING", 10, what="RUNNING")
        got = self.wait_workers([200, "refused"])
        with_proxy = self.c.workers[got.index(200)]
        without = self.c.workers[got.index("refused")]
        _, _, d = serve_get(self.h)
        reps = d["applications"]["simple_app"]["deployments"]["BaseService"]["replicas"]
        self.assertEqual([r["node_ip"] for r in reps], [with_proxy.ip])
        self.assertEqual(len(reps[0]["replica_id"]), 8)
        self.assertEqual(set(d["proxies"]), {d["controller_info"]["node_id"], reps[0]["node_id"]})
        self.assertEqual(d["applications"]["simple_app"]["route_prefix"], "/basic")
        # Requests through either proxy run on the worker's replica.
        for ip in (self.h.ip, with_proxy.ip):
            st, hdr, body = http(ip, 8000, "POST", "/basic", b"")
            self.assertEqual((st, body, hdr["content-type"]), (200, b"hello world", "text/plain; charset=utf-8"))
            self.assertEqual(hdr["server"], "uvicorn")
            self.assertIn("x-request-id", hdr)
        st, hdr, body = http(with_proxy.ip, 8000, "GET", "/-/routes")
        self.assertEqual((st, body, hdr["content-type"]), (200, b'{"/basic":"simple_app"}', "application/json"))
        st, _, body = http(with_proxy.ip, 8000, "GET", "/nothing")
        self.assertEqual((st, body), (404, b"Path '/nothing' not found. Ping http://.../-/routes for available routes."))
        # KubeRay's worker readiness probe passes only where a proxy is.
        self.assertEqual(kuberay_probe(with_proxy.ip), (0, "success\nsuccess\n"))
        self.assertEqual(kuberay_probe(without.ip), (1, "success\n"))

        # num_replicas 1 -> 2 (max 1 per node): both workers get a proxy.
        two = dict(SIMPLE_APP, deployments=[dict(SIMPLE_APP["deployments"][0], num_replicas=2)])
        self.deploy({"applications": [two]})
        self.wait_workers([200, 200])
        self.assertEqual(kuberay_probe(without.ip)[0], 0)

        # Back to 1: the node losing its last replica drains, then refuses.
        self.deploy({"applications": [SIMPLE_APP]})
        drained = wait_for(lambda: [w for w in self.c.workers if healthz(w.ip) == (503, "This node is being drained.")],
                           10, what="a draining proxy")[0]
        _, _, d = serve_get(self.h)
        self.assertIn("DRAINING", [p["status"] for p in d["proxies"].values()])
        st, _, body = http(drained.ip, 8000, "GET", "/-/routes")
        self.assertEqual((st, body), (503, b"This node is being drained."))
        self.assertEqual(kuberay_probe(drained.ip), (1, "success\n"))
        t0 = time.time()
        wait_for(lambda: port_refuses(drained.ip, 8000), 10, what="drained proxy to stop")
        self.assertGreater(time.time() - t0, 0.3)  # drained only after the minimum draining period
        _, _, d = serve_get(self.h)
        self.assertEqual(len(d["proxies"]), 2)

        # A replica returning during the drain restores 200 (DRAINING -> HEALTHY).
        self.h.config(proxy_min_draining_period_s=30)
        try:
            self.deploy({"applications": [two]})
            self.wait_workers([200, 200])
            self.deploy({"applications": [SIMPLE_APP]})
            drained = wait_for(lambda: [w for w in self.c.workers
                                        if healthz(w.ip) == (503, "This node is being drained.")], 10,
                               what="a draining proxy")[0]
            self.deploy({"applications": [two]})
            wait_for(lambda: healthz(drained.ip) == (200, "success"), 10, what="drain cancelled")
        finally:
            self.h.config(proxy_min_draining_period_s=1)

    def test_deploy_failed_and_declarative_delete(self):
        bad = {"name": "broken", "import_path": "no_such_module.app:graph", "route_prefix": "/broken"}
        self.deploy({"applications": [SIMPLE_APP, bad]})
        wait_for(lambda: app_status(self.h, "broken") == "DEPLOY_FAILED", 10, what="DEPLOY_FAILED")
        _, _, d = serve_get(self.h)
        msg = d["applications"]["broken"]["message"]
        self.assertIn("Traceback (most recent call last)", msg)
        self.assertIn("ModuleNotFoundError: No module named 'no_such_module'", msg)
        self.assertIsNone(d["applications"]["broken"]["route_prefix"])
        self.deploy({"applications": [SIMPLE_APP]})
        wait_for(lambda: app_status(self.h, "broken") is None, 10, what="broken app deleted")
        wait_for(lambda: app_status(self.h, "simple_app") == "RUNNING", 10, what="simple_app RUNNING")


class FruitAndCalc(unittest.TestCase):
    """ray-service.sample.yaml apps, in-place user_config update, node loss."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster("127.77.12", workers=2, head_args=["--num-cpus=0"], worker_args=["--num-cpus=2"], env=FAST)
        cls.c.start()
        cls.h = cls.c.head

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def post(self, ip, path, body):
        st, hdr, data = http(ip, 8000, "POST", path, json.dumps(body).encode())
        return st, data.decode()

    def check_corpus_shape(self, d):
        """Same keys, in the same order, as shared/corpus/ray-api/serve-applications-fruit-math.json."""
        path = os.path.join(os.environ.get("RW_CORPUS_DIR", "/work/shared/corpus"), "ray-api",
                            "serve-applications-fruit-math.json")
        if not os.path.exists(path):
            return
        with open(path) as f:
            ref = json.load(f)
        self.assertEqual(list(d), list(ref))
        self.assertEqual(list(d["controller_info"]), list(ref["controller_info"]))
        self.assertEqual(list(d["http_options"]), list(ref["http_options"]))
        self.assertEqual(d["grpc_options"], ref["grpc_options"])
        for p, rp in zip(d["proxies"].values(), ref["proxies"].values()):
            self.assertEqual(list(p), list(rp))
        for name in ("fruit_app", "math_app"):
            a, ra = d["applications"][name], ref["applications"][name]
            self.assertEqual(list(a), list(ra))
            self.assertEqual(a["deployed_app_config"], ra["deployed_app_config"])
            self.assertEqual(list(a["deployed_app_config"]), list(ra["deployed_app_config"]))
            for dep, rdep in ra["deployments"].items():
                self.assertEqual(list(a["deployments"][dep]), list(rdep))
                dc = dict(a["deployments"][dep]["deployment_config"])
                rdc = dict(rdep["deployment_config"])
                if dep == "Router":
                    # Real test_dag code: Router's ray_actor_options num_cpus is 0.1.
                    rdc["ray_actor_options"] = dict(rdc["ray_actor_options"], num_cpus=0.1)
                self.assertEqual(dc, rdc)
                self.assertEqual(list(a["deployments"][dep]["replicas"][0]), list(rdep["replicas"][0]))

    def test_answers_update_and_node_loss(self):
        st, _, _ = http(self.h.ip, 8265, "PUT", "/api/serve/applications/", FRUIT_MATH)
        self.assertEqual(st, 200)
        wait_for(lambda: app_status(self.h, "fruit_app") == "RUNNING" and app_status(self.h, "math_app") == "RUNNING",
                 15, what="apps RUNNING")
        self.assertEqual(self.post(self.h.ip, "/fruit", ["MANGO", 2]), (200, "6"))
        self.assertEqual(self.post(self.h.ip, "/fruit", ["PEAR", 2]), (200, "2"))
        self.assertEqual(self.post(self.h.ip, "/fruit", ["KIWI", 2]), (200, "-1"))
        self.assertEqual(self.post(self.h.ip, "/calc", ["MUL", 3]), (200, "15 pizzas please!"))
        self.assertEqual(self.post(self.h.ip, "/calc", ["ADD", 3]), (200, "6 pizzas please!"))
        self.assertEqual(self.post(self.h.ip, "/calc", "garbage")[0], 500)
        _, _, d = serve_get(self.h)
        mango = d["applications"]["fruit_app"]["deployments"]["MangoStand"]
        self.assertEqual(len({r["node_ip"] for r in mango["replicas"]}), 2)  # max_replicas_per_node 1
        router = d["applications"]["math_app"]["deployments"]["Router"]["deployment_config"]
        self.assertEqual(router["ray_actor_options"], {"runtime_env": WD, "num_cpus": 0.1})
        self.check_corpus_shape(d)
        ids = sorted(r["replica_id"] for r in mango["replicas"])

        # user_config price 3 -> 4 is applied in place (same replicas).
        cfg = json.loads(json.dumps(FRUIT_MATH))
        cfg["applications"][0]["deployments"][0]["user_config"]["price"] = 4
        self.assertEqual(http(self.h.ip, 8265, "PUT", "/api/serve/applications/", cfg)[0], 200)
        wait_for(lambda: self.post(self.h.ip, "/fruit", ["MANGO", 2]) == (200, "8"), 10, what="price 4")
        wait_for(lambda: app_status(self.h, "fruit_app") == "RUNNING", 10, what="RUNNING after update")
        _, _, d = serve_get(self.h)
        mango = d["applications"]["fruit_app"]["deployments"]["MangoStand"]
        self.assertEqual(sorted(r["replica_id"] for r in mango["replicas"]), ids)
        self.assertEqual(mango["status_trigger"], "CONFIG_UPDATE_COMPLETED")

        # Kill one worker outright: its replicas are replaced on the other node.
        victim = self.c.workers[0]
        victim.stop(sig=9)
        survivor = self.c.workers[1]

        def recovered():
            _, _, dd = serve_get(self.h)
            deps = [dep for a in dd["applications"].values() for dep in a["deployments"].values()]
            placed = all(r.get("node_ip", survivor.ip) == survivor.ip for dep in deps for r in dep["replicas"])
            return placed and app_status(self.h, "math_app") == "RUNNING" and dd
        dd = wait_for(recovered, 15, what="replicas moved to the survivor")
        # MangoStand wants 2 replicas at most 1 per node: one cannot be placed,
        # so the app stays UNHEALTHY while the survivor keeps serving.
        mango = dd["applications"]["fruit_app"]["deployments"]["MangoStand"]
        self.assertEqual(sorted(r["state"] for r in mango["replicas"]), ["RUNNING", "STARTING"])
        self.assertEqual(len([r for r in mango["replicas"] if "node_ip" not in r]), 1)
        self.assertEqual(dd["applications"]["fruit_app"]["status"], "UNHEALTHY")
        self.assertEqual(mango["status"], "UNHEALTHY")
        wait_for(lambda: self.post(self.h.ip, "/calc", ["MUL", 3]) == (200, "15 pizzas please!"), 10, what="calc")
        self.assertEqual(self.post(survivor.ip, "/fruit", ["ORANGE", 3]), (200, "6"))
        self.assertEqual(self.post(survivor.ip, "/fruit", ["MANGO", 1]), (200, "4"))
        # A node with room brings the deployment back to HEALTHY.
        self.c.add_worker()
        wait_for(lambda: app_status(self.h, "fruit_app") == "RUNNING", 15, what="fruit_app RUNNING again")


class Jobs(unittest.TestCase):
    """Jobs REST API and the `ray job` CLI (ray-apis.md section 4)."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster("127.77.13", workers=0, head_args=["--num-cpus=1"], env=FAST)
        cls.c.start()
        cls.h = cls.c.head
        cls.url = "http://%s:8265" % cls.h.ip

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def submit(self, body):
        st, hdr, data = http(self.h.ip, 8265, "POST", "/api/jobs/", body)
        return st, data

    def job(self, sid):
        st, _, data = http(self.h.ip, 8265, "GET", "/api/jobs/%s" % sid)
        return json.loads(data) if st == 200 else None

    def wait_status(self, sid, status):
        return wait_for(lambda: (self.job(sid) or {}).get("status") == status and self.job(sid), 15,
                        what="%s %s" % (sid, status))

    def test_lifecycle(self):
        st, data = self.submit({"entrypoint": "echo hello-$RAY_ADDRESS; echo $counter_name", "submission_id": "ok-1",
                                "runtime_env": {"env_vars": {"counter_name": "test_counter"}},
                                "metadata": {"owner": "team-a"}, "entrypoint_num_cpus": 1})
        self.assertEqual((st, json.loads(data)), (200, {"job_id": "ok-1", "submission_id": "ok-1"}))
        first = self.job("ok-1")
        self.assertEqual(list(first), ["type", "job_id", "submission_id", "driver_info", "status", "entrypoint",
                                       "message", "error_type", "start_time", "end_time", "metadata", "runtime_env",
                                       "driver_agent_http_address", "driver_node_id", "driver_exit_code"])
        info = self.wait_status("ok-1", "SUCCEEDED")
        self.assertEqual(info["message"], "Job finished successfully.")
        self.assertEqual(info["driver_exit_code"], 0)
        self.assertRegex(info["job_id"], r"^[0-9a-f]{2}000000$")
        self.assertGreater(info["start_time"], 10 ** 12)  # milliseconds
        self.assertGreaterEqual(info["end_time"], info["start_time"])
        self.assertEqual(info["driver_agent_http_address"], "http://%s:52365" % self.h.ip)
        self.assertEqual(self.job(info["job_id"])["submission_id"], "ok-1")  # lookup by driver job id
        logs = json.loads(http(self.h.ip, 8265, "GET", "/api/jobs/ok-1/logs")[2])["logs"]
        self.assertIn("hello-%s:6379\ntest_counter\n" % self.h.ip, logs)
        # Duplicate submission id: 500 with KubeRay's substring.
        st, data = self.submit({"entrypoint": "true", "submission_id": "ok-1"})
        self.assertEqual(st, 500)
        self.assertIn(b"Please use a different submission_id", data)
        self.assertEqual(self.submit({"entrypoint": "true", "bogus": 1})[0], 400)
        # Failing entrypoint.
        self.submit({"entrypoint": "echo boom; exit 3", "submission_id": "bad-1"})
        info = self.wait_status("bad-1", "FAILED")
        self.assertTrue(info["message"].startswith("Job entrypoint command failed with exit code 3, last available "
                                                   "logs (truncated to 20,000 chars):\n"))
        self.assertIn("boom", info["message"])
        self.assertEqual((info["error_type"], info["driver_exit_code"]), ("JOB_ENTRYPOINT_COMMAND_ERROR", 3))
        # Stop kills the process group.
        self.submit({"entrypoint": "sleep 60", "submission_id": "long-1"})
        self.wait_status("long-1", "RUNNING")
        st, _, data = http(self.h.ip, 8265, "DELETE", "/api/jobs/long-1")
        self.assertEqual(st, 500)
        self.assertIn(b"Attempted to delete job 'long-1', but it is in a non-terminal state RUNNING.", data)
        st, _, data = http(self.h.ip, 8265, "POST", "/api/jobs/long-1/stop")
        self.assertEqual((st, json.loads(data)), (200, {"stopped": True}))
        info = self.wait_status("long-1", "STOPPED")
        self.assertEqual(info["message"], "Job was intentionally stopped.")
        self.assertEqual(json.loads(http(self.h.ip, 8265, "POST", "/api/jobs/long-1/stop")[2]), {"stopped": False})
        lst = json.loads(http(self.h.ip, 8265, "GET", "/api/jobs/")[2])
        mine = [j["submission_id"] for j in lst if j["submission_id"] in ("ok-1", "bad-1", "long-1")]
        self.assertEqual(mine, ["ok-1", "bad-1", "long-1"])
        self.assertTrue(all(j["type"] == "SUBMISSION" for j in lst))
        st, _, data = http(self.h.ip, 8265, "DELETE", "/api/jobs/bad-1")
        self.assertEqual((st, json.loads(data)), (200, {"deleted": True}))
        self.assertIsNone(self.job("bad-1"))

    def ray(self, *args, timeout=60):
        return subprocess.run([sys.executable, RAY] + list(args), capture_output=True, text=True, timeout=timeout)

    def test_cli(self):
        p = self.ray("job", "submit", "--address", self.url, "--no-wait", "--submission-id", "cli-1",
                     "--runtime-env-json", '{"env_vars": {"X": "1"}}', "--metadata-json", '{"a": "b"}',
                     "--entrypoint-num-cpus", "1.000000", "--", "echo", "cli says $X")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Job 'cli-1' submitted successfully", p.stdout)
        p = self.ray("job", "logs", "--address", self.url, "--follow", "cli-1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("cli says $X", p.stdout)  # shlex.join quotes the argument
        p = self.ray("job", "status", "--address", self.url, "cli-1")
        self.assertEqual(p.returncode, 0)
        self.assertIn("Job 'cli-1' succeeded", p.stdout)  # cli.py _log_job_status
        self.assertEqual(self.ray("job", "status", "--address", self.url, "missing-1").returncode, 1)
        p = self.ray("job", "submit", "--address", self.url, "--submission-id", "cli-2", "--", "bash", "-c", "exit 4")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Job 'cli-2' failed", p.stdout)
        p = self.ray("job", "submit", "--address", self.url, "--no-wait", "--submission-id", "cli-3", "--", "sleep", "60")
        self.assertEqual(p.returncode, 0)
        self.wait_status("cli-3", "RUNNING")
        p = self.ray("job", "stop", "--address", self.url, "cli-3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Job 'cli-3' was stopped", p.stdout)
        self.assertEqual(self.ray("job", "list", "--address", self.url).returncode, 0)
        # Inside the head pod (SidecarMode submitter), 127.0.0.1 is the pod itself.
        p = subprocess.run([sys.executable, RAY, "job", "status", "--address", "http://127.0.0.1:8265", "cli-1"],
                           capture_output=True, text=True, timeout=30, env=dict(os.environ, RW_SIM_POD_IP=self.h.ip))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Job 'cli-1' succeeded", p.stdout)
        self.assertEqual(self.ray("job", "status", "--bogus", "x").returncode, 2)


class Shim(unittest.TestCase):
    """Exit codes of the `ray` shim itself."""

    def ray(self, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([sys.executable, RAY] + list(args), capture_output=True, text=True, timeout=30, env=e)

    def test_usage_errors(self):
        p = self.ray("start", "--head", "--no-such-thing=1")
        self.assertEqual(p.returncode, 2)
        self.assertIn("Error: No such option: --no-such-thing", p.stderr)
        p = self.ray("start", "--num-cpus=1.5")
        self.assertEqual(p.returncode, 2)
        self.assertIn("Invalid value for '--num-cpus': '1.5' is not a valid integer.", p.stderr)
        self.assertEqual(self.ray("start", "--block=true").returncode, 2)
        self.assertEqual(self.ray("frobnicate").returncode, 2)
        self.assertEqual(self.ray("--version").stdout.strip(), "ray, version 2.52.0")

    def test_health_check_and_worker_without_gcs(self):
        self.assertEqual(self.ray("health-check", "--address", "127.77.14.9:6379").returncode, 1)
        p = self.ray("start", "--block", "--address=127.77.14.9:6379", "--num-cpus=1",
                     env={"RW_SIM_POD_IP": "127.77.14.3", "RW_SIM_START_CONNECT_TIMEOUT_S": "1"})
        self.assertEqual(p.returncode, 1)
        with Cluster("127.77.14", workers=0, head_args=["--num-cpus=0"], env=FAST) as c:
            self.assertEqual(self.ray("health-check", "--address", "%s:6379" % c.head.ip).returncode, 0)
            # Every option KubeRay renders is accepted.
            w = c.add_worker(start=False)
            w.args += ["--metrics-export-port=8080", "--memory=1073741824", "--num-gpus=0", "--log-color=false",
                       "--include-log-monitor=false", "--resources={\"TPU\":4}", "--labels=a=b", "--num-cpus=1"]
            w.start()
            w.wait_ready()
            self.assertEqual(w.get(52365, "/api/local_raylet_healthz")[2], b"success")
            self.assertEqual(w.stop(), 0)  # SIGTERM is a clean exit
            # The GCS marks a gracefully stopped raylet dead at once.
            st, _, _ = c.head.get(8265, "/api/gcs_healthz")
            self.assertEqual(st, 200)

    def test_background_start_and_stop(self):
        env = {"RW_SIM_POD_IP": "127.77.15.1", "RW_SIM_TMPDIR": "/tmp/raysim-test-bg"}
        shutil.rmtree("/tmp/raysim-test-bg", ignore_errors=True)
        p = self.ray("start", "--head", "--num-cpus=0", env=env)
        try:
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("Ray runtime started.", p.stdout)
            self.assertEqual(http("127.77.15.1", 8265, "GET", "/api/gcs_healthz")[2], b"success")
        finally:
            s = self.ray("stop", env=env)
        self.assertEqual(s.returncode, 0)
        self.assertIn("Stopped all 1 Ray processes.", s.stdout)
        wait_for(lambda: port_refuses("127.77.15.1", 8265), 10, what="background node to stop")


if __name__ == "__main__":
    unittest.main()

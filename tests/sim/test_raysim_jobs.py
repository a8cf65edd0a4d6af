"""The Ray-job side of the test world: the Python `ray` stand-in, runtime_env,
the `ray job` CLI as KubeRay's submitter runs it, job faults and job recovery.

The end-to-end checks run KubeRay's submitter command (common/job.go
BuildJobSubmitCommand, K8sJobMode and SidecarMode) through bash against a
simulated head, with the script of ray-job.sample.yaml's ConfigMap; they are
skipped with a message when shared/ is absent.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from raysim.cluster import Cluster, SimNode, http, wait_for  # noqa: E402
from raysim.gcs import GcsClient  # noqa: E402
from raysim.jobs import parse_requirement  # noqa: E402
from kubesim.testutil import free_port  # noqa: E402
from test_raysim import FAST  # noqa: E402

SIM_BIN = os.path.join(HERE, "bin")
PYRAY = os.path.join(HERE, "pyray")
SHARED = os.environ.get("RW_SHARED_DIR") or os.path.join(os.path.dirname(os.path.dirname(HERE)), "..", "shared")
if not os.path.isdir(SHARED):
    SHARED = "/work/shared"
SAMPLE = os.path.join(SHARED, "corpus", "kuberay-samples", "ray-job.sample.yaml")
REDIS = shutil.which("redis-server")

# KubeRay v1.7 utils.BasePythonHealthCommand with RayDashboardGCSHealthCheckTimeoutSeconds (10).
HEALTH = ("python -c \"import urllib.request; r=urllib.request.urlopen('%s', timeout=10); "
          "exit(0 if b'success' in r.read() else 1)\"")


def go_quote(s):
    # strconv.Quote of an ASCII string: JSON's escaping is the same.
    return json.dumps(s)


def submitter_command(address, sid, entrypoint, runtime_env=None, metadata=None, sidecar=False, health_url=None):
    """The string KubeRay joins with spaces and runs as `/bin/bash -ce -- <cmd>`
    (ray-operator/controllers/ray/common/job.go BuildJobSubmitCommand)."""
    health_url = health_url or address + "/api/gcs_healthz"
    cmd = ["until", HEALTH % health_url, ">/dev/null", "2>&1", ";", "do", "echo",
           go_quote("Waiting for Ray Dashboard GCS to become healthy at " + address + " ..."), ";", "sleep", "2",
           ";", "done", ";"]
    if not sidecar:
        cmd += ["if", "!", "ray", "job", "status", "--address", address, sid, ">/dev/null", "2>&1", ";", "then"]
    cmd += ["ray", "job", "submit", "--address", address]
    if not sidecar:
        cmd.append("--no-wait")
    if runtime_env:
        cmd += ["--runtime-env-json", go_quote(json.dumps(runtime_env, separators=(",", ":")))]
    if metadata:
        cmd += ["--metadata-json", go_quote(json.dumps(metadata, separators=(",", ":")))]
    cmd += ["--submission-id", sid, "--", entrypoint, ";"]
    if not sidecar:
        cmd += ["fi", ";", "ray", "job", "logs", "--address", address, "--follow", sid]
    return " ".join(cmd)


def sample_script():
    """sample_code.py from the ConfigMap in ray-job.sample.yaml (block scalar, 4-space indent)."""
    with open(SAMPLE) as f:
        text = f.read()
    block = text[text.index("sample_code.py: |"):].split("\n")[1:]
    return textwrap.dedent("\n".join(block)) + "\n"


def sample_runtime_env():
    # runtimeEnvYAML of the sample, as KubeRay converts it to JSON (yaml.YAMLToJSON).
    return {"pip": ["requests==2.26.0", "pendulum==2.1.2"], "env_vars": {"counter_name": "test_counter"}}


def ray_image_env(extra=None):
    """The environment of a process in a simulated Ray container: the shims first on PATH."""
    env = dict(os.environ)
    env["PATH"] = SIM_BIN + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


def run_py(code, env=None, timeout=60):
    e = dict(os.environ)
    e["PYTHONPATH"] = PYRAY
    e.pop("RAY_ADDRESS", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=timeout)


class PyRay(unittest.TestCase):
    """The `ray` stand-in on its own (stand-alone mode, no cluster)."""

    def test_actors_tasks_and_errors(self):
        p = run_py(textwrap.dedent("""
            import os, ray
            ray.init()
            assert ray.is_initialized()
            try:
                ray.init()
            except RuntimeError as e:
                print("reinit:", "ignore_reinit_error=True" in str(e))
            @ray.remote
            def div(a, b):
                return a / b
            @ray.remote(num_cpus=1)
            class Acc:
                def __init__(self, start):
                    self.v = start
                def add(self, x):
                    self.v += x
                    return self.v
            a = Acc.options(name="acc", namespace="ns").remote(ray.put(10))
            print("adds:", ray.get([a.add.remote(1), a.add.remote(2)]))
            print("named:", ray.get(ray.get_actor("acc", namespace="ns").add.remote(0)))
            ready, rest = ray.wait([div.remote(1, 1), div.remote(1, 2), div.remote(1, 4)], num_returns=2)
            print("wait:", len(ready), len(rest), ray.get(rest[0]))
            try:
                ray.get(div.remote(1, 0))
            except ZeroDivisionError as e:
                print("cause:", isinstance(e, ray.exceptions.RayTaskError), str(e).startswith("ray::div()"))
            try:
                div(1, 2)
            except TypeError as e:
                print("direct:", "div.remote()" in str(e))
            ray.kill(a)
            try:
                ray.get(a.add.remote(1))
            except ray.exceptions.ActorDiedError:
                print("killed: ActorDiedError")
            print("env:", ray.get(div.options(runtime_env={"env_vars": {"X": "7"}}).remote(1, 1)),
                  os.environ.get("X"))
            print("cpus:", ray.cluster_resources()["CPU"] > 0)
            ray.shutdown()
            print("after:", ray.is_initialized())
        """))
        self.assertEqual(p.returncode, 0, p.stderr)
        for line in ("reinit: True", "adds: [11, 13]", "named: 13", "wait: 2 1 0.25", "cause: True True",
                     "direct: True", "killed: ActorDiedError", "env: 1.0 None", "cpus: True", "after: False"):
            self.assertIn(line, p.stdout)

    def test_init_addresses(self):
        p = run_py("import ray; ray.init(address='auto')")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ConnectionError: Could not find any running Ray instance", p.stderr)
        # RAY_ADDRESS pointing at nothing: ray.init fails instead of running stand-alone.
        port = free_port()
        p = run_py("import ray; ray.init()", env={"RAY_ADDRESS": "127.0.0.1:%d" % port,
                                                  "RW_SIM_RAY_INIT_TIMEOUT_S": "0.5"})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ConnectionError: Could not connect to the GCS at 127.0.0.1:%d" % port, p.stderr)

    def test_requirement_parsing(self):
        self.assertEqual(parse_requirement("requests==2.26.0"), ("requests", "2.26.0"))
        self.assertEqual(parse_requirement("pendulum >= 2, == 2.1.2"), ("pendulum", "2.1.2"))
        self.assertEqual(parse_requirement("numpy"), ("numpy", None))
        self.assertEqual(parse_requirement("ray[serve]>=2.0; python_version>'3'"), ("ray", None))
        for bad in ("requests==", "-e .", "==1.0", "a b"):
            with self.assertRaises(ValueError, msg=bad):
                parse_requirement(bad)


class JobsOnHead(unittest.TestCase):
    """One simulated head (1 CPU); jobs, the CLI and faults against it."""

    @classmethod
    def setUpClass(cls):
        # The offline pip knows no "nosuchpkg" (RW_SIM_PIP_FAIL, docs/ray-simulator.md).
        cls.c = Cluster("127.77.64", workers=0, head_args=["--num-cpus=1"], env=dict(FAST, RW_SIM_PIP_FAIL="nosuchpkg"))
        cls.c.start()
        cls.h = cls.c.head
        cls.url = "http://%s:8265" % cls.h.ip
        cls.tmp = tempfile.mkdtemp(prefix="raysim-jobs-")

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def job(self, sid):
        st, _, data = http(self.h.ip, 8265, "GET", "/api/jobs/%s" % sid)
        return json.loads(data) if st == 200 else None

    def wait_terminal(self, sid, timeout=30):
        return wait_for(lambda: (self.job(sid) or {}).get("status") in ("SUCCEEDED", "FAILED", "STOPPED")
                        and self.job(sid), timeout, what="%s terminal" % sid)

    def logs(self, sid):
        return json.loads(http(self.h.ip, 8265, "GET", "/api/jobs/%s/logs" % sid)[2])["logs"]

    def bash(self, cmd, env=None, timeout=120):
        return subprocess.run(["/bin/bash", "-ce", "--", cmd], capture_output=True, text=True, timeout=timeout,
                              env=ray_image_env(env), cwd=self.tmp)

    def ray(self, *args, env=None, timeout=60):
        return subprocess.run(["ray"] + list(args), capture_output=True, text=True, timeout=timeout,
                              env=ray_image_env(env), cwd=self.tmp)

    def submit(self, body):
        st, _, data = http(self.h.ip, 8265, "POST", "/api/jobs/", body)
        self.assertEqual(st, 200, data)
        return json.loads(data)["submission_id"]

    def write(self, rel, text):
        path = os.path.join(self.tmp, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    # ------------------------------------------------------------------ KubeRay's submitter
    @unittest.skipUnless(os.path.exists(SAMPLE), "shared/corpus is absent: the KubeRay sample tests are skipped")
    def test_sample_with_k8sjobmode_submitter(self):
        script = self.write("samples/sample_code.py", sample_script())
        cmd = submitter_command(self.url, "rayjob-sample-k8s1", "python %s" % script, sample_runtime_env(),
                                metadata={"owner": "team-a"})
        p = self.bash(cmd)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("test_counter got 5", p.stdout)
        self.assertIn("Job 'rayjob-sample-k8s1' submitted successfully", p.stdout)
        self.assertIn("Job 'rayjob-sample-k8s1' succeeded", p.stdout)
        info = self.job("rayjob-sample-k8s1")
        self.assertEqual((info["status"], info["driver_exit_code"]), ("SUCCEEDED", 0))
        self.assertEqual(info["runtime_env"], sample_runtime_env())
        self.assertEqual(info["metadata"], {"owner": "team-a"})
        # A retried submitter pod runs the same command: the job exists, so it only
        # follows the logs again (KubeRay #2154) and exits 0.
        p = self.bash(cmd)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("submitted successfully", p.stdout)
        self.assertIn("test_counter got 5", p.stdout)
        self.assertEqual(len([j for j in json.loads(http(self.h.ip, 8265, "GET", "/api/jobs/")[2])
                              if j["submission_id"] == "rayjob-sample-k8s1"]), 1)

    @unittest.skipUnless(os.path.exists(SAMPLE), "shared/corpus is absent: the KubeRay sample tests are skipped")
    def test_sample_with_sidecar_submitter(self):
        # SidecarMode: 127.0.0.1 and localhost are the head pod itself.
        script = self.write("samples/sample_code.py", sample_script())
        cmd = submitter_command("http://127.0.0.1:8265", "rayjob-sidecar-1", "python %s" % script,
                                sample_runtime_env(), sidecar=True,
                                health_url="http://localhost:8265/api/gcs_healthz")
        p = self.bash(cmd, env={"RW_SIM_POD_IP": self.h.ip})
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Tailing logs until the job exits (disable with --no-wait):", p.stdout)
        self.assertIn("test_counter got 5", p.stdout)
        self.assertEqual(self.job("rayjob-sidecar-1")["status"], "SUCCEEDED")

    def test_submitter_waits_for_gcs_health(self):
        # The GCS does not answer (gcs_healthz 503): the wait loop spins, printing its
        # line, and submits once the GCS is back.
        self.h.fault("gcs", "hang")
        p = subprocess.Popen(["/bin/bash", "-ce", "--", submitter_command(self.url, "wait-gcs-1", "echo up")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=ray_image_env(), cwd=self.tmp)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        try:
            first = p.stdout.readline()
            self.assertEqual(first.strip(), "Waiting for Ray Dashboard GCS to become healthy at %s ..." % self.url)
            self.assertIsNone(p.poll())
            self.assertIsNone(self.job("wait-gcs-1"))
        finally:
            self.h.fault("gcs", "restore")
        out, _ = p.communicate(timeout=60)
        p.stdout.close()
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("Job 'wait-gcs-1' succeeded", out)

    # ------------------------------------------------------------------ runtime_env
    def test_runtime_env(self):
        self.write("wd/helper.py", "VALUE = 'from-working-dir'\n")
        self.write("wd/data.txt", "payload\n")
        self.write("mods/mymod/__init__.py", "NAME = 'mymod'\n")
        code = ("import os, sys, helper, mymod, requests, numpy, importlib.metadata as md; "
                "print(helper.VALUE, open('data.txt').read().strip(), mymod.NAME, requests.__version__, "
                "numpy.__version__, md.version('requests'), os.environ['E1'], os.getcwd() in sys.path)")
        env = {"working_dir": os.path.join(self.tmp, "wd"), "py_modules": [os.path.join(self.tmp, "mods", "mymod")],
               "pip": ["requests==2.26.0", "numpy"], "env_vars": {"E1": "v1"}}
        p = self.ray("job", "submit", "--address", self.url, "--submission-id", "renv-1",
                     "--runtime-env-json", json.dumps(env), "--", "python", "-c", code)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # The working_dir is the cwd and on sys.path; the pinned and unpinned stand-ins shadow the host's.
        self.assertIn("from-working-dir payload mymod 2.26.0 0.0.0-sim 2.26.0 v1 True", p.stdout)
        info = self.job("renv-1")
        # The client uploaded the local directories and submitted their URIs.
        self.assertRegex(info["runtime_env"]["working_dir"], r"^gcs://_ray_pkg_[0-9a-f]{40}\.zip$")
        self.assertRegex(info["runtime_env"]["py_modules"][0], r"^gcs://_ray_pkg_[0-9a-f]{40}\.zip$")
        name = info["runtime_env"]["working_dir"][len("gcs://"):]
        self.assertEqual(http(self.h.ip, 8265, "GET", "/api/packages/gcs/%s" % name)[0], 200)
        self.assertEqual(http(self.h.ip, 8265, "GET", "/api/packages/gcs/_ray_pkg_none.zip")[0], 404)
        # pip: a requirement no index has fails the runtime_env setup.
        sid = self.submit({"entrypoint": "echo never", "submission_id": "renv-pip-bad",
                           "runtime_env": {"pip": ["nosuchpkg==1.0"]}})
        info = self.wait_terminal(sid)
        self.assertEqual((info["status"], info["error_type"]), ("FAILED", "RUNTIME_ENV_SETUP_FAILURE"))
        self.assertTrue(info["message"].startswith("runtime_env setup failed: Failed to set up runtime environment."))
        self.assertIn("No matching distribution found for nosuchpkg", info["message"])
        self.assertIsNone(info["driver_exit_code"])
        self.assertNotIn("never", self.logs(sid))
        sid = self.submit({"entrypoint": "true", "submission_id": "renv-pip-invalid",
                           "runtime_env": {"pip": ["requests=="]}})
        self.assertIn("ERROR: Invalid requirement: 'requests=='", self.wait_terminal(sid)["message"])
        # A path that does not exist on the head: the supervisor cannot be created.
        sid = self.submit({"entrypoint": "true", "submission_id": "renv-path-missing",
                           "runtime_env": {"working_dir": "/nonexistent/dir"}})
        info = self.wait_terminal(sid)
        self.assertEqual((info["status"], info["error_type"]), ("FAILED", "JOB_SUPERVISOR_ACTOR_START_FAILURE"))
        self.assertIn("Failed to start supervisor actor renv-path-missing: '/nonexistent/dir is not a valid path'",
                      info["message"])
        # A path on the head itself, through the REST API: packaged there.
        sid = self.submit({"entrypoint": "cat data.txt", "submission_id": "renv-path-head",
                           "runtime_env": {"working_dir": os.path.join(self.tmp, "wd")}})
        self.assertEqual(self.wait_terminal(sid)["status"], "SUCCEEDED")
        self.assertIn("payload", self.logs(sid))
        # Offline: a remote working_dir cannot be fetched.
        sid = self.submit({"entrypoint": "true", "submission_id": "renv-remote",
                           "runtime_env": {"working_dir": "https://example.invalid/archive.zip"}})
        self.assertEqual(self.wait_terminal(sid)["error_type"], "RUNTIME_ENV_SETUP_FAILURE")

    # ------------------------------------------------------------------ CLI exit codes
    def test_cli_exit_codes_and_output(self):
        a = self.url
        p = self.ray("job", "status", "--address", a, "no-such-job")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Request failed with status code 404: Job no-such-job does not exist", p.stderr)
        p = self.ray("job", "logs", "--address", a, "--follow", "no-such-job")
        self.assertEqual(p.returncode, 1)
        # Submit and wait: exit 1 only for FAILED.
        p = self.ray("job", "submit", "--address", a, "--submission-id", "cli-fail", "--", "bash", "-c",
                     "echo failing; exit 3")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("failing", p.stdout)
        self.assertIn("Job 'cli-fail' failed", p.stdout)
        self.assertIn("Status message: Job entrypoint command failed with exit code 3", p.stdout)
        # logs --follow of a failed job exits 0 (cli.py logs: no exit code from the status).
        p = self.ray("job", "logs", "--address", a, "--follow", "cli-fail")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Job 'cli-fail' failed", p.stdout)
        # status of a terminal job prints what _log_job_status prints.
        p = self.ray("job", "status", "--address", a, "cli-fail")
        self.assertEqual(p.returncode, 0)
        self.assertIn("Job 'cli-fail' failed", p.stdout)
        # A duplicate submission id: the 500 with KubeRay's substring, exit 1.
        p = self.ray("job", "submit", "--address", a, "--no-wait", "--submission-id", "cli-fail", "--", "true")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Please use a different submission_id", p.stderr)
        p = self.ray("job", "submit", "--address", a, "--submission-id", "cli-ok", "--", "echo", "fine")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Job 'cli-ok' succeeded", p.stdout)
        p = self.ray("job", "submit", "--address", a, "--no-wait", "--submission-id", "cli-stop", "--", "sleep", "60")
        self.assertEqual(p.returncode, 0)
        wait_for(lambda: self.job("cli-stop")["status"] == "RUNNING", 15, what="cli-stop running")
        p = self.ray("job", "stop", "--address", a, "cli-stop")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Job 'cli-stop' was stopped", p.stdout)
        # The address may come from RAY_API_SERVER_ADDRESS.
        p = self.ray("job", "status", "cli-ok", env={"RAY_API_SERVER_ADDRESS": a})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Job 'cli-ok' succeeded", p.stdout)
        p = self.ray("job", "delete", "--address", a, "cli-ok")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIsNone(self.job("cli-ok"))

    def test_log_tail_websocket_and_sdk(self):
        sid = self.submit({"entrypoint": "echo one; sleep 0.5; echo two", "submission_id": "tail-1"})
        p = run_py(textwrap.dedent("""
            import asyncio
            from ray.job_submission import JobSubmissionClient, JobStatus
            c = JobSubmissionClient(%r)
            async def main():
                out = ""
                async for chunk in c.tail_job_logs("tail-1"):
                    out += chunk
                return out
            out = asyncio.run(main())
            print("tail:", "one" in out and "two" in out)
            print("status:", c.get_job_status("tail-1") == JobStatus.SUCCEEDED, c.get_job_status("tail-1").is_terminal())
            try:
                c.get_job_info("tail-missing")
            except RuntimeError as e:
                print("missing:", "Request failed with status code 404" in str(e))
        """ % self.url))
        self.assertEqual(p.returncode, 0, p.stderr)
        for line in ("tail: True", "status: True True", "missing: True"):
            self.assertIn(line, p.stdout)
        self.assertEqual(self.job(sid)["status"], "SUCCEEDED")
        # A plain GET of the WebSocket route is refused like aiohttp's.
        self.assertEqual(http(self.h.ip, 8265, "GET", "/api/jobs/tail-1/logs/tail")[0], 400)

    # ------------------------------------------------------------------ faults
    def test_driver_killed_and_exit_one(self):
        sid = self.submit({"entrypoint": "echo started; sleep 60", "submission_id": "drv-kill"})
        wait_for(lambda: "started" in self.logs(sid), 15, what="driver started")
        st = self.h.fault("driver", "kill", submission_id=sid)
        self.assertEqual(st["killed"], [sid])
        info = self.wait_terminal(sid)
        self.assertEqual((info["status"], info["error_type"], info["driver_exit_code"]),
                         ("FAILED", "JOB_ENTRYPOINT_COMMAND_ERROR", -9))
        self.assertIn("failed with exit code -9", info["message"])
        sid = self.submit({"entrypoint": "python -c 'import sys; sys.exit(1)'", "submission_id": "drv-exit1"})
        info = self.wait_terminal(sid)
        self.assertEqual((info["status"], info["driver_exit_code"]), ("FAILED", 1))

    def test_jobs_api_error_and_slow(self):
        sid = self.submit({"entrypoint": "true", "submission_id": "api-fault-1"})
        self.wait_terminal(sid)
        self.h.fault("jobs", "error")
        try:
            st, hdr, body = http(self.h.ip, 8265, "GET", "/api/jobs/%s" % sid)
            self.assertEqual((st, body), (500, b"500 Internal Server Error\n\nServer got itself in trouble"))
            self.assertEqual(http(self.h.ip, 8265, "POST", "/api/jobs/", {"entrypoint": "true"})[0], 500)
            self.assertEqual(http(self.h.ip, 8265, "GET", "/api/gcs_healthz")[0], 200)  # only the Jobs routes
            self.assertEqual(self.ray("job", "status", "--address", self.url, sid).returncode, 1)
        finally:
            self.h.fault("jobs", "restore")
        self.assertEqual(http(self.h.ip, 8265, "GET", "/api/jobs/%s" % sid)[0], 200)
        self.h.fault("jobs", "slow", delay_ms=2000)
        try:
            t0 = time.monotonic()
            self.assertEqual(http(self.h.ip, 8265, "GET", "/api/jobs/%s" % sid, timeout=10)[0], 200)
            self.assertGreaterEqual(time.monotonic() - t0, 2.0)
            t0 = time.monotonic()
            http(self.h.ip, 8265, "GET", "/api/gcs_healthz")
            self.assertLess(time.monotonic() - t0, 2.0)  # the other routes are not delayed
        finally:
            self.h.fault("jobs", "restore")


class JobLossWithoutFT(unittest.TestCase):
    """Without GCS FT the job info lived in the dead head's memory."""

    def setUp(self):
        self.c = None

    def tearDown(self):
        if self.c is not None:
            self.c.stop()

    def test_without_ft_the_job_is_gone(self):
        self.c = Cluster("127.77.66", workers=0, head_args=["--num-cpus=1"], env=FAST)
        self.c.start()
        h = self.c.head
        self.assertEqual(http(h.ip, 8265, "POST", "/api/jobs/", {"entrypoint": "sleep 600",
                                                                  "submission_id": "long-noft"})[0], 200)
        h.stop(sig=9)
        h2 = SimNode(h.ip, h.args, h.env)
        self.c.head = h2
        h2.start()
        h2.wait_ready()
        wait_for(lambda: http(h2.ip, 8265, "GET", "/api/version")[0] == 200, 20, what="dashboard")
        st, _, body = http(h2.ip, 8265, "GET", "/api/jobs/long-noft")
        self.assertEqual((st, body), (404, b"Job long-noft does not exist"))


@unittest.skipIf(REDIS is None, "redis-server is not installed; the job recovery test is skipped")
class JobRecovery(unittest.TestCase):
    """Head loss: with GCS FT the job info survives and the new head fails the
    jobs of the dead one once the GCS has marked it dead; without FT it is gone."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="raysim-jobs-redis-")
        self.port = free_port()
        self.redis = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", self.dir],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self._stop_redis)
        self.c = None

    def _stop_redis(self):
        if self.c is not None:
            self.c.stop()
        self.redis.terminate()
        self.redis.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_running_job_fails_after_head_loss(self):
        env = dict(FAST, RAY_REDIS_ADDRESS="127.0.0.1:%d" % self.port, RAY_health_check_period_ms="500",
                   RAY_health_check_failure_threshold="4")
        self.c = Cluster("127.77.65", workers=0, head_args=["--num-cpus=1"], env=env)
        self.c.start()
        h = self.c.head
        wait_for(lambda: http(h.ip, 8265, "GET", "/api/version")[0] == 200, 20, what="dashboard")
        st, _, _ = http(h.ip, 8265, "POST", "/api/jobs/", {"entrypoint": "echo running; sleep 600",
                                                            "submission_id": "long-ft"})
        self.assertEqual(st, 200)
        wait_for(lambda: json.loads(http(h.ip, 8265, "GET", "/api/jobs/long-ft")[2])["status"] == "RUNNING", 15,
                 what="running")
        old_node = h.state()["node_id"]
        h.stop(sig=9)
        h2 = SimNode(h.ip, h.args, h.env)
        self.c.head = h2
        h2.start()
        h2.wait_ready()

        def info():
            st, _, data = http(h2.ip, 8265, "GET", "/api/jobs/long-ft")
            return json.loads(data) if st == 200 else None
        wait_for(info, 20, what="job info after restart")
        done = wait_for(lambda: (info() or {}).get("status") == "FAILED" and info(), 30, what="FAILED")
        self.assertEqual(done["error_type"], "JOB_SUPERVISOR_ACTOR_DIED")
        self.assertTrue(done["message"].startswith("Job supervisor actor died: The actor died unexpectedly"))
        self.assertIn("The actor is dead because its node has died. Node Id: %s" % old_node, done["message"])
        # Not before the GCS declared the old head dead (its health checks: 0.5 s x 4).
        nodes = {n["node_id"]: n for n in GcsClient("%s:6379" % h2.ip).call("get_all_node_info")}
        self.assertEqual(nodes[old_node]["state"], "DEAD")
        self.assertGreaterEqual(done["end_time"], nodes[old_node]["end_time_ms"])
        # The new head's log holds the monitor's message (the old log died with the old pod).
        logs = json.loads(http(h2.ip, 8265, "GET", "/api/jobs/long-ft/logs")[2])["logs"]
        self.assertIn("Job supervisor actor died", logs)


if __name__ == "__main__":
    unittest.main()

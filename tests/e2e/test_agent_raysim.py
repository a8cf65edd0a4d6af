"""The real raywarden-agent against the Ray node simulator (tests/sim): a
num-cpus 0 head and one worker, each with its agent, and rw-fakectl as the
controller of the head agent. Faults are injected through the simulator's
control endpoint and the agents' /readyz and reports are checked."""

import json
import os
import random
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "..", "sim")
sys.path.insert(0, SIM)

from agentlib import (AGENT, FAKECTL, events, agent_get, job_reports, ray_job_submit,  # noqa: E402
                      set_reply, start_agent, start_fakectl, wait_for, write_key)

try:
    from raysim.cluster import Cluster  # noqa: E402
except ImportError:  # the simulator is not in this tree
    Cluster = None

ENV = {
    "RAY_health_check_period_ms": "200", "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "0", "RAY_SERVE_PROXY_MIN_DRAINING_PERIOD_S": "3",
    "RAY_SERVE_PROXY_DRAIN_CHECK_PERIOD_S": "0.2", "RAY_SERVE_PROXY_HEALTH_CHECK_PERIOD_S": "0.5",
    "RW_SIM_BLOCK_MONITOR": "0",
}
SIMPLE_APP = {
    "name": "simple_app",
    "import_path": "ray-operator.config.samples.ray-serve.single_deployment_dag:DagNode",
    "route_prefix": "/basic",
    "deployments": [{"name": "BaseService", "num_replicas": 1, "max_replicas_per_node": 1,
                     "ray_actor_options": {"num_cpus": 0.1}}],
}


def detect(ip, has, timeout=5.0):
    """Seconds until /readyz answers 503 with `has` in its reason."""
    t0 = time.monotonic()
    wait_for(lambda: (lambda r: r[0] == 503 and has in r[1])(agent_get(ip, 8477, "/readyz")),
             timeout, interval=0.005, what="503 %s" % has)
    return time.monotonic() - t0


@unittest.skipIf(Cluster is None, "Ray node simulator not present")
class AgentOnRaySim(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (os.path.exists(AGENT) and os.path.exists(FAKECTL)):
            raise unittest.SkipTest("agent binaries not built")
        cls.tmp = tempfile.mkdtemp(prefix="rw-agent-raysim-")
        prefix = "127.79.%d" % random.randint(1, 250)
        cls.c = Cluster(prefix, workers=1, head_args=["--num-cpus=0"],
                        worker_args=["--num-cpus=1"], env=ENV, log_dir=cls.tmp,
                        worker_env={"RAY_gcs_rpc_server_reconnect_timeout_s": "60"})
        cls.c.start()
        cls.h, cls.w = cls.c.head, cls.c.workers[0]
        cls.key = write_key(cls.tmp)
        htmp = os.path.join(cls.tmp, "head")
        wtmp = os.path.join(cls.tmp, "worker")
        os.makedirs(htmp)
        os.makedirs(wtmp)
        cls.ctl = start_fakectl(cls.h.ip, htmp, cls.key)
        cls.ha = start_agent(cls.h.ip, htmp, node_type="head", rayservice="true",
                             controller="tcp://%s:8478" % cls.h.ip, key_file=cls.key,
                             serve_status_interval_ms=500, heartbeat_ms=1000)
        cls.wa = start_agent(cls.w.ip, wtmp, node_type="worker", rayservice="true")

    @classmethod
    def tearDownClass(cls):
        for p in (getattr(cls, "wa", None), getattr(cls, "ha", None), getattr(cls, "ctl", None)):
            if p:
                p.stop()
        cls.c.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ready(self, node, code, has=None, timeout=20):
        def ok():
            c, body = agent_get(node.ip, 8477, "/readyz")
            return c == code and (has is None or has in body) and (c, body)
        return wait_for(ok, timeout, what="%s /readyz %s %s" % (node.ip, code, has))

    def report_has(self, pred, what, timeout=20):
        return wait_for(lambda: [e["report"] for e in events(self.ctl, "report")
                                 if pred(e["report"])], timeout, what=what)

    def test_scenario(self):
        h, w = self.h, self.w
        # No serve yet: the head is ready, the RayService worker has no proxy.
        self.ready(h, 200, "ok")
        self.ready(w, 503, "proxy absent: connection refused")

        # The controller's reply carries a serve config: the head agent PUTs it.
        set_reply(self.ctl, {"serve_config_hash": "h1",
                             "serve_config": json.dumps({"applications": [SIMPLE_APP]})})
        self.ready(w, 200, "ok", timeout=30)
        rpts = self.report_has(
            lambda r: r.get("serve_apply_state") == "applied"
            and any(a.get("name") == "simple_app" and a.get("status") == "RUNNING"
                    for a in r.get("serve", {}).get("apps", [])), "simple_app RUNNING report")
        nodes = rpts[-1]["serve"]["nodes"]
        self.assertIn(w.ip, [n["node_ip"] for n in nodes if n.get("replicas", 0) > 0])
        self.assertEqual(sorted(n["node_ip"] for n in nodes if n.get("proxy_status")),
                         sorted([h.ip, w.ip]))

        # Proxy killed on the worker: NotReady at once; Serve restarts it.
        figures = {}
        w.fault("proxy", "kill")
        figures["proxy_killed_s"] = detect(w.ip, "proxy absent")
        self.ready(w, 200, timeout=30)

        # A job submitted through a reply runs to SUCCEEDED and is reported.
        set_reply(self.ctl, {"serve_config_hash": "h1",
                             "serve_config": json.dumps({"applications": [SIMPLE_APP]}),
                             "submit_job": {"submission_id": "rw-e2e-job-1",
                                            "entrypoint": "echo hello from raysim"}})
        self.report_has(lambda r: any(j.get("submission_id") == "rw-e2e-job-1" and
                                      j.get("status") == "SUCCEEDED"
                                      for j in r.get("jobs", [])), "job SUCCEEDED", 30)

        # A config without applications: the worker's proxy drains (503), then goes.
        set_reply(self.ctl, {"serve_config_hash": "h2",
                             "serve_config": json.dumps({"applications": []})})
        figures["proxy_draining_s"] = detect(w.ip, "proxy draining: This node is being drained.",
                                             15)
        self.ready(w, 503, "proxy absent", timeout=30)

        # Raylet killed on the worker.
        w.fault("raylet", "kill")
        figures["raylet_killed_s"] = detect(w.ip, "raylet down")
        self.assertEqual(agent_get(w.ip, 8477, "/livez")[0], 200)  # grace period

        # GCS killed on the head.
        h.fault("gcs", "kill")
        figures["gcs_killed_s"] = detect(h.ip, "gcs unhealthy", 10)
        self.report_has(lambda r: r["probes"]["gcs"]["state"] == "fail" and not r["ready"],
                        "gcs failure report")
        print("\ndetection (s): %s" % json.dumps({k: round(v, 3) for k, v in figures.items()}))
        # A killed process closes its connections: the agent probes it again at
        # once. A dead GCS only shows in the dashboard's answer: next 2 s poll.
        for k in ("proxy_killed_s", "raylet_killed_s"):
            self.assertLess(figures[k], 0.3, k)
        self.assertLess(figures["gcs_killed_s"], 2.6)
        self.assertIsNone(self.ha.p.poll())
        self.assertIsNone(self.wa.p.poll())
        # SIGTERM: both exit 0 (leak-checked under ASan) while Ray is half dead.
        self.assertEqual(self.wa.stop(), 0)
        self.assertEqual(self.ha.stop(), 0)


TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


@unittest.skipIf(Cluster is None, "Ray node simulator not present")
class AgentJobsOnRaySim(unittest.TestCase):
    """The head agent of a RayJob's cluster tracks jobs it did not submit (the
    reply's watch_jobs: K8sJobMode, SidecarMode, InteractiveMode), reports Ray's
    job details and, once a job has ended, the tail of its driver log; and in
    HTTPMode submits once, treating Ray's duplicate-id answer as submitted."""

    @classmethod
    def setUpClass(cls):
        if not (os.path.exists(AGENT) and os.path.exists(FAKECTL)):
            raise unittest.SkipTest("agent binaries not built")
        cls.tmp = tempfile.mkdtemp(prefix="rw-agent-jobs-")
        prefix = "127.78.%d" % random.randint(1, 250)
        cls.c = Cluster(prefix, workers=0, env=ENV, log_dir=cls.tmp)
        cls.c.start()
        cls.h = cls.c.head
        cls.key = write_key(cls.tmp)
        cls.atmp = os.path.join(cls.tmp, "head")
        os.makedirs(cls.atmp)
        cls.ctl = start_fakectl(cls.h.ip, cls.atmp, cls.key)
        cls.ha = start_agent(cls.h.ip, cls.atmp, node_type="head",
                             controller="tcp://%s:8478" % cls.h.ip, key_file=cls.key,
                             heartbeat_ms=1000)
        cls.watched = []
        cls.run_id = "%04x" % random.getrandbits(16)

    @classmethod
    def tearDownClass(cls):
        for p in (getattr(cls, "ha", None), getattr(cls, "ctl", None)):
            if p:
                p.stop()
        cls.c.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def sid(self, name):
        return "rw-e2e-%s-%s" % (name, self.run_id)

    def reply(self, watch=(), **extra):
        """The controller's reply: every id watched so far (the real controller sends
        only those the agent's report lacks; the agent ignores ids it tracks)."""
        for s in watch:
            if s not in self.watched:
                self.watched.append(s)
        set_reply(self.ctl, dict(extra, watch_jobs=self.watched[-64:]))

    def submit(self, sid, entrypoint):
        code, body = ray_job_submit(self.h.ip, sid, entrypoint)
        self.assertEqual(code, 200, body)

    def job_where(self, sid, pred, what, timeout=20):
        """The first (t_ms, job) of a report of sid matching pred."""
        return wait_for(lambda: next((x for x in job_reports(self.ctl, sid) if pred(x[1])),
                                     None), timeout, interval=0.02, what=what)

    def ended(self, sid, timeout=20):
        return self.job_where(sid, lambda j: j.get("status") in TERMINAL, sid + " ended", timeout)

    def tail(self, sid, timeout=20):
        return self.job_where(sid, lambda j: "log_tail" in j, sid + " log tail", timeout)[1]

    def test_watch_not_submitted_then_runs(self):
        sid = self.sid("watch")
        self.reply([sid])
        # Watched before the submitter ran: Ray answers 404, reported as NOT_FOUND.
        _, j = self.job_where(sid, lambda j: j.get("status") == "NOT_FOUND", "NOT_FOUND")
        self.assertIn("does not exist", j.get("message", ""))
        self.submit(sid, "sleep 1.5; echo hello from the driver")
        self.job_where(sid, lambda j: j.get("status") == "RUNNING", "RUNNING", 10)
        t_end, j = self.ended(sid, 10)
        self.assertEqual(j["status"], "SUCCEEDED")
        self.assertEqual(j.get("driver_exit_code"), 0)
        self.assertNotIn("error_type", j)
        self.assertGreater(j.get("end_time_ms", 0), j.get("start_time_ms", 0))
        statuses = [x[1].get("status") for x in job_reports(self.ctl, sid)]
        self.assertLess(statuses.index("RUNNING"), statuses.index("SUCCEEDED"))
        tail = self.tail(sid)
        self.assertTrue(tail["log_tail"].endswith("hello from the driver\n"), tail["log_tail"])
        self.assertNotIn("log_truncated", tail)
        self.assertNotIn("log_error", tail)
        # The tail goes once: reports after the acknowledged one leave it out.
        n = len(job_reports(self.ctl, sid))
        wait_for(lambda: len(job_reports(self.ctl, sid)) >= n + 3, 10, what="more reports")
        self.assertNotIn("log_tail", job_reports(self.ctl, sid)[-1][1])
        self.assertEqual(job_reports(self.ctl, sid)[-1][1]["status"], "SUCCEEDED")

    def test_never_submitted(self):
        sid = self.sid("never")
        self.reply([sid])
        self.job_where(sid, lambda j: j.get("status") == "NOT_FOUND", "NOT_FOUND")
        # Still polled, still not found: no log read, no end.
        n = len(job_reports(self.ctl, sid))
        wait_for(lambda: len(job_reports(self.ctl, sid)) >= n + 2, 10, what="more reports")
        for _, j in job_reports(self.ctl, sid):
            self.assertIn(j.get("status", ""), ("", "NOT_FOUND"))
            self.assertNotIn("log_tail", j)

    def test_failing_driver(self):
        sid = self.sid("fail")
        self.reply([sid])
        self.submit(sid, "python3 -c \"print('working'); raise ValueError('bad input 42')\"")
        _, j = self.ended(sid)
        self.assertEqual(j["status"], "FAILED")
        self.assertEqual(j.get("error_type"), "JOB_ENTRYPOINT_COMMAND_ERROR")
        self.assertEqual(j.get("driver_exit_code"), 1)
        # Known with the status already (from Ray's message), then from the log tail.
        self.assertEqual(j.get("last_error_line"), "ValueError: bad input 42")
        t = self.tail(sid)
        self.assertIn("Traceback (most recent call last)", t["log_tail"])
        self.assertEqual(t.get("last_error_line"), "ValueError: bad input 42")

    def test_large_log_tail(self):
        sid = self.sid("biglog")
        self.reply([sid])
        self.submit(sid, "python3 -c \"[print('line %06d ' % i + 'x' * 40) for i in range(5000)]; "
                         "print('LAST LINE')\"")
        self.assertEqual(self.ended(sid)[1]["status"], "SUCCEEDED")
        t = self.tail(sid)
        tail = t["log_tail"].encode()
        self.assertEqual(len(tail), 64 * 1024)
        self.assertTrue(tail.endswith(b"line 004999 " + b"x" * 40 + b"\nLAST LINE\n"))
        self.assertIs(t.get("log_truncated"), True)
        self.assertNotIn("log_error", t)

    def test_httpmode_duplicate_and_repeated_submit(self):
        dup, fresh = self.sid("dup"), self.sid("once")
        # Submitted by someone else first: the agent's POST gets Ray's 500 "Please use a
        # different submission_id", which counts as submitted; the job is then tracked.
        self.submit(dup, "sleep 1; echo first submission")
        self.reply([], submit_job={"submission_id": dup, "entrypoint": "echo second"})
        _, j = self.ended(dup)
        self.assertEqual(j["status"], "SUCCEEDED")
        self.assertTrue(self.tail(dup)["log_tail"].endswith("first submission\n"))
        # The controller repeats its submit in every reply (one per second here): one POST.
        self.reply([], submit_job={"submission_id": fresh, "entrypoint": "sleep 2; echo once"})
        self.assertEqual(self.ended(fresh)[1]["status"], "SUCCEEDED")
        log = self.ha.stderr()
        self.assertEqual(log.count("job %s was already submitted" % dup), 1, log)
        self.assertEqual(log.count("job %s submitted" % dup), 0)
        self.assertEqual(log.count("job %s submitted" % fresh), 1, log)
        last = [e["report"] for e in events(self.ctl, "report")][-1]
        self.assertNotIn("job_action_error", last)
        self.reply([])

    def test_zz_end_to_report_latency(self):
        """Driver exit -> the controller's first report of the end, over 20 jobs that
        end at spread-out moments (printed; the job status period is 1 s)."""
        sids = [self.sid("lat%02d" % i) for i in range(20)]
        self.reply(sids)
        for i, sid in enumerate(sids):
            mark = os.path.join(self.tmp, sid + ".exit")
            self.submit(sid, "sleep %.3f; date +%%s%%N > %s" % (0.5 + random.random() * 2.5, mark))
        lat, ray = [], []
        for sid in sids:
            t_ms, j = self.ended(sid, 30)
            self.assertEqual(j["status"], "SUCCEEDED")
            with open(os.path.join(self.tmp, sid + ".exit")) as f:
                exit_ms = int(f.read().strip()) / 1e6
            lat.append(t_ms - exit_ms)
            ray.append(t_ms - j["end_time_ms"])

        def dist(v):
            v = sorted(v)
            return "min %.0f, p50 %.0f, p90 %.0f, max %.0f, mean %.0f" % (
                v[0], v[len(v) // 2], v[int(len(v) * 0.9)], v[-1], sum(v) / len(v))
        print("\njob end -> report over %d jobs (ms): driver exit -> report: %s; Ray's "
              "end_time -> report: %s" % (len(lat), dist(lat), dist(ray)))
        self.assertIsNone(self.ha.p.poll())


if __name__ == "__main__":
    unittest.main()

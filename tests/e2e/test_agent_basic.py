"""End-to-end tests of the real raywarden-agent binary against a tiny fake
Ray node and the rw-fakectl controller peer (all on one 127.x.y.z)."""

import hashlib
import hmac
import http.client
import json
import os
import shutil
import tempfile
import time
import unittest

from agentlib import (AGENT, FAKECTL, FakeRay, Proc, events, agent_get, metric, pick_ip,
                      set_reply, start_agent, start_fakectl, wait_for, write_key)
from kubesim.testutil import mapped_libraries  # noqa: E402 (tests/sim: agentlib puts it on sys.path)


def ready(ip):
    return agent_get(ip, 8477, "/readyz")


# libcurl and the heavy part of its dependency tree: loaded only by a request that needs it.
CURL_TREE = ("libcurl", "libssl", "libcrypto.so", "libgnutls", "libkrb5", "libldap",
             "libnghttp2", "libssh")


def curl_tree(pid):
    return [lib for lib in mapped_libraries(pid) if lib.startswith(CURL_TREE)]


# Fast polling for the cases that count probes or test polling-only states.
FAST = {"probe_interval_ms": 250, "proxy_interval_ms": 250, "probe_timeout_ms": 200}


class AgentCase(unittest.TestCase):
    def setUp(self):
        if not (os.path.exists(AGENT) and os.path.exists(FAKECTL)):
            self.skipTest("agent binaries not built")
        self.tmp = tempfile.mkdtemp(prefix="rw-agent-e2e-")
        self.ip = pick_ip()
        self.ray = FakeRay(self.ip)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.stop()
        self.ray.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def agent(self, **env):
        p = start_agent(self.ip, self.tmp, **env)
        self.procs.append(p)
        return p

    def ctl(self, key, **kw):
        p = start_fakectl(self.ip, self.tmp, key, **kw)
        self.procs.append(p)
        return p

    def wait_ready(self, code, has=None, timeout=5.0):
        def check():
            c, body = ready(self.ip)
            return c == code and (has is None or has in body) and (c, body)
        return wait_for(check, timeout, what="/readyz %s %s" % (code, has))


class TestReadiness(AgentCase):
    def test_worker_raylet_flips(self):
        # Defaults: a 503 is only seen by polling (2 s); a dead process at once.
        a = self.agent()
        self.wait_ready(200, "ok")
        t0 = time.monotonic()
        self.ray.set("raylet", "fail")
        self.wait_ready(503, "Local Raylet failed")
        detect = time.monotonic() - t0
        self.assertLess(detect, 2.5, "503 from the raylet noticed in %.3fs" % detect)
        self.ray.set("raylet", "ok")
        self.wait_ready(200)
        time.sleep(0.1)  # let the good probe's connection go idle (watched)
        t0 = time.monotonic()
        self.ray.set("raylet", "down")
        self.wait_ready(503, "raylet down: connection refused")
        detect = time.monotonic() - t0
        self.assertLess(detect, 0.3, "dead raylet noticed in %.3fs" % detect)
        self.assertGreaterEqual(metric(self.ip, "raywarden_agent_probe_hangups_total",
                                       '{component="raylet"}') or 0, 1)
        self.ray.set("raylet", "ok")
        self.wait_ready(200)
        # Liveness stays up: a short outage is far inside the grace period.
        self.assertEqual(agent_get(self.ip, 8477, "/livez")[0], 200)
        self.assertEqual(a.p.poll(), None)

    def test_rayservice_worker_proxy_states(self):
        self.agent(rayservice="true")
        self.wait_ready(200)
        for mode, text in (("draining", "proxy draining: This node is being drained."),
                           ("starting", "proxy starting: Route table is not populated yet."),
                           ("noreplicas", "No replicas are available yet."),
                           ("down", "proxy absent: connection refused")):
            self.ray.set("proxy", mode)
            self.wait_ready(503, text)
            self.ray.set("proxy", "ok")
            self.wait_ready(200)

    def test_proxy_ignore_mode(self):
        self.ray.set("proxy", "down")
        self.agent(rayservice="true", proxy_readiness="ignore")
        self.wait_ready(200, "ok")
        code, body = agent_get(self.ip, 8477, "/status")
        self.assertEqual(code, 200)
        self.assertIn('"proxy":{"state":"absent"', body)

    def test_libcurl_probes_fallback(self):
        # LIGHT_PROBES=false: the health probes go through libcurl, loaded by the first one.
        a = self.agent(light_probes="false", **FAST)
        self.wait_ready(200, "ok")
        self.ray.set("raylet", "fail")
        self.wait_ready(503)
        self.ray.set("raylet", "ok")
        self.wait_ready(200)
        self.assertTrue(any(lib.startswith("libcurl") for lib in curl_tree(a.p.pid)))
        self.assertIn("libcurl loaded", a.stderr())
        self.assertGreater(metric(self.ip, "raywarden_agent_probe_connections_total"), 0)
        self.assertEqual(a.stop(), 0)

    def test_plain_worker_without_proxy_ready(self):
        self.ray.set("proxy", "down")
        self.agent()
        self.wait_ready(200, "ok")

    def test_head_needs_gcs(self):
        self.agent(node_type="head")
        self.wait_ready(200)
        self.ray.set("gcs", "fail")
        self.wait_ready(503, "gcs unhealthy: 503: Health check failed")
        self.ray.set("gcs", "slow")
        self.wait_ready(503, "gcs not answering")
        self.ray.set("gcs", "ok")
        self.wait_ready(200)
        # The head's proxy is probed and reported but never gates readiness.
        self.ray.set("proxy", "down")
        time.sleep(0.6)  # several probe periods: readiness must not move
        self.assertEqual(ready(self.ip)[0], 200)

    def test_bad_answers_stay_bounded(self):
        a = self.agent()
        self.wait_ready(200)
        for mode, text in (("garbage", "raylet bad answer"),
                           ("huge", "larger than the body limit"),
                           ("slow", "raylet not answering")):
            self.ray.set("raylet", mode)
            self.wait_ready(503, text)
            self.ray.set("raylet", "ok")
            self.wait_ready(200)
        self.assertIsNone(a.p.poll())
        rss = metric(self.ip, "process_resident_memory_bytes")
        self.assertIsNotNone(rss)
        self.assertLess(rss, 64 * 1024 * 1024)

    def test_keepalive_close_costs_one_probe(self):
        # A server closing an idle keep-alive connection (uvicorn's 5 s
        # keep-alive timeout) costs one extra probe, no state change.
        a = self.agent()
        self.wait_ready(200)
        time.sleep(0.2)
        lbl = '{component="raylet",result="ok"}'
        n0 = metric(self.ip, "raywarden_agent_probes_total", lbl)
        h0 = metric(self.ip, "raywarden_agent_probe_hangups_total", '{component="raylet"}')
        self.ray.drop_connections(52365)
        wait_for(lambda: metric(self.ip, "raywarden_agent_probes_total", lbl) == n0 + 1,
                 1.0, what="one extra raylet probe")
        self.assertEqual(metric(self.ip, "raywarden_agent_probe_hangups_total",
                                '{component="raylet"}'), h0 + 1)
        time.sleep(0.3)  # well inside the 2 s period: no further probe
        self.assertEqual(metric(self.ip, "raywarden_agent_probes_total", lbl), n0 + 1)
        self.assertEqual(ready(self.ip)[0], 200)
        self.assertNotIn("raylet ok ->", a.stderr())

    def test_logs_once_per_change(self):
        a = self.agent(**FAST)
        self.wait_ready(200)
        self.ray.set("raylet", "down")
        self.wait_ready(503)
        n0 = metric(self.ip, "raywarden_agent_probes_total",
                    '{component="raylet",result="refused"}') or 0
        wait_for(lambda: (metric(self.ip, "raywarden_agent_probes_total",
                                 '{component="raylet",result="refused"}') or 0) >= n0 + 6,
                 what="six more refused probes")
        self.ray.set("raylet", "ok")
        self.wait_ready(200)
        log = a.stderr()
        self.assertEqual(log.count("raylet ok -> refused"), 1, log)
        self.assertEqual(log.count("raylet refused -> ok"), 1, log)

    def test_keepalive_reuses_connections(self):
        self.agent(**FAST)
        self.wait_ready(200)
        wait_for(lambda: (metric(self.ip, "raywarden_agent_probe_duration_seconds_count",
                                 '{component="raylet"}') or 0) >= 12, what="12 probes")
        conns = metric(self.ip, "raywarden_agent_probe_connections_total")
        self.assertLessEqual(conns, 3)
        # The health probes' own client does not count in that metric: count at the server.
        with self.ray.lock:
            accepted = self.ray.accepted.get(52365, 0)
        self.assertGreaterEqual(accepted, 1)
        self.assertLessEqual(accepted, 2)


class TestProcess(unittest.TestCase):
    def test_help_and_bad_config(self):
        if not os.path.exists(AGENT):
            self.skipTest("agent not built")
        tmp = tempfile.mkdtemp()
        try:
            p = Proc([AGENT, "--help"], tmp=tmp, name="help")
            p.p.wait(10)
            self.assertEqual(p.stop(), 0)
            self.assertIn("RAYWARDEN_PROBE_INTERVAL_MS", p.stdout())
            for argv, text in (([AGENT, "--port=8000"], "collides"),
                               ([AGENT, "--probe-timeout-ms=2000"], "shorter"),
                               ([AGENT, "--controller=tcp://127.0.0.1:1"], "KEY_FILE"),
                               ([AGENT, "--node-type=boss"], "head|worker")):
                q = Proc(argv, tmp=tmp, name="bad")
                try:
                    q.p.wait(10)
                finally:
                    # An agent that starts after all must not outlive the test
                    # (it would hold 0.0.0.0:8477 for every later test).
                    rc = q.stop()
                self.assertEqual(rc, 2, argv)
                self.assertIn(text, q.stderr())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_sigterm_exit_zero(self):
        if not os.path.exists(AGENT):
            self.skipTest("agent not built")
        ip = pick_ip()
        tmp = tempfile.mkdtemp()
        try:
            a = start_agent(ip, tmp)
            self.assertEqual(a.stop(15), 0)
            self.assertIn("shutting down", a.stderr())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def serve_api(report):
    return ((report.get("serve") or {}).get("api") or {}).get("state")


def serve_apps(report):
    return [app.get("name") for app in (report.get("serve") or {}).get("apps") or []]


class TestReports(AgentCase):
    def test_reports_and_actions(self):
        key = write_key(self.tmp)
        ctl = self.ctl(key)
        a = self.agent(node_type="head", controller="tcp://%s:8478" % self.ip, key_file=key,
                       heartbeat_ms=1000, serve_status_interval_ms=300, **FAST)
        self.wait_ready(200)
        reports = wait_for(lambda: [e for e in events(ctl, "report")
                                    if e["report"].get("ready")], what="a ready report")
        r = reports[-1]["report"]
        self.assertEqual(r["pod"], "pod-" + self.ip)
        self.assertEqual(r["namespace"], "e2e")
        self.assertEqual(r["node_type"], "head")
        self.assertEqual(r["probes"]["raylet"]["state"], "ok")
        self.assertEqual(r["probes"]["gcs"]["state"], "ok")

        # A change is reported at once, well before the next heartbeat.
        n = len(events(ctl, "report"))
        t0 = time.monotonic()
        self.ray.set("gcs", "fail")
        wait_for(lambda: any(e["report"]["probes"]["gcs"]["state"] == "fail"
                             for e in events(ctl, "report")[n:]), what="gcs fail report")
        self.assertLess(time.monotonic() - t0, 0.9)
        self.ray.set("gcs", "ok")
        self.wait_ready(200)

        # Drain from the controller forces NotReady; lifting it restores Ready.
        set_reply(ctl, {"drain": True})
        self.wait_ready(503, "draining: requested by the controller")
        set_reply(ctl, {"drain": False})
        self.wait_ready(200)

        # A plain RayCluster head does not read its Serve applications (no
        # one acts on them) until a serve config arrives, and maps no libcurl.
        self.assertEqual(serve_api(r), "disabled")
        self.assertEqual(self.ray.seen("GET", "/api/serve/applications/"), [])
        self.assertEqual(curl_tree(a.p.pid), [])
        self.assertNotIn("libcurl loaded", a.stderr())

        # Serve config: PUT once per hash, outcome reported.
        cfg = {"applications": [{"name": "fruit_app", "route_prefix": "/fruit",
                                 "import_path": "fruit.deployment_graph"}]}
        cfg = json.dumps(cfg)
        set_reply(ctl, {"serve_config_hash": "h1", "serve_config": cfg})
        wait_for(lambda: self.ray.seen("PUT", "/api/serve/applications/"), what="PUT")
        wait_for(lambda: any(e["report"].get("serve_apply_state") == "applied" and
                             e["report"].get("serve_config_hash") == "h1"
                             for e in events(ctl, "report")), what="applied report")
        wait_for(lambda: any(any(app.get("name") == "fruit_app"
                                 for app in (e["report"].get("serve", {}) or {})
                                 .get("applications", []) or [])
                             or "fruit_app" in str(e["report"])
                             for e in events(ctl, "report")), what="app in a report")
        put_body = self.ray.seen("PUT", "/api/serve/applications/")[0][2]
        self.assertIn(b"fruit.deployment_graph", put_body)
        # The requests above loaded libcurl (it is not linked into the agent).
        self.assertTrue(any(lib.startswith("libcurl") for lib in curl_tree(a.p.pid)))
        self.assertIn("libcurl loaded", a.stderr())
        time.sleep(1.2)  # more replies with the same hash: no second PUT
        self.assertEqual(len(self.ray.seen("PUT", "/api/serve/applications/")), 1)

        # Job submit through the dashboard, status tracked and reported.
        set_reply(ctl, {"serve_config_hash": "h1", "serve_config": cfg,
                        "submit_job": {"submission_id": "rayjob-x-abcde",
                                   "entrypoint": "python /home/ray/samples/sample_code.py",
                                   "runtime_env_json": json.dumps({"pip": ["emoji"]}),
                                   "entrypoint_num_cpus": 1}})
        wait_for(lambda: self.ray.seen("POST", "/api/jobs/"), what="job POST")
        wait_for(lambda: any("RUNNING" in str(e["report"].get("jobs"))
                             for e in events(ctl, "report")), what="job RUNNING report")
        self.assertEqual(len(self.ray.seen("POST", "/api/jobs/")), 1)
        set_reply(ctl, {"serve_config_hash": "h1", "serve_config": cfg,
                        "stop_job": "rayjob-x-abcde"})
        wait_for(lambda: self.ray.seen("POST", "/api/jobs/rayjob-x-abcde/stop"),
                 what="job stop")
        wait_for(lambda: any("STOPPED" in str(e["report"].get("jobs"))
                             for e in events(ctl, "report")), what="job STOPPED report")

        self.assertGreater(metric(self.ip, "raywarden_agent_reports_acked_total"), 3)
        self.assertEqual(metric(self.ip, "raywarden_agent_controller_connected"), 1)
        with open(key) as f:
            secret = f.read().strip()
        self.assertNotIn(secret, a.stderr())
        # Clean shutdown with serve, jobs and the reporter active (leak-checked under ASan).
        self.assertEqual(a.stop(), 0)
        self.assertIn("stopped", a.stderr())

    def test_head_serve_read_without_libcurl(self):
        # A RayService head's Serve applications read, over the agent's own
        # keep-alive client: Content-Length and chunked answers, one past 1 MiB (the
        # buffer grows), one past the 4 MiB cap (an error, then recovery),
        # all without mapping libcurl and on one kept connection while the
        # server keeps it.
        key = write_key(self.tmp)
        ctl = self.ctl(key)
        self.ray.apps["first"] = "RUNNING"
        a = self.agent(node_type="head", rayservice="true",
                       controller="tcp://%s:8478" % self.ip, key_file=key,
                       heartbeat_ms=300, serve_status_interval_ms=300, **FAST)
        self.wait_ready(200)

        def reported(name, state="ok"):
            def check():
                return any(serve_api(e["report"]) == state and
                           (name is None or name in serve_apps(e["report"]))
                           for e in events(ctl, "report"))
            return check
        wait_for(reported("first"), what="first app reported")
        accepted = self.ray.accepted.get(8265, 0)
        reads = len(self.ray.seen("GET", "/api/serve/applications/"))
        wait_for(lambda: len(self.ray.seen("GET", "/api/serve/applications/")) >= reads + 5,
                 what="five more serve reads")
        # Kept alive: the GCS probe's connection and the Serve read's, no new ones.
        self.assertEqual(self.ray.accepted.get(8265, 0), accepted)

        self.ray.serve_answer("chunked")
        self.ray.apps["chunked"] = "RUNNING"
        wait_for(reported("chunked"), what="app from a chunked answer reported")

        self.ray.serve_answer("large")
        self.ray.apps["large"] = "RUNNING"
        wait_for(reported("large"), what="app from a 1 MiB answer reported")

        self.ray.serve_answer("huge")
        wait_for(lambda: any(serve_api(e["report"]) == "error" and
                             "body limit" in e["report"]["serve"]["api"].get("reason", "")
                             for e in events(ctl, "report")),
                 what="a serve read past 4 MiB reported as an error")
        self.ray.serve_answer("ok")
        self.ray.apps["after"] = "RUNNING"
        n = len(events(ctl, "report"))
        wait_for(lambda: any(serve_api(e["report"]) == "ok" and
                             "after" in serve_apps(e["report"])
                             for e in events(ctl, "report")[n:]), what="recovered after huge")
        self.assertEqual(ready(self.ip)[0], 200)
        self.assertEqual(curl_tree(a.p.pid), [])
        self.assertNotIn("libcurl", a.stderr())
        self.assertEqual(metric(self.ip, "raywarden_agent_probe_connections_total"), 0)
        self.assertEqual(a.stop(), 0)

    def test_serve_read_through_libcurl_fallback(self):
        # LIGHT_PROBES=false: the Serve read goes through libcurl as before.
        key = write_key(self.tmp)
        ctl = self.ctl(key)
        self.ray.apps["first"] = "RUNNING"
        a = self.agent(node_type="head", rayservice="true",
                       controller="tcp://%s:8478" % self.ip, key_file=key,
                       heartbeat_ms=300, serve_status_interval_ms=300, light_probes="false",
                       **FAST)
        self.ray.serve_answer("chunked")
        wait_for(lambda: any(serve_api(e["report"]) == "ok" and
                             "first" in serve_apps(e["report"])
                             for e in events(ctl, "report")), what="first app reported")
        self.assertTrue(any(lib.startswith("libcurl") for lib in curl_tree(a.p.pid)))
        self.assertEqual(a.stop(), 0)

    def test_worker_without_libcurl(self):
        # A worker agent probes, answers the kubelet and reports without ever
        # mapping libcurl or its TLS libraries.
        key = write_key(self.tmp)
        ctl = self.ctl(key)
        a = self.agent(rayservice="true", controller="tcp://%s:8478" % self.ip, key_file=key,
                       heartbeat_ms=300, **FAST)
        self.wait_ready(200)
        wait_for(lambda: len([e for e in events(ctl, "report")
                              if e["report"].get("ready")]) >= 3, what="three ready reports")
        self.ray.set("raylet", "fail")
        self.wait_ready(503)
        wait_for(lambda: any(e["report"]["probes"]["raylet"]["state"] == "fail"
                             for e in events(ctl, "report")), what="raylet fail report")
        self.ray.set("raylet", "ok")
        self.wait_ready(200)
        self.assertEqual(curl_tree(a.p.pid), [])
        self.assertNotIn("libcurl", a.stderr())
        self.assertEqual(metric(self.ip, "raywarden_agent_probe_connections_total"), 0)
        self.assertEqual(a.stop(), 0)

    def test_actions_fail_clearly_without_libcurl(self):
        # libcurl cannot be loaded: the Serve config fails with a reason that
        # says so, in the report and the log; probes and readiness carry on.
        key = write_key(self.tmp)
        ctl = self.ctl(key)
        a = self.agent(node_type="head", controller="tcp://%s:8478" % self.ip, key_file=key,
                       heartbeat_ms=300, serve_status_interval_ms=300,
                       libcurl="librw-no-such-curl.so.0", **FAST)
        self.wait_ready(200)
        cfg = json.dumps({"applications": [{"name": "a", "import_path": "m.app"}]})
        set_reply(ctl, {"serve_config_hash": "h1", "serve_config": cfg})

        def failed():
            return any(e["report"].get("serve_apply_state") == "failed" and
                       "libcurl could not be loaded" in e["report"].get("serve_apply_error", "")
                       for e in events(ctl, "report"))
        wait_for(failed, what="a failed serve apply report naming libcurl")
        self.assertEqual(self.ray.seen("PUT", "/api/serve/applications/"), [])
        self.assertIn("cannot load librw-no-such-curl.so.0", a.stderr())
        self.assertEqual(ready(self.ip)[0], 200)
        self.assertEqual(curl_tree(a.p.pid), [])
        self.assertEqual(a.stop(), 0)

    def test_wrong_key_refused_both_ways(self):
        k1 = write_key(self.tmp, "k1")
        k2 = write_key(self.tmp, "k2")
        ctl = self.ctl(k2, reply={"drain": True})
        a = self.agent(controller="tcp://%s:8478" % self.ip, key_file=k1, heartbeat_ms=300)
        self.wait_ready(200)
        wait_for(lambda: len(events(ctl, "refused")) >= 2, what="controller refusals")
        self.assertTrue(all(e["reason"] == "key" for e in events(ctl, "refused")))
        self.assertEqual(events(ctl, "report"), [])
        wait_for(lambda: (metric(self.ip, "raywarden_agent_replies_refused_total",
                                 '{reason="key"}') or 0) >= 2, what="agent refusals")
        # The forged drain was not acted on.
        self.assertEqual(ready(self.ip)[0], 200)
        self.assertEqual(metric(self.ip, "raywarden_agent_reports_acked_total"), 0)
        for path in (k1, k2):
            with open(path) as f:
                self.assertNotIn(f.read().strip(), a.stderr() + ctl.stdout())
        self.assertIn("refused a reply from the controller: key", a.stderr())

    def test_forged_replies_counted(self):
        key = write_key(self.tmp)
        for forge, reason in (("seq", "seq"), ("session", "session"),
                              ("garbage", "malformed"), ("version", "version"),
                              ("type", "type")):
            ctl = self.ctl(key, reply={"drain": True}, forge=forge)
            a = start_agent(self.ip, self.tmp, controller="tcp://%s:8478" % self.ip,
                            key_file=key, heartbeat_ms=200)
            try:
                wait_for(lambda: (metric(self.ip, "raywarden_agent_replies_refused_total",
                                         '{reason="%s"}' % reason) or 0) >= 1,
                         what="refusal %s" % forge)
                self.assertEqual(metric(self.ip, "raywarden_agent_draining"), 0)
            finally:
                self.assertEqual(a.stop(), 0)
                ctl.stop()
                self.procs.remove(ctl)

    def test_controller_down_then_up(self):
        key = write_key(self.tmp)
        self.agent(controller="tcp://%s:8478" % self.ip, key_file=key, heartbeat_ms=500,
                   reconnect_min_ms=50, reconnect_max_ms=200)
        # No controller: local readiness is unaffected.
        self.wait_ready(200)
        self.ray.set("raylet", "fail")
        self.wait_ready(503)
        self.ray.set("raylet", "ok")
        self.wait_ready(200)
        self.assertEqual(metric(self.ip, "raywarden_agent_controller_connected"), 0)
        ctl = self.ctl(key)
        wait_for(lambda: events(ctl, "report"), what="first report after the controller came up")
        wait_for(lambda: metric(self.ip, "raywarden_agent_controller_connected") == 1,
                 what="connected gauge")
        # Controller goes away again: readiness keeps working.
        ctl.stop()
        self.procs.remove(ctl)
        self.ray.set("raylet", "fail")
        self.wait_ready(503)
        ctl2 = self.ctl(key)
        wait_for(lambda: any(not e["report"]["ready"] for e in events(ctl2, "report")),
                 what="report after reconnect")


def drain_token(key_path):
    """hex HMAC-SHA256(cluster key, "raywarden/v1/drain"): what the controller puts into the
    preStop hook (computed here independently of the C code)."""
    with open(key_path, "rb") as f:
        key = f.read().rstrip(b"\n")
    return hmac.new(key, b"raywarden/v1/drain", hashlib.sha256).hexdigest()


def get(ip, path, headers=None):
    c = http.client.HTTPConnection(ip, 8477, timeout=5)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode(), dict(r.getheaders())
    finally:
        c.close()


def swap_key(keydir, text):
    """Replace a Secret-volume-like key directory's content as the kubelet does: a new
    payload directory, then ..data renamed over by a new symlink."""
    new = os.path.join(keydir, "..%d" % time.monotonic_ns())
    os.mkdir(new)
    with open(os.path.join(new, "key"), "w") as f:
        f.write(text)
    tmp = os.path.join(keydir, "..data_tmp")
    os.symlink(os.path.basename(new), tmp)
    os.rename(tmp, os.path.join(keydir, "..data"))


class TestDrainAuth(AgentCase):
    def refused(self, reason):
        return metric(self.ip, "raywarden_agent_drain_refused_total", '{reason="%s"}' % reason)

    def test_drain_needs_the_token(self):
        key = write_key(self.tmp)
        self.agent(key_file=key)
        self.wait_ready(200)
        transitions = metric(self.ip, "raywarden_agent_ready_transitions_total")
        code, body, hdrs = get(self.ip, "/drain?seconds=0")
        self.assertEqual(code, 401, body)
        self.assertIn("Bearer", hdrs.get("WWW-Authenticate", ""))
        other = write_key(self.tmp, "other")
        tok = drain_token(key)
        for auth in ("Bearer " + drain_token(other), "Bearer " + tok[:-1] + ("1" if tok[-1] == "0" else "0"),
                     "Basic " + tok, tok):
            code, body, _ = get(self.ip, "/drain?seconds=0", {"Authorization": auth})
            self.assertEqual(code, 403, (auth[:12], body))
        # Nothing changed but the refusal counters.
        self.assertEqual(ready(self.ip)[0], 200)
        self.assertEqual(metric(self.ip, "raywarden_agent_draining"), 0)
        self.assertEqual(metric(self.ip, "raywarden_agent_ready_transitions_total"), transitions)
        self.assertEqual(self.refused("unauthenticated"), 1)
        self.assertEqual(self.refused("forbidden"), 4)
        # The token of the key file drains at once.
        code, body, _ = get(self.ip, "/drain?seconds=0", {"Authorization": "Bearer " + drain_token(key)})
        self.assertEqual((code, body), (200, "drained for 0s\n"))
        self.assertEqual(ready(self.ip)[0], 503)
        self.assertEqual(metric(self.ip, "raywarden_agent_draining"), 1)

    def test_no_key_no_drain(self):
        self.agent()
        self.wait_ready(200)
        code, body, _ = get(self.ip, "/drain?seconds=0", {"Authorization": "Bearer " + "0" * 64})
        self.assertEqual(code, 403, body)
        self.assertEqual(self.refused("no_key"), 1)
        self.assertEqual(ready(self.ip)[0], 200)

    def test_key_file_swap_reloads(self):
        """The key directory is swapped like a Secret volume: the agent re-reads it without a
        restart, seals its reports with the new key, and accepts the drain tokens of both
        the start-up key (the pod spec's hook) and the new one."""
        keydir = os.path.join(self.tmp, "keyvol")
        os.mkdir(keydir)
        k1 = write_key(self.tmp, "k1")
        k2 = write_key(self.tmp, "k2")
        with open(k1) as f:
            swap_key(keydir, f.read())
        os.symlink("..data/key", os.path.join(keydir, "key"))
        ctl = self.ctl(k1)
        a = self.agent(controller="tcp://%s:8478" % self.ip, key_file=os.path.join(keydir, "key"),
                       heartbeat_ms=300)
        wait_for(lambda: (metric(self.ip, "raywarden_agent_reports_acked_total") or 0) >= 1, what="acked with k1")
        ctl.stop()
        self.procs.remove(ctl)
        ctl = self.ctl(k2)
        with open(k2) as f:
            swap_key(keydir, f.read())
        wait_for(lambda: metric(self.ip, "raywarden_agent_key_reloads_total", '{result="ok"}') == 1,
                 what="key reloaded")
        acked = metric(self.ip, "raywarden_agent_reports_acked_total")
        wait_for(lambda: metric(self.ip, "raywarden_agent_reports_acked_total") > acked, what="acked with k2")
        self.assertTrue(events(ctl, "report"))
        self.assertEqual(a.p.poll(), None)  # same process
        for k in (k1, k2):
            code, body, _ = get(self.ip, "/drain?seconds=0", {"Authorization": "Bearer " + drain_token(k)})
            self.assertEqual(code, 200, body)
        self.assertIsNone(self.refused("forbidden") or None)
        # A broken key file keeps the key in use.
        swap_key(keydir, "short")
        wait_for(lambda: metric(self.ip, "raywarden_agent_key_reloads_total", '{result="failed"}') == 1,
                 what="bad key refused")
        acked = metric(self.ip, "raywarden_agent_reports_acked_total")
        wait_for(lambda: metric(self.ip, "raywarden_agent_reports_acked_total") > acked, what="still acked")
        with open(k2) as f:
            self.assertNotIn(f.read().strip(), a.stderr())


if __name__ == "__main__":
    unittest.main()

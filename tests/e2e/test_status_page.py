"""End to end: the controller's status page (docs/observability.md, "The status page") in headless
Chromium, driven over the W3C WebDriver protocol (webdriver.py). A local cluster runs a RayService
(one of its applications has a hostile name), a RayCluster and a RayJob; the page must show what
the API says (names, pod counts, readiness, the RayService's active cluster), render the hostile
name as text, and show a serve proxy killed in one Ray pod within 2 s. /status.json answers 304
to its own ETag. The screenshot goes to $RW_BUILD_DIR/status-page.png (to docs/status-page.png
with RW_UPDATE_SCREENSHOT=1). Skipped when Chromium or chromedriver is missing."""

import json
import os
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import webdriver
from clusterlib import BUILD, CONTROLLER_BIN, SAMPLES, SRC, LocalClusterCase, free_port, pod_ready, wait_for
from kubesim.realcp import host_ip
from rslib import active_cluster, rs_status, wait_rs_ready

NS = "default"
RS = "rayservice-mini"
RC = "raycluster-mini"
RJ = "rayjob-mini"
HOSTILE = '<img src=x onerror="window.__xss=1">'

# The page's own view of a row, read from the DOM (textContent only).
READ_PAGE = """
function rows(id) {
  return Array.from(document.querySelectorAll('#' + id + ' [data-name]')).map(function (tr) {
    return {name: tr.dataset.name, cells: Array.from(tr.children).map(function (c) { return c.textContent; }),
            comps: Array.from(tr.querySelectorAll('[data-comp]')).map(function (c) {
              return [c.dataset.comp, c.dataset.state]; }),
            apps: Array.from(tr.querySelectorAll('[data-app]')).map(function (c) { return c.dataset.app; })};
  });
}
return {gen: document.body.dataset.generation || null, clusters: rows('clusters'), services: rows('services'),
        jobs: rows('jobs'), pods: rows('pods'), events: document.querySelectorAll('#events tr[data-at]').length,
        imgs: document.querySelectorAll('img').length, xss: window.__xss || null};
"""


def hostile_rayservice():
    """The mini RayService with a second application whose name is markup."""
    with open(os.path.join(SAMPLES, "ray-service.mini.yaml")) as f:
        text = f.read()
    extra = ("      - name: '%s'\n"
             "        import_path: ray-operator.config.samples.ray-serve.single_deployment_dag:DagNode\n"
             "        route_prefix: /x\n"
             "        deployments:\n"
             "          - name: BaseService\n"
             "            num_replicas: 1\n"
             "            ray_actor_options:\n"
             "              num_cpus: 0.1\n") % HOSTILE
    marker = "  rayClusterConfig:\n"
    assert marker in text
    return text.replace(marker, extra + marker, 1)


class StatusPage(LocalClusterCase):
    @classmethod
    def prerequisites(cls):
        return webdriver.missing() or super().prerequisites()

    @classmethod
    def setUpCluster(cls):
        lc = cls.lc
        cls.t0 = time.monotonic()
        lc.apply(hostile_rayservice())
        lc.apply(os.path.join(SAMPLES, "ray-cluster.mini.yaml"))
        lc.apply(os.path.join(SAMPLES, "ray-job.mini.yaml"))
        cls.base = lc.controller()["metrics_url"].rsplit("/metrics", 1)[0]
        cls.browser = webdriver.Browser.start()

    @classmethod
    def tearDownClass(cls):
        b = getattr(cls, "browser", None)
        if b:
            b.close()
        super().tearDownClass()

    def page(self):
        return self.browser.run(READ_PAGE)

    def api_pods(self, cluster):
        return {p["metadata"]["name"]: pod_ready(p) for p in self.lc.pods(NS, cluster)}

    def test_1_page_matches_api(self):
        lc, b = self.lc, self.browser
        st = wait_rs_ready(lc, NS, RS, timeout=120)
        active = st["activeServiceStatus"]["rayClusterName"]
        b.get(self.base + "/")
        self.assertEqual(b.run("return document.title"), "raywarden status")

        def consistent():
            page = self.page()
            svc = [r for r in page["services"] if r["name"] == RS]
            if not svc or active not in svc[0]["cells"]:
                return None
            api = self.api_pods(active)
            shown = {r["name"]: r for r in page["pods"] if r["name"] in api or r["cells"][1] == active}
            if set(shown) != set(api):
                return None
            for name, ready in api.items():
                if shown[name]["cells"][4] != ("Ready" if ready else "not ready"):
                    return None
            cl = [r for r in page["clusters"] if r["name"] == active]
            if not cl or cl[0]["cells"][3] != "%d/%d" % (sum(api.values()), len(api)):
                return None
            return page, svc[0], api
        page, svc, api = wait_for(consistent, 30, 0.2, "the page agrees with the API")
        print("status page: RayService %s active %s, %d pods (%d ready) as the API says" %
              (RS, active, len(api), sum(api.values())))
        # The hostile application name is text: no element made of it, no script run.
        self.assertIn(HOSTILE, svc["apps"])
        self.assertEqual(page["imgs"], 0)
        self.assertIsNone(page["xss"])
        # The RayCluster and RayJob are listed with what the API says.
        wait_for(lambda: any(r["name"] == RC for r in self.page()["clusters"]), 30, 0.2, "RayCluster on the page")

        def job_agrees():
            api = (lc.get("/apis/ray.io/v1/namespaces/%s/rayjobs/%s" % (NS, RJ)).get("status") or {})
            rows = [r for r in self.page()["jobs"] if r["name"] == RJ]
            return rows and api.get("jobDeploymentStatus") and rows[0]["cells"][2] == api["jobDeploymentStatus"]
        wait_for(job_agrees, 30, 0.2, "RayJob deployment status as the API's")
        # Components as the agents report them: the head's raylet and GCS are ok.
        heads = [r for r in page["pods"] if r["cells"][1] == active and r["cells"][2] == "head"]
        self.assertEqual(len(heads), 1)
        self.assertIn(["gcs", "ok"], heads[0]["comps"])
        self.assertIn(["raylet", "ok"], heads[0]["comps"])

    def test_2_proxy_kill_within_2s(self):
        lc, b = self.lc, self.browser
        active = active_cluster(lc, NS, RS)
        victims = [p for p in lc.pods(NS, active, "worker") if pod_ready(p)]
        self.assertTrue(victims, "a ready worker with a serve proxy")
        victim = victims[0]
        name = victim["metadata"]["name"]
        wait_for(lambda: ["proxy", "ok"] in [r for r in self.page()["pods"] if r["name"] == name][0]["comps"],
                 30, 0.2, "the victim's proxy ok on the page")
        lc.raysim_fault(host_ip(victim["status"]["podIP"]), "proxy", "kill")
        t0 = time.monotonic()
        # Polled in the page itself every 20 ms: the figure is the page's, not this loop's.
        seen = b.run_async("""
var name = arguments[0], done = arguments[arguments.length - 1], t0 = performance.now();
(function check() {
  var tr = document.querySelector('#pods [data-name="' + CSS.escape(name) + '"]');
  var c = tr && tr.querySelector('[data-comp="proxy"]');
  if (c && c.dataset.state !== 'ok') return done({state: c.dataset.state, agent: tr.querySelector('.agent').textContent});
  if (performance.now() - t0 > 10000) return done(null);
  setTimeout(check, 20);
})();""", name, timeout=15)
        took = time.monotonic() - t0
        print("status page: serve proxy killed in %s -> page shows proxy %s (agent %s) after %.2f s" %
              (name, seen and seen["state"], seen and seen["agent"], took))
        self.assertIsNotNone(seen, "the page never showed the killed proxy")
        self.assertLess(took, 2.0)
        # The readiness timeline records the pod going not ready.
        wait_for(lambda: b.run("""
var tr = document.querySelector('#pods [data-name="' + CSS.escape(arguments[0]) + '"]');
return tr && tr.querySelector('.tl span:last-child.n') !== null;""", name), 10, 0.1, "a not-ready transition")
        wait_for(lambda: self.page()["events"] > 0, 10, 0.2, "Events on the page")
        out = os.path.join(BUILD, "status-page.png")
        b.screenshot(out)
        if os.environ.get("RW_UPDATE_SCREENSHOT") == "1":
            b.screenshot(os.path.join(SRC, "docs", "status-page.png"))
        print("status page: screenshot %s" % out)

    def test_3_etag_and_bounds(self):
        url = self.base + "/status.json"
        with urllib.request.urlopen(url, timeout=10) as r:
            etag = r.headers["ETag"]
            body = json.load(r)
            self.assertEqual(r.headers["Content-Type"], "application/json")
        self.assertTrue(etag)
        self.assertIsNone(body["truncated"])
        # Nothing secret: no env values or keys in the answer.
        text = json.dumps(body)
        for word in ("BEGIN", "env_vars", "SAMPLE", "token"):
            self.assertNotIn(word, text)
        req = urllib.request.Request(url, headers={"If-None-Match": etag})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                code, length = r.status, len(r.read())
        except urllib.error.HTTPError as e:
            code, length = e.code, len(e.read())
        # The state may have moved on between the two requests; then a full answer is right.
        self.assertIn(code, (304, 200))
        if code == 304:
            self.assertEqual(length, 0)
        # The page is HTML with its own CSP, no external asset.
        with urllib.request.urlopen(self.base + "/", timeout=10) as r:
            html = r.read().decode()
            self.assertIn("default-src 'none'", r.headers["Content-Security-Policy"])
        self.assertNotIn("http://", html.replace("http://www.w3.org", ""))
        self.assertNotIn("https://", html)
        print("status page: /status.json %d bytes, %d pods; If-None-Match -> %d" %
              (len(text), body["totals"]["pods"], code))


class StatusPageOff(unittest.TestCase):
    """--status-page=false: / and /status.json are 404, /metrics still answers."""

    def test_flag_off(self):
        if not os.access(CONTROLLER_BIN, os.X_OK):
            self.skipTest("controller not built")
        port, hport = free_port(), free_port()
        with tempfile.TemporaryDirectory() as d:
            kc = os.path.join(d, "kubeconfig")
            with open(kc, "w") as f:  # an API server that is not there: the listeners still answer
                f.write("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
                        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
                        "current-context: x\n")
            p = subprocess.Popen([CONTROLLER_BIN, "--kubeconfig", kc, "--metrics-addr", "127.0.0.1:%d" % port,
                                  "--health-probe-bind-address", "127.0.0.1:%d" % hport, "--agent-listen", "0",
                                  "--leader-elect=false", "--status-page=false"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                def code(path):
                    try:
                        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
                            return r.status
                    except urllib.error.HTTPError as e:
                        return e.code
                    except OSError:
                        return None
                wait_for(lambda: code("/metrics") == 200, 20, 0.1, "the metrics listener")
                self.assertEqual(code("/status.json"), 404)
                self.assertEqual(code("/"), 404)
            finally:
                p.terminate()
                p.wait(10)


if __name__ == "__main__":
    unittest.main()

"""The Grafana dashboard manifests/grafana/raywarden-dashboard.json: generated from
gen_dashboard.py, shaped as Grafana expects (data source and namespace/cluster variables), and
every query it holds parses as PromQL (promtool check rules on a rule file made of them). The
live test tests/e2e/test_alerts.py runs the same queries against a real Prometheus."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("RW_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
GRAFANA = os.path.join(SRC, "manifests", "grafana")
DASH = os.path.join(GRAFANA, "raywarden-dashboard.json")
sys.path.insert(0, GRAFANA)
import dashboard_queries  # noqa: E402
import rulefile  # noqa: E402

PROMTOOL = shutil.which("promtool")


def load():
    with open(DASH) as f:
        return json.load(f)


def rule_file(exprs):
    """A rule file with one recording rule per expression, for promtool to parse (JSON, which
    YAML readers accept)."""
    return json.dumps({"groups": [{"name": "dashboard", "rules": [
        {"record": "dashboard:query_%d" % i, "expr": e} for i, e in enumerate(exprs)]}]}, indent=1)


class ExtractorTest(unittest.TestCase):
    def test_expand(self):
        cases = [
            ('up{job=~"$job"}', None, 'up{job=~".*"}'),
            ('up{job=~"${job}"}', None, 'up{job=~".*"}'),
            ('up{job=~"${job:regex}"}', None, 'up{job=~".*"}'),
            ('up{job=~"[[job]]"}', None, 'up{job=~".*"}'),
            ('rate(x[$__rate_interval])', None, "rate(x[1m])"),
            ('rate(x{a=~"$a"}[$__range])', {"a": "b|c"}, 'rate(x{a=~"b|c"}[1h])'),
            ("no variables", None, "no variables"),
        ]
        for expr, values, want in cases:
            with self.subTest(expr=expr):
                self.assertEqual(dashboard_queries.expand(expr, values), want)

    def test_queries_walk_rows_targets_and_variables(self):
        dash = {
            "templating": {"list": [
                {"type": "datasource", "name": "datasource", "query": "prometheus"},
                {"type": "query", "name": "ns", "query": {"query": "label_values(up, namespace)"}},
                {"type": "query", "name": "c",
                 "query": 'label_values(kuberay_cluster_info{namespace=~"$ns"}, name)'},
                {"type": "query", "name": "j", "query": "label_values(job)"},
            ]},
            "panels": [
                {"type": "row", "title": "r", "panels": [
                    {"title": "inner", "targets": [{"refId": "A", "expr": 'a{x=~"$c"}'}]}]},
                {"title": "outer", "targets": [{"refId": "A", "expr": "b"},
                                               {"refId": "B", "expr": ""}]},
            ],
        }
        self.assertEqual(dashboard_queries.queries(dash), [
            ("variable ns", "-", "up"),
            ("variable c", "-", 'kuberay_cluster_info{namespace=~".*"}'),
            ("inner", "A", 'a{x=~".*"}'),
            ("outer", "A", "b"),
        ])


class DashboardTest(unittest.TestCase):
    def test_generated(self):
        p = subprocess.run([sys.executable, os.path.join(GRAFANA, "gen_dashboard.py"), "--check"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        self.assertEqual(p.returncode, 0, p.stdout)

    def test_shape(self):
        d = load()
        self.assertEqual(d["uid"], "raywarden")
        self.assertGreaterEqual(d["schemaVersion"], 36)
        names = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(names["datasource"]["type"], "datasource")
        self.assertEqual(names["datasource"]["query"], "prometheus")
        for v in ("namespace", "cluster"):
            self.assertTrue(names[v]["includeAll"] and names[v]["allValue"] == ".*")
        ids, titles = set(), set()
        for p in d["panels"]:
            self.assertNotIn(p["id"], ids)
            ids.add(p["id"])
            titles.add(p["title"])
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            self.assertTrue(p["targets"], p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
        for want in ("RayClusters", "Reconcile time p50/p95/p99", "Work queue depth",
                     "Pods ready per RayCluster", "Probe latency per component",
                     "Oldest agent report", "Readiness flips per second",
                     "Agent report to readiness gate", "Readiness gate patch", "Agents connected",
                     "Hub refusals per second", "Serve endpoints", "Alerts firing or pending"):
            self.assertIn(want, titles)

    def test_sidecar_configmap(self):
        """`kubectl apply -k manifests/grafana` gives Grafana's sidecar the dashboard as is."""
        kubectl = shutil.which("kubectl")
        if not kubectl:
            self.skipTest("kubectl is not installed")
        p = subprocess.run([kubectl, "kustomize", GRAFANA], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        out = p.stdout
        self.assertEqual(out.count("\nkind: "), 1)
        self.assertIn("\nkind: ConfigMap\n", out)
        self.assertIn("\n  name: raywarden-dashboard\n", out)
        self.assertIn('\n    grafana_dashboard: "1"\n', out)
        # The data key is a literal block indented by four spaces: the file, unchanged.
        block = out.split("\n  raywarden-dashboard.json: |\n", 1)[1]
        body = []
        for line in block.splitlines():
            if line and not line.startswith("    "):
                break
            body.append(line[4:])
        self.assertEqual(json.loads("\n".join(body)), load())

    def test_every_metric_is_exported(self):
        """Every raywarden or KubeRay family a query reads is one the daemons write."""
        used = rulefile.metrics_used("\n".join(e for _, _, e in dashboard_queries.queries(load())))
        self.assertGreater(len(used), 20)
        self.assertEqual(rulefile.unexported(used, SRC), set())

    def test_every_query_parses(self):
        if not PROMTOOL:
            self.skipTest("promtool is not installed (apt-get install prometheus)")
        qs = dashboard_queries.queries(load())
        self.assertGreater(len(qs), 30)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "dashboard-queries.yaml")
            with open(path, "w") as f:
                f.write(rule_file([e for _, _, e in qs]))
            p = subprocess.run([PROMTOOL, "check", "rules", path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("SUCCESS: %d rules found" % len(qs), p.stdout)

    def test_a_broken_query_is_caught(self):
        """The check above can fail: an unbalanced query and a variable outside a regex."""
        if not PROMTOOL:
            self.skipTest("promtool is not installed (apt-get install prometheus)")
        for bad in ("sum(up", dashboard_queries.expand("topk($n, up)")):
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "bad.yaml")
                with open(path, "w") as f:
                    f.write(rule_file(["up", bad]))
                p = subprocess.run([PROMTOOL, "check", "rules", path], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, universal_newlines=True)
            self.assertNotEqual(p.returncode, 0, bad)


if __name__ == "__main__":
    unittest.main()

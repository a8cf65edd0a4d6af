"""The Prometheus rules under manifests/prometheus/: promtool checks them and runs their unit
tests (raywarden-rules.test.yaml), the PrometheusRule wrapper carries the same groups, and every
alert has what an on-call reader needs (for:, severity, summary, description, a runbook row in
docs/observability.md)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import rulefile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("RW_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(SRC, "manifests", "prometheus", "raywarden-rules.yaml")
WRAPPER = os.path.join(SRC, "manifests", "prometheus", "raywarden-prometheusrule.yaml")
GEN = os.path.join(SRC, "manifests", "prometheus", "gen_prometheusrule.py")
UNIT = os.path.join(HERE, "raywarden-rules.test.yaml")
DOC = os.path.join(SRC, "docs", "observability.md")
PROMTOOL = shutil.which("promtool")

# The alerts the documentation and the dashboards promise.
REQUIRED_ALERTS = {
    "RayPodNotReady", "RayServeProxyDown", "RaywardenAgentReportsStale",
    "RayServiceWithoutEndpoints", "RayServiceNotReady", "RayJobFailed", "RaywardenNoLeader",
    "RaywardenControllerDown", "RaywardenAgentDisconnected",
}


def all_rules():
    return rulefile.read(RULES)


def unit_coverage():
    """From the promtool unit tests: (alerts expected to fire somewhere, alerts expected quiet
    somewhere, recording rule names evaluated by an expression test)."""
    fired, quiet, recorded = set(), set(), set()
    with open(UNIT) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for i, line in enumerate(lines):
        m = re.match(r"^\s*alertname: *(\S+)", line)
        if m:
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            (quiet if nxt == "exp_alerts: []" else fired).add(m.group(1))
        m = re.match(r"^\s*- expr: *(.+)$", line)
        if m:
            recorded.update(re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", m.group(1)))
    return fired, quiet, recorded


def run(cmd):
    return subprocess.run(cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120)


class PromtoolTest(unittest.TestCase):
    def setUp(self):
        if not PROMTOOL:
            self.skipTest("promtool is not installed (apt-get install prometheus)")

    def test_check_rules(self):
        p = run([PROMTOOL, "check", "rules", RULES])
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("SUCCESS: %d rules found" % len(all_rules()), p.stdout)

    def test_check_the_wrappers_rules(self):
        """The PrometheusRule's spec, taken out again, is the same valid rule file."""
        with open(WRAPPER) as f:
            text = f.read()
        spec = text.split("\nspec:\n", 1)[1]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "spec.yaml")
            with open(path, "w") as f:
                f.write("\n".join(ln[2:] for ln in spec.splitlines()) + "\n")
            p = run([PROMTOOL, "check", "rules", path])
            self.assertEqual(p.returncode, 0, p.stdout)
            self.assertIn("SUCCESS: %d rules found" % len(all_rules()), p.stdout)
            self.assertEqual(rulefile.read(path), all_rules())

    def test_unit_tests(self):
        p = run([PROMTOOL, "test", "rules", UNIT])
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("SUCCESS", p.stdout)


class RuleFileTest(unittest.TestCase):
    def test_unit_tests_cover_every_rule(self):
        """Each alert is expected to fire somewhere and to stay quiet somewhere; each recording
        rule is evaluated by an expression test."""
        fired, quiet, recorded = unit_coverage()
        rules = all_rules()
        alerts = {r["alert"] for r in rules if "alert" in r}
        records = {r["record"] for r in rules if "record" in r}
        self.assertEqual(alerts - fired, set(), "alerts never seen firing")
        self.assertEqual(alerts - quiet, set(), "alerts never seen quiet")
        self.assertEqual(records - recorded, set(), "recording rules never evaluated")

    def test_wrapper_is_generated_from_the_rules(self):
        p = subprocess.run([sys.executable, GEN, "--check"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        with open(WRAPPER) as f:
            head = f.read().split("\nspec:\n", 1)[0]
        self.assertIn("\napiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n", head)

    def test_every_metric_is_exported(self):
        with open(RULES) as f:
            used = rulefile.metrics_used(f.read())
        self.assertGreater(len(used), 10)
        self.assertEqual(rulefile.unexported(used, SRC), set())

    def test_alerts_are_complete(self):
        with open(DOC) as f:
            doc = f.read()
        section = doc.split("## Alerts and recording rules", 1)[1].split("\n## ", 1)[0]
        alerts = [r for r in all_rules() if "alert" in r]
        self.assertTrue(REQUIRED_ALERTS <= {a["alert"] for a in alerts})
        for a in alerts:
            name = a["alert"]
            with self.subTest(alert=name):
                self.assertIn(a["labels"]["severity"], ("warning", "critical"))
                if name != "RayJobFailed":  # a failed RayJob stays failed: no need to wait
                    self.assertIn("for", a)
                ann = a["annotations"]
                self.assertTrue(ann["summary"] and ann["description"])
                anchor = "alert-" + name.lower()
                self.assertEqual(ann["runbook_url"], "docs/observability.md#" + anchor)
                self.assertIn('<a id="%s"></a>' % anchor, section)
                self.assertRegex(section, r"\| *<a id=\"%s\"></a>`%s` *\|" % (anchor, name))
        for r in all_rules():
            if "record" in r:
                self.assertIn("`%s`" % r["record"], section)


if __name__ == "__main__":
    unittest.main()

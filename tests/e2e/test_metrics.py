"""End to end: the metrics people see. KubeRay's RayCluster, RayService and RayJob samples run
on the local cluster with raywarden-controller; the controller's /metrics and every agent's
/metrics pass `promtool check metrics` (nothing printed, exit 0); the kuberay_* families have
KubeRay v1.5.0's types and label names and the controller-runtime families controller-runtime
v0.22.1's (the table below cites the Go source of each); every metric of the "## Metrics" table
in docs/observability.md is exposed by the process it names with the type it names, and every
raywarden_* and kuberay_* family exposed is in that table; a deleted RayService's series go away.
Uses clusterlib.py and rslib.py."""

import json
import os
import re
import shutil
import subprocess
import time
import unittest
import urllib.request

from clusterlib import SAMPLES, SRC, LocalClusterCase, corpus_sample, wait_for
from kubesim import operators
from kubesim.realcp import host_ip
from rslib import wait_rs_ready

NS = "default"
DOC = os.path.join(SRC, "docs", "observability.md")

KR = "ray-operator/controllers/ray/metrics/"  # kuberay v1.5.0
CR = "sigs.k8s.io/controller-runtime@v0.22.1/"
# family -> (type, label names, where the definition is)
UPSTREAM = {
    "kuberay_cluster_info": ("gauge", {"name", "namespace", "uid", "owner_kind"}, KR + "ray_cluster_metrics.go"),
    "kuberay_cluster_condition_provisioned": ("gauge", {"name", "namespace", "uid", "condition"},
                                              KR + "ray_cluster_metrics.go"),
    "kuberay_cluster_provisioned_duration_seconds": ("gauge", {"name", "namespace", "uid"},
                                                     KR + "ray_cluster_metrics.go"),
    "kuberay_job_info": ("gauge", {"name", "namespace", "uid"}, KR + "ray_job_metrics.go"),
    "kuberay_job_deployment_status": ("gauge", {"name", "namespace", "uid", "deployment_status"},
                                      KR + "ray_job_metrics.go"),
    "kuberay_job_execution_duration_seconds": ("gauge", {"name", "namespace", "uid", "job_deployment_status",
                                                         "retry_count"}, KR + "ray_job_metrics.go"),
    "kuberay_service_info": ("gauge", {"name", "namespace", "uid"}, KR + "ray_service_metrics.go"),
    "kuberay_service_condition_ready": ("gauge", {"name", "namespace", "uid", "condition"},
                                        KR + "ray_service_metrics.go"),
    "kuberay_service_condition_upgrade_in_progress": ("gauge", {"name", "namespace", "uid", "condition"},
                                                      KR + "ray_service_metrics.go"),
    "controller_runtime_reconcile_total": ("counter", {"controller", "result"},
                                           CR + "pkg/internal/controller/metrics/metrics.go"),
    "controller_runtime_reconcile_errors_total": ("counter", {"controller"},
                                                  CR + "pkg/internal/controller/metrics/metrics.go"),
    "controller_runtime_terminal_reconcile_errors_total": ("counter", {"controller"},
                                                           CR + "pkg/internal/controller/metrics/metrics.go"),
    "controller_runtime_reconcile_panics_total": ("counter", {"controller"},
                                                  CR + "pkg/internal/controller/metrics/metrics.go"),
    "controller_runtime_reconcile_time_seconds": ("histogram", {"controller"},
                                                  CR + "pkg/internal/controller/metrics/metrics.go"),
    "controller_runtime_max_concurrent_reconciles": ("gauge", {"controller"},
                                                     CR + "pkg/internal/controller/metrics/metrics.go"),
    "controller_runtime_active_workers": ("gauge", {"controller"}, CR + "pkg/internal/controller/metrics/metrics.go"),
    "workqueue_depth": ("gauge", {"name", "controller", "priority"}, CR + "pkg/internal/metrics/workqueue.go"),
    "workqueue_adds_total": ("counter", {"name", "controller"}, CR + "pkg/internal/metrics/workqueue.go"),
    "workqueue_queue_duration_seconds": ("histogram", {"name", "controller"}, CR + "pkg/internal/metrics/workqueue.go"),
    "workqueue_work_duration_seconds": ("histogram", {"name", "controller"}, CR + "pkg/internal/metrics/workqueue.go"),
    "workqueue_unfinished_work_seconds": ("gauge", {"name", "controller"}, CR + "pkg/internal/metrics/workqueue.go"),
    "workqueue_longest_running_processor_seconds": ("gauge", {"name", "controller"},
                                                    CR + "pkg/internal/metrics/workqueue.go"),
    "workqueue_retries_total": ("counter", {"name", "controller"}, CR + "pkg/internal/metrics/workqueue.go"),
    "leader_election_master_status": ("gauge", {"name"}, CR + "pkg/metrics/leaderelection.go"),
    "rest_client_requests_total": ("counter", {"code", "method", "host"}, CR + "pkg/metrics/client_go_adapter.go"),
    # client-go's own (controller-runtime v0.22.1 does not register it):
    "rest_client_request_duration_seconds": ("histogram", {"verb", "host"},
                                             "k8s.io/component-base/metrics/prometheus/restclient/metrics.go"),
    # client_golang's process collector (prometheus/collectors):
    "process_cpu_seconds_total": ("counter", set(), "client_golang prometheus/process_collector.go"),
    "process_resident_memory_bytes": ("gauge", set(), "client_golang prometheus/process_collector.go"),
    "process_virtual_memory_bytes": ("gauge", set(), "client_golang prometheus/process_collector.go"),
    "process_start_time_seconds": ("gauge", set(), "client_golang prometheus/process_collector.go"),
    "process_open_fds": ("gauge", set(), "client_golang prometheus/process_collector.go"),
    "process_max_fds": ("gauge", set(), "client_golang prometheus/process_collector.go"),
}

# Registered always, set only with leader election (the local cluster runs one controller without).
NO_SERIES_HERE = {"leader_election_master_status"}

# Families KubeRay v1.5.0's operator exposes that raywarden does not, and why.
NOT_PROVIDED = {
    "process_virtual_memory_max_bytes": "no address-space limit is set; nothing reads it",
    "process_network_receive_bytes_total": "per-network-namespace counters, not the process's",
    "process_network_transmit_bytes_total": "per-network-namespace counters, not the process's",
    "leader_election_slowpath_total": "client-go's lease renewal slow path; raywarden's Lease code has one path",
    "controller_runtime_webhook_panics_total": "no Go panics (the webhooks answer or fail closed)",
    "controller_runtime_conversion_webhook_panics_total": "no conversion webhook (ray.io/v1 only)",
    "certwatcher_read_certificate_total": "controller-runtime's certificate watcher",
    "certwatcher_read_certificate_errors_total": "controller-runtime's certificate watcher",
}
UPSTREAM_PREFIXES = ("kuberay_", "controller_runtime_", "workqueue_", "rest_client_", "leader_election_",
                     "process_", "certwatcher_")

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# The controller's HELP lines, kept by Metrics for MetricsOfKubeRay (which runs after it).
OUR_HELP = {}


def help_lines(text):
    return dict(line.split(" ", 3)[2:] for line in text.splitlines() if line.startswith("# HELP "))


def exposition(text):
    """{family: {"type": t, "labels": set of label names seen, "series": [(name, {labels}, value)]}}."""
    fams = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            fams[name] = {"type": typ, "labels": set(), "series": []}
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("unparsable sample line: %r" % line)
        name, labels = m.group(1), dict(LABEL_RE.findall(m.group(3) or ""))
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in fams and \
                    fams[name[: -len(suffix)]]["type"] in ("histogram", "summary"):
                fam = name[: -len(suffix)]
        if fam not in fams:
            raise AssertionError("sample of %s without a TYPE line" % name)
        fams[fam]["labels"] |= set(labels) - {"le", "quantile"}
        fams[fam]["series"].append((name, labels, float(m.group(4))))
    return fams


def doc_table():
    """The "## Metrics" section's table: {(process, name): (type, {labels})}."""
    with open(DOC) as f:
        text = f.read()
    sec = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in sec.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6 or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`")
        labels = {x.strip().strip("`") for x in cells[3].split(",") if x.strip() and x.strip() != "none"}
        rows[(cells[1], name)] = (cells[2], labels)
    return rows


def apply_samples(lc):
    """Apply KubeRay's RayCluster, RayService and RayJob samples (or the mini ones without the
    corpus) and wait until the cluster is ready, the service Ready and the job finished.
    Returns the three names."""
    samples = [corpus_sample(n) for n in ("ray-cluster.sample.yaml", "ray-service.sample.yaml",
                                          "ray-job.sample.yaml")]
    names = ("raycluster-kuberay", "rayservice-sample", "rayjob-sample")
    if not all(samples):
        print("shared/corpus absent: using manifests/samples/*.mini.yaml")
        samples = [os.path.join(SAMPLES, n) for n in
                   ("ray-cluster.mini.yaml", "ray-service.mini.yaml", "ray-job.mini.yaml")]
        names = ("raycluster-mini", "rayservice-mini", "rayjob-mini")
    t0 = time.monotonic()
    for s in samples:
        lc.apply(s)
    lc.wait_cluster_ready(NS, names[0], timeout=90)
    wait_rs_ready(lc, NS, names[1], timeout=90)

    def job_done():
        out = lc.kubectl("get", "rayjob", names[2], "-n", NS, "-o", "json", check=False)
        st = (json.loads(out) if out.strip() else {}).get("status") or {}
        return st if st.get("jobDeploymentStatus") in ("Complete", "Failed") else None
    wait_for(job_done, 120, 0.2, "RayJob %s terminal" % names[2])
    print("samples ready %.1fs after kubectl apply" % (time.monotonic() - t0))
    return names


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def promtool_check(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode()


class Metrics(LocalClusterCase):
    @classmethod
    def setUpCluster(cls):
        cls.rc, cls.rs, cls.rj = apply_samples(cls.lc)

    def controller_text(self):
        return get(self.lc.controller()["metrics_url"])

    def agent_texts(self):
        """{pod name: /metrics text} of every running Ray pod's agent (a pod deleted meanwhile,
        e.g. the finished RayJob's, is left out)."""
        out = {}
        for p in self.lc.pods(NS):
            st = p.get("status") or {}
            if st.get("phase") != "Running" or not st.get("podIP") or \
                    not any(c["name"] == "raywarden-agent" for c in p["spec"]["containers"]):
                continue
            try:
                out[p["metadata"]["name"]] = get("http://%s:8477/metrics" % host_ip(st["podIP"]))
            except OSError as e:
                now = self.lc.get_or_none("/api/v1/namespaces/%s/pods/%s" % (NS, p["metadata"]["name"]))
                if now and not now["metadata"].get("deletionTimestamp") and \
                        now["metadata"]["uid"] == p["metadata"]["uid"]:
                    raise AssertionError("agent of %s (%s): %s" % (p["metadata"]["name"], st["podIP"], e))
        return out

    def test_1_promtool_accepts_every_exposition(self):
        if not shutil.which("promtool"):
            self.skipTest("promtool not installed")
        texts = {"controller": self.controller_text()}
        agents = self.agent_texts()
        self.assertTrue(agents, "no agent answered")
        texts.update(agents)
        dump = os.environ.get("RW_METRICS_DUMP")  # a directory: keep each exposition there
        for who, text in texts.items():
            if dump:
                with open(os.path.join(dump, who + ".txt"), "w") as f:
                    f.write(text)
            rc, out = promtool_check(text)
            self.assertEqual((rc, out), (0, ""), "promtool check metrics on %s's /metrics" % who)

    def test_2_upstream_types_and_labels(self):
        text = self.controller_text()
        OUR_HELP.update(help_lines(text))
        fams = exposition(text)
        for name, (typ, labels, src) in sorted(UPSTREAM.items()):
            self.assertTrue(name in fams, "%s (%s) missing" % (name, src))
            self.assertEqual(fams[name]["type"], typ, "%s: type (%s)" % (name, src))
            if name in NO_SERIES_HERE:
                continue
            self.assertTrue(fams[name]["series"], "%s: no series" % name)
            self.assertEqual(fams[name]["labels"], labels, "%s: label names (%s)" % (name, src))
        # Values as KubeRay's: the condition label is strconv.FormatBool; owner_kind from the label.
        def series(fam, **want):
            return [s for s in fams[fam]["series"] if all(s[1].get(k) == v for k, v in want.items())]
        self.assertEqual([s[1]["condition"] for s in series("kuberay_cluster_condition_provisioned", name=self.rc)],
                         ["true"])
        self.assertEqual([s[1]["owner_kind"] for s in series("kuberay_cluster_info", name=self.rc)], ["None"])
        job_clusters = [s[1] for s in fams["kuberay_cluster_info"]["series"] if s[1]["name"].startswith(self.rj)]
        self.assertTrue(job_clusters and all(lb["owner_kind"] == "RayJob" for lb in job_clusters), job_clusters)
        self.assertEqual([s[1]["condition"] for s in series("kuberay_service_condition_ready", name=self.rs)],
                         ["true"])
        self.assertEqual(len(series("kuberay_service_condition_upgrade_in_progress", name=self.rs)), 1)
        self.assertEqual([s[1]["deployment_status"] for s in series("kuberay_job_deployment_status", name=self.rj)],
                         ["Complete"])
        # Pre-set as controller-runtime does; one series per controller.
        for ctl in ("raycluster", "rayjob", "rayservice"):
            got = {s[1]["result"] for s in series("controller_runtime_reconcile_total", controller=ctl)}
            self.assertEqual(got, {"error", "requeue", "requeue_after", "success"}, ctl)
            self.assertEqual(len(series("controller_runtime_max_concurrent_reconciles", controller=ctl)), 1, ctl)
            self.assertEqual(len(series("workqueue_depth", name=ctl, controller=ctl, priority="")), 1, ctl)
        # raywarden's own: pods by readiness, report age, serve endpoints.
        pods = {s[1]["ready"]: s[2] for s in series("raywarden_raycluster_pods", name=self.rc)}
        self.assertEqual(pods.get("true"), len(self.lc.pods(NS, self.rc)), pods)
        age = series("raywarden_raycluster_report_age_max_seconds", name=self.rc)
        self.assertTrue(len(age) == 1 and 0 <= age[0][2] < 30, age)
        eps = series("raywarden_rayservice_serve_endpoints", name=self.rs)
        self.assertTrue(len(eps) == 1 and eps[0][2] >= 1, eps)
        ready = series("raywarden_pod_readiness_transitions_total", namespace=NS, to="ready")
        self.assertTrue(ready and ready[0][2] >= 2, ready)
        self.assertGreater(sum(s[2] for s in fams["raywarden_agent_report_to_gate_seconds"]["series"]
                               if s[0].endswith("_count")), 0)

    def test_3_docs_table_matches_expositions(self):
        rows = doc_table()
        self.assertTrue(rows, "no metrics table in %s" % DOC)
        seen = {"controller": exposition(self.controller_text()), "agent": {}}
        for text in self.agent_texts().values():
            for name, fam in exposition(text).items():
                prev = seen["agent"].setdefault(name, {"type": fam["type"], "labels": set(), "series": []})
                prev["labels"] |= fam["labels"]
        for (proc, name), (typ, labels) in sorted(rows.items()):
            self.assertIn(proc, seen, "%s: process %r is neither controller nor agent" % (name, proc))
            fam = seen[proc].get(name)
            self.assertTrue(fam is not None, "%s (documented) is not on the %s's /metrics" % (name, proc))
            self.assertEqual(fam["type"], typ, "%s: documented type" % name)
            self.assertLessEqual(fam["labels"], labels, "%s: labels beyond the documented ones" % name)
        for proc, fams in seen.items():
            for name in fams:
                if name.startswith(("raywarden_", "kuberay_")):
                    self.assertIn((proc, name), rows, "%s on the %s's /metrics is not in %s" % (name, proc, DOC))

    def test_4_deleted_rayservice_series_go(self):
        uid = json.loads(self.lc.kubectl("get", "rayservice", self.rs, "-n", NS, "-o", "json"))["metadata"]["uid"]
        self.assertIn('uid="%s"' % uid, self.controller_text())
        self.lc.kubectl("delete", "rayservice", self.rs, "-n", NS, "--wait=false")

        def gone():
            text = self.controller_text()
            return text if 'uid="%s"' % uid not in text and \
                'name="%s"' % self.rs not in text else None
        text = wait_for(gone, 60, 0.2, "series of the deleted RayService gone")
        self.assertNotIn("kuberay_service_info{name=\"%s\"" % self.rs, text)


class MetricsOfKubeRay(LocalClusterCase):
    """KubeRay v1.5.0's own operator (real control plane) on the same samples: every family of the
    table above that it exposes has the type and label names the table says, every kuberay_*
    family of the table is among them, and what it exposes beyond the table is in NOT_PROVIDED."""
    CONTROL_PLANE = "real"
    OPERATOR = "kuberay"

    @classmethod
    def prerequisites(cls):
        return super().prerequisites() or operators.skip_reason()

    @classmethod
    def setUpCluster(cls):
        cls.rc, cls.rs, cls.rj = apply_samples(cls.lc)

    def test_kuberay_exposition_matches_the_table(self):
        url = operators.info(self.lc.state)["metrics_url"]
        text = get(url)
        if os.environ.get("RW_METRICS_DUMP"):
            with open(os.path.join(os.environ["RW_METRICS_DUMP"], "kuberay-operator.txt"), "w") as f:
                f.write(text)
        if shutil.which("promtool"):
            self.assertEqual(promtool_check(text)[0], 0)
        fams = exposition(text)
        for name, fam in sorted(fams.items()):
            if not name.startswith(UPSTREAM_PREFIXES):
                continue
            if name in NOT_PROVIDED:
                continue
            self.assertTrue(name in UPSTREAM, "KubeRay exposes %s: not in UPSTREAM nor NOT_PROVIDED" % name)
            typ, labels, src = UPSTREAM[name]
            self.assertEqual(fam["type"], typ, "%s: KubeRay's type (%s)" % (name, src))
            if fam["series"]:
                self.assertEqual(fam["labels"], labels, "%s: KubeRay's label names (%s)" % (name, src))
        # Same help text, where the controller's exposition was seen in this run.
        if OUR_HELP:
            theirs = help_lines(text)
            common = [n for n in theirs if n in OUR_HELP]
            self.assertGreaterEqual(len(common), 25)
            for n in common:
                self.assertEqual(OUR_HELP[n], theirs[n], "%s: help text" % n)
        for name in UPSTREAM:
            if name.startswith("kuberay_"):
                self.assertTrue(name in fams and fams[name]["series"], "KubeRay has no %s series" % name)
        info = [s[1] for s in fams["kuberay_cluster_info"]["series"] if s[1]["name"] == self.rc]
        self.assertEqual([lb["owner_kind"] for lb in info], ["None"])
        cond = [s[1]["condition"] for s in fams["kuberay_service_condition_ready"]["series"]
                if s[1]["name"] == self.rs]
        self.assertEqual(cond, ["true"])


if __name__ == "__main__":
    unittest.main()

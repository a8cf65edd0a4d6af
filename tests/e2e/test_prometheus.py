"""A real Prometheus finds raywarden by Kubernetes service discovery (`local-cluster up
--prometheus`, kubesim/prometheus.py; docs/observability.md, "Prometheus: finding the controller
and the agents"):

- its configuration is manifests/prometheus/prometheus.yaml with only the API-server connection
  added, and it runs as ServiceAccount monitoring/prometheus bound by the shipped RBAC (applied
  with `kubectl apply -k manifests/prometheus`): discovery is never refused (no "forbidden" in
  its log);
- job raywarden-controller has exactly one healthy target, the controller's metrics listener,
  found through Service raywarden-system/raywarden-controller's EndpointSlice; a crashed
  controller stays a target scraped as down (`up` 0), and a restarted one is followed to its new
  port;
- job raywarden-agent has exactly the RayCluster's pods, each healthy and labelled namespace,
  pod, ray_cluster, ray_node_type, ray_group as the pod; `up` and the agents' own metrics are
  queryable under those labels;
- a worker added by scaling up appears as a target; a deleted worker pod disappears;
- `local-cluster status --json` names the API server, the controller's metrics and status page
  and Prometheus;
- `promtool check config` passes on the shipped configuration and the generated one.

On the default control plane (the real one when built) and on the API server simulator.
Skipped, saying why, without a Prometheus that has Kubernetes service discovery (Debian's has
not; tests/sim/upstream/build builds upstream's).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

import promlib
from clusterlib import SAMPLES, SIM_DIR, LocalClusterCase, default_control_plane
from kubesim import prometheus, realcp

NS = "default"
NAME = "raycluster-mini"  # manifests/samples/ray-cluster.mini.yaml
DEADLINE_S = 60.0  # discovery publishes changes every 5 s; a loaded machine is slow


def deadline():
    return time.monotonic() + DEADLINE_S


class PrometheusDiscovery(LocalClusterCase):
    PROMETHEUS = True

    @classmethod
    def setUpCluster(cls):
        cls.url = cls.lc.prometheus_url()
        cls.sample = os.path.join(SAMPLES, "ray-cluster.mini.yaml")
        cls.lc.apply(cls.sample, ns=NS)

    def agent_targets(self):
        return {t["labels"].get("pod"): t for t in promlib.targets(self.url, "raywarden-agent")}

    def wait_agents_match_pods(self, what):
        """Wait until the agent targets are exactly the cluster's pods, all up; returns (pods, targets)."""
        box = {}

        def match():
            pods = {p["metadata"]["name"]: p for p in self.lc.pods(NS, NAME)
                    if p.get("status", {}).get("phase") == "Running"}
            ts = self.agent_targets()
            box["last"] = (sorted(pods), {k: (t["health"], t.get("lastError")) for k, t in ts.items()})
            if pods and set(ts) == set(pods) and all(t["health"] == "up" for t in ts.values()):
                return pods, ts
            return None

        try:
            return promlib.wait_until(what, match, deadline())
        except AssertionError:
            self.fail("%s: pods vs targets, last seen %r" % (what, box.get("last")))

    def test_1_controller_target(self):
        ts = promlib.wait_targets(self.url, "raywarden-controller", 1, deadline())
        t = ts[0]
        self.assertEqual(t["scrapeUrl"], self.lc.controller()["metrics_url"])
        self.assertEqual(t["labels"]["namespace"], "raywarden-system")
        d = t["discoveredLabels"]
        self.assertEqual(d["__meta_kubernetes_service_name"], "raywarden-controller")
        self.assertEqual(d["__meta_kubernetes_endpointslice_port_name"], "metrics")
        r = promlib.wait_query(self.url, 'up{job="raywarden-controller"}', lambda r: len(r) == 1, deadline())
        self.assertEqual(r[0]["value"][1], "1")

    def test_2_agents_are_the_pods(self):
        self.lc.wait_cluster_ready(NS, NAME, timeout=120)
        pods, ts = self.wait_agents_match_pods("every agent of %s a healthy target" % NAME)
        self.assertEqual(len(pods), 2)  # head + one worker
        for name, p in pods.items():
            lab = p["metadata"]["labels"]
            got = ts[name]["labels"]
            self.assertEqual({k: got.get(k) for k in ("namespace", "pod", "ray_cluster", "ray_node_type", "ray_group")},
                             {"namespace": NS, "pod": name, "ray_cluster": lab["ray.io/cluster"],
                              "ray_node_type": lab["ray.io/node-type"], "ray_group": lab["ray.io/group"]}, name)
            # On the real control plane the API shows the pod network's address (realcp.py).
            self.assertEqual(ts[name]["scrapeUrl"], "http://%s:8477/metrics" % realcp.host_ip(p["status"]["podIP"]))
        up = promlib.wait_query(self.url, 'up{job="raywarden-agent",ray_cluster="%s"}' % NAME,
                                lambda r: len(r) == 2, deadline())
        self.assertEqual(sorted(s["metric"]["pod"] for s in up), sorted(pods))
        self.assertTrue(all(s["value"][1] == "1" for s in up), up)
        # The agents' own metrics carry the same target labels.
        ready = promlib.wait_query(self.url, 'raywarden_agent_ready{ray_cluster="%s"}' % NAME,
                                   lambda r: len(r) == 2, deadline())
        self.assertEqual({s["metric"]["ray_node_type"] for s in ready}, {"head", "worker"})

    def test_3_scale_up_and_delete(self):
        self.lc.wait_cluster_ready(NS, NAME, timeout=120)
        before, _ = self.wait_agents_match_pods("the agents before scaling")
        self.lc.patch_cluster(NS, NAME, {"spec": {"workerGroupSpecs": [
            {"groupName": "small", "replicas": 2, "minReplicas": 0, "maxReplicas": 4, "rayStartParams": {},
             "template": self.lc.raycluster(NS, NAME)["spec"]["workerGroupSpecs"][0]["template"]}]}})
        self.lc.wait_cluster_ready(NS, NAME, workers=2, timeout=120)
        after, ts = self.wait_agents_match_pods("the new worker a target")
        new = set(after) - set(before)
        self.assertEqual(len(new), 1, (sorted(before), sorted(after)))
        self.assertEqual(ts[new.pop()]["labels"]["ray_node_type"], "worker")
        victim = sorted(n for n, p in after.items() if p["metadata"]["labels"]["ray.io/node-type"] == "worker")[0]
        self.lc.kubectl("delete", "pod", "-n", NS, victim, "--wait=false")
        deleted_at = time.monotonic()
        promlib.wait_until("deleted pod %s gone from the targets" % victim,
                           lambda: victim not in self.agent_targets(), deadline())
        self.lc.wait_cluster_ready(NS, NAME, workers=2, timeout=120)
        final, _ = self.wait_agents_match_pods("the replacement worker a target")
        self.assertNotIn(victim, final)
        # The hub still remembers the deleted pod's last report, which only grows older; the
        # cluster's report age counts running pods only, so past the agents' staleness period
        # (15 s) after the deletion it still shows a live agent's age, not the dead one's.
        series = 'raywarden_raycluster_report_age_max_seconds{namespace="%s",name="%s"}' % (NS, NAME)

        def age_after_staleness():
            if time.monotonic() - deleted_at < 20:
                return None
            v = self.lc.metrics().get(series)
            return None if v is None else (v,)

        (age,) = promlib.wait_until("20 s past the deletion, the report age read", age_after_staleness,
                                    deadline())
        self.assertLess(age, 15.0, "the deleted pod's report still counts")

    def test_4_controller_crash_and_restart_followed(self):
        old = self.lc.controller()["metrics_url"]
        # A crashed controller stays a target, scraped as down (its endpoint is kept, not ready, as a
        # crashed container's pod keeps it), so `up == 0` can alert.
        self.lc.stop_controller(signal.SIGKILL)
        promlib.wait_query(self.url, 'up{job="raywarden-controller"}',
                           lambda r: len(r) == 1 and r[0]["value"][1] == "0", deadline())
        self.assertEqual([t["scrapeUrl"] for t in promlib.targets(self.url, "raywarden-controller")], [old])
        self.lc.start_controller()
        new = self.lc.controller()["metrics_url"]
        self.assertNotEqual(old, new)  # a new port: the EndpointSlice must follow
        promlib.wait_until("the controller target at %s" % new,
                           lambda: [(t["scrapeUrl"], t["health"]) for t in promlib.targets(self.url, "raywarden-controller")]
                           == [(new, "up")], deadline())
        promlib.wait_query(self.url, 'up{job="raywarden-controller"}',
                           lambda r: len(r) == 1 and r[0]["value"][1] == "1", deadline())

    def test_5_status_json(self):
        r = subprocess.run([sys.executable, os.path.join(SIM_DIR, "local-cluster"), "status", "--state",
                            self.lc.state, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual(set(st), {"apiserver", "metrics", "ui", "prometheus"})
        self.assertEqual(st["prometheus"], self.url)
        self.assertEqual(st["metrics"], self.lc.controller()["metrics_url"])
        self.assertEqual(st["ui"], st["metrics"][:-len("metrics")])
        self.assertTrue(st["apiserver"].startswith("https://"), st)

    def test_6_promtool_check_config(self):
        promtool = prometheus.binary("promtool")
        for cfg in (prometheus.SHIPPED, prometheus.info(self.lc.state)["config"]):
            r = subprocess.run([promtool, "check", "config", cfg], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout.decode())

    def test_7_discovery_never_refused(self):
        promlib.wait_targets(self.url, "raywarden-controller", 1, deadline())
        with open(os.path.join(self.lc.state, "logs", "prometheus.log")) as f:
            log = f.read()
        self.assertNotIn("forbidden", log.lower())
        self.assertIn("Server is ready to receive web requests", log)

    def test_8_rbac_is_exactly_discovery(self):
        # docs/observability.md's check, `kubectl auth can-i ... --as=system:serviceaccount:monitoring:prometheus`;
        # the API server simulator has no impersonation, so there the ServiceAccount's own token asks.
        if "kube-apiserver" in self.lc.cluster.components():
            who = ["--as=system:serviceaccount:monitoring:prometheus"]
        else:
            who = ["--kubeconfig", os.path.join(self.lc.state, "prometheus", "prometheus.kubeconfig")]
        cases = [(("list", "pods", "--all-namespaces"), "yes"), (("watch", "pods", "--all-namespaces"), "yes"),
                 (("list", "endpointslices.discovery.k8s.io", "-n", "raywarden-system"), "yes"),
                 (("watch", "services", "-n", "raywarden-system"), "yes"),
                 (("list", "services", "-n", NS), "no"), (("get", "pods", "-n", NS), "no"),
                 (("list", "secrets", "-n", "raywarden-system"), "no"), (("list", "nodes"), "no")]
        for args, want in cases:
            argv = ["kubectl"] + (["--kubeconfig", self.lc.kubeconfig] if who[0].startswith("--as") else []) + \
                who + ["auth", "can-i"] + list(args)
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(r.stdout.decode().strip(), want, (args, r.stdout, r.stderr))


class ShippedConfiguration(unittest.TestCase):
    """What runs here is what ships (no cluster needed)."""

    def test_generated_is_shipped_plus_connection(self):
        shipped = prometheus.shipped_config()
        gen = prometheus.generate_config(shipped, "/x/kubeconfig", "/rules", pod_network=True)
        self.assertEqual([j["job_name"] for j in shipped["scrape_configs"]], ["raywarden-controller", "raywarden-agent"])
        self.assertEqual(gen["rule_files"], ["/rules/" + f for f in shipped["rule_files"]])
        for js, jg in zip(shipped["scrape_configs"], gen["scrape_configs"]):
            sd = jg["kubernetes_sd_configs"]
            self.assertTrue(sd and all(c.pop("kubeconfig_file") == "/x/kubeconfig" for c in sd))
            self.assertEqual(sd, js["kubernetes_sd_configs"])
            self.assertTrue(all("api_server" not in c for c in sd))  # in-cluster auth as shipped
            # Only the pod network's address mapping is appended to the shipped relabelling.
            self.assertEqual(jg["relabel_configs"][:-1], js["relabel_configs"])
            self.assertEqual(jg["relabel_configs"][-1]["target_label"], "__address__")
        plain = prometheus.generate_config(shipped, "/x/kubeconfig", "/rules")
        self.assertEqual([j["relabel_configs"] for j in plain["scrape_configs"]],
                         [j["relabel_configs"] for j in shipped["scrape_configs"]])

    def test_operator_monitors_render_with_the_same_labels(self):
        if not shutil.which("kubectl"):
            self.skipTest("kubectl not installed")
        r = subprocess.run(["kubectl", "kustomize", os.path.join(prometheus.MANIFESTS, "operator")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        out = r.stdout.decode()
        self.assertIn("kind: ServiceMonitor", out)
        self.assertIn("kind: PodMonitor", out)
        for label in ("ray_cluster", "ray_node_type", "ray_group", "raywarden-agent", "raywarden-controller"):
            self.assertIn(label, out)


class PrometheusDiscoverySimulatedApiServer(PrometheusDiscovery):
    """The same against the API server simulator (what Prometheus' client-go discovery asks of
    it: list and watch of pods, services and endpointslices with bookmarks), when the class above
    runs on the real control plane."""
    CONTROL_PLANE = "sim"

    @classmethod
    def prerequisites(cls):
        if default_control_plane() == "sim":
            return "the class above already runs on the simulated control plane"
        return super().prerequisites()

    # Independent of the API server (the local cluster's own code, checked once above).
    def test_4_controller_crash_and_restart_followed(self):
        self.skipTest("the same on both control planes; run by PrometheusDiscovery")

    def test_5_status_json(self):
        self.skipTest("the same on both control planes; run by PrometheusDiscovery")

    def test_6_promtool_check_config(self):
        self.skipTest("the same on both control planes; run by PrometheusDiscovery")


if __name__ == "__main__":
    unittest.main()

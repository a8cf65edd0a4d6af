"""End to end: KubeRay's RayCluster sample applied unchanged to the local cluster with
raywarden-controller -> head and worker pods Running and Ready (readiness gate set from
agent reports), status ready with endpoints, head IPs and conditions, services as
KubeRay's, objects equal to the builders' golden output apart from runtime fields; a
killed raylet makes its pod NotReady within a second; deleting the cluster removes
everything; deleting a cluster's namespace makes the creates it refuses neither errors nor
Events. Uses tests/e2e/clusterlib.py."""

import json
import os
import re
import time
import unittest

from clusterlib import (GOLDEN, SAMPLES, LocalClusterCase, cond, corpus_sample, pod_ready, wait_for,
                        without_token_volume)
from kubesim.realcp import host_ip

NS = "default"
GOLDEN_UID = "6f0c8d9e-1b2a-4c3d-8e4f-000000000001"
GOLDEN_AGENT_URL = "tcp://raywarden-controller.raywarden-system.svc:8478"


def contained(golden, live, path=""):
    """Where golden is not contained in live (live may carry API-server defaults)."""
    if isinstance(golden, dict):
        if not isinstance(live, dict):
            return ["%s: %r is not an object" % (path, live)]
        out = []
        for k, v in golden.items():
            if k not in live:
                out.append("%s/%s: missing" % (path, k))
            else:
                out += contained(v, live[k], "%s/%s" % (path, k))
        return out
    if isinstance(golden, list):
        if not isinstance(live, list) or len(live) != len(golden):
            return ["%s: %d items expected, got %r" % (path, len(golden), live)]
        out = []
        for i, (g, l) in enumerate(zip(golden, live)):
            out += contained(g, l, "%s[%d]" % (path, i))
        return out
    return [] if golden == live else ["%s: %r != %r" % (path, golden, live)]


class RayClusterBasic(LocalClusterCase):
    @classmethod
    def setUpCluster(cls):
        # KubeRay's sample from shared/corpus, or the repository's mini sample without the corpus.
        cls.sample = corpus_sample("ray-cluster.sample.yaml")
        cls.name = "raycluster-kuberay"
        if not cls.sample:
            print("shared/corpus absent: using manifests/samples/ray-cluster.mini.yaml")
            cls.sample = os.path.join(SAMPLES, "ray-cluster.mini.yaml")
            cls.name = "raycluster-mini"

    def ready(self):
        return self.lc.wait_cluster_ready(NS, self.name, timeout=90)

    def test_1_sample_becomes_ready(self):
        t0 = time.monotonic()
        self.lc.apply(self.sample)
        rc = self.ready()
        took = time.monotonic() - t0
        print("sample ready in %.2fs" % took)
        st = rc["status"]
        self.assertEqual(st["state"], "ready")
        self.assertEqual(st["observedGeneration"], rc["metadata"]["generation"])
        self.assertEqual(st["readyWorkerReplicas"], st["desiredWorkerReplicas"])
        self.assertEqual(st["availableWorkerReplicas"], st["desiredWorkerReplicas"])
        self.assertIn("stateTransitionTimes", st)
        conds = {c["type"]: c for c in st["conditions"]}
        self.assertEqual(conds["HeadPodReady"]["status"], "True")
        self.assertEqual(conds["HeadPodReady"]["reason"], "HeadPodRunningAndReady")
        self.assertEqual(conds["RayClusterProvisioned"]["status"], "True")
        self.assertEqual(conds["RayClusterProvisioned"]["reason"], "AllPodRunningAndReadyFirstTime")
        self.assertEqual(conds["RayClusterSuspended"]["status"], "False")
        self.assertNotIn("RayClusterReplicaFailure", conds)
        # Endpoints from the head service's ports; the head service is headless, so
        # serviceIP is the head pod's IP (KubeRay's rule).
        self.assertEqual(st["endpoints"].get("dashboard"), "8265")
        self.assertEqual(st["endpoints"].get("gcs-server"), "6379")
        self.assertEqual(st["endpoints"].get("client"), "10001")
        head = self.lc.pods(NS, self.name, "head")
        self.assertEqual(len(head), 1)
        self.assertEqual(st["head"]["podName"], head[0]["metadata"]["name"])
        self.assertEqual(st["head"]["podIP"], head[0]["status"]["podIP"])
        self.assertEqual(st["head"]["serviceIP"], head[0]["status"]["podIP"])
        self.assertEqual(st["head"]["serviceName"], "%s-head-svc" % self.name)
        # Every pod: Ready through the agent's gate, both containers ready.
        for p in self.lc.pods(NS, self.name):
            self.assertTrue(pod_ready(p), p["metadata"]["name"])
            gate = cond(p, "ray.io/agent-ready")
            self.assertIsNotNone(gate, p["metadata"]["name"])
            self.assertEqual(gate["status"], "True")
            self.assertEqual(gate["reason"], "AgentReady")
            self.assertEqual(p["spec"]["readinessGates"], [{"conditionType": "ray.io/agent-ready"}])
            names = [c["name"] for c in p["spec"]["containers"]]
            self.assertIn("raywarden-agent", names)
            self.assertTrue(all(cs["ready"] for cs in p["status"]["containerStatuses"]))
        # kubectl's printer columns show the state.
        out = self.lc.kubectl("get", "rayclusters", self.name)
        self.assertIn("ready", out)
        # The agent key Secret exists, owned by the cluster; the hub counts the agents.
        sec = self.lc.get("/api/v1/namespaces/%s/secrets/%s-raywarden-key" % (NS, self.name))
        self.assertEqual(sec["metadata"]["ownerReferences"][0]["uid"], rc["metadata"]["uid"])
        self.assertEqual(len(sec["data"]["key"]), 88)  # base64 of 64 hex digits
        m = wait_for(lambda: (lambda m: m if m.get("raywarden_agents_connected") == len(self.lc.pods(NS, self.name))
                              else None)(self.lc.metrics()), 15, 0.2, "agents connected in metrics")
        self.assertEqual(m['kuberay_cluster_info{name="%s",namespace="%s",uid="%s",owner_kind="None"}'
                           % (self.name, NS, rc["metadata"]["uid"])], 1)
        self.assertEqual(m['kuberay_cluster_condition_provisioned{name="%s",namespace="%s",uid="%s",condition="true"}'
                           % (self.name, NS, rc["metadata"]["uid"])], 1)
        # Events as KubeRay's.
        reasons = {e["reason"] for e in self.lc.events(NS, self.name)}
        self.assertTrue({"CreatedHeadPod", "CreatedWorkerPod", "CreatedService"} <= reasons, reasons)

    def test_2_objects_match_golden(self):
        golden_path = os.path.join(GOLDEN, os.path.basename(self.sample).replace(".yaml", ".json"))
        if self.name != "raycluster-kuberay" or not os.path.exists(golden_path):
            self.skipTest("no golden file for %s" % self.sample)
        rc = self.ready()
        uid = rc["metadata"]["uid"]
        # The API server's ServiceAccount admission adds the token volume: not the builders'.
        head = without_token_volume(self.lc.pods(NS, self.name, "head")[0])
        worker = without_token_volume(self.lc.pods(NS, self.name, "worker")[0])
        svc = self.lc.get("/api/v1/namespaces/%s/services/%s-head-svc" % (NS, self.name))
        agent = [c for c in head["spec"]["containers"] if c["name"] == "raywarden-agent"][0]
        version = head["metadata"]["annotations"]["ray.io/kuberay-version"]
        self.assertTrue(version.startswith("raywarden-"), version)
        self.assertTrue(agent["image"].startswith("raywarden/raywarden-agent:"), agent["image"])
        with open(golden_path) as f:
            text = f.read()
        text = (text.replace(GOLDEN_UID, uid).replace("raywarden-test", version)
                .replace("raywarden/raywarden-agent:test", agent["image"])
                .replace(GOLDEN_AGENT_URL, self.lc.controller()["agent_url"]))
        golden = json.loads(text)
        # The spec hash is computed from the stored spec (with the CRD's defaults).
        for obj in (golden["headPod"], head):
            h = obj["metadata"]["annotations"].pop("ray.io/upgrade-strategy-recreate-hash")
            self.assertRegex(h, r"^[0-9A-V]{32}$")
        diffs = contained(golden["headPod"], head, "headPod")
        diffs += contained(golden["workerPods"][0], worker, "workerPod")
        diffs += contained(golden["headService"], svc, "headService")
        self.assertEqual(diffs, [], "\n".join(diffs))
        # What KubeRay's objects have beyond the builders: name from generateName, owner uid.
        self.assertTrue(re.match(r"^%s-head-[a-z0-9]{5}$" % self.name, head["metadata"]["name"]))
        self.assertTrue(re.match(r"^%s-workergroup-worker-[a-z0-9]{5}$" % self.name, worker["metadata"]["name"]))
        self.assertEqual(svc["spec"]["clusterIP"], "None")
        self.assertEqual(svc["spec"]["selector"], svc["metadata"]["labels"])  # KubeRay: selector = labels
        self.assertEqual(svc["spec"]["selector"]["ray.io/node-type"], "head")

    def test_3_killed_raylet_makes_pod_not_ready_fast(self):
        self.ready()
        worker = self.lc.pods(NS, self.name, "worker")[0]
        name, ip = worker["metadata"]["name"], host_ip(worker["status"]["podIP"])
        t0 = time.monotonic()
        self.lc.raysim_fault(ip, "raylet", "kill")

        def not_ready():
            p = self.lc.get_or_none("/api/v1/namespaces/%s/pods/%s" % (NS, name))
            return p if p and not pod_ready(p) else None
        p = wait_for(not_ready, 5, 0.01, "worker %s NotReady after the raylet was killed" % name)
        took = time.monotonic() - t0
        print("raylet killed -> pod Ready=False in %.0f ms" % (took * 1000))
        self.assertLess(took, 1.0)
        gate = cond(p, "ray.io/agent-ready")
        # The gate follows the agent's verdict, with its reason.
        gate = wait_for(lambda: (lambda g: g if g and g["status"] == "False" else None)(
            cond(self.lc.get("/api/v1/namespaces/%s/pods/%s" % (NS, name)), "ray.io/agent-ready")), 5, 0.02,
            "gate False")
        self.assertEqual(gate["reason"], "AgentNotReady")
        self.assertIn("raylet", gate["message"])
        # The status follows: fewer ready workers.
        wait_for(lambda: (self.lc.raycluster(NS, self.name)["status"].get("readyWorkerReplicas", 0)
                          < self.lc.raycluster(NS, self.name)["status"]["desiredWorkerReplicas"]), 10, 0.1,
                 "readyWorkerReplicas to drop")

    def test_4_delete_removes_everything(self):
        rc = self.lc.raycluster(NS, self.name)
        self.assertIsNotNone(rc)
        self.lc.kubectl("delete", "raycluster", self.name, "--wait=false")
        self.lc.wait_gone(NS, self.name, 60)
        wait_for(lambda: not self.lc.services(NS, "ray.io/cluster=%s" % self.name), 30, 0.2, "services gone")
        wait_for(lambda: self.lc.get_or_none("/api/v1/namespaces/%s/secrets/%s-raywarden-key" % (NS, self.name))
                 is None, 30, 0.2, "key Secret gone")
        # The controller forgets the cluster (metrics series removed).
        wait_for(lambda: not any(k.startswith("kuberay_cluster_info{") and rc["metadata"]["uid"] in k
                                 for k in self.lc.metrics()), 10, 0.2, "kuberay_cluster_info removed")

    def test_5_namespace_deleted_with_its_cluster(self):
        # The namespace controller deletes the pods first (OrderedNamespaceDeletion) and the
        # RayCluster after them, so the controller sees its pods go and tries to create them
        # again; the API server refuses every create there (403, cause NamespaceTerminating).
        # That is neither an RBAC refusal (the class's tearDown checks) nor a reconcile error,
        # and no Event is written about it.
        ns = "doomed"
        self.lc.kubectl("create", "namespace", ns)
        self.lc.apply(self.sample, ns)
        self.lc.wait_cluster_ready(ns, self.name, timeout=90)
        before = self.lc.metrics()
        self.lc.kubectl("delete", "namespace", ns, "--wait=false")
        wait_for(lambda: self.lc.get_or_none("/api/v1/namespaces/" + ns) is None, 90, 0.2,
                 "namespace %s gone" % ns)
        after = self.lc.metrics()

        def grew(key):
            return after.get(key, 0) - before.get(key, 0)
        self.assertGreater(grew('raywarden_api_namespace_terminating_total{verb="create"}'), 0,
                           "no create was refused: the scenario did not happen")
        # Events of what still happens there (a pod deleted, an agent gone silent) are refused
        # too; the recorder counts them as dropped, not failed.
        self.assertEqual(grew('raywarden_events_total{type="",result="failed"}'), 0,
                         "Event writes refused in the namespace being deleted counted as failed")
        log = self.lc.controller_log().splitlines()
        self.assertEqual([ln for ln in log if "being terminated" in ln and " INFO " not in ln
                          and " DEBUG " not in ln], [], "refusals logged above info")
        # A reconcile's first failure is logged as a warning. Pods the namespace controller
        # stopped can still fail one ("deleted unhealthy worker pods", as KubeRay); a refusal
        # never does.
        failures = [ln for ln in log if " WARN  controller raycluster: %s/%s: " % (ns, self.name) in ln]
        self.assertLessEqual(grew('controller_runtime_reconcile_errors_total{controller="raycluster"}'),
                             len(failures), failures)


if __name__ == "__main__":
    unittest.main()

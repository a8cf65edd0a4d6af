"""End to end: every KubeRay RayCluster sample of shared/corpus/kuberay-samples applied
unchanged (`kubectl apply -f`) to the local cluster with raywarden-controller.

For each sample, one after the other (two of them ship a ConfigMap with the same name):

- the RayCluster reaches status.state ready, every pod is Running and Ready, and its
  ray.io/agent-ready readiness gate is True with reason AgentReady (set from the agent's
  reports), and the hub counts one connected agent per pod;
- the live objects the controller created (head pod, worker pods, head service, and
  for the autoscaler sample the ServiceAccount, Role and RoleBinding) equal the
  builders' golden output (tests/unit/golden/<sample>.json) field by field. Both ways:
  every golden field is in the live object with the same value, and every live field
  the golden file lacks is either a runtime field (generated name suffix, uid,
  resourceVersion, timestamps, IPs, node name, status) or an API-server default with
  its Kubernetes default value;
- sample-specific checks: the autoscaler container runs the simulator's
  `ray kuberay-autoscaler` stand-in (up, ready, never restarted, logging that the head
  is ready and the RayCluster it read); the custom head service has the sample's name,
  type, labels and port and carries the dashboard on its cluster IP; the external-Redis
  cluster keeps its GCS tables in the sample's Redis under RAY<uid>@.

Time to ready is printed per sample, and a summary at the end. Skipped with a message
when shared/corpus is absent. See docs/controller.md, "Testing against the local cluster".
"""

import json
import os
import re
import sys
import time
import unittest
import urllib.request

from clusterlib import CORPUS, GOLDEN, LocalClusterCase, cond, pod_ready, wait_for, without_token_volume
from raysim.gcs import GcsClient, GcsError
from raysim.resp import Redis
from kubesim.realcp import host_ip

NS = "default"  # the golden files are built for the namespace the API server defaults to
GOLDEN_UID = "6f0c8d9e-1b2a-4c3d-8e4f-000000000001"
GOLDEN_AGENT_URL = "tcp://raywarden-controller.raywarden-system.svc:8478"
GOLDEN_AGENT_IMAGE = "raywarden/raywarden-agent:test"
GOLDEN_VERSION = "raywarden-test"
HASH_ANN = "ray.io/upgrade-strategy-recreate-hash"
READY_TIMEOUT = 90
# The autoscaler stand-in (tests/sim/raysim/autoscaler.py) logs the RayCluster it read
# after its first successful update. From the moment the head is up that takes at most:
# the rest of a head-check backoff (5 s) and one check (two GCS calls, 3 s timeout each),
# then an update (the API read, 5 s timeout on each of connect, TLS handshake, request,
# answer head and body; a GCS call, 3 s), and, if that one timed out under load, the
# next update one interval (5 s) later: 5 + 6 + 28 + 5 + 28 = 72 s. (20 s covered only
# the fast path: on a loaded two-core machine one update was seen to take over 18 s.)
AUTOSCALER_LOG_S = 75

# Runtime fields: their values come from the API server, the scheduler or the kubelet
# at run time, so any value is accepted where the golden file has none.
RUNTIME = [
    r"/metadata/(name|uid|resourceVersion|creationTimestamp|managedFields|generation|selfLink)",
    r"/status",
    r"/spec/nodeName",
    r"/spec/clusterIPs?",  # allocated by the API server
    r"/spec/ports\[\]/nodePort",  # allocated for LoadBalancer/NodePort services
]

# API-server defaults (pkg/apis/core/v1/defaults.go, rbac defaults): accepted only with
# the value Kubernetes fills in when the field is left out.
DEFAULTS = {
    r"/spec/restartPolicy": "Always",
    r"/spec/dnsPolicy": "ClusterFirst",
    r"/spec/schedulerName": "default-scheduler",
    r"/spec/securityContext": {},
    r"/spec/terminationGracePeriodSeconds": 30,
    r"/spec/enableServiceLinks": True,
    r"/spec/priority": 0,
    r"/spec/preemptionPolicy": "PreemptLowerPriority",
    r"/spec/serviceAccountName": "default",
    r"/spec/serviceAccount": None,  # the deprecated alias, checked against serviceAccountName
    r"/spec/tolerations": None,  # the DefaultTolerationSeconds admission plugin, checked below
    r"/spec/(initContainers|containers)\[\]/terminationMessagePath": "/dev/termination-log",
    r"/spec/(initContainers|containers)\[\]/terminationMessagePolicy": "File",
    r"/spec/(initContainers|containers)\[\]/imagePullPolicy": "IfNotPresent",  # image with a tag
    r"/spec/(initContainers|containers)\[\]/resources": {},
    r"/spec/(initContainers|containers)\[\]/ports\[\]/protocol": "TCP",
    r"/spec/(initContainers|containers)\[\]/env\[\]/valueFrom/fieldRef/apiVersion": "v1",
    r"/spec/(initContainers|containers)\[\]/(readiness|liveness|startup)Probe/timeoutSeconds": 1,
    r"/spec/(initContainers|containers)\[\]/(readiness|liveness|startup)Probe/periodSeconds": 10,
    r"/spec/(initContainers|containers)\[\]/(readiness|liveness|startup)Probe/successThreshold": 1,
    r"/spec/(initContainers|containers)\[\]/(readiness|liveness|startup)Probe/failureThreshold": 3,
    r"/spec/(initContainers|containers)\[\]/(readiness|liveness|startup)Probe/httpGet/scheme": "HTTP",
    r"/spec/volumes\[\]/(configMap|secret)/defaultMode": 420,
    # Services.
    r"/spec/type": "ClusterIP",
    r"/spec/sessionAffinity": "None",
    r"/spec/ipFamilies": ["IPv4"],
    r"/spec/ipFamilyPolicy": "SingleStack",
    r"/spec/internalTrafficPolicy": "Cluster",
    r"/spec/externalTrafficPolicy": "Cluster",  # LoadBalancer and NodePort only
    r"/spec/allocateLoadBalancerNodePorts": True,  # LoadBalancer only
    r"/spec/ports\[\]/protocol": "TCP",
    r"/spec/ports\[\]/targetPort": None,  # = port, checked below
}


def norm(path):
    return re.sub(r"\[\d+\]", "[]", path)


def allowed_extra(path, value, parent):
    """None when a live field absent from the golden file is acceptable, else why not.
    path starts with the object's label (/headPod/spec/...), which is not matched."""
    parts = path.split("/", 2)
    p = "/" + norm(parts[2]) if len(parts) > 2 else path
    for pat in RUNTIME:
        if re.fullmatch(pat + r"(/.*)?", p):
            return None
    for pat, want in DEFAULTS.items():
        if not re.fullmatch(pat, p):
            continue
        key = p.rsplit("/", 1)[-1]
        if key == "targetPort":
            return None if value == parent.get("port") else "targetPort %r differs from port" % value
        if key == "serviceAccount":
            return None if value == parent.get("serviceAccountName") else "serviceAccount %r" % value
        if key == "tolerations":
            ok = all(t.get("effect") == "NoExecute" and t.get("operator") == "Exists" and
                     t.get("key", "").startswith("node.kubernetes.io/") for t in value)
            return None if ok else "unexpected tolerations %r" % value
        return None if value == want else "%r is not the default %r" % (value, want)
    return "not in the golden output"


def diff(golden, live, path="", accepted=None):
    """Field-by-field differences: golden fields missing or different in live, and live
    fields that are neither in the golden object, runtime fields, nor defaults. The
    accepted live-only fields are added to the set `accepted` (normalized paths)."""
    if isinstance(golden, dict):
        if not isinstance(live, dict):
            return ["%s: %r is not an object" % (path, live)]
        out = []
        for k, v in golden.items():
            if k not in live:
                out.append("%s/%s: missing (golden %s)" % (path, k, json.dumps(v)[:200]))
            else:
                out += diff(v, live[k], "%s/%s" % (path, k), accepted)
        for k, v in live.items():
            if k not in golden:
                why = allowed_extra("%s/%s" % (path, k), v, live)
                if why:
                    out.append("%s/%s: extra %s (%s)" % (path, k, json.dumps(v)[:200], why))
                elif accepted is not None:
                    accepted.add(re.sub(r"^/[^/]*", "", norm("%s/%s" % (path, k))))
        return out
    if isinstance(golden, list):
        if not isinstance(live, list) or len(live) != len(golden):
            return ["%s: %d items expected, got %s" % (path, len(golden), json.dumps(live)[:400])]
        out = []
        for i, (g, l) in enumerate(zip(golden, live)):
            out += diff(g, l, "%s[%d]" % (path, i), accepted)
        return out
    return [] if golden == live else ["%s: golden %r, live %r" % (path, golden, live)]


SAMPLES = [
    # (file, RayCluster name)
    ("ray-cluster.sample.yaml", "raycluster-kuberay"),
    ("ray-cluster.custom-head-service.yaml", "custom-head-svc"),
    ("ray-cluster.autoscaler.yaml", "raycluster-autoscaler"),
    ("ray-cluster.external-redis.yaml", "raycluster-external-redis"),
]
HOSTS = "/etc/hosts"


def hosts_blocks():
    """{tag: set of names} of the local clusters' marked blocks in /etc/hosts."""
    blocks = {}
    tag = None
    try:
        with open(HOSTS) as f:
            lines = f.read().splitlines()
    except OSError:
        return blocks
    for line in lines:
        if line.startswith("# BEGIN kubesim "):
            tag = line[len("# BEGIN kubesim "):]
            blocks.setdefault(tag, set())
        elif line.startswith("# END kubesim "):
            tag = None
        elif tag is not None:
            blocks[tag].update(line.split()[1:])
    return blocks


def foreign_names(own_tag, names=None):
    """{name: tag} for the names (default: those of this cluster's block) that another
    local cluster's block in /etc/hosts also resolves. Every simulated cluster on the
    machine keeps a marked block in the host's /etc/hosts; pods see their own cluster's
    hosts file, but host processes (this test, the controller of `local-cluster up`)
    take the first match. A failing test lists such shared names in its diagnostics."""
    blocks = hosts_blocks()
    if names is None:
        names = blocks.get(own_tag, set())
    return {n: t for t, ns in blocks.items() if t != own_tag for n in ns if n in names}


class RayClusterSamples(LocalClusterCase):
    # A short Redis-cleanup deadline keeps a slow teardown of the FT sample bounded.
    CONTROLLER_ARGS = ("--gcs-ft-cleanup-deadline=20s",)
    results = {}

    @classmethod
    def prerequisites(cls):
        why = super().prerequisites()
        if not why and not os.path.isdir(CORPUS):
            why = "shared/corpus absent (%s): the KubeRay samples cannot be applied" % CORPUS
        return why

    @classmethod
    def tearDownClass(cls):
        print("\nRayCluster samples (kubectl apply -> status ready, every pod Ready through the agent gate):",
              file=sys.stderr)
        for f, _ in SAMPLES:
            r = cls.results.get(f)
            if r:
                print("  %-40s ready in %6.2f s, %d pod(s), golden differences: %s" % (
                    f, r["ready_s"], r["pods"], r.get("diffs", "not compared")), file=sys.stderr)
        super().tearDownClass()

    # ------------------------------------------------------------------ helpers

    def sample_path(self, fname):
        p = os.path.join(CORPUS, fname)
        if not os.path.exists(p):
            self.skipTest("%s not in the corpus" % p)
        return p

    def diagnostics(self, name):
        out = []
        for p in self.lc.pods(NS, name, include_deleting=True):
            st = p.get("status") or {}
            out.append("%s phase=%s conds=%s containers=%s" % (
                p["metadata"]["name"], st.get("phase"),
                [(c["type"], c["status"], c.get("reason")) for c in st.get("conditions") or []],
                [(c["name"], c.get("ready"), c.get("restartCount"), list((c.get("state") or {}).keys()))
                 for c in st.get("containerStatuses") or []]))
        rc = self.lc.raycluster(NS, name)
        out.append("status: %s" % json.dumps((rc or {}).get("status"))[:1500])
        other = foreign_names(self.lc.state)
        if other:
            out.append("names also resolved by other local clusters: %s" % other)
        return "\n".join(out)

    def apply_and_wait(self, fname, name):
        path = self.sample_path(fname)
        t0 = time.monotonic()
        self.lc.apply(path, NS)
        # Removed after the test whatever its outcome, so the next sample starts clean.
        self.addCleanup(self.remove, fname, name)
        try:
            rc = self.lc.wait_cluster_ready(NS, name, timeout=READY_TIMEOUT)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.diagnostics(name)))
        took = time.monotonic() - t0
        pods = self.lc.pods(NS, name)
        self.results[fname] = {"ready_s": took, "pods": len(pods)}
        print("%s: ready %.2f s after kubectl apply (%d pods)" % (fname, took, len(pods)), file=sys.stderr)
        return rc, pods

    def check_ready_with_agents(self, rc, pods):
        st = rc["status"]
        self.assertEqual(st["state"], "ready")
        self.assertEqual(st["observedGeneration"], rc["metadata"]["generation"])
        self.assertEqual(st.get("readyWorkerReplicas", 0), st.get("desiredWorkerReplicas", 0))
        conds = {c["type"]: c for c in st.get("conditions") or []}
        self.assertEqual(conds["HeadPodReady"]["status"], "True")
        self.assertEqual(conds["RayClusterProvisioned"]["status"], "True")
        for p in pods:
            n = p["metadata"]["name"]
            self.assertEqual(p["status"]["phase"], "Running", n)
            self.assertTrue(pod_ready(p), n)
            self.assertEqual(p["spec"]["readinessGates"], [{"conditionType": "ray.io/agent-ready"}], n)
            gate = cond(p, "ray.io/agent-ready")
            self.assertIsNotNone(gate, n)
            self.assertEqual((gate["status"], gate["reason"]), ("True", "AgentReady"), n)
            for cs in p["status"]["containerStatuses"] + p["status"].get("initContainerStatuses", []):
                what = "%s/%s" % (n, cs["name"])
                # Nothing crashed on the way (the agent is the sanitizer build under ctest).
                self.assertEqual(cs.get("restartCount", 0), 0, what)
                if cs in p["status"].get("initContainerStatuses", []):
                    self.assertEqual((cs["state"].get("terminated") or {}).get("exitCode"), 0, what)
                else:
                    self.assertTrue(cs["ready"], what)
                    self.assertIn("running", cs["state"], what)
        # A running Ray cluster: the head's GCS lists every pod's Ray node, alive.
        head = [p for p in pods if p["metadata"]["labels"]["ray.io/node-type"] == "head"][0]
        want_ips = sorted(host_ip(p["status"]["podIP"]) for p in pods)

        def nodes():
            try:
                ns = GcsClient("%s:6379" % host_ip(head["status"]["podIP"])).call("get_all_node_info", {}, timeout=3.0)
            except GcsError:
                return None
            ips = sorted(n["node_ip"] for n in ns if n.get("state", "ALIVE") == "ALIVE")
            return ips if ips == want_ips else None
        wait_for(nodes, 15, 0.2, "Ray nodes %s alive in the head's GCS" % want_ips)
        # One connected agent per pod (the earlier samples' clusters are gone by now).
        wait_for(lambda: self.lc.metrics().get("raywarden_agents_connected") == len(pods), 15, 0.2,
                 "raywarden_agents_connected == %d" % len(pods))

    def golden_for(self, fname, rc, head):
        gpath = os.path.join(GOLDEN, fname.replace(".yaml", ".json"))
        self.assertTrue(os.path.exists(gpath), gpath)
        agent = [c for c in head["spec"]["containers"] if c["name"] == "raywarden-agent"][0]
        version = head["metadata"]["annotations"]["ray.io/kuberay-version"]
        self.assertTrue(version.startswith("raywarden-"), version)
        self.assertTrue(agent["image"].startswith("raywarden/raywarden-agent:"), agent["image"])
        with open(gpath) as f:
            text = f.read()
        # The values the builders got as test inputs, replaced by this run's.
        text = (text.replace(GOLDEN_UID, rc["metadata"]["uid"]).replace(GOLDEN_VERSION, version)
                .replace(GOLDEN_AGENT_IMAGE, agent["image"])
                .replace(GOLDEN_AGENT_URL, self.lc.controller()["agent_url"]))
        return json.loads(text)

    def compare_golden(self, fname, name, rc):
        """Live objects against the golden file; returns the list of differences."""
        head = self.lc.pods(NS, name, "head")[0]
        golden = self.golden_for(fname, rc, head)
        diffs = []
        # The spec hash: the golden file hashes the spec as written, the controller the
        # stored one (with the CRD's defaults), so only the format can be compared.
        for obj in [golden["headPod"], head] + golden["workerPods"]:
            h = obj["metadata"].get("annotations", {}).get(HASH_ANN)
            if h is not None:
                self.assertRegex(h, r"^[0-9A-V]{32}$")
        # The API server's ServiceAccount admission adds the token volume: not the builders'.
        live_head = without_token_volume(head)
        for obj in (golden["headPod"], live_head):
            obj["metadata"]["annotations"].pop(HASH_ANN, None)
        accepted = set()
        diffs += diff(golden["headPod"], live_head, "/headPod", accepted)
        self.assertRegex(head["metadata"]["name"], "^%s[a-z0-9]{5}$" % re.escape(golden["headPod"]["metadata"]
                                                                               ["generateName"]))
        # Worker pods: every live worker against its group's golden pod (replica index 0).
        by_group = {g["metadata"]["labels"]["ray.io/group"]: g for g in golden["workerPods"]}
        workers = self.lc.pods(NS, name, "worker")
        self.assertEqual(len(workers), golden["plan"]["desiredWorkers"])
        for w in workers:
            g = json.loads(json.dumps(by_group[w["metadata"]["labels"]["ray.io/group"]]))
            lw = without_token_volume(w)
            idx = lw["metadata"]["labels"].get("ray.io/worker-group-replica-index")
            if idx is not None and "ray.io/worker-group-replica-index" in g["metadata"]["labels"]:
                self.assertRegex(idx, r"^\d+$")
                g["metadata"]["labels"]["ray.io/worker-group-replica-index"] = idx
            for obj in (g, lw):
                obj["metadata"].get("annotations", {}).pop(HASH_ANN, None)
            diffs += diff(g, lw, "/workerPod(%s)" % w["metadata"]["name"], accepted)
            self.assertRegex(w["metadata"]["name"], "^%s[a-z0-9]{5}$" % re.escape(g["metadata"]["generateName"]))
        # Services and RBAC objects, by the golden names.
        kinds = {"headService": "/api/v1/namespaces/%s/services/%s",
                 "serveService": "/api/v1/namespaces/%s/services/%s",
                 "headlessService": "/api/v1/namespaces/%s/services/%s",
                 "serviceAccount": "/api/v1/namespaces/%s/serviceaccounts/%s",
                 "role": "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles/%s",
                 "roleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings/%s"}
        for key, tmpl in kinds.items():
            if key not in golden:
                continue
            live = self.lc.get_or_none(tmpl % (NS, golden[key]["metadata"]["name"]))
            if live is None:
                diffs.append("/%s: %s not created" % (key, golden[key]["metadata"]["name"]))
                continue
            diffs += diff(golden[key], live, "/" + key, accepted)
        # Nothing beyond the golden set carries the cluster's label: no stray service.
        svc_names = sorted(s["metadata"]["name"] for s in self.lc.services(NS, "ray.io/cluster=%s" % name))
        want = sorted(golden[k]["metadata"]["name"] for k in ("headService", "serveService", "headlessService")
                      if k in golden)
        if svc_names != want:
            diffs.append("services of the cluster: %s, golden %s" % (svc_names, want))
        self.results[fname]["diffs"] = len(diffs)
        if os.environ.get("RW_SAMPLES_VERBOSE"):
            print("%s: live-only fields accepted (runtime or API default): %s" % (fname, " ".join(sorted(accepted))),
                  file=sys.stderr)
        for d in diffs:
            print("  %s: %s" % (fname, d), file=sys.stderr)
        return golden, diffs

    def remove(self, fname, name):
        """Delete the RayCluster first (the FT one still needs its Redis for the cleanup),
        then the sample's other objects, and wait until the cluster's pods are gone."""
        t0 = time.monotonic()
        self.lc.kubectl("delete", "-n", NS, "raycluster", name, "--wait=false")
        self.lc.wait_gone(NS, name, 60)
        self.lc.kubectl("delete", "-n", NS, "-f", os.path.join(CORPUS, fname), "--ignore-not-found", "--wait=false")
        wait_for(lambda: not self.lc.services(NS, "ray.io/cluster=%s" % name), 30, 0.2, "services of %s gone" % name)
        print("%s: deleted in %.2f s" % (fname, time.monotonic() - t0), file=sys.stderr)

    def container_log(self, pod, container):
        return self.lc.kubectl("logs", "-n", NS, pod, "-c", container, check=False)

    # ------------------------------------------------------------------ the samples

    def test_1_sample(self):
        fname, name = SAMPLES[0]
        rc, pods = self.apply_and_wait(fname, name)
        self.check_ready_with_agents(rc, pods)
        self.assertEqual(len(pods), 2)
        _, diffs = self.compare_golden(fname, name, rc)
        self.assertEqual(diffs, [], "\n".join(diffs))

    def test_2_custom_head_service(self):
        fname, name = SAMPLES[1]
        rc, pods = self.apply_and_wait(fname, name)
        self.check_ready_with_agents(rc, pods)
        self.assertEqual(len(pods), 1)
        _, diffs = self.compare_golden(fname, name, rc)
        svc = self.lc.get("/api/v1/namespaces/%s/services/custom-ray-head-service-name" % NS)
        self.assertEqual(svc["spec"]["type"], "LoadBalancer")
        self.assertEqual(svc["metadata"]["labels"]["custom-label"], "custom-ray-head-service-label")
        self.assertEqual(svc["metadata"]["annotations"]["custom-annotation"], "custom-ray-head-service-annotation")
        self.assertEqual(svc["spec"]["ports"][0]["port"], 12345)
        self.assertIsNone(self.lc.get_or_none("/api/v1/namespaces/%s/services/%s-head-svc" % (NS, name)))
        # Status names the custom service; it has a cluster IP, which is the serviceIP.
        st = rc["status"]
        self.assertEqual(st["head"]["serviceName"], "custom-ray-head-service-name")
        self.assertEqual(st["head"]["serviceIP"], svc["spec"]["clusterIP"])
        # The service works: the dashboard answers through its cluster IP (service proxy).
        ip = svc["spec"]["clusterIP"]

        def dashboard():
            try:
                with urllib.request.urlopen("http://%s:8265/api/version" % ip, timeout=3) as r:
                    return json.loads(r.read())
            except OSError:
                return None
        v = wait_for(dashboard, 15, 0.2, "dashboard through %s:8265" % ip)
        self.assertEqual(v.get("ray_version"), "2.52.0")
        self.assertEqual(diffs, [], "\n".join(diffs))

    def test_3_autoscaler(self):
        fname, name = SAMPLES[2]
        rc, pods = self.apply_and_wait(fname, name)
        self.check_ready_with_agents(rc, pods)
        self.assertEqual(len(pods), 1)  # replicas 0: the head only
        head = pods[0]
        self.assertEqual(head["spec"]["serviceAccountName"], name)
        cs = {c["name"]: c for c in head["status"]["containerStatuses"]}
        self.assertIn("autoscaler", cs)
        self.assertTrue(cs["autoscaler"]["ready"])
        self.assertEqual(cs["autoscaler"]["restartCount"], 0)
        # The stand-in waited for the GCS, then read the RayCluster through the API server
        # with the pod's service-account credentials, and stays up without scaling.
        want = "group small-group replicas=0 min=0 max=10"
        log = wait_for(lambda: (lambda t: t if want in t else None)(
            self.container_log(head["metadata"]["name"], "autoscaler")), AUTOSCALER_LOG_S, 0.5,
            "autoscaler log line %r" % want)
        self.assertIn("The Ray head is ready. Starting the autoscaler.", log)
        self.assertIn("RayCluster %s/%s" % (NS, name), log)
        _, diffs = self.compare_golden(fname, name, rc)
        self.assertEqual(diffs, [], "\n".join(diffs))
        # Still up and never restarted after the checks.
        p = self.lc.get("/api/v1/namespaces/%s/pods/%s" % (NS, head["metadata"]["name"]))
        cs = {c["name"]: c for c in p["status"]["containerStatuses"]}
        self.assertEqual(cs["autoscaler"]["restartCount"], 0)
        self.assertIn("running", cs["autoscaler"]["state"])

    def test_4_external_redis(self):
        fname, name = SAMPLES[3]
        rc, pods = self.apply_and_wait(fname, name)
        self.check_ready_with_agents(rc, pods)
        self.assertEqual(len(pods), 2)
        self.assertIn("ray.io/gcs-ft-redis-cleanup-finalizer", rc["metadata"].get("finalizers", []))
        _, diffs = self.compare_golden(fname, name, rc)
        # The GCS keeps its tables in the sample's Redis, under RAY<uid>@.
        redis_pod = wait_for(lambda: [p for p in self.lc.get("/api/v1/namespaces/%s/pods" % NS,
                                                               labelSelector="app=redis")["items"]
                                      if pod_ready(p)], 30, 0.2, "redis pod ready")[0]
        r = Redis(host_ip(redis_pod["status"]["podIP"]), 6379, password="5241590000000000")  # the sample's Secret
        prefix = "RAY%s@" % rc["metadata"]["uid"]
        try:
            # Both Ray nodes (head and worker) registered in the NODE table.
            wait_for(lambda: r.execute("HLEN", prefix + "NODE") == 2, 15, 0.2, "2 nodes in %sNODE (another "
                     "cluster's redis Service in /etc/hosts: %s)" % (prefix, foreign_names(self.lc.state, {"redis"})))
            keys = sorted(k.decode() for k in r.execute("KEYS", "*"))
        finally:
            r.close()
        self.assertEqual([k for k in keys if not k.startswith(prefix)], [], "every key is the cluster's")
        self.assertEqual(diffs, [], "\n".join(diffs))


if __name__ == "__main__":
    unittest.main()

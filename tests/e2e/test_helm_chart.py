"""The Helm chart manifests/charts/raywarden, with the real helm (tests/sim/upstream/build) on the
real Kubernetes control plane (`local-cluster up --control-plane real --operator none`):

- the chart's copies of the generated manifests are current (crds/ byte-equal to manifests/crds,
  files/rbac to manifests/rbac and manifests/batch-scheduler: manifests/hack/sync_chart.py --check);
- `helm lint --strict` is clean, with the default values and with the optional parts switched on;
- with the default values it renders what `kubectl kustomize manifests/` renders, object for object
  (helm's own labels aside; the Namespace is helm's --create-namespace, the key Secret the chart's),
  with the replicas and strategy taken from the kustomize Deployment so the comparison holds
  whatever manifests/ says about them;
- every ClusterRole and Role it renders grants exactly the rules `raywarden-controller --print-rbac`
  (and =leader-election, =batch-scheduler) prints;
- the values: KubeRay's names map onto raywarden's flags, RBAC follows watchNamespace and
  singleNamespaceInstall, the ServiceMonitor exists only when enabled, the schema refuses bad values;
- what it renders (CRDs included) passes the real API server's validation (server-side dry run);
- helm install, upgrade (a changed flag and resources roll the Deployment, the generated master key
  survives) and uninstall (the CRDs stay, as with every chart's crds/) on the real control plane;
- the agent flags it renders (agent.resources, agent.readinessPeriodSeconds) shape the Ray pods of a
  raywarden-controller started with them.

The kubelet simulator runs the chart's controller image as build/bin/raywarden-controller
(kubesim/kubelet_env.py image_kind), so install and upgrade wait for `kubectl rollout status` as
docs/install.md tells users to: both replicas Ready under the restricted Pod Security level.
Skipped, saying why, when helm, kubectl or the upstream binaries are not built.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from clusterlib import CONTROLLER_BIN, SRC, LocalCluster, wait_for
from kubesim import upstream

CHART = os.path.join(SRC, "manifests", "charts", "raywarden")
MANIFESTS = os.path.join(SRC, "manifests")
NS = "raywarden-system"
HELM_LABELS = ("app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
               "helm.sh/chart")
KEY_SECRET = "raywarden-agent-master-key"
# A kuberay-operator values file as KubeRay users write them (names from its chart's values.yaml).
KUBERAY_VALUES = """
image:
  repository: registry.example.com/raywarden/raywarden-controller
  tag: "9.9.9"
leaderElectionEnabled: false
watchNamespace: [team-a, team-b]
batchScheduler:
  enabled: true
featureGates:
- name: RayClusterStatusConditions
  enabled: true
useKubernetesProxy: false
crNamespacedRbacEnable: true
kubeClient:
  qps: 50
  burst: 80
reconcileConcurrency: 4
logging:
  stdoutEncoder: json
  fileEncoder: json
metrics:
  enabled: true
  serviceMonitor:
    enabled: true
    interval: 15s
    honorLabels: true
    selector: {release: prometheus}
resources:
  limits: {cpu: 200m, memory: 256Mi}
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Exists, effect: NoSchedule}]
env:
- name: ENABLE_INIT_CONTAINER_INJECTION
  value: "false"
"""


def skip_reason():
    if not shutil.which("kubectl"):
        return "kubectl not installed"
    return upstream.helm_skip_reason() or upstream.skip_reason()


def json_stream(text):
    """kubectl -o json prints one object, or a List for several."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        o, i = dec.raw_decode(text, i)
        out.extend(o["items"] if o.get("kind") == "List" else [o])
    return out


def key(o):
    return (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", ""))


def strip_helm_labels(o):
    """Drop what helm adds to every object its templates render (its labels) so the rest compares
    with kustomize's. The CRDs come verbatim from crds/ and keep theirs."""
    if o["kind"] == "CustomResourceDefinition":
        return o
    for meta in (o.get("metadata"), ((o.get("spec") or {}).get("template") or {}).get("metadata")):
        labels = (meta or {}).get("labels")
        for k in HELM_LABELS:
            (labels or {}).pop(k, None)
    return o


def rules_of(objs, kind, name):
    (o,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return o["rules"]


class ChartCopies(unittest.TestCase):
    """Needs neither helm nor a cluster."""

    def test_copies_current(self):
        r = subprocess.run([sys.executable, os.path.join(MANIFESTS, "hack", "sync_chart.py"), "--check"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(CHART, "crds"))), sorted(os.listdir(os.path.join(MANIFESTS, "crds"))))
        for f in os.listdir(os.path.join(MANIFESTS, "crds")):
            with open(os.path.join(MANIFESTS, "crds", f), "rb") as a, open(os.path.join(CHART, "crds", f), "rb") as b:
                self.assertEqual(a.read(), b.read(), f)


@unittest.skipIf(skip_reason(), skip_reason())
class HelmChart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        t0 = time.monotonic()
        cls.tmp = tempfile.mkdtemp(prefix="rw-helm-")
        cls.helm_bin = upstream.helm_binary()
        # No CRDs preinstalled: helm install puts in the chart's crds/ itself.
        empty = os.path.join(cls.tmp, "no-crds")
        os.makedirs(empty)
        old = os.environ.get("RW_SIM_CRD_DIR")
        os.environ["RW_SIM_CRD_DIR"] = empty
        try:
            cls.lc = LocalCluster.start(control_plane="real", operator="none", controller=False, timeout=180)
        finally:
            if old is None:
                os.environ.pop("RW_SIM_CRD_DIR", None)
            else:
                os.environ["RW_SIM_CRD_DIR"] = old
        cls.env = dict(os.environ, KUBECONFIG=cls.lc.kubeconfig,
                       HELM_CACHE_HOME=os.path.join(cls.tmp, "cache"), HELM_CONFIG_HOME=os.path.join(cls.tmp, "config"),
                       HELM_DATA_HOME=os.path.join(cls.tmp, "data"), KUBECACHEDIR=os.path.join(cls.tmp, "kubecache"))
        print("control plane up in %.1fs" % (time.monotonic() - t0), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        cls.lc.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- tools -----------------------------------------------------------------------------------

    def run_tool(self, argv, stdin=None, check=True, timeout=120):
        r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                           timeout=timeout, text=True)
        if check and r.returncode != 0:
            self.fail("%s: exit %d\n%s%s" % (" ".join(argv[:4]), r.returncode, r.stdout, r.stderr[-3000:]))
        return r

    def helm(self, *args, **kw):
        return self.run_tool([self.helm_bin] + list(args), **kw)

    def kubectl(self, *args, **kw):
        return self.run_tool(["kubectl"] + list(args), **kw)

    def template(self, *args, values=None, crds=False):
        argv = ["template", "raywarden", CHART, "-n", NS] + (["--include-crds"] if crds else []) + list(args)
        if values is not None:
            path = os.path.join(self.tmp, "values-%d.yaml" % time.monotonic_ns())
            with open(path, "w") as f:
                f.write(values)
            argv += ["-f", path]
        return self.helm(*argv).stdout

    def parse(self, text):
        """YAML to JSON objects through kubectl (client-side: nothing is sent)."""
        return json_stream(self.kubectl("create", "--dry-run=client", "-o", "json", "--validate=false", "-f", "-",
                                        stdin=text).stdout)

    def objects(self, *args, values=None, crds=False):
        return self.parse(self.template(*args, values=values, crds=crds))

    def by_key(self, objs):
        return {key(o): o for o in objs}

    def deployment(self, objs):
        (d,) = [o for o in objs if o["kind"] == "Deployment"]
        return d

    def container(self, objs):
        (c,) = self.deployment(objs)["spec"]["template"]["spec"]["containers"]
        return c

    # -- offline ---------------------------------------------------------------------------------

    def test_1_lint(self):
        variants = ([], ["--set", "singleNamespaceInstall=true", "--set", "batchScheduler.name=scheduler-plugins"],
                    ["--set", "metrics.serviceMonitor.enabled=true", "--set", "agent.masterKey.existingSecret=mine",
                     "--set", "rbacEnable=false", "--set", "serviceAccount.create=false",
                     "--set", "fullnameOverride=rw", "--set", "rayService.drainSeconds=20"])
        for v in variants:
            r = self.helm("lint", "--strict", CHART, "-n", NS, *v)
            self.assertIn("1 chart(s) linted, 0 chart(s) failed", r.stdout, v)
            self.assertNotIn("[WARNING]", r.stdout, v)

    def test_2_equivalent_to_kustomize(self):
        self.check_equivalent(self.kubectl("kustomize", MANIFESTS).stdout)

    def test_2_webhook_equivalent_to_kustomize(self):
        """webhook.enabled renders what manifests/ with the manifests/webhook component does."""
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(MANIFESTS, os.path.join(tmp, "manifests"), ignore=shutil.ignore_patterns("charts"))
            overlay = os.path.join(tmp, "raywarden-webhook")
            os.makedirs(overlay)
            with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
                f.write("resources: [../manifests]\ncomponents: [../manifests/webhook]\n")
            text = self.kubectl("kustomize", overlay).stdout
        self.assertIn("kind: ValidatingWebhookConfiguration", text)
        self.check_equivalent(text, "--set", "webhook.enabled=true")

    def check_equivalent(self, kustomized, *chart_args):
        kust = self.parse(kustomized)
        kdep = self.deployment(kust)
        # Whatever manifests/ says about replicas and strategy, the chart has values for both.
        chart = self.objects("--set-json", "replicas=%s" % json.dumps(kdep["spec"]["replicas"]),
                             "--set-json", "strategy=%s" % json.dumps(kdep["spec"].get("strategy") or {}),
                             *chart_args, crds=True)
        k = self.by_key(kust)
        h = self.by_key(strip_helm_labels(o) for o in chart)
        # kustomize makes the namespace (with its Pod Security label); helm's --create-namespace does.
        self.assertEqual(k.pop(("Namespace", NS, ""))["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
                         "restricted")
        secret = h.pop(("Secret", KEY_SECRET, NS))
        raw = base64.b64decode(base64.b64decode(secret["data"]["key"]))
        self.assertEqual(len(raw), 32)  # 32 random bytes as base64 text, as docs/install.md makes it
        self.assertEqual(sorted(k), sorted(h))
        for kk in sorted(k):
            self.assertEqual(h[kk], k[kk], "chart and kustomize differ in %s" % (kk,))
        # The Deployment: the same args, ports, probes and security, spelled out for the reader.
        hc, kc = self.container(chart), self.container(kust)
        for field in ("args", "ports", "livenessProbe", "readinessProbe", "securityContext", "env", "image"):
            self.assertEqual(hc.get(field), kc.get(field), field)

    def test_2_rbac_is_print_rbac(self):
        expected = {}
        for which, path, kind, name in (
                ("cluster-role", "rbac/cluster_role.yaml", "ClusterRole", "raywarden-controller"),
                ("leader-election", "rbac/leader_election_role.yaml", "Role", "raywarden-leader-election"),
                ("batch-scheduler", "batch-scheduler/rbac.yaml", "ClusterRole", "raywarden-batch-scheduler")):
            with open(os.path.join(MANIFESTS, path)) as f:
                expected[which] = rules_of(self.parse(f.read()), kind, name)
            if os.path.exists(CONTROLLER_BIN):
                out = subprocess.run([CONTROLLER_BIN, "--print-rbac=" + which], capture_output=True, text=True,
                                     timeout=30).stdout
                self.assertEqual(rules_of(self.parse(out), kind, name), expected[which], which)
        dflt = self.objects()
        self.assertEqual(rules_of(dflt, "ClusterRole", "raywarden-controller"), expected["cluster-role"])
        self.assertEqual(rules_of(dflt, "Role", "raywarden-leader-election"), expected["leader-election"])
        self.assertFalse([o for o in dflt if o["metadata"]["name"] == "raywarden-batch-scheduler"])
        single = self.objects("--set", "singleNamespaceInstall=true", "--set", "batchScheduler.name=volcano")
        self.assertEqual(rules_of(single, "Role", "raywarden-controller"), expected["cluster-role"])
        self.assertEqual(rules_of(single, "ClusterRole", "raywarden-batch-scheduler"), expected["batch-scheduler"])
        self.assertFalse([o for o in single if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "raywarden-controller"])
        # The rendered text keeps the generated comment of every rule.
        text = self.template()
        self.assertIn("# Agent hub: sets the ray.io/agent-ready readiness-gate condition", text)

    def test_3_kuberay_values(self):
        # Parsed without the ServiceMonitor (its CRD is not installed here); its text is checked below.
        objs = self.objects("--set", "metrics.serviceMonitor.enabled=false", values=KUBERAY_VALUES)
        c = self.container(objs)
        self.assertEqual(c["image"], "registry.example.com/raywarden/raywarden-controller:9.9.9")
        for arg in ("--qps=50", "--burst=80", "--enable-leader-election=false", "--watch-namespace=team-a,team-b",
                    "--reconcile-concurrency=4", "--log-stdout-encoder=json", "--batch-scheduler=volcano"):
            self.assertIn(arg, c["args"])
        # Helm merges maps: KubeRay's limits-only resources keep the chart's requests.
        self.assertEqual(c["resources"], {"limits": {"cpu": "200m", "memory": "256Mi"},
                                          "requests": {"cpu": "100m", "memory": "64Mi"}})
        self.assertIn({"name": "ENABLE_INIT_CONTAINER_INJECTION", "value": "false"}, c["env"])
        pod = self.deployment(objs)["spec"]["template"]["spec"]
        self.assertEqual(pod["nodeSelector"], {"kubernetes.io/os": "linux"})
        self.assertEqual(pod["tolerations"][0]["key"], "dedicated")
        keys = set(self.by_key(objs))
        # watchNamespace: the ClusterRole bound per namespace, no ClusterRoleBinding; no Lease Role.
        self.assertLessEqual({("RoleBinding", "raywarden-controller", "team-a"),
                              ("RoleBinding", "raywarden-controller", "team-b"),
                              ("ClusterRole", "raywarden-batch-scheduler", "")}, keys)
        self.assertFalse({k for k in keys if k[:2] in (("ClusterRoleBinding", "raywarden-controller"),
                                                       ("Role", "raywarden-leader-election"))})
        # The ServiceMonitor (not parsed here: its CRD is not installed) only when enabled.
        text = self.template(values=KUBERAY_VALUES)
        self.assertIn("kind: ServiceMonitor", text)
        self.assertIn("release: prometheus", text)
        self.assertIn("interval: 15s", text)
        self.assertNotIn("monitoring.coreos.com", self.template())
        self.assertNotIn("monitoring.coreos.com", self.template("--set", "metrics.enabled=false",
                                                                "--set", "metrics.serviceMonitor.enabled=true"))

    def test_3_raywarden_values(self):
        objs = self.objects("--set", "agent.image=reg/agent:1", "--set", "agent.injection=false",
                            "--set", "agent.readinessGate=false", "--set", "rayService.drainSeconds=20",
                            "--set", "rayJob.defaultTTL=24h", "--set", "metrics.enabled=false",
                            "--set", "agent.masterKey.existingSecret=my-key",
                            "--set", "agent.masterKey.existingSecretKey=master", "--set", "fullnameOverride=rw",
                            "--set-json", 'extraArgs=["--agent-stale-after=30s"]',
                            "--set", "agent.resources.requests.cpu=20m", "--set", "agent.resources.limits.memory=128Mi",
                            "--set", "agent.readinessPeriodSeconds=5")
        c = self.container(objs)
        self.assertFalse([a for a in c["args"] if a.startswith(("--agent-memory-request", "--agent-cpu-limit"))])
        for arg in ("--agent-image=reg/agent:1", "--no-agent-injection", "--no-readiness-gate",
                    "--agent-cpu-request=20m", "--agent-memory-limit=128Mi", "--agent-readiness-period-seconds=5",
                    "--rayjob-default-ttl=24h", "--metrics-addr=0", "--agent-stale-after=30s",
                    "--agent-advertise-address=tcp://rw-controller.%s.svc:8478" % NS):
            self.assertIn(arg, c["args"])
        self.assertIn({"name": "RAYWARDEN_RAYSERVICE_DRAIN_SECONDS", "value": "20"}, c["env"])
        self.assertEqual([p["name"] for p in c["ports"]], ["health", "agent"])
        keys = set(self.by_key(objs))
        self.assertFalse([k for k in keys if k[0] == "Secret"])  # existingSecret: the chart makes none
        self.assertIn(("Service", "rw-controller", NS), keys)
        self.assertIn(("Role", "rw-leader-election", NS), keys)
        vol = self.deployment(objs)["spec"]["template"]["spec"]["volumes"][0]["secret"]
        self.assertEqual((vol["secretName"], vol["items"]), ("my-key", [{"key": "master", "path": "key"}]))
        # Bad values are refused by values.schema.json with the field's name.
        for bad, field in ((["--set", "replicas=two"], "replicas"),
                           (["--set", "batchScheduler.name=slurm"], "batchScheduler"),
                           (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
                           (["--set", "agent.imge=x"], "imge"),
                           (["--set", "agent.resources.limits.memory=lots"], "memory")):
            r = self.helm("template", "raywarden", CHART, "-n", NS, *bad, check=False)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn(field, r.stderr, bad)

    # -- on the real API server ---------------------------------------------------------------------

    def test_4_server_dry_run(self):
        self.kubectl("create", "namespace", "rw-dry")
        for args in ([], ["--set", "singleNamespaceInstall=true", "--set", "batchScheduler.name=volcano",
                          "--set", "fullnameOverride=rw"],
                     ["--set-json", 'watchNamespace=["default"]', "--set", "leaderElectionEnabled=false"]):
            text = self.helm("template", "raywarden", CHART, "-n", "rw-dry", "--include-crds", *args).stdout
            r = self.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=text, timeout=180)
            self.assertIn("deployment.apps/", r.stdout, args)
            self.assertIn("customresourcedefinition.apiextensions.k8s.io/rayjobs.ray.io", r.stdout, args)
            self.assertNotIn("Warning", r.stderr, args)

    def test_4_webhook_overlay_server_dry_run(self):
        """README's webhook overlay, written as README writes it, passes the real API server's
        validation (the webhook configurations and their Service included). Dry run: applied for
        real, the Service clientConfig would send the API server to a cluster IP this machine does
        not route (e2e test_webhooks serves the same configuration through a URL)."""
        # A server dry run creates nothing, so the namespace the objects go to must exist (helm
        # install below accepts an existing one).
        if self.kubectl("get", "namespace", NS, check=False).returncode != 0:
            self.kubectl("create", "namespace", NS)
        with tempfile.TemporaryDirectory() as tmp:
            overlay = os.path.join(tmp, "raywarden-webhook")
            os.makedirs(overlay)
            shutil.copytree(MANIFESTS, os.path.join(tmp, "manifests"), ignore=shutil.ignore_patterns("charts"))
            with open(os.path.join(tmp, "raywarden-webhook/kustomization.yaml"), "w") as f:
                f.write('resources: [../manifests]\ncomponents: [../manifests/webhook]\n')
            r = self.kubectl("apply", "--server-side", "--dry-run=server", "-k", overlay, timeout=180)
        self.assertIn("validatingwebhookconfiguration.admissionregistration.k8s.io/raywarden", r.stdout)
        self.assertIn("service/raywarden-webhook", r.stdout)
        self.assertNotIn("Warning", r.stderr)

    def test_5_install_upgrade_uninstall(self):
        t0 = time.monotonic()
        r = self.helm("install", "raywarden", CHART, "-n", NS, "--create-namespace", timeout=300)
        self.assertIn("STATUS: deployed", r.stdout)
        took_install = time.monotonic() - t0
        # As docs/install.md: the namespace gets the Pod Security level manifests/ gives it, and the
        # controller pod the upgrade makes below is admitted under it (the API server's PodSecurity
        # admission plugin is on by default). A pod it refuses would fail the same way:
        self.kubectl("label", "namespace", NS, "pod-security.kubernetes.io/enforce=restricted")
        r = self.kubectl("run", "privileged", "-n", NS, "--image=busybox", "--privileged", check=False)
        self.assertIn("violates PodSecurity", r.stderr)
        self.kubectl("wait", "--for", "condition=established", "--timeout=60s",
                     "crd/rayclusters.ray.io", "crd/rayjobs.ray.io", "crd/rayservices.ray.io")
        dep = self.get("deployment", "raywarden-controller")
        self.assertEqual(dep["metadata"]["generation"], 1)
        key1 = self.get("secret", KEY_SECRET)["data"]["key"]
        self.assertEqual(len(base64.b64decode(base64.b64decode(key1))), 32)
        # The ServiceAccount may do what the ClusterRole grants, and nothing it leaves out.
        sa = "system:serviceaccount:%s:raywarden-controller" % NS
        for verb, res, want in (("create", "pods", "yes"), ("patch", "pods/status", "yes"), ("delete", "secrets", "no"),
                                ("update", "services", "no")):
            r = self.kubectl("auth", "can-i", verb, res, "-n", "default", "--as", sa, check=False)
            self.assertEqual(r.stdout.strip(), want, (verb, res))
        self.assertEqual(self.kubectl("auth", "can-i", "update", "leases", "-n", NS, "--as", sa,
                                      check=False).stdout.strip(), "yes")
        # The real deployment controller rolls the Deployment out and both replicas turn Ready.
        self.kubectl("-n", NS, "rollout", "status", "deployment/raywarden-controller", "--timeout=180s",
                     timeout=200)
        self.assertEqual(self.get("deployment", "raywarden-controller")["status"].get("readyReplicas"), 2)

        # upgrade: a flag and the resources change; the generated key is kept (helm lookup).
        t1 = time.monotonic()
        r = self.helm("upgrade", "raywarden", CHART, "-n", NS, "--reuse-values", "--set", "kubeClient.qps=50",
                      "--set", "resources.limits.memory=256Mi", timeout=300)
        self.assertIn("STATUS: deployed", r.stdout)
        took_upgrade = time.monotonic() - t1
        dep = self.get("deployment", "raywarden-controller")
        self.assertEqual(dep["metadata"]["generation"], 2)
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        self.assertIn("--qps=50", c["args"])
        self.assertEqual(c["resources"]["limits"]["memory"], "256Mi")
        self.assertEqual(self.get("secret", KEY_SECRET)["data"]["key"], key1)

        def new_replicaset():
            items = json.loads(self.kubectl("get", "replicasets", "-n", NS, "-o", "json").stdout)["items"]
            return [rs for rs in items if "--qps=50" in rs["spec"]["template"]["spec"]["containers"][0]["args"]]

        wait_for(lambda: self.get("deployment", "raywarden-controller")["status"].get("observedGeneration") == 2,
                 timeout=60, what="observedGeneration 2")
        (rs,) = wait_for(new_replicaset, timeout=120, what="the upgrade's ReplicaSet")
        hash_ = rs["metadata"]["labels"]["pod-template-hash"]

        def new_pod_bound():
            items = json.loads(self.kubectl("get", "pods", "-n", NS, "-l", "pod-template-hash=" + hash_,
                                            "-o", "json").stdout)["items"]
            return [p for p in items if p["spec"].get("nodeName")]

        pods = wait_for(new_pod_bound, timeout=120, what="the upgraded controller pods bound by the scheduler")
        self.assertIn("--qps=50", pods[0]["spec"]["containers"][0]["args"])
        self.kubectl("-n", NS, "rollout", "status", "deployment/raywarden-controller", "--timeout=180s",
                     timeout=200)
        self.assertEqual(len(new_pod_bound()), 2)
        pod = new_pod_bound()[0]
        hist = json.loads(self.helm("history", "raywarden", "-n", NS, "-o", "json").stdout)
        self.assertEqual([h["revision"] for h in hist], [1, 2])
        rel = json.loads(self.kubectl("get", "secrets", "-n", NS, "-l", "owner=helm", "-o", "json").stdout)["items"]
        release_bytes = max(len(base64.b64decode(s["data"]["release"])) for s in rel)
        # Helm keeps each revision, chart (CRDs) included, in one Secret: the API server refuses
        # Secrets over 1 MiB, and an install or upgrade would then fail.
        self.assertLess(release_bytes, 900 * 1024, "helm's release Secret nears the 1 MiB limit")

        # uninstall: everything the templates made goes; the CRDs (crds/) stay, as with any chart.
        self.helm("uninstall", "raywarden", "-n", NS, "--wait", "--timeout", "120s", timeout=200)
        for kind, name in (("deployment", "raywarden-controller"), ("service", "raywarden-controller"),
                           ("serviceaccount", "raywarden-controller"), ("role", "raywarden-leader-election"),
                           ("secret", KEY_SECRET)):
            r = self.kubectl("get", kind, name, "-n", NS, check=False)
            self.assertIn("NotFound", r.stderr, (kind, name))
        for kind in ("clusterrole", "clusterrolebinding"):
            self.assertIn("NotFound", self.kubectl("get", kind, "raywarden-controller", check=False).stderr)
        self.kubectl("get", "crd", "rayclusters.ray.io")
        print("helm install %.1fs, upgrade %.1fs; release Secret %d bytes; upgraded pod phase %s"
              % (took_install, took_upgrade, release_bytes, pod["status"].get("phase")), file=sys.stderr)

    def test_6_agent_values_reach_ray_pods(self):
        """The agent flags the chart renders take effect: raywarden-controller (as a host process,
        local-cluster's start_controller) started with them builds Ray pods to match."""
        objs = self.objects("--set", "agent.resources.requests.cpu=20m", "--set", "agent.resources.limits.memory=128Mi",
                            "--set", "agent.readinessPeriodSeconds=3")
        args = [a for a in self.container(objs)["args"] if a.startswith("--agent-")]
        self.assertEqual(sorted(args), ["--agent-cpu-request=20m", "--agent-memory-limit=128Mi",
                                        "--agent-readiness-period-seconds=3"])
        self.lc.start_controller(args)
        try:
            self.kubectl("apply", "-n", "default", "-f", os.path.join(SRC, "manifests", "samples", "ray-cluster.mini.yaml"))
            (head,) = wait_for(lambda: self.lc.pods("default", "raycluster-mini", node_type="head"), timeout=120,
                               what="the head pod")
            by_name = {c["name"]: c for c in head["spec"]["containers"]}
            self.assertEqual(by_name["raywarden-agent"]["resources"],
                             {"requests": {"cpu": "20m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}})
            self.assertEqual(by_name["ray-head"]["readinessProbe"]["periodSeconds"], 3)
        finally:
            self.kubectl("delete", "raycluster", "raycluster-mini", "-n", "default", "--wait=false", check=False)
            self.lc.stop_controller()

    def get(self, kind, name, ns=NS):
        return json.loads(self.kubectl("get", kind, name, "-n", ns, "-o", "json").stdout)


if __name__ == "__main__":
    unittest.main()

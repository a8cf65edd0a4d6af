"""Harness for end-to-end tests against the local cluster (tests/sim/local-cluster):
start/stop a private cluster with raywarden-controller, a small REST client (the
simulator's token and CA), kubectl, and waiters. Reused by every RayCluster test
(and the heavier fault and benchmark suites); see docs/controller.md, "Testing
against the local cluster".

    from clusterlib import LocalCluster, wait_for
    lc = LocalCluster.start()                 # private state dir, controller running
    lc.kubectl("apply", "-f", path)
    wait_for(lambda: lc.cluster_ready("default", "raycluster-kuberay"), 60)
    lc.restart_controller(signal.SIGKILL)
    lc.stop()                                 # down + remove the state dir
"""

import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("RW_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("RW_BUILD_DIR") or os.path.join(SRC, "build")
SIM_DIR = os.path.join(SRC, "tests", "sim")
CONTROLLER_BIN = os.path.join(BUILD, "bin", "raywarden-controller")
AGENT_BIN = os.path.join(BUILD, "bin", "raywarden-agent")
CORPUS = os.path.abspath(os.path.join(SRC, "..", "shared", "corpus", "kuberay-samples"))
if not os.path.isdir(CORPUS):
    CORPUS = "/work/shared/corpus/kuberay-samples"
SAMPLES = os.path.join(SRC, "manifests", "samples")
GOLDEN = os.path.join(SRC, "tests", "unit", "golden")

if SIM_DIR not in sys.path:
    sys.path.insert(0, SIM_DIR)
os.environ.setdefault("RW_BUILD_DIR", BUILD)  # the kubelet finds the agent binary here

from kubesim.localcluster import Cluster  # noqa: E402
# Re-exported to the tests: cond (kubesim.testutil.condition), pod_ready, free_port, wait_for.
from kubesim.testutil import condition as cond, free_port, parse_metrics, pod_ready, wait_for  # noqa: E402,F401

RAY_POD_SELECTOR = "ray.io/node-type in (head,worker)"

SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
# plugin/pkg/admission/serviceaccount/admission.go TokenVolumeSource.
SA_TOKEN_SOURCE = {"defaultMode": 420, "sources": [
    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                  "fieldPath": "metadata.namespace"}}]}}]}


def default_control_plane():
    """The control plane e2e clusters run on: $RW_CONTROL_PLANE when set, else the real one
    (kubesim/realcp.py) when its binaries are built (tests/sim/upstream/build, which
    .ci/install-deps runs), else the simulator, saying so once."""
    cp = os.environ.get("RW_CONTROL_PLANE")
    if cp:
        return cp
    from kubesim import upstream

    why = upstream.skip_reason()
    if why is None:
        return "real"
    global _WARNED_SIM
    if not _WARNED_SIM:
        print("e2e: on the simulated control plane (%s)" % why, file=sys.stderr)
        _WARNED_SIM = True
    return "sim"


_WARNED_SIM = False


def without_token_volume(pod):
    """A copy of pod without what the API server's ServiceAccount admission plugin adds (the
    kube-api-access-xxxxx projected volume and its read-only mounts), to compare with what a
    builder produced. An added volume or mount not of that exact shape is left in place, so a
    comparison still shows it."""
    pod = json.loads(json.dumps(pod))
    spec = pod.get("spec") or {}
    vols = spec.get("volumes") or []
    names = [v["name"] for v in vols if re.fullmatch(r"kube-api-access-[a-z0-9]{5}", v.get("name", ""))
             and v.get("projected") == SA_TOKEN_SOURCE]
    if not names:
        return pod
    spec["volumes"] = [v for v in vols if v.get("name") not in names]
    if not spec["volumes"]:
        del spec["volumes"]
    for sect in ("initContainers", "containers"):
        for c in spec.get(sect) or []:
            mounts = [m for m in c.get("volumeMounts") or []
                      if m != {"name": names[0], "readOnly": True, "mountPath": SA_TOKEN_PATH}]
            if mounts:
                c["volumeMounts"] = mounts
            else:
                c.pop("volumeMounts", None)
    return pod


def missing_prereqs():
    """A reason to skip, or None."""
    for path in (CONTROLLER_BIN, AGENT_BIN):
        if not os.path.exists(path):
            return "%s is not built" % path
    if not shutil.which("kubectl"):
        return "kubectl not installed"
    return None


def corpus_sample(name):
    """Path of a KubeRay sample from shared/corpus, or None when the corpus is absent."""
    p = os.path.join(CORPUS, name)
    return p if os.path.exists(p) else None


class APIError(Exception):
    def __init__(self, code, body):
        Exception.__init__(self, "HTTP %s: %s" % (code, body[:300]))
        self.code = code
        self.body = body


class LocalCluster:
    """One local cluster in a private state directory."""

    def __init__(self, state, own_state=False):
        self.state = state
        self.own_state = own_state
        self.cluster = Cluster(state)
        self.kubeconfig = os.path.join(state, "kubeconfig")
        self._api = None
        self._conn = None

    # -- lifecycle ---------------------------------------------------------------

    @classmethod
    def start(cls, state=None, nodes=1, controller=True, controller_args=(), timeout=60.0, control_plane=None,
              operator=None, prometheus=False):
        """control_plane: "sim" or "real" (kubesim/realcp.py); None: default_control_plane().
        operator: "raywarden", "kuberay" or "none" (local-cluster up --operator); None: raywarden,
        or none without the controller."""
        own = state is None
        if own:
            state = tempfile.mkdtemp(prefix="rw-lc-")
        lc = cls(state, own_state=own)
        cp = control_plane or default_control_plane()
        rc = lc.cluster.up(nodes=nodes, backoff_base=1, quiet=True, timeout=timeout if cp == "sim" else max(timeout, 120.0),
                           controller=controller, controller_args=tuple(controller_args), control_plane=cp,
                           operator=operator, with_prometheus=prometheus)
        if rc != 0:
            lc.stop()
            raise RuntimeError("local-cluster up failed (%s); logs in %s" % (rc, os.path.join(state, "logs")))
        return lc

    def stop(self, keep_logs_on_failure=None):
        try:
            self.cluster.down(quiet=True)
        finally:
            if self._conn:
                self._conn.close()
                self._conn = None
            if self.own_state:
                if keep_logs_on_failure:
                    print("local cluster logs kept in %s" % self.state, file=sys.stderr)
                else:
                    shutil.rmtree(self.state, ignore_errors=True)

    # -- the controller ----------------------------------------------------------

    def controller(self):
        return self.cluster.controller_info() or {}

    def controller_pid(self):
        return self.controller().get("pid")

    def stop_controller(self, sig=signal.SIGTERM):
        return self.cluster.stop_controller(sig)

    def start_controller(self, extra_args=()):
        return self.cluster.start_controller(list(extra_args))

    def restart_controller(self, sig=signal.SIGTERM, extra_args=()):
        code = self.stop_controller(sig)
        self.start_controller(extra_args)
        return code

    def controller_log(self):
        try:
            with open(self.controller().get("log", "")) as f:
                return f.read()
        except OSError:
            return ""

    def rbac_refusals(self):
        """The controller's RBAC refusals so far: its log lines and 403 (or locally refused)
        answers in raywarden_api_requests_total."""
        out = [ln for ln in self.controller_log().splitlines() if "RBAC: refusing" in ln]
        try:
            m = self.metrics()
        except (OSError, ValueError, TypeError, AttributeError):
            m = {}  # the controller is not running (no metrics URL): its log still tells
        def verb(series):
            return re.search(r'verb="([^"]*)"', series).group(1)

        # A create refused because its namespace is being deleted is a 403 too, counted apart.
        terminating = {verb(k): v for k, v in m.items()
                       if k.startswith("raywarden_api_namespace_terminating_total{")}
        for k, v in m.items():
            if not k.startswith("raywarden_api_requests_total{"):
                continue
            if 'code="403"' in k:
                v -= terminating.get(verb(k), 0)
            if v and ('code="403"' in k or 'code="rbac_denied"' in k):
                out.append("%s = %d" % (k, v))
        return out

    def prometheus_url(self):
        """The URL of the local cluster's Prometheus (up --prometheus), or None."""
        from kubesim import prometheus
        return prometheus.info(self.state).get("url")

    def metrics(self):
        """Parsed /metrics: {"name{labels}": value}."""
        url = self.controller().get("metrics_url")
        with urllib.request.urlopen(url, timeout=5) as r:
            return parse_metrics(r.read().decode())

    # -- REST ----------------------------------------------------------------------

    def api(self):
        if self._api is None:
            with open(os.path.join(self.state, "apiserver.json")) as f:
                self._api = json.load(f)
        return self._api

    def request(self, method, path, body=None, ctype="application/json", query=None):
        a = self.api()
        u = urllib.parse.urlsplit(a["url"])
        if query:
            path += "?" + urllib.parse.urlencode(query)
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
        headers = {"Authorization": "Bearer " + a["token"], "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = ctype
        for attempt in range(2):
            if self._conn is None:
                ctx = ssl.create_default_context(cafile=os.path.join(self.state, "ca.crt"))
                self._conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
            try:
                self._conn.request(method, path, body=data, headers=headers)
                r = self._conn.getresponse()
                text = r.read().decode("utf-8", "replace")
                break
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        if r.status >= 300:
            raise APIError(r.status, text)
        return json.loads(text) if text else None

    def get(self, path, **query):
        return self.request("GET", path, query=query or None)

    def get_or_none(self, path):
        try:
            return self.get(path)
        except APIError as e:
            if e.code == 404:
                return None
            raise

    def patch(self, path, body, ctype="application/merge-patch+json"):
        return self.request("PATCH", path, body, ctype)

    def delete(self, path):
        return self.request("DELETE", path)

    # -- kubectl -------------------------------------------------------------------

    def kubectl(self, *args, input=None, check=True, timeout=60):
        env = dict(os.environ)
        env["KUBECONFIG"] = self.kubeconfig
        env["KUBECACHEDIR"] = os.path.join(self.state, "kubecache")
        r = subprocess.run(["kubectl"] + list(args), input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=timeout, text=True)
        if check and r.returncode != 0:
            raise AssertionError("kubectl %s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout

    def apply(self, path_or_yaml, ns="default"):
        if os.path.exists(path_or_yaml):
            return self.kubectl("apply", "-n", ns, "-f", path_or_yaml)
        return self.kubectl("apply", "-n", ns, "-f", "-", input=path_or_yaml)

    # -- RayCluster helpers --------------------------------------------------------------

    @staticmethod
    def rc_path(ns, name=None):
        p = "/apis/ray.io/v1/namespaces/%s/rayclusters" % ns
        return p + "/" + name if name else p

    def raycluster(self, ns, name):
        return self.get_or_none(self.rc_path(ns, name))

    def patch_cluster(self, ns, name, patch):
        return self.patch(self.rc_path(ns, name), patch)

    def delete_cluster(self, ns, name):
        return self.delete(self.rc_path(ns, name))

    def list_items(self, path, kind, api_version="v1", **query):
        """The items of a list, each with its apiVersion and kind filled in as kubectl does: a real
        API server leaves them out of list items (the simulator keeps them)."""
        items = self.get(path, **query)["items"]
        for it in items:
            it.setdefault("apiVersion", api_version)
            it.setdefault("kind", kind)
        return items

    def pods(self, ns, cluster=None, node_type=None, include_deleting=False):
        sel = ["ray.io/node-type in (head,worker)"]
        if cluster:
            sel.append("ray.io/cluster=%s" % cluster)
        if node_type:
            sel.append("ray.io/node-type=%s" % node_type)
        items = self.list_items("/api/v1/namespaces/%s/pods" % ns, "Pod", labelSelector=",".join(sel))
        if not include_deleting:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return items

    def services(self, ns, selector=None):
        q = {"labelSelector": selector} if selector else {}
        return self.list_items("/api/v1/namespaces/%s/services" % ns, "Service", **q)

    def events(self, ns, name=None, reason=None):
        items = self.get("/apis/events.k8s.io/v1/namespaces/%s/events" % ns)["items"]
        out = []
        for e in items:
            reg = e.get("regarding") or {}
            if name and reg.get("name") != name:
                continue
            if reason and e.get("reason") != reason:
                continue
            out.append(e)
        return out

    def cluster_ready(self, ns, name, workers=None):
        """The RayCluster's status says ready with every pod Running and Ready; returns the object."""
        rc = self.raycluster(ns, name)
        if not rc:
            return None
        st = rc.get("status") or {}
        if st.get("state") != "ready":
            return None
        pods = self.pods(ns, name)
        want = (workers if workers is not None else st.get("desiredWorkerReplicas", 0)) + 1
        if len(pods) != want or not all(p["status"].get("phase") == "Running" and pod_ready(p) for p in pods):
            return None
        if workers is not None and st.get("readyWorkerReplicas") != workers:
            return None
        return rc

    def wait_cluster_ready(self, ns, name, workers=None, timeout=90):
        return wait_for(lambda: self.cluster_ready(ns, name, workers), timeout, 0.2,
                        "RayCluster %s/%s ready%s" % (ns, name, "" if workers is None else " with %d workers" % workers))

    def wait_gone(self, ns, name, timeout=60):
        def gone():
            if self.raycluster(ns, name):
                return False
            return not self.pods(ns, name, include_deleting=True)
        return wait_for(gone, timeout, 0.2, "RayCluster %s/%s and its pods gone" % (ns, name))

    def raysim_fault(self, pod_ip, component, mode, **extra):
        """Inject a fault into the Ray simulator of one pod (docs/ray-simulator.md)."""
        body = dict(component=component, mode=mode, **extra)
        req = urllib.request.Request("http://%s:19999/fault" % pod_ip, data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status


def wildcard_listener(port):
    """True when a socket listens on 0.0.0.0:port (/proc/net/tcp, state 0A). Pods share
    the host's network namespace on their own loopback IPs, so such a listener (a stray
    raywarden-agent on the agent port 8477) makes every pod's agent fail to bind."""
    try:
        with open("/proc/net/tcp") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return False
    want = "00000000:%04X" % port
    return any(r.split()[1] == want and r.split()[3] == "0A" for r in rows if len(r.split()) > 3)


class RbacChecked:
    """Mixin for test classes with a LocalCluster in cls.lc. The controller runs as its
    ServiceAccount (RBAC enforced by the simulator). A request outside its grant table is refused
    by the controller itself ("RBAC: refusing") or answered 403 by the simulator; either fails
    the test during which it happened. A class that provokes refusals on purpose sets
    RBAC_REFUSALS_EXPECTED."""

    RBAC_REFUSALS_EXPECTED = False

    def tearDown(self):
        if not self.RBAC_REFUSALS_EXPECTED:
            self.assertEqual(self.lc.rbac_refusals(), [], "the controller made requests its RBAC "
                             "grant table (controller/kube/rbac.c) does not allow")
        super().tearDown()


class LocalClusterCase(RbacChecked, unittest.TestCase):
    """A test class on one private local cluster with the controller: the one set-up and
    teardown path of the e2e tests on a local cluster (API server, kubelet, controllers,
    raywarden-controller, a private state dir; its logs are kept, and their place printed, when
    a test or the set-up failed or RW_KEEP_LOGS is set).

    SAMPLE names the shared/corpus sample the class applies (cls.sample; the class is skipped
    when the corpus is absent). CONTROLLER_ARGS are extra raywarden-controller flags; NODES the
    simulated nodes; CONTROLLER = False starts no controller (the class runs its own).
    prerequisites() says why the class cannot run here (a skip; subclasses add theirs and call
    super()). setUpCluster() is the class's own set-up once the cluster runs; when it raises,
    tearDownClass() runs at once (so a subclass's tearDownClass must cope with a partial
    set-up). Subclasses that need more call super().setUpClass() / super().tearDownClass()."""

    SAMPLE = None
    CONTROLLER_ARGS = ()
    NODES = 1
    CONTROLLER = True  # False: local-cluster starts no raywarden-controller (the class runs its own)
    CONTROL_PLANE = None  # "sim", "real" (needs tests/sim/upstream/build); None: default_control_plane()
    OPERATOR = None  # "kuberay": KubeRay's operator runs beside (local-cluster up --operator)
    PROMETHEUS = False  # True: Prometheus runs too (local-cluster up --prometheus; tests/e2e/promlib.py)

    @classmethod
    def prerequisites(cls):
        why = missing_prereqs()
        if not why and cls.CONTROL_PLANE == "real":
            from kubesim import upstream
            why = upstream.skip_reason()
        if not why and cls.PROMETHEUS:
            from kubesim import prometheus
            why = prometheus.skip_reason()
        return why

    @classmethod
    def setUpCluster(cls):
        pass

    @classmethod
    def setUpClass(cls):
        why = cls.prerequisites()
        if why:
            raise unittest.SkipTest(why)
        cls.sample = corpus_sample(cls.SAMPLE) if cls.SAMPLE else None
        if cls.SAMPLE and not cls.sample:
            raise unittest.SkipTest("shared/corpus absent: %s needs %s" % (cls.__name__, cls.SAMPLE))
        if wildcard_listener(8477):
            raise AssertionError("a process listens on 0.0.0.0:8477 (a leaked raywarden-agent?): "
                                 "no pod's agent could bind its port")
        cls.failed = False
        cls.lc = LocalCluster.start(nodes=cls.NODES, controller=cls.CONTROLLER, controller_args=cls.CONTROLLER_ARGS,
                                    control_plane=cls.CONTROL_PLANE, operator=cls.OPERATOR, prometheus=cls.PROMETHEUS)
        try:
            cls.setUpCluster()
        except BaseException:
            cls.failed = True
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lc.stop(keep_logs_on_failure=cls.failed or os.environ.get("RW_KEEP_LOGS"))

    def run(self, result=None):
        r = super().run(result)
        if result is not None and (result.failures or result.errors):
            type(self).failed = True
        return r

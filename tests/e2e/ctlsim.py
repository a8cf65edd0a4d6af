"""Helpers for controller tests and benchmarks that run raywarden-controller against the
API server simulator with the fake kubelet (tests/sim/kubesim/kubelet_fake.py): no Ray
processes, pods Running/Ready at once. Used by tests/e2e/test_controller_faults.py and
tests/bench/controller-scale. Python standard library only.

    w = World(tmpdir)                       # API server (TLS), CRDs, fake kubelet, RBAC manifests
    c = w.controller("--qps", "1000")       # build/bin/raywarden-controller on its own IP, as its
                                            # ServiceAccount (RBAC enforced)
    w.apply_cluster(raycluster("rc-1", workers=2))
    w.wait(lambda: w.converged(expected), 60, "convergence")
    c.kill(); c.start(); ...; w.stop()
"""

import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("RW_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("RW_BUILD_DIR") or os.path.join(SRC, "build")
SIM_DIR = os.path.join(SRC, "tests", "sim")
APISERVER = os.path.join(SIM_DIR, "kubesim", "apiserver.py")
CRD_DIR = os.path.join(SRC, "manifests", "crds")
if SIM_DIR not in sys.path:
    sys.path.insert(0, SIM_DIR)

from kubesim import controller_identity  # noqa: E402
from kubesim.kubeclient import ApiError, KubeClient  # noqa: E402
from kubesim.testutil import http_get, parse_metrics, pick_ip, wait_for  # noqa: E402,F401 (wait_for: ctlsim.wait_for)

RC_PATH = "apis/ray.io/v1/namespaces/%s/rayclusters"


def controller_bin(build=None):
    return os.path.join(build or BUILD, "bin", "raywarden-controller")


def proc_status(pid):
    """{"rss_kib", "hwm_kib", "cpu_s"} of a live process (VmHWM is the peak RSS)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_kib"] = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                out["hwm_kib"] = int(line.split()[1])
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / float(tick)
    return out


def raycluster(name, workers=1, groups=1, namespace="default", min_replicas=0, max_replicas=1000,
               annotations=None):
    """A small RayCluster (head with num-cpus 0, `groups` worker groups of `workers` each)."""
    def container(n):
        return {"name": n, "image": "rayproject/ray:2.52.0",
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                              "limits": {"cpu": "1", "memory": "1Gi"}}}

    md = {"name": name, "namespace": namespace}
    if annotations:
        md["annotations"] = dict(annotations)
    return {
        "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": md,
        "spec": {
            "rayVersion": "2.52.0",
            "headGroupSpec": {"rayStartParams": {"num-cpus": "0"},
                              "template": {"spec": {"containers": [container("ray-head")]}}},
            "workerGroupSpecs": [
                {"groupName": "g%d" % g, "replicas": workers, "minReplicas": min_replicas,
                 "maxReplicas": max_replicas, "rayStartParams": {},
                 "template": {"spec": {"containers": [container("ray-worker")]}}}
                for g in range(groups)],
        },
    }


def create_all(world, objs, threads=8):
    """Apply the RayClusters objs in `threads` parallel threads; RuntimeError naming the first
    failures when any failed."""
    errors = []
    chunks = [objs[i::threads] for i in range(threads)]

    def worker(chunk):
        for o in chunk:
            try:
                world.apply_cluster(o)
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s" % (o["metadata"]["name"], e))

    ts = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError("creating clusters failed: %s" % errors[:5])


class PodWatch:
    """Lists, then watches, the Ray pods (label ray.io/node-type) of a World in a daemon thread and
    calls self.note(event type, pod, time) for each (the listed ones as ADDED). clock gives the
    time (time.time to compare with log timestamps). Subclasses set up their state, then call
    PodWatch.__init__; stop.set() ends the thread after the next event."""

    def __init__(self, world, clock=time.monotonic):
        self.w = world
        self.clock = clock
        self.stop = threading.Event()
        lst = world.call("GET", "api/v1/pods", query={"labelSelector": "ray.io/node-type"})
        now = clock()
        for p in lst.get("items") or []:
            self.note("ADDED", p, now)
        self.rv = lst["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def note(self, etype, pod, now):
        raise NotImplementedError

    def run(self):
        while not self.stop.is_set():
            try:
                wt = self.w.client.open_watch("pods", None, self.rv, "ray.io/node-type", timeout_seconds=600)
                for ev in wt:
                    now = self.clock()
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":
                        raise RuntimeError("pod watch: %s" % obj.get("message"))
                    self.rv = (obj.get("metadata") or {}).get("resourceVersion") or self.rv
                    if ev.get("type") != "BOOKMARK":
                        self.note(ev.get("type"), obj, now)
                    if self.stop.is_set():
                        break
            except (OSError, http.client.HTTPException, ApiError, RuntimeError):
                time.sleep(0.1)  # the API server restarting or faulted: watch again from rv


class Controller:
    """One raywarden-controller process with its own loopback IP for /metrics, /healthz and
    the agent hub. kill() is SIGKILL; start() starts it again with the same arguments."""

    def __init__(self, world, args, identity="ctl-faults", build=None, log_name="controller",
                 as_admin=False):
        self.world = world
        self.ip = pick_ip()
        # As installed: the controller's own ServiceAccount, RBAC enforced by the simulator
        # (world.controller_kubeconfig, kubesim/controller_identity.py); as_admin only for a
        # test that means to bypass RBAC.
        kubeconfig = world.kubeconfig if as_admin else world.controller_kubeconfig
        self.args = [controller_bin(build), "--kubeconfig", kubeconfig,
                     "--leader-election-identity", identity,
                     "--metrics-addr", self.ip + ":8080", "--health-probe-bind-address", self.ip + ":8082",
                     "--agent-listen", "tcp://%s:8478" % self.ip,
                     "--agent-key-file", world.key_file] + list(args)
        self.logpath = os.path.join(world.dir, log_name + ".log")
        self.proc = None
        self.starts = 0

    def start(self, etc_overlay=None):
        """Start (again). etc_overlay: a directory laid over /etc in a private mount
        namespace (a local cluster's <state>/etc, whose hosts file names only that
        cluster's Services, as its pods see them); the pid stays the controller's."""
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        argv = list(self.args)
        if etc_overlay is not None:
            self.etc_overlay = etc_overlay
        ov = getattr(self, "etc_overlay", None)
        if ov and os.geteuid() == 0 and shutil.which("unshare"):
            argv = ["unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c",
                    'mount -t overlay overlay -o lowerdir="$0":/etc /etc 2>/dev/null || true; exec "$@"',
                    ov] + argv
        with open(self.logpath, "ab") as log:
            log.write(("=== start %d: %s\n" % (self.starts + 1, " ".join(self.args[1:]))).encode())
            log.flush()
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.starts += 1
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
        if self.proc is not None:
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(timeout=5)
        return None

    def http(self, port, path):
        """(status, text) of GET path on the controller's IP; (None, why) when it does not answer."""
        return http_get("http://%s:%d%s" % (self.ip, port, path), 5, soft=True)

    def ready(self):
        return self.http(8082, "/readyz")[0] == 200

    def metrics(self):
        """{name{labels}: value} of the /metrics text (empty when it does not answer)."""
        code, text = self.http(8080, "/metrics")
        return parse_metrics(text) if code == 200 else {}

    def api_requests(self):
        """API requests this process made, by verb, from raywarden_api_requests_total."""
        by = {}
        for k, v in self.metrics().items():
            if k.startswith("raywarden_api_requests_total{"):
                verb = k.split('verb="', 1)[1].split('"', 1)[0] if 'verb="' in k else "?"
                by[verb] = by.get(verb, 0) + int(v)
        return by

    def output(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class OperatorHost:
    """What kubesim.operators.start needs of a local cluster, for a World: no cluster.json to
    record pids in, and its helpers (the pod-network proxy) are the world's processes, ended
    with it."""

    def __init__(self, world):
        self.state = world.state
        self.logs = world.dir
        self.children = {}
        self.info_path = None
        self.spawn = world._spawn

    def info(self):
        return None


class World:
    """API server simulator + CRDs + fake kubelet in a temporary directory."""

    def __init__(self, tmp, tls=True, kubelet_threads=8, gates="set", api_args=(), control_plane="sim",
                 crds="raywarden"):
        """control_plane "real": etcd, kube-apiserver and kube-controller-manager at the pinned
        release (kubesim/realcp.py) instead of the API server simulator; no kube-scheduler (the
        fake kubelet binds, as kwok does), and /_sim/ fault injection is not there.
        crds "kuberay": KubeRay's own CRDs of the pinned release (kubesim/operators.py), to run
        KubeRay's operator in this world, instead of manifests/crds."""
        self.dir = tmp
        self.control_plane = control_plane
        self.crds = crds
        self.state = os.path.join(tmp, "state")
        os.makedirs(self.state, exist_ok=True)
        self.procs = []
        self.controllers = []
        self.key_file = os.path.join(tmp, "master-key")
        with open(self.key_file, "w") as f:
            f.write(os.urandom(32).hex())
        os.chmod(self.key_file, 0o600)
        try:
            self._start(tls, kubelet_threads, gates, api_args)
        except BaseException:
            self.stop()  # nothing left running when the start fails
            raise

    def _start(self, tls, kubelet_threads, gates, api_args):
        if self.control_plane == "real":
            from kubesim import realcp

            realcp.start(self.state, self._spawn, time.monotonic() + 120, self.dir, scheduler=False)
            self.api = self.procs[1]  # kube-apiserver
        else:
            self.api = self._spawn("apiserver", [sys.executable, APISERVER, "--state-dir", self.state, "--port", "0",
                                                 "--bookmark-interval", "2"] + (["--tls"] if tls else []) + list(api_args))
        info = os.path.join(self.state, "apiserver.json")
        wait_for(lambda: os.path.exists(info) and os.path.getsize(info) > 0, 20, what="apiserver.json")
        with open(info) as f:
            self.info = json.load(f)
        self.kubeconfig = os.path.join(self.state, "kubeconfig")
        self.client = KubeClient.from_state_dir(self.state, user_agent="ctlsim-test", timeout=60)
        wait_for(lambda: self._readyz(), 20, what="API server /readyz")
        self.install_crds()
        self.controller_kubeconfig = controller_identity.controller_kubeconfig(self.state)
        if self.control_plane != "real":
            # The kube-controller-manager parts every namespace needs, as on a real cluster
            # (whose own controller manager runs them): its `default` ServiceAccount (the
            # ServiceAccount admission plugin refuses pods without it), kube-root-ca.crt, and
            # the namespace controller.
            self._spawn("controllers", [sys.executable, "-m", "kubesim.controllers", "--state-dir", self.state,
                                        "--controllers", "serviceaccount-controller,"
                                        "root-ca-certificate-publisher-controller,namespace-controller"])
            cinfo = os.path.join(self.state, "controllers.json")
            wait_for(lambda: os.path.exists(cinfo), 30, what="controllers")
        wait_for(lambda: self.client.get_or_none("serviceaccounts", "default", "default"), 30,
                 what="ServiceAccount default/default")
        self.kubelet = self._spawn("kubelet-fake", [sys.executable, "-m", "kubesim.kubelet_fake", "--state-dir",
                                                    self.state, "--threads", str(kubelet_threads),
                                                    "--gates", gates]
                                   + (["--leases"] if self.control_plane == "real" else []))
        kinfo = os.path.join(self.state, "kubelet.json")
        wait_for(lambda: os.path.exists(kinfo), 30, what="fake kubelet")
        with open(kinfo) as f:
            self.kubelet_url = json.load(f)["control_url"]

    def _spawn(self, name, argv):
        env = dict(os.environ)
        env["PYTHONPATH"] = SIM_DIR + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        with open(os.path.join(self.dir, name + ".log"), "ab") as log:
            p = subprocess.Popen(argv, cwd=SIM_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def _readyz(self):
        try:
            self.client.request("GET", "/readyz")
            return True
        except (ApiError, OSError, ValueError, http.client.HTTPException):
            return False

    def install_crds(self):
        """Create the CRDs of manifests/crds/ (as `kubectl apply --server-side` would), or
        KubeRay's (crds "kuberay"), and wait until they are Established."""
        if self.crds == "kuberay":
            from kubesim import operators

            operators.install_crds(self.state, quiet=True)
        else:
            self._install_own_crds()

        def established():
            try:
                crd = self.client.request("GET", "apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                          "rayclusters.ray.io")
            except ApiError:
                return False
            return any(c.get("type") == "Established" and c.get("status") == "True"
                       for c in (crd.get("status") or {}).get("conditions") or [])

        wait_for(established, 20, what="RayCluster CRD established")

    def _install_own_crds(self):
        files = sorted(glob.glob(os.path.join(CRD_DIR, "*.yaml")))
        if not files:
            raise RuntimeError("no CRDs in %s" % CRD_DIR)
        if self.info.get("url", "").startswith("http:"):
            # kubectl sends no token over plain HTTP: create the same documents from the
            # generator of manifests/crds/ (its --check keeps them identical).
            sys.path.insert(0, os.path.join(SRC, "manifests", "hack"))
            import gen_crds

            for _name, doc in gen_crds.all_crds():
                self.call("POST", "apis/apiextensions.k8s.io/v1/customresourcedefinitions", doc)
            files = []
        kubectl = shutil.which("kubectl")
        if kubectl is None and files:
            raise RuntimeError("kubectl is needed to install the CRDs")
        if files:
            argv = [kubectl, "--kubeconfig", self.kubeconfig, "apply", "--server-side", "--force-conflicts"]
            for f in files:
                argv += ["-f", f]
            env = dict(os.environ)
            env["HOME"] = self.dir  # a private kubectl cache
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, env=env)
            if r.returncode != 0:
                raise RuntimeError("installing CRDs failed: %s" % r.stdout.decode("utf-8", "replace"))

    # -- API helpers (retrying on injected faults) ---------------------------------------

    def call(self, method, path, body=None, ctype="application/json", query=None, attempts=40):
        """One API call, retried on 429, 5xx, a 409 that is not AlreadyExists (except for
        PUT, whose conflict is real) and connection errors, so that the test's own
        requests survive /_sim/faults."""
        for i in range(attempts):
            try:
                return self.client.request(method, path, body, ctype=ctype, query=query)
            except ApiError as e:
                if e.code in (429, 500, 502, 503, 504) or (e.code == 409 and e.reason != "AlreadyExists"
                                                           and method != "PUT"):
                    time.sleep(min(0.05 * (i + 1), 0.5))
                    continue
                raise
            except (OSError, http.client.HTTPException):
                time.sleep(min(0.05 * (i + 1), 0.5))
        raise RuntimeError("%s %s: still failing after %d attempts" % (method, path, attempts))

    def sim(self, method, what, body=None):
        return self.client.request(method, "/_sim/" + what, body)

    def apply_cluster(self, obj):
        ns = obj["metadata"].get("namespace") or "default"
        try:
            return self.call("POST", RC_PATH % ns, obj)
        except ApiError as e:
            if e.code != 409:
                raise
            return None  # created by an earlier attempt whose answer was lost

    def scale(self, name, group_index, replicas, namespace="default"):
        patch = self.get_cluster(name, namespace)
        groups = patch["spec"]["workerGroupSpecs"]
        groups[group_index]["replicas"] = replicas
        return self.call("PATCH", RC_PATH % namespace + "/" + name,
                         {"spec": {"workerGroupSpecs": groups}}, ctype="application/merge-patch+json")

    def get_cluster(self, name, namespace="default"):
        return self.call("GET", RC_PATH % namespace + "/" + name)

    def delete_cluster(self, name, namespace="default"):
        try:
            return self.call("DELETE", RC_PATH % namespace + "/" + name)
        except ApiError as e:
            if e.code != 404:
                raise
            return None

    def clusters(self, namespace=None):
        path = ("apis/ray.io/v1/namespaces/%s/rayclusters" % namespace) if namespace else "apis/ray.io/v1/rayclusters"
        return self.call("GET", path).get("items") or []

    def pods(self, namespace=None, selector="ray.io/node-type"):
        path = ("api/v1/namespaces/%s/pods" % namespace) if namespace else "api/v1/pods"
        return self.call("GET", path, query={"labelSelector": selector} if selector else None).get("items") or []

    def kubelet_stats(self):
        with urllib.request.urlopen(self.kubelet_url + "/stats", timeout=5) as r:
            return json.loads(r.read())

    # -- convergence ------------------------------------------------------------------------

    def problems(self, expected, namespace=None):
        """Differences between the Ray pods and `expected` {cluster: {group: n}} (head group
        ""): missing or extra pods per group, pods of unknown clusters (orphans), pods whose
        owner reference is not their cluster's current UID, pods not Running. [] = converged."""
        clusters = {c["metadata"]["name"]: c for c in self.clusters(namespace)
                    if not c["metadata"].get("deletionTimestamp")}
        have = {}
        out = []
        for p in self.pods(namespace):
            md = p["metadata"]
            if md.get("deletionTimestamp"):
                out.append("terminating %s" % md["name"])
                continue
            lb = md.get("labels") or {}
            cl = lb.get("ray.io/cluster")
            grp = "" if lb.get("ray.io/node-type") == "head" else lb.get("ray.io/group", "?")
            rc = clusters.get(cl)
            if rc is None or cl not in expected:
                out.append("orphan %s (cluster %s)" % (md["name"], cl))
                continue
            owners = [o.get("uid") for o in md.get("ownerReferences") or [] if o.get("controller")]
            if owners != [rc["metadata"]["uid"]]:
                out.append("%s owned by %s, cluster uid %s" % (md["name"], owners, rc["metadata"]["uid"]))
            if (p.get("status") or {}).get("phase") != "Running":
                out.append("%s not Running" % md["name"])
            have.setdefault(cl, {}).setdefault(grp, []).append(md["name"])
        for cl, groups in expected.items():
            if cl not in clusters:
                out.append("cluster %s missing" % cl)
            for g, n in groups.items():
                got = len(have.get(cl, {}).get(g, []))
                if got != n:
                    out.append("%s/%s: %d pods, want %d" % (cl, g or "head", got, n))
            for g in have.get(cl, {}):
                if g not in groups:
                    out.append("%s: unexpected group %s" % (cl, g))
        return out

    def wait_converged(self, expected, timeout, namespace=None):
        """Wait until problems() is empty; returns seconds waited. AssertionError with the
        remaining problems after the timeout."""
        t0 = time.monotonic()
        last = []

        def converged():
            last[:] = self.problems(expected, namespace)
            return not last
        try:
            wait_for(converged, timeout, 0.25, what="convergence")
        except AssertionError:
            raise AssertionError("not converged after %.0fs: %d problem(s): %s"
                                 % (timeout, len(last), last[:20])) from None
        return time.monotonic() - t0

    # -- teardown --------------------------------------------------------------------------

    def controller(self, *args, identity="ctl-faults", build=None, start=True, log_name="controller",
                   as_admin=False):
        c = Controller(self, args, identity, build, log_name, as_admin)
        self.controllers.append(c)
        if start:
            c.start()
        return c

    def stop(self):
        for c in self.controllers:
            if c.alive():
                c.kill(signal.SIGTERM)
        if self.control_plane == "real":
            from kubesim import realcp

            realcp.release(self.state)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

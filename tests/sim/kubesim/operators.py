"""Which Ray operator a local cluster runs: raywarden (build/bin/raywarden-controller, started
by localcluster.py itself), KubeRay (the upstream operator, installed here as KubeRay would be)
or none.

    tests/sim/local-cluster up --operator kuberay

KubeRay runs as its release installs it (see docs/local-cluster.md, "Which operator"):

- its own CRDs of the same release (config/crd/bases, server-side apply), not manifests/crds;
- its own RBAC (config/rbac, the files its kustomization lists, in the namespace of
  config/default) bound to ServiceAccount kuberay-operator, whose token it uses
  (controller_identity.service_account_kubeconfig: the API server simulator enforces RBAC);
- the Helm chart's default flags (helm-chart/kuberay-operator/values.yaml, a copy in
  shared/corpus): metrics on, reconcile concurrency 1, QPS 100, burst 200, JSON logs, the
  chart's feature gates that this release knows; the metrics and health addresses on free
  loopback ports; leader election off (one replica, as raywarden here);
- in a private mount namespace whose /etc is the cluster's own /etc (kubelet.private_hosts,
  kept by the proxy), so that it resolves <svc>.<ns>.svc.cluster.local of this cluster and
  not of another local cluster running beside it (it dials the head Service's dashboard);
- through ProtoShim (protoshim.py; component "kuberay-protoshim"), a loopback front of the API
  server simulator that hands it the protobuf bodies controller-runtime sends for built-in
  kinds as JSON (the simulator decodes protobuf for four kinds only: docs/kuberay-compatibility.md);
  on the real control plane (`--control-plane real`) it talks to kube-apiserver directly;
- on the real control plane, with HTTP_PROXY set to podnet.py (component "kuberay-podnet"),
  which takes its requests to pod addresses from the API (10.a.b.c) to where the pods listen
  (127.a.b.c), as a real pod network routes them (its Serve-proxy health check dials pod IPs);
- its pid in cluster.json (component "kuberay-operator"), its addresses in
  DIR/kuberay-operator.json, its log in DIR/logs/kuberay-operator.log.
"""

import glob
import json
import os
import re
import subprocess
import sys
import time
import urllib.error

from kubesim import controller_identity, upstream
from kubesim.testutil import free_port, http_get, read_json, write_json

KUBERAY = "kuberay-operator"
SHIM = "kuberay-protoshim"
PODNET = "kuberay-podnet"
COMPONENTS = (KUBERAY, SHIM, PODNET)  # what `down` stops, in this order
CHOICES = ("raywarden", "kuberay", "none")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
MARK_CLUSTER = "KUBESIM_CLUSTER"

# The chart's values.yaml (helm-chart/kuberay-operator); the copy in shared/corpus is newer
# than the release (its extra feature gates are dropped, see chart_feature_gates).
HELM_VALUES = os.path.join(os.path.dirname(REPO_ROOT), "shared", "corpus", "kuberay-helm-values.yaml")
if not os.path.exists(HELM_VALUES):
    HELM_VALUES = "/work/shared/corpus/kuberay-helm-values.yaml"
# What the chart sets when values.yaml is absent (helm-chart/kuberay-operator/values.yaml).
CHART_GATES = (("RayClusterStatusConditions", True), ("RayJobDeletionPolicy", True),
               ("RayMultiHostIndexing", True), ("RayServiceIncrementalUpgrade", True))


def kuberay_binary():
    """The KubeRay operator binary (kubesim.upstream), or raise upstream.Missing. Only that
    binary is needed here (etcd and kube are for the real control plane)."""
    u = upstream.Upstream(upstream.bin_dir())
    if os.access(u.kuberay, os.X_OK):
        return u
    return upstream.find()  # raises Missing with the reason and what to run


def skip_reason():
    """None when KubeRay can run here, else why not (for unittest skips)."""
    try:
        kuberay_binary()
        return None
    except upstream.Missing as e:
        return str(e)


def src_dir():
    return kuberay_binary().kuberay_src


# ---- install: CRDs, RBAC ---------------------------------------------------------------------

def crd_files():
    return sorted(glob.glob(os.path.join(src_dir(), "config", "crd", "bases", "*.yaml")))


def install_crds(state, quiet=False, timeout=300):
    """kubectl apply --server-side KubeRay's CRDs (~1 MB each; too big for client-side apply's
    last-applied annotation) as the admin."""
    argv = ["kubectl", "--kubeconfig", os.path.join(state, "kubeconfig"), "apply", "--server-side",
            "--force-conflicts", "--field-manager", "kuberay-install"]
    files = crd_files()
    for f in files:
        argv += ["-f", f]
    env = dict(os.environ)
    env["KUBECACHEDIR"] = os.path.join(state, "kubecache")
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, env=env)
    if r.returncode != 0:
        raise RuntimeError("installing KubeRay's CRDs failed:\n%s" % r.stdout.decode("utf-8", "replace"))
    # A CRD is served only once Established; until then a client's apply of a RayService says
    # "no matches for kind" (the real API server takes a moment, the simulator none).
    # kubectl wait fails at once ("<nil> is of the type <nil>") on a CRD whose status has no
    # conditions yet, as a freshly created one on the real API server: asked again until then.
    wait = argv[:3] + ["wait", "--for=condition=Established", "--timeout=%ds" % timeout]
    for f in files:
        wait += ["-f", f]
    deadline = time.monotonic() + timeout
    while True:
        r = subprocess.run(wait, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout + 10, env=env)
        if r.returncode == 0:
            break
        if b"accessor error" not in r.stdout or time.monotonic() > deadline:
            raise RuntimeError("KubeRay's CRDs not Established:\n%s" % r.stdout.decode("utf-8", "replace"))
        time.sleep(0.2)
    if not quiet:
        print("installed %d KubeRay CRD(s) from %s" % (len(files), os.path.dirname(files[0])))


def install_namespace():
    """The namespace config/default's kustomization installs into."""
    with open(os.path.join(src_dir(), "config", "default", "kustomization.yaml")) as f:
        return controller_identity.load_all(f.read())[0].get("namespace") or "default"


def rbac_objects(namespace=None):
    """config/rbac as its kustomization renders it: the listed resources, the kustomization's
    labels, namespaced objects and ServiceAccount subjects in the install namespace."""
    ns = namespace or install_namespace()
    d = os.path.join(src_dir(), "config", "rbac")
    with open(os.path.join(d, "kustomization.yaml")) as f:
        kust = controller_identity.load_all(f.read())[0]
    labels = {}
    for entry in kust.get("labels") or []:
        labels.update(entry.get("pairs") or {})
    objs = []
    if ns != "default":
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for res in kust["resources"]:
        with open(os.path.join(d, res)) as f:
            for o in controller_identity.load_all(f.read()):
                md = o["metadata"]
                md["labels"] = dict(labels, **(md.get("labels") or {}))
                if controller_identity.KINDS[o["kind"]][2]:
                    md["namespace"] = ns
                for s in o.get("subjects") or []:
                    if s.get("kind") == "ServiceAccount":
                        s.setdefault("namespace", ns)
                objs.append(o)
    return objs


def kubeconfig(state, server=None):
    """Apply KubeRay's RBAC and write DIR/kuberay-operator.kubeconfig (its ServiceAccount's
    token); server: another API server URL (the ProtoShim's) than the admin kubeconfig's."""
    ns = install_namespace()
    path = controller_identity.service_account_kubeconfig(state, rbac_objects(ns), ns, KUBERAY)
    if server:
        with open(path) as f:
            text = f.read()
        text = re.sub(r"(?m)^(\s+server: ).*$", lambda m: m.group(1) + server, text)
        with open(path, "w") as f:
            f.write(text)
    return path


def k8s_api_version():
    """The k8s.io/api version KubeRay is built with (its go.mod): the Go types ProtoShim decodes by."""
    with open(os.path.join(src_dir(), "go.mod")) as f:
        m = re.search(r"(?m)^\s*k8s\.io/api (v\S+)", f.read())
    return m.group(1) if m else "v0.34.1"


def start_shim(cluster, timeout):
    """Start ProtoShim for this cluster; returns (pid, url)."""
    return _start_helper(cluster, SHIM, ["kubesim.protoshim", "--state-dir", cluster.state, "--k8s-version",
                                         k8s_api_version(), "--name", SHIM], timeout)


def start_podnet(cluster, timeout):
    """Start the pod-network proxy (podnet.py) for this cluster; returns (pid, url)."""
    return _start_helper(cluster, PODNET, ["kubesim.podnet", "--state-dir", cluster.state, "--name", PODNET],
                         timeout)


def _start_helper(cluster, name, module_argv, timeout):
    """Start `python3 -m module_argv` as component name, which writes DIR/<name>.json with its
    pid and url once it listens; returns (pid, url). One that already runs is reused."""
    path = os.path.join(cluster.state, name + ".json")
    prev = read_json(path) or {}
    if _alive(prev.get("pid")):
        return prev["pid"], prev["url"]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    p = cluster.spawn(name, [sys.executable, "-m"] + module_argv)
    _record(cluster, name, p.pid)
    deadline = time.monotonic() + timeout
    while True:
        d = read_json(path)
        if d and d.get("pid") == p.pid:
            return p.pid, d["url"]
        if p.poll() is not None:
            raise RuntimeError("%s exited (%s); see %s" % (name, p.returncode, os.path.join(cluster.logs, name + ".log")))
        if time.monotonic() > deadline:
            raise RuntimeError("%s not listening after %.0fs" % (name, timeout))
        time.sleep(0.02)


def _record(cluster, name, pid):
    ci = cluster.info()
    if ci is not None:
        ci.setdefault("pids", {})[name] = pid
        comps = list(ci.get("components") or [])
        if name not in comps:
            comps.append(name)
        ci["components"] = comps
        write_json(cluster.info_path, ci)


# ---- flags ----------------------------------------------------------------------------------

def release_gates():
    """The feature gates this KubeRay release knows (pkg/features/features.go)."""
    with open(os.path.join(src_dir(), "pkg", "features", "features.go")) as f:
        text = f.read()
    m = re.search(r"defaultFeatureGates\s*=\s*map\[[^\]]*\][^{]*\{(.*?)\n\}", text, re.S)
    return set(re.findall(r"^\s*([A-Za-z0-9]+):", m.group(1), re.M)) if m else set()


def chart_feature_gates():
    """[(gate, enabled)] of the chart's featureGates that this release knows."""
    gates = list(CHART_GATES)
    try:
        with open(HELM_VALUES) as f:
            text = f.read()
        m = re.search(r"(?m)^featureGates:\n((?:[ -].*\n)+)", text)
        if m:
            gates = [(n, e == "true") for n, e in
                     re.findall(r"-\s*name:\s*(\S+)\s*\n\s*enabled:\s*(\S+)", m.group(1))]
    except OSError:
        pass
    known = release_gates()
    return [(n, e) for n, e in gates if n in known]


def argv(kubeconfig_path, metrics_port, health_port, extra=()):
    """The operator's command line as the chart's deployment template renders its defaults."""
    gates = ",".join("%s=%s" % (n, "true" if e else "false") for n, e in chart_feature_gates())
    a = [kuberay_binary().kuberay, "--kubeconfig", kubeconfig_path,
         "--metrics-addr", "127.0.0.1:%d" % metrics_port,
         "--health-probe-bind-address", "127.0.0.1:%d" % health_port,
         "--enable-leader-election=false",
         "--reconcile-concurrency=1",
         "--enable-metrics=true",
         "--qps=100", "--burst=200",
         "--log-stdout-encoder=json"]
    if gates:
        a.append("--feature-gates=" + gates)
    return a + list(extra)


# ---- the process ----------------------------------------------------------------------------

def info_path(state):
    return os.path.join(state, KUBERAY + ".json")


def info(state):
    return read_json(info_path(state)) or {}


def private_etc(state):
    """DIR/etc, whose hosts file the proxy keeps (the cluster's Service names); made from the
    host's entries when the proxy has not written it yet (as the kubelet does)."""
    from kubesim.proxy import strip_blocks

    path = os.path.join(state, "etc", "hosts")
    if not os.path.isfile(path):
        with open("/etc/hosts") as f:
            base = strip_blocks(f.read())
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(base)
        except FileExistsError:
            pass
    return os.path.dirname(path)


def wrap(cmd, state):
    """cmd in a private mount namespace with the cluster's /etc laid over the host's, when the
    machine allows it (root, unshare); else as is (names resolve through the host's
    /etc/hosts, which holds every local cluster's block)."""
    from kubesim.kubelet_volumes import mount_namespace_available, wrap_argv

    if not mount_namespace_available():
        return list(cmd), False
    return wrap_argv(cmd, [(private_etc(state), "/etc", "overlay")], None, True), True


def start(cluster, extra_args=(), timeout=60.0, env_extra=None, prefix=()):
    """Start KubeRay against cluster (a localcluster.Cluster whose API server, kubelet,
    controllers and proxy run, KubeRay's CRDs installed); wait until /readyz answers 200.
    Returns the pid (recorded in cluster.json and DIR/kuberay-operator.json). prefix: a
    command the whole is run under (a benchmark's strace); the pid is then prefix's."""
    state = cluster.state
    prev = info(state)
    if _alive(prev.get("pid")):
        return prev["pid"]
    metrics_port, health_port = free_port(), free_port()
    deadline = time.monotonic() + timeout
    env = dict(os.environ)
    if (read_json(os.path.join(state, "apiserver.json")) or {}).get("control_plane") == "real":
        kc = kubeconfig(state)  # the real API server decodes protobuf itself
        # Pod addresses from the API (10.x) reach the pods through podnet, as a real pod
        # network would route them; Service names and the API server (loopback) go direct.
        _pid, podnet_url = start_podnet(cluster, timeout)
        env.update({"HTTP_PROXY": podnet_url, "NO_PROXY": ".cluster.local,.svc,localhost"})
    else:
        _shim_pid, shim_url = start_shim(cluster, timeout)
        kc = kubeconfig(state, shim_url)
    cmd = argv(kc, metrics_port, health_port, extra_args)
    full, private = wrap(cmd, state)
    full = list(prefix) + full
    env.pop("KUBECONFIG", None)
    env[MARK_CLUSTER] = state
    if env_extra:
        env.update(env_extra)
    os.makedirs(cluster.logs, exist_ok=True)
    logpath = os.path.join(cluster.logs, KUBERAY + ".log")
    logf = open(logpath, "ab")
    p = subprocess.Popen(full, cwd=state, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                         stderr=subprocess.STDOUT, start_new_session=True)
    logf.close()
    cluster.children[p.pid] = p
    write_json(info_path(state), {
        "pid": p.pid, "metrics_url": "http://127.0.0.1:%d/metrics" % metrics_port,
        "health_url": "http://127.0.0.1:%d" % health_port, "log": logpath, "argv": cmd,
        "private_etc": private, "kubeconfig": kc})
    _record(cluster, KUBERAY, p.pid)
    while True:
        if p.poll() is not None:
            raise RuntimeError("%s exited (%s); see %s" % (KUBERAY, p.returncode, logpath))
        if ready(state):
            return p.pid
        if time.monotonic() > deadline:
            raise RuntimeError("%s not ready after %.0fs; see %s" % (KUBERAY, timeout, logpath))
        time.sleep(0.05)


def ready(state):
    url = info(state).get("health_url")
    if not url:
        return False
    try:
        code, _ = http_get(url + "/readyz", 1.0)
        return code == 200
    except (OSError, urllib.error.URLError):
        return False


def _alive(pid):
    from kubesim.localcluster import alive

    return alive(pid)


def up(cluster, operator, quiet=False, timeout=60.0, extra_args=()):
    """The operator part of `local-cluster up`: install what `operator` needs and start it.
    Returns {component: pid} of what it started (raywarden is started by localcluster)."""
    if operator != "kuberay":
        return {}
    install_crds(cluster.state, quiet)
    pid = start(cluster, extra_args, timeout)
    out = {KUBERAY: pid}
    for name in (SHIM, PODNET):
        helper = (read_json(os.path.join(cluster.state, name + ".json")) or {}).get("pid")
        if helper:
            out[name] = helper
    return out


def stop(state, grace=8.0):
    """SIGTERM KubeRay (SIGKILL after grace); for tests (`down` stops COMPONENTS). Returns
    whether it ran."""
    from kubesim.localcluster import stop_pid

    return stop_pid(info(state).get("pid"), grace=grace)


def status_line(state, running):
    """One `status` line about KubeRay, or None when it is not a component here."""
    d = info(state)
    if not d or KUBERAY not in running:
        return None
    return "%-12s %s, metrics %s, log %s" % ("kuberay", "ready" if ready(state) else "NOT ready",
                                              d.get("metrics_url"), d.get("log"))


def main(argv_=None):
    """python3 -m kubesim.operators crds|rbac|argv --state DIR: what would be installed/run."""
    import argparse

    ap = argparse.ArgumentParser(prog="kubesim.operators")
    ap.add_argument("what", choices=("rbac", "argv", "gates"))
    a = ap.parse_args(argv_)
    if a.what == "rbac":
        print(json.dumps(rbac_objects(), indent=1))
    elif a.what == "gates":
        print(chart_feature_gates())
    else:
        print(" ".join(argv("KUBECONFIG", 0, 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

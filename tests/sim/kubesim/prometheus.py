"""A real Prometheus in the local cluster (`local-cluster up --prometheus`).

Prometheus finds raywarden exactly as in a real cluster: its configuration is generated from the
shipped manifests/prometheus/prometheus.yaml (the same jobs and relabelling), with only what a
host process needs to reach this cluster's API server added to each kubernetes_sd_config
(kubeconfig_file: the token of ServiceAccount monitoring/prometheus, bound by the shipped
manifests/prometheus/rbac.yaml, applied with the same `kubectl apply -k manifests/prometheus` a
user runs), a short scrape and evaluation interval, and the rule file's absolute path. So service
discovery runs under the shipped RBAC: a discovery list or watch it does not grant is a 403 here
too.

The controller runs as a host process, not in a pod, so nothing would put its metrics port in an
EndpointSlice. publish_controller() creates Service raywarden-system/raywarden-controller
(manifests/controller/service.yaml) and one EndpointSlice of it that it manages itself (label
endpointslice.kubernetes.io/managed-by=local-cluster.raywarden.io) pointing at the controller's
metrics listener; it is rewritten whenever the controller restarts (a new port). Legal in a real
cluster too: the EndpointSlice controller only touches slices whose managed-by label is
endpointslice-controller.k8s.io (kubernetes.io/docs/concepts/services-networking/
endpoint-slices/#management; pkg/controller/endpointslice reconciler), so a slice managed by
another party is left alone beside its own (empty) one.

Prometheus: $RW_PROMETHEUS, else upstream Prometheus built into the upstream cache
(tests/sim/upstream/build; Debian's /usr/bin/prometheus 2.42 is built without Kubernetes service
discovery: `kubernetes_sd_configs` is an unknown field there), else /usr/bin/prometheus when it
knows kubernetes_sd_configs.
"""

import json
import os
import shutil
import subprocess
import time
import urllib.error

from kubesim import controller_identity, realcp, upstream
from kubesim.kubeclient import ApiError, KubeClient
from kubesim.testutil import free_port, http_get, read_json, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
MANIFESTS = os.path.join(REPO_ROOT, "manifests", "prometheus")
SHIPPED = os.path.join(MANIFESTS, "prometheus.yaml")
SERVICE_YAML = os.path.join(REPO_ROOT, "manifests", "controller", "service.yaml")
NAMESPACE_YAML = os.path.join(REPO_ROOT, "manifests", "controller", "namespace.yaml")
SA_NAMESPACE, SA_NAME = "monitoring", "prometheus"
CONTROLLER_NS, CONTROLLER_SVC = "raywarden-system", "raywarden-controller"
SLICE_NAME = "raywarden-controller-local"
MANAGED_BY = "local-cluster.raywarden.io"
INTERVAL = "1s"
COMPONENT = "prometheus"


def _knows_kubernetes_sd(binary):
    """Whether this Prometheus build has Kubernetes service discovery (Debian's has not)."""
    try:
        r = subprocess.run([binary, "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        if r.returncode != 0:
            return False
        with open(binary, "rb") as f:
            return b"kubernetes_sd_configs" in f.read()
    except (OSError, subprocess.TimeoutExpired):
        return False


def binary(tool="prometheus"):
    """The prometheus (or promtool) to run, or None."""
    env = os.environ.get("RW_PROMETHEUS")
    if env:
        p = env if tool == "prometheus" else os.path.join(os.path.dirname(env), tool)
        return p if os.access(p, os.X_OK) else None
    p = os.path.join(upstream.prometheus_dir(), "bin", tool)
    if os.access(p, os.X_OK):
        return p
    p = shutil.which(tool)
    if p and _knows_kubernetes_sd(shutil.which("prometheus") or p):
        return p
    return None


def skip_reason():
    """None when a Prometheus with Kubernetes service discovery is here, else why not."""
    if binary() and binary("promtool"):
        return None
    if os.environ.get("RW_PROMETHEUS"):
        return ("$RW_PROMETHEUS=%s: not an executable prometheus with an executable promtool beside it"
                % os.environ["RW_PROMETHEUS"])
    return ("no Prometheus with Kubernetes service discovery: Debian's /usr/bin/prometheus is built "
            "without it; run tests/sim/upstream/build (builds upstream Prometheus %s into %s; needs Go)"
            % (upstream.PROMETHEUS, os.path.join(upstream.prometheus_dir(), "bin")))


def info(state):
    return read_json(os.path.join(state, "prometheus.json")) or {}


def shipped_config():
    with open(SHIPPED) as f:
        docs = controller_identity.load_all(f.read())
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise RuntimeError("%s: one configuration document expected" % SHIPPED)
    return docs[0]


def generate_config(shipped, kubeconfig, rules_dir=MANIFESTS, pod_network=False, interval=INTERVAL):
    """The configuration Prometheus runs here: `shipped` (a parsed prometheus.yaml) with each
    kubernetes_sd_config given kubeconfig_file, the intervals set to `interval` and rule_files
    resolved against rules_dir (Prometheus resolves them against the configuration's directory,
    and the generated one lives elsewhere). pod_network: the API shows pods on the real control plane's pod
    network (10.a.b.c, kubesim/realcp.py) while they listen on 127.a.b.c here; a last relabel
    step maps the address back, as a real cluster's pod network routes it. Pure; returns a dict
    (written as JSON, which is YAML)."""
    cfg = json.loads(json.dumps(shipped))
    g = cfg.setdefault("global", {}) or {}
    cfg["global"] = g
    g["scrape_interval"] = interval
    g["evaluation_interval"] = interval
    g["scrape_timeout"] = interval
    cfg["rule_files"] = [os.path.join(rules_dir, f) for f in cfg.get("rule_files") or []]
    for job in cfg.get("scrape_configs") or []:
        for sd in job.get("kubernetes_sd_configs") or []:
            if "api_server" in sd:
                raise RuntimeError("job %s: the shipped configuration must use in-cluster auth (no api_server)"
                                   % job.get("job_name"))
            sd["kubeconfig_file"] = kubeconfig
        if pod_network:
            job.setdefault("relabel_configs", []).append({
                "source_labels": ["__address__"], "regex": r"10\.(\d+\.\d+\.\d+)(:\d+)?",
                "target_label": "__address__", "replacement": "127.${1}${2}", "action": "replace"})
    return cfg


def _kubectl(state, *args):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        raise RuntimeError("kubectl not found (the Prometheus manifests are applied with it)")
    try:
        r = subprocess.run([kubectl, "--kubeconfig", os.path.join(state, "kubeconfig")] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    except subprocess.TimeoutExpired:
        raise RuntimeError("kubectl %s: no answer after 120 s" % " ".join(args))
    if r.returncode != 0:
        raise RuntimeError("kubectl %s failed:\n%s" % (" ".join(args), r.stdout.decode("utf-8", "replace")))
    return r.stdout.decode("utf-8", "replace")


def install(state):
    """What a user applies (docs/observability.md, "Installing in a real cluster"): raywarden's
    namespace and controller Service (part of manifests/), then `kubectl apply -k
    manifests/prometheus`. Returns the path of a kubeconfig with the Prometheus ServiceAccount's
    token."""
    _kubectl(state, "apply", "-f", NAMESPACE_YAML, "-f", SERVICE_YAML)
    _kubectl(state, "apply", "-k", MANIFESTS)
    tok = controller_identity.token(state, SA_NAMESPACE, SA_NAME)
    return controller_identity.write_kubeconfig(state, tok, SA_NAMESPACE,
                                                os.path.join(state, "prometheus", "prometheus.kubeconfig"),
                                                SA_NAME)


def controller_slice(address, port, ready=True):
    """The EndpointSlice that makes a host-process controller's metrics listener an endpoint
    of Service raywarden-system/raywarden-controller, port name `metrics`. ready=False: the
    controller has stopped; the endpoint stays, not ready, as a crashed container's pod keeps its
    endpoint until it restarts (Prometheus keeps such a target, and scrapes it as down). Pure."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": SLICE_NAME, "namespace": CONTROLLER_NS,
                         "labels": {"kubernetes.io/service-name": CONTROLLER_SVC,
                                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": ready, "serving": ready,
                                                                 "terminating": False}}],
            "ports": [{"name": "metrics", "port": port, "protocol": "TCP"}]}


def publish_controller(state, metrics_url, pod_network=False, ready=True):
    """Create or update the controller's EndpointSlice (and its Service) for metrics_url
    (http://127.0.0.1:PORT/metrics); ready: see controller_slice(). On the real control plane
    the address is given as the pod network shows it (a real API server refuses loopback
    endpoint addresses)."""
    hostport = metrics_url.split("://", 1)[1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    address = realcp.api_ip(host) if pod_network else host
    c = KubeClient.from_state_dir(state, user_agent="local-cluster-prometheus", timeout=30)
    try:
        if c.get_or_none("services", CONTROLLER_NS, CONTROLLER_SVC) is None:
            _kubectl(state, "apply", "-f", NAMESPACE_YAML, "-f", SERVICE_YAML)
        body = controller_slice(address, int(port), ready)
        cur = c.get_or_none("endpointslices", CONTROLLER_NS, SLICE_NAME)
        if cur is None:
            try:
                c.create("endpointslices", CONTROLLER_NS, body)
                return
            except ApiError as e:
                if e.code != 409:
                    raise
                cur = c.get("endpointslices", CONTROLLER_NS, SLICE_NAME)
        body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        c.replace("endpointslices", CONTROLLER_NS, SLICE_NAME, body)
    finally:
        conn = getattr(c._local, "conn", None)
        if conn is not None:
            conn.close()


def ready(url, timeout=1.0):
    try:
        code, _ = http_get(url.rstrip("/") + "/-/ready", timeout)
        return code == 200
    except (OSError, urllib.error.URLError):
        return False


def start(cluster, deadline, pod_network=False, progress=None):
    """Install the manifests, write the configuration, start Prometheus and wait until it is
    ready. Returns its pid; DIR/prometheus.json says {"url", "pid", "config"}."""
    state = cluster.state
    prom = binary()
    if not prom:
        raise RuntimeError(skip_reason())
    pdir = os.path.join(state, "prometheus")
    os.makedirs(pdir, exist_ok=True)
    try:
        kubeconfig = install(state)
    except ApiError as e:
        raise RuntimeError("installing manifests/prometheus: %s" % e)
    cfg = generate_config(shipped_config(), kubeconfig, MANIFESTS, pod_network)
    config = os.path.join(pdir, "prometheus.yml")
    write_json(config, cfg)
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    argv = [prom, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(pdir, "data"),
            "--web.listen-address=127.0.0.1:%d" % port, "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d", "--log.level=info"]
    p = cluster.spawn(COMPONENT, argv)
    write_json(os.path.join(state, "prometheus.json"), {"url": url, "pid": p.pid, "config": config})
    log = os.path.join(cluster.logs, COMPONENT + ".log")
    while not ready(url):
        if p.poll() is not None:
            raise RuntimeError("prometheus exited (%s); see %s" % (p.returncode, log))
        if time.monotonic() > deadline:
            p.kill()
            p.wait()
            raise RuntimeError("prometheus not ready in time; see %s" % log)
        time.sleep(0.05)
    return p.pid


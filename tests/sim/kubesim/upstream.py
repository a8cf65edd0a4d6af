"""Where the test world's upstream binaries are: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler (one multi-call `kube` binary) and KubeRay's operator, built once per machine by
tests/sim/upstream/build from the Go module proxy at pinned versions.

    from kubesim import upstream
    u = upstream.find()          # raises upstream.Missing(reason) when they are not built
    u.etcd, u.kube, u.kuberay    # absolute paths
    u.kuberay_src                # KubeRay's ray-operator module at its release (CRDs, RBAC, samples)

The cache is a versioned directory outside the work tree, shared by every clone and by CI on
the same machine: $RW_UPSTREAM_CACHE (default /var/cache/raywarden-upstream)/<VERSION_TAG>/.
RW_UPSTREAM_BIN points at another directory holding the same binaries (for a build by hand).
"""

import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_DIR = os.path.join(os.path.dirname(HERE), "upstream")

KUBERNETES = "v1.34.4"
ETCD = "v3.6.4"  # what k8s.io/kubernetes@KUBERNETES requires (its go.mod)
KUBERAY = "v1.5.0"
KUBERAY_MODULE = "github.com/ray-project/kuberay/ray-operator"
# Bump the last part when the build recipe changes, so every machine rebuilds once.
VERSION_TAG = "k8s-%s_etcd-%s_kuberay-%s_r1" % (KUBERNETES, ETCD, KUBERAY)
BINARIES = ("etcd", "kube", "kuberay-operator")

# Helm, for the chart's tests (manifests/charts/raywarden): its own cache directory beside the one
# above, so that adding or bumping it never rebuilds Kubernetes.
HELM = "v4.3.2"
HELM_MODULE = "helm.sh/helm/v4"
HELM_TAG = "helm-%s" % HELM

# Prometheus, for the local cluster's --prometheus (kubesim/prometheus.py): Debian's 2.42 package
# is built without Kubernetes service discovery, so the same release is built from its Go module
# (github.com/prometheus/prometheus tags v2.N.M as module version v0.N.M), with service discovery
# limited to dns, http and kubernetes (plugins/plugins.go; file and static are built in). Its own
# cache directory, as helm's.
PROMETHEUS = "v2.42.0"
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
PROMETHEUS_MODULE_VERSION = "v0.42.0"
PROMETHEUS_PLUGINS = ("dns", "http", "kubernetes")
PROMETHEUS_TAG = "prometheus-%s_r1" % PROMETHEUS


class Missing(RuntimeError):
    """The upstream binaries are not built here; str() says why and what to run."""


def cache_root():
    return os.environ.get("RW_UPSTREAM_CACHE") or "/var/cache/raywarden-upstream"


def cache_dir():
    return os.path.join(cache_root(), VERSION_TAG)


def bin_dir():
    return os.environ.get("RW_UPSTREAM_BIN") or os.path.join(cache_dir(), "bin")


def go_binary():
    for cand in (os.environ.get("GO"), "/usr/local/go/bin/go"):
        if cand and os.access(cand, os.X_OK):
            return cand
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, "go")
        if os.access(p, os.X_OK):
            return p
    return None


_module_dirs = {}


def module_dir(module, version):
    """The Go module cache directory of module@version (downloaded through the proxy if needed)."""
    key = (module, version)
    if key not in _module_dirs:
        go = go_binary()
        if not go:
            raise Missing("no Go toolchain (looked for $GO, /usr/local/go/bin/go and PATH)")
        r = subprocess.run([go, "mod", "download", "-json", "%s@%s" % (module, version)], cwd=MODULE_DIR,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        try:
            d = json.loads(r.stdout)
        except ValueError:
            raise Missing("go mod download %s@%s failed: %s" % (module, version, r.stdout.decode(errors="replace")[-500:]))
        if r.returncode != 0 or not d.get("Dir"):
            raise Missing("go mod download %s@%s failed: %s" % (module, version, d.get("Error")))
        _module_dirs[key] = d["Dir"]
    return _module_dirs[key]


class Upstream:
    def __init__(self, bindir):
        self.bin_dir = bindir
        self.etcd = os.path.join(bindir, "etcd")
        self.kube = os.path.join(bindir, "kube")
        self.kuberay = os.path.join(bindir, "kuberay-operator")

    @property
    def kuberay_src(self):
        return module_dir(KUBERAY_MODULE, KUBERAY)

    @property
    def kubernetes_src(self):
        return module_dir("k8s.io/kubernetes", KUBERNETES)


def find():
    d = bin_dir()
    missing = [b for b in BINARIES if not os.access(os.path.join(d, b), os.X_OK)]
    if missing:
        raise Missing("%s not built in %s: run tests/sim/upstream/build (needs Go and the Go module proxy; "
                      "about 15 minutes once per machine)" % (", ".join(missing), d))
    return Upstream(d)


def helm_dir():
    return os.path.join(cache_root(), HELM_TAG)


def prometheus_dir():
    return os.path.join(cache_root(), PROMETHEUS_TAG)


def helm_binary():
    """The built helm, or None. $RW_HELM points at another helm of the same release."""
    p = os.environ.get("RW_HELM") or os.path.join(helm_dir(), "bin", "helm")
    return p if os.access(p, os.X_OK) else None


def helm_skip_reason():
    """None when helm is built, else why not (for unittest skips)."""
    if helm_binary():
        return None
    return ("helm %s is not built in %s: run tests/sim/upstream/build (needs Go and the Go module proxy; "
            "a few minutes once per machine)" % (HELM, os.path.join(helm_dir(), "bin")))


def skip_reason():
    """None when the upstream binaries are here, else why not (for unittest skips)."""
    try:
        find()
        return None
    except Missing as e:
        return str(e)

"""raywarden-controller's own identity on a simulated cluster (and, through the same functions,
any operator's: operators.py binds KubeRay's ServiceAccount from KubeRay's config/rbac).

The API server simulator enforces RBAC for ServiceAccount tokens (apiserver_rbac.py), so the
controller runs as it does in production: as ServiceAccount raywarden-system/raywarden-controller,
bound by the install's own manifests (manifests/controller/namespace.yaml and manifests/rbac/*.yaml,
applied here as the admin through the API). A request the ClusterRole does not grant is answered 403, exactly as a
real API server would. Used by the local cluster (localcluster.py), the e2e harnesses and the
benchmarks.
"""

import json
import os
import re

from kubesim.kubeclient import ApiError, KubeClient

NAMESPACE = "raywarden-system"
NAME = "raywarden-controller"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))

# kind -> (API path, plural, namespaced) of what the RBAC manifests hold.
KINDS = {"Namespace": ("api/v1", "namespaces", False),
         "ServiceAccount": ("api/v1", "serviceaccounts", True),
         "ClusterRole": ("apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
         "ClusterRoleBinding": ("apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
         "Role": ("apis/rbac.authorization.k8s.io/v1", "roles", True),
         "RoleBinding": ("apis/rbac.authorization.k8s.io/v1", "rolebindings", True)}


def manifest_files(repo_root=REPO_ROOT):
    m = os.path.join(repo_root, "manifests")
    return [os.path.join(m, "controller", "namespace.yaml")] + sorted(
        os.path.join(m, "rbac", f) for f in os.listdir(os.path.join(m, "rbac")) if f.endswith(".yaml"))


# ---- the YAML of these manifests ------------------------------------------------------------------
# The simulator is standard-library Python, so the few block-style documents of manifests/rbac
# (mappings, sequences, flow sequences of quoted strings, comments, '---') are read by this small
# loader; anything outside that subset is an error, never a silent misreading.

def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _scalar(v):
    v = re.sub(r"\s+#.*$", "", v).strip()
    if v.startswith(("[", '"', "{")):
        return json.loads(v)
    if v in ("true", "false"):
        return v == "true"
    if re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    if v in ("null", "~"):
        return None
    if v[:1] in ("'", "&", "*", "!", "|", ">"):
        raise ValueError("unsupported YAML scalar %r" % v)
    return v


def _block(lines, i):
    if lines[i].lstrip().startswith("- ") or lines[i].strip() == "-":
        return _seq(lines, i, _indent(lines[i]))
    return _map(lines, i, _indent(lines[i]))


def _seq(lines, i, ind):
    out = []
    while i < len(lines) and _indent(lines[i]) == ind and lines[i].lstrip().startswith("- "):
        rest = lines[i][ind + 2:]
        if re.match(r"^[A-Za-z0-9_./-]+:(\s|$)", rest):
            lines[i] = " " * (ind + 2) + rest  # "- key: v" opens a mapping at ind + 2
            v, i = _map(lines, i, ind + 2)
        else:
            v, i = _scalar(rest), i + 1
        out.append(v)
    return out, i


def _map(lines, i, ind):
    out = {}
    while i < len(lines) and _indent(lines[i]) == ind and not lines[i].lstrip().startswith("- "):
        m = re.match(r"^([A-Za-z0-9_./-]+):(?:\s+(.*))?$", lines[i].strip())
        if not m:
            raise ValueError("unsupported YAML line %r" % lines[i])
        i += 1
        if m.group(2) is not None and m.group(2).strip() and not m.group(2).lstrip().startswith("#"):
            out[m.group(1)] = _scalar(m.group(2))
        elif i < len(lines) and (_indent(lines[i]) > ind or (
                _indent(lines[i]) == ind and lines[i].lstrip().startswith("- "))):
            out[m.group(1)], i = _block(lines, i)
        else:
            out[m.group(1)] = None
    if i < len(lines) and _indent(lines[i]) > ind:
        raise ValueError("unexpected indentation at %r" % lines[i])
    return out, i


def load_all(text):
    """The documents of a multi-document YAML text of the subset above."""
    docs = []
    for chunk in re.split(r"(?m)^---[ \t]*$", text):
        lines = [ln.rstrip() for ln in chunk.splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            continue
        doc, i = _block(lines, 0)
        if i != len(lines):
            raise ValueError("cannot read YAML from %r on" % lines[i])
        docs.append(doc)
    return docs


def manifest_objects(repo_root=REPO_ROOT):
    objs = []
    for f in manifest_files(repo_root):
        with open(f) as fh:
            objs += load_all(fh.read())
    return objs


def _admin(state_dir):
    return KubeClient.from_state_dir(state_dir, user_agent="kubesim-identity", timeout=30)


def _close(c):
    conn = getattr(c._local, "conn", None)
    if conn is not None:
        conn.close()


def apply_rbac(state_dir, repo_root=REPO_ROOT):
    """Create (or replace) the namespace, ServiceAccount, ClusterRole(Binding) and
    leader-election Role(Binding) as the admin. Idempotent: it also restores a binding a test
    removed."""
    apply_objects(state_dir, manifest_objects(repo_root))


def apply_objects(state_dir, objs):
    """Create (or replace) objects of KINDS as the admin, in order (namespaced ones carry
    metadata.namespace)."""
    c = _admin(state_dir)
    try:
        _apply(c, objs)
    finally:
        _close(c)


def _apply(c, objs):
    for obj in objs:
        prefix, plural, namespaced = KINDS[obj["kind"]]
        ns = obj["metadata"].get("namespace") if namespaced else None
        coll = prefix + ("/namespaces/%s" % ns if ns else "") + "/" + plural
        try:
            c.request("POST", coll, obj)
        except ApiError as e:
            if e.code != 409:
                raise
            cur = c.request("GET", coll + "/" + obj["metadata"]["name"])
            new = dict(obj, metadata=dict(obj["metadata"],
                                          resourceVersion=cur["metadata"]["resourceVersion"]))
            c.request("PUT", coll + "/" + obj["metadata"]["name"], new)


def token(state_dir, namespace=NAMESPACE, name=NAME):
    """A bearer token of the ServiceAccount (TokenRequest, as the admin)."""
    c = _admin(state_dir)
    try:
        tr = c.create("serviceaccounts", namespace, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 86400}},
            sub="token", name=name)
    finally:
        _close(c)
    return tr["status"]["token"]


def write_kubeconfig(state_dir, tok, namespace=NAMESPACE, out=None, name=NAME):
    """The admin kubeconfig with the ServiceAccount's token, its context in the controller's
    namespace (where the leader-election Role lets it hold its Lease); DIR/<name>.kubeconfig
    unless out says where."""
    with open(os.path.join(state_dir, "kubeconfig")) as f:
        text = f.read()
    lines = []
    for line in text.splitlines():
        if line.startswith("    token: "):
            line = "    token: " + tok
        elif line.startswith("    namespace: "):
            line = "    namespace: " + namespace
        lines.append(line)
    out = out or os.path.join(state_dir, name + ".kubeconfig")
    tmp = out + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)
    return out


def controller_kubeconfig(state_dir, repo_root=REPO_ROOT, out=None):
    """Apply the RBAC manifests and write the controller's kubeconfig; returns its path."""
    return service_account_kubeconfig(state_dir, manifest_objects(repo_root), NAMESPACE, NAME, out=out)


def service_account_kubeconfig(state_dir, objs, namespace, name, out=None):
    """Apply objs (an install's namespace, ServiceAccount and RBAC) as the admin and write a
    kubeconfig with a token of ServiceAccount namespace/name (DIR/<name>.kubeconfig unless
    out says where); returns its path."""
    apply_objects(state_dir, objs)
    return write_kubeconfig(state_dir, token(state_dir, namespace, name), namespace, out, name)

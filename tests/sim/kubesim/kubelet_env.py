"""Pure pieces of the kubelet simulator: container environment, $(VAR) expansion,
downward API, quantities, image classification, pod IP allocation and pod status
helpers.  No I/O here, so every rule is unit-tested with tables."""

import base64
import ipaddress
import re
import shlex
import threading

# ---------------------------------------------------------------------------------
# $(VAR) expansion.
# Follows kubernetes third_party/forked/golang/expansion/expand.go (Expand,
# tryReadVariableName): "$(VAR)" is replaced when VAR is defined, "$$" escapes a
# "$", an undefined or unterminated reference is left as written.  Documented at
# https://kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/
# ---------------------------------------------------------------------------------


def _try_read_variable_name(s):
    if s[0] == "$":
        return "$", False, 1
    if s[0] == "(":
        for i in range(1, len(s)):
            if s[i] == ")":
                return s[1:i], True, i + 1
        return "$(", False, 1
    return "$" + s[0], False, 1


def expand(text, *maps):
    """Expand $(VAR) references in text using the first map that defines VAR."""

    def mapping(name):
        for m in maps:
            if name in m:
                return m[name]
        return "$(" + name + ")"

    buf = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            buf.append(text[checkpoint:cursor])
            read, is_var, advance = _try_read_variable_name(text[cursor + 1:])
            buf.append(mapping(read) if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(buf) + text[checkpoint:]


# ---------------------------------------------------------------------------------
# Quantities (resource.Quantity) for resourceFieldRef.
# https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/
# ---------------------------------------------------------------------------------

_SUFFIX = {
    "": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "Pi": 1024 ** 5, "Ei": 1024 ** 6,
}
_QTY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(q):
    """A Kubernetes quantity ("500m", "2Gi", "1e3", 3) as a float."""
    if isinstance(q, (int, float)):
        return float(q)
    m = _QTY.match(str(q).strip())
    if not m:
        raise ValueError("bad quantity %r" % (q,))
    num, suf = m.groups()
    if suf not in _SUFFIX:
        raise ValueError("bad quantity suffix %r" % (q,))
    return float(num) * _SUFFIX[suf]


def _ceil_div(a, b):
    import math

    return int(math.ceil(a / b - 1e-12))


def resource_field_value(container, resource, divisor=None, node_allocatable=None):
    """Value of a resourceFieldRef as the kubelet renders it: the container's limit
    (or request), falling back to node allocatable for unset limits, divided by the
    divisor and rounded up (pkg/api/v1/resource/helpers.go ExtractContainerResourceValue;
    https://kubernetes.io/docs/concepts/workloads/pods/downward-api/#downwardapi-resourcefieldref)."""
    res = container.get("resources") or {}
    kind, _, name = resource.partition(".")
    if kind in ("limits", "requests"):
        src = res.get(kind) or {}
        val = src.get(name)
        if val is None and kind == "limits":
            val = (node_allocatable or {}).get(name)
        if val is None and kind == "requests":
            val = 0
    else:
        val = None
    if val is None:
        val = 0
    v = parse_quantity(val)
    if divisor in (None, "", 0, "0"):
        divisor = "1" if name != "cpu" else "1"
    d = parse_quantity(divisor)
    if d == 0:
        d = 1
    return str(_ceil_div(v, d))


# ---------------------------------------------------------------------------------
# Downward API field paths.
# https://kubernetes.io/docs/concepts/workloads/pods/downward-api/#downwardapi-fieldRef
# (pkg/fieldpath/fieldpath.go ExtractFieldPathAsString and the kubelet's
# podFieldSelectorRuntimeValue for spec.* / status.*).
# ---------------------------------------------------------------------------------

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def field_ref_value(pod, field_path, pod_ip="", host_ip=""):
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = _SUBSCRIPT.match(field_path)
    if m:
        which, key = m.groups()
        return (md.get(which) or {}).get(key, "")
    if field_path in ("metadata.labels", "metadata.annotations"):
        d = md.get(field_path.split(".")[1]) or {}
        return "\n".join('%s="%s"' % (k, d[k]) for k in sorted(d))
    simple = {
        "metadata.name": md.get("name", ""),
        "metadata.namespace": md.get("namespace", "default"),
        "metadata.uid": md.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName") or spec.get("serviceAccount") or "default",
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if field_path in simple:
        return simple[field_path]
    raise ValueError("unsupported fieldPath %r" % field_path)


# ---------------------------------------------------------------------------------
# The container environment.
# Order follows pkg/kubelet/kubelet_pods.go makeEnvironmentVariables: envFrom
# sources in order (prefix applied, invalid names skipped), then env in order with
# each value expanded against what is defined so far plus the service variables,
# then service variables not already set.
# ---------------------------------------------------------------------------------


class EnvError(Exception):
    """A missing non-optional ConfigMap/Secret (the kubelet reports
    CreateContainerConfigError and does not start the container)."""


_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def _service_env_name(name):
    return name.upper().replace("-", "_")


def service_env(services):
    """Docker-link style variables for Services in the pod's namespace
    (pkg/kubelet/envvars/envvars.go FromServices;
    https://kubernetes.io/docs/concepts/services-networking/service/#environment-variables)."""
    env = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        if not ip.startswith("127."):
            # The service proxy serves non-loopback cluster IPs on its own address.
            ip = ((svc.get("metadata") or {}).get("annotations") or {}).get("kubesim.raywarden.io/proxy-cluster-ip", ip)
        ports = spec.get("ports") or []
        if not ports:
            continue
        prefix = _service_env_name(svc["metadata"]["name"])
        env[prefix + "_SERVICE_HOST"] = ip
        env[prefix + "_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                env[prefix + "_SERVICE_PORT_" + _service_env_name(p["name"])] = str(p.get("port"))
        first = ports[0]
        proto = (first.get("protocol") or "TCP").lower()
        env[prefix + "_PORT"] = "%s://%s:%s" % (proto, ip, first.get("port"))
        for p in ports:
            proto = (p.get("protocol") or "TCP")
            base = "%s_PORT_%s_%s" % (prefix, p.get("port"), proto.upper())
            env[base] = "%s://%s:%s" % (proto.lower(), ip, p.get("port"))
            env[base + "_PROTO"] = proto.lower()
            env[base + "_PORT"] = str(p.get("port"))
            env[base + "_ADDR"] = ip
    return env


def build_env(pod, container, lookup, pod_ip="", host_ip="", svc_env=None, node_allocatable=None):
    """The environment (ordered list of (name, value)) of one container.

    lookup(kind, name) returns the ConfigMap/Secret object or None; kind is
    "configmaps" or "secrets".  Raises EnvError for a missing non-optional
    reference."""
    svc_env = svc_env or {}
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    out = {}
    order = []

    def put(k, v):
        if k not in out:
            order.append(k)
        out[k] = v

    def source_data(kind, name):
        obj = lookup(kind, name)
        if obj is None:
            return None
        data = dict(obj.get("data") or {})
        if kind == "secrets":
            data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}
            for k, v in (obj.get("stringData") or {}).items():
                data[k] = v
        else:
            for k, v in (obj.get("binaryData") or {}).items():
                data[k] = base64.b64decode(v).decode("utf-8", "replace")
        return data

    for ef in container.get("envFrom") or []:
        prefix = ef.get("prefix", "")
        if "configMapRef" in ef:
            ref, kind = ef["configMapRef"], "configmaps"
        elif "secretRef" in ef:
            ref, kind = ef["secretRef"], "secrets"
        else:
            continue
        data = source_data(kind, ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise EnvError("%s %s/%s not found" % (kind[:-1], ns, ref.get("name")))
        for k in sorted(data):
            name = prefix + k
            if _ENV_NAME.match(name):
                put(name, data[k])

    for e in container.get("env") or []:
        name = e.get("name")
        if not name:
            continue
        if "value" in e or "valueFrom" not in e:
            put(name, expand(e.get("value", "") or "", out, svc_env))
            continue
        vf = e["valueFrom"] or {}
        if "fieldRef" in vf:
            put(name, field_ref_value(pod, vf["fieldRef"].get("fieldPath", ""), pod_ip, host_ip))
        elif "resourceFieldRef" in vf:
            r = vf["resourceFieldRef"]
            target = container
            cname = r.get("containerName")
            if cname:
                spec = pod.get("spec") or {}
                for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                    if c.get("name") == cname:
                        target = c
            put(name, resource_field_value(target, r.get("resource", ""), r.get("divisor"), node_allocatable))
        elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
            kind = "configmaps" if "configMapKeyRef" in vf else "secrets"
            ref = vf.get("configMapKeyRef") or vf.get("secretKeyRef")
            data = source_data(kind, ref.get("name", ""))
            if data is None or ref.get("key") not in data:
                if ref.get("optional"):
                    continue
                raise EnvError("%s %s/%s key %s not found" % (kind[:-1], ns, ref.get("name"), ref.get("key")))
            put(name, data[ref["key"]])
    for k, v in svc_env.items():
        if k not in out:
            put(k, v)
    return [(k, out[k]) for k in order]


def expand_command(container, env_map):
    """command and args with $(VAR) expanded against the container env
    (https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/#use-environment-variables-to-define-arguments)."""
    cmd = [expand(str(x), env_map) for x in (container.get("command") or [])]
    args = [expand(str(x), env_map) for x in (container.get("args") or [])]
    return cmd, args


# ---------------------------------------------------------------------------------
# Images.  The simulator picks what to run from the image reference.
# ---------------------------------------------------------------------------------


def image_repository(image):
    """The repository path of an image reference without registry host, tag or digest:
    "docker.io/rayproject/ray:2.52.0" -> "rayproject/ray"."""
    ref = image.split("@", 1)[0]
    parts = ref.split("/")
    last = parts[-1]
    if ":" in last:
        parts[-1] = last.split(":", 1)[0]
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts)


def image_kind(image):
    """"ray", "agent", "controller", "redis", "python" or "idle" (see docs/local-cluster.md)."""
    repo = image_repository(image or "")
    name = repo.split("/")[-1]
    if repo.endswith("raywarden-agent") or repo.endswith("raywarden/agent"):
        return "agent"
    if repo.endswith("raywarden-controller") or repo.endswith("raywarden/controller"):
        return "controller"
    if (repo.startswith("rayproject/ray") or repo.startswith("anyscale/ray") or name == "ray"
            or "ray-ml" in name):
        return "ray"
    if repo == "redis" or repo.endswith("/redis"):
        return "redis"
    if name == "python":
        return "python"
    return "idle"


# The controller's listeners (flag, default when the flag is absent). A pod has its own network
# namespace, where ":8080" binds the pod's address only; here every pod shares the host's, so a
# listener on all addresses is bound to the pod IP instead, or two replicas would collide.
CONTROLLER_LISTENERS = (("--metrics-addr", ":8080"), ("--health-probe-bind-address", ":8082"),
                        ("--agent-listen", "tcp://0.0.0.0:8478"))


def _pod_local_addr(value, pod_ip):
    """":8080", "0.0.0.0:8080", "tcp://0.0.0.0:8478", "tcp://*:8478" -> the same port on pod_ip;
    "0" (disabled) and an explicit address are kept."""
    scheme = ""
    rest = value
    if rest.startswith("tcp://"):
        scheme, rest = "tcp://", rest[len("tcp://"):]
    host, sep, port = rest.rpartition(":")
    if not sep or host not in ("", "0.0.0.0", "*", "[::]"):
        return value
    return "%s%s:%s" % (scheme, pod_ip, port)


def controller_args(args, pod_ip):
    """raywarden-controller's args with its all-address listeners bound to pod_ip (later flags
    win in the controller's parser, so a missing flag is appended with its default)."""
    out = list(args)
    for flag, default in CONTROLLER_LISTENERS:
        seen = False
        for i, a in enumerate(out):
            if a.startswith(flag + "="):
                out[i] = flag + "=" + _pod_local_addr(a[len(flag) + 1:], pod_ip)
                seen = True
            elif a == flag and i + 1 < len(out):
                out[i + 1] = _pod_local_addr(out[i + 1], pod_ip)
                seen = True
        if not seen:
            out.append(flag + "=" + _pod_local_addr(default, pod_ip))
    return out


# Words allowed as the first word of every simple command in a script the idle
# container runs with bash: loops, sleeps and output only.
SAFE_SHELL_WORDS = {
    "while", "until", "do", "done", "for", "in", "if", "then", "else", "elif", "fi", "true", "false",
    ":", "sleep", "echo", "printf", "exit", "trap", "wait", "date", "test", "[", "[[", "seq", "break",
    "continue",
}
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "ash", "/bin/ash", "dash"}


def _script_is_safe(script, depth=0):
    if "`" in script or "$(" in script or depth > 3:
        return False  # no command substitution
    try:
        lex = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>\n")
        lex.whitespace = " \t\r"
        lex.whitespace_split = True
        toks = list(lex)
    except ValueError:
        return False
    expect_cmd = True
    trap_arg = False
    for t in toks:
        if trap_arg:
            trap_arg = False
            if not _script_is_safe(t, depth + 1):
                return False  # a trap handler is a script too
            continue
        if t and all(ch in ";&|()\n" for ch in t):
            expect_cmd = True
            continue
        if t and all(ch in "<>" for ch in t):
            return False  # no redirections to files
        if expect_cmd:
            if "=" in t and not t.startswith("="):
                continue  # VAR=value prefix
            if t not in SAFE_SHELL_WORDS:
                return False
            expect_cmd = t in ("do", "then", "else", "elif", "while", "until", "if", "in")
            trap_arg = t == "trap"
            if t in ("for",):
                expect_cmd = False
        elif t in ("do", "then", "else", "done", "fi"):
            expect_cmd = t in ("do", "then", "else")
    return True


def idle_argv(cmd, args):
    """What an "idle" container runs: its own command when it is a plain sleep or a
    shell script made only of loops, sleeps and echo (run with bash), otherwise a
    sleep until killed.  Returns (argv, ran_own_command)."""
    full = list(cmd) + list(args)
    if full and full[0] in ("sleep", "/bin/sleep", "/usr/bin/sleep") and len(full) == 2:
        return ["sleep", full[1]], True
    if len(full) >= 2 and full[0] in SHELLS:
        rest = full[1:]
        flags = []
        while rest and rest[0].startswith("-") and rest[0] != "--" and rest[0] != "-c":
            flags.append(rest.pop(0))
        if rest and rest[0] == "-c":
            rest.pop(0)
            if rest and rest[0] == "--":
                rest.pop(0)
            if rest and _script_is_safe(rest[0]):
                return ["bash", "-c", rest[0]] + rest[1:], True
    return ["sleep", "infinity"], False


# ---------------------------------------------------------------------------------
# Pod IPs: each node owns a /24 of 127.10.0.0/16 (node.spec.podCIDR), as the
# node IPAM controller hands out per-node pod CIDRs
# (https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/ --allocate-node-cidrs).
# ---------------------------------------------------------------------------------


class IPAllocator:
    """Hands out host addresses of one CIDR, skipping network/broadcast and
    rotating through the range before reusing a freed address."""

    def __init__(self, cidr):
        self.net = ipaddress.ip_network(cidr)
        self.hosts = [str(h) for h in self.net.hosts()]
        self.used = set()
        self.next = 0
        self.lock = threading.Lock()

    def allocate(self, preferred=None):
        with self.lock:
            if preferred and preferred in self.hosts and preferred not in self.used:
                self.used.add(preferred)
                return preferred
            for i in range(len(self.hosts)):
                ip = self.hosts[(self.next + i) % len(self.hosts)]
                if ip not in self.used:
                    self.used.add(ip)
                    self.next = (self.next + i + 1) % len(self.hosts)
                    return ip
        raise RuntimeError("pod CIDR %s exhausted" % self.net)

    def release(self, ip):
        with self.lock:
            self.used.discard(ip)


def node_pod_cidr(index):
    return "127.10.%d.0/24" % index


def node_ip(index):
    return "127.11.%d.1" % index


# ---------------------------------------------------------------------------------
# Pod-level status helpers.
# ---------------------------------------------------------------------------------


def container_port(container, port):
    """Resolve a probe/Service port given by number or by container port name."""
    if isinstance(port, int):
        return port
    s = str(port)
    if s.isdigit():
        return int(s)
    for p in container.get("ports") or []:
        if p.get("name") == s:
            return int(p.get("containerPort"))
    raise ValueError("no container port named %r" % s)


def qos_class(pod):
    """Pod QoS class (pkg/apis/core/helper/qos/qos.go;
    https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/)."""
    conts = (pod.get("spec") or {}).get("containers") or []
    any_set = False
    guaranteed = True
    for c in conts:
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            lv = lim.get(r)
            rv = req.get(r, lv)
            if lv is None or rv is None or parse_quantity(lv) != parse_quantity(rv):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def pod_phase(restart_policy, init_failed_permanently, initialized, container_states):
    """Pod phase from container states, after pkg/kubelet/kubelet_pods.go getPhase
    (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-phase).

    container_states: list of (state, exit_code): "waiting" (never started),
    "running", "terminated", or "backoff" (waiting to restart after exit_code;
    getPhase counts such a container as stopped)."""
    if init_failed_permanently:
        return "Failed"
    if not initialized:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for state, code in container_states:
        if state == "running":
            running += 1
        elif state in ("terminated", "backoff"):
            stopped += 1
            if code == 0:
                succeeded += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"

"""The real Kubernetes control plane for a local cluster (`local-cluster up --control-plane real`).

etcd, kube-apiserver, kube-controller-manager and kube-scheduler at the pinned release
(kubesim/upstream.py), each a process of the local cluster, all bound to the cluster's own
loopback address and keeping everything in its state directory:

    DIR/pki/          CA, API server serving certificate, ServiceAccount signing key pair
    DIR/etcd/         etcd's data (fsync off: a test cluster, never a production one)
    DIR/tokens.csv    static bearer tokens: the admin (group system:masters)
    DIR/kubeconfig, DIR/token, DIR/ca.crt, DIR/apiserver.json
                      what the simulator's API server writes, in the same shape, so the kubelet
                      and proxy simulators, kubectl, the tests and raywarden-controller use the
                      real server unchanged.

The API server runs with RBAC authorization, the ServiceAccount issuer and keys, and its default
admission chain (nothing enabled or disabled by flag). The controller manager runs every default
controller (deployment, replicaset, job, endpoints, endpointslice, garbage collector, namespace,
serviceaccount, node lifecycle, ...); the scheduler places pods by their requests on the Nodes the
kubelet simulator registers.

What cannot be real here, and why: pods are processes on loopback addresses (127.x.y.z), and the
real API server refuses loopback addresses in Endpoints and EndpointSlices
(pkg/apis/core/validation ValidateEndpointIP). So on this control plane the kubelet simulator
reports each pod under an address of the pod network POD_NETWORK (10.x.y.z for the pod that
listens on 127.x.y.z: kubelet --pod-network), and what reads pod addresses from the API
(the proxy simulator, the tests) maps them back with `host_ip()`. Inside a pod, the downward API's
status.podIP is the address the pod can bind, as on a real node.
"""

import base64
import os
import shutil
import socket
import ssl
import time
import urllib.error

from kubesim import kubelet_ipam, pki, upstream
from kubesim.testutil import http_get, pick_ip

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
POD_NETWORK = "10.0.0.0/8"  # API view of the pods' 127.0.0.0/8 addresses: first octet 127 <-> 10


def api_ip(host_ip):
    """The pod address the API shows for a pod listening on host_ip (127.a.b.c -> 10.a.b.c)."""
    parts = host_ip.split(".")
    if len(parts) == 4 and parts[0] == "127":
        return "10." + ".".join(parts[1:])
    return host_ip


def host_ip(ip):
    """Where on this host a pod address from the API listens (10.a.b.c -> 127.a.b.c); any
    other address (the simulated control plane reports 127.x.y.z itself) is returned as is."""
    parts = (ip or "").split(".")
    if len(parts) == 4 and parts[0] == "10":
        return "127." + ".".join(parts[1:])
    return ip


def free_ports_on(host, n):
    """n distinct TCP ports free on host a moment ago (held open together, so never one twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def make_pki(state, host, service_ip):
    """CA, serving certificate (for host, localhost, the `kubernetes` Service's IP and names), the
    API server's client certificate towards the kubelets, and the ServiceAccount signing key pair."""
    pki_dir = os.path.join(state, "pki")
    os.makedirs(pki_dir, exist_ok=True)
    p = {n: os.path.join(pki_dir, n) for n in ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key",
                                               "sa.pub", "kubelet-client.crt", "kubelet-client.key")}
    if all(os.path.exists(v) for v in p.values()):
        return p
    pki.make_ca(p["ca.key"], p["ca.crt"], "local-cluster-ca")
    pki.sign(p["ca.crt"], p["ca.key"], p["apiserver.key"], p["apiserver.crt"], "/CN=kube-apiserver",
             pki.api_server_sans([host, api_ip(host), "127.0.0.1", service_ip],
                                 ["kubernetes.default.svc.cluster.local"]))
    # The API server's client certificate towards the kubelets (kubectl logs goes through it).
    pki.sign(p["ca.crt"], p["ca.key"], p["kubelet-client.key"], p["kubelet-client.crt"],
             "/O=system:masters/CN=kube-apiserver-kubelet-client", "extendedKeyUsage=clientAuth\n")
    pki.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p["sa.key"])
    pki.openssl("pkey", "-in", p["sa.key"], "-pubout", "-out", p["sa.pub"])
    os.chmod(p["sa.key"], 0o600)
    return p


def kubelet_serving_cert(state, name, ips):
    """(cert, key, CA) for a kubelet's HTTPS API on ips, signed by the cluster's CA; None when
    the state directory has no real control plane's PKI."""
    pki_dir = os.path.join(state, "pki")
    ca_crt, ca_key = os.path.join(pki_dir, "ca.crt"), os.path.join(pki_dir, "ca.key")
    if not (os.path.exists(ca_crt) and os.path.exists(ca_key)):
        return None
    crt, key = os.path.join(pki_dir, "kubelet-%s.crt" % name), os.path.join(pki_dir, "kubelet-%s.key" % name)
    pki.sign(ca_crt, ca_key, key, crt, "/CN=%s" % name,
            "subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % ",".join("IP:" + ip for ip in ips))
    return crt, key, ca_crt


def first_ip(cidr):
    net, _ = cidr.split("/")
    a = [int(x) for x in net.split(".")]
    return "%d.%d.%d.%d" % (a[0], a[1], a[2], a[3] + 1)


class Plan:
    """Addresses, files and command lines of one real control plane; start() is the caller's
    (localcluster.Cluster.spawn keeps pids and logs like every other component)."""

    def __init__(self, state, host, service_cidr, token):
        self.up = upstream.find()
        self.state = state
        self.host = host
        self.service_cidr = service_cidr
        self.token = token
        (self.etcd_client, self.etcd_peer, self.api_port, self.kcm_port,
         self.sched_port) = free_ports_on(host, 5)
        self.url = "https://%s:%d" % (host, self.api_port)
        self.pki = make_pki(state, host, first_ip(service_cidr))

    def write_credentials(self):
        """tokens.csv, the admin kubeconfig and the simulator-shaped state files."""
        import json

        with open(os.path.join(self.state, "tokens.csv"), "w") as f:
            f.write('%s,admin,admin-uid,"system:masters"\n' % self.token)
        os.chmod(os.path.join(self.state, "tokens.csv"), 0o600)
        with open(os.path.join(self.state, "token"), "w") as f:
            f.write(self.token + "\n")
        ca = os.path.join(self.state, "ca.crt")
        with open(self.pki["ca.crt"]) as src, open(ca, "w") as dst:
            dst.write(src.read())
        kc = ("apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: %s\n"
              "    certificate-authority: %s\ncontexts:\n- name: local\n  context:\n    cluster: local\n"
              "    user: admin\n    namespace: default\ncurrent-context: local\npreferences: {}\nusers:\n"
              "- name: admin\n  user:\n    token: %s\n" % (self.url, ca, self.token))
        path = os.path.join(self.state, "kubeconfig")
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(kc)
        os.replace(path + ".tmp", path)
        info = {"url": self.url, "host": self.host, "port": self.api_port, "token": self.token, "tls": True,
                "ca": ca, "control_plane": "real", "kubernetes": upstream.KUBERNETES,
                "service_cidr": self.service_cidr, "pod_network": POD_NETWORK}
        with open(os.path.join(self.state, "apiserver.json.tmp"), "w") as f:
            json.dump(info, f)
        os.replace(os.path.join(self.state, "apiserver.json.tmp"), os.path.join(self.state, "apiserver.json"))

    def argv(self, name):
        kc = os.path.join(self.state, "kubeconfig")
        if name == "etcd":
            peer = "http://%s:%d" % (self.host, self.etcd_peer)
            client = "http://%s:%d" % (self.host, self.etcd_client)
            return [self.up.etcd, "--name", "local", "--data-dir", os.path.join(self.state, "etcd"),
                    "--listen-client-urls", client, "--advertise-client-urls", client,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", "local=" + peer, "--initial-cluster-state", "new",
                    "--unsafe-no-fsync", "--listen-metrics-urls", "", "--log-level", "warn"]
        if name == "kube-apiserver":
            return [self.up.kube, "kube-apiserver",
                    "--etcd-servers", "http://%s:%d" % (self.host, self.etcd_client),
                    "--bind-address", self.host, "--secure-port", str(self.api_port),
                    # The `kubernetes` Service's endpoint: under its pod-network name, as the
                    # real server refuses a loopback endpoint (the proxy maps it back).
                    "--advertise-address", api_ip(self.host),
                    "--tls-cert-file", self.pki["apiserver.crt"], "--tls-private-key-file", self.pki["apiserver.key"],
                    "--client-ca-file", self.pki["ca.crt"],
                    "--token-auth-file", os.path.join(self.state, "tokens.csv"),
                    "--authorization-mode", "RBAC",
                    "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                    "--service-account-key-file", self.pki["sa.pub"],
                    "--service-account-signing-key-file", self.pki["sa.key"],
                    "--api-audiences", "https://kubernetes.default.svc.cluster.local,https://kubernetes.default.svc",
                    "--service-cluster-ip-range", self.service_cidr,
                    "--kubelet-client-certificate", self.pki["kubelet-client.crt"],
                    "--kubelet-client-key", self.pki["kubelet-client.key"],
                    "--kubelet-certificate-authority", self.pki["ca.crt"],
                    "--kubelet-preferred-address-types", "InternalIP",
                    "--allow-privileged=true", "--profiling=false", "--v=1"]
        if name == "kube-controller-manager":
            return [self.up.kube, "kube-controller-manager", "--kubeconfig", kc,
                    "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
                    "--bind-address", self.host, "--secure-port", str(self.kcm_port),
                    "--leader-elect=false", "--use-service-account-credentials=false",
                    "--service-account-private-key-file", self.pki["sa.key"],
                    "--root-ca-file", self.pki["ca.crt"],
                    "--cluster-signing-cert-file", self.pki["ca.crt"], "--cluster-signing-key-file", self.pki["ca.key"],
                    "--service-cluster-ip-range", self.service_cidr, "--profiling=false", "--v=1"]
        if name == "kube-scheduler":
            return [self.up.kube, "kube-scheduler", "--kubeconfig", kc,
                    "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
                    "--bind-address", self.host, "--secure-port", str(self.sched_port),
                    "--leader-elect=false", "--profiling=false", "--v=1"]
        raise KeyError(name)

    def health_url(self, name):
        return {"kube-apiserver": "%s/readyz" % self.url,
                "kube-controller-manager": "https://%s:%d/healthz" % (self.host, self.kcm_port),
                "kube-scheduler": "https://%s:%d/healthz" % (self.host, self.sched_port)}.get(name)


def wait_tcp(host, port, proc, deadline, what, log):
    while True:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%s); see %s" % (what, proc.returncode, log))
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("%s not listening after the deadline; see %s" % (what, log))
        time.sleep(0.05)


def _owner(state):
    return "realcp:%s" % os.path.abspath(state)


def release(state):
    """Give back the Service range start() claimed for this state directory."""
    kubelet_ipam.release("clusterip", _owner(state))


def _wait_healthy(url, proc, deadline, what, log, token=None, cafile=None):
    while True:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%s); see %s" % (what, proc.returncode, log))
        try:
            if http_get(url, 1.0, token, cafile)[0] == 200:
                return
        except (OSError, urllib.error.URLError, ssl.SSLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("%s not ready in time; see %s" % (what, log))
        time.sleep(0.1)


def start(state, spawn, deadline, logs, scheduler=True):
    """Start the control plane for state directory `state`: spawn(name, argv) -> Popen starts
    one component (the caller records pids and logs, in logs/<name>.log). Returns the Plan once
    the API server is ready and the controller manager (and scheduler) answer /healthz.
    scheduler=False leaves binding to someone else (the fake kubelet binds as kwok does)."""
    for d in ("etcd", "pki"):
        shutil.rmtree(os.path.join(state, d), ignore_errors=True)
    host = pick_ip(())
    owner = _owner(state)
    token = base64.b16encode(os.urandom(24)).decode().lower()
    # The Service range is claimed host-wide like the simulator's (127.200.x.0/20): by this
    # process until etcd runs, then by etcd's, so a crashed cluster's range is reclaimed.
    release(state)
    octet = kubelet_ipam.claim("clusterip", owner, 1, first=0, last=15)[0]
    plan = Plan(state, host, "127.200.%d.0/20" % (octet * 16), token)
    plan.write_credentials()
    etcd = spawn("etcd", plan.argv("etcd"))
    kubelet_ipam.claim("clusterip", owner, 1, first=octet, last=octet, pid=etcd.pid)
    log = lambda n: os.path.join(logs, n + ".log")  # noqa: E731
    wait_tcp(host, plan.etcd_client, etcd, deadline, "etcd", log("etcd"))
    api = spawn("kube-apiserver", plan.argv("kube-apiserver"))
    _wait_healthy(plan.health_url("kube-apiserver"), api, deadline, "kube-apiserver", log("kube-apiserver"),
                  token, os.path.join(state, "ca.crt"))
    rest = ("kube-controller-manager", "kube-scheduler") if scheduler else ("kube-controller-manager",)
    procs = {n: spawn(n, plan.argv(n)) for n in rest}
    for n in rest:
        _wait_healthy(plan.health_url(n), procs[n], deadline, n, log(n))
    return plan

"""Service proxy simulator (kube-proxy stand-in) and cluster DNS stand-in.

For every Service with a cluster IP it listens on clusterIP:port and forwards each
TCP connection to one ready endpoint from the Service's EndpointSlices, picked at
random as kube-proxy's iptables mode does (statistic --mode random).  With no
ready endpoint it falls back to serving-but-terminating endpoints (KEP-1669,
ProxyTerminatingEndpoints); with none at all the connection is reset, standing in
for kube-proxy's REJECT rule for services without endpoints
(pkg/proxy/iptables/proxier.go, "has no endpoints" -> REJECT).  Counters of
forwarded and failed connections are kept per service port.

Names: a marked block in /etc/hosts maps <svc>.<ns>.svc.cluster.local,
<svc>.<ns>.svc, <svc>.<ns> and (see docs) <svc> to the cluster IP; headless
Services map to their ready pod IPs.

Run:  python3 -m kubesim.proxy --state-dir DIR      (cwd or PYTHONPATH = tests/sim)
"""

import argparse
import errno
import fcntl
import http.server
import ipaddress
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

from . import kubelet_ipam, realcp
from .kubeclient import ApiError, Informer, KubeClient

IP_ANNOTATION = "kubesim.raywarden.io/proxy-cluster-ip"
FALLBACK_PREFIX = "127.201.%d.0/24"  # one /24 of 127.201.0.0/16 per cluster
CLUSTER_DOMAIN = "cluster.local"
HOSTS_FILE = "/etc/hosts"


def log(msg):
    sys.stderr.write("%s proxy: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def local_ip(ip):
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        return False


def effective_cluster_ip(svc):
    """The address the simulator serves a Service on: spec.clusterIP when it is a
    loopback address, else the proxy's own allocation recorded in an annotation;
    "None" for headless Services, None when there is none yet."""
    spec = svc.get("spec") or {}
    ip = spec.get("clusterIP")
    if ip == "None":
        return "None"
    if spec.get("type") == "ExternalName":
        return None
    if ip and local_ip(ip):
        return ip
    ann = ((svc.get("metadata") or {}).get("annotations") or {}).get(IP_ANNOTATION)
    return ann or None


# ---------------------------------------------------------------------------------
# /etc/hosts block.
# ---------------------------------------------------------------------------------


def hosts_entries(services, slices):
    """[(ip, [names])] for the hosts block.  Short names: <svc> resolves to the
    Service of that name in "default" if there is one, else to the only Service with
    that name in any namespace; an ambiguous short name is left out."""
    entries = []
    by_short = {}
    for svc in services:
        md = svc["metadata"]
        ns, name = md.get("namespace", "default"), md["name"]
        ip = effective_cluster_ip(svc)
        if ip is None:
            continue
        fq = ["%s.%s.svc.%s" % (name, ns, CLUSTER_DOMAIN), "%s.%s.svc" % (name, ns), "%s.%s" % (name, ns)]
        if ip == "None":
            # Headless: A records for the ready endpoints
            # (https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/#services).
            ips = []
            for sl in slices:
                if (sl["metadata"].get("namespace") == ns and
                        (sl["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name):
                    for ep in sl.get("endpoints") or []:
                        if (ep.get("conditions") or {}).get("ready", True) is not False:
                            ips.extend(realcp.host_ip(a) for a in ep.get("addresses") or [])
            ips = sorted(set(ips), key=lambda a: tuple(int(x) for x in a.split(".")))
            targets = ips
        else:
            targets = [ip]
        for t in targets:
            entries.append((t, list(fq)))
        by_short.setdefault(name, []).append((ns, targets))
    for name, lst in sorted(by_short.items()):
        pick = [x for x in lst if x[0] == "default"]
        if not pick and len(lst) == 1:
            pick = lst
        if pick:
            for t in pick[0][1]:
                entries.append((t, [name]))
    return entries


def render_block(tag, entries):
    lines = ["# BEGIN kubesim %s" % tag]
    merged = {}
    order = []
    for ip, names in entries:
        if ip not in merged:
            merged[ip] = []
            order.append(ip)
        merged[ip].extend(n for n in names if n not in merged[ip])
    for ip in order:
        lines.append("%s %s" % (ip, " ".join(merged[ip])))
    lines.append("# END kubesim %s" % tag)
    return "\n".join(lines) + "\n"


def replace_block(text, tag, block):
    begin = "# BEGIN kubesim %s" % tag
    end = "# END kubesim %s" % tag
    out = []
    skipping = False
    for line in text.splitlines(keepends=True):
        s = line.rstrip("\n")
        if s == begin:
            skipping = True
            continue
        if skipping:
            if s == end:
                skipping = False
            continue
        out.append(line)
    body = "".join(out)
    if body and not body.endswith("\n"):
        body += "\n"
    return body + (block or "")


def strip_blocks(text):
    """text without any kubesim block (every local cluster's)."""
    out = []
    skipping = False
    for line in text.splitlines(keepends=True):
        s = line.rstrip("\n")
        if s.startswith("# BEGIN kubesim "):
            skipping = True
            continue
        if skipping:
            if s.startswith("# END kubesim "):
                skipping = False
            continue
        out.append(line)
    body = "".join(out)
    return body if not body or body.endswith("\n") else body + "\n"


class HostsFile:
    """Maintains one marked block in /etc/hosts: flock on a lock file, write to a
    temporary file and rename over the original; when the rename is refused (the file
    is a bind mount, as in many containers) the file is rewritten in place.

    With private_path it also keeps this cluster's own hosts file: the host's entries
    without any local cluster's block, and this cluster's block first. The kubelet lays
    its directory over /etc in every container (the real kubelet manages each pod's
    /etc/hosts too), so that parallel local clusters with the same Service names (two
    `redis` in `default`, the same sample applied twice) never resolve into each other.
    It is rewritten in place, so that running containers see every update."""

    def __init__(self, tag, path=HOSTS_FILE, private_path=None):
        self.tag = tag
        self.path = path
        self.private_path = private_path
        self.last = None
        self.warned = False

    def write_private(self, host_text, block):
        if not self.private_path:
            return
        data = (block or "") + strip_blocks(host_text)
        try:
            os.makedirs(os.path.dirname(self.private_path), exist_ok=True)
            with open(self.private_path, "a+") as f:
                f.seek(0)
                if f.read() == data:
                    return
                f.seek(0)
                f.truncate()
                f.write(data)
        except OSError as e:
            log("warning: cannot write %s: %s" % (self.private_path, e))

    def write(self, block):
        if block == self.last:
            return True
        try:
            with open(self.path + ".kubesim.lock", "a") as lk:
                fcntl.flock(lk, fcntl.LOCK_EX)
                try:
                    with open(self.path) as f:
                        cur = f.read()
                except FileNotFoundError:
                    cur = ""
                new = replace_block(cur, self.tag, block)
                self.write_private(cur, block)
                if new != cur:
                    tmp = self.path + ".kubesim.tmp"
                    try:
                        st = os.stat(self.path)
                        with open(tmp, "w") as f:
                            f.write(new)
                        os.chmod(tmp, st.st_mode & 0o7777)
                        os.replace(tmp, self.path)
                    except OSError as e:
                        try:
                            os.unlink(tmp)
                        except OSError:
                            pass
                        if e.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES, errno.EROFS):
                            raise
                        with open(self.path, "r+") as f:
                            f.write(new)
                            f.truncate()
            self.last = block
            return True
        except OSError as e:
            if not self.warned:
                log("warning: cannot update %s (%s); service names will not resolve" % (self.path, e))
                self.warned = True
            return False

    def remove(self):
        self.last = None
        self.write("")


# ---------------------------------------------------------------------------------
# The proxy.
# ---------------------------------------------------------------------------------


class Counters:
    def __init__(self):
        self.forwarded = 0
        self.failed = 0
        self.rejected = 0
        self.active = 0
        self.bytes = 0

    def as_dict(self):
        return {"forwarded": self.forwarded, "failed": self.failed, "rejected": self.rejected,
                "active": self.active, "bytes": self.bytes}


def rst_close(sock):
    """Close with an RST (SO_LINGER 0): what a REJECT --reject-with tcp-reset or a
    refused connection looks like to the client."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


TRACE_PATH = os.environ.get("KUBESIM_PROXY_TRACE")
_trace_lock = threading.Lock()


def trace(rec):
    """With KUBESIM_PROXY_TRACE=<file>: append one JSON line (a connection that went
    wrong, or an endpoint change) for tracing failed requests to their cause."""
    if not TRACE_PATH:
        return
    rec = dict(rec)
    rec["t"] = round(time.time(), 4)
    with _trace_lock:
        try:
            with open(TRACE_PATH, "a") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
        except OSError:
            pass


def pump(src, dst, counter, lock, res=None):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            with lock:
                counter.bytes += len(data)
            if res is not None:
                res["bytes"] = res.get("bytes", 0) + len(data)
    except OSError as e:
        if res is not None:
            res["err"] = "%s: %s" % (type(e).__name__, e)
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Listener:
    def __init__(self, proxy, ip, port, key):
        self.proxy = proxy
        self.ip = ip
        self.port = port
        self.key = key  # (ns, svc, port name)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(256)
        self.closed = False
        self.thread = threading.Thread(target=self.loop, daemon=True, name="listen-%s:%d" % (ip, port))
        self.thread.start()

    def loop(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                if self.closed:
                    return
                time.sleep(0.01)
                continue
            threading.Thread(target=self.proxy.handle, args=(self.key, conn), daemon=True).start()

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class ServiceProxy:
    def __init__(self, state_dir=None, client=None, hosts_path=HOSTS_FILE, manage_hosts=True, seed=None):
        self.state_dir = os.path.abspath(state_dir) if state_dir else None
        self.client = client or KubeClient.from_state_dir(state_dir, user_agent="kubesim-proxy")
        self.lock = threading.RLock()
        self.listeners = {}  # (ip, port) -> Listener
        self.counters = {}  # "ns/svc:port" -> Counters
        self.rng = random.Random(seed)
        self.hosts = HostsFile(self.state_dir or "default", hosts_path,
                               os.path.join(self.state_dir, "etc", "hosts") if self.state_dir else None) \
            if manage_hosts else None
        self.fallback_used = set()
        self.pending_alloc = set()
        self.ipam_owner = self.state_dir or ("proxy-%d" % os.getpid())
        octet = kubelet_ipam.claim("services", self.ipam_owner, 1, first=0, last=255)[0]
        self.fallback_net = [str(h) for h in ipaddress.ip_network(FALLBACK_PREFIX % octet).hosts()]
        self.services = Informer(self.client, "services", self.on_change)
        self.slices = Informer(self.client, "endpointslices", self.on_change)
        self.kick = threading.Event()
        self.stop_ev = threading.Event()
        self.control = None

    # -- informer reactions --------------------------------------------------------

    def on_change(self, etype, obj, old):
        if TRACE_PATH and obj and obj.get("kind", "EndpointSlice") == "EndpointSlice" and "endpoints" in obj:
            eps = [(a, (ep.get("conditions") or {})) for ep in obj.get("endpoints") or [] for a in ep.get("addresses") or []]
            trace({"ev": "slice", "type": etype, "name": obj["metadata"].get("name"),
                   "rv": obj["metadata"].get("resourceVersion"),
                   "eps": ["%s r=%s s=%s t=%s" % (a, c.get("ready"), c.get("serving"), c.get("terminating"))
                           for a, c in eps]})
        self.sync()

    def allocate_fallback(self, svc):
        """Give a Service a loopback cluster IP when the API server handed out one that
        is not routable here; recorded in an annotation so that every component agrees."""
        md = svc["metadata"]
        with self.lock:
            for s in self.services.items():
                a = ((s.get("metadata") or {}).get("annotations") or {}).get(IP_ANNOTATION)
                if a:
                    self.fallback_used.add(a)
            ip = None
            for cand in self.fallback_net:
                if cand not in self.fallback_used:
                    ip = cand
                    break
            if ip is None:
                return
            self.fallback_used.add(ip)
        try:
            self.client.patch("services", md.get("namespace", "default"), md["name"],
                              {"metadata": {"annotations": {IP_ANNOTATION: ip}}})
        except (ApiError, OSError) as e:
            log("annotate %s/%s: %s" % (md.get("namespace"), md["name"], e))
            with self.lock:
                self.fallback_used.discard(ip)
                self.pending_alloc.discard(md.get("uid") or md["name"])

    def sync(self):
        with self.lock:
            wanted = {}
            for svc in self.services.items():
                spec = svc.get("spec") or {}
                ip = effective_cluster_ip(svc)
                if ip is None and spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None":
                    uid = svc["metadata"].get("uid") or svc["metadata"]["name"]
                    if uid not in self.pending_alloc:
                        self.pending_alloc.add(uid)
                        threading.Thread(target=self.allocate_fallback, args=(svc,), daemon=True).start()
                    continue
                if ip in (None, "None"):
                    continue
                md = svc["metadata"]
                for p in spec.get("ports") or []:
                    if (p.get("protocol") or "TCP") != "TCP":
                        continue
                    wanted[(ip, int(p["port"]))] = (md.get("namespace", "default"), md["name"], p.get("name", ""))
            for k in list(self.listeners):
                if k not in wanted or self.listeners[k].key != wanted[k]:
                    self.listeners.pop(k).close()
            for k, key in wanted.items():
                if k not in self.listeners:
                    try:
                        self.listeners[k] = Listener(self, k[0], k[1], key)
                    except OSError as e:
                        log("listen %s:%d for %s/%s: %s" % (k[0], k[1], key[0], key[1], e))
                self.counters.setdefault(self.ckey(key), Counters())
            if self.hosts is not None and self.services.synced.is_set() and self.slices.synced.is_set():
                self.hosts.write(render_block(self.hosts.tag, hosts_entries(self.services.items(), self.slices.items())))

    @staticmethod
    def ckey(key):
        return "%s/%s:%s" % key

    def endpoints_for(self, key):
        """(ready, serving-terminating) lists of (ip, port) for a service port."""
        ns, name, pname = key
        ready, term = [], []
        for sl in self.slices.items():
            md = sl.get("metadata") or {}
            if md.get("namespace") != ns or (md.get("labels") or {}).get("kubernetes.io/service-name") != name:
                continue
            port = None
            for p in sl.get("ports") or []:
                if (p.get("name") or "") == pname and (p.get("protocol") or "TCP") == "TCP":
                    port = p.get("port")
            if port is None:
                continue
            for ep in sl.get("endpoints") or []:
                c = ep.get("conditions") or {}
                for a in map(realcp.host_ip, ep.get("addresses") or []):
                    if c.get("ready", True) is not False:
                        ready.append((a, int(port)))
                    elif c.get("serving") and c.get("terminating"):
                        term.append((a, int(port)))
        return ready, term

    def handle(self, key, conn):
        ck = self.ckey(key)
        with self.lock:
            cnt = self.counters.setdefault(ck, Counters())
        ready, term = self.endpoints_for(key)
        cands = ready or term
        if not cands:
            with self.lock:
                cnt.failed += 1
                cnt.rejected += 1
            rst_close(conn)
            return
        target = self.rng.choice(cands)
        t_acc = time.time()
        try:
            peer = conn.getpeername()[1]
        except OSError:
            peer = None
        try:
            up = socket.create_connection(target, timeout=5)
        except OSError as e:
            with self.lock:
                cnt.failed += 1
            trace({"ev": "connect-failed", "svc": ck, "peer": peer, "target": "%s:%d" % target,
                   "err": "%s: %s" % (type(e).__name__, e), "ready": ["%s:%d" % x for x in ready],
                   "term": ["%s:%d" % x for x in term], "t_acc": round(t_acc, 4)})
            rst_close(conn)
            return
        up.settimeout(None)
        conn.settimeout(None)
        for s in (up, conn):
            try:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        with self.lock:
            cnt.forwarded += 1
            cnt.active += 1
        down = {} if TRACE_PATH else None
        t = threading.Thread(target=pump, args=(up, conn, cnt, self.lock, down), daemon=True)
        t.start()
        pump(conn, up, cnt, self.lock)
        t.join()
        if down is not None and (down.get("err") or not down.get("bytes")):
            trace({"ev": "upstream-bad", "svc": ck, "peer": peer, "target": "%s:%d" % target,
                   "down": down, "ready": ["%s:%d" % x for x in ready], "term": ["%s:%d" % x for x in term],
                   "t_acc": round(t_acc, 4), "now_ready": ["%s:%d" % x for x in self.endpoints_for(key)[0]]})
        for s in (up, conn):
            try:
                s.close()
            except OSError:
                pass
        with self.lock:
            cnt.active -= 1

    def stats(self):
        with self.lock:
            return {k: v.as_dict() for k, v in sorted(self.counters.items())}

    def table(self):
        out = {}
        with self.lock:
            for (ip, port), l in self.listeners.items():
                ready, term = self.endpoints_for(l.key)
                out["%s:%d" % (ip, port)] = {"service": self.ckey(l.key), "ready": ["%s:%d" % e for e in ready],
                                             "terminating": ["%s:%d" % e for e in term]}
        return out

    # -- control -------------------------------------------------------------------

    def start_control(self, port=0):
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.startswith("/stats"):
                    body = proxy.stats()
                elif self.path.startswith("/services"):
                    body = proxy.table()
                elif self.path.startswith("/healthz"):
                    body = {"ok": True}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.control = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.control.daemon_threads = True
        threading.Thread(target=self.control.serve_forever, daemon=True, name="proxy-control").start()
        return "http://127.0.0.1:%d" % self.control.server_address[1]

    def start(self, control_port=0):
        self.services.start()
        self.slices.start()
        self.services.synced.wait(10)
        self.slices.synced.wait(10)
        self.sync()
        url = self.start_control(control_port)
        if self.state_dir:
            tmp = os.path.join(self.state_dir, "proxy.json.tmp")
            with open(tmp, "w") as f:
                json.dump({"pid": os.getpid(), "control_url": url}, f)
            os.replace(tmp, os.path.join(self.state_dir, "proxy.json"))
        return url

    def stop(self):
        self.stop_ev.set()
        self.services.stop()
        self.slices.stop()
        with self.lock:
            for l in self.listeners.values():
                l.close()
            self.listeners.clear()
        if self.hosts is not None:
            self.hosts.remove()
        kubelet_ipam.release("services", self.ipam_owner)
        if self.control:
            self.control.shutdown()
            self.control.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="service proxy simulator")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--hosts-file", default=HOSTS_FILE)
    ap.add_argument("--no-hosts", action="store_true")
    ap.add_argument("--control-port", type=int, default=0)
    args = ap.parse_args(argv)
    p = ServiceProxy(args.state_dir, hosts_path=args.hosts_file, manage_hosts=not args.no_hosts)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    url = p.start(args.control_port)
    log("ready: control %s" % url)
    while not stop.wait(1.0):
        pass
    p.stop()
    log("stopped")


if __name__ == "__main__":
    main()

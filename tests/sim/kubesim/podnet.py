"""The pod network for host processes on the real control plane: an HTTP forward proxy that
reaches a pod address from the API (10.a.b.c) where the pod listens on this host (127.a.b.c).

Real API servers refuse loopback addresses in Endpoints and EndpointSlices, so on
`--control-plane real` the kubelet simulator reports pods as 10.a.b.c (realcp.host_ip). A
component that dials pod IPs it read from the API, as KubeRay does for its Serve-proxy health
check (GET http://<podIP>:8000/-/healthz), would find them unroutable here while a real
cluster's pod network routes them. operators.py starts KubeRay with HTTP_PROXY pointing here (Go's
net/http honours it for plain http:// URLs and never proxies loopback hosts, so its API server
connection is untouched) and NO_PROXY for the cluster's Service names, which already resolve.

Only absolute-form http:// requests are served, one per connection (Connection: close both
ways); CONNECT and other schemes get 405. A host outside 10.0.0.0/8 is dialled as given. Every
peer is bounded: 10 s to send its request head (64 KiB at most), a 1 MiB body cap, 30 s of
silence either way before the connection is dropped, at most 256 connections at once.

    python3 -m kubesim.podnet --state-dir DIR [--name NAME]
        writes DIR/<name>.json {"pid", "url", "requests", "failed"} once it listens
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

from kubesim.realcp import host_ip

HEAD_MAX = 64 * 1024
BODY_MAX = 1 << 20
HEAD_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 256
# Requests podnet refuses by kind (405); any other reason target() gives is a malformed one (400).
NO_CONNECT = "CONNECT is not served"
NOT_ABSOLUTE = "only absolute http:// URLs are served"
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade"}


def log(msg):
    sys.stderr.write("%s podnet: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def read_head(sock, limit=HEAD_MAX):
    """Bytes up to and including the blank line, and what came after it; None on EOF or overflow."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > limit:
            return None
        chunk = sock.recv(8192)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def target(request_line):
    """(method, host, port, origin-form path) of an absolute-form http:// request line, or a
    reason it cannot be served."""
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return "malformed request line"
    method, uri = parts[0], parts[1]
    if method == "CONNECT":
        return NO_CONNECT
    u = urllib.parse.urlsplit(uri)
    if u.scheme != "http" or not u.hostname:
        return NOT_ABSOLUTE
    try:
        port = u.port or 80
    except ValueError:
        return "bad port"
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    return method, u.hostname, port, path


def rewrite_head(head_lines, host, port):
    """Request headers for the pod: hop-by-hop ones dropped, Host kept, Connection: close."""
    out = []
    for line in head_lines:
        name = line.split(":", 1)[0].strip().lower()
        if name in HOP:
            continue
        out.append(line)
    if not any(line.lower().startswith("host:") for line in out):
        out.append("Host: %s:%d" % (host, port))
    out.append("Connection: close")
    return out


def content_length(lines):
    for line in lines:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            try:
                return int(v.strip())
            except ValueError:
                return -1
    return 0


class Proxy:
    def __init__(self):
        self.requests = 0
        self.failed = 0
        self.lock = threading.Lock()

    def answer(self, conn, code, reason):
        body = (reason + "\n").encode()
        try:
            conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % (code, {405: b"Method Not Allowed", 400: b"Bad Request",
                                                                  502: b"Bad Gateway"}.get(code, b"Error"), len(body))
                         + body)
        except OSError:
            pass

    def serve(self, conn, slots):
        try:
            self._serve(conn)
        finally:
            slots.release()

    def _serve(self, conn):
        with conn:
            conn.settimeout(HEAD_TIMEOUT_S)
            try:
                got = read_head(conn)
            except OSError:
                return
            if got is None:
                return
            head, rest = got
            lines = head.decode("latin-1").split("\r\n")[:-2]
            t = target(lines[0])
            if isinstance(t, str):
                return self.answer(conn, 405 if t in (NO_CONNECT, NOT_ABSOLUTE) else 400, t)
            method, host, port, path = t
            n = content_length(lines[1:])
            if n < 0 or n > BODY_MAX or any(x.lower().startswith("transfer-encoding:") for x in lines[1:]):
                return self.answer(conn, 400, "a request body needs a Content-Length of at most %d" % BODY_MAX)
            with self.lock:
                self.requests += 1
            try:
                while len(rest) < n:
                    chunk = conn.recv(min(65536, n - len(rest)))
                    if not chunk:
                        return
                    rest += chunk
                up = socket.create_connection((host_ip(host), port), timeout=IDLE_TIMEOUT_S)
            except OSError as e:
                with self.lock:
                    self.failed += 1
                return self.answer(conn, 502, "%s:%d: %s" % (host, port, e))
            with up:
                out = ["%s %s %s" % (method, path, lines[0].rsplit(" ", 1)[1])] + rewrite_head(lines[1:], host, port)
                conn.settimeout(IDLE_TIMEOUT_S)
                try:
                    up.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + rest[:n])
                    # The pod closes after its answer (Connection: close); so does the client's side.
                    while True:
                        chunk = up.recv(65536)
                        if not chunk:
                            break
                        conn.sendall(chunk)
                except OSError:
                    with self.lock:
                        self.failed += 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog="kubesim.podnet")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--name", default="podnet", help="DIR/<name>.json")
    a = ap.parse_args(argv)
    proxy = Proxy()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    info = os.path.join(a.state_dir, a.name + ".json")

    def write():
        tmp = info + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"pid": os.getpid(), "url": "http://127.0.0.1:%d" % lsock.getsockname()[1],
                       "requests": proxy.requests, "failed": proxy.failed}, f)
        os.replace(tmp, info)

    write()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    def stats():
        last = None
        while True:
            time.sleep(1.0)
            cur = (proxy.requests, proxy.failed)
            if cur != last:
                write()
                last = cur

    threading.Thread(target=stats, daemon=True).start()
    log("listening on %s" % (lsock.getsockname(),))
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    while True:
        slots.acquire()
        conn, _ = lsock.accept()
        threading.Thread(target=proxy.serve, args=(conn, slots), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())

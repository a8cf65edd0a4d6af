"""A loopback HTTPS front of the API server simulator that turns protobuf request bodies into
JSON (protojson.py) and passes everything else through unchanged, responses streamed (watches).

The simulator decodes protobuf for four kinds only (apiserver_proto.py); controller-runtime
clients such as KubeRay send every built-in kind (Service, Pod, Role, RoleBinding, Job,
DeleteOptions) as protobuf. operators.py points KubeRay's kubeconfig here. The request is
otherwise untouched: same path, query, headers, the client's own bearer token (RBAC is the
simulator's), so the simulator sees what a real API server would have decoded.

    python3 -m kubesim.protoshim --state-dir DIR --k8s-version v0.34.1
        writes DIR/protoshim.json {"pid", "url", "decoded", "failed"} once it listens
"""

import argparse
import http.client
import http.server
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse

from kubesim import protojson

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host",
       "content-length"}
PROTOBUF = "application/vnd.kubernetes.protobuf"


def log(msg):
    sys.stderr.write("%s protoshim: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Shim:
    def __init__(self, state_dir, version):
        self.state_dir = state_dir
        self.version = version
        with open(os.path.join(state_dir, "apiserver.json")) as f:
            a = json.load(f)
        self.upstream = urllib.parse.urlsplit(a.get("url") or "https://%s:%s" % (a.get("host", "127.0.0.1"),
                                                                                 a.get("port")))
        self.ctx = ssl.create_default_context(cafile=os.path.join(state_dir, "ca.crt"))
        self.local = threading.local()
        self.counts = {"decoded": 0, "failed": 0}
        self.lock = threading.Lock()
        self.verbose = bool(os.environ.get("RW_PROTOSHIM_VERBOSE"))
        self.failed_path = None
        protojson.schema(version)  # fail early when the Go types are not there

    def conn(self, fresh=False):
        c = getattr(self.local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            if self.upstream.scheme == "https":
                c = http.client.HTTPSConnection(self.upstream.hostname, self.upstream.port, context=self.ctx,
                                                timeout=600)
            else:
                c = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=600)
            self.local.conn = c
        return c

    def count(self, k):
        with self.lock:
            self.counts[k] += 1


def handler_class(shim):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            ctype = self.headers.get("Content-Type", "")
            if body and ctype.startswith(PROTOBUF):
                try:
                    body = protojson.to_json(body, shim.version)
                    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
                    headers["Content-Type"] = "application/json"
                    shim.count("decoded")
                except Exception as e:  # noqa: BLE001 -- whatever it is, the simulator answers it
                    shim.count("failed")
                    log("%s %s: cannot decode the protobuf body (%r); passed on as is; body in %s"
                        % (self.command, self.path, e, shim.failed_path))
                    with open(shim.failed_path, "wb") as f:
                        f.write(body)
            if body is not None:
                headers["Content-Length"] = str(len(body))
            for attempt in range(2):
                c = shim.conn(fresh=attempt > 0)
                try:
                    c.request(self.command, self.path, body=body, headers=headers)
                    r = c.getresponse()
                    break
                except (OSError, http.client.HTTPException):
                    if attempt:
                        self.send_error(502)
                        return
            if shim.verbose:
                log("%s %s %s -> %s %s" % (self.command, self.path, sorted(self.headers.keys()), r.status,
                                           r.getheader("Content-Type")))
            self.send_response_only(r.status, r.reason)
            length = r.getheader("Content-Length")
            for k, v in r.getheaders():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            if length is not None:
                self.send_header("Content-Length", length)
                self.end_headers()
                self.wfile.write(r.read())
                self.wfile.flush()
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while True:
                    chunk = r.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                shim.conn(fresh=True)
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

    return H


def main(argv=None):
    ap = argparse.ArgumentParser(prog="kubesim.protoshim")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--k8s-version", required=True, help="k8s.io/api version of the client (its go.mod)")
    ap.add_argument("--name", default="protoshim", help="DIR/<name>.json")
    a = ap.parse_args(argv)
    shim = Shim(a.state_dir, a.k8s_version)
    shim.failed_path = os.path.join(a.state_dir, a.name + "-last-failed.bin")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class(shim))
    srv.daemon_threads = True
    # TLS with the API server's own serving certificate (127.0.0.1): client-go sends a
    # kubeconfig's bearer token over TLS only, and the kubeconfig's CA stays valid.
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(os.path.join(a.state_dir, "apiserver.crt"), os.path.join(a.state_dir, "apiserver.key"))
    sctx.set_alpn_protocols(["http/1.1"])
    srv.socket = sctx.wrap_socket(srv.socket, server_side=True)
    info = os.path.join(a.state_dir, a.name + ".json")

    def write():
        tmp = info + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(shim.counts, pid=os.getpid(), url="https://127.0.0.1:%d" % srv.server_address[1]), f)
        os.replace(tmp, info)

    write()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown, daemon=True).start())

    def stats():
        last = None
        while True:
            time.sleep(1.0)
            cur = dict(shim.counts)
            if cur != last:
                write()
                last = cur

    threading.Thread(target=stats, daemon=True).start()
    log("listening on %s for %s" % (srv.server_address, shim.upstream.geturl()))
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

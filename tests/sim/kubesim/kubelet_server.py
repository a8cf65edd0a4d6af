"""The kubelet's own HTTPS API on each simulated Node (port 10250), for a real control plane.

A real kube-apiserver answers `pods/log` (kubectl logs) by calling the kubelet of the pod's Node at
https://<node InternalIP>:<status.daemonEndpoints.kubeletEndpoint.Port>/containerLogs/NS/POD/CONTAINER
(pkg/registry/core/pod/rest/log.go, LogLocation; the API server checks the container name itself
first). This serves that path with the query parameters the API server forwards (previous,
tailLines, limitBytes, follow) and /healthz.

Who may ask: as a real kubelet with x509 client authentication (--client-ca-file), only a client
presenting a certificate signed by the cluster's CA: the API server's kubelet client certificate
(kube-apiserver --kubelet-client-certificate). Anything else fails the TLS handshake. The serving
certificate is signed by the same CA for the Node's address, and the API server verifies it
(--kubelet-certificate-authority).
"""

import http.server
import os
import socketserver
import ssl
import threading
import time
import urllib.parse

PORT = 10250
FOLLOW_POLL_S = 0.1
FOLLOW_MAX_S = 3600.0  # a follow stream ends by itself; kubectl logs -f reconnects if it wants


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _tail(data, n):
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-n:]) if n > 0 else b""


class KubeletServer:
    def __init__(self, kubelet, host, certfile, keyfile, cafile, port=PORT):
        self.kubelet = kubelet
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(certfile, keyfile)
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.httpd = _Server((host, port), self._handler())
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                       daemon=True, name="kubelet-api-%s" % host)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        kubelet = self.kubelet

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30  # a peer that sends nothing is closed

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                try:
                    self.connection.do_handshake()
                except (ssl.SSLError, OSError):
                    self.close_connection = True
                    raise

            def _send(self, code, body, ctype="text/plain"):
                data = body if isinstance(body, bytes) else body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                parts = [urllib.parse.unquote(p) for p in u.path.strip("/").split("/")]
                if parts == ["healthz"]:
                    return self._send(200, "ok")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    return self._send(404, "404 page not found\n")
                ns, pod, container = parts[1:]
                previous = q.get("previous") in ("true", "1")
                try:
                    path = kubelet.log_path(ns, pod, container, previous)
                except KeyError:
                    return self._send(404, 'pod "%s/%s" container "%s" not found on this node\n' % (ns, pod, container))
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    if previous:
                        return self._send(400, 'previous terminated container "%s" in pod "%s" not found\n'
                                          % (container, pod))
                    data = b""
                if q.get("tailLines", "").lstrip("-").isdigit():
                    data = _tail(data, int(q["tailLines"]))
                limit = int(q["limitBytes"]) if q.get("limitBytes", "").isdigit() else None
                if limit is not None:
                    data = data[:limit]
                if q.get("follow") not in ("true", "1") or previous:
                    return self._send(200, data)
                self._follow(path, data, limit, ns, pod, container)

            def _follow(self, path, data, limit, ns, pod, container):
                """Chunked: what is there, then what is appended, until the container ends,
                the pod goes, the byte limit is reached or FOLLOW_MAX_S passes."""
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                sent = len(data)
                try:
                    offset = os.path.getsize(path)
                except OSError:
                    offset = 0

                def chunk(b):
                    if b:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
                        self.wfile.flush()

                try:
                    chunk(data)
                    deadline = time.monotonic() + FOLLOW_MAX_S
                    while time.monotonic() < deadline and (limit is None or sent < limit):
                        try:
                            with open(path, "rb") as f:
                                f.seek(offset)
                                more = f.read(65536)
                        except OSError:
                            more = b""
                        if more:
                            if limit is not None:
                                more = more[:limit - sent]
                            offset += len(more)
                            sent += len(more)
                            chunk(more)
                            continue
                        if not kubelet.container_running(ns, pod, container):
                            break
                        time.sleep(FOLLOW_POLL_S)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
                self.close_connection = True

        return H

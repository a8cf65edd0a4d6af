"""podnet.py: the pod network's forward proxy for host processes on the real control plane."""

import http.client
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubesim import podnet  # noqa: E402
from kubesim.testutil import pick_ip, read_json, wait_for  # noqa: E402


class TargetTest(unittest.TestCase):
    def test_table(self):
        rows = [
            ("GET http://10.1.2.3:8000/-/healthz HTTP/1.1", ("GET", "10.1.2.3", 8000, "/-/healthz")),
            ("POST http://10.1.2.3/api?x=1 HTTP/1.1", ("POST", "10.1.2.3", 80, "/api?x=1")),
            ("GET http://10.1.2.3:8000 HTTP/1.0", ("GET", "10.1.2.3", 8000, "/")),
            ("CONNECT 10.1.2.3:443 HTTP/1.1", "CONNECT is not served"),
            ("GET /-/healthz HTTP/1.1", "only absolute http:// URLs are served"),
            ("GET https://10.1.2.3/ HTTP/1.1", "only absolute http:// URLs are served"),
            ("GET http://10.1.2.3:99999/ HTTP/1.1", "bad port"),
            ("GET http://10.1.2.3/ SPDY/3", "malformed request line"),
            ("GARBAGE", "malformed request line"),
        ]
        for line, want in rows:
            self.assertEqual(want, podnet.target(line), line)

    def test_hop_by_hop_headers_dropped(self):
        got = podnet.rewrite_head(["Host: 10.1.2.3:8000", "Proxy-Connection: keep-alive", "Connection: keep-alive",
                                   "Accept: */*"], "10.1.2.3", 8000)
        self.assertEqual(["Host: 10.1.2.3:8000", "Accept: */*", "Connection: close"], got)


class ProxyTest(unittest.TestCase):
    """A pod listening on 127.a.b.c is reached as 10.a.b.c through the proxy."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="podnet-")
        cls.pod_ip = pick_ip(())
        seen = cls.seen = []

        class Pod(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append((self.path, self.headers.get("Host"), self.headers.get("Proxy-Connection")))
                body = b"success"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                self.send_response(201)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        cls.pod = http.server.ThreadingHTTPServer((cls.pod_ip, 0), Pod)
        threading.Thread(target=cls.pod.serve_forever, daemon=True).start()
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
        cls.proc = subprocess.Popen([sys.executable, "-m", "kubesim.podnet", "--state-dir", cls.tmp], env=env,
                                    stderr=subprocess.DEVNULL)
        info = os.path.join(cls.tmp, "podnet.json")
        wait_for(lambda: read_json(info), 20, what="podnet.json")
        url = read_json(info)["url"]
        cls.proxy_port = int(url.rsplit(":", 1)[1])

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.pod.shutdown()
        cls.pod.server_close()

    def via_proxy(self, method, url, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=10)
        try:
            c.request(method, url, body=body, headers={"Proxy-Connection": "keep-alive"})
            r = c.getresponse()
            return r.status, r.read(), r.getheader("Connection")
        finally:
            c.close()

    def api_ip(self):
        return "10." + self.pod_ip.split(".", 1)[1]

    def test_get_reaches_the_pod(self):
        port = self.pod.server_address[1]
        status, body, conn = self.via_proxy("GET", "http://%s:%d/-/healthz" % (self.api_ip(), port))
        self.assertEqual((200, b"success"), (status, body))
        path, host, proxy_conn = self.seen[-1]
        self.assertEqual(("/-/healthz", "%s:%d" % (self.api_ip(), port), None), (path, host, proxy_conn))

    def test_post_body_passes(self):
        port = self.pod.server_address[1]
        payload = json.dumps({"x": "y" * 1000}).encode()
        status, body, _ = self.via_proxy("POST", "http://%s:%d/echo" % (self.api_ip(), port), payload)
        self.assertEqual((201, payload), (status, body))

    def test_refused_port_is_502(self):
        s = http.server.HTTPServer((self.pod_ip, 0), http.server.BaseHTTPRequestHandler)
        port = s.server_address[1]
        s.server_close()  # nothing listens there now
        status, body, _ = self.via_proxy("GET", "http://%s:%d/" % (self.api_ip(), port))
        self.assertEqual(502, status)
        self.assertIn(b"%d" % port, body)

    def test_connect_and_origin_form_refused(self):
        self.assertEqual(405, self.via_proxy("GET", "/not-absolute")[0])
        c = http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=10)
        try:
            c.putrequest("CONNECT", "%s:443" % self.api_ip(), skip_host=True)
            c.endheaders()
            self.assertEqual(405, c.getresponse().status)
        finally:
            c.close()

    def test_oversized_head_is_dropped(self):
        import errno
        import socket

        s = socket.create_connection(("127.0.0.1", self.proxy_port), timeout=10)
        try:
            # Closed without an answer: EOF, or a reset when it closed with our bytes unread (seen
            # at the send, or at the shutdown as ENOTCONN when the reset came first).
            try:
                s.sendall(b"GET http://10.0.0.1/ HTTP/1.1\r\nX: " + b"a" * (podnet.HEAD_MAX + 10000))
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(b"", s.recv(100))
            except (ConnectionResetError, BrokenPipeError):
                pass
            except OSError as e:
                if e.errno != errno.ENOTCONN:
                    raise
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()

"""Faultable HTTP/1.1 servers for the simulated Ray components.

Each component (dashboard head, dashboard agent, Serve proxy, worker port,
control endpoint) is one ThreadingHTTPServer with protocol_version HTTP/1.1, so
clients get real keep-alive. A component can be killed (listener and every open
connection closed: the port refuses), hung (accepts and reads, never answers),
slowed (answers after a delay) or made to answer garbage (200 with a body no
client expects, optionally huge), and restored.
"""

import random
import socket
import threading
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import common

FAULT_MODES = ("kill", "hang", "slow", "garbage", "garbage_huge", "drain", "restore")


class Request:
    def __init__(self, method, raw_path, headers, body, client):
        self.method = method
        parts = urlsplit(raw_path)
        self.path = parts.path
        self.raw_path = raw_path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers
        self.body = body
        self.client = client


class Response:
    def __init__(self, status, body=b"", content_type=None, headers=None, reason=None):
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.content_type = content_type
        self.headers = list(headers or [])
        self.reason = reason


class Upgrade(Response):
    """101 Switching Protocols, after which run(rfile, wfile, alive) owns the
    connection (the WebSocket log tail)."""

    def __init__(self, headers, run):
        super().__init__(101, b"", None, headers, "Switching Protocols")
        self.run = run


def text(status, body, content_type="text/plain; charset=utf-8", reason=None):
    return Response(status, body, content_type, reason=reason)


def aiohttp_json(status, obj):
    # aiohttp.web.Response(text=json.dumps(x), content_type="application/json")
    # adds "; charset=utf-8" (job_head.py, serve_head.py).
    return Response(status, common.dumps(obj), "application/json; charset=utf-8")


def aiohttp_error(status, reason):
    # aiohttp HTTPException(reason=...): the reason is both the status line's
    # phrase and the body "<code>: <reason>" (ray-apis.md 1.2).
    return Response(status, "%d: %s" % (status, reason), "text/plain; charset=utf-8", reason=reason)


def aiohttp_not_found():
    # aiohttp's router answers an unknown path with HTTPNotFound: "404: Not Found".
    return aiohttp_error(404, "Not Found")


class FaultState:
    """Fault mode shared by every kind of simulated component."""

    def __init__(self):
        self.mode = None
        self.delay_ms = 0
        self.size = 32 * 1024 * 1024
        self.changed = threading.Condition()

    def set(self, mode, delay_ms=0, size=None):
        with self.changed:
            self.mode = None if mode in (None, "restore") else mode
            self.delay_ms = int(delay_ms or 0)
            if size:
                self.size = int(size)
            self.changed.notify_all()

    def wait_while_hung(self, alive):
        """Block while the mode is hang and the component still exists."""
        with self.changed:
            while self.mode == "hang" and alive():
                self.changed.wait(0.2)

    def describe(self):
        return {"mode": self.mode or "normal", "delay_ms": self.delay_ms}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler_cls, component):
        self.component = component
        self.open_sockets = set()
        self.sock_lock = threading.Lock()
        super().__init__(addr, handler_cls)

    def process_request(self, request, client_address):
        with self.sock_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.sock_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # Connections torn down by a kill or by the client are routine.
        pass


def close_now(srv):
    """Stop a socketserver's listener and drop its connections without waiting for its thread."""
    try:
        # On Linux a shut-down listening socket stops listening: connects are refused.
        srv.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    close_connections(srv)


def close_connections(srv):
    with srv.sock_lock:
        socks = list(srv.open_sockets)
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _dispatch(self):
        comp = self.server.component
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        req = Request(self.command, self.path, self.headers, body, self.client_address)
        fault = comp.fault
        if fault.mode == "hang":
            fault.wait_while_hung(lambda: comp.running)
            if not comp.running:
                self.close_connection = True
                return
        if fault.mode == "slow" and fault.delay_ms > 0:
            time.sleep(fault.delay_ms / 1000.0)
        if fault.mode == "garbage":
            junk = bytes(random.getrandbits(8) for _ in range(64))
            self._send(Response(200, b"<html>garbage\x00" + junk, "text/html"), req)
            return
        if fault.mode == "garbage_huge":
            self._send_huge(fault.size)
            return
        try:
            resp = comp.handler(req)
        except Exception as exc:  # the component's own bug: answer like a server would
            common.log(comp.name, "handler error: %r" % (exc,))
            resp = text(500, "500 Internal Server Error\n\nServer got itself in trouble")
        if resp is None:
            # Handler asked to drop the connection without an answer.
            self.close_connection = True
            return
        self._send(resp, req)

    def _read_chunked(self):
        out = b""
        for _ in range(100000):
            line = self.rfile.readline(65537)
            size = int(line.strip().split(b";")[0] or b"0", 16)
            if size == 0:
                self.rfile.readline()
                break
            out += self.rfile.read(size)
            self.rfile.readline()
        return out

    def _send(self, resp, req):
        comp = self.server.component
        if isinstance(resp, Upgrade):
            self.send_response_only(101, resp.reason)
            for k, v in resp.headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.flush()
            try:
                resp.run(self.rfile, self.wfile, lambda: comp.running)
            except OSError:
                pass
            self.close_connection = True
            return
        self.send_response_only(resp.status, resp.reason)
        headers = []
        if comp.style == "uvicorn":
            # uvicorn emits lowercase date/server/content-length plus Serve's
            # x-request-id (ray-apis.md 2.1).
            headers.append(("date", formatdate(usegmt=True)))
            headers.append(("server", "uvicorn"))
            headers.append(("content-length", str(len(resp.body))))
            if resp.content_type:
                headers.append(("content-type", resp.content_type))
            headers.append(("x-request-id", str(uuid.uuid4())))
        else:
            if resp.content_type:
                headers.append(("Content-Type", resp.content_type))
            headers.append(("Content-Length", str(len(resp.body))))
            headers.append(("Date", formatdate(usegmt=True)))
            headers.append(("Server", comp.server_header))
        headers.extend(resp.headers)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if req.method != "HEAD":
            try:
                self.wfile.write(resp.body)
            except OSError:
                self.close_connection = True

    def _send_huge(self, size):
        self.send_response_only(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < size and self.server.component.running:
                n = min(len(chunk), size - sent)
                self.wfile.write(chunk[:n])
                sent += n
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _dispatch


class HttpComponent:
    """One HTTP server on host:port that can be started, killed and faulted."""

    def __init__(self, name, host, port, handler, style="aiohttp"):
        self.name = name
        self.host = host
        self.port = port
        self.handler = handler
        self.style = style
        self.server_header = "Python/3.11 aiohttp/3.11.16"
        self.fault = FaultState()
        self.server = None
        self.thread = None
        self.running = False
        self.lock = threading.Lock()

    def start(self):
        with self.lock:
            if self.running:
                return
            self.fault.set(None)
            srv = None
            last = None
            # A port that was just closed may linger briefly; retry a little.
            for _ in range(50):
                try:
                    srv = _Server((self.host, self.port), _Handler, self)
                    break
                except OSError as exc:
                    last = exc
                    time.sleep(0.1)
            if srv is None:
                raise last
            self.server = srv
            self.running = True
            self.thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                           name="http-" + self.name, daemon=True)
            self.thread.start()

    def stop(self):
        """Kill: the listener and every open connection go away (port refuses).

        In the order a dying process's sockets go: the listener stops at once
        (new connections are refused), then every established connection is
        closed (clients see FIN/RST at once, idle keep-alive ones included),
        and only then is the serving thread joined (which can take its poll
        interval).
        """
        with self.lock:
            if not self.running:
                return
            self.running = False
            srv = self.server
            self.server = None
        with self.fault.changed:
            self.fault.changed.notify_all()
        close_now(srv)
        srv.shutdown()
        srv.server_close()
        close_connections(srv)

    def describe(self):
        d = {"up": self.running, "port": self.port}
        d.update(self.fault.describe())
        return d

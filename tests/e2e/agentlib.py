"""Helpers for the agent's end-to-end tests: a tiny fake Ray node (stdlib
HTTP servers on Ray's ports of one 127.x.y.z address, switchable answers),
process management for raywarden-agent and rw-fakectl, and polling."""

import http.client
import http.server
import json
import os
import random
import socket
import sys
import subprocess
import tempfile
import threading
import time

BUILD = os.environ.get("RW_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
AGENT = os.path.join(BUILD, "bin", "raywarden-agent")
SIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sim")
if os.path.abspath(SIM_DIR) not in map(os.path.abspath, sys.path):
    sys.path.insert(0, os.path.abspath(SIM_DIR))
FAKECTL = os.path.join(BUILD, "bin", "rw-fakectl")

from kubesim.testutil import http_get, pick_ip, wait_for  # noqa: E402,F401 (re-exported to the tests)


def agent_get(ip, port, path, timeout=2.0):
    """(status, text) of GET http://ip:port/path (an agent, a controller, a fake Ray port);
    (None, why) when nothing answers."""
    return http_get("http://%s:%d%s" % (ip, port, path), timeout, soft=True)


class FakeRay:
    """Ray's probe endpoints on ip: 52365 (raylet), 8265 (gcs, serve, jobs), 8000 (proxy).

    Modes: raylet ok|fail|garbage|huge|slow|down; gcs ok|fail|slow|down;
    proxy ok|draining|starting|noreplicas|down. 'down' closes the port.
    The Serve applications answer (port 8265) has its own mode, set with
    serve_answer(): ok (Content-Length), chunked (several chunks, written
    one at a time), large (padded past 1 MiB) or huge (padded past 4 MiB)."""

    def __init__(self, ip):
        self.ip = ip
        self.lock = threading.Lock()
        self.mode = {"raylet": "ok", "gcs": "ok", "proxy": "ok", "serve": "ok"}
        self.requests = []  # (method, path, body)
        self.apps = {}      # name -> status
        self.jobs = {}      # submission_id -> status
        self.servers = {}
        self.conns = {}  # port -> set of open sockets
        self.accepted = {}  # port -> connections accepted so far
        for port in (52365, 8265, 8000):
            self._start(port)

    # --- control ---
    def set(self, comp, mode):
        with self.lock:
            self.mode[comp] = mode
        port = {"raylet": 52365, "gcs": 8265, "proxy": 8000}[comp]
        if mode == "down":
            self._stop(port)
        elif port not in self.servers:
            self._start(port)

    def serve_answer(self, mode):
        with self.lock:
            self.mode["serve"] = mode

    def seen(self, method, prefix):
        with self.lock:
            return [r for r in self.requests if r[0] == method and r[1].startswith(prefix)]

    def close(self):
        for port in list(self.servers):
            self._stop(port)

    # --- servers ---
    def _start(self, port):
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                with fake.lock:
                    fake.conns.setdefault(port, set()).add(self.connection)
                    fake.accepted[port] = fake.accepted.get(port, 0) + 1

            def finish(self):
                with fake.lock:
                    fake.conns.get(port, set()).discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def _send(self, code, body, ctype="text/plain; charset=utf-8"):
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _send_chunked(self, code, body, ctype, pieces=5):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                step = max(1, len(body) // pieces)
                for i in range(0, len(body), step):
                    part = body[i:i + step]
                    self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_GET(self):
                fake._handle(self, port, "GET", b"")

            def do_POST(self):
                fake._handle(self, port, "POST", self._body())

            def do_PUT(self):
                fake._handle(self, port, "PUT", self._body())

        srv = http.server.ThreadingHTTPServer((self.ip, port), H)
        srv.daemon_threads = True
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True)
        t.start()
        self.servers[port] = srv

    def _stop(self, port):
        # A dead process's sockets all close at once: the listener first (a
        # shut-down listening socket refuses connections), then the kept-alive
        # connections; joining the serving thread (its poll interval) comes last.
        srv = self.servers.pop(port, None)
        if srv:
            try:
                srv.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.drop_connections(port)
        if srv:
            srv.shutdown()
            srv.server_close()
        self.drop_connections(port)

    def drop_connections(self, port):
        """Close every open connection to port (the server stays up), like a
        keep-alive timeout on the server side."""
        with self.lock:
            conns = list(self.conns.get(port, set()))
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _handle(self, h, port, method, body):
        with self.lock:
            self.requests.append((method, h.path, body))
            mode = dict(self.mode)
        path = h.path
        if port == 52365 and path == "/api/local_raylet_healthz":
            m = mode["raylet"]
            if m == "ok":
                return h._send(200, "success", "application/text; charset=utf-8")
            if m == "fail":
                return h._send(503, "Local Raylet failed")
            if m == "garbage":
                return h._send(200, b"\x00\xff\x1b[31mzz")
            if m == "huge":
                return h._send(200, b"s" * (2 * 1024 * 1024))
            if m == "slow":
                time.sleep(1.0)
                return h._send(200, "success")
        if port == 8265 and path == "/api/gcs_healthz":
            m = mode["gcs"]
            if m == "ok":
                return h._send(200, "success")
            if m == "slow":
                time.sleep(1.0)
                return h._send(200, "success")
            return h._send(503, "503: Health check failed: GCS down")
        if port == 8265 and path == "/api/serve/applications/":
            if method == "PUT":
                try:
                    cfg = json.loads(body)
                except ValueError:
                    return h._send(400, "bad json")
                with self.lock:
                    for a in cfg.get("applications", []):
                        self.apps[a["name"]] = "RUNNING"
                return h._send(200, "")
            with self.lock:
                apps = {n: {"name": n, "status": s, "message": "", "route_prefix": "/" + n,
                            "deployments": {"D": {"name": "D", "status": "HEALTHY",
                                                  "message": "", "replicas": [
                                                      {"node_id": "n1", "node_ip": self.ip,
                                                       "state": "RUNNING"}]}}}
                        for n, s in self.apps.items()}
            doc = {"deploy_mode": "MULTI_APP", "controller_info": {}, "proxies": {},
                   "applications": apps, "target_capacity": None}
            if apps:
                doc["proxy_location"] = "EveryNode"
                doc["proxies"] = {"n1": {"node_id": "n1", "node_ip": self.ip,
                                         "status": "HEALTHY"}}
            m = mode["serve"]
            if m in ("large", "huge"):
                doc["padding"] = "p" * ((1 << 20) + 4096 if m == "large" else (4 << 20) + 4096)
            if m == "chunked":
                return h._send_chunked(200, json.dumps(doc).encode(), "application/json")
            return h._send(200, json.dumps(doc), "application/json")
        if port == 8265 and path == "/api/jobs/" and method == "POST":
            req = json.loads(body)
            sid = req["submission_id"]
            with self.lock:
                dup = sid in self.jobs
                self.jobs[sid] = self.jobs.get(sid, "RUNNING")
            if dup:
                return h._send(500, "Traceback: RuntimeError: Request failed with status "
                               "code 400: Job with submission_id %s already exists. Please "
                               "use a different submission_id." % sid)
            return h._send(200, json.dumps({"job_id": sid, "submission_id": sid}),
                           "application/json")
        if port == 8265 and path.startswith("/api/jobs/"):
            rest = path[len("/api/jobs/"):]
            if rest.endswith("/stop") and method == "POST":
                sid = rest[:-5]
                with self.lock:
                    if sid not in self.jobs:
                        return h._send(404, "Job %s does not exist" % sid)
                    self.jobs[sid] = "STOPPED"
                return h._send(200, '{"stopped": true}', "application/json")
            with self.lock:
                st = self.jobs.get(rest)
            if st is None:
                return h._send(404, "Job %s does not exist" % rest)
            return h._send(200, json.dumps({
                "type": "SUBMISSION", "submission_id": rest, "status": st,
                "message": "Job is currently running." if st == "RUNNING" else "x",
                "start_time": 1718020000123, "end_time": None}), "application/json")
        if port == 8000 and path == "/-/healthz":
            m = mode["proxy"]
            if m == "ok":
                return h._send(200, "success")
            if m == "draining":
                return h._send(503, "This node is being drained.")
            if m == "starting":
                return h._send(503, "Route table is not populated yet.")
            if m == "noreplicas":
                return h._send(503, "No replicas are available yet.")
        return h._send(404, "not found")


class Proc:
    """A child process with stdout/stderr in files."""

    def __init__(self, argv, env=None, tmp=None, name="proc"):
        self.tmp = tmp or tempfile.mkdtemp()
        self.out_path = os.path.join(self.tmp, name + ".out")
        self.err_path = os.path.join(self.tmp, name + ".err")
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        full_env = dict(os.environ)
        for k in list(full_env):
            if k.startswith("RAYWARDEN_"):
                del full_env[k]
        full_env.update(env or {})
        self.p = subprocess.Popen(argv, stdout=self.out, stderr=self.err, env=full_env)

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=15, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.out.close()
        self.err.close()
        return self.p.returncode


def write_key(tmp, name="key"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("%064x\n" % random.getrandbits(256))
    return path


def start_agent(ip, tmp, **env):
    e = {"RAYWARDEN_PROBE_HOST": ip, "RAYWARDEN_LISTEN_HOST": ip,
         "RAYWARDEN_POD_NAME": "pod-" + ip, "RAYWARDEN_POD_NAMESPACE": "e2e"}
    e.update({"RAYWARDEN_" + k.upper(): str(v) for k, v in env.items()})
    p = Proc([AGENT], env=e, tmp=tmp, name="agent")
    wait_for(lambda: agent_get(ip, 8477, "/livez", 0.5)[0] == 200 or p.p.poll() is not None,
             what="agent endpoints")
    if p.p.poll() is not None:
        raise AssertionError("agent exited: %s" % p.stderr())
    return p


def start_fakectl(ip, tmp, key, reply=None, forge=None, port=8478):
    reply_path = os.path.join(tmp, "reply.json")
    with open(reply_path, "w") as f:
        json.dump(reply or {}, f)
    argv = [FAKECTL, "--listen", "tcp://%s:%d" % (ip, port), "--key-file", key,
            "--reply-file", reply_path]
    if forge:
        argv += ["--forge", forge]
    p = Proc(argv, tmp=tmp, name="fakectl")
    wait_for(lambda: '"listening"' in p.stdout() or p.p.poll() is not None,
             what="fakectl listening")
    p.reply_path = reply_path
    return p


def set_reply(ctl, reply):
    tmp = ctl.reply_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(reply, f)
    os.replace(tmp, ctl.reply_path)


def events(ctl, kind=None):
    out = []
    for line in ctl.stdout().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if kind is None or ev.get("event") == kind:
            out.append(ev)
    return out


def metric(ip, name, labels=""):
    code, body = agent_get(ip, 8477, "/metrics")
    if code != 200:
        return None
    key = name + labels
    for line in body.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def ray_job_submit(ip, submission_id, entrypoint, timeout=5.0):
    """POST a job straight to a Ray dashboard on ip:8265 (as a submitter pod or a user
    would); returns (status, body text)."""
    c = http.client.HTTPConnection(ip, 8265, timeout=timeout)
    try:
        c.request("POST", "/api/jobs/", json.dumps({"entrypoint": entrypoint,
                                                   "submission_id": submission_id}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def job_reports(ctl, sid):
    """[(t_ms, job)] of every report of the fake controller that carries job sid."""
    out = []
    for ev in events(ctl, "report"):
        for j in ev["report"].get("jobs", []):
            if j.get("submission_id") == sid:
                out.append((ev.get("t_ms"), j))
    return out

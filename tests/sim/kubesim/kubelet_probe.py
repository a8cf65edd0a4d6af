"""Container probes of the kubelet simulator.

Semantics follow pkg/kubelet/prober (worker.go doProbe, prober.go) and
https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/ :
- a worker per (container, probe type) ticks every periodSeconds;
- no probe runs until the container has been running for initialDelaySeconds;
- readiness starts as Failure, liveness and startup as Success;
- liveness and readiness wait until the startup probe succeeded;
- the result flips only after successThreshold / failureThreshold consecutive
  results; a liveness or startup failure puts the worker on hold until a new
  container instance appears (the kubelet restarts the container);
- httpGet succeeds on 200 <= code < 400 (pkg/probe/http/http.go), the body is not
  needed; tcpSocket succeeds when the connection opens (pkg/probe/tcp); exec
  succeeds on exit status 0 (pkg/probe/exec); each is bounded by timeoutSeconds.
"""

import http.client
import os
import signal
import socket
import subprocess
import threading
import time

from .kubelet_env import container_port

PROBE_DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1,
                  "successThreshold": 1, "failureThreshold": 3}


def probe_params(probe):
    p = dict(PROBE_DEFAULTS)
    for k in PROBE_DEFAULTS:
        if probe.get(k) is not None:
            p[k] = int(probe[k])
    p["periodSeconds"] = max(1, p["periodSeconds"])
    p["timeoutSeconds"] = max(1, p["timeoutSeconds"])
    return p


def http_probe(probe, container, pod_ip, timeout):
    hg = probe["httpGet"]
    host = hg.get("host") or pod_ip
    port = container_port(container, hg.get("port"))
    path = hg.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    scheme = (hg.get("scheme") or "HTTP").upper()
    headers = {"User-Agent": "kube-probe/1.31", "Accept": "*/*"}
    for h in hg.get("httpHeaders") or []:
        headers[h.get("name")] = h.get("value", "")
    if scheme == "HTTPS":
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the kubelet does not verify probe certificates
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read(10 * 1024)  # the kubelet reads at most 10 KiB of the body
        code = resp.status
    except (OSError, http.client.HTTPException) as e:
        return False, "Get %s://%s:%s%s: %s" % (scheme.lower(), host, port, path, e)
    finally:
        conn.close()
    if 200 <= code < 400:
        return True, ""
    return False, "HTTP probe failed with statuscode: %d" % code


def tcp_probe(probe, container, pod_ip, timeout):
    ts = probe["tcpSocket"]
    host = ts.get("host") or pod_ip
    port = container_port(container, ts.get("port"))
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        s.close()
        return True, ""
    except OSError as e:
        return False, "dial tcp %s:%s: %s" % (host, port, e)


def exec_probe(probe, env, timeout, wrap=None, cwd=None):
    cmd = list((probe.get("exec") or {}).get("command") or [])
    if not cmd:
        return False, "empty exec command"
    argv = wrap(cmd) if wrap else cmd
    try:
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        return False, str(e)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.communicate()
        return False, "command timed out after %ss" % timeout
    if p.returncode == 0:
        return True, ""
    return False, (out or b"").decode("utf-8", "replace")[-512:]


def run_probe(probe, container, pod_ip, env, wrap=None, cwd=None):
    """Run one probe attempt; returns (success, message)."""
    timeout = probe_params(probe)["timeoutSeconds"]
    try:
        if "httpGet" in probe:
            return http_probe(probe, container, pod_ip, timeout)
        if "tcpSocket" in probe:
            return tcp_probe(probe, container, pod_ip, timeout)
        if "exec" in probe:
            return exec_probe(probe, env, timeout, wrap, cwd)
        if "grpc" in probe:
            g = probe["grpc"]
            return tcp_probe({"tcpSocket": {"port": g.get("port")}}, container, pod_ip, timeout)
    except ValueError as e:
        return False, str(e)
    return False, "unknown probe handler"


class ProbeWorker:
    """One probe of one container instance.

    state(): callable returning (running_since or None, started bool); notify(kind,
    result, message) is called whenever the published result changes."""

    def __init__(self, kind, probe, container, pod_ip, env_fn, state, notify, wrap=None, cwd=None,
                 probe_fn=None, clock=time.monotonic):
        self.kind = kind  # "readiness" | "liveness" | "startup"
        self.probe = probe
        self.params = probe_params(probe)
        self.container = container
        self.pod_ip = pod_ip
        self.env_fn = env_fn
        self.state = state
        self.notify = notify
        self.wrap = wrap
        self.cwd = cwd
        self.probe_fn = probe_fn or run_probe
        self.clock = clock
        self.result = kind != "readiness"  # initial values, worker.go newWorker
        self.last = None
        self.run = 0
        self.on_hold = False
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="probe-%s-%s" % (kind, container.get("name")))
        self.attempts = 0

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()

    def step(self):
        """One tick of the worker (worker.go doProbe); returns False to stop."""
        if self.on_hold:
            return True
        since, started = self.state()
        if since is None:
            return True
        if self.clock() - since < self.params["initialDelaySeconds"]:
            return True
        if self.kind == "startup" and started:
            return True
        if self.kind != "startup" and not started:
            return True
        self.attempts += 1
        ok, msg = self.probe_fn(self.probe, self.container, self.pod_ip, self.env_fn(), self.wrap, self.cwd)
        if self.stop_ev.is_set():
            return False
        if self.last == ok:
            self.run += 1
        else:
            self.last = ok
            self.run = 1
        if (not ok and self.run < self.params["failureThreshold"]) or (ok and self.run < self.params["successThreshold"]):
            return True
        changed = ok != self.result
        self.result = ok
        if changed or (not ok and self.kind in ("liveness", "startup")):
            self.notify(self.kind, ok, msg)
        if self.kind in ("liveness", "startup") and not ok:
            self.on_hold = True
            self.run = 0
        return True

    def _loop(self):
        period = self.params["periodSeconds"]
        nxt = self.clock()
        while not self.stop_ev.is_set():
            if not self.step():
                return
            nxt += period
            delay = nxt - self.clock()
            if delay < 0:
                nxt = self.clock()
                delay = 0
            if self.stop_ev.wait(delay):
                return

"""Start simulated Ray clusters from Python without Kubernetes.

    from raysim.cluster import Cluster
    with Cluster("127.77.0", workers=2, head_args=["--num-cpus=0"], env={...}) as c:
        c.head.url(8265, "/api/gcs_healthz")
        c.workers[0].fault("proxy", "kill")

Each node is a real `tests/sim/bin/ray start --block` subprocess bound to its
own loopback address (<prefix>.1 is the head, <prefix>.2.. the workers) with
RW_SIM_POD_IP set, exactly as the kubelet simulator runs a Ray container.
Also runnable: `python3 -m raysim.cluster 127.77.0 2` (Ctrl-C stops it).
"""

import ctypes
import functools
import http.client as httpclient
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

SIM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from kubesim import testutil  # noqa: E402 (tests/sim is on sys.path, as raysim is)
RAY_BIN = os.path.join(SIM_DIR, "bin", "ray")


def http(ip, port, method, path, body=None, timeout=5.0, headers=None):
    """One HTTP exchange: (status, headers dict lowercased, body bytes)."""
    conn = httpclient.HTTPConnection(ip, port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        hdrs = dict(headers or {})
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# Any failure of the condition (a refused connection, a half-started node) means "not yet".
wait_for = functools.partial(testutil.wait_for, retry=Exception)


def _die_with_parent():
    # A node started by a test gets SIGTERM if the test process dies.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


class SimNode:
    def __init__(self, ip, args, env, head_ip=None, log_dir=None):
        self.ip = ip
        self.args = args
        self.env = env
        self.proc = None
        self.log_path = os.path.join(log_dir or tempfile.gettempdir(), "raysim-%s.log" % ip)

    def start(self):
        env = dict(os.environ)
        env.update(self.env)
        env["RW_SIM_POD_IP"] = self.ip
        env["RW_SIM_TMPDIR"] = os.path.join(tempfile.gettempdir(), "raysim-test", self.ip)
        env["PATH"] = os.path.join(SIM_DIR, "bin") + os.pathsep + env.get("PATH", "")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, RAY_BIN, "start", "--block"] + self.args, env=env,
                                     stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        return self

    def wait_ready(self, timeout=20):
        wait_for(lambda: self.state(), timeout, what="node %s control endpoint" % self.ip)

    def state(self):
        st, _, body = http(self.ip, 19999, "GET", "/state", timeout=2)
        return json.loads(body) if st == 200 else None

    def fault(self, component, mode, **kw):
        body = {"component": component, "mode": mode}
        body.update(kw)
        st, _, data = http(self.ip, 19999, "POST", "/fault", body)
        if st != 200:
            raise RuntimeError(data.decode())
        return json.loads(data)

    def config(self, **kw):
        st, _, data = http(self.ip, 19999, "POST", "/config", kw)
        if st != 200:
            raise RuntimeError(data.decode())
        return json.loads(data)

    def get(self, port, path, timeout=5.0):
        return http(self.ip, port, "GET", path, timeout=timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None:
            return None
        if self.logf.closed:
            return self.proc.returncode
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.logf.close()
        return self.proc.returncode

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Cluster:
    def __init__(self, prefix, workers=1, head_args=None, worker_args=None, env=None, head_env=None,
                 worker_env=None, log_dir=None):
        self.prefix = prefix
        self.env = dict(env or {})
        self.head = SimNode("%s.1" % prefix, ["--head", "--dashboard-host=0.0.0.0",
                                              "--dashboard-agent-listen-port=52365"] + list(head_args or []),
                            dict(self.env, **(head_env or {})), log_dir=log_dir)
        self.workers = []
        self.worker_args = list(worker_args or [])
        self.worker_env = dict(worker_env or {})
        self.log_dir = log_dir
        for i in range(workers):
            self.add_worker(start=False)

    def add_worker(self, start=True):
        ip = "%s.%d" % (self.prefix, len(self.workers) + 2)
        w = SimNode(ip, ["--address=%s:6379" % self.head.ip, "--dashboard-agent-listen-port=52365"]
                    + self.worker_args, dict(self.env, **self.worker_env), log_dir=self.log_dir)
        self.workers.append(w)
        if start:
            w.start()
            w.wait_ready()
        return w

    def start(self):
        try:
            self.head.start()
            self.head.wait_ready()
            for w in self.workers:
                w.start()
            for w in self.workers:
                w.wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        for n in self.workers + [self.head]:
            n.stop()

    def __enter__(self):
        try:
            return self.start()
        except Exception:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


def main(argv):
    prefix = argv[0] if argv else "127.77.0"
    n = int(argv[1]) if len(argv) > 1 else 1
    c = Cluster(prefix, workers=n).start()
    print("head %s (dashboard http://%s:8265), workers %s" % (c.head.ip, c.head.ip, [w.ip for w in c.workers]))
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Shared helpers for the benchmarks in tests/bench/ (Python standard library only).

Each benchmark prints its figures and ends with exactly one JSON line
{"bench": NAME, ...} on stdout; progress() lines go to stderr so that they never mix with it. CPU time is read from /proc/<pid>/schedstat (nanoseconds
on CPU), which is precise enough for daemons that use well under 1% of a core;
children's CPU comes from getrusage(RUSAGE_CHILDREN).
"""

import functools
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

SRC = os.environ.get("RW_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("RW_BUILD_DIR") or os.path.join(SRC, "build")
SIM_BIN = os.path.join(SRC, "tests", "sim", "bin")
AGENT = os.path.join(BUILD, "bin", "raywarden-agent")
FAKECTL = os.path.join(BUILD, "bin", "rw-fakectl")
CONTROL_PORT = 19999
if os.path.join(SRC, "tests", "sim") not in sys.path:
    sys.path.insert(0, os.path.join(SRC, "tests", "sim"))

from kubesim.testutil import mapped_libraries, wait_for  # noqa: E402,F401 (B.mapped_libraries)

# The Serve application the benchmarks deploy on a simulated head (one small deployment).
SERVE_CONFIG = {
    "applications": [{
        "name": "simple_app",
        "import_path": "ray-operator.config.samples.ray-serve.single_deployment_dag:DagNode",
        "route_prefix": "/basic",
        "deployments": [{"name": "BaseService", "num_replicas": 1,
                         "ray_actor_options": {"num_cpus": 0.1}}],
    }]
}


_START = time.monotonic()


def progress(msg, *args):
    """One line on stderr saying which phase or step a benchmark is at and how long it has run,
    for people waiting on a run of minutes; stdout keeps the figures and the final JSON line."""
    text = msg % args if args else msg
    name = os.path.basename(sys.argv[0]) or "bench"
    print("[%s +%.1fs] %s" % (name, time.monotonic() - _START, text), file=sys.stderr, flush=True)


class Ticker:
    """progress() at most every `every` seconds from inside a loop: tick() is cheap to call often."""

    def __init__(self, every=10.0):
        self.every = every
        self.next = time.monotonic() + every

    def tick(self, msg, *args):
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.every
            progress(msg, *args)


def sample_list(values, cap=200, digits=1):
    """values sorted and rounded for a JSON line, at most cap of them (evenly spaced ranks,
    the minimum and maximum kept), so that a distribution can be plotted without the line
    growing with --trials."""
    v = sorted(round(x, digits) for x in values)
    if len(v) <= cap:
        return v
    return [v[round(i * (len(v) - 1) / (cap - 1))] for i in range(cap)]


def machine():
    """A short description of this machine for the JSON line."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model}


def cpu_ns(pid):
    """Nanoseconds the process has run on a CPU (all threads)."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        with open("/proc/%d/schedstat" % pid) as f:
            total = int(f.read().split()[0])
    return total


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def mem_kib(pid):
    """RSS with its anonymous/file split, the peak RSS (VmHWM) and PSS, in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = line.split(":", 1)[0]
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[k] = int(line.split()[1])
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# Poll pred until truthy; a refused connection or a half-written answer means "not yet".
wait_until = functools.partial(wait_for, interval=0.01, retry=(OSError, http.client.HTTPException, ValueError))


def http_req(host, port, path, method="GET", body=None, timeout=2.0, headers=None):
    """One request on a fresh connection, like the kubelet's prober. Returns (status, body)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        h = {"Connection": "close"}
        if headers:
            h.update(headers)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def port_open(host, port):
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def start_ray_node(ip, head=True, num_cpus=1, head_addr=None, extra_env=None, log=None):
    env = dict(os.environ)
    env["PATH"] = SIM_BIN + os.pathsep + env.get("PATH", "")
    env["RW_SIM_POD_IP"] = ip
    env.update(extra_env or {})
    args = [os.path.join(SIM_BIN, "ray"), "start", "--block",
            "--dashboard-agent-listen-port=52365", "--num-cpus=%d" % num_cpus]
    if head:
        args += ["--head", "--dashboard-host=0.0.0.0"]
    else:
        args += ["--address=%s" % head_addr]
    p = subprocess.Popen(args, env=env, stdout=log or subprocess.DEVNULL,
                         stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                         start_new_session=True)
    wait_until(lambda: port_open(ip, 52365), 20, what="ray node %s" % ip)
    return p


def deploy_serve(ip):
    """Deploy SERVE_CONFIG on the simulated head at ip and wait until its proxy is healthy."""
    st, out = http_req(ip, 8265, "/api/serve/applications/", method="PUT", body=json.dumps(SERVE_CONFIG),
                       headers={"Content-Type": "application/json"}, timeout=10)
    if st != 200:
        raise RuntimeError("serve deploy failed: %d %s" % (st, out))
    wait_until(lambda: http_req(ip, 8000, "/-/healthz")[0] == 200, 60, what="serve proxy healthy")


def start_redis(ip, port):
    """A throw-away redis-server on ip:port (no persistence), or None when not installed."""
    exe = shutil.which("redis-server")
    if not exe:
        return None
    p = subprocess.Popen([exe, "--bind", ip, "--port", str(port), "--save", "", "--appendonly", "no",
                          "--protected-mode", "no"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait_until(lambda: port_open(ip, port), 10, what="redis on %s:%d" % (ip, port))
    return p


def start_agent(ip, port=8477, node_type="worker", rayservice=False, extra_env=None, log=None):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RAYWARDEN_POD_NAME": "bench-%s" % ip.replace(".", "-"),
        "RAYWARDEN_POD_NAMESPACE": "default",
        "RAYWARDEN_POD_UID": "00000000-0000-0000-0000-%012d" % (hash(ip) % 10**12),
        "RAYWARDEN_POD_IP": ip,
        "RAYWARDEN_CLUSTER": "bench",
        "RAYWARDEN_GROUP": "headgroup" if node_type == "head" else "workers",
        "RAYWARDEN_NODE_TYPE": node_type,
        "RAYWARDEN_RAYSERVICE": "true" if rayservice else "false",
        "RAYWARDEN_PROBE_HOST": ip,
        "RAYWARDEN_LISTEN_HOST": ip,
        "RAYWARDEN_PORT": str(port),
        "RAYWARDEN_LOG_FORMAT": "text",
    }
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(extra_env or {})
    p = subprocess.Popen([AGENT], env=env, stdout=log or subprocess.DEVNULL,
                         stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    wait_until(lambda: port_open(ip, port), 10, what="agent on %s:%d" % (ip, port))
    return p


def sim_control(ip, path, payload, timeout=5.0):
    body = json.dumps(payload)
    st, out = http_req(ip, CONTROL_PORT, path, method="POST", body=body, timeout=timeout,
                       headers={"Content-Type": "application/json"})
    if st != 200:
        raise RuntimeError("simulator control %s %s -> %d %s" % (path, body, st, out))
    return out


def fault(ip, component, mode, **kw):
    d = {"component": component, "mode": mode}
    d.update(kw)
    return sim_control(ip, "/fault", d)


def stop(p, timeout=10):
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM) if os.getpgid(p.pid) == p.pid else p.terminate()
    except OSError:
        p.terminate()
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def emit(name, figures):
    """Print the figures readably, then the one JSON line."""
    for k, v in figures.items():
        if isinstance(v, float):
            print("  %-32s %.6g" % (k, v))
        else:
            print("  %-32s %s" % (k, v))
    d = {"bench": name}
    d.update(figures)
    d["date"] = time.strftime("%Y-%m-%d")
    d.update(machine())
    print(json.dumps(d, sort_keys=False))
    sys.stdout.flush()


def need(path, what):
    if not os.path.exists(path):
        print("%s not found at %s: build first (cmake -S . -B build && cmake --build build)"
              % (what, path), file=sys.stderr)
        sys.exit(2)


def connects(trace_path):
    """Destinations of connect(2) calls in an strace output: {"ip:port" or "path": count}, and the
    failed ones."""
    dest, failed = {}, {}
    pat_in = re.compile(r'sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)")')
    pat_un = re.compile(r'sun_path="([^"]+)"')
    try:
        with open(trace_path, errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return None, None
    for ln in lines:
        if "connect(" not in ln:
            continue
        m = pat_in.search(ln)
        if m:
            key = "%s:%s" % (m.group(2) or m.group(3), m.group(1))
        else:
            mu = pat_un.search(ln)
            key = "unix:" + mu.group(1) if mu else ln.strip()[:120]
        dest[key] = dest.get(key, 0) + 1
        if re.search(r"= -1 (?!EINPROGRESS)", ln):
            failed[key] = failed.get(key, 0) + 1
    return dest, failed


def strace_connects(trace_path):
    """A command prefix that runs a process under strace, stopping it only at connect(2)
    (through a seccomp filter, so every other system call runs untraced), the calls written
    to trace_path; read them with connects()."""
    return ["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect", "-o", trace_path]


def traced_child(pid, comm_prefix, timeout=10):
    """The pid of the child of process pid (strace) whose command name starts with comm_prefix,
    once it has exec'd."""
    found = []

    def child():
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
        except OSError:
            return False
        for k in kids:
            try:
                with open("/proc/%s/comm" % k) as f:
                    if f.read().strip().startswith(comm_prefix):
                        found.append(int(k))
                        return True
            except OSError:
                pass
        return False

    wait_for(child, timeout, what="%s under strace" % comm_prefix)
    return found[0]

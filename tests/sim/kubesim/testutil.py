"""The small helpers every Python test, simulator and benchmark of raywarden shares (standard
library only): bounded waits, free loopback addresses and ports, one HTTP GET. The single copy:
tests/sim is on sys.path for every user (tests/sim/test_*.py put it there, tests/e2e/clusterlib.py,
ctlsim.py and agentlib.py add it, the benchmarks import those or benchlib.py), so

    from kubesim.testutil import wait_for, pick_ip, free_port, http_get, pod_ready, parse_metrics

    wait_for(lambda: pod_ready(get()), 30, what="pod ready")            # the value, or WaitTimeout
    wait_for(lambda: http_get(url)[0] == 200, 10, retry=OSError, what="server up")
    ip = pick_ip()                     # 127.x.y.z where the tests' ports are free
    port = free_port()                 # a free TCP port on 127.0.0.1
    status, text = http_get("http://%s:8477/readyz" % ip, soft=True)     # (None, why) when refused

See tests/README.md, "Shared helpers".
"""

import http.client
import json
import os
import random
import socket
import ssl
import time
import urllib.error
import urllib.request

# Polls are never busier than MIN_INTERVAL nor lazier than MAX_INTERVAL, whatever a caller asks.
MIN_INTERVAL = 0.005
MAX_INTERVAL = 0.5

# Ports the tests bind on a picked loopback address: the controller's metrics/health (8080,
# 8082), the agent (8477), Ray's dashboard/serve/jobs (8265), proxy (8000) and raylet (52365).
TEST_PORTS = (8000, 8080, 8082, 8265, 8477, 52365)


class WaitTimeout(AssertionError, TimeoutError):
    """wait_for's deadline passed. Both an AssertionError (a test failure, as unittest reports it)
    and a TimeoutError (what raysim and benchmark callers used to get). .last holds the last value
    or exception seen."""

    def __init__(self, message, last=None):
        AssertionError.__init__(self, message)
        self.last = last

    def __str__(self):
        return self.args[0] if self.args else ""


def _retryable(retry, exc):
    if callable(retry) and not isinstance(retry, type):
        return bool(retry(exc))
    return isinstance(exc, retry)


def wait_for(cond, timeout=30.0, interval=0.05, what="condition", retry=()):
    """Poll cond() until it returns a truthy value and return that value. At the deadline raise
    WaitTimeout naming `what`, the time waited and the last value (or exception) seen; cond is
    always evaluated once more at the deadline, and no sleep runs past it.

    retry: the exceptions of cond() that mean "not yet" (a class, a tuple of classes, or a
    predicate taking the exception); any other exception propagates at once."""
    interval = min(max(float(interval), MIN_INTERVAL), MAX_INTERVAL)
    start = time.monotonic()
    deadline = start + timeout
    last = None
    while True:
        try:
            last = cond()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - filtered by retry just below
            if not _retryable(retry, exc):
                raise
            last = exc
        now = time.monotonic()
        if now >= deadline:
            raise WaitTimeout("timed out after %.1fs waiting for %s (last: %r)" % (now - start, what, last), last)
        time.sleep(min(interval, deadline - now))


def pick_ip(ports=TEST_PORTS):
    """A loopback address 127.x.y.z (x in 100..250) on which every port in `ports` (an int or a
    sequence) can be bound now; RuntimeError when 100 random tries found none."""
    if isinstance(ports, int):
        ports = (ports,)
    for _ in range(100):
        ip = "127.%d.%d.%d" % (random.randint(100, 250), random.randint(1, 250), random.randint(2, 250))
        socks = []
        try:
            for port in ports:
                s = socket.socket()
                socks.append(s)
                s.bind((ip, port))
            return ip
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free loopback address")


def free_port(host="127.0.0.1"):
    """A TCP port that was free on host a moment ago (the kernel's choice)."""
    s = socket.socket()
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


_NO_PROXY = urllib.request.ProxyHandler({})


def http_get(url, timeout=3.0, token=None, cafile=None, soft=False):
    """GET url (http:// or https://, never through a proxy) -> (status, body as text).

    As urllib: an HTTP error status raises urllib.error.HTTPError and a transport failure
    (refused, reset, timeout, TLS) raises OSError. With soft=True neither raises: an error status
    is returned as (status, body) and a transport failure as (None, reason). token: a Bearer token;
    cafile: the CA for https (unverified when absent)."""
    handlers = [_NO_PROXY]
    if url.startswith("https"):
        ctx = (ssl.create_default_context(cafile=cafile) if cafile and os.path.exists(cafile)
               else ssl._create_unverified_context())
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.build_opener(*handlers).open(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        if not soft:
            raise
        try:
            body = e.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            body = ""
        return e.code, body
    except (OSError, http.client.HTTPException) as e:
        if not soft:
            raise
        return None, str(e.reason if isinstance(e, urllib.error.URLError) else e)


def condition(obj, ctype):
    """The status condition of type ctype of an API object, or None."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def pod_ready(pod):
    """The pod's Ready condition is True."""
    c = condition(pod, "Ready")
    return bool(c and c.get("status") == "True")


def parse_metrics(text):
    """Prometheus text -> {"name{labels}": value} (comments and unparsable lines skipped)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def mapped_libraries(pid):
    """Sorted base names of the shared libraries mapped into process pid (/proc/pid/maps)."""
    libs = set()
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            path = line.split()[-1]
            if path.startswith("/") and ".so" in os.path.basename(path):
                libs.add(os.path.basename(path))
    return sorted(libs)


def read_json(path):
    """The JSON document in path, or None when it is missing or not JSON (yet)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path, obj):
    """Write obj to path atomically (a reader never sees half a file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)

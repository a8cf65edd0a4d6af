"""Container lifecycle hooks (preStop) of the kubelet simulator.

Semantics follow pkg/kubelet/lifecycle/handlers.go (handlerRunner.Run) and
pkg/kubelet/kuberuntime/kuberuntime_container.go (killContainer,
executePreStopHook):

- a container being stopped (pod deletion, a failed liveness or startup probe)
  whose spec has lifecycle.preStop runs it first, if the grace period is > 0;
- the hook runs in its own goroutine; the kubelet waits for it at most the
  grace period ("PreStop hook not completed in grace period") and never kills
  it; the time it took, truncated to whole seconds
  (int64(metav1.Now().Sub(start).Seconds())), is deducted from the grace
  period, and SIGTERM follows with what is left, but never less than
  minimumGracePeriodInSeconds (2 s): "always give containers a minimal
  shutdown window to avoid unnecessary SIGKILLs";
- a failing hook is logged and recorded as a Warning event FailedPreStopHook,
  message "PreStopHook failed" (the error is not put in the event "so that
  secrets won't leak"), and termination goes on;
- handlers: exec (runs in the container; fails on a non-zero exit), httpGet
  (host defaults to the pod IP, port by number or by the container's port
  name, path as given including a query, scheme and httpHeaders honoured,
  User-Agent kube-lifecycle/<major.minor>; only a transport error fails it:
  the status code is not checked, and the body is read up to 10 KiB), sleep
  (KEP-3960, feature gate PodLifecycleSleepAction: alpha 1.29, on by default
  from 1.30, GA in 1.34; the simulator claims 1.32, so it is on), and
  tcpSocket, which is not supported as a lifecycle handler ("invalid
  handler"), so the hook fails.
"""

import http.client
import subprocess
import threading
import time

from .kubelet_env import container_port

# pkg/kubelet/kuberuntime/kuberuntime_manager.go minimumGracePeriodInSeconds.
MIN_GRACE_S = 2
USER_AGENT = "kube-lifecycle/1.32"
MAX_BODY = 10 * 1024


def _http_handler(hg, container, pod_ip, timeout):
    host = hg.get("host") or pod_ip
    port = container_port(container, hg.get("port"))
    path = hg.get("path") or ""
    if not path.startswith("/"):
        path = "/" + path
    scheme = (hg.get("scheme") or "HTTP").upper()
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in hg.get("httpHeaders") or []:
        headers[h.get("name")] = h.get("value", "")
    if scheme == "HTTPS":
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read(MAX_BODY)
        return True, "HTTP %d" % resp.status
    except (OSError, http.client.HTTPException) as e:
        return False, "Get %s://%s:%s%s: %s" % (scheme.lower(), host, port, path, e)
    finally:
        conn.close()


def _exec_handler(cmd, env, timeout, wrap=None, cwd=None):
    if not cmd:
        return False, "empty exec command"
    argv = wrap(list(cmd)) if wrap else list(cmd)
    try:
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        return False, str(e)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # The kubelet stops waiting but does not kill the command; it dies with
        # the container (it carries the container's marker in its environment).
        # Reap it in the background so no zombie is left.
        threading.Thread(target=p.wait, daemon=True).start()
        return False, "hook still running after %ss" % timeout
    if p.returncode == 0:
        return True, ""
    return False, "exit status %d: %s" % (p.returncode, (out or b"").decode("utf-8", "replace")[-512:])


def run_handler(handler, container, pod_ip, env, timeout, stop_ev, wrap=None, cwd=None):
    """Run one LifecycleHandler (handlerRunner.Run); returns (ok, message)."""
    try:
        if handler.get("exec") is not None:
            return _exec_handler((handler["exec"] or {}).get("command") or [], env, timeout, wrap, cwd)
        if handler.get("httpGet") is not None:
            return _http_handler(handler["httpGet"], container, pod_ip, timeout)
        if handler.get("sleep") is not None:
            secs = float((handler["sleep"] or {}).get("seconds") or 0)
            if stop_ev.wait(max(0.0, secs)):
                return False, "container terminated before sleep hook finished"
            return True, ""
    except ValueError as e:
        return False, str(e)
    return False, "Cannot run handler: invalid handler: %r" % (handler,)


class PreStop:
    """One preStop hook run (executePreStopHook): start() launches it in a thread;
    done() tells whether it finished; the caller waits at most the grace period."""

    def __init__(self, handler, container, pod_ip, env, grace, wrap=None, cwd=None, on_done=None):
        self.handler = handler
        self.container = container
        self.pod_ip = pod_ip
        self.env = env
        self.grace = float(grace)
        self.wrap = wrap
        self.cwd = cwd
        self.on_done = on_done
        self.start_mono = None
        self.ok = None
        self.msg = ""
        self.finished = threading.Event()
        self.stop_ev = threading.Event()

    def start(self):
        self.start_mono = time.monotonic()
        threading.Thread(target=self._run, daemon=True, name="prestop-%s" % self.container.get("name")).start()
        return self

    def _run(self):
        try:
            self.ok, self.msg = run_handler(self.handler, self.container, self.pod_ip, self.env,
                                            max(self.grace, 0.1), self.stop_ev, self.wrap, self.cwd)
        except Exception as e:  # noqa: BLE001 - utilruntime.HandleCrash: a hook never kills the kubelet
            self.ok, self.msg = False, "hook crashed: %s" % e
        self.finished.set()
        if self.on_done:
            self.on_done(self)

    def deadline(self):
        return self.start_mono + self.grace

    def remaining_grace(self, now=None):
        """The grace left for SIGTERM once the hook finished or timed out: the
        grace minus the whole seconds the hook took, floored at MIN_GRACE_S."""
        now = time.monotonic() if now is None else now
        took = int(max(0.0, min(now, self.deadline()) - self.start_mono))
        return max(self.grace - took, MIN_GRACE_S)

    def cancel(self):
        self.stop_ev.set()


def prestop_handler(spec):
    """The container's lifecycle.preStop handler, or None."""
    lc = spec.get("lifecycle") or {}
    h = lc.get("preStop")
    return h if isinstance(h, dict) and h else None


def kill_after_prestop(handler, spec, pod_ip, env, grace, sigterm, sigkill, wait_exit, wrap=None, cwd=None,
                       on_failed=None):
    """killContainer for one container, synchronously (used by probe kills):
    preStop (bounded by the grace period), SIGTERM, SIGKILL after what is left."""
    g = float(grace)
    if handler is not None and g > 0:
        ps = PreStop(handler, spec, pod_ip, env, g, wrap, cwd).start()
        ps.finished.wait(max(0.0, g))
        if ps.finished.is_set() and not ps.ok and on_failed:
            on_failed(ps)
        g = ps.remaining_grace()
    else:
        g = max(g, MIN_GRACE_S)
    sigterm()
    if not wait_exit(g):
        sigkill()


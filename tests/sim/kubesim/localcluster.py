"""`local-cluster`: one command to run the whole simulated Kubernetes on this machine.

    tests/sim/local-cluster up [--state DIR] [--nodes N]   start API server, kubelet, controllers, proxy
                                                           and raywarden-controller (--no-controller: not)
                           [--operator raywarden|kuberay|none]   which Ray operator (operators.py)
                           [--prometheus]      also a real Prometheus scraping the controller and agents
    tests/sim/local-cluster status [--state DIR] [--json]  what runs
    tests/sim/local-cluster switch-operator raywarden|kuberay   stop the running Ray operator, start the other
    tests/sim/local-cluster down [--state DIR]             stop everything, leave nothing behind
    tests/sim/local-cluster fail-node NODE | recover-node NODE | fail-pod NS/POD[/CONTAINER]
    tests/sim/local-cluster logs NS/POD [CONTAINER] | proxy-stats | env

The state directory (default <repo>/.local) holds the API server's kubeconfig, CA
and token, every component's pid and control address (cluster.json, *.json) and
logs (logs/).  See docs/local-cluster.md, section "One command".
"""

import argparse
import base64
import glob
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

from kubesim import controller_identity, operators, prometheus, realcp, upstream
from kubesim.kubeclient import ApiError
from kubesim.testutil import free_port, http_get, read_json, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
SIM_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(SIM_DIR))
APISERVER = os.path.join(HERE, "apiserver.py")
COMPONENTS = ("apiserver", "kubelet", "controllers", "proxy")
# --control-plane real: the real control plane (kubesim/realcp.py) replaces the API server and
# controllers simulators; the kubelet and proxy simulators run against it.
REAL_COMPONENTS = realcp.COMPONENTS + ("kubelet", "proxy")
CONTROLLER = "raywarden-controller"
MARK_CLUSTER = "KUBESIM_CLUSTER"


def build_dir():
    return os.environ.get("RW_BUILD_DIR") or os.path.join(REPO_ROOT, "build")


def controller_bin():
    return os.environ.get("RW_CONTROLLER_BIN") or os.path.join(build_dir(), "bin", CONTROLLER)


def default_state():
    return os.path.join(REPO_ROOT, ".local")


def alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def stop_pid(pid, sig=signal.SIGTERM, grace=10.0):
    """Send sig to pid, wait up to grace seconds for it to end, then SIGKILL it. Returns whether
    it was running."""
    if not alive(pid):
        return False
    try:
        os.kill(pid, sig)
    except OSError:
        pass
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return True


def http_post(url, body, timeout=10.0):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


class Cluster:
    def __init__(self, state):
        self.state = os.path.abspath(state)
        self.info_path = os.path.join(self.state, "cluster.json")
        self.logs = os.path.join(self.state, "logs")
        self.children = {}  # Popen objects of the processes this object started

    # -- state -----------------------------------------------------------------

    def info(self):
        return read_json(self.info_path)

    def running(self):
        info = self.info()
        if not info:
            return {}
        return {name: pid for name, pid in (info.get("pids") or {}).items() if alive(pid)}

    def api(self):
        return read_json(os.path.join(self.state, "apiserver.json"))

    def api_ready(self):
        a = self.api()
        if not a:
            return False
        url = a.get("url") or "https://%s:%s" % (a.get("host", "127.0.0.1"), a.get("port"))
        try:
            code, _ = http_get(url.rstrip("/") + "/readyz", 1.0, a.get("token"), os.path.join(self.state, "ca.crt"))
            return code == 200
        except (OSError, urllib.error.URLError, ssl.SSLError):
            return False

    # -- processes ----------------------------------------------------------------

    def spawn(self, name, argv, env_extra=None):
        os.makedirs(self.logs, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = SIM_DIR + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        env[MARK_CLUSTER] = self.state
        if env_extra:
            env.update(env_extra)
        logf = open(os.path.join(self.logs, name + ".log"), "ab")
        p = subprocess.Popen(argv, cwd=SIM_DIR, env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True)
        logf.close()
        self.children[p.pid] = p
        return p

    def components(self):
        info = self.info() or {}
        return tuple(info.get("components") or COMPONENTS)

    def progress(self, msg, quiet=False):
        """One line per step of a command people wait on, to stderr."""
        if not quiet:
            print("local-cluster: %s" % msg, file=sys.stderr, flush=True)

    def up(self, nodes=1, backoff_base=None, job_backoff_base=None, api_args=(), quiet=False, timeout=30.0,
           controller=True, controller_args=(), control_plane="sim", operator=None, with_prometheus=False):
        t0 = time.monotonic()
        base = REAL_COMPONENTS if control_plane == "real" else COMPONENTS
        operator = operator or ("raywarden" if controller else "none")
        controller = operator == "raywarden"
        run = self.running()
        if run and with_prometheus and prometheus.COMPONENT not in run and set(run) >= set(base):
            return self.add_prometheus(quiet, timeout)
        if run:
            if set(run) == set(self.components()) or (set(run) >= set(base) and not controller):
                print("local cluster already up in %s (pids %s)" % (self.state, " ".join(
                    "%s=%d" % kv for kv in sorted(run.items()))))
                self.print_usage()
                return 0
            if set(run) >= set(base) and controller and os.path.exists(controller_bin()):
                try:
                    pid = self.start_controller(list(controller_args), timeout=timeout)
                except RuntimeError as e:
                    print("error: %s" % e, file=sys.stderr)
                    return 1
                print("local cluster already up in %s; started %s (pid %d)" % (self.state, CONTROLLER, pid))
                self.print_usage()
                return 0
            print("local cluster in %s is partly running (%s); stopping it first" % (self.state, ", ".join(sorted(run))))
            self.down(quiet=True)
        os.makedirs(self.state, exist_ok=True)
        for f in ("apiserver.json", "kubelet.json", "controllers.json", "proxy.json", "cluster.json",
                  CONTROLLER + ".json", "prometheus.json") + tuple(c + ".json" for c in operators.COMPONENTS):
            try:
                os.unlink(os.path.join(self.state, f))
            except FileNotFoundError:
                pass
        if with_prometheus and prometheus.skip_reason():
            print("error: --prometheus: %s" % prometheus.skip_reason(), file=sys.stderr)
            return 2
        if control_plane == "real":
            why = upstream.skip_reason()
            if why:
                print("error: --control-plane real: %s" % why, file=sys.stderr)
                return 2
        elif not os.path.exists(APISERVER):
            print("error: %s is missing (the API server simulator)" % APISERVER, file=sys.stderr)
            return 2
        pids = {}
        procs = {}
        comps = list(base)
        if controller and not os.path.exists(controller_bin()):
            print("warning: %s is not built; starting without the controller (build it, then "
                  "`local-cluster controller start`)" % controller_bin(), file=sys.stderr)
            controller = False
        if controller:
            comps.append(CONTROLLER)
        if operator == "kuberay":
            # The protobuf front is for the simulated API server only, the pod network's proxy
            # for the real control plane only (operators.py).
            skip = operators.SHIM if control_plane == "real" else operators.PODNET
            comps += [c for c in operators.COMPONENTS if c != skip]
        if with_prometheus:
            comps.append(prometheus.COMPONENT)

        def record():
            write_json(self.info_path, {"pids": pids, "state": self.state, "started": time.time(),
                                        "components": comps})

        try:
            deadline = time.monotonic() + timeout
            if control_plane == "real":
                node_comps = ("kubelet", "proxy")
                self.progress("starting the real control plane (%s)" % ", ".join(realcp.COMPONENTS), quiet)
                self.start_real_control_plane(pids, procs, record, deadline)
            else:
                node_comps = ("kubelet", "controllers", "proxy")
                self.progress("starting apiserver", quiet)
                api = self.spawn("apiserver", [sys.executable, APISERVER, "--state-dir", self.state, "--tls", "--port", "0",
                                                "--service-cidr", "auto", "--log-dir", os.path.join(self.state, "podlogs")]
                                 + list(api_args))
                pids["apiserver"] = api.pid
                procs["apiserver"] = api
                record()
                while not self.api_ready():
                    if api.poll() is not None:
                        raise RuntimeError("API server exited (%s); see %s" % (api.returncode, os.path.join(self.logs, "apiserver.log")))
                    if time.monotonic() > deadline:
                        raise RuntimeError("API server not ready after %ss" % timeout)
                    time.sleep(0.02)
            kargs = [sys.executable, "-m", "kubesim.kubelet", "--state-dir", self.state, "--nodes", str(nodes)]
            if control_plane == "real":
                kargs += ["--no-scheduler", "--pod-network"]
            if backoff_base is not None:
                kargs += ["--backoff-base", str(backoff_base)]
            cargs = [sys.executable, "-m", "kubesim.controllers", "--state-dir", self.state]
            if job_backoff_base is not None:
                cargs += ["--job-backoff-base", str(job_backoff_base)]
            argvs = {"kubelet": kargs, "controllers": cargs,
                     "proxy": [sys.executable, "-m", "kubesim.proxy", "--state-dir", self.state]}
            for name in node_comps:
                self.progress("starting %s" % name, quiet)
                p = self.spawn(name, argvs[name])
                pids[name] = p.pid
                procs[name] = p
            record()
            for name in node_comps:
                path = os.path.join(self.state, name + ".json")
                while not os.path.exists(path):
                    if procs[name].poll() is not None:
                        raise RuntimeError("%s exited (%s); see %s" % (name, procs[name].returncode,
                                                                       os.path.join(self.logs, name + ".log")))
                    if time.monotonic() > deadline:
                        raise RuntimeError("%s not ready after %ss" % (name, timeout))
                    time.sleep(0.02)
            if operator == "kuberay":
                self.progress("starting KubeRay's operator", quiet)
                pids.update(operators.up(self, operator, quiet, max(timeout, 120.0)))
                record()
            else:
                self.progress("installing CRDs", quiet)
                self.install_crds(quiet)
            if with_prometheus:
                # Before the controller, so that start_controller publishes its metrics endpoint.
                self.progress("starting prometheus", quiet)
                pids[prometheus.COMPONENT] = prometheus.start(self, max(deadline, time.monotonic() + 60.0),
                                                              control_plane == "real")
                record()
            if controller:
                self.progress("starting %s" % CONTROLLER, quiet)
                pids[CONTROLLER] = self.start_controller(list(controller_args), timeout=max(1.0, deadline - time.monotonic()))
                record()
        except (RuntimeError, OSError, ApiError) as e:
            print("error: %s" % e, file=sys.stderr)
            self.down(quiet=True)
            return 1
        took = time.monotonic() - t0
        info = self.info() or {}
        info["startup_seconds"] = round(took, 3)
        write_json(self.info_path, info)
        if not quiet:
            print("local cluster up in %.2fs (state %s)" % (took, self.state))
            self.print_usage()
        return 0

    def add_prometheus(self, quiet=False, timeout=60.0):
        """`up --prometheus` on a cluster that runs without it: start Prometheus and make the
        running controller discoverable."""
        if prometheus.skip_reason():
            print("error: --prometheus: %s" % prometheus.skip_reason(), file=sys.stderr)
            return 2
        self.progress("starting prometheus", quiet)
        real = realcp.COMPONENTS[0] in self.components()
        try:
            pid = prometheus.start(self, time.monotonic() + max(timeout, 60.0), real)
            c = self.controller_info() or {}
            if alive(c.get("pid")):
                self.publish_controller(c["metrics_url"])
        except (RuntimeError, OSError, ApiError) as e:
            print("error: %s" % e, file=sys.stderr)
            return 1
        info = self.info() or {}
        info.setdefault("pids", {})[prometheus.COMPONENT] = pid
        comps = list(info.get("components") or COMPONENTS)
        if prometheus.COMPONENT not in comps:
            comps.append(prometheus.COMPONENT)
        info["components"] = comps
        write_json(self.info_path, info)
        print("local cluster already up in %s; started prometheus (pid %d)" % (self.state, pid))
        self.print_usage()
        return 0

    def start_real_control_plane(self, pids, procs, record, deadline):
        """etcd, kube-apiserver, kube-controller-manager, kube-scheduler (kubesim/realcp.py)."""
        def start(name, argv):
            p = self.spawn(name, argv)
            pids[name] = p.pid
            procs[name] = p
            record()
            return p

        realcp.start(self.state, start, deadline, self.logs)

    # -- raywarden-controller ------------------------------------------------------

    def controller_info(self):
        return read_json(os.path.join(self.state, CONTROLLER + ".json"))

    def master_key_path(self):
        """The controller's master agent key (32 random bytes, base64, as docs/install.md), made once."""
        path = os.path.join(self.state, "agent-master.key")
        if not os.path.exists(path):
            fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
            os.replace(path + ".tmp", path)
        return path

    def controller_kubeconfig(self):
        """The controller's own identity, as installed: manifests/rbac applied (as the admin),
        a token of ServiceAccount raywarden-system/raywarden-controller in
        DIR/raywarden-controller.kubeconfig. The API server simulator enforces RBAC for it."""
        return controller_identity.controller_kubeconfig(self.state)

    def start_controller(self, extra_args=(), timeout=30.0, wait_ready=True, as_admin=False):
        """Start build/bin/raywarden-controller as a host process against this cluster.

        It runs as its ServiceAccount, bound by manifests/rbac (RBAC enforced: an ungranted
        request is answered 403); as_admin=True uses the admin kubeconfig instead. It listens
        for agents on 127.0.0.1:<port> and tells them that address; leader election is off (one
        controller). Extra flags go last (they win). Returns the pid;
        DIR/raywarden-controller.json says where everything is."""
        prev = self.controller_info() or {}
        if alive(prev.get("pid")):
            return prev["pid"]
        binary = controller_bin()
        if not os.path.exists(binary):
            raise RuntimeError("%s is not built" % binary)
        # Keep the agent port across restarts: running agents keep dialling it.
        agent_port = prev.get("agent_port") or free_port()
        metrics_port, health_port = free_port(), free_port()
        agent_url = "tcp://127.0.0.1:%d" % agent_port
        kubeconfig = (os.path.join(self.state, "kubeconfig") if as_admin
                      else self.controller_kubeconfig())
        argv = [binary, "--kubeconfig", kubeconfig,
                "--leader-elect=false",
                "--agent-listen", agent_url, "--agent-advertise-address", agent_url,
                "--agent-key-file", self.master_key_path(),
                "--metrics-addr", "127.0.0.1:%d" % metrics_port,
                "--health-probe-bind-address", "127.0.0.1:%d" % health_port] + list(extra_args)
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        env[MARK_CLUSTER] = self.state
        os.makedirs(self.logs, exist_ok=True)
        logpath = os.path.join(self.logs, CONTROLLER + ".log")
        logf = open(logpath, "ab")
        p = subprocess.Popen(argv, cwd=self.state, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        self.children[p.pid] = p
        write_json(os.path.join(self.state, CONTROLLER + ".json"), {
            "pid": p.pid, "agent_url": agent_url, "agent_port": agent_port,
            "metrics_url": "http://127.0.0.1:%d/metrics" % metrics_port,
            "health_url": "http://127.0.0.1:%d" % health_port, "log": logpath, "argv": argv})
        info = self.info()
        if info is not None:
            info.setdefault("pids", {})[CONTROLLER] = p.pid
            comps = list(info.get("components") or COMPONENTS)
            if CONTROLLER not in comps:
                comps.append(CONTROLLER)
            info["components"] = comps
            write_json(self.info_path, info)
        self.publish_controller("http://127.0.0.1:%d/metrics" % metrics_port)
        if wait_ready:
            deadline = time.monotonic() + timeout
            while True:
                if p.poll() is not None:
                    raise RuntimeError("%s exited (%s); see %s" % (CONTROLLER, p.returncode, logpath))
                try:
                    code, _ = http_get("http://127.0.0.1:%d/readyz" % health_port, 1.0)
                    if code == 200:
                        break
                except (OSError, urllib.error.URLError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("%s not ready after %.0fs; see %s" % (CONTROLLER, timeout, logpath))
                time.sleep(0.02)
        return p.pid

    def publish_controller(self, metrics_url, ready=True):
        """With Prometheus running: the controller's metrics endpoint in the EndpointSlice its
        service discovery reads (kubesim/prometheus.py)."""
        if not alive(prometheus.info(self.state).get("pid")):
            return
        try:
            prometheus.publish_controller(self.state, metrics_url, realcp.COMPONENTS[0] in self.components(), ready)
        except (RuntimeError, OSError, ApiError) as e:
            print("warning: the controller's metrics endpoint is not published for Prometheus: %s" % e,
                  file=sys.stderr)

    def stop_controller(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop the controller (SIGTERM: orderly; SIGKILL: as a crash). Returns its exit status or None."""
        d = self.controller_info() or {}
        pid = d.get("pid")
        if not stop_pid(pid, sig, timeout):
            return None
        if d.get("metrics_url"):
            self.publish_controller(d["metrics_url"], ready=False)
        code = None
        child = self.children.pop(pid, None)
        if child is not None:
            try:
                code = child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        else:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        return code

    def operator_running(self):
        """Which Ray operator runs here: "raywarden", "kuberay" or "none"."""
        if alive((self.controller_info() or {}).get("pid")):
            return "raywarden"
        if alive(operators.info(self.state).get("pid")):
            return "kuberay"
        return "none"

    def switch_operator(self, to, timeout=120.0, controller_args=(), quiet=False):
        """Replace the running Ray operator by `to` as a platform team does on a real cluster
        (docs/migrating-from-kuberay.md): swap the CRDs in place (server-side apply with
        --force-conflicts: every existing object is kept; both operators serve the same ray.io/v1
        schema, so this is done while the old one still runs, which keeps the time without an
        operator short), stop the old operator and wait until its process is gone (the two never
        reconcile at once), start the new one and wait until it is ready. Writes
        DIR/switch-operator.json with the times (Unix seconds); returns it."""
        if to not in ("raywarden", "kuberay"):
            raise RuntimeError("switch-operator: unknown operator %r" % to)
        frm = self.operator_running()
        if frm == to:
            raise RuntimeError("switch-operator: %s already runs in %s" % (to, self.state))
        t0 = time.time()
        if to == "raywarden":
            self.install_crds(quiet=True, check=True)
            self.controller_kubeconfig()  # RBAC and token before the old operator stops
        else:
            operators.install_crds(self.state, quiet=True, timeout=timeout)
            operators.kubeconfig(self.state)
        t_crds = time.time()
        if frm == "raywarden":
            self.stop_controller(timeout=timeout)
        elif frm == "kuberay":
            pid = operators.info(self.state).get("pid")
            operators.stop(self.state, grace=timeout)
            child = self.children.pop(pid, None)
            if child is not None:
                child.wait(timeout=5)
        t_stopped = time.time()
        if to == "raywarden":
            self.start_controller(list(controller_args), timeout=timeout)
        else:
            operators.start(self, timeout=timeout)
        t_ready = time.time()
        info = self.info() or {}
        old = CONTROLLER if frm == "raywarden" else operators.KUBERAY if frm == "kuberay" else None
        comps = [c for c in (info.get("components") or []) if c != old]
        new = CONTROLLER if to == "raywarden" else operators.KUBERAY
        info["components"] = comps + ([new] if new not in comps else [])
        if old:
            (info.get("pids") or {}).pop(old, None)
        write_json(self.info_path, info)
        rec = {"from": frm, "to": to, "started": t0, "crds_applied": t_crds, "old_stopped": t_stopped,
               "new_ready": t_ready, "seconds": round(t_ready - t0, 3),
               "without_operator_seconds": round(t_ready - t_crds, 3)}
        write_json(os.path.join(self.state, "switch-operator.json"), rec)
        if not quiet:
            print("operator switched from %s to %s in %.2fs: CRDs and RBAC %.2fs, then %.2fs without an "
                  "operator (old stopped after %.2fs)" % (frm, to, t_ready - t0, t_crds - t0, t_ready - t_crds,
                                                          t_stopped - t_crds))
        return rec

    def install_crds(self, quiet=False, check=False):
        """Install manifests/crds/*.yaml with server-side apply when they exist (check: a
        failure raises RuntimeError instead of a warning)."""
        crd_dir = os.environ.get("RW_SIM_CRD_DIR") or os.path.join(REPO_ROOT, "manifests", "crds")
        files = sorted(glob.glob(os.path.join(crd_dir, "*.yaml")))
        if not files:
            return
        kubectl = shutil.which("kubectl")
        if not kubectl:
            print("warning: kubectl not found; CRDs not installed", file=sys.stderr)
            return
        argv = [kubectl, "--kubeconfig", os.path.join(self.state, "kubeconfig"), "apply", "--server-side",
                "--force-conflicts"]
        for f in files:
            argv += ["-f", f]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0 and check:
            raise RuntimeError("installing CRDs failed:\n%s" % r.stdout.decode("utf-8", "replace"))
        if r.returncode != 0:
            print("warning: installing CRDs failed:\n%s" % r.stdout.decode("utf-8", "replace"), file=sys.stderr)
        elif not quiet:
            print("installed %d CRD file(s) from %s" % (len(files), crd_dir))

    def print_usage(self):
        kc = os.path.join(self.state, "kubeconfig")
        print("  export KUBECONFIG=%s" % kc)
        print("  kubectl get nodes; kubectl get pods -A")
        print("  %s status|down|fail-node NODE|recover-node NODE|fail-pod NS/POD|logs NS/POD [C]|proxy-stats"
              % os.path.relpath(os.path.join(SIM_DIR, "local-cluster")))
        c = self.controller_info()
        if c and alive(c.get("pid")):
            print("  raywarden-controller: agents %s, log %s; next: kubectl apply -f <RayCluster>"
                  % (c.get("agent_url"), c.get("log")))
            print("  raywarden-controller: metrics %s, status page %s" % (c.get("metrics_url"), self.ui_url()))
        p = prometheus.info(self.state)
        if alive(p.get("pid")):
            print("  prometheus: %s (config %s)" % (p.get("url"), p.get("config")))

    def down(self, quiet=False, grace=8.0):
        info = self.info() or {}
        pids = info.get("pids") or {}
        # Node components first (the kubelet kills its pods), the API server last.
        for group in ((CONTROLLER, prometheus.COMPONENT) + operators.COMPONENTS + ("kubelet", "controllers", "proxy"),
                      ("kube-controller-manager", "kube-scheduler"), ("apiserver", "kube-apiserver"), ("etcd",)):
            live = [(n, pids[n]) for n in group if alive(pids.get(n))]
            for _n, pid in live:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            deadline = time.monotonic() + grace
            for _n, pid in live:
                while alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if alive(pid):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
            for _n, pid in live:
                child = self.children.pop(pid, None)
                if child is not None:
                    try:
                        child.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        pass
                    continue
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        realcp.release(self.state)
        stray = self.kill_strays()
        self.cleanup_host()
        for f in ("apiserver.json", "kubelet.json", "controllers.json", "proxy.json", "cluster.json",
                  CONTROLLER + ".json", "prometheus.json") + tuple(c + ".json" for c in operators.COMPONENTS):
            try:
                os.unlink(os.path.join(self.state, f))
            except FileNotFoundError:
                pass
        shutil.rmtree(os.path.join(self.state, "kubelet", "pods"), ignore_errors=True)
        shutil.rmtree(os.path.join(self.state, "podlogs"), ignore_errors=True)
        if not quiet:
            print("local cluster down (%s)%s" % (self.state, "; killed %d stray process(es)" % stray if stray else ""))
        return 0

    def stray_pids(self):
        want = ("%s=%s" % (MARK_CLUSTER, self.state)).encode() + b"\0"
        out = []
        for d in glob.glob("/proc/[0-9]*"):
            try:
                pid = int(d[6:])
                if pid == os.getpid():
                    continue
                with open(d + "/environ", "rb") as f:
                    env = b"\0" + f.read()
            except (OSError, ValueError):
                continue
            if b"\0" + want in env and alive(pid):
                out.append(pid)
        return out

    def kill_strays(self):
        n = 0
        for _ in range(5):
            pids = self.stray_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    n += 1
                except OSError:
                    pass
            time.sleep(0.05)
        return n

    def cleanup_host(self):
        """Remove what a killed component could have left on the host: its
        /etc/hosts block and mount points it created."""
        from kubesim.proxy import HostsFile
        from kubesim.kubelet_volumes import MountPoints

        HostsFile(self.state).remove()
        rec = os.path.join(self.state, "kubelet", "mountpoints.json")
        if os.path.exists(rec):
            MountPoints(rec).cleanup_all()

    def ui_url(self):
        """The controller's status page: / of its metrics listener."""
        m = (self.controller_info() or {}).get("metrics_url")
        return m[:-len("metrics")] if m and m.endswith("/metrics") else None

    def status_json(self):
        """{"apiserver", "metrics", "ui", "prometheus"}: URLs of what runs, null for what does not."""
        run = self.running()
        api = (self.api() or {}).get("url") if ("apiserver" in run or "kube-apiserver" in run) else None
        ctl = CONTROLLER in run and alive((self.controller_info() or {}).get("pid"))
        p = prometheus.info(self.state)
        return {"apiserver": api,
                "metrics": (self.controller_info() or {}).get("metrics_url") if ctl else None,
                "ui": self.ui_url() if ctl else None,
                "prometheus": p.get("url") if alive(p.get("pid")) else None}

    def status(self):
        info = self.info()
        run = self.running()
        if not info:
            print("local cluster: down (%s)" % self.state)
            return 3
        pids = info.get("pids") or {}
        comps = self.components()
        for name in comps:
            pid = pids.get(name)
            print("%-23s %s" % (name, ("running (pid %d)" % pid) if name in run else "not running"))
        if CONTROLLER in comps:
            c = self.controller_info() or {}
            if CONTROLLER in run:
                try:
                    code, _ = http_get(c["health_url"] + "/readyz", 1.0)
                    ready = "ready" if code == 200 else "NOT ready"
                except (OSError, KeyError, urllib.error.URLError):
                    ready = "NOT ready"
                print("%-23s agents %s, %s, metrics %s, log %s" % ("controller", c.get("agent_url"), ready,
                                                                   c.get("metrics_url"), c.get("log")))
        line = operators.status_line(self.state, run)
        if line:
            print(line)
        p = prometheus.info(self.state)
        if prometheus.COMPONENT in run and p:
            print("%-23s %s (config %s)" % ("prometheus url", p.get("url"), p.get("config")))
        if "apiserver" in run or "kube-apiserver" in run:
            a = self.api() or {}
            print("%-23s %s (%s)" % ("api", a.get("url"), "ready" if self.api_ready() else "NOT ready"))
        k = read_json(os.path.join(self.state, "kubelet.json"))
        if k and "kubelet" in run:
            try:
                _, body = http_get(k["control_url"] + "/pods")
                d = json.loads(body)
                print("%-23s %s%s; %d pod(s) running here" % ("nodes", ", ".join(d["nodes"]),
                                                               (" (failed: %s)" % ", ".join(d["failedNodes"]))
                                                               if d["failedNodes"] else "", len(d["pods"])))
            except (OSError, ValueError, urllib.error.URLError):
                pass
        if info.get("startup_seconds") is not None:
            print("%-23s %.2fs" % ("startup", info["startup_seconds"]))
        print("%-23s %s" % ("kubeconfig", os.path.join(self.state, "kubeconfig")))
        return 0 if set(run) == set(comps) else 1

    def control(self, comp):
        d = read_json(os.path.join(self.state, comp + ".json"))
        if not d or not alive(d.get("pid")):
            raise SystemExit("%s is not running in %s" % (comp, self.state))
        return d["control_url"]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="local-cluster", description="simulated Kubernetes on this machine")
    ap.add_argument("--state", default=os.environ.get("RW_LOCAL_CLUSTER_STATE") or default_state(),
                    help="state directory (default <repo>/.local)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--nodes", type=int, default=int(os.environ.get("RW_SIM_NODES", "1")))
    up.add_argument("--backoff-base", type=float, default=None, help="kubelet crash-loop back-off base (10 s)")
    up.add_argument("--job-backoff-base", type=float, default=None, help="Job pod-failure back-off base (10 s)")
    up.add_argument("--timeout", type=float, default=30.0)
    up.add_argument("--quiet", action="store_true")
    up.add_argument("--no-controller", action="store_true", help="do not start raywarden-controller "
                    "(= --operator none)")
    up.add_argument("--operator", choices=operators.CHOICES, default=None,
                    help="the Ray operator to run: raywarden (default), kuberay (KubeRay as installed, "
                    "with its own CRDs and RBAC) or none")
    up.add_argument("--control-plane", choices=("sim", "real"), default=os.environ.get("RW_CONTROL_PLANE", "sim"),
                    help="sim: the Python API server and controllers; real: etcd, kube-apiserver, "
                         "kube-controller-manager, kube-scheduler (tests/sim/upstream/build)")
    up.add_argument("--controller-arg", action="append", default=[],
                    help="extra raywarden-controller flag (repeatable), e.g. --controller-arg=--log-level=debug")
    up.add_argument("--prometheus", action="store_true",
                    help="also run Prometheus with manifests/prometheus/prometheus.yaml (service discovery "
                         "against this cluster's API server); DIR/prometheus.json says where")
    ctl = sub.add_parser("controller", help="start, stop or restart raywarden-controller")
    ctl.add_argument("action", choices=("start", "stop", "restart", "kill"))
    ctl.add_argument("--controller-arg", action="append", default=[])
    sw = sub.add_parser("switch-operator", help="stop the running Ray operator, start the other "
                        "(docs/migrating-from-kuberay.md)")
    sw.add_argument("to", choices=("raywarden", "kuberay"))
    sw.add_argument("--timeout", type=float, default=120.0)
    sw.add_argument("--controller-arg", action="append", default=[])
    sub.add_parser("down")
    sub.add_parser("status").add_argument("--json", action="store_true",
                                          help='print {"apiserver","metrics","ui","prometheus"} (URLs or null)')
    sub.add_parser("env")
    for c in ("fail-node", "recover-node"):
        sub.add_parser(c).add_argument("node")
    fp = sub.add_parser("fail-pod")
    fp.add_argument("pod", help="NAMESPACE/POD[/CONTAINER] or POD")
    lg = sub.add_parser("logs")
    lg.add_argument("pod", help="NAMESPACE/POD or POD")
    lg.add_argument("container", nargs="?")
    lg.add_argument("--previous", action="store_true")
    sub.add_parser("proxy-stats")
    # Allow --state after the subcommand too.
    args, rest = ap.parse_known_args(argv)
    if rest:
        ap2 = argparse.ArgumentParser()
        ap2.add_argument("--state")
        extra, unknown = ap2.parse_known_args(rest)
        if unknown:
            ap.error("unrecognized arguments: %s" % " ".join(unknown))
        if extra.state:
            args.state = extra.state
    cl = Cluster(args.state)
    if args.cmd == "up":
        return cl.up(args.nodes, args.backoff_base, args.job_backoff_base, quiet=args.quiet, timeout=args.timeout,
                     controller=not args.no_controller, controller_args=args.controller_arg,
                     control_plane=args.control_plane,
                     operator=args.operator or ("none" if args.no_controller else "raywarden"),
                     with_prometheus=args.prometheus)
    if args.cmd == "controller":
        if args.action in ("stop", "restart", "kill"):
            code = cl.stop_controller(signal.SIGKILL if args.action == "kill" else signal.SIGTERM)
            print("%s stopped%s" % (CONTROLLER, "" if code is None else " (exit %s)" % code))
        if args.action in ("start", "restart"):
            try:
                pid = cl.start_controller(args.controller_arg)
            except RuntimeError as e:
                print("error: %s" % e, file=sys.stderr)
                return 1
            print("%s running (pid %d)" % (CONTROLLER, pid))
        return 0
    if args.cmd == "switch-operator":
        try:
            cl.switch_operator(args.to, args.timeout, args.controller_arg)
        except (RuntimeError, OSError) as e:
            print("error: %s" % e, file=sys.stderr)
            return 1
        return 0
    if args.cmd == "down":
        return cl.down()
    if args.cmd == "status":
        if args.json:
            print(json.dumps(cl.status_json()))
            return 0
        return cl.status()
    if args.cmd == "env":
        print("export KUBECONFIG=%s" % os.path.join(cl.state, "kubeconfig"))
        return 0
    if args.cmd in ("fail-node", "recover-node"):
        print(json.dumps(http_post(cl.control("kubelet") + "/" + args.cmd, {"node": args.node})))
        return 0
    if args.cmd == "fail-pod":
        parts = args.pod.split("/")
        if len(parts) == 1:
            parts = ["default"] + parts
        body = {"namespace": parts[0], "pod": parts[1]}
        if len(parts) > 2:
            body["container"] = parts[2]
        print(json.dumps(http_post(cl.control("kubelet") + "/fail-pod", body)))
        return 0
    if args.cmd == "logs":
        ns, _, name = args.pod.rpartition("/")
        q = "namespace=%s&pod=%s" % (ns or "default", name)
        if args.container:
            q += "&container=" + args.container
        if args.previous:
            q += "&previous=1"
        _, body = http_get(cl.control("kubelet") + "/logs?" + q)
        sys.stdout.write(body)
        return 0
    if args.cmd == "proxy-stats":
        _, body = http_get(cl.control("proxy") + "/stats")
        print(json.dumps(json.loads(body), indent=1))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())

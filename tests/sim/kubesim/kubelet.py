"""Kubelet simulator: registers Nodes, schedules pods onto them, and runs each pod's
containers as real local processes with their probes, restarts, status and
graceful deletion, talking to the API server only through its REST API.

Run:  python3 -m kubesim.kubelet --state-dir DIR [--nodes N]   (cwd or PYTHONPATH = tests/sim)

See docs/local-cluster.md, section "Kubelet, services and controllers".
"""

import argparse
import copy
import glob
import hashlib
import http.server
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

from . import kubelet_ipam, kubelet_sched, kubelet_server, nodelease, realcp
from .kubeclient import ApiError, Informer, KubeClient, rfc3339
from .kubelet_env import (EnvError, IPAllocator, build_env, controller_args, expand_command, idle_argv,
                          image_kind,
                          node_ip, node_pod_cidr, pod_phase, qos_class, service_env)
from .kubelet_lifecycle import MIN_GRACE_S, PreStop, kill_after_prestop, prestop_handler
from .kubelet_probe import ProbeWorker
from .kubelet_volumes import (IMAGE_WORKDIR, MountPoints, VolumeError, apply_fs_group, container_mounts,
                              is_dir_source,
                              materialise, mount_namespace_available, remove_tree, resync, rewrite_paths,
                              service_account_dir, wrap_argv)

HERE = os.path.dirname(os.path.abspath(__file__))
SIM_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(SIM_DIR))
POD_BIN = os.path.join(SIM_DIR, "pod-bin")
SIM_BIN = os.path.join(SIM_DIR, "bin")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MARK_CLUSTER = "KUBESIM_CLUSTER"
MARK_CONTAINER = "KUBESIM_CONTAINER"
KUBELET_OWNED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


def log(msg):
    sys.stderr.write("%s kubelet: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------------
# Process helpers.  Every process a container starts carries two environment
# markers, so that the simulator finds it again even if it left the process group
# (a real runtime has the container's cgroup and PID namespace for that).
# ---------------------------------------------------------------------------------


def marked_pids(marker):
    """Pids whose environment holds marker ("NAME=value")."""
    want = marker.encode() + b"\0"
    out = []
    me = os.getpid()
    for d in glob.glob("/proc/[0-9]*"):
        try:
            pid = int(d[6:])
            if pid == me:
                continue
            with open(d + "/environ", "rb") as f:
                env = f.read()
        except (OSError, ValueError):
            continue
        if (b"\0" + want) in (b"\0" + env):
            out.append(pid)
    return out


def kill_marked(marker, sig=signal.SIGKILL):
    n = 0
    for pid in marked_pids(marker):
        try:
            os.kill(pid, sig)
            n += 1
        except OSError:
            pass
    return n


def killpg(pid, sig):
    try:
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def usable_by(path, uid, gid):
    """Can uid/gid (no supplementary groups) execute path: search every directory on
    the way and read and execute the file itself?"""
    def allowed(st, bits):  # bits: 4 read, 2 write, 1 execute/search
        if uid == 0:
            return True
        if st.st_uid == uid:
            return (st.st_mode >> 6) & bits == bits
        if st.st_gid == gid:
            return (st.st_mode >> 3) & bits == bits
        return st.st_mode & bits == bits
    try:
        p = os.path.realpath(path)
        parts = p.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i]) or "/"
            if not allowed(os.stat(d), 1):
                return False
        return allowed(os.stat(p), 5)
    except OSError:
        return False


def kill_group_left(proc):
    """SIGKILL what is left in the process group of a container whose main process has
    exited (a runtime kills the whole PID namespace). The group id stays reserved while
    members remain; with none left the call finds nothing (barring a wrap of the pid
    space between the exit and this call). Needed for children that
    hide the environment marker: redis-server overwrites its environment with its
    process title, and one forked by `sh -c` outlives a SIGTERMed shell when it cannot
    save its data on shutdown."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


# ---------------------------------------------------------------------------------
# Container runtime state.
# ---------------------------------------------------------------------------------


class Container:
    def __init__(self, spec, is_init=False, ephemeral=False):
        self.spec = spec
        # An ephemeral container (spec.ephemeralContainers, added through the
        # pods/ephemeralcontainers subresource to a running pod): started once, never
        # restarted whatever the pod's restartPolicy, no probes, never Ready, and no part
        # of the pod's phase or readiness (Kubernetes docs "Ephemeral Containers";
        # pkg/kubelet/kuberuntime/kuberuntime_manager.go computePodActions starts each one
        # that has no status yet and nothing else).
        self.ephemeral = ephemeral
        self.name = spec.get("name")
        self.image = spec.get("image", "")
        self.kind = image_kind(self.image)
        self.is_init = is_init
        # Native sidecar: an init container with restartPolicy Always
        # (https://kubernetes.io/docs/concepts/workloads/pods/sidecar-containers/).
        self.sidecar = is_init and spec.get("restartPolicy") == "Always"
        self.proc = None
        self.gen = 0
        self.container_id = ""
        self.state = "waiting"
        self.waiting_reason = "ContainerCreating"
        self.waiting_message = ""
        self.started_at = None  # wall clock
        self.started_mono = None
        self.finished_at = None
        self.exit_code = None
        self.term_reason = None
        self.last_terminated = None
        self.restart_count = 0
        self.ready = False
        self.started = False
        self.readiness_result = False
        self.backoff = 0.0
        self.backoff_update = None
        self.restart_at = None
        self.probes = []
        self.env = {}
        self.completed = False  # init container finished with 0
        self.kill_reason = None
        self.wait_delay = 0.0
        self.mounts = []
        self.log_path = None

    def terminated_dict(self):
        d = {"exitCode": self.exit_code, "reason": self.term_reason or ("Completed" if self.exit_code == 0 else "Error"),
             "startedAt": rfc3339(self.started_at) if self.started_at else None,
             "finishedAt": rfc3339(self.finished_at) if self.finished_at else None,
             "containerID": self.container_id}
        if d["startedAt"] is None:
            del d["startedAt"]
        if self.kill_reason:
            d["message"] = self.kill_reason
        return d

    def status(self, pod_initialized=True):
        st = {"name": self.name, "image": self.image,
              "imageID": "docker.io/" + self.image.split("@")[0] + "@sha256:" + hashlib.sha256(self.image.encode()).hexdigest(),
              "ready": bool(self.ready and self.state == "running"),
              "started": bool(self.started and self.state == "running"),
              "restartCount": self.restart_count}
        if self.container_id:
            st["containerID"] = self.container_id
        if self.state == "running":
            st["state"] = {"running": {"startedAt": rfc3339(self.started_at)}}
        elif self.state == "terminated":
            st["state"] = {"terminated": self.terminated_dict()}
        else:
            w = {"reason": self.waiting_reason}
            if self.waiting_message:
                w["message"] = self.waiting_message
            st["state"] = {"waiting": w}
        st["lastState"] = {"terminated": self.last_terminated} if self.last_terminated else {}
        if self.is_init and not self.sidecar:
            st["started"] = self.state == "running"
        if self.ephemeral:
            st["ready"] = False  # the kubelet never reports an ephemeral container Ready
            st.pop("started", None)
        return st


# ---------------------------------------------------------------------------------
# Pod worker: one thread per pod, fed by a queue (pkg/kubelet/pod_workers.go).
# ---------------------------------------------------------------------------------


class PodWorker:
    def __init__(self, kubelet, pod, node, recovered=False):
        self.k = kubelet
        self.pod = pod
        self.node = node
        md = pod["metadata"]
        self.ns = md.get("namespace", "default")
        self.name = md["name"]
        self.uid = md.get("uid") or md["name"]
        self.key = self.ns + "/" + self.name
        spec = pod.get("spec") or {}
        self.restart_policy = spec.get("restartPolicy") or "Always"
        self.init = [Container(c, True) for c in spec.get("initContainers") or []]
        self.main = [Container(c) for c in spec.get("containers") or []]
        self.ephemeral = [Container(c, ephemeral=True) for c in spec.get("ephemeralContainers") or []]
        self.q = queue.Queue()
        self.pod_ip = None
        self.host_ip = node_ip(kubelet.node_index(node))
        self.pod_dir = os.path.join(kubelet.pods_dir, self.uid)
        self.volumes = {}
        self.sa_dir = None
        self.init_index = 0
        self.init_failed = False
        self.initialized = not self.init
        self.main_started = False
        self.start_time = None
        self.terminating = False
        self.deleted_from_api = False
        self.crashed = False
        self.done = threading.Event()
        self.last_status = None
        self.cond_times = {}
        self.volume_error = None
        self.created_mountpoints = []
        self.sandbox_ready = False
        self.next_volume_sync = None
        if recovered:
            # Node came back: the sandbox is recreated and containers restart,
            # keeping their restart counts (+1 for those that were running).
            prev = {c.get("name"): c for c in ((pod.get("status") or {}).get("containerStatuses") or [])
                    + ((pod.get("status") or {}).get("initContainerStatuses") or [])}
            for c in self.init + self.main:
                p = prev.get(c.name)
                if p:
                    c.restart_count = int(p.get("restartCount") or 0) + (1 if "running" in (p.get("state") or {}) else 0)
        self.thread = threading.Thread(target=self.run, daemon=True, name="pod-" + self.key)

    # -- plumbing ---------------------------------------------------------------

    def start(self):
        self.thread.start()

    def post(self, *ev):
        self.q.put(ev)

    def update(self, pod):
        self.post("update", pod)

    def containers(self):
        return self.init + self.main + self.ephemeral

    def add_ephemeral(self, pod):
        """Ephemeral containers only ever join a pod (the API server refuses removing or
        changing one): each new name is a container to start once."""
        known = {c.name for c in self.ephemeral}
        for spec in (pod.get("spec") or {}).get("ephemeralContainers") or []:
            if spec.get("name") not in known:
                self.ephemeral.append(Container(spec, ephemeral=True))

    def find(self, name):
        for c in self.containers():
            if c.name == name:
                return c
        return None

    def event(self, reason, message, etype="Normal", field=None):
        self.k.events.emit(self.pod, reason, message, etype, field, self.node)

    # -- main loop ---------------------------------------------------------------

    def run(self):
        try:
            self._run()
        except Exception as e:  # keep the kubelet alive
            import traceback

            traceback.print_exc()
            log("pod %s worker failed: %s" % (self.key, e))
        finally:
            self.done.set()

    def _run(self):
        self.start_time = time.time()
        self.sync_status()
        while not self.crashed and not self.terminating:
            if self.setup_sandbox():
                break
            if self.wait_event(1.0) == "stop":
                return
        while not self.crashed:
            if self.terminating:
                self.terminate()
                return
            self.advance()
            self.sync_volumes()
            self.sync_status()
            if self.pod_finished():
                # A pod in a terminal phase keeps its status; nothing more to run.
                pass
            timeout = self.next_timer()
            if self.wait_event(timeout) == "stop":
                return

    def wait_event(self, timeout):
        try:
            ev = self.q.get(timeout=timeout if timeout is not None else 3600)
        except queue.Empty:
            return None
        self.handle(ev)
        # Drain what is already queued so one status write covers a burst.
        for _ in range(100):
            try:
                ev = self.q.get_nowait()
            except queue.Empty:
                break
            self.handle(ev)
        if self.crashed:
            return "stop"
        return None

    def sync_volumes(self):
        """Secret and configMap volumes follow their objects (see kubelet_volumes.resync),
        every volume_sync_s, from the kubelet's watch-fed caches."""
        now = time.monotonic()
        if self.next_volume_sync is None:
            vols = (self.pod.get("spec") or {}).get("volumes") or []
            if not any("secret" in v or "configMap" in v for v in vols):
                return  # nothing to follow: no timer
            self.next_volume_sync = now + self.k.volume_sync_s
            return
        if now < self.next_volume_sync:
            return
        self.next_volume_sync = now + self.k.volume_sync_s
        try:
            changed = resync(self.pod, self.volumes, self.k.cached_lookup_fn(self.ns))
        except OSError as e:
            log("pod %s: volume sync: %s" % (self.key, e))
            return
        if changed:
            log("pod %s: volumes %s updated" % (self.key, ",".join(changed)))

    def next_timer(self):
        now = time.monotonic()
        t = None
        if self.next_volume_sync is not None:
            t = max(0.0, self.next_volume_sync - now)
        for c in self.containers():
            if c.restart_at is not None:
                d = max(0.0, c.restart_at - now)
                t = d if t is None else min(t, d)
            if c.waiting_reason == "CreateContainerConfigError" and c.state == "waiting":
                t = 1.0 if t is None else min(t, 1.0)
        return t

    def handle(self, ev):
        kind = ev[0]
        if kind == "update":
            pod = ev[1]
            self.pod = pod
            self.add_ephemeral(pod)
            if (pod.get("metadata") or {}).get("deletionTimestamp") and not self.terminating:
                self.terminating = True
        elif kind == "deleted":
            self.deleted_from_api = True
            self.terminating = True
        elif kind == "exit":
            _, name, gen, rc = ev
            c = self.find(name)
            if c is not None and c.gen == gen and c.state == "running":
                self.on_exit(c, rc)
        elif kind == "probe":
            _, name, gen, ptype, ok, msg = ev
            c = self.find(name)
            if c is None or c.gen != gen or c.state != "running":
                return
            self.on_probe(c, ptype, ok, msg)
        elif kind == "crash":
            self.crashed = True

    # -- sandbox and volumes --------------------------------------------------

    def setup_sandbox(self):
        """Pod IP, directories and volumes (the kubelet's sandbox + volume manager)."""
        if self.pod_ip is None:
            self.pod_ip = self.k.allocate_ip(self.node, self.uid)
            self.sandbox_ready = True
        os.makedirs(self.pod_dir, exist_ok=True)
        try:
            token = self.pod_token()
            self.volumes = materialise(self.pod, self.pod_dir, self.k.lookup_fn(self.ns), self.pod_ip,
                                       self.host_ip, token, self.k.ca_pem)
            self.sa_dir = service_account_dir(self.pod_dir, token, self.k.ca_pem, self.ns)
            apply_fs_group(self.pod, self.volumes)
        except VolumeError as e:
            if self.volume_error != str(e):
                self.volume_error = str(e)
                self.event("FailedMount", "MountVolume.SetUp failed: %s" % e, "Warning")
            return False
        except OSError as e:
            log("pod %s: volume setup: %s" % (self.key, e))
            return False
        self.volume_error = None
        return True

    def pod_token(self):
        """The token written into the pod's projected serviceAccountToken volumes. A controller
        pod gets a real one of its ServiceAccount, bound to the pod, from the TokenRequest API, as
        the kubelet's token manager does (pkg/kubelet/token/token_manager.go; expirationSeconds
        3607, refreshed at 80 % of its life, longer than any test here), so its requests are
        authorised as that ServiceAccount by the API server's RBAC. Other pods get the
        simulator's one bearer token (the Ray simulator's autoscaler relies on it)."""
        if not any(c.kind == "controller" for c in self.init + self.main):
            return self.k.sa_token
        if getattr(self, "bound_token", None):
            return self.bound_token
        sa = (self.pod.get("spec") or {}).get("serviceAccountName") or "default"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3607,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}}}
        try:
            out = self.k.client.create("serviceaccounts", self.ns, body, sub="token", name=sa)
        except (ApiError, OSError) as e:
            raise VolumeError('failed to fetch token: serviceaccounts "%s" token: %s' % (sa, e))
        self.bound_token = ((out or {}).get("status") or {}).get("token") or ""
        if not self.bound_token:
            raise VolumeError('failed to fetch token: serviceaccounts "%s": empty token' % sa)
        return self.bound_token

    # -- lifecycle ------------------------------------------------------------

    def advance(self):
        """Start whatever should run now: init containers in order, then the
        containers (https://kubernetes.io/docs/concepts/workloads/pods/init-containers/)."""
        now = time.monotonic()
        if self.init_failed:
            return
        while self.init_index < len(self.init):
            c = self.init[self.init_index]
            if c.completed or (c.sidecar and c.state == "running" and c.started):
                self.init_index += 1
                continue
            if c.state != "running" and (c.restart_at is None or c.restart_at <= now):
                if c.state == "terminated" and not self.will_restart(c, c.exit_code):
                    return
                self.start_container(c)
            return
        if not self.initialized:
            self.initialized = True
        for c in self.init:
            if c.sidecar and c.state != "running" and c.restart_at is not None and c.restart_at <= now:
                self.start_container(c)
        for c in self.main:
            if c.state == "running":
                continue
            if not self.main_started or (c.restart_at is not None and c.restart_at <= now) or \
                    (c.state == "waiting" and c.waiting_reason == "CreateContainerConfigError"):
                if c.state == "terminated" and c.restart_at is None:
                    continue
                self.start_container(c)
        self.main_started = True
        for c in self.ephemeral:
            # Once (gen 0), or again after CreateContainerConfigError (a Secret not there yet).
            if c.gen == 0 and c.state == "waiting" and not self.terminating:
                self.start_container(c)

    def will_restart(self, c, code):
        if c.ephemeral:
            return False
        if c.sidecar:
            return True
        policy = self.restart_policy
        if c.is_init and policy == "Always":
            policy = "OnFailure"  # init containers run to completion
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def container_env(self, c):
        services = self.k.services_in(self.ns)
        svc_env = service_env(services)
        env_list = build_env(self.pod, c.spec, self.k.lookup_fn(self.ns), self.pod_ip, self.host_ip, svc_env,
                             self.k.node_allocatable)
        env = {}
        for k, v in os.environ.items():
            if k.startswith("RW_") or k in ("LANG", "TZ", "PYTHONDONTWRITEBYTECODE"):
                env[k] = v
        env["PATH"] = POD_BIN + ":" + (SIM_BIN + ":" if c.kind == "ray" else "") + SYSTEM_PATH
        env["HOSTNAME"] = (self.pod.get("spec") or {}).get("hostname") or self.name
        env["HOME"] = IMAGE_WORKDIR.get(c.kind, "/root") if self.k.use_ns else os.path.join(self.pod_dir, "home")
        if not self.k.use_ns:
            os.makedirs(env["HOME"], exist_ok=True)
        env["LANG"] = env.get("LANG", "C.UTF-8")
        if self.k.api_host:
            env["KUBERNETES_SERVICE_HOST"] = self.k.api_host
            env["KUBERNETES_SERVICE_PORT"] = str(self.k.api_port)
        for k, v in env_list:
            env[k] = v
        # Stand-ins for the pod network namespace: every pod shares 127.0.0.1 here,
        # so processes bind and probe their own pod IP.
        env["RW_SIM_POD_IP"] = self.pod_ip
        env["RW_SIM_POD_NAME"] = self.name
        env["RW_SIM_POD_NAMESPACE"] = self.ns
        env["RW_SIM_NODE_NAME"] = self.node
        if c.kind == "agent":
            env["RAYWARDEN_PROBE_HOST"] = self.pod_ip
            # A pod spec that sets the listen address (raywarden's: the downward API's
            # status.podIP) keeps it; the stand-in only covers hand-written agent pods.
            env.setdefault("RAYWARDEN_LISTEN_HOST", self.pod_ip)
        if c.kind == "redis" and not self.k.use_ns:
            env["RW_SIM_REDIS_DIR"] = os.path.join(self.pod_dir, "rootfs", c.name, "data")
        env[MARK_CLUSTER] = self.k.state_dir
        env[MARK_CONTAINER] = "%s/%s/%d" % (self.uid, c.name, c.gen + 1)
        return env

    def container_argv(self, c, env):
        cmd, args = expand_command(c.spec, env)
        if c.kind == "agent":
            return [self.k.agent_bin()] + args
        if c.kind == "controller":
            return [self.k.controller_bin()] + controller_args(args, self.pod_ip)
        if c.kind == "redis":
            return (cmd + args) if (cmd or args) else ["redis-server"]
        if c.kind in ("ray", "python"):
            if cmd or args:
                return cmd + args
            return ["sleep", "infinity"]
        argv, _ = idle_argv(cmd, args)
        return argv

    def mounts_for(self, c):
        image_root = os.path.join(self.pod_dir, "rootfs", c.name)
        mounts = container_mounts(self.pod, c.spec, self.volumes, self.sa_dir, image_root, c.kind)
        return mounts

    def start_container(self, c):
        """Create and start one container instance (kuberuntime startContainer)."""
        c.restart_at = None
        try:
            env = self.container_env(c)
        except EnvError as e:
            if c.waiting_reason != "CreateContainerConfigError":
                self.event("Failed", "Error: %s" % e, "Warning", c.name)
            c.state = "waiting"
            c.waiting_reason = "CreateContainerConfigError"
            c.waiting_message = str(e)
            return
        argv = self.container_argv(c, env)
        mounts = self.mounts_for(c)
        workdir = c.spec.get("workingDir") or IMAGE_WORKDIR.get(c.kind)
        if self.k.use_ns:
            for src, dst, _ro in mounts:
                self.created_mountpoints.append(dst)
                self.k.mountpoints.ensure(dst, is_dir_source(src))
            if workdir:
                self.created_mountpoints.append(workdir)
                self.k.mountpoints.ensure(workdir, True)
            # The cluster's own hosts file (kept by the proxy) as the pod's /etc/hosts, so
            # that names resolve within this local cluster even when others run in parallel.
            hosts = self.k.private_hosts()
            if hosts:
                # First, so that volume mounts under /etc stay on top; kept in c.mounts so
                # exec probes and hooks get it too.
                mounts = [(os.path.dirname(hosts), "/etc", "overlay")] + mounts
            full = wrap_argv(argv, mounts, workdir, True, **self.agent_security(c))
            cwd = "/"
        else:
            argv = [rewrite_paths(a, mounts) for a in argv]
            for k in list(env):
                if k not in ("PATH",):
                    env[k] = rewrite_paths(env[k], mounts)
            full = argv
            cwd = rewrite_paths(workdir, mounts) if workdir else self.pod_dir
            if not os.path.isdir(cwd):
                cwd = self.pod_dir
        c.env = env
        c.mounts = mounts
        logdir = os.path.join(self.pod_dir, "logs", c.name)
        os.makedirs(logdir, exist_ok=True)
        restarts = c.restart_count + (1 if c.gen > 0 else 0)
        logpath = os.path.join(logdir, "%d.log" % restarts)
        if c.gen > 0:
            c.restart_count += 1
            c.last_terminated = c.terminated_dict()
        c.gen += 1
        c.container_id = "containerd://" + uuid.uuid4().hex + uuid.uuid4().hex
        c.kill_reason = None
        c.term_reason = None
        c.ready = False
        c.readiness_result = False
        try:
            with open(logpath, "ab") as lf:
                proc = subprocess.Popen(full, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=lf,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            c.state = "terminated"
            c.exit_code = 128
            c.term_reason = "StartError"
            c.kill_reason = str(e)
            c.started_at = None
            c.finished_at = time.time()
            self.event("Failed", "Error: failed to start container %r: %s" % (c.name, e), "Warning", c.name)
            self.after_exit(c)
            return
        self.link_log(c, logpath)
        c.proc = proc
        c.state = "running"
        c.started_at = time.time()
        c.started_mono = time.monotonic()
        c.log_path = logpath
        spec = c.spec
        c.started = not spec.get("startupProbe")
        c.readiness_result = not spec.get("readinessProbe")
        c.ready = c.started and c.readiness_result
        gen = c.gen
        self.k.register_proc(proc.pid)

        def waiter(p=proc, name=c.name, g=gen):
            rc = p.wait()
            self.k.unregister_proc(p.pid)
            self.post("exit", name, g, rc)

        threading.Thread(target=waiter, daemon=True, name="wait-%s-%s" % (self.name, c.name)).start()
        self.event("Started", "Started container %s" % c.name, "Normal", c.name)
        self.start_probes(c)

    def agent_security(self, c):
        """The agent's and the controller's securityContext, honoured where the simulator
        can: the process runs as runAsUser/runAsGroup (setpriv, no supplementary groups, no
        capabilities, no_new_privs) and with readOnlyRootFilesystem on a read-only root
        in its mount namespace, so its key file's mode and its writes are really
        exercised. Only for raywarden's own binaries: other containers run as the simulator
        does (root), since their stand-ins write to image paths a real image would own.
        Skipped (logged once) when the binary is not usable by that user."""
        if c.kind not in ("agent", "controller"):
            return {}
        out = {}
        if c.kind == "controller":
            # Its default Lease identity is <hostname>_<random>, the pod's name in a real pod.
            out["hostname"] = (self.pod.get("spec") or {}).get("hostname") or self.name
        sc = dict((self.pod.get("spec") or {}).get("securityContext") or {})
        sc.update(c.spec.get("securityContext") or {})
        uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
        if uid is None and sc.get("runAsNonRoot"):
            return out  # the real kubelet refuses a root image here; the sim has no image user
        if uid is not None:
            gid = gid if gid is not None else 0
            binary = self.k.controller_bin() if c.kind == "controller" else self.k.agent_bin()
            if usable_by(binary, int(uid), int(gid)):
                fs_group = sc.get("fsGroup")
                out["run_as"] = (int(uid), int(gid), None if fs_group is None else int(fs_group))
            elif not self.k.warned_agent_user:
                self.k.warned_agent_user = True
                log("%s is not executable by uid %s gid %s: it runs as root here" % (binary, uid, gid))
        if sc.get("readOnlyRootFilesystem"):
            out["read_only_root"] = True
        return out

    def link_log(self, c, logpath):
        """Expose the current log as <state>/podlogs/<ns>/<pod>/<container>.log, where the
        API server simulator's pods/log subresource reads it (kubectl logs)."""
        d = os.path.join(self.k.pod_log_dir, self.ns, self.name)
        try:
            os.makedirs(d, exist_ok=True)
            tmp = os.path.join(d, ".%s.log.tmp" % c.name)
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(logpath, tmp)
            os.replace(tmp, os.path.join(d, c.name + ".log"))
        except OSError as e:
            log("pod %s: log link: %s" % (self.key, e))

    def start_probes(self, c):
        c.probes = []
        gen = c.gen
        for ptype in ("startup", "readiness", "liveness"):
            probe = c.spec.get(ptype + "Probe")
            if not probe or (c.is_init and not c.sidecar) or c.ephemeral:
                continue

            def state(cc=c, g=gen):
                if cc.gen != g or cc.state != "running":
                    return None, False
                return cc.started_mono, cc.started

            def notify(kind, ok, msg, cc=c, g=gen):
                self.post("probe", cc.name, g, kind, ok, msg)

            if self.k.use_ns:
                wrap = (lambda argv, m=c.mounts, wd=None: wrap_argv(argv, m, wd, True))
            else:
                wrap = None
            env = c.env
            w = ProbeWorker(ptype, probe, c.spec, self.pod_ip, lambda e=env: e, state, notify, wrap=wrap)
            c.probes.append(w)
            w.start()

    def stop_probes(self, c):
        for w in c.probes:
            w.stop()
        c.probes = []

    def on_probe(self, c, ptype, ok, msg):
        if ptype == "startup":
            if ok:
                c.started = True
                c.ready = c.readiness_result
            else:
                self.event("Unhealthy", "Startup probe failed: %s" % msg, "Warning", c.name)
                self.kill_container(c, "Container %s failed startup probe, will be restarted" % c.name,
                                    self.probe_grace(c, "startupProbe"))
        elif ptype == "readiness":
            c.readiness_result = ok
            c.ready = ok and c.started
            if not ok:
                self.event("Unhealthy", "Readiness probe failed: %s" % msg, "Warning", c.name)
        elif ptype == "liveness":
            if not ok:
                self.event("Unhealthy", "Liveness probe failed: %s" % msg, "Warning", c.name)
                self.kill_container(c, "Container %s failed liveness probe, will be restarted" % c.name,
                                    self.probe_grace(c, "livenessProbe"))

    def probe_grace(self, c, which):
        p = c.spec.get(which) or {}
        if p.get("terminationGracePeriodSeconds") is not None:
            return float(p["terminationGracePeriodSeconds"])
        return float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    def hook_wrap(self, c):
        """How an exec hook or probe enters the container's mount namespace."""
        if self.k.use_ns:
            return lambda argv, m=c.mounts: wrap_argv(argv, m, None, True)
        return None

    def prestop_failed(self, c):
        # kuberuntime_container.go executePreStopHook: the error stays out of the
        # event "so that secrets won't leak from the server".
        self.event("FailedPreStopHook", "PreStopHook failed", "Warning", c.name)

    def kill_container(self, c, reason, grace):
        """preStop, SIGTERM, SIGKILL after what is left of the grace period
        (kuberuntime killContainer; kubelet_lifecycle.py)."""
        self.event("Killing", reason, "Normal", c.name)
        c.kill_reason = reason
        proc = c.proc
        marker = "%s=%s/%s/%d" % (MARK_CONTAINER, self.uid, c.name, c.gen)
        self.stop_probes(c)
        c.ready = False
        handler = prestop_handler(c.spec)
        env = dict(c.env)
        wrap = self.hook_wrap(c)

        def wait_exit(t, p=proc):
            try:
                p.wait(timeout=max(t, 0.0))
                return True
            except subprocess.TimeoutExpired:
                return False

        def killer():
            kill_after_prestop(handler, c.spec, self.pod_ip, env, grace, lambda: killpg(proc.pid, signal.SIGTERM),
                               lambda: killpg(proc.pid, signal.SIGKILL), wait_exit, wrap,
                               on_failed=lambda ps: self.prestop_failed(c))
            killpg(proc.pid, signal.SIGKILL)
            kill_marked(marker)

        threading.Thread(target=killer, daemon=True).start()

    def on_exit(self, c, rc):
        c.state = "terminated"
        c.exit_code = rc if rc >= 0 else 128 + (-rc)
        c.finished_at = time.time()
        c.term_reason = "Completed" if c.exit_code == 0 else "Error"
        c.ready = False
        self.stop_probes(c)
        if not self.terminating and not (c.is_init and c.exit_code == 0):
            tail = ""
            try:
                with open(c.log_path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - 400))
                    tail = f.read().decode("utf-8", "replace").replace("\n", " | ")
            except (OSError, TypeError):
                pass
            log("pod %s: container %s exited with code %d; log tail: %s" % (self.key, c.name, c.exit_code, tail))
        # The container's remaining processes die with it (its PID namespace).
        kill_marked("%s=%s/%s/%d" % (MARK_CONTAINER, self.uid, c.name, c.gen))
        kill_group_left(c.proc)
        if c.is_init and not c.sidecar and c.exit_code == 0:
            c.completed = True
            return
        self.after_exit(c)

    def after_exit(self, c):
        if self.terminating:
            return
        if not self.will_restart(c, c.exit_code):
            if c.is_init and not c.sidecar:
                self.init_failed = True
            return
        # Crash-loop back-off, after kuberuntime doBackOff + flowcontrol.Backoff:
        # the first restart is immediate, later ones wait base, 2*base, ... up to
        # max, measured from the exit; the delay resets once a container exits more
        # than 2*max after the last back-off update
        # (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-restarts).
        now = time.monotonic()
        if c.backoff_update is not None and now - c.backoff_update > 2 * self.k.backoff_max:
            c.backoff = 0.0
        if c.backoff <= 0:
            c.backoff = self.k.backoff_base
            c.backoff_update = now
            c.restart_at = now
        else:
            c.wait_delay = c.backoff
            c.restart_at = now + c.backoff
            c.backoff_update = now + c.backoff
            self.event("BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)" % (
                c.name, self.name, self.ns, self.uid), "Warning", c.name)
            c.backoff = min(c.backoff * 2, self.k.backoff_max)

    # -- status ---------------------------------------------------------------

    def pod_finished(self):
        return self.phase() in ("Succeeded", "Failed")

    def phase(self, final=False):
        states = []
        now = time.monotonic()
        for c in self.main:
            if c.state == "running":
                states.append(("running", None))
            elif c.state == "terminated":
                if not final and c.restart_at is not None:
                    states.append(("backoff", c.exit_code))
                elif not final and self.will_restart(c, c.exit_code) and not self.terminating:
                    states.append(("backoff", c.exit_code))
                else:
                    states.append(("terminated", c.exit_code))
            else:
                states.append(("waiting", None))
        del now
        if final:
            # Pods that are deleted reach a terminal phase: Succeeded when every
            # container exited 0, else Failed (pkg/kubelet/kubelet_pods.go getPhase with podIsTerminal).
            if self.init_failed or not self.initialized:
                return "Failed"
            if all(s == "terminated" and code == 0 for s, code in states) and states:
                return "Succeeded"
            return "Failed"
        return pod_phase(self.restart_policy, self.init_failed, self.initialized, states)

    def cond(self, ctype, ok, reason=None, message=None):
        status = "True" if ok else "False"
        prev = self.cond_times.get(ctype)
        if prev is None or prev[0] != status:
            self.cond_times[ctype] = (status, rfc3339())
        c = {"type": ctype, "status": status, "lastProbeTime": None,
             "lastTransitionTime": self.cond_times[ctype][1]}
        if reason and not ok:
            c["reason"] = reason
        if message and not ok:
            c["message"] = message
        return c

    def compute_status(self, api_status, final=False):
        """The pod status the kubelet would report
        (pkg/kubelet/kubelet_pods.go generateAPIPodStatus, pkg/kubelet/status/generate.go)."""
        phase = self.phase(final)
        spec = self.pod.get("spec") or {}
        conds = []
        if self.sandbox_ready:
            conds.append(self.cond("PodReadyToStartContainers", not final))
        pending_init = [c.name for c in self.init if not (c.completed or (c.sidecar and c.started and c.state == "running"))]
        init_ok = self.initialized or not pending_init
        if phase == "Succeeded" and self.init:
            init_ok = True
        conds.append(self.cond("Initialized", init_ok, "ContainersNotInitialized",
                               "containers with incomplete status: [%s]" % " ".join(pending_init)))
        unready = [c.name for c in self.main + [s for s in self.init if s.sidecar]
                   if not (c.ready and c.state == "running")]
        if phase == "Succeeded":
            cr = self.cond("ContainersReady", False, "PodCompleted")
        else:
            cr = self.cond("ContainersReady", not unready, "ContainersNotReady",
                           "containers with unready status: [%s]" % " ".join(unready))
        conds.append(cr)
        # Ready = ContainersReady and every readiness gate condition True
        # (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-readiness-gate).
        api_conds = {c.get("type"): c for c in (api_status.get("conditions") or [])}
        ready_ok = cr["status"] == "True"
        reason, message = cr.get("reason"), cr.get("message")
        if phase == "Succeeded":
            reason = "PodCompleted"
        if ready_ok:
            missing = []
            bad = []
            for g in spec.get("readinessGates") or []:
                t = g.get("conditionType")
                ac = api_conds.get(t)
                if ac is None:
                    missing.append(t)
                elif ac.get("status") != "True":
                    bad.append((t, ac.get("status")))
            if missing or bad:
                ready_ok = False
                reason = "ReadinessGatesNotReady"
                if missing:
                    message = 'corresponding condition of pod readiness gate "%s" does not exist.' % missing[0]
                else:
                    message = 'the status of pod readiness gate "%s" is not "True", but %s' % bad[0]
        conds.append(self.cond("Ready", ready_ok, reason, message))
        ours = {c["type"] for c in conds}
        merged = []
        if "PodScheduled" not in api_conds:
            merged.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": rfc3339(self.start_time)})
        for c in api_status.get("conditions") or []:
            if c.get("type") not in ours:
                merged.append(c)
        merged.extend(conds)
        st = dict(api_status)
        st["phase"] = phase
        st["conditions"] = merged
        st["hostIP"] = self.host_ip
        st["hostIPs"] = [{"ip": self.host_ip}]
        if self.pod_ip:
            st["podIP"] = self.k.api_addr(self.pod_ip)
            st["podIPs"] = [{"ip": st["podIP"]}]
        st["startTime"] = rfc3339(self.start_time)
        st["qosClass"] = qos_class(self.pod)
        if self.init:
            ist = []
            for c in self.init:
                s = c.status()
                if c.state == "waiting" and c.waiting_reason == "ContainerCreating" and self.sandbox_ready:
                    s["state"] = {"waiting": {"reason": "PodInitializing"}}
                ist.append(s)
            st["initContainerStatuses"] = ist
        mst = []
        for c in self.main:
            s = c.status()
            if c.state == "waiting" and c.waiting_reason == "ContainerCreating" and not self.initialized and self.init:
                s["state"] = {"waiting": {"reason": "PodInitializing"}}
            if c.state == "terminated" and c.restart_at is not None and not final:
                s["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                          "message": "back-off %gs restarting failed container=%s pod=%s_%s(%s)" % (
                                              c.wait_delay, c.name, self.name, self.ns, self.uid)}}
                s["lastState"] = {"terminated": c.terminated_dict()}
            mst.append(s)
        st["containerStatuses"] = mst
        if self.ephemeral:
            st["ephemeralContainerStatuses"] = [c.status() for c in self.ephemeral]
        if phase in ("Failed",) and self.init_failed:
            st["reason"] = None
        st.pop("reason", None)
        return st

    def sync_status(self, final=False):
        """Write the status through /status when it changed, re-reading on 409
        (pkg/kubelet/status/status_manager.go syncPod)."""
        if self.crashed:
            return
        base = self.k.cached_pod(self.ns, self.name) or self.pod
        if (base.get("metadata") or {}).get("uid") not in (None, self.uid):
            return
        for attempt in range(6):
            st = self.compute_status(base.get("status") or {}, final)
            cmp = json.dumps(st, sort_keys=True)
            if cmp == self.last_status and attempt == 0:
                return
            obj = copy.deepcopy(base)
            obj["status"] = st
            try:
                res = self.k.client.replace("pods", self.ns, self.name, obj, sub="status")
                self.last_status = cmp
                self.k.note_written(res)
                return
            except ApiError as e:
                if e.code == 409:
                    try:
                        base = self.k.client.get("pods", self.ns, self.name)
                    except ApiError as e2:
                        if e2.code == 404:
                            return
                        raise
                    if (base.get("metadata") or {}).get("uid") != self.uid:
                        return
                    continue
                if e.code == 404:
                    return
                log("pod %s: status write failed: %s" % (self.key, e))
                return
            except OSError as e:
                log("pod %s: status write failed: %s" % (self.key, e))
                time.sleep(0.2)
        log("pod %s: status write gave up after conflicts" % self.key)

    # -- termination ------------------------------------------------------------

    def grace_period(self):
        md = self.pod.get("metadata") or {}
        g = md.get("deletionGracePeriodSeconds")
        if g is None:
            g = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        if self.deleted_from_api and not md.get("deletionTimestamp"):
            g = min(float(g), 2.0)
        return float(g)

    def terminate(self):
        """Graceful deletion: SIGTERM every container, SIGKILL what is left after the
        grace period, report the terminal status, then delete the pod object with
        grace 0 (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination;
        pkg/kubelet/status/status_manager.go canBeDeleted + Delete with GracePeriodSeconds=0)."""
        grace = self.grace_period()
        running = [c for c in self.containers() if c.state == "running"]
        for c in self.containers():
            c.restart_at = None
            for w in c.probes:
                if w.kind != "readiness":
                    w.stop()
        # Every container is stopped in parallel with the whole grace period
        # (kuberuntime_container.go killContainersWithSyncResult): its preStop
        # hook first when it has one and the grace is > 0, then SIGTERM with the
        # grace left (at least MIN_GRACE_S), then SIGKILL. Readiness probes keep
        # running meanwhile, as the kubelet's do for terminating pods.
        now = t_term = time.monotonic()
        exited = set()
        stops = {}  # name -> [phase, deadline, PreStop or None, container]
        for c in running:
            self.event("Killing", "Stopping container %s" % c.name, "Normal", c.name)
            handler = prestop_handler(c.spec)
            if handler is not None and grace > 0:
                ps = PreStop(handler, c.spec, self.pod_ip, dict(c.env), grace, self.hook_wrap(c),
                             on_done=lambda p, name=c.name, g=c.gen: self.post("prestop", name, g))
                stops[c.name] = ["prestop", now + grace, ps.start(), c]
            else:
                killpg(c.proc.pid, signal.SIGTERM)
                stops[c.name] = ["term", now + max(grace, MIN_GRACE_S), None, c]
        for _ in range(100000):
            if not any(c.state == "running" for c in self.containers()):
                break
            now = time.monotonic()
            for name, st in stops.items():
                phase, deadline, ps, c = st
                if c.state != "running":
                    if name not in exited:
                        exited.add(name)
                        log("pod %s: container %s exited %.2fs into termination (%s)" % (
                            self.key, name, now - t_term, phase))
                    continue
                if phase == "prestop" and (ps.finished.is_set() or now >= deadline):
                    if ps.finished.is_set() and not ps.ok:
                        log("pod %s: preStop hook of %s failed: %s" % (self.key, name, ps.msg))
                        self.prestop_failed(c)
                    elif not ps.finished.is_set():
                        log("pod %s: preStop hook of %s not completed in grace period" % (self.key, name))
                    killpg(c.proc.pid, signal.SIGTERM)
                    log("pod %s: preStop of %s done after %.2fs; SIGTERM" % (self.key, name, now - t_term))
                    st[0], st[1] = "term", now + ps.remaining_grace(now)
                elif phase == "term" and now >= deadline:
                    killpg(c.proc.pid, signal.SIGKILL)
                    kill_marked("%s=%s/%s/%d" % (MARK_CONTAINER, self.uid, c.name, c.gen))
                    st[0], st[1] = "killed", now + 10.0
            live = [st[1] for st in stops.values() if st[3].state == "running" and st[0] != "killed"]
            if not live and all(st[0] == "killed" and now >= st[1] for st in stops.values()
                                if st[3].state == "running"):
                break
            wake = min(live) if live else now + 0.5
            try:
                ev = self.q.get(timeout=min(0.5, max(0.01, wake - now)))
                if ev[0] != "prestop":
                    self.handle(ev)
            except queue.Empty:
                pass
            if self.crashed:
                for st in stops.values():
                    if st[2] is not None:
                        st[2].cancel()
                return
            self.sync_status()
        for st in stops.values():
            if st[2] is not None:
                st[2].cancel()
        for c in self.containers():
            self.stop_probes(c)
        self._kill_everything()
        if not self.deleted_from_api:
            self.sync_status(final=True)
            try:
                self.k.client.delete("pods", self.ns, self.name, grace=0, uid=self.uid)
            except ApiError as e:
                if e.code not in (404, 409):
                    log("pod %s: final delete failed: %s" % (self.key, e))
            except OSError as e:
                log("pod %s: final delete failed: %s" % (self.key, e))
        self.teardown()

    def _kill_everything(self):
        for c in self.containers():
            if c.proc is not None and c.proc.poll() is None:
                killpg(c.proc.pid, signal.SIGKILL)
            kill_group_left(c.proc)
        kill_marked("%s=%s/" % (MARK_CONTAINER, self.uid))

    def crash(self):
        """Node failure: every process dies at once, nothing is reported."""
        self.crashed = True
        for c in self.containers():
            for w in c.probes:
                w.stop()
        self._kill_everything()
        self.post("crash")

    def teardown(self):
        for c in self.containers():
            if c.proc is not None:
                try:
                    c.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for p in self.created_mountpoints:
            self.k.mountpoints.release(p)
        self.created_mountpoints = []
        if self.pod_ip:
            self.k.release_ip(self.node, self.pod_ip)
        remove_tree(os.path.join("/dev/shm/kubesim", self.uid))
        remove_tree(self.pod_dir)
        remove_tree(os.path.join(self.k.pod_log_dir, self.ns, self.name))
        self.k.worker_done(self)


# ---------------------------------------------------------------------------------
# Events (core/v1), recorded asynchronously like client-go's event broadcaster.
# ---------------------------------------------------------------------------------


class EventRecorder:
    def __init__(self, client, component="kubelet"):
        self.client = client
        self.component = component
        self.q = queue.Queue(maxsize=2000)
        self.t = threading.Thread(target=self._run, daemon=True, name="events")
        self.t.start()

    def emit(self, obj, reason, message, etype="Normal", field=None, host=None):
        md = obj.get("metadata") or {}
        try:
            self.q.put_nowait((md.get("namespace") or "default", {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": (md.get("name") or "obj") + ".", "namespace": md.get("namespace") or "default"},
                "involvedObject": {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", "Pod"),
                                   "name": md.get("name"), "namespace": md.get("namespace"), "uid": md.get("uid"),
                                   **({"fieldPath": "spec.containers{%s}" % field} if field else {})},
                "reason": reason, "message": message, "type": etype,
                "source": {"component": self.component, **({"host": host} if host else {})},
                "firstTimestamp": rfc3339(), "lastTimestamp": rfc3339(), "count": 1,
                "reportingComponent": self.component, "reportingInstance": host or self.component,
            }))
        except queue.Full:
            pass

    def _run(self):
        while True:
            ns, ev = self.q.get()
            if ns is None:
                return
            try:
                self.client.create("events", ns, ev)
            except (ApiError, OSError):
                pass

    def stop(self):
        try:
            self.q.put_nowait((None, None))
        except queue.Full:
            pass


# ---------------------------------------------------------------------------------
# The kubelet (for N nodes) plus a trivial scheduler.
# ---------------------------------------------------------------------------------


class Kubelet:
    def __init__(self, state_dir, nodes=1, node_prefix="sim-node-", backoff_base=10.0, backoff_max=300.0,
                 client=None, use_ns=None, heartbeat=10.0, build_dir=None, node_resources_args=None,
                 scheduler=True, pod_network=False):
        self.state_dir = os.path.abspath(state_dir)
        # With a real control plane the real scheduler binds pods (scheduler=False) and pods
        # are reported under their pod-network address (pod_network=True: realcp.api_ip).
        self.scheduler = scheduler
        self.node_servers = []
        self.api_addr = realcp.api_ip if pod_network else (lambda ip: ip)
        self.client = client or KubeClient.from_state_dir(self.state_dir, user_agent="kubesim-kubelet")
        self.node_names = ["%s%d" % (node_prefix, i + 1) for i in range(nodes)]
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.heartbeat = heartbeat
        self.build_dir = build_dir
        self.kdir = os.path.join(self.state_dir, "kubelet")
        self.pods_dir = os.path.join(self.kdir, "pods")
        self.pod_log_dir = os.path.join(self.state_dir, "podlogs")
        os.makedirs(self.pods_dir, exist_ok=True)
        self.mountpoints = MountPoints(os.path.join(self.kdir, "mountpoints.json"))
        self.use_ns = mount_namespace_available() if use_ns is None else use_ns
        # Each node's pod CIDR is a /24 of 127.10.0.0/16 claimed host-wide, so that
        # parallel local clusters never share pod IPs.
        self.octets = kubelet_ipam.claim("pods", self.state_dir, nodes)
        self.ipam = {n: IPAllocator(node_pod_cidr(self.octets[i])) for i, n in enumerate(self.node_names)}
        self.workers = {}
        self.lock = threading.RLock()
        self.failed_nodes = set()
        self.procs = set()
        self.stopping = threading.Event()
        self.node_allocatable = node_resources(**(node_resources_args or {}))
        self.sa_token = self.client.token or ""
        ca = os.path.join(self.state_dir, "ca.crt")
        self.ca_pem = open(ca).read() if os.path.exists(ca) else ""
        self.api_host = self.client.host
        self.api_port = self.client.port
        self.events = EventRecorder(self.client)
        self.sched_q = queue.Queue()
        self.sched_rr = 0
        self.sched_events = EventRecorder(self.client, component="default-scheduler")
        self.sched_unschedulable = {}  # (ns, name) -> failed attempts
        self.sched_assumed = {}  # uid -> node, bound but not yet seen bound in the informer
        self.pods = None
        self.services = None
        self.secrets = None
        self.configmaps = None
        self.control = None
        # Secret/configMap volume refresh period: the real kubelet's pod sync is 60 s
        # (--sync-frequency); shorter here so that tests see an update within seconds.
        self.volume_sync_s = float(os.environ.get("RW_SIM_VOLUME_SYNC_S", "2"))
        self.warned_agent_user = False

    # -- helpers used by workers -------------------------------------------------

    def node_index(self, node):
        return self.octets[self.node_names.index(node)]

    def agent_bin(self):
        b = self.build_dir or os.environ.get("RW_BUILD_DIR") or os.path.join(REPO_ROOT, "build")
        return os.path.join(b, "bin", "raywarden-agent")

    def controller_bin(self):
        return os.path.join(os.path.dirname(self.agent_bin()), "raywarden-controller")

    def allocate_ip(self, node, uid):
        return self.ipam[node].allocate()

    def release_ip(self, node, ip):
        self.ipam[node].release(ip)

    def private_hosts(self):
        """<state>/etc/hosts, the cluster's own hosts file that the proxy keeps up to date
        (rewritten in place), laid over each container's /etc. Created here from the
        host's entries when the proxy has not written it yet, so that every container
        gets it whatever the start order; None when it cannot be made."""
        path = os.path.join(self.state_dir, "etc", "hosts")
        if not os.path.isfile(path):
            try:
                from .proxy import strip_blocks

                with open("/etc/hosts") as f:
                    base = strip_blocks(f.read())
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(fd, "w") as f:
                    f.write(base)
            except FileExistsError:
                pass
            except OSError as e:
                log("private hosts file %s: %s" % (path, e))
                return None
        return path

    def register_proc(self, pid):
        with self.lock:
            self.procs.add(pid)

    def unregister_proc(self, pid):
        with self.lock:
            self.procs.discard(pid)

    def services_in(self, ns):
        """The Services whose variables a pod in ns gets: its namespace's, and the master
        Service default/kubernetes in every namespace (pkg/kubelet/kubelet_pods.go
        getServiceEnvVarMap), so KUBERNETES_SERVICE_HOST is the cluster IP the proxy serves."""
        if self.services is None:
            return []
        out = []
        for s in self.services.items():
            md = s.get("metadata") or {}
            if md.get("namespace") == ns or (md.get("namespace") == "default" and md.get("name") == "kubernetes"):
                out.append(s)
        return out

    def lookup_fn(self, ns):
        def lookup(kind, name):
            if not name:
                return None
            return self.client.get_or_none(kind, ns, name)

        return lookup

    def cached_lookup_fn(self, ns):
        """lookup(kind, name) from the kubelet's Secret/ConfigMap caches (None when absent)."""
        def lookup(kind, name):
            inf = self.secrets if kind == "secrets" else self.configmaps if kind == "configmaps" else None
            if not name or inf is None:
                return None
            return inf.get(ns, name)

        return lookup

    def cached_pod(self, ns, name):
        return self.pods.get(ns, name) if self.pods else None

    def note_written(self, obj):
        pass

    def worker_done(self, w):
        with self.lock:
            if self.workers.get(w.uid) is w:
                del self.workers[w.uid]

    # -- nodes ---------------------------------------------------------------------

    def node_object(self, name, ready=True):
        i = self.node_index(name)
        now = rfc3339()

        def c(t, status, reason, msg):
            return {"type": t, "status": status, "reason": reason, "message": msg,
                    "lastHeartbeatTime": now, "lastTransitionTime": now}

        if ready:
            ready_c = c("Ready", "True", "KubeletReady", "kubelet is posting ready status")
        else:
            # What the node lifecycle controller writes when the kubelet stops posting
            # (pkg/controller/nodelifecycle/node_lifecycle_controller.go tryUpdateNodeHealth).
            ready_c = c("Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                                                  "beta.kubernetes.io/arch": "amd64"}},
            "spec": {"podCIDR": self.api_addr(node_pod_cidr(i)), "podCIDRs": [self.api_addr(node_pod_cidr(i))],
                     **({} if ready else {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule",
                                                       "timeAdded": now}]})},
            "status": {
                "capacity": dict(self.node_allocatable), "allocatable": dict(self.node_allocatable),
                "conditions": [c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                               c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                               c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                               ready_c],
                "addresses": [{"type": "InternalIP", "address": node_ip(i)}, {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"kubeletVersion": "v1.31.0-kubesim", "kubeProxyVersion": "v1.31.0-kubesim",
                             "operatingSystem": "linux", "architecture": "amd64", "osImage": "kubesim",
                             "kernelVersion": os.uname().release, "containerRuntimeVersion": "kubesim://1.0",
                             "machineID": "", "systemUUID": "", "bootID": ""},
            },
        }

    def register_nodes(self):
        """Register each Node and publish its status
        (https://kubernetes.io/docs/concepts/architecture/nodes/#self-registration-of-nodes)."""
        for n in self.node_names:
            self.post_node_status(n, n not in self.failed_nodes, create=True)

    def post_node_status(self, name, ready, create=False):
        desired = self.node_object(name, ready)
        try:
            cur = self.client.get_or_none("nodes", None, name)
            if cur is None:
                if not create:
                    return
                cur = self.client.create("nodes", None, desired)
            spec = dict(cur.get("spec") or {})
            spec["podCIDR"] = desired["spec"]["podCIDR"]
            spec["podCIDRs"] = desired["spec"]["podCIDRs"]
            taints = [t for t in spec.get("taints") or [] if t.get("key") != "node.kubernetes.io/unreachable"]
            taints += desired["spec"].get("taints", [])
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            if spec != (cur.get("spec") or {}):
                cur["spec"] = spec
                try:
                    cur = self.client.replace("nodes", None, name, cur)
                except ApiError:
                    cur = self.client.get("nodes", None, name)

            def mutate(obj):
                obj["status"] = desired["status"]

            self.client.update_status("nodes", None, name, mutate)
        except (ApiError, OSError) as e:
            log("node %s: status update failed: %s" % (name, e))

    def heartbeat_loop(self):
        # nodeStatusUpdateFrequency (10 s by default).
        while not self.stopping.wait(self.heartbeat):
            for n in self.node_names:
                if n not in self.failed_nodes:
                    self.post_node_status(n, True)

    # -- scheduler -----------------------------------------------------------------

    def schedulable(self, pod):
        spec = pod.get("spec") or {}
        md = pod.get("metadata") or {}
        if spec.get("nodeName") or md.get("deletionTimestamp"):
            return False
        if (spec.get("schedulerName") or "default-scheduler") != "default-scheduler":
            return False
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return False
        return True

    def pick_node(self, pod):
        """The scheduling cycle (kubelet_sched.py): filter this process's Nodes as the API server
        has them (labels, taints, spec.unschedulable, allocatable), then the least requested
        feasible node, ties broken round robin. Returns (node, None) or (None, FitError message)."""
        try:
            api_nodes = {n["metadata"]["name"]: n for n in self.client.list("nodes").get("items") or []}
        except (ApiError, OSError) as e:
            log("scheduler: listing nodes: %s" % e)
            return None, None
        nodes = []
        for n in self.node_names:
            if n not in api_nodes:
                continue
            if n in self.failed_nodes:
                # Failing, its unreachable taint maybe not posted yet (the node lifecycle
                # controller's taint; see post_node_status).
                api_nodes[n] = copy.deepcopy(api_nodes[n])
                spec = api_nodes[n].setdefault("spec", {})
                if not any(t.get("key") == "node.kubernetes.io/unreachable" for t in spec.get("taints") or []):
                    spec["taints"] = (spec.get("taints") or []) + [
                        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
            nodes.append(api_nodes[n])
        uid = (pod.get("metadata") or {}).get("uid")
        used = {n["metadata"]["name"]: {} for n in nodes}
        npods = {n["metadata"]["name"]: 0 for n in nodes}
        for p in self.pods.items():
            pmd = p.get("metadata") or {}
            node = (p.get("spec") or {}).get("nodeName") or self.sched_assumed.get(pmd.get("uid"))
            if node not in used or pmd.get("uid") == uid:
                continue
            if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            npods[node] += 1
            for k, v in kubelet_sched.pod_requests(p).items():
                used[node][k] = used[node].get(k, 0) + v
        preqs = kubelet_sched.pod_requests(pod)
        results, feasible = [], []
        for n in nodes:
            name = n["metadata"]["name"]
            reasons, unresolvable = kubelet_sched.filter_node(pod, n, preqs, used[name], npods[name])
            results.append((reasons, unresolvable))
            if not reasons:
                feasible.append(name)
        if not feasible:
            return None, kubelet_sched.fit_error(pod, results)
        self.sched_rr += 1
        order = feasible[self.sched_rr % len(feasible):] + feasible[:self.sched_rr % len(feasible)]

        def load(name):
            alloc = kubelet_sched.resource_list(api_nodes[name]["status"].get("allocatable"))
            return max(used[name].get(k, 0) / float(alloc[k]) for k in ("cpu", "memory") if alloc.get(k)) \
                if any(alloc.get(k) for k in ("cpu", "memory")) else 0.0, npods[name]
        return min(order, key=load), None

    def requeue_unschedulable(self):
        """Cluster events that may make room (an assigned pod deleted or finished) move the
        unschedulable pods back to the active queue (scheduling_queue.go
        MoveAllToActiveOrBackoffQueue)."""
        with self.lock:
            keys = list(self.sched_unschedulable)
        for k in keys:
            self.sched_q.put(k)

    def scheduler_loop(self):
        """Bind pending pods through the pods/binding subresource
        (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#create-binding-of-a-pod).
        A pod that fits nowhere is retried with the scheduler's back-off (podInitialBackoffSeconds
        1, podMaxBackoffSeconds 10) and at once when an assigned pod goes away."""
        while not self.stopping.is_set():
            try:
                ns, name = self.sched_q.get(timeout=1.0)
            except queue.Empty:
                continue
            if ns is None:
                return
            pod = self.pods.get(ns, name)
            if pod is None or not self.schedulable(pod):
                with self.lock:
                    self.sched_unschedulable.pop((ns, name), None)
                continue
            node, why = self.pick_node(pod)
            if node is None and why is None:
                t = threading.Timer(1.0, lambda a=ns, b=name: self.sched_q.put((a, b)))
                t.daemon = True
                t.start()
                continue
            if node is None:
                with self.lock:
                    tries = self.sched_unschedulable.get((ns, name), 0) + 1
                    self.sched_unschedulable[(ns, name)] = tries
                self.mark_unschedulable(pod, why)
                delay = min(10.0, 2.0 ** (tries - 1))
                t = threading.Timer(delay, lambda a=ns, b=name: self.sched_q.put((a, b)))
                t.daemon = True
                t.start()
                continue
            with self.lock:
                self.sched_unschedulable.pop((ns, name), None)
            binding = {"apiVersion": "v1", "kind": "Binding",
                       "metadata": {"name": name, "namespace": ns, "uid": pod["metadata"].get("uid")},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
            try:
                self.client.create("pods", ns, binding, sub="binding", name=name)
            except ApiError as e:
                if e.code in (404, 405) and e.reason != "NotFound" or e.code == 405:
                    try:
                        self.client.patch("pods", ns, name, {"spec": {"nodeName": node}})
                    except ApiError as e2:
                        log("bind %s/%s: %s" % (ns, name, e2))
                        continue
                elif e.code == 409:
                    continue
                else:
                    log("bind %s/%s: %s" % (ns, name, e))
                    continue
            except OSError as e:
                log("bind %s/%s: %s" % (ns, name, e))
                continue
            with self.lock:
                uid = pod["metadata"].get("uid")
                self.sched_assumed[uid] = node  # the scheduler cache's assumed pod
            self.sched_events.emit(pod, "Scheduled", "Successfully assigned %s/%s to %s" % (ns, name, node),
                                   "Normal")

            def mutate(obj, node=node):
                conds = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
                if (obj.get("spec") or {}).get("nodeName") != node:
                    return False
                if any(c.get("type") == "PodScheduled" and c.get("status") == "True"
                       for c in (obj.get("status") or {}).get("conditions") or []):
                    return False
                conds.insert(0, {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                 "lastTransitionTime": rfc3339()})
                obj.setdefault("status", {})["conditions"] = conds
                obj["status"].setdefault("phase", "Pending")

            try:
                self.client.update_status("pods", ns, name, mutate)
            except (ApiError, OSError):
                pass

    def mark_unschedulable(self, pod, message):
        """schedule_one.go handleSchedulingFailure: a FailedScheduling Warning and the
        PodScheduled=False condition, reason Unschedulable, with the FitError message."""
        md = pod["metadata"]
        self.sched_events.emit(pod, "FailedScheduling", message, "Warning")

        def mutate(obj):
            conds = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
            old = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"]
            if old and old[0].get("reason") == "Unschedulable" and old[0].get("message") == message:
                return False
            conds.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                          "message": message, "lastProbeTime": None,
                          "lastTransitionTime": (old[0].get("lastTransitionTime") if old and
                                                 old[0].get("status") == "False" else None) or rfc3339()})
            obj.setdefault("status", {})["conditions"] = conds
            obj["status"]["phase"] = "Pending"

        try:
            self.client.update_status("pods", md.get("namespace"), md["name"], mutate)
        except (ApiError, OSError):
            pass

    # -- pod events ----------------------------------------------------------------

    def on_pod(self, etype, pod, old):
        md = pod.get("metadata") or {}
        uid = md.get("uid") or md.get("name")
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        if node and (etype == "DELETED" or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")):
            self.requeue_unschedulable()  # its requests are free again
        if node or etype == "DELETED":
            self.sched_assumed.pop(md.get("uid"), None)
        with self.lock:
            w = self.workers.get(uid)
            if etype == "DELETED":
                if w is not None:
                    w.post("deleted")
                return
            if not node:
                if self.scheduler and self.schedulable(pod):
                    self.sched_q.put((md.get("namespace", "default"), md["name"]))
                return
            if node not in self.node_names:
                return
            if w is not None:
                w.update(pod)
                return
            if node in self.failed_nodes or self.stopping.is_set():
                return
            phase = (pod.get("status") or {}).get("phase")
            if md.get("deletionTimestamp"):
                # Nothing runs for it here: finish the deletion at once.
                threading.Thread(target=self._finish_delete, args=(pod,), daemon=True).start()
                return
            if phase in ("Succeeded", "Failed"):
                return
            w = PodWorker(self, pod, node, recovered=bool(getattr(self, "_recovering", {}).get(uid)))
            self.workers[uid] = w
            w.start()

    def _finish_delete(self, pod):
        md = pod["metadata"]
        try:
            self.client.delete("pods", md.get("namespace"), md["name"], grace=0, uid=md.get("uid"))
        except (ApiError, OSError):
            pass

    # -- failures ------------------------------------------------------------------

    def fail_node(self, node):
        """Node failure: SIGKILL every process of every pod on the node, stop
        reporting, and mark the node NotReady and its pods not Ready the way the node
        lifecycle controller does (MarkPodsNotReady; real clusters wait
        node-monitor-grace-period, 40 s, before doing so)."""
        if node not in self.node_names:
            raise KeyError(node)
        with self.lock:
            self.failed_nodes.add(node)
            victims = [w for w in self.workers.values() if w.node == node]
            for w in victims:
                del self.workers[w.uid]
        for w in victims:
            w.crash()
        for w in victims:
            w.done.wait(5)
            for p in w.created_mountpoints:
                self.mountpoints.release(p)
            if w.pod_ip:
                self.release_ip(node, w.pod_ip)
        self.post_node_status(node, False)
        for w in victims:
            def mutate(obj):
                changed = False
                for c in (obj.get("status") or {}).get("conditions") or []:
                    if c.get("type") == "Ready" and c.get("status") != "False":
                        c["status"] = "False"
                        c["reason"] = "NodeNotReady"
                        c["lastTransitionTime"] = rfc3339()
                        changed = True
                return changed

            try:
                self.client.update_status("pods", w.ns, w.name, mutate)
            except (ApiError, OSError):
                pass
        return [w.key for w in victims]

    def recover_node(self, node):
        """The node's kubelet comes back: report Ready and restart its pods."""
        if node not in self.node_names:
            raise KeyError(node)
        with self.lock:
            self.failed_nodes.discard(node)
        self.post_node_status(node, True)
        self._recovering = {}
        for pod in self.pods.items():
            if (pod.get("spec") or {}).get("nodeName") == node:
                self._recovering[pod["metadata"].get("uid")] = True
                self.on_pod("MODIFIED", pod, None)
        self._recovering = {}

    def fail_pod(self, ns, name, container=None):
        """SIGKILL a pod's (or one container's) processes without warning; the kubelet
        then sees the exit and applies the restart policy."""
        with self.lock:
            ws = [w for w in self.workers.values() if w.ns == ns and w.name == name]
        if not ws:
            raise KeyError(ns + "/" + name)
        n = 0
        for w in ws:
            for c in w.containers():
                if container and c.name != container:
                    continue
                if c.proc is not None and c.state == "running":
                    killpg(c.proc.pid, signal.SIGKILL)
                    n += kill_marked("%s=%s/%s/%d" % (MARK_CONTAINER, w.uid, c.name, c.gen)) + 1
        return n

    # -- control endpoint ----------------------------------------------------------

    def describe(self):
        with self.lock:
            ws = list(self.workers.values())
        out = []
        for w in ws:
            out.append({"namespace": w.ns, "name": w.name, "uid": w.uid, "node": w.node, "podIP": w.pod_ip,
                        "containers": [{"name": c.name, "kind": c.kind, "state": c.state,
                                        "pid": c.proc.pid if c.proc else None, "restartCount": c.restart_count,
                                        "ready": c.ready, "started": c.started} for c in w.containers()]})
        return {"nodes": self.node_names, "failedNodes": sorted(self.failed_nodes), "pods": out,
                "mountNamespaces": self.use_ns}

    def log_path(self, ns, name, container, previous=False):
        """The file of a container's current (or previous) log; KeyError when not on this kubelet."""
        with self.lock:
            ws = [w for w in self.workers.values() if w.ns == ns and w.name == name]
        c = ws[0].find(container) if ws else None
        if c is None:
            raise KeyError("%s/%s/%s" % (ns, name, container))
        return os.path.join(ws[0].pod_dir, "logs", c.name, "%d.log" % (c.restart_count - (1 if previous else 0)))

    def container_running(self, ns, name, container):
        with self.lock:
            ws = [w for w in self.workers.values() if w.ns == ns and w.name == name]
        c = ws[0].find(container) if ws else None
        return bool(c is not None and c.proc is not None and c.proc.poll() is None)

    def start_node_servers(self):
        """With a real control plane: each Node's kubelet API on its InternalIP:10250
        (kubelet_server.py), where the API server fetches pod logs."""
        for n in self.node_names:
            ip = node_ip(self.node_index(n))
            certs = realcp.kubelet_serving_cert(self.state_dir, n, [ip])
            if certs is None:
                return
            try:
                self.node_servers.append(kubelet_server.KubeletServer(self, ip, *certs).start())
            except OSError as e:
                log("node %s: kubelet API on %s:%d: %s" % (n, ip, kubelet_server.PORT, e))

    def logs(self, ns, name, container=None, previous=False):
        with self.lock:
            ws = [w for w in self.workers.values() if w.ns == ns and w.name == name]
        if not ws:
            raise KeyError(ns + "/" + name)
        w = ws[0]
        c = w.find(container) if container else (w.main[0] if w.main else None)
        if c is None:
            raise KeyError(container)
        idx = c.restart_count - (1 if previous else 0)
        path = os.path.join(w.pod_dir, "logs", c.name, "%d.log" % idx)
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def start_control(self, port=0):
        kubelet = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                try:
                    if u.path == "/healthz":
                        return self._send(200, b"ok", "text/plain")
                    if u.path == "/pods":
                        return self._send(200, kubelet.describe())
                    if u.path == "/logs":
                        return self._send(200, kubelet.logs(q.get("namespace", "default"), q["pod"], q.get("container"),
                                                            q.get("previous") in ("1", "true")), "text/plain")
                except KeyError as e:
                    return self._send(404, {"error": "not found: %s" % e})
                return self._send(404, {"error": "no such path"})

            def do_POST(self):
                u = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(n) or b"{}")
                except ValueError:
                    return self._send(400, {"error": "bad json"})
                try:
                    if u.path == "/fail-node":
                        return self._send(200, {"killedPods": kubelet.fail_node(body["node"])})
                    if u.path == "/recover-node":
                        kubelet.recover_node(body["node"])
                        return self._send(200, {"ok": True})
                    if u.path == "/fail-pod":
                        return self._send(200, {"killed": kubelet.fail_pod(body.get("namespace", "default"), body["pod"],
                                                                           body.get("container"))})
                except KeyError as e:
                    return self._send(404, {"error": "not found: %s" % e})
                return self._send(404, {"error": "no such path"})

        self.control = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.control.daemon_threads = True
        threading.Thread(target=self.control.serve_forever, daemon=True, name="kubelet-control").start()
        return "http://127.0.0.1:%d" % self.control.server_address[1]

    # -- run -------------------------------------------------------------------------

    def start(self, control_port=0):
        if not self.scheduler:
            self.start_node_servers()
        self.register_nodes()
        if not self.scheduler:
            nodelease.start(self.client, lambda: self.node_names, self.stopping, log,
                            skip=lambda n: n in self.failed_nodes)
        self.services = Informer(self.client, "services").start()
        self.secrets = Informer(self.client, "secrets").start()
        self.configmaps = Informer(self.client, "configmaps").start()
        self.pods = Informer(self.client, "pods", self.on_pod)
        if self.scheduler:
            threading.Thread(target=self.scheduler_loop, daemon=True, name="scheduler").start()
        self.pods.start()
        threading.Thread(target=self.heartbeat_loop, daemon=True, name="heartbeat").start()
        url = self.start_control(control_port)
        self.services.synced.wait(10)
        self.pods.synced.wait(10)
        info = {"pid": os.getpid(), "control_url": url, "nodes": self.node_names, "mountNamespaces": self.use_ns}
        tmp = os.path.join(self.state_dir, "kubelet.json.tmp")
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, os.path.join(self.state_dir, "kubelet.json"))
        return url

    def stop(self):
        """Stop: kill every container process (no status writes) and clean up."""
        self.stopping.set()
        self.sched_q.put((None, None))
        for srv in self.node_servers:
            srv.stop()
        if self.pods:
            self.pods.stop()
        for inf in (self.services, self.secrets, self.configmaps):
            if inf:
                inf.stop()
        with self.lock:
            ws = list(self.workers.values())
            self.workers.clear()
        for w in ws:
            w.crash()
        for w in ws:
            w.done.wait(5)
            remove_tree(os.path.join("/dev/shm/kubesim", w.uid))
        kill_marked("%s=%s" % (MARK_CLUSTER, self.state_dir))
        self.mountpoints.cleanup_all()
        kubelet_ipam.release("pods", self.state_dir)
        if self.control:
            self.control.shutdown()
            self.control.server_close()
        self.events.stop()
        self.sched_events.stop()


def node_resources(cpu="64", memory="256Gi", gpus=0, max_pods=110, ephemeral_storage="100Gi"):
    """A simulated Node's capacity (= allocatable): the kubelet flags --node-cpu, --node-memory,
    --node-gpus (nvidia.com/gpu, reported only when non-zero, as the device plugin does),
    --max-pods (the kubelet's maxPods, 110) and --node-ephemeral-storage. The defaults are a large
    development machine's: the end-to-end tests run a dozen Ray clusters at once on one Node."""
    out = {"cpu": str(cpu), "memory": str(memory), "pods": str(int(max_pods)),
           "ephemeral-storage": str(ephemeral_storage)}
    if int(gpus):
        out["nvidia.com/gpu"] = str(int(gpus))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="kubelet simulator")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--node-prefix", default="sim-node-")
    ap.add_argument("--backoff-base", type=float, default=10.0, help="crash-loop back-off base seconds (10)")
    ap.add_argument("--backoff-max", type=float, default=300.0, help="crash-loop back-off cap seconds (300)")
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--no-mount-ns", action="store_true", help="use path rewriting instead of mount namespaces")
    ap.add_argument("--no-scheduler", action="store_true", help="leave binding to a real kube-scheduler")
    ap.add_argument("--pod-network", action="store_true",
                    help="report pods under pod-network addresses (real API servers refuse loopback endpoints)")
    ap.add_argument("--node-cpu", default="64", help="each Node's cpu capacity/allocatable (64)")
    ap.add_argument("--node-memory", default="256Gi", help="each Node's memory (256Gi)")
    ap.add_argument("--node-gpus", type=int, default=0, help="each Node's nvidia.com/gpu (0: none)")
    ap.add_argument("--max-pods", type=int, default=110, help="pods per Node (110)")
    ap.add_argument("--node-ephemeral-storage", default="100Gi", help="each Node's ephemeral-storage (100Gi)")
    args = ap.parse_args(argv)
    k = Kubelet(args.state_dir, args.nodes, args.node_prefix, args.backoff_base, args.backoff_max,
                use_ns=False if args.no_mount_ns else None,
                node_resources_args=dict(cpu=args.node_cpu, memory=args.node_memory, gpus=args.node_gpus,
                                         max_pods=args.max_pods, ephemeral_storage=args.node_ephemeral_storage),
                scheduler=not args.no_scheduler, pod_network=args.pod_network)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    url = k.start(args.control_port)
    log("ready: nodes %s, control %s, mount namespaces %s" % (",".join(k.node_names), url, k.use_ns))
    while not stop.wait(1.0):
        pass
    k.stop()
    log("stopped")


if __name__ == "__main__":
    main()

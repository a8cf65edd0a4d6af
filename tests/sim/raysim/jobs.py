"""Simulated Ray Jobs: JobManager + JobSupervisor of the dashboard head.

Sources: dashboard/modules/job/job_manager.py, job_supervisor.py, common.py,
pydantic_models.py, job_head.py (ray-apis.md section 4). Job info lives in the
GCS internal KV, namespace "job", key "_ray_internal_job_info_<submission_id>",
so it is in Redis under GCS fault tolerance and gone otherwise.

The entrypoint runs as a real local process: `subprocess.Popen(entrypoint,
shell=True, start_new_session=True)` like JobSupervisor (so /bin/sh -c), with
its output appended to the driver log, RAY_ADDRESS set to the GCS address and
the runtime_env env_vars applied. Stop sends SIGTERM to the process group and
SIGKILL after RAY_JOB_STOP_WAIT_TIME_S (3 s).
"""

import ctypes
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

from . import common, packaging
from .gcs import GcsError

TERMINAL = ("STOPPED", "SUCCEEDED", "FAILED")
KV_NS = "job"
KV_PREFIX = "_ray_internal_job_info_"
# job_manager.py / job_supervisor.py constants.
NUM_LOG_LINES_ON_ERROR = 10
MAX_LOG_SIZE = 20000
STOP_WAIT_S = common.env_float("RAY_JOB_STOP_WAIT_TIME_S", 3)
# JobManager.JOB_MONITOR_LOOP_PERIOD_S: how often a job's supervisor is pinged.
JOB_MONITOR_LOOP_PERIOD_S = 1.0

REQUEST_FIELDS = {
    "entrypoint": str, "submission_id": str, "job_id": str, "runtime_env": dict, "metadata": dict,
    "entrypoint_num_cpus": (int, float), "entrypoint_num_gpus": (int, float), "entrypoint_memory": int,
    "entrypoint_resources": dict, "entrypoint_label_selector": dict, "retry_policy": dict,
}


class JobRequestError(Exception):
    """Invalid JobSubmitRequest (-> 400 with a traceback)."""


class JobNotFound(Exception):
    pass


class JobConflict(Exception):
    """Operation not allowed in the job's state (-> 500 with a traceback)."""


class RuntimeEnvSetupError(Exception):
    """ray.exceptions.RuntimeEnvSetupError: str() starts with "Failed to set up
    runtime environment." followed by the cause."""

    def __str__(self):
        return "Failed to set up runtime environment.\n" + self.args[0]


# PEP 508 name, optional extras, then an optional version specifier and marker.
REQ_RE = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[A-Za-z0-9._,\s-]*\])?\s*"
                    r"((?:(?:==|>=|<=|!=|~=|>|<|===)\s*[A-Za-z0-9.*+!_-]+\s*,?\s*)*)\s*(;.*)?$")
UNPINNED_VERSION = "0.0.0-sim"


def parse_requirement(req):
    """(distribution name, pinned version or None); ValueError if pip would refuse it."""
    m = REQ_RE.match(req)
    if not m or req.strip().startswith("-"):
        raise ValueError("ERROR: Invalid requirement: '%s'" % req)
    spec = (m.group(3) or "").replace(" ", "")
    pins = re.findall(r"(?:^|,)==([A-Za-z0-9.+!_-]+)", spec)
    return m.group(1), (pins[0] if pins else None)


def import_name(dist):
    # The stand-in's import name: the distribution name, lower case, with "-" and "."
    # as "_" (right for requests, pendulum, numpy...; not for scikit-learn -> sklearn).
    return re.sub(r"[-.]+", "_", dist).lower()


def make_stand_in(site, dist, version):
    """An importable package <import name> with __version__, plus dist-info so
    importlib.metadata.version(dist) answers, as an installed wheel would."""
    mod = import_name(dist)
    os.makedirs(os.path.join(site, mod), exist_ok=True)
    with open(os.path.join(site, mod, "__init__.py"), "w") as f:
        f.write('"""Stand-in for %s==%s, made by the Ray simulator\'s offline pip (no code of the real '
                'package)."""\n__version__ = %r\n' % (dist, version, version))
    di = os.path.join(site, "%s-%s.dist-info" % (mod, version))
    os.makedirs(di, exist_ok=True)
    with open(os.path.join(di, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (dist, version))
    with open(os.path.join(di, "top_level.txt"), "w") as f:
        f.write(mod + "\n")


def _set_pdeathsig():
    # The driver dies with the node process (prctl(PR_SET_PDEATHSIG, SIGKILL)),
    # as Ray's processes are reaped with their raylet.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def pending_message(info):
    # JobManager: "Job has not started yet." + resource / runtime_env hints.
    msg = "Job has not started yet."
    if any(info.get(k) for k in ("entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory",
                                 "entrypoint_resources")):
        msg += (" It may be waiting for resources (CPUs, GPUs, memory, custom resources) to become "
                "available.")
    if info.get("runtime_env"):
        msg += " It may be waiting for the runtime environment to be set up."
    return msg


class JobManager:
    def __init__(self, gcs_client, node, timings, log_dir):
        self.gcs = gcs_client
        self.node = node  # dict: node_id, node_ip, agent_port, gcs_address, sim_bin, sim_path
        self.t = timings
        self.log_dir = log_dir
        self.procs = {}
        self.lock = threading.RLock()
        os.makedirs(log_dir, exist_ok=True)

    # ------------------------------------------------------------------ KV
    def _get(self, sid):
        raw = self.gcs.call("kv_get", {"ns": KV_NS, "key": KV_PREFIX + sid})
        return json.loads(raw) if raw else None

    def _put(self, sid, info, overwrite=True):
        return self.gcs.call("kv_put", {"ns": KV_NS, "key": KV_PREFIX + sid, "value": json.dumps(info),
                                        "overwrite": overwrite})

    def _all(self):
        out = []
        for key in self.gcs.call("kv_keys", {"ns": KV_NS, "prefix": KV_PREFIX}):
            raw = self.gcs.call("kv_get", {"ns": KV_NS, "key": key})
            if raw:
                out.append(json.loads(raw))
        return out

    def recover(self):
        """A new dashboard's JobManager monitors every unfinished job it finds in
        the KV (job_manager.py _recover_running_jobs -> _monitor_job). Their
        JobSupervisor actors ran on the old head (drivers are pinned to the head
        node), so once the GCS has marked that node dead the ping fails with
        ActorDiedError and the job becomes FAILED, JOB_SUPERVISOR_ACTOR_DIED, with
        the message also appended to the driver log. Without GCS fault tolerance
        the KV is empty and there is nothing to recover."""
        try:
            infos = self._all()
        except GcsError:
            return
        for info in infos:
            if info["status"] not in TERMINAL:
                threading.Thread(target=self._monitor_orphan, args=(info["submission_id"],), daemon=True,
                                 name="recover-" + info["submission_id"]).start()

    def _monitor_orphan(self, sid):
        period = JOB_MONITOR_LOOP_PERIOD_S
        for _ in range(10 ** 7):
            time.sleep(period)
            try:
                info = self._get(sid)
                if info is None or info["status"] in TERMINAL:
                    return
                node = info.get("_supervisor_node_id")
                if node == self.node["node_id"]:
                    return
                states = {n["node_id"]: n for n in self.gcs.call("get_all_node_info", {})}
            except GcsError:
                continue
            old = states.get(node)
            if old is not None and old.get("state") == "ALIVE":
                continue
            ip = (old or {}).get("node_ip") or (info.get("driver_info") or {}).get("node_ip_address") or ""
            msg = ("Job supervisor actor died: The actor died unexpectedly before finishing this task.\n"
                   "\tclass_name: JobSupervisor\n\tactor_id: %s\n\tname: _ray_internal_job_actor_%s\n"
                   "\tnamespace: SUPERVISOR_ACTOR_RAY_NAMESPACE\n\tip: %s\nThe actor is dead because its node has "
                   "died. Node Id: %s" % (info.get("_supervisor_actor_id") or common.actor_id(), sid, ip, node))
            try:
                self._finish(sid, "FAILED", msg, "JOB_SUPERVISOR_ACTOR_DIED", None)
                with open(self._log_path(sid), "a", encoding="utf-8") as f:
                    f.write(msg)
            except (GcsError, OSError):
                continue
            return

    # ------------------------------------------------------------------ API
    def submit(self, req):
        if not isinstance(req, dict):
            raise JobRequestError("TypeError: JobSubmitRequest must be a JSON object")
        req = {k: v for k, v in req.items() if v is not None}  # null-valued keys are stripped
        for k, v in req.items():
            if k not in REQUEST_FIELDS:
                raise JobRequestError("TypeError: __init__() got an unexpected keyword argument '%s'" % k)
            want = REQUEST_FIELDS[k]
            if isinstance(v, bool) or not isinstance(v, want):
                tname = want.__name__ if isinstance(want, type) else "number"
                raise JobRequestError("TypeError: %s must be a %s, got %s" % (k, tname, type(v)))
        if "entrypoint" not in req:
            raise JobRequestError("TypeError: __init__() missing 1 required positional argument: 'entrypoint'")
        sid = req.get("submission_id") or req.get("job_id") or common.submission_id()
        info = {
            "submission_id": sid, "job_id": None, "driver_info": None, "status": "PENDING",
            "entrypoint": req["entrypoint"], "message": None, "error_type": None,
            "start_time": common.now_ms(), "end_time": None, "metadata": req.get("metadata"),
            "runtime_env": req.get("runtime_env"), "driver_agent_http_address": None,
            "driver_node_id": None, "driver_exit_code": None,
            "entrypoint_num_cpus": req.get("entrypoint_num_cpus"),
            "entrypoint_num_gpus": req.get("entrypoint_num_gpus"),
            "entrypoint_memory": req.get("entrypoint_memory"),
            "entrypoint_resources": req.get("entrypoint_resources"),
            "_supervisor_node_id": self.node["node_id"], "_supervisor_actor_id": common.actor_id(),
        }
        info["message"] = pending_message(info)
        if not self._put(sid, info, overwrite=False):
            # job_agent answers 400 and job_head re-raises it as a 500
            # RuntimeError (ray-apis.md 4).
            raise ValueError("Job with submission_id %s already exists. Please use a different submission_id." % sid)
        try:
            self._validate_runtime_env(info.get("runtime_env"))
        except (ValueError, TypeError) as exc:
            # job_manager.py submit_job: creating the supervisor actor validates its
            # runtime_env (validation.py); a failure marks the job FAILED at once
            # while the submission itself still answers 200.
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            msg = "Failed to start supervisor actor %s: '%s'. Full traceback:\n%s" % (sid, exc, tb)
            with open(self._log_path(sid), "a", encoding="utf-8") as f:
                f.write("%s\tWARNING job_manager.py:1 -- %s" % (time.strftime("%Y-%m-%d %H:%M:%S,000"), msg))
            self._finish(sid, "FAILED", msg, "JOB_SUPERVISOR_ACTOR_START_FAILURE", None)
            return sid
        threading.Thread(target=self._supervise, args=(sid,), daemon=True, name="job-" + sid).start()
        return sid

    @staticmethod
    def _validate_runtime_env(env):
        """The checks of _private/runtime_env/validation.py that a submission can hit."""
        if not env:
            return
        wd = env.get("working_dir")
        if wd is not None:
            if not isinstance(wd, str):
                raise TypeError("`working_dir` must be a string, got %s." % type(wd))
            if packaging.is_path(wd):
                if not os.path.exists(wd):
                    raise ValueError("%s is not a valid path" % wd)
            elif not wd.startswith(("gcs://", "s3://", "gs://", "https://", "http://", "file://")):
                raise ValueError("%s is not a valid URI. Passing directories or modules to be dynamically uploaded "
                                 "is only supported at the job level (i.e., passed to `ray.init`)." % wd)
        mods = env.get("py_modules")
        if mods is not None:
            if not isinstance(mods, list):
                raise TypeError("`py_modules` must be a list of strings, got %s." % type(mods))
            for m in mods:
                if not isinstance(m, str):
                    raise TypeError("`py_module` must be a string, got %s." % type(m))
                if packaging.is_path(m) and not os.path.exists(m):
                    raise ValueError("%s is not a valid path" % m)
        ev = env.get("env_vars")
        if ev is not None and (not isinstance(ev, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in ev.items())):
            raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], got %s" % type(ev))
        pip = env.get("pip")
        if pip is not None and not isinstance(pip, (str, list, dict)):
            raise TypeError("runtime_env['pip'] must be of type str or List[str], got %s" % type(pip))

    def get(self, job_or_sid):
        info = self._get(job_or_sid)
        if info is None:
            for cand in self._all():
                if cand.get("job_id") == job_or_sid:
                    info = cand
                    break
        if info is None:
            raise JobNotFound(job_or_sid)
        return info

    def list(self):
        return sorted(self._all(), key=lambda i: i["start_time"])

    def logs(self, job_or_sid):
        info = self.get(job_or_sid)
        path = self._log_path(info["submission_id"])
        if not os.path.exists(path):
            return ""
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, job_or_sid):
        info = self.get(job_or_sid)
        sid = info["submission_id"]
        with self.lock:
            info = self._get(sid)
            if info["status"] in TERMINAL:
                return False
            proc = self.procs.get(sid)
            if proc is None:
                self._finish(sid, "STOPPED", "Job was intentionally stopped.", None, None)
                return True
            self.procs[sid] = proc
            proc.stop_requested = True
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            pass

        def escalate():
            deadline = time.time() + STOP_WAIT_S
            while time.time() < deadline and proc.poll() is None:
                time.sleep(0.05)
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
        threading.Thread(target=escalate, daemon=True).start()
        return True

    def delete(self, job_or_sid):
        info = self.get(job_or_sid)
        if info["status"] not in TERMINAL:
            raise JobConflict("Attempted to delete job '%s', but it is in a non-terminal state %s." % (
                info["submission_id"], info["status"]))
        self.gcs.call("kv_del", {"ns": KV_NS, "key": KV_PREFIX + info["submission_id"]})
        return True

    def kill_all(self):
        with self.lock:
            procs = list(self.procs.values())
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass

    @staticmethod
    def details(info):
        """JobDetails (pydantic .dict()) in the key order of the corpus samples."""
        return {
            "type": "SUBMISSION", "job_id": info.get("job_id"), "submission_id": info["submission_id"],
            "driver_info": info.get("driver_info"), "status": info["status"], "entrypoint": info["entrypoint"],
            "message": info.get("message"), "error_type": info.get("error_type"),
            "start_time": info.get("start_time"), "end_time": info.get("end_time"),
            "metadata": info.get("metadata"), "runtime_env": info.get("runtime_env"),
            "driver_agent_http_address": info.get("driver_agent_http_address"),
            "driver_node_id": info.get("driver_node_id"), "driver_exit_code": info.get("driver_exit_code"),
        }

    # ------------------------------------------------------------------ supervisor
    def _log_path(self, sid):
        return os.path.join(self.log_dir, "job-driver-%s.log" % sid)

    def _finish(self, sid, status, message, error_type, exit_code):
        info = self._get(sid)
        if info is None:
            return
        info["status"] = status
        info["message"] = message
        info["error_type"] = error_type
        info["end_time"] = common.now_ms()
        info["driver_exit_code"] = exit_code
        self._put(sid, info)
        if info.get("job_id"):
            try:
                self.gcs.call("mark_job_finished", {"job_id": info["job_id"]})
            except GcsError:
                pass

    def _supervise(self, sid):
        try:
            self._run(sid)
        except GcsError as exc:
            common.log("job_manager", "job %s lost its GCS: %s" % (sid, exc))
        except Exception as exc:  # keep the node alive; surface as a FAILED job
            common.log("job_manager", "job %s supervisor error: %r" % (sid, exc))
            try:
                self._finish(sid, "FAILED", "Unexpected error occurred: %r" % (exc,), "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE", None)
            except GcsError:
                pass

    def _run(self, sid):
        info = self._get(sid)
        log_path = self._log_path(sid)
        with open(log_path, "a", encoding="utf-8") as f:
            if info.get("runtime_env"):
                ts = time.strftime("%Y-%m-%d %H:%M:%S,000", time.localtime())
                f.write("%s\tINFO job_manager.py:530 -- Runtime env is setting up.\n" % ts)
        time.sleep(self.t.job_start_delay_s)
        try:
            cwd, paths = self._setup_runtime_env(sid, info.get("runtime_env") or {})
        except RuntimeEnvSetupError as exc:
            # job_manager.py _monitor_job_internal: the supervisor actor's creation
            # raised RuntimeEnvSetupError.
            msg = "runtime_env setup failed: %s" % exc
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(msg)
            self._finish(sid, "FAILED", msg, "RUNTIME_ENV_SETUP_FAILURE", None)
            return
        with self.lock:
            info = self._get(sid)
            if info is None or info["status"] in TERMINAL:
                return
            env = dict(os.environ)
            for k in list(env):
                if k.startswith("RW_SIM_CONTROL"):
                    env.pop(k)
            env.update({str(k): str(v) for k, v in ((info.get("runtime_env") or {}).get("env_vars") or {}).items()})
            # JobSupervisor exports the cluster address to the driver.
            env["RAY_ADDRESS"] = self.node["gcs_address"]
            env["RAY_JOB_SUBMISSION_ID"] = sid
            env["PATH"] = self.node["sim_bin"] + os.pathsep + env.get("PATH", "")
            # working_dir and py_modules first (as Ray's plugins prepend them), then
            # the pip stand-ins, then the `ray` stand-in and the simulator's modules.
            paths = paths + [self.node["pyray_path"], self.node["sim_path"]]
            env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
            jid = self.gcs.call("next_job_id", {"driver": {"submission_id": sid}})
            env["RAY_JOB_ID"] = jid
            logf = open(log_path, "a", encoding="utf-8")
            logf.write("Running entrypoint for job %s: %s\n" % (sid, info["entrypoint"]))
            logf.flush()
            proc = subprocess.Popen(info["entrypoint"], shell=True, start_new_session=True, env=env,
                                    stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd or self.log_dir, preexec_fn=_set_pdeathsig)
            logf.close()
            proc.stop_requested = False
            self.procs[sid] = proc
            info["status"] = "RUNNING"
            info["message"] = "Job is currently running."
            info["job_id"] = jid
            info["driver_info"] = {"id": jid, "node_ip_address": self.node["node_ip"], "pid": str(proc.pid)}
            info["driver_agent_http_address"] = "http://%s:%d" % (self.node["node_ip"], self.node["agent_port"])
            info["driver_node_id"] = self.node["node_id"]
            self._put(sid, info)
        rc = proc.wait()
        with self.lock:
            self.procs.pop(sid, None)
        if getattr(proc, "stop_requested", False):
            self._finish(sid, "STOPPED", "Job was intentionally stopped.", None, None)
        elif rc == 0:
            self._finish(sid, "SUCCEEDED", "Job finished successfully.", None, 0)
        else:
            tail = self._tail(log_path)
            self._finish(sid, "FAILED", "Job entrypoint command failed with exit code %d, last available logs "
                         "(truncated to 20,000 chars):\n%s" % (rc, tail), "JOB_ENTRYPOINT_COMMAND_ERROR", rc)

    def kill_driver(self, sid=None, sig=signal.SIGKILL):
        """Fault: signal the entrypoint's process group (all running drivers, or one).
        The supervisor then sees the exit like any other (exit code -<sig>)."""
        with self.lock:
            procs = {k: p for k, p in self.procs.items() if sid in (None, k)}
        for p in procs.values():
            try:
                os.killpg(p.pid, sig)
            except OSError:
                pass
        return sorted(procs)

    # ------------------------------------------------------------------ runtime_env
    def _resources_dir(self, *parts):
        d = os.path.join(os.path.dirname(self.log_dir), "runtime_resources", *parts)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        return d

    def _package(self, uri, kind, include_parent):
        """Local directory of a working_dir / py_modules package
        (packaging.py download_and_unpack_package)."""
        if packaging.is_path(uri):
            # A path on the head: the dashboard uploads it from there.
            try:
                uri, data = packaging.zip_directory(uri, include_parent)
            except ValueError as exc:
                raise RuntimeEnvSetupError(str(exc))
            self.gcs.call("kv_put", {"ns": packaging.KV_NS, "key": uri, "value": packaging.encode(data),
                                     "overwrite": True})
        if not uri.startswith("gcs://"):
            # Offline: only packages held by the cluster itself can be fetched.
            raise RuntimeEnvSetupError("Failed to download %s: remote URIs cannot be fetched (the Ray simulator "
                                       "runs offline)." % uri)
        name = uri[len("gcs://"):]
        raw = self.gcs.call("kv_get", {"ns": packaging.KV_NS, "key": uri})
        if raw is None:
            raise RuntimeEnvSetupError("Failed to download runtime_env file package %s from the GCS to %s, "
                                       "the package doesn't exist." % (uri, self._resources_dir()))
        dest = self._resources_dir("%s_files" % kind, name[:-4] if name.endswith(".zip") else name)
        return packaging.unpack(packaging.decode(raw), dest)

    def _pip(self, sid, spec):
        """Offline pip: a stand-in package per requirement (name==version pins the
        version, anything else is UNPINNED_VERSION), in a directory that goes on
        the driver's PYTHONPATH (Ray installs into a virtualenv that sees the base
        site-packages; the stand-ins take precedence the same way)."""
        if isinstance(spec, dict):
            if "packages" not in spec:
                raise RuntimeEnvSetupError("runtime_env['pip'] must include field 'packages', but got %s" % spec)
            spec = spec["packages"]
        if isinstance(spec, str):
            try:
                with open(spec) as f:
                    spec = [ln.strip() for ln in f.read().strip().split("\n")]
            except OSError:
                raise RuntimeEnvSetupError("%s is not a valid file" % spec)
        reqs = [r for r in dict.fromkeys(spec) if r and not r.startswith("#")]
        if not reqs:
            return None
        failing = {x.strip().lower() for x in os.environ.get("RW_SIM_PIP_FAIL", "").split(",") if x.strip()}
        parsed = []
        for r in reqs:
            try:
                name, version = parse_requirement(r)
            except ValueError as exc:
                raise RuntimeEnvSetupError("Failed to install pip requirements:\n%s" % exc)
            if name.lower() in failing:
                raise RuntimeEnvSetupError(
                    "Failed to install pip requirements:\nERROR: Could not find a version that satisfies the "
                    "requirement %s (from versions: none)\nERROR: No matching distribution found for %s" % (r, name))
            parsed.append((name, version or UNPINNED_VERSION))
        digest = hashlib.sha1(json.dumps(reqs).encode()).hexdigest()
        site = self._resources_dir("pip", digest, "virtualenv", "lib", "python%d.%d" % sys.version_info[:2],
                                   "site-packages")
        os.makedirs(site, exist_ok=True)
        for name, version in parsed:
            make_stand_in(site, name, version)
        return site

    def _setup_runtime_env(self, sid, env):
        """(cwd, PYTHONPATH entries) of the driver; RuntimeEnvSetupError on failure."""
        cwd = None
        paths = []
        try:
            if env.get("working_dir"):
                cwd = self._package(env["working_dir"], "working_dir", False)
                paths.append(cwd)
            for m in env.get("py_modules") or []:
                paths.append(self._package(m, "py_modules", True))
            if env.get("pip"):
                site = self._pip(sid, env["pip"])
                if site:
                    paths.append(site)
            if env.get("conda") or env.get("uv") or env.get("container") or env.get("image_uri"):
                raise RuntimeEnvSetupError("The Ray simulator cannot set up conda, uv or container runtime "
                                           "environments.")
        except GcsError as exc:
            raise RuntimeEnvSetupError(str(exc))
        return cwd, paths

    def _tail(self, path):
        try:
            with open(path, "r", encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines(True)
        except OSError:
            return ""
        out = "".join(lines[-NUM_LOG_LINES_ON_ERROR:])
        return out[-MAX_LOG_SIZE:]

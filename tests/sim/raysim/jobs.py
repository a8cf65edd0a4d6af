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
import json
import os
import signal
import subprocess
import threading
import time

from . import common
from .gcs import GcsError

TERMINAL = ("STOPPED", "SUCCEEDED", "FAILED")
KV_NS = "job"
KV_PREFIX = "_ray_internal_job_info_"
# job_manager.py / job_supervisor.py constants.
NUM_LOG_LINES_ON_ERROR = 10
MAX_LOG_SIZE = 20000
STOP_WAIT_S = common.env_float("RAY_JOB_STOP_WAIT_TIME_S", 3)

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
        """After a head restart (GCS FT), jobs whose supervisor died are FAILED."""
        try:
            infos = self._all()
        except GcsError:
            return
        for info in infos:
            if info["status"] not in TERMINAL:
                info["status"] = "FAILED"
                info["message"] = ("Job supervisor actor died unexpectedly (the head node restarted) "
                                   "before the job finished.")
                info["error_type"] = "JOB_SUPERVISOR_ACTOR_DIED"
                info["end_time"] = common.now_ms()
                self._put(info["submission_id"], info)

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
        }
        info["message"] = pending_message(info)
        if not self._put(sid, info, overwrite=False):
            # job_agent answers 400 and job_head re-raises it as a 500
            # RuntimeError (ray-apis.md 4).
            raise ValueError("Job with submission_id %s already exists. Please use a different submission_id." % sid)
        threading.Thread(target=self._supervise, args=(sid,), daemon=True, name="job-" + sid).start()
        return sid

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
            env["PYTHONPATH"] = self.node["sim_path"] + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            jid = self.gcs.call("next_job_id", {"driver": {"submission_id": sid}})
            logf = open(log_path, "a", encoding="utf-8")
            logf.write("Running entrypoint for job %s: %s\n" % (sid, info["entrypoint"]))
            logf.flush()
            proc = subprocess.Popen(info["entrypoint"], shell=True, start_new_session=True, env=env,
                                    stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.log_dir, preexec_fn=_set_pdeathsig)
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

    def _tail(self, path):
        try:
            with open(path, "r", encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines(True)
        except OSError:
            return ""
        out = "".join(lines[-NUM_LOG_LINES_ON_ERROR:])
        return out[-MAX_LOG_SIZE:]

"""Shared helpers of the Ray node simulator: ids, clocks, timing knobs, logging.

Every timing default below is Ray's own (the source is named next to it); the
simulator-only knobs (RW_SIM_*) model latencies that real Ray has but does not
expose as one number (build of an application, start of a replica actor...).
"""

import json
import os
import random
import string
import sys
import threading
import time

# Ray version reported by /api/version and `ray --version`. The KubeRay samples
# in shared/corpus pin rayVersion 2.52.0.
RAY_VERSION = os.environ.get("RW_SIM_RAY_VERSION", "2.52.0")
# Dashboard REST API version (python/ray/dashboard/version.py CURRENT_VERSION).
DASHBOARD_API_VERSION = "4"
RAY_COMMIT = "{{RAY_COMMIT_SHA}}"


def version_tuple(v):
    out = []
    for part in v.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    while len(out) < 3:
        out.append(0)
    return tuple(out[:3])


def now_ms():
    return int(time.time() * 1000)


def hex_id(nbytes):
    return os.urandom(nbytes).hex()


def node_id():
    # NodeID is 28 bytes -> 56 hex (ray-apis.md section 3.1 "Name formats").
    return hex_id(28)


def worker_id():
    return hex_id(28)


def actor_id(job_hex="01000000"):
    # ActorID is 16 bytes: 12 unique bytes + the creator JobID (4 bytes), so
    # the hex ends with the job id, usually 01000000 (ray-apis.md 3.1).
    return hex_id(12) + job_hex


def job_hex(counter):
    # JobID.from_int(): 4 bytes little-endian, so job 2 is "02000000".
    return int(counter).to_bytes(4, "little").hex()


def replica_suffix():
    # Newer Ray: 8 characters of [a-z0-9] (ray-apis.md 3.1 "Name formats").
    alphabet = string.ascii_lowercase + string.digits
    return "".join(random.choice(alphabet) for _ in range(8))


def submission_id():
    # job_manager.generate_job_id(): "raysubmit_" + 16 chars of
    # [A-Za-z0-9] minus I, l, o, O and 0 (ray-apis.md section 4).
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in "IloO0")
    return "raysubmit_" + "".join(random.choice(alphabet) for _ in range(16))


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return float(default)


def env_int(name, default):
    try:
        return int(float(os.environ.get(name, default)))
    except ValueError:
        return int(default)


class Timings:
    """All delays and periods of one node. Mutable at run time (POST /config)."""

    def __init__(self):
        # GCS health checks of raylets (src/ray/common/ray_config_def.h:
        # health_check_initial_delay_ms 5000, period 3000, timeout 10000,
        # failure_threshold 5; overridable as RAY_<name> like every RayConfig).
        self.health_check_initial_delay_ms = env_int("RAY_health_check_initial_delay_ms", 5000)
        self.health_check_period_ms = env_int("RAY_health_check_period_ms", 3000)
        self.health_check_timeout_ms = env_int("RAY_health_check_timeout_ms", 10000)
        self.health_check_failure_threshold = env_int("RAY_health_check_failure_threshold", 5)
        # Raylets give up on an unreachable GCS after this (ray-apis.md section 5).
        self.gcs_rpc_server_reconnect_timeout_s = env_float("RAY_gcs_rpc_server_reconnect_timeout_s", 60)
        # Serve proxy constants (serve/_private/constants.py, env-overridable;
        # ray-apis.md section 2.3).
        self.proxy_min_draining_period_s = env_float("RAY_SERVE_PROXY_MIN_DRAINING_PERIOD_S", 30)
        self.proxy_drain_check_period_s = env_float("RAY_SERVE_PROXY_DRAIN_CHECK_PERIOD_S", 5)
        self.proxy_health_check_period_s = env_float("RAY_SERVE_PROXY_HEALTH_CHECK_PERIOD_S", 10)
        self.proxy_ready_check_timeout_s = env_float("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", 5)
        self.proxy_health_check_unhealthy_threshold = env_int(
            "RAY_SERVE_PROXY_HEALTH_CHECK_UNHEALTHY_THRESHOLD", 3)
        # Simulator latencies (no single Ray constant; short so tests stay fast).
        self.heartbeat_s = env_float("RW_SIM_HEARTBEAT_S", 0.2)
        self.serve_build_delay_s = env_float("RW_SIM_SERVE_BUILD_DELAY_S", 0.4)
        self.replica_start_delay_s = env_float("RW_SIM_REPLICA_START_DELAY_S", 0.4)
        self.proxy_start_delay_s = env_float("RW_SIM_PROXY_START_DELAY_S", 0.3)
        self.app_delete_delay_s = env_float("RW_SIM_APP_DELETE_DELAY_S", 0.3)
        self.config_update_delay_s = env_float("RW_SIM_CONFIG_UPDATE_DELAY_S", 0.2)
        self.job_start_delay_s = env_float("RW_SIM_JOB_START_DELAY_S", 0.2)
        self.controller_tick_s = env_float("RW_SIM_CONTROLLER_TICK_S", 0.05)
        # `ray start --block` polls its subprocesses every second and exits 1
        # when one died (python/ray/scripts/scripts.py, start --block loop).
        self.block_monitor = os.environ.get("RW_SIM_BLOCK_MONITOR", "1") != "0"
        self.block_monitor_delay_s = env_float("RW_SIM_BLOCK_MONITOR_DELAY_S", 1.0)
        # How long a proxy waits for a running replica before giving up.
        self.request_wait_s = env_float("RW_SIM_REQUEST_WAIT_S", 10)

    def node_death_s(self):
        return self.health_check_period_ms * self.health_check_failure_threshold / 1000.0

    def as_dict(self):
        return dict(self.__dict__)

    def update(self, values):
        changed = {}
        for key, value in values.items():
            if key not in self.__dict__:
                raise KeyError(key)
            cur = self.__dict__[key]
            if isinstance(cur, bool):
                value = bool(value)
            elif isinstance(cur, int):
                value = int(value)
            elif isinstance(cur, float):
                value = float(value)
            self.__dict__[key] = value
            changed[key] = value
        return changed


_log_lock = threading.Lock()


_TRACE = os.environ.get("RW_SIM_TRACE")


def trace(component, event, **kw):
    """With RW_SIM_TRACE=<file>: append one JSON line (wall time, node IP, component,
    event) for tracing a failed request to its cause (tests/e2e/test_rayservice_ha.py)."""
    if not _TRACE:
        return
    rec = {"t": round(time.time(), 4), "ip": os.environ.get("RW_SIM_POD_IP"), "c": component, "ev": event}
    rec.update(kw)
    try:
        with _log_lock, open(_TRACE, "a") as f:
            f.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
    except OSError:
        pass


def log(component, msg):
    """Ray-like log line on stderr: time, level, component, message."""
    ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    ms = int((time.time() % 1) * 1000)
    with _log_lock:
        try:
            sys.stderr.write("%s,%03d\tINFO %s -- %s\n" % (ts, ms, component, msg))
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


LOCAL_NAMES = ("127.0.0.1", "localhost", "0.0.0.0", "::1", "[::1]")


def pod_local(host):
    """Inside a simulated pod, "localhost" is the pod's own address.

    A real pod has its own network namespace, so `ray job submit --address
    http://127.0.0.1:8265` (KubeRay's SidecarMode) or RAY_ADDRESS=127.0.0.1:6379
    (set on heads by KubeRay) reach the local Ray. Simulated pods share one
    loopback, each on its own RW_SIM_POD_IP, so client tools map local names there.
    """
    pod = os.environ.get("RW_SIM_POD_IP")
    if pod and host in LOCAL_NAMES:
        return pod
    return host


def dumps(obj):
    # json.dumps with its default separators: aiohttp handlers in the dashboard
    # build bodies with json.dumps(...) (serve_head.py, job_head.py).
    return json.dumps(obj)


def dumps_min(obj):
    # Starlette's JSONResponse renders compact JSON (separators (",", ":")).
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def cluster_resolve(host):
    """The address a simulated pod would get for `host` from its own cluster's DNS.

    Simulated clusters publish their Service names in blocks of the host's shared
    /etc/hosts ("# BEGIN kubesim <state dir>"), and the system resolver takes the
    first match, so two local clusters on one machine with a Service of the same
    short name (`redis` in several KubeRay samples) would shadow each other. A pod
    process carries its cluster's state dir in KUBESIM_CLUSTER (set by the kubelet
    simulator); names found in that cluster's block resolve there, anything else is
    returned unchanged for the system resolver."""
    marker = os.environ.get("KUBESIM_CLUSTER")
    if not marker or not host or host[0].isdigit():
        return host
    begin = "# BEGIN kubesim %s" % marker
    inside = False
    try:
        with open("/etc/hosts") as f:
            for line in f:
                line = line.strip()
                if line == begin:
                    inside = True
                    continue
                if inside and line.startswith("# END kubesim"):
                    break
                if inside and line and not line.startswith("#"):
                    parts = line.split()
                    if host in parts[1:]:
                        return parts[0]
    except OSError:
        pass
    return host

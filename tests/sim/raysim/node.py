"""One simulated Ray node (head or worker) in one process.

Components are threads/servers that can be faulted one by one:
  gcs        (head)  GCS on --port (6379), line-JSON protocol (gcs.py)
  dashboard  (head)  dashboard head on --dashboard-port (8265)
  agent              dashboard agent on --dashboard-agent-listen-port (52365)
  raylet             registration + heartbeats to the GCS, and the worker port
                     (--min-worker-port, 10002) where replicas and actors run
  proxy              Serve ProxyActor on http_options.port (8000), when Serve
                     places one here
  control            the simulator's own fault/config/state endpoint
                     (RW_SIM_CONTROL_PORT, 19999)
Everything binds to the node IP: --node-ip-address, else RW_SIM_POD_IP, else
127.0.0.1.
"""

import json
import os
import signal
import sys
import threading
import time

from . import common
from .controller import ServeController
from .dashboard import DashboardAgent, DashboardHead
from .gcs import GcsClient, GcsError, GcsServer, open_store
from .httpd import FAULT_MODES, HttpComponent, Response
from .jobs import JobManager
from .proxy import ProxyRuntime, ServeView, WorkerPort
from .resp import RedisError

SIM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FATAL_CODES = ("NODE_DEAD", "NODE_UNKNOWN", "CLUSTER_ID_MISMATCH")


def jresp(status, obj):
    return Response(status, json.dumps(obj, indent=1), "application/json")


class Node:
    def __init__(self, opts):
        self.opts = opts
        self.t = common.Timings()
        self.is_head = bool(opts.get("head"))
        self.ip = opts.get("node_ip_address") or os.environ.get("RW_SIM_POD_IP") or "127.0.0.1"
        self.node_id = common.node_id()
        self.gcs_port = int(opts.get("port") or 6379)
        self.dashboard_port = int(opts.get("dashboard_port") or 8265)
        self.agent_port = int(opts.get("dashboard_agent_listen_port") or 52365)
        self.worker_port_no = int(opts.get("min_worker_port") or 10002)
        self.control_port = common.env_int("RW_SIM_CONTROL_PORT", 19999)
        self.num_cpus = float(opts["num_cpus"]) if opts.get("num_cpus") is not None else float(os.cpu_count() or 1)
        self.include_dashboard = opts.get("include_dashboard", True) is not False
        if self.is_head:
            self.gcs_address = "%s:%d" % (self.ip, self.gcs_port)
        else:
            self.gcs_address = opts["address"]
        self.session_name = time.strftime("session_%Y-%m-%d_%H-%M-%S_") + "%06d_%d" % (
            int((time.time() % 1) * 1e6), os.getpid())
        tmp = opts.get("temp_dir") or os.environ.get("RW_SIM_TMPDIR") or os.path.join("/tmp/raysim", self.ip)
        self.tmp = tmp
        self.log_dir = os.path.join(tmp, self.session_name, "logs")
        self.cluster_id = None
        self.serve = ServeView()
        self.actors = []
        self.stopping = threading.Event()
        self.exit_lock = threading.Lock()
        self.block = bool(opts.get("block"))
        # components
        self.gcs = None
        self.controller = None
        self.jobs = None
        self.dashboard = None
        self.dashboard_head = None
        self.agent = None
        self.worker = None
        self.proxy = ProxyRuntime(self)
        self.raylet_state = "down"  # up | hung | dead
        self.raylet_fault = None
        self.last_gcs_ok = time.time()
        self.control = None

    # ------------------------------------------------------------------ helpers
    def gcs_client(self, timeout=None):
        return GcsClient(self.gcs_address, self.cluster_id)

    def resources(self):
        """The node's resources as `ray start` sets them: --num-cpus, --num-gpus,
        --memory (bytes) and the --resources JSON of custom resources."""
        res = {"CPU": self.num_cpus}
        if self.opts.get("num_gpus"):
            res["GPU"] = float(self.opts["num_gpus"])
        if self.opts.get("memory"):
            res["memory"] = float(self.opts["memory"])
        try:
            custom = json.loads(self.opts.get("resources") or "{}")
        except ValueError:
            custom = {}
        if isinstance(custom, dict):
            res.update({str(k): float(v) for k, v in custom.items() if isinstance(v, (int, float))})
        return res

    def node_info(self):
        # instance_id and node_type_name: what the raylet reports from
        # RAY_CLOUD_INSTANCE_ID (the pod name) and RAY_NODE_TYPE_NAME (the group),
        # which KubeRay sets for the autoscaler (common/pod.go) and autoscaler v2
        # uses to match Ray nodes to pods.
        return {"node_id": self.node_id, "node_ip": self.ip, "node_name": self.ip, "is_head": self.is_head,
                "num_cpus": self.num_cpus, "worker_port": self.worker_port_no, "agent_port": self.agent_port,
                "resources": self.resources(), "instance_id": os.environ.get("RAY_CLOUD_INSTANCE_ID", ""),
                "node_type_name": os.environ.get("RAY_NODE_TYPE_NAME", "")}

    def fatal(self, msg, code=1):
        """Exit like a crashed raylet / `ray start --block` noticing it."""
        with self.exit_lock:
            common.log("raylet", msg)
            try:
                if self.jobs is not None:
                    self.jobs.kill_all()
            except Exception:
                pass
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(code)

    # ------------------------------------------------------------------ start
    def start(self):
        os.makedirs(self.log_dir, exist_ok=True)
        if self.is_head:
            self._start_gcs()
            self.controller = ServeController(self.gcs, {"node_id": self.node_id, "node_ip": self.ip}, self.t)
            self.gcs.hooks = self.controller
            self.jobs = JobManager(self.gcs_client(), {
                "node_id": self.node_id, "node_ip": self.ip, "agent_port": self.agent_port,
                "gcs_address": self.gcs_address, "sim_bin": os.path.join(SIM_DIR, "bin"), "sim_path": SIM_DIR,
                "pyray_path": os.path.join(SIM_DIR, "pyray"),
            }, self.t, self.log_dir)
        self._register()
        if self.is_head:
            # The dashboard's own driver takes job 1, so actors it creates end
            # with 01000000 and the first submitted job is 02000000.
            self.gcs_client().call("next_job_id", {"driver": {"dashboard": True}})
            self.jobs.recover()
        self.worker = WorkerPort(self, self.worker_port_no)
        self.worker.comp.start()
        self.agent = HttpComponent("agent", self.ip, self.agent_port, DashboardAgent(self).handle)
        self.agent.start()
        if self.is_head and self.include_dashboard:
            self.dashboard_head = DashboardHead(self)
            self.dashboard = HttpComponent("dashboard", self.ip, self.dashboard_port, self.dashboard_head.handle)
            self.dashboard.start()
        self.raylet_state = "up"
        threading.Thread(target=self._heartbeat_loop, daemon=True, name="raylet").start()
        self.control = HttpComponent("control", self.ip, self.control_port, self._control)
        try:
            self.control.start()
        except OSError as exc:
            common.log("raysim", "control endpoint not available on %s:%d: %s" % (self.ip, self.control_port, exc))
        self._write_pidfile()

    def _start_gcs(self):
        try:
            store = open_store(os.environ, self.opts.get("redis_password"), self.opts.get("redis_username"))
        except (RedisError, ValueError) as exc:
            print("Failed to start the GCS: %s" % exc, file=sys.stderr)
            raise SystemExit(1)
        self.gcs = GcsServer(self.ip, self.gcs_port, self.t, store, self.controller)
        try:
            self.gcs.start()
        except OSError as exc:
            print("Failed to start the GCS server on %s:%d: %s" % (self.ip, self.gcs_port, exc), file=sys.stderr)
            raise SystemExit(1)

    def _register(self):
        deadline = time.time() + common.env_float("RW_SIM_START_CONNECT_TIMEOUT_S", 10)
        last = None
        for _ in range(100000):
            try:
                client = GcsClient(self.gcs_address)
                rep = client.call("register_node", {"node": self.node_info()}, timeout=2.0)
                self.cluster_id = rep["cluster_id"]
                self.last_gcs_ok = time.time()
                return
            except GcsError as exc:
                last = exc
            if time.time() > deadline:
                break
            time.sleep(0.2)
        print("ConnectionError: Could not connect to the GCS at %s: %s" % (self.gcs_address, last), file=sys.stderr)
        raise SystemExit(1)

    def _write_pidfile(self):
        try:
            with open(os.path.join(self.tmp, "node.pid"), "w") as f:
                f.write(str(os.getpid()))
            latest = os.path.join(self.tmp, "session_latest")
            if os.path.islink(latest) or os.path.exists(latest):
                os.remove(latest)
            os.symlink(os.path.join(self.tmp, self.session_name), latest)
        except OSError:
            pass

    # ------------------------------------------------------------------ raylet
    def _heartbeat_loop(self):
        while not self.stopping.is_set():
            time.sleep(self.t.heartbeat_s)
            if self.raylet_state != "up":
                continue
            view = self.serve.get()
            hosted = [r["replica_id"] for app in (view.get("apps") or {}).values()
                      for dep in app["deployments"].values() for r in dep["replicas"] if r["node_id"] == self.node_id]
            report = {"proxy": self.proxy.report(), "replicas": hosted}
            try:
                rep = self.gcs_client().call("heartbeat", {"node_id": self.node_id, "report": report}, timeout=2.0)
            except GcsError as exc:
                if self.stopping.is_set() or self.raylet_state != "up":
                    continue
                if exc.code in FATAL_CODES:
                    if exc.code == "CLUSTER_ID_MISMATCH":
                        self.fatal("[raylet] The GCS at %s belongs to another cluster (%s); the raylet exits." % (
                            self.gcs_address, exc.message))
                    self.fatal("[raylet] The node with node id: %s and address: %s and node name: %s has been "
                               "marked dead because the detector has missed too many heartbeats from it. This "
                               "can happen when a (1) raylet crashes unexpectedly (OOM, etc.) (2) raylet has "
                               "lagging heartbeats due to slow network or busy workload." % (
                                   self.node_id, self.ip, self.ip))
                if time.time() - self.last_gcs_ok > self.t.gcs_rpc_server_reconnect_timeout_s:
                    self.fatal("[raylet] Failed to connect to GCS within %d seconds. GCS may have been killed. "
                               "It's either GCS is terminated by `ray stop` or is killed unexpectedly. If it is "
                               "killed unexpectedly, see the log file gcs_server.out. "
                               "https://docs.ray.io/en/master/ray-observability/user-guides/configure-logging.html"
                               "#logging-directory-structure. The program will terminate." % (
                                   self.t.gcs_rpc_server_reconnect_timeout_s))
                continue
            self.last_gcs_ok = time.time()
            if self.raylet_state != "up":
                continue
            self.actors = rep.get("actors", [])
            if "serve" not in rep:
                # A GCS without a Serve controller attached yet (a head starting
                # up): like a long poll to a controller that is not there, this
                # changes nothing; proxies and routers keep what they have.
                continue
            view = rep.get("serve") or {"running": False}
            self.serve.set(view)
            self.proxy.apply(view)

    # ------------------------------------------------------------------ faults
    def kill_raylet(self):
        """A dead raylet takes the agent, the worker port (replicas, actors) and the proxy."""
        self.raylet_state = "dead"
        self.worker.comp.stop()
        self.agent.stop()
        self.proxy.stop()
        self._monitor_death("raylet")

    def _monitor_death(self, what):
        if not (self.block and self.t.block_monitor):
            return

        def later():
            time.sleep(self.t.block_monitor_delay_s)
            if not self.t.block_monitor:
                return
            self.fatal("Some Ray subprocesses exited unexpectedly:\n  %s [exit code=1]\nRemaining processes will "
                       "be killed." % what)
        threading.Thread(target=later, daemon=True).start()

    def apply_fault(self, comp, mode, delay_ms=0, size=None, submission_id=None, sig=None):
        if comp == "jobs":
            # The Jobs REST routes of the dashboard alone (/api/jobs/...): "error"
            # answers aiohttp's 500, "slow" delays, "hang" never answers.
            if not self.is_head or self.dashboard_head is None:
                raise ValueError("no dashboard on this node")
            if mode not in ("error", "slow", "hang", "restore"):
                raise ValueError("mode %r does not apply to jobs (error, slow, hang, restore)" % (mode,))
            self.dashboard_head.jobs_fault.set(mode, delay_ms, size)
            return None
        if comp == "driver":
            # SIGKILL (or sig) to the entrypoint process group of one job, or of all.
            if not self.is_head or self.jobs is None:
                raise ValueError("no job manager on this node")
            if mode != "kill":
                raise ValueError("mode %r does not apply to driver (kill)" % (mode,))
            return self.jobs.kill_driver(submission_id, int(sig or signal.SIGKILL))
        if mode not in FAULT_MODES:
            raise ValueError("unknown mode %r (one of %s)" % (mode, ", ".join(FAULT_MODES)))
        if comp == "gcs":
            if not self.is_head:
                raise ValueError("no GCS on a worker node")
            if mode == "kill":
                self.gcs.stop()
                self._monitor_death("gcs_server")
            elif mode == "restore":
                if not self.gcs.running:
                    # A restarted GCS process: fresh state unless Redis holds it.
                    self._start_gcs()
                    self.gcs.hooks = self.controller
                    self.controller.gcs = self.gcs
                else:
                    self.gcs.fault.set(None)
            else:
                self.gcs.fault.set(mode, delay_ms, size)
            return
        if comp == "raylet":
            if mode == "kill":
                self.kill_raylet()
            elif mode == "hang":
                # Heartbeats stop and the worker port stops answering; the GCS
                # declares the node dead after its health-check threshold.
                self.raylet_state = "hung"
                self.worker.comp.fault.set("hang")
            elif mode == "restore":
                if self.raylet_state == "dead":
                    self.worker.comp.start()
                    self.agent.start()
                self.worker.comp.fault.set(None)
                self.raylet_state = "up"
            else:
                self.worker.comp.fault.set(mode, delay_ms, size)
            return
        if mode == "drain" and comp != "proxy":
            raise ValueError("mode drain applies to the proxy only")
        if comp == "proxy":
            if mode == "drain":
                # Serve's ProxyActor.update_draining(True) on this node: /-/healthz
                # and /-/routes answer 503 "This node is being drained." until restore.
                if self.proxy.comp is None or not self.proxy.comp.running:
                    raise ValueError("no running proxy on this node")
                self.proxy.drain_fault = True
                return
            if mode == "restore":
                self.proxy.drain_fault = False
            if mode == "kill":
                self.proxy.kill()
            elif self.proxy.comp is not None:
                if mode == "restore" and not self.proxy.comp.running:
                    self.proxy.comp.start()
                else:
                    self.proxy.comp.fault.set(mode, delay_ms, size)
            elif mode != "restore":
                raise ValueError("no proxy on this node")
            return
        target = {"dashboard": self.dashboard, "agent": self.agent, "worker": self.worker.comp}.get(comp)
        if target is None:
            raise ValueError("unknown component %r" % comp)
        if mode == "kill":
            target.stop()
            if comp == "agent":
                # The agent fate-shares with the raylet (ray-apis.md 1.1).
                self.kill_raylet()
            elif comp == "dashboard":
                self._monitor_death("dashboard")
        elif mode == "restore":
            if not target.running:
                target.start()
            target.fault.set(None)
        else:
            target.fault.set(mode, delay_ms, size)

    # ------------------------------------------------------------------ control endpoint
    def state(self):
        view = self.serve.get()
        replicas = []
        for app_name, app in (view.get("apps") or {}).items():
            for dep_name, dep in app["deployments"].items():
                for r in dep["replicas"]:
                    if r["node_id"] == self.node_id:
                        replicas.append({"app": app_name, "deployment": dep_name, "replica_id": r["replica_id"],
                                         "state": r["state"]})
        comps = {"raylet": {"state": self.raylet_state, "worker_port": self.worker.comp.describe()},
                 "agent": self.agent.describe(), "proxy": self.proxy.describe()}
        if self.is_head:
            comps["gcs"] = self.gcs.describe()
            comps["dashboard"] = self.dashboard.describe() if self.dashboard else {"up": False}
            if self.dashboard_head is not None:
                comps["jobs"] = self.dashboard_head.jobs_fault.describe()
        return {"node_id": self.node_id, "node_ip": self.ip, "is_head": self.is_head, "pid": os.getpid(),
                "cluster_id": self.cluster_id, "gcs_address": self.gcs_address, "num_cpus": self.num_cpus,
                "session_name": self.session_name, "components": comps, "replicas": replicas,
                "actors": [a["actor_id"] for a in self.actors], "timings": self.t.as_dict()}

    def _control(self, req):
        try:
            if req.path == "/state" and req.method == "GET":
                return jresp(200, self.state())
            if req.path == "/fault" and req.method == "POST":
                body = json.loads(req.body or b"{}")
                out = self.apply_fault(body.get("component"), body.get("mode"), body.get("delay_ms", 0),
                                       body.get("size"), body.get("submission_id"), body.get("signal"))
                rep = {"ok": True, "state": self.state()}
                if out is not None:
                    rep["killed"] = out
                return jresp(200, rep)
            if req.path == "/config" and req.method == "POST":
                body = json.loads(req.body or b"{}")
                changed = self.t.update(body)
                return jresp(200, {"ok": True, "changed": changed, "timings": self.t.as_dict()})
        except (ValueError, KeyError) as exc:
            return jresp(400, {"ok": False, "error": str(exc)})
        return jresp(404, {"ok": False, "error": "not found"})

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, reason="SIGTERM"):
        """Graceful stop: the raylet unregisters, so the GCS marks it dead at once."""
        self.stopping.set()
        t0 = time.time()
        common.trace("raysim", "shutdown-begin")
        was_up = self.raylet_state == "up"
        self.raylet_state = "stopped"
        if was_up and self.cluster_id:
            try:
                self.gcs_client().call("unregister_node", {"node_id": self.node_id, "reason": reason}, timeout=1.0)
            except GcsError:
                pass
        if self.jobs is not None:
            self.jobs.kill_all()
        for c in (self.proxy, ):
            c.stop()
        for c in (self.control, self.dashboard, self.agent, self.worker.comp if self.worker else None):
            if c is not None:
                c.stop()
        if self.gcs is not None:
            self.gcs.stop()
        common.trace("raysim", "shutdown-end", took=round(time.time() - t0, 3))

    def banner(self):
        lines = []
        lines.append("Usage stats collection is disabled.")
        lines.append("")
        lines.append("Local node IP: %s" % self.ip)
        lines.append("")
        lines.append("--------------------")
        lines.append("Ray runtime started.")
        lines.append("--------------------")
        lines.append("")
        lines.append("Next steps")
        if self.is_head:
            lines.append("  To add another node to this Ray cluster, run")
            lines.append("    ray start --address='%s'" % self.gcs_address)
            lines.append("")
            lines.append("  To connect to this Ray cluster:")
            lines.append("    import ray")
            lines.append("    ray.init()")
            lines.append("")
            if self.include_dashboard:
                lines.append("  To submit a Ray job using the Ray Jobs CLI:")
                lines.append("    RAY_API_SERVER_ADDRESS='http://%s:%d' ray job submit --working-dir . -- python "
                             "my_script.py" % (self.ip, self.dashboard_port))
                lines.append("")
                lines.append("  To view the status of the cluster, use")
                lines.append("    ray status")
                lines.append("")
                lines.append("  To monitor and debug Ray, view the dashboard at ")
                lines.append("    %s:%d" % (self.ip, self.dashboard_port))
                lines.append("")
        lines.append("  To terminate the Ray runtime, run")
        lines.append("    ray stop")
        return "\n".join(lines)


def run(opts, ready_fd=None):
    """Start a node and block until SIGTERM/SIGINT (used by `ray start`)."""
    node = Node(opts)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        node.start()
    except SystemExit as exc:
        if ready_fd is not None:
            os.write(ready_fd, b"F")
        return int(exc.code or 1)
    print(node.banner(), flush=True)
    if ready_fd is not None:
        os.write(ready_fd, b"R")
        os.close(ready_fd)
    if opts.get("block"):
        print("--block")
        print("  This command will now block forever until terminated by a signal.")
        print("  Running subprocesses are monitored and a message will be printed if any of them terminate "
              "unexpectedly. Subprocesses exit with SIGTERM will be treated as graceful, thus NOT reported.",
              flush=True)
    while not stop.wait(0.2):
        pass
    common.log("raysim", "received signal, shutting down node %s" % node.node_id)
    node.shutdown()
    return 0


def main(argv=None):
    """Background child of a non-blocking `ray start`: python3 -m raysim.node <json> <fd>."""
    argv = argv if argv is not None else sys.argv[1:]
    opts = json.loads(argv[0])
    fd = int(argv[1]) if len(argv) > 1 else None
    sys.exit(run(opts, fd))


if __name__ == "__main__":
    main()

"""Simulated Serve controller (lives on the head, like SERVE_CONTROLLER_ACTOR).

It owns applications, deployments, replicas and the ProxyActor set, and tells
every node what to host through the node's heartbeat reply (the real controller
creates actors through the GCS and pushes route tables by long poll; the
simulator folds both into the heartbeat, see docs/ray-simulator.md).

Sources: serve/_private/controller.py (_update_proxy_nodes), proxy_state.py
(states, health checks, draining), application_state.py / deployment_state.py
(statuses and triggers), schema.py (ServeInstanceDetails, exclude_unset shape);
facts as summarised in ray-apis.md sections 2 and 3.
"""

import copy
import json
import os
import threading
import time
import traceback

from . import apps as appdefs
from . import common

RUNNING_LIKE = ("STARTING", "UPDATING", "RECOVERING", "RUNNING")


class Replica:
    def __init__(self, app, dep, version):
        self.replica_id = common.replica_suffix()
        self.app = app
        self.dep = dep
        self.version = version
        self.actor_id = common.actor_id()
        self.worker_id = common.worker_id()
        self.node_id = None
        self.node_ip = None
        self.worker_port = None
        self.state = "STARTING"
        self.pid = None
        self.start_time_s = time.time()
        self.ready_at = None
        self.update_until = None

    def to_json(self):
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d):
        r = cls.__new__(cls)
        r.__dict__.update(d)
        return r

    def details(self):
        # ReplicaDetails field order of the corpus samples.
        d = {}
        if self.node_id:
            d["node_id"] = self.node_id
            d["node_ip"] = self.node_ip
        d["actor_id"] = self.actor_id
        d["actor_name"] = "SERVE_REPLICA::%s#%s#%s" % (self.app, self.dep, self.replica_id)
        if self.node_id:
            d["worker_id"] = self.worker_id
            d["log_file_path"] = "/serve/replica_%s_%s_%s.log" % (self.app, self.dep, self.replica_id)
        d["replica_id"] = self.replica_id
        d["state"] = self.state
        if self.pid:
            d["pid"] = self.pid
        d["start_time_s"] = self.start_time_s
        return d


class Deployment:
    def __init__(self, name):
        self.name = name
        self.cfg = {}
        self.version = 0
        self.status = "UPDATING"
        self.trigger = "CONFIG_UPDATE_STARTED"
        self.message = ""
        self.replicas = []
        self.pending_trigger = "CONFIG_UPDATE_COMPLETED"
        self.config_update_until = 0.0
        self.ever_healthy = False

    def target(self):
        c = self.cfg
        if c.get("autoscaling_config"):
            ac = c["autoscaling_config"]
            return int(ac.get("initial_replicas") if ac.get("initial_replicas") is not None
                       else ac.get("min_replicas", 1))
        n = c.get("num_replicas", 1)
        return 1 if n == "auto" else int(n)

    def num_cpus(self):
        return float((self.cfg.get("ray_actor_options") or {}).get("num_cpus", 1))

    def env(self):
        rt = (self.cfg.get("ray_actor_options") or {}).get("runtime_env") or {}
        return dict(rt.get("env_vars") or {})

    def to_json(self):
        d = dict(self.__dict__)
        d["replicas"] = [r.to_json() for r in self.replicas]
        return d

    @classmethod
    def from_json(cls, d):
        dep = cls.__new__(cls)
        dep.__dict__.update(d)
        dep.replicas = [Replica.from_json(r) for r in d["replicas"]]
        return dep


class Application:
    def __init__(self, name, config):
        self.name = name
        self.config = config
        self.status = "NOT_STARTED"
        self.message = ""
        self.last_deployed_time_s = time.time()
        self.build_at = None
        self.built = False
        self.module = None
        self.ingress = None
        self.deployments = {}
        self.delete_at = None
        self.was_running = False

    def to_json(self):
        d = dict(self.__dict__)
        d["deployments"] = {k: v.to_json() for k, v in self.deployments.items()}
        return d

    @classmethod
    def from_json(cls, d):
        a = cls.__new__(cls)
        a.__dict__.update(d)
        a.deployments = {k: Deployment.from_json(v) for k, v in d["deployments"].items()}
        return a


class Proxy:
    def __init__(self, node):
        self.node_id = node["node_id"]
        self.node_ip = node["node_ip"]
        self.actor_id = common.actor_id()
        self.worker_id = common.worker_id()
        self.status = "STARTING"
        self.created = time.time()
        self.generation = 1
        self.drain_start = None
        self.next_drain_check = None
        self.failures = 0
        self.restarts = 0
        self.next_health_check = None
        self.awaiting_report = False

    def details(self):
        d = {"node_id": self.node_id, "node_ip": self.node_ip, "actor_id": self.actor_id,
             "actor_name": "SERVE_PROXY_ACTOR-%s" % self.node_id}
        if self.status != "STARTING":
            # A STARTING proxy lists only node_id, node_ip, actor_id,
            # actor_name and status (ray-apis.md 2.3).
            d["worker_id"] = self.worker_id
            d["log_file_path"] = "/serve/proxy_%s.log" % self.node_ip
        d["status"] = self.status
        return d

    def to_json(self):
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d):
        p = cls.__new__(cls)
        p.__dict__.setdefault("awaiting_report", False)
        p.__dict__.update(d)
        return p

    @classmethod
    def recovered(cls, old):
        """The ProxyState a recovered controller builds for a proxy of the checkpoint.
        ProxyStateManager keeps no checkpoint (serve/_private/proxy_state.py): a new
        controller makes a fresh ProxyState per proxy node (status STARTING, no
        consecutive health-check failures, restart count 0, health-check clock from
        now) whose ActorProxyWrapper reuses the running detached proxy actor by name
        (_get_or_create_proxy_actor: ray.get_actor(name, namespace="serve")). So the
        proxy keeps serving (same generation here) and the new controller's ready
        check (ProxyActor.ready(), an actor call the live proxy answers) makes it
        HEALTHY. The simulator's only channel to a proxy is its node's heartbeat, so
        the ready check of a recovered proxy starts with its node's first report to
        this controller (awaiting_report) rather than timing out while the node's
        raylet is still finding the new GCS."""
        p = cls.__new__(cls)
        p.__dict__.update({"node_id": old.node_id, "node_ip": old.node_ip, "actor_id": old.actor_id,
                           "worker_id": old.worker_id, "status": "STARTING", "created": time.time(),
                           "generation": old.generation, "drain_start": None, "next_drain_check": None,
                           "failures": 0, "restarts": 0, "next_health_check": None, "awaiting_report": True})
        return p


DEFAULT_DEPLOYMENT_CONFIG = {
    # DeploymentConfig defaults as rendered in the corpus samples.
    "max_ongoing_requests": 5,
    "max_queued_requests": -1,
    "graceful_shutdown_wait_loop_s": 2.0,
    "graceful_shutdown_timeout_s": 20.0,
    "health_check_period_s": 10.0,
    "health_check_timeout_s": 30.0,
}

CODE_FIELDS = ("ray_actor_options", "max_replicas_per_node")
# ServeApplicationSchema field order (schema.py), as in the corpus samples.
APP_FIELD_ORDER = ("name", "route_prefix", "import_path", "runtime_env", "host", "port", "deployments", "args",
                   "logging_config")


def ordered_app_config(cfg):
    """deployed_app_config: the submitted app config, keys in schema order."""
    cfg = copy.deepcopy(cfg)
    out = {k: cfg[k] for k in APP_FIELD_ORDER if k in cfg}
    out.update({k: v for k, v in cfg.items() if k not in out})
    return out


class ServeController:
    def __init__(self, gcs, head, timings):
        self.gcs = gcs
        self.head = head  # dict with node_id, node_ip
        self.t = timings
        self.lock = threading.RLock()
        self.running = False
        self.controller_info = None
        self.proxy_location = "EveryNode"
        self.http_options = None
        self.grpc_options = None
        self.target_capacity = None
        self.apps = {}
        self.proxies = {}
        self.reports = {}
        # The running-replica sets this controller instance has broadcast over
        # long poll, per (app, deployment). A new (or recovered) controller
        # starts with none: deployment_state.py DeploymentState.__init__ sets
        # _last_broadcasted_running_replica_infos = [], and
        # broadcast_running_replicas_if_changed() only notifies when the running
        # set differs from it, so RECOVERING replicas (not RUNNING) broadcast
        # nothing and the LongPollHost never learns the key (long_poll.py).
        self.broadcast = {}
        self.dirty = False
        self.last_ckpt = 0.0
        self.stop_flag = False
        self._recover()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="serve-controller")
        self.thread.start()

    # ----------------------------------------------------------- persistence
    def _checkpoint(self):
        doc = {
            "running": self.running, "proxy_location": self.proxy_location,
            "http_options": self.http_options, "grpc_options": self.grpc_options,
            "target_capacity": self.target_capacity,
            "apps": {k: v.to_json() for k, v in self.apps.items()},
            "proxies": {k: v.to_json() for k, v in self.proxies.items()},
        }
        # The real controller checkpoints into the GCS internal KV (namespace
        # "serve"), which is what lets it recover under GCS FT.
        self.gcs.rpc_kv_put("serve", "serve-controller-checkpoint", json.dumps(doc))

    def _recover(self):
        raw = self.gcs.kv.get(("serve", "serve-controller-checkpoint"))
        if not raw:
            return
        doc = json.loads(raw)
        if not doc.get("running"):
            return
        self.running = True
        self.proxy_location = doc["proxy_location"]
        self.http_options = doc["http_options"]
        self.grpc_options = doc["grpc_options"]
        self.target_capacity = doc.get("target_capacity")
        self.apps = {k: Application.from_json(v) for k, v in doc["apps"].items()}
        self.proxies = {k: Proxy.recovered(Proxy.from_json(v)) for k, v in doc["proxies"].items()}
        self._new_controller_info()
        # Replicas of a recovered controller are RECOVERING until their node
        # answers again (deployment_state.py ReplicaState.RECOVERING).
        for app in self.apps.values():
            for dep in app.deployments.values():
                for r in dep.replicas:
                    if r.state in RUNNING_LIKE and r.node_id:
                        r.state = "RECOVERING"
        common.log("serve_controller", "Recovered %d application(s) from the GCS checkpoint" % len(self.apps))
        common.trace("serve_controller", "recovered", proxies={k: (v.node_ip, v.status) for k, v in self.proxies.items()})

    def _new_controller_info(self):
        pid = os.getpid()
        self.controller_info = {
            "node_id": self.head["node_id"], "node_ip": self.head["node_ip"],
            "actor_id": common.actor_id(), "actor_name": "SERVE_CONTROLLER_ACTOR",
            "worker_id": common.worker_id(), "log_file_path": "/serve/controller_%d.log" % pid,
        }

    # ----------------------------------------------------------- API (dashboard)
    def deploy(self, cfg):
        """serve.deploy_apps(): start Serve if needed, apply declaratively."""
        with self.lock:
            if not self.running:
                self.running = True
                self._new_controller_info()
                # HTTP options (and the proxy location) are frozen at start
                # (ray-apis.md 3.2: a later change only logs a warning).
                ho = {"host": "0.0.0.0", "port": 8000, "root_path": "", "request_timeout_s": None,
                      "keep_alive_timeout_s": 5}
                ho.update(cfg.get("http_options") or {})
                self.http_options = ho
                go = {"port": 9000, "grpc_servicer_functions": []}
                go.update(cfg.get("grpc_options") or {})
                self.grpc_options = go
                pl = cfg.get("proxy_location") or "EveryNode"
                self.proxy_location = "Disabled" if pl == "NoServer" else pl
            else:
                if cfg.get("http_options") and any(
                        self.http_options.get(k) != v for k, v in cfg["http_options"].items()):
                    common.log("serve_head", "WARNING: http_options are fixed once Serve started; "
                               "the new value is ignored (restart Serve to change them).")
            self.target_capacity = cfg.get("target_capacity")
            names = []
            for app_cfg in cfg.get("applications", []):
                name = app_cfg.get("name", "default")
                names.append(name)
                self._apply_app(name, app_cfg)
            # Declarative semantics: apps missing from the config are deleted
            # (ray-apis.md 3.2).
            for name, app in self.apps.items():
                if name not in names and app.status != "DELETING":
                    self._delete_app(app)
            self.dirty = True

    def _apply_app(self, name, app_cfg):
        now = time.time()
        app = self.apps.get(name)
        if app is not None and app.status != "DELETING" and app.config == app_cfg:
            return
        if app is None or app.status == "DELETING" or app.status == "DEPLOY_FAILED" or \
                app.config.get("import_path") != app_cfg.get("import_path") or \
                app.config.get("runtime_env") != app_cfg.get("runtime_env"):
            old = app
            app = Application(name, copy.deepcopy(app_cfg))
            if old is not None and old.status != "DELETING":
                app.deployments = old.deployments  # code change: replaced once built
            app.status = "DEPLOYING"
            app.build_at = now + self.t.serve_build_delay_s
            self.apps[name] = app
            return
        # Same code: config-only change applied to the running deployments.
        app.config = copy.deepcopy(app_cfg)
        app.last_deployed_time_s = now
        self._configure_deployments(app)

    def _delete_app(self, app):
        app.status = "DELETING"
        app.message = ""
        app.delete_at = time.time() + self.t.app_delete_delay_s
        for dep in app.deployments.values():
            dep.status = "UPDATING"
            dep.trigger = "DELETING"
            for r in dep.replicas:
                r.state = "STOPPING"

    def shutdown(self):
        """serve.shutdown(): controller, proxies and replicas go away."""
        with self.lock:
            self.running = False
            self.apps = {}
            self.proxies = {}
            self.broadcast = {}
            self.controller_info = None
            self.http_options = None
            self.dirty = True

    def details(self):
        """controller.get_serve_instance_details() with exclude_unset (ray-apis.md 3.1)."""
        with self.lock:
            if not self.running:
                return None
            out = {"controller_info": dict(self.controller_info), "proxy_location": self.proxy_location,
                   "http_options": dict(self.http_options), "grpc_options": dict(self.grpc_options),
                   "proxies": {nid: p.details() for nid, p in self.proxies.items()}, "applications": {}}
            for name, app in self.apps.items():
                out["applications"][name] = self._app_details(app)
            out["target_capacity"] = self.target_capacity
            return out

    def _app_details(self, app):
        exposed = app.built and app.status not in ("DEPLOY_FAILED", "DELETING")
        rp = app.config.get("route_prefix", "/") if exposed else None
        d = {"name": app.name, "route_prefix": rp, "docs_path": None, "status": app.status,
             "message": app.message, "last_deployed_time_s": app.last_deployed_time_s,
             "deployed_app_config": ordered_app_config(app.config), "deployments": {}}
        for dep in app.deployments.values():
            dc = {"name": dep.name}
            for k in ("num_replicas", "autoscaling_config"):
                if k in dep.cfg:
                    dc[k] = dep.cfg[k]
            for k in ("max_ongoing_requests", "max_queued_requests", "user_config",
                      "graceful_shutdown_wait_loop_s", "graceful_shutdown_timeout_s",
                      "health_check_period_s", "health_check_timeout_s", "ray_actor_options"):
                dc[k] = dep.cfg.get(k)
            d["deployments"][dep.name] = {
                "name": dep.name, "status": dep.status, "status_trigger": dep.trigger, "message": dep.message,
                "deployment_config": dc, "target_num_replicas": dep.target(),
                "replicas": [r.details() for r in dep.replicas if r.state != "STOPPING"],
            }
        return d

    # ----------------------------------------------------------- build / configure
    def _build(self, app):
        definition = appdefs.resolve(app.config["import_path"])
        if definition is None:
            mod = appdefs.missing_module(app.config["import_path"])
            app.status = "DEPLOY_FAILED"
            app.message = (
                "Deploying app '%s' failed with exception:\nTraceback (most recent call last):\n"
                '  File "/home/ray/anaconda3/lib/python3.11/site-packages/ray/serve/_private/application_state.py",'
                " line 1181, in build_serve_application\n"
                "    app = call_user_app_builder_with_args_if_necessary(import_attr(import_path), args)\n"
                '  File "/home/ray/anaconda3/lib/python3.11/site-packages/ray/_private/utils.py", line 1123, in import_attr\n'
                "    module = importlib.import_module(module_name)\n"
                '  File "/home/ray/anaconda3/lib/python3.11/importlib/__init__.py", line 126, in import_module\n'
                "    return _bootstrap._gcd_import(name[level:], package, level)\n"
                "ModuleNotFoundError: No module named '%s'\n" % (app.name, mod))
            for dep in app.deployments.values():
                for r in dep.replicas:
                    r.state = "STOPPING"
            app.deployments = {}
            return
        known = [d["name"] for d in definition["deployments"]]
        for dcfg in app.config.get("deployments", []) or []:
            if dcfg.get("name") not in known:
                app.status = "DEPLOY_FAILED"
                app.message = ("Deploying app '%s' failed with exception:\nTraceback (most recent call last):\n"
                               '  File "/home/ray/anaconda3/lib/python3.11/site-packages/ray/serve/_private/'
                               'application_state.py", line 1201, in build_serve_application\n'
                               "    raise ValueError(\nValueError: Got config override for nonexistent deployment "
                               "'%s'\n" % (app.name, dcfg.get("name")))
                app.deployments = {}
                return
        app.module = definition["module"]
        app.ingress = [d["name"] for d in definition["deployments"] if d["ingress"]][0]
        app.built = True
        old = app.deployments
        app.deployments = {}
        for d in definition["deployments"]:
            dep = old.get(d["name"]) or Deployment(d["name"])
            if d["name"] in old:
                dep.version += 1  # new code: replicas get replaced (rolling)
            app.deployments[d["name"]] = dep
        for name, dep in old.items():
            if name not in app.deployments:
                for r in dep.replicas:
                    r.state = "STOPPING"
        self._configure_deployments(app, definition)

    def _configure_deployments(self, app, definition=None):
        definition = definition or appdefs.resolve(app.config["import_path"])
        if definition is None or not app.built:
            return
        overrides = {d.get("name"): d for d in app.config.get("deployments", []) or []}
        app_env = app.config.get("runtime_env") or {}
        any_change = False
        for ddef in definition["deployments"]:
            dep = app.deployments[ddef["name"]]
            ov = overrides.get(ddef["name"], {})
            cfg = {"name": ddef["name"]}
            if "autoscaling_config" in ov and ov["autoscaling_config"] is not None:
                cfg["autoscaling_config"] = ov["autoscaling_config"]
            else:
                cfg["num_replicas"] = ov.get("num_replicas", ddef["num_replicas"])
            for k, v in DEFAULT_DEPLOYMENT_CONFIG.items():
                cfg[k] = ov.get(k, v)
            if "max_concurrent_queries" in ov and "max_ongoing_requests" not in ov:
                cfg["max_ongoing_requests"] = ov["max_concurrent_queries"]
            cfg["user_config"] = ov["user_config"] if "user_config" in ov else ddef["user_config"]
            # The config's ray_actor_options replace the code's entirely; the
            # app runtime_env is merged under the actor's own runtime_env.
            rao = copy.deepcopy(ov["ray_actor_options"] if ov.get("ray_actor_options") is not None
                                else ddef["ray_actor_options"])
            actor_env = rao.pop("runtime_env", None) or {}
            merged = copy.deepcopy(app_env)
            for k, v in actor_env.items():
                if k == "env_vars":
                    ev = dict(merged.get("env_vars") or {})
                    ev.update(v)
                    merged["env_vars"] = ev
                else:
                    merged[k] = v
            out = {"runtime_env": merged}
            out["num_cpus"] = float(rao.pop("num_cpus", 1))
            out.update(rao)
            cfg["ray_actor_options"] = out
            if ov.get("max_replicas_per_node") is not None:
                cfg["max_replicas_per_node"] = ov["max_replicas_per_node"]
            prev = dep.cfg
            if prev == cfg:
                continue
            any_change = True
            code_changed = prev and any(prev.get(k) != cfg.get(k) for k in CODE_FIELDS)
            prev_target = dep.target() if prev else None
            dep.cfg = cfg
            if code_changed:
                dep.version += 1
                dep.status, dep.trigger = "UPDATING", "CONFIG_UPDATE_STARTED"
                dep.pending_trigger = "CONFIG_UPDATE_COMPLETED"
            elif prev and prev.get("user_config") != cfg.get("user_config"):
                # user_config is applied in place through reconfigure(): the
                # replicas stay, briefly UPDATING (deployment_state.py).
                dep.status, dep.trigger = "UPDATING", "CONFIG_UPDATE_STARTED"
                dep.pending_trigger = "CONFIG_UPDATE_COMPLETED"
                dep.config_update_until = time.time() + self.t.config_update_delay_s
                for r in dep.replicas:
                    if r.state == "RUNNING":
                        r.state = "UPDATING"
                        r.update_until = dep.config_update_until
            elif prev and prev_target != dep.target():
                up = dep.target() > prev_target
                dep.status = "UPSCALING" if up else "DOWNSCALING"
                dep.trigger = "CONFIG_UPDATE_STARTED"
                dep.pending_trigger = "UPSCALE_COMPLETED" if up else "DOWNSCALE_COMPLETED"
            elif not prev:
                dep.status, dep.trigger = "UPDATING", "CONFIG_UPDATE_STARTED"
                dep.pending_trigger = "CONFIG_UPDATE_COMPLETED"
        if any_change and app.status == "RUNNING":
            app.status = "DEPLOYING"
            app.was_running = True

    # ----------------------------------------------------------- control loop
    def _loop(self):
        while not self.stop_flag:
            time.sleep(self.t.controller_tick_s)
            if not self.gcs.running or self.gcs.fault.mode == "hang":
                continue  # the controller cannot reach the GCS: nothing moves
            try:
                with self.lock:
                    if self.running:
                        self._tick()
                    if self.dirty and time.time() - self.last_ckpt > 0.2:
                        self._checkpoint()
                        self.dirty = False
                        self.last_ckpt = time.time()
            except Exception:
                common.log("serve_controller", "control loop error:\n" + traceback.format_exc())

    def usage(self):
        out = {}
        with self.lock:
            for app in self.apps.values():
                for dep in app.deployments.values():
                    for r in dep.replicas:
                        if r.node_id and r.state != "STOPPING":
                            out[r.node_id] = out.get(r.node_id, 0.0) + dep.num_cpus()
        return out

    def _tick(self):
        now = time.time()
        alive = {n["node_id"]: n for n in self.gcs.alive_nodes()}
        for name in list(self.apps):
            app = self.apps[name]
            if app.status == "DELETING":
                if now >= app.delete_at:
                    del self.apps[name]
                    self.dirty = True
                continue
            if app.build_at is not None and now >= app.build_at:
                app.build_at = None
                self._build(app)
                self.dirty = True
            for dep in app.deployments.values():
                if self._reconcile_deployment(app, dep, alive, now):
                    self.dirty = True
            if app.built and app.status not in ("DEPLOY_FAILED",):
                self._update_app_status(app)
        self._reconcile_proxies(alive, now)

    def _reconcile_deployment(self, app, dep, alive, now):
        changed = False
        lost = False
        # Replicas on dead nodes are gone (the actor died with its node).
        for r in list(dep.replicas):
            if r.node_id and r.node_id not in alive:
                dep.replicas.remove(r)
                changed = True
                if r.state in ("RUNNING", "UPDATING") and r.version == dep.version:
                    lost = True
            elif r.state == "STOPPING":
                dep.replicas.remove(r)
                changed = True
        if lost and dep.status == "HEALTHY":
            # deployment_state.py: a replica that fails its health check (its
            # actor died) makes the deployment UNHEALTHY until replaced.
            dep.status, dep.trigger = "UNHEALTHY", "HEALTH_CHECK_FAILED"
            dep.message = ("A replica's health check failed. This deployment will be UNHEALTHY until the "
                           "replica recovers or a new deploy happens.")
            dep.pending_trigger = "UNSPECIFIED"
        # Recovered replicas whose node is back report as RUNNING again.
        for r in dep.replicas:
            if r.state == "RECOVERING" and r.node_id in alive:
                rep = self.reports.get(r.node_id)
                if rep and rep.get("t", 0) > now - 2 * max(self.t.heartbeat_s, 0.05) - 1:
                    r.state = "RUNNING"
                    changed = True
            if r.state == "STARTING" and r.node_id and r.ready_at is not None and now >= r.ready_at and \
                    r.replica_id in ((self.reports.get(r.node_id) or {}).get("replicas") or ()):
                # The replica actor is up once its node reports hosting it.
                r.state = "RUNNING"
                r.pid = r.pid or (1000 + int.from_bytes(os.urandom(2), "little") % 30000)
                changed = True
            if r.state == "UPDATING" and r.update_until is not None and now >= r.update_until:
                r.state = "RUNNING"
                changed = True
        target = dep.target()
        if not app.built:
            return changed
        current = [r for r in dep.replicas if r.version == dep.version and r.state != "STOPPING"]
        old = [r for r in dep.replicas if r.version != dep.version and r.state != "STOPPING"]
        # Scale the current version to the target.
        while len(current) < target:
            r = Replica(app.name, dep.name, dep.version)
            dep.replicas.append(r)
            current.append(r)
            changed = True
        if len(current) > target:
            # Stop not-yet-running replicas first, then the newest.
            extra = sorted(current, key=lambda x: (x.state == "RUNNING", -x.start_time_s))[:len(current) - target]
            for r in extra:
                r.state = "STOPPING"
                changed = True
        # Rolling update: an old replica stops for each new one running.
        running_new = len([r for r in current if r.state == "RUNNING"])
        keep_old = max(0, target - running_new)
        for r in sorted(old, key=lambda x: x.start_time_s)[:max(0, len(old) - keep_old)]:
            r.state = "STOPPING"
            changed = True
        # Place unplaced replicas.
        for r in dep.replicas:
            if r.node_id is None and r.state == "STARTING":
                node = self._place(dep, alive)
                if node is not None:
                    r.node_id, r.node_ip = node["node_id"], node["node_ip"]
                    r.worker_port = node.get("worker_port")
                    r.ready_at = now + self.t.replica_start_delay_s
                    changed = True
        # Status.
        active = [r for r in dep.replicas if r.state != "STOPPING"]
        all_running = (len([r for r in active if r.state == "RUNNING" and r.version == dep.version]) == target
                       and len(active) == target)
        if all_running and now >= dep.config_update_until:
            if dep.status != "HEALTHY":
                dep.status = "HEALTHY"
                dep.trigger = dep.pending_trigger if dep.pending_trigger != "UNSPECIFIED" else "CONFIG_UPDATE_COMPLETED"
                dep.message = ""
                dep.ever_healthy = True
                changed = True
        elif dep.status == "HEALTHY":
            dep.status = "UPDATING"
            dep.trigger = "CONFIG_UPDATE_STARTED"
            changed = True
        return changed

    def _place(self, dep, alive):
        """Spread placement honouring CPUs and max_replicas_per_node."""
        usage = self.usage()
        actors = self.gcs.actor_usage()
        need = dep.num_cpus()
        limit = dep.cfg.get("max_replicas_per_node")
        best = None
        best_key = None
        for nid, node in alive.items():
            free = float(node.get("num_cpus", 0)) - usage.get(nid, 0.0) - actors.get(nid, 0.0)
            if free + 1e-9 < need:
                continue
            mine = len([r for r in dep.replicas if r.node_id == nid and r.state != "STOPPING"])
            if limit is not None and mine >= limit:
                continue
            key = (mine, -free, node["node_ip"])
            if best_key is None or key < best_key:
                best, best_key = node, key
        return best

    def _update_app_status(self, app):
        deps = list(app.deployments.values())
        old = app.status
        if any(d.status == "UNHEALTHY" for d in deps):
            app.status = "UNHEALTHY"
            bad = [d.name for d in deps if d.status == "UNHEALTHY"]
            app.message = "The deployments %s are UNHEALTHY." % bad
        elif all(d.status == "HEALTHY" for d in deps):
            app.status = "RUNNING"
            app.message = ""
            app.was_running = True
        elif app.status in ("RUNNING", "UNHEALTHY") and not app.was_running:
            app.status = "DEPLOYING"
        elif app.status == "UNHEALTHY":
            app.status = "DEPLOYING" if not app.was_running else "RUNNING"
        if old != app.status:
            self.dirty = True

    def _reconcile_proxies(self, alive, now):
        # controller._update_proxy_nodes + ProxyStateManager.update
        # (ray-apis.md 2.2): nodes with STARTING/UPDATING/RECOVERING/RUNNING
        # replicas, plus the head; only alive nodes; HeadOnly / Disabled.
        targets = set()
        if self.proxy_location != "Disabled":
            targets.add(self.head["node_id"])
            if self.proxy_location == "EveryNode":
                for app in self.apps.values():
                    for dep in app.deployments.values():
                        for r in dep.replicas:
                            if r.node_id and r.state in RUNNING_LIKE:
                                targets.add(r.node_id)
        targets &= set(alive)
        for nid in targets:
            if nid not in self.proxies:
                self.proxies[nid] = Proxy(alive[nid])
                self.dirty = True
        for nid in list(self.proxies):
            p = self.proxies[nid]
            if nid not in alive:
                common.trace("serve_controller", "proxy-removed-node-not-alive", node=p.node_ip)
                del self.proxies[nid]
                self.dirty = True
                continue
            rep = self.reports.get(nid) or {}
            pr = rep.get("proxy") or {}
            if p.status == "STARTING" and p.awaiting_report:
                if not rep:
                    continue
                p.awaiting_report = False
                p.created = now
            if p.status == "STARTING":
                if pr.get("generation") == p.generation and pr.get("up") and pr.get("ok") and \
                        now - p.created >= self.t.proxy_start_delay_s:
                    p.status = "HEALTHY"
                    p.next_health_check = now + self.t.proxy_health_check_period_s
                    self.dirty = True
                elif now - p.created > self.t.proxy_ready_check_timeout_s * (p.restarts + 1):
                    # The ready check timed out ((restarts+1) x
                    # PROXY_READY_CHECK_TIMEOUT_S): UNHEALTHY, restarted.
                    self._restart_proxy(nid, p, alive, "ready check timed out")
                continue
            if p.status == "HEALTHY" and nid not in targets:
                # update_draining(True): 503 "This node is being drained."
                common.trace("serve_controller", "proxy-draining", node=p.node_ip,
                             reps=[(r.replica_id, r.state, r.node_ip) for a in self.apps.values()
                                   for d in a.deployments.values() for r in d.replicas])
                p.status = "DRAINING"
                p.drain_start = now
                p.next_drain_check = now + self.t.proxy_drain_check_period_s
                self.dirty = True
            elif p.status == "DRAINING" and nid in targets:
                p.status = "HEALTHY"
                p.drain_start = None
                self.dirty = True
            elif p.status == "DRAINING" and now >= p.next_drain_check:
                p.next_drain_check = now + self.t.proxy_drain_check_period_s
                # is_drained(): no ongoing requests and the drain lasted more
                # than PROXY_MIN_DRAINING_PERIOD_S (ray-apis.md 2.3).
                if pr.get("ongoing", 0) == 0 and now - p.drain_start > self.t.proxy_min_draining_period_s:
                    common.log("serve_controller", "Proxy on node %s DRAINED; stopping it" % nid)
                    del self.proxies[nid]
                    self.dirty = True
                    continue
            # Health checks every PROXY_HEALTH_CHECK_PERIOD_S; the unhealthy
            # threshold of consecutive failures makes it UNHEALTHY, and the
            # controller restarts it.
            if p.next_health_check is not None and now >= p.next_health_check:
                p.next_health_check = now + self.t.proxy_health_check_period_s
                ok = pr.get("generation") == p.generation and pr.get("up") and pr.get("ok")
                p.failures = 0 if ok else p.failures + 1
                if p.failures >= self.t.proxy_health_check_unhealthy_threshold:
                    self._restart_proxy(nid, p, alive, "%d failed health checks" % p.failures)

    def _restart_proxy(self, nid, p, alive, why):
        common.trace("serve_controller", "proxy-restart", node=p.node_ip, why=why)
        common.log("serve_controller", "Proxy on node %s UNHEALTHY (%s); restarting it" % (nid, why))
        newp = Proxy(alive[nid])
        newp.generation = p.generation + 1
        newp.restarts = p.restarts + 1
        self.proxies[nid] = newp
        self.dirty = True

    # ----------------------------------------------------------- heartbeat hook
    def on_heartbeat(self, node, report):
        """Called by the GCS for every raylet heartbeat; returns the node's Serve view."""
        with self.lock:
            rep = dict(report)
            rep["t"] = time.time()
            self.reports[node["node_id"]] = rep
            return {"serve": self.node_view(node["node_id"])}

    def _broadcast_running(self):
        """DeploymentState.broadcast_running_replicas_if_changed for every
        deployment (deployment_state.py): the set of running replicas is
        published only when it differs from the last set this controller
        published (initially empty). The simulator counts UPDATING replicas as
        running, as its request routing always did."""
        seen = set()
        for app in self.apps.values():
            for dep in app.deployments.values():
                key = (app.name, dep.name)
                seen.add(key)
                running = [{"replica_id": r.replica_id, "node_id": r.node_id, "node_ip": r.node_ip,
                            "worker_port": r.worker_port}
                           for r in dep.replicas if r.node_id and r.state in ("RUNNING", "UPDATING")]
                last = self.broadcast.get(key, [])
                if [r["replica_id"] for r in running] != [r["replica_id"] for r in last]:
                    self.broadcast[key] = running
        for key in list(self.broadcast):
            if key not in seen:
                del self.broadcast[key]

    def node_view(self, node_id):
        if not self.running:
            return {"running": False}
        self._broadcast_running()
        p = self.proxies.get(node_id)
        proxy = None
        if p is not None:
            proxy = {"status": p.status, "generation": p.generation}
        routes = {}
        apps = {}
        for app in self.apps.values():
            if not app.built or app.status in ("DEPLOY_FAILED", "DELETING"):
                continue
            routes[app.config.get("route_prefix", "/")] = app.name
            deps = {}
            for dep in app.deployments.values():
                deps[dep.name] = {
                    "user_config": dep.cfg.get("user_config"), "env": dep.env(),
                    "replicas": [{"replica_id": r.replica_id, "node_id": r.node_id, "node_ip": r.node_ip,
                                  "worker_port": r.worker_port, "state": r.state}
                                 for r in dep.replicas if r.node_id and r.state != "STOPPING"],
                    # What a router holding a long-poll snapshot receives: the
                    # last broadcast set, or None when this controller has not
                    # broadcast one yet (the router keeps what it had, since
                    # LongPollHost.listen_for_change ignores keys it does not
                    # know and notify_changed is what first creates them).
                    "targets": self.broadcast.get((app.name, dep.name)),
                }
            apps[app.name] = {"module": app.module, "ingress": app.ingress, "deployments": deps}
        return {"running": True, "http_port": self.http_options.get("port", 8000),
                "root_path": self.http_options.get("root_path", ""), "proxy": proxy,
                "routes": routes, "apps": apps}

"""Serve HTTP proxy (ProxyActor) and the replica host (the node's worker port).

Proxy behaviour follows serve/_private/proxy.py and proxy_router.py as
summarised in ray-apis.md 2.1: /-/healthz and /-/routes match exactly (any
method, query ignored), checks in the order draining -> route table not
populated -> (worker proxies only) no running replica yet; unmatched paths get
404 "Path '<path>' not found. Ping http://.../-/routes for available routes.";
uvicorn-style headers with x-request-id.

Requests are executed by a replica on the node that holds it: the proxy
forwards to that node's worker port (internal, documented in
docs/ray-simulator.md), so a dead node really fails the requests routed to it.
"""

import http.client
import itertools
import json
import threading
import time

from . import apps as appdefs
from . import common
from .httpd import HttpComponent, Response, text


class WorkerCallError(Exception):
    pass


def call_worker(node_ip, port, path, payload, timeout=10.0):
    """POST a JSON payload to a node's worker port; returns the decoded reply."""
    conn = http.client.HTTPConnection(node_ip, port, timeout=timeout)
    try:
        body = json.dumps(payload).encode()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise WorkerCallError("ActorDiedError: the actor died unexpectedly before finishing this task "
                              "(%s:%d unreachable: %s)" % (node_ip, port, exc))
    finally:
        conn.close()
    try:
        doc = json.loads(data)
    except ValueError:
        raise WorkerCallError("RayActorError: malformed reply from %s:%d" % (node_ip, port))
    if resp.status != 200:
        raise WorkerCallError(doc.get("error", "error %d" % resp.status))
    return doc


class ServeView:
    """A node's cached copy of the controller's view (kept while the head is down).

    `routing` models the routers (DeploymentHandles) on this node, the proxy's
    and the replicas': per (app, deployment) the running-replica set last
    received over long poll. It changes only when the controller has broadcast
    a set (the view's "targets"); while a new controller recovers and has not
    broadcast yet, the routers keep the set they had (long_poll.py: the host
    ignores snapshot ids of keys it does not know, so the client's poll just
    waits), and requests keep going to replicas that are still alive."""

    def __init__(self):
        self.lock = threading.Lock()
        self.view = {"running": False}
        self.routing = {}
        self.rr = itertools.count()

    def set(self, view):
        with self.lock:
            routing = {}
            if view.get("running"):
                for app_name, app in (view.get("apps") or {}).items():
                    for dep_name, dep in (app.get("deployments") or {}).items():
                        key = (app_name, dep_name)
                        targets = dep.get("targets")
                        if targets is not None:
                            routing[key] = list(targets)
                        elif key in self.routing:
                            routing[key] = self.routing[key]
            self.routing = routing
            self.view = view

    def get(self):
        with self.lock:
            return self.view

    def targets(self, app, dep):
        """The running replicas a router on this node knows for (app, dep), or None."""
        with self.lock:
            return self.routing.get((app, dep))

    def pick(self, app, dep):
        cands = self.targets(app, dep)
        if not cands:
            return None
        return cands[next(self.rr) % len(cands)]


class ProxyRuntime:
    def __init__(self, node):
        self.node = node
        self.comp = None
        self.generation = None
        self.draining = False
        self.drain_fault = False  # fault "drain": Serve's update_draining(True) by hand
        self.populated = False
        # Ingress handles that have received a non-empty replica set at least
        # once (router.py AsyncioRouter._running_replicas_populated, a latch
        # that never turns back); reset when the proxy actor restarts.
        self.replicas_populated = set()
        self.routes = {}
        self.ongoing = 0
        self.lock = threading.Lock()

    # ---- lifecycle driven by the controller's view
    def apply(self, view):
        prox = view.get("proxy") if view.get("running") else None
        if prox is None:
            if self.comp is not None:
                common.trace("proxy", "stop", why="no proxy in view", running=view.get("running"))
            self.stop()
            self.generation = None
            return
        if self.generation != prox["generation"] or self.comp is None:
            common.trace("proxy", "start", old=self.generation, new=prox["generation"], had=self.comp is not None)
            self.stop()
            self.generation = prox["generation"]
            self.populated = False
            self.replicas_populated = set()
            self.comp = HttpComponent("proxy", self.node.ip, view.get("http_port", 8000), self.handle, style="uvicorn")
            try:
                self.comp.start()
                common.log("proxy", "Proxy starting on node %s (HTTP port %d)" % (self.node.node_id, self.comp.port))
            except OSError as exc:
                common.log("proxy", "Proxy failed to bind: %s" % exc)
                self.comp = None
                return
        if self.draining != (prox["status"] == "DRAINING"):
            common.trace("proxy", "draining", now=prox["status"])
        self.draining = prox["status"] == "DRAINING"
        if view.get("routes"):
            self.populated = True
        self.routes = dict(view.get("routes") or {})

    def stop(self):
        if self.comp is not None:
            self.comp.stop()
            self.comp = None

    def kill(self):
        """Fault: the proxy actor dies; the port refuses until Serve restarts it."""
        if self.comp is not None:
            self.comp.stop()

    def report(self):
        up = self.comp is not None and self.comp.running
        ok = up and self.comp.fault.mode not in ("hang",)
        return {"generation": self.generation, "up": up, "ok": ok, "ongoing": self.ongoing,
                "draining": self.draining or self.drain_fault}

    def describe(self):
        d = {"generation": self.generation, "draining": self.draining or self.drain_fault,
             "drain_fault": self.drain_fault, "route_table_populated": self.populated,
             "routes": self.routes, "ongoing": self.ongoing}
        d.update(self.comp.describe() if self.comp is not None else {"up": False})
        return d

    # ---- request handling
    def _ready(self):
        # ProxyRouter.ready_for_traffic + draining check (ray-apis.md 2.1).
        if self.draining or self.drain_fault:
            return "This node is being drained."
        if not self.populated:
            return "Route table is not populated yet."
        if not self.node.is_head:
            # proxy_router.py: ready once any ingress handle's
            # running_replicas_populated() is true, which latches on the first
            # non-empty set (router.py); handles of removed routes are dropped.
            view = self.node.serve.get()
            keys = {(name, app["ingress"]) for name, app in (view.get("apps") or {}).items()}
            self.replicas_populated &= keys
            for key in keys:
                if self.node.serve.targets(*key):
                    self.replicas_populated.add(key)
            if not self.replicas_populated:
                return "No replicas are available yet."
        return None

    def handle(self, req):
        view = self.node.serve.get()
        root = view.get("root_path", "") or ""
        path = req.path[len(root):] if root and req.path.startswith(root) else req.path
        if path in ("/-/healthz", "/-/routes"):
            reason = self._ready()
            if reason is not None:
                return text(503, reason)
            if path == "/-/healthz":
                return text(200, "success")
            return Response(200, common.dumps_min(self.routes), "application/json")
        app = self._match(path)
        if app is None:
            return text(404, "Path '%s' not found. Ping http://.../-/routes for available routes." % path)
        with self.lock:
            self.ongoing += 1
        try:
            return self._forward(app, req)
        finally:
            with self.lock:
                self.ongoing -= 1

    def _match(self, path):
        best = None
        for prefix, app in self.routes.items():
            if prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                if best is None or len(prefix) > len(best[0]):
                    best = (prefix, app)
        return best[1] if best else None

    def _forward(self, app_name, req):
        deadline = time.time() + self.node.t.request_wait_s
        for _ in range(100000):
            view = self.node.serve.get()
            app = (view.get("apps") or {}).get(app_name)
            if app is None:
                return text(404, "Path '%s' not found. Ping http://.../-/routes for available routes." % req.path)
            rep = self.node.serve.pick(app_name, app["ingress"])
            if rep is not None:
                break
            if time.time() > deadline:
                return text(503, "Service Unavailable")
            time.sleep(0.05)
        try:
            args = json.loads(req.body) if req.body else None
        except ValueError:
            args = None
        try:
            doc = call_worker(rep["node_ip"], rep["worker_port"], "/replica/%s/__call__" % rep["replica_id"],
                              {"app": app_name, "deployment": app["ingress"], "args": args,
                               "raw": req.body.decode("utf-8", "replace")})
        except WorkerCallError as exc:
            common.trace("proxy", "replica-call-failed", replica=rep["replica_id"], err=str(exc)[:200])
            common.log("proxy", "request to replica %s failed: %s" % (rep["replica_id"], exc))
            return text(500, "Internal Server Error")
        ctype, body = appdefs.render(doc["result"])
        return Response(200, body, ctype)


class WorkerPort:
    """The node's worker port: runs replica methods and detached actor methods."""

    def __init__(self, node, port):
        self.node = node
        self.comp = HttpComponent("worker", node.ip, port, self.handle)
        self.actor_state = {}
        self.lock = threading.Lock()

    def handle(self, req):
        parts = req.path.strip("/").split("/")
        try:
            payload = json.loads(req.body) if req.body else {}
        except ValueError:
            payload = {}
        if req.method == "POST" and len(parts) == 3 and parts[0] == "replica":
            return self._replica(parts[1], parts[2], payload)
        if req.method == "POST" and len(parts) == 3 and parts[0] == "actor":
            return self._actor(parts[1], parts[2], payload)
        return Response(404, json.dumps({"error": "not found"}), "application/json")

    def _local_replica(self, rid):
        view = self.node.serve.get()
        for app_name, app in (view.get("apps") or {}).items():
            for dep_name, dep in app["deployments"].items():
                for r in dep["replicas"]:
                    if r["replica_id"] == rid and r["node_id"] == self.node.node_id:
                        return app_name, app, dep_name, dep, r
        return None

    def _replica(self, rid, method, payload):
        found = self._local_replica(rid)
        if found is None:
            return Response(410, json.dumps({"error": "ActorDiedError: replica %s is not on this node" % rid}),
                            "application/json")
        app_name, app, dep_name, dep, r = found

        def handle_call(target_dep, target_method, args):
            # A DeploymentHandle call waits for a running replica (the router
            # queues it) rather than failing.
            deadline = time.time() + self.node.t.request_wait_s
            rep = self.node.serve.pick(app_name, target_dep)
            while rep is None and time.time() < deadline:
                time.sleep(0.05)
                rep = self.node.serve.pick(app_name, target_dep)
            if rep is None:
                raise appdefs.AppError("no running replica of %s" % target_dep)
            doc = call_worker(rep["node_ip"], rep["worker_port"], "/replica/%s/%s" % (rep["replica_id"], target_method),
                              {"app": app_name, "deployment": target_dep, "args": args})
            return doc["result"]

        try:
            result = appdefs.call(app["module"], dep_name, method, payload.get("args"), dep.get("user_config"),
                                  dep.get("env") or {}, handle_call)
        except (appdefs.AppError, WorkerCallError) as exc:
            return Response(500, json.dumps({"error": str(exc)}), "application/json")
        return Response(200, json.dumps({"result": result}), "application/json")

    def _actor(self, aid, method, payload):
        hosted = {a["actor_id"]: a for a in self.node.actors}
        if aid not in hosted:
            return Response(410, json.dumps({"error": "ActorDiedError: actor %s is not on this node" % aid}),
                            "application/json")
        with self.lock:
            st = self.actor_state.setdefault(aid, {"value": 0})
            # The Counter of the GCS FT walkthrough (detached_actor.py).
            if method == "increment":
                st["value"] += 1
                return Response(200, json.dumps({"result": st["value"]}), "application/json")
            if method == "get":
                return Response(200, json.dumps({"result": st["value"]}), "application/json")
        return Response(500, json.dumps({"error": "AttributeError: 'Counter' has no method '%s'" % method}),
                        "application/json")

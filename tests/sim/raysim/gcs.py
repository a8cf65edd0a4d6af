"""Simulated GCS: node table, health checks, internal KV, actors, job counter.

Wire protocol (internal to the simulator, see docs/ray-simulator.md): the real
GCS speaks gRPC on 6379 (ray-apis.md 0.1, 5); the simulator speaks
line-delimited JSON over TCP on the same port, one request line and one
response line per exchange, so it survives any plain TCP forwarder (the
service proxy of the Kubernetes simulator):

    -> {"id": 1, "method": "check_alive", "cluster_id": "<hex>|null", "params": {...}}\\n
    <- {"id": 1, "ok": true, "result": ...}\\n
    <- {"id": 1, "ok": false, "code": "NOT_FOUND", "error": "..."}\\n

Storage: without RAY_REDIS_ADDRESS everything lives in memory and dies with the
head. With it, every table is written through to Redis under Ray's current key
schema (redis_store_client.h after ray PR #46861, ray-apis.md section 5): one
HASH per table named "RAY<ns>@<TABLE>" (NODE, ACTOR, JOB, KV, ...) and the
string key "RAY<ns>@JobCounter" bumped with INCRBY 1. KV hash fields are
"@namespace_<kvns>:<key>" (or the bare key for an empty namespace). Values are
JSON documents where Ray stores serialized protobufs (a documented difference:
only the key layout is Ray's).
"""

import json
import os
import socket
import socketserver
import threading
import time

from . import common
from .httpd import FaultState
from .resp import Redis, RedisError, parse_address

# A lease request not refreshed for this long is dropped from the demand (its
# client is gone); clients refresh every LEASE_POLL_S (pyray).
PENDING_TTL_S = 2.0
# commands.py AUTOSCALER_RESOURCE_REQUEST_CHANNEL (ray_constants), the v1 KV key
# request_resources() writes.
AUTOSCALER_RESOURCE_REQUEST_KEY = "autoscaler_resource_request"

TABLES = ("JOB", "ACTOR", "ACTOR_TASK_SPEC", "PLACEMENT_GROUP", "NODE", "WORKERS", "KV")


class GcsError(Exception):
    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- storage


class MemoryStore:
    def __init__(self):
        self.tables = {t: {} for t in TABLES}
        self.counter = 0

    def put(self, table, key, value):
        self.tables[table][key] = value

    def delete(self, table, key):
        self.tables[table].pop(key, None)

    def load(self, table):
        return dict(self.tables[table])

    def incr_job_counter(self):
        self.counter += 1
        return self.counter

    def describe(self):
        return {"backend": "memory"}


class RedisStore:
    """Write-through persistence in Redis, Ray's current layout (ray-apis.md 5)."""

    def __init__(self, address, namespace, password=None, username=None):
        if "@" in namespace:
            # RayConfig external_storage_namespace must not contain '@'.
            raise ValueError("RAY_external_storage_namespace must not contain '@'")
        host, port, user, pw = parse_address(address, password, username)
        self.ns = namespace
        self.address = "%s:%d" % (host, port)
        self.redis = Redis(host, port, user, pw)
        # Ray retries the first connection RAY_redis_db_connect_retries times,
        # RAY_redis_db_connect_wait_milliseconds apart (ray_config_def.h).
        retries = common.env_int("RAY_redis_db_connect_retries", 600)
        wait_ms = common.env_int("RAY_redis_db_connect_wait_milliseconds", 100)
        last = None
        for _ in range(max(1, retries)):
            try:
                if self.redis.execute("PING") in ("PONG", b"PONG"):
                    last = None
                    break
            except RedisError as exc:
                last = exc
                if "WRONGPASS" in str(exc) or "NOAUTH" in str(exc) or "invalid password" in str(exc):
                    break
            time.sleep(wait_ms / 1000.0)
        if last is not None:
            raise RedisError("Failed to connect to Redis at %s: %s" % (self.address, last))

    def hash_name(self, table):
        return "RAY%s@%s" % (self.ns, table)

    def put(self, table, key, value):
        self.redis.execute("HSET", self.hash_name(table), key, value)

    def delete(self, table, key):
        self.redis.execute("HDEL", self.hash_name(table), key)

    def load(self, table):
        return self.redis.hscan_all(self.hash_name(table))

    def incr_job_counter(self):
        return int(self.redis.execute("INCRBY", "RAY%s@JobCounter" % self.ns, 1))

    def describe(self):
        return {"backend": "redis", "address": self.address, "namespace": self.ns}


def kv_field(ns, key):
    # RedisStoreClient / gcs_kv_manager: "@namespace_<ns>:<key>", bare key if
    # the namespace is empty (ray-apis.md 5).
    return ("@namespace_%s:%s" % (ns, key)) if ns else key


def parse_kv_field(field):
    if isinstance(field, bytes):
        field = field.decode("utf-8", "replace")
    if field.startswith("@namespace_"):
        rest = field[len("@namespace_"):]
        ns, _, key = rest.partition(":")
        return ns, key
    return "", field


# --------------------------------------------------------------------------- server


class GcsServer:
    """GCS state plus a line-JSON TCP front end that can be killed and faulted."""

    def __init__(self, host, port, timings, store, hooks=None):
        self.host = host
        self.port = port
        self.t = timings
        self.store = store
        self.hooks = hooks  # object with on_heartbeat(node, report) and usage()
        self.fault = FaultState()
        self.lock = threading.RLock()
        self.running = False
        self.server = None
        self.started_at = time.time()
        self.nodes = {}
        self.actors = {}
        self.kv = {}
        self.jobs = {}
        # Resource accounting for the autoscaler (see "resources" below): granted
        # leases, lease requests waiting for room, and request_resources() bundles.
        self.leases = {}
        self.pending = {}
        self.constraints = []
        self._load()
        self.checker = None

    # ---- persistence
    def _load(self):
        for field, value in self.store.load("KV").items():
            ns, key = parse_kv_field(field)
            self.kv[(ns, key)] = value.decode("utf-8") if isinstance(value, bytes) else value
        for key, value in self.store.load("NODE").items():
            info = json.loads(value)
            self.nodes[info["node_id"]] = info
        for key, value in self.store.load("ACTOR").items():
            info = json.loads(value)
            self.actors[info["actor_id"]] = info
        for key, value in self.store.load("JOB").items():
            info = json.loads(value)
            self.jobs[info["job_id"]] = info
        cid = self.kv.get(("cluster", "CLUSTER_ID"))
        if cid is None:
            cid = common.hex_id(28)
            self._kv_put("cluster", "CLUSTER_ID", cid)
        self.cluster_id = cid
        # Nodes reloaded from storage get a fresh grace period (GCS FT: the new
        # GCS health-checks them again from its own start).
        now = time.time()
        for info in self.nodes.values():
            info["_last_hb"] = now

    def _persist_node(self, info):
        doc = {k: v for k, v in info.items() if not k.startswith("_")}
        self.store.put("NODE", bytes.fromhex(info["node_id"]), json.dumps(doc))

    def _persist_actor(self, info):
        self.store.put("ACTOR", bytes.fromhex(info["actor_id"]), json.dumps(info))

    def _kv_put(self, ns, key, value):
        self.kv[(ns, key)] = value
        self.store.put("KV", kv_field(ns, key), value)

    # ---- lifecycle
    def start(self):
        if self.running:
            return
        gcs = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                for _ in range(1000000):
                    try:
                        line = self.rfile.readline(1 << 22)
                    except OSError:
                        return
                    if not line:
                        return
                    out = gcs._serve_line(line)
                    if out is None:
                        return
                    try:
                        self.wfile.write(out)
                        self.wfile.flush()
                    except OSError:
                        return

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def __init__(self, *a):
                self.open_sockets = set()
                self.sock_lock = threading.Lock()
                super().__init__(*a)

            def process_request(self, request, client_address):
                with self.sock_lock:
                    self.open_sockets.add(request)
                super().process_request(request, client_address)

            def shutdown_request(self, request):
                with self.sock_lock:
                    self.open_sockets.discard(request)
                super().shutdown_request(request)

            def handle_error(self, request, client_address):
                pass

        last = None
        for _ in range(50):
            try:
                self.server = Server((self.host, self.port), Handler)
                break
            except OSError as exc:
                last = exc
                time.sleep(0.1)
        if self.server is None:
            raise last
        self.fault.set(None)
        self.running = True
        self.started_at = time.time()
        with self.lock:
            for info in self.nodes.values():
                info["_last_hb"] = time.time()
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True, name="gcs").start()
        self.checker = threading.Thread(target=self._health_loop, daemon=True, name="gcs-health")
        self.checker.start()

    def stop(self):
        if not self.running:
            return
        self.running = False
        with self.fault.changed:
            self.fault.changed.notify_all()
        srv = self.server
        self.server = None
        srv.shutdown()
        srv.server_close()
        with srv.sock_lock:
            socks = list(srv.open_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def describe(self):
        d = {"up": self.running, "port": self.port, "cluster_id": self.cluster_id}
        d.update(self.fault.describe())
        d["storage"] = self.store.describe()
        return d

    # ---- protocol
    def _serve_line(self, line):
        f = self.fault
        if f.mode == "hang":
            f.wait_while_hung(lambda: self.running)
            if not self.running:
                return None
        if f.mode == "slow" and f.delay_ms:
            time.sleep(f.delay_ms / 1000.0)
        if f.mode in ("garbage", "garbage_huge"):
            n = 1 << 20 if f.mode == "garbage_huge" else 32
            return b"\x00\xffnot-json" + b"x" * n + b"\n"
        try:
            req = json.loads(line)
        except ValueError:
            return b'{"ok": false, "code": "INVALID_ARGUMENT", "error": "bad request line"}\n'
        rid = req.get("id")
        try:
            result = self.dispatch(req.get("method"), req.get("params") or {}, req.get("cluster_id"))
            out = {"id": rid, "ok": True, "result": result}
        except GcsError as exc:
            out = {"id": rid, "ok": False, "code": exc.code, "error": exc.message}
        except RedisError as exc:
            # The real GCS crashes on storage failures (RAY_CHECK on Redis
            # replies); the simulated one stops serving.
            common.log("gcs_server", "Redis failure, GCS exits: %s" % exc)
            threading.Thread(target=self.stop, daemon=True).start()
            return None
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            out = {"id": rid, "ok": False, "code": "INVALID_ARGUMENT", "error": "%s: %s" % (type(exc).__name__, exc)}
        return (json.dumps(out) + "\n").encode()

    def dispatch(self, method, p, cluster_id):
        if cluster_id and cluster_id != self.cluster_id and method not in ("check_alive", "get_cluster_id"):
            # Raylets pin the cluster ID of the GCS they joined; a GCS with a
            # different one (a restarted head without fault tolerance) is
            # refused and the raylet exits.
            raise GcsError("CLUSTER_ID_MISMATCH", "cluster id mismatch: expected %s got %s" % (
                cluster_id, self.cluster_id))
        fn = getattr(self, "rpc_" + str(method), None)
        if fn is None:
            raise GcsError("UNIMPLEMENTED", "unknown method %s" % method)
        with self.lock:
            return fn(**p)

    # ---- RPCs
    def rpc_get_cluster_id(self):
        return self.cluster_id

    def rpc_check_alive(self, node_ids=()):
        # NodeInfoGcsService.CheckAlive: one bool per node id; unknown -> False.
        out = []
        for nid in node_ids:
            info = self.nodes.get(nid)
            out.append(bool(info and info["state"] == "ALIVE"))
        return {"alive": out, "ray_version": common.RAY_VERSION}

    def rpc_register_node(self, node):
        node = dict(node)
        old = self.nodes.get(node["node_id"])
        if old is not None and old["state"] == "DEAD":
            raise GcsError("NODE_DEAD", "node %s is marked dead" % node["node_id"])
        node["state"] = "ALIVE"
        node["start_time_ms"] = node.get("start_time_ms") or common.now_ms()
        node["_last_hb"] = time.time()
        self.nodes[node["node_id"]] = node
        self._persist_node(node)
        common.log("gcs_server", "Registering node info, node id = %s, address = %s, node name = %s" % (
            node["node_id"], node["node_ip"], node.get("node_name", node["node_ip"])))
        return {"cluster_id": self.cluster_id}

    def rpc_unregister_node(self, node_id, reason="SIGTERM"):
        info = self.nodes.get(node_id)
        if info is not None and info["state"] == "ALIVE":
            self._mark_dead(info, "EXPECTED_TERMINATION: received %s" % reason)
        return True

    def rpc_heartbeat(self, node_id, report=None):
        info = self.nodes.get(node_id)
        if info is None:
            raise GcsError("NODE_UNKNOWN", "node %s is not registered with this GCS" % node_id)
        if info["state"] == "DEAD":
            raise GcsError("NODE_DEAD", "node %s is marked dead: %s" % (node_id, info.get("death_reason", "")))
        info["_last_hb"] = time.time()
        hosted = [a for a in self.actors.values() if a.get("node_id") == node_id and a["state"] == "ALIVE"]
        out = {"actors": hosted}
        if self.hooks is not None:
            out.update(self.hooks.on_heartbeat(info, report or {}))
        return out

    def rpc_get_all_node_info(self):
        return [{k: v for k, v in n.items() if not k.startswith("_")} for n in self.nodes.values()]

    def rpc_kv_get(self, ns, key):
        return self.kv.get((ns, key))

    def rpc_kv_put(self, ns, key, value, overwrite=True):
        if not overwrite and (ns, key) in self.kv:
            return False
        self._kv_put(ns, key, value)
        return True

    def rpc_kv_del(self, ns, key):
        existed = (ns, key) in self.kv
        self.kv.pop((ns, key), None)
        self.store.delete("KV", kv_field(ns, key))
        return existed

    def rpc_kv_keys(self, ns, prefix=""):
        return sorted(k for (n, k) in list(self.kv.keys()) if n == ns and k.startswith(prefix))

    def rpc_next_job_id(self, driver=None):
        n = self.store.incr_job_counter()
        jid = common.job_hex(n)
        info = {"job_id": jid, "driver": driver or {}, "is_dead": False, "start_time": common.now_ms()}
        self.jobs[jid] = info
        self.store.put("JOB", bytes.fromhex(jid), json.dumps(info))
        return jid

    def rpc_mark_job_finished(self, job_id):
        info = self.jobs.get(job_id)
        if info:
            info["is_dead"] = True
            info["end_time"] = common.now_ms()
            self.store.put("JOB", bytes.fromhex(job_id), json.dumps(info))
        return True

    def rpc_actor_create(self, name, namespace, cls, num_cpus=1.0, detached=True):
        for a in self.actors.values():
            if a["name"] == name and a["namespace"] == namespace and a["state"] == "ALIVE":
                raise GcsError("ALREADY_EXISTS", "Actor with name '%s' already exists in the namespace %s" % (
                    name, namespace))
        node = self._pick_node(float(num_cpus))
        if node is None:
            raise GcsError("UNSCHEDULABLE", "no alive node has %s free CPUs for actor %s" % (num_cpus, name))
        info = {"actor_id": common.actor_id(), "name": name, "namespace": namespace, "class_name": cls,
                "num_cpus": float(num_cpus), "detached": bool(detached), "state": "ALIVE",
                "node_id": node["node_id"], "node_ip": node["node_ip"], "worker_port": node["worker_port"]}
        self.actors[info["actor_id"]] = info
        self._persist_actor(info)
        return info

    def rpc_actor_get(self, name, namespace):
        for a in self.actors.values():
            if a["name"] == name and a["namespace"] == namespace and a["state"] == "ALIVE":
                return a
        raise GcsError("NOT_FOUND", "Failed to look up actor with name '%s'. This could because 1. You "
                       "are trying to look up a named actor you didn't create. 2. The named actor died. "
                       "3. You did not use a namespace matching the namespace of the actor." % name)

    # ---- scheduling helpers
    def alive_nodes(self):
        return [n for n in list(self.nodes.values()) if n["state"] == "ALIVE"]

    def _pick_node(self, cpus):
        usage = self.hooks.usage() if self.hooks is not None else {}
        best = None
        for n in sorted(self.alive_nodes(), key=lambda x: (x.get("is_head", False), x["node_ip"])):
            used = usage.get(n["node_id"], 0.0) + sum(
                a["num_cpus"] for a in self.actors.values() if a.get("node_id") == n["node_id"] and a["state"] == "ALIVE")
            if float(n.get("num_cpus", 0)) - used + 1e-9 >= cpus:
                best = n
                break
        return best

    def actor_usage(self):
        out = {}
        for a in list(self.actors.values()):
            if a["state"] == "ALIVE" and a.get("node_id"):
                out[a["node_id"]] = out.get(a["node_id"], 0.0) + a["num_cpus"]
        return out

    def _mark_dead(self, info, reason):
        info["state"] = "DEAD"
        info.pop("draining", None)
        for lease in self.leases.values():
            if lease["node_id"] == info["node_id"]:
                lease["lost"] = True
        info["death_reason"] = reason
        info["end_time_ms"] = common.now_ms()
        self._persist_node(info)
        common.log("gcs_server", "Node %s (%s) marked dead: %s" % (info["node_id"], info["node_ip"], reason))
        for a in self.actors.values():
            if a.get("node_id") == info["node_id"] and a["state"] == "ALIVE":
                a["state"] = "DEAD"
                self._persist_actor(a)

    # ---- resources: leases, demand, idleness, drain (what the autoscaler reads)
    #
    # The real raylets grant worker leases from their local resources and report
    # usage, pending lease requests by shape and idle time to the GCS, which the
    # autoscaler reads: v1 through GetAllResourceUsage (monitor.py), v2 through
    # GetClusterResourceState (autoscaler/v2/sdk.py get_cluster_resource_state:
    # node_states with total/available resources and idle_duration_ms,
    # pending_resource_requests, cluster_resource_constraints). The simulated GCS
    # folds the raylets' share in: it grants leases itself and reports the same view.

    def _node_total(self, n):
        return {k: float(v) for k, v in (n.get("resources") or {"CPU": n.get("num_cpus", 0)}).items()}

    def _usage_by_node(self):
        """node_id -> {resource: amount in use} over Serve replicas (CPU), actors and leases."""
        out = {}

        def add(nid, res):
            u = out.setdefault(nid, {})
            for k, v in res.items():
                u[k] = u.get(k, 0.0) + float(v)
        for nid, cpus in (self.hooks.usage() if self.hooks is not None else {}).items():
            add(nid, {"CPU": cpus})
        for a in self.actors.values():
            if a["state"] == "ALIVE" and a.get("node_id"):
                add(a["node_id"], {"CPU": a["num_cpus"]})
        for lease in self.leases.values():
            if not lease.get("lost"):
                add(lease["node_id"], lease["resources"])
        return out

    @staticmethod
    def _fits(shape, avail):
        return all(avail.get(k, 0.0) + 1e-9 >= float(v) for k, v in shape.items() if float(v) > 0)

    def _track_idle(self, now):
        # A raylet is idle while none of its resources are in use
        # (LocalResourceManager::IsLocalNodeIdle); idle_duration_ms counts from then.
        usage = self._usage_by_node()
        for n in self.nodes.values():
            if n["state"] != "ALIVE":
                continue
            busy = any(v > 1e-9 for v in usage.get(n["node_id"], {}).values())
            if busy:
                n["_idle_since"] = None
            elif n.get("_idle_since") is None:
                n["_idle_since"] = now

    def _expire_pending(self, now):
        # A request no client refreshes any more (its driver exited) is no demand.
        for lid in [k for k, p in self.pending.items() if now - p["t"] > PENDING_TTL_S]:
            del self.pending[lid]

    def rpc_request_lease(self, lease_id, resources, owner=""):
        """Grant `resources` on a node with room now (not draining), or queue the request.

        Repeated calls with the same lease_id are how a waiting client keeps its
        request alive; the answer names the node once granted."""
        lease = self.leases.get(lease_id)
        if lease is not None:
            return {"node_id": lease["node_id"], "node_ip": lease["node_ip"]}
        shape = {k: float(v) for k, v in (resources or {}).items() if float(v) > 0}
        usage = self._usage_by_node()
        for n in sorted(self.alive_nodes(), key=lambda x: (x.get("is_head", False), x["node_ip"])):
            if n.get("draining"):
                continue  # a draining raylet takes no new leases (node_manager.cc HandleDrainRaylet)
            total = self._node_total(n)
            used = usage.get(n["node_id"], {})
            avail = {k: total[k] - used.get(k, 0.0) for k in total}
            if self._fits(shape, avail):
                self.pending.pop(lease_id, None)
                self.leases[lease_id] = {"node_id": n["node_id"], "node_ip": n["node_ip"], "resources": shape,
                                         "owner": owner, "t": time.time()}
                n["_idle_since"] = None
                return {"node_id": n["node_id"], "node_ip": n["node_ip"]}
        self.pending[lease_id] = {"resources": shape, "owner": owner, "t": time.time()}
        feasible = any(self._fits(shape, self._node_total(n)) for n in self.alive_nodes())
        return {"node_id": None, "feasible": feasible}

    def rpc_return_lease(self, lease_id):
        """Give a lease back; `lost` says its node died while it was held."""
        self.pending.pop(lease_id, None)
        lease = self.leases.pop(lease_id, None)
        return {"lost": bool(lease and lease.get("lost"))}

    def rpc_request_cluster_resource_constraint(self, bundles):
        # autoscaler/v2/sdk.py request_cluster_resources: the latest call replaces
        # the previous constraint; an empty list clears it.
        self.constraints = [{k: float(v) for k, v in b.items()} for b in bundles or []]
        return True

    def rpc_get_cluster_resource_state(self):
        now = time.time()
        self._expire_pending(now)
        usage = self._usage_by_node()
        nodes = []
        for n in self.nodes.values():
            total = self._node_total(n)
            used = usage.get(n["node_id"], {}) if n["state"] == "ALIVE" else {}
            state = n["state"]
            if state == "ALIVE" and n.get("draining"):
                state = "DRAINING"
            idle = n.get("_idle_since")
            nodes.append({"node_id": n["node_id"], "node_ip": n["node_ip"], "is_head": bool(n.get("is_head")),
                          "instance_id": n.get("instance_id") or "", "ray_node_type_name": n.get("node_type_name") or "",
                          "status": state, "total_resources": total,
                          "available_resources": {k: max(0.0, total[k] - used.get(k, 0.0)) for k in total},
                          "idle_duration_ms": int((now - idle) * 1000) if (idle is not None and state != "DEAD") else 0})
        shapes = {}
        for p in self.pending.values():
            key = json.dumps(p["resources"], sort_keys=True)
            shapes[key] = shapes.get(key, 0) + 1
        constraints = list(self.constraints)
        if not constraints:
            # The v1 path of request_resources(): a JSON list of bundles in the internal KV
            # (commands.py request_resources -> AUTOSCALER_RESOURCE_REQUEST_CHANNEL).
            raw = self.kv.get(("", AUTOSCALER_RESOURCE_REQUEST_KEY))
            try:
                constraints = [b for b in json.loads(raw) if isinstance(b, dict)] if raw else []
            except ValueError:
                constraints = []
        return {"node_states": nodes,
                "pending_resource_requests": [{"resources": json.loads(k), "count": c} for k, c in sorted(shapes.items())],
                "cluster_resource_constraints": constraints}

    def rpc_drain_node(self, node_id, reason="DRAIN_NODE_REASON_IDLE_TERMINATION", reason_message="",
                       deadline_timestamp_ms=0):
        """autoscaler.proto DrainNode, answered as the raylet does (node_manager.cc
        HandleDrainRaylet): an idle-termination drain of a node that is busy again
        is rejected, so work that started since the autoscaler looked is not lost;
        an accepted drain stops new leases on the node until it goes."""
        n = self.nodes.get(node_id)
        if n is None or n["state"] != "ALIVE":
            # GcsAutoscalerStateManager::HandleDrainNode: a dead or unknown node is
            # already drained.
            return {"is_accepted": True, "rejection_reason_message": ""}
        if reason == "DRAIN_NODE_REASON_IDLE_TERMINATION":
            busy = any(v > 1e-9 for v in self._usage_by_node().get(node_id, {}).values())
            if busy:
                return {"is_accepted": False,
                        "rejection_reason_message": "The node to be idle terminated is no longer idle."}
        n["draining"] = {"reason": reason, "reason_message": reason_message,
                         "deadline_timestamp_ms": deadline_timestamp_ms}
        common.log("gcs_server", "Draining node %s (%s): %s" % (node_id, n["node_ip"], reason_message))
        return {"is_accepted": True, "rejection_reason_message": ""}

    def _health_loop(self):
        # GcsHealthCheckManager: after the initial delay, a node missing
        # failure_threshold periods of health checks is marked dead
        # (ray-apis.md 1.1; ray_config_def.h health_check_*).
        srv = self.server
        while self.running and self.server is srv:
            time.sleep(min(0.1, self.t.health_check_period_ms / 1000.0))
            if self.fault.mode == "hang":
                continue
            now = time.time()
            with self.lock:
                self._track_idle(now)
            if now - self.started_at < self.t.health_check_initial_delay_ms / 1000.0:
                continue
            with self.lock:
                for info in list(self.nodes.values()):
                    if info["state"] != "ALIVE":
                        continue
                    if now - info.get("_last_hb", now) > self.t.node_death_s():
                        try:
                            self._mark_dead(info, "UNEXPECTED_TERMINATION: health check failed "
                                            "(missed %d checks)" % self.t.health_check_failure_threshold)
                        except RedisError:
                            pass


# --------------------------------------------------------------------------- client


class GcsClient:
    """Client of the line-JSON GCS protocol; one TCP exchange per call."""

    def __init__(self, address, cluster_id=None):
        host, _, port = address.rpartition(":")
        self.host = common.pod_local(host or "127.0.0.1")
        self.port = int(port or 6379)
        self.cluster_id = cluster_id
        self.seq = 0

    def call(self, method, params=None, timeout=2.0):
        self.seq += 1
        req = {"id": self.seq, "method": method, "cluster_id": self.cluster_id, "params": params or {}}
        try:
            with socket.create_connection((common.cluster_resolve(self.host), self.port), timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall((json.dumps(req) + "\n").encode())
                buf = b""
                deadline = time.time() + timeout
                while b"\n" not in buf:
                    if len(buf) > (1 << 23):
                        raise GcsError("UNKNOWN", "reply too large")
                    if time.time() > deadline:
                        raise socket.timeout()
                    chunk = s.recv(65536)
                    if not chunk:
                        raise GcsError("UNAVAILABLE", "failed to connect to all addresses; "
                                       "connection closed by %s:%d" % (self.host, self.port))
                    buf += chunk
        except socket.timeout:
            raise GcsError("DEADLINE_EXCEEDED", "Deadline Exceeded")
        except OSError as exc:
            raise GcsError("UNAVAILABLE", "failed to connect to all addresses; last error: %s:%d: %s" % (
                self.host, self.port, exc.strerror or exc))
        try:
            rep = json.loads(buf.split(b"\n", 1)[0])
        except ValueError:
            raise GcsError("UNKNOWN", "malformed reply from GCS")
        if not isinstance(rep, dict):
            raise GcsError("UNKNOWN", "malformed reply from GCS")
        if not rep.get("ok"):
            raise GcsError(rep.get("code", "UNKNOWN"), rep.get("error", ""))
        return rep.get("result")


def open_store(env=None, password=None, username=None):
    """The storage backend chosen as Ray's GCS does: Redis iff RAY_REDIS_ADDRESS.

    Credentials: --redis-password / --redis-username, else REDIS_PASSWORD /
    REDIS_USERNAME (ray-apis.md 5).
    """
    env = env if env is not None else os.environ
    addr = env.get("RAY_REDIS_ADDRESS", "")
    if not addr:
        return MemoryStore()
    ns = env.get("RAY_external_storage_namespace", "default") or "default"
    return RedisStore(addr, ns, password or env.get("REDIS_PASSWORD") or None,
                      username or env.get("REDIS_USERNAME") or None)

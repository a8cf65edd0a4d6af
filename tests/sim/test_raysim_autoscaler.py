"""`ray kuberay-autoscaler`, the simulator's stand-in for the KubeRay autoscaler sidecar
(tests/sim/raysim/autoscaler.py, docs/ray-simulator.md): click-like usage errors, the
wait for the GCS with Ray's messages, the summary it logs, and a clean exit on SIGTERM;
its decisions as tables (scale-up from unmet demand within maxReplicas and the upscaling
speed, idle scale-down keeping minReplicas and request_resources(), the JSON patch and
the clearing of workersToDelete); the GCS's leases, demand, idle time and drain; and
live runs on simulated Ray nodes with an operator stand-in that deletes exactly the
named pods (v1, and v2 draining first). The API server and the operator are covered
end to end by tests/e2e/test_autoscaling.py.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from raysim import autoscaler as asc  # noqa: E402
from raysim.cluster import Cluster, SimNode, wait_for  # noqa: E402
from raysim.gcs import GcsClient  # noqa: E402

RAY = os.path.join(HERE, "bin", "ray")
PREFIX = "127.77.60"


def env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    e.update(extra)
    return e


def run(*args, **kw):
    return subprocess.run([sys.executable, RAY] + list(args), capture_output=True, text=True, timeout=30, **kw)


class UsageErrors(unittest.TestCase):
    def test_missing_options(self):
        r = run("kuberay-autoscaler", "--cluster-name", "c")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Error: Missing option '--cluster-namespace'.", r.stderr)
        r = run("kuberay-autoscaler")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Error: Missing option '--cluster-name'.", r.stderr)

    def test_unknown_option_and_extra_argument(self):
        r = run("kuberay-autoscaler", "--cluster-name", "c", "--cluster-namespace", "n", "--upscaling-mode", "x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Error: No such option: --upscaling-mode", r.stderr)
        r = run("kuberay-autoscaler", "--cluster-name=c", "--cluster-namespace=n", "extra")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Got unexpected extra argument (extra)", r.stderr)
        r = run("kuberay-autoscaler", "--cluster-name")
        self.assertEqual(r.returncode, 2)
        self.assertIn("requires an argument", r.stderr)


class WaitsThenStaysUp(unittest.TestCase):
    def test_lifecycle(self):
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            # Started before the head: it waits, checking every backoff period.
            p = subprocess.Popen([sys.executable, RAY, "kuberay-autoscaler", "--cluster-name", "rc",
                                  "--cluster-namespace", "ns"], stdout=out, stderr=err,
                                 env=env(RW_SIM_POD_IP=PREFIX + ".1", RW_SIM_AUTOSCALER_BACKOFF_S="0.2",
                                         AUTOSCALER_UPDATE_INTERVAL_S="0.2"))
            try:
                def text(f):
                    f.seek(0)
                    return f.read()
                wait_for(lambda: text(err).count("The Ray head is not ready. Will check again in 0.2 seconds.") >= 2,
                         10, what="two not-ready warnings")
                self.assertIsNone(p.poll())
                with Cluster(PREFIX, workers=1, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"]):
                    wait_for(lambda: "2 node(s) alive" in text(out), 20, what="summary with 2 nodes")
                    log = text(out)
                    self.assertIn("The Ray head is ready. Starting the autoscaler.", log)
                    self.assertIn("RayCluster ns/rc: 2 node(s) alive", log)
                    # Outside a pod there are no in-cluster credentials: said once, not fatal.
                    self.assertEqual(text(err).count("No in-cluster credentials"), 1)
                    # The summary is logged when it changes, not every period.
                    time.sleep(1.0)  # five update periods, to show that nothing repeats
                    self.assertEqual(text(out).count("2 node(s) alive"), 1)
                    self.assertIsNone(p.poll())
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(10), 0)
                self.assertIn("Autoscaler stand-in exiting.", text(out))
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)


# ----------------------------------------------------------------------------- decisions


def rc_doc(replicas=0, min_r=0, max_r=10, mode=None, idle=None, version=None, wtd=None, group_idle=None,
           limits=None, params=None):
    opts = {}
    if mode:
        opts["upscalingMode"] = mode
    if idle is not None:
        opts["idleTimeoutSeconds"] = idle
    if version:
        opts["version"] = version
    g = {"groupName": "small-group", "replicas": replicas, "minReplicas": min_r, "maxReplicas": max_r,
         "rayStartParams": params or {},
         "template": {"spec": {"containers": [{"name": "ray-worker", "resources": {
             "limits": limits or {"cpu": "1", "memory": "1G"}, "requests": {"cpu": "1", "memory": "1G"}}}]}}}
    if wtd is not None:
        g["scaleStrategy"] = {"workersToDelete": wtd}
    if group_idle is not None:
        g["idleTimeoutSeconds"] = group_idle
    return {"metadata": {"name": "rc"}, "spec": {"enableInTreeAutoscaling": True, "autoscalerOptions": opts,
                                                 "headGroupSpec": {"rayStartParams": {"num-cpus": "0"}},
                                                 "workerGroupSpecs": [g]}}


HEAD = {"node_id": "h", "node_ip": "10.0.0.1", "is_head": True, "instance_id": "rc-head", "status": "ALIVE",
        "total_resources": {"CPU": 0.0}, "available_resources": {"CPU": 0.0}, "idle_duration_ms": 0}


def worker(i, idle_s=0.0, used=0.0, status="ALIVE"):
    return {"node_id": "n%d" % i, "node_ip": "10.0.0.%d" % (10 + i), "is_head": False, "instance_id": "w%d" % i,
            "status": status, "total_resources": {"CPU": 1.0, "memory": 1e9},
            "available_resources": {"CPU": 1.0 - used, "memory": 1e9}, "idle_duration_ms": int(idle_s * 1000)}


def pods_of(n_workers, unregistered=0):
    pods = [{"name": "rc-head", "group": "headgroup", "kind": "head", "ip": "10.0.0.1"}]
    pods += [{"name": "w%d" % i, "group": "small-group", "kind": "worker", "ip": None} for i in range(n_workers)]
    pods += [{"name": "p%d" % i, "group": "small-group", "kind": "worker", "ip": None} for i in range(unregistered)]
    return pods


def demand(n, shape=None):
    return [{"resources": shape or {"CPU": 1.0}, "count": n}] if n else []


def decide(rc, workers=(), unregistered=0, pending=0, shape=None, constraints=None):
    state = {"node_states": [HEAD] + list(workers), "pending_resource_requests": demand(pending, shape),
             "cluster_resource_constraints": constraints or []}
    return asc.plan(asc.autoscaling_config(rc), pods_of(len(workers), unregistered), state)


class Decisions(unittest.TestCase):
    """plan(): one autoscaler update as a table of (cluster, demand) -> decision."""

    def test_scale_up(self):
        cases = [
            # (name, rc, running workers, unregistered pods, pending 1-CPU requests, want replicas)
            ("demand of 3 CPUs on a 0-CPU head", rc_doc(), [], 0, 3, 3),
            ("no demand, nothing to do", rc_doc(), [], 0, 0, 0),
            ("maxReplicas caps it", rc_doc(max_r=4), [], 0, 9, 4),
            ("Default launches all at once", rc_doc(mode="Default"), [], 0, 9, 9),
            ("Aggressive likewise", rc_doc(mode="Aggressive"), [], 0, 9, 9),
            # upscaling_speed 1: at most max(5, 1 x running) pending nodes of a type at once.
            ("Conservative from zero: 5", rc_doc(mode="Conservative"), [], 0, 9, 5),
            ("Conservative with 6 busy: 6 more", rc_doc(mode="Conservative", replicas=6, max_r=20),
             [worker(i, used=1.0) for i in range(6)], 0, 9, 12),
            ("Conservative with 2 still pending: 3 more", rc_doc(mode="Conservative", replicas=2), [], 2, 9, 5),
            ("pods on their way count as room", rc_doc(replicas=3), [], 3, 3, 3),
            ("replicas not yet created count too", rc_doc(replicas=3), [], 0, 3, 3),
            ("free room on a running worker", rc_doc(replicas=1), [worker(0)], 0, 1, 1),
            ("busy workers: one more", rc_doc(replicas=2), [worker(0, used=1.0), worker(1, used=1.0)], 0, 1, 3),
            ("minReplicas is kept up without demand", rc_doc(min_r=2), [], 0, 0, 2),
        ]
        for name, rc, workers, unreg, pending, want in cases:
            with self.subTest(name):
                d = decide(rc, workers, unreg, pending)
                self.assertEqual(d["desired"]["small-group"], want)
                self.assertEqual(d["terminate"], [])

    def test_infeasible_request_launches_nothing(self):
        d = decide(rc_doc(), pending=1, shape={"CPU": 4.0})
        self.assertEqual(d["desired"]["small-group"], 0)
        self.assertEqual(d["infeasible"], [{"CPU": 4.0}])
        d = decide(rc_doc(), pending=1, shape={"GPU": 1.0})
        self.assertEqual(d["infeasible"], [{"GPU": 1.0}])

    def test_request_resources_is_a_floor(self):
        # request_resources(num_cpus=4): room for four 1-CPU bundles at once, over the launch limit.
        d = decide(rc_doc(mode="Conservative", max_r=10), constraints=[{"CPU": 1}] * 7)
        self.assertEqual(d["desired"]["small-group"], 7)
        # ... and idle workers it needs are kept, the others go.
        idle = [worker(i, idle_s=120) for i in range(3)]
        d = decide(rc_doc(replicas=3), idle, constraints=[{"CPU": 1}] * 2)
        self.assertEqual(d["desired"]["small-group"], 2)
        self.assertEqual(len(d["terminate"]), 1)

    def test_scale_down(self):
        cases = [
            # (name, rc, workers, want replicas, want terminated pods)
            ("idle past the 60 s default", rc_doc(replicas=2), [worker(0, idle_s=61), worker(1, idle_s=5)],
             1, ["w0"]),
            ("idle but not long enough", rc_doc(replicas=1), [worker(0, idle_s=59)], 1, []),
            ("idleTimeoutSeconds 10", rc_doc(replicas=1, idle=10), [worker(0, idle_s=11)], 0, ["w0"]),
            ("busy is never idle", rc_doc(replicas=1, idle=10), [worker(0, idle_s=0, used=1.0)], 1, []),
            ("minReplicas kept: longest idle goes first", rc_doc(replicas=3, min_r=1, idle=10),
             [worker(0, idle_s=20), worker(1, idle_s=30), worker(2, idle_s=15)], 1, ["w1", "w0"]),
            ("v1 ignores a group's idleTimeoutSeconds", rc_doc(replicas=1, idle=100, group_idle=5),
             [worker(0, idle_s=10)], 1, []),
            ("v2 reads it", rc_doc(replicas=1, idle=100, group_idle=5, version="v2"), [worker(0, idle_s=10)],
             0, ["w0"]),
            ("a draining node's pod is named", rc_doc(replicas=1), [worker(0, status="DRAINING")], 0, ["w0"]),
        ]
        for name, rc, workers, want, gone in cases:
            with self.subTest(name):
                d = decide(rc, workers)
                self.assertEqual(d["desired"]["small-group"], want)
                self.assertEqual([t["pod"] for t in d["terminate"]], gone)

    def test_group_resources(self):
        cases = [
            ({"rayStartParams": {}, "template": {"spec": {"containers": [{"resources": {
                "limits": {"cpu": "1", "memory": "1G"}}}]}}}, {"CPU": 1.0, "memory": 1e9}),
            ({"rayStartParams": {"num-cpus": "3"}, "template": {"spec": {"containers": [{"resources": {
                "limits": {"cpu": "1"}}}]}}}, {"CPU": 3.0}),
            ({"rayStartParams": {}, "template": {"spec": {"containers": [{"resources": {
                "requests": {"cpu": "500m", "memory": "512Mi"}}}]}}}, {"CPU": 1.0, "memory": 536870912.0}),
            ({"rayStartParams": {"resources": '"{\\"Custom\\": 2}"'}, "template": {"spec": {"containers": [
                {"resources": {"limits": {"cpu": "2", "nvidia.com/gpu": "1"}}}]}}},
             {"CPU": 2.0, "GPU": 1.0, "Custom": 2.0}),
        ]
        for spec, want in cases:
            with self.subTest(want=want):
                self.assertEqual(asc.group_resources(dict(spec, groupName="g")), want)
        with self.assertRaises(ValueError):
            asc.group_resources({"groupName": "g", "template": {"spec": {"containers": [{}]}}})

    def test_patch_and_cleanup(self):
        cfg = asc.autoscaling_config(rc_doc(replicas=2, max_r=4))
        self.assertEqual(asc.scale_patch(cfg, {"small-group": 9}, {}), [
            {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 4}])
        self.assertEqual(asc.scale_patch(cfg, {"small-group": 2}, {}), [])
        self.assertEqual(asc.scale_patch(cfg, {"small-group": 1}, {"small-group": ["w0"]}), [
            {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 1},
            {"op": "add", "path": "/spec/workerGroupSpecs/0/scaleStrategy", "value": {"workersToDelete": ["w0"]}}])
        cfg = asc.autoscaling_config(rc_doc(replicas=1, wtd=["w0"]))
        # The named pod is still there: wait for the operator, decide nothing.
        self.assertEqual(asc.workers_to_delete_cleanup(cfg, pods_of(1)), (False, ["w0"]))
        # Gone (or being deleted, which pod_view leaves out): clear the list.
        self.assertEqual(asc.workers_to_delete_cleanup(cfg, pods_of(0)), (True, [
            {"op": "replace", "path": "/spec/workerGroupSpecs/0/scaleStrategy", "value": {"workersToDelete": []}}]))
        gone = {"items": [{"metadata": {"name": "w0", "deletionTimestamp": "x",
                                        "labels": {"ray.io/group": "small-group", "ray.io/node-type": "worker"}}}]}
        self.assertEqual(asc.pod_view(gone), [])

    def test_config(self):
        self.assertEqual(asc.autoscaling_config(rc_doc())["idle_timeout_s"], 60.0)
        self.assertEqual(asc.autoscaling_config(rc_doc(mode="Conservative"))["upscaling_speed"], 1)
        self.assertEqual(asc.autoscaling_config(rc_doc())["upscaling_speed"], 1000)
        self.assertEqual(asc.autoscaling_config(rc_doc())["version"], "v1")
        self.assertEqual(asc.autoscaling_config(rc_doc(version="v2"))["version"], "v2")
        self.assertEqual(asc.autoscaling_config(rc_doc(), v2_env=True)["version"], "v2")


# ----------------------------------------------------------------------------- GCS side


GCS_PREFIX = "127.77.62"


class GcsResources(unittest.TestCase):
    """Leases, pending demand, idle time and DrainNode of the simulated GCS."""

    def test_leases_demand_idle_and_drain(self):
        with Cluster(GCS_PREFIX, workers=1, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"]) as c:
            gcs = GcsClient(c.head.ip + ":6379")
            wait_for(lambda: len(gcs.call("get_all_node_info")) == 2, 20, what="two nodes")
            wid = [n for n in gcs.call("get_all_node_info") if not n["is_head"]][0]["node_id"]
            self.assertEqual(gcs.call("request_lease", {"lease_id": "a", "resources": {"CPU": 1}})["node_id"], wid)
            # No room left: the second request waits and is the pending demand.
            rep = gcs.call("request_lease", {"lease_id": "b", "resources": {"CPU": 1}})
            self.assertIsNone(rep["node_id"])
            self.assertTrue(rep["feasible"])
            st = gcs.call("get_cluster_resource_state")
            self.assertEqual(st["pending_resource_requests"], [{"resources": {"CPU": 1.0}, "count": 1}])
            w = [n for n in st["node_states"] if n["node_id"] == wid][0]
            self.assertEqual(w["available_resources"]["CPU"], 0.0)
            self.assertEqual(w["idle_duration_ms"], 0)
            # A busy node refuses an idle-termination drain (node_manager.cc HandleDrainRaylet).
            rep = gcs.call("drain_node", {"node_id": wid, "reason": "DRAIN_NODE_REASON_IDLE_TERMINATION"})
            self.assertFalse(rep["is_accepted"])
            self.assertEqual(rep["rejection_reason_message"], "The node to be idle terminated is no longer idle.")
            self.assertEqual(gcs.call("return_lease", {"lease_id": "a"}), {"lost": False})
            # A request nobody refreshes is dropped from the demand after PENDING_TTL_S.
            wait_for(lambda: gcs.call("get_cluster_resource_state")["pending_resource_requests"] == [], 10,
                     what="the unrefreshed request dropped")
            wait_for(lambda: [n for n in gcs.call("get_cluster_resource_state")["node_states"]
                              if n["node_id"] == wid][0]["idle_duration_ms"] >= 300, 10, what="idle time counted")
            rep = gcs.call("drain_node", {"node_id": wid, "reason": "DRAIN_NODE_REASON_IDLE_TERMINATION"})
            self.assertTrue(rep["is_accepted"])
            st = gcs.call("get_cluster_resource_state")
            self.assertEqual([n["status"] for n in st["node_states"] if n["node_id"] == wid], ["DRAINING"])
            # A draining node takes no new lease.
            self.assertIsNone(gcs.call("request_lease", {"lease_id": "c", "resources": {"CPU": 1}})["node_id"])
            gcs.call("return_lease", {"lease_id": "c"})


# ----------------------------------------------------------------------------- live


class FakeOperator:
    """The API server and the operator for a Standin: a RayCluster document the
    stand-in reads and JSON-patches, and KubeRay's reconcilePods for one worker group
    on simulated Ray nodes (one SimNode per pod, RAY_CLOUD_INSTANCE_ID = pod name):
    delete exactly the pods named in workersToDelete (a missing one is fine), then
    create the shortfall; never delete a surplus (autoscaling on). Like KubeRay it
    does not write the cleared list back."""

    def __init__(self, rc, prefix, head_ip, log_dir):
        self.rc = rc
        self.prefix = prefix
        self.head_ip = head_ip
        self.log_dir = log_dir
        self.live = {}
        self.next_ip = 2
        self.deleted = []
        self.patches = []
        self.lock = threading.Lock()

    # the stand-in's KubeClient interface
    def raycluster(self, name):
        with self.lock:
            return json.loads(json.dumps(self.rc))

    def pods(self, cluster):
        with self.lock:
            items = [{"metadata": {"name": "rc-head", "labels": {"ray.io/node-type": "head", "ray.io/group": "headgroup"}},
                      "status": {"podIP": self.head_ip}}]
            items += [{"metadata": {"name": n, "labels": {"ray.io/node-type": "worker", "ray.io/group": "small-group"}},
                       "status": {"podIP": node.ip}} for n, node in self.live.items()]
            return {"items": items}

    def patch_raycluster(self, name, ops):
        with self.lock:
            self.patches.append(ops)
            for op in ops:
                parts = op["path"].strip("/").split("/")
                target = self.rc
                for k in parts[:-1]:
                    target = target[int(k)] if isinstance(target, list) else target[k]
                if op["op"] == "replace" and parts[-1] not in target:
                    raise ValueError("replace of a missing member %s" % op["path"])
                target[parts[-1]] = op["value"]
        return self.rc

    def reconcile(self):
        with self.lock:
            g = self.rc["spec"]["workerGroupSpecs"][0]
            names = list((g.get("scaleStrategy") or {}).get("workersToDelete") or [])
            want = min(max(g.get("replicas", 0), g["minReplicas"]), g["maxReplicas"])
        for n in names:
            node = self.live.pop(n, None)
            if node is not None:
                self.deleted.append(n)
                node.stop()
        for _ in range(want - len(self.live)):
            name = "rc-worker-%d" % self.next_ip
            ip = "%s.%d" % (self.prefix, self.next_ip)
            self.next_ip += 1
            node = SimNode(ip, ["--address=%s:6379" % self.head_ip, "--num-cpus=1",
                                "--dashboard-agent-listen-port=52365"],
                           {"RAY_CLOUD_INSTANCE_ID": name, "RAY_NODE_TYPE_NAME": "small-group"}, log_dir=self.log_dir)
            with self.lock:
                self.live[name] = node
            node.start()

    def stop(self):
        for node in list(self.live.values()):
            node.stop()


DRIVER = textwrap.dedent("""
    import ray, time
    ray.init()
    @ray.remote(num_cpus=1)
    def square(i):
        time.sleep(0.3)
        return i * i
    print("sum:", sum(ray.get([square.remote(i) for i in range(3)], timeout=60)))
""")


class LiveScaling(unittest.TestCase):
    """The stand-in against simulated Ray nodes: a driver asking for more CPUs than the
    cluster has scales the group up, finishes, and the idle workers are removed by name."""

    def run_cycle(self, prefix, version):
        tmp = tempfile.mkdtemp(prefix="rw-as-")
        rc = rc_doc(idle=2, version=version)
        with Cluster(prefix, workers=0, head_args=["--num-cpus=0"], log_dir=tmp) as c:
            op = FakeOperator(rc, prefix, c.head.ip, tmp)
            st = asc.Standin("rc", "ns", kube=op, gcs_address=c.head.ip + ":6379")
            st.interval_s = 0.3
            stop = threading.Event()

            def loop():
                while not stop.is_set():
                    st.update()
                    op.reconcile()
                    stop.wait(st.interval_s)
            t = threading.Thread(target=loop, daemon=True)
            try:
                drv = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, env=env(PYTHONPATH=os.path.join(HERE, "pyray"),
                                                          RAY_ADDRESS=c.head.ip + ":6379"))
                # The driver's three 1-CPU tasks are demand before the autoscaler runs.
                gcs = GcsClient(c.head.ip + ":6379")
                wait_for(lambda: gcs.call("get_cluster_resource_state")["pending_resource_requests"] ==
                         [{"resources": {"CPU": 1.0}, "count": 3}], 20, what="3 pending 1-CPU requests")
                t.start()
                out, err = drv.communicate(timeout=90)
                self.assertEqual(drv.returncode, 0, err)
                self.assertIn("sum: 5", out)
                self.assertEqual(op.patches[0], [{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas",
                                                  "value": 3}])
                created = sorted(op.live)
                self.assertEqual(len(created), 3)
                # Idle for 2 s: all three named in workersToDelete, deleted, the list cleared.
                wait_for(lambda: not op.live and op.rc["spec"]["workerGroupSpecs"][0].get(
                    "scaleStrategy", {}).get("workersToDelete") == [], 60, what="idle workers removed")
                self.assertEqual(sorted(op.deleted), created)
                self.assertEqual(op.rc["spec"]["workerGroupSpecs"][0]["replicas"], 0)
                named = sorted(n for p in op.patches for o in p if o["path"].endswith("/scaleStrategy")
                               for n in o["value"]["workersToDelete"])
                self.assertEqual(named, created)
                return st, op, c
            finally:
                stop.set()
                if t.is_alive():
                    t.join(10)
                op.stop()

    def test_v1(self):
        self.run_cycle("127.77.63", None)

    def test_v2_drains_first(self):
        logs = []
        orig = asc._log
        asc._log = lambda level, where, msg: logs.append(msg) or orig(level, where, msg)
        try:
            self.run_cycle("127.77.67", "v2")
        finally:
            asc._log = orig
        drained = [m for m in logs if m.startswith("Drained ray on") and "success=True" in m]
        self.assertEqual(len(drained), 3, logs)


if __name__ == "__main__":
    unittest.main()

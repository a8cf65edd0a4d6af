"""Tests of the kubelet, controller and service-proxy simulators.

Pure pieces are table tests; the rest runs against one local cluster (the real API
server simulator) per class.  Run from tests/sim:  python3 -m unittest -v test_kubelet
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubesim import kubelet_env as kenv  # noqa: E402
from kubesim import kubelet_volumes as kvol  # noqa: E402
from kubesim.controllers import (desired_endpoints, endpoint_for_pod, find_port, match_label_selector,  # noqa: E402
                                 template_hash)
from kubesim.kubelet_probe import ProbeWorker  # noqa: E402
from kubesim.testutil import http_get  # noqa: E402
from kubesim.kubeclient import STRATEGIC_PATCH, ApiError  # noqa: E402
from kubesim.kubelet_testutil import TEST_SERVER, LocalCluster, condition, is_ready, wait_for  # noqa: E402
from kubesim.kubelet_volumes import (MountPoints, pending_mount_targets, atomic_write, container_mounts, materialise, resync,  # noqa: E402
                                     wrap_argv)
from kubesim.proxy import effective_cluster_ip, hosts_entries, render_block, replace_block  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------
# Pure pieces.
# ---------------------------------------------------------------------------------


class TestExpansion(unittest.TestCase):
    def test_table(self):
        env = {"A": "x", "B": "y"}
        cases = [
            ("$(A)", "x"), ("$(A)-$(B)", "x-y"), ("$$(A)", "$(A)"), ("$(C)", "$(C)"), ("$(A", "$(A"),
            ("a$", "a$"), ("$A", "$A"), ("$$", "$"), ("$(A)$(A)", "xx"), ("", ""), ("$()", "$()"),
        ]
        for text, want in cases:
            with self.subTest(text=text):
                self.assertEqual(kenv.expand(text, env), want)


class TestEnv(unittest.TestCase):
    def lookup(self, kind, name):
        if kind == "secrets" and name == "s":
            return {"data": {"password": base64.b64encode(b"hunter2").decode(), "user": base64.b64encode(b"u").decode()}}
        if kind == "configmaps" and name == "c":
            return {"data": {"mode": "fast", "bad-key!": "x", "level": "3"}}
        return None

    def pod(self):
        return {"metadata": {"name": "p", "namespace": "ns1", "uid": "u-1", "labels": {"app": "a", "ray.io/cluster": "rc"},
                             "annotations": {"note": "n"}},
                "spec": {"nodeName": "sim-node-1", "serviceAccountName": "sa",
                         "containers": [{"name": "c", "resources": {"limits": {"memory": "2Gi", "cpu": "1500m"}}}]}}

    def test_build_env(self):
        c = {"name": "c", "resources": {"limits": {"memory": "2Gi", "cpu": "1500m"}},
             "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "CM_"}, {"secretRef": {"name": "missing", "optional": True}}],
             "env": [
                 {"name": "A", "value": "1"},
                 {"name": "B", "value": "$(A)-$(CM_mode)-$$(A)-$(NOPE)"},
                 {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                 {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                 {"name": "CL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}}},
                 {"name": "AN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
                 {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                 {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "HIP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                 {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                 {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                 {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
                 {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "s", "key": "nope", "optional": True}}},
                 {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "level"}}},
             ]}
        env = dict(kenv.build_env(self.pod(), c, self.lookup, "127.10.1.7", "127.11.1.1",
                                  {"WEB_SERVICE_HOST": "127.200.0.1"}))
        want = {"A": "1", "B": "1-fast-$(A)-$(NOPE)", "NAME": "p", "NS": "ns1", "UID": "u-1", "CL": "rc", "AN": "n",
                "NODE": "sim-node-1", "SA": "sa", "IP": "127.10.1.7", "HIP": "127.11.1.1", "MEM": "2048", "CPU": "2",
                "PW": "hunter2", "LVL": "3", "CM_mode": "fast", "CM_level": "3", "WEB_SERVICE_HOST": "127.200.0.1"}
        for k, v in want.items():
            self.assertEqual(env.get(k), v, k)
        self.assertNotIn("OPT", env)
        self.assertNotIn("CM_bad-key!", env)

    def test_missing_reference_is_an_error(self):
        c = {"name": "c", "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}
        with self.assertRaises(kenv.EnvError):
            kenv.build_env(self.pod(), c, self.lookup)

    def test_service_env(self):
        env = kenv.service_env([{"metadata": {"name": "redis-svc"},
                                 "spec": {"clusterIP": "127.200.0.9", "ports": [{"name": "redis", "port": 6379}]}}])
        self.assertEqual(env["REDIS_SVC_SERVICE_HOST"], "127.200.0.9")
        self.assertEqual(env["REDIS_SVC_SERVICE_PORT_REDIS"], "6379")
        self.assertEqual(env["REDIS_SVC_PORT_6379_TCP_ADDR"], "127.200.0.9")


class TestImagesAndIdle(unittest.TestCase):
    def test_image_kind(self):
        cases = [("rayproject/ray:2.52.0", "ray"), ("docker.io/rayproject/ray-ml:2.9.0", "ray"), ("anyscale/ray:2.1", "ray"),
                 ("localhost:5000/ray:dev", "ray"), ("ghcr.io/x/raywarden-agent:1", "agent"), ("raywarden/agent", "agent"),
                 ("raywarden/raywarden-controller:0.1.0", "controller"), ("raywarden/raywarden-controller:dev", "controller"),
                 ("redis:7.4.0", "redis"), ("bitnami/redis:7", "redis"), ("python:3.11", "python"), ("busybox", "idle"),
                 ("nginx@sha256:abc", "idle"), ("rayproject/kuberay-operator:1", "idle")]
        for image, kind in cases:
            with self.subTest(image=image):
                self.assertEqual(kenv.image_kind(image), kind)

    def test_controller_args(self):
        """The controller's all-address listeners move to the pod IP (pods share one network
        namespace here); disabled and explicit addresses stay; missing ones get their default."""
        ip = "127.10.1.1"
        cases = [
            (["--metrics-addr=:8080", "--health-probe-bind-address=:8082", "--qps=100"],
             ["--metrics-addr=127.10.1.1:8080", "--health-probe-bind-address=127.10.1.1:8082", "--qps=100",
              "--agent-listen=tcp://127.10.1.1:8478"]),
            (["--metrics-addr", "0.0.0.0:9090", "--agent-listen", "tcp://*:9478", "--health-probe-bind-address=0"],
             ["--metrics-addr", "127.10.1.1:9090", "--agent-listen", "tcp://127.10.1.1:9478",
              "--health-probe-bind-address=0"]),
            (["--metrics-addr=10.0.0.5:8080", "--agent-listen=0"],
             ["--metrics-addr=10.0.0.5:8080", "--agent-listen=0", "--health-probe-bind-address=127.10.1.1:8082"]),
        ]
        for args, want in cases:
            with self.subTest(args=args):
                self.assertEqual(kenv.controller_args(args, ip), want)

    def test_idle_rule(self):
        cases = [
            (["/bin/bash", "-c", "--"], ["while true; do sleep 30; done;"], True),
            (["sleep", "3600"], [], True),
            (["sh", "-c"], ["rm -rf /tmp/x; sleep 1"], False),
            (["sh", "-c"], ["sleep 1 > /tmp/x"], False),
            (["sh", "-c"], ["echo `id`"], False),
            (["sh", "-c"], ["echo $(id)"], False),
            (["bash", "-c"], ["trap 'echo bye' TERM; while true; do sleep 1; done"], True),
            (["bash", "-c"], ["trap 'rm -rf /' TERM; sleep 1"], False),
            (["nginx", "-g", "daemon off;"], [], False),
            ([], [], False),
        ]
        for cmd, args, runs in cases:
            with self.subTest(cmd=cmd, args=args):
                argv, ran = kenv.idle_argv(cmd, args)
                self.assertEqual(ran, runs)
                if not runs:
                    self.assertEqual(argv, ["sleep", "infinity"])


class TestIPAndPhase(unittest.TestCase):
    def test_allocator(self):
        a = kenv.IPAllocator("127.10.3.0/30")
        got = {a.allocate(), a.allocate()}
        self.assertEqual(got, {"127.10.3.1", "127.10.3.2"})
        with self.assertRaises(RuntimeError):
            a.allocate()
        a.release("127.10.3.1")
        self.assertEqual(a.allocate(), "127.10.3.1")

    def test_phase(self):
        cases = [
            ("Always", False, False, [("waiting", None)], "Pending"),
            ("Always", False, True, [("waiting", None)], "Pending"),
            ("Always", False, True, [("running", None)], "Running"),
            ("Always", False, True, [("backoff", 1)], "Running"),
            ("Never", False, True, [("terminated", 0)], "Succeeded"),
            ("Never", False, True, [("terminated", 1)], "Failed"),
            ("Never", False, True, [("terminated", 1), ("running", None)], "Running"),
            ("OnFailure", False, True, [("backoff", 1)], "Running"),
            ("OnFailure", False, True, [("terminated", 0)], "Succeeded"),
            ("Never", True, False, [("waiting", None)], "Failed"),
        ]
        for policy, init_failed, initialized, states, want in cases:
            with self.subTest(policy=policy, states=states):
                self.assertEqual(kenv.pod_phase(policy, init_failed, initialized, states), want)

    def test_qos(self):
        self.assertEqual(kenv.qos_class({"spec": {"containers": [{}]}}), "BestEffort")
        g = {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
        self.assertEqual(kenv.qos_class({"spec": {"containers": [g]}}), "Guaranteed")
        b = {"resources": {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}
        self.assertEqual(kenv.qos_class({"spec": {"containers": [b]}}), "Burstable")


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class TestProbeWorker(unittest.TestCase):
    def run_worker(self, kind, probe, results, started=True, since=0.0, ticks=None):
        clock = FakeClock()
        seq = list(results)
        notes = []
        calls = []

        def fn(*a):
            calls.append(clock.t)
            return seq.pop(0) if seq else (True, "")

        w = ProbeWorker(kind, probe, {"name": "c"}, "127.0.0.1", lambda: {}, lambda: (since, started),
                        lambda k, ok, msg: notes.append((clock.t, ok)), probe_fn=fn, clock=clock)
        period = w.params["periodSeconds"]
        for i in range(10 if ticks is None else ticks):
            clock.t = i * period
            w.step()
        return w, notes, calls

    def test_initial_delay_and_thresholds(self):
        probe = {"initialDelaySeconds": 3, "periodSeconds": 1, "successThreshold": 2, "failureThreshold": 3}
        res = [(True, "")] * 3 + [(False, "x")] * 4
        w, notes, calls = self.run_worker("readiness", probe, res)
        self.assertEqual(calls[0], 3)  # nothing before initialDelaySeconds
        self.assertEqual(notes[0], (4, True))  # successThreshold 2
        self.assertEqual(notes[1], (8, False))  # failureThreshold 3 after first failure at t=6

    def test_initial_values(self):
        w, _, _ = self.run_worker("readiness", {"periodSeconds": 1}, [], ticks=0)
        self.assertFalse(w.result)
        w, _, _ = self.run_worker("liveness", {"periodSeconds": 1}, [], ticks=0)
        self.assertTrue(w.result)

    def test_gated_by_startup(self):
        _, notes, calls = self.run_worker("liveness", {"periodSeconds": 1}, [], started=False)
        self.assertEqual(calls, [])
        _, _, calls = self.run_worker("startup", {"periodSeconds": 1}, [(False, "")], started=True)
        self.assertEqual(calls, [])

    def test_liveness_failure_holds(self):
        probe = {"periodSeconds": 1, "failureThreshold": 2}
        w, notes, calls = self.run_worker("liveness", probe, [(False, "")] * 10)
        self.assertEqual(notes, [(1, False)])
        self.assertEqual(len(calls), 2)  # on hold until a new container instance


class TestVolumes(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.join(HERE, ".tmp-vol-test-%d" % os.getpid())
        os.makedirs(self.dir)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_materialise(self):
        pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "uid-vol-test", "labels": {"a": "b"}},
               "spec": {"volumes": [
                   {"name": "e", "emptyDir": {}},
                   {"name": "m", "emptyDir": {"medium": "Memory"}},
                   {"name": "cm", "configMap": {"name": "c", "items": [{"key": "redis.conf", "path": "conf/r.conf"}]}},
                   {"name": "sec", "secret": {"secretName": "s"}},
                   {"name": "opt", "secret": {"secretName": "nope", "optional": True}},
                   {"name": "dw", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                                            {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]}},
                   {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}},
                                                              {"configMap": {"name": "c"}}]}},
               ], "containers": [{"name": "c"}]}}

        def lookup(kind, name):
            if kind == "configmaps" and name == "c":
                return {"data": {"redis.conf": "port 6379\n"}}
            if kind == "secrets" and name == "s":
                return {"data": {"password": base64.b64encode(b"pw").decode()}}
            return None

        shm = os.path.join(self.dir, "shm")
        os.makedirs(shm)
        paths = materialise(pod, os.path.join(self.dir, "pod"), lookup, "127.10.9.9", "127.11.9.1", "TOKEN",
                            shm_root=os.path.join(shm, "kubesim"))
        self.assertTrue(os.path.isdir(paths["e"]))
        self.assertTrue(paths["m"].startswith(shm))
        with open(os.path.join(paths["cm"], "conf", "r.conf")) as f:
            self.assertEqual(f.read(), "port 6379\n")
        with open(os.path.join(paths["sec"], "password")) as f:
            self.assertEqual(f.read(), "pw")
        with open(os.path.join(paths["dw"], "labels")) as f:
            self.assertEqual(f.read(), 'a="b"')
        with open(os.path.join(paths["dw"], "ip")) as f:
            self.assertEqual(f.read(), "127.10.9.9")
        with open(os.path.join(paths["proj"], "token")) as f:
            self.assertEqual(f.read(), "TOKEN")
        self.assertTrue(os.path.exists(os.path.join(paths["proj"], "redis.conf")))
        # Secret and configMap volumes are written as the kubelet's AtomicWriter does.
        self.assertTrue(os.path.islink(os.path.join(paths["sec"], "..data")))
        self.assertEqual(os.readlink(os.path.join(paths["sec"], "password")), "..data/password")
        self.assertEqual(os.stat(os.path.join(paths["sec"], "password")).st_mode & 0o777, 0o644)
        c = {"name": "c", "volumeMounts": [{"name": "cm", "mountPath": "/usr/local/etc/redis/r.conf", "subPath": "conf/r.conf"},
                                           {"name": "e", "mountPath": "/data", "readOnly": True}]}
        mounts = container_mounts(pod, c, paths, kind="redis")
        self.assertIn((os.path.join(paths["cm"], "conf/r.conf"), "/usr/local/etc/redis/r.conf", False), mounts)
        self.assertIn((paths["e"], "/data", True), mounts)
        argv = wrap_argv(["redis-server"], mounts, "/data")
        self.assertEqual(argv[:4], ["unshare", "-m", "--propagation", "private"])
        self.assertEqual(argv[-1], "redis-server")
        # The controller's: its own UTS namespace named after the pod, fsGroup as its one group.
        argv = wrap_argv(["raywarden-controller"], mounts, None, run_as=(65532, 65532, 65533), hostname="ctl-0")
        self.assertEqual(argv[:3], ["unshare", "-m", "-u"])
        self.assertIn("hostname ctl-0\n", argv[argv.index("-c") + 1])
        self.assertIn("--groups=65533 ", argv[argv.index("-c") + 1])
        plain = wrap_argv(["a"], mounts, run_as=(1, 1))
        self.assertIn("--clear-groups", plain[plain.index("-c") + 1])

    def test_fs_group(self):
        """fsGroup: the kubelet gives the pod's volumes to the group (read-only ones g+r, emptyDir
        g+rw, directories setgid), so a non-root container reads its 0440 Secret."""
        pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "uid-fsg"},
               "spec": {"securityContext": {"fsGroup": 4242},
                        "volumes": [{"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o440}},
                                    {"name": "e", "emptyDir": {}}], "containers": [{"name": "c"}]}}

        def lookup(kind, name):
            return {"data": {"key": base64.b64encode(b"k").decode()}} if kind == "secrets" else None

        paths = materialise(pod, os.path.join(self.dir, "pod"), lookup, "127.10.9.9", "127.11.9.1")
        kvol.apply_fs_group(pod, paths)
        st = os.stat(os.path.join(paths["sec"], "key"))
        self.assertEqual((st.st_gid, st.st_mode & 0o777), (4242, 0o440))
        st = os.stat(paths["e"])
        self.assertEqual(st.st_gid, 4242)
        self.assertTrue(st.st_mode & 0o2000)
        pod["spec"]["securityContext"] = {}
        kvol.apply_fs_group(pod, paths)  # without fsGroup: nothing changes
        self.assertEqual(os.stat(paths["e"]).st_gid, 4242)

    def test_mountpoints_refcount(self):
        # A host lock of its own: another local cluster's kubelet may be running beside this test.
        mp = MountPoints(os.path.join(self.dir, "mp.json"), os.path.join(self.dir, "host.lock"),
                         os.path.join(self.dir, "pending.json"))
        target = os.path.join(self.dir, "a", "b", "c.conf")
        mp.ensure(target, False)
        mp.ensure(target, False)
        self.assertTrue(os.path.isfile(target))
        mp.release(target)
        self.assertTrue(os.path.isfile(target))
        mp.release(target)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "a")))
        mp.close()

    def test_mountpoints_shared_between_kubelets(self):
        """A target two local clusters mount is removed only once neither kubelet can use it:
        removing a directory detaches the mounts on it in every other mount namespace."""
        lock, pending = os.path.join(self.dir, "host.lock"), os.path.join(self.dir, "pending.json")
        a = MountPoints(os.path.join(self.dir, "a.json"), lock, pending)
        b = MountPoints(os.path.join(self.dir, "b.json"), lock, pending)
        target = os.path.join(self.dir, "sa", "token")
        self.assertEqual(a.ensure(target, True), [os.path.join(self.dir, "sa"), target])
        self.assertEqual(b.ensure(target, True), [])  # found: a made it
        a.release(target)
        self.assertTrue(os.path.isdir(target), "removed under b's pod")
        self.assertIn(target, pending_mount_targets(pending))
        a.close()
        other = os.path.join(self.dir, "other")
        b.ensure(other, True)
        b.release(other)  # b is alone now, but its pod still mounts what a left
        self.assertTrue(os.path.isdir(target), "removed under b's pod")
        self.assertFalse(os.path.exists(other))
        b.release(target)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "sa")))
        self.assertEqual(pending_mount_targets(pending), [])
        b.close()


class TestAtomicWriter(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kubesim-atomic-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_swap_and_resync(self):
        d = os.path.join(self.dir, "v")
        self.assertTrue(atomic_write(d, {"key": (b"one", 0o444), "sub/x": (b"1", 0o400)}))
        first = os.readlink(os.path.join(d, "..data"))
        self.assertFalse(atomic_write(d, {"key": (b"one", 0o444), "sub/x": (b"1", 0o400)}))  # unchanged
        self.assertEqual(os.readlink(os.path.join(d, "..data")), first)
        self.assertEqual(os.stat(os.path.join(d, "key")).st_mode & 0o777, 0o444)
        self.assertEqual(os.stat(os.path.join(d, first)).st_mode & 0o777, 0o755)
        ino = os.stat(os.path.join(d, "key")).st_ino
        self.assertTrue(atomic_write(d, {"key": (b"two", 0o444)}))
        with open(os.path.join(d, "key")) as f:
            self.assertEqual(f.read(), "two")
        self.assertNotEqual(os.stat(os.path.join(d, "key")).st_ino, ino)  # what the agent's stat sees
        self.assertFalse(os.path.lexists(os.path.join(d, "sub")))  # gone from the payload
        self.assertFalse(os.path.exists(os.path.join(d, first)))  # old payload removed
        pod = {"spec": {"volumes": [{"name": "v", "secret": {"secretName": "s", "defaultMode": 0o444}},
                                    {"name": "e", "emptyDir": {}}]}}
        objs = {"s": {"data": {"key": base64.b64encode(b"three").decode()}}}
        self.assertEqual(resync(pod, {"v": d, "e": self.dir}, lambda k, n: objs.get(n)), ["v"])
        with open(os.path.join(d, "key")) as f:
            self.assertEqual(f.read(), "three")
        self.assertEqual(resync(pod, {"v": d}, lambda k, n: objs.get(n)), [])
        self.assertEqual(resync(pod, {"v": d}, lambda k, n: None), [])  # deleted: last content stays
        with open(os.path.join(d, "key")) as f:
            self.assertEqual(f.read(), "three")


class TestEndpointsAndNames(unittest.TestCase):
    def pod(self, name, ip, ready, deleting=False, ports=None, phase="Running"):
        md = {"name": name, "namespace": "ns", "uid": "uid-" + name, "labels": {"app": "x"}}
        if deleting:
            md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return {"metadata": md, "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports or []}]},
                "status": {"phase": phase, "podIP": ip,
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}

    def svc(self, publish=False, target="http"):
        return {"metadata": {"name": "s", "namespace": "ns"},
                "spec": {"selector": {"app": "x"}, "publishNotReadyAddresses": publish, "clusterIP": "127.200.0.5",
                         "ports": [{"name": "web", "port": 80, "targetPort": target}]}}

    def test_conditions(self):
        ports = [{"name": "http", "containerPort": 8080}]
        cases = [
            (False, True, False, {"ready": True, "serving": True, "terminating": False}),
            (False, False, False, {"ready": False, "serving": False, "terminating": False}),
            (False, True, True, {"ready": False, "serving": True, "terminating": True}),
            (True, False, False, {"ready": True, "serving": True, "terminating": False}),
        ]
        for publish, ready, deleting, want in cases:
            with self.subTest(publish=publish, ready=ready, deleting=deleting):
                ep = endpoint_for_pod(self.svc(publish), self.pod("a", "127.10.1.1", ready, deleting, ports))
                self.assertEqual(ep["conditions"], want)
                self.assertEqual(ep["targetRef"], {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"})
                self.assertEqual(ep["nodeName"], "n1")

    def test_desired(self):
        ports = [{"name": "http", "containerPort": 8080}]
        pods = [self.pod("a", "127.10.1.1", True, ports=ports), self.pod("b", "127.10.1.2", False, ports=ports),
                self.pod("c", "127.10.1.3", True, True, ports=ports), self.pod("d", None, True, ports=ports),
                self.pod("e", "127.10.1.5", True, ports=ports, phase="Succeeded"),
                self.pod("f", "127.10.1.6", True, ports=[{"name": "other", "containerPort": 1}])]
        groups, subsets = desired_endpoints(self.svc(), pods)
        sig = json.dumps([{"name": "web", "port": 8080, "protocol": "TCP"}], sort_keys=True)
        self.assertEqual([e["targetRef"]["name"] for e in groups[sig][1]], ["a", "b", "c"])
        self.assertEqual(len(subsets), 1)
        self.assertEqual([a["ip"] for a in subsets[0]["addresses"]], ["127.10.1.1"])
        self.assertEqual([a["ip"] for a in subsets[0]["notReadyAddresses"]], ["127.10.1.2"])
        self.assertEqual(find_port(pods[0], {"port": 80, "targetPort": 9000}), 9000)
        self.assertEqual(find_port(pods[0], {"port": 80}), 80)
        self.assertIsNone(find_port(pods[0], {"port": 80, "targetPort": "nope"}))

    def test_selectors(self):
        sel = {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "In", "values": ["x", "y"]},
                                                               {"key": "c", "operator": "DoesNotExist"}]}
        self.assertTrue(match_label_selector(sel, {"a": "1", "b": "y"}))
        self.assertFalse(match_label_selector(sel, {"a": "1", "b": "z"}))
        self.assertFalse(match_label_selector(sel, {"a": "1", "b": "x", "c": ""}))
        self.assertTrue(match_label_selector({}, {"q": "r"}))
        self.assertNotEqual(template_hash({"a": 1}), template_hash({"a": 2}))

    def test_hosts_block(self):
        svcs = [{"metadata": {"name": "redis", "namespace": "default"}, "spec": {"clusterIP": "127.200.0.2"}},
                {"metadata": {"name": "redis", "namespace": "other",
                              "annotations": {"kubesim.raywarden.io/proxy-cluster-ip": "127.201.0.9"}},
                 "spec": {"clusterIP": "10.96.0.5"}},
                {"metadata": {"name": "solo", "namespace": "team"}, "spec": {"clusterIP": "127.200.0.3"}},
                {"metadata": {"name": "dup", "namespace": "a"}, "spec": {"clusterIP": "127.200.0.4"}},
                {"metadata": {"name": "dup", "namespace": "b"}, "spec": {"clusterIP": "127.200.0.6"}},
                {"metadata": {"name": "hl", "namespace": "team"}, "spec": {"clusterIP": "None"}}]
        slices = [{"metadata": {"namespace": "team", "labels": {"kubernetes.io/service-name": "hl"}},
                   "endpoints": [{"addresses": ["127.10.1.9"], "conditions": {"ready": True}},
                                 {"addresses": ["127.10.1.8"], "conditions": {"ready": False}}]}]
        self.assertEqual(effective_cluster_ip(svcs[1]), "127.201.0.9")
        ent = hosts_entries(svcs, slices)
        names = {}
        for ip, ns in ent:
            for n in ns:
                names.setdefault(n, []).append(ip)
        self.assertEqual(names["redis"], ["127.200.0.2"])
        self.assertEqual(names["redis.other.svc.cluster.local"], ["127.201.0.9"])
        self.assertEqual(names["solo"], ["127.200.0.3"])
        self.assertNotIn("dup", names)
        self.assertEqual(names["hl.team.svc.cluster.local"], ["127.10.1.9"])
        block = render_block("T", ent)
        text = "127.0.0.1 localhost\n"
        once = replace_block(text, "T", block)
        self.assertEqual(replace_block(once, "T", block), once)
        self.assertEqual(replace_block(once, "T", ""), text)


# ---------------------------------------------------------------------------------
# Against a running local cluster.
# ---------------------------------------------------------------------------------


def server_pod(name, ns="default", labels=None, readiness=None, liveness=None, extra=None, grace=None):
    c = {"name": "web", "image": "python:3.11", "command": ["python3", "/app/server.py", "8080"],
         "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
         "ports": [{"name": "http", "containerPort": 8080}],
         "volumeMounts": [{"name": "app", "mountPath": "/app"}]}
    if readiness:
        c["readinessProbe"] = readiness
    if liveness:
        c["livenessProbe"] = liveness
    spec = {"containers": [c], "volumes": [{"name": "app", "configMap": {"name": "test-server"}}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    if extra:
        spec.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": spec}


class ClusterTest(unittest.TestCase):
    cl = None

    @classmethod
    def setUpClass(cls):
        cls.cl = LocalCluster(nodes=2, backoff_base=1.0, job_backoff_base=0.3)
        cls.c = cls.cl.client
        cls.c.create("configmaps", "default", {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "test-server"}, "data": {"server.py": TEST_SERVER}})

    @classmethod
    def tearDownClass(cls):
        if cls.cl:
            cls.cl.down()

    def create(self, obj, resource="pods"):
        ns = obj["metadata"].get("namespace", "default")
        return self.c.create(resource, ns, obj)

    def delete_quietly(self, resource, ns, name):
        self.c.delete_ignore_missing(resource, ns, name, grace=0)


def sigterm_caught(pid):
    """Whether process pid has a handler for SIGTERM (SigCgt in /proc/<pid>/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


class TestPods(ClusterTest):
    def test_http_readiness_timing_and_loss(self):
        p = server_pod("probe-http", labels={"app": "probe-http"},
                       readiness={"httpGet": {"path": "/", "port": "http"}, "initialDelaySeconds": 2, "periodSeconds": 1,
                                  "failureThreshold": 2})
        self.create(p)
        self.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probe-http"},
                     "spec": {"selector": {"app": "probe-http"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}},
                    "services")
        running = self.cl.wait_pod("default", "probe-http", lambda x: x["status"].get("phase") == "Running")
        t_run = time.monotonic()
        self.assertFalse(is_ready(running))
        ip = running["status"]["podIP"]
        self.assertTrue(ip.startswith("127.10."))
        wait_for(lambda: self._http_ok(ip), 5, what="server up")
        pod = self.cl.wait_pod("default", "probe-http", is_ready, what="ready")
        took = time.monotonic() - t_run
        self.assertGreaterEqual(took, 1.0, "Ready before initialDelaySeconds")
        self.assertLess(took, 4.5)
        self.assertTrue(pod["status"]["containerStatuses"][0]["ready"])
        # The EndpointSlice follows within a fraction of a second.
        wait_for(lambda: self._slice_ready("probe-http") == [True], 2, what="slice ready")
        # So does the Endpoints object, but as a write of its own: Kubernetes keeps it with a
        # separate controller, in no order with the slice, so it is waited for on its own.
        wait_for(lambda: self._endpoints_ips("probe-http") == ([ip], []), 5, what="endpoints: %s ready" % ip)
        t0 = time.monotonic()
        http_get("http://%s:8080/fail" % ip)
        self.cl.wait_pod("default", "probe-http", lambda x: not is_ready(x), what="not ready")
        lost = time.monotonic() - t0
        self.assertGreater(lost, 0.5, "failureThreshold 2 needs two failed probes")
        self.assertLess(lost, 4.0)
        wait_for(lambda: self._slice_ready("probe-http") == [False], 2, what="slice not ready")
        wait_for(lambda: self._endpoints_ips("probe-http") == ([], [ip]), 5, what="endpoints: %s not ready" % ip)
        http_get("http://%s:8080/heal" % ip)
        self.cl.wait_pod("default", "probe-http", is_ready, what="ready again")

    def _http_ok(self, ip):
        try:
            return http_get("http://%s:8080/" % ip, 1)[0] == 200
        except OSError:
            return False

    def _slice_ready(self, svc, ns="default"):
        out = []
        for s in self.c.list("endpointslices", ns, label_selector="kubernetes.io/service-name=" + svc)["items"]:
            for e in s.get("endpoints") or []:
                out.append(e["conditions"]["ready"])
        return out

    def _endpoints_ips(self, svc, ns="default"):
        """(ready addresses, not-ready addresses) of the Endpoints object svc; ([], []) while absent."""
        subsets = (self.c.get_or_none("endpoints", ns, svc) or {}).get("subsets") or []
        return ([a["ip"] for s in subsets for a in s.get("addresses") or []],
                [a["ip"] for s in subsets for a in s.get("notReadyAddresses") or []])

    def test_tcp_readiness_exec_liveness_restart(self):
        # KubeRay-style exec probe through the wget shim: localhost is the pod.
        live = {"exec": {"command": ["bash", "-c", "wget --tries 1 -T 2 -q -O- http://localhost:8080/ | grep live"]},
                "initialDelaySeconds": 1, "periodSeconds": 1, "failureThreshold": 1}
        p = server_pod("probe-live", readiness={"tcpSocket": {"port": 8080}, "periodSeconds": 1}, liveness=live)
        p["spec"]["containers"][0]["env"].append({"name": "POD_NAME", "value": "alive"})
        self.create(p)
        pod = self.cl.wait_pod("default", "probe-live", is_ready, what="ready")
        self.assertEqual(pod["status"]["containerStatuses"][0]["restartCount"], 0)
        ip = pod["status"]["podIP"]
        http_get("http://%s:8080/fail" % ip)
        pod = self.cl.wait_pod("default", "probe-live",
                               lambda x: x["status"]["containerStatuses"][0]["restartCount"] >= 1, 10, "restart")
        cs = pod["status"]["containerStatuses"][0]
        self.assertIn("terminated", cs["lastState"])
        self.assertIn(cs["lastState"]["terminated"]["exitCode"], (137, 143))
        # The new instance serves again, so it becomes ready and stays alive.
        pod = self.cl.wait_pod("default", "probe-live", is_ready, 10, "ready after restart")
        self.assertEqual(pod["status"]["containerStatuses"][0]["restartCount"], 1)

    def test_ephemeral_containers(self):
        """An ephemeral container added to a running pod starts once, with env from a Secret and
        the pod's volumes, is reported in ephemeralContainerStatuses, never restarts and leaves
        the pod's containers and readiness alone."""
        self.c.create("secrets", "default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ephsec"},
                                             "data": {"key": base64.b64encode(b"k3y").decode()}})
        p = server_pod("ephem", readiness={"tcpSocket": {"port": 8080}, "periodSeconds": 1})
        self.create(p)
        pod = self.cl.wait_pod("default", "ephem", is_ready, what="ready")
        uid, ip = pod["metadata"]["uid"], pod["status"]["podIP"]
        script = ("import os, sys, time\n"
                  "print('EPH', os.environ.get('KEY'), os.path.exists('/app/server.py'), flush=True)\n"
                  "sys.exit(3) if os.environ.get('FAIL') else time.sleep(3600)\n")
        steady = {"name": "steady", "image": "python:3.11", "command": ["python3", "-c", script],
                  "env": [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "ephsec", "key": "key"}}}],
                  "volumeMounts": [{"name": "app", "mountPath": "/app"}]}
        self.c.patch("pods", "default", "ephem", {"spec": {"ephemeralContainers": [steady]}},
                     sub="ephemeralcontainers", ptype=STRATEGIC_PATCH)

        def eph(x, name):
            for s in (x.get("status") or {}).get("ephemeralContainerStatuses") or []:
                if s["name"] == name:
                    return s
            return None

        pod = self.cl.wait_pod("default", "ephem", lambda x: "running" in ((eph(x, "steady") or {}).get("state") or {}),
                               what="ephemeral container running")
        st = eph(pod, "steady")
        self.assertFalse(st["ready"])  # never Ready
        self.assertEqual(st["restartCount"], 0)
        self.assertTrue(is_ready(pod))
        self.assertEqual(pod["status"]["containerStatuses"][0]["restartCount"], 0)
        def log_text():
            logs = self.cl.kubelet("/logs?namespace=default&pod=ephem&container=steady")
            return logs.decode() if isinstance(logs, bytes) else json.dumps(logs)
        wait_for(lambda: "EPH k3y True" in log_text(), 10, what="env from the Secret and the pod's volume")
        # A second one that fails: terminated, not restarted; the first keeps running.
        failing = dict(steady, name="failing", env=steady["env"] + [{"name": "FAIL", "value": "1"}])
        self.c.patch("pods", "default", "ephem", {"spec": {"ephemeralContainers": [failing]}},
                     sub="ephemeralcontainers", ptype=STRATEGIC_PATCH)
        pod = self.cl.wait_pod("default", "ephem",
                               lambda x: "terminated" in ((eph(x, "failing") or {}).get("state") or {}),
                               what="failing ephemeral container terminated")
        self.assertEqual(eph(pod, "failing")["state"]["terminated"]["exitCode"], 3)
        t_end = time.monotonic()
        while time.monotonic() - t_end < 2.5:  # well beyond the 1 s back-off of this cluster
            pod = self.c.get("pods", "default", "ephem")
            self.assertEqual(eph(pod, "failing")["restartCount"], 0)
            self.assertIn("terminated", eph(pod, "failing")["state"])
            time.sleep(0.25)
        self.assertIn("running", eph(pod, "steady")["state"])
        self.assertEqual(pod["metadata"]["uid"], uid)
        self.assertEqual(pod["status"]["podIP"], ip)
        self.assertTrue(is_ready(pod))
        # The API server refuses changing or removing one.
        with self.assertRaises(ApiError) as e:
            self.c.patch("pods", "default", "ephem",
                         {"spec": {"ephemeralContainers": [dict(steady, image="python:3.12")]}},
                         sub="ephemeralcontainers", ptype=STRATEGIC_PATCH)
        self.assertEqual(e.exception.code, 422)
        self.delete_quietly("pods", "default", "ephem")

    def test_readiness_gate(self):
        p = server_pod("gated", readiness={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                       extra={"readinessGates": [{"conditionType": "raywarden.io/ready"}]})
        self.create(p)
        pod = self.cl.wait_pod("default", "gated",
                               lambda x: (condition(x, "ContainersReady") or {}).get("status") == "True", what="containers ready")
        ready = condition(pod, "Ready")
        self.assertEqual(ready["status"], "False")
        self.assertEqual(ready["reason"], "ReadinessGatesNotReady")

        def set_gate(status):
            def mutate(obj):
                conds = [c for c in obj["status"].get("conditions", []) if c["type"] != "raywarden.io/ready"]
                conds.append({"type": "raywarden.io/ready", "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"})
                obj["status"]["conditions"] = conds
            self.c.update_status("pods", "default", "gated", mutate)

        t0 = time.monotonic()
        set_gate("True")
        self.cl.wait_pod("default", "gated", is_ready, 3, "ready through gate")
        self.assertLess(time.monotonic() - t0, 1.0)
        set_gate("False")
        pod = self.cl.wait_pod("default", "gated", lambda x: not is_ready(x), 3, "gate off")
        self.assertEqual(condition(pod, "raywarden.io/ready")["status"], "False")

    def test_init_containers_env_and_volumes(self):
        self.c.create("secrets", "default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "envsec"},
                                             "data": {"password": base64.b64encode(b"s3cret").decode()}})
        script = ("import os, json, time\n"
                  "out = {k: os.environ.get(k) for k in ('NAME','NS','UID','CL','NODE','IP','HIP','MEM','PW','OPT','B','RW_SIM_POD_IP')}\n"
                  "out['labels'] = open('/etc/podinfo/labels').read()\n"
                  "out['secret'] = open('/etc/sec/password').read()\n"
                  "out['sa_ns'] = open('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read()\n"
                  "out['init'] = sorted(os.listdir('/work'))\n"
                  "print('ENV' + json.dumps(out), flush=True)\n"
                  "time.sleep(3600)\n")
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "envpod", "labels": {"ray.io/cluster": "rc1"}},
               "spec": {
                   "initContainers": [
                       {"name": "init-a", "image": "busybox", "command": ["sh", "-c", "sleep 0.3; exit 0"]},
                       {"name": "init-b", "image": "python:3.11",
                        "command": ["python3", "-c", "open('/work/done-b','w').write('x')"],
                        "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
                   "containers": [{
                       "name": "main", "image": "python:3.11", "command": ["python3", "-c", script],
                       "resources": {"limits": {"memory": "512Mi"}},
                       "env": [
                           {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                           {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                           {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                           {"name": "CL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}}},
                           {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                           {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                           {"name": "HIP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                           {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                           {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "envsec", "key": "password"}}},
                           {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "envsec", "key": "x", "optional": True}}},
                           {"name": "B", "value": "$(NAME)@$(NS) $$(NAME)"}],
                       "volumeMounts": [{"name": "podinfo", "mountPath": "/etc/podinfo"},
                                        {"name": "sec", "mountPath": "/etc/sec", "readOnly": True},
                                        {"name": "work", "mountPath": "/work"}]}],
                   "volumes": [{"name": "work", "emptyDir": {}},
                               {"name": "sec", "secret": {"secretName": "envsec"}},
                               {"name": "podinfo", "downwardAPI": {"items": [
                                   {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}}
        self.create(pod)
        pod = self.cl.wait_pod("default", "envpod", lambda x: x["status"].get("phase") == "Running", 15, "running")
        ist = pod["status"]["initContainerStatuses"]
        self.assertEqual([s["state"]["terminated"]["exitCode"] for s in ist], [0, 0])
        self.assertEqual(condition(pod, "Initialized")["status"], "True")
        out = wait_for(lambda: self._env_line("default", "envpod"), 10, what="env printed")
        self.assertEqual(out["NAME"], "envpod")
        self.assertEqual(out["NS"], "default")
        self.assertEqual(out["UID"], pod["metadata"]["uid"])
        self.assertEqual(out["CL"], "rc1")
        self.assertEqual(out["NODE"], pod["spec"]["nodeName"])
        self.assertEqual(out["IP"], pod["status"]["podIP"])
        self.assertEqual(out["RW_SIM_POD_IP"], pod["status"]["podIP"])
        self.assertEqual(out["HIP"], pod["status"]["hostIP"])
        self.assertEqual(out["MEM"], "512")
        self.assertEqual(out["PW"], "s3cret")
        self.assertIsNone(out["OPT"])
        self.assertEqual(out["B"], "envpod@default $(NAME)")
        self.assertEqual(out["labels"], 'ray.io/cluster="rc1"')
        self.assertEqual(out["secret"], "s3cret")
        self.assertEqual(out["sa_ns"], "default")
        self.assertEqual(out["init"], ["done-b"])

    def _env_line(self, ns, name):
        logs = self.cl.kubelet("/logs?namespace=%s&pod=%s&container=main" % (ns, name))
        text = logs.decode() if isinstance(logs, bytes) else json.dumps(logs)
        for line in text.splitlines():
            if line.startswith("ENV"):
                return json.loads(line[3:])
        return None

    def test_secret_volume_follows_the_secret(self):
        """A Secret update reaches a running container's mounted volume through the
        ..data symlink swap, within the sync period, without a restart."""
        self.c.create("secrets", "default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rot"},
                                             "data": {"key": base64.b64encode(b"one").decode()}})
        script = ("import time\n"
                  "last = None\n"
                  "while True:\n"
                  "    v = open('/etc/rot/key').read()\n"
                  "    if v != last:\n"
                  "        print('KEY ' + v, flush=True)\n"
                  "        last = v\n"
                  "    time.sleep(0.05)\n")
        self.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rotpod"},
                     "spec": {"containers": [{"name": "main", "image": "python:3.11", "command": ["python3", "-c", script],
                                              "volumeMounts": [{"name": "rot", "mountPath": "/etc/rot", "readOnly": True}]}],
                              "volumes": [{"name": "rot", "secret": {"secretName": "rot", "defaultMode": 0o440}}]}})
        self.cl.wait_pod("default", "rotpod", lambda x: x["status"].get("phase") == "Running", 15, "running")

        def keys():
            logs = self.cl.kubelet("/logs?namespace=default&pod=rotpod&container=main")
            text = logs.decode() if isinstance(logs, bytes) else json.dumps(logs)
            return [line[4:] for line in text.splitlines() if line.startswith("KEY ")]
        wait_for(lambda: keys() == ["one"], 10, what="first key read")
        pid = [p for p in self.cl.kubelet("/pods")["pods"] if p["name"] == "rotpod"][0]["containers"][0]["pid"]
        self.c.patch("secrets", "default", "rot", {"data": {"key": base64.b64encode(b"two").decode()}})
        # The simulator syncs every RW_SIM_VOLUME_SYNC_S (2 s); the real kubelet within ~1 min.
        wait_for(lambda: keys() == ["one", "two"], 15, what="the new key seen by the running container")
        pods = [p for p in self.cl.kubelet("/pods")["pods"] if p["name"] == "rotpod"]
        self.assertEqual(pods[0]["containers"][0]["pid"], pid, "no restart")

    def test_missing_secret_blocks_start(self):
        p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nosecret"},
             "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                      "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]}]}}
        self.create(p)
        pod = self.cl.wait_pod("default", "nosecret",
                               lambda x: ((x["status"].get("containerStatuses") or [{}])[0].get("state") or {})
                               .get("waiting", {}).get("reason") == "CreateContainerConfigError", 10, "config error")
        self.assertEqual(pod["status"]["phase"], "Pending")
        self.c.create("secrets", "default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "absent"},
                                             "data": {"k": base64.b64encode(b"v").decode()}})
        self.cl.wait_pod("default", "nosecret", lambda x: x["status"].get("phase") == "Running", 10, "running after secret")

    def test_graceful_deletion(self):
        stubborn = ("import signal, time\n"
                    "signal.signal(signal.SIGTERM, lambda *a: print('TERM', flush=True))\n"
                    "while True: time.sleep(0.1)\n")
        for name, cmd in (("stubborn", ["python3", "-c", stubborn]), ("polite", ["sleep", "3600"])):
            self.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "grace"}},
                         "spec": {"terminationGracePeriodSeconds": 2,
                                  "containers": [{"name": "c", "image": "python:3.11" if name == "stubborn" else "busybox",
                                                  "command": cmd}]}})
        self.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "grace"},
                     "spec": {"selector": {"app": "grace"}, "ports": [{"port": 80}]}}, "services")
        for name in ("stubborn", "polite"):
            self.cl.wait_pod("default", name, is_ready, 10, name + " ready")
        pids = {p["name"]: p["containers"][0]["pid"] for p in self.cl.kubelet("/pods")["pods"] if p["name"] in ("stubborn", "polite")}
        self.assertEqual(len(pids), 2)
        # Ready means started, not that Python has run the signal.signal line yet (on a
        # loaded machine its start-up takes seconds): a SIGTERM before that kills it at once.
        wait_for(lambda: sigterm_caught(pids["stubborn"]), 30, what="stubborn's SIGTERM handler installed")
        t0 = time.monotonic()
        self.c.delete("pods", "default", "polite")
        wait_for(lambda: self.cl.pod("default", "polite") is None, 5, what="polite gone")
        polite_took = time.monotonic() - t0
        self.assertLess(polite_took, 1.5, "SIGTERM should end a process that does not trap it")
        t0 = time.monotonic()
        self.c.delete("pods", "default", "stubborn")
        # While terminating, the slice reports it serving but terminating.
        wait_for(lambda: any(e["conditions"].get("terminating") and e["conditions"].get("serving")
                             and not e["conditions"].get("ready")
                             for s in self.c.list("endpointslices", "default",
                                                  label_selector="kubernetes.io/service-name=grace")["items"]
                             for e in s.get("endpoints") or []), 3, what="terminating endpoint")
        wait_for(lambda: self.cl.pod("default", "stubborn") is None, 8, what="stubborn gone")
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 1.8, "SIGKILL came before the grace period")
        self.assertLess(took, 5.0)
        for pid in pids.values():
            self.assertFalse(os.path.exists("/proc/%d/stat" % pid) and "Z" not in open("/proc/%d/stat" % pid).read().split(") ")[1][:1],
                             "process %d still alive" % pid)

    def test_restart_policy_never_and_onfailure(self):
        for name, policy, script in (("ok-never", "Never", "sleep 0.2; exit 0"), ("bad-never", "Never", "exit 3"),
                                     ("bad-onfailure", "OnFailure", "exit 2")):
            self.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                         "spec": {"restartPolicy": policy,
                                  "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]}})
        ok = self.cl.wait_pod("default", "ok-never", lambda x: x["status"].get("phase") == "Succeeded", 10, "succeeded")
        self.assertEqual(ok["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed")
        bad = self.cl.wait_pod("default", "bad-never", lambda x: x["status"].get("phase") == "Failed", 10, "failed")
        self.assertEqual(bad["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3)
        # OnFailure: restarted with back-off (immediately, then 1 s with the test's base).
        pod = self.cl.wait_pod("default", "bad-onfailure",
                               lambda x: x["status"]["containerStatuses"][0]["restartCount"] >= 2, 10, "restarts")
        self.assertEqual(pod["status"]["phase"], "Running")
        waiting = wait_for(lambda: (lambda p: p if "waiting" in p["status"]["containerStatuses"][0]["state"] else None)(
            self.cl.pod("default", "bad-onfailure")), 5, what="crash loop back-off")
        self.assertEqual(waiting["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "CrashLoopBackOff")

    def test_kubectl_apply_and_wait(self):
        kubectl = shutil.which("kubectl")
        if not kubectl:
            self.skipTest("kubectl not installed")
        manifest = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubectl-pod\nspec:\n  containers:\n"
                    "  - name: c\n    image: busybox\n    command: [sh, -c, 'while true; do sleep 1; done']\n"
                    "    readinessProbe:\n      exec:\n        command: [\"true\"]\n      periodSeconds: 1\n")
        env = dict(os.environ, KUBECONFIG=self.cl.kubeconfig)
        r = subprocess.run([kubectl, "apply", "-f", "-"], input=manifest.encode(), env=env, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        r = subprocess.run([kubectl, "wait", "--for=condition=Ready", "pod/kubectl-pod", "--timeout=20s"], env=env,
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        r = subprocess.run([kubectl, "get", "pod", "kubectl-pod", "-o", "jsonpath={.status.phase} {.status.podIP}"],
                           env=env, capture_output=True, timeout=30)
        phase, ip = r.stdout.decode().split()
        self.assertEqual(phase, "Running")
        self.assertTrue(ip.startswith("127.10."))
        # kubectl logs goes through the API server's pods/log to the kubelet's log file.
        logp = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "logger"},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                                         "command": ["sh", "-c", "echo hello-from-pod; sleep 3600"]}]}}
        self.create(logp)
        self.cl.wait_pod("default", "logger", lambda x: x["status"].get("phase") == "Running", 10, "logger running")
        out = wait_for(lambda: (lambda r: r.stdout.decode() if b"hello-from-pod" in r.stdout else None)(
            subprocess.run([kubectl, "logs", "logger"], env=env, capture_output=True, timeout=30)), 5, what="kubectl logs")
        self.assertIn("hello-from-pod", out)

    def test_ray_head_with_kuberay_probe(self):
        if not os.path.exists(os.path.join(HERE, "bin", "ray")):
            self.skipTest("Ray node simulator not present")
        probe = ("wget --tries 1 -T 2 -q -O- http://localhost:52365/api/local_raylet_healthz | grep success && "
                 "wget --tries 1 -T 10 -q -O- http://localhost:8265/api/gcs_healthz | grep success")
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "ray-head", "labels": {"ray.io/cluster": "rc", "ray.io/node-type": "head"}},
               "spec": {"volumes": [{"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}],
                        "containers": [{
                            "name": "ray-head", "image": "rayproject/ray:2.52.0", "command": ["/bin/bash", "-c", "--"],
                            "args": ["ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start --head --block "
                                     "--dashboard-agent-listen-port=52365 --num-cpus=0 --metrics-export-port=8080 "
                                     "--dashboard-host=0.0.0.0"],
                            "volumeMounts": [{"mountPath": "/dev/shm", "name": "shared-mem"}],
                            "readinessProbe": {"exec": {"command": ["bash", "-c", probe]}, "initialDelaySeconds": 1,
                                               "periodSeconds": 1, "timeoutSeconds": 5, "failureThreshold": 10},
                            "livenessProbe": {"exec": {"command": ["bash", "-c", probe]}, "initialDelaySeconds": 30,
                                              "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 120}}]}}
        self.create(pod)
        pod = self.cl.wait_pod("default", "ray-head", is_ready, 30, "ray head ready")
        ip = pod["status"]["podIP"]
        code, body = http_get("http://%s:8265/api/gcs_healthz" % ip)
        self.assertEqual(code, 200)
        self.assertIn("success", body)


    def test_ray_head_with_agent_sidecar(self):
        build = os.environ.get("RW_BUILD_DIR") or os.path.join(os.path.dirname(os.path.dirname(HERE)), "build")
        if not os.path.exists(os.path.join(HERE, "bin", "ray")) or \
                not os.access(os.path.join(build, "bin", "raywarden-agent"), os.X_OK):
            self.skipTest("Ray node simulator or raywarden-agent binary missing")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ray-agent-head"},
               "spec": {"containers": [
                   {"name": "ray-head", "image": "rayproject/ray:2.52.0", "command": ["/bin/bash", "-c", "--"],
                    "args": ["ray start --head --block --dashboard-agent-listen-port=52365 --num-cpus=0"]},
                   {"name": "raywarden-agent", "image": "ghcr.io/raywarden/raywarden-agent:dev",
                    "args": ["--node-type=head"],
                    "env": [{"name": "RAYWARDEN_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8477}, "periodSeconds": 1,
                                       "failureThreshold": 1}}]}}
        self.create(pod)
        pod = self.cl.wait_pod("default", "ray-agent-head", is_ready, 40, "agent reports the head ready")
        self.assertTrue(all(cs["ready"] for cs in pod["status"]["containerStatuses"]))

    def test_watch_drops_and_compaction(self):
        for path in ("/_sim/drop-watches", "/_sim/compact"):
            self.c.request("POST", path, {})
        self.create(server_pod("after-drop", readiness={"tcpSocket": {"port": 8080}, "periodSeconds": 1}))
        self.cl.wait_pod("default", "after-drop", is_ready, 15, "pod handled after watches were dropped")


class TestServicesAndControllers(ClusterTest):
    def test_proxy_routes_only_to_ready(self):
        for n in ("lb-a", "lb-b"):
            self.create(server_pod(n, labels={"app": "lb"},
                                   readiness={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1, "failureThreshold": 1}))
        self.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                     "spec": {"selector": {"app": "lb"}, "ports": [{"name": "http", "port": 8000, "targetPort": "http"}]}},
                    "services")
        pa = self.cl.wait_pod("default", "lb-a", is_ready, 10, "lb-a")
        self.cl.wait_pod("default", "lb-b", is_ready, 10, "lb-b")
        wait_for(lambda: self._resolves("lb.default.svc.cluster.local"), 5, what="DNS")
        ip = self._resolves("lb")
        self.assertTrue(ip.startswith("127.20"))
        wait_for(lambda: self._seen(20) == {"lb-a", "lb-b"}, 10, what="both backends used")
        http_get("http://%s:8080/fail" % pa["status"]["podIP"])
        self.cl.wait_pod("default", "lb-a", lambda x: not is_ready(x), 5, "lb-a not ready")
        # Several answers in a row from lb-b only: one could come from lb-b by turn while the
        # proxy still has lb-a (seen under ctest -j2).
        wait_for(lambda: self._seen(6) == {"lb-b"}, 10, what="slice update reaches the proxy")
        self.assertEqual(self._seen(30), {"lb-b"})
        before = self.cl.proxy_stats()["default/lb:http"]
        pb = self.cl.pod("default", "lb-b")
        http_get("http://%s:8080/fail" % pb["status"]["podIP"])
        self.cl.wait_pod("default", "lb-b", lambda x: not is_ready(x), 5, "lb-b not ready")
        wait_for(lambda: self._fails(), 3, what="no endpoint -> failure")
        after = self.cl.proxy_stats()["default/lb:http"]
        self.assertGreater(after["failed"], before["failed"])
        self.assertGreater(after["rejected"], before["rejected"])
        self.assertGreaterEqual(after["forwarded"], before["forwarded"])

    def _resolves(self, name):
        try:
            return socket.gethostbyname(name)
        except OSError:
            return None

    def _seen(self, n):
        seen = set()
        for _ in range(n):
            try:
                seen.add(http_get("http://lb:8000/", 2)[1])
            except urllib.error.HTTPError as e:
                seen.add("http-%d" % e.code)
            except OSError:
                seen.add("error")
        return seen

    def _fails(self):
        """True when the connection itself fails (an HTTP error answer is not that)."""
        try:
            http_get("http://lb:8000/", 2)
            return False
        except urllib.error.HTTPError:
            return False
        except OSError:
            return True

    def test_dns_names_and_headless(self):
        self.cl.ensure_namespace("team")
        self.create(server_pod("hl-pod", ns="team", labels={"app": "hl"},
                               readiness={"tcpSocket": {"port": 8080}, "periodSeconds": 1}, extra={}),)
        self.c.create("configmaps", "team", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-server"},
                                             "data": {"server.py": TEST_SERVER}})
        self.c.create("services", "team", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "teamsvc"},
                                           "spec": {"selector": {"app": "hl"}, "ports": [{"port": 81, "targetPort": 8080}]}})
        self.c.create("services", "team", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hl"},
                                           "spec": {"clusterIP": "None", "selector": {"app": "hl"},
                                                    "ports": [{"port": 8080}]}})
        pod = self.cl.wait_pod("team", "hl-pod", is_ready, 15, "hl-pod ready")
        svc = self.c.get("services", "team", "teamsvc")
        want = wait_for(lambda: effective_cluster_ip(self.c.get("services", "team", "teamsvc")), 5, what="cluster ip")
        for name in ("teamsvc", "teamsvc.team", "teamsvc.team.svc", "teamsvc.team.svc.cluster.local"):
            self.assertEqual(wait_for(lambda n=name: self._resolves(n), 5, what=name), want, name)
        self.assertEqual(wait_for(lambda: self._resolves("hl.team.svc.cluster.local"), 5, what="headless"),
                         pod["status"]["podIP"])
        self.assertEqual(http_get("http://teamsvc.team:81/")[1], "hl-pod")
        del svc

    def test_redis_sample(self):
        path = "/work/shared/corpus/kuberay-samples/ray-service.high-availability.yaml"
        kubectl = shutil.which("kubectl")
        if not os.path.exists(path) or not kubectl or not shutil.which("redis-server"):
            self.skipTest("sample, kubectl or redis-server missing")
        with open(path) as f:
            docs = f.read().split("\n---\n")
        keep = [d for d in docs if "kind: RayService" not in d and
                ("redis" in d.split("metadata:")[1][:120] if "metadata:" in d else False)]
        env = dict(os.environ, KUBECONFIG=self.cl.kubeconfig)
        r = subprocess.run([kubectl, "apply", "-f", "-"], input="\n---\n".join(keep).encode(), env=env,
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        wait_for(lambda: (self.c.get("deployments", "default", "redis").get("status") or {}).get("readyReplicas") == 1,
                 20, what="redis deployment ready")
        wait_for(lambda: self._resolves("redis"), 5, what="redis name")
        out = wait_for(lambda: self._redis_ping(), 10, what="redis ping through the service")
        self.assertEqual(out, "PONG")

    def _redis_ping(self):
        r = subprocess.run(["redis-cli", "-h", "redis", "-a", "5241590000000000", "--no-auth-warning", "ping"],
                           capture_output=True, timeout=5)
        return r.stdout.decode().strip() if r.returncode == 0 and r.stdout.strip() == b"PONG" else None

    def test_deployment_scale_and_rollout(self):
        dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "dweb"}},
                        "template": {"metadata": {"labels": {"app": "dweb"}},
                                     "spec": {"containers": [{"name": "c", "image": "busybox",
                                                              "command": ["sh", "-c", "while true; do sleep 1; done"]}]}}}}
        self.c.create("deployments", "default", dep)

        def status():
            return self.c.get("deployments", "default", "web").get("status") or {}

        wait_for(lambda: status().get("readyReplicas") == 2 and status().get("availableReplicas") == 2, 15, what="2 ready")
        st = status()
        self.assertEqual(st["updatedReplicas"], 2)
        self.assertEqual(condition({"status": st}, "Available")["status"], "True")
        pods = self.c.list("pods", "default", label_selector="app=dweb")["items"]
        self.assertEqual(len(pods), 2)
        self.assertTrue(all(p["metadata"]["ownerReferences"][0]["kind"] == "Deployment" for p in pods))
        # Scale through the scale subresource.
        self.c.patch("deployments", "default", "web", {"spec": {"replicas": 3}}, sub="scale")
        wait_for(lambda: status().get("readyReplicas") == 3, 15, what="3 ready")
        # A template change replaces every pod.
        old = {p["metadata"]["name"] for p in self.c.list("pods", "default", label_selector="app=dweb")["items"]}
        self.c.patch("deployments", "default", "web",
                     {"spec": {"template": {"metadata": {"annotations": {"rev": "2"}}}}})
        wait_for(lambda: (lambda items: len(items) == 3 and not ({p["metadata"]["name"] for p in items} & old)
                          and all(is_ready(p) for p in items))(
            [p for p in self.c.list("pods", "default", label_selector="app=dweb")["items"]
             if not p["metadata"].get("deletionTimestamp")]), 30, what="rollout")
        wait_for(lambda: status().get("updatedReplicas") == 3 and status().get("readyReplicas") == 3
                 and status().get("replicas") == 3, 10, what="status after rollout")
        self.c.delete("deployments", "default", "web")
        wait_for(lambda: not self.c.list("pods", "default", label_selector="app=dweb")["items"], 15, what="pods gone")

    def test_jobs(self):
        def job(name, script, **spec):
            s = {"template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]}}}
            s.update(spec)
            return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": s}

        self.c.create("jobs", "default", job("job-ok", "sleep 0.2; exit 0"))
        self.c.create("jobs", "default", job("job-bad", "exit 1", backoffLimit=1))
        self.c.create("jobs", "default", job("job-slow", "sleep 60", activeDeadlineSeconds=2))

        def cond(name, t):
            j = self.c.get("jobs", "default", name)
            c = condition(j, t)
            return j if c and c["status"] == "True" else None

        j = wait_for(lambda: cond("job-ok", "Complete"), 15, what="job-ok complete")
        self.assertEqual(j["status"]["succeeded"], 1)
        self.assertIn("completionTime", j["status"])
        pods = self.c.list("pods", "default", label_selector="job-name=job-ok")["items"]
        self.assertEqual(len(pods), 1)
        self.assertEqual(pods[0]["status"]["phase"], "Succeeded")
        j = wait_for(lambda: cond("job-bad", "Failed"), 15, what="job-bad failed")
        self.assertEqual(condition(j, "Failed")["reason"], "BackoffLimitExceeded")
        self.assertEqual(j["status"]["failed"], 2)
        t0 = time.monotonic()
        j = wait_for(lambda: cond("job-slow", "Failed"), 10, what="job-slow deadline")
        self.assertEqual(condition(j, "Failed")["reason"], "DeadlineExceeded")
        self.assertLess(time.monotonic() - t0, 6)
        wait_for(lambda: all(p["metadata"].get("deletionTimestamp") or p["status"].get("phase") in ("Failed", "Succeeded")
                             for p in self.c.list("pods", "default", label_selector="job-name=job-slow")["items"])
                 or not self.c.list("pods", "default", label_selector="job-name=job-slow")["items"], 10,
                 what="deadline kills the pod")

    def test_node_failure_and_recovery(self):
        nodes = self.cl.kubelet("/pods")["nodes"]
        self.create(server_pod("nf", readiness={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                               extra={"nodeSelector": {"kubernetes.io/hostname": nodes[1]}}))
        pod = self.cl.wait_pod("default", "nf", is_ready, 10, "nf ready")
        self.assertEqual(pod["spec"]["nodeName"], nodes[1])
        pid = [p for p in self.cl.kubelet("/pods")["pods"] if p["name"] == "nf"][0]["containers"][0]["pid"]
        res = self.cl.kubelet("/fail-node", {"node": nodes[1]})
        self.assertIn("default/nf", res["killedPods"])
        wait_for(lambda: not os.path.exists("/proc/%d/environ" % pid) or
                 "Z" in open("/proc/%d/stat" % pid).read().split(") ")[1][:1], 5, what="process killed")
        node = self.c.get("nodes", None, nodes[1])
        self.assertEqual(condition(node, "Ready")["status"], "Unknown")
        self.cl.wait_pod("default", "nf", lambda x: not is_ready(x), 5, "pod marked not ready")
        self.cl.kubelet("/recover-node", {"node": nodes[1]})
        # The end state: the container restarted and ready again. Waiting for Ready alone
        # could return a status posted before the restart was counted (seen under load).
        def restarted_ready(x):
            cs = (x["status"].get("containerStatuses") or [{}])[0]
            return is_ready(x) and cs.get("restartCount", 0) >= 1
        pod = self.cl.wait_pod("default", "nf", restarted_ready, 20, "ready after recovery, restarted")
        self.assertGreaterEqual(pod["status"]["containerStatuses"][0]["restartCount"], 1)
        self.assertEqual(condition(self.c.get("nodes", None, nodes[1]), "Ready")["status"], "True")


class TestScheduler(ClusterTest):
    """The scheduler (kubelet_sched.py) against two Nodes of 64 cpu, 256Gi, 110 pods, no GPU."""

    PRE_HELPLESS = " preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."

    def pod(self, name, cpu=None, limits=None, init=None, gpu=None, **spec):
        res = {}
        if cpu:
            res["requests"] = {"cpu": cpu}
        if gpu:
            res.setdefault("requests", {})["nvidia.com/gpu"] = gpu
            res["limits"] = {"nvidia.com/gpu": gpu}
        if limits:
            res["limits"] = limits
        conts = [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"], "resources": res}]
        if init:
            conts[0]["resources"] = {"requests": {"cpu": init[0]}}
            conts.append({"name": "d", "image": "busybox:1.36", "command": ["sleep", "3600"],
                          "resources": {"requests": {"cpu": init[1]}}})
            spec["initContainers"] = [{"name": "i", "image": "busybox:1.36", "command": ["sleep", "0"],
                                       "resources": {"requests": {"cpu": init[2]}}}]
        spec["containers"] = conts
        spec["terminationGracePeriodSeconds"] = 0
        p = self.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                         "spec": spec})
        self.addCleanup(self.delete_quietly, "pods", "default", name)
        return p

    def unschedulable(self, name, message):
        def check(p):
            c = condition(p, "PodScheduled")
            return c and c["status"] == "False" and c.get("reason") == "Unschedulable" and \
                c.get("message") == message
        try:
            p = self.cl.wait_pod("default", name, check, 15, "%s unschedulable" % name)
        except AssertionError:
            raise AssertionError("%s: PodScheduled is %s, wanted %r" % (
                name, condition(self.cl.pod("default", name) or {}, "PodScheduled"), message))
        self.assertFalse(p["spec"].get("nodeName"))
        self.assertEqual(p["status"]["phase"], "Pending")
        return p

    def scheduled(self, name, timeout=15):
        return self.cl.wait_pod("default", name, lambda p: p["spec"].get("nodeName"), timeout,
                                "%s scheduled" % name)["spec"]["nodeName"]

    def test_requests_selectors_taints_and_rescheduling(self):
        nodes = sorted(self.cl.kubelet("/pods")["nodes"])
        node = self.c.get("nodes", None, nodes[0])
        self.assertEqual(node["status"]["allocatable"]["cpu"], "64")
        self.assertNotIn("nvidia.com/gpu", node["status"]["allocatable"])
        # Larger than any node: preemption cannot help.
        self.pod("huge", cpu="65")
        self.unschedulable("huge", "0/2 nodes are available: 2 Insufficient cpu." + self.PRE_HELPLESS)
        # Effective requests: max(20+10, init 40) = 40; limits alone stand for requests (defaulting).
        self.pod("a", init=("20", "10", "40"))
        b = self.pod("b", limits={"cpu": "40"})
        self.assertEqual(b["spec"]["containers"][0]["resources"]["requests"], {"cpu": "40"})
        self.assertNotEqual(self.scheduled("a"), self.scheduled("b"))
        self.pod("c", cpu="30")
        msg = ("0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: "
               "2 No preemption victims found for incoming pod.")
        self.unschedulable("c", msg)
        ev = wait_for(lambda: [e for e in self.c.list("events", "default", field_selector=(
            "involvedObject.name=c,reason=FailedScheduling"))["items"]], 10, what="FailedScheduling event")[0]
        self.assertEqual((ev["type"], ev["message"], ev["source"]["component"]),
                         ("Warning", msg, "default-scheduler"))
        # Room freed on a's node: c goes there.
        a_node = self.c.get("pods", "default", "a")["spec"]["nodeName"]
        self.c.delete("pods", "default", "a", grace=0)
        self.assertEqual(self.scheduled("c"), a_node)
        self.pod("gpu", gpu="1")
        self.unschedulable("gpu", "0/2 nodes are available: 2 Insufficient nvidia.com/gpu." + self.PRE_HELPLESS)
        # nodeSelector, then a label that satisfies it.
        self.pod("sel", nodeSelector={"disktype": "ssd"})
        self.unschedulable("sel", "0/2 nodes are available: 2 node(s) didn't match Pod's node "
                           "affinity/selector." + self.PRE_HELPLESS)
        self.c.patch("nodes", None, nodes[0], {"metadata": {"labels": {"disktype": "ssd"}}})
        self.addCleanup(self.c.patch, "nodes", None, nodes[0], {"metadata": {"labels": {"disktype": None}}})
        self.assertEqual(self.scheduled("sel", 20), nodes[0])
        # A NoSchedule taint, filtered before node affinity; the histogram is sorted.
        self.c.patch("nodes", None, nodes[1], {"spec": {"taints": [
            {"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}})
        self.addCleanup(self.c.patch, "nodes", None, nodes[1], {"spec": {"taints": None}})
        self.pod("t", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [nodes[1]]}]}]}}})
        self.unschedulable("t", "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                           "1 node(s) had untolerated taint(s)." + self.PRE_HELPLESS)
        self.pod("tt", tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                 nodeSelector={"kubernetes.io/hostname": nodes[1]})
        self.assertEqual(self.scheduled("tt"), nodes[1])
        self.c.patch("nodes", None, nodes[1], {"spec": {"taints": None}})
        self.assertEqual(self.scheduled("t", 20), nodes[1])


if __name__ == "__main__":
    unittest.main()

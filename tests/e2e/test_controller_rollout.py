"""End to end, on the real control plane: raywarden installed from manifests/ (kustomize, the
image set to the local build, which the kubelet simulator runs as build/bin/raywarden-controller)
as the two-replica Deployment, then a rolling update of the controller
(`kubectl rollout restart`) while a RayService serves continuous traffic and RayJobs run.

Asserted: the rollout completes and the Lease ends with a new pod; no request fails; no Ray pod
is created or deleted by the hand-over and no cluster ever has more pods than desired (every pod
event is watched, not polled); every RayJob, one of them created during the rollout, reaches
Complete once, with one submitter Job each, the existing ones kept; the agents reach the new
leader (a worker whose raylet is killed after the rollout gets ray.io/agent-ready=False, which
only the leader writes from its agent's report); every agent reports to the new leader; each
replica ran as its ServiceAccount with no request refused (its log, its 403 counters).
Measured (printed, docs/benchmarks.md): each Lease hand-over's time without a leader (release
seen -> new holder seen) and from the old leader's deletion to the new holder, requests sent and
failed. Uses clusterlib.py, rslib.py and rjlib.py."""

import base64
import json
import os
import threading
import time
import unittest
import urllib.request

import rjlib
from clusterlib import SRC, LocalClusterCase, cond, corpus_sample, pod_ready, wait_for
from rslib import Client, active_cluster, serve_host, wait_rs_ready

from kubesim.realcp import host_ip  # noqa: E402  (clusterlib put tests/sim on sys.path)
from kubesim.kubeclient import ApiError, KubeClient  # noqa: E402
from kubesim.testutil import parse_metrics  # noqa: E402

NS = "default"
CTL_NS = "raywarden-system"
DEPLOY = "raywarden-controller"
LEASE = "raywarden-controller-leader"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % CTL_NS
CTL_PODS = "/api/v1/namespaces/%s/pods" % CTL_NS
RAY_PODS = "/api/v1/namespaces/%s/pods" % NS
JOBS = "/apis/batch/v1/namespaces/%s/jobs" % NS
RS_NAME = "rayservice-no-ray-serve-replica"
SVC = RS_NAME + "-serve-svc"
# The local build's tag, as `kustomize edit set image` would write it.
IMAGE_TAG = "dev"


def holder_pod(holder):
    """The pod of a Lease holder identity "<hostname>_<random>" (a pod's hostname is its name)."""
    return (holder or "").rsplit("_", 1)[0] or None


class LeaderAgents:
    """Samples, every 0.2 s, who holds the Lease and how many agents its hub counts as
    connected (raywarden_agents_connected on the leader's /metrics, updated each second)."""

    def __init__(self, state):
        self.api = KubeClient.from_state_dir(state, timeout=5)  # its own: clients are not thread-safe
        self.samples = []  # (time.time(), leader pod, agents connected or None)
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.wait(0.2):
            try:
                lease = self.api.get("leases", CTL_NS, LEASE)
                leader = holder_pod((lease.get("spec") or {}).get("holderIdentity"))
                pod = self.api.get_or_none("pods", CTL_NS, leader) if leader else None
                ip = ((pod or {}).get("status") or {}).get("podIP")
                n = None
                if ip:
                    with urllib.request.urlopen("http://%s:8080/metrics" % host_ip(ip), timeout=2) as r:
                        n = parse_metrics(r.read().decode()).get("raywarden_agents_connected")
                self.samples.append((time.time(), leader, n))
            except (OSError, ValueError, ApiError):
                continue  # a replica going away mid-sample: the next sample tells

    def stop(self):
        self.stop_ev.set()
        self.thread.join(10)

    def reconnected_after(self, leader, want):
        """Seconds from the first sample with leader holding the Lease to the first with at least
        want agents connected to it, or None."""
        first = next((t for t, h, _n in self.samples if h == leader), None)
        full = next((t for t, h, n in self.samples if h == leader and n is not None and n >= want), None)
        return None if first is None or full is None else full - first


class ControllerRollout(LocalClusterCase):
    CONTROLLER = False  # the Deployment runs it
    CONTROL_PLANE = "real"
    NODES = 2
    SAMPLE = "ray-service.no-ray-serve-replica.yaml"

    @classmethod
    def prerequisites(cls):
        why = super().prerequisites()
        if not why and not corpus_sample(rjlib.SAMPLE):
            why = "shared/corpus absent: needs %s" % rjlib.SAMPLE
        return why

    @classmethod
    def setUpCluster(cls):
        lc = cls.lc
        overlay = os.path.join(lc.state, "overlay")
        os.makedirs(overlay)
        with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
            # kustomize takes no absolute roots
            f.write("resources:\n- %s\nimages:\n- name: raywarden/raywarden-controller\n  newTag: %s\n"
                    % (os.path.relpath(os.path.join(SRC, "manifests"), overlay), IMAGE_TAG))
        lc.kubectl("apply", "--server-side", "-k", overlay, timeout=120)
        lc.kubectl("-n", CTL_NS, "create", "secret", "generic", "raywarden-agent-master-key",
                   "--from-literal=key=" + base64.b64encode(os.urandom(32)).decode())
        lc.kubectl("-n", CTL_NS, "rollout", "status", "deployment/" + DEPLOY, "--timeout=150s", timeout=160)
        cls.leader = wait_for(lambda: cls.leader_pod() in cls.controller_pods(), 60, 0.2,
                              "a controller replica holding the Lease") and cls.leader_pod()

    @classmethod
    def controller_pods(cls):
        return {p["metadata"]["name"]: p for p in cls.lc.get(CTL_PODS)["items"]}

    @classmethod
    def leader_pod(cls):
        lease = cls.lc.get_or_none(LEASES + "/" + LEASE) or {}
        return holder_pod((lease.get("spec") or {}).get("holderIdentity"))

    def replica_logs(self):
        out = {}
        for name in self.controller_pods():
            out[name] = self.lc.kubectl("-n", CTL_NS, "logs", name, check=False)
        return out

    def test_rolling_update_under_load(self):
        lc = self.lc
        self.assertEqual(len(self.controller_pods()), 2)
        # -- load: a RayService under traffic, RayJobs whose drivers run across the rollout ----
        lc.kubectl("apply", "-f", self.sample)
        wait_rs_ready(lc, NS, RS_NAME, timeout=150)
        base, others = rjlib.split_sample(lc, corpus_sample(rjlib.SAMPLE))
        for o in others:
            rjlib.apply_obj(lc, o)
        gates = {}

        def submit(name):
            gates[name] = rjlib.Gate(lc, name)
            rjlib.apply_obj(lc, rjlib.variant(base, name, {"entrypoint": gates[name].entrypoint()}, small=True))

        for name in ("rj-before-a", "rj-before-b"):
            submit(name)
        for name in ("rj-before-a", "rj-before-b"):
            rjlib.wait_status(lc, name, lambda st: st.get("jobStatus") == "RUNNING", 120, "driver running")
        client = Client(serve_host(NS, SVC), "/basic", "", "hello world", concurrency=4, timeout=10).start()
        try:
            wait_for(lambda: client.ok > 20, 30, 0.05, "traffic flowing before the rollout")
            rs_cluster = active_cluster(lc, NS, RS_NAME)
            before_jobs = {j["metadata"]["name"]: j["metadata"]["uid"] for j in lc.get(JOBS)["items"]}
            self.assertEqual(set(before_jobs), {"rj-before-a", "rj-before-b"})
            old = set(self.controller_pods())
            watch = rjlib.Watcher(lc, [RAY_PODS, CTL_PODS, LEASES, JOBS, rjlib.RJ_PATH])
            agents = LeaderAgents(lc.state)
            try:
                ray_before = self.ray_pods()
                t0 = time.time()
                lc.kubectl("-n", CTL_NS, "rollout", "restart", "deployment/" + DEPLOY)
                submit("rj-during")  # created while the replicas hand over
                lc.kubectl("-n", CTL_NS, "rollout", "status", "deployment/" + DEPLOY, "--timeout=150s",
                           timeout=160)
                rollout_s = time.time() - t0
                new = wait_for(lambda: (lambda p: p if p and not (set(p) & old) and len(p) == 2 else None)(
                    self.controller_pods()), 60, 0.2, "only the two new controller pods")
                leader = wait_for(lambda: (lambda h: h if h in new else None)(self.leader_pod()), 60, 0.2,
                                  "a new pod holding the Lease")
                for g in gates.values():
                    g.open()
                for name in gates:
                    st = rjlib.wait_status(lc, name, lambda st: st.get("jobDeploymentStatus") in (
                        "Complete", "Failed"), 120, "finished")
                    self.assertEqual((st.get("jobDeploymentStatus"), st.get("jobStatus"), st.get("succeeded"),
                                      st.get("failed", 0)), ("Complete", "SUCCEEDED", 1, 0), name)
                sent = client.total()
                wait_for(lambda: client.total() > sent + 20, 30, 0.05, "traffic after the rollout")
                # Every agent that ran before the rollout reports to the new leader.
                wait_for(lambda: agents.reconnected_after(leader, len(ray_before)) is not None, 60, 0.2,
                         "%d agents connected to the new leader" % len(ray_before))
            finally:
                ok, failed = client.stop()
                watch.stop()
                agents.stop()
        finally:
            client.stop()
        print("rollout: %.1f s; requests %d sent, %d failed; leader %s -> %s" % (
            rollout_s, ok + failed, failed, self.leader, leader))
        self.assertEqual(failed, 0, "failed requests: %s" % client.causes[:10])

        handovers = self.handovers(watch)
        for h in handovers:
            print("hand-over %s -> %s (%s): no leader %.2f s, old leader deleted -> new leader %s" % (
                h["from"], h["to"], "released" if h["released"] else "expired", h["no_leader_s"],
                "%.2f s" % h["from_deletion_s"] if h["from_deletion_s"] is not None else "n/a"))
        stale = len(lc.events(NS, reason="AgentStale"))
        reconnected = agents.reconnected_after(leader, len(ray_before))
        print("agents: all %d on the new leader %.1f s after it took the Lease" % (len(ray_before), reconnected))
        print(json.dumps({"bench": "controller-rollout", "rollout_s": round(rollout_s, 2),
                          "agents": len(ray_before), "agents_reconnected_s": round(reconnected, 2),
                          "requests": ok + failed, "failed": failed, "agent_stale_events": stale,
                          "handovers": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in h.items()}
                                        for h in handovers]}))
        self.assertTrue(handovers, "the Lease never changed hands")
        for h in handovers:
            # A released Lease is taken at a standby's next try (2 s); expiry would be 15 s.
            self.assertLess(h["no_leader_s"], 8.0, h)

        new_clusters = [rc["metadata"]["name"] for rc in rjlib.rayclusters(lc, "rj-during")]
        self.check_no_duplicate_pods(watch, ray_before, new_clusters)
        self.check_jobs_once(watch, before_jobs, sorted(gates))

        # -- the agents report to the new leader: a readiness change is still reflected --------
        worker = [p for p in lc.pods(NS, rs_cluster, "worker") if pod_ready(p)][0]
        name = worker["metadata"]["name"]
        t1 = time.monotonic()
        lc.raysim_fault(host_ip(worker["status"]["podIP"]), "raylet", "kill")

        def gate_false():
            g = cond(lc.get_or_none("%s/%s" % (RAY_PODS, name)) or {}, "ray.io/agent-ready")
            return g if g and g["status"] == "False" else None
        wait_for(gate_false, 30, 0.05, "%s: ray.io/agent-ready=False from the new leader" % name)
        print("after the rollout: raylet killed -> ray.io/agent-ready=False in %.0f ms"
              % ((time.monotonic() - t1) * 1000))
        # Each replica ran as its ServiceAccount: no request refused, by itself or by the API server.
        for pod, text in self.replica_logs().items():
            self.assertNotIn("RBAC: refusing", text, pod)
        for pod, p in self.controller_pods().items():
            with urllib.request.urlopen("http://%s:8080/metrics" % host_ip(p["status"]["podIP"]), timeout=5) as r:
                m = parse_metrics(r.read().decode())
            self.assertEqual([k for k, v in m.items() if k.startswith("raywarden_api_requests_total{") and v and
                              ('code="403"' in k or 'code="rbac_denied"' in k)], [], pod)
            self.assertTrue(any(k.startswith("raywarden_api_requests_total{") for k in m), pod)
        self.assertIn("became the leader", self.replica_logs()[leader])

    def ray_pods(self):
        items = self.lc.get(RAY_PODS, labelSelector="ray.io/node-type")["items"]
        return {p["metadata"]["uid"]: p for p in items}

    @staticmethod
    def handovers(watch):
        """[{from, to, no_leader_s, from_deletion_s}]: each change of the Lease's holder, from
        the watch events of the Lease and the controller pods (times: the events' arrival)."""
        deleted_at = {}
        for rv, _typ, path, o in watch.ordered():
            if path == CTL_PODS and o["metadata"].get("deletionTimestamp"):
                deleted_at.setdefault(o["metadata"]["name"], watch.arrived[rv])
        out, last, last_seen, released_at = [], None, None, None
        for rv, _typ, path, o in watch.ordered():
            if path != LEASES or o["metadata"].get("name") != LEASE:
                continue
            t = watch.arrived[rv]
            holder = holder_pod((o.get("spec") or {}).get("holderIdentity"))
            if holder is None:
                released_at = released_at or t
                continue
            if last is not None and holder != last:
                gone = deleted_at.get(last)
                out.append({"from": last, "to": holder, "released": released_at is not None,
                            "no_leader_s": t - (released_at if released_at is not None else last_seen),
                            "from_deletion_s": None if gone is None else t - gone})
            last, last_seen, released_at = holder, t, None
        return out

    def check_no_duplicate_pods(self, watch, ray_before, new_clusters):
        """No Ray pod of a cluster that existed before the rollout is created or deleted while
        it runs; a cluster made meanwhile gets exactly its one head. Every pod event counts,
        however short-lived the pod."""
        clusters_before = {p["metadata"]["labels"].get("ray.io/cluster") for p in ray_before.values()}
        added, deleted = {}, {}
        for _rv, typ, path, o in watch.ordered():
            labels = o["metadata"].get("labels") or {}
            if path != RAY_PODS or "ray.io/node-type" not in labels:
                continue
            key = (labels.get("ray.io/cluster"), labels.get("ray.io/node-type"))
            if typ == "ADDED" and o["metadata"]["uid"] not in ray_before:
                added.setdefault(key, set()).add(o["metadata"]["name"])
            elif typ == "DELETED" or (typ == "MODIFIED" and o["metadata"].get("deletionTimestamp")):
                deleted.setdefault(key, set()).add(o["metadata"]["name"])
        self.assertEqual({k: v for k, v in added.items() if k[0] in clusters_before}, {},
                         "pods created for clusters that existed before the rollout")
        self.assertEqual(deleted, {}, "Ray pods deleted during the rollout")
        for c in new_clusters:
            self.assertEqual(len(added.get((c, "head"), ())), 1, "cluster %s: heads %s" % (c, added))
        self.assertEqual({k for k in added if k[0] not in clusters_before}, {(c, "head") for c in new_clusters})

    def check_jobs_once(self, watch, before_jobs, names):
        """Each RayJob: one submitter Job (the existing ones kept), one submitter pod, one Ray job
        on its head, and Complete entered once."""
        lc = self.lc
        jobs = {j["metadata"]["name"]: j["metadata"]["uid"] for j in lc.get(JOBS)["items"]}
        self.assertEqual(set(jobs), set(names))
        for name, uid in before_jobs.items():
            self.assertEqual(jobs[name], uid, "%s: submitter Job replaced" % name)
        job_adds = [o["metadata"]["name"] for _rv, typ, path, o in watch.ordered() if path == JOBS and typ == "ADDED"
                    and o["metadata"]["uid"] not in before_jobs.values()]
        self.assertEqual(sorted(job_adds), sorted(set(names) - set(before_jobs)))
        completes = {}
        prev = {}
        for _rv, _typ, path, o in watch.ordered():
            if path != rjlib.RJ_PATH:
                continue
            n = o["metadata"]["name"]
            st = (o.get("status") or {}).get("jobDeploymentStatus")
            if st == "Complete" and prev.get(n) != "Complete":
                completes[n] = completes.get(n, 0) + 1
            prev[n] = st
        self.assertEqual(completes, {n: 1 for n in names})
        for name in names:
            self.assertEqual(len(rjlib.submitter_pods(lc, name)), 1, name)
            (rc,) = rjlib.rayclusters(lc, name)
            head = rjlib.head_pod(lc, rc["metadata"]["name"])
            ray_jobs = rjlib.ray_jobs(host_ip(head["status"]["podIP"]))
            self.assertEqual(len(ray_jobs), 1, "%s: Ray jobs on the head: %s" % (name, ray_jobs))


if __name__ == "__main__":
    unittest.main()

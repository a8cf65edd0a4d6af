"""End to end: moving a running cluster from KubeRay v1.5.0 to raywarden and back, as
docs/migrating-from-kuberay.md tells a platform team to (`local-cluster switch-operator`: swap the
CRDs in place, stop the old operator, start the new one; the two never run at once).

On the real control plane with KubeRay's own binary (`local-cluster up --control-plane real
--operator kuberay`), KubeRay runs KubeRay's samples ray-cluster.sample.yaml, ray-service.sample.yaml
(4 clients send requests through its serve Service during each switch) and a RayJob whose driver
waits for a gate the test opens. Then, for each switch (KubeRay -> raywarden, raywarden -> KubeRay):

- the old operator's process is gone before the new one starts;
- no pod that existed before is recreated (same uid) or restarted (same restartCount), and every
  one that was Ready stays Ready;
- no request to the RayService fails, and it keeps its RayCluster (no upgrade);
- the new operator writes the status (a scale-up is seen in the RayCluster's status);
- pods the new operator creates are its own: after the switch to raywarden the new worker has the
  agent sidecar and the old pods have none (KubeRay's probes stay until they are replaced);
  KubeRay keeps raywarden's pods, agent included, and makes its own without.

raywarden attaches its agent to every head KubeRay made as an ephemeral container (same pod uid, no
restart); the agents' reports are taken like any other (the heads get raywarden's ray.io/agent-ready
condition). The RayJob started under KubeRay then completes under raywarden (SUCCEEDED, submitted
once), and the RayService keeps its applications' statuses and raises no HeadUnreachable. A second
job is submitted under raywarden and completes under KubeRay once it is back; the ephemeral agents
stay (they cannot be removed) and change nothing for KubeRay.

Prints the figures docs/migrating-from-kuberay.md quotes (requests sent and failed during each
switch, switch time, time until the new operator's first status write). Skipped when KubeRay or
the real control plane is not built (kubesim.upstream) or the corpus is absent."""

import calendar
import json
import os
import subprocess
import sys
import threading
import time
import unittest

from clusterlib import LocalCluster, corpus_sample, missing_prereqs, pod_ready, wait_for
from rslib import Client, active_cluster, rs_status, serve_host, serve_request, wait_rs_ready

from kubesim import operators, upstream  # noqa: E402  (clusterlib put tests/sim on sys.path)
from kubesim.localcluster import alive  # noqa: E402

LOCAL_CLUSTER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(operators.__file__))), "local-cluster")

import rjlib  # noqa: E402

NS = "default"
RC = "raycluster-kuberay"
RS = "rayservice-sample"
SVC = RS + "-serve-svc"
BODY = '["MANGO", 2]'
AGENT = "raywarden-agent"
RW_MANAGER = "raywarden-controller"


def restarts(pod):
    return {c["name"]: c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or []}


def containers(pod):
    return [c["name"] for c in pod["spec"]["containers"]]


def ephemeral_agent(pod):
    """The state ("running", "terminated", "waiting") of the pod's ephemeral agent, or None."""
    if not any(c["name"] == AGENT for c in pod["spec"].get("ephemeralContainers") or []):
        return None
    for c in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if c["name"] == AGENT:
            return next(iter(c.get("state") or {"waiting": {}}))
    return "waiting"


def rfc3339(t):
    return calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))


def is_head(pod):
    return pod["metadata"]["labels"].get("ray.io/node-type") == "head"


def condition(pod, ctype):
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return c.get("status")
    return None


class StatusWatch:
    """Polls the three CRs and records when a manager first wrote one's status (managedFields
    with subresource status, the writer's User-Agent as manager): the new operator's first status
    write after it started."""

    def __init__(self, lc, paths, manager):
        self.lc, self.paths, self.manager = lc, paths, manager
        self.first = None
        self._stop = threading.Event()
        self._seen = {p: self._times(p) for p in paths}
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _times(self, path):
        o = self.lc.get_or_none(path) or {}
        return {(m.get("manager"), m.get("time")) for m in (o.get("metadata") or {}).get("managedFields") or []
                if m.get("subresource") == "status" and (m.get("manager") or "").startswith(self.manager)}

    def _run(self):
        while not self._stop.is_set() and self.first is None:
            for p in self.paths:
                try:
                    if self._times(p) - self._seen[p]:
                        self.first = time.time()
                        break
                except Exception:  # noqa: BLE001 -- a failed poll is retried
                    pass
            self._stop.wait(0.1)

    def stop(self):
        self._stop.set()
        self._t.join(5)
        return self.first


class Migration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = missing_prereqs() or upstream.skip_reason() or operators.skip_reason()
        for s in ("ray-cluster.sample.yaml", "ray-service.sample.yaml", rjlib.SAMPLE):
            why = why or (None if corpus_sample(s) else "shared/corpus absent: needs %s" % s)
        if why:
            raise unittest.SkipTest(why)
        cls.failed = True  # until the tests pass: keep the logs
        cls.figures = []
        cls.lc = LocalCluster.start(control_plane="real", operator="kuberay", timeout=180.0)

    @classmethod
    def tearDownClass(cls):
        for line in cls.figures:
            print("migration: " + line)
        cls.lc.stop(keep_logs_on_failure=cls.failed or os.environ.get("RW_KEEP_LOGS"))

    # -- helpers -------------------------------------------------------------------------------

    def ray_pods(self):
        return {p["metadata"]["uid"]: p for p in self.lc.pods(NS)}

    def rayjob(self, name, gate):
        base, _ = rjlib.split_sample(self.lc, corpus_sample(rjlib.SAMPLE))
        rj = rjlib.variant(base, name, small=True, spec={"entrypoint": gate.entrypoint()})
        rjlib.apply_obj(self.lc, rj)
        rjlib.wait_status(self.lc, name, lambda st: st.get("jobStatus") == "RUNNING", 150, "job RUNNING")
        return rjlib.status(self.lc, name)

    def switch(self, to, before):
        """Switch to `to` under traffic; assert the pods in before (uid -> pod) kept their uid,
        restart counts and readiness through it. Returns the switch record."""
        lc = self.lc
        paths = [lc.rc_path(NS, RC), rjlib.RJ_PATH + "/" + self.job, "/apis/ray.io/v1/namespaces/%s/rayservices/%s"
                 % (NS, RS)]
        # (manager, time) pairs are kept per second: a new pair after the switch is a new write.
        watch = StatusWatch(lc, paths, RW_MANAGER if to == "raywarden" else "kuberay-operator")
        client = Client(serve_host(NS, SVC), "/fruit", BODY, "6", concurrency=4).start()
        try:
            wait_for(lambda: client.total() >= 20, 30, 0.05, "the client's requests flow")
            sent0 = client.total()
            old_pid = (operators.info(lc.state) if to == "raywarden" else lc.controller()).get("pid")
            # The command docs/migrating-from-kuberay.md and README give, as a user runs it.
            r = subprocess.run([sys.executable, LOCAL_CLUSTER, "switch-operator", to, "--state", lc.state,
                                "--timeout", "120"], capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(os.path.join(lc.state, "switch-operator.json")) as f:
                rec = json.load(f)
            self.assertFalse(alive(old_pid), "the old operator (pid %s) still runs" % old_pid)
            # Traffic keeps flowing with the new operator in charge for a while.
            settle = time.monotonic() + 10
            wait_for(lambda: time.monotonic() > settle and client.total() > sent0 + 50, 60, 0.1,
                     "requests after the switch")
            # raywarden always has something to write (the RayJob's message, at least); KubeRay
            # writes only what changed, and nothing may have (its scale-up below is asserted).
            first = watch.first or (wait_for(lambda: watch.first, 60, 0.1, "%s's first status write" % to)
                                    if to == "raywarden" else None)
        finally:
            watch.stop()
            ok, failed = client.stop()
        self.assertEqual(failed, 0, client.causes[:10])
        now = self.ray_pods()
        for uid, p in before.items():
            name = p["metadata"]["name"]
            self.assertIn(uid, now, "pod %s recreated or deleted by %s" % (name, to))
            self.assertEqual(restarts(now[uid]), restarts(p), "pod %s restarted under %s" % (name, to))
            if pod_ready(p):
                self.assertTrue(pod_ready(now[uid]), "pod %s no longer Ready under %s" % (name, to))
        wrote = ("%.2fs after the new one was ready" % (first - rec["new_ready"]) if first
                 else "none in the 10 s after (nothing had changed)")
        self.figures.append("to %s: switch %.2fs (CRDs and RBAC %.2fs, then %.2fs without an operator), first "
                            "status write %s, %d requests during the switch and 10 s after (%d in all), %d failed, "
                            "%d pods kept, 0 restarted, 0 recreated"
                            % (to, rec["seconds"], rec["crds_applied"] - rec["started"],
                               rec["without_operator_seconds"], wrote, client.total() - sent0, ok + failed,
                               failed, len(before)))
        return rec

    def scale(self, replicas):
        self.lc.kubectl("patch", "raycluster", RC, "-n", NS, "--type", "json", "-p",
                        json.dumps([{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": replicas}]))
        gen = self.lc.get(self.lc.rc_path(NS, RC))["metadata"]["generation"]

        def seen():
            st = (self.lc.get(self.lc.rc_path(NS, RC)).get("status") or {})
            return (st.get("observedGeneration") == gen and st.get("readyWorkerReplicas") == replicas
                    and st.get("desiredWorkerReplicas") == replicas)
        wait_for(seen, 120, 0.2, "RayCluster status: %d ready workers, generation %d observed" % (replicas, gen))

    # -- the scenario ----------------------------------------------------------------------------

    def test_there_and_back(self):
        lc = self.lc
        lc.apply(corpus_sample("ray-cluster.sample.yaml"))
        lc.apply(corpus_sample("ray-service.sample.yaml"))
        _, others = rjlib.split_sample(lc, corpus_sample(rjlib.SAMPLE))
        for o in others:  # the sample's ConfigMap, which the head mounts
            rjlib.apply_obj(lc, o)
        # A job submitted under KubeRay, running through both switches.
        type(self).job = across = "across-job"
        gate_across = rjlib.Gate(lc, across)
        job_before = self.rayjob(across, gate_across)
        submitter = rjlib.submitter_job(lc, across)
        lc.wait_cluster_ready(NS, RC, timeout=150)
        wait_rs_ready(lc, NS, RS, timeout=150)
        self.assertEqual(serve_request(serve_host(NS, SVC), "/fruit", BODY), (200, "6"))
        kuberay_pods = self.ray_pods()
        for p in kuberay_pods.values():
            self.assertNotIn(AGENT, containers(p), p["metadata"]["name"])
        rs_cluster = active_cluster(lc, NS, RS)

        # ---- KubeRay -> raywarden ----
        rec = self.switch("raywarden", kuberay_pods)
        self.assertEqual(active_cluster(lc, NS, RS), rs_cluster, "no new RayCluster for the RayService")
        self.assertFalse((rs_status(lc, NS, RS).get("pendingServiceStatus") or {}).get("rayClusterName"))
        # raywarden attaches its agent to each of KubeRay's heads as an ephemeral container: the pod
        # stays (same uid, no restart), and the agent's reports are accepted (raywarden writes the
        # ray.io/agent-ready condition from them).
        heads = [uid for uid, p in kuberay_pods.items() if is_head(p)]
        self.assertEqual(len(heads), 3)  # the RayCluster's, the RayService's and the RayJob's

        def agents_report():
            now = self.ray_pods()
            return all(uid in now and ephemeral_agent(now[uid]) == "running"
                       and condition(now[uid], "ray.io/agent-ready") == "True" for uid in heads)
        wait_for(agents_report, 120, 0.2, "the ephemeral agent running and reporting on every KubeRay head")
        now = self.ray_pods()
        started = [rfc3339(c["state"]["running"]["startedAt"]) for uid in heads
                   for c in now[uid]["status"]["ephemeralContainerStatuses"] if c["name"] == AGENT]
        reporting = [rfc3339(c["lastTransitionTime"]) for uid in heads
                     for c in now[uid]["status"]["conditions"] if c["type"] == "ray.io/agent-ready"]
        self.figures.append("ephemeral agents on %d heads: the last started %.0fs and reporting %.0fs after raywarden "
                            "was ready (1 s resolution)" % (len(heads), max(0.0, max(started) - rec["new_ready"]),
                                                             max(0.0, max(reporting) - rec["new_ready"])))
        for uid in heads:
            self.assertEqual(restarts(now[uid]), restarts(kuberay_pods[uid]), now[uid]["metadata"]["name"])
            self.assertNotIn(AGENT, containers(now[uid]))
            eph = [c for c in now[uid]["status"]["ephemeralContainerStatuses"] if c["name"] == AGENT][0]
            self.assertEqual(eph.get("restartCount", 0), 0)
        # The RayService: its head reports the applications, nothing is judged unreachable, no new cluster.
        apps = rs_status(lc, NS, RS)["activeServiceStatus"].get("applicationStatuses") or {}
        self.assertEqual({a: v.get("status") for a, v in apps.items()}, {"fruit_app": "RUNNING", "math_app": "RUNNING"})
        self.assertEqual(lc.events(NS, RS, "HeadUnreachable"), [])
        self.assertEqual(active_cluster(lc, NS, RS), rs_cluster, "no new RayCluster for the RayService")
        # The job KubeRay submitted is followed by the agent: it completes under raywarden,
        # submitted once, its head never restarted.
        st = rjlib.status(lc, across)
        self.assertEqual((st.get("jobId"), st.get("jobDeploymentStatus"), st.get("jobStatus")),
                         (job_before["jobId"], "Running", "RUNNING"))
        gate_across.open()
        st = rjlib.wait_status(lc, across, lambda s: s.get("jobDeploymentStatus") in ("Complete", "Failed"), 120,
                               "Complete under raywarden")
        self.assertEqual((st.get("jobDeploymentStatus"), st.get("jobStatus"), st.get("jobId")),
                         ("Complete", "SUCCEEDED", job_before["jobId"]), (st.get("reason"), st.get("message")))
        self.assertEqual(rjlib.submitter_job(lc, across)["metadata"]["uid"], submitter["metadata"]["uid"])
        now = self.ray_pods()
        for uid in heads:
            if uid in now:  # the job's cluster may be gone once it completed (shutdownAfterJobFinishes)
                self.assertEqual(restarts(now[uid]), restarts(kuberay_pods[uid]), now[uid]["metadata"]["name"])
        # raywarden takes the RayCluster's status over; its new pod has the agent, the old pods
        # keep KubeRay's probes and no agent, and stay Ready.
        self.scale(2)
        now = self.ray_pods()
        new = [p for uid, p in now.items() if uid not in kuberay_pods]
        self.assertEqual([p["metadata"]["labels"]["ray.io/cluster"] for p in new], [RC])
        self.assertIn(AGENT, containers(new[0]))
        for uid, p in kuberay_pods.items():
            self.assertNotIn(AGENT, containers(now[uid]))
            self.assertTrue(pod_ready(now[uid]), p["metadata"]["name"])
        # A job submitted under raywarden, still running when KubeRay comes back.
        type(self).job = back = "returning-job"
        gate_back = rjlib.Gate(lc, back)
        self.rayjob(back, gate_back)
        submitter_back = rjlib.submitter_job(lc, back)

        self.assertEqual(lc.rbac_refusals(), [], "requests outside raywarden's RBAC (controller/kube/rbac.c)")

        # ---- raywarden -> KubeRay ----
        before = self.ray_pods()
        self.switch("kuberay", before)
        self.assertEqual(active_cluster(lc, NS, RS), rs_cluster, "no new RayCluster for the RayService")
        # KubeRay takes the status over (a scale-up) and keeps raywarden's pod with its agent, and
        # its own heads with the ephemeral agent, which stays (it cannot be removed).
        self.scale(3)
        now = self.ray_pods()
        for uid, p in before.items():
            self.assertIn(uid, now, p["metadata"]["name"])
            self.assertEqual(AGENT in containers(now[uid]), AGENT in containers(p))
            self.assertEqual(ephemeral_agent(now[uid]), ephemeral_agent(p), p["metadata"]["name"])
        self.assertEqual([AGENT in containers(p) for uid, p in now.items() if uid not in before], [False])
        # The job submitted under raywarden completes under KubeRay, submitted once; the one
        # raywarden completed stays Complete.
        self.assertEqual(rjlib.status(lc, across).get("jobDeploymentStatus"), "Complete")
        for name, gate, sub in ((back, gate_back, submitter_back),):
            gate.open()
            st = rjlib.wait_status(lc, name, lambda s: s.get("jobDeploymentStatus") in ("Complete", "Failed"),
                                   120, "Complete")
            self.assertEqual((st.get("jobDeploymentStatus"), st.get("jobStatus")), ("Complete", "SUCCEEDED"),
                             (name, st.get("reason"), st.get("message")))
            self.assertEqual(rjlib.submitter_job(lc, name)["metadata"]["uid"], sub["metadata"]["uid"])
        type(self).failed = False


if __name__ == "__main__":
    unittest.main()

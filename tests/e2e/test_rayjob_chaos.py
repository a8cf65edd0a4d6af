"""End to end, issue 11's "Faults to test" not covered by test_rayjob_faults.py: the head's Jobs API
failing while RayJobs run, and the controller SIGKILLed at random moments of a batch. On the local
cluster with raywarden-controller, RayJobs derived from KubeRay's ray-job.sample.yaml.

- The Jobs API of a running job's head answers 500, hangs, then answers after 12 s (longer than
  the head agent's 10 s read timeout; the Ray simulator's jobs faults): the RayJob stays Running /
  RUNNING with its ids (a read error is not a job end) although its driver has ended, another
  RayJob of the same controller goes from New to Complete meanwhile, and after `restore` the job
  completes (SUCCEEDED).
- HTTPMode with the Jobs API answering 500, then slow past the agent's timeout, when the head agent
  submits: the submission is retried once it recovers and Ray holds exactly one job. The cluster
  is held short of ready (a worker's init container waits for a gate file) until the fault is on,
  so no submission can slip through before it.
- The controller SIGKILLed 4 times at seeded random moments (seed printed; RW_CHAOS_SEED gives the
  same schedule) while 12 RayJobs go New -> Initializing -> Running -> Complete, 4 of them applied
  while it is down, restarted each time: all Complete / SUCCEEDED; from watches on RayJobs,
  RayClusters and Jobs since before the batch:
  each RayJob owned exactly one RayCluster and one submitter Job ever, its jobId and
  rayClusterName never changed once set, and its head's Jobs API lists exactly its one job.
Uses clusterlib.py and rjlib.py."""

import os
import random
import signal
import time
import unittest

import rjlib
from rjlib import NS
from clusterlib import wait_for
from kubesim.realcp import host_ip

# The head agent's timeout of a Jobs API call (agent/actions.c ACTION_TIMEOUT_MS).
AGENT_CALL_TIMEOUT_S = 10.0
SLOW_MS = 12000  # a Jobs API answer slower than that timeout
JOBS_PATH = "/apis/batch/v1/namespaces/%s/jobs" % NS
RAY_IMAGE = "rayproject/ray:2.52.0"


def owner_rayjob(obj):
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "RayJob":
            return ref.get("name")
    return None


class RayJobChaos(rjlib.RayJobCase):

    def head_ip(self, cluster, timeout=60):
        def ip():
            return host_ip(((rjlib.head_pod(self.lc, cluster) or {}).get("status") or {}).get("podIP"))
        return wait_for(ip, timeout, 0.1, "head pod of %s with an IP" % cluster)

    def fault(self, ip, mode, **extra):
        self.assertEqual(self.lc.raysim_fault(ip, "jobs", mode, **extra), 200)

    def delete_all(self, names):
        for n in names:
            rjlib.delete_rayjob(self.lc, n)

    # -- the Jobs API failing while the job runs (K8sJobMode) ------------------------------

    def test_jobs_api_faults_while_running(self):
        lc = self.lc
        name, other = "rj-jobsapi", "rj-jobsapi-other"
        gate = rjlib.Gate(lc, name)
        ended = rjlib.Gate(lc, name + "-ended")  # the driver opens it as it exits
        rjlib.apply_obj(lc, rjlib.variant(self.base, name, {"entrypoint": gate.entrypoint(ended.then_open())},
                                          small=True))
        st = rjlib.wait_status(lc, name, lambda st: st.get("jobStatus") == "RUNNING", 90, "Ray job RUNNING")
        ids = (st["jobId"], st["rayClusterName"])
        ip = self.head_ip(ids[1])

        def unchanged(s):
            return (s.get("jobDeploymentStatus"), s.get("jobStatus"), s.get("jobId"), s.get("rayClusterName"),
                    s.get("reason", "")) == ("Running", "RUNNING") + ids + ("",)

        # 500s: the driver ends meanwhile, so only the Jobs API keeps the end from the controller.
        self.fault(ip, "error")
        gate.open()
        wait_for(ended.is_open, 30, 0.05, "the driver of %s ended" % name)
        # Another RayJob of the same controller goes through its whole life meanwhile.
        t0 = time.monotonic()
        rjlib.apply_obj(lc, rjlib.variant(self.base, other, {"entrypoint": "python -c 'print(42)'"}, small=True))
        ost = rjlib.hold_status(lc, name, unchanged, "Running / RUNNING with its ids while the Jobs API answers 500",
                                until=lambda: rjlib.terminal(lc, other), timeout=120)
        print("chaos: %s %s / %s %.2fs after apply while %s's Jobs API answered 500" % (
            other, ost["jobDeploymentStatus"], ost.get("jobStatus"), time.monotonic() - t0, name))
        self.assertEqual((ost["jobDeploymentStatus"], ost.get("jobStatus")), ("Complete", "SUCCEEDED"), ost)
        # Hung, then slower than the agent's timeout: both outlast a whole read timeout.
        for mode, extra in (("hang", {}), ("slow", {"delay_ms": SLOW_MS})):
            self.fault(ip, mode, **extra)
            rjlib.hold_status(lc, name, unchanged, "Running / RUNNING with its ids while the Jobs API is %s" % mode,
                              seconds=AGENT_CALL_TIMEOUT_S + 1.5)
        self.fault(ip, "restore")
        t0 = time.monotonic()
        st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 60)
        took = time.monotonic() - t0
        print("chaos: %s %s / %s %.2fs after the Jobs API was restored (a slow read may still have been in "
              "flight, up to the agent's %.0fs timeout)" % (name, st["jobDeploymentStatus"], st.get("jobStatus"),
                                                           took, AGENT_CALL_TIMEOUT_S))
        self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus"), st["jobId"], st["rayClusterName"]),
                         ("Complete", "SUCCEEDED") + ids, st)
        self.assertEqual([j["submission_id"] for j in rjlib.ray_jobs(ip)], [ids[0]])
        self.assertEqual(len(rjlib.rayclusters(lc, name)), 1)
        self.delete_all([name, other])

    # -- HTTPMode: the submission meets a failing Jobs API ----------------------------------

    def test_http_submit_retried(self):
        lc = self.lc
        name = "rj-httpfault"
        gate = rjlib.Gate(lc, name)
        held = rjlib.Gate(lc, name + "-worker")
        rj = rjlib.variant(self.base, name, {"submissionMode": "HTTPMode", "entrypoint": gate.entrypoint()},
                           small=True)
        # One worker whose init container waits for a gate: the cluster is not ready, so the RayJob
        # is not Running and nothing is submitted, until the fault is on.
        g = rj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
        g["replicas"] = g["minReplicas"] = 1
        g["template"]["spec"]["initContainers"] = [
            {"name": "hold", "image": RAY_IMAGE, "command": ["sh", "-c", held.entrypoint()]}]
        rjlib.apply_obj(lc, rj)
        st = rjlib.wait_status(lc, name, lambda st: st.get("jobId") and st.get("rayClusterName"), 30, "ids in status")
        job_id, cluster = st["jobId"], st["rayClusterName"]
        ip = self.head_ip(cluster)
        wait_for(lambda: self.try_fault(ip, "error"), 60, 0.1, "the Ray simulator of %s's head up" % cluster)
        self.assertEqual(rjlib.status(lc, name).get("jobDeploymentStatus"), "Initializing")
        head = rjlib.head_pod(lc, cluster)["metadata"]["name"]

        def submit_lines():
            return [ln for ln in rjlib.agent_log(lc, head).splitlines() if "job %s" % job_id in ln]

        def failures(what):
            return [ln for ln in submit_lines() if what in ln]

        held.open()
        # Two 500s: the first submission and a retry.
        wait_for(lambda: len(failures("job submit failed: 500")) >= 2, 60, 0.2,
                 "two submissions of %s answered 500" % job_id)
        # The RayJob shows why (as KubeRay's status.message with a failing dashboard), still Running.
        st = rjlib.wait_status(lc, name, lambda st: "job submit failed: 500" in st.get("message", ""), 30,
                               "the submission's error in status.message")
        self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus", "")), ("Running", ""), st)
        # Slower than the agent's timeout: Ray takes the job in after the agent gave up on the call.
        self.fault(ip, "slow", delay_ms=SLOW_MS)
        wait_for(lambda: failures("no answer within"), 60, 0.2, "a submission of %s timed out" % job_id)
        self.fault(ip, "restore")
        t0 = time.monotonic()
        st = rjlib.wait_status(lc, name, lambda st: st.get("jobStatus") == "RUNNING", 60, "Ray job RUNNING")
        print("chaos: HTTPMode %s RUNNING %.2fs after the Jobs API was restored; agent: %s" % (
            name, time.monotonic() - t0, " | ".join(ln.split("job ", 1)[-1] for ln in submit_lines())))
        self.assertEqual([j["submission_id"] for j in rjlib.ray_jobs(ip)], [job_id])
        gate.open()
        st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 60)
        self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus"), st["jobId"]),
                         ("Complete", "SUCCEEDED", job_id), st)
        self.assertEqual([j["submission_id"] for j in rjlib.ray_jobs(ip)], [job_id])
        self.delete_all([name])

    def try_fault(self, ip, mode):
        try:
            return self.lc.raysim_fault(ip, "jobs", mode) == 200
        except OSError:
            return False  # not listening yet

    # -- the controller SIGKILLed at random moments of a batch --------------------------------

    def test_controller_killed_during_batch(self):
        lc = self.lc
        seed = int(os.environ.get("RW_CHAOS_SEED") or random.SystemRandom().randrange(1 << 31))
        print("chaos: seed %d (RW_CHAOS_SEED=%d gives the same schedule)" % (seed, seed))
        rnd = random.Random(seed)
        names = ["rj-batch-%02d" % i for i in range(12)]
        watch = rjlib.Watcher(lc, [rjlib.RJ_PATH, lc.rc_path(NS), JOBS_PATH])
        try:
            # Drivers of 1-6 s; the last 4 RayJobs are applied while the controller is down.
            work = {n: rnd.uniform(1.0, 6.0) for n in names}
            applied = []

            def apply(batch):
                for n in batch:  # POSTed: the batch lands within milliseconds, not one kubectl after another
                    code = "import time; time.sleep(%.1f); print(%r)" % (work[n], n)
                    rj = rjlib.variant(self.base, n, {"entrypoint": "python -c %r" % code}, small=True)
                    lc.request("POST", rjlib.RJ_PATH, rj)
                    applied.append(n)
            apply(names[:8])
            for k in range(4):
                # A random moment of the batch (the first one early, while RayJobs are new): the
                # fault's schedule, not a wait for anything.
                time.sleep(rnd.uniform(0.0, 1.0) if k == 0 else rnd.uniform(0.5, 3.0))
                phases = {}
                for n in applied:
                    d = rjlib.status(lc, n).get("jobDeploymentStatus") or "New"
                    phases[d] = phases.get(d, 0) + 1
                pid = lc.controller_pid()
                lc.stop_controller(signal.SIGKILL)
                print("chaos: kill %d of pid %s with RayJobs %s" % (k + 1, pid, sorted(phases.items())))
                if k == 1:
                    apply(names[8:])
                lc.start_controller()
                self.assertNotEqual(lc.controller_pid(), pid)
            t0 = time.monotonic()
            for n in names:
                rjlib.wait_deployment(lc, n, ("Complete", "Failed"), max(30, 150 - (time.monotonic() - t0)))
            print("chaos: all %d RayJobs ended %.1fs after the last restart" % (len(names), time.monotonic() - t0))
            # Everything as it is now (RayClusters and Jobs being deleted included), and the watch
            # caught up with it: its events hold every object and status there ever was since.
            now = {p: lc.get(p)["items"] for p in (rjlib.RJ_PATH, lc.rc_path(NS), JOBS_PATH)}
            watch.wait_rv(max(int(o["metadata"]["resourceVersion"]) for items in now.values() for o in items))
            seen = [(p, o) for _, _, p, o in watch.ordered()]
        finally:
            watch.stop()
        seen += [(p, o) for p, items in now.items() for o in items]
        final = {o["metadata"]["name"]: o.get("status") or {} for o in now[rjlib.RJ_PATH]}

        def owned(path, n):
            return {o["metadata"]["uid"]: o["metadata"]["name"] for p, o in seen
                    if p == path and owner_rayjob(o) == n}

        for n in names:
            st = final[n]
            self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus"), st.get("succeeded")),
                             ("Complete", "SUCCEEDED", 1), (n, st))
            # Once set, the ids never changed.
            sts = [o.get("status") or {} for p, o in seen if p == rjlib.RJ_PATH and o["metadata"]["name"] == n]
            self.assertEqual(({s.get("jobId") for s in sts} - {None, ""},
                              {s.get("rayClusterName") for s in sts} - {None, ""}),
                             ({st["jobId"]}, {st["rayClusterName"]}), n)
            # One RayCluster and one submitter Job ever, by owner reference (deleted ones too).
            self.assertEqual(list(owned(lc.rc_path(NS), n).values()), [st["rayClusterName"]], n)
            self.assertEqual(list(owned(JOBS_PATH, n).values()), [n], n)
            # One Ray job on its head.
            ip = self.head_ip(st["rayClusterName"])
            self.assertEqual([j["submission_id"] for j in rjlib.ray_jobs(ip)], [st["jobId"]], n)
            self.assertLessEqual(len(rjlib.events(lc, n, "CreatedRayCluster")), 1, n)
        self.delete_all(names)


if __name__ == "__main__":
    unittest.main()

"""End to end, scenario S2: the RayJob lifecycle on the local cluster with raywarden-controller,
on RayJobs derived from KubeRay's ray-job.sample.yaml (a head without workers, short timers).

- shutdownAfterJobFinishes + ttlSecondsAfterFinished: the RayCluster is deleted once the TTL
  after endTime has passed, not before; the submitter Job and its logs are kept.
- activeDeadlineSeconds with a driver that would run for 10 minutes: Failed/DeadlineExceeded
  (not retried), and the Ray job is stopped.
- backoffLimit 2 with a failing driver: 3 attempts, each with a new RayCluster and job id,
  created only once the previous attempt's pods are gone; failed 3, Failed/AppFailed; Events
  Retrying and JobFailed with the driver's last error line; the head Service <rayjob>-head-svc
  selects each attempt's cluster in turn (UpdatedService).
- suspend while Running: Suspending, then Suspended with the cluster and submitter deleted;
  resume: a new attempt runs to Complete.
Uses clusterlib.py and rjlib.py."""

import calendar
import time
import unittest

from clusterlib import wait_for
import rjlib
from rjlib import NS
from kubesim.realcp import host_ip


def rfc3339(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


class RayJobLifecycle(rjlib.RayJobCase):

    def small(self, name, **spec):
        return rjlib.variant(self.base, name, spec, small=True)

    def test_ttl_after_finished(self):
        lc = self.lc
        name, ttl = "rj-ttl", 4
        rjlib.apply_obj(lc, self.small(name, entrypoint="python -c \"print('short job')\"",
                                       shutdownAfterJobFinishes=True, ttlSecondsAfterFinished=ttl))
        st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 60)
        self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus")), ("Complete", "SUCCEEDED"), st)
        cluster, end = st["rayClusterName"], rfc3339(st["endTime"])

        # Poll the cluster until it is being deleted; every sighting alive counts.
        last_alive = [None]

        def deleting():
            rc = lc.raycluster(NS, cluster)
            if rc and not rc["metadata"].get("deletionTimestamp"):
                last_alive[0] = time.time()
                return None
            return time.time()
        seen_deleted = wait_for(deleting, ttl + 20, 0.05, "RayCluster %s deleted after the TTL" % cluster)
        self.assertIsNotNone(last_alive[0], "the cluster was gone before the TTL could be checked")
        print("S2 TTL %ds: the cluster was alive %.2fs after endTime, deleted %.2fs after it" % (
            ttl, last_alive[0] - end, seen_deleted - end))
        # The deletion's own time, whatever the test's polling lag: the DeletedRayCluster Event is
        # made once the DELETE was answered (endTime is rounded down to the second, so this holds
        # exactly when the controller waited the TTL).
        ev = rjlib.wait_for(lambda: rjlib.events(lc, name, "DeletedRayCluster"), 10, 0.1, "DeletedRayCluster")
        deleted_at = rfc3339(ev[0]["eventTime"][:19] + "Z") + float("0." + ev[0]["eventTime"][20:26])
        self.assertGreaterEqual(deleted_at, end + ttl)
        self.assertLess(deleted_at, end + ttl + 10.0)
        lc.wait_gone(NS, cluster, 30)
        # The submitter Job is kept, with its logs.
        job = rjlib.submitter_job(lc, name)
        self.assertIsNotNone(job, "the submitter Job is kept after the cluster's deletion")
        self.assertFalse(job["metadata"].get("deletionTimestamp"))
        self.assertIn("short job", lc.kubectl("logs", "job/" + name, "-n", NS))
        self.assertEqual(rjlib.status(lc, name).get("jobDeploymentStatus"), "Complete")

    def test_active_deadline(self):
        lc = self.lc
        # The deadline leaves room for the cluster, the submitter and `ray job submit` on a loaded
        # machine: the job must be running when it passes.
        name, deadline = "rj-deadline", 12
        t0 = time.monotonic()
        rjlib.apply_obj(lc, self.small(name, entrypoint="python -c 'import time; time.sleep(600)'",
                                       activeDeadlineSeconds=deadline, backoffLimit=2))
        running = rjlib.wait_status(lc, name, lambda st: st.get("jobStatus") == "RUNNING", 60, "Ray job RUNNING")
        print("S2 activeDeadlineSeconds: Ray job RUNNING %.2fs after kubectl apply" % (time.monotonic() - t0))
        self.assertEqual(running["jobDeploymentStatus"], "Running")
        st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), deadline + 30)
        took = rfc3339(st["endTime"]) - rfc3339(st["startTime"])
        print("S2 activeDeadlineSeconds %d: Failed %ds after startTime" % (deadline, took))
        self.assertEqual((st["jobDeploymentStatus"], st.get("reason")), ("Failed", "DeadlineExceeded"), st)
        self.assertGreaterEqual(took, deadline - 1)
        self.assertEqual(st.get("failed"), 1, "DeadlineExceeded is not retried")
        # The Ray job was stopped on the head (the cluster stays: no shutdownAfterJobFinishes).
        head = rjlib.head_pod(lc, st["rayClusterName"])
        info = wait_for(lambda: (lambda i: i if i and i.get("status") == "STOPPED" else None)(
            rjlib.ray_job_status(lc, host_ip(head["status"]["podIP"]), st["jobId"])), 20, 0.2, "Ray job STOPPED")
        self.assertEqual(info["status"], "STOPPED")
        # The status then says so, instead of RUNNING beside Failed (KubeRay #2314).
        st = rjlib.wait_status(lc, name, lambda st: st.get("jobStatus") == "STOPPED", 10, "jobStatus STOPPED")
        self.assertEqual((st["jobDeploymentStatus"], st.get("reason")), ("Failed", "DeadlineExceeded"), st)
        self.assertIn("DeadlineExceeded", rjlib.reasons(lc, name))

    def test_backoff_limit_retries(self):
        lc = self.lc
        name = "rj-backoff"
        svc_path = "/api/v1/namespaces/%s/services" % NS
        w = rjlib.Watcher(lc, [lc.rc_path(NS), "/api/v1/namespaces/%s/pods" % NS, svc_path])
        try:
            t0 = time.monotonic()
            rjlib.apply_obj(lc, self.small(
                name, entrypoint="python -c \"print('attempt'); raise ValueError('boom on purpose')\"",
                backoffLimit=2))
            st = rjlib.wait_status(lc, name, lambda st: st.get("jobDeploymentStatus") == "Failed" and
                                   st.get("failed") == 3, 150, "Failed after 3 attempts")
            print("S2 backoffLimit 2: Failed after 3 attempts %.2fs after kubectl apply" % (time.monotonic() - t0))
            # The head Service follows each attempt's cluster (KubeRay v1.5): it selects the last
            # one, and the watch saw it select every cluster in turn (waited for: the watch may
            # lag the GET that showed the status).
            head_svc = name + "-head-svc"

            def selectors():
                seen = []
                for _, typ, path, obj in w.ordered():
                    if path != svc_path or obj.get("metadata", {}).get("name") != head_svc or typ == "DELETED":
                        continue
                    c = ((obj.get("spec") or {}).get("selector") or {}).get("ray.io/cluster")
                    if not seen or seen[-1] != c:
                        seen.append(c)
                return seen
            wait_for(lambda: selectors()[-1:] == [st["rayClusterName"]], 30, 0.1,
                     "%s selecting %s in the watch" % (head_svc, st["rayClusterName"]))
            switched = selectors()
        finally:
            w.stop()
        self.assertEqual((st.get("reason"), st.get("jobStatus")), ("AppFailed", "FAILED"), st)
        # Three clusters, one after the other: each created once every pod of the previous is gone.
        created, pods_of = [], {}
        alive = {}  # pod name -> cluster, for pods not yet deleted
        for rv, typ, path, obj in w.ordered():
            md = obj.get("metadata") or {}
            if path.endswith("/rayclusters"):
                if (md.get("labels") or {}).get("ray.io/originated-from-cr-name") != name:
                    continue
                if typ == "ADDED":
                    prev = [p for p, c in alive.items() if c in created]
                    self.assertEqual(prev, [], "RayCluster %s created while pods of an earlier attempt "
                                     "exist: %s" % (md["name"], prev))
                    created.append(md["name"])
            else:
                cl = (md.get("labels") or {}).get("ray.io/cluster")
                if not cl:
                    continue
                pods_of.setdefault(cl, set()).add(md["name"])
                if typ == "DELETED":
                    alive.pop(md["name"], None)
                else:
                    alive[md["name"]] = cl
        self.assertEqual(len(created), 3, created)
        self.assertEqual(len(set(created)), 3, created)
        for c in created:
            self.assertTrue(pods_of.get(c), "no pod of %s was seen" % c)
        self.assertEqual(st["rayClusterName"], created[-1])
        self.assertEqual(switched, created)
        svc = lc.get("/api/v1/namespaces/%s/services/%s" % (NS, head_svc))
        self.assertEqual(svc["spec"]["selector"].get("ray.io/cluster"), created[-1])
        self.assertEqual(svc["spec"]["selector"].get("ray.io/identifier"), created[-1] + "-head")
        self.assertEqual([(o["kind"], o["name"]) for o in svc["metadata"]["ownerReferences"]],
                         [("RayJob", name)])
        self.assertEqual(svc["spec"].get("clusterIP"), "None")  # headless: kept across switches
        updated = rjlib.events(lc, name, "UpdatedService")
        self.assertGreaterEqual(sum(((e.get("series") or {}).get("count") or 1) for e in updated), 2,
                                updated)
        retrying = rjlib.events(lc, name, "Retrying")
        count = sum(((e.get("series") or {}).get("count") or 1) for e in retrying)
        self.assertEqual(count, 2, retrying)
        failed = rjlib.events(lc, name, "JobFailed")
        self.assertTrue(failed, rjlib.reasons(lc, name))
        self.assertIn("ValueError: boom on purpose", failed[-1].get("note", ""))

    def test_suspend_resume(self):
        lc = self.lc
        name = "rj-suspend"
        gate = rjlib.Gate(lc, name)
        w = rjlib.Watcher(lc, [rjlib.RJ_PATH])
        try:
            rjlib.apply_obj(lc, self.small(name, entrypoint=gate.entrypoint(), shutdownAfterJobFinishes=True))
            st = rjlib.wait_status(lc, name, lambda st: st.get("jobStatus") == "RUNNING", 60, "Ray job RUNNING")
            cluster, job_id = st["rayClusterName"], st["jobId"]
            t0 = time.monotonic()
            lc.patch(rjlib.RJ_PATH + "/" + name, {"spec": {"suspend": True}})
            st = rjlib.wait_deployment(lc, name, "Suspended", 60)
            print("S2 suspend: Suspended %.2fs after the patch" % (time.monotonic() - t0))
            self.assertIsNone(lc.raycluster(NS, cluster))
            self.assertEqual(lc.pods(NS, cluster, include_deleting=True), [])
            self.assertIsNone(rjlib.submitter_job(lc, name))
            self.assertFalse(st.get("jobId") or st.get("rayClusterName") or st.get("jobStatus"), st)
            gate.open()
            lc.patch(rjlib.RJ_PATH + "/" + name, {"spec": {"suspend": False}})
            st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 60)
            w.wait_rv(rjlib.rayjob(lc, name)["metadata"]["resourceVersion"])
        finally:
            w.stop()
        self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus")), ("Complete", "SUCCEEDED"), st)
        self.assertNotEqual(st["rayClusterName"], cluster)
        self.assertNotEqual(st["jobId"], job_id)
        seq = []
        for _, _, _, obj in w.ordered():
            if obj.get("metadata", {}).get("name") != name:
                continue
            d = (obj.get("status") or {}).get("jobDeploymentStatus")
            if d and (not seq or seq[-1] != d):
                seq.append(d)
        i = seq.index("Running")
        self.assertEqual(seq[i:i + 3], ["Running", "Suspending", "Suspended"], seq)
        self.assertIn("Initializing", seq[i + 3:], seq)
        self.assertEqual(seq[-1], "Complete", seq)


if __name__ == "__main__":
    unittest.main()

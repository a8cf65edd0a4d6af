"""End to end, scenario S2: RayJob faults on the local cluster with raywarden-controller, on
RayJobs derived from KubeRay's ray-job.sample.yaml (a head without workers) whose driver runs
until the test opens a gate file.

- The head pod deleted while the job runs: Failed within seconds with a HeadLost Event, never
  Running for ever (KubeRay #1489, #2161, #3903).
- The submitter pod deleted while Ray runs the job (its Job fails: submitterConfig.backoffLimit 0):
  the job still completes, since Ray's status decides and not the log follow (#4921).
- The controller killed (SIGKILL) once the ids are in status and again while the job runs: one
  RayCluster, one submitter Job, one Ray job.
Uses clusterlib.py and rjlib.py."""

import signal
import time
import unittest

import rjlib
from rjlib import NS
from kubesim.realcp import host_ip


class RayJobFaults(rjlib.RayJobCase):

    def start_gated(self, name, **spec):
        gate = rjlib.Gate(self.lc, name)
        rjlib.apply_obj(self.lc, rjlib.variant(self.base, name, dict(entrypoint=gate.entrypoint(), **spec),
                                               small=True))
        return gate

    def wait_running(self, name):
        return rjlib.wait_status(self.lc, name, lambda st: st.get("jobStatus") == "RUNNING", 60, "Ray job RUNNING")

    def test_head_deleted(self):
        lc = self.lc
        name = "rj-headloss"
        self.start_gated(name)
        st = self.wait_running(name)
        head = rjlib.head_pod(lc, st["rayClusterName"])
        t0 = time.monotonic()
        lc.delete("/api/v1/namespaces/%s/pods/%s" % (NS, head["metadata"]["name"]))
        st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 30)
        took = time.monotonic() - t0
        print("S2 head pod deleted -> %s in %.2fs" % (st["jobDeploymentStatus"], took))
        self.assertEqual((st["jobDeploymentStatus"], st.get("reason")), ("Failed", "AppFailed"), st)
        self.assertLess(took, 15.0)
        ev = rjlib.events(lc, name, "HeadLost")
        self.assertTrue(ev, rjlib.reasons(lc, name))
        self.assertEqual(ev[0].get("type"), "Warning")

    def test_submitter_deleted(self):
        lc = self.lc
        name = "rj-subloss"
        gate = self.start_gated(name, submitterConfig={"backoffLimit": 0})
        st = self.wait_running(name)
        pods = rjlib.submitter_pods(lc, name, include_deleting=False)
        self.assertEqual(len(pods), 1, pods)
        lc.delete("/api/v1/namespaces/%s/pods/%s" % (NS, pods[0]["metadata"]["name"]))

        def job_failed():
            job = rjlib.submitter_job(lc, name)
            conds = (job or {}).get("status", {}).get("conditions") or []
            return any(c["type"] == "Failed" and c["status"] == "True" for c in conds)
        rjlib.wait_for(job_failed, 30, 0.1, "the submitter Job Failed")
        # Ray still runs the job: the RayJob stays Running with it.
        self.assertEqual((rjlib.status(lc, name).get("jobDeploymentStatus"), rjlib.status(lc, name).get("jobStatus")),
                         ("Running", "RUNNING"))
        t0 = time.monotonic()
        gate.open()
        st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 30)
        print("S2 submitter deleted: %s / %s %.2fs after the driver was released" % (
            st["jobDeploymentStatus"], st.get("jobStatus"), time.monotonic() - t0))
        self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus")), ("Complete", "SUCCEEDED"), st)
        head = rjlib.head_pod(lc, st["rayClusterName"])
        jobs = rjlib.ray_jobs(host_ip(head["status"]["podIP"]))
        self.assertEqual([j["submission_id"] for j in jobs], [st["jobId"]])

    def test_controller_restart(self):
        lc = self.lc
        name = "rj-restart"
        gate = self.start_gated(name)
        st = rjlib.wait_status(lc, name, lambda st: st.get("jobId") and st.get("rayClusterName"), 30,
                               "ids in status")
        lc.stop_controller(signal.SIGKILL)
        ids = (st["jobId"], st["rayClusterName"])
        lc.start_controller()
        st = self.wait_running(name)
        self.assertEqual((st["jobId"], st["rayClusterName"]), ids)
        lc.stop_controller(signal.SIGKILL)
        lc.start_controller()
        gate.open()
        st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 60)
        self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus")), ("Complete", "SUCCEEDED"), st)
        self.assertEqual((st["jobId"], st["rayClusterName"]), ids)
        self.assertEqual([c["metadata"]["name"] for c in rjlib.rayclusters(lc, name)], [ids[1]])
        head = rjlib.head_pod(lc, ids[1])
        jobs = rjlib.ray_jobs(host_ip(head["status"]["podIP"]))
        self.assertEqual([j["submission_id"] for j in jobs], [ids[0]])
        self.assertEqual(len(rjlib.submitter_pods(lc, name)), 1)
        # A kill can land between the cluster's create and its Event (then the restarted controller
        # gets AlreadyExists and records none); a second creation would show as a second Event.
        self.assertLessEqual(len(rjlib.events(lc, name, "CreatedRayCluster")), 1)


if __name__ == "__main__":
    unittest.main()

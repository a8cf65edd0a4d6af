"""End to end, scenario S2: the RayJob submission modes on the local cluster with
raywarden-controller, and validation.

- SidecarMode: KubeRay's ray-job.sidecar-mode.yaml unchanged reaches Complete/SUCCEEDED; the
  submitter container in the head pod printed the driver's output; the head pod has
  restartPolicy Never and the RayCluster the annotation ray.io/disable-provisioned-head-restart.
- HTTPMode (ray-job.sample.yaml with submissionMode HTTPMode): no submitter Job; the head agent
  submits the job (entrypoint and runtime env of the RayJob) and it completes.
- InteractiveMode: Waiting with no job id, still Waiting after a job ran on the cluster; the test
  submits with `ray job submit` against the head's dashboard and patches spec.jobId: Complete.
- Validation: a 48-character name and suspend without shutdownAfterJobFinishes give
  ValidationFailed with KubeRay's message and a Warning Event, and nothing is created.
Uses clusterlib.py and rjlib.py."""

import json
import os
import subprocess
import time
import unittest

from clusterlib import LocalClusterCase, SIM_DIR, corpus_sample
import rjlib
from rjlib import NS
from kubesim.realcp import host_ip


class RayJobModes(rjlib.RayJobCase):

    def wait_terminal(self, name, timeout=120):
        return rjlib.wait_deployment(self.lc, name, ("Complete", "Failed"), timeout)

    def test_sidecar_mode(self):
        lc = self.lc
        path = corpus_sample("ray-job.sidecar-mode.yaml")
        if not path:
            self.skipTest("no ray-job.sidecar-mode.yaml in the corpus")
        name = "rayjob-sidecar-mode"
        t0 = time.monotonic()
        lc.apply(path)
        st = self.wait_terminal(name)
        print("S2 SidecarMode: %s / %s %.2fs after kubectl apply" % (
            st.get("jobDeploymentStatus"), st.get("jobStatus"), time.monotonic() - t0))
        self.assertEqual((st.get("jobDeploymentStatus"), st.get("jobStatus")), ("Complete", "SUCCEEDED"), st)
        self.assertEqual(st.get("succeeded"), 1, st)
        cluster = st["rayClusterName"]
        rc = lc.raycluster(NS, cluster)
        self.assertEqual((rc["metadata"].get("annotations") or {}).get("ray.io/disable-provisioned-head-restart"),
                         "true", rc["metadata"])
        head = rjlib.head_pod(lc, cluster)
        self.assertIsNotNone(head)
        self.assertEqual(head["spec"].get("restartPolicy"), "Never")
        names = [c["name"] for c in head["spec"]["containers"]]
        self.assertIn("ray-job-submitter", names)
        logs = lc.kubectl("logs", head["metadata"]["name"], "-n", NS, "-c", "ray-job-submitter")
        self.assertIn("test_counter got 5", logs)
        self.assertIsNone(rjlib.submitter_job(lc, name), "SidecarMode makes no submitter Job")
        # The submitter container ended with the job; the Ray container runs on.
        cs = {c["name"]: c for c in head["status"].get("containerStatuses", [])}
        term = (cs.get("ray-job-submitter", {}).get("state") or {}).get("terminated")
        self.assertTrue(term and term.get("exitCode") == 0, cs.get("ray-job-submitter"))
        self.assertIn("JobSucceeded", rjlib.reasons(lc, name))

    def test_sidecar_submit_fails(self):
        """SidecarMode whose submission fails on the client (a working_dir that does not exist:
        `ray job submit` exits 1 before Ray knows the job): Failed with SubmissionFailed as soon as
        the submitter container has terminated (its exit code in the head pod's status), as
        KubeRay, not AppFailed after the 30 s "Submitter completed but Ray job not found"."""
        lc = self.lc
        path = corpus_sample("ray-job.sidecar-mode.yaml")
        if not path:
            self.skipTest("no ray-job.sidecar-mode.yaml in the corpus")
        base, _ = rjlib.split_sample(lc, path)
        name = "rayjob-sidecar-subfail"
        rjlib.apply_obj(lc, rjlib.variant(base, name, {"runtimeEnvYAML": "working_dir: /nonexistent-rw-dir\n"},
                                          small=True))
        st = self.wait_terminal(name)
        self.assertEqual((st.get("jobDeploymentStatus"), st.get("reason")), ("Failed", "SubmissionFailed"), st)
        head = rjlib.head_pod(lc, st["rayClusterName"])
        if head:  # the cluster may already be gone (shutdownAfterJobFinishes)
            cs = {c["name"]: c for c in head["status"].get("containerStatuses", [])}
            term = (cs.get("ray-job-submitter", {}).get("state") or {}).get("terminated") or {}
            self.assertNotEqual(term.get("exitCode"), 0, cs.get("ray-job-submitter"))

    def test_http_mode(self):
        lc = self.lc
        name = "rayjob-http"
        rj = rjlib.variant(self.base, name, {"submissionMode": "HTTPMode"})
        t0 = time.monotonic()
        rjlib.apply_obj(lc, rj)
        st = self.wait_terminal(name)
        print("S2 HTTPMode: %s / %s %.2fs after kubectl apply" % (
            st.get("jobDeploymentStatus"), st.get("jobStatus"), time.monotonic() - t0))
        self.assertEqual((st.get("jobDeploymentStatus"), st.get("jobStatus")), ("Complete", "SUCCEEDED"), st)
        self.assertTrue(st["jobId"].startswith(name + "-"), st)
        # raywarden's conditions survive the CRD's schema (manifests/crds: not in KubeRay's).
        conds = {c["type"]: c["status"] for c in st.get("conditions", [])}
        self.assertEqual(conds, {"Submitted": "True", "Running": "False", "Complete": "True", "Failed": "False",
                                 "Suspended": "False"}, st.get("conditions"))
        self.assertIsNone(rjlib.submitter_job(lc, name), "HTTPMode makes no submitter Job")
        head = rjlib.head_pod(lc, st["rayClusterName"])
        info = rjlib.ray_job_status(lc, host_ip(head["status"]["podIP"]), st["jobId"])
        self.assertEqual(info["status"], "SUCCEEDED", info)
        self.assertEqual(info["submission_id"], st["jobId"])
        self.assertEqual(info["entrypoint"], rj["spec"]["entrypoint"])
        self.assertEqual((info.get("runtime_env") or {}).get("env_vars"), {"counter_name": "test_counter"}, info)
        logs = rjlib.ray_job_logs(host_ip(head["status"]["podIP"]), st["jobId"])
        self.assertIn("test_counter got 5", logs)
        # Exactly one submission: the dashboard lists the job once.
        jobs = [j for j in rjlib.ray_jobs(host_ip(head["status"]["podIP"])) if j.get("submission_id") == st["jobId"]]
        self.assertEqual(len(jobs), 1, jobs)

    def test_interactive_mode(self):
        lc = self.lc
        name = "rayjob-interactive"
        rj = rjlib.variant(self.base, name, {"submissionMode": "InteractiveMode"})
        t0 = time.monotonic()
        rjlib.apply_obj(lc, rj)
        st = rjlib.wait_deployment(lc, name, "Waiting", 90)
        print("S2 InteractiveMode: Waiting %.2fs after kubectl apply" % (time.monotonic() - t0))
        self.assertFalse(st.get("jobId"), st)
        self.assertIsNone(rjlib.submitter_job(lc, name))
        head = rjlib.head_pod(lc, st["rayClusterName"])
        ip = host_ip(head["status"]["podIP"])
        job_id = "interactive-" + name
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        r = subprocess.run([os.path.join(SIM_DIR, "bin", "ray"), "job", "submit", "--address", "http://%s:8265" % ip,
                            "--submission-id", job_id, "--runtime-env-json",
                            json.dumps({"pip": ["requests==2.26.0", "pendulum==2.1.2"],
                                        "env_vars": {"counter_name": "test_counter"}}),
                            "--", "python", "/home/ray/samples/sample_code.py"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=90, env=env)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("test_counter got 5", r.stdout)
        # The job ran to its end on the cluster; the RayJob does not know it until spec.jobId.
        self.assertEqual(rjlib.ray_job_status(lc, ip, job_id)["status"], "SUCCEEDED")
        self.assertEqual(rjlib.status(lc, name).get("jobDeploymentStatus"), "Waiting")
        t1 = time.monotonic()
        lc.patch(rjlib.RJ_PATH + "/" + name, {"spec": {"jobId": job_id}})
        st = self.wait_terminal(name, 60)
        print("S2 InteractiveMode: %s / %s %.2fs after spec.jobId" % (
            st.get("jobDeploymentStatus"), st.get("jobStatus"), time.monotonic() - t1))
        self.assertEqual((st.get("jobDeploymentStatus"), st.get("jobStatus"), st.get("jobId")),
                         ("Complete", "SUCCEEDED", job_id), st)


class RayJobValidation(LocalClusterCase):
    SAMPLE = rjlib.SAMPLE

    @classmethod
    def setUpCluster(cls):
        cls.base, _ = rjlib.split_sample(cls.lc, cls.sample)

    def check_invalid(self, name, spec, reason, message):
        lc = self.lc
        rjlib.apply_obj(lc, rjlib.variant(self.base, name, spec, small=True))
        st = rjlib.wait_deployment(lc, name, "ValidationFailed", 30)
        self.assertEqual(st.get("reason"), "ValidationFailed", st)
        self.assertEqual(st.get("message"), message)
        evs = rjlib.wait_for(lambda: rjlib.events(lc, name, reason), 10, 0.1, "%s Event" % reason)
        self.assertEqual(evs[0].get("type"), "Warning")
        self.assertEqual(evs[0].get("note"), message)
        # Nothing was made, and the RayJob stays as it is.
        self.assertEqual(rjlib.rayclusters(lc, name), [])
        self.assertIsNone(rjlib.submitter_job(lc, name))
        self.assertFalse(st.get("jobId") or st.get("rayClusterName"), st)
        return st

    def test_name_too_long(self):
        name = "rayjob-" + "n" * 41
        self.assertEqual(len(name), 48)
        self.check_invalid(name, {}, "InvalidRayJobMetadata",
                           "The RayJob metadata is invalid: RayJob name should be no more than 47 characters")

    def test_suspend_without_shutdown(self):
        self.check_invalid("rayjob-suspend-invalid", {"suspend": True}, "InvalidRayJobSpec",
                           "The RayJob spec is invalid: a RayJob with shutdownAfterJobFinishes set to false "
                           "is not allowed to be suspended")

    def test_managed_by_multikueue(self):
        """spec.managedBy kueue.x-k8s.io/multikueue: MultiKueue runs the RayJob on a worker cluster;
        raywarden, like KubeRay, leaves it alone (no status, no cluster, no submitter). A RayJob
        applied after it reaching Initializing shows the controller has passed it by."""
        lc = self.lc
        rjlib.apply_obj(lc, rjlib.variant(self.base, "rayjob-multikueue",
                                          {"managedBy": "kueue.x-k8s.io/multikueue"}, small=True))
        rjlib.apply_obj(lc, rjlib.variant(self.base, "rayjob-after-mk", {}, small=True))
        rjlib.wait_status(lc, "rayjob-after-mk", lambda st: st.get("rayClusterName"), 30,
                          "the later RayJob's cluster")
        self.assertEqual(rjlib.status(lc, "rayjob-multikueue"), {})
        self.assertEqual(rjlib.rayclusters(lc, "rayjob-multikueue"), [])
        self.assertIsNone(rjlib.submitter_job(lc, "rayjob-multikueue"))
        self.assertNotIn("ray.io/rayjob-finalizer",
                         rjlib.rayjob(lc, "rayjob-multikueue")["metadata"].get("finalizers") or [])


if __name__ == "__main__":
    unittest.main()

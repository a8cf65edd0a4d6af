"""kubesim's batch/v1 Job controller against what the RayJob controller relies on
(pkg/controller/job/job_controller.go, v1.32; the Job concept page): conditions
and their order, counters and times, backoffLimit under Never and OnFailure,
activeDeadlineSeconds, suspend, pod labels, background deletion, and
`kubectl logs job/<name>` (real kubectl, which lists the Job's pods by its
selector) printing a submitter-like pod's output.
"""

import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kubesim.kubelet_testutil import LocalCluster, condition, wait_for  # noqa: E402
from kubesim.kubeclient import parse_rfc3339  # noqa: E402

KUBECTL = shutil.which("kubectl")


def job(name, script, restart="Never", image="busybox", **spec):
    s = {"template": {"spec": {"restartPolicy": restart,
                               "containers": [{"name": "c", "image": image, "command": ["sh", "-c", script]}]}}}
    s.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": s}


class JobController(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cl = LocalCluster(nodes=1, backoff_base=0.5, job_backoff_base=0.3)
        cls.c = cls.cl.client

    @classmethod
    def tearDownClass(cls):
        cls.cl.down()

    def cond(self, name, ctype):
        j = self.c.get("jobs", "default", name)
        c = condition(j, ctype)
        return j if c and c["status"] == "True" else None

    def pods(self, name):
        return self.c.list("pods", "default", label_selector="batch.kubernetes.io/job-name=%s" % name)["items"]

    def test_complete_labels_and_kubectl_logs(self):
        created = self.c.create("jobs", "default", job("jc-ok", "echo submitter-output; exit 0"))
        uid = created["metadata"]["uid"]
        self.assertEqual(created["spec"]["selector"]["matchLabels"], {"batch.kubernetes.io/controller-uid": uid})
        j = wait_for(lambda: self.cond("jc-ok", "Complete"), 20, what="jc-ok Complete")
        st = j["status"]
        self.assertEqual((st.get("succeeded"), st.get("active"), st.get("failed")), (1, None, None))
        self.assertEqual(condition(j, "Complete")["reason"], "CompletionsReached")
        self.assertEqual(condition(j, "SuccessCriteriaMet")["status"], "True")
        done = parse_rfc3339(condition(j, "Complete")["lastTransitionTime"])
        self.assertGreaterEqual(parse_rfc3339(st["completionTime"]), parse_rfc3339(st["startTime"]))
        self.assertLessEqual(abs(done - parse_rfc3339(st["completionTime"])), 1)
        (pod,) = self.pods("jc-ok")
        labels = pod["metadata"]["labels"]
        for k in ("batch.kubernetes.io/job-name", "job-name"):
            self.assertEqual(labels[k], "jc-ok")
        for k in ("batch.kubernetes.io/controller-uid", "controller-uid"):
            self.assertEqual(labels[k], uid)
        ref = pod["metadata"]["ownerReferences"][0]
        self.assertEqual((ref["kind"], ref["name"], ref["uid"], ref["controller"]), ("Job", "jc-ok", uid, True))
        self.assertTrue(pod["metadata"]["name"].startswith("jc-ok-"))
        self.assertEqual(pod["status"]["phase"], "Succeeded")
        if KUBECTL:
            env = dict(os.environ, KUBECONFIG=self.cl.kubeconfig)
            r = subprocess.run([KUBECTL, "logs", "job/jc-ok"], env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "submitter-output\n")

    def test_backoff_limit_never(self):
        self.c.create("jobs", "default", job("jc-bad", "exit 1", backoffLimit=1))
        j = wait_for(lambda: self.cond("jc-bad", "Failed"), 20, what="jc-bad Failed")
        self.assertEqual(condition(j, "Failed")["reason"], "BackoffLimitExceeded")
        self.assertEqual(condition(j, "Failed")["message"], "Job has reached the specified backoff limit")
        self.assertEqual(condition(j, "FailureTarget")["reason"], "BackoffLimitExceeded")
        self.assertEqual(j["status"]["failed"], 2)  # backoffLimit + 1 pods
        self.assertNotIn("completionTime", j["status"])
        self.assertNotIn("active", j["status"])
        self.assertEqual(len(self.pods("jc-bad")), 2)

    def test_backoff_limit_on_failure_counts_restarts(self):
        # pastBackoffLimitOnFailure: restarts >= backoffLimit fails the Job (one pod, restarted).
        self.c.create("jobs", "default", job("jc-onf", "exit 1", restart="OnFailure", backoffLimit=2))
        j = wait_for(lambda: self.cond("jc-onf", "Failed"), 30, what="jc-onf Failed")
        self.assertEqual(condition(j, "Failed")["reason"], "BackoffLimitExceeded")
        self.assertEqual(j["status"]["failed"], 1)
        wait_for(lambda: not [p for p in self.pods("jc-onf") if p["status"].get("phase") == "Running"
                              and not p["metadata"].get("deletionTimestamp")], 15, what="pod stopped")

    def test_active_deadline(self):
        self.c.create("jobs", "default", job("jc-slow", "sleep 60", activeDeadlineSeconds=2))
        running = wait_for(lambda: (lambda j: j if (j.get("status") or {}).get("active") == 1 else None)(
            self.c.get("jobs", "default", "jc-slow")), 15, what="jc-slow active")
        start = parse_rfc3339(running["status"]["startTime"])
        target = wait_for(lambda: (lambda j: j if condition(j, "FailureTarget") else None)(
            self.c.get("jobs", "default", "jc-slow")), 15, what="FailureTarget")
        self.assertEqual(condition(target, "FailureTarget")["reason"], "DeadlineExceeded")
        self.assertGreaterEqual(parse_rfc3339(condition(target, "FailureTarget")["lastTransitionTime"]), start + 1)
        j = wait_for(lambda: self.cond("jc-slow", "Failed"), 20, what="jc-slow Failed")
        self.assertEqual(condition(j, "Failed")["reason"], "DeadlineExceeded")
        self.assertEqual(condition(j, "Failed")["message"], "Job was active longer than specified deadline")
        # Failed only once the killed pod has gone; it counts as failed.
        self.assertEqual(j["status"]["failed"], 1)
        self.assertEqual(j["status"]["terminating"], 0)
        self.assertFalse([p for p in self.pods("jc-slow") if p["status"].get("phase") == "Running"])

    def test_suspend_and_resume(self):
        self.c.create("jobs", "default", job("jc-susp", "sleep 1; exit 0", suspend=True))
        j = wait_for(lambda: self.cond("jc-susp", "Suspended"), 15, what="Suspended")
        self.assertEqual(condition(j, "Suspended")["reason"], "JobSuspended")
        self.assertNotIn("startTime", j["status"])
        self.assertEqual(self.pods("jc-susp"), [])
        self.c.patch("jobs", "default", "jc-susp", {"spec": {"suspend": False}})
        j = wait_for(lambda: self.cond("jc-susp", "Complete"), 20, what="resumed and Complete")
        self.assertEqual((condition(j, "Suspended")["status"], condition(j, "Suspended")["reason"]),
                         ("False", "JobResumed"))
        self.assertIn("startTime", j["status"])
        self.assertEqual(len(self.pods("jc-susp")), 1)

    def test_background_deletion_removes_pods(self):
        self.c.create("jobs", "default", job("jc-del", "sleep 60"))
        wait_for(lambda: [p for p in self.pods("jc-del") if p["status"].get("phase") == "Running"], 15,
                 what="jc-del pod running")
        self.c.delete("jobs", "default", "jc-del", propagation="Background")
        wait_for(lambda: self.c.get_or_none("jobs", "default", "jc-del") is None, 10, what="job gone")
        wait_for(lambda: not self.pods("jc-del"), 20, what="pods collected")

    def test_ray_image_submitter_exit_code(self):
        # A Ray-image container runs the `ray` CLI; a status query of an unreachable
        # dashboard exits 1, and with backoffLimit 0 the Job fails at once.
        self.c.create("jobs", "default", job("jc-ray", "ray job status --address http://127.0.0.1:1 x",
                                             image="rayproject/ray:2.52.0", backoffLimit=0))
        j = wait_for(lambda: self.cond("jc-ray", "Failed"), 30, what="jc-ray Failed")
        self.assertEqual(j["status"]["failed"], 1)
        (pod,) = self.pods("jc-ray")
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual(term["exitCode"], 1)


if __name__ == "__main__":
    unittest.main()

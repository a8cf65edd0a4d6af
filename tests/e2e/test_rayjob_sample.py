"""End to end, scenario S2 (first part): KubeRay's ray-job.sample.yaml applied unchanged to the
local cluster with raywarden-controller reaches jobDeploymentStatus Complete and jobStatus
SUCCEEDED; the ids were written to status before the cluster existed; the RayCluster, the
submitter Job and the head Service <rayjob>-head-svc (KubeRay v1.5: the cluster's head Service's
selector, owned by the RayJob) are KubeRay's (names, labels, owner); `kubectl logs job/<name>`
shows the driver's output ("test_counter got 5"), and so does the ConfigMap <rayjob>-driver-log
that keeps the tail of the driver log. Uses clusterlib.py."""

import json
import time
import unittest

from clusterlib import LocalClusterCase, wait_for

NS = "default"
NAME = "rayjob-sample"


def rayjob(lc):
    return json.loads(lc.kubectl("get", "rayjob", NAME, "-n", NS, "-o", "json"))


class RayJobS2(LocalClusterCase):
    SAMPLE = "ray-job.sample.yaml"

    def test_1_sample_completes(self):
        lc = self.lc
        t0 = time.monotonic()
        lc.apply(self.sample)

        def status():
            return rayjob(lc).get("status") or {}

        st = wait_for(lambda: status() if status().get("jobDeploymentStatus") in ("Complete", "Failed")
                      else None, 180, 0.2, "RayJob terminal")
        print("S2: %s / %s %.2fs after kubectl apply" % (st.get("jobDeploymentStatus"), st.get("jobStatus"),
                                                         time.monotonic() - t0))
        self.assertEqual(st.get("jobDeploymentStatus"), "Complete", st)
        self.assertEqual(st.get("jobStatus"), "SUCCEEDED", st)
        cluster = st["rayClusterName"]
        self.assertTrue(cluster.startswith(NAME + "-") and len(cluster) == len(NAME) + 6, cluster)
        self.assertTrue(st["jobId"].startswith(NAME + "-"), st)
        self.assertTrue(st.get("startTime") and st.get("endTime"), st)
        self.assertEqual(st.get("succeeded"), 1)
        self.assertIn(cluster + "-head-svc." + NS + ".svc.cluster.local:8265", st.get("dashboardURL", ""))

        rc = lc.raycluster(NS, cluster)
        labels = rc["metadata"].get("labels") or {}
        self.assertEqual(labels.get("ray.io/originated-from-crd"), "RayJob")
        self.assertEqual(labels.get("ray.io/originated-from-cr-name"), NAME)
        owner = rc["metadata"]["ownerReferences"][0]
        self.assertEqual((owner["kind"], owner["name"], owner.get("controller")), ("RayJob", NAME, True))

        job = json.loads(lc.kubectl("get", "job", NAME, "-n", NS, "-o", "json"))
        self.assertEqual(job["metadata"]["labels"].get("app.kubernetes.io/created-by"), "kuberay-operator")
        self.assertEqual(job["spec"].get("backoffLimit"), 2)
        logs = lc.kubectl("logs", "job/" + NAME, "-n", NS)
        self.assertIn("test_counter got 5", logs)

        # The driver log's tail is kept in a ConfigMap owned by the RayJob.
        def log_cm():
            out = lc.kubectl("get", "configmap", NAME + "-driver-log", "-n", NS, "-o", "json", check=False)
            return json.loads(out) if out.strip() else None
        cm = wait_for(log_cm, 30, 0.2, "ConfigMap %s-driver-log" % NAME)
        self.assertIn("test_counter got 5", cm["data"]["driver.log"])
        self.assertEqual(cm["data"]["jobId"], st["jobId"])
        self.assertEqual(cm["metadata"]["ownerReferences"][0]["name"], NAME)

        # KubeRay's RayJob metrics.
        uid = rayjob(lc)["metadata"]["uid"]
        m = lc.metrics()
        labels = 'name="%s",namespace="%s",uid="%s"' % (NAME, NS, uid)
        self.assertEqual(m.get("kuberay_job_info{%s}" % labels), 1)
        self.assertEqual(m.get('kuberay_job_deployment_status{%s,deployment_status="Complete"}' % labels), 1)
        self.assertNotIn('kuberay_job_deployment_status{%s,deployment_status="Running"}' % labels, m)
        dur = m.get('kuberay_job_execution_duration_seconds{%s,job_deployment_status="Complete",retry_count="0"}'
                    % labels)
        self.assertTrue(dur is not None and 0 < dur < 180, dur)

        # KubeRay v1.5's <rayjob>-head-svc, made while Running (so there by Complete): the
        # cluster's head Service under the RayJob's name, owned by the RayJob.
        svc = lc.get_or_none("/api/v1/namespaces/%s/services/%s-head-svc" % (NS, NAME))
        self.assertIsNotNone(svc, "Service %s-head-svc" % NAME)
        own = svc["metadata"].get("ownerReferences") or []
        self.assertEqual([(o["kind"], o["name"], o["uid"], o.get("controller")) for o in own],
                         [("RayJob", NAME, uid, True)])
        self.assertEqual(svc["metadata"].get("labels"), {
            "ray.io/originated-from-cr-name": NAME, "ray.io/originated-from-crd": "RayJob",
            "ray.io/node-type": "head", "ray.io/identifier": NAME + "-head"})
        cluster_svc = lc.get("/api/v1/namespaces/%s/services/%s-head-svc" % (NS, cluster))
        self.assertEqual(svc["spec"]["selector"], cluster_svc["spec"]["selector"])
        self.assertEqual(svc["spec"]["selector"].get("ray.io/cluster"), cluster)
        self.assertEqual(svc["spec"].get("clusterIP"), "None")
        self.assertEqual([(p["name"], p["port"]) for p in svc["spec"]["ports"]],
                         [(p["name"], p["port"]) for p in cluster_svc["spec"]["ports"]])
        self.assertNotIn("annotations", svc["metadata"])

        reasons = {e.get("reason") for e in lc.events(NS, NAME)}
        for r in ("CreatedRayCluster", "CreatedRayJobSubmitter", "CreatedService", "JobSucceeded"):
            self.assertIn(r, reasons)


if __name__ == "__main__":
    unittest.main()

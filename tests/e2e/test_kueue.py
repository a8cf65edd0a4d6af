"""End to end: raywarden under a Kueue-like driver, on the local cluster.

KueueDriver below does to RayJobs and RayClusters what Kueue's job framework does through its
ray.io/rayjob and ray.io/raycluster integrations (sigs.k8s.io/kueue
pkg/controller/jobs/rayjob/rayjob_controller.go, jobs/raycluster/raycluster_controller.go,
their *_webhook.go, and pkg/controller/jobframework):

- its mutating webhook (Default: ApplyDefaultForSuspend, ApplyDefaultForManagedBy) creates an
  object of a queue (label kueue.x-k8s.io/queue-name) with spec.suspend=true, and with
  MultiKueue also spec.managedBy=kueue.x-k8s.io/multikueue;
- admission is RunWithPodSetsInfo: the flavor's nodeSelector and tolerations merged into the head
  and worker pod templates (podset.Merge) and spec.suspend=false, in one Update;
- preemption (stopJob) is Suspend() with RestorePodSetsInfo (the templates as they were) in one
  Update, then waiting until IsActive() is false: a RayJob's jobDeploymentStatus is Suspended, a
  RayCluster's state is no longer ready;
- Finished(): a RayJob's jobDeploymentStatus Complete or Failed;
- MultiKueue: the manager cluster's object keeps managedBy=kueue.x-k8s.io/multikueue, runs on a
  worker cluster, and the manager only copies the worker's status into it; the operator of the
  manager cluster must leave the object alone.

What raywarden must do is what KubeRay v1.5.0 does (controllers/ray/rayjob_controller.go,
raycluster_controller.go): a suspended new RayJob goes New -> Initializing -> Suspending ->
Suspended with no RayCluster, jobStatus, jobId or rayClusterName; unsuspended it starts from New;
suspended while running, its cluster and submitter are deleted (so are the pods) and it is
Suspended again (raywarden once the pods are gone, KubeRay once the RayCluster object is); a suspended RayCluster has no pods and state "suspended"; an object managed by
MultiKueue gets no cluster, no finalizer, no status write. KueueOnKubeRay runs the same driver
and checks against KubeRay v1.5.0 itself (skipped with a message when it is not built), so what
they assert is what KubeRay does.
"""

import copy
import time
import unittest

from clusterlib import APIError, corpus_sample, missing_prereqs, wait_for

from kubesim import operators  # noqa: E402  (clusterlib put tests/sim on sys.path)

import compatlib  # noqa: E402
import rjlib  # noqa: E402
from rjlib import NS  # noqa: E402

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MULTIKUEUE = "kueue.x-k8s.io/multikueue"
RC_PATH = "/apis/ray.io/v1/namespaces/%s/rayclusters" % NS
FLAVOR_LABEL = "example.com/flavor"
NODE_SELECTOR = {FLAVOR_LABEL: "on-demand"}
TOLERATION = {"key": "example.com/spot", "operator": "Exists", "effect": "NoSchedule"}


def templates(obj):
    """The pod templates Kueue's PodSets map to: head first, then each worker group (a RayJob's
    in spec.rayClusterSpec)."""
    spec = obj["spec"].get("rayClusterSpec") or obj["spec"]
    return [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec.get("workerGroupSpecs") or []]


class KueueDriver:
    """A Kueue stand-in for one local cluster (see the module doc)."""

    def __init__(self, lc):
        self.lc = lc
        self.saved = {}  # path -> the pod templates before admission (Kueue keeps them in the Workload)

    def create(self, obj, multikueue=False):
        """The webhook's defaulting, then the create; returns the object's path."""
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("labels", {})[QUEUE_LABEL] = "user-queue"
        obj["spec"]["suspend"] = True
        if multikueue:
            obj["spec"]["managedBy"] = MULTIKUEUE
        path = (rjlib.RJ_PATH if obj["kind"] == "RayJob" else RC_PATH)
        self.lc.request("POST", path, obj)
        return path + "/" + obj["metadata"]["name"]

    def update(self, path, mutate):
        """GET, mutate, PUT (Kueue's client.Update), again on a conflict with the operator's writes."""
        def attempt():
            obj = self.lc.get(path)
            mutate(obj)
            try:
                return self.lc.request("PUT", path, obj)
            except APIError as e:
                if e.code == 409:
                    return None
                raise
        return wait_for(attempt, 30, 0.1, "update of %s" % path)

    def admit(self, path):
        """RunWithPodSetsInfo: nodeSelector and tolerations of the assigned flavor, suspend=false."""
        def run(obj):
            self.saved.setdefault(path, copy.deepcopy(templates(obj)))
            for t in templates(obj):
                spec = t["spec"]
                spec["nodeSelector"] = dict(spec.get("nodeSelector") or {}, **NODE_SELECTOR)
                spec["tolerations"] = (spec.get("tolerations") or []) + [TOLERATION]
            obj["spec"]["suspend"] = False
        self.update(path, run)

    def preempt(self, path):
        """stopJob: Suspend() and RestorePodSetsInfo in one Update."""
        def stop(obj):
            for t, old in zip(templates(obj), self.saved.pop(path)):
                t["spec"].pop("nodeSelector", None)
                t["spec"].pop("tolerations", None)
                for k in ("nodeSelector", "tolerations"):
                    if k in old["spec"]:
                        t["spec"][k] = old["spec"][k]
            obj["spec"]["suspend"] = True
        self.update(path, stop)

    def is_active(self, path):
        obj = self.lc.get(path)
        st = obj.get("status") or {}
        if obj["kind"] == "RayJob":
            return st.get("jobDeploymentStatus") != "Suspended"
        return st.get("state") == "ready"

    def wait_inactive(self, path, timeout=120):
        # A RayJob's pods go by garbage collection once its RayCluster is deleted; on a control
        # plane started moments ago kube-controller-manager's garbage collector learns the ray.io
        # CRDs only at its next discovery resync (30 s), so the first preemption can take that long.
        wait_for(lambda: not self.is_active(path), timeout, 0.1, "%s no longer active" % path)


class Kueue(rjlib.RayJobCase):

    @classmethod
    def setUpCluster(cls):
        super().setUpCluster()
        # The flavor's node label, as an administrator sets it for a ResourceFlavor's nodeLabels.
        node = cls.lc.get("/api/v1/nodes")["items"][0]["metadata"]["name"]
        cls.lc.kubectl("label", "node", node, "%s=%s" % (FLAVOR_LABEL, NODE_SELECTOR[FLAVOR_LABEL]))
        cls.kueue = KueueDriver(cls.lc)

    def small(self, name, **spec):
        return rjlib.variant(self.base, name, spec, small=True)

    def operator(self):
        return getattr(self.lc, "operator", "raywarden")

    def assert_admitted_pods(self, cluster):
        pods = self.lc.pods(NS, cluster)
        self.assertTrue(pods)
        for p in pods:
            self.assertEqual(p["spec"].get("nodeSelector"), NODE_SELECTOR, p["metadata"]["name"])
            self.assertIn(TOLERATION, p["spec"].get("tolerations") or [], p["metadata"]["name"])

    def test_1_rayjob(self):
        lc, name = self.lc, "rj-kueue"
        gate = rjlib.Gate(lc, name)
        path = self.kueue.create(self.small(name, entrypoint=gate.entrypoint(), shutdownAfterJobFinishes=True))

        # Created suspended: no cluster, the status KubeRay reports for it.
        st = rjlib.wait_deployment(lc, name, "Suspended", 60)
        self.assertFalse(st.get("jobStatus") or st.get("jobId") or st.get("rayClusterName"), st)
        self.assertEqual(rjlib.rayclusters(lc, name), [])
        self.assertNotIn("CreatedRayCluster", rjlib.reasons(lc, name))
        self.assertFalse(self.kueue.is_active(path))

        # Admission: the job starts on the flavor's nodes.
        t0 = time.monotonic()
        self.kueue.admit(path)
        st = rjlib.wait_status(lc, name, lambda s: s.get("jobStatus") == "RUNNING", 90, "Ray job RUNNING")
        print("kueue: %s: RayJob RUNNING %.2fs after admission" % (self.operator(), time.monotonic() - t0))
        cluster = st["rayClusterName"]
        self.assert_admitted_pods(cluster)

        # Preemption: cluster and pods deleted, Suspended, status reset.
        t0 = time.monotonic()
        self.kueue.preempt(path)
        self.kueue.wait_inactive(path)
        print("kueue: %s: RayJob inactive %.2fs after preemption" % (self.operator(), time.monotonic() - t0))
        st = rjlib.status(lc, name)
        self.assertEqual(st.get("jobDeploymentStatus"), "Suspended", st)
        self.assertFalse(st.get("jobStatus") or st.get("jobId") or st.get("rayClusterName"), st)
        self.assertIsNone(lc.raycluster(NS, cluster))
        if self.operator() == "raywarden":
            # Not active only once the attempt's pods are gone (docs/rayjob.md), so Kueue frees the
            # quota of resources that are free.
            self.assertEqual(lc.pods(NS, cluster, include_deleting=True), [])
        else:
            # KubeRay: once the RayCluster object is gone; its pods go later, by garbage collection.
            wait_for(lambda: not lc.pods(NS, cluster, include_deleting=True), 120, 0.25,
                     "the preempted RayJob's pods gone under KubeRay")
        self.assertIsNone(rjlib.submitter_job(lc, name))
        self.assertNotIn(FLAVOR_LABEL, str(lc.get(path)["spec"]["rayClusterSpec"]))

        # Admitted again, the job runs to the end in a new cluster.
        self.kueue.admit(path)
        st = rjlib.wait_status(lc, name, lambda s: s.get("jobStatus") == "RUNNING", 90, "Ray job RUNNING again")
        self.assertNotEqual(st["rayClusterName"], cluster)
        self.assert_admitted_pods(st["rayClusterName"])
        gate.open()
        st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 90)
        self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus")), ("Complete", "SUCCEEDED"), st)

    def test_2_raycluster(self):
        lc, name = self.lc, "rc-kueue"
        rc = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name, "namespace": NS},
              "spec": copy.deepcopy(self.base["spec"]["rayClusterSpec"])}
        for g in rc["spec"].get("workerGroupSpecs") or []:
            g.update(replicas=1, minReplicas=1)
        path = self.kueue.create(rc)

        def suspended():
            obj = lc.raycluster(NS, name)
            st = (obj or {}).get("status") or {}
            conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
            return st.get("state") == "suspended" and conds.get("RayClusterSuspended") == "True"

        wait_for(suspended, 60, 0.1, "RayCluster created suspended reports suspended")
        self.assertEqual(lc.pods(NS, name, include_deleting=True), [])
        self.assertFalse([e for e in lc.events(NS, name) if e.get("reason") == "CreatedHeadPod"])

        self.kueue.admit(path)
        lc.wait_cluster_ready(NS, name, timeout=90)
        self.assert_admitted_pods(name)
        self.assertEqual(len(lc.pods(NS, name)), 1 + len(rc["spec"].get("workerGroupSpecs") or []))

        self.kueue.preempt(path)
        self.kueue.wait_inactive(path)
        wait_for(suspended, 60, 0.1, "RayCluster suspended after preemption")
        self.assertEqual(lc.pods(NS, name, include_deleting=True), [])

        self.kueue.admit(path)
        lc.wait_cluster_ready(NS, name, timeout=90)
        self.assert_admitted_pods(name)
        lc.delete_cluster(NS, name)
        lc.wait_gone(NS, name)

    def test_3_multikueue(self):
        lc = self.lc
        rj_path = self.kueue.create(self.small("rj-mk", shutdownAfterJobFinishes=True), multikueue=True)
        rc = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "rc-mk", "namespace": NS},
              "spec": copy.deepcopy(self.base["spec"]["rayClusterSpec"])}
        rc_path = self.kueue.create(rc, multikueue=True)
        # MultiKueue admits on the worker cluster and unsuspends the manager's copy too.
        self.kueue.admit(rj_path)
        self.kueue.admit(rc_path)
        # MultiKueue copies the worker cluster's status into the manager's object.
        synced = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING", "rayClusterName": "rj-mk-remote"}
        obj = lc.get(rj_path)
        obj["status"] = synced
        synced = lc.request("PUT", rj_path + "/status", obj)["status"]  # with the CRD's defaults

        # Objects created afterwards being reconciled show the controller has passed these by.
        rjlib.apply_obj(lc, self.small("rj-after-mk"))
        rjlib.wait_status(lc, "rj-after-mk", lambda st: st.get("rayClusterName"), 60, "a later RayJob's cluster")
        later = dict(rc, metadata={"name": "rc-after-mk", "namespace": NS})
        lc.request("POST", RC_PATH, later)
        wait_for(lambda: lc.pods(NS, "rc-after-mk"), 60, 0.1, "a later RayCluster's pods")

        self.assertEqual(rjlib.status(lc, "rj-mk"), synced)
        self.assertEqual(rjlib.rayclusters(lc, "rj-mk"), [])
        self.assertIsNone(rjlib.submitter_job(lc, "rj-mk"))
        self.assertNotIn("ray.io/rayjob-finalizer", lc.get(rj_path)["metadata"].get("finalizers") or [])
        mk = lc.get(rc_path)
        self.assertFalse(mk.get("status"), mk.get("status"))
        self.assertEqual(lc.pods(NS, "rc-mk", include_deleting=True), [])
        self.assertEqual(lc.services(NS, "ray.io/cluster=rc-mk"), [])
        for p in (rj_path, rc_path, RC_PATH + "/rc-after-mk"):
            lc.delete(p)



class KueueOnKubeRay(Kueue):
    """The same driver and checks with KubeRay v1.5.0 as the operator (compatlib.OperatorCluster)."""
    RBAC_REFUSALS_EXPECTED = True  # nothing to check: no raywarden-controller runs here

    @classmethod
    def setUpClass(cls):
        why = operators.skip_reason() or missing_prereqs()
        cls.sample = corpus_sample(cls.SAMPLE)
        if not why and not cls.sample:
            why = "shared/corpus absent: %s needs %s" % (cls.__name__, cls.SAMPLE)
        if why:
            raise unittest.SkipTest(why)
        cls.failed = False
        cls.lc = compatlib.OperatorCluster.start("kuberay")
        try:
            cls.setUpCluster()
        except BaseException:
            cls.failed = True
            cls.tearDownClass()
            raise


if __name__ == "__main__":
    unittest.main()

"""End to end: --batch-scheduler under KubeRay v1.5.0 and under raywarden, on the same samples.

Two local clusters (real control plane by default), one per operator, with the schedulers' CRDs
installed: Volcano's PodGroup and Queue (tests/sim/crds/volcano-scheduling.yaml, written from
Volcano's Go types) and scheduler-plugins' real PodGroup CRD (from its Go module). KubeRay gets the
podgroups rules its Helm chart adds for a batch scheduler, raywarden the optional
manifests/batch-scheduler RBAC. For each scheduler both operators are restarted with
--batch-scheduler=<name> and KubeRay's samples for it are applied unchanged to both at once:

- ray-cluster.volcano-scheduler.yaml, ray-cluster.volcano-scheduler-queue.yaml and
  ray-job.volcano-scheduler-queue.yaml (volcano),
- ray-cluster.yunikorn-scheduler.yaml and ray-job.yunikorn-scheduler.yaml (yunikorn),
- ray-cluster.scheduler-plugins.yaml (scheduler-plugins),
- the RayCluster of ray-cluster.kai-scheduler.yaml (kai-scheduler; its KAI Queues need KAI's CRDs).

Once each operator made its PodGroups and pods, the PodGroups and the scheduler's part of the
pods, the submitter Job's pod template and a RayJob's RayCluster (labels and annotations of the
schedulers' keys, spec.schedulerName) are normalised (compatlib) and compared. Every difference
must be listed in docs/kuberay-compatibility.md's ```compat table (sample `<file> [<scheduler>]`),
like test_kuberay_compat. No Volcano scheduler runs, so the test binds the pods that name a batch
scheduler to the node itself (the scheduler's one job the RayJob needs); the RayJob then runs to
completion and its PodGroup must be gone under raywarden (KubeRay v1.5.0 keeps it).

RW_BATCH_DUMP=<dir> writes each sample's two normalised snapshots there (JSON).

Skipped with a message when KubeRay (binary or Go source) or raywarden is not built.
"""

import json
import os
import sys
import threading
import time
import unittest

from clusterlib import SRC, APIError, missing_prereqs, wait_for

from kubesim import operators  # noqa: E402  (clusterlib put tests/sim on sys.path)

import compatlib  # noqa: E402

DOC = os.path.join(SRC, "docs", "kuberay-compatibility.md")
VOLCANO_CRDS = os.path.join(SRC, "tests", "sim", "crds", "volcano-scheduling.yaml")
RW_RBAC = os.path.join(SRC, "manifests", "batch-scheduler", "rbac.yaml")
DUMP = os.environ.get("RW_BATCH_DUMP")  # a directory: each sample's two snapshots written there
SP_CRD_REL = os.path.join("config", "crd", "bases", "scheduling.x-k8s.io_podgroups.yaml")

# The podgroups rules KubeRay's chart adds when a batch scheduler is set
# (helm-chart/kuberay-operator/templates/_helpers.tpl, v1.5.0).
KUBERAY_RBAC = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: kuberay-batch-scheduler
rules:
- apiGroups: ["scheduling.volcano.sh"]
  resources: ["podgroups"]
  verbs: ["create", "delete", "get", "list", "update", "watch"]
- apiGroups: ["scheduling.x-k8s.io"]
  resources: ["podgroups"]
  verbs: ["create", "get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kuberay-batch-scheduler
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: kuberay-batch-scheduler
subjects:
- kind: ServiceAccount
  name: kuberay-operator
  namespace: %s
"""

PODGROUPS = (("PodGroup", "/apis/scheduling.volcano.sh/v1beta1/namespaces/%s/podgroups"),
             ("PodGroup.x-k8s", "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/%s/podgroups"))
# The schedulers' keys: what the plugins write on children (other labels and annotations are
# test_kuberay_compat's subject).
KEY_PREFIXES = ("volcano.sh/", "scheduling.k8s.io/", "yunikorn.apache.org/", "scheduling.x-k8s.io/",
                "kai.scheduler/")
KEYS = ("applicationId", "queue", "ray.io/priority-class-name")
SCHEDULERS = ("volcano", "yunikorn", "scheduler-plugins-scheduler", "kai-scheduler")

# (scheduler flag, sample file, only these kinds of the sample, PodGroups expected, pods expected)
CASES = (
    ("volcano", "ray-cluster.volcano-scheduler.yaml", None, 1, 1),
    ("volcano", "ray-cluster.volcano-scheduler-queue.yaml", None, 1, 3),
    ("volcano", "ray-job.volcano-scheduler-queue.yaml", None, 1, 3),
    ("yunikorn", "ray-cluster.yunikorn-scheduler.yaml", None, 0, 3),
    ("yunikorn", "ray-job.yunikorn-scheduler.yaml", None, 0, 2),
    ("scheduler-plugins", "ray-cluster.scheduler-plugins.yaml", None, 1, 3),
    ("kai-scheduler", "ray-cluster.kai-scheduler.yaml", ("RayCluster",), 0, 3),
)


def sched_keys(d):
    return {k: v for k, v in (d or {}).items() if k in KEYS or k.startswith(KEY_PREFIXES)}


def scheduler_view(kind, o):
    """The part of a child the batch scheduler writes."""
    md = o.get("metadata") or {}
    out = {"kind": kind, "metadata": {k: md[k] for k in ("name", "generateName") if k in md}}
    for f in ("labels", "annotations"):
        v = sched_keys(md.get(f))
        if v:
            out["metadata"][f] = v
    if kind == "Pod":
        out["spec"] = {"schedulerName": (o.get("spec") or {}).get("schedulerName")}
    elif kind == "Job":
        t = (o.get("spec") or {}).get("template") or {}
        out["template"] = scheduler_view("Pod", t)
    return out


class Binder(threading.Thread):
    """Binds every pending pod that names a batch scheduler to the cluster's node."""

    def __init__(self, lc):
        super().__init__(daemon=True)
        # A client of its own: LocalCluster's connection is not shared between threads.
        self.lc, self.stop = compatlib.OperatorCluster(lc.state), threading.Event()

    def run(self):
        while not self.stop.wait(0.3):
            try:
                node = self.lc.list("/api/v1/nodes")[0]["metadata"]["name"]
                for p in self.lc.list("/api/v1/pods"):
                    sp = p.get("spec") or {}
                    if sp.get("schedulerName") in SCHEDULERS and not sp.get("nodeName") and \
                            not p["metadata"].get("deletionTimestamp"):
                        md = p["metadata"]
                        self.lc.request("POST", "/api/v1/namespaces/%s/pods/%s/binding" % (md["namespace"], md["name"]),
                                        {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": md["name"]},
                                         "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
            except Exception:  # noqa: BLE001 -- a pod gone or bound meanwhile: next round
                pass


def sample_text(path, kinds):
    with open(path) as f:
        text = f.read()
    if not kinds:
        return text
    docs = [d for d in text.split("\n---") if any("kind: %s" % k in d for k in kinds)]
    return "\n---\n".join(docs)


class BatchSchedulers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        src = operators.src_dir()
        reason = operators.skip_reason() or missing_prereqs() or \
            (None if src and os.path.isdir(os.path.join(src, "config", "samples")) else
             "KubeRay's Go source (samples) is missing")
        sp = os.path.join(os.path.expanduser("~"), "go", "pkg", "mod", "sigs.k8s.io", "scheduler-plugins@v0.31.8",
                          SP_CRD_REL)
        if not reason and not os.path.isfile(sp):
            reason = "scheduler-plugins' PodGroup CRD is missing (%s)" % sp
        if reason:
            raise unittest.SkipTest(reason)
        cls.samples = os.path.join(src, "config", "samples")
        cls.clusters, cls.binders = [], []
        cls.failed = True
        try:
            for op in ("kuberay", "raywarden"):
                cls.clusters.append(compatlib.OperatorCluster.start(op))
            for lc in cls.clusters:
                lc.kubectl("apply", "--server-side", "-f", VOLCANO_CRDS, "-f", sp)
                if lc.operator == "kuberay":
                    lc.apply(KUBERAY_RBAC % operators.install_namespace())
                else:
                    lc.kubectl("apply", "-f", RW_RBAC)
                for plural in ("podgroups.scheduling.volcano.sh", "queues.scheduling.volcano.sh",
                               "podgroups.scheduling.x-k8s.io"):
                    lc.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/" + plural)
                # Established comes before the storage serves (429 "storage is (re)initializing").
                for _kind, coll in PODGROUPS:
                    wait_for(lambda: lc.get(coll % "default") is not None, 60, 0.25,
                             "%s serves %s" % (lc.operator, coll % "default"), retry=APIError)
                b = Binder(lc)
                b.start()
                cls.binders.append(b)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for b in getattr(cls, "binders", []):
            b.stop.set()
        for lc in getattr(cls, "clusters", []):
            lc.stop(keep_logs_on_failure=getattr(cls, "failed", False) or bool(os.environ.get("RW_KEEP_LOGS")))

    def restart(self, scheduler):
        if getattr(type(self), "scheduler", None) == scheduler:
            return
        type(self).scheduler = scheduler
        for lc in self.clusters:
            if lc.operator == "kuberay":
                operators.stop(lc.state)
                operators.start(lc.cluster, extra_args=["--batch-scheduler=" + scheduler], timeout=60)
            else:
                lc.restart_controller(extra_args=["--batch-scheduler=" + scheduler])

    def collect(self, lc, ns):
        objs = {}
        for kind, coll in PODGROUPS:
            try:
                objs[kind] = lc.list(coll % ns)
            except Exception:  # noqa: BLE001 -- the CRD of the other scheduler
                objs[kind] = []
        objs["Pod"] = [scheduler_view("Pod", p) for p in lc.list("/api/v1/namespaces/%s/pods" % ns)
                       if (p["metadata"].get("labels") or {}).get("ray.io/node-type") in ("head", "worker")]
        objs["Job"] = [scheduler_view("Job", j) for j in lc.list("/apis/batch/v1/namespaces/%s/jobs" % ns)]
        objs["RayCluster"] = [scheduler_view("RayCluster", c)
                              for c in lc.list("/apis/ray.io/v1/namespaces/%s/rayclusters" % ns)
                              if (c["metadata"].get("labels") or {}).get("ray.io/originated-from-crd") == "RayJob"]
        for kind, items in objs.items():
            for o in items:
                o.setdefault("kind", kind.split(".")[0])
                o.pop("status", None) if kind == "PodGroup.x-k8s" else None
        return objs

    def made(self, lc, ns, n_pg, n_pods, job, seen):
        """What lc made in ns once it is all there, else None. A PodGroup seen once is kept in
        seen: raywarden deletes a RayJob's when the RayJob completes, which can come before the
        other operator made everything."""
        objs = self.collect(lc, ns)
        for kind, _coll in PODGROUPS:
            if objs[kind]:
                seen[kind] = objs[kind]
            objs[kind] = seen.get(kind, [])
        pgs = len(objs["PodGroup"]) + len(objs["PodGroup.x-k8s"])
        if pgs != n_pg or (n_pods is not None and len(objs["Pod"]) != n_pods) or (n_pods is None and not objs["Pod"]):
            return None
        if job and not objs["Job"]:
            return None
        return objs

    def test_samples(self):
        type(self).failed = True
        allowed = compatlib.Allowed.from_doc(DOC)
        unlisted, notes = [], []
        t0 = time.monotonic()
        for i, (sched, sample, kinds, n_pg, n_pods) in enumerate(CASES):
            self.restart(sched)
            path = os.path.join(self.samples, sample)
            label = "%s [%s]" % (sample, sched)
            text = sample_text(path, kinds)
            crs = [(k, n) for k, n in compatlib.ray_resources(path) if not kinds or k in kinds]
            parents = [n for _k, n in crs]
            job = any(k == "RayJob" for k, _n in crs)
            ns = "batch-%d" % i
            t = time.monotonic()
            snaps = {}
            for lc in self.clusters:
                lc.kubectl("create", "namespace", ns)
                lc.apply(text, ns)
            seen = {lc.operator: {} for lc in self.clusters}

            def all_made():
                for lc in self.clusters:
                    if lc.operator not in snaps:
                        objs = self.made(lc, ns, n_pg, n_pods, job, seen[lc.operator])
                        if objs:
                            snaps[lc.operator] = compatlib.snapshot(objs, parents, set())
                return len(snaps) == len(self.clusters)

            wait_for(all_made, 90, 0.3, "%s: both operators make their PodGroups and pods (made: %s)"
                     % (label, ", ".join(sorted(snaps)) or "none"))
            if DUMP:
                with open(os.path.join(DUMP, "%s.%s.json" % (sample, sched)), "w") as f:
                    json.dump(snaps, f, indent=1, sort_keys=True)
            diffs = compatlib.diff(snaps["kuberay"], snaps["raywarden"])
            mine = [d for d in diffs if not allowed.match(label, d)]
            unlisted += [d.row(label) for d in mine]
            if job and sched == "volcano":
                notes += self.check_job_completion(ns, crs[0][1])
            compatlib.log("%s: %d object(s) under KubeRay, %d under raywarden, %d difference(s), %d not listed "
                          "(%.1fs)" % (label, len(snaps["kuberay"]), len(snaps["raywarden"]), len(diffs), len(mine),
                                       time.monotonic() - t))
            for lc in self.clusters:
                lc.kubectl("delete", "namespace", ns, "--wait=false")
        compatlib.log("all batch-scheduler samples in %.1fs" % (time.monotonic() - t0))
        for n in notes:
            compatlib.log("note: " + n)
        if unlisted:
            sys.stderr.write("\nDifferences not listed in %s (add each with its reason, or fix raywarden):\n%s\n"
                             % (DOC, "\n".join(unlisted)))
        type(self).failed = bool(unlisted)
        self.assertEqual([], unlisted)

    def test_podgroup_before_pods(self):
        """A PodGroup that cannot be built (a network-topology tier that is not a number) ends the
        pass before any pod is made, under both operators (KubeRay's createPodGroup error)."""
        self.restart("volcano")
        with open(os.path.join(self.samples, "ray-cluster.volcano-scheduler.yaml")) as f:
            text = f.read().replace("    ray.io/scheduler-name: volcano\n",
                                    "    ray.io/scheduler-name: volcano\n"
                                    "    volcano.sh/network-topology-mode: hard\n"
                                    "    volcano.sh/network-topology-highest-tier-allowed: two\n")
        self.assertIn("highest-tier-allowed: two", text)
        ns = "batch-bad-tier"
        why = "failed to convert volcano.sh/network-topology-highest-tier-allowed label to int"
        for lc in self.clusters:
            lc.kubectl("create", "namespace", ns)
            lc.apply(text, ns)
        for lc in self.clusters:
            wait_for(lambda: why in lc.operator_log(), 60, 0.25, "%s logs %r" % (lc.operator, why))
            self.assertEqual([], [p["metadata"]["name"] for p in lc.list("/api/v1/namespaces/%s/pods" % ns)],
                             lc.operator)
            self.assertEqual([], lc.list(PODGROUPS[0][1] % ns), lc.operator)
            lc.kubectl("delete", "namespace", ns, "--wait=false")

    def check_job_completion(self, ns, name):
        """The RayJob completes under both; raywarden removes its PodGroup then (KubeRay v1.5.0 keeps it)."""
        notes = []
        pg = "/apis/scheduling.volcano.sh/v1beta1/namespaces/%s/podgroups/ray-%s-pg" % (ns, name)
        for lc in self.clusters:
            wait_for(lambda: compatlib.cr_settled(lc, "RayJob", ns, name), 180, 0.5,
                     "RayJob %s/%s finishes under %s" % (ns, name, lc.operator))
            st = lc.get(compatlib.cr_path("RayJob", ns, name))["status"]
            self.assertEqual(st.get("jobDeploymentStatus"), "Complete", "%s: %s" % (lc.operator, json.dumps(st)))
            if lc.operator == "raywarden":
                wait_for(lambda: lc.get_or_none(pg) is None, 30, 0.25,
                         "raywarden deletes PodGroup ray-%s-pg once the RayJob is Complete" % name)
                ev = [e for e in lc.events(ns, name) if e.get("reason") == "BatchSchedulerCleanedUp"]
                self.assertTrue(ev, "no BatchSchedulerCleanedUp Event on RayJob %s" % name)
            else:
                notes.append("KubeRay v1.5.0 kept PodGroup ray-%s-pg after Complete: %s"
                             % (name, lc.get_or_none(pg) is not None))
        return notes


if __name__ == "__main__":
    unittest.main()

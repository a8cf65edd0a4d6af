"""End to end: the head Ingress and OpenShift Route of `enableIngress`, raywarden beside KubeRay
v1.5.0 on the same work (two local clusters, compatlib.OperatorCluster).

KubeRay's ingress samples (config/samples/ray-cluster.separate-ingress.yaml,
ray-cluster-alb-ingress.yaml, ingress-rayclient-tls.yaml) each make an Ingress of their own by
hand. The cases below turn each into the RayCluster that asks the operator for it instead
(`headGroupSpec.enableIngress: true`, the sample Ingress's class and annotations on the
RayCluster, as KubeRay's BuildIngressForHeadService takes them), plus the separate-ingress sample
unchanged but with enableIngress (its hand-made Ingress has the operator's name and must be left
alone) and shared/corpus's ray-service.sample.yaml with enableIngress in rayClusterConfig (the
RayService's cluster gets its own Ingress). Each case runs in a namespace of its own on both
clusters at once; once every RayCluster has its head Service and its Ingress, the Ingresses are
normalised and compared (compatlib.snapshot and diff), and
a difference must be listed in docs/kuberay-compatibility.md's ```compat table.

Then the cases that KubeRay's code decides:
- a spec change (annotations, a worker group scaled up): the Ingress is not updated; deleted, it is
  made again (under raywarden at once, from the cluster as it is now);
- the RayCluster deleted: garbage collection removes its Ingress (ownerReference);
- OpenShift: with the Route CRD (tests/sim/crds) installed and both operators restarted, a
  Route instead of an Ingress, compared likewise; with USE_INGRESS_ON_OPENSHIFT=true an
  Ingress again and no Route.

Skipped with a message when KubeRay's binary or source is missing or raywarden is not built.
"""

import copy
import json
import os
import sys
import time
import unittest

from clusterlib import CORPUS, SIM_DIR, SRC, missing_prereqs, wait_for

from kubesim import operators  # noqa: E402  (clusterlib put tests/sim on sys.path)

import compatlib  # noqa: E402
import rjlib  # noqa: E402

DOC = os.path.join(SRC, "docs", "kuberay-compatibility.md")
ROUTE_CRD = os.path.join(SIM_DIR, "crds", "route.openshift.io_routes.yaml")
ING = "/apis/networking.k8s.io/v1/namespaces/%s/ingresses"
ROUTES = "/apis/route.openshift.io/v1/namespaces/%s/routes"
RC = "/apis/ray.io/v1/namespaces/%s/rayclusters"
SAMPLES = ("ray-cluster.separate-ingress.yaml", "ray-cluster-alb-ingress.yaml", "ingress-rayclient-tls.yaml")


def log(msg):
    compatlib.log("ingress: " + msg)


def samples_dir():
    try:
        return os.path.join(operators.src_dir(), "config", "samples")
    except Exception:  # noqa: BLE001 -- upstream.Missing and the like: reported by skip_reason
        return None


def sample_ingress_meta(ingress):
    """The class and annotations a hand-made sample Ingress carries, as RayCluster annotations
    (KubeRay reads the class from kubernetes.io/ingress.class)."""
    annos = dict(ingress["metadata"].get("annotations") or {})
    cls = ingress["spec"].get("ingressClassName")
    if cls:
        annos["kubernetes.io/ingress.class"] = cls
    return annos


def with_ingress(rc, name, annotations):
    rc = copy.deepcopy(rc)
    rc["metadata"] = {"name": name, "annotations": annotations}
    rc["spec"]["headGroupSpec"]["enableIngress"] = True
    return rc


def build_cases(lc):
    """[(case name, [objects], [parents whose <parent>-<5 random> names are normalised])]."""
    d = samples_dir()
    sep = rjlib.sample_objects(lc, os.path.join(d, SAMPLES[0]))
    rc = [o for o in sep if o["kind"] == "RayCluster"][0]
    own = [o for o in sep if o["kind"] == "Ingress"][0]
    alb = rjlib.sample_objects(lc, os.path.join(d, SAMPLES[1]))[0]
    tls = rjlib.sample_objects(lc, os.path.join(d, SAMPLES[2]))[0]
    # A worker group with no replicas, scaled up in the spec-change check.
    worker = {"groupName": "small-group", "replicas": 0, "minReplicas": 0, "maxReplicas": 2, "rayStartParams": {},
              "template": copy.deepcopy(rc["spec"]["headGroupSpec"]["template"])}
    worker["template"]["spec"]["containers"][0]["name"] = "ray-worker"
    worker["template"]["spec"]["containers"][0].pop("ports", None)
    nginx = with_ingress(rc, "raycluster-ingress", sample_ingress_meta(own))
    nginx["spec"]["workerGroupSpecs"] = [worker]
    # ALB: the backend of the sample is ray-cluster-kuberay's head Service.
    albrc = with_ingress(rc, "ray-cluster-kuberay", sample_ingress_meta(alb))
    # Ray client over TLS: its cluster is raycluster-tls, whose head lists no dashboard port (8265).
    tlsrc = with_ingress(rc, "raycluster-tls", sample_ingress_meta(tls))
    tlsrc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "client", "containerPort": 10001}]
    unchanged = copy.deepcopy(rc)
    unchanged["spec"]["headGroupSpec"]["enableIngress"] = True
    cases = [("separate-ingress", [nginx], []), ("alb-ingress", [albrc], []), ("rayclient-tls", [tlsrc], []),
             ("separate-ingress-own", [own, unchanged], [])]  # the hand-made Ingress first
    rs_path = os.path.join(CORPUS, "ray-service.sample.yaml")
    if os.path.exists(rs_path):
        rs = [o for o in rjlib.sample_objects(lc, rs_path) if o["kind"] == "RayService"][0]
        rs["spec"]["rayClusterConfig"]["headGroupSpec"]["enableIngress"] = True
        rs["metadata"].setdefault("annotations", {})["kubernetes.io/ingress.class"] = "nginx"
        cases.append(("rayservice", [rs], [rs["metadata"]["name"]]))
    return cases


def made(lc, ns, want_clusters, want_objects, routes):
    """Every RayCluster of ns (at least want_clusters of them) has its head Service and the
    operator made want_objects Ingresses or Routes (labelled ray.io/cluster). raywarden's
    Ingress step may come after the head Service on a cluster's first pass (while the Route
    probe or the Ingress informer's first list is pending), KubeRay's always before it."""
    rcs = lc.list(RC % ns)
    if len(rcs) < want_clusters:
        return False
    ours = [o for items in net_objects(lc, ns, routes).values() for o in items
            if "ray.io/cluster" in (o["metadata"].get("labels") or {})]
    if len(ours) < want_objects:
        return False
    for rc in rcs:
        sel = "ray.io/cluster=%s,ray.io/node-type=head" % rc["metadata"]["name"]
        if not lc.get("/api/v1/namespaces/%s/services" % ns, labelSelector=sel)["items"]:
            return False
    return True


def owner_kind(flat):
    """The kind of the owner in a flattened object (ownerReferences are keyed by name)."""
    kinds = [v for k, v in flat.items() if k.startswith("/metadata/ownerReferences[") and k.endswith("]/kind")]
    return kinds[0] if len(kinds) == 1 else (kinds or None)


def net_objects(lc, ns, routes):
    out = {"Ingress": lc.list(ING % ns)}
    if routes:
        out["Route"] = lc.list(ROUTES % ns)
    for kind, items in out.items():
        for o in items:
            o.setdefault("kind", kind)
    return out


class Ingress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = operators.skip_reason() or missing_prereqs()
        if not reason and not all(os.path.exists(os.path.join(samples_dir() or "", s)) for s in SAMPLES):
            reason = "KubeRay's ingress samples are missing from %s" % samples_dir()
        if reason:
            raise unittest.SkipTest(reason)
        cls.clusters = []
        cls.failed = True
        t0 = time.monotonic()
        try:
            for op in ("kuberay", "raywarden"):
                cls.clusters.append(compatlib.OperatorCluster.start(op))
        except Exception:
            cls.tearDownClass()
            raise
        log("two clusters up in %.1fs" % (time.monotonic() - t0))
        cls.kr, cls.rw = cls.clusters
        cls.allowed = compatlib.Allowed.from_doc(DOC)
        cls.cases = build_cases(cls.rw)
        cls.nsn = 0

    @classmethod
    def tearDownClass(cls):
        for lc in getattr(cls, "clusters", []):
            lc.stop(keep_logs_on_failure=getattr(cls, "failed", False) or bool(os.environ.get("RW_KEEP_LOGS")))

    def run_case(self, case, routes=False):
        """Create the case in a new namespace on both clusters; returns (ns, {operator: snapshot},
        [unlisted differences])."""
        name, objs, parents = case
        type(self).nsn += 1
        ns = "ing-%d" % self.nsn
        nclusters = sum(1 for o in objs if o["kind"] in ("RayCluster", "RayService"))
        objs = copy.deepcopy(objs)
        for o in objs:
            o["metadata"].pop("namespace", None)
        for lc in self.clusters:
            lc.kubectl("create", "namespace", ns)
            lc.kubectl("create", "-n", ns, "-f", "-", input="\n".join(json.dumps(o) for o in objs))
        # A hand-made Ingress of the operator's name stands for the one it would make.
        want = nclusters - sum(1 for o in objs if o["kind"] == "Ingress")
        for lc in self.clusters:
            wait_for(lambda: made(lc, ns, nclusters, want, routes), 90, 0.25,
                     "%s: head Services and Ingresses under %s" % (name, lc.operator))
        snaps = {lc.operator: compatlib.snapshot(net_objects(lc, ns, routes), parents, set())
                 for lc in self.clusters}
        diffs = compatlib.diff(snaps["kuberay"], snaps["raywarden"])
        unlisted = [d.row("ingress:" + name) for d in diffs if not self.allowed.match("ingress:" + name, d)]
        log("%s: %s under KubeRay, %s under raywarden, %d difference(s), %d not listed"
            % (name, sorted(snaps["kuberay"]), sorted(snaps["raywarden"]), len(diffs), len(unlisted)))
        return ns, snaps, unlisted

    def report(self, unlisted):
        if unlisted:
            sys.stderr.write("\nDifferences not listed in %s (add each with its reason, or fix raywarden):\n%s\n"
                             % (DOC, "\n".join(unlisted)))
        self.assertEqual([], unlisted)

    def restart_operators(self, env):
        """Both operators restarted with env added (they decide Route or Ingress at start)."""
        for lc in self.clusters:
            if lc.operator == "kuberay":
                operators.stop(lc.state)
                operators.start(lc.cluster, env_extra=env, timeout=120.0)
                continue
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)  # start_controller passes the test's environment on
            try:
                lc.restart_controller()
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    def test_ingress_and_route(self):
        t0 = time.monotonic()
        unlisted = []
        results = {}
        for i, case in enumerate(self.cases):
            ns, snaps, mine = self.run_case(case)
            results[case[0]] = ns, snaps
            unlisted += mine
            if i:  # only the first case is needed below: spare the two cores the others' pods
                for lc in self.clusters:
                    # The Ray objects, not the namespace: while the namespace controller deletes
                    # pods before their RayCluster, the operator recreates them and the API
                    # server answers 403 (cause NamespaceTerminating), which would read as an
                    # RBAC refusal below.
                    lc.kubectl("delete", "rayservices,rayclusters", "--all", "-n", ns, "--wait=false")
        self.report(unlisted)

        # What each case made: one Ingress per cluster, owned by it; the hand-made one left alone.
        for name, (ns, snaps) in results.items():
            rw = snaps["raywarden"]
            if name == "separate-ingress-own":
                self.assertEqual(["Ingress:raycluster-ingress-head-ingress"], sorted(rw))
                self.assertIsNone(owner_kind(rw["Ingress:raycluster-ingress-head-ingress"]))
                continue
            self.assertEqual(1, len(rw), (name, sorted(rw)))
            flat = list(rw.values())[0]
            self.assertEqual("RayCluster", owner_kind(flat), name)
            self.assertEqual("Exact", flat.get("/spec/rules[0]/http/paths[0]/pathType"), name)
        ing = results["separate-ingress"][1]["raywarden"]["Ingress:raycluster-ingress-head-ingress"]
        self.assertEqual("nginx", ing["/spec/ingressClassName"])
        self.assertEqual(8265, ing["/spec/rules[0]/http/paths[0]/backend/service/port/number"])

        # A spec change is not applied to an existing Ingress (KubeRay creates it once).
        ns = results["separate-ingress"][0]
        before = {lc.operator: lc.get(ING % ns + "/raycluster-ingress-head-ingress") for lc in self.clusters}
        for lc in self.clusters:
            lc.patch(RC % ns + "/raycluster-ingress", {
                "metadata": {"annotations": {"kubernetes.io/ingress.class": "changed", "added": "x"}},
                "spec": {"workerGroupSpecs": [dict(self.cases[0][1][0]["spec"]["workerGroupSpecs"][0], replicas=1)]}})
        for lc in self.clusters:
            # The worker is made by the pass that read the new spec, after its Ingress step.
            wait_for(lambda: lc.pods(ns, "raycluster-ingress", "worker"), 90, 0.25,
                     "worker pod under %s after the spec change" % lc.operator)
            after = lc.get(ING % ns + "/raycluster-ingress-head-ingress")
            self.assertEqual(before[lc.operator]["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
                             "%s updated the Ingress" % lc.operator)

        # A deleted Ingress comes back with the cluster's next pass (raywarden's starts at the
        # Ingress's delete event; KubeRay's at its next reconcile, up to 300 s later).
        self.rw.delete(ING % ns + "/raycluster-ingress-head-ingress")
        back = wait_for(lambda: self.rw.get_or_none(ING % ns + "/raycluster-ingress-head-ingress"), 60, 0.25,
                        "the deleted Ingress made again under raywarden")
        self.assertNotEqual(before["raywarden"]["metadata"]["uid"], back["metadata"]["uid"])
        self.assertEqual("changed", back["spec"].get("ingressClassName"))  # from the cluster as it is now

        # Garbage collection removes the Ingress with its RayCluster.
        for lc in self.clusters:
            lc.delete(RC % ns + "/raycluster-ingress")
        for lc in self.clusters:
            wait_for(lambda: not lc.list(ING % ns), 90, 0.25, "Ingress of %s garbage-collected under %s"
                     % (ns, lc.operator))
        log("Ingress cases in %.1fs" % (time.monotonic() - t0))

        # OpenShift: the Route API served, both operators restarted.
        t1 = time.monotonic()
        for lc in self.clusters:
            lc.kubectl("create", "-f", ROUTE_CRD)
            lc.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                       "crd/routes.route.openshift.io", timeout=90)
        self.restart_operators({})
        ns, snaps, unlisted = self.run_case(self.cases[0], routes=True)
        self.report(unlisted)
        rw = snaps["raywarden"]
        self.assertEqual(["Route:raycluster-ingress-head-route"], sorted(rw))
        route = rw["Route:raycluster-ingress-head-route"]
        self.assertEqual("raycluster-ingress-head-svc", route["/spec/to/name"])
        self.assertEqual(8265, route["/spec/port/targetPort"])
        self.assertEqual("RayCluster", owner_kind(route))

        # USE_INGRESS_ON_OPENSHIFT=true: an Ingress on OpenShift too.
        self.restart_operators({"USE_INGRESS_ON_OPENSHIFT": "true"})
        ns, snaps, unlisted = self.run_case(self.cases[1], routes=True)
        self.report(unlisted)
        self.assertEqual(["Ingress:ray-cluster-kuberay-head-ingress"], sorted(snaps["raywarden"]))
        log("Route cases in %.1fs; whole test %.1fs" % (time.monotonic() - t1, time.monotonic() - t0))
        self.assertEqual([], self.rw.rbac_refusals())
        type(self).failed = False


if __name__ == "__main__":
    unittest.main()

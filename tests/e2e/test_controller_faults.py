"""Fault tests of raywarden-controller's RayCluster reconciler against the API server
simulator with the fake kubelet (no Ray processes; tests/sim/kubesim/kubelet_fake.py).

1. The controller is SIGKILLed at random moments while 50 small RayClusters are applied,
   scaled, deleted and re-created (same names, new UIDs), 10 rounds. After each round
   every cluster converges to exactly its desired pods: one head, each group's replicas,
   every pod owned by its cluster's current UID, no pod or service of a cluster that is
   gone, and the pod set stays stable afterwards (no churn).
2. 5% of all API calls fail (409, 429 and 500 in equal parts, /_sim/faults) and every
   watch is dropped every second while 50 clusters are applied and changed three times; every
   third drop follows a compaction (/_sim/compact), so the informers' re-watches get the watch
   cache's ERROR 410 Expired and must list again: all converge, and stay converged once the
   faults stop.

3. A head pod the API server refuses: no worker pod is created, and the repeated Warnings
   end up on one aggregate Event; a repeated groupName and a negative replicas are refused
   with a status reason and a Warning Event, and nothing is created for them.

The random seed is printed; RW_FAULTS_SEED=<n> repeats a run. RW_FAULTS_ROUNDS overrides
the number of rounds (10).
"""

import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ctlsim  # noqa: E402

N_CLUSTERS = 50
ROUNDS = int(os.environ.get("RW_FAULTS_ROUNDS", "10"))
CONVERGE_S = 90.0


def have_prereqs():
    if not os.path.exists(ctlsim.controller_bin()):
        return "raywarden-controller not built"
    if not os.path.exists(os.path.join(ctlsim.SRC, "controller", "raycluster", "raycluster.c")):
        return "the RayCluster reconciler (controller/raycluster/raycluster.c) is not in this tree"
    if not shutil.which("kubectl"):
        return "kubectl not installed"
    return None


class ControllerFaults(unittest.TestCase):
    def setUp(self):
        why = have_prereqs()
        if why:
            self.skipTest(why)
        self.seed = int(os.environ.get("RW_FAULTS_SEED") or random.randrange(1 << 30))
        self.rng = random.Random(self.seed)
        print("\n%s: seed %d (RW_FAULTS_SEED=%d repeats it)" % (self.id(), self.seed, self.seed), flush=True)
        self.tmp = tempfile.mkdtemp(prefix="rw-ctl-faults-")
        self.w = ctlsim.World(self.tmp)
        self.addCleanup(self.cleanup)

    def cleanup(self):
        self.w.stop()
        if self._outcome_ok():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("logs kept in %s" % self.tmp, flush=True)

    def _outcome_ok(self):
        res = getattr(self, "_outcome", None)
        errs = getattr(getattr(res, "result", None), "errors", []) + getattr(getattr(res, "result", None),
                                                                              "failures", [])
        return not any(t is self for t, _ in errs)

    # -- helpers -------------------------------------------------------------------------

    def services_problems(self, expected):
        out = []
        svcs = self.w.call("GET", "api/v1/services", query={"labelSelector": "ray.io/cluster"}).get("items") or []
        names = {}
        for s in svcs:
            md = s["metadata"]
            if md.get("deletionTimestamp"):
                continue
            cl = (md.get("labels") or {}).get("ray.io/cluster")
            if cl not in expected:
                out.append("orphan service %s" % md["name"])
            names.setdefault(cl, []).append(md["name"])
        for cl in expected:
            if "%s-head-svc" % cl not in names.get(cl, []):
                out.append("%s: no head service (%s)" % (cl, names.get(cl)))
        return out

    def converge(self, expected, what, ctl):
        try:
            took = self.w.wait_converged(expected, CONVERGE_S)
        except AssertionError as e:
            self.fail("%s: %s\ncontroller log tail:\n%s" % (what, e, ctl.output()[-3000:]))
        ctlsim.wait_for(lambda: not self.services_problems(expected), 30,
                        what="%s: services (%s)" % (what, self.services_problems(expected)))
        # Stable: the same pods a moment later (no delete/re-create loop, no late duplicate).
        before = {p["metadata"]["uid"] for p in self.w.pods()}
        time.sleep(1.5)
        after = {p["metadata"]["uid"] for p in self.w.pods()}
        self.assertEqual(before, after, "%s: pods changed after convergence" % what)
        self.assertEqual(self.w.problems(expected), [], what)
        return took

    def mutate(self, expected, rnd):
        """One round of random changes; returns the new expectation."""
        names = sorted(expected)
        exp = {k: dict(v) for k, v in expected.items()}
        for name in names:
            r = self.rng.random()
            if r < 0.35:
                n = self.rng.randint(0, 3)
                self.w.scale(name, 0, n)
                exp[name]["g0"] = n
            elif r < 0.5:
                self.w.delete_cluster(name)
                del exp[name]
        # Re-create some deleted names at once (new UID, same name) and add new clusters.
        gone = [n for n in names if n not in exp]
        for name in gone[: len(gone) // 2]:
            self.recreate(name, exp)
        for i in range(self.rng.randint(1, 4)):
            name = "r%d-new%d" % (rnd, i)
            n = self.rng.randint(0, 2)
            self.w.apply_cluster(ctlsim.raycluster(name, workers=n))
            exp[name] = {"": 1, "g0": n}
        return exp

    def recreate(self, name, exp):
        # The API server deletes a RayCluster without finalizers at once; if one is still
        # there (a finalizer), wait for it to go before creating the name again.
        def gone():
            return not any(c["metadata"]["name"] == name for c in self.w.clusters("default"))

        ctlsim.wait_for(gone, 30, what="cluster %s deleted" % name)
        n = self.rng.randint(0, 2)
        self.w.apply_cluster(ctlsim.raycluster(name, workers=n))
        exp[name] = {"": 1, "g0": n}

    # -- tests ---------------------------------------------------------------------------

    def test_kill_at_random_moments(self):
        ctl = self.w.controller()
        ctlsim.wait_for(ctl.ready, 20, what="controller /readyz")
        expected = {}
        kills = 0
        t_start = time.monotonic()
        for rnd in range(ROUNDS):
            done = threading.Event()
            box = {}

            def apply_round(rnd=rnd):
                try:
                    if rnd == 0:
                        for i in range(N_CLUSTERS):
                            n = self.rng.randint(0, 2)
                            self.w.apply_cluster(ctlsim.raycluster("rc-%02d" % i, workers=n))
                            box.setdefault("exp", {})["rc-%02d" % i] = {"": 1, "g0": n}
                    else:
                        box["exp"] = self.mutate(expected, rnd)
                except Exception as e:  # reported by the main thread
                    box["error"] = e
                finally:
                    done.set()

            th = threading.Thread(target=apply_round, daemon=True)
            th.start()
            # Kill once or twice at random moments while the changes go in and the
            # controller works on them, then start it again (the same identity takes the
            # Lease back at once).
            for _ in range(self.rng.choice((1, 1, 2))):
                time.sleep(self.rng.uniform(0.0, 1.5))
                self.assertIsNotNone(ctl.kill(signal.SIGKILL))
                kills += 1
                time.sleep(self.rng.uniform(0.0, 0.3))
                ctl.start()
            self.assertTrue(done.wait(120), "round %d: applying took over 120 s" % rnd)
            th.join(5)
            if "error" in box:
                raise box["error"]
            expected = box["exp"]
            took = self.converge(expected, "round %d" % rnd, ctl)
            pods = sum(sum(g.values()) for g in expected.values())
            print("round %d: %d clusters, %d pods, converged %.1f s after the changes, %d kills so far"
                  % (rnd, len(expected), pods, took, kills), flush=True)
            self.assertLess(time.monotonic() - t_start, 60 * 15, "time limit for the rounds")
        self.assertGreaterEqual(kills, ROUNDS)
        self.assertTrue(ctl.alive(), "the controller exited by itself:\n" + ctl.output()[-2000:])

    def test_api_errors_and_dropped_watches(self):
        ctl = self.w.controller()
        ctlsim.wait_for(ctl.ready, 20, what="controller /readyz")
        # Three rules applied one after the other: 1-(1-r)^3 = 5% of all calls fail,
        # a third each with 409, 429 (Retry-After 1) and 500.
        r = 1 - (1 - 0.05) ** (1 / 3.0)
        for code in (409, 429, 500):
            self.w.sim("POST", "faults", {"verb": "*", "code": code, "rate": r, "retryAfter": 1})
        stop = threading.Event()
        drops = [0]
        compacts = [0]

        def dropper():
            while not stop.wait(1.0):
                try:
                    if drops[0] % 3 == 2:
                        # Forget the history first: the re-watch from the last version seen is
                        # answered with an ERROR event "too old resource version" (410 Expired).
                        self.w.sim("POST", "compact")
                        compacts[0] += 1
                    self.w.sim("POST", "drop-watches")
                    drops[0] += 1
                except Exception:  # noqa: BLE001 - keep dropping
                    pass

        th = threading.Thread(target=dropper, daemon=True)
        th.start()
        try:
            expected = {}
            for i in range(N_CLUSTERS):
                n = self.rng.randint(0, 2)
                self.w.apply_cluster(ctlsim.raycluster("fc-%02d" % i, workers=n))
                expected["fc-%02d" % i] = {"": 1, "g0": n}
            # Three rounds of changes while the faults go on (scales, deletions, same-name
            # re-creations, new clusters), a few seconds apart.
            for rnd in range(1, 4):
                time.sleep(self.rng.uniform(1.0, 3.0))
                expected = self.mutate(expected, rnd)
            t0 = time.monotonic()
            try:
                self.w.wait_converged(expected, CONVERGE_S)
            except AssertionError as e:
                self.fail("with faults: %s\ncontroller log tail:\n%s" % (e, ctl.output()[-3000:]))
            took = time.monotonic() - t0
        finally:
            stop.set()
            th.join(5)
        stats = self.w.sim("GET", "stats")
        self.w.sim("DELETE", "faults")
        injected = {c: sum(v.get(c, 0) for v in stats["by_verb"].values()) for c in ("409", "429", "500")}
        met = ctl.metrics()
        retries = sum(v for k, v in met.items() if k.startswith("raywarden_api_request_retries_total"))
        relists = sum(v for k, v in met.items() if k.startswith("raywarden_informer_relists_total"))
        print("faults: converged %.1f s after the last change; %d watch drops (%d after a compaction); "
              "injected %s of %d calls; controller retries %d, relists after 410 %d"
              % (took, drops[0], compacts[0], injected, stats["total"], retries, relists), flush=True)
        self.assertGreaterEqual(drops[0], 3)
        self.assertGreaterEqual(compacts[0], 1)
        self.assertGreater(relists, 0)
        self.assertTrue(all(v > 0 for v in injected.values()), injected)
        self.assertTrue(ctl.alive(), ctl.output()[-2000:])
        # Once the faults stop it stays converged, and a further change still goes through.
        self.converge(expected, "after faults", ctl)
        name = sorted(expected)[0]
        self.w.scale(name, 0, 3)
        expected[name]["g0"] = 3
        self.converge(expected, "change after faults", ctl)

    def test_refused_head_and_invalid_specs(self):
        ctl = self.w.controller()
        ctlsim.wait_for(ctl.ready, 20, what="controller /readyz")
        # A head pod the API server refuses (an invalid container name): KubeRay stops at
        # the head's error, so no worker pod is created either. The Warnings repeat with
        # notes that differ (the generated pod name is in the API server's message); after
        # 10 distinct notes they count on one "(combined from similar events)" Event.
        hr = ctlsim.raycluster("hr", workers=2)
        hr["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["name"] = "Ray_Head"
        self.w.apply_cluster(hr)
        # Invalid specs: a repeated groupName, a negative replicas.
        dup = ctlsim.raycluster("dup", workers=1, groups=2)
        dup["spec"]["workerGroupSpecs"][1]["groupName"] = "g0"
        self.w.apply_cluster(dup)
        self.w.apply_cluster(ctlsim.raycluster("neg", workers=-1))

        def events(name, reason):
            items = self.w.call("GET", "apis/events.k8s.io/v1/namespaces/default/events").get("items") or []
            return [e for e in items if e["regarding"]["name"] == name and e["reason"] == reason]

        def aggregated():
            pods = self.w.pods("default", "ray.io/cluster=hr")
            self.assertEqual([p["metadata"]["name"] for p in pods], [], "pods created for hr")
            evs = events("hr", "FailedToCreateHeadPod")
            comb = [e for e in evs if e["note"].startswith("(combined from similar events): ")]
            return evs if comb and (comb[0].get("series") or {}).get("count", 1) >= 2 else None

        def occurrences():
            self.assertEqual(self.w.pods("default", "ray.io/cluster=hr"), [], "pods created for hr")
            return sum((e.get("series") or {}).get("count", 1) for e in events("hr", "FailedToCreateHeadPod"))

        try:
            # Each change of the cluster is reconciled at once (whatever the error back-off),
            # so every poke is one more refused head: 11 (plus the back-off's own retries, about
            # 6 more) make at least 9 Events and an aggregate counting 2 or more, and stay below
            # the recorder's burst of 25 Warnings per object.
            for i in range(11):
                seen = occurrences()
                self.w.call("PATCH", ctlsim.RC_PATH % "default" + "/hr",
                            {"metadata": {"annotations": {"test/poke": str(i)}}},
                            ctype="application/merge-patch+json")
                ctlsim.wait_for(lambda: occurrences() > seen, 30, what="refused head %d" % i)
            evs = ctlsim.wait_for(aggregated, 30, what="an aggregate FailedToCreateHeadPod Event")
        except AssertionError as e:
            self.fail("%s\ncontroller log tail:\n%s" % (e, ctl.output()[-3000:]))
        total = sum((e.get("series") or {}).get("count", 1) for e in evs)
        print("refused head: %d occurrences on %d Events" % (total, len(evs)), flush=True)
        self.assertLessEqual(len(evs), 10, [e["note"] for e in evs])
        self.assertEqual(len([e for e in evs if e["note"].startswith("(combined")]), 1)
        for name, msg in (("dup", "workerGroupSpecs[1]: worker group names must be unique "
                                  "(groupName g0 is also workerGroupSpecs[0])"),
                          ("neg", "worker group g0 has negative replicas -1")):
            ctlsim.wait_for(lambda: (self.w.get_cluster(name).get("status") or {}).get("reason") == msg, 30,
                            what="%s: status.reason" % name)
            ctlsim.wait_for(lambda: [e for e in events(name, "InvalidRayClusterSpec")
                                     if e["type"] == "Warning" and e["note"] == msg], 30,
                            what="%s: InvalidRayClusterSpec Event" % name)
            self.assertEqual(self.w.pods("default", "ray.io/cluster=%s" % name), [], name)
        # Once the head is valid, the head and then the workers are created.
        hr = self.w.get_cluster("hr")
        hr["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["name"] = "ray-head"
        self.w.call("PATCH", ctlsim.RC_PATH % "default" + "/hr",
                    {"spec": {"headGroupSpec": hr["spec"]["headGroupSpec"]}},
                    ctype="application/merge-patch+json")
        try:
            self.w.wait_converged({"hr": {"": 1, "g0": 2}}, CONVERGE_S)
        except AssertionError as e:
            self.fail("%s\ncontroller log tail:\n%s" % (e, ctl.output()[-3000:]))


if __name__ == "__main__":
    unittest.main()

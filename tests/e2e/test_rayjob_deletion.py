"""End to end: what a finished RayJob deletes, and when, on the local cluster with
raywarden-controller, on RayJobs derived from KubeRay's ray-job.sample.yaml.

- deletionStrategy.deletionRules (KubeRay v1.5; KubeRay needs its RayJobDeletionPolicy feature gate,
  raywarden always honours them): a succeeding job with one worker and the rules DeleteWorkers at
  1 s, DeleteCluster at 3 s, DeleteSelf at 5 s: the worker pods go while the head stays, then the
  RayCluster, then the RayJob, in that order, none before its TTL after status.endTime.
- legacy deletionStrategy.onSuccess/onFailure with a failing driver: onFailure's DeleteCluster runs
  ttlSecondsAfterFinished after endTime and the RayJob is kept (onSuccess's DeleteSelf is not
  applied to a failure).
- --rayjob-default-ttl (a controller started with the flag): a finished RayJob without a deletion
  policy of its own is deleted that long after endTime, with its RayCluster, submitter Job and log
  ConfigMap; shutdownAfterJobFinishes: false is no policy (deleted too); a RayJob with its own
  shutdownAfterJobFinishes + ttlSecondsAfterFinished keeps its own timing and its object; a
  DeleteNone rule opts out.

The deletion times are the controller's Events' (eventTime, microseconds) and the API server's
deletionTimestamps (seconds); endTime is in seconds, rounded down, so a lower bound of endTime +
TTL holds exactly when the controller waited the TTL. Uses clusterlib.py and rjlib.py."""

import calendar
import time
import unittest

from clusterlib import wait_for
import rjlib
from rjlib import NS

PODS = "/api/v1/namespaces/%s/pods" % NS
CONFIGMAPS = "/api/v1/namespaces/%s/configmaps" % NS
SHORT = "python -c \"print('short job')\""
FAILING = "python -c \"import sys; print('failing on purpose'); sys.exit(1)\""
# Upper bounds: the controller acts within about a second of a TTL (a rule not yet due is looked
# at again at its time + 2 s, as KubeRay); the rest is room for a loaded 2-core machine with ASan.
SLACK = 12.0


def rfc3339(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def micro(s):
    """A metav1.MicroTime ("2026-01-02T03:04:05.123456Z") as seconds since the epoch."""
    frac = s[19:].rstrip("Z")
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + (float(frac) if frac else 0.0)


def event_time(lc, name, reason, note_prefix="", timeout=15):
    """The first time the controller emitted reason about RayJob name (waits for the Event)."""
    def find():
        evs = [e for e in rjlib.events(lc, name, reason) if (e.get("note") or "").startswith(note_prefix)]
        return evs or None
    evs = wait_for(find, timeout, 0.1, "Event %s %s of RayJob %s" % (reason, note_prefix, name))
    return min(micro(e["eventTime"]) for e in evs)


def deleted_at(obj):
    """When the API server was asked to delete obj (a pod's deletionTimestamp is that + its grace)."""
    md = obj["metadata"]
    return rfc3339(md["deletionTimestamp"]) - int(md.get("deletionGracePeriodSeconds") or 0)


def one_worker(base, name, spec):
    """The small variant with one worker pod (DeleteWorkers needs workers to delete)."""
    rj = rjlib.variant(base, name, spec, small=True)
    g = rj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    g["replicas"] = g["minReplicas"] = 1
    return rj


class RayJobDeletionStrategy(rjlib.RayJobCase):

    def check_window(self, what, t, end, ttl):
        """t, the time of a deletion step, is not before endTime + ttl, and not much later."""
        print("deletion %-28s %6.2fs after endTime (TTL %ds)" % (what, t - end, ttl))
        self.assertGreaterEqual(t, end + ttl, "%s before its TTL" % what)
        self.assertLess(t, end + ttl + SLACK, "%s late" % what)

    def test_deletion_rules_in_order(self):
        lc = self.lc
        name = "rj-rules"
        ttl = {"DeleteWorkers": 1, "DeleteCluster": 3, "DeleteSelf": 5}
        rules = [{"policy": p, "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": t}} for p, t in ttl.items()]
        w = rjlib.Watcher(lc, [lc.rc_path(NS), PODS, rjlib.RJ_PATH])
        try:
            rjlib.apply_obj(lc, one_worker(self.base, name, {"entrypoint": SHORT,
                                                              "deletionStrategy": {"deletionRules": rules}}))
            st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 120)
            self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus")), ("Complete", "SUCCEEDED"), st)
            cluster, end = st["rayClusterName"], rfc3339(st["endTime"])
            rjlib.wait_rayjob_gone(lc, name, ttl["DeleteSelf"] + SLACK + 30)
            lc.wait_gone(NS, cluster, 60)
            # The watches lag the GETs: wait until they have seen the RayJob go.
            wait_for(lambda: any(typ == "DELETED" and path == rjlib.RJ_PATH and obj["metadata"]["name"] == name
                                 for _, typ, path, obj in w.ordered()), 10, 0.05, "the RayJob's DELETED event")
        finally:
            w.stop()

        # The order, by resourceVersion (one counter in the API server).
        suspended = rc_deleted = rj_deleted = head_deleted = None
        workers, worker_deleted, worker_added_late = {}, None, []
        for rv, typ, path, obj in w.ordered():
            md = obj.get("metadata") or {}
            going = typ == "DELETED" or bool(md.get("deletionTimestamp"))
            if path == rjlib.RJ_PATH:
                if md.get("name") == name and going and rj_deleted is None:
                    rj_deleted = (rv, obj)
            elif path == lc.rc_path(NS):
                if md.get("name") != cluster:
                    continue
                groups = (obj.get("spec") or {}).get("workerGroupSpecs") or []
                if suspended is None and groups and all(g.get("suspend") for g in groups):
                    suspended = rv
                if going and rc_deleted is None:
                    rc_deleted = rv
            else:
                labels = md.get("labels") or {}
                if labels.get("ray.io/cluster") != cluster:
                    continue
                if labels.get("ray.io/node-type") == "head":
                    if going and head_deleted is None:
                        head_deleted = rv
                    continue
                if typ == "ADDED" and suspended is not None:
                    worker_added_late.append(md["name"])
                if going and worker_deleted is None:
                    worker_deleted = (rv, obj)
                if typ == "DELETED":
                    workers[md["name"]] = rv
                else:
                    workers.setdefault(md["name"], None)
        self.assertTrue(workers, "no worker pod of %s was seen" % cluster)
        self.assertNotIn(None, workers.values(), "a worker pod was not deleted: %s" % workers)
        workers_gone = max(workers.values())
        for what, rv in (("workers suspended", suspended), ("a worker pod deleted", worker_deleted),
                         ("RayCluster deleted", rc_deleted), ("RayJob deleted", rj_deleted),
                         ("head pod deleted", head_deleted)):
            self.assertIsNotNone(rv, "never seen: " + what)
        self.assertEqual(worker_added_late, [], "worker pods created after the suspend")
        # Workers first (the suspend, then their pods gone while the head stays), then the
        # RayCluster (its head with it), then the RayJob.
        self.assertLess(suspended, worker_deleted[0])
        self.assertLess(workers_gone, rc_deleted, "the RayCluster was deleted before its workers were gone")
        self.assertLess(workers_gone, head_deleted, "the head went before the workers were gone")
        self.assertLess(rc_deleted, rj_deleted[0])
        print("deletion order by resourceVersion: suspend %d, first worker deleted %d, workers gone %d, "
              "RayCluster %d, RayJob %d" % (suspended, worker_deleted[0], workers_gone, rc_deleted,
                                             rj_deleted[0]))
        print("deletion worker pods gone (watch) %.2fs, head pod deleted (watch) %.2fs after endTime" % (
            w.arrived[workers_gone] - end, w.arrived[head_deleted] - end))

        # Each step at or after its TTL: the controller's action (its Events), and the API server's
        # deletionTimestamps where the object has one (a pod, a RayJob with its finalizer).
        for p in ttl:
            self.check_window("%s decided" % p, event_time(lc, name, "DeletionRule", p), end, ttl[p])
        self.check_window("worker groups suspended", event_time(lc, name, "UpdatedRayCluster"), end,
                          ttl["DeleteWorkers"])
        self.check_window("worker pod deletion (API)", deleted_at(worker_deleted[1]), end, ttl["DeleteWorkers"])
        self.check_window("RayCluster deleted", event_time(lc, name, "DeletedRayCluster"), end,
                          ttl["DeleteCluster"])
        self.check_window("RayJob deleted", event_time(lc, name, "DeletedRayJob"), end, ttl["DeleteSelf"])
        self.check_window("RayJob deletion (API)", deleted_at(rj_deleted[1]), end, ttl["DeleteSelf"])

    def test_legacy_on_failure(self):
        lc = self.lc
        name, ttl = "rj-legacy", 2
        # The legacy style runs at the global TTL, which needs shutdownAfterJobFinishes (and then
        # DeleteNone is refused): onSuccess DeleteSelf would also delete the RayCluster (through
        # its owner), so only onFailure's policy can give a DeletedRayCluster Event and a RayJob
        # left behind.
        rjlib.apply_obj(lc, rjlib.variant(self.base, name, {
            "entrypoint": FAILING, "shutdownAfterJobFinishes": True, "ttlSecondsAfterFinished": ttl,
            "deletionStrategy": {"onSuccess": {"policy": "DeleteSelf"}, "onFailure": {"policy": "DeleteCluster"}},
        }, small=True))
        st = rjlib.wait_deployment(lc, name, ("Complete", "Failed"), 120)
        self.assertEqual((st["jobDeploymentStatus"], st.get("jobStatus"), st.get("reason")),
                         ("Failed", "FAILED", "AppFailed"), st)
        cluster, end = st["rayClusterName"], rfc3339(st["endTime"])
        lc.wait_gone(NS, cluster, ttl + SLACK + 30)
        self.check_window("legacy onFailure DeleteCluster decided",
                          event_time(lc, name, "DeletionRule", "DeleteCluster after the job ended (FAILED)"),
                          end, ttl)
        self.check_window("legacy RayCluster deleted", event_time(lc, name, "DeletedRayCluster"), end, ttl)
        rj = rjlib.rayjob(lc, name)
        self.assertIsNotNone(rj, "onFailure DeleteCluster deletes the RayCluster only")
        self.assertFalse(rj["metadata"].get("deletionTimestamp"), rj["metadata"])
        self.assertEqual(rj["status"]["jobDeploymentStatus"], "Failed")
        self.assertEqual(rj["status"].get("failed"), 1, "no backoffLimit: not retried")
        self.assertNotIn("DeletedRayJob", rjlib.reasons(lc, name))
        self.assertFalse([e for e in rjlib.events(lc, name, "DeletionRule")
                          if (e.get("note") or "").startswith("DeleteSelf")])


DEFAULT_TTL = 4
OWN_TTL = 8  # longer than the default: a default applied in its stead would show


class RayJobDefaultTTL(rjlib.RayJobCase):
    CONTROLLER_ARGS = ("--rayjob-default-ttl=%ds" % DEFAULT_TTL,)

    def test_default_ttl(self):
        lc = self.lc
        delete_rule = [{"policy": "DeleteNone", "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 0}}]
        jobs = {
            # no policy: deleted
            "rj-dttl-nopolicy": {"entrypoint": SHORT},
            # KubeRay's default written out is no policy either (and a failure counts as finished)
            "rj-dttl-false": {"entrypoint": FAILING, "shutdownAfterJobFinishes": False},
            # its own TTL: the cluster goes at OWN_TTL, the RayJob stays
            "rj-dttl-own": {"entrypoint": SHORT, "shutdownAfterJobFinishes": True,
                            "ttlSecondsAfterFinished": OWN_TTL},
            # a DeleteNone rule: nothing goes
            "rj-dttl-optout": {"entrypoint": SHORT, "deletionStrategy": {"deletionRules": delete_rule}},
        }
        w = rjlib.Watcher(lc, [rjlib.RJ_PATH, CONFIGMAPS])
        try:
            for name, spec in jobs.items():
                rjlib.apply_obj(lc, rjlib.variant(self.base, name, spec, small=True))
            # All at once: one that ends early may be gone before another is waited for alone.
            st, had_submitter = {}, {}

            def all_finished():
                for name in jobs:
                    if name not in st:
                        s = rjlib.status(lc, name)
                        if s.get("jobDeploymentStatus") in ("Complete", "Failed"):
                            st[name] = s
                            had_submitter[name] = rjlib.submitter_job(lc, name) is not None
                return len(st) == len(jobs)
            wait_for(all_finished, 150, 0.1, "all RayJobs Complete or Failed")
            want = {"rj-dttl-false": ("Failed", "FAILED")}
            for name in jobs:
                self.assertEqual((st[name]["jobDeploymentStatus"], st[name].get("jobStatus")),
                                 want.get(name, ("Complete", "SUCCEEDED")), (name, st[name]))
            end = {name: rfc3339(st[name]["endTime"]) for name in jobs}
            cluster = {name: st[name]["rayClusterName"] for name in jobs}

            for name in ("rj-dttl-nopolicy", "rj-dttl-false"):
                rjlib.wait_rayjob_gone(lc, name, max(1.0, end[name] + DEFAULT_TTL + SLACK + 20 - time.time()))
                self.check_window(name + " DefaultTTLExpired", event_time(lc, name, "DefaultTTLExpired"), end[name])
                self.check_window(name + " RayJob deleted", event_time(lc, name, "DeletedRayJob"), end[name])
                # What it owned goes with it (the API server's garbage collector).
                lc.wait_gone(NS, cluster[name], 60)
                self.assertTrue(had_submitter[name], "no submitter Job to see go")
                wait_for(lambda: rjlib.submitter_job(lc, name) is None, 60, 0.2, "submitter Job of " + name)
                cm = name + "-driver-log"
                if any(o["metadata"]["name"] == cm for _, _, p, o in w.ordered() if p == CONFIGMAPS):
                    wait_for(lambda: lc.get_or_none("%s/%s" % (CONFIGMAPS, cm)) is None, 60, 0.2, cm + " gone")
                else:  # the log tail may come after the RayJob went: then it is never written
                    print("default TTL: %s was not written before %s went" % (cm, name))

            # Its own TTL: the cluster goes OWN_TTL after endTime, not DEFAULT_TTL; the RayJob stays.
            own = "rj-dttl-own"
            lc.wait_gone(NS, cluster[own], max(1.0, end[own] + OWN_TTL + SLACK + 20 - time.time()))
            t = event_time(lc, own, "DeletedRayCluster")
            print("default TTL %ds: %s's own TTL %ds deleted its RayCluster %.2fs after endTime" % (
                DEFAULT_TTL, own, OWN_TTL, t - end[own]))
            self.assertGreaterEqual(t, end[own] + OWN_TTL)
            self.assertLess(t, end[own] + OWN_TTL + SLACK)

            # A negative needs time: the default TTL would have deleted these by now (their end +
            # DEFAULT_TTL + what the others above took at most), so wait until then.
            keep = ("rj-dttl-own", "rj-dttl-optout")
            until = max(end[n] for n in keep) + DEFAULT_TTL + SLACK / 2
            wait_for(lambda: time.time() >= until, until - time.time() + 5, 0.2, "the default TTL's window")
        finally:
            w.stop()
        for name in keep:
            rj = rjlib.rayjob(lc, name)
            self.assertIsNotNone(rj, "%s has its own policy: the default TTL does not apply" % name)
            self.assertFalse(rj["metadata"].get("deletionTimestamp"), (name, rj["metadata"]))
            self.assertEqual(rjlib.events(lc, name, "DefaultTTLExpired"), [])
        self.assertIsNotNone(lc.raycluster(NS, cluster["rj-dttl-optout"]), "DeleteNone keeps the cluster")
        # The API server's deletion times of the two that went (their finalizer kept them visible).
        for name in ("rj-dttl-nopolicy", "rj-dttl-false"):
            going = [o for _, _, _, o in w.ordered()
                     if o["metadata"]["name"] == name and o["metadata"].get("deletionTimestamp")]
            self.assertTrue(going, "no watch event of %s with a deletionTimestamp" % name)
            self.check_window(name + " deletion (API)", deleted_at(going[0]), end[name])

    def check_window(self, what, t, end):
        print("default TTL %ds: %-36s %6.2fs after endTime" % (DEFAULT_TTL, what, t - end))
        self.assertGreaterEqual(t, end + DEFAULT_TTL, "%s before the default TTL" % what)
        self.assertLess(t, end + DEFAULT_TTL + SLACK, "%s late" % what)


if __name__ == "__main__":
    unittest.main()

"""End to end: KubeRay itself beside raywarden, on the same work.

Two local clusters (tests/sim/local-cluster up --operator kuberay, and --operator raywarden),
one per operator, reused across the samples. Every KubeRay sample of
shared/corpus/kuberay-samples is applied unchanged to both at once, in a namespace of its
own; once each operator's Ray resources reach their goal (RayCluster ready, RayJob terminal,
RayService running; or, where one cannot, nothing changed for a while) the objects each
operator made (pods, services, serviceaccounts, roles, rolebindings, jobs and the Ray
resources with their status) are normalised (compatlib.py) and compared field by field, then
the sample is deleted from both.

Every difference must be listed in docs/kuberay-compatibility.md (the ```compat table, with
its reason); the test fails on any other one and prints it as a table row to fill in. A row
that matched nothing is reported (not a failure: samples differ in what they exercise).

Skipped with a message when shared/corpus is absent, when KubeRay is not built
(kubesim.upstream) or when raywarden is not built.
"""

import os
import sys
import time
import unittest

from clusterlib import CORPUS, SRC, missing_prereqs

from kubesim import operators  # noqa: E402  (clusterlib put tests/sim on sys.path)

import compatlib  # noqa: E402

DOC = os.path.join(SRC, "docs", "kuberay-compatibility.md")
ONLY = [s for s in os.environ.get("RW_COMPAT_SAMPLES", "").split(",") if s]


def samples():
    if not os.path.isdir(CORPUS):
        return []
    return sorted(f for f in os.listdir(CORPUS) if f.endswith(".yaml") and (not ONLY or f in ONLY))


class KubeRayCompat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = (None if os.path.isdir(CORPUS) else "shared/corpus/kuberay-samples is absent (%s)" % CORPUS) \
            or operators.skip_reason() or missing_prereqs()
        if reason:
            raise unittest.SkipTest(reason)
        cls.clusters = []
        try:
            for op in ("kuberay", "raywarden"):
                cls.clusters.append(compatlib.OperatorCluster.start(op))
        except Exception:
            cls.tearDownClass()
            raise
        cls.failed = False

    @classmethod
    def tearDownClass(cls):
        for lc in getattr(cls, "clusters", []):
            keep = getattr(cls, "failed", False) or bool(os.environ.get("RW_KEEP_LOGS"))
            lc.stop(keep_logs_on_failure=keep)

    def test_samples(self):
        type(self).failed = True  # until it passes: keep the logs of a run that raised
        allowed = compatlib.Allowed.from_doc(DOC)
        unlisted = []
        t0 = time.monotonic()
        for i, sample in enumerate(samples()):
            path = os.path.join(CORPUS, sample)
            ns = "compat-%d" % i
            t = time.monotonic()
            snaps, how = compatlib.run_sample(self.clusters, path, ns)
            diffs = compatlib.diff(snaps["kuberay"], snaps["raywarden"])
            mine = [d for d in diffs if not allowed.match(sample, d)]
            unlisted += [d.row(sample) for d in mine]
            compatlib.log("%s: settled %s, %d object(s) under KubeRay, %d under raywarden, %d difference(s), "
                          "%d not listed (%.1fs)" % (sample, ", ".join("%s %s" % kv for kv in sorted(how.items())),
                                                     len(snaps["kuberay"]), len(snaps["raywarden"]), len(diffs),
                                                     len(mine), time.monotonic() - t))
            if not snaps["kuberay"]:  # nothing to compare: a harness problem
                unlisted.append("%s: KubeRay made nothing" % sample)
        compatlib.log("all samples in %.1fs" % (time.monotonic() - t0))
        for row in allowed.unused():
            compatlib.log("note: listed difference not seen this run: %s" % " | ".join(row[:4]))
        type(self).failed = bool(unlisted)
        if unlisted:
            sys.stderr.write("\nDifferences not listed in %s (add each with its reason, or fix raywarden):\n%s\n"
                             % (DOC, "\n".join(unlisted)))
        self.assertEqual([], unlisted)


if __name__ == "__main__":
    unittest.main()

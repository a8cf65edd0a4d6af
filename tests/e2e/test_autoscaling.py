"""Autoscaling end to end on the real control plane (etcd, kube-apiserver, kube-controller-manager
and kube-scheduler at the pinned release) with raywarden-controller, the kubelet simulator running
every pod's processes, and in each head pod the simulator's `ray kuberay-autoscaler` stand-in
(tests/sim/raysim/autoscaler.py), which decides as Ray's autoscaler does and writes its decisions
into the RayCluster as Ray's KubeRay node provider does.

KubeRay's ray-cluster.autoscaler.yaml (autoscaler v1) and ray-cluster.autoscaler-v2.yaml, from
KubeRay's config/samples of the pinned release (else shared/corpus, which has the v1 sample only;
a sample found in neither is skipped, saying so), each in its own namespace, applied at once. The
copies applied differ from the samples in one field: autoscalerOptions.idleTimeoutSeconds is
IDLE_S instead of 60, to keep the run short. For each:

- the head comes up alone (replicas 0, head num-cpus 0);
- a RayJob on that cluster (clusterSelector) whose driver runs TASKS tasks of one CPU each: more
  CPUs than the cluster has. The autoscaler scales small-group to TASKS workers, they become
  Ready, the job succeeds;
- idle for IDLE_S, the workers are removed: the autoscaler names them in workersToDelete (v2
  after draining each through the GCS), raywarden deletes exactly those pods and no other (the
  head pod is the same one throughout), replicas ends at 0, and the autoscaler clears the list
  once the pods are gone (node_provider.py safe_to_scale; KubeRay's operator does not write the
  list back, nor does raywarden);
- the head's autoscaler container never restarted.

The times demand -> worker Ready and idle -> pod gone are printed (tests/bench/autoscaling
measures them over rounds, for raywarden and KubeRay).
"""

import json
import shlex
import time

import aslib
from clusterlib import LocalClusterCase, wait_for

IDLE_S = 10
TASKS = 2
# The driver: TASKS one-CPU tasks on a cluster whose only node (the head) has num-cpus 0.
DRIVER = ("import ray, time; ray.init(); "
          "f = ray.remote(num_cpus=1)(lambda i: (time.sleep(0.5), i * i)[1]); "
          "print('squares', sum(ray.get([f.remote(i) for i in range(%d)])))" % TASKS)
WANT = "squares %d" % sum(i * i for i in range(TASKS))
VARIANTS = (("v1", aslib.V1_SAMPLE, "default"), ("v2", aslib.V2_SAMPLE, "autoscaler-v2"))
UP_S = 240  # head Ready on a loaded two-core machine, then the job
SCALE_S = 180  # demand -> workers Ready -> job done
DOWN_S = IDLE_S + 120  # idle timeout + autoscaler period + pod termination, with margin


def rayjob(ns):
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "autoscale-job", "namespace": ns},
            "spec": {"entrypoint": "python -c " + shlex.quote(DRIVER),
                     "clusterSelector": {"ray.io/cluster": aslib.CLUSTER}}}


class Autoscaling(LocalClusterCase):
    CONTROL_PLANE = "real"

    @classmethod
    def prerequisites(cls):
        why = super().prerequisites()
        if not why and not any(aslib.sample_path(s) for _, s, _ in VARIANTS):
            why = "neither KubeRay's source (kubesim.operators.src_dir) nor shared/corpus has %s or %s" % (
                aslib.V1_SAMPLE, aslib.V2_SAMPLE)
        return why

    def test_scale_up_job_then_idle_scale_down(self):
        runs = []
        for version, sample, ns in VARIANTS:
            path = aslib.sample_path(sample)
            if path is None:
                print("autoscaling %s: skipped, %s is in neither KubeRay's source nor shared/corpus" % (
                    version, sample), flush=True)
                continue
            if ns != "default":
                self.lc.kubectl("create", "namespace", ns)
            watch = aslib.ClusterWatch(self.lc.state, ns).start()
            self.addCleanup(watch.stop)
            aslib.apply_objs(self.lc, aslib.sample_objects(self.lc, path, ns, idle_s=IDLE_S))
            runs.append((version, ns, watch))
        self.assertTrue(runs)
        for version, ns, watch in runs:
            # workers=None: the status of a cluster without workers leaves readyWorkerReplicas out.
            self.lc.wait_cluster_ready(ns, aslib.CLUSTER, timeout=UP_S)
            self.assertEqual(watch.live_workers(), [], version)
        t_job = {}
        for version, ns, watch in runs:
            self.lc.kubectl("apply", "-f", "-", input=json.dumps(rayjob(ns)))
            t_job[version] = time.monotonic()
        for version, ns, watch in runs:
            ready = watch.wait(lambda: len(watch.ready_workers()) >= TASKS and watch.ready_workers(), SCALE_S,
                               "%s: %d workers Ready" % (version, TASKS))
            t_ready = max(watch.workers[n]["ready"] for n in ready)
            print("autoscaling %s: RayJob applied -> %d workers Ready in %.1f s" % (
                version, TASKS, t_ready - t_job[version]), flush=True)
            self.assertEqual([r for _, r in watch.replicas if r], [TASKS], "%s: one scale-up to %d" % (
                version, TASKS))
            st = wait_for(lambda: (lambda s: s if s.get("jobDeploymentStatus") in ("Complete", "Failed") else None)(
                (self.lc.get_or_none("/apis/ray.io/v1/namespaces/%s/rayjobs/autoscale-job" % ns) or {})
                .get("status") or {}), SCALE_S, 0.5, "%s: RayJob finished" % version)
            self.assertEqual(st.get("jobStatus"), "SUCCEEDED", st)
            self.assertEqual(st.get("jobDeploymentStatus"), "Complete", st)
        for version, ns, watch in runs:
            workers = sorted(watch.workers)
            self.assertEqual(len(workers), TASKS, "%s: no pod beyond the scale-up" % version)
            watch.wait(lambda: all(watch.workers[n]["gone"] for n in workers), DOWN_S,
                       "%s: idle workers gone" % version)
            gone_at = max(watch.workers[n]["gone"] for n in workers)
            named_at = min(t for t, names in watch.named_log if names)
            print("autoscaling %s: workers named %.1f s, gone %.1f s after the RayJob was applied" % (
                version, named_at - t_job[version], gone_at - t_job[version]), flush=True)
            # Exactly the named pods were deleted, no other: every worker was named, the head pod
            # is the one there was from the start, and no pod was deleted before it was named.
            self.assertEqual(sorted(watch.named), workers, version)
            self.assertEqual(len(watch.heads), 1, "%s: the head pod was replaced" % version)
            for n in workers:
                # Ordered by etcd revision (aslib.ClusterWatch.named_rv): a pod removed before any
                # deletionTimestamp was watched has no revision here, only its arrival time.
                if n in watch.deleting_rv:
                    self.assertGreater(watch.deleting_rv[n], watch.named_rv[n],
                                       "%s: %s deleted before it was named" % (version, n))
                else:
                    self.assertGreaterEqual(watch.workers[n]["gone"], min(
                        t for t, names in watch.named_log if n in names), "%s: %s gone before it was named" % (
                        version, n))
            watch.wait(lambda: watch.named_log[-1][1] == [] and watch.replicas[-1][1] == 0, DOWN_S,
                       "%s: workersToDelete cleared, replicas 0" % version)
            self.assertEqual(watch.live_workers(), [], version)
            head = self.lc.pods(ns, aslib.CLUSTER, node_type="head")[0]
            cs = {c["name"]: c for c in head["status"]["containerStatuses"]}
            self.assertEqual(cs["autoscaler"]["restartCount"], 0, version)
            if version == "v2":
                log = self.lc.kubectl("logs", "-n", ns, head["metadata"]["name"], "-c", "autoscaler")
                drained = [ln for ln in log.splitlines() if "Drained ray on" in ln and "success=True" in ln]
                self.assertEqual(len(drained), TASKS, log[-3000:])


if __name__ == "__main__":
    import unittest
    unittest.main()

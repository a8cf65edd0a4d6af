"""`ray kuberay-autoscaler`, the simulator's stand-in for the KubeRay autoscaler sidecar
(tests/sim/raysim/autoscaler.py, docs/ray-simulator.md): click-like usage errors, the
wait for the GCS with Ray's messages, the summary it logs once the head is up, and a
clean exit on SIGTERM. Reading the RayCluster through the API server is covered end to
end by tests/e2e/test_raycluster_samples.py (the autoscaler sample).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from raysim.cluster import Cluster, wait_for  # noqa: E402

RAY = os.path.join(HERE, "bin", "ray")
PREFIX = "127.77.60"


def env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    e.update(extra)
    return e


def run(*args, **kw):
    return subprocess.run([sys.executable, RAY] + list(args), capture_output=True, text=True, timeout=30, **kw)


class UsageErrors(unittest.TestCase):
    def test_missing_options(self):
        r = run("kuberay-autoscaler", "--cluster-name", "c")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Error: Missing option '--cluster-namespace'.", r.stderr)
        r = run("kuberay-autoscaler")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Error: Missing option '--cluster-name'.", r.stderr)

    def test_unknown_option_and_extra_argument(self):
        r = run("kuberay-autoscaler", "--cluster-name", "c", "--cluster-namespace", "n", "--upscaling-mode", "x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Error: No such option: --upscaling-mode", r.stderr)
        r = run("kuberay-autoscaler", "--cluster-name=c", "--cluster-namespace=n", "extra")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Got unexpected extra argument (extra)", r.stderr)
        r = run("kuberay-autoscaler", "--cluster-name")
        self.assertEqual(r.returncode, 2)
        self.assertIn("requires an argument", r.stderr)


class WaitsThenStaysUp(unittest.TestCase):
    def test_lifecycle(self):
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            # Started before the head: it waits, checking every backoff period.
            p = subprocess.Popen([sys.executable, RAY, "kuberay-autoscaler", "--cluster-name", "rc",
                                  "--cluster-namespace", "ns"], stdout=out, stderr=err,
                                 env=env(RW_SIM_POD_IP=PREFIX + ".1", RW_SIM_AUTOSCALER_BACKOFF_S="0.2",
                                         AUTOSCALER_UPDATE_INTERVAL_S="0.2"))
            try:
                def text(f):
                    f.seek(0)
                    return f.read()
                wait_for(lambda: text(err).count("The Ray head is not ready. Will check again in 0.2 seconds.") >= 2,
                         10, what="two not-ready warnings")
                self.assertIsNone(p.poll())
                with Cluster(PREFIX, workers=1, head_args=["--num-cpus=0"], worker_args=["--num-cpus=1"]):
                    wait_for(lambda: "2 node(s) alive" in text(out), 20, what="summary with 2 nodes")
                    log = text(out)
                    self.assertIn("The Ray head is ready. Starting the autoscaler.", log)
                    self.assertIn("RayCluster ns/rc: 2 node(s) alive (simulator stand-in: no scaling decisions)",
                                  log)
                    # Outside a pod there are no in-cluster credentials: said once, not fatal.
                    self.assertEqual(text(err).count("No in-cluster credentials"), 1)
                    # The summary is logged when it changes, not every period.
                    time.sleep(1.0)  # five update periods, to show that nothing repeats
                    self.assertEqual(text(out).count("2 node(s) alive"), 1)
                    self.assertIsNone(p.poll())
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(10), 0)
                self.assertIn("Autoscaler stand-in exiting.", text(out))
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)


if __name__ == "__main__":
    unittest.main()

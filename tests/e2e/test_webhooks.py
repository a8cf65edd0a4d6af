"""End to end: raywarden-controller's admission webhooks on the real control plane
(`local-cluster up --control-plane real`), whose kube-apiserver calls them for real.

The install is manifests/webhook (its RBAC and ValidatingWebhookConfiguration) with one change:
the API server reaches the webhooks through clientConfig.url https://127.0.0.1:PORT instead of the
raywarden-webhook Service. The controller runs as a host process here, and kube-apiserver's
default service resolver dials a Service's ClusterIP, which nothing routes on this machine (the
proxy simulator serves Services on loopback addresses of its own; --enable-aggregator-routing
would dial the pod network's 10.x addresses, which are not routable here either). Everything else
is as shipped: failurePolicy, timeouts, rules, and the certificates the controller makes, stores in
its Secret, serves and puts in caBundle itself. The controller runs as its ServiceAccount with
manifests/rbac and manifests/webhook/rbac.yaml (RBAC enforced by the real authorizer), with short
certificate lives (serving 12 s, CA 40 s) so renewals and a CA rotation happen during the test.

- the caBundle of every webhook is patched to the Secret's CA (and the previous CA during a
  rotation);
- a bad RayCluster, RayJob and RayService is refused by `kubectl apply`; good ones are admitted;
- across serving-certificate renewals and a CA rotation every call keeps succeeding;
- with the controller frozen (its socket accepts, nothing answers) ConfigMap and pod writes are
  untouched, and a ray.io write goes through after timeoutSeconds (failurePolicy Ignore); with it
  stopped, a bad object is admitted at once and the reconciler's Warning Event for it, once the
  controller is back, carries the very message the webhook gave;
- the listener closes a peer that never completes its TLS handshake at 5 s and plain HTTP at once,
  and answers a TLS client that trusts caBundle;
- two replicas with the Secret deleted under them make one Secret again and both serve it.
"""

import base64
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import unittest

from clusterlib import SRC, APIError, LocalClusterCase, free_port, wait_for

NS = "default"
WEBHOOK_DIR = os.path.join(SRC, "manifests", "webhook")
SAMPLES = os.path.join(SRC, "manifests", "samples")
SECRET = "/api/v1/namespaces/raywarden-system/secrets/raywarden-webhook-certs"
VWC = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/raywarden"

HEAD = """
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray:2.52.0"""

BAD = {
    "RayCluster": ("wh-bad-rc", """apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: wh-bad-rc
spec:
  rayVersion: "2.52.0"
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.52.0
  workerGroupSpecs:
  - groupName: g
    replicas: 1
    minReplicas: 0
    maxReplicas: 2
    rayStartParams: {}
    template:
      spec:
        containers: [{name: w, image: "rayproject/ray:2.52.0"}]
  - groupName: g
    replicas: 1
    minReplicas: 0
    maxReplicas: 2
    rayStartParams: {}
    template:
      spec:
        containers: [{name: w, image: "rayproject/ray:2.52.0"}]
""", "worker group names must be unique"),
    "RayJob": ("wh-bad-rj", """apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: wh-bad-rj
spec:
  entrypoint: python -c "print(1)"
  shutdownAfterJobFinishes: false
  ttlSecondsAfterFinished: 10
  rayClusterSpec:
    rayVersion: "2.52.0"%s
""" % HEAD, "cannot have TTLSecondsAfterFinished"),
    "RayService": ("wh-bad-rs", """apiVersion: ray.io/v1
kind: RayService
metadata:
  name: wh-bad-rs
  annotations:
    ray.io/initializing-timeout: "-5s"
spec:
  serveConfigV2: |
    applications: []
  rayClusterConfig:
    rayVersion: "2.52.0"%s
""" % HEAD, "must be a positive duration"),
}


def url_config(port):
    """manifests/webhook/validating.yaml with clientConfig.url instead of the Service (see above)."""
    with open(os.path.join(WEBHOOK_DIR, "validating.yaml")) as f:
        text = f.read()
    svc = re.compile(r"    service:\n      name: raywarden-webhook\n      namespace: raywarden-system\n"
                     r"      path: (\S+)\n      port: 443\n")
    out, n = svc.subn(lambda m: "    url: https://127.0.0.1:%d%s\n" % (port, m.group(1)), text)
    assert n == 3, "validating.yaml changed shape: %d Service clientConfigs" % n
    return out


def certs(pem_text):
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", pem_text, re.S)


class Webhooks(LocalClusterCase):
    CONTROL_PLANE = "real"
    CONTROLLER = False

    @classmethod
    def setUpCluster(cls):
        lc = cls.lc
        lc.cluster.controller_kubeconfig()  # manifests/rbac, the namespace and the ServiceAccount
        lc.kubectl("apply", "-f", os.path.join(WEBHOOK_DIR, "rbac.yaml"))
        cls.port = free_port()
        lc.kubectl("apply", "-f", "-", input=url_config(cls.port))
        cls.args = ["--webhook-addr", "127.0.0.1:%d" % cls.port, "--webhook-cert-hosts", "127.0.0.1",
                    "--leader-election-namespace", "raywarden-system",
                    "--webhook-cert-validity", "12s", "--webhook-ca-validity", "40s"]
        lc.start_controller(cls.args)
        cls.refusals = {}

    def kubectl(self, *args, input=None, timeout=60):
        env = dict(os.environ, KUBECONFIG=self.lc.kubeconfig)
        t0 = time.monotonic()
        r = subprocess.run(["kubectl"] + list(args), input=input, capture_output=True, text=True,
                           env=env, timeout=timeout)
        return r.returncode, r.stdout + r.stderr, time.monotonic() - t0

    def secret_pem(self):
        d = self.lc.get(SECRET)["data"]
        return {k: base64.b64decode(v).decode() for k, v in d.items()}

    def bundle_current(self):
        """The caBundle of every webhook equals the Secret's CA (+ previous CA)."""
        p = self.secret_pem()
        want = p["ca.crt"] + p.get("ca-previous.crt", "")
        hooks = self.lc.get(VWC)["webhooks"]
        have = [base64.b64decode(h["clientConfig"].get("caBundle", "")).decode() for h in hooks]
        return all(h == want for h in have) and len(hooks) == 3

    def test_1_cabundle_patched(self):
        wait_for(self.bundle_current, timeout=60, interval=0.5, retry=(KeyError, AttributeError),
                 what="caBundle of the three webhooks = the Secret's CA")
        p = self.secret_pem()
        self.assertEqual(len(certs(p["tls.crt"])), 1)
        self.assertIn("BEGIN EC PRIVATE KEY", p["tls.key"])

    def test_2_bad_refused(self):
        wait_for(self.bundle_current, timeout=60, interval=0.5, retry=(KeyError, AttributeError),
                 what="caBundle patched")
        for kind, (name, yaml, phrase) in BAD.items():
            rc, out, _ = self.kubectl("apply", "-n", NS, "-f", "-", input=yaml)
            self.assertNotEqual(rc, 0, "%s %s admitted: %s" % (kind, name, out))
            self.assertIn("denied the request", out)
            self.assertIn(phrase, out)
            type(self).refusals[kind] = out
            self.assertIsNone(self.lc.get_or_none("/apis/ray.io/v1/namespaces/%s/%ss/%s" % (NS, kind.lower(), name)))

    def test_3_good_admitted(self):
        for f in ("ray-cluster.mini.yaml", "ray-job.mini.yaml", "ray-service.mini.yaml"):
            rc, out, _ = self.kubectl("apply", "--dry-run=server", "-n", NS, "-f", os.path.join(SAMPLES, f))
            self.assertEqual(rc, 0, "%s refused: %s" % (f, out))

    def test_3b_listener_bounds_peers(self):
        """The HTTPS listener: a peer that never completes its TLS handshake is closed at the
        5 s handshake deadline; plain HTTP is refused at once; a TLS client that trusts the CA in
        caBundle gets answers (/healthz)."""
        def closed_after(payload):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            t0 = time.monotonic()
            if payload:
                s.sendall(payload)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            s.close()
            return time.monotonic() - t0
        before = self.lc.metrics().get('raywarden_controller_http_timeouts_total{listener="webhook",kind="head"}', 0)
        took = closed_after(b"")
        self.assertGreater(took, 4)
        self.assertLess(took, 9)
        self.assertEqual(self.lc.metrics()['raywarden_controller_http_timeouts_total{listener="webhook",kind="head"}'],
                         before + 1)
        self.assertLess(closed_after(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 2)
        p = self.secret_pem()
        ctx = ssl.create_default_context(cadata=p["ca.crt"] + p.get("ca-previous.crt", ""))
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)

    def test_4_rotation_keeps_serving(self):
        """Serving certificates renewed (every 8 s) and the CA rotated (at 27 s): the bundle
        carries both CAs meanwhile, and every call in between is answered by the webhook."""
        first = self.secret_pem()
        seen_tls, seen_ca, both_in_bundle, calls = {first["tls.crt"]}, {first["ca.crt"]}, False, 0
        bad_name, bad_yaml, phrase = BAD["RayCluster"]
        deadline = time.monotonic() + 75
        while time.monotonic() < deadline:
            rc, out, _ = self.kubectl("apply", "--dry-run=server", "-n", NS, "-f", "-", input=bad_yaml)
            self.assertNotEqual(rc, 0, "call %d admitted during a rotation: %s" % (calls, out))
            self.assertIn(phrase, out, "call %d not answered by the webhook" % calls)
            calls += 1
            p = self.secret_pem()
            seen_tls.add(p["tls.crt"])
            seen_ca.add(p["ca.crt"])
            if p.get("ca-previous.crt"):
                bundle = base64.b64decode(self.lc.get(VWC)["webhooks"][0]["clientConfig"]["caBundle"]).decode()
                both_in_bundle |= len(certs(bundle)) == 2
            if len(seen_tls) >= 3 and len(seen_ca) >= 2 and both_in_bundle:
                break
        self.assertGreaterEqual(len(seen_tls), 3, "serving certificate not renewed")
        self.assertGreaterEqual(len(seen_ca), 2, "CA not rotated")
        self.assertTrue(both_in_bundle, "caBundle never carried the old and the new CA")
        m = self.lc.metrics()
        self.assertGreaterEqual(m.get('raywarden_webhook_certificate_renewals_total{kind="serving"}', 0), 2)
        self.assertGreaterEqual(m.get('raywarden_webhook_reviews_total{result="denied"}', 0), calls)

    def test_5_outage_never_blocks(self):
        pid = self.lc.controller_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            rc, out, took = self.kubectl("create", "configmap", "wh-outage", "-n", NS, "--from-literal=a=b")
            self.assertEqual(rc, 0, out)
            self.assertLess(took, 4, "a ConfigMap write waited on the webhook")
            pod = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wh-outage"},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
            rc, out, took = self.kubectl("apply", "--dry-run=server", "-n", NS, "-f", "-", input=pod)
            self.assertEqual(rc, 0, out)
            self.assertLess(took, 4, "a pod write waited on the webhook")
            # A ray.io write waits timeoutSeconds (5) for the frozen webhook, then goes through.
            rc, out, took = self.kubectl("apply", "--dry-run=server", "-n", NS, "-f",
                                         os.path.join(SAMPLES, "ray-cluster.mini.yaml"))
            self.assertEqual(rc, 0, out)
            self.assertLess(took, 15)
        finally:
            os.kill(pid, signal.SIGCONT)
        # Stopped: the connection is refused, so even a bad object is admitted at once.
        self.lc.stop_controller()
        for kind, (name, yaml, _) in BAD.items():
            rc, out, took = self.kubectl("apply", "-n", NS, "-f", "-", input=yaml)
            self.assertEqual(rc, 0, "%s refused with the controller stopped: %s" % (kind, out))
            self.assertLess(took, 10)

    def test_6_event_has_the_same_message(self):
        """The reconciler's Warning Event for each bad object carries the message the webhook
        refused it with."""
        if len(self.refusals) != 3 or self.lc.get_or_none("/apis/ray.io/v1/namespaces/%s/rayclusters/wh-bad-rc" % NS) is None:
            self.skipTest("needs test_2 and test_5")
        self.lc.start_controller(self.args)
        for kind, (name, _, _) in BAD.items():
            def warning():
                evs = [e for e in self.lc.events(NS, name) if e.get("type") == "Warning"]
                return evs and evs[0]
            ev = wait_for(warning, timeout=60, interval=0.5, what="the Warning Event of %s %s" % (kind, name))
            msg = ev.get("note") or ev.get("message")
            self.assertTrue(msg)
            self.assertIn(msg, self.refusals[kind])
        for kind, (name, _, _) in BAD.items():
            self.lc.delete("/apis/ray.io/v1/namespaces/%s/%ss/%s" % (NS, kind.lower(), name))

    def test_7_replicas_share_one_certificate(self):
        """Two replicas, the Secret deleted under them: both race to make it again, one create
        wins (the other gets AlreadyExists and adopts it), and both serve its certificate."""
        if not self.lc.controller_pid():
            self.lc.start_controller(self.args)
        argv = list(self.lc.controller()["argv"])
        port2 = free_port()
        swap = {"--agent-listen": "tcp://127.0.0.1:%d" % free_port(), "--metrics-addr": "127.0.0.1:%d" % free_port(),
                "--health-probe-bind-address": "127.0.0.1:%d" % free_port(), "--webhook-addr": "127.0.0.1:%d" % port2}
        for i, a in enumerate(argv[:-1]):
            if a in swap:
                argv[i + 1] = swap[a]
        argv[argv.index("--agent-advertise-address") + 1] = swap["--agent-listen"]
        log = open(os.path.join(self.lc.state, "raywarden-controller-2.log"), "ab")
        second = subprocess.Popen(argv, cwd=self.lc.state, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            def served(port):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE  # only which certificate it presents matters here
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                    with ctx.wrap_socket(raw) as tls:
                        return ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))

            def both_serve_the_secret():
                want = self.secret_pem()["tls.crt"]
                norm = lambda pem: ssl.PEM_cert_to_DER_cert(pem)
                return norm(served(self.port)) == norm(want) and norm(served(port2)) == norm(want)

            wait_for(both_serve_the_secret, timeout=60, interval=0.5, retry=(OSError, KeyError, AttributeError, ValueError),
                     what="both replicas serving the Secret's certificate")
            old = self.secret_pem()["ca.crt"]
            self.lc.delete(SECRET)
            wait_for(lambda: self.secret_pem()["ca.crt"] != old and both_serve_the_secret(), timeout=60, interval=0.5,
                     retry=(OSError, KeyError, AttributeError, ValueError, APIError),
                     what="a new Secret, served by both replicas")
            wait_for(self.bundle_current, timeout=60, interval=0.5, retry=(KeyError, AttributeError),
                     what="caBundle following the new CA")
        finally:
            second.terminate()
            try:
                second.wait(timeout=15)
            except subprocess.TimeoutExpired:
                second.kill()
                second.wait(timeout=15)


if __name__ == "__main__":
    unittest.main()

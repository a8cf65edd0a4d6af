"""End to end: the agents' keys and the /drain endpoint on the local cluster with
raywarden-controller (docs/security.md, "Keys, rotation and the /drain endpoint" and
"Pod security of the agent container").

- KubeRay's RayCluster sample: the key Secret holds the key derived from the master key,
  the namespace, the cluster and its UID; the agent runs as 65532 on the pod IP and reads
  its 0444 key; an unauthenticated or wrong-token GET /drain from another pod's address is
  refused (401/403) and the pod stays Ready;
- a deleted key Secret is recreated and the next pod starts;
- the master key file is rotated: every Secret is rewritten, the kubelet refreshes the
  mounted volumes and every agent re-reads its key and keeps reporting, with no restart,
  no refused report (the hub keeps the previous key for an overlap window) and no pod
  leaving Ready;
- a RayService (KubeRay's ray-service.no-ray-serve-replica.yaml): its pods' preStop hook
  carries the drain token, and deleting a worker drains it through the hook.
Uses clusterlib.py and rslib.py."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import time
import urllib.request

from clusterlib import LocalClusterCase, cond, parse_metrics, pod_ready, wait_for
from rslib import wait_rs_ready
from kubesim.realcp import host_ip

NS = "default"
NAME = "raycluster-kuberay"
SECRET = NAME + "-raywarden-key"
RS_NAME = "rayservice-no-ray-serve-replica"


def drain_token(key):
    return hmac.new(key, b"raywarden/v1/drain", hashlib.sha256).hexdigest()


def derive(master, ns, cluster, uid):
    """The cluster key (agentkey.h), computed here independently of the C code."""
    return hmac.new(master, ("raywarden/v2/%s/%s/%s" % (ns, cluster, uid)).encode(),
                    hashlib.sha256).hexdigest().encode()


def agent_get(ip, path, headers=None, source=None):
    c = http.client.HTTPConnection(ip, 8477, timeout=5, source_address=(source, 0) if source else None)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def agent_metrics(ip):
    try:
        code, text = agent_get(ip, "/metrics")
    except OSError:
        return None
    if code != 200:
        return None
    return parse_metrics(text)


class AgentKeys(LocalClusterCase):
    SAMPLE = "ray-cluster.sample.yaml"

    def master(self):
        with open(self.lc.cluster.master_key_path(), "rb") as f:
            return f.read().rstrip(b"\n")

    def secret_key(self):
        s = self.lc.get_or_none("/api/v1/namespaces/%s/secrets/%s" % (NS, SECRET))
        return base64.b64decode(s["data"]["key"]) if s else None

    def kubelet_pods(self):
        with open(os.path.join(self.lc.state, "kubelet.json")) as f:
            info = json.load(f)
        with urllib.request.urlopen(info["control_url"] + "/pods", timeout=5) as r:
            return json.loads(r.read().decode())["pods"], info.get("mountNamespaces")

    def agent_pid(self, pod_name):
        pods, _ = self.kubelet_pods()
        for p in pods:
            if p["name"] == pod_name:
                for c in p["containers"]:
                    if c["name"] == "raywarden-agent":
                        return c["pid"], c["restartCount"]
        return None, None

    def test_1_key_bound_to_uid_and_agent_unprivileged(self):
        lc = self.lc
        lc.apply(self.sample)
        rc = lc.wait_cluster_ready(NS, NAME, timeout=90)
        uid = rc["metadata"]["uid"]
        self.assertEqual(self.secret_key(), derive(self.master(), NS, NAME, uid))
        s = lc.get("/api/v1/namespaces/%s/secrets/%s" % (NS, SECRET))
        self.assertEqual(s["metadata"]["ownerReferences"][0]["uid"], uid)
        self.assertEqual(s["metadata"]["labels"]["app.kubernetes.io/component"], "raywarden-agent-key")
        for p in lc.pods(NS, NAME):
            ip = host_ip(p["status"]["podIP"])
            agent = [c for c in p["spec"]["containers"] if c["name"] == "raywarden-agent"][0]
            self.assertEqual(agent["securityContext"]["runAsUser"], 65532)
            self.assertEqual(agent["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
            vol = [v for v in p["spec"]["volumes"] if v["name"] == "raywarden-key"][0]
            self.assertEqual(vol["secret"]["defaultMode"], 0o444)
            # The endpoints listen on the pod IP only.
            self.assertEqual(agent_get(ip, "/readyz")[0], 200)
            with self.assertRaises(OSError):
                c = http.client.HTTPConnection("127.0.0.1", 8477, timeout=2)
                try:
                    c.request("GET", "/readyz")
                finally:
                    c.close()
            pid, _ = self.agent_pid(p["metadata"]["name"])
            _, mount_ns = self.kubelet_pods()
            if mount_ns:  # the simulator drops privileges only with mount namespaces (root)
                with open("/proc/%d/status" % pid) as f:
                    st = f.read()
                uids = [line.split()[1:] for line in st.splitlines() if line.startswith(("Uid:", "Gid:"))]
                self.assertEqual(uids, [["65532"] * 4, ["65532"] * 4], "agent of %s" % p["metadata"]["name"])
                self.assertIn("CapEff:\t0000000000000000", st)

    def test_2_unauthenticated_drain_refused(self):
        lc = self.lc
        worker = lc.pods(NS, NAME, "worker")[0]
        ip, name = host_ip(worker["status"]["podIP"]), worker["metadata"]["name"]
        head_ip = host_ip(lc.pods(NS, NAME, "head")[0]["status"]["podIP"])
        m0 = agent_metrics(ip)
        other = drain_token(b"0123456789abcdef" * 4)
        # From another pod's address, as a hostile pod in the cluster would.
        self.assertEqual(agent_get(ip, "/drain?seconds=600", source=head_ip)[0], 401)
        self.assertEqual(agent_get(ip, "/drain?seconds=600", {"Authorization": "Bearer " + other},
                                   source=head_ip)[0], 403)
        self.assertEqual(agent_get(ip, "/readyz")[0], 200)
        m1 = agent_metrics(ip)
        self.assertEqual(m1['raywarden_agent_drain_refused_total{reason="unauthenticated"}'], 1)
        self.assertEqual(m1['raywarden_agent_drain_refused_total{reason="forbidden"}'], 1)
        for k in ("raywarden_agent_ready", "raywarden_agent_draining", "raywarden_agent_ready_transitions_total"):
            self.assertEqual(m1[k], m0[k], k)
        # The kubelet probes /readyz every second: once it has asked twice more, the pod's
        # Ready condition reflects the agent's state after the refused calls.
        n = m1["raywarden_agent_http_requests_total"]
        wait_for(lambda: agent_metrics(ip)["raywarden_agent_http_requests_total"] >= n + 3, 20, 0.1,
                 "two more kubelet probes")
        pod = lc.get("/api/v1/namespaces/%s/pods/%s" % (NS, name))
        self.assertTrue(pod_ready(pod))
        self.assertEqual(cond(pod, "ray.io/agent-ready")["status"], "True")

    def test_3_deleted_key_secret_recreated(self):
        lc = self.lc
        old = lc.get("/api/v1/namespaces/%s/secrets/%s" % (NS, SECRET))
        lc.delete("/api/v1/namespaces/%s/secrets/%s" % (NS, SECRET))

        def recreated():
            s = lc.get_or_none("/api/v1/namespaces/%s/secrets/%s" % (NS, SECRET))
            return s if s and s["metadata"]["uid"] != old["metadata"]["uid"] else None
        t0 = time.monotonic()
        s = wait_for(recreated, 30, 0.1, "the key Secret recreated")
        print("key Secret recreated %.2fs after its deletion" % (time.monotonic() - t0))
        self.assertEqual(s["data"]["key"], old["data"]["key"])
        # The next pod mounts it and starts.
        worker = lc.pods(NS, NAME, "worker")[0]
        lc.delete("/api/v1/namespaces/%s/pods/%s" % (NS, worker["metadata"]["name"]))

        def replaced():
            ws = lc.pods(NS, NAME, "worker")
            return ws and ws[0]["metadata"]["uid"] != worker["metadata"]["uid"] and pod_ready(ws[0])
        wait_for(replaced, 60, 0.2, "a new worker pod Ready")
        lc.wait_cluster_ready(NS, NAME, timeout=60)

    def test_4_master_key_rotation(self):
        lc = self.lc
        pods = lc.pods(NS, NAME)
        before = {p["metadata"]["name"]: (p["metadata"]["uid"], self.agent_pid(p["metadata"]["name"]))
                  for p in pods}
        ips = [host_ip(p["status"]["podIP"]) for p in pods]
        old_key = self.secret_key()
        cm0 = lc.metrics()
        refused0 = sum(v for k, v in cm0.items() if k.startswith("raywarden_agent_refusals_total"))
        acked0 = {ip: agent_metrics(ip)["raywarden_agent_reports_acked_total"] for ip in ips}

        # A new master key, written as a Secret volume update or `kubectl create secret
        # --dry-run | apply` followed by the kubelet's swap would: atomically.
        path = lc.cluster.master_key_path()
        with open(path + ".new", "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        os.replace(path + ".new", path)
        t0 = time.monotonic()
        uid = lc.raycluster(NS, NAME)["metadata"]["uid"]
        want = derive(self.master(), NS, NAME, uid)
        self.assertNotEqual(want, old_key)
        wait_for(lambda: self.secret_key() == want, 30, 0.1, "the key Secret rewritten")
        t_secret = time.monotonic() - t0

        def all_reloaded():
            for ip in ips:
                m = agent_metrics(ip)
                if not m or m.get('raywarden_agent_key_reloads_total{result="ok"}') != 1:
                    return False
            return True
        # Pods must stay Ready throughout: checked on every poll.
        def reloaded_and_ready():
            ps = lc.pods(NS, NAME)
            self.assertTrue(all(pod_ready(p) for p in ps), "a pod left Ready during the rotation")
            return all_reloaded()
        wait_for(reloaded_and_ready, 60, 0.2, "every agent on the new key")
        print("rotation: key Secret rewritten %.2fs, every agent on the new key %.2fs after the master key "
              "file changed" % (t_secret, time.monotonic() - t0))
        # Reports sealed with the new key are accepted and answered.
        for ip in ips:
            a = agent_metrics(ip)["raywarden_agent_reports_acked_total"]
            wait_for(lambda ip=ip, a=a: agent_metrics(ip)["raywarden_agent_reports_acked_total"] > a, 30, 0.2,
                     "a report acked after the reload (%s)" % ip)
            self.assertGreater(agent_metrics(ip)["raywarden_agent_reports_acked_total"], acked0[ip])
        cm1 = lc.metrics()
        self.assertEqual(cm1.get("raywarden_agent_master_key_reloads_total"), 1)
        refused1 = sum(v for k, v in cm1.items() if k.startswith("raywarden_agent_refusals_total"))
        self.assertEqual(refused1, refused0, "reports refused during the rotation (the hub must accept the "
                         "previous key for an overlap window): %r" %
                         {k: v for k, v in cm1.items() if k.startswith("raywarden_agent_refusals_total") and v})
        # No restart: same pods, same agent processes.
        for p in lc.pods(NS, NAME):
            name = p["metadata"]["name"]
            self.assertIn(name, before)
            self.assertEqual((p["metadata"]["uid"], self.agent_pid(name)), before[name])
        self.assertTrue(lc.cluster_ready(NS, NAME))


class RayServiceDrain(LocalClusterCase):
    SAMPLE = "ray-service.no-ray-serve-replica.yaml"

    def test_prestop_drain_authenticated(self):
        lc = self.lc
        lc.apply(self.sample)
        st = wait_rs_ready(lc, NS, RS_NAME, timeout=120)
        cluster = st["activeServiceStatus"]["rayClusterName"]
        key = base64.b64decode(lc.get("/api/v1/namespaces/%s/secrets/%s-raywarden-key" % (NS, cluster))
                               ["data"]["key"])
        for p in lc.pods(NS, cluster):
            for c in p["spec"]["containers"]:
                hg = c["lifecycle"]["preStop"]["httpGet"]
                self.assertTrue(hg["path"].startswith("/drain?seconds="), c["name"])
                self.assertEqual(hg["httpHeaders"], [{"name": "Authorization",
                                                      "value": "Bearer " + drain_token(key)}])
        # Delete a worker: the kubelet runs the hook; the agent drains (NotReady for good)
        # and holds the answer for the drain period, answering probes meanwhile.
        # A running worker (the RayService is Ready once its head serves; a worker may still
        # be starting).
        w = wait_for(lambda: ([p for p in lc.pods(NS, cluster, "worker") if pod_ready(p)] or [None])[0], 60, 0.2,
                     "a Ready worker")
        ip = host_ip(w["status"]["podIP"])
        self.assertEqual(agent_metrics(ip)["raywarden_agent_draining"], 0)
        lc.delete("/api/v1/namespaces/%s/pods/%s" % (NS, w["metadata"]["name"]))

        def drained():
            m = agent_metrics(ip)
            return m and m["raywarden_agent_draining"] == 1 and m
        m = wait_for(drained, 20, 0.05, "the worker's agent drained by its preStop hook")
        self.assertEqual(sum(v for k, v in m.items() if k.startswith("raywarden_agent_drain_refused_total")), 0)
        code, body = agent_get(ip, "/readyz")
        self.assertEqual(code, 503, body)
        wait_rs_ready(lc, NS, RS_NAME, timeout=90)

"""End to end: KubeRay v1.5.0's real operator owns a RayCluster and raywarden-controller runs
beside it with --inject-only, serving the agent injection webhook (manifests/inject-agent) on the
real control plane, whose kube-apiserver calls it for every matching pod create.

As in test_webhooks, the API server reaches the webhook through clientConfig.url
https://127.0.0.1:PORT instead of the raywarden-webhook Service (the controller is a host process
here); everything else is manifests/inject-agent/mutating.yaml as shipped, with the certificates
and caBundle the controller makes itself, and the controller runs as its ServiceAccount with
manifests/rbac and manifests/webhook/rbac.yaml.

- the worker group's template carries raywarden.io/inject-agent: "true": KubeRay's worker pod gets
  the agent container, its key volume and the ray.io/agent-ready readiness gate, keeps KubeRay's
  own probes on the Ray container, and becomes Ready once the controller has written the cluster's
  agent key Secret (owned by the RayCluster) and the agent reported to the hub;
- the head group's template has no label: the head pod is exactly as KubeRay made it;
- in a namespace labelled raywarden.io/inject-agent: "true" every Ray pod gets the agent, and
  turns Ready once the controller, seeing the injected pods, has written the key Secret;
- the controller never writes the RayCluster (its field managers: KubeRay's alone);
- a killed raylet turns the worker's ray.io/agent-ready condition False;
- with the controller stopped, KubeRay's next worker pod is still created (failurePolicy Ignore),
  without the agent.
"""

import os
import re
import time
import unittest

from clusterlib import SRC, LocalClusterCase, cond, free_port, pod_ready, wait_for
from kubesim.realcp import host_ip

NS = "default"
NAME = "inj"
INJECT_DIR = os.path.join(SRC, "manifests", "inject-agent")
WEBHOOK_DIR = os.path.join(SRC, "manifests", "webhook")
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/raywarden"
AGENT = "raywarden-agent"

NS2 = "inj-ns"
NAME2 = "nsc"
NS_CLUSTER = """apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: %s
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
    maxReplicas: 1
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.52.0
""" % NAME2

CLUSTER = """apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: %s
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
    maxReplicas: 3
    rayStartParams: {}
    template:
      metadata:
        labels:
          raywarden.io/inject-agent: "true"
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.52.0
""" % NAME


def url_config(port):
    """mutating.yaml with clientConfig.url instead of the Service (see above)."""
    with open(os.path.join(INJECT_DIR, "mutating.yaml")) as f:
        text = f.read()
    svc = re.compile(r"    service:\n      name: raywarden-webhook\n      namespace: raywarden-system\n"
                     r"      path: (\S+)\n      port: 443\n")
    out, n = svc.subn(lambda m: "    url: https://127.0.0.1:%d%s\n" % (port, m.group(1)), text)
    assert n == 2, "mutating.yaml changed shape: %d Service clientConfigs" % n
    return out


def names(containers):
    return [c["name"] for c in containers]


class AgentInjection(LocalClusterCase):
    CONTROL_PLANE = "real"
    OPERATOR = "kuberay"
    CONTROLLER = False

    @classmethod
    def setUpCluster(cls):
        lc = cls.lc
        lc.cluster.controller_kubeconfig()  # manifests/rbac, the namespace and the ServiceAccount
        lc.kubectl("apply", "-f", os.path.join(WEBHOOK_DIR, "rbac.yaml"))
        cls.port = free_port()
        lc.kubectl("apply", "-f", "-", input=url_config(cls.port))
        cls.args = ["--inject-only", "--webhook-addr", "127.0.0.1:%d" % cls.port,
                    "--webhook-cert-hosts", "127.0.0.1", "--leader-election-namespace", "raywarden-system"]
        lc.start_controller(cls.args)

    def pods(self, node_type):
        return self.lc.pods(NS, NAME, node_type)

    def test_1_injected_and_ready(self):
        wait_for(lambda: all(h["clientConfig"].get("caBundle") for h in self.lc.get(MWC)["webhooks"]), 60, 0.3,
                 "caBundle of the injection webhooks", retry=(KeyError, AttributeError))
        t0 = time.monotonic()
        self.lc.kubectl("apply", "-n", NS, "-f", "-", input=CLUSTER)
        worker = wait_for(lambda: (lambda ps: ps[0] if ps else None)(self.pods("worker")), 60, 0.2,
                          "KubeRay's worker pod")
        head = wait_for(lambda: (lambda ps: ps[0] if ps else None)(self.pods("head")), 60, 0.2,
                        "KubeRay's head pod")
        spec = worker["spec"]
        self.assertEqual(names(spec["containers"]), ["ray-worker", AGENT])
        self.assertIn({"conditionType": "ray.io/agent-ready"}, spec.get("readinessGates", []))
        self.assertIn("%s-raywarden-key" % NAME,
                      [v.get("secret", {}).get("secretName") for v in spec.get("volumes", [])])
        agent = spec["containers"][1]
        env = {e["name"]: e.get("value") for e in agent["env"]}
        self.assertEqual(env["RAYWARDEN_NODE_TYPE"], "worker")
        self.assertEqual(env["RAYWARDEN_CONTROLLER"], self.lc.controller()["agent_url"])
        # KubeRay's probes on the Ray container stay KubeRay's (they call the dashboard agent).
        self.assertIn("exec", spec["containers"][0].get("readinessProbe", {}))
        # The head group carries no label: untouched.
        self.assertEqual(names(head["spec"]["containers"]), ["ray-head"])
        self.assertNotIn("readinessGates", head["spec"])

        key = wait_for(lambda: self.lc.get_or_none("/api/v1/namespaces/%s/secrets/%s-raywarden-key" % (NS, NAME)),
                       30, 0.2, "agent key Secret")
        rc = self.lc.raycluster(NS, NAME)
        self.assertEqual([(o["kind"], o["uid"]) for o in key["metadata"]["ownerReferences"]],
                         [("RayCluster", rc["metadata"]["uid"])])

        wname = worker["metadata"]["name"]

        def gate_and_ready():
            p = self.lc.get("/api/v1/namespaces/%s/pods/%s" % (NS, wname))
            g = cond(p, "ray.io/agent-ready")
            return p if g and g["status"] == "True" and pod_ready(p) else None
        wait_for(gate_and_ready, 60, 0.2, "worker Ready with ray.io/agent-ready True (agent reported)")
        print("RayCluster applied -> injected worker Ready in %.1f s" % (time.monotonic() - t0))
        # The controller wrote nothing on the RayCluster (KubeRay's status, no finalizer of
        # raywarden's): the API server's field managers tell who wrote what.
        rc = self.lc.raycluster(NS, NAME)
        managers = {m["manager"] for m in rc["metadata"].get("managedFields", [])}
        self.assertIn("kuberay-operator", managers)
        self.assertNotIn("raywarden-controller", managers)
        self.assertEqual({m["manager"] for m in key["metadata"]["managedFields"]}, {"raywarden-controller"})
        self.assertEqual(self.lc.rbac_refusals(), [])

    def test_1b_namespace_label(self):
        """A namespace labelled raywarden.io/inject-agent: "true": every Ray pod of a cluster whose
        templates carry no label gets the agent. The controller learns of the cluster's agents from
        the pods themselves, so the pods usually exist before their key Secret: they wait for the
        kubelet's mount retry and then turn Ready."""
        self.lc.kubectl("create", "namespace", NS2)
        self.lc.kubectl("label", "namespace", NS2, "raywarden.io/inject-agent=true")
        self.lc.kubectl("apply", "-n", NS2, "-f", "-", input=NS_CLUSTER)
        for node_type in ("head", "worker"):
            pod = wait_for(lambda: (lambda ps: ps[0] if ps else None)(self.lc.pods(NS2, NAME2, node_type)), 60, 0.2,
                           "KubeRay's %s pod in %s" % (node_type, NS2))
            self.assertEqual(names(pod["spec"]["containers"])[1:], [AGENT], node_type)
            pname = pod["metadata"]["name"]

            def ready():
                p = self.lc.get("/api/v1/namespaces/%s/pods/%s" % (NS2, pname))
                g = cond(p, "ray.io/agent-ready")
                return p if g and g["status"] == "True" and pod_ready(p) else None
            wait_for(ready, 60, 0.2, "%s pod Ready with ray.io/agent-ready True" % node_type)
        self.assertIsNotNone(self.lc.get_or_none("/api/v1/namespaces/%s/secrets/%s-raywarden-key" % (NS2, NAME2)))

    def test_2_killed_raylet_flips_gate(self):
        worker = self.pods("worker")[0]
        wname = worker["metadata"]["name"]
        wait_for(lambda: (lambda g: g and g["status"] == "True")(
            cond(self.lc.get("/api/v1/namespaces/%s/pods/%s" % (NS, wname)), "ray.io/agent-ready")),
            60, 0.2, "gate True")
        self.lc.raysim_fault(host_ip(worker["status"]["podIP"]), "raylet", "kill")
        gate = wait_for(lambda: (lambda g: g if g and g["status"] == "False" else None)(
            cond(self.lc.get("/api/v1/namespaces/%s/pods/%s" % (NS, wname)), "ray.io/agent-ready")), 15, 0.1,
            "ray.io/agent-ready False after the raylet was killed")
        self.assertEqual(gate["reason"], "AgentNotReady")
        self.assertIn("raylet", gate["message"])

    def test_3_controller_down_pods_still_created(self):
        before = {p["metadata"]["name"] for p in self.pods("worker")}
        self.lc.stop_controller()
        self.lc.kubectl("patch", "-n", NS, "raycluster", NAME, "--type=json",
                        "-p", '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":%d}]'
                        % (len(before) + 1))
        new = wait_for(lambda: [p for p in self.pods("worker") if p["metadata"]["name"] not in before], 60, 0.2,
                       "KubeRay's new worker pod with the controller stopped (failurePolicy Ignore)")
        self.assertEqual(names(new[0]["spec"]["containers"]), ["ray-worker"])
        self.assertNotIn("readinessGates", new[0]["spec"])


if __name__ == "__main__":
    unittest.main()

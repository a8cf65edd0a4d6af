#!/usr/bin/env python3
"""Regenerate the generated seeds of tests/fuzz/corpus/fuzz_*/ (files named gen-*).

Seeds are realistic inputs of each fuzz target, made from what the project already
holds as truth: the KubeRay samples and CRDs and the Ray API answers of the shared
corpus (--corpus, default ../shared/corpus next to the checkout, else
/work/shared/corpus), the builders' golden files (tests/unit/golden/), the sealed
wire seeds written by tests/unit/test_wire.c, and shapes taken from the unit-test
tables (request heads, health answers, kubeconfigs, Redis addresses). A few seeds
per target reach the input's real cap (tests/fuzz/max_len.txt), so libFuzzer starts
next to the limit paths instead of growing toward them.

The seeds are committed: builds and tests never read the shared corpus. Hand-written
seeds (any name not starting with gen-) are left alone. Needs PyYAML
(python3-yaml) to read the samples.

    python3 tests/fuzz/make_corpus.py [--corpus DIR]
"""

import argparse
import copy
import hashlib
import hmac
import json
import os
import struct
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
CORPUS_OUT = os.path.join(HERE, "corpus")
GOLDEN = os.path.join(SRC, "tests", "unit", "golden")

# tests/unit/test_wire.c TEST_KEY and tests/fuzz/fuzz_wire.c FUZZ_KEY.
WIRE_KEY = b"raywarden-test-key-0123456789"
WIRE_MAX = 1024 * 1024  # RW_WIRE_MAX_MSG
SP_HEADER = b"\x00SP\x00\x00\x30\x00\x00"  # an nng REQ peer (SP_REQ0)


def max_lens():
    out = {}
    with open(os.path.join(HERE, "max_len.txt")) as f:
        for line in f:
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                out[parts[0]] = int(parts[1])
    return out


class Out:
    """Collects one target's seeds; write() replaces that target's gen-* files."""

    def __init__(self, target, cap):
        self.target = target
        self.cap = cap
        self.seeds = {}

    def add(self, name, data):
        if isinstance(data, str):
            data = data.encode()
        if len(data) > self.cap:
            raise SystemExit("%s/%s: %d bytes, over the target's max_len %d" % (
                self.target, name, len(data), self.cap))
        self.seeds["gen-" + name] = data

    def write(self):
        d = os.path.join(CORPUS_OUT, self.target)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("gen-") and f not in self.seeds:
                os.remove(os.path.join(d, f))
        for name, data in sorted(self.seeds.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        return len(self.seeds), sum(len(v) for v in self.seeds.values())


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def load_sources(corpus):
    samples = {}  # file stem -> [documents]
    sdir = os.path.join(corpus, "kuberay-samples")
    for f in sorted(os.listdir(sdir)):
        if f.endswith(".yaml"):
            with open(os.path.join(sdir, f)) as fh:
                text = fh.read()
            samples[stem(f)] = (text, [d for d in yaml.safe_load_all(text) if d])
    api = {}
    adir = os.path.join(corpus, "ray-api")
    for f in sorted(os.listdir(adir)):
        with open(os.path.join(adir, f), "rb") as fh:
            api[stem(f)] = fh.read()
    crds = {}
    cdir = os.path.join(corpus, "kuberay-crds")
    for f in sorted(os.listdir(cdir)):
        with open(os.path.join(cdir, f)) as fh:
            crds[stem(f)] = fh.read()
    golden = {}
    for f in sorted(os.listdir(GOLDEN)):
        if f.endswith(".json"):
            with open(os.path.join(GOLDEN, f), "rb") as fh:
                golden[stem(f)] = fh.read()
    return samples, api, crds, golden


def of_kind(samples, kind):
    for name, (_, docs) in samples.items():
        for d in docs:
            if d.get("kind") == kind:
                yield name, d


# ----------------------------------------------------------------------------- per target


def wide_cluster(rc, groups):
    """The sample with `groups` worker groups (names unique), to reach big objects."""
    rc = copy.deepcopy(rc)
    spec = rc.setdefault("spec", {})
    base = (spec.get("workerGroupSpecs") or [None])[0]
    if base is None:
        return rc
    spec["workerGroupSpecs"] = []
    for i in range(groups):
        g = copy.deepcopy(base)
        g["groupName"] = "group-%d" % i
        g["replicas"] = i % 5
        g["minReplicas"] = 0
        g["maxReplicas"] = 10 + i
        spec["workerGroupSpecs"].append(g)
    return rc


def gen_rc_build(out, samples):
    for name, rc in of_kind(samples, "RayCluster"):
        out.add(name + ".json", jdump(rc))
        out.add(name + "-pretty.json", json.dumps(rc, indent=2))
    for name, rs in of_kind(samples, "RayService"):
        rc = {"apiVersion": "ray.io/v1", "kind": "RayCluster",
              "metadata": {"name": rs["metadata"]["name"] + "-raycluster-abcde", "namespace": "default",
                           "uid": "6f0c8d9e-1b2a-4c3d-8e4f-000000000002"},
              "spec": rs["spec"].get("rayClusterConfig", {})}
        out.add("from-" + name + ".json", jdump(rc))
    _, rc = next(of_kind(samples, "RayCluster"))
    for groups in (8, 64):
        out.add("wide-%d.json" % groups, jdump(wide_cluster(rc, groups)))
    # A large object (a head with a long env list), kept near 100 kB so runs stay fast.
    big = copy.deepcopy(rc)
    c = big["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    c["env"] = [{"name": "VAR_%d" % i, "value": "v" * 200} for i in range(400)]
    out.add("big-env.json", jdump(big))


def gen_rs(out, samples):
    for name, rs in of_kind(samples, "RayService"):
        out.add(name + ".json", jdump(rs))
        st = copy.deepcopy(rs)
        st["status"] = {"serviceStatus": "Running", "activeServiceStatus": {
            "rayClusterName": rs["metadata"]["name"] + "-raycluster-x7k2p",
            "applicationStatuses": {"fruit_app": {"status": "RUNNING", "serveDeploymentStatuses": {
                "MangoStand": {"status": "HEALTHY"}}}}}}
        out.add(name + "-status.json", jdump(st))
    _, rs = next(of_kind(samples, "RayService"))
    wide = copy.deepcopy(rs)
    wide["spec"]["rayClusterConfig"] = wide_cluster(
        {"spec": wide["spec"]["rayClusterConfig"]}, 64)["spec"]
    out.add("wide-64.json", jdump(wide))
    # serveConfigV2 with many applications (about 80 kB; the target converts it several
    # times per run, so a seed near the 900 KiB cap would cost seconds per run).
    cfg = yaml.safe_load(rs["spec"]["serveConfigV2"])
    app = cfg["applications"][0]
    apps = []
    for i in range(100):
        a = copy.deepcopy(app)
        a["name"] = "app_%d" % i
        a["route_prefix"] = "/app%d" % i
        apps.append(a)
    cfg["applications"] = apps
    many = copy.deepcopy(rs)
    many["spec"]["serveConfigV2"] = yaml.safe_dump(cfg, sort_keys=False)
    out.add("many-apps.json", jdump(many))


def gen_rayjob(out, samples):
    for name, rj in of_kind(samples, "RayJob"):
        out.add(name + ".json", jdump(rj))
    _, rj = next(of_kind(samples, "RayJob"))
    base = copy.deepcopy(rj)
    base["metadata"].update({"namespace": "default", "uid": "rj-uid", "labels": {"team": "a"}})
    variants = {
        "http": {"submissionMode": "HTTPMode", "metadata": {"owner": "me"}, "entrypointNumCpus": 1,
                 "entrypointNumGpus": 0.5, "entrypointResources": '{"Custom_1": 1, "Custom_2": 5.5}'},
        "interactive": {"submissionMode": "InteractiveMode", "jobId": "my-job"},
        "selector": {"clusterSelector": {"ray.io/cluster": "shared"}, "rayClusterSpec": None},
        "rules": {"deletionStrategy": {"deletionRules": [
            {"policy": "DeleteWorkers", "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 10}},
            {"policy": "DeleteCluster", "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 20}},
            {"policy": "DeleteSelf", "condition": {"jobDeploymentStatus": "Failed"}}]}},
        "legacy": {"shutdownAfterJobFinishes": True, "ttlSecondsAfterFinished": 60, "deletionStrategy": {
            "onSuccess": {"policy": "DeleteCluster"}, "onFailure": {"policy": "DeleteSelf"}}},
        "template": {"submitterConfig": {"backoffLimit": 5}, "submitterPodTemplate": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "s", "image": "quay.io/kuberay/submitter:v1.5.0",
                                                      "env": [{"name": "A", "value": "1"}]}]}}},
        "token": {"submissionMode": "SidecarMode", "activeDeadlineSeconds": 600,
                  "preRunningDeadlineSeconds": 60, "backoffLimit": 2},
        "quoting": {"runtimeEnvYAML": 'env_vars:\n  A: "$HOME `id` \\\\ q"\n',
                    "entrypoint": "  echo 'a' \"b\" $X\n"},
    }
    for vname, patch in variants.items():
        d = copy.deepcopy(base)
        for k, v in patch.items():
            if v is None:
                d["spec"].pop(k, None)
            else:
                d["spec"][k] = v
        if vname == "token":
            d["spec"]["rayClusterSpec"]["authOptions"] = {"mode": "token"}
        if vname == "interactive":
            d["status"] = {"jobDeploymentStatus": "Waiting", "jobId": "my-job"}
        out.add("variant-" + vname + ".json", jdump(d))
    wide = copy.deepcopy(base)
    wide["spec"]["rayClusterSpec"] = wide_cluster({"spec": wide["spec"]["rayClusterSpec"]}, 64)["spec"]
    out.add("wide-64.json", jdump(wide))
    # Bytes fed as runtimeEnvYAML / entrypointResources by themselves.
    out.add("runtime-env.yaml", base["spec"]["runtimeEnvYAML"])
    out.add("resources.json", '{"Custom_1": 1, "Custom_2": 5.5}')


def admission_review(obj, op="CREATE", old=None, uid="705ab4f5-6393-11e8-b7cc-42010a800002"):
    """An AdmissionReview v1 request as kube-apiserver sends it to a webhook."""
    ref = obj if obj is not None else old  # a DELETE carries only the old object
    kind = ref.get("kind", "")
    group, _, version = ref.get("apiVersion", "v1").rpartition("/")
    meta = ref.get("metadata") or {}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "kind": {"group": group, "version": version, "kind": kind},
                        "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
                        "requestKind": {"group": group, "version": version, "kind": kind},
                        "operation": op, "namespace": meta.get("namespace", "default"),
                        "name": meta.get("name", ""), "object": obj, "oldObject": old, "dryRun": False,
                        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters",
                                                                               "system:authenticated"]},
                        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}


def gen_admission(out, samples):
    for kind in ("RayCluster", "RayJob", "RayService"):
        for name, obj in of_kind(samples, kind):
            out.add(name + ".json", jdump(admission_review(obj)))
    _, rc = next(of_kind(samples, "RayCluster"))
    changed = copy.deepcopy(rc)
    changed["spec"].setdefault("workerGroupSpecs", [{}])[0]["replicas"] = 3
    out.add("update-spec.json", jdump(admission_review(changed, "UPDATE", rc)))
    out.add("update-labels.json", jdump(admission_review(rc, "UPDATE", rc)))
    out.add("delete.json", jdump(admission_review(None, "DELETE", rc)))
    wide = wide_cluster(rc, 64)
    out.add("wide-64-update.json", jdump(admission_review(wide, "UPDATE", wide)))
    # Pod CREATEs for the agent injection webhook: each sample's head and first worker template
    # as a pod of KubeRay's (its labels and its ray start line), and one that has the agent.
    for name, obj in of_kind(samples, "RayCluster"):
        spec = obj.get("spec") or {}
        groups = [("head", spec.get("headGroupSpec") or {})] + [("worker", g) for g in spec.get("workerGroupSpecs") or []][:1]
        for node_type, group in groups:
            tmpl = copy.deepcopy(group.get("template") or {})
            pspec = tmpl.get("spec") or {}
            labels = dict((tmpl.get("metadata") or {}).get("labels") or {})
            labels.update({"ray.io/cluster": (obj.get("metadata") or {}).get("name", "c"),
                           "ray.io/node-type": node_type, "ray.io/group": group.get("groupName", "headgroup"),
                           "raywarden.io/inject-agent": "true"})
            for c in (pspec.get("containers") or [])[:1]:
                c["command"] = ["/bin/bash", "-c", "--"]
                c["args"] = ["ulimit -n 65536; ray start --dashboard-agent-listen-port=52365 --block"]
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "%s-%s-" % (name, node_type),
                                                                   "namespace": "default", "labels": labels},
                   "spec": pspec}
            out.add("pod-%s-%s.json" % (name, node_type), jdump(admission_review(pod)))
            if node_type == "worker":
                has = copy.deepcopy(pod)
                has["spec"].setdefault("containers", []).append({"name": "raywarden-agent", "image": "a"})
                out.add("pod-%s-has-agent.json" % name, jdump(admission_review(has)))


def gen_yaml(out, samples, crds):
    for name, (text, docs) in samples.items():
        out.add(name + ".yaml", text)
        for d in docs:
            if d.get("kind") == "RayService" and "serveConfigV2" in d.get("spec", {}):
                out.add(name + "-serve.yaml", d["spec"]["serveConfigV2"])
    # The largest real document, a CRD (0.9 MiB), cut at a line near 128 kB: a whole
    # one makes every run of the target take tens of milliseconds.
    crd = crds["ray.io_rayclusters"]
    out.add("crd-rayclusters-head.yaml", crd[: crd.index("\n", 128 * 1024) + 1])
    out.add("anchors.yaml", "base: &b {cpu: 1, memory: 2Gi}\nhead:\n  <<: *b\n  extra: [*b, *b]\n"
            "workers:\n- <<: *b\n  name: w1\n- <<: [*b]\n  name: w2\n")
    out.add("multi-doc.yaml", "---\na: 1\n---\n- x\n- 'y'\n---\n\"z\": !!str 3\n...\n---\n~\n")
    out.add("scalars.yaml", "s1: |\n  line one\n  line two\ns2: >-\n  folded\n  text\nn: 0x1F\nf: .inf\n"
            "b: yes\nd: 2024-01-01\nq: \"\\u00e9\\t\"\nk: !!binary aGVsbG8=\n? complex\n: key\n")


def gen_json(out, samples, api, crds, golden):
    for name, body in api.items():
        out.add("ray-" + name + ".json", body)
    for name, body in golden.items():
        out.add("golden-" + name + ".json", body)
    for name, (_, docs) in samples.items():
        out.add("sample-" + name + ".json", jdump(docs if len(docs) > 1 else docs[0]))
    out.add("crd-rayclusters.json", jdump(yaml.safe_load(crds["ray.io_rayclusters"])))
    _, rc = next(of_kind(samples, "RayCluster"))
    items = []
    for i in range(200):
        o = copy.deepcopy(rc)
        o["metadata"]["name"] = "rc-%d" % i
        o["metadata"]["resourceVersion"] = str(1000 + i)
        items.append(o)
    out.add("list-200.json", jdump({"apiVersion": "ray.io/v1", "kind": "RayClusterList",
                                    "metadata": {"resourceVersion": "1200", "continue": ""}, "items": items}))
    out.add("escapes.json", '{"s":"\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/","n":[-0,1e308,-1.5E-7,0.0],"t":true,'
            '"f":false,"z":null,"e":{},"a":[]}')
    out.add("deep.json", "[" * 64 + "]" * 64)
    out.add("too-deep.json", "[" * 65 + "]" * 65)


def gen_watchline(out, samples, golden):
    events = []
    for _, rc in of_kind(samples, "RayCluster"):
        o = copy.deepcopy(rc)
        o["metadata"].update({"namespace": "default", "uid": "6f0c8d9e-1b2a-4c3d-8e4f-000000000001",
                              "resourceVersion": "101", "generation": 1})
        events.append({"type": "ADDED", "object": o})
        o2 = copy.deepcopy(o)
        o2["metadata"]["resourceVersion"] = "102"
        o2["status"] = {"state": "ready", "readyWorkerReplicas": 1}
        events.append({"type": "MODIFIED", "object": o2})
    for name, body in golden.items():
        g = json.loads(body)
        if "headPod" in g:
            pod = copy.deepcopy(g["headPod"])
            pod["metadata"]["name"] = pod["metadata"].get("generateName", "p-") + "abcde"
            pod["status"] = {"phase": "Running", "podIP": "127.10.1.2", "conditions": [
                {"type": "Ready", "status": "True"}, {"type": "ray.io/agent-ready", "status": "True",
                                                      "reason": "AgentReady"}]}
            events.append({"type": "ADDED", "object": pod})
            events.append({"type": "DELETED", "object": pod})
    events.append({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                                  "metadata": {"resourceVersion": "12345"}}})
    events.append({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                               "message": "too old resource version: 1 (5)", "reason": "Expired",
                                               "code": 410}})
    lines = [jdump(e) for e in events]
    for i, line in enumerate(lines):
        out.add("event-%02d" % i, line + "\n")
    out.add("stream", "\n".join(lines) + "\n")
    out.add("stream-crlf-partial", "\r\n".join(lines[:3]) + "\r\n" + lines[3][: len(lines[3]) // 2])


def gen_classify(out, api):
    # First byte: the status, statuses[b % 6] = 200, 503, 404, 500, 400, connection refused.
    for name, body in api.items():
        out.add("200-" + name, b"\x00" + body)
    out.add("404-job", b"\x02" + b'{"detail": "Job raysubmit_XYZ does not exist."}')
    out.add("500-serve", b"\x03" + b"Internal Server Error: GCS unavailable")
    out.add("400-deploy", b"\x04" + b'{"error": "Invalid serve config: applications[0].route_prefix"}')
    out.add("503-raylet", b"\x01" + b"Local Raylet failed")
    out.add("refused", b"\x05")
    # RW_MAX_APPS applications on 1024 proxies (about 200 kB; a seed at the body cap
    # would slow every run of the target, libFuzzer grows inputs toward it instead).
    d = json.loads(api["serve-applications-fruit-math"])
    apps = list(d["applications"].values())
    proxies = list(d["proxies"].values())
    d["applications"] = {}
    for i in range(64):
        a = copy.deepcopy(apps[i % len(apps)])
        a["deployments"] = dict(list((a.get("deployments") or {}).items())[:1])
        a["name"] = "app_%d" % i
        a["route_prefix"] = "/app%d" % i
        d["applications"]["app_%d" % i] = a
    d["proxies"] = {}
    for i in range(1024):
        nid = "%056x" % i
        d["proxies"][nid] = {"node_id": nid, "node_ip": "10.0.%d.%d" % (i // 250, i % 250 + 1),
                             "status": proxies[i % len(proxies)].get("status", "HEALTHY")}
    out.add("200-serve-64-apps", b"\x00" + jdump(d).encode())


def http_resp(status, reason, body, headers=(), chunked=False, version="HTTP/1.1"):
    h = ["%s %d %s" % (version, status, reason)]
    h += list(headers)
    if chunked:
        h.append("Transfer-Encoding: chunked")
        parts = [body[i:i + 5] for i in range(0, len(body), 5)]
        body = "".join("%x\r\n%s\r\n" % (len(p), p) for p in parts) + "0\r\n\r\n"
    else:
        h.append("Content-Length: %d" % len(body.encode()))
    return "\r\n".join(h) + "\r\n\r\n" + body


def gen_health(out, cap):
    aio = ["Content-Type: application/text; charset=utf-8", "Date: Tue, 02 Dec 2025 10:00:00 GMT",
           "Server: Python/3.11 aiohttp/3.9.5"]
    uv = ["date: Tue, 02 Dec 2025 10:00:00 GMT", "server: uvicorn", "content-type: text/plain; charset=utf-8"]
    out.add("raylet-ok", http_resp(200, "OK", "success", aio))
    out.add("raylet-failed", http_resp(503, "Service Unavailable", "Local Raylet failed", aio))
    out.add("gcs-ok", http_resp(200, "OK", "success", aio + ["Connection: close"]))
    out.add("gcs-failed", http_resp(503, "Service Unavailable", "503: Health check failed: GCS unavailable", aio))
    out.add("proxy-ok", http_resp(200, "OK", "success", uv))
    out.add("proxy-draining", http_resp(503, "Service Unavailable", "This node is being drained.", uv))
    out.add("proxy-chunked", http_resp(200, "OK", "success", uv, chunked=True))
    out.add("chunk-ext-trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3;ext=1\r\nsuc\r\n4\r\ncess\r\n0\r\nX-Trailer: 1\r\n\r\n")
    out.add("http10-close", http_resp(200, "OK", "success", ["Connection: close"], version="HTTP/1.0"))
    out.add("no-length-eof", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsuccess")
    out.add("lf-only", "HTTP/1.1 200 OK\nContent-Length: 7\n\nsuccess")
    out.add("100-continue", "HTTP/1.1 100 Continue\r\n\r\n" + http_resp(200, "OK", "success", uv))
    # At the read buffer's cap: many headers, then the answer.
    hdrs = ["X-Pad-%03d: %s" % (i, "p" * 40) for i in range(200)]
    full = http_resp(200, "OK", "success", hdrs)
    while len(full) > cap:
        hdrs.pop()
        full = http_resp(200, "OK", "success", hdrs)
    out.add("at-cap", full)
    out.add("body-at-cap", http_resp(503, "Service Unavailable", "x" * (cap - 120), aio[:1]))


def http_req(method, target, headers, body=""):
    return "%s %s HTTP/1.1\r\n%s\r\n%s" % (method, target, "".join(h + "\r\n" for h in headers), body)


def gen_httpd(out, cap):
    kubelet = ["Host: 10.244.1.7:8080", "User-Agent: kube-probe/1.29", "Accept: */*", "Connection: close"]
    out.add("probe-readyz", http_req("GET", "/readyz", kubelet))
    out.add("probe-livez", http_req("GET", "/livez", kubelet))
    out.add("prestop-drain", http_req("GET", "/drain", ["Host: 10.244.1.7:8080", "User-Agent: Go-http-client/1.1",
                                                        "Accept-Encoding: gzip", "X-Raywarden-Token: 0123abcd"]))
    out.add("prometheus", http_req("GET", "/metrics", [
        "Host: raywarden-controller.raywarden-system.svc:8080", "User-Agent: Prometheus/2.51.0",
        "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "Accept-Encoding: gzip", "X-Prometheus-Scrape-Timeout-Seconds: 10"]))
    out.add("curl-healthz", http_req("GET", "/healthz", ["Host: 127.0.0.1:8081", "User-Agent: curl/8.5.0",
                                                         "Accept: */*"]))
    body = '{"reason":"preStop"}'
    out.add("post-body", http_req("POST", "/drain?grace=30", ["Host: x", "Content-Type: application/json",
                                                              "Content-Length: %d" % len(body)], body))
    out.add("pipelined", http_req("GET", "/readyz", kubelet[:3]) + http_req("GET", "/livez", kubelet[:3]))
    out.add("http10", "GET /readyz HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    out.add("folded-and-ws", "GET / HTTP/1.1\r\nHost:  x \r\nX-A:\tb\r\n c\r\n\r\n")
    out.add("absolute-uri", http_req("GET", "http://10.0.0.1:8080/readyz?x=%20y#f", ["Host: 10.0.0.1"]))
    # At the head's cap: the most header fields the parser keeps (RW_HTTPD_MAX_HEADERS),
    # then padding up to the cap; and one long request target.
    fields = ["X-Field-%02d: %s" % (i, "v" * 60) for i in range(64)]
    head = http_req("GET", "/readyz", fields)
    out.add("64-fields", head)
    out.add("65-fields", http_req("GET", "/readyz", fields + ["X-One-More: 1"]))
    pad = cap - len(http_req("GET", "/readyz", ["Host: x", "X-Pad: "]))
    out.add("head-at-cap", http_req("GET", "/readyz", ["Host: x", "X-Pad: " + "a" * pad]))
    out.add("head-over-cap-unterminated", "GET /readyz HTTP/1.1\r\nX-Pad: " + "a" * (cap - 29))
    target = "/" + "t" * (cap - len(http_req("GET", "/", ["Host: x"])))
    out.add("target-at-cap", http_req("GET", target, ["Host: x"]))


def wire_seal(typ, payload, seq=7, session=0x1122334455667788, ts=1700000000000):
    kid = hashlib.sha256(WIRE_KEY).digest()[:4]
    hdr = b"RWP\x01" + struct.pack(">HHI", 1, typ, 0) + kid + struct.pack(">QQQI", session, seq, ts, len(payload))
    msg = hdr + payload
    return msg + hmac.new(WIRE_KEY, msg, hashlib.sha256).digest()


def wire_payloads():
    """Report and reply payloads from the sealed seeds test_wire.c writes."""
    d = os.path.join(CORPUS_OUT, "fuzz_wire")
    out = {}
    for f in ("report_head_full", "report_worker", "reply_full", "reply_small"):
        with open(os.path.join(d, f), "rb") as fh:
            m = fh.read()
        typ = struct.unpack(">H", m[6:8])[0]
        out[f] = (typ, json.loads(m[44:-32]))
    return out


def big_report(rep, cap):
    """The head report with as many apps, deployments and nodes as the decoder keeps,
    shrunk until its sealed message fits the wire cap."""
    r = copy.deepcopy(rep)
    serve = r.setdefault("serve", {})
    apps0 = serve.get("apps") or [{"name": "a", "status": "RUNNING", "deployments": []}]
    nodes0 = serve.get("nodes") or [{"node_id": "0" * 56, "node_ip": "10.0.0.1", "proxy_status": "HEALTHY"}]
    for n_apps, n_deps, n_nodes in ((64, 64, 4096), (64, 32, 4096), (64, 16, 2048), (32, 16, 1024),
                                    (16, 8, 256), (8, 4, 128)):
        apps = []
        for i in range(n_apps):
            a = copy.deepcopy(apps0[i % len(apps0)])
            a["name"] = "app_%d" % i
            deps = (a.get("deployments") or [{"name": "D", "status": "HEALTHY"}])
            a["deployments"] = [dict(copy.deepcopy(deps[j % len(deps)]), name="Dep%d" % j) for j in range(n_deps)]
            apps.append(a)
        nodes = []
        for i in range(n_nodes):
            nd = copy.deepcopy(nodes0[i % len(nodes0)])
            nd["node_id"] = "%056x" % i
            nd["node_ip"] = "10.1.%d.%d" % (i // 250, i % 250 + 1)
            nodes.append(nd)
        serve["apps"], serve["nodes"] = apps, nodes
        payload = jdump(r).encode()
        if len(payload) + 44 + 32 <= cap:
            return payload
    return jdump(rep).encode()


def gen_wire(out, cap):
    pl = wire_payloads()
    for name, (typ, obj) in pl.items():
        out.add(name + "-seq1", wire_seal(typ, jdump(obj).encode(), seq=1))
        # The payload alone: the target feeds non-envelope inputs to both decoders.
        out.add(name + "-payload", jdump(obj))
    typ, rep = pl["report_head_full"]
    for field, value in (("ready", False), ("draining", True), ("live", False)):
        r = dict(rep, **{field: value})
        out.add("report-%s-%s" % (field, str(value).lower()), wire_seal(typ, jdump(r).encode()))
    # Big reports cost each run of the target tens of milliseconds: one of about 100 kB
    # here; the largest message (toward RW_WIRE_MAX_MSG) goes to fuzz_hub_sp, whose
    # framing is cheap, and libFuzzer grows inputs up to the cap from there.
    out.add("report-large", wire_seal(typ, big_report(rep, 100 * 1024)))
    out.add("bad-mac", wire_seal(typ, jdump(rep).encode())[:-1] + b"\x00")
    out.add("other-key-id", b"RWP\x01\x00\x01\x00\x01\x00\x00\x00\x00\xde\xad\xbe\xef" + wire_seal(typ, b"{}")[16:])
    out.add("len-too-big", wire_seal(typ, b"{}")[:40] + struct.pack(">I", WIRE_MAX))
    return pl


def sp_frame(msg, rid=1, hops=()):
    bt = b"".join(struct.pack(">I", h) for h in hops) + struct.pack(">I", 0x80000000 | rid)
    return struct.pack(">Q", len(bt) + len(msg)) + bt + msg


def gen_hub_sp(out, cap, wire_out, big_msg):
    msgs = [v for k, v in sorted(wire_out.seeds.items()) if k.endswith("-seq1")]
    out.add("one-report", SP_HEADER + sp_frame(msgs[0]))
    out.add("three-reports", SP_HEADER + b"".join(sp_frame(m, rid=i + 1) for i, m in enumerate(msgs[:3])))
    out.add("hops", SP_HEADER + sp_frame(msgs[1], rid=9, hops=(1, 2, 3)))
    out.add("partial", SP_HEADER + sp_frame(msgs[0]) + sp_frame(msgs[1])[:50])
    out.add("max-message", SP_HEADER + sp_frame(big_msg))
    over = struct.pack(">Q", WIRE_MAX + 4 + 1) + struct.pack(">I", 0x80000001)
    out.add("over-cap-declared", SP_HEADER + over + b"RWP\x01")
    out.add("header-only", SP_HEADER)


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: {cluster}
  cluster:
    server: {server}
{cluster_extra}contexts:
- name: ctx
  context:
    cluster: {cluster}
    user: u
    namespace: team-a
- name: other
  context: {{cluster: nowhere, user: nobody}}
current-context: {current}
users:
- name: u
  user:
{user}"""


def gen_kubeconfig(out):
    ca = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrVENDQVRlZ0F3SUJBZ0lJWHg9PQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg=="
    variants = {
        "token": dict(server="https://127.0.0.1:6443", cluster_extra="    certificate-authority-data: %s\n" % ca,
                      user="    token: eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.e30.c2ln\n"),
        "client-cert": dict(server="https://kube.example:443/", cluster_extra="    certificate-authority: ca.crt\n",
                            user="    client-certificate-data: %s\n    client-key-data: %s\n" % (ca, ca)),
        "cert-files": dict(server="https://[::1]:6443", cluster_extra="    insecure-skip-tls-verify: true\n",
                           user="    client-certificate: /abs/client.crt\n    client-key: rel/client.key\n"),
        "token-file": dict(server="http://127.0.0.1:8080", cluster_extra="",
                           user="    tokenFile: /var/run/secrets/token\n"),
        "basic": dict(server="https://127.0.0.1:6443", cluster_extra="    tls-server-name: kubernetes\n",
                      user="    username: admin\n    password: \"p@ss: word\"\n"),
        "exec": dict(server="https://127.0.0.1:6443", cluster_extra="",
                     user="    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n"
                          "      args: [eks, get-token]\n"),
    }
    for name, v in variants.items():
        out.add(name + ".yaml", KUBECONFIG.format(cluster="c1", current="ctx", **v))
    v = variants["token"]
    out.add("missing-context.yaml", KUBECONFIG.format(cluster="c1", current="absent", **v))
    doc = yaml.safe_load(KUBECONFIG.format(cluster="c1", current="ctx", **v))
    out.add("as-json.json", jdump(doc))
    # Many clusters, contexts and users before the current one (near 128 kB).
    for kind in ("clusters", "contexts", "users"):
        base = doc[kind][0]
        doc[kind] = [dict(copy.deepcopy(base), name="%s-%d" % (base["name"], i)) for i in range(350)] + [base]
    text = yaml.safe_dump(doc, sort_keys=False)
    out.add("many-entries.yaml", text)


def gen_krmetrics(out, samples):
    """Objects as the metrics collectors read them (KubeRay's samples with a status), and /proc text."""
    for kind, status in (("RayCluster", {"conditions": [{"type": "RayClusterProvisioned", "status": "True"}]}),
                         ("RayJob", {"jobDeploymentStatus": "Running"}),
                         ("RayService", {"numServeEndpoints": 2, "conditions": [
                             {"type": "Ready", "status": "True"}, {"type": "UpgradeInProgress", "status": "False"}]})):
        for name, obj in list(of_kind(samples, kind))[:2]:
            obj = copy.deepcopy(obj)
            obj.setdefault("metadata", {}).update(namespace="default", uid="0b7c5a2e-1111-4e5e-9d7a-3f2b1c0d9e8f")
            obj["status"] = status
            out.add(stem(name) + ".json", jdump(obj))
    out.add("proc-stat.txt", "1234 (raywarden (ctl)) S 1 1234 1234 0 -1 4194560 500 0 0 0 150 25 0 0 20 0 3 0 "
            "98765 123456789 4321 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n")
    out.add("proc-btime.txt", "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1700000000\nprocesses 9\n")


def gen_redis(out, samples, cap):
    # First byte: namespace nss[b % 3], domain doms[(b >> 2) % 4], output size
    # 1 + (b >> 4) * 40, or the cleanup job's own sizing when b >> 4 == 15.
    addrs = set()
    for _, rc in of_kind(samples, "RayCluster"):
        gcs = (rc.get("spec") or {}).get("gcsFaultToleranceOptions") or {}
        if gcs.get("redisAddress"):
            addrs.add(gcs["redisAddress"])
        for c in rc["spec"]["headGroupSpec"]["template"]["spec"].get("containers", []):
            for e in c.get("env") or []:
                if e.get("name") == "RAY_REDIS_ADDRESS" and e.get("value"):
                    addrs.add(e["value"])
    addrs |= {"redis:6379", "redis.team-a:6379", "redis.team-a.svc:6379", "redis.default.svc.cluster.local:6379",
              "redis://user:pw@redis:6379", "rediss://redis-tls:6380", "10.0.0.7:6379", "[fd00::7]:6379",
              "redis-0.redis-headless:6379", "redis:6379,redis-replica:6379", "redis", "redis.corp.example.:6379"}
    for i, a in enumerate(sorted(addrs)):
        for sel in (0xf0, 0x25, 0x5a):
            out.add("addr-%02d-%02x" % (i, sel), bytes([sel]) + a.encode())
    label = "a" * 63
    out.add("long-host", b"\xf0" + (".".join([label] * 4) + ":6379").encode())
    out.add("at-cap", b"\xf0" + b"r" * (cap - 6) + b":6379")


# ----------------------------------------------------------------------------- main


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.path.join(os.path.dirname(SRC), "shared", "corpus")
    if not os.path.isdir(default):
        default = "/work/shared/corpus"
    ap.add_argument("--corpus", default=default, help="the shared corpus (default %(default)s)")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.corpus):
        raise SystemExit("no shared corpus at %s (--corpus DIR)" % args.corpus)
    samples, api, crds, golden = load_sources(args.corpus)
    caps = max_lens()
    outs = {}

    def target(name):
        outs[name] = Out(name, caps.get(name, caps["default"]))
        return outs[name]

    gen_rc_build(target("fuzz_rc_build"), samples)
    gen_rs(target("fuzz_rs"), samples)
    gen_rayjob(target("fuzz_rayjob"), samples)
    gen_yaml(target("fuzz_yaml"), samples, crds)
    gen_json(target("fuzz_json"), samples, api, crds, golden)
    gen_watchline(target("fuzz_watchline"), samples, golden)
    gen_classify(target("fuzz_agent_classify"), api)
    gen_health(target("fuzz_agent_health"), caps["fuzz_agent_health"])
    gen_httpd(target("fuzz_httpd"), caps["fuzz_httpd"])
    wire = target("fuzz_wire")
    gen_wire(wire, caps["fuzz_wire"])
    typ, rep = wire_payloads()["report_head_full"]
    big_msg = wire_seal(typ, big_report(rep, caps["fuzz_wire"]))
    gen_hub_sp(target("fuzz_hub_sp"), caps["fuzz_hub_sp"], wire, big_msg)
    gen_kubeconfig(target("fuzz_kubeconfig"))
    gen_admission(target("fuzz_admission"), samples)
    gen_redis(target("fuzz_redis_qualify"), samples, caps["fuzz_redis_qualify"])
    gen_krmetrics(target("fuzz_krmetrics"), samples)
    for name, o in sorted(outs.items()):
        n, size = o.write()
        print("%-20s %3d generated seeds, %8d bytes, largest %d (max_len %d)" % (
            name, n, size, max(len(v) for v in o.seeds.values()), o.cap))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

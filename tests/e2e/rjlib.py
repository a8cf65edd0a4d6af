"""Helpers of the RayJob end-to-end tests (tests/e2e/test_rayjob_*.py) on top of clusterlib:
KubeRay's ray-job.sample.yaml as objects to derive variants from, the RayJob's status and
Events, and a gate file the test opens to let a Ray job's driver finish (a condition the test
controls, instead of a driver that sleeps for a guessed time)."""

import copy
import http.client
import json
import os
import shlex
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.error
import urllib.request

from clusterlib import APIError, LocalClusterCase, wait_for

NS = "default"
RJ_PATH = "/apis/ray.io/v1/namespaces/%s/rayjobs" % NS
SAMPLE = "ray-job.sample.yaml"


def sample_objects(lc, path):
    """The documents of a sample as JSON objects, converted by kubectl (no YAML module needed)."""
    text = lc.kubectl("create", "--dry-run=client", "-o", "json", "-f", path)
    dec, i, out = json.JSONDecoder(), 0, []
    while i < len(text):  # one JSON document per object, one after the other
        if text[i].isspace():
            i += 1
            continue
        o, i = dec.raw_decode(text, i)
        out += o["items"] if o.get("kind") == "List" else [o]
    return out


def split_sample(lc, path):
    """(RayJob, [the other objects]) of a RayJob sample."""
    objs = sample_objects(lc, path)
    rj = [o for o in objs if o["kind"] == "RayJob"][0]
    return rj, [o for o in objs if o["kind"] != "RayJob"]


def variant(base, name, spec=None, small=False):
    """A copy of the sample's RayJob named name, spec keys replaced by spec (None deletes a key).
    small: no worker pods and no runtime env, for lifecycle tests where the cluster's shape does
    not matter (the head alone is ready within about a second; no pip stand-ins to install)."""
    rj = copy.deepcopy(base)
    rj["metadata"] = {"name": name, "namespace": NS}
    if small:
        for g in rj["spec"]["rayClusterSpec"].get("workerGroupSpecs", []):
            g["replicas"] = 0
            g["minReplicas"] = 0
        rj["spec"].pop("runtimeEnvYAML", None)
    for k, v in (spec or {}).items():
        if v is None:
            rj["spec"].pop(k, None)
        else:
            rj["spec"][k] = v
    return rj


def apply_obj(lc, obj):
    lc.kubectl("apply", "-f", "-", input=json.dumps(obj))


def rayjob(lc, name):
    return lc.get_or_none(RJ_PATH + "/" + name)


def status(lc, name):
    rj = rayjob(lc, name)
    return (rj or {}).get("status") or {}


def wait_status(lc, name, pred, timeout, what):
    """Wait until pred(status) holds; return the status."""
    def check():
        st = status(lc, name)
        return st if pred(st) else None
    return wait_for(check, timeout, 0.1, "RayJob %s: %s" % (name, what))


def wait_deployment(lc, name, want, timeout=60):
    want = (want,) if isinstance(want, str) else tuple(want)
    return wait_status(lc, name, lambda st: st.get("jobDeploymentStatus") in want, timeout,
                       "jobDeploymentStatus in %s" % (want,))


def terminal(lc, name):
    """The status when the RayJob is Complete or Failed, else None."""
    st = status(lc, name)
    return st if st.get("jobDeploymentStatus") in ("Complete", "Failed") else None


def hold_status(lc, name, pred, what, seconds=None, until=None, timeout=None):
    """Check that pred(status) holds at every poll: for `seconds` (a window in which something must
    not happen), or until until() returns a true value (returned; an error after timeout)."""
    end = time.monotonic() + (seconds if until is None else timeout)
    while True:
        st = status(lc, name)
        if not pred(st):
            raise AssertionError("RayJob %s: not %s: %s" % (name, what, st))
        if until is not None:
            v = until()
            if v:
                return v
        if time.monotonic() >= end:
            if until is not None:
                raise AssertionError("RayJob %s: %s: the awaited condition did not come within %ss"
                                     % (name, what, timeout))
            return st
        time.sleep(0.1)


def agent_log(lc, pod):
    """The raywarden-agent container's log of a pod."""
    return lc.kubectl("logs", pod, "-n", NS, "-c", "raywarden-agent")


def events(lc, name, reason=None):
    return lc.events(NS, name, reason)


def reasons(lc, name):
    return [e.get("reason") for e in events(lc, name)]


def submitter_job(lc, name):
    return lc.get_or_none("/apis/batch/v1/namespaces/%s/jobs/%s" % (NS, name))


def submitter_pods(lc, name, include_deleting=True):
    items = lc.get("/api/v1/namespaces/%s/pods" % NS, labelSelector="batch.kubernetes.io/job-name=" + name)["items"]
    if not include_deleting:
        items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return items


def rayclusters(lc, rayjob_name):
    """The RayClusters a RayJob made (label ray.io/originated-from-cr-name)."""
    items = lc.get(lc.rc_path(NS), labelSelector="ray.io/originated-from-cr-name=" + rayjob_name)["items"]
    return items


def head_pod(lc, cluster):
    pods = lc.pods(NS, cluster, "head")
    return pods[0] if pods else None


def delete_rayjob(lc, name):
    try:
        lc.delete(RJ_PATH + "/" + name)
    except APIError as e:
        if e.code != 404:
            raise


def wait_rayjob_gone(lc, name, timeout=30):
    wait_for(lambda: rayjob(lc, name) is None, timeout, 0.1, "RayJob %s gone" % name)


class Gate:
    """A file the test creates to let a driver finish. The driver polls for it (the simulated
    pods see the host's /tmp; the local cluster's state directory is there)."""

    def __init__(self, lc, name):
        self.path = os.path.join(lc.state, "gate-" + name)

    def entrypoint(self, then='print("released")'):
        code = ("import os, time; any(time.sleep(0.05) for _ in iter(lambda: os.path.exists(%s), True)); %s"
                % (json.dumps(self.path), then))
        return "python -c " + shlex.quote(code)

    def then_open(self):
        """Python code that opens this gate (for another gate's entrypoint: the driver's exit)."""
        return 'open(%s, "w").close(); print("released")' % json.dumps(self.path)

    def is_open(self):
        return os.path.exists(self.path)

    def open(self):
        with open(self.path, "w") as f:
            f.write("go\n")


def _dashboard(head_ip, path):
    try:
        with urllib.request.urlopen("http://%s:8265%s" % (head_ip, path), timeout=10) as r:
            return json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def ray_job_status(lc, head_ip, job_id):
    """The Ray job as the head's dashboard has it (the test's own look, not the controller's)."""
    return _dashboard(head_ip, "/api/jobs/" + job_id)


def ray_job_logs(head_ip, job_id):
    return (_dashboard(head_ip, "/api/jobs/%s/logs" % job_id) or {}).get("logs", "")


def ray_jobs(head_ip):
    return _dashboard(head_ip, "/api/jobs/") or []


class Watcher:
    """Watches collections of the API server from now on and keeps every event in the order of
    its resourceVersion (one global counter in the simulated API server), so a test can check
    the order of things that happen faster than a poll would see: a RayCluster created only
    after the previous attempt's last pod was gone, Suspending before Suspended."""

    def __init__(self, lc, paths):
        self.lc = lc
        self.events = []  # (rv, type, path, object)
        self.arrived = {}  # rv -> time.time() when its event arrived (an upper bound of its time)
        self.lock = threading.Lock()
        self.conns = []
        self.threads = []
        for path in paths:
            rv = lc.get(path)["metadata"]["resourceVersion"]
            t = threading.Thread(target=self._run, args=(path, rv), daemon=True)
            self.threads.append(t)
        for t in self.threads:
            t.start()

    def _run(self, path, rv):
        a = self.lc.api()
        u = urllib.parse.urlsplit(a["url"])
        ctx = ssl.create_default_context(cafile=os.path.join(self.lc.state, "ca.crt"))
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=600)
        with self.lock:
            self.conns.append(conn)
        try:
            conn.request("GET", "%s?watch=1&resourceVersion=%s&timeoutSeconds=600" % (path, rv),
                         headers={"Authorization": "Bearer " + a["token"]})
            r = conn.getresponse()
            while True:
                line = r.readline()
                if not line:
                    return
                ev = json.loads(line)
                obj = ev.get("object") or {}
                orv = int((obj.get("metadata") or {}).get("resourceVersion") or 0)
                with self.lock:
                    self.events.append((orv, ev.get("type"), path, obj))
                    self.arrived.setdefault(orv, time.time())
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            return  # closed by stop() (http.client may then fail in any of these ways)

    def wait_rv(self, rv, timeout=10):
        """Wait until an event at or after resourceVersion rv has arrived (a watch lags the GET
        that showed the object)."""
        def seen():
            with self.lock:
                return any(e[0] >= int(rv) for e in self.events)
        wait_for(seen, timeout, 0.05, "watch event at resourceVersion %s" % rv)

    def stop(self):
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass
            c.close()
        for t in self.threads:
            t.join(5)

    def ordered(self):
        with self.lock:
            return sorted(self.events, key=lambda e: e[0])


class RayJobCase(LocalClusterCase):
    """A local cluster with KubeRay's ray-job.sample.yaml split into the RayJob to derive variants
    from (cls.base) and its other objects (the ConfigMap with the driver's code), applied."""
    SAMPLE = SAMPLE

    @classmethod
    def setUpCluster(cls):
        cls.base, others = split_sample(cls.lc, cls.sample)
        for o in others:
            apply_obj(cls.lc, o)

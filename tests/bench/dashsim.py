#!/usr/bin/env python3
"""dashsim: one simulated Ray dashboard job API for every RayCluster of a benchmark (Python stdlib).

KubeRay's RayJob controller (v1.5.0, K8sJobMode) polls `GET http://<cluster>-head-svc.<ns>.svc.
cluster.local:8265/api/jobs/<jobId>` on every reconcile of a Running RayJob. With the fake kubelet
no Ray runs, so the benchmark points every head Service name at this one process (its private
/etc/hosts) and tells it when each RayJob's submitter started (POST /_sim/start {"rayjob": NAME}).
The job then follows the timeline rw-agentload uses for raywarden: NOT_FOUND (404) for
--submit-delay-ms (the submitter's `ray job submit`), PENDING for --pending-ms, RUNNING for
--running-ms, then SUCCEEDED. A job id is "<rayjob>-<5 characters>" (KubeRay's GenerateRayJobId).

    python3 tests/bench/dashsim.py --ip 127.0.9.9 --info FILE [--submit-delay-ms 1000]
        [--pending-ms 1000] [--running-ms 5000]

Writes {"pid", "url"} to FILE once it listens. GET /_sim/stats: requests by kind and in total.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTS = {}  # rayjob name -> time its submitter started
COUNTS = {}  # request kind -> count
LOCK = threading.Lock()
CFG = {}


def job_info(job_id, now):
    """The dashboard's JobDetails of job_id at `now`, or None (not submitted yet)."""
    with LOCK:
        t0 = STARTS.get(job_id[:-6])
    if t0 is None:
        return None
    t_sub = t0 + CFG["submit"]
    t_run = t_sub + CFG["pending"]
    t_end = t_run + CFG["running"]
    if now < t_sub:
        return None
    status = "PENDING" if now < t_run else "RUNNING" if now < t_end else "SUCCEEDED"
    d = {"type": "SUBMISSION", "job_id": None, "submission_id": job_id, "status": status,
         "entrypoint": "python -c 'import time; time.sleep(5)'", "message": "Job %s." % status.lower(),
         "start_time": int(t_sub * 1000), "metadata": {}, "runtime_env": {}}
    if status != "PENDING":
        d["job_id"] = "%08x" % (abs(hash(job_id)) & 0xffffffff)
        d["driver_info"] = {"id": d["job_id"], "node_ip_address": "10.0.0.1", "pid": "1"}
    if status == "SUCCEEDED":
        d["end_time"] = int(t_end * 1000)
        d["driver_exit_code"] = 0
    return d


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end

    def log_message(self, *a):
        pass

    def answer(self, code, obj):
        body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if not isinstance(obj, bytes) else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def count(self, kind):
        with LOCK:
            COUNTS[kind] = COUNTS.get(kind, 0) + 1

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/_sim/stats":
            with LOCK:
                return self.answer(200, {"total": sum(COUNTS.values()), "by_kind": dict(COUNTS),
                                         "started": len(STARTS)})
        if path.startswith("/api/jobs/") and len(path) > len("/api/jobs/"):
            job_id = path[len("/api/jobs/"):].strip("/")
            d = job_info(job_id, time.time())
            self.count("get_job_" + (d["status"] if d else "NOT_FOUND"))
            if d is None:
                return self.answer(404, b"Job %s does not exist" % job_id.encode())
            return self.answer(200, d)
        if path in ("/api/jobs/", "/api/jobs"):
            self.count("list_jobs")
            now = time.time()
            with LOCK:
                names = list(STARTS)
            return self.answer(200, [d for d in (job_info(n + "-xxxxx", now) for n in names) if d])
        if path == "/api/version":
            self.count("version")
            return self.answer(200, {"version": "4", "ray_version": "2.52.0", "ray_commit": "sim"})
        self.count("other " + path[:40])
        return self.answer(404, b"not found")

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if path == "/_sim/start":
            name = json.loads(body)["rayjob"]
            with LOCK:
                STARTS.setdefault(name, time.time())
            return self.answer(200, {"ok": True})
        self.count("post " + path[:40])
        return self.answer(404, b"not found")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ip", required=True)
    ap.add_argument("--port", type=int, default=8265)
    ap.add_argument("--info", required=True)
    ap.add_argument("--submit-delay-ms", type=int, default=1000)
    ap.add_argument("--pending-ms", type=int, default=1000)
    ap.add_argument("--running-ms", type=int, default=5000)
    a = ap.parse_args()
    CFG.update(submit=a.submit_delay_ms / 1000.0, pending=a.pending_ms / 1000.0, running=a.running_ms / 1000.0)
    ThreadingHTTPServer.daemon_threads = True
    # A client that closes its keep-alive connection is no error worth a traceback.
    ThreadingHTTPServer.handle_error = lambda self, request, address: None
    ThreadingHTTPServer.request_queue_size = 1024
    srv = ThreadingHTTPServer((a.ip, a.port), Handler)
    with open(a.info + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "url": "http://%s:%d" % (a.ip, a.port)}, f)
    os.replace(a.info + ".tmp", a.info)
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

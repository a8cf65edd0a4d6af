"""Dashboard head (8265) and dashboard agent (52365) routes.

Sources: healthz_head.py / healthz_agent.py (ray-apis.md 1.1-1.3),
serve_head.py (3.1-3.3), job_head.py (4), dashboard version.py (/api/version).
Bodies are aiohttp's: web.Response(text=...) is text/plain; charset=utf-8,
content_type="application/text" becomes application/text; charset=utf-8, an
empty web.Response() is application/octet-stream, and HTTPException(reason=r)
is "<code>: <r>" with r as the status line's phrase.
"""

import json
import os
import re
import time
import traceback

from . import common, packaging, ws
from .gcs import GcsError
from .httpd import FaultState, Response, Upgrade, aiohttp_error, aiohttp_json, aiohttp_not_found, text
from .jobs import TERMINAL, JobConflict, JobNotFound, JobRequestError

# JobManager.LOG_TAIL_SLEEP_S: the tail re-reads the log this often when idle.
LOG_TAIL_SLEEP_S = 1.0
from .serve_schema import SchemaError, validate

EMPTY_SERVE = '{"deploy_mode": "MULTI_APP", "controller_info": {}, "proxies": {}, "applications": {}, "target_capacity": null}'

UNREACHABLE = ("UNAVAILABLE", "UNKNOWN", "DEADLINE_EXCEEDED")


def app_text(status, body):
    return text(status, body, "application/text; charset=utf-8")


def traceback_500(exc):
    # aiohttp's unhandled exception / Ray's "500 with a traceback as text".
    body = "Traceback (most recent call last):\n" + "".join(traceback.format_tb(exc.__traceback__)) + \
        "%s: %s\n" % (type(exc).__name__, exc)
    return text(500, body)


def method_not_allowed(allowed):
    r = aiohttp_error(405, "Method Not Allowed")
    r.headers.append(("Allow", ",".join(allowed)))
    return r


class DashboardHead:
    def __init__(self, node):
        self.node = node
        # Fault of the Jobs routes alone (POST /fault {"component": "jobs"}).
        self.jobs_fault = FaultState()

    def handle(self, req):
        p = req.path
        if p.startswith("/api/jobs/") or p.startswith("/api/packages/"):
            f = self.jobs_fault
            if f.mode == "hang":
                f.wait_while_hung(lambda: self.node.dashboard is not None and self.node.dashboard.running)
                if f.mode == "hang":
                    return None
            if f.mode == "slow" and f.delay_ms > 0:
                time.sleep(f.delay_ms / 1000.0)
            if f.mode == "error":
                # aiohttp's answer to a handler that raised (web_protocol.py).
                return text(500, "500 Internal Server Error\n\nServer got itself in trouble")
        m = re.fullmatch(r"/api/packages/([^/]+)/([^/]+)", p)
        if m:
            return self.package(req, m.group(1), m.group(2))
        if p == "/api/gcs_healthz":
            return self.gcs_healthz()
        if p == "/api/version":
            return aiohttp_json(200, {"version": common.DASHBOARD_API_VERSION, "ray_version": common.RAY_VERSION,
                                      "ray_commit": common.RAY_COMMIT, "session_name": self.node.session_name})
        if p == "/api/serve/applications/":
            if req.method == "GET":
                return self.serve_get(req)
            if req.method == "PUT":
                return self.serve_put(req)
            if req.method == "DELETE":
                return self.serve_delete()
            return method_not_allowed(["DELETE", "GET", "PUT"])
        if p == "/api/jobs/":
            if req.method == "POST":
                return self.job_submit(req)
            if req.method == "GET":
                return self.jobs_call(lambda jm: aiohttp_json(200, [jm.details(i) for i in jm.list()]))
            return method_not_allowed(["GET", "POST"])
        m = re.fullmatch(r"/api/jobs/([^/]+)(/stop|/logs|/logs/tail)?", p)
        if m:
            return self.job_route(req, m.group(1), m.group(2) or "")
        return aiohttp_not_found()

    # ---- health
    def gcs_healthz(self):
        # HealthzHead.health_check: check_alive([], timeout=0.1).
        try:
            self.node.gcs_client(0.1).call("check_alive", {"node_ids": []}, timeout=0.1)
        except GcsError as exc:
            return aiohttp_error(503, "Health check failed: %s" % exc)
        return app_text(200, "success")

    # ---- serve (ray-apis.md 3)
    def _controller_reachable(self):
        try:
            self.node.gcs_client().call("check_alive", {"node_ids": []}, timeout=2.0)
            return None
        except GcsError as exc:
            return text(503, "Failed to get a response from the controller. The GCS may be down, please retry "
                        "later: %s" % exc)

    def serve_get(self, req):
        api_type = req.query.get("api_type")
        if api_type is not None and api_type not in ("imperative", "declarative"):
            return text(400, "Invalid 'api_type' value: '%s'. Must be one of: imperative, declarative" % api_type)
        err = self._controller_reachable()
        if err is not None:
            return err
        details = self.node.controller.details()
        if details is None:
            return Response(200, EMPTY_SERVE, "application/json; charset=utf-8")
        return aiohttp_json(200, details)

    def serve_put(self, req):
        try:
            cfg = json.loads(req.body)
        except ValueError as exc:
            return traceback_500(exc)
        try:
            validate(cfg)
        except SchemaError as exc:
            return text(400, str(exc))
        err = self._controller_reachable()
        if err is not None:
            return err
        self.node.controller.deploy(cfg)
        return Response(200, b"", "application/octet-stream")

    def serve_delete(self):
        err = self._controller_reachable()
        if err is not None:
            return err
        self.node.controller.shutdown()
        return Response(200, b"", "application/octet-stream")

    # ---- jobs (ray-apis.md 4)
    def jobs_call(self, fn):
        try:
            return fn(self.node.jobs)
        except GcsError as exc:
            return traceback_500(exc)

    def job_submit(self, req):
        try:
            body = json.loads(req.body)
        except ValueError as exc:
            # Newer Ray parses outside the try: malformed JSON is a 500.
            return traceback_500(exc)
        try:
            sid = self.node.jobs.submit(body)
        except JobRequestError as exc:
            return text(400, "Traceback (most recent call last):\n  File \"job_head.py\", line 1, in submit_job\n"
                        "%s\n" % exc)
        except ValueError as exc:
            # The agent's 400 is re-raised by the head as RuntimeError -> 500.
            return text(500, "Traceback (most recent call last):\n  File \"/home/ray/anaconda3/lib/python3.11/"
                        "site-packages/ray/dashboard/modules/job/job_head.py\", line 380, in submit_job\n"
                        "    resp = await job_agent_client.submit_job_internal(submit_request)\n"
                        "RuntimeError: Request failed with status code 400: Traceback (most recent call last):\n"
                        "  File \"/home/ray/anaconda3/lib/python3.11/site-packages/ray/dashboard/modules/job/"
                        "job_agent.py\", line 45, in submit_job\n    submission_id = await self.get_job_manager()"
                        ".submit_job(\nValueError: %s\n.\n" % exc)
        except GcsError as exc:
            return traceback_500(exc)
        return aiohttp_json(200, {"job_id": sid, "submission_id": sid})

    def job_route(self, req, jid, sub):
        jm = self.node.jobs
        try:
            if sub == "" and req.method == "GET":
                return aiohttp_json(200, jm.details(jm.get(jid)))
            if sub == "" and req.method == "DELETE":
                try:
                    jm.delete(jid)
                except JobConflict as exc:
                    return text(500, "Traceback (most recent call last):\n  File \"job_head.py\", line 1, in "
                                "delete_job\nRuntimeError: %s\n" % exc)
                return aiohttp_json(200, {"deleted": True})
            if sub == "/stop" and req.method == "POST":
                return aiohttp_json(200, {"stopped": jm.stop(jid)})
            if sub == "/logs" and req.method == "GET":
                return aiohttp_json(200, {"logs": jm.logs(jid)})
            if sub == "/logs/tail" and req.method == "GET":
                info = jm.get(jid)
                key = req.headers.get("Sec-WebSocket-Key")
                if not key or "websocket" not in (req.headers.get("Upgrade") or "").lower():
                    # aiohttp WebSocketResponse.prepare() on a plain request.
                    return aiohttp_error(400, "Bad Request")
                return Upgrade([("Upgrade", "websocket"), ("Connection", "upgrade"),
                                ("Sec-WebSocket-Accept", ws.accept_key(key)),
                                ("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())),
                                ("Server", "Python/3.11 aiohttp/3.11.16")],
                               lambda rfile, wfile, alive: self.tail(info["submission_id"], wfile, alive))
        except JobNotFound:
            return text(404, "Job %s does not exist" % jid)
        except GcsError as exc:
            return traceback_500(exc)
        if sub == "":
            return method_not_allowed(["DELETE", "GET"])
        return method_not_allowed(["POST"] if sub == "/stop" else ["GET"])


    def tail(self, sid, wfile, alive):
        """job_manager.py tail_job_logs: send new log text as it appears; once the
        job is terminal, one more read, then close (1000)."""
        jm = self.node.jobs
        path = jm._log_path(sid)
        pos = 0
        finished = False
        while alive():
            chunk = ""
            if os.path.exists(path):
                with open(path, "r", encoding="utf-8", errors="replace") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            if chunk:
                wfile.write(ws.encode_frame(0x1, chunk.encode("utf-8"), False))
                wfile.flush()
                continue
            if finished:
                break
            try:
                finished = jm.get(sid)["status"] in TERMINAL
            except (JobNotFound, GcsError):
                break
            if not finished:
                time.sleep(LOG_TAIL_SLEEP_S)
        wfile.write(ws.encode_frame(0x8, b"\x03\xe8", False))
        wfile.flush()

    # ---- runtime_env packages (job_head.py get_package / upload_package)
    def package(self, req, protocol, name):
        uri = "%s://%s" % (protocol, name)
        if protocol != "gcs":
            return text(500, "Traceback (most recent call last):\nValueError: Invalid protocol for runtime_env URI "
                        "\"%s\". Supported protocols: ['GCS', 'CONDA', 'PIP', 'UV', 'HTTPS', 'S3', 'GS', 'FILE']."
                        % uri)
        gcs = self.node.gcs_client()
        try:
            if req.method == "GET":
                if gcs.call("kv_get", {"ns": packaging.KV_NS, "key": uri}) is None:
                    return text(404, "Package %s does not exist" % uri)
                return Response(200, b"", "application/octet-stream")
            if req.method == "PUT":
                if len(req.body) > packaging.MAX_PACKAGE_BYTES:
                    return text(500, "Package size exceeds the simulator's limit of %d bytes" %
                                packaging.MAX_PACKAGE_BYTES)
                gcs.call("kv_put", {"ns": packaging.KV_NS, "key": uri, "value": packaging.encode(req.body),
                                    "overwrite": True}, timeout=10.0)
                return Response(200, b"", "application/octet-stream")
        except GcsError as exc:
            return traceback_500(exc)
        return method_not_allowed(["GET", "PUT"])


class DashboardAgent:
    def __init__(self, node):
        self.node = node

    def raylet_check(self):
        """HealthzAgent.health_check: ask GCS about this node (ray-apis.md 1.1)."""
        try:
            rep = self.node.gcs_client(0.1).call("check_alive", {"node_ids": [self.node.node_id]}, timeout=0.1)
        except GcsError as exc:
            if exc.code in UNREACHABLE:
                # GCS down or unreachable: deliberately "success".
                return True, None
            return False, "Health check failed due to: %s" % exc
        if rep["alive"][0]:
            return True, None
        return False, "Local Raylet failed"

    def handle(self, req):
        if req.path == "/api/local_raylet_healthz":
            ok, err = self.raylet_check()
            if ok:
                return app_text(200, "success")
            if err == "Local Raylet failed":
                return app_text(503, err)
            return aiohttp_error(503, err)
        if req.path == "/api/healthz" and common.version_tuple(common.RAY_VERSION) >= (2, 53, 0):
            # PR #56943 (Ray >= 2.53): raylet and local GCS lines.
            ok, err = self.raylet_check()
            lines = ["raylet: success" if ok else "raylet: %s" % err]
            gok = True
            if self.node.is_head:
                try:
                    self.node.gcs_client(0.1).call("check_alive", {"node_ids": []}, timeout=0.1)
                    lines.append("gcs: success")
                except GcsError as exc:
                    gok = False
                    lines.append("gcs: %s" % exc)
            else:
                lines.append("gcs: success (no local gcs)")
            return app_text(200 if ok and gok else 503, "\n".join(lines))
        return aiohttp_not_found()

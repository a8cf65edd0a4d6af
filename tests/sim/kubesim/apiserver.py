"""kube-apiserver simulator (Python 3 standard library only).

Command line (the contract with the kubelet / controllers / local-cluster simulators):

    python3 tests/sim/kubesim/apiserver.py --state-dir DIR [--host 127.0.0.1] [--port 0]
                                           [--tls] [--token T] [--bookmark-interval S]
                                           [--history-size N] [--log-dir D]
                                           [--watch-cache-size N] [--watch-cache-fresh-seconds S]

It writes, before answering anything:
    DIR/ca.crt, DIR/ca.key             self-signed CA (Debian's `openssl` CLI), with --tls
    DIR/apiserver.crt, apiserver.key   serving certificate, SAN IP 127.0.0.1, DNS localhost and
                                       kubernetes.default.svc, with --tls
    DIR/token                          the bearer token (generated unless --token)
    DIR/kubeconfig                     current-context kubesim: server URL, certificate-authority
                                       (with --tls), token
    DIR/apiserver.json                 {"url", "host", "port", "token", "tls", "pid"}
and then answers GET /readyz and /livez with 200 "ok". SIGTERM/SIGINT stop it.

In-process use (tests):

    from kubesim.apiserver import APIServer
    srv = APIServer(state_dir=d, tls=False, token="t")   # port=0 picks a free port
    srv.start()          # returns when the server answers; srv.url, srv.token, srv.store
    ...
    srv.stop()

Pod logs: GET .../pods/NAME/log reads LOG_DIR/<namespace>/<pod>/<container>.log when --log-dir (or
APIServer(log_dir=...)) is given and that file exists (the kubelet simulator writes them); otherwise
404 NotFound. Query parameters container, tailLines, limitBytes are honoured; follow is not.

Fault injection (bearer token required), under /_sim/ on the same server:
    POST   /_sim/faults   {"verb": "create"|...|"*", "code": 409|429|500, "rate": 0..1,
                           "resource": optional plural, "retryAfter": seconds (429), "count": n}
    DELETE /_sim/faults   clear all faults and latency
    POST   /_sim/latency  {"ms": 100, "verb": optional}
    POST   /_sim/drop-watches     end every open watch (clients see a clean end of stream)
    POST   /_sim/compact          forget the event history: older resourceVersions answer 410
    POST   /_sim/pause | /_sim/resume     requests (except /_sim/) wait while paused
    GET    /_sim/stats    {"total": n, "by_verb": {verb: {code: n}}, "watches": open watches, ...}

Behaviour is documented in docs/local-cluster.md ("API server simulator") and each rule carries
a comment naming the Kubernetes page or source file it follows.
"""

import base64
import json
import os
import random
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if __package__ in (None, ""):
    # Run as a script: make `kubesim` importable and drop this directory from sys.path so that
    # module names here can never shadow the standard library.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    sys.path.insert(0, os.path.dirname(_here))
    from kubesim.apiserver import main as _main  # noqa: E402

    if __name__ == "__main__":
        sys.exit(_main())
    raise SystemExit(0)

from kubesim import apiserver_kinds as kinds  # noqa: E402
from kubesim import gcpause  # noqa: E402
from kubesim import pki  # noqa: E402
from kubesim import apiserver_patch as patchmod  # noqa: E402
from kubesim import apiserver_rbac as rbac  # noqa: E402
from kubesim.apiserver_errors import (ApiError, bad_request, clone, dumps,  # noqa: E402
                                      forbidden, generate_name,
                                      internal_error, invalid, method_not_supported,
                                      not_found, too_many_requests, unauthorized,
                                      unsupported_media, conflict, STALE)
from kubesim.apiserver_openapi import OpenAPICache  # noqa: E402
from kubesim.apiserver_proto import decode as proto_decode  # noqa: E402
from kubesim.apiserver_select import (parse_field_selector, parse_label_selector)  # noqa: E402
from kubesim.apiserver_store import Store, version_priority  # noqa: E402

VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit":
           "70d3cc986aa8221cd1dfb1121852688902d3bf53", "gitTreeState": "clean",
           "buildDate": "2024-12-11T17:58:46Z", "goVersion": "go1.23.3", "compiler": "gc",
           "platform": "linux/amd64"}

# Paths the system:public-info-viewer ClusterRole grants to system:anonymous in a default
# kubeadm cluster (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")

PATCH_TYPES = {"application/json-patch+json": "json", "application/merge-patch+json": "merge",
               "application/strategic-merge-patch+json": "strategic",
               "application/apply-patch+yaml": "apply"}


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.latency = {}
        self.paused = threading.Event()
        self.paused.set()  # set = running
        self.stats = {}
        self.total = 0

    def count(self, verb, code):
        with self.lock:
            self.total += 1
            v = self.stats.setdefault(verb, {})
            v[str(code)] = v.get(str(code), 0) + 1

    def pick(self, verb, resource):
        with self.lock:
            for r in self.rules:
                if r["verb"] not in ("*", verb):
                    continue
                if r.get("resource") and r["resource"] != resource:
                    continue
                if r.get("count") is not None and r["count"] <= 0:
                    continue
                if random.random() < float(r.get("rate", 1.0)):
                    if r.get("count") is not None:
                        r["count"] -= 1
                    return r
        return None

    def delay(self, verb):
        with self.lock:
            ms = self.latency.get(verb, self.latency.get("*", 0))
        if ms:
            time.sleep(ms / 1000.0)


class _StrictUnknown(list):
    """Unknown-field collector for fieldValidation=Strict: the first unknown field fails the request
    (raised while the store prepares the object, so nothing is stored), as the real server does."""

    def __init__(self, handler, rt):
        super().__init__()
        self._handler, self._rt = handler, rt

    def extend(self, items):
        items = list(items)
        super().extend(items)
        if items:
            self._handler._report_unknown(items, self._rt)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubesim"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.sim.verbose:
            sys.stderr.write("kubesim: %s\n" % (fmt % args))

    # ---- plumbing -----------------------------------------------------------------------------------

    def _body(self):
        n = self.headers.get("Content-Length")
        if n is not None:
            n = int(n)
            if n > 3 * 1024 * 1024:
                # maxRequestBodyBytes (3 MiB) of the generic API server.
                self.rfile.read(n)
                raise ApiError(413, "RequestEntityTooLarge",
                               "Request entity too large: limit is 3145728")
            return self.rfile.read(n)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                line = self.rfile.readline()
                size = int(line.strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                out += self.rfile.read(size)
                self.rfile.readline()
            return out
        return b""

    def _send(self, code, obj, ctype="application/json", headers=None):
        data = obj if isinstance(obj, bytes) else (dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        for w in self._warnings:
            self.send_header("Warning", '299 - "%s"' % w.replace('"', '\\"'))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.server.sim.faults.count(self._verb, code)

    def _error(self, e):
        self._send(e.code, e.status(), headers=e.headers)

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        sim = self.server.sim
        self._audit = secrets.token_hex(8)
        self._user = None
        self._warnings = []
        self._verb = method.lower()
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        self._q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        try:
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
            authed = self._authenticate()
            self._user = authed if isinstance(authed, rbac.User) else None
            if path.startswith("/_sim/"):
                if self._user is None:
                    raise unauthorized()
                if not self._user.admin:
                    # The simulator's controls are the admin's alone.
                    raise ApiError(403, "Forbidden", 'forbidden: User "%s" cannot %s path "%s"'
                                   % (self._user.name, method.lower(), path), {})
                return self._sim(method, path, body)
            if path.rstrip("/") in ("/readyz", "/livez", "/healthz") or path.startswith(
                    ("/readyz/", "/livez/", "/healthz/")):
                self._verb = "health"
                if authed is False:
                    raise unauthorized()
                return self._send(200, b"ok", "text/plain; charset=utf-8")
            if path in ("/version", "/version/"):
                self._verb = "version"
                if authed is False:
                    raise unauthorized()
                return self._send(200, VERSION)
            if authed is False:
                raise unauthorized()
            if authed is None:
                # Anonymous requests are authenticated as system:anonymous and denied by RBAC.
                raise ApiError(403, "Forbidden", 'forbidden: User "system:anonymous" cannot %s '
                               'path "%s"' % (method.lower(), path), {})
            if not self._user.admin:
                attrs = rbac.request_attrs(method, path, self._q)
                if not sim.authorizer.allowed(self._user, attrs):
                    self._verb = attrs.verb or self._verb
                    raise rbac.forbidden_error(self._user, attrs)
                self._no_escalation(attrs, body)
            sim.faults.paused.wait()
            while not sim.faults.paused.is_set() and not sim.stopping:
                sim.faults.paused.wait(0.5)
            self._route(method, path, body)
        except ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a bug in the simulator: answer 500 like the real server's panic filter
            import traceback
            traceback.print_exc()
            try:
                self._error(internal_error(repr(e)))
            except Exception:
                self.close_connection = True

    def _authenticate(self):
        # https://kubernetes.io/docs/reference/access-authn-authz/authentication/ (bearer tokens,
        # anonymous requests) and .../rbac/#discovery-roles (system:public-info-viewer).
        """A User for a valid token (the admin token, or a ServiceAccount token: see
        apiserver_rbac.py). False: a token that is not valid (401). None: no credentials."""
        sim = self.server.sim
        h = self.headers.get("Authorization")
        if not h:
            return None if sim.anonymous_auth else False
        parts = h.split(" ", 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return False
        tok = parts[1].strip()
        if secrets.compare_digest(tok, sim.token):
            return rbac.ADMIN
        sa = rbac.verify_token(sim.token, tok)
        if sa is None:
            return False
        ns, name, uid = sa
        with sim.store.lock:
            obj = sim.store.data[("", "serviceaccounts")].get((ns, name))
            cur = (obj or {}).get("metadata", {}).get("uid")
        if cur is None or cur != uid:
            return False  # the ServiceAccount is gone (or re-created): its tokens are not valid
        return rbac.service_account_user(ns, name, uid)

    # ---- /_sim --------------------------------------------------------------------------------------

    def _sim(self, method, path, body):
        sim = self.server.sim
        self._verb = "sim"
        req = json.loads(body) if body.strip() else {}
        f = sim.faults
        if path == "/_sim/faults" and method == "POST":
            rule = {"verb": req.get("verb", "*"), "code": int(req.get("code", 500)),
                    "rate": float(req.get("rate", 1.0)), "resource": req.get("resource"),
                    "retryAfter": int(req.get("retryAfter", 1)), "count": req.get("count")}
            with f.lock:
                f.rules.append(rule)
            return self._send(200, {"faults": f.rules})
        if path == "/_sim/faults" and method == "DELETE":
            with f.lock:
                f.rules = []
                f.latency = {}
            return self._send(200, {"faults": []})
        if path == "/_sim/latency" and method == "POST":
            with f.lock:
                f.latency[req.get("verb", "*")] = float(req.get("ms", 0))
            return self._send(200, {"latency": f.latency})
        if path == "/_sim/drop-watches" and method == "POST":
            sim.store.drop_watches()
            return self._send(200, {"dropped": True})
        if path == "/_sim/compact" and method == "POST":
            sim.store.compact()
            return self._send(200, {"compactedTo": str(sim.store.rv)})
        if path == "/_sim/pause" and method == "POST":
            f.paused.clear()
            return self._send(200, {"paused": True})
        if path == "/_sim/resume" and method == "POST":
            f.paused.set()
            return self._send(200, {"paused": False})
        if path == "/_sim/stats" and method == "GET":
            with f.lock:
                st = {"total": f.total, "by_verb": clone(f.stats)}
            st["watches"] = sum(len(ws) for ws in sim.store.watchers.values())
            st["resourceVersion"] = str(sim.store.rv)
            return self._send(200, st)
        raise not_found("", "", path)

    # ---- routing -------------------------------------------------------------------------------------

    def _route(self, method, path, body):
        sim = self.server.sim
        segs = [s for s in path.split("/") if s]
        if not segs:
            return self._send(200, {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez",
                                              "/openapi/v2", "/openapi/v3", "/readyz", "/version"]})
        if segs[0] == "openapi":
            self._verb = "openapi"
            return self._openapi(segs)
        if segs[0] == "api":
            if len(segs) == 1:
                self._verb = "discovery"
                return self._send(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0",
                                             "serverAddress": "%s:%d" % (sim.host, sim.port)}]})
            if segs[1] != "v1":
                raise ApiError(404, "NotFound", "the server could not find the requested resource",
                               {})
            group, version, rest = "", "v1", segs[2:]
        elif segs[0] == "apis":
            groups = sim.store.groups()
            if len(segs) == 1:
                self._verb = "discovery"
                return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": [self._group(g, vs) for g, vs in
                                                   _ordered_groups(groups)]})
            g = segs[1]
            if g not in groups or g == "":
                raise ApiError(404, "NotFound", "the server could not find the requested resource",
                               {})
            if len(segs) == 2:
                self._verb = "discovery"
                d = self._group(g, groups[g])
                d.update({"kind": "APIGroup", "apiVersion": "v1"})
                return self._send(200, d)
            if segs[2] not in groups[g]:
                raise ApiError(404, "NotFound", "the server could not find the requested resource",
                               {})
            group, version, rest = g, segs[2], segs[3:]
        else:
            return self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
        if not rest:
            self._verb = "discovery"
            if method != "GET":
                raise method_not_supported("", group, method)
            return self._send(200, self._resource_list(group, version))
        watch_path = False
        if rest[0] == "watch":
            watch_path = True
            rest = rest[1:]
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and not (
                group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")):
            # /namespaces/{ns}/{resource}...; /api/v1/namespaces/{name}/status|finalize are the
            # namespace's own subresources.
            ns = rest[1]
            rest = rest[2:]
        plural = rest[0]
        rt = sim.store.find(group, version, plural)
        if rt is None or (ns and not rt.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if rt.crd is not None and rt.version_info.get("deprecated"):
            # apiextensions-apiserver customresource_handler.go: deprecated versions warn.
            self._warnings.append(rt.version_info.get("deprecationWarning") or
                                  "%s/%s %s is deprecated" % (rt.group, rt.version, rt.kind))
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if name is None:
            verb = {"GET": "list", "POST": "create", "DELETE": "deletecollection"}.get(method)
            if method == "GET" and (watch_path or self._q.get("watch") in ("1", "true", "True")):
                verb = "watch"
        else:
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete",
                    "POST": "create"}.get(method)
            if method == "GET" and watch_path:
                verb = "watch"
        self._verb = verb or method.lower()
        if verb is None or (verb not in rt.verbs and sub is None) or (verb == "create" and name and
                                                                      sub is None):
            raise method_not_supported(rt.plural, rt.group, method.upper() if verb is None else verb)
        if sub and not self._sub_ok(rt, sub):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        fault = sim.faults.pick(verb, rt.plural)
        sim.faults.delay(verb)
        if fault:
            self._inject(fault, rt, name)
            return
        if verb == "watch":
            if name:
                self._q["fieldSelector"] = ",".join(
                    x for x in (self._q.get("fieldSelector"), "metadata.name=" + name) if x)
            return self._watch(rt, ns)
        if verb == "list":
            return self._list(rt, ns)
        if verb == "get":
            if sub == "log":
                return self._log(rt, ns, name)
            obj = sim.store.get(rt, ns, name)
            if sub == "scale":
                return self._send(200, kinds.to_scale(rt, obj))
            return self._send_obj(rt, 200, obj)
        if verb == "create":
            if rt.plural == "serviceaccounts" and rt.group == "" and sub == "token":
                return self._token_request(ns, name, body)
            if sub == "binding" or (name and sub is None):
                return self._binding(rt, ns, name, body)
            if sub is not None:
                raise method_not_supported(rt.plural, rt.group, "create")
            obj = self._json(body)
            if rt.virtual:
                return self._review(rt, obj)
            unknown = self._unknown_check([], rt)
            obj = self._admit_create(rt, ns, obj)
            res = sim.store.create(rt, ns, obj, self._params(), unknown)
            self._report_unknown(unknown, rt)
            return self._send_obj(rt, 201, res)
        if verb == "update":
            obj = self._json(body)
            if sub == "scale":
                return self._scale_update(rt, ns, name, obj)
            unknown = self._unknown_check([], rt)
            res, created = sim.store.update(rt, ns, name, obj, self._params(), sub, unknown)
            self._report_unknown(unknown, rt)
            return self._send_obj(rt, 201 if created else 200, res)
        if verb == "patch":
            return self._patch(rt, ns, name, sub, body)
        if verb == "delete":
            opts = self._delete_opts(body)
            res, _ = sim.store.delete(rt, ns, name, opts, self._params())
            if rt.kind == "Job" and rt.crd is None and opts.get("propagationPolicy") is None and \
                    opts.get("orphanDependents") is None:
                # pkg/registry/batch/job/storage/storage.go deleteWarning.
                self._warnings.append("child pods are preserved by default when jobs are deleted; "
                                      "set propagationPolicy=Background to remove them or set "
                                      "propagationPolicy=Orphan to suppress this warning")
            code = 200
            if res.get("kind") == "Status":
                return self._send(200, res)
            return self._send_obj(rt, code, res)
        if verb == "deletecollection":
            return self._delete_collection(rt, ns, body)
        raise method_not_supported(rt.plural, rt.group, verb)

    def _no_escalation(self, a, body):
        # pkg/registry/rbac/{role,clusterrole}/policybased: a Role's rules must be held by its
        # creator (in its namespace) unless the creator may `escalate` roles.
        if not (a.resource_request and a.group == rbac.RBAC and not a.subresource and
                a.resource in ("roles", "clusterroles") and a.verb in ("create", "update")):
            return
        obj = self._json(body) if body.strip() else {}
        if not isinstance(obj, dict):
            return
        esc = rbac.Attrs("escalate", resource_request=True, group=a.group, resource=a.resource,
                         namespace=a.namespace, name=a.name or (obj.get("metadata") or {}).get("name", ""))
        authz = self.server.sim.authorizer
        if authz.allowed(self._user, esc):
            return
        missing = rbac.missing_rights(authz.rules(self._user, a.namespace), obj.get("rules") or [])
        if missing:
            raise rbac.escalation_error(self._user, a.resource, esc.name, missing)

    def _token_request(self, ns, name, body):
        # TokenRequest (pkg/registry/core/serviceaccount/storage/token.go): a token of the
        # ServiceAccount, valid while it exists with this UID (apiserver_rbac.py).
        sim = self.server.sim
        req = self._json(body) if body.strip() else {}
        sa = sim.store.get(sim.store.rt("", "v1", "serviceaccounts"), ns, name)
        uid = sa["metadata"]["uid"]
        exp = int((req.get("spec") or {}).get("expirationSeconds") or 3600)
        out = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
               "spec": {"audiences": (req.get("spec") or {}).get("audiences") or
                        ["https://kubernetes.default.svc"], "expirationSeconds": exp,
                        "boundObjectRef": (req.get("spec") or {}).get("boundObjectRef")},
               "status": {"token": rbac.issue_token(sim.token, ns, name, uid),
                          "expirationTimestamp": time.strftime(
                              "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + exp))}}
        return self._send(201, out)

    def _review(self, rt, obj):
        if not isinstance(obj, dict) or obj.get("kind") != rt.kind:
            raise bad_request("expected a %s" % rt.kind)
        out = clone(obj)
        out.setdefault("metadata", {})["creationTimestamp"] = None
        user = self._user or rbac.ADMIN
        if rt.kind == "SelfSubjectAccessReview" and not user.admin:
            spec = obj.get("spec") or {}
            ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
            if ra:
                a = rbac.Attrs(ra.get("verb", ""), resource_request=True,
                               group=ra.get("group", ""), version=ra.get("version", ""),
                               resource=ra.get("resource", ""),
                               subresource=ra.get("subresource", ""),
                               namespace=ra.get("namespace", ""), name=ra.get("name", ""))
            else:
                nra = nra or {}
                a = rbac.Attrs(nra.get("verb", ""), path=nra.get("path", ""))
            ok = self.server.sim.authorizer.allowed(user, a)
            out["status"] = {"allowed": ok}
        elif rt.kind == "SelfSubjectRulesReview" and not user.admin:
            ns = (obj.get("spec") or {}).get("namespace") or ""
            rules = self.server.sim.authorizer.rules(user, ns)
            out["status"] = {
                "resourceRules": [{k: r[k] for k in ("verbs", "apiGroups", "resources",
                                                     "resourceNames") if r.get(k)}
                                  for r in rules if not r.get("nonResourceURLs")],
                "nonResourceRules": [{"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
                                     for r in rules if r.get("nonResourceURLs")],
                "incomplete": False}
        elif rt.kind == "SelfSubjectReview" and not user.admin:
            out["status"] = {"userInfo": user.info()}
        elif rt.kind == "SelfSubjectAccessReview":
            out["status"] = {"allowed": True, "reason": "kubesim: the token's user may do everything"}
        elif rt.kind == "SelfSubjectRulesReview":
            out["status"] = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                                "resources": ["*"]}],
                             "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                             "incomplete": False}
        else:
            out["status"] = {"userInfo": {"username": "kubesim-admin",
                                          "groups": ["system:masters", "system:authenticated"]}}
        return self._send(201, out)

    def _sub_ok(self, rt, sub):
        if sub == "status":
            return rt.status
        if sub == "scale":
            return rt.scale is not None
        return sub in [s[0] for s in rt.extra_subs]

    def _inject(self, fault, rt, name):
        code = fault["code"]
        if code == 429:
            raise too_many_requests(fault.get("retryAfter", 1))
        if code == 409:
            raise conflict(rt.plural, rt.group, name or "", STALE)
        if code == 500:
            raise internal_error("injected fault")
        if code == 503:
            raise ApiError(503, "ServiceUnavailable", "the server is currently unable to handle "
                           "the request", {"retryAfterSeconds": fault.get("retryAfter", 1)},
                           {"Retry-After": str(fault.get("retryAfter", 1))})
        if code == 504:
            raise ApiError(504, "Timeout", "the server was unable to return a response in the time "
                           "allotted, but may still be processing the request", {})
        raise ApiError(code, "", "injected fault", {})

    def _params(self):
        p = {}
        if self._q.get("dryRun"):
            if self._q["dryRun"] != "All":
                raise bad_request("Invalid dry run value: %s" % self._q["dryRun"])
            p["dryRun"] = True
        return p

    def _unknown_check(self, unknown, rt):
        fv = self._q.get("fieldValidation", "Warn")
        if fv not in ("Strict", "Warn", "Ignore", ""):
            raise bad_request('fieldValidation parameter unsupported: %s, valid values are "Ignore",'
                              ' "Warn", "Strict"' % fv)
        if fv == "Strict":
            # Strict fails the request before anything is stored: the store collects unknown fields
            # while preparing the object, so the error is raised from there, inside its lock.
            return _StrictUnknown(self, rt)
        return unknown

    def _report_unknown(self, unknown, rt):
        fv = self._q.get("fieldValidation", "Warn") or "Warn"
        if not unknown or fv == "Ignore":
            return
        if fv == "Strict":
            # Strict field validation fails the request
            # (https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation).
            raise bad_request('%s in version "%s" cannot be handled as a %s: strict decoding error: '
                              % (rt.kind, rt.version, rt.kind) +
                              ", ".join('unknown field "%s"' % u for u in unknown))
        for u in unknown:
            self._warnings.append('unknown field "%s"' % u)

    def _json(self, body):
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype == "application/vnd.kubernetes.protobuf":
            return proto_decode(body)
        if ctype not in ("application/json", "*/*", ""):
            if ctype == "application/yaml":
                try:
                    return json.loads(body)
                except ValueError:
                    pass
            raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown '
                           'format - accepted media types include: application/json, '
                           'application/yaml, application/vnd.kubernetes.protobuf')
        try:
            return json.loads(body)
        except ValueError as e:
            raise bad_request("the object provided is unrecognized: %s" % e)

    # ---- output formats ----------------------------------------------------------------------------

    def _accept(self):
        """'table', 'partial', 'json' from the Accept header (meta.k8s.io conversions).

        https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables
        and staging/src/k8s.io/apiserver/pkg/endpoints/handlers/response.go (transformObject).
        """
        acc = self.headers.get("Accept") or "application/json"
        # Responses are never protobuf. A client-go client configured for protobuf (Prometheus'
        # Kubernetes discovery: ContentType application/vnd.kubernetes.protobuf) sends
        # "application/vnd.kubernetes.protobuf, */*" (client-go rest/request.go NewRequest), so it
        # gets JSON here where a real server sends protobuf; client-go decodes by the response's
        # Content-Type, so the objects it sees are the same.
        for part in acc.split(","):
            params = {}
            items = [x.strip() for x in part.split(";")]
            mt = items[0]
            for it in items[1:]:
                if "=" in it:
                    k, v = it.split("=", 1)
                    params[k.strip()] = v.strip()
            if mt not in ("application/json", "*/*", "application/*"):
                continue
            if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and \
                    params.get("v") in ("v1", "v1beta1"):
                return "table", params.get("v")
            if params.get("as") in ("PartialObjectMetadata", "PartialObjectMetadataList") and \
                    params.get("g") == "meta.k8s.io":
                return "partial", params.get("v")
            if "as" not in params:
                return "json", None
        raise ApiError(406, "NotAcceptable", "only the following media types are accepted: "
                       "application/json, application/yaml, application/vnd.kubernetes.protobuf", {})

    def _table(self, rt, objs, meta, headers=True, tv="v1"):
        inc = self._q.get("includeObject", "PartialObjectMetadata")
        rows = []
        for o in objs:
            row = {"cells": kinds.table_row(rt, o)}
            if inc == "Object":
                row["object"] = o
            elif inc != "None":
                row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/" + tv,
                                 "metadata": o["metadata"]}
            rows.append(row)
        t = {"kind": "Table", "apiVersion": "meta.k8s.io/" + tv, "metadata": meta}
        if headers:
            t["columnDefinitions"] = kinds.table_columns(rt)
        else:
            t["columnDefinitions"] = None
        t["rows"] = rows
        return t

    def _send_obj(self, rt, code, obj):
        fmt, v = self._accept()
        if fmt == "table" and obj.get("kind") != "Status":
            return self._send(code, self._table(rt, [obj], {"resourceVersion":
                                                          obj["metadata"].get("resourceVersion", "")},
                                                tv=v))
        if fmt == "partial" and obj.get("kind") != "Status":
            return self._send(code, {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/" + v,
                                     "metadata": obj["metadata"]})
        return self._send(code, obj)

    # ---- list / watch ----------------------------------------------------------------------------

    def _selectors(self, rt):
        lreqs = parse_label_selector(self._q.get("labelSelector"))
        freqs = parse_field_selector(self._q.get("fieldSelector"), kinds.supported_fields(rt),
                                     rt.plural)
        return lreqs, freqs

    def _list(self, rt, ns):
        # https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks
        # and #the-resourceversion-parameter (semantics of resourceVersion / resourceVersionMatch).
        sim = self.server.sim
        fmt, v = self._accept()
        lreqs, freqs = self._selectors(rt)
        try:
            limit = int(self._q.get("limit") or 0)
        except ValueError:
            raise bad_request("limit: Invalid value")
        rv = self._q.get("resourceVersion")
        if rv == "0" and not self._q.get("continue"):
            # Served from the watch cache, which does not paginate (api-concepts: "limit ... may be
            # ignored" when resourceVersion="0").
            limit = 0
        items, meta = sim.store.list(rt, ns, lreqs, freqs, limit, self._q.get("continue"), rv,
                                     self._q.get("resourceVersionMatch"))
        if fmt == "table":
            return self._send(200, self._table(rt, items, meta, tv=v))
        if fmt == "partial":
            return self._send(200, {"kind": "PartialObjectMetadataList",
                                    "apiVersion": "meta.k8s.io/" + v, "metadata": meta,
                                    "items": [{"kind": "PartialObjectMetadata",
                                               "apiVersion": "meta.k8s.io/" + v,
                                               "metadata": o["metadata"]} for o in items]})
        return self._send(200, {"kind": rt.list_kind, "apiVersion": rt.api_version,
                                "metadata": meta, "items": items})

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _watch(self, rt, ns):
        # https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
        # and #watch-bookmarks; the stream is chunked JSON, one watch event per line
        # (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go). Table watches carry the
        # column definitions in their first event only.
        sim = self.server.sim
        fmt, tv = self._accept()
        lreqs, freqs = self._selectors(rt)
        if self._q.get("sendInitialEvents") in ("true", "1"):
            raise invalid("ListOptions", "meta.k8s.io", "", [
                ("FieldValueForbidden", "sendInitialEvents",
                 "Forbidden: sendInitialEvents is not supported by this server")])
        bookmarks = self._q.get("allowWatchBookmarks") in ("true", "1", "True")
        try:
            timeout = float(self._q.get("timeoutSeconds") or 0)
        except ValueError:
            raise bad_request("timeoutSeconds: Invalid value")
        if timeout <= 0:
            # Without timeoutSeconds the server picks minRequestTimeout * (1 + rand) (1800 s).
            timeout = sim.min_request_timeout * (1 + random.random())
        deadline = time.monotonic() + timeout
        w, initial = sim.store.watch(rt, ns, lreqs, freqs, self._q.get("resourceVersion"))
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Audit-Id", self._audit)
            self.end_headers()
            sim.faults.count("watch", 200)
            first_table = [True]

            def encode(typ, obj, ev):
                if fmt == "json":
                    return sim.store.encode_event(rt, typ, obj, ev)
                p = sim.store.present(rt, obj)
                if fmt == "table":
                    o = self._table(rt, [p], {"resourceVersion": p["metadata"]["resourceVersion"]},
                                    headers=first_table[0], tv=tv)
                    first_table[0] = False
                else:
                    o = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/" + tv,
                         "metadata": p["metadata"]}
                return (dumps({"type": typ, "object": o}) + "\n").encode()

            if isinstance(initial, ApiError):
                # The watch cache answers an expired resourceVersion with an ERROR event.
                self._chunk((dumps({"type": "ERROR", "object": initial.status()}) + "\n").encode())
                initial = None
            for typ, obj, ev in initial or ():
                self._chunk(encode(typ, obj, ev))
            interval = sim.bookmark_interval
            while initial is not None:
                now = time.monotonic()
                if now >= deadline or sim.stopping:
                    break
                wait = min(deadline - now, interval if bookmarks else 1.0)
                try:
                    item = w.q.get(timeout=wait)
                except Exception:
                    item = False
                if item is None:
                    break
                if item is False:
                    if bookmarks and time.monotonic() < deadline:
                        with sim.store.lock:
                            rv = sim.store.rv if w.q.empty() else None
                        if rv is not None:
                            bm = {"type": "BOOKMARK", "object": {
                                "kind": rt.kind, "apiVersion": rt.api_version,
                                "metadata": {"resourceVersion": str(rv), "creationTimestamp": None}}}
                            if fmt == "table":
                                bm["object"] = {"kind": "Table", "apiVersion": "meta.k8s.io/" + tv,
                                                "metadata": {"resourceVersion": str(rv)},
                                                "columnDefinitions": None, "rows": None}
                            self._chunk((dumps(bm) + "\n").encode())
                    continue
                typ, obj, ev = item
                buf = [encode(typ, obj, ev)]
                # Drain what is queued already into one write.
                while len(buf) < 256:
                    try:
                        nxt = w.q.get_nowait()
                    except Exception:
                        break
                    if nxt is None:
                        item = None
                        break
                    buf.append(encode(*nxt))
                data = b"".join(buf)
                self._chunk(data)
                if item is None:
                    break
            if w.reason == "slow":
                pass
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
            return
        finally:
            sim.store.unwatch(w)
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    # ---- patch ------------------------------------------------------------------------------------

    def _patch(self, rt, ns, name, sub, body):
        sim = self.server.sim
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        ptype = PATCH_TYPES.get(ctype)
        accepted = ["application/json-patch+json", "application/merge-patch+json",
                    "application/apply-patch+yaml"]
        builtin = rt.crd is None or sub == "scale"
        if builtin:
            accepted.insert(2, "application/strategic-merge-patch+json")
        if ptype is None or (ptype == "strategic" and not builtin):
            # Custom resources have no Go struct to derive merge keys from: strategic merge patch
            # is refused with 415 (apiextensions-apiserver crdHandler, supportedTypes).
            raise unsupported_media(accepted)
        try:
            p = json.loads(body)
        except ValueError as e:
            if ptype == "apply":
                raise bad_request("error decoding YAML: this simulator accepts the JSON form of "
                                  "apply-patch+yaml only (kubectl sends JSON): %s" % e)
            raise bad_request("error decoding patch: %s" % e)
        unknown = self._unknown_check([], rt)
        params = self._params()
        with sim.store.lock:
            if ptype == "apply":
                if not self._q.get("fieldManager"):
                    raise bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                                      "Required value: is required for apply patch")
                if not isinstance(p, dict):
                    raise bad_request("error decoding YAML: expected an object")
                try:
                    cur = sim.store.get(rt, ns, name)
                except ApiError as e:
                    if e.code != 404 or sub:
                        raise
                    # Server-side apply creates the object when it does not exist.
                    b = clone(p)
                    md = b.setdefault("metadata", {})
                    if md.get("name") and md["name"] != name:
                        raise bad_request("the name of the object (%s) does not match the name on "
                                          "the URL (%s)" % (md["name"], name))
                    md["name"] = name
                    b = self._admit_create(rt, ns, b)
                    res = sim.store.create(rt, ns, b, params, unknown)
                    self._report_unknown(unknown, rt)
                    return self._send_obj(rt, 201, res)
                base = kinds.to_scale(rt, cur) if sub == "scale" else cur
                if p.get("kind") and p.get("kind") != base.get("kind"):
                    raise bad_request("the kind in the patch (%s) does not match the kind of the "
                                      "object (%s)" % (p.get("kind"), base.get("kind")))
                newobj = patchmod.list_map_merge(base, p)
                if "resourceVersion" not in p.get("metadata", {}):
                    newobj["metadata"]["resourceVersion"] = base["metadata"]["resourceVersion"]
            else:
                cur = sim.store.get(rt, ns, name)
                base = kinds.to_scale(rt, cur) if sub == "scale" else cur
                if ptype == "merge":
                    if not isinstance(p, dict):
                        raise bad_request("json: cannot unmarshal into Go value")
                    newobj = patchmod.merge_patch(base, p)
                elif ptype == "json":
                    newobj = patchmod.json_patch(base, p)
                else:
                    schema = {"metadata": (None, None, patchmod.OBJECT_META)} if sub == "scale" \
                        else kinds.smp_schema(rt) or patchmod.GENERIC
                    newobj = patchmod.strategic_merge(base, p, schema)
                if not isinstance(newobj, dict):
                    raise bad_request("patched object is not an object")
            if sub == "scale":
                return self._scale_update(rt, ns, name, newobj)
            md = newobj.setdefault("metadata", {}) if isinstance(newobj.get("metadata"), dict) else None
            if md is None:
                newobj["metadata"] = {}
            if rt.crd is None and rt.group == "events.k8s.io":
                pass
            res, _ = sim.store.update(rt, ns, name, newobj, params, sub, unknown, create_ok=False)
        self._report_unknown(unknown, rt)
        return self._send_obj(rt, 200, res)

    def _scale_update(self, rt, ns, name, scale):
        sim = self.server.sim
        if not isinstance(scale, dict) or scale.get("kind") not in (None, "Scale"):
            raise bad_request("expected a Scale object")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid("Scale", "autoscaling", name, [
                ("FieldValueInvalid", "spec.replicas", "Invalid value: %s: must be greater than or "
                 "equal to 0" % replicas)])
        with sim.store.lock:
            cur = clone(sim.store.get(rt, ns, name))
            rv = (scale.get("metadata") or {}).get("resourceVersion")
            if rv and rv != cur["metadata"]["resourceVersion"]:
                raise conflict(rt.plural, rt.group, name, STALE)
            kinds.jsonpath_set(cur, rt.scale[0], replicas)
            res, _ = sim.store.update(rt, ns, name, cur, self._params())
        return self._send(200, kinds.to_scale(rt, res))

    # ---- delete ------------------------------------------------------------------------------------

    def _delete_opts(self, body):
        opts = {}
        if body.strip():
            try:
                opts = json.loads(body)
            except ValueError as e:
                raise bad_request("error decoding DeleteOptions: %s" % e)
        q = self._q
        if "gracePeriodSeconds" in q:
            opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        if "propagationPolicy" in q:
            opts["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            opts["orphanDependents"] = q["orphanDependents"] in ("true", "1")
        if opts.get("dryRun"):
            self._q["dryRun"] = "All"
        return opts

    def _delete_collection(self, rt, ns, body):
        sim = self.server.sim
        opts = self._delete_opts(body)
        lreqs, freqs = self._selectors(rt)
        items, meta = sim.store.list(rt, ns, lreqs, freqs)
        deleted = []
        for o in items:
            try:
                res, _ = sim.store.delete(rt, o["metadata"].get("namespace", ""),
                                          o["metadata"]["name"], opts, self._params())
                deleted.append(o)
            except ApiError as e:
                if e.code != 404:
                    raise
        return self._send(200, {"kind": rt.list_kind, "apiVersion": rt.api_version,
                                "metadata": {"resourceVersion": str(sim.store.rv)},
                                "items": deleted})

    # ---- admission ---------------------------------------------------------------------------------

    def _admit_create(self, rt, ns, obj):
        """Mutating admission on create, in kube-apiserver's plugin order: NamespaceLifecycle,
        then ServiceAccount for pods (plugin/pkg/admission/serviceaccount/admission.go)."""
        if not (rt.kind == "Pod" and rt.group == "" and rt.crd is None and isinstance(obj, dict)
                and isinstance(obj.get("spec"), dict) and isinstance(obj.get("metadata", {}), dict)):
            return obj
        sim = self.server.sim
        md = obj.setdefault("metadata", {})
        sim.store.namespace_lifecycle(rt, ns, md)
        if "kubernetes.io/config.mirror" in (md.get("annotations") or {}):
            return obj
        spec = obj["spec"]
        sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = sa_name
        sa_rt = sim.store.rt("", "v1", "serviceaccounts")
        # getServiceAccount: the default ServiceAccount is looked up 10 times, 100-200 ms apart,
        # as the serviceaccount controller may not have made it yet in a new namespace.
        attempts = 10 if sa_name == "default" else 1
        interval = random.uniform(0.1, 0.2)
        sa = None
        for i in range(attempts):
            if i:
                time.sleep(interval)
                sim.store.namespace_lifecycle(rt, ns, md)
            try:
                sa = sim.store.get(sa_rt, ns, sa_name)
                break
            except ApiError as e:
                if e.code != 404:
                    raise
        if sa is None:
            name = md.get("name") or md.get("generateName") or "Unknown"
            raise forbidden("pods", "", name, 'error looking up service account %s/%s: serviceaccount '
                            '"%s" not found' % (ns, sa_name, sa_name))
        auto = spec.get("automountServiceAccountToken")
        if auto is None:
            auto = sa.get("automountServiceAccountToken")
        if auto is None or auto:
            self._mount_service_account_token(spec)
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name")} for s in sa["imagePullSecrets"]]
        return obj

    @staticmethod
    def _mount_service_account_token(spec):
        """mountServiceAccountToken: a kube-api-access-xxxxx projected volume (TokenVolumeSource)
        mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container
        that has no mount there."""
        path = "/var/run/secrets/kubernetes.io/serviceaccount"
        vol_name = None
        vols = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
        for v in vols:
            if isinstance(v, dict) and str(v.get("name", "")).startswith("kube-api-access-"):
                vol_name = v["name"]
                break
        has_volume = vol_name is not None
        if vol_name is None:
            vol_name = generate_name("kube-api-access-")
        needs = False
        for sect in ("initContainers", "containers"):
            for c in spec.get(sect) or []:
                if not isinstance(c, dict):
                    continue
                mounts = c.get("volumeMounts") if isinstance(c.get("volumeMounts"), list) else []
                if any(isinstance(m, dict) and m.get("mountPath") == path for m in mounts):
                    continue
                c["volumeMounts"] = mounts + [{"name": vol_name, "readOnly": True, "mountPath": path}]
                needs = True
        if needs and not has_volume:
            spec["volumes"] = vols + [{"name": vol_name, "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                        "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}]

    # ---- pods/binding, pods/log -------------------------------------------------------------------

    def _binding(self, rt, ns, name, body):
        sim = self.server.sim
        if rt.kind != "Pod" or rt.crd is not None:
            raise method_not_supported(rt.plural, rt.group, "create")
        b = self._json(body)
        target = (b.get("target") or {})
        node = target.get("name")
        pod_name = name or (b.get("metadata") or {}).get("name")
        if not node:
            raise invalid("Binding", "", pod_name or "", [("FieldValueRequired", "target.name",
                                                            "Required value")])
        # pkg/registry/core/pod/storage/storage.go assignPod / setPodHostAndAnnotations.
        with sim.store.lock:
            cur = clone(sim.store.get(rt, ns, pod_name))
            if cur["metadata"].get("deletionTimestamp"):
                raise conflict("pods/binding", "", pod_name, "pod %s is being deleted, cannot be "
                               "assigned to a host" % pod_name)
            if cur.get("spec", {}).get("nodeName"):
                raise conflict("pods/binding", "", pod_name, "pod %s is already assigned to node "
                               "\"%s\"" % (pod_name, cur["spec"]["nodeName"]))
            new = clone(cur)
            new["spec"]["nodeName"] = node
            for k, v in ((b.get("metadata") or {}).get("annotations") or {}).items():
                new["metadata"].setdefault("annotations", {})[k] = v
            conds = [c for c in new.setdefault("status", {}).get("conditions", []) or []
                     if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": kinds.rfc3339()})
            new["status"]["conditions"] = conds
            sim.store.write_internal(rt, new)
        return self._send(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Success", "code": 201})

    def _log(self, rt, ns, name):
        sim = self.server.sim
        pod = sim.store.get(rt, ns, name)
        containers = [c.get("name") for c in pod.get("spec", {}).get("containers", [])]
        c = self._q.get("container")
        if not c:
            if len(containers) != 1:
                raise bad_request("a container name must be specified for pod %s, choose one of: "
                                  "[%s]" % (name, " ".join(containers)))
            c = containers[0]
        elif c not in containers + [x.get("name") for x in
                                     pod.get("spec", {}).get("initContainers", []) or []]:
            raise bad_request("container %s is not valid for pod %s" % (c, name))
        path = os.path.join(sim.log_dir or "", ns, name, c + ".log")
        if not sim.log_dir or not os.path.isfile(path):
            raise not_found("pods/log", "", name)
        with open(path, "rb") as f:
            data = f.read()
        if self._q.get("tailLines"):
            n = int(self._q["tailLines"])
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-n:]) if n > 0 else b""
        if self._q.get("limitBytes"):
            data = data[:int(self._q["limitBytes"])]
        return self._send(200, data, "text/plain")

    # ---- discovery and OpenAPI -----------------------------------------------------------------------

    def _group(self, g, versions):
        vs = [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in versions]
        return {"name": g, "versions": vs, "preferredVersion": vs[0]}

    def _resource_list(self, group, version):
        # https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api (unaggregated
        # discovery: APIResourceList per group/version).
        sim = self.server.sim
        with sim.store.lock:
            rts = [rt for (g, v, _), rt in sim.store.types.items() if g == group and v == version]
        res = []
        for rt in sorted(rts, key=lambda r: r.plural):
            res.extend(rt.discovery())
        out = {"kind": "APIResourceList", "groupVersion": "%s/%s" % (group, version) if group
               else "v1", "resources": res}
        if group:
            out["apiVersion"] = "v1"
        return out

    def _openapi(self, segs):
        sim = self.server.sim
        if len(segs) >= 2 and segs[1] == "v2":
            # Only OpenAPI v3 is served; kubectl 1.32 falls back to its compiled-in types.
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if len(segs) < 2 or segs[1] != "v3":
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        with sim.store.lock:
            sim.openapi.refresh(sim.store.types)
            docs = sim.openapi.docs
            root = sim.openapi.root()
        if len(segs) == 2:
            return self._send(200, root)
        p = "/".join(segs[2:])
        if p not in docs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        h, raw = docs[p]
        hdr = {"Etag": '"%s"' % h}
        if self._q.get("hash") == h:
            hdr["Cache-Control"] = "public, immutable"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in hdr.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)
        sim.faults.count("openapi", 200)


def _ordered_groups(groups):
    order = ["apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io",
             "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io", "policy",
             "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
             "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
             "discovery.k8s.io", "flowcontrol.apiserver.k8s.io"]
    out = []
    for g in order:
        if g in groups:
            out.append((g, groups[g]))
    for g in sorted(groups):
        if g and g not in order:
            out.append((g, sorted(groups[g], key=version_priority)))
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, addr, handler, sim, ssl_ctx):
        self.sim = sim
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # TLS handshakes happen in the connection's own thread, never in the accept loop.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_ctx is not None:
            try:
                request.settimeout(10)
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return
        self.sim._track(request, True)
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            self.sim._track(request, False)

    def handle_error(self, request, client_address):
        if self.sim.verbose:
            super().handle_error(request, client_address)


def make_certs(state_dir):
    """CA and serving certificate for 127.0.0.1 and the `kubernetes` Service names."""
    ca_key = os.path.join(state_dir, "ca.key")
    ca_crt = os.path.join(state_dir, "ca.crt")
    key = os.path.join(state_dir, "apiserver.key")
    crt = os.path.join(state_dir, "apiserver.crt")
    pki.make_ca(ca_key, ca_crt, "kubesim-ca")
    pki.sign(ca_crt, ca_key, key, crt, "/CN=kube-apiserver", pki.api_server_sans(["127.0.0.1"]))
    return ca_crt, crt, key


class APIServer:
    """The simulator as an object: start() serves in background threads, stop() ends it."""

    def __init__(self, state_dir=None, host="127.0.0.1", port=0, tls=False, token=None,
                 bookmark_interval=5.0, history_size=10000, log_dir=None, anonymous_auth=True,
                 min_request_timeout=1800, verbose=False, service_cidr="10.96.0.0/12",
                 watch_cache_size=100 * 1024, watch_cache_fresh=75.0):
        self.state_dir = state_dir
        self.cidr_owner = None
        if service_cidr == "auto":
            # A loopback block of its own (127.200.0.0/16 cut in /20s), claimed in the
            # host-wide registry so parallel local clusters never share service IPs.
            from kubesim import kubelet_ipam
            self.cidr_owner = "apiserver:%s" % (state_dir or os.getpid())
            o = kubelet_ipam.claim("clusterip", self.cidr_owner, 1, first=0, last=15)[0]
            service_cidr = "127.200.%d.0/20" % (o * 16)
        self.service_cidr = service_cidr
        self.host = host
        self.port = port
        self.tls = tls
        self.token = token or secrets.token_hex(24)
        self.bookmark_interval = bookmark_interval
        self.log_dir = log_dir
        self.anonymous_auth = anonymous_auth
        self.min_request_timeout = min_request_timeout
        self.verbose = verbose
        self.store = Store(history_size=history_size, service_cidr=self.service_cidr,
                           watch_cache_max=watch_cache_size, watch_cache_fresh=watch_cache_fresh)
        self.authorizer = rbac.Authorizer(self.store)
        self.faults = Faults()
        self.openapi = OpenAPICache()
        self.stopping = False
        self.httpd = None
        self.thread = None
        self.url = None
        self.ca_file = None
        self._conns = set()
        self._conns_lock = threading.Lock()

    def _track(self, sock, add):
        with self._conns_lock:
            if add:
                self._conns.add(sock)
            else:
                self._conns.discard(sock)

    def start(self):
        ctx = None
        if self.tls:
            if not self.state_dir:
                raise ValueError("TLS needs a state_dir for the certificates")
            os.makedirs(self.state_dir, exist_ok=True)
            ca, crt, key = make_certs(self.state_dir)
            self.ca_file = ca
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(crt, key)
            ctx.set_alpn_protocols(["http/1.1"])
        self.httpd = _Server((self.host, self.port), Handler, self, ctx)
        self.port = self.httpd.server_address[1]
        self.url = "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.port)
        if self.state_dir:
            self._write_state()
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="kubesim-apiserver", daemon=True)
        self.thread.start()
        return self

    def _write_state(self):
        d = self.state_dir
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "token"), "w") as f:
            f.write(self.token + "\n")
        os.chmod(os.path.join(d, "token"), 0o600)
        cluster = "    server: %s\n" % self.url
        if self.ca_file:
            cluster += "    certificate-authority: %s\n" % os.path.abspath(self.ca_file)
        kc = ("apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n" + cluster +
              "contexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim\n"
              "    namespace: default\ncurrent-context: kubesim\npreferences: {}\nusers:\n"
              "- name: kubesim\n  user:\n    token: %s\n" % self.token)
        tmp = os.path.join(d, "kubeconfig.tmp")
        with open(tmp, "w") as f:
            f.write(kc)
        os.chmod(tmp, 0o600)
        os.replace(tmp, os.path.join(d, "kubeconfig"))
        info = {"url": self.url, "host": self.host, "port": self.port, "token": self.token,
                "tls": self.tls, "pid": os.getpid()}
        if self.ca_file:
            info["ca"] = os.path.abspath(self.ca_file)
        tmp = os.path.join(d, "apiserver.json.tmp")
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, os.path.join(d, "apiserver.json"))

    def stop(self):
        self.stopping = True
        if self.cidr_owner:
            from kubesim import kubelet_ipam
            kubelet_ipam.release("clusterip", self.cidr_owner)
        self.faults.paused.set()
        self.store.stop()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            with self._conns_lock:
                conns = list(self._conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self.thread:
            self.thread.join(timeout=5)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="kube-apiserver simulator")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--token")
    ap.add_argument("--bookmark-interval", type=float, default=5.0)
    ap.add_argument("--history-size", type=int, default=10000,
                    help="events kept for paginated and Exact lists (continue tokens)")
    ap.add_argument("--watch-cache-size", type=int, default=100 * 1024,
                    help="upper bound of each resource's watch window (watch_cache.go: 100*1024)")
    ap.add_argument("--watch-cache-fresh-seconds", type=float, default=75.0,
                    help="eventFreshDuration: the window grows while its events are this fresh")
    ap.add_argument("--log-dir")
    ap.add_argument("--anonymous-auth", default="true", choices=["true", "false"])
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--service-cidr", default="10.96.0.0/12",
                    help="ClusterIP range, or 'auto' for a free 127.200.x.0/20 block")
    a = ap.parse_args(argv)
    srv = APIServer(state_dir=a.state_dir, host=a.host, port=a.port, tls=a.tls, token=a.token,
                    bookmark_interval=a.bookmark_interval, history_size=a.history_size,
                    log_dir=a.log_dir, anonymous_auth=a.anonymous_auth == "true",
                    verbose=a.verbose, service_cidr=a.service_cidr,
                    watch_cache_size=a.watch_cache_size,
                    watch_cache_fresh=a.watch_cache_fresh_seconds)
    srv.start()
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.stderr.write("kubesim apiserver listening on %s\n" % srv.url)
    sys.stderr.flush()
    gcpause.log_pauses("kubesim")
    gcpause.freeze_periodically(done)
    while not done.wait(1.0):
        pass
    srv.stop()
    return 0


_ = (base64,)

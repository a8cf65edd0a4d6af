"""Minimal Kubernetes REST client for the kubelet, controller and proxy simulators.

Python standard library only.  It speaks to any API server the way client-go
does: bearer token over HTTPS (or plain HTTP), JSON bodies, list + watch with
bookmarks and a relist on "410 Gone"
(https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes),
/status subresource writes, merge and strategic-merge patches.
"""

import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Where each resource lives in the REST namespace: (group/version prefix, namespaced).
# Paths follow https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris
RESOURCES = {
    "pods": ("api/v1", True),
    "services": ("api/v1", True),
    "endpoints": ("api/v1", True),
    "configmaps": ("api/v1", True),
    "secrets": ("api/v1", True),
    "events": ("api/v1", True),
    "serviceaccounts": ("api/v1", True),
    "namespaces": ("api/v1", False),
    "nodes": ("api/v1", False),
    "endpointslices": ("apis/discovery.k8s.io/v1", True),
    "deployments": ("apis/apps/v1", True),
    "replicasets": ("apis/apps/v1", True),
    "jobs": ("apis/batch/v1", True),
    "leases": ("apis/coordination.k8s.io/v1", True),
    "customresourcedefinitions": ("apis/apiextensions.k8s.io/v1", False),
    "rayclusters": ("apis/ray.io/v1", True),
}


class ApiError(Exception):
    """A non-2xx answer from the API server (a metav1.Status body when it has one)."""

    def __init__(self, code, body, method="", path=""):
        self.code = code
        self.body = body
        reason = ""
        if isinstance(body, dict):
            reason = body.get("reason") or ""
            msg = body.get("message") or ""
        else:
            msg = str(body)[:200]
        self.reason = reason
        super().__init__("%s %s -> %d %s %s" % (method, path, code, reason, msg))


def rfc3339(t=None):
    """Time in the RFC 3339 form the API uses (seconds precision, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def parse_rfc3339(s):
    """Seconds since the epoch of an RFC 3339 timestamp, or None."""
    if not s:
        return None
    import calendar

    s = s.rstrip("Z")
    frac = 0.0
    if "." in s:
        s, f = s.split(".", 1)
        try:
            frac = float("0." + "".join(ch for ch in f if ch.isdigit()))
        except ValueError:
            frac = 0.0
    try:
        return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + frac
    except ValueError:
        return None


class KubeClient:
    """A thread-safe REST client (one keep-alive connection per thread)."""

    def __init__(self, url, token=None, cafile=None, insecure=False, timeout=30.0, user_agent="kubesim"):
        u = urllib.parse.urlsplit(url)
        self.scheme = u.scheme or "https"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.scheme == "https" else 80)
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        self._ctx = None
        if self.scheme == "https":
            if insecure or not cafile:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            else:
                ctx = ssl.create_default_context(cafile=cafile)
                # The simulator's certificate names 127.0.0.1; hostname checks
                # stay on when the CA is known (kubectl does the same).
            self._ctx = ctx
        self._local = threading.local()

    @classmethod
    def from_state_dir(cls, state_dir, **kw):
        """Client for the API server whose apiserver.json/ca.crt live in state_dir."""
        with open(os.path.join(state_dir, "apiserver.json")) as f:
            info = json.load(f)
        url = info.get("url") or "https://%s:%s" % (info.get("host", "127.0.0.1"), info["port"])
        token = info.get("token")
        if not token and os.path.exists(os.path.join(state_dir, "token")):
            with open(os.path.join(state_dir, "token")) as f:
                token = f.read().strip()
        ca = os.path.join(state_dir, "ca.crt")
        return cls(url, token=token, cafile=ca if os.path.exists(ca) else None, **kw)

    # -- low level -----------------------------------------------------------------

    def _new_conn(self, timeout):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, ctype=None):
        h = {"Accept": JSON, "User-Agent": self.user_agent}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if ctype:
            h["Content-Type"] = ctype
        return h

    def request(self, method, path, body=None, ctype=JSON, query=None):
        """Send one request; returns the decoded JSON body or raises ApiError."""
        if query:
            path = path + "?" + urllib.parse.urlencode(query)
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
        for attempt in range(3):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._new_conn(self.timeout)
                self._local.conn = conn
            try:
                conn.request(method, "/" + path.lstrip("/"), body=data,
                             headers=self._headers(ctype if data is not None else None))
                resp = conn.getresponse()
                raw = resp.read()
                code = resp.status
            except (http.client.HTTPException, OSError):
                try:
                    conn.close()
                except OSError:
                    pass
                self._local.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))
                continue
            try:
                obj = json.loads(raw) if raw else {}
            except ValueError:
                obj = raw.decode("utf-8", "replace")
            if code >= 300:
                raise ApiError(code, obj, method, path)
            return obj
        raise ApiError(0, "unreachable", method, path)

    @staticmethod
    def path(resource, namespace=None, name=None, sub=None):
        prefix, namespaced = RESOURCES.get(resource, ("api/v1", True))
        p = prefix
        if namespaced and namespace:
            p += "/namespaces/" + namespace
        p += "/" + resource
        if name:
            p += "/" + name
        if sub:
            p += "/" + sub
        return p

    # -- verbs ---------------------------------------------------------------------

    def get(self, resource, namespace=None, name=None, sub=None):
        return self.request("GET", self.path(resource, namespace, name, sub))

    def get_or_none(self, resource, namespace, name):
        try:
            return self.get(resource, namespace, name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def list(self, resource, namespace=None, label_selector=None, field_selector=None):
        q = {}
        if label_selector:
            q["labelSelector"] = label_selector
        if field_selector:
            q["fieldSelector"] = field_selector
        return self.request("GET", self.path(resource, namespace), query=q or None)

    def create(self, resource, namespace, obj, sub=None, name=None):
        return self.request("POST", self.path(resource, namespace, name, sub), obj)

    def replace(self, resource, namespace, name, obj, sub=None):
        return self.request("PUT", self.path(resource, namespace, name, sub), obj)

    def patch(self, resource, namespace, name, patch, sub=None, ptype=MERGE_PATCH):
        return self.request("PATCH", self.path(resource, namespace, name, sub), patch, ctype=ptype)

    def delete(self, resource, namespace, name, grace=None, uid=None, propagation=None):
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        if uid:
            body["preconditions"] = {"uid": uid}
        if propagation:
            body["propagationPolicy"] = propagation
        return self.request("DELETE", self.path(resource, namespace, name), body)

    def delete_ignore_missing(self, resource, namespace, name, **kw):
        try:
            return self.delete(resource, namespace, name, **kw)
        except ApiError as e:
            if e.code in (404, 409):
                return None
            raise

    def update_status(self, resource, namespace, name, mutate, attempts=8):
        """Read-modify-write of the /status subresource, re-reading on 409 Conflict
        (optimistic concurrency: https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions).
        mutate(obj) edits obj in place and returns False to skip the write."""
        for _ in range(attempts):
            try:
                obj = self.get(resource, namespace, name)
            except ApiError as e:
                if e.code == 404:
                    return None
                raise
            if mutate(obj) is False:
                return obj
            try:
                return self.replace(resource, namespace, name, obj, sub="status")
            except ApiError as e:
                if e.code == 409:
                    continue
                if e.code == 404:
                    return None
                raise
        return None

    def open_watch(self, resource, namespace=None, resource_version=None, label_selector=None,
                   field_selector=None, timeout_seconds=240):
        """Open a watch stream; returns a Watch (iterate for events, close() to stop)."""
        q = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
        if resource_version:
            q["resourceVersion"] = resource_version
        if label_selector:
            q["labelSelector"] = label_selector
        if field_selector:
            q["fieldSelector"] = field_selector
        conn = self._new_conn(timeout_seconds + 30)
        path = "/" + self.path(resource, namespace) + "?" + urllib.parse.urlencode(q)
        conn.request("GET", path, headers=self._headers())
        resp = conn.getresponse()
        if resp.status != 200:
            raw = resp.read()
            conn.close()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            raise ApiError(resp.status, body, "WATCH", path)
        return Watch(conn, resp)


class Watch:
    """A streaming watch: newline-delimited JSON events
    (https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-events)."""

    def __init__(self, conn, resp):
        self.conn = conn
        self.resp = resp
        self.closed = False

    def __iter__(self):
        while not self.closed:
            try:
                line = self.resp.readline()
            except (OSError, http.client.HTTPException, ValueError, AttributeError):
                return
            if not line:
                return
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except ValueError:
                continue

    def close(self):
        self.closed = True
        try:
            sock = self.conn.sock
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.conn.close()
        except OSError:
            pass


def obj_key(obj):
    md = obj.get("metadata", {})
    ns = md.get("namespace")
    return (ns + "/" if ns else "") + md.get("name", "")


class Informer:
    """List + watch one resource into a local cache and call handler(type, obj, old)
    for every change, as a client-go shared informer does: relist on 410 Gone or a
    broken stream, resume from the last resourceVersion (bookmarks advance it)."""

    def __init__(self, client, resource, handler=None, namespace=None, label_selector=None,
                 field_selector=None, name=None):
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.handlers = [handler] if handler else []
        self.store = {}
        self.lock = threading.RLock()
        self.synced = threading.Event()
        self.stopped = threading.Event()
        self._watch = None
        self._rv = None
        self.thread = threading.Thread(target=self._run, name=name or ("informer-" + resource), daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopped.set()
        w = self._watch
        if w is not None:
            w.close()

    def items(self):
        with self.lock:
            return list(self.store.values())

    def get(self, namespace, name):
        with self.lock:
            return self.store.get((namespace + "/" if namespace else "") + name)

    def _emit(self, etype, obj, old):
        for h in self.handlers:
            try:
                h(etype, obj, old)
            except Exception as e:  # a handler bug must not kill the informer
                import traceback

                traceback.print_exc()
                print("informer %s: handler error: %s" % (self.resource, e), flush=True)

    def _relist(self):
        lst = self.client.list(self.resource, self.namespace, self.label_selector, self.field_selector)
        items = lst.get("items") or []
        kind = lst.get("kind", "")
        if kind.endswith("List"):
            kind = kind[:-4]
        api_version = lst.get("apiVersion")
        fresh = {}
        for it in items:
            it.setdefault("kind", kind)
            if api_version:
                it.setdefault("apiVersion", api_version)
            fresh[obj_key(it)] = it
        with self.lock:
            old = self.store
            self.store = fresh
        for k, o in old.items():
            if k not in fresh:
                self._emit("DELETED", o, o)
        for k, o in fresh.items():
            prev = old.get(k)
            if prev is None:
                self._emit("ADDED", o, None)
            elif prev.get("metadata", {}).get("resourceVersion") != o.get("metadata", {}).get("resourceVersion"):
                self._emit("MODIFIED", o, prev)
        self._rv = lst.get("metadata", {}).get("resourceVersion")
        self.synced.set()

    def _run(self):
        need_list = True
        failures = 0
        while not self.stopped.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._watch = self.client.open_watch(self.resource, self.namespace, self._rv,
                                                     self.label_selector, self.field_selector)
                failures = 0
                for ev in self._watch:
                    if self.stopped.is_set():
                        break
                    etype = ev.get("type")
                    obj = ev.get("object") or {}
                    if etype == "ERROR":
                        if obj.get("code") == 410:
                            need_list = True
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion")
                    if rv:
                        self._rv = rv
                    if etype == "BOOKMARK":
                        continue
                    key = obj_key(obj)
                    with self.lock:
                        old = self.store.get(key)
                        if etype == "DELETED":
                            self.store.pop(key, None)
                        else:
                            self.store[key] = obj
                    self._emit(etype, obj, old)
                if self._watch is not None:
                    self._watch.close()
            except ApiError as e:
                if e.code == 410:
                    need_list = True
                    continue
                failures += 1
            except (OSError, http.client.HTTPException, ValueError):
                failures += 1
            if self.stopped.is_set():
                break
            if failures:
                # Back off like client-go's reflector (bounded), then relist.
                need_list = True
                self.stopped.wait(min(0.1 * (2 ** min(failures, 5)), 2.0))

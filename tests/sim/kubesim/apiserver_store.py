"""In-memory object store of the API server simulator: one global resourceVersion, watch fan-out,
bounded event history (410 Gone past it), consistent paginated lists, graceful deletion,
finalizers, and the server-side controllers a real control plane runs next to the API (ownerReference
garbage collection, CRD establishment and cleanup). Namespace content deletion is the namespace
controller's, in kubesim.controllers.

References:
- https://kubernetes.io/docs/reference/using-api/api-concepts/ (resourceVersion, watch, bookmarks,
  410 Gone, limit/continue, "Efficient detection of changes").
- staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go (Create/Update/Delete,
  finalizeDelete, deletion with finalizers, shouldDeleteDuringUpdate, AllowCreateOnUpdate,
  AllowUnconditionalUpdate).
- staging/src/k8s.io/apiserver/pkg/registry/rest/create.go, update.go, delete.go (BeforeCreate,
  BeforeUpdate, BeforeDelete: uid, creationTimestamp, generation, deletionTimestamp,
  deletionGracePeriodSeconds).
- staging/src/k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go (watch filtering: objects moving
  in/out of a selector become ADDED/DELETED; slow watchers are terminated).
- pkg/controller/garbagecollector/garbagecollector.go and
  https://kubernetes.io/docs/concepts/architecture/garbage-collection/ (Background, Foreground with
  the foregroundDeletion finalizer and blockOwnerDeletion, Orphan with the orphan finalizer).
- pkg/registry/core/namespace/storage/storage.go (namespace Delete: Terminating, then gone once
  spec.finalizers is empty).
- pkg/registry/core/pod/strategy.go CheckGracefulDelete (graceful pod deletion).
"""

import base64
import bisect
import json
import queue
import threading
import time
import uuid

from kubesim import apiserver_crd as crdmod
from kubesim import apiserver_kinds as kinds
from kubesim.apiserver_errors import (ApiError, STALE, already_exists, bad_request, clone,
                                      conflict, dumps, forbidden, gone_expired, invalid,
                                      label_value_errors, name_errors, not_found,
                                      qualified_name_errors, rfc3339, generate_name,
                                      parse_time)
from kubesim.apiserver_select import fields_match, labels_match

ANNOTATIONS_LIMIT = 262144  # apimachinery/pkg/api/validation/objectmeta.go TotalAnnotationSizeLimitB
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")  # NamespaceLifecycle admission
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


class Event:
    __slots__ = ("rv", "skey", "type", "obj", "prev", "cache")

    def __init__(self, rv, skey, typ, obj, prev):
        self.rv = rv
        self.skey = skey
        self.type = typ
        self.obj = obj
        self.prev = prev
        self.cache = {}


class Watcher:
    """One watch stream: filters events and queues (type, object, event) for its handler thread."""

    def __init__(self, rt, namespace, lreqs, freqs, limit):
        self.rt = rt
        self.ns = namespace
        self.lreqs = lreqs
        self.freqs = freqs
        self.q = queue.SimpleQueue()
        self.closed = False
        self.limit = limit
        self.reason = ""

    def matches(self, obj):
        if obj is None:
            return False
        md = obj["metadata"]
        if self.ns and md.get("namespace") != self.ns:
            return False
        if self.lreqs and not labels_match(self.lreqs, md.get("labels")):
            return False
        if self.freqs and not fields_match(self.freqs, kinds.selectable(self.rt, obj)):
            return False
        return True

    def offer(self, ev):
        cur = self.matches(ev.obj) if ev.type != "DELETED" else False
        was = self.matches(ev.prev) if ev.prev is not None else False
        if ev.type == "ADDED":
            if cur:
                self.put(("ADDED", ev.obj, ev))
        elif ev.type == "MODIFIED":
            if cur and was:
                self.put(("MODIFIED", ev.obj, ev))
            elif cur:
                self.put(("ADDED", ev.obj, None))
            elif was:
                old = dict(ev.prev)
                old["metadata"] = dict(old["metadata"], resourceVersion=str(ev.rv))
                self.put(("DELETED", old, None))
        elif ev.type == "DELETED":
            if self.matches(ev.obj):
                self.put(("DELETED", ev.obj, ev))

    def put(self, item):
        if self.closed:
            return
        if self.q.qsize() >= self.limit:
            # cacheWatcher: a watcher that cannot keep up is terminated, the client re-lists.
            self.closed = True
            self.reason = "slow"
            self.q.put(None)
            return
        self.q.put(item)

    def close(self, reason="closed"):
        if not self.closed:
            self.closed = True
            self.reason = reason
            self.q.put(None)


def _key(obj):
    md = obj["metadata"]
    return (md.get("namespace") or "", md["name"])


def _owner_uids(obj):
    return [r.get("uid") for r in obj.get("metadata", {}).get("ownerReferences") or []
            if r.get("uid")]


class WatchWindow:
    """One resource's watch cache event buffer (staging/src/k8s.io/apiserver/pkg/storage/cacher/
    watch_cache.go): a window of the resource's own events whose capacity starts at the lower bound
    (100), doubles when it is full and all its events are fresher than eventFreshDuration (75 s),
    halves (not below the lower bound) when it is full and the newest quarter is older than that,
    and never exceeds the upper bound (100*1024). When full, the oldest event is dropped."""

    def __init__(self, list_rv, lower, upper, fresh):
        self.lower = max(1, min(lower, upper))
        self.upper = max(1, upper)
        self.fresh = fresh
        self.cap = self.lower
        self.evs = []
        self.times = []
        self.lo = 0  # evs[lo:] are in the window
        self.list_rv = list_rv  # the "list" the cache started from (server start, CRD served, compact)
        self.removed = False  # removedEventSinceRelist

    def size(self):
        return len(self.evs) - self.lo

    def add(self, ev, now):
        # updateCache: resizeCacheLocked, then drop the oldest event when full.
        if self.size() == self.cap:
            if now - self.times[self.lo] < self.fresh:
                self.cap = min(self.cap * 2, self.upper)
            elif now - self.times[len(self.evs) - self.cap // 4] > self.fresh:
                self.cap = max(self.cap // 2, self.lower)
                if self.size() > self.cap:
                    self.lo = len(self.evs) - self.cap
        if self.size() >= self.cap:
            self.lo += self.size() - self.cap + 1
            self.removed = True
        self.evs.append(ev)
        self.times.append(now)
        if self.lo > 1024 and self.lo * 2 > len(self.evs):
            del self.evs[:self.lo]
            del self.times[:self.lo]
            self.lo = 0

    def reset(self, list_rv):
        """A relist at list_rv (what /_sim/compact stands for): no event before it is kept."""
        self.evs, self.times, self.lo = [], [], 0
        self.list_rv = list_rv
        self.removed = False

    def too_old(self, rv):
        """getAllEventsSinceLocked: the Expired message when rv is older than the window."""
        if self.list_rv is not None and not self.removed:
            oldest = self.list_rv + 1
        elif self.size():
            oldest = self.evs[self.lo].rv
        else:
            oldest = self.list_rv + 1
        if rv < oldest - 1:
            return "too old resource version: %d (%d)" % (rv, oldest - 1)
        return None

    def since(self, rv):
        lo, hi = self.lo, len(self.evs)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.evs[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return self.evs[lo:]


class Store:
    def __init__(self, history_size=10000, watch_queue_limit=200000, service_cidr="10.96.0.0/12",
                 watch_cache_min=100, watch_cache_max=100 * 1024, watch_cache_fresh=75.0):
        self.lock = threading.RLock()
        self.rv = 0
        self.history_size = history_size
        # Per-resource watch windows (watch_cache.go defaultLowerBoundCapacity,
        # defaultUpperBoundCapacity; storagebackend DefaultEventsHistoryWindow = 75 s).
        self.watch_cache = (watch_cache_min, watch_cache_max, watch_cache_fresh)
        self.windows = {}  # skey -> WatchWindow
        self.watch_queue_limit = watch_queue_limit
        self.hist = []
        self.hist_rvs = []
        self.min_rv = 0  # every event with rv > min_rv is still in hist
        self.data = {}  # skey -> {(ns, name): obj}
        self.watchers = {}  # skey -> [Watcher]
        self.types = {}  # (group, version, plural) -> ResType
        self.uid_index = {}  # uid -> (skey, key)
        self.dependents = {}  # owner uid -> set((skey, key))
        self.alloc = kinds.Allocator(service_cidr)
        self.tasks = queue.SimpleQueue()
        self.stopping = False
        for rt in kinds.builtin_types():
            self.register(rt)
        self.worker = threading.Thread(target=self._work, name="kubesim-controllers", daemon=True)
        self.worker.start()
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create(self.rt("", "v1", "namespaces"), "",
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, {})

    # ---- registry --------------------------------------------------------------------------------

    def register(self, rt):
        self.types[(rt.group, rt.version, rt.plural)] = rt
        self.data.setdefault(rt.storage, {})
        self.watchers.setdefault(rt.storage, [])
        if rt.storage not in self.windows:
            lo, hi, fresh = self.watch_cache
            self.windows[rt.storage] = WatchWindow(self.rv, lo, hi, fresh)

    def rt(self, group, version, plural):
        return self.types.get((group, version, plural))

    def find(self, group, version, name):
        """Resource by plural, or (as kubectl never needs) by kind/singular/short name."""
        with self.lock:
            rt = self.types.get((group, version, name))
            return rt

    def groups(self):
        """Group -> ordered versions, as /apis lists them."""
        with self.lock:
            out = {}
            for (g, v, _), rt in self.types.items():
                out.setdefault(g, [])
                if v not in out[g]:
                    out[g].append(v)
            for g in out:
                out[g].sort(key=version_priority)
            return out

    def _sync_crd(self, crd, remove=False):
        spec = crd.get("spec", {})
        group = spec.get("group")
        plural = spec.get("names", {}).get("plural")
        for k in [k for k, rt in self.types.items() if rt.crd is not None
                  and rt.group == group and rt.plural == plural]:
            del self.types[k]
        if remove:
            return
        conds = {c.get("type"): c.get("status") for c in crd.get("status", {}).get("conditions", [])}
        if conds.get("Established") != "True":
            return
        for rt in crdmod.crd_restypes(crd):
            self.register(rt)

    # ---- history and events ------------------------------------------------------------------------

    def _emit(self, rt_skey, typ, obj, prev):
        ev = Event(self.rv, rt_skey, typ, obj, prev)
        self.hist.append(ev)
        self.hist_rvs.append(ev.rv)
        if len(self.hist) > 2 * self.history_size:
            cut = len(self.hist) - self.history_size
            self.min_rv = self.hist[cut - 1].rv
            del self.hist[:cut]
            del self.hist_rvs[:cut]
        win = self.windows.get(rt_skey)
        if win is not None:
            win.add(ev, time.monotonic())
        for w in self.watchers.get(rt_skey, ()):
            w.offer(ev)
        return ev

    def compact(self):
        """Forget all history: every older resourceVersion now answers 410 Gone."""
        with self.lock:
            self.min_rv = self.rv
            self.hist = []
            self.hist_rvs = []
            for win in self.windows.values():
                win.reset(self.rv)

    def drop_watches(self):
        with self.lock:
            for ws in self.watchers.values():
                for w in list(ws):
                    w.close("dropped")

    def _put(self, rt, obj, prev, typ):
        """Commit obj (already validated) with a new resourceVersion; typ ADDED/MODIFIED."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        skey = rt.storage
        key = _key(obj)
        self.data[skey][key] = obj
        uid = obj["metadata"]["uid"]
        self.uid_index[uid] = (skey, key)
        old_owners = set(_owner_uids(prev)) if prev else set()
        new_owners = set(_owner_uids(obj))
        for o in old_owners - new_owners:
            s = self.dependents.get(o)
            if s:
                s.discard((skey, key))
        for o in new_owners:
            self.dependents.setdefault(o, set()).add((skey, key))
        if new_owners - old_owners:
            self.tasks.put(("check_dep", skey, key))
        self._emit(skey, typ, obj, prev)
        return obj

    def _remove(self, rt, obj):
        skey = rt.storage
        key = _key(obj)
        self.rv += 1
        final = dict(obj)
        final["metadata"] = dict(obj["metadata"], resourceVersion=str(self.rv))
        del self.data[skey][key]
        uid = obj["metadata"]["uid"]
        self.uid_index.pop(uid, None)
        for o in _owner_uids(obj):
            s = self.dependents.get(o)
            if s:
                s.discard((skey, key))
            self.tasks.put(("check_owner", o))
        self._emit(skey, "DELETED", final, obj)
        if self.dependents.get(uid):
            self.tasks.put(("uid_gone", uid))
        if rt.kind == "CustomResourceDefinition" and rt.crd is None:
            self._sync_crd(obj, remove=True)
            skey = (obj["spec"]["group"], obj["spec"]["names"]["plural"])
            self.windows.pop(skey, None)  # a CRD served again gets a new cacher
            for w in list(self.watchers.get(skey, ())):
                w.close("resource gone")
        return final

    # ---- presentation -------------------------------------------------------------------------------

    def present(self, rt, obj):
        """The stored object as seen through rt's group/version."""
        if rt.crd is not None and obj.get("apiVersion") != rt.api_version:
            out = dict(obj)
            out["apiVersion"] = rt.api_version
            return out
        if rt.group == "events.k8s.io":
            return kinds.core_event_to_events_v1(obj)
        return obj

    def encode_event(self, rt, typ, obj, ev):
        """JSON line for one watch event; shared by all watchers of the same version."""
        ck = (rt.api_version, typ)
        if ev is not None and ev.type == typ:
            line = ev.cache.get(ck)
            if line is not None:
                return line
        line = (dumps({"type": typ, "object": self.present(rt, obj)}) + "\n").encode()
        if ev is not None and ev.type == typ:
            ev.cache[ck] = line
        return line

    # ---- reads ---------------------------------------------------------------------------------

    def get(self, rt, ns, name):
        with self.lock:
            obj = self.data[rt.storage].get((ns or "", name))
            if obj is None:
                raise not_found(rt.plural, rt.group, name)
            return self.present(rt, obj)

    def _check_ns(self, rt, ns):
        if rt.namespaced and ns:
            return self.data[("", "namespaces")].get(("", ns))
        return None

    def namespace_lifecycle(self, rt, ns, md):
        """The NamespaceLifecycle admission plugin on create (staging/src/k8s.io/apiserver/pkg/
        admission/plugin/namespace/lifecycle/admission.go): 404 for a missing namespace, 403 with
        cause NamespaceTerminating for a terminating one."""
        with self.lock:
            nso = self._check_ns(rt, ns)
            if nso is None:
                raise not_found("namespaces", "", ns)
            if (nso.get("status") or {}).get("phase") == "Terminating" or \
                    nso["metadata"].get("deletionTimestamp"):
                err = forbidden(rt.plural, rt.group, md.get("name") or md.get("generateName", ""),
                                "unable to create new content in namespace %s because it is being "
                                "terminated" % ns)
                err.details["causes"] = [{"reason": "NamespaceTerminating",
                                          "message": "namespace %s is being terminated" % ns,
                                          "field": "metadata.namespace"}]
                raise err

    def list(self, rt, ns, lreqs, freqs, limit=0, cont=None, rv=None, rv_match=None):
        with self.lock:
            items = self.data[rt.storage]
            snap_rv = self.rv
            start = None
            if cont:
                try:
                    tok = json.loads(base64.b64decode(cont + "=" * (-len(cont) % 4)).decode())
                    snap_rv = int(tok["rv"])
                    start = tok["start"]
                except Exception:
                    raise bad_request("continue key is not valid: illegal base64 data at input byte 0")
                if snap_rv < self.min_rv:
                    # The etcd3 store's answer when the snapshot is compacted (api-concepts:
                    # "the server will respond with a 410 ResourceExpired error").
                    raise ApiError(410, "Expired", "The provided continue parameter is too old to "
                                   "display a consistent list result. You can start a new list "
                                   "without the continue parameter.")
                items = self._snapshot(rt.storage, snap_rv)
            elif rv not in (None, "", "0") and rv_match == "Exact":
                snap_rv = int(rv)
                if snap_rv < self.min_rv:
                    raise gone_expired("too old resource version: %d (%d)" % (snap_rv, self.min_rv + 1))
                items = self._snapshot(rt.storage, snap_rv)
            keys = sorted(items.keys())
            if start is not None:
                sk = tuple(start.split("\x00", 1)[0].split("/", 1)) if "/" in start else ("", start)
                i = bisect.bisect_right(keys, sk)
                keys = keys[i:]
            out = []
            nxt = None
            remaining = 0
            for idx, k in enumerate(keys):
                if ns and k[0] != ns:
                    continue
                o = items[k]
                if lreqs and not labels_match(lreqs, o["metadata"].get("labels")):
                    continue
                if freqs and not fields_match(freqs, kinds.selectable(rt, o)):
                    continue
                if limit and len(out) >= limit:
                    nxt = out[-1]
                    remaining = sum(1 for kk in keys[idx:] if not ns or kk[0] == ns)
                    break
                out.append(o)
            meta = {"resourceVersion": str(snap_rv)}
            if nxt is not None:
                md = nxt["metadata"]
                start = "%s/%s" % (md.get("namespace") or "", md["name"]) if md.get("namespace") \
                    else md["name"]
                tok = {"v": "meta.k8s.io/v1", "rv": snap_rv, "start": start + "\x00"}
                meta["continue"] = base64.b64encode(dumps(tok).encode()).decode().rstrip("=")
                meta["remainingItemCount"] = remaining
            return [self.present(rt, o) for o in out], meta

    def _snapshot(self, skey, at):
        cur = dict(self.data[skey])
        i = bisect.bisect_right(self.hist_rvs, at)
        for ev in reversed(self.hist[i:]):
            if ev.skey != skey:
                continue
            k = _key(ev.obj)
            if ev.type == "ADDED":
                cur.pop(k, None)
            else:
                cur[k] = ev.prev
        return cur

    # ---- watch -----------------------------------------------------------------------------------

    def watch(self, rt, ns, lreqs, freqs, rv):
        """Register a watcher; returns (watcher, initial events or an ApiError to send as ERROR)."""
        with self.lock:
            w = Watcher(rt, ns, lreqs, freqs, self.watch_queue_limit)
            initial = []
            if rv in (None, "", "0"):
                # "Get State and Start at Most Recent" / "Start at Any": synthetic ADDED events.
                items = self.data[rt.storage]
                for k in sorted(items):
                    o = items[k]
                    if w.matches(o):
                        initial.append(("ADDED", o, None))
            else:
                try:
                    n = int(rv)
                except ValueError:
                    raise bad_request('invalid resource version "%s"' % rv) if False else \
                        ApiError(400, "BadRequest", "resourceVersion: Invalid value: \"%s\": "
                                 "strconv.ParseUint: parsing \"%s\": invalid syntax" % (rv, rv))
                win = self.windows[rt.storage]
                if n <= self.rv:
                    # cacher.Watch: once the request is accepted, an expired version is an ERROR
                    # event in a 200 stream (newErrWatcher), not an HTTP 410.
                    msg = win.too_old(n)
                    if msg:
                        return w, gone_expired(msg)
                if n > self.rv:
                    return w, ApiError(504, "Timeout", "Too large resource version: %d, current: %d"
                                       % (n, self.rv), {"causes": [{
                                           "reason": "ResourceVersionTooLarge",
                                           "message": "Too large resource version"}],
                                           "retryAfterSeconds": 1})
                tmp = Watcher(rt, ns, lreqs, freqs, 1 << 62)
                for ev in win.since(n):
                    tmp.offer(ev)
                while not tmp.q.empty():
                    initial.append(tmp.q.get())
            self.watchers[rt.storage].append(w)
            return w, initial

    def unwatch(self, w):
        with self.lock:
            lst = self.watchers.get(w.rt.storage, [])
            if w in lst:
                lst.remove(w)

    # ---- writes --------------------------------------------------------------------------------------

    def _validate_meta(self, rt, obj, causes):
        md = obj["metadata"]
        name = md.get("name")
        for e in name_errors(name, rt.name_rule):
            causes.append(("FieldValueInvalid", "metadata.name", 'Invalid value: "%s": %s' % (name, e)))
        for k, v in (md.get("labels") or {}).items():
            for e in qualified_name_errors(k):
                causes.append(("FieldValueInvalid", "metadata.labels",
                               'Invalid value: "%s": %s' % (k, e)))
            if not isinstance(v, str):
                causes.append(("FieldValueInvalid", "metadata.labels", "Invalid value: non-string"))
                continue
            for e in label_value_errors(v):
                causes.append(("FieldValueInvalid", "metadata.labels",
                               'Invalid value: "%s": %s' % (v, e)))
        total = 0
        for k, v in (md.get("annotations") or {}).items():
            for e in qualified_name_errors(k.lower()):
                causes.append(("FieldValueInvalid", "metadata.annotations",
                               'Invalid value: "%s": %s' % (k, e)))
            total += len(k) + len(v if isinstance(v, str) else "")
        if total > ANNOTATIONS_LIMIT:
            causes.append(("FieldValueTooLong", "metadata.annotations",
                           "Too long: must have at most %d bytes" % ANNOTATIONS_LIMIT))
        for i, f in enumerate(md.get("finalizers") or []):
            for e in qualified_name_errors(f):
                causes.append(("FieldValueInvalid", "metadata.finalizers[%d]" % i,
                               'Invalid value: "%s": %s' % (f, e)))
        ctrl = 0
        for i, r in enumerate(md.get("ownerReferences") or []):
            p = "metadata.ownerReferences[%d]" % i
            for f in ("apiVersion", "kind", "name", "uid"):
                if not r.get(f):
                    causes.append(("FieldValueInvalid" if f != "uid" else "FieldValueInvalid",
                                   p + "." + f, 'Invalid value: "": %s must not be empty' % f
                                   if f != "uid" else 'Invalid value: "": uid must not be empty'))
            if r.get("controller"):
                ctrl += 1
        if ctrl > 1:
            causes.append(("FieldValueInvalid", "metadata.ownerReferences",
                           "Invalid value: []v1.OwnerReference{...}: Only one reference can have "
                           "Controller set to true"))

    def _prepare(self, rt, obj, old, unknown_out):
        """Defaulting, structural schema handling and validation shared by create and update."""
        causes = []
        if rt.crd is not None:
            obj, unknown, ccauses = crdmod.process_custom_resource(rt, obj)
            unknown_out.extend(unknown)
            causes.extend(ccauses)
        else:
            try:
                kinds.decode_bytes_fields(rt, obj)
            except kinds.Base64Error as e:
                # The serializer's decode error (runtime/serializer/json), a 400 BadRequest.
                raise bad_request("%s in version \"%s\" cannot be handled as a %s: %s"
                                  % (rt.kind, rt.version, rt.kind, e))
            kinds.apply_defaults(rt, obj, self.alloc, old is None)
            if rt.kind == "CustomResourceDefinition":
                crdmod.crd_defaults(obj)
                causes.extend(crdmod.crd_validate(obj))
            kc = kinds.validate(rt, obj, old)
            causes.extend(kc)
        md = obj["metadata"]
        for f in ("labels", "annotations", "finalizers", "ownerReferences"):
            # ObjectMeta fields are `omitempty`: an empty map or list is not stored.
            if f in md and not md[f]:
                del md[f]
        self._validate_meta(rt, obj, causes)
        if causes:
            raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)
        return obj

    def create(self, rt, ns, body, params, unknown_out=None):
        unknown_out = [] if unknown_out is None else unknown_out
        with self.lock:
            obj = self._new_object(rt, ns, body, unknown_out)
            if params.get("dryRun"):
                return self.present(rt, obj)
            if rt.group == "events.k8s.io":
                obj = kinds.events_v1_to_core(obj)
                obj["metadata"] = obj["metadata"]
            if rt.kind == "CustomResourceDefinition" and rt.crd is None:
                obj["metadata"].setdefault("finalizers", [])
                if CRD_FINALIZER not in obj["metadata"]["finalizers"]:
                    obj["metadata"]["finalizers"].append(CRD_FINALIZER)
                crdmod.crd_status(obj)
            self._put(rt, obj, None, "ADDED")
            if rt.kind == "CustomResourceDefinition" and rt.crd is None:
                self._sync_crd(obj)
            return self.present(rt, obj)

    def _new_object(self, rt, ns, body, unknown_out):
        if not isinstance(body, dict):
            raise bad_request("Object 'Kind' is missing in '%s'" % str(body)[:100])
        obj = clone(body)
        self._check_kind(rt, obj)
        md = obj.get("metadata")
        if not isinstance(md, dict):
            md = {}
            obj["metadata"] = md
        if rt.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            md["namespace"] = ns
            self.namespace_lifecycle(rt, ns, md)
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = generate_name(md["generateName"])
            else:
                raise invalid(rt.kind, rt.group, "", [("FieldValueRequired", "metadata.name",
                                                       "Required value: name or generateName is "
                                                       "required")])
        # storage/etcd3/store.go Create: a parseable non-zero resourceVersion is refused with
        # ErrResourceVersionSetOnCreate, which reaches the client as a bare 500 Status
        # (kubernetes/kubernetes#62836; an unparseable one such as "-1" is ignored, #113847).
        rv = md.get("resourceVersion")
        if isinstance(rv, str) and rv.isdigit() and int(rv) != 0:
            raise ApiError(500, "", "resourceVersion should not be set on objects to be created")
        # rest.BeforeCreate / FillObjectMetaSystemFields.
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = rfc3339()
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields",
                  "resourceVersion"):
            md.pop(f, None)
        if rt.generation:
            md["generation"] = 1
        else:
            md.pop("generation", None)
        if rt.status and rt.kind not in ("Pod", "Service", "Namespace", "Node", "CustomResourceDefinition"):
            # PrepareForCreate of kinds with a status subresource drops client-set status
            # (deployments, jobs, custom resources with the status subresource).
            obj.pop("status", None)
        obj = self._prepare(rt, obj, None, unknown_out)
        if self.data[rt.storage].get(_key(obj)) is not None:
            raise already_exists(rt.plural, rt.group, obj["metadata"]["name"])
        if rt.crd is not None and rt.api_version != getattr(rt, "storage_version", rt.version):
            obj["apiVersion"] = rt.group + "/" + rt.storage_version
        return obj

    def _check_kind(self, rt, obj):
        kind = obj.get("kind")
        av = obj.get("apiVersion")
        if not kind:
            raise bad_request("Object 'Kind' is missing in '%s'" % dumps(obj)[:200])
        if kind != rt.kind or (av and av != rt.api_version):
            # The REST handler decodes into the endpoint's type and rejects other kinds.
            raise bad_request("the API version in the data (%s) does not match the expected API "
                              "version (%s)" % (av, rt.api_version) if kind == rt.kind else
                              "%s in version \"%s\" cannot be handled as a %s: no kind \"%s\" is "
                              "registered for version \"%s\"" % (rt.kind, rt.version, rt.kind, kind,
                                                                 av))
        obj["apiVersion"] = rt.api_version

    def update(self, rt, ns, name, body, params, sub=None, unknown_out=None, create_ok=None):
        unknown_out = [] if unknown_out is None else unknown_out
        with self.lock:
            if not isinstance(body, dict):
                raise bad_request("Object 'Kind' is missing")
            old = self.data[rt.storage].get((ns or "", name))
            if rt.group == "events.k8s.io" and isinstance(body, dict):
                pass
            if old is None:
                if sub is None and (rt.create_on_update if create_ok is None else create_ok):
                    b = clone(body)
                    b.setdefault("metadata", {})["name"] = name
                    return self.create(rt, ns, b, params, unknown_out), True
                raise not_found(rt.plural, rt.group, name)
            old_p = self.present(rt, old)
            new = clone(body)
            self._check_kind(rt, new)
            md = new.get("metadata")
            if not isinstance(md, dict):
                md = {}
                new["metadata"] = md
            if md.get("name") and md["name"] != name:
                raise bad_request("the name of the object (%s) does not match the name on the URL "
                                  "(%s)" % (md["name"], name))
            md["name"] = name
            if rt.namespaced:
                if md.get("namespace") and md["namespace"] != ns:
                    raise bad_request("the namespace of the provided object does not match the "
                                      "namespace sent on the request")
                md["namespace"] = ns
            else:
                md.pop("namespace", None)
            rv = md.get("resourceVersion")
            if rv:
                if rv != old["metadata"]["resourceVersion"]:
                    raise conflict(rt.plural, rt.group, name, STALE)
            elif not rt.unconditional_update:
                raise invalid(rt.kind, rt.group, name, [("FieldValueInvalid",
                                                         "metadata.resourceVersion",
                                                         "Invalid value: 0x0: must be specified for "
                                                         "an update")])
            new = self._prepare_update(rt, old_p, new, sub, unknown_out)
            return self._finish_update(rt, old, new, params), False

    def _prepare_update(self, rt, old, new, sub, unknown_out):
        md = new["metadata"]
        omd = old["metadata"]
        if md.get("uid") and md["uid"] != omd["uid"]:
            raise invalid(rt.kind, rt.group, omd["name"], [
                ("FieldValueInvalid", "metadata.uid",
                 'Invalid value: "%s": field is immutable' % md["uid"])])
        md["uid"] = omd["uid"]
        md["creationTimestamp"] = omd["creationTimestamp"]
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in omd:
                md[f] = omd[f]
            else:
                md.pop(f, None)
        md.pop("managedFields", None)
        md.pop("selfLink", None)
        if "generation" in omd:
            md["generation"] = omd["generation"]
        else:
            md.pop("generation", None)
        if sub == "status":
            # Status strategies: only .status changes through /status.
            st = new.get("status")
            new = clone(old)
            if st is None:
                new.pop("status", None)
            else:
                new["status"] = st
        elif sub == "ephemeralcontainers":
            # The pod's ephemeralcontainers subresource changes spec.ephemeralContainers only,
            # and only by adding: an existing one can be neither changed nor removed
            # (pkg/registry/core/pod/strategy.go podEphemeralContainersStrategy,
            # pkg/apis/core/validation ValidatePodEphemeralContainersUpdate).
            want = (new.get("spec") or {}).get("ephemeralContainers") or []
            have = (old.get("spec") or {}).get("ephemeralContainers") or []
            by_name = {c.get("name"): c for c in want if isinstance(c, dict)}
            for c in have:
                if by_name.get(c.get("name")) != c:
                    raise invalid(rt.kind, rt.group, omd["name"], [
                        ("FieldValueForbidden", "spec.ephemeralContainers",
                         "Forbidden: existing ephemeral containers \"%s\" may not be changed"
                         % c.get("name"))])
            for c in want:
                for f in ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                          "resources"):
                    if c.get(f):
                        raise invalid(rt.kind, rt.group, omd["name"], [
                            ("FieldValueForbidden", "spec.ephemeralContainers[0].%s" % f,
                             "Forbidden: cannot be set for an Ephemeral Container")])
            new_spec = clone(old.get("spec") or {})
            new_spec["ephemeralContainers"] = want
            new = clone(old)
            new["spec"] = new_spec
        elif rt.kind == "Pod" and rt.crd is None and sub is None:
            # podStrategy.PrepareForUpdate: the stored status and ephemeral containers stay.
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
            if isinstance(new.get("spec"), dict):
                eph = (old.get("spec") or {}).get("ephemeralContainers")
                if eph is None:
                    new["spec"].pop("ephemeralContainers", None)
                else:
                    new["spec"]["ephemeralContainers"] = clone(eph)
        elif rt.status:
            # Main-resource strategies (PrepareForUpdate) keep the stored status.
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        if rt.kind == "Namespace" and rt.crd is None and sub != "finalize":
            new["spec"] = clone(old.get("spec", {}))
        new = self._prepare(rt, new, old, unknown_out)
        if omd.get("deletionTimestamp"):
            added = [f for f in new["metadata"].get("finalizers") or []
                     if f not in (omd.get("finalizers") or [])]
            if added:
                raise invalid(rt.kind, rt.group, omd["name"], [
                    ("FieldValueForbidden", "metadata.finalizers",
                     "Forbidden: no new finalizers can be added if the object is being deleted, "
                     "found new finalizers []string{%s}" % ", ".join('"%s"' % f for f in added))])
        if rt.generation and sub != "status":
            if _spec_of(rt, new) != _spec_of(rt, old):
                new["metadata"]["generation"] = omd.get("generation", 0) + 1
        if rt.crd is not None and rt.api_version != getattr(rt, "storage_version", rt.version):
            new["apiVersion"] = rt.group + "/" + rt.storage_version
        if rt.group == "events.k8s.io":
            new = kinds.events_v1_to_core(new)
        return new

    def _finish_update(self, rt, old, new, params):
        if params.get("dryRun"):
            return self.present(rt, new)
        md = new["metadata"]
        cmp_new = dict(new, metadata=dict(md, resourceVersion=old["metadata"]["resourceVersion"]))
        if rt.kind == "CustomResourceDefinition" and rt.crd is None:
            crdmod.crd_status(new)
            cmp_new = dict(new, metadata=dict(md, resourceVersion=old["metadata"]["resourceVersion"]))
        if cmp_new == old:
            # GuaranteedUpdate writes nothing when the object did not change.
            return self.present(rt, old)
        if md.get("deletionTimestamp") and not md.get("finalizers") and \
                md.get("deletionGracePeriodSeconds", 0) == 0 and not _ns_finalizers(rt, new):
            # store.go shouldDeleteDuringUpdate: the last finalizer is gone.
            return self.present(rt, self._remove(rt, new))
        self._put(rt, new, old, "MODIFIED")
        if rt.kind == "CustomResourceDefinition" and rt.crd is None:
            self._sync_crd(new)
        if md.get("deletionTimestamp"):
            self._enqueue_deleting(rt, new)
        return self.present(rt, new)

    def write_internal(self, rt, new):
        """Controller write of a full stored object (no validation), keeping its version."""
        old = self.data[rt.storage].get(_key(new))
        if old is None:
            return None
        md = new["metadata"]
        if md.get("deletionTimestamp") and not md.get("finalizers") and \
                md.get("deletionGracePeriodSeconds", 0) == 0 and not _ns_finalizers(rt, new):
            return self._remove(rt, new)
        return self._put(rt, new, old, "MODIFIED")

    def delete(self, rt, ns, name, opts, params):
        """Returns (object or Status, deleted_now)."""
        with self.lock:
            obj = self.data[rt.storage].get((ns or "", name))
            if obj is None:
                raise not_found(rt.plural, rt.group, name)
            pre = opts.get("preconditions") or {}
            md = obj["metadata"]
            # rest/delete.go BeforeDelete: the conflict names the Kind, not the resource.
            if pre.get("uid") and pre["uid"] != md["uid"]:
                raise conflict(rt.kind, rt.group, name, "the UID in the precondition (%s) does not "
                               "match the UID in record (%s). The object might have been deleted "
                               "and then recreated" % (pre["uid"], md["uid"]))
            if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
                raise conflict(rt.kind, rt.group, name, "the ResourceVersion in the precondition "
                               "(%s) does not match the ResourceVersion in record (%s). The object "
                               "might have been modified" % (pre["resourceVersion"],
                                                             md["resourceVersion"]))
            if rt.kind == "Namespace" and rt.crd is None and name in IMMORTAL_NAMESPACES:
                raise forbidden("namespaces", "", name, "this namespace may not be deleted")
            if params.get("dryRun"):
                return self.present(rt, obj), False
            return self._delete(rt, obj, opts)

    def _delete(self, rt, obj, opts):
        md = obj["metadata"]
        policy = opts.get("propagationPolicy")
        if policy is None and opts.get("orphanDependents") is not None:
            policy = "Orphan" if opts["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise invalid("DeleteOptions", "", "", [("FieldValueNotSupported", "propagationPolicy",
                                                     'Unsupported value: "%s": supported values: '
                                                     '"Foreground", "Background", "Orphan", "nil"'
                                                     % policy)])
        if policy is None:
            policy = rt.gc_default if rt.crd is None else "Background"
            existing = md.get("finalizers") or []
            if "orphan" in existing:
                policy = "Orphan"
            elif "foregroundDeletion" in existing:
                policy = "Foreground"
        new = clone(obj)
        nmd = new["metadata"]
        fins = list(nmd.get("finalizers") or [])
        # rest/delete.go + store.go updateForGracefulDeletionAndFinalizers.
        if policy == "Orphan" and "orphan" not in fins:
            fins = [f for f in fins if f != "foregroundDeletion"] + ["orphan"]
        elif policy == "Foreground" and "foregroundDeletion" not in fins:
            fins = [f for f in fins if f != "orphan"] + ["foregroundDeletion"]
        elif policy == "Background":
            fins = [f for f in fins if f not in ("orphan", "foregroundDeletion")]
        grace = 0
        if rt.kind == "Pod" and rt.crd is None:
            # pod strategy CheckGracefulDelete: default grace from the spec; unscheduled or
            # terminated pods are deleted at once.
            g = opts.get("gracePeriodSeconds")
            if g is not None and g < 0:
                g = 1  # BeforeDelete: negative values are treated as 1s
            if g is None:
                g = new.get("spec", {}).get("terminationGracePeriodSeconds", 30)
            if not new.get("spec", {}).get("nodeName") or \
                    new.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                g = 0
            grace = max(0, int(g))
        if rt.kind == "Namespace" and rt.crd is None:
            # pkg/registry/core/namespace/storage/storage.go Delete: the first DELETE only sets
            # deletionTimestamp and phase Terminating; the namespace controller
            # (kube-controller-manager, kubesim.controllers) empties it and removes the
            # "kubernetes" finalizer through /finalize. A later DELETE answers the object while
            # spec.finalizers remain, and deletes it once they are gone.
            if md.get("deletionTimestamp"):
                if _ns_finalizers(rt, obj):
                    return self.present(rt, obj), False
                if md.get("finalizers"):
                    return self.present(rt, obj), False
                final = self._remove(rt, obj)
                return self._deleted_result(rt, final), True
            nmd["deletionTimestamp"] = rfc3339()
            nmd["finalizers"] = fins
            if not nmd["finalizers"]:
                nmd.pop("finalizers")
            new.setdefault("status", {})["phase"] = "Terminating"
            self._put(rt, new, obj, "MODIFIED")
            return self.present(rt, new), False
        if md.get("deletionTimestamp"):
            # Already being deleted: a shorter grace period may shorten the wait.
            cur = md.get("deletionGracePeriodSeconds", 0)
            changed = fins != (md.get("finalizers") or [])
            if grace < cur and opts.get("gracePeriodSeconds") is not None:
                # Only a shorter grace period may be given; the deadline moves by the difference.
                old_ts = parse_time(md["deletionTimestamp"]) or time.time()
                nmd["deletionGracePeriodSeconds"] = grace
                nmd["deletionTimestamp"] = rfc3339(old_ts - cur + grace)
                changed = True
            if not changed:
                return self.present(rt, obj), False
            nmd["finalizers"] = fins
            if not fins:
                nmd.pop("finalizers", None)
            if not fins and nmd.get("deletionGracePeriodSeconds", 0) == 0:
                final = self._remove(rt, new)
                return self._deleted_result(rt, final), True
            self._put(rt, new, obj, "MODIFIED")
            self._enqueue_deleting(rt, new)
            return self.present(rt, new), False
        if fins or grace > 0:
            nmd["finalizers"] = fins
            if not fins:
                nmd.pop("finalizers")
            nmd["deletionTimestamp"] = rfc3339(time.time() + grace)
            nmd["deletionGracePeriodSeconds"] = grace
            if "generation" in nmd:
                nmd["generation"] = nmd["generation"] + 1
            self._put(rt, new, obj, "MODIFIED")
            self._enqueue_deleting(rt, new)
            return self.present(rt, new), False
        final = self._remove(rt, obj)
        return self._deleted_result(rt, final), True

    def _deleted_result(self, rt, final):
        if rt.return_deleted:
            return self.present(rt, final)
        md = final["metadata"]
        det = {"name": md["name"]}
        if rt.group:
            det["group"] = rt.group
        det["kind"] = rt.plural
        det["uid"] = md["uid"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": det}

    def _enqueue_deleting(self, rt, obj):
        fins = obj["metadata"].get("finalizers") or []
        uid = obj["metadata"]["uid"]
        if "foregroundDeletion" in fins:
            self.tasks.put(("check_owner", uid))
        if "orphan" in fins:
            self.tasks.put(("orphan", uid))
        if rt.kind == "CustomResourceDefinition" and rt.crd is None and CRD_FINALIZER in fins:
            self.tasks.put(("crd", obj["metadata"]["name"]))

    # ---- server-side controllers ----------------------------------------------------------------------

    def _rt_for_skey(self, skey):
        for rt in self.types.values():
            if rt.storage == skey and (rt.group != "events.k8s.io"):
                if rt.crd is None or rt.version == getattr(rt, "storage_version", rt.version):
                    return rt
        for rt in self.types.values():
            if rt.storage == skey:
                return rt
        return None

    def _obj_by_uid(self, uid):
        loc = self.uid_index.get(uid)
        if not loc:
            return None, None
        skey, key = loc
        obj = self.data.get(skey, {}).get(key)
        return (self._rt_for_skey(skey), obj) if obj is not None else (None, None)

    def _work(self):
        while not self.stopping:
            try:
                task = self.tasks.get(timeout=0.5)
            except queue.Empty:
                continue
            if task is None:
                return
            try:
                with self.lock:
                    self._run_task(task)
            except Exception as e:  # keep the controllers alive; the test sees the symptom
                import sys
                print("kubesim: controller task %r failed: %r" % (task, e), file=sys.stderr)

    def _run_task(self, task):
        kind = task[0]
        if kind == "uid_gone":
            uid = task[1]
            if uid in self.uid_index:
                return
            for skey, key in list(self.dependents.get(uid, ())):
                self._gc_dependent(skey, key)
            self.dependents.pop(uid, None)
        elif kind == "check_dep":
            self._gc_dependent(task[1], task[2])
        elif kind == "check_owner":
            rt, owner = self._obj_by_uid(task[1])
            if owner is None or "foregroundDeletion" not in (owner["metadata"].get("finalizers") or []):
                return
            if not owner["metadata"].get("deletionTimestamp"):
                return
            blocking = False
            uid = owner["metadata"]["uid"]
            for skey, key in list(self.dependents.get(uid, ())):
                dep = self.data.get(skey, {}).get(key)
                if dep is None:
                    continue
                drt = self._rt_for_skey(skey)
                ref = next((r for r in dep["metadata"].get("ownerReferences") or []
                            if r.get("uid") == uid), {})
                if not dep["metadata"].get("deletionTimestamp"):
                    pol = "Foreground" if self.dependents.get(dep["metadata"]["uid"]) else "Background"
                    self._delete(drt, dep, {"propagationPolicy": pol})
                    dep = self.data.get(skey, {}).get(key)
                if dep is not None and ref.get("blockOwnerDeletion"):
                    blocking = True
            if not blocking:
                new = clone(owner)
                new["metadata"]["finalizers"] = [f for f in new["metadata"]["finalizers"]
                                                 if f != "foregroundDeletion"]
                if not new["metadata"]["finalizers"]:
                    del new["metadata"]["finalizers"]
                self.write_internal(rt, new)
        elif kind == "orphan":
            rt, owner = self._obj_by_uid(task[1])
            if owner is None or "orphan" not in (owner["metadata"].get("finalizers") or []):
                return
            uid = owner["metadata"]["uid"]
            for skey, key in list(self.dependents.get(uid, ())):
                dep = self.data.get(skey, {}).get(key)
                if dep is None:
                    continue
                nd = clone(dep)
                refs = [r for r in nd["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                if refs:
                    nd["metadata"]["ownerReferences"] = refs
                else:
                    nd["metadata"].pop("ownerReferences", None)
                self.write_internal(self._rt_for_skey(skey), nd)
            new = clone(owner)
            new["metadata"]["finalizers"] = [f for f in new["metadata"]["finalizers"] if f != "orphan"]
            if not new["metadata"]["finalizers"]:
                del new["metadata"]["finalizers"]
            self.write_internal(rt, new)
        elif kind == "crd":
            self._crd_cleanup(task[1])

    def _gc_dependent(self, skey, key):
        dep = self.data.get(skey, {}).get(key)
        if dep is None:
            return
        refs = dep["metadata"].get("ownerReferences") or []
        alive = [r for r in refs if r.get("uid") in self.uid_index]
        if len(alive) == len(refs):
            return
        drt = self._rt_for_skey(skey)
        if alive:
            nd = clone(dep)
            nd["metadata"]["ownerReferences"] = alive
            self.write_internal(drt, nd)
        elif not dep["metadata"].get("deletionTimestamp"):
            pol = "Foreground" if self.dependents.get(dep["metadata"]["uid"]) else "Background"
            self._delete(drt, dep, {"propagationPolicy": pol})

    def _crd_cleanup(self, name):
        crt = self.rt("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        crd = self.data[crt.storage].get(("", name))
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        spec = crd["spec"]
        skey = (spec["group"], spec["names"]["plural"])
        rts = [rt for rt in self.types.values() if rt.storage == skey]
        if rts:
            rt = rts[0]
            for key, obj in list(self.data.get(skey, {}).items()):
                self._remove(rt, obj)
        new = clone(crd)
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or []
                                         if f != CRD_FINALIZER]
        if not new["metadata"]["finalizers"]:
            del new["metadata"]["finalizers"]
        self.write_internal(crt, new)

    def stop(self):
        self.stopping = True
        self.tasks.put(None)
        self.drop_watches()


def _spec_of(rt, obj):
    if rt.crd is not None:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    return obj.get("spec")


def _ns_finalizers(rt, obj):
    if rt.kind == "Namespace" and rt.crd is None:
        return obj.get("spec", {}).get("finalizers")
    return None


_VP = None


def version_priority(v):
    """Kube-aware version order (v1 > v1beta2 > v1beta1 > v1alpha1 > others)."""
    import re
    m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
    if not m:
        return (3, 0, 0, v)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, v)


_ = (ApiError, time)

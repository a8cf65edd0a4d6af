"""Built-in resource types of the API server simulator: discovery facts, defaulting, validation,
selectable fields and Table printing.

Discovery facts (verbs, shortNames, categories, subresources) are those `kubectl api-resources`
shows on a v1.32 cluster. Defaults follow pkg/apis/<group>/v1/defaults.go, validation follows
pkg/apis/<group>/validation/validation.go, selectable fields follow pkg/registry/<group>/<kind>/
strategy.go (ToSelectableFields / GetAttrs), tables follow pkg/printers/internalversion/printers.go.
"""

import base64
import ipaddress
import re

from kubesim.apiserver_errors import (clone, name_errors, parse_time, rfc3339, since)
from kubesim.apiserver_patch import SCHEMAS
from kubesim.apiserver_select import selector_string

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]


class ResType:
    """One REST resource served at /api(s)/<group>/<version>/<plural>."""

    def __init__(self, group, version, plural, kind, namespaced=True, short=(), categories=(),
                 singular=None, name_rule="subdomain", status=False, scale=None,
                 extra_subs=(), verbs=None, generation=False, gc_default="Background",
                 return_deleted=False, unconditional_update=True, create_on_update=False,
                 fields=None, storage=None, crd=None, version_info=None):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.list_kind = kind + "List"
        self.namespaced = namespaced
        self.short = list(short)
        self.categories = list(categories)
        self.singular = singular or kind.lower()
        self.name_rule = name_rule
        self.status = status
        self.scale = scale  # (specReplicasPath, statusReplicasPath, labelSelectorPath) or None
        self.extra_subs = list(extra_subs)  # [(name, kind, verbs, group, version)]
        self.verbs = verbs or VERBS
        self.generation = generation
        self.gc_default = gc_default
        self.return_deleted = return_deleted
        self.unconditional_update = unconditional_update
        self.create_on_update = create_on_update
        self.fields = fields or []
        self.storage = storage or (group, plural)
        self.crd = crd
        self.version_info = version_info or {}
        self.virtual = False

    @property
    def api_version(self):
        return self.group + "/" + self.version if self.group else self.version

    @property
    def gv_path(self):
        return "/apis/%s/%s" % (self.group, self.version) if self.group else "/api/v1"

    def discovery(self):
        out = [_apires(self.plural, self.singular, self.namespaced, self.kind, self.verbs,
                       self.short, self.categories)]
        if self.status:
            out.append(_apires(self.plural + "/status", "", self.namespaced, self.kind, SUB_VERBS))
        if self.scale:
            r = _apires(self.plural + "/scale", "", self.namespaced, "Scale", SUB_VERBS)
            r["group"] = "autoscaling"
            r["version"] = "v1"
            out.append(r)
        for name, kind, verbs, grp, ver in self.extra_subs:
            r = _apires(self.plural + "/" + name, "", self.namespaced, kind, verbs)
            if grp is not None:
                r["group"] = grp
                r["version"] = ver
            out.append(r)
        return out


def _apires(name, singular, namespaced, kind, verbs, short=(), categories=()):
    r = {"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
         "verbs": list(verbs)}
    if short:
        r["shortNames"] = list(short)
    if categories:
        r["categories"] = list(categories)
    return r


# ---- field selectors ------------------------------------------------------------------------------


def meta_fields(obj, namespaced):
    md = obj.get("metadata", {})
    f = {"metadata.name": md.get("name", "")}
    if namespaced:
        f["metadata.namespace"] = md.get("namespace", "")
    return f


def _pod_fields(o):
    # pkg/registry/core/pod/strategy.go PodToSelectableFields.
    spec = o.get("spec", {})
    st = o.get("status", {})
    return {"spec.nodeName": spec.get("nodeName", ""),
            "spec.restartPolicy": spec.get("restartPolicy", ""),
            "spec.schedulerName": spec.get("schedulerName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
            "status.phase": st.get("phase", ""),
            "status.podIP": st.get("podIP", ""),
            "status.nominatedNodeName": st.get("nominatedNodeName", "")}


def _event_fields(o):
    # pkg/registry/core/event/strategy.go ToSelectableFields.
    io = o.get("involvedObject", {})
    src = o.get("source", {})
    return {"involvedObject.kind": io.get("kind", ""),
            "involvedObject.namespace": io.get("namespace", ""),
            "involvedObject.name": io.get("name", ""),
            "involvedObject.uid": io.get("uid", ""),
            "involvedObject.apiVersion": io.get("apiVersion", ""),
            "involvedObject.resourceVersion": io.get("resourceVersion", ""),
            "involvedObject.fieldPath": io.get("fieldPath", ""),
            "reason": o.get("reason", ""), "reportingComponent": o.get("reportingComponent", ""),
            "source": src.get("component", ""), "type": o.get("type", "")}


def _secret_fields(o):
    return {"type": o.get("type", "")}


def _node_fields(o):
    return {"spec.unschedulable": "true" if o.get("spec", {}).get("unschedulable") else "false"}


def _ns_fields(o):
    return {"status.phase": o.get("status", {}).get("phase", "")}


def _job_fields(o):
    return {"status.successful": str(o.get("status", {}).get("succeeded", 0))}


def _rs_fields(o):
    return {"status.replicas": str(o.get("status", {}).get("replicas", 0))}


def _svc_fields(o):
    return {"spec.clusterIP": o.get("spec", {}).get("clusterIP", ""),
            "spec.type": o.get("spec", {}).get("type", "")}


FIELD_FUNCS = {"Pod": _pod_fields, "Event": _event_fields, "Secret": _secret_fields,
               "Node": _node_fields, "Namespace": _ns_fields, "Job": _job_fields,
               "ReplicaSet": _rs_fields, "Service": _svc_fields}


def selectable(rt, obj):
    f = meta_fields(obj, rt.namespaced)
    fn = FIELD_FUNCS.get(rt.kind) if rt.crd is None else None
    if fn:
        f.update(fn(obj))
    return f


def supported_fields(rt):
    f = ["metadata.name"]
    if rt.namespaced:
        f.append("metadata.namespace")
    fn = FIELD_FUNCS.get(rt.kind) if rt.crd is None else None
    if fn:
        f.extend(fn({}).keys())
    if rt.crd is not None:
        for sf in rt.version_info.get("selectableFields", []) or []:
            f.append(sf.get("jsonPath", "").lstrip("."))
    return f


# ---- defaulting ---------------------------------------------------------------------------------------


def _default_container(c):
    # pkg/apis/core/v1/defaults.go SetDefaults_Container and the generated defaulters.
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if "imagePullPolicy" not in c:
        img = c.get("image", "")
        tag = ""
        last = img.rsplit("/", 1)[-1]
        if "@" in last:
            tag = "digest"
        elif ":" in last:
            tag = last.split(":", 1)[1]
        c["imagePullPolicy"] = "Always" if tag in ("", "latest") else "IfNotPresent"
    c.setdefault("resources", {})
    for p in c.get("ports", []) or []:
        p.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        pr = c.get(probe)
        if isinstance(pr, dict):
            pr.setdefault("timeoutSeconds", 1)
            pr.setdefault("periodSeconds", 10)
            pr.setdefault("successThreshold", 1)
            pr.setdefault("failureThreshold", 3)
            hg = pr.get("httpGet")
            if isinstance(hg, dict):
                hg.setdefault("path", "/")
                hg.setdefault("scheme", "HTTP")
    for e in c.get("env", []) or []:
        vf = e.get("valueFrom")
        if isinstance(vf, dict) and isinstance(vf.get("fieldRef"), dict):
            vf["fieldRef"].setdefault("apiVersion", "v1")


def default_pod_spec(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    if "serviceAccountName" in spec or "serviceAccount" in spec:
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount")
        spec["serviceAccountName"] = sa
        spec["serviceAccount"] = sa
    for c in spec.get("containers", []) or []:
        if isinstance(c, dict):
            _default_container(c)
    for c in spec.get("initContainers", []) or []:
        if isinstance(c, dict):
            _default_container(c)
    for v in spec.get("volumes", []) or []:
        if isinstance(v, dict):
            for src in ("configMap", "secret"):
                if isinstance(v.get(src), dict):
                    v[src].setdefault("defaultMode", 420)
    if spec.get("tolerations") is None and False:
        pass


def _default_template(tpl):
    if isinstance(tpl, dict):
        tpl.setdefault("metadata", {})
        tpl.setdefault("spec", {})
        if isinstance(tpl["spec"], dict):
            default_pod_spec(tpl["spec"])


def _qos(spec):
    req_any = False
    guaranteed = True
    for c in spec.get("containers", []) or []:
        res = c.get("resources") or {}
        lim = res.get("limits") or {}
        req = res.get("requests") or {}
        if lim or req:
            req_any = True
        for r in ("cpu", "memory"):
            if r not in lim:
                guaranteed = False
            elif r in req and req[r] != lim[r]:
                guaranteed = False
    if not req_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class Allocator:
    """ClusterIP and NodePort (30000-32767) allocation for Services.

    ClusterIPs come from the service CIDR (kube-apiserver --service-cluster-ip-range,
    default 10.96.0.0/12 in kubeadm). The local cluster gives each simulated cluster
    its own loopback block of 127.200.0.0/16 so its service proxy can listen on the
    very addresses the API hands out."""

    def __init__(self, cidr="10.96.0.0/12"):
        self.net = ipaddress.ip_network(cidr)
        self.next_ip = 10 if self.net.num_addresses > 256 else 0
        self.used_ips = set()
        self.next_port = 30000
        self.used_ports = set()

    def ip(self):
        while True:
            self.next_ip += 1
            if self.next_ip >= self.net.num_addresses - 1:
                raise RuntimeError("service CIDR %s is exhausted" % self.net)
            ip = str(self.net.network_address + self.next_ip)
            if ip not in self.used_ips:
                self.used_ips.add(ip)
                return ip

    def port(self):
        for _ in range(2768):
            p = self.next_port
            self.next_port = 30000 + (self.next_port - 30000 + 1) % 2768
            if p not in self.used_ports:
                self.used_ports.add(p)
                return p
        raise RuntimeError("no node ports left")


def apply_defaults(rt, obj, alloc, create):
    """Defaulting done on create and update (the generated defaulters run on every decode)."""
    kind = rt.kind if rt.crd is None else None
    spec = obj.get("spec")
    if kind == "Pod":
        obj.setdefault("spec", {})
        default_pod_spec(obj["spec"])
        # pkg/apis/core/v1/defaults.go SetDefaults_Pod: a container's limits stand for its
        # requests where those are not given (Pods only, not templates).
        for sect in ("containers", "initContainers"):
            for c in obj["spec"].get(sect) or []:
                res = c.get("resources") if isinstance(c, dict) else None
                if isinstance(res, dict) and isinstance(res.get("limits"), dict) and res["limits"]:
                    req = res.get("requests") if isinstance(res.get("requests"), dict) else {}
                    for k, v in res["limits"].items():
                        req.setdefault(k, v)
                    res["requests"] = req
        if create:
            st = obj.setdefault("status", {})
            st.setdefault("phase", "Pending")
            st["qosClass"] = _qos(obj["spec"])
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports", []) or []:
            p.setdefault("protocol", "TCP")
            if "targetPort" not in p and "port" in p:
                p["targetPort"] = p["port"]
        if spec["type"] != "ExternalName":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
            if create:
                if spec.get("clusterIP") in (None, ""):
                    spec["clusterIP"] = alloc.ip()
                if spec.get("clusterIP") != "None":
                    alloc.used_ips.add(spec["clusterIP"])
                spec["clusterIPs"] = [spec["clusterIP"]]
            if spec["type"] in ("NodePort", "LoadBalancer"):
                spec.setdefault("externalTrafficPolicy", "Cluster")
                for p in spec.get("ports", []) or []:
                    if not p.get("nodePort"):
                        p["nodePort"] = alloc.port()
                    else:
                        alloc.used_ports.add(p["nodePort"])
        if create:
            obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif kind in ("Deployment", "ReplicaSet"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            strat = spec.setdefault("strategy", {})
            strat.setdefault("type", "RollingUpdate")
            if strat["type"] == "RollingUpdate":
                ru = strat.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", "25%")
                ru.setdefault("maxSurge", "25%")
            spec.pop("revisionHistoryLimit", None)
            spec.setdefault("revisionHistoryLimit", 10)
        else:
            spec.pop("revisionHistoryLimit", None)
        _default_template(spec.get("template"))
    elif kind == "Job":
        spec = obj.setdefault("spec", {})
        # pkg/apis/batch/v1/defaults.go SetDefaults_Job.
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
            spec["parallelism"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("manualSelector", None) if False else None
        if spec.get("podReplacementPolicy") is None:
            spec["podReplacementPolicy"] = "TerminatingOrFailed"
        _default_template(spec.get("template"))
        if create and not spec.get("manualSelector"):
            # pkg/registry/batch/job/strategy.go generateSelector: labels keyed by the Job's uid.
            uid = obj["metadata"]["uid"]
            name = obj["metadata"].get("name", "")
            tl = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
            tl.setdefault("controller-uid", uid)
            tl.setdefault("batch.kubernetes.io/controller-uid", uid)
            tl.setdefault("job-name", name)
            tl.setdefault("batch.kubernetes.io/job-name", name)
            if not spec.get("selector"):
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        sd = obj.pop("stringData", None)
        if isinstance(sd, dict):
            data = obj.setdefault("data", {}) or {}
            obj["data"] = data
            for k, v in sd.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif kind == "Namespace":
        obj.setdefault("spec", {})["finalizers"] = obj.get("spec", {}).get("finalizers", ["kubernetes"]) \
            if not create else ["kubernetes"]
        obj.setdefault("status", {}).setdefault("phase", "Active")
        lbl = obj["metadata"].setdefault("labels", {})
        lbl["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif kind == "Node":
        obj.setdefault("spec", {})
    elif kind == "ServiceAccount":
        pass
    del spec


# ---- validation --------------------------------------------------------------------------------------


_B64 = {c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


class Base64Error(ValueError):
    """base64.CorruptInputError: "illegal base64 data at input byte N"."""

    def __init__(self, offset):
        ValueError.__init__(self, "illegal base64 data at input byte %d" % offset)
        self.offset = offset


def go_b64decode(text):
    """Go's base64.StdEncoding.Decode, which encoding/json uses for []byte fields (Secret data,
    ConfigMap binaryData): padding required, '\\r' and '\\n' skipped anywhere, non-zero trailing
    bits accepted (the encoding is not Strict). Raises Base64Error with Go's offset; this follows
    decodeQuantum in go/src/encoding/base64/base64.go step by step."""
    src = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    out = bytearray()
    si, n = 0, len(src)
    while si < n:
        dbuf = [0, 0, 0, 0]
        dlen = 4
        err = None
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise Base64Error(si - j)  # j == 1, or a padded encoding without its padding
            c = src[si]
            si += 1
            v = _B64.get(c)
            if v is not None:
                dbuf[j] = v
                j += 1
                continue
            if c in (10, 13):
                continue
            if c != 61:  # '='
                raise Base64Error(si - 1)
            if j in (0, 1):
                raise Base64Error(si - 1)  # incorrect padding
            if j == 2:
                while si < n and src[si] in (10, 13):
                    si += 1
                if si == n:
                    raise Base64Error(n)  # not enough padding
                if src[si] != 61:
                    raise Base64Error(si - 1)
                si += 1
            while si < n and src[si] in (10, 13):
                si += 1
            if si < n:
                err = Base64Error(si)  # trailing garbage
            dlen = j
            break
        val = dbuf[0] << 18 | dbuf[1] << 12 | dbuf[2] << 6 | dbuf[3]
        out += bytes([(val >> 16) & 255, (val >> 8) & 255, val & 255])[:dlen - 1]
        if err is not None:
            raise err
    return bytes(out)


def decode_bytes_fields(rt, obj):
    """The JSON decoding of []byte fields (Secret data, ConfigMap binaryData): the stored and
    returned value is Go's re-encoding, so line-wrapped base64 comes back on one line. Raises
    Base64Error as the decoder does (the caller words it as the serializer does)."""
    if rt.group != "" or rt.crd is not None or rt.kind not in ("Secret", "ConfigMap"):
        return
    data = obj.get("data" if rt.kind == "Secret" else "binaryData")
    if not isinstance(data, dict):
        return
    for k, v in data.items():
        if isinstance(v, str):
            data[k] = base64.b64encode(go_b64decode(v)).decode()


def _req(path):
    return ("FieldValueRequired", path, "Required value")


def _inv(path, value, msg):
    return ("FieldValueInvalid", path, "Invalid value: %s: %s" % (_gofmt(value), msg))


def _gofmt(v):
    if isinstance(v, str):
        return '"%s"' % v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return '"%s"' % str(v)
    return str(v)


def _immutable(path, value):
    return ("FieldValueInvalid", path, "Invalid value: %s: field is immutable" % _gofmt(value))


def _containers(lst, path, causes, require=True):
    if not isinstance(lst, list) or not lst:
        if require:
            causes.append(_req(path))
        return
    seen = set()
    for i, c in enumerate(lst):
        p = "%s[%d]" % (path, i)
        if not isinstance(c, dict):
            causes.append(_inv(p, c, "must be an object"))
            continue
        n = c.get("name")
        if not n:
            causes.append(_req(p + ".name"))
        else:
            for e in name_errors(n, "label"):
                causes.append(_inv(p + ".name", n, e))
            if n in seen:
                causes.append(("FieldValueDuplicate", p + ".name", 'Duplicate value: "%s"' % n))
            seen.add(n)
        if not c.get("image"):
            causes.append(_req(p + ".image"))
        for j, port in enumerate(c.get("ports", []) or []):
            cp = port.get("containerPort") if isinstance(port, dict) else None
            if not isinstance(cp, int) or not 0 < cp < 65536:
                causes.append(_inv("%s.ports[%d].containerPort" % (p, j), cp,
                                   "must be between 1 and 65535, inclusive"))


def validate_pod_spec(spec, path, causes, template=False):
    if not isinstance(spec, dict):
        causes.append(_req(path))
        return
    _containers(spec.get("containers"), path + ".containers", causes)
    _containers(spec.get("initContainers"), path + ".initContainers", causes, require=False)
    rp = spec.get("restartPolicy")
    if rp not in ("Always", "OnFailure", "Never"):
        causes.append(("FieldValueNotSupported", path + ".restartPolicy",
                       'Unsupported value: %s: supported values: "Always", "OnFailure", "Never"'
                       % _gofmt(rp)))


def _validate_event_v1(ev, old, causes):
    """pkg/apis/core/validation/events.go for requests through events.k8s.io/v1 (field
    paths in core/v1 names, as the real server reports them)."""
    def blen(v):
        return len(v.encode("utf-8")) if isinstance(v, str) else 0

    if not ev.get("reportingController"):
        causes.append(_req("reportingController"))
    if not ev.get("reportingInstance"):
        causes.append(_req("reportingInstance"))
    elif blen(ev["reportingInstance"]) > 128:
        causes.append(_inv("reportingInstance", "", "can have at most 128 characters"))
    for f in ("action", "reason"):
        if not ev.get(f):
            causes.append(_req(f))
        elif blen(ev[f]) > 128:
            causes.append(_inv(f, "", "can have at most 128 characters"))
    if blen(ev.get("note")) > 1024:
        causes.append(_inv("message", "", "can have at most 1024 characters"))

    def series_errors():
        se = ev.get("series")
        if se is None:
            return
        if not isinstance(se.get("count"), int) or se["count"] < 2:
            causes.append(_inv("series.count", "", "should be at least 2"))
        if not se.get("lastObservedTime"):
            causes.append(_req("series.lastObservedTime"))

    if old is None:
        series_errors()
        if not ev.get("eventTime"):
            causes.append(_req("eventTime"))
        if ev.get("type") not in ("Normal", "Warning"):
            causes.append(_inv("type", "", "has invalid value: %s" % (ev.get("type") or "")))
        for new, core in (("deprecatedFirstTimestamp", "firstTimestamp"),
                          ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"),
                          ("deprecatedSource", "source")):
            if ev.get(new):
                causes.append(_inv(core, "", "needs to be unset"))
        return
    if ev.get("series") != old.get("series"):
        series_errors()
    for new, core in (("regarding", "involvedObject"), ("reason", "reason"), ("note", "message"),
                      ("deprecatedSource", "source"), ("deprecatedFirstTimestamp", "firstTimestamp"),
                      ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"),
                      ("type", "type"), ("eventTime", "eventTime"), ("action", "action"),
                      ("related", "related"), ("reportingController", "reportingController"),
                      ("reportingInstance", "reportingInstance")):
        if ev.get(new) != old.get(new):
            causes.append(_immutable(core, ev.get(new)))


def validate(rt, obj, old):
    """Kind-specific validation; returns a list of causes (type, field, message)."""
    causes = []
    if rt.crd is not None:
        return causes
    kind = rt.kind
    spec = obj.get("spec")
    if kind == "Pod":
        validate_pod_spec(spec, "spec", causes)
        if old is not None and isinstance(spec, dict):
            # pkg/apis/core/validation/validation.go ValidatePodUpdate: only images,
            # activeDeadlineSeconds, tolerations (additions) and terminationGracePeriodSeconds may change.
            a = clone(spec)
            b = clone(old.get("spec", {}))
            for s in (a, b):
                for lst in ("containers", "initContainers"):
                    for c in s.get(lst, []) or []:
                        if isinstance(c, dict):
                            c.pop("image", None)
                s.pop("activeDeadlineSeconds", None)
                s.pop("tolerations", None)
                s.pop("terminationGracePeriodSeconds", None)
                s.pop("schedulingGates", None)
                # Changed only through the ephemeralcontainers subresource, which checks them
                # (apiserver_store.py); an update of the pod itself keeps the stored ones.
                s.pop("ephemeralContainers", None)
            if a != b:
                causes.append(("FieldValueForbidden", "spec",
                               "Forbidden: pod updates may not change fields other than "
                               "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                               "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                               "existing tolerations),`spec.terminationGracePeriodSeconds` "
                               "(allow it to be set to 1 if it was previously negative)"))
    elif kind == "Service":
        spec = spec if isinstance(spec, dict) else {}
        t = spec.get("type")
        if t not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            causes.append(("FieldValueNotSupported", "spec.type",
                           'Unsupported value: %s: supported values: "ClusterIP", "ExternalName", '
                           '"LoadBalancer", "NodePort"' % _gofmt(t)))
        ports = spec.get("ports") or []
        if not ports and t != "ExternalName" and spec.get("clusterIP") != "None":
            causes.append(_req("spec.ports"))
        names = set()
        for i, p in enumerate(ports):
            pp = "spec.ports[%d]" % i
            port = p.get("port")
            if not isinstance(port, int) or not 0 < port < 65536:
                causes.append(_inv(pp + ".port", port, "must be between 1 and 65535, inclusive"))
            if len(ports) > 1 and not p.get("name"):
                causes.append(_req(pp + ".name"))
            if p.get("name") in names:
                causes.append(("FieldValueDuplicate", pp + ".name",
                               'Duplicate value: "%s"' % p.get("name")))
            names.add(p.get("name"))
            if p.get("protocol") not in ("TCP", "UDP", "SCTP"):
                causes.append(("FieldValueNotSupported", pp + ".protocol",
                               'Unsupported value: %s: supported values: "SCTP", "TCP", "UDP"'
                               % _gofmt(p.get("protocol"))))
        if old is not None:
            oc = old.get("spec", {}).get("clusterIP")
            if spec.get("clusterIP") not in (oc, "", None) and old.get("spec", {}).get("type") != "ExternalName":
                causes.append(_immutable("spec.clusterIPs[0]", spec.get("clusterIP")))
    elif kind in ("Deployment", "ReplicaSet"):
        spec = spec if isinstance(spec, dict) else {}
        sel = spec.get("selector")
        if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            causes.append(_req("spec.selector"))
        else:
            from kubesim.apiserver_select import labels_match, selector_from_label_selector
            tl = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not labels_match(selector_from_label_selector(sel), tl):
                causes.append(_inv("spec.template.metadata.labels", tl,
                                   "`selector` does not match template `labels`"))
            if old is not None and old.get("spec", {}).get("selector") != sel:
                causes.append(_immutable("spec.selector", sel))
        r = spec.get("replicas")
        if not isinstance(r, int) or r < 0:
            causes.append(_inv("spec.replicas", r, "must be greater than or equal to 0"))
        validate_pod_spec((spec.get("template") or {}).get("spec"), "spec.template.spec", causes)
        if isinstance((spec.get("template") or {}).get("spec"), dict) and \
                spec["template"]["spec"].get("restartPolicy") not in ("Always", None):
            causes.append(("FieldValueNotSupported", "spec.template.spec.restartPolicy",
                           'Unsupported value: %s: supported values: "Always"'
                           % _gofmt(spec["template"]["spec"].get("restartPolicy"))))
    elif kind == "Job":
        spec = spec if isinstance(spec, dict) else {}
        tspec = (spec.get("template") or {}).get("spec")
        validate_pod_spec(tspec, "spec.template.spec", causes)
        if isinstance(tspec, dict) and tspec.get("restartPolicy") not in ("OnFailure", "Never"):
            causes = [c for c in causes if c[1] != "spec.template.spec.restartPolicy"]
            causes.append(("FieldValueRequired", "spec.template.spec.restartPolicy",
                           'Required value: valid values: "OnFailure", "Never"'))
        if old is not None:
            ospec = old.get("spec", {})
            if ospec.get("selector") != spec.get("selector"):
                causes.append(_immutable("spec.selector", spec.get("selector")))
            if ospec.get("template") != spec.get("template") and not ospec.get("suspend"):
                causes.append(_immutable("spec.template", spec.get("template")))
            if ospec.get("completions") != spec.get("completions"):
                causes.append(_immutable("spec.completions", spec.get("completions")))
    elif kind == "Secret":
        for k, v in (obj.get("data") or {}).items():
            if not re.match(r"^[-._a-zA-Z0-9]+$", k):
                causes.append(_inv("data[%s]" % k, k, "a valid config key must consist of "
                                   "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or"
                                   " 'KEY_NAME',  or 'key-name', regex used for validation is "
                                   "'[-._a-zA-Z0-9]+')"))
        if old is not None and old.get("type") != obj.get("type"):
            causes.append(_immutable("type", obj.get("type")))
        if old is not None and old.get("immutable") and (old.get("data") != obj.get("data")):
            causes.append(("FieldValueForbidden", "data",
                           "Forbidden: field is immutable when `immutable` is set"))
    elif kind == "ConfigMap":
        for sect in ("data", "binaryData"):
            for k in (obj.get(sect) or {}):
                if not re.match(r"^[-._a-zA-Z0-9]+$", k):
                    causes.append(_inv("%s[%s]" % (sect, k), k, "a valid config key must consist "
                                       "of alphanumeric characters, '-', '_' or '.' (e.g. "
                                       "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for"
                                       " validation is '[-._a-zA-Z0-9]+')"))
        if old is not None and old.get("immutable") and (old.get("data") != obj.get("data")):
            causes.append(("FieldValueForbidden", "data",
                           "Forbidden: field is immutable when `immutable` is set"))
    elif kind == "Lease":
        ld = (spec or {}).get("leaseDurationSeconds")
        if ld is not None and (not isinstance(ld, int) or ld <= 0):
            causes.append(_inv("spec.leaseDurationSeconds", ld, "must be greater than 0"))
    elif kind == "Event" and rt.group == "events.k8s.io":
        _validate_event_v1(obj, old, causes)
    elif kind == "EndpointSlice":
        at = obj.get("addressType")
        if at not in ("IPv4", "IPv6", "FQDN"):
            causes.append(("FieldValueNotSupported", "addressType",
                           'Unsupported value: %s: supported values: "FQDN", "IPv4", "IPv6"'
                           % _gofmt(at)))
        for i, ep in enumerate(obj.get("endpoints") or []):
            if not (ep or {}).get("addresses"):
                causes.append(_req("endpoints[%d].addresses" % i))
        if old is not None and old.get("addressType") != at:
            causes.append(_immutable("addressType", at))
    return causes


# ---- Scale subresource (autoscaling/v1) -------------------------------------------------------------


def to_scale(rt, obj):
    md = obj["metadata"]
    spec_path, status_path, sel_path = rt.scale
    out = {"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {"name": md["name"], "namespace": md.get("namespace"), "uid": md["uid"],
                        "resourceVersion": md["resourceVersion"],
                        "creationTimestamp": md["creationTimestamp"]},
           "spec": {}, "status": {"replicas": 0}}
    if not rt.namespaced:
        del out["metadata"]["namespace"]
    r = jsonpath_get(obj, spec_path)
    if r is not None:
        out["spec"]["replicas"] = r
    sr = jsonpath_get(obj, status_path)
    out["status"]["replicas"] = sr if isinstance(sr, int) else 0
    if rt.crd is None:
        sel = obj.get("spec", {}).get("selector")
        if sel:
            out["status"]["selector"] = selector_string(sel)
    elif sel_path:
        sel = jsonpath_get(obj, sel_path)
        if isinstance(sel, str):
            out["status"]["selector"] = sel
    return out


def jsonpath_get(obj, path):
    """Simple JSONPath (.a.b[0].c and [?(@.k=="v")] filters) as CRD printer columns use it."""
    if not path:
        return None
    toks = re.findall(r"\.([^.\[]+)|\[(\d+)\]|\[\?\(@\.([\w.]+)\s*==\s*[\"']([^\"']*)[\"']\)\]|\['([^']+)'\]",
                      path)
    cur = obj
    for name, idx, fkey, fval, qname in toks:
        if cur is None:
            return None
        if name or qname:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(name or qname)
        elif idx:
            if not isinstance(cur, list) or int(idx) >= len(cur):
                return None
            cur = cur[int(idx)]
        elif fkey:
            if not isinstance(cur, list):
                return None
            found = None
            for it in cur:
                v = it
                for part in fkey.split("."):
                    v = v.get(part) if isinstance(v, dict) else None
                if v == fval:
                    found = it
                    break
            cur = found
    return cur


def jsonpath_set(obj, path, value):
    parts = [p for p in path.split(".") if p]
    cur = obj
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value


# ---- Tables (meta.k8s.io/v1) -------------------------------------------------------------------------


def col(name, typ="string", fmt="", desc="", priority=0):
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


NAME_COL = col("Name", "string", "name", "Name must be unique within a namespace. Is required when "
               "creating resources, although some resources may allow a client to request the "
               "generation of an appropriate name automatically. Name is primarily intended for "
               "creation idempotence and configuration definition. Cannot be updated. More info: "
               "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
AGE_COL = col("Age", "string", "", "CreationTimestamp is a timestamp representing the server time "
              "when this object was created. It is not guaranteed to be set in happens-before order "
              "across separate objects. Populated by the system. Read-only. Null for lists. More "
              "info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
              "api-conventions.md#metadata")


def _age(o):
    return since(o.get("metadata", {}).get("creationTimestamp"))


def _pod_row(o):
    # printPod in pkg/printers/internalversion/printers.go.
    spec = o.get("spec", {})
    st = o.get("status", {})
    total = len(spec.get("containers", []) or [])
    ready = 0
    restarts = 0
    last_restart = None
    reason = st.get("reason") or st.get("phase") or ""
    init = False
    ics = st.get("initContainerStatuses") or []
    for i, c in enumerate(ics):
        restarts += c.get("restartCount", 0)
        state = c.get("state", {})
        if "terminated" in state and state["terminated"].get("exitCode", 0) == 0:
            continue
        if "terminated" in state:
            t = state["terminated"]
            reason = "Init:" + (t.get("reason") or ("Signal:%d" % t["signal"] if t.get("signal")
                                                     else "ExitCode:%d" % t.get("exitCode", 0)))
        elif "waiting" in state and state["waiting"].get("reason") not in (None, "", "PodInitializing"):
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = "Init:%d/%d" % (i, len(spec.get("initContainers", []) or []))
        init = True
        break
    if not init:
        has_running = False
        for c in reversed(st.get("containerStatuses") or []):
            restarts += c.get("restartCount", 0)
            lt = ((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            if lt:
                t = parse_time(lt)
                if t and (last_restart is None or t > last_restart):
                    last_restart = t
            state = c.get("state", {})
            if state.get("waiting", {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif "terminated" in state:
                t = state["terminated"]
                reason = t.get("reason") or ("Signal:%d" % t["signal"] if t.get("signal")
                                             else "ExitCode:%d" % t.get("exitCode", 0))
            elif "running" in state and c.get("ready"):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            cond = [x for x in st.get("conditions", []) or [] if x.get("type") == "Ready"]
            reason = "Running" if cond and cond[0].get("status") == "True" else "NotReady"
    if o.get("metadata", {}).get("deletionTimestamp"):
        reason = "Unknown" if st.get("reason") == "NodeLost" else "Terminating"
    rs = str(restarts)
    if restarts and last_restart:
        import time as _t
        from kubesim.apiserver_errors import human_duration
        rs = "%d (%s ago)" % (restarts, human_duration(_t.time() - last_restart))
    gates = spec.get("readinessGates") or []
    if gates:
        conds = {c.get("type"): c.get("status") for c in st.get("conditions", []) or []}
        gr = "%d/%d" % (sum(1 for g in gates if conds.get(g.get("conditionType")) == "True"), len(gates))
    else:
        gr = "<none>"
    return [o["metadata"]["name"], "%d/%d" % (ready, total), reason, rs, _age(o),
            st.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            st.get("nominatedNodeName") or "<none>", gr]


POD_COLS = [NAME_COL, col("Ready", "string", "", "The aggregate readiness state of this pod for "
                          "accepting traffic."),
            col("Status", "string", "", "The aggregate status of the containers in this pod."),
            col("Restarts", "string", "", "The number of times the containers in this pod have "
                "been restarted and when the last container in this pod has restarted."),
            AGE_COL, col("IP", "string", "", "IP address allocated to the pod.", 1),
            col("Node", "string", "", "Name of the node this pod is assigned to.", 1),
            col("Nominated Node", "string", "", "Name of the node this pod is nominated to run on.", 1),
            col("Readiness Gates", "string", "", "Readiness gates of the pod.", 1)]


def _svc_row(o):
    spec = o.get("spec", {})
    t = spec.get("type", "")
    ext = "<none>"
    if t == "ExternalName":
        ext = spec.get("externalName", "<none>")
    elif t == "LoadBalancer":
        ing = [i.get("ip") or i.get("hostname") for i in
               (o.get("status", {}).get("loadBalancer", {}).get("ingress") or [])]
        ext = ",".join(x for x in ing if x) or "<pending>"
    elif spec.get("externalIPs"):
        ext = ",".join(spec["externalIPs"])
    ports = []
    for p in spec.get("ports", []) or []:
        if p.get("nodePort"):
            ports.append("%d:%d/%s" % (p.get("port", 0), p["nodePort"], p.get("protocol", "TCP")))
        else:
            ports.append("%d/%s" % (p.get("port", 0), p.get("protocol", "TCP")))
    sel = spec.get("selector")
    return [o["metadata"]["name"], t, spec.get("clusterIP") or "<none>", ext,
            ",".join(ports) or "<none>", _age(o),
            ",".join("%s=%s" % kv for kv in sorted(sel.items())) if sel else "<none>"]


SVC_COLS = [NAME_COL, col("Type", "string", "", "The type of the service."),
            col("Cluster-IP", "string", "", "The cluster IP of the service."),
            col("External-IP", "string", "", "The external IP of the service."),
            col("Port(s)", "string", "", "The ports of the service."), AGE_COL,
            col("Selector", "string", "", "The selector of the service.", 1)]


def _containers_images(spec):
    cs = (spec or {}).get("containers", []) or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _deploy_row(o):
    spec = o.get("spec", {})
    st = o.get("status", {})
    names, images = _containers_images((spec.get("template") or {}).get("spec"))
    return [o["metadata"]["name"], "%d/%d" % (st.get("readyReplicas", 0), spec.get("replicas", 0)),
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), _age(o), names, images,
            selector_string(spec.get("selector")) or "<none>"]


DEPLOY_COLS = [NAME_COL, col("Ready", "string", "", "Number of the pod with ready state"),
               col("Up-to-date", "integer", "", "Total number of non-terminated pods targeted by "
                   "this deployment that have the desired template spec."),
               col("Available", "integer", "", "Total number of available pods (ready for at least "
                   "minReadySeconds) targeted by this deployment."), AGE_COL,
               col("Containers", "string", "", "Names of each container in the template.", 1),
               col("Images", "string", "", "Images referenced by each container in the template.", 1),
               col("Selector", "string", "", "Label selector for pods.", 1)]


def _rs_row(o):
    spec = o.get("spec", {})
    st = o.get("status", {})
    names, images = _containers_images((spec.get("template") or {}).get("spec"))
    return [o["metadata"]["name"], spec.get("replicas", 0), st.get("replicas", 0),
            st.get("readyReplicas", 0), _age(o), names, images,
            selector_string(spec.get("selector")) or "<none>"]


RS_COLS = [NAME_COL, col("Desired", "integer", "", "Number of desired pods."),
           col("Current", "integer", "", "Number of actual replicas."),
           col("Ready", "integer", "", "The number of ready replicas."), AGE_COL,
           col("Containers", "string", "", "Names of each container in the template.", 1),
           col("Images", "string", "", "Images referenced by each container in the template.", 1),
           col("Selector", "string", "", "Label selector for pods.", 1)]


def _job_row(o):
    spec = o.get("spec", {})
    st = o.get("status", {})
    comp = spec.get("completions")
    succ = st.get("succeeded", 0)
    if comp is not None:
        completions = "%d/%d" % (succ, comp)
    else:
        par = spec.get("parallelism", 0)
        completions = "%d/1 of %d" % (succ, par) if par > 1 else "%d/1" % succ
    conds = {c.get("type"): c.get("status") for c in st.get("conditions", []) or []}
    if conds.get("Complete") == "True":
        status = "Complete"
    elif conds.get("Failed") == "True":
        status = "Failed"
    elif o.get("metadata", {}).get("deletionTimestamp"):
        status = "Terminating"
    elif conds.get("FailureTarget") == "True":
        status = "FailureTarget"
    elif conds.get("SuccessCriteriaMet") == "True":
        status = "SuccessCriteriaMet"
    elif conds.get("Suspended") == "True":
        status = "Suspended"
    else:
        status = "Running"
    start = parse_time(st.get("startTime"))
    dur = ""
    if start:
        import time as _t
        from kubesim.apiserver_errors import human_duration
        end = parse_time(st.get("completionTime")) or _t.time()
        dur = human_duration(end - start)
    names, images = _containers_images((spec.get("template") or {}).get("spec"))
    return [o["metadata"]["name"], status, completions, dur, _age(o), names, images,
            selector_string(spec.get("selector")) or "<none>"]


JOB_COLS = [NAME_COL, col("Status", "string", "", "Status of the job."),
            col("Completions", "string", "", "The completion status of the job."),
            col("Duration", "string", "", "Time required to complete the job."), AGE_COL,
            col("Containers", "string", "", "Names of each container in the template.", 1),
            col("Images", "string", "", "Images referenced by each container in the template.", 1),
            col("Selector", "string", "", "Label selector for pods.", 1)]


def _ns_row(o):
    return [o["metadata"]["name"], o.get("status", {}).get("phase", ""), _age(o)]


NS_COLS = [NAME_COL, col("Status", "string", "", "The status of the namespace"), AGE_COL]


def _node_row(o):
    conds = {c.get("type"): c.get("status") for c in o.get("status", {}).get("conditions", []) or []}
    status = "Ready" if conds.get("Ready") == "True" else ("NotReady" if "Ready" in conds else "Unknown")
    if o.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in o["metadata"].get("labels", {})
                   if k.startswith("node-role.kubernetes.io/"))
    ni = o.get("status", {}).get("nodeInfo", {})
    addrs = {a.get("type"): a.get("address") for a in o.get("status", {}).get("addresses", []) or []}
    return [o["metadata"]["name"], status, ",".join(roles) or "<none>", _age(o),
            ni.get("kubeletVersion", ""), addrs.get("InternalIP", "<none>"),
            addrs.get("ExternalIP", "<none>"), ni.get("osImage", "<unknown>"),
            ni.get("kernelVersion", "<unknown>"), ni.get("containerRuntimeVersion", "<unknown>")]


NODE_COLS = [NAME_COL, col("Status", "string", "", "The status of the node"),
             col("Roles", "string", "", "The roles of the node"), AGE_COL,
             col("Version", "string", "", "Kubelet Version reported by the node."),
             col("Internal-IP", "string", "", "List of addresses reachable to the node.", 1),
             col("External-IP", "string", "", "List of addresses reachable to the node.", 1),
             col("OS-Image", "string", "", "OS Image reported by the node.", 1),
             col("Kernel-Version", "string", "", "Kernel Version reported by the node.", 1),
             col("Container-Runtime", "string", "", "Container Runtime Version.", 1)]


def _cm_row(o):
    return [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o)]


CM_COLS = [NAME_COL, col("Data", "integer", "", "Number of data in configmap"), AGE_COL]


def _secret_row(o):
    return [o["metadata"]["name"], o.get("type", ""), len(o.get("data") or {}), _age(o)]


SECRET_COLS = [NAME_COL, col("Type", "string", "", "The type of the secret"),
               col("Data", "integer", "", "The number of data in the secret"), AGE_COL]


def _sa_row(o):
    return [o["metadata"]["name"], len(o.get("secrets") or []), _age(o)]


SA_COLS = [NAME_COL, col("Secrets", "integer", "", "Secrets is a list of the secret in the same "
                         "namespace that the pod running using this ServiceAccount is allowed to use."),
           AGE_COL]


def _ep_row(o):
    addrs = []
    for s in o.get("subsets") or []:
        for a in s.get("addresses") or []:
            for p in s.get("ports") or [{}]:
                addrs.append("%s:%s" % (a.get("ip"), p.get("port")) if p else a.get("ip"))
    shown = ",".join(addrs[:3]) + (" + %d more..." % (len(addrs) - 3) if len(addrs) > 3 else "")
    return [o["metadata"]["name"], shown or "<none>", _age(o)]


EP_COLS = [NAME_COL, col("Endpoints", "string", "", "Endpoints of the resource."), AGE_COL]


def _eps_row(o):
    ports = ",".join(str(p.get("port")) for p in o.get("ports") or [] if p.get("port") is not None)
    addrs = [a for e in o.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addrs[:3]) + (" + %d more..." % (len(addrs) - 3) if len(addrs) > 3 else "")
    return [o["metadata"]["name"], o.get("addressType", ""), ports or "<unset>", shown or "<unset>",
            _age(o)]


EPS_COLS = [NAME_COL, col("AddressType", "string", "", "The IP protocol for this slice."),
            col("Ports", "string", "", "The ports of the slice."),
            col("Endpoints", "string", "", "Endpoints of the slice."), AGE_COL]


def _lease_row(o):
    return [o["metadata"]["name"], o.get("spec", {}).get("holderIdentity") or "", _age(o)]


LEASE_COLS = [NAME_COL, col("Holder", "string", "", "The holder of the lease"), AGE_COL]


def _event_row(o):
    io = o.get("involvedObject", {})
    last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    obj = "%s/%s" % ((io.get("kind") or "").lower(), io.get("name", ""))
    return [since(last), o.get("type", ""), o.get("reason", ""), obj, o.get("message", "")]


EVENT_COLS = [col("Last Seen", "string", "", "Time when last event occurred"),
              col("Type", "string", "", "Type of this event (Normal, Warning), new types could be "
                  "added in the future."),
              col("Reason", "string", "", "This should be a short, machine understandable string "
                  "that gives the reason for this event being generated."),
              col("Object", "string", "", "Object this event is about."),
              col("Message", "string", "", "A human-readable description of the status of this "
                  "operation.")]


def _crd_row(o):
    return [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")]


DEFAULT_COLS = [NAME_COL, col("Created At", "date", "", "CreationTimestamp is a timestamp "
                              "representing the server time when this object was created.")]


TABLES = {"Pod": (POD_COLS, _pod_row), "Service": (SVC_COLS, _svc_row),
          "Deployment": (DEPLOY_COLS, _deploy_row), "ReplicaSet": (RS_COLS, _rs_row),
          "Job": (JOB_COLS, _job_row), "Namespace": (NS_COLS, _ns_row),
          "Node": (NODE_COLS, _node_row), "ConfigMap": (CM_COLS, _cm_row),
          "Secret": (SECRET_COLS, _secret_row), "ServiceAccount": (SA_COLS, _sa_row),
          "Endpoints": (EP_COLS, _ep_row), "EndpointSlice": (EPS_COLS, _eps_row),
          "Lease": (LEASE_COLS, _lease_row), "Event": (EVENT_COLS, _event_row)}


def _crd_cell(typ, value, fmt):
    # staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/tableconvertor/
    # tableconvertor.go cellForJSONValue.
    if value is None:
        return None
    if typ == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return int(value)
        return None
    if typ == "number":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if typ == "boolean":
        return value if isinstance(value, bool) else None
    if typ == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, (dict, list)):
            import json
            return json.dumps(value, separators=(",", ":"))
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if typ == "date":
        if isinstance(value, str):
            return since(value) if parse_time(value) is not None else "<invalid>"
    return None


def table_columns(rt):
    if rt.crd is not None:
        pcs = rt.version_info.get("additionalPrinterColumns")
        if not pcs:
            # The apiextensions server shows Name and Age when a version declares no columns.
            pcs = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        cols = [NAME_COL]
        for pc in pcs:
            cols.append(col(pc.get("name", ""), pc.get("type", "string"), pc.get("format", ""),
                            pc.get("description", ""), pc.get("priority", 0)))
        return cols
    if rt.kind == "CustomResourceDefinition":
        return [NAME_COL, col("Created At", "date", "", "")]
    return TABLES.get(rt.kind, (DEFAULT_COLS, None))[0]


def table_row(rt, obj):
    if rt.crd is not None:
        pcs = rt.version_info.get("additionalPrinterColumns") or \
            [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        cells = [obj["metadata"]["name"]]
        for pc in pcs:
            cells.append(_crd_cell(pc.get("type", "string"), jsonpath_get(obj, pc.get("jsonPath")),
                                   pc.get("format")))
        return cells
    ent = TABLES.get(rt.kind)
    if ent is None:
        return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp")]
    return ent[1](obj)


# ---- built-in registry ------------------------------------------------------------------------------


def builtin_types():
    b = []
    a = b.append
    # core/v1 (pkg/registry/core/*/storage/storage.go; return_deleted = ReturnDeletedObject).
    a(ResType("", "v1", "pods", "Pod", short=["po"], categories=["all"], status=True,
              return_deleted=True,
              extra_subs=[("binding", "Binding", ["create"], None, None),
                          ("ephemeralcontainers", "Pod", ["get", "patch", "update"], None, None),
                          ("eviction", "Eviction", ["create"], "policy", "v1"),
                          ("log", "Pod", ["get"], None, None)]))
    a(ResType("", "v1", "services", "Service", short=["svc"], categories=["all"], status=True,
              name_rule="dns1035", return_deleted=True,
              verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]))
    a(ResType("", "v1", "endpoints", "Endpoints", short=["ep"], singular="endpoints",
              create_on_update=True))
    a(ResType("", "v1", "secrets", "Secret"))
    a(ResType("", "v1", "configmaps", "ConfigMap", short=["cm"]))
    a(ResType("", "v1", "serviceaccounts", "ServiceAccount", short=["sa"],
              extra_subs=[("token", "TokenRequest", ["create"], "authentication.k8s.io", "v1")]))
    a(ResType("", "v1", "events", "Event", short=["ev"], create_on_update=True))
    a(ResType("", "v1", "namespaces", "Namespace", namespaced=False, short=["ns"], status=True,
              name_rule="label", return_deleted=True,
              verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
              extra_subs=[("finalize", "Namespace", ["update"], None, None)]))
    a(ResType("", "v1", "nodes", "Node", namespaced=False, short=["no"], status=True,
              return_deleted=True))
    a(ResType("apps", "v1", "deployments", "Deployment", short=["deploy"], categories=["all"],
              status=True, scale=(".spec.replicas", ".status.replicas", None), generation=True))
    a(ResType("apps", "v1", "replicasets", "ReplicaSet", short=["rs"], categories=["all"],
              status=True, scale=(".spec.replicas", ".status.replicas", None), generation=True))
    # batch/v1 Jobs default to orphaning their pods (pkg/registry/batch/job/strategy.go
    # DefaultGarbageCollectionPolicy: "OrphanDependents for batch/v1 for backwards compatibility").
    a(ResType("batch", "v1", "jobs", "Job", categories=["all"], status=True, generation=True,
              gc_default="Orphan"))
    a(ResType("coordination.k8s.io", "v1", "leases", "Lease"))
    # Stored and served only: no disruption controller fills its status, and the eviction
    # subresource does not consult it (the real control plane does both).
    a(ResType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=["pdb"], status=True,
              generation=True))
    a(ResType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"))
    # events.k8s.io/v1 shares storage with core/v1 events (pkg/registry/core/event).
    a(ResType("events.k8s.io", "v1", "events", "Event", short=["ev"], storage=("", "events"),
              create_on_update=True))
    for plural, kind, ns in (("roles", "Role", True), ("rolebindings", "RoleBinding", True),
                             ("clusterroles", "ClusterRole", False),
                             ("clusterrolebindings", "ClusterRoleBinding", False)):
        a(ResType("rbac.authorization.k8s.io", "v1", plural, kind, namespaced=ns, name_rule="path",
                  create_on_update=True))
    # Reviews are created and answered, never stored (pkg/registry/authorization/
    # selfsubjectaccessreview/rest.go, pkg/registry/authentication/selfsubjectreview/rest.go).
    # The admin token's user may do everything; a ServiceAccount's reviews are answered by the
    # RBAC authorizer (apiserver_rbac.py).
    for grp, plural, kind in (("authorization.k8s.io", "selfsubjectaccessreviews",
                               "SelfSubjectAccessReview"),
                              ("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
                              ("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview")):
        rt = ResType(grp, "v1", plural, kind, namespaced=False, verbs=["create"])
        rt.virtual = True
        a(rt)
    a(ResType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
              namespaced=False, short=["crd", "crds"], status=True, generation=True,
              unconditional_update=False, return_deleted=True))
    return b


def smp_schema(rt):
    return SCHEMAS.get(rt.kind) if rt.crd is None else None


def core_event_to_events_v1(o):
    """core/v1 Event -> events.k8s.io/v1 Event (pkg/apis/events/v1/conversion.go)."""
    out = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": o.get("metadata", {})}
    m = {"eventTime": "eventTime", "series": "series", "reportingController": "reportingComponent",
         "reportingInstance": "reportingInstance", "action": "action", "reason": "reason",
         "regarding": "involvedObject", "related": "related", "note": "message", "type": "type"}
    for new, old in m.items():
        if o.get(old) not in (None, ""):
            out[new] = o[old]
    if o.get("source"):
        out["deprecatedSource"] = o["source"]
    for new, old in (("deprecatedFirstTimestamp", "firstTimestamp"),
                     ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count")):
        if o.get(old):
            out[new] = o[old]
    out.setdefault("eventTime", None)
    return out


def events_v1_to_core(o):
    out = {"kind": "Event", "apiVersion": "v1", "metadata": o.get("metadata", {})}
    m = {"eventTime": "eventTime", "series": "series", "reportingController": "reportingComponent",
         "reportingInstance": "reportingInstance", "action": "action", "reason": "reason",
         "regarding": "involvedObject", "related": "related", "note": "message", "type": "type"}
    for new, old in m.items():
        if o.get(new) not in (None, ""):
            out[old] = o[new]
    if o.get("deprecatedSource"):
        out["source"] = o["deprecatedSource"]
    for new, old in (("deprecatedFirstTimestamp", "firstTimestamp"),
                     ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count")):
        if o.get(new):
            out[old] = o[new]
    out.setdefault("involvedObject", {})
    return out


_ = rfc3339

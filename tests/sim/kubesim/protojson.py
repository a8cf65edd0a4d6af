"""Kubernetes protobuf request bodies to JSON, for any kind of the k8s.io/api groups, driven by
the Go types themselves (k8s.io/api and k8s.io/apimachinery in the Go module cache).

controller-runtime sends the bodies of built-in kinds as application/vnd.kubernetes.protobuf
(client/apiutil/apimachinery.go createRestConfig: protobuf whenever the scheme recognises the
kind), so a client such as KubeRay creates Services, Pods, Roles, Jobs that way. The API
server simulator decodes protobuf for four kinds only (apiserver_proto.py); operators.py puts
ProtoShim (a loopback HTTP front of the API server) between KubeRay and the simulator and
hands the simulator these bodies as the JSON a Go client would have sent.

Each struct field's Go declaration carries everything needed:

    Name  string            `json:"name" protobuf:"bytes,1,opt,name=name"`
    Spec  *PodSpec          `json:"spec,omitempty" protobuf:"bytes,2,opt,name=spec"`
    ProbeHandler            `json:",inline" protobuf:"bytes,1,opt,name=handler"`

the protobuf field number, the JSON name, omitempty, inline, pointer-ness and the Go type.
The output is what encoding/json makes of the decoded Go value: omitempty zero scalars, empty
slices and maps dropped, structs kept (omitzero ones dropped when zero), metav1.Time as
RFC 3339 (zero: null), Quantity and IntOrString as scalars, []byte as base64, RawExtension and
FieldsV1 as their JSON. A field number the types do not know is an error (never silently
dropped).
"""

import base64
import glob
import json
import os
import re
import struct
import time

MAGIC = b"k8s\x00"
MOD = os.environ.get("GOMODCACHE") or "/root/go/pkg/mod"
ZERO_TIME = -62135596800  # time.Time{}.Unix()


class Undecodable(Exception):
    pass


# ---- wire format ----------------------------------------------------------------------------

def _varint(b, i):
    shift = out = 0
    while True:
        if i >= len(b):
            raise Undecodable("truncated varint")
        c = b[i]
        i += 1
        out |= (c & 0x7F) << shift
        if not c & 0x80:
            return out, i
        shift += 7
        if shift > 70:
            raise Undecodable("varint too long")


def fields(b):
    """[(number, wire type, value)]: value an int (varint), bytes (length-delimited, fixed)."""
    i, out = 0, []
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 2:
            n, i = _varint(b, i)
            v = b[i:i + n]
            if len(v) != n:
                raise Undecodable("truncated field %d" % num)
            i += n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise Undecodable("wire type %d of field %d" % (wt, num))
        out.append((num, wt, v))
    return out


def _signed(v, bits=64):
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


# ---- Go types -------------------------------------------------------------------------------

class Field:
    __slots__ = ("num", "json", "omitempty", "omitzero", "inline", "gotype")

    def __init__(self, num, jname, omitempty, inline, gotype, omitzero=False):
        self.num, self.json, self.omitempty, self.inline, self.gotype = num, jname, omitempty, inline, gotype
        self.omitzero = omitzero


class Package:
    """The struct and named types of one Go package directory (non-test files)."""

    def __init__(self, path):
        self.path = path
        self.structs = {}   # name -> ({num: Field}, [Field in order])
        self.named = {}     # name -> (underlying type expression, imports)
        self.imports = {}
        for f in sorted(glob.glob(os.path.join(path, "*.go"))):
            if f.endswith("_test.go") or os.path.basename(f).startswith("zz_generated"):
                continue
            with open(f) as fh:
                self._parse(fh.read())

    @staticmethod
    def _imports(text):
        imp = {}
        for m in re.finditer(r'^import \(\n(.*?)^\)', text, re.S | re.M):
            for line in m.group(1).splitlines():
                mm = re.match(r'\s*(?:(\w+)\s+)?"([^"]+)"', line)
                if mm:
                    imp[mm.group(1) or mm.group(2).rsplit("/", 1)[-1]] = mm.group(2)
        for mm in re.finditer(r'^import (?:(\w+)\s+)?"([^"]+)"', text, re.M):
            imp[mm.group(1) or mm.group(2).rsplit("/", 1)[-1]] = mm.group(2)
        return imp

    def _parse(self, text):
        imp = self._imports(text)
        for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, re.S | re.M):
            byn, order = {}, []
            for line in m.group(2).splitlines():
                fm = re.match(r"^\t(?:(\w+)\s+)?([^\s`]+)\s+`([^`]*)`", line)
                if not fm:
                    continue
                tags = dict(re.findall(r'(\w+):"([^"]*)"', fm.group(3)))
                pb = tags.get("protobuf")
                if not pb:
                    continue
                parts = pb.split(",")
                if len(parts) < 2 or not parts[1].isdigit():
                    continue  # protobuf:"-"
                js = tags.get("json", "").split(",")
                f = Field(int(parts[1]), js[0], "omitempty" in js[1:], "inline" in js[1:],
                          (fm.group(2), imp), "omitzero" in js[1:])
                byn[f.num] = f
                order.append(f)
            self.structs[m.group(1)] = (byn, order)
        for m in re.finditer(r"^type (\w+) ([^\s{(=]+)\s*$", text, re.M):
            if m.group(2) not in ("struct", "interface"):
                self.named[m.group(1)] = (m.group(2), imp)
        for blk in re.finditer(r"^type \(\n(.*?)^\)", text, re.S | re.M):
            for m in re.finditer(r"^\t(\w+) ([^\s{(=]+)\s*$", blk.group(1), re.M):
                self.named[m.group(1)] = (m.group(2), imp)


def _module_dir(module, version):
    d = os.path.join(MOD, "%s@%s" % (module, version))
    if not os.path.isdir(d):
        raise Undecodable("%s@%s is not in the Go module cache (%s)" % (module, version, MOD))
    return d


class Schema:
    """Go packages of k8s.io/api and k8s.io/apimachinery at one version (v0.x.y)."""

    # Types encoding/json writes as scalars or raw JSON (custom MarshalJSON).
    SPECIAL = {"k8s.io/apimachinery/pkg/api/resource.Quantity", "k8s.io/apimachinery/pkg/util/intstr.IntOrString",
               "k8s.io/apimachinery/pkg/apis/meta/v1.Time", "k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime",
               "k8s.io/apimachinery/pkg/apis/meta/v1.Duration", "k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1",
               "k8s.io/apimachinery/pkg/runtime.RawExtension"}

    def __init__(self, version):
        self.version = version
        self.roots = {"k8s.io/api": _module_dir("k8s.io/api", version),
                      "k8s.io/apimachinery": _module_dir("k8s.io/apimachinery", version)}
        self.pkgs = {}

    def package(self, imp):
        if imp not in self.pkgs:
            for mod, root in self.roots.items():
                if imp == mod or imp.startswith(mod + "/"):
                    self.pkgs[imp] = Package(os.path.join(root, imp[len(mod) + 1:]))
                    break
            else:
                raise Undecodable("package %s is outside k8s.io/api and k8s.io/apimachinery" % imp)
        return self.pkgs[imp]

    def kind_package(self, api_version):
        """The Go package of apiVersion ("v1" -> core/v1, "rbac.authorization.k8s.io/v1" -> rbac/v1)."""
        if "/" not in api_version:
            return "k8s.io/api/core/" + api_version
        group, ver = api_version.split("/", 1)
        if group == "meta.k8s.io":
            return "k8s.io/apimachinery/pkg/apis/meta/" + ver
        short = group.split(".")[0]  # rbac.authorization.k8s.io -> rbac
        return "k8s.io/api/%s/%s" % (short, ver)

    def resolve(self, expr, pkg, imports):
        """(kind, detail) of a Go type expression: ("ptr", inner), ("slice", elem), ("bytes",),
        ("map", key, value), ("scalar", name), ("special", qualified), ("struct", pkg, name)."""
        if expr.startswith("*"):
            return ("ptr", (expr[1:], pkg, imports))
        if expr == "[]byte":
            return ("bytes",)
        if expr.startswith("[]"):
            return ("slice", (expr[2:], pkg, imports))
        if expr.startswith("map["):
            depth, i = 0, 3
            for i in range(3, len(expr)):
                depth += {"[": 1, "]": -1}.get(expr[i], 0)
                if depth == 0:
                    break
            return ("map", (expr[4:i], pkg, imports), (expr[i + 1:], pkg, imports))
        if expr in ("string", "bool", "int", "int32", "int64", "uint", "uint32", "uint64", "float32", "float64",
                    "byte"):
            return ("scalar", expr)
        if "." in expr:
            alias, name = expr.split(".", 1)
            ipkg = imports.get(alias)
            if ipkg is None:
                raise Undecodable("unknown package %s in %s" % (alias, expr))
        else:
            ipkg, name = pkg, expr
        q = ipkg + "." + name
        if q in self.SPECIAL:
            return ("special", q)
        p = self.package(ipkg)
        if name in p.structs:
            return ("struct", ipkg, name)
        if name in p.named:
            under, imp = p.named[name]
            return self.resolve(under, ipkg, imp)
        raise Undecodable("unknown type %s" % q)

    # ---- decoding ----

    def decode_unknown(self, body):
        """A protobuf request body (magic + runtime.Unknown) -> the object as JSON would carry it."""
        if not body.startswith(MAGIC):
            raise Undecodable("no protobuf magic")
        api_version = kind = ""
        raw = b""
        for num, _wt, v in fields(body[len(MAGIC):]):
            if num == 1:
                for n2, _w2, v2 in fields(v):
                    if n2 == 1:
                        api_version = v2.decode()
                    elif n2 == 2:
                        kind = v2.decode()
            elif num == 2:
                raw = v
            elif num == 3 and v:
                raise Undecodable("content encoding %r" % v)
        if not kind:
            raise Undecodable("no kind")
        ipkg = self.kind_package(api_version or "v1")
        if kind not in self.package(ipkg).structs:
            # DeleteOptions, ListOptions...: metav1 types registered in every group version
            ipkg = "k8s.io/apimachinery/pkg/apis/meta/v1"
        obj = self.message(raw, ipkg, kind)
        out = {"apiVersion": api_version, "kind": kind} if api_version else {"kind": kind}
        out.update(obj)
        return out

    def message(self, b, ipkg, name):
        byn, order = self.package(ipkg).structs.get(name, (None, None))
        if byn is None:
            raise Undecodable("no struct %s.%s" % (ipkg, name))
        vals = {}
        for num, wt, v in fields(b):
            f = byn.get(num)
            if f is None:
                raise Undecodable("%s.%s has no protobuf field %d" % (ipkg, name, num))
            expr, imp = f.gotype
            t = self.resolve(expr, ipkg, imp)
            if t[0] in ("slice", "map"):
                cur = vals.setdefault(num, [] if t[0] == "slice" else {})
                if t[0] == "slice":
                    et = self.resolve(*t[1])
                    if et[0] == "scalar" and wt == 2 and et[1] != "string":
                        i = 0
                        while i < len(v):  # packed
                            x, i = _varint(v, i)
                            cur.append(self.scalar(et[1], 0, x))
                    else:
                        cur.append(self.value(et, wt, v))
                else:
                    k = val = None
                    for n2, w2, v2 in fields(v):
                        if n2 == 1:
                            k = self.value(self.resolve(*t[1]), w2, v2)
                        elif n2 == 2:
                            val = self.value(self.resolve(*t[2]), w2, v2)
                    if val is None:
                        val = self.zero(self.resolve(*t[2]))
                    cur[k] = val
            else:
                vals[num] = self.value(t, wt, v)
        out = {}
        for f in order:
            if f.num not in vals:
                continue
            v = vals[f.num]
            expr = f.gotype[0]
            if f.inline and isinstance(v, dict):
                out.update(v)
                continue
            if f.omitempty and not expr.startswith("*") and self._empty(v, expr, f, ipkg):
                continue
            if f.omitzero and v in (None, "", 0, False, {}, []):  # Go 1.24 omitzero (zero Time: null)
                continue
            out[f.json] = v
        return out

    def _empty(self, v, expr, f, ipkg):
        t = self.resolve(expr, ipkg, f.gotype[1])
        if t[0] in ("struct",) or (t[0] == "special" and t[1].endswith((".Time", ".MicroTime", ".IntOrString",
                                                                          ".Quantity", ".RawExtension"))):
            return False  # encoding/json never omits a struct
        return v in ("", 0, False, None) or v == [] or v == {}

    def zero(self, t):
        if t[0] == "scalar":
            return "" if t[1] == "string" else (False if t[1] == "bool" else 0)
        if t[0] == "bytes":
            return ""
        if t[0] == "struct":
            return {}
        return None

    def scalar(self, name, wt, v):
        if name == "string":
            return v.decode("utf-8")
        if name == "bool":
            return bool(v)
        if name in ("float64",):
            return struct.unpack("<d", v)[0]
        if name in ("float32",):
            return struct.unpack("<f", v)[0]
        if name in ("int32",):
            return _signed(v & 0xFFFFFFFF, 32) if v < (1 << 32) else _signed(v)
        if name in ("int", "int64"):
            return _signed(v)
        return v

    def value(self, t, wt, v):
        kind = t[0]
        if kind == "ptr":
            return self.value(self.resolve(*t[1]), wt, v)
        if kind == "bytes":
            return base64.b64encode(v).decode()
        if kind == "scalar":
            return self.scalar(t[1], wt, v)
        if kind == "struct":
            return self.message(v, t[1], t[2])
        if kind == "special":
            return self.special(t[1], v)
        raise Undecodable("cannot decode %r" % (t,))

    def special(self, q, b):
        f = {}
        for num, _wt, v in fields(b):
            f[num] = v
        name = q.rsplit(".", 1)[1]
        if name == "Quantity":
            return f.get(1, b"").decode()
        if name == "IntOrString":
            if f.get(1, 0) == 1:
                return f.get(3, b"").decode()
            return _signed(f.get(2, 0) & 0xFFFFFFFF, 32)
        if name in ("Time", "MicroTime"):
            secs, nanos = _signed(f.get(1, 0)), f.get(2, 0)
            if not f or (secs == ZERO_TIME and not nanos):  # Time.Marshal: zero -> no bytes
                return None
            t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
            return t + (".%06dZ" % (nanos // 1000) if name == "MicroTime" else "Z")
        if name == "Duration":
            return "%gs" % (_signed(f.get(1, 0)) / 1e9)
        if name in ("FieldsV1", "RawExtension"):
            raw = f.get(1, b"")
            return json.loads(raw) if raw else None
        raise Undecodable(q)


_schemas = {}


def schema(version):
    if version not in _schemas:
        _schemas[version] = Schema(version)
    return _schemas[version]


def to_json(body, version):
    """A protobuf request body -> JSON bytes (raises Undecodable)."""
    return json.dumps(schema(version).decode_unknown(body)).encode()


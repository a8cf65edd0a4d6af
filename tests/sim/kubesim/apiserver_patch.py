"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Strategic merge patch follows staging/src/k8s.io/apimachinery/pkg/util/strategicpatch/patch.go
and https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
(patchStrategy/patchMergeKey struct tags of the core/apps/batch types, directives $patch
(replace/delete/merge), $retainKeys, $deleteFromPrimitiveList/<field>, $setElementOrder/<field>).
"""

from kubesim.apiserver_errors import bad_request, clone, generic_422

# ---- RFC 7386 ---------------------------------------------------------------------------------


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return clone(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---- RFC 6902 (the behaviour of github.com/evanphx/json-patch used by the apiserver) -------------


def _unescape(tok):
    return tok.replace("~1", "/").replace("~0", "~")


def _split(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise generic_422("invalid JSON pointer: %r" % path)
    return [_unescape(t) for t in path[1:].split("/")]


def _parent(doc, toks, path):
    cur = doc
    for t in toks[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise generic_422("doc is missing path: \"%s\": missing value" % path)
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                idx = int(t)
            except ValueError:
                raise generic_422("doc is missing path: \"%s\": missing value" % path)
            if idx < 0 or idx >= len(cur):
                raise generic_422("doc is missing path: \"%s\": missing value" % path)
            cur = cur[idx]
        else:
            raise generic_422("doc is missing path: \"%s\": missing value" % path)
    return cur


def _get(doc, path):
    toks = _split(path)
    if not toks:
        return doc
    par = _parent(doc, toks, path)
    last = toks[-1]
    if isinstance(par, dict):
        if last not in par:
            raise generic_422("doc is missing path: \"%s\": missing value" % path)
        return par[last]
    if isinstance(par, list):
        try:
            idx = int(last)
        except ValueError:
            raise generic_422("doc is missing path: \"%s\": missing value" % path)
        if idx < 0 or idx >= len(par):
            raise generic_422("doc is missing path: \"%s\": missing value" % path)
        return par[idx]
    raise generic_422("doc is missing path: \"%s\": missing value" % path)


def _add(doc, path, value):
    toks = _split(path)
    if not toks:
        return value
    par = _parent(doc, toks, path)
    last = toks[-1]
    if isinstance(par, dict):
        par[last] = value
    elif isinstance(par, list):
        if last == "-":
            par.append(value)
        else:
            try:
                idx = int(last)
            except ValueError:
                raise generic_422("add operation does not apply: doc is missing path: \"%s\"" % path)
            if idx < 0 or idx > len(par):
                raise generic_422("add operation does not apply: doc is missing path: \"%s\"" % path)
            par.insert(idx, value)
    else:
        raise generic_422("add operation does not apply: doc is missing path: \"%s\"" % path)
    return doc


def _remove(doc, path, opname="remove"):
    toks = _split(path)
    if not toks:
        raise generic_422("%s operation does not apply: doc is missing path: \"%s\"" % (opname, path))
    par = _parent(doc, toks, path)
    last = toks[-1]
    if isinstance(par, dict):
        if last not in par:
            raise generic_422("%s operation does not apply: doc is missing path: \"%s\""
                              % (opname, path))
        return par.pop(last)
    if isinstance(par, list):
        try:
            idx = int(last)
        except ValueError:
            idx = -1
        if idx < 0 or idx >= len(par):
            raise generic_422("%s operation does not apply: doc is missing path: \"%s\""
                              % (opname, path))
        return par.pop(idx)
    raise generic_422("%s operation does not apply: doc is missing path: \"%s\"" % (opname, path))


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = clone(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise bad_request("Unexpected kind: <nil>")
        kind = op.get("op")
        path = op.get("path")
        if not isinstance(path, str):
            raise generic_422("%s operation missing path" % kind)
        if kind == "add":
            if "value" not in op:
                raise generic_422("add operation missing value")
            doc = _add(doc, path, clone(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            if "value" not in op:
                raise generic_422("replace operation missing value")
            toks = _split(path)
            if not toks:
                doc = clone(op["value"])
                continue
            _get(doc, path)  # must exist
            par = _parent(doc, toks, path)
            if isinstance(par, dict):
                par[toks[-1]] = clone(op["value"])
            else:
                par[int(toks[-1])] = clone(op["value"])
        elif kind == "move":
            frm = op.get("from")
            val = _remove(doc, frm, "move")
            doc = _add(doc, path, val)
        elif kind == "copy":
            frm = op.get("from")
            doc = _add(doc, path, clone(_get(doc, frm)))
        elif kind == "test":
            try:
                cur = _get(doc, path)
            except Exception:
                raise generic_422("testing value %s failed: test failed" % path)
            if cur != op.get("value"):
                raise generic_422("testing value %s failed: test failed" % path)
        else:
            raise bad_request("Unexpected kind: %s" % kind)
    return doc


# ---- strategic merge patch ------------------------------------------------------------------------
#
# Patch metadata: field -> (strategy, mergeKey, child schema). strategy is "merge" (list merged by
# mergeKey, or a set-like union for primitive lists), "retainKeys", "merge,retainKeys" or None
# (lists replaced atomically, maps merged). Taken from the struct tags in staging/src/k8s.io/api
# (core/v1/types.go, apps/v1/types.go, batch/v1/types.go, meta/v1/types.go).

OBJECT_META = {"finalizers": ("merge", None, None),
               "ownerReferences": ("merge", "uid", None)}
CONTAINER = {"ports": ("merge", "containerPort", None),
             "env": ("merge", "name", None),
             "volumeMounts": ("merge", "mountPath", None),
             "volumeDevices": ("merge", "devicePath", None)}
VOLUME = {}
POD_SPEC = {"containers": ("merge", "name", CONTAINER),
            "initContainers": ("merge", "name", CONTAINER),
            "ephemeralContainers": ("merge", "name", CONTAINER),
            "volumes": ("merge,retainKeys", "name", VOLUME),
            "imagePullSecrets": ("merge", "name", None),
            "hostAliases": ("merge", "ip", None),
            "topologySpreadConstraints": ("merge", "topologyKey", None),
            "schedulingGates": ("merge", "name", None),
            "resourceClaims": ("merge,retainKeys", "name", None)}
CONDITIONS = ("merge", "type", None)
POD_STATUS = {"conditions": CONDITIONS, "podIPs": ("merge", "ip", None),
              "hostIPs": ("merge", "ip", None)}
POD_TEMPLATE = {"metadata": (None, None, OBJECT_META), "spec": (None, None, POD_SPEC)}
POD = {"metadata": (None, None, OBJECT_META), "spec": (None, None, POD_SPEC),
       "status": (None, None, POD_STATUS)}
SERVICE = {"metadata": (None, None, OBJECT_META),
           "spec": (None, None, {"ports": ("merge", "port", None)}),
           "status": (None, None, {"conditions": CONDITIONS})}
DEPLOYMENT = {"metadata": (None, None, OBJECT_META),
              "spec": (None, None, {"template": (None, None, POD_TEMPLATE),
                                    "strategy": ("retainKeys", None, None)}),
              "status": (None, None, {"conditions": CONDITIONS})}
REPLICASET = {"metadata": (None, None, OBJECT_META),
              "spec": (None, None, {"template": (None, None, POD_TEMPLATE)}),
              "status": (None, None, {"conditions": CONDITIONS})}
JOB = {"metadata": (None, None, OBJECT_META),
       "spec": (None, None, {"template": (None, None, POD_TEMPLATE)}),
       "status": (None, None, {"conditions": CONDITIONS})}
NODE = {"metadata": (None, None, OBJECT_META),
        "spec": (None, None, {"podCIDRs": ("merge", None, None)}),
        "status": (None, None, {"conditions": CONDITIONS, "addresses": ("merge", "type", None)})}
NAMESPACE = {"metadata": (None, None, OBJECT_META),
             "status": (None, None, {"conditions": CONDITIONS})}
SERVICE_ACCOUNT = {"metadata": (None, None, OBJECT_META),
                   "secrets": ("merge", "name", None)}
GENERIC = {"metadata": (None, None, OBJECT_META)}

SCHEMAS = {"Pod": POD, "Service": SERVICE, "Deployment": DEPLOYMENT, "ReplicaSet": REPLICASET,
           "Job": JOB, "Node": NODE, "Namespace": NAMESPACE, "ServiceAccount": SERVICE_ACCOUNT}


def _meta(schema, field):
    if schema is None:
        return (None, None, None)
    return schema.get(field, (None, None, None))


def strategic_merge(original, patch, schema):
    """Apply a strategic merge patch map to original (a dict); returns a new dict."""
    if not isinstance(patch, dict):
        raise bad_request("unable to find api field in struct for the json field")
    if not isinstance(original, dict):
        original = {}
    directive = patch.get("$patch")
    if directive == "replace":
        p = {k: v for k, v in patch.items() if k != "$patch"}
        return _strip(p)
    if directive == "delete":
        return None
    out = dict(original)
    retain = patch.get("$retainKeys")
    orders = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k[len("$setElementOrder/"):]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            fld = k[len("$deleteFromPrimitiveList/"):]
            cur = out.get(fld)
            if isinstance(cur, list):
                out[fld] = [x for x in cur if x not in (v or [])]
            continue
        strategy, key, child = _meta(schema, k)
        if v is None:
            out.pop(k, None)
            continue
        cur = out.get(k)
        if isinstance(v, dict):
            if v.get("$patch") == "delete":
                out.pop(k, None)
                continue
            sub_schema = child
            if strategy and "retainKeys" in strategy and isinstance(cur, dict) and "$retainKeys" in v:
                pass
            merged = strategic_merge(cur if isinstance(cur, dict) else {}, v, sub_schema)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list):
            if strategy and "merge" in strategy:
                out[k] = _merge_list(cur if isinstance(cur, list) else [], v, key, child)
            else:
                out[k] = _strip(v)
        else:
            out[k] = v
    for fld, order in orders.items():
        strategy, key, _ = _meta(schema, fld)
        if isinstance(out.get(fld), list) and isinstance(order, list):
            out[fld] = _reorder(out[fld], order, key)
    if isinstance(retain, list):
        for k in list(out.keys()):
            if k not in retain:
                del out[k]
    return out


def _strip(v):
    """Remove directive keys from values that replace whole fields."""
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def _merge_list(cur, patch, key, child):
    if key is None:
        # Primitive list with patchStrategy merge: union keeping original order, then new items.
        out = list(cur)
        for item in patch:
            if isinstance(item, dict) and item.get("$patch") == "replace":
                return []
            if item not in out:
                out.append(item)
        return out
    out = [clone(x) for x in cur]
    replace = False
    for item in patch:
        if isinstance(item, dict) and item.get("$patch") == "replace" and len(item) == 1:
            replace = True
    if replace:
        out = []
    for item in patch:
        if not isinstance(item, dict):
            raise bad_request("merging an object in json but data type is not map")
        if item.get("$patch") == "replace" and len(item) == 1:
            continue
        if key not in item:
            raise bad_request("map: %s does not contain declared merge key: %s" % (item, key))
        kv = item[key]
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == kv), -1)
        if item.get("$patch") == "delete":
            if idx >= 0:
                out.pop(idx)
            continue
        if idx >= 0:
            out[idx] = strategic_merge(out[idx], item, child)
        else:
            out.append(_strip(item))
    return out


def _reorder(items, order, key):
    """$setElementOrder: items named in order come first, in that order; the rest keep theirs."""
    def ident(x):
        return x.get(key) if key and isinstance(x, dict) else x
    wanted = [ident(o) for o in order]
    pos = {w: i for i, w in enumerate(wanted) if isinstance(w, (str, int, float, bool))}
    ordered = sorted([x for x in items if ident(x) in pos], key=lambda x: pos[ident(x)])
    rest = [x for x in items if ident(x) not in pos]
    return ordered + rest


def list_map_merge(original, applied):
    """Structural merge for server-side apply (simplified): maps merge, lists replace."""
    if isinstance(original, dict) and isinstance(applied, dict):
        out = dict(original)
        for k, v in applied.items():
            out[k] = list_map_merge(original.get(k), v)
        return out
    return clone(applied)

"""Label and field selectors, parsed as staging/src/k8s.io/apimachinery/pkg/labels/selector.go
and staging/src/k8s.io/apimachinery/pkg/fields/selector.go parse them.

Label selector syntax (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors):
  key=value, key==value, key!=value, key in (a,b), key notin (a,b), key, !key, comma = AND.
Field selectors (https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/):
  field=value, field==value, field!=value, comma = AND; only the fields a resource supports.
"""

import re

from kubesim.apiserver_errors import bad_request, label_value_errors, qualified_name_errors

_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


def _tokens(s):
    pos = 0
    out = []
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m:
            break
        if m.group(1):
            out.append(m.group(1))
        pos = m.end()
        if pos < len(s) and s[pos:].strip() == "":
            break
    return out


def parse_label_selector(s):
    """Returns a list of requirements (key, op, values); raises ApiError 400 when invalid."""
    if s is None or s.strip() == "":
        return []
    toks = _tokens(s)
    reqs = []
    i = 0
    n = len(toks)

    def err(msg):
        # The real message comes from labels.Parse; the code is 400 BadRequest
        # ("unable to parse requirement: ..." from the list handler).
        return bad_request("unable to parse requirement: " + msg)

    while i < n:
        neg = False
        if toks[i] == "!":
            neg = True
            i += 1
            if i >= n:
                raise err("found '', expected: identifier")
        key = toks[i]
        if key in ("=", "==", "!=", "(", ")", ","):
            raise err("found '%s', expected: !, identifier, or 'end of string'" % key)
        errs = qualified_name_errors(key)
        if errs:
            raise err("invalid label key \"%s\": %s" % (key, errs[0]))
        i += 1
        if neg:
            reqs.append((key, "!", []))
        elif i >= n or toks[i] == ",":
            reqs.append((key, "exists", []))
        else:
            op = toks[i]
            i += 1
            if op in ("=", "==", "!="):
                if i >= n or toks[i] == ",":
                    val = ""
                else:
                    val = toks[i]
                    i += 1
                errs = label_value_errors(val)
                if errs:
                    raise err("invalid label value: \"%s\": at key: \"%s\": %s" % (val, key, errs[0]))
                reqs.append((key, "!=" if op == "!=" else "=", [val]))
            elif op in ("in", "notin"):
                if i >= n or toks[i] != "(":
                    raise err("found '%s', expected: '('" % (toks[i] if i < n else ""))
                i += 1
                vals = []
                while i < n and toks[i] != ")":
                    if toks[i] != ",":
                        vals.append(toks[i])
                    i += 1
                if i >= n:
                    raise err("found '', expected: ')'")
                i += 1
                reqs.append((key, op, vals))
            else:
                raise err("found '%s', expected: in, notin, =, ==, !=, gt, lt" % op)
        if i < n:
            if toks[i] != ",":
                raise err("found '%s', expected: ',' or 'end of string'" % toks[i])
            i += 1
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        has = key in labels
        if op == "exists":
            if not has:
                return False
        elif op == "!":
            if has:
                return False
        elif op == "=":
            if not has or labels[key] != vals[0]:
                return False
        elif op == "!=":
            # labels.Requirement.Matches: NotEquals matches when the key is absent.
            if has and labels[key] == vals[0]:
                return False
        elif op == "in":
            if not has or labels[key] not in vals:
                return False
        elif op == "notin":
            if has and labels[key] in vals:
                return False
    return True


def selector_from_label_selector(sel):
    """metav1.LabelSelector (matchLabels/matchExpressions) -> requirements (for GC-free uses)."""
    reqs = []
    for k, v in sorted((sel or {}).get("matchLabels", {}).items()):
        reqs.append((k, "=", [v]))
    for e in (sel or {}).get("matchExpressions", []) or []:
        op = e.get("operator")
        vals = e.get("values") or []
        if op == "In":
            reqs.append((e.get("key"), "in", vals))
        elif op == "NotIn":
            reqs.append((e.get("key"), "notin", vals))
        elif op == "Exists":
            reqs.append((e.get("key"), "exists", []))
        elif op == "DoesNotExist":
            reqs.append((e.get("key"), "!", []))
    return reqs


def selector_string(sel):
    """metav1.FormatLabelSelector form, used for Scale.status.selector."""
    parts = []
    for k, v in sorted((sel or {}).get("matchLabels", {}).items()):
        parts.append("%s=%s" % (k, v))
    for e in (sel or {}).get("matchExpressions", []) or []:
        op = e.get("operator")
        vals = ",".join(sorted(e.get("values") or []))
        if op == "In":
            parts.append("%s in (%s)" % (e.get("key"), vals))
        elif op == "NotIn":
            parts.append("%s notin (%s)" % (e.get("key"), vals))
        elif op == "Exists":
            parts.append(e.get("key"))
        elif op == "DoesNotExist":
            parts.append("!" + e.get("key"))
    return ",".join(parts)


def parse_field_selector(s, supported, resource):
    """Returns [(field, op, value)]; 400 for a field the resource does not support."""
    if s is None or s.strip() == "":
        return []
    out = []
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([^=!]+)(!=|==|=)(.*)$", part)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (s, part))
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in supported:
            # pkg/registry/.../strategy.go ToSelectableFields + the list handler's conversion:
            # "field label not supported: <field>" (400) for built-in kinds.
            raise bad_request("field label not supported: %s" % field)
        out.append((field, "!=" if op == "!=" else "=", value))
    return out


def fields_match(reqs, fieldvals):
    for field, op, value in reqs:
        v = fieldvals.get(field, "")
        if op == "=" and v != value:
            return False
        if op == "!=" and v == value:
            return False
    return True

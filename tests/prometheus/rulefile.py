"""A reader of the layout of manifests/prometheus/raywarden-rules.yaml, standard library only
(promtool checks that the file is valid; this reads what the tests compare): one dict per rule,
{"alert" or "record": name, "for", "labels": {...}, "annotations": {...}} with the scalar values
of those maps (a folded `>-` value joined by spaces). Expressions are left out.
Also the metric families a PromQL text reads, and which of them no daemon writes."""
import re

_ITEM = re.compile(r"^\s*- (alert|record): *(\S+)\s*$")
_KEY = re.compile(r"^(\s*)([A-Za-z_][\w]*): *(.*)$")


def _scalar(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


def read(path):
    with open(path) as f:
        lines = f.read().splitlines()
    rules, cur, section, folded = [], None, None, None
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ITEM.match(line)
        if m:
            cur = {m.group(1): m.group(2), "labels": {}, "annotations": {}}
            rules.append(cur)
            section = folded = None
            continue
        if line.lstrip().startswith("- name:"):  # the next group
            cur = None
        if cur is None:
            continue
        m = _KEY.match(line)
        indent = len(line) - len(line.lstrip())
        if folded and indent > folded[0]:
            target, key = folded[1], folded[2]
            target[key] = (target[key] + " " + line.strip()).strip()
            continue
        folded = None
        if not m:
            continue
        ind, key, val = len(m.group(1)), m.group(2), m.group(3)
        if key in ("labels", "annotations") and not val:
            section = (ind, cur[key])
            continue
        if section and ind > section[0]:
            target = section[1]
        else:
            section = None
            target = cur
        if key == "expr":
            if val.startswith(">") or val.startswith("|"):
                folded = (ind, {"expr": ""}, "expr")
            continue
        if val in (">-", ">", "|", "|-"):
            target[key] = ""
            folded = (ind, target, key)
        else:
            target[key] = _scalar(val)
    return rules


# The families raywarden exports (and Prometheus' own `up` and `ALERTS` aside).
_FAMILY = re.compile(r"(?<![:\w])((?:raywarden|kuberay|controller_runtime|workqueue|rest_client|"
                     r"leader_election|process)_[a-z0-9_]+)")


def metrics_used(promql_text):
    """The metric names of those families that a text of PromQL mentions (recording rule names,
    level:metric:operation, are not metrics)."""
    return set(_FAMILY.findall(promql_text))


def unexported(names, src_dir):
    """The names no C source under agent/, controller/ or proto/ of src_dir writes: a family is
    written as a string that starts with its name ("name", "name{", "name ")."""
    import glob
    import os
    src = []
    for d in ("agent", "controller", "proto"):
        for path in glob.glob(os.path.join(src_dir, d, "**", "*.c"), recursive=True):
            with open(path, errors="replace") as f:
                src.append(f.read())
    src = "\n".join(src)
    out = set()
    for n in names:
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if not re.search(r'"%s(?:["{ ]|\\n)' % re.escape(base), src):
            out.add(n)
    return out

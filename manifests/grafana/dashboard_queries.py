#!/usr/bin/env python3
"""Lists every PromQL query of a Grafana dashboard JSON: panel targets (rows' nested panels
included) and query variables, with template variables expanded so that each query runs as is.

  dashboard_queries.py [DASHBOARD.json]    one line per query: <panel title>\\t<refId>\\t<expr>

Variables expand to a value that matches everything (".*"), Grafana's interval variables to
fixed durations; a dashboard that uses a variable outside a regex matcher gets a query that
does not parse, which the tests then report.
"""
import json
import os
import re
import sys

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "raywarden-dashboard.json")

# Grafana's built-in variables, as a query with a one-minute step would see them.
BUILTINS = {
    "__rate_interval": "1m", "__interval": "30s", "__interval_ms": "30000", "__range": "1h",
    "__range_s": "3600", "__range_ms": "3600000",
}
MATCH_ALL = ".*"
_VAR = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)(?::[\w]+)?\]\]")


def expand(expr, values=None):
    """expr with every $var, ${var}, ${var:fmt} and [[var]] replaced: by values[var], else
    by BUILTINS[var], else by MATCH_ALL."""
    b = dict(BUILTINS, **(values or {}))

    def one(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return b.get(name, MATCH_ALL)

    return _VAR.sub(one, expr)


def _panels(panels):
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def queries(dash, values=None):
    """[(where, refId, expanded expr)] for every Prometheus query in the dashboard dict;
    values as for expand()."""
    out = []
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.fullmatch(r"\s*label_values\((?:(.*),)?\s*(\w+)\s*\)\s*", q)
        if m and m.group(1):  # label_values(selector, label): the selector is the query
            out.append(("variable " + v["name"], "-", expand(m.group(1), values)))
        elif q and not m:
            out.append(("variable " + v["name"], "-", expand(q, values)))
    for p in _panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((p.get("title", ""), t.get("refId", ""), expand(t["expr"], values)))
    return out


def main(argv):
    with open(argv[1] if len(argv) > 1 else DEFAULT) as f:
        dash = json.load(f)
    for where, ref, expr in queries(dash):
        print("%s\t%s\t%s" % (where, ref, expr))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

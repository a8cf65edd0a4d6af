"""Talking to a running Prometheus from tests: its HTTP API (prometheus.io/docs/prometheus/latest/
querying/api/), standard library only. Every wait is a condition polled until a deadline
(time.monotonic() value); on timeout AssertionError says what was last seen.

    query(url, promql)                 -> the result list of an instant query
    targets(url, job=None)             -> active targets (dicts of the API), optionally of one job
    wait_targets(url, job, n, deadline, health="up") -> the job's targets once exactly n are healthy
    wait_query(url, promql, pred, deadline)          -> the result once pred(result) holds
    alerts(url), rules(url)            -> the alerts firing or pending; the rule groups
    reload(url)                        -> POST /-/reload (needs --web.enable-lifecycle)
"""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

POLL_S = 0.25


class PromError(RuntimeError):
    pass


def _open(url, data=None, timeout=10.0):
    # Never through an HTTP proxy from the environment: Prometheus listens on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with opener.open(req, timeout=timeout) as r:
        return r.read()


def api(url, path, params=None, timeout=10.0):
    """GET <url>/api/v1/<path>?params -> the "data" member; PromError when status is not success."""
    full = url.rstrip("/") + "/api/v1/" + path
    if params:
        full += "?" + urllib.parse.urlencode(params)
    try:
        body = _open(full, timeout=timeout)
    except urllib.error.HTTPError as e:
        body = e.read()
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise PromError("%s: %s: %s" % (path, doc.get("errorType"), doc.get("error")))
    return doc["data"]


def query(url, promql):
    """Instant query -> result (a list of {"metric": {...}, "value": [t, "v"]} for a vector)."""
    return api(url, "query", {"query": promql})["result"]


def targets(url, job=None):
    """Active targets (each with labels, discoveredLabels, health, lastError, scrapeUrl)."""
    act = api(url, "targets", {"state": "active"})["activeTargets"]
    return [t for t in act if job is None or t["labels"].get("job") == job]


def alerts(url):
    return api(url, "alerts")["alerts"]


def rules(url):
    return api(url, "rules")["groups"]


def reload(url):
    _open(url.rstrip("/") + "/-/reload", data=b"")


def wait_until(what, fn, deadline):
    """Call fn() until it returns something true, or fail at deadline with what and fn's last
    answer (an exception counts as "not yet")."""
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError, PromError, urllib.error.URLError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; last: %r" % (what, last))
        time.sleep(POLL_S)


def wait_targets(url, job, n, deadline, health="up"):
    """Wait until job has exactly n active targets, all of them `health` (up: scraped fine);
    returns them."""
    seen = {}

    def check():
        ts = targets(url, job)
        seen["last"] = [(t["labels"].get("instance"), t["health"], t.get("lastError")) for t in ts]
        return ts if len(ts) == n and all(t["health"] == health for t in ts) else None

    try:
        return wait_until("%d %s target(s) of job %s" % (n, health, job), check, deadline)
    except AssertionError:
        raise AssertionError("timed out waiting for %d %s target(s) of job %s; last: %r"
                             % (n, health, job, seen.get("last")))


def wait_query(url, promql, pred, deadline):
    """Wait until pred(query(url, promql)) is true; returns that result."""
    box = {}

    def check():
        box["r"] = query(url, promql)
        return pred(box["r"])

    try:
        wait_until(promql, check, deadline)
    except AssertionError:
        raise AssertionError("timed out waiting for %s to satisfy the condition; last result %r"
                             % (promql, box.get("r")))
    return box["r"]

#!/usr/bin/env python3
"""hostile_hub: 200 peers holding partial 1 MiB frames against the controller's agent hub.

Against the API server simulator (the fake kubelet leaves readiness gates to the controller), the
controller runs with its master key and one RayCluster of 1 head + 9 workers. agent/tools/rw-agentload
stands in for the 10 pods' agents (sealed reports at 1 Hz, half of the pods flipping ready each
second after a warm-up), first alone (the baseline), then while an attacker keeps 200 connections to
the hub, each sending the SP header and a frame that declares 1 MiB and stops one byte short. The
attacker knows a valid key id (any agent of any cluster knows its own: it is read here from the
cluster's key Secret), so its frames pass the hub's first look and are buffered; a connection the hub
closes is opened again at once.

Measured, in the same run:
- the controller's RSS before, and its peak during each phase (growth during the attack: target
  < 16 MiB);
- report -> readiness gate latency of the flips (send time printed by rw-agentload to the first pod
  watch event carrying the new ray.io/agent-ready value), p50/p99/max and flips without an event
  within 10 s, baseline and under attack (target: p99 < 100 ms);
- what the hub did: connections closed by reason, partial bytes, refusals (from /metrics), and what
  the attacker managed (connections opened, bytes sent).

run(build_dir, source_dir) -> dict is what tests/bench/hostile-input puts under "hub". Alone:

    python3 tests/bench/hostile_hub.py [--build DIR] [--peers 200] [--seconds 12]

prints the figures and one JSON line {"bench": "hostile-input-hub", ...}.
"""

import argparse
import base64
import errno
import hashlib
import importlib.util
import json
import multiprocessing
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from importlib.machinery import SourceFileLoader

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
import ctlsim  # noqa: E402

MIB = 1024.0
FRAME = 1024 * 1024  # the message length each attacker declares
SP_REQ_HDR = b"\x00SP\x00\x00\x30\x00\x00"


def _aggregation():
    """controller-aggregation (a script without .py) as a module: its pod watch and sampler."""
    loader = SourceFileLoader("controller_aggregation", os.path.join(HERE, "controller-aggregation"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def key_id(world, ns, cluster, timeout=30.0):
    """The key id (first 4 bytes of SHA-256 of the key) of the cluster's key Secret."""
    end = time.monotonic() + timeout
    while True:
        try:
            sec = world.call("GET", "api/v1/namespaces/%s/secrets/%s-raywarden-key" % (ns, cluster), attempts=1)
            key = base64.b64decode(sec["data"]["key"])
            return hashlib.sha256(key).digest()[:4]
        except Exception:  # noqa: BLE001
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


class Attacker:
    """Keeps `peers` connections to the hub, each sending the SP header and a frame declaring FRAME
    bytes with an envelope header naming kid, then the body up to one byte short; a connection the
    hub closes is replaced at once (at most `reopen_per_s` a second). It runs in a process of its
    own: a thread would hold the driver's GIL and delay the pod watch that timestamps the gates."""

    def __init__(self, host, port, kid, peers=200, reopen_per_s=400):
        self.addr = (host, port)
        env = b"RWP\x01" + struct.pack(">HHI", 1, 1, 0) + kid + bytes(28)  # the 44-byte envelope header
        self.prefix = SP_REQ_HDR + struct.pack(">Q", FRAME + 4) + b"\x80\x00\x00\x01" + env
        self.total = len(SP_REQ_HDR) + 8 + FRAME + 4 - 1  # one byte short of the frame
        self.chunk = b"\x00" * 65536
        self.peers = peers
        self.reopen_per_s = reopen_per_s
        ctx = multiprocessing.get_context("fork")
        self.stop = ctx.Event()
        self.opened = self.closed_by_hub = self.bytes_sent = self.held_max = 0
        self._rx, self._tx = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=self._main, daemon=True)

    def start(self):
        self.proc.start()

    def finish(self, timeout=10):
        """Stop the attack; its counters are then in this object."""
        self.stop.set()
        if self._rx.poll(timeout):
            self.opened, self.closed_by_hub, self.bytes_sent, self.held_max = self._rx.recv()
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.kill()

    def _main(self):
        self.run()
        self._tx.send((self.opened, self.closed_by_hub, self.bytes_sent, self.held_max))

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(self.addr)
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return None
        self.opened += 1
        return s

    def run(self):
        conns = {}  # socket -> bytes sent
        budget_t, reopen = time.monotonic(), 0
        while not self.stop.is_set():
            now = time.monotonic()
            if now - budget_t >= 1.0:
                budget_t, reopen = now, 0
            while len(conns) < self.peers and reopen < self.reopen_per_s:
                s = self._open()
                reopen += 1
                if s is None:
                    break
                conns[s] = 0
            want = [s for s, n in conns.items() if n < self.total]
            try:
                r, w, _ = select.select(list(conns), want, [], 0.05)
            except (OSError, ValueError):
                r, w = [], []
            dead = set()
            for s in r:  # the hub's header, or its close
                try:
                    if not s.recv(4096):
                        dead.add(s)
                except BlockingIOError:
                    pass
                except OSError:
                    dead.add(s)
            for s in w:
                if s in dead:
                    continue
                n = conns[s]
                if n < len(self.prefix):
                    data = self.prefix[n:]
                else:
                    data = self.chunk[:min(len(self.chunk), self.total - n)]
                try:
                    k = s.send(data)
                    conns[s] = n + k
                    self.bytes_sent += k
                except BlockingIOError:
                    pass
                except OSError as e:
                    if e.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNREFUSED):
                        dead.add(s)
            for s in dead:
                self.closed_by_hub += 1
                conns.pop(s, None)
                s.close()
            self.held_max = max(self.held_max, sum(min(n, self.total) for n in conns.values()))
        for s in conns:
            s.close()


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop, self.samples = pid, threading.Event(), []

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append((time.time(), benchlib.rss_kib(self.pid), benchlib.cpu_ns(self.pid)))
            except (OSError, ValueError):
                pass
            self.stop.wait(0.2)

    def peak(self, t0, t1):
        v = [r for t, r, _ in self.samples if t0 <= t <= t1]
        return max(v) if v else None

    def cpu_pct(self, t0, t1):
        """The process's CPU in % of one core over [t0, t1]."""
        v = [(t, c) for t, _, c in self.samples if t0 <= t <= t1]
        if len(v) < 2 or v[-1][0] <= v[0][0]:
            return None
        return round((v[-1][1] - v[0][1]) / 1e9 / (v[-1][0] - v[0][0]) * 100.0, 1)


def latency(flips, watch, t0, t1):
    """Report -> gate latency (ms) of the flips sent in [t0, t1]: (list, missing)."""
    with watch.lock:
        changes = {k: list(v) for k, v in watch.changes.items()}
    lat, missing = [], 0
    for fl in flips:
        ts = fl["t_us"] / 1e6
        if not t0 <= ts <= t1:
            continue
        want = "True" if fl["ready"] else "False"
        hit = next((t for t, v in changes.get("%s/%s" % (fl["ns"], fl["pod"]), ()) if t >= ts - 0.001 and v == want),
                   None)
        if hit is None or hit - ts > 10.0:
            missing += 1
        else:
            lat.append(max(0.0, hit - ts) * 1000.0)
    return lat, missing


def lat_figures(lat, missing):
    return {"n": len(lat), "missing": missing,
            "p50": round(benchlib.percentile(lat, 50), 1) if lat else None,
            "p99": round(benchlib.percentile(lat, 99), 1) if lat else None,
            "max": round(max(lat), 1) if lat else None}


def agent_phase(load_bin, ctl, world, pods_file, seconds, warmup):
    """rw-agentload for `seconds`; returns its flip events and the [start, end] wall times."""
    argv = [load_bin, "--dial", "tcp://%s:8478" % ctl.ip, "--master-key-file", world.key_file,
            "--pods-file", pods_file, "--duration", str(seconds), "--warmup", str(warmup),
            "--flip-permille", "500", "--sockets", "1", "--ctxs", "16"]
    t0 = time.time()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=seconds + 60)
    if p.returncode != 0:
        raise RuntimeError("rw-agentload exited %d: %s" % (p.returncode, p.stderr.strip()[-300:]))
    flips, done = [], {}
    for line in p.stdout.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "flip":
            flips.append(e)
        elif e.get("event") == "done":
            done = e
    return flips, t0 + warmup, time.time(), done


def hub_metrics(m):
    out = {"closed": {}, "refused": {}}
    for k, v in m.items():
        if k.startswith("raywarden_agent_connections_closed_total{") and v:
            out["closed"][k.split('reason="', 1)[1].split('"', 1)[0]] = int(v)
        elif k.startswith("raywarden_agent_refusals_total{") and v:
            out["refused"][k.split('reason="', 1)[1].split('"', 1)[0]] = int(v)
    out["partial_bytes"] = m.get("raywarden_agent_partial_bytes")
    out["connections"] = m.get("raywarden_agent_connections")
    return out


def run(build_dir, source_dir=SRC, peers=200, seconds=12.0, warmup=4.0, workers=9):
    """The benchmark; returns its figures (raises when it cannot run)."""
    del source_dir  # the sources are found from this file; kept for the caller's signature
    agg = _aggregation()
    load_bin = os.path.join(build_dir, "bin", "rw-agentload")
    for path, what in ((ctlsim.controller_bin(build_dir), "raywarden-controller"), (load_bin, "rw-agentload")):
        if not os.path.exists(path):
            raise RuntimeError("%s not found at %s" % (what, path))
    tmp = tempfile.mkdtemp(prefix="rw-hostile-hub-")
    w = ctlsim.World(tmp, tls=False, gates="respect")
    res = {"peers": peers, "frame_bytes": FRAME, "seconds_per_phase": seconds, "pods": 1 + workers,
           "target_rss_growth_mib": 16, "target_gate_p99_ms": 100}
    att = watch = samp = None
    try:
        ctl = w.controller("--qps", "1000", build=build_dir, identity="ctl-hostile-hub")
        ctlsim.wait_for(ctl.ready, 30, what="controller /readyz")
        watch = agg.GateWatch(w)
        w.apply_cluster(ctlsim.raycluster("hostile", workers=workers))
        ctlsim.wait_for(lambda: watch.count() >= 1 + workers, 60, what="the cluster's pods")
        pods_file = os.path.join(tmp, "pods.txt")
        with watch.lock:
            items = list(watch.pods.values())
        with open(pods_file, "w") as f:
            for p in items:
                md, lb = p["metadata"], p["metadata"].get("labels") or {}
                # The 7th field, the owning cluster's UID, is part of the key derivation (keys are
                # bound to the cluster's incarnation).
                owner = [o for o in md.get("ownerReferences") or [] if o.get("kind") == "RayCluster"]
                f.write("%s %s %s %s %s %s %s\n" % (md["namespace"], lb.get("ray.io/cluster"), md["name"], md["uid"],
                                                    lb.get("ray.io/node-type"), lb.get("ray.io/group", "-") or "-",
                                                    owner[0]["uid"] if owner else "-"))
        kid = key_id(w, "default", "hostile")
        samp = RssSampler(ctl.proc.pid)
        samp.start()
        time.sleep(1.0)
        res["ctl_rss_start_mib"] = round(benchlib.rss_kib(ctl.proc.pid) / MIB, 1)

        flips, t0, t1, done = agent_phase(load_bin, ctl, w, pods_file, seconds, warmup)
        time.sleep(1.0)
        lat, miss = latency(flips, watch, t0, t1)
        res["baseline"] = {"gate_latency_ms": lat_figures(lat, miss),
                           "ctl_rss_peak_mib": round((samp.peak(t0 - warmup, t1) or 0) / MIB, 1),
                           "ctl_cpu_pct": samp.cpu_pct(t0, t1),
                           "load": {k: done.get(k) for k in ("sent", "replies", "errors", "late")}}
        rss_before = benchlib.rss_kib(ctl.proc.pid)
        res["ctl_rss_before_attack_mib"] = round(rss_before / MIB, 1)

        att = Attacker(ctl.ip, 8478, kid, peers=peers)
        t_att = time.time()
        att.start()
        # Let the attack reach its steady state (every peer holding what the hub lets it hold).
        time.sleep(3.0)
        flips, t0, t1, done = agent_phase(load_bin, ctl, w, pods_file, seconds, warmup)
        time.sleep(1.0)
        m = ctl.metrics()
        att.finish()
        lat, miss = latency(flips, watch, t0, t1)
        peak = samp.peak(t_att, time.time()) or rss_before
        res["attack"] = {"gate_latency_ms": lat_figures(lat, miss),
                         "ctl_rss_peak_mib": round(peak / MIB, 1),
                         "ctl_rss_growth_mib": round((peak - rss_before) / MIB, 1),
                         "ctl_cpu_pct": samp.cpu_pct(t0, t1),
                         "load": {k: done.get(k) for k in ("sent", "replies", "errors", "late")},
                         "attacker": {"connections_opened": att.opened, "closed_by_hub": att.closed_by_hub,
                                      "mib_sent": round(att.bytes_sent / MIB / MIB, 1),
                                      "mib_held_max": round(att.held_max / MIB / MIB, 1)},
                         "hub": hub_metrics(m)}
        res["controller_alive"] = ctl.alive()
        res["loadavg_1m"] = round(os.getloadavg()[0], 1)  # others' work on the same cores
        a = res["attack"]
        res["ok"] = bool(res["controller_alive"] and a["ctl_rss_growth_mib"] < 16 and a["gate_latency_ms"]["n"] > 0
                         and a["gate_latency_ms"]["missing"] == 0 and a["gate_latency_ms"]["p99"] < 100)
    finally:
        if att and att.proc.is_alive():
            att.finish()
        if samp:
            samp.stop.set()
        if watch:
            watch.stop.set()
        w.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("--peers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=12.0, help="seconds of agent load per phase")
    args = ap.parse_args()
    build = args.build or os.environ.get("RW_BUILD_DIR") or os.path.join(SRC, "build")
    try:
        res = run(build, SRC, peers=args.peers, seconds=args.seconds)
    except Exception as e:  # noqa: BLE001
        print("hostile-input-hub: %s" % e, file=sys.stderr)
        res = {"error": str(e), "ok": False}
    b, a = res.get("baseline", {}), res.get("attack", {})
    if a:
        print("gate latency p99: %s ms alone, %s ms under %d peers; controller RSS +%s MiB under attack"
              % (b["gate_latency_ms"]["p99"], a["gate_latency_ms"]["p99"], args.peers, a["ctl_rss_growth_mib"]))
    benchlib.emit("hostile-input-hub", res)
    return 0 if res.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())

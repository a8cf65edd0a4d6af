"""Keep CPython's garbage collector from stopping a simulator for seconds.

A simulator holding 10,000 pods keeps millions of long-lived, acyclic objects. CPython's full
(generation 2) collection scans all of them while every thread stands still: at 10,000 pods the API
server simulator stopped for 1-2.5 s every 7-15 s and freed nothing. The real kube-apiserver and
kubelet (Go) collect concurrently with sub-millisecond pauses, so such stalls are the simulator's
own and would show up as latency tails of the component under test.
"""

import gc
import sys
import threading
import time


def log_pauses(who, min_s=0.05):
    """Write a line to stderr for every collection that stops the process for min_s or more."""
    t0 = [0.0]

    def cb(phase, info):
        if phase == "start":
            t0[0] = time.monotonic()
            return
        d = time.monotonic() - t0[0]
        if d >= min_s:
            sys.stderr.write("%s: %s gc generation %d stopped the process %.0f ms (%d collected)\n" % (
                who, time.strftime("%H:%M:%S", time.gmtime()), info.get("generation", -1), d * 1000,
                info.get("collected", 0)))
            sys.stderr.flush()

    gc.callbacks.append(cb)


def freeze_periodically(stop, every_s=5.0):
    """Move every object that exists to the permanent generation every every_s seconds, until the
    threading.Event stop is set, so that a full collection scans only what was made since.
    Refcounting still frees frozen objects; only reference cycles made before a freeze stay."""
    def run():
        while not stop.wait(every_s):
            gc.freeze()

    t = threading.Thread(target=run, name="gc-freeze", daemon=True)
    t.start()
    return t

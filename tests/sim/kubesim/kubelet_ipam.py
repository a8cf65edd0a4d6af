"""Host-wide registry of the loopback /24 blocks that simulated clusters use, so
that several local clusters (parallel tests) never hand out the same pod IP or
fallback service IP.  Blocks are claimed under an flock in a small JSON file and
released on shutdown; a claim whose owner process is gone is reclaimed."""

import fcntl
import json
import os

REGISTRY = os.environ.get("RW_SIM_IPAM_FILE", "/tmp/kubesim-ipam.json")


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def claim(kind, owner, count, first=1, last=254, pid=None):
    """Claim count third octets of kind ("pods", "services") for owner (a state
    dir); returns the sorted list of octets.  Re-claiming by the same owner returns
    its existing blocks."""
    pid = pid or os.getpid()
    with open(REGISTRY + ".lock", "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            with open(REGISTRY) as f:
                reg = json.load(f)
        except (OSError, ValueError):
            reg = {}
        for k in list(reg):
            if not _alive(reg[k].get("pid", 0)) or (reg[k].get("owner") == owner and reg[k].get("kind") == kind):
                del reg[k]
        taken = {int(k.split(":")[1]) for k in reg if k.startswith(kind + ":")}
        got = []
        for o in range(first, last + 1):
            if len(got) == count:
                break
            if o not in taken:
                got.append(o)
        if len(got) < count:
            raise RuntimeError("no free %s blocks left in %s" % (kind, REGISTRY))
        for o in got:
            reg["%s:%d" % (kind, o)] = {"owner": owner, "pid": pid, "kind": kind}
        tmp = REGISTRY + ".tmp"
        with open(tmp, "w") as f:
            json.dump(reg, f)
        os.replace(tmp, REGISTRY)
        return got


def release(kind, owner):
    try:
        with open(REGISTRY + ".lock", "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            try:
                with open(REGISTRY) as f:
                    reg = json.load(f)
            except (OSError, ValueError):
                return
            for k in list(reg):
                if reg[k].get("owner") == owner and reg[k].get("kind") == kind:
                    del reg[k]
            tmp = REGISTRY + ".tmp"
            with open(tmp, "w") as f:
                json.dump(reg, f)
            os.replace(tmp, REGISTRY)
    except OSError:
        pass

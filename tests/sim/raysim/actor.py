"""Detached actors and internal KV for test jobs (the GCS FT walkthrough).

The walkthrough's detached_actor.py / increment_counter.py need Python Ray; a
job running on the simulator uses this module instead (RAY_ADDRESS is set by
the job supervisor, PYTHONPATH includes the simulator):

    python3 -m raysim.actor create counter_actor --namespace default_namespace
    python3 -m raysim.actor call counter_actor increment --namespace default_namespace   # prints 1
    python3 -m raysim.actor kv-put KEY VALUE [--kv-namespace NS]
    python3 -m raysim.actor kv-get KEY [--kv-namespace NS]

Like a real detached actor, the Counter lives on a node with a free CPU (so not
on a num-cpus=0 head) and its value lives in that node's process; the GCS only
records where it is (ACTOR table). A GCS restart with Redis keeps the table, so
the counter keeps counting; without Redis the name is gone
("Failed to look up actor with name ...").
"""

import os
import sys
import time

from .gcs import GcsClient, GcsError
from .proxy import WorkerCallError, call_worker


def _opt(args, name, default):
    if name in args:
        i = args.index(name)
        val = args[i + 1]
        del args[i:i + 2]
        return val
    return default


def main(argv):
    args = list(argv)
    address = _opt(args, "--address", os.environ.get("RAY_ADDRESS", "127.0.0.1:6379"))
    ns = _opt(args, "--namespace", "default_namespace")
    kvns = _opt(args, "--kv-namespace", "")
    gcs = GcsClient(address.replace("ray://", ""))
    try:
        cluster_id = gcs.call("get_cluster_id", {})
        gcs.cluster_id = cluster_id
        if args[:1] == ["create"]:
            info = gcs.call("actor_create", {"name": args[1], "namespace": ns, "cls": "Counter", "num_cpus": 1.0,
                                             "detached": True})
            print(info["actor_id"])
            return 0
        if args[:1] == ["call"]:
            info = gcs.call("actor_get", {"name": args[1], "namespace": ns})
            deadline = time.time() + 10
            for _ in range(1000):
                try:
                    doc = call_worker(info["node_ip"], info["worker_port"], "/actor/%s/%s" % (info["actor_id"], args[2]),
                                      {})
                    print(doc["result"])
                    return 0
                except WorkerCallError as exc:
                    # The hosting node learns of a new actor with its next heartbeat.
                    if time.time() > deadline:
                        print(str(exc), file=sys.stderr)
                        return 1
                    time.sleep(0.1)
        if args[:1] == ["kv-put"]:
            gcs.call("kv_put", {"ns": kvns, "key": args[1], "value": args[2]})
            return 0
        if args[:1] == ["kv-get"]:
            v = gcs.call("kv_get", {"ns": kvns, "key": args[1]})
            if v is None:
                return 1
            print(v)
            return 0
    except GcsError as exc:
        print("%s" % exc, file=sys.stderr)
        return 1
    print("usage: python3 -m raysim.actor create|call|kv-put|kv-get ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

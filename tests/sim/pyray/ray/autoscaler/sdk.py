"""ray.autoscaler.sdk.request_resources (python/ray/autoscaler/sdk/sdk.py and
_private/commands.py request_resources) against the simulated GCS.

request_resources(num_cpus=N) asks for N bundles of {"CPU": 1}, then the given
bundles; the autoscaler sizes the cluster so they would all fit at once, on
top of nothing else (it is a floor, not more demand), until the next call
replaces them (an empty call clears them). Autoscaler v1 reads the request from
the internal KV key "autoscaler_resource_request" (JSON list of bundles); v2
from the GCS's cluster resource constraint (v2/sdk.py request_cluster_resources).
Which one is used follows RAY_enable_autoscaler_v2, as the head's flag decides
in Ray (autoscaler/v2/utils.py is_autoscaler_v2).
"""

import json
import os

import ray


def request_resources(num_cpus=None, bundles=None):
    if not ray.is_initialized() or ray._state["gcs"] is None:
        raise RuntimeError("Ray is not initialized yet")
    if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 0):
        raise TypeError("num_cpus should be of type int.")
    if bundles is not None:
        if not isinstance(bundles, list):
            raise TypeError("bundles should be of type List")
        for b in bundles:
            if not isinstance(b, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in b.values()):
                raise TypeError("each bundle should be a Dict[str, int] of non-negative amounts.")
    to_request = []
    if num_cpus:
        to_request += [{"CPU": 1}] * num_cpus
    if bundles:
        to_request += bundles
    gcs = ray._state["gcs"]
    if os.environ.get("RAY_enable_autoscaler_v2", "0").lower() in ("1", "true"):
        gcs.call("request_cluster_resource_constraint", {"bundles": to_request}, timeout=5.0)
    else:
        gcs.call("kv_put", {"ns": "", "key": "autoscaler_resource_request", "value": json.dumps(to_request),
                            "overwrite": True}, timeout=5.0)

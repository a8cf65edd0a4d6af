"""Ray node simulator (Python 3 standard library only).

See docs/ray-simulator.md. Entry points: tests/sim/bin/ray (the `ray` CLI),
raysim.cluster (start clusters from tests), raysim.actor (detached actors for
test jobs), raysim.node (one node process).
"""

import socket as _socket

# The simulator's own processes (nodes, GCS, autoscaler, CLI) reach host
# services the test world runs on the shared loopback (the Redis of GCS fault
# tolerance, the API server) at 127.0.0.1: undo the pod-local name mapping
# that tests/sim/pyray/sitecustomize.py installs for drivers and one-liners.
# The CLI maps local names itself where Ray's would (common.pod_local).
if getattr(_socket, "_rw_sim_pod_local", False):
    _socket.getaddrinfo = _socket._rw_sim_host_getaddrinfo
    _socket._rw_sim_pod_local = False

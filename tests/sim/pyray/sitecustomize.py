"""Loaded by every Python process that has the `ray` stand-in on its path (a
simulated Ray container's `python`, job drivers).

Inside a real pod, "localhost" is the pod's own network namespace: KubeRay's
SidecarMode submitter waits for http://localhost:8265/api/gcs_healthz with a
`python -c "import urllib.request; ..."` one-liner. Simulated pods share the
host's loopback, each on its own RW_SIM_POD_IP, so name lookups of the local
names resolve to that address here (the same stand-in as the pod-bin shims'
and raysim.common.pod_local). Nothing changes outside a simulated pod.
"""

import os
import socket

_POD_IP = os.environ.get("RW_SIM_POD_IP")
_LOCAL = ("localhost", "127.0.0.1", "0.0.0.0", "::1", "ip6-localhost")

if _POD_IP and not getattr(socket, "_rw_sim_pod_local", False):
    _getaddrinfo = socket.getaddrinfo

    def _pod_getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name in _LOCAL:
            host = _POD_IP
        return _getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = _pod_getaddrinfo
    socket._rw_sim_pod_local = True
    socket._rw_sim_host_getaddrinfo = _getaddrinfo

"""kubesim: a simulated Kubernetes control plane for raywarden's tests (Python standard library only).

apiserver.py (and apiserver_*.py) is the kube-apiserver simulator; the kubelet, controllers,
service proxy and local-cluster modules are REST clients of it.
"""

"""Ray node simulator (Python 3 standard library only).

See docs/ray-simulator.md. Entry points: tests/sim/bin/ray (the `ray` CLI),
raysim.cluster (start clusters from tests), raysim.actor (detached actors for
test jobs), raysim.node (one node process).
"""

#!/usr/bin/env python3
"""Copy the generated manifests into the Helm chart (manifests/charts/raywarden).

    python3 manifests/hack/sync_chart.py          copy
    python3 manifests/hack/sync_chart.py --check  exit 1 if a chart copy differs from its source

The chart cannot read files outside its own directory (Helm packages a chart alone), so it holds
byte-for-byte copies of what kustomize uses:
- crds/*.yaml               <- manifests/crds/*.yaml (Helm installs a chart's crds/ before its templates);
- files/rbac/*.yaml         <- the RBAC that `raywarden-controller --print-rbac[=WHICH]` generates
                               (manifests/rbac, manifests/batch-scheduler); the chart's templates take
                               the rules from these copies, so the chart grants exactly what the
                               controller's grant table says.
Run it after gen_crds.py or a --print-rbac regeneration; tests/e2e/test_helm_chart.py runs --check.
"""

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFESTS = os.path.dirname(HERE)
CHART = os.path.join(MANIFESTS, "charts", "raywarden")

COPIES = (
    ("crds/ray.io_rayclusters.yaml", "crds/ray.io_rayclusters.yaml"),
    ("crds/ray.io_rayjobs.yaml", "crds/ray.io_rayjobs.yaml"),
    ("crds/ray.io_rayservices.yaml", "crds/ray.io_rayservices.yaml"),
    ("rbac/cluster_role.yaml", "files/rbac/cluster_role.yaml"),
    ("rbac/leader_election_role.yaml", "files/rbac/leader_election_role.yaml"),
    ("batch-scheduler/rbac.yaml", "files/rbac/batch_scheduler.yaml"),
    ("webhook/rbac.yaml", "files/webhook/rbac.yaml"),
    ("webhook/service.yaml", "files/webhook/service.yaml"),
    ("webhook/validating.yaml", "files/webhook/validating.yaml"),
)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def main(argv):
    check = "--check" in argv[1:]
    stale = []
    for src, dst in COPIES:
        s, d = os.path.join(MANIFESTS, src), os.path.join(CHART, dst)
        if read(s) == read(d):
            continue
        stale.append("manifests/%s differs from its chart copy manifests/charts/raywarden/%s" % (src, dst))
        if not check:
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copyfile(s, d)
    if check and stale:
        print("\n".join(stale) + "\nrun: python3 manifests/hack/sync_chart.py", file=sys.stderr)
        return 1
    if not check:
        print("updated %d file(s)" % len(stale))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

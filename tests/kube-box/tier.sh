#!/usr/bin/env bash
# Runs the real-cluster tier on its own: builds the cluster in a box (cached), installs the
# pinned helm, runs `cargo test --test real_cluster` against it.
#
#   tests/kube-box/tier.sh                              # every scenario, newest pinned release
#   NLC_KUBE_BOX_VERSION=1.34 tests/kube-box/tier.sh    # the oldest supported minor
#   tests/kube-box/tier.sh node_lost zone_rates         # some scenarios (names contain these)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
bash .ci/validate-deploy.sh --tools-only > /dev/null
NLC_KUBE_BOX_BIN=$(bash tests/kube-box/build.sh ${NLC_KUBE_BOX_VERSION:+"$NLC_KUBE_BOX_VERSION"} | tail -n1)
export NLC_KUBE_BOX_BIN
exec cargo test --locked --test real_cluster -- "$@"

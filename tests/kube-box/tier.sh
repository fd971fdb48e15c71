#!/usr/bin/env bash
# The real-cluster tier in one command: installs what the tier needs and nothing else, then runs
# `cargo test --test real_cluster` against the box.
#
#   tests/kube-box/tier.sh                              # every scenario, newest pinned release
#   NLC_KUBE_BOX_VERSION=1.34 tests/kube-box/tier.sh    # the oldest supported minor
#   tests/kube-box/tier.sh node_lost zone_rates         # some scenarios (names contain these)
#   tests/kube-box/tier.sh --skip no_data_lost          # all but some
#
# What it installs, all under one folder, $NLC_CACHE (default ~/.cache/node-lifecycle-controller):
#   tools/helm-VERSION         the pinned helm (tests/kube-box/helm.sh), a few seconds
#   kube-box/VERSION-HASH/     kube-apiserver, kube-controller-manager, etcd built from
#                              Kubernetes' sources (tests/kube-box/build.sh), about 6 minutes once
# The build also fills Go's own module and build caches (`go env GOMODCACHE GOCACHE`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
cache="${NLC_CACHE:-$HOME/.cache/node-lifecycle-controller}"
echo "tier.sh: installs helm and the box's binaries into $cache (Go's caches: $(go env GOMODCACHE 2>/dev/null || echo 'no go') and $(go env GOCACHE 2>/dev/null || echo 'no go'))"
NLC_HELM=$(bash tests/kube-box/helm.sh | tail -n1)
echo "tier.sh: helm: $NLC_HELM"
NLC_KUBE_BOX_BIN=$(bash tests/kube-box/build.sh ${NLC_KUBE_BOX_VERSION:+"$NLC_KUBE_BOX_VERSION"} | tail -n1)
echo "tier.sh: kube-box: $NLC_KUBE_BOX_BIN"
export NLC_HELM NLC_KUBE_BOX_BIN
exec cargo test --locked --test real_cluster -- "$@"

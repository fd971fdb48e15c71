#!/usr/bin/env bash
# Builds the cluster in a box for one pinned Kubernetes release (k8s-MAJOR.MINOR/, written by
# pin.sh): kube-apiserver, kube-controller-manager and etcd, from the Go module proxy's sources.
# The binaries are cached under $NLC_KUBE_BOX_CACHE (default $NLC_CACHE/kube-box, and $NLC_CACHE
# ~/.cache/node-lifecycle-controller), keyed by the release and a hash of its go.sum, so a second
# run builds nothing.
# Prints the directory that holds the three binaries on its last line.
#
#   tests/kube-box/build.sh          # the newest pinned release
#   tests/kube-box/build.sh 1.34     # another pinned minor
#   tests/kube-box/build.sh --cached # only print a cached build's directory (exit 1 if none)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cached_only=false
if [[ "${1:-}" == --cached ]]; then cached_only=true; shift; fi
pinned() { (cd "$here" && for d in k8s-1.*/; do d=${d%/}; echo "${d#k8s-}"; done | sort -t. -k2,2n); }
minor=${1:-$(pinned | tail -n1)}
src="$here/k8s-$minor"
[[ -f "$src/go.mod" ]] || { echo "build.sh: no pinned release $minor (have: $(pinned | tr '\n' ' '))" >&2; exit 2; }
version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$src/go.mod")
key="$version-$(sha256sum "$src/go.sum" | cut -c1-12)"
cache=${NLC_KUBE_BOX_CACHE:-${NLC_CACHE:-$HOME/.cache/node-lifecycle-controller}/kube-box}
out="$cache/$key"
tools=(kube-apiserver kube-controller-manager etcd)

have_all() { for t in "${tools[@]}"; do [[ -x "$out/$t" ]] || return 1; done; }
if have_all; then
  echo "kube-box $version: cached in $out" >&2
  echo "$out"
  exit 0
fi
if $cached_only; then
  echo "kube-box $version: not built yet (tests/kube-box/build.sh $minor builds it)" >&2
  exit 1
fi
command -v go >/dev/null || { echo "build.sh: go is not installed" >&2; exit 1; }
echo "kube-box $version: building kube-apiserver, kube-controller-manager, etcd ($(go version))" >&2
start=$(date +%s)
tmp="$out.partial.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
# The version stamps that Kubernetes' own build (hack/lib/version.sh) sets, so that /version
# and --version say which release this is.
minor_number=$(echo "$version" | cut -d. -f2)
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor_number"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
# -trimpath and no VCS stamping: the same sources give the same binaries wherever they build.
(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager)
(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
"$tmp/kube-apiserver" --version >&2
"$tmp/etcd" --version | head -n1 >&2
rm -rf "$out" && mv "$tmp" "$out"
trap - EXIT
echo "kube-box $version: built in $(( $(date +%s) - start ))s" >&2
echo "$out"

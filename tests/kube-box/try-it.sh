#!/usr/bin/env bash
# "Try it on a real API server in five minutes" (docs/user-guide.md#try-it-on-a-real-api-server):
# a small live cluster, the controller against it in dry-run, one kubelet stopped, what the
# controller would do, its /metrics, and the what-if of a zone failure. Every step checks what
# it shows, so that the real-cluster tier, which runs this script, fails when the guide would.
#
#   tests/kube-box/try-it.sh [DIR]     # DIR (default target/try-it) must not exist
#
# The binaries: $NLC_BIN and $NLC_LIVE_CLUSTER_BIN when set (the tier sets them), else built
# here with cargo. Port: $NLC_TRY_IT_PORT (default 10258) for the controller's plain HTTP.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
dir=${1:-target/try-it}
port=${NLC_TRY_IT_PORT:-10258}
if [[ -z "${NLC_BIN:-}" ]]; then
  cargo build --quiet --locked --bin node-lifecycle-controller --example live-cluster
  NLC_BIN=target/debug/node-lifecycle-controller
fi
nlc=$NLC_BIN
step() { printf '\n$ %s\n' "$*"; }
expect() { # expect WHAT SECONDS COMMAND...: retries COMMAND until it succeeds
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" > /dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "try-it: FAILED: $what" >&2; exit 1; }
    sleep 1
  done
  echo "try-it: ok: $what"
}
controller=""
trap '[[ -n "$controller" ]] && kill "$controller" 2>/dev/null; tests/kube-box/live-cluster.sh stop "$dir" > /dev/null 2>&1 || true' EXIT

# --- the guide's steps ---
step "tests/kube-box/live-cluster.sh start $dir"
tests/kube-box/live-cluster.sh start "$dir"
step "export KUBECONFIG=$dir/box/admin.kubeconfig"
export KUBECONFIG=$dir/box/admin.kubeconfig

step "kubectl get nodes -L topology.kubernetes.io/zone"
kubectl get nodes -L topology.kubernetes.io/zone
count() { [[ $(kubectl get "${@:3}" --no-headers | grep -cw "$2") == "$1" ]]; }
expect "6 nodes Ready" 30 count 6 Ready nodes
expect "12 pods Running" 30 count 12 Running pods -n shop

step "$nlc run --dry-run --leader-elect=false --node-monitor-grace-period=20s --secure-address= --admin-address=127.0.0.1:$port 2> $dir/controller.log &"
"$nlc" run --dry-run --leader-elect=false --node-monitor-grace-period=20s \
  --secure-address= --admin-address="127.0.0.1:$port" 2> "$dir/controller.log" &
controller=$!
expect "the controller is ready (/readyz)" 30 curl -fsS "127.0.0.1:$port/readyz"

step "kubectl annotate --overwrite node a-1 live-cluster/kubelet=stopped"
kubectl annotate --overwrite node a-1 live-cluster/kubelet=stopped
expect "a dry-run Unknown mark of a-1 within grace + period + slack" 40 \
  grep -q "dry-run: would mark node a-1's conditions Unknown" "$dir/controller.log"
expect "a dry-run NoExecute taint of a-1" 20 \
  grep -q "dry-run: would add node.kubernetes.io/unreachable:NoExecute on node a-1" "$dir/controller.log"

step "grep 'dry-run: would' $dir/controller.log | grep a-1"
grep 'dry-run: would' "$dir/controller.log" | grep a-1 | sed 's/^.*dry-run:/dry-run:/'
step "kubectl get node a-1 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status} {.spec.taints[*].key}{\"\\n\"}'"
a1=$(kubectl get node a-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}{"\n"}')
echo "$a1"
# A dry run writes nothing: still Ready (as last posted), no unreachable taint.
[[ "$a1" == "True "* && "$a1" != *unreachable* ]] || { echo "try-it: FAILED: the dry run wrote to a-1" >&2; exit 1; }

step "curl -s 127.0.0.1:$port/metrics | grep -a unhealthy_nodes_in_zone | cat -v"
curl -s "127.0.0.1:$port/metrics" | grep -a unhealthy_nodes_in_zone | cat -v | tee "$dir/zones.txt"
grep -qF 'unhealthy_nodes_in_zone{zone="box:^@:zone-a"} 1' "$dir/zones.txt"

step "$nlc simulate --from-cluster --fail zone=box/zone-b --duration 10m"
"$nlc" simulate --from-cluster --fail zone=box/zone-b --duration 10m > "$dir/what-if.txt"
tail -n 12 "$dir/what-if.txt"
grep -q "pods deleted" "$dir/what-if.txt"

step "tests/kube-box/live-cluster.sh stop $dir"
kill "$controller"
controller=""
tests/kube-box/live-cluster.sh stop "$dir"
echo "try-it: done"

#!/usr/bin/env bash
# End-to-end suite on kind: one command, `e2e/run.sh`.
#
# Creates a kind cluster (e2e/kind-config.yaml: kube-controller-manager without its own
# node-lifecycle and taint-eviction controllers, four workers in two zones), builds the image,
# loads it into the cluster, installs the chart with short grace periods (e2e/values.yaml) and
# runs the scenarios below; each one cleans up after itself. On failure it dumps controller logs,
# events, and node, pod and Lease YAML into $E2E_ARTIFACTS, and the cluster is deleted unless
# E2E_KEEP_CLUSTER=true.
#
# Needs docker (a running engine), kind, kubectl and helm. Without docker or kind it prints
# "skipped: needs docker and kind" and exits 0.
#
# Environment:
#   E2E_CLUSTER        kind cluster name                    (nlc-e2e)
#   E2E_NODE_IMAGE     kind node image                      (kindest/node:v1.33.1)
#   E2E_KEEP_CLUSTER   keep the cluster afterwards          (false)
#   E2E_SKIP_BUILD     use an already built $E2E_IMAGE      (false)
#   E2E_ARTIFACTS      where failure dumps go               (target/e2e-artifacts)
#   E2E_SCENARIOS      space-separated subset to run        (all, in order)
#   HELM               the helm binary                      (helm on PATH, else the one
#                                                            .ci/validate-deploy.sh installs)
#
# How "kubelet-reported NotReady" is produced: `systemctl stop containerd` inside the node's
# container. The kubelet keeps running, renewing its Lease and posting status, but its runtime
# check fails, so after about 30s it reports Ready=False ("container runtime is down"). Running
# containers survive (their shims outlive containerd). `systemctl start containerd` heals it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1 || ! command -v kind >/dev/null 2>&1; then
  echo "skipped: needs docker and kind"
  exit 0
fi

CLUSTER=${E2E_CLUSTER:-nlc-e2e}
NODE_IMAGE=${E2E_NODE_IMAGE:-kindest/node:v1.33.1}
KEEP=${E2E_KEEP_CLUSTER:-false}
SKIP_BUILD=${E2E_SKIP_BUILD:-false}
ARTIFACTS=${E2E_ARTIFACTS:-$root/target/e2e-artifacts}
SCENARIOS=${E2E_SCENARIOS:-node_lost kubelet_restart_cancels kubelet_reports_not_ready leader_handover zone_down}
IMAGE="node-lifecycle-controller:e2e"
RELEASE="node-lifecycle-controller"
NS=kube-system
TEST_NS=nlc-e2e
LEASE="node-lifecycle-controller"
CONTEXT=kind-$CLUSTER
# From e2e/values.yaml: how long a silent node may wait before it is Unknown, plus one kubelet
# lease renewal (10s) and slack.
UNKNOWN_WITHIN=60
NOT_READY_WITHIN=90

if [[ -z "${HELM:-}" ]]; then
  if command -v helm >/dev/null 2>&1; then
    HELM=helm
  else
    HELM=$(bash "$root/tests/kube-box/helm.sh" --cached 2>/dev/null || true)
  fi
fi
command -v kubectl >/dev/null 2>&1 || { echo "error: kubectl is needed" >&2; exit 1; }
if [[ -z "${HELM:-}" ]] || ! command -v "$HELM" >/dev/null 2>&1; then
  echo "error: helm is needed (on PATH, or set HELM=/path/to/helm)" >&2
  exit 1
fi

k() { kubectl --context "$CONTEXT" "$@"; }
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { log "FAIL: $*" >&2; exit 1; }
epoch() { date -u -d "$1" +%s 2>/dev/null || python3 -c 'import sys,datetime; print(int(datetime.datetime.fromisoformat(sys.argv[1].replace("Z","+00:00")).timestamp()))' "$1"; }

# ---- failure dump and teardown ----------------------------------------------------------------
dump() {
  mkdir -p "$ARTIFACTS"
  log "dumping cluster state to $ARTIFACTS"
  k get nodes -o wide > "$ARTIFACTS/nodes.txt" 2>&1 || true
  k get nodes -o yaml > "$ARTIFACTS/nodes.yaml" 2>&1 || true
  k get pods -A -o wide > "$ARTIFACTS/pods.txt" 2>&1 || true
  k get pods -n "$TEST_NS" -o yaml > "$ARTIFACTS/test-pods.yaml" 2>&1 || true
  k get pods -n "$NS" -l "app.kubernetes.io/instance=$RELEASE" -o yaml > "$ARTIFACTS/controller-pods.yaml" 2>&1 || true
  k get events -A --sort-by=.lastTimestamp -o wide > "$ARTIFACTS/events.txt" 2>&1 || true
  k get leases -A -o yaml > "$ARTIFACTS/leases.yaml" 2>&1 || true
  local pod
  for pod in $(k get pods -n "$NS" -l "app.kubernetes.io/instance=$RELEASE" -o name 2>/dev/null); do
    k logs -n "$NS" "$pod" > "$ARTIFACTS/${pod#pod/}.log" 2>&1 || true
    k logs -n "$NS" "$pod" --previous > "$ARTIFACTS/${pod#pod/}.previous.log" 2>/dev/null || true
  done
  kind export logs "$ARTIFACTS/kind" --name "$CLUSTER" >/dev/null 2>&1 || true
  echo "---- nodes"
  cat "$ARTIFACTS/nodes.txt"
  echo "---- last controller log lines"
  tail -n 40 "$ARTIFACTS"/*.log 2>/dev/null || true
}

finish() {
  local status=$?
  set +e
  if [[ $status -ne 0 ]]; then
    dump
  fi
  if [[ "$KEEP" == true ]]; then
    log "keeping cluster $CLUSTER (kind delete cluster --name $CLUSTER)"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1
  fi
  if [[ $status -eq 0 ]]; then
    log "e2e passed: $SCENARIOS"
  else
    log "e2e FAILED (artifacts in $ARTIFACTS)"
  fi
  exit "$status"
}

# ---- helpers ----------------------------------------------------------------------------------
wait_until() { # timeout-seconds description command...
  local timeout=$1 what=$2
  shift 2
  local start=$SECONDS
  until "$@"; do
    ((SECONDS - start < timeout)) || fail "timed out after ${timeout}s: $what"
    sleep 1
  done
  log "ok: $what ($((SECONDS - start))s)"
}

ready_status() { k get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
ready_is() { [[ "$(ready_status "$1")" == "$2" ]]; }
ready_since() { k get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}'; }
taints() { k get node "$1" -o jsonpath='{range .spec.taints[*]}{.key}:{.effect}{"\n"}{end}'; }
has_taint() { taints "$1" | grep -qx "$2"; }
no_lifecycle_taints() { ! taints "$1" | grep -qE '^node\.kubernetes\.io/(unreachable|not-ready):'; }
taint_added() { # node key: timeAdded of the key's NoExecute taint
  k get node "$1" -o jsonpath="{.spec.taints[?(@.key==\"$2\")].timeAdded}"
}
zone_nodes() { k get nodes -l "topology.kubernetes.io/zone=$1" -o jsonpath='{.items[*].metadata.name}'; }
leader() { k get lease -n "$NS" "$LEASE" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
has_leader() { [[ -n "$(leader)" ]]; }
controller_pods() { k get pods -n "$NS" -l "app.kubernetes.io/instance=$RELEASE" --field-selector=status.phase=Running -o jsonpath='{.items[*].metadata.name}'; }
metrics() { k get --raw "/api/v1/namespaces/$NS/pods/$1:8080/proxy/metrics"; }
pod_gone() { ! k get pod -n "$TEST_NS" "$1" >/dev/null 2>&1; }
pod_deleting() { pod_gone "$1" || [[ -n "$(k get pod -n "$TEST_NS" "$1" -o jsonpath='{.metadata.deletionTimestamp}')" ]]; }
pod_running() { [[ "$(k get pod -n "$TEST_NS" "$1" -o jsonpath='{.status.phase}' 2>/dev/null)" == Running ]]; }
pods_running() { local p; for p; do pod_running "$p" || return 1; done; }
replicas_ready() { [[ "$(k get deploy -n "$NS" "$RELEASE" -o jsonpath='{.status.readyReplicas}')" == "$1" ]]; }
pod_not_ready() { [[ "$(k get pod -n "$TEST_NS" "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == False ]]; }
events_of() { # pod: "reason|message" lines of the Events about it
  k get events -n "$TEST_NS" --field-selector "involvedObject.name=$1" -o jsonpath='{range .items[*]}{.reason}|{.message}{"\n"}{end}'
}
has_event() { events_of "$1" | grep -qF "$2"; }

# When the controller deleted the pod: deletionTimestamp minus the grace period it was given.
deleted_at() {
  local ts grace
  ts=$(k get pod -n "$TEST_NS" "$1" -o jsonpath='{.metadata.deletionTimestamp}')
  grace=$(k get pod -n "$TEST_NS" "$1" -o jsonpath='{.metadata.deletionGracePeriodSeconds}')
  echo $(($(epoch "$ts") - ${grace:-0}))
}

# A pause pod on a given node; toleration "forever" or a number of seconds for the
# unreachable and not-ready NoExecute taints.
make_pod() { # name node toleration
  local name=$1 node=$2 toleration=$3 seconds=""
  [[ "$toleration" == forever ]] || seconds="tolerationSeconds: $toleration"
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: $TEST_NS
spec:
  nodeSelector:
    kubernetes.io/hostname: $node
  terminationGracePeriodSeconds: 5
  tolerations:
    - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, $seconds}
    - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, $seconds}
  containers:
    - name: pause
      image: registry.k8s.io/pause:3.10
      resources: {requests: {cpu: 1m, memory: 8Mi}}
EOF
}

stop_kubelet() { log "stopping the kubelet on $1"; docker exec "$1" systemctl stop kubelet; }
start_kubelet() { log "starting the kubelet on $1"; docker exec "$1" systemctl start kubelet; }

# Brings every worker back and waits until it is Ready and untainted; removes the test pods.
heal() {
  local node
  for node in $(k get nodes -o jsonpath='{.items[*].metadata.name}'); do
    docker exec "$node" systemctl start containerd kubelet
  done
  for node in $(k get nodes -o jsonpath='{.items[*].metadata.name}'); do
    wait_until 120 "$node Ready" ready_is "$node" True
    wait_until 60 "$node has no unreachable/not-ready taint" no_lifecycle_taints "$node"
  done
  k delete pods -n "$TEST_NS" --all --grace-period=0 --force --wait=true >/dev/null 2>&1 || true
}

# Asserts that the pod's deletion came `seconds` after the taint was added (±slack).
assert_deleted_after() { # pod taint-epoch seconds
  local at delay
  at=$(deleted_at "$1")
  delay=$((at - $2))
  log "$1 deleted ${delay}s after the taint (tolerates $3s)"
  ((delay >= $3 - 1)) || fail "$1 was deleted after ${delay}s, before its toleration of $3s ran out"
  ((delay <= $3 + 15)) || fail "$1 was deleted after ${delay}s, late for a toleration of $3s"
}

# ---- scenarios --------------------------------------------------------------------------------

# A stopped kubelet: its node turns Unknown and gets the unreachable taints; a pod tolerating
# them for 30s is deleted after ~30s; one tolerating them forever stays. Restarting the kubelet
# removes the taints.
scenario_node_lost() {
  local node
  node=$(zone_nodes zone-a | cut -d' ' -f1)
  make_pod p30 "$node" 30
  make_pod forever "$node" forever
  wait_until 60 "test pods running on $node" pods_running p30 forever
  stop_kubelet "$node"
  wait_until "$UNKNOWN_WITHIN" "$node Ready=Unknown" ready_is "$node" Unknown
  wait_until 15 "$node tainted unreachable:NoExecute" has_taint "$node" node.kubernetes.io/unreachable:NoExecute
  wait_until 15 "$node tainted unreachable:NoSchedule" has_taint "$node" node.kubernetes.io/unreachable:NoSchedule
  local added
  added=$(epoch "$(taint_added "$node" node.kubernetes.io/unreachable)")
  wait_until 30 "p30 marked NotReady" pod_not_ready p30
  wait_until 15 "p30 marked for deletion (event)" has_event p30 "Marking for deletion Pod $TEST_NS/p30"
  wait_until 60 "p30 deleted" pod_deleting p30
  assert_deleted_after p30 "$added" 30
  sleep 10
  pod_deleting forever && fail "the pod tolerating forever was deleted"
  log "ok: forever-pod stays"
  start_kubelet "$node"
  wait_until 60 "$node Ready again" ready_is "$node" True
  wait_until 30 "$node untainted" no_lifecycle_taints "$node"
  pod_deleting forever && fail "the pod tolerating forever was deleted after the node came back"
  heal
}

# A kubelet that comes back before a toleration runs out: its taints go and the pending
# deletion is cancelled.
scenario_kubelet_restart_cancels() {
  local node
  node=$(zone_nodes zone-a | cut -d' ' -f1)
  make_pod p60 "$node" 60
  wait_until 60 "p60 running on $node" pod_running p60
  stop_kubelet "$node"
  wait_until "$UNKNOWN_WITHIN" "$node Ready=Unknown" ready_is "$node" Unknown
  wait_until 15 "$node tainted unreachable:NoExecute" has_taint "$node" node.kubernetes.io/unreachable:NoExecute
  local added
  added=$(epoch "$(taint_added "$node" node.kubernetes.io/unreachable)")
  wait_until 15 "p60 marked for deletion (event)" has_event p60 "Marking for deletion Pod $TEST_NS/p60"
  start_kubelet "$node"
  wait_until 60 "$node Ready again" ready_is "$node" True
  wait_until 30 "$node untainted" no_lifecycle_taints "$node"
  wait_until 15 "p60 deletion cancelled (event)" has_event p60 "Cancelling deletion of Pod $TEST_NS/p60"
  local until=$((added + 60 + 10))
  log "watching p60 until its cancelled deadline has passed ($((until - $(date +%s)))s)"
  while (($(date +%s) < until)); do
    pod_deleting p60 && fail "p60 was deleted although its node recovered"
    sleep 2
  done
  log "ok: p60 kept"
  heal
}

# The kubelet itself reports Ready=False (container runtime stopped): the not-ready taints come
# without a grace period and the toleration countdown runs as for unreachable.
scenario_kubelet_reports_not_ready() {
  local node
  node=$(zone_nodes zone-b | cut -d' ' -f1)
  make_pod p30 "$node" 30
  make_pod forever "$node" forever
  wait_until 60 "test pods running on $node" pods_running p30 forever
  log "stopping containerd on $node"
  docker exec "$node" systemctl stop containerd
  wait_until "$NOT_READY_WITHIN" "$node Ready=False (reported by the kubelet)" ready_is "$node" False
  wait_until 15 "$node tainted not-ready:NoExecute" has_taint "$node" node.kubernetes.io/not-ready:NoExecute
  wait_until 15 "$node tainted not-ready:NoSchedule" has_taint "$node" node.kubernetes.io/not-ready:NoSchedule
  has_taint "$node" node.kubernetes.io/unreachable:NoExecute && fail "$node got the unreachable taint although its kubelet reports"
  local added
  added=$(epoch "$(taint_added "$node" node.kubernetes.io/not-ready)")
  wait_until 60 "p30 deleted" pod_deleting p30
  assert_deleted_after p30 "$added" 30
  pod_deleting forever && fail "the pod tolerating forever was deleted"
  log "ok: forever-pod stays"
  docker exec "$node" systemctl start containerd
  wait_until 90 "$node Ready again" ready_is "$node" True
  wait_until 30 "$node untainted" no_lifecycle_taints "$node"
  heal
}

# Deleting the leader pod mid-countdown: the standby takes over, the taint is not re-added
# (same timeAdded), the node is not re-marked, the pod's deletion is not postponed, and at no
# sampled moment do two replicas claim leadership.
scenario_leader_handover() {
  local node old new
  node=$(zone_nodes zone-b | cut -d' ' -f1)
  make_pod p30 "$node" 30
  wait_until 60 "p30 running on $node" pod_running p30
  stop_kubelet "$node"
  wait_until "$UNKNOWN_WITHIN" "$node Ready=Unknown" ready_is "$node" Unknown
  wait_until 15 "$node tainted unreachable:NoExecute" has_taint "$node" node.kubernetes.io/unreachable:NoExecute
  local added_raw unknown_since added
  added_raw=$(taint_added "$node" node.kubernetes.io/unreachable)
  added=$(epoch "$added_raw")
  unknown_since=$(ready_since "$node")
  old=$(leader)
  log "deleting the leader pod $old"
  k delete pod -n "$NS" "$old" --wait=false >/dev/null
  local start=$SECONDS pod leaders
  while new=$(leader); [[ -z "$new" || "$new" == "$old" ]]; do
    ((SECONDS - start < 30)) || fail "no new leader within 30s (holder: ${new:-none})"
    sleep 1
  done
  log "ok: leadership moved from $old to $new ($((SECONDS - start))s)"
  # Sample the leader gauge of every running replica until the pod is deleted. The old leader is
  # left out: it released the Lease on SIGTERM and is on its way out (its gauge may lag).
  until pod_deleting p30; do
    leaders=0
    for pod in $(controller_pods); do
      [[ "$pod" == "$old" ]] && continue
      # Read the whole output first: `grep -q` closing the pipe early would fail it (pipefail).
      if grep -qx 'node_lifecycle_controller_leader 1' <<<"$(metrics "$pod" 2>/dev/null)"; then
        leaders=$((leaders + 1))
      fi
    done
    ((leaders <= 1)) || fail "$leaders replicas report node_lifecycle_controller_leader 1"
    ((SECONDS - start < 90)) || fail "p30 not deleted within 90s of the handover"
    sleep 1
  done
  assert_deleted_after p30 "$added" 30
  [[ "$(taint_added "$node" node.kubernetes.io/unreachable)" == "$added_raw" ]] \
    || fail "the unreachable taint was re-added during the handover (timeAdded changed)"
  [[ "$(ready_since "$node")" == "$unknown_since" ]] || fail "$node was marked again during the handover"
  log "ok: no double actions (taint timeAdded $added_raw, Unknown since $unknown_since)"
  start_kubelet "$node"
  heal
  wait_until 90 "two controller replicas ready" replicas_ready 2
}

# A whole zone down: every node of zone-b turns Unknown and is tainted; zone-a is untouched.
scenario_zone_down() {
  local node nodes_b nodes_a
  nodes_b=$(zone_nodes zone-b)
  nodes_a=$(zone_nodes zone-a)
  for node in $nodes_b; do
    make_pod "p30-$node" "$node" 30
    wait_until 60 "p30-$node running" pod_running "p30-$node"
  done
  for node in $nodes_b; do
    stop_kubelet "$node"
  done
  for node in $nodes_b; do
    wait_until "$UNKNOWN_WITHIN" "$node Ready=Unknown" ready_is "$node" Unknown
    wait_until 30 "$node tainted unreachable:NoExecute" has_taint "$node" node.kubernetes.io/unreachable:NoExecute
  done
  for node in $nodes_b; do
    wait_until 60 "p30-$node deleted" pod_deleting "p30-$node"
  done
  for node in $nodes_a; do
    ready_is "$node" True || fail "$node in the healthy zone is not Ready"
    no_lifecycle_taints "$node" || fail "$node in the healthy zone was tainted"
  done
  log "ok: zone-a untouched"
  local holder
  holder=$(leader)
  local unhealthy
  unhealthy=$(metrics "$holder" | grep -a '^node_collector_unhealthy_nodes_in_zone' | grep -a 'zone-b' || true)
  [[ "$unhealthy" == *" 2" ]] \
    || fail "the leader's node_collector_unhealthy_nodes_in_zone does not show 2 for zone-b"
  log "ok: metrics show zone-b with 2 unhealthy nodes"
  for node in $nodes_b; do
    start_kubelet "$node"
  done
  heal
}

# ---- main -------------------------------------------------------------------------------------
trap finish EXIT

log "creating kind cluster $CLUSTER ($NODE_IMAGE)"
kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --config "$here/kind-config.yaml" --wait 180s

kcm_command=$(k get pods -n kube-system -l component=kube-controller-manager -o jsonpath='{.items[0].spec.containers[0].command}')
[[ "$kcm_command" == *'--controllers=*,-node-lifecycle-controller,-taint-eviction-controller'* ]] \
  || fail "kube-controller-manager still runs the built-in controllers: $kcm_command"
log "ok: kube-controller-manager runs without node-lifecycle-controller and taint-eviction-controller"

if [[ "$SKIP_BUILD" != true ]]; then
  log "building $IMAGE"
  docker build -t "$IMAGE" "$root"
fi
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "installing the chart"
"$HELM" --kube-context "$CONTEXT" upgrade --install "$RELEASE" "$root/charts/node-lifecycle-controller" \
  --namespace "$NS" --values "$here/values.yaml" --wait --timeout 180s
wait_until 60 "a leader holds Lease $NS/$LEASE" has_leader
log "leader: $(leader)"
k create namespace "$TEST_NS" >/dev/null

for scenario in $SCENARIOS; do
  log "=== scenario: $scenario"
  "scenario_$scenario"
done

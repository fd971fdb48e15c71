#!/usr/bin/env bash
# The cluster in a box: etcd and kube-apiserver on loopback, for the real-cluster test tier.
#
#   box.sh start DIR        start one in DIR (which must not exist); prints DIR/env when ready
#   box.sh token DIR NS SA  a ServiceAccount's credentials as a kubelet mounts them (TokenRequest)
#   box.sh stop DIR         stop exactly the processes `start` recorded in DIR/pids, remove DIR
#   box.sh freeze|thaw DIR etcd|kube-apiserver   SIGSTOP / SIGCONT one of them (a hang)
#   box.sh down|up DIR      stop kube-apiserver (SIGTERM) / start it again on the same etcd
#
# The binaries come from $NLC_KUBE_BOX_BIN, else from build.sh (the newest pinned release, or
# $NLC_KUBE_BOX_VERSION, e.g. 1.34). What `start` sets up:
# - its own CA; a serving certificate for 127.0.0.1 signed by it (rustls refuses a self-signed
#   certificate that is its own CA); a client certificate for an admin (system:masters);
# - service-account token signing, RBAC authorization, the default admission plugins (among
#   them DefaultTolerationSeconds and TaintNodesByCondition, which the controller relies on);
# - an audit log (DIR/audit.log, JSON lines): every request at Metadata level, and the bodies
#   of writes by service accounts (the controller's) at Request level;
# - DIR/admin.kubeconfig, and DIR/env (shell assignments: BOX_SERVER, BOX_PORT, BOX_CA, ...).
# Nothing listens beyond 127.0.0.1; every file lives in DIR.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { echo "usage: box.sh start DIR | token DIR NAMESPACE SERVICEACCOUNT | stop DIR | freeze|thaw DIR etcd|kube-apiserver | down|up DIR" >&2; exit 2; }
die() { echo "box.sh: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $2 seconds for command $3... to succeed; fails naming $1.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "$what not ready after ${seconds}s"
    fi
    sleep 0.2
  done
}

certs() {
  local d=$1
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kube-box-ca" \
      -keyout ca.key -out ca.crt -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout serving.key -out serving.csr 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" > serving.ext
    openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile serving.ext -out serving.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-box-admin" -keyout admin.key -out admin.csr 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext ca.srl
  )
}

audit_policy() {
  cat > "$1" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # The controller (a service account): what it asked for, bodies of its writes included.
  - level: Request
    userGroups: ["system:serviceaccounts"]
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: Metadata
YAML
}

# The feature gates that bring the fields the "no data lost" test needs (fields the
# controller's v1_33 types lack), where the release has them.
feature_gates() {
  case "$1" in
    v1.37.*) echo "InPlacePodVerticalScalingSchedulerPreemption=true,CSIVolumeHealth=true,TaintTolerationComparisonOperators=true" ;;
    *) echo "CSIVolumeHealth=true" ;;
  esac
}

# Starts kube-apiserver for the box in $1 (binaries $2, etcd on port $3, serving on $4,
# release $5) in the background and records its PID; `start` and `restart` share it.
apiserver() {
  local dir=$1 bin=$2 etcd_port=$3 port=$4 version=$5
  "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --cert-dir "$dir/apiserver-certs" \
    --tls-cert-file "$dir/serving.crt" --tls-private-key-file "$dir/serving.key" \
    --client-ca-file "$dir/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --service-cluster-ip-range 10.96.0.0/24 --endpoint-reconciler-type none \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    --audit-log-format json --audit-log-mode blocking --audit-log-maxbackup 0 \
    --feature-gates "$(feature_gates "$version")" \
    --profiling=false --v 1 >> "$dir/kube-apiserver.log" 2>&1 &
  echo "$! kube-apiserver" >> "$dir/pids"
}

start() {
  local dir=$1
  [[ -e "$dir" ]] && die "$dir exists: give start a new directory"
  local bin=${NLC_KUBE_BOX_BIN:-}
  if [[ -z "$bin" ]]; then
    bin=$("$here/build.sh" ${NLC_KUBE_BOX_VERSION:+"$NLC_KUBE_BOX_VERSION"} | tail -n1)
  fi
  for tool in etcd kube-apiserver; do
    [[ -x "$bin/$tool" ]] || die "no $tool in $bin (run tests/kube-box/build.sh)"
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  : > "$dir/pids"
  # From here on, a failure stops what was started and removes the directory.
  box_started=false
  trap '$box_started || { tail -n 5 "$dir"/*.log >&2 2>/dev/null; stop "$dir" >/dev/null 2>&1; }' EXIT

  certs "$dir"
  audit_policy "$dir/audit-policy.yaml"
  local etcd_port etcd_peer port
  etcd_port=$(free_port)
  etcd_peer=$(free_port)
  port=$(free_port)

  "$bin/etcd" --name box --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "box=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync --log-level warn > "$dir/etcd.log" 2>&1 &
  echo "$! etcd" >> "$dir/pids"
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

  local version
  version=$("$bin/kube-apiserver" --version | awk '{print $2}')
  apiserver "$dir" "$bin" "$etcd_port" "$port" "$version"
  local server="https://127.0.0.1:$port"
  wait_for kube-apiserver 90 curl -fsS --cacert "$dir/ca.crt" --cert "$dir/admin.crt" --key "$dir/admin.key" "$server/readyz"

  cat > "$dir/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: box
  cluster: {server: "$server", certificate-authority: "$dir/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$dir/admin.crt", client-key: "$dir/admin.key"}
contexts:
- name: box
  context: {cluster: box, user: admin}
current-context: box
EOF
  # The namespaces kube-apiserver makes itself (default, kube-system, kube-node-lease) exist
  # shortly after /readyz; wait for the Lease namespace the controller reads.
  wait_for "namespace kube-node-lease" 30 kubectl --kubeconfig "$dir/admin.kubeconfig" get namespace kube-node-lease
  cat > "$dir/env" <<EOF
BOX_DIR=$dir
BOX_SERVER=$server
BOX_PORT=$port
BOX_CA=$dir/ca.crt
BOX_KUBECONFIG=$dir/admin.kubeconfig
BOX_AUDIT_LOG=$dir/audit.log
BOX_VERSION=$version
BOX_BIN=$bin
BOX_ETCD_PORT=$etcd_port
EOF
  box_started=true
  cat "$dir/env"
}

# A ServiceAccount's token (TokenRequest API, 1 hour), with the CA and namespace, laid out as a
# kubelet mounts them at /var/run/secrets/kubernetes.io/serviceaccount; prints that directory.
token() {
  local dir=$1 ns=$2 sa=$3
  [[ -f "$dir/env" ]] || die "$dir is not a started box"
  local out="$dir/serviceaccount-$ns-$sa"
  # One directory per ServiceAccount, shared by its pods as a kubelet shares a projected
  # volume's contents: made once, each file renamed into place whole, so that a process reading
  # the token never sees it half written.
  if [[ ! -s "$out/token" ]]; then
    mkdir -p "$out"
    kubectl --kubeconfig "$dir/admin.kubeconfig" -n "$ns" create token "$sa" --duration 1h > "$out/.token.tmp"
    [[ -s "$out/.token.tmp" ]] || die "TokenRequest for $ns/$sa gave an empty token"
    cp "$dir/ca.crt" "$out/.ca.crt.tmp" && mv "$out/.ca.crt.tmp" "$out/ca.crt"
    printf '%s' "$ns" > "$out/.namespace.tmp" && mv "$out/.namespace.tmp" "$out/namespace"
    mv "$out/.token.tmp" "$out/token"
  fi
  echo "$out"
}

# Whether PID is still running program NAME (not a reused PID, not a zombie).
ours() {
  [[ -r "/proc/$1/cmdline" ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]] &&
    tr '\0' ' ' < "/proc/$1/cmdline" | grep -q "/$2 "
}

# The newest recorded PID of program $2 in box $1 that still runs it.
pid_of() {
  local dir=$1 name=$2 pid n
  [[ -f "$dir/pids" ]] || die "$dir has no pids file: not a box"
  while read -r pid n; do
    if [[ "$n" == "$name" ]] && ours "$pid" "$name"; then echo "$pid"; return 0; fi
  done < <(tac "$dir/pids")
  die "$name is not running in $dir"
}

# Control-plane faults, for the scenarios that must survive them:
#   freeze DIR etcd|kube-apiserver   SIGSTOP: requests hang instead of failing
#   thaw DIR etcd|kube-apiserver     SIGCONT: everything held completes at once
#   down DIR                         SIGTERM kube-apiserver and wait until it is gone
#   up DIR                           start kube-apiserver again on the same etcd, port and
#                                    certificates; returns once it is ready
fault() {
  local verb=$1 dir=$2 name=${3:-kube-apiserver}
  [[ "$name" == etcd || "$name" == kube-apiserver ]] || usage
  case "$verb" in
    freeze) kill -STOP "$(pid_of "$dir" "$name")" ;;
    thaw) kill -CONT "$(pid_of "$dir" "$name")" ;;
    down)
      local pid
      pid=$(pid_of "$dir" kube-apiserver)
      kill -TERM "$pid"
      for _ in $(seq 1 100); do ours "$pid" kube-apiserver || return 0; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      ;;
    up)
      # shellcheck disable=SC1091
      source "$dir/env"
      apiserver "$dir" "$BOX_BIN" "$BOX_ETCD_PORT" "$BOX_PORT" "$BOX_VERSION"
      wait_for kube-apiserver 90 curl -fsS --cacert "$dir/ca.crt" --cert "$dir/admin.crt" --key "$dir/admin.key" "$BOX_SERVER/readyz"
      ;;
  esac
}

stop() {
  local dir=$1
  [[ -f "$dir/pids" ]] || die "$dir has no pids file: not a box (nothing stopped)"
  local pid name
  # Only processes that are still the ones started (same PID, same program), newest first.
  tac "$dir/pids" | while read -r pid name; do
    if ours "$pid" "$name"; then
      # A frozen process (the fault verbs) handles SIGTERM only once it runs again.
      kill -CONT "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        ours "$pid" "$name" || break
        sleep 0.1
      done
      if ours "$pid" "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
  done
  rm -rf "$dir"
}

case "${1:-}" in
  start) [[ $# -eq 2 ]] || usage; start "$2" ;;
  token) [[ $# -eq 4 ]] || usage; token "$2" "$3" "$4" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
  freeze | thaw) [[ $# -eq 3 ]] || usage; fault "$1" "$2" "$3" ;;
  down | up) [[ $# -eq 2 ]] || usage; fault "$1" "$2" ;;
  *) usage ;;
esac

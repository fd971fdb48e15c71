#!/usr/bin/env bash
# A small live cluster on a real API server, to try the controller by hand: a box (box.sh: etcd
# and kube-apiserver on 127.0.0.1) and the fake kubelets of `examples/live-cluster.rs` (six
# nodes in two zones renewing their Leases, twelve pods Running; a kubelet stops on request).
#
#   tests/kube-box/live-cluster.sh start DIR   # DIR must not exist; prints the KUBECONFIG to use
#   tests/kube-box/live-cluster.sh stop DIR    # stops the kubelets and the box, removes DIR
#
# The box's binaries come from $NLC_KUBE_BOX_BIN, else tests/kube-box/build.sh (about 6 minutes
# the first time, then cached); the kubelets from $NLC_LIVE_CLUSTER_BIN, else
# `cargo build --example live-cluster`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
usage() { echo "usage: live-cluster.sh start DIR | stop DIR" >&2; exit 2; }
die() { echo "live-cluster.sh: $*" >&2; exit 1; }

start() {
  local dir=$1
  [[ -e "$dir" ]] && die "$dir exists: give start a new directory"
  local fleet=${NLC_LIVE_CLUSTER_BIN:-}
  if [[ -z "$fleet" ]]; then
    (cd "$root" && cargo build --quiet --locked --example live-cluster)
    fleet="$root/target/debug/examples/live-cluster"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  bash "$here/box.sh" start "$dir/box" > /dev/null || { rm -rf "$dir"; die "the box did not start"; }
  KUBECONFIG="$dir/box/admin.kubeconfig" "$fleet" > "$dir/live-cluster.log" 2>&1 &
  echo "$!" > "$dir/live-cluster.pid"
  local deadline=$((SECONDS + 60))
  until grep -q '^live-cluster: ready' "$dir/live-cluster.log"; do
    if ((SECONDS >= deadline)) || ! kill -0 "$(cat "$dir/live-cluster.pid")" 2>/dev/null; then
      cat "$dir/live-cluster.log" >&2
      stop "$dir"
      die "the kubelets did not come up"
    fi
    sleep 0.5
  done
  grep '^live-cluster: ready' "$dir/live-cluster.log"
  echo "export KUBECONFIG=$dir/box/admin.kubeconfig"
}

stop() {
  local dir=$1
  [[ -f "$dir/live-cluster.pid" ]] || die "$dir has no live-cluster.pid: not a live cluster (nothing stopped)"
  local pid
  pid=$(cat "$dir/live-cluster.pid")
  # Only the process started, if it still runs that program.
  if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'live-cluster'; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [[ -d "$dir/box" ]]; then bash "$here/box.sh" stop "$dir/box"; fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) [[ $# -eq 2 ]] || usage; start "$2" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
  *) usage ;;
esac

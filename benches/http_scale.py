#!/usr/bin/env python3
"""Scale over HTTP: the production binary (`run`, kube::Client, real HTTP and JSON) against the
simulated cluster served by `simulate --serve`, in real time.

    python3 benches/http_scale.py --nodes 1000 [--duration 300] [--out DIR]
    python3 benches/http_scale.py --nodes 1000 --run-arg=--initial-list=streaming

`--run-arg=ARG` (repeatable; write it with `=`, since ARG starts with `--`) appends ARG to the
controller's command line, e.g. to compare `--initial-list=paged` (the default) with
`--initial-list=streaming`; `--serve-arg=ARG` does the same for `simulate --serve` (e.g.
`--serve-arg=--no-watch-list`, to time the fallback). Both are recorded in the report.

N nodes in 10 zones, 30 pods per node (admission gives them the not-ready/unreachable
tolerations with --toleration seconds), kubelets renewing Leases every 10s; at --fail-at, 5% of
the nodes (evenly across zones) stop heartbeating. The controller runs with its defaults except
--node-eviction-rate (default here 1 node/s per zone, so that 10k nodes' failures are all tainted
inside a short window; the rate limiter itself is tested elsewhere).

Measured (printed, and written to DIR/report.json):
- the controller's time to first full sync (spawn until /readyz says the caches are synced), and
  the time to download the same list pages with a plain HTTP client, and `cargo bench --bench
  decode` on those pages: the serde_json floor;
- the controller's peak RSS (VmHWM), RSS at steady state, CPU seconds (sync, steady, total);
- the cost per 1000 watch events: CPU over a steady window divided by the events received;
- monitor and tainting pass durations (mean, from the controller's own histograms);
- delay from each silent node's grace expiry (last Lease renewTime + grace) to the Unknown write
  the served API received, and from Unknown to the NoExecute taint;
- error of each pod deletion against its due time (when the taint started + toleration):
  p50/p99/max.
Only python3's standard library is used.
"""

import argparse
import json
import math
import re
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZONES = 10
PODS_PER_NODE = 30
GRACE = 50.0  # the controller's default --node-monitor-grace-period
PAGE = 500  # kube's watcher lists in pages of 500


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario(nodes, duration, fail_at, toleration):
    per_zone = nodes // ZONES
    failing = max(1, per_zone // 20)
    lines = [
        f"description: http scale, {nodes} nodes, {nodes * PODS_PER_NODE} pods, 5% fail",
        f"duration: {duration}s",
        "admission:",
        f"  default-toleration-seconds: {toleration}",
        "nodes:",
    ]
    for z in range(ZONES):
        lines += [f"  - name: z{z}-{{0..{per_zone - 1}}}", f"    zone: zone-{z}"]
    lines.append("pods:")
    for z in range(ZONES):
        lines += [
            f"  - name: p{z}-{{0..{per_zone * PODS_PER_NODE - 1}}}",
            f"    node: z{z}-{{0..{per_zone - 1}}}",
        ]
    lines.append("events:")
    silent = [f"z{z}-{i}" for z in range(ZONES) for i in range(failing)]
    lines.append(f"  - {{at: {fail_at}s, action: stop-heartbeat, nodes: [{', '.join(silent)}]}}")
    return "\n".join(lines) + "\n", silent


def get(base, path, timeout=60):
    with urllib.request.urlopen(base + path, timeout=timeout) as r:
        return r.read()


def get_json(base, path):
    return json.loads(get(base, path))


def parse_time(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def download_pages(base, out):
    """Lists nodes, leases and pods as kube's watcher does (pages of 500); saves every page."""
    os.makedirs(out, exist_ok=True)
    stats = {}
    for name, path in [
        ("nodes", "/api/v1/nodes"),
        ("leases", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"),
        ("pods", "/api/v1/pods"),
    ]:
        started, cont, i, size = time.monotonic(), "", 0, 0
        while True:
            body = get(base, f"{path}?limit={PAGE}" + (f"&continue={cont}" if cont else ""))
            with open(os.path.join(out, f"{name}-{i}.json"), "wb") as f:
                f.write(body)
            size += len(body)
            i += 1
            # The list's metadata comes first; the items are not parsed here (this times the
            # server and the transfer, not Python's JSON decoder).
            m = re.search(rb'"continue":"([^"]*)"', body[:1024])
            cont = m.group(1).decode() if m else ""
            if not cont:
                break
        stats[name] = {"pages": i, "bytes": size, "seconds": time.monotonic() - started}
    return stats


def proc_sample(pid):
    """(cpu seconds, rss MiB, peak rss MiB) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return cpu, rss, hwm


def metrics(admin):
    """Samples of the controller's /metrics, by full series name."""
    out = {}
    for line in get(admin, "/metrics").decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def total(m, prefix):
    return sum(v for k, v in m.items() if k.startswith(prefix))


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def dist(values):
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p99": pct(values, 99),
        "max": max(values) if values else None,
        "min": min(values) if values else None,
    }


def bursts(due_and_deleted):
    """Deletions grouped by due time (a new burst after a quarter second without one falling
    due): how late the first, the middle and the last deletion of a burst come (medians over the
    bursts), and how many bursts had their last deletion more than 100 ms late. The p99 of all
    deletions hides whether a few bursts are slow or every burst has a slow tail."""
    groups = []
    for due, t in sorted(due_and_deleted):
        if groups and due - groups[-1][-1][0] <= 0.25:
            groups[-1].append((due, t))
        else:
            groups.append([(due, t)])
    if not groups:
        return {"n": 0}
    lates = [sorted(t - due for due, t in g) for g in groups]
    return {
        "n": len(groups),
        "size_p50": pct([len(g) for g in groups], 50),
        "first_late_p50_s": pct([l[0] for l in lates], 50),
        "middle_late_p50_s": pct([l[len(l) // 2] for l in lates], 50),
        "last_late_p50_s": pct([l[-1] for l in lates], 50),
        "last_late_max_s": max(l[-1] for l in lates),
        "last_later_than_100ms": sum(l[-1] > 0.1 for l in lates),
    }


def wait_until(start_wall, t):
    delay = start_wall + t - time.time()
    if delay > 0:
        time.sleep(delay)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--duration", type=int, default=300, help="seconds the cluster is served")
    ap.add_argument("--fail-at", type=int, default=90, help="when 5%% of the nodes go silent")
    ap.add_argument("--toleration", type=int, default=60, help="default toleration seconds")
    ap.add_argument("--eviction-rate", default="1", help="--node-eviction-rate of the controller")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/node-lifecycle-controller"))
    ap.add_argument("--serve-bin", default=None,
                    help="the binary that serves the cluster (default: --bin), so that two "
                         "controllers can be compared against the same served API")
    ap.add_argument("--out", default=None, help="scratch directory (default: a new one in /tmp)")
    ap.add_argument("--no-decode", action="store_true", help="skip the serde_json decode bench")
    ap.add_argument("--run-env", action="append", default=[], metavar="KEY=VALUE",
                    help="an environment variable for the controller process (repeatable)")
    ap.add_argument("--run-arg", action="append", default=[], metavar="ARG",
                    help="an extra argument of `run`, e.g. --run-arg=--initial-list=streaming "
                         "(repeatable)")
    ap.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                    help="an extra argument of `simulate --serve`, e.g. "
                         "--serve-arg=--no-watch-list (repeatable)")
    a = ap.parse_args()
    if a.fail_at + 15 > a.duration - 8:
        # The silent nodes' last renewals are read 15 s after the failure, their taints 8 s
        # before the end, both from the served API, which stops at --duration.
        ap.error(f"--fail-at {a.fail_at} must be at least 23 s before --duration {a.duration}")
    if a.nodes < ZONES or a.nodes % ZONES:
        sys.exit(f"--nodes must be a positive multiple of {ZONES}, got {a.nodes}")
    a.serve_bin = a.serve_bin or a.bin
    for flag, path in (("--bin", a.bin), ("--serve-bin", a.serve_bin)):
        if not os.access(path, os.X_OK):
            sys.exit(f"{flag} {path} is not an executable: run `cargo build --release` first")
    out = a.out or f"/tmp/http-scale-{a.nodes}-{int(time.time())}"
    os.makedirs(out, exist_ok=True)
    text, silent = scenario(a.nodes, a.duration, a.fail_at, a.toleration)
    with open(os.path.join(out, "scenario.yaml"), "w") as f:
        f.write(text)

    port, admin_port = free_port(), free_port()
    base, admin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    kubeconfig = os.path.join(out, "kubeconfig")
    serve = subprocess.Popen(
        [a.serve_bin, "simulate", os.path.join(out, "scenario.yaml"), "--output", "jsonl",
         "--serve", f"127.0.0.1:{port}", "--kubeconfig-out", kubeconfig, *a.serve_arg],
        stdout=open(os.path.join(out, "timeline.jsonl"), "wb"),
        stderr=open(os.path.join(out, "serve.log"), "wb"),
    )
    run = None
    try:
        # The served clock starts right after the kubeconfig is renamed into place.
        while not os.path.exists(kubeconfig):
            if serve.poll() is not None:
                sys.exit(f"simulate --serve exited with {serve.returncode}; see {out}/serve.log")
            time.sleep(0.002)
        start_wall = os.stat(kubeconfig).st_mtime
        # The server answers once its world is built (the listener is bound before that).
        while True:
            try:
                get(base, "/version", timeout=120)
                break
            except OSError:
                time.sleep(0.05)
        print(f"[{a.nodes}] serving {a.nodes} nodes, {a.nodes * PODS_PER_NODE} pods at {base}; scratch {out}", flush=True)
        pages = download_pages(base, os.path.join(out, "pages"))
        plain_list_s = sum(p["seconds"] for p in pages.values())
        print(f"[{a.nodes}] plain HTTP list of the same pages: {plain_list_s:.2f}s, "
              f"{sum(p['bytes'] for p in pages.values()) / 2**20:.0f} MiB", flush=True)

        spawned = time.monotonic()
        run = subprocess.Popen(
            [a.bin, "run", "--kubeconfig", kubeconfig, "--admin-address", f"127.0.0.1:{admin_port}", "--secure-address=",
             "--identity", "bench", f"--node-eviction-rate={a.eviction_rate}", "--log-level", "warn",
             *a.run_arg],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(out, "run.log"), "wb"),
            env={**os.environ, **dict(kv.split("=", 1) for kv in a.run_env)},
        )
        samples = []
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                try:
                    serve_cpu = proc_sample(serve.pid)[0]
                    samples.append((time.time() - start_wall, *proc_sample(run.pid), serve_cpu))
                except OSError:
                    return
                stop.wait(0.5)

        threading.Thread(target=sampler, daemon=True).start()
        while True:
            if run.poll() is not None:
                sys.exit(f"run exited with {run.returncode}; see {out}/run.log")
            try:
                if b"caches: synced" in get(admin, "/readyz", timeout=5):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        sync_s = time.monotonic() - spawned
        cpu_sync, rss_sync, _ = proc_sample(run.pid)
        synced_at = time.time() - start_wall
        print(f"[{a.nodes}] controller ({' '.join(a.run_arg) or 'default flags'}) synced in {sync_s:.2f}s (CPU {cpu_sync:.2f}s, RSS {rss_sync:.0f} MiB)", flush=True)

        steady = None
        window_start = synced_at + 5
        if window_start + 20 <= a.fail_at - 2:
            wait_until(start_wall, window_start)
            m1, c1 = metrics(admin), proc_sample(run.pid)
            wait_until(start_wall, a.fail_at - 2)
            m2, c2 = metrics(admin), proc_sample(run.pid)
            events = total(m2, "node_lifecycle_controller_watch_events_total") - total(
                m1, "node_lifecycle_controller_watch_events_total")
            passes = sum(
                m2[k] - m1.get(k, 0)
                for k in m2
                if k.endswith("_sum") and ("update_all_nodes_health" in k or "tainting_pass" in k)
            )
            cpu = c2[0] - c1[0]
            steady = {
                "seconds": round(a.fail_at - 2 - window_start, 1),
                "cpu": round(cpu, 2),
                "rss_mib": round(c2[1], 1),
                "watch_events": int(events),
                "cpu_per_1000_events_ms": round(cpu / events * 1e6, 2) if events else None,
                "cpu_per_1000_events_without_passes_ms":
                    round((cpu - passes) / events * 1e6, 2) if events else None,
            }
            print(f"[{a.nodes}] steady: {steady}", flush=True)
        else:
            print(f"[{a.nodes}] no steady window: synced at {synced_at:.1f}s, failure at {a.fail_at}s", flush=True)

        # Last renewals of the silent nodes, after they stopped.
        wait_until(start_wall, a.fail_at + 15)
        renewed = {}
        for n in silent:
            lease = get_json(base, f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{n}")
            renewed[n] = parse_time(lease["spec"]["renewTime"]) - start_wall
        # Taint times, shortly before the end.
        wait_until(start_wall, a.duration - 8)
        added = {}
        for n in silent:
            node = get_json(base, f"/api/v1/nodes/{n}")
            for t in (node.get("spec") or {}).get("taints") or []:
                if t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute":
                    added[n] = parse_time(t["timeAdded"]) - start_wall
        final = metrics(admin)
        cpu_total, rss_end, hwm = proc_sample(run.pid)
        serve_cpu_total = proc_sample(serve.pid)[0]
        stop.set()
        serve.wait(timeout=120)
    finally:
        if run and run.poll() is None:
            run.send_signal(signal.SIGTERM)
            try:
                run.wait(timeout=10)
            except subprocess.TimeoutExpired:
                run.kill()
        if serve.poll() is None:
            serve.kill()

    timeline = [json.loads(l) for l in open(os.path.join(out, "timeline.jsonl"))]
    unknown = {e["node"]: e["t"] for e in timeline if e["type"] == "NodeConditionsUnknown"}
    tainted = {e["node"]: e["t"] for e in timeline
               if e["type"] == "TaintAdded" and e["taint"] == "node.kubernetes.io/unreachable:NoExecute"}
    deleted = [e for e in timeline if e["type"] == "PodDeleted"]
    wrong = sorted(set(unknown) - set(silent))
    expiry = {n: renewed[n] + GRACE for n in silent}
    unknown_delay = [unknown[n] - expiry[n] for n in silent if n in unknown]
    # The monitor pass runs every 5s: writes of one pass arrive together. The latest expiry among
    # a pass's nodes bounds that pass's start from below, so the write time minus it bounds what
    # the controller adds beyond the period's granularity.
    beyond = []
    for n in silent:
        if n in unknown:
            same_pass = [expiry[m] for m in silent if m in unknown and abs(unknown[m] - unknown[n]) < 1]
            beyond.append(unknown[n] - max(same_pass))
    taint_after_unknown = [tainted[n] - unknown[n] for n in silent if n in tainted and n in unknown]
    # The controller counts from when it saw its taint (just after the served API applied it)
    # or from timeAdded rounded up to the next whole second (the API keeps whole seconds),
    # whichever is earlier; the served time is a lower bound of the first, so this errs
    # towards lateness.
    start = {n: min(tainted[n], math.floor(added[n] + start_wall) + 1 - start_wall)
             for n in added if n in tainted}
    pod_errors = [e["t"] - (start[e["node"]] + a.toleration) for e in deleted if e["node"] in start]
    deletion_bursts = bursts([(start[e["node"]] + a.toleration, e["t"]) for e in deleted
                              if e["node"] in start])
    hist = lambda name: {
        "count": int(final.get(f"{name}_count", 0)),
        "mean_ms": round(final.get(f"{name}_sum", 0) / final[f"{name}_count"] * 1e3, 3)
        if final.get(f"{name}_count") else None,
    }
    def buckets(name):
        """A histogram's cumulative buckets: the upper bound (s) under which p50/p99/max fall."""
        cum = sorted((float(k.split('le="')[1].rstrip('"}')), v)
                     for k, v in final.items()
                     if k.startswith(f"{name}_bucket{{") and 'le="+Inf"' not in k)
        n = final.get(f"{name}_count", 0)
        if not n:
            return {"n": 0}
        under = lambda q: next((le for le, c in cum if c >= q * n), None)
        return {"n": int(n), "mean": round(final[f"{name}_sum"] / n, 4),
                "p50_at_most": under(0.5), "p99_at_most": under(0.99), "max_at_most": under(1.0)}
    def cpu_between(t0, t1):
        inside = [x for x in samples if t0 <= x[0] <= t1]
        if len(inside) < 2:
            return None
        first, last = inside[0], inside[-1]
        span = last[0] - first[0]
        return {"controller": round((last[1] - first[1]) / span, 3),
                "serve": round((last[4] - first[4]) / span, 3)}

    report = {
        "nodes": a.nodes,
        "bin": a.bin,
        "serve_bin": a.serve_bin,
        "run_args": a.run_arg,
        "serve_args": a.serve_arg,
        "cores_busy_steady": cpu_between(synced_at + 5, a.fail_at - 2),
        "cores_busy_after_failure": cpu_between(a.fail_at, a.duration - 10),
        "pods": a.nodes * PODS_PER_NODE,
        "duration_s": a.duration,
        "plain_http_list": pages,
        "plain_http_list_s": round(plain_list_s, 2),
        "first_sync_s": round(sync_s, 2),
        "cpu_at_sync_s": round(cpu_sync, 2),
        "rss_at_sync_mib": round(rss_sync, 1),
        "steady": steady,
        "cpu_total_s": round(cpu_total, 2),
        "serve_cpu_total_s": round(serve_cpu_total, 2),
        "rss_end_mib": round(rss_end, 1),
        "peak_rss_mib": round(hwm, 1),
        "monitor_pass": hist("node_collector_update_all_nodes_health_duration_seconds"),
        "tainting_pass": hist("node_lifecycle_controller_tainting_pass_duration_seconds"),
        "silent_nodes": len(silent),
        "marked_unknown": sum(n in unknown for n in silent),
        "wrongly_marked_unknown": wrong,
        "tainted": sum(n in tainted for n in silent),
        "unknown_after_grace_expiry_s": dist(unknown_delay),
        "unknown_after_latest_expiry_of_its_pass_s": dist(beyond),
        "unknown_write_after_its_pass_s": buckets("node_lifecycle_controller_unknown_write_delay_seconds"),
        "taint_after_unknown_s": dist(taint_after_unknown),
        "pods_deleted": len(deleted),
        "pods_expected": len(added) * PODS_PER_NODE,
        "deletion_after_due_s": dist(pod_errors),
        "deletion_bursts": deletion_bursts,
        # Requests held back by --kube-api-qps/--kube-api-burst (reason="client") or by 429s
        # (reason="server"), and the seconds they waited, by the end of the run.
        "api_throttled": {k: v for k, v in final.items()
                          if k.startswith("node_lifecycle_controller_api_throttled")},
        "samples": samples,
    }
    if not a.no_decode:
        r = subprocess.run(
            ["cargo", "bench", "--quiet", "--locked", "--bench", "decode", "--", os.path.join(out, "pages")],
            cwd=ROOT, capture_output=True, text=True,
        )
        report["decode"] = r.stdout.strip().splitlines()
        if r.returncode:
            print(r.stderr, file=sys.stderr)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    shown = {k: v for k, v in report.items() if k not in ("samples", "plain_http_list")}
    print(json.dumps(shown, indent=1))


if __name__ == "__main__":
    main()

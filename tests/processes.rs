//! Process-level integration tests (issue 5, item 2): the built binary's `simulate --serve`
//! as a child process, with one or two `run` replicas of the same binary pointed at it through
//! the kubeconfig it writes. Leader failover on SIGTERM and on SIGKILL, and a restart of the only
//! replica in the middle of a NoExecute countdown. 409 Conflicts injected on the first
//! writes lose nothing; an API outage and a stalled Lease or Node watch, each longer than the
//! grace period, do nothing wrong and are recovered from. `run --initial-list=streaming` syncs
//! by streaming lists, and falls back to paged lists against a server that refuses them
//! (`--no-watch-list`).
//!
//! Assertions are on the timeline the serve process prints when the scenario is over (what the
//! served API applied) and on its exit report of streaming lists, never on logs. Leadership is
//! read from each replica's `/readyz` body. Real time is unavoidable: bounds are generous for a
//! loaded 2-core CI machine, and every wait polls with a deadline. Children are killed on every exit path (`Cluster`'s `Drop`); on a
//! failure their logs are kept in the scratch directory, whose path is printed.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_node-lifecycle-controller");

// ---------------------------------------------------------------------------------------------
// Timings and seed.
//
// Every time below is written at scale 1 and multiplied by `NLC_PROCESSES_TIME_SCALE` (default
// 1): the scenarios, the controller's periods and leases, the countdowns and the bounds derived
// from them, so that the same tests can be re-run slower or faster, e.g.
// `NLC_PROCESSES_TIME_SCALE=2.5 NLC_PROCESSES_SEED=7 cargo test --test processes`. The slack a
// bound allows for the machine itself (process start-up, HTTP, a loaded CI runner) never shrinks
// below its scale-1 value. `NLC_PROCESSES_SEED` (default 0) is `simulate --seed`: the simulated
// kubelets' phase offsets.

/// The scale and seed of this run, read once from the environment.
struct Timing {
    scale: f64,
    seed: u64,
}

fn timing() -> &'static Timing {
    static TIMING: std::sync::OnceLock<Timing> = std::sync::OnceLock::new();
    TIMING.get_or_init(|| {
        let scale = match std::env::var("NLC_PROCESSES_TIME_SCALE") {
            Err(_) => 1.0,
            Ok(v) => match v.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && (0.5..=20.0).contains(&s) => s,
                _ => panic!(
                    "NLC_PROCESSES_TIME_SCALE={v:?}: expected a number from 0.5 to 20 (1 = the \
                     timings as written)"
                ),
            },
        };
        let seed = match std::env::var("NLC_PROCESSES_SEED") {
            Err(_) => 0,
            Ok(v) => v.trim().parse().unwrap_or_else(|_| {
                panic!("NLC_PROCESSES_SEED={v:?}: expected a non-negative integer")
            }),
        };
        if (scale, seed) != (1.0, 0) {
            eprintln!("processes: time scale {scale}, seed {seed}");
        }
        Timing { scale, seed }
    })
}

/// `base` seconds (at scale 1) at this run's scale.
fn t(base: f64) -> f64 {
    base * timing().scale
}

/// Slack for the machine: `base` seconds at scale 1, scaled up with slower runs, never below.
fn slack(base: f64) -> f64 {
    base * timing().scale.max(1.0)
}

/// `base` seconds at this run's scale as a duration for a flag or a scenario (whole ms).
fn dur(base: f64) -> String {
    format!("{}ms", (t(base) * 1000.0).round() as u64)
}

/// `--node-monitor-grace-period` (and the startup grace period).
fn grace() -> f64 {
    t(4.0)
}

/// `--leader-elect-lease-duration`: whole seconds, as the Lease's `leaseDurationSeconds`
/// carries it (a fraction would be cut off there, and the standby goes by that field).
fn lease() -> f64 {
    t(3.0).round().max(1.0)
}

/// `--leader-elect-retry-period`.
fn retry() -> f64 {
    t(0.5)
}

/// The kubelets' Lease renewal interval and status update frequency.
fn heartbeat_interval() -> f64 {
    t(1.0)
}

/// Seconds between two NoExecute taints in one zone (`--node-eviction-rate` is its inverse).
fn eviction_interval() -> f64 {
    t(10.0)
}

/// A `tolerationSeconds` of `base` at scale 1: whole seconds, as the API has them.
fn toleration(base: f64) -> f64 {
    t(base).round().max(1.0)
}

/// The countdown under test in `SCENARIO`.
fn countdown_secs() -> f64 {
    toleration(10.0)
}

fn run_flags() -> Vec<String> {
    vec![
        format!("--node-monitor-period={}", dur(1.0)),
        format!("--node-monitor-grace-period={}", dur(4.0)),
        format!("--node-startup-grace-period={}", dur(4.0)),
        format!("--node-eviction-rate={}", 1.0 / eviction_interval()),
        format!("--leader-elect-lease-duration={}s", lease()),
        format!("--leader-elect-renew-deadline={}", dur(2.0)),
        format!("--leader-elect-retry-period={}", dur(0.5)),
        "--leader-elect-resource-namespace=kube-system".to_string(),
        // Many replicas on one host: no secure port (the default would be the same 10257).
        "--secure-address=".to_string(),
    ]
}

/// A scenario template at this run's timings and seed: `<x>` is `x` seconds (scaled), `<tol x>`
/// a `tolerationSeconds` of `x` (scaled, whole seconds).
fn scenario(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>').expect("a closing `>`");
        out.push_str(&rest[..open]);
        let inner = &rest[open + 1..close];
        match inner.strip_prefix("tol ") {
            Some(x) => out.push_str(&toleration(x.parse().expect("a number")).to_string()),
            None => out.push_str(&dur(inner.parse().expect("a number"))),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// n-1 stops heartbeating at 2s: Unknown and tainted about 4s later (grace 4s), and its pod is
/// due for deletion 10s (`countdown_secs`) after the taint. Nothing else happens.
const SCENARIO: &str = r#"
duration: <24>
kubelet:
  lease-renew-interval: <1>
  status-update-frequency: <1>
admission:
  default-toleration-seconds: null
nodes:
  - name: n-{0..2}
    zone: z
pods:
  - name: p-{0..2}
    node: n-{0..2}
    tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: <tol 10>}
events:
  - {at: <2>, action: stop-heartbeat, nodes: [n-1]}
"#;

const NO_EXECUTE: &str = "node.kubernetes.io/unreachable:NoExecute";

/// Four nodes; n-1 dies at 1s (tainted before the outage), the API is down from 8s to 13s
/// (longer than the grace period, so that every heartbeat looks old when it is back), and n-3
/// dies in the middle of it. p-1's countdown (5s) ends during the outage, q-1's (10s) after it.
const OUTAGE: &str = r#"
duration: <26>
kubelet:
  lease-renew-interval: <1>
  status-update-frequency: <1>
admission:
  default-toleration-seconds: null
nodes:
  - name: n-{0..3}
    zone: z
pods:
  - name: p-{0..3}
    node: n-{0..3}
    tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: <tol 5>}
  - name: q-1
    node: n-1
    tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: <tol 10>}
events:
  - {at: <1>, action: stop-heartbeat, nodes: [n-1]}
  - {at: <8>, action: api-outage, duration: <5>}
  - {at: <10>, action: stop-heartbeat, nodes: [n-3]}
"#;

/// Four nodes; n-1 dies at 1s, the controller's open watches of one resource (`{resource}`)
/// stall from 6s to 14s (longer than the grace period), and n-3 dies during the stall. The
/// nodes heartbeat through `{heartbeat}`: what the stalled watch would have shown.
const STALL: &str = r#"
duration: <24>
kubelet:
  lease-renew-interval: <1>
  status-update-frequency: <1>
admission:
  default-toleration-seconds: null
nodes:
  - name: n-{0..3}
    zone: z
    heartbeat: {heartbeat}
  # A kubelet with a Lease, as every current one has: a cluster where no node has a Lease is
  # taken for a wrong --node-lease-namespace, and nothing is marked Unknown there.
  - name: n-4
    zone: z
    heartbeat: lease
pods:
  - name: p-{0..3}
    node: n-{0..3}
    tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: <tol 5>}
events:
  - {at: <1>, action: stop-heartbeat, nodes: [n-1]}
  - {at: <6>, action: stall-watch, resource: {resource}, duration: <8>}
  - {at: <8>, action: stop-heartbeat, nodes: [n-3]}
"#;

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn leader_failover_on_sigterm_releases_the_lease_and_the_countdown_goes_on() {
    failover("sigterm", "TERM");
}

#[test]
fn leader_failover_on_sigkill_waits_for_the_lease_and_the_countdown_goes_on() {
    failover("sigkill", "KILL");
}

/// Two replicas; the leader gets `signal` while p-1's countdown runs; the other one takes over
/// and deletes p-1 on time, exactly once.
fn failover(name: &str, signal: &str) {
    require_kill();
    let mut cluster = Cluster::start(name, &scenario(SCENARIO), &[]);
    let a = cluster.add_replica(&format!("{name}-a"));
    let b = cluster.add_replica(&format!("{name}-b"));
    let leader = cluster.wait_for_one_leader(&[a, b]);
    let standby = if leader == a { b } else { a };

    cluster.wait_for_taint("n-1", NO_EXECUTE);
    let signalled = cluster.signal(leader, signal);
    let gap = cluster.wait_for_leader(standby, signalled);
    let gap_s = gap.as_secs_f64();
    println!(
        "{name}: leaderless gap {gap_s:.3}s ({} -> {})",
        cluster.replicas[leader].identity, cluster.replicas[standby].identity
    );
    let (lease, retry) = (lease(), retry());
    if signal == "TERM" {
        // Released on shutdown: no waiting for the lease to expire.
        assert!(
            gap_s < lease,
            "{name}: the standby led {gap_s:.3}s after SIGTERM, not within the lease duration \
             ({lease}s): was the lease released?"
        );
        let status = cluster.wait_for_exit(leader, Duration::from_secs_f64(slack(10.0)));
        assert!(
            status.success(),
            "{name}: the leader exits cleanly on SIGTERM, got {status}"
        );
    } else {
        assert!(
            gap_s < lease + retry + slack(1.5),
            "{name}: the standby led {gap_s:.3}s after SIGKILL, expected within the lease \
             duration ({lease}s) + a retry period ({retry}s) + {}s",
            slack(1.5)
        );
        // Nothing released the lease: the standby waited for it to expire (renewed every
        // retry period, so at least the lease duration less one retry period; 1.5s at scale 1
        // less leaves room for any clock granularity).
        let earliest = lease - retry - 1.5 * timing().scale.min(1.0);
        assert!(
            gap_s > earliest,
            "{name}: the standby led {gap_s:.3}s after SIGKILL, before the lease could expire \
             (expected after {earliest:.3}s)"
        );
    }

    let tl = cluster.finish();
    let dump = dump(&tl);
    let (taint, deleted) = countdown(&tl, &dump);
    println!("{name}: tainted at {taint:.3}s, p-1 deleted at {deleted:.3}s");
    each_write_once(&tl, &dump);
}

#[test]
fn a_restart_of_the_only_replica_mid_countdown_keeps_the_countdown() {
    require_kill();
    let mut cluster = Cluster::start("restart", &scenario(SCENARIO), &[]);
    let first = cluster.add_replica("restart-first");
    cluster.wait_for_one_leader(&[first]);
    let tainted = cluster.wait_for_taint("n-1", NO_EXECUTE);
    // Well into the countdown, so that counting again from the restart would be visibly late.
    let mid = tainted + Duration::from_secs_f64(t(3.0));
    while Instant::now() < mid {
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = cluster.signal(first, "KILL");
    let killed_at = killed.duration_since(cluster.started).as_secs_f64();
    let second = cluster.spawn_replica("restart-second");
    let gap = cluster.wait_for_leader(second, killed);
    println!(
        "restart: killed at ~{killed_at:.3}s, the new replica led {:.3}s later",
        gap.as_secs_f64()
    );

    let tl = cluster.finish();
    let dump = dump(&tl);
    let (taint, deleted) = countdown(&tl, &dump);
    println!("restart: tainted at {taint:.3}s, p-1 deleted at {deleted:.3}s");
    // `killed_at` is measured from the serve process's spawn, a little before its t = 0, so it
    // is if anything late: a countdown started again at the restart would end after this.
    assert!(
        deleted < killed_at + countdown_secs(),
        "p-1 deleted at {deleted}s: the countdown started again at the restart (~{killed_at:.3}s)\n{dump}"
    );
    each_write_once(&tl, &dump);
    // No flap: the taint was neither removed nor added again across the restart.
    let removed: Vec<&Value> = tl.iter().filter(|e| e["type"] == "TaintRemoved").collect();
    assert!(removed.is_empty(), "taints removed: {removed:?}\n{dump}");
}

/// The API server answers 503 and cuts every watch for longer than the grace period. Nothing
/// wrong happens (the staleness guard holds back: no healthy node marked Unknown or tainted on
/// the heartbeats the controller could not see, no healthy pod touched), and everything due
/// happens once the API is back: the pod whose countdown ended during the outage is deleted
/// promptly, the one whose countdown ends after it on time, and the node that died during the
/// outage is marked and tainted a grace period after the controller could see again.
#[test]
fn an_api_outage_longer_than_the_grace_period_marks_no_healthy_node_and_recovers() {
    let mut cluster = Cluster::start("outage", &scenario(OUTAGE), &[]);
    let a = cluster.add_replica("outage-a");
    cluster.wait_for_one_leader(&[a]);
    let tl = cluster.finish();
    let dump = dump(&tl);

    let dead = ["n-1", "n-3"];
    only_about(&tl, &dump, &dead, &["p-1", "q-1", "p-3"]);
    let (unknown1, taint1) = lost_once(&tl, &dump, "n-1");
    assert!(
        unknown1 >= t(1.0) - heartbeat_interval() + grace(),
        "n-1 marked Unknown at {unknown1}s, before a grace period of silence\n{dump}"
    );
    // The API is back at `outage_end`; the controller needs to lead again (its lease lapsed) and
    // to re-read: a few seconds at most.
    let (outage_start, outage_end) = (t(8.0), t(13.0));
    for (pod, tolerated) in [("p-1", toleration(5.0)), ("q-1", toleration(10.0))] {
        let mut due = taint1 + tolerated;
        if (outage_start..outage_end).contains(&due) {
            due = outage_end;
        }
        deleted_once_near(&tl, &dump, pod, due, slack(3.0));
    }

    // n-3 died at 10s, during the outage. The controller saw its last renewal only when the
    // API was back, so it is marked a grace period after that, not before, and not much later.
    let (unknown3, taint3) = lost_once(&tl, &dump, "n-3");
    assert!(
        unknown3 >= outage_end + grace() - heartbeat_interval(),
        "n-3 marked Unknown at {unknown3}s: before a grace period after the API came back \
         ({outage_end}s)\n{dump}"
    );
    assert!(
        unknown3 <= outage_end + grace() + slack(5.0),
        "n-3 marked Unknown only at {unknown3}s, the API was back at {outage_end}s\n{dump}"
    );
    deleted_once_near(&tl, &dump, "p-3", taint3 + toleration(5.0), slack(2.0));
    println!(
        "outage: n-1 Unknown {unknown1:.3}s tainted {taint1:.3}s; n-3 Unknown {unknown3:.3}s \
         tainted {taint3:.3}s"
    );
    each_write_once(&tl, &dump);
}

/// The Lease watch goes silent (no events, no bookmarks, no error) for twice the grace period
/// while the kubelets keep renewing: no healthy node is marked Unknown, and a node that really
/// dies during the stall is still marked, tainted and emptied on time.
#[test]
fn a_stalled_lease_watch_marks_no_healthy_node_and_recovers() {
    stalled_watch("leases", "lease");
}

/// The same with the Node watch, the nodes heartbeating through their status (no Lease), so
/// that the stalled watch hides every heartbeat.
#[test]
fn a_stalled_node_watch_marks_no_healthy_node_and_recovers() {
    stalled_watch("nodes", "status");
}

fn stalled_watch(resource: &str, heartbeat: &str) {
    let scenario = scenario(STALL)
        .replace("{resource}", resource)
        .replace("{heartbeat}", heartbeat);
    let name = format!("stall-{resource}");
    let mut cluster = Cluster::start(&name, &scenario, &[]);
    let a = cluster.add_replica(&name);
    cluster.wait_for_one_leader(&[a]);
    let tl = cluster.finish();
    let dump = dump(&tl);

    only_about(&tl, &dump, &["n-1", "n-3"], &["p-1", "p-3"]);
    let (unknown1, taint1) = lost_once(&tl, &dump, "n-1");
    deleted_once_near(&tl, &dump, "p-1", taint1 + toleration(5.0), slack(2.0));
    // n-3's last heartbeat was at 8s at the latest: marked a grace period later, not before,
    // and without waiting for the stall to end (the guard re-reads and restarts the watch).
    let (died, stall_start, grace) = (t(8.0), t(6.0), grace());
    let (unknown3, taint3) = lost_once(&tl, &dump, "n-3");
    assert!(
        unknown3 >= died - heartbeat_interval() + grace,
        "{resource}: n-3 marked Unknown at {unknown3}s, before a grace period of silence\n{dump}"
    );
    assert!(
        unknown3 <= died + grace + grace / 2.0 + slack(3.0),
        "{resource}: n-3 marked Unknown only at {unknown3}s (died at {died}s, stall from \
         {stall_start}s)\n{dump}"
    );
    // The zone's rate limiter spaces the two NoExecute taints; with the Node watch stalled,
    // the controller also needs to see its own Unknown write (after re-reading) first.
    let earliest = unknown3.max(taint1 + eviction_interval());
    assert!(
        taint3 <= earliest + grace / 2.0 + slack(2.0),
        "{resource}: n-3 tainted only at {taint3}s (Unknown at {unknown3}s, n-1 tainted at \
         {taint1}s)\n{dump}"
    );
    deleted_once_near(&tl, &dump, "p-3", taint3 + toleration(5.0), slack(2.0));
    // The staleness guard is what saw through the stall: it restarted the stalled watch.
    let (status, metrics) =
        http_get(cluster.replicas[a].admin, "/metrics").expect("the replica's /metrics answers");
    assert_eq!(status, 200, "{metrics}");
    let restarts = metric(
        &metrics,
        &format!("node_lifecycle_controller_watch_restarts_total{{resource=\"{resource}\"}}"),
    );
    assert!(
        restarts >= 1.0,
        "{resource}: the stalled watch was never restarted\n{metrics}"
    );
    // What a kube-controller-manager operator graphs is there, and moved: the per-node health
    // histogram once per node per pass (5 nodes), the writer's queues, leader election.
    let passes = metric(
        &metrics,
        "node_collector_update_all_nodes_health_duration_seconds_count",
    );
    let per_node = metric(
        &metrics,
        "node_collector_update_node_health_duration_seconds_count",
    );
    assert!(
        passes >= 3.0 && per_node >= 5.0 * (passes - 1.0) && per_node <= 5.0 * (passes + 1.0),
        "{passes} passes, {per_node} per-node observations\n{metrics}"
    );
    let marks = metric(&metrics, "workqueue_adds_total{name=\"writer_nodes\"}");
    let taints = metric(&metrics, "workqueue_adds_total{name=\"writer_taints\"}");
    assert!(
        marks >= 2.0 && taints >= 2.0,
        "two marks and two taints at least\n{metrics}"
    );
    for lane in ["writer_nodes", "writer_taints"] {
        assert_eq!(
            metric(&metrics, &format!("workqueue_depth{{name=\"{lane}\"}}")),
            0.0,
            "{metrics}"
        );
    }
    assert_eq!(
        metric(
            &metrics,
            "leader_election_master_status{name=\"node-lifecycle-controller\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "process_resident_memory_bytes") > 0.0,
        "{metrics}"
    );
    println!(
        "stall {resource}: n-1 Unknown {unknown1:.3}s tainted {taint1:.3}s; n-3 Unknown \
         {unknown3:.3}s tainted {taint3:.3}s"
    );
    each_write_once(&tl, &dump);
}

/// With `--inject-conflicts`, the served API refuses the first write of each kind to each Node
/// and Pod with 409 Conflict. Nothing is lost: every write lands exactly once, on time, and
/// the controller's own metrics show it retried each kind of write.
#[test]
fn conflicts_on_first_writes_lose_nothing() {
    let mut cluster = Cluster::start("conflicts", &scenario(SCENARIO), &["--inject-conflicts"]);
    let a = cluster.add_replica("conflicts-a");
    cluster.wait_for_one_leader(&[a]);
    let tl = cluster.finish();
    let dump = dump(&tl);
    let (taint, deleted) = countdown(&tl, &dump);
    println!("conflicts: tainted at {taint:.3}s, p-1 deleted at {deleted:.3}s");
    each_write_once(&tl, &dump);
    let unknown = times(&tl, |e| e["type"] == "NodeConditionsUnknown");
    assert_eq!(unknown.len(), 1, "n-1 marked Unknown once:\n{dump}");

    // The conflicts were served, and retried: the replica outlives the served cluster, so its
    // counters can be read now.
    let (status, metrics) =
        http_get(cluster.replicas[a].admin, "/metrics").expect("the replica's /metrics answers");
    assert_eq!(status, 200, "{metrics}");
    for kind in ["node_status", "node_taints", "pod_status", "pod_delete"] {
        let retries = metric(
            &metrics,
            &format!("node_lifecycle_controller_write_retries_total{{kind=\"{kind}\"}}"),
        );
        assert!(
            retries >= 1.0,
            "no {kind} write was retried: were the conflicts injected?\n{metrics}"
        );
    }
    let conflicts = metric(
        &metrics,
        "node_lifecycle_controller_writes_total{kind=\"pod_delete\",outcome=\"conflict\"}",
    );
    assert!(
        conflicts >= 1.0,
        "the deletion never got a 409 Conflict\n{metrics}"
    );
}

/// `run --initial-list=streaming` against a server that serves streaming lists: the three
/// watches sync by streaming list, and the controller does its job as with paged lists (n-1
/// marked, tainted, p-1 deleted on time, each write once).
#[test]
fn streaming_initial_lists_sync_and_the_countdown_runs() {
    let mut cluster = Cluster::start("streaming", &scenario(SCENARIO), &[])
        .with_run_flags(&["--initial-list=streaming"]);
    let a = cluster.add_replica("streaming-a");
    cluster.wait_for_one_leader(&[a]);
    let tl = cluster.finish();
    let dump = dump(&tl);
    let (taint, deleted) = countdown(&tl, &dump);
    println!("streaming: tainted at {taint:.3}s, p-1 deleted at {deleted:.3}s");
    each_write_once(&tl, &dump);
    let (served, refused) = cluster.served_streaming_lists();
    assert!(
        served >= 3 && refused == 0,
        "expected the Node, Lease and Pod watches to start by streaming lists: served \
         {served}, refused {refused}"
    );
}

/// The same against a server that refuses streaming lists (`--no-watch-list`, as Kubernetes
/// 1.33 by default): each watch is refused once, falls back to paged lists for good, and the
/// controller syncs and does its job all the same.
#[test]
fn streaming_initial_lists_refused_by_the_server_fall_back_to_paged_lists() {
    let mut cluster = Cluster::start("no-watch-list", &scenario(SCENARIO), &["--no-watch-list"])
        .with_run_flags(&["--initial-list=streaming"]);
    let a = cluster.add_replica("no-watch-list-a");
    cluster.wait_for_one_leader(&[a]);
    let tl = cluster.finish();
    let dump = dump(&tl);
    let (taint, deleted) = countdown(&tl, &dump);
    println!("no-watch-list: tainted at {taint:.3}s, p-1 deleted at {deleted:.3}s");
    each_write_once(&tl, &dump);
    assert_eq!(
        cluster.served_streaming_lists(),
        (0, 3),
        "expected one refused streaming list per watched resource, then paged lists"
    );
}

// ---------------------------------------------------------------------------------------------
// Assertions on the timeline.

/// The value of the sample `series` (`name{labels}` as exposed) in a Prometheus text page, 0
/// when absent.
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .filter_map(|l| l.strip_prefix(series))
        .find_map(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Every entry is about one of `nodes` or `pods` (or is an action, an Event, the summary): no
/// healthy node or pod was touched. The summary agrees.
fn only_about(tl: &[Value], dump: &str, nodes: &[&str], pods: &[&str]) {
    for e in tl {
        let node = e["node"].as_str().unwrap_or("");
        assert!(
            node.is_empty() || nodes.contains(&node),
            "an entry about a healthy node: {e}\n{dump}"
        );
        let pod = e["pod"].as_str().unwrap_or("");
        assert!(
            pod.is_empty() || pods.iter().any(|p| pod == format!("default/{p}")),
            "an entry about a pod of a healthy node: {e}\n{dump}"
        );
        if e["type"] == "Event" && e["reason"] != "RegisteredNode" {
            let object = e["object"].as_str().unwrap_or("");
            let name = object.rsplit('/').next().unwrap_or("");
            assert!(
                nodes.contains(&name) || pods.contains(&name),
                "an Event about a healthy object: {e}\n{dump}"
            );
        }
    }
    let summary = tl.last().expect("a timeline");
    assert_eq!(summary["type"], "Summary", "{dump}");
    assert_eq!(summary["nodesTainted"], nodes.len(), "{dump}");
    assert_eq!(summary["podsDeleted"], pods.len(), "{dump}");
}

/// `node` marked Unknown once and tainted `unreachable:NoExecute` once, never untainted;
/// returns (Unknown, taint) times.
fn lost_once(tl: &[Value], dump: &str, node: &str) -> (f64, f64) {
    let unknown = times(tl, |e| {
        e["type"] == "NodeConditionsUnknown" && e["node"] == node
    });
    assert_eq!(unknown.len(), 1, "{node} marked Unknown once:\n{dump}");
    let tainted = times(tl, |e| {
        e["type"] == "TaintAdded" && e["node"] == node && e["taint"] == NO_EXECUTE
    });
    assert_eq!(tainted.len(), 1, "{node} tainted NoExecute once:\n{dump}");
    let removed = times(tl, |e| e["type"] == "TaintRemoved" && e["node"] == node);
    assert!(removed.is_empty(), "{node} untainted:\n{dump}");
    (unknown[0], tainted[0])
}

/// `pod` deleted exactly once, within `slack` seconds after `due` (and not more than a second
/// before: API timestamps are whole seconds).
fn deleted_once_near(tl: &[Value], dump: &str, pod: &str, due: f64, slack: f64) -> f64 {
    let pod_key = format!("default/{pod}");
    let deleted = times(tl, |e| {
        e["type"] == "PodDeleted" && e["pod"] == pod_key.as_str()
    });
    assert_eq!(deleted.len(), 1, "{pod} deleted once:\n{dump}");
    let at = deleted[0];
    assert!(
        at >= due - 1.0 && at <= due + slack,
        "{pod} deleted at {at}s, expected at {due:.3}s (-1s/+{slack}s)\n{dump}"
    );
    at
}

fn dump(tl: &[Value]) -> String {
    tl.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn times(tl: &[Value], pred: impl Fn(&Value) -> bool) -> Vec<f64> {
    tl.iter()
        .filter(|e| pred(e))
        .map(|e| e["t"].as_f64().unwrap_or(f64::NAN))
        .collect()
}

/// n-1 tainted NoExecute once, p-1 deleted once, `countdown_secs` after it (-1s/+2s), and no
/// other pod deleted. Returns (taint, deletion) times.
fn countdown(tl: &[Value], dump: &str) -> (f64, f64) {
    let tainted = times(tl, |e| {
        e["type"] == "TaintAdded" && e["node"] == "n-1" && e["taint"] == NO_EXECUTE
    });
    assert_eq!(tainted.len(), 1, "n-1 tainted NoExecute once:\n{dump}");
    let taint = tainted[0];
    let deleted = times(tl, |e| {
        e["type"] == "PodDeleted" && e["pod"] == "default/p-1"
    });
    assert_eq!(deleted.len(), 1, "p-1 deleted once:\n{dump}");
    let deleted = deleted[0];
    // Never early (a second of leeway: API timestamps are whole seconds), and on time.
    let (tolerated, slack) = (countdown_secs(), slack(2.0));
    assert!(
        deleted >= taint + tolerated - 1.0 && deleted <= taint + tolerated + slack,
        "p-1 deleted at {deleted}s, expected {tolerated}s after the taint at {taint}s \
         (-1s/+{slack}s)\n{dump}"
    );
    let all_deleted = times(tl, |e| e["type"] == "PodDeleted");
    assert_eq!(all_deleted.len(), 1, "only p-1 deleted:\n{dump}");
    for e in tl {
        let node = e["node"].as_str().unwrap_or("");
        assert!(
            node.is_empty() || node == "n-1",
            "unexpected entry for a healthy node: {e}\n{dump}"
        );
    }
    let summary = tl.last().expect("a timeline");
    assert_eq!(summary["type"], "Summary", "{dump}");
    assert_eq!(summary["nodesTainted"], 1, "{dump}");
    (taint, deleted)
}

/// Every write the controllers made to n-1 and p-1 appears once, whoever made it: conditions,
/// taints, pod conditions, the deletion, and the events about them.
fn each_write_once(tl: &[Value], dump: &str) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in tl {
        let type_ = e["type"].as_str().unwrap_or("");
        let key = match type_ {
            "Action" | "Summary" | "ZoneState" => continue,
            // A new leader registers the nodes it finds again, as kube-controller-manager does.
            "Event" if e["reason"] == "RegisteredNode" => continue,
            _ => format!(
                "{type_} {} {} {} {} {}",
                e["node"], e["pod"], e["taint"], e["object"], e["reason"]
            ),
        };
        *counts.entry(key).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "writes repeated: {repeated:?}\n{dump}");
    for wanted in [
        "NodeConditionsUnknown",
        "PodNotReady",
        "PodDisruptionTarget",
        "Event",
    ] {
        assert!(
            counts.keys().any(|k| k.starts_with(wanted)),
            "no {wanted} entry:\n{dump}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The processes.

/// The served cluster and the replicas pointed at it. Dropping it kills every child, whatever
/// the exit path; the scratch directory (scenario, kubeconfig, logs) is removed unless the test
/// is failing.
struct Cluster {
    dir: PathBuf,
    started: Instant,
    /// The scenario's duration, in seconds.
    duration: f64,
    serve: Child,
    serve_addr: SocketAddr,
    kubeconfig: PathBuf,
    timeline: Option<JoinHandle<String>>,
    /// The serve process's stderr.
    serve_log: PathBuf,
    /// Flags given to every replica after [`run_flags`].
    run_flags: Vec<String>,
    replicas: Vec<Replica>,
}

struct Replica {
    identity: String,
    admin: SocketAddr,
    child: Child,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for r in &mut self.replicas {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        let _ = self.serve.kill();
        let _ = self.serve.wait();
        if std::thread::panicking() {
            eprintln!("logs and scenario kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

fn log_file(path: PathBuf) -> File {
    File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
}

/// Polls `f` every `every` until it returns `Some`, or panics with `what` after `limit`.
fn poll<T>(limit: Duration, every: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(every);
    }
}

fn require_kill() {
    let me = std::process::id().to_string();
    match Command::new("kill").args(["-0", &me]).status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`kill -0 {me}` failed ({s}): these tests signal processes with `kill`"),
        Err(e) => panic!(
            "cannot run `kill` ({e}): these tests need the `kill` command on PATH to send \
             SIGTERM/SIGKILL to the controller processes"
        ),
    }
}

impl Cluster {
    /// Starts `simulate --serve` with `scenario` (its `duration:` in whole ms) and
    /// `serve_flags` on a free port and waits until its kubeconfig is written and the port
    /// accepts connections (another port if that one was taken meanwhile).
    fn start(name: &str, scenario: &str, serve_flags: &[&str]) -> Cluster {
        let duration: f64 = scenario
            .lines()
            .find_map(|l| l.trim().strip_prefix("duration:"))
            .and_then(|d| d.trim().strip_suffix("ms")?.parse::<f64>().ok())
            .map(|ms| ms / 1000.0)
            .expect("the scenario has `duration: Nms`");
        let text = scenario;
        let dir = std::env::temp_dir().join(format!(
            "nlc-processes-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let scenario = dir.join("scenario.yaml");
        std::fs::write(&scenario, text).expect("scenario written");
        let kubeconfig = dir.join("kubeconfig");
        for attempt in 0..3 {
            let addr = free_port();
            let serve_log = dir.join(format!("serve-{attempt}.log"));
            let started = Instant::now();
            let mut serve = Command::new(BIN)
                .arg("simulate")
                .arg("--serve")
                .arg(addr.to_string())
                .arg("--kubeconfig-out")
                .arg(&kubeconfig)
                .args(["--output", "jsonl"])
                .arg(format!("--seed={}", timing().seed))
                .args(serve_flags)
                .arg(&scenario)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log_file(serve_log.clone()))
                .spawn()
                .expect("spawn simulate --serve");
            // Read the timeline as it comes, so a full pipe never blocks the server.
            let mut stdout = serve.stdout.take().expect("piped stdout");
            let timeline = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stdout.read_to_string(&mut text);
                text
            });
            let deadline = Instant::now() + Duration::from_secs(10);
            let up = loop {
                if let Ok(Some(status)) = serve.try_wait() {
                    break Err(status);
                }
                if kubeconfig.exists()
                    && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
                {
                    break Ok(());
                }
                if Instant::now() > deadline {
                    let _ = serve.kill();
                    let _ = serve.wait();
                    panic!(
                        "simulate --serve not up within 10s (logs in {})",
                        dir.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            match up {
                Ok(()) => {
                    return Cluster {
                        dir,
                        started,
                        duration,
                        serve,
                        serve_addr: addr,
                        kubeconfig,
                        timeline: Some(timeline),
                        serve_log,
                        run_flags: Vec::new(),
                        replicas: Vec::new(),
                    };
                }
                // Most likely the port was taken between the probe and the bind: try another.
                Err(status) => eprintln!("simulate --serve on {addr} exited early ({status})"),
            }
        }
        panic!(
            "simulate --serve did not start in 3 attempts (logs in {})",
            dir.display()
        );
    }

    /// Gives `flags` to every replica started from now on.
    fn with_run_flags(mut self, flags: &[&str]) -> Self {
        self.run_flags = flags.iter().map(|f| f.to_string()).collect();
        self
    }

    /// After [`Cluster::finish`]: how many streaming lists the serve process served and refused
    /// (`--no-watch-list`), from the report it prints to stderr at exit; (0, 0) without one.
    fn served_streaming_lists(&self) -> (u64, u64) {
        let log = std::fs::read_to_string(&self.serve_log).unwrap_or_default();
        log.lines()
            .find_map(|l| {
                let rest = l.strip_prefix("simulate --serve: served ")?;
                let (served, rest) = rest.split_once(" streaming list(s), refused ")?;
                let refused = rest.split_whitespace().next()?;
                Some((served.parse().ok()?, refused.parse().ok()?))
            })
            .unwrap_or((0, 0))
    }

    /// Starts a `run` replica and returns its index at once (no wait for it to be ready).
    fn spawn_replica(&mut self, identity: &str) -> usize {
        let admin = free_port();
        let attempt = self.replicas.len();
        let child = Command::new(BIN)
            .arg("run")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--admin-address")
            .arg(admin.to_string())
            .arg("--identity")
            .arg(identity)
            .args(run_flags())
            .args(&self.run_flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(
                self.dir.join(format!("run-{identity}-{attempt}.log")),
            ))
            .spawn()
            .expect("spawn run");
        self.replicas.push(Replica {
            identity: identity.to_string(),
            admin,
            child,
        });
        self.replicas.len() - 1
    }

    /// Starts a `run` replica and waits until its caches are synced (`/readyz` 200); another
    /// admin port if it exited early (the port taken meanwhile).
    fn add_replica(&mut self, identity: &str) -> usize {
        for _ in 0..3 {
            let i = self.spawn_replica(identity);
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(status)) = self.replicas[i].child.try_wait() {
                    eprintln!("replica {identity} exited early ({status})");
                    break;
                }
                if let Some((200, _)) = http_get(self.replicas[i].admin, "/readyz") {
                    return i;
                }
                assert!(
                    Instant::now() < deadline,
                    "replica {identity} not ready within 15s (logs in {})",
                    self.dir.display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("replica {identity} did not start in 3 attempts");
    }

    fn is_leader(&self, i: usize) -> bool {
        http_get(self.replicas[i].admin, "/readyz")
            .is_some_and(|(_, body)| body.contains("role: leader"))
    }

    /// Waits until exactly one of `replicas` says it leads; returns it.
    fn wait_for_one_leader(&self, replicas: &[usize]) -> usize {
        poll(
            Duration::from_secs_f64(slack(15.0)),
            Duration::from_millis(50),
            "one replica leads",
            || {
                let leaders: Vec<usize> = replicas
                    .iter()
                    .copied()
                    .filter(|&i| self.is_leader(i))
                    .collect();
                (leaders.len() == 1).then(|| leaders[0])
            },
        )
    }

    /// Waits until replica `i` says it leads; returns the time since `since`.
    fn wait_for_leader(&self, i: usize, since: Instant) -> Duration {
        let what = format!("{} leads", self.replicas[i].identity);
        poll(
            Duration::from_secs_f64(slack(15.0)),
            Duration::from_millis(20),
            &what,
            || self.is_leader(i).then(|| since.elapsed()),
        )
    }

    /// Waits until the served `node` carries `taint` (`key:Effect`); returns when seen.
    fn wait_for_taint(&self, node: &str, taint: &str) -> Instant {
        let path = format!("/api/v1/nodes/{node}");
        let what = format!("{node} tainted {taint}");
        poll(
            Duration::from_secs_f64(slack(20.0)),
            Duration::from_millis(50),
            &what,
            || {
                let (status, body) = http_get(self.serve_addr, &path)?;
                let node: Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
                let has = node["spec"]["taints"].as_array()?.iter().any(|t| {
                    format!(
                        "{}:{}",
                        t["key"].as_str().unwrap_or(""),
                        t["effect"].as_str().unwrap_or("")
                    ) == taint
                });
                has.then(Instant::now)
            },
        )
    }

    /// Sends SIG`signal` to replica `i` with `kill`; returns when it was sent.
    fn signal(&self, i: usize, signal: &str) -> Instant {
        let pid = self.replicas[i].child.id().to_string();
        let sent = Instant::now();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(&pid)
            .status()
            .unwrap_or_else(|e| panic!("cannot run `kill -{signal} {pid}`: {e}"));
        assert!(status.success(), "`kill -{signal} {pid}` failed: {status}");
        sent
    }

    fn wait_for_exit(&mut self, i: usize, limit: Duration) -> ExitStatus {
        let r = &mut self.replicas[i];
        let what = format!("{} exits", r.identity);
        poll(limit, Duration::from_millis(20), &what, || {
            r.child.try_wait().ok().flatten()
        })
    }

    /// Waits for the scenario to end and returns the served timeline, one JSON value per line.
    fn finish(&mut self) -> Vec<Value> {
        let limit = Duration::from_secs_f64(self.duration + slack(20.0));
        let remaining = limit.saturating_sub(self.started.elapsed());
        let status = poll(
            remaining,
            Duration::from_millis(50),
            "the serve process ends",
            || self.serve.try_wait().ok().flatten(),
        );
        let text = self
            .timeline
            .take()
            .expect("timeline reader")
            .join()
            .expect("timeline reader thread");
        assert!(
            status.success(),
            "simulate --serve failed: {status}\n{text}"
        );
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// A plain HTTP/1.1 GET on a fresh connection: `(status, body)`, or `None` when the connection
/// fails or the answer is not HTTP.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

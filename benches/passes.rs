//! Cost of the decision core's passes at scale: `cargo bench --bench passes`.
//!
//! Builds a view of N nodes in 10 zones with 30 pods each (all bound, default tolerations),
//! then times the monitor pass, the tainting pass and the taint manager's reconcile of one
//! node, with 5% of the nodes silent. Plain `std::time::Instant` timing, median of repeated
//! runs; the numbers go into BENCHMARKS.md.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Node, NodeCondition, NodeStatus, Pod, PodCondition, PodSpec, PodStatus, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use node_lifecycle_controller::cache::PodCache;
use node_lifecycle_controller::controller::questions::{Ask, Memory, answer};
use node_lifecycle_controller::logic::eviction::TaintManager;
use node_lifecycle_controller::logic::explain::Role;
use node_lifecycle_controller::logic::freshness::Guard;
use node_lifecycle_controller::logic::monitor::Monitor;
use node_lifecycle_controller::logic::pod::PodFacts;
use node_lifecycle_controller::logic::time;
use node_lifecycle_controller::logic::view::ClusterView;
use node_lifecycle_controller::settings::Settings;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn at(secs: i64) -> Timestamp {
    time::add_secs("2025-01-01T00:00:00Z".parse().unwrap(), secs)
}

fn node(name: &str, zone: usize, heartbeat: i64) -> Node {
    let mut n = Node::default();
    n.metadata.name = Some(name.into());
    n.metadata.uid = Some(format!("uid-{name}"));
    n.metadata.creation_timestamp = Some(Time(at(-3600)));
    n.metadata.labels = Some(BTreeMap::from([(
        "topology.kubernetes.io/zone".to_string(),
        format!("zone-{zone}"),
    )]));
    n.status = Some(NodeStatus {
        conditions: Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_heartbeat_time: Some(Time(at(heartbeat))),
            ..Default::default()
        }]),
        ..Default::default()
    });
    n
}

fn pod(name: &str, node: &str) -> Pod {
    let toleration = |key: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        toleration_seconds: Some(300),
        ..Default::default()
    };
    let mut p = Pod::default();
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.metadata.creation_timestamp = Some(Time(at(-600)));
    p.spec = Some(PodSpec {
        node_name: Some(node.into()),
        tolerations: Some(vec![
            toleration("node.kubernetes.io/not-ready"),
            toleration("node.kubernetes.io/unreachable"),
        ]),
        ..Default::default()
    });
    p.status = Some(PodStatus {
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    p
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn bench(nodes: usize) {
    let settings = Settings::default();
    let mut view = ClusterView::<PodCache>::default();
    let mut monitor = Monitor::new();
    let mut tm = TaintManager::new();
    for i in 0..nodes {
        let name = format!("n-{i}");
        let n = node(&name, i % 10, 0);
        monitor.observe_node(&n, at(0), &settings);
        tm.node_seen(None, &n, at(0), true);
        view.nodes.insert(name.clone(), n);
        for j in 0..30 {
            let p = pod(&format!("p-{i}-{j}"), &name);
            tm.pod_seen(None, &PodFacts::from(&p), at(0), true);
            view.pods.put(p);
        }
    }
    monitor.monitor_pass(&view, at(0), &settings, true);
    // 95% keep posting; 5% (every 20th node) stay silent from 0s.
    for i in (0..nodes).filter(|i| i % 20 != 0) {
        let n = node(&format!("n-{i}"), i % 10, 40);
        monitor.observe_node(&n, at(40), &settings);
        view.nodes.insert(format!("n-{i}"), n);
    }

    let mut passes = Vec::new();
    let first = Instant::now();
    let report = monitor.monitor_pass(&view, at(55), &settings, true);
    let flip = first.elapsed();
    for k in 0..20 {
        // The healthy 95% keep heartbeating (not timed), so every pass sees the steady state:
        // 5% Unknown and queued, the rest Ready.
        let now = 60 + 5 * k;
        for i in (0..nodes).filter(|i| i % 20 != 0) {
            let n = node(&format!("n-{i}"), i % 10, now - 1);
            monitor.observe_node(&n, at(now - 1), &settings);
            view.nodes.insert(format!("n-{i}"), n);
        }
        let t = Instant::now();
        monitor.monitor_pass(&view, at(now), &settings, true);
        passes.push(t.elapsed());
    }
    let mut taint_passes = Vec::new();
    for k in 0..50 {
        let t = Instant::now();
        // As a dry run: nothing lands in this view, and the nodes must not wait for their
        // Unknown marks to show for the pass to do its work.
        monitor.tainting_pass(
            &view,
            at(200) + jiff::SignedDuration::from_millis(100 * k),
            true,
            true,
        );
        taint_passes.push(t.elapsed());
    }
    let mut reconciles = Vec::new();
    for _ in 0..50 {
        // Timed with reading the pods from the cache, as the controller does.
        let t = Instant::now();
        let pods = view.pods_on("n-0");
        tm.reconcile("n-0", view.nodes.get("n-0"), &pods, at(300));
        reconciles.push(t.elapsed());
    }
    // `explain pod` and `status` as the control loop answers them (issue 27: one pod in under
    // 100 ms at 10 000 nodes), with the JSON the admin connection writes.
    let guard = Guard::default();
    let memory = Memory {
        view: &view,
        monitor: &monitor,
        taint_manager: &tm,
        settings: &settings,
        guard: &guard,
        trusted: true,
        role: Role::Leader,
    };
    let mut explains = Vec::new();
    let mut statuses = Vec::new();
    for k in 0..20 {
        let ask = Ask::Pod {
            namespace: "default".into(),
            name: format!("p-0-{k}"),
        };
        let t = Instant::now();
        let (json, found) = answer(&ask, &memory, at(300)).to_json();
        explains.push(t.elapsed());
        assert!(found && json.contains("\"outcome\""));
        if k < 5 {
            let ask = Ask::Status {
                horizon: Duration::from_secs(3600),
            };
            let t = Instant::now();
            let _ = answer(&ask, &memory, at(300)).to_json();
            statuses.push(t.elapsed());
        }
    }
    println!(
        "{nodes:>6} nodes: explain pod (answer + JSON) p50 {:>8.2?}; status p50 {:>8.2?}",
        median(explains),
        median(statuses),
    );
    println!(
        "{nodes:>6} nodes, {:>7} pods: flip pass {:>8.2?} ({} marked Unknown); steady monitor pass p50 {:>8.2?}; \
         tainting pass p50 {:>8.2?}; reconcile of one node's 30 pods p50 {:>8.2?}",
        view.pods.len(),
        flip,
        report.marked_unknown.len(),
        median(passes),
        median(taint_passes),
        median(reconciles),
    );
}

fn main() {
    // `cargo test --benches` runs bench targets with `--test`-like flags; keep that cheap.
    let sizes: &[usize] = if std::env::args().any(|a| a == "--bench") {
        &[1_000, 5_000, 10_000]
    } else {
        &[100]
    };
    for &n in sizes {
        bench(n);
    }
}

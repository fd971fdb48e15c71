//! `--dry-run` on a scenario: the API server applies no write of the controller, while the
//! metrics count what would have been written.

mod common;

use common::*;
use node_lifecycle_controller::clock::{Clock, TokioClock};
use node_lifecycle_controller::config::settings_from_overrides;
use node_lifecycle_controller::controller::{self, Context, Observer};
use node_lifecycle_controller::metrics::Metrics;
use node_lifecycle_controller::sim::world::{self, ControllerControl, World};
use node_lifecycle_controller::sim::{self, SimCluster, SimHooks, Store, scenario};
use std::sync::Arc;

struct One {
    store: Store,
    metrics: Arc<Metrics>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl ControllerControl for One {
    fn start(&mut self) {
        let settings = settings_from_overrides(&[("dry-run".into(), "true".into())]).unwrap();
        let observer: Arc<dyn Observer> = Arc::new(SimHooks::new(self.store.clone()));
        let clock: Arc<dyn Clock> = Arc::new(self.store.clock());
        let ctx = Context {
            cluster: SimCluster::new(self.store.clone()),
            clock,
            settings,
            identity: "dry".into(),
            observer,
            metrics: self.metrics.clone(),
            shutdown: self.shutdown.subscribe(),
        };
        tokio::spawn(async move {
            controller::run(ctx).await;
        });
    }
    fn restart(&mut self) {}
}

#[test]
fn dry_run_writes_nothing_but_counts_what_it_would_have_written() {
    let scenario = scenario::parse(
        r#"
duration: 8m
controller:
  leader-elect: false
nodes:
  - name: n-{0..2}
    zone: z
pods:
  - {name: web, node: n-1}
events:
  - {at: 10s, action: stop-heartbeat, nodes: [n-1]}
"#,
        "test.yaml",
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let entries = runtime.block_on(async {
        let store = Store::new(TokioClock::starting_at(world::epoch()));
        let one = One {
            store: store.clone(),
            metrics: metrics.clone(),
            shutdown: tokio::sync::watch::channel(false).0,
        };
        let task = tokio::spawn(World::new(&scenario, 0, store.clone(), Some(Box::new(one))).run());
        tokio::time::sleep(scenario.duration).await;
        task.abort();
        store.timeline()
    });
    let mut out = Vec::new();
    sim::write_jsonl(&entries, &mut out).unwrap();
    let tl = parse(&String::from_utf8(out).unwrap());
    let writes: Vec<_> = tl
        .iter()
        .filter(|e| !matches!(e["type"].as_str(), Some("Action" | "ZoneState")))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    let text = metrics.render();
    let dropped = |kind: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("node_lifecycle_controller_dropped_writes_total")
                    && l.contains(&format!("kind=\"{kind}\""))
                    && l.contains("reason=\"dry_run\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        dropped("node_status") >= 1.0,
        "the Unknown marking is counted:\n{text}"
    );
    assert!(
        dropped("node_taints") >= 1.0,
        "the taints are counted:\n{text}"
    );
    assert!(dropped("event") >= 1.0, "the Events are counted:\n{text}");
}

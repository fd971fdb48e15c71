//! Two controller replicas on one simulated API server: one acts, the other stays warm and takes
//! over when the leader releases its lease (SIGTERM) or dies without releasing it (kill -9).
//! Every write is counted on the API server's side: a non-leader's write would show as a
//! duplicate.

mod common;

use common::*;
use node_lifecycle_controller::clock::{Clock, TokioClock};
use node_lifecycle_controller::config::settings_from_overrides;
use node_lifecycle_controller::controller::{self, Context, Observer};
use node_lifecycle_controller::metrics::Metrics;
use node_lifecycle_controller::sim::world::{self, ControllerControl, World};
use node_lifecycle_controller::sim::{self, SimCluster, SimHooks, Store, scenario};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const SCENARIO: &str = r#"
duration: 15m
nodes:
  - name: n-{0..3}
    zone: z
pods:
  - name: p-{0..7}
    node: n-{0..3}
events:
  - {at: 30s, action: stop-heartbeat, nodes: [n-1]}
"#;

struct Replica {
    shutdown: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// Starts replicas `a` and `b` (in that order, so `a` leads first).
#[derive(Clone, Default)]
struct Replicas(Arc<Mutex<Vec<Replica>>>, Option<Store>);

impl ControllerControl for Replicas {
    fn start(&mut self) {
        let store = self.1.clone().expect("store");
        for name in ["replica-a", "replica-b"] {
            let (shutdown, rx) = watch::channel(false);
            let observer: Arc<dyn Observer> = Arc::new(SimHooks::new(store.clone()));
            let clock: Arc<dyn Clock> = Arc::new(store.clock());
            let ctx = Context {
                cluster: SimCluster::new(store.clone()),
                clock,
                settings: settings_from_overrides(&[]).unwrap(),
                identity: name.to_string(),
                observer,
                metrics: Arc::new(Metrics::new()),
                shutdown: rx,
            };
            let handle = tokio::spawn(async move {
                controller::run(ctx).await;
            });
            self.0.lock().unwrap().push(Replica { shutdown, handle });
        }
    }
    fn restart(&mut self) {}
}

fn leader_of(store: &Store) -> Option<String> {
    store
        .get_lease("kube-system", "node-lifecycle-controller")
        .ok()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Runs the scenario with two replicas; at `at`, `failover` is applied to replica a.
fn run(
    failover: fn(&Replica),
    at: Duration,
) -> (Vec<serde_json::Value>, Vec<(u64, Option<String>)>) {
    let scenario = scenario::parse(SCENARIO, "test.yaml").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = TokioClock::starting_at(world::epoch());
        let store = Store::new(clock);
        let replicas = Replicas(Arc::default(), Some(store.clone()));
        let world = World::new(
            &scenario,
            0,
            store.clone(),
            Some(Box::new(replicas.clone())),
        );
        let world_task = tokio::spawn(world.run());
        let mut holders = Vec::new();
        let mut elapsed = Duration::ZERO;
        let step = Duration::from_secs(1);
        while elapsed < scenario.duration {
            tokio::time::sleep(step).await;
            elapsed += step;
            if elapsed == at {
                failover(&replicas.0.lock().unwrap()[0]);
            }
            holders.push((elapsed.as_secs(), leader_of(&store)));
        }
        world_task.abort();
        for r in replicas.0.lock().unwrap().iter() {
            r.handle.abort();
        }
        let mut out = Vec::new();
        sim::write_jsonl(&store.timeline(), &mut out).unwrap();
        (parse(&String::from_utf8(out).unwrap()), holders)
    })
}

fn assert_every_write_happened_once(tl: &[serde_json::Value]) {
    assert_eq!(unknown_at(tl, "n-1").len(), 1, "one Unknown write");
    assert_eq!(
        taint_added(tl, "n-1", UNREACHABLE_NE).len(),
        1,
        "one NoExecute taint"
    );
    let not_ready: Vec<_> = of(tl, "PodNotReady")
        .into_iter()
        .map(|e| e["pod"].clone())
        .collect();
    assert_eq!(not_ready.len(), 2, "{not_ready:?}");
    let taint = taint_added(tl, "n-1", UNREACHABLE_NE)[0];
    for pod in ["default/p-1", "default/p-5"] {
        let d = deleted_at(tl, pod).expect("deleted");
        assert!(
            d >= taint + 300.0 && d <= taint + 302.0,
            "{pod} at {d}, taint at {taint}"
        );
    }
    assert_eq!(of(tl, "PodDeleted").len(), 2);
}

fn first_holder_change(holders: &[(u64, Option<String>)]) -> (u64, String) {
    let first = holders
        .iter()
        .find_map(|(_, h)| h.clone())
        .expect("someone leads");
    holders
        .iter()
        .find(|(_, h)| h.as_ref().is_some_and(|h| *h != first))
        .map(|(t, h)| (*t, h.clone().unwrap()))
        .expect("leadership changed hands")
}

#[test]
fn the_standby_takes_over_at_once_when_the_leader_releases_its_lease() {
    let (tl, holders) = run(|r| r.shutdown.send(true).unwrap(), Duration::from_secs(200));
    assert_eq!(holders[0].1.as_deref(), Some("replica-a"));
    let (t, who) = first_holder_change(&holders);
    assert_eq!(who, "replica-b");
    // Released on SIGTERM: the standby needs one retry period (2s), not the lease duration.
    assert!((200..=203).contains(&t), "took over at {t}");
    assert_every_write_happened_once(&tl);
}

#[test]
fn the_standby_takes_over_after_the_lease_expires_when_the_leader_dies() {
    let (tl, holders) = run(|r| r.handle.abort(), Duration::from_secs(200));
    let (t, who) = first_holder_change(&holders);
    assert_eq!(who, "replica-b");
    // Not released: the standby waits for the 15s lease to run out (plus up to a retry period).
    assert!((213..=220).contains(&t), "took over at {t}");
    assert_every_write_happened_once(&tl);
}

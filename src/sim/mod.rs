//! The simulated cluster: an in-memory API server, kubelets, admission, faults, scenarios and
//! the timeline, all in virtual time.
//!
//! [`simulate`] runs the production controller ([`crate::controller::run`]) against a
//! [`SimCluster`] on a paused tokio clock. At one instant the world acts first (fault ends,
//! scenario actions, then kubelet writes, all synchronously), then the controller.

pub mod admission;
pub mod kubelet;
pub mod report;
pub mod scenario;
pub mod seam;
pub mod serve;
pub mod snapshot;
pub mod store;
pub mod timeline;
pub mod world;

pub use seam::{SimCluster, SimHooks};
pub use store::Store;
pub use timeline::{Entry, EntryKind, Summary, write_jsonl, write_table};

use crate::clock::{Clock, TokioClock};
use crate::controller::{self, Context, Observer};
use crate::metrics::Metrics;
use crate::settings::Settings;
use kubelet::millis;
use scenario::Scenario;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use world::{ControllerControl, World};

/// Errors of the simulation layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the simulation runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Starts controller processes on the simulated cluster; restart-controller kills one and
/// starts the next with a new identity and new metrics.
struct ControllerSlot {
    store: Store,
    clock: TokioClock,
    settings: Settings,
    observer: Arc<dyn Observer>,
    shutdown: watch::Sender<bool>,
    started: u32,
    handle: Option<JoinHandle<()>>,
}

impl ControllerSlot {
    fn new(
        store: Store,
        clock: TokioClock,
        settings: Settings,
        observer: Arc<dyn Observer>,
    ) -> Self {
        let (shutdown, _) = watch::channel(false);
        ControllerSlot {
            store,
            clock,
            settings,
            observer,
            shutdown,
            started: 0,
            handle: None,
        }
    }
}

impl ControllerControl for ControllerSlot {
    fn start(&mut self) {
        if let Some(old) = self.handle.take() {
            old.abort();
        }
        self.started += 1;
        let cluster = SimCluster::new(self.store.clone());
        let clock: Arc<dyn Clock> = Arc::new(self.clock);
        let settings = self.settings.clone();
        let identity = format!("sim-controller-{}", self.started);
        let observer = Arc::clone(&self.observer);
        let shutdown = self.shutdown.subscribe();
        self.handle = Some(tokio::spawn(async move {
            let metrics = Arc::new(Metrics::new());
            let ctx = Context {
                cluster,
                clock,
                settings,
                identity,
                observer,
                metrics,
                shutdown,
            };
            controller::run(ctx).await;
        }));
    }

    fn restart(&mut self) {
        self.start();
    }
}

impl Drop for ControllerSlot {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// Runs `scenario` for its duration with the controller configured by `settings`; kubelet
/// phases come from `seed`. Returns the timeline, ending with its `Summary` entry. The same
/// scenario, settings and seed always give the same timeline.
pub fn simulate(scenario: &Scenario, settings: Settings, seed: u64) -> Result<Vec<Entry>, Error> {
    run(scenario, seed, Some(settings))
}

/// The driver; `settings: None` runs the world without a controller (for tests).
fn run(scenario: &Scenario, seed: u64, settings: Option<Settings>) -> Result<Vec<Entry>, Error> {
    run_keeping_store(scenario, seed, settings, |_| ()).map(|(entries, _)| entries)
}

/// `run`, with the store prepared by `prepare` before anything runs on it (tests set faults
/// there), also returning the store.
fn run_keeping_store(
    scenario: &Scenario,
    seed: u64,
    settings: Option<Settings>,
    prepare: impl FnOnce(&Store),
) -> Result<(Vec<Entry>, Store), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let duration_ms = millis(scenario.duration);
    let entries = runtime.block_on(async {
        let clock = TokioClock::starting_at(world::epoch());
        let store = Store::new(clock);
        prepare(&store);
        let controller = settings.map(|settings| {
            let observer: Arc<dyn Observer> = Arc::new(SimHooks::new(store.clone()));
            Box::new(ControllerSlot::new(
                store.clone(),
                clock,
                settings,
                observer,
            )) as Box<dyn ControllerControl>
        });
        let world = World::new(scenario, seed, store.clone(), controller);
        let world_task = tokio::spawn(world.run());
        tokio::time::sleep(scenario.duration).await;
        world_task.abort();
        (store.timeline(), store)
    });
    drop(runtime);
    let (entries, store) = entries;
    Ok((finish_timeline(entries, duration_ms), store))
}

/// Keeps the entries up to `duration_ms` and appends their `Summary`, stamped at the end.
pub(crate) fn finish_timeline(mut entries: Vec<Entry>, duration_ms: u64) -> Vec<Entry> {
    entries.retain(|e| e.t_ms <= duration_ms);
    let summary = timeline::summarize(&entries);
    entries.push(Entry {
        t_ms: duration_ms,
        kind: EntryKind::Summary(summary),
    });
    entries
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;

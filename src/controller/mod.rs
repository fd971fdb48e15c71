//! The async loops: caches fed by the watches, the monitor pass, the tainting pass, the taint
//! manager's timers, the writer and the leader gate.

use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::logic::zones::ZoneState;
use crate::metrics::Metrics;
use crate::settings::Settings;
use std::sync::Arc;
use tokio::sync::watch;

/// Things the controller reports that are not API writes (the simulator records them in its
/// timeline; production only logs and counts them).
pub trait Hooks: Send + Sync + 'static {
    /// A zone changed state (`zone` as `display` shows it). Not called for `Initial`.
    fn zone_state(&self, zone: &str, state: ZoneState);
}

/// Hooks that do nothing.
pub struct NoHooks;

impl Hooks for NoHooks {
    fn zone_state(&self, _zone: &str, _state: ZoneState) {}
}

/// Everything one controller process needs.
pub struct Context<C: Cluster> {
    pub cluster: C,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// Leader-election identity (pod name or hostname).
    pub identity: String,
    pub hooks: Arc<dyn Hooks>,
    pub metrics: Arc<Metrics>,
    /// Becomes `true` on SIGTERM/SIGINT: stop taking work, release the lease, return.
    pub shutdown: watch::Receiver<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start: {0}")]
    Startup(String),
}

/// Runs the controller until shutdown. Cancel-safe: dropping the future (the simulator's
/// `restart-controller`) stops everything at once and releases nothing.
pub async fn run<C: Cluster>(ctx: Context<C>) -> Result<(), Error> {
    let _ = ctx;
    todo!()
}

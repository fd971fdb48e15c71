//! What the control loop reports besides API writes: each report goes to one [`Observer`],
//! which fans out to the metrics, `/readyz` and (in the simulator) the timeline.

use crate::logic::zones::ZoneState;
use crate::metrics::Metrics;
use std::sync::Arc;

/// Receives the control loop's reports. Every method has a do-nothing default, so an observer
/// implements only what it shows.
pub trait Observer: Send + Sync + 'static {
    /// A zone changed state (`zone` as `zones::display` shows it). Not called for `Initial`.
    fn zone_state(&self, _zone: &str, _state: ZoneState) {}

    /// Readiness facts for `/readyz`: whether every cache has synced, whether this process leads.
    fn readiness(&self, _synced: bool, _leader: bool) {}

    /// A watch was found stale (or fresh again) by the staleness guard.
    fn watch_stale(&self, _resource: &'static str, _stale: bool) {}

    /// The `--max-unhealthy-fraction` breaker opened or closed.
    fn breaker(&self, _open: bool) {}

    /// A check of the controller's inputs suspects a misconfiguration (`Some`: what it found)
    /// or no longer does (`None`); `check` names it (`node_leases`).
    fn suspicion(&self, _check: &'static str, _detail: Option<&str>) {}

    /// This process stopped acting (lost the lease): what the leader's passes showed is not
    /// its to show any more.
    fn stood_down(&self) {}
}

/// An observer that shows nothing.
pub struct NoObserver;

impl Observer for NoObserver {}

/// Every report to each of several observers, in order.
pub struct Fanout(pub Vec<Arc<dyn Observer>>);

impl Observer for Fanout {
    fn zone_state(&self, zone: &str, state: ZoneState) {
        self.0.iter().for_each(|o| o.zone_state(zone, state));
    }
    fn readiness(&self, synced: bool, leader: bool) {
        self.0.iter().for_each(|o| o.readiness(synced, leader));
    }
    fn watch_stale(&self, resource: &'static str, stale: bool) {
        self.0.iter().for_each(|o| o.watch_stale(resource, stale));
    }
    fn breaker(&self, open: bool) {
        self.0.iter().for_each(|o| o.breaker(open));
    }
    fn suspicion(&self, check: &'static str, detail: Option<&str>) {
        self.0.iter().for_each(|o| o.suspicion(check, detail));
    }
    fn stood_down(&self) {
        self.0.iter().for_each(|o| o.stood_down());
    }
}

/// The gauges that follow the reports.
impl Observer for Metrics {
    fn watch_stale(&self, resource: &'static str, stale: bool) {
        self.watches.set_stale(resource, stale);
    }
    fn breaker(&self, open: bool) {
        self.monitor.set_breaker_open(open);
    }
    fn suspicion(&self, check: &'static str, detail: Option<&str>) {
        self.monitor
            .set_suspected_misconfiguration(check, detail.is_some());
    }
    fn stood_down(&self) {
        Metrics::stood_down(self);
    }
}

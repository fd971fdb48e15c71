//! Prometheus metrics: upstream's names, labels and buckets kept exactly
//! (`node_collector_*`, `taint_eviction_controller_*`), ours prefixed `node_lifecycle_controller_`.
//!
//! Each component records through the methods here; one registry per controller process (the
//! simulator makes one per simulated controller).

use prometheus::Registry;

pub struct Metrics {
    registry: Registry,
    // metric handles chosen by the implementation
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        todo!()
    }
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
    /// Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        todo!()
    }

    // --- node_collector_* (upstream names) ---
    /// `node_collector_zone_size`, `node_collector_zone_health` (100·(size−unhealthy)/size, 100
    /// when size is 0) and `node_collector_unhealthy_nodes_in_zone` for the raw zone key.
    pub fn set_zone_health(&self, zone_key: &str, size: usize, unhealthy: usize) {
        todo!("{zone_key} {size} {unhealthy}")
    }
    /// Initialises `node_collector_evictions_total{zone}` to 0 when a zone is first seen.
    pub fn init_zone_evictions(&self, zone_key: &str) {
        todo!("{zone_key}")
    }
    /// `node_collector_evictions_total{zone}` += 1 (a NoExecute taint applied by the zone pass).
    pub fn inc_zone_evictions(&self, zone_key: &str) {
        todo!("{zone_key}")
    }
    /// `node_collector_update_node_health_duration_seconds` (buckets 0.001·4^k, k=0..7).
    pub fn observe_node_health_duration(&self, seconds: f64) {
        todo!("{seconds}")
    }
    /// `node_collector_update_all_nodes_health_duration_seconds` (buckets 0.01·4^k, k=0..7).
    pub fn observe_all_nodes_health_duration(&self, seconds: f64) {
        todo!("{seconds}")
    }

    // --- taint_eviction_controller_* (upstream names) ---
    /// `taint_eviction_controller_pod_deletions_total` += 1 and
    /// `taint_eviction_controller_pod_deletion_duration_seconds` observes `latency_seconds`
    /// (in seconds, not upstream's ×1e9; buckets 0.005,0.025,0.1,0.5,1,2.5,10,30,60,120,180,240).
    pub fn pod_deleted(&self, latency_seconds: f64) {
        todo!("{latency_seconds}")
    }

    // --- node_lifecycle_controller_* (ours) ---
    /// `node_lifecycle_controller_leader` gauge (1 leader, 0 standby).
    pub fn set_leader(&self, leader: bool) {
        todo!("{leader}")
    }
    /// `node_lifecycle_controller_writes_total{kind,outcome}`; kind e.g. `node_status`,
    /// `node_taints`, `node_labels`, `pod_status`, `pod_delete`, `pod_evict`, `event`, `lease`;
    /// outcome `ok` or an `ApiError::kind()`.
    pub fn write(&self, kind: &'static str, outcome: &'static str) {
        todo!("{kind} {outcome}")
    }
    /// `node_lifecycle_controller_write_retries_total{kind}`.
    pub fn write_retry(&self, kind: &'static str) {
        todo!("{kind}")
    }
    /// `node_lifecycle_controller_dropped_writes_total{kind,reason}`; reason `not_leader` or `dry_run`.
    pub fn dropped_write(&self, kind: &'static str, reason: &'static str) {
        todo!("{kind} {reason}")
    }
    /// `node_lifecycle_controller_cache_objects{resource}` (nodes, leases, pods).
    pub fn set_cache_size(&self, resource: &'static str, count: usize) {
        todo!("{resource} {count}")
    }
    /// `node_lifecycle_controller_watch_stale{resource}` gauge (1 while stale) and
    /// `node_lifecycle_controller_watch_restarts_total{resource}` on each restart.
    pub fn set_watch_stale(&self, resource: &'static str, stale: bool) {
        todo!("{resource} {stale}")
    }
    pub fn watch_restarted(&self, resource: &'static str) {
        todo!("{resource}")
    }
    /// `node_lifecycle_controller_breaker_open` gauge and
    /// `node_lifecycle_controller_breaker_held_nodes_total` (NoExecute taints held back).
    pub fn set_breaker_open(&self, open: bool) {
        todo!("{open}")
    }
    pub fn breaker_held_node(&self) {
        todo!()
    }
    /// `node_lifecycle_controller_pod_eviction_refusals_total` (429 from the Eviction API).
    pub fn eviction_refused(&self) {
        todo!()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

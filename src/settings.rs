//! Validated controller settings as plain data.
//!
//! The decision core and the loops read these; `config.rs` builds them from the command line
//! (or a scenario's `controller:` block) and is the only place that validates them.

use std::time::Duration;

/// How pods are removed once their toleration window is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictionMode {
    /// DELETE the pod (upstream's behaviour).
    Delete,
    /// POST a policy/v1 Eviction, so PodDisruptionBudgets are honoured.
    Evict,
}

/// How a watch gets the full state it starts from (and re-lists after a 410 Gone).
///
/// A setting of `run`'s connection to the API server, not of the controller's behaviour:
/// `simulate` has no HTTP, so it is not part of [`Settings`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InitialList {
    /// Paginated lists (pages of 500, one request after another), then a watch.
    #[default]
    Paged,
    /// A streaming list (KEP-3157 "WatchList"): one watch that sends the current objects, then
    /// goes on with the changes, so that decoding overlaps with the server's encoding. Falls
    /// back to `Paged` where the API server refuses it.
    Streaming,
}

/// Every behaviour setting of the controller, with upstream's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub node_monitor_period: Duration,
    pub node_monitor_grace_period: Duration,
    pub node_startup_grace_period: Duration,
    pub node_eviction_rate: f64,
    pub secondary_node_eviction_rate: f64,
    pub large_cluster_size_threshold: u32,
    pub unhealthy_zone_threshold: f64,
    pub leader_elect: bool,
    pub leader_elect_lease_duration: Duration,
    pub leader_elect_renew_deadline: Duration,
    pub leader_elect_retry_period: Duration,
    pub leader_elect_resource_name: String,
    pub leader_elect_resource_namespace: String,
    pub node_lease_namespace: String,
    pub dry_run: bool,
    pub eviction_mode: EvictionMode,
    /// `None`: the breaker is off (the default).
    pub max_unhealthy_fraction: Option<f64>,
}

/// Period of the NoExecute tainting pass (upstream's hard-coded `NodeEvictionPeriod`).
pub const NODE_EVICTION_PERIOD: Duration = Duration::from_millis(100);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(50),
            node_startup_grace_period: Duration::from_secs(60),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
            leader_elect: true,
            leader_elect_lease_duration: Duration::from_secs(15),
            leader_elect_renew_deadline: Duration::from_secs(10),
            leader_elect_retry_period: Duration::from_secs(2),
            leader_elect_resource_name: "node-lifecycle-controller".to_string(),
            leader_elect_resource_namespace: "kube-system".to_string(),
            node_lease_namespace: "kube-node-lease".to_string(),
            dry_run: false,
            eviction_mode: EvictionMode::Delete,
            max_unhealthy_fraction: None,
        }
    }
}
